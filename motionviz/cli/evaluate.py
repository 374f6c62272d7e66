"""``python -m motionviz classify | evaluate | augment``: the recogniser and the evaluation studies.

* ``classify --input motions.npy [--json]``: (N, T, 15, 3) or (T, 15, 3) arrays on the common skeleton at
  20 fps (as written by ``sample``; ``.json``/``.bvh``/``.csv`` motion files are accepted too) ->
  ``{"predictions": [{"label", "probability", "correct"}, ...]}``.  ``--split test`` classifies the real
  test split instead and reports the held-out accuracy.
* ``evaluate [--num 6] [--repeats 20] [--models diffusion,vae] [--datasets ui-prmd,kimore,irds]``: one JSON
  object, keys ``real`` and each model (see :mod:`motionviz.evaluation.generative`).
  With ``--correctness N`` (default 8; 0 = skip) the object also holds ``correctness_control``
  (requested vs recognised correctness per UI-PRMD / IntelliRehabDS exercise, real and degenerate rows
  beside the models) and ``score_control`` (KIMORE: requested vs predicted clinical score, where a model
  takes a score; printed as a line in text mode too, "not available" with the real row when no model
  takes one; with ``--labels``, only the KIMORE labels among them); see
  :mod:`motionviz.evaluation.correctness`.  With ``--dynamics N`` (default 8; 0 = skip)
  it holds ``dynamics``: range of motion, joint speed, repetitions, period and pelvis travel of N samples
  per exercise against real held-out clips of the same duration, with real-vs-real and degenerate rows
  (see :mod:`motionviz.evaluation.dynamics`); its headline ratios also join the main rows.
* ``augment``: real-only vs real + generated training data (see
  :func:`motionviz.evaluation.generative.augmentation_study`), keys ``real_only`` and ``real_plus_<model>``.

Defaults are sized to finish in a few minutes on CPU; every setting is printed to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .. import data
from ..core.checkpoint import default_checkpoint_dir
from ..core.errors import UserError
from ..core.limits import whole_number
from ..core.motion import DEFAULT_FPS
from ..core.skeleton import COMMON
from ..data import load_user_file, split_of
from ..evaluation import correctness, generative
from ..evaluation.correctness import (
    MAX_NUM,
    CorrectnessSettings,
    correctness_control,
    format_correctness,
    format_score_control,
)
from ..evaluation.dynamics import DynamicsSettings, evaluate_dynamics, format_dynamics
from ..evaluation.dynamics import summary_keys as dynamics_summary_keys
from ..evaluation.generative import AugmentSettings, EvalSettings, augmentation_study
from ..generators import registry
from ..generators.recognition import CHECKPOINT_NAME, load_recognizer
from ..generators.registry import MODELS, FixedSteps, available_models
from ..io.files import batch_chunks, open_npy_batch
from .common import progress_bar, set_threads

MAX_INPUT_BYTES = 512 * 1024 * 1024
#: ``classify`` reads a .npy batch in chunks of at most this many frames (and CLASSIFY_CHUNK_MOTIONS
#: motions): the recogniser's activations cost a few KB per frame, so a 192 MB file classified at once
#: took 5.4 GB; chunked, the peak stays near 0.3 GB whatever the file's size.
CLASSIFY_CHUNK_FRAMES = 50_000
CLASSIFY_CHUNK_MOTIONS = 64


def add_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON (default: a readable table)")
    parser.add_argument("--checkpoints", default=None,
                        help="checkpoint folder (default: $MOTIONVIZ_CHECKPOINTS or ./checkpoints)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--data-root", default=None, help="data folder (default: $MOTIONVIZ_DATA)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    if verb == "classify":
        parser.add_argument("--input", default=None, help=".npy (N,T,15,3)/(T,15,3) or a motion file")
        parser.add_argument("--split", default=None, choices=["train", "val", "test"],
                            help="classify a split of the real corpus and report its accuracy")
        parser.add_argument("--details", action="store_true",
                            help="also print correct_probability and score (KIMORE) per motion")
    elif verb == "evaluate":
        parser.add_argument("--num", type=int, default=6,
                            help="generated motions per label and model; each repeat uses half (6)")
        parser.add_argument("--repeats", type=int, default=20, help="repeats for the intervals (20)")
        parser.add_argument("--models", default=None,
                            help="comma-separated models (default: all available); NAME@STEPS evaluates one step "
                                 "count, e.g. diffusion-fast@1")
        parser.add_argument("--datasets", default="ui-prmd,kimore,irds",
                            help="datasets whose test labels are evaluated ('all' for every dataset)")
        parser.add_argument("--labels", default=None, help="comma-separated labels (default: all shared)")
        parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: model default)")
        parser.add_argument("--prompts", type=int, default=3,
                            help="held-out paraphrases per label for text R-precision (3; 0 = skip)")
        parser.add_argument("--correctness", type=int, default=8,
                            help="correctness control: motions per exercise requested as correct and as "
                                 "incorrect (8; at most 48; 0 = skip)")
        parser.add_argument("--correctness-frames", type=int, default=120,
                            help="frames of the correctness-control motions (120)")
        parser.add_argument("--dynamics", type=int, default=8,
                            help="dynamics (range of motion, speed, repetitions vs real clips of the same "
                                 "duration): samples per exercise and model (8; 0 = skip)")
        parser.add_argument("--dynamics-frames", type=int, default=120,
                            help="frames of the dynamics samples and real clips (120 = 6 s)")
        parser.add_argument("--seed", type=int, default=0)
    elif verb == "augment":
        parser.add_argument("--models", default=None, help="comma-separated models (default: all available)")
        parser.add_argument("--per-class", type=int, default=6, help="generated motions per class (6)")
        parser.add_argument("--steps", type=int, default=250, help="UI-PRMD recogniser training steps (250)")
        parser.add_argument("--kimore-steps", type=int, default=150, help="KIMORE regressor steps per fold (150)")
        parser.add_argument("--folds", type=int, default=3, help="KIMORE cross-subject folds (3)")
        parser.add_argument("--sampler-steps", type=int, default=None, help="generator sampler steps")
        parser.add_argument("--repeats", type=int, default=1,
                            help="training seeds per row; > 1 adds *_ci intervals (1)")
        parser.add_argument("--frames", type=int, default=None,
                            help="generated length in frames (default: each label's median real length, 40-120)")
        parser.add_argument("--seed", type=int, default=0)


def _checkpoint_dir(args: argparse.Namespace) -> Path:
    return Path(args.checkpoints) if args.checkpoints else default_checkpoint_dir()


def _recognizer(args: argparse.Namespace):
    return load_recognizer(_checkpoint_dir(args) / CHECKPOINT_NAME)


def iter_motion_chunks(path: str | os.PathLike, max_frames: int = CLASSIFY_CHUNK_FRAMES,
                       max_motions: int = CLASSIFY_CHUNK_MOTIONS) -> Iterator[list[np.ndarray]]:
    """The motions of a file, a bounded chunk at a time: a .npy array (N, T, 15, 3) / (T, 15, 3) is
    memory-mapped, checked from its header (T x 15 within the user-file joint-frame budget) and read
    ``max_frames`` frames at a time; any other motion file ``load_user_file`` reads is one chunk.  Each
    chunk is a list of (T, 15, 3) float32 arrays on the common skeleton at 20 fps."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"no such file: {p}")
    if p.stat().st_size > MAX_INPUT_BYTES:
        raise UserError(f"{p.name} is larger than {MAX_INPUT_BYTES // 2**20} MB")
    if p.suffix.lower() == ".npy":
        a = open_npy_batch(p, joints=15)
        for s, e in batch_chunks(a.shape[0], a.shape[1], max_frames, max_motions):
            yield [x for x in np.asarray(a[s:e], dtype=np.float32)]
        return

    m = load_user_file(p)
    yield [m.retarget(COMMON).resample(DEFAULT_FPS).joints]


