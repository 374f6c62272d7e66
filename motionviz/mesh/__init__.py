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

import importlib.metadata as md
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..core.errors import UserError
from ..core.skeleton import COMMON
from ..data.paths import cache_dir
from .decimation import PREVIEW_FACES, decimate

__all__ = [
    "Body", "SEGMENTS", "ASSET_PATH", "anny_body", "build_anny_body", "save_body",
    "load_body",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
ASSET_PATH = REPO_ROOT / "assets" / "anny_body.npz"
ASSET_VERSION = 1
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


def _main() -> None:  # pragma: no cover - asset generation
    """``python -m motionviz.mesh [out.npz]``: (re)generate the shipped Anny body asset."""
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ASSET_PATH
    t0 = time.perf_counter()
    body = build_anny_body()
    save_body(body, out)
    print(json.dumps({"path": str(out), "bytes": out.stat().st_size, "vertices": body.num_vertices,
                      "faces": int(len(body.faces)), "preview_vertices": int(len(body.preview_index)),
                      "preview_faces": int(len(body.preview_faces)), "seconds": round(time.perf_counter() - t0, 2),
                      **{k: body.info[k] for k in ("anny_version", "build_s")}}))
