"""``python -m motionviz <verb>``: the command-line interface.

Each verb lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``; this
file only dispatches.  User errors (:class:`motionviz.core.errors.UserError`) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import logging
import os
import sys

from ..core.errors import UserError

# verb -> (module, one-line help).  Modules are imported only when their verb runs.
VERBS: dict[str, tuple[str, str]] = {
    "data": ("motionviz.cli.data", "inspect the datasets (summary, list)"),
    "sample": ("motionviz.cli.sample", "generate motions with a trained model"),
    "interpolate": ("motionviz.cli.sample", "latent interpolation with the VAE"),
    "train": ("motionviz.cli.train", "train a model (diffusion, vae, aegan, recognizer)"),
    "bench": ("motionviz.cli.bench", "measure speed (JSON)"),
    "inpaint": ("motionviz.cli.inpaint", "complete / clean a skeleton sequence with the AE-GAN"),
    "eval-inpaint": ("motionviz.cli.inpaint", "evaluate the inpainter against baselines (JSON)"),
    "classify": ("motionviz.cli.evaluate", "classify motions with the recogniser (JSON)"),
    "evaluate": ("motionviz.cli.evaluate", "evaluate generative models against real data (JSON)"),
    "augment": ("motionviz.cli.evaluate", "generated-data augmentation study (JSON)"),
    "video": ("motionviz.cli.video", "video -> skeleton on the common skeleton"),
    "export": ("motionviz.cli.export", "convert a motion file to npy/json/bvh/gif/mp4/html/glb"),
    "checkpoints": ("motionviz.cli.checkpoints", "list / verify the checkpoints; --update-sums after retraining"),
}


class _OneLineParser(argparse.ArgumentParser):
    """Argument errors as one ``error: ...`` line (exit 2) instead of usage + message."""

    def error(self, message: str):  # type: ignore[override]
        print(f"error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


def _load(verb: str):
    module, _ = VERBS[verb]
    return importlib.import_module(module)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m motionviz", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", metavar="<verb>")
    for verb, (module, help_) in VERBS.items():
        try:
            mod = importlib.util.find_spec(module)
        except ModuleNotFoundError:
            mod = None
        if mod is None:
            continue
        p = sub.add_parser(verb, help=help_, description=help_)
        p.set_defaults(_verb=verb)
        # arguments are added lazily in main() so `--help` of one verb does not import all of them
    return parser


class _StderrHandler(logging.StreamHandler):
    """Plain lines on the *current* ``sys.stderr`` (looked up at each message, so a replaced stream is used)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _log_to_stderr() -> None:
    """The library's notes (``motionviz.*`` loggers at INFO, e.g. what training loaded) go to stderr as
    plain lines, once per process."""
    logger = logging.getLogger("motionviz")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
    logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _log_to_stderr()
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in VERBS:
        if argv and argv[0] not in ("-h", "--help"):
            print(f"error: unknown verb {argv[0]!r}; choose from {', '.join(VERBS)}", file=sys.stderr)
            return 2
        parser.print_help()
        return 0
    verb = argv[0]
    try:
        mod = _load(verb)
    except ModuleNotFoundError as e:
        print(f"error: the '{verb}' command is not available in this installation ({e})", file=sys.stderr)
        return 2
    vp = _OneLineParser(prog=f"python -m motionviz {verb}", description=VERBS[verb][1])
    mod.add_arguments(vp, verb) if _takes_verb(mod.add_arguments) else mod.add_arguments(vp)
    args = vp.parse_args(argv[1:])
    args.verb = verb
    try:
        return int(mod.run(args) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (OSError, MemoryError) as e:
        if os.environ.get("MOTIONVIZ_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1


def _takes_verb(fn) -> bool:
    return len(inspect.signature(fn).parameters) >= 2

