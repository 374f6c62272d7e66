"""Any skeleton -> the common skeleton, by joint names and hierarchy; units and up axis from the body.

Name matching (:func:`match_common`) is tolerant: a joint name is split into lower-case words
(``mixamorig:LeftUpLeg`` -> ``left up leg``, ``LHipJoint`` -> ``l hip joint``, ``Knee.L`` -> ``knee l``,
``Bip01 L Thigh`` -> ``l thigh``), namespace prefixes and filler words (``joint``, ``jnt``, ``bone``,
``def``, ``bip01`` ...) are dropped, the side word (``left``/``l``/``right``/``r``) is taken out and the
rest is compared with a ranked list of names per common joint, so one table covers Mixamo, CMU,
SMPL/AMASS/HumanML3D, Kinect v1/v2, OpenPose BODY-25 / COCO-18, COCO-17, MediaPipe/BlazePose-33,
Bandai-Namco, UI-PRMD, Unity/Unreal/Rigify/3ds Max biped names and generic ``l_knee`` / ``knee_l``.
Where two joints of one limb match (CMU ``LHipJoint`` and ``LeftUpLeg``; Mixamo ``LeftShoulder`` = the
clavicle and ``LeftArm``), the better-ranked name wins and, within a rank, the joint nearest the next
joint of the chain.

Hierarchy fallback (joints whose names say nothing, e.g. ``joint_07``): the pelvis is the first joint
where three or more chains start (two legs and the spine), the spine chain is the one holding the
most joints, the other two are legs; along each limb chain the two consecutive longest bones are
upper and lower limb (so clavicles, ``HipJoint``-style zero-length bones and toes/fingers are skipped);
arms branch where the spine chain splits again; sides come from names when they have them, else
from the rest pose (the subject's left = up x forward, forward from the feet).

A missing spine joint is the blend 2/3 pelvis + 1/3 neck, a missing neck the shoulders' midpoint and a
missing pelvis the hips' midpoint (as for the 2-D keypoint sets).  What cannot be matched is listed in
one :class:`~motionviz.core.errors.UserError` line.

Units (:func:`guess_scale`) come from the body's size: standing height estimated from the leg (thigh
+ shank = 0.49 of the height) or, without legs, from the trunk; the file unit is the usual one
(m, cm, mm, inch, foot) that gives a height in 1.2-2.1 m, else an arbitrary unit scaled to 1.70 m.
Up axis (:func:`guess_up`): the pelvis->neck direction of the rest pose (OFFSETs), else of the motion.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np

from .errors import UserError
from .skeleton import _LIMB_NAMES, _NECK_NAMES, _PELVIS_NAMES, _SPINE_NAMES, COMMON, RETARGET, Skeleton, name_tokens, side_of

__all__ = [
    "match_common",
    "common_map",
    "guess_up",
    "up_rotation",
    "estimate_height",
    "guess_scale",
    "RIG_NAMES",
    "rig_names",
    "UNITS",
]

# metres per unit of the usual file units (checked in this order of preference on ties)
UNITS: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254, "ft": 0.3048}
PLAUSIBLE_HEIGHT = (1.2, 2.1)     # metres: a unit giving a height in here is taken as the file unit
DEFAULT_HEIGHT = 1.70             # metres: an arbitrary unit is scaled to this height
LEG_FRACTION = 0.49               # (thigh + shank) / standing height (Drillis & Contini 0.245 + 0.246)
TRUNK_FRACTION = 0.30             # pelvis -> neck / standing height

# ------------------------------------------------------------------------------------------------
# matching
# ------------------------------------------------------------------------------------------------
def _depths(parents: Sequence[int]) -> list[int]:
    d = [0] * len(parents)
    for j in range(len(parents)):
        k, n = j, 0
        while parents[k] >= 0 and n <= len(parents):
            k, n = parents[k], n + 1
        d[j] = n
    return d


def _ancestors(j: int, parents: Sequence[int]) -> list[int]:
    out = []
    while parents[j] >= 0 and len(out) <= len(parents):
        j = parents[j]
        out.append(j)
    return out


def _by_name(names: Sequence[str], parents: Sequence[int]) -> dict[str, int]:
    """common joint -> source index from names alone (limbs chained: a shoulder above its elbow ...)."""
    toks = [name_tokens(n) for n in names]
    depth = _depths(parents)
    found: dict[str, int] = {}

    def best(side: str, ranked: Sequence[str], prefer_deep: bool, below: int | None = None,
             above: int | None = None) -> int | None:
        cands = []
        for i, (s, core) in enumerate(toks):
            if s != side or core not in ranked:
                continue
            if below is not None and below not in _ancestors(i, parents) and _has_tree(parents):
                continue
            if above is not None and i not in _ancestors(above, parents) and _has_tree(parents):
                continue
            cands.append((ranked.index(core), -depth[i] if prefer_deep else depth[i], i))
        return min(cands)[2] if cands else None

    for side in ("left", "right"):
        for a, b, c in (("shoulder", "elbow", "wrist"), ("hip", "knee", "ankle")):
            mid = best(side, _LIMB_NAMES[b], prefer_deep=False)
            top = best(side, _LIMB_NAMES[a], prefer_deep=True, above=mid) if mid is not None else \
                best(side, _LIMB_NAMES[a], prefer_deep=True)
            low = best(side, _LIMB_NAMES[c], prefer_deep=False, below=mid) if mid is not None else \
                best(side, _LIMB_NAMES[c], prefer_deep=False)
            for role, i in ((a, top), (b, mid), (c, low)):
                if i is not None:
                    found[f"{side}_{role}"] = i
    # the same source joint may not serve two roles of one side (e.g. 'LeftLeg' as hip and knee)
    centre = [i for i, (s, _) in enumerate(toks) if not s]
    pel = [i for i in centre if toks[i][1] in _PELVIS_NAMES]
    if pel:
        found["pelvis"] = min(pel, key=lambda i: (_PELVIS_NAMES.index(toks[i][1]), depth[i]))
    nk = [i for i in centre if toks[i][1] in _NECK_NAMES]
    if nk:
        found["neck"] = min(nk, key=lambda i: (_NECK_NAMES.index(toks[i][1]), depth[i]))
    return found


def _has_tree(parents: Sequence[int]) -> bool:
    """True when the parents describe a real hierarchy (not a flat list of keypoints)."""
    return sum(1 for p in parents if p >= 0) >= len(parents) - 1 and len(parents) > 1


def _chain(start: int, children: Sequence[Sequence[int]], size: Sequence[int]) -> list[int]:
    """start, then repeatedly the child with the largest subtree."""
    out = [start]
    while children[out[-1]]:
        out.append(max(children[out[-1]], key=lambda c: size[c]))
    return out


def _subtree_sizes(parents: Sequence[int]) -> list[int]:
    size = [1] * len(parents)
    for j in sorted(range(len(parents)), key=lambda j: -_depths(parents)[j]):
        if parents[j] >= 0:
            size[parents[j]] += size[j]
    return size


def _two_longest(chain: list[int], rest: np.ndarray | None) -> tuple[int, int, int] | None:
    """(upper, middle, lower) joints of a limb chain: the two consecutive bones with the largest summed
    length (zero-length bones skipped); without positions, the first three distinct joints."""
    if rest is not None:
        pts = [j for k, j in enumerate(chain) if k == 0 or np.linalg.norm(rest[j] - rest[chain[k - 1]]) > 1e-6]
        if len(pts) < 3:
            return None
        L = [np.linalg.norm(rest[pts[k + 1]] - rest[pts[k]]) for k in range(len(pts) - 1)]
        k = int(np.argmax([L[k] + L[k + 1] for k in range(len(L) - 1)]))
        return pts[k], pts[k + 1], pts[k + 2]
    return (chain[0], chain[1], chain[2]) if len(chain) >= 3 else None


def _by_hierarchy(names: Sequence[str], parents: Sequence[int], rest: np.ndarray | None,
                  found: dict[str, int]) -> dict[str, int]:
    """Fill the roles that names did not give from the tree's structure (module docstring)."""
    if not _has_tree(parents):
        return found
    J = len(parents)
    children: list[list[int]] = [[] for _ in range(J)]
    for j, p in enumerate(parents):
        if p >= 0:
            children[p].append(j)
    size = _subtree_sizes(parents)
    # pelvis: the named one, else the first joint (from the root) where >= 3 chains start
    pelvis = found.get("pelvis")
    if pelvis is None:
        j = next(j for j, p in enumerate(parents) if p < 0)
        while len(children[j]) == 1:
            j = children[j][0]
        if len(children[j]) < 3:
            return found
        pelvis = j
    kids = sorted(children[pelvis], key=lambda c: -size[c])
    if len(kids) < 3:
        return found
    spine_root, legs = kids[0], kids[1:3]
    # spine chain up to the joint where the arms branch off (>= 3 children or 2 big ones)
    chain = [spine_root]
    while len(children[chain[-1]]) == 1:
        chain.append(children[chain[-1]][0])
    branch = chain[-1]
    bk = sorted(children[branch], key=lambda c: -size[c])
    arms: list[int] = []
    neck = found.get("neck")
    if len(bk) >= 3:
        head = min(bk, key=lambda c: size[c]) if rest is None else \
            max(bk, key=lambda c: _up_score(rest, branch, c, pelvis))
        arms = [c for c in bk if c != head][:2]
        if neck is None:
            neck = head if rest is None or np.linalg.norm(rest[head] - rest[branch]) > 1e-6 else branch
    elif len(bk) == 2 and neck is None:
        neck = branch
    out = dict(found)
    out.setdefault("pelvis", pelvis)
    if neck is not None:
        out.setdefault("neck", neck)
    spine_path = [j for j in chain if j not in (out.get("neck"),)]
    if "spine" not in out and spine_path:
        out["spine"] = spine_path[0] if rest is None else _middle(spine_path, rest, out["pelvis"], out.get("neck"))
    # limbs: sides from names, else from the rest pose
    for group, roles in ((legs, ("hip", "knee", "ankle")), (arms, ("shoulder", "elbow", "wrist"))):
        limbs = []
        for root in group:
            tri = _two_longest(_chain(root, children, size), rest)
            if tri is not None:
                limbs.append(tri)
        if len(limbs) != 2:
            continue
        sides = [_limb_side(names, tri) for tri in limbs]
        if set(sides) != {"left", "right"}:
            sides = _sides_from_rest(rest, limbs, out) if rest is not None else None
        if sides is None:
            continue
        for side, tri in zip(sides, limbs):
            for role, j in zip(roles, tri):
                out.setdefault(f"{side}_{role}", j)
    return out


