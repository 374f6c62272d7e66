"""Load a motion file supplied by a user (upload in the app, path on the CLI).

Formats (by extension):

* ``.npy`` -- float array (T, J, 3) (or (T, J*3) with J*3 divisible by 3 and a known J), read with
  ``allow_pickle=False``.  J = 15 is the COMMON skeleton; another J picks the known skeleton with that
  many joints (ambiguous counts prefer: 22 -> SMPL-22 (HumanML3D layout), 18 -> KIMORE-18,
  17 -> AlphaPose COCO-17).  Units: metres, or centimetres / millimetres when the body is clearly that
  large (sum of bone lengths > 20 / > 2,000), converted to metres.  ``fps`` defaults to 20.
* ``.csv`` -- T rows x J*3 numbers (optional non-numeric header row), same rules as ``.npy``.
* ``.bvh`` / ``.bvh.xz`` -- via :func:`motionviz.bvh.load_bvh_motion` (units guessed, Y-up).
* ``.json`` -- our own format (``Motion.to_json``).

Every problem raises :class:`motionviz.errors.UserError` with a one-line message.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..motion import DEFAULT_FPS, MAX_FRAMES, Motion, MotionError, MotionLabels
from ..skeleton import COMMON, SKELETONS, Skeleton

__all__ = ["load_user_file", "skeleton_for_joint_count", "MAX_USER_BYTES", "USER_EXTENSIONS"]

MAX_USER_BYTES = 50 * 1024 * 1024
USER_EXTENSIONS = (".npy", ".csv", ".bvh", ".bvh.xz", ".json")
_PREFERRED = {15: "common", 22: "smpl-22", 18: "kimore-18", 17: "alphapose-coco17"}


def skeleton_for_joint_count(J: int) -> Skeleton:
    """The skeleton used for an unlabelled (T, J, 3) array."""
    if J in _PREFERRED:
        return SKELETONS[_PREFERRED[J]]
    matches = [s for s in SKELETONS.values() if len(s) == J]
    if len(matches) == 1:
        return matches[0]
    counts = sorted({len(s) for s in SKELETONS.values()})
    raise UserError(f"{J} joints matches no known skeleton; use one of {counts} joints "
                    f"(15 = common: {', '.join(COMMON.joints[:4])}, ...)")


def _ext(name: str) -> str:
    n = name.lower()
    for e in (".bvh.xz",) + USER_EXTENSIONS:
        if n.endswith(e):
            return e
    return Path(n).suffix


def _array_to_motion(a: np.ndarray, name: str, fps: float, skeleton: Skeleton | None) -> Motion:
    if a.dtype.kind not in "fiu":
        raise UserError(f"{name}: expected numbers, got an array of {a.dtype}")
    if a.ndim == 2 and a.shape[1] % 3 == 0 and a.shape[1] > 3:
        a = a.reshape(a.shape[0], -1, 3)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise UserError(f"{name}: expected shape (frames, joints, 3), got {tuple(a.shape)}")
    T, J = a.shape[:2]
    if T < 1:
        raise UserError(f"{name}: the motion has no frames")
    if T > MAX_FRAMES:
        raise UserError(f"{name}: {T} frames is too long (limit {MAX_FRAMES})")
    a = a.astype(np.float64)
    if np.isinf(a).any():
        raise UserError(f"{name}: contains infinite values")
    if np.isnan(a).all():
        raise UserError(f"{name}: every value is NaN (no joint positions)")
    try:
        sk = skeleton or skeleton_for_joint_count(J)
    except UserError as e:
        raise UserError(f"{name}: {e}") from None
    if len(sk) != J:
        raise UserError(f"{name}: skeleton {sk.name!r} has {len(sk)} joints but the file has {J}")
    bl = sk.bone_lengths(a)
    size = float(np.nanmedian(np.nansum(bl, axis=-1))) if np.isfinite(bl).any() else 0.0
    unit = "m"
    if size > 2000:
        a, unit = a * 0.001, "mm"
    elif size > 20:
        a, unit = a * 0.01, "cm"
    labels = MotionLabels(dataset="user", source=name, extra={"unit_in_file": unit})
    return Motion(a.astype(np.float32), sk, fps, labels)


def _read_csv(raw: bytes, name: str) -> np.ndarray:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{name}: not a text CSV file") from None
    rows = [ln.strip().rstrip(",") for ln in text.splitlines() if ln.strip()]
    if rows:
        first = rows[0].replace(";", ",").split(",")
        try:
            [float(x) for x in first]
        except ValueError:
            rows = rows[1:]                     # header
    if not rows:
        raise UserError(f"{name}: the CSV file has no data rows")
    if len(rows) > MAX_FRAMES:
        raise UserError(f"{name}: {len(rows)} frames is too long (limit {MAX_FRAMES})")
    try:
        data = [[float(x) if x.strip() not in ("", "nan", "NaN") else np.nan
                 for x in r.replace(";", ",").split(",")] for r in rows]
    except ValueError as e:
        raise UserError(f"{name}: non-numeric value in the CSV ({e})") from None
    widths = {len(r) for r in data}
    if len(widths) != 1:
        raise UserError(f"{name}: rows have different numbers of columns ({sorted(widths)[:4]})")
    w = widths.pop()
    if w % 3:
        raise UserError(f"{name}: {w} columns is not joints x 3 (x, y, z per joint)")
    return np.array(data, dtype=np.float64).reshape(len(data), w // 3, 3)


def load_user_file(path: str | os.PathLike, fps: float = DEFAULT_FPS,
                   skeleton: Skeleton | str | None = None) -> Motion:
    """A :class:`Motion` from a user's .npy / .csv / .bvh / .bvh.xz / .json file (see module doc)."""
    p = Path(path)
    name = p.name
    ext = _ext(name)
    if ext not in USER_EXTENSIONS:
        raise UserError(f"{name}: unsupported file type {ext or '(none)'}; use one of "
                        f"{', '.join(USER_EXTENSIONS)}")
    if not p.is_file():
        raise UserError(f"{name}: file not found")
    size = p.stat().st_size
    if size > MAX_USER_BYTES:
        raise UserError(f"{name}: {size / 2**20:.0f} MB is too large (limit {MAX_USER_BYTES // 2**20} MB)")
    if size == 0:
        raise UserError(f"{name}: the file is empty")
    if not (np.isfinite(fps) and 0 < fps <= 1000):
        raise UserError(f"fps must be in (0, 1000], got {fps}")
    sk = SKELETONS.get(skeleton) if isinstance(skeleton, str) else skeleton
    if isinstance(skeleton, str) and sk is None:
        raise UserError(f"unknown skeleton {skeleton!r}; choose from {', '.join(SKELETONS)}")
    raw = p.read_bytes()
    try:
        if ext == ".npy":
            if not raw.startswith(b"\x93NUMPY"):
                raise UserError(f"{name}: not a valid .npy file (missing the NumPy header)")
            try:
                a = np.load(io.BytesIO(raw), allow_pickle=False)
            except ValueError as e:
                if "pickle" in str(e).lower():
                    raise UserError(f"{name}: object/pickled .npy arrays are not accepted; save a plain "
                                    f"float array (T, J, 3)") from None
                raise UserError(f"{name}: not a valid .npy file ({e})") from None
            except (OSError, EOFError) as e:
                raise UserError(f"{name}: not a valid .npy file ({e})") from None
            if not isinstance(a, np.ndarray):
                raise UserError(f"{name}: expected one array")
            m = _array_to_motion(a, name, fps, sk)
        elif ext == ".csv":
            m = _array_to_motion(_read_csv(raw, name), name, fps, sk)
        elif ext in (".bvh", ".bvh.xz"):
            from ..bvh import load_bvh_motion
            m = load_bvh_motion(p)
            if np.isnan(m.joints).all():
                raise UserError(f"{name}: every value is NaN")
            m = m.with_labels(dataset="user", source=name)
        else:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise UserError(f"{name}: not a UTF-8 JSON file") from None
            m = Motion.from_json(text)
            if np.isnan(m.joints).all():
                raise UserError(f"{name}: every value is NaN (no joint positions)")
            if not m.labels.source:
                m = m.with_labels(source=name)
    except MotionError as e:
        raise UserError(f"{name}: {e}") from None
    except UserError:
        raise
    except (ValueError, IndexError, TypeError, KeyError, EOFError, OSError) as e:
        raise UserError(f"{name}: could not read the file ({type(e).__name__}: {e})") from None
    return m
