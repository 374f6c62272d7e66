"""The motion player shared by every tab: many motions in one WebGL canvas, with Play/Pause.

Python side: :func:`player_payload` turns motions (plus titles, colour roles, notices and optional body
meshes) into a compact JSON payload; :func:`player` is the ``gr.HTML`` component that shows it and
:func:`player_value` the value a callback returns for it.  The drawing is done in the browser by
``static/player.js`` with three.js (``static/three.module.min.js``, r170, MIT, vendored from the npm
package ``three``; licence in ``static/THREE_LICENSE.txt``).

Why one canvas: browsers keep about 16 live WebGL contexts and a Plotly 3D scene holds one, so a page
with many 3D views went blank.  player.js keeps ONE WebGL renderer for the whole page, renders each
player (all its motions, as viewports of a grid or overlaid in one scene) into it and copies the result
into the player's own 2-D canvas.  However many players or motions are on the page, there is one
WebGL context.

Payload (``format: "motionviz-player/1"``): per motion the joint positions as little-endian int16
millimetres in base64 (``-32768`` = missing joint), frame rate, skeleton index, colour and title; per
skeleton the bones, the side of each joint (0 left, 1 centre, 2 right) and the head joint; the legend
(colour → meaning); the scale (one for all motions).  The floor is at y = 0: data whose lowest point is
clearly below it (raw camera coordinates) are lifted by the same amount for every motion.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import uuid
from pathlib import Path
from typing import Any, Sequence

import gradio as gr
import numpy as np

from ..core.errors import UserError
from ..core.motion import Motion
from ..export import save_view
from ..viz.payload import _encode
from . import common
from .common import CPU_LIMIT, CPU_QUEUE, progress_callback, user_error

__all__ = [
    "player", "player_payload", "player_value", "ROLE_COLORS", "MAX_PLAYER_MOTIONS",
    "MAX_PLAYER_FRAMES", "STATIC_DIR", "SIDE_LEGEND", "model_role", "sample_titles", "timing_note",
    "HIGHLIGHT_COLOR", "joint_label", "part_label", "view_export", "save_view_file", "controls", "PHONE_JS",
    "glb_payload", "glb_value", "MAX_GLB_BYTES",
]

STATIC_DIR = Path(__file__).resolve().parent / "static"
FORMAT = "motionviz-player/1"
#: At most this many motions in one player (more are left out, and the player says so).
MAX_PLAYER_MOTIONS = 64
#: At most this many frames per motion are sent (longer motions are subsampled evenly in time).
MAX_PLAYER_FRAMES = 300
#: Body meshes: at most this many frames and meshes per player (a mesh frame is ~1,300 vertices).
MAX_MESH_FRAMES = 90
MAX_MESHES = 4

#: Colour and legend text of each role.  A motion with no role is drawn in side colours.
ROLE_COLORS: dict[str, tuple[str, str]] = {
    "correct": ("#2a9d4b", "correct execution"),
    "incorrect": ("#e07a1f", "incorrect execution"),
    "input": ("#8a8a8a", "input"),
    "output": ("#2e6fd1", "output"),
    "reference": ("#8a8a8a", "reference"),
    "diffusion": ("#2e6fd1", "diffusion model"),
    "vae": ("#8e5bb5", "VAE"),
    "aegan": ("#1aa3a3", "AE-GAN"),
    "real": ("#6b6b6b", "real recording"),
    "edit": ("#e07a1f", "edit"),
}
_EXTRA = ("#c23b50", "#b5a21f", "#3b9b4a", "#8e5bb5", "#1aa3a3", "#6b6b6b")
#: Side colours (a motion without a role): the subject's left, the centre line, the subject's right.
LEFT, CENTRE, RIGHT = "#d1495b", "#3d3d3d", "#2e86ab"
SIDE_LEGEND = [(LEFT, "subject's left"), (RIGHT, "subject's right")]
#: Highlighted joints (``highlights``) are drawn larger in this gold.
HIGHLIGHT_COLOR = "#f2b705"
#: Readable names of joints and body parts whose plain form ("left_knee" -> "Left knee") is not enough.
_JOINT_WORDS = {"pelvis": "Pelvis (hips centre)", "neck": "Neck", "spine": "Spine", "upper_body": "Upper body",
                "lower_body": "Lower body", "arms": "Both arms", "legs": "Both legs",
                "torso": "Torso (pelvis, spine, neck)"}


def joint_label(name: str) -> str:
    """A joint or body-part name as people read it: ``left_knee`` -> ``Left knee``, ``arms`` -> ``Both arms``."""
    name = str(name)
    if name in _JOINT_WORDS:
        return _JOINT_WORDS[name]
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def part_label(name: str) -> str:
    """A body part (a key of :data:`motionviz.core.skeleton.BODY_PARTS`, or ``none``) as people read it."""
    return "None" if name == "none" else joint_label(name)


def model_role(name: str) -> str:
    """The role (colour) of a model name: ``diffusion``, ``vae``, ``aegan`` or the name itself."""
    return name if name in ROLE_COLORS else name


def sample_titles(seed: int, n: int, prefix: str = "") -> list[str]:
    """Titles of ``n`` samples asked with ``seed``: sample i has its own seed, ``seed + i`` (the generators
    draw each sample from its own seed, so asking for one sample with that seed gives the same motion):
    ``"seed 7"``, ``"seed 8"``, ..."""
    head = f"{prefix} · " if prefix else ""
    return [f"{head}seed {(int(seed) + i) % 2**64}" for i in range(n)]


def timing_note(total_s: float, model_s: float | None = None) -> str:
    """What the user waited for on the server: the whole request (model, player payload, files), and the
    model's share of it."""
    if model_s is None:
        return f"{total_s:.2f} s on the server"
    return f"{total_s:.2f} s on the server (model {model_s:.2f} s, drawing data and files {max(0.0, total_s - model_s):.2f} s)"


