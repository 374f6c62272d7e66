"""motionviz: deep generative models of skeleton-based human motion for physical rehabilitation."""

from .core.errors import CheckpointError, DataNotFound, UserError
from .core.motion import Motion, MotionError, MotionLabels
from .core.skeleton import COMMON, Skeleton, get_skeleton

__version__ = "0.1.0"

__all__ = ["Motion", "MotionLabels", "MotionError", "Skeleton", "COMMON", "get_skeleton", "UserError",
           "DataNotFound", "CheckpointError", "__version__"]
