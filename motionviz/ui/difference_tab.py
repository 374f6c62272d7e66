"""The "Correct vs incorrect" tab: what differs between a correct and an incorrect execution, for a
physiotherapist.

Three flows, one view: (1) a generator (the diffusion model, or the VAE when its checkpoint is there) makes a
correct and an incorrect execution of the chosen exercise (same seed); (2) a real recording of a held-out
test subject, or (3) an uploaded recording, is compared with a generated *correct* reference.  Both motions
are time-aligned by dynamic time warping on their joint angles (:mod:`motionviz.analysis.difference`) and
shown in one 3D player (overlaid or side by side) with the joints of the findings and those that differ most
enlarged; the joint-angle curves are plotted over the aligned time with the normal band of real correct
executions (p5-p95 per time-normalised frame, aligned to the reference) shaded; a plain-language summary
says which of the exercise's key angles lie at least 5° beyond the normal range ("Left knee bends 25° less
than in correct executions").
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import gradio as gr
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import data
from ..analysis.angles import ANGLE_BY_KEY
from ..analysis.difference import (
    MARGIN_DEG,
    compare_executions,
    describe_comparison,
    key_angles_for,
    normal_range_for,
    on_common,
    position_of,
    warp_pair,
)
from ..core.errors import UserError
from ..core.motion import Motion
from ..data import load_user_file
from ..data.labels import LABEL_TITLES
from ..data.userfile import MAX_USER_BYTES, USER_EXTENSIONS
from ..generators import registry
from ..generators.registry import Request
from ..viz.render import PALETTE, joint_error_figure
from .common import (
    CORRECTNESS_LABELS,
    CPU_LIMIT,
    CPU_QUEUE,
    MAX_SEED,
    AppContext,
    add_motions,
    progress_callback,
    seed_box,
    to_int,
    uploaded_motion_file,
    user_error,
)
from .player import controls, joint_label, player_value, view_export
from .player import player as player_view_component

__all__ = ["build", "exercise_choices", "recording_choices", "incorrect_meaning", "difference_view",
           "angle_curves_figure", "player_view", "DATASET_INCORRECT", "EXERCISE_INCORRECT", "MODES",
           "MAX_GENERATED_FRAMES", "MAX_UPLOAD_BYTES", "UPLOAD_TYPES", "UPLOAD_LABEL", "incorrect_terms",
           "GENERATORS",
]

log = logging.getLogger("motionviz.ui.difference")

GENERATED, REAL, UPLOAD = "generated", "real", "upload"
MODES = [("Generated: correct vs incorrect execution", GENERATED),
         ("Real recording (held-out subject) vs generated correct reference", REAL),
         ("Uploaded recording vs generated correct reference", UPLOAD)]
VIEWS = [("Overlaid", "overlay"), ("Side by side", "pair")]
#: The generators the tab can use (the diffusion model is required, the VAE optional).
GENERATORS = [("Diffusion model", "diffusion"), ("VAE", "vae")]
MAX_GENERATED_FRAMES = 300
CURVES = 4                      # angle curves plotted (the ones that differ most)
HIGHLIGHT = "#f2b705"
#: Uploads: exactly what :func:`motionviz.data.load_user_file` reads, with its size cap.
MAX_UPLOAD_BYTES = MAX_USER_BYTES
UPLOAD_TYPES = list(USER_EXTENSIONS)
UPLOAD_LABEL = f"Recording ({', '.join(USER_EXTENSIONS)}; at most {MAX_USER_BYTES // 2 ** 20} MB)"

#: What each dataset calls "incorrect" (from the data folder's README, §4-6).
DATASET_INCORRECT: dict[str, str] = {
    "ui-prmd": ("**UI-PRMD**: *incorrect* executions are the same healthy subjects **deliberately performing a "
                "wrong version** of the exercise, 10 repetitions each; the dataset does not say how each wrong "
                "version deviates, so the typical deviation below is measured from the training subjects' joint "
                "angles."),
    "irds": ("**IntelliRehabDS**: the **patients' own repetitions**, each labelled correct (1) or incorrect (2) "
             "in the dataset (upstream also has 3 = poorly executed, absent here). Unlike UI-PRMD, where "
             "healthy subjects perform a wrong version on purpose, an incorrect repetition is a patient's own "
             "attempt: the errors are natural, not simulated. Few exist (1–9 per gesture in training), so the "
             "model's incorrect executions of this dataset rest on little data."),
    "kimore": ("**KIMORE** has no correct/incorrect label: every execution carries a **clinical quality score** "
               "(0–100, higher is better; patients' medians 37–64, healthy subjects' 79–90)."),
}

#: The typical deviation of UI-PRMD's incorrect executions: median over the training subjects' correct ->
#: incorrect executions of the joint angle's peak (or lowest) value (motionviz.analysis.angles), the largest
#: differences relative to their spread.
EXERCISE_INCORRECT: dict[str, str] = {
    "ui-prmd:m01": "a shallower squat (knee flexion peak ≈ 125° → 106°) with more forward trunk lean (32° → 48°)",
    "ui-prmd:m02": "the trunk leans forward (4° → 15°) and the lifted knee bends less (107° → 85°)",
    "ui-prmd:m03": "the trunk leans forward (5° → 17°) and the front hip flexes more (18° → 63°)",
    "ui-prmd:m04": "a shallower lunge (hip flexion peak 81° → 62°) with the arms held differently",
    "ui-prmd:m05": "more hip flexion (≈ 111° → 125°) and forward trunk lean (30° → 42°) to get up",
    "ui-prmd:m06": "the trunk leans forward (1° → 9°) and the arms move (shoulder elevation 84° → 100°)",
    "ui-prmd:m07": "the arm is raised less high sideways (shoulder elevation peak 152° → 128°)",
    "ui-prmd:m08": "less shoulder extension (lowest flexion −45° → −24°), the other arm held lower",
    "ui-prmd:m09": "the upper arm is held lower (shoulder elevation ≈ 83° → 70°) while rotating",
    "ui-prmd:m10": "the arm is raised less high in the scapular plane (abduction peak 104° → 80°)",
}

def _titles() -> dict[str, str]:
    return dict(LABEL_TITLES)


def exercise_choices(gen: Any) -> list[tuple[str, str]]:
    """(title (label), label) of the exercises with correctness that the generator knows."""
    known = set(gen.labels)
    t = _titles()
    return [(f"{t.get(l, l)} ({l})", l) for l in CORRECTNESS_LABELS if not known or l in known]


def incorrect_meaning(label: str | None) -> str:
    """Markdown: what 'incorrect' means for the exercise's dataset (and its typical deviation)."""
    if not label:
        return ""
    ds = label.split(":", 1)[0]
    text = DATASET_INCORRECT.get(ds, "")
    if label in EXERCISE_INCORRECT:
        text += f"  \nTypical incorrect execution of this exercise: {EXERCISE_INCORRECT[label]}."
    return text


