"""``python -m motionviz export <motion file>``: convert a motion file to npy/npz/json/bvh/gif/mp4/html/glb
(:mod:`motionviz.export`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..core.errors import UserError
from ..core.limits import check_budget
from ..core.motion import DEFAULT_FPS, Motion, MotionLabels
from ..core.skeleton import COMMON, SKELETONS
from ..data import load_user_file
from ..data.userfile import skeleton_for_joint_count
from ..export import FORMATS, save_bvh, save_gif, save_glb, save_html, save_json, save_mp4, save_npy, save_npz
from ..io.files import check_out
from ..mesh.rig import RIG_JOINTS


# ------------------------------------------------------------------------------------------------
# CLI: python -m motionviz export --input FILE --format FMT [--out PATH]
# ------------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", "-i", required=True,
                        help="motion file: .npy (T,J,3) / .npz (joints + fps) / .csv / .bvh / .bvh.xz / .json "
                             "(motionviz/1)")
    parser.add_argument("--format", "-f", required=True, choices=sorted(FORMATS),
                        help="output format (glb: the Anny body, rigged and animated)")
    parser.add_argument("--out", "-o", default=None,
                        help="output file (or directory); default: next to the input with the new extension")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate of .npy/.csv input (default 20) / resample other input to this rate")
    parser.add_argument("--skeleton", default=None, help="skeleton name for .npy/.csv input (default: guessed)")
    parser.add_argument("--unit", default="cm", choices=("cm", "m"), help="BVH output units (default cm)")
    parser.add_argument("--rig", default="motionviz", choices=("motionviz", "mixamo", "mixamo-plain", "smpl"),
                        help="BVH joint names: motionviz (default), mixamo (mixamorig:LeftUpLeg ...; retargets "
                             "in Blender / Unity / Unreal), mixamo-plain (no prefix), smpl")
    parser.add_argument("--clean-feet", action="store_true",
                        help="BVH: remove foot sliding (feet pinned while in contact with the floor)")
    parser.add_argument("--vertex-animated", action="store_true",
                        help="glb: one morph target per frame (at most 120 frames) instead of a rigged, "
                             "skinned body")
    parser.add_argument("--index", type=int, default=None,
                        help="a (N, T, J, 3) batch (as written by `sample`): export motion number INDEX "
                             "(default: every motion, one file each: <out>_000.<ext> ...)")


def _load_input(path: str, fps: float | None, skeleton: str | None) -> Motion:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"input file not found: {path}")
    kw = {}
    if fps is not None:
        kw["fps"] = fps
    if skeleton is not None:
        kw["skeleton"] = skeleton
    m = load_user_file(p, **kw)
    if fps is not None and abs(m.fps - fps) > 1e-6:
        m = m.resample(fps)
    return m


def _load_batch(path: str, fps: float | None, skeleton: str | None, index: int | None) -> list[Motion] | None:
    """The motions of a (N, T, J, 3) ``.npy`` batch (all, or number ``index``); None for other input.
    The arrays are at 20 fps (the ``sample`` contract) unless ``--fps`` says otherwise."""
    p = Path(path)
    if p.suffix.lower() != ".npy" or not p.is_file():
        return None
    try:
        a = np.load(p, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None                       # _load_input gives the one-line reason
    if a.ndim != 4:
        if index is not None:
            raise UserError(f"{p.name} holds one motion {tuple(a.shape)}; --index is for (N, T, J, 3) batches")
        return None
    if a.dtype.kind not in "fiu" or a.shape[-1] != 3:
        raise UserError(f"{p.name}: a batch of motions must be numbers of shape (N, T, J, 3), got "
                        f"{a.dtype} {tuple(a.shape)}")

    check_budget(int(a.shape[1]), int(a.shape[2]), p.name)     # each motion, before it is read
    N = a.shape[0]
    if N == 0:
        raise UserError(f"{p.name} holds no motions")
    if index is not None and not 0 <= index < N:
        raise UserError(f"{p.name} holds {N} motions; --index {index} is out of range (0-{N - 1})")
    if skeleton is not None and skeleton not in SKELETONS:
        raise UserError(f"unknown skeleton {skeleton!r}; choose from {', '.join(SKELETONS)}")
    sk = SKELETONS[skeleton] if skeleton else skeleton_for_joint_count(a.shape[2])
    rate = DEFAULT_FPS if fps is None else float(fps)
    out = []
    for i in ([index] if index is not None else range(N)):
        x = np.array(a[i], dtype=np.float32)
        if np.isnan(x).all():
            raise UserError(f"{p.name}[{i}]: every value is NaN")
        out.append(Motion(x, sk, rate, MotionLabels(source=f"{p.name}[{i}]")))
    return out


def _write(m: Motion, fmt: str, out: Path, args: argparse.Namespace) -> Path:
    if fmt == "bvh":
        return save_bvh(m, out, unit=args.unit, rig=args.rig, clean_feet=args.clean_feet)
    if fmt == "glb":
        return save_glb(m, out, vertex_animated=args.vertex_animated)
    if fmt in ("gif", "mp4"):
        bar = tqdm(total=100, desc=f"rendering {fmt}", unit="%", leave=False)

        def progress(f: float, text: str) -> None:
            bar.n = int(100 * f)
            bar.refresh()

        path = (save_gif if fmt == "gif" else save_mp4)(m, out, progress=progress)
        bar.close()
        return path
    return {"npy": save_npy, "npz": save_npz, "json": save_json, "html": save_html}[fmt](m, out)


def _written(m: Motion, fmt: str, args: argparse.Namespace) -> str:
    """The joints the file holds, for the 'wrote' line: a BVH with a target rig or clean feet is on the
    common skeleton, a rigged GLB has the rig's joints."""
    if fmt == "bvh" and (args.rig != "motionviz" or args.clean_feet) and m.skeleton.name != "common":
        return f"{len(COMMON)} joints, retargeted from {len(m.skeleton)}"
    if fmt == "glb":
        return "Anny body, morph targets" if args.vertex_animated else f"Anny body rigged to {len(RIG_JOINTS)} joints"
    return f"{len(m.skeleton)} joints"


