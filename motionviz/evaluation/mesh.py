"""Speed benchmark section of the body mesh (pose solve, export)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..core.skeleton import COMMON
from ..data import load_dataset
from ..mesh import _BODY_LOCK, MAX_EXPORT_FRAMES, anny_body
from ..mesh.animation import _ANIM_CACHE, demo_motion, mesh_animation
from ..mesh.export import export_sequence
from ..mesh.figure import mesh_figure
from ..viz.render import figure_json_size


def bench(quick: bool = False) -> dict[str, Any]:
    """Benchmark section ``mesh``: seconds to pose the Anny body for a 120-frame motion and build its
    browser figure (cold cache), that figure's JSON size, full-mesh skinning and GLB export times."""
    t0 = time.perf_counter()
    body = anny_body()
    load_s = time.perf_counter() - t0
    motion = demo_motion(120, body=body)
    source = "synthetic squat (demo_motion)"
    try:
        ms = [m for m in load_dataset("ui-prmd", limit=4) if m.num_frames >= 10]
        if ms:
            m = ms[0].retarget(COMMON).resample(20.0).normalise()
            reps = int(np.ceil(120 / m.num_frames))
            motion = m.with_joints(np.concatenate([m.joints] * reps)[:120])
            source = f"{m.labels.label} (UI-PRMD, repeated to 120 frames)"
    except Exception:  # noqa: BLE001 - no data: the synthetic motion is used
        pass
    repeats = 1 if quick else 3
    build, pose = [], []
    fig = None
    for _ in range(repeats):
        with _BODY_LOCK:
            _ANIM_CACHE.clear()
        t = time.perf_counter()
        anim = mesh_animation(motion, body="anny")
        pose.append(time.perf_counter() - t)
        fig = mesh_figure(motion, body="anny", anim=anim)
        build.append(time.perf_counter() - t)
    t = time.perf_counter()
    mesh_animation(motion, body="anny")
    cached = time.perf_counter() - t
    t = time.perf_counter()
    V = anim.vertices()
    skin_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        p = export_sequence(anim, Path(d) / "seq.glb", max_frames=30 if quick else MAX_EXPORT_FRAMES)
        glb_s = time.perf_counter() - t
        glb_bytes = p.stat().st_size
    return {
        "motion": source, "frames": motion.num_frames, "body": body.name, "vertices": body.num_vertices,
        "preview_faces": int(len(body.preview_faces)), "body_load_s": round(load_s, 3),
        "mesh_animation_120f_s": round(float(np.median(build)), 3),
        "pose_solve_120f_s": round(float(np.median(pose)), 4), "cached_s": round(cached, 5),
        "figure_json_bytes": figure_json_size(fig), "target_s": 2.0,
        "joint_error_m": round(anim.joint_error(), 4),
        "full_mesh_skin_120f_s": round(skin_s, 3), "full_vertices_shape": list(V.shape),
        f"glb_{30 if quick else MAX_EXPORT_FRAMES}f_s": round(glb_s, 3), "glb_bytes": glb_bytes,
    }
