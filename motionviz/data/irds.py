"""IntelliRehabDS (IRDS) reader: long-format CSV, 25 Kinect v2 joints per frame (25 rows per frame).

File names ``{Subject}_{Date}_{Gesture}_{Rep}_{Correct}_{Position}.csv.xz``; correct 1 = correct,
2 = incorrect.  Labels keep the upstream gesture numbers ``irds:0`` .. ``irds:8``.  **Side naming**: in
these files the limb that moves is the opposite of the side in the upstream gesture *name* (gestures
0/2/4 move the anatomical right arm, 1/3/5 the left, 7 the right leg, 8 the left leg); the joint data
itself is anatomical.  Our titles/captions therefore describe the anatomical side that moves (see
``captions.json``), and ``extra["upstream_name"]`` keeps the upstream wording.
Rate: nominal 30 fps (timestamps: median 29.4 fps, occasional dropped frames).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np

from ..core.motion import Motion, MotionLabels
from ..core.skeleton import KINECT
from ._util import KINECT_TO_MV, open_text

__all__ = ["irds_files", "read_irds", "load_irds", "FPS", "UPSTREAM_GESTURES"]

FPS = 30.0
_NAME = re.compile(r"(\d+)_(\d+)_(\d+)_(\d+)_(\d+)_([a-z]+)\.csv\.xz$")
UPSTREAM_GESTURES = {
    0: "elbow flexion left", 1: "elbow flexion right", 2: "shoulder flexion left",
    3: "shoulder flexion right", 4: "shoulder abduction left", 5: "shoulder abduction right",
    6: "shoulder forward elevation", 7: "side tap left", 8: "side tap right",
}


def irds_files(root: Path) -> list[Path]:
    return sorted((root / "irds").glob("*.csv.xz"))


def read_irds(path: str | Path) -> Motion:
    path = Path(path)
    m = _NAME.search(path.name)
    if not m:
        raise ValueError(f"not an IRDS file name: {path.name}")
    subj, date, gesture, rep, correct, position = m.groups()
    rows = list(csv.reader(io.StringIO(open_text(path))))[1:]
    rows = [r for r in rows if r]
    if len(rows) % 25:
        raise ValueError(f"{path.name}: {len(rows)} joint rows is not a multiple of 25")
    xyz = np.array([r[11:14] for r in rows], dtype=np.float64).reshape(-1, 25, 3) * KINECT_TO_MV
    names = [r[9] for r in rows[:25]]
    if tuple(names) != KINECT.joints:
        raise ValueError(f"{path.name}: unexpected joint order {names[:3]}...")
    tracked = np.mean([r[10] == "Tracked" for r in rows])
    ts = np.array([float(r[8]) for r in rows[::25]])
    labels = MotionLabels(
        dataset="irds", subject=subj, label=f"irds:{int(gesture)}", style="",
        correct={"1": True, "2": False}.get(correct), score=None, source=str(path),
        extra={"repetition": int(rep), "position": position, "date": date,
               "upstream_name": UPSTREAM_GESTURES.get(int(gesture), ""),
               "tracked_fraction": float(tracked), "timestamps_ms": None if len(ts) < 2 else
               float(np.median(np.diff(ts)))})
    return Motion(xyz.astype(np.float32), KINECT, FPS, labels)


def load_irds(root: Path, limit: int | None = None) -> list[Motion]:
    files = irds_files(root)
    if limit is not None:
        files = files[:limit]
    return [read_irds(f) for f in files]
