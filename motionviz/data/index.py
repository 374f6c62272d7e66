"""A light index of every sequence (label, subject, style, correct, frames, source) built from file
names and headers without full parsing -- used by ``python -m motionviz data summary|list``.
Bandai frame counts come from the BVH ``Frames:`` header line, UI-PRMD / IRDS from line counts.
The index is cached as JSON in the cache folder, keyed by the source file list (path, size, mtime)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ._util import open_text
from .bandai import bandai_files, bandai_frames, parse_bandai_name
from .humanml3d import humanml3d_files
from .irds import _NAME as _IRDS_NAME
from .irds import irds_files
from .keraal import read_keraal
from .kimore import load_kimore, read_kimore_raw
from .paths import cache_dir, data_root
from .registry import DATASETS, SPECS, dataset_files
from .uiprmd import _NAME as _UIPRMD_NAME
from .uiprmd import uiprmd_files

__all__ = ["dataset_index", "summary", "INDEX_VERSION"]

INDEX_VERSION = "index-v1"
Row = dict[str, Any]


def _rows_uiprmd(root: Path) -> list[Row]:
    rows = []
    for f in uiprmd_files(root):
        ex, subj, ep, inc = _UIPRMD_NAME.search(f.name).groups()
        n = sum(1 for ln in open_text(f).splitlines() if ln.strip())
        rows.append(dict(label=f"ui-prmd:m{ex}", subject=f"s{subj}", style="", correct=inc is None,
                         frames=n, source=str(f.relative_to(root))))
    return rows


def _rows_kimore(root: Path) -> list[Row]:
    return [dict(label=m.label, subject=m.labels.subject, style="", correct=None, frames=m.num_frames,
                 score=m.labels.score, source=str(Path(m.labels.source.split("#")[0]).relative_to(root)))
            for m in load_kimore(root)]


def _rows_kimore_raw(root: Path) -> list[Row]:
    out = []
    for f in dataset_files("kimore-raw", root):
        m = read_kimore_raw(f)
        out.append(dict(label=m.label, subject=m.labels.subject, style=m.labels.extra["kind"], correct=None,
                        frames=m.num_frames, source=str(f.relative_to(root))))
    return out


def _rows_irds(root: Path) -> list[Row]:
    rows = []
    for f in irds_files(root):
        subj, _, g, rep, c, pos = _IRDS_NAME.search(f.name).groups()
        n = sum(1 for ln in open_text(f).splitlines()[1:] if ln.strip())
        rows.append(dict(label=f"irds:{int(g)}", subject=subj, style="", correct={"1": True, "2": False}.get(c),
                         frames=n // 25, source=str(f.relative_to(root))))
    return rows


def _rows_keraal(root: Path) -> list[Row]:
    out = []
    for f in dataset_files("keraal", root):
        m = read_keraal(f)
        out.append(dict(label=m.label, subject=m.labels.subject, style=m.labels.extra["modality"],
                        correct=None, frames=m.num_frames, source=str(f.relative_to(root))))
    return out


def _rows_bandai(root: Path) -> list[Row]:
    rows = []
    for f in bandai_files(root):
        part, content, style, take = parse_bandai_name(f.name)
        rows.append(dict(label=f"bandai:{content}", subject=f"{part}_{content}_{style}_{take}", style=style,
                         correct=None, frames=bandai_frames(f), source=str(f.relative_to(root))))
    return rows


def _rows_humanml3d(root: Path) -> list[Row]:
    rows = []
    for f in humanml3d_files(root):
        a = np.load(f, mmap_mode="r", allow_pickle=False)
        mid = f.name.split("_")[0]
        rows.append(dict(label=f"humanml3d:{mid}", subject=mid, style="", correct=None, frames=int(a.shape[0]),
                         source=str(f.relative_to(root))))
    return rows


_BUILDERS = {"ui-prmd": _rows_uiprmd, "kimore": _rows_kimore, "kimore-raw": _rows_kimore_raw,
             "irds": _rows_irds, "keraal": _rows_keraal, "bandai": _rows_bandai, "humanml3d": _rows_humanml3d}



def dataset_index(name: str, root: str | os.PathLike | None = None) -> list[Row]:
    """One row per sequence of ``name`` (cached)."""
    r = data_root(root)
    files = dataset_files(name, r)
    h = hashlib.sha1(f"{INDEX_VERSION}|{name}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(r)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    path = cache_dir() / f"index-{name}-{h.hexdigest()[:16]}.json"
    if path.exists():
        try:
            return json.loads(path.read_text())
        except ValueError:
            pass
    rows = _BUILDERS[name](r)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(rows))
    os.replace(tmp, path)
    return rows


def summary(root: str | os.PathLike | None = None, datasets: list[str] | None = None) -> dict[str, Any]:
    """Counts per dataset: sequences, frames, joints, subjects, labels, label_names (+ extra keys)."""
    r = data_root(root)
    out: dict[str, Any] = {}
    for name in datasets or list(DATASETS):
        rows = dataset_index(name, r)
        labels = sorted({x["label"] for x in rows}, key=_label_key)
        d: dict[str, Any] = {
            "sequences": len(rows), "frames": int(sum(x["frames"] for x in rows)), "joints": len(SPECS[name].skeleton),
            "subjects": len({x["subject"] for x in rows}), "labels": len(labels), "label_names": labels,
            "fps": int(SPECS[name].fps),
        }
        corr = [x["correct"] for x in rows]
        if any(c is not None for c in corr):
            d["correct"] = sum(c is True for c in corr)
            d["incorrect"] = sum(c is False for c in corr)
        styles = sorted({x["style"] for x in rows if x["style"]})
        if name == "bandai":
            d["styles"] = styles
            d["subject_unit"] = "take (no actor ids published; one skeleton size)"
        if name == "keraal":
            d["modalities"] = styles
            d["exercises"] = len(labels)
        if name == "kimore":
            raw = dataset_index("kimore-raw", r)
            d["raw_sequences"] = len(raw)
            d["raw_frames"] = int(sum(x["frames"] for x in raw))
            d["raw_subjects"] = len({x["subject"] for x in raw})
            d["fps_assumed"] = True
        out[name] = d
    return out


def _label_key(label: str) -> tuple:
    ds, _, lid = label.partition(":")
    return (ds, int(lid) if lid.isdigit() else 10**9, lid)
