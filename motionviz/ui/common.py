"""Helpers shared by the app's tabs: the :class:`AppContext` each tab's ``build(ctx)`` receives, the
:func:`user_error` decorator for event handlers, download/export helpers and number/seed parsing.

A tab module ``motionviz/ui/<x>_tab.py`` exposes ``build(ctx: AppContext) -> None``; it is called inside
a ``gr.Tab`` of the app's ``gr.Blocks``.  Variables at module level are shared by every user: keep
models read-only there; per-user data goes into ``gr.State`` (``ctx.motions`` is the shared one).
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

import gradio as gr
from gradio.utils import get_upload_folder

from ..core.errors import UserError
from ..core.limits import (
    MAX_SEED,  # seeds are exact ints end to end
    whole_number,
)
from ..core.motion import Motion, MotionLabels
from ..export import export_motion

__all__ = [
    "AppContext", "user_error", "CPU_QUEUE", "CPU_LIMIT", "EXPORT_FORMATS", "FAST_FORMATS", "MAX_SEED",
    "MAX_SESSION_MOTIONS", "MAX_SESSION_JOINT_FRAMES", "export_dir", "export_files", "export_many", "to_int",
    "to_float", "resolve_seed",
    "add_motions", "motion_choices", "pick_motion", "motion_markdown", "motion_title", "progress_callback",
    "APP_ASSETS", "upload_folder", "uploaded_path", "uploaded_motion_file", "MAX_UPLOAD_BYTES", "seed_box",
    "RANDOM_SEED_MAX", "LONG_QUEUE", "LONG_LIMIT",
    "SESSION_TTL_S", "MAX_SESSIONS", "session_state", "REQUEST_TIME_LIMIT_S", "LONG_TIME_LIMIT_S",
    "RequestTimeout", "check_cost",
]

log = logging.getLogger("motionviz.ui")

F = TypeVar("F", bound=Callable[..., Any])

#: Events doing CPU-heavy work (model sampling, video/GIF rendering, dataset parsing) share this
#: ``concurrency_id`` so that at most ``CPU_LIMIT`` of them run at once across all users.
CPU_QUEUE = "cpu"
CPU_LIMIT = max(1, min(2, (os.cpu_count() or 1)))
#: Requests that take seconds to minutes (AE-GAN latent search, video -> skeleton) have their own queue with
#: one worker: however many are waiting, they hold at most one worker, so short requests (text -> motion,
#: data views) never wait behind them.  Their cost is bounded up front (e.g. inpainting windows x steps).
LONG_QUEUE = "long"
LONG_LIMIT = 1
#: Per-session state (the motion list, the motions shown) is dropped this long after its last change, and
#: the server keeps at most MAX_SESSIONS sessions (oldest dropped first).
SESSION_TTL_S = 1800
MAX_SESSIONS = 256
#: Wall-clock budget of one request, from its start (not its wait in the queue): checked between sampling
#: steps, inpainting windows and video frames (every ``progress`` call); over it the request stops with a
#: one-line error.  Long-queue requests (inpainting, video -> skeleton) get LONG_TIME_LIMIT_S.
REQUEST_TIME_LIMIT_S = 90.0
LONG_TIME_LIMIT_S = 240.0

#: File formats of :func:`motionviz.export.export_motion`, in the order shown to users.
EXPORT_FORMATS: tuple[str, ...] = ("npy", "json", "bvh", "html", "gif", "mp4")
#: Formats that are cheap to write (no video rendering); the default selection in the UI.
FAST_FORMATS: tuple[str, ...] = ("npy", "json", "bvh", "html")

#: random seeds (the "Random seed" box) are drawn from [0, RANDOM_SEED_MAX]: short enough to read and type
RANDOM_SEED_MAX = 2**31 - 1
#: The shared per-session motion list keeps at most this many motions (newest last) ...
MAX_SESSION_MOTIONS = 16
#: ... and at most this many joint-frames in all (float32: 12 bytes each, so ~24 MB; 16 generated motions of
#: 600 frames are 144,000; two of the largest uploads, 1,000,000 each, fit), the newest always kept.
MAX_SESSION_JOINT_FRAMES = 2_000_000

#: The app's own files (embedded sample, body template): callbacks may read these besides uploads.
APP_ASSETS = Path(__file__).resolve().parents[2] / "assets"

_EXPORT_ROOT_NAME = "motionviz-exports"
_EXPORT_MAX_AGE_S = 3600.0


@dataclass
class AppContext:
    """What every tab's ``build(ctx)`` gets.

    ``motions`` is a per-session ``gr.State`` holding ``list[Motion]`` (newest last, at most
    :data:`MAX_SESSION_MOTIONS`): a tab that produces motions returns ``add_motions(old, new)`` into it;
    a tab that consumes motions lists them with :func:`motion_choices` and reads one with
    :func:`pick_motion`.  To jump to another tab return ``ctx.select_tab("inpaint")`` into ``ctx.tabs``.
    """

    checkpoint_dir: Path
    data_root: Path | None                 # None when the data folder was not found
    data_message: str = ""                 # why data_root is None (where we looked), else ""
    data_sample: bool = False              # data_root is the embedded UI-PRMD sample (assets/sample)
    models: list[str] = field(default_factory=list)       # available_models(checkpoint_dir)
    motions: Any = None                    # gr.State(list[Motion]) shared by all tabs
    tabs: Any = None                       # the gr.Tabs container
    tab_ids: list[str] = field(default_factory=list)      # ids of the tabs that are shown
    demo: Any = None                       # the gr.Blocks (for demo.load events)

    def select_tab(self, tab_id: str):
        """An update for ``ctx.tabs`` that switches to tab ``tab_id`` (no change if it is not shown)."""
        if tab_id in self.tab_ids:
            return gr.Tabs(selected=tab_id)
        return gr.Tabs()


# ---- errors ------------------------------------------------------------------------------------
def _as_gr_error(exc: BaseException, fn_name: str) -> gr.Error:
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, UserError):
        return gr.Error(str(exc) or exc.__class__.__name__, print_exception=False)
    log.exception("unexpected error in %s", fn_name)
    msg = str(exc).splitlines()[0] if str(exc) else ""
    text = f"internal error ({exc.__class__.__name__}{': ' + msg[:200] if msg else ''}); it was logged"
    return gr.Error(text, print_exception=False)


def user_error(fn: F) -> F:
    """Decorate an event handler: :class:`UserError` becomes ``gr.Error`` with its one-line message;
    any other exception is logged with its traceback and shown as a short "internal error".

    Works for plain and generator functions and keeps the signature, so ``gr.Progress()`` defaults
    still work.
    """
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:  # noqa: BLE001 - converted for the user, logged
                raise _as_gr_error(exc, fn.__qualname__) from exc
        return gen_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - converted for the user, logged
            raise _as_gr_error(exc, fn.__qualname__) from exc
    return wrapper  # type: ignore[return-value]


class RequestTimeout(UserError):
    """A request ran past its wall-clock budget (:data:`REQUEST_TIME_LIMIT_S`)."""


def progress_callback(progress: Any, limit_s: float | None = None,
                      clock: Callable[[], float] = time.monotonic) -> Callable[[float, str], None]:
    """Adapt a ``gr.Progress`` to the package's ``progress(fraction, text)`` callback, with the request's
    time budget: the clock starts now (call this first in the handler) and any progress report after
    ``limit_s`` seconds (default :data:`REQUEST_TIME_LIMIT_S`) raises :class:`RequestTimeout`, a one-line
    error saying what to ask for instead.  The models report progress between sampling steps, windows and
    frames, so that is where a request stops."""
    limit = REQUEST_TIME_LIMIT_S if limit_s is None else float(limit_s)
    start = clock()

    def cb(fraction: float, text: str = "") -> None:
        spent = clock() - start
        if spent > limit:
            log.warning("request stopped after %.0f s (limit %.0f s) at %s", spent, limit, text or "?")
            raise RequestTimeout(f"this request took longer than {limit:.0f} s and was stopped (at "
                                 f"{100 * min(max(fraction, 0.0), 1.0):.0f}%); ask for fewer frames, steps or "
                                 "samples, or try again when the server is less busy")
        try:
            progress(float(min(max(fraction, 0.0), 1.0)), desc=text or None)
        except Exception:  # noqa: BLE001 - progress is cosmetic (e.g. no queue in tests)
            pass
    return cb


def check_cost(what: str, cost: int, limit: int, unit: str, hint: str) -> int:
    """A request's cost estimated up front (``cost`` in ``unit``, e.g. frames x steps x samples), refused
    with a one-line :class:`UserError` over ``limit`` before any work; returns ``cost``."""
    if cost > limit:
        raise UserError(f"{what}: this request costs {cost:,} {unit}, over the limit of {limit:,} per "
                        f"request; {hint}")
    return cost


# ---- numbers -----------------------------------------------------------------------------------
def to_int(value: Any, name: str, lo: int, hi: int) -> int:
    """``value`` as an exact whole number in [lo, hi], else :class:`UserError` naming ``name`` (ints and
    text are never rounded through ``float``)."""
    return whole_number(value, name, lo, hi)


def to_float(value: Any, name: str, lo: float, hi: float) -> float:
    """``value`` as a finite number in [lo, hi], else :class:`UserError` naming ``name``."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(f) and lo <= f <= hi):
        raise UserError(f"{name} must be between {lo:g} and {hi:g}, got {value!r}")
    return f


