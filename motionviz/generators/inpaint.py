"""Motion inpainting / denoising with a trained AE-GAN (no UI needed), plus the interpolation baseline.

``inpaint(model, joints, mask)`` completes a (T, J, D) sequence whose missing joints are given by
``mask`` (True = observed) and/or NaN values:

1. the whole sequence is scaled to the training body size (ratio of observed bone lengths to the
   model's ``bone_ref``);
2. it is cut into windows of F frames every ``shift`` frames, the last window anchored to the end
   (a sequence shorter than F is padded with unobserved frames);
3. each window is canonicalised (root-centred, facing +Z in 3D) from its observed joints, and its
   latent code is initialised by the encoder;
4. all windows' codes are optimised together (one batch) with Adam for ``steps`` steps on
   ``gp * MPJPE + gs * MPJSE - gd * min(D, D_real)`` computed on observed joints only (MPJPE and MPJSE
   in model units), where the generated window is first aligned onto the observed input by a
   differentiable weighted Procrustes (translation, scale, rotation: Umeyama via SVD in torch), at
   every step and at the end.  The critic reward is capped at the mean critic score of real windows
   (``critic_ref``, calibrated at training time) so the search cannot exploit the critic;
5. each output frame is chosen among the windows covering it by its MPJPE on that frame's observed
   joints, or the candidates are averaged (``average=True``); observed joints keep their input
   values unless ``keep_observed=False`` (denoising), and :func:`blend_gaps` joins every filled
   stretch continuously to the observed values at its ends (``blend=False``: raw generator output).

Settings (:data:`PRESETS`): ``thesis`` = Adam lr 1.0, beta1 0.8, weights 10 / 5 / 0.5, per-frame
choice (the keyword defaults of :func:`inpaint`); ``tuned`` (the default of the CLI, app and
evaluation) = lr 0.01, weights 10 / 5 / 0.05, windows averaged, chosen on the validation split.

``baseline(joints, mask)``: per-joint linear interpolation over time + Savitzky-Golay smoothing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from scipy.signal import savgol_filter

from ..core.checkpoint import config_from_json, default_checkpoint_dir, load_checkpoint, load_strict
from ..core.errors import CheckpointError, UserError
from ..core.representation import check_mask, window_starts
from ..core.representation_torch import apply_transform, canonical_transform, invert_transform
from ..models.aegan import AEGAN, KIND, AEGANNet, Config
from . import registry

__all__ = ["InpaintResult", "inpaint", "baseline", "procrustes",
           "hold_last_observation", "corrupt", "blend_gaps", "load_model",
           "PRESETS", "preset"]

ProgressFn = Callable[[float, str], None]


# ==============================================================================================
# Differentiable Procrustes
# ==============================================================================================
def procrustes(Y: torch.Tensor, X: torch.Tensor, w: torch.Tensor | None = None, scale: bool = True,
               scale_range: tuple[float, float] = (0.0, math.inf)) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Align point sets Y onto X with a similarity transform (weighted Umeyama / Kabsch).

    Y, X (N, P, D); w (N, P) non-negative weights (None = all 1).  Finds s, R (proper rotation), t
    minimising ``sum_p w_p |s R y_p + t - x_p|^2`` per batch item and returns
    (``s R Y + t`` (N, P, D), {"s": (N,), "R": (N, D, D), "t": (N, D)}).  Differentiable in Y and X
    (the SVD runs in float64).  Items with fewer than D + 1 weighted points get translation only.
    """
    N, P, D = Y.shape
    if w is None:
        w = torch.ones(N, P, dtype=Y.dtype, device=Y.device)
    w = w.to(torch.float64)
    Yd, Xd = Y.to(torch.float64), X.to(torch.float64)
    wsum = w.sum(1).clamp_min(1e-12)  # (N,)
    mu_y = (w[..., None] * Yd).sum(1) / wsum[:, None]
    mu_x = (w[..., None] * Xd).sum(1) / wsum[:, None]
    yc, xc = Yd - mu_y[:, None], Xd - mu_x[:, None]
    cov = torch.einsum("np,npi,npj->nij", w, xc, yc) / wsum[:, None, None]  # (N, D, D) = E[x y^T]
    var_y = (w * (yc ** 2).sum(-1)).sum(1) / wsum
    # Tiny deterministic jitter keeps singular values distinct (stable SVD gradients).
    jitter = 1e-9 * torch.diag(torch.arange(1, D + 1, dtype=torch.float64, device=Y.device))
    U, S, Vh = torch.linalg.svd(cov + jitter)
    d = torch.sign(torch.linalg.det(U @ Vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    E = torch.ones(N, D, dtype=torch.float64, device=Y.device)
    E[:, -1] = d
    R = U @ (E[..., None] * Vh)
    if scale:
        s = (S * E).sum(1) / var_y.clamp_min(1e-12)
        s = s.clamp(*scale_range)
    else:
        s = torch.ones(N, dtype=torch.float64, device=Y.device)
    enough = (w > 0).sum(1) >= D + 1
    eye = torch.eye(D, dtype=torch.float64, device=Y.device).expand(N, D, D)
    R = torch.where(enough[:, None, None], R, eye)
    s = torch.where(enough, s, torch.ones_like(s))
    t = mu_x - s[:, None] * torch.einsum("nij,nj->ni", R, mu_y)
    out = s[:, None, None] * torch.einsum("nij,npj->npi", R, Yd) + t[:, None]
    return out.to(Y.dtype), {"s": s.to(Y.dtype), "R": R.to(Y.dtype), "t": t.to(Y.dtype)}


def hold_last_observation(joints: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill missing values with the joint's last observed value (the first observed one before it is
    seen; a joint never observed gets the mean of the frame's observed joints).  (T, J, D)."""
    x = np.array(joints, dtype=np.float64)
    T, J, D = x.shape
    out = np.empty_like(x)
    for j in range(J):
        obs = np.flatnonzero(mask[:, j])
        if len(obs) == 0:
            out[:, j] = np.nan
            continue
        idx = np.searchsorted(obs, np.arange(T), side="right") - 1
        idx = np.where(idx < 0, 0, idx)
        out[:, j] = x[obs[idx], j]
    for t in range(T):
        bad = ~np.isfinite(out[t]).all(-1)
        if bad.any():
            good = ~bad
            fill = out[t, good].mean(0) if good.any() else np.zeros(D)
            out[t, bad] = fill
    return out.astype(np.float32)


def baseline(joints: np.ndarray, mask: np.ndarray | None = None, window: int = 9, polyorder: int = 2,
             keep_observed: bool = True) -> np.ndarray:
    """Per-joint, per-coordinate linear interpolation over time of the missing values (held constant
    before the first / after the last observation), then Savitzky-Golay smoothing over time
    (``scipy.signal.savgol_filter``; ``window`` frames, ``polyorder``).  With ``keep_observed`` the
    observed values are put back after smoothing.  (T, J, D) -> (T, J, D)."""
    x = np.asarray(joints, dtype=np.float64)
    observed = check_mask(x, mask)
    T, J, D = x.shape
    out = np.empty_like(x)
    t = np.arange(T)
    for j in range(J):
        obs = observed[:, j]
        if not obs.any():
            out[:, j] = np.nan
            continue
        for c in range(D):
            out[:, j, c] = np.interp(t, t[obs], x[obs, j, c])
    # joints never observed: mean of the frame's other joints (no information at all)
    never = ~observed.any(0)
    if never.any() and (~never).any():
        out[:, never] = out[:, ~never].mean(1, keepdims=True)
    elif never.all():
        raise UserError("nothing is observed: every joint of every frame is missing")
    win = min(window, T if T % 2 == 1 else T - 1)
    if win > polyorder:
        out = savgol_filter(out, win, polyorder, axis=0, mode="interp")
    if keep_observed:
        out[observed] = x[observed]
    return out.astype(np.float32)


# ==============================================================================================
# Corruption (evaluation / UI)
# ==============================================================================================
def corrupt(joints: np.ndarray, rng: np.random.Generator, joint_rate: float = 0.0, frame_rate: float = 0.0,
            noise: float = 0.0, hide: tuple[int, ...] = (), mode: str = "segments",
            segment: tuple[int, int] = (5, 30)) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt a clean (T, J, D) sequence.  Returns (corrupted joints with NaN where missing, observed
    mask (T, J)).

    * ``joint_rate``: fraction of joint positions missing.  ``mode="scattered"``: every (frame, joint)
      independently; ``mode="segments"``: occlusion-like gaps, each joint loses contiguous runs of
      ``segment`` frames until about ``joint_rate`` of its frames are gone.
    * ``frame_rate``: fraction of whole frames missing, in runs of 1-10 frames.
    * ``noise``: Gaussian noise of this standard deviation (metres) on every coordinate.
    * ``hide``: joint indices missing in every frame (e.g. a limb).
    At least one joint stays observed.
    """
    x = np.array(joints, dtype=np.float32)
    T, J, D = x.shape
    m = np.ones((T, J), dtype=bool)
    if joint_rate > 0:
        if mode == "scattered":
            m &= rng.random((T, J)) >= joint_rate
        elif mode == "segments":
            for j in range(J):
                target = int(round(joint_rate * T))
                lost = 0
                tries = 0
                while lost < target and tries < 1000:
                    tries += 1
                    L = int(rng.integers(segment[0], segment[1] + 1))
                    L = min(L, target - lost) if target - lost >= segment[0] else min(L, target - lost)
                    s = int(rng.integers(0, max(1, T - L + 1)))
                    seg = m[s:s + L, j]
                    lost += int(seg.sum())
                    m[s:s + L, j] = False
        else:
            raise UserError(f"unknown corruption mode {mode!r}")
    if frame_rate > 0:
        target = int(round(frame_rate * T))
        lost = np.zeros(T, dtype=bool)
        tries = 0
        while lost.sum() < target and tries < 10000:
            tries += 1
            L = int(rng.integers(1, 11))
            s = int(rng.integers(0, max(1, T - L + 1)))
            lost[s:s + min(L, target - int(lost.sum()))] = True
        m &= ~lost[:, None]
    if hide:
        m[:, list(hide)] = False
    if not m.any():
        m[0, 0] = True
    if noise > 0:
        x = x + rng.normal(0.0, noise, size=x.shape).astype(np.float32)
    x[~m] = np.nan
    return x, m


# ==============================================================================================
# Inpainting
# ==============================================================================================
@dataclass
class InpaintResult:
    joints: np.ndarray                 # (T, J, D) completed sequence
    observed: np.ndarray               # (T, J) mask used
    candidates: np.ndarray             # (N, F, J, D) aligned windows in the input frame
    starts: list[int]                  # window start frames
    loss_history: list[float] = field(default_factory=list)
    seconds: float = 0.0
    scale: float = 1.0
    raw: np.ndarray | None = None      # (T, J, D) output before blend_gaps (observed joints kept)
    selected: np.ndarray | None = None  # (T, J, D) final output with per-frame candidate selection
    averaged: np.ndarray | None = None  # (T, J, D) final output with averaged candidates


def _bone_scale(x: np.ndarray, observed: np.ndarray, net: AEGANNet) -> float:
    """Global size of the input relative to the training bodies: median over bones seen at least
    once of (median observed length / reference length)."""
    ratios = []
    ref = net.bone_ref.numpy()
    for b, (p, c) in enumerate(net.skeleton.bones):
        ok = observed[:, p] & observed[:, c]
        if ok.any() and ref[b] > 1e-6:
            L = np.linalg.norm(x[ok, c] - x[ok, p], axis=-1)
            ratios.append(np.median(L) / ref[b])
    if not ratios:
        return 1.0
    s = float(np.median(ratios))
    return s if np.isfinite(s) and s > 1e-6 else 1.0


def _select_net(model: AEGAN | AEGANNet, dims: int) -> AEGANNet:
    if isinstance(model, AEGANNet):
        if model.dims != dims:
            raise UserError(f"this AE-GAN works on {model.dims}D joints, the input is {dims}D")
        return model
    return model.net(dims)


def _check_inputs(model: AEGAN | AEGANNet, x: np.ndarray, observed: np.ndarray, window: int | None, shift: int,
                  steps: int, dims: int | None) -> AEGANNet:
    """Validate an inpainting request on the (T, J, D) input ``x`` with its (T, J) ``observed`` mask and
    return the AE-GAN network for its dimension (a :class:`UserError` names the first problem)."""
    T, J, D = x.shape
    if dims is not None and int(dims) != D:
        raise UserError(f"the input is {D}D but a {dims}D model was asked for")
    net = _select_net(model, D)
    F = net.cfg.frames
    if J != len(net.skeleton):
        raise UserError(f"the AE-GAN works on the {net.skeleton.name} skeleton ({len(net.skeleton)} joints); "
                        f"the input has {J} joints")
    window = F if window is None else int(window)
    if window != F:
        raise UserError(f"this AE-GAN was trained on windows of {F} frames; window must be {F}, got {window}")
    if not 1 <= int(shift) <= F:
        raise UserError(f"shift must be between 1 and {F} frames, got {shift}")
    if not 0 <= int(steps) <= 5000:
        raise UserError(f"steps must be between 0 and 5000, got {steps}")
    if not observed.any():
        raise UserError("nothing is observed: every joint of every frame is missing")
    if T < 1:
        raise UserError("the motion has no frames")
    return net


def _cut_windows(xs: np.ndarray, observed: np.ndarray, starts: list[int], F: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut the (T, J, D) sequence ``xs`` and its (T, J) ``observed`` mask into windows of ``F`` frames
    at ``starts`` -> ((N, F, J, D) float32 windows, (N, F, J) bool masks); frames past the end
    (T < F) are unobserved zero padding."""
    T, J, D = xs.shape
    N = len(starts)
    win = np.zeros((N, F, J, D), dtype=np.float32)
    wm = np.zeros((N, F, J), dtype=bool)
    for i, s in enumerate(starts):
        n = min(F, T - s)
        win[i, :n] = xs[s:s + n]
        wm[i, :n] = observed[s:s + n]
    return win, wm


def _align_windows(y: torch.Tensor, target: torch.Tensor, flat_w: torch.Tensor) -> torch.Tensor:
    """Weighted Procrustes of every generated window onto its target: ``y`` and ``target`` (N, F, J, D),
    ``flat_w`` (N, F * J) joint weights -> aligned ``y`` (N, F, J, D), scale limited to [0.5, 2]."""
    N, F, J, D = target.shape
    ya, _ = procrustes(y.reshape(N, F * J, D), target.reshape(N, F * J, D), flat_w, scale_range=(0.5, 2.0))
    return ya.reshape(N, F, J, D)


def _critic_cap(net: AEGANNet, z0: torch.Tensor, critic_cap: str) -> torch.Tensor:
    """Per-window cap (N,) on the critic's reward for the encoder's start codes ``z0`` (N, latent).

    The critic's reward is capped at the mean score of real windows (calibrated at training time): a
    window "as real as the data" gains nothing more, so the latent search cannot run off to regions
    the critic over-rates.  Uncalibrated model: capped at the encoder's start."""
    N = z0.shape[0]
    ref = float(net.critic_ref[0])
    if critic_cap == "real" and math.isfinite(ref):
        return torch.full((N,), ref)
    if critic_cap == "none":
        return torch.full((N,), math.inf)
    return net.score(net.decode(z0))


def _window_objective(net: AEGANNet, y: torch.Tensor, target: torch.Tensor, wgt: torch.Tensor,
                      flat_w: torch.Tensor, d_cap: torch.Tensor, weights: tuple[float, float, float],
                      align_during: bool) -> torch.Tensor:
    """Summed inpainting loss of the decoded windows ``y`` (N, F, J, D) against ``target`` (N, F, J, D)
    with (N, F, J) observation weights ``wgt`` (``flat_w`` = the same as (N, F * J)): ``gp * MPJPE +
    gs * MPJSE - gd * min(critic, d_cap)`` per window, windows summed (they are independent)."""
    gp, gs, gd = weights
    N = target.shape[0]
    ya = _align_windows(y, target, flat_w) if align_during else y
    err = torch.linalg.vector_norm(ya - target, dim=-1)                          # (N, F, J)
    l_p = (err * wgt).sum((1, 2)) / wgt.sum((1, 2)).clamp_min(1)
    v_err = torch.linalg.vector_norm((ya[:, 1:] - ya[:, :-1]) - (target[:, 1:] - target[:, :-1]), dim=-1)
    wv = wgt[:, 1:] * wgt[:, :-1]
    l_s = (v_err * wv).sum((1, 2)) / wv.sum((1, 2)).clamp_min(1)
    l_d = torch.minimum(net.score(y), d_cap) if gd else torch.zeros(N)
    return (gp * l_p + gs * l_s - gd * l_d).sum()  # windows are independent: sum


def _optimise_codes(net: AEGANNet, target: torch.Tensor, mw: torch.Tensor, flat_w: torch.Tensor, *,
                    steps: int, lr: float, beta1: float, weights: tuple[float, float, float],
                    align_during: bool, critic_cap: str, latent_radius: float | None,
                    progress: ProgressFn | None) -> tuple[torch.Tensor, list[float]]:
    """Latent search: encode the canonical ``target`` windows (N, F, J, D, model units) with their
    (N, F, J) masks ``mw`` and optimise all N codes together with Adam for ``steps`` steps ->
    (optimised codes (N, latent), per-window loss after every step)."""
    N = target.shape[0]
    wgt = mw.to(torch.float32)
    history: list[float] = []
    with torch.enable_grad():
        with torch.no_grad():
            z0 = net.encode(target, mw)
            d_cap = _critic_cap(net, z0, critic_cap)
            radius = None if latent_radius is None else float(latent_radius) * math.sqrt(net.cfg.latent)
        z = z0.clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr, betas=(beta1, 0.999))
        for p in net.parameters():
            p.requires_grad_(False)
        for step in range(int(steps)):
            opt.zero_grad(set_to_none=True)
            loss = _window_objective(net, net.decode(z), target, wgt, flat_w, d_cap, weights, align_during)
            loss.backward()
            z.grad = torch.nan_to_num(z.grad, nan=0.0, posinf=0.0, neginf=0.0)
            opt.step()
            if radius is not None:
                with torch.no_grad():
                    norm = z.norm(dim=1, keepdim=True).clamp_min(1e-12)
                    z.mul_(torch.clamp(radius / norm, max=1.0))
            history.append(float(loss.detach()) / N)
            if progress is not None and (step % 5 == 0 or step == steps - 1):
                progress((step + 1) / max(1, steps), f"inpainting: step {step + 1}/{steps}")
    return z, history


def _combine_candidates(cand: np.ndarray, x: np.ndarray, observed: np.ndarray, wm: np.ndarray,
                        starts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Combine the windows' candidates (N, F, J, D, input frame) frame by frame over the (T, J, D)
    input ``x`` with its (T, J) ``observed`` mask and the (N, F, J) window masks ``wm`` ->
    ((T, J, D) per-frame choice by MPJPE on the observed joints, (T, J D) average), float64.  A frame
    with nothing observed takes the candidate of the window that fits its own observations best."""
    T, J, D = x.shape
    N, F = cand.shape[:2]
    out = np.zeros((T, J, D), dtype=np.float64)
    best = np.full(T, np.inf)
    acc = np.zeros((T, J, D), dtype=np.float64)
    cnt = np.zeros(T)
    win_err = np.full(N, np.inf)
    for i, s in enumerate(starts):
        n = min(F, T - s)
        o = wm[i, :n]
        if o.any():
            win_err[i] = np.linalg.norm(cand[i, :n][o] - x[s:s + n][o], axis=-1).mean()
    for i, s in enumerate(starts):
        n = min(F, T - s)
        c = cand[i, :n]
        acc[s:s + n] += c
        cnt[s:s + n] += 1
        for k in range(n):
            t = s + k
            o = observed[t]
            e = np.linalg.norm(c[k, o] - x[t, o], axis=-1).mean() if o.any() else 1e6 + win_err[i]
            if e < best[t]:
                best[t] = e
                out[t] = c[k]
    return out, acc / cnt[:, None, None]


def _finish(y: np.ndarray, x: np.ndarray, observed: np.ndarray, parents: tuple[int, ...], keep_observed: bool,
            blend: bool) -> tuple[np.ndarray, np.ndarray]:
    """Combined output ``y`` (T, J, D) -> (final, raw), both (T, J, D): observed joints of ``x``
    (T, J, D) kept (unless denoising); final also gap-blended."""
    raw = y.copy()
    if not keep_observed:
        return raw, raw
    raw[observed] = x[observed]
    return (blend_gaps(y, x, observed, parents) if blend else raw.copy()), raw


def inpaint(model: AEGAN | AEGANNet, joints: np.ndarray, mask: np.ndarray | None = None, *, window: int | None = None,
            shift: int = 8, steps: int = 200, lr: float = 1.0, beta1: float = 0.8,
            weights: tuple[float, float, float] = (10.0, 5.0, 0.5), average: bool = False,
            keep_observed: bool = True, dims: int | None = None, progress: ProgressFn | None = None,
            align_during: bool = True, blend: bool = True, critic_cap: str = "real",
            latent_radius: float | None = None) -> InpaintResult:
    """Complete a (T, J, D) sequence (metres) on the model's skeleton.  See the module docstring.

    ``blend`` (with ``keep_observed``): :func:`blend_gaps` joins the generated trajectory of every
    missing stretch continuously to the observed values at its two ends; ``raw`` in the result keeps
    the unblended output.

    ``window`` must equal the model's window length (default); ``shift`` in [1, window].
    ``weights`` = (gp, gs, gd) for MPJPE, MPJSE (both on observed joints, model units) and the critic.
    """
    t_start = time.time()
    x = np.asarray(joints, dtype=np.float32)
    observed = check_mask(x, mask)
    T, J, D = x.shape
    net = _check_inputs(model, x, observed, window, shift, steps, dims)
    F = net.cfg.frames

    scale = _bone_scale(x, observed, net)
    cs = net.cfg.coord_scale
    xs = np.where(observed[..., None], x, 0.0) / scale
    starts = window_starts(T, F, int(shift))
    N = len(starts)
    win, wm = _cut_windows(xs, observed, starts, F)
    xw = torch.from_numpy(win)
    mw = torch.from_numpy(wm)
    centre, rot = canonical_transform(xw, mw, net.skeleton)
    target = apply_transform(xw, centre, rot) / cs              # (N, F, J, D) model units
    target = torch.where(mw[..., None], target, torch.zeros_like(target))
    flat_w = mw.to(torch.float32).reshape(N, F * J)
    gains = tuple(float(v) for v in weights)
    z, history = _optimise_codes(net, target, mw, flat_w, steps=steps, lr=lr, beta1=beta1, weights=gains,
                                 align_during=align_during, critic_cap=critic_cap, latent_radius=latent_radius,
                                 progress=progress)
    with torch.no_grad():
        y = _align_windows(net.decode(z.detach()), target, flat_w)  # (N, F, J, D) canonical model units
        cand = invert_transform(y * cs, centre, rot).numpy() * scale  # input frame, metres
    out, avg = _combine_candidates(cand, x, observed, wm, starts)

    parents = net.skeleton.parents
    sel_final, sel_raw = _finish(out, x, observed, parents, keep_observed, blend)
    avg_final, avg_raw = _finish(avg, x, observed, parents, keep_observed, blend)
    final, raw = (avg_final, avg_raw) if average else (sel_final, sel_raw)
    if progress is not None:
        progress(1.0, "inpainting: done")
    return InpaintResult(joints=final.astype(np.float32), observed=observed, candidates=cand.astype(np.float32),
                         starts=starts, loss_history=history, seconds=time.time() - t_start, scale=scale,
                         raw=raw.astype(np.float32), selected=sel_final.astype(np.float32),
                         averaged=avg_final.astype(np.float32))


def blend_gaps(pred: np.ndarray, x: np.ndarray, observed: np.ndarray, parents: tuple[int, ...] | None = None) -> np.ndarray:
    """Join generated stretches to the observations: for every joint, the offset ``x - pred`` on its
    observed frames is interpolated linearly over its missing frames (held before the first / after
    the last observation) and added to the prediction, so each filled gap starts and ends exactly on
    the observed values while keeping the generated motion's shape inside.  A joint never observed
    takes its parent's offset (``parents``; so a hidden limb moves with the corrected torso).
    Observed joints get the observed values.  (T, J, D) -> (T, J, D)."""
    pred = np.asarray(pred, dtype=np.float64)
    T, J, D = pred.shape
    t = np.arange(T)
    off = np.zeros((T, J, D))
    known = np.zeros(J, dtype=bool)
    for j in range(J):
        o = observed[:, j]
        if o.any():
            d = x[o, j].astype(np.float64) - pred[o, j]
            for c in range(D):
                off[:, j, c] = np.interp(t, t[o], d[:, c])
            known[j] = True
    if parents is not None:
        order = []
        todo = [j for j in range(J) if parents[j] < 0]
        while todo:
            j = todo.pop(0)
            order.append(j)
            todo += [k for k in range(J) if parents[k] == j]
        for j in order:
            p = parents[j]
            if not known[j] and p >= 0 and known[p]:
                off[:, j] = off[:, p]
                known[j] = True
    out = pred + off
    out[observed] = x[observed]
    return out


# ==============================================================================================
# Loading
# ==============================================================================================
def load_model(path: str | Path | None = None) -> AEGAN:
    """The network of the AE-GAN generator (:func:`motionviz.generators.registry.load_generator`, the one
    model cache) of ``path`` (default ``checkpoints/aegan.safetensors``; the up-sampler's file too)."""
    p = Path(path) if path else default_checkpoint_dir() / "aegan.safetensors"
    if not p.is_file():
        raise CheckpointError(f"no AE-GAN checkpoint at {p}; train one with `python -m motionviz train aegan`")
    return registry.load_generator("aegan", path=p).model


PRESETS: dict[str, dict[str, Any]] = {
    # Mourot's settings, as the issue states them: Adam lr 1.0, beta1 0.8, 10 / 5 / 0.5, per-frame choice.
    "thesis": {"lr": 1.0, "beta1": 0.8, "weights": (10.0, 5.0, 0.5), "average": False},
    # Chosen on the validation split (KIMORE / UI-PRMD val subjects) for our checkpoint: with this
    # latent scale (encoder codes ~0.3 per dimension) lr 1.0 jumps far off the data manifold in one
    # step and the critic term pulls windows away from the observations; averaging the overlapping
    # windows beats the per-frame choice.
    "tuned": {"lr": 0.01, "beta1": 0.8, "weights": (10.0, 5.0, 0.05), "average": True},
}
DEFAULT_PRESET = "tuned"


def preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise UserError(f"unknown inpainting preset {name!r}; choose from {', '.join(PRESETS)}")
    return dict(PRESETS[name])


def load(path: str | Path) -> tuple[AEGAN, dict[str, str]]:
    """Rebuild the model from the stored config and load the weights with ``strict=True``."""
    tensors, meta = load_checkpoint(path, KIND)
    cfg = config_from_json(Config, meta["config"])
    model = AEGAN(cfg)
    load_strict(model, tensors, path, "its AE-GAN config")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, meta
