"""Repetition-level training data (motionviz.core.repetitions) and one-sided labels (data.sided_labels)."""

from __future__ import annotations

import numpy as np
from _poses import arms_down_pose

from motionviz.core.motion import Motion, MotionLabels
from motionviz.core.repetitions import chain, split_repetitions, time_denormalise, time_normalise
from motionviz.core.skeleton import COMMON
from motionviz.data import augment_mirror, sided_labels

FPS = 20.0


def _stand(T: int) -> np.ndarray:
    return np.repeat(arms_down_pose()[None], T, axis=0).copy()


def _raise(T: int, sides: tuple[str, ...], reps: int = 1) -> np.ndarray:
    """Arms of ``sides`` raised forward and lowered ``reps`` times (rest at both ends)."""
    j = _stand(T)
    lift = 0.5 * (1 - np.cos(2 * np.pi * reps * np.arange(T) / (T - 1)))
    for s in sides:
        for name, r in ((f"{s}_elbow", 0.25), (f"{s}_wrist", 0.5)):
            i = COMMON.index(name)
            j[:, i, 2] += r * lift
            j[:, i, 1] += 0.4 * r * lift
    return j


def _motion(j: np.ndarray, label: str, dataset: str = "ui-prmd") -> Motion:
    return Motion(j, COMMON, FPS, MotionLabels(dataset=dataset, label=label))


def test_time_normalisation_round_trip():
    j = _raise(53, ("left",))
    n = time_normalise(j, 64)
    assert n.shape == (64, 15, 3)
    assert np.allclose(n[0], j[0]) and np.allclose(n[-1], j[-1])
    back = time_denormalise(n, 53)
    assert np.abs(back - j).max() < 0.01                                  # linear interpolation error only


def test_presegmented_files_stay_whole_and_recordings_are_cut_at_rests():
    one = _motion(_raise(50, ("left", "right")), "ui-prmd:m07")
    assert split_repetitions(one) == [(0, 50)]
    five = _motion(_raise(201, ("left", "right"), reps=5), "kimore:ex1", dataset="kimore")
    segs = split_repetitions(five)
    assert len(segs) == 5 and segs[0][0] == 0 and segs[-1][1] == 201
    assert all(abs((b - a) - 40) <= 2 for a, b in segs)                    # cut at the rests, 40 frames each
    long = _motion(_stand(300), "bandai:walk", dataset="bandai")          # no repetitions: equal parts <= 6 s
    parts = split_repetitions(long, max_seconds=6.0)
    assert len(parts) == 3 and all(b - a <= 120 for a, b in parts)


def test_chain_joins_clips_where_the_previous_one_ended():
    a = _stand(20)
    b = _stand(20)
    b[..., 0] += 3.0                                                     # somewhere else in the room
    c = chain([a, b], blend=4)
    assert len(c) == 36
    assert np.abs(np.diff(c[:, 0, 0])).max() < 1e-5                        # no jump of the pelvis


def test_one_sided_exercises_get_no_mirrored_copy():
    right = [_motion(_raise(40, ("right",)), "ui-prmd:m07") for _ in range(4)]
    both = [_motion(_raise(40, ("left", "right")), "ui-prmd:m01") for _ in range(4)]
    twin = [_motion(_raise(40, ("right",)), "irds:0", dataset="irds") for _ in range(4)]   # has a mirror label
    assert sided_labels(right + both + twin) == {"ui-prmd:m07"}
    out = augment_mirror(right + both + twin, skip_labels={"ui-prmd:m07"})
    labels = [m.labels.label for m in out]
    assert labels.count("ui-prmd:m07") == 4 and labels.count("ui-prmd:m01") == 8
    assert labels.count("irds:1") == 4                                     # mirrored copies change label


def test_subjects_using_the_other_side_are_mirrored_to_the_majority_side():
    """one_side: a one-sided label's subject who raises the left arm (UI-PRMD s07) is mirrored to the right
    like the others (decided per subject, label kept, marked); other labels and subjects stay as recorded."""
    from dataclasses import replace

    from motionviz.data import one_side, side_log_ratio

    def rec(sides, subject, label="ui-prmd:m07"):
        m = _motion(_raise(40, sides), label)
        return replace(m, labels=replace(m.labels, subject=subject))

    right = [rec(("right",), s) for s in ("s01", "s02", "s03") for _ in range(2)]
    left = [rec(("left",), "s07") for _ in range(2)]
    squat = [rec(("left",), "s07", "ui-prmd:m01")]                         # not a one-sided label here
    assert side_log_ratio(left[0]) > 0.4 > -0.4 > side_log_ratio(right[0])
    out = one_side(right + left + squat, {"ui-prmd:m07"})
    assert [m.labels.extra.get("side_mirrored", False) for m in out] == [False] * 6 + [True, True, False]
    for m in out[:8]:
        assert m.labels.label == "ui-prmd:m07" and side_log_ratio(m) < -0.4        # all raise the right arm
    np.testing.assert_allclose(out[6].joints, left[0].mirror().joints)
    assert out[8] is squat[0]
