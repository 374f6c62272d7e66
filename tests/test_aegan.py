"""AE-GAN model tests: grid layout from the skeleton, critic penalty, training step, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from motionviz.core import representation_torch as A_RT
from motionviz.core.errors import CheckpointError, UserError
from motionviz.core.skeleton import BLAZEPOSE33, COCO17, COMMON, SMPL22
from motionviz.generators import aegan as A_G
from motionviz.generators import inpaint as A_G_G
from motionviz.models import aegan as A
from motionviz.training import aegan as A_T

torch.set_num_threads(1)

TINY = A.Config(frames=8, latent=4, channels=(4, 8), batch_size=8)


def _folded_neighbours(sk, rows):
    node = {}
    for h, (a, b) in enumerate(rows):
        node[a] = node[b] = h
    adj = {h: set() for h in range(len(rows))}
    for p, c in sk.bones:
        if node[p] != node[c]:
            adj[node[p]].add(node[c])
            adj[node[c]].add(node[p])
    return adj


def test_grid_pairs_derived_from_skeleton():
    grid = A.BodyGrid(COMMON)
    rows = grid.rows
    # every left/right pair exactly once, left joint in the first half; central joints duplicated
    pair_rows = [r for r in rows if r[0] != r[1]]
    assert sorted(pair_rows) == sorted(COMMON.lr_pairs)
    for a, b in pair_rows:
        assert COMMON.joints[a].startswith("left_") and COMMON.joints[b] == COMMON.joints[a].replace("left", "right")
    central = sorted(a for a, b in rows if a == b)
    assert central == sorted(COMMON.central) == sorted(COMMON.indices(["pelvis", "spine", "neck"]))
    assert grid.num_rows == 9
    # the common skeleton folds into one chain: consecutive rows are joined by a bone
    adj = _folded_neighbours(COMMON, rows)
    for h in range(len(rows) - 1):
        assert h + 1 in adj[h], (COMMON.joints[rows[h][0]], COMMON.joints[rows[h + 1][0]])
    names = [COMMON.joints[a] for a, _ in rows]
    assert set(names[:3]) in ({"left_wrist", "left_elbow", "left_shoulder"}, {"left_ankle", "left_knee", "left_hip"})


@pytest.mark.parametrize("sk", [COMMON, COCO17, BLAZEPOSE33, SMPL22])
def test_grid_round_trip_any_skeleton(sk):
    grid = A.BodyGrid(sk)
    assert grid.num_rows == len(sk.lr_pairs) + len(sk.central)
    for D in (2, 3):
        x = torch.randn(2, 5, len(sk), D)
        g = grid.to_grid(x)
        assert g.shape == (2, 2 * D, 5, grid.num_rows)
        assert torch.allclose(grid.from_grid(g), x, atol=1e-6)


def test_central_duplicates_are_averaged():
    grid = A.BodyGrid(COMMON)
    D = 3
    g = torch.zeros(1, 2 * D, 4, grid.num_rows)
    h = [i for i, (a, b) in enumerate(grid.rows) if a == b == COMMON.index("spine")][0]
    g[0, :D, :, h] = 1.0      # left-half copy of the spine
    g[0, D:, :, h] = 3.0      # right-half copy
    hp = [i for i, (a, b) in enumerate(grid.rows) if a == COMMON.index("left_knee")][0]
    g[0, :D, :, hp] = 5.0     # left knee
    g[0, D:, :, hp] = 7.0     # right knee
    x = grid.from_grid(g)
    assert torch.allclose(x[0, :, COMMON.index("spine")], torch.full((4, D), 2.0))
    assert torch.allclose(x[0, :, COMMON.index("left_knee")], torch.full((4, D), 5.0))
    assert torch.allclose(x[0, :, COMMON.index("right_knee")], torch.full((4, D), 7.0))
    # and the generator's output goes through this averaging
    net = A.AEGANNet(TINY, 3)
    y = net.decode(torch.zeros(2, TINY.latent))
    assert y.shape == (2, TINY.frames, 15, 3)


def test_gradient_penalty_finite_and_known_for_linear_critic():
    torch.manual_seed(0)
    net = A.AEGANNet(TINY, 3)
    g = torch.Generator().manual_seed(0)
    real = torch.randn(4, 8, 15, 3)
    fake = torch.randn(4, 8, 15, 3)
    gp = A.gradient_penalty(net, real, fake, g)
    assert gp.ndim == 0 and torch.isfinite(gp) and gp >= 0
    gp.backward()
    assert all(torch.isfinite(p.grad).all() for p in net.critic.parameters() if p.grad is not None)
    # known answer: a critic that is identically 0 has zero gradient -> penalty (0 - 1)^2 = 1
    for p in net.critic.parameters():
        torch.nn.init.zeros_(p)
    gp0 = A.gradient_penalty(net, real, fake, g)
    assert gp0.item() == pytest.approx(1.0)


def test_velocities_and_losses_known_answer():
    x = torch.zeros(1, 3, 2, 3)
    x[0, :, 0, 0] = torch.tensor([0.0, 1.0, 3.0])
    v = A.velocities(x)
    assert v[0, :, 0, 0].tolist() == [0.0, 1.0, 2.0]
    y = x.clone()
    y[..., 1] += 2.0  # constant offset: position error 2, speed error 0
    assert A.mpjpe(y, x).item() == pytest.approx(2.0)
    assert A.mpjse(y, x).item() == pytest.approx(0.0)


def test_canonical_transform_removes_yaw_and_translation():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 8, 15, 3, generator=g)
    mask = torch.ones(1, 8, 15, dtype=torch.bool)
    c0, r0 = A_RT.canonical_transform(x, mask, COMMON)
    base = A_RT.apply_transform(x, c0, r0)
    ang = 0.7
    R = torch.tensor([[math.cos(ang), 0, math.sin(ang)], [0, 1, 0], [-math.sin(ang), 0, math.cos(ang)]])
    moved = x @ R.T + torch.tensor([1.0, 0.2, -3.0])
    c1, r1 = A_RT.canonical_transform(moved, mask, COMMON)
    assert torch.allclose(A_RT.apply_transform(moved, c1, r1), base, atol=1e-4)
    assert torch.allclose(A_RT.invert_transform(base, c1, r1), moved, atol=1e-4)
    # in canonical form the left side points to +X
    L = [a for a, _ in COMMON.lr_pairs]
    Rj = [b for _, b in COMMON.lr_pairs]
    across = (base[0, :, L] - base[0, :, Rj]).sum((0, 1))
    assert across[0] > 0 and abs(across[2]) < 1e-4


def test_corruptor_is_seeded_and_keeps_something():
    c = A.Corruptor(A.Config(), COMMON)
    m1 = c.mask(64, 32, torch.Generator().manual_seed(3))
    m2 = c.mask(64, 32, torch.Generator().manual_seed(3))
    assert torch.equal(m1, m2)
    assert m1.shape == (64, 32, 15) and m1.flatten(1).any(1).all()
    frac = 1 - m1.float().mean().item()
    assert 0.05 < frac < 0.6


def test_random_camera_projection_shapes_and_frontal_view():
    x = torch.zeros(1, 2, 15, 3)
    x[..., COMMON.index("left_wrist"), 0] = 0.5  # subject's left at +X
    cfg = A.Config(cam_elevation_deg=(0.0, 0.0))
    g = torch.Generator().manual_seed(0)
    p = A.project_random_cameras(x.expand(64, -1, -1, -1), cfg, g)
    assert p.shape == (64, 2, 15, 2) and torch.isfinite(p).all()


@pytest.mark.slow
@pytest.mark.parametrize("variants", [(3,), (3, 2)])
def test_train_step_runs_and_returns_losses(variants):
    torch.manual_seed(0)
    cfg = A.Config(frames=8, latent=4, channels=(4, 8), batch_size=8, variants=variants)
    model = A.build_model(cfg)
    opts = A_T.make_optimizers(model)
    g = torch.Generator().manual_seed(0)
    batch = torch.randn(8, 8, 15, 3) * 0.3
    before = [p.detach().clone() for p in model.parameters()]
    logs = A.train_step(model, batch, opts, g)
    for d in variants:
        for k in ("critic", "gp", "mpjpe_m", "mpjse_m", "latent", "adv_mixed", "loss"):
            assert math.isfinite(logs[f"d{d}/{k}"]), k
    assert math.isfinite(logs["loss"])
    changed = sum(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert changed > len(before) // 2


@pytest.mark.slow
def test_reconstruction_improves_with_training():
    torch.manual_seed(0)
    model = A.build_model(A.Config(frames=8, latent=4, channels=(4, 8), batch_size=8, lr=3e-3, lr_critic=3e-3))
    opts = A_T.make_optimizers(model)
    g = torch.Generator().manual_seed(0)
    pose = torch.randn(15, 3) * 0.3
    batch = pose.expand(8, 8, 15, 3) + 0.01 * torch.randn(8, 8, 15, 3, generator=g)
    first = A.train_step(model, batch, opts, g)["d3/mpjpe_m"]
    for _ in range(60):
        last = A.train_step(model, batch, opts, g)["d3/mpjpe_m"]
    assert last < 0.5 * first


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = A.build_model(TINY)
    path = A_T.save(model, tmp_path / "aegan.safetensors", {"steps": 0})
    loaded, meta = A_G_G.load(path)
    assert meta["kind"] == "aegan" and loaded.cfg == TINY
    z = torch.randn(3, TINY.latent)
    assert torch.allclose(loaded.net(3).decode(z), model.net(3).decode(z))
    with pytest.raises(UserError):
        loaded.net(2)  # no 2D variant in this checkpoint
    with pytest.raises(CheckpointError):
        A_G_G.load(tmp_path / "missing.safetensors")
    gen = A_G.load_generator(path)
    assert gen.name == "aegan" and "inpaint" in gen.tasks and gen.skeleton is COMMON


def test_window_sampler_skips_nan_and_mirrors():
    a = np.random.default_rng(0).normal(size=(20, 15, 3)).astype(np.float32)
    a[5] = np.nan
    s = A_T.WindowSampler([a], frames=8)
    assert len(s) == 20 - 8 + 1 - 6  # windows starting at 0..12 except those covering frame 5
    x = s.sample(16, torch.Generator().manual_seed(0))
    assert x.shape == (16, 8, 15, 3) and torch.isfinite(x).all()


def test_merge_checkpoints_and_old_checkpoint_without_critic_ref_is_an_error(tmp_path):
    torch.manual_seed(0)
    m3 = A.build_model(TINY)
    m2 = A.build_model(A.Config(frames=8, latent=4, channels=(4, 8), batch_size=8, variants=(2,)))
    p3 = A_T.save(m3, tmp_path / "a3.safetensors", {"steps": 3, "data": [{"dataset": "irds", "licence": "x"}]})
    p2 = A_T.save(m2, tmp_path / "a2.safetensors", {"steps": 2})
    out = A_T.merge_checkpoints([p3, p2], tmp_path / "both.safetensors")
    both, meta = A_G_G.load(out)
    assert both.cfg.variants == (3, 2) and meta["d3/steps"] == "3" and meta["d2/steps"] == "2" and "irds" in meta["data"]
    z = torch.randn(2, 4)
    assert torch.allclose(both.net(2).decode(z), m2.net(2).decode(z))
    assert torch.allclose(both.net(3).decode(z), m3.net(3).decode(z))
    with pytest.raises(UserError):
        A_T.merge_checkpoints([p3, p3], tmp_path / "bad.safetensors")
    # a checkpoint written before critic calibration existed (no critic_ref; none is shipped) is a
    # one-line CheckpointError, not a traceback
    from motionviz.core.checkpoint import save_checkpoint
    sd = {k: v for k, v in m3.state_dict().items() if not k.endswith("critic_ref")}
    old = save_checkpoint(tmp_path / "old.safetensors", sd, A.KIND, TINY, {})
    with pytest.raises(CheckpointError, match="does not match its AE-GAN config") as e:
        A_G_G.load(old)
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_build_training_tiny_runs_through_the_train_loop(tmp_path, data_root):
    from motionviz.training.loop import TrainOptions, train

    opts = TrainOptions(name="aegan", tiny=True, data_root=str(data_root))
    out = tmp_path / "aegan.safetensors"
    summary = train(opts, out, steps=3, progress_bar=False, runs_dir=tmp_path / "runs")
    assert summary["steps"] == 3 and math.isfinite(summary["losses"]["d3/mpjpe_m"])
    model, meta = A_G_G.load(out)
    assert model.cfg.datasets == ("irds",) and "irds" in meta["data"] and "licence" in meta["data"]
    net = model.net(3)
    assert torch.isfinite(net.critic_ref).all()                      # calibrated at export
    assert 0.05 < float(net.bone_ref.mean()) < 0.6                    # metres per bone
