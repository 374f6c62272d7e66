"""Plotly figure of an animated body mesh."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..core.errors import UserError
from ..core.motion import Motion
from ..viz import render as R
from . import SKIN_COLOR, Progress
from .animation import MeshAnimation, _as_common, mesh_animation


# ------------------------------------------------------------------------------------------------
# Plotly figure: skeleton + preview mesh moved by the same restyle slider
# ------------------------------------------------------------------------------------------------
def mesh_figure(motion: Motion, body: str = "auto", layout: str = "side", title: str | None = None,
                max_steps: int = 60, height: int = 520, progress: Progress | None = None,
                anim: MeshAnimation | None = None):
    """An animated figure of the body mesh (decimated preview) and the skeleton, both moved by one
    slider (restyle steps carrying the mesh's and the skeleton's x/y/z, at most ``max_steps`` steps).
    ``layout``: "side" (two scenes side by side, same scale) or "overlay" (one scene, mesh translucent)."""
    if layout not in ("side", "overlay"):
        raise UserError(f"layout must be 'side' or 'overlay', got {layout!r}")
    motion = _as_common(motion)
    anim = anim or mesh_animation(motion, body=body, progress=progress)
    frames = R._frame_indices(motion.num_frames, max_steps)
    V = anim.vertices(preview=True, frames=frames)                          # (n, Vp, 3)
    Vs = R._scene_xyz(V.astype(np.float64))
    faces = anim.faces(preview=True)
    floor = R._floor_height([motion])
    lo, hi = R._bounds([motion], floor)
    pts = Vs.reshape(-1, 3)
    lo, hi = np.minimum(lo, pts.min(0)), np.maximum(hi, pts.max(0))
    scene = R._scene_layout(lo, hi, True)
    if title is None:
        title = motion.labels.text or motion.labels.label or None
    name = motion.labels.label or "motion"
    mesh_scene = "scene2" if layout == "side" else "scene"
    if layout == "side":
        fig = make_subplots(rows=1, cols=2, specs=[[{"type": "scene"}, {"type": "scene"}]],
                            subplot_titles=("skeleton", f"body ({anim.body.name})"), horizontal_spacing=0.01)
        fig.update_layout(**R._base_layout(title, height))
    else:
        fig = go.Figure(layout=R._base_layout(title, height))
    skel = R._Animated(motion, None, name)
    for tr in skel.traces(0):
        fig.add_trace(tr)

    def mesh_xyz(k: int) -> dict[str, list]:
        return {"x": R._as_list(Vs[k, :, 0]), "y": R._as_list(Vs[k, :, 1]), "z": R._as_list(Vs[k, :, 2])}

    fig.add_trace(go.Mesh3d(
        **mesh_xyz(0), i=faces[:, 0].tolist(), j=faces[:, 1].tolist(), k=faces[:, 2].tolist(),
        color=SKIN_COLOR, opacity=1.0 if layout == "side" else 0.45, flatshading=False, name=f"{anim.body.name} body",
        lighting=dict(ambient=0.45, diffuse=0.8, specular=0.15, roughness=0.7, fresnel=0.1),
        lightposition=dict(x=1000, y=-2000, z=3000), hoverinfo="skip", showscale=False, scene=mesh_scene))
    fig.add_trace(R._floor_trace(scene, floor, scene="scene"))
    if layout == "side":
        fig.add_trace(R._floor_trace(scene, floor, scene="scene2"))
        fig.layout.scene2.update(scene)
    fig.layout.scene.update(scene)
    if motion.num_frames > 1:
        steps = []
        for k, t in enumerate(frames):
            bc, jc = skel.coords(int(t))
            mc = mesh_xyz(k)
            steps.append(dict(method="restyle", label=str(int(t)), value=str(int(t)),
                              args=[{"x": [bc["x"], jc["x"], mc["x"]], "y": [bc["y"], jc["y"], mc["y"]],
                                     "z": [bc["z"], jc["z"], mc["z"]]}, [0, 1, 2]]))
        # assigning a long slider through plotly's validators deep-copies every step (seconds);
        # the steps are built here in plotly's own schema, so skip that once
        fig.layout._validate = False
        try:
            fig.layout.sliders = [R._slider(steps, motion.num_frames, motion.fps)]
        finally:
            fig.layout._validate = True
    return fig
