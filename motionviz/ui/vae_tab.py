"""The "Action → motion (VAE)" tab: the ACTOR-style conditional VAE.

* Interpolate: from A to B, each end being a seed of an exercise (correct / incorrect execution), a
  held-out real motion of the dataset, or a motion of this session (e.g. one loaded in the Data tab);
  linear or spherical.  The latent segment is computed once per input change (kept in a ``gr.State``);
  the interpolation slider decodes the motion at its exact position (one decoder pass, no encoder), so
  the 3D view follows the slider as it moves.  A strip shows the path (middle frame of every step).
* Sample: exercise + execution + seed -> a few motions of that class.
* Variations: encode a session motion and decode samples around its posterior.
* Downloads: the motion at the slider, the whole path, or the last samples / variations.

Module-level functions (``compute_segment``, ``motion_at``, ``path_steps``, ``sample_motions``,
``vary_motions``, ``dataset_examples``) do the work and raise :class:`UserError` on bad input; the
callbacks inside :func:`build` only adapt them to Gradio.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import gradio as gr

from .. import data
from ..core.errors import UserError
from ..core.latent import weights
from ..core.motion import Motion
from ..data.labels import LABEL_TITLES
from ..generators import registry
from ..generators.vae import Endpoint
from .common import (
    CPU_LIMIT,
    CPU_QUEUE,
    EXPORT_FORMATS,
    FAST_FORMATS,
    MAX_SEED,
    AppContext,
    add_motions,
    correctness_info,
    export_files,
    export_many,
    motion_choices,
    pick_motion,
    progress_callback,
    resolve_seed,
    seed_box,
    session_state,
    to_float,
    to_int,
    user_error,
)
from .player import controls, player, player_value, sample_titles

__all__ = ["build", "label_choices", "compute_segment", "motion_at", "path_steps", "sample_motions",
           "vary_motions", "dataset_examples", "make_endpoint", "SEED_SOURCE", "DATASET_SOURCE",
           "SESSION_SOURCE"]

log = logging.getLogger("motionviz.ui.vae")

SEED_SOURCE = "A seed of the exercise"
DATASET_SOURCE = "A real motion of the dataset"
SESSION_SOURCE = "A motion of this session"
SOURCES = (SEED_SOURCE, DATASET_SOURCE, SESSION_SOURCE)
CORRECT, INCORRECT = "Correct", "Incorrect"
MAX_STEPS = 16
DOWNLOAD_CHOICES = ("Motion at the slider", "Whole interpolation path", "Last samples", "Last variations")


def _generator(ctx: AppContext):
    return registry.load_generator("vae", ctx.checkpoint_dir)


def label_choices(gen) -> list[tuple[str, str]]:
    """Dropdown choices (title (label), label) of the model's exercise/content labels."""
    return [(f"{LABEL_TITLES.get(lab, lab)} ({lab})", lab) for lab in gen.labels]


def _correct(gen, label: str, choice: str | None) -> bool | None:
    """The radio choice -> ``correct`` of the request (None for labels without correctness)."""
    if not gen.has_correctness(label):
        if choice == INCORRECT:
            raise UserError(f"{label} has no incorrect examples; choose 'Correct'")
        return None
    return choice != INCORRECT


@functools.lru_cache(maxsize=8)
def _held_out(dataset: str, root: str | None) -> tuple[Motion, ...]:
    return tuple(data.load_corpus("test", [dataset], root=root))


def dataset_examples(label: str, correct: bool | None, data_root: str | Path | None) -> list[Motion]:
    """Held-out (test split) real motions of class (label, correct), in corpus order."""
    if data_root is None:
        raise UserError("the data folder was not found, so real motions are not available; use a seed or a "
                        "session motion")
    dataset = label.split(":", 1)[0]
    ms = [m for m in _held_out(dataset, str(data_root)) if m.labels.label == label
          and (correct is None or m.labels.correct is None or m.labels.correct == correct)]
    if not ms:
        state = "" if correct is None else (" correct" if correct else " incorrect")
        raise UserError(f"there is no held-out{state} motion of {label} in the dataset; use a seed")
    return ms


