"""What the user asks for (:class:`Request`), the :class:`Generator` protocol every model family
implements, and the checkpoint registry the UI, CLI and evaluator share.

A generator runs under ``torch.inference_mode()``, seeds its own ``torch.Generator`` from
``request.seed`` (same seed -> same motions) and returns CPU numpy motions on its skeleton.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from ..core.checkpoint import default_checkpoint_dir
from ..core.errors import CheckpointError, UserError
from ..core.limits import LIMITS, MAX_SEED, clean_text, whole_number
from ..core.motion import Motion
from ..core.skeleton import Skeleton

__all__ = ["Request", "Generator", "MODELS", "DEFAULT_STEPS", "FixedSteps", "available_models", "load_generator", "ProgressFn",
]

ProgressFn = Callable[[float, str], None]  # (fraction in [0, 1], description)

@dataclass(frozen=True, eq=False)
class Request:
    """One generation request.  ``label`` uses the ``<dataset>:<id>`` names of ``data summary``."""

    model: str = "diffusion"
    text: str = ""
    label: str | None = None
    to_label: str | None = None          # interpolation target class (VAE)
    correct: bool | None = None           # None: unspecified / not applicable
    frames: int = 120
    steps: int | None = None              # sampler steps; None: the model's default (DEFAULT_STEPS, else 20)
    guidance: float = 2.5
    seed: int = 0
    to_seed: int | None = None            # interpolation target seed (VAE)
    num: int = 1
    sampler: str = "ddim"                 # "ddim" or "ddpm" (diffusion)
    source: Motion | None = None          # motion to edit / inpaint / vary
    keep: np.ndarray | None = None        # (T, J) bool, True = keep/observed (editing, inpainting)
    window: int = 32
    shift: int = 8
    # -- family-specific fields (ignored by the families that do not read them) --
    correct_guidance: float | None = None  # diffusion: guidance on the correct/incorrect condition (None: default)
    task: str | None = None               # VAE: "label", "vary" or "interpolate" (None: "vary" with a source)
    to_source: Motion | None = None       # VAE interpolation: target motion (instead of to_label/to_seed)
    to_correct: bool | None = None        # VAE interpolation: target correctness (None: ``correct`` when the
                                          # label stays, else unspecified)
    spherical: bool = False               # VAE interpolation: slerp instead of lerp
    spread: float = 1.0                   # VAE variations: latent spread
    preset: str | None = None             # AE-GAN: settings preset ("tuned" when None, or "thesis")
    average: bool | None = None           # AE-GAN: override the preset's candidate combination
    denoise: bool = False                 # AE-GAN: replace the observed joints too
    dims: int | None = None               # AE-GAN: 2 or 3 (None: from the motion)
    score: float | None = None            # target clinical score (generators with the "score" task)

    def validated(self) -> "Request":
        """Return a cleaned copy or raise :class:`UserError` with a message for the user."""
        text = clean_text(self.text)
        if len(text) > LIMITS["text_chars"]:
            raise UserError(f"the description is {len(text)} characters long; the limit is "
                            f"{LIMITS['text_chars']}")

        def _int(name: str, v: Any, lo: int, hi: int) -> int:
            return whole_number(v, name, lo, hi)

        frames = _int("frames", self.frames, *LIMITS["frames"])
        steps = _int("steps", DEFAULT_STEPS.get(self.model, 20) if self.steps is None else self.steps,
                     *LIMITS["steps"])
        num = _int("number of samples", self.num, *LIMITS["num"])
        seed = _int("seed", self.seed, 0, MAX_SEED)
        to_seed = None if self.to_seed is None else _int("second seed", self.to_seed, 0, MAX_SEED)
        window = _int("window", self.window, *LIMITS["window"])
        shift = _int("shift", self.shift, 1, window)
        try:
            guidance = float(self.guidance)
        except (TypeError, ValueError):
            raise UserError(f"guidance scale must be a number, got {self.guidance!r}") from None
        lo, hi = LIMITS["guidance"]
        if not (np.isfinite(guidance) and lo <= guidance <= hi):
            raise UserError(f"guidance scale must be between {lo:g} and {hi:g}, got {self.guidance}")
        if self.sampler not in ("ddim", "ddpm"):
            raise UserError(f"sampler must be 'ddim' or 'ddpm', got {self.sampler!r}")
        keep = self.keep
        if keep is not None:
            keep = np.asarray(keep, dtype=bool)
            if self.source is None:
                raise UserError("a keep mask needs a source motion")
            if keep.shape != self.source.joints.shape[:2]:
                raise UserError(f"keep mask has shape {keep.shape}, the motion needs "
                                f"{self.source.joints.shape[:2]}")
        return replace(self, text=text, frames=frames, steps=steps, num=num, seed=seed, to_seed=to_seed,
                       guidance=guidance, window=window, shift=shift, keep=keep)

    def torch_generator(self, seed: int | None = None):
        g = torch.Generator(device="cpu")
        g.manual_seed(int(self.seed if seed is None else seed))
        return g

    def sample_seeds(self) -> list[int]:
        """The seed of each of the ``num`` samples: ``seed + i`` (sample i of a batch equals the single
        sample asked with seed + i; wraps past 2**64 - 1, the largest seed ``torch.Generator`` takes)."""
        return [(int(self.seed) + i) % 2**64 for i in range(int(self.num))]

    def torch_generators(self) -> list:
        """One ``torch.Generator`` per sample, seeded with :meth:`sample_seeds`."""
        return [self.torch_generator(s) for s in self.sample_seeds()]


@runtime_checkable
class Generator(Protocol):
    """A trained model behind one interface: everything the UI, CLI and evaluator read of a generator.

    ``tasks`` is a subset of {"text", "label", "unconditional", "interpolate", "inpaint", "edit", "vary",
    "score"}: what the model can be asked for (consumers check a capability here, never by probing for a
    method).  A generator with the "text" task also has ``encoder``, its text encoder (loaded on first use).
    ``labels``: the exercise labels (``<dataset>:<id>``) it is conditioned on; empty for a model that takes
    none (the inpainter)."""

    name: str
    tasks: frozenset[str]
    skeleton: Skeleton

    @property
    def labels(self) -> Sequence[str]:
        ...

    @property
    def text_encoder_loaded(self) -> bool:
        """False while the text encoder is still to be loaded (the first text request loads it: seconds);
        True once loaded, and for models that read no text."""
        ...

    def has_correctness(self, label: str) -> bool:
        """Whether a correct/incorrect request for ``label`` is honoured (else ``correct`` should be None)."""
        ...

    def condition_text(self, request: Request) -> str:
        """The text the model is conditioned on for ``request`` ("" for models that read no text)."""
        ...

    def generate(self, request: Request, progress: ProgressFn | None = None) -> list[Motion]:
        ...


class FixedSteps:
    """``gen`` with every request's sampler steps set to ``steps`` (e.g. one evaluation row per step count
    of the distilled sampler: ``evaluate --models diffusion-fast@1``).  Everything else is ``gen``'s: the
    :class:`Generator` members are forwarded explicitly, family-specific ones (``encoder``, ``check``, ...)
    through ``__getattr__``."""

    def __init__(self, gen: Generator, steps: int):
        self.gen, self.steps = gen, int(steps)
        self.name, self.tasks, self.skeleton = gen.name, gen.tasks, gen.skeleton

    def __getattr__(self, key: str) -> Any:
        return getattr(self.gen, key)

    @property
    def labels(self) -> Sequence[str]:
        return self.gen.labels

    @property
    def text_encoder_loaded(self) -> bool:
        return self.gen.text_encoder_loaded

    def has_correctness(self, label: str) -> bool:
        return self.gen.has_correctness(label)

    def condition_text(self, request: Request) -> str:
        return self.gen.condition_text(replace(request, steps=self.steps))

    def generate(self, request: Request, progress: ProgressFn | None = None) -> list[Motion]:
        return self.gen.generate(replace(request, steps=self.steps), progress)


# name -> (checkpoint file name, "module:loader"), loader(path) -> Generator.
MODELS: dict[str, tuple[str, str]] = {
    "diffusion": ("diffusion.safetensors", "motionviz.generators.diffusion:load_generator"),
    "diffusion-fast": ("diffusion-fast.safetensors", "motionviz.generators.diffusion_fast:load_generator"),
    "vae": ("vae.safetensors", "motionviz.generators.vae:load_generator"),
    "aegan": ("aegan.safetensors", "motionviz.generators.aegan:load_generator"),
}

#: Denoising steps a sampler uses when the request does not say (CLI, UI, evaluation).
DEFAULT_STEPS: dict[str, int] = {"diffusion": 20, "diffusion-fast": 1}

#: the package's one model cache: (kind, resolved checkpoint path) -> the loaded object (a Generator, or the
#: recogniser), loaded once per process under the lock and shared read-only afterwards
_cache: dict[tuple[str, str], Any] = {}
_lock = threading.RLock()


def checkpoint_path(name: str, checkpoint_dir: str | Path | None = None) -> Path:
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return Path(checkpoint_dir or default_checkpoint_dir()) / MODELS[name][0]


def available_models(checkpoint_dir: str | Path | None = None) -> list[str]:
    """Model names whose checkpoint file exists."""
    return [n for n in MODELS if checkpoint_path(n, checkpoint_dir).is_file()]


def cached(kind: str, path: str | Path, load: Callable[[Path], Any]) -> Any:
    """``load(path)``, called once per process for (``kind``, the resolved ``path``) under the cache's lock;
    later calls return the same object (shared read-only)."""
    path = Path(path)
    key = (kind, str(path.resolve()))
    with _lock:
        if key not in _cache:
            _cache[key] = load(path)
        return _cache[key]


def load_generator(name: str, checkpoint_dir: str | Path | None = None, path: str | Path | None = None) -> Generator:
    """Load (once per process, then shared read-only) the generator called ``name``: its checkpoint in
    ``checkpoint_dir`` (default: the shipped folder), or the file ``path``."""
    p = checkpoint_path(name, checkpoint_dir) if path is None else Path(path)

    def load(p: Path) -> Generator:
        if not p.is_file():
            raise CheckpointError(f"no {name} checkpoint at {p}; train one with "
                                  f"`python -m motionviz train {name}`")
        module, fn = MODELS[name][1].split(":")
        return getattr(importlib.import_module(module), fn)(p)

    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return cached(name, p, load)