def _head(motion: Motion) -> tuple[int, int, float]:
    """(joint, parent, offset): the head marker sits at ``joint`` moved ``offset`` metres further along
    parent -> joint.  A skeleton with a head joint uses its top-most head joint (offset 0); one whose top is
    the neck (the common skeleton) puts the marker 0.12 m above the neck, along the spine."""
    sk = motion.skeleton
    names = [n.lower() for n in sk.joints]
    heads = [i for i, n in enumerate(names) if "head" in n or "nose" in n]
    if heads:
        leaves = [i for i in heads if not sk.children[i]]
        j = (leaves or heads)[0]
        return j, max(sk.parents[j], 0), 0.0
    necks = [i for i, n in enumerate(names) if "neck" in n]
    if necks:
        j = necks[0]
        return j, max(sk.parents[j], 0), 0.12
    central = sk.central or tuple(range(len(names)))
    y = np.nanmean(motion.joints[:, list(central), 1], axis=0)
    j = int(central[int(np.nanargmax(np.where(np.isfinite(y), y, -np.inf)))])
    return j, max(sk.parents[j], 0), 0.0


def _sides(motion: Motion) -> list[int]:
    side = [1] * len(motion.skeleton)
    for left, right in motion.skeleton.lr_pairs:
        side[left], side[right] = 0, 2
    return side


def _joint_indices(motion: Motion, joints: Sequence[int | str] | None) -> list[int]:
    """Sorted indices of ``joints`` (names or indices) in the motion's skeleton; unknown ones are left out."""
    names = list(motion.skeleton.joints)
    out = set()
    for j in joints or ():
        if isinstance(j, str):
            if j in names:
                out.add(names.index(j))
        elif 0 <= int(j) < len(names):
            out.add(int(j))
    return sorted(out)


def _frames(T: int, cap: int) -> np.ndarray:
    if T <= cap:
        return np.arange(T)
    return np.unique(np.round(np.linspace(0, T - 1, cap)).astype(int))


def _floor(motions: Sequence[Motion]) -> float:
    """Height of the floor in the data: 0, unless the data clearly live below it (raw camera
    coordinates), then the typical lowest point (2nd percentile of each frame's lowest joint)."""
    lows = []
    for m in motions:
        y = m.joints[..., 1]
        if np.isfinite(y).any():
            per_frame = np.nanmin(np.where(np.isfinite(y), y, np.inf), axis=1)
            per_frame = per_frame[np.isfinite(per_frame)]
            if per_frame.size:
                lows.append(float(np.percentile(per_frame, 2)))
    low = min(lows) if lows else 0.0
    return 0.0 if low > -0.05 else low


