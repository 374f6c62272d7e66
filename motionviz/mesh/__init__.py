"""Body meshes posed from skeleton motions.

Default body: **Anny** (``pip install anny``; code Apache-2.0 by NAVER, body data from MakeHuman, CC0):
its 104-bone rig and 13,718-vertex mesh.  No licensed asset is needed.  Optional: **SMPL** through
``smplx`` when ``$MOTIONVIZ_SMPL_DIR`` points at the user's own model files (``SMPL_NEUTRAL.npz`` ...).

How a motion on the common skeleton (15 joints) poses the Anny body
--------------------------------------------------------------------
The rig's 104 bones are grouped into 18 *segments* (pelvis, lumbar, thorax, head, and per side
clavicle, upper arm, forearm, hand, thigh, shank, foot); fingers, toes, eyes and face stay at rest
relative to their segment.  Every segment gets one affine map per frame,
``A(v) = a' + G K (v - a)``: ``a`` its rest anchor joint, ``a'`` the posed one (forward kinematics
from the pelvis), ``G`` a rotation and ``K`` a per-motion shape matrix.

* Rotations (analytic bone-direction IK, batched over frames): the pelvis/lumbar frame comes from the
  hip line and the pelvis->spine direction, the thorax frame from the shoulder line and the
  spine->neck direction (so the torso twists); each limb segment takes its parent's rotation and
  the smallest extra rotation ("swing") that turns its rest direction onto the motion's bone
  direction.  The head follows the thorax, hands the forearms; feet stay flat with the pelvis'
  heading while the body is upright and follow the pelvis when it lies down (push-ups).
* Proportions: ``K = s I + (O - s R) R^+`` is the smallest change of a uniform scale ``s`` (the
  motion's body size over the rig's) that maps the rest offsets ``R`` of the segment's target joints
  onto their median offsets ``O`` in the motion (in the segment's rest axes): a stretch along the
  bone for limbs, the hip width for the pelvis.  Bone lengths therefore match the motion's median
  bone lengths and limb thickness only follows ``s``.  The posed joints then equal the motion's up to
  its frame-to-frame bone-length noise (1.2 cm mean on UI-PRMD Kinect data, ~0 on mocap), so no
  iterative refinement is needed.
* Skinning: Anny's own linear-blend weights summed per segment (exact: all bones of a segment share
  one transform), so joints blend smoothly across segments.

The shipped asset ``assets/anny_body.npz`` (0.3 MB: rest mesh, faces, per-segment weights, rest joints,
preview decimation) is exactly what :func:`build_anny_body` computes from ``anny`` 0.6.2 with the default
phenotype (all 0.5); regenerate it with ``python -m motionviz.mesh`` (about 2 minutes the first time,
while anny parses its MakeHuman data).  Without the asset the body is built from ``anny`` and cached.

The browser gets a decimated copy (about 2,500 faces, vertex clustering done once per body, its
vertices a subset of the full mesh so it is posed by the same weights); exports use the full mesh.

Exports: one frame as ``.glb``/``.obj`` (trimesh); a sequence as a ``.zip`` of ``.obj`` frames (trimesh)
or as one animated ``.glb`` (written here; trimesh has no morph-animation export): a single mesh
whose morph targets are the frames, played by a STEP animation of the morph weights at the motion's
frame rate (Blender imports it as shape keys + action; three.js / model-viewer play it).  At most
``max_frames`` frames (subsampled evenly) keep the file size bounded (~1.6 MB per 10 frames).

Coordinates: the motionviz frame (metres, Y-up, facing +Z, left = +X), which is also glTF's.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..core.errors import UserError
from ..core.motion import Motion, MotionError, MotionLabels
from ..core.skeleton import COMMON, RETARGET, SMPL22

__all__ = [
    "Body", "MeshAnimation", "SEGMENTS", "ASSET_PATH", "anny_body", "build_anny_body", "save_body",
    "load_body", "smpl_available", "smpl_body", "SmplBody", "solve_anny", "pose_anny", "mesh_animation", "mesh_figure",
    "export_frame", "export_sequence", "decimate", "body_for", "body_choices", "fit_smpl", "demo_motion",
    "bench",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
ASSET_PATH = REPO_ROOT / "assets" / "anny_body.npz"
ASSET_VERSION = 1
PREVIEW_FACES = 2500              # target face count of the browser mesh
MAX_EXPORT_FRAMES = 120           # frames in an animated GLB (subsampled evenly above this)
SKIN_COLOR = "#d9b38c"

Progress = Callable[[float, str], None]

# ------------------------------------------------------------------------------------------------
# segments of the rig and their anchors on the common skeleton
# ------------------------------------------------------------------------------------------------
_SIDES = ("left", "right")
_LIMB_SEGMENTS = ("clavicle", "upper_arm", "forearm", "hand", "thigh", "shank", "foot")
SEGMENTS: tuple[str, ...] = ("pelvis", "lumbar", "thorax", "head") + tuple(
    f"{s}_{k}" for s in _SIDES for k in _LIMB_SEGMENTS)

# common joint -> Anny bone whose head is that joint's rest position
_ANNY_ANCHORS: dict[str, str] = {
    "pelvis": "root", "spine": "spine03", "neck": "neck01",
    **{f"{s}_{j}": f"{b}.{s[0].upper()}" for s in _SIDES for j, b in (
        ("shoulder", "upperarm01"), ("elbow", "lowerarm01"), ("wrist", "wrist"),
        ("hip", "upperleg01"), ("knee", "lowerleg01"), ("ankle", "foot"))},
}


def _anny_segment(label: str) -> str:
    """The segment an Anny bone belongs to."""
    base, _, suffix = label.partition(".")
    side = {"L": "left", "R": "right"}.get(suffix, "")
    if base in ("root", "pelvis"):
        return "pelvis"
    if base in ("spine05", "spine04"):
        return "lumbar"
    if base in ("spine03", "spine02", "spine01"):
        return "thorax"
    if base.startswith("neck") or base in ("head", "eye", "jaw") or not side:
        return "head"
    if base in ("clavicle", "shoulder01"):
        return f"{side}_clavicle"
    if base.startswith("upperarm"):
        return f"{side}_upper_arm"
    if base.startswith("lowerarm"):
        return f"{side}_forearm"
    if base == "wrist" or base.startswith(("finger", "metacarpal")):
        return f"{side}_hand"
    if base.startswith("upperleg"):
        return f"{side}_thigh"
    if base.startswith("lowerleg"):
        return f"{side}_shank"
    if base == "foot" or base.startswith("toe"):
        return f"{side}_foot"
    return "head" if not side else f"{side}_hand"


# ------------------------------------------------------------------------------------------------
# the body: rest mesh + segment skinning weights
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Body:
    """A rest body posed by segment transforms (see the module docstring)."""

    name: str
    vertices: np.ndarray          # (V, 3) float32 rest mesh, motionviz frame
    faces: np.ndarray             # (F, 3) int32
    weights: np.ndarray           # (V, S) float32 segment weights, rows sum to 1
    joints: np.ndarray            # (15, 3) float32 rest positions of the common joints
    clavicles: np.ndarray         # (2, 3) float32 rest heads of the left/right clavicle
    preview_index: np.ndarray     # (Vp,) int32 full-mesh vertex of each preview vertex
    preview_faces: np.ndarray     # (Fp, 3) int32 faces of the preview mesh (indices into preview_index)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    def skin(self, transforms: np.ndarray, preview: bool = False, chunk: int = 32) -> np.ndarray:
        """transforms (T, S, 3, 4) segment maps -> posed vertices (T, V, 3) float32 (preview: (T, Vp, 3))."""
        v = self.vertices[self.preview_index] if preview else self.vertices            # (V, 3)
        w = self.weights[self.preview_index] if preview else self.weights              # (V, S)
        T = transforms.shape[0]
        out = np.empty((T, v.shape[0], 3), dtype=np.float32)
        flat = transforms.reshape(T, transforms.shape[1], 12).astype(np.float32)     # (T, S, 12)
        for s in range(0, T, chunk):
            M = np.matmul(w[None], flat[s:s + chunk]).reshape(-1, v.shape[0], 3, 4)   # (t, V, 3, 4)
            out[s:s + chunk] = (M[..., 0] * v[None, :, None, 0] + M[..., 1] * v[None, :, None, 1]
                                + M[..., 2] * v[None, :, None, 2] + M[..., 3])
        return out


def save_body(body: Body, path: str | os.PathLike) -> Path:
    """Write a body as a compressed .npz (no pickles; metadata as a JSON string)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp, vertices=body.vertices.astype(np.float32), faces=body.faces.astype(np.int32),
        weights=body.weights.astype(np.float16), joints=body.joints.astype(np.float32),
        clavicles=body.clavicles.astype(np.float32), preview_index=body.preview_index.astype(np.int32),
        preview_faces=body.preview_faces.astype(np.int32),
        segments=np.array(SEGMENTS), info=np.array(json.dumps({**body.info, "name": body.name})))
    os.replace(tmp, path)
    return path


