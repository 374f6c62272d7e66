"""Plotly figures of skeleton motions.  These functions build figures; they never write files
(exports live in :mod:`motionviz.export`).

How the 3D figures animate: ``gr.Plot`` hands ``data`` and ``layout`` to ``Plotly.react`` and drops
``frames``, so a Play button built from frames does nothing there.  The figures here are animated by
``layout.sliders`` whose steps use ``method="restyle"`` and carry each shown frame's coordinates for
every moving trace (rounded to millimetres, at most ``max_steps`` steps, frames subsampled evenly),
which works wherever plotly.js runs.  :func:`standalone_html` additionally builds real animation
frames and a Play/Pause button, for the downloadable HTML file.

Coordinates: motionviz data are Y-up, facing +Z, left = +X.  Plotly's 3D scene is Z-up, so a point
(x, y, z) is drawn at (x, -z, y): height goes up the scene's z axis and the subject faces the viewer
of the default camera.  (Drawing (x, z, y) would be a reflection and show every body mirrored, left
limbs on the right; (x, -z, y) is a proper rotation.)  The scene's "depth" axis therefore reads -z.
Axis ranges are fixed over the whole sequence with equal scale on all three axes, so the body does not
"breathe" while it moves; the floor grid is drawn at y = 0.
"""

from __future__ import annotations

import html as _html
import json
from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from ..core.motion import Motion

__all__ = [
    "motion_figure",
    "overlay_figure",
    "grid_figure",
    "strip_figure",
    "joint_error_figure",
    "metric_bar_figure",
    "error_bar_figure",
    "standalone_html",
    "side_colors",
    "PALETTE",
]

LEFT_COLOR = "#d1495b"     # subject's left side
RIGHT_COLOR = "#2e86ab"    # subject's right side
CENTRE_COLOR = "#3d3d3d"
# one colour per motion in overlays / grids / strips
PALETTE = ("#2e86ab", "#e07a1f", "#3b9b4a", "#8e5bb5", "#c23b50", "#6b6b6b", "#1aa3a3", "#b5a21f")
UIREVISION = "motionviz"
_FLOOR_COLOR = "rgba(90,90,90,0.45)"


# ------------------------------------------------------------------------------------------------
# colours
# ------------------------------------------------------------------------------------------------
def _rgb(color: str) -> tuple[int, int, int] | None:
    c = color.strip()
    if c.startswith("#") and len(c) in (4, 7):
        h = c[1:]
        if len(h) == 3:
            h = "".join(ch * 2 for ch in h)
        try:
            return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
        except ValueError:
            return None
    if c.startswith("rgb"):
        try:
            vals = c[c.index("(") + 1:c.index(")")].split(",")
            return int(float(vals[0])), int(float(vals[1])), int(float(vals[2]))
        except (ValueError, IndexError):
            return None
    return None


def _mix(color: str, target: tuple[int, int, int], amount: float) -> str:
    rgb = _rgb(color)
    if rgb is None:
        return color
    r, g, b = (int(round(c + (t - c) * amount)) for c, t in zip(rgb, target))
    return f"#{r:02x}{g:02x}{b:02x}"


def side_colors(color: str | None = None) -> tuple[str, str, str]:
    """(left, centre, right) colours: the default red/grey/blue, or shades of one ``color``
    (left darker, right lighter) so several motions stay distinguishable in one scene."""
    if color is None:
        return LEFT_COLOR, CENTRE_COLOR, RIGHT_COLOR
    return _mix(color, (0, 0, 0), 0.35), color, _mix(color, (255, 255, 255), 0.45)


def _joint_sides(motion: Motion) -> np.ndarray:
    """(J,) 0 = left, 1 = centre, 2 = right."""
    side = np.ones(len(motion.skeleton), dtype=int)
    for left, right in motion.skeleton.lr_pairs:
        side[left], side[right] = 0, 2
    return side


# ------------------------------------------------------------------------------------------------
# geometry helpers
# ------------------------------------------------------------------------------------------------
def _scene_xyz(joints: np.ndarray) -> np.ndarray:
    """(..., 3) motionviz (x, y, z) -> scene (x, -z, y)."""
    return np.stack([joints[..., 0], -joints[..., 2], joints[..., 1]], axis=-1)


