"""Loss terms shared by the generative models (no model code here).

Shapes: B batch, T frames, F standardised features per frame (pose numbers, then the repetition's
log-duration as the last feature).
"""

from __future__ import annotations

import torch

__all__ = ["motion_loss"]


def motion_loss(pred: torch.Tensor, x0: torch.Tensor, valid: torch.Tensor, eps: float) -> torch.Tensor:
    """Relative motion error: per repetition, the squared error of the pose features' deviation from
    their own mean over the frames, divided by the true deviation's energy (+ ``eps``), averaged over the
    batch.  pred, x0 (B, T, F) standardised (the last feature, log-duration, is left out), valid (B, T).

    The x0 error alone lets a small movement (UI-PRMD's shoulder rotation moves the wrist 0.3-0.4 m,
    ~0.3 standardised units) drown in the model's overall error: predicting a frozen mean pose costs such a
    repetition almost nothing, and the trained model did exactly that.  Relative to its own motion, a
    frozen prediction of any exercise costs 1, large or small."""
    m = valid.to(pred.dtype)[..., None]                                        # (B, T, 1)
    n = m.sum(1, keepdim=True).clamp(min=1)
    p, g = pred[..., :-1], x0[..., :-1]
    dev_p = p - (p * m).sum(1, keepdim=True) / n                               # (B, T, 3J)
    dev_g = g - (g * m).sum(1, keepdim=True) / n
    cells = n[:, 0, 0] * p.shape[-1]                                            # (B,)
    err = (((dev_p - dev_g) ** 2) * m).sum((1, 2)) / cells
    energy = ((dev_g ** 2) * m).sum((1, 2)) / cells
    return (err / (energy + eps)).mean()
