"""motionviz.train: the generic loop with a toy model (linear regression) plugged into TRAINERS:
step budget, checkpoint carrying config + metadata, resume from the safetensors state, bad budgets."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from motionviz import train as T
from motionviz.checkpoint import load_checkpoint, read_metadata
from motionviz.errors import UserError


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


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(T.TRAINERS, "toy", f"{__name__}:build_toy")


def test_trains_saves_and_resumes(toy, tmp_path):
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


def test_same_seed_same_weights(toy, tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    T.train(T.TrainOptions(name="toy", seed=3), a, steps=5, runs_dir=tmp_path / "ra", progress_bar=False)
    T.train(T.TrainOptions(name="toy", seed=3), b, steps=5, runs_dir=tmp_path / "rb", progress_bar=False)
    from safetensors.torch import load_file
    ta, tb = load_file(a), load_file(b)
    assert all(torch.equal(ta[k], tb[k]) for k in ta)


def test_bad_budgets_and_names(toy, tmp_path):
    with pytest.raises(UserError, match="budget"):
        T.train(T.TrainOptions(name="toy"), tmp_path / "x.safetensors", runs_dir=tmp_path, progress_bar=False)
    with pytest.raises(UserError, match="positive"):
        T.train(T.TrainOptions(name="toy"), tmp_path / "x.safetensors", minutes=float("nan"), runs_dir=tmp_path,
                progress_bar=False)
    with pytest.raises(UserError, match="unknown model"):
        T.train(T.TrainOptions(name="nope"), tmp_path / "x.safetensors", steps=1, runs_dir=tmp_path,
                progress_bar=False)
