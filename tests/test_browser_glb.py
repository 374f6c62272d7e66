"""Real-browser test (issue #15): a rigged GLB that motionviz exports is loaded in the app's viewer (the
three.js player of the Body mesh tab, which reads the file's nodes, skin and animation itself) and plays as
written: at two times its 17 joints and a sample of its skinned vertices are where our own forward
kinematics and linear-blend skinning put them, the body is drawn and moves.  Then the app's own flow: show
a body, download the sequence as a rigged .glb, play that download in the viewer.  Skipped (with the reason)
without Chromium, Playwright or the data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _browser import CELL_COUNTS_JS, needs_chromium, wait_new_payload_drawn
from test_browser import app_url, page  # noqa: F401 - fixtures (app started once per module)

pytestmark = needs_chromium

HOST = "#mv-mesh-plot [data-mvp-id]"
SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "sample"

# skin-coloured pixels (the body is #d9b38c, lit): warm, red above blue by a margin; greys and the floor are not
_BODY_JS = """(sel) => {
  """ + CELL_COUNTS_JS + """
  const host = document.querySelector(sel);
  const p = host && host.__mvp;
  if (!p || !p.grid) return null;
  const cells = mvpCellCounts(p, {body: (img, i) => img[i] - img[i + 2] > 40 && img[i] > img[i + 1] && img[i + 1] > img[i + 2]});
  const c = p.canvas, img = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0;
  for (let i = 0; i < img.length; i += 97) h = (h * 31 + img[i]) >>> 0;
  return {body: cells[0].body, hash: h, stats: window.motionvizPlayer.stats(), glb: !!p.payload.motions[0].glb};
}"""


def _joints(pg, t: float, step: int = 0) -> dict:
    return pg.evaluate("([sel, t, step]) => window.motionvizPlayer.glbJoints(document.querySelector(sel), t, step)",
                       [HOST, t, step])


def _picture(pg) -> dict:
    pg.wait_for_timeout(400)                            # the next animation frame draws the new time
    return pg.evaluate(_BODY_JS, HOST)


@pytest.fixture(scope="module")
def rigged(tmp_path_factory):
    """A rigged GLB of a real recording (UI-PRMD sample, 40 frames at 20 fps) and its rig."""
    from motionviz.core.skeleton import COMMON
    from motionviz.data import load_dataset
    from motionviz.mesh import animation as mesh_A
    from motionviz.mesh import rig

    m = load_dataset("ui-prmd", SAMPLE, limit=1)[0].retarget(COMMON).resample(20).normalise().crop(0, 40)
    anim = mesh_A.mesh_animation(m, "anny")
    path = rig.export_rigged(anim, tmp_path_factory.mktemp("glb") / "sample_rigged.glb")
    return path, rig.build_rig(anim)


def test_exported_rigged_glb_plays_in_the_viewer(page, rigged):  # noqa: F811 - the fixture
    from motionviz.mesh.rig import RIG_JOINTS

    pg = page
    path, r = rigged
    pg.get_by_role("tab", name="Body mesh & video").click()
    upload = pg.locator("#mv-glb-upload input[type=file]")
    wait_new_payload_drawn(pg, HOST, lambda: upload.set_input_files(str(path)))
    assert not pg.page_errors, pg.page_errors
    step = 97
    for k in (0, 23):
        got = _joints(pg, k / r.fps, step)
        assert got["names"] == list(RIG_JOINTS) and got["skinned"] == 1 and got["tracks"] == len(RIG_JOINTS) + 1
        assert got["keys"] == r.num_frames == 40 and got["duration"] == pytest.approx(39 / 20, abs=1e-5)
        assert got["vertices"] == len(r.vertices)
        world = r.world([k])[0][:, :3, 3]                               # our forward kinematics
        np.testing.assert_allclose(np.array(got["positions"]), world, atol=2e-4)
        skin = r.skin([k])[0][::step]                                   # our linear-blend skinning
        np.testing.assert_allclose(np.array(got["skin"]), skin, atol=2e-4)
    assert np.abs(r.world([23])[0][:, :3, 3] - r.world([0])[0][:, :3, 3]).max() > 0.05   # it does move
    first = (_joints(pg, 0.0), _picture(pg))[1]
    later = (_joints(pg, 23 / r.fps), _picture(pg))[1]
    assert first["glb"] and first["body"] > 300 and later["body"] > 300, (first, later)
    assert first["hash"] != later["hash"]                                # the picture follows the animation
    assert first["stats"]["webglContexts"] == 1 and not first["stats"]["lost"]
    # Play runs the file's animation through the player's clock
    pg.locator(f"{HOST} .mvp-play").click()
    pg.wait_for_function(f"() => Number(document.querySelector('{HOST}').dataset.mvpFrame) > 3", timeout=30_000)


def test_the_apps_own_rigged_download_plays_in_the_viewer(page):  # noqa: F811 - the fixture
    pg = page
    pg.get_by_role("tab", name="Body mesh & video").click()
    wait_new_payload_drawn(pg, HOST, lambda: pg.locator("#mv-mesh-show").click())
    assert pg.evaluate(f"() => !document.querySelector('{HOST}').__mvp.payload.motions.some((m) => m.glb)")
    pg.get_by_label("rigged glb (sequence)").check()
    pg.get_by_role("button", name="Download the sequence").click()
    pg.locator("a[href$='_rigged.glb'], a[download$='_rigged.glb']").first.wait_for(timeout=240_000)
    wait_new_payload_drawn(pg, HOST, lambda: pg.locator("#mv-glb-show").click())
    got = _joints(pg, 0.5)
    assert len(got["names"]) == 17 and got["skinned"] == 1 and got["keys"] >= 10
    assert np.isfinite(np.array(got["positions"])).all()
    assert _picture(pg)["body"] > 300
    assert not pg.page_errors, pg.page_errors
