"""Clinical joint angles on the common skeleton, in degrees, frame by frame.

Every function takes joint positions ``(T, J, 3)`` (or one pose ``(J, 3)``) on
:data:`motionviz.core.skeleton.COMMON` (metres, Y up, the subject facing +Z, the subject's left at +X) and
returns ``(T,)`` degrees (a float for one pose).  NaN joints give NaN angles.

Body frame.  Angles of the limbs relative to the trunk use a body frame built per frame from the joints:

* ``up``: the trunk axis, pelvis -> neck;
* ``left``: right hip -> left hip (with the shoulder line as a fallback), made perpendicular to ``up``;
* ``forward`` = ``left`` x ``up`` (for an upright subject facing +Z: +Z).

Conventions (0 deg is the anatomical standing posture, arms by the sides).  The planar (signed) angles
lie in (-90, 270], so an arm raised through overhead (180) does not jump from +180 to -180:

==========================  =====================================================================================
angle                       definition
==========================  =====================================================================================
knee flexion                angle between thigh (hip -> knee) and shank (knee -> ankle): straight knee = 0
elbow flexion               angle between upper arm (shoulder -> elbow) and forearm (elbow -> wrist): straight = 0
hip flexion                 thigh in the body's sagittal plane, from "down along the trunk" towards ``forward``:
                            standing = 0, thigh horizontal in front = 90, thigh behind the body < 0 (extension)
shoulder elevation          angle between upper arm and "down along the trunk", in any direction: arm by the
                            side = 0, horizontal = 90, straight overhead = 180 (always >= 0)
shoulder flexion            upper arm in the sagittal plane: forward-horizontal = 90, behind the body < 0
                            (extension, e.g. UI-PRMD m08)
shoulder abduction          upper arm in the frontal plane, away from the body: sideways-horizontal = 90,
                            across the body < 0
(planar angles)             hip flexion, shoulder flexion and abduction are projections onto a plane: NaN while
                            the limb's projection is shorter than half its length (e.g. shoulder flexion of an
                            arm held straight sideways)
trunk forward tilt          trunk axis vs the vertical (world +Y) in the sagittal plane of the hips: leaning
                            forward > 0, backward < 0
trunk lateral tilt          trunk axis vs the vertical in the frontal plane: leaning to the subject's left > 0
trunk rotation              shoulder line vs hip line about the vertical: shoulders turned to the left > 0
==========================  =====================================================================================

:data:`ANGLES` lists every angle with its joint (for highlighting), a title and the verb used in
plain-language summaries (:mod:`motionviz.analysis.difference`); :func:`joint_angles` computes them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..core.skeleton import COMMON, Skeleton

__all__ = ["AngleSpec", "ANGLES", "joint_angles", "knee_flexion", "elbow_flexion", "hip_flexion",
           "shoulder_elevation", "shoulder_flexion", "shoulder_abduction", "trunk_forward_tilt",
           "trunk_lateral_tilt", "trunk_rotation", "segment_angle", "body_frame"]

_EPS = 1e-9
#: A planar limb angle is NaN while the limb's projection onto its plane is shorter than this fraction of
#: the limb (within 30 deg of the plane's normal the projected angle is dominated by noise).
PLANAR_MIN_FRACTION = 0.5
_SIDES = ("left", "right")


def _unit(v: np.ndarray) -> np.ndarray:
    """Normalise the last axis; zero vectors become NaN."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > _EPS, v / np.where(n > _EPS, n, 1.0), np.nan)


def _as_frames(joints: np.ndarray, skeleton: Skeleton) -> tuple[np.ndarray, bool]:
    """(T, J, 3) float64 and whether a single pose (J, 3) was given."""
    a = np.asarray(joints, dtype=np.float64)
    single = a.ndim == 2
    if single:
        a = a[None]
    if a.ndim != 3 or a.shape[-1] != 3 or a.shape[1] != len(skeleton):
        raise ValueError(f"joint angles need (T, {len(skeleton)}, 3) positions on the {skeleton.name} "
                         f"skeleton, got {np.shape(joints)}")
    return a, single


def _out(deg: np.ndarray, single: bool) -> np.ndarray | float:
    return float(deg[0]) if single else deg


