"""The "Text → motion" tab: the text/exercise-conditioned diffusion model.

* Generate: a plain-language description (physiotherapist-style examples), an optional exercise,
  correct / incorrect / unspecified execution, guidance scale, denoising steps, frames, seed and number of
  samples -> animated 3D views and downloads; the motions join the session list (``ctx.motions``) so the
  other tabs (inpaint, compare, mesh ...) can use them.
* Edit: pick a session motion (generated, or loaded in the Data tab), keep its first / last frames
  (in-betweening) and/or chosen body parts, and regenerate the rest with the same text/exercise settings.

The callbacks' work is done by module-level functions (:func:`generate_motions`, :func:`edit_motions`,
:func:`downloads`) so that they can be tested without a browser.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from dataclasses import replace
from typing import Any, Callable, Sequence

import gradio as gr
import numpy as np

from ..core.errors import UserError
from ..core.limits import LIMITS, clean_text
from ..core.motion import DEFAULT_FPS, Motion
from ..core.representation import keep_mask
from ..core.skeleton import COMMON
from ..data.labels import LABEL_TITLES
from ..export import export_motion
from ..generators import registry
from ..generators.registry import DEFAULT_STEPS, Request, available_models
from ..generators.text_match import understand
from ..io.files import write_npy
from .common import (
    CPU_LIMIT,
    CPU_QUEUE,
    EXPORT_FORMATS,
    MAX_SEED,
    AppContext,
    add_motions,
    check_cost,
    correctness_info,
    export_dir,
    motion_choices,
    pick_motion,
    progress_callback,
    resolve_seed,
    seed_box,
    to_float,
    to_int,
    user_error,
)
from .player import controls, player, player_value, sample_titles, timing_note, view_export

__all__ = ["build", "EXAMPLES", "exercise_choices", "generate_motions", "edit_motions", "downloads",
           "describe_request", "understanding_note", "CORRECT_CHOICES", "PART_CHOICES"]

log = logging.getLogger("motionviz.ui.text")

#: Physiotherapist-style prompts shown as examples: (text, exercise label or "" , execution).
EXAMPLES: list[tuple[str, str, str]] = [
    ("Slowly raise both arms sideways to shoulder height, then lower them.", "", "Unspecified"),
    ("Deep squat: bend both knees and hips as low as possible with the arms overhead, then stand up again.",
     "ui-prmd:m01", "Correct"),
    ("Deep squat with the knees collapsing inwards and the trunk leaning forward.", "ui-prmd:m01", "Incorrect"),
    ("Lift the straight left arm out to the side and over the head, then bring it back down.", "",
     "Unspecified"),
    ("Step forward into an inline lunge, lower the back knee, then return to standing.", "ui-prmd:m03",
     "Unspecified"),
    ("Sit down on a chair and stand up again without using the hands.", "ui-prmd:m05", "Unspecified"),
    ("With both arms extended overhead, bend the trunk to one side and then to the other.", "kimore:ex2",
     "Unspecified"),
    ("Rotate the trunk to the left and to the right, keeping the pelvis still.", "", "Unspecified"),
    ("Stand on one leg and raise the other straight leg forward, then lower it.", "", "Unspecified"),
    ("Walk forward at a steady pace.", "", "Unspecified"),
]

UNSPECIFIED, CORRECT, INCORRECT = "Unspecified", "Correct", "Incorrect"
CORRECT_CHOICES = (UNSPECIFIED, CORRECT, INCORRECT)
NO_EXERCISE = ""
#: Editable body parts (keys of :data:`motionviz.core.skeleton.BODY_PARTS`), with readable names.
PART_CHOICES: list[tuple[str, str]] = [
    ("Torso (pelvis, spine, neck)", "torso"), ("Left arm", "left_arm"), ("Right arm", "right_arm"),
    ("Left leg", "left_leg"), ("Right leg", "right_leg"), ("Both arms", "arms"), ("Both legs", "legs"),
    ("Upper body", "upper_body"), ("Lower body", "lower_body"),
]
UI_LIMITS = {"steps": (1, 200), "frames": (16, 300), "num": (1, 8), "guidance": (0.0, 10.0)}
#: The distilled sampler (``diffusion-fast``): used by default when its checkpoint exists; its step counts.
FAST, FULL = "diffusion-fast", "diffusion"
FAST_STEPS = (1, 2, 4)
FAST_DEFAULT_STEPS = DEFAULT_STEPS[FAST]
MODEL_CHOICES = [("Fast (distilled, 1 step, follows the guidance slider live)", FAST),
                 ("Full diffusion (20+ steps)", FULL)]
#: A request's cost up front: samples x steps x frames (the denoiser's work grows with each); the
#: defaults cost 4 x 20 x 120 = 9,600, the budget allows e.g. 8 x 100 x 300 (every slider at its
#: maximum, 480,000, would take minutes on a shared CPU).
MAX_FRAME_STEPS = 240_000
DEFAULT_FORMATS = ["npy", "json", "bvh"]


# ---------------------------------------------------------------------------------------------
# pure helpers (tested directly)
# ---------------------------------------------------------------------------------------------
def exercise_choices(labels: Sequence[str]) -> list[tuple[str, str]]:
    """Dropdown choices: "(none)" then ``"Title (dataset:id)"`` for each of the model's labels."""
    out = [("(none: text only)", NO_EXERCISE)]
    out += [(f"{LABEL_TITLES.get(lab, lab)} ({lab})", lab) for lab in labels]
    return out


