"""The "Compare" tab: one exercise / prompt / seed -> every available generator side by side (plus a real
test motion of the exercise), synchronised 3D views, the recogniser's verdict and plausibility numbers per
motion, and a quick evaluation (the ACTOR protocol on a small sample, real row included) shown as a table
and bar charts with 95 % intervals.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import gradio as gr
import numpy as np

from .. import data
from ..analysis import metrics as M
from ..core.errors import UserError
from ..core.motion import DEFAULT_FPS, Motion
from ..core.skeleton import COMMON
from ..data.labels import LABEL_TITLES
from ..evaluation import generative
from ..evaluation.correctness import CorrectnessSettings, correctness_control
from ..evaluation.dynamics import DynamicsSettings, evaluate_dynamics, summary_table
from ..evaluation.generative import EvalSettings
from ..generators import registry
from ..generators.recognition import CHECKPOINT_NAME, load_recognizer
from ..generators.registry import DEFAULT_STEPS, FixedSteps, Request
from ..viz.render import metric_bar_figure
from .common import (
    CORRECTNESS_LABELS,
    CPU_LIMIT,
    CPU_QUEUE,
    MAX_SEED,
    QUICK_FRAMES,
    QUICK_NUM,
    QUICK_STEPS,
    AppContext,
    add_motions,
    correctness_info,
    progress_callback,
    seed_box,
    to_int,
    user_error,
)
from .player import controls, player, player_value, timing_note, view_export

__all__ = ["build", "comparable_models", "label_choices", "compare", "compare_all", "Comparison", "NO_LABEL",
           "PER_MOTION_HEADERS", "motion_metrics_table",
           "quick_evaluation", "result_table", "BAR_METRICS", "quick_dynamics", "dynamics_table"]

log = logging.getLogger("motionviz.ui.compare")

CORRECT, INCORRECT, UNSPECIFIED = "Correct", "Incorrect", "Unspecified"
BAR_METRICS = ("fid", "accuracy", "diversity", "multimodality")
#: Columns of the per-motion table: what, unit and which way is better.
PER_MOTION_HEADERS = ["motion", "recognised as", "probability (↑ for the asked exercise)", "correct execution?",
                      "jerk (m/s³, ↓)", "bone-length variation (std/mean, ↓)", "foot skating (m/s, ↓)",
                      "joint-limit frames (fraction, ↓)"]
TABLE_METRICS = ("fid", "accuracy", "diversity", "multimodality", "swd", "precision", "recall", "density",
                 "coverage", "memorisation_ratio", "r_precision_top3", "jerk", "bone_length_error",
                 "foot_skating", "limit_any")


#: Column heading of each evaluation metric: name, unit where it has one, and which way is better
#: (↑ higher, ↓ lower, ≈ real: closest to the real row).
METRIC_HEADINGS = {
    "fid": "FID (↓)", "accuracy": "recognition accuracy (↑)", "diversity": "diversity (≈ real)",
    "multimodality": "multimodality (≈ real)", "swd": "sliced Wasserstein (↓)", "precision": "precision (↑)",
    "recall": "recall (↑)", "density": "density (≈ 1)", "coverage": "coverage (↑)",
    "memorisation_ratio": "memorisation ratio (≈ 1; near 0 = copies training)",
    "r_precision_top3": "R-precision top-3 (↑)", "jerk": "jerk (m/s³, ≈ real)",
    "bone_length_error": "bone-length variation (↓)", "foot_skating": "foot skating (m/s, ↓)",
    "limit_any": "joint-limit frames (fraction, ↓)",
}


def comparable_models(models: Sequence[str], checkpoint_dir: Path) -> dict[str, Any]:
    """name -> loaded generator, for the available models that generate from a label or text.  The
    distilled sampler keeps its own step count (:data:`motionviz.generators.registry.DEFAULT_STEPS`): the tab's steps
    slider is the full diffusion model's."""
    out = {}
    for name in models:
        try:
            g = registry.load_generator(name, checkpoint_dir)
        except UserError as e:
            log.warning("compare: %s not loaded: %s", name, e)
            continue
        if name in DEFAULT_STEPS and name != "diffusion":
            g = FixedSteps(g, DEFAULT_STEPS[name])
        if {"label", "text"} & g.tasks:
            out[name] = g
    return out