def load_body(path: str | os.PathLike) -> Body:
    """Read a body written by :func:`save_body`."""
    try:
        with np.load(path, allow_pickle=False) as z:
            info = json.loads(str(z["info"]))
            if tuple(str(s) for s in z["segments"]) != SEGMENTS:
                raise UserError(f"{path}: body file has a different segment list")
            w = z["weights"].astype(np.float32)
            w /= np.maximum(w.sum(1, keepdims=True), 1e-8)
            return Body(name=info.get("name", "body"), vertices=z["vertices"], faces=z["faces"], weights=w,
                        joints=z["joints"], clavicles=z["clavicles"], preview_index=z["preview_index"],
                        preview_faces=z["preview_faces"], info=info)
    except (OSError, KeyError, ValueError) as e:
        raise UserError(f"cannot read the body file {path}: {e}") from None


def _anny_to_ours(x: np.ndarray) -> np.ndarray:
    """Anny (Z-up, facing -Y, left +X) -> motionviz (Y-up, facing +Z, left +X): (x, z, -y)."""
    return np.stack([x[..., 0], x[..., 2], -x[..., 1]], axis=-1)


def build_anny_body(phenotype: dict[str, float] | None = None, preview_faces: int = PREVIEW_FACES,
                    progress: Progress | None = None) -> Body:
    """Build the Anny body from the ``anny`` package (first run: anny parses its assets and caches
    them in ``~/.cache/anny``, about 2 minutes; later runs a few seconds)."""
    try:
        import anny
        import torch
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise UserError(f"the body mesh needs the 'anny' package ({e}); pip install anny") from None
    if progress:
        progress(0.05, "building the Anny body model")
    t0 = time.perf_counter()
    model = anny.Anny(skinning_method="lbs")
    build_s = time.perf_counter() - t0
    pheno = {k: 0.5 for k in model.phenotype_labels}
    pheno.update(phenotype or {})
    with torch.no_grad():
        out = model(phenotype_kwargs=pheno)
    rest_v = out["rest_vertices"][0].double().numpy()
    heads = out["rest_bone_heads"][0].double().numpy()
    labels = list(model.bone_labels)
    seg_of_bone = np.array([SEGMENTS.index(_anny_segment(b)) for b in labels])
    idx = model.vertex_bone_indices.long().numpy()
    bw = model.vertex_bone_weights.double().numpy()
    W = np.zeros((rest_v.shape[0], len(SEGMENTS)))
    np.add.at(W, (np.repeat(np.arange(len(W)), idx.shape[1]), seg_of_bone[idx].reshape(-1)), bw.reshape(-1))
    W /= np.maximum(W.sum(1, keepdims=True), 1e-12)
    joints = np.stack([heads[labels.index(_ANNY_ANCHORS[j])] for j in COMMON.joints])
    clav = np.stack([heads[labels.index("clavicle.L")], heads[labels.index("clavicle.R")]])
    verts = _anny_to_ours(rest_v).astype(np.float32)
    faces = model.faces.long().numpy().astype(np.int32)
    if progress:
        progress(0.6, "decimating the preview mesh")
    pidx, pfaces = decimate(verts, faces, W.argmax(1), preview_faces)
    import importlib.metadata as md
    info = {
        "source": "anny", "anny_version": md.version("anny"), "phenotype": pheno, "rig_bones": len(labels),
        "licence": "Anny code Apache-2.0 (NAVER); MakeHuman body data CC0 1.0", "build_s": round(build_s, 2),
        "asset_version": ASSET_VERSION,
    }
    return Body(name="anny", vertices=verts, faces=faces, weights=W.astype(np.float32),
                joints=_anny_to_ours(joints).astype(np.float32), clavicles=_anny_to_ours(clav).astype(np.float32),
                preview_index=pidx, preview_faces=pfaces, info=info)


_BODY_LOCK = threading.Lock()
_BODIES: dict[str, Any] = {}


def anny_body(progress: Progress | None = None) -> Body:
    """The default body, loaded once per process: ``assets/anny_body.npz`` (shipped, generated from the
    ``anny`` package by ``python -m motionviz.mesh``), else built from ``anny`` and cached on disk."""
    with _BODY_LOCK:
        if "anny" in _BODIES:
            return _BODIES["anny"]
        body = None
        candidates = [ASSET_PATH]
        try:
            from ..data.paths import cache_dir
            candidates.append(cache_dir() / f"anny_body_v{ASSET_VERSION}.npz")
        except Exception:  # noqa: BLE001 - the cache is optional
            pass
        for p in candidates:
            if p.is_file():
                b = load_body(p)
                if b.info.get("asset_version") == ASSET_VERSION:
                    body = b
                    break
        if body is None:
            body = build_anny_body(progress=progress)
            if len(candidates) > 1:
                try:
                    save_body(body, candidates[1])
                except OSError:
                    pass
        _BODIES["anny"] = body
        return body