# ------------------------------------------------------------------------------------------------
def _run_classify(args: argparse.Namespace) -> int:
    if (args.input is None) == (args.split is None):
        raise UserError("give exactly one of --input FILE or --split train|val|test")
    model = _recognizer(args)
    if args.input is not None:
        # a chunk at a time, printed as it comes: memory does not grow with the file
        lines: list[str] = []
        i = 0
        opened = False
        for motions in iter_motion_chunks(args.input):
            for p in model.predict(motions):
                if not args.details:
                    p = {k: p[k] for k in ("label", "probability", "correct")}
                if args.json:
                    lines.append(json.dumps(p))
                else:
                    c = "" if p["correct"] is None else ("  correct" if p["correct"] else "  incorrect")
                    print(f"{i:4d}  {p['label']:<28} {p['probability']:.3f}{c}")
                i += 1
            if args.json:
                sys.stdout.write((", " if opened else '{"predictions": [') + ", ".join(lines))
                opened, lines = True, []
        if args.json:
            print("]}")
        return 0

    real = [m for m in data.load_corpus(args.split, root=args.data_root) if m.labels.label in set(model.labels)]
    if not real:
        raise UserError(f"no {args.split} motions with labels known to the recogniser")
    bar, progress = progress_bar(f"classify {args.split}", not args.no_progress)
    out = model.run(real, progress=progress)
    bar.close()
    pred = np.array(model.labels)[out["probs"].argmax(1)]
    truth = np.array([m.labels.label for m in real])
    ds = np.array([m.labels.dataset for m in real])
    res: dict[str, Any] = {"split": args.split, "motions": len(real),
                           "accuracy": round(float((pred == truth).mean()), 4), "per_dataset": {}}
    cor = np.array([m.labels.correct for m in real], dtype=object)
    known = np.array([c is not None for c in cor])
    for d in sorted(set(ds)):
        k = ds == d
        res["per_dataset"][d] = {"motions": int(k.sum()), "accuracy": round(float((pred[k] == truth[k]).mean()), 4)}
        kc = k & known
        if kc.any():
            res["per_dataset"][d]["correctness_accuracy"] = round(float(
                ((out["correct"][kc] >= 0.5) == cor[kc].astype(bool)).mean()), 4)
            res["per_dataset"][d]["correctness_motions"] = int(kc.sum())
    if known.any():
        res["correctness_accuracy"] = round(float(((out["correct"][known] >= 0.5) == cor[known].astype(bool)).mean()), 4)
        res["correctness_motions"] = int(known.sum())
    sc = np.array([np.nan if m.labels.score is None else m.labels.score for m in real], dtype=float)
    ks = np.isfinite(sc)
    if ks.any():
        e = np.clip(out["score"][ks], 0, 100) - sc[ks]
        res["score_rmse"] = round(float(np.sqrt((e ** 2).mean())), 3)
        res["score_mae"] = round(float(np.abs(e).mean()), 3)
    print(json.dumps(res) if args.json else json.dumps(res, indent=1))
    return 0


