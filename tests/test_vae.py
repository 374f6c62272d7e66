"""ACTOR-style VAE: shapes, class tokens, losses, training, checkpoints, seeding, interpolation, CLI.

Everything runs on a tiny config (a few thousand parameters) and synthetic motions on the common
skeleton; no dataset is needed.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from _poses import exercise_motion

from motionviz.core import representation_torch as V_RT
from motionviz.core.checkpoint import data_provenance, load_checkpoint, save_checkpoint
from motionviz.core.errors import CheckpointError, UserError
from motionviz.core.latent import interpolate, lerp, slerp, weights
from motionviz.core.motion import Motion, MotionLabels
from motionviz.core.representation import canonicalise
from motionviz.core.skeleton import COMMON
from motionviz.evaluation import vae as V_E
from motionviz.generators import vae as V_G
from motionviz.generators.registry import Request
from motionviz.models import vae as V
from motionviz.training import vae as V_T

torch.set_num_threads(1)

CLASSES = ("kimore:ex5", "ui-prmd:m01/correct", "ui-prmd:m01/incorrect", "ui-prmd:m07/correct")


def synthetic(label: str, correct: bool | None, T: int, rng: np.random.Generator) -> Motion:
    """A squat (pelvis and upper body go down) or a left-arm abduction, with a little noise."""
    return exercise_motion(label, correct, T, rng)


def corpus(n: int = 6, seed: int = 0) -> list[Motion]:
    rng = np.random.default_rng(seed)
    out = []
    for key in CLASSES:
        label, correct = V.split_class(key)
        for _ in range(n):
            out.append(synthetic(label, correct, int(rng.integers(20, 40)), rng))
    return out


def tiny_model(seed: int = 0) -> V.ActorVAE:
    torch.manual_seed(seed)
    motions = corpus()
    cfg = V.tiny_config(V.classes_of(motions))
    model = V.ActorVAE(cfg)
    items = V_T.motions_to_items(motions, cfg.classes, cfg)
    model.set_stats(*V_T.compute_stats(items))
    return model.eval()


@pytest.fixture(scope="module")
def gen() -> V_G.VAEGenerator:
    return V_G.VAEGenerator(tiny_model())


@pytest.fixture()
def ckpt_dir(tmp_path, monkeypatch):
    model = tiny_model()
    save_checkpoint(tmp_path / "vae.safetensors", model.state_dict(), "vae", model.config,
                    {"data": data_provenance(["ui-prmd"]), "command": "test"})
    monkeypatch.setenv("MOTIONVIZ_CHECKPOINTS", str(tmp_path))
    return tmp_path


# ---- representation / classes -------------------------------------------------------------------
def test_features_round_trip_and_canonical_frame():
    m = synthetic("ui-prmd:m01", True, 30, np.random.default_rng(1)).rotate_y(0.7)
    j = m.joints + np.array([0.5, 0.0, -1.0], np.float32)
    f = V_RT.joints_to_features(j)
    assert f.shape == (30, 45)
    np.testing.assert_allclose(V_RT.features_to_joints(f), j, atol=1e-6)
    ft = V_RT.joints_to_features(torch.from_numpy(j))
    np.testing.assert_allclose(ft.numpy(), f, atol=1e-6)
    c = canonicalise(j)[0]
    assert abs(c[0, COMMON.index("pelvis"), 0]) < 1e-6 and abs(c[0, COMMON.index("pelvis"), 2]) < 1e-6
    across = c[0, COMMON.index("left_hip")] - c[0, COMMON.index("right_hip")]
    assert across[0] > 0 and abs(across[2]) < 1e-3          # left = +X again after canonicalising
    np.testing.assert_allclose(c[..., 1], j[..., 1], atol=1e-6)  # heights untouched


def test_class_keys_and_label_resolution():
    assert V.class_key("ui-prmd:m01", False) == "ui-prmd:m01/incorrect"
    assert V.class_key("irds:4", True) == "irds:4/correct"
    assert V.class_key("kimore:ex5", None) == "kimore:ex5"
    assert V.class_key("bandai:walk", True) == "bandai:walk"          # no correctness in Bandai
    assert V.split_class("ui-prmd:m01/incorrect") == ("ui-prmd:m01", False)
    labels = ["ui-prmd:m01", "kimore:ex5", "irds:4", "keraal:4"]
    assert V.resolve_label("ui-prmd:m01", labels) == "ui-prmd:m01"
    assert V.resolve_label("M01", labels) == "ui-prmd:m01"
    with pytest.raises(UserError, match="ambiguous"):
        V.resolve_label("4", labels)
    with pytest.raises(UserError, match="unknown exercise"):
        V.resolve_label("squat", labels)


# ---- the model ----------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [8, 37, 150])
def test_shapes_for_any_length(T):
    model = tiny_model()
    D, F = model.config.d_model, model.config.num_features
    x = torch.randn(3, T, F)
    mask = torch.ones(3, T, dtype=torch.bool)
    mask[1, T // 2:] = False
    y = torch.tensor([0, 1, 3])
    with torch.no_grad():
        mu, logvar = model.encode(x, mask, y)
        out = model.decode(mu, y, T, mask)
    assert mu.shape == (3, D) and logvar.shape == (3, D)
    assert out.shape == (3, T, F) and torch.isfinite(out).all()
    assert (out[1, T // 2:] == 0).all()                                 # padded frames masked
    g = V_G.VAEGenerator(model)
    ms = g.sample("ui-prmd:m01", True, frames=T, num=2, seed=0)
    assert len(ms) == 2 and ms[0].joints.shape == (T, 15, 3) and ms[0].joints.dtype == np.float32
    assert ms[0].skeleton is COMMON and ms[0].fps == 20.0 and ms[0].labels.label == "ui-prmd:m01"


def test_per_class_tokens_exist_and_condition():
    model = tiny_model()
    C, D = len(CLASSES), model.config.d_model
    names = dict(model.named_parameters())
    for n in ("mu_token", "sigma_token", "class_bias"):
        assert names[n].shape == (C, D)
    x = torch.randn(1, 20, model.config.num_features).expand(C, -1, -1)
    mask = torch.ones(C, 20, dtype=torch.bool)
    with torch.no_grad():
        mu, logvar = model.encode(x, mask, torch.arange(C))
        dec = model.decode(torch.zeros(C, D), torch.arange(C), 20)
    assert not torch.allclose(mu[0], mu[1]) and not torch.allclose(logvar[0], logvar[1])
    assert not torch.allclose(dec[0], dec[1])
    # the padding mask hides frames: changing a padded frame does not change the posterior
    x2 = x[:1].clone()
    m2 = torch.ones(1, 20, dtype=torch.bool)
    m2[0, 15:] = False
    with torch.no_grad():
        a = model.encode(x2, m2, torch.tensor([0]))[0]
        x2[0, 17] += 5.0
        b = model.encode(x2, m2, torch.tensor([0]))[0]
    torch.testing.assert_close(a, b)


def test_kl_weight_config_and_loss_composition():
    assert V.Config().kl_weight == pytest.approx(1e-5)
    model = tiny_model()
    model.config = replace(model.config, kl_weight=0.25, vel_weight=0.5, pos_weight=2.0, motion_weight=0.75)
    items = V_T.motions_to_items(corpus(), model.config.classes, model.config)
    batch = V_T.collate_clips(items[:6])
    with torch.no_grad():
        out = model.losses(batch, generator=torch.Generator().manual_seed(0))
    expected = 2.0 * out["pos"] + 0.5 * out["vel"] + 0.25 * out["kl"] + 0.75 * out["motion"]
    torch.testing.assert_close(out["loss"], expected)
    assert out["kl"] > 0
    # the KL term is the analytic KL of N(mu, sigma) to N(0, I): zero for mu = 0, logvar = 0
    mu, logvar = torch.zeros(2, 4), torch.zeros(2, 4)
    assert float((-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(-1)).mean()) == 0.0


def test_collate_time_normalised_repetitions():
    """Training items are whole repetitions time-normalised to ``rep_frames`` with their duration as the
    last feature; they start facing +Z with the pelvis at the origin."""
    cfg = V.tiny_config(CLASSES)
    motions = corpus()
    items = V_T.motions_to_items(motions, CLASSES, cfg)
    assert len(items) == len(motions)                     # synthetic clips are single repetitions
    b = V_T.collate_clips(items[:8])
    assert b["features"].shape == (8, cfg.rep_frames, 46) and bool(b["mask"].all())
    durations = torch.exp(b["features"][:, :, -1].mean(1))
    want = torch.tensor([(m.num_frames - 1) / m.fps for m in motions[:8]])
    torch.testing.assert_close(durations, want, atol=1e-4, rtol=1e-4)
    f0 = b["features"][:, 0, :3]
    assert torch.allclose(f0[:, [0, 2]], torch.zeros(8, 2), atol=1e-5)
    batches = V_T.ClipBatches(items, len(CLASSES), 5, seed=3)
    assert next(batches)["label"].shape == (5,)


def test_class_weights_split_an_exercise_equally_between_its_executions():
    """balance_correct: an exercise recorded both ways keeps its count**balance weight in total but gives
    half to each execution; classes recorded one way only and empty classes are untouched."""
    names = ("irds:3/correct", "irds:3/incorrect", "kimore:ex5", "ui-prmd:m07/correct", "ui-prmd:m07/incorrect")
    counts = [36, 4, 16, 25, 0]
    plain = V_T.class_weights(counts, names, 0.5)
    np.testing.assert_allclose(plain, np.array([6, 2, 4, 5, 0]) / 17)
    bal = V_T.class_weights(counts, names, 0.5, balance_correct=True)
    np.testing.assert_allclose(bal, np.array([4, 4, 4, 5, 0]) / 17)
    np.testing.assert_allclose(V_T.class_weights(counts, names, 0.0, True), np.array([1, 1, 1, 1, 0]) / 4)
    items = [(np.zeros((4, 46), np.float32), c) for c, n in enumerate(counts) for _ in range(n)]
    b = V_T.ClipBatches(items, len(names), 4000, seed=0, classes=names, balance_correct=True)
    labels = next(b)["label"].numpy()
    share = np.bincount(labels, minlength=len(names)) / len(labels)
    assert abs(share[0] - share[1]) < 0.04 and share[4] == 0          # 4 incorrect reps drawn as often as 36 correct


def test_shared_execution_bias_is_added_per_execution():
    """shared_execution: the decoder bias of a class is its own bias plus the bias of its execution
    (correct / incorrect / neither), one row shared by every exercise."""
    torch.manual_seed(0)
    model = V.ActorVAE(replace(V.tiny_config(CLASSES), shared_execution=True))
    with torch.no_grad():
        model.exec_bias.copy_(torch.arange(3, dtype=torch.float32)[:, None].expand(3, model.config.d_model))
    y = torch.arange(len(CLASSES))
    want = model.class_bias + torch.tensor([2.0, 0.0, 1.0, 0.0])[:, None]     # kimore: neither; m01 c/i; m07 c
    torch.testing.assert_close(model.bias(y), want)
    torch.testing.assert_close(model.bias(2), want[2])
    plain = V.ActorVAE(V.tiny_config(CLASSES))
    assert not hasattr(plain, "exec_bias") and torch.equal(plain.bias(y), plain.class_bias)


def test_execution_pairs_are_the_mean_difference_of_the_two_executions():
    """execution_pairs: each execution of an exercise recorded both ways points at the other one, with
    delta = (mean repetition of the other - own mean) / feat_std; other classes have no partner."""
    R, F = 4, 46
    names = ("kimore:ex5", "ui-prmd:m01/correct", "ui-prmd:m01/incorrect", "ui-prmd:m07/correct")
    items = [(np.full((R, F), v, np.float32), c) for c, v in
             [(0, 9.0), (1, 1.0), (1, 3.0), (2, 6.0), (3, 5.0)]]
    std = torch.full((F,), 2.0)
    partner, delta = V_T.execution_pairs(items, names, std)
    assert partner.tolist() == [-1, 2, 1, -1]
    torch.testing.assert_close(delta[1], torch.full((R, F), (6.0 - 2.0) / 2.0))   # incorrect 6 - correct mean 2
    torch.testing.assert_close(delta[2], -delta[1])
    assert delta[0].abs().sum() == 0 and delta[3].abs().sum() == 0


def test_pair_loss_known_answer_and_only_for_paired_items():
    """pair_loss: items with a partner are decoded again from the same z with the partner's class and
    compared with the detached reconstruction + delta; unpaired items do not count; with pair_weight the
    total loss includes it."""
    torch.manual_seed(0)
    model = V.ActorVAE(replace(V.tiny_config(CLASSES), pair_weight=2.0))
    R, F = model.config.rep_frames, model.config.num_features
    delta = torch.zeros(len(CLASSES), R, F)
    delta[1], delta[2] = 0.5, -0.5
    model.set_execution_pairs(torch.tensor([-1, 2, 1, -1]), delta)
    z = torch.randn(3, model.config.d_model)
    y = torch.tensor([0, 1, 2])                                         # kimore (unpaired), m01 correct, incorrect
    mask = torch.ones(3, R, dtype=torch.bool)
    pred = model.decode(z, y, R, mask)
    got = model.pair_loss(z, y, pred, mask)
    other = model.decode(z[1:], torch.tensor([2, 1]), R, mask[1:])
    want = ((other - (pred[1:].detach() + delta[1:3])) ** 2).mean()
    torch.testing.assert_close(got, want)
    got.backward()
    assert model.class_bias.grad[2].abs().sum() > 0 and model.class_bias.grad[0].abs().sum() == 0
    assert float(model.pair_loss(z[:1], y[:1], pred[:1], mask[:1]).detach()) == 0.0   # no partner: no loss
    batch = V_T.collate_clips([(np.random.default_rng(1).normal(size=(R, F)).astype(np.float32), 1)] * 2)
    out = model.losses(batch)
    assert "pair" in out and float(out["pair"].detach()) > 0
    rest = sum(getattr(model.config, k + "_weight") * out[k] for k in ("pos", "vel", "kl", "motion"))
    torch.testing.assert_close(out["loss"], rest + 2.0 * out["pair"])
    plain = V.ActorVAE(V.tiny_config(CLASSES))
    assert "pair" not in plain.losses(batch) and not hasattr(plain, "exec_delta")    # off: no loss, no buffers
    with pytest.raises(ValueError):
        plain.set_execution_pairs(torch.tensor([-1, 2, 1, -1]), delta)


def test_exercise_pairs_number_only_exercises_recorded_both_ways():
    """exercise_pairs: m01 (correct + incorrect) is exercise 0 for both classes; kimore (no execution)
    and m07 (correct only) are -1; execution is 1 for correct, 0 otherwise."""
    ex_of, execution = V.exercise_pairs(CLASSES + ("irds:3/incorrect", "irds:3/correct"))
    assert ex_of == [-1, 0, 0, -1, 1, 1]
    assert execution == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]


def test_adversary_loss_known_answer_and_reversed_gradient():
    """adversary_loss: binary cross-entropy of the critic's execution guess over paired items only (a
    zero critic guesses 0.5: log 2); the critic is trained to lower it while the encoder's input (mu)
    receives the gradient times -reverse; off (adv_weight 0): no critic and no term."""
    torch.manual_seed(0)
    model = V.ActorVAE(replace(V.tiny_config(CLASSES), adv_weight=0.5, adv_ramp_steps=4))
    D = model.config.d_model
    last = model.critic[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    y = torch.tensor([0, 1, 2, 3])                                    # only m01 correct / incorrect are paired
    mu = torch.randn(4, D, requires_grad=True)
    loss = model.adversary_loss(mu, y, 1.0)
    torch.testing.assert_close(loss, torch.tensor(math.log(2.0)))
    assert float(model.adversary_loss(mu[[0, 3]], y[[0, 3]]).detach()) == 0.0       # nothing paired
    with torch.no_grad():
        last.weight.normal_()
    for r in (1.0, 0.25):
        mu.grad = None
        model.adversary_loss(mu, y, r).backward()
        plain = mu.detach().clone().requires_grad_(True)
        h = plain[1:3] + model.exercise_embed(model.exercise_of[y[1:3]])
        ref = torch.nn.functional.binary_cross_entropy_with_logits(model.critic(h).squeeze(-1),
                                                                   model.execution_of[y[1:3]])
        (g,) = torch.autograd.grad(ref, plain)
        torch.testing.assert_close(mu.grad, -r * g)                   # reversed for the encoder
        assert mu.grad[[0, 3]].abs().sum() == 0
    R, F = model.config.rep_frames, model.config.num_features
    batch = V_T.collate_clips([(np.random.default_rng(1).normal(size=(R, F)).astype(np.float32), c)
                               for c in (1, 2)])
    out = model.losses(batch)
    rest = sum(getattr(model.config, k + "_weight") * out[k] for k in ("pos", "vel", "kl", "motion"))
    torch.testing.assert_close(out["loss"], rest + 0.5 * out["adv"])
    steps = model.adv_steps
    model.train_step(batch, V_T.make_optimizers(model))
    assert model.adv_steps == steps + 1
    plain_model = V.ActorVAE(V.tiny_config(CLASSES))
    assert "adv" not in plain_model.losses(batch) and not hasattr(plain_model, "critic")
    assert not any(k.startswith(("critic", "exercise_embed")) for k in plain_model.state_dict())


def test_execution_loss_trains_the_critic_on_real_and_the_decoder_on_swapped_latents():
    """execution_loss: the critic term is the critic's cross-entropy on the real paired items and teaches
    only the critic; the swap term decodes a paired item's deviation from its class mean with the other
    execution's class and teaches only the decoder side (the critic and the encoder get no gradient from
    it; the bias of the *partner* class does).  Unpaired batches give zeros; off: no critic, no terms."""
    torch.manual_seed(0)
    model = V.ActorVAE(replace(V.tiny_config(CLASSES), exec_weight=1.0, exec_ramp_steps=2))
    assert model.exec_partner.tolist() == [-1, 2, 1, -1]
    R, F = model.config.rep_frames, model.config.num_features
    rng = np.random.default_rng(0)
    first = V_T.collate_clips([(rng.normal(size=(R, F)).astype(np.float32), c) for c in (0, 1, 3)])
    out = model.losses(first)                      # m01 incorrect not seen yet, one m01 correct deviation:
    assert float(out["exec"].detach()) == 0.0 and float(out["critic"].detach()) > 0     # nothing to decode
    assert model.exec_filled.tolist() == [0, 1, 0, 0]
    batch = V_T.collate_clips([(rng.normal(size=(R, F)).astype(np.float32), c) for c in (0, 1, 2, 1, 3)])
    out = model.losses(batch)
    rest = sum(getattr(model.config, k + "_weight") * out[k] for k in ("pos", "vel", "kl", "motion"))
    torch.testing.assert_close(out["loss"], rest + out["critic"])          # ramp 0 at step 0
    model.exec_steps = 2
    model.zero_grad()
    out = model.losses(batch)
    rest = sum(getattr(model.config, k + "_weight") * out[k] for k in ("pos", "vel", "kl", "motion"))
    torch.testing.assert_close(out["loss"], rest + out["critic"] + out["exec"])
    assert model.exec_filled.tolist() == [0, 5, 2, 0]                  # the bank: paired items of 3 calls
    torch.testing.assert_close(model.exec_devs[2, 0], torch.zeros(model.config.d_model))   # first = its mean
    out["exec"].backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.exec_critic.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.encoder.parameters())
    g = model.class_bias.grad.abs().sum(1)
    assert g[1] > 0 and g[2] > 0 and g[0] == 0 and g[3] == 0              # m01 correct <-> incorrect
    model.zero_grad()
    model.losses(batch)["critic"].backward()
    assert sum(float(p.grad.abs().sum()) for p in model.exec_critic.parameters()) > 0
    assert model.class_bias.grad is None or model.class_bias.grad.abs().sum() == 0
    unpaired = V_T.collate_clips([(rng.normal(size=(R, F)).astype(np.float32), c) for c in (0, 3)])
    out = model.losses(unpaired)
    assert float(out["critic"].detach()) == 0.0 and float(out["exec"].detach()) == 0.0
    opt = V_T.make_optimizers(model)
    before = [float(model.train_step(batch, opt)["critic"]) for _ in range(15)]
    assert before[-1] < before[0]                                           # the critic learns the real items
    plain = V.ActorVAE(V.tiny_config(CLASSES))
    assert "exec" not in plain.losses(batch) and not hasattr(plain, "exec_critic")


def test_samples_chain_repetitions_to_the_requested_length(gen):
    """A long sample is several decoded repetitions (independent latents), joined without a seam."""
    ms = gen.sample("ui-prmd:m01", True, 150, 2, seed=4)
    assert all(m.joints.shape == (150, 15, 3) and np.isfinite(m.joints).all() for m in ms)
    step = np.linalg.norm(np.diff(ms[0].joints, axis=0), axis=-1).max(axis=1)
    assert step.max() < 10 * np.median(step) + 0.05
    again = gen.sample("ui-prmd:m01", True, 150, 2, seed=4)
    np.testing.assert_array_equal(ms[0].joints, again[0].joints)           # seeded end to end


@pytest.mark.slow
def test_train_step_lowers_loss():
    torch.manual_seed(0)
    model = tiny_model()
    items = V_T.motions_to_items(corpus(), model.config.classes, model.config)
    batch = V_T.collate_clips(items[::3])
    opts = V_T.make_optimizers(model)
    first = model.train_step(batch, opts)
    for _ in range(60):
        last = model.train_step(batch, opts)
    assert set(first) == {"loss", "pos", "vel", "kl", "motion"}
    assert last["loss"] < 0.8 * first["loss"], (first, last)
    assert last["pos"] < 0.6 * first["pos"], (first, last)


# ---- generator ----------------------------------------------------------------------------------
def test_same_seed_same_output_different_seeds_differ(gen):
    a = gen.sample("ui-prmd:m01", False, frames=24, num=3, seed=5)
    b = gen.sample("ui-prmd:m01", False, frames=24, num=3, seed=5)
    c = gen.sample("ui-prmd:m01", False, frames=24, num=3, seed=6)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.joints, y.joints)
    assert not np.allclose(a[0].joints, c[0].joints)
    assert not np.allclose(a[0].joints, a[1].joints)        # the samples of one call differ
    assert a[0].labels.correct is False
    r = Request(model="vae", label="m01", correct=False, frames=24, num=3, seed=5)
    d = gen.generate(r)
    np.testing.assert_array_equal(d[2].joints, a[2].joints)


def test_bad_requests_raise_user_errors(gen):
    with pytest.raises(UserError, match="no incorrect"):
        gen.sample("kimore:ex5", False, frames=20)
    with pytest.raises(UserError, match="no incorrect"):
        gen.sample("ui-prmd:m07", False, frames=20)
    with pytest.raises(UserError, match="unknown exercise"):
        gen.sample("squat", None, frames=20)
    with pytest.raises(UserError, match="frames"):
        gen.sample("m01", None, frames=0)
    with pytest.raises(UserError):
        gen.generate(Request(model="vae", label=None, frames=20))
    assert gen.tasks == frozenset({"label", "interpolate", "vary"})


def test_checkpoint_round_trip_strict(tmp_path):
    model = tiny_model()
    path = save_checkpoint(tmp_path / "vae.safetensors", model.state_dict(), "vae", model.config,
                           {"data": data_provenance(["ui-prmd"])})
    g1 = V_G.VAEGenerator(model)
    g2 = V_G.load_generator(path)
    assert g2.config == model.config and g2.classes == CLASSES
    for k, v in model.state_dict().items():
        torch.testing.assert_close(g2.model.state_dict()[k], v)
    np.testing.assert_allclose(g2.sample("m07", None, 30, 2, 1)[1].joints,
                               g1.sample("m07", None, 30, 2, 1)[1].joints, atol=1e-6)
    # a missing tensor fails strictly
    sd = dict(model.state_dict())
    sd.pop("class_bias")
    bad = save_checkpoint(tmp_path / "bad.safetensors", sd, "vae", model.config)
    with pytest.raises(CheckpointError, match="does not match"):
        V_G.load_generator(bad)
    other = save_checkpoint(tmp_path / "other.safetensors", model.state_dict(), "aegan", model.config)
    with pytest.raises(CheckpointError):
        V_G.load_generator(other)


def test_memory_tokens_give_each_frame_its_own_conditioning(tmp_path):
    """One memory token: cross-attention returns the same vector for every frame, so changing the latent
    shifts every frame's first cross-attention output equally.  K tokens: frames read different mixtures.
    K also round-trips through a checkpoint, and an out-of-range K is a CheckpointError."""
    def cross_outputs(model: V.ActorVAE, memory: torch.Tensor) -> torch.Tensor:
        layer = model.decoder.layers[0]
        q = torch.randn(1, 12, model.config.d_model, generator=torch.Generator().manual_seed(0))
        mem = model.memory_seq(memory)
        return layer.multihead_attn(layer.norm2(q), mem, mem, need_weights=False)[0][0]   # (T, D)

    torch.manual_seed(0)
    one = V.ActorVAE(replace(V.tiny_config(CLASSES), memory_tokens=1)).eval()
    many = V.ActorVAE(replace(V.tiny_config(CLASSES), memory_tokens=4)).eval()
    assert not hasattr(one, "memory_proj") and tuple(many.memory_proj.weight.shape) == (4 * 16, 16)
    m = torch.randn(2, 16, generator=torch.Generator().manual_seed(1))
    assert tuple(one.memory_seq(m).shape) == (2, 1, 16) and tuple(many.memory_seq(m).shape) == (2, 4, 16)
    with torch.no_grad():
        o1 = cross_outputs(one, m[:1])
        o4 = cross_outputs(many, m[:1])
    assert torch.allclose(o1, o1[:1].expand_as(o1), atol=1e-6)        # one token: the same at every frame
    assert (o4 - o4[:1]).abs().max() > 1e-3                           # K tokens: frames differ
    path = save_checkpoint(tmp_path / "vae.safetensors", many.state_dict(), "vae", many.config,
                           {"data": data_provenance(["ui-prmd"])})
    g = V_G.load_generator(path)
    assert g.config.memory_tokens == 4
    torch.testing.assert_close(g.model.memory_pos, many.memory_pos)
    for bad in (0, 65, 2.5, True):
        with pytest.raises(CheckpointError, match="memory_tokens"):
            V.ActorVAE(replace(V.tiny_config(CLASSES), memory_tokens=bad))


def test_linear_skip_starts_at_zero_and_adds_a_linear_repetition():
    """The skip path is zero at init (same output as without it); with weights it adds W memory + b,
    reshaped to (R, F) and resampled linearly in time for other lengths."""
    torch.manual_seed(0)
    base = V.ActorVAE(V.tiny_config(CLASSES)).eval()
    torch.manual_seed(0)
    skip = V.ActorVAE(replace(V.tiny_config(CLASSES), linear_skip=True)).eval()
    skip.load_state_dict({**base.state_dict(), **{k: v for k, v in skip.state_dict().items() if k.startswith("skip.")}})
    R, F = skip.config.rep_frames, skip.config.num_features
    m = torch.randn(3, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(skip.decode_memory(m, R), base.decode_memory(m, R))
        skip.skip.bias.copy_(torch.arange(R * F, dtype=torch.float32))          # frame r, feature f: r F + f
        diff = skip.decode_memory(m, R) - base.decode_memory(m, R)
        torch.testing.assert_close(diff, torch.arange(R * F, dtype=torch.float32).view(1, R, F).expand(3, R, F))
        T = 2 * R - 1                                                           # every other frame is a midpoint
        diff = skip.decode_memory(m, T) - base.decode_memory(m, T)
        torch.testing.assert_close(diff[0, 1, 0], torch.tensor(F / 2.0))
        torch.testing.assert_close(diff[0, -1, -1], torch.tensor(float(R * F - 1)))


def test_temperature_scales_prior_latents_only():
    """temperature t: prior latents are t * prior_scale[c] * eps for the same eps; posterior encodings and
    the decoder are untouched; out-of-range values are a CheckpointError."""
    model = tiny_model()
    hot = V.ActorVAE(replace(model.config, temperature=0.5))
    hot.load_state_dict(model.state_dict())
    hot.prior_scale.copy_(torch.linspace(0.5, 2.0, hot.prior_scale.numel()).view_as(hot.prior_scale))
    model.prior_scale.copy_(hot.prior_scale)
    g1, g2 = V_G.VAEGenerator(model.eval()), V_G.VAEGenerator(hot.eval())
    c = g1.class_index("m01", True)
    torch.testing.assert_close(g2._prior_z(c, 7, 3), 0.5 * g1._prior_z(c, 7, 3))
    torch.testing.assert_close(g1._prior_z(c, 7, 3), g1._prior(7, 3) * model.prior_scale[c])
    for bad in (0.0, 3.0, True, "0.5"):
        with pytest.raises(CheckpointError, match="temperature"):
            V.ActorVAE(replace(model.config, temperature=bad))


def test_ppca_covariance_known_answers():
    """Points on a line (variance 4 along e0) plus isotropic noise (variance 0.25): rank 1 keeps the line's
    direction with its variance and shares the rest equally (the PPCA maximum-likelihood residual); fewer
    points than rank + 1 use n - 1 directions and no residual; the floor adds to the diagonal."""
    rng = np.random.default_rng(0)
    D, n = 6, 20000
    pts = rng.normal(0, 0.5, (n, D))
    pts[:, 0] += rng.normal(0, 2.0, n)
    cov = V_T.ppca_covariance(torch.from_numpy(pts), 1).numpy()
    np.testing.assert_allclose(cov[0, 0], 4.25, rtol=0.03)
    np.testing.assert_allclose(np.diag(cov)[1:], 0.25, rtol=0.05)
    assert np.abs(cov - np.diag(np.diag(cov))).max() < 0.05
    few = torch.tensor([[0.0, 0, 0, 0, 0, 0], [1.0, 1, 0, 0, 0, 0], [2.0, 0, 0, 0, 0, 0]])
    c3 = V_T.ppca_covariance(few, 5)
    ev = torch.linalg.eigvalsh(c3)
    assert int((ev > 1e-4).sum()) == 2                                         # the points' own 2-D span
    u = torch.tensor([0.0, 0, 1, 0, 0, 0], dtype=torch.float64)
    assert float(u @ c3 @ u) < 1e-5                                            # nothing off it
    torch.testing.assert_close(V_T.ppca_covariance(few, 5, torch.full((6,), 0.5)),
                               c3 + 0.5 * torch.eye(6, dtype=torch.float64))
    one = V_T.ppca_covariance(few[:1], 3)                                       # one point: just the floor
    torch.testing.assert_close(one, 1e-6 * torch.eye(6, dtype=torch.float64))


def test_ppca_prior_is_fitted_at_export_saved_and_sampled(tmp_path):
    """prior_rank k: recentre_state adds prior_chol[c], the Cholesky factor of the PPCA covariance of the
    class's posterior means (mean posterior variance on the diagonal); samples are temperature *
    prior_chol[c] @ eps for the generator's eps; the checkpoint keeps it; rank and buffer must agree."""
    model = tiny_model(seed=1)
    cfg = replace(model.config, prior_rank=2, temperature=0.5)
    ranked = V.ActorVAE(cfg)
    ranked.load_state_dict(model.state_dict())
    ranked.set_stats(model.feat_mean, model.feat_std, model.vel_std)
    items = V_T.motions_to_items(corpus(6, seed=3), cfg.classes, cfg)
    probes = V_T.probe_batches(items, len(cfg.classes), 24)
    state = V_T.recentre_state(ranked.eval(), probes)
    C, D = len(cfg.classes), cfg.latent_dim
    assert state["prior_chol"].shape == (C, D, D)
    b = probes[1]
    c = int(b["label"][0])
    with torch.no_grad():
        mu, logvar = ranked.encode(ranked.normalise(b["features"]) * b["mask"][..., None], b["mask"].bool(),
                                   b["label"])
    want = V_T.ppca_covariance(mu, 2, logvar.exp().mean(0))
    L = state["prior_chol"][c].double()
    torch.testing.assert_close(L @ L.T, want, atol=1e-5, rtol=1e-4)
    assert torch.equal(L, torch.tril(L))
    path = save_checkpoint(tmp_path / "vae.safetensors", state, "vae", cfg, {"data": []})
    g = V_G.load_generator(path)
    assert torch.equal(g.model.prior_chol, state["prior_chol"])
    eps = g._prior(9, 3)
    torch.testing.assert_close(g._prior_z(c, 9, 3), 0.5 * eps @ state["prior_chol"][c].T)
    want_j = g._decode_memory(g._prior_z(c, 9, 3) + g.model.class_bias[c], 24, lambda f, t: None)
    lab, cor = V.split_class(cfg.classes[c])
    np.testing.assert_allclose(np.stack([m.joints for m in g.sample(lab, cor, 24, 3, 9)]), want_j, atol=1e-5)
    # the samples' covariance is temperature^2 times the fitted one (Monte Carlo, 3000 draws)
    z = g._prior_z(c, 0, 3000).double()
    emp = z.T @ z / len(z)
    assert float((emp - 0.25 * want).norm() / (0.25 * want).norm()) < 0.1
    # a rank without its factor, or a factor without a rank, is a one-line CheckpointError
    no_chol = {k: v for k, v in state.items() if k != "prior_chol"}
    save_checkpoint(tmp_path / "a.safetensors", no_chol, "vae", cfg, {"data": []})
    with pytest.raises(CheckpointError, match="prior_chol"):
        V_G.load_generator(tmp_path / "a.safetensors")
    save_checkpoint(tmp_path / "b.safetensors", state, "vae", replace(cfg, prior_rank=0), {"data": []})
    with pytest.raises(CheckpointError, match="prior_rank 0"):
        V_G.load_generator(tmp_path / "b.safetensors")
    for bad in (-1, D + 1, True, 2.0):
        with pytest.raises(CheckpointError, match="prior_rank"):
            V.ActorVAE(replace(cfg, prior_rank=bad))


