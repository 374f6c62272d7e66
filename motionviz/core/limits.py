"""Size limits of user input shared by every reader and writer (frames x joints budgets)."""

from __future__ import annotations

import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

from .errors import UserError
from .motion import MAX_FRAMES

#: joints x frames of one user motion, checked from the header before any array is allocated (BVH forward
#: kinematics costs ~200 bytes per joint-frame: 1e6 -> ~0.2 GB at the peak)
MAX_JOINT_FRAMES = 1_000_000


def check_budget(frames: int, joints: int, name: str) -> None:
    """:class:`UserError` when ``frames`` x ``joints`` is over the budgets (call before allocating)."""
    if frames > MAX_FRAMES:
        raise UserError(f"{name}: {frames} frames is too long (limit {MAX_FRAMES})")
    if frames * joints > MAX_JOINT_FRAMES:
        raise UserError(f"{name}: {joints} joints x {frames} frames is over the limit of "
                        f"{MAX_JOINT_FRAMES:,} joint-frames")


#: Seeds are Python ints in [0, MAX_SEED] end to end (Request, CLI, UI); ``torch.Generator.manual_seed``
#: and ``numpy.random.default_rng`` take them exactly.
MAX_SEED = 2**63 - 1


LIMITS = {
    "text_chars": 500,
    "frames": (8, 600),
    "steps": (1, 1000),
    "guidance": (0.0, 20.0),
    "num": (1, 16),
    "window": (8, 256),
}


def whole_number(value: Any, name: str, lo: int, hi: int) -> int:
    """``value`` as an exact Python int in [lo, hi], else :class:`UserError` naming ``name``.

    Ints (and numpy integers) are taken as they are and strings are parsed as decimal numbers, never
    through ``float`` (which rounds above 2**53, so 2**53 and 2**53 + 1 would give the same seed);
    a float is accepted only when it is integral and at most 2**53 (where it is still exact)."""
    if isinstance(value, bool) or value is None:
        raise UserError(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, (int, np.integer)):
        n = int(value)
    elif isinstance(value, (float, np.floating)):
        f = float(value)
        if not np.isfinite(f) or f != int(f):
            raise UserError(f"{name} must be a whole number, got {value!r}")
        if abs(f) > 2**53:
            raise UserError(f"{name} {f:.17g} is too large to be exact as a floating-point number; "
                            f"pass it as an integer or as text")
        n = int(f)
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
        if len(text) > 40:
            raise UserError(f"{name} must be a whole number between {lo} and {hi}")
        try:
            d = Decimal(text)
        except InvalidOperation:
            raise UserError(f"{name} must be a whole number, got {value[:40]!r}") from None
        if not d.is_finite() or d != d.to_integral_value():
            raise UserError(f"{name} must be a whole number, got {value[:40]!r}")
        n = int(d)
    else:
        raise UserError(f"{name} must be a whole number, got a {type(value).__name__}")
    if not lo <= n <= hi:
        raise UserError(f"{name} must be between {lo} and {hi}, got {n}")
    return n


def clean_text(text: str | None) -> str:
    """Normalise user text: Unicode NFKC, control characters removed, whitespace collapsed."""
    if text is None:
        return ""
    if not isinstance(text, str):
        raise UserError("the description must be text")
    t = unicodedata.normalize("NFKC", text)
    t = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in t)
    return " ".join(t.split())
