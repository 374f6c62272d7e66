"""Plain-language captions for every label and Bandai style (``captions.json`` next to this file).

``captions(label)`` -> at least five physiotherapist-style descriptions of ``<dataset>:<id>`` or
``style:<name>``.  ``describe(labels, rng)`` composes one random caption from the content label, the
style (Bandai) and the correctness / clinical score (``incorrect`` and ``low_score`` templates).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import UserError
from ..core.motion import Motion, MotionLabels

__all__ = ["captions", "describe", "caption_table", "CAPTIONS_FILE"]

CAPTIONS_FILE = Path(__file__).with_name("captions.json")
LOW_SCORE = 50.0     # KIMORE clinical score below which the "low_score" phrasing may be used


@lru_cache(maxsize=1)
def caption_table() -> dict[str, Any]:
    """The parsed captions.json: ``labels`` (label -> list), ``incorrect``, ``low_score``, ``style``."""
    return json.loads(CAPTIONS_FILE.read_text(encoding="utf-8"))


def captions(label: str) -> list[str]:
    """All descriptions of a label (``ui-prmd:m07``) or style (``style:elderly``)."""
    table = caption_table()["labels"]
    if label not in table:
        raise UserError(f"no captions for label {label!r}")
    return list(table[label])


def _pick(items: list[str], rng: np.random.Generator | None) -> str:
    return items[0] if rng is None else items[int(rng.integers(len(items)))]


def describe(labels: MotionLabels | Motion, rng: np.random.Generator | None = None) -> str:
    """One caption for a motion's labels: content caption, plus ``, <style phrase>`` when a style is
    set, wrapped in an 'incorrect' template when ``correct is False`` (or a 'low score' template for a
    clinical score below 50).  ``rng=None`` gives the first (canonical) variant of each part."""
    lab = labels.labels if isinstance(labels, Motion) else labels
    t = caption_table()
    known = t["labels"]
    text = _pick(known[lab.label], rng) if lab.label in known else "a person moves"
    if lab.style and f"style:{lab.style}" in t["labels"]:
        text = t["style"][0].format(caption=text, style=_pick(captions(f"style:{lab.style}"), rng))
    if lab.correct is False:
        text = _pick(t["incorrect"], rng).format(caption=text)
    elif lab.score is not None and lab.score < LOW_SCORE:
        text = _pick(t["low_score"], rng).format(caption=text)
    return text
