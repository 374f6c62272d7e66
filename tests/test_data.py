"""Data layer: readers on real files (small slices), FK known answers, splits, captions, corpus cache,
CLI summary counts and user-file validation."""

from __future__ import annotations

import io
import json
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from motionviz.core.errors import DataNotFound, UserError
from motionviz.core.motion import REFERENCE_BONE_SUM, Motion, MotionLabels
from motionviz.core.skeleton import BANDAI, COMMON, KIMORE18, KINECT, SMPL22, UIPRMD
from motionviz.data import (
    BANDAI_STYLES,
    CORPUS_DATASETS,
    DATASETS,
    LABEL_MIRROR,
    LABEL_TITLES,
    augment_mirror,
    captions,
    describe,
    keraal_exercise,
    label_names,
    load_corpus,
    load_dataset,
    load_user_file,
    split_of,
)
from motionviz.data import data_root as find_root
from motionviz.data.registry import EXTRA_DATASETS, SPECS, spec


def _sanity(m: Motion, pelvis: str, head: str, l_sh: str, r_sh: str, ankles: tuple[str, str],
            floor_max: float = 0.25) -> None:
    """Upright, feet near the floor, left at +X (checked on the median frame)."""
    sk = m.skeleton
    j = np.nanmedian(m.joints, axis=0)
    assert j[sk.index(head), 1] > j[sk.index(pelvis), 1] + 0.3
    assert min(j[sk.index(a), 1] for a in ankles) < floor_max
    assert j[sk.index(l_sh), 0] > j[sk.index(r_sh), 0]


# ---------------------------------------------------------------------------------------------
# data_root
# ---------------------------------------------------------------------------------------------
def test_data_root_resolution(tmp_path, monkeypatch):
    assert find_root(tmp_path) == tmp_path.resolve()
    monkeypatch.setenv("MOTIONVIZ_DATA", str(tmp_path))
    assert find_root() == tmp_path.resolve()
    missing = tmp_path / "nope"
    monkeypatch.setenv("MOTIONVIZ_DATA", str(missing))
    with pytest.raises(DataNotFound, match="nope"):
        find_root()
    with pytest.raises(DataNotFound, match="argument"):
        find_root(missing)


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(DataNotFound, match="ui-prmd"):
        load_dataset("ui-prmd", root=tmp_path)
    with pytest.raises(UserError, match="unknown dataset"):
        load_dataset("nope", root=tmp_path)


# ---------------------------------------------------------------------------------------------
# UI-PRMD forward kinematics
# ---------------------------------------------------------------------------------------------
def test_dataset_specs_are_the_one_table():
    """Every dataset name has exactly one spec, and the registry, the index and the corpus read it."""
    assert set(SPECS) == set(DATASETS) | set(EXTRA_DATASETS)
    for name, sp in SPECS.items():
        assert sp.name == name and sp.fps > 0 and len(sp.skeleton) >= 15 and not sp.folder.startswith("/")
    assert {n for n, sp in SPECS.items() if sp.read_file is not None} == {"ui-prmd", "irds", "bandai"}
    assert SPECS["keraal"].in_corpus(Motion(np.zeros((2, len(KINECT), 3), np.float32), KINECT,
                                            labels=MotionLabels(extra={"modality": "kinect"})))
    assert not SPECS["keraal"].in_corpus(Motion(np.zeros((2, len(KINECT), 3), np.float32), KINECT,
                                                labels=MotionLabels(extra={"modality": "vicon"})))
    with pytest.raises(UserError, match="unknown dataset"):
        spec("nope")
    # the split rules come from the table; a dataset without a spec (a user file's) is hashed
    assert [split_of("ui-prmd", s) for s in ("s01", "s07", "s08", "s09", "s10")] == ["train"] * 2 + ["val"] + ["test"] * 2
    assert split_of("keraal", "G1") == "test" and split_of("humanml3d", "000021") == "train"
    assert split_of("irds", "216") == "test" and split_of("irds", "215") == "train"
    assert split_of("kimore", "raw1") == "test" and split_of("my-upload", "x") in ("train", "val", "test")


