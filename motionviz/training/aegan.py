"""Training of the AE-GAN and of its up-sampling variant: window sampling, critic calibration, checkpoints,
TrainSetups (TRAINERS['aegan'], TRAINERS['aegan-upsample'])."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .. import data
from ..core.checkpoint import data_provenance, default_checkpoint_dir, file_sha256, read_metadata, save_checkpoint
from ..core.errors import UserError
from ..core.motion import Motion
from ..core.representation_torch import apply_transform, canonical_transform
from ..core.skeleton import COMMON, Skeleton
from ..generators.inpaint import load
from ..models.aegan import AEGAN, KIND, Config, project_random_cameras
from .loop import TrainSetup


# ==============================================================================================
# Data sampling
# ==============================================================================================
class WindowSampler:
    """Random fixed-length windows (B, F, J, 3) in metres from a list of motions (NaN-free windows)."""

    def __init__(self, motions: Sequence[Any], frames: int, skeleton: Skeleton = COMMON) -> None:
        arrays = []
        for m in motions:
            j = np.asarray(m.joints if hasattr(m, "joints") else m, dtype=np.float32)
            if j.shape[0] >= frames and j.shape[1] == len(skeleton) and j.shape[2] == 3:
                arrays.append(j)
        if not arrays:
            raise UserError(f"no training motion has at least {frames} frames")
        self.data = torch.from_numpy(np.concatenate(arrays))
        self.frames = frames
        starts = []
        off = 0
        for a in arrays:
            bad = np.isnan(a).any(axis=(1, 2))
            cum = np.concatenate([[0], np.cumsum(bad)])
            s = np.arange(0, len(a) - frames + 1)
            ok = (cum[s + frames] - cum[s]) == 0
            starts.append(s[ok] + off)
            off += len(a)
        self.starts = torch.from_numpy(np.concatenate(starts)).long()
        if len(self.starts) == 0:
            raise UserError("no NaN-free training window")
        self.skeleton = skeleton
        self.mirror = torch.tensor(skeleton.mirror, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.starts)

    def sample(self, batch: int, g: torch.Generator, scale_jitter: float = 0.0) -> torch.Tensor:
        idx = self.starts[torch.randint(0, len(self.starts), (batch,), generator=g)]
        t = idx[:, None] + torch.arange(self.frames)[None]
        x = self.data[t]  # (B, F, J, 3)
        flip = torch.rand(batch, generator=g) < 0.5
        xm = x[:, :, self.mirror].clone()
        xm[..., 0] *= -1
        x = torch.where(flip[:, None, None, None], xm, x)
        if scale_jitter:
            s = 1 + (2 * torch.rand(batch, generator=g) - 1) * scale_jitter
            x = x * s[:, None, None, None]
        return x


# ==============================================================================================
# Training
# ==============================================================================================
def make_optimizers(model: AEGAN) -> dict[str, torch.optim.Optimizer]:
    cfg = model.cfg
    gen_params = [p for net in model.nets.values() for mod in (net.encoder, net.generator) for p in mod.parameters()]
    critic_params = [p for net in model.nets.values() for p in net.critic.parameters()]
    return {
        "g": torch.optim.Adam(gen_params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2)),
        "d": torch.optim.Adam(critic_params, lr=cfg.lr_critic, betas=(cfg.beta1, cfg.beta2)),
    }


@torch.no_grad()
def set_bone_reference(model: AEGAN, sampler: WindowSampler, g: torch.Generator, n: int = 512) -> None:
    """Store each variant's mean bone lengths (metres; projected for 2D) as ``bone_ref``."""
    x = sampler.sample(n, g)
    for key, net in model.nets.items():
        dims = int(key[1:])
        y = x if dims == 3 else project_random_cameras(x, model.cfg, g)
        p = [a for a, _ in model.skeleton.bones]
        c = [b for _, b in model.skeleton.bones]
        lengths = torch.linalg.vector_norm(y[..., c, :] - y[..., p, :], dim=-1)  # (n, F, Bones)
        net.bone_ref.copy_(lengths.mean((0, 1)))


@torch.no_grad()
def calibrate_critic(model: AEGAN, sampler: WindowSampler, g: torch.Generator, n: int = 512) -> None:
    """Store each variant's critic score statistics on ``n`` clean real windows (canonical, model
    units; random cameras for 2D) as ``critic_ref = [mean, std]``."""
    was_training = model.training
    model.eval()
    x = sampler.sample(n, g)
    for key, net in model.nets.items():
        dims = int(key[1:])
        y = x if dims == 3 else project_random_cameras(x, model.cfg, g)
        full = torch.ones(y.shape[:3], dtype=torch.bool)
        centre, rot = canonical_transform(y, full, model.skeleton)
        scores = torch.cat([net.score(c) for c in (apply_transform(y, centre, rot) / model.cfg.coord_scale).split(128)])
        net.critic_ref.copy_(torch.stack([scores.mean(), scores.std()]))
    model.train(was_training)


