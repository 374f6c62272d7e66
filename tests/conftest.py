"""Shared pytest fixtures and the test tiers.

The default run (``pytest``; ``addopts`` in ``pyproject.toml``) is the fast tier; ``pytest -m slow`` runs
the slow tier: tests marked ``@pytest.mark.slow`` (over about half a second here, servers, subprocesses,
torchrun, shipped checkpoints), every browser test (``test_browser*.py``) and every test that reads the real
data folder (the ``data_root`` fixture; a fresh machine preprocesses whole datasets on first use)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _tiny_models import install_fake_encoder, make_diffusion, make_diffusion_fast, make_vae

from motionviz.training import loop as training_loop


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name.startswith("test_browser"):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
        if "data_root" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real data folder (``$MOTIONVIZ_DATA`` or ``../shared/data``); tests that need it are skipped
    with the reason when it is absent."""
    from motionviz.core.errors import DataNotFound
    from motionviz.data import data_root as _data_root

    try:
        return _data_root()
    except DataNotFound as e:
        pytest.skip(f"real motion data not available: {e}")


@pytest.fixture()
def uploads(tmp_path, monkeypatch) -> Path:
    """A private Gradio upload folder (``$GRADIO_TEMP_DIR``) for one test.  The app reads only files in
    this folder (and its own assets), so a test that 'uploads' a file puts it here."""
    folder = tmp_path / "gradio-uploads"
    folder.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


@pytest.fixture()
def fake_text(monkeypatch):
    """MiniLM replaced by the hash-seeded :class:`_tiny_models.FakeEncoder` for one test (no model download
    or load); ``pytestmark = pytest.mark.usefixtures("fake_text")`` gives it to every test of a module."""
    return install_fake_encoder(monkeypatch)


@pytest.fixture()
def toy_trainer(monkeypatch):
    """The toy linear-regression trainer of ``tests/test_train.py`` registered as ``TRAINERS["toy"]``;
    returns :mod:`motionviz.training.loop`."""
    monkeypatch.setitem(training_loop.TRAINERS, "toy", "test_train:build_toy")
    return training_loop


def _tiny_dir(tmp_path_factory, name: str, *makers) -> Path:
    d = tmp_path_factory.mktemp(name)
    for make in makers:
        make(d)
    return d


@pytest.fixture(scope="module")
def tiny_diffusion_dir(tmp_path_factory) -> Path:
    """A checkpoint folder with a tiny random ``diffusion.safetensors`` (one per test module)."""
    return _tiny_dir(tmp_path_factory, "tiny-diffusion", make_diffusion)


@pytest.fixture(scope="module")
def tiny_diffusion_vae_dir(tmp_path_factory) -> Path:
    """A checkpoint folder with tiny random ``diffusion`` and ``vae`` checkpoints (one per test module)."""
    return _tiny_dir(tmp_path_factory, "tiny-diffusion-vae", make_diffusion, make_vae)


@pytest.fixture(scope="module")
def tiny_fast_dir(tmp_path_factory) -> Path:
    """A checkpoint folder with a tiny distilled ``diffusion-fast`` student and its teacher (one per module)."""
    return _tiny_dir(tmp_path_factory, "tiny-fast", make_diffusion_fast)
