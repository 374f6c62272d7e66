"""Small shared helpers for the dataset readers."""

from __future__ import annotations

import gzip
import lzma
from pathlib import Path

import numpy as np

# Kinect v2 camera space (x, y, z) -> motionviz frame: a 180 degree turn about Y.
KINECT_TO_MV = np.array([-1.0, 1.0, -1.0])


def open_text(path: str | Path) -> str:
    """Text of a plain, .gz or .xz file."""
    p = str(path)
    if p.endswith(".gz"):
        with gzip.open(p, "rt") as f:
            return f.read()
    if p.endswith(".xz"):
        with lzma.open(p, "rt") as f:
            return f.read()
    with open(p) as f:
        return f.read()


def parse_csv_floats(text: str, columns: int, sep: str = ",") -> np.ndarray:
    """Rows of ``columns`` numbers (blank lines skipped; a trailing separator allowed) -> (N, columns)."""
    rows = []
    for line in text.splitlines():
        line = line.strip().rstrip(sep)
        if not line:
            continue
        parts = line.split(sep) if sep != " " else line.split()
        if all(p.strip() == "" for p in parts):
            continue
        rows.append(parts[:columns])
    if not rows:
        return np.zeros((0, columns))
    return np.array(rows, dtype=np.float64)
