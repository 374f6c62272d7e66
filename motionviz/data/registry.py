"""Dataset registry: names, file lists and ``load_dataset``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..core.errors import DataNotFound, UserError
from ..core.motion import Motion
from ..core.skeleton import BANDAI, KIMORE18, KINECT, SMPL22, UIPRMD, Skeleton
from .bandai import bandai_files, load_bandai, read_bandai
from .humanml3d import humanml3d_files, load_humanml3d
from .irds import irds_files, load_irds, read_irds
from .keraal import keraal_files, load_keraal
from .kimore import kimore_fold_files, kimore_raw_files, load_kimore, load_kimore_raw
from .paths import data_root
from .splits import all_test, all_train, bandai_split, hashed_split, irds_split, kimore_split, uiprmd_split
from .uiprmd import load_uiprmd, read_uiprmd, uiprmd_files

__all__ = ["DATASETS", "CORPUS_DATASETS", "EXTRA_DATASETS", "DatasetSpec", "SPECS", "spec", "split_of", "load_dataset",
           "dataset_files"]

# The six datasets of the contract.  ``kimore`` = the 155 patient sequences; the raw KIMORE Kinect CSV
# samples are the extra dataset ``kimore-raw`` (their labels still say ``dataset="kimore"``).
DATASETS: tuple[str, ...] = ("ui-prmd", "kimore", "irds", "keraal", "bandai", "humanml3d")
EXTRA_DATASETS: tuple[str, ...] = ("kimore-raw",)
# Default training corpus (KERAAL is held out for evaluation).
CORPUS_DATASETS: tuple[str, ...] = ("ui-prmd", "kimore", "irds", "bandai", "humanml3d")


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the package needs to know about one dataset, in one row of :data:`SPECS` (read by the
    registry, the light index and the Data tab's browser, the splits and the corpus)."""

    name: str
    folder: str                                          # under the data root
    files: Callable[[Path], list[Path]]                  # root -> the source files (sorted)
    load: Callable[[Path, int | None], list[Motion]]     # (root, limit) -> motions, native skeleton
    skeleton: Skeleton                                   # the native skeleton
    fps: float                                           # the native frame rate
    split: Callable[[str], str]                          # subject -> "train" | "val" | "test" (splits.py)
    read_file: Callable[[Path], Motion] | None = None    # one file -> one motion (the Data tab's fast path)
    in_corpus: Callable[[Motion], bool] | None = None    # which motions a corpus keeps (None: all)


def _uiprmd_all_files(root: Path) -> list[Path]:
    """Positions and the matching angle files."""
    pos = uiprmd_files(root)
    return pos + [Path(str(p).replace("/Positions/", "/Angles/").replace("_positions", "_angles")) for p in pos]


def _kimore_all_files(root: Path) -> list[Path]:
    """The fold files and the resampled per-exercise arrays."""
    base = root / "kimore" / "patients-wsdba" / "Kimore_resampled"
    return kimore_fold_files(root) + sorted(base.glob("ex*/*.npy"))


SPECS: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec("ui-prmd", "ui-prmd", _uiprmd_all_files, load_uiprmd, UIPRMD, 30.0, uiprmd_split,
                read_file=read_uiprmd),
    DatasetSpec("kimore", "kimore/patients-wsdba", _kimore_all_files, load_kimore, KIMORE18, 30.0, kimore_split),
    # the raw samples' labels say dataset="kimore": their subjects (raw1, raw2) fall under kimore's rule (test)
    DatasetSpec("kimore-raw", "kimore/raw-samples", kimore_raw_files, load_kimore_raw, KINECT, 30.0, kimore_split),
    DatasetSpec("irds", "irds", irds_files, load_irds, KINECT, 30.0, irds_split, read_file=read_irds),
    # held out for evaluation; only the 3-D Kinect recordings go into a corpus (the sample also holds Vicon
    # and video skeletons)
    DatasetSpec("keraal", "keraal", keraal_files, load_keraal, KINECT, 30.0, all_test,
                in_corpus=lambda m: m.labels.extra.get("modality") == "kinect"),
    DatasetSpec("bandai", "bandai", bandai_files, load_bandai, BANDAI, 30.0, bandai_split, read_file=read_bandai),
    DatasetSpec("humanml3d", "humanml3d-sample", humanml3d_files, load_humanml3d, SMPL22, 20.0, all_train),
)}


def spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of ``name`` (a one-line UserError for an unknown name)."""
    if name not in SPECS:
        raise UserError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS + EXTRA_DATASETS)}")
    return SPECS[name]


def split_of(dataset: str, subject: str) -> str:
    """'train', 'val' or 'test' for a subject of a dataset (the rules: :mod:`motionviz.data.splits`); a
    dataset without a spec (e.g. a user file's) is split by a hash of ``<dataset>:<subject>``."""
    subject = str(subject)
    sp = SPECS.get(dataset)
    return sp.split(subject) if sp is not None else hashed_split(f"{dataset}:{subject}")


def _root_for(name: str, root: str | os.PathLike | None) -> Path:
    folder_name = spec(name).folder
    r = data_root(root)
    folder = r / folder_name
    if not folder.is_dir():
        raise DataNotFound(f"dataset {name!r} not found: no folder {folder}")
    return r


def dataset_files(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The source files a dataset is read from (used for cache keys and summaries)."""
    return spec(name).files(_root_for(name, root))


def load_dataset(name: str, root: str | os.PathLike | None = None, limit: int | None = None) -> list[Motion]:
    """All motions of one dataset on its native skeleton, metres, motionviz frame (Y-up, facing +Z,
    left = +X), at the native frame rate, with labels.  ``limit`` reads only the first ``limit`` files
    (sorted order) for quick looks and tests.  ``keraal`` returns every modality of the sample (Kinect,
    Vicon, BlazePose, OpenPose, AlphaPose; ``labels.extra["modality"]``)."""
    r = _root_for(name, root)
    if limit is not None and limit < 0:
        raise UserError("limit must be >= 0")
    return spec(name).load(r, limit)
