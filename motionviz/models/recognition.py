"""Motion recogniser: exercise / content classifier on the common skeleton, whose penultimate features
serve the generative metrics (FID, diversity, ...; :mod:`motionviz.analysis.metrics`).

Architecture (batch-first, B = batch, T = frames, J = joints, C = channels):

1. :func:`canonicalise` (no weights): every sequence is turned to face +Z (left = +X) from its first
   frames, scaled to the reference body size (sum of bone lengths), centred on the first frame's pelvis
   (x, z) and put on the floor (lowest valid joint y = 0).  The model is therefore invariant to the
   facing / scale / position normalisation of data and generators.
2. Per-frame input (C = 90): joints relative to the pelvis (14 x 3), pelvis position (3), joint
   velocities in m/s (15 x 3) -> Linear + LayerNorm + GELU to ``hidden``.
3. Temporal convolutions: residual Conv1d blocks (kernel 5, dilations 1, 2, 4, ...).
4. One bidirectional GRU layer (packed by length, so padding never leaks in).
5. Masked mean + max pooling over time -> robust to length -> Linear + GELU = the ``feature_dim``
   **features** (penultimate layer) -> heads: ``label`` logits (``<dataset>:<id>``), ``correct`` logit
   (correct vs incorrect execution; trained only where known) and ``score`` (clinical quality score / 100,
   trained only where known, i.e. KIMORE).  The correctness and score heads have one output per class
   (what counts as a wrong squat is not what counts as a wrong arm raise): the output of the true class
   is trained, the output of the predicted class (or of a given class) is reported.

Training: ``python -m motionviz train recognizer --minutes 20 --threads 1 --save-every 4 --set
chain_views=0.5`` (training split of every corpus dataset; random crops of 40-128 frames, single-repetition
files chained with their subject's other repetitions half of the time, random time stretch, yaw, scale and
jitter, mirrored copies with sided labels swapped, class-balanced sampling).  The shipped checkpoint
(3,384 steps, 20 min on one CPU thread) scores on the held-out **test** subjects
(``python -m motionviz classify --split test --json``): UI-PRMD exercise 97.3 %, UI-PRMD correct vs
incorrect 92.3 % (400 motions, subjects s09-s10), KIMORE exercise 93.3 % (6 patients), Bandai content
98.1 % (held-out takes), IRDS gesture 33.3 % / correctness 85.2 % (1 patient), all 94.4 % (1,066 motions);
KIMORE clinical score RMSE 19.7 / MAE 16.6 points.  The checkpoint embeds the config (with the label
list) and the data licences.  ``load_recognizer()`` loads ``checkpoints/recognizer.safetensors`` once per
process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import UserError
from ..core.motion import DEFAULT_FPS, REFERENCE_BONE_SUM, Motion, MotionError
from ..core.representation import interpolate_nans
from ..core.skeleton import COMMON, Skeleton

__all__ = ["Config", "Recognizer", "canonicalise", "motions_to_batch",
           "KIND", "fill_missing"]

KIND = "recognizer"
ProgressFn = Callable[[float, str], None]


@dataclass
class Config:
    labels: tuple[str, ...] = ()          # class names "<dataset>:<id>", index = logit position
    num_joints: int = 15                  # common skeleton
    hidden: int = 128
    conv_blocks: int = 3
    gru_hidden: int = 96
    feature_dim: int = 128
    dropout: float = 0.1
    fps: float = DEFAULT_FPS
    min_crop: int = 40                    # training crop lengths (frames)
    max_crop: int = 128
    chain_views: float = 0.5              # probability that a training item of a single-repetition dataset
    #                                       (UI-PRMD, IntelliRehabDS), short or long, is played back to back
    #                                       with other repetitions of its subject, exercise and correctness
    #                                       (cross-faded) before the crop, so the heads also see repetition
    #                                       chains as generators produce them (the shipped recogniser: 0.5;
    #                                       0 = off, the recogniser before 2026-12-03)
    label_smoothing: float = 0.1
    correct_weight: float = 1.0
    score_weight: float = 1.0
    lr: float = 2e-3
    weight_decay: float = 1e-2
    batch_size: int = 48


# ================================================================================================
# Canonicalisation (no weights)
# ================================================================================================
def canonicalise(x: torch.Tensor, mask: torch.Tensor, skeleton: Skeleton = COMMON,
                 facing_frames: int = 10) -> torch.Tensor:
    """x (B, T, J, 3) metres Y-up, mask (B, T) True for real frames -> canonical copy (B, T, J, 3):
    facing +Z from the first ``facing_frames`` valid frames, reference body size, pelvis of the first
    frame at x = z = 0, lowest valid joint at y = 0.  Padded frames are set to zero."""
    m = mask.to(x.dtype)                                                   # (B, T)
    ix = skeleton.index
    left = [ix("left_hip"), ix("left_shoulder")]
    right = [ix("right_hip"), ix("right_shoulder")]
    k = min(facing_frames, x.shape[1])
    across = (x[:, :k, left] - x[:, :k, right]).mean(2)                   # (B, k, 3)
    across = (across * m[:, :k, None]).sum(1)                              # (B, 3)
    ang = torch.atan2(across[:, 2], across[:, 0])                          # (B,)
    c, s = torch.cos(ang)[:, None, None], torch.sin(ang)[:, None, None]
    xx, yy, zz = x[..., 0], x[..., 1], x[..., 2]
    x = torch.stack([xx * c + zz * s, yy, -xx * s + zz * c], dim=-1)
    # scale: mean over valid frames of the sum of bone lengths
    par = [p for p, _ in skeleton.bones]
    chi = [c_ for _, c_ in skeleton.bones]
    size = (x[:, :, chi] - x[:, :, par]).norm(dim=-1).sum(-1)              # (B, T)
    size = (size * m).sum(1) / m.sum(1).clamp_min(1.0)                     # (B,)
    ref = REFERENCE_BONE_SUM.get(skeleton.name, 4.0)
    x = x * (ref / size.clamp_min(1e-3))[:, None, None, None]
    root = x[:, 0, skeleton.root]                                          # (B, 3)
    big = torch.finfo(x.dtype).max
    floor = torch.where(mask[:, :, None], x[..., 1], torch.full_like(x[..., 1], big)).amin(dim=(1, 2))
    offset = torch.stack([root[:, 0], floor, root[:, 2]], dim=-1)          # (B, 3)
    x = x - offset[:, None, None, :]
    return x * m[:, :, None, None]


def fill_missing(joints: np.ndarray) -> np.ndarray:
    """(T, J, 3) with NaNs -> NaN-free copy: linear interpolation in time per coordinate (edges held);
    joints never observed are put at the pelvis (or 0)."""
    x = np.asarray(joints, dtype=np.float32)
    if not np.isnan(x).any():
        return x
    out = interpolate_nans(x)
    T = len(out)
    never = np.isnan(out).any(axis=(0, 2))
    if never.any():
        root = out[:, 0] if not never[0] else np.zeros((T, 3), np.float32)
        out[:, never] = root[:, None]
    return out


def _check_joints(x: np.ndarray, num_joints: int) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise MotionError(f"motions must be numbers, got dtype {a.dtype}")
    if a.ndim != 3 or a.shape[1] != num_joints or a.shape[2] != 3:
        raise MotionError(f"each motion must have shape (frames, {num_joints}, 3) on the common skeleton; "
                          f"got {a.shape}")
    if len(a) < 2:
        raise MotionError("a motion needs at least 2 frames to be classified")
    if np.isinf(a).any():
        raise MotionError("motion contains infinite values")
    if np.isnan(a).all():
        raise MotionError("motion contains only missing (NaN) values")
    return fill_missing(a.astype(np.float32))


def motions_to_batch(motions: Sequence[np.ndarray | Motion], num_joints: int = 15,
                     max_frames: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """List of (T_i, J, 3) arrays or Motions -> (x (B, T_max, J, 3), lengths (B,)), zero padded."""
    arrs = []
    for m in motions:
        if isinstance(m, Motion):
            if m.skeleton.name != COMMON.name:
                m = m.retarget(COMMON)
            if abs(m.fps - DEFAULT_FPS) > 1e-6:
                m = m.resample(DEFAULT_FPS)
            a = m.joints
        else:
            a = m
        a = _check_joints(a, num_joints)
        if max_frames is not None and len(a) > max_frames:
            a = a[:max_frames]
        arrs.append(a)
    if not arrs:
        raise UserError("no motions given")
    lengths = torch.tensor([len(a) for a in arrs], dtype=torch.long)
    x = torch.zeros(len(arrs), int(lengths.max()), num_joints, 3)
    for i, a in enumerate(arrs):
        x[i, :len(a)] = torch.from_numpy(a)
    return x, lengths


# ================================================================================================
# The model
# ================================================================================================
class _ConvBlock(nn.Module):
    def __init__(self, channels: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size=5, dilation=dilation, padding=2 * dilation)
        self.norm = nn.LayerNorm(channels)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        # h (B, T, C), m (B, T, 1)
        y = self.conv(h.transpose(1, 2)).transpose(1, 2)
        y = self.drop(F.gelu(self.norm(y)))
        return (h + y) * m


class Recognizer(nn.Module):
    """Classifier + feature extractor.  ``forward(x, lengths)`` -> dict with ``features`` (B, F),
    ``logits`` (B, K), ``correct`` (B,) logit, ``score`` (B,) in [0, 1] units of 100 points."""

    def __init__(self, config: Config, skeleton: Skeleton = COMMON):
        super().__init__()
        if not config.labels:
            raise ValueError("Config.labels is empty: the recogniser needs its class names")
        if config.num_joints != len(skeleton):
            raise ValueError(f"config has {config.num_joints} joints, skeleton {skeleton.name} {len(skeleton)}")
        self.config = config
        self.skeleton = skeleton
        J = config.num_joints
        in_dim = (J - 1) * 3 + 3 + J * 3
        self.inp = nn.Sequential(nn.Linear(in_dim, config.hidden), nn.LayerNorm(config.hidden), nn.GELU())
        self.blocks = nn.ModuleList(_ConvBlock(config.hidden, 2 ** i, config.dropout)
                                    for i in range(config.conv_blocks))
        self.gru = nn.GRU(config.hidden, config.gru_hidden, batch_first=True, bidirectional=True)
        self.proj = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(4 * config.gru_hidden, config.feature_dim),
                                  nn.GELU())
        self.head_label = nn.Linear(config.feature_dim, len(config.labels))
        self.head_correct = nn.Linear(config.feature_dim, len(config.labels))   # one logit per class
        self.head_score = nn.Linear(config.feature_dim, len(config.labels))
        self._others = [j for j in range(J) if j != skeleton.root]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.config.labels)

    def frame_inputs(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, J, 3), mask (B, T) -> per-frame inputs (B, T, C)."""
        x = canonicalise(x, mask, self.skeleton)
        B, T, J, _ = x.shape
        root = x[:, :, self.skeleton.root]                                 # (B, T, 3)
        rel = x[:, :, self._others] - root[:, :, None]                     # (B, T, J-1, 3)
        vel = torch.zeros_like(x)
        vel[:, 1:] = (x[:, 1:] - x[:, :-1]) * self.config.fps
        prev = torch.cat([torch.zeros_like(mask[:, :1]), mask[:, :-1]], dim=1)   # (B, T)
        vel = vel * (mask & prev)[:, :, None, None].to(x.dtype)
        return torch.cat([rel.reshape(B, T, -1), root, vel.reshape(B, T, -1)], dim=-1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """x (B, T, J, 3), lengths (B,), labels (B,) class indices for the per-class correctness / score
        outputs (None or negative: the predicted class)."""
        B, T = x.shape[:2]
        lengths = lengths.to(torch.long).clamp(1, T)
        mask = torch.arange(T, device=x.device)[None, :] < lengths[:, None]   # (B, T)
        m = mask[:, :, None].to(x.dtype)
        h = self.inp(self.frame_inputs(x, mask)) * m                       # (B, T, H)
        for blk in self.blocks:
            h = blk(h, m)
        packed = nn.utils.rnn.pack_padded_sequence(h, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        g, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)   # (B, T, 2G)
        mean = (g * m).sum(1) / m.sum(1).clamp_min(1.0)
        mx = g.masked_fill(~mask[:, :, None], float("-inf")).amax(1)
        feats = self.proj(torch.cat([mean, mx], dim=-1))                   # (B, F)
        logits = self.head_label(feats)                                    # (B, K)
        cls = logits.argmax(-1)
        if labels is not None:
            cls = torch.where(labels >= 0, labels, cls)
        pick = cls[:, None]                                                # (B, 1)
        return {"features": feats, "logits": logits,
                "correct": self.head_correct(feats).gather(1, pick)[:, 0],
                "score": self.head_score(feats).gather(1, pick)[:, 0]}

    # ---- training ------------------------------------------------------------------------------
    def losses(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        lab = batch["label"]
        out = self(batch["x"], batch["lengths"], lab)
        cfg = self.config
        known = lab >= 0
        loss = out["logits"].sum() * 0.0
        logs: dict[str, float] = {}
        if known.any():
            ce = F.cross_entropy(out["logits"][known], lab[known], label_smoothing=cfg.label_smoothing)
            loss = loss + ce
            logs["ce"] = float(ce.detach())
            logs["acc"] = float((out["logits"][known].argmax(-1) == lab[known]).float().mean())
        cor = batch["correct"]
        ck = torch.isfinite(cor)
        if ck.any():
            bce = F.binary_cross_entropy_with_logits(out["correct"][ck], cor[ck])
            loss = loss + cfg.correct_weight * bce
            logs["bce"] = float(bce.detach())
        sc = batch["score"]
        sk = torch.isfinite(sc)
        if sk.any():
            mse = F.mse_loss(out["score"][sk], sc[sk] / 100.0)
            loss = loss + cfg.score_weight * mse
            logs["score_mse"] = float(mse.detach())
        logs["loss"] = float(loss.detach())
        return loss, logs

    def train_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        self.train()
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        loss, logs = self.losses(batch)
        loss.backward()
        nn.utils.clip_grad_norm_(self.parameters(), 1.0)
        opt.step()
        return logs

    # ---- inference -----------------------------------------------------------------------------
    @torch.inference_mode()
    def run(self, motions: Sequence[np.ndarray | Motion], batch_size: int = 64,
            progress: ProgressFn | None = None) -> dict[str, np.ndarray]:
        """Evaluate many motions (any lengths).  Returns numpy ``features`` (N, F), ``probs`` (N, K),
        ``correct`` (N,) probability of a correct execution, ``score`` (N,) in points (0-100)."""
        self.eval()
        arrs = [_check_joints(m.retarget(COMMON).resample(DEFAULT_FPS).joints if isinstance(m, Motion) else m,
                              self.config.num_joints) for m in motions]
        if not arrs:
            raise UserError("no motions given")
        order = np.argsort([len(a) for a in arrs])                         # similar lengths together
        outs: dict[str, list[np.ndarray]] = {"features": [], "probs": [], "correct": [], "score": []}
        idx_all = []
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            x, lengths = motions_to_batch([arrs[i] for i in idx], self.config.num_joints)
            o = self(x, lengths)
            outs["features"].append(o["features"].numpy())
            outs["probs"].append(torch.softmax(o["logits"], -1).numpy())
            outs["correct"].append(torch.sigmoid(o["correct"]).numpy())
            outs["score"].append((o["score"] * 100.0).numpy())
            idx_all.append(idx)
            if progress is not None:
                progress(min(1.0, (s + len(idx)) / len(order)), "recogniser")
        inv = np.argsort(np.concatenate(idx_all))
        return {k: np.concatenate(v)[inv] for k, v in outs.items()}

    def features(self, motions: Sequence[np.ndarray | Motion], batch_size: int = 64) -> np.ndarray:
        return self.run(motions, batch_size)["features"]

    def predict(self, motions: Sequence[np.ndarray | Motion]) -> list[dict[str, Any]]:
        """One dict per motion: ``label``, ``probability``, ``correct`` (bool, or None when the predicted
        class never had correctness labels in training), ``correct_probability``, ``score``."""
        r = self.run(motions)
        with_correct = set(getattr(self, "correct_labels", ()) or ())
        with_score = set(getattr(self, "score_labels", ()) or ())
        out = []
        for p, c, sc in zip(r["probs"], r["correct"], r["score"]):
            k = int(p.argmax())
            lab = self.labels[k]
            d: dict[str, Any] = {"label": lab, "probability": round(float(p[k]), 4)}
            d["correct"] = bool(c >= 0.5) if lab in with_correct else None
            d["correct_probability"] = round(float(c), 4) if lab in with_correct else None
            d["score"] = round(float(np.clip(sc, 0, 100)), 1) if lab in with_score else None
            out.append(d)
        return out
