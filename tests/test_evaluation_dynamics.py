"""The dynamics section of ``evaluate`` on synthetic exercises: real clips of the requested duration, the
degenerate rows (frozen -> ROM ratio 0, half amplitude -> 0.5, real halves -> ~1), a still generator
caught, the tiny VAE checkpoint runs through it, and the CLI merges the headline numbers into the main
rows."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from _tiny_models import make_vae, standing_pose

from motionviz.core import dynamics as Dy
from motionviz.core.errors import UserError
from motionviz.core.motion import Motion, MotionLabels
from motionviz.core.skeleton import COMMON
from motionviz.evaluation import dynamics as ED
from motionviz.generators.registry import Request

torch.set_num_threads(1)
FPS = 20.0
LABELS = ("ui-prmd:m01", "ui-prmd:m07")


def repetition(label: str, frames: int, amp: float, rng: np.random.Generator) -> np.ndarray:
    """(frames, J, 3) one repetition from rest to rest: m01 the upper body goes down and up (squat),
    m07 both arms rise sideways."""
    x = np.repeat(standing_pose()[None], frames, axis=0).astype(np.float64)
    ph = 0.5 * (1 - np.cos(2 * np.pi * np.arange(frames) / frames))               # 0 -> 1 -> 0
    if label == "ui-prmd:m01":
        up = [COMMON.index(n) for n in COMMON.joints if not n.endswith(("ankle", "knee"))]
        x[:, up, 1] -= 0.3 * amp * ph[:, None]
        for k in ("left_knee", "right_knee"):
            x[:, COMMON.index(k), 1] -= 0.15 * amp * ph
    else:
        for s in ("left", "right"):
            x[:, COMMON.index(f"{s}_wrist"), 1] += 0.5 * amp * ph
            x[:, COMMON.index(f"{s}_elbow"), 1] += 0.25 * amp * ph
    return (x + rng.normal(0, 0.002, x.shape)).astype(np.float32)


def corpus(subjects: list[str], reps: int, seed: int) -> list[Motion]:
    rng = np.random.default_rng(seed)
    out = []
    for lab in LABELS:
        for s in subjects:
            for i in range(reps):
                j = repetition(lab, int(rng.integers(36, 44)), rng.uniform(0.9, 1.1), rng)
                out.append(Motion(j, COMMON, FPS, MotionLabels(dataset="ui-prmd", label=lab, subject=s,
                                                               correct=True, source=f"{lab}-{s}-{i}")))
    return out


class Synthetic:
    """A generator of synthetic repetitions chained to the requested length, ``amp`` times as large
    (amp 0: it holds the standing pose)."""

    skeleton = COMMON
    tasks = frozenset({"label"})
    labels = list(LABELS)

    def __init__(self, name: str, amp: float):
        self.name, self.amp = name, amp

    def has_correctness(self, label: str) -> bool:
        return True

    def generate(self, request: Request, progress=None) -> list[Motion]:
        r = request.validated()
        rng = np.random.default_rng(r.seed)
        out = []
        for _ in range(r.num):
            j = np.concatenate([repetition(r.label, 40, self.amp, rng) for _ in range(-(-r.frames // 40))])
            out.append(Motion(j[:r.frames], COMMON, FPS, MotionLabels(label=r.label)))
        return out


@pytest.fixture(scope="module")
def data():
    return corpus(["t1", "t2"], 4, 1), corpus(["s1", "s2", "s3"], 4, 2)


def test_real_clips_have_the_requested_duration(data):
    test, _ = data
    ms = [m for m in test if m.labels.label == "ui-prmd:m01"]
    clips = ED.real_clips(ms, 120, np.random.default_rng(0))
    assert len(clips) == len(ms) and all(c.shape == (120, len(COMMON.joints), 3) for c in clips)
    # ~2-s repetitions cross-faded at the seams: three full ones in 6 s and the rise of a fourth
    assert all(3 <= Dy.count_repetitions(c, FPS) <= 4 for c in clips)
    # one long recording -> evenly spaced windows; a lone short repetition repeats itself
    long = Motion(np.concatenate([m.joints for m in ms[:8]]), COMMON, FPS, ms[0].labels)
    assert len(ED.real_clips([long], 120, np.random.default_rng(0), max_windows=2)) == 2
    lone = ED.real_clips(ms[:1], 120, np.random.default_rng(0))
    assert len(lone) == 1 and lone[0].shape[0] == 120


def test_split_halves_is_disjoint_by_subject(data):
    test, _ = data
    a, b = ED.split_halves([m for m in test if m.labels.label == "ui-prmd:m07"])
    assert {m.labels.subject for m in a} == {"t1"} and {m.labels.subject for m in b} == {"t2"}
    one = [m.with_labels(subject="x") for m in test[:6]]
    a, b = ED.split_halves(one)
    assert len(a) == len(b) == 3 and not {m.labels.source for m in a} & {m.labels.source for m in b}


def test_half_amplitude_halves_rom_speed_and_pelvis_travel(data):
    test, _ = data
    clip = ED.real_clips([m for m in test if m.labels.label == "ui-prmd:m01"], 120, np.random.default_rng(0))[0]
    half = ED.half_amplitude(clip)
    assert Dy.range_of_motion(half) == pytest.approx(0.5 * Dy.range_of_motion(clip), rel=1e-4)
    assert Dy.mean_joint_speed(half, FPS) == pytest.approx(0.5 * Dy.mean_joint_speed(clip, FPS), rel=1e-4)
    assert Dy.pelvis_vertical_travel(half) == pytest.approx(0.5 * Dy.pelvis_vertical_travel(clip), rel=1e-4)
    frozen = ED.frozen_clip(test[:3], 50)
    assert frozen.shape == (50, len(COMMON.joints), 3) and Dy.range_of_motion(frozen) == 0.0


def test_section_separates_degenerate_rows(data):
    test, train = data
    gens = {"moves": Synthetic("moves", 1.0), "still": Synthetic("still", 0.0), "damped": Synthetic("damped", 0.35)}
    calls = []
    res = ED.dynamics_evaluation(gens, test, train, LABELS, ED.DynamicsSettings(num=4, frames=120),
                                 progress=lambda f, t: calls.append(f))
    json.dumps(res)
    assert list(res["rows"]) == ["real", "moves", "still", "damped", "frozen", "copy_train", "half_amplitude"]
    assert set(res["labels"]) == set(LABELS) and res["settings"]["frames"] == 120
    for lab in LABELS:
        rows = res["labels"][lab]["rows"]
        for k in ("rom_ratio", "speed_ratio", "repetitions", "repetitions_within_1", "period", "pelvis_travel"):
            assert k in rows["moves"], k
        assert rows["frozen"]["rom_ratio"] == 0.0 and rows["frozen"]["repetitions"] == 0
        assert rows["half_amplitude"]["rom_ratio"] == pytest.approx(0.5, abs=0.02)
        assert rows["real"]["rom_ratio"] == pytest.approx(1.0, abs=0.15)
        assert rows["moves"]["rom_ratio"] == pytest.approx(1.0, abs=0.15)
        assert rows["moves"]["repetitions"] == 3 and rows["moves"]["period"] == pytest.approx(2.0, abs=0.1)
    # the squat moves the pelvis (ratio reported), the arm raise does not
    assert res["labels"]["ui-prmd:m01"]["rows"]["moves"]["pelvis_travel_ratio"] == pytest.approx(1.0, abs=0.15)
    assert res["labels"]["ui-prmd:m07"]["rows"]["moves"]["pelvis_travel_ratio"] is None
    s = res["rows"]
    # a still generator with 2-mm jitter: only the jitter's ROM floor, no repetition
    assert s["still"]["rom_ratio"] < 0.25 and s["still"]["repetitions_within_1"] == 0.0
    assert s["still"]["rom_in_band_all"] == 0
    assert s["frozen"]["speed_ratio"] == 0.0 and s["frozen"]["rom_in_band"] == 0
    assert s["damped"]["rom_ratio"] < 0.5 and s["damped"]["rom_in_band_all"] == 0
    assert s["real"]["rom_in_band_all"] == 2 and s["moves"]["repetitions_within_1"] == 1.0
    assert res["focus_labels"] == ["ui-prmd:m01", "ui-prmd:m07"] and s["real"]["rom_in_band"] == 2
    assert calls and calls[-1] == 1.0 and all(0 <= c <= 1 for c in calls)
    headers, table = ED.summary_table(res)
    assert headers[:4] == ["metric", "unit", "best", "real"] and table[0][2] == "≈1"
    txt = ED.format_dynamics(res)
    assert "half_amplitude" in txt and "ui-prmd:m07" in txt
    assert ED.summary_keys(res)["still"]["rom_ratio"] == s["still"]["rom_ratio"]


def test_tiny_vae_runs_through_the_section(data, tmp_path):
    from motionviz.generators.registry import load_generator

    make_vae(tmp_path)
    vae = load_generator("vae", tmp_path)
    test, train = data
    res = ED.evaluate_dynamics({"vae": vae}, test, train, settings=ED.DynamicsSettings(num=2, frames=60))
    labs = [l for l in LABELS if l in set(vae.labels)]
    assert list(res["labels"]) == labs and res["rows"]["vae"]["labels"] == len(labs)
    assert res["labels"][labs[0]]["rows"]["vae"]["clips"] == 2
    with pytest.raises(UserError):
        ED.evaluate_dynamics({"vae": vae}, test, train, labels=("nope:1",))


def test_cli_section_merges_headline_numbers(data, monkeypatch):
    from motionviz.cli import evaluate as cli_eval

    test, train = data
    gens = {"moves": Synthetic("moves", 1.0)}
    args = argparse.Namespace(dynamics=2, dynamics_frames=120, labels=None, steps=None, seed=0, no_progress=True)
    res = {"real": {"fid": 1.0}, "moves": {"fid": 2.0}}
    out = cli_eval._dynamics_section(args, gens, test, train, ("ui-prmd",), res)
    assert set(out) == {"dynamics"} and res["moves"]["rom_ratio"] == out["dynamics"]["rows"]["moves"]["rom_ratio"]
    assert "frozen" not in res                                            # degenerate rows stay in the section
    assert cli_eval._dynamics_section(argparse.Namespace(dynamics=0), gens, test, train, None, res) == {}
    with pytest.raises(UserError):
        cli_eval._dynamics_section(argparse.Namespace(dynamics=65, dynamics_frames=120), gens, test, train, None, res)
