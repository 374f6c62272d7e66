"""Files other tools read: every BVH we write is read back by an independent parser (``bvhio`` from
PyPI), the sidecar JSON, target-rig names, foot-contact clean-up, and ``export`` of ``sample`` batches."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from motionviz.core.motion import Motion, MotionLabels
from motionviz.core.skeleton import COMMON, KINECT
from motionviz.io.bvh_motion import load_bvh_motion
from motionviz.io.bvh_write import save_bvh
from motionviz.io.footcontact import clean_foot_contacts, foot_contacts

bvhio = pytest.importorskip("bvhio")
REPO = Path(__file__).resolve().parents[1]


def _walk(T: int = 40, fps: float = 20.0, slide: float = 0.0) -> Motion:
    """A stepping motion on the common skeleton (metres, Y-up, facing +Z): each foot planted for half
    a cycle (its ankle sliding ``slide`` m per frame then), lifted and moved forward in the other."""
    rest = {"pelvis": (0, 0.95, 0), "spine": (0, 1.18, 0), "neck": (0, 1.45, 0),
            "left_shoulder": (0.18, 1.42, 0), "left_elbow": (0.2, 1.15, 0), "left_wrist": (0.2, 0.9, 0.05),
            "right_shoulder": (-0.18, 1.42, 0), "right_elbow": (-0.2, 1.15, 0), "right_wrist": (-0.2, 0.9, 0.05),
            "left_hip": (0.1, 0.92, 0), "left_knee": (0.1, 0.5, 0.03), "left_ankle": (0.1, 0.08, 0),
            "right_hip": (-0.1, 0.92, 0), "right_knee": (-0.1, 0.5, 0.03), "right_ankle": (-0.1, 0.08, 0)}
    X = np.repeat(np.array([rest[j] for j in COMMON.joints], np.float64)[None], T, 0)
    t = np.arange(T)
    X[:, :, 2] += 0.01 * t[:, None]                       # the body moves forward 0.2 m/s
    s0 = 10 * (t // 10)
    for k, side in enumerate(("left", "right")):
        a = COMMON.index(f"{side}_ankle")
        kn = COMMON.index(f"{side}_knee")
        planted = ((t // 10) % 2) == k                    # 10 frames planted, 10 in the air
        lift = np.where(planted, 0.0, 0.08 * np.sin(np.pi * (t % 10 + 1) / 11))
        X[:, a, 1] += lift
        X[:, kn, 1] += 0.5 * lift
        # planted: where the stance began (+ a slide); in the air: on to the next stance's place
        stance = 0.01 * s0 + slide * (t - s0)
        air = 0.01 * (s0 - 10) + slide * 9 + (0.2 - slide * 9) * (t - s0 + 1) / 11
        X[:, a, 2] = np.where(planted, stance, air)
    return Motion(X.astype(np.float32), COMMON, fps, MotionLabels(label="test:walk", source="walk"))


def _bvhio_positions(path: Path) -> tuple[list[str], np.ndarray]:
    """Joint names (file order) and world positions (T, J, 3) in file units, from bvhio."""
    root = bvhio.readAsHierarchy(str(path))
    layout = root.layout()
    names = [j.Name for j, _, _ in layout]
    T = len(root.Keyframes)
    X = np.empty((T, len(names), 3))
    for t in range(T):
        root.loadPose(t)
        for k, (j, _, _) in enumerate(layout):
            p = j.PositionWorld
            X[t, k] = (p.x, p.y, p.z)
    return names, X


def _check_bvhio(path: Path, motion: Motion, per_m: float = 100.0, atol_m: float = 1e-4) -> None:
    """bvhio reads ``path`` and finds ``motion``'s joints (named via the sidecar) at the same places."""
    text = path.read_text()
    assert not any(line.lstrip().startswith(("#", "//")) for line in text.splitlines())
    side = json.loads(path.with_name(path.name + ".json").read_text())
    rename = side.get("joint_names", {})
    names, X = _bvhio_positions(path)
    assert X.shape[0] == motion.num_frames
    ours = [motion.skeleton.index(rename.get(n, n)) for n in names]
    np.testing.assert_allclose(X / per_m, motion.joints[:, ours], atol=atol_m)


