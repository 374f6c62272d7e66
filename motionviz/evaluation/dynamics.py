"""Does a generated exercise move like the real one?  The dynamics section of ``evaluate``.

Posture metrics (FID, recognition accuracy) cannot see that a motion holds the right pose without
moving.  This section compares how the motions *move* (:mod:`motionviz.core.dynamics`) with real clips of the
same exercise and the same duration from the held-out (test) subjects:

* **Real clips** (``frames`` frames at 20 fps, default 120 = 6 s): UI-PRMD and IntelliRehabDS files hold
  one repetition each, so repetitions of the same subject / exercise / execution are chained
  (:func:`motionviz.core.repetitions.chain_repetitions`) and cut to ``frames``; a clip without enough
  partners repeats its own repetition.  Long recordings (KIMORE, ~25 s with ~5 repetitions) give up to
  ``max_windows`` evenly spaced windows of ``frames`` frames.
* **Rows**, per label:

  - ``real``: real vs real: the held-out clips are split into two disjoint halves by subject (by
    recording when there is one subject); half A is scored against half B.  The natural spread.
  - each generator: ``num`` exercise-conditioned samples of ``frames`` frames (default settings),
    scored against all held-out clips of the label.
  - degenerate rows, scored against all held-out clips: ``frozen`` (the label's mean training pose held
    still), ``copy_train`` (real clips of *training* subjects: it moves like real motion, so the dynamics
    metrics pass it; the memorisation / nearest-neighbour metric of the main table is the one that flags
    copying), ``half_amplitude`` (the held-out clips with every joint moved half-way to the pelvis,
    ``pelvis + 0.5 (joint - pelvis)``, and the pelvis trajectory scaled by 0.5 about its mean).

* **Numbers per label and row**: ``rom_ratio`` = median range of motion of the row's clips / median of
  the reference's (1 is best); ``speed_ratio`` the same for mean joint speed; ``repetitions`` (median
  count) and ``repetitions_within_1`` (fraction of the row's clips whose count is within +-1 of the
  reference's median count); ``period`` (median seconds between repetitions) and ``period_ratio``;
  ``pelvis_travel`` (median p95-p5 pelvis height span, m) and ``pelvis_travel_ratio`` (only where the
  reference's pelvis travels at least :data:`MIN_PELVIS_TRAVEL`: squats, lunges, sit-to-stand).
* **Summary per row**: medians over labels of the ratios, ``rom_in_band`` = how many of the
  :data:`FOCUS_LABELS` present have a ROM ratio in :data:`BAND` (``rom_in_band_all`` over all labels),
  and ``repetitions_within_1`` pooled over every clip of the row.

Shapes: clips are (frames, J, 3) float arrays on the common skeleton, metres, Y-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..core.dynamics import dynamics
from ..core.errors import UserError
from ..core.motion import DEFAULT_FPS, Motion
from ..core.repetitions import chain, chain_repetitions
from ..core.skeleton import COMMON
from ..generators.registry import Request

__all__ = ["DynamicsSettings", "dynamics_evaluation", "evaluate_dynamics", "select_labels", "summary_keys",
           "real_clips", "split_halves", "half_amplitude", "frozen_clip", "format_dynamics", "summary_table",
           "ROW_TITLES", "FOCUS_LABELS", "BAND", "DEGENERATE_ROWS", "SUMMARY_KEYS", "MIN_PELVIS_TRAVEL"]

ProgressFn = Callable[[float, str], None]

#: the exercises issue #12 measured (moving exercises of UI-PRMD and KIMORE)
FOCUS_LABELS = ("ui-prmd:m01", "ui-prmd:m02", "ui-prmd:m05", "ui-prmd:m07", "ui-prmd:m09",
                "kimore:ex1", "kimore:ex2", "kimore:ex3", "kimore:ex4", "kimore:ex5")
BAND = (0.7, 1.3)                 # a ROM ratio inside counts as "moves like the real exercise"
DEGENERATE_ROWS = ("frozen", "copy_train", "half_amplitude")
MIN_PELVIS_TRAVEL = 0.05          # metres: below, the exercise does not move the pelvis up and down
MAX_REQUEST = 16                  # samples per generator call (Request limit)

#: summary keys -> (title, unit, direction: "≈1" best near 1, "↑" higher is better, "" descriptive)
SUMMARY_KEYS: dict[str, tuple[str, str, str]] = {
    "rom_ratio": ("range of motion / real (median over exercises)", "ratio", "≈1"),
    "rom_in_band": (f"exercises of the 10 with ROM ratio in {BAND[0]}–{BAND[1]}", "count", "↑"),
    "rom_in_band_all": (f"all exercises with ROM ratio in {BAND[0]}–{BAND[1]}", "count", "↑"),
    "speed_ratio": ("mean joint speed / real (median)", "ratio", "≈1"),
    "repetitions_within_1": ("repetition count within ±1 of real (fraction of clips)", "fraction", "↑"),
    "period_ratio": ("repetition period / real (median)", "ratio", "≈1"),
    "pelvis_travel_ratio": ("pelvis vertical travel / real (median, exercises that move the pelvis)",
                            "ratio", "≈1"),
    "rom": ("range of motion (median clip)", "m", ""),
    "speed": ("mean joint speed (median clip)", "m/s", ""),
    "repetitions": ("repetitions per clip (median)", "count", ""),
    "period": ("seconds between repetitions (median)", "s", ""),
}


@dataclass
class DynamicsSettings:
    num: int = 8                    # generated samples per label and generator
    frames: int = 120               # clip length (20 fps)
    steps: int | None = None        # sampler steps (None = the Request default)
    guidance: float | None = None   # None = the Request default
    seed: int = 0
    max_windows: int = 4            # windows per long real recording


# ------------------------------------------------------------------------------------------------
# real clips and degenerate rows
# ------------------------------------------------------------------------------------------------
def _common(m: Motion) -> Motion:
    if m.skeleton.name != COMMON.name:
        m = m.retarget(COMMON)
    if abs(m.fps - DEFAULT_FPS) > 1e-6:
        m = m.resample(DEFAULT_FPS)
    return m


def real_clips(motions: Sequence[Motion], frames: int, rng: np.random.Generator,
               max_windows: int = 4) -> list[np.ndarray]:
    """Real clips of exactly ``frames`` frames (see the module docstring), each (frames, J, 3) float32.
    ``motions`` are of one label; they are put on the common skeleton at 20 fps first."""
    ms = [_common(m) for m in motions if m.num_frames >= 2]
    if not ms:
        return []
    out: list[np.ndarray] = []
    short = [m for m in ms if m.num_frames < frames]
    for m in ms:
        if m.num_frames >= frames:
            n = max(1, min(max_windows, m.num_frames // frames))
            for s in np.linspace(0, m.num_frames - frames, n).round().astype(int):
                out.append(np.asarray(m.joints[s:s + frames], dtype=np.float32))
    if short:
        # chain_repetitions counts raw frames; the cross-faded seams make the result a little shorter
        for c, m in zip(chain_repetitions(short, frames + frames // 4, rng), short):
            while len(c) < frames:
                c = chain([c, m.joints])                 # no partner left: the same repetition again
            out.append(np.asarray(c[:frames], dtype=np.float32))
    return out


def split_halves(motions: Sequence[Motion]) -> tuple[list[Motion], list[Motion]]:
    """Two disjoint halves of one label's real motions: by subject (sorted, alternating) when there are
    at least two subjects, else by recording (sorted by source, alternating)."""
    subjects = sorted({m.labels.subject for m in motions})
    if len(subjects) >= 2:
        a = set(subjects[0::2])
        return [m for m in motions if m.labels.subject in a], [m for m in motions if m.labels.subject not in a]
    order = sorted(range(len(motions)), key=lambda i: (motions[i].labels.source, i))
    return [motions[i] for i in order[0::2]], [motions[i] for i in order[1::2]]


def half_amplitude(joints: np.ndarray) -> np.ndarray:
    """(T, J, 3) -> (T, J, 3): every joint half-way to the pelvis (``pelvis + 0.5 (joint - pelvis)``)
    and the pelvis trajectory scaled by 0.5 about its mean: the same motion at half amplitude."""
    j = np.asarray(joints, dtype=np.float32)
    root = COMMON.root
    pelvis = j[:, root:root + 1]                                          # (T, 1, 3)
    new_pelvis = pelvis.mean(0, keepdims=True) + 0.5 * (pelvis - pelvis.mean(0, keepdims=True))
    return new_pelvis + 0.5 * (j - pelvis)


def frozen_clip(motions: Sequence[Motion], frames: int) -> np.ndarray:
    """(frames, J, 3): the mean pose of ``motions`` (pelvis-relative pose and pelvis position averaged
    over all their frames), held still."""
    root = COMMON.root
    js = np.concatenate([_common(m).joints for m in motions])             # (sum T, J, 3)
    pelvis = np.nanmean(js[:, root:root + 1], axis=0)                     # (1, 3)
    pose = np.nanmean(js - js[:, root:root + 1], axis=0) + pelvis         # (J, 3)
    return np.repeat(pose[None], frames, axis=0).astype(np.float32)


# ------------------------------------------------------------------------------------------------
def _dyn(clips: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Per-clip dynamics as arrays (NaN where a clip has no period)."""
    ds = [dynamics(c, DEFAULT_FPS) for c in clips]
    return {k: np.array([np.nan if d[k] is None else float(d[k]) for d in ds], dtype=np.float64)
            for k in ("rom", "speed", "repetitions", "period", "pelvis_travel")}


