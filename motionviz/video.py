"""Video -> skeleton: a person exercising in an .mp4/.gif/.webm -> a motion on the common skeleton.

Pipeline (:func:`video_to_motion`):

1. :func:`probe_video` checks the file (suffix, readable, at most :data:`MAX_SECONDS` seconds and
   :data:`MAX_BYTES` bytes) and reads its frame rate;
2. :func:`extract_pose` runs MediaPipe **BlazePose** (the legacy ``mp.solutions.pose`` graph with its
   bundled *full* model, ``model_complexity=1``: nothing is downloaded) on every frame (every
   ``stride``-th above 30 fps; frames larger than 640 px are shrunk first) and keeps its 33 landmarks in
   image coordinates and in world coordinates (metres, origin between the hips) with their visibility;
3. :func:`track_to_motion` turns world landmarks into the motionviz frame (x, -y, -z: Y-up, the subject's
   left at +X, facing +Z when they face the camera), puts the lowest foot point on the floor every frame
   (BlazePose world coordinates are hip-centred, so a squat would otherwise move the feet, not the
   hips), adds the sideways drift of the hips measured in the image, maps the 33 landmarks onto the
   common skeleton (:data:`motionviz.core.skeleton.RETARGET`), and marks joints whose visibility is below
   ``threshold`` (default 0.5) or frames without a person as missing (NaN);
4. :func:`clean_motion` fills the missing joints and removes jitter: with the AE-GAN inpainter when
   ``checkpoints/aegan.safetensors`` exists (denoising mode, at the models' 20 fps, resampled back),
   otherwise linear interpolation over time + Savitzky-Golay smoothing (with a note saying so);
5. the recogniser (``checkpoints/recognizer.safetensors``) names the exercise when it exists.

CLI: ``python -m motionviz video in.mp4 --out motion.npy [--json] [--max-frames N]`` writes the (T, 15, 3)
float32 array (``.json``/``.bvh`` outputs are chosen by the suffix) **resampled to 20 fps** (the one
frame-rate contract of every file motionviz writes: ``classify``, ``inpaint`` and ``export`` read
``.npy`` arrays as 20 fps); ``--json`` prints frames and fps as written, the video's own
``source_frames`` / ``source_fps``, the detected-frame ratio and the output path.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from scipy.signal import savgol_filter

from .core.checkpoint import default_checkpoint_dir
from .core.errors import UserError
from .core.motion import DEFAULT_FPS, Motion, MotionLabels
from .core.retarget import retarget, retarget_mask
from .core.skeleton import BLAZEPOSE33, COMMON
from .data import data_root
from .data.labels import LABEL_TITLES
from .generators import inpaint as ip
from .generators.recognition import CHECKPOINT_NAME, load_recognizer

__all__ = [
    "VIDEO_SUFFIXES", "MAX_SECONDS", "MAX_BYTES", "VideoInfo", "PoseTrack", "VideoResult", "probe_video",
    "read_frames", "extract_pose", "track_to_motion", "clean_motion", "smooth_fill", "recognise",
    "video_to_motion", "draw_landmarks", "bench",
]

VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".gif", ".webm", ".mov", ".m4v", ".avi", ".mkv")
MAX_SECONDS = 60.0               # longer videos are refused (trim them first)
MAX_BYTES = 200 * 1024 * 1024
MAX_SIDE = 640                   # frames are shrunk to this longest side before pose estimation
MAX_PROCESS_FPS = 30.0           # faster videos are subsampled in time (every k-th frame)
VISIBILITY = 0.5                 # landmarks below this visibility count as missing
MIN_DETECTED = 2                 # a motion needs at least this many frames with a person
KEYFRAMES = 6                    # annotated frames kept for display
ANKLE_HEIGHT = 0.08              # metres above the floor, when the feet are never visible
_FOOT = ("left_ankle", "right_ankle", "left_heel", "right_heel", "left_foot_index", "right_foot_index")

Progress = Callable[[float, str], None]


# ------------------------------------------------------------------------------------------------
# reading videos
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoInfo:
    path: Path
    fps: float
    frames: int                  # number of frames (estimated from the duration for mp4/webm)
    duration: float              # seconds
    width: int
    height: int


def _gif_durations(path: Path) -> tuple[list[float], tuple[int, int]]:
    from PIL import Image

    with Image.open(path) as im:
        n = getattr(im, "n_frames", 1)
        durs = []
        for k in range(n):
            im.seek(k)
            durs.append(float(im.info.get("duration", 100) or 100) / 1000.0)
        return durs, im.size


def probe_video(path: str | os.PathLike, max_seconds: float = MAX_SECONDS) -> VideoInfo:
    """Check that ``path`` is a readable video of at most ``max_seconds`` seconds; its fps and size.
    Raises :class:`UserError` with a message for the user otherwise."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"no such file: {p}")
    suffix = p.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise UserError(f"{p.name} is not a video: expected one of {', '.join(VIDEO_SUFFIXES)}")
    size = p.stat().st_size
    if size > MAX_BYTES:
        raise UserError(f"{p.name} is {size / 2**20:.0f} MB; the limit is {MAX_BYTES // 2**20} MB")
    try:
        if suffix == ".gif":
            durs, (w, h) = _gif_durations(p)
            n = len(durs)
            duration = float(sum(durs))
            fps = n / duration if duration > 0 else 10.0
        else:
            import imageio.v2 as iio
            with contextlib.closing(iio.get_reader(p, format="ffmpeg")) as r:
                meta = r.get_meta_data()
                fps = float(meta.get("fps") or 0.0)
                duration = float(meta.get("duration") or 0.0)
                w, h = (int(x) for x in meta.get("size", (0, 0)))
                first = r.get_data(0)
                if first is None or first.ndim != 3:
                    raise ValueError("no image frames")
            if not (np.isfinite(fps) and fps > 0):
                fps = 25.0
            n = max(1, int(round(duration * fps))) if duration > 0 else 1
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoder failure means "not a video we can read"
        first = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise UserError(f"{p.name} is not a readable video ({first})") from None
    if duration > max_seconds + 1e-6:
        raise UserError(f"the video is {duration:.1f} s long; the limit is {max_seconds:g} s (trim it first)")
    return VideoInfo(p, float(fps), int(n), float(duration), int(w), int(h))


