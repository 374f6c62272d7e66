"""Any skeleton -> the common skeleton: synthetic BVH files made here in the CMU, Mixamo, Z-up (Blender)
and unnamed conventions, in centimetres, metres, inches and an arbitrary unit.  Each must come out
1.4-2.0 m tall, feet on the floor, left on the subject's left, and go through classify, inpaint and the
body mesh; bad files give one line.  Plus the name matcher on the published joint sets."""

from __future__ import annotations

import numpy as np
import pytest

from motionviz.core.errors import UserError
from motionviz.core.retarget import guess_scale, match_common, rig_names
from motionviz.core.skeleton import COMMON, SKELETONS, name_tokens
from motionviz.data import load_user_file

# rest pose of a 1.73 m person (metres, Y-up, facing +Z, left = +X)
_REST = {
    "pelvis": (0, 0.98, 0), "spine_low": (0, 1.10, 0), "spine_mid": (0, 1.28, 0), "chest": (0, 1.40, 0),
    "neck": (0, 1.50, 0), "neck2": (0, 1.55, 0.01), "head": (0, 1.62, 0.02),
    "l_clav": (0.03, 1.45, 0), "l_sh": (0.18, 1.45, 0), "l_el": (0.20, 1.17, 0), "l_wr": (0.21, 0.92, 0.02),
    "l_hip": (0.09, 0.92, 0), "l_kn": (0.09, 0.49, 0.01), "l_an": (0.09, 0.07, 0), "l_toe": (0.09, 0.02, 0.13),
}
for _k in list(_REST):
    if _k.startswith("l_"):
        x, y, z = _REST[_k]
        _REST["r_" + _k[2:]] = (-x, y, z)

# convention -> [(file joint name, parent name, rest key)], root first, parents before children
def _limbs(fmt, sides, hip_parent, arm_parent, hipjoint=None):
    """Leg and arm chains named by ``fmt(side_word, part)``."""
    out = []
    for s, S in sides:
        n = lambda part: fmt(S, part)  # noqa: E731
        top = hip_parent
        if hipjoint:
            out.append((hipjoint.format(S=S[0].upper()), hip_parent, "pelvis"))
            top = hipjoint.format(S=S[0].upper())
        out += [(n("thigh"), top, f"{s}_hip"), (n("shin"), n("thigh"), f"{s}_kn"), (n("foot"), n("shin"), f"{s}_an"),
                (n("toe"), n("foot"), f"{s}_toe"), (n("clav"), arm_parent, f"{s}_clav"),
                (n("upper"), n("clav"), f"{s}_sh"), (n("fore"), n("upper"), f"{s}_el"),
                (n("hand"), n("fore"), f"{s}_wr")]
    return out


_CMU = {"thigh": "UpLeg", "shin": "Leg", "foot": "Foot", "toe": "ToeBase", "clav": "Shoulder", "upper": "Arm",
        "fore": "ForeArm", "hand": "Hand"}
_BLENDER = {"thigh": "thigh", "shin": "shin", "foot": "foot", "toe": "toe", "clav": "shoulder", "upper": "upper_arm",
            "fore": "forearm", "hand": "hand"}
LR = (("l", "Left"), ("r", "Right"))
CONVENTIONS = {
    "cmu": [("Hips", None, "pelvis"), ("LowerBack", "Hips", "pelvis"), ("Spine", "LowerBack", "spine_low"),
            ("Spine1", "Spine", "chest"), ("Neck", "Spine1", "neck"), ("Neck1", "Neck", "neck2"),
            ("Head", "Neck1", "head")]
    + _limbs(lambda S, part: f"{S}{_CMU[part]}", LR, "Hips", "Spine1", hipjoint="{S}HipJoint"),
    "mixamo": [("mixamorig:Hips", None, "pelvis"), ("mixamorig:Spine", "mixamorig:Hips", "spine_low"),
               ("mixamorig:Spine1", "mixamorig:Spine", "spine_mid"), ("mixamorig:Spine2", "mixamorig:Spine1", "chest"),
               ("mixamorig:Neck", "mixamorig:Spine2", "neck"), ("mixamorig:Head", "mixamorig:Neck", "head")]
    + _limbs(lambda S, part: f"mixamorig:{S}{_CMU[part]}", LR, "mixamorig:Hips", "mixamorig:Spine2"),
    "blender-zup": [("pelvis", None, "pelvis"), ("spine", "pelvis", "spine_low"), ("chest", "spine", "chest"),
                    ("neck", "chest", "neck"), ("head", "neck", "head")]
    + _limbs(lambda S, part: f"{_BLENDER[part]}.{S[0]}", LR, "pelvis", "chest"),
}
# unnamed joints: only the hierarchy and the rest pose tell what is what
_named = [("pelvis", None, "pelvis"), ("spine", "pelvis", "spine_low"), ("chest", "spine", "chest"),
          ("neck", "chest", "neck"), ("head", "neck", "head")] + _limbs(lambda S, part: f"{S}{part}", LR, "pelvis",
                                                                         "chest")
