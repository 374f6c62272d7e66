"""Repetition-level data: recordings cut into single repetitions, time-normalised, and chained back.

Rehabilitation exercises are repeated movements.  A window cut at a random point of a multi-repetition
recording shows the movement at a random phase, and the average of a periodic movement over its phase
is a static pose: a model that regresses towards that average barely moves.  The generative models
therefore learn single repetitions:

* :func:`split_repetitions` cuts every corpus motion into repetitions.  UI-PRMD and IntelliRehabDS files
  already hold one repetition each; KIMORE recordings (several repetitions) are cut at the rests between
  repetitions of their dominant movement (:func:`motionviz.core.dynamics.segment_repetitions`); long clips of
  any dataset are split into equal parts of at most ``max_seconds``.
* :func:`time_normalise` resamples a repetition to a fixed number of frames, so every repetition of an
  exercise starts at rest, peaks in the middle and returns in the same frames; its duration is kept
  as a separate number.  :func:`time_denormalise` goes back to a given number of frames at 20 fps.
* :func:`chain` / :func:`chain_repetitions` concatenate clips (real repetitions, e.g. to build real
  reference clips of a given duration for evaluation).

Shapes: T frames, J joints, R normalised frames.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .dynamics import segment_repetitions
from .motion import Motion
from .skeleton import COMMON

__all__ = ["split_repetitions", "time_normalise", "time_denormalise", "chain", "chain_repetitions",
           "group_key", "PRESEGMENTED", "SEAM_BLEND"]

# Datasets whose files hold one repetition each (see ../shared/data/README.md).
PRESEGMENTED = frozenset({"ui-prmd", "irds"})

#: Frames cross-faded where a recorded repetition is played back to back with another to look like a
#: generated multi-repetition motion, as the VAE's decoded repetitions meet (the recogniser's chained
#: training views; correctness control's real_repeated row where a recording has too few partners).
SEAM_BLEND = 4


def time_normalise(joints: np.ndarray, frames: int) -> np.ndarray:
    """(T, ...) -> (frames, ...) by linear interpolation over normalised time [0, 1]."""
    x = np.asarray(joints, dtype=np.float32)
    T = len(x)
    if T == frames:
        return x.copy()
    if T == 1:
        return np.repeat(x, frames, axis=0)
    src = np.linspace(0.0, 1.0, T)
    dst = np.linspace(0.0, 1.0, frames)
    i = np.clip(np.searchsorted(src, dst, side="right") - 1, 0, T - 2)
    w = ((dst - src[i]) / (src[i + 1] - src[i])).astype(np.float32)
    w = w.reshape((-1,) + (1,) * (x.ndim - 1))
    return x[i] * (1 - w) + x[i + 1] * w


def time_denormalise(joints: np.ndarray, frames: int) -> np.ndarray:
    """Inverse of :func:`time_normalise`: (R, ...) -> (frames, ...)."""
    return time_normalise(joints, max(1, int(frames)))


def split_repetitions(m: Motion, max_seconds: float = 6.0, min_seconds: float = 0.8) -> list[tuple[int, int]]:
    """[start, end) frame ranges of the single repetitions in ``m`` (see the module docstring)."""
    T, fps = m.num_frames, m.fps
    if m.labels.dataset in PRESEGMENTED or T < 2 * min_seconds * fps:
        segs = [(0, T)]
    else:
        segs = segment_repetitions(m.joints, fps, min_seconds=min_seconds)
    out: list[tuple[int, int]] = []
    cap = max(2, int(round(max_seconds * fps)))
    for a, b in segs:
        n = -(-(b - a) // cap)                                     # parts of at most max_seconds
        edges = np.linspace(a, b, n + 1).round().astype(int)
        out += [(int(s), int(e)) for s, e in zip(edges[:-1], edges[1:]) if e - s >= 2]
    return out


def chain(parts: Sequence[np.ndarray], blend: int = 6) -> np.ndarray:
    """Concatenate clips (T_i, J, 3) into one: each next clip is moved (x, z) so its first pelvis position
    meets the previous clip's last one, and the seam is cross-faded over ``blend`` frames."""
    root = COMMON.root
    out = np.asarray(parts[0], dtype=np.float32)
    for p in parts[1:]:
        p = np.array(p, dtype=np.float32)
        d = out[-1, root] - p[0, root]
        p[..., 0] += d[0]
        p[..., 2] += d[2]
        b = max(0, min(blend, len(out) - 1, len(p) - 1))
        if b == 0:
            out = np.concatenate([out, p])
            continue
        w = np.linspace(0.0, 1.0, b + 2, dtype=np.float32)[1:-1, None, None]
        out = np.concatenate([out[:-b], out[-b:] * (1 - w) + p[:b] * w, p[b:]])
    return out


def group_key(m: Motion) -> tuple:
    """(dataset, subject, label, correct, style, mirrored): motions with equal keys are repetitions of one
    subject's exercise done the same way (Bandai-Namco: of one style, any actor)."""
    lab = m.labels
    subj = "" if lab.dataset == "bandai" else lab.subject
    return (lab.dataset, subj, lab.label, lab.correct, lab.style, bool(lab.extra.get("mirrored", False)))


def chain_repetitions(motions: Sequence[Motion], target: int, rng: np.random.Generator) -> list[np.ndarray]:
    """For every motion, a sequence starting with it and continued by other repetitions of the same
    subject/exercise/correctness/style (random order) until it has ``target`` frames, so short single
    repetitions become natural multi-repetition sequences.  Motions without partners stay as they are."""
    groups: dict[tuple, list[int]] = {}
    for i, m in enumerate(motions):
        groups.setdefault(group_key(m), []).append(i)
    out: list[np.ndarray] = []
    for i, m in enumerate(motions):
        others = [k for k in groups[group_key(m)] if k != i]
        parts = [m.joints]
        n = m.num_frames
        while n < target and others:
            k = others.pop(int(rng.integers(len(others))))
            parts.append(motions[k].joints)
            n += motions[k].num_frames
        out.append(chain(parts) if len(parts) > 1 else m.joints)
    return out
