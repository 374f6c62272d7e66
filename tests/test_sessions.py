"""Per-session memory is freed when the session goes (issue #14: memory after 200 sessions come and go):
:class:`motionviz.ui.sessions.SessionReaper` on Gradio's own ``StateHolder``, without a server."""

from __future__ import annotations

import datetime
import types

import gradio as gr
import pytest
from gradio.state_holder import StateHolder

from motionviz.ui import common, sessions


@pytest.fixture()
def app():
    """A small Blocks with a session state (delete callback recorded) and an output component, Gradio's
    StateHolder attached as at launch, and a reaper that is swept by hand (no thread)."""
    deleted: list = []
    with gr.Blocks() as demo:
        state = gr.State([], time_to_live=common.SESSION_TTL_S, delete_callback=deleted.append)
        shown = gr.Markdown("")
        reaper = sessions.free_sessions_when_gone(demo, start=False)
    holder = StateHolder()
    holder.set_blocks(demo)
    demo._queue = types.SimpleNamespace(pending_event_ids_session={}, event_ids_to_events={})

    def open_session(sid: str, value, at: float) -> None:
        ss = holder[sid]
        ss[state._id] = value
        ss._update_value_in_config(shown._id, "x" * 1000)       # the last output value Gradio keeps
        holder.time_last_used[sid] = datetime.datetime.fromtimestamp(at)

    return types.SimpleNamespace(demo=demo, holder=holder, reaper=reaper, state=state, deleted=deleted,
                                 open=open_session)


def _closed(reaper, sid: str, at: float, monkeypatch) -> None:
    monkeypatch.setattr(sessions.time, "time", lambda: at)
    reaper.session_closed(types.SimpleNamespace(session_hash=sid))
    monkeypatch.undo()


@pytest.mark.slow
def test_the_app_frees_sessions_when_they_go():
    import app as app_module

    demo = app_module.build_app(checkpoint_dir="/nonexistent", data_root="/nonexistent")
    unload = [f for f in demo.fns.values() if any(t[1] == "unload" for t in f.targets)]
    assert len(unload) == 1 and unload[0].api_visibility == "private" and unload[0].api_name == "session_closed"
    assert isinstance(demo.session_reaper, sessions.SessionReaper)
    assert demo.session_reaper in sessions.reapers()
    # every per-session value of the app expires
    states = [b for b in demo.blocks.values() if isinstance(b, gr.State)]
    assert states and all(s.time_to_live <= common.SESSION_TTL_S for s in states)


@pytest.mark.slow
def test_a_disconnected_session_is_freed_after_the_grace_period(app, monkeypatch):
    t0 = 1_000_000.0
    app.open("a", ["motion"] * 3, t0)
    app.open("b", ["other"], t0)
    _closed(app.reaper, "a", t0 + 1, monkeypatch)
    grace = sessions.CLOSED_GRACE_S
    assert app.reaper.sweep(now=t0 + grace - 1) == 0            # within the grace period: kept
    assert "a" in app.holder.session_data
    assert app.reaper.sweep(now=t0 + 1 + grace + 1) == 1
    assert "a" not in app.holder.session_data and "a" not in app.holder.time_last_used
    assert app.deleted == [["motion"] * 3]                       # its state's delete callback ran
    assert "b" in app.holder.session_data and app.reaper.freed == 1 and app.reaper.closed == {}


@pytest.mark.slow
def test_a_session_that_came_back_is_kept(app, monkeypatch):
    t0 = 1_000_000.0
    app.open("a", ["motion"], t0)
    _closed(app.reaper, "a", t0 + 1, monkeypatch)
    app.holder.time_last_used["a"] = datetime.datetime.fromtimestamp(t0 + 20)   # a request after the drop
    assert app.reaper.sweep(now=t0 + sessions.CLOSED_GRACE_S + 30) == 0
    assert "a" in app.holder.session_data and app.deleted == []
    # it goes for good later: freed again after the grace period
    _closed(app.reaper, "a", t0 + 100, monkeypatch)
    assert app.reaper.sweep(now=t0 + 101 + sessions.CLOSED_GRACE_S) == 1


@pytest.mark.slow
def test_closed_sessions_without_the_unload_event_and_idle_sessions_are_freed(app):
    t0 = 1_000_000.0
    app.open("closed", [1], t0)
    app.holder.session_data["closed"].is_closed = True           # Gradio marks it; no unload seen
    app.open("idle", [2], t0)
    app.open("busy", [3], t0)
    app.demo._queue.pending_event_ids_session["busy"] = {"event"}  # a request queued: never touched
    app.demo._queue.event_ids_to_events["event"] = object()
    app.open("stale", [4], t0)                                   # closed while its request ran: Gradio
    app.holder.session_data["stale"].is_closed = True            # keeps the id, the event itself is gone
    app.demo._queue.pending_event_ids_session["stale"] = {"done"}
    assert app.reaper.sweep(now=t0 + 10) == 0                    # the close is noted now
    assert app.reaper.sweep(now=t0 + 10 + sessions.CLOSED_GRACE_S) == 2
    assert "closed" not in app.holder.session_data and "stale" not in app.holder.session_data
    assert app.reaper.sweep(now=t0 + sessions.IDLE_S - 1) == 0         # idle, not for long enough
    assert app.reaper.sweep(now=t0 + sessions.IDLE_S + 1) == 1         # no request for an hour
    assert set(app.holder.session_data) == {"busy"}
    app.demo._queue.pending_event_ids_session.clear()
    assert app.reaper.sweep(now=t0 + sessions.IDLE_S + 1) == 1
    assert not app.holder.session_data and sorted(app.deleted) == [[1], [2], [3], [4]]


@pytest.mark.slow
def test_not_launched_or_gone_app_is_ignored():
    with gr.Blocks() as demo:
        gr.State([])
        reaper = sessions.free_sessions_when_gone(demo, start=False)
    assert reaper.sweep() == 0                                   # no state holder before launch
    del demo
    import gc
    gc.collect()
    assert reaper.sweep() == 0


def test_the_session_motion_list_is_bounded_in_count_and_size():
    import numpy as np

    from motionviz.core.motion import Motion

    def motion(frames: int, label: str) -> Motion:
        return Motion(np.zeros((frames, 15, 3), np.float32)).with_labels(label=label)

    a, b, c, d, huge = (motion(20, "a"), motion(20, "b"), motion(60, "c"), motion(60, "d"), motion(200, "huge"))
    assert a.joints.dtype == np.float32                                       # 12 bytes a joint-frame

    def labels(ms):
        return [m.labels.label for m in ms]

    assert labels(common.add_motions([a, b], c, joint_frames=2000)) == ["a", "b", "c"]      # 1,500
    assert labels(common.add_motions([a, b, c], d, joint_frames=2000)) == ["c", "d"]        # 2,100 > 2,000
    assert labels(common.add_motions([a, b, c], huge, joint_frames=2000)) == ["huge"]       # newest kept
    # the defaults: 16 motions, and 16 of the longest generated motions (600 frames) fit the budget
    assert len(common.add_motions([], [a] * 40)) == common.MAX_SESSION_MOTIONS
    assert len(common.add_motions([], [motion(600, "g")] * 16)) == 16
    assert 16 * 600 * 15 <= common.MAX_SESSION_JOINT_FRAMES
