"""motionviz: the Gradio app (a Hugging Face Space).  Layout and wiring only; each tab lives in
``motionviz/ui/<x>_tab.py`` with ``build(ctx: motionviz.ui.common.AppContext) -> None``.

Run: ``python app.py`` (port from ``$PORT`` / ``$GRADIO_SERVER_PORT``, default 7860).
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

import gradio as gr

from motionviz import __version__
from motionviz.core.checkpoint import default_checkpoint_dir
from motionviz.core.errors import UserError
from motionviz.generators.registry import available_models
from motionviz.ui.common import MAX_SESSIONS, AppContext, session_state
from motionviz.ui.player import PHONE_JS
from motionviz.ui.sessions import free_sessions_when_gone

log = logging.getLogger("motionviz.app")

#: The embedded UI-PRMD sample (public domain, ODC PDDL): the data folder when no other is found.
SAMPLE_ROOT = Path(__file__).resolve().parent / "assets" / "sample"
SAMPLE_NOTE = ("showing the **embedded UI-PRMD sample** (one correct and one incorrect repetition of each of its 10 "
               "exercises, ODC PDDL); for all datasets set `MOTIONVIZ_DATA` to the full data folder (README → Data)")

#: Any generator checkpoint will do (the tab compares whatever models exist).
ANY_GENERATOR = "*"

#: (tab title, module with build(ctx), checkpoint the tab needs: a model name, ANY_GENERATOR or None).
TABS: list[tuple[str, str, str | None]] = [
    ("Data", "motionviz.ui.data_tab", None),
    ("Text → motion", "motionviz.ui.text_tab", "diffusion"),
    ("Action → motion (VAE)", "motionviz.ui.vae_tab", "vae"),
    ("Inpaint / clean up", "motionviz.ui.inpaint_tab", "aegan"),
    ("Compare", "motionviz.ui.compare_tab", ANY_GENERATOR),
    ("Correct vs incorrect", "motionviz.ui.difference_tab", "diffusion"),
    ("Body mesh & video", "motionviz.ui.mesh_tab", None),
]

INTRO = """\
# motionviz · motion generation for physical rehabilitation
Skeleton-based human motion: browse rehabilitation datasets (UI-PRMD, KIMORE, IntelliRehabDS, KERAAL,
Bandai-Namco, HumanML3D), generate exercises from text or action labels, clean up and complete recordings,
and export them (NPY, JSON, BVH, GIF, MP4, HTML). Everything runs on CPU. The 3D player plays every motion
shown (▶ Play, speed, loop, the slider scrubs); drag a view to rotate it, Front / Side / Top set the camera.
"""

CSS = """
.mv-plot { min-height: 520px; }
footer { visibility: hidden; }
/* phones: every tab reachable (the tabs that do not fit are in the tab bar's "More tabs" menu), and in a
   controls | player row (.mv-split) the player comes first, above the controls, which sit in an accordion
   (.mv-controls) that starts closed on phones (motionviz.ui.player.PHONE_JS) */
