"""The Data tab's light dataset index: file names -> entries (exercise, subject, style, correctness), an LRU
of loaded motions, and the cascade of choices (the Body mesh tab uses it too)."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import DataNotFound, UserError
from ..core.motion import Motion
from . import data_root, dataset_files, load_dataset
from .labels import LABEL_TITLES, STYLE_TITLES
from .registry import spec

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


ANY = "__any__"


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


def _uiprmd_entry(name: str, rel: str, groups: tuple[str, ...]) -> Entry:
    ex, subj, ep, inc = groups
    ok = inc is None
    return Entry(name, rel, f"ui-prmd:m{ex}", f"s{subj}", "", ok, int(ep),
                 f"episode {int(ep):02d} ({'correct' if ok else 'incorrect'})")


def _irds_entry(name: str, rel: str, groups: tuple[str, ...]) -> Entry:
    subj, _date, gesture, rep, corr, position = groups
    ok = {"1": True, "2": False}.get(corr)
    what = "correct" if ok else ("incorrect" if ok is False else "unrated")
    return Entry(name, rel, f"irds:{int(gesture)}", subj, "", ok, int(rep), f"repetition {int(rep)} ({what}, {position})")


def _bandai_entry(name: str, rel: str, groups: tuple[str, ...]) -> Entry:
    part, content, style, take, _ = groups
    return Entry(name, rel, f"bandai:{content}", "", style, None, int(take), f"{part} take {take}")


#: the large datasets, whose entries come from their file names: dataset -> (name pattern, entry maker)
_NAME_PARSERS = {"ui-prmd": (_UIPRMD, _uiprmd_entry), "irds": (_IRDS, _irds_entry), "bandai": (_BANDAI, _bandai_entry)}


def _from_file_names(name: str, root: Path, files: list[Path]) -> list[Entry] | None:
    """Entries parsed from file names for the large datasets; None for the others."""
    if name not in _NAME_PARSERS:
        return None
    pattern, make = _NAME_PARSERS[name]
    out: list[Entry] = []
    for f in files:
        m = pattern.search(f.name)
        if m is not None:
            out.append(make(name, _rel(f, root), m.groups()))
    return out


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
    return dataset_files(name, root)


def index_dataset(name: str, root: str | Path | None = None) -> DatasetIndex:
    """The light index of dataset ``name`` (cached per process).  Raises DataNotFound / UserError."""
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
    read = spec(name).read_file
    if read is None:
        raise UserError(f"no single-file reader for dataset {name!r}")
    return read(path)


def load_entry(entry: Entry, root: str | Path | None = None) -> Motion:
    """The Motion of one index entry (native skeleton, metres; ``labels.source`` relative to the data root)."""
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
    ident = label.split(":", 1)[-1]
    title = LABEL_TITLES.get(label)
    return f"{ident} · {title}" if title else ident


def _style_title(style: str) -> str:
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


GRID_MAX = 12
