"""Training of the recogniser: augmented views, balanced batches, the learning-rate schedule and the
TrainSetup (TRAINERS['recognizer'])."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import torch

from .. import data
from ..core.checkpoint import data_provenance
from ..core.errors import UserError
from ..core.motion import Motion
from ..core.repetitions import PRESEGMENTED, SEAM_BLEND, chain, group_key
from ..models.recognition import KIND, Config, ProgressFn, Recognizer, fill_missing, motions_to_batch
from .loop import RandomBatches, TrainSetup, shard

# ================================================================================================
# Data for training
# ================================================================================================

def _random_view(a: np.ndarray, rng: np.random.Generator, cfg: Config, augment: bool,
                 partners: Sequence[np.ndarray] = (), chainable: bool = True) -> np.ndarray:
    """(T, J, 3) -> a random crop (time-stretched, rotated, scaled, jittered when ``augment``).  With
    ``cfg.chain_views`` = p, an augmented item is, with probability p and whatever its length, first
    played back to back with ``partners`` (other repetitions of the same subject, exercise and correctness,
    in random order; itself when there are none) until the chain is longer than the crop, so the crop may
    span a seam between repetitions as a generated multi-repetition motion does."""
    stretch = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25)))) if augment and len(a) >= 4 else 1.0
    L = int(rng.integers(cfg.min_crop, cfg.max_crop + 1))
    if augment and chainable and cfg.chain_views > 0 and rng.random() < cfg.chain_views:
        pool = list(partners) or [a]
        parts, n = [a], len(a)
        while n < L * stretch + len(a):                        # the crop can start anywhere in ``a``
            nxt = pool[int(rng.integers(len(pool)))]
            parts.append(nxt)
            n += max(1, len(nxt) - SEAM_BLEND)
        a = chain(parts, blend=SEAM_BLEND)
    if stretch != 1.0:
        n = max(2, int(round((len(a) - 1) / stretch)) + 1)
        t = np.linspace(0, len(a) - 1, n)
        i0 = np.floor(t).astype(int)
        i1 = np.minimum(i0 + 1, len(a) - 1)
        w = (t - i0)[:, None, None].astype(np.float32)
        a = a[i0] * (1 - w) + a[i1] * w
    if len(a) > L:
        s = int(rng.integers(0, len(a) - L + 1))
        a = a[s:s + L]
    if augment:
        ang = rng.uniform(-np.pi, np.pi)
        c, s_ = np.cos(ang), np.sin(ang)
        R = np.array([[c, 0, s_], [0, 1, 0], [-s_, 0, c]], dtype=np.float32)
        a = (a @ R.T) * np.float32(rng.uniform(0.85, 1.15))
        a = a + rng.normal(0.0, 0.005, size=a.shape).astype(np.float32)
        a = a + rng.normal(0.0, 0.5, size=(1, 1, 3)).astype(np.float32) * np.array([1, 0, 1], np.float32)
    return a.astype(np.float32)


@dataclass
class _Item:
    joints: np.ndarray          # (T, J, 3)
    label: int                  # -1 unknown
    correct: float              # nan unknown
    score: float                # nan unknown
    chainable: bool = False     # a single-repetition file (core.repetitions.PRESEGMENTED): chain_views apply
    partners: tuple = ()        # joints (T_k, J, 3) of the other repetitions of its subject/exercise/correctness


def _items(motions: Sequence[Motion], labels: Sequence[str]) -> list[_Item]:
    index = {l: i for i, l in enumerate(labels)}
    joints = [fill_missing(m.joints) for m in motions]
    groups: dict[tuple, list[int]] = {}
    for i, m in enumerate(motions):
        groups.setdefault(group_key(m), []).append(i)
    out = []
    for i, m in enumerate(motions):
        lab = m.labels
        out.append(_Item(joints[i], index.get(lab.label, -1),
                         float("nan") if lab.correct is None else float(bool(lab.correct)),
                         float("nan") if lab.score is None else float(lab.score),
                         lab.dataset in PRESEGMENTED,
                         tuple(joints[k] for k in groups[group_key(m)] if k != i)))
    return out


def collate_motions(items: list[_Item], rng: np.random.Generator, cfg: Config,
                    augment: bool = True) -> dict[str, torch.Tensor]:
    views = [_random_view(it.joints, rng, cfg, augment, it.partners, it.chainable) for it in items]
    x, lengths = motions_to_batch(views, cfg.num_joints)
    return {"x": x, "lengths": lengths,
            "label": torch.tensor([it.label for it in items], dtype=torch.long),
            "correct": torch.tensor([it.correct for it in items], dtype=torch.float32),
            "score": torch.tensor([it.score for it in items], dtype=torch.float32)}


def _balanced(items: list[_Item], rng: np.random.Generator) -> list[_Item]:
    """Repeat items of small classes so each class appears at least ~ (75th percentile of the class
    sizes / 2) times (rare classes are seen often enough, large ones keep their share)."""
    by: dict[int, list[_Item]] = {}
    for it in items:
        by.setdefault(it.label, []).append(it)
    target = max(1, int(np.percentile([len(v) for v in by.values()], 75) // 2))
    out: list[_Item] = []
    for v in by.values():
        reps = max(1, math.ceil(target / len(v)))
        out += v * reps
    return out


def _training_motions(datasets: Sequence[str] | None, root: str | None, split: str = "train",
                      mirror: bool = True) -> list[Motion]:
    ms = data.load_corpus(split, datasets=datasets, root=root)
    if mirror:
        ms = data.augment_mirror(ms)
    return ms


def _sided_sets(motions: Sequence[Motion]) -> tuple[list[str], list[str]]:
    cor = sorted({m.labels.label for m in motions if m.labels.correct is not None})
    sco = sorted({m.labels.label for m in motions if m.labels.score is not None})
    return cor, sco


def _lr_lambda(frac: float) -> float:
    warm = 0.03
    if frac < warm:
        return max(0.05, frac / warm)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (frac - warm) / (1 - warm)))


def build_training(opts: Any) -> Any:
    """TrainSetup for ``python -m motionviz train recognizer`` (see :mod:`motionviz.training.loop`)."""
    motions = _training_motions(opts.datasets, opts.data_root)
    if opts.tiny:
        rng0 = np.random.default_rng(opts.seed)
        motions = [motions[i] for i in rng0.permutation(len(motions))[:200]]
    labels = tuple(sorted({m.labels.label for m in motions if m.labels.label}))
    kw: dict[str, Any] = {"labels": labels}
    if opts.tiny:
        kw.update(hidden=32, gru_hidden=24, feature_dim=32, conv_blocks=2)
    if opts.batch_size:
        kw["batch_size"] = opts.batch_size
    if opts.lr:
        kw["lr"] = opts.lr
    for k, v in opts.overrides.items():
        if k not in Config.__dataclass_fields__ or k == "labels":
            raise UserError(f"unknown recognizer config field {k!r}")
        kw[k] = tuple(v) if isinstance(v, list) else v
    cfg = Config(**kw)
    cv = cfg.chain_views
    if isinstance(cv, bool) or not (isinstance(cv, (int, float)) and 0.0 <= cv <= 1.0):
        raise UserError(f"chain_views must be a probability between 0 and 1, got {cv!r}")
    model = Recognizer(cfg).to(opts.device)
    cor, sco = _sided_sets(motions)
    items = _balanced(_items(motions, labels), np.random.default_rng(opts.seed))
    items = shard(items, opts.rank, opts.world_size)

    def collate(batch: list[_Item], rng: np.random.Generator) -> dict[str, torch.Tensor]:
        b = collate_motions(batch, rng, cfg)
        return {k: v.to(opts.device) for k, v in b.items()}

    batches = RandomBatches(items, cfg.batch_size, collate, seed=opts.seed, rank=opts.rank)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    datasets = sorted({m.labels.dataset for m in motions})
    counts = {d: sum(1 for m in motions if m.labels.dataset == d) for d in datasets}
    meta = {"data": data_provenance(datasets), "split": "train (subject-wise, motionviz.data.split_of)",
            "train_motions": counts, "correct_labels": cor, "score_labels": sco,
            "text_encoder": "none", "mirror_augmentation": True}
    return TrainSetup(model=model, batches=batches, optimizers={"model": opt}, kind=KIND, config=cfg,
                      metadata=meta, lr_lambda=_lr_lambda, log_keys=("loss", "acc", "bce", "score_mse"))


def train_recognizer(motions: Sequence[Motion], config: Config | None = None, steps: int = 300,
                     seed: int = 0, labels: Sequence[str] | None = None,
                     progress: ProgressFn | None = None) -> Recognizer:
    """Train a fresh recogniser on ``motions`` for ``steps`` steps (used by the augmentation study and
    tests; the shipped model is trained through ``python -m motionviz train recognizer``)."""
    if not motions:
        raise UserError("no training motions")
    labels = tuple(labels) if labels is not None else tuple(sorted({m.labels.label for m in motions}))
    cfg = config if config is not None else Config(labels=labels)
    if tuple(cfg.labels) != labels:
        cfg = Config(**{**asdict(cfg), "labels": labels})
    torch.manual_seed(seed)
    model = Recognizer(cfg)
    cor, sco = _sided_sets(motions)
    model.correct_labels, model.score_labels = tuple(cor), tuple(sco)
    rng = np.random.default_rng(seed)
    items = _balanced(_items(motions, labels), rng)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    base = cfg.lr
    bs = min(cfg.batch_size, len(items))
    order: list[int] = []
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = base * _lr_lambda(step / max(1, steps))
        if len(order) < bs:
            order = list(rng.permutation(len(items)))
        idx, order = order[:bs], order[bs:]
        model.train_step(collate_motions([items[i] for i in idx], rng, cfg), {"model": opt})
        if progress is not None and (step % 10 == 0 or step == steps - 1):
            progress((step + 1) / steps, f"training recogniser {step + 1}/{steps}")
    model.eval()
    return model
