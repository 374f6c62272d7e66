"""Bandai-Namco Research Motiondataset 1 and 2 reader (BVH, via :func:`motionviz.io.bvh.read_bvh`).

FK facts (data README section 3): rotations R = Rz Rx Ry (channel order), the Hips position channels
*replace* the header OFFSET, ``joint_Root`` is always part of the chain (its Zposition carries the
forward travel in four dataset-1 files).  ``read_bvh`` implements exactly that; the result is Y-up,
facing +Z, left = +X in cm, so we only scale by 0.01.  30 fps.

Labels: ``bandai:<content>`` (dataset-1 and dataset-2 contents with the same name are merged, e.g.
``walk``, ``run``), ``style`` = the style name.  The published data carry no actor ids and all files
share one skeleton size, so ``subject`` is the *take* (``dataset-N_<content>_<style>_<NNN>``), which is
also the unit of the train/val/test split (see ``splits.py``).
"""

from __future__ import annotations

import lzma
import re
from pathlib import Path

import numpy as np

from ..core.motion import Motion, MotionLabels
from ..core.skeleton import BANDAI
from ..io.bvh import read_bvh

__all__ = ["bandai_files", "read_bandai", "load_bandai", "bandai_frames", "parse_bandai_name", "FPS"]

FPS = 30.0
_NAME = re.compile(r"(dataset-[12])_(.+)_([a-z-]+)_(\d{3})\.bvh(\.xz)?$")


def bandai_files(root: Path) -> list[Path]:
    base = root / "bandai"
    return sorted(base.glob("dataset-1/data/*.bvh.xz")) + sorted(base.glob("dataset-2/data/*.bvh.xz"))


def parse_bandai_name(name: str) -> tuple[str, str, str, str]:
    """'dataset-2_walk-turn-left_active_012.bvh.xz' -> ('dataset-2', 'walk-turn-left', 'active', '012')."""
    m = _NAME.search(name)
    if not m:
        raise ValueError(f"not a Bandai file name: {name}")
    part, content, style, take, _ = m.groups()
    # contents may contain '-' but never '_': the style is the last '_' field before the take number
    return part, content, style, take


def bandai_frames(path: str | Path) -> int:
    """Number of frames from the header ``Frames:`` line, decompressing only the start of the file."""
    opener = lzma.open if str(path).endswith(".xz") else open
    with opener(path, "rt") as f:
        for line in f:
            if line.lstrip().startswith("Frames:"):
                return int(line.split(":", 1)[1])
    raise ValueError(f"{path}: no 'Frames:' line")


def read_bandai(path: str | Path) -> Motion:
    path = Path(path)
    part, content, style, take = parse_bandai_name(path.name)
    bvh = read_bvh(path)
    X = bvh.positions()                                               # (T, 22, 3) cm
    index = {n: i for i, n in enumerate(bvh.names)}
    X = X[:, [index[n] for n in BANDAI.joints]] * 0.01
    subject = f"{part}_{content}_{style}_{take}"
    labels = MotionLabels(dataset="bandai", subject=subject, label=f"bandai:{content}", style=style,
                          correct=None, score=None, source=str(path),
                          extra={"part": part, "take": int(take)})
    return Motion(X.astype(np.float32), BANDAI, round(bvh.fps, 3), labels)


def load_bandai(root: Path, limit: int | None = None) -> list[Motion]:
    files = bandai_files(root)
    if limit is not None:
        files = files[:limit]
    return [read_bandai(f) for f in files]
