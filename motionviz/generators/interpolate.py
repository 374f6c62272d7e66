"""Latent interpolation helpers: linear (``lerp``) and spherical (``slerp``) paths between latent codes.

Both take endpoints ``a``, ``b`` of shape (..., D) and weights ``t`` of shape (S,) and return the path
(S, ..., D).  The path starts exactly at ``a`` (t = 0) and ends exactly at ``b`` (t = 1).

``slerp`` moves the *direction* along the great circle between ``a`` and ``b`` and the *length*
linearly between |a| and |b|, so for endpoints of equal norm (e.g. two Gaussian draws in many
dimensions, which have almost the same norm) every point keeps that norm, while ``lerp`` cuts through
the low-norm interior of the sphere where a Gaussian prior puts almost no mass.

Motion-level helpers over the VAE (:mod:`motionviz.models.vae`), all deterministic for given seeds and
returning ``steps`` :class:`motionviz.core.motion.Motion` objects (ends included, common skeleton, 20 fps):

* :func:`between_seeds` -- two seeds of one class;
* :func:`between_classes` -- two classes, e.g. correct <-> incorrect execution of one exercise;
* :func:`between_motions` -- two encoded real motions;
* :func:`path_array` -- stack a path into the (steps, frames, J, 3) float32 array of ``interpolate --out``.

Each takes ``spherical`` (False: lerp, True: slerp of the latent z; the class bias is always linear) and
an optional ``gen`` (default: ``load_generator("vae")``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ..core.errors import UserError
from . import registry
from .vae import Endpoint

if TYPE_CHECKING:
    from ..core.motion import Motion

ProgressFn = Callable[[float, str], None]

__all__ = ["between_seeds", "between_classes", "between_motions",
           "path_array"]


# ---------------------------------------------------------------------------------------------
# motion-level interpolation with the VAE (used by the ``interpolate`` CLI verb, the app and tests)
# ---------------------------------------------------------------------------------------------
def _vae(gen: Any) -> Any:
    if gen is not None:
        return gen

    return registry.load_generator("vae")


def between_seeds(label: str, seed_a: int, seed_b: int, correct: bool | None = None, steps: int = 8,
                  frames: int = 60, spherical: bool = False, gen: Any = None,
                  progress: ProgressFn | None = None) -> list[Motion]:
    """``steps`` motions (ends included) between the samples of seeds ``seed_a`` and ``seed_b`` of one
    class (``label`` such as ``ui-prmd:m01`` or an unambiguous id; ``correct`` False = the incorrect
    execution, None = correct where the label has both).  ``gen``: a VAE generator (default: the
    ``vae`` checkpoint).  Deterministic: the ends equal ``gen.sample(label, correct, frames, 1, seed)``.
    Raises :class:`motionviz.core.errors.UserError` on an unknown label, bad seeds/steps/frames."""
    g = _vae(gen)
    return g.interpolate_path(Endpoint(label, correct, _seed(seed_a)), Endpoint(label, correct, _seed(seed_b)),
                              steps=steps, frames=frames, spherical=spherical, progress=progress)


def between_classes(label_a: str, label_b: str, correct_a: bool | None = None, correct_b: bool | None = None,
                    seed: int = 0, to_seed: int | None = None, steps: int = 8, frames: int = 60,
                    spherical: bool = False, gen: Any = None, progress: ProgressFn | None = None) -> list[Motion]:
    """``steps`` motions from class (label_a, correct_a) to class (label_b, correct_b), e.g. a correct
    to an incorrect squat: ``between_classes("m01", "m01", True, False)``.  The latent z is that of
    ``seed`` at both ends unless ``to_seed`` is given, so only the class changes along the path."""
    g = _vae(gen)
    end_seed = _seed(seed if to_seed is None else to_seed)
    return g.interpolate_path(Endpoint(label_a, correct_a, _seed(seed)), Endpoint(label_b, correct_b, end_seed),
                              steps=steps, frames=frames, spherical=spherical, progress=progress)


def between_motions(motion_a: Motion, motion_b: Motion, steps: int = 8, frames: int = 60, spherical: bool = False,
                    label_a: str | None = None, label_b: str | None = None, correct_a: bool | None = None,
                    correct_b: bool | None = None, gen: Any = None,
                    progress: ProgressFn | None = None) -> list[Motion]:
    """``steps`` motions between two encoded real motions (posterior means; any skeleton the data
    loaders map to the common one).  Each motion's class is ``label_x``/``correct_x`` if given, else its
    own label if the model knows it, else the class that reconstructs it best.  The ends are the
    reconstructions (``gen.vary(motion, spread=0)``)."""
    g = _vae(gen)
    return g.interpolate_path(Endpoint(label_a, correct_a, 0, motion_a), Endpoint(label_b, correct_b, 0, motion_b),
                              steps=steps, frames=frames, spherical=spherical, progress=progress)


def path_array(motions: Sequence[Motion]) -> np.ndarray:
    """The path as one float32 array (steps, frames, J, 3) -- the ``interpolate --out`` contract."""
    if not motions:
        raise ValueError("empty interpolation path")
    return np.stack([m.joints for m in motions]).astype(np.float32)


def _seed(seed: Any) -> int:
    try:
        f = float(seed)
    except (TypeError, ValueError):
        raise UserError(f"a seed must be a whole number, got {seed!r}") from None
    if not (np.isfinite(f) and f == int(f) and 0 <= int(f) < 2**63):
        raise UserError(f"a seed must be a whole number from 0 to 2**63 - 1, got {seed!r}")
    return int(f)
