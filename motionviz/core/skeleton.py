"""Skeleton topologies as data.

A :class:`Skeleton` is a named tree of joints (``parents[j] == -1`` for the root) with a left/right
``mirror`` map.  Every dataset topology lives here, plus the one :data:`COMMON` skeleton that all
models work on, and the retarget maps from each source topology to it.  Model code never uses bare
joint indices: it asks a skeleton for ``index("left_ankle")`` and friends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Sequence

import numpy as np

from .errors import UserError

__all__ = [
    "Skeleton",
    "COMMON",
    "SKELETONS",
    "RETARGET",
    "get_skeleton",
]


def _mirror_from_names(joints: tuple[str, ...]) -> tuple[int, ...]:
    """Index of each joint's left/right twin, found by swapping left/right in its name."""
    idx = {n: i for i, n in enumerate(joints)}
    swaps = (
        ("left_", "right_"), ("Left", "Right"), ("_L", "_R"), ("_l", "_r"),
        ("left", "right"), ("L ", "R "), ("l", "r"),
    )
    out = []
    for i, n in enumerate(joints):
        twin = i
        for a, b in swaps:
            for x, y in ((a, b), (b, a)):
                if x in n:
                    cand = n.replace(x, y, 1)
                    if cand in idx and cand != n:
                        twin = idx[cand]
                        break
            if twin != i:
                break
        out.append(twin)
    return tuple(out)


@dataclass(frozen=True)
class Skeleton:
    """A joint tree.  ``parents[j]`` is the parent index (-1 = root), ``mirror[j]`` the left/right twin.
    ``retarget_map``: optional (common joint, source joint names averaged) pairs for a skeleton read
    from a file (:mod:`motionviz.core.retarget`); known topologies use :data:`RETARGET`."""

    name: str
    joints: tuple[str, ...]
    parents: tuple[int, ...]
    mirror: tuple[int, ...] = field(default=())
    retarget_map: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    def __post_init__(self) -> None:
        if len(self.parents) != len(self.joints):
            raise ValueError(f"{self.name}: {len(self.joints)} joints but {len(self.parents)} parents")
        if not self.mirror:
            object.__setattr__(self, "mirror", _mirror_from_names(self.joints))
        if len(self.mirror) != len(self.joints):
            raise ValueError(f"{self.name}: mirror map has the wrong length")
        for j, p in enumerate(self.parents):
            if p >= len(self.joints) or p < -1 or p == j:
                raise ValueError(f"{self.name}: joint {self.joints[j]} has invalid parent {p}")
        for j, m in enumerate(self.mirror):
            if self.mirror[m] != j:
                raise ValueError(f"{self.name}: mirror map is not an involution at {self.joints[j]}")

    # ---- derived structure -------------------------------------------------------------------
    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def __len__(self) -> int:
        return len(self.joints)

    def index(self, name: str) -> int:
        try:
            return self.joints.index(name)
        except ValueError:
            raise KeyError(f"skeleton {self.name!r} has no joint {name!r}") from None

    def indices(self, names: list[str] | tuple[str, ...]) -> list[int]:
        return [self.index(n) for n in names]

    @cached_property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """(parent, child) index pairs, one per non-root joint."""
        return tuple((p, j) for j, p in enumerate(self.parents) if p >= 0)

    @cached_property
    def children(self) -> tuple[tuple[int, ...], ...]:
        kids: list[list[int]] = [[] for _ in self.joints]
        for p, c in self.bones:
            kids[p].append(c)
        return tuple(tuple(k) for k in kids)

    @cached_property
    def root(self) -> int:
        roots = [j for j, p in enumerate(self.parents) if p < 0]
        return roots[0]

    @cached_property
    def topological_order(self) -> tuple[int, ...]:
        """Joints ordered so every parent comes before its children."""
        order: list[int] = []
        stack = [j for j, p in enumerate(self.parents) if p < 0]
        while stack:
            j = stack.pop(0)
            order.append(j)
            stack.extend(self.children[j])
        return tuple(order)

    @cached_property
    def lr_pairs(self) -> tuple[tuple[int, int], ...]:
        """(left, right) index pairs; the member whose name says 'left'/'L' comes first."""
        pairs = []
        for j, m in enumerate(self.mirror):
            if m > j:
                a, b = self.joints[j].lower(), self.joints[m].lower()
                sa, sb = side_of(self.joints[j]), side_of(self.joints[m])
                if {sa, sb} == {"left", "right"}:
                    left_first = sa == "left"
                else:
                    left_first = ("left" in a or a.endswith("_l") or a.startswith("l")) and not (
                        "left" in b or b.endswith("_l")
                    )
                pairs.append((j, m) if left_first else (m, j))
        return tuple(pairs)

    @cached_property
    def central(self) -> tuple[int, ...]:
        return tuple(j for j, m in enumerate(self.mirror) if m == j)

    def bone_lengths(self, joints: np.ndarray) -> np.ndarray:
        """joints (..., J, 3) -> bone lengths (..., B) in skeleton.bones order."""
        p = [b[0] for b in self.bones]
        c = [b[1] for b in self.bones]
        return np.linalg.norm(joints[..., c, :] - joints[..., p, :], axis=-1)

    def to_dict(self) -> dict:
        d = {"name": self.name, "joints": list(self.joints), "parents": list(self.parents),
             "mirror": list(self.mirror)}
        if self.retarget_map:
            d["retarget_map"] = {k: list(v) for k, v in self.retarget_map}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Skeleton":
        rmap = d.get("retarget_map") or {}
        return cls(d["name"], tuple(d["joints"]), tuple(int(p) for p in d["parents"]),
                   tuple(int(m) for m in d.get("mirror", ())),
                   tuple((str(k), tuple(str(n) for n in ([v] if isinstance(v, str) else v)))
                         for k, v in dict(rmap).items()))


