"""Evaluation of the inpainter (python -m motionviz eval-inpaint): held-out sequences under corruption
conditions, the AE-GAN against the baselines, KERAAL video tracks against Kinect, and the benchmark
section."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import data
from ..core.errors import UserError
from ..core.representation import _resample
from ..core.skeleton import BODY_PARTS, COMMON
from ..data import keraal_exercise
from ..data.keraal import EXERCISES
from ..generators import inpaint as inpaint_mod
from ..generators.inpaint import DEFAULT_PRESET, ProgressFn, baseline, corrupt, hold_last_observation, inpaint, preset
from ..models.aegan import AEGAN, Config
from ..models.aegan import AEGAN as _AEGAN


# ==============================================================================================
# Evaluation on held-out motions (``python -m motionviz eval-inpaint``)
# ==============================================================================================
def conditions(rates: tuple[float, ...] = (0.1, 0.3, 0.5), frame_rate: float = 0.3,
               noise: float = 0.03, limb: str | None = "left_arm") -> dict[str, dict[str, Any]]:
    """Corruptions of the evaluation: ``joints<NN>`` (occlusion-like runs of missing joints, 5-30
    frames each, about NN % of the joint positions), ``frames<NN>`` (whole frames missing in runs of
    1-10 frames), ``noise<N>cm`` (Gaussian noise on every coordinate, nothing missing) and
    ``hidden_<limb>`` (a limb never observed, e.g. out of the camera's view)."""
    out: dict[str, dict[str, float]] = {f"joints{round(100 * r)}": {"joint_rate": float(r)} for r in rates}
    out[f"frames{round(100 * frame_rate)}"] = {"frame_rate": float(frame_rate)}
    out[f"noise{round(100 * noise)}cm"] = {"noise": float(noise)}
    if limb:
        out[f"hidden_{limb}"] = {"hide": tuple(COMMON.indices(BODY_PARTS[limb]))}
    return out


EVAL_DATASETS = ("ui-prmd", "kimore", "irds")


def eval_sequences(n: int, max_frames: int = 160, seed: int = 0, root: str | Path | None = None,
                   min_frames: int = 48, datasets: tuple[str, ...] = EVAL_DATASETS,
                   split: str = "test") -> list[tuple[str, np.ndarray]]:
    """``n`` held-out motions (test split of the corpus: held-out *subjects* UI-PRMD s09-s10, KIMORE
    test patients, IRDS 216; Bandai's split is by take of its one actor, so it is not in the default),
    taken round-robin over the datasets in a seeded order, each cropped to at most ``max_frames``
    frames at a seeded position (``split="val"``: the validation subjects, for choosing settings).
    -> [(name, joints (T, J, 3) metres)]."""
    ms = [m for m in data.load_corpus(split, list(datasets), root=root)
          if m.num_frames >= min_frames and np.isfinite(m.joints).all()]
    if not ms:
        raise UserError(f"no held-out {split} motions found")
    rng = np.random.default_rng(seed)
    by: dict[str, list[Any]] = {}
    for m in ms:
        by.setdefault(m.labels.dataset, []).append(m)
    queues = {k: [v[i] for i in rng.permutation(len(v))] for k, v in sorted(by.items())}
    out: list[tuple[str, np.ndarray]] = []
    while len(out) < n and any(queues.values()):
        for k in list(queues):
            if queues[k] and len(out) < n:
                m = queues[k].pop(0)
                T = m.num_frames
                s = int(rng.integers(0, T - max_frames + 1)) if T > max_frames else 0
                out.append((f"{m.labels.label}|{m.labels.subject}|{s}", m.joints[s:s + max_frames].copy()))
    return out


class _Acc:
    """Running sums for MPJPE / PCK over joint positions (all, and corrupted ones only)."""

    def __init__(self, thr: float) -> None:
        self.thr = thr
        self.sum = self.n = self.hit = 0.0
        self.sum_m = self.n_m = 0.0

    def add(self, pred: np.ndarray, true: np.ndarray, missing: np.ndarray) -> None:
        e = np.linalg.norm(pred.astype(np.float64) - true, axis=-1)  # (T, J)
        self.sum += float(e.sum())
        self.n += e.size
        self.hit += float((e <= self.thr).sum())
        self.sum_m += float(e[missing].sum())
        self.n_m += float(missing.sum())

    def result(self) -> dict[str, float | None]:
        return {"mpjpe": self.sum / max(self.n, 1), "pck": self.hit / max(self.n, 1),
                "mpjpe_missing": self.sum_m / self.n_m if self.n_m else None}


class _RunState:
    """Running totals of :func:`evaluate`: inpainting calls done (for progress), AE-GAN seconds and
    frames of the main preset."""

    def __init__(self) -> None:
        self.done = 0
        self.seconds = 0.0
        self.frames = 0


def _method_names(compare: str | None, other: dict[str, Any] | None) -> list[str]:
    """The evaluated methods, in report order."""
    names = ["input", "baseline", "aegan", "aegan_select", "aegan_avg", "aegan_raw"]
    if other:
        names += [f"aegan_{compare}", f"aegan_{compare}_avg"]
    return names


def _evaluate_condition(model: AEGAN, ci: int, cname: str, kw: dict[str, Any], seqs: list[tuple[str, np.ndarray]],
                        names: list[str], main: dict[str, Any], other: dict[str, Any] | None, compare: str | None,
                        *, seed: int, pck: float, shift: int, steps: int, state: _RunState, total: int,
                        progress: ProgressFn | None) -> dict[str, _Acc]:
    """Corrupt every (T, J, 3) sequence of ``seqs`` with condition ``kw`` (seeded by ``[seed, ci, si]``)
    and accumulate each method's errors against the clean sequence -> method -> accumulator."""
    acc = {k: _Acc(pck) for k in names}
    noisy = kw.get("noise", 0.0) > 0
    for si, (_, x) in enumerate(seqs):
        rng = np.random.default_rng([seed, ci, si])
        xc, m = corrupt(x, rng, **kw)
        missing = ~m
        acc["input"].add(hold_last_observation(xc, m), x, missing)
        acc["baseline"].add(baseline(xc, m, keep_observed=not noisy), x, missing)
        for which, st in [("main", main)] + ([("other", other)] if other else []):
            sub = None
            if progress is not None:
                base = state.done / total

                def sub(f: float, text: str, base: float = base) -> None:
                    progress(base + f / total, f"{cname}: sequence {si + 1}/{len(seqs)}")
            r = inpaint(model, xc, m, shift=shift, steps=steps, keep_observed=not noisy, progress=sub, **st)
            state.done += 1
            if which == "main":
                state.seconds += r.seconds
                state.frames += len(x)
                acc["aegan"].add(r.joints, x, missing)
                acc["aegan_select"].add(r.selected, x, missing)
                acc["aegan_avg"].add(r.averaged, x, missing)
                acc["aegan_raw"].add(r.raw, x, missing)
            else:
                acc[f"aegan_{compare}"].add(r.selected, x, missing)
                acc[f"aegan_{compare}_avg"].add(r.averaged, x, missing)
    return acc


def _condition_row(kw: dict[str, Any], n_sequences: int, acc: dict[str, _Acc]) -> dict[str, Any]:
    """One condition's report: its corruption settings and each method's MPJPE / PCK / missing-joint MPJPE."""
    row: dict[str, Any] = {"corruption": {k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()},
                           "sequences": n_sequences}
    for k, a in acc.items():
        res = a.result()
        row[f"mpjpe_{k}"] = res["mpjpe"]
        row[f"pck_{k}"] = res["pck"]
        row[f"mpjpe_missing_{k}"] = res["mpjpe_missing"]
    return row


def _headline(detail: dict[str, Any], conds: dict[str, dict[str, Any]], compare: str | None,
              other: dict[str, Any] | None, state: _RunState) -> dict[str, Any]:
    """Top-level numbers: those of the missing-joint condition closest to 30 %, and the AE-GAN's speed."""
    top_name = min((n for n in conds if n.startswith("joints")), key=lambda n: abs(conds[n]["joint_rate"] - 0.3))
    top = detail[top_name]
    return {
        "mpjpe_input": top["mpjpe_input"], "mpjpe_baseline": top["mpjpe_baseline"], "mpjpe_aegan": top["mpjpe_aegan"],
        "mpjpe_aegan_select": top["mpjpe_aegan_select"], "mpjpe_aegan_avg": top["mpjpe_aegan_avg"],
        "mpjpe_aegan_raw": top["mpjpe_aegan_raw"],
        **({f"mpjpe_aegan_{compare}": top[f"mpjpe_aegan_{compare}"],
            f"mpjpe_aegan_{compare}_avg": top[f"mpjpe_aegan_{compare}_avg"]} if other else {}),
        "pck_input": top["pck_input"], "pck_baseline": top["pck_baseline"], "pck_aegan": top["pck_aegan"],
        "seconds_per_300_frames": 300.0 * state.seconds / max(state.frames, 1),
        "top_condition": top_name, "top_rate": conds[top_name]["joint_rate"],
        "aegan_below_input": 1.0 - top["mpjpe_aegan"] / max(top["mpjpe_input"], 1e-12),
        "aegan_below_baseline": 1.0 - top["mpjpe_aegan"] / max(top["mpjpe_baseline"], 1e-12),
    }


def evaluate(model: AEGAN, sequences: int = 12, max_frames: int = 160, steps: int = 200, shift: int = 8,
             seed: int = 0, rates: tuple[float, ...] = (0.1, 0.3, 0.5), pck: float = 0.05, keraal: bool = True,
             root: str | Path | None = None, progress: ProgressFn | None = None,
             data: list[tuple[str, np.ndarray]] | None = None,
             datasets: tuple[str, ...] = EVAL_DATASETS, settings: str = DEFAULT_PRESET,
             compare: str | None = "thesis") -> dict[str, Any]:
    """Corrupt held-out motions and compare reconstructions against the clean motion.

    * ``input``: the corrupted motion as given; a missing joint is filled with its **last observed
      position** (its first observed one before it is ever seen): what a viewer that holds the
      last detection would show.
    * ``baseline``: per-joint linear interpolation over time + Savitzky-Golay smoothing (9 frames,
      order 2); observed joints are kept, except for the noise condition where everything is smoothed.
    * ``aegan``: :func:`inpaint` with preset ``settings`` (observed joints kept and generated stretches
      joined to them by :func:`blend_gaps`; the noise condition replaces every joint: denoising).
      ``aegan_select`` / ``aegan_avg``: the same search with per-frame choice / averaged windows;
      ``aegan_raw``: without :func:`blend_gaps` (the generator's positions as they are).
    * ``aegan_<compare>`` (default ``aegan_thesis``): the same with preset ``compare`` (per-frame
      choice; ``aegan_<compare>_avg`` averaged).

    MPJPE (metres) over every joint of every frame and over the corrupted joints only
    (``*_missing``); PCK = fraction of joints within ``pck`` metres.  Top-level keys report the
    missing-joint rate closest to 30 %.  ``seconds_per_300_frames``: AE-GAN wall time per 300 frames.
    """
    conds = conditions(tuple(rates))
    main = preset(settings)
    other = preset(compare) if compare else None
    seqs = data if data is not None else eval_sequences(sequences, max_frames, seed, root, datasets=tuple(datasets))
    per_seq = 2 if other else 1
    total = len(conds) * len(seqs) * per_seq + (3 if keraal else 0)
    state = _RunState()
    inpaint(model, seqs[0][1][:8], None, steps=1)  # warm-up (library loading) outside the timings
    detail: dict[str, Any] = {}
    names = _method_names(compare, other)
    for ci, (cname, kw) in enumerate(conds.items()):
        acc = _evaluate_condition(model, ci, cname, kw, seqs, names, main, other, compare, seed=seed, pck=pck,
                                  shift=shift, steps=steps, state=state, total=total, progress=progress)
        detail[cname] = _condition_row(kw, len(seqs), acc)
    out: dict[str, Any] = {
        **_headline(detail, conds, compare, other, state),

        "conditions": detail,
        "settings": {"preset": settings, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in main.items()},
                     "compare_preset": compare, "steps": steps, "shift": shift, "window": model.cfg.frames,
                     "sequences": len(seqs),
                     "max_frames": max_frames, "seed": seed, "pck_threshold_m": pck, "units": "metres",
                     "split": "test (held-out subjects)", "datasets": list(datasets) if data is None else "given",
                     "fps": 20,
                     "input_fill": "missing joint = its last observed position (first observed before it)",
                     "baseline": "linear interpolation over time + Savitzky-Golay (9 frames, order 2)"},
    }
    if keraal:
        def kp(f: float, text: str) -> None:
            if progress is not None:
                progress((state.done + 3 * f) / total, text)
        try:
            out["keraal"] = evaluate_keraal(model, steps=steps, shift=shift, root=root, progress=kp,
                                            settings=settings)
        except UserError as e:
            out["keraal"] = {"error": str(e)}
    if progress is not None:
        progress(1.0, "done")
    return out


