"""Evaluation metrics for generated motion: pure functions of arrays (randomness only from a passed
``np.random.Generator``).

Feature-space metrics take recogniser features ``(N, D)`` (the penultimate layer of
:mod:`motionviz.models.recognition`):

* ACTOR protocol (Petrovich et al. 2021, after Guo et al. 2020): :func:`fid`, :func:`accuracy`,
  :func:`diversity` (``num_pairs`` random pairs of distinct samples), :func:`multimodality` (``pairs``
  random pairs of distinct samples per class), each usually repeated 20 times and summarised by
  :func:`mean_ci` (mean +- 1.96 standard errors).
* Small-data metrics: :func:`sliced_wasserstein` (SWD), :func:`precision_recall` (Kynkaanniemi et al.
  2019, k-NN balls), :func:`density_coverage` (Naeem et al. 2020), :func:`nearest_neighbour_distances`
  and :func:`memorisation_ratio` (generated -> training-set distance over real-test -> training-set
  distance; far below 1 means the model copies its training data).
* Text conditioning: :func:`r_precision` ranks the prompt's class among a pool of classes by the
  recogniser's probabilities.

Physical plausibility takes joint positions ``(T, J, 3)`` (metres, Y-up) on a named skeleton:
:func:`jerk`, :func:`bone_length_error`, :func:`foot_skating`, :func:`joint_limit_violations`, and
:func:`physical_metrics` averaging them over motions.  Joints are found by name, never by index.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from ..core.skeleton import Skeleton

__all__ = [
    "frechet_distance", "fid", "accuracy", "diversity", "multimodality", "mean_ci",
    "sliced_wasserstein", "precision_recall", "density_coverage", "nearest_neighbour_distances",
    "memorisation_ratio", "r_precision", "jerk", "bone_length_error", "foot_skating",
    "joint_limit_violations", "JOINT_LIMITS", "physical_metrics", "repeat",
]


# ================================================================================================
# Feature statistics
# ================================================================================================
def _as_features(x: np.ndarray, name: str = "features") -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D); got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return a


def _sqrtm_psd(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2):
    ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)`` (symmetric form, no complex sqrtm)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    diff = mu1 - mu2
    r1 = _sqrtm_psd(s1)
    m = r1 @ s2 @ r1
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_cross = float(np.sqrt(np.clip(ev, 0.0, None)).sum())
    d = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_cross)
    return max(d, 0.0)


def _stats(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = a.mean(axis=0)
    if len(a) < 2:
        return mu, np.zeros((a.shape[1], a.shape[1]))
    return mu, np.cov(a, rowvar=False).reshape(a.shape[1], a.shape[1])


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet Inception-style distance between two feature sets (N, D) and (M, D)."""
    a, b = _as_features(features_a, "features_a"), _as_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}")
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return frechet_distance(*_stats(a), *_stats(b))


def accuracy(predicted: Sequence, target: Sequence) -> float:
    """Fraction of equal entries (class indices or label strings)."""
    p, t = list(predicted), list(target)
    if len(p) != len(t):
        raise ValueError(f"{len(p)} predictions for {len(t)} targets")
    if not p:
        return float("nan")
    return float(np.mean([a == b for a, b in zip(p, t)]))


