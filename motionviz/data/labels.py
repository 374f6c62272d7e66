"""Label vocabulary: every ``<dataset>:<id>`` label, Bandai styles, short titles and the left/right
mirror map used by mirroring augmentation."""

from __future__ import annotations

from typing import Iterable

__all__ = ["LABELS", "BANDAI_STYLES", "LABEL_TITLES", "LABEL_MIRROR", "STYLE_TITLES", "label_names",
           "mirror_label"]

_UIPRMD = {
    "m01": "Deep squat", "m02": "Hurdle step", "m03": "Inline lunge", "m04": "Side lunge",
    "m05": "Sit to stand", "m06": "Standing active straight leg raise",
    "m07": "Standing shoulder abduction", "m08": "Standing shoulder extension",
    "m09": "Standing shoulder internal-external rotation", "m10": "Standing shoulder scaption",
}
_KIMORE = {
    "ex1": "Lifting of the arms", "ex2": "Lateral tilt of the trunk with arms overhead",
    "ex3": "Trunk rotation", "ex4": "Pelvis rotation", "ex5": "Squatting",
}
# IRDS titles name the anatomical side that moves in these files (the upstream gesture names use the
# opposite side; see irds.py).
_IRDS = {
    "0": "Elbow flexion, right arm", "1": "Elbow flexion, left arm",
    "2": "Shoulder flexion, right arm", "3": "Shoulder flexion, left arm",
    "4": "Shoulder abduction, right arm", "5": "Shoulder abduction, left arm",
    "6": "Shoulder forward elevation, both arms", "7": "Side tap, right leg", "8": "Side tap, left leg",
}
_KERAAL = {"CTK": "Hiding face (seated)", "ELK": "Flank stretch (seated)", "RTK": "Torso rotation (seated)"}
_BANDAI = {
    "walk": "Walk", "run": "Run", "dash": "Dash (sprint)", "walk-back": "Walk backwards",
    "walk-left": "Walk to the left", "walk-right": "Walk to the right", "bow": "Bow", "bye": "Wave goodbye",
    "guide": "Guide (show the way)", "byebye": "Wave goodbye with both hands", "respond": "Respond (answer a call)",
    "call": "Call someone over", "punch": "Punch", "kick": "Kick", "slash": "Slash (sword swing)",
    "dance-short": "Dance (short)",
    "walk-turn-left": "Walk and turn left", "walk-turn-right": "Walk and turn right",
    "wave-both-hands": "Wave both hands", "wave-left-hand": "Wave the left hand",
    "wave-right-hand": "Wave the right hand", "raise-up-both-hands": "Raise both hands",
    "raise-up-left-hand": "Raise the left hand", "raise-up-right-hand": "Raise the right hand",
}
_HUMANML3D = {"012314": "HumanML3D sample 012314"}

BANDAI_STYLES = (
    # dataset-1
    "normal", "happy", "sad", "angry", "proud", "not-confident", "masculinity", "feminine", "childish",
    "old", "tired", "active", "musical", "giant", "chimpira",
    # dataset-2 (normal, active, feminine shared with dataset-1)
    "elderly", "exhausted", "masculine", "youthful",
)
STYLE_TITLES = {s: s.replace("-", " ").capitalize() for s in BANDAI_STYLES}
STYLE_TITLES["chimpira"] = "Chimpira (thug-like swagger)"

_ALL = {"ui-prmd": _UIPRMD, "kimore": _KIMORE, "irds": _IRDS, "keraal": _KERAAL, "bandai": _BANDAI,
        "humanml3d": _HUMANML3D}
LABELS: dict[str, tuple[str, ...]] = {d: tuple(f"{d}:{k}" for k in v) for d, v in _ALL.items()}
LABEL_TITLES: dict[str, str] = {f"{d}:{k}": t for d, v in _ALL.items() for k, t in v.items()}
LABEL_TITLES.update({f"style:{s}": t for s, t in STYLE_TITLES.items()})

_PAIRS = [("irds:0", "irds:1"), ("irds:2", "irds:3"), ("irds:4", "irds:5"), ("irds:7", "irds:8"),
          ("bandai:walk-left", "bandai:walk-right"), ("bandai:walk-turn-left", "bandai:walk-turn-right"),
          ("bandai:wave-left-hand", "bandai:wave-right-hand"),
          ("bandai:raise-up-left-hand", "bandai:raise-up-right-hand")]
# label -> the label of the mirrored motion (only sided labels; others map to themselves).
LABEL_MIRROR: dict[str, str] = {**{a: b for a, b in _PAIRS}, **{b: a for a, b in _PAIRS}}


def mirror_label(label: str) -> str:
    return LABEL_MIRROR.get(label, label)


def label_names(datasets: Iterable[str] | None = None) -> list[str]:
    """All labels ``<dataset>:<id>`` of the given datasets (default: all six), in a fixed order."""
    ds = list(datasets) if datasets is not None else list(LABELS)
    out: list[str] = []
    for d in ds:
        if d == "kimore-raw":
            d = "kimore"
        if d not in LABELS:
            raise KeyError(f"unknown dataset {d!r}; choose from {', '.join(LABELS)}")
        out += [x for x in LABELS[d] if x not in out]
    return out
