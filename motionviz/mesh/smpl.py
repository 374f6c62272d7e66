"""Optional SMPL bodies (the user's own model files, $MOTIONVIZ_SMPL): loading, forward kinematics and fitting
to a motion."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ..core.errors import UserError
from ..core.skeleton import COMMON, RETARGET, SMPL22
from . import _BODIES, _BODY_LOCK, Progress
from .decimation import PREVIEW_FACES, decimate
from .pose import _fill_missing, _frame

# ------------------------------------------------------------------------------------------------
# SMPL (user-provided model files)
# ------------------------------------------------------------------------------------------------
SMPL_ENV = "MOTIONVIZ_SMPL_DIR"


_SMPL_FILES = ("SMPL_NEUTRAL.npz", "SMPL_MALE.npz", "SMPL_FEMALE.npz", "smpl_neutral.npz", "model.npz")


_SMPL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")


def _smpl_file(directory: str | os.PathLike | None = None) -> Path | None:
    d = directory if directory is not None else os.environ.get(SMPL_ENV)
    if not d:
        return None
    p = Path(d).expanduser()
    if p.is_file():
        return p
    # the folder itself, or smplx's layout <models>/smpl/SMPL_NEUTRAL.npz
    for folder in (p, p / "smpl", p / "SMPL"):
        if folder.is_dir():
            for name in _SMPL_FILES:
                if (folder / name).is_file():
                    return folder / name
            npz = sorted(folder.glob("*.npz"))
            if npz:
                return npz[0]
    return None


def smpl_available(directory: str | os.PathLike | None = None) -> bool:
    """True when ``directory`` (default ``$MOTIONVIZ_SMPL_DIR``) holds an SMPL ``.npz`` model file."""
    return _smpl_file(directory) is not None


@dataclass(frozen=True, eq=False)
class SmplBody:
    """An SMPL model read from the user's ``.npz`` (no pickles), in the motionviz frame."""

    name: str
    path: Path
    v_template: np.ndarray      # (V, 3)
    shapedirs: np.ndarray       # (V, 3, B)
    posedirs: np.ndarray        # (P, 3V) smplx layout
    J_regressor: np.ndarray     # (24, V)
    weights: np.ndarray         # (V, 24)
    parents: np.ndarray         # (24,)
    faces: np.ndarray           # (F, 3) int32
    preview_index: np.ndarray
    preview_faces: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    def tensors(self):
        f = torch.float32
        return (torch.as_tensor(self.v_template, dtype=f), torch.as_tensor(self.shapedirs, dtype=f),
                torch.as_tensor(self.posedirs, dtype=f), torch.as_tensor(self.J_regressor, dtype=f),
                torch.as_tensor(self.parents, dtype=torch.long), torch.as_tensor(self.weights, dtype=f))


def smpl_body(directory: str | os.PathLike | None = None, preview_faces: int = PREVIEW_FACES) -> SmplBody:
    """Load the user's SMPL model (``.npz`` with v_template, shapedirs, posedirs, J_regressor, weights,
    kintree_table, f) through ``smplx``; cached per file."""
    path = _smpl_file(directory)
    if path is None:
        raise UserError(f"no SMPL model found: set {SMPL_ENV} to a folder holding SMPL_NEUTRAL.npz "
                        "(the .npz variant of the SMPL model files; .pkl files are not read)")
    key = f"smpl:{path.resolve()}:{path.stat().st_mtime_ns}"
    with _BODY_LOCK:
        if key in _BODIES:
            return _BODIES[key]
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _SMPL_KEYS if k not in z.files]
            if missing:
                raise UserError(f"{path.name} is not an SMPL model file (missing {', '.join(missing)})")
            data = {k: np.asarray(z[k]) for k in _SMPL_KEYS}
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the SMPL model {path}: {e}") from None
    try:
        import smplx
        from smplx.utils import Struct
    except ImportError as e:  # pragma: no cover
        raise UserError(f"SMPL bodies need the 'smplx' package ({e})") from None
    with contextlib.redirect_stdout(io.StringIO()):      # smplx prints a warning about 10 betas
        model = smplx.SMPL(model_path=str(path), data_struct=Struct(**data), num_betas=10)
    if model.J_regressor.shape[0] < 22 or model.parents.shape[0] < 22:
        raise UserError(f"{path.name}: an SMPL model needs at least 22 joints")
    faces = np.asarray(model.faces, dtype=np.int64)
    vt = model.v_template.numpy().astype(np.float64)
    pidx, pfaces = decimate(vt, faces, model.lbs_weights.numpy().argmax(1), preview_faces)
    body = SmplBody(
        name="smpl", path=path, v_template=vt.astype(np.float32), shapedirs=model.shapedirs.numpy(),
        posedirs=model.posedirs.numpy(), J_regressor=model.J_regressor.numpy(),
        weights=model.lbs_weights.numpy(), parents=model.parents.numpy(), faces=faces.astype(np.int32),
        preview_index=pidx, preview_faces=pfaces,
        info={"source": "smplx", "file": path.name, "licence": "user-provided SMPL model (its own licence)"})
    with _BODY_LOCK:
        _BODIES[key] = body
    return body


