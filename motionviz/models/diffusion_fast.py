"""``diffusion-fast``: the shipped diffusion model distilled into a 1-, 2- or 4-step sampler.

Method (trajectory consistency distillation; the numbers that justify it are in the README's
``diffusion-fast`` card): the teacher (:mod:`motionviz.models.diffusion`, guided, one time-normalised
repetition at a time) is run with DDIM over a fixed grid of ``max_steps * teacher_per_step`` (25) steps
that contains the student's step times ``999, 749, 500, 250`` (:func:`student_times`).  Every teacher
trajectory gives the noisy states ``x_t`` at those times and its final clean sample ``x_0``; the student
learns the *consistency function* ``f(x_t, t, conditions, w) = x_0`` of the teacher's ODE (a deterministic
map, so a plain regression has no irreducible error, unlike denoising a fresh noise sample).  Sampling with
k steps is then DDIM over the first of k evenly spaced times with the student's ``x_0`` (the state moved
along the implied noise), exactly :func:`motionviz.sampling.sample` with ``timesteps``.

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
import math
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..checkpoint import config_from_json, file_sha256, load_checkpoint, save_checkpoint
from ..errors import CheckpointError, UserError
from ..generator import DEFAULT_STEPS as _STEPS, Request
from ..sampling import Schedule, guided, sample
from . import diffusion as teacher_mod
from .diffusion import (CORRECT_GUIDANCE, Config, Denoiser, DiffusionGenerator, RepetitionSet, canonicalise,
                        conditioned_model, rep_features, sinusoid, to_features, with_legacy_fields)
from .losses import motion_loss

__all__ = ["KIND", "FastConfig", "StudentDenoiser", "FastGenerator", "DistillModel", "TrajectoryBatches",
           "student_times", "teacher_grid", "allowed_steps", "student_from_teacher", "load_generator",
           "build_training", "fast_config", "save_model", "DEFAULT_STEPS", "bench"]

KIND = "diffusion-fast"
#: Steps the shipped student is sampled with when a request does not say (the Text tab, ``sample``).
DEFAULT_STEPS = _STEPS[KIND]


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

    def validate(self) -> None:
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
    tensors, meta = load_checkpoint(path, KIND)
    cfg = with_legacy_fields(config_from_json(FastConfig, meta["config"]), meta["config"], path)
    if cfg.representation != Config.representation:
        raise CheckpointError(f"{Path(path).name} uses motion representation {cfg.representation!r}; this "
                              f"version reads {Config.representation!r}")
    net = StudentDenoiser(cfg)
    teacher_mod.load_weights(net, tensors, path)
    if encoder is not None:
        from ..text import check_encoder

        check_encoder(encoder, meta.get("text_encoder", cfg.text_encoder), cfg.text_dim)
    return FastGenerator(cfg, net, tensors["stats.mean"], tensors["stats.std"], meta, encoder)


# ---------------------------------------------------------------------------------------------
# distillation: teacher trajectories and the student's training step
# ---------------------------------------------------------------------------------------------
class TrajectoryBatches:
    """Endless training batches for the student.  Every ``traj_every`` batches (and until ``prefill``
    trajectories exist) the teacher generates ``traj_batch`` new trajectories into a replay buffer; a batch
    is ``batch_size`` random trajectories, each at one of the student's step times.

    Batch: x_t, known (B, R, F) float32, mask (B, R, F) bool, t (B,) long, target (B, R, F) (the
    teacher's final sample), text (B, Dt), text_on (B,) bool, label/correct/dataset (B,) long, w (B,)."""

    def __init__(self, cfg: FastConfig, teacher: Denoiser, mean: torch.Tensor, std: torch.Tensor,
                 reps: RepetitionSet, text_table: torch.Tensor, seed: int, rank: int = 0):
        self.cfg, self.teacher = cfg, teacher.eval().requires_grad_(False)
        self.mean, self.std = mean.float(), std.float()
        self.reps, self.text_table = reps, text_table
        self.p = reps.weight / reps.weight.sum()
        self.rng = np.random.default_rng([seed, rank, 23])
        self.gen = torch.Generator().manual_seed(int(np.random.default_rng([seed, rank, 29]).integers(2**62)))
        self.schedule = Schedule(cfg.T)
        self.times = student_times(cfg.T, cfg.max_steps)
        self.grid = teacher_grid(cfg.T, cfg.max_steps, cfg.teacher_per_step)
        # which student times k-step sampling visits: train the 1-step time most, then the 2-step one
        use = np.zeros(len(self.times))
        for k in allowed_steps(cfg):
            for t in student_times(cfg.T, k):
                use[self.times.index(t)] += 1.0 / k
        self.p_time = use / use.sum()
        cap, K, R, F, Dt = cfg.buffer, cfg.max_steps, cfg.rep_frames, cfg.features, text_table.shape[-1]
        self.buf = {"states": np.zeros((cap, K, R, F), np.float16), "target": np.zeros((cap, R, F), np.float16),
                    "known": np.zeros((cap, R, F), np.float16), "mask": np.zeros((cap, R, F), bool),
                    "text": np.zeros((cap, Dt), np.float16), "text_on": np.zeros(cap, bool),
                    "label": np.zeros(cap, np.int64), "correct": np.zeros(cap, np.int64),
                    "dataset": np.zeros(cap, np.int64), "w": np.zeros(cap, np.float32)}
        self.filled = 0
        self.written = 0
        self.batches = 0

    def __iter__(self) -> "TrajectoryBatches":
        return self

    # teacher side ---------------------------------------------------------------------------------
    def conditions(self, n: int) -> dict[str, torch.Tensor]:
        """Random conditions of ``n`` rows from the training repetitions, dropped as in the teacher's
        training (dataset follows the exercise, as in generation), each with a guidance scale and a kind
        of masked generation."""
        cfg, r, rng = self.cfg, self.reps, self.rng
        idx = rng.choice(len(r.joints), size=n, p=self.p)
        text_idx = np.zeros(n, np.int64)
        text_on = np.zeros(n, bool)
        for b, i in enumerate(idx):
            if r.captions[i]:
                text_idx[b] = r.captions[i][int(rng.integers(len(r.captions[i])))]
                text_on[b] = True
        uncond = rng.random(n) < cfg.p_uncond
        text_on &= ~(rng.random(n) < cfg.p_drop_text) & ~uncond
        label = np.where((rng.random(n) < cfg.p_drop_label) | uncond, 0, r.label[idx])
        dataset = np.where(label == 0, 0, r.dataset[idx])
        correct = np.where((rng.random(n) < cfg.p_drop_correct) | uncond, 0, r.correct[idx])
        w = np.where(rng.random(n) < 0.7, rng.uniform(1.0, 4.0, n), rng.uniform(0.0, cfg.guidance_max, n))
        R, F, J = cfg.rep_frames, cfg.features, cfg.num_joints
        known = torch.zeros(n, R, F)
        mask = torch.zeros(n, R, F, dtype=torch.bool)
        kind = rng.random(n)
        for b, i in enumerate(idx):
            if kind[b] < cfg.p_first:                      # chaining: the previous repetition's last pose
                c = canonicalise(r.joints[i][-1:])[0][0]
                known[b, 0, :3 * J] = (to_features(torch.from_numpy(c)) - self.mean[:3 * J]) / self.std[:3 * J]
                mask[b, 0, :3 * J] = True
            elif kind[b] < cfg.p_first + cfg.p_edit:       # editing: kept joints or kept first/last frames
                known[b] = rep_features(torch.from_numpy(r.joints[i]), torch.tensor(float(r.duration[i])),
                                        self.mean, self.std)
                if rng.random() < 0.5:
                    keep_j = rng.random(J) < 0.5
                    keep_j[0] = True
                    if keep_j.all():
                        keep_j[int(rng.integers(1, J))] = False
                    mask[b, :, :3 * J] = torch.from_numpy(np.repeat(keep_j, 3))
                else:
                    a, e = int(rng.integers(1, R // 3 + 1)), int(rng.integers(0, R // 3 + 1))
                    mask[b, :a, :3 * J] = True
                    mask[b, R - e:, :3 * J] = True
                mask[b, :, -1] = True
        return {"text": self.text_table[torch.from_numpy(text_idx)].float(), "text_on": torch.from_numpy(text_on),
                "label": torch.from_numpy(label), "correct": torch.from_numpy(correct),
                "dataset": torch.from_numpy(dataset), "w": torch.from_numpy(w).float(), "known": known, "mask": mask}

    @torch.no_grad()
    def trajectories(self, cond: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher's guided DDIM trajectories over :func:`teacher_grid` for the rows of ``cond``:
        states at the student times (n, K, R, F) and final samples (n, R, F).  Rows asking for a correct
        or incorrect execution get the teacher's extra guidance on it."""
        cfg = self.cfg
        n = cond["w"].shape[0]
        states = torch.zeros(n, cfg.max_steps, cfg.rep_frames, cfg.features)
        final = torch.zeros(n, cfg.rep_frames, cfg.features)
        has_c = cond["correct"] != 0
        for rows in (torch.nonzero(has_c).flatten(), torch.nonzero(~has_c).flatten()):
            if len(rows) == 0:
                continue
            model = conditioned_model(self.teacher, cond["text"][rows], cond["text_on"][rows], cond["label"][rows],
                                      cond["correct"][rows], cond["dataset"][rows])
            part = cfg.correct_guidance if bool(has_c[rows[0]]) else 0.0
            denoise = guided(model, cond["w"][rows], torch.full((len(rows),), part))
            got: dict[int, torch.Tensor] = {}

            def record(t: int, x: torch.Tensor) -> None:
                if t in self.times:
                    got[t] = x.clone()

            mask = cond["mask"][rows]
            masked = bool(mask.any())
            final[rows] = sample(denoise, (len(rows), cfg.rep_frames, cfg.features), self.schedule, len(self.grid),
                                 self.gen, eta=0.0, known=cond["known"][rows] if masked else None,
                                 mask=mask if masked else None, timesteps=self.grid, on_step=record)
            for k, t in enumerate(self.times):
                states[rows, k] = got[t]
        return states, final

    def generate(self, n: int) -> None:
        """``n`` new teacher trajectories into the ring buffer."""
        cond = self.conditions(n)
        states, final = self.trajectories(cond)
        cap = self.cfg.buffer
        at = (self.written + np.arange(n)) % cap
        b = self.buf
        b["states"][at] = states.numpy()
        b["target"][at] = final.numpy()
        for k in ("known", "mask", "text", "text_on", "label", "correct", "dataset", "w"):
            b[k][at] = cond[k].numpy()
        self.written += n
        self.filled = min(cap, self.filled + n)

    # student side ---------------------------------------------------------------------------------
    def __next__(self) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        while self.filled < min(cfg.prefill, cfg.buffer):
            self.generate(cfg.traj_batch)
        if self.batches % cfg.traj_every == 0:
            self.generate(cfg.traj_batch)
        self.batches += 1
        B = cfg.batch_size
        idx = self.rng.integers(0, self.filled, B)
        k = self.rng.choice(len(self.times), size=B, p=self.p_time)
        b = self.buf
        f = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()  # noqa: E731
        return {"x_t": f(b["states"][idx, k]), "t": torch.tensor([self.times[i] for i in k], dtype=torch.long),
                "target": f(b["target"][idx]), "known": f(b["known"][idx]), "mask": torch.from_numpy(b["mask"][idx]),
                "text": f(b["text"][idx]), "text_on": torch.from_numpy(b["text_on"][idx]),
                "label": torch.from_numpy(b["label"][idx]), "correct": torch.from_numpy(b["correct"][idx]),
                "dataset": torch.from_numpy(b["dataset"][idx]), "w": torch.from_numpy(b["w"][idx])}


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
        self.net.train()
        opt = optimizers["main"]
        out = self.losses(batch)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        gn = torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        opt.step()
        self.steps_done += 1
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


def save_model(path: str | Path, model: DistillModel, metadata: dict[str, Any] | None = None) -> Path:
    meta = {"text_encoder": model.cfg.text_encoder, "text_dim": model.cfg.text_dim,
            "representation": teacher_mod.REPRESENTATION}
    meta.update(metadata or {})
    return save_checkpoint(path, model.export(), KIND, model.cfg, meta)


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


def build_training(opts: Any) -> Any:
    """TRAINERS entry: distil the teacher (``--set teacher=PATH``, default the shipped diffusion
    checkpoint) on the training split's conditions."""
    from ..generator import checkpoint_path
    from ..train import TrainSetup

    over = dict(opts.overrides)
    teacher_path = Path(over.pop("teacher", None) or checkpoint_path("diffusion"))
    if not teacher_path.is_file():
        raise UserError(f"no teacher checkpoint at {teacher_path}; train it first (`python -m motionviz train "
                        f"diffusion`) or pass --set teacher=PATH")
    teacher = teacher_mod.load_generator(teacher_path)
    if opts.batch_size:
        over["batch_size"] = opts.batch_size
    if opts.lr:
        over["lr"] = opts.lr
    if opts.tiny:
        for k, v in {"batch_size": 16, "traj_batch": 8, "traj_every": 2, "buffer": 512, "prefill": 16,
                     "teacher_per_step": 2}.items():
            over.setdefault(k, v)
    cfg = fast_config(teacher.cfg, teacher=file_sha256(teacher_path), text_encoder=teacher.cfg.text_encoder, **over)
    data_opts = replace(opts, overrides={"text_encoder": teacher.cfg.text_encoder})
    td = teacher_mod.training_data(data_opts, base=lambda **kw: replace(teacher.cfg, **kw))
    if not opts.tiny and (set(td.cfg.labels) != set(teacher.cfg.labels) or set(td.cfg.datasets) != set(teacher.cfg.datasets)):
        raise UserError("the training data's exercises differ from the teacher's; distil with the data the "
                        "teacher was trained on")
    student = student_from_teacher(cfg, teacher.net)
    model = DistillModel(cfg, student, teacher.mean, teacher.std).to(opts.device)

    def remap(idx: np.ndarray, mine: tuple[str, ...], theirs: tuple[str, ...]) -> np.ndarray:
        table = np.array([0] + [theirs.index(x) + 1 if x in theirs else 0 for x in mine], dtype=np.int64)
        return table[idx]

    reps = replace(td.reps, label=remap(td.reps.label, td.cfg.labels, teacher.cfg.labels),
                   dataset=remap(td.reps.dataset, td.cfg.datasets, teacher.cfg.datasets))
    batches = TrajectoryBatches(cfg, teacher.net, teacher.mean, teacher.std, reps, td.text_table,
                                opts.seed, opts.rank)
    opt = torch.optim.AdamW(model.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))

    def lr_lambda(f: float) -> float:  # short warm-up, cosine decay to 10 %
        if f < 0.02:
            return max(f / 0.02, 0.05)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (f - 0.02) / 0.98))

    n_params = sum(p.numel() for p in model.net.parameters())
    print(f"student: {n_params / 1e6:.2f} M parameters, teacher grid {len(batches.grid)} steps, student times "
          f"{batches.times}", file=sys.stderr)
    meta = dict(td.meta, parameters=n_params, teacher=teacher_path.name, teacher_sha256=cfg.teacher,
                teacher_grid=batches.grid, method="trajectory consistency distillation, guidance scale as input")
    return TrainSetup(model=model, batches=batches, optimizers={"main": opt}, kind=KIND, config=cfg,
                      metadata=meta, export=model.export, lr_lambda=lr_lambda, log_keys=("loss", "step1", "motion"))


# ---------------------------------------------------------------------------------------------
# benchmark section (``python -m motionviz bench``)
# ---------------------------------------------------------------------------------------------
def bench(quick: bool = False, path: str | Path | None = None, encoder: Any = None) -> dict[str, Any]:
    """Seconds per 120-frame sample (text-conditioned, guidance 2.5) at 1, 2 and 4 steps, batch 1 and 16,
    median over repeats, and the teacher's 20-step rows measured in the same run (``ratio_to_teacher``:
    teacher seconds / student seconds at the same batch size).  Text encoding is cached per text and warmed
    up first.  ``quick``: one repeat, steps 1 and 2, no teacher rows."""
    import time

    from ..generator import checkpoint_path

    path = Path(path) if path is not None else checkpoint_path(KIND)
    t0 = time.perf_counter()
    gen = load_generator(path, encoder=encoder)
    load_s = time.perf_counter() - t0
    gens: list[tuple[str, Any, int]] = [(KIND, gen, k) for k in ((1, 2) if quick else allowed_steps(gen.cfg))]
    teacher_path = checkpoint_path("diffusion", path.parent)
    if not quick and teacher_path.is_file():
        gens.append(("diffusion", teacher_mod.load_generator(teacher_path, encoder=gen._encoder), 20))
    text = teacher_mod.BENCH_TEXT
    rows = []
    for name, g, steps in gens:
        for b in (1, 16):
            req = Request(model=name, text=text, frames=120, steps=steps, num=b, guidance=2.5, seed=0)
            g.generate(req)                                                       # warm-up (text, allocations)
            reps = 1 if quick else (5 if name == KIND else 3)
            times = []
            for _ in range(reps):
                t1 = time.perf_counter()
                g.generate(req)
                times.append(time.perf_counter() - t1)
            med = float(np.median(times))
            rows.append({"model": name, "steps": steps, "batch": b, "frames": 120, "seconds_per_call": round(med, 5),
                         "seconds_per_sample": round(med / b, 5), "repeats": reps})
    teacher = {r["batch"]: r["seconds_per_sample"] for r in rows if r["model"] == "diffusion"}
    for r in rows:
        if r["model"] == KIND and r["batch"] in teacher:
            r["ratio_to_teacher"] = round(teacher[r["batch"]] / r["seconds_per_sample"], 1)
    return {"checkpoint": str(path), "parameters": sum(p.numel() for p in gen.net.parameters()),
            "config": {k: getattr(gen.cfg, k) for k in ("d_model", "layers", "heads", "ff", "patch", "rep_frames")},
            "threads": torch.get_num_threads(), "load_seconds": round(load_s, 4), "guidance": 2.5,
            "timings": rows, "targets": {"seconds_per_sample_batch_1": 0.020, "seconds_per_sample_batch_16": 0.005}}
