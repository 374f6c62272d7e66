"""Joint up-sampling: from a sparse set of joints to the full common skeleton (Mourot 2019, ch. 5).

A video keypoint detector gives the limbs but no pelvis, spine or neck (COCO-17, BlazePose, OpenPose
body keypoints); body trackers give a handful of points (wrists, ankles, the head).  :func:`upsample`
completes the other joints of the common skeleton with an AE-GAN fine-tuned for it
(``checkpoints/aegan-upsample.safetensors``, ``python -m motionviz train aegan-upsample``): the shipped
inpainting AE-GAN trained further with windows that observe only one of :data:`JOINT_SETS` (its encoder
sees the observed-mask channels, so it learns to place the unobserved joints from the observed ones);
the latent code is then refined by the same search as inpainting (:func:`motionviz.generators.inpaint.inpaint`).

Baselines (no learning beyond a mean pose of the training split, :func:`training_mean_pose`):

* ``offset_baseline``: every missing joint = the mean of its nearest observed joints (fewest bones away
  in the skeleton tree) + the fixed offset between them in the training mean pose, turned with the
  body's facing direction of that frame and scaled by the body's size;
* degenerate rows: ``mean_pose`` (the training mean pose, turned and moved onto the observed joints of
  each frame: no use of the observed limbs' configuration) and ``nearest_joint`` (the missing joint
  placed on its nearest observed joints, no offset).

:func:`evaluate` compares them on held-out subjects (test split) with the per-joint error in mm of the
missing joints; ``python -m motionviz eval-inpaint --json`` reports it under ``upsampling``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import data
from ..core.checkpoint import default_checkpoint_dir
from ..core.errors import CheckpointError, UserError
from ..core.representation import _to_world, _yaw
from ..core.skeleton import COMMON, Skeleton, resolve_set, set_joints, set_mask
from . import inpaint as inpaint_G
from .inpaint import inpaint
from .inpaint import preset as _preset

__all__ = [           "training_mean_pose", "offset_baseline", "mean_pose_fill", "nearest_joint_fill", "upsample",
           "anchor_correct", "DEFAULTS", "SETTINGS", "CORRECTIONS", "settings_for",
           "load_upsampler", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "aegan-upsample.safetensors"

ProgressFn = Callable[[float, str], None]


# ==============================================================================================
# Geometry helpers
# ==============================================================================================
def _tree_distances(skeleton: Skeleton) -> np.ndarray:
    """(J, J) number of bones between joints."""
    J = len(skeleton)
    adj = [[] for _ in range(J)]
    for p, c in skeleton.bones:
        adj[p].append(c)
        adj[c].append(p)
    D = np.full((J, J), -1, dtype=int)
    for s in range(J):
        D[s, s] = 0
        queue = [s]
        for u in queue:
            for v in adj[u]:
                if D[s, v] < 0:
                    D[s, v] = D[s, u] + 1
                    queue.append(v)
    return D


def _anchors(known: np.ndarray, skeleton: Skeleton) -> dict[int, list[int]]:
    """For every joint not in ``known`` (J,) bool: the known joints fewest bones away (ties kept)."""
    D = _tree_distances(skeleton)
    out: dict[int, list[int]] = {}
    idx = np.flatnonzero(known)
    for j in np.flatnonzero(~known):
        d = D[j, idx]
        out[int(j)] = [int(k) for k in idx[d == d.min()]]
    return out


def _fill_in_time(x: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Joints observed on some frames are interpolated linearly over time (held at the ends); returns
    (filled (T, J, 3), known (J,) bool: joints observed at least once)."""
    T, J, D = x.shape
    out = np.array(x, dtype=np.float64)
    known = observed.any(0)
    t = np.arange(T)
    for j in np.flatnonzero(known):
        o = observed[:, j]
        if o.all():
            continue
        for c in range(D):
            out[:, j, c] = np.interp(t, t[o], x[o, j, c])
    out[:, ~known] = np.nan
    return out, known


def _body_scale(x: np.ndarray, known: np.ndarray, ref_bones: np.ndarray, skeleton: Skeleton) -> float:
    """Median over the bones with both ends known of (median length / training mean length); 1 if none."""
    ratios = []
    for b, (p, c) in enumerate(skeleton.bones):
        if known[p] and known[c] and ref_bones[b] > 1e-6:
            ratios.append(float(np.median(np.linalg.norm(x[:, c] - x[:, p], axis=-1))) / float(ref_bones[b]))
    s = float(np.median(ratios)) if ratios else 1.0
    return s if np.isfinite(s) and 0.2 < s < 5 else 1.0


# ==============================================================================================
# The training mean pose and the baselines
# ==============================================================================================
_MEAN_POSES: dict[tuple, dict[str, np.ndarray]] = {}


