"""The ONE training loop shared by every model family (``python -m motionviz train <model>``, :mod:`motionviz.cli.train`).

A model family plugs in through the :data:`TRAINERS` table: ``name -> "module:function"``.  The
function receives :class:`TrainOptions` and returns a :class:`TrainSetup`:

* ``model``: an ``nn.Module`` exposing ``train_step(batch, optimizers) -> dict[str, float]`` (it does its
  own forward, backward and ``optimizer.step()``; a GAN alternates critic/generator inside it);
* ``batches``: an endless iterator of batches, already sharded for this rank (use :func:`shard` /
  :class:`RandomBatches`);
* ``optimizers``: ``{name: torch.optim.Optimizer}``;
* ``kind``, ``config`` (dataclass) and ``metadata`` (text encoder, ``data_provenance(...)``, stats ...) for
  :func:`motionviz.core.checkpoint.save_checkpoint`; ``export()`` returns the tensors to ship (default:
  ``model.state_dict()``; e.g. EMA weights + normalisation buffers).

The loop handles seeding, threads, the step/time budget, a learning-rate multiplier
``lr_lambda(fraction_done)``, tqdm progress, periodic atomic checkpoints (every ``--save-every`` minutes and
at the end, so a stop loses at most that much), a resume state in ``runs/<name>/resume.safetensors``
(model + optimiser state as safetensors, no pickle) and ``torchrun`` data parallelism: when ``WORLD_SIZE``
is set the process group is initialised, parameters are broadcast from rank 0, gradients are averaged
across ranks by a pre-step hook on every optimiser (so ``train_step`` needs no change) and only rank 0
writes files.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from ..core.checkpoint import config_to_json, save_checkpoint
from ..core.errors import UserError
from ..core.limits import MAX_SEED
from ..io.files import writable_dir

log = logging.getLogger("motionviz.training")

__all__ = ["TRAINERS", "TrainOptions", "TrainSetup", "RandomBatches", "shard", "train", "save_resume_state",
           "load_resume_state", "check_options", "check_checkpoint_out", "read_resume_info"]

# name -> "module:function" building a TrainSetup from TrainOptions.  Engineers add their rows.
TRAINERS: dict[str, str] = {
    "diffusion": "motionviz.training.diffusion:build_training",
    "diffusion-fast": "motionviz.training.diffusion_fast:build_training",
    "vae": "motionviz.training.vae:build_training",
    "aegan": "motionviz.training.aegan:build_training",
    "aegan-upsample": "motionviz.training.aegan:build_upsample_training",
    "recognizer": "motionviz.training.recognition:build_training",
}

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class TrainOptions:
    """What the builder needs to know.  ``overrides`` come from ``--set key=value`` (config fields)."""

    name: str
    seed: int = 0
    tiny: bool = False
    batch_size: int | None = None
    lr: float | None = None
    data_root: str | None = None
    datasets: list[str] | None = None
    device: str = "cpu"
    rank: int = 0
    world_size: int = 1
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainSetup:
    model: nn.Module
    batches: Iterator[Any]
    optimizers: dict[str, torch.optim.Optimizer]
    kind: str
    config: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    export: Callable[[], dict[str, torch.Tensor]] | None = None
    lr_lambda: Callable[[float], float] | None = None   # fraction of the budget done -> lr multiplier
    log_keys: Sequence[str] | None = None               # losses shown in the progress bar (default: all)


# ---------------------------------------------------------------------------------------------
# data helpers for builders
# ---------------------------------------------------------------------------------------------
def shard(items: Sequence[Any], rank: int, world_size: int) -> list[Any]:
    """This rank's share of ``items`` (every ``world_size``-th item, like DistributedSampler)."""
    if world_size <= 1:
        return list(items)
    out = list(items[rank::world_size])
    if not out:
        raise UserError(f"rank {rank} got no training items ({len(items)} items for {world_size} ranks)")
    return out


