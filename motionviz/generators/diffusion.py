"""The text/label-conditioned diffusion generator: windowed DDIM/DDPM sampling, editing, guidance, and its
loader (checkpoint -> DiffusionGenerator)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..core.checkpoint import config_from_json, load_checkpoint, load_strict
from ..core.errors import CheckpointError, UserError
from ..core.limits import LIMITS
from ..core.motion import DEFAULT_FPS, Motion, MotionLabels
from ..core.repetitions import split_repetitions, time_denormalise, time_normalise
from ..core.representation import canonicalise, uncanonicalise
from ..core.representation_torch import rep_features, rep_joints, to_features
from ..core.sampling import Schedule, guided, sample
from ..core.skeleton import COMMON, Skeleton
from ..data.captions import caption_table, describe
from ..models.diffusion import CORRECT_GUIDANCE, CORRECT_STATES, DURATION_FEATURES, KIND, Config, Denoiser
from . import text_match
from .registry import ProgressFn, Request
from .text_encoders import check_encoder, get_text_encoder


def conditioned_model(net: Denoiser, text: torch.Tensor, text_on: torch.Tensor, label: torch.Tensor,
                      correct: torch.Tensor, dataset: torch.Tensor) -> Callable[..., torch.Tensor]:
    """``model(x (k n, R, F), t (k n,), drop (k n,), drop_correct=None) -> x0`` for the ``n`` rows'
    conditions (text (n, Dt), text_on/label/correct/dataset (n,)), as :func:`motionviz.core.sampling.guided`
    calls it: the batch holds k copies of the n rows; ``drop`` rows ignore every condition,
    ``drop_correct`` rows the correct/incorrect one."""
    n = text.shape[0]

    def model(x: torch.Tensor, t: torch.Tensor, drop: torch.Tensor,
              drop_correct: torch.Tensor | None = None) -> torch.Tensor:
        reps = x.shape[0] // n
        keep = ~drop
        keep_c = keep if drop_correct is None else keep & ~drop_correct
        c = net.condition(t, text.repeat(reps, 1), text_on.repeat(reps) & keep,
                          torch.where(keep, label.repeat(reps), 0),
                          torch.where(keep_c, correct.repeat(reps), 0),
                          torch.where(keep, dataset.repeat(reps), 0))
        return net(x, t, c)

    return model


class DiffusionGenerator:
    """The trained diffusion model behind the :class:`motionviz.generators.registry.Generator` protocol."""

    name = "diffusion"
    tasks = frozenset({"text", "label", "unconditional", "edit"})
    skeleton: Skeleton = COMMON

    def __init__(self, cfg: Config, net: Denoiser, mean: torch.Tensor, std: torch.Tensor,
                 metadata: dict[str, str] | None = None, encoder: Any = None):
        self.cfg = cfg
        self.net = net.eval().requires_grad_(False)
        self.mean, self.std = mean.float(), std.float()
        self.schedule = Schedule(cfg.T)
        self.metadata = dict(metadata or {})
        self._encoder = encoder
        self.labels = list(cfg.labels)

    @property
    def encoder(self):
        if self._encoder is None:
            self._encoder = get_text_encoder(self.cfg.text_encoder)
        return self._encoder

    @property
    def text_encoder_loaded(self) -> bool:
        """Whether :attr:`encoder` is loaded (the first text request loads it: seconds)."""
        return self._encoder is not None

    def has_correctness(self, label: str) -> bool:
        """True: correct/incorrect is a condition beside every exercise (unspecified in training where a
        dataset has no such annotation)."""
        return True

    def label_index(self, label: str | None) -> int:
        if not label:
            return 0
        if label in self.cfg.labels:
            return self.cfg.labels.index(label) + 1
        hits = [i for i, l in enumerate(self.cfg.labels) if l.split(":", 1)[-1] == label]
        if len(hits) == 1:
            return hits[0] + 1
        raise UserError(f"unknown exercise {label!r}; the model knows: {', '.join(self.cfg.labels[:12])}"
                        + (" ..." if len(self.cfg.labels) > 12 else ""))

    def condition_text(self, req: Request) -> str:
        """The text the model is conditioned on: the request's text; for an exercise chosen without text,
        the exercise's canonical description (first caption, wrapped as 'incorrect' when asked).  Training
        shows the model text and exercise together most of the time, and on the validation split the pair
        makes the requested exercise recognisable far more often than the exercise alone (0.90 vs 0.78)."""
        if req.text:
            return req.text
        if not req.label:
            return ""

        lab = self.cfg.labels[self.label_index(req.label) - 1]
        if lab not in caption_table()["labels"]:
            return ""
        return describe(MotionLabels(label=lab, correct=req.correct))

    def understood_label(self, req: Request) -> tuple[str | None, float | None]:
        """For a description without a chosen exercise: the known exercise it is closest to
        (:func:`motionviz.generators.text_match.closest_exercises` over this model's labels) and the similarity.  The
        label conditions the model too when the description is near it (similarity >=
        :data:`motionviz.generators.text_match.NEAR_FROM`): the sentence encoder alone generalises poorly to unseen
        wording, while the matcher finds the right exercise for most held-out paraphrases.  (None, None)
        when an exercise was chosen or there is no text; (None, similarity) when the description is not
        near any exercise."""
        if req.label or not req.text or not self.cfg.labels:
            return None, None
        best = text_match.closest_exercises(req.text, 1, encoder=self.encoder, labels=self.cfg.labels)
        if not best:
            return None, None
        label, _, sim = best[0]
        return (label if sim >= text_match.NEAR_FROM else None), float(sim)

    def _conditions(self, req: Request, n: int, text_in: str,
                    matched: str | None = None) -> Callable[..., torch.Tensor]:
        """The model for :func:`motionviz.core.sampling.guided` with the request's conditions on ``n`` rows
        (:meth:`_condition_tensors`)."""
        return conditioned_model(self.net, *self._condition_tensors(req, n, text_in, matched))

    def _condition_tensors(self, req: Request, n: int, text_in: str, matched: str | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The conditions of ``n`` rows: text (n, Dt), text_on, label, correct, dataset (n,); ``text_in`` =
        :meth:`condition_text` of ``req``, ``matched`` = the exercise the text was understood as
        (:meth:`understood_label`)."""
        cfg = self.cfg
        if matched and not req.label:
            req = replace(req, label=matched)
        if text_in:
            emb = self.encoder.encode([text_in])                            # (1, Dt)
            if emb.shape[-1] != cfg.text_dim:
                raise CheckpointError(f"text encoder gives {emb.shape[-1]}-d embeddings; the model needs "
                                      f"{cfg.text_dim}")
            text = emb.expand(n, -1)
            text_on = torch.ones(n, dtype=torch.bool)
        else:
            text = torch.zeros(n, cfg.text_dim)
            text_on = torch.zeros(n, dtype=torch.bool)
        li = self.label_index(req.label)
        label = torch.full((n,), li, dtype=torch.long)
        correct = torch.full((n,), CORRECT_STATES[req.correct], dtype=torch.long)
        dataset = torch.zeros(n, dtype=torch.long)
        if req.label and ":" in self.cfg.labels[li - 1]:
            ds = self.cfg.labels[li - 1].split(":", 1)[0]
            if ds in cfg.datasets:
                dataset.fill_(cfg.datasets.index(ds) + 1)

        return text, text_on, label, correct, dataset

    def _denoiser(self, req: Request, cond_text: str, matched: str | None) -> Callable[..., torch.Tensor]:
        """The guided denoiser ``(x_t, t) -> x0`` of a validated request (the repetition's duration is
        the conditional prediction's, not extrapolated: :data:`DURATION_FEATURES`)."""
        g = req.guidance if self._has_condition(req) else 1.0
        return guided(self._conditions(req, req.num, cond_text, matched), g, self.correct_guidance(req),
                      plain=DURATION_FEATURES)

    def correct_guidance(self, req: Request) -> float:
        """Extra guidance on the correct/incorrect condition (see :func:`motionviz.core.sampling.guided`):
        ``Request.correct_guidance`` or :data:`CORRECT_GUIDANCE` when an execution was asked for,
        else 0."""
        if req.correct is None:
            return 0.0
        v = CORRECT_GUIDANCE if req.correct_guidance is None else req.correct_guidance
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise UserError("correct_guidance must be a number") from None
        if not (math.isfinite(v) and 0.0 <= v <= 20.0):
            raise UserError(f"correct_guidance must be between 0 and 20, got {v}")
        return v

    def check(self, req: Request) -> None:
        """Raise :class:`UserError` for a request this model cannot run, before any work (text encoder
        included); the teacher takes every validated request."""

    def _timesteps(self, steps: int) -> list[int] | None:
        """The denoising steps for ``steps`` (None: evenly spaced, :func:`motionviz.core.sampling.timesteps_for`)."""
        return None

    def _with_known(self, denoise: Callable[..., torch.Tensor], known: torch.Tensor | None,
                    mask: torch.Tensor | None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The denoiser for one masked generation (the teacher sees kept entries only through ``x_t``)."""
        return denoise

    @staticmethod
    def _has_condition(req: Request) -> bool:
        return bool(req.text) or bool(req.label) or req.correct is not None

    def generate(self, request: Request, progress: ProgressFn | None = None) -> list[Motion]:
        """Text/label/unconditional generation and editing (``source`` + ``keep``), repetition by
        repetition (:meth:`_sample_repetitions`, :meth:`_edit_chunks`)."""
        req = request.validated()
        self.check(req)
        src_j = keep = None
        if req.source is not None and req.keep is not None:
            src = req.source
            if abs(src.fps - DEFAULT_FPS) > 1e-6:
                raise UserError(f"the motion to edit must be at {DEFAULT_FPS:g} fps (got {src.fps:g})")
            if src.skeleton.name != COMMON.name:
                raise UserError(f"the motion to edit must be on the {COMMON.name} skeleton (got "
                                f"{src.skeleton.name}); retarget it first")
            keep = np.asarray(req.keep, bool) & src.observed                    # (T, J)
            if not keep.any():
                raise UserError("nothing to keep: the keep mask selects no observed joint")
            keep[:, COMMON.root] |= keep.any(axis=1)   # kept joints stay put: their frame keeps the pelvis
            lo, hi = LIMITS["frames"]
            if not lo <= src.num_frames <= hi:
                raise UserError(f"the motion to edit has {src.num_frames} frames; it needs {lo} to {hi}")
            src_j = np.nan_to_num(src.joints, nan=0.0).astype(np.float32)       # (T, J, 3)
        with torch.inference_mode():
            cond_text = self.condition_text(req)
            matched, similarity = self.understood_label(req)
            denoise = self._denoiser(req, cond_text, matched)
            gen = req.torch_generators()                                     # one per sample: seed + i
            eta = 1.0 if req.sampler == "ddpm" else 0.0
            if src_j is not None and keep is not None:
                joints = self._edit_chunks(denoise, req.num, src_j, keep, gen, req.steps, eta, progress)
            else:
                joints = self._sample_repetitions(denoise, req.num, req.frames, gen, req.steps, eta, progress)
        out = []
        for i in range(req.num):
            labels = MotionLabels(dataset="generated", subject=f"seed{req.sample_seeds()[i]}", label=req.label or "",
                                  correct=req.correct, text=req.text, source=f"diffusion sample {i}",
                                  extra={"model": self.name, "condition_text": cond_text,
                                         "understood_as": matched, "similarity": similarity,
                                         "steps": req.steps, "guidance": req.guidance,
                                         "sampler": req.sampler, "seed": req.sample_seeds()[i],
                                         "batch_seed": req.seed, "index": i})
            out.append(Motion(joints[i].astype(np.float32), COMMON, DEFAULT_FPS, labels))
        return out

    def _denoise_reps(self, denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], n: int,
                      gen: Sequence[torch.Generator], steps: int, eta: float, known: torch.Tensor | None,
                      mask: torch.Tensor | None, progress: ProgressFn | None) -> tuple[np.ndarray, np.ndarray]:
        """One batch of ``n`` time-normalised repetitions -> canonical joints (n, R, J, 3), durations (n,)."""
        cfg = self.cfg
        masked = mask is not None and bool(mask.any())
        known, mask = (known, mask) if masked else (None, None)
        x = sample(self._with_known(denoise, known, mask), (n, cfg.rep_frames, cfg.features), self.schedule,
                   steps, gen, eta=eta, known=known, mask=mask, progress=progress, timesteps=self._timesteps(steps))
        j, d = rep_joints(x, self.mean, self.std)
        d = d.clamp(cfg.min_seconds, cfg.max_seconds)
        return j.numpy(), d.numpy()

    def _sample_repetitions(self, denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], n: int,
                            frames: int, gen: Sequence[torch.Generator], steps: int, eta: float,
                            progress: ProgressFn | None) -> np.ndarray:
        """-> (n, frames, J, 3) metres: repetitions generated one after another until ``frames`` are
        filled.  Every repetition has its own noise (natural variation) and its own generated duration;
        each one after the first starts from the previous one's last pose (masked generation of its first
        normalised frame: in-betweening), so the repetitions join without a seam."""
        cfg = self.cfg
        J, R = cfg.num_joints, cfg.rep_frames
        parts: list[list[np.ndarray]] = [[] for _ in range(n)]
        have = np.zeros(n, dtype=int)
        last: list[np.ndarray | None] = [None] * n
        rnd = 0
        expect = max(1, int(np.ceil(frames / (DEFAULT_FPS * 2.5))))              # for the progress bar only
        while (have < frames).any():
            known = mask = None
            poses: list[tuple[float, np.ndarray]] = [(0.0, np.zeros(3, np.float32))] * n
            if rnd > 0:
                known = torch.zeros(n, R, cfg.features)
                mask = torch.zeros(n, R, cfg.features, dtype=torch.bool)
                for i in range(n):
                    c, ang, off = canonicalise(last[i][None])
                    poses[i] = (ang, off)
                    known[i, 0, :3 * J] = (to_features(torch.from_numpy(c[0])) - self.mean[:3 * J]) / self.std[:3 * J]
                    mask[i, 0, :3 * J] = True
            sub = None
            if progress is not None:
                sub = (lambda f, d, r=rnd: progress(min(0.99, (r + f) / max(expect, r + 1)),
                                                    f"repetition {r + 1}: {d}"))
            reps, durs = self._denoise_reps(denoise, n, gen, steps, eta, known, mask, sub)
            for i in range(n):
                if have[i] >= frames:
                    continue
                L = max(2, int(round(float(durs[i]) * DEFAULT_FPS)) + 1)
                g = time_denormalise(reps[i], L)                                  # (L, J, 3) canonical
                if rnd > 0:
                    g = uncanonicalise(g, *poses[i])[1:]                          # frame 0 = previous last
                parts[i].append(g)
                have[i] += len(g)
                last[i] = g[-1]
            rnd += 1
        return np.stack([np.concatenate(p)[:frames] for p in parts]).astype(np.float32)

    def _edit_chunks(self, denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], n: int,
                     src_j: np.ndarray, keep: np.ndarray, gen: Sequence[torch.Generator], steps: int, eta: float,
                     progress: ProgressFn | None) -> np.ndarray:
        """Editing: the source (T, J, 3) is cut into repetitions (:func:`split_repetitions`), each one is
        time-normalised and regenerated by masked generation with its kept entries (``keep`` (T, J)) and its
        duration known, then brought back to its frames; kept entries are returned exactly.
        -> (n, T, J, 3)."""
        cfg = self.cfg
        J, R = cfg.num_joints, cfg.rep_frames
        full = np.repeat(src_j[None], n, axis=0)                                 # (n, T, J, 3)
        chunks = split_repetitions(Motion(src_j, COMMON, DEFAULT_FPS), cfg.max_seconds, cfg.min_seconds)
        for ci, (a, b) in enumerate(chunks):
            k = keep[a:b]
            if k.all():
                continue
            c, ang, off = canonicalise(src_j[a:b])
            cn = time_normalise(c, R)                                            # (R, J, 3)
            idx = np.clip(np.round(np.linspace(0, b - a - 1, R)).astype(int), 0, b - a - 1)
            kn = k[idx]                                                          # (R, J) nearest source frame
            dur = torch.tensor(max(b - a - 1, 1) / DEFAULT_FPS)
            feats = rep_features(torch.from_numpy(cn), dur, self.mean, self.std)   # (R, F)
            known = feats[None].expand(n, -1, -1).clone()
            mask = torch.zeros(n, R, cfg.features, dtype=torch.bool)
            mask[:, :, :3 * J] = torch.from_numpy(np.repeat(kn, 3, axis=1))[None]
            mask[:, :, -1] = True                                                # the duration is known
            sub = None
            if progress is not None:
                sub = (lambda f, d, ci=ci: progress((ci + f) / len(chunks),
                                                    d if len(chunks) == 1 else f"part {ci + 1}/{len(chunks)}: {d}"))
            reps, _ = self._denoise_reps(denoise, n, gen, steps, eta, known, mask, sub)
            for i in range(n):
                g = uncanonicalise(time_denormalise(reps[i], b - a), ang, off)   # (b - a, J, 3)
                seg = full[i, a:b]
                seg[~k] = g[~k]
        return full


def load_weights(net: nn.Module, tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    """Load a checkpoint's ``net.*`` tensors into ``net`` (strict) and check it has the feature statistics;
    :class:`CheckpointError` otherwise."""
    sd = {k[len("net."):]: v for k, v in tensors.items() if k.startswith("net.")}
    load_strict(net, sd, path, "its config")
    if "stats.mean" not in tensors or "stats.std" not in tensors:
        raise CheckpointError(f"{Path(path).name} has no normalisation statistics")


def read_checkpoint(path: str | Path, kind: str, config_cls: type) -> tuple[dict[str, torch.Tensor], dict[str, str], Any]:
    """(tensors, metadata, config) of a diffusion-family checkpoint (the teacher or its distilled student):
    the stored config rebuilt strictly, in the motion representation this version reads, else
    :class:`CheckpointError`."""
    tensors, meta = load_checkpoint(path, kind)
    cfg = config_from_json(config_cls, meta["config"])
    if cfg.representation != Config.representation:
        raise CheckpointError(f"{Path(path).name} uses motion representation {cfg.representation!r}; this "
                              f"version reads {Config.representation!r}")
    return tensors, meta, cfg


def load_generator(path: str | Path, encoder: Any = None) -> DiffusionGenerator:
    """Rebuild the model from the checkpoint's stored config (strict).  ``encoder`` (optional) must match
    the checkpoint's text encoder, else :class:`CheckpointError`."""
    tensors, meta, cfg = read_checkpoint(path, KIND, Config)
    net = Denoiser(cfg)
    load_weights(net, tensors, path)
    enc_name = meta.get("text_encoder", cfg.text_encoder)
    if encoder is not None:
        check_encoder(encoder, enc_name, cfg.text_dim)
    return DiffusionGenerator(cfg, net, tensors["stats.mean"], tensors["stats.std"], meta, encoder)