def resolve_seed(seed: Any, randomize: bool = False, rng: random.Random | None = None) -> int:
    """The seed to use: a fresh random one in [0, RANDOM_SEED_MAX] when ``randomize`` (return it to the
    seed box so the user can reproduce the result), else ``seed`` as an exact int in [0, MAX_SEED]."""
    if randomize:
        return (rng or random.SystemRandom()).randint(0, RANDOM_SEED_MAX)
    return to_int(seed, "seed", 0, MAX_SEED)


def seed_box(value: int = 0, label: str = "Seed", **kw: Any) -> gr.Textbox:
    """A seed input: a text box, because a browser number box holds only doubles (exact up to 2**53),
    and seeds go up to 2**63 - 1.  Callbacks read it with :func:`resolve_seed` / :func:`to_int`."""
    return gr.Textbox(str(value), label=f"{label} (0 … 2^63−1)", max_lines=1, **kw)


_NEW_LIST = object()


def session_state(value: Any = _NEW_LIST) -> gr.State:
    """A per-session ``gr.State`` (initial value ``value``, default an empty list) freed
    :data:`SESSION_TTL_S` seconds after its last change (Gradio keeps sessions otherwise until the server's
    session cap, 10,000 by default, is reached).  The whole session, this value included, is freed sooner
    when the browser disconnects (:mod:`motionviz.ui.sessions`)."""
    return gr.State([] if value is _NEW_LIST else value, time_to_live=SESSION_TTL_S)


