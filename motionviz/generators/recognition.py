"""The shipped recogniser, loaded once per process (recognizer.safetensors) and shared read-only."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.checkpoint import config_from_json, default_checkpoint_dir, load_checkpoint, load_strict
from ..core.errors import CheckpointError
from ..models.recognition import KIND, Config, Recognizer
from .registry import cached

CHECKPOINT_NAME = "recognizer.safetensors"


# ================================================================================================
# Loading
# ================================================================================================
def recognizer_from_checkpoint(path: str | Path) -> Recognizer:
    tensors, meta = load_checkpoint(path, KIND)
    cfg = config_from_json(Config, meta["config"])
    model = Recognizer(cfg)
    load_strict(model, tensors, path, "its recognizer config")
    model.correct_labels = tuple(json.loads(meta.get("correct_labels", "[]")))
    model.score_labels = tuple(json.loads(meta.get("score_labels", "[]")))
    model.metadata = meta
    model.eval()
    return model


def load_recognizer(path: str | Path | None = None) -> Recognizer:
    """The shipped recogniser (``$MOTIONVIZ_CHECKPOINTS/recognizer.safetensors`` by default), loaded once
    per process and shared read-only."""
    p = Path(path) if path is not None else default_checkpoint_dir() / CHECKPOINT_NAME
    if not p.is_file():
        raise CheckpointError(f"no recogniser checkpoint at {p}; train one with "
                              f"`python -m motionviz train recognizer --minutes 20 --threads 1`")
    return cached(KIND, p, recognizer_from_checkpoint)