# ------------------------------------------------------------------------------------------------
# decimation (vertex clustering; the preview's vertices are a subset of the full mesh)
# ------------------------------------------------------------------------------------------------
def _cluster(vertices: np.ndarray, faces: np.ndarray, labels: np.ndarray, cell: float
             ) -> tuple[np.ndarray, np.ndarray]:
    cells = np.floor(vertices / cell).astype(np.int64)
    key = np.concatenate([labels[:, None].astype(np.int64), cells], axis=1)
    _, cid = np.unique(key, axis=0, return_inverse=True)
    cid = cid.reshape(-1)
    f = cid[faces]
    ok = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    f = f[ok]
    _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
    return cid, f[np.sort(first)]


def decimate(vertices: np.ndarray, faces: np.ndarray, labels: np.ndarray | None = None,
             target_faces: int = PREVIEW_FACES) -> tuple[np.ndarray, np.ndarray]:
    """Vertex clustering to about ``target_faces`` faces, never merging vertices of different
    ``labels`` (segments), so the decimated mesh can be posed by the same skinning weights.
    Returns (index (Vp,) into ``vertices`` of the kept vertices, faces (Fp, 3) into that index)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    labels = np.zeros(len(vertices), dtype=np.int64) if labels is None else np.asarray(labels)
    if len(faces) <= target_faces:
        return np.arange(len(vertices), dtype=np.int32), faces.astype(np.int32)
    lo, hi = 1e-4, float(np.ptp(vertices, axis=0).max())
    best = None
    for _ in range(30):
        mid = np.sqrt(lo * hi)
        cid, f = _cluster(vertices, faces, labels, mid)
        if best is None or abs(len(f) - target_faces) < abs(len(best[1]) - target_faces):
            best = (cid, f)
        if abs(len(f) - target_faces) <= 0.03 * target_faces:
            break
        if len(f) > target_faces:
            lo = mid
        else:
            hi = mid
    cid, f = best
    n = int(cid.max()) + 1
    # representative of each cluster: the member closest to the cluster's centroid
    counts = np.bincount(cid, minlength=n).astype(np.float64)
    centroid = np.stack([np.bincount(cid, vertices[:, k], n) for k in range(3)], 1) / counts[:, None]
    d = np.linalg.norm(vertices - centroid[cid], axis=1)
    order = np.lexsort((d, cid))
    rep = np.full(n, -1, dtype=np.int64)
    first = np.r_[True, cid[order][1:] != cid[order][:-1]]
    rep[cid[order][first]] = order[first]
    used = np.unique(f)
    remap = np.full(n, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return rep[used].astype(np.int32), remap[f].astype(np.int32)


# ------------------------------------------------------------------------------------------------
# rotations
# ------------------------------------------------------------------------------------------------
def _unit(v: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


def _skew(v: np.ndarray) -> np.ndarray:
    z = np.zeros(v.shape[:-1])
    return np.stack([np.stack([z, -v[..., 2], v[..., 1]], -1),
                     np.stack([v[..., 2], z, -v[..., 0]], -1),
                     np.stack([-v[..., 1], v[..., 0], z], -1)], -2)


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3) unit vectors -> (..., 3, 3) the smallest rotation taking a onto b."""
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    K = _skew(v)
    eye = np.broadcast_to(np.eye(3), K.shape)
    R = eye + K + (K @ K) / np.maximum(1.0 + c, 1e-12)[..., None, None]
    bad = c < -1.0 + 1e-6
    if np.any(bad):
        ab = a[bad]
        helper = np.where(np.abs(ab[:, :1]) < 0.9, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
        axis = _unit(np.cross(ab, helper))
        R[bad] = 2.0 * axis[:, :, None] * axis[:, None, :] - np.eye(3)
    return R


def _frame(up: np.ndarray, across: np.ndarray) -> np.ndarray:
    """Columns (x = across, y = up, z = x cross y): an orthonormal frame with y exactly along ``up``."""
    y = _unit(up)
    x = _unit(across - np.sum(across * y, axis=-1, keepdims=True) * y)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def _yaw(G: np.ndarray) -> np.ndarray:
    """(T, 3, 3) -> rotation about +Y with the heading of G's forward (+Z) axis."""
    h = G[..., :, 2]
    th = np.arctan2(h[..., 0], h[..., 2])
    c, s = np.cos(th), np.sin(th)
    o, z = np.ones_like(c), np.zeros_like(c)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _shape(G: np.ndarray, rel: np.ndarray, rest_rel: np.ndarray, s: float) -> np.ndarray:
    """Per-motion shape matrix K (3, 3): the smallest change of ``s I`` mapping the rest offsets
    ``rest_rel`` (n, 3) onto the median over frames of ``G^T rel`` ((T, n, 3) -> (n, 3))."""
    local = np.einsum("tji,tnj->tni", G, rel)              # G^T rel
    O = np.nanmedian(local, axis=0)                        # (n, 3)
    R = rest_rel.astype(np.float64)
    E = (O - s * R).T                                      # (3, n)
    return s * np.eye(3) + E @ np.linalg.pinv(R.T)


# ------------------------------------------------------------------------------------------------
# posing the Anny body (analytic bone-direction IK with per-motion proportions)
# ------------------------------------------------------------------------------------------------
def _fill_missing(J: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """NaN joint positions filled by linear interpolation in time; joints never seen are put at their
    rest offset from the pelvis.  Raises MotionError when the pelvis and hips are never seen."""
    J = J.astype(np.float64).copy()
    T = J.shape[0]
    t = np.arange(T)
    for j in range(J.shape[1]):
        ok = np.isfinite(J[:, j]).all(axis=1)
        if ok.all() or not ok.any():
            continue
        for k in range(3):
            J[~ok, j, k] = np.interp(t[~ok], t[ok], J[ok, j, k])
    pe = COMMON.index("pelvis")
    if not np.isfinite(J[:, pe]).all():
        raise MotionError("the pelvis is never observed, so the body cannot be placed")
    for j in range(J.shape[1]):
        if not np.isfinite(J[:, j]).all():
            J[:, j] = J[:, pe] + (rest[j] - rest[pe])
    return J


def solve_anny(body: Body, joints: np.ndarray
               ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], np.ndarray]:
    """The pose solve behind :func:`pose_anny`: common-skeleton joints (T, 15, 3) -> per segment
    ``(a (3,) rest anchor, a' (T, 3) posed anchor, G (T, 3, 3) rotation, K (3, 3) shape)`` (the map
    ``A(v) = a' + G K (v - a)``) and the body's posed common joints (T, 15, 3)."""
    ix = COMMON.index
    R0 = body.joints.astype(np.float64)
    C0 = body.clavicles.astype(np.float64)
    J = _fill_missing(np.asarray(joints), R0)
    bl = COMMON.bone_lengths(J)                                              # (T, B)
    s = float(np.sum(np.nanmedian(bl, axis=0)) / np.sum(COMMON.bone_lengths(R0)))
    if not np.isfinite(s) or s <= 1e-3:
        raise MotionError("the motion's bones have zero length; cannot size the body")
    seg: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}   # name -> (a, a', G, K)
    posed = np.zeros_like(J)

    def put(name: str, a: np.ndarray, a_post: np.ndarray, G: np.ndarray, K: np.ndarray) -> None:
        seg[name] = (a, a_post, G, K)

    def apply(name: str, p: np.ndarray) -> np.ndarray:
        a, a_post, G, K = seg[name]
        return a_post + np.einsum("tij,j->ti", G, K @ (p - a))

    def limb(name: str, parent_G: np.ndarray, a: np.ndarray, a_post: np.ndarray, rest_end: np.ndarray,
             target: np.ndarray) -> np.ndarray:
        d_rest = _unit(rest_end - a)
        base = np.einsum("tij,j->ti", parent_G, d_rest)
        d = target - a_post
        n = np.linalg.norm(d, axis=-1, keepdims=True)
        d = np.where(n > 1e-6, d / np.maximum(n, 1e-12), base)
        G = _swing(base, d) @ parent_G
        K = _shape(G, (target - a_post)[:, None], (rest_end - a)[None], s)
        put(name, a, a_post, G, K)
        return apply(name, rest_end)

    pe, sp, nk = ix("pelvis"), ix("spine"), ix("neck")
    lh, rh, ls, rs = ix("left_hip"), ix("right_hip"), ix("left_shoulder"), ix("right_shoulder")
    # pelvis + lumbar: frame from the pelvis->spine direction and the hip line
    G_root = _frame(J[:, sp] - J[:, pe], J[:, lh] - J[:, rh]) @ _frame(R0[sp] - R0[pe], R0[lh] - R0[rh]).T
    put("pelvis", R0[pe], J[:, pe], G_root,
        _shape(G_root, J[:, [lh, rh]] - J[:, pe, None], R0[[lh, rh]] - R0[pe], s))
    put("lumbar", R0[pe], J[:, pe], G_root, _shape(G_root, (J[:, sp] - J[:, pe])[:, None], (R0[sp] - R0[pe])[None], s))
    posed[:, pe] = J[:, pe]
    posed[:, sp] = apply("lumbar", R0[sp])
    posed[:, lh], posed[:, rh] = apply("pelvis", R0[lh]), apply("pelvis", R0[rh])
    # thorax: frame from the spine->neck direction and the shoulder line; the head follows it
    G_th = _frame(J[:, nk] - posed[:, sp], J[:, ls] - J[:, rs]) @ _frame(R0[nk] - R0[sp], R0[ls] - R0[rs]).T
    put("thorax", R0[sp], posed[:, sp], G_th,
        _shape(G_th, (J[:, nk] - posed[:, sp])[:, None], (R0[nk] - R0[sp])[None], s))
    posed[:, nk] = apply("thorax", R0[nk])
    put("head", R0[nk], posed[:, nk], G_th, s * np.eye(3))
    # feet: flat on the floor with the pelvis' heading while the body is upright; lying down (push-ups)
    # they follow the pelvis
    upright = (G_root[:, 1, 1] > 0.5)[:, None, None]
    G_foot = np.where(upright, _yaw(G_root), G_root)
    for k, side in enumerate(_SIDES):
        sh, el, wr = ix(f"{side}_shoulder"), ix(f"{side}_elbow"), ix(f"{side}_wrist")
        hp, kn, an = ix(f"{side}_hip"), ix(f"{side}_knee"), ix(f"{side}_ankle")
        c_post = apply("thorax", C0[k])
        posed[:, sh] = limb(f"{side}_clavicle", G_th, C0[k], c_post, R0[sh], J[:, sh])
        posed[:, el] = limb(f"{side}_upper_arm", seg[f"{side}_clavicle"][2], R0[sh], posed[:, sh], R0[el], J[:, el])
        posed[:, wr] = limb(f"{side}_forearm", seg[f"{side}_upper_arm"][2], R0[el], posed[:, el], R0[wr], J[:, wr])
        put(f"{side}_hand", R0[wr], posed[:, wr], seg[f"{side}_forearm"][2], s * np.eye(3))
        posed[:, kn] = limb(f"{side}_thigh", G_root, R0[hp], posed[:, hp], R0[kn], J[:, kn])
        posed[:, an] = limb(f"{side}_shank", seg[f"{side}_thigh"][2], R0[kn], posed[:, kn], R0[an], J[:, an])
        put(f"{side}_foot", R0[an], posed[:, an], G_foot, s * np.eye(3))
    return seg, posed