def _centre(motion: Motion) -> tuple[float, float]:
    """Horizontal (x, z) centre of a motion: its root at the first frame where it is known."""
    root = motion.joints[:, motion.skeleton.root]
    ok = np.isfinite(root).all(axis=1)
    if ok.any():
        p = root[int(np.argmax(ok))]
        return float(p[0]), float(p[2])
    pts = motion.joints.reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(axis=1)]
    return (float(pts[:, 0].mean()), float(pts[:, 2].mean())) if len(pts) else (0.0, 0.0)


def _radius(motion: Motion, centre: tuple[float, float]) -> float:
    xz = motion.joints[..., [0, 2]].reshape(-1, 2) - np.asarray(centre)
    r = np.hypot(xz[:, 0], xz[:, 1])
    r = r[np.isfinite(r)]
    return float(r.max()) if r.size else 0.5


def player_payload(motions: Sequence[Motion], titles: Sequence[str] | None = None,
                   roles: Sequence[str | None] | None = None, notices: Sequence[str] | None = None,
                   layout: str = "grid", meshes: Sequence[tuple[np.ndarray, np.ndarray] | None] | None = None,
                   legend: Sequence[tuple[str, str]] | None = None, caption: str = "",
                   autoplay: bool = True, show_skeleton: bool = True,
                   highlights: Sequence[Sequence[int | str] | None] | None = None,
                   highlight_label: str = "joints that differ most") -> dict[str, Any]:
    """The JSON-able payload for player.js.

    ``titles``/``roles``/``notices``/``meshes`` are per motion (``None`` entries allowed).  A role is a key
    of :data:`ROLE_COLORS` or any label (it then gets a colour of its own); motions without a role are drawn
    in side colours (left red, right blue).  ``layout`` is ``"grid"`` (one cell per motion, the same camera
    and scale in every cell) or ``"overlay"`` (all motions in one scene at their recorded places).
    ``meshes[i]`` is ``(vertices (T, V, 3) metres, faces (F, 3))`` drawn with motion ``i``.  ``legend``
    replaces the automatic legend.  ``highlights[i]`` lists joints (indices or names) of motion ``i`` drawn
    larger in :data:`HIGHLIGHT_COLOR`; the legend then says ``highlight_label``.  At most
    :data:`MAX_PLAYER_MOTIONS` motions are kept."""
    motions = list(motions)
    if not motions:
        raise ValueError("the player needs at least one motion")
    if layout not in ("grid", "overlay"):
        raise ValueError(f"layout must be 'grid' or 'overlay', got {layout!r}")
    dropped = max(0, len(motions) - MAX_PLAYER_MOTIONS)
    motions = motions[:MAX_PLAYER_MOTIONS]
    n = len(motions)
    titles = list(titles or [])[:n] + [""] * max(0, n - len(titles or []))
    roles = list(roles or [])[:n] + [None] * max(0, n - len(roles or []))
    notices = list(notices or [])[:n] + [""] * max(0, n - len(notices or []))
    meshes = list(meshes or [])[:n] + [None] * max(0, n - len(meshes or []))
    highlights = list(highlights or [])[:n] + [None] * max(0, n - len(highlights or []))

    floor = _floor(motions)
    skeletons: list[dict[str, Any]] = []
    sk_index: dict[tuple, int] = {}
    colours: dict[str, str] = {}
    items = []
    overlay_centre = _centre(motions[0])
    radius_grid = radius_overlay = 0.3
    height = 0.5
    mesh_count = 0
    for i, m in enumerate(motions):
        key = (m.skeleton.name, m.skeleton.joints, m.skeleton.parents)
        if key not in sk_index:
            sk_index[key] = len(skeletons)
            skeletons.append({"name": m.skeleton.name, "joints": list(m.skeleton.joints),
                              "bones": [list(b) for b in m.skeleton.bones], "side": _sides(m),
                              "head": list(_head(m))})
        idx = _frames(m.num_frames, MAX_PLAYER_FRAMES)
        fps = m.fps * (len(idx) - 1) / max(1, m.num_frames - 1) if len(idx) < m.num_frames else m.fps
        pos = m.joints[idx].astype(np.float64)
        pos[..., 1] -= floor
        c = _centre(m)
        radius_grid = max(radius_grid, _radius(m, c))
        radius_overlay = max(radius_overlay, _radius(m, overlay_centre))
        ys = pos[..., 1][np.isfinite(pos[..., 1])]
        if ys.size:
            height = max(height, float(ys.max()))
        role = roles[i]
        colour = None
        if role:
            if role in ROLE_COLORS:
                colour = ROLE_COLORS[role][0]
            else:
                colour = colours.get(role) or _EXTRA[len([r for r in colours if r not in ROLE_COLORS]) % len(_EXTRA)]
            colours.setdefault(role, colour)
        item: dict[str, Any] = {
            "title": str(titles[i] or ""), "notice": str(notices[i] or ""), "role": role or "",
            "color": colour, "sk": sk_index[key], "frames": int(len(idx)), "fps": round(float(fps), 4),
            "duration": round(float(m.duration), 3), "centre": [round(c[0], 3), round(c[1], 3)],
            "pos": _encode(pos),
        }
        hi = _joint_indices(m, highlights[i])
        if hi:
            item["highlight"] = hi
        if meshes[i] is not None and mesh_count < MAX_MESHES:
            verts, faces = meshes[i]
            verts = np.asarray(verts, dtype=np.float64)
            mi = _frames(len(verts), MAX_MESH_FRAMES)
            v = verts[mi].copy()
            v[..., 1] -= floor
            item["mesh"] = {"vertices": int(v.shape[1]), "frames": int(len(mi)),
                            "fps": round(float(len(mi) / max(m.duration, 1e-6)), 4),
                            "pos": _encode(v),
                            "faces": base64.b64encode(np.asarray(faces, dtype="<u4").tobytes()).decode("ascii")}
            mesh_count += 1
        items.append(item)

    if legend is None:
        legend = []
        if any(it["color"] is None for it in items):
            legend += SIDE_LEGEND
        for role, colour in colours.items():
            legend.append((colour, ROLE_COLORS[role][1] if role in ROLE_COLORS else role))
        if colours:
            legend.append(("", "darker limbs = subject's left, lighter = right"))
        if any("highlight" in it for it in items):
            legend.append((HIGHLIGHT_COLOR, f"large gold dots: {highlight_label}"))
    if dropped:
        caption = (caption + " " if caption else "") + f"({dropped} more motions not shown; the limit is {MAX_PLAYER_MOTIONS}.)"
    payload = {
        "format": FORMAT, "id": uuid.uuid4().hex[:12], "layout": layout, "autoplay": bool(autoplay),
        "skeleton": bool(show_skeleton),
        "skeletons": skeletons, "motions": items, "floor_offset": round(-floor, 4),
        "scale": {"height": round(height, 3), "radius_grid": round(radius_grid, 3),
                  "radius_overlay": round(radius_overlay, 3), "overlay_centre": [round(v, 3) for v in overlay_centre]},
        "legend": [{"color": c, "label": t} for c, t in legend],
        "caption": caption,
    }
    return payload


