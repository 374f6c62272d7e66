"""Latent interpolation helpers: linear (``lerp``) and spherical (``slerp``) paths between latent codes.

Both take endpoints ``a``, ``b`` of shape (..., D) and weights ``t`` of shape (S,) and return the path
(S, ..., D).  The path starts exactly at ``a`` (t = 0) and ends exactly at ``b`` (t = 1).

``slerp`` moves the *direction* along the great circle between ``a`` and ``b`` and the *length*
linearly between |a| and |b|, so for endpoints of equal norm (e.g. two Gaussian draws in many
dimensions, which have almost the same norm) every point keeps that norm, while ``lerp`` cuts through
the low-norm interior of the sphere where a Gaussian prior puts almost no mass.
"""

from __future__ import annotations

import torch

__all__ = ["weights", "lerp", "slerp", "interpolate"]


def weights(steps: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(S,) evenly spaced weights from 0 to 1 inclusive; ``steps`` >= 2."""
    if int(steps) < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {steps}")
    return torch.linspace(0.0, 1.0, int(steps), dtype=dtype)


def _expand_t(t: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=a.dtype)
    if t.ndim != 1:
        raise ValueError(f"interpolation weights must be 1-D, got shape {tuple(t.shape)}")
    return t.reshape((-1,) + (1,) * a.ndim)  # (S, 1, ..., 1)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear path: a (..., D), b (..., D), t (S,) -> (S, ..., D) = (1 - t) a + t b."""
    if a.shape != b.shape:
        raise ValueError(f"endpoints differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    tt = _expand_t(t, a)
    out = (1.0 - tt) * a + tt * b
    # exact endpoints (no rounding at t = 0 / 1)
    out = torch.where(tt == 0, a.expand_as(out), out)
    return torch.where(tt == 1, b.expand_as(out), out)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Spherical path: a (..., D), b (..., D), t (S,) -> (S, ..., D).

    Direction follows the great circle from a/|a| to b/|b|; the norm goes linearly from |a| to |b|.
    Nearly parallel endpoints fall back to a normalised linear path of the directions."""
    if a.shape != b.shape:
        raise ValueError(f"endpoints differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    tt = _expand_t(t, a)
    na = a.norm(dim=-1, keepdim=True)  # (..., 1)
    nb = b.norm(dim=-1, keepdim=True)
    ua = a / na.clamp_min(eps)
    ub = b / nb.clamp_min(eps)
    cos = (ua * ub).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)  # (..., 1)
    sin = torch.sin(omega)
    small = sin < 1e-4
    safe_sin = torch.where(small, torch.ones_like(sin), sin)
    wa = torch.where(small, 1.0 - tt, torch.sin((1.0 - tt) * omega) / safe_sin)
    wb = torch.where(small, tt, torch.sin(tt * omega) / safe_sin)
    direction = wa * ua + wb * ub
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(eps)
    out = direction * ((1.0 - tt) * na + tt * nb)
    out = torch.where(tt == 0, a.expand_as(out), out)
    return torch.where(tt == 1, b.expand_as(out), out)


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int, spherical: bool = False) -> torch.Tensor:
    """``steps`` evenly spaced points from a to b (inclusive): (S, ..., D)."""
    t = weights(steps, a.dtype)
    return slerp(a, b, t) if spherical else lerp(a, b, t)


# ---------------------------------------------------------------------------------------------
# ``python -m motionviz interpolate``: the CLI verb (dispatched from motionviz/cli_generate.py)
# ---------------------------------------------------------------------------------------------
def add_interpolate_arguments(parser) -> None:
    """Arguments of ``python -m motionviz interpolate``."""
    parser.add_argument("--model", default="vae", help="the latent model (only 'vae')")
    parser.add_argument("--exercise", default=None,
                        help="class of the start: a label such as ui-prmd:m01, or an unambiguous id (m01)")
    parser.add_argument("--incorrect", action="store_true", help="start from the incorrect version")
    parser.add_argument("--to-exercise", default=None, help="class of the end (default: --exercise)")
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--to-incorrect", action="store_true", help="end at the incorrect version")
    g.add_argument("--to-correct", action="store_true", help="end at the correct version")
    parser.add_argument("--from-seed", type=int, default=0, help="seed of the start latent")
    parser.add_argument("--to-seed", type=int, default=None, help="seed of the end latent (default: from-seed + 1,"
                        " or from-seed when only the class changes)")
    parser.add_argument("--from-motion", default=None, help="start at an encoded real motion (.npy/.csv/.bvh/.json)")
    parser.add_argument("--to-motion", default=None, help="end at an encoded real motion")
    parser.add_argument("--spherical", action="store_true", help="spherical (slerp) instead of linear path")
    parser.add_argument("--steps", type=int, default=8, help="number of motions on the path (ends included)")
    parser.add_argument("--frames", type=int, default=60, help="frames per motion (20 fps)")
    parser.add_argument("--out", required=True, help="output .npy: float32 (steps, frames, 15, 3)")


def run_interpolate(args) -> int:
    """Decode the path and write (steps, frames, 15, 3) float32 to ``args.out``."""
    import json
    from pathlib import Path

    import numpy as np

    from .errors import UserError
    from .generator import load_generator

    if args.model != "vae":
        raise UserError(f"latent interpolation needs the VAE (--model vae), not {args.model!r}")
    out = Path(args.out)
    if out.suffix.lower() != ".npy":
        raise UserError(f"--out must end in .npy, got {out.name!r}")
    if args.exercise is None and args.from_motion is None:
        raise UserError("give --exercise NAME (a class to sample) or --from-motion FILE")
    if args.to_exercise is not None and args.exercise is None and args.to_motion is None \
            and args.from_motion is None:
        raise UserError("--to-exercise needs --exercise or --from-motion for the start")
    gen = load_generator("vae")
    from .models.vae import Endpoint

    def motion(path: str | None):
        if path is None:
            return None
        from .data import load_user_file

        return load_user_file(path)

    start_correct = False if args.incorrect else None
    if args.to_incorrect:
        end_correct = False
    elif args.to_correct:
        end_correct = True
    else:
        end_correct = start_correct if args.to_exercise is None else None
    to_label = args.to_exercise or args.exercise
    class_changes = (args.to_exercise is not None and args.to_exercise != args.exercise) or \
        (end_correct != start_correct)
    to_seed = args.to_seed if args.to_seed is not None else (
        args.from_seed if class_changes else args.from_seed + 1)
    for name, s in (("--from-seed", args.from_seed), ("--to-seed", to_seed)):
        if not 0 <= s < 2**63:
            raise UserError(f"{name} must be a non-negative whole number, got {s}")
    start = Endpoint(args.exercise, start_correct, args.from_seed, motion(args.from_motion))
    end = Endpoint(to_label if args.to_motion is None or args.to_exercise else None, end_correct, to_seed,
                   motion(args.to_motion))
    from tqdm import tqdm

    with tqdm(total=100, desc="interpolate", unit="%", leave=False) as bar:
        def progress(f: float, text: str) -> None:
            bar.n = int(round(100 * min(max(f, 0.0), 1.0)))
            bar.set_postfix_str(text, refresh=True)

        motions = gen.interpolate_path(start, end, steps=args.steps, frames=args.frames,
                                       spherical=args.spherical, progress=progress)
    arr = np.stack([m.joints for m in motions]).astype(np.float32)    # (S, T, J, 3)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, arr)
    print(json.dumps({"out": str(out), "shape": list(arr.shape), "from": motions[0].labels.text,
                      "to": motions[-1].labels.text, "spherical": bool(args.spherical)}))
    return 0
