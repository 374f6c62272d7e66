"""The distilled few-step sampler (motionviz.models.diffusion_fast): distillation on a toy distribution
with tiny models, the generator's paths (steps, guidance as an input, editing, seeds) and the ``sample``
CLI, on tiny checkpoints made here (no dataset, no shipped checkpoint, a fake MiniLM)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny_models import standing_pose

from motionviz.cli import main
from motionviz.core import representation as D_R
from motionviz.core import representation_torch as D_RT
from motionviz.core.errors import UserError
from motionviz.core.motion import DEFAULT_FPS, Motion
from motionviz.core.sampling import Schedule, guided, sample
from motionviz.core.skeleton import COMMON
from motionviz.generators import diffusion as D_G
from motionviz.generators import diffusion_fast as DF_G
from motionviz.generators.registry import Request
from motionviz.models import diffusion as D
from motionviz.models import diffusion_fast as DF
from motionviz.training import diffusion as D_T
from motionviz.training import diffusion_fast as DF_T

torch.set_num_threads(1)
J = len(COMMON)
pytestmark = pytest.mark.usefixtures("fake_text")


def test_student_times_and_teacher_grid():
    assert DF.student_times(1000, 1) == [999]
    assert DF.student_times(1000, 2) == [999, 500]
    assert DF.student_times(1000, 4) == [999, 749, 500, 250]
    grid = DF.teacher_grid(1000, 4, 6)
    assert len(grid) == 25 and grid[0] == 999 and grid[-1] == 0
    assert all(a > b for a, b in zip(grid, grid[1:]))
    assert set(DF.student_times(1000, 4)) <= set(grid)
    cfg = DF.fast_config(D.tiny_config(T=100))
    assert DF.allowed_steps(cfg) == [1, 2, 4]                 # 3 steps would need times off the grid


# ---------------------------------------------------------------------------------------------
# distillation on a toy distribution
# ---------------------------------------------------------------------------------------------
def _toy_reps(n: int, R: int, seed: int = 0) -> D_T.RepetitionSet:
    """Toy repetitions: a standing person raising both arms by a random amount (one label), canonicalised."""
    rng = np.random.default_rng(seed)
    pose = standing_pose()
    arms = COMMON.indices(["left_elbow", "left_wrist", "right_elbow", "right_wrist"])
    ph = np.sin(np.linspace(0, np.pi, R, dtype=np.float32))[:, None]
    out = []
    for _ in range(n):
        j = np.repeat(pose[None], R, axis=0).copy()
        j[:, arms, 1] += rng.uniform(0.1, 0.5) * ph
        out.append(D_R.canonicalise(j)[0])
    return D_T.RepetitionSet(np.stack(out).astype(np.float32), rng.uniform(1.5, 3.0, n).astype(np.float32),
                           np.ones(n, np.int64), rng.integers(0, 3, n), np.ones(n, np.int64), [[0], [1]] * (n // 2),
                           np.ones(n))


def _toy_setup(seed: int = 0):
    torch.manual_seed(seed)
    tcfg = D.tiny_config(labels=("toy:raise",), datasets=("toy",), text_encoder="fake", text_dim=8, T=100)
    teacher = D.Denoiser(tcfg)
    with torch.no_grad():
        torch.nn.init.normal_(teacher.out.weight, std=0.2)
    reps = _toy_reps(32, tcfg.rep_frames)
    mean = torch.cat([D_RT.to_features(torch.from_numpy(reps.joints)).reshape(-1, 3 * J).mean(0), torch.tensor([0.8])])
    std = torch.full((tcfg.features,), 0.1)
    cfg = DF.fast_config(tcfg, batch_size=32, traj_batch=32, traj_every=4, buffer=2048, prefill=256,
                         teacher_per_step=3, lr=3e-3, ema=0.0, p_first=0.0, p_edit=0.0)
    text = torch.nn.functional.normalize(torch.randn(2, 8), dim=-1)
    return cfg, teacher, mean, std, reps, text


def _one_step_error(student: DF.StudentDenoiser, teacher: D.Denoiser, cfg: DF.FastConfig, batches: DF_T.TrajectoryBatches,
                    n: int = 64) -> float:
    """Mean squared error between the student's 1-step sample and the teacher's multi-step guided sample
    from the same noise, on fresh conditions."""
    torch.manual_seed(123)
    cond = batches.conditions(n)
    x_T = torch.randn(n, cfg.rep_frames, cfg.features)
    model = D_G.conditioned_model(teacher, cond["text"], cond["text_on"], cond["label"], cond["correct"], cond["dataset"])
    sched = Schedule(cfg.T)
    with torch.no_grad():
        ref = sample(guided(model, cond["w"], torch.where(cond["correct"] != 0, cfg.correct_guidance, 0.0)),
                     x_T.shape, sched, 0, x_T=x_T, timesteps=batches.grid)
        t = torch.full((n,), cfg.T - 1, dtype=torch.long)
        c = student.student_condition(t, cond["text"], cond["text_on"], cond["label"], cond["correct"],
                                      cond["dataset"], cond["w"])
        one = student.predict(x_T, t, c, torch.zeros_like(x_T), torch.zeros(x_T.shape, dtype=torch.bool))
    return float(((one - ref) ** 2).mean())


@pytest.mark.slow
def test_distillation_step_learns_the_teachers_multistep_output():
    cfg, teacher, mean, std, reps, text = _toy_setup()
    batches = DF_T.TrajectoryBatches(cfg, teacher, mean, std, reps, text, seed=0)
    student = DF.student_from_teacher(cfg, teacher)
    model = DF.DistillModel(cfg, student, mean, std)
    before = _one_step_error(model.net, teacher, cfg, batches)
    opt = torch.optim.AdamW(model.net.parameters(), lr=cfg.lr)
    losses = [model.train_step(next(batches), {"main": opt})["loss"] for _ in range(150)]
    after = _one_step_error(model.net, teacher, cfg, batches)
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:10])       # the loss decreases
    assert after < 0.5 * before                                      # 1 step ~ the teacher's many steps
    assert batches.written >= cfg.prefill


@pytest.mark.parametrize("plain", [False, True])
def test_trajectory_states_are_the_teachers_ddim_states(plain):
    cfg, teacher, mean, std, reps, text = _toy_setup()
    cfg = replace(cfg, plain_duration=plain)
    batches = DF_T.TrajectoryBatches(cfg, teacher, mean, std, reps, text, seed=1)
    cond = batches.conditions(4)
    states, final = batches.trajectories(cond)
    assert states.shape == (4, cfg.max_steps, cfg.rep_frames, cfg.features)
    # re-running the teacher from the recorded t = T-1 state over the grid reproduces the final sample
    model = D_G.conditioned_model(teacher, cond["text"], cond["text_on"], cond["label"], cond["correct"], cond["dataset"])
    ps = torch.where(cond["correct"] != 0, cfg.correct_guidance, 0.0)
    again = sample(guided(model, cond["w"], ps, plain=D.DURATION_FEATURES if plain else None),
                   final.shape, Schedule(cfg.T), 0, x_T=states[:, 0], timesteps=batches.grid)
    assert torch.allclose(again, final, atol=1e-5)
    other = sample(guided(model, cond["w"], ps, plain=None if plain else D.DURATION_FEATURES),
                   final.shape, Schedule(cfg.T), 0, x_T=states[:, 0], timesteps=batches.grid)
    assert not torch.allclose(other[..., -1], final[..., -1], atol=1e-5), "the duration follows plain_duration"


def test_student_starts_from_the_teachers_layers():
    tcfg = D.tiny_config(labels=("a",), datasets=("d",), text_encoder="fake", text_dim=8, layers=3)
    teacher = D.Denoiser(tcfg)
    cfg = DF.fast_config(tcfg, layers=2)
    assert cfg.teacher_layers == (0, 2)
    st = DF.student_from_teacher(cfg, teacher)
    assert torch.equal(st.encoder.layers[1].mlp[0].weight, teacher.encoder.layers[2].mlp[0].weight)
    assert torch.equal(st.encoder.layers[1].mod.weight, teacher.encoder.layers[2].mod.weight)
    assert torch.equal(st.inp.weight, teacher.inp.weight)
    assert float(st.known_in.weight.detach().abs().sum()) == 0.0              # the new inputs start at zero


# ---------------------------------------------------------------------------------------------
# the generator and the CLI
# ---------------------------------------------------------------------------------------------
def _gen(tiny_fast_dir: Path) -> DF_G.FastGenerator:
    return DF_G.load_generator(tiny_fast_dir / "diffusion-fast.safetensors")


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_generate_steps_shapes_and_seeds(tiny_fast_dir, steps):
    g = _gen(tiny_fast_dir)
    req = Request(model="diffusion-fast", text="raise both arms", steps=steps, frames=50, num=3, seed=7)
    a = g.generate(req)
    b = g.generate(req)
    assert len(a) == 3 and a[0].joints.shape == (50, J, 3) and np.isfinite(a[0].joints).all()
    assert all(np.array_equal(x.joints, y.joints) for x, y in zip(a, b))                 # same seed, same motion
    single = g.generate(Request(model="diffusion-fast", text="raise both arms", steps=steps, frames=50, seed=8))
    assert np.allclose(single[0].joints, a[1].joints, atol=1e-5)                          # sample i = seed + i
    assert a[0].labels.extra["model"] == "diffusion-fast" and a[0].labels.extra["steps"] == steps


def test_guidance_is_an_input_and_one_forward_per_step(tiny_fast_dir, monkeypatch):
    g = _gen(tiny_fast_dir)
    calls = []
    orig = g.net.forward
    monkeypatch.setattr(g.net, "forward", lambda *a, **k: calls.append(a[0].shape[0]) or orig(*a, **k))
    lo = g.generate(Request(text="raise both arms", steps=2, frames=30, guidance=1.0, seed=3))
    n_lo = len(calls)
    hi = g.generate(Request(text="raise both arms", steps=2, frames=30, guidance=6.0, seed=3))
    assert set(calls) == {1}                                   # one row per forward: no unconditioned pass
    assert len(calls) == 2 * n_lo
    assert not np.allclose(lo[0].joints, hi[0].joints)         # the scale changes the motion


def test_bad_steps_and_guidance_are_one_line_errors(tiny_fast_dir):
    g = _gen(tiny_fast_dir)
    for req, needle in [(Request(text="x", steps=3), "1, 2, 4 steps"), (Request(text="x", steps=20), "1, 2, 4 steps"),
                        (Request(text="x", steps=2, guidance=15.0), "guidance scales up to"),
                        (Request(label="ui-prmd:m01", correct=True, steps=2, correct_guidance=5),
                         "correct/incorrect guidance")]:
        with pytest.raises(UserError, match=needle):
            g.generate(req)


def test_exercise_correctness_and_editing(tiny_fast_dir):
    g = _gen(tiny_fast_dir)
    m = g.generate(Request(label="ui-prmd:m01", correct=False, steps=1, frames=40, seed=2))[0]
    assert m.labels.correct is False and m.labels.label == "ui-prmd:m01"
    src = Motion(np.repeat(standing_pose()[None], 60, axis=0), COMMON, DEFAULT_FPS)
    src.joints[:, COMMON.indices(["left_wrist"])[0], 1] += np.linspace(0, 0.3, 60, dtype=np.float32)
    keep = np.zeros((60, J), bool)
    keep[:10] = True
    keep[-10:] = True
    out = g.generate(Request(text="raise both arms", source=src, keep=keep, frames=60, steps=2, num=2, seed=1))
    for o in out:
        assert np.array_equal(o.joints[:10], src.joints[:10]) and np.array_equal(o.joints[-10:], src.joints[-10:])
        assert not np.allclose(o.joints[10:50], src.joints[10:50])


def test_registered_and_loaded_through_the_registry(tiny_fast_dir):
    from motionviz.generators.registry import DEFAULT_STEPS, MODELS, available_models, load_generator

    assert "diffusion-fast" in MODELS and DEFAULT_STEPS["diffusion-fast"] == 1
    assert "diffusion-fast" in available_models(tiny_fast_dir)
    assert isinstance(load_generator("diffusion-fast", tiny_fast_dir), DF_G.FastGenerator)


def test_cli_sample_fast(capsys, tiny_fast_dir, tmp_path):
    out = tmp_path / "fast.npy"
    argv = ["sample", "--model", "diffusion-fast", "--text", "raise both arms", "--frames", "40", "--num", "2",
            "--checkpoint-dir", str(tiny_fast_dir), "--out", str(out), "--json", "--quiet"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 1 and summary["model"] == "diffusion-fast"
    assert np.load(out, allow_pickle=False).shape == (2, 40, J, 3)
    assert main(argv[:-4] + ["--steps", "4", "--out", str(out), "--json", "--quiet"]) == 0
    assert main(argv[:-4] + ["--steps", "3", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1, 2, 4 steps" in err[0]


@pytest.mark.slow
def test_bench_section_has_student_and_teacher_rows(tiny_fast_dir, monkeypatch):
    from motionviz.evaluation import bench

    monkeypatch.setenv("MOTIONVIZ_CHECKPOINTS", str(tiny_fast_dir))
    spec, needs = bench.SECTIONS["diffusion-fast"]
    res = bench.run_section("diffusion-fast", spec, needs, False)
    assert "error" not in res, res
    rows = {(r["model"], r["steps"], r["batch"]): r for r in res["timings"]}
    assert set(rows) == {("diffusion-fast", k, b) for k in (1, 2, 4) for b in (1, 16)} | \
        {("diffusion", 20, 1), ("diffusion", 20, 16)}
    assert all(r["seconds_per_sample"] > 0 for r in rows.values())
    assert rows[("diffusion-fast", 1, 1)]["ratio_to_teacher"] > 1          # fewer forwards than the teacher


# ---------------------------------------------------------------------------------------------
# the Text → motion tab
# ---------------------------------------------------------------------------------------------
def _text_tab(tiny_fast_dir: Path):
    import gradio as gr

    from motionviz.ui import text_tab
    from motionviz.ui.common import AppContext

    with gr.Blocks() as demo:
        ctx = AppContext(checkpoint_dir=tiny_fast_dir, data_root=None, models=["diffusion", "diffusion-fast"],
                         motions=gr.State([]), demo=demo)
        text_tab.build(ctx)
    fns = {f.api_name: f for f in demo.fns.values()}
    comps = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    return demo, fns, comps


@pytest.mark.slow
def test_text_tab_uses_the_fast_model_by_default_and_follows_the_guidance_slider(tiny_fast_dir):
    demo, fns, comps = _text_tab(tiny_fast_dir)
    assert comps["text-model"].value == "diffusion-fast" and comps["text-model"].visible
    assert comps["text-fast-steps"].visible and not comps["text-steps"].visible
    assert fns["text_guidance_changed"].concurrency_id == "cpu"          # the slider's release regenerates
    gen = fns["text_generate"].fn
    args = ["raise both arms", "", "Unspecified", 2.5, 20, 40, 1, 5, False, "ddim", ["npy"], []]
    _, info, _, _, ms, _ = gen(*args)                                    # default: fast, 1 step
    assert "1 step ·" in info and ms[0].labels.extra["model"] == "diffusion-fast"
    _, _, _, _, ms_g, _ = fns["text_guidance_changed"].fn(*(args[:3] + [6.0] + args[4:]))
    assert not np.allclose(ms[0].joints, ms_g[0].joints)                 # same seed, new guidance
    _, info, _, _, ms_1, _ = gen(*args, "diffusion-fast", 2)
    assert "2 steps ·" in info
    _, info, _, _, ms_t, _ = gen(*args, "diffusion", 2)                  # the teacher stays selectable
    assert "20 steps" in info and ms_t[0].labels.extra["model"] == "diffusion"
    import gradio as gr

    from motionviz.ui.common import user_error  # noqa: F401  (errors are gr.Error through the wrapper)

    with pytest.raises(gr.Error, match="1, 2, 4 steps"):
        gen(*args, "diffusion-fast", 3)
    with pytest.raises(gr.Error, match="model must be one of"):
        gen(*args, "nope", 2)


def test_compare_tab_keeps_the_fast_models_own_steps(tiny_fast_dir):
    from motionviz.generators.registry import FixedSteps
    from motionviz.ui import compare_tab as C

    gens = C.comparable_models(["diffusion", "diffusion-fast"], tiny_fast_dir)
    assert isinstance(gens["diffusion-fast"], FixedSteps) and gens["diffusion-fast"].steps == 1
    res = C.compare_all(gens, "ui-prmd:m01", "a deep squat", "Correct", 3, 40, 20)   # the slider's 20 steps
    by_role = dict(zip(res.roles, res.motions))
    assert by_role["diffusion-fast"].labels.extra["steps"] == 1 and by_role["diffusion"].labels.extra["steps"] == 20


@pytest.mark.slow
def test_build_training_on_real_data(data_root, tmp_path):
    """The TRAINERS entry distils a tiny teacher on a slice of the real training split, through the shared
    loop; the student loads through the registry's loader and generates."""
    from motionviz.core.checkpoint import read_metadata
    from motionviz.training.loop import TrainOptions, train

    teacher = tmp_path / "diffusion.safetensors"
    train(TrainOptions(name="diffusion", tiny=True, datasets=["ui-prmd"], data_root=str(data_root),
                       overrides={"layers": 2}), teacher, steps=2, command="pytest", runs_dir=tmp_path / "r1",
          progress_bar=False)
    out = tmp_path / "diffusion-fast.safetensors"
    opts = TrainOptions(name="diffusion-fast", tiny=True, datasets=["ui-prmd"], data_root=str(data_root),
                        overrides={"teacher": str(teacher), "layers": 1})
    summary = train(opts, out, steps=3, command="pytest", runs_dir=tmp_path / "r2", progress_bar=False)
    assert summary["steps"] == 3 and out.is_file()
    meta = read_metadata(out)
    cfg = json.loads(meta["config"])
    assert cfg["layers"] == 1 and cfg["teacher_layers"] == [0] and len(cfg["teacher"]) == 64
    assert meta["teacher"] == "diffusion.safetensors" and json.loads(meta["data"])[0]["dataset"] == "ui-prmd"
    g = DF_G.load_generator(out)
    m = g.generate(Request(text="deep squat", label="ui-prmd:m01", correct=False, frames=30, steps=1))[0]
    assert m.joints.shape == (30, J, 3) and np.isfinite(m.joints).all()
    missing = TrainOptions(name="diffusion-fast", tiny=True, overrides={"teacher": str(tmp_path / "none.safetensors")})
    with pytest.raises(UserError, match="no teacher checkpoint"):
        train(missing, tmp_path / "x.safetensors", steps=1, runs_dir=tmp_path / "r3", progress_bar=False)
