"""KIMORE readers.

* ``patients-wsdba``: the 31 patients (HU = 1) x 5 exercises of the MSD-IRIMAS resampled KIMORE release:
  ``exN/experiment_dataset/foldK/x_test_foldK.npy`` (n, 54, 748) joint-major (channel 3 j + c), Kinect
  camera-space metres, 18 joints (:data:`motionviz.core.skeleton.KIMORE18`), clinical score from
  ``Kimore_resampled/exN/Scores.npy`` (0-100).  Every sequence was resampled to 748 frames upstream
  without a recorded rate; **we assume 30 fps** (the Kinect v2 rate; 748 frames = 24.9 s, in the range
  of the raw recordings, 353-1,585 frames at 30 Hz).  Clean-up (data README section 5a): the first and
  last 5 frames (zig-zag artefacts) are dropped, frames whose mean depth is below 1.5 m (collapsing
  end frames, dropouts) are trimmed at the ends and set to NaN (missing) inside the sequence.
* ``raw-samples``: raw Kinect v2 CSVs (25 joints x (x, y, z, state)), 2 unnamed subjects x 5 exercises,
  raw and ``Filtered``.  Subject ids ``raw1`` / ``raw2`` (the KIMORE id and group are unknown).

Kinect camera space (x, y, z) -> motionviz frame (-x, y, -z) (a 180 degree turn about Y).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..core.motion import Motion, MotionLabels
from ..core.skeleton import KIMORE18, KINECT
from ._util import KINECT_TO_MV, open_text, parse_csv_floats

__all__ = ["load_kimore", "load_kimore_raw", "read_kimore_raw", "kimore_fold_files", "kimore_raw_files",
           "FPS", "clean_kimore"]

FPS = 30.0          # assumption: see module docstring
EDGE_TRIM = 5
MIN_DEPTH = 1.5     # metres (camera z)


def kimore_fold_files(root: Path) -> list[Path]:
    base = root / "kimore" / "patients-wsdba"
    return sorted(base.glob("ex[1-5]/experiment_dataset/fold[0-9]/x_test_fold[0-9].npy"))


def kimore_raw_files(root: Path) -> list[Path]:
    return sorted((root / "kimore" / "raw-samples").glob("JointPositionExercise*.csv.xz"))


def clean_kimore(x: np.ndarray) -> np.ndarray:
    """(T, J, 3) camera-space metres -> cleaned copy: edges trimmed, shallow-depth frames trimmed at the
    ends and NaN inside."""
    x = x[EDGE_TRIM:len(x) - EDGE_TRIM].copy()
    depth = x[..., 2].mean(axis=1)
    good = np.isfinite(depth) & (depth >= MIN_DEPTH)
    if not good.any():
        return x[:0]
    first, last = np.argmax(good), len(good) - np.argmax(good[::-1])
    x = x[first:last]
    x[~good[first:last]] = np.nan
    return x


def load_kimore(root: Path, limit: int | None = None) -> list[Motion]:
    """The 155 patient sequences (31 patients x 5 exercises), sorted by exercise then patient index."""
    out: list[tuple[int, int, Motion]] = []
    base = root / "kimore" / "patients-wsdba"
    for f in kimore_fold_files(root):
        ex = int(f.parts[-4][2:])
        fold = f.parent.name
        k = fold[4:]
        x = np.load(f, allow_pickle=False)                                    # (n, 54, 748)
        idx = np.load(f.parent / f"indexes_test_fold{k}.npy", allow_pickle=False).astype(int)
        scores = np.load(base / "Kimore_resampled" / f"ex{ex}" / "Scores.npy", allow_pickle=False).ravel()
        hu = np.load(base / "Kimore_resampled" / f"ex{ex}" / "HU.npy", allow_pickle=False).ravel()
        seq = x.reshape(len(x), 18, 3, x.shape[-1]).transpose(0, 3, 1, 2)   # (n, T, 18, 3)
        for i, s in zip(idx, seq):
            c = clean_kimore(s) * KINECT_TO_MV
            labels = MotionLabels(
                dataset="kimore", subject=f"p{i:02d}", label=f"kimore:ex{ex}", style="",
                correct=None, score=float(scores[i]), source=f"{f}#{list(idx).index(i)}",
                extra={"fold": int(k), "index": int(i), "group": "patient" if hu[i] == 1 else "healthy",
                       "fps_assumed": True})
            out.append((ex, int(i), Motion(c.astype(np.float32), KIMORE18, FPS, labels)))
    out.sort(key=lambda t: (t[0], t[1]))
    ms = [m for _, _, m in out]
    return ms[:limit] if limit is not None else ms


_RAW = re.compile(r"JointPositionExercise(\d)(\(2\))?(Filtered)?\.csv\.xz$")


def read_kimore_raw(path: str | Path) -> Motion:
    """One raw KIMORE Kinect CSV -> Motion on the 25-joint Kinect skeleton (tracking states in extra)."""
    path = Path(path)
    m = _RAW.search(path.name)
    if not m:
        raise ValueError(f"not a KIMORE raw file name: {path.name}")
    ex, second, filt = m.groups()
    a = parse_csv_floats(open_text(path), 100)                 # (T, 100)
    a = a.reshape(-1, 25, 4)
    xyz = a[..., :3] * KINECT_TO_MV
    labels = MotionLabels(dataset="kimore", subject="raw2" if second else "raw1", label=f"kimore:ex{ex}",
                          style="", correct=None, score=None, source=str(path),
                          extra={"kind": "filtered" if filt else "raw",
                                 "tracked_fraction": float((a[..., 3] >= 1.5).mean())})
    return Motion(xyz.astype(np.float32), KINECT, FPS, labels)


def load_kimore_raw(root: Path, limit: int | None = None) -> list[Motion]:
    files = kimore_raw_files(root)
    if limit is not None:
        files = files[:limit]
    return [read_kimore_raw(f) for f in files]
