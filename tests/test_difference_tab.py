"""The "Correct vs incorrect" tab's callbacks, called directly with a fake generator (the tab only uses
the Generator protocol: a toy squat, deep when asked for a correct execution, shallow otherwise) and a
synthetic corpus (no data folder, no checkpoint): the generated pair, a real recording and an uploaded
file against a generated correct reference, and one-line errors for bad input."""

from __future__ import annotations

import json

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from _poses import standing_pose

from motionviz import data as data_pkg
from motionviz.core.errors import UserError
from motionviz.core.motion import Motion, MotionLabels
from motionviz.core.skeleton import COMMON
from motionviz.generators import registry as generator_mod
from motionviz.generators.registry import Request
from motionviz.ui import common
from motionviz.ui import common as DT_C
from motionviz.ui import compare_tab as DT_CT
from motionviz.ui import difference_tab as DT
from motionviz.ui.common import AppContext

torch.set_num_threads(1)


def squat(depth_deg: float, T: int, rng: np.random.Generator, correct: bool, subject: str) -> Motion:
    """Both knees bend to ``depth_deg`` and back (shanks swing back, thighs stay): a toy m01."""
    base = standing_pose(np.float64)
    ang = np.radians(depth_deg) * np.sin(np.linspace(0, np.pi, T))
    j = np.repeat(base[None], T, axis=0)
    for s in ("left", "right"):
        k, a = COMMON.index(f"{s}_knee"), COMMON.index(f"{s}_ankle")
        j[:, a, 1] = j[:, k, 1] - 0.42 * np.cos(ang)
        j[:, a, 2] = 0.02 - 0.42 * np.sin(ang)
    j += rng.normal(0, 0.002, j.shape)
    return Motion(j.astype(np.float32), COMMON, 20.0,
                  MotionLabels(dataset="ui-prmd", label="ui-prmd:m01", correct=correct, subject=subject,
                               source=f"{subject}_{depth_deg:.0f}.txt"))


class FakeDiffusion:
    """Generator protocol: a toy m01 squat, 90 deg deep when asked for correct, 50 deg otherwise."""

    name = "diffusion"
    tasks = frozenset({"label", "text"})
    skeleton = COMMON
    labels = ["kimore:ex1", "ui-prmd:m01", "ui-prmd:m07"]

    def has_correctness(self, label: str) -> bool:
        return True

    def generate(self, request: Request, progress=None) -> list[Motion]:
        r = request
        rng = np.random.default_rng(r.seed)
        depth = 90.0 if r.correct in (True, None) else 50.0
        return [squat(depth + rng.normal(0, 2), r.frames, rng, r.correct, f"seed{r.seed}").with_labels(
            dataset="generated") for _ in range(r.num)]


@pytest.fixture()
def gen():
    return FakeDiffusion()


@pytest.fixture()
def ckpt(tmp_path, monkeypatch, gen):
    """A checkpoint folder whose "diffusion" loads as the fake generator."""
    d = tmp_path / "ck"
    d.mkdir()
    (d / "diffusion.safetensors").write_bytes(b"")
    monkeypatch.setattr(generator_mod, "load_generator", lambda name, checkpoint_dir=None: gen)
    return d


@pytest.fixture()
def corpus(monkeypatch):
    rng = np.random.default_rng(0)
    sets = {"train": [squat(float(rng.uniform(85, 95)), int(rng.integers(40, 60)), rng, True, f"s0{i % 7}")
                      for i in range(20)]
                     + [squat(45.0, 50, rng, False, "s01")],
            "test": [squat(60.0, 55, rng, False, "s09"), squat(90.0, 50, rng, True, "s10")]}

    def load_corpus(split="train", datasets=None, root=None, **kw):
        return [m for m in sets[split] if datasets is None or m.labels.dataset in datasets]

    monkeypatch.setattr(data_pkg, "load_corpus", load_corpus)
    from motionviz.analysis import difference
    monkeypatch.setattr(difference, "_normal_cache", {})
    monkeypatch.setattr(difference, "_key_cache", {})
    return sets