def _sk(name: str, spec: list[tuple[str, str | None]]) -> Skeleton:
    """Build a skeleton from (joint, parent-name) pairs."""
    joints = tuple(j for j, _ in spec)
    parents = tuple(-1 if p is None else joints.index(p) for _, p in spec)
    return Skeleton(name, joints, parents)


# --------------------------------------------------------------------------------------------
# The common skeleton: named body joints present in every 3D dataset (KIMORE has no head/toes).
# --------------------------------------------------------------------------------------------
COMMON = _sk("common", [
    ("pelvis", None), ("spine", "pelvis"), ("neck", "spine"),
    ("left_shoulder", "neck"), ("left_elbow", "left_shoulder"), ("left_wrist", "left_elbow"),
    ("right_shoulder", "neck"), ("right_elbow", "right_shoulder"), ("right_wrist", "right_elbow"),
    ("left_hip", "pelvis"), ("left_knee", "left_hip"), ("left_ankle", "left_knee"),
    ("right_hip", "pelvis"), ("right_knee", "right_hip"), ("right_ankle", "right_knee"),
])

# Body parts of the common skeleton, by joint name (used for editing / "hide a limb").
BODY_PARTS: dict[str, tuple[str, ...]] = {
    "torso": ("pelvis", "spine", "neck"),
    "left_arm": ("left_shoulder", "left_elbow", "left_wrist"),
    "right_arm": ("right_shoulder", "right_elbow", "right_wrist"),
    "left_leg": ("left_hip", "left_knee", "left_ankle"),
    "right_leg": ("right_hip", "right_knee", "right_ankle"),
}
BODY_PARTS["arms"] = BODY_PARTS["left_arm"] + BODY_PARTS["right_arm"]
BODY_PARTS["legs"] = BODY_PARTS["left_leg"] + BODY_PARTS["right_leg"]
BODY_PARTS["upper_body"] = ("spine", "neck") + BODY_PARTS["arms"]
BODY_PARTS["lower_body"] = ("pelvis",) + BODY_PARTS["legs"]

# --------------------------------------------------------------------------------------------
# Dataset topologies (see ../shared/data/README.md)
# --------------------------------------------------------------------------------------------
BANDAI = _sk("bandai", [
    ("joint_Root", None), ("Hips", "joint_Root"), ("Spine", "Hips"), ("Chest", "Spine"),
    ("Neck", "Chest"), ("Head", "Neck"),
    ("Shoulder_L", "Chest"), ("UpperArm_L", "Shoulder_L"), ("LowerArm_L", "UpperArm_L"),
    ("Hand_L", "LowerArm_L"),
    ("Shoulder_R", "Chest"), ("UpperArm_R", "Shoulder_R"), ("LowerArm_R", "UpperArm_R"),
    ("Hand_R", "LowerArm_R"),
    ("UpperLeg_L", "Hips"), ("LowerLeg_L", "UpperLeg_L"), ("Foot_L", "LowerLeg_L"), ("Toes_L", "Foot_L"),
    ("UpperLeg_R", "Hips"), ("LowerLeg_R", "UpperLeg_R"), ("Foot_R", "LowerLeg_R"), ("Toes_R", "Foot_R"),
])

