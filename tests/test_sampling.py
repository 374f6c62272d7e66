"""Noise schedule and samplers (motionviz.core.sampling): no weights, analytic denoisers."""

from __future__ import annotations

import math

import pytest
import torch

from motionviz.core.sampling import Schedule, cosine_alpha_bar, ddim_sample, ddpm_sample, guided, sample, timesteps_for


def test_cosine_schedule_properties():
    T = 1000
    ab = cosine_alpha_bar(T)
    assert ab.shape == (T,) and ab.dtype == torch.float64
    assert bool((ab[1:] < ab[:-1]).all()), "alpha_bar must strictly decrease"
    assert 0.999 < float(ab[0]) <= 1.0
    assert float(ab[-1]) < 1e-4
    s = Schedule(T)
    assert bool((s.betas > 0).all()) and float(s.betas.max()) <= 0.999 + 1e-9
    # cumulative product of (1 - beta) reproduces alpha_bar
    assert torch.allclose(torch.cumprod(1 - s.betas, 0), ab, rtol=1e-9, atol=1e-12)
    # cosine shape: alpha_bar(T/2) is close to cos^2(pi/4) = 0.5
    assert abs(float(ab[T // 2 - 1]) - 0.5) < 0.02
    with pytest.raises(ValueError):
        cosine_alpha_bar(0)


def test_q_sample_statistics():
    s = Schedule(100)
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((20000, 1), 2.0)
    t = torch.full((20000,), 60, dtype=torch.long)
    xt = s.q_sample(x0, t, torch.randn(x0.shape, generator=g))
    ab = float(s.alpha_bar[60])
    assert abs(float(xt.mean()) - 2.0 * math.sqrt(ab)) < 0.03
    assert abs(float(xt.var()) - (1 - ab)) < 0.03


@pytest.mark.parametrize("steps", [1, 2, 3, 7, 20, 50, 999, 1000])
def test_timesteps_any_number(steps):
    ts = timesteps_for(1000, steps)
    assert len(ts) == steps
    assert ts[0] == 999 and (steps == 1 or ts[-1] == 0)
    assert all(a > b for a, b in zip(ts, ts[1:]))


def test_timesteps_invalid():
    for bad in (0, 1001, -3):
        with pytest.raises(ValueError):
            timesteps_for(1000, bad)


@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("steps", [1, 4, 100])
def test_oracle_denoiser_recovers_target(eta, steps):
    """A denoiser that always predicts the same clean sample must give back exactly that sample."""
    s = Schedule(100)
    target = torch.linspace(-1, 1, 12).reshape(2, 6)
    out = sample(lambda x, t: target.expand_as(x), (2, 6), s, steps, torch.Generator().manual_seed(1), eta=eta)
    assert torch.allclose(out, target, atol=1e-5)


def _gaussian_denoiser(s: Schedule, var: float):
    """Optimal x0 predictor E[x0 | x_t] for data ~ N(0, var)."""

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = s.alpha_bar[t].to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
        return ab.sqrt() * var / (ab * var + 1 - ab) * x

    return denoise


@pytest.mark.parametrize("sampler,steps,tol", [("ddim", 50, 0.03), ("ddim", 100, 0.03), ("ddpm", None, 0.03),
                                               ("ddim", 10, 0.1), ("ddpm", 25, 0.1)])
def test_samplers_reproduce_gaussian_data(sampler, steps, tol):
    """With the exact denoiser of N(0, 0.25) data, DDIM and DDPM with many (or all T) steps produce samples
    with that variance; with few steps (point estimate of x0 over big jumps) they come close."""
    s = Schedule(100)
    g = torch.Generator().manual_seed(3)
    den = _gaussian_denoiser(s, 0.25)
    if sampler == "ddim":
        x = ddim_sample(den, (20000, 1), s, steps, g)
    else:
        x = ddpm_sample(den, (20000, 1), s, steps, g)
    assert abs(float(x.mean())) < 0.02
    assert abs(float(x.std()) - 0.5) < tol, float(x.std())


def test_seed_determinism():
    s = Schedule(50)
    den = _gaussian_denoiser(s, 1.0)
    for eta in (0.0, 1.0):
        a = sample(den, (3, 8), s, 10, torch.Generator().manual_seed(7), eta=eta)
        b = sample(den, (3, 8), s, 10, torch.Generator().manual_seed(7), eta=eta)
        c = sample(den, (3, 8), s, 10, torch.Generator().manual_seed(8), eta=eta)
        assert torch.equal(a, b)
        assert not torch.allclose(a, c)


def test_guidance_combination_one_batched_forward():
    calls = []

    def model(x, t, drop):
        calls.append(x.shape[0])
        cond, uncond = torch.full_like(x, 3.0), torch.full_like(x, 1.0)
        return torch.where(drop.reshape(-1, 1), uncond, cond)

    x, t = torch.zeros(4, 5), torch.zeros(4, dtype=torch.long)
    out = guided(model, 2.5)(x, t)
    assert calls == [8], "conditioned and unconditioned rows go through one forward"
    assert torch.allclose(out, torch.full_like(x, 1.0 + 2.5 * (3.0 - 1.0)))
    calls.clear()
    assert torch.allclose(guided(model, 1.0)(x, t), torch.full_like(x, 3.0)) and calls == [4]
    calls.clear()
    assert torch.allclose(guided(model, 0.0)(x, t), torch.full_like(x, 1.0)) and calls == [4]
    with pytest.raises(ValueError):
        guided(model, float("nan"))


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_masked_generation_keeps_known_exactly(eta):
    s = Schedule(100)
    g = torch.Generator().manual_seed(0)
    known = torch.randn(2, 16, 6, generator=g)
    mask = torch.zeros(2, 16, 6, dtype=torch.bool)
    mask[:, :3] = True          # first frames (in-betweening)
    mask[:, -3:] = True         # last frames
    mask[:, :, 0] = True        # one feature all the time (body-part editing)

    def den(x, t):              # a denoiser that does not know the data at all
        return 0.5 * x

    out = sample(den, known.shape, s, 20, g, eta=eta, known=known, mask=mask)
    assert torch.equal(out[mask], known[mask])
    assert not torch.allclose(out[~mask], known[~mask])
    with pytest.raises(ValueError):
        sample(den, known.shape, s, 5, g, mask=mask)


def test_progress_reports_every_step():
    seen = []
    s = Schedule(100)
    sample(lambda x, t: x * 0, (1, 2), s, 7, torch.Generator().manual_seed(0),
           progress=lambda f, d: seen.append(f))
    assert len(seen) == 7 and seen[-1] == pytest.approx(1.0) and seen == sorted(seen)


def test_guidance_with_an_extra_term_for_one_condition():
    """uncond + s (cond - uncond) + s_c (cond - cond_without_part), from one batched forward of 3B rows."""
    import torch

    from motionviz.core.sampling import guided

    calls = []

    def model(x, t, drop, drop_part=None):
        calls.append(x.shape[0])
        out = torch.full_like(x, 3.0)                         # conditioned
        out[drop] = 1.0                                       # unconditioned
        if drop_part is not None:
            out[drop_part] = 2.0                              # every condition but the part
        return out

    x, t = torch.zeros(4, 5), torch.zeros(4, dtype=torch.long)
    y = guided(model, 2.0, 1.5)(x, t)
    assert torch.allclose(y, torch.full_like(x, 1.0 + 2.0 * (3 - 1) + 1.5 * (3 - 2)))
    assert calls == [12]
    assert torch.allclose(guided(model, 2.0)(x, t), torch.full_like(x, 5.0)) and calls[-1] == 8


@pytest.mark.parametrize("part", [0.0, 1.5])
@pytest.mark.parametrize("per_row", [False, True])
def test_plain_features_take_the_conditional_prediction(part, per_row):
    """``plain`` features (the diffusion model's log-duration) are the conditional prediction, not
    extrapolated; the others are guided as before; still one batched forward."""
    calls = []

    def model(x, t, drop, drop_part=None):
        calls.append(x.shape[0])
        out = torch.full_like(x, 3.0)
        out[drop] = 1.0
        if drop_part is not None:
            out[drop_part] = 2.0
        return out

    x, t = torch.zeros(4, 5), torch.zeros(4, dtype=torch.long)
    scale = torch.full((4,), 2.0) if per_row else 2.0
    ps = torch.full((4,), part) if per_row else part
    y = guided(model, scale, ps, plain=slice(-1, None))(x, t)
    assert calls == [12 if part else 8]
    assert torch.allclose(y[:, :-1], torch.full((4, 4), 1.0 + 2.0 * (3 - 1) + part * (3 - 2)))
    assert torch.allclose(y[:, -1], torch.full((4,), 3.0)), "the plain feature is the conditional one"
    assert torch.allclose(guided(model, scale, ps)(x, t)[:, -1], y[:, 0]), "without plain it is guided"
    # scale 0 is the unconditional model: its plain features too, on both paths
    zero = torch.zeros(4) if per_row else 0.0
    y0 = guided(model, zero, ps, plain=slice(-1, None))(x, t)
    assert torch.allclose(y0[:, -1], torch.full((4,), 1.0))
