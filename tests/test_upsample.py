"""Joint up-sampling (issue #15): joint sets, the offset baseline and degenerate rows, the masked-joint
training corruption, the `inpaint --upsample` CLI and the `eval-inpaint` report.  Tiny models only."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from motionviz.core import skeleton as U_C
from motionviz.core.errors import UserError
from motionviz.core.skeleton import COMMON
from motionviz.evaluation import upsampling as U_E
from motionviz.generators import inpaint as A_G_G
from motionviz.generators import upsample as U
from motionviz.models import aegan as A
from motionviz.training import aegan as A_T

TINY_UP = A.Config(**{**A_T.TINY, **A_T.UPSAMPLE})


def _mean() -> dict[str, np.ndarray]:
    """A mean pose (pelvis at the origin, facing +Z, left = +X) and its bone lengths."""
    rest = {"pelvis": (0, 0, 0), "spine": (0, 0.25, -0.02), "neck": (0, 0.5, 0),
            "left_shoulder": (0.18, 0.47, 0), "left_elbow": (0.22, 0.2, 0), "left_wrist": (0.24, -0.05, 0.05),
            "right_shoulder": (-0.18, 0.47, 0), "right_elbow": (-0.22, 0.2, 0), "right_wrist": (-0.24, -0.05, 0.05),
            "left_hip": (0.1, -0.03, 0), "left_knee": (0.11, -0.45, 0.02), "left_ankle": (0.11, -0.87, 0),
            "right_hip": (-0.1, -0.03, 0), "right_knee": (-0.11, -0.45, 0.02), "right_ankle": (-0.11, -0.87, 0)}
    pose = np.array([rest[j] for j in COMMON.joints], dtype=np.float64)
    bones = np.array([np.linalg.norm(pose[c] - pose[p]) for p, c in COMMON.bones])
    return {"pose": pose, "bones": bones, "frames": np.array(1)}


def _turning(mean: dict[str, np.ndarray], T: int = 40, scale: float = 1.1) -> np.ndarray:
    """The mean pose, scaled, turning about +Y and walking: (T, 15, 3)."""
    ang = np.linspace(0, 1.5, T)
    c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
    p = mean["pose"][None] * scale
    x = np.empty((T, len(COMMON), 3))
    x[..., 0] = p[..., 0] * c - p[..., 2] * s
    x[..., 1] = p[..., 1] + 1.0
    x[..., 2] = p[..., 0] * s + p[..., 2] * c
    x[..., 2] += np.linspace(0, 0.8, T)[:, None]
    return x.astype(np.float32)


def _walk(T: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = _turning(_mean(), T, 1.0)
    t = np.arange(T)[:, None]
    x[:, COMMON.index("left_wrist"), 1] += 0.15 * np.sin(t[:, 0] / 3 + seed)
    return (x + rng.normal(0, 0.003, x.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_up(tmp_path_factory):
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("ck")
    model = A.build_model(TINY_UP)
    A_T.save(model, d / U.CHECKPOINT_NAME, {"steps": 0})
    A_T.save(A.build_model(A.Config(**A_T.TINY)), d / "aegan.safetensors", {"steps": 0})
    return d


# ---- joint sets ------------------------------------------------------------------------------------
def test_joint_sets_aliases_and_sparse_arrays():
    assert U_C.resolve_set("BlazePose") == "coco17" and U_C.resolve_set("wrists_ankles_head") == "wrists-ankles-neck"
    with pytest.raises(UserError, match="unknown joint set 'hands'; choose from coco17") as e:
        U_C.resolve_set("hands")
    assert "\n" not in str(e.value)
    m = U_C.set_mask("coco17")
    assert m.sum() == 12 and not m[COMMON.indices(["pelvis", "spine", "neck"])].any()
    assert U_C.set_mask("trackers").sum() == 6 and U_C.set_mask("wrists-ankles-neck").sum() == 5
    x = np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)
    full = U_C.sparse_to_common(x, "wrists-ankles-neck")
    assert full.shape == (4, 15, 3) and np.isfinite(full).all(-1).sum(1).tolist() == [5] * 4
    np.testing.assert_array_equal(full[:, COMMON.index("right_ankle")], x[:, 4])
    with pytest.raises(UserError, match="has 12 joints"):
        U_C.sparse_to_common(x, "coco17")


# ---- baselines ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(U_C.JOINT_SETS))
def test_offset_baseline_is_exact_on_the_mean_pose(name):
    """A body that holds the mean pose (scaled, turning, walking) is recovered exactly by the offsets
    when a bone is observed for the scale, and the degenerate rows are worse."""
    mean = _mean()
    x = _turning(mean, scale=1.1 if name == "coco17" else 1.0)   # no observed bone: the scale stays 1
    keep = U_C.set_mask(name)
    xs = np.where(keep[None, :, None], x, np.nan)
    hidden = ~keep
    out = U.offset_baseline(xs, None, mean)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, keep], x[:, keep])
    np.testing.assert_allclose(out[:, hidden], x[:, hidden], atol=2e-5)
    err = lambda y: float(np.linalg.norm(y[:, hidden] - x[:, hidden], axis=-1).mean())  # noqa: E731
    assert err(U.nearest_joint_fill(xs, None, mean)) > 0.02
    mp = U.mean_pose_fill(xs, None, mean)                          # the body *is* the mean pose here
    assert np.isfinite(mp).all() and err(mp) < 1e-4


def test_offset_baseline_interpolates_detector_misses_and_bad_input():
    mean = _mean()
    x = _turning(mean)
    xs = np.where(U_C.set_mask("coco17")[None, :, None], x, np.nan)
    xs[5:9, COMMON.index("left_wrist")] = np.nan                   # the detector missed a wrist
    out = U.offset_baseline(xs, None, mean)
    assert np.abs(out[5:9, COMMON.index("left_wrist")] - x[5:9, COMMON.index("left_wrist")]).max() < 0.03
    with pytest.raises(UserError, match="nothing is observed"):
        U.offset_baseline(np.full((4, 15, 3), np.nan), None, mean)
    with pytest.raises(UserError, match="3D joints"):
        U.offset_baseline(np.zeros((4, 15, 2)), None, mean)


# ---- masked-joint training -------------------------------------------------------------------------
def test_corruptor_observes_only_the_joint_sets():
    cfg = A.Config(**{**A_T.TINY, **A_T.UPSAMPLE, "p_sets": 1.0, "set_dropout": 0.0})
    model = A.AEGAN(cfg)
    m = model.corruptor.mask(64, cfg.frames, torch.Generator().manual_seed(0))
    sets = {tuple(U_C.set_mask(n)) for n in cfg.joint_sets}
    rows = {tuple(r.tolist()) for r in m[:, 0]}
    assert rows == sets                                               # every set drawn, nothing else
    assert (m == m[:, :1]).all()                                      # the same joints in every frame
    # with detector misses, only joints of the set are ever observed
    cfg = A.Config(**{**A_T.TINY, **A_T.UPSAMPLE, "p_sets": 1.0, "set_dropout": 0.5})
    m = A.AEGAN(cfg).corruptor.mask(64, cfg.frames, torch.Generator().manual_seed(1))
    union = np.stack([U_C.set_mask(n) for n in cfg.joint_sets]).any(0)
    assert not m[..., ~union].any() and (~m[..., union]).any()
    with pytest.raises(ValueError, match="unknown joint sets"):
        A.Config(**{**A_T.TINY, "p_sets": 0.5, "joint_sets": ("hands",)}).validate()
    # the inpainting corruption is unchanged when p_sets is 0 (same random stream)
    base = A.AEGAN(A.Config(**A_T.TINY)).corruptor.mask(8, 8, torch.Generator().manual_seed(3))
    again = A.AEGAN(A.Config(**A_T.TINY, joint_sets=("coco17",))).corruptor.mask(8, 8, torch.Generator().manual_seed(3))
    assert torch.equal(base, again)


def test_train_aegan_upsample_tiny(data_root, tmp_path):
    """`python -m motionviz train aegan-upsample` goes through the one training loop; init from a checkpoint."""
    from motionviz.training.loop import TrainOptions, train

    init = tmp_path / "init.safetensors"
    base = A.build_model(A.Config(**A_T.TINY))
    A_T.save(base, init, {"steps": 0})
    out = tmp_path / "up.safetensors"
    s = train(TrainOptions(name="aegan-upsample", tiny=True, overrides={"init": str(init)}), out, steps=3,
              runs_dir=tmp_path / "runs", progress_bar=False)
    assert s["steps"] == 3
    model, meta = A_G_G.load(out)
    assert model.cfg.p_sets == 0.7 and model.cfg.variants == (3,) and "init.safetensors" in meta["init"]
    assert json.loads(meta["data"])[0]["dataset"] == "irds" and "licence" in json.loads(meta["data"])[0]
    with pytest.raises(UserError, match="init: no checkpoint"):
        train(TrainOptions(name="aegan-upsample", tiny=True, overrides={"init": str(tmp_path / "no.safetensors")}),
              out, steps=1, runs_dir=tmp_path / "runs2", progress_bar=False)


# ---- up-sampling with the model, CLI ----------------------------------------------------------------
def test_upsample_keeps_the_set_and_fills_the_rest(tiny_up):
    from motionviz.generators.inpaint import load_model

    model = load_model(tiny_up / U.CHECKPOINT_NAME)
    x = _walk(20)
    r = U.upsample(model, x, "trackers", steps=2, shift=4)
    keep = U_C.set_mask("trackers")
    assert r.joints.shape == x.shape and np.isfinite(r.joints).all()
    np.testing.assert_allclose(r.joints[:, keep], x[:, keep], atol=1e-6)   # given joints kept
    assert not np.allclose(r.joints[:, ~keep], x[:, ~keep], atol=1e-3)      # the rest is generated
    with pytest.raises(UserError, match="none of the coco17 joints"):
        U.upsample(model, np.where(U_C.set_mask("wrists-ankles-neck")[None, :, None] & ~U_C.set_mask("coco17")[None, :, None],
                                   x, np.nan), "coco17", steps=1, shift=4)


def test_inpaint_cli_upsample(tiny_up, tmp_path, capsys):
    from motionviz.cli import main

    ck = str(tiny_up / U.CHECKPOINT_NAME)
    x = _walk(20)
    keep = U_C.set_mask("coco17")
    np.save(tmp_path / "kp.npy", x[:, keep])                       # (T, 12, 3): just the set's joints
    out = tmp_path / "full.npz"
    assert main(["inpaint", "--upsample", "coco17", "--input", str(tmp_path / "kp.npy"), "--out", str(out),
                 "--checkpoint", ck, "--steps", "2", "--shift", "4", "--fps", "30", "--json", "--no-progress"]) == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["upsample"] == "coco17" and s["fps"] == 30 and s["missing_fraction"] == pytest.approx(0.2)
    with np.load(out, allow_pickle=False) as z:
        y, fps = z["joints"], float(z["fps"])
    assert fps == 30.0 and y.shape == (20, 15, 3) and np.isfinite(y).all()
    np.testing.assert_allclose(y[:, keep], x[:, keep], atol=1e-6)
    # a full (T, 15, 3) array: joints outside the set are ignored
    np.save(tmp_path / "full15.npy", x)
    assert main(["inpaint", "--upsample", "wrists-ankles-head", "--input", str(tmp_path / "full15.npy"),
                 "--out", str(tmp_path / "w.npy"), "--checkpoint", ck, "--steps", "1", "--shift", "4", "--json",
                 "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["missing_fraction"] == pytest.approx(10 / 15, abs=1e-4)
    # bad input: one line, exit 2
    np.save(tmp_path / "seven.npy", x[:, :7])
    np.save(tmp_path / "flat.npy", x[..., :2])
    for argv, why in ((["--upsample", "hands", "--input", str(tmp_path / "kp.npy")], "unknown joint set"),
                      (["--upsample", "coco17", "--input", str(tmp_path / "seven.npy")], "7 joints"),
                      (["--upsample", "coco17", "--input", str(tmp_path / "full15.npy"), "--denoise"], "--denoise"),
                      (["--upsample", "coco17", "--input", str(tmp_path / "full15.npy"), "--checkpoint",
                        str(tmp_path / "none.safetensors")], "no up-sampling AE-GAN")):
        argv = argv + (["--checkpoint", ck] if "--checkpoint" not in argv else [])
        rc = main(["inpaint", *argv, "--out", str(tmp_path / "o.npy"), "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and why in err[0], (argv, err)


def test_evaluate_upsampling_rows(tiny_up):
    from motionviz.generators.inpaint import load_model

    model = load_model(tiny_up / U.CHECKPOINT_NAME)
    data = [(f"s{k}", _walk(24, k)) for k in range(2)]
    r = U_E.evaluate(model, load_model(tiny_up / "aegan.safetensors"), sets=("coco17", "trackers"), steps=1,
                   data=data, mean=_mean())
    assert set(r["sets"]) == {"coco17", "trackers"}
    row = r["sets"]["coco17"]
    assert row["hidden"] == ["pelvis", "spine", "neck"]
    for m in U_E.METHODS:
        assert set(row[m]["per_joint_mm"]) == {"pelvis", "spine", "neck"} and row[m]["mpjpe_mm"] >= 0
        assert 0 <= row[m]["pck"] <= 1
    # the walk holds the mean pose up to a swinging wrist and noise: the offsets are within a few mm
    assert row["offset_baseline"]["mpjpe_mm"] < 10 < row["nearest_joint"]["mpjpe_mm"]
    assert r["settings"]["errors_on"].startswith("hidden joints") and r["seconds_per_300_frames"] > 0
    json.dumps(r)


@pytest.mark.slow
def test_eval_inpaint_cli_reports_upsampling(data_root, tiny_up, capsys):
    from motionviz.cli import main

    assert main(["eval-inpaint", "--upsampling-only", "--upsample-checkpoint", str(tiny_up / U.CHECKPOINT_NAME),
                 "--checkpoint", str(tiny_up / "aegan.safetensors"), "--upsampling-sequences", "1",
                 "--max-frames", "48", "--shift", "4", "--json", "--no-progress"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(r) == {"upsampling"} and set(r["upsampling"]["sets"]) == set(U_C.JOINT_SETS)
    assert r["upsampling"]["settings"]["split"] == "test (held-out subjects)"
    row = r["upsampling"]["sets"]["wrists-ankles-neck"]
    assert len(row["hidden"]) == 10 and row["mean_pose"]["mpjpe_mm"] > 0


# ---- the Inpaint tab --------------------------------------------------------------------------------
@pytest.mark.slow
def test_inpaint_tab_keypoints_to_full_skeleton(tiny_up, tmp_path):
    import gradio as gr

    from motionviz.core.motion import Motion
    from motionviz.ui import inpaint_tab as T
    from motionviz.ui.common import AppContext

    with gr.Blocks() as demo:
        ctx = AppContext(checkpoint_dir=tiny_up, data_root=None, models=["aegan"], motions=gr.State([]), demo=None)
        T.build(ctx)
    fns = {f.api_name: f.fn for f in demo.fns.values()}
    assert "inpaint_upsample" in fns
    m = Motion(_walk(24), COMMON, 20.0)
    from motionviz.generators.inpaint import load_model

    model = load_model(tiny_up / U.CHECKPOINT_NAME)
    out = T.upsample_motion(model, m, "blazepose", steps=1, shift=4, mean=_mean())
    keep = U_C.set_mask("coco17")
    assert out.joint_set == "coco17" and np.isfinite(out.output.joints).all()
    np.testing.assert_allclose(out.output.joints[:, keep], m.joints[:, keep], atol=1e-6)
    assert not np.isfinite(out.sparse.joints[:, ~keep]).any()
    assert set(out.mean_mm) == {"AE-GAN up-sampler", "offset baseline"}
    assert np.isnan(out.errors["offset baseline"][keep]).all() and np.isfinite(out.errors["offset baseline"][~keep]).all()
    fig = T.upsample_figure(out)
    assert len(fig.data) == 2 and len(fig.data[0].x) == 3 and all(np.isfinite(fig.data[1].y))
    assert "Up-sampled from coco17" in T.upsample_markdown(out)
    with pytest.raises(UserError, match="unknown joint set"):
        T.upsample_motion(model, m, "hands", steps=1, shift=4)
    # through the app's event: a session motion, one-line errors for bad requests
    res = fns["inpaint_upsample"](T.SESSION, 0, None, "trackers", [m])
    assert json.loads(res[0])["motions"][1]["title"] == "AE-GAN: full skeleton" and len(res[4]) == 2
    with pytest.raises(gr.Error, match="choose a motion|no motion|session"):
        fns["inpaint_upsample"](T.SESSION, 0, None, "trackers", [])
    # no up-sampling checkpoint: the section says so and the button gives one line
    (tmp_path / "aegan.safetensors").write_bytes((tiny_up / "aegan.safetensors").read_bytes())
    with gr.Blocks() as demo2:
        T.build(AppContext(checkpoint_dir=tmp_path, data_root=None, models=["aegan"], motions=gr.State([]), demo=None))
    fn = {f.api_name: f.fn for f in demo2.fns.values()}["inpaint_upsample"]
    with pytest.raises(gr.Error, match="not available"):
        fn(T.SESSION, 0, None, "coco17", [m])
