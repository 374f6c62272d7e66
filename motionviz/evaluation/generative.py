"""Evaluation of generative models against real data, and the generated-data augmentation study.

:func:`evaluate` (``python -m motionviz evaluate``) follows the ACTOR protocol with the shipped
recogniser (:mod:`motionviz.models.recognition`) as feature extractor:

* Labels: those of the real **test** split that the recogniser and every evaluated generator know
  (optionally restricted with ``datasets`` / ``labels``), with at least 2 real test motions.
* Each generator makes ``num_per_label`` motions per label (conditioned on the label only; frames =
  the label's median real test length, clipped to [40, 160]; seed ``seed``).  Generation on CPU is the
  cost, so this pool is made once.
* For each of ``repeats`` repeats: per label, two disjoint random real test subsets R1, R2 of
  ``q = min(num_per_label // 2, n_label // 2)`` motions (at least 1) and a random subset G of ``q`` of
  the label's generated motions (half the pool, so every repeat sees a different generated sample, as
  ACTOR's regeneration per repeat would).
  Real row: FID(R1, R2), accuracy(R1), diversity(R1), multimodality(R1), SWD(R1, R2), precision /
  recall and density / coverage of R1 against R2, memorisation ratio of R1.  Model row: the same
  with G in place of R1 (R1 as the reference).  So every number has its real floor / ceiling beside it,
  computed on sets of the same size and class mix.  Reported: mean and ``*_ci`` (1.96 standard errors).
* Physical plausibility (jerk, bone-length error, foot skating, joint-limit violations) on every
  evaluated motion (the real row uses the evaluated real test motions).
* Text conditioning (models with the ``text`` task): ``prompts_per_label`` held-out paraphrases per label
  from ``motionviz/evaluation/eval_prompts.json`` (never used in training: a test checks they differ from every
  caption of ``motionviz/data/captions.json``) -> one motion each -> recogniser probabilities over the
  evaluated labels -> R-precision top-1/2/3 (the prompt's label among a pool of up to 32 labels).  Each
  repeat scores a bootstrap resample of the prompts, so the interval reflects the prompt sample.  The
  real row scores (bootstrap resamples of) the real test motions the same way (the ceiling).

:func:`augmentation_study` (``python -m motionviz augment``) trains fresh recognisers on real training
data only vs real + generated data, evaluated on held-out subjects (see its docstring).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..analysis import metrics as M
from ..core.errors import UserError
from ..core.motion import DEFAULT_FPS, Motion
from ..core.skeleton import COMMON
from ..generators.registry import Generator, Request
from ..models.recognition import Config
from ..training.recognition import train_recognizer

__all__ = ["EvalSettings", "evaluate", "AugmentSettings", "augmentation_study", "eval_prompts",
           "generate_pool", "EVAL_PROMPTS_PATH"]

ProgressFn = Callable[[float, str], None]
EVAL_PROMPTS_PATH = Path(__file__).resolve().parent / "eval_prompts.json"


def _noop(f: float, t: str) -> None:
    return None


def eval_prompts() -> dict[str, list[str]]:
    """label -> held-out paraphrases (``motionviz/evaluation/eval_prompts.json``)."""
    return json.loads(EVAL_PROMPTS_PATH.read_text(encoding="utf-8"))["prompts"]


@dataclass
class EvalSettings:
    num_per_label: int = 6          # generated motions per label and model (each repeat uses half)
    repeats: int = 20
    datasets: tuple[str, ...] | None = ("ui-prmd", "kimore", "irds")   # None = all test datasets
    labels: tuple[str, ...] | None = None
    steps: int | None = None        # sampler steps (None = the Request default)
    guidance: float | None = None   # None = the Request default
    prompts_per_label: int = 3      # text R-precision (0 = skip)
    max_frames: int = 160
    min_frames: int = 40
    max_train_reference: int = 1500  # training motions used for the memorisation check
    k_pr: int = 3
    k_dc: int = 5
    seed: int = 0


# ------------------------------------------------------------------------------------------------
def _label_frames(real: Sequence[Motion], labels: Sequence[str], lo: int, hi: int) -> dict[str, int]:
    out = {}
    for lab in labels:
        n = [m.num_frames for m in real if m.labels.label == lab]
        out[lab] = int(np.clip(np.median(n) if n else 60, lo, hi))
    return out


def generate_pool(gen: Generator, labels: Sequence[str], num: int, frames: dict[str, int], seed: int,
                  steps: int | None = None, guidance: float | None = None,
                  progress: ProgressFn = _noop) -> list[Motion]:
    """``num`` motions per label from ``gen`` (label conditioning), labelled with their condition."""
    out: list[Motion] = []
    for i, lab in enumerate(labels):
        kw: dict[str, Any] = dict(model=gen.name, label=lab, num=num, frames=frames[lab], seed=seed + i)
        if steps is not None:
            kw["steps"] = steps
        if guidance is not None:
            kw["guidance"] = guidance
        ms = gen.generate(Request(**kw))
        out += [m.with_labels(label=lab) for m in ms]
        progress((i + 1) / len(labels), f"{gen.name}: {lab}")
    return out


def _physical(motions: Sequence[Motion]) -> dict[str, float]:
    arrs = [m.retarget(COMMON).resample(DEFAULT_FPS).joints for m in motions]
    return M.physical_metrics(arrs, COMMON, DEFAULT_FPS)


def _generator_labels(gen: Generator) -> set[str] | None:
    return set(gen.labels) or None


Rows = dict[str, dict[str, list[float]]]


def _evaluated_labels(generators: dict[str, Generator], recognizer: Any, real_test: Sequence[Motion],
                      s: EvalSettings) -> tuple[list[Motion], list[str]]:
    """-> (real test motions of the evaluated labels, sorted evaluated labels): those of the real test
    split (restricted to ``s.datasets`` / ``s.labels``) with at least 2 motions that the recogniser
    and every generator know."""
    rec_labels = set(recognizer.labels)
    test = [m for m in real_test if m.labels.label in rec_labels]
    if s.datasets:
        test = [m for m in test if m.labels.dataset in s.datasets]
    counts: dict[str, int] = {}
    for m in test:
        counts[m.labels.label] = counts.get(m.labels.label, 0) + 1
    labels = sorted(l for l, n in counts.items() if n >= 2)
    if s.labels:
        unknown = set(s.labels) - set(labels)
        if unknown:
            raise UserError(f"labels without 2 real test motions known to the recogniser: {sorted(unknown)}")
        labels = [l for l in labels if l in s.labels]
    for g in generators.values():
        gl = _generator_labels(g)
        if gl is not None:
            labels = [l for l in labels if l in gl]
    if not labels:
        raise UserError("no label is shared by the real test split, the recogniser and the generators")
    test = [m for m in test if m.labels.label in labels]
    return test, labels


def _train_features(recognizer: Any, real_train: Sequence[Motion], labels: Sequence[str], s: EvalSettings,
                    rng: np.random.Generator) -> np.ndarray | None:
    """Recogniser features (n, d) of at most ``s.max_train_reference`` training motions of ``labels``
    (random subset from ``rng``), the memorisation reference; None with fewer than 2 motions."""
    train = [m for m in real_train if m.labels.label in labels]
    if len(train) > s.max_train_reference:
        train = [train[i] for i in rng.choice(len(train), s.max_train_reference, replace=False)]
    return recognizer.run(train)["features"] if len(train) >= 2 else None


def _text_prompt_motions(g: Generator, labels: list[str], frames: dict[str, int], s: EvalSettings,
                         prompts: dict[str, list[str]], name: str, base: float, span: float,
                         progress: ProgressFn) -> tuple[list[Motion], list[int]]:
    """One motion per held-out prompt (``s.prompts_per_label`` per label) from ``g`` -> (motions, index
    in ``labels`` of each prompt's label)."""
    tm: list[Motion] = []
    tt: list[int] = []
    for i, lab in enumerate(labels):
        for k, text in enumerate(prompts.get(lab, [])[:s.prompts_per_label]):
            kw: dict[str, Any] = dict(model=g.name, text=text, num=1, frames=frames[lab],
                                      seed=s.seed + 1000 + 10 * i + k)
            if s.steps is not None:
                kw["steps"] = s.steps
            if s.guidance is not None:
                kw["guidance"] = s.guidance
            tm += g.generate(Request(**kw))
            tt.append(labels.index(lab))
        progress(base + span * (0.7 + 0.3 * (i + 1) / len(labels)), f"{name}: text prompts")
    return tm, tt


def _generated_pools(generators: dict[str, Generator], recognizer: Any, labels: list[str],
                     frames: dict[str, int], eval_cols: np.ndarray, s: EvalSettings,
                     progress: ProgressFn) -> dict[str, dict[str, Any]]:
    """Per model: its label-conditioned pool (``motions``), the recogniser's output on it (``out``:
    ``features`` (n, d), ``probs`` (n, L)), the pool's ``labels`` (n,) and, for text models,
    ``text_probs`` (p, len(labels)) over the evaluated labels with the prompts' ``text_targets``."""
    pools: dict[str, dict[str, Any]] = {}
    n_models = max(1, len(generators))
    prompts = eval_prompts()
    for mi, (name, g) in enumerate(generators.items()):
        base = 0.1 + 0.8 * mi / n_models
        span = 0.8 / n_models
        pool = generate_pool(g, labels, s.num_per_label, frames, s.seed, s.steps, s.guidance,
                             lambda f, t: progress(base + span * 0.7 * f, t))
        out = recognizer.run(pool)
        entry: dict[str, Any] = {"motions": pool, "out": out,
                                 "labels": np.array([m.labels.label for m in pool], dtype=object)}
        if s.prompts_per_label > 0 and "text" in g.tasks:
            tm, tt = _text_prompt_motions(g, labels, frames, s, prompts, name, base, span, progress)
            if tm:
                entry["text_probs"] = recognizer.run(tm)["probs"][:, eval_cols]
                entry["text_targets"] = tt
        pools[name] = entry
    return pools


def _add(rows: Rows, row: str, key: str, v: float) -> None:
    rows[row].setdefault(key, []).append(float(v))


def _small_data(rows: Rows, row: str, f: np.ndarray, ref: np.ndarray, r: np.random.Generator, s: EvalSettings,
                train_feats: np.ndarray | None) -> None:
    """Small-data metrics of features ``f`` (n, d) against ``ref`` (m, d): SWD, precision / recall,
    density / coverage (when there are enough points) and memorisation against ``train_feats``."""
    _add(rows, row, "swd", M.sliced_wasserstein(f, ref, r))
    if len(f) > s.k_pr and len(ref) > s.k_pr:
        p, rc = M.precision_recall(ref, f, s.k_pr)
        _add(rows, row, "precision", p)
        _add(rows, row, "recall", rc)
    if len(ref) > s.k_dc:
        d, c = M.density_coverage(ref, f, s.k_dc)
        _add(rows, row, "density", d)
        _add(rows, row, "coverage", c)
    if train_feats is not None:
        _add(rows, row, "memorisation_ratio", M.memorisation_ratio(f, ref, train_feats))


def _real_halves(by_label: dict[str, np.ndarray], labels: list[str], num_per_label: int,
                 r: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Two disjoint random subsets R1, R2 (indices into the real test motions) of ``q`` motions per
    label -> (R1, R2, label -> q)."""
    r1, r2, q_of = [], [], {}
    for l in labels:
        idx = r.permutation(by_label[l])
        q = max(1, min(num_per_label // 2, len(idx) // 2))
        q_of[l] = q
        r1 += list(idx[:q])
        r2 += list(idx[q:2 * q])
    return np.array(r1), np.array(r2), q_of


def _score_model(rows: Rows, name: str, e: dict[str, Any], recognizer: Any, labels: list[str], q_of: dict[str, int],
                 f1: np.ndarray, r: np.random.Generator, s: EvalSettings, train_feats: np.ndarray | None) -> None:
    """One repeat of a model's row: a random subset G of its pool (``q_of`` motions per label) scored
    against the real features ``f1`` (n, d) of R1, plus the bootstrap text R-precision."""
    sel = []
    for l in labels:
        gi = np.flatnonzero(e["labels"] == l)
        sel += list(r.permutation(gi)[:q_of[l]])
    sel = np.array(sel)
    fg = e["out"]["features"][sel]
    pred = np.array(recognizer.labels, dtype=object)[e["out"]["probs"][sel].argmax(1)]
    _add(rows, name, "fid", M.fid(fg, f1))
    _add(rows, name, "accuracy", M.accuracy(pred, e["labels"][sel]))
    _add(rows, name, "diversity", M.diversity(fg, r))
    _add(rows, name, "multimodality", M.multimodality(fg, e["labels"][sel], r))
    _small_data(rows, name, fg, f1, r, s, train_feats)
    if "text_probs" in e:
        tt = np.asarray(e["text_targets"])
        b = r.integers(0, len(tt), len(tt))             # bootstrap resample of the prompts
        for k, v in M.r_precision(e["text_probs"][b], tt[b], r).items():
            _add(rows, name, f"r_precision_{k}", v)


def _summarise(rows: Rows, test: list[Motion], pools: dict[str, dict[str, Any]],
               labels: list[str]) -> dict[str, dict[str, float]]:
    """Per row: mean and ``_ci`` of every repeated metric, physical plausibility of its motions, counts."""
    result: dict[str, dict[str, float]] = {}
    for row, vals in rows.items():
        d: dict[str, Any] = {}
        for k, v in vals.items():
            mean, ci = M.mean_ci(v)
            d[k] = _num(mean)
            d[f"{k}_ci"] = _num(ci)
        motions = test if row == "real" else pools[row]["motions"]
        for k, v in _physical(motions).items():
            d[k] = _num(v)
        d["num_motions"] = len(motions)
        d["num_labels"] = len(labels)
        result[row] = d
    return result


def evaluate(generators: dict[str, Generator], recognizer: Any, real_test: Sequence[Motion],
             real_train: Sequence[Motion], settings: EvalSettings | None = None,
             progress: ProgressFn | None = None) -> dict[str, dict[str, float]]:
    """ACTOR-protocol + small-data metrics for ``generators`` and the real floor / ceiling.
    Returns ``{"real": {...}, "<model>": {...}}``; every metric ``x`` has its interval in ``x_ci``."""
    s = settings or EvalSettings()
    progress = progress or _noop
    if s.num_per_label < 1 or s.repeats < 1:
        raise UserError("num_per_label and repeats must be at least 1")
    test, labels = _evaluated_labels(generators, recognizer, real_test, s)
    lab_index = {l: i for i, l in enumerate(recognizer.labels)}
    eval_cols = np.array([lab_index[l] for l in labels])
    frames = _label_frames(test, labels, s.min_frames, s.max_frames)
    rng = np.random.default_rng(s.seed)

    # ---- features ------------------------------------------------------------------------------
    progress(0.0, "recogniser features of real motions")
    real_out = recognizer.run(test)
    train_feats = _train_features(recognizer, real_train, labels, s, rng)
    real_lab = np.array([m.labels.label for m in test], dtype=object)
    by_label = {l: np.flatnonzero(real_lab == l) for l in labels}
    pred_all = np.array(recognizer.labels, dtype=object)[real_out["probs"].argmax(1)]
    pools = _generated_pools(generators, recognizer, labels, frames, eval_cols, s, progress)

    # ---- repeats -------------------------------------------------------------------------------
    progress(0.9, f"{s.repeats} repeats")
    rows: Rows = {"real": {}, **{n: {} for n in generators}}
    for rep in range(s.repeats):
        r = np.random.default_rng([s.seed, rep])
        r1, r2, q_of = _real_halves(by_label, labels, s.num_per_label, r)
        f1, f2 = real_out["features"][r1], real_out["features"][r2]
        _add(rows, "real", "fid", M.fid(f1, f2))
        _add(rows, "real", "accuracy", M.accuracy(pred_all[r1], real_lab[r1]))
        _add(rows, "real", "diversity", M.diversity(f1, r))
        _add(rows, "real", "multimodality", M.multimodality(f1, real_lab[r1], r))
        _small_data(rows, "real", f1, f2, r, s, train_feats)
        for name, e in pools.items():
            _score_model(rows, name, e, recognizer, labels, q_of, f1, r, s, train_feats)
        b = r.integers(0, len(real_lab), len(real_lab))
        rp = M.r_precision(real_out["probs"][b][:, eval_cols], [labels.index(l) for l in real_lab[b]], r)
        for k, v in rp.items():
            _add(rows, "real", f"r_precision_{k}", v)
        progress(0.9 + 0.08 * (rep + 1) / s.repeats, f"repeat {rep + 1}/{s.repeats}")

    result = _summarise(rows, test, pools, labels)
    progress(1.0, "done")
    return result


def _num(v: float) -> float | None:
    """JSON-safe number (None for NaN / inf), rounded to 5 significant digits."""
    if v is None or not math.isfinite(v):
        return None
    if abs(v) < 1e-12:               # e.g. an interval of identical repeats (round-off only)
        return 0.0
    return float(f"{v:.5g}")


# ================================================================================================
# Generated-data augmentation study
# ================================================================================================
@dataclass
class AugmentSettings:
    generated_per_class: int = 6      # generated motions per (label, correct) class and model
    steps_uiprmd: int = 250           # recogniser training steps (UI-PRMD)
    steps_kimore: int = 150           # score-regressor training steps per fold (KIMORE)
    kimore_folds: int = 3
    sampler_steps: int | None = None
    frames: int | None = None          # generated length; None = the label's median real length in [40, 120]
    repeats: int = 1                   # training seeds per row (mean and *_ci over them when > 1)
    seed: int = 0
    hidden: int = 48
    gru_hidden: int = 32
    feature_dim: int = 48
    batch_size: int = 32


def _small_config(labels: Sequence[str], a: AugmentSettings, **kw: Any):
    """The study's small recogniser; ``chain_views`` stays 0 (the study's README figures were measured so)."""
    kw.setdefault("chain_views", 0.0)
    return Config(labels=tuple(labels), hidden=a.hidden, gru_hidden=a.gru_hidden, feature_dim=a.feature_dim,
                  conv_blocks=2, batch_size=a.batch_size, **kw)


def _generate_classes(gen: Generator, classes: Sequence[tuple[str, bool | None]], num: int,
                      frames: int | dict[str, int], seed: int, steps: int | None,
                      progress: ProgressFn) -> list[Motion]:
    out: list[Motion] = []
    for i, (lab, cor) in enumerate(classes):
        c = cor
        if c is not None and not gen.has_correctness(lab):
            c = None
        n_frames = frames[lab] if isinstance(frames, dict) else frames
        kw: dict[str, Any] = dict(model=gen.name, label=lab, correct=c, num=num, frames=n_frames, seed=seed + i)
        if steps is not None:
            kw["steps"] = steps
        try:
            ms = gen.generate(Request(**kw))
        except UserError:
            continue                     # this model cannot make this class (e.g. no incorrect examples)
        out += [m.with_labels(label=lab, correct=c, score=None, dataset=lab.split(":", 1)[0],
                              source=f"generated:{gen.name}") for m in ms]
        progress((i + 1) / len(classes), f"{gen.name}: {lab}" + ("" if c is None else f" ({'correct' if c else 'incorrect'})"))
    return out


@dataclass
class _StudyData:
    """The real data of the augmentation study: UI-PRMD training / held-out motions and exercises,
    scored KIMORE motions and exercises, the KIMORE cross-subject folds (held-out patients) and the
    generated length (one for all, or per label)."""
    up_train: list[Motion]
    up_test: list[Motion]
    up_labels: list[str]
    km: list[Motion]
    km_labels: list[str]
    folds: list[list[str]]
    frames: int | dict[str, int]


def _study_data(real_train: Sequence[Motion], real_heldout: Sequence[Motion], kimore_all: Sequence[Motion],
                kimore_train_subjects: set[str], a: AugmentSettings) -> _StudyData:
    """Select the study's real data (UI-PRMD training and held-out motions are required)."""
    up_train = [m for m in real_train if m.labels.dataset == "ui-prmd"]
    up_test = [m for m in real_heldout if m.labels.dataset == "ui-prmd"]
    if not up_train or not up_test:
        raise UserError("the augmentation study needs UI-PRMD training and held-out motions")
    up_labels = sorted({m.labels.label for m in up_train})
    km = [m for m in kimore_all if m.labels.dataset == "kimore" and m.labels.score is not None]
    km_labels = sorted({m.labels.label for m in km})
    held_subj = sorted({m.labels.subject for m in km} - set(kimore_train_subjects))
    folds = [held_subj[i::a.kimore_folds] for i in range(a.kimore_folds)] if held_subj else []
    folds = [f for f in folds if f]
    if a.frames is not None:
        frames: int | dict[str, int] = a.frames
    else:
        frames = {**_label_frames(up_train, up_labels, 40, 120), **_label_frames(km, km_labels, 40, 120)}
    return _StudyData(up_train, up_test, up_labels, km, km_labels, folds, frames)


def _generated_sets(generators: dict[str, Generator], data: _StudyData, a: AugmentSettings,
                    progress: ProgressFn) -> tuple[dict[str, list[Motion]], dict[str, list[Motion]]]:
    """-> (model -> generated UI-PRMD motions per exercise x correct/incorrect, model -> generated
    KIMORE motions per exercise), made once per model."""
    gen_up: dict[str, list[Motion]] = {}
    gen_km: dict[str, list[Motion]] = {}
    n_tasks = 1 + len(generators)
    for gi, (name, g) in enumerate(generators.items()):
        gl = _generator_labels(g)
        classes = [(l, c) for l in data.up_labels for c in (True, False) if gl is None or l in gl]
        kcls = [(l, None) for l in data.km_labels if gl is None or l in gl]
        f0 = gi / n_tasks * 0.5
        gen_up[name] = _generate_classes(g, classes, a.generated_per_class, data.frames, a.seed, a.sampler_steps,
                                         lambda f, t: progress(f0 + 0.5 / n_tasks * 0.8 * f, t))
        gen_km[name] = _generate_classes(g, kcls, a.generated_per_class, data.frames, a.seed + 500, a.sampler_steps,
                                         lambda f, t: progress(f0 + 0.5 / n_tasks * (0.8 + 0.2 * f), t))
    return gen_up, gen_km


def _uiprmd_scores(model: Any, data: _StudyData) -> dict[str, Any]:
    """Exercise accuracy and correctness accuracy (None without known correctness) of a recogniser on
    the held-out UI-PRMD motions."""
    truth = np.array([m.labels.label for m in data.up_test])
    cor = np.array([m.labels.correct for m in data.up_test], dtype=object)
    known = np.array([c is not None for c in cor])
    out = model.run(data.up_test)
    pred = np.array(data.up_labels)[out["probs"].argmax(1)]
    return {
        "uiprmd_exercise_accuracy": float((pred == truth).mean()),
        "uiprmd_correctness_accuracy": float(((out["correct"][known] >= 0.5) ==
                                              cor[known].astype(bool)).mean()) if known.any() else None,
    }


def _kimore_errors(data: _StudyData, generated: list[Motion] | None, teachers: dict[int, Any], a: AugmentSettings,
                   seed: int, report: Callable[[int, float, str], None]) -> tuple[np.ndarray, int]:
    """KIMORE score regression in cross-subject folds -> ((n,) held-out prediction errors of all folds
    pooled, number of generated motions added per fold).  ``teachers`` (fold -> real-only regressor) is
    filled on first use; with ``generated`` motions they get the teacher's pseudo-score and a regressor
    is trained on real + generated.  ``report(fold, f, text)``: training progress."""
    errs: list[float] = []
    n_gen_km = 0
    for fi, fold in enumerate(data.folds):
        tr = [m for m in data.km if m.labels.subject not in fold]
        te = [m for m in data.km if m.labels.subject in fold]
        fprog = lambda f, t, fi=fi: report(fi, f, t)
        cfg = _small_config(data.km_labels, a, score_weight=5.0)
        if fi not in teachers:
            teachers[fi] = train_recognizer(tr, cfg, steps=a.steps_kimore, seed=seed, labels=data.km_labels,
                                            progress=fprog)
        reg = teachers[fi]
        if generated is not None:
            gen = generated
            if gen:
                pseudo = teachers[fi].run(gen)["score"]
                gen = [m.with_labels(score=float(np.clip(p, 0, 100))) for m, p in zip(gen, pseudo)]
                n_gen_km = len(gen)
                reg = train_recognizer(tr + gen, cfg, steps=a.steps_kimore, seed=seed, labels=data.km_labels,
                                       progress=fprog)
        pred_s = np.clip(reg.run(te)["score"], 0, 100)
        errs += list(pred_s - np.array([m.labels.score for m in te]))
    return np.array(errs), n_gen_km


def _aggregate_runs(runs: dict[str, list[dict[str, Any]]], n_seeds: int) -> dict[str, dict[str, Any]]:
    """Per row: the mean over seeds of every metric (with ``*_ci`` when ``n_seeds`` > 1) and the counts."""
    rows: dict[str, dict[str, Any]] = {}
    for row, rs in runs.items():
        d = {}
        for k in ("uiprmd_exercise_accuracy", "uiprmd_correctness_accuracy", "kimore_rmse", "kimore_mae"):
            vals = [r[k] for r in rs if r[k] is not None]
            if not vals:
                d[k] = None
                continue
            mean, ci = M.mean_ci(vals)
            d[k] = _num(mean)
            if n_seeds > 1:
                d[f"{k}_ci"] = _num(ci)
        d.update(rs[0]["_counts"])
        d["repeats"] = n_seeds
        rows[row] = d
    return rows


def augmentation_study(generators: dict[str, Generator], real_train: Sequence[Motion],
                       real_heldout: Sequence[Motion], kimore_all: Sequence[Motion],
                       kimore_train_subjects: set[str], settings: AugmentSettings | None = None,
                       progress: ProgressFn | None = None) -> dict[str, dict[str, Any]]:
    """Does generated data help a downstream model?  Rows ``real_only`` and ``real_plus_<model>``.

    * UI-PRMD: a fresh (small) recogniser is trained on the UI-PRMD training subjects (real only, or
      plus ``generated_per_class`` generated motions per exercise x correct/incorrect) and tested on the
      held-out subjects (``real_heldout``): ``uiprmd_exercise_accuracy`` (10 classes) and
      ``uiprmd_correctness_accuracy`` (correct vs incorrect head).
    * KIMORE: a score regressor (the same network, score head; 0-100 scale) in cross-subject folds:
      the patients the generators never saw (not in ``kimore_train_subjects``) are split into
      ``kimore_folds`` folds; each fold is tested after training on the generators' training patients
      plus the other folds.  Generated KIMORE motions carry no clinical score, so they get a pseudo-score
      from the fold's real-only regressor (self-training).  ``kimore_rmse`` / ``kimore_mae`` pool the
      held-out predictions of all folds.
    Same seeds, steps and config for every row, so the rows differ only by the added data; with
    ``repeats`` > 1 every row is trained with that many seeds and reported as mean with ``*_ci``
    (1.96 standard errors over seeds).  The generated pool is made once (seed ``seed``)."""
    a = settings or AugmentSettings()
    progress = progress or _noop
    data = _study_data(real_train, real_heldout, kimore_all, kimore_train_subjects, a)
    gen_up, gen_km = _generated_sets(generators, data, a, progress)

    names = ["real_only"] + [f"real_plus_{n}" for n in generators]
    seeds = [a.seed + 1000 * k for k in range(max(1, a.repeats))]
    runs: dict[str, list[dict[str, Any]]] = {row: [] for row in names}
    n_units = len(seeds) * len(names)
    for si, seed in enumerate(seeds):
        teachers: dict[int, Any] = {}          # fold -> real-only regressor (also the pseudo-score teacher)
        for ri, row in enumerate(names):
            unit = si * len(names) + ri
            base = 0.5 + 0.5 * unit / n_units
            span = 0.5 / n_units
            tag = row if len(seeds) == 1 else f"{row} (seed {si + 1}/{len(seeds)})"
            extra = [] if row == "real_only" else gen_up[row[len("real_plus_"):]]
            model = train_recognizer(data.up_train + extra, _small_config(data.up_labels, a), steps=a.steps_uiprmd,
                                     seed=seed, labels=data.up_labels,
                                     progress=lambda f, t: progress(base + span * 0.5 * f, f"{tag}: UI-PRMD {t}"))
            d = _uiprmd_scores(model, data)
            e, n_gen_km = _kimore_errors(
                data, None if row == "real_only" else gen_km[row[len("real_plus_"):]], teachers, a, seed,
                lambda fi, f, t: progress(base + span * (0.5 + 0.5 * (fi + f) / len(data.folds)),
                                          f"{tag}: KIMORE fold {fi + 1}"))
            d.update({"kimore_rmse": float(np.sqrt((e ** 2).mean())) if e.size else None,
                      "kimore_mae": float(np.abs(e).mean()) if e.size else None})
            d["_counts"] = {"uiprmd_train_real": len(data.up_train), "uiprmd_train_generated": len(extra),
                            "uiprmd_test_motions": len(data.up_test), "kimore_folds": len(data.folds),
                            "kimore_test_motions": int(e.size), "kimore_train_generated": n_gen_km}
            runs[row].append(d)

    rows = _aggregate_runs(runs, len(seeds))
    progress(1.0, "done")
    return rows
