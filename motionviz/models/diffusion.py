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
(linear in/out); the condition vector is added to every token, forms one extra token and scales, shifts
and gates both norms of every layer (adaLN-Zero, :class:`AdaLNLayer`): ``time embedding + text
projection + exercise-class embedding + correct/incorrect/unknown embedding + (exercise, correct) pair
embedding + dataset embedding``.  It predicts the clean motion x0 directly (MDM; cosine schedule,
T = 1000, see :mod:`motionviz.core.sampling`).  During training every condition is dropped
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
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as Fn
from torch import nn

from ..core.errors import CheckpointError
from ..core.representation_torch import rep_features, rep_joints, sinusoid
from ..core.sampling import Schedule
from ..core.skeleton import COMMON
from .losses import motion_loss

__all__ = ["Config", "Denoiser", "DiffusionModel",
           "KIND", "CORRECT_STATES", "DURATION_FEATURES"]

KIND = "diffusion"
REPRESENTATION = "canonical pelvis position + joint offsets from the pelvis (COMMON, 20 fps), standardised"
CORRECT_STATES = {None: 0, True: 1, False: 2}   # 0 = unknown / dropped
# The log-duration feature (the last one): guidance does not extrapolate it (``guided(plain=...)``), the
# conditional prediction sets a repetition's duration as the training data showed it.
DURATION_FEATURES = slice(-1, None)
# Extra guidance on the requested correct / incorrect execution (chosen on the validation split, see the
# README's diffusion card); 0 turns it off.
CORRECT_GUIDANCE = 2.0


@dataclass(frozen=True)
class Config:
    num_joints: int = 15
    representation: str = "repetition:pelvis+offsets+log-duration"   # see DiffusionModel.normalise
    parameterisation: str = "x0"     # plain x0 prediction (MDM), the only one built (see validate)
    # the architecture every shipped checkpoint stores (and the only one built, see validate): every layer's
    # norms modulated by the condition (adaLN-Zero, DiT) and an embedding of each (exercise,
    # correct/incorrect/unknown) pair in the condition
    conditioning: str = "adaln"
    pair_condition: bool = True
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
    geo_power: float = 0.0           # stored by the shipped files; only 0 (losses uniform over noise levels)
    x0_weight_cap: float = 1.0      # stored by the shipped files; only 1 (x0 loss uniform over noise levels)
    w_motion: float = 1.0            # relative motion loss (motionviz.models.losses.motion_loss); 0 = off
    motion_eps: float = 0.05         # its floor on a repetition's motion energy (standardised units^2)
    lr: float = 4e-4
    weight_decay: float = 0.01
    batch_size: int = 32
    ema: float = 0.998
    captions_per_motion: int = 12
    # training sampling weights (motionviz.training.diffusion.repetition_set): each dataset's share of the
    # batches ("" = every dataset's share grows with the square root of its repetitions, as the checkpoints
    # before issue #18's rehabilitation weighting were trained), and whether the correct and incorrect
    # executions of an exercise get equal shares of it in the batch rows that show the model their
    # correct/incorrect condition (the other rows, p_drop_correct of them, keep the recordings' own mix; the
    # fully unconditioned rows, p_uncond, come from either).  The defaults are the shipped checkpoint's.
    dataset_shares: str = "ui-prmd=0.36,irds=0.16,kimore=0.2,bandai=0.27,humanml3d=0.01"
    balance_correct: bool = True

    def validate(self) -> None:
        """The architecture fields name the one architecture this version builds; another value (a
        checkpoint of an older or experimental variant, or a ``--set`` override) is a CheckpointError."""
        if self.parameterisation != "x0":
            raise CheckpointError(f"diffusion config asks for parameterisation={self.parameterisation!r}; this "
                                  f"version builds only the plain x0 prediction ('x0')")
        if self.conditioning != "adaln" or self.pair_condition is not True:
            raise CheckpointError(f"diffusion config asks for conditioning={self.conditioning!r}, "
                                  f"pair_condition={self.pair_condition!r}; this version builds only "
                                  f"conditioning='adaln' with pair_condition=true")
        if self.geo_power != 0.0 or self.x0_weight_cap != 1.0:
            raise CheckpointError(f"diffusion config asks for geo_power={self.geo_power!r}, x0_weight_cap="
                                  f"{self.x0_weight_cap!r}; this version trains with losses uniform over the "
                                  f"noise levels (0 and 1)")

    @property
    def features(self) -> int:
        """Per-frame features: 3J pose numbers + 1 (the repetition's log-duration, constant over time)."""
        return 3 * self.num_joints + 1


def tiny_config(**kw: Any) -> Config:
    base = dict(d_model=32, layers=1, heads=2, ff=64, T=100, dropout=0.0, batch_size=8, rep_frames=16, patch=2,
                captions_per_motion=3)
    base.update(kw)
    return Config(**base)


