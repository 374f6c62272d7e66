"""classify CLI schema on a tiny checkpoint; evaluate / augment on tiny fake generators and real sets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _poses import RELAXED, exercise_joints, pose_array

from motionviz.cli import main
from motionviz.core.checkpoint import save_checkpoint
from motionviz.core.motion import Motion, MotionLabels
from motionviz.core.skeleton import COMMON
from motionviz.evaluation import generative as E
from motionviz.generators.registry import Request
from motionviz.models import recognition as R
from motionviz.training import recognition as R_T

torch.set_num_threads(1)

TINY = dict(hidden=16, gru_hidden=12, feature_dim=16, conv_blocks=2, dropout=0.0, batch_size=16,
            min_crop=20, max_crop=40)
KINDS = {"ui-prmd:m07": "arms", "ui-prmd:m01": "squat", "kimore:ex2": "lean"}


def synthetic(kind: str, T: int, rng: np.random.Generator) -> np.ndarray:
    return exercise_joints(kind, T, rng, jitter=True)


def real_set(n_per: int, seed: int, subject_prefix: str = "s") -> list[Motion]:
    rng = np.random.default_rng(seed)
    out = []
    for lab, kind in KINDS.items():
        for i in range(n_per):
            out.append(Motion(synthetic(kind, int(rng.integers(40, 60)), rng),
                              labels=MotionLabels(dataset=lab.split(":")[0], label=lab,
                                                  subject=f"{subject_prefix}{i % 4}",
                                                  correct=bool(i % 2) if lab.startswith("ui-prmd") else None,
                                                  score=float(40 + 10 * (i % 5)) if lab.startswith("kimore") else None)))
    return out


@pytest.fixture(scope="module")
def tiny_recognizer() -> R.Recognizer:
    cfg = R.Config(labels=tuple(sorted(KINDS)), **TINY)
    return R_T.train_recognizer(real_set(8, 0), cfg, steps=60, seed=0)


# ---------------------------------------------------------------------------------------------
# classify
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_classify_cli_schema(tmp_path, monkeypatch, capsys, tiny_recognizer):
    ck = tmp_path / "ck"
    save_checkpoint(ck / "recognizer.safetensors", tiny_recognizer.state_dict(), R.KIND, tiny_recognizer.config,
                    {"correct_labels": ["ui-prmd:m01", "ui-prmd:m07"], "score_labels": ["kimore:ex2"]})
    monkeypatch.setenv("MOTIONVIZ_CHECKPOINTS", str(ck))
    rng = np.random.default_rng(5)
    arr = np.stack([synthetic(k, 50, rng) for k in ("arms", "squat", "lean", "arms")])   # (4, 50, 15, 3)
    np.save(tmp_path / "m.npy", arr)
    assert main(["classify", "--input", str(tmp_path / "m.npy"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    preds = out["predictions"]
    assert len(preds) == 4
    for p in preds:
        assert set(p) == {"label", "probability", "correct"}
        assert p["label"] in KINDS and 0.0 <= p["probability"] <= 1.0
        assert p["correct"] is None or isinstance(p["correct"], bool)
        if p["label"] == "kimore:ex2":
            assert p["correct"] is None
    assert [p["label"] for p in preds] == ["ui-prmd:m07", "ui-prmd:m01", "kimore:ex2", "ui-prmd:m07"]
    # a single (T, J, 3) motion
    np.save(tmp_path / "one.npy", arr[0])
    assert main(["classify", "--input", str(tmp_path / "one.npy"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["predictions"]) == 1
    # bad inputs -> exit 2 with one error line
    np.save(tmp_path / "bad.npy", np.zeros((2, 30, 17, 3), np.float32))
    assert main(["classify", "--input", str(tmp_path / "bad.npy"), "--json"]) == 2
    assert capsys.readouterr().err.startswith("error:")
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    assert main(["classify", "--input", str(tmp_path / "junk.npy")]) == 2
    assert main(["classify", "--input", str(tmp_path / "missing.npy")]) == 2
    monkeypatch.setenv("MOTIONVIZ_CHECKPOINTS", str(tmp_path / "empty"))
    assert main(["classify", "--input", str(tmp_path / "m.npy")]) == 2
    assert "train recognizer" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------
class FakeGenerator:
    """'copy' returns training motions of the label (memorises); 'noise' returns random poses."""

    skeleton = COMMON

    def __init__(self, name: str, train: list[Motion], tasks=("label",)):
        self.name = name
        self.tasks = frozenset(tasks)
        self.train = train
        self.labels = sorted(KINDS)
        self.prompts = {t: lab for lab, ts in E.eval_prompts().items() for t in ts}

    def has_correctness(self, label: str) -> bool:
        return True

    def generate(self, request: Request, progress=None) -> list[Motion]:
        r = request.validated()
        lab = r.label or self.prompts[r.text]
        rng = np.random.default_rng(r.seed)
        if self.name == "noise":
            return [Motion(rng.normal(0, 0.5, (r.frames, 15, 3)).astype(np.float32) + pose_array(RELAXED),
                           labels=MotionLabels(label=lab)) for _ in range(r.num)]
        pool = [m for m in self.train if m.labels.label == lab]
        return [pool[int(i)].with_labels(dataset="generated") for i in rng.integers(0, len(pool), r.num)]


@pytest.mark.slow
def test_evaluate_fake_generators(tiny_recognizer):
    train, test = real_set(10, 1), real_set(8, 2)
    gens = {"copy": FakeGenerator("copy", train, ("label", "text")), "noise": FakeGenerator("noise", train)}
    s = E.EvalSettings(num_per_label=6, repeats=4, datasets=None, prompts_per_label=2, max_frames=60)
    calls = []
    res = E.evaluate(gens, tiny_recognizer, test, train, s, progress=lambda f, t: calls.append(f))
    assert set(res) == {"real", "copy", "noise"}
    for row in res.values():
        for k in ("fid", "accuracy", "diversity", "multimodality", "swd", "precision", "recall", "density",
                  "coverage", "memorisation_ratio", "jerk", "bone_length_error", "foot_skating", "limit_any"):
            assert k in row, k
        for k in ("fid", "accuracy", "diversity", "multimodality"):
            assert isinstance(row[k], float) and isinstance(row[f"{k}_ci"], float)
    assert res["copy"]["fid"] < res["noise"]["fid"]
    assert res["copy"]["accuracy"] > res["noise"]["accuracy"]
    assert res["copy"]["memorisation_ratio"] < 0.05 < res["real"]["memorisation_ratio"]
    assert res["noise"]["bone_length_error"] > 3 * res["real"]["bone_length_error"]
    assert "r_precision_top1" in res["copy"] and "r_precision_top1" not in res["noise"]
    assert res["copy"]["r_precision_top3"] == 1.0                  # 3 labels: top-3 always hits
    assert calls and calls[-1] == 1.0 and all(0 <= c <= 1 for c in calls)
    json.dumps(res)                                                   # JSON-safe


def test_evaluate_rejects_unknown_labels(tiny_recognizer):
    with pytest.raises(Exception):
        E.evaluate({}, tiny_recognizer, real_set(2, 3), real_set(2, 4),
                   E.EvalSettings(labels=("nope:1",), datasets=None, repeats=1))


@pytest.mark.slow
def test_augmentation_study_schema(tiny_recognizer):
    train = [m for m in real_set(6, 5) if m.labels.dataset == "ui-prmd"]
    held = [m for m in real_set(3, 6) if m.labels.dataset == "ui-prmd"]
    kim = [m.with_labels(subject=f"p{40 + i}") for i, m in enumerate(real_set(12, 7)) if m.labels.dataset == "kimore"]
    gens = {"copy": FakeGenerator("copy", train + kim)}
    s = E.AugmentSettings(generated_per_class=2, steps_uiprmd=3, steps_kimore=2, kimore_folds=2, frames=None,
                          hidden=8, gru_hidden=8, feature_dim=8, batch_size=8, repeats=2)
    res = E.augmentation_study(gens, train, held, kim, {f"p{40 + i}" for i in range(6)}, s)
    assert set(res) == {"real_only", "real_plus_copy"}
    for row in res.values():
        assert 0.0 <= row["uiprmd_exercise_accuracy"] <= 1.0
        assert 0.0 <= row["uiprmd_correctness_accuracy"] <= 1.0
        assert row["kimore_rmse"] >= row["kimore_mae"] >= 0.0
        assert row["kimore_folds"] == 2
        assert row["repeats"] == 2
        for k in ("uiprmd_exercise_accuracy", "uiprmd_correctness_accuracy", "kimore_rmse", "kimore_mae"):
            assert row[f"{k}_ci"] >= 0.0
    assert res["real_only"]["uiprmd_train_generated"] == 0
    assert res["real_plus_copy"]["uiprmd_train_generated"] == 2 * 2 * 2


# ---------------------------------------------------------------------------------------------
# Compare tab helpers (no server)
# ---------------------------------------------------------------------------------------------
def test_compare_tab_helpers(tiny_recognizer):
    from motionviz.ui import compare_tab as C
    from motionviz.viz.render import grid_figure, metric_bar_figure

    train = real_set(4, 8)
    gens = {"copy": FakeGenerator("copy", train, ("label", "text")), "noise": FakeGenerator("noise", train)}
    assert [v for _, v in C.label_choices(gens)] == sorted(KINDS)
    ms, titles = C.compare(gens, "ui-prmd:m01", "", "Correct", 3, 40, 10, data_root=None)
    assert titles == ["copy (from exercise)", "noise (from exercise)"] and len(ms) == 2   # titled with what it used
    rows = C.motion_metrics_table(ms, titles, tiny_recognizer)
    assert rows[0][0] == "copy (from exercise)" and rows[0][1] in KINDS and len(rows[0]) == 8
    grid_figure(ms, titles=titles)
    with pytest.raises(Exception):
        C.compare(gens, None, "", None, 0, 40, 10)
    res = E.evaluate(gens, tiny_recognizer, real_set(6, 9), train,
                     E.EvalSettings(num_per_label=4, repeats=2, datasets=None, prompts_per_label=0))
    headers, table = C.result_table(res)
    assert headers[0] == "model" and [r[0] for r in table] == ["real", "copy", "noise"]
    assert "±" in table[0][1]
    fig = metric_bar_figure(C.bar_table(res), metrics=list(C.BAR_METRICS))
    assert len(fig.data) == 3 * len(C.BAR_METRICS)


def test_eval_prompts_cover_labels_and_are_never_training_captions():
    """R-precision paraphrases must be unseen: none equals (or contains) a training caption."""
    from motionviz.data.captions import caption_table

    table = caption_table()
    train = {" ".join(c.lower().split()) for k, v in table["labels"].items() for c in v}
    prompts = E.eval_prompts()
    labels = [k for k in table["labels"] if not k.startswith("style:")]
    assert set(labels) <= set(prompts)
    for lab, ps in prompts.items():
        assert len(ps) >= 2, lab
        for p in ps:
            n = " ".join(p.lower().split())
            assert n not in train, (lab, p)
            assert not any(len(c) > 20 and c in n for c in train), (lab, p)


def test_format_table_shows_intervals_and_missing():
    from motionviz.cli.evaluate import format_table

    txt = format_table({"real": {"fid": 1.5, "fid_ci": 0.25, "n": 3}, "m": {"fid": None, "n": 4}})
    lines = txt.splitlines()
    assert lines[0].split() == ["metric", "real", "m"]
    assert lines[1].split() == ["fid", "1.5", "±", "0.25", "-"] and lines[2].split() == ["n", "3", "4"]


def test_evaluate_generated_rows_have_intervals_from_subsampling(tiny_recognizer):
    """Each repeat draws half of the generated pool, so model rows get non-degenerate intervals."""
    train, test = real_set(10, 11), real_set(12, 12)
    res = E.evaluate({"noise": FakeGenerator("noise", train)}, tiny_recognizer, test, train,
                     E.EvalSettings(num_per_label=8, repeats=6, datasets=None, prompts_per_label=0))
    assert res["noise"]["fid_ci"] > 0 and res["noise"]["diversity_ci"] > 0
    assert res["real"]["fid_ci"] > 0


def test_evaluate_text_mode_prints_score_control(monkeypatch, capsys, tiny_recognizer):
    """Text mode prints a score-control line (not available: no generator takes a score; the real row
    beside it), and ``--labels`` with a KIMORE label keeps the section (filtered to that label)."""
    import argparse

    from motionviz import data as data_pkg
    from motionviz.cli import evaluate as cli_eval

    test = [m.with_labels(dataset="kimore", label="kimore:ex5", score=float(30 + 10 * i))
            for i, m in enumerate(real_set(6, 21)[:6])]
    monkeypatch.setattr(cli_eval, "_recognizer", lambda args: tiny_recognizer)
    monkeypatch.setattr(cli_eval, "_generators", lambda args: {})
    monkeypatch.setattr(data_pkg, "load_corpus", lambda split="train", root=None, **kw: test)
    monkeypatch.setattr(E, "evaluate", lambda *a, **kw: {"real": {"fid": 0.0, "n": len(test)}})
    seen = {}

    def score_control(gens, rec, real_test, s, progress=None):
        seen["labels"] = s.score_labels
        return {"labels": ["kimore:ex5"], "available": False, "reason": "no generator takes a clinical-score condition",
                "rows": {"real": {"mae": 12.5, "pearson_r": 0.4, "n": 6}}}

    from motionviz.evaluation import correctness as EC
    monkeypatch.setattr(EC, "score_control", score_control)
    args = argparse.Namespace(num=2, repeats=1, datasets=None, labels="kimore:ex5", steps=None, prompts=0, seed=0,
                              data_root=None, no_progress=True, json=False, correctness=2, correctness_frames=40,
                              dynamics=0, dynamics_frames=60)
    assert cli_eval._run_evaluate(args) == 0
    out = capsys.readouterr().out
    assert "Score control" in out and "not available (no generator takes a clinical-score condition)" in out
    assert "real: MAE 12.5 points, r 0.40, n 6" in out
    assert seen["labels"] == ("kimore:ex5",)
