"""``python -m motionviz video <file>``: a video -> a skeleton sequence on the common skeleton (:mod:`motionviz.video`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from tqdm import tqdm

from ..core.motion import DEFAULT_FPS
from ..export import save_bvh, save_json, save_npy, save_npz
from ..io.files import check_out
from ..video import MAX_SECONDS, VISIBILITY, video_to_motion


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help=f"video file (.mp4, .gif, .webm; at most {MAX_SECONDS:g} s)")
    parser.add_argument("--out", "-o", default=None,
                        help="output file: .npy (T, 15, 3) float32 metres at 20 fps (default <input>.npy), .npz "
                             "(the same array + its fps), .json or .bvh")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON summary (frames, fps, detected ratio, output)")
    parser.add_argument("--max-frames", type=int, default=None,
                        help=f"process only the first N frames (the {MAX_SECONDS:g} s limit still applies)")
    parser.add_argument("--threshold", type=float, default=VISIBILITY,
                        help=f"landmark visibility below which a joint counts as missing (default {VISIBILITY})")
    parser.add_argument("--no-inpaint", action="store_true", help="do not use the AE-GAN inpainter")
    parser.add_argument("--checkpoints", default=None, help="checkpoint folder (default $MOTIONVIZ_CHECKPOINTS)")


@contextlib.contextmanager
def _quiet_native_logs():
    """CLI only: MediaPipe's C++ logging writes straight to file descriptor 2; point it at /dev/null while
    the video is processed and yield a stream on the real stderr (progress bar, Python warnings)."""
    if os.environ.get("MOTIONVIZ_DEBUG"):
        yield sys.stderr
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield sys.stderr
        return
    real = os.fdopen(os.dup(saved), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    old = sys.stderr
    try:
        os.dup2(devnull, 2)
        sys.stderr = real
        yield real
    finally:
        sys.stderr = old
        real.close()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path(args.input).with_suffix(".npy")
    writers = {".npy": save_npy, ".npz": save_npz, ".json": save_json, ".bvh": save_bvh}
    out = check_out(out, tuple(writers))          # before the video is read: exactly this file, writable
    with _quiet_native_logs() as err:
        bar = tqdm(total=100, desc="video", unit="%", file=err, leave=False, disable=not err.isatty())

        def progress(f: float, text: str = "") -> None:
            if bar is not None:
                bar.n = int(round(100 * f))
                bar.set_postfix_str(text, refresh=True)

        try:
            res = video_to_motion(args.input, max_frames=args.max_frames, threshold=args.threshold,
                                  checkpoint_dir=args.checkpoints, use_inpainter=not args.no_inpaint,
                                  progress=progress)
        finally:
            if bar is not None:
                bar.close()
    # the frame-rate contract: every file we write holds 20 fps motion (the models' rate; .npy arrays
    # carry no rate, so readers assume it), whatever the video's own rate
    written = res.motion.resample(DEFAULT_FPS)
    path = writers[out.suffix.lower()](written, out)
    summary = res.summary(str(path))
    summary.update({"frames": written.num_frames, "fps": DEFAULT_FPS, "source_frames": res.motion.num_frames,
                    "source_fps": round(res.motion.fps, 3)})
    if args.json:
        print(json.dumps(summary))
    else:
        rec = res.recognition
        print(f"{path}: {summary['frames']} frames at {summary['fps']:g} fps, person in "
              f"{100 * summary['detected_ratio']:.0f}% of frames; {res.note}"
              + (f"; looks like {rec['title']} (p={rec['probability']:.2f})" if rec else ""))
    return 0