_ids = {n: f"joint{i:02d}" for i, (n, _, _) in enumerate(_named)}
CONVENTIONS["unnamed"] = [(_ids[n], _ids.get(p), k) for n, p, k in _named]

UNITS = {"cm": 0.01, "m": 1.0, "in": 0.0254, "arbitrary": 0.0731}
_ZUP = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])      # Y-up facing +Z -> Z-up facing -Y


def make_bvh(convention: str, unit: float, frames: int = 72, fps: float = 120.0, z_up: bool = False,
             root_at_origin: bool = False) -> str:
    """BVH text of a person squatting (hips and knees flex through X rotations), in ``unit`` metres per
    file unit, Y-up facing +Z (or Z-up facing -Y)."""
    spec = CONVENTIONS[convention]
    names = [n for n, _, _ in spec]
    parent = {n: p for n, p, _ in spec}
    rest = {n: np.array(_REST[k], float) for n, _, k in spec}
    if root_at_origin:
        rest = {n: v - rest[names[0]] for n, v in rest.items()}
    P = _ZUP if z_up else np.eye(3)
    kids = {n: [c for c, p, _ in spec if p == n] for n in names}
    t = np.arange(frames)
    bend = 35.0 * (1 - np.cos(2 * np.pi * t / frames)) / 2               # 0 -> 35 -> 0 degrees
    lines = ["HIERARCHY"]
    order: list[str] = []                                                # depth-first = channel order

    def emit(n: str, depth: int) -> None:
        ind = "  " * depth
        off = (rest[n] - (rest[parent[n]] if parent[n] else 0.0)) @ P.T / unit
        order.append(n)
        lines.append(f"{ind}{'ROOT' if parent[n] is None else 'JOINT'} {n}")
        lines.append(f"{ind}{{")
        lines.append(f"{ind}  OFFSET {off[0]:.6f} {off[1]:.6f} {off[2]:.6f}")
        lines.append(f"{ind}  CHANNELS " + ("6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"
                                            if parent[n] is None else "3 Zrotation Xrotation Yrotation"))
        for c in kids[n]:
            emit(c, depth + 1)
        if not kids[n]:
            lines.extend([f"{ind}  End Site", f"{ind}  {{", f"{ind}    OFFSET 0 {0.05 / unit:.6f} 0", f"{ind}  }}"])
        lines.append(f"{ind}}}")

    emit(names[0], 0)
    lines += ["MOTION", f"Frames: {frames}", f"Frame Time: {1.0 / fps:.8f}"]
    thigh = {n for n, _, k in spec if k.endswith("_hip")}
    knee = {n for n, _, k in spec if k.endswith("_kn")}
    ankle = {n for n, _, k in spec if k.endswith("_an")}                # keeps the foot flat
    for i in range(frames):
        drop = 0.85 * (1 - np.cos(np.radians(bend[i])))        # thigh + shank: the feet stay on the floor
        root = (rest[names[0]] + np.array([0.0, -drop, 0.0])) @ P.T / unit
        row = [*root, 0.0, 0.0, 0.0]
        for n in order[1:]:
            x = -bend[i] if n in thigh or n in ankle else (2 * bend[i] if n in knee else 0.0)
            row += [0.0, x, 0.0]
        lines.append(" ".join(f"{v:.6f}" for v in row))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    import torch

    from motionviz.core.checkpoint import save_checkpoint
    from motionviz.generators import recognition as R_G
    from motionviz.models import aegan as A
    from motionviz.models import recognition as R
    from motionviz.training import aegan as A_T

    d = tmp_path_factory.mktemp("ck")
    torch.manual_seed(0)
    rec = R.Recognizer(R.Config(labels=("t:a", "t:b"), hidden=16, gru_hidden=12, feature_dim=16, conv_blocks=2,
                                dropout=0.0, batch_size=8))
    save_checkpoint(d / R_G.CHECKPOINT_NAME, rec.state_dict(), R.KIND, rec.config,
                    {"correct_labels": [], "score_labels": []})
    A_T.save(A.build_model(A.Config(frames=8, latent=4, channels=(4, 8), batch_size=8)), d / "aegan.safetensors",
           {"steps": 0})
    return d


