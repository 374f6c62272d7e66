"""The player payload (motionviz.ui.player): encoding, shared scale, floor, roles and legend, caps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from motionviz.motion import Motion
from motionviz.skeleton import COMMON
from motionviz.ui import player as P


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
    back = P.decode_positions(pay["motions"][0]["pos"], len(COMMON))
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
    y = [P.decode_positions(it["pos"], 15)[..., 1] for it in pay2["motions"]]
    y0 = [P.decode_positions(it["pos"], 15)[..., 1] for it in pay["motions"]]
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
    back = P.decode_positions(mesh["pos"], 7)
    assert np.abs(back - verts).max() <= 0.0006
    import base64
    assert np.frombuffer(base64.b64decode(mesh["faces"]), "<u4").reshape(-1, 3).tolist() == faces.tolist()