def training_mean_pose(root: str | Path | None = None, datasets: tuple[str, ...] = ("ui-prmd", "kimore", "irds"),
                       skeleton: Skeleton = COMMON) -> dict[str, np.ndarray]:
    """The mean pose of the training split (every NaN-free frame, pelvis at the origin, turned to face
    +Z by its left/right pairs), and the mean bone lengths.  -> {"pose": (J, 3), "bones": (B,)} metres."""
    key = (str(root), tuple(datasets), skeleton.name)
    if key not in _MEAN_POSES:
        ms = data.load_corpus("train", list(datasets), root=root)
        frames = [m.joints[np.isfinite(m.joints).all(axis=(1, 2))] for m in ms if m.skeleton.name == skeleton.name]
        X = np.concatenate([f for f in frames if len(f)]).astype(np.float64) if frames else np.zeros((0,))
        if X.ndim != 3 or not len(X):
            raise UserError("no training motion to take the mean pose from (data folder missing?)")
        X = X - X[:, skeleton.root:skeleton.root + 1]
        ang = _yaw(X, np.ones(X.shape[:2], dtype=bool), skeleton)
        c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
        Y = X.copy()
        Y[..., 0] = X[..., 0] * c + X[..., 2] * s
        Y[..., 2] = -X[..., 0] * s + X[..., 2] * c
        bones = np.array([np.linalg.norm(X[:, c_] - X[:, p_], axis=-1).mean() for p_, c_ in skeleton.bones])
        _MEAN_POSES[key] = {"pose": Y.mean(0), "bones": bones, "frames": np.array(len(X))}
    return _MEAN_POSES[key]


def _prepare(joints: np.ndarray, observed: np.ndarray | None, mean: dict[str, np.ndarray], skeleton: Skeleton):
    x = np.asarray(joints, dtype=np.float64)
    if x.ndim != 3 or x.shape[-1] != 3 or x.shape[1] != len(skeleton):
        raise UserError(f"expected 3D joints (frames, {len(skeleton)}, 3), got {tuple(x.shape)}")
    obs = np.isfinite(x).all(-1) if observed is None else (np.asarray(observed, bool) & np.isfinite(x).all(-1))
    if not obs.any():
        raise UserError("nothing is observed: every joint of every frame is missing")
    filled, known = _fill_in_time(x, obs)
    ang = _yaw(filled, np.broadcast_to(known, obs.shape), skeleton)
    scale = _body_scale(filled, known, mean["bones"], skeleton)
    return x, obs, filled, known, ang, scale


def offset_baseline(joints: np.ndarray, observed: np.ndarray | None, mean: dict[str, np.ndarray],
                    skeleton: Skeleton = COMMON) -> np.ndarray:
    """Missing joint = mean of its nearest observed joints + their offset in the training mean pose (turned
    with the frame's facing direction, scaled by the body size).  Joints observed on some frames are
    interpolated over time first.  (T, J, 3) -> (T, J, 3); observed values are kept."""
    x, obs, filled, known, ang, scale = _prepare(joints, observed, mean, skeleton)
    pose = mean["pose"]
    out = filled.copy()
    for j, anc in _anchors(known, skeleton).items():
        off = (pose[j] - pose[anc].mean(0)) * scale                              # body frame
        out[:, j] = filled[:, anc].mean(1) + _to_world(np.broadcast_to(off, (len(x), 3)).copy(), ang)
    out[obs] = x[obs]
    return out.astype(np.float32)


def nearest_joint_fill(joints: np.ndarray, observed: np.ndarray | None, mean: dict[str, np.ndarray],
                       skeleton: Skeleton = COMMON) -> np.ndarray:
    """Degenerate: a missing joint sits on the mean of its nearest observed joints (no offset)."""
    x, obs, filled, known, _, _ = _prepare(joints, observed, mean, skeleton)
    out = filled.copy()
    for j, anc in _anchors(known, skeleton).items():
        out[:, j] = filled[:, anc].mean(1)
    out[obs] = x[obs]
    return out.astype(np.float32)


def mean_pose_fill(joints: np.ndarray, observed: np.ndarray | None, mean: dict[str, np.ndarray],
                   skeleton: Skeleton = COMMON) -> np.ndarray:
    """Degenerate: the training mean pose (scaled, turned with the frame's facing direction) moved so its
    observed joints' centroid is the observed centroid; the limbs' configuration is not used."""
    x, obs, filled, known, ang, scale = _prepare(joints, observed, mean, skeleton)
    T = len(x)
    posed = _to_world(np.broadcast_to(mean["pose"] * scale, (T,) + mean["pose"].shape).copy(), ang)
    shift = filled[:, known].mean(1) - posed[:, known].mean(1)
    out = posed + shift[:, None]
    out[:, known] = filled[:, known]
    out[obs] = x[obs]
    return out.astype(np.float32)


# ==============================================================================================
# The AE-GAN up-sampler
# ==============================================================================================
def load_upsampler(path: str | Path | None = None):
    """The fine-tuned up-sampling AE-GAN (default ``checkpoints/aegan-upsample.safetensors``)."""
    p = Path(path) if path else default_checkpoint_dir() / CHECKPOINT_NAME
    if not p.is_file():
        raise CheckpointError(f"no up-sampling AE-GAN at {p}; train one with "
                              "`python -m motionviz train aegan-upsample`")
    return inpaint_G.load_model(p)