def test_performer_share_known_answers():
    """z = performer effect (variance a) + repetition (variance 1 - a): the share is a; performers with one
    repetition add nothing to the within part, a class with one performer is skipped, nothing shared -> 0."""
    rng = np.random.default_rng(1)
    for a in (0.0, 0.3, 0.7):
        P, n, D = 400, 6, 4
        s = rng.normal(0, math.sqrt(a), (P, 1, D)) + rng.normal(0, math.sqrt(1 - a), (P, n, D))
        z = torch.from_numpy(s.reshape(P * n, D))
        who = torch.arange(P).repeat_interleave(n)
        got = V_T.performer_share({0: z}, {0: who})
        assert abs(got - a) < 0.05, (a, got)
    z = torch.randn(50, 3, dtype=torch.float64)
    assert V_T.performer_share({0: z}, {0: torch.arange(50)}) == 0.0             # all singletons
    assert V_T.performer_share({0: z}, {0: torch.zeros(50, dtype=torch.long)}) == 0.0   # one performer


def performer_model(**overrides):
    """The tiny model's weights under a PPCA (rank 2) + performer prior config with ``overrides``, and the
    synthetic corpus's items with their performers (3 subjects per dataset): (model, config, items,
    performers)."""
    model = tiny_model(seed=1)
    cfg = replace(model.config, prior_rank=2, performer_prior=True, **overrides)
    m2 = V.ActorVAE(cfg)
    m2.load_state_dict(model.state_dict())
    m2.set_stats(model.feat_mean, model.feat_std, model.vel_std)
    motions = [replace(m, labels=replace(m.labels, subject=f"s{i % 3}")) for i, m in enumerate(corpus(6, seed=3))]
    performers: list[str] = []
    items = V_T.motions_to_items(motions, cfg.classes, cfg, performers)
    return m2, cfg, items, performers