def test_choices_and_clinical_terms(gen, corpus, tmp_path):
    assert [v for _, v in DT.exercise_choices(gen)] == ["ui-prmd:m01", "ui-prmd:m07"]   # kimore: no correctness
    assert "deliberately performing a wrong version" in DT.incorrect_meaning("ui-prmd:m01")
    assert "shallower squat" in DT.incorrect_meaning("ui-prmd:m01")
    irds = DT.incorrect_meaning("irds:0")
    assert "patients' own repetitions" in irds and "not simulated" in irds and "rated by clinicians" not in irds
    terms = DT.incorrect_terms()                  # every dataset with correctness labels or scores
    assert all(t in terms for t in ("UI-PRMD", "IntelliRehabDS", "KIMORE", "clinical quality score"))
    assert all(t in DT_C.correctness_info() for t in ("UI-PRMD", "IntelliRehabDS", "KIMORE"))
    recs = DT.recording_choices("ui-prmd:m01", tmp_path)
    assert len(recs) == 2 and "incorrect" in recs[0][0] and "s09" in recs[0][0]


@pytest.mark.slow
def test_generated_pair(gen, corpus, tmp_path):
    fig, curves, bars, md, ms = DT.difference_view(gen, DT.GENERATED, "ui-prmd:m01", None, None, 3, 40, 4,
                                                   "overlay", tmp_path)
    assert all(isinstance(f, go.Figure) for f in (curves, bars))
    pay = json.loads(fig)                                      # the 3D player: both motions on one time line
    assert pay["format"] == "motionviz-player/1" and pay["layout"] == "overlay" and len(pay["motions"]) == 2
    assert [m["role"] for m in pay["motions"]] == ["correct", "incorrect"]
    assert [m["title"] for m in pay["motions"]] == ["generated correct", "generated incorrect"]
    # the joints that differ most are highlighted (large gold dots) in both, and the legend says so
    knees = {COMMON.index("left_knee"), COMMON.index("right_knee"), COMMON.index("left_ankle"),
             COMMON.index("right_ankle")}
    hi = [set(m["highlight"]) for m in pay["motions"]]
    assert hi[0] == hi[1] and hi[0] & knees and len(hi[0]) < len(COMMON)
    assert any("joints that differ most" in e["label"] for e in pay["legend"])
    assert pay["motions"][0]["frames"] == pay["motions"][1]["frames"]      # time-aligned
    assert "Left knee" in md or "Right knee" in md or "Left ankle" in md or "Right ankle" in md
    assert "_" not in md.split("Joints that differ most")[1].split("\n")[0]   # human joint names
    assert len(ms) == 2 and all(m.skeleton.name == "common" for m in ms)
    assert "Joints that differ most" in md and "real correct executions" in md
    # the normal band over time: filled between its p95 and p5 curves, as long as the aligned time line
    fills = [t for t in curves.data if t.fill == "tonexty"]
    assert fills and len(fills[0].x) == len(curves.data[-1].x) and "correct executions (p5–p95)" == fills[0].name
    assert "Key angles" in md and "knee flexion" in md.split("Key angles")[1]
    # same seed -> same comparison
    _, _, _, md2, ms2 = DT.difference_view(gen, DT.GENERATED, "ui-prmd:m01", None, None, 3, 40, 4, "pair", tmp_path)
    assert md2 == md and np.allclose(ms2[1].joints, ms[1].joints)


@pytest.mark.slow
def test_real_recording_against_generated_reference(gen, corpus, tmp_path):
    recs = DT.recording_choices("ui-prmd:m01", tmp_path)
    fig, curves, bars, md, ms = DT.difference_view(gen, DT.REAL, "ui-prmd:m01", recs[0][1], None, 0, 40, 4,
                                                   "pair", tmp_path)
    assert "Real incorrect recording (s09)" in md
    # the shallow (60 deg) squat is reported against the 85-95 deg normal range
    assert "knee bends" in md and "less than in correct executions" in md
    titles = [a.text for a in curves.layout.annotations]
    assert any("knee flexion" in t.lower() for t in titles)
    pay = json.loads(fig)
    assert pay["layout"] == "grid" and [m["role"] for m in pay["motions"]] == ["correct", "incorrect"]
    assert pay["motions"][1]["title"] == "real incorrect recording (s09)"
    assert ms[1].num_frames == 55


