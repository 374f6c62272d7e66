"""Files of the command line: ``--out`` checked before any work, and motions read from ``.npy`` batches
within the user-file budgets.

Every verb that writes a file checks its ``--out`` with :func:`check_out` before it loads a model or reads
its input: the path must name a file with the right ending (``np.save`` would append ``.npy`` to
``x.txt``, so the file written would not be the one named), it must not be a folder, and a probe file is
written in its folder (so an unwritable place fails at once, not after the work).  The writers then write a
temporary file in the same folder and rename it (:func:`atomic_write`), so a stopped run never leaves half
a file under the named path.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..core.errors import UserError
from ..core.limits import check_budget

__all__ = ["check_out", "writable_dir", "atomic_write", "open_npy_batch", "batch_chunks"]


def writable_dir(folder: str | os.PathLike, what: str = "--out") -> Path:
    """Create ``folder`` (and its parents) and write a probe file in it, else a one-line :class:`UserError`
    naming ``what``.  (``os.access`` says yes to root for read-only places; the probe really writes.)"""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{what}: {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"{what}: cannot write in {folder} ({e.strerror or e.__class__.__name__})") from None
    return folder


def check_out(out: str | os.PathLike, suffixes: Sequence[str], what: str = "--out") -> Path:
    """``out`` as given, checked before any work: not a folder, ending in one of ``suffixes`` (case
    insensitive), in a folder we can write.  Returns the path that will be written, exactly."""
    text = os.fspath(out)
    p = Path(text)
    if text.endswith(("/", os.sep)) or p.is_dir():
        raise UserError(f"{what} {text} is a folder; name the file, e.g. {p / ('motion' + suffixes[0])}")
    if not p.name.lower().endswith(tuple(s.lower() for s in suffixes)):
        raise UserError(f"{what} must end in {' or '.join(suffixes)}, got {p.name!r}")
    writable_dir(p.parent if str(p.parent) else Path("."), what)
    return p


def atomic_write(out: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file in ``out``'s folder, then rename it to exactly ``out``; the
    temporary file is removed on any error."""
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p


def open_npy_batch(path: str | os.PathLike, joints: int | None = None) -> np.ndarray:
    """A ``.npy`` of motions, memory-mapped (nothing is read yet), as (N, T, J, 3): a (T, J, 3) array is
    one motion.  Checked from the header before any data are read: numbers, the shape, and T x J within
    the user-file budgets (:func:`motionviz.core.limits.check_budget`); ``joints`` fixes J."""
    p = Path(path)
    try:
        a = np.load(p, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{p.name} is not a readable .npy array ({e.__class__.__name__})") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "fiu":
        raise UserError(f"{p.name} does not hold numbers")
    if a.ndim == 3:
        a = a[None]
    want = f"(N, T, {joints if joints else 'J'}, 3) or (T, {joints if joints else 'J'}, 3)"
    if a.ndim != 4 or a.shape[-1] != 3 or (joints is not None and a.shape[2] != joints):
        raise UserError(f"{p.name} has shape {tuple(a.shape)}; expected {want}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise UserError(f"{p.name} holds no motions (shape {tuple(a.shape)})")
    check_budget(int(a.shape[1]), int(a.shape[2]), p.name)
    return a


def batch_chunks(n: int, frames: int, max_frames: int, max_items: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges covering ``n`` motions of ``frames`` frames, each at most ``max_items``
    motions and (unless one motion is longer) ``max_frames`` frames in all: the memory of one chunk is
    bounded whatever the file's size."""
    per = max(1, min(max_items, max_frames // max(1, frames)))
    return [(s, min(n, s + per)) for s in range(0, n, per)]


def write_npy(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as a plain .npy atomically (temporary file in the same folder, then rename)."""
    out = Path(path)
    if out.suffix.lower() != ".npy":
        raise UserError(f"--out must end in .npy, got {out.name!r}")
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name ending in .npy")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp.npy", dir=out.parent)
    os.close(fd)
    try:
        np.save(tmp, np.ascontiguousarray(array), allow_pickle=False)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
