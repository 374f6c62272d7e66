"""``python -m motionviz bench [--json] [--quick]``: speed of every available part, measured in one run.

The output is one JSON object: ``machine`` (CPU count, torch threads, versions, ...), then one entry per
row of :data:`SECTIONS`.  A section is a function ``bench(quick: bool) -> dict`` in the module that owns
the feature (``"module:function"``); it reads checkpoints from
:func:`motionviz.core.checkpoint.default_checkpoint_dir` (``--checkpoint-dir`` sets ``$MOTIONVIZ_CHECKPOINTS``
for it).  A section whose module, function or checkpoint is missing is reported as
``{"skipped": "<reason>"}``; a section that raises is reported as ``{"error": "<message>"}`` and the others
still run.  Every entry gets ``"wall_seconds"`` (the section's own run time).

``--quality`` adds ``diffusion_quality``: the evaluation suite's metrics (FID, accuracy, diversity,
multimodality, R-precision, plausibility) at 50/20/10 sampler steps, real-data row included.

For the generator checkpoints (diffusion, vae) whose module has no ``bench`` function yet, a generic
measurement through the :class:`motionviz.generators.registry.Generator` interface is used instead
(``"source": "motionviz.evaluation.bench generic"``): seconds per 120-frame sample at several step counts, batch 1
and 4, for the diffusion model; seconds per 60-frame sample and per 8-step interpolation for the VAE.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from typing import Any, Callable

import numpy as np
import torch

from .. import data
from ..core.checkpoint import default_checkpoint_dir
from ..core.errors import DataNotFound, UserError
from ..generators import registry
from ..generators.recognition import CHECKPOINT_NAME, load_recognizer
from ..generators.registry import MODELS, Request, checkpoint_path
from ..generators.vae import Endpoint
from . import generative
from .generative import EvalSettings

__all__ = ["SECTIONS", "run_bench", "machine_info", "run_section", "timeit"]

#: section name -> ("module:function", checkpoint it needs or None): a generator name of
#: :data:`motionviz.generators.registry.MODELS`, or ``<name>`` for ``<checkpoint dir>/<name>.safetensors``.
SECTIONS: dict[str, tuple[str, str | None]] = {
    "diffusion": ("motionviz.evaluation.diffusion:bench", "diffusion"),
    "diffusion-fast": ("motionviz.evaluation.diffusion_fast:bench", "diffusion-fast"),
    "vae": ("motionviz.evaluation.vae:bench", "vae"),
    "inpaint": ("motionviz.evaluation.inpainting:bench", "aegan"),
    "mesh": ("motionviz.evaluation.mesh:bench", None),
    "video": ("motionviz.video:bench", None),
    "recognizer": ("motionviz.evaluation.recognition:bench", "recognizer"),
    "diffusion_quality": ("motionviz.evaluation.bench:diffusion_quality", "diffusion"),
}
#: Sections run only when asked for (``--quality`` or ``--only``): they take minutes, not seconds.
OPTIONAL: frozenset[str] = frozenset({"diffusion_quality"})
#: Sampler steps compared by :func:`diffusion_quality`.
QUALITY_STEPS: tuple[int, ...] = (50, 20, 10)
QUALITY_KEYS = ("fid", "accuracy", "diversity", "multimodality", "r_precision_top1", "r_precision_top3",
                "precision", "recall", "coverage", "jerk", "bone_length_error", "foot_skating", "limit_any")


# ---------------------------------------------------------------------------------------------
# helpers for section functions
# ---------------------------------------------------------------------------------------------
def timeit(fn: Callable[[], Any], repeats: int = 3, warmup: int = 1) -> dict[str, float]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times; return median/min/mean seconds."""
    for _ in range(max(0, warmup)):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    n = len(times)
    median = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    return {"median": round(median, 5), "min": round(times[0], 5), "mean": round(sum(times) / n, 5),
            "repeats": n}