# ---- uploaded files ----------------------------------------------------------------------------
def upload_folder() -> Path:
    """Gradio's upload (cache) folder, resolved: ``$GRADIO_TEMP_DIR``, else ``<system temp>/gradio``, as
    Gradio 6 decides it (``gradio.utils.get_upload_folder``).  Every file a visitor uploads lands here."""
    return Path(get_upload_folder()).resolve()


def uploaded_path(value: Any, what: str = "file") -> Path:
    """The resolved path of a file a visitor uploaded, else :class:`UserError`.

    ``value`` is what a ``gr.File(type="filepath")`` / ``gr.Video`` hands a callback: a path string, a
    ``PathLike``, or a FileData (object or dict with a ``path``).  The path is accepted only when, resolved
    with symlinks followed, it is a regular file inside Gradio's upload folder (:func:`upload_folder`) or
    the app's own :data:`APP_ASSETS`.  So no API client can make the app read an arbitrary server file by
    sending a FileData whose ``path`` was never uploaded.  Messages never contain the path or the file's
    content.
    """
    raw = value.get("path") if isinstance(value, dict) else getattr(value, "path", value)
    if raw is None or raw == "":
        raise UserError(f"no {what} was uploaded")
    if not isinstance(raw, (str, os.PathLike)):
        raise UserError(f"the {what} reference is not a file path; upload the {what} again")
    try:
        p = Path(raw).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise UserError(f"the uploaded {what} is missing; upload it again") from None
    roots = (upload_folder(), APP_ASSETS.resolve())
    if not any(p.is_relative_to(r) for r in roots):
        log.warning("refused a %s outside the upload folder", what)
        raise UserError(f"the {what} was not uploaded through this app; upload it again")
    if not p.is_file():
        raise UserError(f"the uploaded {what} is not a regular file; upload it again")
    return p