#: The largest .glb the player takes (it travels inside the payload, base64).
MAX_GLB_BYTES = 32 * 2**20
GLB_LEGEND = ("#d9b38c", "rigged body (.glb): its own skin and joint animation, as Blender, Unity and three.js play it")


def _glb_parts(data: bytes) -> tuple[dict[str, Any], bytes]:
    """(glTF JSON, BIN chunk) of a GLB, checked (header, chunk bounds, JSON object); else UserError."""
    if len(data) > MAX_GLB_BYTES:
        raise UserError(f"the .glb is {len(data) / 2**20:.0f} MB; the viewer takes at most {MAX_GLB_BYTES // 2**20} MB")
    if len(data) < 20 or data[:4] != b"glTF":
        raise UserError("not a .glb file (binary glTF starts with 'glTF')")
    version, total = struct.unpack_from("<II", data, 4)
    if version != 2:
        raise UserError(f"only glTF 2.0 .glb files can be shown (this one says version {version})")
    off, js, blob = 12, None, b""
    while off + 8 <= min(total, len(data)):
        n, kind = struct.unpack_from("<II", data, off)
        if off + 8 + n > len(data):
            raise UserError("the .glb is truncated (a chunk runs past the end of the file)")
        if kind == 0x4E4F534A and js is None:
            try:
                js = json.loads(data[off + 8:off + 8 + n].decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                raise UserError("the .glb's JSON chunk is not valid JSON") from None
        elif kind == 0x004E4942 and not blob:
            blob = data[off + 8:off + 8 + n]
        off += 8 + n
    if not isinstance(js, dict):
        raise UserError("the .glb has no glTF JSON")
    return js, blob


def _glb_floats(gltf: dict[str, Any], blob: bytes, index: Any) -> np.ndarray | None:
    """A float accessor of a GLB as (count, width), or None when it is not one we can read."""
    widths = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
    try:
        a = gltf["accessors"][int(index)]
        if a.get("componentType") != 5126 or a.get("type") not in widths or "bufferView" not in a:
            return None
        v = gltf["bufferViews"][int(a["bufferView"])]
        n, count = widths[a["type"]], int(a["count"])
        start = int(v.get("byteOffset", 0)) + int(a.get("byteOffset", 0))
        stride = int(v.get("byteStride", 4 * n))
        if count < 1 or start < 0 or stride < 4 * n or start + stride * (count - 1) + 4 * n > len(blob):
            return None
        raw = np.frombuffer(blob, dtype=np.uint8, count=stride * (count - 1) + 4 * n, offset=start)
        rows = np.lib.stride_tricks.as_strided(raw, shape=(count, 4 * n), strides=(stride, 1))
        return np.ascontiguousarray(rows).view("<f4").reshape(count, n).astype(np.float64)
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def glb_payload(data: bytes, title: str = "", notice: str = "", caption: str = "") -> dict[str, Any]:
    """The player payload of a ``.glb`` character (a rigged, animated body such as :func:`motionviz.mesh.rig.
    export_rigged` writes): the file itself travels (base64) and player.js builds its skinned mesh, skeleton
    and animation; here only the header is checked and the view's size, frame rate and length are read
    (mesh bounds, the animated root translation, the animation's key times)."""
    gltf, blob = _glb_parts(data)
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for mesh in gltf.get("meshes", []) if isinstance(gltf.get("meshes"), list) else []:
        for prim in mesh.get("primitives", []) if isinstance(mesh, dict) else []:
            acc = (prim.get("attributes") or {}).get("POSITION") if isinstance(prim, dict) else None
            a = gltf.get("accessors", [])[acc] if isinstance(acc, int) and 0 <= acc < len(gltf.get("accessors", [])) else {}
            if isinstance(a, dict) and len(a.get("min", [])) == 3 and len(a.get("max", [])) == 3:
                lo, hi = np.minimum(lo, np.asarray(a["min"], float)), np.maximum(hi, np.asarray(a["max"], float))
    if not np.isfinite(lo).all():
        raise UserError("the .glb has no mesh with a bounded POSITION attribute to show")
    times, shift = [], np.zeros((1, 3))
    anims = gltf.get("animations") if isinstance(gltf.get("animations"), list) else []
    if anims and isinstance(anims[0], dict):
        samplers = anims[0].get("samplers", [])
        for ch in anims[0].get("channels", []):
            try:
                smp = samplers[int(ch["sampler"])]
                t = _glb_floats(gltf, blob, smp["input"])
                if t is not None:
                    times.append(t[:, 0])
                if ch["target"]["path"] == "translation":
                    tr = _glb_floats(gltf, blob, smp["output"])
                    if tr is not None and tr.shape[1] == 3 and len(shift) == 1:
                        shift = tr - tr[:1]
            except (KeyError, IndexError, TypeError, ValueError):
                continue
    t = max(times, key=len) if times else np.zeros(1)
    frames = int(len(t))
    duration = float(t.max()) if frames > 1 else 0.0
    fps = (frames - 1) / duration if duration > 0 else 20.0
    extras = gltf.get("extras") if isinstance(gltf.get("extras"), dict) else {}
    if isinstance(extras.get("fps"), (int, float)) and 0 < float(extras["fps"]) <= 1000:
        fps = float(extras["fps"])
    lo_all, hi_all = lo + shift.min(0), hi + shift.max(0)
    centre = ((lo[0] + hi[0]) / 2, (lo[2] + hi[2]) / 2)
    corners = np.array([[x, z] for x in (lo_all[0], hi_all[0]) for z in (lo_all[2], hi_all[2])]) - np.asarray(centre)
    radius = float(np.hypot(corners[:, 0], corners[:, 1]).max())
    floor = min(0.0, float(lo_all[1]))
    height = float(hi_all[1] - floor)
    item = {"title": str(title or ""), "notice": str(notice or ""), "role": "", "color": None, "sk": -1,
            "frames": max(1, frames), "fps": round(float(fps), 4), "duration": round(duration, 3),
            "centre": [round(centre[0], 3), round(centre[1], 3)],
            "glb": base64.b64encode(data).decode("ascii")}
    return {"format": FORMAT, "id": uuid.uuid4().hex[:12], "layout": "grid", "autoplay": True, "skeleton": False,
            "skeletons": [], "motions": [item], "floor_offset": round(-floor, 4),
            "scale": {"height": round(max(height, 0.5), 3), "radius_grid": round(max(radius, 0.3), 3),
                      "radius_overlay": round(max(radius, 0.3), 3), "overlay_centre": item["centre"]},
            "legend": [{"color": GLB_LEGEND[0], "label": GLB_LEGEND[1]}], "caption": caption}


def glb_value(path: str | Path, title: str = "", notice: str = "", caption: str = "") -> str:
    """:func:`glb_payload` of a file, as the JSON a :func:`player` component takes."""
    p = Path(path)
    if p.stat().st_size > MAX_GLB_BYTES:
        raise UserError(f"{p.name} is {p.stat().st_size / 2**20:.0f} MB; the viewer takes at most "
                        f"{MAX_GLB_BYTES // 2**20} MB")
    return json.dumps(glb_payload(p.read_bytes(), title or p.name, notice, caption), separators=(",", ":"))


def player_value(motions: Sequence[Motion] | Motion | None, **kw: Any) -> str | None:
    """What a callback returns for a :func:`player` component: the payload as JSON (``None`` clears it)."""
    if motions is None:
        return None
    if isinstance(motions, Motion):
        motions = [motions]
    return json.dumps(player_payload(motions, **kw), separators=(",", ":"))


def _asset_version() -> str:
    h = hashlib.sha256()
    for name in ("player.js",):
        p = STATIC_DIR / name
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()[:10]


_TEMPLATE = "<div class='mvp-host'></div>"
_JS_ON_LOAD = """
const show = () => window.motionvizPlayer.show(element, props.value);
if (window.motionvizPlayer) { show(); }
else { window.addEventListener('motionviz-player-ready', show, { once: true }); }
watch('value', () => { if (window.motionvizPlayer) window.motionvizPlayer.show(element, props.value); });
"""
_static_registered = False


def _register_static() -> None:
    global _static_registered
    if not _static_registered:
        gr.set_static_paths([str(STATIC_DIR)])
        _static_registered = True


def player_head() -> str:
    """The ``<script>`` that loads player.js (relative URL, so the app also works under a sub-path)."""
    return f'<script src="gradio_api/file={STATIC_DIR / "player.js"}?v={_asset_version()}"></script>'


def player(label: str | None = None, elem_id: str | None = None, value: str | None = None,
           min_height: int = 360, **kw: Any):
    """The player component: a ``gr.HTML`` whose value is :func:`player_value`'s JSON."""
    _register_static()
    classes = ["mv-player"] + list(kw.pop("elem_classes", []) or [])
    return gr.HTML(value=value, label=label, show_label=False, container=True, elem_id=elem_id,
                   elem_classes=classes, html_template=_TEMPLATE, js_on_load=_JS_ON_LOAD,
                   head=player_head(), min_height=min_height, **kw)


#: A view sent back for a GIF/MP4: at most this many characters of JSON and this many motions (the browser
#: sends the payload it shows, so it is checked like any upload).
MAX_VIEW_JSON = 12_000_000
MAX_VIEW_MOTIONS = 16
VIEW_FORMATS = [("GIF", "gif"), ("MP4", "mp4")]


def _is_hex(colour: Any) -> bool:
    return isinstance(colour, str) and len(colour) == 7 and colour[0] == "#" and all(
        c in "0123456789abcdefABCDEF" for c in colour[1:])


def _check_view_payload(value: Any) -> dict[str, Any]:
    """The player payload a browser sent back, parsed and checked (shape, counts, sizes); one-line
    :class:`~motionviz.core.errors.UserError` otherwise."""
    if not value:
        raise UserError("the player shows nothing yet; make a view first")
    if not isinstance(value, str) or len(value) > MAX_VIEW_JSON:
        raise UserError("the view is too large to export")
    try:
        pay = json.loads(value)
        motions, sks = pay["motions"], pay["skeletons"]
        if pay.get("format") != FORMAT or not motions or len(motions) > MAX_PLAYER_MOTIONS:
            raise ValueError("format")
        for m in motions:
            sk = sks[int(m["sk"])]
            J = len(sk["side"])
            frames = int(m["frames"])
            if not 0 < frames <= MAX_PLAYER_FRAMES or len(base64.b64decode(m["pos"])) != frames * J * 6:
                raise ValueError("positions")
            ends = [int(j) for bone in sk["bones"] for j in bone] + [int(sk["head"][0]), int(sk["head"][1])]
            if any(not 0 <= j < J for j in ends) or any(int(s) not in (0, 1, 2) for s in sk["side"]):
                raise ValueError("bones")
            if not (0 < float(m["fps"]) <= 1000 and 0 <= float(m["duration"]) <= 3600):
                raise ValueError("timing")
            if m.get("color") and not _is_hex(m["color"]):
                raise ValueError("colour")
        if not isinstance(pay.get("legend", []), list) or any(e.get("color") and not _is_hex(e["color"])
                                                              for e in pay.get("legend", [])):
            raise ValueError("legend")
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        raise UserError("the view could not be read; show it again and retry") from None
    if len(motions) > MAX_VIEW_MOTIONS:
        raise UserError(f"the view shows {len(motions)} motions; a GIF/MP4 takes at most {MAX_VIEW_MOTIONS}")
    return pay


def save_view_file(value: Any, fmt: Any, view_json: Any = None, progress=None) -> str:
    """Write what the player shows (its JSON ``value``; ``view_json``: the browser's layout and camera) as a
    GIF or MP4 in a fresh download folder; returns the path."""
    fmt = fmt if fmt in ("gif", "mp4") else "gif"
    pay = _check_view_payload(value)
    view = None
    if view_json:
        try:
            view = json.loads(view_json) if isinstance(view_json, str) and len(view_json) < 1000 else None
        except ValueError:
            view = None
        view = view if isinstance(view, dict) else None
    layout = (view or {}).get("layout") or pay.get("layout", "grid")
    stem = "motionviz-overlay" if layout == "overlay" or len(pay["motions"]) == 1 else "motionviz-grid"
    return str(save_view(pay, common.export_dir() / f"{stem}.{fmt}", fmt, view, progress))


def view_export(view: Any, elem_id: str) -> Any:
    """Under a :func:`player` ``view`` (whose ``elem_id`` is given): a "GIF/MP4 of this view" button and its
    download, drawn on the server with the player's colours, titles, layout and camera
    (:func:`motionviz.export.save_view`).  Returns the file component."""
    with gr.Row(elem_classes=["mv-view-export"]):
        fmt = gr.Radio(VIEW_FORMATS, value="gif", label="Save what the player shows", scale=1, min_width=150,
                       elem_id=f"{elem_id}-export-format")
        btn = gr.Button("GIF / MP4 of this view", scale=1, min_width=150, elem_id=f"{elem_id}-export")
        state = gr.Textbox(visible=False, elem_id=f"{elem_id}-export-view")
    out = gr.File(label="View as GIF / MP4 (grid or overlay as shown)", interactive=False, visible=True,
                  elem_id=f"{elem_id}-export-file")

    @user_error
    def on_export(value, fmt_, view_, progress=gr.Progress()):
        return save_view_file(value, fmt_, view_, progress_callback(progress))

    js = ("(v, f, s) => { const mp = window.motionvizPlayer; "
          "const el = document.getElementById(" + json.dumps(elem_id) + "); "
          "const st = mp && el ? mp.viewOf(el.querySelector('[data-mvp-id]') || el) : null; "
          "return [v, f, JSON.stringify(st || {})]; }")
    btn.click(on_export, [view, fmt, state], [out], js=js, api_name=f"{elem_id.replace('-', '_')}_export",
              concurrency_id=CPU_QUEUE, concurrency_limit=CPU_LIMIT)
    return out


def controls(label: str = "Settings") -> Any:
    """The accordion that holds a tab's controls beside its player (in a ``gr.Row(elem_classes=["mv-split"])``):
    open on wide screens; on phones the app puts the player first and closes this accordion on load
    (``PHONE_JS``), so the player is on screen without scrolling past the controls."""
    return gr.Accordion(label, open=True, elem_classes=["mv-controls"])


#: Run once on page load (``demo.load(js=...)``): on narrow screens close the controls accordions.
PHONE_JS = """() => {
  if (window.innerWidth > 720) return;
  const close = () => document.querySelectorAll('.mv-controls').forEach((acc) => {
    const b = acc.querySelector('button');
    if (b && !acc.dataset.mvClosed) { acc.dataset.mvClosed = '1'; if (b.getAttribute('aria-expanded') !== 'false') b.click(); }
  });
  close(); setTimeout(close, 500);
}"""