def make_endpoint(gen, source: str, label: str | None, correct: str | None, seed: Any, example: Any,
                  session_index: Any, motions: list[Motion] | None, which: str,
                  data_root: str | Path | None = None):
    """One end of the interpolation from the tab's inputs (a :class:`motionviz.generators.vae.Endpoint`)."""
    if source == SESSION_SOURCE:
        return Endpoint(motion=pick_motion(motions, session_index))
    if source not in SOURCES:
        raise UserError(f"choose where {which} comes from: {', '.join(SOURCES)}")
    if not label:
        raise UserError(f"choose the exercise of {which}")
    lab = gen.resolve(label)
    corr = _correct(gen, lab, correct)
    if source == DATASET_SOURCE:
        ms = dataset_examples(lab, corr, data_root)
        i = to_int(example, f"real motion number of {which}", 1, len(ms))
        return Endpoint(lab, corr, 0, ms[i - 1])
    return Endpoint(lab, corr, to_int(seed, f"seed {which}", 0, MAX_SEED))


def compute_segment(gen, a, b, spherical: bool, progress=None):
    """The latent segment (:class:`motionviz.generators.vae.LatentPath`) between endpoints a and b."""
    return gen.segment(a, b, spherical=bool(spherical), progress=progress)


def motion_at(gen, segment, t: Any, frames: Any) -> Motion:
    """The motion at position ``t`` in [0, 1] of ``segment`` (one decoder pass)."""
    if segment is None:
        raise UserError("compute an interpolation first")
    f = to_float(t, "interpolation position", 0.0, 1.0)
    return gen.decode_path(segment, [f], to_int(frames, "frames", 8, 600))[0]


def path_steps(gen, segment, steps: Any, frames: Any, progress=None) -> list[Motion]:
    """``steps`` evenly spaced motions along ``segment`` (ends included)."""
    if segment is None:
        raise UserError("compute an interpolation first")
    n = to_int(steps, "steps on the path", 2, MAX_STEPS)
    return gen.decode_path(segment, weights(n), to_int(frames, "frames", 8, 600), progress)


def sample_motions(gen, label: str, correct: str, seed: Any, num: Any, frames: Any, progress=None) -> list[Motion]:
    """``num`` samples of (label, correct) for seed ``seed``."""
    if not label:
        raise UserError("choose an exercise")
    return gen.sample(label, _correct(gen, gen.resolve(label), correct), frames=to_int(frames, "frames", 8, 600),
                      num=to_int(num, "number of samples", 1, 8), seed=to_int(seed, "seed", 0, MAX_SEED),
                      progress=progress)


def vary_motions(gen, motions: list[Motion] | None, index: Any, num: Any, seed: Any, spread: Any,
                 progress=None) -> list[Motion]:
    """Variations of a session motion: its reconstruction first, then ``num`` samples around it."""
    m = pick_motion(motions, index)
    n = to_int(num, "number of variations", 1, 8)
    s = to_int(seed, "seed", 0, MAX_SEED)
    sp = to_float(spread, "spread", 0.0, 3.0)
    rec = gen.vary(m, num=1, seed=0, spread=0.0, progress=progress)
    return rec + gen.vary(m, num=n, seed=s, spread=sp, progress=progress)


def _title(m: Motion, t: float) -> str:
    lab = m.labels
    state = "" if lab.correct is None else (" correct" if lab.correct else " incorrect")
    return f"t = {t:.2f}: {lab.label}{state}"


def _info(steps: list[Motion], t: float) -> str:
    a, b = steps[0].labels, steps[-1].labels

    def name(lab) -> str:
        return lab.label + ("" if lab.correct is None else (" (correct)" if lab.correct else " (incorrect)"))

    return (f"Path from **{name(a)}** to **{name(b)}**, {steps[0].num_frames} frames per motion; "
            f"showing t = {t:.2f}.")