#: the largest motion file (recording) a visitor may upload
MAX_UPLOAD_BYTES = 64 * 1024 * 1024


def uploaded_motion_file(value: Any, what: str = "file", limit: int = MAX_UPLOAD_BYTES) -> Path:
    """:func:`uploaded_path` of an uploaded motion file that is neither empty nor larger than ``limit`` bytes,
    else :class:`UserError`."""
    p = uploaded_path(value, what)
    size = p.stat().st_size
    if size == 0:
        raise UserError(f"{p.name} is empty")
    if size > limit:
        raise UserError(f"{p.name} is {size / 2**20:.0f} MB; the limit is {limit // 2**20} MB")
    return p


# ---- the shared per-session motion list --------------------------------------------------------
def add_motions(motions: Sequence[Motion] | None, new: Motion | Iterable[Motion],
                limit: int = MAX_SESSION_MOTIONS, joint_frames: int = MAX_SESSION_JOINT_FRAMES) -> list[Motion]:
    """A new list: ``motions`` + ``new`` (newest last), keeping the newest ``limit`` motions whose
    joint-frames add up to at most ``joint_frames`` (the newest motion is always kept)."""
    out = list(motions or [])
    out.extend([new] if isinstance(new, Motion) else list(new))
    out = out[-limit:]
    total = 0
    for i in range(len(out) - 1, -1, -1):
        total += out[i].num_frames * len(out[i].skeleton)
        if total > joint_frames and i < len(out) - 1:
            return out[i + 1:]
    return out


def motion_title(motion: Motion) -> str:
    """A short human title: label (or text), subject, correctness, frames."""
    lab = motion.labels
    parts = [lab.label or (lab.text[:40] + ("…" if len(lab.text) > 40 else "")) or "motion"]
    return " · ".join(parts + label_details(lab) + [f"{motion.num_frames} frames"])


def label_details(labels: MotionLabels, style_title: Callable[[str], str] = str) -> list[str]:
    """The subject, style (through ``style_title``) and correctness of ``labels`` that are set, as title parts."""
    out = [str(labels.subject)] if labels.subject else []
    if labels.style:
        out.append(style_title(labels.style))
    if labels.correct is not None:
        out.append("correct" if labels.correct else "incorrect")
    return out


def motion_choices(motions: Sequence[Motion] | None) -> list[tuple[str, int]]:
    """Dropdown choices ``(title, index)`` for the session's motions, newest first."""
    ms = list(motions or [])
    return [(f"#{i + 1} {motion_title(m)}", i) for i, m in reversed(list(enumerate(ms)))]


def pick_motion(motions: Sequence[Motion] | None, index: Any) -> Motion:
    """The session motion at ``index`` (a choice value of :func:`motion_choices`)."""
    ms = list(motions or [])
    if not ms:
        raise UserError("there are no motions in this session yet: load one in the Data tab or "
                        "generate one first")
    if index is None or index == "":
        return ms[-1]
    i = to_int(index, "motion", 0, len(ms) - 1)
    return ms[i]


def motion_markdown(motion: Motion, extra: dict[str, Any] | None = None) -> str:
    """A Markdown table of a motion's metadata (label, subject, style, correct, score, fps, ...)."""
    lab = motion.labels
    rows: list[tuple[str, Any]] = [
        ("label", lab.label), ("dataset", lab.dataset), ("subject", lab.subject), ("style", lab.style),
        ("correct", None if lab.correct is None else ("yes" if lab.correct else "no")),
        ("score", None if lab.score is None else f"{lab.score:.3g}"),
        ("text", lab.text),
        ("skeleton", f"{motion.skeleton.name} ({len(motion.skeleton)} joints)"),
        ("fps", f"{motion.fps:g}"), ("frames", motion.num_frames), ("duration", f"{motion.duration:.2f} s"),
    ]
    missing = int((~motion.observed).sum())
    if missing:
        rows.append(("missing joints", f"{missing} joint-frames"))
    if lab.source:
        rows.append(("source file", f"`{lab.source}`"))
    for k, v in (extra or {}).items():
        rows.append((k, v))
    lines = ["| property | value |", "|---|---|"]
    for k, v in rows:
        if v is None or v == "":
            continue
        text = str(v).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| **{k}** | {text} |")
    return "\n".join(lines)


