"""KERAAL sample reader (Group 3, participant 1, trial 1; exercises CTK, ELK, RTK; seated).

Modalities and how they become :class:`Motion` s (labels ``keraal:<exercise>``, subject ``P1``,
``extra["modality"]``):

* ``kinect`` -- ``.txt`` (T, 175) = 25 Kinect v2 joints x (x, y, z, qx, qy, qz, qw); camera-space
  metres -> motionviz frame (-x, y, -z); quaternions are dropped.  30 fps (Kinect v2 rate).
* ``vicon`` -- ``.txt`` (T, 119) = 17 marker targets x (x, y, z, quaternion), mm, Z up, facing +X,
  left = +Y -> (y, z, x) / 1000; skeleton :data:`motionviz.core.skeleton.KERAAL_VICON` (approximate joints).
  Rate assumed 60 Hz (two Vicon rows per Kinect row; unverified).
* ``blazepose`` / ``openpose`` / ``alphapose`` -- JSON 2-D estimates, normalised image coordinates
  (x right, y down, in [0, 1]).  **Representation**: image-height units, ``X = (x - 0.5) * 960/544``,
  ``Y = 1 - y`` (up), ``Z = 0`` (BlazePose's relative depth is dropped so the three tracks are alike);
  the subject faces the camera so image-right is the subject's left (+X).  Undetected joints and
  missing frames are NaN.  BlazePose is stored **mirrored** upstream: we apply x -> 1 - x and swap
  Left/Right names (it then agrees with OpenPose/AlphaPose).  One video frame per Kinect row, 30 fps.
  The 960 x 544 frame size is from the upstream README (unverified); it only sets the x/y aspect.

:func:`keraal_exercise` gives one exercise's Kinect motion and the three video tracks on the COMMON
skeleton, cut to a common length and with each 2-D track mapped into the Kinect's frontal (x, y) plane
by a least-squares scale + translation -- ready for 2-D error measurements.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import DataNotFound, UserError
from ..core.motion import Motion, MotionLabels
from ..core.skeleton import BLAZEPOSE33, COCO17, COCO18, COMMON, KERAAL_VICON, KINECT, Skeleton
from ._util import KINECT_TO_MV
from .paths import data_root

__all__ = ["keraal_files", "read_keraal", "load_keraal", "keraal_exercise", "KeraalExercise",
           "EXERCISES", "MODALITIES", "VIDEO_ASPECT"]

EXERCISES = ("CTK", "ELK", "RTK")
MODALITIES = {"Kinect": "kinect", "Vicon": "vicon", "BP": "blazepose", "OP": "openpose", "AP": "alphapose"}
VIDEO_ASPECT = 960.0 / 544.0
KINECT_FPS, VICON_FPS, VIDEO_FPS = 30.0, 60.0, 30.0
_NAME = re.compile(r"G(\d)-(Kinect|Vicon|BP|OP|AP)-([A-Z]{3})-P(\d+)T(\d+)-(\w+)-(\w+)-(\d+)\.(txt|json)$")


def keraal_files(root: Path) -> list[Path]:
    base = root / "keraal"
    return sorted(list(base.glob("G*-*.txt")) + list(base.glob("G*-*.json")))


def _bp_name(name: str, mirrored: bool = True) -> str:
    n = name.lower()
    if mirrored:
        n = n.replace("left", "@").replace("right", "left").replace("@", "right")
    return n


def _op_name(name: str) -> str:
    if name[0] in "lr" and name[1].isupper():
        side = "left" if name[0] == "l" else "right"
        return f"{side}_{name[1:].lower()}"
    return name.lower()


def _read_video_json(path: Path, modality: str) -> tuple[np.ndarray, Skeleton]:
    try:
        d = json.loads(path.read_text())["positions"]
    except (ValueError, KeyError) as e:
        raise ValueError(f"{path.name}: not a KERAAL pose JSON ({e})") from None
    sk = {"blazepose": BLAZEPOSE33, "openpose": COCO18, "alphapose": COCO17}[modality]
    base = 1 if modality in ("blazepose", "openpose") else 0
    frames = {int(float(k)) - base: v for k, v in d.items()}
    T = max(frames) + 1 if frames else 0
    out = np.full((T, len(sk), 3), np.nan)
    for t, joints in frames.items():
        for name, xy in joints.items():
            if modality == "blazepose":
                j = sk.index(_bp_name(name))
                x = 1.0 - float(xy[0])                       # undo the horizontal mirror
            elif modality == "openpose":
                j = sk.index(_op_name(name))
                x = float(xy[0])
            else:
                j = int(name)
                x = float(xy[0])
            out[t, j] = ((x - 0.5) * VIDEO_ASPECT, 1.0 - float(xy[1]), 0.0)
    # drop trailing frames with no detection at all (OpenPose ends with an empty frame)
    seen = ~np.isnan(out).all(axis=(1, 2))
    if seen.any():
        out = out[:len(seen) - int(np.argmax(seen[::-1]))]
    return out, sk


def read_keraal(path: str | Path) -> Motion:
    path = Path(path)
    m = _NAME.search(path.name)
    if not m:
        raise ValueError(f"not a KERAAL file name: {path.name}")
    group, mod, ex, part, trial, lab1, lab2, rec, _ = m.groups()
    modality = MODALITIES[mod]
    if modality == "kinect":
        a = np.loadtxt(path).reshape(-1, 25, 7)
        X, sk, fps = a[..., :3] * KINECT_TO_MV, KINECT, KINECT_FPS
    elif modality == "vicon":
        a = np.loadtxt(path).reshape(-1, 17, 7)
        X, sk, fps = a[..., [1, 2, 0]] / 1000.0, KERAAL_VICON, VICON_FPS
    else:
        X, sk = _read_video_json(path, modality)
        fps = VIDEO_FPS
    labels = MotionLabels(dataset="keraal", subject=f"P{part}", label=f"keraal:{ex}", style="",
                          correct=None, score=None, source=str(path),
                          extra={"modality": modality, "group": int(group), "trial": int(trial),
                                 "annotation": [lab1, lab2], "image_units": modality in
                                 ("blazepose", "openpose", "alphapose")})
    return Motion(X.astype(np.float32), sk, fps, labels)


def load_keraal(root: Path, limit: int | None = None) -> list[Motion]:
    files = keraal_files(root)
    if limit is not None:
        files = files[:limit]
    return [read_keraal(f) for f in files]


@dataclass(frozen=True)
class KeraalExercise:
    """One KERAAL exercise: ``kinect`` (COMMON, metres, 3-D), ``kinect_2d`` (same with z = 0),
    ``tracks`` name -> COMMON Motion of a video estimate mapped into the Kinect (x, y) plane (z = 0, NaN
    where undetected), all ``frames`` long at 30 fps; ``vicon`` native (KERAAL_VICON, 60 Hz, not cut);
    ``fits`` name -> (scale, tx, ty, rms metres) of the 2-D alignment."""

    exercise: str
    kinect: Motion
    kinect_2d: Motion
    tracks: dict[str, Motion]
    vicon: Motion
    fits: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return self.kinect.num_frames


def _fit_scale_shift(src: np.ndarray, dst: np.ndarray) -> tuple[float, float, float, float]:
    """Least squares s, t with dst ~ s * src + t over finite (x, y) pairs -> (s, tx, ty, rms)."""
    ok = np.isfinite(src).all(-1) & np.isfinite(dst).all(-1)
    a, b = src[ok], dst[ok]
    if len(a) < 3:
        return 1.0, 0.0, 0.0, float("nan")
    am, bm = a.mean(0), b.mean(0)
    s = float(((a - am) * (b - bm)).sum() / max(((a - am) ** 2).sum(), 1e-12))
    t = bm - s * am
    rms = float(np.sqrt(((s * a + t - b) ** 2).sum(-1).mean()))
    return s, float(t[0]), float(t[1]), rms


def keraal_exercise(exercise: str, root: str | os.PathLike | None = None) -> KeraalExercise:
    """Aligned Kinect + BlazePose/OpenPose/AlphaPose tracks of one KERAAL exercise (CTK, ELK or RTK).
    Time: video frame i = Kinect row i (data README section 7), cut to the shortest.  Space: each track
    is retargeted to COMMON and mapped into the Kinect's frontal plane by one scale + 2-D shift fitted
    over all frames and joints."""
    ex = exercise.split(":")[-1].upper()
    if ex not in EXERCISES:
        raise UserError(f"unknown KERAAL exercise {exercise!r}; choose from {', '.join(EXERCISES)}")
    base = data_root(root) / "keraal"
    name = f"G3-{{}}-{ex}-P1T1-Unknown-C-0"
    try:
        kin = read_keraal(base / (name.format("Kinect") + ".txt"))
        vic = read_keraal(base / (name.format("Vicon") + ".txt"))
        raw = {MODALITIES[m]: read_keraal(base / (name.format(m) + ".json")) for m in ("BP", "OP", "AP")}
    except FileNotFoundError as e:
        raise DataNotFound(f"KERAAL file missing: {e.filename}") from None
    T = min([kin.num_frames] + [m.num_frames for m in raw.values()])
    k = kin.retarget(COMMON).crop(0, T)
    k2 = k.joints.copy()
    k2[..., 2] = 0.0
    tracks, fits = {}, {}
    for nm, m in raw.items():
        c = m.retarget(COMMON).crop(0, T).joints.astype(np.float64)      # (T, 15, 3)
        s, tx, ty, rms = _fit_scale_shift(c[..., :2], k2[..., :2])
        out = c.copy()
        out[..., 0] = s * c[..., 0] + tx
        out[..., 1] = s * c[..., 1] + ty
        out[..., 2] = np.where(np.isnan(c[..., 2]), np.nan, 0.0)
        tracks[nm] = m.replace(joints=out.astype(np.float32), skeleton=COMMON)
        fits[nm] = (s, tx, ty, rms)
    return KeraalExercise(ex, k, k.with_joints(k2), tracks, vic, fits)