def incorrect_terms() -> str:
    """Markdown: what 'incorrect' (or the score) means in every dataset with correctness labels or scores."""
    return "\n\n".join(DATASET_INCORRECT[d] for d in ("ui-prmd", "irds", "kimore"))


def _test_recordings(label: str, data_root: Path | None) -> list[Motion]:
    if not label or data_root is None:
        return []

    ds = label.split(":", 1)[0]
    return [m for m in data.load_corpus("test", datasets=[ds], root=data_root) if m.labels.label == label]


def recording_choices(label: str | None, data_root: Path | None) -> list[tuple[str, int]]:
    """(title, index) of the real test recordings of ``label`` (held-out subjects), incorrect ones first."""
    ms = _test_recordings(label or "", data_root)
    order = sorted(range(len(ms)), key=lambda i: (ms[i].labels.correct is not False, i))
    out = []
    for i in order:
        lab = ms[i].labels
        state = "incorrect" if lab.correct is False else ("correct" if lab.correct else "unrated")
        out.append((f"{lab.subject} · {state} · {Path(lab.source).name if lab.source else i} · "
                    f"{ms[i].num_frames} frames", i))
    return out


def _read_upload(path: Any) -> Motion:
    p = uploaded_motion_file(path, "recording", MAX_USER_BYTES)
    try:
        m = load_user_file(p)
    except UserError:
        raise
    except (ValueError, OSError, EOFError, KeyError, IndexError, UnicodeDecodeError) as e:
        raise UserError(f"could not read {p.name} ({type(e).__name__})") from None       # no file content
    return m.with_labels(source=p.name)


