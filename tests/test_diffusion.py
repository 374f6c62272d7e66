"""Text/exercise-conditioned diffusion model (motionviz.models.diffusion): tiny configs, synthetic data, and
one short training run on a slice of the real data."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from _poses import arms_down_pose

from motionviz.core import representation as D_R
from motionviz.core import representation_torch as D_RT
from motionviz.core.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from motionviz.core.errors import CheckpointError, UserError
from motionviz.core.motion import DEFAULT_FPS, Motion, MotionLabels
from motionviz.core.skeleton import COMMON
from motionviz.evaluation import diffusion as D_E
from motionviz.generators import diffusion as D_G
from motionviz.generators.registry import Request
from motionviz.models import diffusion as D
from motionviz.models.losses import motion_loss
from motionviz.training import diffusion as D_T

LABELS = ("ui-prmd:m01", "ui-prmd:m07", "bandai:walk")


class FakeEncoder:
    """Deterministic stand-in text encoder (hash-seeded unit vectors)."""

    def __init__(self, name: str = "fake", dim: int = 8):
        self.name, self.dim = name, dim

    def encode(self, texts):
        out = []
        for t in texts:
            g = torch.Generator().manual_seed(int(hashlib.sha1(t.encode()).hexdigest()[:8], 16))
            out.append(torch.nn.functional.normalize(torch.randn(self.dim, generator=g), dim=0))
        return torch.stack(out) if out else torch.zeros(0, self.dim)


def _cfg(**kw) -> D.Config:
    base = dict(labels=LABELS, datasets=("bandai", "ui-prmd"), text_encoder="fake", text_dim=8, T=50)
    base.update(kw)
    return D.tiny_config(**base)


def _walk(T: int, seed: int = 0) -> np.ndarray:
    """A synthetic person (reference pose from the skeleton) swinging the arms and drifting forward."""
    rng = np.random.default_rng(seed)
    pose = arms_down_pose()
    t = np.arange(T, dtype=np.float32)[:, None]
    j = np.repeat(pose[None], T, axis=0).copy()
    arms = COMMON.indices(["left_elbow", "left_wrist", "right_elbow", "right_wrist"])
    j[:, arms, 1] += (0.2 * np.sin(t / (6 + seed)) + 0.02 * rng.standard_normal((T, 1))).astype(np.float32)
    j[..., 2] += 0.01 * t
    return j


def _batch(B: int = 6, T: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    """A batch of time-normalised repetitions (T = the tiny config's ``rep_frames``)."""
    joints = np.stack([D_R.canonicalise(_walk(T, seed + b))[0] for b in range(B)])
    valid = np.ones((B, T), bool)
    return {"joints": torch.from_numpy(joints), "valid": torch.from_numpy(valid),
            "duration": torch.linspace(1.0, 3.0, B),
            "text": FakeEncoder().encode([f"caption {b % 3}" for b in range(B)]),
            "text_on": torch.tensor([True] * (B - 1) + [False]),
            "label": torch.tensor([b % 4 for b in range(B)]), "correct": torch.tensor([b % 3 for b in range(B)]),
            "dataset": torch.tensor([b % 3 for b in range(B)]),
            "vel_scale": torch.tensor(0.01), "bone_scale": torch.tensor(0.05),
            "contact_height": torch.tensor(0.12), "contact_speed": torch.tensor(0.02)}


def _reps(motions: list[np.ndarray], cfg: D.Config, labels: list[str] | None = None) -> D_T.RepetitionSet:
    ms = [Motion(j, COMMON, DEFAULT_FPS, MotionLabels(dataset="ui-prmd", label=(labels or LABELS)[i % len(LABELS)]))
          for i, j in enumerate(motions)]
    return D_T.repetition_set(ms, [[0]] * len(ms), list(LABELS), ["bandai", "ui-prmd"], cfg)


def _stats(cfg: D.Config) -> tuple[torch.Tensor, torch.Tensor]:
    st = D_T.feature_stats(_reps([_walk(40 + 10 * s, s) for s in range(4)], cfg))
    return st["mean"], st["std"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, D.DiffusionModel]:
    """A tiny model after a few optimiser steps, saved as a checkpoint."""
    torch.manual_seed(0)
    cfg = _cfg()
    model = D.DiffusionModel(cfg, *_stats(cfg))
    opt = torch.optim.AdamW(model.net.parameters(), lr=3e-3)
    for i in range(15):
        model.train_step(_batch(seed=i), {"main": opt})
    path = tmp_path_factory.mktemp("ckpt") / "diffusion.safetensors"
    D_T.save_model(path, model, {"data": [{"dataset": "synthetic", "licence": "test"}]})
    return path, model


@pytest.fixture(scope="module")
def gen(trained) -> D_G.DiffusionGenerator:
    return D_G.load_generator(trained[0], encoder=FakeEncoder())


# ---------------------------------------------------------------------------------------------
def test_features_roundtrip():
    j = torch.from_numpy(_walk(10)).float()
    f = D_RT.to_features(j)
    assert f.shape == (10, 45)
    assert torch.allclose(f[:, :3], j[:, 0])                              # pelvis position first
    assert torch.allclose(f[:, 3:6], j[:, 1] - j[:, 0])                   # then offsets from the pelvis
    assert torch.allclose(D_RT.from_features(f), j, atol=1e-6)


def test_canonicalise_roundtrip():
    j = Motion(_walk(20), COMMON).rotate_y(1.1).joints + np.array([0.5, 0.0, -2.0], np.float32)
    c, ang, off = D_R.canonicalise(j)
    assert abs(c[0, COMMON.root, 0]) < 1e-5 and abs(c[0, COMMON.root, 2]) < 1e-5
    assert abs(Motion(c, COMMON).facing_angle(0)) < 1e-4
    assert np.allclose(c[..., 1], j[..., 1], atol=1e-6)                   # heights untouched
    assert np.allclose(D_R.uncanonicalise(c, ang, off), j, atol=1e-5)


def test_repetition_features_roundtrip():
    cfg = _cfg()
    j = torch.from_numpy(D_R.canonicalise(_walk(cfg.rep_frames))[0])
    mean, std = _stats(cfg)
    f = D_RT.rep_features(j, torch.tensor(2.5), mean, std)
    assert f.shape == (cfg.rep_frames, cfg.features)
    back, dur = D_RT.rep_joints(f, mean, std)
    assert torch.allclose(back, j, atol=1e-5) and abs(float(dur) - 2.5) < 1e-4


@pytest.mark.slow
def test_losses_and_training_reduces_loss():
    torch.manual_seed(0)
    cfg = _cfg(p_uncond=0.0, p_drop_text=0.0, p_drop_label=0.0, p_drop_correct=0.0, p_drop_dataset=0.0)
    model = D.DiffusionModel(cfg, *_stats(cfg))
    batch = _batch()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        first = model.losses(batch, g)
    assert set(first) == {"loss", "x0", "vel", "bone", "foot", "motion"}
    assert all(torch.isfinite(v) for v in first.values())
    opt = torch.optim.AdamW(model.net.parameters(), lr=3e-3)
    for _ in range(60):
        logs = model.train_step(batch, {"main": opt})
    assert set(logs) >= {"loss", "x0", "grad_norm"}
    with torch.no_grad():
        after = model.losses(batch, torch.Generator().manual_seed(0))
    assert float(after["loss"]) < 0.7 * float(first["loss"])
    # EMA weights moved away from the initial (zero) output layer, towards the trained ones
    assert float(model.ema.out.weight.abs().sum()) > 0


@pytest.mark.slow
def test_checkpoint_roundtrip_strict(trained, tmp_path):
    path, model = trained
    meta = read_metadata(path)
    assert meta["kind"] == "diffusion" and meta["text_encoder"] == "fake" and json.loads(meta["text_dim"]) == 8
    g = D_G.load_generator(path, encoder=FakeEncoder())
    assert g.cfg == model.cfg                                             # config rebuilds the model
    for k, v in model.ema.state_dict().items():
        assert torch.equal(g.net.state_dict()[k], v)
    assert torch.equal(g.mean, model.mean) and torch.equal(g.std, model.std)
    # strict: a missing tensor, or a config that does not match the tensors, is a clear CheckpointError
    tensors, meta = load_checkpoint(path)
    broken = dict(tensors)
    broken.pop(next(k for k in broken if k.startswith("net.encoder")))
    save_checkpoint(tmp_path / "missing.safetensors", broken, "diffusion", model.cfg, {"text_encoder": "fake"})
    with pytest.raises(CheckpointError, match="does not match"):
        D_G.load_generator(tmp_path / "missing.safetensors", encoder=FakeEncoder())
    save_checkpoint(tmp_path / "wide.safetensors", tensors, "diffusion", replace(model.cfg, d_model=48),
                    {"text_encoder": "fake"})
    with pytest.raises(CheckpointError):
        D_G.load_generator(tmp_path / "wide.safetensors", encoder=FakeEncoder())
    nostats = {k: v for k, v in tensors.items() if not k.startswith("stats.")}
    save_checkpoint(tmp_path / "nostats.safetensors", nostats, "diffusion", model.cfg, {"text_encoder": "fake"})
    with pytest.raises(CheckpointError, match="normalisation"):
        D_G.load_generator(tmp_path / "nostats.safetensors", encoder=FakeEncoder())
    save_checkpoint(tmp_path / "vae.safetensors", tensors, "vae", model.cfg, {})
    with pytest.raises(CheckpointError, match="vae"):
        D_G.load_generator(tmp_path / "vae.safetensors")


def test_encoder_mismatch_is_a_clear_error(trained):
    path, _ = trained
    with pytest.raises(CheckpointError, match="trained with text encoder 'fake'"):
        D_G.load_generator(path, encoder=FakeEncoder(name="minilm", dim=384))
    with pytest.raises(UserError):                                        # CheckpointError is a UserError
        D_G.load_generator(path, encoder=FakeEncoder(name="fake", dim=16))


@pytest.mark.slow
def test_generation_seeds_and_conditions(gen):
    r = Request(text="raise both arms", label="ui-prmd:m07", correct=True, frames=50, steps=5, num=3, seed=11)
    a = gen.generate(r)
    assert len(a) == 3 and all(m.joints.shape == (50, 15, 3) and m.fps == DEFAULT_FPS for m in a)
    assert all(np.isfinite(m.joints).all() for m in a)
    b = gen.generate(r)
    assert all(np.array_equal(x.joints, y.joints) for x, y in zip(a, b)), "same seed -> identical"
    c = gen.generate(replace(r, seed=12))
    assert not np.allclose(a[0].joints, c[0].joints), "different seed -> different"
    assert not np.allclose(a[0].joints, a[1].joints), "the samples of one request differ"
    assert a[0].labels.text == "raise both arms" and a[0].labels.extra["seed"] == 11
    # the conditions change the output (same seed)
    d = gen.generate(replace(r, text="deep squat"))
    assert not np.allclose(a[0].joints, d[0].joints)
    # exercise given by its short id, unconditional, DDPM, guidance 0 and 1
    assert gen.generate(Request(label="m01", frames=16, steps=3))[0].joints.shape == (16, 15, 3)
    for req in (Request(frames=24, steps=4), Request(text="walk", frames=24, steps=10, sampler="ddpm"),
                Request(text="walk", frames=24, steps=4, guidance=0.0), Request(text="walk", frames=24, steps=4, guidance=1.0)):
        m = gen.generate(req)[0]
        assert m.joints.shape == (24, 15, 3) and np.isfinite(m.joints).all()


def test_exercise_without_text_uses_its_description(gen):
    """An exercise chosen without text conditions on the exercise's canonical caption too (as in training);
    a text, when given, is used as it is; no exercise and no text stays unconditional."""
    from motionviz.data.captions import captions

    assert gen.condition_text(Request(label="m07")) == captions("ui-prmd:m07")[0]
    wrong = gen.condition_text(Request(label="ui-prmd:m07", correct=False))
    assert captions("ui-prmd:m07")[0] in wrong and wrong != captions("ui-prmd:m07")[0]
    assert gen.condition_text(Request(text="walk", label="m07")) == "walk"
    assert gen.condition_text(Request()) == ""
    a = gen.generate(Request(label="m07", frames=16, steps=3, seed=2))[0]
    b = gen.generate(Request(label="m07", text=captions("ui-prmd:m07")[0], frames=16, steps=3, seed=2))[0]
    assert np.array_equal(a.joints, b.joints) and a.labels.extra["condition_text"] == captions("ui-prmd:m07")[0]


def test_unconditional_ignores_guidance(gen):
    a = gen.generate(Request(frames=24, steps=4, guidance=1.0, seed=3))[0]
    b = gen.generate(Request(frames=24, steps=4, guidance=7.0, seed=3))[0]
    assert np.array_equal(a.joints, b.joints)


def test_bad_requests(gen):
    with pytest.raises(UserError, match="unknown exercise"):
        gen.generate(Request(label="kimore:ex9", frames=16, steps=2))
    with pytest.raises(UserError):
        gen.generate(Request(frames=16, steps=0))
    src = gen.generate(Request(frames=16, steps=2))[0]
    with pytest.raises(UserError, match="nothing to keep"):
        gen.generate(Request(source=src, keep=np.zeros((16, 15), bool), steps=2))
    with pytest.raises(UserError, match="fps"):
        fast = src.resample(30.0)
        gen.generate(Request(source=fast, keep=np.ones((fast.num_frames, 15), bool), steps=2))


def test_long_generation_is_continuous(gen):
    """Long motions are several generated repetitions, each starting at the previous one's last pose."""
    frames = int(3 * gen.cfg.max_seconds * DEFAULT_FPS) + 1
    m = gen.generate(Request(text="walk", frames=frames, steps=4, seed=2))[0]
    assert m.joints.shape == (frames, 15, 3) and np.isfinite(m.joints).all()
    # every repetition is placed where the previous one ended (a repetition that restarted at the origin
    # would jump back by the distance walked: ~0.5 m here)
    step = np.linalg.norm(np.diff(m.joints[:, COMMON.root, [0, 2]], axis=0), axis=-1)
    assert step.max() < 0.25


def test_inbetweening_keeps_frames_exactly(gen):
    src = gen.generate(Request(text="walk", frames=40, steps=4, seed=5))[0]
    keep = np.zeros((40, 15), bool)
    keep[:6] = True
    keep[-6:] = True
    out = gen.generate(Request(text="deep squat", source=src, keep=keep, steps=6, seed=9, num=2))
    for m in out:
        assert np.array_equal(m.joints[keep], src.joints[keep])
        assert not np.allclose(m.joints[~keep], src.joints[~keep])


def test_body_part_editing_keeps_joints_exactly(gen):
    src = gen.generate(Request(text="walk", frames=150, steps=4, seed=6))[0]
    legs = COMMON.indices(["left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle"])
    keep = np.zeros(src.joints.shape[:2], bool)
    keep[:, legs] = True
    m = gen.generate(Request(text="wave both hands", source=src, keep=keep, steps=6, seed=1, sampler="ddpm"))[0]
    assert np.array_equal(m.joints[:, legs], src.joints[:, legs])
    assert np.array_equal(m.joints[:, COMMON.root], src.joints[:, COMMON.root])   # the pelvis stays with the legs
    arms = COMMON.indices(["left_wrist", "right_wrist"])
    assert not np.allclose(m.joints[:, arms], src.joints[:, arms])


@pytest.mark.slow
def test_bench_quick(trained):
    out = D_E.bench(True, trained[0], encoder=FakeEncoder())
    rows = out["timings"]
    assert {(r["steps"], r["batch"]) for r in rows} == {(20, 1), (20, 4), (10, 1), (10, 4)}
    assert all(r["seconds_per_sample"] > 0 for r in rows)
    assert out["seconds_per_sample_20_steps"] == next(r["seconds_per_sample"] for r in rows
                                                      if r["steps"] == 20 and r["batch"] == 1)


@pytest.mark.slow
def test_build_training_on_real_data(data_root, tmp_path):
    """The TRAINERS entry on a tiny slice of the real training split, through the shared loop."""
    from motionviz.training.loop import TrainOptions, train

    opts = TrainOptions(name="diffusion", tiny=True, datasets=["ui-prmd"], data_root=str(data_root),
                        overrides={"layers": 1})
    out = tmp_path / "diffusion.safetensors"
    summary = train(opts, out, steps=3, command="pytest", runs_dir=tmp_path / "runs", progress_bar=False)
    assert summary["steps"] == 3 and out.is_file()
    meta = read_metadata(out)
    assert meta["text_encoder"] == "minilm" and json.loads(meta["text_dim"]) == 384
    assert json.loads(meta["data"])[0]["dataset"] == "ui-prmd" and json.loads(meta["data"])[0]["licence"]
    assert json.loads(meta["steps"]) == 3 and meta["command"] == "pytest"
    cfg = json.loads(meta["config"])
    assert cfg["layers"] == 1 and any(l.startswith("ui-prmd:") for l in cfg["labels"])
    g = D_G.load_generator(out)
    m = g.generate(Request(text="deep squat", label="ui-prmd:m01", correct=False, frames=20, steps=2))[0]
    assert m.joints.shape == (20, 15, 3) and np.isfinite(m.joints).all()


@pytest.mark.slow
def test_torchrun_two_processes_on_real_data(data_root, tmp_path):
    """The diffusion trainer unchanged under ``torchrun --nproc_per_node 2`` (gloo, CPU): both ranks build
    the same model, train on their shard, rank 0 writes one loadable checkpoint."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp.safetensors"
    env = dict(os.environ, MOTIONVIZ_DATA=str(data_root), OMP_NUM_THREADS="1",
               PYTHONPATH=str(Path(D.__file__).resolve().parents[2]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "motionviz", "train", "diffusion", "--tiny", "--steps", "4", "--datasets", "ui-prmd",
           "--out", str(out), "--runs-dir", str(tmp_path / "runs"), "--no-progress"]
    r = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    meta = read_metadata(out)
    assert meta["world_size"] == "2" and json.loads(meta["steps"]) == 4
    g = D_G.load_generator(out)
    assert g.generate(Request(text="deep squat", frames=16, steps=2))[0].joints.shape == (16, 15, 3)


def test_training_repetitions_are_time_normalised_and_weighted():
    """Recordings become time-normalised repetitions (KIMORE-like multi-repetition recordings are cut at
    their rests); each dataset/label gets its square-root share of the sampling weight (before the shipped
    recipe's dataset shares and execution balance, switched off here)."""
    cfg = replace(_cfg(), dataset_shares="", balance_correct=False)
    T = 200
    t = np.arange(T, dtype=np.float32)
    multi = np.repeat(arms_down_pose()[None], T, axis=0).copy()
    arms = COMMON.indices(["left_elbow", "left_wrist", "right_elbow", "right_wrist"])
    multi[:, arms, 1] += (0.3 * (1 - np.cos(2 * np.pi * t / 40)))[:, None]       # 5 repetitions of 2 s
    ms = [Motion(multi, COMMON, DEFAULT_FPS, MotionLabels(dataset="kimore", label="ui-prmd:m01"))]
    ms += [Motion(_walk(40, s), COMMON, DEFAULT_FPS, MotionLabels(dataset="ui-prmd", label="ui-prmd:m07"))
           for s in range(9)]
    r = D_T.repetition_set(ms, [[0]] * len(ms), list(LABELS), ["bandai", "ui-prmd"], cfg)
    assert r.joints.shape[1:] == (cfg.rep_frames, 15, 3)
    assert (r.label == 1).sum() == 5                                             # the 5 repetitions
    assert np.allclose(r.duration[r.label == 1], 39 / DEFAULT_FPS, atol=0.2)
    assert (r.label == 2).sum() == 9 and np.allclose(r.duration[r.label == 2], 39 / DEFAULT_FPS)
    w = r.weight / r.weight.sum()
    assert np.isclose(w[r.label == 1].sum() / w[r.label == 2].sum(), np.sqrt(5) / np.sqrt(9), rtol=1e-6)
    it = D_T.RepetitionBatches(r, torch.zeros(1, 8), cfg, 4, {"vel_scale": 1.0}, seed=0)
    b = next(it)
    assert b["joints"].shape == (4, cfg.rep_frames, 15, 3) and b["duration"].shape == (4,)


def test_motion_numbers_known_answers():
    still = np.repeat(arms_down_pose()[None], 30, axis=0)
    n = D_E.motion_numbers(still)
    assert n["speed"] == 0 and n["range"] == 0 and n["bone_cv"] < 1e-6 and n["pelvis_drop"] == 0
    assert n["wrist_above_shoulder"] == pytest.approx(0.9 - 1.4, abs=1e-5)
    squat = still.copy()
    squat[10:20, :, 1] -= 0.3                                              # whole body 30 cm lower
    assert D_E.motion_numbers(squat)["pelvis_drop"] == pytest.approx(0.3, abs=1e-5)
    stretched = still.copy()
    stretched[::2, COMMON.indices(["left_wrist"]), 0] += 0.1               # a bone changing length
    assert D_E.motion_numbers(stretched)["bone_cv"] > 0.002


def test_sanity_report(trained):
    out = D_E.sanity(trained[0], encoder=FakeEncoder(), num=2, frames=24, steps=2,
                   prompts={"a": "raise arms", "b": "squat"})
    assert set(out["prompts"]) == {"a", "b"} and "a|b" in out["between_prompt_distance"]
    assert all(0 <= r["frozen_fraction"] <= 1 for r in out["prompts"].values())


def test_each_sample_has_its_own_seed(gen):
    """Sample i of a batch asked with seed s is the single sample asked with seed s + i."""
    batch = gen.generate(Request(text="walk", frames=60, steps=4, seed=11, num=3))
    for i, m in enumerate(batch):
        alone = gen.generate(Request(text="walk", frames=60, steps=4, seed=11 + i, num=1))[0]
        assert np.allclose(m.joints, alone.joints, atol=1e-4)
        assert m.labels.extra["seed"] == 11 + i
    assert not np.allclose(batch[0].joints, batch[1].joints)


def test_adaln_layers_start_as_the_identity_and_follow_the_condition():
    """adaLN-Zero: with the modulation at zero a layer passes its tokens through unchanged; once trained, the
    same tokens come out differently for different conditions (the condition scales and shifts every
    layer's normalised input), and padded tokens do not change the others."""
    layer = D.AdaLNLayer(16, 2, 32, 0.0).eval()
    h, c = torch.randn(3, 5, 16), torch.randn(3, 16)
    with torch.no_grad():
        assert torch.equal(layer(h, c), h)
        torch.nn.init.normal_(layer.mod.weight, std=0.3)
        a = layer(h, c)
        b = layer(h, c.flip(0))
        assert not torch.allclose(a, h) and not torch.allclose(a[0], b[0])
        pad = torch.zeros(3, 5, dtype=torch.bool)
        pad[:, -1] = True
        h2 = h.clone()
        h2[:, -1] = 100.0                                                  # a padded token: ignored
        assert torch.allclose(layer(h, c, pad)[:, :-1], layer(h2, c, pad)[:, :-1], atol=1e-5)


def test_pair_embedding_is_one_row_per_exercise_and_execution():
    """The (exercise, correct/incorrect/unknown) pair embedding: changing the row of (exercise 2,
    incorrect) changes the condition of exactly that pair."""
    net = D.Denoiser(_cfg()).eval()
    label = torch.tensor([2, 2, 2, 1, 0])
    correct = torch.tensor([2, 1, 0, 2, 2])
    args = (torch.zeros(5, dtype=torch.long), None, torch.zeros(5, dtype=torch.bool), label, correct,
            torch.zeros(5, dtype=torch.long))
    with torch.no_grad():
        before = net.condition(*args)
        net.pair_emb.weight[3 * 2 + 2] += 1.0
        changed = (net.condition(*args) - before).abs().sum(-1) > 0
    assert changed.tolist() == [True, False, False, False, False]


def test_old_architecture_checkpoints_are_a_one_line_error(trained, tmp_path):
    """Only the shipped architecture (plain x0 prediction, adaLN conditioning with the pair embedding) is
    built: a checkpoint written before the ``conditioning`` field existed (its tensors those of the
    added-condition network) or one asking for another conditioning or parameterisation is a one-line
    CheckpointError, not a traceback."""
    path, model = trained
    _, meta = load_checkpoint(path)
    stored = json.loads(meta["config"])
    assert stored["conditioning"] == "adaln" and stored["pair_condition"] is True
    tensors = {k: v for k, v in model.export().items() if ".mod." not in k and "pair_emb" not in k}
    old = {k: v for k, v in stored.items() if k not in ("conditioning", "pair_condition")}
    save_checkpoint(tmp_path / "old.safetensors", tensors, "diffusion", old, {"text_encoder": "fake"})
    with pytest.raises(CheckpointError, match="does not match its config") as e:
        D_G.load_generator(tmp_path / "old.safetensors", encoder=FakeEncoder())
    assert "\n" not in str(e.value)
    for bad in ({"conditioning": "add"}, {"conditioning": "film"}, {"pair_condition": False},
                {"parameterisation": "x0-skip"}, {"parameterisation": "eps"}, {"geo_power": 1.0},
                {"x0_weight_cap": 5.0}):
        save_checkpoint(tmp_path / "bad.safetensors", model.export(), "diffusion", dict(stored, **bad),
                        {"text_encoder": "fake"})
        with pytest.raises(CheckpointError, match=next(iter(bad))) as e:
            D_G.load_generator(tmp_path / "bad.safetensors", encoder=FakeEncoder())
        assert "\n" not in str(e.value)
    for bad_cfg in (replace(model.cfg, conditioning="add"), replace(model.cfg, parameterisation="x0-gain")):
        with pytest.raises(CheckpointError):
            D.Denoiser(bad_cfg)

def test_motion_loss_is_relative_to_each_repetitions_own_motion():
    """A frozen prediction (each repetition's mean pose) costs ~1 whatever the size of the movement; an
    exact one 0; a constant offset (the same motion elsewhere) 0; half the movement 1/4."""
    t = torch.linspace(0, 2 * math.pi, 16)
    small = torch.zeros(1, 16, 7)
    small[0, :, 2] = 0.1 * torch.sin(t)                       # a small movement of one feature
    big = small * 20                                           # the same movement 20x larger
    x0 = torch.cat([small, big])                              # (2, 16, 7)
    valid = torch.ones(2, 16, dtype=torch.bool)
    frozen = x0.mean(1, keepdim=True).expand_as(x0)
    per = lambda pred: [float(motion_loss(pred[i:i + 1], x0[i:i + 1], valid[i:i + 1], 1e-9)) for i in range(2)]  # noqa: E731
    assert per(frozen) == pytest.approx([1.0, 1.0], rel=1e-4)
    assert per(x0) == pytest.approx([0.0, 0.0], abs=1e-8)
    assert per(x0 + 3.0) == pytest.approx([0.0, 0.0], abs=1e-6)
    half = frozen + 0.5 * (x0 - frozen)
    assert per(half) == pytest.approx([0.25, 0.25], rel=1e-4)
    # the floor keeps a motionless repetition from dominating
    still = torch.zeros(1, 16, 7)
    assert float(motion_loss(still + 0.01 * torch.randn(1, 16, 7), still, valid[:1], 0.05)) < 0.01


def test_reweight_dataset_shares_and_balanced_executions():
    """dataset_shares scales each named dataset to its share (the rest keep their relative weights in what
    is left); balance_correct gives every correctness state of an exercise an equal share of it."""
    dsn = np.array(["a"] * 4 + ["b"] * 12 + ["c"] * 2, dtype=object)
    lab = np.array(["a:1"] * 4 + ["b:1"] * 12 + ["c:1", "c:2"], dtype=object)
    correct = np.array([0] * 4 + [1] * 3 + [2] * 9 + [0, 0])
    w = np.ones(len(dsn))
    cfg = replace(_cfg(), dataset_shares="b=0.5,a=0.25", balance_correct=True)
    out = D_T.reweight(w, dsn, lab, correct, cfg)
    p = out / out.sum()
    assert np.isclose(p[dsn == "b"].sum(), 0.5) and np.isclose(p[dsn == "a"].sum(), 0.25)
    assert np.isclose(p[dsn == "c"].sum(), 0.25) and np.isclose(p[lab == "c:1"].sum(), p[lab == "c:2"].sum())
    b = dsn == "b"
    assert np.isclose(p[b & (correct == 1)].sum(), p[b & (correct == 2)].sum())     # 3 vs 9 recordings
    assert np.allclose(p[b & (correct == 1)], p[b & (correct == 1)][0])              # uniform within a state
    # the defaults of tiny configs leave the weights alone; bad shares are one-line errors
    assert np.allclose(D_T.reweight(w, dsn, lab, correct, replace(cfg, dataset_shares="", balance_correct=False)), w)
    for bad in ("b=-1", "b", "b=x", "a=0.6,b=0.5"):
        with pytest.raises(UserError):
            D_T.reweight(w, dsn, lab, correct, replace(cfg, dataset_shares=bad))


def test_balanced_executions_only_where_the_condition_is_shown():
    """balance_correct: the rows that show their correct/incorrect condition are drawn balanced (3 correct
    vs 9 incorrect recordings: half and half), the rows that hide it (p_drop_correct of them, marked
    ``correct_drop``) keep the recordings' mix (a quarter correct), and the model uses the batch's drop."""
    cfg = replace(_cfg(), balance_correct=True, p_drop_correct=0.3)
    still = np.repeat(arms_down_pose()[None], 30, axis=0)
    ms = [Motion(still, COMMON, DEFAULT_FPS, MotionLabels(dataset="ui-prmd", label="ui-prmd:m01", correct=i < 3))
          for i in range(12)]
    r = D_T.repetition_set(ms, [[0]] * len(ms), list(LABELS), ["ui-prmd"], cfg)
    assert r.weight_shown is not None and np.allclose(r.weight, r.weight[0])
    half = r.select(np.arange(0, 12, 2))                      # a rank's share keeps both weights
    assert np.array_equal(half.weight_shown, r.weight_shown[::2]) and np.array_equal(half.weight, r.weight[::2])
    consts = {"vel_scale": 1.0, "bone_scale": 1.0, "contact_height": 0.12, "contact_speed": 0.02}
    it = D_T.RepetitionBatches(r, torch.zeros(1, cfg.text_dim), cfg, 4000, consts, seed=0)
    b = next(it)
    drop, correct = b["correct_drop"].numpy(), b["correct"].numpy()
    assert abs(drop.mean() - 0.3) < 0.03
    assert abs((correct[~drop] == 1).mean() - 0.5) < 0.04
    assert abs((correct[drop] == 1).mean() - 0.25) < 0.05
    plain = D_T.repetition_set(ms, [[0]] * len(ms), list(LABELS), ["ui-prmd"], replace(cfg, balance_correct=False))
    assert plain.weight_shown is None and "correct_drop" not in next(
        D_T.RepetitionBatches(plain, torch.zeros(1, 8), cfg, 8, {"vel_scale": 1.0}, seed=0))
    # the model hides exactly the rows the batch says (the rest show theirs unless the whole row is dropped)
    F = 3 * cfg.num_joints + 1
    model = D.DiffusionModel(replace(cfg, p_uncond=0.0), torch.zeros(F), torch.ones(F))
    seen = {}
    real_condition = model.net.condition

    def spy(t, text, text_on, label, correct, dataset):
        seen["correct"] = correct.clone()
        return real_condition(t, text, text_on, label, correct, dataset)

    model.net.condition = spy
    small = {k: v[:64] if v.dim() else v for k, v in b.items()}
    model.losses(small, torch.Generator().manual_seed(0))
    assert torch.equal(seen["correct"] == 0, small["correct_drop"])
