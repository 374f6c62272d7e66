"""The "Text → motion" tab builds with a tiny diffusion checkpoint, its callbacks return figures, files
and session motions, editing keeps what it should, and bad input (huge text, bad numbers, nothing to
keep) becomes gr.Error while empty and non-ASCII text work."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from _tiny_models import LABELS, standing_pose

from motionviz.core.motion import Motion, MotionLabels
from motionviz.core.skeleton import BODY_PARTS, COMMON
from motionviz.ui import text_tab
from motionviz.ui.common import AppContext

torch.set_num_threads(1)
J = len(COMMON)


pytestmark = pytest.mark.usefixtures("fake_text")


def _build(checkpoint_dir: Path, models=("diffusion",)) -> gr.Blocks:
    with gr.Blocks() as demo:
        ctx = AppContext(checkpoint_dir=checkpoint_dir, data_root=None, models=list(models), motions=gr.State([]),
                         demo=demo)
        text_tab.build(ctx)
    return demo


@pytest.fixture(scope="module")
def demo(tiny_diffusion_dir) -> gr.Blocks:
    from _tiny_models import FAKE_ENCODER

    import motionviz.generators.text_encoders as text

    old = text._encoders.get("minilm")
    text._encoders["minilm"] = FAKE_ENCODER
    try:
        yield _build(tiny_diffusion_dir)
    finally:
        if old is None:
            text._encoders.pop("minilm", None)
        else:
            text._encoders["minilm"] = old


def _fn(demo: gr.Blocks, api_name: str):
    for f in demo.fns.values():
        if f.api_name == api_name:
            return f
    raise KeyError(api_name)


def _components(demo: gr.Blocks, kind) -> list:
    return [b for b in demo.blocks.values() if isinstance(b, kind)]


def _gen_args(text="Slowly raise both arms sideways, then lower them", exercise="", correct="Unspecified",
              guidance=2.5, steps=3, frames=24, num=2, seed=0, randomize=False, sampler="ddim",
              formats=("npy", "json"), motions=None):
    return [text, exercise, correct, guidance, steps, frames, num, seed, randomize, sampler, list(formats),
            list(motions or [])]


def test_builds_with_examples_dropdown_and_api_names(demo):
    names = [f.api_name for f in demo.fns.values()]
    assert {"text_generate", "text_edit", "text_load_example"} <= set(names)
    assert all(re.fullmatch(r"[a-z]+_[a-z0-9_]+", n) for n in names) and len(set(names)) == len(names)
    for n in ("text_generate", "text_edit"):
        assert _fn(demo, n).concurrency_id == "cpu"
    ex = [e for e in _components(demo, gr.Dataset)]
    assert ex and len(ex[0].samples) >= 6
    assert all(isinstance(s[0], str) and len(s[0]) > 20 for s in ex[0].samples)
    dd = next(d for d in _components(demo, gr.Dropdown) if d.elem_id == "text-exercise")
    values = [v for _, v in dd.choices]
    assert values[0] == "" and set(LABELS) <= set(values)
    assert any("Deep squat" in label for label, _ in dd.choices)


def test_missing_checkpoint_shows_message(tmp_path):
    demo = _build(tmp_path)
    text = "\n".join(str(b.value) for b in _components(demo, gr.Markdown))
    assert "not available" in text and not demo.fns


def test_generate_returns_figure_files_and_session_motions(demo):
    on_generate = _fn(demo, "text_generate").fn
    old = [Motion(np.repeat(standing_pose()[None], 10, 0), COMMON, 20.0, MotionLabels(label="old"))]
    fig, info, files, seed, motions, dropdown = on_generate(*_gen_args(motions=old))
    pay = json.loads(fig)                                   # the player's payload: one cell per sample
    assert [m["title"] for m in pay["motions"]] == ["seed 0", "seed 1"]
    assert "s on the server (model" in info and "Each sample has its own seed (0 to 1" in info
    assert seed == 0 and "2 motion(s) of 24 frames" in info and "raise both arms" in info
    assert len(motions) == 3 and motions[0] is old[0]
    new = motions[1:]
    assert all(m.joints.shape == (24, J, 3) and m.skeleton.name == "common" for m in new)
    names = [Path(p).name for p in files]
    assert names[0] == "samples.npy" and sum(n.endswith(".json") for n in names) == 2
    arr = np.load(files[0], allow_pickle=False)
    assert arr.shape == (2, 24, J, 3) and arr.dtype == np.float32
    np.testing.assert_array_equal(arr[1], new[1].joints)
    assert [c[1] for c in dropdown.choices] == [2, 1, 0]
    # same seed -> same motions; random seed returns the seed it used
    _, _, _, _, again, _ = on_generate(*_gen_args())
    np.testing.assert_array_equal(again[0].joints, new[0].joints)
    _, _, _, seed2, rnd, _ = on_generate(*_gen_args(randomize=True, num=1))
    assert 0 <= seed2 <= 2**31 - 1
    _, _, _, _, same, _ = on_generate(*_gen_args(seed=seed2, num=1))
    np.testing.assert_array_equal(rnd[0].joints, same[0].joints)


def test_empty_exercise_only_and_non_ascii_text(demo, fake_text):
    on_generate = _fn(demo, "text_generate").fn
    fig, info, _, _, ms, _ = on_generate(*_gen_args(text="   ", num=1))
    assert json.loads(fig)["motions"] and "unconditional" in info and len(ms) == 1
    fake_text.seen.clear()                       # (description matching embeds the training captions too)
    fig, info, _, _, ms, _ = on_generate(*_gen_args(text="", exercise="ui-prmd:m01", correct="Incorrect", num=1))
    assert "Deep squat" in info and "incorrect execution" in info
    assert "description was used as the text" in info and any("squat" in t for t in fake_text.seen)
    fig, info, _, _, ms, _ = on_generate(*_gen_args(text="lever les bras au-dessus de la tête", num=1))
    assert "lever les bras au-dessus de la tête" in fake_text.seen and "English" in info
    fig, info, _, _, ms, _ = on_generate(*_gen_args(text="両腕をゆっくり上げる", num=1))
    assert json.loads(fig)["motions"] and "English" in info


def test_description_matching_is_shown(demo, monkeypatch, tmp_path):
    """The closest known exercises with their similarity, and a notice first when the description is far
    from every training description (the stand-in encoder gives random vectors: everything is far, and a
    training caption scores ~1/5 for its own label, so the thresholds are lowered for that check)."""
    from motionviz.data.captions import caption_table
    from motionviz.generators import text_match as TM

    monkeypatch.setenv("MOTIONVIZ_CACHE", str(tmp_path))
    on_generate = _fn(demo, "text_generate").fn
    _, info, _, _, _, _ = on_generate(*_gen_args(text="bake a cake", num=1))
    assert info.startswith("⚠️") and "far from every exercise" in info and "1 motion(s)" in info
    monkeypatch.setattr(TM, "FAR_BELOW", 0.05)
    monkeypatch.setattr(TM, "NEAR_FROM", 0.1)
    cap = caption_table()["labels"]["ui-prmd:m07"][0]
    note = text_tab.understanding_note(cap, LABELS)
    assert note.startswith("Closest known exercises: **Standing shoulder abduction** (`ui-prmd:m07`")
    assert set(re.findall(r"`([a-z0-9-]+:[A-Za-z0-9-]+)`", note)) <= set(LABELS)    # the model's vocabulary only
    _, info, _, _, _, _ = on_generate(*_gen_args(text=cap, num=1))
    assert not info.startswith("⚠️") and "Closest known exercises" in info.splitlines()[-1]
    assert text_tab.understanding_note("   ", LABELS) == "" and text_tab.understanding_note(None) == ""
    assert "Standing shoulder abduction" in _fn(demo, "text_understand").fn(cap)


@pytest.mark.parametrize("kw,needle", [
    (dict(text="x" * 5000), "limit"),
    (dict(guidance=float("nan")), "guidance"),
    (dict(steps=0), "steps"),
    (dict(frames=2), "frames"),
    (dict(num=99), "number of samples"),
    (dict(seed=-1), "seed"),
    (dict(correct="Maybe"), "execution"),
    (dict(exercise="kimore:ex9"), "exercise"),
    (dict(formats=("npy", "docx")), "format"),
])
def test_bad_input_is_a_gr_error(demo, kw, needle):
    on_generate = _fn(demo, "text_generate").fn
    with pytest.raises(gr.Error, match=needle):
        on_generate(*_gen_args(**kw))


def test_edit_keeps_frames_and_body_parts(demo):
    on_generate = _fn(demo, "text_generate").fn
    on_edit = _fn(demo, "text_edit").fn
    _, _, _, _, motions, dropdown = on_generate(*_gen_args(num=1, frames=32))
    src = motions[-1]
    idx = dropdown.value
    assert motions[idx] is src
    fig, info, files, seed, after, dd = on_edit(idx, 6, 4, ["left_leg"], "kick with the right leg", "", "Unspecified",
                                              2.5, 3, 2, 1, False, "ddim", ["npy"], motions)
    assert json.loads(fig)["motions"] and "keeping first 6 frames + last 4 frames + left leg" in info
    edits = after[-2:]
    assert len(after) == len(motions) + 2 and Path(files[0]).name == "samples.npy"
    leg = COMMON.indices(BODY_PARTS["left_leg"])
    for e in edits:
        assert e.joints.shape == src.joints.shape
        np.testing.assert_allclose(e.joints[:6], src.joints[:6], atol=1e-5)
        np.testing.assert_allclose(e.joints[-4:], src.joints[-4:], atol=1e-5)
        np.testing.assert_allclose(e.joints[:, leg], src.joints[:, leg], atol=1e-5)
    arms = COMMON.indices(BODY_PARTS["arms"])
    assert np.abs(edits[0].joints[6:-4, arms] - src.joints[6:-4, arms]).max() > 1e-3
    # a motion on another skeleton / frame rate (as loaded in the Data tab) is converted first
    slow = Motion(np.repeat(standing_pose()[None], 60, 0), COMMON, 30.0, MotionLabels(label="ui-prmd:m01"))
    _, _, _, _, out, _ = on_edit(0, 5, 0, [], "", "ui-prmd:m01", "Correct", 2.5, 2, 1, 0, False, "ddim", [],
                                 [slow])
    assert out[-1].num_frames == 40 and out[-1].fps == 20.0


@pytest.mark.parametrize("args,needle", [
    ((0, 0, 0, []), "choose what to keep"),
    ((0, 20, 20, []), "nothing to regenerate"),
    ((0, 0, 0, ["upper_body", "lower_body"]), "nothing is left"),
    ((5, 2, 0, []), "motion"),
])
def test_edit_bad_input(demo, args, needle):
    on_edit = _fn(demo, "text_edit").fn
    m = Motion(np.repeat(standing_pose()[None], 30, 0), COMMON, 20.0)
    index, kf, kl, parts = args
    with pytest.raises(gr.Error, match=needle):
        on_edit(index, kf, kl, parts, "", "", "Unspecified", 2.5, 2, 1, 0, False, "ddim", [], [m])
    with pytest.raises(gr.Error, match="no motions"):
        on_edit(None, 2, 0, [], "", "", "Unspecified", 2.5, 2, 1, 0, False, "ddim", [], [])


@pytest.mark.slow
def test_whole_app_with_the_tab_has_unique_api_names(tiny_diffusion_dir):
    import app as app_module

    demo = app_module.build_app(checkpoint_dir=tiny_diffusion_dir, strict=True)
    tabs = [b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)]
    assert "Text → motion" in tabs
    names = [f.api_name for f in demo.fns.values()]
    assert len(set(names)) == len(names), sorted(n for n in names if names.count(n) > 1)
    assert {"text_generate", "text_edit", "text_load_example"} <= set(names)
