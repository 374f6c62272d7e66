"""Body meshes: the shipped Anny asset, posing from common-skeleton joints (known answers), the browser
figure (mesh and skeleton on one restyle slider), GLB/OBJ exports, SMPL through a randomly generated
model file in the SMPL layout, the benchmark section and the "Body mesh & video" tab."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from motionviz import mesh
from motionviz.core.errors import UserError
from motionviz.core.motion import Motion, MotionError
from motionviz.core.skeleton import COMMON
from motionviz.evaluation import mesh as mesh_B
from motionviz.mesh import animation as mesh_A
from motionviz.mesh import decimation as mesh_D
from motionviz.mesh import export as mesh_E
from motionviz.mesh import figure as mesh_F
from motionviz.mesh import pose as mesh_P
from motionviz.mesh import smpl as mesh_S


@pytest.fixture(scope="module")
def body() -> mesh.Body:
    return mesh.anny_body()


@pytest.fixture(scope="module")
def demo(body) -> Motion:
    return mesh_A.demo_motion(40, body=body)


# ---- the asset ----------------------------------------------------------------------------------------
def test_asset_is_small_and_consistent(body):
    assert mesh.ASSET_PATH.stat().st_size < 1_000_000
    assert body.vertices.shape == (13718, 3) and body.faces.shape[1] == 3
    assert body.faces.min() == 0 and body.faces.max() == body.num_vertices - 1
    assert body.weights.shape == (body.num_vertices, len(mesh.SEGMENTS))
    np.testing.assert_allclose(body.weights.sum(1), 1.0, atol=1e-3)
    assert 2000 <= len(body.preview_faces) <= 3000
    assert body.preview_faces.max() == len(body.preview_index) - 1
    assert body.info["source"] == "anny" and "CC0" in body.info["licence"]
    # standing adult, Y-up, facing +Z: head above the ankles, left shoulder at +X
    ix = COMMON.index
    assert body.joints[ix("neck"), 1] - body.joints[ix("left_ankle"), 1] > 1.2
    assert body.joints[ix("left_shoulder"), 0] > 0 > body.joints[ix("right_shoulder"), 0]


@pytest.mark.slow
def test_preview_decimation_is_reproducible(body):
    """The shipped preview is what decimate() computes from the shipped full mesh (the full mesh and
    weights come from build_anny_body(), i.e. `python -m motionviz.mesh`)."""
    idx, faces = mesh_D.decimate(body.vertices, body.faces, body.weights.argmax(1), mesh_D.PREVIEW_FACES)
    np.testing.assert_array_equal(idx, body.preview_index)
    np.testing.assert_array_equal(faces, body.preview_faces)


def test_decimate_known_answers():
    # a 2x2-quad grid: already small -> unchanged; clustering never merges different labels
    v = np.array([[x, y, 0.0] for y in range(3) for x in range(3)])
    f = np.array([[0, 1, 4], [0, 4, 3], [1, 2, 5], [1, 5, 4], [3, 4, 7], [3, 7, 6], [4, 5, 8], [4, 8, 7]])
    idx, faces = mesh_D.decimate(v, f, None, 100)
    assert len(idx) == 9 and len(faces) == 8
    g = np.stack(np.meshgrid(np.linspace(0, 1, 30), np.linspace(0, 1, 30)), -1).reshape(-1, 2)
    v = np.c_[g, np.zeros(len(g))]
    quads = [(r * 30 + c, r * 30 + c + 1, (r + 1) * 30 + c + 1, (r + 1) * 30 + c) for r in range(29) for c in range(29)]
    f = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])
    idx, faces = mesh_D.decimate(v, f, None, 200)
    assert 100 <= len(faces) <= 300 and len(idx) < len(v)
    assert set(np.unique(faces)) == set(range(len(idx)))


# ---- posing ---------------------------------------------------------------------------------------------
def test_pose_reproduces_the_joints(body, demo):
    X, posed = mesh_P.pose_anny(body, demo.joints)
    assert X.shape == (demo.num_frames, len(mesh.SEGMENTS), 3, 4)
    np.testing.assert_allclose(posed, demo.joints, atol=1e-3)
    # rest pose in -> identity transforms for every segment
    Xr, _ = mesh_P.pose_anny(body, body.joints[None])
    np.testing.assert_allclose(Xr[0, :, :, :3], np.broadcast_to(np.eye(3), (len(mesh.SEGMENTS), 3, 3)), atol=1e-4)
    np.testing.assert_allclose(body.skin(Xr)[0], body.vertices, atol=1e-4)


def test_proportions_follow_the_motion(body, demo):
    big = demo.with_joints(demo.joints * 1.25)
    a, b = mesh_A.mesh_animation(demo, "anny"), mesh_A.mesh_animation(big, "anny")
    h = lambda v: np.ptp(v[..., 1], axis=-1)                                # noqa: E731
    ratio = h(b.vertices(frames=[0])) / h(a.vertices(frames=[0]))
    assert ratio == pytest.approx(1.25, rel=0.02)
    assert b.joint_error() < 2e-3
    # longer forearms only: the wrist moves, the hand is carried along, the body keeps its height
    j = demo.joints.copy()
    for side in ("left", "right"):
        e, w = COMMON.index(f"{side}_elbow"), COMMON.index(f"{side}_wrist")
        j[:, w] = j[:, e] + 1.3 * (j[:, w] - j[:, e])
    long_arms = mesh_A.mesh_animation(demo.with_joints(j), "anny")
    assert long_arms.joint_error() < 2e-3


def test_real_motion_pose_error(data_root):
    from motionviz.data import load_dataset

    m = load_dataset("ui-prmd", data_root, limit=1)[0].retarget(COMMON).resample(20).normalise()
    anim = mesh_A.mesh_animation(m, "anny")
    assert anim.joint_error() < 0.03                                  # bone-length noise only
    v = anim.vertices(frames=[0])[0]
    assert v[:, 1].min() == pytest.approx(np.nanmin(m.joints[0, :, 1]), abs=0.12)   # feet near the floor


def test_missing_joints_and_errors(body, demo):
    j = demo.joints.copy()
    j[5:9, COMMON.index("left_wrist")] = np.nan                      # a gap: interpolated
    j[:, COMMON.index("right_elbow")] = np.nan                       # never seen: rest offset
    anim = mesh_A.mesh_animation(demo.with_joints(j), "anny")
    assert np.isfinite(anim.vertices(preview=True)).all()
    j2 = demo.joints.copy()
    j2[:, COMMON.index("pelvis")] = np.nan
    with pytest.raises(MotionError, match="pelvis"):
        mesh_A.mesh_animation(demo.with_joints(j2), "anny")
    with pytest.raises(UserError, match="unknown body"):
        mesh_A.mesh_animation(demo, "robot")


def test_animation_is_cached(demo):
    a = mesh_A.mesh_animation(demo, "anny")
    assert mesh_A.mesh_animation(demo.with_labels(label="other"), "anny") is a      # same joints + fps
    assert mesh_A.mesh_animation(demo.with_joints(demo.joints + 0.01), "anny") is not a


# ---- figure ---------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("layout", ["side", "overlay"])
def test_figure_moves_mesh_and_skeleton_together(demo, layout):
    from motionviz.viz.render import figure_json_size

    fig = mesh_F.mesh_figure(demo, body="anny", layout=layout, max_steps=10)
    kinds = [t.type for t in fig.data]
    assert kinds[:3] == ["scatter3d", "scatter3d", "mesh3d"]
    m3 = fig.data[2]
    anim = mesh_A.mesh_animation(demo, "anny")
    assert len(m3.x) == len(anim.body.preview_index) and len(m3.i) == len(anim.body.preview_faces)
    assert m3.scene == ("scene2" if layout == "side" else "scene")
    steps = fig.layout.sliders[0].steps
    assert len(steps) == 10 and steps[-1].label == str(demo.num_frames - 1)
    args, ids = steps[-1].args
    assert list(ids) == [0, 1, 2]
    v = anim.vertices(preview=True, frames=[demo.num_frames - 1])[0]
    # scene coordinates (x, -z, y), mm rounding
    np.testing.assert_allclose(args["x"][2], v[:, 0], atol=6e-4)
    np.testing.assert_allclose(args["y"][2], -v[:, 2], atol=6e-4)
    np.testing.assert_allclose(args["z"][2], v[:, 1], atol=6e-4)
    assert figure_json_size(fig) < 600_000
    with pytest.raises(UserError, match="layout"):
        mesh_F.mesh_figure(demo, layout="stacked")


# ---- exports --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_export_frame_obj_glb(demo, tmp_path):
    import trimesh

    anim = mesh_A.mesh_animation(demo, "anny")
    for ext in ("obj", "glb"):
        p = mesh_E.export_frame(anim, 7, tmp_path / f"f.{ext}")
        m = trimesh.load(p, force="mesh", process=False)
        assert len(m.vertices) == anim.body.num_vertices and len(m.faces) == len(anim.body.faces)
        np.testing.assert_allclose(np.asarray(m.vertices), anim.vertices(frames=[7])[0], atol=1e-5)
    with pytest.raises(UserError):
        mesh_E.export_frame(anim, 999, tmp_path / "x.glb")
    with pytest.raises(UserError):
        mesh_E.export_frame(anim, 0, tmp_path / "x.stl")


def _read_glb(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    magic, version, total = struct.unpack("<4sII", data[:12])
    assert magic == b"glTF" and version == 2 and total == len(data)
    jlen, jtype = struct.unpack("<I4s", data[12:20])
    assert jtype == b"JSON"
    gltf = json.loads(data[20:20 + jlen])
    blen, btype = struct.unpack("<I4s", data[20 + jlen:28 + jlen])
    assert btype == b"BIN\x00"
    return gltf, data[28 + jlen:28 + jlen + blen]


def test_export_sequence_glb_morph_animation(demo, tmp_path):
    import trimesh

    anim = mesh_A.mesh_animation(demo, "anny")
    p = mesh_E.export_sequence(anim, tmp_path / "seq.glb", max_frames=5)
    gltf, blob = _read_glb(p)
    prim = gltf["meshes"][0]["primitives"][0]
    assert len(prim["targets"]) == 4 and gltf["extras"]["frames"] == [0, 10, 20, 29, 39]
    sampler = gltf["animations"][0]["samplers"][0]
    times_acc = gltf["accessors"][sampler["input"]]
    assert times_acc["count"] == 5 and times_acc["max"][0] == pytest.approx(39 / demo.fps)
    # base + target k = frame k (read the binary back)
    def acc(i):
        a = gltf["accessors"][i]
        view = gltf["bufferViews"][a["bufferView"]]
        return np.frombuffer(blob, np.float32, a["count"] * 3, view["byteOffset"]).reshape(-1, 3)
    base = acc(prim["attributes"]["POSITION"])
    last = base + acc(prim["targets"][-1]["POSITION"])
    np.testing.assert_allclose(last, anim.vertices(frames=[39])[0], atol=1e-5)
    m = trimesh.load(p, force="mesh", process=False)                        # a standard GLB reader opens it
    assert len(m.vertices) == anim.body.num_vertices
    with pytest.raises(UserError):
        mesh_E.export_sequence(anim, tmp_path / "seq.obj")


@pytest.mark.slow
def test_export_sequence_obj_zip(demo, tmp_path):
    import io
    import zipfile

    import trimesh

    anim = mesh_A.mesh_animation(demo, "anny")
    p = mesh_E.export_sequence(anim, tmp_path / "seq.zip", max_frames=3)
    with zipfile.ZipFile(p) as zf:
        names = sorted(zf.namelist())
        assert names == ["frame_0000.obj", "frame_0020.obj", "frame_0039.obj", "frames.json"]
        m = trimesh.load(io.BytesIO(zf.read("frame_0020.obj")), file_type="obj", process=False)
        assert json.loads(zf.read("frames.json"))["frames"] == [0, 20, 39]
    np.testing.assert_allclose(np.asarray(m.vertices), anim.vertices(frames=[20])[0], atol=1e-5)


# ---- SMPL through a random model file in the SMPL layout -----------------------------------------------
_SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
_SMPL_REST = np.array([
    [0, 0, 0], [.09, -.08, 0], [-.09, -.08, 0], [0, .1, 0], [.1, -.47, 0], [-.1, -.47, 0], [0, .23, 0],
    [.1, -.87, 0], [-.1, -.87, 0], [0, .28, 0], [.1, -.92, .12], [-.1, -.92, .12], [0, .5, 0],
    [.07, .42, 0], [-.07, .42, 0], [0, .6, .02], [.17, .44, 0], [-.17, .44, 0], [.44, .44, 0], [-.44, .44, 0],
    [.68, .44, 0], [-.68, .44, 0], [.76, .44, 0], [-.76, .44, 0]])


def _fake_smpl(path: Path, seed: int = 0) -> Path:
    """A tiny random model with SMPL's keys, shapes and kinematic tree (4 vertices per joint)."""
    g = np.random.default_rng(seed)
    tet = np.array([[.02, 0, 0], [-.01, .017, 0], [-.01, -.017, 0], [0, 0, .02]])
    v = (_SMPL_REST[:, None] + tet[None]).reshape(-1, 3)                         # (96, 3)
    f = np.array([[0, 1, 2], [0, 1, 3], [1, 2, 3], [0, 2, 3]])
    faces = np.concatenate([f + 4 * j for j in range(24)])
    weights = np.repeat(np.eye(24), 4, axis=0)                                   # (96, 24)
    Jreg = weights.T / 4.0                                                        # joint = mean of its vertices
    kin = np.array([[4294967295] + _SMPL_PARENTS[1:], list(range(24))], dtype=np.int64)
    np.savez(path, v_template=v, shapedirs=0.003 * g.standard_normal((96, 3, 10)),
             posedirs=0.001 * g.standard_normal((96, 3, 207)), J_regressor=Jreg, weights=weights,
             kintree_table=kin, f=faces.astype(np.uint32))
    return path


