"""Writing motions to files, and the ``python -m motionviz export`` command.

Formats (``export_motion(motion, fmt, directory)``; the file is ``<stem>.<ext>`` where the stem comes
from the motion's label, so the same motion always gets the same name):

* ``npy``  - float32 array (T, J, 3), metres, Y-up (no pickle; NaN = missing joint);
* ``npz``  - the same array as ``joints`` with the frame rate ``fps`` and the ``skeleton`` name
  (:func:`save_npz`; no pickle): the array format that carries its rate;
* ``json`` - our ``motionviz/1`` format (``Motion.to_json``: skeleton, fps, labels, joints);
* ``bvh``  - :func:`motionviz.io.bvh_write.write_bvh` (centimetres, 6 channels per joint, exact positions);
* ``gif`` / ``mp4`` - a stick-figure animation drawn here with NumPy + Pillow (orthographic
  three-quarter view, floor grid, left side red / right side blue, frame counter), encoded with
  imageio (Pillow for GIF, imageio-ffmpeg's bundled ffmpeg for H.264 MP4);
* what the 3D player shows (several motions in a grid or overlaid, its colours, titles and legend):
  :func:`save_view` (GIF / MP4 of a player payload, drawn the same way);
* ``html`` - :func:`motionviz.viz.render.standalone_html` (plotly.js inline, Play button, works offline);
* ``glb``  - the Anny body driven by the motion (:func:`save_glb`): by default *rigged* (a 17-joint
  skeleton, a skin and a joint animation at the motion's frame rate, :mod:`motionviz.mesh.rig`), or
  ``vertex_animated`` (one morph target per frame, :func:`motionviz.mesh.export.export_sequence`).

Files are written to a temporary name and renamed, so a failed export leaves no partial file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .core.errors import UserError
from .core.motion import Motion
from .core.skeleton import COMMON, SKELETONS
from .io.bvh_write import save_bvh as _save
from .mesh import animation as mesh_A
from .mesh import export as mesh_E
from .mesh.rig import export_rigged
from .viz.payload import decode_positions
from .viz.render import standalone_html

__all__ = [
    "FORMATS",
    "export_motion",
    "save_npy",
    "save_npz",
    "save_json",
    "save_bvh",
    "save_gif",
    "save_mp4",
    "save_html",
    "save_glb",
    "render_frames",
    "render_view_frames",
    "save_view",
    "motion_stem",
]

FORMATS: dict[str, str] = {"npy": ".npy", "npz": ".npz", "json": ".json", "bvh": ".bvh", "gif": ".gif", "mp4": ".mp4",
                           "html": ".html", "glb": ".glb"}
VIDEO_SIZE = 320           # pixels (square, a multiple of 16 for H.264)
MAX_VIDEO_FRAMES = 600     # longer motions are subsampled in time for GIF / MP4
_LEFT = (209, 73, 91)
_RIGHT = (46, 134, 171)
_CENTRE = (61, 61, 61)
_FLOOR = (205, 205, 205)

Progress = Callable[[float, str], None]


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def motion_stem(motion: Motion) -> str:
    """A file-name stem from the motion's label (e.g. ``ui-prmd_m07``), else ``motion``."""
    text = motion.labels.label or motion.labels.source or "motion"
    text = re.sub(r"\.(bvh|npy|json|csv|xz|mp4|gif|html)$", "", text, flags=re.I)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", text.replace(":", "_"))[:60].strip("._")
    return stem or "motion"


def _target(path: str | os.PathLike, ext: str) -> Path:
    p = Path(path)
    if p.suffix.lower() != ext:
        p = p.with_name(p.name + ext)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    return p


def _tmp(p: Path) -> Path:
    return p.with_name(f".{p.stem}.tmp{os.getpid()}{p.suffix}")


def _check(motion: Motion) -> Motion:
    if not isinstance(motion, Motion):
        raise UserError(f"expected a Motion to export, got {type(motion).__name__}")
    if motion.joints.shape[-1] != 3:
        raise UserError("only 3D motions can be exported")
    return motion


# ------------------------------------------------------------------------------------------------
# data formats
# ------------------------------------------------------------------------------------------------
def save_npy(motion: Motion, path: str | os.PathLike) -> Path:
    """float32 (T, J, 3) metres; load with ``np.load(path, allow_pickle=False)``."""
    p = _target(path, ".npy")
    tmp = _tmp(p)
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(_check(motion).joints, dtype=np.float32), allow_pickle=False)
    tmp.replace(p)
    return p