def test_class_shares_use_a_class_own_share_where_two_performers_repeat():
    """class_shares: a class where two or more performers have two or more repetitions gets its own
    performer_share; a class with one such performer, or absent, gets the pooled value."""
    rng = np.random.default_rng(2)
    P, n, D = 300, 5, 3
    def effects(a):
        s = rng.normal(0, math.sqrt(a), (P, 1, D)) + rng.normal(0, math.sqrt(1 - a), (P, n, D))
        return torch.from_numpy(s.reshape(P * n, D))
    who = torch.arange(P).repeat_interleave(n)
    means = {0: effects(0.9), 1: effects(0.2), 3: torch.randn(6, D, dtype=torch.float64),
             4: torch.tensor([[0.0] * D, [0.2] * D, [5.0] * D, [5.2] * D, [9.0] * D], dtype=torch.float64)}
    perf = {0: who, 1: who, 3: torch.tensor([0, 0, 0, 1, 2, 3]),          # class 3: one performer repeats
            4: torch.tensor([0, 0, 1, 1, 2])}                              # class 4: exactly two repeat
    got = V_T.class_shares(means, perf, 6, pooled=0.5)
    assert abs(got[0] - 0.9) < 0.05 and abs(got[1] - 0.2) < 0.05
    assert got[2] == 0.5 and got[3] == 0.5 and got[5] == 0.5
    assert got[4] == V_T.performer_share({4: means[4]}, {4: perf[4]}) and got[4] > 0.9