def test_euler_yxz_known_answer():
    from motionviz.data.uiprmd import euler_yxz
    R = euler_yxz(np.array([90.0, 0, 0]))          # Rx(90): y -> z
    assert np.allclose(R @ [0, 1, 0], [0, 0, 1], atol=1e-12)
    R = euler_yxz(np.array([0, 0, 90.0]))          # Rz(90): x -> y
    assert np.allclose(R @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    a = np.array([30.0, 40.0, 50.0])
    c = np.cos(np.deg2rad(a))
    s = np.sin(np.deg2rad(a))
    Rx = np.array([[1, 0, 0], [0, c[0], -s[0]], [0, s[0], c[0]]])
    Ry = np.array([[c[1], 0, s[1]], [0, 1, 0], [-s[1], 0, c[1]]])
    Rz = np.array([[c[2], -s[2], 0], [s[2], c[2], 0], [0, 0, 1]])
    assert np.allclose(euler_yxz(a), Rz @ Rx @ Ry)


def test_uiprmd_fk_rigid_bones_synthetic():
    from motionviz.data.uiprmd import uiprmd_fk
    rng = np.random.default_rng(0)
    off = rng.normal(size=(1, 22, 3)).repeat(50, 0)          # constant offsets, random rotations
    ang = rng.uniform(-180, 180, size=(50, 22, 3))
    X = uiprmd_fk(off, ang)
    bl = UIPRMD.bone_lengths(X)                               # (T, B)
    expect = np.linalg.norm(off[0, 1:], axis=-1)
    assert np.allclose(bl, expect[None], atol=1e-9)


def test_uiprmd_reader(data_root):
    from motionviz.data.uiprmd import _read_matrix, read_uiprmd
    folder = data_root / "ui-prmd"
    for sub, suffix, correct in (("Segmented Movements", "", True), ("Incorrect Segmented Movements", "_inc", False)):
        f = folder / sub / "Kinect" / "Positions" / f"m01_s01_e01_positions{suffix}.txt.gz"
        m = read_uiprmd(f)
        assert m.skeleton is UIPRMD and m.fps == 30 and m.joints.shape[1:] == (22, 3)
        assert m.label == "ui-prmd:m01" and m.labels.subject == "s01" and m.labels.correct is correct
        # FK bone lengths equal the per-frame offset lengths (cm -> m)
        p = _read_matrix(f)
        assert np.allclose(UIPRMD.bone_lengths(m.joints), np.linalg.norm(p[:, 1:], axis=-1) * 0.01, atol=1e-5)
        # bones are nearly rigid over time (Kinect noise; deep squats shrink shanks a little)
        bl = UIPRMD.bone_lengths(m.joints)
        arm = [UIPRMD.bones.index((UIPRMD.index("LeftUpperArm"), UIPRMD.index("LeftForearm")))]
        assert float((bl[:, arm].std(0) / bl[:, arm].mean(0)).max()) < 0.05
        _sanity(m, "Waist", "Head", "LeftUpperArm", "RightUpperArm", ("LeftFoot", "RightFoot"))
        assert abs(np.degrees(m.facing_angle(0))) < 35          # faces +Z (towards the camera)
    sq = read_uiprmd(folder / "Segmented Movements" / "Kinect" / "Positions" / "m01_s01_e01_positions.txt.gz")
    w = sq.joints[:, UIPRMD.index("Waist"), 1]
    assert w.max() - w.min() > 0.2                               # a deep squat goes down


# ---------------------------------------------------------------------------------------------
# KIMORE, IRDS, HumanML3D, KERAAL, Bandai
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_kimore_patients(data_root):
    ms = load_dataset("kimore")
    assert len(ms) == 155
    assert len({m.labels.subject for m in ms}) == 31
    assert sorted({m.label for m in ms}) == [f"kimore:ex{i}" for i in range(1, 6)]
    scores = np.load(data_root / "kimore/patients-wsdba/Kimore_resampled/ex3/Scores.npy").ravel()
    m = next(m for m in ms if m.label == "kimore:ex3")
    assert m.labels.score == pytest.approx(scores[m.labels.extra["index"]])
    assert all(0 <= m.labels.score <= 100 for m in ms)
    for m in ms:
        assert m.skeleton is KIMORE18 and m.num_frames > 600
        ok = m.observed.all(axis=1)
        assert ok[0] and ok[-1]
        assert (-m.joints[ok][..., 2].mean(axis=1) >= 1.5).all()     # no collapsing frames left
    _sanity(ms[0], "SpineBase", "Neck", "ShoulderLeft", "ShoulderRight", ("AnkleLeft", "AnkleRight"), 9)


def test_kimore_raw(data_root):
    from motionviz.data.kimore import read_kimore_raw
    base = data_root / "kimore/raw-samples"
    raw = read_kimore_raw(base / "JointPositionExercise1.csv.xz")
    flt = read_kimore_raw(base / "JointPositionExercise1(2)Filtered.csv.xz")
    assert raw.skeleton is KINECT and raw.num_frames == 505 and flt.num_frames == 904
    assert raw.labels.subject == "raw1" and flt.labels.subject == "raw2" and flt.labels.extra["kind"] == "filtered"
    j = np.median(raw.joints, 0)
    assert j[KINECT.index("ShoulderLeft"), 0] > j[KINECT.index("ShoulderRight"), 0]
    assert j[KINECT.index("Head"), 1] > j[KINECT.index("SpineBase"), 1]


def test_irds(data_root):
    ms = load_dataset("irds", limit=12)
    m = ms[0]
    assert m.skeleton is KINECT and m.label == "irds:0" and m.labels.subject == "215" and m.labels.correct is True
    assert any(x.labels.correct is False for x in ms)
    # gesture 0 ("elbow flexion left" upstream) moves the anatomical RIGHT wrist (documented naming issue)
    rng = lambda n: np.ptp(m.joints[:, KINECT.index(n), 1])
    assert rng("WristRight") > 2 * rng("WristLeft")
    _sanity(m, "SpineBase", "Head", "ShoulderLeft", "ShoulderRight", ("AnkleLeft", "AnkleRight"), 9)


def test_humanml3d(data_root):
    (m,) = load_dataset("humanml3d")
    assert m.skeleton is SMPL22 and m.joints.shape == (170, 22, 3) and m.fps == 20
    assert m.label == "humanml3d:012314"
    _sanity(m, "pelvis", "head", "left_shoulder", "right_shoulder", ("left_ankle", "right_ankle"))


@pytest.mark.slow
def test_keraal_modalities_and_alignment(data_root):
    ms = load_dataset("keraal")
    assert len(ms) == 15
    assert {m.labels.extra["modality"] for m in ms} == {"kinect", "vicon", "blazepose", "openpose", "alphapose"}
    ex = keraal_exercise("keraal:ELK")
    assert set(ex.tracks) == {"blazepose", "openpose", "alphapose"}
    lw, rs, ls = COMMON.index("left_wrist"), COMMON.index("right_shoulder"), COMMON.index("left_shoulder")
    for name, t in ex.tracks.items():
        assert t.skeleton is COMMON and t.num_frames == ex.frames
        assert np.nanmean(t.joints[:, ls, 0] - t.joints[:, rs, 0]) > 0.1       # de-mirrored: left at +X
        a, b = t.joints[:, lw, 1], ex.kinect.joints[:, lw, 1]
        ok = np.isfinite(a)
        assert np.corrcoef(a[ok], b[ok])[0, 1] > 0.9
        assert ex.fits[name][3] < 0.2                                            # rms metres
    with pytest.raises(UserError):
        keraal_exercise("XYZ")


def test_bandai(data_root):
    pytest.importorskip("motionviz.io.bvh")
    from motionviz.data.bandai import read_bandai
    d1 = data_root / "bandai/dataset-1/data"
    m = read_bandai(d1 / "dataset-1_walk_normal_002.bvh.xz")          # joint_Root carries the travel
    assert m.skeleton is BANDAI and m.fps == pytest.approx(30, abs=0.01)
    assert m.label == "bandai:walk" and m.labels.style == "normal"
    hips = m.joints[:, BANDAI.index("Hips")]
    assert hips[-1, 2] - hips[0, 2] > 1.0                              # walks forward along +Z
    assert 0.8 < np.median(hips[:, 1]) < 1.0                           # not lifted by the stale OFFSET
    toes = m.joints[:, [BANDAI.index("Toes_L"), BANDAI.index("Toes_R")], 1]
    assert 0.0 < toes.min() < 0.08
    _sanity(m, "Hips", "Head", "UpperArm_L", "UpperArm_R", ("Foot_L", "Foot_R"))
    m2 = read_bandai(data_root / "bandai/dataset-2/data/dataset-2_wave-left-hand_normal_001.bvh.xz")
    assert m2.label == "bandai:wave-left-hand"
    assert np.ptp(m2.joints[:, BANDAI.index("Hand_L"), 1]) > np.ptp(m2.joints[:, BANDAI.index("Hand_R"), 1])


# ---------------------------------------------------------------------------------------------
# Summary counts (CLI), splits, labels, captions
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_summary_counts(data_root):
    from motionviz.cli import main
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["data", "summary", "--json"]) == 0
    s = json.loads(buf.getvalue())
    assert set(s) == set(DATASETS)
    assert (s["ui-prmd"]["sequences"], s["ui-prmd"]["frames"]) == (2000, 151158)
    assert s["kimore"]["sequences"] == 155 and s["kimore"]["raw_sequences"] == 20
    assert (s["irds"]["sequences"], s["irds"]["frames"]) == (188, 14142)
    assert (s["bandai"]["sequences"], s["bandai"]["frames"]) == (3076, 31914 + 384931)
    assert s["humanml3d"]["frames"] == 170
    for name, d in s.items():
        for k in ("sequences", "frames", "joints", "subjects", "labels"):
            assert isinstance(d[k], int) and d[k] > 0, (name, k)
        assert d["labels"] == len(d["label_names"])
        assert set(d["label_names"]) <= set(label_names([name]))
    assert set(s["bandai"]["label_names"]) == set(label_names(["bandai"]))