def _generate(gen: Any, label: str, correct: bool, seed: int, frames: int, steps: int, progress=None) -> Motion:
    req = Request(model=gen.name, label=label, correct=correct, seed=seed, frames=frames, steps=steps, num=1)
    return gen.generate(req, progress)[0]


# ---- figures -------------------------------------------------------------------------------------
def player_view(a: Motion, b: Motion, names: tuple[str, str], view: str, highlight: Sequence[str],
                roles: tuple[str, str] = ("correct", "incorrect")) -> str:
    """The player value of the two time-aligned motions (overlaid or side by side, one time line), the
    joints in ``highlight`` drawn larger in gold in both."""
    return player_value([a, b], titles=list(names), roles=list(roles), layout="grid" if view == "pair" else "overlay",
                        highlights=[list(highlight), list(highlight)], highlight_label="joints that differ most",
                        caption="Time-aligned by dynamic time warping on joint angles: both play on one time line.")


def _cap(s: str) -> str:
    """Upper-case the first letter only (str.capitalize lower-cases the rest: file names, subject ids)."""
    return s[:1].upper() + s[1:]


def angle_curves_figure(cmp: Any, keys: Sequence[str], names: tuple[str, str], fps: float = 20.0) -> go.Figure:
    """Joint-angle curves (degrees) of both motions over the aligned time, one panel per angle in
    ``keys``; the normal band of real correct executions (``cmp.band`` {key: (K, 3)}: p5 / p50 / p95 per
    time-normalised frame, aligned to the reference) is shaded between its p5 and p95 curves, its median
    dotted."""
    keys = list(keys)
    if not keys:
        raise UserError("no joint angle to plot")
    fig = make_subplots(rows=len(keys), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[_cap(ANGLE_BY_KEY[k].title) for k in keys])
    i, j = cmp.path[:, 0], cmp.path[:, 1]
    t = np.round(np.arange(len(cmp.path)) / fps, 3).tolist()

    def ys(v: np.ndarray) -> list[float | None]:
        return [None if not np.isfinite(x) else round(float(x), 2) for x in v]

    band = cmp.band or {}
    shown = False
    for r, k in enumerate(keys, start=1):
        if k in band and np.isfinite(band[k]).any():
            b = band[k]                                                          # (K, 3) p5 / p50 / p95
            fig.add_trace(go.Scatter(x=t, y=ys(b[:, 2]), mode="lines", line=dict(width=0), hoverinfo="skip",
                                     showlegend=False, legendgroup="normal"), row=r, col=1)
            fig.add_trace(go.Scatter(x=t, y=ys(b[:, 0]), mode="lines", line=dict(width=0), fill="tonexty",
                                     fillcolor="rgba(59,155,74,0.20)", name="correct executions (p5–p95)",
                                     legendgroup="normal", showlegend=not shown, hoverinfo="skip"), row=r, col=1)
            fig.add_trace(go.Scatter(x=t, y=ys(b[:, 1]), mode="lines", name="median of correct executions",
                                     line=dict(color="rgba(59,155,74,0.9)", width=1, dash="dot"),
                                     legendgroup="normal", showlegend=not shown,
                                     hovertemplate="%{y:.0f}°<extra>median of correct</extra>"), row=r, col=1)
            shown = True
        for n, (vals, idx, col) in enumerate(((cmp.ref_angles[k], i, PALETTE[0]), (cmp.other_angles[k], j, PALETTE[1]))):
            fig.add_trace(go.Scatter(x=t, y=ys(np.asarray(vals)[idx]), mode="lines", name=names[n],
                                     legendgroup=names[n], showlegend=r == 1,
                                     line=dict(color=col, width=2.5 if n else 2),
                                     hovertemplate="%{y:.0f}°<extra>" + names[n] + "</extra>"), row=r, col=1)
        fig.update_yaxes(title_text="deg", row=r, col=1)
    fig.update_xaxes(title_text="aligned time (s)", row=len(keys), col=1)
    if shown:
        note = (f"shaded: {cmp.normal.n} real correct executions, p5–p95 at each moment of the repetition "
                "(time-normalised, aligned to the reference)")
    else:
        note = "no normal range of real correct executions for this exercise: nothing shaded"
    fig.update_layout(height=170 * len(keys) + 110, margin=dict(l=50, r=10, t=60, b=40),
                      title=dict(text=note, x=0.5, font=dict(size=12)),
                      legend=dict(orientation="h", x=0.5, xanchor="center", y=-0.08, yanchor="top"),
                      uirevision="motionviz")
    return fig


