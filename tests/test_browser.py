"""Real-browser test: start the app (``python app.py``) on a free port, drive it with Playwright and the
system Chromium (``/usr/bin/chromium``): the fixtures shared by the browser tests, and a bad upload in the
Data tab shows a one-line error.  The 3D player is tested in ``test_browser_player.py``.

Skipped (with the reason) only when Chromium, Playwright or the data folder is missing.
Set ``MOTIONVIZ_SCREENSHOT=path.png`` to save a screenshot of the Data tab (README's picture).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("MOTIONVIZ_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
START_TIMEOUT_S = 180.0   # two shared cores: importing torch + gradio can take a while

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data_available() -> bool:
    try:
        from motionviz.data import data_root
        return (data_root() / "ui-prmd").is_dir()
    except Exception:  # noqa: BLE001
        return False


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    if os.environ.get("MOTIONVIZ_TEST_URL"):      # test an app that is already running
        yield os.environ["MOTIONVIZ_TEST_URL"]
        return
    if not _data_available():
        pytest.skip("UI-PRMD data not found (set MOTIONVIZ_DATA)")
    ckpt = tmp_path_factory.mktemp("empty-checkpoints")
    port = _free_port()
    env = dict(os.environ, PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_ANALYTICS_ENABLED="False",
               MOTIONVIZ_CHECKPOINTS=str(ckpt), PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    log_path = tmp_path_factory.mktemp("app-log") / "app.log"
    log = open(log_path, "w")
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the app exited with status {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "config", timeout=2) as r:
                    if r.status == 200:
                        json.load(r)
                        break
            except OSError:
                pass
            if time.time() - t0 > START_TIMEOUT_S:
                pytest.fail(f"the app did not answer within {START_TIMEOUT_S:.0f} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        print(f"app started in {time.time() - t0:.1f} s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def page(app_url, tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.set_default_timeout(60_000)
        pg.goto(app_url, wait_until="domcontentloaded")
        pg.page_errors = errors  # type: ignore[attr-defined]
        yield pg
        context.close()


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