def run(args: argparse.Namespace) -> int:
    fmt = args.format
    if (args.rig != "motionviz" or args.clean_feet) and fmt != "bvh":
        raise UserError("--rig and --clean-feet apply to --format bvh only")
    if getattr(args, "vertex_animated", False) and fmt != "glb":
        raise UserError("--vertex-animated applies to --format glb only")
    src = Path(args.input)
    base = src.name
    for ext in (".bvh.xz", ".npy", ".npz", ".csv", ".bvh", ".json"):
        if base.lower().endswith(ext):
            base = base[: -len(ext)]
            break
    if args.out is None:
        out = src.with_name(base + FORMATS[fmt])
    else:
        out = Path(args.out)
        if out.is_dir() or str(args.out).endswith(os.sep):
            out = out / (base + FORMATS[fmt])
    # before the input is read: the file written is exactly `out` (a named file must have the format's
    # ending; a folder gets <input name><ending>), in a folder we can write

    out = check_out(out, (FORMATS[fmt],))
    if out.resolve() == src.resolve():
        raise UserError(f"refusing to overwrite the input file {src}")
    batch = _load_batch(args.input, args.fps, args.skeleton, args.index)
    m = batch[0] if batch is not None else _load_input(args.input, args.fps, args.skeleton)
    if batch is not None and len(batch) > 1:
        # one file per motion: <out stem>_000.<ext>, _001 ...
        stem = out.name[: -len(FORMATS[fmt])] if out.name.lower().endswith(FORMATS[fmt]) else out.name
        width = max(3, len(str(len(batch) - 1)))
        paths = [_write(mi, fmt, out.with_name(f"{stem}_{i:0{width}d}{FORMATS[fmt]}"), args)
                 for i, mi in enumerate(batch)]
        print(f"wrote {len(paths)} files {paths[0].name} ... {paths[-1].name} in {paths[0].parent} "
              f"({m.num_frames} frames each, {_written(m, fmt, args)}, {m.fps:g} fps)")
        return 0
    path = _write(m, fmt, out, args)
    print(f"wrote {path} ({m.num_frames} frames, {_written(m, fmt, args)}, {m.fps:g} fps, "
          f"{path.stat().st_size / 1024:.0f} KB)")
    return 0
