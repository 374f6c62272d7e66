"""The shipped diffusion checkpoint's samples of a moving exercise must move (#12).

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

from motionviz.checkpoint import default_checkpoint_dir
from motionviz.dynamics import mean_joint_speed, range_of_motion
from motionviz.evaluation_dynamics import real_clips
from motionviz.generator import Request, load_generator
from motionviz.motion import DEFAULT_FPS

torch.set_num_threads(1)


@pytest.mark.parametrize("label", ["ui-prmd:m01", "ui-prmd:m07"])
def test_shipped_diffusion_squat_moves(data_root, label):
    """ROM ratio (median generated / median real held-out clip of 120 frames) above 0.6.

    Neither skipped nor xfail-marked: a checkpoint that stops moving fails CI.  Cost: loading the checkpoint and MiniLM once (the exercise's description is part of the
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
