"""Datasets for motionviz: readers (one per format, ours), the preprocessed corpus, splits, captions.

Public API (see ``motionviz/data/README.md``)::

    data_root(root=None) -> Path
    DATASETS, CORPUS_DATASETS
    load_dataset(name, root=None, limit=None) -> list[Motion]      # native skeleton, metres, our frame
    load_corpus(split="train", datasets=None, fps=20, root=None, normalise=True) -> list[Motion]
    split_of(dataset, subject) -> "train" | "val" | "test"
    label_names(datasets=None) -> list[str];  LABEL_TITLES;  LABEL_MIRROR;  augment_mirror(motions)
    captions(label) -> list[str];  describe(labels, rng) -> str
    load_user_file(path) -> Motion
    keraal_exercise(exercise, root=None) -> KeraalExercise          # aligned Kinect + video tracks
"""

from __future__ import annotations

from .captions import captions, describe
from .corpus import augment_mirror, load_corpus, one_side, preprocess, side_log_ratio, sided_labels
from .keraal import KeraalExercise, keraal_exercise
from .labels import BANDAI_STYLES, LABEL_MIRROR, LABEL_TITLES, label_names, mirror_label
from .paths import cache_dir, data_root
from .registry import CORPUS_DATASETS, DATASETS, dataset_files, load_dataset, split_of
from .userfile import load_user_file

__all__ = [
    "data_root", "cache_dir", "DATASETS", "CORPUS_DATASETS", "load_dataset", "dataset_files", "load_corpus",
    "preprocess", "augment_mirror", "sided_labels", "one_side", "side_log_ratio", "split_of", "label_names",
    "LABEL_TITLES", "LABEL_MIRROR",
    "BANDAI_STYLES", "mirror_label", "captions", "describe", "load_user_file", "keraal_exercise",
    "KeraalExercise",
]

