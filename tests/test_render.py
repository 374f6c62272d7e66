"""Figure structure: restyle sliders that move every trace, equal fixed axes, hover names, grids."""

from __future__ import annotations

import json
import re

import numpy as np
import plotly.graph_objects as go
import pytest

from motionviz.core.motion import Motion, MotionLabels
from motionviz.core.skeleton import COMMON, KINECT
from motionviz.viz import render


def _walker(T: int = 40, seed: int = 0, skeleton=COMMON) -> Motion:
    """A stick figure standing on y = 0 that walks 1 m along +Z and swings its left wrist."""
    rng = np.random.default_rng(seed)
    base = rng.normal(scale=0.15, size=(len(skeleton), 3))
    base[:, 1] = np.linspace(0.05, 1.6, len(skeleton))
    j = np.repeat(base[None], T, axis=0)
    j[..., 2] += np.linspace(0, 1.0, T)[:, None]
    if skeleton is COMMON:
        j[:, COMMON.index("left_wrist"), 0] += 0.2 * np.sin(np.linspace(0, 3, T))
    return Motion(j.astype(np.float32), skeleton, 20.0, MotionLabels(label="test:walk"))


def _ranges(scene) -> np.ndarray:
    return np.array([scene.xaxis.range, scene.yaxis.range, scene.zaxis.range], dtype=float)


def test_motion_figure_structure():
    m = _walker(40)
    fig = render.motion_figure(m, title="walk", max_steps=25)
    assert isinstance(fig, go.Figure) and not fig.frames
    bones, joints, floor = fig.data
    assert bones.mode == "lines" and joints.mode == "markers"
    n_b = len(COMMON.bones)
    assert len(bones.x) == 3 * n_b and sum(v is None for v in bones.x) == n_b   # None separators
    assert list(joints.hovertext) == list(COMMON.joints)
    # left and right sides get different colours
    cols = list(joints.marker.color)
    assert cols[COMMON.index("left_knee")] != cols[COMMON.index("right_knee")]
    assert cols[COMMON.index("left_knee")] == cols[COMMON.index("left_elbow")]
    # the floor is at y = 0 (scene z)
    assert {z for z in floor.z if z is not None} == {0.0}
    # slider: one restyle step per shown frame, capped at max_steps, all coordinates for both traces
    (slider,) = fig.layout.sliders
    assert len(slider.steps) == 25
    assert slider.steps[0].label == "0" and slider.steps[-1].label == "39"
    for st in slider.steps:
        assert st.method == "restyle"
        upd, ids = st.args
        assert list(ids) == [0, 1]
        assert [len(v) for v in upd["x"]] == [3 * n_b, len(COMMON)]
        assert [len(v) for v in upd["z"]] == [3 * n_b, len(COMMON)]
    # the step for frame t carries frame t's joints in scene coordinates (x, -z, y), rounded to mm
    t = int(slider.steps[12].label)
    upd = slider.steps[12].args[0]
    np.testing.assert_allclose(upd["x"][1], m.joints[t, :, 0], atol=6e-4)
    np.testing.assert_allclose(upd["y"][1], -m.joints[t, :, 2], atol=6e-4)
    np.testing.assert_allclose(upd["z"][1], m.joints[t, :, 1], atol=6e-4)
    assert all(len(re.sub(r"^-?\d+\.?", "", repr(v))) <= 3 for v in upd["x"][1])
    # equal, fixed axes: same scale on every axis, ranges enclose the whole sequence
    sc = fig.layout.scene
    r = _ranges(sc)
    ext = r[:, 1] - r[:, 0]
    ar = np.array([sc.aspectratio.x, sc.aspectratio.y, sc.aspectratio.z])
    np.testing.assert_allclose(ext / ext.max(), ar, rtol=1e-6)
    pts = np.stack([m.joints[..., 0], -m.joints[..., 2], m.joints[..., 1]], -1).reshape(-1, 3)
    assert (pts >= r[:, 0]).all() and (pts <= r[:, 1]).all()
    assert fig.layout.uirevision and sc.uirevision
    assert "frame" in slider.currentvalue.prefix


def test_short_motion_and_single_frame():
    fig = render.motion_figure(_walker(10), max_steps=150)
    assert len(fig.layout.sliders[0].steps) == 10
    one = render.motion_figure(_walker(1))
    assert not one.layout.sliders and len(one.data) == 3


