"""Abuse tests for the public Space (issue #14): what an outsider can send to the app's callbacks, its API
and the CLI.  Each test is a probe of the issue that failed before the fix: file-reference injection,
content echoed in errors, bombs (bytes, joints x frames, nesting), outlier coordinates, seeds, bad
checkpoints, CLI outputs."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch

from motionviz.core.checkpoint import load_strict
from motionviz.core.errors import CheckpointError, UserError
from motionviz.core.motion import Motion
from motionviz.core.skeleton import COMMON
from motionviz.data import browse as data_tab_B
from motionviz.ui import common, data_tab

torch.set_num_threads(1)
SECRET = "admin-s3cr3t"


@pytest.fixture()
def outside(tmp_path) -> Path:
    """A folder that is not the upload folder (stands for any server path)."""
    d = tmp_path / "server"
    d.mkdir()
    return d


def _pose(T: int = 20) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = np.zeros((len(COMMON), 3), np.float32)
    base[:, 1] = np.linspace(0.1, 1.6, len(COMMON))
    base[:, 0] = np.linspace(-0.2, 0.2, len(COMMON))
    return base[None] + 0.01 * rng.standard_normal((T, len(COMMON), 3)).astype(np.float32)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _upload(uploads: Path, name: str, data: bytes | np.ndarray | str) -> str:
    """Put a file into the upload folder as Gradio would (a hash-named sub-folder)."""
    d = uploads / "0123abcd"
    d.mkdir(exist_ok=True)
    p = d / name
    if isinstance(data, np.ndarray):
        np.save(p, data)
    elif isinstance(data, str):
        p.write_text(data)
    else:
        p.write_bytes(data)
    return str(p)


# ---- 1. file references: only uploaded files (or the app's own) are read -------------------------
def test_uploaded_path_accepts_uploads_and_app_assets_only(uploads, outside):
    good = _upload(uploads, "mine.npy", _pose())
    assert common.uploaded_path(good) == Path(good).resolve()
    assert common.uploaded_path({"path": good, "meta": {"_type": "gradio.FileData"}}) == Path(good).resolve()
    secret = outside / "secret.npy"
    np.save(secret, _pose())
    for bad in (str(secret), {"path": str(secret), "meta": {"_type": "gradio.FileData"}},
                str(uploads / ".." / "server" / "secret.npy")):
        with pytest.raises(UserError, match="not uploaded through this app") as e:
            common.uploaded_path(bad)
        assert "secret" not in str(e.value) and str(outside) not in str(e.value)
    # a symlink inside the upload folder that points outside is followed, then refused
    link = uploads / "0123abcd" / "link.npy"
    link.symlink_to(secret)
    with pytest.raises(UserError, match="not uploaded"):
        common.uploaded_path(str(link))
    with pytest.raises(UserError, match="no file"):
        common.uploaded_path(None)
    with pytest.raises(UserError, match="missing"):
        common.uploaded_path(str(uploads / "gone.npy"))
    with pytest.raises(UserError, match="not a regular file"):
        common.uploaded_path(str(uploads / "0123abcd"))
    # the app's own assets are readable (the embedded sample lives there)
    asset = next(p for p in common.APP_ASSETS.rglob("*") if p.is_file())
    assert common.uploaded_path(str(asset)) == asset.resolve()


def test_data_upload_refuses_server_files(uploads, outside):
    secret = outside / "secret.npy"
    np.save(secret, _pose())
    with pytest.raises(UserError, match="not uploaded"):
        data_tab.upload_motion(str(secret), "native")
    fig, meta, shown = data_tab.upload_motion(_upload(uploads, "mine.npy", _pose()), "native")
    assert shown[0].num_frames == 20


@pytest.mark.slow
def test_inpaint_upload_refuses_server_files(uploads, outside, tmp_path):
    from motionviz.models import aegan as A
    from motionviz.training import aegan as A_T
    from motionviz.ui import inpaint_tab

    torch.manual_seed(0)
    model = A.build_model(A.Config(frames=8, latent=4, channels=(4, 8), batch_size=8))
    ck = tmp_path / "ck"
    A_T.save(model, ck / "aegan.safetensors", {"steps": 0})
    with gr.Blocks() as demo:
        ctx = common.AppContext(checkpoint_dir=ck, data_root=None, models=["aegan"], motions=gr.State([]))
        inpaint_tab.build(ctx)
    fn = next(f.fn for f in demo.fns.values() if f.api_name == "inpaint")
    secret = outside / "secret.npy"
    np.save(secret, _pose())
    args = (30, 0, 0, inpaint_tab.NO_LIMB, 0, 4, 1, "tuned", False, [])
    with pytest.raises(gr.Error, match="not uploaded"):
        fn(inpaint_tab.UPLOAD, None, str(secret), *args)
    out = fn(inpaint_tab.UPLOAD, None, _upload(uploads, "mine.npy", _pose()), *args)
    assert out[4][-1].num_frames == 20


def test_video_refuses_server_files(uploads, outside):
    from motionviz.ui import mesh_tab

    clip = outside / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    with pytest.raises(UserError, match="not uploaded"):
        mesh_tab.process_video(str(clip), 12, False, None)


def test_errors_never_echo_file_content(uploads):
    csv = _upload(uploads, "users.csv", "\n".join(["x,y,z", "0,1,0", f"0,{SECRET},0"] + ["0,1,0"] * 3))
    with pytest.raises(UserError) as e:
        data_tab.upload_motion(csv, "native")
    assert SECRET not in str(e.value) and "row 3" in str(e.value)
    npy = _upload(uploads, "header.npy", b"\x93NUMPY\x01\x00\x20\x00{'descr': '" + SECRET.encode() + b"'}      \n")
    with pytest.raises(UserError) as e:
        data_tab.upload_motion(npy, "native")
    assert SECRET not in str(e.value)
    bvh = _upload(uploads, "x.bvh", f"HIERARCHY\nROOT {SECRET}\n{{\n OFFSET 0 0 0\n CHANNELS 1 {SECRET}\n}}\n"
                                    "MOTION\nFrames: 1\nFrame Time: 0.05\n0\n")
    with pytest.raises(UserError) as e:
        data_tab.upload_motion(bvh, "native")
    assert SECRET not in str(e.value)
    js = _upload(uploads, "x.json", json.dumps({"format": SECRET, "joints": SECRET}))
    with pytest.raises(UserError) as e:
        data_tab.upload_motion(js, "native")
    assert SECRET not in str(e.value)
    # .npz: neither a stored skeleton name nor the names of its arrays come back
    import io
    for arrays in ({"joints": _pose(), "fps": np.array(20.0), "skeleton": np.array(SECRET)}, {SECRET: _pose()}):
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        with pytest.raises(UserError) as e:
            data_tab.upload_motion(_upload(uploads, "x.npz", buf.getvalue()), "native")
        assert SECRET not in str(e.value), str(e.value)


@pytest.mark.slow
def test_recording_and_glb_uploads_refuse_server_files(uploads, outside):
    """The inputs added after the first fix (Correct vs incorrect: a recording; Body mesh: a .glb to view)
    go through the same check: a server path is refused, an upload is read."""
    from motionviz.ui import difference_tab

    secret = outside / "secret.npy"
    np.save(secret, _pose())
    with pytest.raises(UserError, match="not uploaded"):
        difference_tab._read_upload(str(secret))
    assert difference_tab._read_upload(_upload(uploads, "mine.npy", _pose())).num_frames == 20
    import app as app_module

    demo = app_module.build_app(checkpoint_dir=outside / "none", data_root=outside / "no-data", strict=True)
    view_glb = next(f.fn for f in demo.fns.values() if f.api_name == "mesh_view_glb")
    glb = outside / "secret.glb"
    glb.write_bytes(b"glTF" + b"\0" * 40)
    with pytest.raises(gr.Error, match="not uploaded"):
        view_glb({"path": str(glb), "meta": {"_type": "gradio.FileData"}})
    with pytest.raises(gr.Error, match="glTF 2.0"):                    # an upload is read (and checked)
        view_glb(_upload(uploads, "mine.glb", b"glTF" + b"\0" * 40))


@pytest.mark.slow
def test_app_api_refuses_a_file_data_that_was_never_uploaded(tmp_path, outside):
    """The probe of the issue over HTTP: a FileData naming a server file, sent straight to the queue API
    (no client-side upload); the secret must not come back and nothing may be exported."""
    httpx = pytest.importorskip("httpx")
    import app as app_module

    secret = outside / "secret.npy"
    np.save(secret, np.full((20, 15, 3), 1234.5678, np.float32))
    demo = app_module.build_app(checkpoint_dir=tmp_path / "none", data_root=tmp_path / "no-data")
    demo.queue().launch(prevent_thread_lock=True, server_port=_free_port(), quiet=True)
    try:
        base = demo.local_url.rstrip("/") + "/gradio_api"
        r = httpx.post(f"{base}/call/data_upload",
                       json={"data": [{"path": str(secret), "meta": {"_type": "gradio.FileData"}}, "native"]})
        eid = r.json()["event_id"]
        text = httpx.get(f"{base}/call/data_upload/{eid}", timeout=60).text
        assert "event: error" in text and "1234.5" not in text
        got = httpx.get(f"{demo.local_url.rstrip('/')}/gradio_api/file={secret}", timeout=30)
        assert got.status_code in (403, 404)
    finally:
        demo.close()


# ---- 8. one-line errors for every bad file; 2-3. budgets before work -------------------------------
def _one_line_user_error(path: str, skeleton: str = "native") -> str:
    with pytest.raises(UserError) as e:
        data_tab.upload_motion(path, skeleton)
    msg = str(e.value)
    assert "\n" not in msg and "Traceback" not in msg and len(msg) < 400, msg
    return msg


def _bvh(n_joints: int, frames: int, nested: bool = False, channels: int = 0) -> str:
    lines = ["HIERARCHY", "ROOT j0", "{", "OFFSET 0 0 0", f"CHANNELS {channels}"
             + (" Xposition Yposition Zposition Zrotation Xrotation Yrotation"[:0] if channels == 0 else
                " Xposition Yposition Zposition")]
    for j in range(1, n_joints):
        lines += [f"JOINT j{j}", "{", "OFFSET 0 1 0", "CHANNELS 0"]
        if not nested:
            lines.append("}")
    if nested:
        lines += ["}"] * (n_joints - 1)
    lines += ["}", "MOTION", f"Frames: {frames}", "Frame Time: 0.05"]
    lines += [" ".join(["0"] * channels)] * (frames if channels else 0)
    return "\n".join(lines) + "\n"


def test_bad_files_give_one_line_errors(uploads):
    assert "empty" in _one_line_user_error(_upload(uploads, "empty.npy", b""))
    assert "no frames" in _one_line_user_error(_upload(uploads, "none.npy", np.zeros((0, 15, 3), np.float32)))
    import io
    buf = io.BytesIO()
    np.savez(buf, a=np.zeros((3, 15, 3)))
    assert "valid .npy" in _one_line_user_error(_upload(uploads, "renamed.npy", buf.getvalue()))
    assert "nested" in _one_line_user_error(_upload(uploads, "deep.bvh", _bvh(1000, 1, nested=True)))
    assert "nested" in _one_line_user_error(_upload(uploads, "deep.json", "[" * 100_000 + "]" * 100_000))
    assert "nested" in _one_line_user_error(_upload(uploads, "deep2.json",
                                                    '{"format": "motionviz/1", "joints": ' + "[" * 50_000))
    # a BVH whose skeleton is none of ours: shown on its own skeleton; on the common one, a clear error
    odd = _upload(uploads, "odd.bvh", _bvh(5, 4, channels=3))
    for skeleton in ("native", "common"):
        try:
            fig, meta, shown = data_tab.upload_motion(odd, skeleton)
            assert shown[0].num_frames == 4
        except UserError as e:
            assert "\n" not in str(e) and "Traceback" not in str(e)


def test_bvh_bomb_is_refused_from_its_header(uploads):
    """1,024 joints, CHANNELS 0, Frames: 200000 in 1 KB of .xz: refused before forward kinematics
    (which would allocate (200000, 1024, 3, 3) float64 = 13.7 GiB)."""
    import lzma
    import time
    import tracemalloc

    bomb = lzma.compress(_bvh(1024, 200_000).encode())
    assert len(bomb) < 4096
    p = _upload(uploads, "bomb.bvh.xz", bomb)
    tracemalloc.start()
    t0 = time.perf_counter()
    msg = _one_line_user_error(p)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "joint-frames" in msg or "too long" in msg
    assert peak < 64 * 2**20 and time.perf_counter() - t0 < 5
    # 64 joints x 20,000 frames: over the joint-frame budget, refused before the data are parsed
    msg = _one_line_user_error(_upload(uploads, "wide.bvh", _bvh(64, 20_000)))
    assert "joint-frames" in msg


@pytest.mark.parametrize("far", [1e5, 1e6])
def test_outlier_coordinates_are_refused_with_a_clear_message(uploads, far):
    a = _pose(200)
    a[50, 3] = far
    msg = _one_line_user_error(_upload(uploads, "outlier.npy", a))
    assert "implausible coordinates" in msg and "frame 50" in msg and COMMON.joints[3] in msg


@pytest.mark.slow
def test_plot_cost_does_not_grow_with_the_span():
    """The floor grid has a bounded number of lines whatever the coordinates (1e5 m gave a 9 MB plot)."""
    from motionviz.viz.render import motion_figure

    small = Motion(_pose(40), COMMON, 20.0)
    a = _pose(40)
    a[:, :, 0] += np.linspace(0, 95, 40)[:, None]      # allowed: under the 100 m span limit
    big = Motion(a, COMMON, 20.0)
    n_small = len(motion_figure(small).to_json())
    n_big = len(motion_figure(big).to_json())
    assert n_big < 2 * n_small + 200_000, (n_small, n_big)


# ---- 7. seeds are exact ints, 0 ... 2**63 - 1 everywhere -------------------------------------------
def test_seeds_are_exact_integers_end_to_end():
    from motionviz.cli.sample import _whole
    from motionviz.core.limits import MAX_SEED
    from motionviz.generators.registry import Request

    assert MAX_SEED == common.MAX_SEED == 2**63 - 1
    a, b = Request(seed=2**53).validated(), Request(seed=2**53 + 1).validated()
    assert (a.seed, b.seed) == (2**53, 2**53 + 1)
    ga, gb = a.torch_generator(), b.torch_generator()
    assert not torch.equal(torch.randn(8, generator=ga), torch.randn(8, generator=gb))
    top = Request(seed=2**63 - 1).validated()
    assert top.seed == 2**63 - 1 and isinstance(top.seed, int)
    torch.randn(2, generator=top.torch_generator())
    for bad in (2**63, -1, 1.5, "12x", float("nan"), True, 2.0**60):
        with pytest.raises(UserError, match="seed"):
            Request(seed=bad).validated()
    assert _whole("9223372036854775807", "--seed", 0, MAX_SEED) == 2**63 - 1
    assert _whole("9007199254740993", "--seed", 0, MAX_SEED) == 2**53 + 1
    # the UI: a text box (browser number boxes hold doubles), parsed exactly
    assert common.resolve_seed("9223372036854775807") == 2**63 - 1
    assert common.resolve_seed(" 9007199254740993 ") == 2**53 + 1
    assert common.resolve_seed(7.0) == 7
    with pytest.raises(UserError, match="seed"):
        common.resolve_seed("9223372036854775808")
    assert isinstance(common.seed_box(), gr.Textbox)


@pytest.mark.slow
def test_every_seed_input_of_the_app_is_a_text_box(tmp_path, monkeypatch):
    import app as app_module

    demo = app_module.build_app(checkpoint_dir=Path(app_module.default_checkpoint_dir()), strict=False)
    seeds = [b for b in demo.blocks.values() if "seed" in str(getattr(b, "label", "") or "").lower()
             and not isinstance(b, gr.Checkbox)]
    assert seeds and all(isinstance(b, gr.Textbox) for b in seeds), [(type(b).__name__, b.label) for b in seeds]


@pytest.mark.slow
def test_seed_boxes_of_the_generator_tabs_are_text_boxes(tmp_path, monkeypatch):
    """With a (tiny) diffusion and VAE checkpoint every generator tab is built; each seed input is a text
    box (the Correct vs incorrect tab had a number box, which rounds seeds above 2**53)."""

    from _tiny_models import install_fake_encoder, make_diffusion, make_vae

    import app as app_module

    install_fake_encoder(monkeypatch)
    make_diffusion(tmp_path)
    make_vae(tmp_path)
    demo = app_module.build_app(checkpoint_dir=tmp_path, data_root=tmp_path / "none", strict=True)
    seeds = [b for b in demo.blocks.values() if "seed" in str(getattr(b, "label", "") or "").lower()
             and not isinstance(b, gr.Checkbox)]
    ids = {getattr(b, "elem_id", None) for b in seeds}
    assert "diff-seed" in ids, ids
    assert all(isinstance(b, gr.Textbox) for b in seeds), [(type(b).__name__, b.label) for b in seeds]
    from motionviz.ui import difference_tab
    assert difference_tab.to_int("9223372036854775807", "seed", 0, common.MAX_SEED) == 2**63 - 1


# ---- 6. checkpoints: SHA-256 before use, config validated before anything is built -------------------
def _tiny_aegan(directory: Path) -> Path:
    from motionviz.models import aegan as A
    from motionviz.training import aegan as A_T

    torch.manual_seed(0)
    model = A.build_model(A.Config(frames=8, latent=4, channels=(4, 8), batch_size=8))
    return A_T.save(model, directory / "aegan.safetensors", {"steps": 0}) or directory / "aegan.safetensors"


def test_shipped_checkpoints_verify_against_their_sums():
    from motionviz.core.checkpoint import SUMS_FILE, default_checkpoint_dir, read_sums, verify_checkpoint

    d = default_checkpoint_dir()
    sums = read_sums(d)
    assert sums is not None and (d / SUMS_FILE).is_file()
    for p in sorted(d.glob("*.safetensors")):
        assert p.name in sums, f"{p.name} is not in {SUMS_FILE}: run python -m motionviz checkpoints --update-sums"
        assert verify_checkpoint(p) == sums[p.name]


def test_flipped_weight_bytes_are_refused(tmp_path):
    from motionviz.core.checkpoint import write_sums
    from motionviz.core.errors import CheckpointError
    from motionviz.generators import inpaint as A_G_G

    p = _tiny_aegan(tmp_path)
    write_sums(tmp_path)
    A_G_G.load(p)                                          # verifies
    raw = bytearray(p.read_bytes())
    raw[-5] ^= 0x40                                    # one bit of the last weight
    p.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="SHA-256"):
        A_G_G.load(p)


def test_shipped_folder_needs_a_recorded_sum(tmp_path, monkeypatch):
    import motionviz.core.checkpoint as C
    from motionviz.core.errors import CheckpointError
    from motionviz.generators import inpaint as A_G_G

    monkeypatch.setenv("MOTIONVIZ_CHECKPOINTS", str(tmp_path))
    monkeypatch.setattr(C, "REPO_CHECKPOINTS", tmp_path)         # stands in for the repository's folder
    p = _tiny_aegan(tmp_path)
    with pytest.raises(CheckpointError, match="--update-sums"):
        A_G_G.load(p)
    from motionviz.cli import main
    assert main(["checkpoints", "--update-sums"]) == 0
    A_G_G.load(p)
    _tiny_aegan(tmp_path)                             # save_checkpoint keeps the recorded sum in step
    A_G_G.load(p)
    raw = bytearray(p.read_bytes())
    raw[-3] ^= 1
    p.write_bytes(bytes(raw))
    assert main(["checkpoints", "--verify"]) == 2


@pytest.mark.parametrize("config,match", [
    ("not json", "JSON object"),
    ("[1, 2]", "JSON object"),
    ('{"frames": "32"}', "whole number"),
    ('{"coord_scale": 1e999}', "finite"),
    ('{"channels": 7}', "list"),
    ('{"latent": 100000000}', "out of range"),
    ('{"channels": [4096, 4096]}', "does not match the weights|out of range"),
    ('{"bogus": 1}', "unknown"),
])
def test_malformed_or_crafted_config_metadata_is_a_one_line_error(tmp_path, config, match):
    from safetensors.torch import load_file, save_file

    from motionviz.core.errors import CheckpointError
    from motionviz.generators import inpaint as A_G_G

    p = _tiny_aegan(tmp_path)
    from safetensors import safe_open
    with safe_open(str(p), framework="pt") as f:
        meta = dict(f.metadata())
    meta["config"] = config
    save_file(load_file(str(p)), str(p), metadata=meta)
    with pytest.raises(CheckpointError, match=match) as e:
        A_G_G.load(p)
    assert "\n" not in str(e.value)


def test_crafted_config_of_the_distilled_sampler_is_refused_before_any_model_is_built(tmp_path, monkeypatch):
    """diffusion-fast: a config that passes its own validation (64 layers of 3,072 wide) would have made the
    student allocate 8.5 G numbers (34 GB) before the strict load; sized against the weights first."""

    from _tiny_models import make_diffusion_fast
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from motionviz.core.errors import CheckpointError
    from motionviz.generators import diffusion_fast as GF
    from motionviz.models import diffusion_fast as DF

    p = make_diffusion_fast(tmp_path)
    with safe_open(str(p), framework="pt") as f:
        meta = dict(f.metadata())
    cfg = json.loads(meta["config"])
    cfg.update(d_model=3072, ff=6144, heads=8, layers=64, teacher_layers=[0] * 64)
    save_file(load_file(str(p)), str(p), metadata={**meta, "config": json.dumps(cfg)})
    real = DF.StudentDenoiser

    def only_on_meta(c):             # a student with real memory would be the 34 GB: fail instead
        if torch.empty(0).device.type != "meta":
            pytest.fail("the student was built before its config was sized against the weights")
        return real(c)

    monkeypatch.setattr(DF, "StudentDenoiser", only_on_meta)       # the size check builds it from here
    monkeypatch.setattr(GF, "StudentDenoiser", only_on_meta)       # the loader from here
    with pytest.raises(CheckpointError, match="does not match the weights") as e:
        GF.load_generator(p)
    assert "\n" not in str(e.value)


# ---- 10. a fresh Space (no data folder) shows the embedded sample -------------------------------------
@pytest.mark.slow
def test_empty_data_folder_falls_back_to_the_embedded_sample(tmp_path, monkeypatch):
    import app as app_module
    from motionviz.ui import inpaint_tab

    empty = tmp_path / "empty-data"
    empty.mkdir()
    monkeypatch.setenv("MOTIONVIZ_CACHE", str(tmp_path / "cache"))
    demo = app_module.build_app(checkpoint_dir=tmp_path / "none", data_root=empty, strict=True)
    text = "\n".join(str(b.value) for b in demo.blocks.values() if isinstance(b, gr.Markdown))
    assert "embedded UI-PRMD sample" in text and "MOTIONVIZ_DATA" in text
    sample = app_module.SAMPLE_ROOT
    files = [p for p in sample.rglob("*.txt.gz")]
    assert len(files) == 40 and sum(p.stat().st_size for p in files) < 1_000_000
    assert "ODC PDDL" in (sample / "README.md").read_text()
    fns = {f.api_name: f.fn for f in demo.fns.values()}
    idx = data_tab_B.index_dataset("ui-prmd", sample)
    sel = data_tab_B.cascade(idx, None, None, None, None, None)
    assert len(sel.exercises) == 10 and {"correct", "incorrect"} <= {v for _, v in sel.corrects}
    fig, meta, shown = fns["data_initial"]("ui-prmd", sel.sequence, "native", "single")
    assert shown and shown[0].labels.dataset == "ui-prmd"
    ex = inpaint_tab._example_motion(sample)
    assert ex.num_frames >= 60 and ex.labels.subject == "s10"


# ---- 4-5. fair queues, bounded inpainting, session state freed ----------------------------------------
def test_inpaint_cost_is_checked_up_front():
    from motionviz.ui import inpaint_tab

    assert inpaint_tab.check_inpaint_budget(300, 32, 8, 200) == 35 * 200            # the defaults
    inpaint_tab.check_inpaint_budget(600, 32, 8, 200)                                # the longest input
    with pytest.raises(UserError, match="window-steps"):
        inpaint_tab.check_inpaint_budget(300, 32, 1, 500)                            # ~100 s before


@pytest.mark.slow
def test_long_jobs_have_their_own_queue_and_sessions_expire(tmp_path):
    import app as app_module

    ck = tmp_path / "ck"
    _tiny_aegan(ck)
    demo = app_module.build_app(checkpoint_dir=ck, data_root=tmp_path / "none", strict=True)
    fns = {f.api_name: f for f in demo.fns.values()}
    for name in ("inpaint", "video_extract"):
        assert fns[name].concurrency_id == common.LONG_QUEUE and fns[name].concurrency_limit == 1
    short = [f for f in demo.fns.values() if f.api_name in ("data_export", "mesh_show")]
    assert short and all(f.concurrency_id != common.LONG_QUEUE for f in short)
    states = [b for b in demo.blocks.values() if isinstance(b, gr.State)]
    motions = [s for s in states if s.time_to_live <= common.SESSION_TTL_S]
    assert len(motions) >= 2          # the shared motion list and the Data tab's shown motions
    import inspect
    assert "state_session_capacity=MAX_SESSIONS" in inspect.getsource(app_module)


# ---- 9. CLI outputs: exactly the named path, atomically, checked before work -----------------------
def test_cli_inpaint_out_is_exactly_the_named_file(tmp_path):
    from motionviz.cli.inpaint import check_out_path, save_npy_atomic

    folder = tmp_path / "existing"
    folder.mkdir()
    for bad in (folder, tmp_path / "x.txt"):
        with pytest.raises(UserError, match="--out"):
            check_out_path(bad)
    out = save_npy_atomic(tmp_path / "sub" / "clean.npy", np.zeros((3, 15, 3), np.float32))
    assert out == tmp_path / "sub" / "clean.npy" and np.load(out).shape == (3, 15, 3)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["clean.npy"]
    from motionviz.cli import main
    np.save(tmp_path / "in.npy", _pose())
    assert main(["inpaint", "--input", str(tmp_path / "in.npy"), "--out", str(folder)]) == 2
    assert main(["inpaint", "--input", str(tmp_path / "in.npy"), "--out", str(tmp_path / "x.txt")]) == 2
    assert not (tmp_path / "x.txt.npy").exists() and not (folder / "out.npy").exists()


def test_cli_writes_are_atomic(tmp_path):
    """A write that fails half-way (disk full, Ctrl-C) leaves the previous file whole and no partial or
    temporary file; before, outputs were written in place."""
    from motionviz.io.files import atomic_write

    out = tmp_path / "m.npy"
    np.save(out, np.ones((4, 15, 3), np.float32))
    before = out.read_bytes()

    def half_then_fail(tmp: Path) -> None:
        tmp.write_bytes(before[: len(before) // 2])
        raise OSError("No space left on device")

    with pytest.raises(OSError):
        atomic_write(out, half_then_fail)
    assert out.read_bytes() == before and sorted(q.name for q in tmp_path.iterdir()) == ["m.npy"]


# ---- 9. training arguments: validated before any work, one line and exit 2 ----------------------------
def _cli(argv: list[str], capsys) -> tuple[int, str]:
    from motionviz.cli import main

    rc = main(argv)
    err = capsys.readouterr().err.strip()
    return rc, err


@pytest.mark.parametrize("bad,match", [
    (["--lr", "nan"], "--lr"), (["--lr", "inf"], "--lr"), (["--lr", "-0.1"], "--lr"),
    (["--batch-size", "0"], "--batch-size"), (["--batch-size", "-3"], "--batch-size"),
    (["--minutes", "nan"], "--minutes"), (["--minutes", "-1"], "--minutes"), (["--steps", "0"], "--steps"),
    (["--steps", "-5"], "--steps"), (["--save-every", "0"], "--save-every"), (["--seed", "-1"], "--seed"),
])
def test_train_arguments_are_checked_before_any_work(bad, match, capsys, monkeypatch, tmp_path):
    """``--lr nan`` / ``--batch-size 0`` gave tracebacks from inside the trainer (after loading the data);
    now one line, exit 2, before the data folder is even looked at."""
    import time

    from motionviz.training import loop as T

    monkeypatch.setattr(T, "build_setup", lambda opts: pytest.fail("the trainer was built"))
    t0 = time.perf_counter()
    argv = ["train", "diffusion", "--tiny", "--steps", "1", "--out", str(tmp_path / "d.safetensors"),
            "--runs-dir", str(tmp_path / "runs"), "--no-progress", *bad]
    rc, err = _cli(argv, capsys)
    assert rc == 2 and match in err and err.count("\n") == 0 and "Traceback" not in err, err
    assert time.perf_counter() - t0 < 5 and not (tmp_path / "runs").exists()


def test_train_out_is_checked_before_training(tmp_path, capsys, monkeypatch):
    """``--out <dir>`` failed only after the whole training budget; now before the trainer is built."""
    from motionviz.training import loop as T

    monkeypatch.setattr(T, "build_setup", lambda opts: pytest.fail("the trainer was built"))
    folder = tmp_path / "folder"
    folder.mkdir()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for out, match in ((folder, "is a folder"), (tmp_path / "x.txt", ".safetensors"),
                       (a_file / "m.safetensors", "is a file"), (Path("/proc/m.safetensors"), "cannot write")):
        rc, err = _cli(["train", "diffusion", "--tiny", "--steps", "1", "--out", str(out),
                        "--runs-dir", str(tmp_path / "runs"), "--no-progress"], capsys)
        assert rc == 2 and match in err and "\n" not in err, (out, err)
    assert list(folder.iterdir()) == []


def test_resume_with_nothing_to_resume_is_an_error(toy_trainer, tmp_path, capsys):
    """``--resume`` with no resume state used to start over silently."""
    argv = ["train", "toy", "--steps", "3", "--out", str(tmp_path / "t.safetensors"), "--runs-dir",
            str(tmp_path / "runs"), "--no-progress"]
    rc, err = _cli(argv + ["--resume"], capsys)
    assert rc == 2 and "nothing to resume" in err and not (tmp_path / "t.safetensors").exists()
    assert _cli(argv, capsys)[0] == 0
    rc, err = _cli(argv[:2] + ["--steps", "6"] + argv[4:] + ["--resume"], capsys)
    assert rc == 0
    from motionviz.core.checkpoint import read_metadata
    assert read_metadata(tmp_path / "t.safetensors")["steps"] == "6"


def test_corrupt_or_mismatched_resume_state_is_one_line(toy_trainer, tmp_path, capsys):
    runs = tmp_path / "runs"
    argv = ["train", "toy", "--steps", "3", "--out", str(tmp_path / "t.safetensors"), "--runs-dir", str(runs),
            "--no-progress"]
    assert _cli(argv, capsys)[0] == 0
    state = runs / "resume.safetensors"
    good = state.read_bytes()
    # a configuration change (dim 3 -> 2) is named, not a size-mismatch traceback
    rc, err = _cli(argv + ["--resume", "--set", "dim=2"], capsys)
    assert rc == 2 and "different model configuration" in err and "dim" in err and "\n" not in err, err
    # a state of an older run that did not record its configuration: the shapes are compared
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    with safe_open(str(state), framework="pt") as f:
        meta = dict(f.metadata())
    info = json.loads(meta["info"])
    info.pop("config")
    save_file(load_file(str(state)), str(state), metadata={**meta, "info": json.dumps(info)})
    rc, err = _cli(argv + ["--resume", "--set", "dim=2"], capsys)
    assert rc == 2 and "does not fit this model" in err and "\n" not in err, err
    for corrupt in (good[: len(good) // 2], b"\x00" * 64, b""):
        state.write_bytes(corrupt)
        rc, err = _cli(argv + ["--resume"], capsys)
        assert rc == 2 and "resume state" in err and "\n" not in err and "Traceback" not in err, err
    save_file(load_file(str(tmp_path / "t.safetensors")), str(state), metadata={"info": "[", "optimizers": "{}"})
    rc, err = _cli(argv + ["--resume"], capsys)
    assert rc == 2 and "malformed" in err, err


def test_diverging_training_is_one_line(toy_trainer, tmp_path, capsys):
    rc, err = _cli(["train", "toy", "--steps", "2000", "--lr", "10", "--out", str(tmp_path / "t.safetensors"),
                    "--runs-dir", str(tmp_path / "runs"), "--no-progress"], capsys)
    assert rc == 2 and "diverged" in err and "\n" not in err, err


# ---- 9. CLI inputs: classify reads big files a bounded chunk at a time ---------------------------------
class _CountingRecognizer:
    """Stands in for the recogniser: records the frames of each ``predict`` call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, motions):
        self.calls.append(sum(len(m) for m in motions))
        return [{"label": "ui-prmd:m01", "probability": 1.0, "correct": None} for _ in motions]