@pytest.mark.slow
def test_uploaded_recording(gen, corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(common, "uploaded_path", lambda v, what="file": __import__("pathlib").Path(v),
                        raising=False)
    rng = np.random.default_rng(1)
    f = tmp_path / "Patient_A.npy"
    np.save(f, squat(50.0, 60, rng, False, "x").joints)
    _, _, _, md, ms = DT.difference_view(gen, DT.UPLOAD, "ui-prmd:m01", None, str(f), 0, 40, 4, "overlay", tmp_path)
    assert "Uploaded recording (Patient_A.npy)" in md and "knee bends" in md      # the name as given
    # the picker offers exactly what the loader reads, with its size cap
    from motionviz.data.userfile import MAX_USER_BYTES, USER_EXTENSIONS
    assert DT.UPLOAD_TYPES == list(USER_EXTENSIONS) and DT.MAX_UPLOAD_BYTES == MAX_USER_BYTES
    assert all(e in DT.UPLOAD_LABEL for e in USER_EXTENSIONS) and f"{MAX_USER_BYTES // 2 ** 20} MB" in DT.UPLOAD_LABEL
    bad = tmp_path / "broken.npy"
    bad.write_bytes(b"not numpy")
    with pytest.raises(UserError):
        DT.difference_view(gen, DT.UPLOAD, "ui-prmd:m01", None, str(bad), 0, 40, 4, "overlay", tmp_path)


@pytest.mark.slow
def test_bad_input_is_one_line_error(gen, ckpt, corpus, tmp_path):
    for args in ((DT.GENERATED, None), (DT.GENERATED, "kimore:ex1"), ("nonsense", "ui-prmd:m01")):
        with pytest.raises(UserError):
            DT.difference_view(gen, args[0], args[1], None, None, 0, 40, 4, "overlay", tmp_path)
    with pytest.raises(UserError):
        DT.difference_view(gen, DT.GENERATED, "ui-prmd:m01", None, None, 0, 5000, 4, "overlay", tmp_path)
    with pytest.raises(UserError):
        DT.difference_view(gen, DT.UPLOAD, "ui-prmd:m01", None, None, 0, 40, 4, "overlay", tmp_path)
    # through the built tab: gr.Error, one line
    with gr.Blocks() as demo:
        DT.build(AppContext(checkpoint_dir=ckpt, data_root=tmp_path, models=["diffusion"],
                            motions=gr.State([])))
    fns = {f.api_name: f.fn for f in demo.fns.values()}
    assert {"difference_compare", "difference_exercise", "difference_mode"} <= set(fns)
    # the Frames slider applies to the generated pair only: hidden for a recording
    assert [u.visible for u in fns["difference_mode"](DT.REAL)] == [True, False, False]
    assert [u.visible for u in fns["difference_mode"](DT.GENERATED)] == [False, False, True]
    files = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "diff-upload"]
    assert files[0].file_types == DT.UPLOAD_TYPES and files[0].label == DT.UPLOAD_LABEL
    with pytest.raises(gr.Error) as e:
        fns["difference_compare"](DT.GENERATED, "ui-prmd:m01", None, None, -1, 40, 4, "overlay", [])
    assert "\n" not in str(e.value)
    fig, cur, bar, md, session = fns["difference_compare"](DT.GENERATED, "ui-prmd:m01", None, None, 1, 40, 4,
                                                            "overlay", [])
    assert json.loads(fig)["motions"] and len(session) == 2
    # what the player shows, as a GIF (grid/overlay as displayed, with the gold joints)
    path = fns["diff_plot_export"](fig, "gif", json.dumps({"layout": "grid", "az": 90, "el": 8}))
    assert path.endswith("motionviz-grid.gif")
    with pytest.raises(gr.Error):
        fns["diff_plot_export"]("{not json", "gif", "")


