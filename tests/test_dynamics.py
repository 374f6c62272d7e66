"""Known-answer tests for motionviz.core.dynamics: sines of known amplitude and period, a frozen clip, a
squat-like clip and a three-repetition recording with rests."""

from __future__ import annotations

import numpy as np
import pytest

from motionviz.core import dynamics as D
from motionviz.core.skeleton import COMMON

FPS = 20.0
J = len(COMMON.joints)


def standing() -> np.ndarray:
    """(J, 3) a standing pose on the common skeleton (metres, Y-up)."""
    rng = np.random.default_rng(0)
    pose = rng.uniform(-0.2, 0.2, (J, 3))
    pose[:, 1] = np.linspace(0.9, 1.5, J)
    pose[COMMON.root] = (0.0, 0.95, 0.0)
    return pose


def bump_clip(amplitude: float, period: float, seconds: float, axis: int = 1) -> np.ndarray:
    """(T, J, 3) every joint but the pelvis moves along ``axis`` by amplitude * (1 - cos(2 pi t / period)):
    starts at rest, one excursion of 2 * amplitude per period."""
    T = int(round(seconds * FPS))
    t = np.arange(T) / FPS
    x = np.repeat(standing()[None], T, axis=0)
    off = amplitude * (1.0 - np.cos(2 * np.pi * t / period))
    moving = [j for j in range(J) if j != COMMON.root]
    x[:, moving, axis] += off[:, None]
    return x


def test_rom_of_a_sine_is_its_p95_p5_span():
    for a in (0.05, 0.2):
        x = bump_clip(a, period=2.0, seconds=6.0)
        # (1 - cos) spans 2a; its p95-p5 span over whole periods is 2a * sin(0.45 pi)
        assert D.range_of_motion(x) == pytest.approx(2 * a * np.sin(0.45 * np.pi), rel=0.02)
    half = D.range_of_motion(bump_clip(0.1, 2.0, 6.0))
    assert D.range_of_motion(bump_clip(0.05, 2.0, 6.0)) == pytest.approx(half / 2, rel=1e-6)


def test_rom_ignores_global_travel_and_speed_sees_it():
    x = bump_clip(0.1, 2.0, 6.0)
    walk = x.copy()
    walk[..., 2] += np.linspace(0, 3.0, len(x))[:, None]             # walks 3 m while moving the same way
    assert D.range_of_motion(walk) == pytest.approx(D.range_of_motion(x), abs=1e-9)
    assert D.mean_joint_speed(walk, FPS) > D.mean_joint_speed(x, FPS) + 0.3


def test_speed_of_a_sine():
    a, p = 0.1, 2.0
    x = bump_clip(a, p, seconds=6.0)
    # |d/dt a(1 - cos(2 pi t / p))| averages 4a/p over whole periods; the pelvis (1 of J joints) stands still
    expected = (J - 1) / J * 4 * a / p
    assert D.mean_joint_speed(x, FPS) == pytest.approx(expected, rel=0.02)
    assert D.mean_joint_speed(x, 2 * FPS) == pytest.approx(2 * expected, rel=0.02)   # same frames, twice as fast


@pytest.mark.parametrize("period,seconds,reps", [(2.0, 6.0, 3), (1.5, 6.0, 4), (3.0, 6.0, 2), (6.0, 6.0, 1)])
def test_repetitions_and_period_of_a_sine(period, seconds, reps):
    x = bump_clip(0.15, period, seconds)
    assert D.count_repetitions(x, FPS) == reps
    if reps >= 2:
        assert D.repetition_period(x, FPS) == pytest.approx(period, abs=1.0 / FPS + 1e-9)


def test_frozen_clip_does_not_move():
    x = np.repeat(standing()[None], 120, axis=0)
    d = D.dynamics(x, FPS)
    assert d["rom"] == 0.0 and d["speed"] == 0.0 and d["pelvis_travel"] == 0.0
    assert d["repetitions"] == 0 and d["period"] is None
    assert D.segment_repetitions(x, FPS) == [(0, 120)]