def _diff_bars(cmp: Any, n: int = 10) -> go.Figure:
    keys = [k for k in cmp.ranked_angles() if np.isfinite(cmp.angle_diff[k])][:n]
    return joint_error_figure([ANGLE_BY_KEY[k].title for k in keys], [cmp.angle_diff[k] for k in keys],
                              title="Mean joint-angle difference after time alignment", unit="°")


def _summary_markdown(cmp: Any, names: tuple[str, str], label: str) -> str:
    t = _titles().get(label, label)
    lines = []
    if cmp.normal is not None:
        where = f", {cmp.normal.position} patients" if cmp.normal.position else ""
        lines.append(f"**{_cap(names[1])}** against the normal range of **{cmp.normal.n} real correct "
                     f"executions** of {t} (training subjects{where}; reported: at least {MARGIN_DEG:.0f}° beyond "
                     "their p5–p95):")
    else:
        lines.append(f"**{_cap(names[1])}** against **{names[0]}** (no normal range of {t}: it needs five or more "
                     f"real correct executions from two or more training subjects; reported: at least "
                     f"{MARGIN_DEG:.0f}° from the reference):")
    lines.append(cmp.summary)
    if cmp.keys:
        what = ("where incorrect training executions differ most from correct ones; only their direction is "
                "reported" if any(k.direction for k in cmp.keys) else "the angles that move in correct executions")
        lines.append(f"\n*Key angles* of this exercise ({what}): "
                     + ", ".join(dict.fromkeys(ANGLE_BY_KEY[k.key].title for k in cmp.keys)) + ".")
    lines.append(f"\n**Joints that differ most** (those of the findings first, then by angle difference after time "
                 f"alignment): {', '.join(joint_label(j) for j in cmp.top_joints)} (large gold dots in the 3D player).")
    if cmp.normal is not None:
        if cmp.reference_findings:
            lines.append(f"\nNote: {names[0]} itself lies outside the normal range for "
                         + "; ".join(f.sentence[0].lower() + f.sentence[1:] for f in cmp.reference_findings[:2]) + ".")
        else:
            lines.append(f"\n{_cap(names[0])} lies within the normal range of correct executions.")
    lines.append("\n*Generated motions and the datasets' few subjects are not clinical advice.*")
    return "\n".join(lines)


