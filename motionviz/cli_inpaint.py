"""``python -m motionviz inpaint`` and ``python -m motionviz eval-inpaint``: the AE-GAN inpainter.

``inpaint --input in.npy [--mask mask.npy] --window 32 --shift 8 --steps 200 --out out.npy``
    Completes / cleans a (T, J, 3) (or (T, J, 2)) array; NaN joints and mask==False are missing.  J = 15
    is the common skeleton; another joint count of a known skeleton (e.g. 17 = COCO-17, 33 = BlazePose)
    is mapped to the common skeleton first (the output is then on the common skeleton).
``eval-inpaint --json``
    Corrupts held-out (test split) motions and compares the corrupted input, linear interpolation +
    Savitzky-Golay smoothing and the AE-GAN (MPJPE, PCK), plus the KERAAL video tracks vs the Kinect.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .errors import UserError

__all__ = ["add_arguments", "run", "read_input"]


def add_arguments(parser: argparse.ArgumentParser, verb: str = "inpaint") -> None:
    parser.add_argument("--checkpoint", default=None,
                        help="AE-GAN checkpoint (default: checkpoints/aegan.safetensors)")
    parser.add_argument("--shift", type=int, default=8, help="frames between window starts (default 8)")
    parser.add_argument("--steps", type=int, default=200, help="latent optimisation steps per window (default 200)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--preset", default="tuned", choices=["tuned", "thesis"],
                        help="latent-search settings: 'tuned' (Adam lr 0.01, weights 10/5/0.05, windows averaged; "
                             "chosen on the validation split) or 'thesis' (lr 1.0, beta1 0.8, 10/5/0.5, per-frame "
                             "choice, as in Mourot 2019)")
    parser.add_argument("--lr", type=float, default=None, help="override the preset's Adam learning rate")
    parser.add_argument("--critic-weight", type=float, default=None, help="override the preset's critic weight")
    if verb == "inpaint":
        parser.add_argument("--input", required=True, help="(T, J, 3) or (T, J, 2) float .npy at --fps (NaN = "
                                                            "missing), or a motion file (.bvh/.json/.csv, any "
                                                            "skeleton, read at its own rate and resampled to 20 fps)")
        parser.add_argument("--mask", default=None, help="(T, J) boolean .npy, True = observed")
        parser.add_argument("--window", type=int, default=None,
                            help="window length in frames (must equal the model's, 32 by default)")
        parser.add_argument("--out", required=True, help="output .npy (float32, same shape as the input on "
                                                          "the common skeleton)")
        parser.add_argument("--fps", type=float, default=20.0,
                            help="frame rate of the input (resampled to the model's 20 fps and back)")
        combine = parser.add_mutually_exclusive_group()
        combine.add_argument("--average", action="store_true", default=None,
                             help="average the overlapping windows' candidates")
        combine.add_argument("--select", action="store_true", default=None,
                             help="choose each frame from the window that best fits its observed joints")
        parser.add_argument("--denoise", action="store_true",
                            help="also replace observed joints by the model's output (noisy input)")
        parser.add_argument("--json", action="store_true", help="print a JSON summary")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    else:
        parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
        parser.add_argument("--sequences", type=int, default=10,
                            help="held-out sequences per corruption (default 10)")
        parser.add_argument("--max-frames", type=int, default=128, help="crop each sequence to this many frames (default 128)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--pck", type=float, default=0.05, help="PCK threshold in metres (default 0.05)")
        parser.add_argument("--rates", default="0.1,0.3,0.5", help="missing-joint rates (default 0.1,0.3,0.5)")
        parser.add_argument("--datasets", default="ui-prmd,kimore,irds",
                            help="held-out test data (default ui-prmd,kimore,irds: held-out subjects)")
        parser.add_argument("--compare", default="thesis", choices=["thesis", "tuned", "none"],
                            help="also evaluate this preset (default thesis; none = skip)")
        parser.add_argument("--no-keraal", action="store_true", help="skip the KERAAL video-track evaluation")
        parser.add_argument("--data-root", default=None)
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _progress_bar(disabled: bool, desc: str):
    from tqdm import tqdm

    bar = tqdm(total=1000, desc=desc, file=sys.stderr, disable=disabled, dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {elapsed}<{remaining}")

    def cb(fraction: float, text: str = "") -> None:
        n = int(round(1000 * min(max(fraction, 0.0), 1.0)))
        if n > bar.n:
            bar.update(n - bar.n)
        if text:
            bar.set_description_str(text[:60], refresh=False)

    return bar, cb


def read_input(path: str, mask_path: str | None) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Load the input array (+ mask) -> (joints (T, J, D) float32, mask or None, skeleton name)."""
    from .skeleton import COMMON
    from .data.userfile import skeleton_for_joint_count

    def _load(p: str, what: str) -> np.ndarray:
        if not Path(p).is_file():
            raise UserError(f"{what} file not found: {p}")
        try:
            return np.load(p, allow_pickle=False)
        except ValueError as e:
            raise UserError(f"{what} {p} is not a plain numeric .npy array ({str(e).splitlines()[0]})") from None
        except OSError as e:
            raise UserError(f"cannot read {what} {p}: {e}") from None

    if not path.lower().endswith(".npy"):
        # a motion file (.bvh / .json / .csv ...): any skeleton, its own frame rate -> common, 20 fps
        from .data import load_user_file
        from .motion import DEFAULT_FPS

        if mask_path:
            raise UserError("--mask goes with a .npy input; a motion file marks missing joints as NaN/null")
        m = load_user_file(path).retarget(COMMON).resample(DEFAULT_FPS)
        return m.joints.astype(np.float32), None, COMMON.name
    x = _load(path, "input")
    if x.dtype.kind not in "fiu":
        raise UserError(f"input {path}: expected numbers, got dtype {x.dtype}")
    if x.ndim != 3 or x.shape[-1] not in (2, 3):
        raise UserError(f"input {path}: expected shape (frames, joints, 3) or (frames, joints, 2), got {x.shape}")
    if x.shape[0] < 1:
        raise UserError("the input has no frames")
    if np.isinf(x).any():
        raise UserError("the input contains infinite values (use NaN for missing joints)")
    mask = None
    if mask_path:
        mask = _load(mask_path, "mask")
        if mask.shape != x.shape[:2]:
            raise UserError(f"mask {mask_path} has shape {mask.shape}; the input needs {x.shape[:2]} (frames, joints)")
        if mask.dtype != bool:
            if mask.dtype.kind not in "biuf" or not np.isin(mask, (0, 1)).all():
                raise UserError("the mask must hold booleans (True/1 = observed, False/0 = missing)")
            mask = mask.astype(bool)
    sk = COMMON if x.shape[1] == len(COMMON) else skeleton_for_joint_count(x.shape[1])
    return x.astype(np.float32), mask, sk.name


