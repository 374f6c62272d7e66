"""Outputs of the shipped checkpoints for fixed seeds match the ones recorded in ``tests/golden/outputs.json``.

Two checks per case.  On the recording's software stack (torch, numpy, scipy, CPU architecture, the CPU
kernel level torch dispatches to, e.g. AVX2 or AVX512, and the CPU's vendor and model) the outputs must be
**bit-identical** (SHA-256 of their float32 bytes).  On any other stack, where floating-point results
legitimately differ in the last bits, a **fingerprint** must match within 1e-4 (metres; relative and
absolute): count, NaNs, mean, std, min, max and 12 fixed random projections of the outputs.  Kernels of
another CPU level move it by at most 3e-6 (measured: every case under ``ATEN_CPU_CAPABILITY=avx2`` against
an AVX512 recording), while a different sample, or a change spread over a motion, moves it far more; a
single joint of a single frame has to move about 1 cm to be seen, so small local changes are caught by the
bit-identical check only.
Cases are grouped by the checkpoint files they read; the JSON keeps each group's checkpoint SHA-256 sums,
and a group whose checkpoint was replaced skips with a reason until it is re-recorded::

    OMP_NUM_THREADS=1 PYTHONHASHSEED=0 python tests/test_golden_outputs.py --record [GROUP ...]

(no group: every group; ``--list`` prints the groups and their cases; ``--check [GROUP ...]`` compares
without pytest and exits 1 on a difference).
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import scipy
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:                      # run as a script
    sys.path.insert(0, str(ROOT))

from motionviz.core.representation import keep_mask
from motionviz.evaluation.generative import generate_pool
from motionviz.generators.inpaint import baseline, inpaint, load_model, preset
from motionviz.generators.recognition import load_recognizer
from motionviz.generators.registry import Request, load_generator
from motionviz.generators.upsample import load_upsampler, upsample
from motionviz.generators.vae import Endpoint
from motionviz.video import smooth_fill

pytestmark = [pytest.mark.slow, pytest.mark.shipped]

GOLDEN_FILE = Path(__file__).parent / "golden" / "outputs.json"
CHECKPOINTS = ROOT / "checkpoints"
TEXT = "a person raises both arms above the head and lowers them"


def digest(a) -> str:
    """SHA-256 of the C-ordered float32 bytes of ``a`` (a Motion, an array or a list of either)."""
    h = hashlib.sha256()
    for x in a if isinstance(a, (list, tuple)) else [a]:
        h.update(np.ascontiguousarray(np.asarray(getattr(x, "joints", x), dtype=np.float32)).tobytes())
    return h.hexdigest()


FINGERPRINT_TOL = 1e-4
_PROJECTIONS = 12


def _flat(a) -> np.ndarray:
    return np.concatenate([np.asarray(getattr(x, "joints", x), dtype=np.float64).ravel()
                           for x in (a if isinstance(a, (list, tuple)) else [a])])


def fingerprint(a) -> list[float]:
    """[count, NaN count, mean, std, min, max, 12 projections] of the outputs (NaN read as 0): the
    projections are onto fixed random unit-variance vectors, divided by the square root of the count."""
    v = _flat(a)
    nan = np.isnan(v)
    v = np.where(nan, 0.0, v)
    n = max(len(v), 1)
    proj = np.random.default_rng(12345).standard_normal((_PROJECTIONS, len(v))) @ v / np.sqrt(n)
    stats = [float(len(v)), float(nan.sum()), v.mean(), v.std(), v.min(), v.max()] if len(v) else [0.0] * 6
    return [float(f"{x:.7g}") for x in list(stats) + list(proj)]


def fingerprint_close(a: list[float], b: list[float], tol: float = FINGERPRINT_TOL) -> bool:
    return len(a) == len(b) and a[:2] == b[:2] and bool(np.allclose(a[2:], b[2:], rtol=tol, atol=tol))


# ---- inputs ----------------------------------------------------------------------------------------------
@cache
def vae_motion():
    """A 60-frame VAE sample (UI-PRMD deep squat, seed 3): the input of the inpainting cases."""
    return load_generator("vae", CHECKPOINTS).sample("ui-prmd:m01", True, frames=60, num=1, seed=3)[0]


@cache
def holes() -> tuple[np.ndarray, np.ndarray]:
    """``vae_motion`` with a fixed pattern of missing joints (NaN) and its observed mask (T, J)."""
    x = vae_motion().joints.astype(np.float32)
    rng = np.random.default_rng(0)
    observed = rng.random(x.shape[:2]) > 0.3
    observed[20:30, 3:6] = False                              # a stretch of one arm
    observed[0, 0] = True
    return np.where(observed[..., None], x, np.nan).astype(np.float32), observed


@cache
def diffusion_text_out():
    return load_generator("diffusion", CHECKPOINTS).generate(
        Request(model="diffusion", text=TEXT, frames=40, steps=5, num=2, seed=0))


# ---- cases: group -> name -> callable returning an array / Motion / list of them ------------------------
def _diffusion_edit():
    src = diffusion_text_out()[0]
    keep = keep_mask(src.num_frames, keep_first=8, keep_last=8)
    return load_generator("diffusion", CHECKPOINTS).generate(
        Request(model="diffusion", text=TEXT, frames=40, steps=5, num=1, seed=1, source=src, keep=keep))


def _fast(steps: int, **kw):
    return lambda: load_generator("diffusion-fast", CHECKPOINTS).generate(
        Request(model="diffusion-fast", frames=40, steps=steps, num=2, seed=2, **kw))


def _vae_interp():
    gen = load_generator("vae", CHECKPOINTS)
    return gen.interpolate_path(Endpoint("ui-prmd:m01", True, 4), Endpoint("ui-prmd:m02", False, 9),
                                steps=4, frames=30, spherical=True)


def _aegan(name: str, **kw):
    def run():
        x, observed = holes()
        res = inpaint(load_model(CHECKPOINTS / "aegan.safetensors"), x, observed, steps=20, **preset(name), **kw)
        return np.concatenate([res.joints, res.raw]) if res.raw is not None else res.joints
    return run


def _upsample(joint_set: str, **kw):
    def run():
        return upsample(load_upsampler(CHECKPOINTS / "aegan-upsample.safetensors"), vae_motion().joints,
                        joint_set, **kw).joints
    return run


def _pool():
    gen = load_generator("vae", CHECKPOINTS)
    labels = ["ui-prmd:m03", "kimore:ex2"]
    return generate_pool(gen, labels, num=2, frames={"ui-prmd:m03": 30, "kimore:ex2": 36}, seed=11)


def _recognizer():
    motions = [vae_motion(), diffusion_text_out()[1]]
    return load_recognizer(CHECKPOINTS / "recognizer.safetensors").features(motions)


#: group -> (checkpoint files the group reads, {case: callable})
GROUPS = {
    "diffusion": (("diffusion.safetensors",), {
        "diffusion_text": diffusion_text_out,
        "diffusion_ddpm_label": lambda: load_generator("diffusion", CHECKPOINTS).generate(
            Request(model="diffusion", label="ui-prmd:m01", correct=False, sampler="ddpm", frames=40, steps=4,
                    num=2, seed=7)),
        "diffusion_unconditional_guided": lambda: load_generator("diffusion", CHECKPOINTS).generate(
            Request(model="diffusion", frames=32, steps=3, num=1, seed=2**63 - 5)),
        "diffusion_edit": _diffusion_edit,
    }),
    # diffusion-fast.safetensors is about to be replaced by a re-distilled student: its own group, so the
    # group skips (checkpoint sum changed) until it is re-recorded, while the others keep guarding.
    "diffusion-fast": (("diffusion-fast.safetensors",), {
        "fast_1_text": _fast(1, text=TEXT),
        "fast_2_text": _fast(2, text=TEXT),
        "fast_4_label": _fast(4, label="kimore:ex1", guidance=2.0),
    }),
    "vae": (("vae.safetensors",), {
        "vae_sample": lambda: load_generator("vae", CHECKPOINTS).sample("ui-prmd:m01", False, frames=40, num=2,
                                                                         seed=5),
        "vae_interp_spherical": _vae_interp,
        "vae_vary": lambda: load_generator("vae", CHECKPOINTS).vary(vae_motion(), num=2, seed=6, spread=0.5),
        "evaluate_pool": _pool,
    }),
    "aegan": (("aegan.safetensors", "vae.safetensors"), {
        "aegan_tuned": _aegan("tuned"),
        "aegan_thesis": _aegan("thesis"),
        "aegan_denoise": _aegan("tuned", keep_observed=False),
        "baseline": lambda: baseline(*holes()),
        "smooth_fill": lambda: smooth_fill(holes()[0], holes()[1], fps=20.0),
    }),
    "upsample": (("aegan-upsample.safetensors", "vae.safetensors"), {
        "up_coco17": _upsample("coco17"),
        "up_trackers": _upsample("trackers", steps=10),
    }),
    "recognizer": (("recognizer.safetensors", "vae.safetensors", "diffusion.safetensors"), {
        "recognizer_features": _recognizer,
    }),
}


def _file_sum(name: str) -> str:
    return hashlib.sha256((CHECKPOINTS / name).read_bytes()).hexdigest()


def _cpu_model() -> str:
    """The CPU's vendor and model name (/proc/cpuinfo; platform.processor() elsewhere): libraries pick
    different kernels on CPUs of the same instruction level (seen: AMD EPYC vs Intel, both AVX512)."""
    try:
        pairs = (line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines()[:30] if ":" in line)
        info = {k.strip(): v.strip() for k, v in pairs}
        return " ".join(info.get(k, "") for k in ("vendor_id", "model name")).strip() or platform.processor()
    except OSError:
        return platform.processor()


def _stack() -> dict[str, str]:
    return {"torch": torch.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "machine": platform.machine(), "cpu": torch.backends.cpu.get_cpu_capability(), "cpu_model": _cpu_model()}


def _load() -> dict:
    return json.loads(GOLDEN_FILE.read_text()) if GOLDEN_FILE.is_file() else {"groups": {}}


CASES = [(g, c) for g, (_, cases) in GROUPS.items() for c in cases]


@pytest.mark.parametrize(("group", "case"), CASES, ids=[c for _, c in CASES])
def test_golden(group: str, case: str):
    golden = _load()
    rec = golden["groups"].get(group)
    if rec is None or case not in rec["hashes"] or case not in rec.get("fingerprints", {}):
        pytest.skip(f"no recorded output for {group}/{case}; record with tests/test_golden_outputs.py --record {group}")
    files, cases = GROUPS[group]
    changed = [f for f in files if rec["checkpoints"].get(f) != _file_sum(f)]
    if changed:
        pytest.skip(f"{', '.join(changed)} changed since the recording; re-record with "
                    f"tests/test_golden_outputs.py --record {group}")
    torch.set_num_threads(1)
    out = cases[case]()
    if golden.get("stack") == _stack():
        assert digest(out) == rec["hashes"][case], f"{group}/{case} differs from the recorded output"
    fp = fingerprint(out)
    assert fingerprint_close(fp, rec["fingerprints"][case]), \
        f"{group}/{case} differs from the recorded output beyond {FINGERPRINT_TOL}: {fp} vs {rec['fingerprints'][case]}"


def test_fingerprint_tolerates_last_bits_and_catches_changes():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.3, (120, 15, 3)).astype(np.float32)
    fp = fingerprint(a)
    assert fingerprint_close(fingerprint(a + rng.normal(0, 1e-6, a.shape).astype(np.float32)), fp)
    assert not fingerprint_close(fingerprint(a + np.float32(0.01)), fp)                 # 1 cm shift
    assert not fingerprint_close(fingerprint(rng.normal(0, 0.3, a.shape).astype(np.float32)), fp)
    b = a.copy()
    b[:, 3] = np.nan                                                                     # a joint lost
    assert not fingerprint_close(fingerprint(b), fp)


def _record(groups: list[str]) -> None:
    torch.set_num_threads(1)
    golden = _load()
    if golden.get("stack") not in (None, _stack()) and set(groups) != set(GROUPS):
        raise SystemExit(f"the file was recorded with {golden['stack']}; re-record every group on this stack")
    golden["stack"] = _stack()
    for g in groups:
        files, cases = GROUPS[g]
        outs = {c: fn() for c, fn in cases.items()}
        golden["groups"][g] = {"checkpoints": {f: _file_sum(f) for f in files},
                               "hashes": {c: digest(o) for c, o in outs.items()},
                               "fingerprints": {c: fingerprint(o) for c, o in outs.items()}}
        print(g, json.dumps(golden["groups"][g]["hashes"], indent=1))
    golden["groups"] = dict(sorted(golden["groups"].items()))
    GOLDEN_FILE.parent.mkdir(exist_ok=True)
    GOLDEN_FILE.write_text(json.dumps(golden, indent=2) + "\n")


def _check(groups: list[str]) -> int:
    torch.set_num_threads(1)
    golden, bad = _load(), 0
    exact = golden.get("stack") == _stack()
    for g in groups:
        rec = golden["groups"].get(g)
        files, cases = GROUPS[g]
        if rec is None or any(rec["checkpoints"].get(f) != _file_sum(f) for f in files):
            print(f"SKIP {g} (not recorded for these checkpoints)")
            continue
        for c, fn in cases.items():
            out = fn()
            fp = fingerprint(out)
            close = fingerprint_close(fp, rec.get("fingerprints", {}).get(c, []))
            same = digest(out) == rec["hashes"].get(c)
            ok = close and (same or not exact)
            bad += not ok
            ref = rec.get("fingerprints", {}).get(c, [])
            dev = max((abs(x - y) for x, y in zip(fp[2:], ref[2:])), default=float("nan"))
            print(f"{'ok  ' if ok else 'DIFF'} {g}/{c} (bit-identical: {same}, largest fingerprint deviation "
                  f"{dev:.2g})", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--check"]:
        sys.exit(_check(args[1:] or list(GROUPS)))
    if args[:1] == ["--list"]:
        for g, (files, cases) in GROUPS.items():
            print(f"{g}: {', '.join(cases)}  ({', '.join(files)})")
    elif args[:1] == ["--record"]:
        unknown = [g for g in args[1:] if g not in GROUPS]
        if unknown:
            raise SystemExit(f"unknown group(s) {unknown}; choose from {', '.join(GROUPS)}")
        _record(args[1:] or list(GROUPS))
    else:
        raise SystemExit(__doc__)
