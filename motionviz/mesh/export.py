"""Body meshes to files: one frame as OBJ, a sequence as a zip of OBJs or a morph-animated GLB."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import UserError
from . import MAX_EXPORT_FRAMES, Progress
from .animation import MeshAnimation


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


_FLOAT, _UINT = 5126, 5125          # glTF component types
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963


class _GlbBuffer:
    """The binary chunk of a .glb being built: each :meth:`add` appends an array (4-byte aligned) with
    its buffer view and accessor."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.views: list[dict] = []
        self.accessors: list[dict] = []
        self.offset = 0

    def add(self, arr: np.ndarray, comp: int, typ: str, target: int | None = None, minmax: bool = False) -> int:
        """Append ``arr`` ((n, 3) for VEC3, any shape for SCALAR) -> its accessor index."""
        data = np.ascontiguousarray(arr).tobytes()
        view = {"buffer": 0, "byteOffset": self.offset, "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        self.views.append(view)
        self.chunks.append(_pad4(data))
        self.offset += len(self.chunks[-1])
        count = arr.shape[0] if typ != "SCALAR" else arr.size
        acc = {"bufferView": len(self.views) - 1, "componentType": comp, "count": int(count), "type": typ}
        if minmax:
            a2 = arr.reshape(int(count), -1)
            acc["min"] = [float(x) for x in a2.min(0)]
            acc["max"] = [float(x) for x in a2.max(0)]
        self.accessors.append(acc)
        return len(self.accessors) - 1


def _morph_targets(buf: _GlbBuffer, V: np.ndarray, progress: Progress | None) -> list[dict]:
    """One POSITION morph target per frame after the first of ``V`` (K, V, 3): its offset from frame 0."""
    K = len(V)
    targets = []
    for k in range(1, K):
        targets.append({"POSITION": buf.add(V[k] - V[0], _FLOAT, "VEC3", _ARRAY_BUFFER, minmax=True)})
        if progress and k % 20 == 0:
            progress(0.1 + 0.8 * k / K, f"frame {k}/{K}")
    return targets


def _weights_animation(buf: _GlbBuffer, anim: MeshAnimation, fr: np.ndarray) -> dict[str, Any]:
    """The animation showing frame ``fr[k]`` ((K,) exported frame indices) at time fr[k] / fps: morph
    weights one-hot per key (STEP interpolation)."""
    K = len(fr)
    times = (fr / anim.fps).astype(np.float32)
    w = np.zeros((K, K - 1), dtype=np.float32)
    w[np.arange(1, K), np.arange(K - 1)] = 1.0
    t_acc = buf.add(times, _FLOAT, "SCALAR", minmax=True)
    w_acc = buf.add(w.reshape(-1), _FLOAT, "SCALAR")
    return {"name": anim.motion.labels.label or "motion",
            "samplers": [{"input": t_acc, "output": w_acc, "interpolation": "STEP"}],
            "channels": [{"sampler": 0, "target": {"node": 0, "path": "weights"}}]}


def _write_glb(path: Path, gltf: dict[str, Any], blob: bytes) -> None:
    """Write the glTF JSON and the binary chunk as one .glb at ``path`` (through a temporary file)."""
    js = _pad4(json.dumps(gltf, separators=(",", ":")).encode(), b" ")
    total = 12 + 8 + len(js) + 8 + len(blob)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<4sII", b"glTF", 2, total))
        fh.write(struct.pack("<I4s", len(js), b"JSON") + js)
        fh.write(struct.pack("<I4s", len(blob), b"BIN\x00") + blob)
    os.replace(tmp, path)


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
    buf = _GlbBuffer()
    pos = buf.add(V[0], _FLOAT, "VEC3", _ARRAY_BUFFER, minmax=True)
    idx = buf.add(faces.reshape(-1), _UINT, "SCALAR", _ELEMENT_ARRAY_BUFFER)
    targets = _morph_targets(buf, V, progress)
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
        gltf["animations"] = [_weights_animation(buf, anim, fr)]
        gltf["extras"] = {"frames": [int(f) for f in fr], "fps": anim.fps}
    gltf["bufferViews"] = buf.views
    gltf["accessors"] = buf.accessors
    blob = b"".join(buf.chunks)
    gltf["buffers"] = [{"byteLength": len(blob)}]
    _write_glb(path, gltf, blob)
    if progress:
        progress(1.0, "written")
    return path