def save_npz(motion: Motion, path: str | os.PathLike) -> Path:
    """``joints`` float32 (T, J, 3) metres, ``fps`` (float64) and ``skeleton`` (its name) in one ``.npz``, no
    pickle: ``np.load(path, allow_pickle=False)``; every reader of motion files takes it at its stored rate.
    A skeleton read from a file (not one of :data:`motionviz.core.skeleton.SKELETONS`) is stored as the common
    skeleton."""
    m = _check(motion)
    if SKELETONS.get(m.skeleton.name) != m.skeleton:
        m = m.retarget(COMMON)
    p = _target(path, ".npz")
    tmp = _tmp(p)
    with open(tmp, "wb") as f:
        np.savez(f, joints=np.ascontiguousarray(m.joints, dtype=np.float32), fps=np.float64(m.fps),
                 skeleton=np.str_(m.skeleton.name))
    tmp.replace(p)
    return p


def save_json(motion: Motion, path: str | os.PathLike, decimals: int = 4) -> Path:
    """Our ``motionviz/1`` JSON (``Motion.from_json`` reads it back)."""
    p = _target(path, ".json")
    tmp = _tmp(p)
    tmp.write_text(_check(motion).to_json(decimals), encoding="utf-8")
    tmp.replace(p)
    return p


def save_bvh(motion: Motion, path: str | os.PathLike, unit: str = "cm", rig: str = "motionviz",
             clean_feet: bool = False) -> Path:
    """BVH (see :mod:`motionviz.io.bvh`): centimetres by default, no comment lines, metadata in the
    sidecar ``<file>.bvh.json``; ``rig="mixamo"`` for Mixamo joint names, ``clean_feet`` to remove
    foot sliding."""
    return _save(_check(motion), _target(path, ".bvh"), unit=unit, rig=rig, clean_feet=clean_feet)


def save_html(motion: Motion | Sequence[Motion], path: str | os.PathLike,
              titles: Sequence[str] | None = None) -> Path:
    """Standalone HTML page with a Play button (plotly.js inline: no internet needed)."""
    ms = [motion] if isinstance(motion, Motion) else list(motion)
    for m in ms:
        _check(m)
    if titles is None:
        titles = [m.labels.text or m.labels.label or f"motion {i + 1}" for i, m in enumerate(ms)]
    p = _target(path, ".html")
    tmp = _tmp(p)
    tmp.write_text(standalone_html(ms, titles=list(titles)), encoding="utf-8")
    tmp.replace(p)
    return p


def save_glb(motion: Motion, path: str | os.PathLike, vertex_animated: bool = False,
             progress: Progress | None = None) -> Path:
    """The Anny body driven by ``motion`` (any skeleton with a map to the common one) as a ``.glb``.

    Rigged (default): joints, skin and a joint animation with one key per frame at the motion's frame
    rate (Blender, Unity, Unreal, three.js play it as a character; :mod:`motionviz.mesh.rig`).
    ``vertex_animated``: one morph target per frame played by a STEP animation, at most
    :data:`motionviz.mesh.MAX_EXPORT_FRAMES` frames (subsampled evenly)."""
    p = _target(path, ".glb")
    anim = mesh_A.mesh_animation(_check(motion), body="anny", progress=progress)
    if vertex_animated:
        return mesh_E.export_sequence(anim, p, progress=progress)
    return export_rigged(anim, p, progress=progress)


