"""Inpainting with the AE-GAN: Procrustes, windows, masks, baseline, corruption, the inpaint loop, the
CLI verbs, the evaluation, the benchmark section and the app tab (tiny untrained checkpoints)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from motionviz.core import representation as I_R
from motionviz.core.errors import UserError
from motionviz.core.skeleton import COMMON
from motionviz.evaluation import inpainting as I_E
from motionviz.generators import aegan as A_G
from motionviz.generators import inpaint as I
from motionviz.models import aegan as A
from motionviz.training import aegan as A_T

torch.set_num_threads(1)

TINY = A.Config(frames=8, latent=4, channels=(4, 8), batch_size=8)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    model = A.build_model(TINY)
    model.eval()
    return model


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory, tiny_model):
    d = tmp_path_factory.mktemp("ckpt")
    A_T.save(tiny_model, d / "aegan.safetensors", {"steps": 0})
    return d


def _walk(T=40, seed=0):
    """A smooth synthetic 'motion' (T, 15, 3) in metres."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 0.3, size=(1, 15, 3))
    t = np.arange(T)[:, None, None] / 20.0
    return (base + 0.1 * np.sin(2 * np.pi * 0.5 * t + base)).astype(np.float32)


# ---- Procrustes --------------------------------------------------------------------------------
def test_procrustes_recovers_similarity_and_is_differentiable():
    g = torch.Generator().manual_seed(0)
    Y = torch.randn(2, 20, 3, generator=g)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=g))
    R = q * torch.sign(torch.linalg.det(q))  # proper rotation
    X = 1.7 * Y @ R.T + torch.tensor([0.3, -1.0, 2.0])
    Yr = Y.clone().requires_grad_(True)
    out, p = I.procrustes(Yr, X)
    assert torch.allclose(out, X, atol=1e-4)
    assert torch.allclose(p["s"], torch.full((2,), 1.7), atol=1e-4)
    out.sum().backward()
    assert torch.isfinite(Yr.grad).all()
    # weights: points with weight 0 do not influence the fit
    w = torch.ones(2, 20)
    Xbad = X.clone()
    Xbad[:, :5] += 10.0
    w[:, :5] = 0
    out2, _ = I.procrustes(Y, Xbad, w)
    assert torch.allclose(out2[:, 5:], X[:, 5:], atol=1e-4)
    # too few points: translation only
    w1 = torch.zeros(2, 20)
    w1[:, 0] = 1
    out3, p3 = I.procrustes(Y, X, w1)
    assert torch.allclose(p3["s"], torch.ones(2)) and torch.allclose(out3[:, 0], X[:, 0], atol=1e-5)


# ---- windows, masks, fills, baseline ------------------------------------------------------------
def test_window_starts_cover_and_anchor_to_end():
    assert I_R.window_starts(40, 32, 8) == [0, 8]
    assert I_R.window_starts(45, 32, 8) == [0, 8, 13]
    assert I_R.window_starts(10, 32, 8) == [0]
    s = I_R.window_starts(100, 32, 7)
    assert s[-1] == 100 - 32 and all(b - a <= 7 for a, b in zip(s, s[1:]))
    with pytest.raises(UserError):
        I_R.window_starts(10, 32, 0)


def test_check_mask_nan_and_errors():
    x = _walk(10)
    x[2, 3] = np.nan
    m = I_R.check_mask(x, None)
    assert m.shape == (10, 15) and not m[2, 3] and m.sum() == 149
    mask = np.ones((10, 15), dtype=bool)
    mask[0, 0] = False
    assert I_R.check_mask(x, mask).sum() == 148
    with pytest.raises(UserError, match="shape"):
        I_R.check_mask(x, np.ones((9, 15), bool))
    with pytest.raises(UserError, match="booleans"):
        I_R.check_mask(x, np.full((10, 15), 0.5))
    with pytest.raises(UserError):
        I_R.check_mask(np.zeros((10, 15)), None)


def test_hold_last_observation_known_answer():
    x = np.zeros((5, 2, 3), np.float32)
    x[:, 0, 0] = [1, 2, 3, 4, 5]
    x[:, 1, 0] = 7
    m = np.ones((5, 2), bool)
    m[[0, 2, 3], 0] = False
    out = I.hold_last_observation(x, m)
    assert out[:, 0, 0].tolist() == [2, 2, 2, 2, 5]  # before the first observation: the first one