def label_choices(gens: dict[str, Any]) -> list[tuple[str, str]]:
    """(title (label), label) for every label known to at least one generator, in a stable order."""
    labels: list[str] = []
    for g in gens.values():
        for lab in g.labels:
            if lab not in labels:
                labels.append(lab)
    return [(f"{LABEL_TITLES.get(l, l)} ({l})", l) for l in labels]


def _correct_of(choice: str | None) -> bool | None:
    return {CORRECT: True, INCORRECT: False}.get(choice or UNSPECIFIED)


def _real_example(label: str | None, seed: int, data_root: Path | None) -> Motion | None:
    if not label or data_root is None:
        return None
    try:
        ms = [m for m in data.load_corpus("test", root=data_root) if m.labels.label == label]
        if not ms:
            ms = [m for m in data.load_corpus("train", root=data_root) if m.labels.label == label]
    except (UserError, OSError) as e:
        log.warning("compare: no real example: %s", e)
        return None
    if not ms:
        return None
    return ms[int(np.random.default_rng(seed).integers(len(ms)))]


NO_LABEL = "__none__"       # the exercise dropdown's "no exercise: the description only" choice


@dataclass
class Comparison:
    """What :func:`compare_all` made: per view the motion, title, colour role and notice (what the model
    did with the request), plus the models that could not make anything of it (name, why)."""

    motions: list[Motion] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def compare_all(gens: dict[str, Any], label: str | None, text: str, correct: str | None, seed: int, frames: int,
                steps: int, data_root: Path | None = None, progress=None) -> Comparison:
    """One motion per generator for the same exercise and/or description and seed (each model gets what
    it can use: a text model the description, a label model the exercise), plus a real test motion of the
    exercise first (when there is an exercise and the data is there).  A model that cannot use the
    description says so in its notice; a model that can use nothing of the request is listed in
    ``skipped`` with the reason."""
    text = (text or "").strip()
    label = None if (not label or label == NO_LABEL) else label
    if not label and not text:
        raise UserError("choose an exercise or type a description")
    if not gens:
        raise UserError("no generator checkpoint is available")
    out = Comparison()
    real = _real_example(label, seed, data_root)
    if real is not None:
        out.motions.append(real.crop(0, min(real.num_frames, 600)))
        out.titles.append(f"real recording ({real.labels.subject})")
        out.roles.append("real")
        out.notices.append("")
    n = len(gens)
    for i, (name, g) in enumerate(gens.items()):
        tasks = g.tasks
        glabels = set(g.labels)
        use_label = label if (label and (not glabels or label in glabels) and "label" in tasks) else None
        use_text = text if "text" in tasks else ""
        notes = []
        if text and not use_text:
            notes.append("cannot read text: the description was not used")
        if label and not use_label:
            notes.append("does not know this exercise" if "label" in tasks else "takes no exercise label")
        if use_label is None and not use_text:
            out.skipped.append((name, "; ".join(notes) or "cannot make this request"))
            continue
        c = _correct_of(correct)
        if c is not None and use_label and not g.has_correctness(use_label):
            c = None
            notes.append("no correct/incorrect for this exercise")
        req = Request(model=name, label=use_label, text=use_text, correct=c, seed=seed, frames=frames,
                      steps=steps, num=1)
        sub = None if progress is None else (lambda f, t, i=i: progress((i + f) / n, f"{name}: {t}"))
        out.motions += g.generate(req, sub)
        used = " + ".join(x for x in ("text" if use_text else "", "exercise" if use_label else "") if x)
        out.titles.append(f"{name} (from {used})")
        out.roles.append(name)
        out.notices.append("; ".join(notes))
    if len(out.motions) == (1 if real is not None else 0):
        why = "; ".join(f"{n}: {w}" for n, w in out.skipped)
        raise UserError(f"none of the available models can make this request ({why})" if why else
                        "none of the available models can generate this exercise; pick another one")
    return out