def _smpl_forward(body: SmplBody, betas, pose, transl, need_vertices: bool):
    """pose (T, 24, 3) axis-angle, betas (1, B), transl (T, 3) -> (vertices or None, joints (T, 24, 3))."""
    from smplx.lbs import batch_rigid_transform, batch_rodrigues, lbs
    v_t, sd, pd, jr, par, w = body.tensors()
    T = pose.shape[0]
    if need_vertices:
        verts, joints = lbs(betas.expand(T, -1), pose.reshape(T, -1), v_t, sd, pd, jr, par, w, pose2rot=True)
        return verts + transl[:, None], joints + transl[:, None]
    shaped = v_t + torch.einsum("bl,mkl->bmk", betas, sd)                    # (1, V, 3)
    J = torch.einsum("bik,ji->bjk", shaped, jr).expand(T, -1, -1)           # (T, 24, 3)
    rot = batch_rodrigues(pose.reshape(-1, 3)).view(T, -1, 3, 3)
    posed, _ = batch_rigid_transform(rot, J, par)
    return None, posed + transl[:, None]


_SMPL_COMMON = {c: (RETARGET["smpl-22"][c]) for c in COMMON.joints}


def fit_smpl(body: SmplBody, joints: np.ndarray, steps: int = 150, progress: Progress | None = None
             ) -> dict[str, np.ndarray]:
    """Fit SMPL pose (per frame), shape (per motion) and translation to common-skeleton joints
    (T, 15, 3) by a batched Adam optimisation of the joint distances (joints matched by name through
    SMPL22), with a small pose prior.  Returns {"betas" (1, B), "pose" (T, 24, 3), "transl" (T, 3),
    "error" (T,) mean joint distance in metres}."""
    J = _fill_missing(np.asarray(joints), np.zeros((len(COMMON), 3)))
    T = J.shape[0]
    sm_idx = [SMPL22.index(_SMPL_COMMON[c]) for c in COMMON.joints]
    target = torch.as_tensor(J, dtype=torch.float32)
    n_b = body.shapedirs.shape[-1]
    n_j = body.J_regressor.shape[0]
    betas = torch.zeros(1, n_b, requires_grad=True)
    pose = torch.zeros(T, n_j, 3)
    # initial global orientation/translation from the hips and spine (the SMPL rest pose faces +Z, Y-up)
    _, J0 = _smpl_forward(body, betas.detach(), pose, torch.zeros(T, 3), need_vertices=False)
    rest = J0[0].numpy().astype(np.float64)
    ix = COMMON.index
    up_r = rest[sm_idx[ix("spine")]] - rest[sm_idx[ix("pelvis")]]
    ac_r = rest[sm_idx[ix("left_hip")]] - rest[sm_idx[ix("right_hip")]]
    G = _frame(J[:, ix("spine")] - J[:, ix("pelvis")], J[:, ix("left_hip")] - J[:, ix("right_hip")]) \
        @ _frame(up_r, ac_r).T
    pose[:, 0] = torch.as_tensor(Rotation.from_matrix(G).as_rotvec(), dtype=torch.float32)
    transl0 = J[:, ix("pelvis")] - np.einsum("tij,j->ti", G, rest[sm_idx[ix("pelvis")]])
    pose.requires_grad_(True)
    transl = torch.as_tensor(transl0, dtype=torch.float32).clone().requires_grad_(True)
    opt = torch.optim.Adam([{"params": [pose], "lr": 0.05}, {"params": [transl], "lr": 0.02},
                            {"params": [betas], "lr": 0.05}])
    for it in range(steps):
        opt.zero_grad()
        _, pj = _smpl_forward(body, betas, pose, transl, need_vertices=False)
        err = (pj[:, sm_idx] - target).norm(dim=-1)                          # (T, 15)
        loss = err.mean() + 1e-3 * pose[:, 1:].pow(2).sum(-1).mean() + 1e-3 * betas.pow(2).mean()
        if T > 1:
            loss = loss + 1e-2 * (pose[1:] - pose[:-1]).pow(2).sum(-1).mean()
        loss.backward()
        opt.step()
        if progress and it % 25 == 0:
            progress(0.1 + 0.8 * it / steps, f"fitting SMPL ({it}/{steps})")
    with torch.no_grad():
        _, pj = _smpl_forward(body, betas, pose, transl, need_vertices=False)
        err = (pj[:, sm_idx] - target).norm(dim=-1).mean(-1)
    return {"betas": betas.detach().numpy(), "pose": pose.detach().numpy(), "transl": transl.detach().numpy(),
            "error": err.numpy(), "posed_joints": pj[:, sm_idx].numpy()}