@pytest.mark.slow
def test_smpl_from_a_random_model_file(tmp_path, monkeypatch, demo):
    d = tmp_path / "models"                                                      # smplx's layout
    (d / "smpl").mkdir(parents=True)
    monkeypatch.delenv(mesh_S.SMPL_ENV, raising=False)
    assert mesh_A.body_choices() == ["anny"] and not mesh_S.smpl_available()
    with pytest.raises(UserError, match=mesh_S.SMPL_ENV):
        mesh_S.smpl_body()
    _fake_smpl(d / "smpl" / "SMPL_NEUTRAL.npz")
    assert mesh_S.smpl_available(d / "smpl") and mesh_S.smpl_available(d / "smpl" / "SMPL_NEUTRAL.npz")
    monkeypatch.setenv(mesh_S.SMPL_ENV, str(d))
    assert mesh_A.body_choices() == ["anny", "smpl"]
    b = mesh_S.smpl_body()
    assert b.num_vertices == 96 and b.faces.shape == (96, 3)
    m = demo.crop(0, 12)
    start = mesh_S.fit_smpl(b, m.joints, steps=0)                                # root placement only
    fit = mesh_S.fit_smpl(b, m.joints, steps=120)
    assert fit["pose"].shape == (12, 24, 3) and fit["betas"].shape == (1, 10)
    assert float(fit["error"].mean()) < 0.03 < float(start["error"].mean())    # metres
    anim = mesh_A.mesh_animation(m, body="smpl")
    assert anim.body.name == "smpl" and anim.vertices().shape == (12, 96, 3)
    fig = mesh_F.mesh_figure(m, body="auto", max_steps=4)                       # auto -> smpl when configured
    assert fig.data[2].type == "mesh3d" and len(fig.data[2].x) == 96
    # a file without the SMPL keys
    bad = tmp_path / "bad"
    bad.mkdir()
    np.savez(bad / "SMPL_NEUTRAL.npz", v_template=np.zeros((3, 3)))
    with pytest.raises(UserError, match="not an SMPL model"):
        mesh_S.smpl_body(bad)


