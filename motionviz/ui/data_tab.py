"""The "Data" tab: browse the datasets (dataset -> exercise -> subject -> style -> correct/incorrect ->
sequence), view a sequence in 3D on its native or the common skeleton, compare correct and incorrect
executions, upload your own file and download any of them.

Listing a dataset is fast: large datasets (UI-PRMD, IRDS, Bandai-Namco) are indexed from their file
names and one sequence is read when it is chosen; small ones (KIMORE, KERAAL, HumanML3D) are read once
and kept in memory, read-only and shared by all users.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from ..core.errors import UserError
from ..core.motion import Motion
from ..core.skeleton import COMMON
from ..data import load_user_file
from ..data.browse import (
    DATASET_TITLES,
    GRID_MAX,
    Selection,
    _counterparts,
    _label_title,
    _style_title,
    available_datasets,
    cascade,
    index_dataset,
    load_entry,
)
from .common import (
    CPU_LIMIT,
    CPU_QUEUE,
    EXPORT_FORMATS,
    FAST_FORMATS,
    MAX_UPLOAD_BYTES,
    AppContext,
    add_motions,
    export_files,
    export_many,
    label_details,
    motion_markdown,
    progress_callback,
    session_state,
    uploaded_motion_file,
    user_error,
)
from .player import controls, player, player_value, view_export

__all__ = ["build", "show_sequence", "upload_motion", "prepare_downloads", "MAX_UPLOAD_BYTES"]

log = logging.getLogger("motionviz.ui.data")

UPLOAD_TYPES = [".npy", ".npz", ".csv", ".bvh", ".json", ".xz", ".gz"]
DATA_QUEUE = "data"       # light events of this tab (index, one file): their own queue

VIEWS = [("One sequence", "single"),
         ("Correct vs incorrect, side by side", "pair"),
         ("Correct vs incorrect, overlaid", "overlay"),
         (f"Repetitions of this subject (up to {GRID_MAX})", "grid")]
SKELETONS = [("Native skeleton", "native"), ("Common 15-joint skeleton", "common")]


# ---- callbacks (plain functions: the tests call them directly) ---------------------------------
def _prepare(m: Motion, skeleton: str) -> Motion:
    if skeleton == "common" and m.skeleton.name != COMMON.name:
        return m.retarget(COMMON)
    return m


def _title(m: Motion) -> str:
    lab = m.labels
    bits = ([_label_title(lab.label)] if lab.label else []) + label_details(lab, _style_title)
    return " · ".join(bits) or "motion"


def figure_for(motions: list[Motion], view: str) -> str:
    """The player value (:func:`motionviz.ui.player.player_value`) for the motions shown: one motion, a
    correct/incorrect pair side by side or overlaid (coloured by execution), or the subject's repetitions."""
    if len(motions) == 1 or view == "single":
        return player_value(motions[:1], titles=[_title(motions[0])])
    roles = None
    if view in ("pair", "overlay"):
        roles = [None if m.labels.correct is None else ("correct" if m.labels.correct else "incorrect")
                 for m in motions]
    return player_value(motions, titles=[_title(m) for m in motions], roles=roles,
                        layout="overlay" if view == "overlay" else "grid")


def show_sequence(dataset: str, key: str | None, skeleton: str = "native", view: str = "single",
                  root: str | Path | None = None) -> tuple[Any, str, list[Motion]]:
    """Load the chosen sequence (and its counterparts for the comparison views); return
    (figure, metadata markdown, shown motions)."""
    if not dataset:
        raise UserError("choose a dataset first")
    if not key:
        raise UserError("no sequence matches these choices")
    idx = index_dataset(dataset, root)
    entry = idx.by_key.get(key)
    if entry is None:
        raise UserError(f"sequence {key!r} is not part of {dataset}; choose it again")
    entries = [entry] + _counterparts(idx, entry, view or "single")
    motions = [_prepare(load_entry(e, root), skeleton) for e in entries]
    meta = motion_markdown(motions[0])
    if len(motions) > 1:
        meta += "\n\n**Also shown:** " + "; ".join(
            f"{_title(m)} ({m.num_frames} frames, `{m.labels.source}`)" for m in motions[1:])
    return figure_for(motions, view), meta, motions