def _correct_value(choice: Any) -> bool | None:
    if choice in (None, "", UNSPECIFIED):
        return None
    if choice == CORRECT:
        return True
    if choice == INCORRECT:
        return False
    raise UserError(f"execution must be one of {', '.join(CORRECT_CHOICES)}, got {choice!r}")


def _clean_text(text: Any) -> tuple[str, str]:
    """(cleaned text, note for the user or "")."""
    if text is not None and not isinstance(text, str):
        raise UserError("the description must be text")
    t = clean_text(text or "")
    if len(t) > LIMITS["text_chars"]:
        raise UserError(f"the description is {len(t):,} characters long; the limit is {LIMITS['text_chars']} "
                        f"(one or two sentences work best)")
    note = ""
    if t and any(ord(ch) > 127 for ch in t):
        letters = [ch for ch in t if ch.isalpha()]
        latin = all("LATIN" in unicodedata.name(ch, "") for ch in letters)
        note = ("The text encoder was trained on English descriptions: other languages work, but the model "
                "follows them less closely." if latin else
                "The text encoder was trained on English descriptions; text in this script is understood "
                "poorly — an English description or an exercise from the list works better.")
    return t, note


def _request(text: Any, exercise: Any, correct: Any, guidance: Any, steps: Any, frames: Any, num: Any,
             seed: Any, sampler: str = "ddim", model: str = "diffusion"):
    t, note = _clean_text(text)
    lo, hi = UI_LIMITS["guidance"]
    g = to_float(guidance, "guidance scale", lo, hi)
    if model == FAST:
        k = to_int(steps, "steps", 1, max(FAST_STEPS))
        if k not in FAST_STEPS:
            raise UserError(f"the fast model samples in {', '.join(map(str, FAST_STEPS))} steps, got {k}")
    req = Request(model=model, text=t, label=(exercise or None), correct=_correct_value(correct),
                  frames=120 if frames is None else to_int(frames, "frames", *UI_LIMITS["frames"]),
                  steps=to_int(steps, "steps", *UI_LIMITS["steps"]), guidance=g,
                  num=to_int(num, "number of samples", *UI_LIMITS["num"]), seed=to_int(seed, "seed", 0, MAX_SEED),
                  sampler=sampler if sampler in ("ddim", "ddpm") else "ddim")
    req = req.validated()
    check_cost("text → motion", req.num * req.steps * req.frames, MAX_FRAME_STEPS, "frame-steps",
               "ask for fewer samples, steps or frames")
    return req, note


