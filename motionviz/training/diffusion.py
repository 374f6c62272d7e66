"""Training data and the TrainSetup of the diffusion model (repetitions, captions, balancing; TRAINERS['diffusion'])."""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .. import data
from ..core.checkpoint import data_provenance, save_checkpoint
from ..core.errors import UserError
from ..core.motion import Motion, MotionLabels
from ..core.repetitions import split_repetitions, time_normalise
from ..core.representation import canonicalise
from ..core.representation_torch import to_features
from ..core.skeleton import COMMON
from ..generators.text_encoders import get_text_encoder
from ..models.diffusion import CORRECT_STATES, KIND, REPRESENTATION, Config, DiffusionModel, tiny_config
from .loop import TrainSetup, equalise_states, shard

log = logging.getLogger("motionviz.training")


# ---------------------------------------------------------------------------------------------
# checkpoints and the generator
# ---------------------------------------------------------------------------------------------
def save_model(path: str | Path, model: DiffusionModel, metadata: dict[str, Any] | None = None) -> Path:
    meta = {"text_encoder": model.cfg.text_encoder, "text_dim": model.cfg.text_dim,
            "representation": REPRESENTATION}
    meta.update(metadata or {})
    return save_checkpoint(path, model.export(), KIND, model.cfg, meta)


# ---------------------------------------------------------------------------------------------
# training data
# ---------------------------------------------------------------------------------------------
@dataclass
class RepetitionSet:
    """Every training repetition, time-normalised and canonicalised (facing +Z, pelvis at x = z = 0 at
    its first frame).  joints (N, R, J, 3) float32, duration (N,) seconds, label/correct/dataset (N,)
    condition indices, captions: per repetition the caption-table indices of its recording, weight (N,)
    sampling weights; weight_shown (N,) or None: the sampling weights of the batch rows whose
    correct/incorrect condition is shown to the model (``Config.balance_correct``; None: ``weight``)."""
    joints: np.ndarray
    duration: np.ndarray
    label: np.ndarray
    correct: np.ndarray
    dataset: np.ndarray
    captions: list[list[int]]
    weight: np.ndarray
    weight_shown: np.ndarray | None = None

    def select(self, idx: np.ndarray) -> "RepetitionSet":
        """The repetitions ``idx`` (a rank's share under torchrun)."""
        return RepetitionSet(self.joints[idx], self.duration[idx], self.label[idx], self.correct[idx],
                             self.dataset[idx], [self.captions[i] for i in idx], self.weight[idx],
                             None if self.weight_shown is None else self.weight_shown[idx])


