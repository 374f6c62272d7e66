"""The "VAE" tab: the ACTOR-style conditional VAE.

* Sample: exercise + correct/incorrect + seed -> a few motions of that class.
* Interpolate: from (exercise, correctness, seed A) or a session motion to (exercise, correctness,
  seed B) or another session motion, linearly or spherically.  The path is decoded once per input change
  (kept in a ``gr.State``); the interpolation slider only picks a step, so moving it is fast.  A strip
  shows every step of the path.
* Variations: encode a session motion (e.g. a patient's repetition from the Data tab) and decode samples
  around its posterior.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from ..errors import UserError
from ..motion import Motion
from .common import (CPU_LIMIT, CPU_QUEUE, MAX_SEED, AppContext, add_motions, motion_choices, pick_motion,
                     progress_callback, resolve_seed, to_float, to_int, user_error)

__all__ = ["build", "label_choices", "compute_path", "pick_step", "sample_motions", "vary_motions"]

log = logging.getLogger("motionviz.ui.vae")

SEED_SOURCE = "A seed of the exercise"
MOTION_SOURCE = "A motion of this session"
CORRECT, INCORRECT = "Correct", "Incorrect"
MAX_STEPS = 16


def _generator(ctx: AppContext):
    from ..generator import load_generator

    return load_generator("vae", ctx.checkpoint_dir)


def label_choices(gen) -> list[tuple[str, str]]:
    """Dropdown choices (title (label), label) of the model's classes."""
    try:
        from ..data import LABEL_TITLES
    except ImportError:  # pragma: no cover - data package always present in the app
        LABEL_TITLES = {}
    return [(f"{LABEL_TITLES.get(lab, lab)} ({lab})", lab) for lab in gen.labels]


def _correct(gen, label: str, choice: str | None) -> bool | None:
    if not gen.has_correctness(label):
        if choice == INCORRECT:
            raise UserError(f"{label} has no incorrect examples; choose 'Correct'")
        return None
    return choice != INCORRECT


def _endpoint(gen, source: str, label: str, correct: str, seed: Any, motions: list[Motion] | None,
              motion_index: Any, which: str):
    from ..models.vae import Endpoint

    if source == MOTION_SOURCE:
        return Endpoint(motion=pick_motion(motions, motion_index))
    if not label:
        raise UserError(f"choose the exercise of {which}")
    return Endpoint(label, _correct(gen, label, correct), to_int(seed, f"seed {which}", 0, MAX_SEED))


def compute_path(gen, src_a: str, label_a: str, correct_a: str, seed_a: Any, motion_a: Any, src_b: str,
                 label_b: str, correct_b: str, seed_b: Any, motion_b: Any, spherical: bool, steps: Any,
                 frames: Any, motions: list[Motion] | None, progress=None) -> list[Motion]:
    """Decode the interpolation path (``steps`` motions, ends included)."""
    a = _endpoint(gen, src_a, label_a, correct_a, seed_a, motions, motion_a, "A")
    b = _endpoint(gen, src_b, label_b, correct_b, seed_b, motions, motion_b, "B")
    return gen.interpolate_path(a, b, steps=to_int(steps, "steps", 2, MAX_STEPS),
                                frames=to_int(frames, "frames", 8, 600), spherical=bool(spherical),
                                progress=progress)


def pick_step(path: list[Motion] | None, t: Any) -> tuple[Motion, int]:
    """The path motion nearest to position ``t`` in [0, 1]."""
    if not path:
        raise UserError("compute an interpolation first")
    f = to_float(t, "interpolation position", 0.0, 1.0)
    i = int(round(f * (len(path) - 1)))
    return path[i], i


def sample_motions(gen, label: str, correct: str, seed: Any, num: Any, frames: Any, progress=None) -> list[Motion]:
    if not label:
        raise UserError("choose an exercise")
    return gen.sample(label, _correct(gen, label, correct), frames=to_int(frames, "frames", 8, 600),
                      num=to_int(num, "number of samples", 1, 8), seed=to_int(seed, "seed", 0, MAX_SEED),
                      progress=progress)


def vary_motions(gen, motions: list[Motion] | None, index: Any, num: Any, seed: Any, spread: Any,
                 progress=None) -> list[Motion]:
    m = pick_motion(motions, index)
    return gen.vary(m, num=to_int(num, "number of variations", 1, 8), seed=to_int(seed, "seed", 0, MAX_SEED),
                    spread=to_float(spread, "spread", 0.0, 3.0), progress=progress)