CASES = [("cmu", "arbitrary", False, False), ("cmu", "in", False, False), ("mixamo", "cm", False, True),
         ("mixamo", "m", False, False), ("blender-zup", "m", True, False), ("blender-zup", "cm", True, True),
         ("unnamed", "cm", False, False), ("unnamed", "in", True, False)]


@pytest.mark.slow
@pytest.mark.parametrize("convention,unit,z_up,root_at_origin", CASES)
def test_any_skeleton_any_unit_works_everywhere(tmp_path, checkpoints, capsys, convention, unit, z_up,
                                                root_at_origin):
    from motionviz.cli import main
    from motionviz.mesh import animation as mesh_A

    path = tmp_path / f"{convention}.bvh"
    path.write_text(make_bvh(convention, UNITS[unit], z_up=z_up, root_at_origin=root_at_origin))
    m = load_user_file(path)                                # the upload path of every tab
    assert m.fps == pytest.approx(120.0, rel=1e-5)
    idx = {n: m.skeleton.index(n) for n, _, _ in CONVENTIONS[convention]}
    key = {k: n for n, _, k in CONVENTIONS[convention]}
    X = m.joints
    # height 1.4-2.0 m (exact when the unit is a usual one), standing on the floor, Y-up
    height = X[0, :, 1].max() - X[0, :, 1].min()
    assert 1.4 <= height <= 2.0
    if unit != "arbitrary":
        assert height == pytest.approx(1.60, abs=0.01) and m.labels.extra["unit_in_file"] == unit
    assert -0.03 <= X[0, :, 1].min() <= 0.06
    assert X[0, idx[key["head"]], 1] > X[0, idx[key["pelvis"]], 1] + 0.4
    # left is left: the subject's left = up x forward, forward from the toes
    fwd = X[0, idx[key["l_toe"]]] - X[0, idx[key["l_an"]]]
    fwd[1] = 0
    left = np.cross([0.0, 1.0, 0.0], fwd / np.linalg.norm(fwd))
    c = m.retarget(COMMON)
    for j in ("hip", "shoulder", "wrist", "ankle"):
        assert (c.joints[0, COMMON.index(f"left_{j}")] - c.joints[0, COMMON.index(f"right_{j}")]) @ left > 0.1
    # the common joints are the right ones: the left knee is the file's left knee, at the mid-squat too
    np.testing.assert_allclose(c.joints[:, COMMON.index("left_knee")], X[:, idx[key["l_kn"]]], atol=1e-6)
    assert c.joints[36, COMMON.index("pelvis"), 1] < c.joints[0, COMMON.index("pelvis"), 1] - 0.12
    # the map travels with the skeleton through our JSON (the app's state, Compare, export)
    from motionviz.core.motion import Motion

    again = Motion.from_json(m.to_json(decimals=6))
    np.testing.assert_allclose(again.retarget(COMMON).joints, c.joints, atol=2e-6)

    # every tool takes it: classify, inpaint (CLI), the body mesh
    assert main(["classify", "--input", str(path), "--json", "--checkpoints", str(checkpoints)]) == 0
    out = tmp_path / "filled.npy"
    assert main(["inpaint", "--input", str(path), "--out", str(out), "--steps", "2", "--window", "8",
                 "--checkpoint", str(checkpoints / "aegan.safetensors"), "--no-progress", "--json"]) == 0
    a = np.load(out)
    assert a.shape == (c.resample(20.0).num_frames, 15, 3) and np.isfinite(a).all()
    capsys.readouterr()
    anim = mesh_A.mesh_animation(c.resample(20.0))
    assert anim.num_frames == a.shape[0] and anim.joint_error() < 0.03