def equalise_states(w: np.ndarray, group: np.ndarray, state: np.ndarray) -> np.ndarray:
    """Sampling weights ``w`` (N,) with every group's total kept and split equally between the states
    present in it (``group``, ``state`` (N,) keys, e.g. exercise and correct/incorrect): a group with
    3 correct and 9 incorrect recordings is drawn correct half of the time.  Groups with one state keep
    their weights.  Used by the diffusion model (per recording) and the VAE (per class)."""
    w = np.asarray(w, dtype=np.float64).copy()
    group, state = np.asarray(group), np.asarray(state)
    for g in set(group.tolist()):
        m = group == g
        states = np.unique(state[m])
        if len(states) < 2:
            continue
        tot = w[m].sum()
        for c in states:
            mc = m & (state == c)
            w[mc] *= tot / len(states) / w[mc].sum()
    return w


class RandomBatches:
    """Endless iterator: reshuffle ``items`` each epoch, yield ``collate(list_of_items, rng)``.

    ``rng`` is a seeded ``np.random.Generator`` (different per rank) used for shuffling and passed to
    ``collate`` for random crops / augmentation."""

    def __init__(self, items: Sequence[Any], batch_size: int, collate: Callable[[list[Any], np.random.Generator], Any],
                 seed: int = 0, rank: int = 0, drop_last: bool = True):
        if not items:
            raise UserError("no training items")
        self.items = list(items)
        self.batch_size = max(1, min(batch_size, len(self.items)) if drop_last else batch_size)
        self.collate = collate
        self.rng = np.random.default_rng([seed, rank])
        self._order: list[int] = []
        self.epoch = 0

    def __iter__(self) -> "RandomBatches":
        return self

    def __next__(self) -> Any:
        if len(self._order) < self.batch_size:
            self._order = list(self.rng.permutation(len(self.items)))
            self.epoch += 1
        idx, self._order = self._order[: self.batch_size], self._order[self.batch_size:]
        return self.collate([self.items[i] for i in idx], self.rng)


# ---------------------------------------------------------------------------------------------
# resume state (safetensors, no pickle)
# ---------------------------------------------------------------------------------------------
def _flatten_optimizer(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            key = f"{prefix}.state.{pid}.{k}"
            if torch.is_tensor(v):
                tensors[key] = v
            else:
                scalars[key] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    pre = prefix + ".state."
    for key, v in tensors.items():
        if key.startswith(pre):
            pid, k = key[len(pre):].split(".", 1)
            state.setdefault(int(pid), {})[k] = v
    for key, v in meta.get("scalars", {}).items():
        pid, k = key[len(pre):].split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def save_resume_state(path: Path, model: nn.Module, optimizers: dict[str, torch.optim.Optimizer],
                      info: dict[str, Any]) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt_meta = {}
    for name, opt in optimizers.items():
        t, m = _flatten_optimizer(f"opt.{name}", opt)
        tensors.update({k: v.detach().cpu().contiguous() for k, v in t.items()})
        opt_meta[name] = m
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata={"info": json.dumps(info), "optimizers": json.dumps(opt_meta)})
    os.replace(tmp, path)


