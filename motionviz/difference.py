"""What differs between two executions of an exercise, for a physiotherapist.

Pipeline (:func:`compare_executions`): both motions -> clinical joint angles (:mod:`motionviz.angles`)
-> dynamic time warping (:func:`dtw`, a Sakoe-Chiba band around the length-scaled diagonal) on the
angle curves -> along the warping path: per-angle mean absolute difference (degrees) and per-joint
distance of the pelvis-centred, heading-free poses (metres) -> the joints that differ most (by the largest
angle difference at each joint) -> a plain-language summary of the angles whose peak or lowest value
lies outside the **normal range** of real correct executions of the exercise (:func:`normal_range_for`:
p5-p95 over the training split's correct executions, computed on demand and cached per label), e.g.
"Left knee bends 25° less than in correct executions (here 70°; correct executions 88-112°)".

Peak and lowest values of a motion are robust extremes: the 95th and 5th percentiles over its frames, so
one noisy Kinect frame does not make a peak.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .angles import ANGLE_BY_KEY, ANGLES, joint_angles
from .errors import UserError
from .motion import DEFAULT_FPS, Motion
from .skeleton import COMMON

__all__ = ["dtw", "alignment_features", "ALIGN_KEYS", "execution_stats", "NormalRange", "normal_range",
           "normal_range_for", "Finding", "summarise", "Comparison", "compare_executions", "warp_pair",
           "on_common", "MAX_COMPARE_FRAMES"]

#: Angles used for time alignment (no planar projections: they are redundant and can be NaN).
ALIGN_KEYS: tuple[str, ...] = tuple(
    k for k in ANGLE_BY_KEY if not k.endswith(("shoulder_flexion", "shoulder_abduction")))
#: Longest motion (frames at 20 fps) the comparison accepts: DTW is O(T1 T2) in Python.
MAX_COMPARE_FRAMES = 600
PEAK_Q, LOW_Q = 95.0, 5.0
MIN_REPORT_DEG = 5.0            # a finding must differ this much from the median of correct executions


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
    from .data import preprocess

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


@dataclass
class NormalRange:
    """Peak and lowest values of every angle over real correct executions of one exercise:
    ``peak[key]`` / ``low[key]`` = (p5, median, p95) over executions, in degrees; ``n`` executions."""

    label: str
    n: int
    peak: dict[str, tuple[float, float, float]]
    low: dict[str, tuple[float, float, float]]
    source: str = "real correct executions"


def normal_range(motions: Sequence[Motion | np.ndarray], label: str = "",
                 source: str = "real correct executions") -> NormalRange:
    """The :class:`NormalRange` of ``motions`` (each (T, J, 3) on COMMON, or a Motion)."""
    if not motions:
        raise UserError("a normal range needs at least one execution")
    stats = [execution_stats(joint_angles(m.joints if isinstance(m, Motion) else m)) for m in motions]
    peak, low = {}, {}
    for k in ANGLE_BY_KEY:
        for dst, idx in ((peak, 0), (low, 1)):
            v = np.array([s[k][idx] for s in stats], dtype=np.float64)
            v = v[np.isfinite(v)]
            dst[k] = tuple(float(x) for x in np.percentile(v, [5, 50, 95])) if v.size else (np.nan,) * 3
    return NormalRange(label, len(motions), peak, low, source)


_normal_lock = threading.Lock()
_normal_cache: dict[tuple[str, str], NormalRange | None] = {}


def normal_range_for(label: str, root: str | Path | None = None) -> NormalRange | None:
    """The normal range of ``label`` from the **training** split's correct executions (cached per data
    folder and label); None when the data has no correct executions of it (e.g. KIMORE: scores only)."""
    from .data import data_root, load_corpus

    r = str(data_root(root))
    key = (r, label)
    with _normal_lock:
        if key in _normal_cache:
            return _normal_cache[key]
    ds = label.split(":", 1)[0]
    ms = [m for m in load_corpus("train", datasets=[ds], root=r)
          if m.labels.label == label and m.labels.correct is True]
    nr = normal_range(ms, label) if len(ms) >= 3 else None
    with _normal_lock:
        _normal_cache[key] = nr
    return nr


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
    """One angle of the compared motion outside the normal range: ``kind`` 'peak' or 'low', its
    ``value``, the normal (p5, median, p95), ``delta`` = value - median (degrees) and the sentence."""

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
    tail = f"({what} {value:.0f}° here; {against} {lo:.0f}–{hi:.0f}°)"
    if kind == "low" and down is None:
        title = ANGLE_BY_KEY[key].title
        word = "higher" if value > med else "lower"
        return f"Lowest {title} is {abs(value - med):.0f}° {word} than in {against} {tail}"
    d = value - med if kind == "peak" else med - value   # a lower lowest value = more of the opposite movement
    phrase = up if kind == "peak" else down
    word = "more" if d > 0 else "less"
    return f"{phrase[0].upper()}{phrase[1:]} {abs(d):.0f}° {word} than in {against} {tail}"


def summarise(angles: dict[str, np.ndarray], normal: NormalRange | None,
              reference: dict[str, np.ndarray] | None = None, max_items: int = 4) -> tuple[list[Finding], str]:
    """Findings and a plain-language summary of ``angles`` ({key: (T,) degrees}) against ``normal``
    (or, without one, against the ``reference`` motion's angles: value vs its peak/lowest +- 5°).
    Findings are the peak / lowest values outside the range and at least 5° from its median, the
    largest excursions first (at most ``max_items``)."""
    stats = execution_stats(angles)
    if normal is not None:
        against = "correct executions"
        rng = {k: {"peak": normal.peak[k], "low": normal.low[k]} for k in stats}
    elif reference is not None:
        against = "the reference"
        rs = execution_stats(reference)
        rng = {k: {"peak": (rs[k][0] - MIN_REPORT_DEG, rs[k][0], rs[k][0] + MIN_REPORT_DEG),
                   "low": (rs[k][1] - MIN_REPORT_DEG, rs[k][1], rs[k][1] + MIN_REPORT_DEG)} for k in stats}
    else:
        raise UserError("a summary needs a normal range or a reference motion")
    found: list[Finding] = []
    for k, (peak, low) in stats.items():
        for kind, v in (("peak", peak), ("low", low)):
            lo, med, hi = rng[k][kind]
            if not all(np.isfinite(x) for x in (v, lo, med, hi)):
                continue
            outside = max(lo - v, v - hi, 0.0)
            if outside <= 0 or abs(v - med) < MIN_REPORT_DEG:
                continue
            found.append(Finding(k, kind, v, (lo, med, hi), v - med, outside,
                                 _sentence(k, kind, v, lo, med, hi, against)))
    # one finding per angle (its larger excursion), then the largest first
    best: dict[str, Finding] = {}
    for f in found:
        if f.key not in best or f.outside > best[f.key].outside:
            best[f.key] = f
    items = sorted(best.values(), key=lambda f: -f.outside)[:max_items]
    if not items:
        text = f"Every joint angle lies within the range of {against}."
    else:
        text = "\n".join(f"- {f.sentence}." for f in items)
    return items, text


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


@dataclass
class Comparison:
    """Result of :func:`compare_executions` (``reference`` vs ``other``, both on COMMON at 20 fps).

    ``path`` (K, 2) DTW index pairs; ``ref_angles`` / ``other_angles`` {key: (T,) deg};
    ``angle_diff`` {key: mean |difference| along the path, deg}; ``angle_delta`` {key: mean signed
    difference other - reference}; ``joint_distance`` (J,) mean distance of pelvis-centred poses (m);
    ``top_joints`` the joints that differ most; ``findings`` / ``summary`` for ``other`` against the
    normal range (or the reference); ``reference_findings`` the same for the reference."""

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

    def ranked_angles(self) -> list[str]:
        """Angle keys by decreasing mean difference along the path (NaN last)."""
        return sorted(self.angle_diff, key=lambda k: -(self.angle_diff[k] if np.isfinite(self.angle_diff[k])
                                                         else -1.0))


def compare_executions(reference: Motion, other: Motion, normal: NormalRange | None = None,
                       band: float | None = 0.2, top: int = 3) -> Comparison:
    """Time-align ``other`` to ``reference`` (DTW on joint angles) and say what differs (see the module
    docstring).  Both are Motions on COMMON at 20 fps (:func:`on_common` prepares any motion)."""
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
    per_joint: dict[str, float] = {}
    for spec in ANGLES:
        v = diff[spec.key]
        if np.isfinite(v):
            per_joint[spec.joint] = max(per_joint.get(spec.joint, 0.0), v)
    top_joints = [n for n, _ in sorted(per_joint.items(), key=lambda kv: -kv[1])[:max(0, top)]]
    findings, text = summarise(oa, normal, ra if normal is None else None)
    ref_findings = summarise(ra, normal)[0] if normal is not None else []
    return Comparison(reference, other, path, cost, ra, oa, diff, delta, jd, top_joints, findings, text,
                      normal, ref_findings)


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
            "angle_diff": {k: (round(v, 2) if np.isfinite(v) else None) for k, v in cmp.angle_diff.items()},
            "findings": [{"angle": f.key, "kind": f.kind, "value": round(f.value, 1),
                          "normal": [round(x, 1) for x in f.normal], "delta": round(f.delta, 1),
                          "sentence": f.sentence} for f in cmp.findings],
            "summary": cmp.summary, "alignment_cost": round(cmp.cost, 4), "aligned_frames": int(len(cmp.path))}
