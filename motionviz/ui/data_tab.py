"""The "Data" tab: browse the datasets (dataset -> exercise -> subject -> style -> correct/incorrect ->
sequence), view a sequence in 3D on its native or the common skeleton, compare correct and incorrect
executions, upload your own file and download any of them.

Listing a dataset is fast: large datasets (UI-PRMD, IRDS, Bandai-Namco) are indexed from their file
names and one sequence is read when it is chosen; small ones (KIMORE, KERAAL, HumanML3D) are read once
and kept in memory, read-only and shared by all users.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from ..core.errors import DataNotFound, UserError
from ..core.motion import Motion
from ..core.skeleton import COMMON
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
    motion_markdown,
    progress_callback,
    session_state,
    uploaded_motion_file,
    user_error,
)
from .player import controls, player, view_export

__all__ = ["Entry", "DatasetIndex", "index_dataset", "load_entry", "available_datasets", "DATASET_TITLES",
           "build", "show_sequence", "upload_motion", "prepare_downloads", "MAX_UPLOAD_BYTES"]

log = logging.getLogger("motionviz.ui.data")

#: Dataset registry name -> what the dropdown shows (in display order).
DATASET_TITLES: dict[str, str] = {
    "ui-prmd": "UI-PRMD: 10 exercises, healthy subjects, correct + incorrect (Kinect)",
    "kimore": "KIMORE: 5 exercises, 31 patients with clinical scores (Kinect)",
    "kimore-raw": "KIMORE raw samples: 5 exercises, 2 subjects (raw Kinect)",
    "irds": "IntelliRehabDS: 9 gestures, 3 patients, correct + incorrect (Kinect)",
    "keraal": "KERAAL: 3 low-back exercises, 5 capture systems",
    "bandai": "Bandai-Namco: everyday actions in many styles (optical mocap)",
    "humanml3d": "HumanML3D: one sample motion",
}

UPLOAD_TYPES = [".npy", ".npz", ".csv", ".bvh", ".json", ".xz", ".gz"]
ANY = "__any__"
DATA_QUEUE = "data"       # light events of this tab (index, one file): their own queue
GRID_MAX = 12

VIEWS = [("One sequence", "single"),
         ("Correct vs incorrect, side by side", "pair"),
         ("Correct vs incorrect, overlaid", "overlay"),
         (f"Repetitions of this subject (up to {GRID_MAX})", "grid")]
SKELETONS = [("Native skeleton", "native"), ("Common 15-joint skeleton", "common")]


# ---- the light index ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One sequence of a dataset, known without reading it."""

    dataset: str            # registry name (ui-prmd, kimore, kimore-raw, irds, keraal, bandai, humanml3d)
    key: str                # unique within the dataset: file path relative to the data root (+ "#row")
    label: str              # "<dataset>:<id>"
    subject: str = ""
    style: str = ""
    correct: bool | None = None
    number: int = 0         # repetition / episode / take (pairs correct with incorrect executions)
    name: str = ""          # what the sequence dropdown shows


@dataclass
class DatasetIndex:
    name: str
    root: Path
    entries: list[Entry]
    by_key: dict[str, Entry]


_UIPRMD = re.compile(r"m(\d\d)_s(\d\d)_e(\d\d)_positions(_inc)?\.txt\.gz$")
_IRDS = re.compile(r"(\d+)_(\d+)_(\d+)_(\d+)_(\d+)_([a-z]+)\.csv\.xz$")
_BANDAI = re.compile(r"(dataset-[12])_(.+)_([a-z-]+)_(\d{3})\.bvh(\.xz)?$")

_lock = threading.Lock()
_indexes: dict[tuple[str, str], DatasetIndex] = {}
_whole: dict[tuple[str, str], dict[str, Motion]] = {}      # small datasets read once: key -> Motion
_loaded: "OrderedDict[tuple[str, str, str], Motion]" = OrderedDict()   # LRU of single-file reads
_LRU_SIZE = 64


def _rel(path: str | Path, root: Path) -> str:
    p = Path(path)
    try:
        return p.resolve().relative_to(root).as_posix()
    except ValueError:
        return p.as_posix()


def _from_file_names(name: str, root: Path, files: list[Path]) -> list[Entry] | None:
    """Entries parsed from file names for the large datasets; None for the others."""
    out: list[Entry] = []
    if name == "ui-prmd":
        for f in files:
            m = _UIPRMD.search(f.name)
            if m is None:
                continue
            ex, subj, ep, inc = m.groups()
            ok = inc is None
            out.append(Entry(name, _rel(f, root), f"ui-prmd:m{ex}", f"s{subj}", "", ok, int(ep),
                             f"episode {int(ep):02d} ({'correct' if ok else 'incorrect'})"))
        return out
    if name == "irds":
        for f in files:
            m = _IRDS.search(f.name)
            if m is None:
                continue
            subj, _date, gesture, rep, corr, position = m.groups()
            ok = {"1": True, "2": False}.get(corr)
            what = "correct" if ok else ("incorrect" if ok is False else "unrated")
            out.append(Entry(name, _rel(f, root), f"irds:{int(gesture)}", subj, "", ok, int(rep),
                             f"repetition {int(rep)} ({what}, {position})"))
        return out
    if name == "bandai":
        for f in files:
            m = _BANDAI.search(f.name)
            if m is None:
                continue
            part, content, style, take, _ = m.groups()
            out.append(Entry(name, _rel(f, root), f"bandai:{content}", "", style, None, int(take),
                             f"{part} take {take}"))
        return out
    return None


