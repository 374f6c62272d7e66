"""Text encoders (motionviz.generators.text_encoders): MiniLM offline, OpenCLIP from a local folder / random init."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from motionviz.core.errors import CheckpointError, UserError
from motionviz.generators.text_encoders import MiniLMEncoder, OpenCLIPEncoder, TextEncoder, check_encoder, get_text_encoder

# a tiny open_clip architecture (random weights), small enough to build in well under a second
TINY_CLIP = {"embed_dim": 16,
             "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A local open_clip folder as open_clip writes it: open_clip_config.json + safetensors weights."""
    from open_clip.model import CLIP
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("clip") / "tiny-clip"
    d.mkdir()
    (d / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CLIP}))
    torch.manual_seed(0)
    model = CLIP(**TINY_CLIP)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(d / "open_clip_model.safetensors"))
    return d


@pytest.mark.slow
def test_minilm_offline_384d(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = get_text_encoder("minilm")
    assert isinstance(enc, MiniLMEncoder) and isinstance(enc, TextEncoder)
    assert enc.name == "minilm" and enc.dim == 384
    texts = ["slowly raise both arms sideways to shoulder height", "lift both arms out to the side",
             "a deep squat with the hips going low"]
    e = enc.encode(texts)
    assert e.shape == (3, 384) and e.dtype == torch.float32
    assert torch.allclose(e.norm(dim=-1), torch.ones(3), atol=1e-4)
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 2] + 0.2, "a paraphrase must be closer than an unrelated exercise"
    # cached: same text -> identical vector; one instance per spec
    assert torch.equal(enc.encode([texts[1]])[0], e[1])
    assert get_text_encoder("minilm") is enc
    assert enc.encode([]).shape == (0, 384)


@pytest.mark.slow
def test_openclip_local_folder(tiny_clip_dir):
    import open_clip

    enc = OpenCLIPEncoder(str(tiny_clip_dir))
    assert enc.dim == 16 and enc.name == "openclip:tiny-clip@local"
    e = enc.encode(["raise both arms", "squat"])
    assert e.shape == (2, 16) and torch.allclose(e.norm(dim=-1), torch.ones(2), atol=1e-5)
    # the weights really come from the folder: same embedding as the saved model computes directly
    from open_clip.model import CLIP
    from safetensors.torch import load_file

    ref = CLIP(**TINY_CLIP)
    ref.load_state_dict(load_file(str(tiny_clip_dir / "open_clip_model.safetensors")))
    with torch.no_grad():
        r = torch.nn.functional.normalize(ref.eval().encode_text(open_clip.get_tokenizer("ViT-B-32")(["squat"])), dim=-1)
    assert torch.allclose(r[0], e[1], atol=1e-5)
    # the same through the spec string (and the local-dir: schema)
    assert get_text_encoder(f"openclip:{tiny_clip_dir}").name == enc.name
    assert get_text_encoder(f"openclip:local-dir:{tiny_clip_dir}").dim == 16


def test_openclip_refuses_pickles_and_bad_specs(tmp_path, tiny_clip_dir):
    d = tmp_path / "pickled"
    d.mkdir()
    (d / "open_clip_config.json").write_text((tiny_clip_dir / "open_clip_config.json").read_text())
    (d / "open_clip_pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(UserError, match="safetensors"):
        OpenCLIPEncoder(str(d))
    with pytest.raises(UserError, match="open_clip_config.json"):
        OpenCLIPEncoder(f"local-dir:{tmp_path / 'nowhere'}")
    with pytest.raises(UserError, match=".safetensors"):
        OpenCLIPEncoder("ViT-B-32", str(tmp_path / "weights.bin"))
    with pytest.raises(UserError, match="not found"):
        OpenCLIPEncoder("ViT-B-32", str(tmp_path / "missing.safetensors"))
    with pytest.raises(UserError, match="unknown open_clip model"):
        OpenCLIPEncoder("No-Such-Model")
    with pytest.raises(UserError, match="unknown text encoder"):
        get_text_encoder("word2vec")


@pytest.mark.slow
def test_openclip_random_vit_b32():
    """A named open_clip model, randomly initialised (no weights fetched)."""
    enc = get_text_encoder("openclip:ViT-B-32@none")
    assert enc.name == "openclip:ViT-B-32@none" and enc.dim == 512
    e = enc.encode(["stand on one leg"])
    assert e.shape == (1, 512) and torch.isfinite(e).all()


def test_check_encoder_mismatch(tiny_clip_dir):
    enc = OpenCLIPEncoder(str(tiny_clip_dir))
    check_encoder(enc, enc.name, enc.dim)  # matches: no error
    with pytest.raises(CheckpointError, match="minilm"):
        check_encoder(enc, "minilm", 384)
    with pytest.raises(CheckpointError):
        check_encoder(enc, enc.name, 32)
