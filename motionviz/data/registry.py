"""Dataset registry: names, file lists and ``load_dataset``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ..core.errors import DataNotFound, UserError
from ..core.motion import Motion
from .bandai import bandai_files, load_bandai
from .humanml3d import humanml3d_files, load_humanml3d
from .irds import irds_files, load_irds
from .keraal import keraal_files, load_keraal
from .kimore import kimore_fold_files, kimore_raw_files, load_kimore, load_kimore_raw
from .paths import data_root
from .uiprmd import load_uiprmd, uiprmd_files

__all__ = ["DATASETS", "CORPUS_DATASETS", "EXTRA_DATASETS", "load_dataset", "dataset_files"]

# The six datasets of the contract.  ``kimore`` = the 155 patient sequences; the raw KIMORE Kinect CSV
# samples are the extra dataset ``kimore-raw`` (their labels still say ``dataset="kimore"``).
DATASETS: tuple[str, ...] = ("ui-prmd", "kimore", "irds", "keraal", "bandai", "humanml3d")
EXTRA_DATASETS: tuple[str, ...] = ("kimore-raw",)
# Default training corpus (KERAAL is held out for evaluation).
CORPUS_DATASETS: tuple[str, ...] = ("ui-prmd", "kimore", "irds", "bandai", "humanml3d")

_FOLDERS = {"ui-prmd": "ui-prmd", "kimore": "kimore/patients-wsdba", "kimore-raw": "kimore/raw-samples",
            "irds": "irds", "keraal": "keraal", "bandai": "bandai", "humanml3d": "humanml3d-sample"}


def _check(name: str) -> str:
    if name not in DATASETS and name not in EXTRA_DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS + EXTRA_DATASETS)}")
    return name


def _root_for(name: str, root: str | os.PathLike | None) -> Path:
    r = data_root(root)
    folder = r / _FOLDERS[name]
    if not folder.is_dir():
        raise DataNotFound(f"dataset {name!r} not found: no folder {folder}")
    return r


def dataset_files(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The source files a dataset is read from (used for cache keys and summaries)."""
    r = _root_for(_check(name), root)
    if name == "ui-prmd":
        pos = uiprmd_files(r)
        return pos + [Path(str(p).replace("/Positions/", "/Angles/").replace("_positions", "_angles"))
                      for p in pos]
    if name == "kimore":
        base = r / "kimore" / "patients-wsdba" / "Kimore_resampled"
        return kimore_fold_files(r) + sorted(base.glob("ex*/*.npy"))
    if name == "kimore-raw":
        return kimore_raw_files(r)
    if name == "irds":
        return irds_files(r)
    if name == "keraal":
        return keraal_files(r)
    if name == "bandai":
        return bandai_files(r)
    return humanml3d_files(r)


def _loader(name: str) -> Callable[[Path, int | None], list[Motion]]:
    if name == "ui-prmd":
        return load_uiprmd
    if name == "kimore":
        return load_kimore
    if name == "kimore-raw":
        return load_kimore_raw
    if name == "irds":
        return load_irds
    if name == "keraal":
        return load_keraal
    if name == "bandai":
        return load_bandai
    return load_humanml3d


def load_dataset(name: str, root: str | os.PathLike | None = None, limit: int | None = None) -> list[Motion]:
    """All motions of one dataset on its native skeleton, metres, motionviz frame (Y-up, facing +Z,
    left = +X), at the native frame rate, with labels.  ``limit`` reads only the first ``limit`` files
    (sorted order) for quick looks and tests.  ``keraal`` returns every modality of the sample (Kinect,
    Vicon, BlazePose, OpenPose, AlphaPose; ``labels.extra["modality"]``)."""
    r = _root_for(_check(name), root)
    if limit is not None and limit < 0:
        raise UserError("limit must be >= 0")
    return _loader(name)(r, limit)
