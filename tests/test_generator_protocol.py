"""Every registered generator family, and :class:`FixedSteps` around one, provides each member of the
:class:`motionviz.generators.registry.Generator` protocol (consumers read them plainly, never by probing)."""

from __future__ import annotations

import pytest
import torch

from motionviz.generators import registry
from motionviz.generators.registry import MODELS, FixedSteps, Generator, Request

MEMBERS = ("name", "tasks", "skeleton", "labels", "text_encoder_loaded", "has_correctness", "condition_text",
           "generate")


def _aegan():
    from motionviz.generators.aegan import AEGANGenerator
    from motionviz.models import aegan as A

    torch.manual_seed(0)
    return AEGANGenerator(A.build_model(A.Config(frames=8, latent=4, channels=(4, 8), batch_size=8)))


@pytest.fixture(scope="module")
def generators(tiny_diffusion_vae_dir, tiny_fast_dir) -> dict[str, Generator]:
    d = {"diffusion": tiny_diffusion_vae_dir, "vae": tiny_diffusion_vae_dir, "diffusion-fast": tiny_fast_dir}
    out = {n: registry.load_generator(n, path=registry.checkpoint_path(n, ck)) for n, ck in d.items()}
    out["aegan"] = _aegan()
    return out


def test_protocol_lists_every_member():
    assert set(MEMBERS) <= {k for k in dir(Generator) if not k.startswith("_")} | set(Generator.__annotations__)


def test_every_registered_generator_and_fixed_steps_satisfy_the_protocol(generators, fake_text):
    assert set(generators) == set(MODELS)
    req = Request(text="", label=None)
    for name, gen in generators.items():
        for g in (gen, FixedSteps(gen, 1)):
            assert isinstance(g, Generator), name
            for m in MEMBERS:
                assert hasattr(g, m), (name, type(g).__name__, m)
            assert g.name == name and isinstance(g.tasks, frozenset)
            assert all(isinstance(lab, str) for lab in g.labels)
            assert isinstance(g.text_encoder_loaded, bool)
            assert isinstance(g.condition_text(req), str)
            for lab in list(g.labels)[:2]:
                assert isinstance(g.has_correctness(lab), bool)
            if "text" not in g.tasks:                       # nothing to load, nothing read
                assert g.text_encoder_loaded and g.condition_text(Request(text="squat")) == ""
            else:
                assert g.condition_text(Request(text="squat")) == "squat"
                assert hasattr(g, "encoder")
        assert FixedSteps(gen, 1).labels == gen.labels


def test_fixed_steps_forwards_the_encoder_state(generators, fake_text):
    gen = generators["diffusion"]
    fixed = FixedSteps(gen, 1)
    gen.encoder.encode(["a squat"])                         # loads it
    assert gen.text_encoder_loaded and fixed.text_encoder_loaded
