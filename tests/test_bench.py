"""``python -m motionviz bench``: one JSON object with machine info and one entry per section; missing
modules/functions/checkpoints are skipped with a reason, a failing section is reported without stopping
the others; the generic generator timings work on tiny checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from _tiny_models import install_fake_encoder, make_diffusion, make_vae

from motionviz.cli import main
from motionviz.evaluation import bench

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def fake_sections(monkeypatch):
    """A fake section module with a working, a failing and a non-dict section."""
    mod = types.ModuleType("mv_fake_bench")
    calls: list[bool] = []

    def ok(quick: bool) -> dict:
        calls.append(quick)
        print("chatty section output")                     # must not end up in the JSON on stdout
        return {"seconds": 0.5, "quick_seen": quick}

    def boom(quick: bool) -> dict:
        raise RuntimeError("section exploded\nsecond line")

    mod.ok, mod.boom, mod.not_a_dict = ok, boom, lambda quick: [1, 2]
    monkeypatch.setitem(sys.modules, "mv_fake_bench", mod)
    monkeypatch.setattr(bench, "SECTIONS", {
        "first_fails": ("mv_fake_bench:boom", None),
        "works": ("mv_fake_bench:ok", None),
        "no_function": ("mv_fake_bench:missing", None),
        "no_module": ("mv_no_such_module_xyz:bench", None),
        "bad_result": ("mv_fake_bench:not_a_dict", None),
        "needs_ckpt": ("mv_fake_bench:ok", "aegan"),
    })
    return calls


def test_sections_skip_fail_and_run(fake_sections, tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONVIZ_CHECKPOINTS", str(tmp_path))
    r = bench.run_bench(quick=True)
    json.dumps(r)                                                   # JSON-serialisable as is
    assert r["quick"] is True and r["total_seconds"] >= 0
    m = r["machine"]
    assert m["cpu_count"] >= 1 and m["torch_threads"] >= 1 and m["torch_version"] == torch.__version__
    assert r["first_fails"]["error"] == "RuntimeError: section exploded"
    assert r["works"]["seconds"] == 0.5 and r["works"]["quick_seen"] is True and fake_sections == [True]
    assert "no missing() function" in r["no_function"]["skipped"].replace("has no", "no")
    assert "not in this installation" in r["no_module"]["skipped"]
    assert "TypeError" in r["bad_result"]["error"]
    assert "no aegan checkpoint" in r["needs_ckpt"]["skipped"]
    assert all("wall_seconds" in r[k] for k in ("first_fails", "works", "bad_result"))
    only = bench.run_bench(quick=False, only=["works"])
    assert set(only) == {"machine", "quick", "works", "total_seconds"} and fake_sections == [True, False]


def test_cli_json_and_unknown_section(fake_sections, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOTIONVIZ_CHECKPOINTS", str(tmp_path))
    assert main(["bench", "--json", "--quick", "--only", "works,no_module", "--out", str(tmp_path / "b.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["works"]["seconds"] == 0.5 and "skipped" in out["no_module"]
    assert json.loads((tmp_path / "b.json").read_text()) == out
    assert main(["bench", "--only", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown bench section" in err[0]
    assert main(["bench", "--quick", "--only", "works,first_fails"]) == 0   # readable text
    text = capsys.readouterr().out
    assert "works:" in text and "first_fails: FAILED" in text and "machine:" in text


@pytest.mark.slow
def test_subprocess_missing_checkpoints_are_skipped(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "motionviz", "bench", "--json", "--quick", "--only",
                        "diffusion,vae,inpaint,recognizer", "--checkpoint-dir", str(tmp_path)], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"machine", "quick", "diffusion", "vae", "inpaint", "recognizer", "total_seconds"}
    for name, needs in (("diffusion", "diffusion"), ("vae", "vae"), ("inpaint", "aegan"),
                        ("recognizer", "recognizer")):
        assert out[name]["skipped"].startswith(f"no {needs} checkpoint"), out[name]


@pytest.mark.slow
def test_generic_generator_timings_on_tiny_checkpoints(tmp_path, monkeypatch):
    install_fake_encoder(monkeypatch)
    make_diffusion(tmp_path)
    make_vae(tmp_path)
    monkeypatch.setenv("MOTIONVIZ_CHECKPOINTS", str(tmp_path))
    d = bench.run_section("diffusion", "mv_no_such_module_xyz:bench", "diffusion", True)
    assert d["source"] == "motionviz.evaluation.bench generic", d
    assert [(t["steps"], t["batch"], t["frames"]) for t in d["timings"]] == [(20, 1, 120), (10, 1, 120)]
    assert all(t["seconds_per_sample"] > 0 for t in d["timings"])
    assert d["seconds_per_sample_20_steps"] == d["timings"][0]["seconds_per_sample"]
    v = bench.run_section("vae", "mv_no_such_module_xyz:bench", "vae", True)
    assert v["source"] == "motionviz.evaluation.bench generic" and v["sampling"][0]["seconds_per_sample"] > 0, v
    assert v["interpolate_8_steps_60_frames_seconds"] > 0
    # the real section functions of the model modules run on the tiny checkpoints too (or are skipped)
    for name in ("diffusion", "vae"):
        spec, needs = bench.SECTIONS[name]
        res = bench.run_section(name, spec, needs, True)
        assert "error" not in res, res
        assert "wall_seconds" in res


def test_timeit():
    n = []
    t = bench.timeit(lambda: n.append(1), repeats=3, warmup=2)
    assert len(n) == 5 and t["repeats"] == 3 and 0 <= t["min"] <= t["median"]


def test_optional_sections_run_only_when_asked(fake_sections, tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONVIZ_CHECKPOINTS", str(tmp_path))
    monkeypatch.setattr(bench, "OPTIONAL", frozenset({"works"}))
    assert "works" not in bench.run_bench(quick=True) and fake_sections == []
    assert bench.run_bench(quick=True, quality=True)["works"]["seconds"] == 0.5
    assert bench.run_bench(quick=True, only=["works"])["works"]["seconds"] == 0.5


def test_diffusion_quality_skips_without_its_inputs(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONVIZ_CHECKPOINTS", str(tmp_path))
    spec, needs = bench.SECTIONS["diffusion_quality"]
    assert "diffusion_quality" in bench.OPTIONAL and needs == "diffusion"
    assert bench.run_section("diffusion_quality", spec, needs, True)["skipped"].startswith("no diffusion checkpoint")
    make_diffusion(tmp_path)
    r = bench.run_section("diffusion_quality", spec, needs, True)
    assert r["skipped"].startswith("no recogniser checkpoint"), r
