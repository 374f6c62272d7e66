"""The two figures of the public-Space reliability contract (issue #14), measured on a running app:

* **latency**: p95 of text -> motion requests served while two maximal inpainting requests (the largest
  window x step budget the app accepts) run in the long queue;
* **sessions**: the server's resident memory after ``--sessions`` sessions came, stored motions in their
  session state and went (and the server freed them: :mod:`motionviz.ui.sessions`), against the memory at
  the start.

Run ``python -m motionviz.ui.loadcheck [--checkpoints DIR] [--requests 20] [--sessions 200] [--json]``.  It
starts the app in this process on a free local port and drives it through ``gradio_client`` (each client
is its own session).  Without ``--checkpoints`` it builds tiny random diffusion / AE-GAN checkpoints in a
temporary folder (the numbers then measure the queue and the server, not the models); with the shipped
folder they measure the real models.  Everything is printed as one JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gradio.utils import get_heartbeat_rate

from ..core import representation_torch as D_RT
from ..core.checkpoint import data_provenance, default_checkpoint_dir
from ..core.errors import UserError
from ..core.skeleton import COMMON
from ..data import data_root
from ..generators import inpaint as inpaint_G
from ..generators import text_encoders as text
from ..models import aegan as A
from ..models import diffusion as D
from ..training import aegan as A_T
from ..training import diffusion as D_T
from . import inpaint_tab as I
from . import sessions
from . import text_tab as T
from .common import MAX_SESSIONS

__all__ = ["rss_mb", "measure_latency", "measure_sessions", "main"]


def rss_mb() -> float:
    """This process's resident memory (MB), from ``/proc/self/status`` (0 where there is none)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_checkpoints(folder: Path) -> Path:
    """A tiny random diffusion checkpoint (no data, no download) in ``folder``, beside a copy of the shipped
    AE-GAN (the inpainting load is the real one); a tiny AE-GAN when none is shipped."""
    torch.manual_seed(0)
    labels = ("kimore:ex1", "ui-prmd:m01", "ui-prmd:m07")
    cfg = D.tiny_config(labels=labels, datasets=("kimore", "ui-prmd"), text_encoder="minilm", text_dim=384)
    pose = torch.zeros(len(COMMON), 3)
    pose[:, 1] = torch.linspace(0.1, 1.6, len(COMMON))
    mean = torch.cat([D_RT.to_features(pose), torch.tensor([float(np.log(2.0))])])
    model = D.DiffusionModel(cfg, mean, torch.full((cfg.features,), 0.05))
    D_T.save_model(folder / "diffusion.safetensors", model,
                 {"data": data_provenance(["ui-prmd", "kimore"]), "command": "loadcheck"})

    shipped = default_checkpoint_dir() / "aegan.safetensors"
    if shipped.is_file():
        shutil.copyfile(shipped, folder / "aegan.safetensors")
    else:
        A_T.save(A.build_model(A.Config(frames=32, latent=16, channels=(16, 32), batch_size=8)),
               folder / "aegan.safetensors", {"steps": 0})
    return folder


def _install_fake_text_encoder() -> None:
    """With tiny checkpoints: a hash-seeded 384-d text encoder in place of MiniLM (no model download)."""
    class _Fake:
        name, dim = "minilm", 384

        def encode(self, texts):
            texts = [texts] if isinstance(texts, str) else list(texts)
            out = [torch.randn(self.dim, generator=torch.Generator().manual_seed(
                int(hashlib.sha256(t.encode()).hexdigest()[:12], 16))) for t in texts]
            return torch.nn.functional.normalize(torch.stack(out), dim=-1) if out else torch.zeros(0, self.dim)

    text._encoders["minilm"] = _Fake()


