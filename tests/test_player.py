"""The player payload (motionviz.ui.player): encoding, shared scale, floor, roles and legend, caps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from motionviz.core.motion import Motion
from motionviz.core.skeleton import COMMON
from motionviz.ui import player as P
from motionviz.viz import payload as P_V


def _motion(T: int = 30, lift: float = 0.0, seed: int = 0, fps: float = 20.0) -> Motion:
    rng = np.random.default_rng(seed)
    j = rng.normal(0, 0.2, (T, len(COMMON), 3)).astype(np.float32)
    j[..., 1] = np.abs(j[..., 1]) + np.linspace(0, 1.6, len(COMMON))[None, :] + lift
    return Motion(j, COMMON, fps)


def test_positions_round_trip_to_the_millimetre_and_nan_stays_missing():
    m = _motion()
    j = m.joints.copy()
    j[3, 4] = np.nan
    m = m.with_joints(j)
    pay = P.player_payload([m])
    back = P_V.decode_positions(pay["motions"][0]["pos"], len(COMMON))
    assert back.shape == m.joints.shape
    assert np.isnan(back[3, 4]).all() and np.isfinite(np.delete(back.reshape(-1, 3), 3 * 15 + 4, 0)).all()
    ok = np.isfinite(m.joints)
    assert np.abs(back[ok] - m.joints[ok]).max() <= 0.0005 + 1e-6


def test_one_scale_for_all_motions_and_floor_at_zero():
    standing, crouched = _motion(seed=1), _motion(seed=2)
    crouched = crouched.with_joints(crouched.joints * np.array([1, 0.5, 1], dtype=np.float32))
    pay = P.player_payload([standing, crouched], titles=["standing", "crouched"])
    assert pay["scale"]["height"] == pytest.approx(float(np.nanmax(standing.joints[..., 1])), abs=2e-3)
    # raw camera coordinates (everything ~1 m below the floor) are lifted, the same for every motion
    low = [m.with_joints(m.joints - np.array([0, 1.0, 0], dtype=np.float32)) for m in (standing, crouched)]
    pay2 = P.player_payload(low)
    assert pay2["floor_offset"] > 0.5
    y = [P_V.decode_positions(it["pos"], 15)[..., 1] for it in pay2["motions"]]
    y0 = [P_V.decode_positions(it["pos"], 15)[..., 1] for it in pay["motions"]]
    assert np.allclose(y[0] - y[1], y0[0] - y0[1], atol=2e-3)     # relative heights kept


def test_roles_legend_titles_notices_and_side_colours():
    ms = [_motion(seed=i) for i in range(3)]
    pay = P.player_payload(ms, titles=["a", "b", "c"], roles=["correct", "incorrect", None],
                           notices=["", "text not used", ""])
    labels = [e["label"] for e in pay["legend"]]
    assert "subject's left" in labels and "subject's right" in labels
    assert "correct execution" in labels and "incorrect execution" in labels
    assert pay["motions"][2]["color"] is None and pay["motions"][0]["color"] != pay["motions"][1]["color"]
    assert [m["title"] for m in pay["motions"]] == ["a", "b", "c"]
    assert pay["motions"][1]["notice"] == "text not used"
    sk = pay["skeletons"][0]
    assert sk["side"][COMMON.index("left_knee")] == 0 and sk["side"][COMMON.index("right_knee")] == 2
    assert sk["head"][0] == COMMON.index("neck") and sk["head"][2] > 0      # no head joint: above the neck
    # unknown roles (model names) get distinct colours and appear in the legend as they are
    pay = P.player_payload(ms[:2], roles=["my-model", "other"])
    assert pay["motions"][0]["color"] != pay["motions"][1]["color"]
    assert {"my-model", "other"} <= {e["label"] for e in pay["legend"]}


def test_caps_frames_and_motions_and_says_so():
    long = _motion(T=P.MAX_PLAYER_FRAMES * 3, fps=60)
    pay = P.player_payload([long])
    it = pay["motions"][0]
    assert it["frames"] == P.MAX_PLAYER_FRAMES
    assert it["duration"] == pytest.approx(long.duration, abs=1e-3)
    assert (it["frames"] - 1) / it["fps"] == pytest.approx((long.num_frames - 1) / 60, rel=1e-3)
    many = [_motion(T=5, seed=i) for i in range(P.MAX_PLAYER_MOTIONS + 3)]
    pay = P.player_payload(many)
    assert len(pay["motions"]) == P.MAX_PLAYER_MOTIONS and "3 more motions not shown" in pay["caption"]


def test_value_is_json_and_rejects_nonsense():
    v = P.player_value(_motion(), titles=["x"], layout="overlay")
    d = json.loads(v)
    assert d["format"] == "motionviz-player/1" and d["layout"] == "overlay"
    assert P.player_value(None) is None
    with pytest.raises(ValueError):
        P.player_payload([])
    with pytest.raises(ValueError):
        P.player_payload([_motion()], layout="spiral")


def test_mesh_is_carried_with_its_faces():
    m = _motion(T=10)
    verts = np.random.default_rng(0).normal(size=(10, 7, 3))
    faces = np.array([[0, 1, 2], [2, 3, 4]])
    pay = P.player_payload([m], meshes=[(verts, faces)])
    mesh = pay["motions"][0]["mesh"]
    assert mesh["vertices"] == 7 and mesh["frames"] == 10
    back = P_V.decode_positions(mesh["pos"], 7)
    assert np.abs(back - verts).max() <= 0.0006
    import base64
    assert np.frombuffer(base64.b64decode(mesh["faces"]), "<u4").reshape(-1, 3).tolist() == faces.tolist()


def test_highlighted_joints_by_name_or_index_and_legend():
    ms = [_motion(seed=0), _motion(seed=1)]
    pay = P.player_payload(ms, roles=["correct", "incorrect"],
                           highlights=[["left_knee", "nonsense", 3], None], highlight_label="joints that differ most")
    assert pay["motions"][0]["highlight"] == sorted({COMMON.index("left_knee"), 3})
    assert "highlight" not in pay["motions"][1]
    assert (P.HIGHLIGHT_COLOR, "large gold dots: joints that differ most") in [(e["color"], e["label"])
                                                                               for e in pay["legend"]]
    assert not any("gold" in e["label"] for e in P.player_payload(ms)["legend"])


def test_human_joint_and_part_labels():
    assert P.joint_label("left_knee") == "Left knee" and P.joint_label("right_arm") == "Right arm"
    assert P.part_label("arms") == "Both arms" and P.part_label("none") == "None"
    assert "_" not in P.part_label("upper_body")


def _colour_pixels(img: np.ndarray, rgb: tuple[int, int, int], tol: int = 40) -> int:
    return int((np.abs(img.astype(int) - np.array(rgb)).max(-1) < tol).sum())


@pytest.mark.slow
def test_view_export_draws_the_grid_or_overlay_as_shown(tmp_path):
    from motionviz.core.errors import UserError
    from motionviz.export import render_view_frames, save_view

    ms = [_motion(T=21, seed=i) for i in range(3)]
    pay = P.player_payload(ms, titles=["seed 1 · sample 1 of 3", "b", "c"], roles=["diffusion", "vae", None],
                           highlights=[["left_knee"], None, None])
    frames, fps = render_view_frames(pay)
    N = int(ms[0].duration * 20 + 1e-6) + 1                              # the player's time line at 20 fps
    assert frames.shape[0] == N and fps == pytest.approx(20.0)
    n, H, W, _ = frames.shape
    assert W == 3 * (W // 3) and W >= 3 * 200                            # one cell per motion, side by side
    cells = [frames[:, : H - 22, k * (W // 3):(k + 1) * (W // 3)] for k in range(3)]
    blue, purple = P.ROLE_COLORS["diffusion"][0], P.ROLE_COLORS["vae"][0]
    hexrgb = lambda c: tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))    # noqa: E731
    assert _colour_pixels(cells[0], hexrgb(blue)) > 50 and _colour_pixels(cells[1], hexrgb(purple)) > 50
    assert _colour_pixels(cells[2], hexrgb(P.LEFT)) > 50                 # no role: side colours
    gold = hexrgb(P.HIGHLIGHT_COLOR)
    assert _colour_pixels(cells[0], gold, 25) > 20 and _colour_pixels(cells[1], gold, 25) < 5
    assert frames[0].tobytes() != frames[-1].tobytes()                  # it moves
    over, _ = render_view_frames(pay, {"layout": "overlay", "az": 90, "el": 8})
    assert over.shape[2] < W and _colour_pixels(over, hexrgb(blue)) > 50 and _colour_pixels(over, hexrgb(purple)) > 50
    import imageio.v3 as iio
    gif = save_view(pay, tmp_path / "v.gif")
    assert iio.imread(gif, index=None).shape[:3] == (N, H, W)
    mp4 = save_view(pay, tmp_path / "v.mp4", view={"layout": "overlay"})
    assert mp4.suffix == ".mp4" and mp4.stat().st_size > 1000
    with pytest.raises(UserError):
        save_view(pay, tmp_path / "v.png")


@pytest.mark.slow
def test_view_export_checks_what_the_browser_sends(tmp_path, monkeypatch):
    from motionviz.core.errors import UserError
    from motionviz.ui import common

    monkeypatch.setattr(common, "export_dir", lambda: tmp_path)
    value = P.player_value([_motion(T=5, seed=i) for i in range(2)], titles=["a", "b"])
    assert P.save_view_file(value, "gif", '{"layout": "overlay"}').endswith("motionviz-overlay.gif")
    bad = json.loads(value)
    bad["motions"][0]["frames"] = 500                                   # does not match its positions
    too_many = P.player_value([_motion(T=2, seed=i) for i in range(P.MAX_VIEW_MOTIONS + 1)])
    colour = json.loads(value)
    colour["motions"][0]["color"] = "red; url(x)"
    for v in (None, "", "{", json.dumps(bad), too_many, json.dumps(colour), json.dumps({"format": "x"})):
        with pytest.raises(UserError):
            P.save_view_file(v, "gif")
