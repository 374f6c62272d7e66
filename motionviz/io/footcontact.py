"""Foot-contact clean-up: no sliding feet in exported motions.

:func:`foot_contacts` marks, per frame and foot, when the ankle is low (within ``height`` of its
lowest planted height) and slow (horizontal speed below ``speed``); runs shorter than ``min_frames``
are dropped.  :func:`clean_foot_contacts` pins the ankle's horizontal position to the run's median
while the foot is planted (blended in and out over ``blend`` seconds) and solves the leg again with
two-bone IK (hip fixed, thigh and shank lengths kept, the knee in its original bending plane), so the
body stays the same above the hips and every bone keeps its length.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import UserError
from ..core.motion import Motion
from ..core.skeleton import COMMON

__all__ = ["foot_contacts", "clean_foot_contacts"]

SIDES = ("left", "right")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) runs of True in a (T,) boolean array."""
    d = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist()))


def foot_contacts(motion: Motion, height: float = 0.04, speed: float = 0.30, min_frames: int = 3
                  ) -> np.ndarray:
    """(T, 2) booleans: left / right ankle planted (low and slow), for a common-skeleton motion
    (metres, Y-up)."""
    m = motion if motion.skeleton.name == COMMON.name else motion.retarget(COMMON)
    out = np.zeros((m.num_frames, 2), dtype=bool)
    for k, side in enumerate(SIDES):
        a = m.joints[:, COMMON.index(f"{side}_ankle")].astype(np.float64)          # (T, 3)
        if not np.isfinite(a).all():
            continue
        low = a[:, 1] - np.percentile(a[:, 1], 5) < height
        v = np.gradient(a[:, [0, 2]], axis=0) * m.fps if m.num_frames > 1 else np.zeros((1, 2))
        slow = np.linalg.norm(v, axis=1) < speed
        c = low & slow
        for s, e in _runs(c):
            if e - s < min_frames:
                c[s:e] = False
        out[:, k] = c
    return out


def _two_bone(hip: np.ndarray, ankle: np.ndarray, knee_old: np.ndarray, l1: np.ndarray, l2: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Knee (T, 3) for hip, ankle (T, 3) and thigh / shank lengths (T,), bending towards the old knee;
    the ankle is pulled towards the hip when the leg cannot reach it.  -> (knee, ankle)."""
    d = ankle - hip
    n = np.linalg.norm(d, axis=1)
    reach = 0.9995 * (l1 + l2)
    far = n > reach
    ankle = np.where(far[:, None], hip + d * (reach / np.maximum(n, 1e-9))[:, None], ankle)
    d = ankle - hip
    n = np.maximum(np.linalg.norm(d, axis=1), 1e-9)
    u = d / n[:, None]
    pole = knee_old - hip
    pole = pole - np.einsum("ti,ti->t", pole, u)[:, None] * u
    pn = np.linalg.norm(pole, axis=1)
    fallback = np.cross(u, np.array([1.0, 0.0, 0.0]))     # straight old leg: bend forward (+Z side)
    pole = np.where((pn > 1e-6)[:, None], pole / np.maximum(pn, 1e-9)[:, None], fallback)
    along = (l1 ** 2 - l2 ** 2 + n ** 2) / (2 * n)
    r = np.sqrt(np.maximum(l1 ** 2 - along ** 2, 0.0))
    return hip + along[:, None] * u + r[:, None] * pole, ankle


def clean_foot_contacts(motion: Motion, height: float = 0.04, speed: float = 0.30, blend: float = 0.15,
                        min_frames: int = 3) -> Motion:
    """The motion (common skeleton, (T, 15, 3) metres) with planted feet pinned (module docstring);
    ``labels.extra["foot_contact_frames"]`` counts the planted frames of both feet."""
    m = motion if motion.skeleton.name == COMMON.name else motion.retarget(COMMON)
    if not np.isfinite(m.joints).all():
        raise UserError("foot clean-up needs every joint in every frame; complete the motion first "
                        "(e.g. with the inpainting model)")
    X = m.joints.astype(np.float64).copy()                    # (T, 15, 3)
    T = len(X)
    contacts = foot_contacts(m, height, speed, min_frames)     # (T, 2)
    k = max(1, int(round(blend * m.fps)))
    for c, side in enumerate(SIDES):
        h, kn, an = (COMMON.index(f"{side}_{j}") for j in ("hip", "knee", "ankle"))
        target = X[:, an].copy()
        w = np.zeros(T)                                        # 1 = pinned, ramps at the run ends
        for s, e in _runs(contacts[:, c]):
            pin = np.median(X[s:e, an, :], axis=0)
            lo, hi = max(0, s - k), min(T, e + k)
            for t in range(lo, hi):
                wt = 1.0 if s <= t < e else (1.0 - (s - t) / (k + 1) if t < s else 1.0 - (t - e + 1) / (k + 1))
                if wt > w[t]:
                    w[t] = wt
                    target[t, [0, 2]] = pin[[0, 2]]
                    if s <= t < e:
                        target[t, 1] = min(X[t, an, 1], pin[1])   # no lifting while planted
        if not w.any():
            continue
        new_ankle = X[:, an] + w[:, None] * (target - X[:, an])
        l1 = np.linalg.norm(X[:, kn] - X[:, h], axis=1)
        l2 = np.linalg.norm(X[:, an] - X[:, kn], axis=1)
        knee, ankle = _two_bone(X[:, h], new_ankle, X[:, kn], l1, l2)
        moved = w > 0
        X[moved, kn] = knee[moved]
        X[moved, an] = ankle[moved]
    extra = {**m.labels.extra, "foot_contact_frames": int(contacts.sum())}
    return m.with_joints(X.astype(np.float32)).with_labels(extra=extra)
