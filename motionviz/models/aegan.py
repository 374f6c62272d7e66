"""AE-GAN: an autoencoder whose decoder is also the generator of a Wasserstein GAN (WGAN-GP).

After Mourot's thesis (EPFL / InterDigital, 2019), "Deep learning for skeleton-based human motion
inpainting".  A motion window of ``F`` frames is laid out as an image over (time x body hierarchy):

* every left/right joint pair of the skeleton becomes one *row* of the body axis, the left joint's
  coordinates in the first half of the channels and the right joint's in the second half;
* every central joint (its own mirror) is one row as well, *duplicated* into both halves; the
  generator's two predictions of a central joint are averaged on the way back to joints;
* rows are ordered along the folded skeleton tree (longest chain first, e.g. wrist - elbow -
  shoulder - neck - spine - pelvis - hip - knee - ankle for the common skeleton) so that a body-axis
  convolution mixes neighbouring body parts.  The layout is derived from ``Skeleton.lr_pairs``,
  ``central`` and ``parents`` only, so it works for any left/right-symmetric skeleton, 2D or 3D.

Networks (DCGAN-like, convolutions over (T, H)): encoder E (corrupted window + observed mask ->
latent z), generator G (z -> window; also the decoder), critic D (window + per-joint velocities ->
score).  Training (``train_step``):

* critic: Wasserstein loss ``D(fake) - D(real)`` + ``lambda_gp`` x gradient penalty (lambda_gp = 10);
  fakes are G(z) for z ~ N(0, I) and G(E(x~)) reconstructions;
* autoencoder / generator: ``lambda_p * MPJPE + lambda_s * MPJSE + lambda_z * MSE(z, E(G(z)))``
  plus the adversarial terms ``-lambda_adv * D(G(E(x~)))`` (the "mixed" loss) and ``-lambda_adv * D(G(z))``.
  x~ is a *corrupted* copy of the clean window (missing joints, missing frames, hidden limbs, joints
  never observed as in up-sampling a smaller skeleton, Gaussian noise); the losses use the clean target.

Units: windows are canonicalised (root-centred, turned to face +Z in 3D) and divided by
``coord_scale`` metres, so MPJPE/MPJSE in the losses are in "model units" (1 unit = 0.5 m by default).
The thesis used 200 / 100 / 2 for its pixel-normalised 2D data; with our metre data divided by 0.5 a
1 cm error is 0.02 units, so we use lambda_p = 500, lambda_s = 500, lambda_z = 2 to keep the
reconstruction terms dominant over the critic score (whose input gradient the penalty keeps near 1).

A 2D variant (``Config.variants`` containing 2) is trained on random camera projections of the same
3D windows; both variants live in one checkpoint under the tensor prefixes ``d3.`` and ``d2.``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..core.errors import UserError
from ..core.representation_torch import apply_transform, canonical_transform
from ..core.skeleton import JOINT_SETS, Skeleton, get_skeleton, set_mask

__all__ = [
    "Config", "BodyGrid", "AEGANNet", "AEGAN", "Corruptor",
    "project_random_cameras", "train_step",
    "build_model", "KIND", "describe",
    "mpjpe", "mpjse", "velocities",
]

KIND = "aegan"


# ==============================================================================================
# Configuration
# ==============================================================================================
@dataclass(frozen=True)
class Config:
    skeleton: str = "common"
    # training data (corpus datasets, training split): the rehabilitation recordings, whose test split
    # holds out whole subjects (UI-PRMD s09-s10, KIMORE test patients, IRDS 216)
    datasets: tuple[str, ...] = ("ui-prmd", "kimore", "irds")
    variants: tuple[int, ...] = (3,)          # coordinate dimensions trained: (3,), (2,) or (3, 2)
    frames: int = 32                          # window length F (divisible by 2 ** len(channels))
    latent: int = 96                          # size of z
    channels: tuple[int, ...] = (24, 48, 96)   # conv widths (encoder / critic; reversed in G)
    kernel_time: int = 4
    kernel_body: int = 3
    coord_scale: float = 0.5                  # metres per model unit
    # losses
    lambda_gp: float = 10.0
    lambda_p: float = 500.0                   # MPJPE (model units)
    lambda_s: float = 500.0                   # MPJSE: mean per-joint speed (velocity) error
    lambda_z: float = 2.0                     # latent cycle MSE(z, E(G(z)))
    lambda_adv: float = 1.0                   # -D(G(E(x))) and -D(G(z))
    n_critic: int = 1                         # critic updates per generator update
    lr: float = 1e-3
    lr_critic: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.9
    batch_size: int = 32
    # corruption used in training (probabilities per window and ranges)
    p_clean: float = 0.1
    p_joints: float = 0.6                     # missing joints at rate U(0, max_joint_rate): scattered
    p_segments: float = 0.5                   # ... or, for this fraction, in occlusion-like runs
    max_joint_rate: float = 0.6
    p_frames: float = 0.3                     # missing frames at rate U(0, max_frame_rate)
    max_frame_rate: float = 0.5
    p_subtree: float = 0.2                    # a limb (a joint and its descendants) hidden
    p_never: float = 0.1                      # joints never observed (up-sampling a smaller skeleton)
    p_noise: float = 0.4                      # Gaussian noise sigma U(0, max_noise) metres
    # joint up-sampling (``python -m motionviz train aegan-upsample``): this fraction of the windows
    # observes only one of ``joint_sets`` (names of :data:`motionviz.core.skeleton.JOINT_SETS`, e.g. the COCO-17
    # limb keypoints without pelvis/spine/neck, or wrists + ankles + neck), the sparse joints themselves
    # missing at a rate U(0, set_dropout) as a detector's misses; the other windows get the corruption above
    p_sets: float = 0.0
    joint_sets: tuple[str, ...] = ()
    set_dropout: float = 0.2
    max_noise: float = 0.05
    scale_jitter: float = 0.1                 # training data scaled by U(1 - j, 1 + j)
    # 2D camera model used to make the 2D training data
    cam_distance: tuple[float, float] = (2.5, 6.0)
    cam_elevation_deg: tuple[float, float] = (-15.0, 30.0)

    def validate(self) -> "Config":
        if self.frames % (2 ** len(self.channels)) != 0:
            raise ValueError(f"frames={self.frames} must be divisible by {2 ** len(self.channels)}")
        if not self.variants or any(d not in (2, 3) for d in self.variants):
            raise ValueError(f"variants must be a non-empty subset of (3, 2), got {self.variants}")
        get_skeleton(self.skeleton)
        if not 0.0 <= self.p_sets <= 1.0 or not 0.0 <= self.set_dropout < 1.0:
            raise ValueError("p_sets must be in [0, 1] and set_dropout in [0, 1)")
        if self.p_sets > 0 and not self.joint_sets:
            raise ValueError("p_sets > 0 needs joint_sets (names of motionviz.core.skeleton.JOINT_SETS)")
        if self.joint_sets:
            unknown = [n for n in self.joint_sets if n not in JOINT_SETS]
            if unknown:
                raise ValueError(f"unknown joint sets {unknown}; choose from {', '.join(JOINT_SETS)}")
        return self


# ==============================================================================================
# The (time x body hierarchy) grid
# ==============================================================================================
class BodyGrid:
    """Maps joints (B, T, J, D) <-> grid (B, 2D, T, H) with left/right pairs in channels.

    ``rows[h] = (left_joint, right_joint)``; a central joint appears as ``(j, j)``.
    """

    def __init__(self, skeleton: Skeleton) -> None:
        self.skeleton = skeleton
        pairs = list(skeleton.lr_pairs)
        central = list(skeleton.central)
        if len(pairs) == 0:
            raise ValueError(f"skeleton {skeleton.name!r} has no left/right pairs")
        # Fold the tree: one node per row (a central joint or a left/right pair).
        node_of: dict[int, int] = {}
        rows: list[tuple[int, int]] = []
        for j in central:
            node_of[j] = len(rows)
            rows.append((j, j))
        for left, right in pairs:
            node_of[left] = node_of[right] = len(rows)
            rows.append((left, right))
        n = len(rows)
        adj: list[set[int]] = [set() for _ in range(n)]
        for parent, child in skeleton.bones:
            a, b = node_of[parent], node_of[child]
            if a != b:
                adj[a].add(b)
                adj[b].add(a)
        order = self._layout(adj)
        self.rows: tuple[tuple[int, int], ...] = tuple(rows[i] for i in order)
        self.num_rows = n
        self.left = torch.tensor([r[0] for r in self.rows], dtype=torch.long)   # (H,)
        self.right = torch.tensor([r[1] for r in self.rows], dtype=torch.long)  # (H,)
        # (J, 2H) averaging matrix: joint j = mean of the grid cells that hold it.
        J = len(skeleton)
        back = torch.zeros(J, 2 * n)
        for h, (left, right) in enumerate(self.rows):
            back[left, h] += 1.0
            back[right, n + h] += 1.0
        counts = back.sum(1, keepdim=True)
        if (counts == 0).any():
            missing = [skeleton.joints[j] for j in range(J) if counts[j, 0] == 0]
            raise ValueError(f"joints {missing} are neither central nor in a left/right pair")
        self.back = back / counts

    @staticmethod
    def _layout(adj: list[set[int]]) -> list[int]:
        """Order the folded tree's nodes: the longest chain first, side branches next to where they
        attach (a DFS from one end of the tree's diameter that walks the diameter last)."""
        n = len(adj)

        def bfs(start: int) -> tuple[list[int], list[int]]:
            dist = [-1] * n
            prev = [-1] * n
            dist[start] = 0
            queue = [start]
            for u in queue:
                for v in sorted(adj[u]):
                    if dist[v] < 0:
                        dist[v] = dist[u] + 1
                        prev[v] = u
                        queue.append(v)
            return dist, prev

        d0, _ = bfs(0)
        a = max(range(n), key=lambda i: (d0[i], -i))
        da, prev = bfs(a)
        b = max(range(n), key=lambda i: (da[i], -i))
        path = []
        u = b
        while u != -1:
            path.append(u)
            u = prev[u]
        on_path = set(path)
        order: list[int] = []
        seen: set[int] = set()

        def visit(u: int) -> None:
            seen.add(u)
            order.append(u)
            kids = sorted(v for v in adj[u] if v not in seen)
            for v in [k for k in kids if k not in on_path] + [k for k in kids if k in on_path]:
                if v not in seen:
                    visit(v)

        visit(a)
        for u in range(n):  # disconnected pieces (should not happen for a tree)
            if u not in seen:
                visit(u)
        return order

    def to_grid(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, J, C) -> (B, 2C, T, H): channels [left C | right C]."""
        left = x[:, :, self.left]    # (B, T, H, C)
        right = x[:, :, self.right]  # (B, T, H, C)
        g = torch.cat([left, right], dim=-1)  # (B, T, H, 2C)
        return g.permute(0, 3, 1, 2).contiguous()

    def from_grid(self, g: torch.Tensor) -> torch.Tensor:
        """g (B, 2C, T, H) -> joints (B, T, J, C); duplicated central joints are averaged."""
        B, C2, T, H = g.shape
        C = C2 // 2
        cells = g.view(B, 2, C, T, H).permute(0, 3, 1, 4, 2).reshape(B, T, 2 * H, C)  # (B, T, 2H, C)
        return torch.einsum("js,btsc->btjc", self.back.to(g), cells)


def velocities(x: torch.Tensor) -> torch.Tensor:
    """(B, T, J, D) -> (B, T, J, D) first differences, zero at frame 0."""
    v = x[:, 1:] - x[:, :-1]
    return torch.cat([torch.zeros_like(x[:, :1]), v], dim=1)


def mpjpe(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean per-joint position error; pred/target (B, T, J, D), weight (B, T, J) -> scalar."""
    err = torch.linalg.vector_norm(pred - target, dim=-1)
    if weight is None:
        return err.mean()
    return (err * weight).sum() / weight.sum().clamp_min(1)


def mpjse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean per-joint speed (velocity) error between consecutive frames; weight (B, T, J) masks
    positions (a velocity counts when both of its frames are observed)."""
    err = torch.linalg.vector_norm((pred[:, 1:] - pred[:, :-1]) - (target[:, 1:] - target[:, :-1]), dim=-1)
    if weight is None:
        return err.mean()
    w = weight[:, 1:] * weight[:, :-1]
    return (err * w).sum() / w.sum().clamp_min(1)


# ==============================================================================================
# Networks
# ==============================================================================================
def _strided_convs(cfg: Config, cin: int, rows: int) -> tuple[nn.Sequential, int]:
    """The encoder's and the critic's convolutions: one (kernel_time x kernel_body) convolution per entry of
    ``cfg.channels``, halving time, each followed by LeakyReLU(0.2).  -> (layers, flattened output size)."""
    layers: list[nn.Module] = []
    kt, kb = cfg.kernel_time, cfg.kernel_body
    for c in cfg.channels:
        layers += [nn.Conv2d(cin, c, (kt, kb), stride=(2, 1), padding=(kt // 2 - 1, kb // 2)),
                   nn.LeakyReLU(0.2)]
        cin = c
    t_out = cfg.frames // 2 ** len(cfg.channels)
    return nn.Sequential(*layers), cin * t_out * rows


class Encoder(nn.Module):
    """Grid (B, 2D + 2, T, H) [coordinates + observed masks] -> z (B, latent)."""

    def __init__(self, cfg: Config, dims: int, rows: int) -> None:
        super().__init__()
        self.conv, size = _strided_convs(cfg, 2 * dims + 2, rows)
        self.fc = nn.Linear(size, cfg.latent)

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(g).flatten(1))


class GeneratorNet(nn.Module):
    """z (B, latent) -> grid (B, 2D, T, H) in model units.  Also the decoder of the autoencoder."""

    def __init__(self, cfg: Config, dims: int, rows: int) -> None:
        super().__init__()
        chans = list(reversed(cfg.channels))
        self.t0 = cfg.frames // 2 ** len(cfg.channels)
        self.rows = rows
        self.c0 = chans[0]
        self.fc = nn.Linear(cfg.latent, chans[0] * self.t0 * rows)
        kt, kb = cfg.kernel_time, cfg.kernel_body
        layers: list[nn.Module] = []
        for i, c in enumerate(chans):
            cout = chans[i + 1] if i + 1 < len(chans) else chans[-1]
            layers += [nn.LeakyReLU(0.2),
                       nn.ConvTranspose2d(c, cout, (kt, kb), stride=(2, 1), padding=(kt // 2 - 1, kb // 2))]
        layers += [nn.LeakyReLU(0.2), nn.Conv2d(chans[-1], 2 * dims, (3, kb), padding=(1, kb // 2))]
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], self.c0, self.t0, self.rows)
        return self.deconv(h)


class Critic(nn.Module):
    """Grid of coordinates + per-joint velocities (B, 4D, T, H) -> score (B,)."""

    def __init__(self, cfg: Config, dims: int, rows: int) -> None:
        super().__init__()
        self.conv, size = _strided_convs(cfg, 4 * dims, rows)
        self.fc = nn.Linear(size, 1)

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(g).flatten(1)).squeeze(1)


class AEGANNet(nn.Module):
    """One AE-GAN for one coordinate dimension.  Joint-space API in model units (canonical / scale).

    Buffers: ``critic_ref`` (2,) mean and std of the critic score on real windows (see
    :func:`calibrate_critic`); ``bone_ref`` (Bones,) mean bone length of the training windows in metres (projected
    lengths for 2D), used to estimate the global scale of user input.
    """

    def __init__(self, cfg: Config, dims: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.dims = dims
        self.skeleton = get_skeleton(cfg.skeleton)
        self.grid = BodyGrid(self.skeleton)
        H = self.grid.num_rows
        self.encoder = Encoder(cfg, dims, H)
        self.generator = GeneratorNet(cfg, dims, H)
        self.critic = Critic(cfg, dims, H)
        self.register_buffer("bone_ref", torch.ones(len(self.skeleton.bones)))
        # [mean, std] of the critic's score on real (clean, canonical) training windows; NaN until
        # calibrated (``calibrate_critic``).  Inpainting caps its critic reward at the mean.
        self.register_buffer("critic_ref", torch.full((2,), float("nan")))

    # joints in model units: (B, T, J, D)
    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, J, D) model units (values at unobserved joints are ignored), mask (B, T, J)."""
        m = mask.to(x.dtype)
        xz = torch.where(mask[..., None], x, torch.zeros_like(x))
        g = self.grid.to_grid(torch.cat([xz, m[..., None]], dim=-1))  # (B, 2(D+1), T, H)
        D = self.dims
        coords = torch.cat([g[:, :D], g[:, D + 1:2 * D + 1]], dim=1)
        masks = torch.cat([g[:, D:D + 1], g[:, 2 * D + 1:]], dim=1)
        return self.encoder(torch.cat([coords, masks], dim=1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, latent) -> joints (B, T, J, D) model units."""
        return self.grid.from_grid(self.generator(z))

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Critic score of joints (B, T, J, D) model units -> (B,)."""
        g = self.grid.to_grid(torch.cat([x, velocities(x)], dim=-1))  # (B, 4D, T, H)
        D = self.dims
        g = torch.cat([g[:, :D], g[:, 2 * D:3 * D], g[:, D:2 * D], g[:, 3 * D:]], dim=1)
        return self.critic(g)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.cfg.latent, generator=generator)


class AEGAN(nn.Module):
    """The trainable model: one :class:`AEGANNet` per variant (``d3`` and/or ``d2``)."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg.validate()
        self.nets = nn.ModuleDict({f"d{d}": AEGANNet(cfg, d) for d in cfg.variants})
        self.skeleton = get_skeleton(cfg.skeleton)
        self.corruptor = Corruptor(cfg, self.skeleton)
        self.rng = torch.Generator().manual_seed(0)

    def train_step(self, batch: torch.Tensor | dict[str, Any], optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        """The :mod:`motionviz.training.loop` hook: one critic + one generator/encoder update (see :func:`train_step`)."""
        return train_step(self, batch, optimizers, self.rng)

    def net(self, dims: int) -> AEGANNet:
        key = f"d{dims}"
        if key not in self.nets:
            raise UserError(f"this AE-GAN checkpoint has no {dims}D model (it has "
                            f"{', '.join(k[1:] + 'D' for k in self.nets)})")
        return self.nets[key]


def build_model(cfg: Config | None = None) -> AEGAN:
    return AEGAN(cfg or Config())


# ==============================================================================================
# Corruption (training) and 2D projection
# ==============================================================================================
class Corruptor:
    """Random observed-masks and noise for corruption training, from an explicit torch.Generator."""

    def __init__(self, cfg: Config, skeleton: Skeleton) -> None:
        self.cfg = cfg
        self.skeleton = skeleton
        J = len(skeleton)
        # subtree[j] = joint j and all its descendants (a limb to hide); the root is excluded.
        sub = torch.zeros(J, J, dtype=torch.bool)
        for j in range(J):
            stack = [j]
            while stack:
                u = stack.pop()
                sub[j, u] = True
                stack.extend(skeleton.children[u])
        self.subtrees = sub[[j for j in range(J) if j != skeleton.root]]
        # (S, J) observed joints of each up-sampling joint set (cfg.joint_sets)
        self.sets = torch.zeros(len(cfg.joint_sets), J, dtype=torch.bool)
        if cfg.joint_sets:
            for i, name in enumerate(cfg.joint_sets):
                self.sets[i] = torch.from_numpy(set_mask(name, skeleton))

    def mask(self, B: int, T: int, g: torch.Generator) -> torch.Tensor:
        """-> observed mask (B, T, J) bool (every window keeps at least one observed joint)."""
        cfg = self.cfg
        J = len(self.skeleton)
        u = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
        m = torch.ones(B, T, J, dtype=torch.bool)
        clean = u(B) < cfg.p_clean
        # random joints
        rate = u(B) * cfg.max_joint_rate * (u(B) < cfg.p_joints)
        runs = u(B) < cfg.p_segments
        scattered_j = u(B, T, J) < rate[:, None, None]
        # runs: each joint loses, with probability min(1, 2 rate), one block of U(0, T) frames
        hit = u(B, J) < (2 * rate).clamp(max=1)[:, None]
        run_len = (u(B, J) * T).round().long()
        run_start = (u(B, J) * (T - run_len + 1).float()).floor().long()
        tt = torch.arange(T)[None, :, None]
        run_drop = hit[:, None] & (tt >= run_start[:, None]) & (tt < (run_start + run_len)[:, None])
        m &= ~torch.where(runs[:, None, None], run_drop, scattered_j)
        # random frames: half the windows lose scattered frames, half a contiguous block
        frate = u(B) * cfg.max_frame_rate * (u(B) < cfg.p_frames)
        scattered = u(B) < 0.5
        drop_sc = u(B, T) < frate[:, None]
        length = (frate * T).round().long()
        start = (u(B) * (T - length + 1).float()).floor().long()
        t = torch.arange(T)[None]
        drop_bl = (t >= start[:, None]) & (t < (start + length)[:, None])
        drop_f = torch.where(scattered[:, None], drop_sc, drop_bl)
        m &= ~drop_f[:, :, None]
        # a hidden limb (for the whole window or a block)
        k = torch.randint(0, self.subtrees.shape[0], (B,), generator=g)
        limb = self.subtrees[k] & (u(B) < cfg.p_subtree)[:, None]  # (B, J)
        m &= ~limb[:, None, :]
        # joints never observed (up-sampling from a smaller skeleton)
        never = (u(B, J) < 0.3) & (u(B) < cfg.p_never)[:, None]
        m &= ~never[:, None, :]
        m |= clean[:, None, None]
        if cfg.p_sets > 0:
            # up-sampling windows: only one joint set observed, each of its joints missing now and then
            use = u(B) < cfg.p_sets
            which = torch.randint(0, self.sets.shape[0], (B,), generator=g)
            miss = u(B, T, J) < (u(B) * cfg.set_dropout)[:, None, None]
            m = torch.where(use[:, None, None], self.sets[which][:, None, :] & ~miss, m)
        empty = ~m.flatten(1).any(1)
        if empty.any():  # keep the root of the first frame
            m[empty, 0, self.skeleton.root] = True
        return m

    def noise(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Gaussian noise with a per-window sigma in metres (x in metres)."""
        B = x.shape[0]
        sigma = torch.rand(B, generator=g) * self.cfg.max_noise * (torch.rand(B, generator=g) < self.cfg.p_noise)
        return x + torch.randn(x.shape, generator=g) * sigma[:, None, None, None]


def project_random_cameras(x: torch.Tensor, cfg: Config, g: torch.Generator) -> torch.Tensor:
    """3D windows (B, T, J, 3) metres (Y up) -> 2D (B, T, J, 2) seen by random perspective cameras
    (any yaw, elevation and distance from ``cfg``), rescaled by distance so 2D units are ~metres at the
    subject's depth; image y points up."""
    B = x.shape[0]
    yaw = torch.rand(B, generator=g) * 2 * math.pi
    lo, hi = cfg.cam_elevation_deg
    el = torch.deg2rad(lo + (hi - lo) * torch.rand(B, generator=g))
    dlo, dhi = cfg.cam_distance
    dist = dlo + (dhi - dlo) * torch.rand(B, generator=g)
    centre = x.mean(dim=(1, 2), keepdim=True)
    p = x - centre
    cy, sy = torch.cos(yaw)[:, None, None], torch.sin(yaw)[:, None, None]
    X = p[..., 0] * cy + p[..., 2] * sy
    Z = -p[..., 0] * sy + p[..., 2] * cy
    Y = p[..., 1]
    ce, se = torch.cos(el)[:, None, None], torch.sin(el)[:, None, None]
    Y2 = Y * ce - Z * se       # camera pitched down by `el` (looking at the subject from above)
    Z2 = Y * se + Z * ce
    depth = dist[:, None, None] - Z2  # the camera looks along -Z towards the subject (facing +Z at yaw 0)
    u = X * dist[:, None, None] / depth.clamp_min(0.5)
    v = Y2 * dist[:, None, None] / depth.clamp_min(0.5)
    # The camera's right is +X: a subject facing it shows its left side on the image's right, as in
    # a photo (image x to the right, image y up).
    return torch.stack([u, v], dim=-1)


def gradient_penalty(net: AEGANNet, real: torch.Tensor, fake: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """WGAN-GP: E[(||grad_x D(x_hat)|| - 1)^2] on random interpolates of real and fake windows."""
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=g, dtype=real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    score = net.score(x_hat)
    (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def prepare_batch(model: AEGAN, clean_m: torch.Tensor, dims: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Clean 3D windows (B, F, J, 3) metres -> canonical model-unit tensors for one variant:
    ``target`` (clean), ``inp`` (corrupted), ``mask`` (B, F, J)."""
    cfg = model.cfg
    x = clean_m if dims == 3 else project_random_cameras(clean_m, cfg, g)
    B, T, J, _ = x.shape
    mask = model.corruptor.mask(B, T, g)
    noisy = model.corruptor.noise(x, g)
    centre, rot = canonical_transform(noisy, mask, model.skeleton)
    s = cfg.coord_scale
    return {"target": apply_transform(x, centre, rot) / s, "inp": apply_transform(noisy, centre, rot) / s,
            "mask": mask}


def _variant_losses(model: AEGAN, net: AEGANNet, b: dict[str, torch.Tensor], opt_d: torch.optim.Optimizer | None,
                    g: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    cfg = model.cfg
    target, inp, mask = b["target"], b["inp"], b["mask"]
    B = target.shape[0]
    logs: dict[str, float] = {}
    # ---- critic ----
    for _ in range(max(1, cfg.n_critic)):
        with torch.no_grad():
            z = net.sample_latent(B // 2, g)
            fake = torch.cat([net.decode(z), net.decode(net.encode(inp[B // 2:], mask[B // 2:]))])
        d_real = net.score(target)
        d_fake = net.score(fake)
        gp = gradient_penalty(net, target, fake, g)
        loss_d = d_fake.mean() - d_real.mean() + cfg.lambda_gp * gp
        if opt_d is not None:
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        logs.update(critic=float(loss_d.detach()), gp=float(gp.detach()),
                    wasserstein=float((d_real.mean() - d_fake.mean()).detach()))
    # ---- autoencoder + generator ----
    for p in net.critic.parameters():
        p.requires_grad_(False)
    z_enc = net.encode(inp, mask)
    rec = net.decode(z_enc)
    l_p = mpjpe(rec, target)
    l_s = mpjse(rec, target)
    z = net.sample_latent(B, g)
    gen = net.decode(z)
    full = torch.ones_like(mask)
    l_z = F.mse_loss(net.encode(gen, full), z)
    adv_mixed = -net.score(rec).mean()
    adv_gen = -net.score(gen).mean()
    loss = (cfg.lambda_p * l_p + cfg.lambda_s * l_s + cfg.lambda_z * l_z
            + cfg.lambda_adv * (adv_mixed + adv_gen) / 2)
    for p in net.critic.parameters():
        p.requires_grad_(True)
    s = cfg.coord_scale
    logs.update(loss=float(loss.detach()), mpjpe_m=float(l_p.detach()) * s, mpjse_m=float(l_s.detach()) * s,
                latent=float(l_z.detach()), adv_mixed=float(adv_mixed.detach()), adv_gen=float(adv_gen.detach()))
    return loss, logs


def train_step(model: AEGAN, batch: torch.Tensor | dict[str, Any], optimizers: dict[str, torch.optim.Optimizer],
               generator: torch.Generator | None = None) -> dict[str, float]:
    """One critic + one autoencoder/generator update for every variant.

    ``batch``: clean windows (B, F, J, 3) in metres (canonical data from ``load_corpus``), or a dict
    with key ``joints``.  Randomness (corruption, cameras, latents) from ``generator`` (else the
    model's own seeded ``model.rng``).  Returns losses (``<variant>/<name>``) as floats.
    """
    g = generator or model.rng
    x = batch["joints"] if isinstance(batch, dict) else batch
    model.train()
    logs: dict[str, float] = {}
    total = 0.0
    optimizers["g"].zero_grad(set_to_none=True)
    for key, net in model.nets.items():
        dims = int(key[1:])
        b = prepare_batch(model, x, dims, g)
        loss, lg = _variant_losses(model, net, b, optimizers.get("d"), g)
        loss.backward()
        total += float(loss.detach())
        logs.update({f"{key}/{k}": v for k, v in lg.items()})
    optimizers["g"].step()
    logs["loss"] = total
    return logs


def describe(model: AEGAN) -> dict[str, Any]:
    """Architecture summary: parameter counts per variant and network."""
    out: dict[str, Any] = {"config": dataclasses.asdict(model.cfg)}
    for key, net in model.nets.items():
        out[key] = {name: sum(p.numel() for p in getattr(net, name).parameters())
                    for name in ("encoder", "generator", "critic")}
        out[key]["rows"] = [f"{model.skeleton.joints[a]}|{model.skeleton.joints[b]}" for a, b in net.grid.rows]
    out["parameters"] = sum(p.numel() for p in model.parameters())
    return out
