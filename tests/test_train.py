"""motionviz.training.loop: the generic loop with a toy model (linear regression) plugged into TRAINERS:
step budget, checkpoint carrying config + metadata, resume from the safetensors state, bad budgets."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from motionviz.core.checkpoint import load_checkpoint, read_metadata
from motionviz.core.errors import UserError
from motionviz.training import loop as T


@dataclass
class ToyConfig:
    dim: int = 3


class Toy(nn.Module):
    def __init__(self, cfg: ToyConfig):
        super().__init__()
        self.lin = nn.Linear(cfg.dim, 1)

    def train_step(self, batch, optimizers):
        x, y = batch
        loss = ((self.lin(x).squeeze(-1) - y) ** 2).mean()
        opt = optimizers["main"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}


TRUE_W = torch.tensor([1.5, -2.0, 0.5])


def build_toy(opts: T.TrainOptions) -> T.TrainSetup:
    cfg = ToyConfig(**opts.overrides)
    model = Toy(cfg)
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(256, cfg.dim, generator=g)
    ys = xs @ TRUE_W[: cfg.dim]

    def collate(items, rng):
        idx = torch.tensor(items)
        return xs[idx], ys[idx]

    batches = T.RandomBatches(list(range(256)), 32, collate, seed=opts.seed, rank=opts.rank)
    opt = torch.optim.SGD(model.parameters(), lr=opts.lr or 0.1)
    return T.TrainSetup(model=model, batches=batches, optimizers={"main": opt}, kind="toy", config=cfg,
                        metadata={"data": "synthetic"})


def test_trains_saves_and_resumes(toy_trainer, tmp_path):
    out = tmp_path / "toy.safetensors"
    runs = tmp_path / "runs"
    T.train(T.TrainOptions(name="toy"), out, steps=60, runs_dir=runs, progress_bar=False)
    meta = read_metadata(out)
    assert meta["kind"] == "toy" and meta["data"] == "synthetic" and '"dim": 3' in meta["config"]
    assert int(meta["steps"]) == 60
    tensors, _ = load_checkpoint(out, kind="toy")
    assert torch.allclose(tensors["lin.weight"].squeeze(), TRUE_W, atol=0.05)   # it really learned
    assert (runs / "resume.safetensors").is_file()

    # resume continues from step 60 up to 80 (the step budget is the total)
    T.train(T.TrainOptions(name="toy"), out, steps=80, runs_dir=runs, resume=True, progress_bar=False)
    assert int(read_metadata(out)["steps"]) == 80


def test_same_seed_same_weights(toy_trainer, tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    T.train(T.TrainOptions(name="toy", seed=3), a, steps=5, runs_dir=tmp_path / "ra", progress_bar=False)
    T.train(T.TrainOptions(name="toy", seed=3), b, steps=5, runs_dir=tmp_path / "rb", progress_bar=False)
    from safetensors.torch import load_file
    ta, tb = load_file(a), load_file(b)
    assert all(torch.equal(ta[k], tb[k]) for k in ta)


def test_bad_budgets_and_names(toy_trainer, tmp_path):
    with pytest.raises(UserError, match="budget"):
        T.train(T.TrainOptions(name="toy"), tmp_path / "x.safetensors", runs_dir=tmp_path, progress_bar=False)
    with pytest.raises(UserError, match="positive"):
        T.train(T.TrainOptions(name="toy"), tmp_path / "x.safetensors", minutes=float("nan"), runs_dir=tmp_path,
                progress_bar=False)
    with pytest.raises(UserError, match="unknown model"):
        T.train(T.TrainOptions(name="nope"), tmp_path / "x.safetensors", steps=1, runs_dir=tmp_path,
                progress_bar=False)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("budget", [["--steps", "40"], ["--minutes", "0.03"]])
def test_torchrun_two_processes(tmp_path, budget):
    """``torchrun --nproc_per_node 2 -m motionviz train ...`` unchanged: gloo process group, gradients
    averaged across the ranks, one checkpoint written by rank 0; with a wall-clock budget both ranks stop
    at the same step (rank 0's clock), so nobody waits forever in an all-reduce."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    out = tmp_path / "toy.safetensors"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(here), str(here.parent)]), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(_free_port()), "-m", "motionviz", "train", "test_train:build_toy", "--out", str(out),
           "--runs-dir", str(tmp_path / "runs"),
           "--no-progress", "--lr", "0.1", *budget]
    r = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    summaries = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1                                   # only rank 0 reports and writes
    meta = read_metadata(out)
    assert meta["world_size"] == "2" and meta["final"] == "true"
    assert int(meta["steps"]) == summaries[0]["steps"] >= 1
    if budget[0] == "--steps":
        assert summaries[0]["steps"] == 40
        tensors, _ = load_checkpoint(out, kind="toy")
        assert torch.allclose(tensors["lin.weight"].squeeze(), TRUE_W, atol=0.05)


def test_own_trainer_needs_out(tmp_path, capsys):
    from motionviz.cli import main

    assert main(["train", "test_train:build_toy", "--steps", "1"]) != 0
    assert "needs --out" in capsys.readouterr().err