UIPRMD = _sk("ui-prmd", [
    ("Waist", None), ("Spine", "Waist"), ("Chest", "Spine"), ("Neck", "Chest"), ("Head", "Neck"),
    ("HeadTip", "Head"),
    ("LeftCollar", "Chest"), ("LeftUpperArm", "LeftCollar"), ("LeftForearm", "LeftUpperArm"),
    ("LeftHand", "LeftForearm"),
    ("RightCollar", "Chest"), ("RightUpperArm", "RightCollar"), ("RightForearm", "RightUpperArm"),
    ("RightHand", "RightForearm"),
    ("LeftUpperLeg", "Waist"), ("LeftLowerLeg", "LeftUpperLeg"), ("LeftFoot", "LeftLowerLeg"),
    ("LeftLegToes", "LeftFoot"),
    ("RightUpperLeg", "Waist"), ("RightLowerLeg", "RightUpperLeg"), ("RightFoot", "RightLowerLeg"),
    ("RightLegToes", "RightFoot"),
])

# Kinect v2 SDK order (a parent may be listed after its child).
KINECT = _sk("kinect-v2", [
    ("SpineBase", None), ("SpineMid", "SpineBase"), ("Neck", "SpineShoulder"), ("Head", "Neck"),
    ("ShoulderLeft", "SpineShoulder"), ("ElbowLeft", "ShoulderLeft"), ("WristLeft", "ElbowLeft"),
    ("HandLeft", "WristLeft"),
    ("ShoulderRight", "SpineShoulder"), ("ElbowRight", "ShoulderRight"), ("WristRight", "ElbowRight"),
    ("HandRight", "WristRight"),
    ("HipLeft", "SpineBase"), ("KneeLeft", "HipLeft"), ("AnkleLeft", "KneeLeft"), ("FootLeft", "AnkleLeft"),
    ("HipRight", "SpineBase"), ("KneeRight", "HipRight"), ("AnkleRight", "KneeRight"),
    ("FootRight", "AnkleRight"),
    ("SpineShoulder", "SpineMid"), ("HandTipLeft", "HandLeft"), ("ThumbLeft", "WristLeft"),
    ("HandTipRight", "HandRight"), ("ThumbRight", "WristRight"),
])

# KIMORE resampled (MSD-IRIMAS): Kinect SDK joints 0,1,2,4-14,16-18,20.
KIMORE18 = _sk("kimore-18", [
    ("SpineBase", None), ("SpineMid", "SpineBase"), ("Neck", "SpineShoulder"),
    ("ShoulderLeft", "SpineShoulder"), ("ElbowLeft", "ShoulderLeft"), ("WristLeft", "ElbowLeft"),
    ("HandLeft", "WristLeft"),
    ("ShoulderRight", "SpineShoulder"), ("ElbowRight", "ShoulderRight"), ("WristRight", "ElbowRight"),
    ("HandRight", "WristRight"),
    ("HipLeft", "SpineBase"), ("KneeLeft", "HipLeft"), ("AnkleLeft", "KneeLeft"),
    ("HipRight", "SpineBase"), ("KneeRight", "HipRight"), ("AnkleRight", "KneeRight"),
    ("SpineShoulder", "SpineMid"),
])

SMPL22 = _sk("smpl-22", [
    ("pelvis", None), ("left_hip", "pelvis"), ("right_hip", "pelvis"), ("spine1", "pelvis"),
    ("left_knee", "left_hip"), ("right_knee", "right_hip"), ("spine2", "spine1"),
    ("left_ankle", "left_knee"), ("right_ankle", "right_knee"), ("spine3", "spine2"),
    ("left_foot", "left_ankle"), ("right_foot", "right_ankle"), ("neck", "spine3"),
    ("left_collar", "spine3"), ("right_collar", "spine3"), ("head", "neck"),
    ("left_shoulder", "left_collar"), ("right_shoulder", "right_collar"),
    ("left_elbow", "left_shoulder"), ("right_elbow", "right_shoulder"),
    ("left_wrist", "left_elbow"), ("right_wrist", "right_elbow"),
])

