"""The class-conditioned VAE generator: sampling, variations, latent interpolation paths, and its loader."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..core.checkpoint import config_from_json, load_checkpoint, load_strict
from ..core.errors import CheckpointError, UserError
from ..core.latent import lerp, slerp, weights
from ..core.limits import LIMITS
from ..core.motion import Motion, MotionError, MotionLabels
from ..core.repetitions import chain, split_repetitions, time_denormalise, time_normalise
from ..core.representation import canonicalise
from ..core.representation_torch import features_to_rep, rep_item_features
from ..core.skeleton import COMMON
from ..data import preprocess
from ..models.vae import KIND, ActorVAE, Config, class_key, resolve_label, split_class
from .registry import ProgressFn, Request

_BLEND = 4                 # frames cross-faded where two decoded repetitions meet


# ---------------------------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Endpoint:
    """One end of an interpolation: a class + seed (z ~ N(0, I)), or a real motion (its posterior
    mean; ``label``/``correct`` then override the motion's own class)."""

    label: str | None = None
    correct: bool | None = None
    seed: int = 0
    motion: Motion | None = None


@dataclass(frozen=True, eq=False)
class LatentPath:
    """A segment in the decoder's input space: latent codes z_a, z_b (D,) and class biases b_a, b_b (D,)
    of its ends (class ids ``class_a``, ``class_b``).  Point t in [0, 1] decodes from memory
    interp(z_a, z_b, t) + lerp(b_a, b_b, t), with interp = slerp if ``spherical`` else lerp."""

    z_a: torch.Tensor
    b_a: torch.Tensor
    class_a: int
    z_b: torch.Tensor
    b_b: torch.Tensor
    class_b: int
    spherical: bool = False

    def memories(self, t: torch.Tensor) -> torch.Tensor:
        """t (S,) -> decoder memories (S, D)."""
        t = torch.as_tensor(t, dtype=self.z_a.dtype).reshape(-1)
        z = slerp(self.z_a, self.z_b, t) if self.spherical else lerp(self.z_a, self.z_b, t)   # (S, D)
        return z + lerp(self.b_a, self.b_b, t)                                                  # (S, D)


#: The repetition round whose prior latent is a motion's performer (``_prior_z`` with the performer prior);
#: far beyond any real round (a motion has at most a few hundred repetitions).
PERFORMER_ROUND = 2**31 - 1
#: The round whose seed picks a motion's recorded performer (``Config.performer_mixture``).
PICK_ROUND = 2**31 - 2


def _noop(fraction: float, text: str) -> None:
    return None


class VAEGenerator:
    """The trained VAE behind the :class:`motionviz.generators.registry.Generator` protocol."""

    name = "vae"
    tasks = frozenset({"label", "interpolate", "vary"})
    skeleton = COMMON

    def __init__(self, model: ActorVAE, metadata: dict[str, str] | None = None, path: Path | None = None):
        self.model = model.eval()
        self.config = model.config
        self.metadata = dict(metadata or {})
        self.path = path
        self.classes = tuple(self.config.classes)
        self._index = {k: i for i, k in enumerate(self.classes)}
        labels: list[str] = []
        for k in self.classes:
            lab, _ = split_class(k)
            if lab not in labels:
                labels.append(lab)
        self.labels = tuple(labels)

    # ---- classes ---------------------------------------------------------------------------
    def has_correctness(self, label: str) -> bool:
        label = resolve_label(label, self.labels)
        return f"{label}/correct" in self._index or f"{label}/incorrect" in self._index

    # ---- text (the VAE reads none) ---------------------------------------------------------
    text_encoder_loaded = True

    def condition_text(self, request: Request) -> str:
        return ""

    def resolve(self, name: str) -> str:
        return resolve_label(name, self.labels)

    def class_index(self, label: str | None, correct: bool | None = None) -> int:
        """Class id of (label, correct); ``correct=None`` means "correct" for labels that have both."""
        if label is None or not str(label).strip():
            raise UserError("choose an exercise (label) for the VAE")
        lab = self.resolve(label)
        if lab in self._index:
            if correct is False:
                raise UserError(f"{lab} has no incorrect examples in this model's training data")
            return self._index[lab]
        key = f"{lab}/correct" if correct in (None, True) else f"{lab}/incorrect"
        if key not in self._index:
            state = "correct" if correct in (None, True) else "incorrect"
            raise UserError(f"{lab} has no {state} examples in this model's training data")
        return self._index[key]

    # ---- core ------------------------------------------------------------------------------
    def _prior(self, seed: int, num: int, k: int = 0) -> torch.Tensor:
        """eps ~ N(0, I) (N, D) of repetition round ``k``: row i from its own generator seeded with
        :meth:`_round_seed` (seed + i, k), so sample i of a batch seeded with s equals the single sample
        seeded with s + i."""
        rows = []
        for i in range(int(num)):
            g = torch.Generator(device="cpu")
            g.manual_seed(self._round_seed((int(seed) + i) % 2**64, k))
            rows.append(torch.randn(1, self.config.latent_dim, generator=g))
        return torch.cat(rows) if rows else torch.zeros(0, self.config.latent_dim)   # (N, D)

    def _prior_z(self, c: int, seed: int, num: int, k: int = 0) -> torch.Tensor:
        """Prior latents of class c, repetition round k (N, D): temperature * prior_chol[c] @ eps with the
        probabilistic-PCA prior (``Config.prior_rank`` > 0), else temperature * prior_scale[c] * eps.  With
        the performer prior (``Config.performer_prior``) the rounds of one seed share a part:
        sqrt(share) * the performer's latent (its own round, :data:`PERFORMER_ROUND`) + sqrt(1 - share) *
        the round's, so every repetition still has the prior's distribution.  With ``performer_mixture`` h
        > 0 the performer part is a recorded performer's mean latent (:meth:`_pick`) + h * that Gaussian
        part: a Gaussian kernel density over the class's recorded performers."""
        share = getattr(self.model, "prior_share", None)
        if share is None:
            return self._prior_one(c, seed, num, k)
        a = float(share[c] if share.numel() > 1 else share[0])
        performer = math.sqrt(a) * self._prior_one(c, seed, num, PERFORMER_ROUND)             # (N, D)
        h = float(getattr(self.config, "performer_mixture", 0.0))
        count = getattr(self.model, "performer_count", None)
        if h > 0 and count is not None and int(count[c]) > 0:
            performer = self.model.performer_means[c, self._pick(seed, num, int(count[c]))] + h * performer
        return performer + math.sqrt(1.0 - a) * self._prior_one(c, seed, num, k)

    def _pick(self, seed: int, num: int, n: int) -> torch.Tensor:
        """(N,) long: the recorded performer (of n) of each sample, row i from a generator seeded with
        :meth:`_round_seed` (seed + i, :data:`PICK_ROUND`), like :meth:`_prior`."""
        out = []
        for i in range(int(num)):
            g = torch.Generator(device="cpu")
            g.manual_seed(self._round_seed((int(seed) + i) % 2**64, PICK_ROUND))
            out.append(int(torch.randint(n, (1,), generator=g)))
        return torch.tensor(out, dtype=torch.long)

    def _prior_one(self, c: int, seed: int, num: int, k: int) -> torch.Tensor:
        eps = self._prior(seed, num, k)
        t = float(self.config.temperature)
        chol = getattr(self.model, "prior_chol", None)
        if chol is not None:
            return t * (eps @ chol[c].T)
        return eps * (t * self.model.prior_scale[c])

    def _round_seed(self, seed: int, k: int) -> int:
        """The seed of repetition round ``k`` (round 0 uses ``seed`` itself)."""
        if k == 0:
            return int(seed)
        return int(np.random.SeedSequence([int(seed), int(k)]).generate_state(1, np.uint64)[0])

    def _decode_reps(self, memory: torch.Tensor, chunk: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """memory (N, D) -> canonical repetitions (N, R, J, 3), durations (N,) seconds."""
        js, ds = [], []
        with torch.inference_mode():
            for s in range(0, memory.shape[0], chunk):
                x = self.model.decode_memory(memory[s:s + chunk], self.config.rep_frames)   # (n, R, F)
                j, d = features_to_rep(self.model.denormalise(x))
                js.append(j)
                ds.append(d)
        d = np.clip(np.concatenate(ds), self.config.min_seconds, self.config.max_seconds)
        return np.concatenate(js), d

    def _decode_memory(self, memory: torch.Tensor, frames: int, progress: ProgressFn,
                       more: "Callable[[int], torch.Tensor] | None" = None) -> np.ndarray:
        """memory (N, D) -> joints (N, frames, J, 3) float32 in metres: the repetition decoded from
        ``memory``, followed by repetitions decoded from ``more(k)`` (N, D), k = 1, 2, ... (default: the
        same latent moved by ``continue_spread`` prior standard deviations, seeded) until ``frames`` are
        filled.  Each repetition takes its own decoded duration and starts where the previous one ended
        (:func:`motionviz.core.repetitions.chain`: pelvis moved to meet it, seam cross-faded)."""
        N = memory.shape[0]
        if more is None:
            def more(k: int) -> torch.Tensor:
                g = torch.Generator(device="cpu")
                g.manual_seed(self._round_seed(0, k))
                return memory + self.config.continue_spread * torch.randn(memory.shape, generator=g)
        parts: list[list[np.ndarray]] = [[] for _ in range(N)]
        have = np.zeros(N, dtype=int)
        k = 0
        while (have < frames).any():
            reps, durs = self._decode_reps(memory if k == 0 else more(k))
            for i in range(N):
                if have[i] >= frames:
                    continue
                L = max(2 * _BLEND, int(round(float(durs[i]) * self.config.fps)) + 1)
                have[i] += L - (min(_BLEND, L - 1) if parts[i] else 0)                # chain cross-fades
                parts[i].append(time_denormalise(reps[i], L))
            k += 1
            progress(min(0.99, 0.2 + 0.8 * float(np.minimum(have, frames).mean()) / frames),
                     f"decoding repetition {k}")
        return np.stack([chain(p, blend=_BLEND)[:frames] for p in parts]).astype(np.float32)

    def _motion(self, joints: np.ndarray, label: str, correct: bool | None, text: str) -> Motion:
        return Motion(joints, COMMON, self.config.fps,
                      MotionLabels(dataset=label.split(":", 1)[0], label=label, correct=correct,
                                   text=text, source="vae"))

    def _frames(self, frames: int) -> int:
        lo, hi = LIMITS["frames"]
        try:
            f = int(frames)
        except (TypeError, ValueError):
            raise UserError(f"frames must be a whole number, got {frames!r}") from None
        if not lo <= f <= hi:
            raise UserError(f"frames must be between {lo} and {hi}, got {f}")
        return f

    def sample(self, label: str, correct: bool | None = None, frames: int = 60, num: int = 1, seed: int = 0,
               progress: ProgressFn | None = None) -> list[Motion]:
        """``num`` motions of class (label, correct), z ~ N(0, I) drawn from a generator seeded with ``seed``."""
        progress = progress or _noop
        frames = self._frames(frames)
        c = self.class_index(label, correct)
        lab, corr = split_class(self.classes[c])
        z = self._prior_z(c, seed, num)                                             # (N, D)
        progress(0.1, "sampling latents")
        bias = self.model.bias(c).detach()
        memory = z + bias
        joints = self._decode_memory(memory, frames, progress,
                                     lambda k: self._prior_z(c, seed, num, k) + bias)
        return [self._motion(j, lab, corr, f"VAE sample of {self.classes[c]} (seed {seed}, #{i})")
                for i, j in enumerate(joints)]

    def prepare(self, motion: Motion) -> Motion:
        """A user/dataset motion -> common skeleton, 20 fps, normalised, gaps filled (as in training)."""
        if not isinstance(motion, Motion):
            raise MotionError("expected a Motion")
        m = preprocess(motion, self.config.fps, normalise=True)
        if m.num_frames < 8:
            raise MotionError(f"the motion has {m.num_frames} frames at {self.config.fps:g} fps; the VAE needs at least 8")
        if not np.isfinite(m.joints).all():
            raise MotionError("the motion has a joint that is never observed; the VAE needs all 15 common joints")
        return m

    def encode(self, motion: Motion, label: str | None = None, correct: bool | None = None,
               progress: ProgressFn | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Posterior (mu (D,), logvar (D,)) and class id of a real motion.  The class is ``label`` /
        ``correct`` if given, else the motion's own label if the model knows it, else the class whose
        encode-decode reconstructs the motion best."""
        progress = progress or _noop
        progress(0.0, "encoding the motion")

        m = self.prepare(motion)
        a, b = max(split_repetitions(m, self.config.max_seconds, self.config.min_seconds),
                   key=lambda ab: ab[1] - ab[0])                                     # its longest repetition
        rep_j = time_normalise(canonicalise(m.joints[a:b])[0], self.config.rep_frames)
        feats = torch.from_numpy(rep_item_features(rep_j, (b - a - 1) / m.fps))[None]  # (1, R, F)
        x = self.model.normalise(feats)
        mask = torch.ones(1, x.shape[1], dtype=torch.bool)
        with torch.inference_mode():
            if label is not None and str(label).strip():
                c = self.class_index(label, correct)
            else:
                key = class_key(m.labels.label, m.labels.correct) if m.labels.label else ""
                if key in self._index:
                    c = self._index[key]
                elif m.labels.label and m.labels.label in self.labels:
                    c = self.class_index(m.labels.label, None)
                else:
                    c = self._best_class(x, mask)
            mu, logvar = self.model.encode(x, mask, torch.tensor([c]))
        progress(0.2, f"encoded as {self.classes[c]}")
        return mu[0].clone(), logvar[0].clone(), c

    def _best_class(self, x: torch.Tensor, mask: torch.Tensor) -> int:
        """The class whose encode(posterior mean)-decode reconstructs x (1, T, F) best."""
        C = len(self.classes)
        y = torch.arange(C)
        xs = x.expand(C, -1, -1)
        ms = mask.expand(C, -1)
        mu, _ = self.model.encode(xs, ms, y)
        rec = self.model.decode(mu, y, x.shape[1], ms)
        err = ((rec - xs) ** 2).mean(dim=(1, 2))
        return int(err.argmin())

    def vary(self, motion: Motion, num: int = 4, seed: int = 0, spread: float = 1.0, frames: int | None = None,
             label: str | None = None, correct: bool | None = None,
             progress: ProgressFn | None = None) -> list[Motion]:
        """Variations of a real motion: decode z = mu + spread * sigma * eps, eps ~ N(0, I) (seeded).
        ``spread`` 0 gives the reconstruction; ``frames`` defaults to the encoded length."""
        progress = progress or _noop
        if not (isinstance(spread, (int, float)) and math.isfinite(spread) and 0.0 <= spread <= 10.0):
            raise UserError(f"spread must be a number between 0 and 10, got {spread!r}")
        if not 1 <= int(num) <= LIMITS["num"][1]:
            raise UserError(f"number of variations must be between 1 and {LIMITS['num'][1]}, got {num}")
        mu, logvar, c = self.encode(motion, label, correct, progress)
        T = self.prepare(motion).num_frames if frames is None else frames
        T = self._frames(T)
        eps = self._prior(seed, int(num))                                           # (N, D)
        sigma = torch.exp(0.5 * logvar)
        bias = self.model.bias(c).detach()
        memory = mu + float(spread) * sigma * eps + bias

        def more(k: int) -> torch.Tensor:
            e = self._prior(seed, int(num), k)
            return mu + max(float(spread), self.config.continue_spread) * sigma * e + bias
        joints = self._decode_memory(memory, T, progress, more)
        lab, corr = split_class(self.classes[c])
        src = motion.labels.label or "motion"
        return [self._motion(j, lab, corr, f"VAE variation {i} of {src} (seed {seed}, spread {spread:g})")
                for i, j in enumerate(joints)]

    def _endpoint(self, e: Endpoint, progress: ProgressFn) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Endpoint -> (z (D,), class bias (D,), class id)."""
        if e.motion is not None:
            mu, _, c = self.encode(e.motion, e.label, e.correct, progress)
            return mu, self.model.bias(c).detach(), c
        c = self.class_index(e.label, e.correct)
        return self._prior_z(c, e.seed, 1)[0], self.model.bias(c).detach(), c

    def segment(self, start: Endpoint, end: Endpoint, spherical: bool = False,
             progress: ProgressFn | None = None) -> "LatentPath":
        """The latent segment from ``start`` to ``end`` (encodes real motions once); decode any point of
        it with :meth:`decode_path` (e.g. at the position of a UI slider)."""
        progress = progress or _noop
        za, ba, ca = self._endpoint(start, progress)
        zb, bb, cb = self._endpoint(end, progress)
        return LatentPath(za, ba, ca, zb, bb, cb, bool(spherical))

    def decode_path(self, path: "LatentPath", t: Sequence[float] | torch.Tensor, frames: int = 60,
                    progress: ProgressFn | None = None) -> list[Motion]:
        """Motions at positions ``t`` (each in [0, 1]; 0 = start, 1 = end) of ``path``."""
        progress = progress or _noop
        frames = self._frames(frames)
        tt = torch.as_tensor(t, dtype=torch.float32).reshape(-1)                    # (S,)
        if tt.numel() == 0 or not bool(((tt >= 0) & (tt <= 1)).all()):
            raise UserError("interpolation positions must lie between 0 and 1")
        joints = self._decode_memory(path.memories(tt), frames, progress)
        kind = "spherical" if path.spherical else "linear"
        ka, kb = self.classes[path.class_a], self.classes[path.class_b]
        out = []
        for w, j in zip(tt.tolist(), joints):
            lab, corr = split_class(ka if w < 0.5 else kb)
            out.append(self._motion(j, lab, corr, f"VAE {kind} interpolation {ka} -> {kb} at t = {w:.2f}"))
        return out

    def interpolate_path(self, start: Endpoint, end: Endpoint, steps: int = 8, frames: int = 60,
                         spherical: bool = False, progress: ProgressFn | None = None) -> list[Motion]:
        """``steps`` motions evenly spaced from ``start`` to ``end`` (both included), (steps, frames)
        deterministic for given endpoints: the latent z is interpolated linearly (``spherical=False``) or
        along the great circle (``True``, norm interpolated linearly), the class bias linearly.

        * two seeds of one class: ``Endpoint("ui-prmd:m01", True, 0)`` -> ``Endpoint("ui-prmd:m01", True, 1)``
        * two classes: ``Endpoint("m01", True, 0)`` -> ``Endpoint("m01", False, 0)`` (correct -> incorrect)
        * two real motions: ``Endpoint(motion=a)`` -> ``Endpoint(motion=b)`` (posterior means)

        The first motion equals ``sample(start...)`` / the reconstruction of the start motion, the last
        the end's.  Labels: the start class for t < 0.5, the end class after."""
        progress = progress or _noop
        frames = self._frames(frames)
        if not 2 <= int(steps) <= 64:
            raise UserError(f"interpolation steps must be between 2 and 64, got {steps}")
        p = self.segment(start, end, spherical, progress)
        out = self.decode_path(p, weights(int(steps)), frames, progress)
        S = len(out)
        return [self._motion(m.joints, m.labels.label, m.labels.correct,
                             m.labels.text.rsplit(" at t =", 1)[0] + f", step {i + 1}/{S} (t = {i / (S - 1):.2f})")
                for i, m in enumerate(out)]

    # ---- the Generator protocol -----------------------------------------------------------
    def interpolate(self, request: Request, progress: ProgressFn | None = None) -> list[Motion]:
        """Interpolation described by a Request: from (label, correct, seed) or ``source`` to
        (to_label or label, to_correct or correct, to_seed or seed + 1) or ``to_source``;
        ``request.steps`` points; ``spherical`` for slerp."""
        r = request.validated()
        start = Endpoint(r.label, r.correct, r.seed, r.source)
        to_correct = r.to_correct if r.to_correct is not None else (r.correct if r.to_label is None else None)
        end = Endpoint(r.to_label or r.label, to_correct, r.seed + 1 if r.to_seed is None else r.to_seed, r.to_source)
        return self.interpolate_path(start, end, r.steps, r.frames, bool(r.spherical), progress)

    def generate(self, request: Request, progress: ProgressFn | None = None) -> list[Motion]:
        """``request.task``: "label" (default; ``source`` given -> "vary"), "vary" or "interpolate"."""
        r = request.validated()
        task = r.task or ("vary" if r.source is not None else "label")
        if task == "interpolate":
            return self.interpolate(r, progress)
        if task == "vary":
            if r.source is None:
                raise UserError("variations need a source motion")
            return self.vary(r.source, r.num, r.seed, float(r.spread), r.frames,
                             r.label, r.correct, progress)
        if task != "label":
            raise UserError(f"the VAE does {', '.join(sorted(self.tasks))}, not {task!r}")
        return self.sample(r.label, r.correct, r.frames, r.num, r.seed, progress)


def load_generator(path: str | Path) -> VAEGenerator:
    """Rebuild the VAE from a checkpoint (config from its metadata, weights strict)."""
    path = Path(path)
    tensors, meta = load_checkpoint(path, KIND)
    config = config_from_json(Config, meta["config"])
    try:
        model = ActorVAE(config)
    except ValueError as e:
        raise CheckpointError(f"{path.name} does not match the VAE architecture: {str(e).splitlines()[0]}") from None
    extra = {k: tensors.pop(k) for k in ("mu_shift", "prior_scale", "prior_chol", "prior_share",
                                         "performer_means", "performer_count") if k in tensors}
    mix = config.performer_mixture > 0
    if mix != ("performer_means" in extra) or mix != ("performer_count" in extra):
        raise CheckpointError(f"{path.name}: its performer_means / performer_count do not match performer_mixture "
                              f"{config.performer_mixture:g} (both are needed with a mixture, neither without)")
    if mix:
        pm, pc = extra.pop("performer_means"), extra.pop("performer_count")
        C, D = len(config.classes), config.latent_dim
        if (pm.dim() != 3 or pm.shape[0] != C or pm.shape[2] != D or pm.shape[1] < 1 or pc.shape != (C,)
                or pc.dtype != torch.int64 or not bool(((pc >= 0) & (pc <= pm.shape[1])).all())
                or not bool(torch.isfinite(pm).all())):
            raise CheckpointError(f"{path.name} has performer_means / performer_count of the wrong shape or range")
    if config.performer_prior and "prior_share" not in extra:
        raise CheckpointError(f"{path.name} asks for the performer prior but holds no prior_share")
    if not config.performer_prior and "prior_share" in extra:
        raise CheckpointError(f"{path.name} holds a prior_share but its config has performer_prior false")
    if "prior_share" in extra:
        want = len(config.classes) if config.class_share else 1
        sh = extra["prior_share"]
        if sh.dim() != 1 or sh.numel() != want:
            raise CheckpointError(f"{path.name} holds {sh.numel()} prior_share value(s), its config asks for {want}")
        if not bool(((sh >= 0.0) & (sh <= 1.0)).all()):
            raise CheckpointError(f"{path.name} has a prior_share outside [0, 1]")
    if config.prior_rank > 0 and "prior_chol" not in extra:
        raise CheckpointError(f"{path.name} asks for a rank-{config.prior_rank} prior but holds no prior_chol")
    if config.prior_rank == 0 and "prior_chol" in extra:
        raise CheckpointError(f"{path.name} holds a prior_chol but its config has prior_rank 0")
    load_strict(model, tensors, path, "the VAE architecture")
    if mix:
        model.register_buffer("performer_means", pm.float().clone(), persistent=False)
        model.register_buffer("performer_count", pc.clone(), persistent=False)
    for k, v in extra.items():
        try:
            getattr(model, k).copy_(v)
        except RuntimeError as e:
            raise CheckpointError(f"{path.name} does not match the VAE architecture: {str(e).splitlines()[0]}") from None
    return VAEGenerator(model.eval(), meta, path)
