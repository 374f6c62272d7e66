"""BVH (Biovision Hierarchy) reading, forward kinematics and writing.

Reading: ``read_bvh(src)`` parses the HIERARCHY (ROOT / JOINT / End Site, OFFSET, CHANNELS in any
order, 0-6 channels per joint) and the MOTION block (``Frames:``, ``Frame Time:``, one row of numbers
per frame) of plain ``.bvh`` text, a ``.bvh`` file or an lzma-compressed ``.bvh.xz`` file.  Malformed
input raises :class:`motionviz.core.errors.UserError` with a one-line message.

Forward kinematics (``BvhFile.positions``), vectorised over frames:
  * local rotation ``R_j`` = product of the rotation channels in channel order, in degrees
    (``Zrotation Xrotation Yrotation`` -> ``Rz @ Rx @ Ry``);
  * local translation ``t_j`` = the joint's position channels when it has any (they *replace* the
    ``OFFSET`` components they name), otherwise its ``OFFSET``;
  * ``X_j = X_parent + G_parent @ t_j`` and ``G_j = G_parent @ R_j`` (root: ``X = t``, ``G = R``).

Writing: ``write_bvh(motion)`` turns any :class:`~motionviz.core.motion.Motion` (any skeleton) into BVH
text.  Every joint gets six channels ``Xposition Yposition Zposition Zrotation Xrotation Yrotation``
so that the per-frame bone vectors (and therefore the joint positions) are reproduced exactly; the
rotations are chosen so the bones point the right way in tools such as Blender: each joint's global
rotation is the rotation that takes its rest child offsets to the current child bone vectors (the
minimal swing for one child, a best-fit rotation for several, e.g. the root's yaw comes from the
hips).  Rest OFFSETs are the median bone vectors of the sequence.  Units are centimetres by default
(``unit="m"`` for metres).  The file holds nothing but the format (no comment lines: strict parsers
such as ``bvhio`` refuse them); :func:`save_bvh` writes the units, skeleton, frame rate, axes and
labels to a sidecar ``<file>.bvh.json`` that our reader uses when it lies next to the file.
``rig="mixamo"`` names the joints of a common-skeleton motion as Mixamo does (``mixamorig:LeftUpLeg``
...) so Blender, Unity and Unreal retarget it; ``clean_feet=True`` removes foot sliding first
(:func:`motionviz.io.footcontact.clean_foot_contacts`).

Reading any skeleton (:func:`bvh_to_motion` with the defaults): joints are matched to the common
skeleton by name and hierarchy (:mod:`motionviz.core.retarget`; the map is kept in the skeleton so
``Motion.retarget()`` works), the up axis is guessed from the rest pose (Z-up files are turned to
Y-up), the units from the body's height and the body is stood on the floor when it clearly floats
or sinks.  Old files of ours with a ``#`` comment line are still read.
"""

from __future__ import annotations

import io
import lzma
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.errors import UserError
from ..core.motion import Motion, MotionLabels
from ..core.skeleton import COMMON, SKELETONS, Skeleton

__all__ = [
    "BvhFile",
    "read_bvh",
    "bvh_to_motion",
    "load_bvh_motion",
    "write_bvh",
    "save_bvh",
    "bvh_sidecar",
    "read_sidecar",
    "euler_to_matrix",
    "MAX_BVH_BYTES",
]

MAX_BVH_BYTES = 64 * 1024 * 1024   # decompressed text size limit
MAX_BVH_JOINTS = 1024
MAX_BVH_FRAMES = 200_000

_CHANNELS = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")
_CHANNEL_KEY = {c.lower(): c for c in _CHANNELS}
_UNIT_SCALE = {"m": 1.0, "cm": 0.01, "mm": 0.001, "in": 0.0254, "inch": 0.0254, "ft": 0.3048}
SIDECAR_FORMAT = "motionviz-bvh/1"
MAX_SIDECAR_BYTES = 1_000_000
_WRITE_CHANNELS = ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")


# ------------------------------------------------------------------------------------------------
# Rotations
# ------------------------------------------------------------------------------------------------
def _axis_rotation(axis: str, deg: np.ndarray) -> np.ndarray:
    """deg (T,) -> (T, 3, 3) rotation about a coordinate axis ('X', 'Y' or 'Z')."""
    a = np.deg2rad(np.asarray(deg, dtype=np.float64))
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    if axis == "X":
        m = [[o, z, z], [z, c, -s], [z, s, c]]
    elif axis == "Y":
        m = [[c, z, s], [z, o, z], [-s, z, c]]
    elif axis == "Z":
        m = [[c, -s, z], [s, c, z], [z, z, o]]
    else:  # pragma: no cover - guarded by the parser
        raise ValueError(axis)
    return np.moveaxis(np.array(m, dtype=np.float64), (0, 1), (-2, -1))


def euler_to_matrix(angles_deg: np.ndarray, order: str = "ZXY") -> np.ndarray:
    """angles (..., 3) in degrees, one column per letter of ``order`` -> (..., 3, 3) = R_a @ R_b @ R_c."""
    angles_deg = np.asarray(angles_deg, dtype=np.float64)
    lead = angles_deg.shape[:-1]
    flat = angles_deg.reshape(-1, 3)
    R = np.broadcast_to(np.eye(3), (flat.shape[0], 3, 3)).copy()
    for k, ax in enumerate(order.upper()):
        R = R @ _axis_rotation(ax, flat[:, k])
    return R.reshape(*lead, 3, 3)


