"""The "Inpaint / clean up" tab: the AE-GAN inpainter.

Pick a motion (one of this session's motions: a dataset motion loaded in the Data tab or a generated one;
an uploaded file; or a held-out example), optionally corrupt it (drop a percentage of the joints in
occlusion-like runs, drop whole frames, add Gaussian noise, hide a limb), and let the AE-GAN complete /
clean it: windows of 32 frames every ``shift`` frames, latent search for ``steps`` steps.  The 3D view
overlays the corrupted input and the output; the chart gives the per-joint error of the input (missing
joints held at their last seen position), of the interpolation baseline and of the AE-GAN against the
uncorrupted motion.  The output can be downloaded and is added to the session.

"Keypoints → full skeleton" (joint up-sampling, :mod:`motionviz.generators.upsample`): the same motion reduced to the
joints of a keypoint detector (COCO-17 / BlazePose limbs) or a few trackers, completed by the up-sampling
AE-GAN, with the per-joint error of the generated joints beside the offset baseline's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from .. import data
from ..core.errors import UserError
from ..core.motion import DEFAULT_FPS, Motion
from ..core.representation import window_starts
from ..core.retarget import retarget_mask
from ..core.skeleton import BODY_PARTS, COMMON, JOINT_SETS, resolve_set, set_mask
from ..data import load_user_file
from ..generators import inpaint as inpaint_G
from ..generators.inpaint import baseline, corrupt, hold_last_observation, inpaint, preset
from ..generators.upsample import CHECKPOINT_NAME, load_upsampler, offset_baseline, settings_for, training_mean_pose, upsample
from .common import (
    LONG_LIMIT,
    LONG_QUEUE,
    LONG_TIME_LIMIT_S,
    MAX_SEED,
    AppContext,
    add_motions,
    export_files,
    motion_choices,
    pick_motion,
    progress_callback,
    seed_box,
    to_float,
    to_int,
    uploaded_path,
    user_error,
)
from .player import controls, part_label, player, player_value, view_export

__all__ = ["build", "InpaintOutcome", "prepare_source", "corrupt_and_inpaint", "error_figure", "summary_markdown",
           "LIMBS", "MAX_FRAMES", "UpsampleOutcome", "upsample_motion", "upsample_figure", "upsample_markdown"]

log = logging.getLogger("motionviz.ui.inpaint")

SESSION, UPLOAD, EXAMPLE = "A motion of this session", "Upload a file", "A held-out example (UI-PRMD test subject)"
NO_LIMB = "none"
LIMBS = (NO_LIMB, "left_arm", "right_arm", "left_leg", "right_leg", "arms", "legs", "torso")
MAX_FRAMES = 600          # 30 s at 20 fps: longer motions are cut (a note says so)
METHODS = ("input", "baseline", "AE-GAN")


@dataclass
class InpaintOutcome:
    reference: Motion               # the motion before our corruption (may itself miss joints: NaN)
    corrupted: Motion               # what the model saw (NaN = missing)
    output: Motion                  # AE-GAN result
    baseline: Motion                # interpolation + Savitzky-Golay
    held: Motion                    # corrupted input, missing joints held at their last seen position
    errors: dict[str, np.ndarray]   # method -> per-joint MPJPE (metres) vs the reference, NaN if unknown
    mpjpe: dict[str, float]
    seconds: float
    note: str = ""


def _model(ctx_dir: Path | str | None):
    path = Path(ctx_dir) / "aegan.safetensors" if ctx_dir else None
    return inpaint_G.load_model(path)


def prepare_source(motion: Motion) -> tuple[Motion, str]:
    """Any motion -> the common skeleton at 20 fps (NaN where missing), at most MAX_FRAMES frames."""
    note = []
    if motion.joints.shape[-1] != 3:
        raise UserError("the inpainting tab works on 3D motions (frames, joints, 3)")
    m = motion
    if m.skeleton.name != COMMON.name:
        obs = retarget_mask(m.observed, m.skeleton, COMMON)
        m = m.retarget(COMMON)
        j = m.joints.copy()
        j[~obs] = np.nan
        m = m.with_joints(j)
        note.append(f"mapped from the {motion.skeleton.name} skeleton to the common skeleton")
    if abs(m.fps - DEFAULT_FPS) > 1e-6:
        note.append(f"resampled from {m.fps:g} to {DEFAULT_FPS:g} fps")
        m = m.resample(DEFAULT_FPS)
    if m.num_frames > MAX_FRAMES:
        note.append(f"cut to the first {MAX_FRAMES} frames ({MAX_FRAMES / DEFAULT_FPS:g} s)")
        m = m.crop(0, MAX_FRAMES)
    if not m.observed.any():
        raise UserError("the motion has no observed joint at all")
    return m, "; ".join(note)


#: The most latent-search work one request may ask for: windows x steps (the default, 300 frames with a
#: shift of 8 and 200 steps, is 35 x 200 = 7,000; about 7 s on one core).  Checked before any work.
MAX_WINDOW_STEPS = 16_000


def check_inpaint_budget(frames: int, window: int, shift: int, steps: int) -> int:
    """windows x steps of an inpainting request, or :class:`UserError` when it is over
    :data:`MAX_WINDOW_STEPS` (shift 1 and 500 steps took ~100 s and held a worker that long)."""
    n = len(window_starts(frames, window, shift))
    cost = n * max(steps, 1)
    if cost > MAX_WINDOW_STEPS:
        raise UserError(f"{n} windows x {steps} steps = {cost:,} window-steps is over the limit of "
                        f"{MAX_WINDOW_STEPS:,} per request; raise the window shift or lower the steps")
    return cost


def corrupt_and_inpaint(model: Any, motion: Motion, drop_joints: float = 30.0, drop_frames: float = 0.0,
                        noise_cm: float = 0.0, limb: str = NO_LIMB, seed: int = 0, shift: int = 8, steps: int = 200,
                        average: bool | None = None, denoise: bool | None = None, progress=None,
                        preset_name: str = "tuned") -> InpaintOutcome:
    """Corrupt ``motion`` (percentages, centimetres) with a seeded generator and inpaint it with the
    latent-search preset ``preset_name`` (``average`` None = the preset's choice)."""
    drop_joints = to_float(drop_joints, "dropped joints (%)", 0.0, 90.0)
    drop_frames = to_float(drop_frames, "dropped frames (%)", 0.0, 90.0)
    noise_cm = to_float(noise_cm, "noise (cm)", 0.0, 50.0)
    seed = to_int(seed, "seed", 0, MAX_SEED)
    shift = to_int(shift, "shift", 1, model.cfg.frames)
    steps = to_int(steps, "steps", 0, 1000)
    if limb not in LIMBS:
        raise UserError(f"unknown limb {limb!r}; choose from {', '.join(part_label(b) for b in LIMBS)}")
    ref, note = prepare_source(motion)
    check_inpaint_budget(ref.num_frames, model.cfg.frames, shift, steps)
    x = ref.joints
    known = ref.observed
    hide = tuple(COMMON.indices(BODY_PARTS[limb])) if limb != NO_LIMB else ()
    rng = np.random.default_rng(seed)
    filled = np.where(known[..., None], x, 0.0)
    xc, m = corrupt(filled, rng, joint_rate=drop_joints / 100, frame_rate=drop_frames / 100, noise=noise_cm / 100,
                    hide=hide)
    m &= known
    if not m.any():
        raise UserError("the corruption left no observed joint; lower the percentages")
    xc[~m] = np.nan
    if denoise is None:
        denoise = noise_cm > 0
    st = preset(preset_name)
    if average is not None:
        st["average"] = bool(average)
    res = inpaint(model, xc, m, shift=shift, steps=steps, keep_observed=not denoise, progress=progress, **st)
    base = baseline(xc, m, keep_observed=not denoise)
    held = hold_last_observation(xc, m)
    errors, mpjpe = {}, {}
    for name, y in zip(METHODS, (held, base, res.joints)):
        e = np.linalg.norm(y - np.where(known[..., None], x, np.nan), axis=-1)  # (T, J)
        with np.errstate(invalid="ignore"):
            errors[name] = np.nanmean(np.where(known, e, np.nan), axis=0) if known.any() else np.full(len(COMMON), np.nan)
        mpjpe[name] = float(np.nanmean(e[known])) if known.any() else float("nan")
    lab = ref.labels
    mk = lambda j, src: ref.with_joints(j).with_labels(source=src)  # noqa: E731
    return InpaintOutcome(reference=ref, corrupted=mk(xc, "corrupted"),
                          output=mk(res.joints, "aegan-inpaint").with_labels(text=(lab.text or lab.label or "motion")
                                                                              + " (AE-GAN inpainted)"),
                          baseline=mk(base, "baseline"), held=mk(held, "held"), errors=errors, mpjpe=mpjpe,
                          seconds=res.seconds, note=note)


def error_figure(out: InpaintOutcome):
    """Grouped per-joint error bars (cm) of the three methods against the uncorrupted motion."""
    names = [part_label(j) for j in COMMON.joints]
    colors = {"input": "#9e9e9e", "baseline": "#ff9f1c", "AE-GAN": "#2a9d8f"}
    fig = go.Figure()
    for k in METHODS:
        e = out.errors[k] * 100
        fig.add_trace(go.Bar(x=names, y=[None if not np.isfinite(v) else round(float(v), 3) for v in e], name=k,
                             marker_color=colors[k], hovertemplate="%{x}: %{y:.2f} cm<extra>" + k + "</extra>"))
    fig.update_layout(barmode="group", height=340, margin=dict(l=50, r=10, t=40, b=80),
                      title=dict(text="Per-joint error against the uncorrupted motion", x=0.5),
                      yaxis=dict(title="MPJPE (cm)", rangemode="tozero"), xaxis=dict(tickangle=-45),
                      legend=dict(orientation="h", x=0.5, xanchor="center", y=1.0, yanchor="bottom"))
    return fig


def summary_markdown(out: InpaintOutcome) -> str:
    m = out.mpjpe
    miss = float((~out.corrupted.observed).mean()) * 100
    lines = [f"**{out.reference.num_frames} frames**, {miss:.1f} % of the joint positions missing after "
             f"corruption; AE-GAN took {out.seconds:.1f} s.",
             "", "| | input (last seen) | interpolation + Savitzky-Golay | AE-GAN |", "|---|---|---|---|",
             "| MPJPE (cm) | " + " | ".join(f"{m[k] * 100:.2f}" for k in METHODS) + " |"]
    if out.note:
        lines += ["", f"_{out.note}._"]
    return "\n".join(lines)


@dataclass
class UpsampleOutcome:
    reference: Motion               # the full motion (the error reference; may miss joints: NaN)
    sparse: Motion                  # what the model saw: the joints of the set only
    output: Motion                  # AE-GAN up-sampler
    baseline: Motion | None         # offset baseline (None without the training data's mean pose)
    errors: dict[str, np.ndarray]   # method -> per-joint error (metres) on the generated joints, NaN elsewhere
    mean_mm: dict[str, float]       # method -> mean error (mm) over the generated joints
    joint_set: str
    seconds: float
    note: str = ""


def upsample_motion(model: Any, motion: Motion, joint_set: str, steps: Any = None, shift: Any = None,
                    mean: dict | None = None, progress=None) -> UpsampleOutcome:
    """Keep only the joints of ``joint_set`` of ``motion`` and generate the rest with the up-sampling AE-GAN
    (and the offset baseline when ``mean``, the training mean pose, is given); errors against the motion."""
    name = resolve_set(joint_set)
    chosen = settings_for(name)
    steps = chosen["steps"] if steps in (None, "") else to_int(steps, "steps", 0, 1000)
    shift = chosen["shift"] if shift in (None, "") else to_int(shift, "shift", 1, model.cfg.frames)
    ref, note = prepare_source(motion)
    check_inpaint_budget(ref.num_frames, model.cfg.frames, shift, steps)
    keep = set_mask(name)
    x = ref.joints
    sparse = np.where(keep[None, :, None], x, np.nan).astype(np.float32)
    if not np.isfinite(sparse).all(-1).any():
        raise UserError(f"the motion has none of the {name} joints")
    res = upsample(model, sparse, name, steps=steps, shift=shift, progress=progress)
    outs = {"AE-GAN up-sampler": res.joints}
    if mean is not None:
        outs["offset baseline"] = offset_baseline(sparse, None, mean)
    known = ref.observed & ~keep[None]
    errors, mean_mm = {}, {}
    for k, y in outs.items():
        e = np.where(known, np.linalg.norm(y - np.nan_to_num(x), axis=-1), np.nan)
        n = known.sum(0)
        errors[k] = np.where(n > 0, np.nansum(e, axis=0) / np.maximum(n, 1), np.nan)
        mean_mm[k] = float(np.nanmean(e[known])) * 1000 if known.any() else float("nan")
    mk = lambda j, src: ref.with_joints(j).with_labels(source=src)  # noqa: E731
    lab = ref.labels
    out = mk(res.joints, "aegan-upsample").with_labels(text=(lab.text or lab.label or "motion")
                                                       + f" (up-sampled from {name})")
    base = mk(outs["offset baseline"], "offset-baseline") if "offset baseline" in outs else None
    return UpsampleOutcome(reference=ref, sparse=mk(sparse, f"{name} joints"), output=out, baseline=base,
                           errors=errors, mean_mm=mean_mm, joint_set=name, seconds=res.seconds, note=note)


def upsample_figure(out: UpsampleOutcome):
    """Per-joint error (cm) of the generated joints: the up-sampler and the offset baseline."""
    hidden = [j for j, v in enumerate(next(iter(out.errors.values()))) if np.isfinite(v)]
    names = [part_label(COMMON.joints[j]) for j in hidden]
    colors = {"offset baseline": "#ff9f1c", "AE-GAN up-sampler": "#2a9d8f"}
    fig = go.Figure()
    for k in ("offset baseline", "AE-GAN up-sampler"):
        if k in out.errors:
            e = out.errors[k][hidden] * 100
            fig.add_trace(go.Bar(x=names, y=[round(float(v), 3) for v in e], name=k, marker_color=colors[k],
                                 hovertemplate="%{x}: %{y:.2f} cm<extra>" + k + "</extra>"))
    fig.update_layout(barmode="group", height=340, margin=dict(l=50, r=10, t=40, b=80),
                      title=dict(text=f"Error of the joints generated from the {out.joint_set} joints", x=0.5),
                      yaxis=dict(title="error (cm)", rangemode="tozero"), xaxis=dict(tickangle=-45),
                      legend=dict(orientation="h", x=0.5, xanchor="center", y=1.0, yanchor="bottom"))
    return fig


def upsample_markdown(out: UpsampleOutcome) -> str:
    rows = " | ".join(f"{k}: **{v:.0f} mm**" for k, v in out.mean_mm.items() if np.isfinite(v))
    lines = [f"**Up-sampled from {out.joint_set}** ({JOINT_SETS[out.joint_set][0]}): "
             f"{out.reference.num_frames} frames, {int((~np.isfinite(out.sparse.joints).all(-1)).any(0).sum())} "
             f"joints generated in {out.seconds:.1f} s.", "",
             f"Mean error of the generated joints against the full motion: {rows or 'n/a'}."]
    if out.baseline is None:
        lines.append("_(The offset baseline needs the training data's mean pose: no data folder here.)_")
    if out.note:
        lines += ["", f"_{out.note}._"]
    return "\n".join(lines)


def _example_motion(data_root: Path | None) -> Motion:
    ms = [m for m in data.load_corpus("test", ["ui-prmd"], root=data_root) if m.num_frames >= 60]
    if not ms:
        raise UserError("no held-out example motion is available (data folder missing)")
    return ms[0]


def build(ctx: AppContext) -> None:
    try:
        model = _model(ctx.checkpoint_dir)
    except UserError as e:
        gr.Markdown(f"**The AE-GAN inpainter is not available:** {e}")
        return
    has_state = ctx.motions is not None
    motions_state = ctx.motions if has_state else gr.State([])
    F = model.cfg.frames
    upsampler, up_error = None, ""
    try:
        upsampler = load_upsampler(Path(ctx.checkpoint_dir) / CHECKPOINT_NAME if ctx.checkpoint_dir else None)
    except UserError as e:
        up_error = str(e)
    gr.Markdown(
        "**AE-GAN inpainter** (autoencoder + Wasserstein GAN, after Mourot 2019). Completes missing joints and "
        "frames and removes noise by searching the latent space of a model of real motion: windows of "
        f"{F} frames (1.6 s at 20 fps) every *shift* frames, each initialised by the encoder and optimised for "
        "*steps* steps on the observed joints (aligned by Procrustes); each filled stretch is then joined to the "
        "observed values at its ends. Corrupt a clean motion to see how well it recovers it.")
    long = dict(concurrency_id=LONG_QUEUE, concurrency_limit=LONG_LIMIT)   # seconds-long: never ahead of short jobs
    with gr.Row(equal_height=False, elem_classes=["mv-split"]):
        with gr.Column(scale=1, min_width=300):
            with controls():
                sources = [SESSION, UPLOAD] + ([EXAMPLE] if ctx.data_root is not None else [])
                source = gr.Radio(sources, value=EXAMPLE if ctx.data_root is not None else SESSION, label="Motion",
                                  elem_id="inpaint-source")
                session_pick = gr.Dropdown([], value=None, label="Session motion (Data tab or generated)",
                                           elem_id="inpaint-session")
                upload = gr.File(label="Motion file (.npy / .npz / .csv / .bvh / .json)", type="filepath",
                                 file_types=[".npy", ".npz", ".csv", ".bvh", ".xz", ".json"], elem_id="inpaint-upload")
                gr.Markdown("### Corruption")
                drop_j = gr.Slider(0, 80, value=30, step=5, label="Drop joints (%)", elem_id="inpaint-drop-joints")
                drop_f = gr.Slider(0, 60, value=0, step=5, label="Drop frames (%)", elem_id="inpaint-drop-frames")
                noise = gr.Slider(0, 10, value=0, step=0.5, label="Noise σ (cm)", elem_id="inpaint-noise")
                limb = gr.Dropdown([(part_label(b), b) for b in LIMBS], value=NO_LIMB, label="Hide a limb",
                                   elem_id="inpaint-limb")
                seed = seed_box(0, "Corruption seed")
                gr.Markdown("### Inpainting")
                shift = gr.Slider(1, F, value=8, step=1, label=f"Window shift (frames; window = {F})",
                                  elem_id="inpaint-shift")
                steps = gr.Slider(0, 500, value=200, step=10, label="Optimisation steps", elem_id="inpaint-steps")
                preset_radio = gr.Radio([("tuned (lr 0.01, windows averaged)", "tuned"),
                                         ("thesis (lr 1.0, 10/5/0.5, per-frame choice)", "thesis")], value="tuned",
                                        label="Latent-search settings", elem_id="inpaint-preset")
                denoise = gr.Checkbox(False, label="Replace observed joints too (denoise; on when noise > 0)")
            run_btn = gr.Button("Corrupt & inpaint", variant="primary", elem_id="inpaint-run")
            with gr.Accordion("Keypoints → full skeleton (joint up-sampling)", open=True,
                              elem_id="inpaint-upsample-box"):
                gr.Markdown("Keep only the joints a keypoint detector or a few trackers give and let the "
                            "up-sampling AE-GAN generate the others (its own search settings, chosen per joint "
                            "set on the validation subjects)."
                            + ("" if upsampler is not None else
                               f"  \n**Not available:** {up_error}"))
                joint_set = gr.Dropdown([(f"{k}: {v[0]}", k) for k, v in JOINT_SETS.items()], value="coco17",
                                        label="Joints given", elem_id="inpaint-joint-set")
                up_btn = gr.Button("Keypoints → full skeleton", elem_id="inpaint-upsample")
        with gr.Column(scale=2):
            view = player(elem_id="inpaint-view")
            view_export(view, "inpaint-view")
            chart = gr.Plot(label="Per-joint error", elem_id="inpaint-errors")
            info = gr.Markdown("", elem_id="inpaint-info")
            files = gr.File(label="Downloads (output)", file_count="multiple", interactive=False,
                            elem_id="inpaint-files")

    def _pick(src, index, path, motions_) -> Motion:
        if src == UPLOAD:
            if not path:
                raise UserError("upload a motion file first")
            return load_user_file(uploaded_path(path))
        if src == EXAMPLE:
            return _example_motion(ctx.data_root)
        return pick_motion(motions_, index)

    @user_error
    def on_run(src, index, path, dj, df, ns, lb, sd, sh, st, pr, dn, motions_, progress=gr.Progress()):
        cb = progress_callback(progress, LONG_TIME_LIMIT_S)
        cb(0.0, "preparing")
        motion = _pick(src, index, path, motions_)
        out = corrupt_and_inpaint(model, motion, dj, df, ns, lb, sd, sh, st, None,
                                  True if dn or to_float(ns, "noise (cm)", 0, 50) > 0 else False, cb,
                                  preset_name=pr or "tuned")
        fig = player_value([out.corrupted, out.output], titles=["input (corrupted)", "AE-GAN output"],
                           roles=["input", "aegan"], layout="overlay")
        paths = export_files(out.output, ["npy", "json", "bvh"], stem="inpainted")
        new = add_motions(motions_, out.output)
        return fig, error_figure(out), summary_markdown(out), paths, new, _choices(new)

    @user_error
    def on_upsample(src, index, path, js, motions_, progress=gr.Progress()):
        if upsampler is None:
            raise UserError(f"joint up-sampling is not available: {up_error}")
        cb = progress_callback(progress, LONG_TIME_LIMIT_S)
        cb(0.0, "preparing")
        motion = _pick(src, index, path, motions_)
        mean = None
        if ctx.data_root is not None:
            try:
                mean = training_mean_pose(ctx.data_root)
            except UserError:
                mean = None
        out = upsample_motion(upsampler, motion, js, None, None, mean, cb)
        fig = player_value([out.sparse, out.output], titles=[f"input: the {out.joint_set} joints",
                                                             "AE-GAN: full skeleton"],
                           roles=["input", "aegan"], layout="overlay")
        paths = export_files(out.output, ["npy", "json", "bvh"], stem=f"upsampled_{out.joint_set}")
        new = add_motions(motions_, out.output)
        return fig, upsample_figure(out), upsample_markdown(out), paths, new, _choices(new)

    def on_refresh(motions_):
        return _choices(motions_)

    run_btn.click(on_run, [source, session_pick, upload, drop_j, drop_f, noise, limb, seed, shift, steps, preset_radio,
                           denoise, motions_state], [view, chart, info, files, motions_state, session_pick],
                  api_name="inpaint", **long)
    up_btn.click(on_upsample, [source, session_pick, upload, joint_set, motions_state],
                 [view, chart, info, files, motions_state, session_pick], api_name="inpaint_upsample", **long)
    if has_state:
        motions_state.change(on_refresh, [motions_state], [session_pick], api_name="inpaint_session_changed",
                             queue=False)
    upload.upload(lambda p: gr.Radio(value=UPLOAD), [upload], [source], api_name="inpaint_uploaded", queue=False)


def _choices(motions: list[Motion] | None):
    ch = motion_choices(motions)
    return gr.Dropdown(choices=ch, value=ch[0][1] if ch else None)
