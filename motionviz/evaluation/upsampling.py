"""Evaluation of joint up-sampling (eval-inpaint's up-sampling rows): every joint set, the baselines against
the inpainter and the fine-tuned up-sampler."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..core.skeleton import COMMON, JOINT_SETS, resolve_set, set_joints, set_mask
from ..generators.upsample import (
    DEFAULTS,
    ProgressFn,
    mean_pose_fill,
    nearest_joint_fill,
    offset_baseline,
    settings_for,
    training_mean_pose,
    upsample,
)
from .inpainting import eval_sequences

# ==============================================================================================
# Evaluation on held-out subjects
# ==============================================================================================
METHODS = ("mean_pose", "nearest_joint", "offset_baseline", "aegan_inpainter", "aegan_upsample_encoder",
           "aegan_upsample")


def evaluate(upsampler: Any, inpainter: Any | None = None, sets: tuple[str, ...] = tuple(JOINT_SETS),
             sequences: int = 24, max_frames: int = 128, steps: int | None = None, seed: int = 0,
             root: str | Path | None = None, split: str = "test", pck: float = 0.05,
             datasets: tuple[str, ...] = ("ui-prmd", "kimore", "irds"), progress: ProgressFn | None = None,
             data: list[tuple[str, np.ndarray]] | None = None,
             mean: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Every joint set x held-out sequence: hide the joints outside the set and reconstruct them with each
    method of :data:`METHODS` (``aegan_inpainter``: the shipped inpainting AE-GAN with the same search;
    ``aegan_upsample_encoder``: the up-sampler's encoder only, no search, no correction; ``steps`` None:
    each set's :data:`SETTINGS`).  Errors are on the hidden joints
    only: mean (``mpjpe_mm``), per joint (``per_joint_mm``) and PCK at ``pck`` metres.  ``data`` / ``mean``:
    given sequences and mean pose instead of the held-out split and the training split's."""
    seqs = data if data is not None else eval_sequences(sequences, max_frames, seed, root, datasets=tuple(datasets),
                                                         split=split)
    mean = mean if mean is not None else training_mean_pose(root, tuple(datasets))
    sets = tuple(resolve_set(s) for s in sets)
    methods = [m for m in METHODS if m != "aegan_inpainter" or inpainter is not None]
    total = len(sets) * len(seqs)
    out_sets: dict[str, Any] = {}
    seconds = frames = 0.0
    done = 0
    for name in sets:
        keep = set_mask(name)
        hidden = np.flatnonzero(~keep)
        err = {m: [] for m in methods}                     # per sequence: (T, hidden) errors
        for si, (_, x) in enumerate(seqs):
            xs = np.where(keep[None, :, None], x, np.nan).astype(np.float32)
            obs = np.broadcast_to(keep, x.shape[:2]).copy()
            preds: dict[str, np.ndarray] = {
                "mean_pose": mean_pose_fill(xs, obs, mean),
                "nearest_joint": nearest_joint_fill(xs, obs, mean),
                "offset_baseline": offset_baseline(xs, obs, mean),
                "aegan_upsample_encoder": upsample(upsampler, xs, name, steps=0, correction="none").joints,
            }
            t0 = time.perf_counter()
            preds["aegan_upsample"] = upsample(upsampler, xs, name, steps=steps).joints
            seconds += time.perf_counter() - t0
            frames += len(x)
            if inpainter is not None:
                preds["aegan_inpainter"] = upsample(inpainter, xs, name, steps=steps).joints
            for m in methods:
                err[m].append(np.linalg.norm(preds[m][:, hidden].astype(np.float64) - x[:, hidden], axis=-1))
            done += 1
            if progress is not None:
                progress(done / total, f"up-sampling {name}: sequence {si + 1}/{len(seqs)}")
        row: dict[str, Any] = {"observed": list(set_joints(name)), "hidden": [COMMON.joints[j] for j in hidden],
                               "description": JOINT_SETS[name][0],
                               "settings": {k: v for k, v in settings_for(name).items() if k != "preset"}
                               if steps is None else {"steps": steps}}
        for m in methods:
            e = np.concatenate(err[m])                      # (frames, hidden)
            row[m] = {"mpjpe_mm": round(float(e.mean()) * 1000, 1),
                      "pck": round(float((e <= pck).mean()), 3),
                      "per_joint_mm": {COMMON.joints[j]: round(float(e[:, k].mean()) * 1000, 1)
                                       for k, j in enumerate(hidden)}}
        b = row["offset_baseline"]["mpjpe_mm"]
        row["aegan_upsample_below_baseline"] = round(1 - row["aegan_upsample"]["mpjpe_mm"] / max(b, 1e-9), 3)
        out_sets[name] = row
    return {"sets": out_sets,
            "settings": {"split": f"{split} (held-out subjects)" if split == "test" else split,
                         "datasets": list(datasets) if data is None else "given", "sequences": len(seqs),
                         "max_frames": max_frames, "seed": seed, "steps": "per set (see each set's settings)"
                         if steps is None else steps, "preset": DEFAULTS["preset"], "units": "mm",
                         "pck_threshold_m": pck, "fps": 20,
                         "errors_on": "hidden joints only (observed joints are kept exactly)",
                         "mean_pose_frames": int(mean["frames"])},
            "seconds_per_300_frames": round(300.0 * seconds / max(frames, 1), 2)}
