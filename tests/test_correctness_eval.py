"""Correctness control (motionviz.evaluation.correctness) on a tiny recogniser and fake generators that
obey, defy or ignore the requested correctness; score control on a fake score-conditioned generator."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _poses import RELAXED, pose_array

from motionviz.core.errors import UserError
from motionviz.core.motion import Motion, MotionLabels
from motionviz.core.skeleton import COMMON
from motionviz.evaluation import correctness as EC
from motionviz.generators.registry import Request
from motionviz.models import recognition as R
from motionviz.training import recognition as R_T

torch.set_num_threads(1)

TINY = dict(hidden=16, gru_hidden=12, feature_dim=16, conv_blocks=2, dropout=0.0, batch_size=16,
            min_crop=20, max_crop=40)
LABELS = ("kimore:ex5", "ui-prmd:m01", "ui-prmd:m07")


def synthetic(label: str, correct: bool | None, T: int, rng: np.random.Generator, score: float | None = None) -> Motion:
    """m01 squat (incorrect: a third of the depth); m07 arms raise (incorrect: a third of the height);
    kimore:ex5 squat whose depth follows the clinical score."""
    x = np.repeat(pose_array(RELAXED)[None], T, axis=0)
    amp = 1.0 if correct in (True, None) else 0.33
    if score is not None:
        amp = score / 100.0
    ph = np.sin(np.linspace(0, np.pi, T)) * amp * rng.uniform(0.9, 1.1)
    if label == "ui-prmd:m07":
        for s in ("left", "right"):
            x[:, COMMON.index(f"{s}_wrist"), 1] += 0.6 * ph
            x[:, COMMON.index(f"{s}_elbow"), 1] += 0.3 * ph
    else:
        up = [COMMON.index(n) for n in COMMON.joints if not n.endswith(("ankle", "knee"))]
        x[:, up, 1] -= 0.35 * ph[:, None]
    x += rng.normal(0, 0.003, x.shape).astype(np.float32)
    ds = label.split(":")[0]
    return Motion(x, COMMON, 20.0, MotionLabels(dataset=ds, label=label, correct=correct, score=score,
                                                 subject="s1"))


def real_set(n: int, seed: int) -> list[Motion]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        for lab in ("ui-prmd:m01", "ui-prmd:m07"):
            out.append(synthetic(lab, bool(i % 2), int(rng.integers(40, 60)), rng))
        out.append(synthetic("kimore:ex5", None, int(rng.integers(40, 60)), rng, score=float(20 + 15 * (i % 5))))
    return out


@pytest.fixture(scope="module")
def recognizer() -> R.Recognizer:
    return R_T.train_recognizer(real_set(16, 0), R.Config(labels=LABELS, **TINY), steps=120, seed=0)


class Fake:
    """mode 'obey': a motion of the requested correctness; 'defy': the opposite; 'ignore': always correct.
    With ``score``: a KIMORE squat of the requested score (tasks include 'score'); 'ignore': always 60."""

    skeleton = COMMON

    def __init__(self, name: str, mode: str, score: bool = False):
        self.name, self.mode = name, mode
        self.tasks = frozenset({"label", "score"} if score else {"label"})
        self.labels = list(LABELS)

    def has_correctness(self, label: str) -> bool:
        return True

    def generate(self, request: Request, progress=None) -> list[Motion]:
        r = request.validated()
        rng = np.random.default_rng(r.seed)
        if r.label.startswith("kimore"):
            sc = 60.0 if self.mode == "ignore" else (60.0 if r.score is None else float(r.score))
            return [synthetic(r.label, None, r.frames, rng, score=sc) for _ in range(r.num)]
        c = {"obey": r.correct, "defy": not r.correct, "ignore": True}[self.mode]
        return [synthetic(r.label, c, r.frames, rng) for _ in range(r.num)]


@pytest.mark.slow
def test_correctness_control_rows(recognizer):
    test, train = real_set(10, 1), real_set(6, 2)
    gens = {"obey": Fake("obey", "obey"), "defy": Fake("defy", "defy"), "ignore": Fake("ignore", "ignore")}
    s = EC.CorrectnessSettings(num=6, frames=50)
    calls = []
    res = EC.correctness_control(gens, recognizer, test, train, s, progress=lambda f, t: calls.append(f))
    assert res["labels"] == ["ui-prmd:m01", "ui-prmd:m07"]             # kimore has no correctness
    rows = res["rows"]
    assert list(rows) == ["real", "real_repeated", "obey", "defy", "ignore", "frozen_pose", "opposite_real",
                          "other_exercise"]
    for name, row in rows.items():
        assert set(row["per_label"]) == set(res["labels"]), name
        assert 0.0 <= row["mean"] <= 1.0 and row["min"] <= row["mean"]
    real = rows["real"]
    assert real["mean"] >= 0.8, real                          # the tiny recogniser separates the toy classes
    # the same recordings played back to back to the generated length: the same counts, judged as recorded
    rep = rows["real_repeated"]
    assert rep["mean"] >= 0.8, rep
    for l in res["labels"]:
        assert rep["per_label"][l]["n_correct"] == real["per_label"][l]["n_correct"]
    assert rows["obey"]["mean"] >= 0.8 and rows["defy"]["mean"] <= 0.2
    assert rows["ignore"]["mean"] == pytest.approx(0.5, abs=0.15)
    for l in res["labels"]:
        e = rows["obey"]["per_label"][l]
        assert e["n_correct"] == e["n_incorrect"] == 6 and e["label_accuracy"] is not None
        # frozen pose: the same motion for both requests -> exactly 0.5
        assert rows["frozen_pose"]["per_label"][l]["control"] == 0.5
        # opposite real recordings: each side is 1 - the real side
        o, r_ = rows["opposite_real"]["per_label"][l], real["per_label"][l]
        assert o["correct_as_correct"] == pytest.approx(1 - r_["incorrect_as_incorrect"], abs=1e-3)
        assert o["incorrect_as_incorrect"] == pytest.approx(1 - r_["correct_as_correct"], abs=1e-3)
    assert rows["obey"]["at_target"] <= rows["obey"]["labels"] == 2
    # another exercise given for the incorrect requests: the requested exercise's head calls it incorrect, so
    # control alone passes it; the exercise columns and strict control catch it
    other = rows["other_exercise"]
    assert other["mean"] >= 0.8 and other["exercise_incorrect_mean"] <= 0.2
    assert other["strict_mean"] <= 0.6 < rows["obey"]["strict_mean"]
    # one evaluated exercise (the Compare tab's mode) still gets the row from the other test recordings
    one = EC.correctness_control({}, recognizer, test, train, EC.CorrectnessSettings(num=2, labels=("ui-prmd:m01",)))
    assert one["rows"]["other_exercise"]["per_label"]["ui-prmd:m01"]["exercise_incorrect"] <= 0.2
    for l in res["labels"]:
        e = rows["obey"]["per_label"][l]
        assert e["exercise_correct"] >= 0.8
        assert e["strict"] <= e["control"] + 1e-9
    assert "mean_ui-prmd" in rows["obey"]
    assert calls[-1] == 1.0
    json.dumps(res)
    txt = EC.format_correctness(res)
    assert "ui-prmd:m01" in txt and "obey" in txt and "frozen_pose" in txt and "other_exercise" in txt
    assert "strict" in txt and "recognised as the exercise" in txt
    keys = EC.summary_keys(res)
    assert keys["obey"]["correctness_control"] == rows["obey"]["mean"]


def test_more_motions_than_one_request_allows_are_requested_in_chunks(recognizer):
    """num above the request limit (16) is generated in chunks, not silently skipped; above MAX_NUM it is
    one clear error before any work."""
    test, train = real_set(4, 1), real_set(4, 2)
    s = EC.CorrectnessSettings(num=20, frames=40, labels=("ui-prmd:m01",))
    res = EC.correctness_control({"obey": Fake("obey", "obey")}, recognizer, test, train, s)
    e = res["rows"]["obey"]["per_label"]["ui-prmd:m01"]
    assert e["n_correct"] == e["n_incorrect"] == 20
    with pytest.raises(UserError, match="between 1 and 48"):
        EC.correctness_control({"obey": Fake("obey", "obey")}, recognizer, test, train,
                               EC.CorrectnessSettings(num=EC.MAX_NUM + 1))


def test_judge_reads_the_requested_head(recognizer):
    rng = np.random.default_rng(3)
    ms = [synthetic("ui-prmd:m01", True, 50, rng), synthetic("ui-prmd:m01", False, 50, rng)]
    j = EC.judge(recognizer, ms, ["ui-prmd:m01"] * 2)
    assert j["correct"].shape == (2,) and j["correct"][0] > j["correct"][1]
    with pytest.raises(UserError):
        EC.judge(recognizer, ms, ["nope:1", "nope:1"])


def test_labels_and_errors(recognizer):
    with pytest.raises(UserError):
        EC.correctness_control({}, recognizer, real_set(2, 4), real_set(2, 5),
                               EC.CorrectnessSettings(labels=("kimore:ex5",)))
    with pytest.raises(UserError):
        EC.correctness_control({}, recognizer, real_set(2, 4), None, EC.CorrectnessSettings(num=0))


def test_score_control(recognizer):
    test = real_set(10, 6)
    res = EC.score_control({"plain": Fake("plain", "obey")}, recognizer, test, EC.CorrectnessSettings(num=3))
    assert res["available"] is False and "real" in res["rows"] and res["labels"] == ["kimore:ex5"]
    res = EC.score_control({"scored": Fake("scored", "obey", score=True)}, recognizer, test,
                           EC.CorrectnessSettings(num=3, frames=50))
    assert res["available"] is True
    row = res["rows"]["scored"]
    assert row["n"] == 3 * 4 and row["mae"] >= 0 and row["per_label"]["kimore:ex5"]["n"] == 12
    assert row["pearson_r"] > 0.5, row                 # the predicted score follows the requested one
    # a generator that ignores the requested score does not track it
    flat = EC.score_control({"flat": Fake("flat", "ignore", score=True)}, recognizer, test,
                            EC.CorrectnessSettings(num=3, frames=50))["rows"]["flat"]
    assert flat["pearson_r"] is None or flat["pearson_r"] < row["pearson_r"] - 0.3, flat
    text = EC.format_score_control(res)
    assert "available" in text and "scored: MAE" in text and "real: MAE" in text
    # only the asked exercises
    none = EC.score_control({}, recognizer, test, EC.CorrectnessSettings(score_labels=("kimore:ex1",)))
    assert none["labels"] == [] and "not available" in EC.format_score_control(none)
    json.dumps(res)


def test_evaluate_cli_sections(recognizer):
    """The ``evaluate`` verb's correctness / score sections and their one-line errors."""
    import argparse

    from motionviz.cli.evaluate import _correctness_sections

    args = argparse.Namespace(correctness=3, correctness_frames=50, labels=None, steps=None, seed=0,
                              no_progress=True)
    out = _correctness_sections(args, {"obey": Fake("obey", "obey")}, recognizer, real_set(6, 7), real_set(6, 8),
                                None)
    assert set(out) == {"correctness_control", "score_control", "_summary"}
    assert out["_summary"]["obey"]["correctness_control"] == out["correctness_control"]["rows"]["obey"]["mean"]
    args.labels = "kimore:ex5"              # no exercise with correctness: score control only, of that label
    out = _correctness_sections(args, {}, recognizer, real_set(6, 7), real_set(2, 8), None)
    assert set(out) == {"score_control"} and out["score_control"]["labels"] == ["kimore:ex5"]
    assert out["score_control"]["available"] is False and "real" in out["score_control"]["rows"]
    args.labels = "ui-prmd:m01"             # no KIMORE label asked: no score control
    assert "score_control" not in _correctness_sections(args, {}, recognizer, real_set(6, 7), real_set(6, 8), None)
    args.correctness = 0
    assert _correctness_sections(args, {}, recognizer, [], [], None) == {}
    args.correctness, args.labels = 99, None
    with pytest.raises(UserError):
        _correctness_sections(args, {}, recognizer, [], [], None)