class Denoiser(nn.Module):
    """x_t (B, T, F) standardised, t (B,), conditions -> x0 (B, T, F)."""

    def __init__(self, cfg: Config):
        super().__init__()
        Config.validate(cfg)
        self.cfg = cfg
        D, P, F = cfg.d_model, cfg.patch, cfg.features
        self.inp = nn.Linear(P * F, D)
        self.time_mlp = nn.Sequential(nn.Linear(D, D), nn.SiLU(), nn.Linear(D, D))
        self.text_proj = nn.Sequential(nn.Linear(cfg.text_dim, D), nn.SiLU(), nn.Linear(D, D))
        self.text_null = nn.Parameter(torch.zeros(D))
        self.label_emb = nn.Embedding(len(cfg.labels) + 1, D)
        self.correct_emb = nn.Embedding(3, D)
        self.dataset_emb = nn.Embedding(len(cfg.datasets) + 1, D)
        self.encoder = AdaLNEncoder(D, cfg.heads, cfg.ff, cfg.dropout, cfg.layers)
        self.pair_emb = nn.Embedding(3 * (len(cfg.labels) + 1), D)
        nn.init.normal_(self.pair_emb.weight, std=0.02)
        self.norm = nn.LayerNorm(D)
        self.out = nn.Linear(D, P * F)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        for e in (self.label_emb, self.correct_emb, self.dataset_emb):
            nn.init.normal_(e.weight, std=0.02)

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
        return c + self.pair_emb(3 * label + correct)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                valid: torch.Tensor | None = None, extra: torch.Tensor | None = None) -> torch.Tensor:
        """x_t (B, T, F) with T % patch == 0, t (B,) long (the time is in ``cond``), cond (B, D), valid
        (B, T) bool -> x0 (B, T, F), predicted directly.  ``extra`` (B, N, D): added to the frame tokens
        (the distilled student's known-entries input)."""
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
        h = self.encoder(h, cond, pad)
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
def optimiser_step(model: nn.Module, batch: dict[str, torch.Tensor], optimizers: dict[str, torch.optim.Optimizer]
                   ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """What the diffusion models' ``train_step`` share: ``model.losses(batch)``, backward, the gradient norm of
    ``model.net`` clipped to 1, one step of ``optimizers["main"]``, ``model.steps_done`` + 1.  -> (losses,
    gradient norm before clipping)."""
    model.net.train()
    opt = optimizers["main"]
    out = model.losses(batch)
    opt.zero_grad(set_to_none=True)
    out["loss"].backward()
    gn = torch.nn.utils.clip_grad_norm_(model.net.parameters(), 1.0)
    opt.step()
    model.steps_done += 1
    return out, gn


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
        drop_correct = bern(cfg.p_drop_correct)
        if "correct_drop" in batch:          # decided by the batch (Config.balance_correct)
            drop_correct = batch["correct_drop"].to(dev)
        correct = torch.where(drop_correct | uncond, 0, batch["correct"])
        dataset = torch.where(bern(cfg.p_drop_dataset) | uncond, 0, batch["dataset"])
        text = batch["text"]
        if cfg.text_noise > 0:
            noise_t = torch.randn(text.shape, generator=generator, device=dev) / math.sqrt(text.shape[-1])
            text = Fn.normalize(text + cfg.text_noise * noise_t, dim=-1)
        cond = self.net.condition(t, text, text_on, label, correct, dataset)
        pred = self.net(xt, t, cond, valid)                                     # (B, T, F)

        m = valid.float()
        denom = m.sum().clamp(min=1)
        # MDM's recipe: every loss uniform over the noise levels
        l_x0 = (((pred - x0) ** 2).mean(-1) * m).sum() / denom
        pj = self.denormalise(pred)[0]                                          # (B, R, J, 3)
        vel_p, vel_g = pj[:, 1:] - pj[:, :-1], joints[:, 1:] - joints[:, :-1]   # (B, T-1, J, 3)
        mv_valid = (valid[:, 1:] & valid[:, :-1]).float()
        mvd = mv_valid.sum().clamp(min=1)
        vscale = batch["vel_scale"]
        l_vel = ((((vel_p - vel_g) ** 2).sum(-1).mean(-1) * mv_valid).sum() / mvd) / vscale ** 2
        b = self.bones
        len_p = (pj[:, :, b[:, 1]] - pj[:, :, b[:, 0]]).norm(dim=-1)            # (B, T, NB)
        len_g = (joints[:, :, b[:, 1]] - joints[:, :, b[:, 0]]).norm(dim=-1)
        l_bone = ((((len_p - len_g) ** 2).mean(-1) * m).sum() / denom) / batch["bone_scale"] ** 2
        ank_g = joints[:, :, self.ankles]                                       # (B, T, 2, 3)
        speed_g = (ank_g[:, 1:] - ank_g[:, :-1]).norm(dim=-1)                   # (B, T-1, 2)
        contact = ((ank_g[:, 1:, :, 1] < batch["contact_height"]) & (speed_g < batch["contact_speed"])).float()
        contact = contact * mv_valid[..., None]
        ank_v = (vel_p[:, :, self.ankles] ** 2).sum(-1)                          # (B, T-1, 2)
        l_foot = ((ank_v * contact).sum() / contact.sum().clamp(min=1)) / vscale ** 2
        l_motion = motion_loss(pred, x0, valid, cfg.motion_eps)
        loss = l_x0 + cfg.w_vel * l_vel + cfg.w_bone * l_bone + cfg.w_foot * l_foot + cfg.w_motion * l_motion
        return {"loss": loss, "x0": l_x0, "vel": l_vel, "bone": l_bone, "foot": l_foot, "motion": l_motion}

    def train_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        out, gn = optimiser_step(self, batch, optimizers)
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