def read_resume_info(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(info, optimiser metadata)`` of a resume state, read from its header only (no tensors), else a
    one-line :class:`UserError` (a truncated, corrupt or foreign file)."""
    fix = f"delete {path.parent} or drop --resume to start over"
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(f"the resume state {path} is not a readable safetensors file "
                        f"({e.__class__.__name__}); {fix}") from None
    try:
        info, opt_meta = json.loads(meta["info"]), json.loads(meta["optimizers"])
        if not isinstance(info, dict) or not isinstance(opt_meta, dict):
            raise TypeError("not objects")
        step, secs = int(info.get("step", 0)), float(info.get("seconds", 0.0))
        if step < 0 or not (math.isfinite(secs) and secs >= 0):
            raise ValueError("negative step or time")
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"the resume state {path} has malformed metadata ({e.__class__.__name__}); {fix}") from None
    return info, opt_meta


def load_resume_state(path: Path, model: nn.Module, optimizers: dict[str, torch.optim.Optimizer],
                      config: Any = None) -> dict[str, Any]:
    """Load model and optimiser state from ``path``; return its info (step, seconds).  When ``config`` is
    given and the state recorded one, they must be equal.  Every problem is a one-line :class:`UserError`
    and nothing is changed unless the whole state fits."""
    info, opt_meta = read_resume_info(path)
    fix = f"delete {path.parent} or drop --resume to start over"
    if config is not None and "config" in info:
        now, then = json.loads(config_to_json(config)), info["config"]
        if now != then:
            diff = sorted(k for k in set(now) | set(then) if now.get(k) != then.get(k))
            shown = ", ".join(f"{k}: {then.get(k)!r} then, {now.get(k)!r} now" for k in diff[:3])
            raise UserError(f"the resume state {path} was written with a different model configuration "
                            f"({shown}); use the same --tiny/--set options, or {fix}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(f"the resume state {path} could not be read ({e.__class__.__name__}); {fix}") from None
    missing = [name for name in optimizers if name not in opt_meta]
    if missing:
        raise UserError(f"the resume state {path} has no optimiser {missing[0]!r}; {fix}")
    model_sd = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    saved = {k: tuple(v.shape) for k, v in model_sd.items()}
    wanted = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if saved != wanted:
        diff = sorted(set(saved) ^ set(wanted)) or sorted(k for k in saved if saved[k] != wanted[k])
        raise UserError(f"the resume state {path} does not fit this model (first difference: {diff[0]}); "
                        f"it was written with other options; {fix}")
    try:
        model.load_state_dict(model_sd, strict=True)
        for name, opt in optimizers.items():
            opt.load_state_dict(_unflatten_optimizer(f"opt.{name}", tensors, opt_meta[name]))
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:
        raise UserError(f"the resume state {path} does not fit this model's optimiser state "
                        f"({e.__class__.__name__}); {fix}") from None
    return info


# ---------------------------------------------------------------------------------------------
# distributed
# ---------------------------------------------------------------------------------------------
def _init_distributed(device: str) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _make_data_parallel(model: nn.Module, optimizers: dict[str, torch.optim.Optimizer]) -> None:
    """Broadcast rank 0's parameters and average gradients before every optimiser step."""
    for t in list(model.parameters()) + list(model.buffers()):
        dist.broadcast(t.data, src=0)
    world = dist.get_world_size()

    def hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        for group in opt.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)  # every rank must join every all-reduce
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                p.grad.div_(world)

    for opt in optimizers.values():
        opt.register_step_pre_hook(hook)


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------
def build_setup(opts: TrainOptions) -> TrainSetup:
    spec = TRAINERS.get(opts.name)
    if spec is None and ":" in opts.name:          # a trainer of your own: "package.module:function"
        spec = opts.name
    if spec is None:
        raise UserError(f"unknown model {opts.name!r}; choose from {', '.join(TRAINERS)} "
                        "(or give your own trainer as package.module:function)")
    module, fn = spec.split(":", 1)
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise UserError(f"the {opts.name} trainer is not available ({e})") from None
    if not callable(getattr(mod, fn, None)):
        raise UserError(f"{module} has no trainer function {fn!r}")
    return getattr(mod, fn)(opts)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


#: Bounds of the training arguments (checked before any data is read or any model is built).
MAX_BATCH_SIZE = 65536
MAX_LR = 10.0
MAX_STEPS = 10**9


def check_checkpoint_out(out: Path) -> Path:
    """``out`` must name a ``.safetensors`` file (not a folder) in a folder we can write; checked before
    training so a bad ``--out`` does not fail only after the whole budget was spent."""
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; name the checkpoint file, e.g. {out / 'model.safetensors'}")
    if out.suffix != ".safetensors":
        raise UserError(f"--out must name a .safetensors file, got {out.name!r}")
    writable_dir(out.parent, "--out")
    return out


