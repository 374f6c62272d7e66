"""Helpers shared by the real-browser tests: start the app (``python app.py``) on a free local port and open
a Playwright page in the system Chromium (``/usr/bin/chromium``, or ``$MOTIONVIZ_CHROMIUM``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("MOTIONVIZ_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
START_TIMEOUT_S = 180.0   # two shared cores: importing torch + gradio can take a while

#: the browser tests' module mark: skipped, saying why, without Chromium
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
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


@contextmanager
def running_app(tmp_path_factory, **env: str) -> Iterator[tuple[str, Path]]:
    """Start ``python app.py`` on a free port with ``env`` (e.g. ``MOTIONVIZ_CHECKPOINTS``) added to the
    environment; yield its URL and log file once it answers ``/config``; stop it afterwards.  Fails the test,
    with the log's tail, when the app exits or does not answer within :data:`START_TIMEOUT_S`."""
    port = _free_port()
    env = dict(os.environ, PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_ANALYTICS_ENABLED="False",
               PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **env)
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
        yield url, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def app_url_or_start(tmp_path_factory, checkpoints: Callable[[], Path]) -> Iterator[str]:
    """The body of a module's ``app_url`` fixture (``yield from``): ``$MOTIONVIZ_TEST_URL`` (an app that is
    already running) when set; else skip without the UI-PRMD data, else start the app with the checkpoint
    folder ``checkpoints()`` (called once the data is found; it may skip) and yield its URL."""
    if os.environ.get("MOTIONVIZ_TEST_URL"):      # test an app that is already running
        yield os.environ["MOTIONVIZ_TEST_URL"]
        return
    if not _data_available():
        pytest.skip("UI-PRMD data not found (set MOTIONVIZ_DATA)")
    with running_app(tmp_path_factory, MOTIONVIZ_CHECKPOINTS=str(checkpoints())) as (url, _log):
        yield url


@contextmanager
def browser_page(app_url: str, tmp_path_factory, width: int, height: int):
    """A Playwright page (persistent Chromium profile, ``width`` x ``height`` viewport, 60 s default timeout)
    at ``app_url``; its page errors are collected in ``page.page_errors``.  Skips without Playwright."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": width, "height": height})
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.set_default_timeout(60_000)
        pg.goto(app_url, wait_until="domcontentloaded")
        pg.page_errors = errors  # type: ignore[attr-defined]
        yield pg
        context.close()


#: JavaScript defining ``mvpChroma(img, i)`` (max - min of the RGB bytes at ``i``: ~0 for greys) and
#: ``mvpCellCounts(p, tests)``: for the player ``p`` (a host's ``__mvp``) and ``tests`` (name ->
#: ``(img, i) => bool`` on the canvas's RGBA bytes), per grid cell how many pixels (every other one in x and
#: y) pass each test, e.g. ``[{body: 812, gold: 40}, ...]``.  Put it at the start of an evaluated function.
CELL_COUNTS_JS = """const mvpChroma = (img, i) =>
    Math.max(img[i], img[i + 1], img[i + 2]) - Math.min(img[i], img[i + 1], img[i + 2]);
  const mvpCellCounts = (p, tests) => {
    const c = p.canvas, g = p.grid, img = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const cells = [];
    for (let k = 0; k < g.n; k++) {
      const x0 = Math.round((k % g.cols) * g.cellW * g.dpr), y0 = Math.round(Math.floor(k / g.cols) * g.cellH * g.dpr);
      const w = Math.round(g.cellW * g.dpr), h = Math.round(g.cellH * g.dpr);
      const n = {};
      for (const key in tests) n[key] = 0;
      for (let y = y0; y < y0 + h; y += 2) for (let x = x0; x < x0 + w; x += 2) {
        const i = 4 * (y * c.width + x);
        for (const key in tests) if (tests[key](img, i)) n[key]++;
      }
      cells.push(n);
    }
    return cells;
  };"""


def wait_new_payload_drawn(pg, host: str, action: Callable[[], None], timeout: int = 240_000) -> float:
    """Run ``action`` (e.g. a click), wait until the player ``host`` has drawn a NEW payload, and return the
    seconds from just before the action to its first drawn frame, measured in the page.  The first-draw
    time is read in the same evaluation that sees the payload drawn: the player may be handed the same
    payload again right after (Gradio re-renders), which starts its clock anew."""
    old = pg.evaluate(f"() => (document.querySelector('{host}') || {{dataset: {{}}}}).dataset.mvpId || ''")
    t0 = pg.evaluate("() => performance.now()")
    action()
    # the player draws only while it is on screen, and the clicked button may have scrolled it away: bring
    # it back while waiting (as a user looking at the result would)
    handle = pg.wait_for_function(f"""(old) => {{ const h = document.querySelector('{host}');
        if (h && h.dataset.mvpDrawn !== h.dataset.mvpId) h.scrollIntoView({{block: 'nearest'}});
        return h && h.dataset.mvpId && h.dataset.mvpId !== old && h.dataset.mvpDrawn === h.dataset.mvpId
               && h.dataset.mvpDrawAt ? Number(h.dataset.mvpDrawAt) : false; }}""", arg=old, timeout=timeout)
    return (handle.json_value() - t0) / 1000.0
