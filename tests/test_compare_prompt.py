"""Compare: one prompt -> every model.  Each model gets what it can use (text and/or exercise) and says
what it did with the request; a model that cannot read text says so beside its view (fake generators:
the routing is what is tested, not the models)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from motionviz.core.errors import UserError
from motionviz.core.motion import Motion, MotionLabels
from motionviz.core.skeleton import COMMON
from motionviz.ui import compare_tab as C
from motionviz.ui.player import player_value


class _Gen:
    """A generator that records its requests and returns a standing pose."""

    def __init__(self, tasks, labels):
        self.tasks, self.labels, self.requests = set(tasks), list(labels), []

    def has_correctness(self, label):
        return True

    def generate(self, req, progress=None):
        self.requests.append(req)
        j = np.zeros((req.frames, len(COMMON), 3), np.float32)
        j[..., 1] = np.linspace(0.1, 1.6, len(COMMON))
        return [Motion(j, COMMON, 20.0, MotionLabels(label=req.label or "", text=req.text))]


def _gens():
    return {"diffusion": _Gen({"text", "label"}, ["ui-prmd:m01", "ui-prmd:m07"]),
            "vae": _Gen({"label"}, ["ui-prmd:m01", "ui-prmd:m07"])}


def test_text_only_goes_to_text_models_and_the_label_model_says_why_it_is_missing():
    gens = _gens()
    res = C.compare_all(gens, C.NO_LABEL, "raise both arms slowly", C.UNSPECIFIED, 3, 20, 5)
    assert res.titles == ["diffusion (from text)"] and res.roles == ["diffusion"]
    assert gens["diffusion"].requests[0].text == "raise both arms slowly"
    assert gens["diffusion"].requests[0].label is None                 # no deep squat snuck in
    assert not gens["vae"].requests
    assert res.skipped == [("vae", "cannot read text: the description was not used")]


def test_text_and_exercise_each_model_uses_what_it_can_and_says_so():
    gens = _gens()
    res = C.compare_all(gens, "ui-prmd:m07", "with the arms overhead", C.CORRECT, 3, 20, 5)
    assert res.titles == ["diffusion (from text + exercise)", "vae (from exercise)"]
    assert res.notices == ["", "cannot read text: the description was not used"]
    assert gens["vae"].requests[0].label == "ui-prmd:m07" and gens["vae"].requests[0].text == ""
    pay = json.loads(player_value(res.motions, titles=res.titles, roles=res.roles, notices=res.notices))
    assert pay["motions"][1]["notice"].startswith("cannot read text")
    assert {"diffusion model", "VAE"} <= {e["label"] for e in pay["legend"]}


def test_nothing_to_do_is_a_one_line_error():
    with pytest.raises(UserError, match="exercise or type a description"):
        C.compare_all(_gens(), C.NO_LABEL, "  ", C.UNSPECIFIED, 0, 20, 5)
    with pytest.raises(UserError, match="vae: cannot read text"):
        C.compare_all({"vae": _Gen({"label"}, ["ui-prmd:m01"])}, None, "a squat", C.UNSPECIFIED, 0, 20, 5)


def test_metric_headings_say_unit_and_direction():
    assert all(("↑" in h or "↓" in h) for h in C.PER_MOTION_HEADERS[4:])
    headers, _ = C.result_table({"real": {"fid": 0.1}})
    assert headers[1] == "FID (↓)" and any("m/s" in h for h in headers)