_BP_NAMES = [
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
]
_BP_PARENT = {
    "nose": None, "left_eye_inner": "nose", "left_eye": "left_eye_inner", "left_eye_outer": "left_eye",
    "right_eye_inner": "nose", "right_eye": "right_eye_inner", "right_eye_outer": "right_eye",
    "left_ear": "left_eye_outer", "right_ear": "right_eye_outer", "mouth_left": "nose",
    "mouth_right": "nose", "left_shoulder": "nose", "right_shoulder": "nose",
    "left_elbow": "left_shoulder", "right_elbow": "right_shoulder", "left_wrist": "left_elbow",
    "right_wrist": "right_elbow", "left_pinky": "left_wrist", "right_pinky": "right_wrist",
    "left_index": "left_wrist", "right_index": "right_wrist", "left_thumb": "left_wrist",
    "right_thumb": "right_wrist", "left_hip": "left_shoulder", "right_hip": "right_shoulder",
    "left_knee": "left_hip", "right_knee": "right_hip", "left_ankle": "left_knee",
    "right_ankle": "right_knee", "left_heel": "left_ankle", "right_heel": "right_ankle",
    "left_foot_index": "left_ankle", "right_foot_index": "right_ankle",
}
BLAZEPOSE33 = _sk("blazepose-33", [(n, _BP_PARENT[n]) for n in _BP_NAMES])

COCO18 = _sk("openpose-coco18", [
    ("nose", "neck"), ("neck", None), ("right_shoulder", "neck"), ("right_elbow", "right_shoulder"),
    ("right_wrist", "right_elbow"), ("left_shoulder", "neck"), ("left_elbow", "left_shoulder"),
    ("left_wrist", "left_elbow"), ("right_hip", "neck"), ("right_knee", "right_hip"),
    ("right_ankle", "right_knee"), ("left_hip", "neck"), ("left_knee", "left_hip"),
    ("left_ankle", "left_knee"), ("right_eye", "nose"), ("left_eye", "nose"), ("right_ear", "right_eye"),
    ("left_ear", "left_eye"),
])

COCO17 = _sk("alphapose-coco17", [
    ("nose", None), ("left_eye", "nose"), ("right_eye", "nose"), ("left_ear", "left_eye"),
    ("right_ear", "right_eye"), ("left_shoulder", "nose"), ("right_shoulder", "nose"),
    ("left_elbow", "left_shoulder"), ("right_elbow", "right_shoulder"), ("left_wrist", "left_elbow"),
    ("right_wrist", "right_elbow"), ("left_hip", "left_shoulder"), ("right_hip", "right_shoulder"),
    ("left_knee", "left_hip"), ("right_knee", "right_hip"), ("left_ankle", "left_knee"),
    ("right_ankle", "right_knee"),
])

# KERAAL Vicon: 17 marker *targets* on segments (approximate joints; no elbows/knees), file order.
KERAAL_VICON = _sk("keraal-vicon", [
    ("Forearm_R", "Arm_R"), ("Forearm_L", "Arm_L"), ("Arm_R", "Shoulder_R"), ("Arm_L", "Shoulder_L"),
    ("Chest", "Hips"), ("Thigh_R", "Hips"), ("Thigh_L", "Hips"), ("Shoulder_R", "Chest"),
    ("Shoulder_L", "Chest"), ("Hand_R", "Forearm_R"), ("Hand_L", "Forearm_L"), ("Foot_R", "Tibia_R"),
    ("Foot_L", "Tibia_L"), ("Hips", None), ("Head", "Chest"), ("Tibia_R", "Thigh_R"), ("Tibia_L", "Thigh_L"),
])

SKELETONS: dict[str, Skeleton] = {
    s.name: s for s in (COMMON, BANDAI, UIPRMD, KINECT, KIMORE18, SMPL22, BLAZEPOSE33, COCO18, COCO17,
                        KERAAL_VICON)
}

# --------------------------------------------------------------------------------------------
# Retarget maps: common joint -> source joint name, or a tuple of names whose mean is taken.
# --------------------------------------------------------------------------------------------
_LIMBS = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")

