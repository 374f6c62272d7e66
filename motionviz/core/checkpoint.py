"""Checkpoint files: one ``.safetensors`` per model, config and provenance in its metadata.

Metadata (str -> str): ``format`` (motionviz/1), ``kind`` (diffusion, vae, aegan, recognizer, ...),
``config`` (JSON of the model's Config dataclass), and whatever else the trainer records: ``text_encoder``,
``data`` (JSON list of {dataset, licence}), ``command``, ``steps``, ``date``, ``stats`` ...
Writes are atomic (temporary file, then rename), so an interrupted training never leaves a broken file.

Integrity: ``SHA256SUMS`` beside the checkpoints (``sha256sum`` format, so ``sha256sum -c SHA256SUMS``
works too) records the SHA-256 of each shipped file.  :func:`load_checkpoint` verifies a file against it
before reading any tensor (a flipped byte, a truncated or replaced file -> :class:`CheckpointError`); in the
shipped folder a file must be listed.  After retraining, record the new files with
``python -m motionviz checkpoints --update-sums`` (``--verify`` checks them); :func:`save_checkpoint` also
updates the entry of a file it writes into a folder that has a ``SHA256SUMS``.  The config metadata is
validated against the model's ``Config`` dataclass (field names, types, finite numbers, sizes bounded by
the tensors in the file) before any model is built.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import math
import os
import re
import tempfile
import threading
import typing
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
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


#: The checkpoints shipped with the repository (their SHA-256 sums are required there).
REPO_CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"


def default_checkpoint_dir() -> Path:
    env = os.environ.get("MOTIONVIZ_CHECKPOINTS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "checkpoints"


def config_to_json(config: Any) -> str:
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    return json.dumps(config, sort_keys=True)


#: An int field of a config may be at most max(CONFIG_INT_FACTOR x its default, the largest tensor
#: dimension in the file, CONFIG_INT_FLOOR): sizes that allocate (widths, layers, tokens) cannot be blown
#: up by a crafted config before the strict load notices the mismatch.
CONFIG_INT_FACTOR = 16
CONFIG_INT_FLOOR = 1024
_limits = threading.local()


def _check_value(name: str, value: Any, default: Any, hint: Any, int_limit: int) -> Any:
    """One config value checked against its field's default/annotation; returns it (lists -> tuples)."""
    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"checkpoint config field {name!r}: {what}")

    origin = typing.get_origin(hint)
    if isinstance(default, tuple) or origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad("expected a list")
        if len(value) > 64:
            raise bad(f"{len(value)} items is too many")
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        elem_default = default[0] if isinstance(default, tuple) and default else (args[0]() if args and
                                                                                   args[0] in (int, float, str) else None)
        return tuple(_check_value(name, v, elem_default, args[0] if args else None, int_limit) for v in value)
    if default is None or (hint is not None and origin is not None and type(None) in typing.get_args(hint)):
        if value is None:
            return None
        if default is None:
            kinds = [a for a in typing.get_args(hint) if a is not type(None)]
            default = kinds[0]() if kinds and kinds[0] in (int, float, str, bool) else value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("expected true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("expected a whole number")
        if abs(value) > int_limit:
            raise bad(f"{value} is out of range (at most {int_limit} for this checkpoint)")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad("expected a finite number")
        return value
    if isinstance(default, str):
        if not isinstance(value, str) or len(value) > 4096:
            raise bad("expected a short text")
        return value
    if isinstance(value, (dict, list)) and len(json.dumps(value)) > 65536:
        raise bad("too large")
    return value


def config_from_json(cls: type, text: str) -> Any:
    """The ``cls`` dataclass from a checkpoint's config JSON, validated before anything is built: a JSON
    object, known field names, each value of its field's type, numbers finite, whole numbers bounded
    (see :data:`CONFIG_INT_FACTOR`), then the class's own ``validate()`` when it has one.  Any problem is a
    one-line :class:`CheckpointError`."""
    try:
        d = json.loads(text) if isinstance(text, str) and len(text) <= 1_000_000 else None
    except (json.JSONDecodeError, RecursionError):
        d = None
    if not isinstance(d, dict):
        raise CheckpointError(f"checkpoint config is not a JSON object of {cls.__name__} fields")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise CheckpointError(f"checkpoint config has fields {sorted(unknown)[:8]} unknown to {cls.__name__}")
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - annotations that do not resolve: check by defaults only
        hints = {}
    int_limit_base = getattr(_limits, "max_dim", 0)
    _limits.max_dim = 0
    kw = {}
    for f in dataclasses.fields(cls):
        if f.name not in d:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = None
        dflt_int = max((abs(x) for x in (default if isinstance(default, tuple) else (default,))
                        if isinstance(x, int) and not isinstance(x, bool)), default=0)
        limit = max(CONFIG_INT_FACTOR * dflt_int, int_limit_base, CONFIG_INT_FLOOR)
        kw[f.name] = _check_value(f.name, d[f.name], default, hints.get(f.name), limit)
    try:
        cfg = cls(**kw)
        if callable(getattr(cfg, "validate", None)):
            out = cfg.validate()
            cfg = out if isinstance(out, cls) else cfg
    except CheckpointError:
        raise
    except (TypeError, ValueError, AssertionError) as e:
        raise CheckpointError(f"checkpoint config is not a valid {cls.__name__}: "
                              f"{str(e).splitlines()[0][:200] if str(e) else type(e).__name__}") from None
    return cfg


# ---- integrity ----------------------------------------------------------------------------------------
SUMS_FILE = "SHA256SUMS"
_sha_cache: dict[tuple[str, int, int], str] = {}
_SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *]([^/\\]+)$")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file (streamed; cached per path, size and modification time)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _sha_cache:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _sha_cache[key] = h.hexdigest()
    return _sha_cache[key]


