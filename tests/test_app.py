"""The app builds (with or without checkpoints and data), the Data tab's callbacks return figures and
files, bad uploads become gr.Error, and the common UI helpers behave."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gradio as gr
import numpy as np
import pytest

import app as app_module
from motionviz.core.errors import UserError
from motionviz.core.motion import Motion, MotionLabels
from motionviz.core.skeleton import COMMON
from motionviz.data import browse as data_tab_B
from motionviz.ui import common, data_tab


def _data_root() -> Path | None:
    try:
        from motionviz.data import data_root
        r = data_root()
        return r if (r / "ui-prmd").is_dir() else None
    except UserError:
        return None


DATA = _data_root()
needs_data = pytest.mark.skipif(DATA is None, reason="UI-PRMD data not found (set MOTIONVIZ_DATA)")


def _tabs(demo: gr.Blocks) -> list[str]:
    return [b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)]


def _markdown(demo: gr.Blocks) -> str:
    return "\n".join(str(b.value) for b in demo.blocks.values() if isinstance(b, gr.Markdown))


def _fn(demo: gr.Blocks, api_name: str):
    for f in demo.fns.values():
        if f.api_name == api_name:
            return f
    raise KeyError(api_name)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> gr.Blocks:
    return app_module.build_app(checkpoint_dir=tmp_path_factory.mktemp("no-checkpoints"), strict=True)


@pytest.mark.slow
def test_only_checkpoint_free_tabs_without_checkpoints(demo):
    tabs = _tabs(demo)
    assert tabs[0] == "Data"
    needing = {title for title, _, needs in app_module.TABS if needs is not None}
    assert not needing & set(tabs), tabs
    assert "Text → motion (needs a diffusion checkpoint)" in _markdown(demo)


def test_tab_table_and_ids():
    assert [t[0] for t in app_module.TABS][0] == "Data"
    assert app_module.tab_id("motionviz.ui.inpaint_tab") == "inpaint"
    assert {m for _, m, _ in app_module.TABS} >= {"motionviz.ui.data_tab", "motionviz.ui.text_tab"}


@pytest.mark.slow
def test_builds_without_data_and_says_where_it_looked(tmp_path):
    missing = tmp_path / "no-data-here"
    demo = app_module.build_app(checkpoint_dir=tmp_path, data_root=missing, strict=True)
    assert _tabs(demo)[0] == "Data"
    text = _markdown(demo)
    assert "not found" in text and str(missing) in text


def test_every_event_has_a_stable_api_name(demo):
    names = [f.api_name for f in demo.fns.values()]
    assert names and all(isinstance(n, str) and re.fullmatch(r"[a-z]+(_[a-z0-9_]+)?", n) for n in names), names
    assert len(set(names)) == len(names)
    assert not [n for n in names if n.startswith("on_")]           # not Gradio's fallback (function name)
    export = _fn(demo, "data_export")
    assert export.concurrency_id == common.CPU_QUEUE and export.concurrency_limit == common.CPU_LIMIT


# ---- Data tab ------------------------------------------------------------------------------------
@needs_data
def test_index_and_cascade_known_answers():
    idx = data_tab_B.index_dataset("ui-prmd")
    assert len(idx.entries) == 2000                         # 10 exercises x 10 subjects x 10 reps x 2
    sel = data_tab_B.cascade(idx, None, None, None, None, None)
    assert sel.exercise == "ui-prmd:m01" and sel.subject == "s01" and sel.correct == "correct"
    assert len(sel.exercises) == 10 and sel.exercises[6] == ("m07 · Standing shoulder abduction", "ui-prmd:m07")
    assert len(sel.sequences) == 10
    # changing the exercise keeps the subject, resets the sequence to the first of the new list
    sel2 = data_tab_B.cascade(idx, "ui-prmd:m07", "s03", None, "incorrect", sel.sequence)
    assert sel2.subject == "s03" and sel2.correct == "incorrect"
    assert sel2.sequence.endswith("m07_s03_e01_positions_inc.txt.gz")
    both = data_tab_B.cascade(idx, "ui-prmd:m07", "s03", None, data_tab_B.ANY, None)
    assert len(both.sequences) == 20
    every = data_tab_B.cascade(idx, "ui-prmd:m07", data_tab_B.ANY, None, data_tab_B.ANY, None)
    assert len(every.sequences) == 200


@needs_data
def test_show_sequence_native_common_and_comparisons():
    idx = data_tab_B.index_dataset("ui-prmd")
    key = data_tab_B.cascade(idx, "ui-prmd:m01", "s02", None, "correct", None).sequence
    value, meta, shown = data_tab.show_sequence("ui-prmd", key, "native", "single")
    pay = json.loads(value)                                          # the player's payload
    assert pay["format"] == "motionviz-player/1" and len(pay["motions"]) == 1
    assert pay["motions"][0]["frames"] > 1 and "Deep squat" in pay["motions"][0]["title"]
    assert len(shown) == 1 and shown[0].skeleton.name == "ui-prmd" and shown[0].joints.shape[1] == 22
    assert "ui-prmd:m01" in meta and "s02" in meta and "30" in meta
    assert not Path(shown[0].labels.source).is_absolute()            # no server paths in the UI

    _, _, common_ = data_tab.show_sequence("ui-prmd", key, "common", "single")
    assert common_[0].skeleton.name == COMMON.name and common_[0].joints.shape[1] == len(COMMON)

    fig, meta, pair = data_tab.show_sequence("ui-prmd", key, "native", "pair")
    assert [m.labels.correct for m in pair] == [True, False]
    assert {m.labels.subject for m in pair} == {"s02"} and {m.label for m in pair} == {"ui-prmd:m01"}
    assert "Also shown" in meta
    pair_pay = json.loads(fig)
    assert [m["role"] for m in pair_pay["motions"]] == ["correct", "incorrect"] and pair_pay["layout"] == "grid"
    fig, _, over = data_tab.show_sequence("ui-prmd", key, "native", "overlay")
    assert len(over) == 2 and json.loads(fig)["layout"] == "overlay"
    _, _, grid = data_tab.show_sequence("ui-prmd", key, "native", "grid")
    assert len(grid) == min(data_tab_B.GRID_MAX, 10) and all(m.labels.correct for m in grid)   # 10 repetitions


@needs_data
def test_show_sequence_errors():
    with pytest.raises(UserError, match="sequence"):
        data_tab.show_sequence("ui-prmd", "ui-prmd/nope.txt.gz")
    idx = data_tab_B.index_dataset("humanml3d") if (DATA / "humanml3d-sample").is_dir() else None
    if idx is not None:
        with pytest.raises(UserError, match="correct/incorrect"):
            data_tab.show_sequence("humanml3d", idx.entries[0].key, "native", "pair")


@needs_data
def test_wired_show_and_filter_events(demo):
    upd = _fn(demo, "data_exercise").fn("ui-prmd", "ui-prmd:m05", "s01", "", "correct", None, "native", "single")
    assert len(upd) == 8 and upd[0].value == "ui-prmd:m05"
    key = upd[4].value
    # the filter event also shows the selected sequence (one event: no stale dropdown value)
    assert _is_player(upd[5]) and upd[7][0].label == "ui-prmd:m05" and upd[7][0].labels.source
    upd = _fn(demo, "data_dataset").fn("ui-prmd", "common", "single")
    assert len(upd) == 8 and _is_player(upd[5]) and upd[7][0].skeleton.name == "common"
    fig, meta, shown = _fn(demo, "data_show").fn("ui-prmd", key, "native", "single")
    assert _is_player(fig) and shown[0].label == "ui-prmd:m05"
    with pytest.raises(gr.Error, match="no sequence"):
        _fn(demo, "data_show").fn("ui-prmd", None, "native", "single")


def _is_player(value) -> bool:
    """A player value: the JSON payload of motionviz.ui.player with at least one motion."""
    return isinstance(value, str) and bool(json.loads(value)["motions"])


def _motion(T: int = 12) -> Motion:
    rng = np.random.default_rng(0)
    base = np.zeros((len(COMMON), 3), np.float32)
    base[:, 1] = np.linspace(0.1, 1.6, len(COMMON))
    j = base[None] + 0.01 * rng.standard_normal((T, len(COMMON), 3)).astype(np.float32)
    return Motion(j, COMMON, 20.0, MotionLabels(dataset="test", label="test:a", subject="x"))


def test_upload_good_and_bad_files(demo, uploads):
    tmp_path = uploads
    upload = _fn(demo, "data_upload").fn
    good = tmp_path / "mine.npy"
    np.save(good, _motion().joints)
    fig, meta, shown = upload(str(good), "native")
    assert _is_player(fig) and shown[0].num_frames == 12 and "mine.npy" in meta

    bad = tmp_path / "broken.npy"
    bad.write_bytes(b"not a numpy file at all")
    with pytest.raises(gr.Error) as e:
        upload(str(bad), "native")
    assert "broken.npy" in str(e.value) or "npy" in str(e.value).lower()
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(gr.Error, match="empty"):
        upload(str(empty), "native")
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((10, 7), np.float32))
    with pytest.raises(gr.Error):
        upload(str(wrong), "native")
    with pytest.raises(gr.Error, match="no file"):
        upload(None, "native")


def test_downloads_write_files_in_a_fresh_folder(demo):
    pytest.importorskip("motionviz.export")
    m = _motion()
    paths = data_tab.prepare_downloads([m], ["npy", "json", "bvh"])
    assert len(paths) == 3 and all(Path(p).is_file() and Path(p).stat().st_size > 0 for p in paths)
    assert {Path(p).suffix for p in paths} == {".npy", ".json", ".bvh"}
    assert np.allclose(np.load(paths[[Path(p).suffix for p in paths].index(".npy")]), m.joints, atol=1e-4)
    again = data_tab.prepare_downloads([m], ["npy"])
    assert Path(again[0]).parent != Path(paths[0]).parent
    two = data_tab.prepare_downloads([m, m.with_labels(label="test:b")], ["json"])
    assert len(two) == 2 and len({Path(p).parent for p in two}) == 2
    export = _fn(demo, "data_export").fn
    with pytest.raises(gr.Error, match="format"):
        export([m], [])
    with pytest.raises(gr.Error, match="load or upload"):
        export([], ["npy"])


def test_add_to_session(demo):
    add = _fn(demo, "data_add_to_session").fn
    m = _motion()
    out = add([m], [])
    assert out == [m]
    many = common.add_motions([m] * common.MAX_SESSION_MOTIONS, [m.with_labels(label="test:new")])
    assert len(many) == common.MAX_SESSION_MOTIONS and many[-1].label == "test:new"
    with pytest.raises(gr.Error):
        add([], [m])


# ---- common helpers ------------------------------------------------------------------------------
def test_user_error_decorator():
    @common.user_error
    def bad_input(x, progress=gr.Progress()):
        raise UserError("the description is empty")

    @common.user_error
    def crash():
        raise RuntimeError("boom")

    @common.user_error
    def gen():
        yield 1
        raise UserError("second step failed")

    with pytest.raises(gr.Error, match="the description is empty"):
        bad_input(1)
    with pytest.raises(gr.Error, match="internal error.*RuntimeError"):
        crash()
    g = gen()
    assert next(g) == 1
    with pytest.raises(gr.Error, match="second step failed"):
        next(g)
    import inspect
    assert "progress" in inspect.signature(bad_input).parameters and inspect.isgeneratorfunction(gen)


def test_numbers_and_seeds():
    assert common.to_int("12", "frames", 1, 20) == 12
    for v in ("x", 3.5, float("nan"), 0, 21, None):
        with pytest.raises(UserError, match="frames"):
            common.to_int(v, "frames", 1, 20)
    assert common.to_float("2.5", "guidance", 0, 10) == 2.5
    with pytest.raises(UserError, match="guidance"):
        common.to_float(float("inf"), "guidance", 0, 10)
    assert common.resolve_seed(7) == 7
    import random
    s1 = common.resolve_seed(7, randomize=True, rng=random.Random(1))
    s2 = common.resolve_seed(7, randomize=True, rng=random.Random(1))
    assert s1 == s2 and 0 <= s1 <= common.MAX_SEED
    with pytest.raises(UserError, match="seed"):
        common.resolve_seed(-1)


def test_session_motion_choices():
    a, b = _motion(), _motion(20).with_labels(label="test:b", correct=False)
    ch = common.motion_choices([a, b])
    assert [v for _, v in ch] == [1, 0] and "incorrect" in ch[0][0] and "20 frames" in ch[0][0]
    assert common.pick_motion([a, b], 1) is b and common.pick_motion([a, b], None) is b
    with pytest.raises(UserError, match="no motions"):
        common.pick_motion([], 0)
    with pytest.raises(UserError):
        common.pick_motion([a], 3)
    md = common.motion_markdown(b)
    assert "test:b" in md and "| **correct** | no |" in md and "20" in md
