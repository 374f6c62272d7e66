"""Distillation of the few-step student from the diffusion teacher: trajectory batches and the TrainSetup
(TRAINERS['diffusion-fast'])."""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.checkpoint import file_sha256, save_checkpoint
from ..core.errors import UserError
from ..core.representation import canonicalise
from ..core.representation_torch import rep_features, to_features
from ..core.sampling import Schedule, guided, sample
from ..generators import diffusion as teacher_mod_G
from ..generators.diffusion import conditioned_model
from ..generators.registry import checkpoint_path
from ..models import diffusion as teacher_mod
from ..models.diffusion import DURATION_FEATURES, Denoiser
from ..models.diffusion_fast import (
    KIND,
    DistillModel,
    FastConfig,
    allowed_steps,
    fast_config,
    student_from_teacher,
    student_times,
    teacher_grid,
)
from . import diffusion as teacher_mod_T
from .diffusion import RepetitionSet
from .loop import TrainSetup

log = logging.getLogger("motionviz.training")


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
        # a teacher trained with balance_correct: rows that keep their correct/incorrect condition are drawn
        # from the balanced weights, as in the teacher's batches (RepetitionBatches)
        self.p_shown = None if reps.weight_shown is None else reps.weight_shown / reps.weight_shown.sum()
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
        idx, hidden = teacher_mod_T.draw_rows(rng, n, self.p, self.p_shown, cfg.p_drop_correct)
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
        hide = (rng.random(n) < cfg.p_drop_correct) if hidden is None else hidden
        correct = np.where(hide | uncond, 0, r.correct[idx])
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
            denoise = guided(model, cond["w"][rows], torch.full((len(rows),), part),
                             plain=DURATION_FEATURES if cfg.plain_duration else None)
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


def save_model(path: str | Path, model: DistillModel, metadata: dict[str, Any] | None = None) -> Path:
    meta = {"text_encoder": model.cfg.text_encoder, "text_dim": model.cfg.text_dim,
            "representation": teacher_mod.REPRESENTATION}
    meta.update(metadata or {})
    return save_checkpoint(path, model.export(), KIND, model.cfg, meta)


def build_training(opts: Any) -> Any:
    """TRAINERS entry: distil the teacher (``--set teacher=PATH``, default the shipped diffusion
    checkpoint) on the training split's conditions."""
    over = dict(opts.overrides)
    teacher_path = Path(over.pop("teacher", None) or checkpoint_path("diffusion"))
    if not teacher_path.is_file():
        raise UserError(f"no teacher checkpoint at {teacher_path}; train it first (`python -m motionviz train "
                        f"diffusion`) or pass --set teacher=PATH")
    teacher = teacher_mod_G.load_generator(teacher_path)
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
    td = teacher_mod_T.training_data(data_opts, base=lambda **kw: replace(teacher.cfg, **kw))
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
    log.info(f"student: {n_params / 1e6:.2f} M parameters, teacher grid {len(batches.grid)} steps, student times "
             f"{batches.times}")
    meta = dict(td.meta, parameters=n_params, teacher=teacher_path.name, teacher_sha256=cfg.teacher,
                teacher_grid=batches.grid, method="trajectory consistency distillation, guidance scale as input")
    return TrainSetup(model=model, batches=batches, optimizers={"main": opt}, kind=KIND, config=cfg,
                      metadata=meta, export=model.export, lr_lambda=lr_lambda, log_keys=("loss", "step1", "motion"))
