"""UI-PRMD reader (Kinect v2 part): absolute joint positions by forward kinematics.

Files: ``{Segmented Movements | Incorrect Segmented Movements}/Kinect/{Positions|Angles}/
mXX_sYY_eZZ_{positions|angles}[_inc].txt.gz``.  Positions hold the absolute Waist position in the first
triple and, for every other joint, its offset from the parent in the parent's local frame (cm); Angles
hold each joint's local rotation (degrees, R = Rz(az) Rx(ax) Ry(ay)).  FK (verified convention, data
README section 4): ``G_0 = R(a_0)``, ``X_0 = p_0``, ``X_j = X_parent + G_parent p_j``,
``G_j = G_parent R(a_j)``.  The result is already Y-up, facing +Z, left = +X; we only scale cm -> m.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..core.motion import Motion, MotionLabels
from ..core.skeleton import UIPRMD
from ._util import open_text

__all__ = ["euler_yxz", "uiprmd_fk", "read_uiprmd_pair", "uiprmd_files", "load_uiprmd", "FPS"]

FPS = 30.0
_NAME = re.compile(r"m(\d\d)_s(\d\d)_e(\d\d)_positions(_inc)?\.txt\.gz$")
_SETS = (("Segmented Movements", True, ""), ("Incorrect Segmented Movements", False, "_inc"))


def euler_yxz(deg: np.ndarray) -> np.ndarray:
    """(..., 3) angles (ax, ay, az) in degrees -> (..., 3, 3) rotation Rz(az) @ Rx(ax) @ Ry(ay)."""
    a = np.deg2rad(deg)
    cx, sx = np.cos(a[..., 0]), np.sin(a[..., 0])
    cy, sy = np.cos(a[..., 1]), np.sin(a[..., 1])
    cz, sz = np.cos(a[..., 2]), np.sin(a[..., 2])
    o, z = np.ones_like(cx), np.zeros_like(cx)
    Rx = np.stack([o, z, z, z, cx, -sx, z, sx, cx], -1).reshape(a.shape[:-1] + (3, 3))
    Ry = np.stack([cy, z, sy, z, o, z, -sy, z, cy], -1).reshape(a.shape[:-1] + (3, 3))
    Rz = np.stack([cz, -sz, z, sz, cz, z, z, z, o], -1).reshape(a.shape[:-1] + (3, 3))
    return Rz @ Rx @ Ry


def uiprmd_fk(pos: np.ndarray, ang: np.ndarray) -> np.ndarray:
    """pos, ang (T, 22, 3) -> absolute joint positions (T, 22, 3), same unit as ``pos``."""
    L = euler_yxz(ang)                         # (T, 22, 3, 3)
    X = pos.astype(np.float64).copy()
    G = L.copy()
    for j in range(1, len(UIPRMD)):            # parents precede children in UI-PRMD order
        q = UIPRMD.parents[j]
        X[:, j] = X[:, q] + np.einsum("tij,tj->ti", G[:, q], pos[:, j])
        G[:, j] = G[:, q] @ L[:, j]
    return X


def _read_matrix(path: Path) -> np.ndarray:
    text = open_text(path)
    a = np.array(text.replace("\n", ",").replace(",,", ",").strip(",").split(","), dtype=np.float64)
    if a.size % 66:
        raise ValueError(f"{path}: {a.size} numbers is not a multiple of 66")
    return a.reshape(-1, 22, 3)


def read_uiprmd_pair(pos_file: str | Path, ang_file: str | Path | None = None) -> np.ndarray:
    """Absolute positions (T, 22, 3) in metres (motionviz frame) from a positions/angles file pair."""
    pos_file = Path(pos_file)
    if ang_file is None:
        ang_file = Path(str(pos_file).replace("/Positions/", "/Angles/").replace("_positions", "_angles"))
    p = _read_matrix(pos_file)
    a = _read_matrix(Path(ang_file))
    if p.shape != a.shape:
        raise ValueError(f"{pos_file.name}: positions {p.shape} and angles {a.shape} differ")
    return uiprmd_fk(p, a) * 0.01


def uiprmd_files(root: Path) -> list[Path]:
    """All position files (correct set first), sorted."""
    out: list[Path] = []
    for folder, _, _ in _SETS:
        out += sorted((root / "ui-prmd" / folder / "Kinect" / "Positions").glob("m*_s*_e*_positions*.txt.gz"))
    return out


def read_uiprmd(pos_file: Path) -> Motion:
    m = _NAME.search(pos_file.name)
    if not m:
        raise ValueError(f"not a UI-PRMD positions file name: {pos_file.name}")
    ex, subj, ep, inc = m.groups()
    X = read_uiprmd_pair(pos_file)
    labels = MotionLabels(dataset="ui-prmd", subject=f"s{subj}", label=f"ui-prmd:m{ex}", style="",
                          correct=inc is None, score=None, source=str(pos_file),
                          extra={"episode": int(ep), "fps_assumed": False})
    return Motion(X.astype(np.float32), UIPRMD, FPS, labels)


def load_uiprmd(root: Path, limit: int | None = None) -> list[Motion]:
    files = uiprmd_files(root)
    if limit is not None:
        files = files[:limit]
    return [read_uiprmd(f) for f in files]
