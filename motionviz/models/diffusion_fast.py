"""``diffusion-fast``: the shipped diffusion model distilled into a 1-, 2- or 4-step sampler.

Method (trajectory consistency distillation; the numbers that justify it are in the README's
``diffusion-fast`` card): the teacher (:mod:`motionviz.models.diffusion`, guided, one time-normalised
repetition at a time) is run with DDIM over a fixed grid of ``max_steps * teacher_per_step`` (25) steps
that contains the student's step times ``999, 749, 500, 250`` (:func:`student_times`).  Every teacher
trajectory gives the noisy states ``x_t`` at those times and its final clean sample ``x_0``; the student
learns the *consistency function* ``f(x_t, t, conditions, w) = x_0`` of the teacher's ODE (a deterministic
map, so a plain regression has no irreducible error, unlike denoising a fresh noise sample).  Sampling with
k steps is then DDIM over the first of k evenly spaced times with the student's ``x_0`` (the state moved
along the implied noise), exactly :func:`motionviz.core.sampling.sample` with ``timesteps``.

* The guidance scale ``w`` is an input (sinusoidal embedding, zero-initialised MLP added to the condition
  vector), so a guided sample costs one forward of one row per step, with no unconditioned pass.  Every
  trajectory is generated with its own ``w`` (70 % uniform in [1, 4], 30 % in [0, ``guidance_max``]); the
  requested correct/incorrect execution is guided as the teacher does by default
  (:data:`motionviz.models.diffusion.CORRECT_GUIDANCE`).
* Editing and chaining: the kept entries of a masked generation (the first frame of every repetition after
  the first, in-betweening frames, kept body parts, the known duration) are a second input (``known *
  mask`` and ``mask``, a zero-initialised linear layer added to the frame tokens), because at 1-2 steps the
  teacher's way of seeing them only through the noised ``x_t`` does not reach the output.  30 % of the
  trajectories are generated with a known first frame (the last pose of a real repetition), 15 % with an
  editing mask (a random set of joints over the whole repetition, or first/last frames, with the duration).
* Student: the teacher's architecture with ``layers`` (4) of its 6 transformer layers
  (``teacher_layers``), initialised from the teacher's weights.
* Teacher trajectories are generated inside the training loop (``traj_batch`` every ``traj_every`` steps,
  kept in a replay buffer), so the one ``--minutes`` budget covers both.  A resumed run starts with an
  empty buffer.

Training (the shipped checkpoint; teacher = ``checkpoints/diffusion.safetensors``, the training split
conditions and captions)::

    OMP_NUM_THREADS=1 python -m motionviz train diffusion-fast --minutes 75 --threads 1 --save-every 5 --seed 0

Shapes: B batch, R normalised frames per repetition, F = 3J + 1 features, N = R / patch tokens, D width.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.errors import CheckpointError, UserError
from ..core.representation_torch import sinusoid
from .diffusion import CORRECT_GUIDANCE, Config, Denoiser, optimiser_step
from .losses import motion_loss

__all__ = ["KIND", "FastConfig", "StudentDenoiser", "DistillModel",
           "student_times", "teacher_grid", "allowed_steps", "student_from_teacher",
           "fast_config"]

KIND = "diffusion-fast"


@dataclass(frozen=True)
class FastConfig(Config):
    """The teacher's :class:`~motionviz.models.diffusion.Config` plus the student's own fields."""

    layers: int = 4                              # student transformer layers
    teacher_layers: tuple[int, ...] = (0, 1, 3, 5)   # the teacher layers they start from
    guidance_max: float = 10.0                   # largest guidance scale distilled
    correct_guidance: float = CORRECT_GUIDANCE   # correct/incorrect guidance baked into the student
    max_steps: int = 4                           # student steps: those k with student_times(k) on the grid
    teacher_per_step: int = 6                    # teacher DDIM steps between consecutive student times
    p_first: float = 0.3                         # trajectories with a known first frame (chaining)
    p_edit: float = 0.15                         # trajectories with an editing mask
    traj_batch: int = 32                         # teacher trajectories per generation round
    traj_every: int = 6                          # training steps per generation round
    buffer: int = 60000                          # replay buffer (trajectories)
    prefill: int = 256                           # trajectories before the first training step
    lr: float = 2e-4
    batch_size: int = 64
    ema: float = 0.995
    teacher: str = ""                            # SHA-256 of the teacher checkpoint
    # the teacher trajectories keep the conditional log-duration (DURATION_FEATURES, as the teacher samples
    # since the duration fix; the shipped student); False = the guided one (the student before it)
    plain_duration: bool = True

    def validate(self) -> None:
        super().validate()
        if not 1 <= self.layers <= 64 or len(self.teacher_layers) != self.layers:
            raise CheckpointError(f"the student needs one teacher layer per layer, got {self.teacher_layers} "
                                  f"for {self.layers} layers")
        if not (0 < self.guidance_max <= 100 and 1 <= self.max_steps <= 64 and 1 <= self.teacher_per_step <= 100):
            raise CheckpointError("diffusion-fast config out of range (guidance_max, max_steps, teacher_per_step)")


def student_times(T: int, k: int) -> list[int]:
    """The k descending training steps a k-step student sample visits: round((T-1)(1 - i/k)), i < k."""
    return [int(round((T - 1) * (1 - i / k))) for i in range(k)]


def allowed_steps(cfg: FastConfig) -> list[int]:
    """Step counts whose times are all on the distillation grid (1, 2 and 4 for ``max_steps`` 4)."""
    grid = set(student_times(cfg.T, cfg.max_steps))
    return [k for k in range(1, cfg.max_steps + 1) if set(student_times(cfg.T, k)) <= grid]


def teacher_grid(T: int, max_steps: int, per_step: int) -> list[int]:
    """The teacher's descending DDIM steps: ``per_step`` evenly spaced steps from each student time to the
    next (the last segment down to 0), so every student time is a teacher step."""
    s = student_times(T, max_steps) + [0]
    grid: list[int] = []
    for i in range(max_steps):
        pts = np.linspace(s[i], s[i + 1], per_step + 1)
        pts = pts if i == max_steps - 1 else pts[:-1]
        for p in np.round(pts).astype(int):
            if not grid or p < grid[-1]:
                grid.append(int(p))
    return grid


# ---------------------------------------------------------------------------------------------
# the student network
# ---------------------------------------------------------------------------------------------
class StudentDenoiser(Denoiser):
    """The teacher's denoiser with two more inputs: the guidance scale ``w`` (B,) and the kept entries
    ``known``/``mask`` (B, R, F).  Both start at zero (the student starts as the teacher's layers)."""

    def __init__(self, cfg: FastConfig):
        super().__init__(cfg)
        D, P, F = cfg.d_model, cfg.patch, cfg.features
        self.guidance_mlp = nn.Sequential(nn.Linear(D, D), nn.SiLU(), nn.Linear(D, D))
        self.known_in = nn.Linear(2 * P * F, D)
        for lin in (self.guidance_mlp[2], self.known_in):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def student_condition(self, t: torch.Tensor, text: torch.Tensor, text_on: torch.Tensor, label: torch.Tensor,
                          correct: torch.Tensor, dataset: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """(B, D): the teacher's condition vector + the guidance-scale embedding (w * 100 spreads [0, 10]
        over the sinusoid's range like the diffusion steps)."""
        c = self.condition(t, text, text_on, label, correct, dataset)
        return c + self.guidance_mlp(sinusoid(w.float() * 100.0, self.cfg.d_model))

    def predict(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, known: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """x_t (B, R, F), t (B,), cond (B, D), known (B, R, F), mask (B, R, F) bool -> x0 (B, R, F)."""
        B, R, F = x.shape
        N, P = R // self.cfg.patch, self.cfg.patch
        m = mask.to(x.dtype)
        k = torch.cat([(known * m).reshape(B, N, P * F), m.reshape(B, N, P * F)], dim=-1)
        return self(x, t, cond, extra=self.known_in(k))


def student_from_teacher(cfg: FastConfig, teacher: Denoiser) -> StudentDenoiser:
    """A student whose shared weights are the teacher's (transformer layer i = teacher layer
    ``cfg.teacher_layers[i]``); only the two new inputs are new (and zero)."""
    student = StudentDenoiser(cfg)
    src = teacher.state_dict()
    sd = {}
    for k in student.state_dict():
        if k.startswith("encoder.layers."):
            i, rest = k[len("encoder.layers."):].split(".", 1)
            k_t = f"encoder.layers.{cfg.teacher_layers[int(i)]}.{rest}"
        else:
            k_t = k
        if k_t in src:
            sd[k] = src[k_t]
    missing, _ = student.load_state_dict(sd, strict=False)
    if any(not (k.startswith("guidance_mlp.") or k.startswith("known_in.")) for k in missing):
        raise CheckpointError(f"the teacher does not match the student config: missing {missing[:4]}")
    return student


class DistillModel(nn.Module):
    """Student + its EMA + the teacher's feature statistics; the loss is the student's x0 error against
    the teacher's final sample on the generated (not kept) entries."""

    def __init__(self, cfg: FastConfig, student: StudentDenoiser, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.cfg = cfg
        self.net = student
        self.ema = copy.deepcopy(student).requires_grad_(False)
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("std", std.float().clone())
        self.steps_done = 0

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """x0 regression on the generated entries + ``w_vel`` x their frame-to-frame change (against the
        wobble of a one-step prediction) + ``w_motion`` x the relative motion loss (so a small movement is
        not regressed to a frozen pose, as the teacher's own training needed); the last two use the
        teacher config's weights."""
        net, cfg = self.net, self.cfg
        target = batch["target"]                                               # (B, R, F)
        cond = net.student_condition(batch["t"], batch["text"], batch["text_on"], batch["label"], batch["correct"],
                                     batch["dataset"], batch["w"])
        pred = net.predict(batch["x_t"], batch["t"], cond, batch["known"], batch["mask"])
        free = (~batch["mask"]).float()
        err = (pred - target) ** 2 * free
        l_x0 = err.sum() / free.sum().clamp(min=1)
        one = (batch["t"] == max(cfg.T - 1, 0)).float()[:, None, None]
        l1 = (err * one).sum() / (free * one).sum().clamp(min=1)
        pose_free = free[:, 1:, :-1] * free[:, :-1, :-1]                        # (B, R-1, F-1)
        dv = (pred[:, 1:, :-1] - pred[:, :-1, :-1]) - (target[:, 1:, :-1] - target[:, :-1, :-1])
        l_vel = (dv ** 2 * pose_free).sum() / pose_free.sum().clamp(min=1)
        valid = torch.ones(target.shape[:2], dtype=torch.bool, device=target.device)
        l_motion = motion_loss(pred, target, valid, cfg.motion_eps)
        loss = l_x0 + cfg.w_vel * l_vel + cfg.w_motion * l_motion
        return {"loss": loss, "step1": l1.detach(), "x0": l_x0.detach(), "vel": l_vel.detach(),
                "motion": l_motion.detach()}

    def train_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        out, gn = optimiser_step(self, batch, optimizers)
        with torch.no_grad():
            d = min(self.cfg.ema, (1 + self.steps_done) / (10 + self.steps_done))
            for pe, p in zip(self.ema.parameters(), self.net.parameters()):
                pe.lerp_(p, 1 - d)
        logs = {k: float(v.detach()) for k, v in out.items()}
        logs["grad_norm"] = float(gn)
        return logs

    def export(self) -> dict[str, torch.Tensor]:
        out = {f"net.{k}": v.detach().cpu().clone() for k, v in self.ema.state_dict().items()}
        out["stats.mean"] = self.mean.detach().cpu().clone()
        out["stats.std"] = self.std.detach().cpu().clone()
        return out


def fast_config(teacher_cfg: Config, **kw: Any) -> FastConfig:
    """The student config for ``teacher_cfg``: its fields, the student's defaults, then ``kw``."""
    base = {k: v for k, v in asdict(teacher_cfg).items() if k not in ("layers", "lr", "batch_size", "ema")}
    if "layers" in kw and "teacher_layers" not in kw:      # spread the student layers over the teacher's
        kw["teacher_layers"] = tuple(int(round(x)) for x in np.linspace(0, teacher_cfg.layers - 1, int(kw["layers"])))
    if "layers" not in kw and teacher_cfg.layers < FastConfig.layers:
        kw.setdefault("layers", teacher_cfg.layers)
        kw.setdefault("teacher_layers", tuple(range(teacher_cfg.layers)))
    cfg = FastConfig(**{**base, **kw})
    cfg.validate()
    if max(cfg.teacher_layers) >= teacher_cfg.layers:
        raise UserError(f"teacher_layers {cfg.teacher_layers} name layers the teacher ({teacher_cfg.layers}) lacks")
    return cfg