def pose_anny(body: Body, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Common-skeleton joints (T, 15, 3) -> segment transforms (T, S, 3, 4) and the body's posed
    common joints (T, 15, 3) (equal to the targets up to bone-length noise)."""
    seg, posed = solve_anny(body, joints)
    T = posed.shape[0]
    X = np.zeros((T, len(SEGMENTS), 3, 4))
    for i, name in enumerate(SEGMENTS):
        a, a_post, G, K = seg[name]
        L = G @ K                                                             # (T, 3, 3)
        X[:, i, :, :3] = L
        X[:, i, :, 3] = a_post - np.einsum("tij,j->ti", L, a)
    return X.astype(np.float32), posed.astype(np.float32)


# ------------------------------------------------------------------------------------------------
# SMPL (user-provided model files)
# ------------------------------------------------------------------------------------------------
SMPL_ENV = "MOTIONVIZ_SMPL_DIR"
_SMPL_FILES = ("SMPL_NEUTRAL.npz", "SMPL_MALE.npz", "SMPL_FEMALE.npz", "smpl_neutral.npz", "model.npz")
_SMPL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")


def _smpl_file(directory: str | os.PathLike | None = None) -> Path | None:
    d = directory if directory is not None else os.environ.get(SMPL_ENV)
    if not d:
        return None
    p = Path(d).expanduser()
    if p.is_file():
        return p
    # the folder itself, or smplx's layout <models>/smpl/SMPL_NEUTRAL.npz
    for folder in (p, p / "smpl", p / "SMPL"):
        if folder.is_dir():
            for name in _SMPL_FILES:
                if (folder / name).is_file():
                    return folder / name
            npz = sorted(folder.glob("*.npz"))
            if npz:
                return npz[0]
    return None


def smpl_available(directory: str | os.PathLike | None = None) -> bool:
    """True when ``directory`` (default ``$MOTIONVIZ_SMPL_DIR``) holds an SMPL ``.npz`` model file."""
    return _smpl_file(directory) is not None


@dataclass(frozen=True, eq=False)
class SmplBody:
    """An SMPL model read from the user's ``.npz`` (no pickles), in the motionviz frame."""

    name: str
    path: Path
    v_template: np.ndarray      # (V, 3)
    shapedirs: np.ndarray       # (V, 3, B)
    posedirs: np.ndarray        # (P, 3V) smplx layout
    J_regressor: np.ndarray     # (24, V)
    weights: np.ndarray         # (V, 24)
    parents: np.ndarray         # (24,)
    faces: np.ndarray           # (F, 3) int32
    preview_index: np.ndarray
    preview_faces: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    def tensors(self):
        import torch
        f = torch.float32
        return (torch.as_tensor(self.v_template, dtype=f), torch.as_tensor(self.shapedirs, dtype=f),
                torch.as_tensor(self.posedirs, dtype=f), torch.as_tensor(self.J_regressor, dtype=f),
                torch.as_tensor(self.parents, dtype=torch.long), torch.as_tensor(self.weights, dtype=f))


def smpl_body(directory: str | os.PathLike | None = None, preview_faces: int = PREVIEW_FACES) -> SmplBody:
    """Load the user's SMPL model (``.npz`` with v_template, shapedirs, posedirs, J_regressor, weights,
    kintree_table, f) through ``smplx``; cached per file."""
    path = _smpl_file(directory)
    if path is None:
        raise UserError(f"no SMPL model found: set {SMPL_ENV} to a folder holding SMPL_NEUTRAL.npz "
                        "(the .npz variant of the SMPL model files; .pkl files are not read)")
    key = f"smpl:{path.resolve()}:{path.stat().st_mtime_ns}"
    with _BODY_LOCK:
        if key in _BODIES:
            return _BODIES[key]
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _SMPL_KEYS if k not in z.files]
            if missing:
                raise UserError(f"{path.name} is not an SMPL model file (missing {', '.join(missing)})")
            data = {k: np.asarray(z[k]) for k in _SMPL_KEYS}
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the SMPL model {path}: {e}") from None
    try:
        import smplx
        from smplx.utils import Struct
    except ImportError as e:  # pragma: no cover
        raise UserError(f"SMPL bodies need the 'smplx' package ({e})") from None
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):      # smplx prints a warning about 10 betas
        model = smplx.SMPL(model_path=str(path), data_struct=Struct(**data), num_betas=10)
    if model.J_regressor.shape[0] < 22 or model.parents.shape[0] < 22:
        raise UserError(f"{path.name}: an SMPL model needs at least 22 joints")
    faces = np.asarray(model.faces, dtype=np.int64)
    vt = model.v_template.numpy().astype(np.float64)
    pidx, pfaces = decimate(vt, faces, model.lbs_weights.numpy().argmax(1), preview_faces)
    body = SmplBody(
        name="smpl", path=path, v_template=vt.astype(np.float32), shapedirs=model.shapedirs.numpy(),
        posedirs=model.posedirs.numpy(), J_regressor=model.J_regressor.numpy(),
        weights=model.lbs_weights.numpy(), parents=model.parents.numpy(), faces=faces.astype(np.int32),
        preview_index=pidx, preview_faces=pfaces,
        info={"source": "smplx", "file": path.name, "licence": "user-provided SMPL model (its own licence)"})
    with _BODY_LOCK:
        _BODIES[key] = body
    return body