# ---- the callback --------------------------------------------------------------------------------
def difference_view(gen: Any, mode: str, label: str | None, recording: Any, upload: Any, seed: Any, frames: Any,
                    steps: Any, view: str, data_root: Path | None, progress=None) -> tuple[Any, ...]:
    """Run one comparison.  ``frames`` applies to the generated pair only; against a recording the reference
    has the recording's length.  Returns (player value (JSON), angle-curves figure, difference bars, summary
    markdown, [reference, other] motions as compared)."""
    cb = progress or (lambda f, t: None)
    if mode not in (GENERATED, REAL, UPLOAD):
        raise UserError("choose what to compare")
    if not label:
        raise UserError("choose an exercise")
    if label not in CORRECTNESS_LABELS:
        raise UserError(f"{label} has no correct/incorrect executions to compare; choose another exercise")
    seed_ = to_int(seed, "seed", 0, MAX_SEED)
    frames_ = to_int(frames, "frames", 40, MAX_GENERATED_FRAMES)
    steps_ = to_int(steps, "sampling steps", 1, 200)
    view = view if view in ("overlay", "pair") else "overlay"
    if mode == GENERATED:
        cb(0.05, "generating the correct execution")
        ref = _generate(gen, label, True, seed_, frames_, steps_)
        cb(0.35, "generating the incorrect execution")
        other = _generate(gen, label, False, seed_, frames_, steps_)
        names = ("generated correct", "generated incorrect")
        roles = ("correct", "incorrect")
    else:
        if mode == REAL:
            ms = _test_recordings(label, data_root)
            if not ms:
                raise UserError("no real recordings of this exercise are available (is the data folder there?)")
            idx = to_int(recording if recording not in (None, "") else 0, "recording", 0, len(ms) - 1)
            other = ms[idx]
            state = "incorrect" if other.labels.correct is False else "correct"
            names = ("generated correct reference", f"real {state} recording ({other.labels.subject})")
            roles = ("correct", "incorrect" if state == "incorrect" else "real")
        else:
            other = _read_upload(upload)
            names = ("generated correct reference", f"uploaded recording ({other.labels.source})")
            roles = ("correct", "uploaded recording")
        other = on_common(other)
        n = int(np.clip(other.num_frames, 40, MAX_GENERATED_FRAMES))
        cb(0.1, "generating the correct reference")
        ref = _generate(gen, label, True, seed_, n, steps_)
    ref, other = on_common(ref), on_common(other).with_labels(label=label)
    cb(0.6, "normal range of real correct executions")
    normal, keys = None, ()
    if data_root is not None:
        try:
            normal = normal_range_for(label, data_root, position_of(other))
            keys = key_angles_for(label, data_root)
        except (UserError, OSError) as e:
            log.warning("difference: no normal range for %s: %s", label, e)
    cb(0.75, "time alignment")
    cmp = compare_executions(ref, other, normal, keys=keys, label=label)
    a, b, _ = warp_pair(cmp)
    keys = [k for k in cmp.ranked_angles() if np.isfinite(cmp.angle_diff[k])]
    # the angles of the summary first, then the ones that differ most
    order = list(dict.fromkeys([f.key for f in cmp.findings] + keys))[:CURVES]
    cb(0.9, "drawing")
    player = player_view(a, b, names, view, cmp.top_joints, roles)
    curves = angle_curves_figure(cmp, order, names)
    md = _summary_markdown(cmp, names, label)
    log.info("difference %s %s: %s", mode, label, describe_comparison(cmp)["top_joints"])
    return player, curves, _diff_bars(cmp), md, [ref.with_labels(label=label), other.with_labels(label=label)]


