"""Hand-built poses on the common skeleton for the tests (metres, Y up, facing +Z, left = +X)."""

from __future__ import annotations

import numpy as np

from motionviz.core.skeleton import COMMON

#: standing, arms by the sides, knees a little forward (the tiny models' and synthetic motions' base pose)
STANDING = {
    "pelvis": (0.0, 0.95, 0.0), "spine": (0.0, 1.15, 0.0), "neck": (0.0, 1.45, 0.0),
    "left_shoulder": (0.18, 1.42, 0.0), "left_elbow": (0.2, 1.15, 0.0), "left_wrist": (0.2, 0.9, 0.0),
    "right_shoulder": (-0.18, 1.42, 0.0), "right_elbow": (-0.2, 1.15, 0.0), "right_wrist": (-0.2, 0.9, 0.0),
    "left_hip": (0.1, 0.92, 0.0), "left_knee": (0.1, 0.5, 0.02), "left_ankle": (0.1, 0.08, 0.0),
    "right_hip": (-0.1, 0.92, 0.0), "right_knee": (-0.1, 0.5, 0.02), "right_ankle": (-0.1, 0.08, 0.0),
}

#: standing, arms by the sides, straight legs: every clinical joint angle is zero (known-answer tests)
UPRIGHT = {
    "pelvis": (0.0, 1.0, 0.0), "spine": (0.0, 1.25, 0.0), "neck": (0.0, 1.5, 0.0),
    "left_shoulder": (0.2, 1.45, 0.0), "left_elbow": (0.2, 1.15, 0.0), "left_wrist": (0.2, 0.9, 0.0),
    "right_shoulder": (-0.2, 1.45, 0.0), "right_elbow": (-0.2, 1.15, 0.0), "right_wrist": (-0.2, 0.9, 0.0),
    "left_hip": (0.1, 1.0, 0.0), "left_knee": (0.1, 0.55, 0.0), "left_ankle": (0.1, 0.1, 0.0),
    "right_hip": (-0.1, 1.0, 0.0), "right_knee": (-0.1, 0.55, 0.0), "right_ankle": (-0.1, 0.1, 0.0),
}


def pose_array(pose: dict[str, tuple[float, float, float]], dtype=np.float32) -> np.ndarray:
    """(J, 3) array of ``pose`` (joint name -> position) in the common skeleton's joint order."""
    return np.array([pose[n] for n in COMMON.joints], dtype=dtype)


def standing_pose(dtype=np.float32) -> np.ndarray:
    """(J, 3) :data:`STANDING`, float32 unless ``dtype`` says otherwise."""
    return pose_array(STANDING, dtype)


def arms_down_pose() -> np.ndarray:
    """(J, 3) float32: standing, straight legs, the arms hanging slightly away from the body (elbow and
    wrist a little further out than the shoulder)."""
    y = {"pelvis": 0.95, "spine": 1.15, "neck": 1.45, "shoulder": 1.4, "elbow": 1.15, "wrist": 0.9, "hip": 0.9,
         "knee": 0.5, "ankle": 0.08}
    out = []
    for name in COMMON.joints:
        side = 1.0 if name.startswith("left_") else (-1.0 if name.startswith("right_") else 0.0)
        base = name.split("_", 1)[-1]
        x = {"shoulder": 0.18, "elbow": 0.22, "wrist": 0.24, "hip": 0.1, "knee": 0.1, "ankle": 0.1}.get(base, 0.0)
        out.append([side * x, y[base], 0.0])
    return np.asarray(out, np.float32)
