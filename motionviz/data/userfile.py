"""Load a motion file supplied by a user (upload in the app, path on the CLI).

Formats (by extension):

* ``.npy`` -- float array (T, J, 3) (or (T, J*3) with J*3 divisible by 3 and a known J), read with
  ``allow_pickle=False``.  J = 15 is the COMMON skeleton; another J picks the known skeleton with that
  many joints (ambiguous counts prefer: 22 -> SMPL-22 (HumanML3D layout), 18 -> KIMORE-18,
  17 -> AlphaPose COCO-17).  Units: metres, or centimetres / millimetres when the body is clearly that
  large (sum of bone lengths > 20 / > 2,000), converted to metres.  ``fps`` defaults to 20.
* ``.npz`` -- ``joints`` (T, J, 3) as in ``.npy`` plus the frame rate ``fps`` (a number) and optionally the
  ``skeleton`` name (a string), read with ``allow_pickle=False`` (each member's unpacked size checked first):
  the motion is read at its stored rate (:func:`motionviz.export.save_npz` writes it).
* ``.csv`` -- T rows x J*3 numbers (optional non-numeric header row), same rules as ``.npy``.
* ``.bvh`` / ``.bvh.xz`` -- via :func:`motionviz.io.bvh_motion.load_bvh_motion`: any skeleton whose joints map onto
  the common skeleton by name or hierarchy (:mod:`motionviz.core.retarget`), units from the body's height,
  Z-up files turned Y-up, the sidecar ``<file>.bvh.json`` of our exports honoured.
* ``.json`` -- our own format (``Motion.to_json``).

Every problem raises :class:`motionviz.core.errors.UserError` with a one-line message.
"""

from __future__ import annotations

import io
import lzma
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from ..core.errors import UserError
from ..core.limits import check_budget
from ..core.motion import DEFAULT_FPS, MAX_FRAMES, Motion, MotionError, MotionLabels
from ..core.skeleton import COMMON, SKELETONS, Skeleton
from ..io.bvh_motion import load_bvh_motion

__all__ = ["load_user_file", "skeleton_for_joint_count", "MAX_USER_BYTES", "MAX_JSON_BYTES",
           "MAX_SPAN_M", "MAX_NESTING", "USER_EXTENSIONS"]

MAX_USER_BYTES = 50 * 1024 * 1024           # any user file (decompressed size for .bvh.xz)
MAX_JSON_BYTES = 16 * 1024 * 1024           # JSON costs ~40x its size in Python objects while parsed
#: the largest extent (metres) of a user motion on any axis: a body moving in a room spans a few metres;
#: 1e5 m is a unit mistake or an outlier, and it would make every plot and video cost grow with it
MAX_SPAN_M = 100.0
MAX_NESTING = 128                           # BVH hierarchy depth ({ ... } levels)
USER_EXTENSIONS = (".npy", ".npz", ".csv", ".bvh", ".bvh.xz", ".json")
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


def _check_span(m: Motion, name: str) -> Motion:
    """:class:`UserError` when the motion's coordinates span more than :data:`MAX_SPAN_M` on an axis."""
    j = m.joints
    ok = np.isfinite(j).all(axis=-1)
    if not ok.any():
        return m
    pts = j[ok]
    span = float((pts.max(axis=0) - pts.min(axis=0)).max())
    far = float(np.abs(pts).max())
    if span > MAX_SPAN_M or far > 10 * MAX_SPAN_M:
        t, k = np.unravel_index(int(np.argmax(np.where(ok, np.abs(np.nan_to_num(j)).max(-1), -1))), ok.shape)
        raise UserError(f"{name}: implausible coordinates: the motion spans {max(span, far):.3g} m (largest at "
                        f"frame {t}, joint {m.skeleton.joints[k]}); a body motion spans a few metres, so check "
                        f"the units or remove the outliers (limit {MAX_SPAN_M:g} m)")
    return m


