"""Tiny, randomly initialised diffusion / VAE checkpoints and a fake text encoder for the CLI, bench and
text-tab tests (no dataset, no shipped checkpoint, no MiniLM download or load)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from _poses import standing_pose

from motionviz.core.checkpoint import data_provenance, save_checkpoint

LABELS = ("kimore:ex1", "ui-prmd:m01", "ui-prmd:m07")
VAE_CLASSES = ("kimore:ex1", "ui-prmd:m01/correct", "ui-prmd:m01/incorrect", "ui-prmd:m07/correct")


class FakeEncoder:
    """Stands in for MiniLM (same name and size): a deterministic unit vector per text (hash-seeded)."""

    name = "minilm"
    dim = 384

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts):
        if isinstance(texts, str):
            texts = [texts]
        out = []
        for t in texts:
            self.seen.append(t)
            g = torch.Generator().manual_seed(int(hashlib.sha256(t.encode("utf-8")).hexdigest()[:12], 16))
            out.append(torch.randn(self.dim, generator=g))
        if not out:
            return torch.zeros(0, self.dim)
        return torch.nn.functional.normalize(torch.stack(out), dim=-1)


def install_fake_encoder(monkeypatch) -> FakeEncoder:
    """Make ``motionviz.generators.text_encoders.get_text_encoder("minilm")`` return the shared :class:`FakeEncoder` for
    this test."""
    import motionviz.generators.text_encoders as text

    monkeypatch.setitem(text._encoders, "minilm", FAKE_ENCODER)
    return FAKE_ENCODER


#: one instance per process: loaded generators are cached (with their encoder) across tests
FAKE_ENCODER = FakeEncoder()


def make_diffusion(directory: Path, seed: int = 0) -> Path:
    """``directory/diffusion.safetensors``: a tiny denoiser with random (non-zero) output weights, so
    different seeds give different motions; statistics centred on a standing pose."""
    from motionviz.core import representation_torch as D_RT
    from motionviz.models import diffusion as D
    from motionviz.training import diffusion as D_T

    torch.manual_seed(seed)
    cfg = D.tiny_config(labels=LABELS, datasets=("kimore", "ui-prmd"), text_encoder="minilm", text_dim=384)
    pose = torch.from_numpy(standing_pose())
    mean = torch.cat([D_RT.to_features(pose), torch.tensor([np.log(2.0)])])   # pose + log-duration (2 s)
    std = torch.full((cfg.features,), 0.05)
    model = D.DiffusionModel(cfg, mean, std)
    with torch.no_grad():
        for net in (model.net, model.ema):
            torch.nn.init.normal_(net.out.weight, std=0.05)
        model.ema.load_state_dict(model.net.state_dict())
    directory.mkdir(parents=True, exist_ok=True)
    return D_T.save_model(directory / "diffusion.safetensors", model,
                        {"data": data_provenance(["ui-prmd", "kimore"]), "command": "tests"})


def make_vae(directory: Path, seed: int = 0) -> Path:
    """``directory/vae.safetensors``: a tiny ACTOR VAE with random weights around a standing pose."""
    from motionviz.core import representation_torch as V_RT
    from motionviz.models import vae as V

    torch.manual_seed(seed)
    model = V.ActorVAE(V.tiny_config(VAE_CLASSES))
    joints = np.repeat(standing_pose()[None], 2, axis=0)
    mean = torch.from_numpy(np.asarray(V_RT.rep_item_features(joints, 2.0))[0])   # pose + log-duration (2 s)
    model.set_stats(mean, torch.full_like(mean, 0.05), torch.full_like(mean, 0.01))
    directory.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(directory / "vae.safetensors", model.state_dict(), "vae", model.config,
                           {"data": data_provenance(["ui-prmd", "kimore"]), "command": "tests"})


def make_diffusion_fast(directory: Path, seed: int = 0) -> Path:
    """``directory/diffusion-fast.safetensors``: a tiny distilled student of :func:`make_diffusion`'s
    teacher (its weights, random non-zero guidance and known-entry inputs), and the teacher beside it."""
    from motionviz.generators import diffusion as D_G
    from motionviz.generators.registry import checkpoint_path
    from motionviz.models import diffusion_fast as DF
    from motionviz.training import diffusion_fast as DF_T

    teacher_path = make_diffusion(directory, seed)
    teacher = D_G.load_generator(teacher_path)
    torch.manual_seed(seed + 1)
    cfg = DF.fast_config(teacher.cfg, teacher=checkpoint_path("diffusion", directory).name)
    student = DF.student_from_teacher(cfg, teacher.net)
    with torch.no_grad():
        for lin in (student.guidance_mlp[2], student.known_in):
            torch.nn.init.normal_(lin.weight, std=0.02)
    model = DF.DistillModel(cfg, student, teacher.mean, teacher.std)
    return DF_T.save_model(directory / "diffusion-fast.safetensors", model,
                         {"data": data_provenance(["ui-prmd", "kimore"]), "command": "tests"})