def _md_escape(text: str) -> str:
    """User text shown literally inside Markdown (no emphasis, links or HTML from it)."""
    return "".join("\\" + ch if ch in "\\`*_{}[]()<>#+!|~" else ch for ch in text)


def understanding_note(text: Any, labels: Sequence[str] | None = None) -> str:
    """Markdown: the known exercises (of ``labels``, the model's vocabulary) closest to the description,
    with their similarity, and a clear notice when it is far from every training description
    (:func:`motionviz.generators.text_match.understand`).  "" for empty text or when the MiniLM encoder is missing."""
    t = clean_text(text) if isinstance(text, str) else ""
    if not t:
        return ""
    try:
        return understand(t, k=3, labels=list(labels) if labels else None).markdown()
    except UserError as e:
        log.warning("text tab: no description matching: %s", e)
        return ""


def describe_request(req: Any, note: str = "", seconds: float | None = None, edited: str = "",
                     understood: str = "", model_seconds: float | None = None) -> str:
    """Markdown summary of what was generated (``understood``: :func:`understanding_note`, shown on its
    own line; a far-from-everything notice comes first).  ``seconds`` is the whole request on the server
    (what the user waits for, besides the network), ``model_seconds`` the sampling part of it."""
    cond = []
    if req.text:
        cond.append(f"text “{_md_escape(req.text)}”")
    if req.label:
        cond.append(f"exercise **{LABEL_TITLES.get(req.label, req.label)}** (`{req.label}`)")
    if req.correct is not None:
        cond.append("correct execution" if req.correct else "incorrect execution")
    what = ", ".join(cond) if cond else "no condition (unconditional sample: a random movement)"
    lines = [f"{edited or f'{req.num} motion(s) of {req.frames} frames'} · {what}",
             f"{req.sampler.upper()} {req.steps} step{'' if req.steps == 1 else 's'} · guidance {req.guidance:g} "
             f"· seed {req.seed}"
             + (f" · {timing_note(seconds, model_seconds)}" if seconds is not None else "")]
    if req.num > 1:
        lines.append(f"Each sample has its own seed ({req.seed} to {req.seed + req.num - 1}, in its title): asking "
                     "for one sample with that seed gives the same motion.")
    if note:
        lines.append(f"*{note}*")
    if understood:
        lines = [understood] + lines if understood.startswith("⚠️") else lines + [understood]
    return "  \n".join(lines)


def generate_motions(gen: Any, text: Any, exercise: Any, correct: Any, guidance: Any, steps: Any, frames: Any,
                     num: Any, seed: Any, sampler: str = "ddim",
                     progress: Callable[[float, str], None] | None = None) -> tuple[list[Motion], Any, str]:
    """(motions, validated request, note) for the generate button."""
    req, note = _request(text, exercise, correct, guidance, steps, frames, num, seed, sampler, gen.name)
    if req.label and req.label not in gen.labels:
        raise UserError(f"the model does not know the exercise {req.label!r}; pick one from the list")
    gen.check(req)                                  # before the text encoder loads
    cond_text = gen.condition_text(req)
    if cond_text and not req.text:
        used = f"The exercise's description was used as the text: “{_md_escape(cond_text)}”."
        note = f"{note} {used}".strip()
    _warm_text_encoder(gen, cond_text, progress)
    motions = gen.generate(req, progress)
    return motions, req, note


def _warm_text_encoder(gen: Any, text: str, progress: Callable[[float, str], None] | None) -> None:
    """Embed ``text`` before sampling, so the one-off loading of the text encoder (seconds, first request
    only) shows as its own progress message instead of a stuck 0 %."""
    if not text or "text" not in gen.tasks:
        return
    if progress is not None and not gen.text_encoder_loaded:
        progress(0.0, "loading the text encoder (first request only)")
    gen.encoder.encode([text])


