"""HumanML3D sample reader: ``*_new_joints.npy`` (T, 22, 3) float32 metres, Y-up, facing +Z at frame 0,
left = +X, floor y = 0, 20 fps, SMPL-22 joint order (already the motionviz frame)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.motion import Motion, MotionLabels
from ..core.skeleton import SMPL22

__all__ = ["humanml3d_files", "read_humanml3d", "load_humanml3d", "FPS"]

FPS = 20.0


def humanml3d_files(root: Path) -> list[Path]:
    return sorted((root / "humanml3d-sample").glob("*_new_joints.npy"))


def read_humanml3d(path: str | Path) -> Motion:
    path = Path(path)
    x = np.load(path, allow_pickle=False)
    if x.ndim != 3 or x.shape[1:] != (22, 3):
        raise ValueError(f"{path.name}: expected (T, 22, 3), got {x.shape}")
    mid = path.name.split("_")[0]
    labels = MotionLabels(dataset="humanml3d", subject=mid, label=f"humanml3d:{mid}", style="",
                          correct=None, score=None, source=str(path))
    return Motion(x.astype(np.float32), SMPL22, FPS, labels)


def load_humanml3d(root: Path, limit: int | None = None) -> list[Motion]:
    files = humanml3d_files(root)
    if limit is not None:
        files = files[:limit]
    return [read_humanml3d(f) for f in files]
