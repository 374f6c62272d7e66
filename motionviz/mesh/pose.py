"""Posing the Anny body from joint positions: per-bone swing rotations, facing, body shape from bone lengths,
gaps filled."""

from __future__ import annotations

import numpy as np

from ..core.motion import MotionError
from ..core.skeleton import COMMON
from . import _SIDES, SEGMENTS, Body


# ------------------------------------------------------------------------------------------------
# rotations
# ------------------------------------------------------------------------------------------------
def _unit(v: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


def _skew(v: np.ndarray) -> np.ndarray:
    z = np.zeros(v.shape[:-1])
    return np.stack([np.stack([z, -v[..., 2], v[..., 1]], -1),
                     np.stack([v[..., 2], z, -v[..., 0]], -1),
                     np.stack([-v[..., 1], v[..., 0], z], -1)], -2)


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3) unit vectors -> (..., 3, 3) the smallest rotation taking a onto b."""
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    K = _skew(v)
    eye = np.broadcast_to(np.eye(3), K.shape)
    R = eye + K + (K @ K) / np.maximum(1.0 + c, 1e-12)[..., None, None]
    bad = c < -1.0 + 1e-6
    if np.any(bad):
        ab = a[bad]
        helper = np.where(np.abs(ab[:, :1]) < 0.9, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
        axis = _unit(np.cross(ab, helper))
        R[bad] = 2.0 * axis[:, :, None] * axis[:, None, :] - np.eye(3)
    return R


def _frame(up: np.ndarray, across: np.ndarray) -> np.ndarray:
    """Columns (x = across, y = up, z = x cross y): an orthonormal frame with y exactly along ``up``."""
    y = _unit(up)
    x = _unit(across - np.sum(across * y, axis=-1, keepdims=True) * y)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def _yaw(G: np.ndarray) -> np.ndarray:
    """(T, 3, 3) -> rotation about +Y with the heading of G's forward (+Z) axis."""
    h = G[..., :, 2]
    th = np.arctan2(h[..., 0], h[..., 2])
    c, s = np.cos(th), np.sin(th)
    o, z = np.ones_like(c), np.zeros_like(c)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _shape(G: np.ndarray, rel: np.ndarray, rest_rel: np.ndarray, s: float) -> np.ndarray:
    """Per-motion shape matrix K (3, 3): the smallest change of ``s I`` mapping the rest offsets
    ``rest_rel`` (n, 3) onto the median over frames of ``G^T rel`` ((T, n, 3) -> (n, 3))."""
    local = np.einsum("tji,tnj->tni", G, rel)              # G^T rel
    O = np.nanmedian(local, axis=0)                        # (n, 3)
    R = rest_rel.astype(np.float64)
    E = (O - s * R).T                                      # (3, n)
    return s * np.eye(3) + E @ np.linalg.pinv(R.T)