def _run_inpaint(args: argparse.Namespace) -> int:
    import torch

    from .inpaint import inpaint, load_model
    from .skeleton import COMMON, get_skeleton, retarget, retarget_mask

    check_out_path(args.out)                       # before any work: the file written is exactly --out
    x, mask, sk_name = read_input(args.input, args.mask)
    if not (np.isfinite(args.fps) and 1 <= args.fps <= 240):
        raise UserError(f"--fps must be between 1 and 240, got {args.fps}")
    model = load_model(args.checkpoint)
    observed = np.isfinite(x).all(-1) if mask is None else (mask & np.isfinite(x).all(-1))
    if sk_name != COMMON.name:
        sk = get_skeleton(sk_name)
        observed = retarget_mask(observed, sk, COMMON)
        x = retarget(np.where(np.isfinite(x), x, 0.0), sk, COMMON)
        x[~observed] = np.nan
    T0 = x.shape[0]
    xin = np.where(observed[..., None], x, np.nan).astype(np.float32)
    if abs(args.fps - 20.0) > 1e-6:
        xin = _resample(xin, args.fps, 20.0)
    st = _settings(args)
    bar, cb = _progress_bar(args.no_progress, "inpainting")
    try:
        with torch.inference_mode(False):
            res = inpaint(model, xin, None, window=args.window, shift=args.shift, steps=args.steps,
                          keep_observed=not args.denoise, progress=cb, **st)
    finally:
        bar.close()
    out = res.joints
    if abs(args.fps - 20.0) > 1e-6:
        out = _resample(out, 20.0, args.fps, frames=T0)
        if not args.denoise:
            out[observed] = x[observed]
    save_npy_atomic(args.out, out.astype(np.float32))
    summary = {"out": str(args.out), "frames": int(out.shape[0]), "joints": int(out.shape[1]),
               "dims": int(out.shape[2]), "skeleton_in": sk_name, "missing_fraction": round(float(1 - observed.mean()), 4),
               "windows": len(res.starts), "seconds": round(res.seconds, 2)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {args.out}: {out.shape[0]} frames x {out.shape[1]} joints x {out.shape[2]} "
              f"({summary['missing_fraction'] * 100:.1f} % missing filled, {res.seconds:.1f} s)")
    return 0


def _settings(args: argparse.Namespace) -> dict:
    from .inpaint import preset

    st = preset(args.preset)
    if args.lr is not None:
        if not (np.isfinite(args.lr) and 0 < args.lr <= 100):
            raise UserError(f"--lr must be in (0, 100], got {args.lr}")
        st["lr"] = float(args.lr)
    if args.critic_weight is not None:
        if not (np.isfinite(args.critic_weight) and 0 <= args.critic_weight <= 100):
            raise UserError(f"--critic-weight must be in [0, 100], got {args.critic_weight}")
        st["weights"] = (st["weights"][0], st["weights"][1], float(args.critic_weight))
    if getattr(args, "average", None):
        st["average"] = True
    if getattr(args, "select", None):
        st["average"] = False
    return st


