"""What differs between two executions of an exercise, for a physiotherapist.

Pipeline (:func:`compare_executions`): both motions -> clinical joint angles (:mod:`motionviz.analysis.angles`)
-> dynamic time warping (:func:`dtw`, a Sakoe-Chiba band around the length-scaled diagonal) on the
angle curves -> along the warping path: per-angle mean absolute difference (degrees) and per-joint
distance of the pelvis-centred, heading-free poses (metres) -> the joints that differ most (by the largest
angle difference at each joint) -> a plain-language summary of the exercise's **key angles** whose peak or lowest value
lies at least :data:`MARGIN_DEG` beyond the **normal range** of real correct executions of the exercise
(:func:`normal_range_for`: p5-p95 over the training split's correct executions, computed on demand and
cached per label), e.g. "Left knee bends 25° less than in correct executions (peak 70° here; correct
executions 100-137°)".

Key angles (:func:`key_angles_for`, cached per label): the peak or lowest values where the training
split's incorrect executions differ most from the correct ones of the same subject (at least
:data:`KEY_MIN_SHIFT` degrees, in the same direction for most subjects, ranked by the shift relative to the
spread of correct executions), with the direction incorrect executions take; only that direction is
reported.  Exercises with fewer than :data:`KEY_MIN_INCORRECT` incorrect training executions fall back
to the angles that move (median range of motion of correct executions >= :data:`MOVING_MIN_DEG`).  Hip and knee angles
are never reported
for IntelliRehabDS arm gestures (0-6).

IntelliRehabDS has standing and wheelchair patients: its normal ranges are keyed by the position
(``labels.extra["position"]``, or inferred from the hip flexion: :func:`position_of`), with no range when
that position has fewer than :data:`MIN_NORMAL_EXECUTIONS` correct executions.

The normal range also has a **band over time** (``NormalRange.band``: p5 / p50 / p95 per frame of the
time-normalised correct executions); :func:`normal_band` aligns it to the compared reference by DTW and
reads it along the comparison's path, for the angle curves.

Peak and lowest values of a motion are robust extremes: the 95th and 5th percentiles over its frames, so
one noisy Kinect frame does not make a peak.
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import data
from ..core.errors import UserError
from ..core.motion import DEFAULT_FPS, Motion
from ..core.representation import _pose_frames
from ..core.skeleton import COMMON
from ..data import data_root, preprocess
from .angles import ANGLE_BY_KEY, ANGLES, joint_angles

__all__ = ["dtw", "alignment_features", "ALIGN_KEYS", "execution_stats", "NormalRange", "normal_range",
           "normal_range_for", "KeyAngle", "key_angles", "key_angles_for", "position_of", "normal_band",
           "Finding", "summarise", "Comparison", "compare_executions", "warp_pair", "on_common",
           "MAX_COMPARE_FRAMES", "MARGIN_DEG", "MIN_NORMAL_EXECUTIONS"]

#: Angles used for time alignment (no planar projections: they are redundant and can be NaN).
ALIGN_KEYS: tuple[str, ...] = tuple(
    k for k in ANGLE_BY_KEY if not k.endswith(("shoulder_flexion", "shoulder_abduction")))
#: Longest motion (frames at 20 fps) the comparison accepts: DTW is O(T1 T2) in Python.
MAX_COMPARE_FRAMES = 600
PEAK_Q, LOW_Q = 95.0, 5.0
#: A finding lies at least this far beyond the normal range (p5-p95 of correct executions), or this far
#: from the reference's value when there is no normal range.
MARGIN_DEG = 5.0
#: Fewer correct training executions than this (of the label, and for IntelliRehabDS of the position),
#: or from fewer subjects than MIN_NORMAL_SUBJECTS: no normal range (the summary compares with the
#: reference).  One person's executions span a few degrees (IntelliRehabDS: one training patient per
#: position, ranges 4-5 deg wide), so against them every held-out patient's correct execution differed.
MIN_NORMAL_EXECUTIONS, MIN_NORMAL_SUBJECTS = 5, 2
#: Key angles: at most this many, each shifted at least KEY_MIN_SHIFT degrees (median over subjects of
#: incorrect minus correct) by at least KEY_MIN_EFFECT spreads of the correct executions (IQR / 1.35),
#: in the same direction for at least KEY_MIN_AGREEMENT of the subjects.
#: Key angles need at least KEY_MIN_INCORRECT incorrect executions (else: the moving angles).
KEY_MAX, KEY_MIN_SHIFT, KEY_MIN_EFFECT, KEY_MIN_AGREEMENT, KEY_MIN_INCORRECT = 4, 5.0, 0.5, 0.7, 3
#: Without incorrect executions: the angles whose median range of motion over correct executions is this large.
MOVING_MIN_DEG = 15.0
#: IntelliRehabDS: a motion whose median hip flexion exceeds this is seated (wheelchair); standing
#: patients' medians lie in -13..17 deg, wheelchair patients' in 51..88 deg (all 188 files).
SEATED_HIP_DEG = 35.0
#: IntelliRehabDS arm gestures (elbow flexion, shoulder flexion / abduction / forward elevation).
ARM_GESTURES = frozenset(f"irds:{g}" for g in range(7))
BAND_FRAMES = 101               # time-normalised frames of the normal band


# ------------------------------------------------------------------------------------------------
# dynamic time warping
# ------------------------------------------------------------------------------------------------
def dtw(a: np.ndarray, b: np.ndarray, band: float | None = 0.2) -> tuple[np.ndarray, float]:
    """Dynamic time warping of feature sequences ``a`` (T1, D) and ``b`` (T2, D) with Euclidean frame
    distances.  ``band``: half-width of the Sakoe-Chiba band as a fraction of max(T1, T2), around the
    diagonal scaled to the two lengths (None = no band).  Returns ``(path, cost)``: ``path`` (K, 2) int
    index pairs (i into a, j into b) from (0, 0) to (T1-1, T2-1), monotone, steps of at most one frame
    in each sequence; ``cost`` = summed frame distance along it divided by K."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if b.ndim == 1:
        b = b[:, None]
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
        raise ValueError(f"dtw needs (T1, D) and (T2, D) arrays, got {a.shape} and {b.shape}")
    T1, T2 = len(a), len(b)
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))          # (T1, T2)
    cost = np.where(np.isfinite(cost), cost, np.nanmax(np.where(np.isfinite(cost), cost, 0.0)) + 1.0)
    if band is None:
        w = max(T1, T2)
    else:
        w = max(1, int(math.ceil(float(band) * max(T1, T2))))
    D = np.full((T1 + 1, T2 + 1), np.inf)
    D[0, 0] = 0.0
    for i in range(1, T1 + 1):
        centre = (i - 1) * (T2 - 1) / max(1, T1 - 1)
        lo = max(1, int(math.floor(centre - w)) + 1)
        hi = min(T2, int(math.ceil(centre + w)) + 1)
        prev, row = D[i - 1], D[i]
        c = cost[i - 1]
        for j in range(lo, hi + 1):
            m = prev[j - 1]
            if prev[j] < m:
                m = prev[j]
            if row[j - 1] < m:
                m = row[j - 1]
            row[j] = c[j - 1] + m
    if not np.isfinite(D[T1, T2]):                  # cannot happen with w >= 1; kept as a guard
        raise ValueError("dtw: the band leaves no path")
    i, j = T1, T2
    path = [(i - 1, j - 1)]
    while i > 1 or j > 1:
        cands = [(D[i - 1, j - 1], i - 1, j - 1), (D[i - 1, j], i - 1, j), (D[i, j - 1], i, j - 1)]
        _, i, j = min((c for c in cands if c[1] >= 1 and c[2] >= 1), key=lambda c: c[0])
        path.append((i - 1, j - 1))
    p = np.array(path[::-1], dtype=np.int64)
    return p, float(D[T1, T2] / len(p))