def build(ctx: AppContext) -> None:
    def motion_figure(m: Motion, title: str) -> str:
        return player_value([m], titles=[title])

    try:
        gen = _generator(ctx)
    except UserError as e:
        gr.Markdown(f"**The VAE is not available:** {e}", elem_id="vae-missing")
        return
    choices = label_choices(gen)
    first = choices[0][1] if choices else None
    default = next((v for _, v in choices if v == "ui-prmd:m01"), first)
    has_state = ctx.motions is not None
    motions_state = ctx.motions if has_state else gr.State([])
    data_root = ctx.data_root
    sources = list(SOURCES) if data_root is not None else [SEED_SOURCE, SESSION_SOURCE]

    gr.Markdown(
        "**Conditional VAE (ACTOR-style transformer).** Pick an exercise and a correct or incorrect execution, "
        "then walk the latent space between two seeds, two classes (e.g. a correct and an incorrect "
        "execution) or two real motions: the slider decodes the motion at that point of the path. "
        f"Trained on {len(gen.classes)} classes; {gen.config.fps:g} fps, 15-joint skeleton.",
        elem_id="vae-intro")
    heavy = dict(concurrency_id=CPU_QUEUE, concurrency_limit=CPU_LIMIT)

    # ---- interpolation ------------------------------------------------------------------------
    def end_controls(which: str, correct_value: str, seed_value: int):
        w = which.lower()
        src = gr.Radio(sources, value=SEED_SOURCE, label=f"{which} is", elem_id=f"vae-src-{w}")
        label = gr.Dropdown(choices, value=default, label=f"Exercise {which}", elem_id=f"vae-label-{w}")
        correct = gr.Radio([CORRECT, INCORRECT], value=correct_value, label=f"Execution {which}",
                           info=correctness_info(), elem_id=f"vae-correct-{w}")
        seed = seed_box(seed_value, f"Seed {which}", elem_id=f"vae-seed-{w}")
        example = gr.Number(1, precision=0, minimum=1, label=f"Real motion number {which} (held-out subjects)",
                            visible=False, elem_id=f"vae-example-{w}")
        session = gr.Dropdown([], value=None, label=f"Session motion {which}", visible=False,
                              elem_id=f"vae-session-{w}")
        return src, label, correct, seed, example, session

    with gr.Row(equal_height=False, elem_classes=["mv-split"]):
        with gr.Column(scale=1, min_width=300):
            with controls():
                gr.Markdown("### Start (A)")
                src_a, label_a, correct_a, seed_a, example_a, motion_a = end_controls("A", CORRECT, 0)
                gr.Markdown("### End (B)")
                src_b, label_b, correct_b, seed_b, example_b, motion_b = end_controls("B", INCORRECT, 0)
                with gr.Row():
                    spherical = gr.Checkbox(True, label="Spherical (slerp)", elem_id="vae-spherical")
                    steps = gr.Slider(2, MAX_STEPS, value=8, step=1, label="Steps in the strip", elem_id="vae-steps")
                frames = gr.Slider(20, 200, value=60, step=1, label="Frames (20 fps)", elem_id="vae-frames")
            with gr.Row():
                run_btn = gr.Button("Interpolate", variant="primary", elem_id="vae-run")
                add_path_btn = gr.Button("Add path to session", elem_id="vae-add-path")
        with gr.Column(scale=2):
            slider = gr.Slider(0.0, 1.0, value=0.0, step=0.02, label="Interpolation position (A → B)",
                               elem_id="vae-slider")
            info = gr.Markdown("", elem_id="vae-info")
            view = player(elem_id="vae-view")
            gr.Markdown("**The whole path**, every step playing in step with the others:")
            strip = player(elem_id="vae-strip")
    path_state = session_state(None)  # {"segment": LatentPath, "frames": int, "steps": list[Motion]}

    # ---- sampling and variations ------------------------------------------------------------------
    with gr.Accordion("Sample an exercise", open=False, elem_id="vae-sample-box"):
        with gr.Row():
            s_label = gr.Dropdown(choices, value=default, label="Exercise", elem_id="vae-s-label")
            s_correct = gr.Radio([CORRECT, INCORRECT], value=CORRECT, label="Execution", info=correctness_info(),
                                 elem_id="vae-s-correct")
            s_num = gr.Slider(1, 8, value=4, step=1, label="Number", elem_id="vae-s-num")
            s_frames = gr.Slider(20, 200, value=60, step=1, label="Frames (20 fps)", elem_id="vae-s-frames")
            s_seed = seed_box(0, "Seed", elem_id="vae-s-seed")
            s_random = gr.Checkbox(False, label="Random seed", elem_id="vae-s-random")
        s_btn = gr.Button("Sample", variant="primary", elem_id="vae-s-run")
        s_plot = player(elem_id="vae-s-plot")
    with gr.Accordion("Variations of a real motion", open=False, elem_id="vae-vary-box"):
        gr.Markdown("Encode a motion of this session (load one in the Data tab) and decode samples around "
                    "its posterior: spread 0 reconstructs it, 1 samples the posterior, larger values vary more.")
        with gr.Row():
            v_motion = gr.Dropdown([], value=None, label="Session motion", elem_id="vae-v-motion")
            v_num = gr.Slider(1, 8, value=4, step=1, label="Number", elem_id="vae-v-num")
            v_spread = gr.Slider(0.0, 3.0, value=1.0, step=0.1, label="Spread", elem_id="vae-v-spread")
            v_seed = seed_box(0, "Seed", elem_id="vae-v-seed")
        v_btn = gr.Button("Vary", variant="primary", elem_id="vae-v-run")
        v_plot = player(elem_id="vae-v-plot")
    with gr.Accordion("Downloads", open=False, elem_id="vae-download-box"):
        with gr.Row():
            d_what = gr.Radio(list(DOWNLOAD_CHOICES), value=DOWNLOAD_CHOICES[0], label="What",
                              elem_id="vae-d-what")
            d_formats = gr.CheckboxGroup(list(EXPORT_FORMATS), value=list(FAST_FORMATS),
                                         label="Formats (GIF and MP4 take a few seconds)", elem_id="vae-d-formats")
        d_btn = gr.Button("Prepare downloads", elem_id="vae-d-run")
        d_files = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="vae-d-files")
    refresh = gr.Button("Refresh session motions", size="sm", elem_id="vae-refresh")
    last_samples = session_state([])
    last_vary = session_state([])

    # ---- callbacks ------------------------------------------------------------------------------
    @user_error
    def on_correct_options(label: str):
        if label and gen.has_correctness(label):
            return gr.Radio(choices=[CORRECT, INCORRECT], interactive=True)
        return gr.Radio(choices=[CORRECT], value=CORRECT, interactive=True)

    def on_source(src: str):
        seed_v, data_v, session_v = src == SEED_SOURCE, src == DATASET_SOURCE, src == SESSION_SOURCE
        return (gr.Dropdown(visible=not session_v), gr.Radio(visible=not session_v), gr.Number(visible=seed_v),
                gr.Number(visible=data_v), gr.Dropdown(visible=session_v))

    @user_error
    def on_path(src_a_, label_a_, correct_a_, seed_a_, example_a_, motion_a_, src_b_, label_b_, correct_b_,
                seed_b_, example_b_, motion_b_, spherical_, steps_, frames_, t_, motions_, progress=gr.Progress()):
        cb = progress_callback(progress)
        a = make_endpoint(gen, src_a_, label_a_, correct_a_, seed_a_, example_a_, motion_a_, motions_, "A", data_root)
        b = make_endpoint(gen, src_b_, label_b_, correct_b_, seed_b_, example_b_, motion_b_, motions_, "B", data_root)
        segment = compute_segment(gen, a, b, spherical_, cb)
        n_frames = to_int(frames_, "frames", 8, 600)
        path = path_steps(gen, segment, steps_, n_frames, cb)
        cb(0.95, "drawing")
        t = to_float(t_, "interpolation position", 0.0, 1.0)
        m = motion_at(gen, segment, t, n_frames)
        titles = [f"t={k / (len(path) - 1):.2f}" for k in range(len(path))]
        state = {"segment": segment, "frames": n_frames, "steps": path}
        return state, motion_figure(m, title=_title(m, t)), player_value(path, titles=titles), _info(path, t)

    @user_error
    def on_slide(state, t_):
        if not state:
            return gr.update(), ""
        t = to_float(t_, "interpolation position", 0.0, 1.0)
        m = motion_at(gen, state["segment"], t, state["frames"])
        return motion_figure(m, title=_title(m, t)), _info(state["steps"], t)

    @user_error
    def on_add_path(state, motions_):
        if not state:
            raise UserError("compute an interpolation first")
        new = add_motions(motions_, state["steps"])
        return new, *_choice_updates(new)

    @user_error
    def on_sample(label, correct, num, frames_, seed, randomize, motions_, progress=gr.Progress()):
        seed = resolve_seed(seed, bool(randomize))
        ms = sample_motions(gen, label, correct, seed, num, frames_, progress_callback(progress))
        fig = player_value(ms, titles=sample_titles(seed, len(ms)))
        new = add_motions(motions_, ms)
        return fig, seed, ms, new, *_choice_updates(new)

    @user_error
    def on_vary(motions_, index, num, spread, seed, progress=gr.Progress()):
        ms = vary_motions(gen, motions_, index, num, seed, spread, progress_callback(progress))
        fig = player_value(ms, titles=["reconstruction"] + [f"variation {i}" for i in range(1, len(ms))],
                           roles=["input"] + ["output"] * (len(ms) - 1),
                           legend=[("#8a8a8a", "reconstruction of the session motion"),
                                   ("#2e6fd1", "variations around it"),
                                   ("", "darker limbs = subject's left, lighter = right")])
        new = add_motions(motions_, ms[1:])
        return fig, ms, new, *_choice_updates(new)

    @user_error
    def on_download(what, formats, state, t_, samples, variations, progress=gr.Progress()):
        cb = progress_callback(progress)
        if what == DOWNLOAD_CHOICES[0]:
            if not state:
                raise UserError("compute an interpolation first")
            m = motion_at(gen, state["segment"], t_, state["frames"])
            return export_files(m, formats, stem=f"vae_t{float(t_):.2f}", progress=cb)
        if what == DOWNLOAD_CHOICES[1]:
            if not state:
                raise UserError("compute an interpolation first")
            return export_many(state["steps"], formats, progress=cb)
        if what == DOWNLOAD_CHOICES[2]:
            if not samples:
                raise UserError("sample an exercise first")
            return export_many(samples, formats, progress=cb)
        if what == DOWNLOAD_CHOICES[3]:
            if not variations:
                raise UserError("make variations first")
            return export_many(variations, formats, progress=cb)
        raise UserError(f"choose what to download: {', '.join(DOWNLOAD_CHOICES)}")

    def on_refresh(motions_):
        return _choice_updates(motions_)

    path_inputs = [src_a, label_a, correct_a, seed_a, example_a, motion_a, src_b, label_b, correct_b, seed_b,
                   example_b, motion_b, spherical, steps, frames, slider, motions_state]
    path_outputs = [path_state, view, strip, info]
    run_btn.click(on_path, path_inputs, path_outputs, api_name="vae_interpolate", **heavy)
    # the segment is recomputed once per input change; the slider only decodes one motion
    for i, comp in enumerate([src_a, label_a, correct_a, seed_a, example_a, motion_a, src_b, label_b, correct_b,
                              seed_b, example_b, motion_b, spherical, steps]):
        comp.input(on_path, path_inputs, path_outputs, api_name=f"vae_path_{i}", trigger_mode="always_last",
                   show_progress="minimal", **heavy)
    frames.release(on_path, path_inputs, path_outputs, api_name="vae_path_frames", **heavy)
    slider.change(on_slide, [path_state, slider], [view, info], api_name="vae_slide", trigger_mode="always_last",
                  show_progress="hidden", concurrency_id="vae_slide", concurrency_limit=4)
    for w, src, comps in (("a", src_a, [label_a, correct_a, seed_a, example_a, motion_a]),
                          ("b", src_b, [label_b, correct_b, seed_b, example_b, motion_b])):
        src.change(on_source, [src], comps, api_name=f"vae_source_{w}", queue=False, api_visibility="private")
    label_a.input(on_correct_options, [label_a], [correct_a], api_name="vae_correct_a", queue=False)
    label_b.input(on_correct_options, [label_b], [correct_b], api_name="vae_correct_b", queue=False)
    s_label.input(on_correct_options, [s_label], [s_correct], api_name="vae_correct_s", queue=False)
    choice_outputs = [motion_a, motion_b, v_motion]
    add_path_btn.click(on_add_path, [path_state, motions_state], [motions_state] + choice_outputs,
                       api_name="vae_add_path")
    s_btn.click(on_sample, [s_label, s_correct, s_num, s_frames, s_seed, s_random, motions_state],
                [s_plot, s_seed, last_samples, motions_state] + choice_outputs, api_name="vae_sample", **heavy)
    v_btn.click(on_vary, [motions_state, v_motion, v_num, v_spread, v_seed],
                [v_plot, last_vary, motions_state] + choice_outputs, api_name="vae_vary", **heavy)
    d_btn.click(on_download, [d_what, d_formats, path_state, slider, last_samples, last_vary], [d_files],
                api_name="vae_download", **heavy)
    refresh.click(on_refresh, [motions_state], choice_outputs, api_name="vae_refresh_motions", queue=False)
    if has_state:
        motions_state.change(on_refresh, [motions_state], choice_outputs, api_name="vae_session_changed",
                             queue=False)
    if ctx.demo is not None:
        ctx.demo.load(on_path, path_inputs, path_outputs, api_name="vae_initial", **heavy)


def _choice_updates(motions: list[Motion] | None):
    ch = motion_choices(motions)
    value = ch[0][1] if ch else None
    return (gr.Dropdown(choices=ch, value=value), gr.Dropdown(choices=ch, value=ch[1][1] if len(ch) > 1 else value),
            gr.Dropdown(choices=ch, value=value))