def upload_motion(path: str | None, skeleton: str = "native") -> tuple[Any, str, list[Motion]]:
    """Read a user file (.npy, .csv, .bvh, .json); return (figure, metadata markdown, [motion])."""
    p = uploaded_motion_file(path, limit=MAX_UPLOAD_BYTES)
    try:
        m = load_user_file(p)
    except UserError:
        raise
    except (ValueError, OSError, EOFError, KeyError, IndexError, UnicodeDecodeError) as e:
        log.warning("upload %s not read: %s", p.name, type(e).__name__)   # no content in the message
        raise UserError(f"could not read {p.name} ({type(e).__name__}); see the accepted formats") from e
    m = m.with_labels(source=p.name)
    m = _prepare(m, skeleton)
    return figure_for([m], "single"), motion_markdown(m), [m]


def prepare_downloads(shown: list[Motion] | None, formats: list[str] | None,
                      progress: Callable[[float, str], None] | None = None) -> list[str]:
    """Export the motions shown into a fresh temp folder; return the file paths."""
    if not shown:
        raise UserError("load or upload a motion first")
    if not formats:
        raise UserError("choose at least one file format")
    if len(shown) == 1:
        return export_files(shown[0], formats, stem=shown[0].labels.label or "motion", progress=progress)
    return export_many(shown, formats, progress=progress)


# ---- layout + wiring ---------------------------------------------------------------------------
def _updates(sel: Selection) -> list:
    return [
        gr.Dropdown(choices=sel.exercises, value=sel.exercise),
        gr.Dropdown(choices=sel.subjects, value=sel.subject, visible=len(sel.subjects) > 1),
        gr.Dropdown(choices=sel.styles, value=sel.style, visible=len(sel.styles) > 1),
        gr.Radio(choices=sel.corrects, value=sel.correct, visible=len(sel.corrects) > 1),
        gr.Dropdown(choices=sel.sequences, value=sel.sequence),
    ]