# ------------------------------------------------------------------------------------------------
# stick-figure video frames (NumPy + Pillow)
# ------------------------------------------------------------------------------------------------
def _view_matrix(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Rows = screen right, screen up, towards the viewer, for a camera in front of a subject facing
    +Z, turned ``yaw`` degrees towards the subject's left and looking ``pitch`` degrees down."""
    a, b = np.radians(yaw_deg), np.radians(pitch_deg)
    # camera direction (from the subject towards the camera)
    back = np.array([np.sin(a) * np.cos(b), np.sin(b), np.cos(a) * np.cos(b)])
    right = np.array([np.cos(a), 0.0, -np.sin(a)])
    up = np.cross(back, right)
    return np.stack([right, up, back])


def render_frames(motion: Motion, size: int = VIDEO_SIZE, yaw: float = 30.0, pitch: float = 12.0,
                  max_frames: int = MAX_VIDEO_FRAMES, counter: bool = True,
                  progress: Progress | None = None) -> tuple[np.ndarray, float]:
    """(N, size, size, 3) uint8 frames of a stick figure and the frame rate they play at.

    Orthographic projection, one scale for the whole sequence (the body keeps its size), a floor
    grid at y = 0, bones drawn far-to-near, NaN joints and their bones left out.
    """
    from PIL import Image, ImageDraw, ImageFont

    motion = _check(motion)
    T = motion.num_frames
    step = max(1, int(np.ceil(T / max_frames)))
    idx = np.arange(0, T, step)
    fps = motion.fps / step
    X = motion.joints[idx].astype(np.float64)                       # (N, J, 3)
    V = _view_matrix(yaw, pitch)
    P = X @ V.T                                                      # (N, J, 3) right, up, depth

    # floor grid over the area the body covers
    finite = np.isfinite(X).all(-1)
    pts = X[finite] if finite.any() else np.zeros((1, 3))
    lo, hi = pts.min(0), pts.max(0)
    floor_y = 0.0 if lo[1] > -0.05 else float(lo[1])
    g = 0.5
    gx = np.arange(np.floor((lo[0] - 0.4) / g) * g, hi[0] + 0.4 + 1e-9, g)
    gz = np.arange(np.floor((lo[2] - 0.4) / g) * g, hi[2] + 0.4 + 1e-9, g)
    lines = [((x, floor_y, gz[0]), (x, floor_y, gz[-1])) for x in gx] + \
            [((gx[0], floor_y, z), (gx[-1], floor_y, z)) for z in gz]
    L = np.array(lines, dtype=np.float64) @ V.T                      # (G, 2, 3)

    # one scale for everything
    allp = np.concatenate([P[finite].reshape(-1, 3), L.reshape(-1, 3)])
    body = np.concatenate([P[finite].reshape(-1, 3)])[:, :2] if finite.any() else allp[:, :2]
    b_lo, b_hi = body.min(0), body.max(0)
    # fit the body (and as much floor as fits) with a margin
    ss = 4                                   # supersampling for smooth lines
    W = size * ss
    span = max(float((b_hi - b_lo).max()), 0.5) * 1.15
    scale = W / span
    centre = (b_lo + b_hi) / 2

    def to_px(q: np.ndarray) -> np.ndarray:
        return np.stack([(q[..., 0] - centre[0]) * scale + W / 2, W / 2 - (q[..., 1] - centre[1]) * scale], -1)

    Lpx = to_px(L)
    sk = motion.skeleton
    side = np.ones(len(sk), dtype=int)
    for left, right in sk.lr_pairs:
        side[left], side[right] = 0, 2
    colours = [(_LEFT, _CENTRE, _RIGHT)[s] for s in side]
    width = max(2, int(round(W / 110)))
    rad = max(2, int(round(W / 150)))
    font = ImageFont.load_default()
    frames = np.empty((len(idx), size, size, 3), dtype=np.uint8)
    for n in range(len(idx)):
        img = Image.new("RGB", (W, W), (255, 255, 255))
        d = ImageDraw.Draw(img)
        for a, b in Lpx:
            d.line([tuple(a), tuple(b)], fill=_FLOOR, width=max(1, ss))
        px = to_px(P[n])
        depth = P[n, :, 2]
        ok = finite[n]
        bones = [(p, c) for p, c in sk.bones if ok[p] and ok[c]]
        bones.sort(key=lambda bc: depth[bc[0]] + depth[bc[1]])      # far first
        for p, c in bones:
            d.line([tuple(px[p]), tuple(px[c])], fill=colours[c], width=width)
        for j in np.argsort(depth):
            if ok[j]:
                x, y = px[j]
                d.ellipse([x - rad, y - rad, x + rad, y + rad], fill=colours[j])
        small = img.resize((size, size), Image.LANCZOS)
        if counter:
            ImageDraw.Draw(small).text((6, 4), f"{idx[n]}/{T - 1}", fill=(90, 90, 90), font=font)
        frames[n] = np.asarray(small)
        if progress is not None and n % 20 == 0:
            progress(n / len(idx), f"drawing frame {n + 1}/{len(idx)}")
    return frames, fps


def _save_video(motion: Motion, path: str | os.PathLike, ext: str, write: Callable[..., None], size: int,
                progress: Progress | None) -> Path:
    frames, fps = render_frames(motion, size=size, progress=progress)
    p = _target(path, ext)
    write(frames, fps, p)
    return p


def save_gif(motion: Motion, path: str | os.PathLike, size: int = VIDEO_SIZE,
             progress: Progress | None = None) -> Path:
    """Looping animated GIF of the stick figure (frame duration from the motion's fps)."""
    return _save_video(motion, path, ".gif", _write_gif, size, progress)


def save_mp4(motion: Motion, path: str | os.PathLike, size: int = VIDEO_SIZE,
             progress: Progress | None = None) -> Path:
    """H.264 MP4 (yuv420p, plays in browsers) of the stick figure, via imageio-ffmpeg."""
    return _save_video(motion, path, ".mp4", _write_mp4, size, progress)


def _write_gif(frames, fps: float, p: Path) -> None:
    """Write ``frames`` (RGB images) as a looping GIF at ``p``, through a temporary file."""
    import imageio.v3 as iio

    tmp = _tmp(p)
    iio.imwrite(tmp, frames, extension=".gif", duration=int(round(1000.0 / fps)), loop=0)
    tmp.replace(p)


def _write_mp4(frames, fps: float, p: Path) -> None:
    """Write ``frames`` (RGB images) as an H.264 MP4 (yuv420p, plays in browsers) at ``p`` via imageio-ffmpeg,
    through a temporary file."""
    import imageio.v2 as imageio

    tmp = _tmp(p)
    try:
        writer = imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264", quality=7,
                                    macro_block_size=16, pixelformat="yuv420p", ffmpeg_log_level="error")
    except (ImportError, RuntimeError, OSError) as e:
        raise UserError(f"MP4 export needs imageio-ffmpeg ({e})") from None
    try:
        for f in frames:
            writer.append_data(f)
    finally:
        writer.close()
    tmp.replace(p)