def _up_score(rest: np.ndarray, branch: int, c: int, pelvis: int) -> float:
    up = rest[branch] - rest[pelvis]
    n = np.linalg.norm(up)
    d = rest[c] - rest[branch]
    return float(d @ up / n) if n > 1e-9 else 0.0


def _middle(path: list[int], rest: np.ndarray, pelvis: int, neck: int | None) -> int:
    if neck is None:
        return path[0]
    target = 0.5 * (rest[pelvis] + rest[neck])
    return min(path, key=lambda j: np.linalg.norm(rest[j] - target))


def _limb_side(names: Sequence[str], tri: tuple[int, int, int]) -> str:
    sides = {side_of(names[j]) for j in tri} - {""}
    return sides.pop() if len(sides) == 1 else ""


def _sides_from_rest(rest: np.ndarray, limbs: list[tuple[int, int, int]], found: dict[str, int]
                     ) -> list[str] | None:
    """Left = up x forward.  Up: pelvis -> neck; forward: +Z for a Y-up rest pose, -Y for Z-up (the
    BVH / Blender conventions) unless feet say otherwise."""
    if "pelvis" not in found or "neck" not in found:
        return None
    up = rest[found["neck"]] - rest[found["pelvis"]]
    if np.linalg.norm(up) < 1e-9:
        return None
    axis = int(np.argmax(np.abs(up)))
    forward = np.zeros(3)
    if axis == 1:
        forward[2] = 1.0
    elif axis == 2:
        forward[1] = -1.0
    else:
        forward[2] = 1.0
    left = np.cross(up, forward)
    a, b = (rest[tri[0]] @ left for tri in limbs)
    if abs(a - b) < 1e-9:
        return None
    return ["left", "right"] if a > b else ["right", "left"]