def _j(a: np.ndarray, skeleton: Skeleton, name: str) -> np.ndarray:
    return a[:, skeleton.index(name)]


def segment_angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Unsigned angle (degrees) between vectors ``u`` and ``v`` (..., 3) -> (...); NaN for zero vectors."""
    uu, vv = _unit(np.asarray(u, np.float64)), _unit(np.asarray(v, np.float64))
    c = np.clip(np.sum(uu * vv, axis=-1), -1.0, 1.0)
    return np.degrees(np.arccos(c))


def body_frame(joints: np.ndarray, skeleton: Skeleton = COMMON) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame body axes ``(left, up, forward)``, each (T, 3) unit vectors (see the module docstring).
    ``joints`` (T, J, 3) or (J, 3)."""
    a, _ = _as_frames(joints, skeleton)
    up = _unit(_j(a, skeleton, "neck") - _j(a, skeleton, "pelvis"))
    lat = _j(a, skeleton, "left_hip") - _j(a, skeleton, "right_hip")
    sh = _j(a, skeleton, "left_shoulder") - _j(a, skeleton, "right_shoulder")
    lat = np.where(np.isfinite(lat).all(-1, keepdims=True), lat, sh)
    left = _unit(lat - np.sum(lat * up, -1, keepdims=True) * up)
    forward = _unit(np.cross(left, up))
    return left, up, forward


def _planar(v: np.ndarray, toward: np.ndarray, down: np.ndarray, min_fraction: float = 0.0) -> np.ndarray:
    """Signed angle (degrees) of ``v`` in the plane spanned by ``down`` (0 deg) and ``toward`` (+90 deg),
    in (-90, 270]: a limb passing overhead (180) stays continuous; the cut is at -90 (pointing straight
    away from ``toward``).  NaN when the projection is shorter than ``min_fraction`` of |v|."""
    x = np.sum(v * toward, -1)
    y = np.sum(v * down, -1)
    ang = np.degrees(np.arctan2(x, y))
    ang = np.where(ang <= -90.0, ang + 360.0, ang)
    if min_fraction > 0:
        n = np.linalg.norm(v, axis=-1)
        ang = np.where(np.hypot(x, y) >= min_fraction * n, ang, np.nan)
    return ang


def _check_side(side: str) -> str:
    if side not in _SIDES:
        raise ValueError(f"side must be 'left' or 'right', not {side!r}")
    return side


# ---- limbs ---------------------------------------------------------------------------------------
def knee_flexion(joints: np.ndarray, side: str = "left", skeleton: Skeleton = COMMON) -> np.ndarray | float:
    """Knee flexion (degrees, straight knee = 0): angle between thigh and shank.  (T, J, 3) -> (T,)."""
    a, single = _as_frames(joints, skeleton)
    s = _check_side(side)
    hip, knee, ankle = (_j(a, skeleton, f"{s}_{n}") for n in ("hip", "knee", "ankle"))
    return _out(segment_angle(knee - hip, ankle - knee), single)


def elbow_flexion(joints: np.ndarray, side: str = "left", skeleton: Skeleton = COMMON) -> np.ndarray | float:
    """Elbow flexion (degrees, straight arm = 0): angle between upper arm and forearm.  (T, J, 3) -> (T,)."""
    a, single = _as_frames(joints, skeleton)
    s = _check_side(side)
    sh, el, wr = (_j(a, skeleton, f"{s}_{n}") for n in ("shoulder", "elbow", "wrist"))
    return _out(segment_angle(el - sh, wr - el), single)


def _limb_in_plane(joints: np.ndarray, side: str, skeleton: Skeleton, proximal: str, distal: str,
                   plane: str) -> np.ndarray | float:
    """The ``side`` segment ``proximal`` -> ``distal`` as a signed angle (degrees) in the body's ``plane``:
    ``"sagittal"`` (positive forwards) or ``"frontal"`` (positive outwards, away from the body), 0 along the
    trunk axis downwards; NaN where the segment is (nearly) perpendicular to the plane."""
    a, single = _as_frames(joints, skeleton)
    s = _check_side(side)
    left, up, fwd = body_frame(a, skeleton)
    towards = fwd if plane == "sagittal" else (left if s == "left" else -left)
    seg = _j(a, skeleton, f"{s}_{distal}") - _j(a, skeleton, f"{s}_{proximal}")
    return _out(_planar(seg, towards, -up, min_fraction=PLANAR_MIN_FRACTION), single)