def _editable(motion: Motion) -> Motion:
    """A session motion on the common skeleton at 20 fps (what the diffusion model edits)."""
    m = motion
    if m.skeleton.name != COMMON.name:
        m = m.retarget(COMMON)
    if abs(m.fps - DEFAULT_FPS) > 1e-6:
        m = m.resample(DEFAULT_FPS)
    lo, hi = LIMITS["frames"]
    if m.num_frames < lo:
        raise UserError(f"the motion has {m.num_frames} frames at {DEFAULT_FPS:g} fps; editing needs at least {lo}")
    if m.num_frames > hi:
        raise UserError(f"the motion has {m.num_frames} frames at {DEFAULT_FPS:g} fps; editing handles at most "
                        f"{hi} — crop it first (Data tab) or pick a shorter one")
    if not m.observed.any(axis=0).all():
        missing = [COMMON.joints[j] for j in np.flatnonzero(~m.observed.any(axis=0))]
        raise UserError(f"the motion never shows {', '.join(missing[:4])}; fill it in the Inpaint tab first")
    return m


def edit_motions(gen: Any, motion: Motion, keep_first: Any, keep_last: Any, parts: Sequence[str] | None,
                 text: Any, exercise: Any, correct: Any, guidance: Any, steps: Any, num: Any, seed: Any,
                 sampler: str = "ddim", progress: Callable[[float, str], None] | None = None
                 ) -> tuple[Motion, list[Motion], Any, str]:
    """(source on the common skeleton, edited motions, request, note): keep the first/last frames and/or
    the chosen body parts of ``motion`` and regenerate the rest."""
    src = _editable(motion)
    T = src.num_frames
    kf = to_int(keep_first or 0, "frames kept at the start", 0, T)
    kl = to_int(keep_last or 0, "frames kept at the end", 0, T)
    mask = keep_mask(T, kf, kl, list(parts or []))
    req, note = _request(text, exercise, correct, guidance, steps, None, num, seed, sampler, gen.name)
    if req.label and req.label not in gen.labels:
        raise UserError(f"the model does not know the exercise {req.label!r}; pick one from the list")
    req = replace(req, source=src, keep=mask, frames=T).validated()
    _warm_text_encoder(gen, req.text, progress)
    motions = gen.generate(req, progress)
    return src, motions, req, note


def downloads(motions: Sequence[Motion], formats: Sequence[str] | None,
              progress: Callable[[float, str], None] | None = None) -> list[str]:
    """Files for ``gr.File``: one ``samples.npy`` (N, T, 15, 3) float32 with every motion, then each
    motion in the chosen formats."""
    if not motions:
        raise UserError("generate a motion first")
    fmts = [f for f in (formats or []) if f]
    d = export_dir()
    paths = []
    if len({m.num_frames for m in motions}) == 1 and len({len(m.skeleton) for m in motions}) == 1:
        arr = np.stack([m.joints for m in motions]).astype(np.float32)
        paths.append(str(write_npy(d / "samples.npy", arr)))

    if fmts:
        bad = [f for f in fmts if f not in EXPORT_FORMATS]
        if bad:
            raise UserError(f"unknown format {bad[0]!r}; choose from {', '.join(EXPORT_FORMATS)}")
        n = len(motions) * len(fmts)
        for i, m in enumerate(motions):
            words = "_".join(m.labels.text.split()[:5]) if m.labels.text else ""
            stem = f"{i + 1:02d}_{m.labels.label or words or 'motion'}"
            stem = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "-_" else "_" for ch in stem)[:60]
            for k, fmt in enumerate(fmts):
                if progress is not None:
                    progress((i * len(fmts) + k) / n, f"writing motion {i + 1} ({fmt})")
                paths.append(str(export_motion(m, fmt, d, stem=stem)))
    return paths


