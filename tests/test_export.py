"""motionviz.export: every format writes a readable file that carries the motion, and the ``export`` CLI
verb converts files with one-line errors on bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from motionviz.core.errors import UserError
from motionviz.core.motion import Motion, MotionLabels
from motionviz.core.skeleton import COMMON
from motionviz.data import load_user_file
from motionviz.export import FORMATS, export_motion, render_frames

REPO = Path(__file__).resolve().parents[1]


def _motion(T: int = 24) -> Motion:
    """A small synthetic walk-like motion on the common skeleton: rest pose + swinging limbs."""
    rng = np.random.default_rng(0)
    rest = np.zeros((len(COMMON), 3), np.float32)
    y = {"pelvis": 1.0, "spine": 1.25, "neck": 1.5, "left_shoulder": 1.45, "right_shoulder": 1.45,
         "left_elbow": 1.2, "right_elbow": 1.2, "left_wrist": 0.95, "right_wrist": 0.95, "left_hip": 0.95,
         "right_hip": 0.95, "left_knee": 0.5, "right_knee": 0.5, "left_ankle": 0.08, "right_ankle": 0.08}
    for i, name in enumerate(COMMON.joints):
        rest[i, 1] = y[name]
        rest[i, 0] = 0.18 if name.startswith("left") else (-0.18 if name.startswith("right") else 0.0)
    t = np.arange(T, dtype=np.float32)[:, None, None]
    joints = rest[None] + 0.05 * np.sin(t / 4.0) * rng.standard_normal((1, len(COMMON), 3)).astype(np.float32)
    return Motion(joints.astype(np.float32), COMMON, fps=20.0,
                  labels=MotionLabels(dataset="test", label="test:wave", subject="s1"))


def test_npy_json_bvh_round_trip(tmp_path):
    m = _motion()
    p = export_motion(m, "npy", tmp_path)
    a = np.load(p, allow_pickle=False)
    assert a.dtype == np.float32 and a.shape == m.joints.shape
    np.testing.assert_array_equal(a, m.joints)

    p = export_motion(m, "npz", tmp_path)                  # the array with its rate and skeleton name
    with np.load(p, allow_pickle=False) as z:
        assert sorted(z.files) == ["fps", "joints", "skeleton"] and float(z["fps"]) == m.fps
        np.testing.assert_array_equal(z["joints"], m.joints)
    back = load_user_file(p)
    assert back.fps == m.fps and back.skeleton.name == m.skeleton.name

    p = export_motion(m, "json", tmp_path)
    back = Motion.from_json(p.read_text(encoding="utf-8"))
    assert back.skeleton.joints == m.skeleton.joints and back.fps == m.fps
    np.testing.assert_allclose(back.joints, m.joints, atol=1e-4)

    p = export_motion(m, "bvh", tmp_path)
    assert p.read_text().startswith("HIERARCHY")
    back = load_user_file(p)
    assert back.num_frames == m.num_frames
    # our BVH writer stores exact positions: the parser gives them back (centimetres -> metres)
    idx = [back.skeleton.joints.index(j) for j in m.skeleton.joints]
    np.testing.assert_allclose(back.joints[:, idx], m.joints, atol=2e-3)


def test_html_has_real_animation_frames(tmp_path):
    m = _motion()
    p = export_motion(m, "html", tmp_path)
    html = p.read_text(encoding="utf-8")
    assert "<html" in html.lower() and "plotly" in html.lower()
    assert "frames" in html and "animate" in html
    import re
    assert not re.search(r"<script[^>]+src=[\"']https?:", html)  # works offline: plotly.js is inline
    assert len(html) > 1_000_000                                  # (the bundle is ~4.5 MB)


@pytest.mark.slow
def test_gif_and_mp4_are_readable_videos(tmp_path):
    import imageio.v3 as iio

    m = _motion(T=12)
    frames, fps = render_frames(m, size=96)
    assert frames.shape[0] == 12 and frames.shape[1:] == (96, 96, 3) and frames.dtype == np.uint8
    assert fps == pytest.approx(20.0)
    assert frames[0].std() > 0 and not np.array_equal(frames[0], frames[-1])  # something is drawn, it moves

    gif = export_motion(m, "gif", tmp_path)
    g = iio.imread(gif, index=None)
    assert g.shape[0] == 12
    mp4 = export_motion(m, "mp4", tmp_path)
    import imageio.v2 as imageio
    reader = imageio.get_reader(mp4, format="FFMPEG")
    n = sum(1 for _ in reader)
    reader.close()
    assert n == 12


def test_bad_inputs_are_user_errors(tmp_path):
    m = _motion()
    with pytest.raises(UserError, match="unknown export format"):
        export_motion(m, "fbx", tmp_path)
    assert set(FORMATS) == {"npy", "npz", "json", "bvh", "gif", "mp4", "html", "glb"}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "motionviz", "export", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_cli_converts_and_reports_errors(tmp_path):
    src = tmp_path / "walk.npy"
    np.save(src, _motion().joints)
    r = _cli("--input", str(src), "--format", "bvh", "--out", str(tmp_path / "walk.bvh"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "walk.bvh").is_file() and "wrote" in r.stdout

    r = _cli("--input", str(tmp_path / "missing.npy"), "--format", "json")
    assert r.returncode == 2 and r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1

    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not numpy at all")
    r = _cli("--input", str(bad), "--format", "json")
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.strip().startswith("error:")

    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((10, 15, 3), np.nan, np.float32))
    r = _cli("--input", str(nan), "--format", "json")
    assert r.returncode == 2 and "Traceback" not in r.stderr


@pytest.mark.slow
def test_cli_argument_errors_are_one_line():
    for args in (["export", "--bogus"], ["nope"], ["export", "--input"]):
        r = subprocess.run([sys.executable, "-m", "motionviz", *args], cwd=REPO, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2, args
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), (args, r.stderr)
