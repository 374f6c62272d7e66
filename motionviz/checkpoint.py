"""Checkpoint files: one ``.safetensors`` per model, config and provenance in its metadata.

Metadata (str -> str): ``format`` (motionviz/1), ``kind`` (diffusion, vae, aegan, recognizer, ...),
``config`` (JSON of the model's Config dataclass), and whatever else the trainer records: ``text_encoder``,
``data`` (JSON list of {dataset, licence}), ``command``, ``steps``, ``date``, ``stats`` ...
Writes are atomic (temporary file, then rename), so an interrupted training never leaves a broken file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import CheckpointError

FORMAT = "motionviz/1"
MAX_BYTES = 25 * 1024 * 1024

# Licences of the data each dataset brings into a trained model (see ../shared/data/README.md).
DATA_LICENCES: dict[str, str] = {
    "bandai": "CC BY-NC 4.0 (Bandai-Namco-Research-Motiondataset)",
    "ui-prmd": "ODC PDDL 1.0 (UI-PRMD data paper, Vakanski et al. 2018)",
    "kimore": "unverified (KIMORE via MSD-IRIMAS/Weighted-ShapeDBA-4-Rehab; research use)",
    "irds": "unverified (IntelliRehabDS, Miron et al. 2021; research use)",
    "keraal": "BSD-2-Clause repository / CC BY-NC-SA dataset page (KERAAL)",
    "humanml3d": "MIT (HumanML3D); motion derived from AMASS, whose own terms apply",
}


def default_checkpoint_dir() -> Path:
    env = os.environ.get("MOTIONVIZ_CHECKPOINTS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "checkpoints"


def config_to_json(config: Any) -> str:
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    return json.dumps(config, sort_keys=True)


def config_from_json(cls: type, text: str) -> Any:
    d = json.loads(text)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise CheckpointError(f"checkpoint config has fields {sorted(unknown)} unknown to {cls.__name__}")
    kw = {}
    for f in dataclasses.fields(cls):
        if f.name in d:
            v = d[f.name]
            kw[f.name] = tuple(v) if isinstance(v, list) else v
    return cls(**kw)


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], kind: str, config: Any,
                    metadata: dict[str, Any] | None = None, max_bytes: int = MAX_BYTES) -> Path:
    """Write ``tensors`` + metadata atomically.  Non-string metadata values are JSON-encoded."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "kind": kind, "config": config_to_json(config)}
    for k, v in (metadata or {}).items():
        meta[k] = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    clean = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(clean, tmp, metadata=meta)
        size = os.path.getsize(tmp)
        if size > max_bytes:
            raise CheckpointError(f"checkpoint would be {size / 2**20:.1f} MB, over the {max_bytes / 2**20:.0f} MB limit")
        os.chmod(tmp, 0o644)          # mkstemp makes 0600; a checkpoint is a normal readable file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path.name} is not a readable safetensors file: {e}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not a {FORMAT} checkpoint")
    return meta


def load_checkpoint(path: str | Path, kind: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Return (tensors, metadata); checks the format and, when given, the kind."""
    meta = read_metadata(path)
    if kind is not None and meta.get("kind") != kind:
        raise CheckpointError(f"{Path(path).name} holds a {meta.get('kind')!r} model, not {kind!r}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{Path(path).name} is corrupt: {e}") from None
    return tensors, meta


def data_provenance(datasets: list[str]) -> list[dict[str, str]]:
    return [{"dataset": d, "licence": DATA_LICENCES.get(d, "unknown")} for d in datasets]