def _distinct_pairs(n: int, num_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``num_pairs`` random index pairs (i, j) with i != j drawn uniformly from range(n)."""
    i = rng.integers(0, n, size=num_pairs)
    j = (i + rng.integers(1, n, size=num_pairs)) % n
    return i, j


def diversity(features: np.ndarray, rng: np.random.Generator, num_pairs: int = 200) -> float:
    """Mean Euclidean distance between ``num_pairs`` random pairs of distinct samples (ACTOR)."""
    a = _as_features(features)
    if len(a) < 2:
        return float("nan")
    i, j = _distinct_pairs(len(a), num_pairs, rng)
    return float(np.linalg.norm(a[i] - a[j], axis=1).mean())


def multimodality(features: np.ndarray, labels: Sequence, rng: np.random.Generator,
                  pairs: int = 20) -> float:
    """Mean distance between ``pairs`` random pairs of distinct samples of the same class, averaged over
    the classes with at least two samples (ACTOR).  NaN when no class has two samples."""
    a = _as_features(features)
    lab = np.asarray(list(labels), dtype=object)
    if len(lab) != len(a):
        raise ValueError(f"{len(lab)} labels for {len(a)} feature rows")
    per_class = []
    for c in sorted(set(lab.tolist()), key=str):
        idx = np.flatnonzero(lab == c)
        if len(idx) < 2:
            continue
        i, j = _distinct_pairs(len(idx), pairs, rng)
        per_class.append(np.linalg.norm(a[idx[i]] - a[idx[j]], axis=1).mean())
    return float(np.mean(per_class)) if per_class else float("nan")


def mean_ci(values: Sequence[float], z: float = 1.96) -> tuple[float, float]:
    """(mean, half-width of the 95 % interval) = (mean, z * std / sqrt(n)) over repeats; NaNs ignored."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), 0.0
    return float(v.mean()), float(z * v.std(ddof=1) / math.sqrt(v.size))


def repeat(fn: Callable[[np.random.Generator], float], repeats: int,
           rng: np.random.Generator) -> tuple[float, float]:
    """Run ``fn(child_rng)`` ``repeats`` times with independent child generators -> :func:`mean_ci`."""
    seeds = rng.integers(0, 2**63 - 1, size=repeats)
    return mean_ci([fn(np.random.default_rng(int(s))) for s in seeds])


# ================================================================================================
# Small-data metrics
# ================================================================================================
def sliced_wasserstein(features_a: np.ndarray, features_b: np.ndarray, rng: np.random.Generator,
                       num_projections: int = 256, p: int = 2) -> float:
    """Sliced p-Wasserstein distance: ``(mean over random unit directions of W_p^p of the projected
    1-D distributions)^(1/p)``.  Sets of different sizes are compared through their quantile functions
    on a common grid.  Identical sets give 0; a translation by ``s`` gives ``|s| / sqrt(D)`` in
    expectation (p = 2)."""
    a, b = _as_features(features_a, "features_a"), _as_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}")
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    dirs = rng.standard_normal((a.shape[1], num_projections))
    dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
    pa, pb = a @ dirs, b @ dirs                     # (N, P), (M, P)
    if len(a) == len(b):
        qa, qb = np.sort(pa, axis=0), np.sort(pb, axis=0)
    else:
        n = max(len(a), len(b))
        q = (np.arange(n) + 0.5) / n
        qa, qb = np.quantile(pa, q, axis=0), np.quantile(pb, q, axis=0)
    w = (np.abs(qa - qb) ** p).mean(axis=0)         # (P,)
    return float(w.mean() ** (1.0 / p))


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance matrix (N, M)."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(d2, 0.0, None))


def _knn_radii(a: np.ndarray, k: int) -> np.ndarray:
    """Distance of each row of ``a`` to its k-th nearest other row."""
    if len(a) <= k:
        raise ValueError(f"k-NN with k={k} needs more than {k} samples, got {len(a)}")
    d = _pairwise(a, a)
    np.fill_diagonal(d, np.inf)
    return np.partition(d, k - 1, axis=1)[:, k - 1]


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision / recall (Kynkaanniemi et al. 2019).  Precision: fraction of fake samples
    inside the union of k-NN balls of the real samples; recall: fraction of real samples inside the
    union of k-NN balls of the fake samples."""
    r, f = _as_features(real, "real"), _as_features(fake, "fake")
    rr, rf = _knn_radii(r, k), _knn_radii(f, k)
    d = _pairwise(f, r)                              # (M fake, N real)
    precision = float((d <= rr[None, :]).any(axis=1).mean())
    recall = float((d.T <= rf[None, :]).any(axis=1).mean())
    return precision, recall


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020).  Density = mean over fake samples of the number of
    real k-NN balls containing them, divided by k (about 1 for matching distributions; (k+1)/k for
    identical sets); coverage = fraction of real balls containing at least one fake sample."""
    r, f = _as_features(real, "real"), _as_features(fake, "fake")
    rr = _knn_radii(r, k)
    inside = _pairwise(f, r) <= rr[None, :]          # (M, N)
    return float(inside.sum(axis=1).mean() / k), float(inside.any(axis=0).mean())


