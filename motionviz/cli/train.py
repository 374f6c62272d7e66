"""``python -m motionviz train <model>``: train a model with the training loop of
:mod:`motionviz.training.loop` (wall-clock or step budget, resume, torchrun)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from ..core.checkpoint import default_checkpoint_dir
from ..core.errors import UserError
from ..training.loop import REPO_ROOT, TRAINERS, TrainOptions, train
from ..training.vae import refit_prior
from .common import set_threads

__all__ = ["add_arguments", "run"]


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help=f"what to train: {', '.join(TRAINERS)}")
    parser.add_argument("--minutes", type=float, default=None, help="wall-clock budget (minutes)")
    parser.add_argument("--steps", type=int, default=None, help="number of optimiser steps")
    parser.add_argument("--out", default=None, help="checkpoint path (default checkpoints/<model>.safetensors)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--tiny", action="store_true", help="tiny model and data (smoke tests)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--datasets", default=None, help="comma-separated dataset names (default: the trainer's)")
    parser.add_argument("--data-root", default=None, help="data folder (default: $MOTIONVIZ_DATA or ../shared/data)")
    parser.add_argument("--save-every", type=float, default=3.0, help="minutes between checkpoints")
    parser.add_argument("--runs-dir", default=None, help="folder for the resume state and loss history "
                        "(default runs/<model>, or runs/<model>-<out>-<hash> with --out)")
    parser.add_argument("--resume", action="store_true", help="continue from runs/<model>/resume.safetensors "
                        "(runs/<model>-<out>-<hash>/ with --out)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field (repeatable), e.g. --set layers=4")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    parser.add_argument("--refit-prior", default=None, metavar="CHECKPOINT",
                        help="vae only: no training; refit the prior of this trained checkpoint on the training "
                             "data (with --set prior_rank=K / temperature=T) and write it to --out")


def run(args: argparse.Namespace) -> int:
    set_threads(args.threads, interop=True)
    overrides = {}
    for item in args.set:
        if "=" not in item:
            raise UserError(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        overrides[k.strip()] = _parse_value(v)
    if ":" in args.model and not args.out:
        raise UserError("a trainer given as package.module:function needs --out")
    if args.refit_prior is not None:
        return _refit(args, overrides)
    out = Path(args.out) if args.out else default_checkpoint_dir() / f"{args.model}.safetensors"
    opts = TrainOptions(name=args.model, seed=args.seed, tiny=args.tiny, batch_size=args.batch_size, lr=args.lr,
                        data_root=args.data_root,
                        datasets=[d.strip() for d in args.datasets.split(",")] if args.datasets else None,
                        device=args.device, overrides=overrides)
    command = "python -m motionviz train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if len(sys.argv) > 1 and sys.argv[1] == "train" else \
        "python -m motionviz train " + args.model
    # the resume state of a run writing elsewhere than the shipped checkpoint gets its own folder, so a
    # smoke run with --out never overwrites the real run's resume state
    runs_dir = Path(args.runs_dir) if args.runs_dir else None
    shipped = (default_checkpoint_dir() / f"{args.model}.safetensors").resolve()
    if runs_dir is None and args.out and out.resolve() != shipped:
        tag = hashlib.sha1(str(out.resolve()).encode()).hexdigest()[:8]
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in args.model)
        runs_dir = REPO_ROOT / "runs" / f"{safe}-{out.stem}-{tag}"
    summary = train(opts, out, minutes=args.minutes, steps=args.steps, save_every_min=args.save_every,
                    resume=args.resume, command=command, progress_bar=not args.no_progress, runs_dir=runs_dir)
    if opts.rank == 0:
        print(json.dumps(summary))
    if opts.world_size > 1:
        # the process group is destroyed and every file is written; leave without the interpreter's
        # finalisation, during which gloo's worker threads can abort the process (SIGABRT, pytorch#179291)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def _refit(args: argparse.Namespace, overrides: dict) -> int:
    """``train vae --refit-prior SRC --out DST [--set prior_rank=K]``: a new prior on trained weights."""
    if args.model != "vae":
        raise UserError(f"--refit-prior is for the vae, not {args.model!r}")
    if not args.out:
        raise UserError("--refit-prior needs --out (the refitted checkpoint)")
    command = "python -m motionviz train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if len(sys.argv) > 1 and sys.argv[1] == "train" else ""
    print(json.dumps(refit_prior(args.refit_prior, args.out, overrides, data_root=args.data_root, seed=args.seed,
                                 command=command)))
    return 0