def test_class_share_prior_samples_each_class_with_its_own_share(tmp_path):
    """class_share: the export holds one share per class, sampling correlates a seed's repetitions by the
    class's share, and the loader checks the count; class_share needs performer_prior."""
    m2, cfg, items, performers = performer_model(class_share=True)
    state = V_T.recentre_state(m2.eval(), V_T.probe_batches(items, len(cfg.classes), 24, performers=performers))
    C = len(cfg.classes)
    assert state["prior_share"].shape == (C,) and bool(((state["prior_share"] >= 0) & (state["prior_share"] <= 1)).all())
    known = torch.linspace(0.1, 0.9, C)
    path = save_checkpoint(tmp_path / "vae.safetensors", dict(state, prior_share=known), "vae", cfg, {"data": []})
    g = V_G.load_generator(path)
    n = 4000
    for c in (0, C - 1):
        z1, z2 = (g._prior_z(c, 0, n, k).double() for k in (1, 2))
        L = g.model.prior_chol[c].double()
        corr = float((z1 * z2).sum(1).mean()) / float(torch.trace(L @ L.T))
        assert abs(corr - float(known[c])) < 0.06, (c, corr)
    save_checkpoint(tmp_path / "bad.safetensors", dict(state, prior_share=torch.tensor([0.5])), "vae", cfg, {"data": []})
    with pytest.raises(CheckpointError, match="prior_share"):
        V_G.load_generator(tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match="class_share"):
        V.ActorVAE(replace(cfg, performer_prior=False))