def hip_flexion(joints: np.ndarray, side: str = "left", skeleton: Skeleton = COMMON) -> np.ndarray | float:
    """Hip flexion (degrees): the thigh in the body's sagittal plane, 0 along the trunk axis downwards,
    +90 horizontal in front, negative behind (extension).  (T, J, 3) -> (T,)."""
    return _limb_in_plane(joints, side, skeleton, "hip", "knee", "sagittal")


def shoulder_elevation(joints: np.ndarray, side: str = "left", skeleton: Skeleton = COMMON) -> np.ndarray | float:
    """Shoulder elevation (degrees, arm vs trunk in any direction): arm by the side = 0, horizontal = 90,
    overhead = 180.  (T, J, 3) -> (T,)."""
    a, single = _as_frames(joints, skeleton)
    s = _check_side(side)
    _, up, _ = body_frame(a, skeleton)
    arm = _j(a, skeleton, f"{s}_elbow") - _j(a, skeleton, f"{s}_shoulder")
    return _out(segment_angle(arm, -up), single)


def shoulder_flexion(joints: np.ndarray, side: str = "left", skeleton: Skeleton = COMMON) -> np.ndarray | float:
    """Shoulder flexion (degrees): the upper arm in the sagittal plane, forward-horizontal = 90, behind the
    body < 0 (extension).  (T, J, 3) -> (T,)."""
    return _limb_in_plane(joints, side, skeleton, "shoulder", "elbow", "sagittal")


def shoulder_abduction(joints: np.ndarray, side: str = "left", skeleton: Skeleton = COMMON) -> np.ndarray | float:
    """Shoulder abduction (degrees): the upper arm in the frontal plane, sideways-horizontal = 90, across
    the body < 0; NaN while the arm points (nearly) straight forward or backward.  (T, J, 3) -> (T,)."""
    return _limb_in_plane(joints, side, skeleton, "shoulder", "elbow", "frontal")