def _entry_from_motion(name: str, key: str, m: Motion) -> Entry:
    lab = m.labels
    extra = lab.extra or {}
    bits = []
    for k in ("modality", "kind"):
        if extra.get(k):
            bits.append(str(extra[k]))
    if lab.score is not None:
        bits.append(f"score {lab.score:.0f}")
    bits.append(f"{m.num_frames} frames")
    number = extra.get("repetition", extra.get("episode", extra.get("take", 0)))
    try:
        number = int(number)
    except (TypeError, ValueError):
        number = 0
    return Entry(name, key, lab.label, str(lab.subject or ""), str(lab.style or ""), lab.correct, number,
                 " · ".join(bits))


def _dataset_files(name: str, root: Path) -> list[Path]:
    from ..data import dataset_files

    return dataset_files(name, root)


def index_dataset(name: str, root: str | Path | None = None) -> DatasetIndex:
    """The light index of dataset ``name`` (cached per process).  Raises DataNotFound / UserError."""
    from ..data import data_root, load_dataset

    r = data_root(root)
    ck = (name, str(r))
    with _lock:
        if ck in _indexes:
            return _indexes[ck]
    files = _dataset_files(name, r)
    entries = _from_file_names(name, r, files)
    if entries is None:   # small dataset: read it once, keep it
        motions = load_dataset(name, r)
        table: dict[str, Motion] = {}
        entries = []
        for i, m in enumerate(motions):
            key = _rel(m.labels.source, r) if m.labels.source else f"{name}#{i}"
            if key in table:
                key = f"{key}@{i}"
            table[key] = m
            entries.append(_entry_from_motion(name, key, m))
        with _lock:
            _whole[ck] = table
    if not entries:
        raise DataNotFound(f"dataset {name!r} has no sequences under {r}")
    idx = DatasetIndex(name, r, entries, {e.key: e for e in entries})
    with _lock:
        _indexes[ck] = idx
    return idx


def _read_file(name: str, path: Path) -> Motion:
    if name == "ui-prmd":
        from ..data.uiprmd import read_uiprmd
        return read_uiprmd(path)
    if name == "irds":
        from ..data.irds import read_irds
        return read_irds(path)
    if name == "bandai":
        from ..data.bandai import read_bandai
        return read_bandai(path)
    raise UserError(f"no single-file reader for dataset {name!r}")


def load_entry(entry: Entry, root: str | Path | None = None) -> Motion:
    """The Motion of one index entry (native skeleton, metres; ``labels.source`` relative to the data root)."""
    from ..data import data_root

    r = data_root(root)
    ck = (entry.dataset, str(r))
    with _lock:
        table = _whole.get(ck)
        lk = (entry.dataset, str(r), entry.key)
        if table is None and lk in _loaded:
            _loaded.move_to_end(lk)
            return _loaded[lk]
    if table is not None:
        m = table.get(entry.key)
        if m is None:
            raise UserError(f"sequence {entry.key!r} is not in dataset {entry.dataset!r}")
    else:
        path = (r / entry.key).resolve()
        if not path.is_relative_to(r) or not path.is_file():
            raise DataNotFound(f"sequence file {entry.key} not found under {r}")
        try:
            m = _read_file(entry.dataset, path)
        except UserError:
            raise
        except (ValueError, OSError, EOFError) as e:
            raise UserError(f"could not read {entry.key}: {e}") from e
    m = m.with_labels(source=_rel(m.labels.source, r) if m.labels.source else entry.key)
    if table is None:
        with _lock:
            _loaded[lk] = m
            while len(_loaded) > _LRU_SIZE:
                _loaded.popitem(last=False)
    return m


def available_datasets(root: str | Path | None = None) -> list[str]:
    """Registry names of the datasets whose folder exists (in :data:`DATASET_TITLES` order)."""
    from ..data import data_root

    try:
        r = data_root(root)
    except UserError:
        return []
    out = []
    for name in DATASET_TITLES:
        try:
            if _dataset_files(name, r):
                out.append(name)
        except (UserError, KeyError, ImportError, OSError):
            continue
    return out


# ---- choices -----------------------------------------------------------------------------------
def _label_title(label: str) -> str:
    try:
        from ..data import LABEL_TITLES
    except ImportError:
        LABEL_TITLES = {}
    ident = label.split(":", 1)[-1]
    title = LABEL_TITLES.get(label)
    return f"{ident} · {title}" if title else ident


def _style_title(style: str) -> str:
    try:
        from ..data.labels import STYLE_TITLES
    except ImportError:
        STYLE_TITLES = {}
    return STYLE_TITLES.get(style, style)


def _sort_key(v: str) -> tuple:
    return tuple((0, int(t)) if t.isdigit() else (1, t) for t in re.split(r"(\d+)", v) if t)


