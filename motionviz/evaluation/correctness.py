"""Correctness control: does a generator make a correct execution when asked for one, and an incorrect
one when asked for that?  And, where a generator takes a clinical-score condition, the score it was asked
for?  Part of ``python -m motionviz evaluate`` (key ``correctness_control`` / ``score_control``).

Protocol (:func:`correctness_control`):

* Exercises: labels of ``datasets`` (default UI-PRMD and IntelliRehabDS) that the recogniser knows, whose
  correctness head was trained (``recognizer.correct_labels``) and that have both correct and incorrect
  executions in the real data given (training split, else test split).
* Each generator makes ``num`` motions per exercise requested as correct and ``num`` requested as
  incorrect (``Request(label=..., correct=True/False)``, ``frames`` frames, seed ``seed`` + exercise
  index; a model that has no incorrect class of an exercise is skipped for it).
* The judge is the shipped recogniser's correctness head **of the requested exercise** (the per-class
  head is read at the requested class, so a motion that looks like another exercise is still judged as
  the exercise it was asked for); recognised correct = probability >= 0.5.  ``label_accuracy`` adds how
  often the recogniser's label is the requested exercise.
* Per exercise: ``correct_as_correct`` (share of correct requests recognised correct),
  ``incorrect_as_incorrect`` and ``control`` = their mean (balanced accuracy; chance 0.5).
  Row summary: ``mean`` over exercises, ``min`` (the issue's target is >= 0.85 for **every** exercise),
  ``at_target`` (exercises >= ``target``), and the mean per dataset.
* Rows beside the models: ``real`` = the real test recordings judged the same way (the ceiling the
  recogniser allows; IntelliRehabDS's test patient has only one of the two classes per gesture, so its
  control is the one available side); ``real_repeated`` = the same recordings in the form of a generated
  motion: each played back to back with its subject's other repetitions of the exercise and correctness
  (``core.repetitions.chain_repetitions``; itself when it has none) to the generated length, so the
  judge is shown to recognise multi-repetition motions too; ``frozen_pose`` = a motion frozen in the mean pose of the exercise's
  real test recordings, returned for both requests (ignores the request: exactly 0.5 per exercise);
  ``opposite_real`` = real test recordings of the *opposite* correctness (the floor: 1 - real);
  ``other_exercise`` = the exercise's real correct recordings for the correct requests and *another*
  exercise's recordings (the next one of the same dataset among the test recordings) for the incorrect
  requests: the requested exercise's correctness head calls another exercise incorrect, so **control alone
  passes it**.
* What catches that: ``exercise_correct`` / ``exercise_incorrect`` (share of the correct / incorrect requests
  the recogniser's label head identifies as the requested exercise) and ``strict`` = the mean over the two
  sides of "recognised as the requested exercise *and* the requested execution".  Row summary:
  ``strict_mean``, ``strict_min``, ``strict_at_target`` (and per dataset: ``strict_mean_<dataset>``,
  ``strict_at_target_<dataset>``), ``exercise_correct_mean``, ``exercise_incorrect_mean``.
  The recogniser identifies the real UI-PRMD test recordings (0.925-1.0 per exercise) but not most of
  IntelliRehabDS's (one test patient; gestures 0-4), so strict control is informative on UI-PRMD only.

:func:`score_control` (KIMORE): for generators that accept a target clinical score (``"score"`` in their
``tasks``), motions requested at each target score are scored by the recogniser's score head of the
exercise: mean absolute error and Pearson correlation between requested and predicted score.  The real
row scores the real test patients the same way (predicted vs clinical score).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..core.errors import UserError
from ..core.limits import LIMITS
from ..core.motion import DEFAULT_FPS, Motion
from ..core.repetitions import SEAM_BLEND, chain, chain_repetitions
from ..core.skeleton import COMMON
from ..generators.registry import Generator, Request
from ..models.recognition import motions_to_batch

__all__ = ["CorrectnessSettings", "correctness_control", "score_control", "judge", "correctness_labels",
           "format_correctness", "format_score_control", "summary_keys", "TARGET"]

ProgressFn = Callable[[float, str], None]
TARGET = 0.85


def _noop(f: float, t: str) -> None:
    return None


@dataclass
class CorrectnessSettings:
    num: int = 8                        # motions per exercise and requested correctness
    frames: int | None = 120            # None = the exercise's median real test length in [40, 160]
    datasets: tuple[str, ...] | None = ("ui-prmd", "irds")
    labels: tuple[str, ...] | None = None
    steps: int | None = None
    guidance: float | None = None
    seed: int = 0
    score_targets: tuple[float, ...] = (30.0, 50.0, 70.0, 90.0)
    score_datasets: tuple[str, ...] = ("kimore",)
    score_labels: tuple[str, ...] | None = None     # None = every scored exercise of score_datasets
    target: float = TARGET


# ------------------------------------------------------------------------------------------------
def judge(recognizer: Any, motions: Sequence[Motion | np.ndarray], labels: Sequence[str],
          batch_size: int = 64) -> dict[str, np.ndarray]:
    """Run the recogniser reading its per-class heads at the given ``labels`` (one per motion).
    Returns ``correct`` (N,) probability of a correct execution, ``score`` (N,) points (0-100) and
    ``label`` (N,) the recognised label."""
    if len(motions) != len(labels):
        raise ValueError(f"{len(motions)} motions but {len(labels)} labels")
    if not motions:
        raise UserError("no motions to judge")
    index = {l: i for i, l in enumerate(recognizer.labels)}
    unknown = sorted({l for l in labels if l not in index})
    if unknown:
        raise UserError(f"the recogniser does not know {', '.join(unknown)}")
    arrs = [m.retarget(COMMON).resample(DEFAULT_FPS).joints if isinstance(m, Motion) else np.asarray(m)
            for m in motions]
    order = np.argsort([len(a) for a in arrs])
    cor, sco, lab = np.zeros(len(arrs)), np.zeros(len(arrs)), np.empty(len(arrs), dtype=object)
    recognizer.eval()
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            x, lengths = motions_to_batch([arrs[i] for i in idx], recognizer.config.num_joints)
            cls = torch.tensor([index[labels[i]] for i in idx], dtype=torch.long)
            o = recognizer(x, lengths, cls)
            cor[idx] = torch.sigmoid(o["correct"]).numpy()
            sco[idx] = (o["score"] * 100.0).numpy()
            lab[idx] = [recognizer.labels[k] for k in o["logits"].argmax(-1).tolist()]
    return {"correct": cor, "score": sco, "label": lab}


def correctness_labels(recognizer: Any, real: Sequence[Motion], datasets: Sequence[str] | None,
                       labels: Sequence[str] | None = None) -> list[str]:
    """Exercises with both correct and incorrect executions in ``real`` that the recogniser judges."""
    known = set(recognizer.labels)
    heads = getattr(recognizer, "correct_labels", None)
    if heads:
        known &= set(heads)
    seen: dict[str, set] = {}
    for m in real:
        if m.labels.correct is None or m.labels.label not in known:
            continue
        if datasets and m.labels.dataset not in datasets:
            continue
        seen.setdefault(m.labels.label, set()).add(bool(m.labels.correct))
    out = sorted(l for l, s in seen.items() if s == {True, False})
    if labels:
        missing = sorted(set(labels) - set(out))
        if missing:
            raise UserError(f"no correct and incorrect executions known to the recogniser for: {', '.join(missing)}")
        out = [l for l in out if l in labels]
    return out


def _summary(per: dict[str, dict[str, Any]], target: float) -> dict[str, Any]:
    vals = {l: d["control"] for l, d in per.items() if d.get("control") is not None}
    out: dict[str, Any] = {"per_label": per, "labels": len(vals)}
    if vals:
        v = np.array(list(vals.values()))
        out.update(mean=_r(v.mean()), min=_r(v.min()), worst=min(vals, key=vals.get),
                   at_target=int((v >= target - 1e-9).sum()))
        for ds in sorted({l.split(":", 1)[0] for l in vals}):
            out[f"mean_{ds}"] = _r(np.mean([x for l, x in vals.items() if l.startswith(ds + ":")]))
    strict = {l: d["strict"] for l, d in per.items() if d.get("strict") is not None}
    if strict:
        v = np.array(list(strict.values()))
        out.update(strict_mean=_r(v.mean()), strict_min=_r(v.min()),
                   strict_at_target=int((v >= target - 1e-9).sum()))
        for ds in sorted({l.split(":", 1)[0] for l in strict}):
            sv = [x for l, x in strict.items() if l.startswith(ds + ":")]
            out[f"strict_mean_{ds}"] = _r(float(np.mean(sv)))
            out[f"strict_at_target_{ds}"] = int(sum(x >= target - 1e-9 for x in sv))
    for side in ("exercise_correct", "exercise_incorrect"):
        v = [d[side] for d in per.values() if d.get(side) is not None]
        if v:
            out[f"{side}_mean"] = _r(float(np.mean(v)))
    return out


def _r(v: float | None) -> float | None:
    if v is None or not np.isfinite(v):
        return None
    return float(f"{float(v):.4g}")


def _entry(as_correct: np.ndarray | None, as_incorrect: np.ndarray | None,
           label_hits: np.ndarray | None = None, hits_correct: np.ndarray | None = None,
           hits_incorrect: np.ndarray | None = None) -> dict[str, Any]:
    """as_correct: recognised-correct flags of the correct requests; as_incorrect: recognised-incorrect
    flags of the incorrect requests; label_hits: recognised-as-the-exercise flags of all of them;
    hits_correct / hits_incorrect: the same flags per side (aligned with as_correct / as_incorrect), which
    add ``exercise_correct`` / ``exercise_incorrect`` and ``strict`` = the mean over the two sides of
    "recognised as the requested exercise *and* as the requested execution"."""
    d: dict[str, Any] = {}
    parts = []
    for key, v in (("correct_as_correct", as_correct), ("incorrect_as_incorrect", as_incorrect)):
        if v is None or not len(v):
            d[key] = None
            d[f"n_{key.split('_')[0]}"] = 0
            continue
        d[key] = _r(float(np.mean(v)))
        d[f"n_{key.split('_')[0]}"] = int(len(v))
        parts.append(float(np.mean(v)))
    d["control"] = _r(float(np.mean(parts))) if parts else None
    if label_hits is not None and len(label_hits):
        d["label_accuracy"] = _r(float(np.mean(label_hits)))
    if hits_correct is not None or hits_incorrect is not None:
        strict = []
        for key, ok, hit in (("exercise_correct", as_correct, hits_correct),
                             ("exercise_incorrect", as_incorrect, hits_incorrect)):
            if ok is None or hit is None or not len(ok):
                d[key] = None
                continue
            d[key] = _r(float(np.mean(hit)))
            strict.append(float(np.mean(np.asarray(ok) & np.asarray(hit))))
        d["strict"] = _r(float(np.mean(strict))) if strict else None
    return d


def _frames_of(real: Sequence[Motion], label: str, s: CorrectnessSettings) -> int:
    if s.frames is not None:
        return int(s.frames)
    n = [m.num_frames for m in real if m.labels.label == label]
    return int(np.clip(np.median(n) if n else 60, 40, 160))


MAX_NUM = 48     # motions per exercise and condition (seeds of the two executions stay 50 apart)


def _check_num(num: int) -> None:
    if not 1 <= num <= MAX_NUM:
        raise UserError(f"the number of motions per condition must be between 1 and {MAX_NUM}, got {num}")


def _generate(gen: Generator, label: str, num: int, frames: int, seed: int, s: CorrectnessSettings,
              **cond: Any) -> list[Motion]:
    """``num`` motions of one condition, requested in chunks the request limit allows (chunk k seeded
    ``seed + k * chunk``)."""
    chunk = LIMITS["num"][1]
    out: list[Motion] = []
    for start in range(0, num, chunk):
        out += gen.generate(_request(gen, label, min(chunk, num - start), frames, seed + start, s, **cond))
    return out


def _request(gen: Generator, label: str, num: int, frames: int, seed: int, s: CorrectnessSettings,
             **cond: Any) -> Request:
    kw: dict[str, Any] = dict(model=gen.name, label=label, num=num, frames=frames, seed=seed)
    if s.steps is not None:
        kw["steps"] = s.steps
    if s.guidance is not None:
        kw["guidance"] = s.guidance
    kw.update(cond)
    return Request(**kw)


def _real_rows(recognizer: Any, test: Sequence[Motion], real_test: Sequence[Motion], labels: Sequence[str],
               s: CorrectnessSettings) -> tuple[dict[str, Any], ...]:
    """Per-exercise entries of the rows built from real test recordings: ``real``, ``real_repeated``,
    ``opposite_real``, ``frozen_pose`` and ``other_exercise`` (see the module docstring)."""
    real_per: dict[str, Any] = {}
    rep_per: dict[str, Any] = {}
    opp_per: dict[str, Any] = {}
    frozen_per: dict[str, Any] = {}
    other_per: dict[str, Any] = {}
    if not test:
        return real_per, rep_per, opp_per, frozen_per, other_per
    lab = np.array([m.labels.label for m in test], dtype=object)
    j = judge(recognizer, test, list(lab))
    rec = j["correct"] >= 0.5
    hit = j["label"] == lab
    truth = np.array([bool(m.labels.correct) for m in test])
    for l in labels:
        c, i = (lab == l) & truth, (lab == l) & ~truth
        real_per[l] = _entry(rec[c] if c.any() else None, ~rec[i] if i.any() else None, hit[lab == l],
                             hit[c] if c.any() else None, hit[i] if i.any() else None)
        # opposite: asked for correct, given the incorrect recordings (and vice versa)
        opp_per[l] = _entry(rec[i] if i.any() else None, ~rec[c] if c.any() else None, None,
                            hit[i] if i.any() else None, hit[c] if c.any() else None)
    # frozen mean pose of the exercise, the same motion for both requests
    frozen, flab = [], []
    for l in labels:
        ms = [m for m in test if m.labels.label == l]
        if ms:
            pose = np.mean([m.joints.mean(axis=0) for m in ms], axis=0)
            frozen.append(np.repeat(pose[None], _frames_of(real_test, l, s), axis=0).astype(np.float32))
            flab.append(l)
    if frozen:
        fj = judge(recognizer, frozen, flab)
        for k, l in enumerate(flab):
            ok, h = np.array([fj["correct"][k] >= 0.5]), np.array([fj["label"][k] == l])
            frozen_per[l] = _entry(ok, ~ok, h, h, h)
    # another exercise when asked for an incorrect execution: the exercise's real correct recordings for
    # the correct requests, the recordings of the next exercise of the same dataset in ``real_test`` (any
    # of them, so one evaluated exercise has the row too) for the incorrect ones, judged by the requested
    # exercise's head; control alone can pass it, the exercise columns and strict cannot
    by_label: dict[str, list[Motion]] = {}
    for m in real_test:
        if m.labels.label:
            by_label.setdefault(m.labels.label, []).append(m)
    for l in labels:
        ds = l.split(":", 1)[0]
        others = sorted(o for o in by_label if o != l and o.split(":", 1)[0] == ds)
        c = (lab == l) & truth
        if not others or not c.any():
            continue
        wrong = by_label[next((o for o in others if o > l), others[0])]
        wj = judge(recognizer, wrong, [l] * len(wrong))
        other_per[l] = _entry(rec[c], wj["correct"] < 0.5, None, hit[c], wj["label"] == l)
    # the same recordings in the form of a generated motion: each played back to back with its subject's
    # other repetitions of the exercise and correctness (itself when it has none) to the generated length
    rng = np.random.default_rng(s.seed)
    common = [m.retarget(COMMON).resample(DEFAULT_FPS) for m in test]
    reps: list[np.ndarray] = [np.zeros(0)] * len(test)
    for l in labels:
        idx = [k for k, m in enumerate(test) if m.labels.label == l]
        n = _frames_of(real_test, l, s)
        for k, got in zip(idx, chain_repetitions([common[k] for k in idx], n, rng)):
            while len(got) < n:
                got = chain([got, common[k].joints], blend=SEAM_BLEND)
            reps[k] = got[:n]
    rj = judge(recognizer, reps, list(lab))
    rrec = rj["correct"] >= 0.5
    rhit = rj["label"] == lab
    for l in labels:
        c, i = (lab == l) & truth, (lab == l) & ~truth
        rep_per[l] = _entry(rrec[c] if c.any() else None, ~rrec[i] if i.any() else None, rhit[lab == l],
                            rhit[c] if c.any() else None, rhit[i] if i.any() else None)
    return real_per, rep_per, opp_per, frozen_per, other_per


def correctness_control(generators: dict[str, Generator], recognizer: Any, real_test: Sequence[Motion],
                        real_train: Sequence[Motion] | None = None, settings: CorrectnessSettings | None = None,
                        progress: ProgressFn | None = None) -> dict[str, Any]:
    """Requested vs recognised correctness per exercise (see the module docstring).  Returns
    ``{"labels": [...], "settings": {...}, "rows": {"real": ..., "<model>": ..., "frozen_pose": ...,
    "opposite_real": ..., "other_exercise": ...}}``; each row: ``per_label`` {label: entry}, ``mean``, ``min``,
    ``at_target`` and the strict / recognised-exercise summaries."""
    s = settings or CorrectnessSettings()
    progress = progress or _noop
    _check_num(s.num)
    labels = correctness_labels(recognizer, list(real_train or []) or list(real_test), s.datasets, s.labels)
    if not labels:
        raise UserError("no exercise with correct and incorrect executions to evaluate correctness control on")
    test = [m for m in real_test if m.labels.label in labels and m.labels.correct is not None]
    rows: dict[str, dict[str, Any]] = {}

    # real test recordings, and the degenerate rows built from them
    progress(0.0, "correctness: real test recordings")
    real_per, rep_per, opp_per, frozen_per, other_per = _real_rows(recognizer, test, real_test, labels, s)
    rows["real"] = _summary(real_per, s.target)
    rows["real_repeated"] = _summary(rep_per, s.target)

    n_gen = max(1, len(generators))
    for gi, (name, g) in enumerate(generators.items()):
        glabels = set(g.labels)
        per: dict[str, dict[str, Any]] = {}
        for li, l in enumerate(labels):
            progress((gi + li / len(labels)) / n_gen * 0.95 + 0.02, f"correctness: {name} {l}")
            if glabels and l not in glabels:
                continue
            if not g.has_correctness(l):
                continue
            frames = _frames_of(real_test, l, s)
            got: dict[bool, list[Motion]] = {}
            try:
                for c in (True, False):
                    got[c] = _generate(g, l, s.num, frames, s.seed + 100 * li + (0 if c else 50), s,
                                       correct=c)
            except UserError:
                continue                     # e.g. the model has no incorrect class of this exercise
            ms = got[True] + got[False]
            j = judge(recognizer, ms, [l] * len(ms))
            rec = j["correct"] >= 0.5
            n = len(got[True])
            hit = j["label"] == l
            per[l] = _entry(rec[:n], ~rec[n:], hit, hit[:n], hit[n:])
        rows[name] = _summary(per, s.target)
    rows["frozen_pose"] = _summary(frozen_per, s.target)
    rows["opposite_real"] = _summary(opp_per, s.target)
    rows["other_exercise"] = _summary(other_per, s.target)
    progress(1.0, "correctness: done")
    return {"labels": labels, "target": s.target,
            "settings": {"num": s.num, "frames": s.frames, "steps": s.steps, "guidance": s.guidance,
                         "seed": s.seed, "judge": "recogniser correctness head of the requested exercise"},
            "rows": rows}


def score_control(generators: dict[str, Generator], recognizer: Any, real_test: Sequence[Motion],
                  settings: CorrectnessSettings | None = None, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Requested vs predicted clinical score (KIMORE) for generators with a score condition (``"score"``
    in ``tasks``); the real row = predicted vs clinical score of the real test patients; only the
    exercises in ``settings.score_labels`` when given.  Returns
    ``{"available": bool, "labels": [...], "rows": {"real": {...}, "<model>": {...}}}``; each row has
    ``mae`` (points), ``pearson_r`` and ``per_label`` {label: {"mae", "pearson_r", "n"}}."""
    s = settings or CorrectnessSettings()
    progress = progress or _noop
    heads = set(getattr(recognizer, "score_labels", ()) or recognizer.labels)
    test = [m for m in real_test if m.labels.score is not None and m.labels.dataset in s.score_datasets
            and m.labels.label in heads and m.labels.label in set(recognizer.labels)
            and (s.score_labels is None or m.labels.label in s.score_labels)]
    labels = sorted({m.labels.label for m in test})
    out: dict[str, Any] = {"labels": labels, "rows": {}}
    if test:
        j = judge(recognizer, test, [m.labels.label for m in test])
        out["rows"]["real"] = _score_row(np.array([m.labels.score for m in test], float),
                                         np.clip(j["score"], 0, 100), [m.labels.label for m in test])
    scored = {n: g for n, g in generators.items() if "score" in g.tasks}
    out["available"] = bool(scored)
    if not scored:
        out["reason"] = "no generator takes a clinical-score condition"
    for gi, (name, g) in enumerate(scored.items()):
        req, pred, labs = [], [], []
        for li, l in enumerate(labels):
            progress((gi + li / max(1, len(labels))) / len(scored), f"score control: {name} {l}")
            frames = _frames_of(real_test, l, s)
            for ti, target in enumerate(s.score_targets):
                ms = _generate(g, l, s.num, frames, s.seed + 1000 + 10 * li + ti, s, score=float(target))
                p = judge(recognizer, ms, [l] * len(ms))["score"]
                req += [float(target)] * len(ms)
                pred += list(np.clip(p, 0, 100))
                labs += [l] * len(ms)
        if req:
            out["rows"][name] = _score_row(np.array(req), np.array(pred), labs)
    return out


