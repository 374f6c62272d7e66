"""The "Body mesh & video" tab.

* Body mesh: a motion of a dataset or of this session posed on the Anny body (or the user's SMPL model
  when ``$MOTIONVIZ_SMPL_DIR`` is set), drawn beside (or over) its skeleton and moved by the same
  slider; one frame (.glb / .obj) or the whole sequence (a rigged .glb: skeleton, skin and joint
  animation; or an animated .glb of morph targets, or a .zip of .obj) downloads at full resolution.
* Video -> skeleton: an uploaded .mp4/.gif/.webm goes through BlazePose, the common skeleton and the
  inpainter (or smoothing); annotated key frames beside the 3D view, the recognised exercise, downloads
  (.npy, JSON, BVH), and the motion can join the session (e.g. to see it as a body mesh).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from .. import mesh, video
from ..core.errors import UserError
from ..core.motion import DEFAULT_FPS, Motion
from ..core.skeleton import COMMON
from ..data import browse
from ..export import motion_stem
from ..mesh import animation as mesh_A
from ..mesh import export as mesh_E
from ..mesh.rig import export_rigged
from .common import (
    CPU_LIMIT,
    CPU_QUEUE,
    LONG_LIMIT,
    LONG_QUEUE,
    LONG_TIME_LIMIT_S,
    AppContext,
    add_motions,
    export_dir,
    export_files,
    motion_choices,
    pick_motion,
    progress_callback,
    session_state,
    to_int,
    uploaded_path,
    user_error,
)
from .player import MAX_MESH_FRAMES as PLAYER_MESH_FRAMES
from .player import SIDE_LEGEND, glb_value, player, player_value

__all__ = ["build", "prepare_motion", "mesh_view", "export_mesh", "process_video", "dataset_motion",
           "SOURCE_DATASET", "SOURCE_SESSION", "LAYOUTS", "VIDEO_TYPES"]

log = logging.getLogger("motionviz.ui.mesh")

SOURCE_DATASET = "A dataset sequence"
SOURCE_SESSION = "A motion of this session"
LAYOUTS = [("Side by side", "side"), ("Overlaid", "overlay")]
VIDEO_TYPES = [".mp4", ".gif", ".webm"]
MAX_MESH_FRAMES = 400
SEQ_EXPORT_FRAMES = 60


# ---- logic (testable without the UI) ------------------------------------------------------------
def dataset_motion(dataset: str | None, sequence: str | None, root: Path | None = None) -> Motion:
    """The chosen dataset sequence (native skeleton)."""
    if not dataset:
        raise UserError("choose a dataset")
    idx = browse.index_dataset(dataset, root)
    entry = idx.by_key.get(sequence or "")
    if entry is None:
        raise UserError("choose a sequence")
    return browse.load_entry(entry, root)


def prepare_motion(motion: Motion, max_frames: Any) -> Motion:
    """Common skeleton, normalised (facing +Z, feet on the floor, reference size), 20 fps, first
    ``max_frames`` frames."""
    n = to_int(max_frames, "frames", 1, MAX_MESH_FRAMES)
    if motion.joints.shape[-1] != 3:
        raise UserError("a body mesh needs a 3D motion")
    m = motion.retarget(COMMON) if motion.skeleton.name != COMMON.name else motion
    m = m.resample(DEFAULT_FPS).normalise(scale=False)
    return m.crop(0, n) if m.num_frames > n else m


def mesh_view(motion: Motion, body: str, layout: str, progress=None):
    """(figure, markdown) of the body posed by ``motion`` (already prepared)."""
    anim = mesh_A.mesh_animation(motion, body=body or "auto", progress=progress)
    idx = np.unique(np.round(np.linspace(0, anim.num_frames - 1, min(anim.num_frames, PLAYER_MESH_FRAMES))).astype(int))
    body_mesh = (anim.vertices(preview=True, frames=idx), anim.faces(preview=True))
    legend = list(SIDE_LEGEND) + [(mesh.SKIN_COLOR, f"{anim.body.name} body mesh")]
    if (layout or "side") == "overlay":
        fig = player_value([motion], titles=["skeleton and body"], meshes=[body_mesh], legend=legend)
    else:
        fig = player_value([motion, motion], titles=["skeleton", "body on the skeleton"], meshes=[None, body_mesh],
                           legend=legend)
    b = anim.body
    text = (f"**{b.name}** body, {b.num_vertices:,} vertices ({len(b.preview_faces):,} faces shown in the "
            f"browser; downloads are full resolution) · {motion.num_frames} frames at {motion.fps:g} fps · "
            f"posed in {anim.seconds:.2f} s · mean distance body joints ↔ motion joints "
            f"{100 * anim.joint_error():.1f} cm.  \n{b.info.get('licence', '')}")
    return fig, text


def export_mesh(motion: Motion, body: str, what: str, frame: Any, fmt: str, progress=None) -> str:
    """Write one frame (``what="frame"``; .glb/.obj) or the sequence (``fmt="glb-rigged"``: the rigged,
    skinned body with every frame; ``"glb"``: morph targets; ``"obj"``: a .zip) and return its path."""
    anim = mesh_A.mesh_animation(motion, body=body or "auto", progress=progress)
    out = export_dir()
    stem = f"{motion_stem(motion)}_{anim.body.name}"
    ext = (fmt or "glb").lower().lstrip(".")
    if ext not in ("glb", "obj", "glb-rigged"):
        raise UserError(f"choose glb, obj or glb-rigged, not {fmt!r}")
    if ext == "glb-rigged":
        if what != "sequence":
            raise UserError("a rigged .glb holds the whole sequence: use “Download the sequence”")
        return str(export_rigged(anim, out / f"{stem}_rigged.glb", progress=progress))
    if what == "sequence":
        name = f"{stem}.glb" if ext == "glb" else f"{stem}_obj.zip"
        return str(mesh_E.export_sequence(anim, out / name, max_frames=SEQ_EXPORT_FRAMES, progress=progress))
    f = to_int(frame, "frame", 0, motion.num_frames - 1)
    return str(mesh_E.export_frame(anim, f, out / f"{stem}_frame{f:04d}.{ext}"))


def process_video(path: str | None, max_frames: Any, use_inpainter: bool, checkpoint_dir: Path | None,
                  progress=None) -> tuple[Motion, Any, list, str, list[str]]:
    """(motion, 3D figure, annotated key frames, markdown, download paths) for an uploaded video."""
    if not path:
        raise UserError("upload a video first (.mp4, .gif or .webm)")
    path = str(uploaded_path(path, "video"))
    n = to_int(max_frames, "frames to process", 1, 1800)
    res = video.video_to_motion(path, max_frames=n, checkpoint_dir=checkpoint_dir,
                                use_inpainter=bool(use_inpainter), progress=progress)
    m = res.motion
    fig = player_value([res.raw, m], titles=["BlazePose (missing joints left out)", f"cleaned ({res.method})"],
                       roles=["input", "output"], layout="overlay",
                       caption=f"{Path(path).name}: {m.num_frames} frames at {m.fps:.3g} fps")
    gallery = [(img, f"frame {int(res.track.frame_index[k])}") for k, img in res.track.keyframes]
    s = res.summary()
    rec = res.recognition
    lines = [
        f"**{s['frames']} frames** at {s['fps']:g} fps · person found in **{100 * s['detected_ratio']:.0f}%** of "
        f"frames · {100 * s['observed_joint_ratio']:.0f}% of joints seen clearly · pose estimation "
        f"{1000 * s['pose_seconds_per_frame']:.0f} ms/frame",
        f"**Cleaning:** {res.note}.",
        (f"**Recognised exercise:** {rec['title']} (`{rec['label']}`, p = {rec['probability']:.2f})"
         + ("" if rec.get("correct") is None else f", {'correct' if rec['correct'] else 'incorrect'} execution")
         + ("; next guesses: " + ", ".join(f"{t['title']} ({t['probability']:.2f})" for t in rec.get("top", [])[1:])
            if len(rec.get("top", [])) > 1 else "")
         if rec else f"**Recognised exercise:** – ({res.recognition_note or 'not asked'})"),
    ]
    files = export_files(m, ["npy", "json", "bvh"], stem=m.labels.label or "video")
    return m, fig, gallery, "  \n".join(lines), files


# ---- the tab ----------------------------------------------------------------------------------------
def build(ctx: AppContext) -> None:
    has_state = ctx.motions is not None
    motions_state = ctx.motions if has_state else gr.State([])
    heavy = dict(concurrency_id=CPU_QUEUE, concurrency_limit=CPU_LIMIT)
    datasets = browse.available_datasets(ctx.data_root) if ctx.data_root is not None else []
    ds_choices = [(browse.DATASET_TITLES.get(d, d), d) for d in datasets]
    bodies = mesh_A.body_choices()

    gr.Markdown(
        "**Body mesh.** The motion is posed on the open **Anny** body (13,718 vertices; code Apache-2.0, "
        "MakeHuman body data CC0) by bone-direction inverse kinematics, its proportions stretched to the "
        "motion's bone lengths; " + ("your **SMPL** model (`$MOTIONVIZ_SMPL_DIR`) is available too. "
                                     if "smpl" in bodies else
                                     "set `$MOTIONVIZ_SMPL_DIR` to your own SMPL model files to use SMPL. ")
        + "The slider moves the skeleton and the body together.")
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            source = gr.Radio([SOURCE_DATASET, SOURCE_SESSION], value=SOURCE_DATASET if datasets else SOURCE_SESSION,
                              label="Motion")
            dataset = gr.Dropdown(ds_choices, value=datasets[0] if datasets else None, label="Dataset",
                                  elem_id="mv-mesh-dataset")
            exercise = gr.Dropdown([], value=None, label="Exercise / action")
            sequence = gr.Dropdown([], value=None, label="Sequence")
            session = gr.Dropdown([], value=None, label="Session motion")
            body = gr.Radio(bodies, value=bodies[-1] if len(bodies) > 1 else bodies[0], label="Body")
            layout = gr.Radio(LAYOUTS, value="side", label="Layout")
            frames = gr.Slider(10, MAX_MESH_FRAMES, value=120, step=10, label="Frames (20 fps, from the start)")
            show_btn = gr.Button("Show body", variant="primary", elem_id="mv-mesh-show")
        with gr.Column(scale=3):
            mesh_plot = player(elem_id="mv-mesh-plot")
            mesh_info = gr.Markdown("")
            with gr.Row():
                exp_frame = gr.Number(0, precision=0, minimum=0, label="Frame to export")
                exp_fmt = gr.Radio([("glb", "glb"), ("obj", "obj"), ("rigged glb (sequence)", "glb-rigged")],
                                   value="glb", label="Format")
                frame_btn = gr.Button("Download this frame")
                seq_btn = gr.Button(f"Download the sequence (rigged .glb with every frame; ≤ {SEQ_EXPORT_FRAMES} "
                                    "frames: animated .glb, or a .zip of .obj)")
            mesh_file = gr.File(label="Mesh download", interactive=False)
            with gr.Row():
                glb_show = gr.Button("Play the rigged .glb download in the viewer", elem_id="mv-glb-show")
                glb_upload = gr.File(label="…or view a .glb of your own (skinned and animated, ≤ 32 MB)",
                                     file_types=[".glb"], type="filepath", elem_id="mv-glb-upload")
    mesh_motion = session_state(None)

    gr.Markdown("---\n**Video → skeleton.** Upload a video of one person exercising (.mp4, .gif or .webm, at "
                f"most {video.MAX_SECONDS:g} s). MediaPipe BlazePose finds 33 landmarks per frame; they are "
                "mapped to the 15-joint skeleton, joints seen poorly are filled in and jitter removed "
                "(AE-GAN inpainter when its checkpoint exists, else smoothing).")
    with gr.Row(elem_id="mv-video-row"):
        with gr.Column(scale=1, min_width=300):
            upload = gr.File(file_types=VIDEO_TYPES, type="filepath", label="Video", elem_id="mv-video-upload")
            v_frames = gr.Slider(10, 1800, value=300, step=10, label="Process at most this many frames")
            v_inpaint = gr.Checkbox(True, label="Use the AE-GAN inpainter when available")
            v_btn = gr.Button("Extract the skeleton", variant="primary", elem_id="mv-video-run")
            v_info = gr.Markdown("")
            v_files = gr.File(label="Downloads (.npy, JSON, BVH)", file_count="multiple", interactive=False)
            with gr.Row():
                v_add = gr.Button("Add to session")
                v_mesh = gr.Button("Show as body mesh")
        with gr.Column(scale=1, min_width=280):
            v_gallery = gr.Gallery(label="Key frames with the detected landmarks", columns=2, height=520,
                                   object_fit="contain")
        with gr.Column(scale=2):
            v_plot = player(elem_id="mv-video-plot")
    v_motion = session_state(None)

    # ---- callbacks ----------------------------------------------------------------------------------
    def _cascade(ds, ex, seq):
        if not ds:
            return gr.Dropdown(choices=[], value=None), gr.Dropdown(choices=[], value=None)
        idx = browse.index_dataset(ds, ctx.data_root)
        sel = browse.cascade(idx, ex, browse.ANY, browse.ANY, browse.ANY, seq)
        return (gr.Dropdown(choices=sel.exercises, value=sel.exercise),
                gr.Dropdown(choices=sel.sequences, value=sel.sequence))

    @user_error
    def on_dataset(ds):
        return _cascade(ds, None, None)

    @user_error
    def on_exercise(ds, ex):
        return _cascade(ds, ex, None)

    def _source_motion(src, ds, seq, motions_, index) -> Motion:
        if src == SOURCE_SESSION:
            return pick_motion(motions_, index)
        return dataset_motion(ds, seq, ctx.data_root)

    @user_error
    def on_show(src, ds, seq, motions_, index, body_, layout_, frames_, progress=gr.Progress()):
        cb = progress_callback(progress)
        cb(0.02, "loading the motion")
        m = prepare_motion(_source_motion(src, ds, seq, motions_, index), frames_)
        fig, text = mesh_view(m, body_, layout_, cb)
        return fig, text, m, gr.Number(value=0, maximum=m.num_frames - 1)

    @user_error
    def on_export(m, body_, what, frame_, fmt, progress=gr.Progress()):
        if m is None:
            raise UserError("show a body first")
        return export_mesh(m, body_, what, frame_, fmt, progress_callback(progress))

    @user_error
    def on_glb_show(path):
        raw = path.get("path") if isinstance(path, dict) else getattr(path, "path", path)
        if not raw or not str(raw).lower().endswith(".glb"):
            raise UserError("download the sequence as a rigged .glb first (Format: rigged glb sequence)")
        p = uploaded_path(path, "download")            # the app's own file, served from Gradio's folder
        return glb_value(p, notice="the downloaded file, played by the viewer",
                         caption="The .glb as written: its skeleton, skin and animation are read in the browser.")

    @user_error
    def on_glb_upload(path):
        if not path:
            return gr.skip()
        return glb_value(uploaded_path(path, ".glb file"), caption="A .glb read in the browser: skin and animation.")

    @user_error
    def on_video(path, frames_, inpaint_, progress=gr.Progress()):
        m, fig, gallery, text, files = process_video(path, frames_, inpaint_, ctx.checkpoint_dir,
                                                     progress_callback(progress, LONG_TIME_LIMIT_S))
        return m, fig, gallery, text, files

    @user_error
    def on_add(m, motions_):
        if m is None:
            raise UserError("extract a skeleton from a video first")
        new = add_motions(motions_, m)
        ch = motion_choices(new)
        return new, gr.Dropdown(choices=ch, value=ch[0][1])

    @user_error
    def on_video_mesh(m, motions_, body_, layout_, frames_, progress=gr.Progress()):
        if m is None:
            raise UserError("extract a skeleton from a video first")
        new = add_motions(motions_, m)
        ch = motion_choices(new)
        pm = prepare_motion(m, frames_)
        fig, text = mesh_view(pm, body_, layout_, progress_callback(progress))
        return (new, gr.Dropdown(choices=ch, value=ch[0][1]), gr.Radio(value=SOURCE_SESSION), fig, text, pm,
                gr.Number(value=0, maximum=pm.num_frames - 1))

    def on_refresh(motions_):
        ch = motion_choices(motions_)
        return gr.Dropdown(choices=ch, value=ch[0][1] if ch else None)

    dataset.change(on_dataset, [dataset], [exercise, sequence], api_name="mesh_dataset", queue=False)
    exercise.input(on_exercise, [dataset, exercise], [exercise, sequence], api_name="mesh_exercise", queue=False)
    show_inputs = [source, dataset, sequence, motions_state, session, body, layout, frames]
    show_outputs = [mesh_plot, mesh_info, mesh_motion, exp_frame]
    show_btn.click(on_show, show_inputs, show_outputs, api_name="mesh_show", **heavy)
    frame_btn.click(lambda m, b, f, fmt, progress=gr.Progress(): on_export(m, b, "frame", f, fmt, progress),
                    [mesh_motion, body, exp_frame, exp_fmt], [mesh_file], api_name="mesh_export_frame", **heavy)
    seq_btn.click(lambda m, b, f, fmt, progress=gr.Progress(): on_export(m, b, "sequence", f, fmt, progress),
                  [mesh_motion, body, exp_frame, exp_fmt], [mesh_file], api_name="mesh_export_sequence", **heavy)
    glb_show.click(on_glb_show, [mesh_file], [mesh_plot], api_name="mesh_show_glb", **heavy)
    glb_upload.upload(on_glb_upload, [glb_upload], [mesh_plot], api_name="mesh_view_glb", **heavy)
    v_btn.click(on_video, [upload, v_frames, v_inpaint], [v_motion, v_plot, v_gallery, v_info, v_files],
                api_name="video_extract", concurrency_id=LONG_QUEUE, concurrency_limit=LONG_LIMIT)
    v_add.click(on_add, [v_motion, motions_state], [motions_state, session], api_name="video_add_session")
    v_mesh.click(on_video_mesh, [v_motion, motions_state, body, layout, frames],
                 [motions_state, session, source, mesh_plot, mesh_info, mesh_motion, exp_frame],
                 api_name="video_show_mesh", **heavy)
    if has_state:
        motions_state.change(on_refresh, [motions_state], [session], api_name="mesh_session_changed",
                             queue=False)
    if ctx.demo is not None and datasets:
        ctx.demo.load(on_dataset, [dataset], [exercise, sequence], api_name="mesh_initial", queue=False)
