"""``python -m motionviz data summary [--json]`` and ``python -m motionviz data list --dataset X``."""

from __future__ import annotations

import argparse
import json
import sys

from ..core.errors import UserError
from ..data.index import dataset_index, summary
from ..data.paths import data_root
from ..data.registry import DATASETS, EXTRA_DATASETS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("summary", "list"), help="summary: counts per dataset; "
                        "list: one line per sequence")
    parser.add_argument("--json", action="store_true", help="print JSON (summary: one object keyed by dataset)")
    parser.add_argument("--dataset", choices=DATASETS + EXTRA_DATASETS, help="dataset (list; summary: only this)")
    parser.add_argument("--label", help="only sequences with this label, e.g. ui-prmd:m07 or m07")
    parser.add_argument("--root", help="data folder (default: $MOTIONVIZ_DATA or ../shared/data)")
    parser.add_argument("--limit", type=int, default=None, help="list at most this many rows")


def run(args: argparse.Namespace) -> int:
    root = data_root(args.root)
    if args.action == "summary":
        s = summary(root, [args.dataset] if args.dataset else None)
        if args.json:
            print(json.dumps(s))
            return 0
        print(f"data root: {root}")
        print(f"{'dataset':<10} {'sequences':>9} {'frames':>9} {'joints':>6} {'subjects':>8} {'labels':>6}")
        for name, d in s.items():
            print(f"{name:<10} {d['sequences']:>9,} {d['frames']:>9,} {d['joints']:>6} {d['subjects']:>8} "
                  f"{d['labels']:>6}")
        if "kimore" in s:
            print(f"(kimore raw samples, not counted above: {s['kimore']['raw_sequences']} sequences, "
                  f"{s['kimore']['raw_frames']:,} frames)")
        return 0
    if not args.dataset:
        raise UserError("data list needs --dataset (one of " + ", ".join(DATASETS + EXTRA_DATASETS) + ")")
    rows = dataset_index(args.dataset, root)
    if args.label:
        want = args.label if ":" in args.label else f"{args.dataset.split('-raw')[0]}:{args.label}"
        rows = [r for r in rows if r["label"] == want]
        if not rows:
            raise UserError(f"no sequences with label {want!r} in {args.dataset}")
    if args.limit is not None:
        rows = rows[:max(0, args.limit)]
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'label':<28} {'subject':<36} {'style':<14} {'correct':<7} {'frames':>6}  source")
    for r in rows:
        c = {True: "yes", False: "no", None: "-"}[r["correct"]]
        print(f"{r['label']:<28} {r['subject']:<36} {r['style'] or '-':<14} {c:<7} {r['frames']:>6}  {r['source']}")
    print(f"{len(rows)} sequences", file=sys.stderr)
    return 0
