"""Hand-built poses on the common skeleton for the tests (metres, Y up, facing +Z, left = +X)."""

from __future__ import annotations

import numpy as np

from motionviz.core.motion import Motion, MotionLabels
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

#: standing, pelvis at 0.9 m, wrists a little forward, ankles on the floor (recogniser, evaluation and
#: physical-plausibility tests)
RELAXED = {
    "pelvis": (0, 0.9, 0), "spine": (0, 1.15, 0), "neck": (0, 1.45, 0),
    "left_shoulder": (0.18, 1.42, 0), "left_elbow": (0.2, 1.13, 0), "left_wrist": (0.2, 0.88, 0.02),
    "right_shoulder": (-0.18, 1.42, 0), "right_elbow": (-0.2, 1.13, 0), "right_wrist": (-0.2, 0.88, 0.02),
    "left_hip": (0.1, 0.88, 0), "left_knee": (0.1, 0.48, 0.01), "left_ankle": (0.1, 0.08, 0),
    "right_hip": (-0.1, 0.88, 0), "right_knee": (-0.1, 0.48, 0.01), "right_ankle": (-0.1, 0.08, 0),
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


def exercise_joints(kind: str, T: int, rng: np.random.Generator, jitter: bool = False) -> np.ndarray:
    """(T, J, 3) float32 around :data:`RELAXED`: "arms" (both wrists rise and fall), "squat" (the upper body
    drops and rises) or "lean" (the upper body sways sideways), with a random phase and 3 mm noise;
    ``jitter``: a random amplitude (x 0.8 .. 1.2) too."""
    x = np.repeat(pose_array(RELAXED)[None], T, axis=0)
    ph = np.sin(np.linspace(0, 2 * np.pi, T) + rng.uniform(0, 0.5))
    if jitter:
        ph = ph * rng.uniform(0.8, 1.2)
    if kind == "arms":
        for s in ("left", "right"):
            x[:, COMMON.index(f"{s}_wrist"), 1] += 0.5 * ph
            x[:, COMMON.index(f"{s}_elbow"), 1] += 0.25 * ph
    elif kind == "squat":
        up = [COMMON.index(n) for n in COMMON.joints if not n.endswith(("ankle", "knee"))]
        x[:, up, 1] -= 0.3 * np.abs(ph)[:, None]
    elif kind == "lean":
        upper = [COMMON.index(n) for n in COMMON.joints if not n.endswith(("ankle", "knee", "hip", "pelvis"))]
        x[:, upper, 0] += 0.25 * ph[:, None]
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return x + rng.normal(0, 0.003, x.shape).astype(np.float32)


def exercise_motion(label: str, correct: bool | None, T: int, rng: np.random.Generator, subject: str = "") -> Motion:
    """A squat (``ui-prmd:m01``, ``kimore:ex5``: the pelvis and upper body go down) or else a left-arm
    abduction around :data:`STANDING`, with a little noise; an incorrect execution (``correct`` False) is
    60 % as deep."""
    base = standing_pose()
    phase = np.sin(np.linspace(0, np.pi, T)) * (0.6 if correct is False else 1.0)
    j = np.repeat(base[None], T, axis=0)
    if label in ("ui-prmd:m01", "kimore:ex5"):
        upper = [COMMON.index(n) for n in COMMON.joints if "knee" not in n and "ankle" not in n]
        j[:, upper, 1] -= 0.35 * phase[:, None]
    else:
        sh = COMMON.index("left_shoulder")
        for name, r in (("left_elbow", 0.28), ("left_wrist", 0.55)):
            a = phase * np.pi * 0.9
            j[:, COMMON.index(name)] = base[sh] + np.stack([r * np.sin(a), -r * np.cos(a), 0 * a], -1)
    j += rng.normal(scale=0.005, size=j.shape).astype(np.float32)
    return Motion(j, COMMON, 20.0, MotionLabels(dataset=label.split(":")[0], label=label, correct=correct,
                                                subject=subject))