def test_performer_means_known_answer():
    """performer_means: the mean latent of each performer of each class, padded to the most performers."""
    means = {0: torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 5.0]]), 2: torch.tensor([[2.0, 2.0]])}
    who = {0: torch.tensor([7, 7, 9]), 2: torch.tensor([4])}
    pm, pc = V_T.performer_means(means, who, 3)
    assert pm.shape == (3, 2, 2) and pc.tolist() == [2, 0, 1]
    torch.testing.assert_close(pm[0], torch.tensor([[2.0, 0.0], [0.0, 5.0]]))
    torch.testing.assert_close(pm[2, 0], torch.tensor([2.0, 2.0]))
    assert float(pm[1].abs().sum()) == 0.0 and float(pm[2, 1].abs().sum()) == 0.0


def test_performer_mixture_centres_a_motion_on_one_recorded_performer(tmp_path):
    """performer_mixture h: the export stores each class's performer means; a sample's repetitions share
    one recorded performer (picked by the seed; every performer gets picked) plus h x the Gaussian
    performer part and the repetition part, so z - m_p has (h^2 a + 1 - a) x the prior's variance; the
    same seed gives the same motion; the loader checks the tensors; off: no performer means."""
    m2, cfg, items, performers = performer_model(class_share=True, performer_mixture=0.5)
    C, D = len(cfg.classes), cfg.latent_dim
    m2.mu_shift.copy_(torch.randn(C, D))                           # a checkpoint refitted a second time
    probes = V_T.probe_batches(items, len(cfg.classes), 24, performers=performers)
    state = V_T.recentre_state(m2.eval(), probes)
    assert state["performer_means"].shape[0] == C and state["performer_means"].shape[2] == D
    assert state["performer_count"].tolist() == [3] * C            # 3 subjects per class (one dataset each)
    with torch.no_grad():                                          # known answer: exported latents, per performer
        for b in probes:
            c = int(b["label"][0])
            mu, _ = m2.encode(m2.normalise(b["features"]) * b["mask"][..., None], b["mask"].bool(), b["label"])
            z = mu - mu.mean(0)                                    # = encoder output - the new mu_shift[c]
            want = torch.stack([z[b["performer"] == k].mean(0) for k in torch.unique(b["performer"])])
            torch.testing.assert_close(state["performer_means"][c, :3], want, atol=1e-4, rtol=1e-4)
    far = torch.zeros(C, 3, D)
    far[:, 0, 0], far[:, 1, 0], far[:, 2, 0] = 50.0, -50.0, 0.0    # three performers far apart on axis 0
    known = dict(state, performer_means=far, prior_share=torch.full((C,), 0.6))
    path = save_checkpoint(tmp_path / "vae.safetensors", known, "vae", cfg, {"data": []})
    g = V_G.load_generator(path)
    c, n = 0, 3000
    z1, z2 = (g._prior_z(c, 0, n, k).double() for k in (1, 2))
    side1, side2 = torch.round(z1[:, 0] / 50.0), torch.round(z2[:, 0] / 50.0)
    assert bool((side1 == side2).all())                            # one performer per motion
    share = [float((side1 == v).double().mean()) for v in (-1.0, 0.0, 1.0)]
    assert all(abs(x - 1 / 3) < 0.05 for x in share), share
    L = g.model.prior_chol[c].double()
    var = float(torch.trace(L @ L.T))
    picked = torch.where(side1 > 0, 0, torch.where(side1 < 0, 1, 2))                   # row of far[c]
    rest = z1 - far[c, picked].double()
    assert abs(float(rest.pow(2).sum(1).mean()) / var - (0.25 * 0.6 + 0.4)) < 0.05
    lab, cor = V.split_class(cfg.classes[c])
    np.testing.assert_allclose(g.sample(lab, cor, 60, 2, 5)[1].joints, g.sample(lab, cor, 60, 1, 6)[0].joints, atol=1e-5)
    for bad, bcfg in (({k: v for k, v in known.items() if k != "performer_means"}, cfg),
                      (dict(known, performer_count=torch.full((C,), 4, dtype=torch.long)), cfg),
                      (dict(known, performer_count=torch.full((C,), -1, dtype=torch.long)), cfg),
                      (dict(known, performer_count=torch.full((C,), 3, dtype=torch.int32)), cfg),
                      (dict(known, performer_means=torch.zeros(C, 3, D + 1)), cfg),
                      (known, replace(cfg, performer_mixture=0.0))):     # performer tensors, no mixture
        save_checkpoint(tmp_path / "bad.safetensors", bad, "vae", bcfg, {"data": []})
        with pytest.raises(CheckpointError, match="performer"):
            V_G.load_generator(tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match="performer_mixture"):
        V.ActorVAE(replace(cfg, performer_prior=False, class_share=False))
    off = V_T.recentre_state(V.ActorVAE(replace(cfg, performer_mixture=0.0)).eval(),
                             V_T.probe_batches(items, len(cfg.classes), 24, performers=performers))
    assert "performer_means" not in off and "performer_count" not in off


