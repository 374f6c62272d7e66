"""ACTOR-style conditional transformer VAE (after Petrovich, Black & Varol, ICCV 2021).

Classes are the exercise/content labels ``<dataset>:<id>`` crossed with correct/incorrect where the data
has it (UI-PRMD, IRDS): ``ui-prmd:m01/correct``, ``ui-prmd:m01/incorrect``, ``kimore:ex5``, ...

* Encoder: per-frame features -> linear -> + sinusoidal positions; two learnable per-class query tokens
  (mu, Sigma) are prepended; a transformer encoder over [mu_c, sigma_c, x_1..x_T] (padding-masked); the
  outputs at the two tokens are the posterior mean and log-variance of z (D = d_model).
* Decoder: memory = z + b_c (a learnable per-class bias); queries = sinusoidal encodings of t = 0..T-1, so
  any length T can be decoded; a transformer decoder (self-attention over time + cross-attention to the
  memory) -> linear -> per-frame features.
* Items are single repetitions (:mod:`motionviz.core.repetitions`) time-normalised to ``rep_frames`` (64).
  Features (F = 3 + 3 (J - 1) + 1 = 46 on the COMMON skeleton): the pelvis position (root trajectory; x/z
  relative to frame 0 of the repetition, y = height above the floor), the other 14 joints relative to the
  pelvis and the repetition's log-duration (constant over frames), standardised with per-feature
  statistics stored in the checkpoint (buffers).  A sample of any length chains decoded repetitions, each
  from its own latent (seed + i per sample, one latent per repetition round), cross-faded where they meet.
* Loss: masked MSE on the standardised positions + masked MSE on frame-to-frame velocities (standardised
  by their own statistics) + ``kl_weight`` (1e-5) x KL(q(z|x,c) || N(0, I)).

Sampling draws z ~ N(0, I) from a ``torch.Generator`` seeded by the request (same seed -> same output);
``vary`` decodes around the posterior of an encoded real motion; ``interpolate`` walks linearly or
spherically between two latent codes (seeds, classes or encoded motions).

Public API (stable; used by the CLI, the app and the evaluator):

* ``load_generator("vae").generate(Request(model="vae", label="ui-prmd:m01", correct=False, frames=60,
  seed=0, num=4))`` -> ``num`` :class:`Motion` (T, 15, 3), 20 fps.  ``extra={"task": "interpolate" |
  "vary"}`` selects the other tasks (``to_label``/``to_seed``/``steps``/``extra["spherical"]``,
  ``source`` + ``extra["spread"]``).
* :class:`VAEGenerator`: ``labels``, ``classes``, ``has_correctness(label)``, ``resolve(name)``,
  ``sample``, ``vary``, ``encode``, ``interpolate_path(Endpoint, Endpoint, steps, frames, spherical)``,
  ``segment(Endpoint, Endpoint, spherical) -> LatentPath`` + ``decode_path(path, t, frames)``.
* :mod:`motionviz.generators.interpolate`: ``between_seeds``, ``between_classes``, ``between_motions``, ``path_array``.
* :func:`bench` (seconds per 60-frame sample) and :func:`sanity` (plausibility vs held-out data).

Training: ``python -m motionviz train vae --minutes 75 --threads 1 --save-every 5 --seed 0`` (see
``build_training``; datasets :data:`VAE_DATASETS`, training split, mirrored copies added).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..core.checkpoint import config_from_json, data_provenance, load_checkpoint
from ..core.errors import CheckpointError, UserError
from ..core.motion import DEFAULT_FPS, Motion, MotionError, MotionLabels
from ..core.skeleton import COMMON
from ..generators.interpolate import lerp, slerp, weights
from ..generators.registry import LIMITS, ProgressFn, Request
from .losses import motion_loss

__all__ = ["Config", "ActorVAE", "VAEGenerator", "Endpoint", "LatentPath", "class_key", "split_class", "classes_of",
           "resolve_label", "joints_to_features", "features_to_joints", "canonicalise", "ClipBatches",
           "collate_clips", "compute_stats", "make_optimizers", "motions_to_items", "build_training", "load_generator",
           "tiny_config", "CORRECTNESS_DATASETS", "VAE_DATASETS", "bench", "sanity"]

KIND = "vae"
# Datasets the VAE trains on by default: the rehabilitation exercises (HumanML3D is captioned, not
# action-labelled; KERAAL is held out for evaluation; Bandai's everyday actions are left to the text
# model: within the 45-minute CPU budget they took capacity and steps from the exercises).
VAE_DATASETS = ("ui-prmd", "kimore", "irds")
# Datasets whose motions are labelled correct / incorrect (others: one state per label).
CORRECTNESS_DATASETS = ("ui-prmd", "irds")
_PELVIS = COMMON.index("pelvis")
_BLEND = 4                 # frames cross-faded where two decoded repetitions meet
_OTHERS = tuple(j for j in range(len(COMMON)) if j != _PELVIS)


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------
@dataclass
class Config:
    classes: tuple[str, ...] = ()          # class vocabulary, e.g. "ui-prmd:m01/correct", "kimore:ex5"
    num_joints: int = 15                   # COMMON skeleton
    d_model: int = 128                     # transformer width = latent size
    heads: int = 4
    ff: int = 256
    enc_layers: int = 2
    dec_layers: int = 3
    dropout: float = 0.1
    kl_weight: float = 1e-5
    pos_weight: float = 1.0
    vel_weight: float = 1.0
    motion_weight: float = 1.0             # relative motion loss (motionviz.models.losses.motion_loss); 0 = off
    motion_eps: float = 0.05               # its floor on a repetition's motion energy (standardised units^2)
    rep_frames: int = 64                   # normalised frames per repetition (see motionviz.core.repetitions)
    min_seconds: float = 0.8               # shortest / longest repetition (longer clips are split)
    max_seconds: float = 6.0
    continue_spread: float = 0.3           # later repetitions of vary/interpolate: z + spread * sigma * eps
    fps: float = DEFAULT_FPS
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.03                   # fraction of the budget with a linear lr warm-up
    mirror: bool = True                    # mirror augmentation (sided labels swapped)
    class_balance: float = 0.5             # P(class) ~ count**class_balance (0 = uniform over classes)
    datasets: tuple[str, ...] = ()         # training datasets (() = VAE_DATASETS)
    posterior_heads: bool = True           # linear mu / log-variance heads on the two token outputs
    logvar_init: float = -2.0              # initial bias of the log-variance head (sigma ~ 0.37)

    @property
    def num_features(self) -> int:
        """3J pose numbers + 1 (the repetition's log-duration, constant over its frames)."""
        return 3 * self.num_joints + 1

    @property
    def latent_dim(self) -> int:
        return self.d_model


def tiny_config(classes: Sequence[str] = ()) -> Config:
    """A few-thousand-parameter model for tests and smoke runs."""
    return Config(classes=tuple(classes), d_model=16, heads=2, ff=32, enc_layers=1, dec_layers=1,
                  dropout=0.0, batch_size=8, rep_frames=16, lr=3e-3)


# ---------------------------------------------------------------------------------------------
# classes
# ---------------------------------------------------------------------------------------------
def class_key(label: str, correct: bool | None) -> str:
    """Class name of a label + correctness: ``ui-prmd:m01/correct``; labels of datasets without
    correctness (or correct=None) are the class itself."""
    dataset = label.split(":", 1)[0]
    if correct is None or dataset not in CORRECTNESS_DATASETS:
        return label
    return f"{label}/{'correct' if correct else 'incorrect'}"


def split_class(key: str) -> tuple[str, bool | None]:
    """Inverse of :func:`class_key`: (label, correct)."""
    if key.endswith("/correct"):
        return key[: -len("/correct")], True
    if key.endswith("/incorrect"):
        return key[: -len("/incorrect")], False
    return key, None


def classes_of(motions: Sequence[Motion]) -> tuple[str, ...]:
    """Sorted class vocabulary of a list of motions (labels without a label are skipped)."""
    return tuple(sorted({class_key(m.labels.label, m.labels.correct) for m in motions if m.labels.label}))


def resolve_label(name: str, labels: Sequence[str]) -> str:
    """Full label for ``name``: a full ``<dataset>:<id>`` label or an unambiguous bare id (``m01``,
    case-insensitive).  Raises :class:`UserError` naming the candidates otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise UserError("choose an exercise (a label such as ui-prmd:m01)")
    n = name.strip()
    if n in labels:
        return n
    low = n.lower()
    exact = [lab for lab in labels if lab.lower() == low]
    if exact:
        return exact[0]
    if ":" not in n:
        cands = [lab for lab in labels if lab.split(":", 1)[1].lower() == low]
        if len(cands) == 1:
            return cands[0]
        if len(cands) > 1:
            raise UserError(f"exercise {n!r} is ambiguous: it could be {', '.join(cands)}; give the full label")
    some = ", ".join(list(labels)[:12]) + (" ..." if len(labels) > 12 else "")
    raise UserError(f"unknown exercise {n!r} for this model; choose one of: {some}")


# ---------------------------------------------------------------------------------------------
# motion representation
# ---------------------------------------------------------------------------------------------
def canonicalise(joints: np.ndarray) -> np.ndarray:
    """joints (T, J, 3) -> same clip turned to face +Z at frame 0 with the pelvis at x = z = 0 at
    frame 0 (heights unchanged)."""
    j = np.asarray(joints, dtype=np.float32)
    left = [a for a, _ in COMMON.lr_pairs]
    right = [b for _, b in COMMON.lr_pairs]
    across = (j[0, left] - j[0, right]).mean(axis=0)
    if np.hypot(across[0], across[2]) > 1e-8:
        a = float(np.arctan2(across[2], across[0]))
        c, s = np.cos(a), np.sin(a)
        rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=np.float32)
        j = j @ rot.T
    else:
        j = j.copy()
    j[..., 0] -= j[0, _PELVIS, 0]
    j[..., 2] -= j[0, _PELVIS, 2]
    return j


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
# the model
# ---------------------------------------------------------------------------------------------
class ActorVAE(nn.Module):
    """Class-conditional transformer VAE over per-frame pose features."""

    def __init__(self, config: Config):
        super().__init__()
        if not config.classes:
            raise ValueError("the VAE needs at least one class")
        if config.d_model % config.heads or config.d_model % 2:
            raise ValueError("d_model must be even and divisible by heads")
        self.config = config
        C, D, F = len(config.classes), config.d_model, config.num_features
        self.mu_token = nn.Parameter(torch.randn(C, D) * 0.02)       # (C, D) per-class mu query
        self.sigma_token = nn.Parameter(torch.randn(C, D) * 0.02)    # (C, D) per-class Sigma query
        self.class_bias = nn.Parameter(torch.randn(C, D) * 0.02)     # (C, D) decoder per-class bias
        self.embed = nn.Linear(F, D)
        enc_layer = nn.TransformerEncoderLayer(D, config.heads, config.ff, config.dropout, activation="gelu",
                                               batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(enc_layer, config.enc_layers, norm=nn.LayerNorm(D),
                                             enable_nested_tensor=False)
        dec_layer = nn.TransformerDecoderLayer(D, config.heads, config.ff, config.dropout, activation="gelu",
                                               batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(dec_layer, config.dec_layers, norm=nn.LayerNorm(D))
        self.out = nn.Linear(D, F)
        if config.posterior_heads:
            # the encoder's final LayerNorm gives both tokens the same affine map; separate heads let
            # the posterior scale move independently of its mean
            self.mu_head = nn.Linear(D, D)
            self.logvar_head = nn.Linear(D, D)
            with torch.no_grad():
                self.logvar_head.weight.mul_(0.1)
                self.logvar_head.bias.fill_(config.logvar_init)
        # normalisation statistics of the features and of their frame-to-frame differences
        self.register_buffer("feat_mean", torch.zeros(F))
        self.register_buffer("feat_std", torch.ones(F))
        self.register_buffer("vel_std", torch.ones(F))
        # (C, D) per-class mean posterior mean moved into ``class_bias`` by :func:`recentre_state` when a
        # checkpoint is exported (zero while training; not in state_dict, saved explicitly as "mu_shift")
        self.register_buffer("mu_shift", torch.zeros(C, D), persistent=False)
        # (C, D) per-class standard deviation of the aggregate posterior (after the shift), fitted at export;
        # prior samples are z = prior_scale[c] * eps (ones = the plain N(0, I) prior)
        self.register_buffer("prior_scale", torch.ones(C, D), persistent=False)

    # ---- normalisation ---------------------------------------------------------------------
    def set_stats(self, feat_mean: torch.Tensor, feat_std: torch.Tensor, vel_std: torch.Tensor) -> None:
        self.feat_mean.copy_(torch.as_tensor(feat_mean, dtype=torch.float32))
        self.feat_std.copy_(torch.as_tensor(feat_std, dtype=torch.float32).clamp_min(1e-3))
        self.vel_std.copy_(torch.as_tensor(vel_std, dtype=torch.float32).clamp_min(1e-4))

    def normalise(self, feats: torch.Tensor) -> torch.Tensor:
        return (feats - self.feat_mean) / self.feat_std

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.feat_std + self.feat_mean

    # ---- encoder / decoder -----------------------------------------------------------------
    def encode(self, x: torch.Tensor, mask: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, F) standardised features, mask (B, T) True = valid frame, y (B,) class ids
        -> mu (B, D), logvar (B, D)."""
        B, T, _ = x.shape
        h = self.embed(x) + sinusoidal(T, self.config.d_model, x.device)           # (B, T, D)
        tokens = torch.stack([self.mu_token[y], self.sigma_token[y]], dim=1)       # (B, 2, D)
        seq = torch.cat([tokens, h], dim=1)                                        # (B, 2+T, D)
        pad = torch.cat([torch.zeros(B, 2, dtype=torch.bool, device=x.device), ~mask], dim=1)
        out = self.encoder(seq, src_key_padding_mask=pad)                          # (B, 2+T, D)
        mu, logvar = out[:, 0], out[:, 1]
        if self.config.posterior_heads:
            mu, logvar = self.mu_head(mu), self.logvar_head(logvar)
        return mu - self.mu_shift[y], logvar.clamp(-30.0, 20.0)

    def decode_memory(self, memory: torch.Tensor, T: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        """memory (B, D) = z + class bias -> standardised features (B, T, F); padded frames are 0."""
        B = memory.shape[0]
        q = sinusoidal(T, self.config.d_model, memory.device).expand(B, T, -1)    # (B, T, D)
        pad = None if mask is None else ~mask
        h = self.decoder(q, memory[:, None, :], tgt_key_padding_mask=pad)         # (B, T, D)
        out = self.out(h)                                                          # (B, T, F)
        if mask is not None:
            out = out * mask[..., None]
        return out

    def decode(self, z: torch.Tensor, y: torch.Tensor, T: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, D), y (B,) -> standardised features (B, T, F)."""
        return self.decode_memory(z + self.class_bias[y], T, mask)

    # ---- training --------------------------------------------------------------------------
    def losses(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """batch: features (B, T, F) raw, mask (B, T) bool, label (B,) long -> loss terms."""
        feats, mask, y = batch["features"], batch["mask"].bool(), batch["label"].long()
        x = self.normalise(feats) * mask[..., None]                                 # (B, T, F)
        mu, logvar = self.encode(x, mask, y)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        z = mu + torch.exp(0.5 * logvar) * eps                                      # (B, D)
        pred = self.decode(z, y, x.shape[1], mask)                                  # (B, T, F)
        m = mask[..., None].float()
        F = x.shape[-1]
        pos = (((pred - x) ** 2) * m).sum() / (m.sum() * F).clamp_min(1.0)
        # velocities: standardised-feature differences rescaled to units of the velocity std
        scale = self.feat_std / self.vel_std                                        # (F,)
        vm = (mask[:, 1:] & mask[:, :-1])[..., None].float()
        dv = ((pred[:, 1:] - pred[:, :-1]) - (x[:, 1:] - x[:, :-1])) * scale
        vel = ((dv ** 2) * vm).sum() / (vm.sum() * F).clamp_min(1.0)
        kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(-1)).mean()
        c = self.config
        motion = motion_loss(pred, x, mask, c.motion_eps)
        loss = c.pos_weight * pos + c.vel_weight * vel + c.kl_weight * kl + c.motion_weight * motion
        return {"loss": loss, "pos": pos, "vel": vel, "kl": kl, "motion": motion}

    def train_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        """One optimiser step on ``batch``; returns the loss terms as floats."""
        self.train()
        opt = optimizers["vae"]
        out = self.losses(batch)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        nn.utils.clip_grad_norm_(self.parameters(), 1.0)
        opt.step()
        return {k: float(v.detach()) for k, v in out.items()}


def make_optimizers(model: ActorVAE) -> dict[str, torch.optim.Optimizer]:
    c = model.config
    return {"vae": torch.optim.AdamW(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)}


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


def collate_clips(items: Sequence[tuple[np.ndarray, int]], rng: np.random.Generator | None = None,
                  *_: Any) -> dict[str, torch.Tensor]:
    """(raw repetition features (R, F), class id) items -> batch: features (B, R, F) float32, mask (B, R)
    bool (all True: every repetition has R normalised frames), label (B,) long."""
    feats = np.stack([f for f, _ in items]).astype(np.float32)
    return {"features": torch.from_numpy(feats), "mask": torch.ones(feats.shape[:2], dtype=torch.bool),
            "label": torch.tensor([c for _, c in items], dtype=torch.long)}


class ClipBatches:
    """Endless class-balanced batches of repetitions: each item picks a class with probability
    proportional to (its repetition count) ** ``balance`` (0: uniform over classes, 1: uniform over
    repetitions), then one of its repetitions.  Randomness from a seeded ``np.random.Generator``."""

    def __init__(self, items: Sequence[tuple[np.ndarray, int]], num_classes: int, batch_size: int,
                 seed: int = 0, rank: int = 0, balance: float = 0.5):
        if not items:
            raise UserError("no training motions")
        self.items = list(items)
        self.by_class = [[i for i, (_, c) in enumerate(self.items) if c == k] for k in range(num_classes)]
        self.present = [k for k, v in enumerate(self.by_class) if v]
        w = np.array([len(self.by_class[k]) for k in self.present], dtype=np.float64) ** float(balance)
        self.p = w / w.sum()
        self.batch_size = batch_size
        self.rng = np.random.default_rng([seed, rank, 17])

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        ks = self.rng.choice(self.present, size=self.batch_size, p=self.p)
        chosen = [self.items[self.by_class[k][int(self.rng.integers(len(self.by_class[k])))]] for k in ks]
        return collate_clips(chosen)


def compute_stats(items: Sequence[tuple[np.ndarray, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-feature mean / std and frame-difference std over every training repetition."""
    allf = np.stack([f for f, _ in items])                                          # (N, R, F)
    vel = np.diff(allf, axis=1).reshape(-1, allf.shape[-1])
    vstd = vel.std(0)
    vstd[-1] = 1.0                                                                 # duration: constant
    allf = allf.reshape(-1, allf.shape[-1])
    return torch.from_numpy(allf.mean(0)), torch.from_numpy(allf.std(0)), torch.from_numpy(vstd)


def motions_to_items(motions: Sequence[Motion], classes: Sequence[str], config: "Config | None" = None
                     ) -> list[tuple[np.ndarray, int]]:
    """Motions -> (raw repetition features (R, F), class id): every motion cut into single repetitions
    (:func:`motionviz.core.repetitions.split_repetitions`), each canonicalised and time-normalised to
    ``config.rep_frames`` with its duration as the last feature."""
    from ..core.repetitions import split_repetitions, time_normalise

    cfg = config or Config(classes=tuple(classes))
    index = {k: i for i, k in enumerate(classes)}
    out = []
    for m in motions:
        key = class_key(m.labels.label, m.labels.correct)
        if key not in index or m.num_frames < 8 or not np.isfinite(m.joints).all():
            continue
        for a, b in split_repetitions(m, cfg.max_seconds, cfg.min_seconds):
            if b - a < 4:
                continue
            r = time_normalise(canonicalise(m.joints[a:b]), cfg.rep_frames)
            out.append((rep_item_features(r, (b - a - 1) / m.fps), index[key]))
    return out


def probe_batches(items: Sequence[tuple[np.ndarray, int]], num_classes: int, frames: int, per_class: int = 16,
                  seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Fixed repetitions for :func:`recentre_state`: up to ``per_class`` of each class, one batch per
    class (``frames`` is unused: repetitions have a fixed normalised length)."""
    rng = np.random.default_rng([seed, 23])
    by_class: dict[int, list[np.ndarray]] = {}
    for joints, c in items:
        by_class.setdefault(c, []).append(joints)
    out = []
    for c in range(num_classes):
        clips = by_class.get(c, [])
        if not clips:
            continue
        pick = [clips[i] for i in rng.permutation(len(clips))[:per_class]]
        out.append(collate_clips([(j, c) for j in pick]))
    return out


def recentre_state(model: ActorVAE, probes: Sequence[dict[str, torch.Tensor]],
                   shrink: float = 4.0) -> dict[str, torch.Tensor]:
    """Exported weights with a per-class prior fitted to the aggregate posterior:

    * each class's mean posterior mean m_c moves from z into the decoder bias: ``class_bias[c] += m_c``
      and ``mu_shift[c] = m_c`` (the encoder subtracts it).  Reconstructions (encode -> decode) are
      unchanged and the KL to N(0, I) only drops; it is the optimum the weak (1e-5) KL term moves
      towards only very slowly.
    * ``prior_scale[c]`` = per-dimension standard deviation of z ~ q(z | x) over the class's clips
      (var of the means + mean of the variances), shrunk towards the all-class value with weight
      ``shrink`` clips for classes with few clips.  Prior samples are ``prior_scale[c] * eps``, so they
      land where the decoder was trained (ex-post density estimation; ones = ACTOR's N(0, I)).
    """
    was_training = model.training
    model.eval()
    shift = model.mu_shift.detach().clone()                                          # (C, D)
    C, D = shift.shape
    sums = torch.zeros(C, D)
    counts = torch.zeros(C)
    with torch.no_grad():
        for b in probes:
            feats = b["features"].to(shift.device)
            mask = b["mask"].to(shift.device).bool()
            y = b["label"].to(shift.device).long()
            mu, logvar = model.encode(model.normalise(feats) * mask[..., None], mask, y)   # (n, D)
            c = int(y[0])
            mu_c = mu.mean(0)
            shift[c] += mu_c
            r = (mu - mu_c).cpu()
            sums[c] += (r ** 2).sum(0) + logvar.exp().sum(0).cpu()               # sum of E[(z - m_c)^2]
            counts[c] += len(mu)
    model.train(was_training)
    have = counts > 0
    var_c = sums / counts.clamp_min(1)[:, None]                                     # (C, D)
    pooled = (sums[have].sum(0) / counts[have].sum()) if bool(have.any()) else torch.ones(D)
    n = counts[:, None]
    var = (n * var_c + shrink * pooled) / (n + shrink)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state["class_bias"] = state["class_bias"] + (shift - model.mu_shift)
    state["mu_shift"] = shift
    state["prior_scale"] = var.clamp_min(1e-6).sqrt().to(shift.dtype)
    return state


def _apply_overrides(config: Config, overrides: dict[str, Any]) -> Config:
    names = {f.name: f for f in fields(Config)}
    kw = {}
    for k, v in overrides.items():
        if k not in names or k == "classes":
            raise UserError(f"unknown VAE config field {k!r}; choose from "
                            f"{', '.join(n for n in names if n != 'classes')}")
        kw[k] = tuple(v) if isinstance(v, list) else v
    return replace(config, **kw)


def build_training(opts: Any) -> Any:
    """:data:`motionviz.training.loop.TRAINERS` builder: corpus -> class-balanced repetitions -> ActorVAE."""
    from ..data import augment_mirror, load_corpus, sided_labels
    from ..training.loop import TrainSetup, shard

    config = tiny_config() if opts.tiny else Config()
    if opts.batch_size is not None:
        config = replace(config, batch_size=int(opts.batch_size))
    if opts.lr is not None:
        config = replace(config, lr=float(opts.lr))
    config = _apply_overrides(config, dict(opts.overrides or {}))
    datasets = tuple(opts.datasets or config.datasets or (("irds",) if opts.tiny else VAE_DATASETS))
    motions = load_corpus("train", list(datasets), root=opts.data_root)
    motions = [m for m in motions if m.labels.label]
    if not motions:
        raise UserError(f"no labelled training motions in {', '.join(datasets)}")
    sided: set[str] = set()
    if config.mirror:
        sided = sided_labels(motions)
        motions = augment_mirror(motions, skip_labels=sided)
    classes = classes_of(motions)
    config = replace(config, classes=classes, datasets=datasets)
    items = motions_to_items(motions, classes, config)
    model = ActorVAE(config)
    model.set_stats(*compute_stats(items))
    model.to(opts.device)
    batches = ClipBatches(shard(items, opts.rank, opts.world_size), len(classes), config.batch_size,
                          seed=opts.seed, rank=opts.rank, balance=config.class_balance)
    if opts.device != "cpu":
        batches = _to_device(batches, opts.device)
    warm = max(config.warmup, 1e-6)

    def lr_lambda(f: float) -> float:
        if f < warm:
            return max(f / warm, 0.01)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, (f - warm) / (1 - warm))))

    counts = {k: 0 for k in classes}
    for _, c in items:
        counts[classes[c]] += 1
    metadata = {"text_encoder": "none", "data": data_provenance(list(datasets)), "not_mirrored": sorted(sided),
                "stats": {"train_motions": len(items), "classes": len(classes), "class_counts": counts,
                          "parameters": sum(p.numel() for p in model.parameters())}}
    probes = probe_batches(items, len(classes), config.rep_frames, seed=opts.seed)
    metadata["export"] = "class means of the posterior moved into the decoder bias (recentre_state)"
    return TrainSetup(model=model, batches=batches, optimizers=make_optimizers(model), kind=KIND, config=config,
                      metadata=metadata, export=lambda: recentre_state(model, probes), lr_lambda=lr_lambda,
                      log_keys=("loss", "pos", "vel", "kl", "motion"))


def _to_device(it: Iterator[dict[str, torch.Tensor]], device: str) -> Iterator[dict[str, torch.Tensor]]:
    for b in it:
        yield {k: v.to(device) for k, v in b.items()}


# ---------------------------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Endpoint:
    """One end of an interpolation: a class + seed (z ~ N(0, I)), or a real motion (its posterior
    mean; ``label``/``correct`` then override the motion's own class)."""

    label: str | None = None
    correct: bool | None = None
    seed: int = 0
    motion: Motion | None = None


@dataclass(frozen=True, eq=False)
class LatentPath:
    """A segment in the decoder's input space: latent codes z_a, z_b (D,) and class biases b_a, b_b (D,)
    of its ends (class ids ``class_a``, ``class_b``).  Point t in [0, 1] decodes from memory
    interp(z_a, z_b, t) + lerp(b_a, b_b, t), with interp = slerp if ``spherical`` else lerp."""

    z_a: torch.Tensor
    b_a: torch.Tensor
    class_a: int
    z_b: torch.Tensor
    b_b: torch.Tensor
    class_b: int
    spherical: bool = False

    def memories(self, t: torch.Tensor) -> torch.Tensor:
        """t (S,) -> decoder memories (S, D)."""
        t = torch.as_tensor(t, dtype=self.z_a.dtype).reshape(-1)
        z = slerp(self.z_a, self.z_b, t) if self.spherical else lerp(self.z_a, self.z_b, t)   # (S, D)
        return z + lerp(self.b_a, self.b_b, t)                                                  # (S, D)


def _noop(fraction: float, text: str) -> None:
    return None


class VAEGenerator:
    """The trained VAE behind the :class:`motionviz.generators.registry.Generator` protocol."""

    name = "vae"
    tasks = frozenset({"label", "interpolate", "vary"})
    skeleton = COMMON

    def __init__(self, model: ActorVAE, metadata: dict[str, str] | None = None, path: Path | None = None):
        self.model = model.eval()
        self.config = model.config
        self.metadata = dict(metadata or {})
        self.path = path
        self.classes = tuple(self.config.classes)
        self._index = {k: i for i, k in enumerate(self.classes)}
        labels: list[str] = []
        for k in self.classes:
            lab, _ = split_class(k)
            if lab not in labels:
                labels.append(lab)
        self.labels = tuple(labels)

    # ---- classes ---------------------------------------------------------------------------
    def has_correctness(self, label: str) -> bool:
        label = resolve_label(label, self.labels)
        return f"{label}/correct" in self._index or f"{label}/incorrect" in self._index

    def resolve(self, name: str) -> str:
        return resolve_label(name, self.labels)

    def class_index(self, label: str | None, correct: bool | None = None) -> int:
        """Class id of (label, correct); ``correct=None`` means "correct" for labels that have both."""
        if label is None or not str(label).strip():
            raise UserError("choose an exercise (label) for the VAE")
        lab = self.resolve(label)
        if lab in self._index:
            if correct is False:
                raise UserError(f"{lab} has no incorrect examples in this model's training data")
            return self._index[lab]
        key = f"{lab}/correct" if correct in (None, True) else f"{lab}/incorrect"
        if key not in self._index:
            state = "correct" if correct in (None, True) else "incorrect"
            raise UserError(f"{lab} has no {state} examples in this model's training data")
        return self._index[key]

    # ---- core ------------------------------------------------------------------------------
    def _prior(self, seed: int, num: int, k: int = 0) -> torch.Tensor:
        """eps ~ N(0, I) (N, D) of repetition round ``k``: row i from its own generator seeded with
        :meth:`_round_seed` (seed + i, k), so sample i of a batch seeded with s equals the single sample
        seeded with s + i."""
        rows = []
        for i in range(int(num)):
            g = torch.Generator(device="cpu")
            g.manual_seed(self._round_seed((int(seed) + i) % 2**64, k))
            rows.append(torch.randn(1, self.config.latent_dim, generator=g))
        return torch.cat(rows) if rows else torch.zeros(0, self.config.latent_dim)   # (N, D)

    def _prior_z(self, c: int, seed: int, num: int, k: int = 0) -> torch.Tensor:
        """Prior latents of class c, round k: prior_scale[c] * eps (N, D)."""
        return self._prior(seed, num, k) * self.model.prior_scale[c]

    def _round_seed(self, seed: int, k: int) -> int:
        """The seed of repetition round ``k`` (round 0 uses ``seed`` itself)."""
        if k == 0:
            return int(seed)
        return int(np.random.SeedSequence([int(seed), int(k)]).generate_state(1, np.uint64)[0])

    def _decode_reps(self, memory: torch.Tensor, chunk: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """memory (N, D) -> canonical repetitions (N, R, J, 3), durations (N,) seconds."""
        js, ds = [], []
        with torch.inference_mode():
            for s in range(0, memory.shape[0], chunk):
                x = self.model.decode_memory(memory[s:s + chunk], self.config.rep_frames)   # (n, R, F)
                j, d = features_to_rep(self.model.denormalise(x))
                js.append(j)
                ds.append(d)
        d = np.clip(np.concatenate(ds), self.config.min_seconds, self.config.max_seconds)
        return np.concatenate(js), d

    def _decode_memory(self, memory: torch.Tensor, frames: int, progress: ProgressFn,
                       more: "Callable[[int], torch.Tensor] | None" = None) -> np.ndarray:
        """memory (N, D) -> joints (N, frames, J, 3) float32 in metres: the repetition decoded from
        ``memory``, followed by repetitions decoded from ``more(k)`` (N, D), k = 1, 2, ... (default: the
        same latent moved by ``continue_spread`` prior standard deviations, seeded) until ``frames`` are
        filled.  Each repetition takes its own decoded duration and starts where the previous one ended
        (:func:`motionviz.core.repetitions.chain`: pelvis moved to meet it, seam cross-faded)."""
        from ..core.repetitions import chain, time_denormalise

        N = memory.shape[0]
        if more is None:
            def more(k: int) -> torch.Tensor:
                g = torch.Generator(device="cpu")
                g.manual_seed(self._round_seed(0, k))
                return memory + self.config.continue_spread * torch.randn(memory.shape, generator=g)
        parts: list[list[np.ndarray]] = [[] for _ in range(N)]
        have = np.zeros(N, dtype=int)
        k = 0
        while (have < frames).any():
            reps, durs = self._decode_reps(memory if k == 0 else more(k))
            for i in range(N):
                if have[i] >= frames:
                    continue
                L = max(2 * _BLEND, int(round(float(durs[i]) * self.config.fps)) + 1)
                have[i] += L - (min(_BLEND, L - 1) if parts[i] else 0)                # chain cross-fades
                parts[i].append(time_denormalise(reps[i], L))
            k += 1
            progress(min(0.99, 0.2 + 0.8 * float(np.minimum(have, frames).mean()) / frames),
                     f"decoding repetition {k}")
        return np.stack([chain(p, blend=_BLEND)[:frames] for p in parts]).astype(np.float32)

    def _motion(self, joints: np.ndarray, label: str, correct: bool | None, text: str) -> Motion:
        return Motion(joints, COMMON, self.config.fps,
                      MotionLabels(dataset=label.split(":", 1)[0], label=label, correct=correct,
                                   text=text, source="vae"))

    def _frames(self, frames: int) -> int:
        lo, hi = LIMITS["frames"]
        try:
            f = int(frames)
        except (TypeError, ValueError):
            raise UserError(f"frames must be a whole number, got {frames!r}") from None
        if not lo <= f <= hi:
            raise UserError(f"frames must be between {lo} and {hi}, got {f}")
        return f

    def sample(self, label: str, correct: bool | None = None, frames: int = 60, num: int = 1, seed: int = 0,
               progress: ProgressFn | None = None) -> list[Motion]:
        """``num`` motions of class (label, correct), z ~ N(0, I) drawn from a generator seeded with ``seed``."""
        progress = progress or _noop
        frames = self._frames(frames)
        c = self.class_index(label, correct)
        lab, corr = split_class(self.classes[c])
        z = self._prior_z(c, seed, num)                                             # (N, D)
        progress(0.1, "sampling latents")
        bias = self.model.class_bias[c].detach()
        memory = z + bias
        joints = self._decode_memory(memory, frames, progress,
                                     lambda k: self._prior_z(c, seed, num, k) + bias)
        return [self._motion(j, lab, corr, f"VAE sample of {self.classes[c]} (seed {seed}, #{i})")
                for i, j in enumerate(joints)]

    def prepare(self, motion: Motion) -> Motion:
        """A user/dataset motion -> common skeleton, 20 fps, normalised, gaps filled (as in training)."""
        from ..data import preprocess

        if not isinstance(motion, Motion):
            raise MotionError("expected a Motion")
        m = preprocess(motion, self.config.fps, normalise=True)
        if m.num_frames < 8:
            raise MotionError(f"the motion has {m.num_frames} frames at {self.config.fps:g} fps; the VAE needs at least 8")
        if not np.isfinite(m.joints).all():
            raise MotionError("the motion has a joint that is never observed; the VAE needs all 15 common joints")
        return m

    def encode(self, motion: Motion, label: str | None = None, correct: bool | None = None,
               progress: ProgressFn | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Posterior (mu (D,), logvar (D,)) and class id of a real motion.  The class is ``label`` /
        ``correct`` if given, else the motion's own label if the model knows it, else the class whose
        encode-decode reconstructs the motion best."""
        progress = progress or _noop
        progress(0.0, "encoding the motion")
        from ..core.repetitions import split_repetitions, time_normalise

        m = self.prepare(motion)
        a, b = max(split_repetitions(m, self.config.max_seconds, self.config.min_seconds),
                   key=lambda ab: ab[1] - ab[0])                                     # its longest repetition
        rep_j = time_normalise(canonicalise(m.joints[a:b]), self.config.rep_frames)
        feats = torch.from_numpy(rep_item_features(rep_j, (b - a - 1) / m.fps))[None]  # (1, R, F)
        x = self.model.normalise(feats)
        mask = torch.ones(1, x.shape[1], dtype=torch.bool)
        with torch.inference_mode():
            if label is not None and str(label).strip():
                c = self.class_index(label, correct)
            else:
                key = class_key(m.labels.label, m.labels.correct) if m.labels.label else ""
                if key in self._index:
                    c = self._index[key]
                elif m.labels.label and m.labels.label in self.labels:
                    c = self.class_index(m.labels.label, None)
                else:
                    c = self._best_class(x, mask)
            mu, logvar = self.model.encode(x, mask, torch.tensor([c]))
        progress(0.2, f"encoded as {self.classes[c]}")
        return mu[0].clone(), logvar[0].clone(), c

    def _best_class(self, x: torch.Tensor, mask: torch.Tensor) -> int:
        """The class whose encode(posterior mean)-decode reconstructs x (1, T, F) best."""
        C = len(self.classes)
        y = torch.arange(C)
        xs = x.expand(C, -1, -1)
        ms = mask.expand(C, -1)
        mu, _ = self.model.encode(xs, ms, y)
        rec = self.model.decode(mu, y, x.shape[1], ms)
        err = ((rec - xs) ** 2).mean(dim=(1, 2))
        return int(err.argmin())

    def vary(self, motion: Motion, num: int = 4, seed: int = 0, spread: float = 1.0, frames: int | None = None,
             label: str | None = None, correct: bool | None = None,
             progress: ProgressFn | None = None) -> list[Motion]:
        """Variations of a real motion: decode z = mu + spread * sigma * eps, eps ~ N(0, I) (seeded).
        ``spread`` 0 gives the reconstruction; ``frames`` defaults to the encoded length."""
        progress = progress or _noop
        if not (isinstance(spread, (int, float)) and math.isfinite(spread) and 0.0 <= spread <= 10.0):
            raise UserError(f"spread must be a number between 0 and 10, got {spread!r}")
        if not 1 <= int(num) <= LIMITS["num"][1]:
            raise UserError(f"number of variations must be between 1 and {LIMITS['num'][1]}, got {num}")
        mu, logvar, c = self.encode(motion, label, correct, progress)
        T = self.prepare(motion).num_frames if frames is None else frames
        T = self._frames(T)
        eps = self._prior(seed, int(num))                                           # (N, D)
        sigma = torch.exp(0.5 * logvar)
        bias = self.model.class_bias[c].detach()
        memory = mu + float(spread) * sigma * eps + bias

        def more(k: int) -> torch.Tensor:
            e = self._prior(seed, int(num), k)
            return mu + max(float(spread), self.config.continue_spread) * sigma * e + bias
        joints = self._decode_memory(memory, T, progress, more)
        lab, corr = split_class(self.classes[c])
        src = motion.labels.label or "motion"
        return [self._motion(j, lab, corr, f"VAE variation {i} of {src} (seed {seed}, spread {spread:g})")
                for i, j in enumerate(joints)]

    def _endpoint(self, e: Endpoint, progress: ProgressFn) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Endpoint -> (z (D,), class bias (D,), class id)."""
        if e.motion is not None:
            mu, _, c = self.encode(e.motion, e.label, e.correct, progress)
            return mu, self.model.class_bias[c].detach(), c
        c = self.class_index(e.label, e.correct)
        return self._prior_z(c, e.seed, 1)[0], self.model.class_bias[c].detach(), c

    def segment(self, start: Endpoint, end: Endpoint, spherical: bool = False,
             progress: ProgressFn | None = None) -> "LatentPath":
        """The latent segment from ``start`` to ``end`` (encodes real motions once); decode any point of
        it with :meth:`decode_path` (e.g. at the position of a UI slider)."""
        progress = progress or _noop
        za, ba, ca = self._endpoint(start, progress)
        zb, bb, cb = self._endpoint(end, progress)
        return LatentPath(za, ba, ca, zb, bb, cb, bool(spherical))

    def decode_path(self, path: "LatentPath", t: Sequence[float] | torch.Tensor, frames: int = 60,
                    progress: ProgressFn | None = None) -> list[Motion]:
        """Motions at positions ``t`` (each in [0, 1]; 0 = start, 1 = end) of ``path``."""
        progress = progress or _noop
        frames = self._frames(frames)
        tt = torch.as_tensor(t, dtype=torch.float32).reshape(-1)                    # (S,)
        if tt.numel() == 0 or not bool(((tt >= 0) & (tt <= 1)).all()):
            raise UserError("interpolation positions must lie between 0 and 1")
        joints = self._decode_memory(path.memories(tt), frames, progress)
        kind = "spherical" if path.spherical else "linear"
        ka, kb = self.classes[path.class_a], self.classes[path.class_b]
        out = []
        for w, j in zip(tt.tolist(), joints):
            lab, corr = split_class(ka if w < 0.5 else kb)
            out.append(self._motion(j, lab, corr, f"VAE {kind} interpolation {ka} -> {kb} at t = {w:.2f}"))
        return out

    def latent_path(self, start: Endpoint, end: Endpoint, steps: int, spherical: bool = False,
                    progress: ProgressFn | None = None) -> tuple[torch.Tensor, tuple[int, int]]:
        """Decoder memories (S, D) of ``steps`` evenly spaced points and the two class ids."""
        if not 2 <= int(steps) <= 64:
            raise UserError(f"interpolation steps must be between 2 and 64, got {steps}")
        p = self.segment(start, end, spherical, progress)
        return p.memories(weights(int(steps))), (p.class_a, p.class_b)

    def interpolate_path(self, start: Endpoint, end: Endpoint, steps: int = 8, frames: int = 60,
                         spherical: bool = False, progress: ProgressFn | None = None) -> list[Motion]:
        """``steps`` motions evenly spaced from ``start`` to ``end`` (both included), (steps, frames)
        deterministic for given endpoints: the latent z is interpolated linearly (``spherical=False``) or
        along the great circle (``True``, norm interpolated linearly), the class bias linearly.

        * two seeds of one class: ``Endpoint("ui-prmd:m01", True, 0)`` -> ``Endpoint("ui-prmd:m01", True, 1)``
        * two classes: ``Endpoint("m01", True, 0)`` -> ``Endpoint("m01", False, 0)`` (correct -> incorrect)
        * two real motions: ``Endpoint(motion=a)`` -> ``Endpoint(motion=b)`` (posterior means)

        The first motion equals ``sample(start...)`` / the reconstruction of the start motion, the last
        the end's.  Labels: the start class for t < 0.5, the end class after."""
        progress = progress or _noop
        frames = self._frames(frames)
        if not 2 <= int(steps) <= 64:
            raise UserError(f"interpolation steps must be between 2 and 64, got {steps}")
        p = self.segment(start, end, spherical, progress)
        out = self.decode_path(p, weights(int(steps)), frames, progress)
        S = len(out)
        return [self._motion(m.joints, m.labels.label, m.labels.correct,
                             m.labels.text.rsplit(" at t =", 1)[0] + f", step {i + 1}/{S} (t = {i / (S - 1):.2f})")
                for i, m in enumerate(out)]

    # ---- the Generator protocol -----------------------------------------------------------
    def interpolate(self, request: Request, progress: ProgressFn | None = None) -> list[Motion]:
        """Interpolation described by a Request: from (label, correct, seed) or ``source`` to
        (to_label or label, extra["to_correct"] or correct, to_seed or seed + 1) or
        ``extra["to_source"]``; ``request.steps`` points; ``extra["spherical"]`` for slerp."""
        r = request.validated()
        ex = r.extra or {}
        to_motion = ex.get("to_source")
        start = Endpoint(r.label, r.correct, r.seed, r.source)
        to_correct = ex.get("to_correct", r.correct if r.to_label is None else None)
        end = Endpoint(r.to_label or r.label, to_correct, r.seed + 1 if r.to_seed is None else r.to_seed, to_motion)
        return self.interpolate_path(start, end, r.steps, r.frames, bool(ex.get("spherical", False)), progress)

    def generate(self, request: Request, progress: ProgressFn | None = None) -> list[Motion]:
        """``extra["task"]``: "label" (default; ``source`` given -> "vary"), "vary" or "interpolate"."""
        r = request.validated()
        task = (r.extra or {}).get("task") or ("vary" if r.source is not None else "label")
        if task == "interpolate":
            return self.interpolate(r, progress)
        if task == "vary":
            if r.source is None:
                raise UserError("variations need a source motion")
            return self.vary(r.source, r.num, r.seed, float((r.extra or {}).get("spread", 1.0)), r.frames,
                             r.label, r.correct, progress)
        if task != "label":
            raise UserError(f"the VAE does {', '.join(sorted(self.tasks))}, not {task!r}")
        return self.sample(r.label, r.correct, r.frames, r.num, r.seed, progress)


def load_generator(path: str | Path) -> VAEGenerator:
    """Rebuild the VAE from a checkpoint (config from its metadata, weights strict)."""
    path = Path(path)
    tensors, meta = load_checkpoint(path, KIND)
    raw = json.loads(meta["config"])
    raw.setdefault("posterior_heads", False)       # checkpoints from before the posterior heads
    config = config_from_json(Config, json.dumps(raw))
    try:
        model = ActorVAE(config)
        extra = {k: tensors.pop(k) for k in ("mu_shift", "prior_scale") if k in tensors}
        model.load_state_dict(tensors, strict=True)
        for k, v in extra.items():
            getattr(model, k).copy_(v)
    except (RuntimeError, ValueError) as e:
        raise CheckpointError(f"{path.name} does not match the VAE architecture: {str(e).splitlines()[0]}") from None
    return VAEGenerator(model.eval(), meta, path)


# ---------------------------------------------------------------------------------------------
# benchmark (``python -m motionviz bench``; listed in motionviz.evaluation.bench.SECTIONS)
# ---------------------------------------------------------------------------------------------
def bench(quick: bool = False) -> dict[str, Any]:
    """Seconds per 60-frame motion sampled by the VAE, batch 1 and batch 16 (median over repeats).

    Uses ``checkpoints/vae.safetensors`` when present, else an untrained model of the default
    architecture (same cost).  Runs on the CPU with the current torch thread setting."""
    from ..generators.registry import checkpoint_path

    path = checkpoint_path(KIND)
    if path.is_file():
        gen, source = load_generator(path), path.name
    else:
        gen, source = VAEGenerator(ActorVAE(Config(classes=("ui-prmd:m01/correct", "ui-prmd:m01/incorrect")))), \
            "untrained default architecture"
    label = gen.labels[0]
    repeats = 3 if quick else 10
    out: dict[str, Any] = {"checkpoint": source, "frames": 60, "threads": torch.get_num_threads(),
                           "parameters": sum(p.numel() for p in gen.model.parameters())}
    for batch in (1, 16):
        gen.sample(label, None, frames=60, num=batch, seed=0)                       # warm-up
        times = []
        for r in range(repeats):
            t0 = time.perf_counter()
            gen.sample(label, None, frames=60, num=batch, seed=r)
            times.append(time.perf_counter() - t0)
        out[f"seconds_per_motion_batch{batch}"] = float(np.median(times)) / batch
    out["repeats"] = repeats
    return out


# ---------------------------------------------------------------------------------------------
# sanity checks of a trained model (numbers for the README model card)
# ---------------------------------------------------------------------------------------------
def _clip_stats(joints: np.ndarray) -> dict[str, float]:
    """joints (T, J, 3) -> bone-length coefficient of variation over time, mean joint speed (m/s at
    20 fps) and the mean bone lengths."""
    bl = COMMON.bone_lengths(joints)                                                # (T, B)
    cv = float(np.mean(bl.std(0) / np.maximum(bl.mean(0), 1e-6)))
    speed = float(np.linalg.norm(np.diff(joints, axis=0), axis=-1).mean() * DEFAULT_FPS) if len(joints) > 1 else 0.0
    return {"bone_cv": cv, "speed": speed, "bones": bl.mean(0)}


def _descriptor(joints: np.ndarray) -> np.ndarray:
    """A pose-sequence descriptor for nearest-centroid checks: time mean and std of the
    pelvis-relative joints and the std of the pelvis height, (2 (J-1) 3 + 1,)."""
    f = joints_to_features(canonicalise(joints))                                    # (T, F)
    rel = f[:, 3:]
    return np.concatenate([rel.mean(0), rel.std(0), [f[:, 1].std()]]).astype(np.float64)


def sanity(gen: VAEGenerator, data_root: str | Path | None = None, per_class: int = 8, frames: int = 60,
           steps: int = 16, seed: int = 0, max_real: int = 40,
           datasets: Sequence[str] | None = None) -> dict[str, Any]:
    """Plausibility numbers of prior samples against held-out real data (test split):

    * ``bone_cv`` (samples / real): mean over bones of std/mean of the bone length over time (0 = rigid);
    * ``bone_length_error``: mean |sample bone length - real bone length| / real (per class average);
    * ``speed``: mean joint speed in m/s (samples / real) and ``frozen_fraction`` of samples moving
      less than 10 % of their class's real speed;
    * ``nearest_centroid_accuracy``: share of samples whose descriptor is nearest to the real
      centroid of their own class (among the classes with held-out data; ``chance`` beside it), and the
      same for correct vs incorrect of each exercise that has both (``correctness_accuracy``);
      ``real_nearest_centroid_accuracy`` is the same check of the held-out real clips (leave-one-out);
    * ``interpolation``: for linear and spherical paths of ``steps`` points between two seeds of a
      class and between correct/incorrect, max / mean distance between consecutive steps (1 = even;
      large = a jump) and the mean step distance in metres.

    ``datasets`` restricts the check to those datasets' classes (default: every dataset of the model).
    """
    from ..data import load_corpus

    known = sorted({k.split(":", 1)[0] for k in gen.classes})
    wanted = list(datasets) if datasets is not None else known
    datasets = [d for d in known if d in wanted]
    if not datasets:
        raise UserError(f"the model knows none of {', '.join(wanted)}; it has {', '.join(known)}")
    real = [m for m in load_corpus("test", datasets, root=data_root) if m.labels.label]
    by_class: dict[int, list[np.ndarray]] = {}
    for m in real:
        k = class_key(m.labels.label, m.labels.correct)
        if k in gen._index and np.isfinite(m.joints).all() and m.num_frames >= 8:
            by_class.setdefault(gen._index[k], []).append(m.joints)
    rng = np.random.default_rng(seed)
    cls = sorted(by_class)
    real_desc, real_stats = {}, {}
    for c in cls:
        clips = by_class[c]
        pick = rng.permutation(len(clips))[:max_real]
        crops = []
        for i in pick:
            j = clips[i]
            s = int(rng.integers(0, max(1, len(j) - frames + 1)))
            crops.append(j[s:s + frames])
        real_desc[c] = np.stack([_descriptor(j) for j in crops])
        st = [_clip_stats(j) for j in crops]
        real_stats[c] = {"bone_cv": np.mean([s["bone_cv"] for s in st]), "speed": np.mean([s["speed"] for s in st]),
                         "bones": np.mean([s["bones"] for s in st], axis=0)}
    scale = np.concatenate([d for d in real_desc.values()]).std(0) + 1e-6
    centroids = np.stack([real_desc[c].mean(0) / scale for c in cls])              # (K, P)
    # the same check for the real clips themselves (leave-one-out centroids): the ceiling to compare with
    real_hits, real_n = 0, 0
    for ci, c in enumerate(cls):
        n_c = len(real_desc[c])
        for k in range(n_c):
            cen = centroids.copy()
            if n_c > 1:
                cen[ci] = (real_desc[c].sum(0) - real_desc[c][k]) / (n_c - 1) / scale
            d = np.linalg.norm(cen - real_desc[c][k] / scale, axis=1)
            real_hits += int(int(d.argmin()) == ci)
            real_n += 1
    s_cv, s_speed, r_cv, r_speed, blerr, frozen, hits, corr_hits, corr_n = [], [], [], [], [], 0, 0, 0, 0
    n = 0
    for ci, c in enumerate(cls):
        lab, corr = split_class(gen.classes[c])
        ms = gen.sample(lab, corr if corr is not None else None, frames, per_class, seed + c)
        for m in ms:
            st = _clip_stats(m.joints)
            s_cv.append(st["bone_cv"])
            s_speed.append(st["speed"])
            blerr.append(float(np.mean(np.abs(st["bones"] - real_stats[c]["bones"]) / real_stats[c]["bones"])))
            frozen += st["speed"] < 0.1 * real_stats[c]["speed"]
            d = np.linalg.norm(centroids - _descriptor(m.joints) / scale, axis=1)
            hits += int(cls[int(d.argmin())] == c)
            n += 1
            if corr is not None:
                other = gen._index.get(class_key(lab, not corr))
                if other in real_desc:
                    oi = cls.index(other)
                    corr_hits += int(d[ci] < d[oi])
                    corr_n += 1
        r_cv.append(real_stats[c]["bone_cv"])
        r_speed.append(real_stats[c]["speed"])
    # interpolation smoothness
    interp: dict[str, Any] = {}
    lab0 = "ui-prmd:m01" if "ui-prmd:m01" in gen.labels else next(
        (lab for lab in gen.labels if gen.has_correctness(lab)), gen.labels[0])
    for name, a, b in (("seeds", Endpoint(lab0, None, seed), Endpoint(lab0, None, seed + 1)),
                       ("correct_to_incorrect", Endpoint(lab0, True, seed),
                        Endpoint(lab0, False if gen.has_correctness(lab0) else None, seed))):
        for spherical in (False, True):
            path = np.stack([m.joints for m in gen.interpolate_path(a, b, steps, frames, spherical)])
            d = np.linalg.norm(np.diff(path, axis=0), axis=-1).mean(axis=(1, 2))    # (S-1,) metres
            interp[f"{name}_{'slerp' if spherical else 'lerp'}"] = {
                "max_over_mean_step": round(float(d.max() / max(d.mean(), 1e-9)), 3),
                "mean_step_m": round(float(d.mean()), 4), "end_to_end_m": round(float(np.linalg.norm(
                    path[-1] - path[0], axis=-1).mean()), 4)}
    return {
        "classes_checked": len(cls), "samples": n, "frames": frames,
        "bone_cv": {"samples": round(float(np.mean(s_cv)), 4), "real": round(float(np.mean(r_cv)), 4)},
        "bone_length_error": round(float(np.mean(blerr)), 4),
        "speed_m_per_s": {"samples": round(float(np.mean(s_speed)), 4), "real": round(float(np.mean(r_speed)), 4)},
        "frozen_fraction": round(frozen / max(n, 1), 4),
        "nearest_centroid_accuracy": round(hits / max(n, 1), 4), "chance": round(1 / max(len(cls), 1), 4),
        "real_nearest_centroid_accuracy": round(real_hits / max(real_n, 1), 4),
        "correctness_accuracy": round(corr_hits / corr_n, 4) if corr_n else None,
        "interpolation": interp, "interpolation_label": lab0,
    }