.tab-wrapper { height: auto !important; }
.tab-container { flex-wrap: wrap !important; height: auto !important; overflow: visible !important; }
.tab-container > button { visibility: visible !important; display: inline-flex !important; position: static !important; }
@media (max-width: 720px) {
  #mv-intro h1 { font-size: 1.25em !important; margin: 0 !important; }
  #mv-intro p, #mv-status { display: none !important; }
  .mv-split { flex-direction: column-reverse !important; }
  .mv-split > * { min-width: 0 !important; max-width: 100% !important; }
  .mv-split input { min-width: 0 !important; }
}
"""


def tab_id(module: str) -> str:
    """``motionviz.ui.inpaint_tab`` -> ``inpaint`` (the id to select a tab with ``gr.Tabs(selected=...)``)."""
    name = module.rsplit(".", 1)[-1]
    return name[:-4] if name.endswith("_tab") else name


def _tab_ready(module: str, needs: str | None, models: list[str]) -> tuple[object | None, str]:
    """(imported module or None, reason when it is hidden)."""
    if needs == ANY_GENERATOR and not models:
        return None, "needs a generator checkpoint"
    if needs not in (None, ANY_GENERATOR) and needs not in models:
        return None, f"needs a {needs} checkpoint"
    try:
        mod = importlib.import_module(module)
    except ImportError as e:  # the tab (or one of its dependencies) is not installed
        return None, f"cannot import {module} ({e})"
    if not callable(getattr(mod, "build", None)):
        return None, f"{module} has no build(ctx)"
    return mod, ""


def _no_dataset(root: Path | None) -> bool:
    """True when ``root`` is None or holds none of the datasets the Data tab knows."""
    if root is None:
        return True
    try:
        from motionviz.data.browse import available_datasets
        return not available_datasets(root)
    except ImportError:
        return False


def _status_markdown(ctx: AppContext, hidden: list[tuple[str, str]]) -> str:
    lines = []
    if ctx.data_sample:
        lines.append(f"**Data:** {SAMPLE_NOTE}. {ctx.data_message}")
    elif ctx.data_root is None:
        lines.append(f"**Data:** not found. {ctx.data_message}")
    else:
        lines.append(f"**Data:** `{ctx.data_root}`")
    lines.append("**Models:** " + (", ".join(ctx.models) if ctx.models else
                                   f"none found in `{ctx.checkpoint_dir}`"))
    missing = [f"{t} ({why})" for t, why in hidden if why.startswith("needs")]
    if missing:
        lines.append("**Not available without a checkpoint:** " + "; ".join(missing))
    lines.append(f"motionviz {__version__} · gradio {gr.__version__}")
    return "  \n".join(lines)


def build_app(checkpoint_dir: str | Path | None = None, data_root: str | Path | None = None,
              strict: bool = False) -> gr.Blocks:
    """Build the Blocks app.  Tabs whose module does not import or whose checkpoint is missing are
    left out, so the app runs with just the Data tab.  ``strict`` re-raises errors of a tab's
    ``build`` (tests); otherwise they are logged and the tab shows the error."""
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else default_checkpoint_dir()
    models = available_models(ckpt)
    try:
        from motionviz.data import data_root as find_data_root

        root: Path | None = find_data_root(data_root)
        data_message = ""
    except UserError as e:
        root, data_message = None, str(e)
    except ImportError as e:
        root, data_message = None, f"the data module is not available ({e})"
    sample = False
    if _no_dataset(root) and SAMPLE_ROOT.is_dir():
        why = data_message or f"no known dataset in `{root}`"
        root, sample, data_message = SAMPLE_ROOT.resolve(), True, f"(The data folder was not found: {why}.)"

    plan = []
    hidden: list[tuple[str, str]] = []
    for title, module, needs in TABS:
        mod, why = _tab_ready(module, needs, models)
        if mod is None:
            log.info("tab %r hidden: %s", title, why)
            hidden.append((title, why))
        else:
            plan.append((title, tab_id(module), mod))

    with gr.Blocks(title="motionviz", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        ctx = AppContext(checkpoint_dir=ckpt, data_root=root, data_message=data_message, data_sample=sample,
                         models=models,
                         motions=session_state([]), tab_ids=[tid for _, tid, _ in plan], demo=demo)
        gr.Markdown(INTRO, elem_id="mv-intro")
        gr.Markdown(_status_markdown(ctx, hidden), elem_id="mv-status")
        with gr.Tabs() as tabs:
            ctx.tabs = tabs
            for title, tid, mod in plan:
                with gr.Tab(title, id=tid, elem_id=f"tab-{tid}"):
                    try:
                        mod.build(ctx)
                    except Exception as e:  # noqa: BLE001 - one broken tab must not take the app down
                        if strict:
                            raise
                        log.exception("building tab %r failed", title)
                        gr.Markdown(f"This tab could not be built: `{e.__class__.__name__}: {e}`")
        # phones: the controls accordions beside the players start closed (the player comes first)
        demo.load(None, js=PHONE_JS, queue=False)
        # a session's memory (state values, Gradio's copy of the page) is freed when it goes, not when
        # 256 more sessions have come (motionviz.ui.sessions)
        demo.session_reaper = free_sessions_when_gone(demo)
    return demo


demo = build_app()

if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("MOTIONVIZ_LOG", "INFO"))
    port = int(os.environ.get("PORT") or os.environ.get("GRADIO_SERVER_PORT") or 7860)
    demo.queue(max_size=64, default_concurrency_limit=4).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME"),
        server_port=port,
        theme=gr.themes.Soft(),
        css=CSS,
        ssr_mode=os.environ.get("GRADIO_SSR_MODE", "false").lower() in ("1", "true", "yes"),
        show_error=True,
        state_session_capacity=MAX_SESSIONS,
    )