def _bone_polyline(motion: Motion) -> np.ndarray:
    """(T, 3B, 3) scene coordinates of the bones as (parent, child, NaN-separator) triples."""
    bones = motion.skeleton.bones
    P = _scene_xyz(motion.joints.astype(np.float64))                 # (T, J, 3)
    if not bones:
        return np.zeros((P.shape[0], 0, 3))
    p = [b[0] for b in bones]
    c = [b[1] for b in bones]
    seg = np.stack([P[:, p], P[:, c], np.full_like(P[:, p], np.nan)], axis=2)   # (T, B, 3, 3)
    return seg.reshape(P.shape[0], -1, 3)


def _as_list(a: np.ndarray) -> list:
    """Rounded to mm; NaN -> None (plotly leaves a gap)."""
    r = np.round(a.astype(np.float64), 3)
    out = r.astype(object)
    out[np.isnan(r)] = None
    return out.tolist()


def _frame_indices(T: int, max_steps: int) -> np.ndarray:
    n = max(1, min(T, int(max_steps)))
    return np.unique(np.round(np.linspace(0, T - 1, n)).astype(int))


def _floor_height(motions: Sequence[Motion]) -> float:
    """The floor: y = 0, unless the data clearly live below it (raw camera coordinates), then the
    typical lowest point."""
    lows = []
    for m in motions:
        y = m.joints[..., 1]
        if np.isfinite(y).any():
            lows.append(np.nanpercentile(np.nanmin(np.where(np.isfinite(y), y, np.inf), axis=1), 2))
    low = min(lows) if lows else 0.0
    return 0.0 if (not np.isfinite(low) or low > -0.05) else float(low)