def _shrink(frame: np.ndarray, max_side: int) -> np.ndarray:
    h, w = frame.shape[:2]
    s = max(h, w)
    if s <= max_side:
        return frame
    import cv2
    k = max_side / s
    return cv2.resize(frame, (max(1, int(round(w * k))), max(1, int(round(h * k)))), interpolation=cv2.INTER_AREA)


def read_frames(path: str | os.PathLike, max_frames: int | None = None, stride: int = 1,
                max_side: int = MAX_SIDE) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (source frame index, RGB uint8 (H, W, 3)) for every ``stride``-th frame, at most
    ``max_frames`` of them, shrunk to ``max_side`` pixels."""
    p = Path(path)
    count = 0
    if p.suffix.lower() == ".gif":
        from PIL import Image, ImageSequence
        with Image.open(p) as im:
            for i, fr in enumerate(ImageSequence.Iterator(im)):
                if i % stride:
                    continue
                if max_frames is not None and count >= max_frames:
                    return
                count += 1
                yield i, _shrink(np.asarray(fr.convert("RGB")), max_side)
        return
    import imageio.v2 as iio
    with contextlib.closing(iio.get_reader(p, format="ffmpeg")) as r:
        for i, fr in enumerate(r):
            if i % stride:
                continue
            if max_frames is not None and count >= max_frames:
                return
            count += 1
            yield i, _shrink(np.asarray(fr)[..., :3], max_side)


# ------------------------------------------------------------------------------------------------
# pose estimation
# ------------------------------------------------------------------------------------------------
@dataclass
class PoseTrack:
    """BlazePose output for the processed frames (NaN / 0 visibility where no person was found)."""

    world: np.ndarray            # (T, 33, 3) float32 metres, motionviz frame (Y-up, left +X), hip-centred
    image: np.ndarray            # (T, 33, 2) float32 pixel coordinates (x right, y down) in the shrunk frame
    visibility: np.ndarray       # (T, 33) float32 in [0, 1]
    detected: np.ndarray         # (T,) bool
    fps: float                   # of the processed frames (source fps / stride)
    frame_index: np.ndarray      # (T,) int source frame index
    size: tuple[int, int]        # (width, height) of the processed frames
    seconds_per_frame: float = 0.0
    keyframes: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (k, annotated RGB frame)

    @property
    def num_frames(self) -> int:
        return int(self.world.shape[0])

    @property
    def detected_ratio(self) -> float:
        return float(self.detected.mean()) if self.num_frames else 0.0


def _mediapipe_pose():
    try:
        with contextlib.redirect_stderr(open(os.devnull, "w")):
            import mediapipe as mp
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise UserError(f"video pose estimation needs the 'mediapipe' package ({e})") from None
    # model_complexity=1 is the "full" model bundled in the wheel; 2 ("heavy") would be downloaded
    return mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=True,
                                  enable_segmentation=False, min_detection_confidence=0.5,
                                  min_tracking_confidence=0.5)


def extract_pose(path: str | os.PathLike, max_frames: int | None = None, progress: Progress | None = None,
                 keyframes: int = KEYFRAMES, max_seconds: float | None = MAX_SECONDS) -> PoseTrack:
    """Run BlazePose on the video's frames (see the module docstring).  Videos longer than
    ``max_seconds`` are refused; ``max_frames`` only processes the first frames."""
    info = probe_video(path, max_seconds=float("inf") if max_seconds is None else max_seconds)
    stride = max(1, int(np.ceil(info.fps / MAX_PROCESS_FPS - 1e-6)))
    total = max(1, int(np.ceil(info.frames / stride)))
    if max_frames is not None:
        max_frames = int(max_frames)
        if max_frames < 1:
            raise UserError("the frame limit must be at least 1")
        total = min(total, max_frames)
    want_keys = set(np.linspace(0, max(total - 1, 0), max(1, keyframes)).round().astype(int).tolist()) \
        if keyframes else set()
    world, image, vis, det, idx, keys = [], [], [], [], [], []
    size = (info.width, info.height)
    pose = _mediapipe_pose()
    t_pose = 0.0
    try:
        for k, (i, frame) in enumerate(read_frames(info.path, max_frames, stride)):
            if max_seconds is not None and i / info.fps > max_seconds:      # the header did not say
                raise UserError(f"the video is longer than {max_seconds:g} s, the limit (trim it first)")
            h, w = frame.shape[:2]
            size = (w, h)
            t0 = time.perf_counter()
            res = pose.process(np.ascontiguousarray(frame))
            t_pose += time.perf_counter() - t0
            idx.append(i)
            if res.pose_world_landmarks is not None and res.pose_landmarks is not None:
                wl = np.array([(q.x, q.y, q.z) for q in res.pose_world_landmarks.landmark], dtype=np.float32)
                il = np.array([(q.x * w, q.y * h) for q in res.pose_landmarks.landmark], dtype=np.float32)
                v = np.array([q.visibility for q in res.pose_landmarks.landmark], dtype=np.float32)
                world.append(np.stack([wl[:, 0], -wl[:, 1], -wl[:, 2]], axis=1))   # -> Y-up, facing +Z
                image.append(il)
                vis.append(np.clip(v, 0.0, 1.0))
                det.append(True)
            else:
                world.append(np.full((33, 3), np.nan, np.float32))
                image.append(np.full((33, 2), np.nan, np.float32))
                vis.append(np.zeros(33, np.float32))
                det.append(False)
            if k in want_keys:
                keys.append((k, draw_landmarks(frame, image[-1], vis[-1])))
            if progress is not None and (k % 5 == 0):
                progress(min(0.99, (k + 1) / max(total, 1)), f"pose estimation: frame {k + 1}/{total}")
    finally:
        pose.close()
    if not idx:
        raise UserError(f"{info.path.name} has no frames that could be decoded")
    n = len(idx)
    return PoseTrack(world=np.stack(world), image=np.stack(image), visibility=np.stack(vis),
                     detected=np.array(det, dtype=bool), fps=info.fps / stride,
                     frame_index=np.array(idx, dtype=np.int64), size=size, seconds_per_frame=t_pose / n,
                     keyframes=keys)


def draw_landmarks(frame: np.ndarray, image_xy: np.ndarray, visibility: np.ndarray,
                   threshold: float = VISIBILITY) -> np.ndarray:
    """A copy of ``frame`` with the 33 landmarks and their bones drawn (left red, right blue; faint
    where the visibility is below ``threshold``)."""
    import cv2
    out = np.ascontiguousarray(frame.copy())
    if not np.isfinite(image_xy).any():
        return out
    thick = max(1, int(round(max(out.shape[:2]) / 240)))
    for j, p in enumerate(BLAZEPOSE33.parents):
        if p < 0 or j <= 10:                                   # face landmarks: points only
            continue
        a, b = image_xy[p], image_xy[j]
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            continue
        name = BLAZEPOSE33.joints[j]
        col = (209, 73, 91) if name.startswith("left") else (46, 134, 171)
        if min(visibility[p], visibility[j]) < threshold:
            col = (200, 200, 200)
        cv2.line(out, tuple(int(round(x)) for x in a), tuple(int(round(x)) for x in b), col, thick, cv2.LINE_AA)
    for j in range(33):
        if np.isfinite(image_xy[j]).all():
            col = (255, 220, 0) if visibility[j] >= threshold else (160, 160, 160)
            cv2.circle(out, tuple(int(round(x)) for x in image_xy[j]), thick + 1, col, -1, cv2.LINE_AA)
    return out


# ------------------------------------------------------------------------------------------------
# landmarks -> common skeleton
# ------------------------------------------------------------------------------------------------
def track_to_motion(track: PoseTrack, threshold: float = VISIBILITY, label: str = "video",
                    source: str = "") -> tuple[Motion, np.ndarray]:
    """(common-skeleton Motion with NaN where missing, observed mask (T, 15)) from a :class:`PoseTrack`."""
    W = track.world.astype(np.float64).copy()                  # (T, 33, 3)
    T = W.shape[0]
    ok = track.detected[:, None] & (track.visibility >= threshold) & np.isfinite(W).all(-1)   # (T, 33)
    # feet on the floor: world coordinates are hip-centred; the lowest foot point goes to y = 0
    foot = BLAZEPOSE33.indices(list(_FOOT))
    # (visible foot points only; frames without one are interpolated; never visible: see video_to_motion)
    fy = np.where(ok[:, foot], W[:, foot, 1], np.nan)
    low = np.nanmin(np.where(np.isfinite(fy), fy, np.inf), axis=1)                # (T,)
    low[~np.isfinite(low)] = np.nan
    feet_seen = bool(np.isfinite(low).any())
    low = _fill_1d(low)
    # sideways drift of the hips, from the image (pixels -> metres by the torso length)
    ix = BLAZEPOSE33.index
    hips_img = track.image[:, [ix("left_hip"), ix("right_hip")]].mean(1)           # (T, 2)
    sh_img = track.image[:, [ix("left_shoulder"), ix("right_shoulder")]].mean(1)
    torso_img = np.linalg.norm(sh_img - hips_img, axis=-1)
    hips_w = W[:, [ix("left_hip"), ix("right_hip")]].mean(1)
    sh_w = W[:, [ix("left_shoulder"), ix("right_shoulder")]].mean(1)
    torso_w = np.linalg.norm(sh_w - hips_w, axis=-1)
    ratio = torso_w / np.where(torso_img > 1e-6, torso_img, np.nan)
    m_per_px = float(np.nanmedian(ratio)) if np.isfinite(ratio).any() else 0.0
    dx = _fill_1d(hips_img[:, 0]) * m_per_px if m_per_px > 0 else np.zeros(T)
    dx = dx - (dx[0] if np.isfinite(dx[0]) else 0.0)
    W[..., 1] -= low[:, None]
    W[..., 0] += np.nan_to_num(dx)[:, None]
    W[~ok] = 0.0                                 # (retarget is a weighted sum: 0 * NaN would spread)
    joints = retarget(W.astype(np.float32), BLAZEPOSE33)
    mask = retarget_mask(ok, BLAZEPOSE33) & np.isfinite(joints).all(-1)
    joints[~mask] = np.nan
    labels = MotionLabels(dataset="video", label=label, source=source,
                          extra={"detected_ratio": round(track.detected_ratio, 4), "feet_seen": feet_seen})
    return Motion(joints, COMMON, track.fps, labels), mask


def _fill_1d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).copy()
    ok = np.isfinite(x)
    if ok.all() or not ok.any():
        return np.where(ok, x, 0.0)
    t = np.arange(len(x))
    x[~ok] = np.interp(t[~ok], t[ok], x[ok])
    return x


# ------------------------------------------------------------------------------------------------
# filling + smoothing
# ------------------------------------------------------------------------------------------------
def smooth_fill(joints: np.ndarray, mask: np.ndarray, fps: float, seconds: float = 0.3,
                polyorder: int = 2) -> np.ndarray:
    """Fallback cleaner: per joint and coordinate, linear interpolation over time of missing values
    (held before the first / after the last observation), joints never seen placed as in an upright
    standing pose (:func:`_place_unseen`), then
    a Savitzky-Golay filter of about ``seconds`` (odd window).  (T, J, 3) -> (T, J, 3)."""
    x = np.asarray(joints, dtype=np.float64)
    T, J, D = x.shape
    obs = np.asarray(mask, dtype=bool) & np.isfinite(x).all(-1)
    if not obs.any():
        raise UserError("no joint was seen clearly in any frame")
    out = np.empty_like(x)
    t = np.arange(T)
    for j in range(J):
        if not obs[:, j].any():
            out[:, j] = np.nan
            continue
        for c in range(D):
            out[:, j, c] = np.interp(t, t[obs[:, j]], x[obs[:, j], j, c])
    never = ~obs.any(0)
    if never.any():
        out = _place_unseen(out, never)
    win = int(round(seconds * fps)) | 1
    win = min(win, T if T % 2 == 1 else T - 1)
    if win > polyorder + 1:
        out = savgol_filter(out, win, polyorder, axis=0, mode="interp")
    return out.astype(np.float32)


# offset of each common joint from its parent in a relaxed standing pose (metres, reference adult,
# facing +Z, left +X; from the Anny body with the arms lowered)
_STANDING: dict[str, tuple[float, float, float]] = {
    "pelvis": (0.0, 0.0, 0.0), "spine": (0.0, 0.14, 0.0), "neck": (0.0, 0.37, 0.0),
    "left_shoulder": (0.16, -0.09, 0.0), "left_elbow": (0.03, -0.28, 0.0), "left_wrist": (0.0, -0.25, 0.05),
    "left_hip": (0.10, -0.01, 0.0), "left_knee": (0.02, -0.40, 0.02), "left_ankle": (0.0, -0.40, -0.03),
}
_STANDING.update({k.replace("left_", "right_"): (-v[0], v[1], v[2]) for k, v in list(_STANDING.items())
                  if k.startswith("left_")})


def _place_unseen(x: np.ndarray, never: np.ndarray) -> np.ndarray:
    """Joints never seen (e.g. the legs in an upper-body webcam video) are put where a person standing
    upright would have them: parent + the standing offset, turned to the body's heading (from the
    shoulder or hip line) and scaled by the seen bones.  x (T, J, 3) with the seen joints filled."""
    out = x.copy()
    T = out.shape[0]
    table = np.array([_STANDING[n] for n in COMMON.joints])                     # (J, 3)
    ratios = [np.median(np.linalg.norm(out[:, c] - out[:, p], axis=-1)) / np.linalg.norm(table[c])
              for p, c in COMMON.bones if not (never[p] or never[c])]
    scale = float(np.median(ratios)) if ratios else 1.0
    across = np.zeros((T, 3))
    for a, b in (("left_shoulder", "right_shoulder"), ("left_hip", "right_hip")):
        ia, ib = COMMON.index(a), COMMON.index(b)
        if not (never[ia] or never[ib]):
            across += out[:, ia] - out[:, ib]
    yaw = np.arctan2(-across[:, 2], across[:, 0]) if np.abs(across).sum() > 0 else np.zeros(T)
    c, s_ = np.cos(yaw), np.sin(yaw)                          # rotation about +Y taking +X onto `across`
    R = np.zeros((T, 3, 3))
    R[:, 0, 0], R[:, 0, 2], R[:, 1, 1], R[:, 2, 0], R[:, 2, 2] = c, s_, 1.0, -s_, c
    order = list(COMMON.topological_order)
    root = COMMON.root
    if never[root]:                                           # pelvis from the hips, else below the neck
        hips = [COMMON.index("left_hip"), COMMON.index("right_hip")]
        if not never[hips].any():
            out[:, root] = out[:, hips].mean(1)
        else:
            seen = [j for j in order if not never[j]]
            j = seen[0]
            chain = []
            while j != root:
                chain.append(j)
                j = COMMON.parents[j]
            offset = table[chain].sum(0)
            out[:, root] = out[:, seen[0]] - scale * np.einsum("tij,j->ti", R, offset)
    for j in order:
        p = COMMON.parents[j]
        if p >= 0 and never[j]:
            out[:, j] = out[:, p] + scale * np.einsum("tij,j->ti", R, table[j])
    return out


def _aegan_path(checkpoint_dir: str | os.PathLike | None) -> Path:
    if checkpoint_dir is None:
        checkpoint_dir = default_checkpoint_dir()
    return Path(checkpoint_dir) / "aegan.safetensors"


def clean_motion(raw: Motion, mask: np.ndarray, checkpoint_dir: str | os.PathLike | None = None,
                 use_inpainter: bool = True, progress: Progress | None = None) -> tuple[Motion, str, str]:
    """Fill missing joints and remove jitter.  Returns (motion, method, note): method "aegan" when the
    AE-GAN inpainter ran, else "savgol" (interpolation + Savitzky-Golay)."""
    note = ""
    if use_inpainter:
        path = _aegan_path(checkpoint_dir)
        if path.is_file():
            try:
                out = _aegan_clean(raw, mask, path, progress)
                bad = _implausible(raw, mask, out)
                if not bad:
                    return out, "aegan", ("missing joints filled and jitter removed by the AE-GAN inpainter "
                                          f"({path.name})")
                note = f"the AE-GAN result was implausible ({bad}) and was not used; "
            except Exception as e:  # noqa: BLE001 - the inpainter is optional; fall back with a note
                msg = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
                note = f"the AE-GAN inpainter failed ({msg}); "
        else:
            note = f"no AE-GAN checkpoint ({path.name}); "
    else:
        note = "inpainter not used; "
    joints = smooth_fill(raw.joints, mask, raw.fps)
    note += "missing joints were interpolated over time and jitter smoothed (Savitzky-Golay)"
    return raw.with_joints(joints).with_labels(source=raw.labels.source), "savgol", note


MAX_SHIFT_M = 0.06       # denoising may move the seen joints at most this far (mean), BlazePose jitter is ~1-3 cm
SIZE_RANGE = (0.85, 1.18)  # and keep the body size (sum of bone lengths) within this ratio


def _implausible(raw: Motion, mask: np.ndarray, out: Motion) -> str:
    """Why the inpainter's output cannot be right ("" when it is plausible): non-finite values, a body
    size far from the observed one, or observed joints moved too far."""
    j = out.joints
    if j.shape != raw.joints.shape or not np.isfinite(j).all():
        return "missing values in the result"
    seen = raw.body_size()
    got = out.body_size()
    if np.isfinite(seen) and seen > 0 and not SIZE_RANGE[0] <= got / seen <= SIZE_RANGE[1]:
        return f"body size {got:.2f} m instead of {seen:.2f} m"
    if mask.any():
        d = float(np.linalg.norm(j[mask] - raw.joints[mask], axis=-1).mean())
        if d > MAX_SHIFT_M:
            return f"seen joints moved by {100 * d:.0f} cm on average"
    return ""


def _aegan_clean(raw: Motion, mask: np.ndarray, path: Path, progress: Progress | None) -> Motion:
    """Denoise + complete with the AE-GAN at the models' frame rate, then resample back."""
    model = ip.load_model(path)
    x = raw.joints.copy()
    x[~mask] = np.nan
    m20 = raw.with_joints(x).resample(DEFAULT_FPS)
    obs = np.isfinite(m20.joints).all(-1)
    if obs.sum() < 3:
        raise UserError("too few joints seen for the inpainter")
    res = ip.inpaint(model, m20.joints, obs, keep_observed=False, progress=progress)
    out20 = m20.with_joints(np.asarray(res.joints, dtype=np.float32))
    back = out20.resample(raw.fps)
    T = raw.num_frames
    j = back.joints
    if j.shape[0] < T:
        j = np.concatenate([j, np.repeat(j[-1:], T - j.shape[0], axis=0)])
    return raw.with_joints(j[:T])


