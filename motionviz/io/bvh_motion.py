"""A parsed BVH file -> Motion: joints matched to the common skeleton by name and hierarchy, up axis and units
guessed, the sidecar's labels and units, gaps filled."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core import retarget as rt
from ..core.errors import UserError
from ..core.motion import Motion, MotionLabels
from ..core.skeleton import COMMON, RETARGET, SKELETONS, Skeleton, mirror_by_names
from .bvh import BvhFile, read_bvh

_UNIT_SCALE = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254, "inch": 0.0254, "ft": 0.3048}


SIDECAR_FORMAT = "motionviz-bvh/1"


MAX_SIDECAR_BYTES = 1_000_000


# ------------------------------------------------------------------------------------------------
# BVH -> Motion
# ------------------------------------------------------------------------------------------------
def _parse_axes(axes: str) -> np.ndarray:
    """'xyz', '-x,y,-z', 'x z -y' ... -> (3, 3) matrix M with out = M @ in."""
    parts = re.findall(r"([+-]?)\s*([xyzXYZ])", axes)
    if len(parts) != 3 or sorted(p[1].lower() for p in parts) != ["x", "y", "z"]:
        raise UserError(f"axes must name x, y and z once each with optional signs (e.g. '-x,y,-z'), got {axes!r}")
    M = np.zeros((3, 3))
    for row, (sign, ax) in enumerate(parts):
        M[row, "xyz".index(ax.lower())] = -1.0 if sign == "-" else 1.0
    return M


def _bone_scale(bvh: BvhFile, X: np.ndarray) -> float:
    """Metres per file unit from the longest rigid bone (thigh/shank: about 0.4 m), for files whose
    skeleton cannot be matched to a body (then the height is unknown)."""
    longest = 0.0
    for j, p in enumerate(bvh.parents):
        if p < 0:
            continue
        n = np.linalg.norm(X[:, j] - X[:, p], axis=-1)
        med = float(np.median(n))
        if med > 0 and float(np.std(n)) < 0.05 * med:
            longest = max(longest, med)
    if longest > 300:
        return 0.001   # millimetres
    if longest > 3:
        return 0.01    # centimetres (the usual mocap unit)
    return 1.0


def rest_positions(bvh: BvhFile) -> np.ndarray:
    """(J, 3) joint positions of the rest pose (OFFSETs chained, no rotation), file units and axes."""
    X = np.zeros((bvh.num_joints, 3))
    for j, p in enumerate(bvh.parents):
        X[j] = bvh.offsets[j] + (X[p] if p >= 0 else 0.0)
    return X


def _match_skeleton(bvh: BvhFile, skeleton: Skeleton | None, names: list[str] | None = None
                    ) -> tuple[Skeleton, list[int]]:
    """The skeleton to use and, for each of its joints, the BVH joint index.  ``names``: the joint
    names to match (default the file's; a sidecar may rename them back from a target rig)."""
    names = list(bvh.names if names is None else names)
    index = {n: i for i, n in enumerate(names)}
    lower = {n.lower(): i for i, n in enumerate(names)}
    if skeleton is None:
        named = bvh.meta().get("skeleton")
        cands = ([SKELETONS[named]] if named in SKELETONS else []) + list(SKELETONS.values())
        for sk in cands:
            if set(sk.joints) == set(names):
                skeleton = sk
                break
    if skeleton is None:
        parents = tuple(bvh.parents)
        try:
            skeleton = Skeleton("bvh", tuple(names), parents, mirror_by_names(names))
        except ValueError:
            skeleton = Skeleton("bvh", tuple(names), parents, tuple(range(len(names))))
        return skeleton, list(range(len(names)))
    idx = []
    missing = []
    for n in skeleton.joints:
        i = index.get(n, lower.get(n.lower()))
        if i is None:
            missing.append(n)
        idx.append(i)
    if missing:
        raise UserError(f"the BVH file has no joint(s) {', '.join(missing[:6])} needed by skeleton "
                        f"{skeleton.name!r} (it has {', '.join(names[:8])}...)")
    return skeleton, idx


def _sidecar_skeleton(bvh: BvhFile, skeleton: Skeleton | None, side: dict) -> tuple[list[str], Skeleton | None]:
    """-> (the file's joint names, renamed back from a target rig by the sidecar, the skeleton asked
    for or the sidecar's when the file has all its joints)."""
    names = list(bvh.names)
    if side.get("joint_names"):
        names = [str(side["joint_names"].get(n, n)) for n in names]
    if skeleton is None and isinstance(side.get("skeleton"), dict):
        try:
            sk_side = Skeleton.from_dict(side["skeleton"])
        except (KeyError, TypeError, ValueError):
            sk_side = None
        if sk_side is not None and set(sk_side.joints) <= set(names):
            skeleton = sk_side
    return names, skeleton


def _axes_matrix(axes: str, side: dict, cmap: dict[str, tuple[str, ...]] | None, rest_s: np.ndarray,
                 Xs: np.ndarray, sk: Skeleton, info: dict[str, str]) -> np.ndarray:
    """The (3, 3) source -> motionviz axes matrix: parsed from ``axes``, or "auto": the up axis guessed
    from the (J, 3) rest pose and (T, J, 3) positions ``Xs`` when the joints map onto the common
    skeleton and there is no sidecar (which says the file is Y-up); the guess goes to ``info``."""
    if axes != "auto":
        return _parse_axes(axes)
    M = np.eye(3)
    if cmap is not None and not side:                 # our sidecar says the file is Y-up
        up = rt.guess_up(rest_s, Xs, cmap, sk.joints)
        M = rt.up_rotation(up)
        info["up_in_file"] = "+-"[int(up.sum() < 0)] + "XYZ"[int(np.argmax(np.abs(up)))]
    return M


def _file_scale(scale: float | str, side: dict, bvh: BvhFile, X: np.ndarray, Xs: np.ndarray, sk: Skeleton,
                cmap: dict[str, tuple[str, ...]] | None) -> tuple[float, str]:
    """-> (metres per file unit, the file's unit in words): ``scale`` as given, or "auto": the sidecar's
    or comment's units, else guessed from the body's height (``Xs`` (T, J, 3) of the skeleton's joints)
    or from the longest bone (``X`` (T, J, 3) of every file joint)."""
    unit = str(side.get("units") or bvh.meta().get("units", "")).lower()
    if scale == "auto":
        if unit in _UNIT_SCALE:
            s = _UNIT_SCALE[unit]
        elif cmap is not None:
            s, unit = rt.guess_scale(rt.estimate_height(Xs, sk.joints, cmap))
        else:
            s = _bone_scale(bvh, X)
            unit = {0.001: "mm", 0.01: "cm", 1.0: "m"}[s] + " (guessed from the longest bone)"
    else:
        try:
            s = float(scale)
        except (TypeError, ValueError):
            raise UserError(f"scale must be a number or 'auto', got {scale!r}") from None
        if not (math.isfinite(s) and s > 0):
            raise UserError(f"scale must be a positive number, got {scale!r}")
        unit = f"{s:g} m"
    return s, unit


def _stand_on_floor(joints: np.ndarray, floor: bool | str, cmap: dict[str, tuple[str, ...]] | None, side: dict,
                    info: dict[str, str]) -> None:
    """Shift the (T, J, 3) ``joints`` (metres, Y-up) in place so the body stands on y = 0 (see
    :func:`bvh_to_motion`'s ``floor``); the shift goes to ``info``."""
    if floor is True or (floor == "auto" and cmap is not None and not side):
        lowest = float(np.percentile(np.min(joints[..., 1], axis=1), 2))
        if floor is True or not -0.05 <= lowest <= 0.25:          # ankles sit 5-15 cm above the floor
            joints[..., 1] -= lowest
            info["floor_shift_m"] = f"{-lowest:.3f}"


def _file_fps(side: dict, bvh: BvhFile) -> float:
    """The sidecar's or comment's frame rate when it agrees with the frame time (within 1 %), else the
    frame time's."""
    fps = float(side.get("fps") or bvh.meta().get("fps", 0) or 0) or bvh.fps
    if abs(fps - bvh.fps) > 0.01 * bvh.fps:
        fps = bvh.fps
    return fps


def _file_labels(labels: MotionLabels | None, side: dict, info: dict[str, str]) -> MotionLabels:
    """The labels: given (default source "bvh") or the sidecar's, with ``info`` added to ``extra``."""
    lab = labels or MotionLabels(source="bvh")
    if side.get("labels"):
        try:
            saved = MotionLabels.from_dict(dict(side["labels"]))
            lab = MotionLabels(**{**saved.to_dict(), "source": lab.source or saved.source})
        except (TypeError, ValueError):
            pass
    return MotionLabels(**{**lab.to_dict(), "extra": {**lab.extra, **info}})


def bvh_to_motion(bvh: BvhFile, skeleton: Skeleton | None = None, scale: float | str = "auto",
                  axes: str = "auto", labels: MotionLabels | None = None, floor: bool | str = "auto",
                  sidecar: dict | None = None) -> Motion:
    """A :class:`Motion` (metres, Y-up) from a parsed BVH file.

    ``skeleton``: pick these joints by name (None: a known skeleton whose joint names match exactly,
    else a skeleton built from the BVH hierarchy, with its map onto the common skeleton found by
    :func:`motionviz.core.retarget.match_common` when the joints can be matched).  ``scale``: metres per
    file unit, or "auto" (the sidecar's or an old ``units=`` comment's units, else from the body's
    height: :func:`motionviz.core.retarget.guess_scale`).  ``axes``: which source axis becomes the motionviz
    x, y, z (e.g. "-x,y,-z" for a 180 degree turn, "x,z,-y" for Z-up files), or "auto" (the up axis
    guessed from the body; Y-up files are unchanged).  ``floor``: "auto" (files without a sidecar)
    stands the body on y = 0 when its lowest joints are below -5 cm or above 25 cm (ankles sit 5-15
    cm above the floor, toes 2-5 cm); True always; False never.
    ``sidecar``: the parsed ``<file>.bvh.json`` of our writer (units, skeleton, rig names).
    """
    X = bvh.positions()                                  # (T, J, 3) file units
    side = sidecar or {}
    names, skeleton = _sidecar_skeleton(bvh, skeleton, side)
    sk, idx = _match_skeleton(bvh, skeleton, names)
    info: dict[str, str] = {}

    # the map onto the common skeleton (needed for units, up axis and every model)
    mapping = None
    if sk.name == "bvh":
        try:
            mapping = rt.match_common(names, bvh.parents, rest_positions(bvh), "the BVH skeleton")
        except UserError as e:
            info["retarget_error"] = str(e)
    cmap = mapping if mapping is not None else _known_map(sk)
    Xs, rest_s = X[:, idx], rest_positions(bvh)[idx]     # the skeleton's joints (T, J, 3), (J, 3)

    M = _axes_matrix(axes, side, cmap, rest_s, Xs, sk, info)
    s, unit = _file_scale(scale, side, bvh, X, Xs, sk, cmap)
    info["unit_in_file"] = unit
    joints = (Xs @ M.T) * s
    _stand_on_floor(joints, floor, cmap, side, info)
    if mapping is not None:
        sk = Skeleton(sk.name, sk.joints, sk.parents, sk.mirror, tuple(mapping.items()))
    return Motion(joints.astype(np.float32), sk, _file_fps(side, bvh), _file_labels(labels, side, info))


def _known_map(sk: Skeleton) -> dict[str, tuple[str, ...]] | None:
    """common joint -> source names for a known topology (None when it has none)."""
    if sk.name == COMMON.name:
        return {j: (j,) for j in COMMON.joints}
    m = dict(sk.retarget_map) or RETARGET.get(sk.name)
    if not m:
        return None
    return {k: ((v,) if isinstance(v, str) else tuple(v)) for k, v in m.items()}


def sidecar_path(path: str | Path) -> Path:
    """``walk.bvh`` -> ``walk.bvh.json`` (``walk.bvh.xz`` -> ``walk.bvh.json``)."""
    p = Path(path)
    name = p.name[:-3] if p.name.lower().endswith(".xz") else p.name
    return p.with_name(name + ".json")


def read_sidecar(path: str | Path) -> dict | None:
    """The ``<file>.bvh.json`` our writer puts next to a BVH file, or None (absent / not ours / bad)."""
    sp = sidecar_path(path)
    try:
        if not sp.is_file() or sp.stat().st_size > MAX_SIDECAR_BYTES:
            return None
        d = json.loads(sp.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return d if isinstance(d, dict) and d.get("format") == SIDECAR_FORMAT else None


def load_bvh_motion(src: str | Path | bytes, skeleton: Skeleton | None = None, scale: float | str = "auto",
                    axes: str = "auto") -> Motion:
    """``bvh_to_motion(read_bvh(src), ...)`` with the file name as the label source and the sidecar
    ``<file>.bvh.json`` (when ``src`` is a path and it exists)."""
    bvh = read_bvh(src)
    is_path = isinstance(src, (str, Path)) and "\n" not in str(src)
    source = Path(src).name if is_path else "bvh"
    side = read_sidecar(src) if is_path else None
    return bvh_to_motion(bvh, skeleton, scale, axes, MotionLabels(source=source), sidecar=side)


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------
def _fill_missing(joints: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Linear interpolation in time over NaN joints (ends hold the nearest known value)."""
    if not np.isnan(joints).any():
        return joints
    out = joints.copy()
    T = out.shape[0]
    t = np.arange(T)
    for j in range(out.shape[1]):
        ok = np.isfinite(out[:, j]).all(axis=-1)
        if ok.all():
            continue
        if not ok.any():
            raise UserError(f"joint {names[j]!r} is missing (NaN) in every frame; complete the motion "
                            f"(e.g. with the inpainting model) before exporting BVH")
        for c in range(3):
            out[:, j, c] = np.interp(t, t[ok], out[ok, j, c])
    return out