def build(ctx: AppContext) -> None:
    root = ctx.data_root
    datasets = available_datasets(root) if root is not None else []
    first = datasets[0] if datasets else None
    sel0: Selection | None = None
    if first is not None:
        try:
            sel0 = cascade(index_dataset(first, root), None, None, None, None, None)
        except UserError as e:
            log.warning("could not index %s: %s", first, e)

    if ctx.data_sample:
        gr.Markdown("**Showing the embedded UI-PRMD sample:** subject s10, one correct and one incorrect repetition "
                    "of each of the 10 exercises (public domain, ODC PDDL). For every dataset, set `MOTIONVIZ_DATA` "
                    "to the full data folder. You can also upload your own file below.", elem_id="data-sample")
    if root is None:
        gr.Markdown(f"**No data folder found.** {ctx.data_message}  \nYou can still upload your own file "
                    "below.", elem_id="data-missing")
    elif not datasets:
        gr.Markdown(f"**No known dataset in `{root}`.** You can still upload your own file below.",
                    elem_id="data-missing")

    with gr.Row(equal_height=False, elem_classes=["mv-split"]):
        with gr.Column(scale=1, min_width=300):
            with controls():
                dataset = gr.Dropdown(choices=[(DATASET_TITLES[d], d) for d in datasets], value=first,
                                      label="Dataset", elem_id="data-dataset", interactive=True)
                exercise = gr.Dropdown(choices=sel0.exercises if sel0 else [], value=sel0.exercise if sel0 else None,
                                       label="Exercise / content", elem_id="data-exercise", interactive=True,
                                       allow_custom_value=True)
                subject = gr.Dropdown(choices=sel0.subjects if sel0 else [], value=sel0.subject if sel0 else None,
                                      label="Subject", elem_id="data-subject", interactive=True,
                                      allow_custom_value=True,
                                      visible=bool(sel0 and len(sel0.subjects) > 1))
                style = gr.Dropdown(choices=sel0.styles if sel0 else [], value=sel0.style if sel0 else None,
                                    label="Style", elem_id="data-style", interactive=True, allow_custom_value=True,
                                    visible=bool(sel0 and len(sel0.styles) > 1))
                correct = gr.Radio(choices=sel0.corrects if sel0 else [], value=sel0.correct if sel0 else None,
                                   label="Execution", elem_id="data-correct", interactive=True,
                                   visible=bool(sel0 and len(sel0.corrects) > 1))
                sequence = gr.Dropdown(choices=sel0.sequences if sel0 else [], value=sel0.sequence if sel0 else None,
                                       label="Sequence", elem_id="data-sequence", interactive=True,
                                       allow_custom_value=True)
                skeleton = gr.Radio(choices=SKELETONS, value="native", label="Skeleton", elem_id="data-skeleton")
                view = gr.Radio(choices=VIEWS, value="single", label="View", elem_id="data-view")
                with gr.Accordion("Upload your own file", open=False):
                    gr.Markdown("A `.npy` array (frames, joints, 3) in metres, a `.csv`, a `.bvh` or a motionviz "
                                "`.json` export (at most 64 MB).")
                    upload = gr.File(label="Motion file", file_types=UPLOAD_TYPES, type="filepath",
                                     elem_id="data-upload")
        with gr.Column(scale=3):
            plot = player(label="3D player", elem_id="data-plot")
            view_export(plot, "data-plot")
            meta = gr.Markdown(elem_id="data-meta")
            with gr.Row():
                formats = gr.CheckboxGroup(choices=list(EXPORT_FORMATS), value=list(FAST_FORMATS),
                                           label="Download formats (GIF and MP4 take a few seconds)",
                                           elem_id="data-formats", scale=3)
                with gr.Column(scale=1, min_width=160):
                    export_btn = gr.Button("Prepare downloads", elem_id="data-export")
                    add_btn = gr.Button("Use in other tabs", elem_id="data-add", variant="secondary")
            files = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="data-files")
    shown = session_state([])

    # A filter change updates the dropdowns below it *and* shows the chosen sequence in one event, so
    # the sequence shown never comes from a stale dropdown value of the browser.
    @user_error
    def on_dataset(name, skel, mode):
        idx = index_dataset(name, root)
        sel = cascade(idx, None, None, None, None, None)
        return (*_updates(sel), *show_sequence(name, sel.sequence, skel, mode, root))

    @user_error
    def on_filter(name, ex, subj, sty, corr, seq, skel, mode):
        idx = index_dataset(name, root)
        sel = cascade(idx, ex, subj, sty, corr, seq)
        return (*_updates(sel), *show_sequence(name, sel.sequence, skel, mode, root))

    @user_error
    def on_show(name, key, skel, mode):
        return show_sequence(name, key, skel, mode, root)

    @user_error
    def on_upload(path, skel):
        return upload_motion(path, skel)

    @user_error
    def on_export(current, fmts, progress=gr.Progress()):
        return prepare_downloads(current, fmts, progress_callback(progress))

    @user_error
    def on_add(current, session):
        if not current:
            raise UserError("load or upload a motion first")
        gr.Info(f"{len(current)} motion(s) added; the other tabs can use them now")
        return add_motions(session, current)

    # The filter dropdowns accept values outside their current choices: the browser may send an event
    # twice, and the repeat carries the value from before the first one updated the choices.  The
    # cascade replaces such stale values by valid ones, so nothing is lost and no error is shown.
    filters = [exercise, subject, style, correct, sequence]
    show_in = [dataset, sequence, skeleton, view]
    show_out = [plot, meta, shown]
    light = dict(concurrency_id=DATA_QUEUE, concurrency_limit=CPU_LIMIT)
    shows = [dataset.input(on_dataset, [dataset, skeleton, view], filters + show_out, api_name="data_dataset",
                           **light)]
    for comp, nm in ((exercise, "exercise"), (subject, "subject"), (style, "style"), (correct, "correct")):
        shows.append(comp.input(on_filter, [dataset] + filters + [skeleton, view], filters + show_out,
                                api_name=f"data_{nm}", **light))
    shows.append(sequence.input(on_show, show_in, show_out, api_name="data_show", **light))
    shows.append(skeleton.input(on_show, show_in, show_out, api_name="data_skeleton", **light))
    shows.append(view.input(on_show, show_in, show_out, api_name="data_view", **light))
    # whatever is shown anew, the Downloads box no longer offers the files of what was shown before
    for ev in shows:
        ev.success(lambda: None, None, [files], queue=False, api_name="data_clear_downloads",
                   api_visibility="private")
    # an uploaded file is not a dataset sequence: the dataset filters are cleared, not left pointing elsewhere
    upload.upload(on_upload, [upload, skeleton], show_out, api_name="data_upload", **light).success(
        lambda: [gr.Dropdown(value=None)] + [gr.update(value=None)] * len(filters) + [None], None,
        [dataset] + filters + [files], queue=False, api_name="data_clear_filters", api_visibility="private")
    export_btn.click(on_export, [shown, formats], [files], api_name="data_export",
                     concurrency_id=CPU_QUEUE, concurrency_limit=CPU_LIMIT)
    add_btn.click(on_add, [shown, ctx.motions], [ctx.motions], api_name="data_add_to_session")
    if sel0 is not None and ctx.demo is not None:
        ctx.demo.load(on_show, show_in, show_out, api_name="data_initial", **light)
