"""Diffusion noise schedule and samplers (no learned weights).

* :class:`Schedule`: cosine schedule (Nichol & Dhariwal 2021), ``q_sample`` (forward noising) and the
  quantities the samplers need.  ``alpha_bar[t]`` for t = 0..T-1; t = 0 is the least noisy step.
* :func:`sample`: one loop for DDIM (``eta=0``, deterministic) and DDPM (``eta=1``: ancestral sampling;
  with all T steps it is exactly the DDPM posterior ``q(x_{t-1} | x_t, x0)``), with any number of steps
  (evenly spaced sub-sequence of the T training steps).
* The denoiser predicts the clean sample: ``denoise(x_t (B, ...), t (B,) long) -> x0 (B, ...)``.
* :func:`guided`: classifier-free guidance as ONE batched forward of conditioned + unconditioned rows.
* Masked generation (in-betweening, body-part editing): ``known`` + ``mask`` (True = keep); after every
  step the kept entries are replaced by ``known`` noised to the next noise level, and at the end by
  ``known`` itself, so kept entries are returned exactly.

All randomness comes from the ``torch.Generator`` passed in.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

__all__ = ["Schedule", "cosine_alpha_bar", "timesteps_for", "sample", "ddim_sample", "ddpm_sample", "guided",
           "Denoiser"]

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t, t) -> x0


def cosine_alpha_bar(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """(T,) float64 cumulative products alpha_bar_t = f(t+1)/f(0), f(u) = cos^2(((u/T + s)/(1 + s)) pi/2),
    with betas clipped at ``max_beta`` (as in improved DDPM)."""
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    u = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
    return torch.cumprod(1 - betas, dim=0)


class Schedule:
    """Cosine noise schedule with ``T`` steps."""

    def __init__(self, T: int = 1000, s: float = 0.008):
        self.T = int(T)
        self.alpha_bar = cosine_alpha_bar(self.T, s)                     # (T,) float64
        prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bar[:-1]])
        self.betas = 1 - self.alpha_bar / prev                             # (T,)

    def _ab(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """alpha_bar at integer steps t (B,), shaped to broadcast against ``like`` (B, ...); t = -1 -> 1."""
        t = t.long()
        table = self.alpha_bar if self.alpha_bar.device == t.device else self.alpha_bar.to(t.device)
        ab = torch.where(t >= 0, table[t.clamp(min=0)], torch.ones_like(table[0:1]))
        return ab.to(like.dtype).reshape(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) noise;  x0 (B, ...), t (B,) long, noise like x0."""
        ab = self._ab(t, x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def sample_t(self, batch: int, generator: torch.Generator | None = None, device: str | torch.device = "cpu") -> torch.Tensor:
        return torch.randint(0, self.T, (batch,), generator=generator, device=device)


def timesteps_for(T: int, steps: int) -> list[int]:
    """``steps`` training steps, evenly spaced, descending from T-1 to 0 (both included when steps > 1)."""
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be in [1, {T}], got {steps}")
    if steps == 1:
        return [T - 1]
    ts = torch.linspace(T - 1, 0, steps).round().long().tolist()
    out: list[int] = []
    for t in ts:  # unique, descending
        if not out or t < out[-1]:
            out.append(int(t))
    return out


def _noise(shape: tuple[int, ...], generator: "torch.Generator | Sequence[torch.Generator] | None",
           dtype: torch.dtype, device) -> torch.Tensor:
    """Gaussian noise of ``shape``; ``generator`` may be one generator or one per batch row (row i drawn from
    generator i only, so a row's noise does not depend on the other rows: sample i of a batch seeded with
    s + i equals the single sample seeded with s + i)."""
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {shape[0]}")
        return torch.cat([torch.randn((1,) + tuple(shape[1:]), generator=g, dtype=dtype, device=device)
                          for g in generator])
    return torch.randn(shape, generator=generator, dtype=dtype, device=device)


def sample(denoise: Denoiser, shape: tuple[int, ...], schedule: Schedule, steps: int,
           generator: torch.Generator | None = None, eta: float = 0.0,
           known: torch.Tensor | None = None, mask: torch.Tensor | None = None,
           x_T: torch.Tensor | None = None, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
           progress: Callable[[float, str], None] | None = None, timesteps: Sequence[int] | None = None,
           on_step: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Generalised DDIM sampler (eta=0: DDIM, eta=1: DDPM ancestral) over ``steps`` evenly spaced steps
    (or the descending training steps ``timesteps``, when given).

    shape: (B, ...) of the sample.  known/mask: same shape (mask broadcastable, True = keep ``known``).
    ``on_step(t, x_t)`` sees the state before each denoising step (e.g. to record a trajectory).
    Returns x0 (B, ...)."""
    if timesteps is not None:
        ts = [int(t) for t in timesteps]
        if not ts or any(not 0 <= t < schedule.T for t in ts) or any(a <= b for a, b in zip(ts, ts[1:])):
            raise ValueError(f"timesteps must be strictly descending steps in [0, {schedule.T}), got {ts[:8]}")
    else:
        ts = timesteps_for(schedule.T, steps)
    B = shape[0]
    x = x_T.to(dtype) if x_T is not None else _noise(shape, generator, dtype, device)
    if mask is not None:
        if known is None:
            raise ValueError("a mask needs the known values")
        mask = mask.to(torch.bool).expand(shape)
        known = known.to(dtype).expand(shape)
        x = torch.where(mask, schedule.q_sample(known, torch.full((B,), ts[0], dtype=torch.long),
                                                _noise(shape, generator, dtype, device)), x)
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        tt = torch.full((B,), t, dtype=torch.long, device=device)
        if on_step is not None:
            on_step(t, x)
        x0 = denoise(x, tt)
        ab_t = float(schedule.alpha_bar[t])
        ab_p = float(schedule.alpha_bar[t_prev]) if t_prev >= 0 else 1.0
        eps = (x - math.sqrt(ab_t) * x0) / math.sqrt(max(1 - ab_t, 1e-12))
        sigma = eta * math.sqrt(max((1 - ab_p) / max(1 - ab_t, 1e-12) * (1 - ab_t / ab_p), 0.0))
        dir_coef = math.sqrt(max(1 - ab_p - sigma ** 2, 0.0))
        x = math.sqrt(ab_p) * x0 + dir_coef * eps
        if sigma > 0:
            x = x + sigma * _noise(shape, generator, dtype, device)
        if mask is not None:
            if t_prev >= 0:
                kn = schedule.q_sample(known, torch.full((B,), t_prev, dtype=torch.long),
                                       _noise(shape, generator, dtype, device))
            else:
                kn = known
            x = torch.where(mask, kn, x)
        if progress is not None:
            progress((i + 1) / len(ts), f"denoising step {i + 1}/{len(ts)}")
    return x


def ddim_sample(denoise: Denoiser, shape: tuple[int, ...], schedule: Schedule, steps: int,
                generator: torch.Generator | None = None, **kw) -> torch.Tensor:
    return sample(denoise, shape, schedule, steps, generator, eta=0.0, **kw)


def ddpm_sample(denoise: Denoiser, shape: tuple[int, ...], schedule: Schedule, steps: int | None = None,
                generator: torch.Generator | None = None, **kw) -> torch.Tensor:
    """Ancestral DDPM sampling; ``steps=None`` uses all T steps (the exact DDPM posterior)."""
    return sample(denoise, shape, schedule, steps or schedule.T, generator, eta=1.0, **kw)


def guided(model: Callable[..., torch.Tensor], scale: "float | torch.Tensor",
           part_scale: "float | torch.Tensor" = 0.0, plain: slice | None = None) -> Denoiser:
    """Classifier-free guidance.  ``model(x (N, ...), t (N,), drop (N,) bool) -> x0`` where ``drop`` rows
    ignore every condition.  Returns a denoiser computing uncond + scale (cond - uncond) with ONE batched
    forward of the conditioned and unconditioned rows (scale 1 = plain conditional and scale 0 = plain
    unconditional: one forward of B rows).

    ``part_scale`` > 0 adds a second guidance term for one condition (compositional guidance, Liu et al.
    2022): ``+ part_scale (cond - cond_without_part)``, where the model is called as
    ``model(x, t, drop, drop_part)`` and ``drop_part`` rows ignore that one condition only (e.g. the
    requested correct/incorrect execution).  Still one batched forward, of 3B rows.

    Either scale may also be a (B,) tensor: one scale per batch row (distillation data: every row is
    generated with its own guidance; rows with part scale 0 are unaffected by the third forward).

    ``plain`` (a slice of the last dimension) selects features taken from the conditional prediction
    as they are, without the extrapolation: guidance sharpens what a condition asks for, but on a
    scalar such as the diffusion model's log-duration it only pushes the value past the conditional
    distribution (at scale 2.5 a 1.6 s IntelliRehabDS repetition came out 3.4 s long).  No extra
    forward: the conditional rows are already computed.  At scale 0 (the unconditional model) they are
    the unconditional prediction, like every other feature."""
    per_row = isinstance(scale, torch.Tensor) or isinstance(part_scale, torch.Tensor)
    if per_row:
        scale = torch.as_tensor(scale, dtype=torch.float32)
        part_scale = torch.as_tensor(part_scale, dtype=torch.float32)
        if not bool(torch.isfinite(scale).all()) or not bool(torch.isfinite(part_scale).all()):
            raise ValueError("guidance scales must be finite")
        return _guided_rows(model, scale, part_scale, plain)
    scale = float(scale)
    part_scale = float(part_scale)
    if not math.isfinite(scale) or not math.isfinite(part_scale):
        raise ValueError(f"guidance scales must be finite, got {scale}, {part_scale}")

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        dev = x.device
        if part_scale != 0.0:
            z, o = torch.zeros(B, dtype=torch.bool), torch.ones(B, dtype=torch.bool)
            drop = torch.cat([z, o, z]).to(dev)
            drop_part = torch.cat([z, z, o]).to(dev)
            out = model(torch.cat([x, x, x]), torch.cat([t, t, t]), drop, drop_part)
            cond, uncond, partial = out[:B], out[B:2 * B], out[2 * B:]
            res = uncond + scale * (cond - uncond) + part_scale * (cond - partial)
        elif scale == 1.0 or scale == 0.0:
            return model(x, t, torch.full((B,), scale == 0.0, dtype=torch.bool, device=dev))
        else:
            drop = torch.cat([torch.zeros(B, dtype=torch.bool), torch.ones(B, dtype=torch.bool)]).to(dev)
            out = model(torch.cat([x, x]), torch.cat([t, t]), drop)
            cond, uncond = out[:B], out[B:]
            res = uncond + scale * (cond - uncond)
        if plain is not None:
            res[..., plain] = (uncond if scale == 0.0 else cond)[..., plain]
        return res

    return denoise


def _guided_rows(model: Callable[..., torch.Tensor], scale: torch.Tensor, part_scale: torch.Tensor,
                 plain: slice | None = None) -> Denoiser:
    """:func:`guided` with per-row scales ``scale`` and ``part_scale`` ((B,) or scalars)."""
    with_part = bool((part_scale != 0).any())

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        dev = x.device
        shape = (-1,) + (1,) * (x.dim() - 1)
        s = scale.to(dev, x.dtype).expand(B).reshape(shape)
        z, o = torch.zeros(B, dtype=torch.bool), torch.ones(B, dtype=torch.bool)
        if with_part:
            ps = part_scale.to(dev, x.dtype).expand(B).reshape(shape)
            out = model(torch.cat([x, x, x]), torch.cat([t, t, t]), torch.cat([z, o, z]).to(dev),
                        torch.cat([z, z, o]).to(dev))
            cond, uncond, partial = out[:B], out[B:2 * B], out[2 * B:]
            res = uncond + s * (cond - uncond) + ps * (cond - partial)
        else:
            out = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([z, o]).to(dev))
            cond, uncond = out[:B], out[B:]
            res = uncond + s * (cond - uncond)
        if plain is not None:
            res[..., plain] = torch.where(s == 0, uncond, cond)[..., plain]
        return res

    return denoise
