"""Type stubs of the CUDA module (bindings/cuda_module.cpp); built only where nvcc was found."""

from typing import Tuple

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
