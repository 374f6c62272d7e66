"""The distilled few-step diffusion generator (1, 2 or 4 sampler steps) and its loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from ..core.errors import UserError
from ..models.diffusion_fast import KIND, FastConfig, StudentDenoiser, allowed_steps, student_times
from . import diffusion as teacher_mod_G
from .diffusion import DiffusionGenerator
from .registry import DEFAULT_STEPS as _STEPS
from .registry import Request
from .text_encoders import check_encoder

#: Steps the shipped student is sampled with when a request does not say (the Text tab, ``sample``).
DEFAULT_STEPS = _STEPS[KIND]


# ---------------------------------------------------------------------------------------------
# the generator
# ---------------------------------------------------------------------------------------------
class FastGenerator(DiffusionGenerator):
    """The distilled student behind the Generator protocol: everything as the teacher (text, exercise,
    correct/incorrect, repetition chaining, editing), sampled in 1, 2 or 4 steps with the guidance scale
    as an input."""

    name = "diffusion-fast"
    default_steps = DEFAULT_STEPS

    def _timesteps(self, steps: int) -> list[int]:
        ok = allowed_steps(self.cfg)
        if steps not in ok:
            raise UserError(f"diffusion-fast samples in {', '.join(map(str, ok))} steps (got {steps}); "
                            f"use the diffusion model for more")
        return student_times(self.cfg.T, steps)

    def check(self, req: Request) -> None:
        """Steps on the distillation grid, a guidance scale it was distilled for, the built-in
        correct/incorrect guidance."""
        cfg = self.cfg
        self._timesteps(req.steps)
        g = req.guidance if self._has_condition(req) else 1.0
        if g > cfg.guidance_max:
            raise UserError(f"diffusion-fast was distilled for guidance scales up to {cfg.guidance_max:g} "
                            f"(got {g:g}); use the diffusion model for more")
        gc = self.correct_guidance(req)
        if req.correct is not None and abs(gc - cfg.correct_guidance) > 1e-6:
            raise UserError(f"diffusion-fast has the correct/incorrect guidance {cfg.correct_guidance:g} built "
                            f"in (got {gc:g}); use the diffusion model to change it")

    def _denoiser(self, req: Request, cond_text: str, matched: str | None) -> Callable[..., torch.Tensor]:
        g = req.guidance if self._has_condition(req) else 1.0
        n = req.num
        text, text_on, label, correct, dataset = self._condition_tensors(req, n, cond_text, matched)
        w = torch.full((n,), float(g))
        conds: dict[int, torch.Tensor] = {}        # condition vectors per step time, shared by the repetitions

        def denoise(x: torch.Tensor, t: torch.Tensor, known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            key = int(t[0])
            if not bool((t == key).all()) or x.shape[0] != n:
                return self.net.predict(x, t, self.net.student_condition(t, text, text_on, label, correct, dataset, w),
                                        known, mask)
            if key not in conds:
                conds[key] = self.net.student_condition(t, text, text_on, label, correct, dataset, w)
            return self.net.predict(x, t, conds[key], known, mask)

        return denoise

    def _with_known(self, denoise: Callable[..., torch.Tensor], known: torch.Tensor | None,
                    mask: torch.Tensor | None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        def bound(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if mask is None or known is None:
                return denoise(x, t, torch.zeros_like(x), torch.zeros(x.shape, dtype=torch.bool))
            return denoise(x, t, known.expand_as(x), mask.expand(x.shape))

        return bound


def load_generator(path: str | Path, encoder: Any = None) -> FastGenerator:
    """Rebuild the student from the checkpoint's stored config (strict)."""
    tensors, meta, cfg = teacher_mod_G.read_checkpoint(path, KIND, FastConfig)
    net = StudentDenoiser(cfg)
    teacher_mod_G.load_weights(net, tensors, path)
    if encoder is not None:
        check_encoder(encoder, meta.get("text_encoder", cfg.text_encoder), cfg.text_dim)
    return FastGenerator(cfg, net, tensors["stats.mean"], tensors["stats.std"], meta, encoder)