def test_classify_streams_big_files_in_bounded_chunks(tmp_path, capsys, monkeypatch):
    """``classify`` on a 192 MB file used 5.4 GB (every motion through the recogniser at once); now the file
    is memory-mapped and classified CLASSIFY_CHUNK_FRAMES frames at a time, printed as it goes."""
    from motionviz.cli import evaluate as cli_eval

    fake = _CountingRecognizer()
    monkeypatch.setattr(cli_eval, "_recognizer", lambda args: fake)
    a = np.lib.format.open_memmap(tmp_path / "many.npy", mode="w+", dtype=np.float32, shape=(600, 200, 15, 3))
    a[:] = _pose(200)[None]
    a.flush()
    del a
    from motionviz.cli import main
    assert main(["classify", "--input", str(tmp_path / "many.npy"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["predictions"]) == 600
    assert sum(fake.calls) == 600 * 200 and max(fake.calls) <= cli_eval.CLASSIFY_CHUNK_FRAMES, fake.calls


def test_classify_refuses_an_overlong_motion_from_the_header(tmp_path, capsys, monkeypatch):
    """A 198 MB (1, 1,100,000, 15, 3) array (sparse on disk): refused from its header, nothing read."""
    import time
    import tracemalloc

    from motionviz.cli import evaluate as cli_eval

    fake = _CountingRecognizer()
    monkeypatch.setattr(cli_eval, "_recognizer", lambda args: fake)
    big = np.lib.format.open_memmap(tmp_path / "long.npy", mode="w+", dtype=np.float32, shape=(1, 1_100_000, 15, 3))
    del big
    assert (tmp_path / "long.npy").stat().st_size > 190_000_000
    tracemalloc.start()
    t0 = time.perf_counter()
    rc, err = _cli(["classify", "--input", str(tmp_path / "long.npy")], capsys)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert rc == 2 and ("too long" in err or "joint-frames" in err) and "\n" not in err, err
    assert peak < 32 * 2**20 and time.perf_counter() - t0 < 5 and fake.calls == []


# ---- 9. CLI outputs of every verb: exactly the named file, checked before work, atomic ------------------
def _verb_argvs(tmp_path: Path, out: str) -> dict[str, list[str]]:
    """Each verb that writes a file, with an input / model that does not exist: an error about ``--out``
    proves ``--out`` was checked first."""
    missing = str(tmp_path / "missing-input.npy")
    nock = str(tmp_path / "no-checkpoints")
    return {
        "sample": ["sample", "--model", "diffusion", "--text", "a squat", "--checkpoint-dir", nock, "--out", out],
        "interpolate": ["interpolate", "--model", "vae", "--exercise", "ui-prmd:m01", "--checkpoint-dir", nock,
                        "--out", out],
        "inpaint": ["inpaint", "--input", missing, "--out", out],
        "export": ["export", "--input", missing, "--format", "npy", "--out", out],
        "video": ["video", str(tmp_path / "missing.mp4"), "--out", out],
    }


@pytest.mark.parametrize("verb", ["sample", "interpolate", "inpaint", "export", "video"])
def test_every_cli_out_is_checked_before_work(verb, tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for out, match in ((str(tmp_path / "x.txt"), "must end in"), (str(a_file / "m.npy"), "is a file"),
                       ("/proc/m.npy", "cannot write")):
        rc, err = _cli(_verb_argvs(tmp_path, out)[verb], capsys)
        assert rc == 2 and "--out" in err and match in err and "\n" not in err, (verb, out, err)
    assert not (tmp_path / "x.txt.npy").exists()
    if verb != "export":                   # export's --out may name a folder: <folder>/<input name>.npy
        folder = tmp_path / "folder.npy"
        folder.mkdir()
        rc, err = _cli(_verb_argvs(tmp_path, str(folder))[verb], capsys)
        assert rc == 2 and "is a folder" in err, err
        assert list(folder.iterdir()) == []


def test_export_writes_exactly_the_named_file(tmp_path, capsys):
    src = tmp_path / "in.npy"
    np.save(src, _pose(30))
    rc, err = _cli(["export", "--input", str(src), "--format", "json", "--out", str(tmp_path / "o" / "m.json")],
                   capsys)
    assert rc == 0 and sorted(p.name for p in (tmp_path / "o").iterdir()) == ["m.json"]
    assert Motion.from_json((tmp_path / "o" / "m.json").read_text()).num_frames == 30
    rc, err = _cli(["export", "--input", str(src), "--format", "npy", "--out", str(tmp_path / "o" / "m.txt")],
                   capsys)
    assert rc == 2 and not (tmp_path / "o" / "m.txt.npy").exists()
    # a (N, T, J, 3) batch whose T x J is over the user-file budget: refused from the header
    big = np.lib.format.open_memmap(tmp_path / "wide.npy", mode="w+", dtype=np.float32, shape=(2, 90_000, 15, 3))
    del big
    rc, err = _cli(["export", "--input", str(tmp_path / "wide.npy"), "--format", "npy", "--out",
                    str(tmp_path / "o" / "w.npy")], capsys)
    assert rc == 2 and ("too long" in err or "joint-frames" in err), err


def test_bench_out_is_checked_before_the_benchmark(tmp_path, capsys, monkeypatch):
    from motionviz.evaluation import bench

    monkeypatch.setattr(bench, "run_bench", lambda **kw: pytest.fail("the benchmark ran"))
    for out in (tmp_path, tmp_path / "b.txt", Path("/proc/b.json")):
        rc, err = _cli(["bench", "--quick", "--out", str(out)], capsys)
        assert rc == 2 and "--out" in err, err


# ---- 4. a request's cost up front, and its time budget while it runs ------------------------------------
def test_text_request_cost_is_checked_up_front():
    from motionviz.ui import text_tab

    req, _ = text_tab._request("a squat", None, None, 2.5, 20, 120, 4, 0)
    assert req.num * req.steps * req.frames == 9_600
    text_tab._request("a squat", None, None, 2.5, 100, 300, 8, 0)            # at the budget
    with pytest.raises(UserError, match="frame-steps"):
        text_tab._request("a squat", None, None, 2.5, 200, 300, 8, 0)        # every slider at its maximum


def test_a_request_stops_at_its_time_budget():
    """The deadline is checked at every progress report (between sampling steps, windows, frames)."""
    now = [0.0]
    shown = []
    cb = common.progress_callback(lambda f, desc=None: shown.append(f), limit_s=10, clock=lambda: now[0])
    cb(0.1, "step 1")
    now[0] = 9.9
    cb(0.5, "step 5")
    now[0] = 10.5
    with pytest.raises(common.RequestTimeout, match="longer than 10 s") as e:
        cb(0.6, "step 6")
    assert isinstance(e.value, UserError) and "60%" in str(e.value) and shown == [0.1, 0.5]
    assert common.LONG_TIME_LIMIT_S > common.REQUEST_TIME_LIMIT_S > 0


def test_sampling_is_stopped_by_the_deadline():
    """A real sampling loop stops between steps with the one-line error (each step "takes" a second on
    a fake clock), and the app's handler turns it into a gr.Error."""
    from motionviz.core import sampling

    schedule = sampling.Schedule(100)
    steps_run = []

    def denoise(x, t):
        steps_run.append(int(t[0]))
        return torch.zeros_like(x)

    now = [0.0]

    def clock():
        now[0] += 1.0
        return now[0]

    @common.user_error
    def handler():
        cb = common.progress_callback(lambda *a, **k: None, limit_s=5, clock=clock)
        return sampling.ddim_sample(denoise, (1, 4, 3), schedule, 50, progress=cb)

    with pytest.raises(gr.Error, match="longer than 5 s"):
        handler()
    assert 3 <= len(steps_run) <= 6


# ---- 4-5. a short request is served while long jobs run; sessions come and go ----------------------------
@pytest.fixture()
def running_app(tmp_path, monkeypatch):
    """The app on a free port with tiny diffusion + AE-GAN checkpoints and an empty data folder (the
    embedded sample), at most 8 sessions kept."""

    from _tiny_models import install_fake_encoder, make_diffusion

    import app as app_module

    install_fake_encoder(monkeypatch)
    ck = tmp_path / "ck"
    make_diffusion(ck)
    _tiny_aegan(ck)
    empty = tmp_path / "empty"
    empty.mkdir()
    demo = app_module.build_app(checkpoint_dir=ck, data_root=empty, strict=True)
    demo.queue(max_size=64, default_concurrency_limit=4).launch(
        prevent_thread_lock=True, server_port=_free_port(), quiet=True, state_session_capacity=8)
    try:
        yield demo, ck, app_module.SAMPLE_ROOT
    finally:
        demo.close()


@pytest.mark.slow
def test_short_request_is_served_while_long_jobs_run(running_app):
    from motionviz.generators.inpaint import load_model
    from motionviz.ui import loadcheck

    demo, ck, sample = running_app
    window = int(load_model(ck / "aegan.safetensors").cfg.frames)
    res = loadcheck.measure_latency(demo.local_url, loadcheck._max_inpaint_args(sample, window), requests=3)
    assert not res["errors"], res
    assert len(res["inpaint_seconds"]) == 2
    # the short requests did not wait for the long queue: each took a fraction of one inpainting job
    assert res["max_s"] < 0.5 * max(res["inpaint_seconds"]), res
    assert res["max_s"] < 15, res


@pytest.mark.slow
def test_session_churn_is_capped_and_memory_returns(running_app, monkeypatch):
    from motionviz.ui import loadcheck, sessions

    demo, _, _ = running_app
    # the server notices a closed client within a heartbeat and frees its session after the grace period
    monkeypatch.setenv("GRADIO_HEARTBEAT_INTERVAL", "0.5")
    monkeypatch.setattr(sessions, "CLOSED_GRACE_S", 1.0)
    res = loadcheck.measure_sessions(demo.local_url, sessions=24, motions_per_session=1, demo=demo)
    assert res["sessions_kept_at_peak"] <= 8, res             # the cap (state_session_capacity)
    assert res["sessions_kept_at_end"] == 0, res              # every session that went was freed ...
    assert demo.session_reaper.freed >= 16, res               # ... by the reaper (the rest by the cap)
    assert res["rss_growth_mb"] < 100, res


def test_a_weight_mismatch_is_one_line_naming_the_keys(tmp_path):
    """Every loader reads weights through checkpoint.load_strict: one line, the file and the first keys."""
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    sd = net.state_dict()
    sd.pop("1.bias")
    sd["2.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as e:
        load_strict(net, sd, tmp_path / "m.safetensors", "its config")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("m.safetensors does not match its config")
    assert "1.bias" in msg and "2.weight" in msg
    load_strict(net, net.state_dict(), tmp_path / "m.safetensors", "its config")      # a match loads