def check_options(opts: TrainOptions, minutes: float | None, steps: int | None, save_every_min: float) -> None:
    """Every numeric training argument, checked before any work: a one-line :class:`UserError` naming the
    option (``--lr nan`` and ``--batch-size 0`` used to reach the trainer)."""
    def finite(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if minutes is None and steps is None:
        raise UserError("give a budget: --minutes and/or --steps")
    if minutes is not None and not (finite(minutes) and minutes > 0):
        raise UserError(f"--minutes must be positive, got {minutes}")
    if steps is not None and not (isinstance(steps, int) and 1 <= steps <= MAX_STEPS):
        raise UserError(f"--steps must be at least 1, got {steps}")
    if not (finite(save_every_min) and save_every_min > 0):
        raise UserError(f"--save-every must be a positive number of minutes, got {save_every_min}")
    if opts.lr is not None and not (finite(opts.lr) and 0 < opts.lr <= MAX_LR):
        raise UserError(f"--lr must be a number in (0, {MAX_LR:g}], got {opts.lr}")
    if opts.batch_size is not None and not (isinstance(opts.batch_size, int)
                                            and 1 <= opts.batch_size <= MAX_BATCH_SIZE):
        raise UserError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}, got {opts.batch_size}")
    if not (isinstance(opts.seed, int) and 0 <= opts.seed <= MAX_SEED):
        raise UserError(f"--seed must be a whole number between 0 and 2^63-1, got {opts.seed}")
    if opts.device != "cpu" and not str(opts.device).startswith("cuda"):
        raise UserError(f"--device must be cpu or cuda[:N], got {opts.device!r}")


def _check_run_files(opts: TrainOptions, out: Path | None, resume: bool,
                     runs_dir: Path | None) -> tuple[Path | None, Path, Path]:
    """-> (checked checkpoint path, runs folder, resume state path); with ``resume`` the resume state
    must exist and be readable."""
    if out is not None:
        out = check_checkpoint_out(out)
    runs_dir = runs_dir or REPO_ROOT / "runs" / opts.name
    resume_path = runs_dir / "resume.safetensors"
    if resume:
        if not resume_path.is_file():
            raise UserError(f"--resume: there is nothing to resume ({resume_path} does not exist); "
                            "drop --resume to start a new run")
        read_resume_info(resume_path)
    return out, runs_dir, resume_path


def _budget_fraction(step: int, secs: float, steps: int | None, budget_s: float | None) -> float:
    """Fraction of the budget done: the larger of the step and time fractions, at most 1."""
    f = 0.0
    if steps is not None:
        f = max(f, step / steps)
    if budget_s is not None:
        f = max(f, secs / budget_s)
    return min(1.0, f)


def _synced_clock(start: float, rank: int, world: int) -> float:
    """Seconds since ``start``; with several ranks, rank 0's clock (one tiny all-reduce per step), so
    every rank stops at the same step and uses the same learning rate."""
    secs = time.monotonic() - start
    if world > 1:
        dev = "cuda" if dist.get_backend() == "nccl" else "cpu"
        t = torch.tensor([secs if rank == 0 else 0.0], dtype=torch.float64, device=dev)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        secs = float(t)
    return secs


def _scale_lrs(optimizers: dict[str, torch.optim.Optimizer], base_lrs: dict[str, list[float]], mult: float) -> None:
    """Every parameter group's learning rate = its base rate times ``mult``."""
    for n, o in optimizers.items():
        for g, lr0 in zip(o.param_groups, base_lrs[n]):
            g["lr"] = lr0 * mult


def _smooth_losses(smooth: dict[str, float], logs: dict[str, float], step: int) -> None:
    """Fold one step's losses into their exponential moving averages (a non-finite loss stops training)."""
    for k, v in logs.items():
        v = float(v)
        if not math.isfinite(v):
            raise UserError(f"training diverged: loss {k} became {v} at step {step} (try a lower --lr; "
                            "the last checkpoint written is kept)")
        smooth[k] = v if k not in smooth else 0.98 * smooth[k] + 0.02 * v


def _write_run(setup: TrainSetup, opts: TrainOptions, out: Path | None, runs_dir: Path, resume_path: Path,
               command: str, world: int, step: int, secs: float, smooth: dict[str, float],
               history: list[dict[str, float]], final: bool) -> None:
    """Write the checkpoint (when ``out``), the resume state and the loss history (rank 0 only)."""
    meta = dict(setup.metadata)
    meta.update({"command": command, "steps": step, "train_seconds": round(secs, 1),
                 "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "losses": {k: round(v, 5) for k, v in smooth.items()}, "seed": opts.seed,
                 "world_size": world, "final": final})
    tensors = setup.export() if setup.export is not None else setup.model.state_dict()
    if out is not None:
        save_checkpoint(out, tensors, setup.kind, setup.config, meta)
    save_resume_state(resume_path, setup.model, setup.optimizers, {"step": step, "seconds": secs, "model": opts.name,
                                                                   "config": json.loads(config_to_json(setup.config))})
    (runs_dir / "history.json").write_text(json.dumps(history[-2000:]))