def test_performer_prior_shares_part_of_a_motions_latents(tmp_path):
    """performer_prior: the export fits prior_share from probes with performer ids (the training corpus
    gives each item its performer); the repetitions of one seed correlate by that share, every repetition
    keeps the prior's variance, other seeds are independent; the checkpoint keeps it and checks it."""
    m2, cfg, items, performers = performer_model()
    assert len(performers) == len(items) and len(set(performers)) == 6           # 3 subjects x 2 datasets
    probes = V_T.probe_batches(items, len(cfg.classes), 24, performers=performers)
    assert all("performer" in b and len(b["performer"]) == len(b["label"]) for b in probes)
    with pytest.raises(ValueError, match="performer"):
        V_T.recentre_state(m2.eval(), V_T.probe_batches(items, len(cfg.classes), 24))
    state = V_T.recentre_state(m2.eval(), probes)
    assert state["prior_share"].shape == (1,) and 0.0 <= float(state["prior_share"][0]) <= 1.0
    state["prior_share"] = torch.tensor([0.6])                  # a known share for the sampling check
    path = save_checkpoint(tmp_path / "vae.safetensors", state, "vae", cfg, {"data": []})
    g = V_G.load_generator(path)
    c = g.class_index("m01", True)
    n = 4000
    z0, z1, z2 = (g._prior_z(c, 0, n, k).double() for k in (0, 1, 2))
    other = g._prior_z(c, n, n, 1).double()                      # seeds n .. 2n - 1
    L = g.model.prior_chol[c].double()
    var = float(torch.trace(L @ L.T))
    def corr(a, b):
        return float((a * b).sum(1).mean()) / var
    assert abs(float(z1.pow(2).sum(1).mean()) / var - 1.0) < 0.08          # the prior's variance
    assert abs(corr(z1, z2) - 0.6) < 0.06 and abs(corr(z0, z1) - 0.6) < 0.06
    assert abs(corr(z1, other)) < 0.06
    lab, cor = V.split_class(cfg.classes[c])
    np.testing.assert_allclose(g.sample(lab, cor, 60, 2, 5)[1].joints, g.sample(lab, cor, 60, 1, 6)[0].joints, atol=1e-5)
    for bad, match in (({k: v for k, v in state.items() if k != "prior_share"}, "prior_share"),
                       (dict(state, prior_share=torch.tensor([1.5])), "outside")):
        save_checkpoint(tmp_path / "bad.safetensors", bad, "vae", cfg, {"data": []})
        with pytest.raises(CheckpointError, match=match):
            V_G.load_generator(tmp_path / "bad.safetensors")
    save_checkpoint(tmp_path / "one.safetensors", dict(state, prior_share=torch.tensor([1.0])), "vae", cfg,
                    {"data": []})                                   # everything shared: a valid export
    assert float(V_G.load_generator(tmp_path / "one.safetensors").model.prior_share[0]) == 1.0
    save_checkpoint(tmp_path / "bad.safetensors", state, "vae", replace(cfg, performer_prior=False), {"data": []})
    with pytest.raises(CheckpointError, match="performer_prior"):
        V_G.load_generator(tmp_path / "bad.safetensors")


# ---- interpolation ------------------------------------------------------------------------------
def test_lerp_slerp_endpoints_and_norm():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 64, generator=g), torch.randn(2, 64, generator=g)
    b = b / b.norm(dim=-1, keepdim=True) * a.norm(dim=-1, keepdim=True)          # equal norms
    t = weights(9)
    for f in (lerp, slerp):
        p = f(a, b, t)
        assert p.shape == (9, 2, 64)
        assert torch.equal(p[0], a) and torch.equal(p[-1], b)
    s = slerp(a, b, t)
    torch.testing.assert_close(s.norm(dim=-1), a.norm(dim=-1).expand(9, -1))
    assert (lerp(a, b, t)[4].norm(dim=-1) < a.norm(dim=-1) * 0.95).all()       # lerp cuts the sphere
    # known answer: halfway between orthogonal unit vectors
    e1, e2 = torch.tensor([1.0, 0, 0]), torch.tensor([0, 1.0, 0])
    torch.testing.assert_close(slerp(e1, e2, torch.tensor([0.5]))[0],
                               torch.tensor([1.0, 1.0, 0]) / math.sqrt(2))
    # nearly parallel endpoints do not blow up
    assert torch.isfinite(slerp(e1, e1 * 2, t)).all()
    assert interpolate(e1, e2, 3, spherical=True).shape == (3, 3)
    with pytest.raises(ValueError):
        weights(1)


@pytest.mark.parametrize("spherical", [False, True])
def test_interpolation_endpoints_equal_endpoint_decodes(gen, spherical):
    # two seeds of one class
    path = gen.interpolate_path(V_G.Endpoint("m01", False, 3), V_G.Endpoint("m01", False, 9), steps=5, frames=24,
                                spherical=spherical)
    assert len(path) == 5 and path[0].joints.shape == (24, 15, 3)
    np.testing.assert_allclose(path[0].joints, gen.sample("m01", False, 24, 1, 3)[0].joints, atol=1e-5)
    np.testing.assert_allclose(path[-1].joints, gen.sample("m01", False, 24, 1, 9)[0].joints, atol=1e-5)
    assert not np.allclose(path[2].joints, path[0].joints)
    # correct <-> incorrect of one exercise, and two different classes
    path = gen.interpolate_path(V_G.Endpoint("m01", True, 1), V_G.Endpoint("m01", False, 1), 4, 24, spherical)
    np.testing.assert_allclose(path[0].joints, gen.sample("m01", True, 24, 1, 1)[0].joints, atol=1e-5)
    np.testing.assert_allclose(path[-1].joints, gen.sample("m01", False, 24, 1, 1)[0].joints, atol=1e-5)
    assert path[0].labels.correct is True and path[-1].labels.correct is False
    # deterministic
    again = gen.interpolate_path(V_G.Endpoint("m01", True, 1), V_G.Endpoint("m01", False, 1), 4, 24, spherical)
    np.testing.assert_array_equal(again[2].joints, path[2].joints)