def _uniq(values) -> list:
    return sorted(set(values), key=lambda v: _sort_key(str(v)))


def _correct_value(c: bool | None) -> str:
    return "correct" if c is True else ("incorrect" if c is False else "unrated")


@dataclass
class Selection:
    """The filter values and the choices each dropdown offers (what ``cascade`` computes)."""

    exercise: str | None
    subject: str
    style: str
    correct: str
    sequence: str | None
    exercises: list[tuple[str, str]]
    subjects: list[tuple[str, str]]
    styles: list[tuple[str, str]]
    corrects: list[tuple[str, str]]
    sequences: list[tuple[str, str]]


def cascade(idx: DatasetIndex, exercise: str | None, subject: str | None, style: str | None,
            correct: str | None, sequence: str | None) -> Selection:
    """Keep each value that is still valid given the ones above it, else take the first option."""
    def pick(value, options: list[str]):
        if value in options:
            return value
        concrete = [o for o in options if o != ANY]    # default: the first concrete value, not "all"
        return concrete[0] if concrete else (options[0] if options else None)

    es = idx.entries
    ex_opts = _uniq(e.label for e in es)
    exercise = pick(exercise, ex_opts)
    es = [e for e in es if e.label == exercise]

    subj_vals = _uniq(e.subject for e in es)
    subj_opts = ([ANY] + subj_vals) if len(subj_vals) > 1 else subj_vals
    subject = pick(subject, subj_opts)
    if subject != ANY:
        es = [e for e in es if e.subject == subject]

    style_vals = _uniq(e.style for e in es)
    style_opts = ([ANY] + style_vals) if len(style_vals) > 1 else style_vals
    style = pick(style, style_opts)
    if style != ANY:
        es = [e for e in es if e.style == style]

    corr_vals = [v for v in ("correct", "incorrect", "unrated") if any(_correct_value(e.correct) == v for e in es)]
    corr_opts = ([ANY] + corr_vals) if len(corr_vals) > 1 else corr_vals
    correct = pick(correct, corr_opts)
    if correct != ANY:
        es = [e for e in es if _correct_value(e.correct) == correct]

    es = sorted(es, key=lambda e: (_sort_key(e.subject), e.style, e.correct is False, e.number, e.key))
    seq_opts = [e.key for e in es]
    sequence = pick(sequence, seq_opts)
    seqs = [((f"{e.subject} · " if subject == ANY and e.subject else "")
             + (f"{_style_title(e.style)} · " if style == ANY and e.style else "") + e.name, e.key) for e in es]
    return Selection(
        exercise=exercise, subject=subject or "", style=style or "", correct=correct or "", sequence=sequence,
        exercises=[(_label_title(v), v) for v in ex_opts],
        subjects=[("all subjects" if v == ANY else v, v) for v in subj_opts],
        styles=[("all styles" if v == ANY else _style_title(v), v) for v in style_opts],
        corrects=[("both" if v == ANY else v, v) for v in corr_opts],
        sequences=seqs,
    )


def _counterparts(idx: DatasetIndex, entry: Entry, mode: str) -> list[Entry]:
    """Entries shown next to ``entry``: its correct/incorrect twin (``pair``/``overlay``) or more
    repetitions of the same subject, exercise and style (``grid``)."""
    same = [e for e in idx.entries if e.label == entry.label and e.subject == entry.subject
            and e.style == entry.style and e.key != entry.key]
    if mode in ("pair", "overlay"):
        if entry.correct is None:
            raise UserError("this dataset has no correct/incorrect labels; choose 'One sequence' or "
                            "'Repetitions'")
        other = [e for e in same if e.correct is (not entry.correct)]
        if not other:
            want = "incorrect" if entry.correct else "correct"
            raise UserError(f"no {want} execution of {entry.label} by {entry.subject or 'this subject'} "
                            "in this dataset")
        other.sort(key=lambda e: (abs(e.number - entry.number), e.number))
        return [other[0]]
    if mode == "grid":
        same = [e for e in same if e.correct == entry.correct]
        same.sort(key=lambda e: (e.number, e.key))
        return same[:GRID_MAX - 1]
    return []


# ---- callbacks (plain functions: the tests call them directly) ---------------------------------
def _prepare(m: Motion, skeleton: str) -> Motion:
    if skeleton == "common" and m.skeleton.name != COMMON.name:
        return m.retarget(COMMON)
    return m


def _title(m: Motion) -> str:
    lab = m.labels
    bits = [_label_title(lab.label)] if lab.label else []
    if lab.subject:
        bits.append(str(lab.subject))
    if lab.style:
        bits.append(_style_title(lab.style))
    if lab.correct is not None:
        bits.append("correct" if lab.correct else "incorrect")
    return " · ".join(bits) or "motion"


def figure_for(motions: list[Motion], view: str) -> str:
    """The player value (:func:`motionviz.ui.player.player_value`) for the motions shown: one motion, a
    correct/incorrect pair side by side or overlaid (coloured by execution), or the subject's repetitions."""
    from .player import player_value

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
    from ..data import load_user_file

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
