"""Known-answer tests of the clinical joint angles (motionviz.analysis.angles) on hand-built poses."""

from __future__ import annotations

import numpy as np
import pytest
from _poses import UPRIGHT, pose_array

from motionviz.analysis import angles as A
from motionviz.core.skeleton import COMMON


def pose(**moved) -> np.ndarray:
    p = dict(UPRIGHT)
    p.update(moved)
    return pose_array(p, np.float64)


def rot_y(a: np.ndarray, deg: float) -> np.ndarray:
    t = np.radians(deg)
    R = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    return a @ R.T


def test_standing_pose_is_all_zero():
    p = pose()
    for spec in A.ANGLES:
        v = spec.fn(p[None])
        assert v.shape == (1,)
        assert abs(v[0]) < 1e-6, (spec.key, v)


def test_right_angle_knee_and_elbow_are_90():
    p = pose(left_ankle=(0.1, 0.55, -0.45),                     # shank horizontal backwards
             right_wrist=(-0.2, 1.15, 0.25))                    # forearm horizontal forwards
    assert A.knee_flexion(p, "left") == pytest.approx(90.0)
    assert A.knee_flexion(p, "right") == pytest.approx(0.0, abs=1e-9)     # a straight knee is 0
    assert A.elbow_flexion(p, "right") == pytest.approx(90.0)
    assert A.elbow_flexion(p, "left") == pytest.approx(0.0, abs=1e-9)
    assert A.segment_angle(np.array([1.0, 0, 0]), np.array([0, 0, 2.0])) == pytest.approx(90.0)


def test_knee_flexion_known_angles_over_time():
    ang = np.array([0.0, 30.0, 60.0, 120.0])
    frames = []
    for a in np.radians(ang):
        frames.append(pose(left_ankle=(0.1, 0.55 - 0.45 * np.cos(a), -0.45 * np.sin(a))))
    out = A.knee_flexion(np.stack(frames), "left")
    assert out.shape == (4,)
    np.testing.assert_allclose(out, ang, atol=1e-6)


def test_shoulder_elevation_flexion_abduction():
    side = pose(left_elbow=(0.5, 1.45, 0.0), left_wrist=(0.75, 1.45, 0.0))       # left arm sideways
    front = pose(right_elbow=(-0.2, 1.45, 0.3), right_wrist=(-0.2, 1.45, 0.55))  # right arm forward
    back = pose(right_elbow=(-0.2, 1.45 - 0.3 * np.cos(np.radians(40)), -0.3 * np.sin(np.radians(40))))
    up = pose(left_elbow=(0.2, 1.75, 0.0))
    assert A.shoulder_elevation(pose(), "left") == pytest.approx(0.0, abs=1e-9)   # by the side = 0
    assert A.shoulder_elevation(side, "left") == pytest.approx(90.0)              # horizontal = 90
    assert A.shoulder_elevation(front, "right") == pytest.approx(90.0)
    assert A.shoulder_elevation(up, "left") == pytest.approx(180.0)
    assert A.shoulder_abduction(side, "left") == pytest.approx(90.0)
    assert np.isnan(A.shoulder_flexion(side, "left"))                            # arm along the lateral axis
    half = pose(left_elbow=(0.2 + 0.3 * np.sin(np.radians(50)), 1.45 - 0.3 * np.cos(np.radians(50)), 0.0))
    assert A.shoulder_flexion(half, "left") == pytest.approx(0.0, abs=1e-9)       # abducted 50: no flexion
    assert A.shoulder_flexion(front, "right") == pytest.approx(90.0)
    assert np.isnan(A.shoulder_abduction(front, "right"))                         # arm along the forward axis
    assert A.shoulder_flexion(back, "right") == pytest.approx(-40.0)              # extension is negative
    # the right arm sideways (to -X) is abduction too, not adduction
    rside = pose(right_elbow=(-0.5, 1.45, 0.0))
    assert A.shoulder_abduction(rside, "right") == pytest.approx(90.0)