def _fit_scale_shift_2d(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray]:
    ok = np.isfinite(src).all(-1) & np.isfinite(dst).all(-1)
    a, b = src[ok].astype(np.float64), dst[ok].astype(np.float64)
    if len(a) < 3:
        return 1.0, np.zeros(2)
    am, bm = a.mean(0), b.mean(0)
    s = float(((a - am) * (b - bm)).sum() / max(((a - am) ** 2).sum(), 1e-12))
    return s, bm - s * am


def _align_in_time(track: np.ndarray, ref: np.ndarray, max_lag: int) -> tuple[int, float, np.ndarray]:
    """Best lag L (track frame t + L <-> ref frame t... see below), scale and shift of a 2-D track onto
    the reference: for each lag in [-max_lag, max_lag] refit scale + shift and keep the lowest mean
    error.  Returns (lag, scale, shift); ``lag > 0`` means the track is late by ``lag`` frames."""
    best = (0, 1.0, np.zeros(2), np.inf)
    T = min(len(track), len(ref))
    for lag in range(-max_lag, max_lag + 1):
        a = track[max(0, lag):T + min(0, lag)]
        b = ref[max(0, -lag):T - max(0, lag)]
        n = min(len(a), len(b))
        a, b = a[:n], b[:n]
        s, t = _fit_scale_shift_2d(a.reshape(-1, 2), b.reshape(-1, 2))
        e = np.linalg.norm(s * a + t - b, axis=-1)
        err = float(np.nanmean(e))
        if err < best[3]:
            best = (lag, s, t, err)
    return best[0], best[1], best[2]


