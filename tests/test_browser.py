"""Real-browser test: start the app (``python app.py``) on a free port, drive it with Playwright and the
system Chromium (``/usr/bin/chromium``): the fixtures shared by the browser tests, and a bad upload in the
Data tab shows a one-line error.  The 3D player is tested in ``test_browser_player.py``.

Skipped (with the reason) only when Chromium, Playwright or the data folder is missing.
Set ``MOTIONVIZ_SCREENSHOT=path.png`` to save a screenshot of the Data tab (README's picture).
"""

from __future__ import annotations

import pytest
from _browser import app_url_or_start, browser_page, needs_chromium

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    yield from app_url_or_start(tmp_path_factory, lambda: tmp_path_factory.mktemp("empty-checkpoints"))


@pytest.fixture(scope="module")
def page(app_url, tmp_path_factory):
    with browser_page(app_url, tmp_path_factory, 1400, 1000) as pg:
        yield pg


PLOT = "#data-plot .js-plotly-plot"


def _xs(pg) -> list:
    return pg.evaluate(f"""() => {{
        const gd = document.querySelector('{PLOT}');
        return gd && gd.data && gd.data.length ? Array.from(gd.data[0].x) : null;
    }}""")


def _remember_x(pg) -> None:
    """Store the current x coordinates in the page, serialised by the browser itself."""
    pg.evaluate(f"""() => {{ const gd = document.querySelector('{PLOT}');
        window.__mvOldX = gd && gd.data && gd.data.length ? JSON.stringify(Array.from(gd.data[0].x)) : null; }}""")


def _wait_x_changed(pg, timeout: int = 60_000) -> None:
    pg.wait_for_function(f"""() => {{ const gd = document.querySelector('{PLOT}');
        return gd && gd.data && gd.data.length && JSON.stringify(Array.from(gd.data[0].x)) !== window.__mvOldX; }}""",
                         timeout=timeout)


def _title(pg) -> str:
    return pg.evaluate(f"""() => {{
        const gd = document.querySelector('{PLOT}');
        const t = gd && gd.layout && gd.layout.title;
        return t ? (typeof t === 'string' ? t : (t.text || '')) : '';
    }}""")


def _choose(pg, elem_id: str, option_text: str) -> None:
    """Open a Gradio dropdown and click the option whose text contains ``option_text``."""
    box = pg.locator(f"#{elem_id} input").first
    box.click()
    opt = pg.locator("[role=listbox] [role=option]", has_text=option_text).first
    opt.wait_for(state="visible")
    opt.click()


def test_bad_upload_shows_error(page, tmp_path):
    pg = page
    bad = tmp_path / "broken.npy"
    bad.write_bytes(b"this is not a numpy file")
    acc = pg.locator("button:has-text('Upload your own file'), span:has-text('Upload your own file')").first
    acc.click()
    pg.locator("#data-upload input[type=file]").set_input_files(str(bad))
    toast = pg.locator(".toast-body", has_text="broken.npy").first
    toast.wait_for(timeout=60_000)
    assert "error" in toast.inner_text().lower() or "could not" in toast.inner_text().lower()
