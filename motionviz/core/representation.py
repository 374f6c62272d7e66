"""Motion representation shared by the models and pipelines (numpy only): facing and canonical frames, windows
and masks, per-frame yaw, hip frames, gap filling. Variants that feed shipped weights or reported numbers are
kept as separate named functions (see each docstring)."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from .errors import UserError
from .motion import Motion
from .skeleton import BODY_PARTS, COMMON, Skeleton


def canonicalise(joints: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """joints (T, J, 3) -> (canonical joints, yaw angle, xz offset): facing +Z, pelvis at x = z = 0 at frame 0.
    Inverse: rotate_y(-angle) then add the offset."""
    m = Motion(joints, COMMON)
    ang = m.facing_angle(0)
    r = m.rotate_y(ang).joints
    root = r[0, COMMON.root]
    off = np.array([root[0], 0.0, root[2]], dtype=np.float32)
    if not np.isfinite(off).all():
        off = np.zeros(3, dtype=np.float32)
    return r - off, ang, off


def uncanonicalise(joints: np.ndarray, angle: float, offset: np.ndarray) -> np.ndarray:
    return Motion(joints + offset, COMMON).rotate_y(-angle).joints


# ==============================================================================================
# Windows, masks
# ==============================================================================================
def window_starts(T: int, window: int, shift: int) -> list[int]:
    """Start frames of windows of ``window`` frames every ``shift`` frames; the last window ends at
    frame T (anchored to the end).  A sequence shorter than the window gets one window at 0."""
    if window < 1 or shift < 1:
        raise UserError("window and shift must be at least 1 frame")
    if T <= window:
        return [0]
    starts = list(range(0, T - window + 1, shift))
    if starts[-1] != T - window:
        starts.append(T - window)
    return starts


def check_mask(joints: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """(T, J, D) joints + optional (T, J) mask -> observed (T, J) bool (NaN joints are missing)."""
    joints = np.asarray(joints)
    if joints.ndim != 3 or joints.shape[-1] not in (2, 3):
        raise UserError(f"joints must have shape (frames, joints, 2 or 3), got {joints.shape}")
    observed = np.isfinite(joints).all(axis=-1)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != joints.shape[:2]:
            raise UserError(f"the mask has shape {tuple(mask.shape)} but the motion needs "
                            f"{tuple(joints.shape[:2])} (frames, joints)")
        if mask.dtype != bool:
            if mask.dtype.kind not in "biuf" or not np.isin(mask, (0, 1)).all():
                raise UserError("the mask must hold booleans (True/1 = observed, False/0 = missing)")
            mask = mask.astype(bool)
        observed &= mask
    return observed


def _resample(x: np.ndarray, fps_in: float, fps_out: float, frames: int | None = None) -> np.ndarray:
    """Linear resampling in time of (T, J, D); NaN where a neighbour is NaN."""
    T = x.shape[0]
    n = frames if frames is not None else max(1, int(round((T - 1) * fps_out / fps_in)) + 1)
    t = np.clip(np.arange(n) * (fps_in / fps_out), 0, T - 1)
    i0 = np.floor(t).astype(int)
    i1 = np.minimum(i0 + 1, T - 1)
    w = (t - i0)[:, None, None]
    return (x[i0] * (1 - w) + x[i1] * w).astype(np.float32)


def _yaw(x: np.ndarray, known: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Per-frame facing angle (T,) from the known left/right pairs (as ``canonical_transform``): the angle
    of the summed left-minus-right vector in the x-z plane; frames without a known pair take the
    sequence's angle.  ``rot(a) @ v`` turns a world vector into the body frame (across = +X)."""
    T = x.shape[0]
    L = [a for a, _ in skeleton.lr_pairs]
    R = [b for _, b in skeleton.lr_pairs]
    both = (known[:, L] & known[:, R])[..., None]
    across = np.where(both, np.nan_to_num(x[:, L] - x[:, R]), 0.0).sum(1)      # (T, 3)
    total = across.sum(0)
    fallback = float(np.arctan2(total[2], total[0])) if np.hypot(total[0], total[2]) > 1e-9 else 0.0
    ok = np.hypot(across[:, 0], across[:, 2]) > 1e-9
    return np.where(ok, np.arctan2(across[:, 2], across[:, 0]), fallback) if T else np.zeros(0)


