"""ACTOR-style conditional transformer VAE (after Petrovich, Black & Varol, ICCV 2021).

Classes are the exercise/content labels ``<dataset>:<id>`` crossed with correct/incorrect where the data
has it (UI-PRMD, IRDS): ``ui-prmd:m01/correct``, ``ui-prmd:m01/incorrect``, ``kimore:ex5``, ...

* Encoder: per-frame features -> linear -> + sinusoidal positions; two learnable per-class query tokens
  (mu, Sigma) are prepended; a transformer encoder over [mu_c, sigma_c, x_1..x_T] (padding-masked); the
  outputs at the two tokens are the posterior mean and log-variance of z (D = d_model).
* Decoder: memory = z + b_c (a learnable per-class bias); queries = sinusoidal encodings of t = 0..T-1, so
  any length T can be decoded; a transformer decoder (self-attention over time + cross-attention to the
  memory) -> linear -> per-frame features.  With ``memory_tokens`` K > 1 the memory is mapped linearly to K
  tokens, so each frame can read a different mixture of them (one token adds the same vector everywhere);
  with ``linear_skip`` a linear map of the memory to the whole repetition is added to the output, so class
  means and the linear modes of z are fitted directly (the deep path alone shrank them when underfit).
* Items are single repetitions (:mod:`motionviz.core.repetitions`) time-normalised to ``rep_frames`` (64).
  Features (F = 3 + 3 (J - 1) + 1 = 46 on the COMMON skeleton): the pelvis position (root trajectory; x/z
  relative to frame 0 of the repetition, y = height above the floor), the other 14 joints relative to the
  pelvis and the repetition's log-duration (constant over frames), standardised with per-feature
  statistics stored in the checkpoint (buffers).  A sample of any length chains decoded repetitions, each
  from its own latent (seed + i per sample, one latent per repetition round), cross-faded where they meet.
* Loss: masked MSE on the standardised positions + masked MSE on frame-to-frame velocities (standardised
  by their own statistics) + ``kl_weight`` (1e-5) x KL(q(z|x,c) || N(0, I)) + the relative motion loss;
  with ``exec_weight`` also the execution-consistency terms of :meth:`ActorVAE.execution_loss` (a critic
  of the execution trained on the real repetitions; swapped latents and prior-like samples decoded with a
  class must read as that class's execution).

Sampling draws eps ~ N(0, I) from a ``torch.Generator`` seeded by the request (same seed -> same output)
and maps it through the prior fitted at export (``training.vae.recentre_state``): a per-class diagonal
spread, or with ``prior_rank`` a per-class probabilistic-PCA covariance (its Cholesky factor), times
``temperature``; with ``performer_prior`` the repetitions of one sample share part of their latent, as one
subject's repetitions do (with ``class_share`` each class its own part; with ``performer_mixture`` that part
is centred on one of the class's recorded performers); ``same_side`` mirrors minority-side recordings of
one-sided exercises first;
``vary`` decodes around the posterior of an encoded real motion; ``interpolate`` walks linearly or
spherically between two latent codes (seeds, classes or encoded motions).

Public API (stable; used by the CLI, the app and the evaluator):

* ``load_generator("vae").generate(Request(model="vae", label="ui-prmd:m01", correct=False, frames=60,
  seed=0, num=4))`` -> ``num`` :class:`Motion` (T, 15, 3), 20 fps.  ``task="interpolate" | "vary"``
  selects the other tasks (``to_label``/``to_seed``/``to_source``/``steps``/``spherical``, ``source`` +
  ``spread``).
* :class:`VAEGenerator`: ``labels``, ``classes``, ``has_correctness(label)``, ``resolve(name)``,
  ``sample``, ``vary``, ``encode``, ``interpolate_path(Endpoint, Endpoint, steps, frames, spherical)``,
  ``segment(Endpoint, Endpoint, spherical) -> LatentPath`` + ``decode_path(path, t, frames)``.
* :mod:`motionviz.generators.interpolate`: ``between_seeds``, ``between_classes``, ``between_motions``, ``path_array``.
* :func:`bench` (seconds per 60-frame sample) and :func:`sanity` (plausibility vs held-out data).

Training: ``python -m motionviz train vae --minutes 75 --threads 1 --save-every 5 --seed 0`` (see
``build_training``; datasets :data:`VAE_DATASETS`, training split, mirrored copies added).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..core.errors import CheckpointError, UserError
from ..core.motion import DEFAULT_FPS, Motion
from ..core.representation_torch import sinusoidal
from .losses import motion_loss

__all__ = ["Config", "ActorVAE", "class_key", "split_class", "classes_of",
           "resolve_label",
           "tiny_config", "CORRECTNESS_DATASETS", "exercise_pairs", "ExecutionCritic"]

KIND = "vae"
# Datasets whose motions are labelled correct / incorrect (others: one state per label).
CORRECTNESS_DATASETS = ("ui-prmd", "irds")


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------
@dataclass
class Config:
    classes: tuple[str, ...] = ()          # class vocabulary, e.g. "ui-prmd:m01/correct", "kimore:ex5"
    num_joints: int = 15                   # COMMON skeleton
    d_model: int = 128                     # transformer width = latent size
    heads: int = 4
    ff: int = 256
    enc_layers: int = 2
    dec_layers: int = 3
    dropout: float = 0.1
    kl_weight: float = 1e-5
    pos_weight: float = 1.0
    vel_weight: float = 1.0
    motion_weight: float = 1.0             # relative motion loss (motionviz.models.losses.motion_loss); 0 = off
    motion_eps: float = 0.05               # its floor on a repetition's motion energy (standardised units^2)
    rep_frames: int = 64                   # normalised frames per repetition (see motionviz.core.repetitions)
    min_seconds: float = 0.8               # shortest / longest repetition (longer clips are split)
    max_seconds: float = 6.0
    continue_spread: float = 0.3           # later repetitions of vary/interpolate: z + spread * sigma * eps
    fps: float = DEFAULT_FPS
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.03                   # fraction of the budget with a linear lr warm-up
    mirror: bool = True                    # mirror augmentation (sided labels swapped)
    class_balance: float = 0.5             # P(class) ~ count**class_balance (0 = uniform over classes)
    balance_correct: bool = False          # an exercise recorded both ways splits its weight equally between
    #                                        its correct and incorrect class (training.vae.class_weights)
    shared_execution: bool = False         # decoder bias = per-class bias + one bias per execution (correct /
    #                                        incorrect / neither) shared by all exercises (ActorVAE.bias)
    #                                        Both tried for issue #18 and not shipped: see the README's VAE card.
    pair_weight: float = 0.0               # execution-pair loss (ActorVAE.losses): an exercise recorded both
    #                                        ways decodes the same z with the other execution and must differ
    #                                        from the reconstruction by the mean real difference of the two
    #                                        executions (set_execution_pairs); 0 = off
    adv_weight: float = 0.0                # execution-invariant latent (Fader-style, ActorVAE.adversary_loss):
    #                                        a critic reads (posterior mean, exercise) and guesses the
    #                                        execution of exercises recorded both ways; the encoder gets its
    #                                        gradient reversed, so the execution has to come from the class
    #                                        bias, not from z; 0 = off
    adv_ramp_steps: int = 2000             # the encoder's reversed gradient ramps up linearly over these steps
    exec_weight: float = 0.0               # execution consistency (ActorVAE.execution_loss): a small critic
    #                                        learns from the real repetitions of exercises recorded both ways
    #                                        which execution they show; swapped latents and prior-like
    #                                        samples decoded with a class must read to it as that class's
    #                                        execution, so the class (not the latent) decides correct /
    #                                        incorrect; 0 = off (tried for
    #                                        issue #18 and not shipped: see the README's VAE card)
    exec_ramp_steps: int = 2000            # the decoder's term ramps up linearly over these steps
    exec_items: int = 6                    # per batch: this many swapped latents and this many prior-like
    #                                        samples are decoded for the execution term
    exec_bank: int = 32                    # recent posterior-mean deviations kept per class for the prior-like
    #                                        samples (training only)
    datasets: tuple[str, ...] = ()         # training datasets (() = VAE_DATASETS)
    posterior_heads: bool = True           # linear mu / log-variance heads on the two token outputs (the
    #                                        shipped architecture and the only one built, see validate)
    logvar_init: float = -2.0              # initial bias of the log-variance head (sigma ~ 0.37)
    memory_tokens: int = 1                 # decoder memory tokens: 1 = ACTOR's single token z + b_c (cross-
    #                                        attention to one token adds the same vector at every frame);
    #                                        K > 1 = a linear map of z + b_c to K tokens (+ learnt token
    #                                        embeddings) that each frame attends to with its own weights
    temperature: float = 1.0               # prior samples z = temperature * (prior_scale[c] * eps or, with
    #                                        prior_rank, prior_chol[c] @ eps) (sampling only; < 1 keeps
    #                                        samples nearer their class centre, fewer of them
    #                                        in the tails where the two executions' latents overlap)
    prior_rank: int = 0                    # 0: diagonal prior, z = temperature * prior_scale[c] * eps; k > 0:
    #                                        per-class probabilistic-PCA prior fitted at export (the k leading
    #                                        directions of the class's posterior means + an isotropic residual,
    #                                        training.vae.ppca_covariance), z = temperature * prior_chol[c] @ eps:
    #                                        a diagonal prior draws every latent direction independently, off
    #                                        the low-dimensional set the posteriors lie on (jittery samples)
    same_side: bool = False                # one-sided exercises (data.sided_labels) recorded with the other limb
    #                                        than most of their recordings are mirrored to the majority's side
    #                                        before training (UI-PRMD s07 uses the left arm for m07, m09, m10)
    performer_prior: bool = False          # a sampled motion is one performer's repetitions: their prior latents
    #                                        share a part (prior_share, the intra-performer correlation of the
    #                                        training repetitions' posterior means, fitted at export): z_k =
    #                                        sqrt(share) * z_performer + sqrt(1 - share) * z_k', both from the
    #                                        prior; False = independent repetitions
    performer_mixture: float = 0.0         # with performer_prior: > 0 = the performer part of a sample is one of
    #                                        the class's recorded performers (the mean latent of their
    #                                        repetitions, picked by the seed) plus this bandwidth x the Gaussian
    #                                        performer part (a Gaussian kernel density over the recorded
    #                                        performers, fitted at export); 0 = the Gaussian performer part alone
    class_share: bool = False              # with performer_prior: one share per class (prior_share (C,)), the
    #                                        class's own intra-performer correlation where at least two of its
    #                                        performers have two or more repetitions, else the pooled one
    #                                        (training.vae.class_shares): subjects repeat a correct execution
    #                                        more alike (UI-PRMD 0.72-0.94) than an incorrect one (0.24-0.52)
    linear_skip: bool = False              # add a linear map of the memory to the whole repetition (R x F,
    #                                        zero at init) to the transformer's output: class means and
    #                                        linear modes of z are fitted directly instead of through
    #                                        the deep path, which shrinks them when underfit

    def validate(self) -> None:
        """A config without the posterior heads (checkpoints from before them; none is shipped) is a
        CheckpointError."""
        if self.posterior_heads is not True:
            raise CheckpointError(f"VAE config asks for posterior_heads={self.posterior_heads!r}; this version "
                                  f"builds only the model with the posterior heads")
        t = self.temperature
        if isinstance(t, bool) or not (isinstance(t, (int, float)) and 0.05 <= t <= 2.0):
            raise CheckpointError(f"VAE temperature must be a number in 0.05-2, got {self.temperature!r}")
        k = self.memory_tokens
        if isinstance(k, bool) or not (isinstance(k, int) and 1 <= k <= 64):
            raise CheckpointError(f"VAE memory_tokens must be a whole number in 1-64, got {self.memory_tokens!r}")
        h = self.performer_mixture
        if isinstance(h, bool) or not (isinstance(h, (int, float)) and 0.0 <= h <= 2.0):
            raise CheckpointError(f"VAE performer_mixture must be a number in 0-2, got {self.performer_mixture!r}")
        if h > 0 and self.performer_prior is not True:
            raise CheckpointError("VAE performer_mixture needs performer_prior true")
        if self.class_share is not False and not (self.class_share is True and self.performer_prior is True):
            raise CheckpointError(f"VAE class_share must be false, or true with performer_prior true; got "
                                  f"class_share={self.class_share!r}, performer_prior={self.performer_prior!r}")
        r = self.prior_rank
        if isinstance(r, bool) or not (isinstance(r, int) and 0 <= r <= self.d_model):
            raise CheckpointError(f"VAE prior_rank must be a whole number in 0-{self.d_model} (the latent size), "
                                  f"got {self.prior_rank!r}")

    @property
    def num_features(self) -> int:
        """3J pose numbers + 1 (the repetition's log-duration, constant over its frames)."""
        return 3 * self.num_joints + 1

    @property
    def latent_dim(self) -> int:
        return self.d_model


def tiny_config(classes: Sequence[str] = ()) -> Config:
    """A few-thousand-parameter model for tests and smoke runs."""
    return Config(classes=tuple(classes), d_model=16, heads=2, ff=32, enc_layers=1, dec_layers=1,
                  dropout=0.0, batch_size=8, rep_frames=16, lr=3e-3)


# ---------------------------------------------------------------------------------------------
# classes
# ---------------------------------------------------------------------------------------------
def class_key(label: str, correct: bool | None) -> str:
    """Class name of a label + correctness: ``ui-prmd:m01/correct``; labels of datasets without
    correctness (or correct=None) are the class itself."""
    dataset = label.split(":", 1)[0]
    if correct is None or dataset not in CORRECTNESS_DATASETS:
        return label
    return f"{label}/{'correct' if correct else 'incorrect'}"


def split_class(key: str) -> tuple[str, bool | None]:
    """Inverse of :func:`class_key`: (label, correct)."""
    if key.endswith("/correct"):
        return key[: -len("/correct")], True
    if key.endswith("/incorrect"):
        return key[: -len("/incorrect")], False
    return key, None


def classes_of(motions: Sequence[Motion]) -> tuple[str, ...]:
    """Sorted class vocabulary of a list of motions (labels without a label are skipped)."""
    return tuple(sorted({class_key(m.labels.label, m.labels.correct) for m in motions if m.labels.label}))


def resolve_label(name: str, labels: Sequence[str]) -> str:
    """Full label for ``name``: a full ``<dataset>:<id>`` label or an unambiguous bare id (``m01``,
    case-insensitive).  Raises :class:`UserError` naming the candidates otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise UserError("choose an exercise (a label such as ui-prmd:m01)")
    n = name.strip()
    if n in labels:
        return n
    low = n.lower()
    exact = [lab for lab in labels if lab.lower() == low]
    if exact:
        return exact[0]
    if ":" not in n:
        cands = [lab for lab in labels if lab.split(":", 1)[1].lower() == low]
        if len(cands) == 1:
            return cands[0]
        if len(cands) > 1:
            raise UserError(f"exercise {n!r} is ambiguous: it could be {', '.join(cands)}; give the full label")
    some = ", ".join(list(labels)[:12]) + (" ..." if len(labels) > 12 else "")
    raise UserError(f"unknown exercise {n!r} for this model; choose one of: {some}")


def exercise_pairs(classes: Sequence[str]) -> tuple[list[int], list[float]]:
    """For the execution adversary: (exercise id per class, -1 unless the class's exercise has both a
    ``/correct`` and an ``/incorrect`` class; execution per class, 1.0 correct, 0.0 otherwise).  Exercise
    ids number the paired exercises in order of first appearance."""
    have = set(classes)
    ids: dict[str, int] = {}
    ex_of, execution = [], []
    for k in classes:
        label, correct = split_class(k)
        paired = correct is not None and class_key(label, not correct) in have
        ex_of.append(ids.setdefault(label, len(ids)) if paired else -1)
        execution.append(1.0 if correct else 0.0)
    return ex_of, execution


class _ReverseGrad(torch.autograd.Function):
    """Identity forward; gradient multiplied by -scale backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return -ctx.scale * grad, None


def _reverse_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    return _ReverseGrad.apply(x, scale)


class ExecutionCritic(nn.Module):
    """Reads the execution of a repetition: standardised features (B, T, F) + mask (B, T) + exercise ids
    (B,) -> logit (B,) of "correct", one output per exercise (temporal convolutions, masked mean over
    time).  Trained on real repetitions only (``ActorVAE.execution_loss``)."""

    def __init__(self, num_features: int, exercises: int, hidden: int = 64):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(num_features, hidden, 5, padding=2), nn.GELU(),
                                  nn.Conv1d(hidden, hidden, 5, padding=2, dilation=1), nn.GELU(),
                                  nn.Conv1d(hidden, hidden, 5, padding=4, dilation=2), nn.GELU())
        self.head = nn.Linear(hidden, exercises)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, exercise: torch.Tensor) -> torch.Tensor:
        h = self.conv(x.transpose(1, 2))                                              # (B, H, T)
        m = mask[:, None, :].to(h.dtype)
        pooled = (h * m).sum(-1) / m.sum(-1).clamp_min(1.0)                           # (B, H)
        return self.head(pooled).gather(1, exercise[:, None]).squeeze(1)              # (B,)


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------
class ActorVAE(nn.Module):
    """Class-conditional transformer VAE over per-frame pose features."""

    def __init__(self, config: Config):
        super().__init__()
        config.validate()
        if not config.classes:
            raise ValueError("the VAE needs at least one class")
        if config.d_model % config.heads or config.d_model % 2:
            raise ValueError("d_model must be even and divisible by heads")
        self.config = config
        C, D, F = len(config.classes), config.d_model, config.num_features
        self.mu_token = nn.Parameter(torch.randn(C, D) * 0.02)       # (C, D) per-class mu query
        self.sigma_token = nn.Parameter(torch.randn(C, D) * 0.02)    # (C, D) per-class Sigma query
        self.class_bias = nn.Parameter(torch.randn(C, D) * 0.02)     # (C, D) decoder per-class bias
        if config.shared_execution:
            # (3, D) execution bias shared by every exercise: rows correct, incorrect, neither; what
            # "incorrect" changes is learnt from all exercises together, not from each class's few examples
            self.exec_bias = nn.Parameter(torch.zeros(3, D))
            ex = [0 if c is True else 1 if c is False else 2 for c in (split_class(k)[1] for k in config.classes)]
            self.register_buffer("exec_index", torch.tensor(ex, dtype=torch.long), persistent=False)
        self.embed = nn.Linear(F, D)
        enc_layer = nn.TransformerEncoderLayer(D, config.heads, config.ff, config.dropout, activation="gelu",
                                               batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(enc_layer, config.enc_layers, norm=nn.LayerNorm(D),
                                             enable_nested_tensor=False)
        dec_layer = nn.TransformerDecoderLayer(D, config.heads, config.ff, config.dropout, activation="gelu",
                                               batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(dec_layer, config.dec_layers, norm=nn.LayerNorm(D))
        if config.memory_tokens > 1:
            K = config.memory_tokens
            self.memory_proj = nn.Linear(D, K * D)                                 # z + b_c -> K tokens
            self.memory_pos = nn.Parameter(torch.randn(K, D) * 0.02)               # (K, D) token embeddings
        if config.linear_skip:
            self.skip = nn.Linear(D, config.rep_frames * F)                        # memory -> (R, F)
            nn.init.zeros_(self.skip.weight)
            nn.init.zeros_(self.skip.bias)
        self.out = nn.Linear(D, F)
        # the encoder's final LayerNorm gives both tokens the same affine map; separate heads let the
        # posterior scale move independently of its mean
        self.mu_head = nn.Linear(D, D)
        self.logvar_head = nn.Linear(D, D)
        with torch.no_grad():
            self.logvar_head.weight.mul_(0.1)
            self.logvar_head.bias.fill_(config.logvar_init)
        # normalisation statistics of the features and of their frame-to-frame differences
        self.register_buffer("feat_mean", torch.zeros(F))
        self.register_buffer("feat_std", torch.ones(F))
        self.register_buffer("vel_std", torch.ones(F))
        # (C, D) per-class mean posterior mean moved into ``class_bias`` by :func:`recentre_state` when a
        # checkpoint is exported (zero while training; not in state_dict, saved explicitly as "mu_shift")
        self.register_buffer("mu_shift", torch.zeros(C, D), persistent=False)
        if config.pair_weight > 0:
            # execution pairs for the pair loss (training only, not saved; absent otherwise): partner[c] =
            # class id of the same exercise's other execution (-1: none); exec_delta[c] (R, F) =
            # standardised mean repetition of partner[c] minus that of c (zeros until set_execution_pairs)
            self.register_buffer("partner", torch.full((C,), -1, dtype=torch.long), persistent=False)
            self.register_buffer("exec_delta", torch.zeros(C, config.rep_frames, F), persistent=False)
        if config.adv_weight > 0:
            # exercise id of each class whose exercise has both executions in the vocabulary (-1: none) and
            # its execution (1 correct, 0 incorrect); a small critic over (posterior mean, exercise)
            ex_of, execution = exercise_pairs(config.classes)
            self.register_buffer("exercise_of", torch.tensor(ex_of, dtype=torch.long), persistent=False)
            self.register_buffer("execution_of", torch.tensor(execution, dtype=torch.float32), persistent=False)
            self.exercise_embed = nn.Embedding(max(1, max(ex_of) + 1), D)
            self.critic = nn.Sequential(nn.Linear(D, D), nn.GELU(), nn.Linear(D, D), nn.GELU(), nn.Linear(D, 1))
            self.adv_steps = 0                                                       # ramp counter (not saved)
        if config.exec_weight > 0:
            ex_of, execution = exercise_pairs(config.classes)
            partner = [-1] * C
            for c, k in enumerate(config.classes):
                label, correct = split_class(k)
                if ex_of[c] >= 0:
                    partner[c] = config.classes.index(class_key(label, not correct))
            self.register_buffer("exec_exercise", torch.tensor(ex_of, dtype=torch.long), persistent=False)
            self.register_buffer("exec_target", torch.tensor(execution, dtype=torch.float32), persistent=False)
            self.register_buffer("exec_partner", torch.tensor(partner, dtype=torch.long), persistent=False)
            # (C, D) running mean of each class's posterior means (training only); (C,) whether it is set
            self.register_buffer("exec_centre", torch.zeros(C, D), persistent=False)
            self.register_buffer("exec_seen", torch.zeros(C, dtype=torch.bool), persistent=False)
            # (C, K, D) the latest K deviations of each class's posterior means from its running mean, (C,)
            # how many are filled and where the next goes: their Gaussian combinations have the covariance
            # the exported prior fits (recentre_state), so decoding them samples that prior during training
            K = max(2, int(config.exec_bank))
            self.register_buffer("exec_devs", torch.zeros(C, K, D), persistent=False)
            self.register_buffer("exec_filled", torch.zeros(C, dtype=torch.long), persistent=False)
            self.register_buffer("exec_next", torch.zeros(C, dtype=torch.long), persistent=False)
            self.exec_critic = ExecutionCritic(F, max(1, max(ex_of) + 1))
            self.exec_steps = 0                                                      # ramp counter (not saved)
        # (C, D) per-class standard deviation of the aggregate posterior (after the shift), fitted at export;
        # prior samples are z = prior_scale[c] * eps (ones = the plain N(0, I) prior)
        self.register_buffer("prior_scale", torch.ones(C, D), persistent=False)
        if config.performer_prior:
            # (1,) share of a repetition's prior latent common to the repetitions of one motion, (C,) one per
            # class with class_share (export)
            self.register_buffer("prior_share", torch.zeros(C if config.class_share else 1), persistent=False)
            if config.performer_mixture > 0:
                # (C, P, D) mean latent of each recorded performer of each class (after the shift) and (C,)
                # how many of the P rows a class uses (export; P = the most performers of any class)
                self.register_buffer("performer_means", torch.zeros(C, 1, D), persistent=False)
                self.register_buffer("performer_count", torch.zeros(C, dtype=torch.long), persistent=False)
        if config.prior_rank > 0:
            # (C, D, D) lower-triangular Cholesky factor of each class's prior covariance (fitted at export,
            # training.vae.recentre_state); prior samples are z = prior_chol[c] @ eps
            self.register_buffer("prior_chol", torch.eye(D).expand(C, D, D).clone(), persistent=False)

    # ---- normalisation ---------------------------------------------------------------------
    def set_stats(self, feat_mean: torch.Tensor, feat_std: torch.Tensor, vel_std: torch.Tensor) -> None:
        self.feat_mean.copy_(torch.as_tensor(feat_mean, dtype=torch.float32))
        self.feat_std.copy_(torch.as_tensor(feat_std, dtype=torch.float32).clamp_min(1e-3))
        self.vel_std.copy_(torch.as_tensor(vel_std, dtype=torch.float32).clamp_min(1e-4))

    def normalise(self, feats: torch.Tensor) -> torch.Tensor:
        return (feats - self.feat_mean) / self.feat_std

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.feat_std + self.feat_mean

    def set_execution_pairs(self, partner: torch.Tensor, delta: torch.Tensor) -> None:
        """partner (C,) long class id of the other execution of the same exercise (-1: none); delta
        (C, R, F) standardised mean repetition of the partner minus that of the class.  Only for a model
        built with ``pair_weight > 0``."""
        if self.config.pair_weight <= 0:
            raise ValueError("execution pairs are only used with pair_weight > 0")
        self.partner.copy_(torch.as_tensor(partner, dtype=torch.long))
        self.exec_delta.copy_(torch.as_tensor(delta, dtype=torch.float32))

    # ---- encoder / decoder -----------------------------------------------------------------
    def encode(self, x: torch.Tensor, mask: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, F) standardised features, mask (B, T) True = valid frame, y (B,) class ids
        -> mu (B, D), logvar (B, D)."""
        B, T, _ = x.shape
        h = self.embed(x) + sinusoidal(T, self.config.d_model, x.device)           # (B, T, D)
        tokens = torch.stack([self.mu_token[y], self.sigma_token[y]], dim=1)       # (B, 2, D)
        seq = torch.cat([tokens, h], dim=1)                                        # (B, 2+T, D)
        pad = torch.cat([torch.zeros(B, 2, dtype=torch.bool, device=x.device), ~mask], dim=1)
        out = self.encoder(seq, src_key_padding_mask=pad)                          # (B, 2+T, D)
        mu, logvar = self.mu_head(out[:, 0]), self.logvar_head(out[:, 1])
        return mu - self.mu_shift[y], logvar.clamp(-30.0, 20.0)

    def decode_memory(self, memory: torch.Tensor, T: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        """memory (B, D) = z + class bias -> standardised features (B, T, F); padded frames are 0."""
        B = memory.shape[0]
        q = sinusoidal(T, self.config.d_model, memory.device).expand(B, T, -1)    # (B, T, D)
        pad = None if mask is None else ~mask
        h = self.decoder(q, self.memory_seq(memory), tgt_key_padding_mask=pad)    # (B, T, D)
        out = self.out(h)                                                          # (B, T, F)
        if self.config.linear_skip:
            R = self.config.rep_frames
            lin = self.skip(memory).view(B, R, -1)                                 # (B, R, F)
            if T != R:                                                             # resampled in time
                lin = nn.functional.interpolate(lin.transpose(1, 2), size=T, mode="linear",
                                                align_corners=True).transpose(1, 2)
            out = out + lin
        if mask is not None:
            out = out * mask[..., None]
        return out

    def memory_seq(self, memory: torch.Tensor) -> torch.Tensor:
        """memory (B, D) -> the decoder's cross-attention memory (B, K, D), K = ``memory_tokens``."""
        K = self.config.memory_tokens
        if K == 1:
            return memory[:, None, :]
        return self.memory_proj(memory).view(memory.shape[0], K, -1) + self.memory_pos

    def bias(self, y: torch.Tensor | int) -> torch.Tensor:
        """Decoder bias of class ids ``y`` ((B,) -> (B, D), int -> (D,)): the per-class bias plus, with
        ``shared_execution``, the bias of the class's execution shared by all exercises."""
        b = self.class_bias[y]
        if self.config.shared_execution:
            b = b + self.exec_bias[self.exec_index[y]]
        return b

    def decode(self, z: torch.Tensor, y: torch.Tensor, T: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, D), y (B,) -> standardised features (B, T, F)."""
        return self.decode_memory(z + self.bias(y), T, mask)

    # ---- training --------------------------------------------------------------------------
    def losses(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """batch: features (B, T, F) raw, mask (B, T) bool, label (B,) long -> loss terms."""
        feats, mask, y = batch["features"], batch["mask"].bool(), batch["label"].long()
        x = self.normalise(feats) * mask[..., None]                                 # (B, T, F)
        mu, logvar = self.encode(x, mask, y)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        z = mu + torch.exp(0.5 * logvar) * eps                                      # (B, D)
        pred = self.decode(z, y, x.shape[1], mask)                                  # (B, T, F)
        m = mask[..., None].float()
        F = x.shape[-1]
        pos = (((pred - x) ** 2) * m).sum() / (m.sum() * F).clamp_min(1.0)
        # velocities: standardised-feature differences rescaled to units of the velocity std
        scale = self.feat_std / self.vel_std                                        # (F,)
        vm = (mask[:, 1:] & mask[:, :-1])[..., None].float()
        dv = ((pred[:, 1:] - pred[:, :-1]) - (x[:, 1:] - x[:, :-1])) * scale
        vel = ((dv ** 2) * vm).sum() / (vm.sum() * F).clamp_min(1.0)
        kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(-1)).mean()
        c = self.config
        motion = motion_loss(pred, x, mask, c.motion_eps)
        loss = c.pos_weight * pos + c.vel_weight * vel + c.kl_weight * kl + c.motion_weight * motion
        out = {"loss": loss, "pos": pos, "vel": vel, "kl": kl, "motion": motion}
        if c.pair_weight > 0:
            out["pair"] = self.pair_loss(z, y, pred, mask)
            out["loss"] = out["loss"] + c.pair_weight * out["pair"]
        if c.adv_weight > 0:
            ramp = min(1.0, self.adv_steps / max(1, c.adv_ramp_steps))
            out["adv"] = self.adversary_loss(mu, y, ramp)
            out["loss"] = out["loss"] + c.adv_weight * out["adv"]
        if c.exec_weight > 0:
            ramp = min(1.0, self.exec_steps / max(1, c.exec_ramp_steps))
            out["critic"], out["exec"] = self.execution_loss(x, mask, z, mu, y, generator)
            out["loss"] = out["loss"] + out["critic"] + ramp * c.exec_weight * out["exec"]
        return out

    def execution_loss(self, x: torch.Tensor, mask: torch.Tensor, z: torch.Tensor, mu: torch.Tensor,
                       y: torch.Tensor, generator: torch.Generator | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Execution consistency over the items whose exercise is recorded both ways (zeros when none).

        * ``critic``: binary cross-entropy of :class:`ExecutionCritic` on the real repetitions x (B, T, F)
          (standardised, a little noise added) against their execution; only the critic learns from it.
        * ``exec``: decoded latents of chosen classes, read by the critic (its weights detached, so a
          decode cannot teach it) against the execution of the class they were decoded with; only the
          decoder and the class biases learn.  Two kinds, ``exec_items`` each:

          - *swapped*: a paired item's deviation from its class's running mean posterior, moved to the
            other execution: z' = z - m_c + m_c', decoded with class c';
          - *prior-like*: for a paired item's own or other execution c' (at random), z' = m_c' +
            ``temperature`` * sum_k w_k d_k / sqrt(K) + the item's posterior noise, with w ~ N(0, I) and
            d_k the K latest deviations of c''s posterior means (a bank): the covariance the exported
            prior fits (``training.vae.recentre_state``), so these are samples of that prior as the app
            draws them.  A class's few heterogeneous recordings otherwise spread its prior along
            directions whose decodes read as the other execution.

        The running means and the bank are updated from ``mu`` (B, D) without gradient."""
        with torch.no_grad():
            for c in torch.unique(y).tolist():
                m = mu[y == c].mean(0)
                if bool(self.exec_seen[c]):
                    self.exec_centre[c].mul_(0.99).add_(0.01 * m)
                else:
                    self.exec_centre[c].copy_(m)
                    self.exec_seen[c] = True
            K = self.exec_devs.shape[1]
            for i in torch.nonzero(self.exec_exercise[y] >= 0).squeeze(1).tolist():
                c = int(y[i])
                self.exec_devs[c, int(self.exec_next[c])] = mu[i] - self.exec_centre[c]
                self.exec_next[c] = (self.exec_next[c] + 1) % K
                self.exec_filled[c] = torch.clamp(self.exec_filled[c] + 1, max=K)
        ex = self.exec_exercise[y]                                                   # (B,)
        sel = ex >= 0
        zero = x.sum() * 0.0
        if not bool(sel.any()):
            return zero, zero
        xs = x[sel].detach()
        noise = torch.randn(xs.shape, generator=generator, dtype=xs.dtype, device=xs.device)
        logit = self.exec_critic((xs + 0.05 * noise) * mask[sel][..., None], mask[sel], ex[sel])
        critic = nn.functional.binary_cross_entropy_with_logits(logit, self.exec_target[y[sel]])
        n = max(1, int(self.config.exec_items))
        partner = self.exec_partner[y].clamp_min(0)
        zs, cs, items = [], [], []
        swap = torch.nonzero(sel & self.exec_seen[partner]).squeeze(1)[:n]           # swapped latents
        if len(swap):
            p = partner[swap]
            zs.append(z[swap] - self.exec_centre[y[swap]] + self.exec_centre[p])
            cs.append(p)
            items.append(swap)
        pick = torch.nonzero(sel).squeeze(1)                                         # prior-like samples
        pick = pick[torch.randperm(len(pick), generator=generator, device=pick.device)[:n]]
        other = torch.rand(len(pick), generator=generator, device=pick.device) < 0.5
        t = torch.where(other, partner[pick], y[pick])
        ok = self.exec_filled[t] >= 2
        pick, t = pick[ok], t[ok]
        if len(pick):
            w = torch.randn(len(pick), K, generator=generator, dtype=z.dtype, device=z.device)
            w = w * (torch.arange(K, device=z.device)[None, :] < self.exec_filled[t][:, None])
            spread = torch.einsum("bk,bkd->bd", w, self.exec_devs[t]) / self.exec_filled[t, None].sqrt()
            zs.append(self.exec_centre[t] + self.config.temperature * spread + (z[pick] - mu[pick]))
            cs.append(t)
            items.append(pick)
        if not zs:
            return critic, zero
        zz, cc, ii = torch.cat(zs).detach(), torch.cat(cs), torch.cat(items)
        m = mask[ii]
        decoded = self.decode(zz, cc, x.shape[1], m)                                 # (b, T, F)
        frozen = {k: v.detach() for k, v in self.exec_critic.named_parameters()}
        logit = torch.func.functional_call(self.exec_critic, frozen, (decoded, m, self.exec_exercise[cc]))
        return critic, nn.functional.binary_cross_entropy_with_logits(logit, self.exec_target[cc])

    def adversary_loss(self, mu: torch.Tensor, y: torch.Tensor, reverse: float = 1.0) -> torch.Tensor:
        """Execution adversary (after Lample et al.'s Fader networks, NeurIPS 2017): binary cross-entropy of
        the critic's guess of the execution (correct / incorrect) from the posterior mean ``mu`` (B, D) and
        the exercise, over the items whose exercise is recorded both ways.  The critic minimises it; the
        encoder receives the gradient multiplied by ``-reverse`` (gradient reversal), so it learns latents
        from which the execution cannot be read and the decoder must take the execution from the class
        bias; prior samples of either execution then differ by what the class bias adds.  0 when no item
        is paired."""
        ex = self.exercise_of[y]                                                     # (B,)
        sel = ex >= 0
        if not bool(sel.any()):
            return mu.sum() * 0.0
        h = _reverse_grad(mu[sel], float(reverse)) + self.exercise_embed(ex[sel])   # (b, D)
        logit = self.critic(h).squeeze(-1)                                          # (b,)
        return nn.functional.binary_cross_entropy_with_logits(logit, self.execution_of[y[sel]])

    def pair_loss(self, z: torch.Tensor, y: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Execution-pair loss: items whose exercise is recorded both ways are decoded again from the same
        z (B, D) with the other execution's class; that decode must equal the (detached) reconstruction
        ``pred`` (B, T, F) plus the mean real difference ``exec_delta`` of the two executions (masked MSE
        over frames and features).  The execution then changes a motion by the same real, measured
        amount whatever z (the subject and style) is, instead of living in the few subjects' own detail
        that the decoder blurs.  0 when no item has a partner."""
        p = self.partner[y]                                                          # (B,)
        sel = p >= 0
        if not bool(sel.any()):
            return pred.sum() * 0.0
        T = pred.shape[1]
        m = mask[sel]
        other = self.decode(z[sel], p[sel], T, m)                                    # (b, T, F)
        target = pred[sel].detach() + self.exec_delta[y[sel], :T] * m[..., None]     # (b, T, F)
        mf = m[..., None].float()
        return (((other - target) ** 2) * mf).sum() / (mf.sum() * pred.shape[-1]).clamp_min(1.0)

    def train_step(self, batch: dict[str, torch.Tensor], optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        """One optimiser step on ``batch``; returns the loss terms as floats."""
        self.train()
        opt = optimizers["vae"]
        out = self.losses(batch)
        if self.config.adv_weight > 0:
            self.adv_steps += 1
        if self.config.exec_weight > 0:
            self.exec_steps += 1
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        nn.utils.clip_grad_norm_(self.parameters(), 1.0)
        opt.step()
        return {k: float(v.detach()) for k, v in out.items()}