class FakeVAE(FakeDiffusion):
    """The same toy squat under the VAE's name (the tab only uses the Generator protocol); it records the
    requests it gets."""

    name = "vae"
    tasks = frozenset({"label", "interpolate", "vary"})

    def __init__(self):
        self.requests: list[Request] = []

    def generate(self, request: Request, progress=None) -> list[Motion]:
        self.requests.append(request)
        return super().generate(request, progress)


@pytest.mark.slow
def test_tab_offers_the_vae_when_its_checkpoint_is_there(gen, corpus, tmp_path, monkeypatch):
    """With a VAE checkpoint the tab shows a Generator choice: the VAE makes the pair (the diffusion model is
    not called), the sampling-steps slider hides for it, an unknown generator is a one-line error; without
    the checkpoint there is no choice."""
    vae = FakeVAE()
    monkeypatch.setattr(generator_mod, "load_generator",
                        lambda name, checkpoint_dir=None: {"diffusion": gen, "vae": vae}[name])
    for models, shown in ((["diffusion", "vae"], True), (["diffusion"], False)):
        with gr.Blocks() as demo:
            DT.build(AppContext(checkpoint_dir=tmp_path, data_root=tmp_path, models=models, motions=gr.State([])))
        radios = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "diff-model"]
        assert len(radios) == 1 and radios[0].visible is shown
    with gr.Blocks() as demo:
        DT.build(AppContext(checkpoint_dir=tmp_path, data_root=tmp_path, models=["diffusion", "vae"],
                            motions=gr.State([])))
    fns = {f.api_name: f.fn for f in demo.fns.values()}
    assert fns["difference_model"]("vae").visible is False and fns["difference_model"]("diffusion").visible is True
    _, _, _, md, session = fns["difference_compare"](DT.GENERATED, "ui-prmd:m01", None, None, 2, 40, 4, "overlay",
                                                     [], "vae")
    assert [r.correct for r in vae.requests] == [True, False] and {r.model for r in vae.requests} == {"vae"}
    assert len(session) == 2 and "knee" in md.lower()
    with pytest.raises(gr.Error) as e:
        fns["difference_compare"](DT.GENERATED, "ui-prmd:m01", None, None, 2, 40, 4, "overlay", [], "nope")
    assert "\n" not in str(e.value) and "generator" in str(e.value)


@pytest.mark.slow
def test_tab_without_diffusion_says_so(tmp_path):
    with gr.Blocks() as demo:
        DT.build(AppContext(checkpoint_dir=tmp_path, data_root=None, models=[], motions=gr.State([])))
    md = [b.value for b in demo.blocks.values() if isinstance(b, gr.Markdown)]
    assert any("needs the diffusion model" in v for v in md)


@pytest.mark.slow
def test_compare_tab_correctness_section(gen, corpus, tmp_path):
    from motionviz.models import recognition as R
    from motionviz.training import recognition as R_T

    rec = R_T.train_recognizer(corpus["train"], R.Config(labels=("ui-prmd:m01",), hidden=16, gru_hidden=12,
                                                       feature_dim=16, conv_blocks=2, dropout=0.0, batch_size=8,
                                                       min_crop=20, max_crop=40), steps=10, seed=0)
    res = DT_CT.quick_correctness({"diffusion": gen}, rec, "ui-prmd:m01", tmp_path, num=2, frames=40, steps=2)
    headers, rows = DT_CT.correctness_rows(res)
    assert headers[:3] == ["row", "exercise", "control"]
    assert [r[0] for r in rows] == ["real", "real_repeated", "diffusion", "frozen_pose", "opposite_real"]
    assert all(r[1] == "ui-prmd:m01" for r in rows) and rows[3][2] == 0.5
    with pytest.raises(UserError):
        DT_CT.quick_correctness({"diffusion": gen}, rec, "kimore:ex1", tmp_path)
    with pytest.raises(UserError):
        DT_CT.quick_correctness({"diffusion": gen}, None, "ui-prmd:m01", tmp_path)
