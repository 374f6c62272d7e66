"""A rigged, animated body: the Anny mesh skinned to a joint hierarchy, written as a glTF 2.0 GLB.

:func:`motionviz.mesh.export.export_sequence` writes the body as *vertex* animation (one morph target per
frame); this module writes what Blender, Unity, Unreal and three.js treat as a character: a skeleton
of joint nodes, a skin (``joints`` + ``inverseBindMatrices``), a mesh with ``JOINTS_0``/``WEIGHTS_0``
and an animation of the joints (a rotation per joint and the root's translation, one key per frame at
the motion's frame rate).  The file is small (about 1 MB for the body plus 0.3 KB per frame), so every
frame is kept.

The rig (17 joints)
-------------------
The body is posed by 18 segment maps ``A(v) = a' + G K (v - a)`` (:func:`motionviz.mesh.pose.solve_anny`):
``G`` a rotation per frame, ``K`` a per-motion *shape* matrix that stretches the segment to the
motion's bone lengths (a non-uniform scale, which a joint hierarchy of rigid transforms cannot carry).
Because ``K`` is constant over the motion it is baked into the exported rest mesh instead:

* rest (bind) pose = the body's rest pose with the motion's proportions: anchors
  ``a*_s = a*_p + K_p (a_s - a_p)`` down the segment tree (``p`` the segment whose map carries ``s``'s
  anchor) and vertices ``v* = sum_s w_s (a*_s + K_s (v - a_s))``, moved so that the pelvis is where
  the motion's pelvis starts; every joint's bind orientation is the identity, so an inverse bind
  matrix is a translation by ``-a*`` and the nodes' own transforms are the bind pose;
* joints: one per common-skeleton joint (pelvis root, spine, neck, shoulders, elbows, wrists, hips,
  knees, ankles) plus the two clavicles, which the body rotates on their own (shrugs); the pelvis
  joint carries the pelvis and lumbar segments (same rotation), the neck the head, the wrist the hand,
  the ankle the foot; local translations are the constant rest offsets ``a*_j - a*_parent``;
* animation: local rotation ``G_parent^T G_j`` per joint (the segment rotations of the pose solve:
  bone-direction swings with the twist of the hip line, the shoulder line and the parent limb), the
  root's translation the motion's pelvis;
* skin: the segment weights of the Anny asset (Anny's own linear-blend weights summed per segment),
  pelvis + lumbar merged, the 4 largest per vertex renormalised (at most 0.4 % of a vertex's weight is
  dropped, on 6 of 13,718 vertices).

A vertex carried by one segment lands exactly where the app's body puts it; in blend zones the two
differ by the product of the segments' relative rotation and their shape difference (a few mm).  The
joints land exactly on the app's posed joints, i.e. on the motion's joints up to its bone-length noise.

Coordinates: metres, Y-up, facing +Z, which is glTF's own frame.  Only the Anny body is rigged here
(the optional SMPL path of the app fits its own model and is not exported this way).
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from ..core.errors import UserError
from . import SEGMENTS, Body
from .animation import MeshAnimation
from .pose import solve_anny

__all__ = ["RIG_JOINTS", "RIG_PARENTS", "Rig", "build_rig", "export_rigged", "write_glb"]

Progress = Callable[[float, str], None]

_SIDES = ("left", "right")
# joint -> (segments it carries, parent joint); parents come first
_RIG: tuple[tuple[str, tuple[str, ...], str | None], ...] = (
    ("pelvis", ("pelvis", "lumbar"), None),
    ("spine", ("thorax",), "pelvis"),
    ("neck", ("head",), "spine"),
    *((f"{s}_{j}", (f"{s}_{seg}",), par) for s in _SIDES for j, seg, par in (
        ("clavicle", "clavicle", "spine"), ("shoulder", "upper_arm", f"{s}_clavicle"),
        ("elbow", "forearm", f"{s}_shoulder"), ("wrist", "hand", f"{s}_elbow"))),
    *((f"{s}_{j}", (f"{s}_{seg}",), par) for s in _SIDES for j, seg, par in (
        ("hip", "thigh", "pelvis"), ("knee", "shank", f"{s}_hip"), ("ankle", "foot", f"{s}_knee"))),
)
RIG_JOINTS: tuple[str, ...] = tuple(j for j, _, _ in _RIG)
RIG_PARENTS: tuple[int, ...] = tuple(-1 if p is None else RIG_JOINTS.index(p) for _, _, p in _RIG)
_JOINT_OF_SEGMENT = {seg: k for k, (_, segs, _) in enumerate(_RIG) for seg in segs}

# segment -> the segment whose map carries its anchor in the pose solve (None: anchored at the pelvis)
_SEG_PARENT: dict[str, str | None] = {
    "pelvis": None, "lumbar": None, "thorax": "lumbar", "head": "thorax",
    **{f"{s}_{seg}": (f"{s}_{par}" if par not in ("thorax", "pelvis") else par) for s in _SIDES for seg, par in (
        ("clavicle", "thorax"), ("upper_arm", "clavicle"), ("forearm", "upper_arm"), ("hand", "forearm"),
        ("thigh", "pelvis"), ("shank", "thigh"), ("foot", "shank"))},
}
MAX_INFLUENCES = 4


@dataclass(frozen=True, eq=False)
class Rig:
    """A skinned body and its joint animation (motionviz frame = glTF frame, metres)."""

    names: tuple[str, ...]        # (J,) joint names (RIG_JOINTS)
    parents: tuple[int, ...]      # (J,) parent index, -1 for the root
    rest: np.ndarray              # (J, 3) float64 bind-pose joint positions (orientation: identity)
    rotations: np.ndarray         # (T, J, 4) float32 local rotations as unit quaternions (x, y, z, w)
    root_translation: np.ndarray  # (T, 3) float32 the root joint's translation (its parent is the scene)
    vertices: np.ndarray          # (V, 3) float32 rest mesh with the motion's proportions
    normals: np.ndarray           # (V, 3) float32 unit vertex normals of the rest mesh
    faces: np.ndarray             # (F, 3) int64
    joint_index: np.ndarray       # (V, 4) uint8 influencing joints
    joint_weight: np.ndarray      # (V, 4) float32 their weights, rows sum to 1
    fps: float
    name: str = "motion"

    @property
    def num_frames(self) -> int:
        return int(self.rotations.shape[0])

    def local_translations(self) -> np.ndarray:
        """(T, J, 3) local joint translations (constant rest offsets; the root's is animated)."""
        off = self.rest - np.where(np.array(self.parents)[:, None] >= 0, self.rest[list(self.parents)], 0.0)
        out = np.broadcast_to(off, (self.num_frames,) + off.shape).copy()
        out[:, 0] = self.root_translation
        return out

    def world(self, frames: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """(T', J, 4, 4) joint world matrices of ``frames`` (default all) by forward kinematics."""
        fr = np.arange(self.num_frames) if frames is None else np.asarray(frames, dtype=int)
        return forward_kinematics(self.rotations[fr], self.local_translations()[fr], self.parents)

    def skin(self, frames: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """(T', V, 3) float32 vertices by linear-blend skinning with the rig's weights."""
        W = self.world(frames)                                                     # (T', J, 4, 4)
        S = W.copy()
        S[..., :3, 3] -= np.einsum("tjab,jb->tja", W[..., :3, :3], self.rest)      # W @ IBM
        return lbs(self.vertices, self.joint_index, self.joint_weight, S)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions (x, y, z, w), normalised here -> (..., 3, 3) rotation matrices."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1)], -2)


def forward_kinematics(rotations: np.ndarray, translations: np.ndarray, parents: Sequence[int]) -> np.ndarray:
    """Local quaternions (T, J, 4) (x, y, z, w) and translations (T, J, 3), parents before children
    -> (T, J, 4, 4) world matrices."""
    T, J = rotations.shape[:2]
    L = np.zeros((T, J, 4, 4))
    L[..., :3, :3] = quat_to_matrix(rotations)
    L[..., :3, 3] = translations
    L[..., 3, 3] = 1.0
    Wd = np.empty_like(L)
    for j, p in enumerate(parents):
        Wd[:, j] = L[:, j] if p < 0 else Wd[:, p] @ L[:, j]
    return Wd


def lbs(vertices: np.ndarray, joint_index: np.ndarray, joint_weight: np.ndarray, skin: np.ndarray,
        chunk: int = 16) -> np.ndarray:
    """Linear-blend skinning: rest vertices (V, 3), joints (V, K), weights (V, K), skinning matrices
    (T, J, 4, 4) (joint world @ inverse bind) -> (T, V, 3) float32."""
    T = skin.shape[0]
    v = np.asarray(vertices, dtype=np.float64)
    out = np.empty((T, len(v), 3), dtype=np.float32)
    for s in range(0, T, chunk):
        M = np.einsum("vk,tvkab->tvab", joint_weight, skin[s:s + chunk][:, joint_index])   # (t, V, 4, 4)
        out[s:s + chunk] = np.einsum("tvab,vb->tva", M[..., :3, :3], v) + M[..., :3, 3]
    return out


def _matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 4) unit quaternions (x, y, z, w), continuous in sign along axis 0."""
    shape = R.shape[:-2]
    q = Rotation.from_matrix(R.reshape(-1, 3, 3)).as_quat().reshape(shape + (4,))
    if q.ndim >= 2 and len(q) > 1:                     # flip q -> -q where it would jump (slerp takes the short way)
        flip = np.sum(q[1:] * q[:-1], axis=-1) < 0
        sign = np.cumprod(np.where(flip, -1.0, 1.0), axis=0)
        q[1:] *= sign[..., None]
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def _vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(V, 3) area-weighted unit vertex normals (+Y where a vertex has no face)."""
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return np.where(norm > 1e-12, n / np.maximum(norm, 1e-12), np.array([0.0, 1.0, 0.0]))


def build_rig(anim: MeshAnimation) -> Rig:
    """The rig of an Anny mesh animation (see the module docstring)."""
    body = anim.body
    if not isinstance(body, Body):
        raise UserError("the rigged .glb is made with the Anny body; choose the anny body")
    seg, posed = solve_anny(body, anim.motion.joints)
    # rest anchors with the motion's proportions, down the segment tree
    star: dict[str, np.ndarray] = {}
    for name in SEGMENTS:                                       # parents are listed before their children
        p = _SEG_PARENT[name]
        a = seg[name][0]
        star[name] = a.copy() if p is None else star[p] + seg[p][3] @ (a - seg[p][0])
    # weights per joint, 4 largest
    S = len(SEGMENTS)
    to_joint = np.array([_JOINT_OF_SEGMENT[s] for s in SEGMENTS])
    Wj = np.zeros((body.num_vertices, len(RIG_JOINTS)))
    for s in range(S):
        Wj[:, to_joint[s]] += body.weights[:, s]
    idx = np.argsort(-Wj, axis=1, kind="stable")[:, :MAX_INFLUENCES]
    w = np.take_along_axis(Wj, idx, axis=1)
    w /= np.maximum(w.sum(1, keepdims=True), 1e-12)
    idx = np.where(w > 0, idx, 0)
    # the same 4 weights spread back over segments give the shaped rest mesh
    v = body.vertices.astype(np.float64)
    vs = np.zeros_like(v)
    for s, name in enumerate(SEGMENTS):
        ws = np.sum(np.where(idx == to_joint[s], w, 0.0), axis=1)                 # joint weight ...
        ws = ws * body.weights[:, s] / np.maximum(Wj[:, to_joint[s]], 1e-12)     # ... split over its segments
        a, _, _, K = seg[name]
        vs += ws[:, None] * (star[name] + (v - a) @ K.T)
    # joints: bind positions and per-frame rotations
    # the bind pose stands where the motion starts (pelvis at its frame-0 position)
    shift = seg["pelvis"][1][0] - star["pelvis"]
    vs += shift
    rest = np.stack([star[segs[0]] for _, segs, _ in _RIG]) + shift              # (J, 3)
    G = np.stack([seg[segs[0]][2] for _, segs, _ in _RIG], axis=1)                # (T, J, 3, 3) world
    local = G.copy()
    for j, p in enumerate(RIG_PARENTS):
        if p >= 0:
            local[:, j] = np.swapaxes(G[:, p], -1, -2) @ G[:, j]
    return Rig(names=RIG_JOINTS, parents=RIG_PARENTS, rest=rest,
               rotations=_matrix_to_quat(local).astype(np.float32),
               root_translation=seg["pelvis"][1].astype(np.float32), vertices=vs.astype(np.float32),
               normals=_vertex_normals(vs, body.faces.astype(np.int64)).astype(np.float32),
               faces=body.faces.astype(np.int64), joint_index=idx.astype(np.uint8),
               joint_weight=w.astype(np.float32), fps=float(anim.fps),
               name=anim.motion.labels.label or "motion")


# ------------------------------------------------------------------------------------------------
# glTF 2.0 binary (GLB)
# ------------------------------------------------------------------------------------------------
FLOAT, UNSIGNED_BYTE, UNSIGNED_SHORT, UNSIGNED_INT = 5126, 5121, 5123, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
_TYPES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
_DTYPES = {FLOAT: np.float32, UNSIGNED_BYTE: np.uint8, UNSIGNED_SHORT: np.uint16, UNSIGNED_INT: np.uint32}


class _Buffer:
    """One binary buffer of tightly packed, 4-byte aligned buffer views, one accessor each."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.views: list[dict[str, Any]] = []
        self.accessors: list[dict[str, Any]] = []
        self.length = 0

    def add(self, arr: np.ndarray, comp: int, typ: str, target: int | None = None, minmax: bool = False) -> int:
        """Append ``arr`` ((count, n) or (count,) with n the components of ``typ``; MAT4 as (count, 16)
        column-major) as ``comp``; returns the accessor index."""
        a = np.ascontiguousarray(arr, dtype=_DTYPES[comp]).reshape(-1, _TYPES[typ])
        data = a.tobytes()
        view: dict[str, Any] = {"buffer": 0, "byteOffset": self.length, "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        self.views.append(view)
        self.chunks.append(data + b"\x00" * ((4 - len(data) % 4) % 4))
        self.length += len(self.chunks[-1])
        acc: dict[str, Any] = {"bufferView": len(self.views) - 1, "componentType": comp, "count": int(len(a)),
                               "type": typ}
        if minmax:
            cast = float if comp == FLOAT else int
            acc["min"] = [cast(x) for x in a.min(0)]
            acc["max"] = [cast(x) for x in a.max(0)]
        self.accessors.append(acc)
        return len(self.accessors) - 1

    def blob(self) -> bytes:
        return b"".join(self.chunks)


def write_glb(gltf: dict[str, Any], blob: bytes, path: str | os.PathLike) -> Path:
    """A GLB file: 12-byte header, JSON chunk (space-padded to 4 bytes), BIN chunk (zero-padded);
    written to a temporary name and renamed."""
    path = Path(path)
    blob = blob + b"\x00" * ((4 - len(blob) % 4) % 4)
    gltf = {**gltf, "buffers": [{"byteLength": len(blob)}]}
    js = json.dumps(gltf, separators=(",", ":")).encode()
    js += b" " * ((4 - len(js) % 4) % 4)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<4sII", b"glTF", 2, 12 + 8 + len(js) + 8 + len(blob)))
        fh.write(struct.pack("<I4s", len(js), b"JSON") + js)
        fh.write(struct.pack("<I4s", len(blob), b"BIN\x00") + blob)
    os.replace(tmp, path)
    return path


def rig_gltf(rig: Rig) -> tuple[dict[str, Any], bytes]:
    """(glTF JSON, binary buffer) of a rig: node 0 the skinned mesh, nodes 1..J the joints (node 1 the
    root), one skin, one animation (LINEAR; rotation of every joint, translation of the root; key k at
    k / fps seconds)."""
    buf = _Buffer()
    V = len(rig.vertices)
    pos = buf.add(rig.vertices, FLOAT, "VEC3", ARRAY_BUFFER, minmax=True)
    nrm = buf.add(rig.normals, FLOAT, "VEC3", ARRAY_BUFFER)
    jnt = buf.add(rig.joint_index, UNSIGNED_BYTE, "VEC4", ARRAY_BUFFER)
    wgt = buf.add(rig.joint_weight, FLOAT, "VEC4", ARRAY_BUFFER)
    ind = buf.add(rig.faces.reshape(-1), UNSIGNED_SHORT if V < 65535 else UNSIGNED_INT, "SCALAR",
                  ELEMENT_ARRAY_BUFFER)
    J = len(rig.names)
    ibm = np.broadcast_to(np.eye(4), (J, 4, 4)).copy()
    ibm[:, :3, 3] = -rig.rest
    ibm_acc = buf.add(np.swapaxes(ibm, 1, 2).reshape(J, 16), FLOAT, "MAT4")       # column-major
    T = rig.num_frames
    times = buf.add(np.arange(T, dtype=np.float64) / rig.fps, FLOAT, "SCALAR", minmax=True)
    samplers, channels = [], []
    for j in range(J):
        samplers.append({"input": times, "output": buf.add(rig.rotations[:, j], FLOAT, "VEC4"),
                         "interpolation": "LINEAR"})
        channels.append({"sampler": j, "target": {"node": 1 + j, "path": "rotation"}})
    samplers.append({"input": times, "output": buf.add(rig.root_translation, FLOAT, "VEC3"),
                     "interpolation": "LINEAR"})
    channels.append({"sampler": J, "target": {"node": 1, "path": "translation"}})
    local = rig.rest - np.where(np.array(rig.parents)[:, None] >= 0, rig.rest[list(rig.parents)], 0.0)
    nodes: list[dict[str, Any]] = [{"name": "body", "mesh": 0, "skin": 0}]
    for j, name in enumerate(rig.names):
        node: dict[str, Any] = {"name": name, "translation": [float(x) for x in local[j]],
                                "rotation": [0.0, 0.0, 0.0, 1.0]}
        kids = [1 + c for c, p in enumerate(rig.parents) if p == j]
        if kids:
            node["children"] = kids
        nodes.append(node)
    gltf: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "motionviz.mesh.rig"},
        "scene": 0, "scenes": [{"nodes": [0, 1]}], "nodes": nodes,
        "meshes": [{"name": "body", "primitives": [{
            "attributes": {"POSITION": pos, "NORMAL": nrm, "JOINTS_0": jnt, "WEIGHTS_0": wgt},
            "indices": ind, "mode": 4, "material": 0}]}],
        "materials": [{"pbrMetallicRoughness": {"baseColorFactor": [0.85, 0.7, 0.55, 1.0], "metallicFactor": 0.0,
                                                 "roughnessFactor": 0.8}, "doubleSided": True}],
        "skins": [{"name": "skeleton", "joints": list(range(1, J + 1)), "inverseBindMatrices": ibm_acc,
                   "skeleton": 1}],
        "animations": [{"name": rig.name, "samplers": samplers, "channels": channels}],
        "buffers": [{"byteLength": buf.length}], "bufferViews": buf.views, "accessors": buf.accessors,
        "extras": {"fps": rig.fps, "frames": T, "joints": list(rig.names), "source": "motionviz"},
    }
    return gltf, buf.blob()


def export_rigged(anim: MeshAnimation, path: str | os.PathLike, progress: Progress | None = None) -> Path:
    """Write the rigged, animated Anny body of ``anim`` as a ``.glb`` (every frame, at the motion's
    frame rate)."""
    path = Path(path)
    if path.suffix.lower() != ".glb":
        raise UserError(f"a rigged body is written as .glb, not {path.suffix or 'no extension'!r}")
    if progress:
        progress(0.2, "rigging the body")
    rig = build_rig(anim)
    if progress:
        progress(0.7, "writing the .glb")
    gltf, blob = rig_gltf(rig)
    out = write_glb(gltf, blob, path)
    if progress:
        progress(1.0, "written")
    return out