def parse_shares(text: str) -> dict[str, float]:
    """``"ui-prmd=0.36,irds=0.16"`` -> {dataset: share}; a malformed entry is a UserError."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, eq, val = part.partition("=")
        try:
            v = float(val)
        except ValueError:
            v = -1.0
        if not eq or not name.strip() or not (math.isfinite(v) and v >= 0):
            raise UserError(f"dataset_shares entry {part!r} is not <dataset>=<share ≥ 0>")
        out[name.strip()] = v
    return out


def reweight(w: np.ndarray, dsn: np.ndarray, lab: np.ndarray, correct: np.ndarray, cfg: Config) -> np.ndarray:
    """Sampling weights ``w`` (N,) adjusted by ``cfg.dataset_shares`` (each named dataset's weights scaled to
    its share of the total; datasets not named keep their weight relative to each other in what is left)
    and ``cfg.balance_correct`` (within an exercise with several correctness states, every state gets
    an equal share of the exercise's weight, so an exercise with 3 correct and 9 incorrect recordings
    is shown correct half of the time)."""
    w = w.astype(np.float64).copy()
    if cfg.balance_correct:
        w = equalise_states(w, np.array([f"{d}\0{l}" for d, l in zip(dsn, lab)]), correct)
    shares = parse_shares(cfg.dataset_shares)
    if shares:
        named = np.isin(dsn, list(shares))
        rest = 1.0 - sum(v for d, v in shares.items() if (dsn == d).any())
        if rest < -1e-9 or (rest <= 1e-9 and (~named).any()):
            raise UserError(f"dataset_shares {cfg.dataset_shares!r} leave nothing for the other datasets")
        total = w.sum()
        for d, v in shares.items():
            m = dsn == d
            if m.any():
                w[m] *= v * total / w[m].sum()
        if (~named).any():
            w[~named] *= rest * total / w[~named].sum()
    return w


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
    args = (np.array(dsn, dtype=object), np.array(lab, dtype=object), np.array(C))
    # balance_correct: only the rows that show the model their correct/incorrect condition are drawn
    # balanced; the others keep the recordings' own mix, so an exercise asked for without an execution
    # moves like its recordings (IntelliRehabDS's incorrect executions come mostly from one fast patient)
    shown = reweight(w, *args, cfg) if cfg.balance_correct else None
    w = reweight(w, *args, replace(cfg, balance_correct=False))
    return RepetitionSet(np.stack(J).astype(np.float32), np.array(D, np.float32), np.array(R, np.int64),
                         np.array(C, np.int64), np.array(S, np.int64), P, w, shown)


def draw_rows(rng: np.random.Generator, n: int, p: np.ndarray, p_shown: np.ndarray | None,
              p_drop_correct: float) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` repetition indices drawn with probabilities ``p`` (N,); with ``p_shown`` (balance_correct) the
    batch also decides which rows hide their correct/incorrect condition (``p_drop_correct`` of them) and
    redraws the rows that show it from ``p_shown``.  -> (idx (n,), hidden (n,) bool or None)."""
    idx = rng.choice(len(p), size=n, p=p)
    if p_shown is None:
        return idx, None
    hidden = rng.random(n) < p_drop_correct
    k = int((~hidden).sum())
    if k:
        idx[~hidden] = rng.choice(len(p), size=k, p=p_shown)
    return idx, hidden


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
        self.p_shown = None if reps.weight_shown is None else reps.weight_shown / reps.weight_shown.sum()
        self.rng = np.random.default_rng([seed, rank, 7])

    def __iter__(self) -> "RepetitionBatches":
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        r, rng, B = self.reps, self.rng, self.batch_size
        idx, drop_correct = draw_rows(rng, B, self.p, self.p_shown, self.cfg.p_drop_correct)
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
        if drop_correct is not None:
            batch["correct_drop"] = torch.from_numpy(drop_correct)
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
            log.info(f"  text embeddings {min(i + 256, len(missing))}/{len(missing)}")
        if cache_path is not None:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_path.with_suffix(".tmp")
            save_file(cached, str(tmp), metadata={"encoder": encoder.name})
            tmp.replace(cache_path)
    return torch.stack([cached[key(t)] for t in texts]) if texts else torch.zeros(0, encoder.dim)


def _caption(labels: MotionLabels, rng: np.random.Generator) -> str:
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
    over = dict(opts.overrides)
    encoder_spec = over.pop("text_encoder", "minilm")
    cfg_kw = dict(over)
    if opts.batch_size:
        cfg_kw["batch_size"] = opts.batch_size
    if opts.lr:
        cfg_kw["lr"] = opts.lr
    datasets = list(opts.datasets or data.CORPUS_DATASETS)
    log.info(f"loading corpus {datasets} ...")
    corpus = data.load_corpus("train", datasets=datasets, root=opts.data_root)
    if opts.tiny:
        rng0 = np.random.default_rng(opts.seed)
        corpus = [corpus[i] for i in rng0.permutation(len(corpus))[:64]]
    corpus = [m for m in corpus if m.num_frames >= 8 and np.isfinite(m.joints).all()]
    if not corpus:
        raise UserError("the training corpus is empty")
    sided = data.sided_labels(corpus)
    log.info(f"one-sided labels (no mirrored copies): {', '.join(sorted(sided)) or 'none'}")
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
    log.info(f"{len(corpus)} motions, {len(labels)} labels, {len(texts)} unique captions")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in encoder.name)
    emb = _encode_captions(texts, encoder, data.cache_dir() / f"caption_embeddings_{safe}.safetensors")

    reps = repetition_set(corpus, pools, labels, dsets, cfg)
    log.info(f"{len(reps.joints)} repetitions (median {np.median(reps.duration):.2f} s)")
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
    log.info(f"denoiser: {n_params / 1e6:.2f} M parameters")
    meta = dict(td.meta, parameters=n_params)
    return TrainSetup(model=model, batches=batches, optimizers={"main": opt}, kind=KIND, config=cfg,
                      metadata=meta, export=model.export, lr_lambda=lr_lambda,
                      log_keys=("loss", "x0", "vel", "bone", "foot", "motion"))
