"""The Gradio user interface: one module per tab (``<x>_tab.py`` with ``build(ctx)``) plus
:mod:`motionviz.ui.common`.  The app itself (layout + wiring) is ``app.py`` at the repository root."""