# ---- layout --------------------------------------------------------------------------------------
def build(ctx: AppContext) -> None:
    try:
        gen = registry.load_generator("diffusion", ctx.checkpoint_dir)
    except UserError as e:
        gr.Markdown(f"**Correct vs incorrect** needs the diffusion model: {e}")
        return
    gens = {"diffusion": gen}
    if "vae" in ctx.models:                     # no VAE checkpoint: the tab uses the diffusion model only
        try:
            vae = registry.load_generator("vae", ctx.checkpoint_dir)
            if exercise_choices(vae):
                gens["vae"] = vae
        except UserError as e:
            log.warning("difference: the VAE did not load (%s)", e)
    choices = exercise_choices(gen)
    if not choices:
        gr.Markdown("**Correct vs incorrect**: the diffusion model knows no exercise with correct and incorrect "
                    "executions.")
        return
    default = next((v for _, v in choices if v == "ui-prmd:m01"), choices[0][1])
    root = ctx.data_root
    rec0 = recording_choices(default, root) if root is not None else []
    heavy = dict(concurrency_id=CPU_QUEUE, concurrency_limit=CPU_LIMIT)

    gr.Markdown(
        "**What differs between a correct and an incorrect execution?** Generate both with the diffusion "
        "model" + (" or the VAE" if "vae" in gens else "") + ", or compare a real or uploaded recording with a "
        "generated correct reference. The two are "
        "time-aligned (dynamic time warping on joint angles), the joints that differ most are enlarged in gold, "
        "and the joint-angle curves show the band of real correct executions over the repetition. The summary "
        "names the exercise's key angles that lie at least 5° beyond the range of real correct executions.")
    with gr.Accordion("What “incorrect” means in each dataset", open=False):
        gr.Markdown(incorrect_terms(), elem_id="diff-terms")
    with gr.Row(elem_classes=["mv-split"], equal_height=False):
        with gr.Column(scale=1, min_width=300):
            with controls():
                label = gr.Dropdown(choices, value=default, label="Exercise", elem_id="diff-exercise")
                meaning = gr.Markdown(incorrect_meaning(default), elem_id="diff-meaning")
                model = gr.Radio([c for c in GENERATORS if c[1] in gens], value="diffusion", label="Generator",
                                 info="Makes the generated pair or the correct reference", elem_id="diff-model",
                                 visible=len(gens) > 1)
                mode = gr.Radio(MODES, value=GENERATED, label="Compare", elem_id="diff-mode")
                recording = gr.Dropdown(rec0, value=rec0[0][1] if rec0 else None,
                                        label="Real recording (test subjects)", elem_id="diff-recording",
                                        visible=False, allow_custom_value=True)
                upload = gr.File(label=UPLOAD_LABEL, type="filepath", file_types=UPLOAD_TYPES,
                                 elem_id="diff-upload", visible=False)
                with gr.Row():
                    seed = seed_box(0, elem_id="diff-seed")
                    frames = gr.Slider(40, MAX_GENERATED_FRAMES, value=120, step=1, label="Frames (20 fps)",
                                       info="Generated pair only; a recording's reference has the recording's length",
                                       elem_id="diff-frames")
                steps = gr.Slider(5, 100, value=20, step=1, label="Diffusion sampling steps", elem_id="diff-steps")
                view = gr.Radio(VIEWS, value="overlay", label="3D view", elem_id="diff-view")
            go_btn = gr.Button("Compare", variant="primary", elem_id="diff-run")
        with gr.Column(scale=3):
            summary = gr.Markdown(elem_id="diff-summary")
            player = player_view_component(elem_id="diff-plot")
            view_export(player, "diff-plot")
            curves = gr.Plot(label="Joint angles over the aligned time", elem_id="diff-curves")
            bars = gr.Plot(label="Which angles differ", elem_id="diff-bars")

    @user_error
    def on_exercise(label_):
        recs = recording_choices(label_, root) if root is not None else []
        return incorrect_meaning(label_), gr.Dropdown(choices=recs, value=recs[0][1] if recs else None)

    def on_mode(mode_):
        # the frames apply to the generated pair only (a recording's reference takes its length)
        return (gr.Dropdown(visible=mode_ == REAL), gr.File(visible=mode_ == UPLOAD),
                gr.Slider(visible=mode_ == GENERATED))

    def on_model(model_):
        return gr.Slider(visible=model_ == "diffusion")          # the VAE takes no sampling steps

    @user_error
    def on_run(mode_, label_, rec_, up_, seed_, frames_, steps_, view_, motions_, model_="diffusion",
               progress=gr.Progress()):
        if model_ not in gens:
            raise UserError(f"choose a generator: {', '.join(gens)}")
        fig, cur, bar, md, ms = difference_view(gens[model_], mode_, label_, rec_, up_, seed_, frames_, steps_,
                                                view_, root, progress_callback(progress))
        return fig, cur, bar, md, add_motions(motions_, ms)

    motions_state = ctx.motions if ctx.motions is not None else gr.State([])
    label.input(on_exercise, [label], [meaning, recording], api_name="difference_exercise")
    mode.input(on_mode, [mode], [recording, upload, frames], api_name="difference_mode")
    model.input(on_model, [model], [steps], api_name="difference_model")
    go_btn.click(on_run, [mode, label, recording, upload, seed, frames, steps, view, motions_state, model],
                 [player, curves, bars, summary, motions_state], api_name="difference_compare", **heavy)
