"""Motion -> BVH text: six channels per joint so the joint positions are reproduced exactly, rotations chosen
so the bones point the right way, units and a sidecar with the labels."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np

from ..core.errors import UserError
from ..core.motion import Motion
from ..core.retarget import rig_names
from ..core.skeleton import COMMON, Skeleton
from .bvh import _matrix_to_zxy, euler_to_matrix
from .bvh_motion import _UNIT_SCALE, SIDECAR_FORMAT, _fill_missing, sidecar_path
from .footcontact import clean_foot_contacts

_WRITE_CHANNELS = ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minimal rotation (T, 3, 3) taking unit vector a (3,) to unit vectors b (T, 3)."""
    T = b.shape[0]
    a = np.broadcast_to(a, (T, 3))
    v = np.cross(a, b)
    c = np.einsum("ti,ti->t", a, b)
    K = np.zeros((T, 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    K[:, 1, 0], K[:, 2, 0], K[:, 2, 1] = v[:, 2], -v[:, 1], v[:, 0]
    denom = np.where(1.0 + c > 1e-9, 1.0 + c, 1.0)[:, None, None]
    R = np.eye(3) + K + (K @ K) / denom
    # exactly opposite: a half turn about any axis perpendicular to a
    opp = 1.0 + c <= 1e-9
    if opp.any():
        perp = np.cross(a[0], [1.0, 0, 0])
        if np.linalg.norm(perp) < 1e-6:
            perp = np.cross(a[0], [0, 1.0, 0])
        perp /= np.linalg.norm(perp)
        R[opp] = 2.0 * np.outer(perp, perp) - np.eye(3)
    return R


def _best_rotation(rest: np.ndarray, cur: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted Kabsch: rest (K, 3), cur (T, K, 3), w (K,) -> (T, 3, 3) R minimising sum w |R rest - cur|^2."""
    H = np.einsum("k,ki,tkj->tij", w, rest, cur)          # sum_k w rest_k cur_k^T
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.swapaxes(Vt, 1, 2) @ np.swapaxes(U, 1, 2)))
    d = np.where(d == 0, 1.0, d)
    D = np.broadcast_to(np.eye(3), H.shape).copy()
    D[:, 2, 2] = d
    return np.swapaxes(Vt, 1, 2) @ D @ np.swapaxes(U, 1, 2)


def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 1e-9, n, 1.0), n[..., 0]


def _bvh_name(name: str, used: set[str]) -> str:
    base = re.sub(r"[^\w.:\-]", "_", name) or "joint"
    out, k = base, 1
    while out in used:
        k += 1
        out = f"{base}_{k}"
    used.add(out)
    return out


def _prepare(motion: Motion, rig: str, clean_feet: bool) -> tuple[Motion, dict[str, str]]:
    """The motion to write (on the common skeleton for a target rig, feet cleaned on request) and the
    exported name of each of its joints."""
    rig = str(rig).strip().lower()
    names = rig_names(rig) if rig != "motionviz" else None
    if names is not None or clean_feet:
        if motion.skeleton.name != COMMON.name:
            motion = motion.retarget(COMMON)
    if clean_feet:
        motion = clean_foot_contacts(motion)
    if names is None:
        names = {j: j for j in motion.skeleton.joints}
    return motion, names


def _joint_order(sk: Skeleton) -> list[int]:
    """Depth-first joint order (BVH nesting) from the root, children in skeleton order."""
    order: list[int] = []
    stack = [sk.root]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(sk.children[j]))
    return order


def _rest_offsets(X: np.ndarray, sk: Skeleton) -> np.ndarray:
    """Rest offsets (J, 3) of the (T, J, 3) positions ``X``: median bone vectors (world axes); the root's
    rest = its median position."""
    T, J, _ = X.shape
    rest = np.zeros((J, 3))
    for j in range(J):
        p = sk.parents[j]
        rest[j] = np.median(X[:, j] - X[:, p], axis=0) if p >= 0 else np.median(X[:, j], axis=0)
    return rest


def _global_rotations(X: np.ndarray, rest: np.ndarray, sk: Skeleton, order: list[int]) -> np.ndarray:
    """Global rotations (T, J, 3, 3) taking the (J, 3) rest child offsets to the current child bone
    vectors of the (T, J, 3) positions ``X`` (several children: best fit, the parent bone fixing the
    twist; no child: the parent's rotation)."""
    T, J, _ = X.shape
    G = np.empty((T, J, 3, 3))
    for j in order:
        kids = [c for c in sk.children[j] if np.linalg.norm(rest[c]) > 1e-6]
        p = sk.parents[j]
        if len(kids) == 1:
            a, _ = _unit(rest[kids[0]])
            b, n = _unit(X[:, kids[0]] - X[:, j])
            Gj = _swing(a, b)
            if p >= 0:
                Gj[n < 1e-9] = G[n < 1e-9, p]
        elif len(kids) >= 2:
            r = [_unit(rest[c])[0] for c in kids]
            cvec = [_unit(X[:, c] - X[:, j])[0] for c in kids]
            w = [1.0] * len(kids)
            if p >= 0 and np.linalg.norm(rest[j]) > 1e-6:   # the bone to the parent fixes the twist
                r.append(-_unit(rest[j])[0])
                cvec.append(-_unit(X[:, j] - X[:, p])[0])
                w.append(0.25)
            Gj = _best_rotation(np.stack(r), np.stack(cvec, axis=1), np.array(w))
        else:
            Gj = G[:, p].copy() if p >= 0 else np.broadcast_to(np.eye(3), (T, 3, 3)).copy()
        G[:, j] = Gj
    return G


def _local_channels(X: np.ndarray, G: np.ndarray, sk: Skeleton, order: list[int], decimals: int) -> tuple[np.ndarray, np.ndarray]:
    """-> ((T, J, 3) local ZXY Euler angles rounded as written, (T, J, 3) translations): the chain is
    rebuilt from the written angles so the translation channels reproduce every joint position of
    ``X`` (T, J, 3) exactly; ``G`` (T, J, 3, 3) global rotations."""
    T, J, _ = X.shape
    eul = np.empty((T, J, 3))
    Gw = np.empty((T, J, 3, 3))
    trans = np.empty((T, J, 3))
    for j in order:
        p = sk.parents[j]
        local = G[:, j] if p < 0 else np.swapaxes(Gw[:, p], 1, 2) @ G[:, j]
        e = np.round(_matrix_to_zxy(local), decimals)
        eul[:, j] = e
        Rl = euler_to_matrix(e, "ZXY")
        if p < 0:
            Gw[:, j] = Rl
            trans[:, j] = X[:, j]
        else:
            Gw[:, j] = Gw[:, p] @ Rl
            trans[:, j] = np.einsum("tba,tb->ta", Gw[:, p], X[:, j] - X[:, p])   # G_p^T (X_j - X_p)
    return eul, np.round(trans, decimals)


def _write_hierarchy(out: io.StringIO, sk: Skeleton, names: dict[int, str], rest: np.ndarray, fmt: str, per_m: float) -> None:
    """The HIERARCHY section: every joint with its (J, 3) ``rest`` offset and 6 channels, end sites
    at a quarter of the last bone (the root alone: 10 cm up)."""
    out.write("HIERARCHY\n")

    def emit(j: int, depth: int) -> None:
        ind = "\t" * depth
        kw = "ROOT" if sk.parents[j] < 0 else "JOINT"
        out.write(f"{ind}{kw} {names[j]}\n{ind}{{\n")
        off = rest[j]
        out.write(f"{ind}\tOFFSET {fmt % off[0]} {fmt % off[1]} {fmt % off[2]}\n")
        out.write(f"{ind}\tCHANNELS 6 {' '.join(_WRITE_CHANNELS)}\n")
        kids = sk.children[j]
        for c in kids:
            emit(c, depth + 1)
        if not kids:
            p = sk.parents[j]
            e = 0.25 * rest[j] if p >= 0 else np.array([0.0, 10.0 * per_m / 100.0, 0.0])
            out.write(f"{ind}\tEnd Site\n{ind}\t{{\n{ind}\t\tOFFSET {fmt % e[0]} {fmt % e[1]} {fmt % e[2]}\n"
                      f"{ind}\t}}\n")
        out.write(f"{ind}}}\n")

    emit(sk.root, 0)


def _write_frames(out: io.StringIO, trans: np.ndarray, eul: np.ndarray, order: list[int], fps: float,
                  decimals: int) -> None:
    """The MOTION section: per frame, per joint in file order its (T, J, 3) translation (x y z) and
    (T, J, 3) rotation (z x y)."""
    T = trans.shape[0]
    out.write("MOTION\n")
    out.write(f"Frames: {T}\n")
    out.write(f"Frame Time: {1.0 / fps:.8f}\n")
    cols = np.concatenate([np.concatenate([trans[:, j], eul[:, j]], axis=1) for j in order], axis=1)
    cols = np.where(np.abs(cols) < 0.5 * 10.0 ** -decimals, 0.0, cols)   # no "-0.000000"
    np.savetxt(out, cols, fmt=f"%.{decimals}f", delimiter=" ")


def write_bvh(motion: Motion, unit: str = "cm", decimals: int = 6, rig: str = "motionviz",
              clean_feet: bool = False) -> str:
    """BVH text for any motion (see the module docstring): no comment lines.  ``unit``: "cm"
    (default), "m" or "mm".  ``rig``: joint names ("motionviz": the skeleton's own; "mixamo",
    "mixamo-plain", "smpl": a common-skeleton motion named as that rig; other skeletons are retargeted
    to the common one first).  ``clean_feet``: remove foot sliding first (common skeleton)."""
    if unit not in ("cm", "m", "mm"):
        raise UserError(f"BVH unit must be 'cm', 'm' or 'mm', got {unit!r}")
    motion, rename = _prepare(motion, rig, clean_feet)
    sk = motion.skeleton
    if motion.joints.shape[-1] != 3:
        raise UserError("BVH export needs 3D joint positions")
    per_m = 1.0 / _UNIT_SCALE[unit]
    X = _fill_missing(motion.joints.astype(np.float64), sk.joints) * per_m   # (T, J, 3) file units
    if sum(1 for p in sk.parents if p < 0) != 1:
        raise UserError(f"skeleton {sk.name!r} has several roots; BVH needs a single tree")
    order = _joint_order(sk)
    rest = _rest_offsets(X, sk)
    G = _global_rotations(X, rest, sk, order)
    eul, trans = _local_channels(X, G, sk, order, decimals)

    used: set[str] = set()
    names = {j: _bvh_name(rename.get(sk.joints[j], sk.joints[j]), used) for j in order}
    out = io.StringIO()
    _write_hierarchy(out, sk, names, rest, f"%.{decimals}f", per_m)
    _write_frames(out, trans, eul, order, motion.fps, decimals)
    return out.getvalue()


def bvh_sidecar(motion: Motion, unit: str = "cm", rig: str = "motionviz", clean_feet: bool = False) -> dict:
    """What the BVH format cannot say, for ``<file>.bvh.json``: units, frame rate, axes, the skeleton
    (with its left/right map), the exported name of each joint (for rigs) and the labels."""
    m, rename = _prepare(motion, rig, clean_feet)
    used: set[str] = set()
    exported = {_bvh_name(rename.get(j, j), used): j for j in m.skeleton.joints}
    return {
        "format": SIDECAR_FORMAT, "units": unit, "metres_per_unit": _UNIT_SCALE[unit], "fps": m.fps,
        "frames": m.num_frames, "up": "+Y", "facing": "+Z", "left": "+X", "rig": str(rig).lower(),
        "feet_cleaned": bool(clean_feet), "skeleton": m.skeleton.to_dict(),
        "joint_names": {k: v for k, v in exported.items() if k != v}, "labels": m.labels.to_dict(),
    }


def save_bvh(motion: Motion, path: str | Path, unit: str = "cm", rig: str = "motionviz",
             clean_feet: bool = False, sidecar: bool = True) -> Path:
    """Write ``write_bvh(motion, unit, rig=..., clean_feet=...)`` to ``path`` and, with ``sidecar``,
    :func:`bvh_sidecar` to ``<path>.json`` (both atomically); returns the BVH path."""
    path = Path(path)
    motion, _ = _prepare(motion, rig, clean_feet)        # clean the feet once for both files
    text = write_bvh(motion, unit=unit, rig=rig)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    if sidecar:
        sp = sidecar_path(path)
        tmp = sp.with_name(sp.name + ".tmp")
        meta = bvh_sidecar(motion, unit, rig)
        meta["feet_cleaned"] = bool(clean_feet)
        tmp.write_text(json.dumps(meta, indent=1, default=str), encoding="utf-8")
        tmp.replace(sp)
    return path