def _text_args(seed: int) -> dict[str, Any]:
    """A default text -> motion request of the Text tab (4 samples x 20 steps x 120 frames)."""
    return dict(text_="a squat with both knees", exercise_=T.NO_EXERCISE, correct_=T.UNSPECIFIED, guidance_=2.5,
                steps_=20, frames_=120, num_=4, seed_=str(seed), randomize_=False, sampler_="ddim",
                formats_=["npy"])


def _max_inpaint_args(data_root: Path | None, window: int) -> tuple[dict[str, Any], int]:
    """The largest inpainting request the app accepts on the example motion: 500 optimisation steps and the
    smallest window shift whose windows x steps stay within the budget
    (:data:`motionviz.ui.inpaint_tab.MAX_WINDOW_STEPS`).  Returns (arguments, window-steps)."""
    frames = I._example_motion(data_root).num_frames
    steps = 500
    for shift in range(1, window + 1):
        try:
            cost = I.check_inpaint_budget(frames, window, shift, steps)
            break
        except UserError:
            continue
    return (dict(src=I.EXAMPLE, index=None, path=None, dj=30, df=0, ns=0, lb=I.NO_LIMB, sd="0", sh=shift,
                 st=steps, pr="tuned", dn=False), cost)


def _call(client: Any, api: str, args: dict[str, Any]) -> float:
    t0 = time.perf_counter()
    client.predict(*args.values(), api_name=f"/{api}")
    return time.perf_counter() - t0


def measure_latency(url: str, inpaint: tuple[dict[str, Any], int], requests: int = 20,
                    long_jobs: int = 2) -> dict[str, Any]:
    """p50/p95/max seconds of ``requests`` text -> motion calls (one after another) while ``long_jobs``
    maximal inpainting requests (``inpaint``: arguments, window-steps) are queued or running; also the
    inpainting requests' own times."""
    from gradio_client import Client

    long_times: list[float] = []
    errors: list[str] = []

    def long_job() -> None:
        try:
            long_times.append(_call(Client(url, verbose=False), "inpaint", inpaint[0]))
        except Exception as e:  # noqa: BLE001 - reported in the result
            errors.append(f"inpaint: {e.__class__.__name__}: {str(e)[:200]}")

    client = Client(url, verbose=False)
    _call(client, "text_generate", _text_args(0))                     # warm the model and the encoder
    idle = [_call(client, "text_generate", _text_args(i)) for i in range(1, 4)]
    threads = [threading.Thread(target=long_job, daemon=True) for _ in range(long_jobs)]
    for t in threads:
        t.start()
    time.sleep(2.0)                                                    # the long jobs are running
    lat = []
    for i in range(requests):
        lat.append(_call(client, "text_generate", _text_args(100 + i)))
    still_running = sum(t.is_alive() for t in threads)
    for t in threads:
        t.join(timeout=600)
    lat.sort()
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
    return {"text_requests": requests, "p50_s": round(statistics.median(lat), 3), "p95_s": round(p95, 3),
            "max_s": round(lat[-1], 3), "idle_median_s": round(statistics.median(idle), 3),
            "long_jobs": long_jobs, "long_jobs_running_at_the_end": still_running,
            "inpaint_window_steps_each": inpaint[1], "inpaint_shift": inpaint[0]["sh"],
            "inpaint_seconds": [round(x, 1) for x in long_times], "errors": errors}


def _settle_seconds() -> float:
    """How long a session that went can take to be freed: the server notices the closed heartbeat
    connection within one heartbeat interval, frees the session after the grace period, at the next sweep."""
    beat = float(get_heartbeat_rate())
    return beat + sessions.CLOSED_GRACE_S + 3 * sessions.SWEEP_INTERVAL_S + 10.0