def test_interpolation_between_encoded_motions_and_request(gen):
    rng = np.random.default_rng(7)
    a = synthetic("ui-prmd:m01", True, 30, rng)
    b = synthetic("ui-prmd:m07", True, 30, rng)
    path = gen.interpolate_path(V_G.Endpoint(motion=a), V_G.Endpoint(motion=b), steps=3, frames=30)
    rec_a = gen.vary(a, num=1, seed=0, spread=0.0, frames=30)[0]
    rec_b = gen.vary(b, num=1, seed=0, spread=0.0, frames=30)[0]
    np.testing.assert_allclose(path[0].joints, rec_a.joints, atol=1e-5)
    np.testing.assert_allclose(path[-1].joints, rec_b.joints, atol=1e-5)
    assert path[0].labels.label == "ui-prmd:m01" and path[-1].labels.label == "ui-prmd:m07"
    r = Request(model="vae", label="m01", correct=True, seed=2, to_label="ui-prmd:m07", to_seed=4, steps=6,
                frames=20, spherical=True)
    out = gen.interpolate(r)
    assert len(out) == 6
    np.testing.assert_allclose(out[-1].joints, gen.sample("m07", True, 20, 1, 4)[0].joints, atol=1e-5)
    via_generate = gen.generate(replace(r, task="interpolate"))
    np.testing.assert_array_equal(via_generate[3].joints, out[3].joints)


def test_vary_around_a_real_motion(gen):
    rng = np.random.default_rng(3)
    m = synthetic("ui-prmd:m01", True, 30, rng)
    same = gen.vary(m, num=3, seed=0, spread=0.0)
    assert len(same) == 3 and same[0].joints.shape == (30, 15, 3)
    np.testing.assert_array_equal(same[0].joints, same[2].joints)   # spread 0: the reconstruction
    v1 = gen.vary(m, num=3, seed=1, spread=1.0)
    v2 = gen.vary(m, num=3, seed=1, spread=1.0)
    np.testing.assert_array_equal(v1[1].joints, v2[1].joints)
    assert not np.allclose(v1[0].joints, v1[1].joints)
    # a motion with an unknown label gets the best-reconstructing class; NaN gaps are filled
    j = m.joints.copy()
    j[5:8, COMMON.index("left_wrist")] = np.nan
    odd = Motion(j, COMMON, 20.0, MotionLabels(label="user:file"))
    out = gen.vary(odd, num=2, seed=0, frames=40)
    assert out[0].joints.shape == (40, 15, 3) and np.isfinite(out[0].joints).all()
    assert out[0].labels.label in gen.labels
    # through the Generator protocol
    via = gen.generate(Request(model="vae", source=m, num=2, seed=1, frames=30))
    np.testing.assert_array_equal(via[1].joints, v1[1].joints)
    with pytest.raises(UserError, match="spread"):
        gen.vary(m, spread=float("nan"))
    with pytest.raises(UserError):
        gen.vary(Motion(np.zeros((3, 15, 3), np.float32)))


# ---- the "Action -> motion (VAE)" tab --------------------------------------------------------------
def _tab_demo(ckpt_dir, data_root=None):
    import gradio as gr

    from motionviz.ui import vae_tab
    from motionviz.ui.common import AppContext

    with gr.Blocks() as demo:
        ctx = AppContext(checkpoint_dir=ckpt_dir, data_root=data_root, models=["vae"], motions=gr.State([]),
                         demo=demo)
        vae_tab.build(ctx)
    return demo


def _fn(demo, api_name: str):
    for f in demo.fns.values():
        if f.api_name == api_name:
            return f.fn
    raise KeyError(api_name)


def test_tab_builds_and_callbacks_return_figures(ckpt_dir, tmp_path):
    import json

    import gradio as gr

    from motionviz.ui import vae_tab as T

    demo = _tab_demo(ckpt_dir)
    names = {f.api_name for f in demo.fns.values()}
    assert {"vae_interpolate", "vae_slide", "vae_sample", "vae_vary", "vae_download"} <= names
    interp = _fn(demo, "vae_interpolate")
    args = [T.SEED_SOURCE, "ui-prmd:m01", T.CORRECT, 3, 1, None,
            T.SEED_SOURCE, "ui-prmd:m01", T.INCORRECT, 5, 1, None, True, 4, 24, 0.0, []]
    state, view, strip, info = interp(*args)
    assert len(json.loads(view)["motions"]) == 1 and "ui-prmd:m01" in info
    assert [m["title"] for m in json.loads(strip)["motions"]] == ["t=0.00", "t=0.33", "t=0.67", "t=1.00"]
    assert len(state["steps"]) == 4 and state["steps"][0].joints.shape == (24, 15, 3)
    # the slider decodes the exact position: t = 0 is the first step, t = 0.5 lies between the ends
    gen = V_G.load_generator(ckpt_dir / "vae.safetensors")
    m0 = T.motion_at(gen, state["segment"], 0.0, 24)
    np.testing.assert_allclose(m0.joints, state["steps"][0].joints, atol=1e-5)
    np.testing.assert_allclose(m0.joints, gen.sample("m01", True, 24, 1, 3)[0].joints, atol=1e-5)
    fig, text = _fn(demo, "vae_slide")(state, 0.5)
    assert "t = 0.50" in json.loads(fig)["motions"][0]["title"] and "0.50" in text
    mid = T.motion_at(gen, state["segment"], 0.5, 24).joints
    assert not np.allclose(mid, m0.joints) and not np.allclose(mid, state["steps"][-1].joints)
    # bad input -> gr.Error (no traceback)
    for bad in ([None, 2], [-1, 3]):      # no exercise; negative seed
        a = list(args)
        a[1 if bad[0] is None else 3] = bad[0]
        with pytest.raises(gr.Error):
            interp(*a)
    with pytest.raises(gr.Error, match="session"):
        interp(*([T.SESSION_SOURCE] + args[1:]))
    with pytest.raises(UserError, match="data folder"):
        T.make_endpoint(gen, T.DATASET_SOURCE, "m01", T.CORRECT, 0, 1, None, [], "A", None)
    # samples, variations of a session motion, interpolation from a session motion, downloads
    fig, seed, samples, session, *_ = _fn(demo, "vae_sample")("m01", T.CORRECT, 2, 24, 7, False, [])
    assert [m["title"] for m in json.loads(fig)["motions"]] == ["seed 7", "seed 8"]
    assert seed == 7 and len(samples) == 2 and len(session) == 2
    fig, variations, session, *_ = _fn(demo, "vae_vary")(session, 0, 2, 1.0, 0)
    assert [m["role"] for m in json.loads(fig)["motions"]] == ["input", "output", "output"]
    assert len(variations) == 3 and len(session) == 4
    state2, view2, _, _ = interp(*([T.SESSION_SOURCE, None, None, 0, 1, 0] + args[6:16] + [session]))
    assert json.loads(view2)["motions"] and len(state2["steps"]) == 4
    files = _fn(demo, "vae_download")(T.DOWNLOAD_CHOICES[1], ["npy"], state, 0.5, samples, variations)
    assert len(files) == 4 and all(f.endswith(".npy") for f in files)
    files = _fn(demo, "vae_download")(T.DOWNLOAD_CHOICES[0], ["npy", "json"], state, 0.5, [], [])
    assert len(files) == 2
    with pytest.raises(gr.Error, match="sample"):
        _fn(demo, "vae_download")(T.DOWNLOAD_CHOICES[2], ["npy"], state, 0.5, [], [])


def test_tab_real_dataset_endpoint(gen, data_root):
    from motionviz.ui import vae_tab as T

    e = T.make_endpoint(gen, T.DATASET_SOURCE, "m01", T.INCORRECT, 0, 2, None, [], "A", data_root)
    assert e.motion is not None and e.motion.labels.label == "ui-prmd:m01" and e.motion.labels.correct is False
    path = gen.interpolate_path(e, V_G.Endpoint("m01", True, 0), steps=3, frames=20)
    assert len(path) == 3 and np.isfinite(path[1].joints).all()
    with pytest.raises(UserError, match="between 1 and"):
        T.make_endpoint(gen, T.DATASET_SOURCE, "m01", T.INCORRECT, 0, 10_000, None, [], "A", data_root)


def test_motion_level_interpolation_helpers(gen):
    from motionviz.generators import interpolate as I

    p = I.between_seeds("m01", 3, 9, correct=False, steps=5, frames=24, gen=gen)
    np.testing.assert_allclose(p[-1].joints, gen.sample("m01", False, 24, 1, 9)[0].joints, atol=1e-5)
    arr = I.path_array(p)
    assert arr.shape == (5, 24, 15, 3) and arr.dtype == np.float32
    q = I.between_classes("m01", "m01", True, False, seed=2, steps=4, frames=24, spherical=True, gen=gen)
    np.testing.assert_allclose(q[0].joints, gen.sample("m01", True, 24, 1, 2)[0].joints, atol=1e-5)
    np.testing.assert_allclose(q[-1].joints, gen.sample("m01", False, 24, 1, 2)[0].joints, atol=1e-5)
    again = I.between_classes("m01", "m01", True, False, seed=2, steps=4, frames=24, spherical=True, gen=gen)
    np.testing.assert_array_equal(I.path_array(again), I.path_array(q))
    rng = np.random.default_rng(5)
    a, b = synthetic("ui-prmd:m01", True, 30, rng), synthetic("ui-prmd:m07", True, 30, rng)
    r = I.between_motions(a, b, steps=3, frames=30, gen=gen)
    np.testing.assert_allclose(r[0].joints, gen.vary(a, 1, 0, 0.0, 30)[0].joints, atol=1e-5)
    with pytest.raises(UserError, match="seed"):
        I.between_seeds("m01", -1, 2, gen=gen)
    with pytest.raises(UserError, match="unknown exercise"):
        I.between_classes("m01", "nope", gen=gen)