RETARGET: dict[str, dict[str, str | tuple[str, ...]]] = {
    "bandai": {"pelvis": "Hips", "spine": "Spine", "neck": "Neck",
               **{f"{s}_{k}": f"{v}_{s[0].upper()}" for s in ("left", "right") for k, v in zip(
                   _LIMBS, ("UpperArm", "LowerArm", "Hand", "UpperLeg", "LowerLeg", "Foot"))}},
    "ui-prmd": {"pelvis": "Waist", "spine": "Spine", "neck": "Neck",
                **{f"{s}_{k}": f"{s.capitalize()}{v}" for s in ("left", "right") for k, v in zip(
                    _LIMBS, ("UpperArm", "Forearm", "Hand", "UpperLeg", "LowerLeg", "Foot"))}},
    "kinect-v2": {"pelvis": "SpineBase", "spine": "SpineMid", "neck": "Neck",
                  **{f"{s}_{k}": f"{k.capitalize()}{s.capitalize()}" for s in ("left", "right")
                     for k in _LIMBS}},
    "kimore-18": {"pelvis": "SpineBase", "spine": "SpineMid", "neck": "Neck",
                  **{f"{s}_{k}": f"{k.capitalize()}{s.capitalize()}" for s in ("left", "right")
                     for k in _LIMBS}},
    "smpl-22": {"pelvis": "pelvis", "spine": "spine1", "neck": "neck",
                **{f"{s}_{k}": f"{s}_{k}" for s in ("left", "right") for k in _LIMBS}},
    # 2D / estimated topologies: no spine joint; it is synthesised as a blend of pelvis and neck.
    "blazepose-33": {"pelvis": ("left_hip", "right_hip"), "neck": ("left_shoulder", "right_shoulder"),
                     "spine": ("left_hip", "right_hip", "left_hip", "right_hip", "left_shoulder",
                               "right_shoulder"),
                     **{f"{s}_{k}": f"{s}_{k}" for s in ("left", "right") for k in _LIMBS}},
    "openpose-coco18": {"pelvis": ("left_hip", "right_hip"), "neck": "neck",
                        "spine": ("left_hip", "right_hip", "left_hip", "right_hip", "neck", "neck"),
                        **{f"{s}_{k}": f"{s}_{k}" for s in ("left", "right") for k in _LIMBS}},
    "alphapose-coco17": {"pelvis": ("left_hip", "right_hip"),
                         "neck": ("left_shoulder", "right_shoulder"),
                         "spine": ("left_hip", "right_hip", "left_hip", "right_hip", "left_shoulder",
                                   "right_shoulder"),
                         **{f"{s}_{k}": f"{s}_{k}" for s in ("left", "right") for k in _LIMBS}},
}


def get_skeleton(name: str) -> Skeleton:
    try:
        return SKELETONS[name]
    except KeyError:
        raise KeyError(f"unknown skeleton {name!r}; known: {sorted(SKELETONS)}") from None


#: name -> (what it is, the common-skeleton joints observed).  Everything else is filled in.
JOINT_SETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "coco17": ("COCO-17 / BlazePose / OpenPose body keypoints: shoulders, elbows, wrists, hips, knees, ankles "
               "(no pelvis, spine or neck)",
               ("left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
                "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle")),
    "trackers": ("six body trackers: head (as the neck), waist (pelvis), hands (wrists), feet (ankles)",
                 ("neck", "pelvis", "left_wrist", "right_wrist", "left_ankle", "right_ankle")),
    "wrists-ankles-neck": ("five tracked points: wrists, ankles and the head (as the neck; the common skeleton "
                           "has no head joint)",
                           ("neck", "left_wrist", "right_wrist", "left_ankle", "right_ankle")),
}


SET_ALIASES = {"blazepose": "coco17", "blazepose33": "coco17", "openpose": "coco17", "coco": "coco17",
               "wrists-ankles-head": "wrists-ankles-neck", "six-trackers": "trackers"}


def resolve_set(name: str) -> str:
    """A joint-set name or alias -> its name in :data:`JOINT_SETS`, else a one-line :class:`UserError`."""
    key = str(name or "").strip().lower().replace("_", "-")
    key = SET_ALIASES.get(key, key)
    if key not in JOINT_SETS:
        raise UserError(f"unknown joint set {name!r}; choose from {', '.join(JOINT_SETS)} "
                        f"(aliases: {', '.join(sorted(SET_ALIASES))})")
    return key


def set_joints(name: str) -> tuple[str, ...]:
    return JOINT_SETS[resolve_set(name)][1]


def set_mask(name: str, skeleton: Skeleton = COMMON) -> np.ndarray:
    """(J,) bool: the joints of ``skeleton`` that the set observes."""
    m = np.zeros(len(skeleton), dtype=bool)
    m[skeleton.indices(list(set_joints(name)))] = True
    return m