def measure_sessions(url: str, sessions: int = 200, motions_per_session: int = 2, demo: Any = None,
                     settle_s: float | None = None) -> dict[str, Any]:
    """Resident memory before and after ``sessions`` sessions each generate ``motions_per_session`` motions
    (kept in their session state) and go away (the client closes, which closes its heartbeat connection,
    as a browser tab does).  "before" is after one warm-up session (model and encoder loading are not
    session memory); "after" is once the server has freed the sessions that went: with the app object
    ``demo`` (in-process), as soon as it keeps no session any more, at most ``settle_s`` seconds (default:
    heartbeat interval + grace period + sweeps, :func:`_settle_seconds`); without it, after ``settle_s``."""
    from gradio_client import Client

    def one_session(seed0: int) -> None:
        c = Client(url, verbose=False)
        for k in range(motions_per_session):
            args = _text_args(seed0 + k)
            args.update(num_=1, steps_=2, frames_=60)
            c.predict(*args.values(), api_name="/text_generate")
        c.close()

    def kept() -> int | None:
        holder = getattr(demo, "state_holder", None)
        return None if holder is None else len(holder.session_data)

    # one warm-up session first: the first request loads the models and the text encoder and fills the
    # process-wide caches, which is not session state (it stays for the app's lifetime)
    one_session(9_000)
    gc.collect()
    start = rss_mb()
    peak, peak_kept = start, kept()
    t0 = time.perf_counter()
    for i in range(sessions):
        one_session(10_000 + i * motions_per_session)
        if i % 20 == 19:
            gc.collect()
            if rss_mb() > peak:
                peak, peak_kept = rss_mb(), kept()
    churn_s = time.perf_counter() - t0
    gc.collect()
    wait = _settle_seconds() if settle_s is None else float(settle_s)
    t1 = time.perf_counter()
    if demo is None:
        time.sleep(wait)
    else:
        while time.perf_counter() - t1 < wait and (kept() or 0) > 0:
            time.sleep(1.0)
    gc.collect()
    time.sleep(1.0)
    end = rss_mb()
    return {"sessions": sessions, "motions_per_session": motions_per_session, "rss_start_mb": round(start, 1),
            "rss_peak_mb": round(max(peak, end), 1), "sessions_kept_at_peak": peak_kept,
            "rss_end_mb": round(end, 1), "rss_growth_mb": round(end - start, 1), "sessions_kept_at_end": kept(),
            "churn_s": round(churn_s, 1), "settle_s": round(time.perf_counter() - t1, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m motionviz.ui.loadcheck", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoints", default=None, help="checkpoint folder (default: tiny random models)")
    p.add_argument("--requests", type=int, default=20, help="text -> motion requests timed (20)")
    p.add_argument("--sessions", type=int, default=200, help="sessions that come and go (200)")
    p.add_argument("--only", choices=("latency", "sessions"), default=None)
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = p.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    tmp = tempfile.TemporaryDirectory(prefix="motionviz-loadcheck-")
    if args.checkpoints:
        ck = Path(args.checkpoints)
    else:
        _install_fake_text_encoder()
        ck = _tiny_checkpoints(Path(tmp.name))
    import app as app_module

    demo = app_module.build_app(checkpoint_dir=ck)
    demo.queue(max_size=64, default_concurrency_limit=4).launch(
        prevent_thread_lock=True, server_port=_free_port(), quiet=True, state_session_capacity=MAX_SESSIONS)
    result: dict[str, Any] = {"checkpoints": "tiny random models" if not args.checkpoints else str(ck),
                              "cpus": os.cpu_count(), "load_average": list(os.getloadavg())}
    try:
        url = demo.local_url
        if args.only in (None, "latency"):
            window = int(inpaint_G.load_model(ck / "aegan.safetensors").cfg.frames)
            try:
                root: Path | None = data_root()
            except Exception:  # noqa: BLE001 - no data folder: the app shows its embedded sample
                root = app_module.SAMPLE_ROOT
            result["latency"] = measure_latency(url, _max_inpaint_args(root, window), args.requests)
        if args.only in (None, "sessions"):
            result["sessions"] = measure_sessions(url, args.sessions, demo=demo)
    finally:
        demo.close()
        tmp.cleanup()
    result["load_average_end"] = list(os.getloadavg())
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.exit(main())