# ---- trunk ---------------------------------------------------------------------------------------
def _horizontal_frame(a: np.ndarray, skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """(left, forward) horizontal unit vectors from the hip line (shoulders as a fallback)."""
    lat = _j(a, skeleton, "left_hip") - _j(a, skeleton, "right_hip")
    sh = _j(a, skeleton, "left_shoulder") - _j(a, skeleton, "right_shoulder")
    lat = np.where(np.isfinite(lat).all(-1, keepdims=True), lat, sh)
    lat = lat * np.array([1.0, 0.0, 1.0])
    left = _unit(lat)
    fwd = np.cross(left, np.array([0.0, 1.0, 0.0]))
    return left, fwd


def trunk_forward_tilt(joints: np.ndarray, skeleton: Skeleton = COMMON) -> np.ndarray | float:
    """Trunk forward tilt (degrees): pelvis -> neck vs the vertical, in the hips' sagittal plane; forward
    > 0.  (T, J, 3) -> (T,)."""
    a, single = _as_frames(joints, skeleton)
    _, fwd = _horizontal_frame(a, skeleton)
    trunk = _j(a, skeleton, "neck") - _j(a, skeleton, "pelvis")
    return _out(_planar(trunk, fwd, np.broadcast_to([0.0, 1.0, 0.0], trunk.shape)), single)


def trunk_lateral_tilt(joints: np.ndarray, skeleton: Skeleton = COMMON) -> np.ndarray | float:
    """Trunk lateral tilt (degrees): pelvis -> neck vs the vertical, in the hips' frontal plane; leaning to
    the subject's left > 0.  (T, J, 3) -> (T,)."""
    a, single = _as_frames(joints, skeleton)
    left, _ = _horizontal_frame(a, skeleton)
    trunk = _j(a, skeleton, "neck") - _j(a, skeleton, "pelvis")
    return _out(_planar(trunk, left, np.broadcast_to([0.0, 1.0, 0.0], trunk.shape)), single)


def trunk_rotation(joints: np.ndarray, skeleton: Skeleton = COMMON) -> np.ndarray | float:
    """Trunk rotation (degrees): the shoulder line vs the hip line about the vertical axis; shoulders
    turned to the subject's left (left shoulder backwards) > 0.  (T, J, 3) -> (T,)."""
    a, single = _as_frames(joints, skeleton)
    hip = _j(a, skeleton, "left_hip") - _j(a, skeleton, "right_hip")
    sh = _j(a, skeleton, "left_shoulder") - _j(a, skeleton, "right_shoulder")
    h = np.arctan2(-hip[:, 2], hip[:, 0])            # heading of the hip line in the x-z plane
    s = np.arctan2(-sh[:, 2], sh[:, 0])
    d = np.degrees((s - h + np.pi) % (2 * np.pi) - np.pi)
    return _out(d, single)


# ---- the table -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class AngleSpec:
    """One clinical angle: ``key`` (e.g. ``left_knee_flexion``), ``title`` ("left knee flexion"), the
    ``joint`` it belongs to (for highlighting), the ``phrase`` used in summaries ("the left knee bends")
    and ``fn``.  Summaries compare both the peak and the lowest value of every angle (a lower lowest knee
    flexion is a knee that straightens more), so no angle is marked signed or unsigned."""

    key: str
    title: str
    joint: str
    phrase: str
    fn: Callable[[np.ndarray], np.ndarray]


def _specs() -> tuple[AngleSpec, ...]:
    out: list[AngleSpec] = []
    for s in _SIDES:
        out += [
            AngleSpec(f"{s}_knee_flexion", f"{s} knee flexion", f"{s}_knee", f"the {s} knee bends",
                      lambda a, s=s: knee_flexion(a, s)),
            AngleSpec(f"{s}_hip_flexion", f"{s} hip flexion", f"{s}_hip", f"the {s} hip bends",
                      lambda a, s=s: hip_flexion(a, s)),
            AngleSpec(f"{s}_shoulder_elevation", f"{s} shoulder elevation", f"{s}_shoulder",
                      f"the {s} arm rises", lambda a, s=s: shoulder_elevation(a, s)),
            AngleSpec(f"{s}_shoulder_flexion", f"{s} shoulder flexion", f"{s}_shoulder",
                      f"the {s} arm rises forward", lambda a, s=s: shoulder_flexion(a, s)),
            AngleSpec(f"{s}_shoulder_abduction", f"{s} shoulder abduction", f"{s}_shoulder",
                      f"the {s} arm rises sideways", lambda a, s=s: shoulder_abduction(a, s)),
            AngleSpec(f"{s}_elbow_flexion", f"{s} elbow flexion", f"{s}_elbow", f"the {s} elbow bends",
                      lambda a, s=s: elbow_flexion(a, s)),
        ]
    out += [
        AngleSpec("trunk_forward_tilt", "trunk forward tilt", "spine", "the trunk leans forward",
                  trunk_forward_tilt),
        AngleSpec("trunk_lateral_tilt", "trunk lateral tilt (to the left)", "spine",
                  "the trunk leans to the left", trunk_lateral_tilt),
        AngleSpec("trunk_rotation", "trunk rotation (to the left)", "neck", "the trunk turns to the left",
                  trunk_rotation),
    ]
    return tuple(out)


#: Every clinical angle, in a fixed order.
ANGLES: tuple[AngleSpec, ...] = _specs()
ANGLE_BY_KEY: dict[str, AngleSpec] = {a.key: a for a in ANGLES}


def joint_angles(joints: np.ndarray, keys: tuple[str, ...] | list[str] | None = None) -> dict[str, np.ndarray]:
    """All (or the ``keys``) clinical angles of a motion: ``(T, J, 3)`` on COMMON -> ``{key: (T,) deg}``."""
    a, _ = _as_frames(joints, COMMON)
    specs = ANGLES if keys is None else tuple(ANGLE_BY_KEY[k] for k in keys)
    return {s.key: np.asarray(s.fn(a), dtype=np.float64) for s in specs}