def _figure(motions: Sequence[Motion], titles: Sequence[str], roles: Sequence[str | None] | None = None) -> str:
    """The player value for generated motions (one cell each, the same scale for all)."""
    return player_value(list(motions), titles=list(titles), roles=roles)


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# ---------------------------------------------------------------------------------------------
# the tab
# ---------------------------------------------------------------------------------------------
def build(ctx: AppContext) -> None:
    try:
        gen = registry.load_generator(FULL, ctx.checkpoint_dir)
    except UserError as e:
        gr.Markdown(f"**The diffusion model is not available:** {e}", elem_id="text-missing")
        return
    gens = {FULL: gen}
    if FAST in available_models(ctx.checkpoint_dir):
        try:
            gens[FAST] = registry.load_generator(FAST, ctx.checkpoint_dir)
        except UserError as e:            # a broken fast checkpoint leaves the full model usable
            log.warning("text tab: the fast model is not available: %s", e)
    default_model = FAST if FAST in gens else FULL

    def pick(model_: Any) -> Any:
        if model_ not in gens:
            raise UserError(f"model must be one of {', '.join(gens)}, got {model_!r}")
        return gens[model_]

    def steps_of(model_: Any, steps_: Any, fast_steps_: Any) -> Any:
        return fast_steps_ if model_ == FAST else steps_
    labels = list(gen.labels)
    choices = exercise_choices(labels)
    has_state = ctx.motions is not None
    motions_state = ctx.motions if has_state else gr.State([])
    heavy = dict(concurrency_id=CPU_QUEUE, concurrency_limit=CPU_LIMIT)

    gr.Markdown(
        "**Text → motion (diffusion).** Describe an exercise in plain words — and/or pick an exercise and "
        "correct or incorrect execution — and get 3D motions on the 15-joint skeleton at 20 fps. Leave "
        "everything empty for an unconditional sample. Higher guidance follows the description more "
        "closely. The fast model (distilled, the default when its checkpoint is there) samples in one step, so "
        "releasing the guidance slider regenerates at once; the full model takes 20 or more steps. Generated "
        "motions are added to the session, so the other tabs can use them.", elem_id="text-intro")
    with gr.Row(equal_height=False, elem_classes=["mv-split"]):
        with gr.Column(scale=1, min_width=320):
            with controls():
                text = gr.Textbox(label="Describe the motion", lines=3, max_lines=6, max_length=500,
                                  placeholder=("e.g. slowly raise both arms sideways to shoulder height, "
                                               "then lower them"),
                                  elem_id="text-prompt")
                exercise = gr.Dropdown(choices, value=NO_EXERCISE, label="Exercise (optional)", elem_id="text-exercise",
                                       interactive=True)
                correct = gr.Radio(list(CORRECT_CHOICES), value=UNSPECIFIED, label="Execution", info=correctness_info(),
                                   elem_id="text-correct")
                model = gr.Radio([c for c in MODEL_CHOICES if c[1] in gens], value=default_model, label="Model",
                                 elem_id="text-model", visible=len(gens) > 1)
                guidance = gr.Slider(*UI_LIMITS["guidance"], value=2.5, step=0.1, label="Guidance scale",
                                     elem_id="text-guidance")
                fast_steps = gr.Radio(list(FAST_STEPS), value=FAST_DEFAULT_STEPS,
                                      label="Steps (fast model: 1 is its best, see the model card)",
                                      elem_id="text-fast-steps", visible=default_model == FAST)
                with gr.Row():
                    steps = gr.Slider(*UI_LIMITS["steps"], value=20, step=1, label="Denoising steps",
                                      elem_id="text-steps", visible=default_model == FULL)
                    frames = gr.Slider(*UI_LIMITS["frames"], value=120, step=2, label="Frames (20 fps)",
                                       elem_id="text-frames")
                with gr.Row():
                    num = gr.Slider(*UI_LIMITS["num"], value=4, step=1, label="Number of samples", elem_id="text-num")
                    seed = seed_box(0, "Seed", elem_id="text-seed")
                with gr.Row():
                    randomize = gr.Checkbox(False, label="Random seed", elem_id="text-random")
                    sampler = gr.Radio(["ddim", "ddpm"], value="ddim", label="Sampler", elem_id="text-sampler")
                understood_md = gr.Markdown("", elem_id="text-understood")
            gen_btn = gr.Button("Generate", variant="primary", elem_id="text-generate")
            valid_examples = [[t, ex if ex in labels else NO_EXERCISE, c] for t, ex, c in EXAMPLES]
            gr.Examples(valid_examples, inputs=[text, exercise, correct], label="Examples (click to use)",
                        examples_per_page=5, cache_examples=False, api_name="text_load_example",
                        elem_id="text-examples")
        with gr.Column(scale=2):
            info = gr.Markdown("", elem_id="text-info")
            plot = player(elem_id="text-plot")
            view_export(plot, "text-plot")
            formats = gr.CheckboxGroup(list(EXPORT_FORMATS), value=DEFAULT_FORMATS, label="Download formats",
                                       elem_id="text-formats")
            files = gr.File(label="Downloads (samples.npy = all motions, (N, T, 15, 3))", file_count="multiple",
                            interactive=False, elem_id="text-files")
    with gr.Accordion("Edit a motion: in-betweening and body parts", open=False, elem_id="text-edit"):
        gr.Markdown("Keep the first and/or last frames of a motion (in-betweening) or chosen body parts, and "
                    "regenerate the rest with the description, exercise, execution, guidance, steps, seed and "
                    "number of samples above. Any motion of this session can be edited: generated here or "
                    "loaded in the Data tab.")
        with gr.Row():
            src_motion = gr.Dropdown([], value=None, label="Motion to edit", elem_id="text-edit-motion",
                                     allow_custom_value=False, scale=3)
            refresh = gr.Button("Refresh", size="sm", elem_id="text-edit-refresh", scale=1)
        with gr.Row():
            keep_first = gr.Slider(0, 300, value=20, step=1, label="Keep the first N frames",
                                   elem_id="text-keep-first")
            keep_last = gr.Slider(0, 300, value=20, step=1, label="Keep the last N frames",
                                  elem_id="text-keep-last")
        parts = gr.CheckboxGroup(PART_CHOICES, value=[], label="Keep these body parts (all frames)",
                                 elem_id="text-keep-parts")
        edit_btn = gr.Button("Regenerate the rest", variant="primary", elem_id="text-edit-run")
        edit_info = gr.Markdown("", elem_id="text-edit-info")
        edit_plot = player(elem_id="text-edit-plot")
        edit_files = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="text-edit-files")

    # ---- callbacks ------------------------------------------------------------------------------
    def _choices(motions_: list[Motion] | None, select_newest: bool = True):
        ch = motion_choices(motions_)
        return gr.Dropdown(choices=ch, value=ch[0][1] if (ch and select_newest) else None)

    @user_error
    def on_generate(text_, exercise_, correct_, guidance_, steps_, frames_, num_, seed_, randomize_, sampler_,
                    formats_, motions_, model_=default_model, fast_steps_=FAST_DEFAULT_STEPS, progress=gr.Progress()):
        cb = progress_callback(progress)
        seed_ = resolve_seed(seed_, bool(randomize_))
        t0 = time.perf_counter()
        ms, req, note = generate_motions(pick(model_), text_, exercise_, correct_, guidance_,
                                         steps_of(model_, steps_, fast_steps_), frames_, num_, seed_,
                                         sampler_, lambda f, s="": cb(0.85 * f, s))
        model_s = time.perf_counter() - t0
        cb(0.88, "drawing")
        head = _short(req.text, 40) if req.text else (req.label or "unconditional")
        fig = _figure(ms, sample_titles(seed_, len(ms), head if len(ms) == 1 else ""))
        cb(0.92, "writing downloads")
        paths = downloads(ms, formats_)
        new = add_motions(motions_, ms)
        understood = understanding_note(req.text, labels)
        cb(1.0, "done")
        seconds = time.perf_counter() - t0
        return (fig, describe_request(req, note, seconds, understood=understood, model_seconds=model_s), paths,
                seed_, new, _choices(new))

    @user_error
    def on_edit(index_, keep_first_, keep_last_, parts_, text_, exercise_, correct_, guidance_, steps_, num_,
                seed_, randomize_, sampler_, formats_, motions_, model_=default_model, fast_steps_=FAST_DEFAULT_STEPS,
                progress=gr.Progress()):
        cb = progress_callback(progress)
        m = pick_motion(motions_, index_)
        seed_ = resolve_seed(seed_, bool(randomize_))
        t0 = time.perf_counter()
        src, ms, req, note = edit_motions(pick(model_), m, keep_first_, keep_last_, parts_, text_, exercise_,
                                          correct_, guidance_, steps_of(model_, steps_, fast_steps_), num_, seed_,
                                          sampler_,
                                          lambda f, s="": cb(0.85 * f, s))
        model_s = time.perf_counter() - t0
        cb(0.88, "drawing")
        fig = _figure([src] + ms, ["original"] + sample_titles(seed_, len(ms), "edit"),
                      roles=["input"] + ["output"] * len(ms))
        kept = []
        if int(keep_first_ or 0):
            kept.append(f"first {int(keep_first_)} frames")
        if int(keep_last_ or 0):
            kept.append(f"last {int(keep_last_)} frames")
        if parts_:
            kept.append(", ".join(p.replace("_", " ") for p in parts_))
        what = f"{len(ms)} edit(s) of a {src.num_frames}-frame motion, keeping {' + '.join(kept)}"
        cb(0.92, "writing downloads")
        paths = downloads(ms, formats_)
        new = add_motions(motions_, ms)
        cb(1.0, "done")
        seconds = time.perf_counter() - t0
        return (fig, describe_request(req, note, seconds, edited=what, model_seconds=model_s), paths, seed_, new,
                _choices(new))

    def on_refresh(motions_):
        return _choices(motions_)

    @user_error
    def on_understand(text_):
        return understanding_note(text_, labels)

    def on_model(model_):
        fast = model_ == FAST
        return gr.Radio(visible=fast), gr.Slider(visible=not fast)

    gen_inputs = [text, exercise, correct, guidance, steps, frames, num, seed, randomize, sampler, formats,
                  motions_state, model, fast_steps]
    gen_outputs = [plot, info, files, seed, motions_state, src_motion]
    gen_btn.click(on_generate, gen_inputs, gen_outputs, api_name="text_generate", **heavy)
    text.submit(on_generate, gen_inputs, gen_outputs, api_name="text_generate_submit", **heavy)
    # moving the guidance slider regenerates (same seed: only the guidance changes); with the fast model
    # this follows the slider almost live
    guidance.release(on_generate, gen_inputs, gen_outputs, api_name="text_guidance_changed",
                     trigger_mode="always_last", **heavy)
    model.change(on_model, [model], [fast_steps, steps], api_name="text_model_changed", queue=False)
    edit_inputs = [src_motion, keep_first, keep_last, parts, text, exercise, correct, guidance, steps, num, seed,
                   randomize, sampler, formats, motions_state, model, fast_steps]
    edit_btn.click(on_edit, edit_inputs, [edit_plot, edit_info, edit_files, seed, motions_state, src_motion],
                   api_name="text_edit", **heavy)
    refresh.click(on_refresh, [motions_state], [src_motion], api_name="text_edit_refresh", queue=False)
    text.blur(on_understand, [text], [understood_md], api_name="text_understand", show_progress="hidden")
    if has_state:
        motions_state.change(on_refresh, [motions_state], [src_motion], api_name="text_session_changed",
                             queue=False)
