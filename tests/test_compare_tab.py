"""The Compare tab builds with tiny checkpoints (recogniser, VAE, diffusion) in a temporary folder, and its
callbacks return a synchronised grid figure, a per-motion table, a metrics table with the real row and a
bar chart with intervals.  Real data is replaced by synthetic motions (no data folder needed)."""

from __future__ import annotations

import json

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from _poses import exercise_motion

from motionviz import data as data_pkg
from motionviz.core.checkpoint import data_provenance, save_checkpoint
from motionviz.core.errors import UserError
from motionviz.core.motion import Motion
from motionviz.generators import recognition as R_G
from motionviz.generators.registry import available_models
from motionviz.models import recognition as R
from motionviz.training import recognition as R_T
from motionviz.ui import compare_tab as C
from motionviz.ui.common import AppContext

torch.set_num_threads(1)

LABELS = ("ui-prmd:m01", "ui-prmd:m07")
TINY_REC = dict(hidden=16, gru_hidden=12, feature_dim=16, conv_blocks=2, dropout=0.0, batch_size=8,
                min_crop=20, max_crop=40)


def synthetic(label: str, correct: bool, T: int, rng: np.random.Generator, subject: str) -> Motion:
    """m01: the upper body goes down and up (squat); m07: the left arm rises sideways."""
    return exercise_motion(label, correct, T, rng, subject)


def corpus(n: int, seed: int, prefix: str) -> list[Motion]:
    rng = np.random.default_rng(seed)
    return [synthetic(lab, bool(i % 2), int(rng.integers(24, 40)), rng, f"{prefix}{i % 3}")
            for lab in LABELS for i in range(n)]


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory):
    from motionviz.models import diffusion as D
    from motionviz.models import vae as V
    from motionviz.training import diffusion as D_T
    from motionviz.training import vae as V_T

    d = tmp_path_factory.mktemp("compare-ck")
    train = corpus(6, 0, "s")
    # recogniser
    rec = R_T.train_recognizer(train, R.Config(labels=LABELS, **TINY_REC), steps=20, seed=0)
    save_checkpoint(d / R_G.CHECKPOINT_NAME, rec.state_dict(), R.KIND, rec.config,
                    {"correct_labels": list(LABELS), "score_labels": [], "data": data_provenance(["ui-prmd"])})
    # VAE (untrained: the tab only needs a working generator)
    torch.manual_seed(0)
    vcfg = V.tiny_config(V.classes_of(train))
    vae = V.ActorVAE(vcfg)
    vae.set_stats(*V_T.compute_stats(V_T.motions_to_items(train, vcfg.classes, vcfg)))
    save_checkpoint(d / "vae.safetensors", vae.state_dict(), "vae", vae.config,
                    {"data": data_provenance(["ui-prmd"]), "command": "test"})
    # diffusion (untrained, label-conditioned requests only: no text encoder is loaded)
    dcfg = D.tiny_config(labels=LABELS, datasets=("ui-prmd",))
    D_T.save_model(d / "diffusion.safetensors", D.DiffusionModel(dcfg),
                 {"data": data_provenance(["ui-prmd"]), "command": "test"})
    return d


@pytest.fixture()
def fake_corpus(monkeypatch):
    """``load_corpus`` -> synthetic train / test subjects (the tab reads the real data through it)."""
    sets = {"train": corpus(6, 1, "s"), "test": corpus(5, 2, "t")}

    def load_corpus(split="train", datasets=None, root=None, **kw):
        ms = sets.get(split, sets["train"] + sets["test"])
        return [m for m in ms if datasets is None or m.labels.dataset in datasets]

    monkeypatch.setattr(data_pkg, "load_corpus", load_corpus)
    return sets


def _fn(demo: gr.Blocks, api_name: str):
    for f in demo.fns.values():
        if f.api_name == api_name:
            return f.fn
    raise KeyError(api_name)


def _build(ckpt_dir, data_root) -> gr.Blocks:
    with gr.Blocks() as demo:
        ctx = AppContext(checkpoint_dir=ckpt_dir, data_root=data_root, models=available_models(ckpt_dir),
                         motions=gr.State([]))
        C.build(ctx)
    return demo