def _bvh_precheck(raw: bytes, name: str) -> bytes:
    """Budget a BVH file from its header, before it is parsed and before forward kinematics allocates
    (frames, joints, 3, 3) arrays: size (decompressed), nesting depth, joints x frames.  Returns the text."""
    if raw[:6] == b"\xfd7zXZ\x00":
        d = lzma.LZMADecompressor()
        try:
            raw = d.decompress(raw, max_length=MAX_USER_BYTES + 1)
        except lzma.LZMAError:
            raise UserError(f"{name}: not valid .xz data") from None
        if len(raw) > MAX_USER_BYTES:
            raise UserError(f"{name}: decompressed BVH is larger than {MAX_USER_BYTES // 2**20} MB")
    m = re.search(rb"^[ \t]*MOTION[ \t]*\r?$", raw, re.M)
    if m is None:
        raise UserError(f"{name}: no MOTION section (the file is truncated or not a BVH file)")
    header = np.frombuffer(raw[:m.start()], dtype=np.uint8)
    depth = np.cumsum((header == ord("{")).astype(np.int32) - (header == ord("}")).astype(np.int32))
    if depth.size and int(depth.max()) > MAX_NESTING:
        raise UserError(f"{name}: the BVH hierarchy is nested {int(depth.max())} levels deep (limit {MAX_NESTING})")
    joints = len(re.findall(rb"(?<![\w:])(?:ROOT|JOINT)(?![\w:])", raw[:m.start()], re.I))
    fr = re.match(rb"\s*Frames\s*:\s*(\d{1,12})\s", raw[m.end():m.end() + 256], re.I)
    if fr is None:
        raise UserError(f"{name}: expected 'Frames: N' after MOTION")
    check_budget(int(fr.group(1)), max(joints, 1), name)
    return raw


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def _redact(message: str, raw: bytes) -> str:
    """A parser's message without anything quoted from the file: quoted words and the names the file
    declares (joint names) become '…'.  Keeps line numbers and our own wording."""
    msg = _QUOTED.sub("'…'", message)
    head = raw[:raw.find(b"MOTION")] if b"MOTION" in raw else raw[:65536]
    words = {w for w in re.split(r"[\s{}]+", head.decode("utf-8", "replace"))
             if w and not _KEYWORD.match(w)}
    for w in sorted(words, key=len, reverse=True):
        msg = re.sub(rf"(?<![\w.-]){re.escape(w)}(?![\w.-])", "…", msg)
    return msg


_KEYWORD = re.compile(r"^(HIERARCHY|ROOT|JOINT|OFFSET|CHANNELS|End|Site|MOTION|Frames:?|Frame|Time:?|"
                      r"[XYZ](position|rotation)|[-+0-9.eE]+)$", re.I)


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
    check_budget(T, J, name)
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


def _read_npz(raw: bytes, name: str) -> tuple[np.ndarray, float | None, str | None]:
    """``.npz`` -> (joints, fps or None, skeleton name or None); no pickles, members' sizes checked before
    anything is unpacked (a small zip can unpack to gigabytes)."""
    if not raw.startswith(b"PK"):
        raise UserError(f"{name}: not a valid .npz file (not a zip archive)")
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            infos = {i.filename: i for i in z.infolist()}
    except (zipfile.BadZipFile, ValueError, OSError):
        raise UserError(f"{name}: not a valid .npz file (bad zip archive)") from None
    if "joints.npy" not in infos:
        n = sum(k.endswith(".npy") for k in infos)           # their names are the file's words: not echoed
        raise UserError(f"{name}: a motion .npz needs an array named 'joints' (and 'fps'); it has "
                        f"{n or 'no'} other array{'' if n == 1 else 's'}")
    big = [k for k, i in infos.items() if i.file_size > MAX_USER_BYTES]
    if big:
        raise UserError(f"{name}: a member unpacks to more than {MAX_USER_BYTES // 2**20} MB")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            a = np.asarray(z["joints"])
            fps = np.asarray(z["fps"]) if "fps" in z.files else None
            sk = np.asarray(z["skeleton"]) if "skeleton" in z.files else None
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise UserError(f"{name}: object/pickled arrays are not accepted in .npz files") from None
        raise UserError(f"{name}: not a valid .npz file (bad member)") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile):
        raise UserError(f"{name}: not a valid .npz file (bad member)") from None
    rate = None
    if fps is not None:
        if fps.size != 1 or fps.dtype.kind not in "fiu" or not (np.isfinite(fps).all() and 0 < float(fps.flat[0]) <= 1000):
            raise UserError(f"{name}: 'fps' must be one number in (0, 1000]")
        rate = float(fps.flat[0])
    skel = None
    if sk is not None:
        if sk.size != 1 or sk.dtype.kind != "U":
            raise UserError(f"{name}: 'skeleton' must be one string (a skeleton name)")
        skel = str(sk.flat[0])
    return a, rate, skel