def evaluate_keraal(model: AEGAN, steps: int = 200, shift: int = 8, root: str | Path | None = None,
                    max_lag: int = 30, progress: ProgressFn | None = None,
                    settings: str = DEFAULT_PRESET) -> dict[str, Any]:
    """The KERAAL sample (one patient, exercises CTK / ELK / RTK): BlazePose, OpenPose and AlphaPose
    video tracks on the common skeleton vs the Kinect recording of the same trial, in the Kinect's
    frontal (x, y) plane (the tracks have no depth).  ``aegan_fill`` keeps the detected joints and
    fills the undetected ones; ``aegan_denoise`` replaces every joint.

    Time alignment: a lag in [-max_lag, max_lag] frames (30 fps) and a scale + 2-D shift are fitted
    per track by least squares (lowest mean joint error).  Then, at 20 fps, 2-D MPJPE (metres, x-y) of
    the raw track (missing joints: last observed position), of interpolation + Savitzky-Golay and of
    the AE-GAN's 2-D variant (denoising: all joints replaced) when the checkpoint has one.  The Kinect
    itself is a noisy reference (and its joint centres differ from the video models' keypoints), so
    these errors have a floor well above zero."""
    has2d = "d2" in model.nets
    out: dict[str, Any] = {"reference": "Kinect v2 (x, y) of the same trial", "units": "metres (2-D)",
                           "aegan_2d": has2d, "exercises": {}}
    sums: dict[str, dict[str, list[float]]] = {}
    for ei, ex_name in enumerate(EXERCISES):
        ex = keraal_exercise(ex_name, root)
        ref = ex.kinect.joints[..., :2].astype(np.float64)  # (T, J, 2) 30 fps
        rows: dict[str, Any] = {}
        for ti, (tname, track) in enumerate(ex.tracks.items()):
            tr = track.joints[..., :2].astype(np.float64)
            lag, s, t = _align_in_time(tr, ref, max_lag)
            T = min(len(tr), len(ref))
            a = tr[max(0, lag):T + min(0, lag)] * s + t
            b = ref[max(0, -lag):T - max(0, lag)]
            n = min(len(a), len(b))
            a, b = a[:n], b[:n]
            a20 = _resample(a.astype(np.float32), 30.0, 20.0)
            b20 = _resample(b.astype(np.float32), 30.0, 20.0)
            obs = np.isfinite(a20).all(-1)
            good = np.isfinite(b20).all(-1)
            row: dict[str, Any] = {"lag_frames_30fps": int(lag), "scale": round(float(s), 4),
                                   "frames_20fps": int(len(a20)), "missing_fraction": float(1 - obs.mean())}
            if not obs.any():
                rows[tname] = {**row, "error": "no detection"}
                continue
            preds = {"input": hold_last_observation(a20, obs),
                     "baseline": baseline(a20, obs, keep_observed=False)}
            if has2d:
                st = preset(settings)
                preds["aegan_fill"] = inpaint(model, a20, obs, steps=steps, shift=shift, **st).joints
                preds["aegan_denoise"] = inpaint(model, a20, obs, steps=steps, shift=shift, keep_observed=False,
                                                 **st).joints
            for k, p in preds.items():
                e = np.linalg.norm(p.astype(np.float64) - b20, axis=-1)[good]
                row[f"mpjpe_{k}"] = float(e.mean())
                sums.setdefault(tname, {}).setdefault(k, []).append(float(e.mean()))
            # jitter: mean acceleration magnitude (m / frame^2) of the output, vs the Kinect's
            for k, p in preds.items():
                row[f"accel_{k}"] = float(np.linalg.norm(np.diff(p, 2, axis=0), axis=-1).mean())
            row["accel_kinect"] = float(np.linalg.norm(np.diff(b20, 2, axis=0), axis=-1)[good[2:]].mean())
            rows[tname] = row
            if progress is not None:
                progress((ei * 3 + ti + 1) / (3 * len(EXERCISES)), f"KERAAL {ex_name} {tname}")
        out["exercises"][ex_name] = rows
    out["mean"] = {tn: {f"mpjpe_{k}": float(np.mean(v)) for k, v in d.items()} for tn, d in sums.items()}
    return out


