"""Size limits of user input shared by every reader and writer (frames x joints budgets)."""

from __future__ import annotations

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
