"""Training data and the TrainSetup of the VAE (clips, statistics, recentring; TRAINERS['vae'])."""

from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from .. import data
from ..core.checkpoint import config_from_json, data_provenance, load_checkpoint, load_strict, save_checkpoint
from ..core.errors import UserError
from ..core.motion import Motion
from ..core.repetitions import split_repetitions, time_normalise
from ..core.representation import canonicalise
from ..core.representation_torch import rep_item_features
from ..data import augment_mirror, one_side, sided_labels
from ..models.vae import KIND, ActorVAE, Config, class_key, classes_of, split_class, tiny_config
from .loop import TrainSetup, equalise_states, shard

# Datasets the VAE trains on by default: the rehabilitation exercises (HumanML3D is captioned, not
# action-labelled; KERAAL is held out for evaluation; Bandai's everyday actions are left to the text
# model: within the 45-minute CPU budget they took capacity and steps from the exercises).
VAE_DATASETS = ("ui-prmd", "kimore", "irds")


def make_optimizers(model: ActorVAE) -> dict[str, torch.optim.Optimizer]:
    c = model.config
    return {"vae": torch.optim.AdamW(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)}


def collate_clips(items: Sequence[tuple[np.ndarray, int]], rng: np.random.Generator | None = None,
                  *_: Any) -> dict[str, torch.Tensor]:
    """(raw repetition features (R, F), class id) items -> batch: features (B, R, F) float32, mask (B, R)
    bool (all True: every repetition has R normalised frames), label (B,) long."""
    feats = np.stack([f for f, _ in items]).astype(np.float32)
    return {"features": torch.from_numpy(feats), "mask": torch.ones(feats.shape[:2], dtype=torch.bool),
            "label": torch.tensor([c for _, c in items], dtype=torch.long)}


def class_weights(counts: Sequence[int], classes: Sequence[str], balance: float = 0.5,
                  balance_correct: bool = False) -> np.ndarray:
    """Sampling probability of each class (C,), zero for classes without repetitions.

    ``counts[k] ** balance`` (0: uniform over classes, 1: uniform over repetitions); with
    ``balance_correct`` an exercise recorded both ways (``<label>/correct`` and ``<label>/incorrect``)
    keeps its total weight but splits it equally between the two executions, so its few incorrect
    repetitions are not drowned by the correct ones (IRDS: 1-11 incorrect against 16-30 correct
    repetitions per gesture).  Exercises recorded one way only are unchanged."""
    counts = np.asarray(counts, dtype=np.float64)
    w = np.where(counts > 0, np.maximum(counts, 1.0) ** float(balance), 0.0)
    if balance_correct:
        label, correct = zip(*(split_class(k) for k in classes)) if len(classes) else ((), ())
        have = counts > 0                                     # an empty class is not a recorded state
        w[have] = equalise_states(w[have], np.array(label, dtype=object)[have],
                                  np.array([str(c) for c in correct])[have])
    if w.sum() <= 0:
        raise UserError("no training motions")
    return w / w.sum()


class ClipBatches:
    """Endless class-balanced batches of repetitions: each item picks a class with the probabilities of
    :func:`class_weights` (``balance``, ``balance_correct``; ``classes`` names the class ids), then one
    of its repetitions.  Randomness from a seeded ``np.random.Generator``."""

    def __init__(self, items: Sequence[tuple[np.ndarray, int]], num_classes: int, batch_size: int,
                 seed: int = 0, rank: int = 0, balance: float = 0.5, classes: Sequence[str] | None = None,
                 balance_correct: bool = False):
        if not items:
            raise UserError("no training motions")
        self.items = list(items)
        self.by_class = [[i for i, (_, c) in enumerate(self.items) if c == k] for k in range(num_classes)]
        self.present = [k for k, v in enumerate(self.by_class) if v]
        if balance_correct and classes is None:
            raise ValueError("balance_correct needs the class names")
        names = list(classes) if classes is not None else [str(k) for k in range(num_classes)]
        if len(names) != num_classes:
            raise ValueError(f"{len(names)} class names for {num_classes} classes")
        p = class_weights([len(v) for v in self.by_class], names, balance, balance_correct)
        self.p = p[self.present] / p[self.present].sum()
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


