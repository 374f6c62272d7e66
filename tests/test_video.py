"""Video -> skeleton: BlazePose on the data folder's clips (a squat, a clip without overlay, a GIF), a clip
without a person made here, files that are not videos or too long, the landmark -> common-skeleton
mapping and the fallback cleaner on known answers, the CLI verb and the tab's video callback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from motionviz import video
from motionviz.core.errors import UserError
from motionviz.core.motion import Motion
from motionviz.core.skeleton import BLAZEPOSE33, COMMON

ix = COMMON.index


@pytest.fixture(scope="module")
def clips(data_root) -> Path:
    d = data_root / "video"
    if not (d / "pose_world_landmarks.mp4").is_file():
        pytest.skip(f"video clips not found in {d}")
    return d


@pytest.fixture(scope="module")
def squat(clips, tmp_path_factory) -> video.VideoResult:
    # no checkpoints: the fallback cleaner, and the test does not depend on a model being trained
    empty = tmp_path_factory.mktemp("no-ckpt")
    return video.video_to_motion(clips / "pose_world_landmarks.mp4", max_frames=40, checkpoint_dir=empty)


def _write_clip(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    import imageio.v2 as iio
    if path.suffix == ".gif":
        iio.mimsave(path, frames, duration=1000.0 / fps, loop=0)
    else:
        iio.mimsave(path, frames, fps=fps, macro_block_size=16)
    return path


# ---- real clips ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_squat_clip(squat):
    m = squat.motion
    assert m.skeleton is COMMON and m.joints.shape == (40, 15, 3) and np.isfinite(m.joints).all()
    assert m.fps == pytest.approx(25.17, abs=0.01)
    assert squat.track.detected_ratio > 0.95 and squat.mask.mean() > 0.8
    assert squat.method == "savgol" and "no AE-GAN checkpoint" in squat.note
    # an adult: bone sum close to the reference body (3.3 m), stable bone lengths
    assert 2.6 < m.body_size() < 4.2
    bl = COMMON.bone_lengths(m.joints)
    assert float(np.median(bl.std(0) / bl.mean(0))) < 0.1
    # Y-up with feet on the floor; the squat lowers the pelvis by more than 20 cm in these frames
    assert np.nanmin(m.joints[..., 1]) > -0.05 and m.joints[:, ix("neck"), 1].min() > 1.0 - 0.6
    pel = m.joints[:, ix("pelvis"), 1]
    assert pel[0] > 0.75 and pel.max() - pel.min() > 0.2
    assert (m.joints[:, ix("neck"), 1] > m.joints[:, ix("pelvis"), 1]).all()
    # key frames with landmarks drawn, pose timing measured
    assert len(squat.track.keyframes) == video.KEYFRAMES and squat.track.keyframes[0][1].shape == (360, 640, 3)
    assert 0 < squat.track.seconds_per_frame < 1.0
    s = squat.summary("x.npy")
    assert s["frames"] == 40 and s["detected_ratio"] > 0.95 and s["output"] == "x.npy"


@pytest.mark.slow
def test_clip_without_overlay_and_gif(clips, tmp_path):
    r = video.video_to_motion(clips / "pose_segmentation.mp4", max_frames=8, checkpoint_dir=tmp_path,
                              recognise_exercise=False)
    assert r.motion.num_frames == 8 and r.track.detected_ratio == 1.0 and r.motion.fps == pytest.approx(20.0)
    # frames where the arms are unclear still give complete, finite joints (filled)
    assert np.isfinite(r.motion.joints).all()
    g = video.video_to_motion(clips / "pose_classification_pushups_and_squats.gif", max_frames=4,
                              checkpoint_dir=tmp_path, recognise_exercise=False)
    assert g.motion.num_frames == 4 and g.track.detected_ratio == 1.0
    info = video.probe_video(clips / "pose_classification_pushups_and_squats.gif")
    assert info.frames == 57 and info.fps == pytest.approx(10.0)


# ---- clear messages ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_no_person_not_a_video_too_long(tmp_path):
    g = np.random.default_rng(0)
    empty = [np.full((96, 128, 3), 40 + 10 * k, np.uint8) + g.integers(0, 20, (96, 128, 3), dtype=np.uint8)
             for k in range(6)]
    clip = _write_clip(tmp_path / "empty_room.mp4", empty)
    with pytest.raises(UserError, match="no person found"):
        video.video_to_motion(clip, checkpoint_dir=tmp_path)
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(UserError, match="not a video"):
        video.probe_video(txt)
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"this is not an mp4 file" * 10)
    with pytest.raises(UserError, match="not a readable video"):
        video.probe_video(fake)
    long_gif = _write_clip(tmp_path / "long.gif", empty[:3], fps=1 / 30)          # 3 frames x 30 s
    with pytest.raises(UserError, match=r"90\.0 s long; the limit is 60 s"):
        video.extract_pose(long_gif)
    with pytest.raises(UserError, match="no such file"):
        video.probe_video(tmp_path / "missing.mp4")


# ---- landmarks -> skeleton and cleaning on known answers -----------------------------------------------
def _track_from_common(joints: np.ndarray, fps: float = 20.0) -> video.PoseTrack:
    """A synthetic PoseTrack whose BlazePose landmarks sit on a common-skeleton pose (hip-centred like
    BlazePose world landmarks); the feet are 5 cm below the ankles."""
    T = joints.shape[0]
    W = np.zeros((T, 33, 3), np.float32)
    subs = (("heel", "ankle"), ("foot_index", "ankle"), ("pinky", "wrist"), ("index", "wrist"), ("thumb", "wrist"))
    for n in BLAZEPOSE33.joints:
        src = n
        if n not in COMMON.joints:
            if n == "nose" or any(k in n for k in ("eye", "ear", "mouth")):
                src = "neck"
            for a, b in subs:
                src = src.replace(a, b)
        W[:, BLAZEPOSE33.index(n)] = joints[:, ix(src)]
    for n in ("left_heel", "right_heel", "left_foot_index", "right_foot_index"):
        W[:, BLAZEPOSE33.index(n), 1] -= 0.05
    hips = W[:, [BLAZEPOSE33.index("left_hip"), BLAZEPOSE33.index("right_hip")]].mean(1, keepdims=True)
    W = W - hips
    image = np.stack([320 + 200 * W[..., 0], 240 - 200 * W[..., 1]], -1).astype(np.float32)
    return video.PoseTrack(world=W, image=image, visibility=np.ones((T, 33), np.float32),
                           detected=np.ones(T, bool), fps=fps, frame_index=np.arange(T), size=(640, 480))


def test_track_to_motion_known_answer():
    from motionviz.mesh.animation import demo_motion

    m = demo_motion(20)
    tr = _track_from_common(m.joints)
    tr.visibility[3:6, BLAZEPOSE33.index("left_wrist")] = 0.2                  # unclear -> missing
    tr.detected[10] = False                                                      # no person in frame 10
    tr.world[10] = np.nan
    tr.image[10] = np.nan
    raw, mask = video.track_to_motion(tr)
    assert raw.skeleton is COMMON and raw.fps == 20.0
    assert not mask[3:6, ix("left_wrist")].any() and mask[3:6, ix("right_wrist")].all()
    assert not mask[10].any() and np.isnan(raw.joints[10]).all()
    # limb joints elsewhere: the same pose up to the floor (feet 5 cm under the ankles -> ankles at 5 cm);
    # pelvis / spine / neck are synthesised from hips and shoulders (RETARGET["blazepose-33"])
    ok = mask.copy()
    ok[:, [ix("pelvis"), ix("spine"), ix("neck")]] = False
    d = raw.joints - m.joints
    d[..., 1] -= (0.05 - m.joints[:, [ix("left_ankle"), ix("right_ankle")], 1].min(1))[:, None]
    assert np.abs(d[ok][:, 1]).max() < 1e-4
    # horizontal drift from the image: none here (the hips stay at the image centre) -> x equal
    assert np.abs(d[ok][:, 0] - d[ok][:, 0].mean()).max() < 1e-4
    assert raw.labels.extra["feet_seen"] is True
    feet = [BLAZEPOSE33.index(n) for n in video._FOOT]
    tr.visibility[:, feet] = 0.1                                                 # an upper-body video
    raw2, mask2 = video.track_to_motion(tr)
    assert raw2.labels.extra["feet_seen"] is False and not mask2[:, ix("left_ankle")].any()
    hips = m.joints[:, [ix("left_hip"), ix("right_hip")]].mean(1)
    sel = mask[:, ix("pelvis")]
    np.testing.assert_allclose(raw.joints[sel, ix("pelvis"), 0], hips[sel, 0] + d[ok][:, 0].mean(), atol=1e-4)


def test_smooth_fill_known_answers():
    T = 41
    t = np.arange(T, dtype=np.float64)
    x = np.zeros((T, 15, 3))
    x[..., 0] = (0.01 * t)[:, None]                                            # a straight line in x
    mask = np.ones((T, 15), bool)
    mask[10:16, 4] = False                                                       # a gap: filled on the line
    x[~mask] = np.nan
    out = video.smooth_fill(x, mask, fps=20.0)
    np.testing.assert_allclose(out[:, 4, 0], 0.01 * t, atol=1e-6)
    # an upper-body video: legs never seen -> standing legs under the hips, turned with the shoulders
    from motionviz.mesh.animation import demo_motion

    m = demo_motion(10).rotate_y(np.pi / 2)
    m = m.with_joints(np.repeat(m.joints[:1], 10, axis=0))                     # a still pose: smoothing = identity
    legs = [ix(n) for n in ("left_knee", "left_ankle", "right_knee", "right_ankle")]
    seen = np.ones((10, 15), bool)
    seen[:, legs] = False
    up = video.smooth_fill(np.where(seen[..., None], m.joints, np.nan), seen, fps=20.0)
    np.testing.assert_allclose(up[:, ~np.isin(np.arange(15), legs)], m.joints[:, ~np.isin(np.arange(15), legs)],
                               atol=1e-4)                                        # seen joints kept (no noise)
    for side in ("left", "right"):
        hip, knee, ankle = (up[:, ix(f"{side}_{k}")] for k in ("hip", "knee", "ankle"))
        assert (knee[:, 1] < hip[:, 1] - 0.3).all() and (ankle[:, 1] < knee[:, 1] - 0.3).all()
        np.testing.assert_allclose(ankle[:, [0, 2]], hip[:, [0, 2]], atol=0.08)    # straight down
    assert np.sign(up[0, ix("left_knee"), 2] - up[0, ix("right_knee"), 2]) == np.sign(
        m.joints[0, ix("left_hip"), 2] - m.joints[0, ix("right_hip"), 2])          # same side as the hips
    # jitter is reduced
    g = np.random.default_rng(1)
    noisy = np.zeros((T, 15, 3)) + 0.01 * g.standard_normal((T, 15, 3))
    sm = video.smooth_fill(noisy, np.ones((T, 15), bool), fps=20.0)
    assert np.abs(np.diff(sm, axis=0)).mean() < 0.5 * np.abs(np.diff(noisy, axis=0)).mean()
    with pytest.raises(UserError):
        video.smooth_fill(x, np.zeros((T, 15), bool), fps=20.0)


def test_clean_motion_falls_back_with_a_note(tmp_path):
    from motionviz.mesh.animation import demo_motion

    m = demo_motion(24)
    mask = np.ones((24, 15), bool)
    out, method, note = video.clean_motion(m, mask, checkpoint_dir=tmp_path)
    assert method == "savgol" and "no AE-GAN checkpoint" in note
    (tmp_path / "aegan.safetensors").write_bytes(b"not a checkpoint")
    out, method, note = video.clean_motion(m, mask, checkpoint_dir=tmp_path)
    assert method == "savgol" and "failed" in note and np.isfinite(out.joints).all()
    # a result that moves the body 10x is rejected
    assert "body size" in video._implausible(m, mask, m.with_joints(m.joints * 10))
    assert video._implausible(m, mask, m) == ""


def test_recognise_without_a_usable_checkpoint(tmp_path):
    from motionviz.mesh.animation import demo_motion

    m = demo_motion(30)
    pred, why = video.recognise(m, tmp_path)
    assert pred is None and "no recogniser checkpoint" in why
    (tmp_path / "recognizer.safetensors").write_bytes(b"garbage")
    pred, why = video.recognise(m, tmp_path)
    assert pred is None and "not usable" in why


# ---- CLI + tab ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_json_and_errors(clips, tmp_path, capsys):
    from motionviz.cli import main

    out = tmp_path / "motion.npy"
    rc = main(["video", str(clips / "pose_world_landmarks.mp4"), "--out", str(out), "--json", "--max-frames", "10",
               "--checkpoints", str(tmp_path)])
    assert rc == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # the file is at 20 fps (the contract of every array we write): 10 frames at 25.17 fps -> 8 frames
    assert s["source_frames"] == 10 and s["source_fps"] == pytest.approx(25.17) and s["detected_ratio"] == 1.0
    assert s["frames"] == 8 and s["fps"] == 20.0
    assert s["output"] == str(out)
    a = np.load(out, allow_pickle=False)
    assert a.shape == (8, 15, 3) and a.dtype == np.float32
    txt = tmp_path / "a.txt"
    txt.write_text("x")
    assert main(["video", str(txt), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a video" in err and "Traceback" not in err
    assert main(["video", str(clips / "pose_world_landmarks.mp4"), "--out", str(tmp_path / "m.txt")]) == 2


@pytest.mark.slow
def test_tab_video_callback(clips, tmp_path, uploads):
    import gradio as gr

    from motionviz.ui import mesh_tab
    from motionviz.ui.common import AppContext

    ctx = AppContext(checkpoint_dir=tmp_path, data_root=None)
    with gr.Blocks() as blocks:
        ctx.motions = gr.State([])
        mesh_tab.build(ctx)
    fns = {f.api_name: f.fn for f in blocks.fns.values()}
    import shutil
    clip = shutil.copy(clips / "pose_world_landmarks.mp4", uploads / "pose_world_landmarks.mp4")   # uploaded
    with pytest.raises(gr.Error, match="not uploaded"):          # a server path is never read
        fns["video_extract"](str(clips / "pose_world_landmarks.mp4"), 12, True)
    m, fig, gallery, text, files = fns["video_extract"](str(clip), 12, True)
    assert isinstance(m, Motion) and m.num_frames == 12
    assert [x["role"] for x in json.loads(fig)["motions"]] == ["input", "output"]
    assert len(gallery) == video.KEYFRAMES and "person found in **100%**" in text
    assert sorted(Path(f).suffix for f in files) == [".bvh", ".json", ".npy"]
    new, *_ = fns["video_add_session"](m, [])
    assert new == [m]
    r = fns["video_show_mesh"](m, [], "anny", "side", 12)
    assert [("mesh" in x) for x in json.loads(r[3])["motions"]] == [False, True]     # skeleton | body
    with pytest.raises(gr.Error, match="upload a video"):
        fns["video_extract"](None, 12, True)