# ------------------------------------------------------------------------------------------------
# what the player shows: a grid or an overlay of several motions, as one GIF / MP4
# ------------------------------------------------------------------------------------------------
VIEW_CELL = 240            # pixels per grid cell (an overlay gets 2x); the picture's width is capped
VIEW_MAX_WIDTH = 960
VIEW_FPS = 20.0            # the view is sampled at this rate at most (every motion at its own time)
MAX_VIEW_FRAMES = 300
_BG = (251, 251, 250)
_HIGHLIGHT = (242, 183, 5)
_SIDE = ((209, 73, 91), (61, 61, 61), (46, 134, 171))


def _hex(c: str) -> tuple[int, int, int]:
    c = c.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _mix_rgb(c: tuple[int, int, int], target: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    return tuple(int(round(a + (b - a) * amount)) for a, b in zip(c, target))  # type: ignore[return-value]


def _view_grid(n: int, overlay: bool) -> tuple[int, int]:
    """(columns, rows) of the picture: the player's rule (up to 4 in a row, else about square)."""
    if overlay or n == 1:
        return 1, 1
    cols = n if n <= 4 else int(np.ceil(np.sqrt(n * 1.5)))
    cols = min(cols, n)
    rows = int(np.ceil(n / cols))
    return int(np.ceil(n / rows)), rows


def _view_settings(payload: dict, view: dict | None) -> tuple[bool, float, float]:
    """-> (overlay?, yaw, pitch in degrees) of the player's state ``view`` (``{"layout", "az", "el"}``;
    default: the payload's layout, the 3/4 view); pitch clipped to [-10, 89]."""
    view = view or {}
    layout = view.get("layout") if view.get("layout") in ("grid", "overlay") else payload.get("layout", "grid")
    overlay = layout == "overlay"
    try:
        yaw, pitch = float(view.get("az", 35.0)), float(view.get("el", 14.0))
    except (TypeError, ValueError):
        yaw, pitch = 35.0, 14.0
    pitch = float(np.clip(pitch, -10.0, 89.0))
    return overlay, yaw, pitch


def _view_bodies(payload: dict, overlay: bool) -> tuple[list[np.ndarray], list[list[tuple[int, int, int]]]]:
    """Per motion of the payload: its (T, J, 3) positions centred on its cell (or the overlay's centre)
    and its J joint colours (role colour darker left / lighter right, else the side colours)."""
    sks = payload["skeletons"]
    oc = payload.get("scale", {}).get("overlay_centre", [0.0, 0.0])
    pos, cols_ = [], []
    for it in payload["motions"]:
        sk = sks[int(it["sk"])]
        J = len(sk["side"])
        P = decode_positions(it["pos"], J)
        c = oc if overlay else it.get("centre", [0.0, 0.0])
        P = P - np.array([c[0], 0.0, c[1]])
        pos.append(P)
        if it.get("color"):
            base = _hex(it["color"])
            shades = (_mix_rgb(base, (0, 0, 0), 0.35), base, _mix_rgb(base, (255, 255, 255), 0.45))
        else:
            shades = _SIDE
        cols_.append([shades[s] for s in sk["side"]])
    return pos, cols_


class _ViewCamera:
    """One orthographic projection for every cell of ``cw`` x ``ch`` pixels (drawn ``ss`` times larger):
    the extent of all bodies (and a little floor) on screen; ``floor`` = the 0.5 m floor grid's
    (n, 2, 3) segments in view coordinates."""

    def __init__(self, pos: list[np.ndarray], V: np.ndarray, cw: int, ch: int, ss: int = 2):
        """``pos``: each motion's (T, J, 3) positions; ``V``: the (3, 3) view matrix (:func:`_view_matrix`)."""
        radius = max(0.6, float(max(np.nanmax(np.hypot(P[..., 0], P[..., 2])) if np.isfinite(P).any() else 0.5
                                    for P in pos)) + 0.25)
        g = np.arange(-np.ceil(radius / 0.5) * 0.5, radius + 1e-9, 0.5)
        self.floor = np.array([((x, 0.0, g[0]), (x, 0.0, g[-1])) for x in g]
                              + [((g[0], 0.0, z), (g[-1], 0.0, z)) for z in g], dtype=np.float64) @ V.T
        pts = np.concatenate([P[np.isfinite(P).all(-1)] for P in pos] + [np.zeros((1, 3))]) @ V.T
        lo, hi = pts[:, :2].min(0), pts[:, :2].max(0)
        lo[1] = min(lo[1], self.floor[..., 1].min() * 0.5)
        self.cw, self.ch, self.ss = cw, ch, ss
        span = max(float(hi[0] - lo[0]) / cw, float(hi[1] - lo[1]) / (ch - 24)) * 1.12
        self.scale = ss / max(span, 1e-6)
        self.centre = (lo + hi) / 2

    def to_px(self, q: np.ndarray) -> np.ndarray:
        """View coordinates (..., 3) -> pixel coordinates (..., 2) of the ``ss``-times larger cell."""
        cw, ch, ss, scale, centre = self.cw, self.ch, self.ss, self.scale, self.centre
        return np.stack([(q[..., 0] - centre[0]) * scale + cw * ss / 2,
                         (ch - 4) * ss / 2 + 8 * ss - (q[..., 1] - centre[1]) * scale], -1)


def _view_times(items: list[dict], max_frames: int) -> tuple[np.ndarray, float, float]:
    """-> ((N,) sample times in seconds, duration, output frame rate): the longest motion sampled at
    :data:`VIEW_FPS` at most (at most ``max_frames`` frames)."""
    duration = max(float(it.get("duration") or 0.0) for it in items) or 1e-3
    fps_out = float(min(VIEW_FPS, max(float(it.get("fps") or VIEW_FPS) for it in items)))
    N = int(min(max_frames, max(1, np.floor(duration * fps_out + 1e-6) + 1)))
    times = np.linspace(0.0, duration, N) if N > 1 else np.zeros(1)
    fps_out = (N - 1) / duration if N > 1 else fps_out
    return times, duration, fps_out


def _body_shapes(it: dict, sk: dict, X: np.ndarray, colours: list[tuple[int, int, int]], V: np.ndarray,
                 cam: _ViewCamera, rad: int) -> list[tuple]:
    """The shapes of one body at one frame, ``X`` (J, 3) positions: ``(depth, "l", (a, b), colour)``
    bones and ``(depth, "o", (centre, radius), colour)`` joints and head (highlighted joints gold, larger)."""
    draw: list[tuple] = []
    Q = X @ V.T
    px = cam.to_px(Q)
    ok = np.isfinite(Q).all(-1)
    hi_ = set(it.get("highlight") or ())
    for p_, c_ in sk["bones"]:
        if ok[p_] and ok[c_]:
            colour = colours[c_] if sk["side"][c_] != 1 else colours[p_]
            draw.append((Q[p_, 2] + Q[c_, 2], "l", (tuple(px[p_]), tuple(px[c_])), colour))
    for j in range(len(Q)):
        if ok[j]:
            r = rad * (2.4 if j in hi_ else 1.0)
            draw.append((2 * Q[j, 2] + 1e-3, "o", (px[j], r), _HIGHLIGHT if j in hi_ else colours[j]))
    h, hp, off = sk["head"]
    if ok[h]:
        hx = X[h]
        if off > 0 and ok[hp]:
            v = X[h] - X[hp]
            nv = float(np.linalg.norm(v))
            if nv > 1e-6:
                hx = X[h] + v * (off / nv)
        hq = hx @ V.T
        base = _hex(it["color"]) if it.get("color") else (61, 61, 61)
        draw.append((2 * hq[2] + 2e-3, "o", (cam.to_px(hq), rad * 2.8), _mix_rgb(base, (0, 0, 0), 0.15)))
    return draw


def _paint_shapes(d, draw: list[tuple], width: int) -> None:
    """Draw the shapes of :func:`_body_shapes` on the PIL ``ImageDraw`` ``d``, far first."""
    for _, kind, geom, colour in sorted(draw, key=lambda e: e[0]):   # far first
        if kind == "l":
            d.line(list(geom), fill=colour, width=width)
        else:
            (x, y), r = geom
            d.ellipse([x - r, y - r, x + r, y + r], fill=colour)


def _draw_titles(sd, items: list[dict], members: list[int], cw: int, font) -> None:
    """Each member motion's title (after a swatch of its colour) at the top of a cell (PIL ``ImageDraw`` ``sd``)."""
    y = 4
    for k in members:
        title = str(items[k].get("title") or "")
        if not title:
            continue
        x = 6
        if items[k].get("color"):
            sd.rectangle([x, y + 2, x + 8, y + 10], fill=_hex(items[k]["color"]))
            x += 12
        sd.text((x, y), title[: max(8, (cw - x) // 6)], fill=(34, 34, 34), font=font)
        y += 14


def _draw_legend(d, t: float, duration: float, legend: list[tuple[str | None, str]], W: int, y0: int, font) -> None:
    """The time and the legend (swatch + label per entry, as many as fit) in the strip at ``y0``."""
    d.text((6, y0 + 5), f"{t:.2f} s / {duration:.2f} s", fill=(60, 60, 60), font=font)
    x = 110
    for colour, label in legend:
        if x > W - 40:
            break
        if colour:
            d.rectangle([x, y0 + 6, x + 10, y0 + 16], fill=_hex(colour))
            x += 14
        d.text((x, y0 + 5), label, fill=(60, 60, 60), font=font)
        x += int(d.textlength(label, font=font)) + 14


def render_view_frames(payload: dict, view: dict | None = None, cell: int = VIEW_CELL,
                       max_frames: int = MAX_VIEW_FRAMES, progress: Progress | None = None) -> tuple[np.ndarray, float]:
    """(N, H, W, 3) uint8 frames of what the 3D player shows for ``payload`` (:func:`motionviz.ui.player.
    player_payload`) and their frame rate: every motion in its grid cell (or all overlaid), in the player's
    colours (role colour, darker left / lighter right; side colours without a role; gold, larger joints where
    highlighted), with each cell's title, the time and the legend.  ``view`` is the player's state
    ``{"layout", "az", "el"}`` (the browser's; default: the payload's layout, the 3/4 view).  Orthographic,
    one scale for every cell, floor grid 0.5 m."""
    from PIL import Image, ImageDraw, ImageFont


    if not isinstance(payload, dict) or not payload.get("motions") or not payload.get("skeletons"):
        raise UserError("nothing to export: the player shows no motion")
    overlay, yaw, pitch = _view_settings(payload, view)
    items = payload["motions"]
    sks = payload["skeletons"]
    V = _view_matrix(yaw, pitch)
    pos, cols_ = _view_bodies(payload, overlay)
    n = len(items)
    ncol, nrow = _view_grid(n, overlay)
    cw = min(cell * (2 if overlay or n == 1 else 1), VIEW_MAX_WIDTH // ncol)
    ch = int(round(cw * (1.0 if overlay or n == 1 else 1.2)))
    legend_h = 22
    W, H = cw * ncol, ch * nrow + legend_h
    cam = _ViewCamera(pos, V, cw, ch)
    ss = cam.ss
    floor_px = cam.to_px(cam.floor)
    times, duration, fps_out = _view_times(items, max_frames)
    N = len(times)
    font = ImageFont.load_default()
    width, rad = max(2, int(round(2.2 * ss))), max(2, int(round(2.6 * ss)))
    frames = np.empty((N, H, W, 3), dtype=np.uint8)
    legend = [(e.get("color"), str(e.get("label", ""))) for e in payload.get("legend", [])]
    cells = [[k] for k in range(n)] if not overlay else [list(range(n))]
    for f, t in enumerate(times):
        img = Image.new("RGB", (W, H), _BG)
        for c, members in enumerate(cells):
            sub = Image.new("RGB", (cw * ss, ch * ss), _BG)
            d = ImageDraw.Draw(sub)
            for a, b in floor_px:
                d.line([tuple(a), tuple(b)], fill=(200, 200, 196), width=ss)
            draw = []
            for k in members:
                it, sk = items[k], sks[int(items[k]["sk"])]
                fr = int(min(it["frames"] - 1, max(0, np.floor(t * float(it["fps"]) + 1e-6))))
                draw += _body_shapes(it, sk, pos[k][fr], cols_[k], V, cam, rad)
            _paint_shapes(d, draw, width)
            sub = sub.resize((cw, ch), Image.BILINEAR)
            sd = ImageDraw.Draw(sub)
            _draw_titles(sd, items, members, cw, font)
            if not overlay and n > 1:
                sd.rectangle([0, 0, cw - 1, ch - 1], outline=(220, 220, 216))
            img.paste(sub, ((c % ncol) * cw, (c // ncol) * ch))
        _draw_legend(ImageDraw.Draw(img), t, duration, legend, W, H - legend_h, font)
        frames[f] = np.asarray(img)
        if progress is not None and f % 10 == 0:
            progress(f / N, f"drawing frame {f + 1}/{N}")
    return frames, fps_out


def save_view(payload: dict, path: str | os.PathLike, fmt: str | None = None, view: dict | None = None,
              progress: Progress | None = None) -> Path:
    """Write what the player shows for ``payload`` (:func:`render_view_frames`) as a looping GIF or an H.264
    MP4 at ``path`` (``fmt`` ``gif``/``mp4``; default: the path's ending, else gif); returns the path."""
    fmt = str(fmt or Path(path).suffix or "gif").lower().lstrip(".")
    if fmt not in ("gif", "mp4"):
        raise UserError(f"the view can be saved as gif or mp4, not {fmt!r}")
    frames, fps = render_view_frames(payload, view, progress=progress)
    p = _target(path, "." + fmt)
    if fmt == "gif":
        _write_gif(frames, fps, p)
    else:
        H, W = frames.shape[1:3]
        frames = np.pad(frames, ((0, 0), (0, -H % 16), (0, -W % 16), (0, 0)), constant_values=255)
        _write_mp4(frames, fps, p)
    return p


# ------------------------------------------------------------------------------------------------
# one entry point
# ------------------------------------------------------------------------------------------------
def export_motion(motion: Motion, fmt: str, directory: str | os.PathLike, stem: str | None = None,
                  progress: Progress | None = None) -> Path:
    """Write ``motion`` as ``fmt`` (npy / json / bvh / gif / mp4 / html / glb) into ``directory``; the file is
    ``<stem>.<ext>`` with the stem from the motion's label unless given.  Returns the path."""
    fmt = str(fmt).lower().lstrip(".")
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:80].strip("._") if stem else motion_stem(motion)
    path = d / f"{name or 'motion'}{FORMATS[fmt]}"
    if fmt == "npy":
        return save_npy(motion, path)
    if fmt == "npz":
        return save_npz(motion, path)
    if fmt == "json":
        return save_json(motion, path)
    if fmt == "bvh":
        return save_bvh(motion, path)
    if fmt == "gif":
        return save_gif(motion, path, progress=progress)
    if fmt == "mp4":
        return save_mp4(motion, path, progress=progress)
    if fmt == "glb":
        return save_glb(motion, path, progress=progress)
    return save_html(motion, path)
