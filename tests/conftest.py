"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


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