def read_sums(directory: str | Path) -> dict[str, str] | None:
    """File name -> hex SHA-256 from ``<directory>/SHA256SUMS``; None when there is no such file."""
    p = Path(directory) / SUMS_FILE
    if not p.is_file():
        return None
    out: dict[str, str] = {}
    for i, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines()):
        if not line.strip() or line.startswith("#"):
            continue
        m = _SUM_LINE.match(line.strip())
        if m is None:
            raise CheckpointError(f"{p.name} line {i + 1} is not '<sha256>  <file name>'")
        out[m.group(2)] = m.group(1)
    return out


def write_sums(directory: str | Path, names: list[str] | None = None) -> dict[str, str]:
    """Record the SHA-256 of ``names`` (default: every ``*.safetensors``) in ``<directory>/SHA256SUMS``,
    keeping the other entries whose file still exists; written atomically.  Returns the whole table."""
    d = Path(directory)
    sums = read_sums(d) or {}
    for name in names if names is not None else sorted(p.name for p in d.glob("*.safetensors")):
        sums[name] = file_sha256(d / name)
    sums = {k: v for k, v in sorted(sums.items()) if (d / k).is_file()}
    text = "".join(f"{v}  {k}\n" for k, v in sums.items())
    fd, tmp = tempfile.mkstemp(prefix=SUMS_FILE + ".", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, d / SUMS_FILE)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return sums