# ==============================================================================================
# Checkpoints and the Generator interface
# ==============================================================================================
def model_tensors(model: AEGAN) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items()}


def save(model: AEGAN, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    return save_checkpoint(path, model_tensors(model), KIND, model.cfg, metadata or {})


# ==============================================================================================
# Training through motionviz.training.loop (``python -m motionviz train aegan``)
# ==============================================================================================
TINY = dict(frames=8, latent=8, channels=(8, 16), batch_size=8)


class WindowBatches:
    """Endless iterator of clean training windows (B, F, J, 3) metres from a :class:`WindowSampler`."""

    def __init__(self, sampler: WindowSampler, batch_size: int, scale_jitter: float, seed: int, rank: int = 0) -> None:
        self.sampler = sampler
        self.batch_size = batch_size
        self.scale_jitter = scale_jitter
        self.g = torch.Generator().manual_seed(int(seed) * 7919 + rank)

    def __iter__(self) -> "WindowBatches":
        return self

    def __next__(self) -> torch.Tensor:
        return self.sampler.sample(self.batch_size, self.g, self.scale_jitter)


def _apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    names = {f.name for f in dataclasses.fields(Config)}
    kw: dict[str, Any] = {}
    for k, v in overrides.items():
        if k not in names:
            raise UserError(f"unknown AE-GAN config field {k!r}; choose from {', '.join(sorted(names))}")
        kw[k] = tuple(v) if isinstance(v, list) else v
    try:
        return dataclasses.replace(cfg, **kw).validate()
    except (TypeError, ValueError) as e:
        raise UserError(f"bad AE-GAN config: {e}") from None


def _window_training(model: AEGAN, cfg: Config, motions: Sequence[Motion], opts: Any
                     ) -> tuple[WindowSampler, WindowBatches, Callable[[], dict[str, torch.Tensor]]]:
    """What both AE-GAN trainers share once the model exists: the seeded corruption generator, NaN-free
    windows of ``motions``, the bone-length reference, the batches, and ``export`` (critic calibration, then
    the weights)."""
    model.rng = torch.Generator().manual_seed(int(opts.seed) + 1000 * int(opts.rank))
    sampler = WindowSampler(motions, cfg.frames, model.skeleton)
    set_bone_reference(model, sampler, torch.Generator().manual_seed(int(opts.seed) + 1))
    model.to(opts.device)
    batches = WindowBatches(sampler, cfg.batch_size, cfg.scale_jitter, opts.seed, opts.rank)

    def export() -> dict[str, torch.Tensor]:
        calibrate_critic(model, sampler, torch.Generator().manual_seed(int(opts.seed) + 2))
        return model.state_dict()

    return sampler, batches, export


def build_training(opts: Any) -> Any:
    """:data:`motionviz.training.loop.TRAINERS` builder: training-split corpus (common skeleton, 20 fps,
    normalised) -> random NaN-free windows (mirrored, scale-jittered) -> corruption training.

    Datasets default to ``Config.datasets`` (UI-PRMD, KIMORE, IRDS: the rehabilitation recordings;
    ``--datasets`` adds e.g. bandai); ``--tiny`` uses IRDS only and a tiny network."""
    cfg = Config(**TINY) if opts.tiny else Config()
    if opts.batch_size is not None:
        cfg = dataclasses.replace(cfg, batch_size=int(opts.batch_size))
    if opts.lr is not None:
        cfg = dataclasses.replace(cfg, lr=float(opts.lr), lr_critic=float(opts.lr))
    cfg = _apply_overrides(cfg, dict(opts.overrides or {}))
    datasets = list(opts.datasets or (["irds"] if opts.tiny else cfg.datasets))
    cfg = dataclasses.replace(cfg, datasets=tuple(datasets))
    motions = data.load_corpus("train", datasets, root=opts.data_root)
    model = AEGAN(cfg)
    sampler, batches, export = _window_training(model, cfg, motions, opts)
    metadata = {"data": data_provenance(datasets),
                "stats": {"train_motions": len(motions), "train_windows": len(sampler),
                          "parameters": sum(p.numel() for p in model.parameters()),
                          "corruption": "missing joints (scattered / runs), missing frames, hidden limb, "
                                        "never-observed joints, Gaussian noise; losses on the clean window"}}
    keys = [f"d{d}/{k}" for d in cfg.variants for k in ("mpjpe_m", "mpjse_m", "wasserstein")]
    return TrainSetup(model=model, batches=batches, optimizers=make_optimizers(model), kind=KIND, config=cfg,
                      metadata=metadata, log_keys=keys, export=export)


def merge_checkpoints(paths: Sequence[str | Path], out: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Combine checkpoints that differ only in ``variants`` (e.g. a 3D and a 2D training run) into
    one checkpoint holding every variant; metadata of each input is kept under ``<variant>/<key>``.

    ``python -c "from motionviz.models.aegan import merge_checkpoints as m; m(['3d.safetensors',
    '2d.safetensors'], 'checkpoints/aegan.safetensors')"``"""
    models = [load(p) for p in paths]
    base = dataclasses.replace(models[0][0].cfg, variants=())
    variants: list[int] = []
    meta: dict[str, Any] = {}
    for (m, md), p in zip(models, paths):
        if dataclasses.replace(m.cfg, variants=()) != base:
            raise UserError(f"{Path(p).name}: config differs from {Path(paths[0]).name} beyond its variants")
        for d in m.cfg.variants:
            if d in variants:
                raise UserError(f"variant {d}D appears twice")
            variants.append(d)
            for k, v in md.items():
                if k not in ("format", "kind", "config"):
                    meta[f"d{d}/{k}"] = v
        if "data" in md:
            meta["data"] = md["data"]
    meta.update(metadata or {})
    merged = AEGAN(dataclasses.replace(base, variants=tuple(variants)))
    for m, _ in models:
        for key, net in m.nets.items():
            merged.nets[key].load_state_dict(net.state_dict(), strict=True)
    return save(merged, out, meta)