def alignment_features(angles: dict[str, np.ndarray]) -> np.ndarray:
    """(T, K) features for alignment: the :data:`ALIGN_KEYS` angles in radians (NaN -> the angle's mean,
    or 0)."""
    cols = []
    for k in ALIGN_KEYS:
        v = np.radians(np.asarray(angles[k], dtype=np.float64))
        if np.isnan(v).any():
            m = np.nanmean(v) if np.isfinite(v).any() else 0.0
            v = np.where(np.isfinite(v), v, m)
        cols.append(v)
    return np.stack(cols, axis=1)


# ------------------------------------------------------------------------------------------------
# normal ranges from real correct executions
# ------------------------------------------------------------------------------------------------
def on_common(motion: Motion) -> Motion:
    """A motion on the common skeleton at 20 fps, interior gaps filled (what the comparison works on)."""
    if not isinstance(motion, Motion):
        raise UserError("expected a motion")
    m = preprocess(motion, DEFAULT_FPS, normalise=True)
    if m.num_frames < 2:
        raise UserError("the motion needs at least 2 frames")
    if m.num_frames > MAX_COMPARE_FRAMES:
        raise UserError(f"the motion has {m.num_frames} frames at 20 fps; the comparison takes at most "
                        f"{MAX_COMPARE_FRAMES} ({MAX_COMPARE_FRAMES / DEFAULT_FPS:.0f} s)")
    if not np.isfinite(m.joints).all():
        raise UserError("the motion has joints that are never observed; it cannot be compared")
    return m


