"""``python -m motionviz bench``: measure speed and print JSON (the sections of :mod:`motionviz.evaluation.bench`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import UserError
from ..evaluation import bench
from ..io.files import atomic_write, check_out
from .common import set_threads


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object (default: readable text)")
    parser.add_argument("--quick", action="store_true", help="fewer settings and repeats (smoke run)")
    parser.add_argument("--quality", action="store_true",
                        help="also measure quality vs sampler steps of the diffusion model (minutes; needs the "
                             "data and the recogniser)")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated sections to run (default all: {', '.join(bench.SECTIONS)})")
    parser.add_argument("--checkpoint-dir", default=None,
                        help="folder with the checkpoints (sets $MOTIONVIZ_CHECKPOINTS for the sections)")
    parser.add_argument("--threads", default=None, help="torch CPU threads for the run (default: torch's choice)")
    parser.add_argument("--out", default=None, help="also write the JSON to this file")


def run(args: argparse.Namespace) -> int:
    set_threads(args.threads)
    if args.checkpoint_dir:
        if not Path(args.checkpoint_dir).is_dir():
            raise UserError(f"--checkpoint-dir {args.checkpoint_dir} is not a folder")
        os.environ["MOTIONVIZ_CHECKPOINTS"] = str(Path(args.checkpoint_dir).resolve())
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    if args.out:
        check_out(args.out, (".json",))            # before the (minutes-long) benchmark

    def progress(name: str) -> None:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)

    result = bench.run_bench(quick=bool(args.quick), only=only, progress=progress, quality=bool(args.quality))
    text = json.dumps(result, default=_jsonable)
    if args.out:
        atomic_write(Path(args.out), lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
    if args.json:
        print(text)
    else:
        _print_readable(result)
    return 0


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _print_readable(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"machine: {m['cpu_count']} CPUs ({m['cpu_model']}), torch {m['torch_version']} with "
          f"{m['torch_threads']} threads, {m['date_utc']}")
    for name in bench.SECTIONS:
        if name not in result:
            continue
        r = result[name]
        if "skipped" in r:
            print(f"{name}: skipped ({r['skipped']})")
        elif "error" in r:
            print(f"{name}: FAILED ({r['error']})")
        else:
            print(f"{name}: ({r.get('wall_seconds')} s)")
            for k, v in r.items():
                if k != "wall_seconds":
                    print(f"  {k}: {json.dumps(v, default=_jsonable)}")
    print(f"total: {result['total_seconds']} s")
