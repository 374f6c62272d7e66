"""``python -m motionviz sample`` / ``interpolate``: one-line errors with exit status 2 for bad input,
array shapes, plain .npy files, determinism (same seed -> same bytes), editing, on tiny random
checkpoints made here (no dataset, no shipped checkpoint, a fake stand-in for MiniLM)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny_models import standing_pose

from motionviz.cli import main
from motionviz.cli.sample import resolve_exercise
from motionviz.core.errors import UserError
from motionviz.core.representation import keep_mask
from motionviz.core.skeleton import BODY_PARTS, COMMON

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parent.parent
J = len(COMMON)


pytestmark = pytest.mark.usefixtures("fake_text")


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def sample(capsys, tiny_diffusion_vae_dir: Path, out: Path, *argv: str) -> np.ndarray:
    rc, stdout, err = cli(capsys, "sample", *argv, "--checkpoint-dir", tiny_diffusion_vae_dir, "--out", out, "--json", "--quiet")
    assert rc == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    arr = np.load(out, allow_pickle=False)
    assert list(arr.shape) == summary["shape"] and arr.dtype == np.float32
    assert np.isfinite(arr).all()
    return arr


# ---- errors ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_missing_checkpoint_subprocess_one_line(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", MOTIONVIZ_CHECKPOINTS=str(tmp_path / "none"))
    r = subprocess.run([sys.executable, "-m", "motionviz", "sample", "--model", "diffusion", "--text", "squat",
                        "--out", str(tmp_path / "x.npy")], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "diffusion" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "x.npy").exists()


BAD = [
    (["sample", "--model", "diffusion", "--exercise", "no-such-exercise"], "--list-exercises"),
    (["sample", "--model", "vae", "--exercise", "ui-prmd:m05"], "--list-exercises"),
    (["sample", "--frames", "0"], "frames"),
    (["sample", "--guidance", "nan"], "guidance"),
    (["sample", "--guidance", "-1"], "guidance"),
    (["sample", "--steps", "2.5"], "steps"),
    (["sample", "--seed", "-3"], "seed"),
    (["sample", "--num", "100"], "number of samples"),
    (["sample", "--sampler", "euler"], "sampler"),
    (["sample", "--text", "x" * 2000], "limit"),
    (["sample", "--model", "vae"], "--exercise"),
    (["sample", "--model", "vae", "--exercise", "m01", "--text", "a squat"], "text"),
    (["sample", "--model", "vae", "--exercise", "kimore:ex1", "--incorrect"], "incorrect"),
    (["sample", "--model", "aegan"], "inpaint"),
    (["sample", "--keep-first", "5"], "--source"),
    (["interpolate", "--model", "diffusion", "--exercise", "m01"], "VAE"),
    (["interpolate", "--exercise", "m01", "--steps", "1"], "steps"),
    (["interpolate", "--exercise", "m01", "--frames", "nan"], "frames"),
    (["interpolate"], "--exercise"),
    (["interpolate", "--exercise", "m01", "--to-exercise", "walk"], "--list-exercises"),
]


@pytest.mark.slow
@pytest.mark.parametrize("argv,needle", BAD, ids=[" ".join(a)[:50] for a, _ in BAD])
def test_bad_input_exits_2_with_one_line(capsys, tiny_diffusion_vae_dir, tmp_path, argv, needle):
    out = tmp_path / "out.npy"
    rc, stdout, err = cli(capsys, *argv, "--checkpoint-dir", tiny_diffusion_vae_dir, "--out", out)
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0], lines[0]
    assert not out.exists()


def test_bad_output_name_and_missing_out(capsys, tiny_diffusion_vae_dir, tmp_path):
    rc, _, err = cli(capsys, "sample", "--checkpoint-dir", tiny_diffusion_vae_dir, "--out", tmp_path / "x.txt")
    assert rc == 2 and ".npy" in err and len(err.strip().splitlines()) == 1
    rc, _, err = cli(capsys, "sample", "--checkpoint-dir", tiny_diffusion_vae_dir)
    assert rc == 2 and "--out" in err


# ---- diffusion ----------------------------------------------------------------------------------
def test_diffusion_shapes_and_determinism(capsys, tiny_diffusion_vae_dir, tmp_path, fake_text):
    args = ["--model", "diffusion", "--text", "slowly raise both arms sideways, then lower them",
            "--frames", "40", "--steps", "4", "--guidance", "2.5", "--num", "2"]
    a = sample(capsys, tiny_diffusion_vae_dir, tmp_path / "a.npy", *args, "--seed", "0")
    sample(capsys, tiny_diffusion_vae_dir, tmp_path / "b.npy", *args, "--seed", "0")
    c = sample(capsys, tiny_diffusion_vae_dir, tmp_path / "c.npy", *args, "--seed", "1")
    assert a.shape == (2, 40, J, 3)
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()
    assert np.abs(a - c).max() > 1e-3                 # another seed, another motion
    assert np.abs(a[0] - a[1]).max() > 1e-3           # the samples of one call differ
    assert fake_text.seen and fake_text.seen[-1].startswith("slowly raise")


def test_diffusion_exercise_incorrect_and_non_ascii_text(capsys, tiny_diffusion_vae_dir, tmp_path, fake_text):
    x = sample(capsys, tiny_diffusion_vae_dir, tmp_path / "x.npy", "--exercise", "ui-prmd:m01", "--incorrect",
               "--frames", "24", "--steps", "3", "--num", "1")
    y = sample(capsys, tiny_diffusion_vae_dir, tmp_path / "y.npy", "--exercise", "Deep squat", "--frames", "24", "--steps", "3")
    assert x.shape == y.shape == (1, 24, J, 3)
    assert np.abs(x - y).max() > 1e-4                 # correct/incorrect is a real condition
    z = sample(capsys, tiny_diffusion_vae_dir, tmp_path / "z.npy", "--text", "lever les bras au-dessus de la tête",
               "--frames", "16", "--steps", "2", "--sampler", "ddpm")
    assert z.shape == (1, 16, J, 3) and "lever les bras au-dessus de la tête" in fake_text.seen
    rc, out, _ = cli(capsys, "sample", "--list-exercises", "--json", "--checkpoint-dir", tiny_diffusion_vae_dir)
    labels = [e["label"] for e in json.loads(out)["exercises"]]
    assert rc == 0 and "ui-prmd:m01" in labels
    assert dict((e["label"], e["title"]) for e in json.loads(out)["exercises"])["ui-prmd:m01"] == "Deep squat"


def test_diffusion_editing_keeps_frames_and_parts(capsys, tiny_diffusion_vae_dir, tmp_path):
    T = 32
    rng = np.random.default_rng(0)
    src = np.repeat(standing_pose()[None], T, axis=0) + rng.normal(0, 0.02, (T, J, 3)).astype(np.float32)
    np.save(tmp_path / "src.npy", src)
    out = sample(capsys, tiny_diffusion_vae_dir, tmp_path / "edit.npy", "--source", tmp_path / "src.npy", "--keep-first", "8",
                 "--keep-last", "4", "--keep-parts", "legs", "--steps", "3", "--num", "2")
    assert out.shape == (2, T, J, 3)
    legs = COMMON.indices(BODY_PARTS["legs"])
    np.testing.assert_allclose(out[:, :8], np.broadcast_to(src[:8], out[:, :8].shape), atol=1e-5)
    np.testing.assert_allclose(out[:, -4:], np.broadcast_to(src[-4:], out[:, -4:].shape), atol=1e-5)
    np.testing.assert_allclose(out[:, :, legs], np.broadcast_to(src[:, legs], out[:, :, legs].shape), atol=1e-5)
    arms = COMMON.indices(BODY_PARTS["arms"])
    assert np.abs(out[:, 8:-4, arms] - src[8:-4, arms]).max() > 1e-3   # the rest was regenerated
    # a (N, T, 15, 3) file written by `sample` is a valid source too
    again = sample(capsys, tiny_diffusion_vae_dir, tmp_path / "edit2.npy", "--source", tmp_path / "edit.npy",
                   "--source-index", "1", "--keep-parts", "torso", "--steps", "2")
    assert again.shape == (1, T, J, 3)
    torso = COMMON.indices(BODY_PARTS["torso"])
    np.testing.assert_allclose(again[0, :, torso], out[1, :, torso], atol=1e-5)


# ---- VAE ------------------------------------------------------------------------------------------
def test_vae_sample_and_interpolate(capsys, tiny_diffusion_vae_dir, tmp_path):
    a = sample(capsys, tiny_diffusion_vae_dir, tmp_path / "a.npy", "--model", "vae", "--exercise", "m01", "--frames", "30",
               "--num", "3", "--seed", "0")
    b = sample(capsys, tiny_diffusion_vae_dir, tmp_path / "b.npy", "--model", "vae", "--exercise", "m01", "--frames", "30",
               "--num", "3", "--seed", "0")
    c = sample(capsys, tiny_diffusion_vae_dir, tmp_path / "c.npy", "--model", "vae", "--exercise", "m01", "--frames", "30",
               "--num", "3", "--seed", "5")
    bad = sample(capsys, tiny_diffusion_vae_dir, tmp_path / "i.npy", "--model", "vae", "--exercise", "m01", "--incorrect",
                 "--frames", "30", "--num", "1", "--seed", "0")
    assert a.shape == (3, 30, J, 3) and np.array_equal(a, b) and np.abs(a - c).max() > 1e-4
    assert np.abs(bad[0] - a[0]).max() > 1e-4

    def interp(name: str, *argv: str) -> np.ndarray:
        out = tmp_path / name
        rc, stdout, err = cli(capsys, "interpolate", "--model", "vae", *argv, "--checkpoint-dir", tiny_diffusion_vae_dir,
                              "--out", out, "--json", "--quiet")
        assert rc == 0, err
        assert json.loads(stdout)["shape"] == [int(v) for v in np.load(out).shape]
        return np.load(out, allow_pickle=False)

    lin = interp("lin.npy", "--exercise", "ui-prmd:m01", "--from-seed", "0", "--to-seed", "1", "--steps", "5",
                 "--frames", "30")
    sph = interp("sph.npy", "--exercise", "ui-prmd:m01", "--from-seed", "0", "--to-seed", "1", "--steps", "5",
                 "--frames", "30", "--spherical")
    assert lin.shape == sph.shape == (5, 30, J, 3) and lin.dtype == np.float32
    # the path starts at the seed-0 sample and ends at the seed-1 sample of the class
    one = sample(capsys, tiny_diffusion_vae_dir, tmp_path / "one.npy", "--model", "vae", "--exercise", "m01", "--frames", "30",
                 "--seed", "1")
    np.testing.assert_allclose(lin[0], a[0], atol=1e-5)
    np.testing.assert_allclose(lin[-1], one[0], atol=1e-5)
    np.testing.assert_allclose(sph[0], lin[0], atol=1e-5)
    assert np.abs(sph[2] - lin[2]).max() > 1e-5
    cls = interp("cls.npy", "--exercise", "m01", "--to-incorrect", "--steps", "3", "--frames", "30")
    np.testing.assert_allclose(cls[-1], bad[0], atol=1e-5)             # correct -> incorrect, same seed
    assert np.array_equal(cls, interp("cls2.npy", "--exercise", "m01", "--to-incorrect", "--steps", "3",
                                      "--frames", "30"))


# ---- helpers ------------------------------------------------------------------------------------
def test_keep_mask_and_resolve_exercise():
    m = keep_mask(10, keep_first=2, keep_last=3, parts=["left arm"])
    assert m.shape == (10, J) and m[:2].all() and m[-3:].all()
    assert m[:, COMMON.index("left_wrist")].all() and not m[5, COMMON.index("right_wrist")]
    for bad in [dict(keep_first=6, keep_last=6), dict(parts=["tail"]), dict(), dict(keep_first=10),
                dict(parts=["upper_body", "lower_body"])]:
        with pytest.raises(UserError):
            keep_mask(10, **bad)
    labels = ["ui-prmd:m01", "ui-prmd:m07", "kimore:ex1", "irds:1", "keraal:1"]
    assert resolve_exercise("UI-PRMD:M01", labels) == "ui-prmd:m01"
    assert resolve_exercise("m07", labels) == "ui-prmd:m07"
    assert resolve_exercise("lifting of the ARMS", labels) == "kimore:ex1"
    assert resolve_exercise("  ", labels) is None
    with pytest.raises(UserError, match="ambiguous"):
        resolve_exercise("1", labels)
    with pytest.raises(UserError, match="list-exercises"):
        resolve_exercise("jump", labels)
    with pytest.raises(UserError, match="without exercise labels"):
        resolve_exercise("m01", [])


def test_vae_interpolate_between_real_motions(capsys, tiny_diffusion_vae_dir, tmp_path):
    rng = np.random.default_rng(3)
    for name in ("a", "b"):
        T = 30 if name == "a" else 36
        j = np.repeat(standing_pose()[None], T, axis=0) + rng.normal(0, 0.02, (T, J, 3)).astype(np.float32)
        np.save(tmp_path / f"{name}.npy", j)
    outs = []
    for k in range(2):
        out = tmp_path / f"p{k}.npy"
        rc, stdout, err = cli(capsys, "interpolate", "--from-motion", tmp_path / "a.npy", "--to-motion",
                              tmp_path / "b.npy", "--steps", "4", "--frames", "20", "--checkpoint-dir", tiny_diffusion_vae_dir,
                              "--out", out, "--json", "--quiet")
        assert rc == 0, err
        assert json.loads(stdout)["to"]["motion"].endswith("b.npy")
        outs.append(np.load(out, allow_pickle=False))
    assert outs[0].shape == (4, 20, J, 3) and np.array_equal(outs[0], outs[1])
    assert np.abs(outs[0][0] - outs[0][-1]).max() > 1e-5
    rc, _, err = cli(capsys, "interpolate", "--from-motion", tmp_path / "missing.npy", "--exercise", "m01",
                     "--checkpoint-dir", tiny_diffusion_vae_dir, "--out", tmp_path / "x.npy")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "missing.npy" in err
