"""The :class:`Motion` type: joint positions (T, J, 3) in metres, Y-up, with skeleton, fps and labels.

Conventions (the "motionviz frame"): metres, +Y up, the subject's left at +X, facing +Z.
Every method returns a new Motion; the arrays of a Motion are never modified in place.
NaN joint positions mean "missing" (e.g. an occluded joint in a video estimate).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from .errors import UserError
from .retarget import retarget as _retarget
from .skeleton import COMMON, Skeleton, get_skeleton

__all__ = ["Motion", "MotionLabels", "MotionError", "FORMAT", "MAX_FRAMES", "DEFAULT_FPS"]

FORMAT = "motionviz/1"
DEFAULT_FPS = 20.0          # the one frame rate every model works at
MAX_FRAMES = 20_000          # refuse absurd sequences (≈ 11 minutes at 30 fps)
# Sum of the common skeleton's 14 bone lengths for the reference adult body (metres); the
# scale normalisation brings every motion to this size.  Set from the Bandai-Namco actor.
REFERENCE_BONE_SUM = {"common": 3.297}  # measured: median over 154 Bandai files (3.288-3.302)


class MotionError(UserError):
    """Bad motion input (shape, values, length).  The message is meant for the user."""


@dataclass(frozen=True)
class MotionLabels:
    """What a motion is.  ``label`` is written ``<dataset>:<the dataset's own id>`` (e.g. ``ui-prmd:m07``)."""

    dataset: str = ""
    subject: str = ""
    label: str = ""
    style: str = ""
    correct: bool | None = None
    score: float | None = None
    text: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MotionLabels":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        if known.get("score") is not None:
            known["score"] = float(known["score"])
        return cls(**known)