def _read_csv(raw: bytes, name: str) -> np.ndarray:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{name}: not a text CSV file") from None
    rows = [ln.strip().rstrip(",") for ln in text.splitlines() if ln.strip()]
    skipped = 0
    if rows:
        first = rows[0].replace(";", ",").split(",")
        try:
            [float(x) for x in first]
        except ValueError:
            rows, skipped = rows[1:], 1         # header
    if not rows:
        raise UserError(f"{name}: the CSV file has no data rows")
    if len(rows) > MAX_FRAMES:
        raise UserError(f"{name}: {len(rows)} frames is too long (limit {MAX_FRAMES})")
    data: list[list[float]] = []
    for i, r in enumerate(rows):
        row: list[float] = []
        for k, x in enumerate(r.replace(";", ",").split(",")):
            x = x.strip()
            if x in ("", "nan", "NaN"):
                row.append(np.nan)
                continue
            try:
                row.append(float(x))
            except ValueError:      # the value itself is never echoed (it could be anything)
                raise UserError(f"{name}: row {i + 1 + skipped}, column {k + 1}: not a number") from None
        data.append(row)
    widths = {len(r) for r in data}
    if len(widths) != 1:
        raise UserError(f"{name}: rows have different numbers of columns ({sorted(widths)[:4]})")
    w = widths.pop()
    if w % 3:
        raise UserError(f"{name}: {w} columns is not joints x 3 (x, y, z per joint)")
    return np.array(data, dtype=np.float64).reshape(len(data), w // 3, 3)


def _check_user_file(p: Path, name: str, ext: str, fps: float, skeleton: Skeleton | str | None
                     ) -> tuple[int, Skeleton | None]:
    """Check the request before reading the file (type, existence, size, ``fps``, skeleton name) ->
    (file size in bytes, the skeleton asked for or None)."""
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
    return size, sk


def _npy_motion(raw: bytes, name: str, fps: float, sk: Skeleton | None) -> Motion:
    """A motion from the bytes of a plain (T, J, 3) .npy array (no pickles)."""
    if not raw.startswith(b"\x93NUMPY"):
        raise UserError(f"{name}: not a valid .npy file (missing the NumPy header)")
    try:
        a = np.load(io.BytesIO(raw), allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise UserError(f"{name}: object/pickled .npy arrays are not accepted; save a plain "
                            f"float array (T, J, 3)") from None
        raise UserError(f"{name}: not a valid .npy file (bad header or truncated data)") from None
    except (OSError, EOFError, SyntaxError, TypeError):
        raise UserError(f"{name}: not a valid .npy file (bad header or truncated data)") from None
    if not isinstance(a, np.ndarray):
        raise UserError(f"{name}: expected one array")
    return _array_to_motion(a, name, fps, sk)


def _npz_motion(raw: bytes, name: str, fps: float, sk: Skeleton | None) -> Motion:
    """A motion from the bytes of a .npz file: its (T, J, 3) joints, with its stored frame rate and
    skeleton name when it has them (the skeleton asked for wins)."""
    a, stored_fps, stored_sk = _read_npz(raw, name)
    if sk is None and stored_sk is not None:
        sk = SKELETONS.get(stored_sk)
        if sk is None:
            raise UserError(f"{name}: the skeleton name stored in the file is not one of "
                            f"{', '.join(SKELETONS)}")
    return _array_to_motion(a, name, fps if stored_fps is None else stored_fps, sk)


def _bvh_user_motion(p: Path, raw: bytes, name: str) -> Motion:
    """A motion from a user's .bvh / .bvh.xz file; it must map onto the common skeleton (messages
    never quote the file)."""
    text = _bvh_precheck(raw, name)
    try:
        m = load_bvh_motion(p)
    except MotionError:
        raise
    except UserError as e:
        raise UserError(_redact(str(e), text)) from None
    if np.isnan(m.joints).all():
        raise UserError(f"{name}: every value is NaN")
    if m.skeleton.name == "bvh" and not m.skeleton.retarget_map:
        # every tab works on the common skeleton: say now which joints could not be matched
        why = m.labels.extra.get("retarget_error", "the skeleton is not a body")
        raise UserError(f"{name}: " + _redact(why, text))
    return m.with_labels(dataset="user", source=name)


def _json_motion(raw: bytes, name: str, size: int) -> Motion:
    """A motion from the bytes of a motionviz .json file (``size`` bytes, limited to MAX_JSON_BYTES)."""
    if size > MAX_JSON_BYTES:
        raise UserError(f"{name}: {size / 2**20:.0f} MB is too large for JSON (limit "
                        f"{MAX_JSON_BYTES // 2**20} MB); use .npy for long motions")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{name}: not a UTF-8 JSON file") from None
    m = Motion.from_json(text)
    if np.isnan(m.joints).all():
        raise UserError(f"{name}: every value is NaN (no joint positions)")
    if not m.labels.source:
        m = m.with_labels(source=name)
    return m


def load_user_file(path: str | os.PathLike, fps: float = DEFAULT_FPS,
                   skeleton: Skeleton | str | None = None) -> Motion:
    """A :class:`Motion` from a user's .npy / .npz / .csv / .bvh / .bvh.xz / .json file (see module doc)."""
    p = Path(path)
    name = p.name
    ext = _ext(name)
    size, sk = _check_user_file(p, name, ext, fps, skeleton)
    raw = p.read_bytes()
    try:
        if ext == ".npy":
            m = _npy_motion(raw, name, fps, sk)
        elif ext == ".npz":
            m = _npz_motion(raw, name, fps, sk)
        elif ext == ".csv":
            m = _array_to_motion(_read_csv(raw, name), name, fps, sk)
        elif ext in (".bvh", ".bvh.xz"):
            m = _bvh_user_motion(p, raw, name)
        else:
            m = _json_motion(raw, name, size)
    except MotionError as e:
        raise UserError(f"{name}: {e}") from None
    except UserError:
        raise
    except RecursionError:
        raise UserError(f"{name}: the file is nested too deeply to be a motion") from None
    except (ValueError, IndexError, TypeError, KeyError, EOFError, OSError, AttributeError) as e:
        # the exception text may quote the file: name only its type
        raise UserError(f"{name}: could not read the file ({type(e).__name__}); see the accepted formats") from None
    check_budget(m.num_frames, len(m.skeleton), name)
    return _check_span(m, name)
