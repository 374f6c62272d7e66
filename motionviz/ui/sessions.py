"""Per-session memory of the app, freed when the session goes.

Gradio keeps one ``SessionState`` per session: the session's ``gr.State`` values (the motion list, ...), a
copy of the page config with the last value of every output component (player payloads, file lists,
dropdown choices) and Gradio's per-session component objects; about 0.5-1 MB for this app's page.  Gradio
itself frees only the ``gr.State`` values (after their ``time_to_live``, or one hour after the browser
disconnected) and drops the rest only when ``state_session_capacity`` sessions are exceeded.  So a
session that came and went kept its memory until 256 other sessions followed it.

:class:`SessionReaper` frees the whole session:

* when the browser (or a ``gradio_client`` that closes) disconnects: Gradio runs the app's ``unload``
  event, the reaper notes the time, and :data:`CLOSED_GRACE_S` later, unless the session sent a request
  in the meantime (a reconnect after a network hiccup), its state values are deleted (their
  ``delete_callback`` runs) and its ``SessionState`` is dropped;
* when a session sent no request for :data:`IDLE_S` (an hour, as long as Gradio keeps the state of a closed
  session; its ``gr.State`` values expired after :data:`~motionviz.ui.common.SESSION_TTL_S` already), e.g.
  API clients that never open the heartbeat.  An open tab idle that long starts afresh on its next request,
  as it does when the session cap evicted it;

then it returns the freed heap to the operating system (``gc.collect`` + glibc ``malloc_trim``).  A sweep
runs every :data:`SWEEP_INTERVAL_S` seconds on one daemon thread per process; sessions with a request
queued or running are never touched (an id Gradio keeps for a tab that closed while its request ran, whose
completion message never got delivered, does not count).  Install it with :func:`free_sessions_when_gone`
inside the ``gr.Blocks``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
import time
import weakref
from typing import Any

import gradio as gr

from .common import SESSION_TTL_S

__all__ = ["CLOSED_GRACE_S", "IDLE_S", "SWEEP_INTERVAL_S", "SessionReaper", "free_sessions_when_gone",
           "release_memory", "reapers"]

log = logging.getLogger("motionviz.ui.sessions")

#: A disconnected session is freed this long after the disconnect, unless it sent a request since.
CLOSED_GRACE_S = 60.0
#: A session with no request for this long is freed (open or not: the server cannot tell an idle tab from a
#: client that never said goodbye).
IDLE_S = 2.0 * SESSION_TTL_S
#: How often the sessions are checked.
SWEEP_INTERVAL_S = 5.0
#: A request this long after the disconnect means the browser came back (the unload handler itself
#: touches the session just before it records the time).
_REOPEN_MARGIN_S = 2.0

_reapers: list["SessionReaper"] = []
_reapers_lock = threading.Lock()
_thread: threading.Thread | None = None


def _malloc_trim() -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):      # not glibc (macOS, musl): nothing to call
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0))


def release_memory() -> None:
    """Collect cycles, then hand free heap pages back to the OS (glibc keeps them otherwise)."""
    gc.collect()
    _malloc_trim()


class SessionReaper:
    """Frees the sessions of one app (see the module docstring).  ``grace_s`` / ``idle_s`` default to
    :data:`CLOSED_GRACE_S` / :data:`IDLE_S` (read at each sweep)."""

    def __init__(self, demo: gr.Blocks, grace_s: float | None = None, idle_s: float | None = None) -> None:
        self._demo = weakref.ref(demo)
        self.grace_s = grace_s
        self.idle_s = idle_s
        #: session hash -> time (``time.time()``) of its disconnect; None: it came back after one
        self.closed: dict[str, float | None] = {}
        self.freed = 0                      # sessions freed so far
        self._lock = threading.Lock()

    # the unload event: Gradio calls it (in the background) when a session's heartbeat connection closes
    def session_closed(self, request: gr.Request) -> None:
        sid = getattr(request, "session_hash", None)
        if sid:
            with self._lock:
                self.closed[sid] = time.time()

    def _holder(self) -> Any:
        demo = self._demo()
        holder = getattr(demo, "state_holder", None) if demo is not None else None
        return holder if hasattr(holder, "session_data") else None

    def sweep(self, now: float | None = None) -> int:
        """Free the sessions that are gone; returns how many were freed."""
        holder = self._holder()
        if holder is None:                  # not launched (yet), or the app is gone
            return 0
        demo = self._demo()
        queue = getattr(demo, "_queue", None)
        pending = getattr(queue, "pending_event_ids_session", None) or {}
        # Gradio drops an id from ``pending_event_ids_session`` only once its completion message reached the
        # browser; a tab closed while its event ran never receives it, so the id stays there for good.
        # ``event_ids_to_events`` holds the events still queued or running: only those keep a session.
        live = getattr(queue, "event_ids_to_events", None)

        def busy(sid: str) -> bool:
            ids = list(pending.get(sid) or ())
            return bool(ids) and (live is None or any(e in live for e in ids))
        now = time.time() if now is None else now
        grace = CLOSED_GRACE_S if self.grace_s is None else self.grace_s
        idle = IDLE_S if self.idle_s is None else self.idle_s
        with holder.lock:
            sessions = list(holder.session_data.items())
            last_used = dict(holder.time_last_used)
        victims = []
        with self._lock:
            for sid in [s for s in self.closed if s not in holder.session_data]:   # evicted by the cap
                del self.closed[sid]
            for sid, ss in sessions:
                if busy(sid):
                    continue
                when = last_used.get(sid)
                last = when.timestamp() if when is not None else now
                closed_at = self.closed.get(sid, 0.0)
                if sid not in self.closed and getattr(ss, "is_closed", False):
                    closed_at = self.closed[sid] = now      # closed, but the unload event was not seen
                if closed_at:
                    if last > closed_at + _REOPEN_MARGIN_S:
                        self.closed[sid] = None             # the browser came back: keep the session
                    elif now - closed_at >= grace:
                        victims.append(sid)
                        continue
                if now - last >= idle:
                    victims.append(sid)
        for sid in victims:
            self._free(holder, sid)
        if victims:
            self.freed += len(victims)
            release_memory()
            log.debug("freed %d session(s), %d kept", len(victims), len(holder.session_data))
        return len(victims)

    def _free(self, holder: Any, sid: str) -> None:
        try:
            holder.delete_state(sid)        # the gr.State values, with their delete callbacks
        except Exception:  # noqa: BLE001 - a failing delete callback must not keep the session
            log.exception("deleting the state of a session failed")
        with holder.lock:
            holder.session_data.pop(sid, None)
            holder.time_last_used.pop(sid, None)
        with self._lock:
            self.closed.pop(sid, None)


def _sweep_forever() -> None:
    while True:
        time.sleep(SWEEP_INTERVAL_S)
        with _reapers_lock:
            alive = [r for r in _reapers if r._demo() is not None]
            _reapers[:] = alive
        for r in alive:
            try:
                r.sweep()
            except Exception:  # noqa: BLE001 - the sweeper must keep running
                log.exception("session sweep failed")


def reapers() -> list[SessionReaper]:
    """The reapers of the apps alive in this process."""
    with _reapers_lock:
        return [r for r in _reapers if r._demo() is not None]


def free_sessions_when_gone(demo: gr.Blocks, start: bool = True) -> SessionReaper:
    """Call inside ``with gr.Blocks() as demo``: free each session's memory when it goes (see the module
    docstring).  ``start=False`` leaves the sweeping to the caller (tests call ``reaper.sweep()``)."""
    global _thread
    reaper = SessionReaper(demo)
    demo.unload(reaper.session_closed)
    if start:
        with _reapers_lock:
            _reapers.append(reaper)
            if _thread is None or not _thread.is_alive():
                _thread = threading.Thread(target=_sweep_forever, name="motionviz-session-sweeper", daemon=True)
                _thread.start()
    return reaper