def recognise(motion: Motion, checkpoint_dir: str | os.PathLike | None = None) -> tuple[dict[str, Any] | None, str]:
    """(the recogniser's guess for ``motion`` (label, title, probability, ...), "") or (None, why not)."""
    try:
        if checkpoint_dir is None:
            checkpoint_dir = default_checkpoint_dir()
        p = Path(checkpoint_dir) / CHECKPOINT_NAME
        if not p.is_file():
            return None, f"no recogniser checkpoint ({CHECKPOINT_NAME})"
        rec = load_recognizer(p)
        m = motion.normalise()
        pred = dict(rec.predict([m])[0])
        probs = rec.run([m])["probs"][0]
        top = [(str(rec.labels[i]), round(float(probs[i]), 4)) for i in np.argsort(-probs)[:3]]
    except Exception as e:  # noqa: BLE001 - recognition is optional
        msg = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        return None, f"the recogniser is not usable ({msg})"
    pred["title"] = LABEL_TITLES.get(pred["label"], pred["label"])
    pred["top"] = [{"label": lab, "title": LABEL_TITLES.get(lab, lab), "probability": pr} for lab, pr in top]
    return pred, ""


# ------------------------------------------------------------------------------------------------
# the whole pipeline
# ------------------------------------------------------------------------------------------------
@dataclass
class VideoResult:
    motion: Motion               # cleaned, common skeleton, video frame rate
    raw: Motion                  # before cleaning (NaN = missing)
    mask: np.ndarray             # (T, 15) observed joints
    track: PoseTrack
    method: str                  # "aegan" | "savgol"
    note: str
    recognition: dict[str, Any] | None
    seconds: float
    recognition_note: str = ""
    timings: dict[str, float] = field(default_factory=dict)   # seconds: read+pose, clean, recognise

    def summary(self, output: str | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "frames": self.motion.num_frames, "fps": round(self.motion.fps, 3),
            "detected_ratio": round(self.track.detected_ratio, 4),
            "observed_joint_ratio": round(float(self.mask.mean()), 4), "method": self.method,
            "note": self.note, "seconds": round(self.seconds, 2),
            "pose_seconds_per_frame": round(self.track.seconds_per_frame, 4),
            "recognised": self.recognition,
            "timings_s": {k: round(v, 2) for k, v in self.timings.items()},
        }
        if self.recognition is None and self.recognition_note:
            d["recognition_note"] = self.recognition_note
        if output is not None:
            d["output"] = output
        return d


