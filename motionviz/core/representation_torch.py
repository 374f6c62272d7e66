"""Motion representation in torch, shared by the models: pelvis + offset features, repetition features,
sinusoidal embeddings (two layouts: concatenated for the diffusion model, interleaved for the VAE) and the AE-
GAN's window frame. Variants baked into shipped weights stay separate named functions."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as Fn

from .skeleton import COMMON, Skeleton


# ---------------------------------------------------------------------------------------------
# network
# ---------------------------------------------------------------------------------------------
def to_features(joints: torch.Tensor) -> torch.Tensor:
    """joints (..., J, 3) metres -> (..., 3J): pelvis (joint 0) position, then the other joints' offsets
    from the pelvis."""
    root = joints[..., :1, :]
    return torch.cat([root, joints[..., 1:, :] - root], dim=-2).flatten(-2)


def from_features(f: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_features`: (..., 3J) -> joints (..., J, 3)."""
    x = f.unflatten(-1, (-1, 3))
    root = x[..., :1, :]
    return torch.cat([root, x[..., 1:, :] + root], dim=-2)


def rep_features(joints: torch.Tensor, duration: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """joints (..., R, J, 3) of a time-normalised repetition, duration (...,) seconds -> standardised
    features (..., R, 3J + 1): :func:`to_features` then log(duration) on every frame."""
    f = to_features(joints)                                                     # (..., R, 3J)
    d = torch.log(duration.clamp(min=1e-3)).to(f.dtype)[..., None, None].expand(*f.shape[:-1], 1)
    return (torch.cat([f, d], dim=-1) - mean) / std


def rep_joints(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`rep_features`: (..., R, 3J + 1) -> joints (..., R, J, 3), duration (...,) seconds
    (the mean of the log-duration channel over frames)."""
    f = x * std + mean
    return from_features(f[..., :-1]), torch.exp(f[..., -1].mean(-1))


def sinusoid(pos: torch.Tensor, dim: int) -> torch.Tensor:
    """pos (...,) float -> (..., dim) sinusoidal embedding."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=pos.device) / half)
    a = pos.float()[..., None] * freq
    out = torch.cat([a.sin(), a.cos()], dim=-1)
    return Fn.pad(out, (0, dim - 2 * half))


_PELVIS = COMMON.index("pelvis")


_OTHERS = tuple(j for j in range(len(COMMON)) if j != _PELVIS)


def joints_to_features(joints: np.ndarray | torch.Tensor):
    """joints (..., T, J, 3) -> features (..., T, 3J): pelvis position, then the other joints relative
    to the pelvis (joint order of the skeleton without the pelvis)."""
    root = joints[..., _PELVIS, :]                                  # (..., T, 3)
    rel = joints[..., list(_OTHERS), :] - root[..., None, :]        # (..., T, J-1, 3)
    if isinstance(joints, torch.Tensor):
        return torch.cat([root, rel.flatten(-2)], dim=-1)
    return np.concatenate([root, rel.reshape(*rel.shape[:-2], -1)], axis=-1).astype(np.float32)


def features_to_joints(feats: np.ndarray | torch.Tensor):
    """Inverse of :func:`joints_to_features`: (..., T, 3J) -> (..., T, J, 3)."""
    root = feats[..., :3]
    rel = feats[..., 3:].reshape(*feats.shape[:-1], len(_OTHERS), 3)
    absolute = rel + root[..., None, :]
    J = len(_OTHERS) + 1
    if isinstance(feats, torch.Tensor):
        out = torch.empty(*feats.shape[:-1], J, 3, dtype=feats.dtype, device=feats.device)
    else:
        out = np.empty((*feats.shape[:-1], J, 3), dtype=np.float32)
    out[..., _PELVIS, :] = root
    out[..., list(_OTHERS), :] = absolute
    return out


def sinusoidal(T: int, d: int, device: torch.device | None = None) -> torch.Tensor:
    """(T, d) sinusoidal position encodings (Vaswani et al.) for t = 0..T-1."""
    pos = torch.arange(T, dtype=torch.float32, device=device)[:, None]
    i = torch.arange(0, d, 2, dtype=torch.float32, device=device)
    freq = torch.exp(-math.log(10000.0) * i / d)
    pe = torch.zeros(T, d, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return pe


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def rep_item_features(joints: np.ndarray, duration: float) -> np.ndarray:
    """A time-normalised canonical repetition (R, J, 3) + its duration (s) -> raw features (R, F):
    :func:`joints_to_features` and log(duration) on every frame."""
    f = joints_to_features(joints)
    return np.concatenate([f, np.full((len(f), 1), np.log(max(duration, 1e-3)), np.float32)], axis=1)


def features_to_rep(feats: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Raw features (N, R, F) -> canonical joints (N, R, J, 3), durations (N,) seconds."""
    return (features_to_joints(feats[..., :-1]).numpy().astype(np.float32),
            torch.exp(feats[..., -1].mean(-1)).numpy())


# ==============================================================================================
# Canonical window frame, transforms
# ==============================================================================================
def canonical_transform(x: torch.Tensor, mask: torch.Tensor, skeleton: Skeleton) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-window transform estimated from observed joints only.

    x (B, T, J, D), mask (B, T, J) bool.  Returns (centre (B, D), rot (B, D, D)): the canonical window
    is ``(x - centre) @ rot.T``.  Centre = mean observed root position (fallback: mean of all observed
    joints); in 3D ``rot`` turns the body about +Y so the mean left-minus-right vector points to +X
    (facing +Z); in 2D ``rot`` is the identity.
    """
    B, T, J, D = x.shape
    m = mask.to(x.dtype)
    xz = torch.where(mask[..., None], x, torch.zeros_like(x))
    root = skeleton.root
    w_root = m[:, :, root].sum(1)  # (B,)
    c_root = xz[:, :, root].sum(1) / w_root.clamp_min(1)[:, None]
    w_all = m.sum((1, 2))
    c_all = xz.sum((1, 2)) / w_all.clamp_min(1)[:, None]
    centre = torch.where((w_root > 0)[:, None], c_root, c_all)
    eye = torch.eye(D, dtype=x.dtype, device=x.device).expand(B, D, D).clone()
    if D == 3 and skeleton.lr_pairs:
        L = torch.tensor([a for a, _ in skeleton.lr_pairs], device=x.device)
        R = torch.tensor([b for _, b in skeleton.lr_pairs], device=x.device)
        both = (mask[:, :, L] & mask[:, :, R]).to(x.dtype)[..., None]  # (B, T, P, 1)
        across = ((xz[:, :, L] - xz[:, :, R]) * both).sum((1, 2))  # (B, 3)
        ax, az = across[:, 0], across[:, 2]
        ok = torch.hypot(ax, az) > 1e-6
        ang = torch.where(ok, torch.atan2(az, ax), torch.zeros_like(ax))
        c, s = torch.cos(ang), torch.sin(ang)
        rot = eye.clone()
        # x' = x c + z s ; z' = -x s + z c  (as Motion.rotate_y)
        rot[:, 0, 0], rot[:, 0, 2], rot[:, 2, 0], rot[:, 2, 2] = c, s, -s, c
        return centre, rot
    return centre, eye


def apply_transform(x: torch.Tensor, centre: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """(B, T, J, D) -> canonical (B, T, J, D)."""
    return torch.einsum("bij,btkj->btki", rot, x - centre[:, None, None, :])


def invert_transform(y: torch.Tensor, centre: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """canonical (B, T, J, D) -> original frame."""
    return torch.einsum("bji,btkj->btki", rot, y) + centre[:, None, None, :]