# ---- downloads ---------------------------------------------------------------------------------
def _export_root() -> Path:
    root = Path(tempfile.gettempdir()) / _EXPORT_ROOT_NAME
    root.mkdir(parents=True, exist_ok=True)
    return root


def _prune(root: Path, max_age_s: float = _EXPORT_MAX_AGE_S) -> None:
    now = time.time()
    for d in root.iterdir():
        try:
            if d.is_dir() and now - d.stat().st_mtime > max_age_s:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def export_dir() -> Path:
    """A fresh directory for one call's exports (under the system temp dir, which Gradio may serve).
    Directories older than an hour are removed on the way."""
    root = _export_root()
    _prune(root)
    return Path(tempfile.mkdtemp(prefix="call-", dir=root))


def _safe_stem(text: str) -> str:
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:60].strip("._")
    return stem or "motion"


def export_files(motion: Motion, formats: Iterable[str] | None = None, directory: Path | None = None,
                 stem: str | None = None, progress: Callable[[float, str], None] | None = None) -> list[str]:
    """Write ``motion`` in each of ``formats`` (default :data:`FAST_FORMATS`) into a fresh per-call
    directory via :func:`motionviz.export.export_motion`; return the file paths (for ``gr.File``)."""
    fmts = [f.lower().lstrip(".") for f in (formats if formats is not None else FAST_FORMATS)]
    if not fmts:
        raise UserError("choose at least one file format to download")
    bad = [f for f in fmts if f not in EXPORT_FORMATS]
    if bad:
        raise UserError(f"unknown format {bad[0]!r}; choose from {', '.join(EXPORT_FORMATS)}")
    out_dir = directory or export_dir()
    if stem:
        out_dir = out_dir / _safe_stem(stem)
        out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[str] = []
    for i, fmt in enumerate(dict.fromkeys(fmts)):
        if progress is not None:
            progress(i / len(fmts), f"writing {fmt}")
        paths.append(str(export_motion(motion, fmt, out_dir)))
    if progress is not None:
        progress(1.0, "done")
    return paths


def export_many(motions: Sequence[Motion], formats: Iterable[str] | None = None,
                progress: Callable[[float, str], None] | None = None) -> list[str]:
    """Export several motions into one per-call directory (one sub-folder each); return all paths."""
    if not motions:
        raise UserError("there is no motion to download yet")
    out_dir = export_dir()
    paths: list[str] = []
    fmts = list(formats) if formats is not None else list(FAST_FORMATS)
    for i, m in enumerate(motions):
        paths += export_files(m, fmts, directory=out_dir, stem=f"{i + 1:02d}_{m.labels.label or 'motion'}")
        if progress is not None:
            progress((i + 1) / len(motions), f"motion {i + 1}/{len(motions)}")
    return paths


def correctness_info() -> str:
    """One line for the ``info=`` of a Correct / Incorrect choice: what 'incorrect' means per dataset."""
    return ("Incorrect = UI-PRMD: healthy subjects deliberately perform a wrong version; IntelliRehabDS: "
            "patients' own repetitions labelled incorrect (not simulated); KIMORE has no such label, only a "
            "clinical quality score (0–100).")


#: The Compare tab's correctness section (``evaluate`` uses 8 + 8 samples of 120 frames, 20 steps).
QUICK_NUM, QUICK_FRAMES, QUICK_STEPS = 4, 80, 10


#: Exercises with correct and incorrect executions in the training data (IntelliRehabDS 5 and 8 have no
#: incorrect ones).
CORRECTNESS_LABELS: tuple[str, ...] = tuple(f"ui-prmd:m{i:02d}" for i in range(1, 11)) + tuple(
    f"irds:{g}" for g in (0, 1, 2, 3, 4, 6, 7))