def _bounds(motions: Sequence[Motion], floor: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Scene-coordinate (lo, hi) over all frames of all motions, floor included."""
    pts = [_scene_xyz(m.joints.astype(np.float64)).reshape(-1, 3) for m in motions]
    allp = np.concatenate(pts)
    allp = allp[np.isfinite(allp).all(axis=1)]
    if allp.size == 0:
        lo, hi = np.array([-1.0, -1.0, 0.0]), np.array([1.0, 1.0, 2.0])
    else:
        lo, hi = allp.min(axis=0), allp.max(axis=0)
    if floor is not None:
        lo[2] = min(lo[2], floor)
        hi[2] = max(hi[2], floor)
    return lo, hi


def _scene_layout(lo: np.ndarray, hi: np.ndarray, show_floor: bool, min_extent: float = 1.0,
                  distance: float = 1.0) -> dict:
    """Fixed axis ranges with one scale for all axes (manual aspect ratio proportional to the ranges)."""
    centre = (lo + hi) / 2
    ext = np.maximum(hi - lo, min_extent) * 1.12
    ext[2] = max(ext[2], 1.0)
    rng = np.stack([centre - ext / 2, centre + ext / 2], axis=1)
    big = float(ext.max())
    aspect = ext / big
    axis = dict(showbackground=False, gridcolor="rgba(0,0,0,0.08)", zeroline=False, showspikes=False,
                tickfont=dict(size=9), title=dict(font=dict(size=11)))
    # front three-quarter view of a subject facing +Z (= scene -y), slightly from above
    eye = np.array([0.8, -1.2, 0.35]) * distance
    return dict(
        xaxis=dict(axis, range=[float(rng[0, 0]), float(rng[0, 1])], title=dict(text="x (m)", font=dict(size=11))),
        yaxis=dict(axis, range=[float(rng[1, 0]), float(rng[1, 1])], title=dict(text="-z (m)", font=dict(size=11))),
        zaxis=dict(axis, range=[float(rng[2, 0]), float(rng[2, 1])], title=dict(text="y (m)", font=dict(size=11))),
        aspectmode="manual",
        aspectratio=dict(x=float(aspect[0]), y=float(aspect[1]), z=float(aspect[2])),
        camera=dict(eye=dict(x=float(eye[0]), y=float(eye[1]), z=float(eye[2])),
                    up=dict(x=0, y=0, z=1), center=dict(x=0, y=0, z=-0.05)),
        dragmode="turntable",
        uirevision=UIREVISION,
    )


def _floor_trace(scene_layout: dict, height: float, scene: str = "scene") -> go.Scatter3d:
    """A grid of lines on the floor plane (scene z = height) over the scene's x/y ranges."""
    xr, yr = scene_layout["xaxis"]["range"], scene_layout["yaxis"]["range"]
    span = max(xr[1] - xr[0], yr[1] - yr[0])
    step = 0.25 if span <= 3 else 0.5 if span <= 8 else 1.0
    step = max(step, float(np.ceil(span / 40)))    # at most ~40 lines a side, whatever the span
    xs, ys, zs = [], [], []
    for x in np.arange(np.ceil(xr[0] / step) * step, xr[1] + 1e-9, step):
        xs += [round(float(x), 3), round(float(x), 3), None]
        ys += [yr[0], yr[1], None]
        zs += [height, height, None]
    for y in np.arange(np.ceil(yr[0] / step) * step, yr[1] + 1e-9, step):
        xs += [xr[0], xr[1], None]
        ys += [round(float(y), 3), round(float(y), 3), None]
        zs += [height, height, None]
    return go.Scatter3d(x=xs, y=ys, z=zs, mode="lines", line=dict(color=_FLOOR_COLOR, width=1),
                        hoverinfo="skip", showlegend=False, name="floor", scene=scene)


class _Animated:
    """The two moving traces of one motion (bones, joints) and their per-frame coordinates."""

    def __init__(self, motion: Motion, color: str | None, name: str, scene: str = "scene",
                 showlegend: bool = False, opacity: float = 1.0):
        self.motion = motion
        self.bones = _bone_polyline(motion)                              # (T, 3B, 3)
        self.joints = _scene_xyz(motion.joints.astype(np.float64))      # (T, J, 3)
        left, centre, right = side_colors(color)
        sides = _joint_sides(motion)
        child_side = [int(sides[c]) for _, c in motion.skeleton.bones]
        vert = np.repeat(np.array(child_side, dtype=float) / 2.0, 3)   # one value per polyline vertex
        self.name = name
        self.scene = scene
        self.colorscale = [[0.0, left], [0.5, centre], [1.0, right]]
        self.vertex_values = vert.tolist()
        self.joint_colors = [(left, centre, right)[s] for s in sides]
        self.showlegend = showlegend
        self.opacity = opacity

    @property
    def num_frames(self) -> int:
        return self.motion.num_frames

    def coords(self, t: int) -> tuple[dict[str, list], dict[str, list]]:
        t = min(t, self.num_frames - 1)
        b, j = self.bones[t], self.joints[t]
        return ({"x": _as_list(b[:, 0]), "y": _as_list(b[:, 1]), "z": _as_list(b[:, 2])},
                {"x": _as_list(j[:, 0]), "y": _as_list(j[:, 1]), "z": _as_list(j[:, 2])})

    def traces(self, t: int) -> list[go.Scatter3d]:
        bc, jc = self.coords(t)
        names = list(self.motion.skeleton.joints)
        bones = go.Scatter3d(
            **bc, mode="lines", name=self.name, legendgroup=self.name, showlegend=self.showlegend,
            line=dict(width=7, color=self.vertex_values, colorscale=self.colorscale, cmin=0.0, cmax=1.0),
            hoverinfo="skip", scene=self.scene, opacity=self.opacity)
        joints = go.Scatter3d(
            **jc, mode="markers", name=self.name, legendgroup=self.name, showlegend=False,
            marker=dict(size=3.5, color=self.joint_colors, line=dict(width=0)),
            hovertext=names, hovertemplate="%{hovertext}<br>height %{z:.2f} m<extra>" + _html.escape(self.name)
            + "</extra>", scene=self.scene, opacity=self.opacity)
        return [bones, joints]


def _slider(steps: list[dict], T: int, fps: float, prefix: str = "frame ") -> dict:
    return dict(
        active=0, steps=steps, x=0.06, len=0.9, y=0.02, yanchor="top", pad=dict(t=5, b=5),
        currentvalue=dict(visible=True, prefix=prefix, suffix=f" / {T - 1}  ({fps:g} fps)",
                          xanchor="left", font=dict(size=12, color="#333333")),
        ticklen=2, minorticklen=0, font=dict(size=8, color="rgba(0,0,0,0)"), transition=dict(duration=0),
    )


def _restyle_steps(anims: list[_Animated], trace_ids: list[int], fps: float, max_steps: int) -> list[dict]:
    """One slider step per shown frame: restyle x/y/z of every moving trace."""
    T = max(a.num_frames for a in anims)
    steps = []
    for t in _frame_indices(T, max_steps):
        xs, ys, zs = [], [], []
        for a in anims:
            for c in a.coords(int(t)):
                xs.append(c["x"])
                ys.append(c["y"])
                zs.append(c["z"])
        steps.append(dict(method="restyle", label=str(int(t)), value=str(int(t)),
                          args=[{"x": xs, "y": ys, "z": zs}, trace_ids]))
    return steps


def _base_layout(title: str | None, height: int) -> dict:
    return dict(
        title=dict(text=title, x=0.5, font=dict(size=14)) if title else None,
        margin=dict(l=0, r=0, t=36 if title else 8, b=40),
        height=height, uirevision=UIREVISION, paper_bgcolor="white",
        legend=dict(orientation="h", x=0.5, xanchor="center", y=1.0, yanchor="bottom"),
    )


def _check_motion(m: Any) -> Motion:
    if not isinstance(m, Motion):
        raise TypeError(f"expected a Motion, got {type(m).__name__}")
    if m.joints.shape[-1] != 3:
        raise ValueError("3D figures need 3D joint positions")
    return m


def _build_scene_figure(groups: list[list[_Animated]], scenes: list[dict], fps: float, max_steps: int,
                        floors: list[float | None], fig: go.Figure) -> go.Figure:
    """Add traces (moving first, floors last), the restyle slider and the scene layouts."""
    anims = [a for g in groups for a in g]
    for a in anims:
        for tr in a.traces(0):
            fig.add_trace(tr)
    moving = list(range(2 * len(anims)))
    for k, (sc, fl) in enumerate(zip(scenes, floors)):
        if fl is not None:
            fig.add_trace(_floor_trace(sc, fl, scene="scene" if k == 0 else f"scene{k + 1}"))
    for k, sc in enumerate(scenes):
        fig.layout["scene" if k == 0 else f"scene{k + 1}"].update(sc)
    T = max(a.num_frames for a in anims)
    if T > 1:
        fig.layout.sliders = [_slider(_restyle_steps(anims, moving, fps, max_steps), T, fps)]
    return fig


# ------------------------------------------------------------------------------------------------
# public 3D figures
# ------------------------------------------------------------------------------------------------
def motion_figure(motion: Motion, title: str | None = None, color: str | None = None, max_steps: int = 150,
                  show_floor: bool = True, height: int = 520) -> go.Figure:
    """One animated skeleton: a bone line trace (left/right coloured), a joint marker trace (hover =
    joint names), a floor grid at y = 0 and a slider of at most ``max_steps`` restyle steps."""
    motion = _check_motion(motion)
    if title is None:
        title = motion.labels.text or motion.labels.label or None
    floor = _floor_height([motion]) if show_floor else None
    lo, hi = _bounds([motion], floor)
    scene = _scene_layout(lo, hi, show_floor)
    fig = go.Figure(layout=_base_layout(title, height))
    anim = _Animated(motion, color, motion.labels.label or "motion")
    return _build_scene_figure([[anim]], [scene], motion.fps, max_steps, [floor], fig)


def overlay_figure(a: Motion, b: Motion, names: tuple[str, str] = ("input", "output"),
                   title: str | None = None, colors: tuple[str, str] | None = None, max_steps: int = 150,
                   show_floor: bool = True, height: int = 520) -> go.Figure:
    """Two motions in one scene (one colour each, legend entries), moved by the same slider.  A motion
    shorter than the other holds its last frame."""
    a, b = _check_motion(a), _check_motion(b)
    colors = colors or (PALETTE[0], PALETTE[1])
    floor = _floor_height([a, b]) if show_floor else None
    lo, hi = _bounds([a, b], floor)
    scene = _scene_layout(lo, hi, show_floor)
    fig = go.Figure(layout=_base_layout(title, height))
    anims = [_Animated(a, colors[0], names[0], showlegend=True),
             _Animated(b, colors[1], names[1], showlegend=True, opacity=0.9)]
    return _build_scene_figure([anims], [scene], max(a.fps, b.fps), max_steps, [floor], fig)


def grid_figure(motions: Sequence[Motion], titles: Sequence[str] | None = None, cols: int | None = None,
                max_steps: int = 100, show_floor: bool = True, color: str | None = None,
                cell_height: int = 360) -> go.Figure:
    """Several motions side by side, one 3D scene each (same scale in every scene), all moved by one
    slider.  Motions shorter than the longest hold their last frame."""
    motions = [_check_motion(m) for m in motions]
    if not motions:
        raise ValueError("grid_figure needs at least one motion")
    n = len(motions)
    cols = max(1, min(int(cols or min(n, 4)), n))
    rows = (n + cols - 1) // cols
    titles = list(titles) if titles is not None else [m.labels.label or f"motion {i + 1}"
                                                      for i, m in enumerate(motions)]
    titles += [""] * (n - len(titles))
    fig = make_subplots(rows=rows, cols=cols, specs=[[{"type": "scene"}] * cols for _ in range(rows)],
                        subplot_titles=titles[:n], horizontal_spacing=0.01, vertical_spacing=0.06)
    # one scale for all scenes: the largest extent, each scene centred on its own motion
    floors = [(_floor_height([m]) if show_floor else None) for m in motions]
    bounds = [_bounds([m], f) for m, f in zip(motions, floors)]
    ext = np.max([np.maximum(hi - lo, 1.0) for lo, hi in bounds], axis=0)
    scenes = []
    for lo, hi in bounds:
        c = (lo + hi) / 2
        scenes.append(_scene_layout(c - ext / 2, c + ext / 2, show_floor, distance=1.45 if cols > 1 else 1.0))
    anims = [[_Animated(m, color, titles[i] or f"motion {i + 1}", scene="scene" if i == 0 else f"scene{i + 1}")]
             for i, m in enumerate(motions)]
    fig.update_layout(**_base_layout(None, cell_height * rows + 40))
    fig.update_layout(margin=dict(l=0, r=0, t=30, b=40))
    return _build_scene_figure(anims, scenes, max(m.fps for m in motions), max_steps, floors, fig)


def strip_figure(motions: Motion | Sequence[Motion], titles: Sequence[str] | None = None,
                 frame: int | None = None, num_keyframes: int = 6, spacing: float | None = None,
                 colors: Sequence[str] | None = None, title: str | None = None, height: int = 420) -> go.Figure:
    """A static strip of poses spread along x (small multiples in one scene).

    With one Motion: ``num_keyframes`` evenly spaced frames of it.  With a list (e.g. the steps of a
    latent interpolation): frame ``frame`` (default: the middle one) of each, coloured along a gradient
    from the first to the last.  Every pose is centred on its root horizontally.
    """
    if isinstance(motions, Motion):
        m = _check_motion(motions)
        idx = _frame_indices(m.num_frames, max(1, num_keyframes))
        poses = [m.joints[i] for i in idx]
        skels = [m] * len(poses)
        titles = list(titles) if titles is not None else [f"frame {i}" for i in idx]
    else:
        ms = [_check_motion(m) for m in motions]
        if not ms:
            raise ValueError("strip_figure needs at least one motion")
        poses = [m.joints[min(m.num_frames - 1, frame if frame is not None else m.num_frames // 2)] for m in ms]
        skels = ms
        titles = list(titles) if titles is not None else [m.labels.label or str(i) for i, m in enumerate(ms)]
    n = len(poses)
    if colors is None:
        if n == 1:
            colors = [PALETTE[0]]
        else:
            a, b = _rgb(PALETTE[0]), _rgb(PALETTE[1])
            colors = [_mix(PALETTE[0], b, k / (n - 1)) for k in range(n)] if a and b else [PALETTE[0]] * n
    centred = []
    for p, m in zip(poses, skels):
        p = p.astype(np.float64).copy()
        r = p[m.skeleton.root]
        if not np.isfinite(r).all():
            r = np.nanmean(p, axis=0)
        p[:, [0, 2]] -= r[[0, 2]]
        centred.append(p)
    if spacing is None:
        widths = [np.nanmax(p[:, 0]) - np.nanmin(p[:, 0]) for p in centred if np.isfinite(p).any()]
        spacing = max(0.8, 1.3 * float(max(widths) if widths else 0.6))
    fig = go.Figure(layout=_base_layout(title, height))
    placed = []
    for k, (p, m) in enumerate(zip(centred, skels)):
        q = p.copy()
        q[:, 0] += k * spacing
        placed.append(q)
        one = m.with_joints(q[None].astype(np.float32))
        for tr in _Animated(one, colors[k % len(colors)], str(titles[k]) if k < len(titles) else str(k)).traces(0):
            fig.add_trace(tr)
    pts = np.concatenate([_scene_xyz(q) for q in placed])
    pts = pts[np.isfinite(pts).all(axis=1)]
    lo, hi = (pts.min(0), pts.max(0)) if len(pts) else (np.zeros(3), np.ones(3))
    floor = 0.0 if lo[2] > -0.05 else float(lo[2])
    lo[2] = min(lo[2], floor)
    top = hi[2] + 0.15
    scene = _scene_layout(lo, np.maximum(hi, [hi[0], hi[1], top]), True, min_extent=0.6)
    scene["camera"] = dict(eye=dict(x=0.2, y=-0.95, z=0.25), up=dict(x=0, y=0, z=1),
                           center=dict(x=0, y=0, z=0))
    fig.add_trace(go.Scatter3d(
        x=[round(k * spacing, 3) for k in range(n)], y=[0.0] * n, z=[round(float(top), 3)] * n, mode="text",
        text=[str(t) for t in titles[:n]], textfont=dict(size=11), hoverinfo="skip", showlegend=False))
    fig.add_trace(_floor_trace(scene, floor))
    fig.layout.scene.update(scene)
    return fig


# ------------------------------------------------------------------------------------------------
# 2D charts
# ------------------------------------------------------------------------------------------------
def _name_side(name: str) -> int:
    n = name.lower()
    if "left" in n or n.endswith("_l") or n.startswith("l_"):
        return 0
    if "right" in n or n.endswith("_r") or n.startswith("r_"):
        return 2
    return 1


def joint_error_figure(names: Sequence[str], errors: Sequence[float] | np.ndarray, title: str | None = None,
                       unit: str = "cm", ci: Sequence[float] | None = None, height: int = 360) -> go.Figure:
    """Bar chart of a per-joint error (values drawn as given, in ``unit``), left/right coloured."""
    errors = np.asarray(errors, dtype=np.float64).reshape(-1)
    names = [str(n) for n in names]
    if len(names) != len(errors):
        raise ValueError(f"{len(names)} joint names but {len(errors)} errors")
    cols = [(LEFT_COLOR, CENTRE_COLOR, RIGHT_COLOR)[_name_side(n)] for n in names]
    bar = go.Bar(x=names, y=[None if not np.isfinite(e) else round(float(e), 4) for e in errors],
                 marker_color=cols, name="error",
                 hovertemplate="%{x}: %{y:.2f} " + unit + "<extra></extra>")
    if ci is not None:
        bar.error_y = dict(type="data", array=[float(c) for c in ci], visible=True, thickness=1)
    fig = go.Figure(bar)
    fig.update_layout(title=dict(text=title, x=0.5) if title else None, height=height,
                      margin=dict(l=50, r=10, t=40 if title else 10, b=80),
                      yaxis=dict(title=f"error ({unit})", rangemode="tozero"), xaxis=dict(tickangle=-45),
                      showlegend=False, uirevision=UIREVISION)
    return fig


def _mean_err(v: Any) -> tuple[float, float | None, float | None]:
    """A table cell -> (mean, minus, plus): a number, (mean, ci) or (mean, lo, hi)."""
    if isinstance(v, Mapping):
        m = float(v.get("mean", v.get("value", np.nan)))
        if "lo" in v and "hi" in v:
            return m, m - float(v["lo"]), float(v["hi"]) - m
        c = v.get("ci")
        return m, (None if c is None else float(c)), (None if c is None else float(c))
    if isinstance(v, (tuple, list, np.ndarray)):
        v = list(v)
        if len(v) == 1:
            return float(v[0]), None, None
        if len(v) == 2:
            return float(v[0]), float(v[1]), float(v[1])
        return float(v[0]), float(v[0]) - float(v[1]), float(v[2]) - float(v[0])
    return float(v), None, None


def metric_bar_figure(table: Mapping[str, Mapping[str, Any]], title: str | None = None,
                      metrics: Sequence[str] | None = None, colors: Sequence[str] | None = None,
                      height: int = 360) -> go.Figure:
    """Bars with error bars: ``table[model][metric]`` is a number, ``(mean, ci_halfwidth)`` or
    ``(mean, lo, hi)``.  One panel per metric (each with its own scale), one coloured bar per model."""
    models = list(table)
    if not models:
        raise ValueError("metric_bar_figure needs at least one model")
    if metrics is None:
        metrics = []
        for mod in models:
            for k in table[mod]:
                if k not in metrics:
                    metrics.append(k)
    metrics = list(metrics)
    if not metrics:
        raise ValueError("metric_bar_figure needs at least one metric")
    colors = list(colors or PALETTE)
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=metrics, horizontal_spacing=0.06)
    for i, mod in enumerate(models):
        for k, met in enumerate(metrics):
            if met not in table[mod]:
                continue
            mean, lo, hi = _mean_err(table[mod][met])
            bar = go.Bar(x=[mod], y=[mean], name=mod, legendgroup=mod, showlegend=(k == 0),
                         marker_color=colors[i % len(colors)],
                         hovertemplate=f"{_html.escape(mod)}<br>{_html.escape(met)} = %{{y:.4g}}<extra></extra>")
            if lo is not None:
                bar.error_y = dict(type="data", symmetric=False, array=[hi], arrayminus=[lo], visible=True,
                                   thickness=1.2, width=4)
            fig.add_trace(bar, row=1, col=k + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_layout(title=dict(text=title, x=0.5) if title else None, height=height, barmode="group",
                      margin=dict(l=40, r=10, t=60 if title else 40, b=20), uirevision=UIREVISION,
                      legend=dict(orientation="h", x=0.5, xanchor="center", y=-0.05, yanchor="top"))
    return fig


error_bar_figure = metric_bar_figure


# ------------------------------------------------------------------------------------------------
# standalone HTML with real animation frames
# ------------------------------------------------------------------------------------------------
def standalone_html(motions: Motion | Sequence[Motion], titles: Sequence[str] | None = None,
                    max_frames: int = 600, title: str | None = None) -> str:
    """A self-contained HTML page (plotly.js inline, works offline) with real Plotly animation frames,
    a Play/Pause button and a frame slider; several motions are shown side by side."""
    ms = [motions] if isinstance(motions, Motion) else list(motions)
    if len(ms) == 1:
        fig = motion_figure(ms[0], title=title or (titles[0] if titles else None), max_steps=max_frames)
    else:
        fig = grid_figure(ms, titles=titles, max_steps=max_frames)
    sliders = fig.layout.sliders
    if not sliders:
        return pio.to_html(fig, include_plotlyjs=True, full_html=True)
    steps = sliders[0].steps
    fps = max(m.fps for m in ms)
    T = max(m.num_frames for m in ms)
    stride = max(1, int(round(T / max(1, len(steps)))))
    frames = []
    new_steps = []
    for st in steps:
        coords, ids = st.args[0], st.args[1]
        data = [go.Scatter3d(x=x, y=y, z=z) for x, y, z in zip(coords["x"], coords["y"], coords["z"])]
        frames.append(go.Frame(data=data, traces=list(ids), name=st.label))
        new_steps.append(dict(method="animate", label=st.label,
                              args=[[st.label], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                                     transition=dict(duration=0))]))
    fig.frames = frames
    duration = int(round(1000.0 * stride / fps))
    fig.layout.sliders = [dict(sliders[0].to_plotly_json(), steps=new_steps)]
    fig.layout.updatemenus = [dict(
        type="buttons", direction="left", x=0.0, y=0.02, xanchor="left", yanchor="top", pad=dict(t=5, r=5),
        showactive=False,
        buttons=[
            dict(label="▶ Play", method="animate",
                 args=[None, dict(frame=dict(duration=duration, redraw=True), transition=dict(duration=0),
                                  fromcurrent=True, mode="immediate")]),
            dict(label="❚❚ Pause", method="animate",
                 args=[[None], dict(frame=dict(duration=0, redraw=False), transition=dict(duration=0),
                                    mode="immediate")]),
        ])]
    fig.layout.sliders[0].x = 0.16
    fig.layout.sliders[0].len = 0.82
    return pio.to_html(fig, include_plotlyjs=True, full_html=True, auto_play=False,
                       config={"displaylogo": False})


def figure_json_size(fig: go.Figure) -> int:
    """Bytes of the figure's JSON (what the browser receives)."""
    return len(json.dumps(fig.to_plotly_json(), default=str, separators=(",", ":")))
