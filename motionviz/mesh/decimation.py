"""Vertex-clustering decimation of the body template (the player's preview mesh)."""

from __future__ import annotations

import numpy as np

PREVIEW_FACES = 2500              # target face count of the browser mesh


# ------------------------------------------------------------------------------------------------
# decimation (vertex clustering; the preview's vertices are a subset of the full mesh)
# ------------------------------------------------------------------------------------------------
def _cluster(vertices: np.ndarray, faces: np.ndarray, labels: np.ndarray, cell: float
             ) -> tuple[np.ndarray, np.ndarray]:
    cells = np.floor(vertices / cell).astype(np.int64)
    key = np.concatenate([labels[:, None].astype(np.int64), cells], axis=1)
    _, cid = np.unique(key, axis=0, return_inverse=True)
    cid = cid.reshape(-1)
    f = cid[faces]
    ok = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    f = f[ok]
    _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
    return cid, f[np.sort(first)]


def decimate(vertices: np.ndarray, faces: np.ndarray, labels: np.ndarray | None = None,
             target_faces: int = PREVIEW_FACES) -> tuple[np.ndarray, np.ndarray]:
    """Vertex clustering to about ``target_faces`` faces, never merging vertices of different
    ``labels`` (segments), so the decimated mesh can be posed by the same skinning weights.
    Returns (index (Vp,) into ``vertices`` of the kept vertices, faces (Fp, 3) into that index)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    labels = np.zeros(len(vertices), dtype=np.int64) if labels is None else np.asarray(labels)
    if len(faces) <= target_faces:
        return np.arange(len(vertices), dtype=np.int32), faces.astype(np.int32)
    lo, hi = 1e-4, float(np.ptp(vertices, axis=0).max())
    best = None
    for _ in range(30):
        mid = np.sqrt(lo * hi)
        cid, f = _cluster(vertices, faces, labels, mid)
        if best is None or abs(len(f) - target_faces) < abs(len(best[1]) - target_faces):
            best = (cid, f)
        if abs(len(f) - target_faces) <= 0.03 * target_faces:
            break
        if len(f) > target_faces:
            lo = mid
        else:
            hi = mid
    cid, f = best
    n = int(cid.max()) + 1
    # representative of each cluster: the member closest to the cluster's centroid
    counts = np.bincount(cid, minlength=n).astype(np.float64)
    centroid = np.stack([np.bincount(cid, vertices[:, k], n) for k in range(3)], 1) / counts[:, None]
    d = np.linalg.norm(vertices - centroid[cid], axis=1)
    order = np.lexsort((d, cid))
    rep = np.full(n, -1, dtype=np.int64)
    first = np.r_[True, cid[order][1:] != cid[order][:-1]]
    rep[cid[order][first]] = order[first]
    used = np.unique(f)
    remap = np.full(n, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return rep[used].astype(np.int32), remap[f].astype(np.int32)