def test_bench_reads_the_checkpoint(ckpt_dir):
    out = V_E.bench(quick=True)
    assert out["checkpoint"] == "vae.safetensors" and out["frames"] == 60
    for k in ("seconds_per_motion_batch1", "seconds_per_motion_batch16"):
        assert 0 < out[k] < 5.0


def test_sanity_numbers_against_held_out_data(gen, data_root):
    out = V_E.sanity(gen, data_root, per_class=2, frames=24, steps=4, max_real=4)
    assert out["classes_checked"] == 4 and out["samples"] == 8 and out["chance"] == 0.25
    assert 0 < out["bone_cv"]["real"] < 0.2 and out["bone_cv"]["samples"] >= 0
    assert 0 <= out["nearest_centroid_accuracy"] <= 1 and 0 <= out["frozen_fraction"] <= 1
    assert set(out["interpolation"]) == {"seeds_lerp", "seeds_slerp", "correct_to_incorrect_lerp",
                                         "correct_to_incorrect_slerp"}
    assert out["interpolation"]["seeds_lerp"]["max_over_mean_step"] >= 1.0


def test_recentre_moves_class_means_into_the_bias_and_keeps_reconstructions(tmp_path):
    model = tiny_model(seed=1)
    motions = corpus(4, seed=2)
    items = V_T.motions_to_items(motions, model.config.classes, model.config)
    probes = V_T.probe_batches(items, len(model.config.classes), 24, per_class=4)
    assert len(probes) == len(model.config.classes)
    # give the encoder a class-dependent offset so that there is something to move
    with torch.no_grad():
        model.mu_token.add_(torch.randn(model.mu_token.shape) * 2.0)
    state = V_T.recentre_state(model, probes)
    assert state["mu_shift"].abs().sum() > 0
    save_checkpoint(tmp_path / "vae.safetensors", state, "vae", model.config, {"data": []})
    g0, g1 = V_G.VAEGenerator(model), V_G.load_generator(tmp_path / "vae.safetensors")
    assert torch.equal(g1.model.mu_shift, state["mu_shift"])
    for b in probes:
        mask = b["mask"]
        x = model.normalise(b["features"]) * mask[..., None]
        with torch.no_grad():
            mu0, _ = g0.model.encode(x, mask, b["label"])
            mu1, _ = g1.model.encode(x, mask, b["label"])
            rec0 = g0.model.decode(mu0, b["label"], x.shape[1], mask)
            rec1 = g1.model.decode(mu1, b["label"], x.shape[1], mask)
        torch.testing.assert_close(rec1, rec0, atol=1e-4, rtol=1e-4)                  # same reconstructions
        assert mu1.mean(0).norm() < 1e-4 < mu0.mean(0).norm()                          # class mean at 0
    # the fitted prior: positive per-class scales, used by sampling (and so by seed interpolation)
    scale = state["prior_scale"]
    assert scale.shape == state["class_bias"].shape and bool((scale > 0).all())
    assert not torch.allclose(scale, torch.ones_like(scale))
    c = g1.class_index("m01", False)
    eps = g1._prior(5, 2)
    want = g1._decode_memory(eps * scale[c] + g1.model.class_bias[c], 24, lambda f, t: None)
    np.testing.assert_allclose(np.stack([m.joints for m in g1.sample("m01", False, 24, 2, 5)]), want, atol=1e-5)
    # a checkpoint without the fitted buffers (the tests' state_dict checkpoints) samples from N(0, I)
    legacy = {k: v for k, v in state.items() if k not in ("mu_shift", "prior_scale")}
    save_checkpoint(tmp_path / "old.safetensors", legacy, "vae", model.config, {"data": []})
    assert torch.equal(V_G.load_generator(tmp_path / "old.safetensors").model.prior_scale, torch.ones_like(scale))
    # from before the posterior heads (no posterior_heads field, no head tensors; none is shipped): a
    # one-line CheckpointError, not a traceback
    _, meta = load_checkpoint(tmp_path / "vae.safetensors")
    stored = json.loads(meta["config"])
    assert stored["posterior_heads"] is True
    no_heads = {k: v for k, v in state.items() if "_head." not in k}
    old_cfg = {k: v for k, v in stored.items() if k != "posterior_heads"}
    save_checkpoint(tmp_path / "old.safetensors", no_heads, "vae", old_cfg, {"data": []})
    with pytest.raises(CheckpointError, match="does not match the VAE architecture") as e:
        V_G.load_generator(tmp_path / "old.safetensors")
    assert "\n" not in str(e.value)
    save_checkpoint(tmp_path / "old.safetensors", no_heads, "vae", dict(stored, posterior_heads=False), {"data": []})
    with pytest.raises(CheckpointError, match="posterior_heads"):
        V_G.load_generator(tmp_path / "old.safetensors")


def test_each_sample_has_its_own_seed(gen):
    """Sample i of a batch asked with seed s is the single sample asked with seed s + i (every repetition)."""
    batch = gen.sample("ui-prmd:m01", True, 90, 3, seed=21)
    for i, m in enumerate(batch):
        alone = gen.sample("ui-prmd:m01", True, 90, 1, seed=21 + i)[0]
        np.testing.assert_allclose(m.joints, alone.joints, atol=1e-5)


@pytest.mark.slow
def test_refit_prior_cli_keeps_the_weights_and_adds_the_ppca_prior(tmp_path, data_root, capsys):
    """``train vae --refit-prior SRC --set prior_rank=K --out DST`` on a tiny checkpoint trained on the real
    IntelliRehabDS training split: same network weights, a prior_chol with the rank in its config and a
    note in its metadata; settings other than the prior's, another model or no --out: exit 2, one line."""
    from motionviz.cli import main
    from motionviz.core.checkpoint import read_metadata

    src, dst = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    common = ["--data-root", str(data_root), "--threads", "1", "--no-progress"]
    assert main(["train", "vae", "--tiny", "--steps", "2", "--datasets", "irds", "--out", str(src),
                 "--runs-dir", str(tmp_path / "runs"), *common]) == 0
    assert main(["train", "vae", "--refit-prior", str(src), "--set", "prior_rank=3", "--set", "temperature=0.8",
                 "--set", "performer_prior=true", "--out", str(dst), *common]) == 0
    a, b = V_G.load_generator(src), V_G.load_generator(dst)
    assert b.config.prior_rank == 3 and b.config.temperature == 0.8 and a.config.prior_rank == 0
    assert b.model.prior_chol.shape == (len(b.classes), b.config.latent_dim, b.config.latent_dim)
    assert b.config.performer_prior and 0.0 <= float(b.model.prior_share[0]) <= 1.0
    sa, sb = a.model.state_dict(), b.model.state_dict()
    for k in sa:
        if k != "class_bias":                       # the bias takes the (re-estimated) class means only
            torch.testing.assert_close(sb[k], sa[k])
    assert "prior_rank 3" in read_metadata(dst)["prior"]
    assert b.sample(b.classes[0].split("/")[0], None if "/" not in b.classes[0] else
                    b.classes[0].endswith("/correct"), 40, 2, 0)[0].num_frames == 40
    capsys.readouterr()
    for argv, match in (
            (["train", "vae", "--refit-prior", str(src), "--set", "lr=0.1", "--out", str(dst)], "lr"),
            (["train", "diffusion", "--refit-prior", str(src), "--out", str(dst)], "vae"),
            (["train", "vae", "--refit-prior", str(src)], "--out"),
            (["train", "vae", "--refit-prior", str(tmp_path / "none.safetensors"), "--out", str(dst)], "none")):
        rc = main(argv + common)
        err = capsys.readouterr().err.strip()
        assert rc == 2 and match in err and "\n" not in err and "Traceback" not in err, (argv, err)
