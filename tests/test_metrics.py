"""Known-answer tests for motionviz.analysis.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _poses import RELAXED, pose_array

from motionviz.analysis import metrics as M
from motionviz.core.skeleton import COMMON


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------
# FID
# ---------------------------------------------------------------------------------------------
def test_fid_identical_sets_is_zero():
    x = rng().standard_normal((300, 8))
    assert M.fid(x, x) == pytest.approx(0.0, abs=1e-8)


def test_fid_shifted_gaussians_analytic():
    # same covariance, means differ by mu -> FID = |mu|^2 (exact for the sample statistics)
    x = rng(1).standard_normal((2000, 6))
    mu = np.array([1.0, -2.0, 0.5, 0.0, 3.0, -1.0])
    assert M.fid(x, x + mu) == pytest.approx(float(mu @ mu), rel=1e-6)
    # two independent samples of shifted Gaussians: analytic value within sampling tolerance
    y = rng(2).standard_normal((4000, 6)) + mu
    assert M.fid(x, y) == pytest.approx(float(mu @ mu), abs=0.25)


def test_frechet_distance_scaled_covariance():
    # N(0, I) vs N(0, 4I) in D dims: tr(I + 4I - 2*2I) = D
    d = 5
    assert M.frechet_distance(np.zeros(d), np.eye(d), np.zeros(d), 4 * np.eye(d)) == pytest.approx(d)


def test_fid_rejects_nan():
    x = np.ones((4, 3))
    x[0, 0] = np.nan
    with pytest.raises(ValueError):
        M.fid(x, np.ones((4, 3)))


# ---------------------------------------------------------------------------------------------
# ACTOR diversity / multimodality / accuracy / intervals
# ---------------------------------------------------------------------------------------------
def test_diversity_of_simplex_is_sqrt2():
    x = np.eye(10) * 1.0                                # every pair of distinct rows is sqrt(2) apart
    assert M.diversity(x, rng(), num_pairs=200) == pytest.approx(math.sqrt(2))


def test_diversity_two_points():
    x = np.array([[0.0, 0.0], [3.0, 4.0]])
    assert M.diversity(x, rng(), num_pairs=50) == pytest.approx(5.0)
    assert math.isnan(M.diversity(x[:1], rng()))


def test_multimodality_per_class_known():
    # class a: two points 2 apart; class b: two points 4 apart; c: one point (ignored)
    x = np.array([[0.0, 0], [2, 0], [10, 0], [10, 4], [50, 50]])
    labels = ["a", "a", "b", "b", "c"]
    assert M.multimodality(x, labels, rng(), pairs=20) == pytest.approx(3.0)
    assert math.isnan(M.multimodality(x[:1], labels[:1], rng()))


def test_accuracy_and_mean_ci():
    assert M.accuracy(["a", "b", "c", "d"], ["a", "b", "x", "d"]) == 0.75
    m, ci = M.mean_ci([1.0, 1.0, 1.0])
    assert (m, ci) == (1.0, 0.0)
    m, ci = M.mean_ci([0.0, 2.0])
    assert m == 1.0 and ci == pytest.approx(1.96 * math.sqrt(2) / math.sqrt(2))
    m, ci = M.repeat(lambda g: 7.0, 5, rng())
    assert (m, ci) == (7.0, 0.0)


# ---------------------------------------------------------------------------------------------
# Small-data metrics
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_swd_identical_zero_and_shift():
    x = rng(3).standard_normal((500, 16))
    assert M.sliced_wasserstein(x, x, rng()) == pytest.approx(0.0, abs=1e-12)
    s = np.zeros(16)
    s[0] = 4.0
    # translation by s: SWD_2 = sqrt(E[(s.theta)^2]) = |s| / sqrt(D)
    got = M.sliced_wasserstein(x, x + s, rng(), num_projections=4000)
    assert got == pytest.approx(4.0 / math.sqrt(16), rel=0.05)
    # different set sizes work through quantiles
    assert M.sliced_wasserstein(x, x[:250], rng()) < 0.2


def test_precision_recall_identical_and_disjoint():
    x = rng(4).standard_normal((200, 4))
    assert M.precision_recall(x, x, k=3) == (1.0, 1.0)
    assert M.precision_recall(x, x + 100.0, k=3) == (0.0, 0.0)
    # fake covering only half of the real support: full precision, about half recall
    half = x[x[:, 0] > 0]
    p, r = M.precision_recall(x, half, k=3)
    assert p == 1.0 and 0.3 < r < 0.8


def test_density_coverage_identical_and_disjoint():
    x = rng(5).standard_normal((200, 4))
    d, c = M.density_coverage(x, x, k=5)
    assert c == 1.0 and d == pytest.approx(6 / 5)
    assert M.density_coverage(x, x + 100.0, k=5) == (0.0, 0.0)


def test_nearest_neighbour_and_memorisation():
    train = rng(6).standard_normal((300, 5))
    test = rng(7).standard_normal((100, 5))
    assert np.allclose(M.nearest_neighbour_distances(train[:20], train), 0.0, atol=1e-6)
    assert M.memorisation_ratio(train[:50], test, train) == pytest.approx(0.0, abs=1e-6)
    other = rng(8).standard_normal((100, 5))
    assert 0.6 < M.memorisation_ratio(other, test, train) < 1.6


def test_r_precision_perfect_and_random():
    k = 10
    t = np.arange(100) % k
    perfect = np.eye(k)[t]
    out = M.r_precision(perfect, t, rng(), top_k=(1, 3))
    assert out == {"top1": 1.0, "top3": 1.0}
    worst = 1.0 - np.eye(k)[t]                          # the target always has the lowest probability
    assert M.r_precision(worst, t, rng(), top_k=(1, 3)) == {"top1": 0.0, "top3": 0.0}
    # pool smaller than K: random candidates, but a perfect classifier still ranks first
    assert M.r_precision(perfect, t, rng(), top_k=(1,), pool=4)["top1"] == 1.0


# ---------------------------------------------------------------------------------------------
# Physical plausibility
# ---------------------------------------------------------------------------------------------
def standing_pose() -> np.ndarray:
    """(15, 3) upright pose on the common skeleton, facing +Z, left = +X, ankles on the floor (float64)."""
    return pose_array(RELAXED, np.float64)


def test_jerk_linear_quadratic_cubic():
    t = np.arange(40)[:, None, None] / 20.0
    base = standing_pose()[None]
    lin = base + t * np.array([0.3, 0.0, 0.1])
    quad = base + 0.5 * t ** 2 * np.array([0.0, 1.0, 0.0])
    cub = base + 2.0 * t ** 3 * np.array([1.0, 0.0, 0.0])
    assert M.jerk(lin, 20.0) == pytest.approx(0.0, abs=1e-6)
    assert M.jerk(quad, 20.0) == pytest.approx(0.0, abs=1e-6)
    assert M.jerk(cub, 20.0) == pytest.approx(12.0, rel=1e-6)   # d3/dt3 (2 t^3) = 12


def test_bone_length_error_rigid_zero_stretch_positive():
    pose = standing_pose()
    frames = []
    for k in range(30):
        a = 0.1 * k
        R = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
        frames.append(pose @ R.T + np.array([0.05 * k, 0.0, 0.02 * k]))
    rigid = np.stack(frames)
    assert M.bone_length_error(rigid, COMMON) == pytest.approx(0.0, abs=1e-9)
    stretched = rigid * np.linspace(1.0, 1.2, 30)[:, None, None]
    assert M.bone_length_error(stretched, COMMON) > 0.03


def test_foot_skating_planted_zero_sliding_speed():
    pose = standing_pose()
    T = 40
    planted = np.repeat(pose[None], T, axis=0)
    planted[:, COMMON.indices(["left_wrist", "right_wrist"]), 1] += np.sin(np.arange(T) / 3)[:, None] * 0.2
    assert M.foot_skating(planted, COMMON, 20.0) == pytest.approx(0.0, abs=1e-12)
    sliding = np.repeat(pose[None], T, axis=0) + (np.arange(T) / 20.0)[:, None, None] * np.array([0, 0, 0.5])
    assert M.foot_skating(sliding, COMMON, 20.0) == pytest.approx(0.5, rel=1e-6)
    # feet in the air (lifted > threshold) do not count: one foot swings, the other is planted
    walk = np.repeat(pose[None], T, axis=0)
    la = COMMON.index("left_ankle")
    walk[:, la, 1] += 0.2
    walk[:, la, 2] += np.arange(T) * 0.05
    walk[0, la, 1] = 0.08                               # lowest point is in frame 0 only
    assert M.foot_skating(walk, COMMON, 20.0) == pytest.approx(0.0, abs=1e-12)


def test_joint_limits_knee_hyperextension_and_normal_flexion():
    pose = standing_pose()
    ok = pose.copy()
    assert M.joint_limit_violations(ok[None], COMMON)["any"] == 0.0
    # knee bent normally: ankle goes backwards (-Z)
    bent = pose.copy()
    for s in ("left", "right"):
        bent[COMMON.index(f"{s}_ankle")] = bent[COMMON.index(f"{s}_knee")] + np.array([0, -0.3, -0.25])
    r = M.joint_limit_violations(bent[None], COMMON)
    assert r["knee_hyperextension"] == 0.0 and r["any"] == 0.0
    # knee bent the wrong way: ankle forwards (+Z) by ~40 degrees on both legs
    hyper = pose.copy()
    for s in ("left", "right"):
        hyper[COMMON.index(f"{s}_ankle")] = hyper[COMMON.index(f"{s}_knee")] + np.array([0, -0.3, 0.25])
    r = M.joint_limit_violations(hyper[None], COMMON)
    assert r["knee_hyperextension"] == 1.0 and r["any"] == 1.0
    # elbow folded beyond 160 degrees
    fold = pose.copy()
    for s in ("left", "right"):
        e = fold[COMMON.index(f"{s}_elbow")]
        fold[COMMON.index(f"{s}_wrist")] = e + np.array([0.0, 0.25, 0.03])
    assert M.joint_limit_violations(fold[None], COMMON)["elbow_overflexion"] == 1.0


def test_physical_metrics_aggregates():
    pose = standing_pose()
    motions = [np.repeat(pose[None], 20, axis=0) for _ in range(3)]
    out = M.physical_metrics(motions, COMMON, 20.0)
    assert out["jerk"] == 0.0 and out["bone_length_error"] == pytest.approx(0.0, abs=1e-12)
    assert out["foot_skating"] == 0.0 and out["limit_any"] == 0.0


def test_joint_limits_knee_overflexion_and_trunk_inversion():
    pose = standing_pose()
    # knee folded to ~170 degrees (ankle back up next to the hip)
    fold = pose.copy()
    for s in ("left", "right"):
        k = fold[COMMON.index(f"{s}_knee")]
        fold[COMMON.index(f"{s}_ankle")] = k + np.array([0.0, 0.39, -0.06])
    r = M.joint_limit_violations(fold[None], COMMON)
    assert r["knee_overflexion"] == 1.0 and r["elbow_overflexion"] == 0.0
    # upside-down trunk with the pelvis high above the floor: 2 of 4 frames violate
    inv = np.repeat(pose[None], 4, axis=0)
    neck, pelvis = COMMON.index("neck"), COMMON.index("pelvis")
    inv[:2, neck] = inv[:2, pelvis] + np.array([0.0, -0.55, 0.0])
    r = M.joint_limit_violations(inv, COMMON)
    assert r["trunk_inversion"] == 0.5 and r["any"] == 0.5
    # lying flat on the floor (pelvis low) is not an inversion
    lying = pose.copy()
    lying[:, 1] = 0.1
    lying[neck] = lying[pelvis] + np.array([0.0, -0.05, 0.55])
    assert M.joint_limit_violations(lying[None], COMMON)["trunk_inversion"] == 0.0


def test_r_precision_random_scores_match_chance():
    # random probabilities: the target's rank among `pool` candidates is uniform -> top-k = k / pool
    k_cls, n = 40, 4000
    p = rng(9).random((n, k_cls))
    t = rng(10).integers(0, k_cls, n)
    out = M.r_precision(p, t, rng(11), top_k=(1, 3), pool=8)
    assert out["top1"] == pytest.approx(1 / 8, abs=0.02)
    assert out["top3"] == pytest.approx(3 / 8, abs=0.03)


def test_precision_recall_density_shifted_gaussians_decrease():
    x = rng(12).standard_normal((300, 3))
    y0 = rng(13).standard_normal((300, 3))
    near, far = M.precision_recall(x, y0, k=3), M.precision_recall(x, y0 + 2.0, k=3)
    assert near[0] > 0.8 and near[1] > 0.8                 # same distribution: both high
    assert far[0] < near[0] - 0.3 and far[1] < near[1] - 0.3
    d0, c0 = M.density_coverage(x, y0, k=5)
    d1, c1 = M.density_coverage(x, y0 + 2.0, k=5)
    assert 0.7 < d0 < 1.3 and c0 > 0.9 and d1 < 0.3 and c1 < 0.5


def test_physical_metrics_tolerate_missing_values():
    pose = standing_pose()
    m = np.repeat(pose[None], 10, axis=0)
    m[3:5, COMMON.index("left_wrist")] = np.nan              # a few unobserved frames
    assert M.bone_length_error(m, COMMON) == pytest.approx(0.0, abs=1e-12)
    assert M.jerk(m, 20.0) == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(M.jerk(np.full((10, 15, 3), np.nan), 20.0))
    assert math.isnan(M.bone_length_error(np.full((10, 15, 3), np.nan), COMMON))
