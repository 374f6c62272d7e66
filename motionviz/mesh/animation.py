"""A motion -> per-frame body meshes (Anny or SMPL), cached; the demo motion."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ..core.errors import UserError
from ..core.motion import Motion, MotionError, MotionLabels
from ..core.retarget import retarget_mask
from ..core.skeleton import COMMON
from . import _BODY_LOCK, _SIDES, Body, Progress, anny_body
from .pose import pose_anny
from .smpl import _smpl_forward, fit_smpl, smpl_available, smpl_body


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