def test_nan_joints_are_dropped():
    m = _walker(5)
    j = m.joints.copy()
    wrist = COMMON.index("left_wrist")
    j[2, wrist] = np.nan
    fig = render.motion_figure(m.with_joints(j), max_steps=5)
    upd = fig.layout.sliders[0].steps[2].args[0]
    assert upd["x"][1][wrist] is None
    # the elbow->wrist bone loses its wrist end (so it is not drawn); other bones stay
    b = [k for k, (p, c) in enumerate(COMMON.bones) if c == wrist][0]
    assert upd["x"][0][3 * b + 1] is None and upd["x"][0][3 * b] is not None
    assert sum(v is None for v in upd["x"][0]) == len(COMMON.bones) + 1
    json.dumps(fig.to_plotly_json(), default=str)


def test_overlay_one_slider_moves_both():
    a, b = _walker(30, 0), _walker(20, 1)
    fig = render.overlay_figure(a, b, names=("input", "output"))
    names = [tr.name for tr in fig.data[:4]]
    assert names == ["input", "input", "output", "output"]
    assert fig.data[0].showlegend and fig.data[2].showlegend
    assert fig.data[0].line.colorscale != fig.data[2].line.colorscale
    (slider,) = fig.layout.sliders
    assert len(slider.steps) == 30
    last = slider.steps[-1].args
    assert list(last[1]) == [0, 1, 2, 3]
    # the shorter motion holds its last frame
    np.testing.assert_allclose(last[0]["x"][3], b.joints[-1, :, 0], atol=6e-4)
    np.testing.assert_allclose(last[0]["x"][1], a.joints[-1, :, 0], atol=6e-4)


@pytest.mark.slow
def test_grid_shared_slider():
    ms = [_walker(12, s) for s in range(3)] + [_walker(8, 9, KINECT)]
    fig = render.grid_figure(ms, titles=["a", "b", "c", "d"], cols=2, max_steps=6)
    scenes = [k for k in fig.layout if k.startswith("scene")]
    assert len(scenes) == 4
    moving = [tr for tr in fig.data if tr.name != "floor"]
    assert len(moving) == 8
    assert {tr.scene for tr in moving} == {"scene", "scene2", "scene3", "scene4"}
    (slider,) = fig.layout.sliders
    assert len(slider.steps) == 6
    for st in slider.steps:
        assert list(st.args[1]) == list(range(8))
        assert len(st.args[0]["x"]) == 8
    # same scale in every scene
    exts = [np.diff(_ranges(fig.layout[s]), axis=1).ravel() for s in scenes]
    for e in exts[1:]:
        np.testing.assert_allclose(e, exts[0], rtol=1e-9)


@pytest.mark.slow
def test_strip_figure_spreads_poses():
    m = _walker(30)
    fig = render.strip_figure(m, num_keyframes=5)
    joint_traces = [tr for tr in fig.data if tr.mode == "markers"]
    assert len(joint_traces) == 5 and not fig.layout.sliders
    centres = [np.mean(tr.x) for tr in joint_traces]
    assert np.all(np.diff(centres) > 0.5)
    fig2 = render.strip_figure([_walker(10, s) for s in range(4)], titles=list("abcd"))
    texts = [tr for tr in fig2.data if tr.mode == "text"]
    assert list(texts[0].text) == list("abcd")


def test_bar_figures():
    fig = render.joint_error_figure(COMMON.joints, np.arange(15) * 0.5, unit="cm")
    assert len(fig.data) == 1 and list(fig.data[0].x) == list(COMMON.joints)
    assert fig.data[0].y[3] == pytest.approx(1.5)
    with pytest.raises(ValueError):
        render.joint_error_figure(["a", "b"], [1.0])
    table = {"diffusion": {"FID": (1.0, 0.2), "accuracy": 0.8},
             "vae": {"FID": (2.0, 1.5, 2.5), "accuracy": (0.7, 0.05)}}
    fig = render.metric_bar_figure(table)
    assert len(fig.data) == 4
    fid_vae = [tr for tr in fig.data if tr.name == "vae" and tr.xaxis == "x"][0]
    assert fid_vae.y[0] == 2.0 and fid_vae.error_y.arrayminus[0] == pytest.approx(0.5)
    assert render.error_bar_figure is render.metric_bar_figure


@pytest.mark.slow
def test_standalone_html_has_frames_and_play():
    html = render.standalone_html([_walker(12)])
    assert html.startswith("<html>") or "<html" in html[:200]
    assert "Plotly.addFrames" in html or '"frames"' in html
    assert "Play" in html and "animate" in html
    assert len(html) > 1_000_000     # plotly.js is inline: works offline
    html2 = render.standalone_html([_walker(12, 0), _walker(9, 1)], titles=["a", "b"])
    assert "scene2" in html2
