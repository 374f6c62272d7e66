"""Deterministic subject-wise train / val / test splits.

``split_of(dataset, subject)`` (:mod:`motionviz.data.registry`: the dataset's ``DatasetSpec.split``, one
of the rule functions below) depends only on its two strings (no randomness, no data access):

==============  ==========================================================================================
dataset         rule (subjects are people unless stated)
==============  ==========================================================================================
ui-prmd         s01-s07 train, s08 val, s09-s10 test (70/10/20 of 10 healthy subjects).
kimore          patients p40-p70 (31, the KIMORE index): ranked by sha1("kimore:<subject>"); the first 22
                train, next 3 val, last 6 test (71/10/19).  Raw-sample subjects raw1/raw2: test.
irds            215 and 217 (wheelchair) train, 216 test, no val (3 subjects only; 134/0/54 files).
bandai          no actor ids are published and every file has the same skeleton (one actor, unverified),
                so the unit is the *take* (subject = ``<dataset-N>_<content>_<style>_<NNN>``), hashed:
                sha1 < 70 % train, < 80 % val, else test; contents with fewer than 5 takes (respond, call,
                punch, kick, slash, dance-short) always train so every label appears in train.
humanml3d       the single sample motion: train.
keraal          held out for evaluation: test.
==============  ==========================================================================================
"""

from __future__ import annotations

import hashlib

__all__ = ["SPLITS", "KIMORE_PATIENTS", "hashed_split", "uiprmd_split", "kimore_split", "irds_split", "bandai_split",
           "all_train", "all_test"]

SPLITS = ("train", "val", "test")
KIMORE_PATIENTS = tuple(f"p{i:02d}" for i in range(40, 71))
_BANDAI_RARE = {"respond", "call", "punch", "kick", "slash", "dance-short", "dance-long"}


def _h(s: str) -> float:
    """Stable hash of a string in [0, 1)."""
    return int(hashlib.sha1(s.encode()).hexdigest()[:12], 16) / float(16 ** 12)


_KIMORE_RANK = {s: r for r, s in enumerate(sorted(KIMORE_PATIENTS, key=lambda s: _h(f"kimore:{s}")))}


def hashed_split(key: str) -> str:
    """sha1 of ``key`` < 70 % train, < 80 % val, else test (datasets without a rule of their own)."""
    h = _h(key)
    return "train" if h < 0.7 else "val" if h < 0.8 else "test"


def uiprmd_split(subject: str) -> str:
    n = int(subject.lstrip("s"))
    return "train" if n <= 7 else "val" if n == 8 else "test"


def kimore_split(subject: str) -> str:
    r = _KIMORE_RANK.get(subject)
    if r is None:
        return "test"
    return "train" if r < 22 else "val" if r < 25 else "test"


def irds_split(subject: str) -> str:
    return "test" if subject == "216" else "train"


def bandai_split(subject: str) -> str:
    parts = subject.split("_")
    if len(parts) >= 2 and parts[1] in _BANDAI_RARE:
        return "train"
    return hashed_split(f"bandai:{subject}")


def all_train(subject: str) -> str:
    return "train"


def all_test(subject: str) -> str:
    return "test"
