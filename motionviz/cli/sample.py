"""``python -m motionviz sample`` and ``python -m motionviz interpolate``: generate motions from the CLI.

``sample`` writes a float32 array (num, frames, J, 3) on the common skeleton (plain ``.npy``, no pickle)::

    python -m motionviz sample --model diffusion --text "raise both arms sideways" --frames 120 \\
        --steps 20 --guidance 2.5 --seed 0 --num 4 --out out.npy
    python -m motionviz sample --model vae --exercise ui-prmd:m01 --incorrect --frames 60 --num 4 --out out.npy
    python -m motionviz sample --model diffusion --list-exercises

Editing with the diffusion model (in-betweening / body-part editing): ``--source motion.npy`` plus
``--keep-first N``, ``--keep-last N`` and/or ``--keep-parts arms,torso`` keeps those frames/joints of the
source and regenerates the rest (the output has the source's length).

``interpolate`` walks the VAE's latent space and writes (steps, frames, J, 3)::

    python -m motionviz interpolate --model vae --exercise ui-prmd:m01 --from-seed 0 --to-seed 1 \\
        --steps 8 --frames 60 --out path.npy
    python -m motionviz interpolate --model vae --exercise ui-prmd:m01 --to-incorrect --spherical --out p.npy

Same seed -> identical file.  Bad input prints one ``error: ...`` line and exits with status 2.
``--json`` prints a one-line JSON summary to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..core.errors import UserError
from ..core.limits import LIMITS, check_budget, whole_number
from ..core.motion import DEFAULT_FPS, Motion, MotionLabels
from ..core.representation import keep_mask
from ..core.skeleton import COMMON
from ..data import load_user_file
from ..data.labels import LABEL_TITLES
from ..generators import registry
from ..generators.registry import DEFAULT_STEPS, MODELS, Request
from ..generators.vae import Endpoint
from ..io.files import check_out, write_npy
from .common import progress_bar, set_threads

__all__ = ["add_arguments", "run", "resolve_exercise", "exercise_titles",
           "parse_correct"]

INTERP_STEPS = (2, 64)


# ---------------------------------------------------------------------------------------------
# helpers shared with the app's text tab
# ---------------------------------------------------------------------------------------------
def _list_hint(model: str) -> str:
    return f"see the valid names with `python -m motionviz sample --model {model} --list-exercises`"


def resolve_exercise(name: str | None, labels: Sequence[str], model: str = "diffusion") -> str | None:
    """The model's label for ``name``: a full ``<dataset>:<id>`` label (any case), an unambiguous bare id
    (``m01``) or an exercise title (``Deep squat``).  ``None``/empty -> ``None``.  Anything else is a
    one-line :class:`UserError` saying how to list the valid names."""
    if name is None or not str(name).strip():
        return None

    n = " ".join(str(name).split())
    labels = list(labels)
    if not labels:
        raise UserError(f"the {model} model was trained without exercise labels; leave the exercise out")
    low = n.lower()
    hits = [lab for lab in labels if lab.lower() == low]
    if not hits and ":" not in n:
        hits = [lab for lab in labels if lab.split(":", 1)[-1].lower() == low]
    if not hits:
        hits = [lab for lab in labels if LABEL_TITLES.get(lab, "").lower() == low]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise UserError(f"exercise {n!r} is ambiguous ({', '.join(hits[:6])}); give the full "
                        f"<dataset>:<id> name")
    known = ""
    if low in {lab.lower() for lab in LABEL_TITLES}:
        known = " (it is not in this model's training data)"
    raise UserError(f"unknown exercise {n!r} for the {model} model{known}; {_list_hint(model)}")


def exercise_titles(labels: Iterable[str]) -> list[tuple[str, str]]:
    """``[(label, title), ...]`` for a model's labels (title from :data:`motionviz.data.LABEL_TITLES`)."""
    return [(lab, LABEL_TITLES.get(lab, "")) for lab in labels]


def parse_correct(correct: bool = False, incorrect: bool = False) -> bool | None:
    if correct and incorrect:
        raise UserError("choose either --correct or --incorrect, not both")
    return True if correct else (False if incorrect else None)


def _load(name: str, checkpoint_dir: str | None):
    return registry.load_generator(name, checkpoint_dir)


def _labels(gen: Any) -> list[str]:
    return list(gen.labels)