def test_cli_without_data(monkeypatch, capsys, tmp_path):
    from motionviz.cli import main
    monkeypatch.setenv("MOTIONVIZ_DATA", str(tmp_path / "absent"))
    assert main(["data", "summary", "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "absent" in err and "\n" not in err


@pytest.mark.slow
def test_splits_deterministic_disjoint_and_cover_labels(data_root):
    from motionviz.data.index import dataset_index
    for name in CORPUS_DATASETS:
        rows = dataset_index(name)
        by_split: dict[str, set[str]] = {"train": set(), "val": set(), "test": set()}
        labels_in: dict[str, set[str]] = {"train": set(), "val": set(), "test": set()}
        for r in rows:
            sp = split_of(name, r["subject"])
            assert sp == split_of(name, r["subject"])
            by_split[sp].add(r["subject"])
            labels_in[sp].add(r["label"])
        assert not (by_split["train"] & by_split["val"]) and not (by_split["train"] & by_split["test"])
        assert labels_in["train"] == {r["label"] for r in rows}, name       # every label seen in training
        n = len(rows)
        train = sum(split_of(name, r["subject"]) == "train" for r in rows)
        if name != "humanml3d":
            assert 0.55 < train / n < 0.85, (name, train / n)
    assert split_of("ui-prmd", "s07") == "train" and split_of("ui-prmd", "s08") == "val"
    assert split_of("ui-prmd", "s09") == "test" and split_of("keraal", "P1") == "test"


def test_captions_every_label():
    labels = label_names() + [f"style:{s}" for s in BANDAI_STYLES]
    for lab in labels:
        caps = captions(lab)
        assert len(caps) >= 5 and len(set(caps)) == len(caps), lab
        assert all(isinstance(c, str) and len(c) > 10 for c in caps)
        assert lab in LABEL_TITLES
    with pytest.raises(UserError):
        captions("ui-prmd:m99")
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    lab = MotionLabels(dataset="bandai", label="bandai:walk", style="elderly")
    assert describe(lab, rng1) == describe(lab, rng2)
    text = describe(MotionLabels(label="ui-prmd:m01", correct=False))
    assert "incorrect" in text and captions("ui-prmd:m01")[0] in text
    assert captions("style:elderly")[0] in describe(lab)
    assert describe(MotionLabels(label="user:x")) == "a person moves"
    assert "limited" in describe(MotionLabels(label="kimore:ex5", score=20.0))


def test_mirror_augmentation_swaps_sided_labels():
    for a, b in LABEL_MIRROR.items():
        assert LABEL_MIRROR[b] == a and a != b
    rng = np.random.default_rng(0)
    ms = [Motion(rng.normal(size=(4, 15, 3)).astype(np.float32), COMMON, 20, MotionLabels(label=l))
          for l in ("irds:0", "bandai:wave-left-hand", "ui-prmd:m01", "irds:6")]
    out = augment_mirror(ms)
    assert len(out) == 8
    mir = out[1::2]
    assert [m.label for m in mir] == ["irds:1", "bandai:wave-right-hand", "ui-prmd:m01", "irds:6"]
    assert all(m.labels.extra["mirrored"] for m in mir)
    back = augment_mirror(mir, include_original=False)
    assert np.allclose(back[0].joints, ms[0].joints) and back[0].label == "irds:0"
    l, r = COMMON.index("left_wrist"), COMMON.index("right_wrist")
    assert np.allclose(mir[0].joints[:, l, 0], -ms[0].joints[:, r, 0])


# ---------------------------------------------------------------------------------------------
# Corpus (small datasets, private cache)
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_load_corpus_cached(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONVIZ_CACHE", str(tmp_path))
    t0 = time.perf_counter()
    allm = load_corpus("all", ["kimore", "humanml3d"])
    t1 = time.perf_counter()
    again = load_corpus("all", ["kimore", "humanml3d"])
    t2 = time.perf_counter()
    assert len(allm) == 156 == len(again)
    assert t2 - t1 < max(0.5 * (t1 - t0), 0.5)
    assert len(list(tmp_path.glob("corpus-*.npz"))) == 2
    for a, b in zip(allm, again):
        assert np.array_equal(a.joints, b.joints) and a.labels == b.labels
    for m in allm:
        assert m.skeleton is COMMON and m.fps == 20 and np.isfinite(m.joints).all()
        assert m.body_size() == pytest.approx(REFERENCE_BONE_SUM["common"], rel=1e-3)
        assert abs(np.degrees(m.facing_angle(0))) < 1
    km = next(m for m in allm if m.labels.dataset == "kimore")
    assert km.num_frames == pytest.approx((738 - 1) * 20 / 30 + 1, abs=1)   # 30 fps -> 20 fps
    tr, va, te = (load_corpus(s, ["kimore"]) for s in ("train", "val", "test"))
    assert (len(tr), len(va), len(te)) == (110, 15, 30)
    assert not ({m.labels.subject for m in tr} & {m.labels.subject for m in te})
    with pytest.raises(UserError):
        load_corpus("bogus")


# ---------------------------------------------------------------------------------------------
# User files
# ---------------------------------------------------------------------------------------------
def _write(p: Path, data) -> Path:
    if isinstance(data, bytes):
        p.write_bytes(data)
    else:
        data = np.asarray(data)
        # only the deliberately pickled object array (the loader must refuse it) is written with pickle;
        # nothing here ever loads with allow_pickle
        np.save(p, data, allow_pickle=data.dtype == object)
    return p


def test_user_files_good(tmp_path, data_root):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 15, 3)).astype(np.float32) * 0.3
    m = load_user_file(_write(tmp_path / "a.npy", x))
    assert m.skeleton is COMMON and m.num_frames == 12 and np.allclose(m.joints, x)
    m = load_user_file(_write(tmp_path / "b.npy", rng.normal(size=(5, 25, 3)).astype(np.float32)))
    assert m.skeleton is KINECT
    m = load_user_file(_write(tmp_path / "c.npy", rng.normal(size=(5, 22, 3)) * 30))   # cm -> m
    assert m.skeleton is SMPL22 and m.labels.extra["unit_in_file"] == "cm"
    csv = "\n".join(",".join(f"{v:.4f}" for v in f.ravel()) for f in x)
    m = load_user_file(_write(tmp_path / "d.csv", ("h," * 44 + "h\n" + csv).encode()))
    assert m.num_frames == 12 and np.allclose(m.joints, x, atol=1e-4)
    ref = Motion(x, COMMON, 25, MotionLabels(label="ui-prmd:m01"))
    m = load_user_file(_write(tmp_path / "e.json", ref.to_json().encode()))
    assert m.fps == 25 and m.label == "ui-prmd:m01"
    pytest.importorskip("motionviz.io.bvh")
    m = load_user_file(data_root / "bandai/dataset-2/data/dataset-2_walk_normal_001.bvh.xz")
    assert m.num_frames > 10 and 1.0 < np.nanmax(m.joints[..., 1]) < 2.0             # metres


@pytest.mark.parametrize("name,content,match", [
    ("bad.npy", b"\x93NUMPY garbage", "valid .npy"),
    ("text.npy", b"hello world", "valid .npy"),
    ("obj.npy", np.array([{"a": 1}], dtype=object), "pickled"),
    ("joints.npy", np.zeros((10, 16, 3), np.float32), "16 joints"),
    ("shape.npy", np.zeros((10, 15), np.float32), "shape"),
    ("nan.npy", np.full((10, 15, 3), np.nan, np.float32), "NaN"),
    ("inf.npy", np.full((10, 15, 3), np.inf, np.float32), "infinite"),
    ("long.npy", np.zeros((20001, 15, 3), np.float32), "too long"),
    ("empty.csv", b"", "empty"),
    ("header.csv", b"a,b,c\n", "no data"),
    ("cols.csv", b"1,2,3,4\n", "columns"),
    ("text.csv", b"1,2,3\n1,2,x\n", "row 2, column 3: not a number"),
    ("bad.json", b"{not json", "JSON"),
    ("other.json", b"{\"a\": 1}", "motionviz/1"),
    ("bad.bvh", b"HIERARCHY\nROOT x\n{", "bad.bvh: "),
    ("clip.mp4", b"1234", "unsupported"),
])
def test_user_files_bad(tmp_path, name, content, match):
    p = _write(tmp_path / name, content)
    with pytest.raises(UserError, match=match):
        load_user_file(p)


def test_user_file_too_big(tmp_path, monkeypatch):
    import motionviz.data.userfile as uf
    monkeypatch.setattr(uf, "MAX_USER_BYTES", 100)
    p = _write(tmp_path / "big.npy", np.zeros((10, 15, 3), np.float32))
    with pytest.raises(UserError, match="too large"):
        load_user_file(p)


def test_retarget_keeps_nan_local():
    """A missing source joint makes only the target joints built from it missing."""
    import numpy as np

    from motionviz.core.retarget import retarget
    from motionviz.core.skeleton import BLAZEPOSE33, COMMON

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, len(BLAZEPOSE33), 3)).astype(np.float32)
    full = retarget(x, BLAZEPOSE33, COMMON)
    x[1, BLAZEPOSE33.joints.index("left_wrist")] = np.nan
    out = retarget(x, BLAZEPOSE33, COMMON)
    bad = np.isnan(out).any(-1)
    assert bad[1, COMMON.joints.index("left_wrist")]
    assert bad.sum() < len(COMMON)   # not the whole frame
    np.testing.assert_allclose(out[~bad], full[~bad], atol=1e-6)
    assert not bad[[0, 2, 3]].any()