def format_table(result: dict[str, dict[str, Any]]) -> str:
    """Rows = metrics, columns = the result's rows (``real``, models, ...); ``mean ± ci`` where an
    interval exists."""
    cols = list(result)
    keys: list[str] = []
    for row in result.values():
        keys += [k for k in row if not k.endswith("_ci") and k not in keys]

    def cell(row: dict[str, Any], k: str) -> str:
        v = row.get(k)
        if v is None:
            return "-"
        if isinstance(v, float):
            ci = row.get(f"{k}_ci")
            return f"{v:.4g}" + (f" ± {ci:.2g}" if isinstance(ci, (int, float)) else "")
        return str(v)

    cells = [[k] + [cell(result[c], k) for c in cols] for k in keys]
    widths = [max(len(r[i]) for r in cells + [["metric"] + cols]) for i in range(len(cols) + 1)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(["metric"] + cols, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def _generators(args: argparse.Namespace) -> dict[str, Any]:
    ckpt = _checkpoint_dir(args)
    avail = available_models(ckpt)
    if args.models:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
        for spec in names:
            n = spec.split("@", 1)[0]
            if n not in MODELS:
                raise UserError(f"unknown model {n!r}; choose from {', '.join(MODELS)} (NAME@STEPS for one "
                                f"step count)")
            if n not in avail:
                raise UserError(f"no {n} checkpoint in {ckpt}")
    else:
        names = avail
    out = {}
    for spec in names:
        n, _, k = spec.partition("@")
        g = registry.load_generator(n, ckpt)
        if k:
            g = FixedSteps(g, whole_number(k, f"steps of {spec}", 1, 1000))
        if "label" not in g.tasks:
            if args.models:
                raise UserError(f"model {n} cannot generate from a label; it cannot be evaluated here")
            continue                       # e.g. the inpainter: not a label-conditioned generator
        out[spec] = g
    return out


def _run_evaluate(args: argparse.Namespace) -> int:
    if args.num < 1 or args.num > 64:
        raise UserError(f"--num must be between 1 and 64, got {args.num}")
    if args.repeats < 1 or args.repeats > 1000:
        raise UserError(f"--repeats must be between 1 and 1000, got {args.repeats}")
    _check_correctness_args(args)
    ds = None if args.datasets in (None, "", "all") else tuple(d.strip() for d in args.datasets.split(","))
    settings = EvalSettings(num_per_label=args.num, repeats=args.repeats, datasets=ds,
                            labels=tuple(l.strip() for l in args.labels.split(",")) if args.labels else None,
                            steps=args.steps, prompts_per_label=max(0, args.prompts), seed=args.seed)
    rec = _recognizer(args)
    gens = _generators(args)
    print(f"evaluate: models={list(gens)} settings={settings}", file=sys.stderr)
    test = data.load_corpus("test", root=args.data_root)
    train = data.load_corpus("train", root=args.data_root)
    bar, progress = progress_bar("evaluate", not args.no_progress)
    res = generative.evaluate(gens, rec, test, train, settings, progress)
    bar.close()
    extra = _correctness_sections(args, gens, rec, test, train, ds)
    extra.update(_dynamics_section(args, gens, test, train, ds, res))
    for name, keys in extra.pop("_summary", {}).items():
        if name in res:
            res[name].update(keys)
    if args.json:
        print(json.dumps({**res, **extra}))
    else:
        print(format_table(res))
        if "correctness_control" in extra:
            print()
            print(format_correctness(extra["correctness_control"]))
        if "score_control" in extra:
            print()
            print(format_score_control(extra["score_control"]))
        if "dynamics" in extra:
            print()
            print(format_dynamics(extra["dynamics"]))
    return 0


def _dynamics_section(args: argparse.Namespace, gens: dict[str, Any], test: list, train: list,
                      datasets: tuple[str, ...] | None, res: dict[str, Any]) -> dict[str, Any]:
    """``{"dynamics": ...}`` of :mod:`motionviz.evaluation.dynamics` (``--dynamics 0`` skips it); its
    headline numbers also go into the main table's real and model rows."""
    n = getattr(args, "dynamics", 0)
    if not n:
        return {}
    if not 1 <= n <= 64:
        raise UserError(f"--dynamics must be between 0 and 64, got {n}")
    if not 20 <= args.dynamics_frames <= 600:
        raise UserError(f"--dynamics-frames must be between 20 and 600, got {args.dynamics_frames}")
    labels = tuple(l.strip() for l in args.labels.split(",") if l.strip()) if args.labels else None
    s = DynamicsSettings(num=n, frames=args.dynamics_frames, steps=args.steps, seed=args.seed)
    bar, progress = progress_bar("dynamics", not args.no_progress)
    section = evaluate_dynamics(gens, test, train, datasets, labels, s, progress)
    bar.close()
    for name, keys in dynamics_summary_keys(section).items():
        if name in res:
            res[name].update(keys)
    return {"dynamics": section}


def _check_correctness_args(args: argparse.Namespace) -> int:
    """Validate ``--correctness`` / ``--correctness-frames`` (before any work); returns the count."""
    n = getattr(args, "correctness", 0)
    if not n:
        return 0
    if not 1 <= n <= MAX_NUM:
        raise UserError(f"--correctness must be between 0 and {MAX_NUM}, got {n}")
    frames = args.correctness_frames
    if not 8 <= frames <= 600:
        raise UserError(f"--correctness-frames must be between 8 and 600, got {frames}")
    return n


def _correctness_sections(args: argparse.Namespace, gens: dict[str, Any], rec: Any, test: list, train: list,
                          datasets: tuple[str, ...] | None) -> dict[str, Any]:
    """``correctness_control`` and ``score_control`` of :mod:`motionviz.evaluation.correctness` for the
    ``evaluate`` verb (skipped with ``--correctness 0``), plus ``_summary`` keys for the main table."""
    n = _check_correctness_args(args)
    if not n:
        return {}
    frames = args.correctness_frames
    cds = tuple(d for d in ("ui-prmd", "irds") if datasets is None or d in datasets)
    labels = score_labels = None
    sds = tuple(d for d in ("kimore",) if datasets is None or d in datasets)
    if args.labels:
        asked = [l.strip() for l in args.labels.split(",") if l.strip()]
        labels = tuple(l for l in asked if l.split(":", 1)[0] in cds)
        score_labels = tuple(l for l in asked if l.split(":", 1)[0] in sds)
    s = CorrectnessSettings(num=n, frames=frames, datasets=cds, steps=args.steps, seed=args.seed,
                            score_datasets=sds, score_labels=score_labels)
    out: dict[str, Any] = {}
    if cds and (labels is None or labels):
        if labels:
            s.labels = labels
        bar, progress = progress_bar("correctness", not args.no_progress)
        out["correctness_control"] = correctness_control(gens, rec, test, train, s, progress)
        bar.close()
        out["_summary"] = correctness.summary_keys(out["correctness_control"])
    if s.score_datasets and (score_labels is None or score_labels):
        out["score_control"] = correctness.score_control(gens, rec, test, s)
    return out


def _run_augment(args: argparse.Namespace) -> int:
    for name, v, lo, hi in (("--per-class", args.per_class, 1, 200), ("--steps", args.steps, 1, 100000),
                            ("--kimore-steps", args.kimore_steps, 1, 100000), ("--folds", args.folds, 2, 9),
                            ("--repeats", args.repeats, 1, 20),
                            ("--frames", 60 if args.frames is None else args.frames, 8, 600)):
        if not lo <= v <= hi:
            raise UserError(f"{name} must be between {lo} and {hi}, got {v}")
    s = AugmentSettings(generated_per_class=args.per_class, steps_uiprmd=args.steps,
                        steps_kimore=args.kimore_steps, kimore_folds=args.folds,
                        sampler_steps=args.sampler_steps, repeats=args.repeats, frames=args.frames,
                        seed=args.seed)
    gens = _generators(args)
    print(f"augment: models={list(gens)} settings={s}", file=sys.stderr)
    train = data.load_corpus("train", datasets=["ui-prmd"], root=args.data_root)
    held = data.load_corpus("test", datasets=["ui-prmd"], root=args.data_root)
    kim = data.load_corpus("all", datasets=["kimore"], root=args.data_root)
    ktrain = {m.labels.subject for m in kim if split_of("kimore", m.labels.subject) == "train"}
    bar, progress = progress_bar("augment", not args.no_progress)
    res = augmentation_study(gens, train, held, kim, ktrain, s, progress)
    bar.close()
    print(json.dumps(res) if args.json else format_table(res))
    return 0


def run(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    verb = getattr(args, "verb", None)
    if verb == "classify":
        return _run_classify(args)
    if verb == "evaluate":
        return _run_evaluate(args)
    if verb == "augment":
        return _run_augment(args)
    raise UserError(f"unknown verb {verb!r} for motionviz.cli.evaluate")