@pytest.mark.slow
def test_tab_builds_and_compares_every_model(ckpt_dir, fake_corpus, tmp_path):
    assert available_models(ckpt_dir) == ["diffusion", "vae"]
    demo = _build(ckpt_dir, tmp_path)
    names = {f.api_name for f in demo.fns.values()}
    assert {"compare_generate", "compare_evaluate", "compare_correctness"} <= names
    # the correctness section states its settings and points to the full protocol; the Execution choice
    # says what "incorrect" means per dataset
    md = " ".join(str(b.value) for b in demo.blocks.values() if isinstance(b, gr.Markdown))
    from motionviz.ui import common as DT_C
    assert f"{DT_C.QUICK_FRAMES} frames, {DT_C.QUICK_STEPS} diffusion steps" in md and "motionviz evaluate" in md
    radios = [b for b in demo.blocks.values() if isinstance(b, gr.Radio) and b.label == "Execution"]
    assert radios and all("KIMORE" in (r.info or "") for r in radios)
    generate = _fn(demo, "compare_generate")
    fig, rows, motions, notes = generate("ui-prmd:m07", "", C.CORRECT, 3, 30, 5, [])
    # one player: the real motion and both models, one scale and one clock, coloured by model
    pay = json.loads(fig)
    assert [m["role"] for m in pay["motions"]] == ["real", "diffusion", "vae"]
    assert [r[0] for r in rows][1:] == ["diffusion (from exercise)", "vae (from exercise)"]
    assert rows[0][0].startswith("real") and "s on the server" in notes
    assert all(r[1] in LABELS for r in rows)
    assert len(motions) == 2 and all(m.num_frames == 30 for m in motions)
    # same request, same seed -> same motions
    _, _, again, _ = generate("ui-prmd:m07", "", C.CORRECT, 3, 30, 5, [])
    assert all(np.allclose(a.joints, b.joints) for a, b in zip(motions, again))
    with pytest.raises(gr.Error):
        generate(None, "", C.UNSPECIFIED, 0, 30, 5, [])
    with pytest.raises(gr.Error):
        generate("ui-prmd:m07", "", C.CORRECT, -1, 30, 5, [])


@pytest.mark.slow
def test_quick_evaluation_table_and_bars(ckpt_dir, fake_corpus, tmp_path):
    demo = _build(ckpt_dir, tmp_path)
    table, fig, dyn = _fn(demo, "compare_evaluate")("ui-prmd:m01")
    rows = table.value["data"] if isinstance(table.value, dict) else table.value
    assert [r[0] for r in rows] == ["real", "diffusion", "vae"]
    assert all("±" in r[1] for r in rows)                           # FID with its interval
    assert isinstance(fig, go.Figure)
    assert len(fig.data) == 3 * len(C.BAR_METRICS)
    assert any(t.error_y is not None and t.error_y.array is not None for t in fig.data)
    # dynamics: metric rows with unit and direction, the real column first, degenerate columns last
    heads = dyn.value["headers"] if isinstance(dyn.value, dict) else dyn.headers
    drows = dyn.value["data"] if isinstance(dyn.value, dict) else dyn.value
    assert heads == ["metric", "unit", "best", "real (half vs half)", "diffusion", "vae", "frozen mean pose",
                     "training clip copied", "real at half amplitude"]
    rom = next(r for r in drows if r[0].startswith("range of motion / real"))
    assert rom[1:3] == ["ratio", "≈1"] and rom[6] == "0" and float(rom[8]) == pytest.approx(0.5, abs=0.01)


@pytest.mark.slow
def test_tab_without_generators_says_so(tmp_path):
    with gr.Blocks() as demo:
        C.build(AppContext(checkpoint_dir=tmp_path, data_root=None, models=[], motions=gr.State([])))
    md = [b.value for b in demo.blocks.values() if isinstance(b, gr.Markdown)]
    assert any("needs at least one generator checkpoint" in v for v in md)
    assert not [f for f in demo.fns.values() if f.api_name == "compare_generate"]


def test_quick_evaluation_needs_recogniser_and_data(ckpt_dir):
    gens = C.comparable_models(["diffusion", "vae"], ckpt_dir)
    with pytest.raises(UserError):
        C.quick_evaluation(gens, None, "ui-prmd:m01", None)