def _score_row(want: np.ndarray, got: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    def stats(w: np.ndarray, g: np.ndarray) -> dict[str, Any]:
        r = float(np.corrcoef(w, g)[0, 1]) if len(w) > 2 and w.std() > 0 and g.std() > 0 else None
        return {"mae": _r(float(np.abs(g - w).mean())), "pearson_r": _r(r) if r is not None else None,
                "n": int(len(w))}

    lab = np.array(labels, dtype=object)
    row = stats(want, got)
    row["per_label"] = {l: stats(want[lab == l], got[lab == l]) for l in sorted(set(labels))}
    return row


# ------------------------------------------------------------------------------------------------
def summary_keys(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """row -> {"correctness_control": mean, "correctness_control_min": min, "correctness_strict": strict
    mean} (for the main table)."""
    out = {}
    for row, d in result.get("rows", {}).items():
        out[row] = {"correctness_control": d.get("mean"), "correctness_control_min": d.get("min"),
                    "correctness_strict": d.get("strict_mean")}
    return out


def format_score_control(result: dict[str, Any]) -> str:
    """One line per row of :func:`score_control`: availability (or why not), then MAE and Pearson r."""
    def stats(row: dict[str, Any]) -> str:
        r = row.get("pearson_r")
        rs = "-" if r is None else f"{r:.2f}"
        return f"MAE {row.get('mae', float('nan')):.1f} points, r {rs}, n {row.get('n', 0)}"

    labels = ", ".join(result.get("labels", [])) or "none"
    state = "available" if result.get("available") else f"not available ({result.get('reason', 'no generator')})"
    head = f"Score control (requested vs predicted clinical score; exercises: {labels}): {state}"
    lines = [head]
    for name, row in result.get("rows", {}).items():
        what = "predicted vs clinical score of the held-out patients" if name == "real" else "requested vs predicted"
        lines.append(f"  {name}: {stats(row)} ({what})")
    if "real" not in result.get("rows", {}):
        lines.append("  real: no scored test recording")
    return "\n".join(lines)


def format_correctness(result: dict[str, Any]) -> str:
    """A readable table: exercises x rows, each cell ``control (correct→correct / incorrect→incorrect)``."""
    rows = result.get("rows", {})
    cols = list(rows)
    head = ["exercise"] + cols

    def cell(e: dict[str, Any] | None) -> str:
        if not e or e.get("control") is None:
            return "-"
        a, b = e.get("correct_as_correct"), e.get("incorrect_as_incorrect")
        f = lambda v: "-" if v is None else f"{v:.2f}"
        return f"{e['control']:.2f} ({f(a)}/{f(b)})"

    lines = [[l] + [cell(rows[c]["per_label"].get(l)) for c in cols] for l in result.get("labels", [])]
    lines.append(["mean"] + ["-" if rows[c].get("mean") is None else f"{rows[c]['mean']:.3f}" for c in cols])
    lines.append(["min"] + ["-" if rows[c].get("min") is None else f"{rows[c]['min']:.3f}" for c in cols])
    target = result.get("target", TARGET)
    lines.append([f"at ≥ {target:.2f}"] + [f"{rows[c].get('at_target', 0)}/{rows[c].get('labels', 0)}" for c in cols])
    num = lambda v: "-" if v is None else f"{v:.3f}"
    lines.append(["strict mean / min"] + [f"{num(rows[c].get('strict_mean'))} / {num(rows[c].get('strict_min'))}"
                                          for c in cols])
    lines.append([f"strict at ≥ {target:.2f}"] + [f"{rows[c].get('strict_at_target', 0)}/{rows[c].get('labels', 0)}"
                                                 for c in cols])
    lines.append(["recognised as the exercise (c/i)"]
                 + [f"{num(rows[c].get('exercise_correct_mean'))}/{num(rows[c].get('exercise_incorrect_mean'))}"
                    for c in cols])
    widths = [max(len(r[i]) for r in lines + [head]) for i in range(len(head))]
    txt = ["Correctness control: requested vs recognised correctness, control (correct→correct / "
           "incorrect→incorrect); strict: recognised as the requested exercise and execution; recognised as the "
           "exercise: share of the correct (c) and incorrect (i) requests", "  ".join(h.ljust(w) for h, w in zip(head, widths))]
    txt += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in lines]
    return "\n".join(txt)
