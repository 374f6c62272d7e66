"""Text/exercise-conditioned motion diffusion (MDM-style) on the COMMON skeleton, one repetition at a time.

Motion representation: a single repetition (:mod:`motionviz.core.repetitions`), *canonicalised* (turned to
face +Z, pelvis moved to x = z = 0 at its first frame; the floor stays at y = 0, as ``load_corpus``
normalises it) and time-normalised to ``rep_frames`` (64) frames.  Per frame F = 3J + 1 = 46 numbers: the
pelvis position followed by every other joint's offset from the pelvis, in metres (:func:`to_features`),
and the repetition's log-duration in seconds, constant over the frames (:func:`rep_features`);
standardised per feature with the training set's mean/std (stored in the checkpoint).  Keeping a joint or a
frame is a mask on the features; wherever a joint is kept the pelvis is kept too, so kept joints come back
exactly at their absolute positions.

Denoiser: a transformer encoder over time.  Every ``patch`` consecutive frames form one token
(linear in/out); the condition vector is added to every token, forms one extra token and (``conditioning =
"adaln"``) scales, shifts and gates both norms of every layer (:class:`AdaLNLayer`): ``time embedding + text
projection + exercise-class embedding + correct/incorrect/unknown embedding + (exercise, correct) pair
embedding + dataset embedding``.  It predicts the clean motion x0 directly (MDM; the skip parameterisations
``x0 = sqrt(ab) x_t + sqrt(1 - ab) net(x_t)`` are options, see :meth:`Denoiser.forward`, that trained worse
here; cosine schedule, T = 1000, see :mod:`motionviz.core.sampling`).  During training every condition is dropped
independently (and all of them together with ``p_uncond``), so one network is conditional and
unconditional, for classifier-free guidance.  Losses (uniform over noise levels, as in MDM): x0 MSE on the
standardised features + geometric losses in metres (velocity, bone lengths, foot contact: ankle velocity
where the ground-truth ankle is low and slow) + the relative motion loss
(:func:`motionviz.models.losses.motion_loss`, so small movements are not predicted frozen).

Generation (:class:`DiffusionGenerator`, behind :func:`motionviz.generators.registry.load_generator`): DDIM or DDPM
with any number of steps, classifier-free guidance (one batched forward), seeded ``torch.Generator``;
editing = ``Request.source`` + ``Request.keep`` (T, J) mask (in-betweening: keep first/last frames;
body-part editing: keep chosen joints).  A motion of any length is a chain of generated repetitions, each
with its own noise (seed + i per sample) and its own generated duration, each after the first starting
from the previous one's last pose (its first normalised frame is kept by masked generation); editing cuts
the source into repetitions and regenerates each with its kept entries and duration known.

Training (the shipped checkpoint; training split of ui-prmd, kimore, irds, bandai, humanml3d-sample,
mirrored except one-sided exercises (:func:`motionviz.data.sided_labels`); captions from
``motionviz/data/captions.json`` embedded once with MiniLM and cached; the
held-out paraphrases of ``motionviz/evaluation/eval_prompts.json`` are never used)::

    OMP_NUM_THREADS=1 python -m motionviz train diffusion --minutes 85 --threads 1 --save-every 4 --seed 0

(add ``--device cuda`` on a GPU; ``torchrun --nproc_per_node N -m motionviz train diffusion ...`` for data
parallelism).

:func:`bench` is the ``diffusion`` section of ``python -m motionviz bench``; :func:`sanity` reports
plausibility numbers of a checkpoint's samples.

Shapes: B batch, T frames, J joints, F = 3J features, N = T / patch tokens, D model width.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as Fn
from torch import nn

from ..core.checkpoint import config_from_json, data_provenance, load_checkpoint, save_checkpoint
from ..core.errors import CheckpointError, UserError
from ..core.motion import DEFAULT_FPS, Motion, MotionLabels
from ..core.repetitions import split_repetitions, time_denormalise, time_normalise
from ..core.sampling import Schedule, cosine_alpha_bar, guided, sample
from ..core.skeleton import COMMON, Skeleton
from ..generators.registry import LIMITS, ProgressFn, Request
from .losses import motion_loss

__all__ = ["Config", "to_features", "from_features", "bench", "Denoiser", "DiffusionModel", "DiffusionGenerator",
           "build_training", "load_generator", "save_model", "canonicalise", "KIND", "CORRECT_STATES"]

KIND = "diffusion"
REPRESENTATION = "canonical pelvis position + joint offsets from the pelvis (COMMON, 20 fps), standardised"
CORRECT_STATES = {None: 0, True: 1, False: 2}   # 0 = unknown / dropped
# Extra guidance on the requested correct / incorrect execution (chosen on the validation split, see the
# README's diffusion card); 0 turns it off.
CORRECT_GUIDANCE = 2.0


@dataclass(frozen=True)
class Config:
    num_joints: int = 15
    representation: str = "repetition:pelvis+offsets+log-duration"   # see DiffusionModel.normalise
    parameterisation: str = "x0"             # "x0" (plain, MDM), "x0-skip" or "x0-gain", see Denoiser.forward
    conditioning: str = "adaln"      # "adaln": every layer's norms modulated by the condition (adaLN-Zero,
    #                                  DiT); "add": the condition only added to the tokens (MDM-style)
    pair_condition: bool = True      # an embedding of each (exercise, correct/incorrect/unknown) pair too
    patch: int = 4                   # frames per token
    d_model: int = 192
    layers: int = 6
    heads: int = 4
    ff: int = 384
    dropout: float = 0.05
    T: int = 1000                    # diffusion steps
    text_encoder: str = "minilm"
    text_dim: int = 384
    labels: tuple[str, ...] = ()     # class vocabulary (index 0 = none)
    datasets: tuple[str, ...] = ()   # dataset vocabulary (index 0 = none)
    rep_frames: int = 64             # normalised frames per repetition (the denoiser's sequence length)
    min_seconds: float = 0.8         # shortest / longest repetition (seconds; longer clips are split)
    max_seconds: float = 6.0
    p_drop_text: float = 0.2
    p_drop_label: float = 0.5
    p_drop_correct: float = 0.2
    p_drop_dataset: float = 0.5
    p_uncond: float = 0.1
    text_noise: float = 0.3          # norm of the Gaussian noise added to the unit text embedding (training)
    w_vel: float = 1.0
    w_bone: float = 1.0
    w_foot: float = 0.5
    geo_power: float = 0.0           # geometric losses weighted by alpha_bar_t ** geo_power (0: MDM, uniform)
    x0_weight_cap: float = 1.0      # x0 loss weight min(1 / (1 - alpha_bar_t), cap) (1: MDM, uniform)
    w_motion: float = 1.0            # relative motion loss (motionviz.models.losses.motion_loss); 0 = off
    motion_eps: float = 0.05         # its floor on a repetition's motion energy (standardised units^2)
    lr: float = 4e-4
    weight_decay: float = 0.01
    batch_size: int = 32
    ema: float = 0.998
    captions_per_motion: int = 12

    @property
    def features(self) -> int:
        """Per-frame features: 3J pose numbers + 1 (the repetition's log-duration, constant over time)."""
        return 3 * self.num_joints + 1


def tiny_config(**kw: Any) -> Config:
    base = dict(d_model=32, layers=1, heads=2, ff=64, T=100, dropout=0.0, batch_size=8, rep_frames=16, patch=2,
                captions_per_motion=3)
    base.update(kw)
    return Config(**base)


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


class Denoiser(nn.Module):
    """x_t (B, T, F) standardised, t (B,), conditions -> x0 (B, T, F)."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        D, P, F = cfg.d_model, cfg.patch, cfg.features
        self.inp = nn.Linear(P * F, D)
        self.time_mlp = nn.Sequential(nn.Linear(D, D), nn.SiLU(), nn.Linear(D, D))
        self.text_proj = nn.Sequential(nn.Linear(cfg.text_dim, D), nn.SiLU(), nn.Linear(D, D))
        self.text_null = nn.Parameter(torch.zeros(D))
        self.label_emb = nn.Embedding(len(cfg.labels) + 1, D)
        self.correct_emb = nn.Embedding(3, D)
        self.dataset_emb = nn.Embedding(len(cfg.datasets) + 1, D)
        if cfg.conditioning == "adaln":
            self.encoder: nn.Module = AdaLNEncoder(D, cfg.heads, cfg.ff, cfg.dropout, cfg.layers)
        else:
            layer = nn.TransformerEncoderLayer(D, cfg.heads, cfg.ff, cfg.dropout, activation="gelu",
                                               batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        if cfg.pair_condition:
            self.pair_emb = nn.Embedding(3 * (len(cfg.labels) + 1), D)
            nn.init.normal_(self.pair_emb.weight, std=0.02)
        self.norm = nn.LayerNorm(D)
        self.out = nn.Linear(D, P * F)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        for e in (self.label_emb, self.correct_emb, self.dataset_emb):
            nn.init.normal_(e.weight, std=0.02)
        self.register_buffer("alpha_bar", cosine_alpha_bar(cfg.T).float(), persistent=False)   # (T,)
        if cfg.parameterisation == "x0-gain":
            # per-feature gain on x_t, set by the conditions (time, text, ...): the linear part of the
            # denoiser, which the layer-normalised transformer output cannot express with the right scale
            self.gain = nn.Linear(D, F)
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.gain.bias)

    def condition(self, t: torch.Tensor, text: torch.Tensor | None, text_on: torch.Tensor, label: torch.Tensor,
                  correct: torch.Tensor, dataset: torch.Tensor) -> torch.Tensor:
        """(B, D) condition vector; rows with ``text_on`` False use the learned null text."""
        D = self.cfg.d_model
        c = self.time_mlp(sinusoid(t.float(), D))
        if text is not None:
            tx = self.text_proj(text)
            c = c + torch.where(text_on[:, None], tx, self.text_null.expand_as(tx))
        else:
            c = c + self.text_null
        c = c + self.label_emb(label) + self.correct_emb(correct) + self.dataset_emb(dataset)
        if self.cfg.pair_condition:
            c = c + self.pair_emb(3 * label + correct)
        return c

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                valid: torch.Tensor | None = None, extra: torch.Tensor | None = None) -> torch.Tensor:
        """x_t (B, T, F) with T % patch == 0, t (B,) long, cond (B, D), valid (B, T) bool -> x0 (B, T, F).

        Skip parameterisation: x0 = sqrt(ab_t) x_t + sqrt(1 - ab_t) net(x_t) (the optimal linear denoiser
        of unit-variance data plus a learned correction, i.e. v-prediction written in x0 terms), so an
        almost clean input is passed through and the network's output matters most at high noise.
        ``extra`` (B, N, D): added to the frame tokens (the distilled student's known-entries input)."""
        if self.cfg.parameterisation == "x0":                                   # plain x0 prediction
            return self._raw(x, cond, valid, extra)
        ab = self.alpha_bar[t.long()].reshape(-1, 1, 1)
        raw = self._raw(x, cond, valid, extra)
        if self.cfg.parameterisation == "x0-gain":
            raw = raw + self.gain(cond)[:, None, :] * x                         # (B, T, F)
        return ab.sqrt() * x + (1 - ab).sqrt() * raw

    def _raw(self, x: torch.Tensor, cond: torch.Tensor, valid: torch.Tensor | None,
             extra: torch.Tensor | None = None) -> torch.Tensor:
        B, T, F = x.shape
        P = self.cfg.patch
        N = T // P
        h = self.inp(x.reshape(B, N, P * F))                                   # (B, N, D)
        if extra is not None:
            h = h + extra
        h = h + sinusoid(torch.arange(N, device=x.device), self.cfg.d_model)[None] + cond[:, None]
        h = torch.cat([cond[:, None], h], dim=1)                                # (B, 1+N, D)
        pad = None
        if valid is not None and not bool(valid.all()):
            tok_valid = valid.reshape(B, N, P).any(-1)                          # (B, N)
            pad = torch.cat([torch.zeros(B, 1, dtype=torch.bool, device=x.device), ~tok_valid], dim=1)
        if self.cfg.conditioning == "adaln":
            h = self.encoder(h, cond, pad)
        else:
            h = self.encoder(h, src_key_padding_mask=pad)
        return self.out(self.norm(h[:, 1:])).reshape(B, T, F)


class AdaLNLayer(nn.Module):
    """Pre-norm transformer layer whose two norms are modulated by the condition (adaLN-Zero, Peebles & Xie
    2023): ``h + g1 * attn(LN(h) * (1 + s1) + b1)``, then the same for the feed-forward part, with
    (b1, s1, g1, b2, s2, g2) = a linear map of SiLU(cond), initialised at zero so each layer starts as the
    identity.  h (B, N, D), cond (B, D), pad (B, N) True = ignore -> (B, N, D)."""

    def __init__(self, D: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(D, elementwise_affine=False)
        self.attn = nn.MultiheadAttention(D, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(D, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(D, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, D))
        self.drop = nn.Dropout(dropout)
        self.mod = nn.Linear(D, 6 * D)
        nn.init.zeros_(self.mod.weight)
        nn.init.zeros_(self.mod.bias)

    def forward(self, h: torch.Tensor, cond: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        b1, s1, g1, b2, s2, g2 = self.mod(Fn.silu(cond))[:, None].chunk(6, dim=-1)      # each (B, 1, D)
        a = self.norm1(h) * (1 + s1) + b1
        h = h + g1 * self.drop(self.attn(a, a, a, key_padding_mask=pad, need_weights=False)[0])
        return h + g2 * self.drop(self.mlp(self.norm2(h) * (1 + s2) + b2))


class AdaLNEncoder(nn.Module):
    """A stack of :class:`AdaLNLayer` (``layers`` holds them, as in ``nn.TransformerEncoder``)."""

    def __init__(self, D: int, heads: int, ff: int, dropout: float, n: int):
        super().__init__()
        self.layers = nn.ModuleList(AdaLNLayer(D, heads, ff, dropout) for _ in range(n))

    def forward(self, h: torch.Tensor, cond: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            h = layer(h, cond, pad)
        return h


# ---------------------------------------------------------------------------------------------
# the trainable model (denoiser + EMA + statistics + losses)
# ---------------------------------------------------------------------------------------------
class DiffusionModel(nn.Module):
    def __init__(self, cfg: Config, mean: torch.Tensor | None = None, std: torch.Tensor | None = None):
        super().__init__()
        self.cfg = cfg
        self.net = Denoiser(cfg)
        self.ema = copy.deepcopy(self.net).requires_grad_(False)
        F = cfg.features
        self.register_buffer("mean", torch.zeros(F) if mean is None else mean.float().clone())
        self.register_buffer("std", torch.ones(F) if std is None else std.float().clone())
        self.schedule = Schedule(cfg.T)
        sk = COMMON
        self.register_buffer("bones", torch.tensor(sk.bones, dtype=torch.long),               # (NB, 2)
                             persistent=False)
        self.ankles = sk.indices(["left_ankle", "right_ankle"])
        self.steps_done = 0

    # representation ---------------------------------------------------------------------------
    def normalise(self, joints: torch.Tensor, duration: torch.Tensor) -> torch.Tensor:
        """joints (B, R, J, 3) metres of time-normalised repetitions, duration (B,) seconds ->
        standardised features (B, R, F)."""
        return rep_features(joints, duration, self.mean, self.std)

    def denormalise(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, R, F) -> joints (B, R, J, 3) metres, duration (B,) seconds."""
        return rep_joints(x, self.mean, self.std)

    # training -----------------------------------------------------------------------------------
    def losses(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        joints = batch["joints"]                                                # (B, R, J, 3)
        valid = batch["valid"]                                                  # (B, R)
        B, T = valid.shape
        x0 = self.normalise(joints, batch["duration"])
        dev = x0.device
        t = self.schedule.sample_t(B, generator, device=dev)
        noise = torch.randn(x0.shape, generator=generator, device=dev)
        xt = self.schedule.q_sample(x0, t, noise)

        def bern(p: float) -> torch.Tensor:
            return torch.rand(B, generator=generator, device=dev) < p

        uncond = bern(cfg.p_uncond)
        text_on = batch["text_on"] & ~bern(cfg.p_drop_text) & ~uncond
        label = torch.where(bern(cfg.p_drop_label) | uncond, 0, batch["label"])
        correct = torch.where(bern(cfg.p_drop_correct) | uncond, 0, batch["correct"])
        dataset = torch.where(bern(cfg.p_drop_dataset) | uncond, 0, batch["dataset"])
        text = batch["text"]
        if cfg.text_noise > 0:
            noise_t = torch.randn(text.shape, generator=generator, device=dev) / math.sqrt(text.shape[-1])
            text = Fn.normalize(text + cfg.text_noise * noise_t, dim=-1)
        cond = self.net.condition(t, text, text_on, label, correct, dataset)
        pred = self.net(xt, t, cond, valid)                                     # (B, T, F)

        m = valid.float()
        denom = m.sum().clamp(min=1)
        # x0 error weighted by 1 / (1 - alpha_bar_t) (capped): the v-prediction loss of the skip
        # parameterisation, so the low-noise steps that remove the last noise are learnt too
        wx = (1.0 / (1.0 - self.schedule._ab(t, m).reshape(B, 1)).clamp(min=1e-6)).clamp(max=cfg.x0_weight_cap)
        l_x0 = (((pred - x0) ** 2).mean(-1) * m * wx).sum() / denom
        # geometric losses (metres) weighted by alpha_bar_t ** geo_power: they shape the final, low-noise
        # predictions; at high noise the skip term still carries noise that they would only fight
        w = self.schedule._ab(t, m).reshape(B, 1) ** cfg.geo_power               # (B, 1)
        pj = self.denormalise(pred)[0]                                          # (B, R, J, 3)
        vel_p, vel_g = pj[:, 1:] - pj[:, :-1], joints[:, 1:] - joints[:, :-1]   # (B, T-1, J, 3)
        mv_valid = (valid[:, 1:] & valid[:, :-1]).float()
        mvd = mv_valid.sum().clamp(min=1)
        mv = mv_valid * w
        m_w = m * w
        vscale = batch["vel_scale"]
        l_vel = ((((vel_p - vel_g) ** 2).sum(-1).mean(-1) * mv).sum() / mvd) / vscale ** 2
        b = self.bones
        len_p = (pj[:, :, b[:, 1]] - pj[:, :, b[:, 0]]).norm(dim=-1)            # (B, T, NB)
        len_g = (joints[:, :, b[:, 1]] - joints[:, :, b[:, 0]]).norm(dim=-1)
        l_bone = ((((len_p - len_g) ** 2).mean(-1) * m_w).sum() / denom) / batch["bone_scale"] ** 2
        ank_g = joints[:, :, self.ankles]                                       # (B, T, 2, 3)
        speed_g = (ank_g[:, 1:] - ank_g[:, :-1]).norm(dim=-1)                   # (B, T-1, 2)
        contact = ((ank_g[:, 1:, :, 1] < batch["contact_height"]) & (speed_g < batch["contact_speed"])).float()
        contact = contact * mv_valid[..., None]
        ank_v = (vel_p[:, :, self.ankles] ** 2).sum(-1)                          # (B, T-1, 2)
        l_foot = ((ank_v * contact * w[..., None]).sum() / contact.sum().clamp(min=1)) / vscale ** 2
        l_motion = motion_loss(pred, x0, valid, cfg.motion_eps)
        loss = l_x0 + cfg.w_vel * l_vel + cfg.w_bone * l_bone + cfg.w_foot * l_foot + cfg.w_motion * l_motion
        return {"loss": loss, "x0": l_x0, "vel": l_vel, "bone": l_bone, "foot": l_foot, "motion": l_motion}

    def train_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        self.net.train()
        opt = optimizers["main"]
        out = self.losses(batch)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        gn = torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        opt.step()
        self.steps_done += 1
        self.update_ema()
        logs = {k: float(v.detach()) for k, v in out.items()}
        logs["grad_norm"] = float(gn)
        return logs

    @torch.no_grad()
    def update_ema(self) -> None:
        d = min(self.cfg.ema, (1 + self.steps_done) / (10 + self.steps_done))
        for pe, p in zip(self.ema.parameters(), self.net.parameters()):
            pe.lerp_(p, 1 - d)
        for be, b in zip(self.ema.buffers(), self.net.buffers()):
            be.copy_(b)

    def export(self) -> dict[str, torch.Tensor]:
        """Checkpoint tensors: the EMA denoiser + feature statistics."""
        out = {f"net.{k}": v.detach().cpu().clone() for k, v in self.ema.state_dict().items()}
        out["stats.mean"] = self.mean.detach().cpu().clone()
        out["stats.std"] = self.std.detach().cpu().clone()
        return out


# ---------------------------------------------------------------------------------------------
# checkpoints and the generator
# ---------------------------------------------------------------------------------------------
def save_model(path: str | Path, model: DiffusionModel, metadata: dict[str, Any] | None = None) -> Path:
    meta = {"text_encoder": model.cfg.text_encoder, "text_dim": model.cfg.text_dim,
            "representation": REPRESENTATION}
    meta.update(metadata or {})
    return save_checkpoint(path, model.export(), KIND, model.cfg, meta)


def canonicalise(joints: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """joints (T, J, 3) -> (canonical joints, yaw angle, xz offset): facing +Z, pelvis at x = z = 0 at frame 0.
    Inverse: rotate_y(-angle) then add the offset."""
    m = Motion(joints, COMMON)
    ang = m.facing_angle(0)
    r = m.rotate_y(ang).joints
    root = r[0, COMMON.root]
    off = np.array([root[0], 0.0, root[2]], dtype=np.float32)
    if not np.isfinite(off).all():
        off = np.zeros(3, dtype=np.float32)
    return r - off, ang, off


def uncanonicalise(joints: np.ndarray, angle: float, offset: np.ndarray) -> np.ndarray:
    return Motion(joints + offset, COMMON).rotate_y(-angle).joints


def conditioned_model(net: Denoiser, text: torch.Tensor, text_on: torch.Tensor, label: torch.Tensor,
                      correct: torch.Tensor, dataset: torch.Tensor) -> Callable[..., torch.Tensor]:
    """``model(x (k n, R, F), t (k n,), drop (k n,), drop_correct=None) -> x0`` for the ``n`` rows'
    conditions (text (n, Dt), text_on/label/correct/dataset (n,)), as :func:`motionviz.core.sampling.guided`
    calls it: the batch holds k copies of the n rows; ``drop`` rows ignore every condition,
    ``drop_correct`` rows the correct/incorrect one."""
    n = text.shape[0]

    def model(x: torch.Tensor, t: torch.Tensor, drop: torch.Tensor,
              drop_correct: torch.Tensor | None = None) -> torch.Tensor:
        reps = x.shape[0] // n
        keep = ~drop
        keep_c = keep if drop_correct is None else keep & ~drop_correct
        c = net.condition(t, text.repeat(reps, 1), text_on.repeat(reps) & keep,
                          torch.where(keep, label.repeat(reps), 0),
                          torch.where(keep_c, correct.repeat(reps), 0),
                          torch.where(keep, dataset.repeat(reps), 0))
        return net(x, t, c)

    return model


class DiffusionGenerator:
    """The trained diffusion model behind the :class:`motionviz.generators.registry.Generator` protocol."""

    name = "diffusion"
    tasks = frozenset({"text", "label", "unconditional", "edit"})
    skeleton: Skeleton = COMMON

    def __init__(self, cfg: Config, net: Denoiser, mean: torch.Tensor, std: torch.Tensor,
                 metadata: dict[str, str] | None = None, encoder: Any = None):
        self.cfg = cfg
        self.net = net.eval().requires_grad_(False)
        self.mean, self.std = mean.float(), std.float()
        self.schedule = Schedule(cfg.T)
        self.metadata = dict(metadata or {})
        self._encoder = encoder
        self.labels = list(cfg.labels)

    @property
    def encoder(self):
        if self._encoder is None:
            from ..generators.text_encoders import get_text_encoder

            self._encoder = get_text_encoder(self.cfg.text_encoder)
        return self._encoder

    def label_index(self, label: str | None) -> int:
        if not label:
            return 0
        if label in self.cfg.labels:
            return self.cfg.labels.index(label) + 1
        hits = [i for i, l in enumerate(self.cfg.labels) if l.split(":", 1)[-1] == label]
        if len(hits) == 1:
            return hits[0] + 1
        raise UserError(f"unknown exercise {label!r}; the model knows: {', '.join(self.cfg.labels[:12])}"
                        + (" ..." if len(self.cfg.labels) > 12 else ""))

    def condition_text(self, req: Request) -> str:
        """The text the model is conditioned on: the request's text; for an exercise chosen without text,
        the exercise's canonical description (first caption, wrapped as 'incorrect' when asked).  Training
        shows the model text and exercise together most of the time, and on the validation split the pair
        makes the requested exercise recognisable far more often than the exercise alone (0.90 vs 0.78)."""
        if req.text:
            return req.text
        if not req.label:
            return ""
        from ..data.captions import caption_table, describe

        lab = self.cfg.labels[self.label_index(req.label) - 1]
        if lab not in caption_table()["labels"]:
            return ""
        return describe(MotionLabels(label=lab, correct=req.correct))

    def understood_label(self, req: Request) -> tuple[str | None, float | None]:
        """For a description without a chosen exercise: the known exercise it is closest to
        (:func:`motionviz.generators.text_match.closest_exercises` over this model's labels) and the similarity.  The
        label conditions the model too when the description is near it (similarity >=
        :data:`motionviz.generators.text_match.NEAR_FROM`): the sentence encoder alone generalises poorly to unseen
        wording, while the matcher finds the right exercise for most held-out paraphrases.  (None, None)
        when an exercise was chosen or there is no text; (None, similarity) when the description is not
        near any exercise."""
        if req.label or not req.text or not self.cfg.labels:
            return None, None
        from ..generators.text_match import NEAR_FROM, closest_exercises

        best = closest_exercises(req.text, 1, encoder=self.encoder, labels=self.cfg.labels)
        if not best:
            return None, None
        label, _, sim = best[0]
        return (label if sim >= NEAR_FROM else None), float(sim)

    def _conditions(self, req: Request, n: int, text_in: str,
                    matched: str | None = None) -> Callable[..., torch.Tensor]:
        """The model for :func:`motionviz.core.sampling.guided` with the request's conditions on ``n`` rows
        (:meth:`_condition_tensors`)."""
        return conditioned_model(self.net, *self._condition_tensors(req, n, text_in, matched))

    def _condition_tensors(self, req: Request, n: int, text_in: str, matched: str | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The conditions of ``n`` rows: text (n, Dt), text_on, label, correct, dataset (n,); ``text_in`` =
        :meth:`condition_text` of ``req``, ``matched`` = the exercise the text was understood as
        (:meth:`understood_label`)."""
        cfg = self.cfg
        if matched and not req.label:
            req = replace(req, label=matched)
        if text_in:
            emb = self.encoder.encode([text_in])                            # (1, Dt)
            if emb.shape[-1] != cfg.text_dim:
                raise CheckpointError(f"text encoder gives {emb.shape[-1]}-d embeddings; the model needs "
                                      f"{cfg.text_dim}")
            text = emb.expand(n, -1)
            text_on = torch.ones(n, dtype=torch.bool)
        else:
            text = torch.zeros(n, cfg.text_dim)
            text_on = torch.zeros(n, dtype=torch.bool)
        li = self.label_index(req.label)
        label = torch.full((n,), li, dtype=torch.long)
        correct = torch.full((n,), CORRECT_STATES[req.correct], dtype=torch.long)
        dataset = torch.zeros(n, dtype=torch.long)
        if req.label and ":" in self.cfg.labels[li - 1]:
            ds = self.cfg.labels[li - 1].split(":", 1)[0]
            if ds in cfg.datasets:
                dataset.fill_(cfg.datasets.index(ds) + 1)

        return text, text_on, label, correct, dataset

    def _denoiser(self, req: Request, cond_text: str, matched: str | None) -> Callable[..., torch.Tensor]:
        """The guided denoiser ``(x_t, t) -> x0`` of a validated request."""
        g = req.guidance if self._has_condition(req) else 1.0
        return guided(self._conditions(req, req.num, cond_text, matched), g, self.correct_guidance(req))

    def correct_guidance(self, req: Request) -> float:
        """Extra guidance on the correct/incorrect condition (see :func:`motionviz.core.sampling.guided`):
        ``Request.extra["correct_guidance"]`` or :data:`CORRECT_GUIDANCE` when an execution was asked for,
        else 0."""
        if req.correct is None:
            return 0.0
        v = (req.extra or {}).get("correct_guidance", CORRECT_GUIDANCE)
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise UserError("correct_guidance must be a number") from None
        if not (math.isfinite(v) and 0.0 <= v <= 20.0):
            raise UserError(f"correct_guidance must be between 0 and 20, got {v}")
        return v

    def check(self, req: Request) -> None:
        """Raise :class:`UserError` for a request this model cannot run, before any work (text encoder
        included); the teacher takes every validated request."""

    def _timesteps(self, steps: int) -> list[int] | None:
        """The denoising steps for ``steps`` (None: evenly spaced, :func:`motionviz.core.sampling.timesteps_for`)."""
        return None

    def _with_known(self, denoise: Callable[..., torch.Tensor], known: torch.Tensor | None,
                    mask: torch.Tensor | None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The denoiser for one masked generation (the teacher sees kept entries only through ``x_t``)."""
        return denoise

    @staticmethod
    def _has_condition(req: Request) -> bool:
        return bool(req.text) or bool(req.label) or req.correct is not None

    def generate(self, request: Request, progress: ProgressFn | None = None) -> list[Motion]:
        """Text/label/unconditional generation and editing (``source`` + ``keep``), repetition by
        repetition (:meth:`_sample_repetitions`, :meth:`_edit_chunks`)."""
        req = request.validated()
        self.check(req)
        src_j = keep = None
        if req.source is not None and req.keep is not None:
            src = req.source
            if abs(src.fps - DEFAULT_FPS) > 1e-6:
                raise UserError(f"the motion to edit must be at {DEFAULT_FPS:g} fps (got {src.fps:g})")
            if src.skeleton.name != COMMON.name:
                raise UserError(f"the motion to edit must be on the {COMMON.name} skeleton (got "
                                f"{src.skeleton.name}); retarget it first")
            keep = np.asarray(req.keep, bool) & src.observed                    # (T, J)
            if not keep.any():
                raise UserError("nothing to keep: the keep mask selects no observed joint")
            keep[:, COMMON.root] |= keep.any(axis=1)   # kept joints stay put: their frame keeps the pelvis
            lo, hi = LIMITS["frames"]
            if not lo <= src.num_frames <= hi:
                raise UserError(f"the motion to edit has {src.num_frames} frames; it needs {lo} to {hi}")
            src_j = np.nan_to_num(src.joints, nan=0.0).astype(np.float32)       # (T, J, 3)
        with torch.inference_mode():
            cond_text = self.condition_text(req)
            matched, similarity = self.understood_label(req)
            denoise = self._denoiser(req, cond_text, matched)
            gen = req.torch_generators()                                     # one per sample: seed + i
            eta = 1.0 if req.sampler == "ddpm" else 0.0
            if src_j is not None and keep is not None:
                joints = self._edit_chunks(denoise, req.num, src_j, keep, gen, req.steps, eta, progress)
            else:
                joints = self._sample_repetitions(denoise, req.num, req.frames, gen, req.steps, eta, progress)
        out = []
        for i in range(req.num):
            labels = MotionLabels(dataset="generated", subject=f"seed{req.sample_seeds()[i]}", label=req.label or "",
                                  correct=req.correct, text=req.text, source=f"diffusion sample {i}",
                                  extra={"model": self.name, "condition_text": cond_text,
                                         "understood_as": matched, "similarity": similarity,
                                         "steps": req.steps, "guidance": req.guidance,
                                         "sampler": req.sampler, "seed": req.sample_seeds()[i],
                                         "batch_seed": req.seed, "index": i})
            out.append(Motion(joints[i].astype(np.float32), COMMON, DEFAULT_FPS, labels))
        return out

    def _denoise_reps(self, denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], n: int,
                      gen: Sequence[torch.Generator], steps: int, eta: float, known: torch.Tensor | None,
                      mask: torch.Tensor | None, progress: ProgressFn | None) -> tuple[np.ndarray, np.ndarray]:
        """One batch of ``n`` time-normalised repetitions -> canonical joints (n, R, J, 3), durations (n,)."""
        cfg = self.cfg
        masked = mask is not None and bool(mask.any())
        known, mask = (known, mask) if masked else (None, None)
        x = sample(self._with_known(denoise, known, mask), (n, cfg.rep_frames, cfg.features), self.schedule,
                   steps, gen, eta=eta, known=known, mask=mask, progress=progress, timesteps=self._timesteps(steps))
        j, d = rep_joints(x, self.mean, self.std)
        d = d.clamp(cfg.min_seconds, cfg.max_seconds)
        return j.numpy(), d.numpy()

    def _sample_repetitions(self, denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], n: int,
                            frames: int, gen: Sequence[torch.Generator], steps: int, eta: float,
                            progress: ProgressFn | None) -> np.ndarray:
        """-> (n, frames, J, 3) metres: repetitions generated one after another until ``frames`` are
        filled.  Every repetition has its own noise (natural variation) and its own generated duration;
        each one after the first starts from the previous one's last pose (masked generation of its first
        normalised frame: in-betweening), so the repetitions join without a seam."""
        cfg = self.cfg
        J, R = cfg.num_joints, cfg.rep_frames
        parts: list[list[np.ndarray]] = [[] for _ in range(n)]
        have = np.zeros(n, dtype=int)
        last: list[np.ndarray | None] = [None] * n
        rnd = 0
        expect = max(1, int(np.ceil(frames / (DEFAULT_FPS * 2.5))))              # for the progress bar only
        while (have < frames).any():
            known = mask = None
            poses: list[tuple[float, np.ndarray]] = [(0.0, np.zeros(3, np.float32))] * n
            if rnd > 0:
                known = torch.zeros(n, R, cfg.features)
                mask = torch.zeros(n, R, cfg.features, dtype=torch.bool)
                for i in range(n):
                    c, ang, off = canonicalise(last[i][None])
                    poses[i] = (ang, off)
                    known[i, 0, :3 * J] = (to_features(torch.from_numpy(c[0])) - self.mean[:3 * J]) / self.std[:3 * J]
                    mask[i, 0, :3 * J] = True
            sub = None
            if progress is not None:
                sub = (lambda f, d, r=rnd: progress(min(0.99, (r + f) / max(expect, r + 1)),
                                                    f"repetition {r + 1}: {d}"))
            reps, durs = self._denoise_reps(denoise, n, gen, steps, eta, known, mask, sub)
            for i in range(n):
                if have[i] >= frames:
                    continue
                L = max(2, int(round(float(durs[i]) * DEFAULT_FPS)) + 1)
                g = time_denormalise(reps[i], L)                                  # (L, J, 3) canonical
                if rnd > 0:
                    g = uncanonicalise(g, *poses[i])[1:]                          # frame 0 = previous last
                parts[i].append(g)
                have[i] += len(g)
                last[i] = g[-1]
            rnd += 1
        return np.stack([np.concatenate(p)[:frames] for p in parts]).astype(np.float32)

    def _edit_chunks(self, denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], n: int,
                     src_j: np.ndarray, keep: np.ndarray, gen: Sequence[torch.Generator], steps: int, eta: float,
                     progress: ProgressFn | None) -> np.ndarray:
        """Editing: the source (T, J, 3) is cut into repetitions (:func:`split_repetitions`), each one is
        time-normalised and regenerated by masked generation with its kept entries (``keep`` (T, J)) and its
        duration known, then brought back to its frames; kept entries are returned exactly.
        -> (n, T, J, 3)."""
        cfg = self.cfg
        J, R = cfg.num_joints, cfg.rep_frames
        full = np.repeat(src_j[None], n, axis=0)                                 # (n, T, J, 3)
        chunks = split_repetitions(Motion(src_j, COMMON, DEFAULT_FPS), cfg.max_seconds, cfg.min_seconds)
        for ci, (a, b) in enumerate(chunks):
            k = keep[a:b]
            if k.all():
                continue
            c, ang, off = canonicalise(src_j[a:b])
            cn = time_normalise(c, R)                                            # (R, J, 3)
            idx = np.clip(np.round(np.linspace(0, b - a - 1, R)).astype(int), 0, b - a - 1)
            kn = k[idx]                                                          # (R, J) nearest source frame
            dur = torch.tensor(max(b - a - 1, 1) / DEFAULT_FPS)
            feats = rep_features(torch.from_numpy(cn), dur, self.mean, self.std)   # (R, F)
            known = feats[None].expand(n, -1, -1).clone()
            mask = torch.zeros(n, R, cfg.features, dtype=torch.bool)
            mask[:, :, :3 * J] = torch.from_numpy(np.repeat(kn, 3, axis=1))[None]
            mask[:, :, -1] = True                                                # the duration is known
            sub = None
            if progress is not None:
                sub = (lambda f, d, ci=ci: progress((ci + f) / len(chunks),
                                                    d if len(chunks) == 1 else f"part {ci + 1}/{len(chunks)}: {d}"))
            reps, _ = self._denoise_reps(denoise, n, gen, steps, eta, known, mask, sub)
            for i in range(n):
                g = uncanonicalise(time_denormalise(reps[i], b - a), ang, off)   # (b - a, J, 3)
                seg = full[i, a:b]
                seg[~k] = g[~k]
        return full


def load_weights(net: nn.Module, tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    """Load a checkpoint's ``net.*`` tensors into ``net`` (strict) and check it has the feature statistics;
    :class:`CheckpointError` otherwise."""
    sd = {k[len("net."):]: v for k, v in tensors.items() if k.startswith("net.")}
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{Path(path).name} does not match its config: {str(e).splitlines()[0]}") from None
    if "stats.mean" not in tensors or "stats.std" not in tensors:
        raise CheckpointError(f"{Path(path).name} has no normalisation statistics")


def with_legacy_fields(cfg: Any, config_json: str, path: str | Path) -> Any:
    """``cfg`` with the architecture of checkpoints written before a field existed: no
    ``parameterisation`` = plain x0, no ``conditioning`` = added condition without the pair embedding
    (the diffusion-fast checkpoint distilled before #18).  An unknown conditioning is a CheckpointError."""
    stored = json.loads(config_json)
    if "parameterisation" not in stored:
        cfg = replace(cfg, parameterisation="x0")
    if "conditioning" not in stored:
        cfg = replace(cfg, conditioning="add", pair_condition=False)
    if cfg.conditioning not in ("adaln", "add"):
        raise CheckpointError(f"{Path(path).name}: unknown conditioning {cfg.conditioning!r}")
    return cfg


def load_generator(path: str | Path, encoder: Any = None) -> DiffusionGenerator:
    """Rebuild the model from the checkpoint's stored config (strict).  ``encoder`` (optional) must match
    the checkpoint's text encoder, else :class:`CheckpointError`."""
    tensors, meta = load_checkpoint(path, KIND)
    cfg = with_legacy_fields(config_from_json(Config, meta["config"]), meta["config"], path)
    if cfg.parameterisation not in ("x0", "x0-skip", "x0-gain"):
        raise CheckpointError(f"{Path(path).name}: unknown parameterisation {cfg.parameterisation!r}")
    if cfg.representation != Config.representation:
        raise CheckpointError(f"{Path(path).name} uses motion representation {cfg.representation!r}; this "
                              f"version reads {Config.representation!r}")
    net = Denoiser(cfg)
    load_weights(net, tensors, path)
    enc_name = meta.get("text_encoder", cfg.text_encoder)
    if encoder is not None:
        from ..generators.text_encoders import check_encoder

        check_encoder(encoder, enc_name, cfg.text_dim)
    return DiffusionGenerator(cfg, net, tensors["stats.mean"], tensors["stats.std"], meta, encoder)


# ---------------------------------------------------------------------------------------------
# training data
# ---------------------------------------------------------------------------------------------
@dataclass
class RepetitionSet:
    """Every training repetition, time-normalised and canonicalised (facing +Z, pelvis at x = z = 0 at
    its first frame).  joints (N, R, J, 3) float32, duration (N,) seconds, label/correct/dataset (N,)
    condition indices, captions: per repetition the caption-table indices of its recording, weight (N,)
    sampling weights."""
    joints: np.ndarray
    duration: np.ndarray
    label: np.ndarray
    correct: np.ndarray
    dataset: np.ndarray
    captions: list[list[int]]
    weight: np.ndarray

    def select(self, idx: np.ndarray) -> "RepetitionSet":
        """The repetitions ``idx`` (a rank's share under torchrun)."""
        return RepetitionSet(self.joints[idx], self.duration[idx], self.label[idx], self.correct[idx],
                             self.dataset[idx], [self.captions[i] for i in idx], self.weight[idx])


def repetition_set(corpus: Sequence[Motion], pools: Sequence[list[int]], labels: Sequence[str],
                   dsets: Sequence[str], cfg: Config) -> RepetitionSet:
    """Cut ``corpus`` into repetitions (:func:`split_repetitions`) and time-normalise them to
    ``cfg.rep_frames``.  Sampling weights: each dataset's total weight grows with the square root of its
    number of repetitions, and within a dataset each label's total with the square root of its count, so
    small exercises (KIMORE: ~22 training recordings each) are seen often enough."""
    J, R, D, C, S, P, dsn, lab = [], [], [], [], [], [], [], []
    for m, pool in zip(corpus, pools):
        li = labels.index(m.labels.label) + 1 if m.labels.label in labels else 0
        di = dsets.index(m.labels.dataset) + 1 if m.labels.dataset in dsets else 0
        for a, b in split_repetitions(m, cfg.max_seconds, cfg.min_seconds):
            if b - a < 4:
                continue
            c = canonicalise(m.joints[a:b])[0]
            J.append(time_normalise(c, cfg.rep_frames))
            D.append((b - a - 1) / m.fps)
            R.append(li)
            C.append(CORRECT_STATES.get(m.labels.correct, 0))
            S.append(di)
            P.append(list(pool))
            dsn.append(m.labels.dataset)
            lab.append(m.labels.label)
    if not J:
        raise UserError("the training corpus has no repetitions")
    n_ds: dict[str, int] = {}
    n_lab: dict[tuple[str, str], int] = {}
    for d, l in zip(dsn, lab):
        n_ds[d] = n_ds.get(d, 0) + 1
        n_lab[(d, l)] = n_lab.get((d, l), 0) + 1
    lab_root: dict[str, float] = {}
    for (d, _), k in n_lab.items():
        lab_root[d] = lab_root.get(d, 0.0) + math.sqrt(k)
    w = np.array([math.sqrt(n_ds[d]) * (math.sqrt(n_lab[(d, l)]) / lab_root[d]) / n_lab[(d, l)]
                  for d, l in zip(dsn, lab)], dtype=np.float64)
    return RepetitionSet(np.stack(J).astype(np.float32), np.array(D, np.float32), np.array(R, np.int64),
                         np.array(C, np.int64), np.array(S, np.int64), P, w)


class RepetitionBatches:
    """Endless weighted random batches of time-normalised repetitions."""

    def __init__(self, reps: RepetitionSet, text_table: torch.Tensor, cfg: Config, batch_size: int,
                 consts: dict[str, float], seed: int, rank: int = 0):
        self.reps = reps
        self.text = text_table
        self.cfg = cfg
        self.batch_size = batch_size
        self.consts = consts
        self.p = reps.weight / reps.weight.sum()
        self.rng = np.random.default_rng([seed, rank, 7])

    def __iter__(self) -> "RepetitionBatches":
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        r, rng, B = self.reps, self.rng, self.batch_size
        idx = rng.choice(len(r.joints), size=B, p=self.p)
        text_idx = np.zeros(B, dtype=np.int64)
        text_on = np.zeros(B, dtype=bool)
        for b, i in enumerate(idx):
            if r.captions[i]:
                text_idx[b] = r.captions[i][int(rng.integers(len(r.captions[i])))]
                text_on[b] = True
        batch = {
            "joints": torch.from_numpy(r.joints[idx]), "duration": torch.from_numpy(r.duration[idx]),
            "valid": torch.ones(B, self.cfg.rep_frames, dtype=torch.bool),
            "text": self.text[torch.from_numpy(text_idx)], "text_on": torch.from_numpy(text_on),
            "label": torch.from_numpy(r.label[idx]), "correct": torch.from_numpy(r.correct[idx]),
            "dataset": torch.from_numpy(r.dataset[idx]),
        }
        batch.update({k: torch.tensor(v) for k, v in self.consts.items()})
        return batch


def feature_stats(reps: RepetitionSet) -> dict[str, Any]:
    """Mean/std of the repetitions' features (pose + log-duration), velocity and bone scales."""
    j = torch.from_numpy(reps.joints)
    X = torch.cat([to_features(j), torch.log(torch.from_numpy(reps.duration))[:, None, None].expand(-1, j.shape[1], 1)],
                  dim=-1).reshape(-1, 3 * j.shape[2] + 1).numpy()
    mean, std = X.mean(0), X.std(0)
    std = np.maximum(std, 0.02)
    v = np.linalg.norm(np.diff(reps.joints, axis=1), axis=-1).ravel()
    bl = COMMON.bone_lengths(reps.joints[:, ::8].reshape(-1, reps.joints.shape[2], 3))
    return {"mean": torch.tensor(mean, dtype=torch.float32), "std": torch.tensor(std, dtype=torch.float32),
            "vel_scale": float(np.sqrt((v ** 2).mean()) + 1e-4), "bone_scale": float(0.2 * bl.mean())}


def _encode_captions(texts: list[str], encoder: Any, cache_path: Path | None) -> torch.Tensor:
    """Embeddings (N, D) of unique captions, cached on disk by text hash."""
    from safetensors.torch import load_file, save_file

    key = lambda s: hashlib.sha1(s.encode()).hexdigest()[:20]  # noqa: E731
    cached: dict[str, torch.Tensor] = {}
    if cache_path is not None and cache_path.is_file():
        try:
            cached = load_file(str(cache_path))
        except Exception:  # a broken cache is rebuilt
            cached = {}
    missing = [t for t in texts if key(t) not in cached or cached[key(t)].shape[-1] != encoder.dim]
    if missing:
        for i in range(0, len(missing), 256):
            chunk = missing[i:i + 256]
            emb = encoder.encode(chunk)
            for t, e in zip(chunk, emb):
                cached[key(t)] = e.contiguous()
            print(f"  text embeddings {min(i + 256, len(missing))}/{len(missing)}", file=sys.stderr)
        if cache_path is not None:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_path.with_suffix(".tmp")
            save_file(cached, str(tmp), metadata={"encoder": encoder.name})
            tmp.replace(cache_path)
    return torch.stack([cached[key(t)] for t in texts]) if texts else torch.zeros(0, encoder.dim)


def _caption(labels: MotionLabels, rng: np.random.Generator) -> str:
    from .. import data

    return data.describe(labels, rng)


@dataclass
class TrainingData:
    """What :func:`training_data` prepares: the config, the repetitions, the caption embeddings (one row
    per caption-table index), feature statistics, loss constants and checkpoint metadata."""
    cfg: Config
    reps: RepetitionSet
    text_table: torch.Tensor
    stats: dict[str, Any]
    consts: dict[str, float]
    meta: dict[str, Any]


def training_data(opts: Any, base: Callable[..., Any] | None = None) -> TrainingData:
    """The real corpus (training split of ``opts.datasets``, mirrored except one-sided exercises) cut into
    repetitions, with captions embedded once (cached), for the config made by ``base(**fields)`` (default
    :class:`Config`, or :func:`tiny_config` with ``opts.tiny``) with ``opts.overrides`` applied."""
    from .. import data
    from ..generators.text_encoders import get_text_encoder

    over = dict(opts.overrides)
    encoder_spec = over.pop("text_encoder", "minilm")
    cfg_kw = dict(over)
    if opts.batch_size:
        cfg_kw["batch_size"] = opts.batch_size
    if opts.lr:
        cfg_kw["lr"] = opts.lr
    datasets = list(opts.datasets or data.CORPUS_DATASETS)
    print(f"loading corpus {datasets} ...", file=sys.stderr)
    corpus = data.load_corpus("train", datasets=datasets, root=opts.data_root)
    if opts.tiny:
        rng0 = np.random.default_rng(opts.seed)
        corpus = [corpus[i] for i in rng0.permutation(len(corpus))[:64]]
    corpus = [m for m in corpus if m.num_frames >= 8 and np.isfinite(m.joints).all()]
    if not corpus:
        raise UserError("the training corpus is empty")
    sided = data.sided_labels(corpus)
    print(f"one-sided labels (no mirrored copies): {', '.join(sorted(sided)) or 'none'}", file=sys.stderr)
    corpus = data.augment_mirror(corpus, skip_labels=sided)
    labels = tuple(sorted({m.labels.label for m in corpus if m.labels.label}))
    dsets = tuple(sorted({m.labels.dataset for m in corpus if m.labels.dataset}))
    encoder = get_text_encoder(encoder_spec)
    if base is None:
        base = tiny_config if opts.tiny else Config
    cfg = base(labels=labels, datasets=dsets, text_encoder=encoder.name, text_dim=encoder.dim, **cfg_kw)

    # captions: a pool of random physiotherapist descriptions per motion, embedded once per unique text
    rng = np.random.default_rng([opts.seed, 11])
    table: dict[str, int] = {}
    pools: list[list[int]] = []
    for m in corpus:
        pool = []
        for _ in range(cfg.captions_per_motion):
            c = _caption(m.labels, rng)
            if c:
                pool.append(table.setdefault(c, len(table)))
        pools.append(sorted(set(pool)))
    texts = list(table)
    print(f"{len(corpus)} motions, {len(labels)} labels, {len(texts)} unique captions", file=sys.stderr)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in encoder.name)
    emb = _encode_captions(texts, encoder, data.cache_dir() / f"caption_embeddings_{safe}.safetensors")

    reps = repetition_set(corpus, pools, labels, dsets, cfg)
    print(f"{len(reps.joints)} repetitions (median {np.median(reps.duration):.2f} s)", file=sys.stderr)
    stats = feature_stats(reps)
    consts = {"vel_scale": stats["vel_scale"], "bone_scale": stats["bone_scale"],
              "contact_height": 0.12, "contact_speed": 0.02}
    meta = {"text_encoder": encoder.name, "text_dim": encoder.dim, "data": data_provenance(datasets),
            "split": "train", "motions": len(corpus), "unique_captions": len(texts),
            "repetitions": int(len(reps.joints)), "not_mirrored": sorted(sided),
            "stats": {k: stats[k] for k in ("vel_scale", "bone_scale")},
            "representation": REPRESENTATION}
    return TrainingData(cfg, reps, emb, stats, consts, meta)


def build_training(opts: Any) -> Any:
    """TRAINERS entry: the real corpus (:func:`training_data`) -> TrainSetup."""
    from ..training.loop import TrainSetup, shard

    td = training_data(opts)
    cfg, reps, emb, stats, consts = td.cfg, td.reps, td.text_table, td.stats, td.consts
    model = DiffusionModel(cfg, stats["mean"], stats["std"]).to(opts.device)
    mine = shard(np.arange(len(reps.joints)), opts.rank, opts.world_size)
    batches: Iterator[dict[str, torch.Tensor]] = RepetitionBatches(reps.select(np.asarray(mine)), emb, cfg,
                                                                   cfg.batch_size, consts, opts.seed, opts.rank)
    if opts.device != "cpu":
        batches = ({k: v.to(opts.device, non_blocking=True) for k, v in b.items()} for b in batches)
    opt = torch.optim.AdamW(model.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))

    def lr_lambda(f: float) -> float:  # short warm-up, cosine decay to 10 %
        warm = 0.02
        if f < warm:
            return max(f / warm, 0.05)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (f - warm) / (1 - warm)))

    n_params = sum(p.numel() for p in model.net.parameters())
    print(f"denoiser: {n_params / 1e6:.2f} M parameters", file=sys.stderr)
    meta = dict(td.meta, parameters=n_params)
    return TrainSetup(model=model, batches=batches, optimizers={"main": opt}, kind=KIND, config=cfg,
                      metadata=meta, export=model.export, lr_lambda=lr_lambda,
                      log_keys=("loss", "x0", "vel", "bone", "foot", "motion"))


# ---------------------------------------------------------------------------------------------
# benchmark section (``python -m motionviz bench``)
# ---------------------------------------------------------------------------------------------
BENCH_TEXT = "slowly raise both arms sideways to shoulder height, then lower them"


def bench(quick: bool = False, path: str | Path | None = None, encoder: Any = None) -> dict[str, Any]:
    """Seconds per 120-frame sample (DDIM, guidance 2.5, text-conditioned) at 1000/50/20/10 steps, batch 1
    and 4, median over repeats, from the shipped checkpoint (or ``path``).  ``quick``: 20 and 10 steps,
    one repeat (for tests).  Text encoding is warmed up first (it is cached per text), so the figures are
    the denoising cost."""
    import time

    from ..generators.registry import checkpoint_path

    path = Path(path) if path is not None else checkpoint_path("diffusion")
    t0 = time.perf_counter()
    gen = load_generator(path, encoder=encoder)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    gen.generate(Request(text=BENCH_TEXT, frames=16, steps=1))                  # text encoder, warm-up
    first_s = time.perf_counter() - t0
    frames = 120
    rows = []
    for steps in ((20, 10) if quick else (1000, 50, 20, 10)):
        for b in (1, 4):
            req = Request(text=BENCH_TEXT, frames=frames, steps=min(steps, gen.cfg.T), num=b, guidance=2.5, seed=0)
            reps = 1 if quick or steps >= 1000 else (3 if steps >= 50 else 5)
            gen.generate(replace(req, steps=1))                                  # warm-up at this batch size
            times = []
            for _ in range(reps):
                t1 = time.perf_counter()
                gen.generate(req)
                times.append(time.perf_counter() - t1)
            med = float(np.median(times))
            rows.append({"steps": steps, "batch": b, "frames": frames, "seconds_per_call": round(med, 5),
                         "seconds_per_sample": round(med / b, 5), "repeats": reps})
    at20 = [r["seconds_per_sample"] for r in rows if r["steps"] == 20 and r["batch"] == 1]
    return {"checkpoint": str(path), "parameters": sum(p.numel() for p in gen.net.parameters()),
            "config": {k: getattr(gen.cfg, k) for k in ("d_model", "layers", "heads", "ff", "patch", "T", "rep_frames")},
            "threads": torch.get_num_threads(), "load_seconds": round(load_s, 4),
            "first_call_seconds_incl_text_encoder": round(first_s, 4), "guidance": 2.5, "sampler": "ddim",
            "timings": rows, "seconds_per_sample_20_steps": at20[0] if at20 else None,
            "target_seconds_per_sample_20_steps": 0.3}


# ---------------------------------------------------------------------------------------------
# plausibility check of a trained checkpoint
# ---------------------------------------------------------------------------------------------
SANITY_PROMPTS = {
    "arms_sideways": "slowly raise both arms sideways to shoulder height, then lower them",
    "deep_squat": "a deep squat: bend both knees and lower the hips as far as possible, then stand back up",
    "walk": "a person walks forward",
    "unconditional": "",
}


def motion_numbers(joints: np.ndarray, fps: float = DEFAULT_FPS) -> dict[str, float]:
    """Plausibility / content numbers of one motion (T, J, 3) on COMMON: bone-length coefficient of
    variation over time (mean over bones), mean joint speed (m/s), largest joint range (m), pelvis drop
    below its frame-0 height (m), highest wrist above its shoulder (m), widest wrist-to-wrist span (m)."""
    sk = COMMON
    bl = sk.bone_lengths(joints)                                                  # (T, NB)
    cv = float(np.mean(bl.std(0) / np.maximum(bl.mean(0), 1e-6)))
    speed = float(np.linalg.norm(np.diff(joints, axis=0), axis=-1).mean() * fps) if len(joints) > 1 else 0.0
    lw, rw, ls, rs = sk.indices(["left_wrist", "right_wrist", "left_shoulder", "right_shoulder"])
    pel = joints[:, sk.root, 1]
    return {"bone_cv": cv, "speed": speed, "range": float(np.ptp(joints, axis=0).max()),
            "pelvis_drop": float(pel[0] - pel.min()),
            "wrist_above_shoulder": float(max((joints[:, lw, 1] - joints[:, ls, 1]).max(),
                                              (joints[:, rw, 1] - joints[:, rs, 1]).max())),
            "wrist_span": float(np.linalg.norm(joints[:, lw] - joints[:, rw], axis=-1).max())}


def sanity(path: str | Path | None = None, encoder: Any = None, num: int = 6, frames: int = 120, steps: int = 20,
           guidance: float = 2.5, seed: int = 0, prompts: dict[str, str] | None = None) -> dict[str, Any]:
    """Generate ``num`` motions per prompt (:data:`SANITY_PROMPTS`) and report :func:`motion_numbers`
    (mean over samples), the fraction of frozen samples (largest joint range < 5 cm) and how far apart the
    prompts' motions are compared with motions of the same prompt (mean joint distance, metres, after
    removing each motion's start position)."""
    from ..generators.registry import checkpoint_path

    g = load_generator(Path(path) if path is not None else checkpoint_path("diffusion"), encoder=encoder)
    prompts = dict(SANITY_PROMPTS if prompts is None else prompts)
    motions: dict[str, np.ndarray] = {}
    out: dict[str, Any] = {"steps": steps, "guidance": guidance, "frames": frames, "num": num, "prompts": {}}
    for key, text in prompts.items():
        ms = g.generate(Request(text=text, frames=frames, steps=steps, guidance=guidance, seed=seed, num=num))
        J = np.stack([m.joints for m in ms])                                      # (N, T, J, 3)
        motions[key] = J - J[:, :1, COMMON.root:COMMON.root + 1] * np.array([1, 0, 1], np.float32)
        nums = [motion_numbers(j) for j in J]
        row = {k: round(float(np.mean([n[k] for n in nums])), 4) for k in nums[0]}
        row["frozen_fraction"] = round(float(np.mean([n["range"] < 0.05 for n in nums])), 3)
        out["prompts"][key] = {"text": text, **row}

    def dist(a: np.ndarray, b: np.ndarray) -> float:
        d = [np.linalg.norm(x - y, axis=-1).mean() for i, x in enumerate(a) for j, y in enumerate(b)
             if a is not b or i < j]
        return float(np.mean(d))

    keys = list(motions)
    out["within_prompt_distance"] = {k: round(dist(motions[k], motions[k]), 4) for k in keys}
    out["between_prompt_distance"] = {f"{a}|{b}": round(dist(motions[a], motions[b]), 4)
                                      for i, a in enumerate(keys) for b in keys[i + 1:]}
    return out
