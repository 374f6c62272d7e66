"""Real-browser test of the "Correct vs incorrect" tab: start the app (``python app.py``) with the shipped
checkpoints, drive it with Playwright and the system Chromium, and run both flows: a generated correct
vs incorrect pair, a real held-out recording vs a generated correct reference, and (when the VAE is shipped)
the VAE's pair.  Each must render the
time-aligned 3D player (checked by pixels: a body in every cell, gold dots on the joints that differ most;
one WebGL context), the joint-angle curves with the shaded normal range and the plain-language summary,
without an error toast or a page error; the view then downloads as a GIF drawn on the server.

Skipped (with the reason) when Chromium, Playwright, the data folder or the diffusion checkpoint is
missing.  ``MOTIONVIZ_SCREENSHOT_DIFF=path.png`` saves a screenshot of the tab.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _browser import CELL_COUNTS_JS, app_url_or_start, browser_page, needs_chromium

pytestmark = needs_chromium


def _shipped_checkpoints() -> Path:
    """The shipped checkpoint folder (``$MOTIONVIZ_CHECKPOINTS`` or the default); skips without the
    diffusion checkpoint."""
    from motionviz.core.checkpoint import default_checkpoint_dir

    ckpt = Path(os.environ.get("MOTIONVIZ_CHECKPOINTS") or default_checkpoint_dir())
    if not (ckpt / "diffusion.safetensors").is_file():
        pytest.skip(f"no diffusion checkpoint in {ckpt}")
    return ckpt


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    yield from app_url_or_start(tmp_path_factory, _shipped_checkpoints)


@pytest.fixture(scope="module")
def page(app_url, tmp_path_factory):
    with browser_page(app_url, tmp_path_factory, 1500, 1100) as pg:
        yield pg


HOST = "#diff-plot [data-mvp-id]"
CURVES = "#diff-curves .js-plotly-plot"

# The drawn player: per grid cell the pixels in a role colour (correct green, incorrect orange) and in the
# highlight gold; the payload's highlighted joints; one WebGL context on the page.
_PLAYER_JS = """() => {
  """ + CELL_COUNTS_JS + """
  const host = document.querySelector('#diff-plot [data-mvp-id]');
  const p = host && host.__mvp;
  if (!p || !p.grid || !p.payload || host.dataset.mvpDrawn !== host.dataset.mvpId) return null;
  const near = (img, i, rgb, tol) => Math.abs(img[i] - rgb[0]) < tol && Math.abs(img[i + 1] - rgb[1]) < tol
    && Math.abs(img[i + 2] - rgb[2]) < tol;
  const cells = mvpCellCounts(p, {body: (img, i) => mvpChroma(img, i) > 60,
                                  gold: (img, i) => near(img, i, [242, 183, 5], 45)});
  return {cells, layout: p.layout, roles: p.payload.motions.map((m) => m.role),
          titles: p.payload.motions.map((m) => m.title),
          highlight: p.payload.motions.map((m) => (m.highlight || []).length),
          legend: document.querySelector('#diff-plot .mvp-legend').innerText,
          stats: window.motionvizPlayer.stats()};
}"""


def _player_state(pg) -> dict:
    pg.wait_for_function(_PLAYER_JS, timeout=60_000)
    pg.wait_for_timeout(300)
    return pg.evaluate(_PLAYER_JS)


def _curves_state(pg) -> dict:
    return pg.evaluate(f"""() => {{
        const gd = document.querySelector('{CURVES}');
        if (!gd || !gd.data) return null;
        return {{n: gd.data.length, types: gd.data.map(t => t.type), fills: gd.data.filter(t => t.fill === 'tonexty').length}};
    }}""")


def _no_error_toast(pg) -> None:
    toasts = pg.locator(".toast-body.error, .toast-wrap .error")
    assert not toasts.count(), [toasts.nth(i).inner_text() for i in range(toasts.count())]


def _run_and_wait(pg, expect: str) -> str:
    pg.evaluate("() => { const s = document.querySelector('#diff-summary'); window.__mvOld = s ? s.innerText : ''; "
                "const h = document.querySelector('#diff-plot [data-mvp-id]'); window.__mvId = h ? h.dataset.mvpId : ''; }")
    pg.locator("#diff-run").click()
    pg.wait_for_function(
        "(want) => { const s = document.querySelector('#diff-summary'); "
        "const h = document.querySelector('#diff-plot [data-mvp-id]'); "
        "return s && s.innerText !== window.__mvOld && s.innerText.includes(want) "
        "&& h && h.dataset.mvpId && h.dataset.mvpId !== window.__mvId; }",
        arg=expect, timeout=240_000)
    return pg.locator("#diff-summary").inner_text()


def test_generated_pair_and_real_recording(page):
    pg = page
    tab = pg.locator("button[role=tab]", has_text="Correct vs incorrect").first
    tab.wait_for(timeout=120_000)
    tab.click()
    assert "deliberately performing a wrong version" in pg.locator("#diff-meaning").inner_text()

    # 1. a generated correct vs incorrect pair (few frames and steps: the test checks the drawing, not the model)
    pg.locator("#diff-frames input[type=number]").fill("40")
    pg.locator("#diff-frames input[type=number]").press("Enter")
    text = _run_and_wait(pg, "Joints that differ most")
    assert "Generated incorrect" in text and "real correct executions" in text
    assert "large gold dots" in text and "_" not in text.split("Joints that differ most")[1].split("\n")[0]
    st = _player_state(pg)
    assert st["layout"] == "overlay" and st["roles"] == ["correct", "incorrect"], st
    assert st["stats"]["webglContexts"] == 1 and not st["stats"]["lost"], st
    assert st["cells"][0]["body"] > 40 and st["cells"][0]["gold"] > 5, st      # both bodies, gold joints
    assert min(st["highlight"]) >= 1 and "joints that differ most" in st["legend"], st
    assert "correct execution" in st["legend"] and "incorrect execution" in st["legend"], st
    cur = _curves_state(pg)
    assert cur and cur["types"][0] == "scatter" and cur["n"] >= 2 and cur["fills"] >= 1, cur   # the normal band
    _no_error_toast(pg)

    # 2. a real held-out recording vs a generated correct reference, side by side
    pg.locator("#diff-view label", has_text="Side by side").first.click()
    pg.locator("#diff-mode label", has_text="Real recording").first.click()
    pg.locator("#diff-recording").wait_for(state="visible")
    text = _run_and_wait(pg, "Real incorrect recording")
    assert "Joints that differ most" in text and "Key angles" in text
    assert not pg.locator("#diff-frames").is_visible()           # a recording's reference takes its length
    st = _player_state(pg)
    assert st["layout"] == "grid" and len(st["cells"]) == 2, st
    assert all(c["body"] > 40 and c["gold"] > 5 for c in st["cells"]), st      # every cell: a body, gold joints
    assert "real incorrect recording" in st["titles"][1], st
    _no_error_toast(pg)

    # 3. the view as a GIF, drawn on the server as shown (side by side)
    pg.locator("#diff-plot-export").click()
    pg.wait_for_selector("#diff-plot-export-file a[href*='motionviz-grid.gif']", timeout=120_000)
    _no_error_toast(pg)

    # 4. the same pair made by the VAE (when its checkpoint is shipped beside the diffusion model's): no
    # sampling steps, the same view
    assert pg.locator("#diff-model").is_visible() == (_shipped_checkpoints() / "vae.safetensors").is_file()
    if pg.locator("#diff-model").is_visible():
        pg.locator("#diff-mode label", has_text="Generated").first.click()
        pg.locator("#diff-model label", has_text="VAE").first.click()
        pg.locator("#diff-steps").wait_for(state="hidden")
        text = _run_and_wait(pg, "Generated incorrect")
        assert "Joints that differ most" in text
        st = _player_state(pg)
        assert st["roles"] == ["correct", "incorrect"] and all(c["body"] > 40 for c in st["cells"]), st
        _no_error_toast(pg)
        pg.locator("#diff-model label", has_text="Diffusion").first.click()
        pg.locator("#diff-steps").wait_for(state="visible")
    shot = os.environ.get("MOTIONVIZ_SCREENSHOT_DIFF")
    if shot:
        pg.locator("#diff-plot").scroll_into_view_if_needed()
        pg.screenshot(path=shot)
    assert not pg.page_errors, pg.page_errors  # type: ignore[attr-defined]