def compare(gens: dict[str, Any], label: str | None, text: str, correct: str | None, seed: int, frames: int,
            steps: int, data_root: Path | None = None, progress=None) -> tuple[list[Motion], list[str]]:
    """(motions, titles) of :func:`compare_all`."""
    res = compare_all(gens, label, text, correct, seed, frames, steps, data_root, progress)
    return res.motions, res.titles


def motion_metrics_table(motions: Sequence[Motion], titles: Sequence[str], recognizer: Any | None) -> list[list[Any]]:
    """Rows [title, predicted label, probability, correct, jerk, bone-length error, foot skating,
    joint-limit violations] for each motion."""
    preds = recognizer.predict(motions) if recognizer is not None else [None] * len(motions)
    rows = []
    for m, t, p in zip(motions, titles, preds):
        j = m.retarget(COMMON).resample(DEFAULT_FPS).joints
        phys = M.physical_metrics([j], COMMON, DEFAULT_FPS)
        rows.append([t, p["label"] if p else "", round(p["probability"], 3) if p else None,
                     "" if not p or p["correct"] is None else ("yes" if p["correct"] else "no"),
                     _r(phys["jerk"]), _r(phys["bone_length_error"]), _r(phys["foot_skating"]),
                     _r(phys["limit_any"])])
    return rows


def _r(v: Any, digits: int = 4) -> Any:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return None if not np.isfinite(f) else float(f"{f:.{digits}g}")


def quick_evaluation(gens: dict[str, Any], recognizer: Any, label: str | None, data_root: Path | None,
                     num: int = 4, repeats: int = 5, steps: int = 10, progress=None) -> dict[str, dict[str, Any]]:
    """:func:`motionviz.evaluation.generative.evaluate` on the chosen exercise's dataset with small settings."""
    if recognizer is None:
        raise UserError("the quick evaluation needs the recogniser checkpoint (recognizer.safetensors)")
    if data_root is None:
        raise UserError("the quick evaluation needs the real data folder")
    gens = {n: g for n, g in gens.items() if "label" in g.tasks}
    if not gens:
        raise UserError("no label-conditioned generator is available to evaluate")
    ds = (label.split(":", 1)[0],) if label and ":" in label else ("ui-prmd",)
    s = EvalSettings(num_per_label=num, repeats=repeats, datasets=ds, steps=steps, prompts_per_label=1)
    if progress:
        progress(0.0, "loading real data")
    test = data.load_corpus("test", root=data_root)
    train = data.load_corpus("train", datasets=list(ds), root=data_root)
    return generative.evaluate(gens, recognizer, test, train, s, progress)


def quick_dynamics(gens: dict[str, Any], label: str | None, data_root: Path | None, num: int = 4,
                   steps: int = 10, frames: int = 120, progress=None) -> dict[str, Any]:
    """:func:`motionviz.evaluation.dynamics.evaluate_dynamics` on the chosen exercise's dataset: ``num``
    samples of ``frames`` frames per exercise and model against real held-out clips of the same duration,
    with the real-vs-real and degenerate rows."""
    if data_root is None:
        raise UserError("the dynamics check needs the real data folder")
    gens = {n: g for n, g in gens.items() if "label" in g.tasks}
    if not gens:
        raise UserError("no label-conditioned generator is available to evaluate")
    ds = (label.split(":", 1)[0],) if label and ":" in label else ("ui-prmd",)
    test = data.load_corpus("test", datasets=list(ds), root=data_root)
    train = data.load_corpus("train", datasets=list(ds), root=data_root)
    return evaluate_dynamics(gens, test, train, ds, None, DynamicsSettings(num=num, frames=frames, steps=steps),
                             progress)