def train(opts: TrainOptions, out: Path | None, minutes: float | None = None, steps: int | None = None,
          save_every_min: float = 3.0, resume: bool = False, command: str = "", runs_dir: Path | None = None,
          progress_bar: bool = True, log_every: int = 25) -> dict[str, Any]:
    """Run the loop; returns a summary (steps, seconds, final smoothed losses, checkpoint path).

    Before any data is read: the arguments (:func:`check_options`), ``out`` (:func:`check_checkpoint_out`),
    the runs folder, and with ``resume`` that there is a readable resume state (asking to resume with
    nothing to resume is an error, not a silent fresh start); after the model is built, that the state
    was written for the same configuration."""
    check_options(opts, minutes, steps, save_every_min)
    out, runs_dir, resume_path = _check_run_files(opts, out, resume, runs_dir)
    rank, world = _init_distributed(opts.device)
    opts.rank, opts.world_size = rank, world
    if rank == 0:
        writable_dir(runs_dir, "--runs-dir")
    seed_everything(opts.seed + 1000 * rank)
    setup = build_setup(opts)
    seed_everything(opts.seed + 1000 * rank)
    model, optimizers = setup.model, setup.optimizers
    model.train()
    if world > 1:
        _make_data_parallel(model, optimizers)
    base_lrs = {n: [g["lr"] for g in o.param_groups] for n, o in optimizers.items()}
    step0, elapsed0 = 0, 0.0
    if resume:
        info = load_resume_state(resume_path, model, optimizers, setup.config)
        step0, elapsed0 = int(info.get("step", 0)), float(info.get("seconds", 0.0))
        if rank == 0:
            log.info(f"resumed from {resume_path} at step {step0} ({elapsed0 / 60:.1f} min)")
    budget_s = minutes * 60.0 if minutes is not None else None

    smooth: dict[str, float] = {}
    history: list[dict[str, float]] = []
    pbar = None
    if progress_bar and rank == 0:
        pbar = tqdm(total=steps, desc=f"train {opts.name}", dynamic_ncols=True, file=sys.stderr,
                    initial=min(step0, steps) if steps else step0)
    start = time.monotonic() - elapsed0
    last_save = time.monotonic()
    step = step0

    def write(final: bool) -> None:
        if rank == 0:
            _write_run(setup, opts, out, runs_dir, resume_path, command, world, step, time.monotonic() - start,
                       smooth, history, final)

    try:
        while True:
            secs = _synced_clock(start, rank, world)
            if (steps is not None and step >= steps) or (budget_s is not None and secs >= budget_s):
                break
            if setup.lr_lambda is not None:
                _scale_lrs(optimizers, base_lrs, float(setup.lr_lambda(_budget_fraction(step, secs, steps, budget_s))))
            batch = next(setup.batches)
            logs = model.train_step(batch, optimizers)
            step += 1
            _smooth_losses(smooth, logs, step)
            if step % log_every == 0:
                history.append({"step": step, "seconds": round(time.monotonic() - start, 1),
                                **{k: round(v, 5) for k, v in smooth.items()}})
            if pbar is not None:
                pbar.update(1)
                if step % 10 == 0:
                    keys = setup.log_keys or list(smooth)
                    pbar.set_postfix({k: f"{smooth[k]:.4f}" for k in keys if k in smooth}, refresh=False)
            if time.monotonic() - last_save >= save_every_min * 60.0:
                write(final=False)
                last_save = time.monotonic()
    finally:
        if pbar is not None:
            pbar.close()
    write(final=True)
    summary = {"model": opts.name, "steps": step, "seconds": round(time.monotonic() - start, 1),
               "losses": {k: round(v, 5) for k, v in smooth.items()}, "checkpoint": str(out) if out else None}
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return summary