def test_bvhio_reads_every_bvh_we_write(tmp_path):
    walk = _walk()
    _check_bvhio(save_bvh(walk, tmp_path / "walk.bvh"), walk)
    _check_bvhio(save_bvh(walk, tmp_path / "walk_m.bvh", unit="m"), walk, per_m=1.0)
    rng = np.random.default_rng(0)
    kin = Motion(rng.normal(size=(6, len(KINECT), 3)).astype(np.float32), KINECT, 25.0)
    _check_bvhio(save_bvh(kin, tmp_path / "kinect.bvh"), kin)
    p = save_bvh(walk, tmp_path / "mixamo.bvh", rig="mixamo")
    names, _ = _bvhio_positions(p)
    assert names[0] == "mixamorig:Hips" and "mixamorig:LeftUpLeg" in names and "mixamorig:RightForeArm" in names
    _check_bvhio(p, walk)
    p = save_bvh(walk, tmp_path / "clean.bvh", clean_feet=True)
    _check_bvhio(p, clean_foot_contacts(walk))
    assert json.loads((tmp_path / "clean.bvh.json").read_text())["feet_cleaned"] is True


@pytest.mark.parametrize("rig", ["mixamo", "mixamo-plain", "smpl"])
def test_rig_names_come_back_with_or_without_the_sidecar(tmp_path, rig):
    walk = _walk()
    p = save_bvh(walk, tmp_path / "w.bvh", rig=rig)
    _check_bvhio(p, walk)                                   # every rig's names parse in bvhio
    back = load_bvh_motion(p)                               # the sidecar renames the joints back
    assert back.skeleton.name == "common"
    np.testing.assert_allclose(back.joints, walk.joints, atol=1e-5)
    p.with_name("w.bvh.json").unlink()                      # another tool's file: names are matched
    back = load_bvh_motion(p)
    assert back.skeleton.name == "bvh" and back.labels.extra["unit_in_file"] == "cm"
    np.testing.assert_allclose(back.retarget(COMMON).joints, walk.joints, atol=1e-5)


def test_bvhio_reads_another_tools_skeleton_written_again(tmp_path, capsys):
    """A CMU-style file from another tool (25 joints, an arbitrary unit, 120 fps) exported again, with its
    own joints and as a Mixamo rig: bvhio finds the joints where our reader puts them."""
    from test_retarget import make_bvh

    from motionviz.cli import main
    from motionviz.data import load_user_file

    src = tmp_path / "cmu.bvh"
    src.write_text(make_bvh("cmu", 0.0731, frames=24))
    m = load_user_file(src)
    assert m.skeleton.name == "bvh" and len(m.skeleton) == 25
    assert main(["export", "--input", str(src), "--format", "bvh", "--out", str(tmp_path / "own.bvh")]) == 0
    _check_bvhio(tmp_path / "own.bvh", m)
    assert main(["export", "--input", str(src), "--format", "bvh", "--rig", "mixamo", "--out",
                 str(tmp_path / "mixamo.bvh")]) == 0
    assert "15 joints, retargeted from 25" in capsys.readouterr().out
    _check_bvhio(tmp_path / "mixamo.bvh", m.retarget(COMMON))


