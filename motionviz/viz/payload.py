"""The player's position codec: (T, J, 3) metres <-> base64 of little-endian int16 millimetres, missing joints
marked."""

from __future__ import annotations

import base64

import numpy as np

_MISSING = -32768


def _encode(a: np.ndarray) -> str:
    """Metres -> int16 millimetres (NaN -> -32768), little endian, base64."""
    mm = np.round(np.asarray(a, dtype=np.float64) * 1000.0)
    mm = np.where(np.isfinite(mm), np.clip(mm, -32767, 32767), _MISSING).astype("<i2")
    return base64.b64encode(mm.tobytes()).decode("ascii")


def decode_positions(b64: str, joints: int) -> np.ndarray:
    """Inverse of the payload encoding: (T, joints, 3) metres, NaN for missing joints (tests, exports)."""
    mm = np.frombuffer(base64.b64decode(b64), dtype="<i2").astype(np.float64)
    mm[mm == _MISSING] = np.nan
    return (mm / 1000.0).reshape(-1, joints, 3)
