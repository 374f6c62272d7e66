"""How a motion moves: range of motion, joint speed, repetitions and their period, pelvis travel.

These numbers see what posture-based metrics (FID, recognition accuracy) cannot: a motion that holds the
right pose but does not move.  They work on joint positions (T, J, 3) in metres on any skeleton whose
joint 0 is the pelvis (the COMMON skeleton), Y-up, at ``fps`` frames per second.

The *movement signal* of a motion is its first principal component over time: the pose relative to the
pelvis (every joint but the pelvis) plus the pelvis height, centred, projected onto the direction of
largest variance.  It is the dominant movement of the clip (the squat's up-down, the arm raise's
raise-lower), oriented so that excursions go *away* from the starting pose.  A repetition is one
excursion of that signal: a peak with prominence of at least half the signal's p95-p5 span.  The same
peaks segment a multi-repetition recording into single repetitions (:func:`segment_repetitions`), which
is how the generative models' repetition-level training data is cut.

Shapes: T frames, J joints.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.signal import find_peaks

__all__ = ["range_of_motion", "mean_joint_speed", "pelvis_vertical_travel", "movement_signal",
           "repetition_peaks", "count_repetitions", "repetition_period", "segment_repetitions",
           "dynamics", "MIN_MOVEMENT"]

MIN_MOVEMENT = 0.03   # metres: a movement signal with a smaller p95-p5 span is "not moving" (0 repetitions)
_PCT = (5.0, 95.0)


def _check(joints: np.ndarray) -> np.ndarray:
    j = np.asarray(joints, dtype=np.float64)
    if j.ndim != 3 or j.shape[-1] != 3 or j.shape[1] < 2:
        raise ValueError(f"joints must be (T, J>=2, 3), got {j.shape}")
    return j


def _span(x: np.ndarray, axis: int = 0) -> np.ndarray:
    # np.percentile is vectorised; nanpercentile loops over every column (30x slower), so only for NaNs
    pct = np.percentile if np.isfinite(x).all() else np.nanpercentile
    lo, hi = pct(x, _PCT, axis=axis)
    return hi - lo


def range_of_motion(joints: np.ndarray) -> float:
    """Mean over joints (pelvis excluded) of the p95-p5 span of the joint's position relative to the
    pelvis (the norm of the per-axis spans), metres.  A frozen clip has 0; a joint moving along a sine
    of amplitude A has 2A * sin(0.45 pi) ~ 1.975 A."""
    j = _check(joints)
    rel = j[:, 1:] - j[:, :1]                                            # (T, J-1, 3)
    if len(j) < 2:
        return 0.0
    return float(np.linalg.norm(_span(rel), axis=-1).mean())


def mean_joint_speed(joints: np.ndarray, fps: float) -> float:
    """Mean speed of every joint (absolute positions), metres per second."""
    j = _check(joints)
    if len(j) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(j, axis=0), axis=-1).mean() * fps)


def pelvis_vertical_travel(joints: np.ndarray) -> float:
    """p95-p5 span of the pelvis height (metres): how far the body goes down and up (squats, sit-to-stand)."""
    j = _check(joints)
    return float(_span(j[:, 0, 1])) if len(j) >= 2 else 0.0


def movement_signal(joints: np.ndarray) -> np.ndarray:
    """(T,) the dominant movement in metres (see the module docstring), excursions positive."""
    j = _check(joints)
    T = len(j)
    feats = np.concatenate([(j[:, 1:] - j[:, :1]).reshape(T, -1), j[:, :1, 1]], axis=1)   # (T, 3(J-1)+1)
    x = feats - feats.mean(0)
    if T < 3 or not np.isfinite(x).all():
        return np.zeros(T)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    s = x @ vt[0]
    start = np.median(s[: max(1, T // 10)])
    if (s.max() - start) < (start - s.min()):                           # excursions go away from the start
        s = -s
    return s


def repetition_peaks(joints: np.ndarray, fps: float) -> np.ndarray:
    """Frame indices of the repetitions' extreme points (peaks of :func:`movement_signal` with a
    prominence of at least half its p95-p5 span, at least 0.4 s apart).  Empty if the motion does not
    move (span < :data:`MIN_MOVEMENT`)."""
    s = movement_signal(joints)
    if len(s) < 3:
        return np.zeros(0, dtype=int)
    k = max(1, int(round(0.15 * fps)))                                 # light smoothing (moving average)
    sm = np.convolve(np.pad(s, k, mode="edge"), np.ones(2 * k + 1) / (2 * k + 1), mode="valid")
    span = float(_span(sm))
    if span < MIN_MOVEMENT:
        return np.zeros(0, dtype=int)
    # pad with the end values so a repetition that ends (or starts) at the clip's edge still counts
    padded = np.concatenate([[sm.min()], sm, [sm.min()]])
    peaks, _ = find_peaks(padded, prominence=0.5 * span, distance=max(1, int(0.4 * fps)))
    return peaks - 1


def count_repetitions(joints: np.ndarray, fps: float) -> int:
    """Number of repetitions (excursions of the movement signal); 0 for a motion that does not move."""
    return int(len(repetition_peaks(joints, fps)))


def repetition_period(joints: np.ndarray, fps: float) -> float | None:
    """Seconds between repetitions: the median peak-to-peak interval when there are two or more peaks,
    else the first autocorrelation maximum of the movement signal after its first zero crossing (None
    when the motion shows no period within the clip)."""
    peaks = repetition_peaks(joints, fps)
    if len(peaks) >= 2:
        return float(np.median(np.diff(peaks)) / fps)
    s = movement_signal(joints)
    s = s - s.mean()
    if len(s) < 8 or float(_span(s)) < MIN_MOVEMENT:
        return None
    ac = np.correlate(s, s, mode="full")[len(s) - 1:]
    ac = ac / max(ac[0], 1e-12)
    neg = np.nonzero(ac < 0)[0]
    if len(neg) == 0:
        return None
    lag0 = int(neg[0])
    pk, _ = find_peaks(ac[lag0:], height=0.3)
    if len(pk) == 0:
        return None
    return float((lag0 + pk[0]) / fps)


def segment_repetitions(joints: np.ndarray, fps: float, min_seconds: float = 0.8) -> list[tuple[int, int]]:
    """Cut a multi-repetition recording into single repetitions: [start, end) frame ranges whose
    boundaries are the movement signal's minima (rest) between consecutive repetition peaks; the first
    starts at the rest before the first peak, the last ends at the rest after the last one.  Segments
    shorter than ``min_seconds`` are merged into their neighbour.  A motion with fewer than two
    repetitions is one segment (the whole clip)."""
    j = _check(joints)
    T = len(j)
    peaks = repetition_peaks(j, fps)
    if len(peaks) < 2:
        return [(0, T)]
    s = movement_signal(j)
    cuts = [int(np.argmin(s[: peaks[0] + 1]))]
    cuts += [int(a + np.argmin(s[a:b + 1])) for a, b in zip(peaks[:-1], peaks[1:])]
    cuts.append(int(peaks[-1] + np.argmin(s[peaks[-1]:])) + 1)
    segs = [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
    out: list[tuple[int, int]] = []
    for a, b in segs:
        if out and (b - a) < min_seconds * fps:
            out[-1] = (out[-1][0], b)
        elif out and (out[-1][1] - out[-1][0]) < min_seconds * fps:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def dynamics(joints: np.ndarray, fps: float) -> dict[str, Any]:
    """Every dynamics number of one motion: ``rom`` (m), ``speed`` (m/s), ``repetitions``, ``period``
    (s or None), ``pelvis_travel`` (m)."""
    return {"rom": range_of_motion(joints), "speed": mean_joint_speed(joints, fps),
            "repetitions": count_repetitions(joints, fps), "period": repetition_period(joints, fps),
            "pelvis_travel": pelvis_vertical_travel(joints)}