# ---------------------------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser, verb: str = "sample") -> None:
    if verb == "interpolate":
        _add_interpolate_arguments(parser)
    else:
        _add_sample_arguments(parser)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint-dir", default=None,
                        help="folder with <model>.safetensors (default: $MOTIONVIZ_CHECKPOINTS or ./checkpoints)")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary to stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--threads", default=None, help="torch CPU threads (default: torch's choice)")


def _add_sample_arguments(p: argparse.ArgumentParser) -> None:
    # numbers are parsed by motionviz.generators.registry.Request.validated so that bad values give one error line
    p.add_argument("--model", default="diffusion",
                   help="diffusion (text/exercise), diffusion-fast (the same, distilled: --steps 1, 2 or 4) "
                        "or vae (exercise)")
    p.add_argument("--text", default="", help="what the motion should be, in plain words (diffusion)")
    p.add_argument("--exercise", default=None,
                   help="exercise label <dataset>:<id> (e.g. ui-prmd:m01), a bare id or a title; "
                        "--list-exercises shows the model's names")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--incorrect", action="store_true", help="an incorrect execution of the exercise")
    g.add_argument("--correct", action="store_true", help="a correct execution (diffusion default: unspecified)")
    p.add_argument("--frames", default=None, help="frames at 20 fps (default 120 diffusion, 60 vae)")
    p.add_argument("--steps", default=None,
                   help="denoising steps (default 20 for diffusion; 1 (default), 2 or 4 for diffusion-fast)")
    p.add_argument("--guidance", default="2.5", help="classifier-free guidance scale (diffusion)")
    p.add_argument("--sampler", default="ddim", help="diffusion sampler: ddim (default) or ddpm")
    p.add_argument("--seed", default="0", help="random seed (same seed -> same output)")
    p.add_argument("--num", default="1", help="number of motions")
    p.add_argument("--source", default=None,
                   help="motion to edit (.npy/.csv/.bvh/.json); with --keep-first/--keep-last/--keep-parts")
    p.add_argument("--source-index", default="0", help="which motion of a (N, T, 15, 3) --source .npy")
    p.add_argument("--keep-first", default="0", help="editing: keep the first N frames of --source")
    p.add_argument("--keep-last", default="0", help="editing: keep the last N frames of --source")
    p.add_argument("--keep-parts", default="",
                   help="editing: keep these body parts of --source, comma-separated (torso, left_arm, "
                        "right_arm, left_leg, right_leg, arms, legs, upper_body, lower_body)")
    p.add_argument("--out", default=None, help="output .npy: float32 (num, frames, 15, 3)")
    p.add_argument("--list-exercises", action="store_true", help="list the model's exercise names and exit")
    _common(p)


def _add_interpolate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="vae", help="the latent model (only 'vae')")
    p.add_argument("--exercise", default=None, help="class of the start, e.g. ui-prmd:m01")
    p.add_argument("--to-exercise", default=None, help="class of the end (default: --exercise)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--incorrect", action="store_true", help="start from an incorrect execution")
    g.add_argument("--correct", action="store_true", help="start from a correct execution (the default)")
    g2 = p.add_mutually_exclusive_group()
    g2.add_argument("--to-incorrect", action="store_true", help="end at an incorrect execution")
    g2.add_argument("--to-correct", action="store_true", help="end at a correct execution")
    p.add_argument("--from-seed", default="0", help="seed of the start latent")
    p.add_argument("--to-seed", default=None,
                   help="seed of the end latent (default: from-seed + 1, or from-seed when only the class changes)")
    p.add_argument("--from-motion", default=None, help="start at an encoded real motion (.npy/.csv/.bvh/.json)")
    p.add_argument("--to-motion", default=None, help="end at an encoded real motion")
    p.add_argument("--spherical", action="store_true", help="spherical (slerp) instead of linear path")
    p.add_argument("--steps", default="8", help="motions on the path, ends included (2-64)")
    p.add_argument("--frames", default="60", help="frames per motion (20 fps)")
    p.add_argument("--out", default=None, help="output .npy: float32 (steps, frames, 15, 3)")
    _common(p)


# ---------------------------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    if getattr(args, "verb", "sample") == "interpolate":
        return run_interpolate(args)
    return run_sample(args)


def _whole(v: Any, name: str, lo: int, hi: int) -> int:
    """An exact int in [lo, hi] (:func:`motionviz.core.limits.whole_number`: seeds up to 2**63 - 1)."""
    return whole_number(v, name, lo, hi)