def dynamics_table(section: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """(headers, rows) of the dynamics summary: one row per metric with its unit and which value is best,
    one column per row of the section (real first, degenerate rows last)."""
    return summary_table(section, titles=True)


def result_table(result: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """(headers, rows) 'model, metric +- ci, ...' for a :func:`evaluate` result."""
    headers = ["model"] + [METRIC_HEADINGS.get(k, k) for k in TABLE_METRICS]
    rows = []
    for name, row in result.items():
        cells: list[Any] = [name]
        for k in TABLE_METRICS:
            v = row.get(k)
            ci = row.get(f"{k}_ci")
            if v is None:
                cells.append("–")
            elif ci is None:
                cells.append(f"{v:.4g}")
            else:
                cells.append(f"{v:.4g} ± {ci:.2g}")
        rows.append(cells)
    return headers, rows


def bar_table(result: dict[str, dict[str, Any]]) -> dict[str, dict[str, tuple[float, float]]]:
    """``render.metric_bar_figure`` input: model -> metric -> (mean, ci)."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for name, row in result.items():
        out[name] = {k: (row[k], row.get(f"{k}_ci") or 0.0) for k in BAR_METRICS if row.get(k) is not None}
    return out


def _recognizer(ctx: AppContext):
    p = Path(ctx.checkpoint_dir) / CHECKPOINT_NAME
    if not p.is_file():
        return None
    try:
        return load_recognizer(p)
    except UserError as e:
        log.warning("compare: recogniser not loaded: %s", e)
        return None


def build(ctx: AppContext) -> None:
    gens = comparable_models(ctx.models, Path(ctx.checkpoint_dir))
    if not gens:
        gr.Markdown("**Compare** needs at least one generator checkpoint (diffusion or VAE).")
        return
    recognizer = _recognizer(ctx)
    choices = label_choices(gens)
    default = next((v for _, v in choices if v == "ui-prmd:m01"), choices[0][1] if choices else None)
    motions_state = ctx.motions if ctx.motions is not None else gr.State([])
    heavy = dict(concurrency_id=CPU_QUEUE, concurrency_limit=CPU_LIMIT)

    gr.Markdown(
        f"**Compare the generators** ({', '.join(gens)}) on one exercise, description and seed, next to a "
        "real motion of the exercise from the held-out test subjects. All views share one frame slider. "
        + ("The recogniser names what each motion looks like." if recognizer is not None else
           "(No recogniser checkpoint: predictions and the quick evaluation are unavailable.)"))
    with gr.Row(equal_height=False, elem_classes=["mv-split"]):
        with gr.Column(scale=1, min_width=280):
            with controls():
                label = gr.Dropdown([("No exercise: use the description only", NO_LABEL)] + choices, value=default,
                                    label="Exercise", elem_id="compare-label")
                text = gr.Textbox("", label="Description (used by the models that read text)", max_lines=3,
                                  placeholder="e.g. a slow deep squat with the arms overhead", elem_id="compare-text")
                correct = gr.Radio([UNSPECIFIED, CORRECT, INCORRECT], value=UNSPECIFIED, label="Execution",
                                   info=correctness_info())
                with gr.Row():
                    seed = seed_box(0, "Seed")
                    frames = gr.Slider(20, 200, value=80, step=1, label="Frames (20 fps)", elem_id="compare-frames")
                steps = gr.Slider(5, 100, value=20, step=1, label="Diffusion sampling steps (the fast model: its own 2)",
                                  elem_id="compare-steps")
            go_btn = gr.Button("Generate with every model", variant="primary", elem_id="compare-run")
        with gr.Column(scale=3):
            grid = player(elem_id="compare-plot")
            view_export(grid, "compare-plot")
            notes = gr.Markdown("", elem_id="compare-notes")
            per_motion = gr.Dataframe(headers=PER_MOTION_HEADERS, elem_id="compare-metrics",
                                      label="Recogniser and plausibility per motion (↓ lower is better; the real "
                                            "recording is the reference row)", interactive=False, wrap=True)
    with gr.Accordion("Quick evaluation (ACTOR protocol, small sample)", open=False):
        gr.Markdown(
            "Generates 4 motions per exercise of the chosen exercise's dataset with every model and compares "
            "them with the real test subjects: FID, recognition accuracy, diversity, multimodality (mean ± 95 % "
            "interval over 5 repeats) and small-data metrics; the **real** row is real vs real (the floor / "
            "ceiling). The full evaluation is `python -m motionviz evaluate --json`. Takes a minute or more "
            "on CPU.")
        eval_btn = gr.Button("Run quick evaluation")
        table = gr.Dataframe(label="Metrics (real row = real vs real)", interactive=False, wrap=True)
        bars = gr.Plot(label="Metrics with 95 % intervals")
        gr.Markdown(
            "**Does it move like the real exercise?** 4 samples of 120 frames (6 s) per exercise and model "
            "against real clips of the same duration from the held-out subjects: range of motion and mean "
            "joint speed as ratios to real (≈1 is best), repetitions within ±1 of real (↑), period and pelvis "
            "travel. The *real* column compares two halves of the held-out subjects (the natural spread); "
            "*frozen mean pose*, *training clip copied* and *real at half amplitude* are degenerate outputs "
            "shown for scale (a copied training clip moves like real motion: the memorisation metric above "
            "is the one that flags it).")
        dyn_table = gr.Dataframe(label="Dynamics (ratios to real held-out clips; real = half vs half)",
                                 interactive=False, wrap=True)

    @user_error
    def on_generate(label_, text_, correct_, seed_, frames_, steps_, motions_, progress=gr.Progress()):
        cb = progress_callback(progress)
        t0 = time.perf_counter()
        res = compare_all(gens, label_, text_, correct_, to_int(seed_, "seed", 0, MAX_SEED),
                          to_int(frames_, "frames", 8, 600), to_int(steps_, "steps", 1, 1000), ctx.data_root, cb)
        model_s = time.perf_counter() - t0
        cb(0.95, "drawing")
        rows = motion_metrics_table(res.motions, res.titles, recognizer)
        generated = [m for m, r in zip(res.motions, res.roles) if r != "real"]
        value = player_value(res.motions, titles=res.titles, roles=res.roles, notices=res.notices)
        lines = [f"**{name}:** not shown: {why}." for name, why in res.skipped]
        lines.append(f"Seed {to_int(seed_, 'seed', 0, MAX_SEED)} · {timing_note(time.perf_counter() - t0, model_s)}")
        return value, rows, add_motions(motions_, generated), "  \n".join(lines)

    @user_error
    def on_evaluate(label_, progress=gr.Progress()):
        cb = progress_callback(progress)
        res = quick_evaluation(gens, recognizer, label_, ctx.data_root, progress=lambda f, t: cb(0.8 * f, t))
        headers, rows = result_table(res)
        fig = metric_bar_figure(bar_table(res), title="ACTOR metrics (real = real vs real)",
                                metrics=list(BAR_METRICS))
        dyn = quick_dynamics(gens, label_, ctx.data_root, progress=lambda f, t: cb(0.8 + 0.2 * f, t))
        dh, drows = dynamics_table(dyn)
        return gr.Dataframe(value=rows, headers=headers), fig, gr.Dataframe(value=drows, headers=dh)

    go_btn.click(on_generate, [label, text, correct, seed, frames, steps, motions_state],
                 [grid, per_motion, motions_state, notes], api_name="compare_generate", **heavy)
    eval_btn.click(on_evaluate, [label], [table, bars, dyn_table], api_name="compare_evaluate", **heavy)


    build_correctness_section(gens, recognizer, label, ctx.data_root, heavy)


# ---- the Compare tab's correctness-control section -----------------------------------------------
def quick_correctness(gens: dict[str, Any], recognizer: Any, label: str | None, data_root: Path | None,
                      num: int = QUICK_NUM, frames: int = QUICK_FRAMES, steps: int = QUICK_STEPS,
                      progress=None) -> dict[str, Any]:
    """:func:`motionviz.evaluation.correctness.correctness_control` on one exercise with small settings."""
    if recognizer is None:
        raise UserError("correctness control needs the recogniser checkpoint (recognizer.safetensors)")
    if data_root is None:
        raise UserError("correctness control needs the real data folder")
    if not label or label not in CORRECTNESS_LABELS:
        raise UserError("choose an exercise with correct and incorrect executions (UI-PRMD or IntelliRehabDS)")
    gens = {n: g for n, g in gens.items() if "label" in g.tasks}
    ds = label.split(":", 1)[0]
    s = CorrectnessSettings(num=num, frames=frames, steps=steps, datasets=(ds,), labels=(label,))
    return correctness_control(gens, recognizer, data.load_corpus("test", datasets=[ds], root=data_root),
                               data.load_corpus("train", datasets=[ds], root=data_root), s, progress)


def correctness_rows(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """(headers, rows) of a correctness-control result: one row per model / real / degenerate row."""
    headers = ["row", "exercise", "control", "correct → correct", "incorrect → incorrect", "strict",
               "recognised as the exercise (correct requests)", "recognised as the exercise (incorrect requests)"]
    rows = []
    for name, row in result["rows"].items():
        for lab, e in row["per_label"].items():
            rows.append([name, lab, e.get("control"), e.get("correct_as_correct"), e.get("incorrect_as_incorrect"),
                         e.get("strict"), e.get("exercise_correct"), e.get("exercise_incorrect")])
    return headers, rows


def build_correctness_section(gens: dict[str, Any], recognizer: Any, label: Any, data_root: Path | None,
                              heavy: dict[str, Any]) -> None:
    """An accordion for the Compare tab: correctness control of every model on the chosen exercise."""
    with gr.Accordion("Correctness control (requested vs recognised correct/incorrect)", open=False):
        gr.Markdown(
            f"Each model makes {QUICK_NUM} executions of the chosen exercise requested as **correct** and "
            f"{QUICK_NUM} as **incorrect** ({QUICK_FRAMES} frames, {QUICK_STEPS} diffusion steps); the "
            "recogniser's correctness head of that exercise judges them. *control* = mean of correct→correct and "
            "incorrect→incorrect (chance 0.5, target ≥ 0.85); *strict* also asks that the recogniser identifies "
            "the requested exercise. Beside the models: **real** held-out recordings, **real_repeated** (the "
            "same recordings played back to back with their subject's other repetitions to the generated "
            "length, the form of a generated motion), a "
            "**frozen_pose** that ignores the request (0.5), **opposite_real** recordings (the floor) and "
            "**other_exercise** (another exercise given when an incorrect execution is asked for: control "
            "passes it, strict and the recognised-exercise columns do not). With "
            f"{QUICK_NUM} samples a cell moves in steps of {1 / QUICK_NUM:.2f}, so these quick numbers are not the "
            "README's: the full protocol (8 + 8 samples of 120 frames with the model's default sampling steps, "
            "every exercise) is "
            "`python -m motionviz evaluate`.\n\n" + correctness_info())
        btn = gr.Button("Run correctness control", elem_id="compare-correctness-run")
        table = gr.Dataframe(label="Correctness control", interactive=False, wrap=True,
                             elem_id="compare-correctness")

    @user_error
    def on_correctness(label_, progress=gr.Progress()):
        res = quick_correctness(gens, recognizer, label_, data_root, progress=progress_callback(progress))
        headers, rows = correctness_rows(res)
        return gr.Dataframe(value=rows, headers=headers)

    btn.click(on_correctness, [label], [table], api_name="compare_correctness", **heavy)
