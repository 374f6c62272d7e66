"""The rigged, animated body (``motionviz.mesh.rig``, ``export --format glb``): the GLB is structurally valid
glTF 2.0 (read back here with an independent reader), trimesh opens it, it carries a skin and a joint
animation with one key per frame, and skinning it ourselves from the file's own rotations,
translations and inverse bind matrices puts the joints on the motion's joints and the mesh where the
app's body is."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from motionviz.core.errors import UserError
from motionviz.core.motion import Motion
from motionviz.core.skeleton import COMMON
from motionviz.mesh import animation as mesh_A
from motionviz.mesh import rig

SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "sample"
_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}


@pytest.fixture(scope="module")
def demo() -> Motion:
    return mesh_A.demo_motion(40)


@pytest.fixture(scope="module")
def sample():
    """A real Kinect repetition (UI-PRMD, embedded sample): other proportions, bone-length noise."""
    from motionviz.data import load_dataset

    return load_dataset("ui-prmd", SAMPLE, limit=1)[0].retarget(COMMON).resample(20).normalise()


# ---- an independent GLB reader and structural checks -------------------------------------------------
def read_glb(path: Path) -> tuple[dict, bytes]:
    data = Path(path).read_bytes()
    magic, version, total = struct.unpack("<4sII", data[:12])
    assert magic == b"glTF" and version == 2 and total == len(data)
    jlen, jtype = struct.unpack("<I4s", data[12:20])
    assert jtype == b"JSON" and jlen % 4 == 0
    gltf = json.loads(data[20:20 + jlen])
    blen, btype = struct.unpack("<I4s", data[20 + jlen:28 + jlen])
    assert btype == b"BIN\x00" and blen % 4 == 0 and 28 + jlen + blen == total
    return gltf, data[28 + jlen:28 + jlen + blen]


def accessor(gltf: dict, blob: bytes, i: int) -> np.ndarray:
    """Accessor ``i`` as (count, components), after checking it lies inside its aligned buffer view."""
    a = gltf["accessors"][i]
    view = gltf["bufferViews"][a["bufferView"]]
    dt = np.dtype(_DTYPES[a["componentType"]])
    n = _COMPONENTS[a["type"]]
    off = view.get("byteOffset", 0) + a.get("byteOffset", 0)
    assert off % dt.itemsize == 0 and view.get("byteOffset", 0) % 4 == 0
    assert a.get("byteOffset", 0) + a["count"] * n * dt.itemsize <= view["byteLength"]
    assert view["byteOffset"] + view["byteLength"] <= gltf["buffers"][view["buffer"]]["byteLength"]
    out = np.frombuffer(blob, dt, a["count"] * n, off).reshape(a["count"], n)
    if "min" in a:
        np.testing.assert_allclose(out.min(0), a["min"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(out.max(0), a["max"], rtol=0, atol=1e-6)
    return out


def validate(gltf: dict, blob: bytes) -> None:
    """The glTF 2.0 rules a skinned, animated GLB relies on."""
    assert gltf["asset"]["version"] == "2.0"
    assert len(gltf["buffers"]) == 1 and gltf["buffers"][0]["byteLength"] == len(blob)
    for i in range(len(gltf["accessors"])):
        accessor(gltf, blob, i)
    # nodes form disjoint trees; the scene's roots are the skinned mesh and the skeleton root
    parent: dict[int, int] = {}
    for i, n in enumerate(gltf["nodes"]):
        for c in n.get("children", []):
            assert c not in parent and c != i
            parent[c] = i
    roots = gltf["scenes"][gltf["scene"]]["nodes"]
    assert set(roots) == set(range(len(gltf["nodes"]))) - set(parent)
    skin = gltf["skins"][0]
    joints = skin["joints"]
    mesh_node = next(i for i, n in enumerate(gltf["nodes"]) if "mesh" in n)
    assert gltf["nodes"][mesh_node]["skin"] == 0 and mesh_node in roots and mesh_node not in joints
    assert not {"translation", "rotation", "scale", "matrix"} & set(gltf["nodes"][mesh_node])
    assert skin["skeleton"] in roots and len(set(joints)) == len(joints)
    prim = gltf["meshes"][0]["primitives"][0]
    at = prim["attributes"]
    pos = accessor(gltf, blob, at["POSITION"])
    assert "min" in gltf["accessors"][at["POSITION"]]
    V = len(pos)
    for k in ("NORMAL", "JOINTS_0", "WEIGHTS_0"):
        assert gltf["accessors"][at[k]]["count"] == V
    for k in at.values():                                  # vertex attributes: 4-byte aligned elements
        a = gltf["accessors"][k]
        assert gltf["bufferViews"][a["bufferView"]].get("target") == 34962
        assert (_COMPONENTS[a["type"]] * np.dtype(_DTYPES[a["componentType"]]).itemsize) % 4 == 0
    np.testing.assert_allclose(np.linalg.norm(accessor(gltf, blob, at["NORMAL"]), axis=1), 1.0, atol=1e-5)
    assert gltf["accessors"][at["JOINTS_0"]]["componentType"] in (5121, 5123)
    ji = accessor(gltf, blob, at["JOINTS_0"])
    w = accessor(gltf, blob, at["WEIGHTS_0"])
    assert ji.shape[1] == 4 and ji.max() < len(joints)
    assert w.min() >= 0 and np.abs(w.sum(1) - 1).max() < 1e-5
    ind = accessor(gltf, blob, prim["indices"])
    assert ind.shape[1] == 1 and len(ind) % 3 == 0 and ind.max() < V
    ibm = accessor(gltf, blob, skin["inverseBindMatrices"])
    assert gltf["accessors"][skin["inverseBindMatrices"]]["type"] == "MAT4" and len(ibm) == len(joints)
    # column-major: the last column of the stored 4x4 is the matrix's last row
    np.testing.assert_allclose(ibm.reshape(-1, 4, 4)[:, :, 3], np.tile([0, 0, 0, 1.0], (len(joints), 1)))
    for anim in gltf["animations"]:
        for s in anim["samplers"]:
            t = accessor(gltf, blob, s["input"])[:, 0]
            assert "min" in gltf["accessors"][s["input"]] and t[0] >= 0 and np.all(np.diff(t) > 0)
            assert gltf["accessors"][s["output"]]["count"] == len(t)
        for c in anim["channels"]:
            out = accessor(gltf, blob, anim["samplers"][c["sampler"]]["output"])
            if c["target"]["path"] == "rotation":
                np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def node_world(nodes: list[dict], R: dict[int, np.ndarray], t: dict[int, np.ndarray]):
    """``W(i)``: the (4, 4) world matrix of node ``i`` from the local rotations ``R`` and translations ``t``
    of it and its parents (``children`` of ``nodes``)."""
    parent = {c: i for i, n in enumerate(nodes) for c in n.get("children", [])}
    world: dict[int, np.ndarray] = {}

    def W(i: int) -> np.ndarray:
        if i not in world:
            L = np.eye(4)
            L[:3, :3], L[:3, 3] = R[i], t[i]
            world[i] = L if i not in parent else W(parent[i]) @ L
        return world[i]

    return W


def skin_from_file(gltf: dict, blob: bytes, k: int | None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Our own linear-blend skinning of frame ``k`` (None: the nodes' own transforms, no animation) from
    the file alone: joint world positions by name and the (V, 3) skinned vertices."""
    nodes = gltf["nodes"]
    R = {i: np.eye(3) for i in range(len(nodes))}
    t = {i: np.array(n.get("translation", [0.0, 0.0, 0.0])) for i, n in enumerate(nodes)}
    for i, n in enumerate(nodes):
        if "rotation" in n:
            R[i] = rig.quat_to_matrix(np.array(n["rotation"]))
    anim = gltf["animations"][0]
    for c in (anim["channels"] if k is not None else []):
        out = accessor(gltf, blob, anim["samplers"][c["sampler"]]["output"]).astype(np.float64)
        node = c["target"]["node"]
        if c["target"]["path"] == "rotation":
            R[node] = rig.quat_to_matrix(out[k])
        else:
            t[node] = out[k]
    W = node_world(nodes, R, t)
    skin = gltf["skins"][0]
    ibm = accessor(gltf, blob, skin["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)
    S = np.stack([W(j) @ ibm[n] for n, j in enumerate(skin["joints"])])         # (J, 4, 4)
    at = gltf["meshes"][0]["primitives"][0]["attributes"]
    v = accessor(gltf, blob, at["POSITION"]).astype(np.float64)
    ji = accessor(gltf, blob, at["JOINTS_0"]).astype(int)
    w = accessor(gltf, blob, at["WEIGHTS_0"]).astype(np.float64)
    M = np.einsum("vk,vkab->vab", w, S[ji])
    verts = np.einsum("vab,vb->va", M[:, :3, :3], v) + M[:, :3, 3]
    return {nodes[j]["name"]: W(j)[:3, 3] for j in skin["joints"]}, verts


# ---- tests ---------------------------------------------------------------------------------------------
def test_rigged_glb_is_valid_and_trimesh_opens_it(demo, tmp_path):
    import trimesh

    anim = mesh_A.mesh_animation(demo, "anny")
    p = rig.export_rigged(anim, tmp_path / "body.glb")
    gltf, blob = read_glb(p)
    validate(gltf, blob)
    names = [gltf["nodes"][j]["name"] for j in gltf["skins"][0]["joints"]]
    assert names == list(rig.RIG_JOINTS) and set(COMMON.joints) <= set(names) and len(names) == 17
    anim_ = gltf["animations"][0]
    rot = {c["target"]["node"] for c in anim_["channels"] if c["target"]["path"] == "rotation"}
    assert rot == set(gltf["skins"][0]["joints"])                               # every joint is animated
    assert [c["target"]["path"] for c in anim_["channels"] if c["target"]["node"] == gltf["skins"][0]["skeleton"]] \
        == ["rotation", "translation"]
    times = gltf["accessors"][anim_["samplers"][0]["input"]]
    assert times["count"] == demo.num_frames and times["max"][0] == pytest.approx((demo.num_frames - 1) / demo.fps)
    assert all(gltf["accessors"][s["output"]]["count"] == demo.num_frames for s in anim_["samplers"])
    assert p.stat().st_size < 1_200_000
    scene = trimesh.load(p, process=False)
    body = scene.geometry["body"]
    assert body.vertices.shape == (anim.body.num_vertices, 3) and len(body.faces) == len(anim.body.faces)


def test_skinning_the_file_reproduces_the_motion(demo, tmp_path):
    """Known answer: the synthetic squat is built from the body's own rest joints, so the joints of the
    file land on the motion's joints and the skinned mesh on the app's posed mesh."""
    anim = mesh_A.mesh_animation(demo, "anny")
    gltf, blob = read_glb(rig.export_rigged(anim, tmp_path / "body.glb"))
    for k in (0, 17, demo.num_frames - 1):
        joints, verts = skin_from_file(gltf, blob, k)
        got = np.stack([joints[j] for j in COMMON.joints])
        np.testing.assert_allclose(got, demo.joints[k], atol=1e-4)
        np.testing.assert_allclose(verts, anim.vertices(frames=[k])[0], atol=2e-3)
    # the nodes' own transforms are the bind pose (inverse bind matrices = their inverses): without the
    # animation the skin leaves the rest mesh in place, standing on the frame-0 pelvis
    joints, verts = skin_from_file(gltf, blob, None)
    pos = accessor(gltf, blob, gltf["meshes"][0]["primitives"][0]["attributes"]["POSITION"])
    np.testing.assert_allclose(verts, pos, atol=1e-5)
    assert joints["pelvis"] == pytest.approx(demo.joints[0, 0], abs=1e-5)


@pytest.mark.slow
def test_other_proportions_and_a_real_motion(demo, sample, tmp_path):
    # longer forearms (a non-uniform shape matrix baked into the rest mesh)
    j = demo.joints.copy()
    for side in ("left", "right"):
        e, w = COMMON.index(f"{side}_elbow"), COMMON.index(f"{side}_wrist")
        j[:, w] = j[:, e] + 1.3 * (j[:, w] - j[:, e])
    long_arms = demo.with_joints(j)
    anim = mesh_A.mesh_animation(long_arms, "anny")
    gltf, blob = read_glb(rig.export_rigged(anim, tmp_path / "long.glb"))
    joints, verts = skin_from_file(gltf, blob, 25)
    np.testing.assert_allclose(np.stack([joints[c] for c in COMMON.joints]), long_arms.joints[25], atol=1e-4)
    assert np.abs(verts - anim.vertices(frames=[25])[0]).max() < 0.01
    # a Kinect repetition: joints on the body's posed joints, within ~2 cm of the motion's (its bone
    # lengths vary from frame to frame); the mesh close to the app's body except in blend zones
    anim = mesh_A.mesh_animation(sample, "anny")
    gltf, blob = read_glb(rig.export_rigged(anim, tmp_path / "kinect.glb"))
    validate(gltf, blob)
    k = sample.num_frames // 2
    joints, verts = skin_from_file(gltf, blob, k)
    got = np.stack([joints[c] for c in COMMON.joints])
    np.testing.assert_allclose(got, anim.posed_joints[k], atol=1e-4)
    assert np.linalg.norm(got - sample.joints[k], axis=-1).mean() < 0.02
    d = np.linalg.norm(verts - anim.vertices(frames=[k])[0], axis=-1)
    assert np.median(d) < 1e-3 and d.mean() < 5e-3


def test_rig_own_skinning_matches_the_file(demo, tmp_path):
    """Rig.skin (the module's LBS) is the file's skinning: same rotations, offsets and weights."""
    anim = mesh_A.mesh_animation(demo, "anny")
    r = rig.build_rig(anim)
    gltf, blob = rig.rig_gltf(r)
    _, verts = skin_from_file(gltf, blob, 9)
    np.testing.assert_allclose(r.skin(frames=[9])[0], verts, atol=1e-5)
    assert r.joint_index.dtype == np.uint8 and r.joint_weight.shape == (anim.body.num_vertices, 4)


def test_errors(demo, tmp_path):
    anim = mesh_A.mesh_animation(demo, "anny")
    with pytest.raises(UserError, match=".glb"):
        rig.export_rigged(anim, tmp_path / "body.fbx")
    fake = mesh_A.MeshAnimation(body=object(), motion=anim.motion, params={}, posed_joints=anim.posed_joints)
    with pytest.raises(UserError, match="Anny"):
        rig.build_rig(fake)


@pytest.mark.slow
def test_export_cli_and_api(demo, tmp_path, capsys):
    from motionviz.cli import main
    from motionviz.export import export_motion

    src = tmp_path / "squat.npy"
    np.save(src, demo.joints)
    assert main(["export", "--input", str(src), "--format", "glb", "--out", str(tmp_path / "out") + "/"]) == 0
    gltf, blob = read_glb(tmp_path / "out" / "squat.glb")
    validate(gltf, blob)
    assert gltf["extras"]["fps"] == 20 and gltf["extras"]["frames"] == demo.num_frames
    assert main(["export", "--input", str(src), "--format", "glb", "--vertex-animated",
                 "--out", str(tmp_path / "va.glb")]) == 0
    va, _ = read_glb(tmp_path / "va.glb")
    assert "skins" not in va and len(va["meshes"][0]["primitives"][0]["targets"]) == demo.num_frames - 1
    capsys.readouterr()
    assert main(["export", "--input", str(src), "--format", "bvh", "--vertex-animated"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--vertex-animated" in err and "\n" not in err
    p = export_motion(demo, "glb", tmp_path / "api")
    assert p.suffix == ".glb" and "skins" in read_glb(p)[0]


@pytest.mark.slow
def test_body_mesh_tab_offers_the_rigged_glb(demo):
    import gradio as gr

    from motionviz.ui import mesh_tab
    from motionviz.ui.common import AppContext

    m = mesh_tab.prepare_motion(demo, 30)
    path = Path(mesh_tab.export_mesh(m, "anny", "sequence", 0, "glb-rigged"))
    assert path.name.endswith("_rigged.glb")
    gltf, blob = read_glb(path)
    validate(gltf, blob)
    assert gltf["accessors"][gltf["animations"][0]["samplers"][0]["input"]]["count"] == 30
    with pytest.raises(UserError, match="whole sequence"):
        mesh_tab.export_mesh(m, "anny", "frame", 0, "glb-rigged")
    ctx = AppContext(checkpoint_dir=Path("/nonexistent"), data_root=None)
    with gr.Blocks() as blocks:
        ctx.motions = gr.State([])
        mesh_tab.build(ctx)
    fns = {f.api_name: f.fn for f in blocks.fns.values()}
    assert Path(fns["mesh_export_sequence"](m, "anny", 0, "glb-rigged")).suffix == ".glb"
    radios = [b for b in blocks.blocks.values() if isinstance(b, gr.Radio) and b.label == "Format"]
    assert any("glb-rigged" in [c[1] for c in r.choices] for r in radios)


def test_khronos_validator_and_three_js_play_it(sample, tmp_path):
    """Optional (needs node and a node_modules folder with the npm packages ``three`` and
    ``gltf-validator``, named by $MOTIONVIZ_NODE_MODULES): the Khronos glTF-Validator reports no issue,
    and three.js (GLTFLoader + AnimationMixer + SkinnedMesh, on the CPU) skins frame k where we do."""
    import os
    import shutil
    import subprocess

    nm = os.environ.get("MOTIONVIZ_NODE_MODULES")
    if not nm or shutil.which("node") is None or not (Path(nm) / "three").is_dir() \
            or not (Path(nm) / "gltf-validator").is_dir():
        pytest.skip("set MOTIONVIZ_NODE_MODULES to a node_modules folder with three and gltf-validator")
    anim = mesh_A.mesh_animation(sample, "anny")
    p = rig.export_rigged(anim, tmp_path / "kinect.glb")
    k = 20
    out = tmp_path / "skinned.bin"
    script = Path(__file__).parent / "js" / "glb_check.mjs"
    res = subprocess.run(["node", str(script), nm, str(p), str(k), str(out)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    info = json.loads(Path(str(out) + ".json").read_text())
    v = info["validator"]
    assert (v["errors"], v["warnings"], v["infos"]) == (0, 0, 0), v["messages"]
    assert info["tracks"] == len(rig.RIG_JOINTS) + 1
    assert info["duration"] == pytest.approx((sample.num_frames - 1) / sample.fps, abs=1e-5)
    three = np.fromfile(out, np.float32).reshape(-1, 3)
    np.testing.assert_allclose(three, rig.build_rig(anim).skin(frames=[k])[0], atol=1e-5)
    got = np.stack([info["joints"][c] for c in COMMON.joints])
    np.testing.assert_allclose(got, anim.posed_joints[k], atol=1e-5)


def test_a_pypi_gltf_reader_reimports_the_skin_and_the_animation(demo, tmp_path):
    """pygltflib (PyPI) reads the GLB back with its skin (17 joints, inverse bind matrices, JOINTS_0 /
    WEIGHTS_0) and its animation (one key per frame); skinning from what *it* decoded puts the joints on
    the motion's joints.  (trimesh opens only the mesh: it drops glTF skins and animations.)"""
    pygltflib = pytest.importorskip("pygltflib")
    anim = mesh_A.mesh_animation(demo, "anny")
    p = rig.export_rigged(anim, tmp_path / "body.glb")
    g = pygltflib.GLTF2().load(str(p))
    blob = g.binary_blob()

    def read(i: int) -> np.ndarray:
        a = g.accessors[i]
        view = g.bufferViews[a.bufferView]
        n, dt = _COMPONENTS[a.type], np.dtype(_DTYPES[a.componentType])
        start = (view.byteOffset or 0) + (a.byteOffset or 0)
        return np.frombuffer(blob, dtype=dt, count=a.count * n, offset=start).reshape(a.count, n)

    assert len(g.skins) == 1 and len(g.skins[0].joints) == 17 and len(g.animations) == 1
    assert [g.nodes[j].name for j in g.skins[0].joints] == list(rig.RIG_JOINTS)
    prim = g.meshes[0].primitives[0]
    weights = read(prim.attributes.WEIGHTS_0)
    joints_attr = read(prim.attributes.JOINTS_0)
    assert weights.shape == (anim.body.num_vertices, 4) and joints_attr.max() < 17
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-3)
    ch = g.animations[0].channels
    samplers = g.animations[0].samplers
    times = read(samplers[0].input)[:, 0]
    assert len(times) == demo.num_frames and np.all(np.diff(times) > 0)
    rot = {c.target.node: read(samplers[c.sampler].output) for c in ch if c.target.path == "rotation"}
    assert set(rot) == set(g.skins[0].joints)
    q = np.stack(list(rot.values()))                                           # (17, T, 4)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-4)
    assert np.ptp(q, axis=1).max() > 0.1                                       # the joints turn over time
    # skin frame k from pygltflib's decoding: same joints as the motion
    gltf = {"nodes": [{k: v for k, v in {"children": n.children, "rotation": n.rotation,
                                          "translation": n.translation}.items() if v} for n in g.nodes],
            "animations": [{"channels": [{"sampler": c.sampler, "target": {"node": c.target.node,
                                                                          "path": c.target.path}} for c in ch],
                            "samplers": [{"output": s.output} for s in samplers]}]}
    ibm = read(g.skins[0].inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
    for k in (0, demo.num_frames // 2):
        R = {i: rig.quat_to_matrix(np.array(n.get("rotation", [0, 0, 0, 1]), dtype=np.float64))
             for i, n in enumerate(gltf["nodes"])}
        t = {i: np.array(n.get("translation", [0.0, 0.0, 0.0])) for i, n in enumerate(gltf["nodes"])}
        for c in ch:
            out = read(samplers[c.sampler].output).astype(np.float64)[k]
            if c.target.path == "rotation":
                R[c.target.node] = rig.quat_to_matrix(out)
            else:
                t[c.target.node] = out
        W = node_world(gltf["nodes"], R, t)
        pos = {g.nodes[j].name: W(j)[:3, 3] for j in g.skins[0].joints}
        got = np.stack([pos[j] for j in COMMON.joints])
        np.testing.assert_allclose(got, demo.joints[k], atol=1e-4)
        assert ibm.shape == (17, 4, 4)
