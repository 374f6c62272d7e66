"""Recogniser: shapes, invariances, padding, training signal, checkpoint round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _poses import exercise_joints

from motionviz.cli import main
from motionviz.core.checkpoint import save_checkpoint
from motionviz.core.errors import UserError
from motionviz.core.motion import Motion, MotionLabels
from motionviz.generators import recognition as R_G
from motionviz.models import recognition as R
from motionviz.training import recognition as R_T

torch.set_num_threads(1)

TINY = dict(hidden=16, gru_hidden=12, feature_dim=16, conv_blocks=2, dropout=0.0, batch_size=8,
            min_crop=20, max_crop=40)


def synthetic(kind: str, T: int, rng: np.random.Generator) -> np.ndarray:
    """'arms': both wrists rise and fall; 'squat': the upper body drops and rises."""
    return exercise_joints(kind, T, rng)


def tiny_model(labels=("t:arms", "t:squat")) -> R.Recognizer:
    torch.manual_seed(0)
    return R.Recognizer(R.Config(labels=tuple(labels), **TINY))


def test_forward_shapes_and_probabilities():
    m = tiny_model().eval()
    x, lengths = R.motions_to_batch([synthetic("arms", 30, np.random.default_rng(0)),
                                     synthetic("squat", 50, np.random.default_rng(1))])
    assert x.shape == (2, 50, 15, 3) and lengths.tolist() == [30, 50]
    out = m(x, lengths)
    assert out["features"].shape == (2, 16)
    assert out["logits"].shape == (2, 2) and out["correct"].shape == (2,) and out["score"].shape == (2,)
    r = m.run([synthetic("arms", 30, np.random.default_rng(0))] * 3)
    assert r["probs"].shape == (3, 2) and np.allclose(r["probs"].sum(1), 1.0, atol=1e-5)


def test_invariant_to_facing_scale_position_and_padding():
    m = tiny_model().eval()
    a = synthetic("arms", 40, np.random.default_rng(2))
    ang = 1.3
    Rm = np.array([[np.cos(ang), 0, np.sin(ang)], [0, 1, 0], [-np.sin(ang), 0, np.cos(ang)]], np.float32)
    b = (a @ Rm.T) * 1.3 + np.array([2.0, 0.5, -1.0], np.float32)
    fa, fb = m.features([a]), m.features([b])
    assert np.allclose(fa, fb, atol=1e-4)
    # padding: batched with a much longer motion gives the same features
    long = synthetic("squat", 120, np.random.default_rng(3))
    both = m.features([a, long])
    assert np.allclose(both[0], fa[0], atol=1e-4)


def test_lengths_and_bad_input():
    m = tiny_model().eval()
    for T in (2, 5, 600):
        assert np.isfinite(m.features([synthetic("arms", T, np.random.default_rng(T))])).all()
    with_nan = synthetic("arms", 30, np.random.default_rng(4))
    with_nan[5:9, 3] = np.nan
    assert np.isfinite(m.features([with_nan])).all()
    with pytest.raises(UserError):
        m.features([np.zeros((30, 17, 3), np.float32)])
    with pytest.raises(UserError):
        m.features([np.zeros((1, 15, 3), np.float32)])
    with pytest.raises(UserError):
        m.features([np.full((10, 15, 3), np.nan, np.float32)])


@pytest.mark.slow
def test_train_step_lowers_loss_on_tiny_batch():
    rng = np.random.default_rng(0)
    motions = [Motion(synthetic(k, 40, rng), labels=MotionLabels(label=f"t:{k}", correct=bool(i % 2),
                                                                   score=50.0 + 10 * (i % 3)))
               for i, k in enumerate(["arms", "squat"] * 4)]
    model = tiny_model().train()
    cfg = model.config
    items = R_T._items(motions, cfg.labels)
    batch = R_T.collate_motions(items, np.random.default_rng(0), cfg, augment=False)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = model.train_step(batch, {"model": opt})
    for _ in range(40):
        last = model.train_step(batch, {"model": opt})
    assert last["loss"] < 0.6 * first["loss"]
    assert {"ce", "acc", "bce", "score_mse", "loss"} <= set(first)
    assert last["acc"] == 1.0


@pytest.mark.slow
def test_train_recognizer_separates_classes_and_checkpoint_roundtrip(tmp_path):
    rng = np.random.default_rng(1)
    motions = [Motion(synthetic(k, int(rng.integers(30, 60)), rng), labels=MotionLabels(label=f"t:{k}"))
               for k in ["arms", "squat"] * 10]
    cfg = R.Config(labels=("t:arms", "t:squat"), **TINY)
    model = R_T.train_recognizer(motions, cfg, steps=40, seed=0)
    test = [synthetic(k, 45, np.random.default_rng(100 + i)) for i, k in enumerate(["arms", "squat"] * 3)]
    preds = model.predict(test)
    assert [p["label"] for p in preds] == ["t:arms", "t:squat"] * 3
    assert all(p["correct"] is None and 0.5 <= p["probability"] <= 1.0 for p in preds)
    path = save_checkpoint(tmp_path / "recognizer.safetensors", model.state_dict(), R.KIND, model.config,
                           {"correct_labels": [], "score_labels": []})
    again = R_G.load_recognizer(path)
    assert again.labels == model.labels
    assert np.allclose(again.features(test), model.features(test), atol=1e-6)
    with pytest.raises(UserError):
        R_G.load_recognizer(tmp_path / "missing.safetensors")


def test_per_class_correctness_and_score_outputs():
    """Correctness / score have one output per class: a given class picks its own, else the predicted."""
    m = tiny_model().eval()
    x, lengths = R.motions_to_batch([synthetic("arms", 30, np.random.default_rng(7)),
                                     synthetic("squat", 30, np.random.default_rng(8))])
    with torch.no_grad():
        base = m(x, lengths)
        allc = m.head_correct(base["features"])                           # (B, K)
        alls = m.head_score(base["features"])
        pred = base["logits"].argmax(-1)
        assert torch.allclose(base["correct"], allc.gather(1, pred[:, None])[:, 0])
        for k in range(2):
            o = m(x, lengths, torch.tensor([k, -1]))
            assert torch.allclose(o["correct"][0], allc[0, k]) and torch.allclose(o["score"][0], alls[0, k])
            assert torch.allclose(o["correct"][1], allc[1, pred[1]])
    assert not torch.allclose(allc[:, 0], allc[:, 1])


def test_chain_views_play_an_item_back_to_back_with_its_partners():
    """Config.chain_views (an augmentation): a training item of a single-repetition dataset, short or long,
    becomes a chain of repetitions (its partners: other repetitions of its subject, exercise and
    correctness; itself without partners) before the crop; with 0, without augmentation or
    for a multi-repetition recording (chainable False) it stays one repetition."""
    rng = np.random.default_rng(3)
    a = synthetic("arms", 20, rng)                                   # (20, 15, 3), one rise and fall
    wrist = R.COMMON.index("left_wrist")

    def peaks(h):
        return np.flatnonzero((h[1:-1] > h[:-2]) & (h[1:-1] >= h[2:]) & (h[1:-1] > h.min() + 0.5 * np.ptp(h)))

    for p, augment, chainable, chained in ((1.0, True, True, True), (0.0, True, True, False),
                                           (1.0, False, True, False), (1.0, True, False, False)):
        cfg = R.Config(labels=("t:arms",), **dict(TINY, min_crop=50, max_crop=60, chain_views=p))
        v = R_T._random_view(a, np.random.default_rng(0), cfg, augment=augment, chainable=chainable)
        if not chained:
            assert len(v) <= 26 and len(peaks(v[:, wrist, 1])) == 1    # (time-stretched by at most 1.25)
            continue
        assert 50 <= len(v) <= 60
        assert len(peaks(v[:, wrist, 1])) >= 2                        # the rise repeats
    assert R.Config().chain_views == 0.5                             # the shipped recogniser's
    # a long item (longer than any crop) is chained too, with its partner: some crops hold the partner,
    # recognisable by its wrist raised 1 m higher above the pelvis (crops are scaled by at most 1.15)
    long_ = synthetic("arms", 80, rng)
    partner = synthetic("arms", 80, rng)
    partner[:, wrist, 1] += 1.0
    pelvis = R.COMMON.root

    def reach(v):
        return float((v[:, wrist, 1] - v[:, pelvis, 1]).max())

    cfg = R.Config(labels=("t:arms",), **dict(TINY, min_crop=50, max_crop=60, chain_views=1.0))
    views = [R_T._random_view(long_, np.random.default_rng(s), cfg, augment=True, partners=[partner])
             for s in range(20)]
    assert all(50 <= len(v) <= 60 for v in views)
    with_partner = [v for v in views if reach(v) > 1.15 * reach(long_) + 0.5]
    assert with_partner, "no crop reached the partner repetition"


@pytest.mark.slow
def test_chain_views_outside_0_1_is_a_one_line_error(tmp_path, data_root, capsys):
    """``train recognizer --set chain_views=X``: not a probability -> exit 2 with one line, before training."""
    common = ["--tiny", "--steps", "1", "--datasets", "irds", "--data-root", str(data_root), "--threads", "1",
              "--no-progress", "--out", str(tmp_path / "r.safetensors"), "--runs-dir", str(tmp_path / "runs")]
    for bad in ("2", "-0.1", '"x"', "true"):
        rc = main(["train", "recognizer", "--set", f"chain_views={bad}", *common])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and "chain_views" in err and "\n" not in err and "Traceback" not in err, (bad, err)
        assert not (tmp_path / "r.safetensors").exists()