def test_hip_flexion_and_trunk_tilts():
    a = np.radians(70)
    leg = pose(left_knee=(0.1, 1.0 - 0.45 * np.cos(a), 0.45 * np.sin(a)))
    assert A.hip_flexion(leg, "left") == pytest.approx(70.0)
    assert A.hip_flexion(leg, "right") == pytest.approx(0.0, abs=1e-9)
    # trunk leaning forward by 30 deg: rotate the upper body about the pelvis (about the x axis)
    t = np.radians(30)
    p = pose()
    upper = [COMMON.index(n) for n in ("spine", "neck", "left_shoulder", "left_elbow", "left_wrist",
                                       "right_shoulder", "right_elbow", "right_wrist")]
    rel = p[upper] - p[COMMON.index("pelvis")]
    R = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    p[upper] = p[COMMON.index("pelvis")] + rel @ R.T
    assert A.trunk_forward_tilt(p) == pytest.approx(30.0)
    assert A.trunk_lateral_tilt(p) == pytest.approx(0.0, abs=1e-9)
    # arms hang with the trunk: relative to the trunk they are still by the side
    assert A.shoulder_elevation(p, "left") == pytest.approx(0.0, abs=1e-6)
    # hip flexion is measured against the trunk: a 30 deg forward lean flexes both hips by 30
    assert A.hip_flexion(p, "left") == pytest.approx(30.0)
    # lateral lean to the left (towards +X) by 20 deg
    q = pose()
    t = np.radians(20)
    R = np.array([[np.cos(t), np.sin(t), 0], [-np.sin(t), np.cos(t), 0], [0, 0, 1]])
    q[upper] = q[COMMON.index("pelvis")] + (q[upper] - q[COMMON.index("pelvis")]) @ R.T
    assert A.trunk_lateral_tilt(q) == pytest.approx(20.0)
    assert A.trunk_forward_tilt(q) == pytest.approx(0.0, abs=1e-9)


def test_trunk_rotation_and_invariance_to_heading():
    p = pose()
    upper = [COMMON.index(n) for n in ("left_shoulder", "left_elbow", "left_wrist", "right_shoulder",
                                       "right_elbow", "right_wrist")]
    q = p.copy()
    q[upper] = rot_y(p[upper], 25.0)             # shoulders turned 25 deg to the left
    assert A.trunk_rotation(q) == pytest.approx(25.0)
    # the whole body turned: every angle unchanged
    p2 = pose(left_ankle=(0.1, 0.55, -0.45), right_elbow=(-0.2, 1.45, 0.3))
    base = A.joint_angles(p2[None])
    turned = A.joint_angles(rot_y(p2, 70.0)[None])
    for k in base:
        np.testing.assert_allclose(turned[k], base[k], atol=1e-6, err_msg=k)


def test_bad_input_and_nan():
    with pytest.raises(ValueError):
        A.knee_flexion(np.zeros((5, 17, 3)))
    with pytest.raises(ValueError):
        A.knee_flexion(pose(), side="middle")
    p = pose()
    p[COMMON.index("left_knee")] = np.nan
    assert np.isnan(A.knee_flexion(p, "left"))
    assert A.knee_flexion(p, "right") == pytest.approx(0.0, abs=1e-9)
    keys = [s.key for s in A.ANGLES]
    assert len(keys) == len(set(keys)) and all(s.joint in COMMON.joints for s in A.ANGLES)


def test_planar_angles_continuous_through_overhead():
    frames = []
    for deg in (150.0, 175.0, 185.0, 200.0):            # the left arm raised forward, through overhead
        t = np.radians(deg)
        frames.append(pose(left_elbow=(0.2, 1.45 - 0.3 * np.cos(t), 0.3 * np.sin(t))))
    np.testing.assert_allclose(A.shoulder_flexion(np.stack(frames), "left"), [150, 175, 185, 200], atol=1e-6)
    side = []
    for deg in (170.0, 190.0):                           # sideways through overhead
        t = np.radians(deg)
        side.append(pose(left_elbow=(0.2 + 0.3 * np.sin(t), 1.45 - 0.3 * np.cos(t), 0.0)))
    np.testing.assert_allclose(A.shoulder_abduction(np.stack(side), "left"), [170, 190], atol=1e-6)