def machine_info() -> dict[str, Any]:
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    cpu_model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gb = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gb = round(int(line.split()[1]) / 2**20, 1)
                    break
    except (OSError, ValueError):
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {
        "cpu_count": os.cpu_count(), "cpu_affinity": affinity, "cpu_model": cpu_model,
        "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_version": torch.__version__, "numpy_version": np.__version__,
        "python_version": platform.python_version(), "platform": platform.platform(),
        "cuda_available": bool(torch.cuda.is_available()), "memory_gb": mem_gb, "load_average": load,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


# ---------------------------------------------------------------------------------------------
# generic generator timings (used when a model module has no bench function)
# ---------------------------------------------------------------------------------------------
def _generic_diffusion(quick: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    gen = registry.load_generator("diffusion")
    load_s = time.perf_counter() - t0
    labels = list(gen.labels)
    text = "slowly raise both arms sideways to shoulder height, then lower them"
    t0 = time.perf_counter()
    gen.generate(Request(text=text, frames=16, steps=1, num=1))          # loads the text encoder
    first_s = time.perf_counter() - t0
    frames = 120
    steps_list = (20, 10) if quick else (1000, 50, 20, 10)
    batches = (1,) if quick else (1, 4)
    rows = []
    for steps in steps_list:
        for b in batches:
            req = Request(text=text, label=labels[0] if labels else None, frames=frames, steps=steps, num=b,
                          guidance=2.5, seed=0)
            reps = 1 if (quick or steps >= 1000) else 3
            t = timeit(lambda: gen.generate(req), repeats=reps, warmup=0 if steps >= 1000 else 1)
            rows.append({"steps": steps, "batch": b, "frames": frames, "seconds_per_call": t["median"],
                         "seconds_per_sample": round(t["median"] / b, 5), "repeats": t["repeats"]})
    at20 = [r["seconds_per_sample"] for r in rows if r["steps"] == 20]
    return {"source": "motionviz.evaluation.bench generic", "checkpoint": str(checkpoint_path("diffusion")),
            "load_seconds": round(load_s, 4), "first_call_seconds_incl_text_encoder": round(first_s, 4),
            "guidance": 2.5, "sampler": "ddim", "timings": rows,
            "seconds_per_sample_20_steps": min(at20) if at20 else None, "target_seconds_per_sample_20_steps": 0.3}


def _generic_vae(quick: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    gen = registry.load_generator("vae")
    load_s = time.perf_counter() - t0
    labels = list(gen.labels)
    if not labels:
        raise UserError("the VAE has no classes")
    label = labels[0]
    reps = 1 if quick else 5
    rows = []
    for b in ((1,) if quick else (1, 4, 16)):
        t = timeit(lambda: gen.sample(label, None, frames=60, num=b, seed=0), repeats=reps)
        rows.append({"batch": b, "frames": 60, "seconds_per_call": t["median"],
                     "seconds_per_sample": round(t["median"] / b, 6)})
    out: dict[str, Any] = {"source": "motionviz.evaluation.bench generic", "checkpoint": str(checkpoint_path("vae")),
                           "load_seconds": round(load_s, 4), "label": label, "sampling": rows}
    if "interpolate" in gen.tasks:
        t = timeit(lambda: gen.interpolate_path(Endpoint(label, None, 0), Endpoint(label, None, 1), steps=8,
                                                frames=60), repeats=reps)
        out["interpolate_8_steps_60_frames_seconds"] = t["median"]
    return out


def diffusion_quality(quick: bool) -> dict[str, Any]:
    """Quality vs sampler steps of the diffusion model: :func:`motionviz.evaluation.generative.evaluate` (ACTOR
    protocol with the shipped recogniser, held-out test split) at each of :data:`QUALITY_STEPS`, with
    the real-data row beside it; also the seconds each setting took.  ``quick``: UI-PRMD only, 10 steps,
    two motions per label, 2 repeats (a smoke run)."""
    rec_path = default_checkpoint_dir() / CHECKPOINT_NAME
    if not rec_path.is_file():
        return {"skipped": f"no recogniser checkpoint at {rec_path} (the quality metrics need it)"}
    datasets = ("ui-prmd",) if quick else ("ui-prmd", "kimore", "irds")
    settings = dict(num_per_label=2 if quick else 6, repeats=2 if quick else 10, datasets=datasets,
                    prompts_per_label=1 if quick else 2, seed=0)
    try:
        test = data.load_corpus("test", datasets=list(datasets))
        train = data.load_corpus("train", datasets=list(datasets))
    except DataNotFound as e:
        return {"skipped": f"no data for the quality metrics ({e})"}
    gen = registry.load_generator("diffusion")
    rec = load_recognizer(rec_path)
    out: dict[str, Any] = {"settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()},
                           "metric_keys": list(QUALITY_KEYS), "steps": {}}

    def pick(row: dict[str, Any]) -> dict[str, Any]:
        return {k: row.get(k) for key in QUALITY_KEYS for k in (key, f"{key}_ci") if k in row}

    for steps in ((10,) if quick else QUALITY_STEPS):
        t0 = time.perf_counter()
        res = generative.evaluate({"diffusion": gen}, rec, test, train, EvalSettings(steps=steps, **settings))
        row = pick(res["diffusion"])
        row["seconds"] = round(time.perf_counter() - t0, 2)
        row["num_motions"] = res["diffusion"].get("num_motions")
        out["steps"][str(steps)] = row
        out["real"] = pick(res["real"])
    return out


GENERIC: dict[str, Callable[[bool], dict[str, Any]]] = {"diffusion": _generic_diffusion, "vae": _generic_vae}


# ---------------------------------------------------------------------------------------------
# running sections
# ---------------------------------------------------------------------------------------------
def _resolve(spec: str) -> tuple[Callable[[bool], dict] | None, str]:
    """(function or None, reason it is missing)."""
    module, _, fn = spec.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            return None, f"module {module} is not in this installation"
        return None, f"cannot import {module} ({e})"
    except ImportError as e:
        return None, f"cannot import {module} ({e})"
    f = getattr(mod, fn, None)
    if not callable(f):
        return None, f"{module} has no {fn}() function yet"
    return f, ""


def _checkpoint_file(name: str):
    """The checkpoint a section needs: a generator of :data:`motionviz.generators.registry.MODELS` or
    ``<checkpoint dir>/<name>.safetensors``."""
    if name in MODELS:
        return checkpoint_path(name)
    return default_checkpoint_dir() / f"{name}.safetensors"


def run_section(name: str, spec: str, needs: str | None, quick: bool) -> dict[str, Any]:
    """One section's result dict (never raises except KeyboardInterrupt)."""
    t0 = time.perf_counter()
    try:
        if needs is not None:
            path = _checkpoint_file(needs)
            if not path.is_file():
                return {"skipped": f"no {needs} checkpoint at {path}"}
        fn, why = _resolve(spec)
        if fn is None:
            if name in GENERIC and needs is not None:
                fn = GENERIC[name]
            else:
                return {"skipped": why}
        with contextlib.redirect_stdout(sys.stderr):      # stdout carries only the JSON
            result = fn(bool(quick))
        if not isinstance(result, dict):
            raise TypeError(f"{spec} returned {type(result).__name__}, not a dict")
        out = dict(result)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - one failing section must not kill the others
        msg = str(e).splitlines()[0] if str(e) else ""
        out = {"error": f"{e.__class__.__name__}: {msg}"[:500]}
        if os.environ.get("MOTIONVIZ_DEBUG"):
            out["traceback"] = traceback.format_exc()
    out["wall_seconds"] = round(time.perf_counter() - t0, 3)
    return out


def run_bench(quick: bool = False, only: list[str] | None = None,
              progress: Callable[[str], None] | None = None, quality: bool = False) -> dict[str, Any]:
    """The whole benchmark as a dict: ``machine``, ``quick``, one entry per section, ``total_seconds``.
    Sections in :data:`OPTIONAL` run only with ``quality`` or when named in ``only``."""
    names = [n for n in SECTIONS if quality or n not in OPTIONAL]
    if only:
        unknown = [n for n in only if n not in SECTIONS]
        if unknown:
            raise UserError(f"unknown bench section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")
        names = [n for n in SECTIONS if n in only]
    t0 = time.perf_counter()
    out: dict[str, Any] = {"machine": machine_info(), "quick": bool(quick)}
    for name in names:
        if progress is not None:
            progress(name)
        spec, needs = SECTIONS[name]
        out[name] = run_section(name, spec, needs, quick)
    out["total_seconds"] = round(time.perf_counter() - t0, 3)
    return out