def test_jitter_is_not_a_repetition():
    rng = np.random.default_rng(1)
    x = np.repeat(standing()[None], 120, axis=0) + rng.normal(0, 0.005, (120, J, 3))   # Kinect-like noise
    assert D.count_repetitions(x, FPS) == 0
    assert D.repetition_period(x, FPS) is None
    # the noise floor of ROM: per axis the p95-p5 span of N(0, 2 sigma^2) is 3.29 sqrt(2) sigma, ~0.04 m here
    assert D.range_of_motion(x) == pytest.approx(np.sqrt(3) * 3.29 * np.sqrt(2) * 0.005, rel=0.15)


def test_direction_of_the_excursion_does_not_matter():
    up = bump_clip(0.15, 2.0, 6.0)
    down = bump_clip(-0.15, 2.0, 6.0)
    assert D.count_repetitions(up, FPS) == D.count_repetitions(down, FPS) == 3
    assert D.range_of_motion(up) == pytest.approx(D.range_of_motion(down), rel=1e-9)


def squat(depth: float, reps: int, rep_seconds: float = 2.0) -> np.ndarray:
    """(T, J, 3): pelvis and upper body go down by ``depth`` and back, ``reps`` times; ankles stay, knees
    go half-way."""
    T = int(round(reps * rep_seconds * FPS))
    t = np.arange(T) / FPS
    down = depth * 0.5 * (1 - np.cos(2 * np.pi * t / rep_seconds))
    x = np.repeat(standing()[None], T, axis=0)
    ankles = [COMMON.index("left_ankle"), COMMON.index("right_ankle")]
    knees = [COMMON.index("left_knee"), COMMON.index("right_knee")]
    for j in range(J):
        x[:, j, 1] -= 0.0 if j in ankles else (0.5 * down if j in knees else down)
    return x


def test_pelvis_travel_of_a_squat():
    x = squat(0.3, reps=3)
    # p95-p5 span of depth * (1 - cos) / 2 over whole periods = depth * cos(0.05 pi)
    assert D.pelvis_vertical_travel(x) == pytest.approx(0.3 * np.cos(0.05 * np.pi), rel=0.02)
    assert D.count_repetitions(x, FPS) == 3
    assert D.repetition_period(x, FPS) == pytest.approx(2.0, abs=0.05 + 1e-9)
    arms = bump_clip(0.15, 2.0, 6.0)                     # arms-only motion: the pelvis stays at its height
    assert D.pelvis_vertical_travel(arms) == pytest.approx(0.0, abs=1e-9)


def test_segment_three_repetitions_at_the_rests():
    """rest 1 s | repetition 2 s | rest 1 s | repetition 2 s | rest 1 s | repetition 2 s | rest 1 s."""
    rest, rep = int(FPS), int(2 * FPS)
    parts, rests = [], []
    t = 0
    for _ in range(3):
        parts.append(np.zeros(rest))
        rests.append((t, t + rest))
        t += rest
        parts.append(0.2 * np.sin(np.pi * np.arange(rep) / rep) ** 2)
        t += rep
    parts.append(np.zeros(rest))
    rests.append((t, t + rest))
    off = np.concatenate(parts)                                     # (T,)
    T = len(off)
    rng = np.random.default_rng(2)
    x = np.repeat(standing()[None], T, axis=0) + rng.normal(0, 0.001, (T, J, 3))
    moving = [j for j in range(J) if j != COMMON.root]
    x[:, moving, 1] += off[:, None]
    segs = D.segment_repetitions(x, FPS)
    assert len(segs) == 3
    assert segs[0][0] <= rests[0][1] and segs[-1][1] >= rests[-1][0]
    for (a, b), (_, prev_end), (next_start, _) in zip(segs, rests[:-1], rests[1:]):
        assert a <= prev_end + 1                                     # starts at (or in) the rest before
        assert b >= next_start - 1                                   # ends at (or in) the rest after
    for (_, b0), (a1, _) in zip(segs[:-1], segs[1:]):
        assert b0 == a1                                              # contiguous
        assert any(lo - 2 <= b0 <= hi + 2 for lo, hi in rests[1:-1])   # boundary inside a rest
    peaks = D.repetition_peaks(x, FPS)
    assert len(peaks) == 3 and all(a <= p < b for p, (a, b) in zip(peaks, segs))


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        D.range_of_motion(np.zeros((10, 3)))
    with pytest.raises(ValueError):
        D.dynamics(np.zeros((10, 1, 3)), FPS)