@dataclass(frozen=True, eq=False)
class Motion:
    joints: np.ndarray  # (T, J, 3) float32 metres, Y-up
    skeleton: Skeleton = COMMON
    fps: float = DEFAULT_FPS
    labels: MotionLabels = field(default_factory=MotionLabels)

    def __post_init__(self) -> None:
        j = np.asarray(self.joints)
        if j.dtype.kind not in "fiu":
            raise MotionError(f"joint positions must be numbers, got dtype {j.dtype}")
        if j.ndim != 3 or j.shape[-1] not in (2, 3):
            raise MotionError(f"joint positions must have shape (frames, joints, 3); got {tuple(j.shape)}")
        if j.shape[1] != len(self.skeleton):
            raise MotionError(
                f"skeleton {self.skeleton.name!r} has {len(self.skeleton)} joints but the motion has "
                f"{j.shape[1]}")
        if j.shape[0] < 1:
            raise MotionError("a motion needs at least one frame")
        if j.shape[0] > MAX_FRAMES:
            raise MotionError(f"{j.shape[0]} frames is too long (limit {MAX_FRAMES})")
        if np.isinf(j).any():
            raise MotionError("joint positions contain infinite values")
        if not (np.isfinite(self.fps) and 0 < self.fps <= 1000):
            raise MotionError(f"frame rate must be in (0, 1000] fps, got {self.fps}")
        object.__setattr__(self, "joints", np.ascontiguousarray(j, dtype=np.float32))
        object.__setattr__(self, "fps", float(self.fps))

    # ---- basic properties --------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    def __len__(self) -> int:
        return self.num_frames

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @property
    def observed(self) -> np.ndarray:
        """(T, J) booleans: True where the joint position is known (not NaN)."""
        return ~np.isnan(self.joints).any(axis=-1)

    @property
    def label(self) -> str:
        return self.labels.label

    def replace(self, **kw: Any) -> "Motion":
        return replace(self, **kw)

    def with_joints(self, joints: np.ndarray) -> "Motion":
        return replace(self, joints=joints)

    def with_labels(self, **kw: Any) -> "Motion":
        return replace(self, labels=replace(self.labels, **kw))

    def __repr__(self) -> str:
        return (f"Motion({self.num_frames}x{len(self.skeleton)} {self.skeleton.name}, {self.fps:g} fps, "
                f"label={self.labels.label!r}, subject={self.labels.subject!r})")

    # ---- time --------------------------------------------------------------------------------
    def crop(self, start: int, stop: int | None = None) -> "Motion":
        out = self.joints[start:stop]
        if len(out) == 0:
            raise MotionError(f"crop [{start}:{stop}] of a {self.num_frames}-frame motion is empty")
        return self.with_joints(out)

    def resample(self, fps: float = DEFAULT_FPS) -> "Motion":
        """Linear interpolation in time to ``fps`` (NaNs stay NaN where a neighbour is missing)."""
        if abs(fps - self.fps) < 1e-6:
            return self
        T = self.num_frames
        if T == 1:
            return replace(self, fps=fps)
        n = max(1, int(round((T - 1) * fps / self.fps)) + 1)
        t = np.arange(n) * (self.fps / fps)
        t = np.clip(t, 0, T - 1)
        i0 = np.floor(t).astype(int)
        i1 = np.minimum(i0 + 1, T - 1)
        w = (t - i0)[:, None, None].astype(np.float32)
        out = self.joints[i0] * (1 - w) + self.joints[i1] * w
        return replace(self, joints=out, fps=fps)

    def windows(self, length: int, stride: int | None = None, pad: bool = False) -> list["Motion"]:
        """Fixed-length windows of ``length`` frames every ``stride`` frames (the last one is anchored
        to the end so no frame is lost).  With ``pad`` a motion shorter than ``length`` is padded by
        repeating its last frame; otherwise it yields no window."""
        stride = stride or length
        T = self.num_frames
        if T < length:
            if not pad:
                return []
            extra = np.repeat(self.joints[-1:], length - T, axis=0)
            return [self.with_joints(np.concatenate([self.joints, extra]))]
        starts = list(range(0, T - length + 1, stride))
        if starts[-1] != T - length:
            starts.append(T - length)
        return [self.with_joints(self.joints[s:s + length]) for s in starts]

    # ---- space -------------------------------------------------------------------------------
    def retarget(self, target: Skeleton = COMMON) -> "Motion":
        if target.name == self.skeleton.name:
            return self
        return replace(self, joints=_retarget(self.joints, self.skeleton, target), skeleton=target)

    def mirror(self) -> "Motion":
        """Swap left and right (a reflection through the body's sagittal plane x = 0)."""
        out = self.joints[:, list(self.skeleton.mirror)].copy()
        out[..., 0] *= -1
        return self.with_joints(out)

    def _root(self) -> np.ndarray:
        return self.joints[:, self.skeleton.root]

    def facing_angle(self, frame: int = 0) -> float:
        """Yaw (radians) of the body at ``frame``: 0 when the subject faces +Z (left = +X);
        ``rotate_y(facing_angle())`` turns the body to face +Z."""
        pairs = self.skeleton.lr_pairs
        if not pairs:
            return 0.0
        L = [a for a, _ in pairs]
        R = [b for _, b in pairs]
        across = np.nanmean(self.joints[frame, L] - self.joints[frame, R], axis=0)
        if not np.isfinite(across).all() or np.hypot(across[0], across[2]) < 1e-8:
            return 0.0
        return float(np.arctan2(across[2], across[0]))  # rotate_y(this) brings left to +X

    def rotate_y(self, angle: float) -> "Motion":
        """Rotate about the vertical axis: x' = x cos a + z sin a, z' = -x sin a + z cos a."""
        c, s = np.cos(angle), np.sin(angle)
        R = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=np.float32)
        return self.with_joints(self.joints @ R.T)

    def normalise(self, centre: bool = True, facing: bool = True, scale: bool = True,
                  floor: bool = True) -> "Motion":
        """Root-centred at frame 0 (x, z), facing +Z at frame 0, body scaled to the reference size,
        lowest point of the sequence on the floor y = 0."""
        m = self
        if facing:
            m = m.rotate_y(m.facing_angle(0))
        if scale:
            m = m.normalise_scale()
        j = m.joints.copy()
        if centre:
            r0 = j[0, m.skeleton.root]
            if np.isfinite(r0).all():
                j[..., 0] -= r0[0]
                j[..., 2] -= r0[2]
        if floor and j.shape[-1] == 3:
            lowest = np.nanmin(j[..., 1], axis=1)  # (T,)
            lowest = lowest[np.isfinite(lowest)]
            if lowest.size:
                j[..., 1] -= np.percentile(lowest, 2)
        return m.with_joints(j)

    def body_size(self) -> float:
        """Median over frames of the sum of bone lengths (metres)."""
        bl = self.skeleton.bone_lengths(self.joints)  # (T, B)
        s = np.nansum(bl, axis=1)
        ok = np.isfinite(bl).all(axis=1)
        return float(np.median(s[ok])) if ok.any() else float("nan")

    def normalise_scale(self, reference: float | None = None) -> "Motion":
        ref = reference if reference is not None else REFERENCE_BONE_SUM.get(self.skeleton.name)
        size = self.body_size()
        if ref is None or not np.isfinite(size) or size <= 1e-6:
            return self
        return self.with_joints(self.joints * (ref / size))

    # ---- serialisation (our JSON format) -----------------------------------------------------
    def to_dict(self, decimals: int = 4) -> dict[str, Any]:
        j = np.round(self.joints.astype(np.float64), decimals)
        return {
            "format": FORMAT,
            "skeleton": self.skeleton.to_dict(),
            "fps": self.fps,
            "labels": self.labels.to_dict(),
            "joints": [[[None if np.isnan(v) else float(v) for v in p] for p in f] for f in j],
        }

    def to_json(self, decimals: int = 4) -> str:
        return json.dumps(self.to_dict(decimals), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Motion":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise MotionError(f"not a {FORMAT} motion file (missing \"format\": \"{FORMAT}\")")
        try:
            sk_d = d["skeleton"]
            sk = get_skeleton(sk_d) if isinstance(sk_d, str) else Skeleton.from_dict(sk_d)
            joints = np.array([[[np.nan if v is None else v for v in p] for p in f] for f in d["joints"]],
                              dtype=np.float32)
            return cls(joints, sk, float(d.get("fps", DEFAULT_FPS)),
                       MotionLabels.from_dict(d.get("labels", {})))
        except MotionError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            # name the problem, never quote the file's values (they may be anything)
            raise MotionError(f"malformed {FORMAT} motion file ({type(e).__name__}: check \"skeleton\", "
                              f"\"joints\" and \"fps\")") from None

    @classmethod
    def from_json(cls, text: str) -> "Motion":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise MotionError(f"not valid JSON: {e.msg} (line {e.lineno})") from None
        return cls.from_dict(d)