@pytest.mark.parametrize("text,msg", [
    ("HIERARCHY\nROOT Hips\n{\n OFFSET 0 0 0\n CHANNELS 3 Xposition Yposition Zposition\n"
     " End Site\n {\n  OFFSET 0 1 0\n"
     " }\n}\nMOTION\nFrames: 2\nFrame Time: 0.05\n0 0 0\n0 0 0\n", "1 joint"),
    (make_bvh("cmu", 0.01, frames=2).replace("Frames: 2", "Frames: 0").rsplit("Frame Time", 1)[0]
     + "Frame Time: 0.05\n", "no frames"),
    ("HIERARCHY\nROOT Bone1\n{\n OFFSET 0 0 0\n CHANNELS 3 Xposition Yposition Zposition\n"
     + "".join(f" JOINT Bone{i}\n {{\n  OFFSET 0 10 0\n  CHANNELS 3 Zrotation Xrotation Yrotation\n"
               for i in range(2, 6))
     + "  End Site\n  {\n   OFFSET 0 1 0\n  }\n" + " }\n" * 4 + "}\nMOTION\nFrames: 1\nFrame Time: 0.05\n"
     + " ".join(["0"] * 15) + "\n", "no joint found for pelvis"),
])
def test_bad_files_get_one_line(tmp_path, capsys, checkpoints, text, msg):
    from motionviz.cli import main

    p = tmp_path / "bad.bvh"
    p.write_text(text)
    with pytest.raises(UserError, match=msg):
        load_user_file(p)
    capsys.readouterr()
    assert main(["classify", "--input", str(p), "--checkpoints", str(checkpoints)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and msg in err and "Traceback" not in err
    assert main(["export", "--input", str(p), "--format", "json", "--out", str(tmp_path / "x.json")]) == 2


# ---- the name matcher ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,side,core", [
    ("mixamorig:LeftUpLeg", "left", "upleg"), ("LHipJoint", "left", "hip"), ("Knee.L", "left", "knee"),
    ("knee_l", "left", "knee"), ("l_knee", "left", "knee"), ("RShoulder", "right", "shoulder"),
    ("HipLeft", "left", "hip"), ("Bip01 R Thigh", "right", "thigh"), ("DEF-upper_arm.L", "left", "upperarm"),
    ("Spine1", "", "spine1"), ("SpineBase", "", "spinebase"), ("rknee", "right", "knee"), ("MidHip", "", "midhip"),
])
def test_name_tokens(name, side, core):
    assert name_tokens(name) == (side, core)


_BODY25 = ["Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip", "RKnee",
           "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe", "LHeel",
           "RBigToe", "RSmallToe", "RHeel"]
_KINECT1 = ["HipCenter", "Spine", "ShoulderCenter", "Head", "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft",
            "ShoulderRight", "ElbowRight", "WristRight", "HandRight", "HipLeft", "KneeLeft", "AnkleLeft", "FootLeft",
            "HipRight", "KneeRight", "AnkleRight", "FootRight"]


@pytest.mark.parametrize("sk", sorted(set(SKELETONS) - {"keraal-vicon"}))
def test_names_alone_reproduce_the_hand_made_maps(sk):
    """The tolerant matcher finds the same joints as the hand-written RETARGET maps of every dataset."""
    from motionviz.core.skeleton import RETARGET

    s = SKELETONS[sk]
    got = match_common(s.joints, s.parents)
    if sk == "common":
        assert got == {j: (j,) for j in COMMON.joints}
        return
    for j, src in RETARGET[sk].items():
        want = (src,) if isinstance(src, str) else src
        if j == "spine" and len(want) > 1:
            assert sorted(set(got[j])) == sorted(set(want))
        else:
            assert sorted(got[j]) == sorted(want), (sk, j)


def test_flat_keypoint_sets_and_errors():
    flat = [-1] * len(_BODY25)
    m = match_common(_BODY25, flat)
    assert m["pelvis"] == ("MidHip",) and m["left_knee"] == ("LKnee",) and m["right_wrist"] == ("RWrist",)
    assert set(m["spine"]) == {"MidHip", "Neck"}
    k1 = match_common(_KINECT1, [-1] * len(_KINECT1))
    assert k1["pelvis"] == ("HipCenter",) and k1["neck"] == ("ShoulderCenter",) and k1["left_ankle"] == ("AnkleLeft",)
    with pytest.raises(UserError, match="no joint found for .*left_knee"):
        match_common(["Hips", "LeftUpLeg", "RightUpLeg"], [-1, 0, 0])
    with pytest.raises(UserError, match="1 joint"):
        match_common(["Hips"], [-1])


def test_units_from_body_size_and_rig_names():
    assert guess_scale(170.0) == (0.01, "cm") and guess_scale(1.62)[1] == "m" and guess_scale(66.0)[1] == "in"
    s, u = guess_scale(23.0)
    assert u.startswith("unknown") and s * 23.0 == pytest.approx(1.70)
    with pytest.raises(UserError):
        guess_scale(0.0)
    names = rig_names("mixamo")
    assert names["left_hip"] == "mixamorig:LeftUpLeg" and names["right_shoulder"] == "mixamorig:RightArm"
    assert match_common([names[j] for j in COMMON.joints], COMMON.parents) == {j: (names[j],) for j in COMMON.joints}
    with pytest.raises(UserError, match="unknown rig"):
        rig_names("fbx")