def build(ctx: AppContext) -> None:
    from ..render import grid_figure, motion_figure, strip_figure

    try:
        gen = _generator(ctx)
    except UserError as e:
        gr.Markdown(f"**The VAE is not available:** {e}")
        return
    choices = label_choices(gen)
    first = choices[0][1] if choices else None
    default = next((v for _, v in choices if v == "ui-prmd:m01"), first)
    has_state = ctx.motions is not None
    motions_state = ctx.motions if has_state else gr.State([])

    gr.Markdown(
        "**Conditional VAE (ACTOR-style transformer).** Pick an exercise and correct/incorrect execution, "
        "sample motions, walk the latent space between two seeds, two classes (e.g. a correct and an "
        "incorrect squat) or two real motions, or create variations of a real motion. "
        f"Trained on {len(gen.classes)} classes; {gen.config.fps:g} fps, 15-joint skeleton.")
    heavy = dict(concurrency_id=CPU_QUEUE, concurrency_limit=CPU_LIMIT)

    # ---- interpolation ------------------------------------------------------------------------
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            gr.Markdown("### Start (A)")
            src_a = gr.Radio([SEED_SOURCE, MOTION_SOURCE], value=SEED_SOURCE, label="From")
            label_a = gr.Dropdown(choices, value=default, label="Exercise A")
            correct_a = gr.Radio([CORRECT, INCORRECT], value=CORRECT, label="Execution A")
            seed_a = gr.Number(0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed A")
            motion_a = gr.Dropdown([], value=None, label="Session motion A", allow_custom_value=False)
            gr.Markdown("### End (B)")
            src_b = gr.Radio([SEED_SOURCE, MOTION_SOURCE], value=SEED_SOURCE, label="To")
            label_b = gr.Dropdown(choices, value=default, label="Exercise B")
            correct_b = gr.Radio([CORRECT, INCORRECT], value=INCORRECT, label="Execution B")
            seed_b = gr.Number(0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed B")
            motion_b = gr.Dropdown([], value=None, label="Session motion B", allow_custom_value=False)
            with gr.Row():
                spherical = gr.Checkbox(True, label="Spherical (slerp)")
                steps = gr.Slider(2, MAX_STEPS, value=8, step=1, label="Steps on the path")
            frames = gr.Slider(20, 200, value=60, step=1, label="Frames (20 fps)")
            with gr.Row():
                run_btn = gr.Button("Interpolate", variant="primary")
                add_path_btn = gr.Button("Add path to session")
        with gr.Column(scale=2):
            slider = gr.Slider(0.0, 1.0, value=0.0, step=0.01, label="Interpolation (A → B)")
            info = gr.Markdown("")
            view = gr.Plot(label="Motion at this point of the path")
            strip = gr.Plot(label="The interpolation path (middle frame of every step)")
    path_state = gr.State([])

    # ---- sampling and variations ------------------------------------------------------------------
    with gr.Accordion("Sample an exercise", open=False):
        with gr.Row():
            s_label = gr.Dropdown(choices, value=default, label="Exercise")
            s_correct = gr.Radio([CORRECT, INCORRECT], value=CORRECT, label="Execution")
            s_num = gr.Slider(1, 8, value=4, step=1, label="Number")
            s_frames = gr.Slider(20, 200, value=60, step=1, label="Frames (20 fps)")
            s_seed = gr.Number(0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed")
            s_random = gr.Checkbox(False, label="Random seed")
        s_btn = gr.Button("Sample", variant="primary")
        s_plot = gr.Plot(label="Samples")
    with gr.Accordion("Variations of a real motion", open=False):
        gr.Markdown("Encode a motion of this session (load one in the Data tab) and decode samples around "
                    "its posterior: spread 0 reconstructs it, 1 samples the posterior, larger values vary more.")
        with gr.Row():
            v_motion = gr.Dropdown([], value=None, label="Session motion")
            v_num = gr.Slider(1, 8, value=4, step=1, label="Number")
            v_spread = gr.Slider(0.0, 3.0, value=1.0, step=0.1, label="Spread")
            v_seed = gr.Number(0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed")
        v_btn = gr.Button("Vary", variant="primary")
        v_plot = gr.Plot(label="Reconstruction and variations")
    refresh = gr.Button("Refresh session motions", size="sm")

    # ---- callbacks ------------------------------------------------------------------------------
    @user_error
    def on_correct_options(label: str):
        if label and gen.has_correctness(label):
            return gr.Radio(choices=[CORRECT, INCORRECT], interactive=True)
        return gr.Radio(choices=[CORRECT], value=CORRECT, interactive=True)

    @user_error
    def on_path(src_a_, label_a_, correct_a_, seed_a_, motion_a_, src_b_, label_b_, correct_b_, seed_b_,
                motion_b_, spherical_, steps_, frames_, t_, motions_, progress=gr.Progress()):
        cb = progress_callback(progress)
        path = compute_path(gen, src_a_, label_a_, correct_a_, seed_a_, motion_a_, src_b_, label_b_, correct_b_,
                            seed_b_, motion_b_, spherical_, steps_, frames_, motions_, cb)
        cb(0.95, "drawing")
        m, i = pick_step(path, t_)
        titles = [f"{k / (len(path) - 1):.2f}" for k in range(len(path))]
        return (path, motion_figure(m, title=_title(m, i, len(path))), strip_figure(path, titles=titles),
                _info(path, i))

    @user_error
    def on_slide(path, t_):
        if not path:
            return gr.update(), ""
        m, i = pick_step(path, t_)
        return motion_figure(m, title=_title(m, i, len(path))), _info(path, i)

    @user_error
    def on_add_path(path, motions_):
        if not path:
            raise UserError("compute an interpolation first")
        new = add_motions(motions_, path)
        return new, *_choice_updates(new)

    @user_error
    def on_sample(label, correct, num, frames_, seed, randomize, motions_, progress=gr.Progress()):
        seed = resolve_seed(seed, bool(randomize))
        ms = sample_motions(gen, label, correct, seed, num, frames_, progress_callback(progress))
        fig = grid_figure(ms, titles=[f"seed {seed} #{i + 1}" for i in range(len(ms))])
        new = add_motions(motions_, ms)
        return fig, seed, new, *_choice_updates(new)

    @user_error
    def on_vary(motions_, index, num, spread, seed, progress=gr.Progress()):
        cb = progress_callback(progress)
        src = pick_motion(motions_, index)
        rec = gen.vary(src, num=1, seed=0, spread=0.0, progress=cb)
        ms = vary_motions(gen, motions_, index, num, seed, spread, cb)
        fig = grid_figure([rec[0]] + ms, titles=["reconstruction"] + [f"variation {i + 1}" for i in range(len(ms))])
        new = add_motions(motions_, ms)
        return fig, new, *_choice_updates(new)

    def on_refresh(motions_):
        return _choice_updates(motions_)

    path_inputs = [src_a, label_a, correct_a, seed_a, motion_a, src_b, label_b, correct_b, seed_b, motion_b,
                   spherical, steps, frames, slider, motions_state]
    path_outputs = [path_state, view, strip, info]
    run_btn.click(on_path, path_inputs, path_outputs, api_name="vae_interpolate", **heavy)
    # the path is recomputed once per input change; the slider only picks a step
    for i, comp in enumerate([src_a, label_a, correct_a, seed_a, motion_a, src_b, label_b, correct_b, seed_b,
                              motion_b, spherical, steps]):
        comp.input(on_path, path_inputs, path_outputs, api_name=f"vae_path_{i}", trigger_mode="always_last",
                   show_progress="minimal", **heavy)
    frames.release(on_path, path_inputs, path_outputs, api_name="vae_path_frames", **heavy)
    slider.change(on_slide, [path_state, slider], [view, info], api_name="vae_slide", trigger_mode="always_last",
                  show_progress="hidden", concurrency_id="vae_slide", concurrency_limit=4)
    label_a.input(on_correct_options, [label_a], [correct_a], api_name="vae_correct_a", queue=False)
    label_b.input(on_correct_options, [label_b], [correct_b], api_name="vae_correct_b", queue=False)
    s_label.input(on_correct_options, [s_label], [s_correct], api_name="vae_correct_s", queue=False)
    choice_outputs = [motion_a, motion_b, v_motion]
    add_path_btn.click(on_add_path, [path_state, motions_state], [motions_state] + choice_outputs,
                       api_name="vae_add_path")
    s_btn.click(on_sample, [s_label, s_correct, s_num, s_frames, s_seed, s_random, motions_state],
                [s_plot, s_seed, motions_state] + choice_outputs, api_name="vae_sample", **heavy)
    v_btn.click(on_vary, [motions_state, v_motion, v_num, v_spread, v_seed], [v_plot, motions_state] + choice_outputs,
                api_name="vae_vary", **heavy)
    refresh.click(on_refresh, [motions_state], choice_outputs, api_name="vae_refresh_motions", queue=False)
    if has_state:
        try:
            motions_state.change(on_refresh, [motions_state], choice_outputs, api_name="vae_session_changed",
                                 queue=False)
        except AttributeError:  # pragma: no cover - older gradio State without .change
            pass
    if ctx.demo is not None:
        ctx.demo.load(on_path, path_inputs, path_outputs, api_name="vae_initial", **heavy)


def _choice_updates(motions: list[Motion] | None):
    ch = motion_choices(motions)
    value = ch[0][1] if ch else None
    return (gr.Dropdown(choices=ch, value=value), gr.Dropdown(choices=ch, value=ch[1][1] if len(ch) > 1 else value),
            gr.Dropdown(choices=ch, value=value))


def _title(m: Motion, i: int, n: int) -> str:
    lab = m.labels
    state = "" if lab.correct is None else (" correct" if lab.correct else " incorrect")
    return f"step {i + 1}/{n} (t = {i / max(1, n - 1):.2f}): {lab.label}{state}"


def _info(path: list[Motion], i: int) -> str:
    a, b = path[0].labels, path[-1].labels
    return (f"Path of {len(path)} motions × {path[0].num_frames} frames from **{a.label}** to **{b.label}**; "
            f"showing step {i + 1}.")
