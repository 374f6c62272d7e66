"""The shipped diffusion checkpoint's samples of a moving exercise must move (#12), and honour correct/incorrect (#18).

Posture metrics cannot see a motion that holds the right pose without moving (the checkpoint shipped
before the repetition-level retraining scored recognition accuracy 0.906, above real, at 0.35 of the real
range of motion), so this checks the movement itself on a leg and an arm exercise: UI-PRMD's deep squat
(``ui-prmd:m01``) and standing shoulder abduction (``ui-prmd:m07``, one-sided: it moved half-way while the
mirrored left-side copies shared its label); 2 samples of 120 frames each, seed 0, 20 DDIM steps, default
guidance, against real 120-frame clips of the held-out subjects.  KIMORE's exercises are a known miss of the
shipped model (README, Limitations) and are measured by ``evaluate``, not gated here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from motionviz.core.checkpoint import default_checkpoint_dir
from motionviz.core.dynamics import mean_joint_speed, range_of_motion
from motionviz.core.motion import DEFAULT_FPS
from motionviz.evaluation.dynamics import real_clips
from motionviz.generators.registry import Request, load_generator

torch.set_num_threads(1)


@pytest.mark.slow
@pytest.mark.parametrize("label", ["ui-prmd:m01", "ui-prmd:m07"])
def test_shipped_diffusion_squat_moves(data_root, label):
    """ROM ratio (median generated / median real held-out clip of 120 frames) above 0.6.

    Neither skipped nor xfail-marked: a checkpoint that stops moving fails CI.  Cost: loading the checkpoint and MiniLM
    once (the exercise's description is part of the
    condition, ~7 s) plus 2 samples at 20 steps (~0.5 s) per exercise, one CPU thread."""
    from motionviz.data import load_corpus

    gen = load_generator("diffusion", Path(default_checkpoint_dir()))
    ms = gen.generate(Request(model="diffusion", label=label, num=2, frames=120, seed=0, steps=20))
    assert [m.num_frames for m in ms] == [120, 120]
    ds = label.split(":", 1)[0]
    test = [m for m in load_corpus("test", datasets=[ds], root=data_root) if m.labels.label == label]
    real = real_clips(test, 120, np.random.default_rng(0))
    assert len(real) >= 10
    gen_rom = float(np.median([range_of_motion(m.joints) for m in ms]))
    real_rom = float(np.median([range_of_motion(c) for c in real]))
    gen_speed = float(np.median([mean_joint_speed(m.joints, DEFAULT_FPS) for m in ms]))
    real_speed = float(np.median([mean_joint_speed(c, DEFAULT_FPS) for c in real]))
    ratio = gen_rom / real_rom
    assert ratio > 0.6, (f"the shipped diffusion model's {label} barely moves: range of motion "
                         f"{gen_rom:.3f} m vs real {real_rom:.3f} m (ratio {ratio:.2f}; mean joint speed "
                         f"{gen_speed:.3f} vs {real_speed:.3f} m/s)")


@pytest.mark.slow
@pytest.mark.parametrize("label", ["ui-prmd:m06", "ui-prmd:m08"])
def test_shipped_diffusion_honours_correct_and_incorrect(label):
    """Issue #18: the recogniser's correctness head of the exercise judges 2 samples requested as correct
    and 2 requested as incorrect (120 frames, seed 0, 20 steps) the way they were requested.  UI-PRMD's
    straight-leg raise and shoulder extension were both judged incorrect whichever was asked for by the
    checkpoint shipped before (control 0.5 and 0.62); the full protocol is ``evaluate``."""
    from motionviz.evaluation.correctness import judge
    from motionviz.generators.recognition import load_recognizer

    ck = Path(default_checkpoint_dir())
    gen = load_generator("diffusion", ck)
    rec = load_recognizer(ck / "recognizer.safetensors")
    got = {}
    for want in (True, False):
        ms = gen.generate(Request(model="diffusion", label=label, correct=want, num=2, frames=120, seed=0, steps=20))
        got[want] = judge(rec, ms, [label] * 2)["correct"]
    assert (got[True] > 0.5).all() and (got[False] <= 0.5).all(), (
        f"{label}: P(correct) of samples requested correct {got[True]}, requested incorrect {got[False]}")
