"""Paths between latent codes: evenly spaced weights, linear and spherical interpolation (torch, no weights)."""

from __future__ import annotations

import torch


def weights(steps: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(S,) evenly spaced weights from 0 to 1 inclusive; ``steps`` >= 2."""
    if int(steps) < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {steps}")
    return torch.linspace(0.0, 1.0, int(steps), dtype=dtype)


def _expand_t(t: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=a.dtype)
    if t.ndim != 1:
        raise ValueError(f"interpolation weights must be 1-D, got shape {tuple(t.shape)}")
    return t.reshape((-1,) + (1,) * a.ndim)  # (S, 1, ..., 1)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear path: a (..., D), b (..., D), t (S,) -> (S, ..., D) = (1 - t) a + t b."""
    if a.shape != b.shape:
        raise ValueError(f"endpoints differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    tt = _expand_t(t, a)
    out = (1.0 - tt) * a + tt * b
    # exact endpoints (no rounding at t = 0 / 1)
    out = torch.where(tt == 0, a.expand_as(out), out)
    return torch.where(tt == 1, b.expand_as(out), out)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Spherical path: a (..., D), b (..., D), t (S,) -> (S, ..., D).

    Direction follows the great circle from a/|a| to b/|b|; the norm goes linearly from |a| to |b|.
    Nearly parallel endpoints fall back to a normalised linear path of the directions."""
    if a.shape != b.shape:
        raise ValueError(f"endpoints differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    tt = _expand_t(t, a)
    na = a.norm(dim=-1, keepdim=True)  # (..., 1)
    nb = b.norm(dim=-1, keepdim=True)
    ua = a / na.clamp_min(eps)
    ub = b / nb.clamp_min(eps)
    cos = (ua * ub).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)  # (..., 1)
    sin = torch.sin(omega)
    small = sin < 1e-4
    safe_sin = torch.where(small, torch.ones_like(sin), sin)
    wa = torch.where(small, 1.0 - tt, torch.sin((1.0 - tt) * omega) / safe_sin)
    wb = torch.where(small, tt, torch.sin(tt * omega) / safe_sin)
    direction = wa * ua + wb * ub
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(eps)
    out = direction * ((1.0 - tt) * na + tt * nb)
    out = torch.where(tt == 0, a.expand_as(out), out)
    return torch.where(tt == 1, b.expand_as(out), out)


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int, spherical: bool = False) -> torch.Tensor:
    """``steps`` evenly spaced points from a to b (inclusive): (S, ..., D)."""
    t = weights(steps, a.dtype)
    return slerp(a, b, t) if spherical else lerp(a, b, t)
