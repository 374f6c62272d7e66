"""Where the data lives (``data_root``) and where preprocessed corpora are cached (``cache_dir``)."""

from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import DataNotFound

__all__ = ["data_root", "cache_dir", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[2]


def _candidates(root: str | os.PathLike | None) -> list[tuple[str, Path]]:
    if root is not None:
        return [("argument", Path(root).expanduser())]
    out: list[tuple[str, Path]] = []
    env = os.environ.get("MOTIONVIZ_DATA")
    if env:                                   # an explicit setting is authoritative: no fallback
        return [("$MOTIONVIZ_DATA", Path(env).expanduser())]
    out.append(("repo", REPO_ROOT.parent / "shared" / "data"))
    out.append(("cwd", Path.cwd().parent / "shared" / "data"))
    return out


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$MOTIONVIZ_DATA``, else ``../shared/data`` relative to
    the repository root or the working directory (only when ``$MOTIONVIZ_DATA`` is unset).  Raises
    :class:`DataNotFound` naming every place tried."""
    tried = []
    for what, p in _candidates(root):
        if p.is_dir():
            return p.resolve()
        tried.append(f"{p} ({what})")
    raise DataNotFound("motion data folder not found; looked in: " + ", ".join(tried)
                       + " (set MOTIONVIZ_DATA to the data folder)")


def cache_dir() -> Path:
    """Folder for preprocessed corpora: ``$MOTIONVIZ_CACHE`` or ``~/.cache/motionviz``."""
    env = os.environ.get("MOTIONVIZ_CACHE")
    p = Path(env).expanduser() if env else Path.home() / ".cache" / "motionviz"
    p.mkdir(parents=True, exist_ok=True)
    return p