# ------------------------------------------------------------------------------------------------
# posing the Anny body (analytic bone-direction IK with per-motion proportions)
# ------------------------------------------------------------------------------------------------
def _fill_missing(J: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """NaN joint positions filled by linear interpolation in time; joints never seen are put at their
    rest offset from the pelvis.  Raises MotionError when the pelvis and hips are never seen."""
    J = J.astype(np.float64).copy()
    T = J.shape[0]
    t = np.arange(T)
    for j in range(J.shape[1]):
        ok = np.isfinite(J[:, j]).all(axis=1)
        if ok.all() or not ok.any():
            continue
        for k in range(3):
            J[~ok, j, k] = np.interp(t[~ok], t[ok], J[ok, j, k])
    pe = COMMON.index("pelvis")
    if not np.isfinite(J[:, pe]).all():
        raise MotionError("the pelvis is never observed, so the body cannot be placed")
    for j in range(J.shape[1]):
        if not np.isfinite(J[:, j]).all():
            J[:, j] = J[:, pe] + (rest[j] - rest[pe])
    return J


def solve_anny(body: Body, joints: np.ndarray
               ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], np.ndarray]:
    """The pose solve behind :func:`pose_anny`: common-skeleton joints (T, 15, 3) -> per segment
    ``(a (3,) rest anchor, a' (T, 3) posed anchor, G (T, 3, 3) rotation, K (3, 3) shape)`` (the map
    ``A(v) = a' + G K (v - a)``) and the body's posed common joints (T, 15, 3)."""
    ix = COMMON.index
    R0 = body.joints.astype(np.float64)
    C0 = body.clavicles.astype(np.float64)
    J = _fill_missing(np.asarray(joints), R0)
    bl = COMMON.bone_lengths(J)                                              # (T, B)
    s = float(np.sum(np.nanmedian(bl, axis=0)) / np.sum(COMMON.bone_lengths(R0)))
    if not np.isfinite(s) or s <= 1e-3:
        raise MotionError("the motion's bones have zero length; cannot size the body")
    seg: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}   # name -> (a, a', G, K)
    posed = np.zeros_like(J)

    def put(name: str, a: np.ndarray, a_post: np.ndarray, G: np.ndarray, K: np.ndarray) -> None:
        seg[name] = (a, a_post, G, K)

    def apply(name: str, p: np.ndarray) -> np.ndarray:
        a, a_post, G, K = seg[name]
        return a_post + np.einsum("tij,j->ti", G, K @ (p - a))

    def limb(name: str, parent_G: np.ndarray, a: np.ndarray, a_post: np.ndarray, rest_end: np.ndarray,
             target: np.ndarray) -> np.ndarray:
        d_rest = _unit(rest_end - a)
        base = np.einsum("tij,j->ti", parent_G, d_rest)
        d = target - a_post
        n = np.linalg.norm(d, axis=-1, keepdims=True)
        d = np.where(n > 1e-6, d / np.maximum(n, 1e-12), base)
        G = _swing(base, d) @ parent_G
        K = _shape(G, (target - a_post)[:, None], (rest_end - a)[None], s)
        put(name, a, a_post, G, K)
        return apply(name, rest_end)

    pe, sp, nk = ix("pelvis"), ix("spine"), ix("neck")
    lh, rh, ls, rs = ix("left_hip"), ix("right_hip"), ix("left_shoulder"), ix("right_shoulder")
    # pelvis + lumbar: frame from the pelvis->spine direction and the hip line
    G_root = _frame(J[:, sp] - J[:, pe], J[:, lh] - J[:, rh]) @ _frame(R0[sp] - R0[pe], R0[lh] - R0[rh]).T
    put("pelvis", R0[pe], J[:, pe], G_root,
        _shape(G_root, J[:, [lh, rh]] - J[:, pe, None], R0[[lh, rh]] - R0[pe], s))
    put("lumbar", R0[pe], J[:, pe], G_root, _shape(G_root, (J[:, sp] - J[:, pe])[:, None], (R0[sp] - R0[pe])[None], s))
    posed[:, pe] = J[:, pe]
    posed[:, sp] = apply("lumbar", R0[sp])
    posed[:, lh], posed[:, rh] = apply("pelvis", R0[lh]), apply("pelvis", R0[rh])
    # thorax: frame from the spine->neck direction and the shoulder line; the head follows it
    G_th = _frame(J[:, nk] - posed[:, sp], J[:, ls] - J[:, rs]) @ _frame(R0[nk] - R0[sp], R0[ls] - R0[rs]).T
    put("thorax", R0[sp], posed[:, sp], G_th,
        _shape(G_th, (J[:, nk] - posed[:, sp])[:, None], (R0[nk] - R0[sp])[None], s))
    posed[:, nk] = apply("thorax", R0[nk])
    put("head", R0[nk], posed[:, nk], G_th, s * np.eye(3))
    # feet: flat on the floor with the pelvis' heading while the body is upright; lying down (push-ups)
    # they follow the pelvis
    upright = (G_root[:, 1, 1] > 0.5)[:, None, None]
    G_foot = np.where(upright, _yaw(G_root), G_root)
    for k, side in enumerate(_SIDES):
        sh, el, wr = ix(f"{side}_shoulder"), ix(f"{side}_elbow"), ix(f"{side}_wrist")
        hp, kn, an = ix(f"{side}_hip"), ix(f"{side}_knee"), ix(f"{side}_ankle")
        c_post = apply("thorax", C0[k])
        posed[:, sh] = limb(f"{side}_clavicle", G_th, C0[k], c_post, R0[sh], J[:, sh])
        posed[:, el] = limb(f"{side}_upper_arm", seg[f"{side}_clavicle"][2], R0[sh], posed[:, sh], R0[el], J[:, el])
        posed[:, wr] = limb(f"{side}_forearm", seg[f"{side}_upper_arm"][2], R0[el], posed[:, el], R0[wr], J[:, wr])
        put(f"{side}_hand", R0[wr], posed[:, wr], seg[f"{side}_forearm"][2], s * np.eye(3))
        posed[:, kn] = limb(f"{side}_thigh", G_root, R0[hp], posed[:, hp], R0[kn], J[:, kn])
        posed[:, an] = limb(f"{side}_shank", seg[f"{side}_thigh"][2], R0[kn], posed[:, kn], R0[an], J[:, an])
        put(f"{side}_foot", R0[an], posed[:, an], G_foot, s * np.eye(3))
    return seg, posed


def pose_anny(body: Body, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Common-skeleton joints (T, 15, 3) -> segment transforms (T, S, 3, 4) and the body's posed
    common joints (T, 15, 3) (equal to the targets up to bone-length noise)."""
    seg, posed = solve_anny(body, joints)
    T = posed.shape[0]
    X = np.zeros((T, len(SEGMENTS), 3, 4))
    for i, name in enumerate(SEGMENTS):
        a, a_post, G, K = seg[name]
        L = G @ K                                                             # (T, 3, 3)
        X[:, i, :, :3] = L
        X[:, i, :, 3] = a_post - np.einsum("tij,j->ti", L, a)
    return X.astype(np.float32), posed.astype(np.float32)