def _med(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else None


def _ratio(a: float | None, b: float | None, floor: float = 1e-9) -> float | None:
    if a is None or b is None or b <= floor:
        return None
    return a / b


def _row_stats(row: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> dict[str, Any]:
    ref_reps = _med(ref["repetitions"])
    out: dict[str, Any] = {"clips": int(len(row["rom"]))}
    for k in ("rom", "speed", "repetitions", "period", "pelvis_travel"):
        out[k] = _med(row[k])
    out["rom_ratio"] = _ratio(out["rom"], _med(ref["rom"]))
    out["speed_ratio"] = _ratio(out["speed"], _med(ref["speed"]))
    out["period_ratio"] = _ratio(out["period"], _med(ref["period"]))
    ref_pel = _med(ref["pelvis_travel"])
    out["pelvis_travel_ratio"] = (_ratio(out["pelvis_travel"], ref_pel)
                                  if ref_pel is not None and ref_pel >= MIN_PELVIS_TRAVEL else None)
    hits = np.abs(row["repetitions"] - ref_reps) <= 1 if ref_reps is not None else np.zeros(0, bool)
    out["repetitions_within_1"] = float(hits.mean()) if hits.size else None
    out["_hits"] = (int(hits.sum()), int(hits.size))
    return out


def _generate(gen: Any, label: str, num: int, s: DynamicsSettings, seed: int) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    k = 0
    while len(out) < num:
        n = min(MAX_REQUEST, num - len(out))
        kw: dict[str, Any] = dict(model=gen.name, label=label, num=n, frames=s.frames, seed=seed + 7919 * k)
        if s.steps is not None:
            kw["steps"] = s.steps
        if s.guidance is not None:
            kw["guidance"] = s.guidance
        ms = gen.generate(Request(**kw))
        for m in ms:
            j = _common(m).joints
            if len(j) != s.frames:                 # a model that returns another length: cut or hold the end
                j = (j[:s.frames] if len(j) > s.frames
                     else np.concatenate([j, np.repeat(j[-1:], s.frames - len(j), axis=0)]))
            out.append(np.asarray(j, dtype=np.float32))
        k += 1
    return out[:num]


def _degenerate_rows(rows: dict[str, Any], train: list[Motion], clips: list[np.ndarray], ref: dict[str, np.ndarray],
                     rng: np.random.Generator, s: DynamicsSettings) -> None:
    """Add the degenerate rows of one label to ``rows``: ``frozen`` and ``copy_train`` (when it has
    training recordings) and ``half_amplitude`` of the held-out (F, J, 3) ``clips``; ``ref``: the
    held-out clips' dynamics."""
    if train:
        fz = _dyn([frozen_clip(train, s.frames)])
        rows["frozen"] = _row_stats({k: np.repeat(v, s.num) for k, v in fz.items()}, ref)
        tc = real_clips(train, s.frames, rng, s.max_windows)
        if tc:
            pick = rng.choice(len(tc), min(s.num, len(tc)), replace=False)
            rows["copy_train"] = _row_stats(_dyn([tc[i] for i in pick]), ref)
    rows["half_amplitude"] = _row_stats(_dyn([half_amplitude(c) for c in clips]), ref)


def _label_section(li: int, lab: str, n_labels: int, generators: dict[str, Any], real_test: Sequence[Motion],
                   real_train: Sequence[Motion], s: DynamicsSettings, progress: ProgressFn) -> dict[str, Any] | None:
    """One label: the real row (held-out halves A vs B), every generator that knows the label and the
    degenerate rows, each against all held-out clips -> ``{"reference": {...}, "rows": {...}}``; None
    when a half yields no clip."""
    rng = np.random.default_rng([s.seed, li])
    test = [m for m in real_test if m.labels.label == lab]
    a, b = split_halves(test)
    clips_a = real_clips(a, s.frames, rng, s.max_windows)
    clips_b = real_clips(b, s.frames, rng, s.max_windows)
    if not clips_a or not clips_b:
        return None
    dyn_a, dyn_b = _dyn(clips_a), _dyn(clips_b)
    ref = {k: np.concatenate([dyn_a[k], dyn_b[k]]) for k in dyn_a}        # every held-out clip
    rows: dict[str, Any] = {"real": _row_stats(dyn_a, dyn_b)}
    for gi, (name, g) in enumerate(generators.items()):
        gl = g.labels
        if gl and lab not in set(gl):
            continue
        progress((li + (gi + 1) / (len(generators) + 2)) / max(1, n_labels), f"dynamics: {name} {lab}")
        rows[name] = _row_stats(_dyn(_generate(g, lab, s.num, s, s.seed + 101 * li)), ref)
    train = [m for m in real_train if m.labels.label == lab]
    _degenerate_rows(rows, train, clips_a + clips_b, ref, rng, s)
    return {"reference": {"clips": len(ref["rom"]), "clips_a": len(clips_a), "clips_b": len(clips_b),
                          **{k: _med(v) for k, v in ref.items()}},
            "rows": rows}


def _median_over(have: dict[str, dict[str, Any]], key: str, only: Sequence[str] | None = None) -> float | None:
    """Median of ``key`` over the labels' rows in ``have`` (restricted to ``only``), None without values."""
    v = [r[key] for l, r in have.items() if r.get(key) is not None and (only is None or l in only)]
    return float(np.median(v)) if v else None


def _in_band(have: dict[str, dict[str, Any]], only: Sequence[str] | None) -> int:
    """How many labels' rows (of ``only``; None = all) have a range-of-motion ratio within :data:`BAND`."""
    return sum(1 for l, r in have.items() if (only is None or l in only) and r["rom_ratio"] is not None
               and BAND[0] <= r["rom_ratio"] <= BAND[1])


def _row_summary(have: dict[str, dict[str, Any]], focus: list[str]) -> dict[str, Any]:
    """One row's summary over the labels that have it (``have``: label -> that row's stats)."""
    def med(key: str, only: Sequence[str] | None = None) -> float | None:
        return _median_over(have, key, only)

    hits = sum(r["_hits"][0] for r in have.values())
    total = sum(r["_hits"][1] for r in have.values())
    return {
        "rom_ratio": med("rom_ratio"), "rom_in_band": _in_band(have, focus), "rom_in_band_all": _in_band(have, None),
        "speed_ratio": med("speed_ratio"), "repetitions_within_1": hits / total if total else None,
        "period_ratio": med("period_ratio"), "pelvis_travel_ratio": med("pelvis_travel_ratio"),
        "rom_ratio_focus": med("rom_ratio", focus), "speed_ratio_focus": med("speed_ratio", focus),
        "rom": med("rom"), "speed": med("speed"), "repetitions": med("repetitions"), "period": med("period"),
        "labels": len(have), "focus_labels": sum(1 for l in have if l in focus),
    }


def dynamics_evaluation(generators: dict[str, Any], real_test: Sequence[Motion], real_train: Sequence[Motion],
                        labels: Sequence[str], settings: DynamicsSettings | None = None,
                        progress: ProgressFn | None = None) -> dict[str, Any]:
    """The dynamics section (module docstring) for ``labels``.  Returns a JSON-safe dict:
    ``{"rows": {row: summary}, "labels": {label: {"reference": {...}, "rows": {row: {...}}}},
    "focus_labels": [...], "settings": {...}}`` with rows ``real``, each generator, ``frozen``,
    ``copy_train``, ``half_amplitude`` (a degenerate row is absent for a label without the data it needs).
    Labels with fewer than 2 held-out recordings are left out."""
    s = settings or DynamicsSettings()
    progress = progress or (lambda f, t: None)
    if s.num < 1 or s.frames < 20:
        raise UserError("the dynamics section needs at least 1 sample per label and 20 frames")
    row_names = ["real", *generators, *DEGENERATE_ROWS]
    per_label: dict[str, Any] = {}
    labs = [l for l in labels if sum(m.labels.label == l for m in real_test) >= 2]
    for li, lab in enumerate(labs):
        section = _label_section(li, lab, len(labs), generators, real_test, real_train, s, progress)
        if section is None:
            continue
        per_label[lab] = section
        progress((li + 1) / max(1, len(labs)), f"dynamics: {lab}")
    if not per_label:
        raise UserError("no label has real held-out clips for the dynamics section")

    focus = [l for l in FOCUS_LABELS if l in per_label]
    summary: dict[str, dict[str, Any]] = {}
    for row in row_names:
        have = {l: d["rows"][row] for l, d in per_label.items() if row in d["rows"]}
        if have:
            summary[row] = _row_summary(have, focus)
    for d in per_label.values():
        for r in d["rows"].values():
            r.pop("_hits", None)
    progress(1.0, "dynamics: done")
    return _json_safe({"rows": summary, "labels": per_label, "focus_labels": focus,
                       "settings": {"num": s.num, "frames": s.frames, "fps": DEFAULT_FPS, "steps": s.steps,
                                    "guidance": s.guidance, "seed": s.seed, "band": list(BAND),
                                    "max_windows": s.max_windows}})


def select_labels(generators: dict[str, Any], real_test: Sequence[Motion],
                  datasets: Sequence[str] | None = None, labels: Sequence[str] | None = None) -> list[str]:
    """Labels of the held-out split (in ``datasets``; None = all) with at least 2 recordings, restricted to
    ``labels`` when given (an unknown one is a :class:`UserError`) and to those every generator knows."""
    counts: dict[str, int] = {}
    for m in real_test:
        if datasets is None or m.labels.dataset in datasets:
            counts[m.labels.label] = counts.get(m.labels.label, 0) + 1
    out = sorted(l for l, n in counts.items() if n >= 2)
    if labels:
        unknown = sorted(set(labels) - set(out))
        if unknown:
            raise UserError(f"labels without 2 real held-out recordings: {', '.join(unknown)}")
        out = [l for l in out if l in set(labels)]
    for g in generators.values():
        gl = g.labels
        if gl:
            out = [l for l in out if l in set(gl)]
    if not out:
        raise UserError("no label is shared by the held-out split and the generators")
    return out


def evaluate_dynamics(generators: dict[str, Any], real_test: Sequence[Motion], real_train: Sequence[Motion],
                      datasets: Sequence[str] | None = None, labels: Sequence[str] | None = None,
                      settings: DynamicsSettings | None = None, progress: ProgressFn | None = None) -> dict[str, Any]:
    """:func:`dynamics_evaluation` on :func:`select_labels` (what ``python -m motionviz evaluate`` runs)."""
    labs = select_labels(generators, real_test, datasets, labels)
    return dynamics_evaluation(generators, real_test, real_train, labs, settings, progress)


def summary_keys(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """row -> the headline dynamics numbers (``rom_ratio``, ``rom_in_band``, ``speed_ratio``,
    ``repetitions_within_1``), to sit in the main evaluation table beside the other metrics."""
    keys = ("rom_ratio", "rom_in_band", "speed_ratio", "repetitions_within_1")
    return {row: {k: d.get(k) for k in keys} for row, d in section.get("rows", {}).items()}


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        f = float(x)
        return float(f"{f:.5g}") if math.isfinite(f) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


# ------------------------------------------------------------------------------------------------
# tables
# ------------------------------------------------------------------------------------------------
#: readable column titles of the rows (models keep their names)
ROW_TITLES = {"real": "real (half vs half)", "frozen": "frozen mean pose", "copy_train": "training clip copied",
              "half_amplitude": "real at half amplitude"}


def summary_table(section: dict[str, Any], keys: Sequence[str] | None = None,
                  titles: bool = False) -> tuple[list[str], list[list[Any]]]:
    """(headers, rows): one row per metric (title, unit, best), one column per evaluated row (real first;
    ``titles``: readable column names, :data:`ROW_TITLES`)."""
    rows_d = section["rows"]
    cols = list(rows_d)
    keys = list(keys or ("rom_ratio", "rom_in_band", "speed_ratio", "repetitions_within_1", "period_ratio",
                         "pelvis_travel_ratio", "rom", "speed", "repetitions", "period"))
    headers = ["metric", "unit", "best"] + [ROW_TITLES.get(c, c) if titles else c for c in cols]
    out = []
    nf = len(section.get("focus_labels", []))
    for k in keys:
        title, unit, best = SUMMARY_KEYS[k]
        if k == "rom_in_band":
            title = f"exercises of the {nf} focus ones with ROM ratio in {BAND[0]}–{BAND[1]}"
        cells: list[Any] = [title, unit, best]
        for c in cols:
            v = rows_d[c].get(k)
            cells.append("–" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v)))
        out.append(cells)
    return headers, out


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def format_dynamics(section: dict[str, Any]) -> str:
    """Readable text: the summary table, then ROM ratio / speed ratio / repetitions per label."""
    headers, rows = summary_table(section)
    w = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    lines = ["dynamics (real = half vs half of the held-out clips; other rows vs all held-out clips)",
             "  ".join(str(h).ljust(x) for h, x in zip(headers, w))]
    lines += ["  ".join(str(c).ljust(x) for c, x in zip(r, w)) for r in rows]
    cols = list(section["rows"])
    head = ["label (real reps)"] + [f"{c} rom/speed/reps" for c in cols]
    body = []
    for lab, d in section["labels"].items():
        ref = d["reference"]
        reps_ref = "–" if ref["repetitions"] is None else f"{ref['repetitions']:g}"
        cells = [f"{lab} ({reps_ref})"]
        for c in cols:
            r = d["rows"].get(c)
            if r is None:
                cells.append("–")
                continue
            reps = "–" if r["repetitions"] is None else f"{r['repetitions']:g}"
            cells.append(f"{_fmt(r['rom_ratio'])}/{_fmt(r['speed_ratio'])}/{reps}")
        body.append(cells)
    w = [max(len(r[i]) for r in body + [head]) for i in range(len(head))]
    lines += ["", "  ".join(h.ljust(x) for h, x in zip(head, w))]
    lines += ["  ".join(c.ljust(x) for c, x in zip(r, w)) for r in body]
    return "\n".join(lines)