# ==============================================================================================
# Benchmark section (``motionviz.evaluation.bench`` SECTIONS: "motionviz.generators.inpaint:bench")
# ==============================================================================================
def bench(quick: bool = False) -> dict[str, Any]:
    """Seconds to inpaint 300 frames (30 % of the joints missing, window 32, shift 8) with the trained
    checkpoint (a randomly initialised default-config model when there is none; ``checkpoint`` says
    which).  ``quick`` runs 40 optimisation steps and extrapolates linearly to 200 (the cost is
    linear in the steps); otherwise it runs the full 200."""

    try:
        model, have = inpaint_mod.load_model(), True
    except UserError:
        torch.manual_seed(0)
        model, have = _AEGAN(Config()).eval(), False
    rng = np.random.default_rng(0)
    t = np.arange(300)[:, None, None] / 20.0
    base = np.random.default_rng(1).normal(0, 0.3, size=(1, 15, 3))
    x = (base + 0.1 * np.sin(2 * np.pi * 0.5 * t + base)).astype(np.float32)
    xc, m = corrupt(x, rng, joint_rate=0.3)
    steps = 40 if quick else 200
    inpaint(model, xc[:40], m[:40], shift=8, steps=1)  # warm-up: first linear-algebra call loads libraries
    t0 = time.perf_counter()
    r = inpaint(model, xc, m, shift=8, steps=steps)
    secs = time.perf_counter() - t0
    return {"seconds_per_300_frames": round(secs * (200 / steps), 3), "measured_seconds": round(secs, 3),
            "steps_run": steps, "steps_reported": 200, "windows": len(r.starts), "window": model.cfg.frames,
            "shift": 8, "checkpoint": have, "threads": torch.get_num_threads()}