def video_to_motion(path: str | os.PathLike, max_frames: int | None = None, threshold: float = VISIBILITY,
                    checkpoint_dir: str | os.PathLike | None = None, use_inpainter: bool = True,
                    recognise_exercise: bool = True, progress: Progress | None = None) -> VideoResult:
    """The whole pipeline (module docstring).  Raises :class:`UserError` when the file is not a video,
    is too long, or shows no person."""
    t0 = time.perf_counter()
    if not 0.0 <= float(threshold) <= 1.0:
        raise UserError(f"the visibility threshold must be between 0 and 1, got {threshold}")
    sub = (lambda a, b: (lambda f, s="": progress(a + (b - a) * f, s))) if progress else (lambda a, b: None)
    track = extract_pose(path, max_frames=max_frames, progress=sub(0.0, 0.8))
    timings = {"read_and_pose": time.perf_counter() - t0}
    n_det = int(track.detected.sum())
    if n_det == 0:
        raise UserError(f"no person found in the video (BlazePose saw nobody in {track.num_frames} frames)")
    if n_det < MIN_DETECTED:
        raise UserError(f"a person was found in only {n_det} of {track.num_frames} frames; "
                        f"at least {MIN_DETECTED} are needed")
    name = Path(path).stem
    raw, mask = track_to_motion(track, threshold, label=f"video:{name}", source=Path(path).name)
    if progress:
        progress(0.82, "filling missing joints")
    t1 = time.perf_counter()
    motion, method, note = clean_motion(raw, mask, checkpoint_dir, use_inpainter, progress=sub(0.82, 0.95))
    if not raw.labels.extra.get("feet_seen", True):
        # the feet were never visible (e.g. an upper-body video): stand the body on the floor, the lowest
        # joint (ankle) at ankle height
        j = motion.joints.copy()
        j[..., 1] -= np.percentile(np.nanmin(j[..., 1], axis=1), 2) - ANKLE_HEIGHT
        motion = motion.with_joints(j)
        note += "; the feet were never visible, so the body was stood on the floor"
    motion = motion.with_labels(extra={**motion.labels.extra, "method": method})
    t2 = time.perf_counter()
    timings["clean"] = t2 - t1
    rec, rec_note = recognise(motion, checkpoint_dir) if recognise_exercise else (None, "")
    timings["recognise"] = time.perf_counter() - t2
    if progress:
        progress(1.0, "done")
    return VideoResult(motion, raw, mask, track, method, note, rec, time.perf_counter() - t0, rec_note, timings)