def nearest_neighbour_distances(queries: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(N,) Euclidean distance of each query row to its nearest reference row."""
    q, r = _as_features(queries, "queries"), _as_features(reference, "reference")
    out = np.empty(len(q))
    for s in range(0, len(q), 1024):                 # bounded memory
        out[s:s + 1024] = _pairwise(q[s:s + 1024], r).min(axis=1)
    return out


def memorisation_ratio(generated: np.ndarray, real_test: np.ndarray, train: np.ndarray) -> float:
    """median NN distance (generated -> train) / median NN distance (real test -> train).  About 1 when
    generated motions are as far from the training set as unseen real motions; near 0 when the model
    reproduces training motions."""
    g = np.median(nearest_neighbour_distances(generated, train))
    t = np.median(nearest_neighbour_distances(real_test, train))
    return float(g / t) if t > 0 else float("nan")


def r_precision(probabilities: np.ndarray, targets: Sequence[int], rng: np.random.Generator,
                top_k: Sequence[int] = (1, 2, 3), pool: int = 32) -> dict[str, float]:
    """R-precision with a classifier: for each sample, the target class and ``pool - 1`` random other
    classes (all classes when fewer) are ranked by predicted probability; ``top<k>`` is the fraction of
    samples whose target ranks within the first k.  probabilities (N, K), targets (N,)."""
    p = np.asarray(probabilities, dtype=np.float64)
    t = np.asarray(list(targets), dtype=np.int64)
    if p.ndim != 2 or len(p) != len(t):
        raise ValueError(f"probabilities {p.shape} do not match {len(t)} targets")
    n, k_cls = p.shape
    if n == 0:
        return {f"top{k}": float("nan") for k in top_k}
    m = min(pool, k_cls)
    hits = {k: 0 for k in top_k}
    for i in range(n):
        others = np.delete(np.arange(k_cls), t[i])
        cand = np.concatenate([[t[i]], rng.choice(others, size=m - 1, replace=False)])
        # rank = number of candidates with a strictly higher probability (ties in the target's favour)
        rank = int((p[i, cand[1:]] > p[i, t[i]]).sum())
        for k in top_k:
            hits[k] += rank < k
    return {f"top{k}": hits[k] / n for k in top_k}


# ================================================================================================
# Physical plausibility (joint positions, metres, Y-up)
# ================================================================================================
def _joints(x: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 3 or a.shape[1] != len(skeleton) or a.shape[2] != 3:
        raise ValueError(f"joints must be (T, {len(skeleton)}, 3) for skeleton {skeleton.name!r}; "
                         f"got {a.shape}")
    return a


def jerk(joints: np.ndarray, fps: float) -> float:
    """Mean magnitude of the third time derivative of joint positions (m/s^3), by finite differences.
    0 for constant-velocity and constant-acceleration motion; 6c for x = c t^3.  NaN if T < 4."""
    a = np.asarray(joints, dtype=np.float64)
    if a.shape[0] < 4:
        return float("nan")
    d3 = np.diff(a, n=3, axis=0) * fps ** 3          # (T-3, J, 3)
    mag = np.linalg.norm(d3, axis=-1)
    mag = mag[np.isfinite(mag)]
    return float(mag.mean()) if mag.size else float("nan")


def bone_length_error(joints: np.ndarray, skeleton: Skeleton) -> float:
    """Mean over bones of (std over time / mean over time) of the bone length: 0 for a rigid body."""
    a = _joints(joints, skeleton)
    bl = skeleton.bone_lengths(a)                    # (T, B)
    ok = np.isfinite(bl)
    n = ok.sum(axis=0)                               # (B,) frames where the bone is observed
    if not (n >= 1).any():
        return float("nan")
    blz = np.where(ok, bl, 0.0)
    mean = blz.sum(axis=0) / np.maximum(n, 1)
    std = np.sqrt((np.where(ok, bl - mean, 0.0) ** 2).sum(axis=0) / np.maximum(n, 1))
    valid = (n >= 1) & (mean > 1e-9)
    return float((std[valid] / mean[valid]).mean()) if valid.any() else float("nan")


def foot_skating(joints: np.ndarray, skeleton: Skeleton, fps: float, height: float = 0.05,
                 feet: tuple[str, ...] = ("left_ankle", "right_ankle")) -> float:
    """Mean horizontal speed (m/s) of the feet while they are near the floor.  A foot is in contact in
    a frame pair when its height is within ``height`` metres of its lowest height in the sequence in
    both frames.  0 for planted feet; NaN when no contact frames exist or T < 2."""
    a = _joints(joints, skeleton)
    if len(a) < 2:
        return float("nan")
    speeds = []
    for name in feet:
        f = a[:, skeleton.index(name)]               # (T, 3)
        y = f[:, 1]
        if not np.isfinite(y).any():
            continue
        low = np.nanmin(y)
        near = y <= low + height
        contact = near[1:] & near[:-1]
        v = np.linalg.norm(np.diff(f[:, [0, 2]], axis=0), axis=-1) * fps   # (T-1,)
        speeds.append(v[contact & np.isfinite(v)])
    s = np.concatenate(speeds) if speeds else np.zeros(0)
    return float(s.mean()) if s.size else float("nan")


def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle (degrees) between vectors (..., 3)."""
    nu, nv = np.linalg.norm(u, axis=-1), np.linalg.norm(v, axis=-1)
    c = (u * v).sum(-1) / np.maximum(nu * nv, 1e-12)
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


# Anatomical limits checked on the common skeleton (degrees of flexion; 0 = straight limb).
JOINT_LIMITS: dict[str, dict[str, object]] = {
    # signed knee flexion about the pelvis' left-right axis: negative = bending forwards (hyperextension)
    "knee_hyperextension": {"joints": ("hip", "knee", "ankle"), "min_flexion": -10.0},
    "knee_overflexion": {"joints": ("hip", "knee", "ankle"), "max_flexion": 160.0},
    # the elbow's hinge axis cannot be read from 3 points, so only its flexion range is checked
    "elbow_overflexion": {"joints": ("shoulder", "elbow", "wrist"), "max_flexion": 160.0},
    # trunk (pelvis -> neck) more than 100 degrees from vertical while the pelvis is not on the floor
    "trunk_inversion": {"joints": ("pelvis", "neck"), "max_tilt": 100.0},
}


def joint_limit_violations(joints: np.ndarray, skeleton: Skeleton) -> dict[str, float]:
    """Fraction of frames (per side for limbs) violating each entry of :data:`JOINT_LIMITS`, plus
    ``any``: fraction of frames with at least one violation.  Needs the common joint names."""
    a = _joints(joints, skeleton)
    ix = skeleton.index
    T = len(a)
    out: dict[str, float] = {}
    any_bad = np.zeros(T, dtype=bool)
    lateral = a[:, ix("left_hip")] - a[:, ix("right_hip")]          # (T, 3) subject's left
    for side in ("left", "right"):
        hip, knee, ankle = (a[:, ix(f"{side}_{n}")] for n in ("hip", "knee", "ankle"))
        thigh, shank = knee - hip, ankle - knee
        flex = _angle(thigh, shank)                                   # unsigned, (T,)
        sign = np.sign((np.cross(thigh, shank) * lateral).sum(-1))    # + = normal (backward) flexion
        signed = np.where(sign < 0, -flex, flex)
        kh = signed < JOINT_LIMITS["knee_hyperextension"]["min_flexion"]
        ko = flex > JOINT_LIMITS["knee_overflexion"]["max_flexion"]
        sh, el, wr = (a[:, ix(f"{side}_{n}")] for n in ("shoulder", "elbow", "wrist"))
        eo = _angle(el - sh, wr - el) > JOINT_LIMITS["elbow_overflexion"]["max_flexion"]
        for name, bad in (("knee_hyperextension", kh), ("knee_overflexion", ko), ("elbow_overflexion", eo)):
            out[name] = out.get(name, 0.0) + float(bad.mean()) / 2.0
            any_bad |= bad
    trunk = a[:, ix("neck")] - a[:, ix("pelvis")]
    tilt = _angle(trunk, np.broadcast_to(np.array([0.0, 1.0, 0.0]), trunk.shape))
    pelvis_y = a[:, ix("pelvis")][:, 1]
    floor = np.nanmin(a[..., 1])
    ti = (tilt > JOINT_LIMITS["trunk_inversion"]["max_tilt"]) & (pelvis_y - floor > 0.3)
    out["trunk_inversion"] = float(ti.mean())
    any_bad |= ti
    out["any"] = float(any_bad.mean())
    return out


def physical_metrics(motions: Sequence[np.ndarray], skeleton: Skeleton, fps: float,
                     contact_height: float = 0.05) -> dict[str, float]:
    """Mean over motions of jerk, bone_length_error, foot_skating and joint-limit violation rates
    (``limit_<name>``).  NaN-valued motions (too short, no contact) are skipped per metric."""
    rows: dict[str, list[float]] = {"jerk": [], "bone_length_error": [], "foot_skating": []}
    for m in motions:
        a = np.asarray(m, dtype=np.float64)
        rows["jerk"].append(jerk(a, fps))
        rows["bone_length_error"].append(bone_length_error(a, skeleton))
        rows["foot_skating"].append(foot_skating(a, skeleton, fps, contact_height))
        for k, v in joint_limit_violations(np.nan_to_num(a), skeleton).items():
            rows.setdefault(f"limit_{k}", []).append(v)
    out = {}
    for k, vals in rows.items():
        v = np.asarray(vals, dtype=np.float64)
        v = v[np.isfinite(v)]
        out[k] = float(v.mean()) if v.size else float("nan")
    return out
