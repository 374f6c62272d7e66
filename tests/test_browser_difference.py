"""Real-browser test of the "Correct vs incorrect" tab: start the app (``python app.py``) with the shipped
checkpoints, drive it with Playwright and the system Chromium, and run both flows: a generated correct
vs incorrect pair, and a real held-out recording vs a generated correct reference.  Each must render the
time-aligned 3D player (WebGL, a frame slider), the joint-angle curves with the shaded normal range and
the plain-language summary, without an error toast or a page error.

Skipped (with the reason) when Chromium, Playwright, the data folder or the diffusion checkpoint is
missing.  ``MOTIONVIZ_SCREENSHOT_DIFF=path.png`` saves a screenshot of the tab.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from test_browser import CHROMIUM, CHROMIUM_FLAGS, START_TIMEOUT_S, _data_available, _free_port

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason=f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    if os.environ.get("MOTIONVIZ_TEST_URL"):      # test an app that is already running
        yield os.environ["MOTIONVIZ_TEST_URL"]
        return
    if not _data_available():
        pytest.skip("UI-PRMD data not found (set MOTIONVIZ_DATA)")
    from motionviz.checkpoint import default_checkpoint_dir

    ckpt = Path(os.environ.get("MOTIONVIZ_CHECKPOINTS") or default_checkpoint_dir())
    if not (ckpt / "diffusion.safetensors").is_file():
        pytest.skip(f"no diffusion checkpoint in {ckpt}")
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
            viewport={"width": 1500, "height": 1100})
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.set_default_timeout(60_000)
        pg.goto(app_url, wait_until="domcontentloaded")
        pg.page_errors = errors  # type: ignore[attr-defined]
        yield pg
        context.close()


PLAYER = "#diff-plot .js-plotly-plot"
CURVES = "#diff-curves .js-plotly-plot"


def _plot_state(pg, sel: str) -> dict:
    return pg.evaluate(f"""() => {{
        const gd = document.querySelector('{sel}');
        if (!gd || !gd.data) return null;
        const canvas = gd.querySelector('canvas');
        return {{n: gd.data.length, types: gd.data.map(t => t.type),
                 sliders: (gd.layout.sliders || []).length,
                 steps: gd.layout.sliders && gd.layout.sliders[0] ? gd.layout.sliders[0].steps.length : 0,
                 shapes: (gd.layout.shapes || []).length, canvas: !!canvas,
                 sizes: gd.data[3] && gd.data[3].marker ? gd.data[3].marker.size : null}};
    }}""")


def _no_error_toast(pg) -> None:
    toasts = pg.locator(".toast-body.error, .toast-wrap .error")
    assert not toasts.count(), [toasts.nth(i).inner_text() for i in range(toasts.count())]


def _run_and_wait(pg, expect: str) -> str:
    pg.evaluate("() => { const s = document.querySelector('#diff-summary'); window.__mvOld = s ? s.innerText : ''; }")
    pg.locator("#diff-run").click()
    pg.wait_for_function(
        "(want) => { const s = document.querySelector('#diff-summary'); "
        "return s && s.innerText !== window.__mvOld && s.innerText.includes(want); }",
        arg=expect, timeout=240_000)
    return pg.locator("#diff-summary").inner_text()


def test_generated_pair_and_real_recording(page):
    pg = page
    tab = pg.locator("button[role=tab]", has_text="Correct vs incorrect").first
    tab.wait_for(timeout=120_000)
    tab.click()
    assert "deliberately performing a wrong version" in pg.locator("#diff-meaning").inner_text()

    # 1. a generated correct vs incorrect pair
    text = _run_and_wait(pg, "Joints that differ most")
    assert "Generated incorrect" in text and "real correct executions" in text
    pg.wait_for_function(f"() => {{ const gd = document.querySelector('{PLAYER}'); return gd && gd.data && gd.data.length >= 4; }}")
    st = _plot_state(pg, PLAYER)
    assert st["types"][0] == "scatter3d" and st["sliders"] == 1 and st["steps"] >= 2 and st["canvas"], st
    assert max(st["sizes"]) > min(st["sizes"]), st                       # highlighted joints
    cur = _plot_state(pg, CURVES)
    assert cur and cur["types"][0] == "scatter" and cur["n"] >= 2 and cur["shapes"] >= 1, cur
    _no_error_toast(pg)

    # 2. a real held-out recording vs a generated correct reference
    pg.locator("#diff-mode label", has_text="Real recording").first.click()
    pg.locator("#diff-recording").wait_for(state="visible")
    text = _run_and_wait(pg, "Real incorrect recording")
    assert "Joints that differ most" in text
    st = _plot_state(pg, PLAYER)
    assert st["types"][0] == "scatter3d" and st["sliders"] == 1, st
    _no_error_toast(pg)
    shot = os.environ.get("MOTIONVIZ_SCREENSHOT_DIFF")
    if shot:
        pg.screenshot(path=shot, full_page=True)
    assert not pg.page_errors, pg.page_errors  # type: ignore[attr-defined]
