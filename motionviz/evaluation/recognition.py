"""Speed benchmark section of the shipped recogniser."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ..generators.recognition import load_recognizer


# ================================================================================================
# Benchmark section (``motionviz.evaluation.bench``)
# ================================================================================================
def bench(quick: bool = True) -> dict[str, Any]:
    """Seconds per classified 120-frame motion (batch 1 and batch 32) with the shipped recogniser.
    Inputs are smooth random motions around a standing pose (speed does not depend on content)."""
    model = load_recognizer()
    rng = np.random.default_rng(0)
    pose = np.zeros((15, 3), np.float32)
    pose[:, 1] = np.linspace(0.1, 1.6, 15)
    def motion() -> np.ndarray:
        walk = np.cumsum(rng.normal(0, 0.01, (120, 15, 3)), axis=0).astype(np.float32)
        return pose[None] + walk

    out: dict[str, Any] = {"parameters": int(sum(p.numel() for p in model.parameters())),
                           "threads": torch.get_num_threads()}
    for batch, reps in ((1, 5 if quick else 20), (32, 1 if quick else 3)):
        ms = [motion() for _ in range(batch)]
        model.run(ms)                                                      # warm-up
        t = time.perf_counter()
        for _ in range(reps):
            model.run(ms, batch_size=batch)
        out[f"seconds_per_motion_batch{batch}"] = round((time.perf_counter() - t) / (reps * batch), 5)
    return out
