"""DTW alignment, joints that differ most and the plain-language summary on synthetic motions of known
difference (motionviz.difference)."""

from __future__ import annotations

import numpy as np
import pytest

from _poses import UPRIGHT, pose_array

from motionviz import difference as Df
from motionviz.angles import knee_flexion
from motionviz.errors import UserError
from motionviz.motion import Motion, MotionLabels
from motionviz.skeleton import COMMON


def knee_curl(peak_deg: float, T: int = 60, warp: float = 1.0, side: str = "left", noise: float = 0.0,
              seed: int = 0) -> Motion:
    """Standing knee curl: the shank of ``side`` swings back to ``peak_deg`` and returns, following
    sin(pi * s**warp) (warp != 1 changes the timing, not the shape)."""
    base = pose_array(UPRIGHT, np.float64)
    s = np.linspace(0, 1, T) ** warp
    ang = np.radians(peak_deg) * np.sin(np.pi * s)
    j = np.repeat(base[None], T, axis=0)
    k = COMMON.index(f"{side}_knee")
    a = COMMON.index(f"{side}_ankle")
    j[:, a, 1] = j[:, k, 1] - 0.45 * np.cos(ang)
    j[:, a, 2] = -0.45 * np.sin(ang)
    j += np.random.default_rng(seed).normal(0, noise, j.shape)
    return Motion(j.astype(np.float32), COMMON, 20.0, MotionLabels(label="test:curl"))


def test_dtw_identity_and_known_warp():
    a = np.sin(np.linspace(0, 3, 40))[:, None]
    path, cost = Df.dtw(a, a)
    assert cost == pytest.approx(0.0) and (path[:, 0] == path[:, 1]).all()
    # b repeats frames 10..19 of a (a slower middle): DTW recovers the repeat with zero cost
    idx = np.r_[np.arange(10), np.repeat(np.arange(10, 20), 2), np.arange(20, 40)]
    b = a[idx]
    path, cost = Df.dtw(a, b, band=0.3)
    assert cost == pytest.approx(0.0, abs=1e-12)
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (39, len(b) - 1)
    assert (np.diff(path, axis=0) >= 0).all() and (np.diff(path, axis=0).max() <= 1)
    np.testing.assert_array_equal(a[path[:, 0]], b[path[:, 1]])
    with pytest.raises(ValueError):
        Df.dtw(np.zeros((3, 2)), np.zeros((3, 3)))


def test_dtw_band_restricts_the_path():
    a = np.r_[np.zeros(30), np.ones(10)][:, None]
    b = np.r_[np.zeros(5), np.ones(35)][:, None]
    free, c_free = Df.dtw(a, b, band=None)
    tight, c_tight = Df.dtw(a, b, band=0.05)
    assert c_free < c_tight
    assert np.abs(tight[:, 0] - tight[:, 1]).max() <= 2 + 1


def test_knee_curl_difference_found_and_summarised():
    ref = knee_curl(90.0, T=60)
    other = knee_curl(60.0, T=80, warp=1.6)              # less deep and with another timing
    np.testing.assert_allclose(np.nanmax(knee_flexion(ref.joints, "left")), 90.0, atol=0.5)
    cmp = Df.compare_executions(ref, other)
    # after alignment the left knee differs most, every other angle (nearly) not at all
    assert cmp.top_joints[0] == "left_knee"
    assert cmp.ranked_angles()[0] == "left_knee_flexion"
    assert cmp.angle_delta["left_knee_flexion"] < -5
    assert all(cmp.angle_diff[k] < 1.0 for k in cmp.angle_diff if "left_knee" not in k)
    assert cmp.joint_distance[COMMON.index("left_ankle")] > 0.05
    assert cmp.joint_distance[COMMON.index("right_ankle")] < 1e-6
    # aligned peaks: the path pairs the two peaks (both mid-movement)
    pi = int(np.argmax(cmp.ref_angles["left_knee_flexion"]))
    js = cmp.path[cmp.path[:, 0] == pi, 1]
    assert abs(int(np.argmax(cmp.other_angles["left_knee_flexion"])) - js).min() <= 3
    # without a normal range the summary compares with the reference
    assert "Left knee bends" in cmp.summary and "less than in the reference" in cmp.summary
    a, b, p = Df.warp_pair(cmp, max_frames=50)
    assert a.num_frames == b.num_frames == len(p) <= 50


def test_summary_against_normal_range_of_correct_executions():
    rng = np.random.default_rng(0)
    correct = [knee_curl(float(rng.uniform(85, 95)), T=int(rng.integers(50, 70)), noise=0.002, seed=i)
               for i in range(20)]
    nr = Df.normal_range(correct, "test:curl")
    lo, med, hi = nr.peak["left_knee_flexion"]
    assert 84 < lo < med < hi < 97
    assert nr.n == 20
    bad = knee_curl(65.0, T=70, noise=0.002, seed=99)
    cmp = Df.compare_executions(correct[0], bad, normal=nr)
    assert cmp.findings and cmp.findings[0].key == "left_knee_flexion"
    f = cmp.findings[0]
    assert f.kind == "peak" and f.delta == pytest.approx(65.0 - med, abs=1.5)
    assert f.sentence.startswith(f"Left knee bends {abs(65.0 - med):.0f}° less than in correct executions")
    assert not cmp.reference_findings                       # a correct execution is within range
    # a correct execution has no findings at all
    ok = Df.compare_executions(correct[0], knee_curl(90.0, T=66, noise=0.002, seed=7), normal=nr)
    assert not ok.findings and "within the range of correct executions" in ok.summary
    digest = Df.describe_comparison(cmp)
    assert digest["top_joints"][0] == "left_knee" and digest["findings"][0]["angle"] == "left_knee_flexion"


def test_bad_inputs():
    with pytest.raises(UserError):
        Df.summarise({"left_knee_flexion": np.zeros(3)}, None, None)
    with pytest.raises(UserError):
        Df.compare_executions(knee_curl(90.0), knee_curl(90.0).with_joints(np.zeros((700, 15, 3), np.float32)))
    with pytest.raises(UserError):
        Df.normal_range([])