# ------------------------------------------------------------------------------------------------
# benchmark section
# ------------------------------------------------------------------------------------------------
def bench(quick: bool = False) -> dict[str, Any]:
    """Benchmark section ``video``: seconds per frame of BlazePose pose extraction on the squat clip of
    the data folder (``video/pose_world_landmarks.mp4``) and the whole pipeline's time."""
    clip = data_root() / "video" / "pose_world_landmarks.mp4"
    if not clip.is_file():
        raise UserError(f"benchmark clip not found: {clip}")
    n = 30 if quick else None
    t0 = time.perf_counter()
    res = video_to_motion(clip, max_frames=n, recognise_exercise=True)
    total = time.perf_counter() - t0
    return {
        "clip": clip.name, "frames": res.motion.num_frames, "fps": round(res.motion.fps, 2),
        "frame_size": list(res.track.size), "pose_seconds_per_frame": round(res.track.seconds_per_frame, 4),
        "pipeline_seconds_per_frame": round(total / max(1, res.motion.num_frames), 4),
        "total_s": round(total, 2), "timings_s": {k: round(v, 2) for k, v in res.timings.items()},
        "detected_ratio": round(res.track.detected_ratio, 3), "method": res.method, "note": res.note,
        "recognised": (res.recognition or {}).get("label"),
    }