def test_baseline_recovers_linear_motion_in_gaps():
    T = 30
    x = np.zeros((T, 15, 3), np.float32)
    x[..., 0] = np.linspace(0, 1, T)[:, None]
    m = np.ones((T, 15), bool)
    m[10:20, 4] = False
    xc = x.copy()
    xc[~m] = np.nan
    out = I.baseline(xc, m)
    assert np.allclose(out, x, atol=1e-5)
    # noise: smoothing without keeping the observed values reduces the error
    rng = np.random.default_rng(0)
    noisy = x + rng.normal(0, 0.02, x.shape).astype(np.float32)
    sm = I.baseline(noisy, None, keep_observed=False)
    assert np.abs(sm - x).mean() < 0.7 * np.abs(noisy - x).mean()


def test_corrupt_is_seeded_and_near_the_rate():
    x = _walk(200)
    a, ma = I.corrupt(x, np.random.default_rng(1), joint_rate=0.3)
    b, mb = I.corrupt(x, np.random.default_rng(1), joint_rate=0.3)
    assert np.array_equal(ma, mb) and np.array_equal(np.isnan(a), np.isnan(b))
    assert 0.25 < 1 - ma.mean() < 0.36
    assert np.isnan(a[~ma]).all() and np.allclose(a[ma], x[ma])
    _, mf = I.corrupt(x, np.random.default_rng(2), frame_rate=0.3)
    lost = ~mf.any(1)
    assert 0.25 < lost.mean() < 0.35 and (mf.all(1) | lost).all()
    n, mn = I.corrupt(x, np.random.default_rng(3), noise=0.02)
    assert mn.all() and 0.01 < np.abs(n - x).mean() < 0.03
    _, mh = I.corrupt(x, np.random.default_rng(4), hide=(5, 6))
    assert not mh[:, [5, 6]].any() and mh[:, :5].all()


# ---- the inpainting loop --------------------------------------------------------------------------
@pytest.mark.slow
def test_inpaint_shapes_keeps_observed_and_reports_progress(tiny_model):
    x = _walk(21)
    xc, m = I.corrupt(x, np.random.default_rng(0), joint_rate=0.3)
    calls = []
    r = I.inpaint(tiny_model, xc, m, shift=4, steps=6, progress=lambda f, t: calls.append(f))
    assert r.joints.shape == x.shape and np.isfinite(r.joints).all()
    assert np.array_equal(r.joints[m], x[m])                     # observed joints are kept
    assert r.starts == [0, 4, 8, 12, 13] and r.candidates.shape == (5, 8, 15, 3)
    assert len(r.loss_history) == 6 and calls and calls[-1] == 1.0
    avg = I.inpaint(tiny_model, xc, m, shift=4, steps=2, average=True, keep_observed=False)
    assert np.isfinite(avg.joints).all() and not np.array_equal(avg.joints[m], x[m])
    # a sequence shorter than the window, and NaN-only input
    short = I.inpaint(tiny_model, x[:5], None, steps=1)
    assert short.joints.shape == (5, 15, 3)
    with pytest.raises(UserError, match="nothing is observed"):
        I.inpaint(tiny_model, np.full((10, 15, 3), np.nan, np.float32))
    with pytest.raises(UserError, match="window"):
        I.inpaint(tiny_model, x, window=16)
    with pytest.raises(UserError, match="joints"):
        I.inpaint(tiny_model, x[:, :10])
    with pytest.raises(UserError, match="2D"):
        I.inpaint(tiny_model, x[..., :2])  # no 2D variant in this model


@pytest.mark.slow
def test_latent_search_recovers_a_motion_in_the_generators_range():
    """Known answer: the input is G(z*) itself (with 30 % of the joints missing); the latent search
    from the (untrained) encoder's guess must find a window matching it, missing joints included."""
    torch.manual_seed(0)
    model = A.build_model(A.Config(frames=8, latent=16, channels=(4, 8))).eval()
    net = model.net(3)
    with torch.no_grad():
        y = net.decode(torch.randn(1, 16, generator=torch.Generator().manual_seed(5)))[0] * model.cfg.coord_scale
        p = [a for a, _ in net.skeleton.bones]
        c = [b for _, b in net.skeleton.bones]
        net.bone_ref.copy_((y[:, c] - y[:, p]).norm(dim=-1).mean(0))  # this body's size = the training size
    x = y.numpy()
    xc, m = I.corrupt(x, np.random.default_rng(0), joint_rate=0.3)
    w = (10.0, 5.0, 0.0)
    r = I.inpaint(model, xc, m, steps=100, weights=w, keep_observed=False)
    r0 = I.inpaint(model, xc, m, steps=0, weights=w, keep_observed=False)
    assert r.loss_history[-1] < 0.3 * r.loss_history[0]
    err = lambda out: np.linalg.norm(out.joints - x, axis=-1)[~m].mean()  # noqa: E731
    assert err(r) < 0.3 * err(r0)