def _to_world(v: np.ndarray, ang: np.ndarray) -> np.ndarray:
    """Body-frame vectors (..., 3) -> world, turned by -ang about +Y per frame (ang (T,), v (T, ..., 3))."""
    c, s = np.cos(ang), np.sin(ang)
    shape = (-1,) + (1,) * (v.ndim - 2)
    c, s = c.reshape(shape), s.reshape(shape)
    # body frame: x' = x c + z s, z' = -x s + z c  =>  world: x = x' c - z' s, z = x' s + z' c
    out = v.copy()
    out[..., 0] = v[..., 0] * c - v[..., 2] * s
    out[..., 2] = v[..., 0] * s + v[..., 2] * c
    return out


# ------------------------------------------------------------------------------------------------
# the comparison
# ------------------------------------------------------------------------------------------------
def _pose_frames(joints: np.ndarray) -> np.ndarray:
    """(T, J, 3) pelvis-centred, each frame turned about Y so that its hip line points to +X."""
    j = np.asarray(joints, dtype=np.float64)
    c = j - j[:, COMMON.index("pelvis")][:, None]
    lat = j[:, COMMON.index("left_hip")] - j[:, COMMON.index("right_hip")]
    a = np.arctan2(lat[:, 2], lat[:, 0])                       # rotate by +a about Y brings lat to +X
    ca, sa = np.cos(a), np.sin(a)
    x = c[..., 0] * ca[:, None] + c[..., 2] * sa[:, None]
    z = -c[..., 0] * sa[:, None] + c[..., 2] * ca[:, None]
    return np.stack([x, c[..., 1], z], axis=-1)


def keep_mask(frames: int, keep_first: int = 0, keep_last: int = 0, parts: Iterable[str] = (),
              joints: Sequence[str] | None = None) -> np.ndarray:
    """(T, J) bool mask of what an edit keeps: the first/last frames (all joints) and the joints of the
    named :data:`motionviz.core.skeleton.BODY_PARTS` (all frames).  At least one thing must be kept and at
    least one regenerated."""
    names = list(joints) if joints is not None else list(COMMON.joints)
    T = int(frames)
    for what, v in (("frames kept at the start", keep_first), ("frames kept at the end", keep_last)):
        if not isinstance(v, (int, np.integer)) or v < 0:
            raise UserError(f"{what} must be a non-negative whole number, got {v!r}")
    if keep_first + keep_last > T:
        raise UserError(f"keeping {keep_first} + {keep_last} frames of a {T}-frame motion leaves nothing "
                        f"to regenerate")
    mask = np.zeros((T, len(names)), dtype=bool)
    mask[:keep_first] = True
    if keep_last:
        mask[T - keep_last:] = True
    for p in parts:
        p = str(p).strip().lower().replace(" ", "_").replace("-", "_")
        if not p:
            continue
        if p not in BODY_PARTS:
            raise UserError(f"unknown body part {p!r}; choose from {', '.join(BODY_PARTS)}")
        for j in BODY_PARTS[p]:
            if j in names:
                mask[:, names.index(j)] = True
    if not mask.any():
        raise UserError("choose what to keep: first/last frames or body parts")
    if mask.all():
        raise UserError("everything is kept: nothing is left to regenerate")
    return mask


def interpolate_nans(x: np.ndarray) -> np.ndarray:
    """(T, J, C): fill NaN frames of each joint coordinate by linear interpolation in time (edges held)."""
    out = x.copy()
    T = x.shape[0]
    t = np.arange(T)
    flat = out.reshape(T, -1)
    for k in range(flat.shape[1]):
        bad = np.isnan(flat[:, k])
        if bad.any() and not bad.all():
            flat[bad, k] = np.interp(t[bad], t[~bad], flat[~bad, k])
    return flat.reshape(x.shape)
