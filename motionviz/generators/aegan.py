"""The AE-GAN behind the Generator protocol (inpainting) and its checkpoint loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..core.errors import UserError
from ..core.motion import Motion
from ..core.retarget import retarget_mask
from ..models.aegan import AEGAN
from .inpaint import DEFAULT_PRESET, inpaint, load, preset


class AEGANGenerator:
    """:class:`motionviz.generators.registry.Generator` for inpainting / denoising with a trained AE-GAN.

    ``request.source``: the motion (any skeleton retargetable to the model's); ``request.keep``:
    (T, J) True = observed (NaN joints count as missing too); ``request.window`` / ``shift`` /
    ``steps``; ``request.preset`` ("tuned" default, or "thesis"; see
    :data:`motionviz.generators.inpaint.PRESETS`), ``average`` (bool: override the preset's candidate combination),
    ``denoise`` (bool: replace observed joints too), ``dims`` (2 or 3; default from the motion).
    """

    name = "aegan"
    tasks = frozenset({"inpaint"})
    labels: tuple[str, ...] = ()          # takes no exercise label
    text_encoder_loaded = True            # reads no text

    def __init__(self, model: AEGAN, metadata: dict[str, str] | None = None) -> None:
        self.model = model
        self.metadata = metadata or {}
        self.skeleton = model.skeleton

    def has_correctness(self, label: str) -> bool:
        return False

    def condition_text(self, request: Any) -> str:
        return ""

    def generate(self, request: Any, progress: Callable[[float, str], None] | None = None) -> list[Any]:
        req = request.validated()
        if req.source is None:
            raise UserError("inpainting needs a source motion")
        src: Motion = req.source
        keep = req.keep
        if src.skeleton.name != self.skeleton.name:
            obs = src.observed if keep is None else (keep & src.observed)
            keep = retarget_mask(obs, src.skeleton, self.skeleton)
            src = src.retarget(self.skeleton)

        st = preset(str(DEFAULT_PRESET if req.preset is None else req.preset))
        if req.average is not None:
            st["average"] = bool(req.average)
        result = inpaint(self.model, src.joints, keep, window=req.window, shift=req.shift, steps=req.steps,
                         keep_observed=not bool(req.denoise), dims=req.dims, progress=progress, **st)
        out = Motion(result.joints, self.skeleton, src.fps,
                     src.labels.__class__(**{**src.labels.to_dict(), "source": "aegan-inpaint"}))
        return [out]


def load_generator(path: str | Path) -> AEGANGenerator:
    model, meta = load(path)
    return AEGANGenerator(model, meta)
