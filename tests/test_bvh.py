"""BVH reader / FK / writer: known answers on hand-made files, real Bandai-Namco files, round trips."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import numpy as np
import pytest

from motionviz.core.errors import UserError
from motionviz.core.motion import Motion
from motionviz.core.skeleton import BANDAI, COMMON, KINECT
from motionviz.io.bvh import euler_to_matrix, read_bvh
from motionviz.io.bvh_motion import bvh_to_motion, load_bvh_motion
from motionviz.io.bvh_write import save_bvh, write_bvh

BANDAI_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bandai" / "dataset-2" / "data"
WALK = BANDAI_DIR / "dataset-2_walk_normal_001.bvh.xz"
needs_data = pytest.mark.skipif(not WALK.exists(), reason="Bandai data not available")

# A tiny arm: root at (0, 100, 0) with a 90 degree Z rotation, upper arm offset 10 along +X, and a
# forearm whose channels are in X-Y-Z order.
TINY = """HIERARCHY
ROOT Root
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Arm
  {
    OFFSET 10 0 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    JOINT Fore
    {
      OFFSET 5 0 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 2 0 0
      }
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.05
0 100 0 90 0 0   0 0 0   0 0 0
1 100 0 0 0 0    0 90 0  0 0 0
"""


def test_tiny_known_answer():
    b = read_bvh(TINY)
    assert b.names == ["Root", "Arm", "Fore"] and b.parents == [-1, 0, 1]
    assert b.channels[1] == ("Xrotation", "Yrotation", "Zrotation")
    assert b.motion.shape == (2, 12) and b.fps == pytest.approx(20.0)
    X = b.positions(include_end_sites=True)
    assert X.shape == (2, 4, 3)
    # frame 0: Rz(90) turns +X into +Y, so the arm points up
    np.testing.assert_allclose(X[0], [[0, 100, 0], [0, 110, 0], [0, 115, 0], [0, 117, 0]], atol=1e-9)
    # frame 1: root moved by 1 in x, Arm's Ry(90) turns +X into -Z for its children
    np.testing.assert_allclose(X[1], [[1, 100, 0], [11, 100, 0], [11, 100, -5], [11, 100, -7]], atol=1e-9)


def test_channel_order_is_respected():
    # Rz(30) Rx(40) Ry(50) as a product of channel matrices, compared with euler_to_matrix
    R = euler_to_matrix(np.array([30.0, 40.0, 50.0]), "ZXY")
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    Rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    c, s = np.cos(np.radians(40)), np.sin(np.radians(40))
    Rx = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    c, s = np.cos(np.radians(50)), np.sin(np.radians(50))
    Ry = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    np.testing.assert_allclose(R, Rz @ Rx @ Ry, atol=1e-12)
    text = TINY.replace("0 100 0 90 0 0   0 0 0   0 0 0", "0 0 0 30 40 50   0 0 0   0 0 0")
    X = read_bvh(text).positions()
    np.testing.assert_allclose(X[0, 1], Rz @ Rx @ Ry @ np.array([10.0, 0, 0]), atol=1e-9)


@pytest.mark.parametrize("bad, msg", [
    ("", "empty"),
    ("hello world\n", "HIERARCHY"),
    (TINY.split("MOTION")[0], "MOTION"),
    (TINY.replace("OFFSET 10 0 0", "OFFSET 10 zero 0"), "number"),
    (TINY.replace("Xrotation Yrotation Zrotation", "Xrotation Yrotation Wrotation"), "unknown channel"),
    (TINY.replace("CHANNELS 3 Zrotation", "CHANNELS 9 Zrotation"), "channels"),
    (TINY.replace("Frames: 2", "Frames: 3"), "truncated"),
    (TINY.replace("Frames: 2", "Frames: 0"), "no frames"),
    (TINY.replace("Frame Time: 0.05", "Frame Time: 0"), "Frame Time"),
    (TINY.replace("1 100 0 0 0 0", "1 100 0 nan 0 0"), "NaN"),
    (TINY.replace("1 100 0 0 0 0", "1 100 0 x 0 0"), "non-number"),
    (TINY.replace("JOINT Fore", "JOINT Arm"), "twice"),
    (TINY.replace("  }\n}\nMOTION", "}\nMOTION"), "hierarchy"),
])
def test_malformed_files_raise_user_error(bad, msg):
    with pytest.raises(UserError, match=msg):
        read_bvh(bad)


def test_missing_file_and_size_limit(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_bvh(tmp_path / "nope.bvh")
    p = tmp_path / "big.bvh"
    p.write_text(TINY)
    with pytest.raises(UserError, match="too large"):
        read_bvh(p, max_bytes=100)
    x = tmp_path / "a.bvh.xz"
    x.write_bytes(lzma.compress(TINY.encode()))
    with pytest.raises(UserError, match="larger than"):
        read_bvh(x, max_bytes=100)
    np.testing.assert_allclose(read_bvh(x).positions(), read_bvh(p).positions())
    (tmp_path / "bad.bvh.xz").write_bytes(b"\xfd7zXZ\x00garbage")
    with pytest.raises(UserError, match="xz"):
        read_bvh(tmp_path / "bad.bvh.xz")


@needs_data
def test_real_bandai_walk():
    b = read_bvh(WALK)
    assert b.names == list(BANDAI.joints) and len(b.end_sites) == 5
    assert b.num_frames == 273 and b.fps == pytest.approx(30.0, rel=1e-4)
    X = b.positions()                                       # (T, 22, 3) cm
    bl = BANDAI.bone_lengths(X)[:, 1:]                      # skip joint_Root -> Hips (the root travels)
    assert bl.std(axis=0).max() < 1e-6                      # rigid bones
    head = X[:, BANDAI.index("Head"), 1]
    hips = X[:, BANDAI.index("Hips"), 1]
    assert 130 < np.median(head) < 142 and 85 < np.median(hips) < 95
    toes = X[:, [BANDAI.index("Toes_L"), BANDAI.index("Toes_R")]]
    lowest = toes[..., 1].min(axis=1)
    assert 2 < np.median(lowest) < 7                        # toes on the floor
    # planted feet: the lowest toe hardly slides while the body walks ~1 m/s
    k = toes[..., 1].argmin(axis=1)
    p = toes[np.arange(len(X)), k][:, [0, 2]]
    slide = np.median(np.linalg.norm(np.diff(p, axis=0), axis=1)) / b.frame_time
    travel = np.linalg.norm(X[-1, 1, [0, 2]] - X[0, 1, [0, 2]]) / (b.num_frames * b.frame_time)
    assert slide < 5 and travel > 50
    m = bvh_to_motion(b)
    assert m.skeleton is BANDAI and m.fps == pytest.approx(30.0, rel=1e-4)
    np.testing.assert_allclose(m.joints, X * 0.01, atol=1e-6)


def _roundtrip(m: Motion, unit: str = "cm") -> np.ndarray:
    """Write with the sidecar, read back through it (random joints are no body: the units, axes and
    floor cannot be guessed, the sidecar carries them)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = save_bvh(m, Path(d) / "m.bvh", unit=unit)
        assert "#" not in path.read_text()
        back = load_bvh_motion(path)
    assert back.skeleton.name == m.skeleton.name and back.fps == pytest.approx(m.fps)
    return back.joints


def test_roundtrip_random_any_skeleton():
    rng = np.random.default_rng(0)
    m = Motion(rng.normal(size=(12, len(KINECT), 3)).astype(np.float32), KINECT, fps=25)
    for unit in ("cm", "m"):
        np.testing.assert_allclose(_roundtrip(m, unit), m.joints, atol=1e-4)
    one = Motion(rng.normal(size=(1, len(COMMON), 3)).astype(np.float32), COMMON)
    np.testing.assert_allclose(_roundtrip(one), one.joints, atol=1e-4)


@needs_data
def test_roundtrip_real_and_bones_point_right(tmp_path):
    m = bvh_to_motion(read_bvh(WALK)).retarget(COMMON)
    path = save_bvh(m, tmp_path / "walk.bvh")
    text = path.read_text()
    assert text.startswith("HIERARCHY\nROOT pelvis\n") and "#" not in text
    meta = json.loads((tmp_path / "walk.bvh.json").read_text())
    assert meta["units"] == "cm" and meta["fps"] == pytest.approx(30.0, rel=1e-4) and meta["up"] == "+Y"
    np.testing.assert_allclose(load_bvh_motion(path).joints, m.joints, atol=1e-4)
    # without the sidecar a real body is read the same: units from its height, Y-up, on the floor
    b = read_bvh(text)
    np.testing.assert_allclose(bvh_to_motion(b).joints, m.joints, atol=1e-4)
    # the rotations explain the bone directions: limb translation channels stay along the OFFSET
    _, trans = b.local_transforms()
    for name in ("left_elbow", "left_wrist", "right_knee", "right_ankle"):
        j = b.names.index(name)
        t, o = trans[:, j], b.offsets[j]
        cos = t @ o / np.linalg.norm(t, axis=1) / np.linalg.norm(o)
        assert cos.min() > 0.999, name


def test_nan_is_filled_or_refused():
    rng = np.random.default_rng(1)
    j = rng.normal(size=(10, len(COMMON), 3)).astype(np.float32)
    j[3:5, COMMON.index("left_wrist")] = np.nan
    out = bvh_to_motion(read_bvh(write_bvh(Motion(j, COMMON))), scale=0.01, axes="xyz", floor=False)
    assert np.isfinite(out.joints).all()
    ok = np.isfinite(j).all(-1)
    np.testing.assert_allclose(out.joints[ok], j[ok], atol=1e-4)
    mid = (j[2, COMMON.index("left_wrist")] + j[5, COMMON.index("left_wrist")]) / 2
    np.testing.assert_allclose(out.joints[3:5, COMMON.index("left_wrist")].mean(0), mid, atol=1e-4)
    j[:, COMMON.index("neck")] = np.nan
    with pytest.raises(UserError, match="neck"):
        write_bvh(Motion(j, COMMON))


def test_axes_and_scale_options():
    b = read_bvh(TINY)
    m = bvh_to_motion(b, scale=0.01, axes="-x,y,-z")
    np.testing.assert_allclose(m.joints[1, 2], [-0.11, 1.0, 0.05], atol=1e-6)
    with pytest.raises(UserError, match="axes"):
        bvh_to_motion(b, axes="x,x,z")
    with pytest.raises(UserError, match="no joint"):
        bvh_to_motion(b, skeleton=COMMON)