def check_out_path(out: str | Path, suffix: str = ".npy") -> Path:
    """``--out`` as given, checked before any work: it must end in ``suffix`` (so the file written is exactly
    the one named; ``np.save`` would append ``.npy`` to ``x.txt``) and must not be a folder."""
    from .cliio import check_out

    return check_out(out, (suffix,))


def save_npy_atomic(out: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` to exactly ``out`` (a temporary file in the same folder, then a rename), no pickle."""
    from .cliio import atomic_write

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)

    return atomic_write(check_out_path(out), write)


def _resample(x: np.ndarray, fps_in: float, fps_out: float, frames: int | None = None) -> np.ndarray:
    """Linear resampling in time of (T, J, D); NaN where a neighbour is NaN."""
    T = x.shape[0]
    n = frames if frames is not None else max(1, int(round((T - 1) * fps_out / fps_in)) + 1)
    t = np.clip(np.arange(n) * (fps_in / fps_out), 0, T - 1)
    i0 = np.floor(t).astype(int)
    i1 = np.minimum(i0 + 1, T - 1)
    w = (t - i0)[:, None, None]
    return (x[i0] * (1 - w) + x[i1] * w).astype(np.float32)


def _run_eval(args: argparse.Namespace) -> int:
    from .inpaint import evaluate, load_model

    try:
        rates = tuple(float(r) for r in args.rates.split(",") if r.strip())
    except ValueError:
        raise UserError(f"--rates must be comma-separated numbers, got {args.rates!r}") from None
    if not rates or any(not 0 < r < 1 for r in rates):
        raise UserError("--rates must be fractions between 0 and 1")
    if not 1 <= args.sequences <= 1000:
        raise UserError("--sequences must be between 1 and 1000")
    if not 0 < args.pck < 10:
        raise UserError("--pck must be a positive distance in metres")
    model = load_model(args.checkpoint)
    bar, cb = _progress_bar(args.no_progress, "eval-inpaint")
    try:
        if args.lr is not None or args.critic_weight is not None:
            raise UserError("eval-inpaint compares the named presets; --lr / --critic-weight apply to inpaint only")
        result = evaluate(model, sequences=args.sequences, max_frames=args.max_frames, steps=args.steps,
                          settings=args.preset, compare=None if args.compare == "none" else args.compare,
                          shift=args.shift, seed=args.seed, rates=rates, pck=args.pck,
                          keraal=not args.no_keraal, root=args.data_root, progress=cb,
                          datasets=tuple(d.strip() for d in args.datasets.split(",") if d.strip()))
    finally:
        bar.close()
    if args.json:
        print(json.dumps(result))
    else:
        print(f"AE-GAN inpainting at {int(100 * result['top_rate'])} % missing joints: MPJPE input "
              f"{result['mpjpe_input'] * 100:.2f} cm, baseline {result['mpjpe_baseline'] * 100:.2f} cm, "
              f"AE-GAN {result['mpjpe_aegan'] * 100:.2f} cm; {result['seconds_per_300_frames']:.1f} s per 300 frames")
        for name, r in result["conditions"].items():
            print(f"  {name:>10}: MPJPE (cm) input {r['mpjpe_input'] * 100:6.2f}  baseline {r['mpjpe_baseline'] * 100:6.2f}  "
                  f"aegan {r['mpjpe_aegan'] * 100:6.2f}  (averaged {r['mpjpe_aegan_avg'] * 100:6.2f}, per-frame "
                  f"{r['mpjpe_aegan_select'] * 100:6.2f}, unblended {r['mpjpe_aegan_raw'] * 100:6.2f}"
                  + (f", thesis {r['mpjpe_aegan_thesis'] * 100:6.2f}" if "mpjpe_aegan_thesis" in r else "")
                  + f")   PCK@{args.pck * 100:g}cm "
                  f"{r['pck_input']:.3f} / {r['pck_baseline']:.3f} / {r['pck_aegan']:.3f}")
        for tname, r in (result.get("keraal") or {}).get("mean", {}).items():
            print(f"  KERAAL {tname:>9} vs Kinect (2-D, cm): " + "  ".join(
                f"{k[6:]} {v * 100:.2f}" for k, v in r.items()))
    return 0


def run(args: argparse.Namespace) -> int:
    import torch

    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if not 1 <= args.shift <= 256:
        raise UserError(f"--shift must be between 1 and 256, got {args.shift}")
    if not 0 <= args.steps <= 5000:
        raise UserError(f"--steps must be between 0 and 5000, got {args.steps}")
    if getattr(args, "verb", "inpaint") == "eval-inpaint":
        return _run_eval(args)
    return _run_inpaint(args)
