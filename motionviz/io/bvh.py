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

import lzma
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..core.errors import UserError

__all__ = [
    "BvhFile",
    "read_bvh",
    "euler_to_matrix",
    "MAX_BVH_BYTES",
]

MAX_BVH_BYTES = 64 * 1024 * 1024   # decompressed text size limit
MAX_BVH_JOINTS = 1024
MAX_BVH_FRAMES = 200_000

_CHANNELS = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")
_CHANNEL_KEY = {c.lower(): c for c in _CHANNELS}


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


def _header_field(rest: list[str], k: int, pattern: str, convert: Callable[[str], Any], where: str,
                  motion_line: int, expected: str, bad: str) -> tuple[Any, int]:
    """The value of the MOTION header line matching ``pattern`` at or after line ``k`` of ``rest`` (blank
    lines skipped), converted, and that line's index; a one-line :class:`UserError` otherwise."""
    while k < len(rest) and not rest[k].strip():
        k += 1
    m = re.match(pattern, rest[k] if k < len(rest) else "", re.I)
    if not m:
        raise UserError(f"{where}: expected {expected} (line {motion_line + k + 2})")
    try:
        return convert(m.group(1)), k
    except ValueError:
        raise UserError(f"{where}: {bad}, got {m.group(1)!r}") from None


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
    n_frames, k = _header_field(rest, 0, r"\s*Frames\s*:\s*(\S+)\s*$", int, where, motion_line,
                                "'Frames: N' after MOTION", "'Frames:' must be a whole number")
    frame_time, k = _header_field(rest, k + 1, r"\s*Frame\s+Time\s*:\s*(\S+)\s*$", float, where, motion_line,
                                  "'Frame Time: seconds' after 'Frames:'", "'Frame Time:' must be a number")
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