def verify_checkpoint(path: str | Path) -> str | None:
    """Check ``path`` against the ``SHA256SUMS`` beside it; return its SHA-256 when it was verified, None
    when its folder has no sums (a checkpoint of your own, outside the shipped folder).  In the shipped
    folder (:data:`REPO_CHECKPOINTS`) the sums file and the file's entry are required."""
    p = Path(path)
    shipped = p.parent.resolve() == REPO_CHECKPOINTS.resolve()     # the repository's own folder
    sums = read_sums(p.parent)
    if sums is None or p.name not in sums:
        if shipped:
            raise CheckpointError(f"{p.name} has no SHA-256 in {SUMS_FILE}; after retraining run "
                                  f"`python -m motionviz checkpoints --update-sums`")
        return None
    digest = file_sha256(p)
    if digest != sums[p.name]:
        raise CheckpointError(f"{p.name} does not match its SHA-256 in {SUMS_FILE} (the file is corrupt or "
                              f"was replaced); if you retrained it, run `python -m motionviz checkpoints "
                              f"--update-sums`")
    return digest


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
    if (path.parent / SUMS_FILE).is_file():   # keep the folder's integrity record in step with what we wrote
        write_sums(path.parent, [path.name])
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
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
    """Return (tensors, metadata): the file is verified against ``SHA256SUMS`` first (:func:`verify_checkpoint`),
    then the format, the kind (when given) and the size are checked.  The largest tensor dimension in the
    file bounds the whole numbers of the config read next by :func:`config_from_json` (same thread)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"no checkpoint at {p}")
    if p.stat().st_size > 4 * MAX_BYTES:
        raise CheckpointError(f"{p.name} is {p.stat().st_size / 2**20:.0f} MB, over the "
                              f"{4 * MAX_BYTES / 2**20:.0f} MB a checkpoint may have")
    verify_checkpoint(p)
    meta = read_metadata(p)
    if kind is not None and meta.get("kind") != kind:
        raise CheckpointError(f"{p.name} holds a {meta.get('kind')!r} model, not {kind!r}")
    try:
        tensors = load_file(str(p))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{p.name} is corrupt: {str(e).splitlines()[0][:200] if str(e) else ''}") from None
    max_dim = max((max(t.shape) for t in tensors.values() if t.dim()), default=0)
    _limits.max_dim = max_dim
    _check_size_against_weights(p, meta, tensors)
    _limits.max_dim = max_dim               # for the loader's own config_from_json, next
    return tensors, meta


#: kind -> (module, Config class, model class, state-dict prefix in the file) for the size check below
MODEL_CLASSES: dict[str, tuple[str, str, str, str]] = {
    "diffusion": ("motionviz.models.diffusion", "Config", "Denoiser", "net."),
    "diffusion-fast": ("motionviz.models.diffusion_fast", "FastConfig", "StudentDenoiser", "net."),
    "vae": ("motionviz.models.vae", "Config", "ActorVAE", ""),
    "aegan": ("motionviz.models.aegan", "Config", "AEGAN", ""),
    "recognizer": ("motionviz.models.recognition", "Config", "Recognizer", ""),
}



def load_strict(module: torch.nn.Module, tensors: dict[str, torch.Tensor], path: str | Path, what: str) -> None:
    """``module.load_state_dict(tensors, strict=True)``; a mismatch is a one-line :class:`CheckpointError`
    naming the file, ``what`` it should hold and the first missing / unexpected / mis-shaped keys."""
    try:
        module.load_state_dict(tensors, strict=True)
    except (RuntimeError, ValueError) as e:
        keys = re.findall(r'"([^"]+)"', str(e))[:3]
        detail = f" (keys {', '.join(keys)}{', ...' if len(keys) == 3 else ''})" if keys else ""
        raise CheckpointError(f"{Path(path).name} does not match {what}: {str(e).splitlines()[0]}{detail}") from None

def _check_size_against_weights(path: Path, meta: dict[str, str], tensors: dict[str, torch.Tensor]) -> None:
    """Build the model of the checkpoint's config on PyTorch's ``meta`` device (no memory) and refuse the
    file when that model would hold far more numbers than the file's weights: a crafted config cannot
    make the loader allocate before the strict load."""
    spec = MODEL_CLASSES.get(meta.get("kind", ""))
    if spec is None:
        return
    module, cfg_name, model_name, prefix = spec
    try:
        mod = importlib.import_module(module)
        cfg = config_from_json(getattr(mod, cfg_name), meta.get("config", ""))
        with torch.device("meta"):
            model = getattr(mod, model_name)(cfg)
        wanted = sum(t.numel() for t in model.state_dict().values())
    except CheckpointError:
        raise
    except Exception:  # noqa: BLE001 - a model that cannot be built on "meta": the loader's strict load decides
        return
    have = sum(t.numel() for k, t in tensors.items() if k.startswith(prefix))
    if wanted > 2 * have + 1_000_000:
        raise CheckpointError(f"{path.name}: its config describes a model of {wanted:,} numbers but the file holds "
                              f"{have:,}; the config does not match the weights")


def data_provenance(datasets: list[str]) -> list[dict[str, str]]:
    return [{"dataset": d, "licence": DATA_LICENCES.get(d, "unknown")} for d in datasets]
