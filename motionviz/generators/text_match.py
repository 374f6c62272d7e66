"""Which known exercises a description is closest to, and whether it is far from all of them.

Every label of ``motionviz/data/captions.json`` (Bandai styles excluded) has five or six training
descriptions.  A description is embedded with the MiniLM sentence encoder (the one the diffusion model
is conditioned with) and scored against each label as the **mean cosine similarity over that label's
descriptions**; :func:`closest_exercises` returns the ``k`` best labels with their human names.

On the held-out paraphrases of ``motionviz/evaluation/eval_prompts.json`` (156 prompts never used in training, 52
labels), mean scoring puts the right label first for 69 % of prompts and in the top 3 for 92 % (among the
24 UI-PRMD / KIMORE / IntelliRehabDS labels: 65 % / 96 %); the maximum over descriptions gives 70 % / 92 %
(60 % / 86 %), the mean of the best three 67 % / 89 % (58 % / 92 %).

Calibration of :data:`FAR_BELOW` and :data:`NEAR_FROM` (MiniLM, mean scoring): the best score of the
held-out paraphrases has minimum 0.35, 5th percentile 0.52, 10th 0.57 and median 0.65; only 2 of 156 are
below 0.40 (both name "the HumanML3D sample" rather than a movement).  Twenty-four everyday, non-exercise
prompts ("bake a cake", "play the guitar", "drive a car to work", "the stock market fell today", "hello",
"asdf qwerty", ...) score 0.07-0.36, none at 0.40 or more.  Exercise-like prompts without a matching
exercise land between ("march in place lifting the knees" 0.45, "hop on one foot" 0.49, "lie on your back
and lift your legs" 0.49); "stand on one leg" scores 0.63 for the standing active straight leg raise
(``ui-prmd:m06``), whose descriptions do stand on one leg, so it is shown as that exercise with its
similarity rather than as a one-leg balance the model never saw.

The caption embeddings are computed once per encoder and process and cached on disk under
:func:`motionviz.data.cache_dir` (``text_match_<encoder>_<hash>.npz``, float32, no pickle), keyed by a
hash of the captions, the encoder's name and its embedding of a probe sentence (so a stand-in encoder with
the same name never reuses the real one's cache).  A call then costs one sentence embedding (cached per
text by the encoder) and a (labels x captions) dot product.  No UI imports: the generators use it too.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..core.limits import clean_text
from ..data import cache_dir
from ..data.captions import caption_table
from ..data.labels import LABEL_TITLES
from .text_encoders import get_text_encoder

__all__ = ["closest_exercises", "understand", "Understanding", "caption_embeddings", "FAR_BELOW", "NEAR_FROM"]

FAR_BELOW = 0.40    # best score below: far from every training description
NEAR_FROM = 0.55    # best score from here: close to a known exercise (between: only loosely like it)
_PROBE = "a person raises both arms and lowers them again"

_lock = threading.Lock()
_memory: dict[int, tuple[Any, dict[str, Any]]] = {}     # id(encoder) -> (encoder, table)


def _captions() -> tuple[list[str], list[str], np.ndarray]:
    """(labels, captions, owner (N,) int: the label index of each caption)."""
    table = caption_table()["labels"]
    labels = [l for l in table if not l.startswith("style:") and table[l]]
    caps = [c for l in labels for c in table[l]]
    owner = np.array([i for i, l in enumerate(labels) for _ in table[l]], dtype=np.int64)
    return labels, caps, owner


def _encoder(encoder: Any | None) -> Any:
    if encoder is not None:
        return encoder

    return get_text_encoder("minilm")


def _embed(encoder: Any, texts: Sequence[str]) -> np.ndarray:
    """(N, D) float32 L2-normalised embeddings."""
    e = encoder.encode(list(texts))
    e = e.detach().cpu().numpy() if hasattr(e, "detach") else np.asarray(e)
    e = e.astype(np.float32)
    return e / np.maximum(np.linalg.norm(e, axis=-1, keepdims=True), 1e-12)


def caption_embeddings(encoder: Any | None = None) -> dict[str, Any]:
    """``{"labels": [L], "owner": (N,) int, "emb": (N, D) float32, "counts": (L,) int}`` for the
    training captions (memory, then disk cache, then the encoder)."""
    enc = _encoder(encoder)
    with _lock:
        hit = _memory.get(id(enc))
        if hit is not None and hit[0] is enc:
            return hit[1]
    labels, caps, owner = _captions()
    probe = _embed(enc, [_PROBE])
    h = hashlib.sha256()
    h.update(str(getattr(enc, "name", type(enc).__name__)).encode())
    h.update("\n".join(f"{labels[o]}\t{c}" for o, c in zip(owner, caps)).encode())
    h.update(np.round(probe, 4).tobytes())
    key = h.hexdigest()[:20]
    emb = _load(key, len(caps))
    if emb is None:
        emb = _embed(enc, caps)
        _save(key, emb, enc)
    table = {"labels": labels, "owner": owner, "emb": emb, "counts": np.bincount(owner, minlength=len(labels))}
    with _lock:
        _memory[id(enc)] = (enc, table)
    return table


def _cache_file(key: str) -> Any:
    return cache_dir() / f"text_match_{key}.npz"


def _load(key: str, n: int) -> np.ndarray | None:
    try:
        p = _cache_file(key)
        if not p.is_file():
            return None
        with np.load(p, allow_pickle=False) as z:
            emb = np.asarray(z["emb"], dtype=np.float32)
        return emb if emb.ndim == 2 and len(emb) == n and np.isfinite(emb).all() else None
    except (OSError, ValueError, KeyError):
        return None                                    # unreadable cache: embed again


def _save(key: str, emb: np.ndarray, encoder: Any) -> None:
    try:
        p = _cache_file(key)
        tmp = p.with_name(f"{p.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, emb=emb, encoder=np.array(str(getattr(encoder, "name", ""))))
        os.replace(tmp, p)
    except OSError:
        pass                                           # read-only cache folder: keep it in memory only


def _scores(text: str, enc: Any, labels: Sequence[str] | None) -> list[tuple[str, float]]:
    t = caption_embeddings(enc)
    q = _embed(enc, [text])[0]                                            # (D,)
    sims = t["emb"] @ q                                                   # (N,)
    per_label = np.bincount(t["owner"], weights=sims, minlength=len(t["labels"])) / np.maximum(t["counts"], 1)
    allowed = None if labels is None else set(labels)
    return [(l, float(s)) for l, s in zip(t["labels"], per_label) if allowed is None or l in allowed]


def closest_exercises(text: str, k: int = 3, encoder: Any | None = None,
                      labels: Sequence[str] | None = None) -> list[tuple[str, str, float]]:
    """The ``k`` known labels whose training descriptions are closest to ``text``: ``[(label, human name,
    cosine similarity)]``, best first (mean similarity over the label's descriptions, see the module
    docstring).  ``labels`` restricts the candidates (e.g. to a model's vocabulary); empty text -> []."""
    t = clean_text(text)
    if not t or k < 1:
        return []
    scored = sorted(_scores(t, _encoder(encoder), labels), key=lambda x: -x[1])[:k]
    return [(l, LABEL_TITLES.get(l, l), round(s, 4)) for l, s in scored]


@dataclass(frozen=True)
class Understanding:
    """What a description was understood as: ``matches`` (label, name, similarity), best first, and
    ``level``: "near" (best >= NEAR_FROM), "partial" (FAR_BELOW <= best < NEAR_FROM), "far" or "empty"."""

    text: str
    matches: tuple[tuple[str, str, float], ...]
    level: str

    @property
    def far(self) -> bool:
        return self.level == "far"

    def markdown(self) -> str:
        """A short Markdown paragraph for the user (no user text in it)."""
        if self.level == "empty" or not self.matches:
            return ""
        lst = ", ".join(f"**{n}** (`{l}`, {s:.2f})" for l, n, s in self.matches)
        if self.level == "far":
            return (f"⚠️ **This description is far from every exercise the model was trained on** (best "
                    f"similarity {self.matches[0][2]:.2f}, below {FAR_BELOW:.2f}): the motion will not follow "
                    f"it. Closest known: {lst}. Pick an exercise from the list or describe one of them.")
        if self.level == "partial":
            return (f"Understood only loosely (best similarity {self.matches[0][2]:.2f}, below "
                    f"{NEAR_FROM:.2f}): the motion will look like the closest known exercises — {lst}.")
        return f"Closest known exercises: {lst} (cosine similarity to their training descriptions)."


def understand(text: str, k: int = 3, encoder: Any | None = None,
               labels: Sequence[str] | None = None) -> Understanding:
    """:func:`closest_exercises` plus the near / partial / far verdict (thresholds in the module docstring)."""
    m = closest_exercises(text, k, encoder, labels)
    if not m:
        return Understanding(text or "", (), "empty")
    best = m[0][2]
    level = "far" if best < FAR_BELOW else ("partial" if best < NEAR_FROM else "near")
    return Understanding(text, tuple(m), level)
