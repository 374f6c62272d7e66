"""The preprocessed training corpus: every motion on the COMMON skeleton at 20 fps, normalised, cached.

``load_corpus`` preprocesses each dataset once (retarget to the common skeleton -> fill interior
missing frames by linear interpolation -> resample -> ``Motion.normalise()``) and stores the result as
one ``.npz`` per dataset (no pickle: joints concatenated, lengths, labels as JSON bytes) in
:func:`motionviz.data.paths.cache_dir`.  The cache key hashes the code version, the options and the
source file list (relative path, size, mtime), so changed data or code invalidates it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..core.errors import UserError
from ..core.motion import DEFAULT_FPS, REFERENCE_BONE_SUM, Motion, MotionLabels
from ..core.representation import interpolate_nans
from ..core.skeleton import COMMON
from .labels import mirror_label
from .paths import cache_dir, data_root
from .registry import CORPUS_DATASETS, DATASETS, EXTRA_DATASETS, SPECS, dataset_files, load_dataset, split_of

__all__ = ["load_corpus", "preprocess", "augment_mirror", "sided_labels", "side_log_ratio", "one_side", "CORPUS_VERSION",
           "corpus_cache_path"]

# Bump when the readers or the preprocessing change (invalidates every cache file).
CORPUS_VERSION = "corpus-v1"

Progress = Callable[[float, str], None]


def preprocess(m: Motion, fps: float = DEFAULT_FPS, normalise: bool = True) -> Motion:
    """One motion -> common skeleton, interior gaps filled, resampled to ``fps``, normalised."""
    c = m.retarget(COMMON)
    j = c.joints
    if np.isnan(j).any():
        j = interpolate_nans(j)
        if np.isnan(j).any():                       # a joint never observed: leave it to the caller
            pass
        c = c.with_joints(j)
    c = c.resample(fps)
    if normalise:
        c = c.normalise()
    return c


def _sources_key(name: str, root: Path, fps: float, normalise: bool) -> str:
    h = hashlib.sha1()
    h.update(f"{CORPUS_VERSION}|{name}|{fps:g}|{int(normalise)}".encode())
    h.update(repr(sorted(REFERENCE_BONE_SUM.items())).encode())
    for f in dataset_files(name, root):
        st = f.stat()
        h.update(f"{f.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def corpus_cache_path(name: str, root: str | os.PathLike | None = None, fps: float = DEFAULT_FPS,
                      normalise: bool = True) -> Path:
    r = data_root(root)
    return cache_dir() / f"corpus-{name}-{_sources_key(name, r, fps, normalise)}.npz"


def _save(path: Path, motions: list[Motion]) -> None:
    lengths = np.array([m.num_frames for m in motions], dtype=np.int64)
    joints = (np.concatenate([m.joints for m in motions]) if motions
              else np.zeros((0, len(COMMON), 3), np.float32))
    meta = json.dumps({"fps": [m.fps for m in motions], "labels": [m.labels.to_dict() for m in motions]})
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, joints=joints.astype(np.float32), lengths=lengths,
             meta=np.frombuffer(meta.encode(), dtype=np.uint8))
    os.replace(tmp, path)


def _load(path: Path) -> list[Motion]:
    with np.load(path, allow_pickle=False) as z:
        joints, lengths, meta = z["joints"], z["lengths"], json.loads(z["meta"].tobytes().decode())
    out, start = [], 0
    for n, fps, lab in zip(lengths, meta["fps"], meta["labels"]):
        out.append(Motion(joints[start:start + n], COMMON, fps, MotionLabels.from_dict(lab)))
        start += int(n)
    return out


def _dataset_corpus(name: str, root: Path, fps: float, normalise: bool,
                    progress: Progress | None = None) -> list[Motion]:
    path = corpus_cache_path(name, root, fps, normalise)
    if path.exists():
        try:
            return _load(path)
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)
    if progress:
        progress(0.0, f"reading {name} (first time; cached afterwards)")
    raw = load_dataset(name, root)
    keep = SPECS[name].in_corpus
    if keep is not None:                          # e.g. KERAAL: only the 3-D Kinect recordings
        raw = [m for m in raw if keep(m)]
    out = []
    for m in raw:
        p = preprocess(m, fps, normalise)
        if p.num_frames >= 2 and np.isfinite(p.joints).all():
            out.append(p)
    _save(path, out)
    return out


def load_corpus(split: str = "train", datasets: Sequence[str] | None = None, fps: float = DEFAULT_FPS,
                root: str | os.PathLike | None = None, normalise: bool = True,
                progress: Progress | None = None) -> list[Motion]:
    """Motions of ``split`` ('train' | 'val' | 'test' | 'all') from ``datasets`` (default: ui-prmd,
    kimore, irds, bandai, humanml3d; KERAAL is held out) on the COMMON skeleton at ``fps``, normalised
    (``Motion.normalise``).  Labels keep ``label``, ``subject``, ``style``, ``correct``, ``score``,
    ``source``.  First call preprocesses and caches (about a minute for all); later calls read the cache."""
    if split not in ("train", "val", "test", "all"):
        raise UserError(f"split must be train, val, test or all, not {split!r}")
    if not (np.isfinite(fps) and 1 <= fps <= 240):
        raise UserError(f"fps must be in [1, 240], not {fps}")
    names = list(CORPUS_DATASETS if datasets is None else datasets)
    for n in names:
        if n not in DATASETS and n not in EXTRA_DATASETS:
            raise UserError(f"unknown dataset {n!r}; choose from {', '.join(DATASETS)}")
    r = data_root(root)
    out: list[Motion] = []
    for i, n in enumerate(names):
        sub = None if progress is None else (lambda f, t, i=i: progress((i + f) / len(names), t))
        ms = _dataset_corpus(n, r, float(fps), normalise, sub)
        if split != "all":
            ms = [m for m in ms if split_of(m.labels.dataset, m.labels.subject) == split]
        out += ms
        if progress:
            progress((i + 1) / len(names), f"{n}: {len(ms)} motions")
    return out


def sided_labels(motions: Iterable[Motion], threshold: float = 0.4) -> set[str]:
    """Labels performed with one side of the body although their name does not say which: the mean over
    the label's motions of log(left limbs' range of motion / right limbs') is at least ``threshold`` in
    magnitude (0.4: one side moves 1.5x more).  In UI-PRMD the hurdle step, the standing straight-leg raise
    and the four shoulder exercises (m02, m06-m10) are done with the right side (log ratio -0.5 to -1.7);
    squats, lunges and sit-to-stand are near 0.  Labels with a mirror twin (``LABEL_MIRROR``) are not
    listed: their mirrored copies change label instead."""
    logs: dict[str, list[float]] = {}
    for m in motions:
        lab = m.labels.label
        if not lab or mirror_label(lab) != lab:
            continue
        r = side_log_ratio(m)
        if r is not None:
            logs.setdefault(lab, []).append(r)
    return {lab for lab, v in logs.items() if abs(float(np.mean(v))) >= threshold}


def side_log_ratio(m: Motion) -> float | None:
    """log(range of motion of the left elbow, wrist, knee and ankle / the right ones'), relative to the pelvis
    (> 0: the left side moves more); None for another skeleton or non-finite joints."""
    if m.joints.shape[1] != len(COMMON.joints):
        return None
    left = list(COMMON.indices(["left_elbow", "left_wrist", "left_knee", "left_ankle"]))
    right = list(COMMON.indices(["right_elbow", "right_wrist", "right_knee", "right_ankle"]))
    rel = m.joints - m.joints[:, :1]
    span = np.linalg.norm(np.nanpercentile(rel, 95, axis=0) - np.nanpercentile(rel, 5, axis=0), axis=-1)
    if not np.isfinite(span).all():
        return None
    return float(np.log((span[left].sum() + 1e-3) / (span[right].sum() + 1e-3)))


def one_side(motions: Iterable[Motion], labels: Iterable[str]) -> list[Motion]:
    """The recordings of one-sided ``labels`` (e.g. :func:`sided_labels`) by subjects who use the other
    side than most of the label's subjects (the sign of their mean :func:`side_log_ratio`), mirrored
    (``extra["side_mirrored"]`` set, label kept): in UI-PRMD s07 does all six one-sided exercises with the
    left side and s02 the hurdle step with the left leg, the other training subjects use the right, and a
    model of the label then blends the two (both arms half raised)."""
    motions = list(motions)
    keep = set(labels)

    def who(m: Motion) -> tuple[str, str]:             # a subject uses one side: decide per subject
        return m.labels.label, m.labels.subject or f"motion-{id(m)}"

    per: dict[tuple[str, str], list[float]] = {}
    for m in motions:
        r = side_log_ratio(m) if m.labels.label in keep else None
        if r is not None:
            per.setdefault(who(m), []).append(r)
    side = {k: float(np.sign(np.mean(v))) for k, v in per.items()}
    sign: dict[str, float] = {}
    for (lab, _), v in side.items():
        sign[lab] = sign.get(lab, 0.0) + v
    out = []
    for m in motions:
        lab = m.labels.label
        s = side.get(who(m)) if lab in keep else None
        if s is not None and sign.get(lab, 0.0) != 0 and s == -np.sign(sign[lab]):
            extra = dict(m.labels.extra)
            extra["side_mirrored"] = True
            m = replace(m.mirror(), labels=replace(m.labels, extra=extra))
        out.append(m)
    return out


def augment_mirror(motions: Iterable[Motion], include_original: bool = True,
                   skip_labels: Iterable[str] = ()) -> list[Motion]:
    """Left/right mirrored copies (``Motion.mirror``) with sided labels swapped (``LABEL_MIRROR``:
    IRDS 0/1, 2/3, 4/5, 7/8; Bandai walk/turn/wave/raise left/right).  ``extra["mirrored"]`` is set.
    Motions of ``skip_labels`` (e.g. :func:`sided_labels`) get no mirrored copy: a one-sided exercise
    mirrored under the same label would teach a model both sides at once, and a model that averages
    them raises each arm half-way."""
    skip = set(skip_labels)
    out: list[Motion] = []
    for m in motions:
        if include_original:
            out.append(m)
        if m.labels.label in skip:
            continue
        lab = m.labels
        extra = dict(lab.extra)
        extra["mirrored"] = not extra.get("mirrored", False)
        out.append(replace(m.mirror(), labels=replace(lab, label=mirror_label(lab.label), extra=extra)))
    return out
