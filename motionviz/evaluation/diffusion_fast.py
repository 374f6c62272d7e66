"""Speed benchmark section of the distilled diffusion sampler."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from ..generators import diffusion as teacher_mod_G
from ..generators.diffusion_fast import load_generator
from ..generators.registry import Request, checkpoint_path
from ..models.diffusion_fast import KIND, allowed_steps
from . import diffusion as teacher_mod_E
from .bench import timeit


# ---------------------------------------------------------------------------------------------
# benchmark section (``python -m motionviz bench``)
# ---------------------------------------------------------------------------------------------
def bench(quick: bool = False, path: str | Path | None = None, encoder: Any = None) -> dict[str, Any]:
    """Seconds per 120-frame sample (text-conditioned, guidance 2.5) at 1, 2 and 4 steps, batch 1 and 16,
    median over repeats, and the teacher's 20-step rows measured in the same run (``ratio_to_teacher``:
    teacher seconds / student seconds at the same batch size).  Text encoding is cached per text and warmed
    up first.  ``quick``: one repeat, steps 1 and 2, no teacher rows."""

    path = Path(path) if path is not None else checkpoint_path(KIND)
    t0 = time.perf_counter()
    gen = load_generator(path, encoder=encoder)
    load_s = time.perf_counter() - t0
    gens: list[tuple[str, Any, int]] = [(KIND, gen, k) for k in ((1, 2) if quick else allowed_steps(gen.cfg))]
    teacher_path = checkpoint_path("diffusion", path.parent)
    if not quick and teacher_path.is_file():
        gens.append(("diffusion", teacher_mod_G.load_generator(teacher_path, encoder=gen._encoder), 20))
    text = teacher_mod_E.BENCH_TEXT
    rows = []
    for name, g, steps in gens:
        for b in (1, 16):
            req = Request(model=name, text=text, frames=120, steps=steps, num=b, guidance=2.5, seed=0)
            reps = 1 if quick else (5 if name == KIND else 3)
            med = timeit(lambda: g.generate(req), repeats=reps, warmup=1)["median"]
            rows.append({"model": name, "steps": steps, "batch": b, "frames": 120, "seconds_per_call": round(med, 5),
                         "seconds_per_sample": round(med / b, 5), "repeats": reps})
    teacher = {r["batch"]: r["seconds_per_sample"] for r in rows if r["model"] == "diffusion"}
    for r in rows:
        if r["model"] == KIND and r["batch"] in teacher:
            r["ratio_to_teacher"] = round(teacher[r["batch"]] / r["seconds_per_sample"], 1)
    return {"checkpoint": str(path), "parameters": sum(p.numel() for p in gen.net.parameters()),
            "config": {k: getattr(gen.cfg, k) for k in ("d_model", "layers", "heads", "ff", "patch", "rep_frames")},
            "threads": torch.get_num_threads(), "load_seconds": round(load_s, 4), "guidance": 2.5,
            "timings": rows, "targets": {"seconds_per_sample_batch_1": 0.020, "seconds_per_sample_batch_16": 0.005}}