def test_foot_contact_clean_up_pins_planted_feet():
    walk = _walk(slide=0.004)                               # planted feet slide 8 cm/s
    c = foot_contacts(walk)
    assert c.shape == (40, 2) and 8 <= c[:10, 0].sum() <= 10 and c[10:20, 0].sum() <= 2
    clean = clean_foot_contacts(walk)
    a = clean.joints[:, COMMON.index("left_ankle")]
    for s in (0, 20):                                       # the left foot's planted runs
        run = [t for t in range(s, s + 10) if c[t, 0]]
        xz = a[run][:, [0, 2]]
        assert np.abs(xz - xz.mean(0)).max() < 1e-5         # no sliding
    before = walk.joints[:, COMMON.index("left_ankle")][c[:, 0]][:, [0, 2]]
    assert np.abs(np.diff(before, axis=0)).max() > 3e-3
    # bone lengths kept, upper body unchanged
    np.testing.assert_allclose(COMMON.bone_lengths(clean.joints), COMMON.bone_lengths(walk.joints), atol=1e-5)
    upper = [COMMON.index(j) for j in COMMON.joints if not j.endswith(("knee", "ankle"))]
    np.testing.assert_array_equal(clean.joints[:, upper], walk.joints[:, upper])
    assert clean.labels.extra["foot_contact_frames"] == int(c.sum())


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "motionviz", "export", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_export_takes_a_sample_batch(tmp_path):
    walk = _walk()
    batch = np.stack([walk.joints, walk.joints + np.float32(0.5), walk.joints * np.float32(0.9)])
    src = tmp_path / "batch.npy"
    np.save(src, batch)                                     # (3, 40, 15, 3) as `sample` writes it
    r = _cli("--input", str(src), "--format", "bvh", "--out", str(tmp_path / "out" / "m.bvh"), "--rig", "mixamo")
    assert r.returncode == 0, r.stderr
    files = sorted((tmp_path / "out").glob("*.bvh"))
    assert [f.name for f in files] == ["m_000.bvh", "m_001.bvh", "m_002.bvh"]
    for i, f in enumerate(files):
        back = load_bvh_motion(f)
        assert back.fps == pytest.approx(20.0)
        np.testing.assert_allclose(back.joints, batch[i], atol=1e-5)
        _check_bvhio(f, Motion(batch[i], COMMON, 20.0))
    r = _cli("--input", str(src), "--format", "npy", "--index", "1", "--out", str(tmp_path / "one.npy"))
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "one.npy"), batch[1])
    r = _cli("--input", str(src), "--format", "npy", "--index", "3", "--out", str(tmp_path / "x.npy"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "out of range" in r.stderr
    r = _cli("--input", str(src), "--format", "json", "--rig", "mixamo")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "bvh only" in r.stderr


# ---- one frame-rate contract: video -> classify -> inpaint -> export --------------------------------
def _tiny_checkpoints(tmp_path: Path) -> Path:
    """A tiny random recogniser and AE-GAN (window 8) in ``tmp_path/ck``."""
    import torch

    from motionviz.core.checkpoint import save_checkpoint
    from motionviz.generators import recognition as R_G
    from motionviz.models import aegan as A
    from motionviz.models import recognition as R
    from motionviz.training import aegan as A_T

    ck = tmp_path / "ck"
    ck.mkdir()
    torch.manual_seed(0)
    rec = R.Recognizer(R.Config(labels=("t:arms", "t:squat", "t:punch"), hidden=16, gru_hidden=12, feature_dim=16,
                                conv_blocks=2, dropout=0.0, batch_size=8)).eval()
    save_checkpoint(ck / R_G.CHECKPOINT_NAME, rec.state_dict(), R.KIND, rec.config,
                    {"correct_labels": [], "score_labels": []})
    A_T.save(A.build_model(A.Config(frames=8, latent=4, channels=(4, 8), batch_size=8)), ck / "aegan.safetensors",
           {"steps": 0})
    return ck


def _video_skeleton(data_root: Path, tmp_path: Path, capsys, name: str) -> tuple[Path, Path, Path, dict]:
    """`video` on the 10 fps example GIF (12 frames, no inpainting) with tiny checkpoints, written to
    ``tmp_path/name``: (gif, checkpoint folder, written file, its --json summary)."""
    from motionviz.cli import main

    gif = data_root / "video" / "pose_classification_pushups_and_squats.gif"
    if not gif.is_file():
        pytest.skip(f"clip not found: {gif}")
    ck = _tiny_checkpoints(tmp_path)
    arr = tmp_path / name
    assert main(["video", str(gif), "--out", str(arr), "--json", "--max-frames", "12", "--no-inpaint",
                 "--checkpoints", str(ck)]) == 0
    return gif, ck, arr, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.slow
def test_video_classify_inpaint_export_chain(data_root, tmp_path, capsys):
    """Every array we write is 20 fps and every reader takes it so: the GIF (10 fps) written by `video`
    is classified exactly as the in-memory motion resampled to 20 fps, inpainted and exported to a
    BVH whose frame time says 20 fps and which bvhio reads."""
    from motionviz import video
    from motionviz.cli import main
    from motionviz.generators import recognition as R_G

    gif, ck, arr, s = _video_skeleton(data_root, tmp_path, capsys, "gif.npy")
    assert s["source_fps"] == pytest.approx(10.0) and s["source_frames"] == 12 and s["fps"] == 20.0
    a = np.load(arr, allow_pickle=False)
    assert a.shape == (23, 15, 3) == (s["frames"], 15, 3)         # 1.1 s at 20 fps
    # the same motion in memory, at the video's rate, resampled as the contract says
    res = video.video_to_motion(gif, max_frames=12, checkpoint_dir=ck, use_inpainter=False,
                                recognise_exercise=False)
    in_memory = res.motion.resample(20.0)
    np.testing.assert_allclose(a, in_memory.joints, atol=1e-6)

    assert main(["classify", "--input", str(arr), "--json", "--checkpoints", str(ck)]) == 0
    pred = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"][0]
    want = R_G.load_recognizer(ck / R_G.CHECKPOINT_NAME).predict([in_memory.joints])[0]
    assert pred["label"] == want["label"] and pred["probability"] == pytest.approx(want["probability"], abs=1e-5)
    wrong = R_G.load_recognizer(ck / R_G.CHECKPOINT_NAME).predict([res.motion.joints])[0]   # 10 fps read as 20
    assert wrong["probability"] != pytest.approx(want["probability"], abs=1e-5)

    filled = tmp_path / "filled.npy"
    assert main(["inpaint", "--input", str(arr), "--out", str(filled), "--steps", "2", "--window", "8",
                 "--checkpoint", str(ck / "aegan.safetensors"), "--no-progress", "--json"]) == 0
    capsys.readouterr()
    b = np.load(filled, allow_pickle=False)
    assert b.shape == a.shape and np.isfinite(b).all()

    out = tmp_path / "filled.bvh"
    assert main(["export", "--input", str(filled), "--format", "bvh", "--out", str(out)]) == 0
    back = load_bvh_motion(out)
    assert back.fps == pytest.approx(20.0) and back.num_frames == a.shape[0]
    assert "Frame Time: 0.05000000" in out.read_text()
    np.testing.assert_allclose(back.joints, b, atol=1e-5)
    _check_bvhio(out, Motion(b, COMMON, 20.0))


@pytest.mark.slow
def test_npz_chain_keeps_the_rate(data_root, tmp_path, capsys):
    """The same chain with ``.npz`` files, which carry their rate: `video` stores 20 fps with the array,
    `classify` and `inpaint` read it, `inpaint` stores the rate of what it wrote, `export` writes BVH at
    that rate and an ``.npz`` at another rate (``--fps 30``) that every reader then takes at 30 fps."""
    from motionviz import video
    from motionviz.cli import main
    from motionviz.data import load_user_file
    from motionviz.generators import recognition as R_G

    gif, ck, arr, s = _video_skeleton(data_root, tmp_path, capsys, "gif.npz")
    with np.load(arr, allow_pickle=False) as z:
        assert sorted(z.files) == ["fps", "joints", "skeleton"]
        a, fps, sk = z["joints"], float(z["fps"]), str(z["skeleton"])
    assert fps == 20.0 == s["fps"] and sk == "common" and a.shape == (23, 15, 3) and s["source_fps"] == pytest.approx(10)
    res = video.video_to_motion(gif, max_frames=12, checkpoint_dir=ck, use_inpainter=False, recognise_exercise=False)
    in_memory = res.motion.resample(20.0)
    np.testing.assert_allclose(a, in_memory.joints, atol=1e-6)

    rec = R_G.load_recognizer(ck / R_G.CHECKPOINT_NAME)
    want = rec.predict([in_memory.joints])[0]
    assert main(["classify", "--input", str(arr), "--json", "--checkpoints", str(ck)]) == 0
    pred = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"][0]
    assert pred["label"] == want["label"] and pred["probability"] == pytest.approx(want["probability"], abs=1e-5)

    filled = tmp_path / "filled.npz"
    assert main(["inpaint", "--input", str(arr), "--out", str(filled), "--steps", "2", "--window", "8",
                 "--checkpoint", str(ck / "aegan.safetensors"), "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["fps"] == 20.0
    with np.load(filled, allow_pickle=False) as z:
        b, fps = z["joints"], float(z["fps"])
    assert fps == 20.0 and b.shape == a.shape and np.isfinite(b).all()
    rc = main(["inpaint", "--input", str(arr), "--fps", "10", "--out", str(filled), "--checkpoint",
               str(ck / "aegan.safetensors"), "--no-progress"])
    assert rc == 2 and "carries its own rate" in capsys.readouterr().err

    out = tmp_path / "filled.bvh"
    assert main(["export", "--input", str(filled), "--format", "bvh", "--out", str(out)]) == 0
    back = load_bvh_motion(out)
    assert back.fps == pytest.approx(20.0) and back.num_frames == 23 and "Frame Time: 0.05000000" in out.read_text()
    np.testing.assert_allclose(back.joints, b, atol=1e-5)
    _check_bvhio(out, Motion(b, COMMON, 20.0))

    # another rate, stored with the data: 1.1 s at 30 fps; read at 30 fps, resampled to 20 for the models
    f30 = tmp_path / "f30.npz"
    assert main(["export", "--input", str(filled), "--format", "npz", "--fps", "30", "--out", str(f30)]) == 0
    m30 = load_user_file(f30)
    assert m30.fps == 30.0 and m30.num_frames == 34 and m30.skeleton.name == "common"
    capsys.readouterr()
    assert main(["classify", "--input", str(f30), "--json", "--checkpoints", str(ck)]) == 0
    p30 = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"][0]
    same = rec.predict([m30.resample(20.0).joints])[0]
    assert p30["probability"] == pytest.approx(same["probability"], abs=1e-5)
    misread = rec.predict([m30.joints])[0]                        # 30 fps taken as 20: another answer
    assert misread["probability"] != pytest.approx(same["probability"], abs=1e-5)


def test_npz_reading_errors_are_one_line(tmp_path):
    from motionviz.core.errors import UserError
    from motionviz.data import load_user_file
    from motionviz.export import save_npz

    walk = _walk(fps=25.0)
    back = load_user_file(save_npz(walk, tmp_path / "w.npz"))
    assert back.fps == 25.0 and back.skeleton.name == "common"
    np.testing.assert_array_equal(back.joints, walk.joints)
    cases = {
        "pickled.npz": dict(joints=np.array([object()], dtype=object)),
        "nojoints.npz": dict(positions=walk.joints),
        "badfps.npz": dict(joints=walk.joints, fps=np.array([0.0])),
        "twofps.npz": dict(joints=walk.joints, fps=np.array([20.0, 30.0])),
        "badskeleton.npz": dict(joints=walk.joints, fps=np.float64(20), skeleton=np.str_("robot")),
        "wrongshape.npz": dict(joints=walk.joints[..., :2], fps=np.float64(20)),
    }
    for name, arrays in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(UserError) as e:
            load_user_file(tmp_path / name)
        assert "\n" not in str(e.value) and str(e.value).startswith(name), (name, str(e.value))
    (tmp_path / "notzip.npz").write_bytes(b"hello, not a zip")
    with pytest.raises(UserError, match="not a valid .npz"):
        load_user_file(tmp_path / "notzip.npz")