# ==============================================================================================
# Joint up-sampling: fine-tuning through motionviz.training.loop (``python -m motionviz train aegan-upsample``)
# ==============================================================================================
#: what ``aegan-upsample`` changes in the shipped AE-GAN's config: 3D only, 70 % of the windows observe one
#: joint set of :data:`motionviz.core.skeleton.JOINT_SETS`, half the learning rate (decayed, see below)
UPSAMPLE = dict(variants=(3,), p_sets=0.7, joint_sets=("coco17", "trackers", "wrists-ankles-neck"), lr=5e-4,
                lr_critic=5e-4)


_ARCHITECTURE = ("skeleton", "frames", "latent", "channels", "kernel_time", "kernel_body", "coord_scale")


def build_upsample_training(opts: Any) -> Any:
    """:data:`motionviz.training.loop.TRAINERS` builder of the joint up-sampler: the shipped AE-GAN's 3D variant
    (``checkpoints/aegan.safetensors``; ``--set init=PATH`` another, ``--set init=none`` from scratch) trained
    further with the same losses on windows of which ``p_sets`` observe only a sparse joint set (the others
    keep the inpainting corruption, so the model still fills gaps).  The learning rate falls from ``lr``
    to a tenth along a cosine over the budget."""
    overrides = dict(opts.overrides or {})
    init = str(overrides.pop("init", "") or "")
    cfg = Config(**{**TINY, **UPSAMPLE}) if opts.tiny else Config(**UPSAMPLE)
    if opts.batch_size is not None:
        cfg = dataclasses.replace(cfg, batch_size=int(opts.batch_size))
    if opts.lr is not None:
        cfg = dataclasses.replace(cfg, lr=float(opts.lr), lr_critic=float(opts.lr))
    cfg = _apply_overrides(cfg, overrides)
    if 3 not in cfg.variants or len(cfg.variants) != 1:
        raise UserError("the up-sampler is a 3D model: keep variants=[3]")
    datasets = list(opts.datasets or (["irds"] if opts.tiny else cfg.datasets))
    cfg = dataclasses.replace(cfg, datasets=tuple(datasets))
    model = AEGAN(cfg)
    init_info = "none (trained from scratch)"
    src = None if init.lower() == "none" else Path(init) if init else default_checkpoint_dir() / "aegan.safetensors"
    if src is not None:
        if not src.is_file():
            if init:
                raise UserError(f"--set init: no checkpoint at {src}")
        else:
            base, _ = load(src)
            diff = [k for k in _ARCHITECTURE if getattr(base.cfg, k) != getattr(cfg, k)]
            if diff or "d3" not in base.nets:
                if init:
                    raise UserError(f"--set init: {src.name} has another architecture ({', '.join(diff) or 'no 3D variant'})")
            else:
                model.nets["d3"].load_state_dict(base.nets["d3"].state_dict(), strict=True)
                for p in model.parameters():
                    p.requires_grad_(True)
                init_info = f"{src.name} (sha256 {file_sha256(src)[:16]}, {read_metadata(src).get('d3/steps', '?')} steps)"
    motions = data.load_corpus("train", datasets, root=opts.data_root)
    sampler, batches, export = _window_training(model, cfg, motions, opts)
    metadata = {"data": data_provenance(datasets), "init": init_info, "task": "joint up-sampling",
                "stats": {"train_motions": len(motions), "train_windows": len(sampler),
                          "parameters": sum(p.numel() for p in model.parameters()),
                          "corruption": f"{cfg.p_sets:.0%} of the windows observe one joint set of "
                                        f"{', '.join(cfg.joint_sets)} (each of its joints missing at a rate "
                                        f"U(0, {cfg.set_dropout:g})); the rest as the inpainter"}}

    def lr_lambda(f: float) -> float:
        return 0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, f)))

    return TrainSetup(model=model, batches=batches, optimizers=make_optimizers(model), kind=KIND, config=cfg,
                      metadata=metadata, log_keys=["d3/mpjpe_m", "d3/mpjse_m", "d3/wasserstein"], export=export,
                      lr_lambda=lr_lambda)
