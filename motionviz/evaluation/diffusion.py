"""Speed benchmark section and sanity numbers of the shipped diffusion model."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.motion import DEFAULT_FPS
from ..core.skeleton import COMMON
from ..generators.diffusion import load_generator
from ..generators.registry import Request, checkpoint_path
from .bench import timeit

# ---------------------------------------------------------------------------------------------
# benchmark section (``python -m motionviz bench``)
# ---------------------------------------------------------------------------------------------
BENCH_TEXT = "slowly raise both arms sideways to shoulder height, then lower them"


def bench(quick: bool = False, path: str | Path | None = None, encoder: Any = None) -> dict[str, Any]:
    """Seconds per 120-frame sample (DDIM, guidance 2.5, text-conditioned) at 1000/50/20/10 steps, batch 1
    and 4, median over repeats, from the shipped checkpoint (or ``path``).  ``quick``: 20 and 10 steps,
    one repeat (for tests).  Text encoding is warmed up first (it is cached per text), so the figures are
    the denoising cost."""

    path = Path(path) if path is not None else checkpoint_path("diffusion")
    t0 = time.perf_counter()
    gen = load_generator(path, encoder=encoder)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    gen.generate(Request(text=BENCH_TEXT, frames=16, steps=1))                  # text encoder, warm-up
    first_s = time.perf_counter() - t0
    frames = 120
    rows = []
    for steps in ((20, 10) if quick else (1000, 50, 20, 10)):
        for b in (1, 4):
            req = Request(text=BENCH_TEXT, frames=frames, steps=min(steps, gen.cfg.T), num=b, guidance=2.5, seed=0)
            reps = 1 if quick or steps >= 1000 else (3 if steps >= 50 else 5)
            gen.generate(replace(req, steps=1))                                  # warm-up at this batch size
            med = timeit(lambda: gen.generate(req), repeats=reps, warmup=0)["median"]
            rows.append({"steps": steps, "batch": b, "frames": frames, "seconds_per_call": round(med, 5),
                         "seconds_per_sample": round(med / b, 5), "repeats": reps})
    at20 = [r["seconds_per_sample"] for r in rows if r["steps"] == 20 and r["batch"] == 1]
    return {"checkpoint": str(path), "parameters": sum(p.numel() for p in gen.net.parameters()),
            "config": {k: getattr(gen.cfg, k) for k in ("d_model", "layers", "heads", "ff", "patch", "T", "rep_frames")},
            "threads": torch.get_num_threads(), "load_seconds": round(load_s, 4),
            "first_call_seconds_incl_text_encoder": round(first_s, 4), "guidance": 2.5, "sampler": "ddim",
            "timings": rows, "seconds_per_sample_20_steps": at20[0] if at20 else None,
            "target_seconds_per_sample_20_steps": 0.3}


# ---------------------------------------------------------------------------------------------
# plausibility check of a trained checkpoint
# ---------------------------------------------------------------------------------------------
SANITY_PROMPTS = {
    "arms_sideways": "slowly raise both arms sideways to shoulder height, then lower them",
    "deep_squat": "a deep squat: bend both knees and lower the hips as far as possible, then stand back up",
    "walk": "a person walks forward",
    "unconditional": "",
}


def motion_numbers(joints: np.ndarray, fps: float = DEFAULT_FPS) -> dict[str, float]:
    """Plausibility / content numbers of one motion (T, J, 3) on COMMON: bone-length coefficient of
    variation over time (mean over bones), mean joint speed (m/s), largest joint range (m), pelvis drop
    below its frame-0 height (m), highest wrist above its shoulder (m), widest wrist-to-wrist span (m)."""
    sk = COMMON
    bl = sk.bone_lengths(joints)                                                  # (T, NB)
    cv = float(np.mean(bl.std(0) / np.maximum(bl.mean(0), 1e-6)))
    speed = float(np.linalg.norm(np.diff(joints, axis=0), axis=-1).mean() * fps) if len(joints) > 1 else 0.0
    lw, rw, ls, rs = sk.indices(["left_wrist", "right_wrist", "left_shoulder", "right_shoulder"])
    pel = joints[:, sk.root, 1]
    return {"bone_cv": cv, "speed": speed, "range": float(np.ptp(joints, axis=0).max()),
            "pelvis_drop": float(pel[0] - pel.min()),
            "wrist_above_shoulder": float(max((joints[:, lw, 1] - joints[:, ls, 1]).max(),
                                              (joints[:, rw, 1] - joints[:, rs, 1]).max())),
            "wrist_span": float(np.linalg.norm(joints[:, lw] - joints[:, rw], axis=-1).max())}


def sanity(path: str | Path | None = None, encoder: Any = None, num: int = 6, frames: int = 120, steps: int = 20,
           guidance: float = 2.5, seed: int = 0, prompts: dict[str, str] | None = None) -> dict[str, Any]:
    """Generate ``num`` motions per prompt (:data:`SANITY_PROMPTS`) and report :func:`motion_numbers`
    (mean over samples), the fraction of frozen samples (largest joint range < 5 cm) and how far apart the
    prompts' motions are compared with motions of the same prompt (mean joint distance, metres, after
    removing each motion's start position)."""
    g = load_generator(Path(path) if path is not None else checkpoint_path("diffusion"), encoder=encoder)
    prompts = dict(SANITY_PROMPTS if prompts is None else prompts)
    motions: dict[str, np.ndarray] = {}
    out: dict[str, Any] = {"steps": steps, "guidance": guidance, "frames": frames, "num": num, "prompts": {}}
    for key, text in prompts.items():
        ms = g.generate(Request(text=text, frames=frames, steps=steps, guidance=guidance, seed=seed, num=num))
        J = np.stack([m.joints for m in ms])                                      # (N, T, J, 3)
        motions[key] = J - J[:, :1, COMMON.root:COMMON.root + 1] * np.array([1, 0, 1], np.float32)
        nums = [motion_numbers(j) for j in J]
        row = {k: round(float(np.mean([n[k] for n in nums])), 4) for k in nums[0]}
        row["frozen_fraction"] = round(float(np.mean([n["range"] < 0.05 for n in nums])), 3)
        out["prompts"][key] = {"text": text, **row}

    def dist(a: np.ndarray, b: np.ndarray) -> float:
        d = [np.linalg.norm(x - y, axis=-1).mean() for i, x in enumerate(a) for j, y in enumerate(b)
             if a is not b or i < j]
        return float(np.mean(d))

    keys = list(motions)
    out["within_prompt_distance"] = {k: round(dist(motions[k], motions[k]), 4) for k in keys}
    out["between_prompt_distance"] = {f"{a}|{b}": round(dist(motions[a], motions[b]), 4)
                                      for i, a in enumerate(keys) for b in keys[i + 1:]}
    return out
