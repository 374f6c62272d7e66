"""``python -m motionviz checkpoints``: list, verify and record the SHA-256 of the checkpoints.

    python -m motionviz checkpoints                 # list the files with their kind and whether they verify
    python -m motionviz checkpoints --verify        # exit 2 when a file does not match SHA256SUMS
    python -m motionviz checkpoints --update-sums   # after retraining: record every *.safetensors

``SHA256SUMS`` (``sha256sum`` format) lives beside the checkpoints; the app and every loader verify a file
against it before using it (:func:`motionviz.core.checkpoint.verify_checkpoint`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..core.checkpoint import SUMS_FILE, default_checkpoint_dir, file_sha256, read_metadata, read_sums, write_sums
from ..core.errors import CheckpointError, UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", default=None, help="checkpoint folder (default: $MOTIONVIZ_CHECKPOINTS or checkpoints/)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--update-sums", action="store_true",
                   help=f"record the SHA-256 of every *.safetensors in {SUMS_FILE} (after retraining)")
    g.add_argument("--verify", action="store_true", help=f"check every file against {SUMS_FILE} (exit 2 on a mismatch)")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    d = Path(args.dir) if args.dir else default_checkpoint_dir()
    if not d.is_dir():
        raise UserError(f"no checkpoint folder at {d}")
    files = sorted(p.name for p in d.glob("*.safetensors"))
    if args.update_sums:
        sums = write_sums(d, files)
        rows = [{"file": n, "sha256": sums[n]} for n in files]
        print(json.dumps(rows, indent=1) if args.json else "\n".join(f"{r['sha256']}  {r['file']}" for r in rows))
        print(f"wrote {d / SUMS_FILE} ({len(rows)} files)")
        return 0
    sums = read_sums(d) or {}
    rows, bad = [], []
    for n in files:
        digest = file_sha256(d / n)
        status = "ok" if sums.get(n) == digest else ("not recorded" if n not in sums else "MISMATCH")
        try:
            kind = read_metadata(d / n).get("kind", "?")
        except CheckpointError:
            kind, status = "?", "unreadable"
        rows.append({"file": n, "kind": kind, "sha256": digest, "status": status})
        if status != "ok":
            bad.append(n)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            print(f"{r['status']:>12}  {r['kind']:<10}  {r['file']}  {r['sha256'][:16]}…")
    if args.verify and bad:
        raise CheckpointError(f"{', '.join(bad)} do(es) not match {SUMS_FILE}; if you retrained them, run "
                              f"`python -m motionviz checkpoints --update-sums`")
    return 0