def execution_stats(angles: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """key -> (peak, lowest) of one execution: the 95th / 5th percentile of the angle over its frames."""
    out = {}
    for k, v in angles.items():
        v = np.asarray(v, dtype=np.float64)
        v = v[np.isfinite(v)]
        out[k] = (float(np.percentile(v, PEAK_Q)), float(np.percentile(v, LOW_Q))) if v.size else (np.nan, np.nan)
    return out


def _resample(v: np.ndarray, frames: int) -> np.ndarray:
    """(T,) -> (frames,) by linear interpolation over normalised time; NaN stays NaN where a neighbour is."""
    v = np.asarray(v, dtype=np.float64)
    if len(v) == 1:
        return np.repeat(v, frames)
    src = np.linspace(0.0, 1.0, len(v))
    dst = np.linspace(0.0, 1.0, frames)
    i = np.clip(np.searchsorted(src, dst, side="right") - 1, 0, len(v) - 2)
    w = (dst - src[i]) / (src[i + 1] - src[i])
    return v[i] * (1 - w) + v[i + 1] * w


@dataclass
class NormalRange:
    """Peak and lowest values of every angle over real correct executions of one exercise:
    ``peak[key]`` / ``low[key]`` = (p5, median, p95) over executions, in degrees; ``n`` executions;
    ``band[key]`` (BAND_FRAMES, 3) = p5 / p50 / p95 over executions per frame of time-normalised
    executions (one repetition, start to end); ``position`` the IntelliRehabDS position or None."""

    label: str
    n: int
    peak: dict[str, tuple[float, float, float]]
    low: dict[str, tuple[float, float, float]]
    source: str = "real correct executions"
    band: dict[str, np.ndarray] = field(default_factory=dict)
    position: str | None = None


def normal_range(motions: Sequence[Motion | np.ndarray], label: str = "",
                 source: str = "real correct executions", position: str | None = None) -> NormalRange:
    """The :class:`NormalRange` of ``motions`` (each (T, J, 3) on COMMON, or a Motion)."""
    if not motions:
        raise UserError("a normal range needs at least one execution")
    angles = [joint_angles(m.joints if isinstance(m, Motion) else m) for m in motions]
    stats = [execution_stats(a) for a in angles]
    peak, low, band = {}, {}, {}
    for k in ANGLE_BY_KEY:
        for dst, idx in ((peak, 0), (low, 1)):
            v = np.array([s[k][idx] for s in stats], dtype=np.float64)
            v = v[np.isfinite(v)]
            dst[k] = tuple(float(x) for x in np.percentile(v, [5, 50, 95])) if v.size else (np.nan,) * 3
        curves = np.stack([_resample(a[k], BAND_FRAMES) for a in angles])          # (N, BAND_FRAMES)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)                      # all-NaN frames stay NaN
            band[k] = np.nanpercentile(curves, [5, 50, 95], axis=0).T               # (BAND_FRAMES, 3)
    return NormalRange(label, len(motions), peak, low, source, band, position)


def position_of(motion: Motion) -> str | None:
    """IntelliRehabDS position of a motion on COMMON: ``labels.extra["position"]`` when given, else
    ``"wheelchair"`` when its median hip flexion exceeds :data:`SEATED_HIP_DEG` (seated), else ``"stand"``;
    None for other datasets' labels."""
    if not motion.labels.label.startswith("irds:"):
        return None
    pos = (motion.labels.extra or {}).get("position")
    if pos:
        return str(pos)
    a = joint_angles(motion.joints, ("left_hip_flexion", "right_hip_flexion"))
    v = np.r_[a["left_hip_flexion"], a["right_hip_flexion"]]
    v = v[np.isfinite(v)]
    return "wheelchair" if v.size and float(np.median(v)) > SEATED_HIP_DEG else "stand"


_normal_lock = threading.Lock()
_normal_cache: dict[tuple[str, str, str | None], NormalRange | None] = {}


def _train_motions(label: str, root: str) -> list[Motion]:
    ds = label.split(":", 1)[0]
    return [m for m in data.load_corpus("train", datasets=[ds], root=root) if m.labels.label == label]


def normal_range_for(label: str, root: str | Path | None = None, position: str | None = None) -> NormalRange | None:
    """The normal range of ``label`` from the **training** split's correct executions (cached per data
    folder, label and position); for IntelliRehabDS only those of ``position`` ("stand" / "wheelchair";
    None: "stand").  None when fewer than :data:`MIN_NORMAL_EXECUTIONS` exist (e.g. KIMORE: scores only)
    or they come from fewer than :data:`MIN_NORMAL_SUBJECTS` subjects (today every IntelliRehabDS position)."""
    r = str(data_root(root))
    pos = (position or "stand") if label.startswith("irds:") else None
    key = (r, label, pos)
    with _normal_lock:
        if key in _normal_cache:
            return _normal_cache[key]
    ms = [m for m in _train_motions(label, r) if m.labels.correct is True
          and (pos is None or (m.labels.extra or {}).get("position") == pos)]
    enough = len(ms) >= MIN_NORMAL_EXECUTIONS and len({m.labels.subject for m in ms}) >= MIN_NORMAL_SUBJECTS
    nr = normal_range(ms, label, position=pos) if enough else None
    with _normal_lock:
        _normal_cache[key] = nr
    return nr


# ------------------------------------------------------------------------------------------------
# key angles: where incorrect executions differ from correct ones
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyAngle:
    """One value an exercise's findings look at: the ``kind`` ('peak' / 'low') of angle ``key``;
    ``direction`` +1 / -1 = incorrect training executions have a larger / smaller value (only that side is
    reported), 0 = either side (no incorrect executions to learn from); ``shift`` = median over subjects
    of incorrect minus correct (degrees; NaN without incorrect executions); ``effect`` = |shift| / spread."""

    key: str
    kind: str
    direction: int
    shift: float = float("nan")
    effect: float = float("nan")


def _allowed(label: str, key: str) -> bool:
    """No hip or knee angle for IntelliRehabDS arm gestures."""
    return not (label in ARM_GESTURES and ("_hip_" in key or "_knee_" in key))


def key_angles(motions: Sequence[Motion], label: str = "", max_keys: int = KEY_MAX) -> tuple[KeyAngle, ...]:
    """The key angles of an exercise from its executions (Motions on COMMON with ``labels.correct`` and
    ``labels.subject``; see the module docstring).  Empty when there are no correct executions."""
    stats = [(m.labels.subject, m.labels.correct, execution_stats(joint_angles(m.joints))) for m in motions
             if m.labels.correct is not None]
    correct = [s for _, c, s in stats if c]
    if not correct:
        return ()
    n_incorrect = sum(c is False for _, c, _ in stats)
    subjects = sorted({sub for sub, c, _ in stats if c is False}) if n_incorrect >= KEY_MIN_INCORRECT else []
    found: list[KeyAngle] = []
    for k in ANGLE_BY_KEY:
        if not _allowed(label, k):
            continue
        for idx, kind in enumerate(("peak", "low")):
            c_all = np.array([s[k][idx] for s in correct])
            c_all = c_all[np.isfinite(c_all)]
            if c_all.size < 3:
                continue
            shifts = []
            for sub in subjects:
                cc = np.array([s[k][idx] for u, c, s in stats if u == sub and c])
                ii = np.array([s[k][idx] for u, c, s in stats if u == sub and c is False])
                cc, ii = cc[np.isfinite(cc)], ii[np.isfinite(ii)]
                if cc.size and ii.size:
                    shifts.append(float(np.median(ii) - np.median(cc)))
            if not shifts:
                continue
            d = float(np.median(shifts))
            agree = float(np.mean(np.sign(shifts) == np.sign(d)))
            spread = max(float(np.subtract(*np.percentile(c_all, [75, 25]))) / 1.35, 1.0)
            if abs(d) >= KEY_MIN_SHIFT and abs(d) / spread >= KEY_MIN_EFFECT and agree >= KEY_MIN_AGREEMENT:
                found.append(KeyAngle(k, kind, int(np.sign(d)), d, abs(d) / spread))
    if found:
        # one entry per angle (its larger effect), the largest effects first
        best: dict[str, KeyAngle] = {}
        for f in found:
            if f.key not in best or f.effect > best[f.key].effect:
                best[f.key] = f
        return tuple(sorted(best.values(), key=lambda f: -f.effect)[:max_keys])
    out = []
    for k in ANGLE_BY_KEY:
        rom = np.array([s[k][0] - s[k][1] for s in correct])
        rom = rom[np.isfinite(rom)]
        if _allowed(label, k) and rom.size and float(np.median(rom)) >= MOVING_MIN_DEG:
            out += [KeyAngle(k, "peak", 0), KeyAngle(k, "low", 0)]
    return tuple(out)


_key_cache: dict[tuple[str, str], tuple[KeyAngle, ...]] = {}


def key_angles_for(label: str, root: str | Path | None = None) -> tuple[KeyAngle, ...]:
    """:func:`key_angles` of ``label`` from the **training** split (every position), cached per data folder
    and label; empty when the training split has no correct execution of it."""
    r = str(data_root(root))
    with _normal_lock:
        if (r, label) in _key_cache:
            return _key_cache[(r, label)]
    keys = key_angles(_train_motions(label, r), label)
    with _normal_lock:
        _key_cache[(r, label)] = keys
    return keys


# ------------------------------------------------------------------------------------------------
# findings and summary
# ------------------------------------------------------------------------------------------------
_LOW_PHRASE = {
    "knee_flexion": "knee straightens", "elbow_flexion": "elbow straightens",
    "shoulder_elevation": "arm comes down",
    "trunk_forward_tilt": "trunk leans backward", "trunk_lateral_tilt": "trunk leans to the right",
    "trunk_rotation": "trunk turns to the right",
}


def _phrases(key: str) -> tuple[str, str | None]:
    """(phrase for a larger peak, phrase for a lower lowest value or None), without a leading article.
    None: the lowest value of a planar limb angle (hip / shoulder flexion, abduction) has no plain verb;
    the sentence names the angle instead."""
    spec = ANGLE_BY_KEY[key]
    up = spec.phrase[4:] if spec.phrase.startswith("the ") else spec.phrase
    side = spec.key.split("_", 1)[0] if spec.key.startswith(("left_", "right_")) else ""
    base = spec.key[len(side) + 1:] if side else spec.key
    low = _LOW_PHRASE.get(base)
    if low is None:
        return up, None
    return up, (f"{side} {low}" if side else low)


@dataclass
class Finding:
    """One angle of the compared motion beyond the normal range: ``kind`` 'peak' or 'low', its
    ``value``, the normal (p5, median, p95), ``delta`` = value - median, ``outside`` = how far beyond the
    range (degrees) and the sentence."""

    key: str
    kind: str
    value: float
    normal: tuple[float, float, float]
    delta: float
    outside: float
    sentence: str


def _sentence(key: str, kind: str, value: float, lo: float, med: float, hi: float, against: str) -> str:
    up, down = _phrases(key)
    what = "peak" if kind == "peak" else "lowest"
    span = f"{lo:.0f}°" if round(lo) == round(hi) else f"{lo:.0f}–{hi:.0f}°"
    tail = f"({what} {value:.0f}° here; {against} {span})"
    if kind == "low" and down is None:
        title = ANGLE_BY_KEY[key].title
        word = "higher" if value > med else "lower"
        return f"Lowest {title} is {abs(value - med):.0f}° {word} than in {against} {tail}"
    d = value - med if kind == "peak" else med - value   # a lower lowest value = more of the opposite movement
    phrase = up if kind == "peak" else down
    word = "more" if d > 0 else "less"
    return f"{phrase[0].upper()}{phrase[1:]} {abs(d):.0f}° {word} than in {against} {tail}"


def _key_title(k: KeyAngle) -> str:
    return f"{ANGLE_BY_KEY[k.key].title} ({'peak' if k.kind == 'peak' else 'lowest value'})"


def summarise(angles: dict[str, np.ndarray], normal: NormalRange | None,
              reference: dict[str, np.ndarray] | None = None, max_items: int = 4,
              keys: Sequence[KeyAngle] | None = None, label: str = "") -> tuple[list[Finding], str]:
    """Findings and a plain-language summary of ``angles`` ({key: (T,) degrees}) against ``normal``
    (or, without one, against the ``reference`` motion's angles: its peak / lowest value).
    Findings are the peak / lowest values at least :data:`MARGIN_DEG` beyond the range (beyond the
    reference's value), only of ``keys`` (and only in their direction) when given, never a hip or knee angle
    of an IntelliRehabDS arm gesture ``label``; the largest excursions first (at most ``max_items``)."""
    stats = execution_stats(angles)
    if normal is not None:
        against = "correct executions"
        rng = {k: {"peak": normal.peak[k], "low": normal.low[k]} for k in stats}
    elif reference is not None:
        against = "the reference"
        rs = execution_stats(reference)
        rng = {k: {"peak": (rs[k][0],) * 3, "low": (rs[k][1],) * 3} for k in stats}
    else:
        raise UserError("a summary needs a normal range or a reference motion")
    label = label or (normal.label if normal is not None else "")
    if keys:
        wanted = [(k.key, k.kind, k.direction) for k in keys if k.key in stats]
    else:
        wanted = [(k, kind, 0) for k in stats for kind in ("peak", "low")]
    found: list[Finding] = []
    for k, kind, direction in wanted:
        if not _allowed(label, k):
            continue
        v = stats[k][0 if kind == "peak" else 1]
        lo, med, hi = rng[k][kind]
        if not all(np.isfinite(x) for x in (v, lo, med, hi)):
            continue
        above, below = v - hi, lo - v
        outside = above if direction > 0 else below if direction < 0 else max(above, below)
        if outside < MARGIN_DEG:
            continue
        found.append(Finding(k, kind, v, (lo, med, hi), v - med, outside,
                             _sentence(k, kind, v, lo, med, hi, against)))
    # one finding per angle (its larger excursion), then the largest first
    best: dict[str, Finding] = {}
    for f in found:
        if f.key not in best or f.outside > best[f.key].outside:
            best[f.key] = f
    items = sorted(best.values(), key=lambda f: -f.outside)[:max_items]
    if items:
        text = "\n".join(f"- {f.sentence}." for f in items)
    elif keys:
        names = ", ".join(dict.fromkeys(_key_title(k) for k in keys))
        text = (f"The key angles of this exercise ({names}) lie within the range of {against} "
                f"(or less than {MARGIN_DEG:.0f}° beyond it).")
    else:
        text = f"Every joint angle lies within the range of {against} (or less than {MARGIN_DEG:.0f}° beyond it)."
    return items, text


@dataclass
class Comparison:
    """Result of :func:`compare_executions` (``reference`` vs ``other``, both on COMMON at 20 fps).

    ``path`` (K, 2) DTW index pairs; ``ref_angles`` / ``other_angles`` {key: (T,) deg};
    ``angle_diff`` {key: mean |difference| along the path, deg}; ``angle_delta`` {key: mean signed
    difference other - reference}; ``joint_distance`` (J,) mean distance of pelvis-centred poses (m);
    ``top_joints`` the joints of the findings, then the joints that differ most; ``findings`` / ``summary``
    for ``other`` against the normal range (or the reference); ``reference_findings`` the same for the
    reference; ``keys`` the key angles the findings looked at; ``band`` {key: (K, 3) p5 / p50 / p95 of the
    normal band along the path} (empty without a normal range)."""

    reference: Motion
    other: Motion
    path: np.ndarray
    cost: float
    ref_angles: dict[str, np.ndarray]
    other_angles: dict[str, np.ndarray]
    angle_diff: dict[str, float]
    angle_delta: dict[str, float]
    joint_distance: np.ndarray
    top_joints: list[str]
    findings: list[Finding]
    summary: str
    normal: NormalRange | None = None
    reference_findings: list[Finding] = field(default_factory=list)
    keys: tuple[KeyAngle, ...] = ()
    band: dict[str, np.ndarray] = field(default_factory=dict)

    def ranked_angles(self) -> list[str]:
        """Angle keys by decreasing mean difference along the path (NaN last)."""
        return sorted(self.angle_diff, key=lambda k: -(self.angle_diff[k] if np.isfinite(self.angle_diff[k])
                                                         else -1.0))


def normal_band(normal: NormalRange | None, ref_angles: dict[str, np.ndarray], path: np.ndarray,
                band: float | None = 0.25) -> dict[str, np.ndarray]:
    """The normal band (``normal.band``, time-normalised) along a comparison: its median curves are
    aligned to the reference (``ref_angles`` {key: (T,)}) by DTW, each reference frame takes the band at
    its matched normalised frames (their mean), and ``path`` (K, 2) reads it per aligned step.
    Returns {key: (K, 3) p5 / p50 / p95 degrees}; {} without a band."""
    if normal is None or not normal.band:
        return {}
    tmpl = alignment_features({k: normal.band[k][:, 1] for k in ALIGN_KEYS})            # (R, D)
    p, _ = dtw(tmpl, alignment_features(ref_angles), band)
    T = len(next(iter(ref_angles.values())))
    phase = np.zeros(T)
    np.add.at(phase, p[:, 1], p[:, 0])
    phase = np.rint(phase / np.bincount(p[:, 1], minlength=T)).astype(int)             # (T,) band frame
    rows = phase[np.asarray(path)[:, 0]]
    return {k: np.asarray(v)[rows] for k, v in normal.band.items()}


def compare_executions(reference: Motion, other: Motion, normal: NormalRange | None = None,
                       band: float | None = 0.2, top: int = 3, keys: Sequence[KeyAngle] | None = None,
                       label: str = "") -> Comparison:
    """Time-align ``other`` to ``reference`` (DTW on joint angles) and say what differs (see the module
    docstring).  Both are Motions on COMMON at 20 fps (:func:`on_common` prepares any motion); ``keys``
    restrict the findings (:func:`key_angles_for`), ``label`` names the exercise (for its exclusions)."""
    for m in (reference, other):
        if not isinstance(m, Motion) or m.skeleton.name != COMMON.name:
            raise UserError("both motions must be on the common skeleton (use difference.on_common)")
        if m.num_frames > MAX_COMPARE_FRAMES:
            raise UserError(f"a motion has {m.num_frames} frames; the comparison takes at most "
                            f"{MAX_COMPARE_FRAMES}")
    ra, oa = joint_angles(reference.joints), joint_angles(other.joints)
    path, cost = dtw(alignment_features(ra), alignment_features(oa), band)
    i, j = path[:, 0], path[:, 1]
    diff, delta = {}, {}
    for k in ra:
        d = oa[k][j] - ra[k][i]
        ok = np.isfinite(d)
        diff[k] = float(np.abs(d[ok]).mean()) if ok.any() else float("nan")
        delta[k] = float(d[ok].mean()) if ok.any() else float("nan")
    pr, po = _pose_frames(reference.joints), _pose_frames(other.joints)
    jd = np.linalg.norm(po[j] - pr[i], axis=-1).mean(axis=0)                  # (J,)
    label = label or (normal.label if normal is not None else "")
    keys = tuple(keys or ())
    findings, text = summarise(oa, normal, ra if normal is None else None, keys=keys, label=label)
    ref_findings = summarise(ra, normal, keys=keys, label=label)[0] if normal is not None else []
    per_joint: dict[str, float] = {}
    for spec in ANGLES:
        v = diff[spec.key]
        if np.isfinite(v) and _allowed(label, spec.key):
            per_joint[spec.joint] = max(per_joint.get(spec.joint, 0.0), v)
    ranked = [n for n, _ in sorted(per_joint.items(), key=lambda kv: -kv[1])]
    # the joints of the findings first, then the ones that differ most
    top_joints = list(dict.fromkeys([ANGLE_BY_KEY[f.key].joint for f in findings] + ranked))[:max(0, top)]
    return Comparison(reference, other, path, cost, ra, oa, diff, delta, jd, top_joints, findings, text,
                      normal, ref_findings, keys, normal_band(normal, ra, path))


def warp_pair(cmp: Comparison, max_frames: int = 300) -> tuple[Motion, Motion, np.ndarray]:
    """The two motions resampled along the DTW path (same length, at most ``max_frames`` frames, evenly
    thinned), so one slider shows matching moments; returns (reference, other, path rows used (K', 2))."""
    p = cmp.path
    if len(p) > max_frames:
        p = p[np.linspace(0, len(p) - 1, max_frames).round().astype(int)]
    a = cmp.reference.with_joints(cmp.reference.joints[p[:, 0]])
    b = cmp.other.with_joints(cmp.other.joints[p[:, 1]])
    return a, b, p


def describe_comparison(cmp: Comparison) -> dict[str, Any]:
    """A JSON-safe digest (for the API / tests): top joints, angle differences, findings, summary."""
    return {"top_joints": list(cmp.top_joints),
            "key_angles": [{"angle": k.key, "kind": k.kind, "direction": k.direction} for k in cmp.keys],
            "angle_diff": {k: (round(v, 2) if np.isfinite(v) else None) for k, v in cmp.angle_diff.items()},
            "findings": [{"angle": f.key, "kind": f.kind, "value": round(f.value, 1),
                          "normal": [round(x, 1) for x in f.normal], "delta": round(f.delta, 1),
                          "sentence": f.sentence} for f in cmp.findings],
            "summary": cmp.summary, "alignment_cost": round(cmp.cost, 4), "aligned_frames": int(len(cmp.path))}
