"""Speed benchmark section and sanity numbers of the shipped VAE."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .. import data
from ..core.errors import UserError
from ..core.motion import DEFAULT_FPS
from ..core.representation import canonicalise
from ..core.representation_torch import joints_to_features
from ..core.skeleton import COMMON
from ..generators.registry import checkpoint_path
from ..generators.vae import Endpoint, VAEGenerator, load_generator
from ..models.vae import KIND, ActorVAE, Config, class_key, split_class


# ---------------------------------------------------------------------------------------------
# benchmark (``python -m motionviz bench``; listed in motionviz.evaluation.bench.SECTIONS)
# ---------------------------------------------------------------------------------------------
def bench(quick: bool = False) -> dict[str, Any]:
    """Seconds per 60-frame motion sampled by the VAE, batch 1 and batch 16 (median over repeats).

    Uses ``checkpoints/vae.safetensors`` when present, else an untrained model of the default
    architecture (same cost).  Runs on the CPU with the current torch thread setting."""
    path = checkpoint_path(KIND)
    if path.is_file():
        gen, source = load_generator(path), path.name
    else:
        gen, source = VAEGenerator(ActorVAE(Config(classes=("ui-prmd:m01/correct", "ui-prmd:m01/incorrect")))), \
            "untrained default architecture"
    label = gen.labels[0]
    repeats = 3 if quick else 10
    out: dict[str, Any] = {"checkpoint": source, "frames": 60, "threads": torch.get_num_threads(),
                           "parameters": sum(p.numel() for p in gen.model.parameters())}
    for batch in (1, 16):
        gen.sample(label, None, frames=60, num=batch, seed=0)                       # warm-up
        times = []
        for r in range(repeats):
            t0 = time.perf_counter()
            gen.sample(label, None, frames=60, num=batch, seed=r)
            times.append(time.perf_counter() - t0)
        out[f"seconds_per_motion_batch{batch}"] = float(np.median(times)) / batch
    out["repeats"] = repeats
    return out


# ---------------------------------------------------------------------------------------------
# sanity checks of a trained model (numbers for the README model card)
# ---------------------------------------------------------------------------------------------
def _clip_stats(joints: np.ndarray) -> dict[str, float]:
    """joints (T, J, 3) -> bone-length coefficient of variation over time, mean joint speed (m/s at
    20 fps) and the mean bone lengths."""
    bl = COMMON.bone_lengths(joints)                                                # (T, B)
    cv = float(np.mean(bl.std(0) / np.maximum(bl.mean(0), 1e-6)))
    speed = float(np.linalg.norm(np.diff(joints, axis=0), axis=-1).mean() * DEFAULT_FPS) if len(joints) > 1 else 0.0
    return {"bone_cv": cv, "speed": speed, "bones": bl.mean(0)}


def _descriptor(joints: np.ndarray) -> np.ndarray:
    """A pose-sequence descriptor for nearest-centroid checks: time mean and std of the
    pelvis-relative joints and the std of the pelvis height, (2 (J-1) 3 + 1,)."""
    f = joints_to_features(canonicalise(joints)[0])                                    # (T, F)
    rel = f[:, 3:]
    return np.concatenate([rel.mean(0), rel.std(0), [f[:, 1].std()]]).astype(np.float64)


def _real_clips(gen: VAEGenerator, data_root: str | Path | None, datasets: list[str]) -> dict[int, list[np.ndarray]]:
    """Held-out (test split) real clips of ``datasets`` by the model's class index: finite (T, J, 3)
    joint arrays of at least 8 frames."""
    real = [m for m in data.load_corpus("test", datasets, root=data_root) if m.labels.label]
    by_class: dict[int, list[np.ndarray]] = {}
    for m in real:
        k = class_key(m.labels.label, m.labels.correct)
        if k in gen._index and np.isfinite(m.joints).all() and m.num_frames >= 8:
            by_class.setdefault(gen._index[k], []).append(m.joints)
    return by_class


def _real_references(by_class: dict[int, list[np.ndarray]], cls: list[int], rng: np.random.Generator,
                     max_real: int, frames: int) -> tuple[dict[int, np.ndarray], dict[int, dict[str, Any]]]:
    """Per class: random crops of ``frames`` frames of at most ``max_real`` clips -> (class -> (n, P)
    descriptors, class -> mean ``bone_cv``, ``speed`` and (B,) ``bones`` lengths)."""
    real_desc, real_stats = {}, {}
    for c in cls:
        clips = by_class[c]
        pick = rng.permutation(len(clips))[:max_real]
        crops = []
        for i in pick:
            j = clips[i]
            s = int(rng.integers(0, max(1, len(j) - frames + 1)))
            crops.append(j[s:s + frames])
        real_desc[c] = np.stack([_descriptor(j) for j in crops])
        st = [_clip_stats(j) for j in crops]
        real_stats[c] = {"bone_cv": np.mean([s["bone_cv"] for s in st]), "speed": np.mean([s["speed"] for s in st]),
                         "bones": np.mean([s["bones"] for s in st], axis=0)}
    return real_desc, real_stats


def _real_centroid_hits(cls: list[int], real_desc: dict[int, np.ndarray], centroids: np.ndarray,
                        scale: np.ndarray) -> tuple[int, int]:
    """The nearest-centroid check of the real clips themselves (leave-one-out centroids), the ceiling to
    compare with: ``centroids`` (K, P) scaled class means, ``scale`` (P,) -> (hits, clips)."""
    real_hits, real_n = 0, 0
    for ci, c in enumerate(cls):
        n_c = len(real_desc[c])
        for k in range(n_c):
            cen = centroids.copy()
            if n_c > 1:
                cen[ci] = (real_desc[c].sum(0) - real_desc[c][k]) / (n_c - 1) / scale
            d = np.linalg.norm(cen - real_desc[c][k] / scale, axis=1)
            real_hits += int(int(d.argmin()) == ci)
            real_n += 1
    return real_hits, real_n


def _sample_checks(gen: VAEGenerator, cls: list[int], real_desc: dict[int, np.ndarray],
                   real_stats: dict[int, dict[str, Any]], centroids: np.ndarray, scale: np.ndarray,
                   frames: int, per_class: int, seed: int) -> dict[str, Any]:
    """``per_class`` prior samples per class against the real references (``centroids`` (K, P),
    ``scale`` (P,)): lists ``s_cv``, ``s_speed``, ``r_cv``, ``r_speed``, ``blerr`` and counts ``frozen``,
    ``hits``, ``corr_hits``, ``corr_n``, ``n``."""
    s_cv, s_speed, r_cv, r_speed, blerr, frozen, hits, corr_hits, corr_n = [], [], [], [], [], 0, 0, 0, 0
    n = 0
    for ci, c in enumerate(cls):
        lab, corr = split_class(gen.classes[c])
        ms = gen.sample(lab, corr if corr is not None else None, frames, per_class, seed + c)
        for m in ms:
            st = _clip_stats(m.joints)
            s_cv.append(st["bone_cv"])
            s_speed.append(st["speed"])
            blerr.append(float(np.mean(np.abs(st["bones"] - real_stats[c]["bones"]) / real_stats[c]["bones"])))
            frozen += st["speed"] < 0.1 * real_stats[c]["speed"]
            d = np.linalg.norm(centroids - _descriptor(m.joints) / scale, axis=1)
            hits += int(cls[int(d.argmin())] == c)
            n += 1
            if corr is not None:
                other = gen._index.get(class_key(lab, not corr))
                if other in real_desc:
                    oi = cls.index(other)
                    corr_hits += int(d[ci] < d[oi])
                    corr_n += 1
        r_cv.append(real_stats[c]["bone_cv"])
        r_speed.append(real_stats[c]["speed"])
    return {"s_cv": s_cv, "s_speed": s_speed, "r_cv": r_cv, "r_speed": r_speed, "blerr": blerr, "frozen": frozen,
            "hits": hits, "corr_hits": corr_hits, "corr_n": corr_n, "n": n}


def _interpolation_checks(gen: VAEGenerator, steps: int, frames: int, seed: int) -> tuple[dict[str, Any], str]:
    """Interpolation smoothness (linear and spherical, between two seeds and correct -> incorrect) of
    one label -> (path name -> step statistics, the label)."""
    interp: dict[str, Any] = {}
    lab0 = "ui-prmd:m01" if "ui-prmd:m01" in gen.labels else next(
        (lab for lab in gen.labels if gen.has_correctness(lab)), gen.labels[0])
    for name, a, b in (("seeds", Endpoint(lab0, None, seed), Endpoint(lab0, None, seed + 1)),
                       ("correct_to_incorrect", Endpoint(lab0, True, seed),
                        Endpoint(lab0, False if gen.has_correctness(lab0) else None, seed))):
        for spherical in (False, True):
            path = np.stack([m.joints for m in gen.interpolate_path(a, b, steps, frames, spherical)])
            d = np.linalg.norm(np.diff(path, axis=0), axis=-1).mean(axis=(1, 2))    # (S-1,) metres
            interp[f"{name}_{'slerp' if spherical else 'lerp'}"] = {
                "max_over_mean_step": round(float(d.max() / max(d.mean(), 1e-9)), 3),
                "mean_step_m": round(float(d.mean()), 4), "end_to_end_m": round(float(np.linalg.norm(
                    path[-1] - path[0], axis=-1).mean()), 4)}
    return interp, lab0


def sanity(gen: VAEGenerator, data_root: str | Path | None = None, per_class: int = 8, frames: int = 60,
           steps: int = 16, seed: int = 0, max_real: int = 40,
           datasets: Sequence[str] | None = None) -> dict[str, Any]:
    """Plausibility numbers of prior samples against held-out real data (test split):

    * ``bone_cv`` (samples / real): mean over bones of std/mean of the bone length over time (0 = rigid);
    * ``bone_length_error``: mean |sample bone length - real bone length| / real (per class average);
    * ``speed``: mean joint speed in m/s (samples / real) and ``frozen_fraction`` of samples moving
      less than 10 % of their class's real speed;
    * ``nearest_centroid_accuracy``: share of samples whose descriptor is nearest to the real
      centroid of their own class (among the classes with held-out data; ``chance`` beside it), and the
      same for correct vs incorrect of each exercise that has both (``correctness_accuracy``);
      ``real_nearest_centroid_accuracy`` is the same check of the held-out real clips (leave-one-out);
    * ``interpolation``: for linear and spherical paths of ``steps`` points between two seeds of a
      class and between correct/incorrect, max / mean distance between consecutive steps (1 = even;
      large = a jump) and the mean step distance in metres.

    ``datasets`` restricts the check to those datasets' classes (default: every dataset of the model).
    """
    known = sorted({k.split(":", 1)[0] for k in gen.classes})
    wanted = list(datasets) if datasets is not None else known
    datasets = [d for d in known if d in wanted]
    if not datasets:
        raise UserError(f"the model knows none of {', '.join(wanted)}; it has {', '.join(known)}")
    by_class = _real_clips(gen, data_root, datasets)
    rng = np.random.default_rng(seed)
    cls = sorted(by_class)
    real_desc, real_stats = _real_references(by_class, cls, rng, max_real, frames)
    scale = np.concatenate([d for d in real_desc.values()]).std(0) + 1e-6
    centroids = np.stack([real_desc[c].mean(0) / scale for c in cls])              # (K, P)
    real_hits, real_n = _real_centroid_hits(cls, real_desc, centroids, scale)
    sc = _sample_checks(gen, cls, real_desc, real_stats, centroids, scale, frames, per_class, seed)
    s_cv, s_speed, r_cv, r_speed, blerr = sc["s_cv"], sc["s_speed"], sc["r_cv"], sc["r_speed"], sc["blerr"]
    frozen, hits, corr_hits, corr_n, n = sc["frozen"], sc["hits"], sc["corr_hits"], sc["corr_n"], sc["n"]
    interp, lab0 = _interpolation_checks(gen, steps, frames, seed)
    return {
        "classes_checked": len(cls), "samples": n, "frames": frames,
        "bone_cv": {"samples": round(float(np.mean(s_cv)), 4), "real": round(float(np.mean(r_cv)), 4)},
        "bone_length_error": round(float(np.mean(blerr)), 4),
        "speed_m_per_s": {"samples": round(float(np.mean(s_speed)), 4), "real": round(float(np.mean(r_speed)), 4)},
        "frozen_fraction": round(frozen / max(n, 1), 4),
        "nearest_centroid_accuracy": round(hits / max(n, 1), 4), "chance": round(1 / max(len(cls), 1), 4),
        "real_nearest_centroid_accuracy": round(real_hits / max(real_n, 1), 4),
        "correctness_accuracy": round(corr_hits / corr_n, 4) if corr_n else None,
        "interpolation": interp, "interpolation_label": lab0,
    }