def _matrix_to_zxy(R: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations -> (T, 3) degrees (z, x, y) with R = Rz(z) @ Rx(x) @ Ry(y)."""
    sx = np.clip(R[:, 2, 1], -1.0, 1.0)
    x = np.arcsin(sx)
    cx = np.sqrt(np.maximum(0.0, 1.0 - sx * sx))
    regular = cx > 1e-6
    y = np.where(regular, np.arctan2(-R[:, 2, 0], R[:, 2, 2]), 0.0)
    z = np.where(regular, np.arctan2(-R[:, 0, 1], R[:, 1, 1]), np.arctan2(R[:, 1, 0], R[:, 0, 0]))
    return np.rad2deg(np.stack([z, x, y], axis=-1))


# ------------------------------------------------------------------------------------------------
# The parsed file
# ------------------------------------------------------------------------------------------------
@dataclass
class BvhFile:
    """A parsed BVH file.  Joints are in file (depth-first) order, so parents precede children."""

    names: list[str]                       # (J,) joint names
    parents: list[int]                     # (J,) parent index, -1 for the root
    offsets: np.ndarray                    # (J, 3) OFFSET of each joint (file units)
    channels: list[tuple[str, ...]]        # per joint, canonical channel names in file order
    frame_time: float                      # seconds per frame
    motion: np.ndarray                     # (T, C) float64, C = total number of channels
    end_sites: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (parent joint, offset (3,))
    comments: list[str] = field(default_factory=list)  # '#' comment lines (without the '#')

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def channel_starts(self) -> list[int]:
        out, k = [], 0
        for ch in self.channels:
            out.append(k)
            k += len(ch)
        return out

    @property
    def end_site_names(self) -> list[str]:
        return [f"{self.names[p]}_end" for p, _ in self.end_sites]

    def meta(self) -> dict[str, str]:
        """``key=value`` pairs found in the comment lines (e.g. units, skeleton, fps from our writer)."""
        out: dict[str, str] = {}
        for c in self.comments:
            for k, v in re.findall(r"(\w+)=([^\s,;]+)", c):
                out[k.lower()] = v
        return out

    def local_transforms(self) -> tuple[np.ndarray, np.ndarray]:
        """Local rotations (T, J, 3, 3) and translations (T, J, 3) of every joint."""
        T, J = self.num_frames, self.num_joints
        rot = np.broadcast_to(np.eye(3), (T, J, 3, 3)).copy()
        trans = np.broadcast_to(self.offsets.astype(np.float64), (T, J, 3)).copy()
        for j, (chs, start) in enumerate(zip(self.channels, self.channel_starts)):
            R = None
            for k, ch in enumerate(chs):
                col = self.motion[:, start + k]
                axis = "XYZ".index(ch[0])
                if ch.endswith("position"):
                    trans[:, j, axis] = col
                else:
                    Rk = _axis_rotation(ch[0], col)
                    R = Rk if R is None else R @ Rk
            if R is not None:
                rot[:, j] = R
        return rot, trans

    def global_transforms(self) -> tuple[np.ndarray, np.ndarray]:
        """Global positions (T, J, 3) and rotations (T, J, 3, 3) by forward kinematics."""
        rot, trans = self.local_transforms()
        X = np.empty_like(trans)
        G = np.empty_like(rot)
        for j, p in enumerate(self.parents):
            if p < 0:
                X[:, j] = trans[:, j]
                G[:, j] = rot[:, j]
            else:
                X[:, j] = X[:, p] + np.einsum("tab,tb->ta", G[:, p], trans[:, j])
                G[:, j] = G[:, p] @ rot[:, j]
        return X, G

    def positions(self, include_end_sites: bool = False) -> np.ndarray:
        """(T, J, 3) joint positions in file units (with end sites appended: (T, J + E, 3))."""
        X, G = self.global_transforms()
        if include_end_sites and self.end_sites:
            ends = [X[:, p] + np.einsum("tab,b->ta", G[:, p], off) for p, off in self.end_sites]
            X = np.concatenate([X, np.stack(ends, axis=1)], axis=1)
        return X


# ------------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------------
def _read_source(src: str | Path | bytes, max_bytes: int) -> tuple[str, str]:
    """-> (text, description for messages)."""
    if isinstance(src, (bytes, bytearray)):
        raw = bytes(src)
        if raw[:6] == b"\xfd7zXZ\x00":
            raw = _decompress_xz(raw, max_bytes, "the data")
        if len(raw) > max_bytes:
            raise UserError(f"BVH data is too large ({len(raw) / 1e6:.1f} MB; limit {max_bytes / 1e6:.0f} MB)")
        return raw.decode("utf-8", errors="replace"), "BVH data"
    if isinstance(src, str) and (not src.strip() or src.lstrip()[:9].upper() == "HIERARCHY" or "\n" in src):
        if len(src) > max_bytes:
            raise UserError(f"BVH text is too large ({len(src) / 1e6:.1f} MB; limit {max_bytes / 1e6:.0f} MB)")
        return src, "BVH text"
    path = Path(src)
    name = path.name
    if not path.is_file():
        raise UserError(f"BVH file not found: {path}")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(6)
    if head == b"\xfd7zXZ\x00" or name.endswith(".xz"):
        try:
            with lzma.open(path, "rb") as f:
                raw = f.read(max_bytes + 1)
        except (lzma.LZMAError, EOFError) as e:
            raise UserError(f"{name}: not a valid .xz file ({e})") from None
        if len(raw) > max_bytes:
            raise UserError(f"{name}: decompressed BVH is larger than {max_bytes / 1e6:.0f} MB")
    else:
        if size > max_bytes:
            raise UserError(f"{name}: file is too large ({size / 1e6:.1f} MB; limit {max_bytes / 1e6:.0f} MB)")
        raw = path.read_bytes()
    return raw.decode("utf-8", errors="replace"), name


def _decompress_xz(raw: bytes, max_bytes: int, what: str) -> bytes:
    d = lzma.LZMADecompressor()
    try:
        out = d.decompress(raw, max_length=max_bytes + 1)
    except lzma.LZMAError as e:
        raise UserError(f"{what}: not valid .xz data ({e})") from None
    if len(out) > max_bytes:
        raise UserError(f"{what}: decompressed BVH is larger than {max_bytes / 1e6:.0f} MB")
    return out


class _Tokens:
    """Whitespace tokens of the hierarchy with their line numbers."""

    def __init__(self, lines: list[str], start_line: int, where: str):
        self.toks: list[tuple[str, int]] = []
        for i, line in enumerate(lines):
            line = line.replace("{", " { ").replace("}", " } ")
            for t in line.split():
                self.toks.append((t, start_line + i))
        self.i = 0
        self.where = where

    def error(self, msg: str) -> UserError:
        line = self.toks[min(self.i, len(self.toks) - 1)][1] if self.toks else 1
        return UserError(f"{self.where}: malformed BVH hierarchy at line {line}: {msg}")

    def peek(self) -> str | None:
        return self.toks[self.i][0] if self.i < len(self.toks) else None

    def next(self, what: str) -> str:
        if self.i >= len(self.toks):
            raise self.error(f"unexpected end of the hierarchy (expected {what})")
        t = self.toks[self.i][0]
        self.i += 1
        return t

    def expect(self, word: str) -> None:
        t = self.next(repr(word))
        if t.upper() != word.upper():
            self.i -= 1
            raise self.error(f"expected {word!r}, found {t!r}")

    def number(self, what: str) -> float:
        t = self.next(what)
        try:
            v = float(t)
        except ValueError:
            self.i -= 1
            raise self.error(f"expected a number for {what}, found {t!r}") from None
        if not math.isfinite(v):
            self.i -= 1
            raise self.error(f"{what} is not finite")
        return v


def read_bvh(src: str | Path | bytes, max_bytes: int = MAX_BVH_BYTES) -> BvhFile:
    """Parse BVH text, bytes, or a path to a ``.bvh`` / ``.bvh.xz`` file."""
    text, where = _read_source(src, max_bytes)
    text = text.lstrip("\ufeff")
    lines = text.splitlines()
    comments: list[str] = []
    body: list[str] = []
    for line in lines:
        s = line.strip()
        if s.startswith("#") or s.startswith("//"):
            comments.append(s.lstrip("#/ ").strip())
            body.append("")
        else:
            body.append(line)
    # locate the sections
    first = next((i for i, l in enumerate(body) if l.strip()), None)
    if first is None:
        raise UserError(f"{where}: empty file, not a BVH motion")
    if body[first].strip().upper() != "HIERARCHY":
        raise UserError(f"{where}: not a BVH file (it must start with HIERARCHY)")
    motion_line = next((i for i in range(first + 1, len(body)) if body[i].strip().upper() == "MOTION"), None)
    if motion_line is None:
        raise UserError(f"{where}: no MOTION section (the file is truncated or not a BVH file)")

    names, parents, offsets, channels, end_sites = _parse_hierarchy(
        _Tokens(body[first + 1:motion_line], first + 2, where))

    # MOTION header
    rest = body[motion_line + 1:]
    k = 0
    while k < len(rest) and not rest[k].strip():
        k += 1
    m = re.match(r"\s*Frames\s*:\s*(\S+)\s*$", rest[k] if k < len(rest) else "", re.I)
    if not m:
        raise UserError(f"{where}: expected 'Frames: N' after MOTION (line {motion_line + k + 2})")
    try:
        n_frames = int(m.group(1))
    except ValueError:
        raise UserError(f"{where}: 'Frames:' must be a whole number, got {m.group(1)!r}") from None
    k += 1
    while k < len(rest) and not rest[k].strip():
        k += 1
    m = re.match(r"\s*Frame\s+Time\s*:\s*(\S+)\s*$", rest[k] if k < len(rest) else "", re.I)
    if not m:
        raise UserError(f"{where}: expected 'Frame Time: seconds' after 'Frames:' (line {motion_line + k + 2})")
    try:
        frame_time = float(m.group(1))
    except ValueError:
        raise UserError(f"{where}: 'Frame Time:' must be a number, got {m.group(1)!r}") from None
    if not (math.isfinite(frame_time) and 1e-4 <= frame_time <= 10.0):
        raise UserError(f"{where}: Frame Time {frame_time:g} s is not a usable frame interval")
    if n_frames < 1:
        raise UserError(f"{where}: the file has no frames (Frames: {n_frames})")
    if n_frames > MAX_BVH_FRAMES:
        raise UserError(f"{where}: {n_frames} frames is too many (limit {MAX_BVH_FRAMES})")

    C = sum(len(c) for c in channels)
    data_lines = [l for l in rest[k + 1:] if l.strip()]
    tokens = " ".join(data_lines).split()
    if C == 0:
        data = np.zeros((n_frames, 0))
    else:
        if len(tokens) != n_frames * C:
            rows = len(tokens) / C
            raise UserError(
                f"{where}: MOTION has {len(tokens)} numbers but Frames: {n_frames} x {C} channels needs "
                f"{n_frames * C} (about {rows:.1f} frames present; the file is truncated or corrupt)")
        try:
            data = np.array(tokens, dtype=np.float64).reshape(n_frames, C)
        except ValueError:
            bad = next(t for t in tokens if not _is_float(t))
            raise UserError(f"{where}: MOTION data contains a non-number {bad[:20]!r}") from None
        if not np.isfinite(data).all():
            row = int(np.nonzero(~np.isfinite(data).all(axis=1))[0][0])
            raise UserError(f"{where}: MOTION data contains NaN/infinite values (frame {row})")
    return BvhFile(names=names, parents=parents, offsets=np.array(offsets, dtype=np.float64).reshape(-1, 3),
                   channels=channels, frame_time=frame_time, motion=data, end_sites=end_sites,
                   comments=comments)


def _is_float(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


def _parse_hierarchy(tok: _Tokens):
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    end_sites: list[tuple[int, np.ndarray]] = []

    t = tok.next("ROOT")
    if t.upper() != "ROOT":
        tok.i -= 1
        raise tok.error(f"expected ROOT, found {t!r}")

    def joint(parent: int) -> None:
        name = tok.next("a joint name")
        if name in ("{", "}"):
            tok.i -= 1
            raise tok.error("a joint name is missing")
        if name in names:
            raise tok.error(f"joint name {name!r} is used twice")
        if len(names) >= MAX_BVH_JOINTS:
            raise tok.error(f"more than {MAX_BVH_JOINTS} joints")
        j = len(names)
        names.append(name)
        parents.append(parent)
        tok.expect("{")
        tok.expect("OFFSET")
        offsets.append([tok.number(f"OFFSET of {name}") for _ in range(3)])
        chs: tuple[str, ...] = ()
        if (tok.peek() or "").upper() == "CHANNELS":
            tok.next("CHANNELS")
            n_f = tok.number(f"the channel count of {name}")
            n = int(n_f)
            if n != n_f or not 0 <= n <= 6:
                raise tok.error(f"joint {name} has {n_f:g} channels (0-6 allowed)")
            got = []
            for _ in range(n):
                c = tok.next(f"a channel name of {name}")
                canon = _CHANNEL_KEY.get(c.lower())
                if canon is None:
                    tok.i -= 1
                    raise tok.error(f"unknown channel {c!r} of joint {name} (expected one of {', '.join(_CHANNELS)})")
                if canon in got:
                    raise tok.error(f"channel {canon} of joint {name} is listed twice")
                got.append(canon)
            chs = tuple(got)
        channels.append(chs)
        while True:
            t = tok.next("JOINT, End Site or '}'")
            u = t.upper()
            if u == "}":
                return
            if u == "JOINT":
                joint(j)
            elif u == "END":
                site = tok.next("Site")
                if site.upper() != "SITE":
                    tok.i -= 1
                    raise tok.error(f"expected 'End Site', found 'End {site}'")
                if tok.peek() != "{":     # some writers put a name after End Site
                    tok.next("'{'")
                tok.expect("{")
                tok.expect("OFFSET")
                off = np.array([tok.number("End Site OFFSET") for _ in range(3)])
                tok.expect("}")
                end_sites.append((j, off))
            elif u == "ROOT":
                tok.i -= 1
                raise tok.error("a second ROOT inside a joint (missing '}')")
            else:
                tok.i -= 1
                raise tok.error(f"expected JOINT, End Site or '}}', found {t!r}")

    joint(-1)
    extra = tok.peek()
    if extra is not None:
        if extra.upper() == "ROOT":
            raise tok.error("files with several ROOT hierarchies are not supported")
        raise tok.error(f"unexpected {extra!r} after the end of the hierarchy")
    return names, parents, offsets, channels, end_sites


# ------------------------------------------------------------------------------------------------
# BVH -> Motion
# ------------------------------------------------------------------------------------------------
def _parse_axes(axes: str) -> np.ndarray:
    """'xyz', '-x,y,-z', 'x z -y' ... -> (3, 3) matrix M with out = M @ in."""
    parts = re.findall(r"([+-]?)\s*([xyzXYZ])", axes)
    if len(parts) != 3 or sorted(p[1].lower() for p in parts) != ["x", "y", "z"]:
        raise UserError(f"axes must name x, y and z once each with optional signs (e.g. '-x,y,-z'), got {axes!r}")
    M = np.zeros((3, 3))
    for row, (sign, ax) in enumerate(parts):
        M[row, "xyz".index(ax.lower())] = -1.0 if sign == "-" else 1.0
    return M


def _bone_scale(bvh: BvhFile, X: np.ndarray) -> float:
    """Metres per file unit from the longest rigid bone (thigh/shank: about 0.4 m), for files whose
    skeleton cannot be matched to a body (then the height is unknown)."""
    longest = 0.0
    for j, p in enumerate(bvh.parents):
        if p < 0:
            continue
        n = np.linalg.norm(X[:, j] - X[:, p], axis=-1)
        med = float(np.median(n))
        if med > 0 and float(np.std(n)) < 0.05 * med:
            longest = max(longest, med)
    if longest > 300:
        return 0.001   # millimetres
    if longest > 3:
        return 0.01    # centimetres (the usual mocap unit)
    return 1.0


def rest_positions(bvh: BvhFile) -> np.ndarray:
    """(J, 3) joint positions of the rest pose (OFFSETs chained, no rotation), file units and axes."""
    X = np.zeros((bvh.num_joints, 3))
    for j, p in enumerate(bvh.parents):
        X[j] = bvh.offsets[j] + (X[p] if p >= 0 else 0.0)
    return X


def _match_skeleton(bvh: BvhFile, skeleton: Skeleton | None, names: list[str] | None = None
                    ) -> tuple[Skeleton, list[int]]:
    """The skeleton to use and, for each of its joints, the BVH joint index.  ``names``: the joint
    names to match (default the file's; a sidecar may rename them back from a target rig)."""
    names = list(bvh.names if names is None else names)
    index = {n: i for i, n in enumerate(names)}
    lower = {n.lower(): i for i, n in enumerate(names)}
    if skeleton is None:
        named = bvh.meta().get("skeleton")
        cands = ([SKELETONS[named]] if named in SKELETONS else []) + list(SKELETONS.values())
        for sk in cands:
            if set(sk.joints) == set(names):
                skeleton = sk
                break
    if skeleton is None:
        from ..core.skeleton import mirror_by_names

        parents = tuple(bvh.parents)
        try:
            skeleton = Skeleton("bvh", tuple(names), parents, mirror_by_names(names))
        except ValueError:
            skeleton = Skeleton("bvh", tuple(names), parents, tuple(range(len(names))))
        return skeleton, list(range(len(names)))
    idx = []
    missing = []
    for n in skeleton.joints:
        i = index.get(n, lower.get(n.lower()))
        if i is None:
            missing.append(n)
        idx.append(i)
    if missing:
        raise UserError(f"the BVH file has no joint(s) {', '.join(missing[:6])} needed by skeleton "
                        f"{skeleton.name!r} (it has {', '.join(names[:8])}...)")
    return skeleton, idx


def bvh_to_motion(bvh: BvhFile, skeleton: Skeleton | None = None, scale: float | str = "auto",
                  axes: str = "auto", labels: MotionLabels | None = None, floor: bool | str = "auto",
                  sidecar: dict | None = None) -> Motion:
    """A :class:`Motion` (metres, Y-up) from a parsed BVH file.

    ``skeleton``: pick these joints by name (None: a known skeleton whose joint names match exactly,
    else a skeleton built from the BVH hierarchy, with its map onto the common skeleton found by
    :func:`motionviz.core.retarget.match_common` when the joints can be matched).  ``scale``: metres per
    file unit, or "auto" (the sidecar's or an old ``units=`` comment's units, else from the body's
    height: :func:`motionviz.core.retarget.guess_scale`).  ``axes``: which source axis becomes the motionviz
    x, y, z (e.g. "-x,y,-z" for a 180 degree turn, "x,z,-y" for Z-up files), or "auto" (the up axis
    guessed from the body; Y-up files are unchanged).  ``floor``: "auto" (files without a sidecar)
    stands the body on y = 0 when its lowest joints are below -5 cm or above 25 cm (ankles sit 5-15
    cm above the floor, toes 2-5 cm); True always; False never.
    ``sidecar``: the parsed ``<file>.bvh.json`` of our writer (units, skeleton, rig names).
    """
    from ..core import retarget as rt

    X = bvh.positions()                                  # (T, J, 3) file units
    names = list(bvh.names)
    side = sidecar or {}
    if side.get("joint_names"):
        names = [str(side["joint_names"].get(n, n)) for n in names]
    if skeleton is None and isinstance(side.get("skeleton"), dict):
        try:
            sk_side = Skeleton.from_dict(side["skeleton"])
        except (KeyError, TypeError, ValueError):
            sk_side = None
        if sk_side is not None and set(sk_side.joints) <= set(names):
            skeleton = sk_side
    sk, idx = _match_skeleton(bvh, skeleton, names)
    info: dict[str, str] = {}

    # the map onto the common skeleton (needed for units, up axis and every model)
    mapping = None
    if sk.name == "bvh":
        try:
            mapping = rt.match_common(names, bvh.parents, rest_positions(bvh), "the BVH skeleton")
        except UserError as e:
            info["retarget_error"] = str(e)
    cmap = mapping if mapping is not None else _known_map(sk)
    Xs, rest_s = X[:, idx], rest_positions(bvh)[idx]     # the skeleton's joints (T, J, 3), (J, 3)

    # axes
    if axes == "auto":
        M = np.eye(3)
        if cmap is not None and not side:                 # our sidecar says the file is Y-up
            up = rt.guess_up(rest_s, Xs, cmap, sk.joints)
            M = rt.up_rotation(up)
            info["up_in_file"] = "+-"[int(up.sum() < 0)] + "XYZ"[int(np.argmax(np.abs(up)))]
    else:
        M = _parse_axes(axes)

    # units
    unit = str(side.get("units") or bvh.meta().get("units", "")).lower()
    if scale == "auto":
        if unit in _UNIT_SCALE:
            s = _UNIT_SCALE[unit]
        elif cmap is not None:
            s, unit = rt.guess_scale(rt.estimate_height(Xs, sk.joints, cmap))
        else:
            s = _bone_scale(bvh, X)
            unit = {0.001: "mm", 0.01: "cm", 1.0: "m"}[s] + " (guessed from the longest bone)"
    else:
        try:
            s = float(scale)
        except (TypeError, ValueError):
            raise UserError(f"scale must be a number or 'auto', got {scale!r}") from None
        if not (math.isfinite(s) and s > 0):
            raise UserError(f"scale must be a positive number, got {scale!r}")
        unit = f"{s:g} m"
    info["unit_in_file"] = unit
    joints = (Xs @ M.T) * s

    # floor
    if floor is True or (floor == "auto" and cmap is not None and not side):
        lowest = float(np.percentile(np.min(joints[..., 1], axis=1), 2))
        if floor is True or not -0.05 <= lowest <= 0.25:          # ankles sit 5-15 cm above the floor
            joints[..., 1] -= lowest
            info["floor_shift_m"] = f"{-lowest:.3f}"
    if mapping is not None:
        sk = Skeleton(sk.name, sk.joints, sk.parents, sk.mirror, tuple(mapping.items()))


    fps = float(side.get("fps") or bvh.meta().get("fps", 0) or 0) or bvh.fps
    if abs(fps - bvh.fps) > 0.01 * bvh.fps:
        fps = bvh.fps
    lab = labels or MotionLabels(source="bvh")
    if side.get("labels"):
        try:
            saved = MotionLabels.from_dict(dict(side["labels"]))
            lab = MotionLabels(**{**saved.to_dict(), "source": lab.source or saved.source})
        except (TypeError, ValueError):
            pass
    lab = MotionLabels(**{**lab.to_dict(), "extra": {**lab.extra, **info}})
    return Motion(joints.astype(np.float32), sk, fps, lab)


def _known_map(sk: Skeleton) -> dict[str, tuple[str, ...]] | None:
    """common joint -> source names for a known topology (None when it has none)."""
    from ..core.skeleton import RETARGET

    if sk.name == COMMON.name:
        return {j: (j,) for j in COMMON.joints}
    m = dict(sk.retarget_map) or RETARGET.get(sk.name)
    if not m:
        return None
    return {k: ((v,) if isinstance(v, str) else tuple(v)) for k, v in m.items()}


def sidecar_path(path: str | Path) -> Path:
    """``walk.bvh`` -> ``walk.bvh.json`` (``walk.bvh.xz`` -> ``walk.bvh.json``)."""
    p = Path(path)
    name = p.name[:-3] if p.name.lower().endswith(".xz") else p.name
    return p.with_name(name + ".json")


def read_sidecar(path: str | Path) -> dict | None:
    """The ``<file>.bvh.json`` our writer puts next to a BVH file, or None (absent / not ours / bad)."""
    import json

    sp = sidecar_path(path)
    try:
        if not sp.is_file() or sp.stat().st_size > MAX_SIDECAR_BYTES:
            return None
        d = json.loads(sp.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return d if isinstance(d, dict) and d.get("format") == SIDECAR_FORMAT else None


def load_bvh_motion(src: str | Path | bytes, skeleton: Skeleton | None = None, scale: float | str = "auto",
                    axes: str = "auto") -> Motion:
    """``bvh_to_motion(read_bvh(src), ...)`` with the file name as the label source and the sidecar
    ``<file>.bvh.json`` (when ``src`` is a path and it exists)."""
    bvh = read_bvh(src)
    is_path = isinstance(src, (str, Path)) and "\n" not in str(src)
    source = Path(src).name if is_path else "bvh"
    side = read_sidecar(src) if is_path else None
    return bvh_to_motion(bvh, skeleton, scale, axes, MotionLabels(source=source), sidecar=side)

# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------
def _fill_missing(joints: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Linear interpolation in time over NaN joints (ends hold the nearest known value)."""
    if not np.isnan(joints).any():
        return joints
    out = joints.copy()
    T = out.shape[0]
    t = np.arange(T)
    for j in range(out.shape[1]):
        ok = np.isfinite(out[:, j]).all(axis=-1)
        if ok.all():
            continue
        if not ok.any():
            raise UserError(f"joint {names[j]!r} is missing (NaN) in every frame; complete the motion "
                            f"(e.g. with the inpainting model) before exporting BVH")
        for c in range(3):
            out[:, j, c] = np.interp(t, t[ok], out[ok, j, c])
    return out


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minimal rotation (T, 3, 3) taking unit vector a (3,) to unit vectors b (T, 3)."""
    T = b.shape[0]
    a = np.broadcast_to(a, (T, 3))
    v = np.cross(a, b)
    c = np.einsum("ti,ti->t", a, b)
    K = np.zeros((T, 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    K[:, 1, 0], K[:, 2, 0], K[:, 2, 1] = v[:, 2], -v[:, 1], v[:, 0]
    denom = np.where(1.0 + c > 1e-9, 1.0 + c, 1.0)[:, None, None]
    R = np.eye(3) + K + (K @ K) / denom
    # exactly opposite: a half turn about any axis perpendicular to a
    opp = 1.0 + c <= 1e-9
    if opp.any():
        perp = np.cross(a[0], [1.0, 0, 0])
        if np.linalg.norm(perp) < 1e-6:
            perp = np.cross(a[0], [0, 1.0, 0])
        perp /= np.linalg.norm(perp)
        R[opp] = 2.0 * np.outer(perp, perp) - np.eye(3)
    return R


def _best_rotation(rest: np.ndarray, cur: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted Kabsch: rest (K, 3), cur (T, K, 3), w (K,) -> (T, 3, 3) R minimising sum w |R rest - cur|^2."""
    H = np.einsum("k,ki,tkj->tij", w, rest, cur)          # sum_k w rest_k cur_k^T
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.swapaxes(Vt, 1, 2) @ np.swapaxes(U, 1, 2)))
    d = np.where(d == 0, 1.0, d)
    D = np.broadcast_to(np.eye(3), H.shape).copy()
    D[:, 2, 2] = d
    return np.swapaxes(Vt, 1, 2) @ D @ np.swapaxes(U, 1, 2)


def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 1e-9, n, 1.0), n[..., 0]


def _bvh_name(name: str, used: set[str]) -> str:
    base = re.sub(r"[^\w.:\-]", "_", name) or "joint"
    out, k = base, 1
    while out in used:
        k += 1
        out = f"{base}_{k}"
    used.add(out)
    return out


def _prepare(motion: Motion, rig: str, clean_feet: bool) -> tuple[Motion, dict[str, str]]:
    """The motion to write (on the common skeleton for a target rig, feet cleaned on request) and the
    exported name of each of its joints."""
    from ..core.retarget import rig_names

    rig = str(rig).strip().lower()
    names = rig_names(rig) if rig != "motionviz" else None
    if names is not None or clean_feet:
        if motion.skeleton.name != COMMON.name:
            motion = motion.retarget(COMMON)
    if clean_feet:
        from .footcontact import clean_foot_contacts

        motion = clean_foot_contacts(motion)
    if names is None:
        names = {j: j for j in motion.skeleton.joints}
    return motion, names


def write_bvh(motion: Motion, unit: str = "cm", decimals: int = 6, rig: str = "motionviz",
              clean_feet: bool = False) -> str:
    """BVH text for any motion (see the module docstring): no comment lines.  ``unit``: "cm"
    (default), "m" or "mm".  ``rig``: joint names ("motionviz": the skeleton's own; "mixamo",
    "mixamo-plain", "smpl": a common-skeleton motion named as that rig; other skeletons are retargeted
    to the common one first).  ``clean_feet``: remove foot sliding first (common skeleton)."""
    if unit not in ("cm", "m", "mm"):
        raise UserError(f"BVH unit must be 'cm', 'm' or 'mm', got {unit!r}")
    motion, rename = _prepare(motion, rig, clean_feet)
    sk = motion.skeleton
    if motion.joints.shape[-1] != 3:
        raise UserError("BVH export needs 3D joint positions")
    per_m = 1.0 / _UNIT_SCALE[unit]
    X = _fill_missing(motion.joints.astype(np.float64), sk.joints) * per_m   # (T, J, 3) file units
    T, J, _ = X.shape
    root = sk.root
    if sum(1 for p in sk.parents if p < 0) != 1:
        raise UserError(f"skeleton {sk.name!r} has several roots; BVH needs a single tree")

    # depth-first joint order (BVH nesting), children in skeleton order
    order: list[int] = []
    stack = [root]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(sk.children[j]))

    # rest offsets = median bone vectors (world axes); root rest = median root position
    rest = np.zeros((J, 3))
    for j in range(J):
        p = sk.parents[j]
        rest[j] = np.median(X[:, j] - X[:, p], axis=0) if p >= 0 else np.median(X[:, j], axis=0)

    # global rotations: rest child offsets -> current child bone vectors
    G = np.empty((T, J, 3, 3))
    for j in order:
        kids = [c for c in sk.children[j] if np.linalg.norm(rest[c]) > 1e-6]
        p = sk.parents[j]
        if len(kids) == 1:
            a, _ = _unit(rest[kids[0]])
            b, n = _unit(X[:, kids[0]] - X[:, j])
            Gj = _swing(a, b)
            if p >= 0:
                Gj[n < 1e-9] = G[n < 1e-9, p]
        elif len(kids) >= 2:
            r = [_unit(rest[c])[0] for c in kids]
            cvec = [_unit(X[:, c] - X[:, j])[0] for c in kids]
            w = [1.0] * len(kids)
            if p >= 0 and np.linalg.norm(rest[j]) > 1e-6:   # the bone to the parent fixes the twist
                r.append(-_unit(rest[j])[0])
                cvec.append(-_unit(X[:, j] - X[:, p])[0])
                w.append(0.25)
            Gj = _best_rotation(np.stack(r), np.stack(cvec, axis=1), np.array(w))
        else:
            Gj = G[:, p].copy() if p >= 0 else np.broadcast_to(np.eye(3), (T, 3, 3)).copy()
        G[:, j] = Gj

    # local Euler angles (rounded as written), then rebuild the chain from the written angles so the
    # translation channels reproduce every joint position exactly
    fmt = f"%.{decimals}f"
    eul = np.empty((T, J, 3))
    Gw = np.empty((T, J, 3, 3))
    trans = np.empty((T, J, 3))
    for j in order:
        p = sk.parents[j]
        local = G[:, j] if p < 0 else np.swapaxes(Gw[:, p], 1, 2) @ G[:, j]
        e = np.round(_matrix_to_zxy(local), decimals)
        eul[:, j] = e
        Rl = euler_to_matrix(e, "ZXY")
        if p < 0:
            Gw[:, j] = Rl
            trans[:, j] = X[:, j]
        else:
            Gw[:, j] = Gw[:, p] @ Rl
            trans[:, j] = np.einsum("tba,tb->ta", Gw[:, p], X[:, j] - X[:, p])   # G_p^T (X_j - X_p)
    trans = np.round(trans, decimals)

    used: set[str] = set()
    names = {j: _bvh_name(rename.get(sk.joints[j], sk.joints[j]), used) for j in order}
    out = io.StringIO()
    out.write("HIERARCHY\n")

    def emit(j: int, depth: int) -> None:
        ind = "\t" * depth
        kw = "ROOT" if sk.parents[j] < 0 else "JOINT"
        out.write(f"{ind}{kw} {names[j]}\n{ind}{{\n")
        off = rest[j]
        out.write(f"{ind}\tOFFSET {fmt % off[0]} {fmt % off[1]} {fmt % off[2]}\n")
        out.write(f"{ind}\tCHANNELS 6 {' '.join(_WRITE_CHANNELS)}\n")
        kids = sk.children[j]
        for c in kids:
            emit(c, depth + 1)
        if not kids:
            p = sk.parents[j]
            e = 0.25 * rest[j] if p >= 0 else np.array([0.0, 10.0 * per_m / 100.0, 0.0])
            out.write(f"{ind}\tEnd Site\n{ind}\t{{\n{ind}\t\tOFFSET {fmt % e[0]} {fmt % e[1]} {fmt % e[2]}\n"
                      f"{ind}\t}}\n")
        out.write(f"{ind}}}\n")

    emit(root, 0)
    out.write("MOTION\n")
    out.write(f"Frames: {T}\n")
    out.write(f"Frame Time: {1.0 / motion.fps:.8f}\n")
    # rows: per joint in file order: position (x y z), rotation (z x y)
    cols = np.concatenate([np.concatenate([trans[:, j], eul[:, j]], axis=1) for j in order], axis=1)
    cols = np.where(np.abs(cols) < 0.5 * 10.0 ** -decimals, 0.0, cols)   # no "-0.000000"
    np.savetxt(out, cols, fmt=fmt, delimiter=" ")
    return out.getvalue()


def bvh_sidecar(motion: Motion, unit: str = "cm", rig: str = "motionviz", clean_feet: bool = False) -> dict:
    """What the BVH format cannot say, for ``<file>.bvh.json``: units, frame rate, axes, the skeleton
    (with its left/right map), the exported name of each joint (for rigs) and the labels."""
    m, rename = _prepare(motion, rig, clean_feet)
    used: set[str] = set()
    exported = {_bvh_name(rename.get(j, j), used): j for j in m.skeleton.joints}
    return {
        "format": SIDECAR_FORMAT, "units": unit, "metres_per_unit": _UNIT_SCALE[unit], "fps": m.fps,
        "frames": m.num_frames, "up": "+Y", "facing": "+Z", "left": "+X", "rig": str(rig).lower(),
        "feet_cleaned": bool(clean_feet), "skeleton": m.skeleton.to_dict(),
        "joint_names": {k: v for k, v in exported.items() if k != v}, "labels": m.labels.to_dict(),
    }


def save_bvh(motion: Motion, path: str | Path, unit: str = "cm", rig: str = "motionviz",
             clean_feet: bool = False, sidecar: bool = True) -> Path:
    """Write ``write_bvh(motion, unit, rig=..., clean_feet=...)`` to ``path`` and, with ``sidecar``,
    :func:`bvh_sidecar` to ``<path>.json`` (both atomically); returns the BVH path."""
    import json

    path = Path(path)
    motion, _ = _prepare(motion, rig, clean_feet)        # clean the feet once for both files
    text = write_bvh(motion, unit=unit, rig=rig)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    if sidecar:
        sp = sidecar_path(path)
        tmp = sp.with_name(sp.name + ".tmp")
        meta = bvh_sidecar(motion, unit, rig)
        meta["feet_cleaned"] = bool(clean_feet)
        tmp.write_text(json.dumps(meta, indent=1, default=str), encoding="utf-8")
        tmp.replace(sp)
    return path