# ---- benchmark + tab ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_bench_quick():
    r = mesh_B.bench(quick=True)
    assert r["frames"] == 120 and r["figure_json_bytes"] > 100_000
    assert 0 < r["mesh_animation_120f_s"] < 10 and r["joint_error_m"] < 0.03


@pytest.mark.slow
def test_tab_builds_and_shows_a_body(demo, tmp_path):
    import gradio as gr

    from motionviz.ui import mesh_tab
    from motionviz.ui.common import AppContext

    ctx = AppContext(checkpoint_dir=tmp_path, data_root=None)
    with gr.Blocks() as blocks:
        ctx.motions = gr.State([])
        mesh_tab.build(ctx)
    fns = {f.api_name: f.fn for f in blocks.fns.values()}
    assert {"mesh_show", "mesh_export_frame", "mesh_export_sequence", "video_extract"} <= set(fns)
    fig, text, m, _ = fns["mesh_show"](mesh_tab.SOURCE_SESSION, None, None, [demo], 0, "anny", "overlay", 30)
    pay = json.loads(fig)           # the player: the motion with its body mesh (preview faces) in one scene
    mesh = pay["motions"][0]["mesh"]
    assert mesh["frames"] == 30 and mesh["vertices"] > 100 and m.num_frames == 30 and "anny" in text
    path = fns["mesh_export_frame"](m, "anny", 2, "obj")
    assert Path(path).suffix == ".obj" and Path(path).stat().st_size > 100_000
    path = fns["mesh_export_sequence"](m, "anny", 0, "glb")
    assert Path(path).suffix == ".glb" and Path(path).read_bytes()[:4] == b"glTF"
    with pytest.raises(gr.Error, match="no motions"):
        fns["mesh_show"](mesh_tab.SOURCE_SESSION, None, None, [], None, "anny", "side", 30)
    with pytest.raises(gr.Error, match="show a body first"):
        fns["mesh_export_frame"](None, "anny", 0, "glb")
