"""Type stubs of the CUDA module (bindings/cuda_module.cpp); built only where nvcc was found."""

from typing import Dict, List, Optional, Tuple

import numpy as np

runtime_version: int

def device_count() -> int: ...
def unavailable_reason() -> str: ...
def device_info(index: int) -> dict: ...
def fixed_points_exhaustive(
    J0: np.ndarray,
    b: np.ndarray,
    U: np.ndarray,
    V: np.ndarray,
    beta: np.ndarray,
    slopes: np.ndarray,
    intercepts: np.ndarray,
    device: int = 0,
    max_points: int = 100000,
    piece_tol: float = 1e-7,
) -> Tuple[np.ndarray, np.ndarray, int, int]:
    """Candidates ``(points [k, M] float64, pieces [k, n] uint8, n_degenerate, regions_visited)``."""
    ...

# ---- model API (cuda/api.h): the same binding as _core's (bindings/model_api.h); masks are refused ----
from ._core import generate as generate
from ._core import loss_and_grad as loss_and_grad
from ._core import mar_penalty as mar_penalty
from ._core import param_shapes as param_shapes
from ._core import rollout as rollout

# ---- the probabilistic PLRNN's log-joint (cuda/vi/log_joint.cu): _core's binding (bindings/vi_binding.h)
from ._core import vi_log_joint as vi_log_joint

# ---- the device-resident trainer (cuda/training/train_step.h): _core.Trainer's binding and methods
# (bindings/trainer_binding.h); missing-value masks must be None
from ._core import Trainer as Trainer