#: the latent search of up-sampling (``steps`` = 0: the encoder's answer only) and how the generated joints
#: are joined to the given ones (``correction``, see :func:`upsample`), per joint set; chosen on the validation
#: split (12 sequences of the val subjects, steps 0 / 50 / 200 x the three corrections; mm on the generated
#: joints: coco17 17.0 with 0 steps + anchors (50 steps: 18.0-19.2, 200: 21.8-22.6); trackers 34.4 with 50
#: steps + blend (0: 35.7-37.1, 200: 37.0-38.0); wrists-ankles-neck 53.2 with 50 steps + blend or none (0:
#: 54.8-57.7, 200: 55.7-57.6)).  Longer searches fit the few given joints better and the others worse.
DEFAULTS: dict[str, Any] = {"steps": 50, "shift": 8, "preset": "tuned", "correction": "blend"}
SETTINGS: dict[str, dict[str, Any]] = {
    "coco17": {"steps": 0, "correction": "anchors"},
    "trackers": {"steps": 50, "correction": "blend"},
    "wrists-ankles-neck": {"steps": 50, "correction": "blend"},
}
CORRECTIONS = ("anchors", "blend", "none")


def settings_for(joint_set: str | None) -> dict[str, Any]:
    """The up-sampling settings of a joint set (:data:`SETTINGS`; :data:`DEFAULTS` for other masks)."""
    out = dict(DEFAULTS)
    if joint_set is not None:
        out.update(SETTINGS.get(resolve_set(joint_set), {}))
    return out


def anchor_correct(pred: np.ndarray, x: np.ndarray, observed: np.ndarray, skeleton: Skeleton = COMMON) -> np.ndarray:
    """Join a generated motion to the observations: every joint's offset ``x - pred`` on its observed
    frames is interpolated over its other frames (as :func:`motionviz.generators.inpaint.blend_gaps`), and a joint
    never observed takes the mean offset of its nearest observed joints (fewest bones away, as the offset
    baseline's anchors), so it keeps the generated placement *relative to* the joints around it.  Observed
    joints get the observed values.  (T, J, 3) -> (T, J, 3)."""
    pred = np.asarray(pred, dtype=np.float64)
    d = np.where(observed[..., None], np.asarray(x, np.float64) - pred, np.nan)
    off, known = _fill_in_time(np.nan_to_num(d), observed)
    for j, anc in _anchors(known, skeleton).items():
        off[:, j] = off[:, anc].mean(1)
    out = pred + off
    out[observed] = np.asarray(x, np.float64)[observed]
    return out


def upsample(model: Any, joints: np.ndarray, joint_set: str | None = None, observed: np.ndarray | None = None, *,
             steps: int | None = None, shift: int | None = None, preset: str | None = None,
             correction: str | None = None, settings: dict[str, Any] | None = None,
             progress: ProgressFn | None = None):
    """Complete (T, 15, 3) common-skeleton joints (metres, NaN = missing) from the joints of ``joint_set``
    (the others are ignored even when given) and/or ``observed`` (T, J).  The latent search: ``steps``
    steps with ``preset`` (``settings``: its keyword dictionary, e.g. from the CLI's overrides), windows every
    ``shift`` frames; left as None, the set's :data:`SETTINGS` (chosen on the validation split).  ``correction``:
    ``anchors`` (:func:`anchor_correct` on the windows' averaged output),
    ``blend`` (inpainting's :func:`motionviz.generators.inpaint.blend_gaps`: a never-observed joint takes its parent's
    offset) or ``none`` (the generator's joints as they are; given joints kept).  -> :class:`InpaintResult`
    whose ``joints`` are the result."""
    x = np.asarray(joints, dtype=np.float32)
    if x.ndim != 3 or x.shape[-1] != 3:
        raise UserError(f"joint up-sampling works on 3D joints (frames, joints, 3), got {tuple(x.shape)}")
    obs = np.isfinite(x).all(-1)
    if observed is not None:
        obs &= np.asarray(observed, dtype=bool)
    if joint_set is not None:
        name = resolve_set(joint_set)
        obs &= set_mask(name)[None]
        if not obs.any():
            raise UserError(f"the input has none of the {name} joints ({', '.join(set_joints(name))})")
    chosen = settings_for(joint_set)
    corr = chosen["correction"] if correction is None else str(correction)
    if corr not in CORRECTIONS:
        raise UserError(f"unknown correction {corr!r}; choose from {', '.join(CORRECTIONS)}")
    st = dict(settings) if settings is not None else _preset(preset or chosen["preset"])
    xin = np.where(obs[..., None], x, np.nan).astype(np.float32)
    res = inpaint(model, xin, obs, steps=chosen["steps"] if steps is None else int(steps),
                  shift=chosen["shift"] if shift is None else int(shift), blend=corr == "blend",
                  progress=progress, **st)
    if corr == "anchors":
        T = x.shape[0]
        acc = np.zeros(x.shape, dtype=np.float64)
        cnt = np.zeros(T)
        for c, s in zip(res.candidates, res.starts):
            n = min(len(c), T - s)
            acc[s:s + n] += c[:n]
            cnt[s:s + n] += 1
        res.joints = anchor_correct(acc / cnt[:, None, None], xin, obs).astype(np.float32)
    return res