def sparse_to_common(x: np.ndarray, name: str) -> np.ndarray:
    """(T, K, D) joints in the set's order (K = its size) -> (T, 15, D) common skeleton, NaN elsewhere."""
    joints = set_joints(name)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3 or x.shape[1] != len(joints):
        raise UserError(f"the {resolve_set(name)} set has {len(joints)} joints ({', '.join(joints)}); "
                        f"got an array of shape {tuple(x.shape)}")
    out = np.full((x.shape[0], len(COMMON), x.shape[2]), np.nan, dtype=np.float32)
    out[:, COMMON.indices(list(joints))] = x
    return out


_FILLER = {"joint", "jnt", "jt", "bone", "bn", "def", "org", "mch", "bip", "bip01", "bip001", "mixamorig",
           "j", "b", "c", "bind", "skel", "ctrl", "end", "site", "cc", "rig", "character", "char",
           "sk", "bones"}


_LEFT = {"left", "l", "lft", "lt"}


_RIGHT = {"right", "r", "rgt", "rt"}


# ranked core names (words of the name without side and filler words, joined) per common joint
_LIMB_NAMES: dict[str, tuple[str, ...]] = {
    "shoulder": ("upperarm", "uparm", "arm", "humerus", "shoulder"),
    "elbow": ("elbow", "forearm", "lowerarm", "loarm", "radius", "ulna"),
    "wrist": ("wrist", "hand"),
    "hip": ("upperleg", "upleg", "thigh", "femur", "hip"),
    "knee": ("knee", "lowerleg", "loleg", "leg", "shin", "calf", "crus", "tibia"),
    "ankle": ("ankle", "foot"),
}


_PELVIS_NAMES = ("hips", "pelvis", "hip", "hipcenter", "midhip", "spinebase", "waist", "hipsroot")


_NECK_NAMES = ("neck", "neck0", "neck1", "neck01", "shouldercenter", "spineshoulder", "neckbase",
               "upperneck", "lowerneck")


_SPINE_NAMES = ("spine", "spinemid", "spine1", "spine01", "spine0", "spine001", "spine2", "spine02",
                "lowerback", "back", "abdomen", "torso", "chest", "spine3", "spine03", "upperchest")


def _split_words(name: str) -> list[str]:
    """'mixamorig:LeftUpLeg' -> ['left', 'up', 'leg']; 'LHipJoint' -> ['l', 'hip', 'joint']."""
    name = re.split(r"[:|]", name)[-1]
    name = re.sub(r"(?i)^(bip\d+|character\d*|mixamorig\d*)(?=[\s_.\-A-Z]|$)[\s_.\-]*", "", name)
    out: list[str] = []
    for part in re.split(r"[\s_.\-]+", name):
        if not part:
            continue
        # camel case and digits: LHipJoint -> L Hip Joint, Spine1 -> Spine 1, HIPS -> HIPS
        for w in re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", part):
            out.append(w.lower())
    return out


@lru_cache(maxsize=4096)
def name_tokens(name: str) -> tuple[str, str]:
    """(side, core) of a joint name: side 'left' / 'right' / '' and the core name, e.g.
    ``'mixamorig:LeftUpLeg'`` -> ('left', 'upleg'), ``'Knee.L'`` -> ('left', 'knee'),
    ``'lknee'`` -> ('left', 'knee'), ``'Spine1'`` -> ('', 'spine1')."""
    words = [w for w in _split_words(name) if w not in _FILLER]
    side = ""
    rest: list[str] = []
    for w in words:
        if not side and w in _LEFT:
            side = "left"
        elif not side and w in _RIGHT:
            side = "right"
        else:
            rest.append(w)
    core = "".join(rest)
    if not side and len(core) > 1 and core[0] in "lr" and _known_core(core[1:]):   # 'lknee', 'rhip'
        side, core = ("left" if core[0] == "l" else "right"), core[1:]
    return side, core


def _known_core(core: str) -> bool:
    return any(core == n for names in _LIMB_NAMES.values() for n in names)


def side_of(name: str) -> str:
    """'left', 'right' or '' for a joint name."""
    return name_tokens(name)[0]


def mirror_by_names(names: Sequence[str]) -> tuple[int, ...]:
    """Index of each joint's left/right twin (same core name, other side), itself when it has none."""
    key = {name_tokens(n): i for i, n in enumerate(names)}
    out = []
    for i, n in enumerate(names):
        side, core = name_tokens(n)
        twin = key.get(({"left": "right", "right": "left"}.get(side, side), core), i) if side else i
        out.append(twin if side else i)
    # an involution is required: drop asymmetric pairs
    return tuple(m if out[m] == i else i for i, m in enumerate(out))