def test_critic_reward_is_capped_by_calibration(tiny_model):
    model = A.build_model(TINY).eval()
    model.load_state_dict(tiny_model.state_dict())
    s = A_T.WindowSampler([_walk(40, k) for k in range(3)], frames=TINY.frames)
    A_T.calibrate_critic(model, s, torch.Generator().manual_seed(0))
    ref = model.net(3).critic_ref
    assert torch.isfinite(ref).all() and ref[1] >= 0
    r = I.inpaint(model, _walk(16), None, steps=3)
    assert np.isfinite(r.joints).all()


# ---- CLI --------------------------------------------------------------------------------------------
def test_cli_inpaint_round_trip_and_errors(tmp_path, tiny_ckpt, capsys):
    from motionviz.cli import main

    x = _walk(20)
    xc, m = I.corrupt(x, np.random.default_rng(0), joint_rate=0.3)
    np.save(tmp_path / "in.npy", xc)
    np.save(tmp_path / "mask.npy", m)
    out = tmp_path / "out.npy"
    ck = str(tiny_ckpt / "aegan.safetensors")
    rc = main(["inpaint", "--input", str(tmp_path / "in.npy"), "--mask", str(tmp_path / "mask.npy"), "--window", "8",
               "--shift", "4", "--steps", "3", "--out", str(out), "--checkpoint", ck, "--json", "--no-progress"])
    assert rc == 0
    y = np.load(out, allow_pickle=False)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert np.allclose(y[m], x[m])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["frames"] == 20 and summary["missing_fraction"] == pytest.approx(1 - m.mean(), abs=1e-3)
    # a 17-joint COCO input is mapped to the common skeleton
    coco = np.random.default_rng(0).normal(size=(12, 17, 3)).astype(np.float32)
    np.save(tmp_path / "coco.npy", coco)
    assert main(["inpaint", "--input", str(tmp_path / "coco.npy"), "--steps", "1", "--out", str(out),
                 "--checkpoint", ck, "--no-progress"]) == 0
    assert np.load(out).shape == (12, 15, 3)
    # bad inputs: one line, exit 2
    np.save(tmp_path / "bad.npy", np.zeros((3, 4)))
    capsys.readouterr()
    for argv in (["--input", str(tmp_path / "bad.npy")], ["--input", str(tmp_path / "missing.npy")],
                 ["--input", str(tmp_path / "in.npy"), "--mask", str(tmp_path / "bad.npy")],
                 ["--input", str(tmp_path / "in.npy"), "--window", "32"],
                 ["--input", str(tmp_path / "in.npy"), "--steps", "-1"]):
        rc = main(["inpaint", *argv, "--out", str(out), "--checkpoint", ck, "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and err[-1].startswith("error: ") and "Traceback" not in "\n".join(err), argv
    rc = main(["inpaint", "--input", str(tmp_path / "in.npy"), "--out", str(out),
               "--checkpoint", str(tmp_path / "none.safetensors"), "--no-progress"])
    assert rc == 2 and "no AE-GAN checkpoint" in capsys.readouterr().err


# ---- evaluation, benchmark -------------------------------------------------------------------------
@pytest.mark.slow
def test_evaluate_reports_all_conditions(tiny_model):
    data = [(f"s{k}", _walk(24, k)) for k in range(2)]
    r = I_E.evaluate(tiny_model, steps=2, shift=4, rates=(0.1, 0.3), keraal=False, data=data)
    assert r["settings"]["preset"] == "tuned" and math.isfinite(r["mpjpe_aegan_thesis"])
    assert r["mpjpe_aegan"] == r["mpjpe_aegan_avg"]            # the tuned preset averages the windows
    for k in ("mpjpe_input", "mpjpe_baseline", "mpjpe_aegan", "seconds_per_300_frames"):
        assert math.isfinite(r[k]) and r[k] >= 0
    assert set(r["conditions"]) == {"joints10", "joints30", "frames30", "noise3cm", "hidden_left_arm"}
    assert r["top_condition"] == "joints30" and r["mpjpe_input"] == r["conditions"]["joints30"]["mpjpe_input"]
    j30 = r["conditions"]["joints30"]
    assert j30["mpjpe_baseline"] < j30["mpjpe_input"]          # interpolation beats holding the last value
    assert 0 <= j30["pck_aegan"] <= 1 and j30["mpjpe_missing_input"] > j30["mpjpe_input"]
    assert r["conditions"]["noise3cm"]["mpjpe_missing_input"] is None
    json.dumps(r)


@pytest.mark.slow
def test_bench_section(monkeypatch, tiny_model):
    monkeypatch.setattr(I, "load_model", lambda path=None: tiny_model)
    r = I_E.bench(quick=True)
    assert r["checkpoint"] is True and r["steps_run"] == 40 and r["seconds_per_300_frames"] > 0
    assert r["windows"] == len(I_R.window_starts(300, TINY.frames, 8))


@pytest.mark.slow
def test_keraal_tracks_against_kinect(data_root):
    torch.manual_seed(0)
    model = A.build_model(A.Config(frames=8, latent=4, channels=(4, 8), variants=(3, 2))).eval()
    r = I_E.evaluate_keraal(model, steps=1, shift=8, root=data_root, max_lag=3)
    assert set(r["exercises"]) == {"CTK", "ELK", "RTK"} and r["aegan_2d"] is True
    row = r["exercises"]["CTK"]["openpose"]
    assert abs(row["lag_frames_30fps"]) <= 3 and row["frames_20fps"] > 100
    for k in ("mpjpe_input", "mpjpe_baseline", "mpjpe_aegan_fill", "mpjpe_aegan_denoise"):
        assert 0 < row[k] < 1.0  # metres: the tracks land on the Kinect skeleton after alignment


# ---- app tab ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_tab_builds_and_callback_returns_figures(tiny_ckpt, tiny_model):
    import gradio as gr

    from motionviz.core.motion import Motion
    from motionviz.ui import inpaint_tab as T
    from motionviz.ui.common import AppContext

    with gr.Blocks() as demo:
        ctx = AppContext(checkpoint_dir=tiny_ckpt, data_root=None, models=["aegan"], motions=gr.State([]), demo=None)
        T.build(ctx)
    assert demo is not None
    m = Motion(_walk(30), COMMON, 30.0)
    out = T.corrupt_and_inpaint(tiny_model, m, drop_joints=30, drop_frames=10, noise_cm=1.0, limb="left_arm",
                                seed=1, shift=4, steps=2)
    assert out.output.num_frames == 20 and out.output.fps == 20.0      # resampled to 20 fps
    assert not out.corrupted.observed[:, COMMON.index("left_wrist")].any()
    assert set(out.mpjpe) == {"input", "baseline", "AE-GAN"} and all(np.isfinite(v) for v in out.mpjpe.values())
    fig = T.error_figure(out)
    assert len(fig.data) == 3 and len(fig.data[0].x) == 15
    from motionviz.viz.render import overlay_figure
    assert len(overlay_figure(out.corrupted, out.output).data) >= 4
    assert "MPJPE" in T.summary_markdown(out)
    with pytest.raises(UserError):
        T.corrupt_and_inpaint(tiny_model, m, limb="tail")


def test_blend_gaps_joins_generated_stretches_to_observations():
    T = 11
    x = np.zeros((T, 3, 1))
    x[:, 0, 0] = np.arange(T)                 # the truth: a ramp
    pred = x + 5.0                           # generator: right shape, offset by 5
    pred[:, 1] += np.linspace(0, 1, T)[:, None]
    m = np.ones((T, 3), bool)
    m[3:8, 0] = False                        # a gap in joint 0
    m[:, 2] = False                          # joint 2 never observed: takes its parent's offset
    out = I.blend_gaps(pred, x, m, parents=(-1, 0, 0))
    assert np.allclose(out[:, 0, 0], np.arange(T))   # constant offset removed exactly
    assert np.allclose(out[m], x[m])
    assert np.allclose(out[:, 2, 0], pred[:, 2, 0] - 5.0)


def test_generator_protocol_inpaints_a_request(tiny_ckpt):
    from motionviz.core.motion import Motion
    from motionviz.core.skeleton import COCO17
    from motionviz.generators.registry import Request

    gen = A_G.load_generator(tiny_ckpt / "aegan.safetensors")
    x = _walk(12)
    keep = np.ones((12, 15), bool)
    keep[3:7, 5] = False
    out = gen.generate(Request(model="aegan", source=Motion(x), keep=keep, window=8, shift=4, steps=2))
    assert len(out) == 1 and out[0].joints.shape == (12, 15, 3) and out[0].labels.source == "aegan-inpaint"
    assert np.allclose(out[0].joints[keep], x[keep]) and np.isfinite(out[0].joints).all()
    # another skeleton is mapped to the common one
    coco = Motion(np.random.default_rng(0).normal(size=(10, 17, 3)).astype(np.float32), COCO17)
    assert gen.generate(Request(model="aegan", source=coco, window=8, shift=4, steps=1))[0].skeleton is COMMON
    with pytest.raises(UserError):
        gen.generate(Request(model="aegan"))