def execution_pairs(items: Sequence[tuple[np.ndarray, int]], classes: Sequence[str], feat_std: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs for the execution-pair loss (:meth:`ActorVAE.pair_loss`): partner (C,) long = class id of the
    same exercise's other execution where both have repetitions (-1 otherwise) and delta (C, R, F) =
    (mean repetition of the partner - mean repetition of the class) / feat_std (zeros without a partner)."""
    C = len(classes)
    sums: dict[int, np.ndarray] = {}
    counts = np.zeros(C, dtype=np.int64)
    for f, c in items:
        sums[c] = sums.get(c, 0.0) + f.astype(np.float64)
        counts[c] += 1
    R, F = items[0][0].shape if items else (1, 1)
    partner = torch.full((C,), -1, dtype=torch.long)
    delta = torch.zeros(C, R, F)
    index = {k: i for i, k in enumerate(classes)}
    std = np.asarray(feat_std, dtype=np.float64)
    for k, c in index.items():
        label, correct = split_class(k)
        if correct is None:
            continue
        o = index.get(class_key(label, not correct))
        if o is None or counts[c] == 0 or counts[o] == 0:
            continue
        partner[c] = o
        delta[c] = torch.from_numpy((sums[o] / counts[o] - sums[c] / counts[c]) / std).float()
    return partner, delta


def performer_key(m: Motion) -> str:
    """Who performed ``m``: dataset, subject and whether it is a mirrored copy (a mirrored recording is a
    different left-right body); motions without a subject are their own performer."""
    subject = m.labels.subject or f"motion-{id(m)}"
    return f"{m.labels.dataset}/{subject}/{'mirrored' if m.labels.extra.get('mirrored') else 'as recorded'}"


def motions_to_items(motions: Sequence[Motion], classes: Sequence[str], config: "Config | None" = None,
                     performers: list[str] | None = None) -> list[tuple[np.ndarray, int]]:
    """Motions -> (raw repetition features (R, F), class id): every motion cut into single repetitions
    (:func:`motionviz.core.repetitions.split_repetitions`), each canonicalised and time-normalised to
    ``config.rep_frames`` with its duration as the last feature.  ``performers``, if given, receives each
    item's :func:`performer_key`."""
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
            r = time_normalise(canonicalise(m.joints[a:b])[0], cfg.rep_frames)
            out.append((rep_item_features(r, (b - a - 1) / m.fps), index[key]))
            if performers is not None:
                performers.append(performer_key(m))
    return out


def probe_batches(items: Sequence[tuple[np.ndarray, int]], num_classes: int, frames: int, per_class: int = 256,
                  seed: int = 0, performers: Sequence[str] | None = None) -> list[dict[str, torch.Tensor]]:
    """Fixed repetitions for :func:`recentre_state`: up to ``per_class`` of each class, one batch per
    class (``frames`` is unused: repetitions have a fixed normalised length).  With ``performers`` (one
    key per item) each batch also holds ``performer`` (n,): a number per performer, shared across batches."""
    rng = np.random.default_rng([seed, 23])
    ids = {k: i for i, k in enumerate(dict.fromkeys(performers))} if performers is not None else {}
    by_class: dict[int, list[tuple[np.ndarray, int]]] = {}
    for i, (joints, c) in enumerate(items):
        by_class.setdefault(c, []).append((joints, ids[performers[i]] if performers is not None else -1))
    out = []
    for c in range(num_classes):
        clips = by_class.get(c, [])
        if not clips:
            continue
        pick = [clips[i] for i in rng.permutation(len(clips))[:per_class]]
        batch = collate_clips([(j, c) for j, _ in pick])
        if performers is not None:
            batch["performer"] = torch.tensor([p for _, p in pick], dtype=torch.long)
        out.append(batch)
    return out


def performer_share(means: dict[int, torch.Tensor], performers: dict[int, torch.Tensor]) -> float:
    """Share of the latent variance that a performer's repetitions have in common: 1 - (within-performer
    variance) / (variance within the class), both unbiased (n - 1 denominators), pooled
    over the classes (each weighted by its repetitions; performers with one repetition in a class do not
    count for the within part, a class with fewer than two performers not at all).  The intra-class
    correlation of a random-effects model z = performer + repetition; 0 when nothing is shared."""
    within = total = 0.0
    for c, z in means.items():
        p = performers[c]
        groups = [z[p == k] for k in torch.unique(p)]
        many = [g for g in groups if len(g) > 1]
        if len(groups) < 2 or not many:
            continue
        w = sum(float(((g - g.mean(0)) ** 2).sum()) for g in many) / sum(len(g) - 1 for g in many)
        t = float(((z - z.mean(0)) ** 2).sum()) / (len(z) - 1)
        within += w * len(z)
        total += t * len(z)
    return float(min(max(1.0 - within / total, 0.0), 1.0)) if total > 0 else 0.0


def class_shares(means: dict[int, torch.Tensor], performers: dict[int, torch.Tensor], num_classes: int,
                 pooled: float) -> list[float]:
    """One performer share per class (``Config.class_share``): :func:`performer_share` of the class alone
    where at least two of its performers have two or more repetitions (a within-performer spread seen in
    more than one person), else ``pooled`` (classes with one recorded performer, absent classes)."""
    out = [float(pooled)] * num_classes
    for c, z in means.items():
        p = performers[c]
        many = [k for k in torch.unique(p) if int((p == k).sum()) > 1]
        if len(many) >= 2:
            out[c] = performer_share({c: z}, {c: p})
    return out


def performer_means(means: dict[int, torch.Tensor], performers: dict[int, torch.Tensor],
                    num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean latent of each performer of each class (``Config.performer_mixture``): ``means`` {c: (n, D)}
    latents (already centred on the class mean), ``performers`` {c: (n,)} ids -> (C, P, D) float32 (rows
    past a class's count are 0) and (C,) long counts; P = the most performers of any class (at least 1)."""
    D = next(iter(means.values())).shape[1] if means else 1
    rows = {c: [z[performers[c] == k].mean(0) for k in torch.unique(performers[c])] for c, z in means.items()}
    P = max([len(r) for r in rows.values()] + [1])
    out = torch.zeros(num_classes, P, D)
    count = torch.zeros(num_classes, dtype=torch.long)
    for c, r in rows.items():
        out[c, :len(r)] = torch.stack(r).float()
        count[c] = len(r)
    return out, count


def ppca_covariance(points: torch.Tensor, rank: int, floor: torch.Tensor | None = None) -> torch.Tensor:
    """Probabilistic-PCA covariance (D, D) of ``points`` (n, D) (Tipping & Bishop 1999, maximum likelihood):
    the ``rank`` leading directions of the sample covariance keep their variance, the other D - rank share
    the mean of the discarded eigenvalues (the isotropic residual).  Fewer than rank + 1 points use n - 1
    directions (the residual is then 0).  ``floor`` (D,) is added to the diagonal (e.g. the posterior
    variances), plus 1e-6 so the Cholesky factor exists."""
    x = torch.as_tensor(points, dtype=torch.float64)
    n, D = x.shape
    cov = torch.zeros(D, D, dtype=torch.float64)
    if n >= 2:
        r = x - x.mean(0)
        _, S, Vh = torch.linalg.svd(r / math.sqrt(n - 1), full_matrices=False)
        ev = S ** 2                                                                     # descending
        k = min(int(rank), n - 1, len(ev))
        resid = float(ev[k:].sum()) / max(D - k, 1)
        W = Vh[:k].T * (ev[:k] - resid).clamp_min(0.0).sqrt()                          # (D, k)
        cov = W @ W.T + resid * torch.eye(D, dtype=torch.float64)
    if floor is not None:
        cov = cov + torch.diag(torch.as_tensor(floor, dtype=torch.float64))
    return cov + 1e-6 * torch.eye(D, dtype=torch.float64)


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
    * with ``Config.prior_rank`` k > 0 also ``prior_chol[c]``, the Cholesky factor of the class's
      probabilistic-PCA covariance (:func:`ppca_covariance` of its posterior means, the mean posterior
      variance on the diagonal): the posterior means of a class lie near a low-dimensional set, and a
      diagonal prior that draws every direction independently puts samples off it (on UI-PRMD m09 they
      moved 3.4x faster than the recordings, with 6x their jerk; in the PPCA's span: 0.8x and 0.8x).
    * with ``Config.performer_prior`` also ``prior_share`` (1,): :func:`performer_share` of the probes'
      posterior means grouped by performer (the probes need ``performer`` ids); with ``Config.class_share``
      (C,): :func:`class_shares`, each class's own where it can be estimated, else that pooled value.  A
      sampled motion is one performer's repetitions: their latents share that part of the prior
      (VAEGenerator._prior_z).
    * with ``Config.performer_mixture`` > 0 also ``performer_means`` (C, P, D) and ``performer_count`` (C,):
      :func:`performer_means` of the probes' posterior means in the exported coordinates (minus the new
      class mean), the recorded performers a sample's performer part is centred on.
    """
    was_training = model.training
    model.eval()
    shift = model.mu_shift.detach().clone()                                          # (C, D)
    C, D = shift.shape
    sums = torch.zeros(C, D)
    counts = torch.zeros(C)
    rank = int(getattr(model.config, "prior_rank", 0))
    means: dict[int, list[torch.Tensor]] = {}
    who: dict[int, list[torch.Tensor]] = {}
    post_var = torch.zeros(C, D)
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
            means.setdefault(c, []).append(mu.cpu())
            post_var[c] += logvar.exp().sum(0).cpu()
            if "performer" in b:
                who.setdefault(c, []).append(b["performer"].cpu())
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
    if rank > 0:
        chol = torch.eye(D).repeat(C, 1, 1)
        for c, parts in means.items():
            cov = ppca_covariance(torch.cat(parts), rank, post_var[c] / counts[c])
            chol[c] = torch.linalg.cholesky(cov).to(torch.float32)
        state["prior_chol"] = chol.to(shift.dtype)
    if getattr(model.config, "performer_prior", False):
        if not who:
            raise ValueError("performer_prior needs probes with performer ids (probe_batches(performers=...))")
        zs = {c: torch.cat(v).double() for c, v in means.items() if c in who}          # {c: (n, D)}
        ids = {c: torch.cat(v) for c, v in who.items()}                                 # {c: (n,)}
        share = performer_share(zs, ids)
        if float(getattr(model.config, "performer_mixture", 0.0)) > 0:   # in exported coordinates (new shift)
            state["performer_means"], state["performer_count"] = performer_means(
                {c: z - (shift[c] - model.mu_shift[c]).cpu().double() for c, z in zs.items()}, ids, C)
        if getattr(model.config, "class_share", False):
            state["prior_share"] = torch.tensor(class_shares(zs, ids, C, share), dtype=shift.dtype)
        else:
            state["prior_share"] = torch.tensor([share], dtype=shift.dtype)
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


def training_motions(datasets: Sequence[str], mirror: bool, data_root: Any = None, same_side: bool = False
                     ) -> tuple[list[Motion], set[str]]:
    """The labelled training motions of ``datasets``, mirrored (except the one-sided labels, returned);
    with ``same_side`` the one-sided labels' recordings done with the minority side are mirrored to the
    majority's (:func:`motionviz.data.one_side`)."""
    motions = [m for m in data.load_corpus("train", list(datasets), root=data_root) if m.labels.label]
    if not motions:
        raise UserError(f"no labelled training motions in {', '.join(datasets)}")
    sided: set[str] = set()
    if mirror or same_side:
        sided = sided_labels(motions)
    if same_side:
        motions = one_side(motions, sided)
    if mirror:
        motions = augment_mirror(motions, skip_labels=sided)
    return motions, sided


#: Config fields :func:`refit_prior` may change (they act at export / sampling only, not on the weights).
REFIT_FIELDS = ("prior_rank", "temperature", "performer_prior", "class_share", "performer_mixture")


def refit_prior(src: Any, out: Any, overrides: dict[str, Any], data_root: Any = None, seed: int = 0,
                command: str = "") -> dict[str, Any]:
    """Refit the prior of a trained VAE checkpoint ``src`` with :func:`recentre_state`, after setting the
    :data:`REFIT_FIELDS` in ``overrides`` (e.g. ``prior_rank``), and write it to ``out``.  The network
    weights are those of ``src``; the export is the one a training run with the same settings writes at its
    end, so ``train vae ... --set prior_rank=k`` and training then refitting give the same kind of file."""
    bad = sorted(set(overrides) - set(REFIT_FIELDS))
    if bad:
        raise UserError(f"a prior refit can only set {', '.join(REFIT_FIELDS)}, not {', '.join(bad)}")
    tensors, meta = load_checkpoint(src, KIND)
    config = _apply_overrides(config_from_json(Config, meta["config"]), overrides)
    config.validate()
    motions, _ = training_motions(config.datasets or VAE_DATASETS, config.mirror, data_root, config.same_side)
    if tuple(classes_of(motions)) != tuple(config.classes):
        raise UserError(f"the training data under {data_root or 'MOTIONVIZ_DATA'} does not give this "
                        f"checkpoint's {len(config.classes)} classes")
    performers: list[str] = []
    items = motions_to_items(motions, config.classes, config, performers)
    model = ActorVAE(config)
    shift = tensors.pop("mu_shift", None)
    for k in ("prior_scale", "prior_chol", "prior_share", "performer_means", "performer_count"):
        tensors.pop(k, None)
    load_strict(model, tensors, src, "the VAE architecture")
    if shift is not None:
        model.mu_shift.copy_(shift)
    state = recentre_state(model, probe_batches(items, len(config.classes), config.rep_frames, seed=seed,
                                                performers=performers))
    keep = {k: v for k, v in meta.items() if k not in ("format", "kind", "config")}
    keep.pop("sampling", None)                  # an earlier note on the sampling settings: "prior" replaces it
    shared = ""
    if "prior_share" in state:
        sh = state["prior_share"]
        shared = (f" (shared part {float(sh[0]):.3f})" if sh.numel() == 1 else
                  f" (shared part per class {float(sh.min()):.3f}-{float(sh.max()):.3f})")
    keep["prior"] = (f"refitted from the trained weights: prior_rank {config.prior_rank}, temperature "
                     f"{config.temperature:g}, performer_prior {config.performer_prior}, "
                     f"class_share {config.class_share}, performer_mixture {config.performer_mixture:g}{shared}"
                     + (f" ({command})" if command else "") + "; the prior and the temperature act at export "
                     "and sampling only, the network weights are those the command above trained")
    save_checkpoint(out, state, KIND, config, keep)
    return {"model": "vae", "refit": str(src), "checkpoint": str(out), "prior_rank": config.prior_rank,
            "temperature": config.temperature,
            "performer_share": (None if "prior_share" not in state else float(state["prior_share"][0])
                                if state["prior_share"].numel() == 1 else state["prior_share"].tolist())}


def build_training(opts: Any) -> Any:
    """:data:`motionviz.training.loop.TRAINERS` builder: corpus -> class-balanced repetitions -> ActorVAE."""
    config = tiny_config() if opts.tiny else Config()
    if opts.batch_size is not None:
        config = replace(config, batch_size=int(opts.batch_size))
    if opts.lr is not None:
        config = replace(config, lr=float(opts.lr))
    config = _apply_overrides(config, dict(opts.overrides or {}))
    datasets = tuple(opts.datasets or config.datasets or (("irds",) if opts.tiny else VAE_DATASETS))
    motions, sided = training_motions(datasets, config.mirror, opts.data_root, config.same_side)
    classes = classes_of(motions)
    config = replace(config, classes=classes, datasets=datasets)
    performers: list[str] = []
    items = motions_to_items(motions, classes, config, performers)
    model = ActorVAE(config)
    model.set_stats(*compute_stats(items))
    if config.pair_weight > 0:
        model.set_execution_pairs(*execution_pairs(items, classes, model.feat_std))
    model.to(opts.device)
    batches = ClipBatches(shard(items, opts.rank, opts.world_size), len(classes), config.batch_size,
                          seed=opts.seed, rank=opts.rank, balance=config.class_balance, classes=classes,
                          balance_correct=config.balance_correct)
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
    probes = probe_batches(items, len(classes), config.rep_frames, seed=opts.seed, performers=performers)
    metadata["export"] = "class means of the posterior moved into the decoder bias (recentre_state)"
    return TrainSetup(model=model, batches=batches, optimizers=make_optimizers(model), kind=KIND, config=config,
                      metadata=metadata, export=lambda: recentre_state(model, probes), lr_lambda=lr_lambda,
                      log_keys=("loss", "pos", "vel", "kl", "motion") + (("pair",) if config.pair_weight > 0 else ())
                      + (("adv",) if config.adv_weight > 0 else ())
                      + (("critic", "exec") if config.exec_weight > 0 else ()))


def _to_device(it: Iterator[dict[str, torch.Tensor]], device: str) -> Iterator[dict[str, torch.Tensor]]:
    for b in it:
        yield {k: v.to(device) for k, v in b.items()}