def _smpl_forward(body: SmplBody, betas, pose, transl, need_vertices: bool):
    """pose (T, 24, 3) axis-angle, betas (1, B), transl (T, 3) -> (vertices or None, joints (T, 24, 3))."""
    import torch
    from smplx.lbs import batch_rigid_transform, batch_rodrigues, lbs
    v_t, sd, pd, jr, par, w = body.tensors()
    T = pose.shape[0]
    if need_vertices:
        verts, joints = lbs(betas.expand(T, -1), pose.reshape(T, -1), v_t, sd, pd, jr, par, w, pose2rot=True)
        return verts + transl[:, None], joints + transl[:, None]
    shaped = v_t + torch.einsum("bl,mkl->bmk", betas, sd)                    # (1, V, 3)
    J = torch.einsum("bik,ji->bjk", shaped, jr).expand(T, -1, -1)           # (T, 24, 3)
    rot = batch_rodrigues(pose.reshape(-1, 3)).view(T, -1, 3, 3)
    posed, _ = batch_rigid_transform(rot, J, par)
    return None, posed + transl[:, None]


_SMPL_COMMON = {c: (RETARGET["smpl-22"][c]) for c in COMMON.joints}


def fit_smpl(body: SmplBody, joints: np.ndarray, steps: int = 150, progress: Progress | None = None
             ) -> dict[str, np.ndarray]:
    """Fit SMPL pose (per frame), shape (per motion) and translation to common-skeleton joints
    (T, 15, 3) by a batched Adam optimisation of the joint distances (joints matched by name through
    SMPL22), with a small pose prior.  Returns {"betas" (1, B), "pose" (T, 24, 3), "transl" (T, 3),
    "error" (T,) mean joint distance in metres}."""
    import torch
    J = _fill_missing(np.asarray(joints), np.zeros((len(COMMON), 3)))
    T = J.shape[0]
    sm_idx = [SMPL22.index(_SMPL_COMMON[c]) for c in COMMON.joints]
    target = torch.as_tensor(J, dtype=torch.float32)
    n_b = body.shapedirs.shape[-1]
    n_j = body.J_regressor.shape[0]
    betas = torch.zeros(1, n_b, requires_grad=True)
    pose = torch.zeros(T, n_j, 3)
    # initial global orientation/translation from the hips and spine (the SMPL rest pose faces +Z, Y-up)
    _, J0 = _smpl_forward(body, betas.detach(), pose, torch.zeros(T, 3), need_vertices=False)
    rest = J0[0].numpy().astype(np.float64)
    ix = COMMON.index
    up_r = rest[sm_idx[ix("spine")]] - rest[sm_idx[ix("pelvis")]]
    ac_r = rest[sm_idx[ix("left_hip")]] - rest[sm_idx[ix("right_hip")]]
    G = _frame(J[:, ix("spine")] - J[:, ix("pelvis")], J[:, ix("left_hip")] - J[:, ix("right_hip")]) \
        @ _frame(up_r, ac_r).T
    from scipy.spatial.transform import Rotation
    pose[:, 0] = torch.as_tensor(Rotation.from_matrix(G).as_rotvec(), dtype=torch.float32)
    transl0 = J[:, ix("pelvis")] - np.einsum("tij,j->ti", G, rest[sm_idx[ix("pelvis")]])
    pose.requires_grad_(True)
    transl = torch.as_tensor(transl0, dtype=torch.float32).clone().requires_grad_(True)
    opt = torch.optim.Adam([{"params": [pose], "lr": 0.05}, {"params": [transl], "lr": 0.02},
                            {"params": [betas], "lr": 0.05}])
    for it in range(steps):
        opt.zero_grad()
        _, pj = _smpl_forward(body, betas, pose, transl, need_vertices=False)
        err = (pj[:, sm_idx] - target).norm(dim=-1)                          # (T, 15)
        loss = err.mean() + 1e-3 * pose[:, 1:].pow(2).sum(-1).mean() + 1e-3 * betas.pow(2).mean()
        if T > 1:
            loss = loss + 1e-2 * (pose[1:] - pose[:-1]).pow(2).sum(-1).mean()
        loss.backward()
        opt.step()
        if progress and it % 25 == 0:
            progress(0.1 + 0.8 * it / steps, f"fitting SMPL ({it}/{steps})")
    with torch.no_grad():
        _, pj = _smpl_forward(body, betas, pose, transl, need_vertices=False)
        err = (pj[:, sm_idx] - target).norm(dim=-1).mean(-1)
    return {"betas": betas.detach().numpy(), "pose": pose.detach().numpy(), "transl": transl.detach().numpy(),
            "error": err.numpy(), "posed_joints": pj[:, sm_idx].numpy()}