def _complete(found: dict[str, int], names: Sequence[str]) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """Source names per common joint (blends for a missing pelvis / neck / spine) and the unmatched."""
    out: dict[str, tuple[str, ...]] = {}
    for role, i in found.items():
        out[role] = (names[i],)
    if "pelvis" not in out and "left_hip" in out and "right_hip" in out:
        out["pelvis"] = out["left_hip"] + out["right_hip"]
    if "neck" not in out and "left_shoulder" in out and "right_shoulder" in out:
        out["neck"] = out["left_shoulder"] + out["right_shoulder"]
    if "spine" not in out and "pelvis" in out and "neck" in out:
        # 2/3 pelvis + 1/3 neck, as for the keypoint skeletons
        p, n = out["pelvis"], out["neck"]
        out["spine"] = p * (4 // len(p)) + n * (2 // len(n))
    missing = [j for j in COMMON.joints if j not in out]
    used: dict[str, str] = {}
    for role in COMMON.joints:
        src = out.get(role)
        if src is not None and len(src) == 1:
            if src[0] in used and role != "spine":
                missing.append(f"{role} (same joint as {used[src[0]]})")
            used.setdefault(src[0], role)
    return out, missing


def match_common(names: Sequence[str], parents: Sequence[int], rest: np.ndarray | None = None,
                 what: str = "the skeleton") -> dict[str, tuple[str, ...]]:
    """common joint -> tuple of source joint names (averaged) for a skeleton given by names and parents
    (``rest``: optional (J, 3) rest positions, used by the hierarchy fallback).  Raises a one-line
    :class:`UserError` listing the common joints that could not be matched."""
    names = list(names)
    J = len(names)
    if J < 2:
        raise UserError(f"{what} has {J} joint{'s' if J != 1 else ''}; a body needs at least hips, knees, "
                        f"ankles, shoulders, elbows and wrists")
    found = _by_name(names, parents)
    if "spine" not in found:
        sp = _spine_from_names(names, parents, found)
        if sp is not None:
            found["spine"] = sp
    limbs = [j for j in COMMON.joints if j.startswith(("left_", "right_"))]
    if any(j not in found for j in limbs):
        # names did not give every limb joint: the hierarchy does (a missing pelvis / neck / spine
        # with all limbs named is blended from the hips / shoulders instead, as for keypoint sets)
        found = _by_hierarchy(names, parents, rest, found)
    out, missing = _complete(found, names)
    if missing:
        raise UserError(f"cannot map {what} ({J} joints) onto the common skeleton: no joint found for "
                        f"{', '.join(missing)}")
    return {j: out[j] for j in COMMON.joints}


def _spine_from_names(names: Sequence[str], parents: Sequence[int], found: Mapping[str, int]) -> int | None:
    """The spine joint on the path pelvis -> neck whose name is best ranked (else the path's middle)."""
    if "pelvis" not in found or "neck" not in found:
        return None
    pelvis, neck = found["pelvis"], found["neck"]
    anc = _ancestors(neck, parents)
    if pelvis not in anc:
        return None
    path = anc[:anc.index(pelvis)]                        # neck's ancestors strictly above the pelvis
    cands = [(_SPINE_NAMES.index(name_tokens(names[j])[1]), -len(_ancestors(j, parents)), j) for j in path
             if name_tokens(names[j])[1] in _SPINE_NAMES and not name_tokens(names[j])[0]]
    if cands:
        # lowest-ranked name, and among equals the one nearest the pelvis
        r = min(c[0] for c in cands)
        return max((c for c in cands if c[0] == r), key=lambda c: c[1])[2]
    return path[len(path) // 2] if path else None


@lru_cache(maxsize=256)
def _common_map_cached(names: tuple[str, ...], parents: tuple[int, ...], what: str
                       ) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(match_common(names, parents, None, what).items())


def common_map(skeleton: Skeleton, rest: np.ndarray | None = None) -> dict[str, tuple[str, ...]]:
    """common joint -> source joint names for ``skeleton`` (its own ``retarget_map`` when it has one,
    else :func:`match_common`)."""
    if skeleton.retarget_map:
        return {k: tuple(v) for k, v in skeleton.retarget_map}
    what = f"skeleton {skeleton.name!r}"
    if rest is None:
        return dict(_common_map_cached(tuple(skeleton.joints), tuple(skeleton.parents), what))
    return match_common(skeleton.joints, skeleton.parents, rest, what)


# ------------------------------------------------------------------------------------------------
# up axis and units
# ------------------------------------------------------------------------------------------------
def guess_up(rest: np.ndarray | None, joints: np.ndarray | None, mapping: Mapping[str, Sequence[str]],
             names: Sequence[str]) -> np.ndarray:
    """Unit axis vector (3,) of the file's up direction (+Y, +Z, -Y ...): the median over the frames of
    ``joints`` (T, J, 3) of the pelvis -> neck direction when it is clearly along one axis (a person
    mostly upright), else that of the rest pose ``rest`` (J, 3) (lying motions), else +Y."""
    idx = {n: i for i, n in enumerate(names)}

    def centre(x: np.ndarray, role: str) -> np.ndarray:
        return np.mean([x[..., idx[n], :] for n in mapping[role]], axis=0)

    for x in (joints, rest):
        if x is None:
            continue
        d = centre(x, "neck") - centre(x, "pelvis")
        if d.ndim == 2:
            d = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-12)
            d = np.nanmedian(d, axis=0)
        n = float(np.linalg.norm(d))
        if not np.isfinite(n) or n < 1e-9:
            continue
        d = d / n
        k = int(np.argmax(np.abs(d)))
        if abs(d[k]) > 0.7:
            out = np.zeros(3)
            out[k] = np.sign(d[k])
            return out
    return np.array([0.0, 1.0, 0.0])


def up_rotation(up: np.ndarray) -> np.ndarray:
    """(3, 3) proper rotation (an axis permutation with signs) taking the axis ``up`` to +Y:
    +Z-up files (Blender, facing -Y) -> (x, z, -y), so they face +Z with the left at +X."""
    up = np.asarray(up, dtype=np.float64)
    k = int(np.argmax(np.abs(up)))
    s = float(np.sign(up[k]))
    if k == 1:
        return np.diag([1.0, s, s])
    if k == 2:            # (x, y, z) -> (x, s z, -s y)
        return np.array([[1.0, 0, 0], [0, 0, s], [0, -s, 0]])
    return np.array([[0, s, 0], [-s, 0, 0], [0, 0, 1.0]])        # x-up: (x, y, z) -> (s y, ... )


def estimate_height(joints: np.ndarray, names: Sequence[str], mapping: Mapping[str, Sequence[str]]) -> float:
    """Standing height (in the units of ``joints`` (T, J, 3) or (J, 3)) from the median leg length
    (thigh + shank = 0.49 of the height), or the trunk (pelvis -> neck = 0.30) without legs."""
    x = joints[None] if joints.ndim == 2 else joints
    idx = {n: i for i, n in enumerate(names)}

    def pt(role: str) -> np.ndarray:
        return np.mean([x[:, idx[n]] for n in mapping[role]], axis=0)

    def length(a: str, b: str) -> float:
        v = np.linalg.norm(pt(a) - pt(b), axis=-1)
        v = v[np.isfinite(v)]
        return float(np.median(v)) if v.size else float("nan")

    legs = [length(f"{s}_hip", f"{s}_knee") + length(f"{s}_knee", f"{s}_ankle") for s in ("left", "right")]
    legs = [v for v in legs if np.isfinite(v) and v > 0]
    if legs:
        return float(np.mean(legs)) / LEG_FRACTION
    trunk = length("pelvis", "neck")
    return trunk / TRUNK_FRACTION if np.isfinite(trunk) else float("nan")


def guess_scale(height_in_file_units: float) -> tuple[float, str]:
    """(metres per file unit, unit name) for a body of the given height in file units: the usual unit
    giving a plausible adult height (1.2-2.1 m, the one nearest 1.70 m on a log scale), else an
    arbitrary unit scaled so the body is 1.70 m tall."""
    h = float(height_in_file_units)
    if not (np.isfinite(h) and h > 0):
        raise UserError("cannot tell the file's units: the body has no size (all joints at one point)")
    lo, hi = PLAUSIBLE_HEIGHT
    ok = [(abs(np.log(h * s / DEFAULT_HEIGHT)), u, s) for u, s in UNITS.items() if lo <= h * s <= hi]
    if ok:
        _, u, s = min(ok)
        return s, u
    return DEFAULT_HEIGHT / h, f"unknown (scaled to {DEFAULT_HEIGHT:.2f} m tall)"


# ------------------------------------------------------------------------------------------------
# target rig names for export
# ------------------------------------------------------------------------------------------------
_MIXAMO = {"pelvis": "Hips", "spine": "Spine", "neck": "Neck",
           **{f"{s}_{k}": f"{s.capitalize()}{v}" for s in ("left", "right") for k, v in (
               ("shoulder", "Arm"), ("elbow", "ForeArm"), ("wrist", "Hand"),
               ("hip", "UpLeg"), ("knee", "Leg"), ("ankle", "Foot"))}}

#: rig -> common joint -> exported joint name
RIG_NAMES: dict[str, dict[str, str]] = {
    "motionviz": {j: j for j in COMMON.joints},
    # Mixamo / Blender "mixamorig:" names: Blender's Mixamo tools, Unity Humanoid and Unreal IK
    # retargeters recognise them (the shoulder joint is Mixamo's "Arm", the ankle its "Foot")
    "mixamo": {j: f"mixamorig:{n}" for j, n in _MIXAMO.items()},
    "mixamo-plain": dict(_MIXAMO),
    # SMPL / HumanML3D names (the common spine is SMPL's spine1)
    "smpl": {**{j: j for j in COMMON.joints}, "spine": "spine1"},
}


def rig_names(rig: str) -> dict[str, str]:
    """common joint -> exported name for a target rig (``motionviz``, ``mixamo``, ``mixamo-plain``, ``smpl``)."""
    key = str(rig).strip().lower()
    if key not in RIG_NAMES:
        raise UserError(f"unknown rig {rig!r}; choose from {', '.join(RIG_NAMES)}")
    return RIG_NAMES[key]


def _retarget_matrix(source: Skeleton, target: Skeleton = COMMON) -> np.ndarray:
    """(J_target, J_source) averaging matrix implementing RETARGET[source.name]."""
    if source.name == target.name:
        return np.eye(len(source), dtype=np.float32)
    if target is not COMMON:
        raise ValueError("retargeting is defined towards the common skeleton only")
    mapping = dict(source.retarget_map) or RETARGET.get(source.name)
    if mapping is None:
        from .retarget import common_map  # by names and hierarchy; one-line UserError when it fails

        mapping = common_map(source)
    W = np.zeros((len(target), len(source)), dtype=np.float32)
    for ti, tname in enumerate(target.joints):
        src = mapping[tname]
        names = (src,) if isinstance(src, str) else src
        for n in names:
            W[ti, source.index(n)] += 1.0 / len(names)
    return W


def retarget(joints: np.ndarray, source: Skeleton, target: Skeleton = COMMON) -> np.ndarray:
    """joints (..., J_source, C) -> (..., J_target, C) by the named retarget map."""
    W = _retarget_matrix(source, target)
    joints = np.asarray(joints, dtype=np.float32)
    missing = np.isnan(joints).any(axis=-1)                      # (..., Js)
    if not missing.any():
        return np.einsum("ts,...sc->...tc", W, joints).astype(np.float32)
    # a missing (NaN) source joint makes only the target joints built from it missing
    out = np.einsum("ts,...sc->...tc", W, np.nan_to_num(joints, nan=0.0)).astype(np.float32)
    observed = retarget_mask(~missing, source, target)          # (..., Jt)
    out[~observed] = np.nan
    return out


def retarget_mask(mask: np.ndarray, source: Skeleton, target: Skeleton = COMMON) -> np.ndarray:
    """Observed-mask (..., J_source) -> (..., J_target): a target joint is observed when all its
    source joints are."""
    W = _retarget_matrix(source, target)
    need = W > 0  # (Jt, Js)
    m = mask[..., None, :] | ~need  # (..., Jt, Js)
    return m.all(axis=-1)