def _load_motion(path: str, index: int = 0):
    """A user's motion file on the common skeleton at 20 fps.  A (N, T, 15, 3) .npy written by ``sample``
    gives its motion number ``index``."""
    p = Path(path)
    if p.suffix.lower() == ".npy" and p.is_file():
        try:
            a = np.load(p, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as e:
            raise UserError(f"{p.name}: not a readable .npy array ({str(e).splitlines()[0]})") from None
        if a.ndim == 4:
            check_budget(int(a.shape[1]), int(a.shape[2]), p.name)     # before the motion is read
            if a.shape[2:] != (len(COMMON), 3):
                raise UserError(f"{p.name}: a batch of motions must be (N, T, {len(COMMON)}, 3), got {a.shape}")
            if not 0 <= index < a.shape[0]:
                raise UserError(f"{p.name} holds {a.shape[0]} motions; --source-index {index} is out of range")
            return Motion(np.array(a[index], dtype=np.float32), COMMON, DEFAULT_FPS,
                          MotionLabels(source=f"{p.name}[{index}]"))
    m = load_user_file(path)
    if m.skeleton.name != COMMON.name:
        m = m.retarget(COMMON)
    if abs(m.fps - DEFAULT_FPS) > 1e-6:
        m = m.resample(DEFAULT_FPS)
    return m


def run_sample(args: argparse.Namespace) -> int:
    model = str(args.model).strip().lower()
    if model not in MODELS:
        raise UserError(f"unknown model {args.model!r}; choose diffusion, diffusion-fast or vae")
    diffusion = model in ("diffusion", "diffusion-fast")
    if not diffusion and model != "vae":
        raise UserError(f"the {model} model does not sample motions; use `python -m motionviz inpaint`")
    if args.list_exercises:
        gen = _load(model, args.checkpoint_dir)
        rows = exercise_titles(_labels(gen))
        if args.json:
            print(json.dumps({"model": model, "exercises": [{"label": lab, "title": t} for lab, t in rows]}))
        else:
            for lab, t in rows:
                print(f"{lab:<28} {t}")
            if not rows:
                print(f"(the {model} model has no exercise labels)")
        return 0
    if not args.out:
        raise UserError("give the output file with --out FILE.npy")
    check_out(args.out, (".npy",))                 # before any work: exactly this file, writable
    correct = parse_correct(args.correct, args.incorrect)
    frames = args.frames if args.frames is not None else (120 if diffusion else 60)
    editing = bool(args.source)
    keep_first = _whole(args.keep_first, "--keep-first", 0, 10**6)
    keep_last = _whole(args.keep_last, "--keep-last", 0, 10**6)
    parts = [p for p in str(args.keep_parts or "").split(",") if p.strip()]
    if (keep_first or keep_last or parts) and not editing:
        raise UserError("--keep-first/--keep-last/--keep-parts need the motion to edit (--source FILE)")
    if model == "vae":
        if args.text and str(args.text).strip():
            raise UserError("the VAE is conditioned on exercises, not text: use --exercise NAME "
                            "(or --model diffusion for text)")
        if editing:
            raise UserError("editing (--source) needs the diffusion model")
        if not args.exercise:
            raise UserError(f"the VAE needs --exercise NAME; {_list_hint('vae')}")
    steps = args.steps if args.steps is not None else DEFAULT_STEPS.get(model, 20)
    req = Request(model=model, text=args.text or "", correct=correct, frames=frames, steps=steps,
                  guidance=args.guidance, seed=args.seed, num=args.num, sampler=args.sampler).validated()
    source = None
    if editing:
        source = _load_motion(args.source, _whole(args.source_index, "--source-index", 0, 10**6))
        mask = keep_mask(source.num_frames, keep_first, keep_last, parts)
        if not (keep_first or keep_last or parts):
            raise UserError("editing needs --keep-first N, --keep-last N and/or --keep-parts PARTS")
        req = replace(req, source=source, keep=mask, frames=source.num_frames).validated()

    gen = _load(model, args.checkpoint_dir)
    label = resolve_exercise(args.exercise, _labels(gen), model)
    req = replace(req, label=label)
    if diffusion and not (req.text or label or correct is not None or editing) and not args.quiet:
        print("note: no --text or --exercise given: sampling unconditionally", file=sys.stderr)
    _precheck(gen, model, req, bool(args.quiet))
    t0 = time.perf_counter()
    bar, progress = progress_bar(f"{model} sample", not args.quiet, leave=False)
    try:
        motions = gen.generate(req, progress)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    arr = np.stack([m.joints for m in motions]).astype(np.float32)            # (N, T, J, 3)
    if not np.isfinite(arr).all():
        raise UserError("the model produced non-finite values; try fewer steps or a lower guidance scale")
    out = write_npy(args.out, arr)
    summary = {"model": model, "out": str(out), "shape": list(arr.shape), "dtype": "float32",
               "skeleton": motions[0].skeleton.name, "joints": list(motions[0].skeleton.joints),
               "fps": float(motions[0].fps), "text": req.text, "exercise": label, "correct": correct,
               "frames": int(arr.shape[1]), "num": int(arr.shape[0]), "seed": req.seed,
               "seconds": round(seconds, 4)}
    if diffusion:
        summary.update(steps=req.steps, guidance=req.guidance, sampler=req.sampler)
        if editing:
            summary.update(source=str(args.source), kept_fraction=round(float(req.keep.mean()), 4))
    _report(args, summary, f"wrote {out} {tuple(arr.shape)} in {seconds:.2f} s")
    return 0


def _precheck(gen: Any, model: str, req: Any, quiet: bool) -> None:
    """Fail on an impossible class before the progress bar starts, and load the text encoder up front
    (it can take seconds the first time) so its loading is not shown as a stuck 0 %."""
    if model == "vae":
        gen.class_index(req.label, req.correct)
    if model in ("diffusion", "diffusion-fast"):
        gen.check(req)
    if model in ("diffusion", "diffusion-fast") and req.text:
        if not quiet:
            print("loading the text encoder ...", file=sys.stderr)
        gen.encoder.encode([req.text])


def _report(args: argparse.Namespace, summary: dict[str, Any], line: str) -> None:
    if args.json:
        print(json.dumps(summary))
    else:
        print(line)


def run_interpolate(args: argparse.Namespace) -> int:
    model = str(args.model).strip().lower()
    if model != "vae":
        raise UserError(f"latent interpolation needs the VAE (--model vae), not {args.model!r}")
    if not args.out:
        raise UserError("give the output file with --out FILE.npy")
    check_out(args.out, (".npy",))                 # before any work: exactly this file, writable
    steps = _whole(args.steps, "--steps", *INTERP_STEPS)

    frames = _whole(args.frames, "--frames", *LIMITS["frames"])
    from_seed = _whole(args.from_seed, "--from-seed", 0, 2**63 - 1)
    if not args.exercise and not args.from_motion:
        raise UserError(f"give --exercise NAME (a class to sample) or --from-motion FILE; {_list_hint('vae')}")
    start_correct = parse_correct(args.correct, args.incorrect)
    if args.to_incorrect:
        end_correct: bool | None = False
    elif args.to_correct:
        end_correct = True
    else:
        end_correct = start_correct if args.to_exercise is None else None
    start_motion = _load_motion(args.from_motion) if args.from_motion else None
    end_motion = _load_motion(args.to_motion) if args.to_motion else None

    gen = _load("vae", args.checkpoint_dir)
    labels = _labels(gen)
    ex = resolve_exercise(args.exercise, labels, "vae")
    to_ex = resolve_exercise(args.to_exercise, labels, "vae") if args.to_exercise else None
    class_changes = (to_ex is not None and to_ex != ex) or end_correct != start_correct
    if args.to_seed is not None:
        to_seed = _whole(args.to_seed, "--to-seed", 0, 2**63 - 1)
    else:
        to_seed = from_seed if (class_changes or end_motion is not None) else from_seed + 1
    if end_motion is None and not (to_ex or ex):
        raise UserError("give --to-exercise NAME or --to-motion FILE for the end of the path")

    start = Endpoint(ex, start_correct if ex else None, from_seed, start_motion)
    end = Endpoint(to_ex or (ex if end_motion is None else None), end_correct, to_seed, end_motion)
    t0 = time.perf_counter()
    bar, progress = progress_bar("vae interpolate", not args.quiet, leave=False)
    try:
        motions = gen.interpolate_path(start, end, steps=steps, frames=frames, spherical=bool(args.spherical),
                                       progress=progress)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    arr = np.stack([m.joints for m in motions]).astype(np.float32)            # (S, T, J, 3)
    out = write_npy(args.out, arr)
    summary = {"model": "vae", "out": str(out), "shape": list(arr.shape), "dtype": "float32",
               "from": {"exercise": ex, "correct": start_correct, "seed": from_seed, "motion": args.from_motion},
               "to": {"exercise": to_ex or ex, "correct": end_correct, "seed": to_seed, "motion": args.to_motion},
               "spherical": bool(args.spherical), "steps": steps, "frames": frames,
               "seconds": round(seconds, 4)}
    _report(args, summary, f"wrote {out} {tuple(arr.shape)} in {seconds:.2f} s")
    return 0