# ------------------------------------------------------------------------------------------------
# the mesh animation of one motion (cached)
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MeshAnimation:
    """A body posed by a motion: call :meth:`vertices` for posed vertices (full mesh or preview)."""

    body: Any                     # Body | SmplBody
    motion: Motion                # the common-skeleton motion it was posed from
    params: dict[str, np.ndarray]  # anny: {"transforms"}; smpl: {"betas", "pose", "transl"}
    posed_joints: np.ndarray      # (T, 15, 3) the body's common joints after posing
    seconds: float = 0.0          # time spent solving the pose

    @property
    def num_frames(self) -> int:
        return self.motion.num_frames

    @property
    def fps(self) -> float:
        return self.motion.fps

    def faces(self, preview: bool = False) -> np.ndarray:
        return self.body.preview_faces if preview else self.body.faces

    def vertices(self, preview: bool = False, frames: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """(T', V, 3) float32 posed vertices of ``frames`` (default all)."""
        fr = np.arange(self.num_frames) if frames is None else np.asarray(frames, dtype=int)
        if isinstance(self.body, Body):
            return self.body.skin(self.params["transforms"][fr], preview=preview)
        import torch
        out = []
        with torch.no_grad():
            for s in range(0, len(fr), 64):
                f = fr[s:s + 64]
                v, _ = _smpl_forward(self.body, torch.as_tensor(self.params["betas"]),
                                     torch.as_tensor(self.params["pose"][f]),
                                     torch.as_tensor(self.params["transl"][f]), need_vertices=True)
                out.append(v.numpy())
        v = np.concatenate(out).astype(np.float32)
        return v[:, self.body.preview_index] if preview else v

    def joint_error(self) -> float:
        """Mean distance (m) between the body's posed common joints and the motion's."""
        d = np.linalg.norm(self.posed_joints - self.motion.joints, axis=-1)
        return float(np.nanmean(d))


_ANIM_CACHE: "OrderedDict[str, MeshAnimation]" = OrderedDict()
_ANIM_CACHE_SIZE = 8


def _as_common(motion: Motion) -> Motion:
    if not isinstance(motion, Motion):
        raise TypeError(f"expected a Motion, got {type(motion).__name__}")
    if motion.joints.shape[-1] != 3:
        raise MotionError("a body mesh needs 3D joint positions")
    if motion.skeleton.name != COMMON.name:
        try:
            obs = motion.observed
            if not obs.all():         # retarget is a weighted sum: keep NaNs of other joints out of it
                from ..core.retarget import retarget_mask
                keep = retarget_mask(obs, motion.skeleton, COMMON)
                motion = motion.with_joints(np.nan_to_num(motion.joints)).retarget(COMMON)
                j = motion.joints.copy()
                j[~keep] = np.nan
                motion = motion.with_joints(j)
            else:
                motion = motion.retarget(COMMON)
        except (KeyError, ValueError) as e:
            raise MotionError(f"cannot map skeleton {motion.skeleton.name!r} to the common skeleton: {e}") from None
    if not np.isfinite(motion.joints).any():
        raise MotionError("the motion has no observed joint positions")
    return motion


def body_choices() -> list[str]:
    """Bodies available here: always 'anny'; 'smpl' when $MOTIONVIZ_SMPL_DIR holds a model."""
    return ["anny"] + (["smpl"] if smpl_available() else [])


def body_for(name: str = "auto") -> Any:
    """'anny', 'smpl' or 'auto' (SMPL when the user's model files are configured, else Anny)."""
    if name == "auto":
        name = "smpl" if smpl_available() else "anny"
    if name == "anny":
        return anny_body()
    if name == "smpl":
        return smpl_body()
    raise UserError(f"unknown body {name!r}; choose 'anny' or 'smpl'")


def mesh_animation(motion: Motion, body: str = "auto", progress: Progress | None = None) -> MeshAnimation:
    """Pose a body by ``motion`` (any skeleton with a retarget map; batched over frames), cached per
    motion (hash of joints + fps) and body, for the last few motions."""
    motion = _as_common(motion)
    b = body_for(body)
    h = hashlib.sha1(np.ascontiguousarray(motion.joints).tobytes())
    h.update(f"{motion.fps}:{b.name}:{id(b)}".encode())
    key = h.hexdigest()
    with _BODY_LOCK:
        hit = _ANIM_CACHE.get(key)
        if hit is not None:
            _ANIM_CACHE.move_to_end(key)
            return hit
    t0 = time.perf_counter()
    if progress:
        progress(0.1, f"posing the {b.name} body")
    if isinstance(b, Body):
        X, posed = pose_anny(b, motion.joints)
        anim = MeshAnimation(b, motion, {"transforms": X}, posed, time.perf_counter() - t0)
    else:
        fit = fit_smpl(b, motion.joints, progress=progress)
        anim = MeshAnimation(b, motion, {k: fit[k] for k in ("betas", "pose", "transl")},
                             fit["posed_joints"], time.perf_counter() - t0)
    if progress:
        progress(0.9, "posed")
    with _BODY_LOCK:
        _ANIM_CACHE[key] = anim
        while len(_ANIM_CACHE) > _ANIM_CACHE_SIZE:
            _ANIM_CACHE.popitem(last=False)
    return anim


# ------------------------------------------------------------------------------------------------
# Plotly figure: skeleton + preview mesh moved by the same restyle slider
# ------------------------------------------------------------------------------------------------
def mesh_figure(motion: Motion, body: str = "auto", layout: str = "side", title: str | None = None,
                max_steps: int = 60, height: int = 520, progress: Progress | None = None,
                anim: MeshAnimation | None = None):
    """An animated figure of the body mesh (decimated preview) and the skeleton, both moved by one
    slider (restyle steps carrying the mesh's and the skeleton's x/y/z, at most ``max_steps`` steps).
    ``layout``: "side" (two scenes side by side, same scale) or "overlay" (one scene, mesh translucent)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from ..viz import render as R

    if layout not in ("side", "overlay"):
        raise UserError(f"layout must be 'side' or 'overlay', got {layout!r}")
    motion = _as_common(motion)
    anim = anim or mesh_animation(motion, body=body, progress=progress)
    frames = R._frame_indices(motion.num_frames, max_steps)
    V = anim.vertices(preview=True, frames=frames)                          # (n, Vp, 3)
    Vs = R._scene_xyz(V.astype(np.float64))
    faces = anim.faces(preview=True)
    floor = R._floor_height([motion])
    lo, hi = R._bounds([motion], floor)
    pts = Vs.reshape(-1, 3)
    lo, hi = np.minimum(lo, pts.min(0)), np.maximum(hi, pts.max(0))
    scene = R._scene_layout(lo, hi, True)
    if title is None:
        title = motion.labels.text or motion.labels.label or None
    name = motion.labels.label or "motion"
    mesh_scene = "scene2" if layout == "side" else "scene"
    if layout == "side":
        fig = make_subplots(rows=1, cols=2, specs=[[{"type": "scene"}, {"type": "scene"}]],
                            subplot_titles=("skeleton", f"body ({anim.body.name})"), horizontal_spacing=0.01)
        fig.update_layout(**R._base_layout(title, height))
    else:
        fig = go.Figure(layout=R._base_layout(title, height))
    skel = R._Animated(motion, None, name)
    for tr in skel.traces(0):
        fig.add_trace(tr)

    def mesh_xyz(k: int) -> dict[str, list]:
        return {"x": R._as_list(Vs[k, :, 0]), "y": R._as_list(Vs[k, :, 1]), "z": R._as_list(Vs[k, :, 2])}

    fig.add_trace(go.Mesh3d(
        **mesh_xyz(0), i=faces[:, 0].tolist(), j=faces[:, 1].tolist(), k=faces[:, 2].tolist(),
        color=SKIN_COLOR, opacity=1.0 if layout == "side" else 0.45, flatshading=False, name=f"{anim.body.name} body",
        lighting=dict(ambient=0.45, diffuse=0.8, specular=0.15, roughness=0.7, fresnel=0.1),
        lightposition=dict(x=1000, y=-2000, z=3000), hoverinfo="skip", showscale=False, scene=mesh_scene))
    fig.add_trace(R._floor_trace(scene, floor, scene="scene"))
    if layout == "side":
        fig.add_trace(R._floor_trace(scene, floor, scene="scene2"))
        fig.layout.scene2.update(scene)
    fig.layout.scene.update(scene)
    if motion.num_frames > 1:
        steps = []
        for k, t in enumerate(frames):
            bc, jc = skel.coords(int(t))
            mc = mesh_xyz(k)
            steps.append(dict(method="restyle", label=str(int(t)), value=str(int(t)),
                              args=[{"x": [bc["x"], jc["x"], mc["x"]], "y": [bc["y"], jc["y"], mc["y"]],
                                     "z": [bc["z"], jc["z"], mc["z"]]}, [0, 1, 2]]))
        # assigning a long slider through plotly's validators deep-copies every step (seconds);
        # the steps are built here in plotly's own schema, so skip that once
        fig.layout._validate = False
        try:
            fig.layout.sliders = [R._slider(steps, motion.num_frames, motion.fps)]
        finally:
            fig.layout._validate = True
    return fig


# ------------------------------------------------------------------------------------------------
# exports
# ------------------------------------------------------------------------------------------------
def export_frame(anim: MeshAnimation, frame: int, path: str | os.PathLike) -> Path:
    """One frame of the full-resolution mesh as .glb or .obj (chosen by the suffix)."""
    import trimesh
    path = Path(path)
    if path.suffix.lower() not in (".glb", ".obj"):
        raise UserError(f"mesh export supports .glb and .obj, not {path.suffix!r}")
    if not 0 <= int(frame) < anim.num_frames:
        raise UserError(f"frame must be between 0 and {anim.num_frames - 1}, got {frame}")
    v = anim.vertices(frames=[int(frame)])[0]
    mesh = trimesh.Trimesh(vertices=v, faces=anim.faces(), process=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.export(path)
    return path


def _export_obj_zip(anim: MeshAnimation, path: Path, max_frames: int, progress: Progress | None) -> Path:
    """The sequence as a .zip of full-resolution .obj files (trimesh), ``frame_0000.obj`` ...; at most
    ``max_frames`` frames, subsampled evenly."""
    import io
    import zipfile

    import trimesh
    T = anim.num_frames
    fr = np.unique(np.round(np.linspace(0, T - 1, max(1, min(T, int(max_frames))))).astype(int))
    faces = anim.faces()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for k in range(0, len(fr), 16):
            V = anim.vertices(frames=fr[k:k + 16])
            for f, v in zip(fr[k:k + 16], V):
                buf = io.BytesIO()
                trimesh.Trimesh(vertices=v, faces=faces, process=False).export(buf, file_type="obj")
                zf.writestr(f"frame_{int(f):04d}.obj", buf.getvalue())
            if progress:
                progress(min(1.0, (k + 16) / len(fr)), f"frame {min(k + 16, len(fr))}/{len(fr)}")
        zf.writestr("frames.json", json.dumps({"fps": anim.fps, "frames": [int(f) for f in fr],
                                               "body": anim.body.name}))
    os.replace(tmp, path)
    return path


def _pad4(b: bytes, fill: bytes = b"\x00") -> bytes:
    return b + fill * ((4 - len(b) % 4) % 4)


def export_sequence(anim: MeshAnimation, path: str | os.PathLike, max_frames: int = MAX_EXPORT_FRAMES,
                    progress: Progress | None = None) -> Path:
    """The sequence as one animated .glb: the first exported frame is the base mesh, every other
    exported frame a morph target, and an animation of the morph weights (STEP interpolation) shows
    frame k at time k / fps.  At most ``max_frames`` frames, subsampled evenly."""
    path = Path(path)
    if path.suffix.lower() == ".zip":
        return _export_obj_zip(anim, path, max_frames, progress)
    if path.suffix.lower() != ".glb":
        raise UserError("a mesh sequence is exported as .glb (animated) or .zip (one .obj per frame)")
    T = anim.num_frames
    fr = np.unique(np.round(np.linspace(0, T - 1, max(1, min(T, int(max_frames))))).astype(int))
    if progress:
        progress(0.1, f"posing {len(fr)} frames")
    V = anim.vertices(frames=fr).astype(np.float32)                        # (K, V, 3)
    faces = anim.faces().astype(np.uint32)
    K = len(fr)
    times = (fr / anim.fps).astype(np.float32)
    chunks: list[bytes] = []
    views: list[dict] = []
    accessors: list[dict] = []
    offset = 0

    def add(arr: np.ndarray, comp: int, typ: str, target: int | None = None, minmax: bool = False) -> int:
        nonlocal offset
        data = np.ascontiguousarray(arr).tobytes()
        view = {"buffer": 0, "byteOffset": offset, "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        views.append(view)
        chunks.append(_pad4(data))
        offset += len(chunks[-1])
        count = arr.shape[0] if typ != "SCALAR" else arr.size
        acc = {"bufferView": len(views) - 1, "componentType": comp, "count": int(count), "type": typ}
        if minmax:
            a2 = arr.reshape(int(count), -1)
            acc["min"] = [float(x) for x in a2.min(0)]
            acc["max"] = [float(x) for x in a2.max(0)]
        accessors.append(acc)
        return len(accessors) - 1

    FLOAT, UINT = 5126, 5125
    pos = add(V[0], FLOAT, "VEC3", 34962, minmax=True)
    idx = add(faces.reshape(-1), UINT, "SCALAR", 34963)
    targets = []
    for k in range(1, K):
        targets.append({"POSITION": add(V[k] - V[0], FLOAT, "VEC3", 34962, minmax=True)})
        if progress and k % 20 == 0:
            progress(0.1 + 0.8 * k / K, f"frame {k}/{K}")
    prim: dict[str, Any] = {"attributes": {"POSITION": pos}, "indices": idx, "mode": 4, "material": 0}
    mesh: dict[str, Any] = {"name": f"{anim.body.name}_body", "primitives": [prim]}
    gltf: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "motionviz.mesh"},
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0, "name": "body"}], "meshes": [mesh],
        "materials": [{"pbrMetallicRoughness": {"baseColorFactor": [0.85, 0.7, 0.55, 1.0], "metallicFactor": 0.0,
                                                 "roughnessFactor": 0.8}, "doubleSided": True}],
    }
    if K > 1:
        prim["targets"] = targets
        mesh["weights"] = [0.0] * (K - 1)
        w = np.zeros((K, K - 1), dtype=np.float32)
        w[np.arange(1, K), np.arange(K - 1)] = 1.0
        t_acc = add(times, FLOAT, "SCALAR", minmax=True)
        w_acc = add(w.reshape(-1), FLOAT, "SCALAR")
        gltf["animations"] = [{"name": anim.motion.labels.label or "motion",
                               "samplers": [{"input": t_acc, "output": w_acc, "interpolation": "STEP"}],
                               "channels": [{"sampler": 0, "target": {"node": 0, "path": "weights"}}]}]
        gltf["extras"] = {"frames": [int(f) for f in fr], "fps": anim.fps}
    gltf["bufferViews"] = views
    gltf["accessors"] = accessors
    blob = b"".join(chunks)
    gltf["buffers"] = [{"byteLength": len(blob)}]
    js = _pad4(json.dumps(gltf, separators=(",", ":")).encode(), b" ")
    total = 12 + 8 + len(js) + 8 + len(blob)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<4sII", b"glTF", 2, total))
        fh.write(struct.pack("<I4s", len(js), b"JSON") + js)
        fh.write(struct.pack("<I4s", len(blob), b"BIN\x00") + blob)
    os.replace(tmp, path)
    if progress:
        progress(1.0, "written")
    return path


# ------------------------------------------------------------------------------------------------
# a synthetic motion (tests, benchmark) and the benchmark section
# ------------------------------------------------------------------------------------------------
def demo_motion(frames: int = 120, fps: float = 20.0, body: Body | None = None) -> Motion:
    """A synthetic squat with arm raises on the common skeleton (the Anny body's rest joints, feet on
    the floor), ``frames`` long: needs no dataset."""
    body = body or anny_body()
    ix = COMMON.index
    rest = body.joints.astype(np.float64)
    rest = rest - [0.0, min(rest[ix("left_ankle"), 1], rest[ix("right_ankle"), 1]) - 0.08, 0.0]
    T = int(frames)
    ph = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(T) / max(T, 2) * 2)          # (T,) 0..1, two reps
    J = np.repeat(rest[None], T, axis=0)                                         # (T, 15, 3)

    def rot_x(a: np.ndarray) -> np.ndarray:                                       # (T,) -> (T, 3, 3)
        c, s = np.cos(a), np.sin(a)
        o, z = np.ones_like(a), np.zeros_like(a)
        return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)

    def rot_z(a: np.ndarray) -> np.ndarray:
        c, s = np.cos(a), np.sin(a)
        o, z = np.ones_like(a), np.zeros_like(a)
        return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)

    def turn(children: list[str], pivot: str, R: np.ndarray) -> None:
        p = J[:, ix(pivot)].copy()
        for c in children:
            J[:, ix(c)] = p + np.einsum("tij,tj->ti", R, J[:, ix(c)] - p)

    # squat: thighs forward/down (knees forward), shanks back, pelvis lowered to keep the feet planted
    for side in _SIDES:
        turn([f"{side}_knee", f"{side}_ankle"], f"{side}_hip", rot_x(-1.2 * ph))
        turn([f"{side}_ankle"], f"{side}_knee", rot_x(2.0 * ph))
        sgn = 1.0 if side == "left" else -1.0
        turn([f"{side}_elbow", f"{side}_wrist"], f"{side}_shoulder", rot_z(sgn * 1.3 * ph))
    ank = J[:, [ix("left_ankle"), ix("right_ankle")]].mean(1)                  # (T, 3)
    J -= (ank - ank[:1])[:, None]
    return Motion(J.astype(np.float32), COMMON, fps,
                  MotionLabels(dataset="demo", label="demo:squat", text="synthetic squat with arm raises"))


def bench(quick: bool = False) -> dict[str, Any]:
    """Benchmark section ``mesh``: seconds to pose the Anny body for a 120-frame motion and build its
    browser figure (cold cache), that figure's JSON size, full-mesh skinning and GLB export times."""
    import tempfile

    from ..viz.render import figure_json_size

    t0 = time.perf_counter()
    body = anny_body()
    load_s = time.perf_counter() - t0
    motion = demo_motion(120, body=body)
    source = "synthetic squat (demo_motion)"
    try:
        from ..data import load_dataset
        ms = [m for m in load_dataset("ui-prmd", limit=4) if m.num_frames >= 10]
        if ms:
            m = ms[0].retarget(COMMON).resample(20.0).normalise()
            reps = int(np.ceil(120 / m.num_frames))
            motion = m.with_joints(np.concatenate([m.joints] * reps)[:120])
            source = f"{m.labels.label} (UI-PRMD, repeated to 120 frames)"
    except Exception:  # noqa: BLE001 - no data: the synthetic motion is used
        pass
    repeats = 1 if quick else 3
    build, pose = [], []
    fig = None
    for _ in range(repeats):
        with _BODY_LOCK:
            _ANIM_CACHE.clear()
        t = time.perf_counter()
        anim = mesh_animation(motion, body="anny")
        pose.append(time.perf_counter() - t)
        fig = mesh_figure(motion, body="anny", anim=anim)
        build.append(time.perf_counter() - t)
    t = time.perf_counter()
    mesh_animation(motion, body="anny")
    cached = time.perf_counter() - t
    t = time.perf_counter()
    V = anim.vertices()
    skin_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        p = export_sequence(anim, Path(d) / "seq.glb", max_frames=30 if quick else MAX_EXPORT_FRAMES)
        glb_s = time.perf_counter() - t
        glb_bytes = p.stat().st_size
    return {
        "motion": source, "frames": motion.num_frames, "body": body.name, "vertices": body.num_vertices,
        "preview_faces": int(len(body.preview_faces)), "body_load_s": round(load_s, 3),
        "mesh_animation_120f_s": round(float(np.median(build)), 3),
        "pose_solve_120f_s": round(float(np.median(pose)), 4), "cached_s": round(cached, 5),
        "figure_json_bytes": figure_json_size(fig), "target_s": 2.0,
        "joint_error_m": round(anim.joint_error(), 4),
        "full_mesh_skin_120f_s": round(skin_s, 3), "full_vertices_shape": list(V.shape),
        f"glb_{30 if quick else MAX_EXPORT_FRAMES}f_s": round(glb_s, 3), "glb_bytes": glb_bytes,
    }


def _main() -> None:  # pragma: no cover - asset generation
    """``python -m motionviz.mesh [out.npz]``: (re)generate the shipped Anny body asset."""
    import sys
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ASSET_PATH
    t0 = time.perf_counter()
    body = build_anny_body()
    save_body(body, out)
    print(json.dumps({"path": str(out), "bytes": out.stat().st_size, "vertices": body.num_vertices,
                      "faces": int(len(body.faces)), "preview_vertices": int(len(body.preview_index)),
                      "preview_faces": int(len(body.preview_faces)), "seconds": round(time.perf_counter() - t0, 2),
                      **{k: body.info[k] for k in ("anny_version", "build_s")}}))

