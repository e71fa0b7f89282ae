"""CUDA availability. The CUDA module is built when nvcc is found at install time (``PLRNN_CUDA=OFF``
turns it off); it imports on machines without a GPU and then reports why CUDA is unavailable."""

from __future__ import annotations

from typing import List

try:
    from . import _cuda
except ImportError as exc:  # built without CUDA
    _cuda = None
    _import_error = f"plrnn_native was built without its CUDA module ({exc})"
else:
    _import_error = ""


def is_built() -> bool:
    """Whether the CUDA module was compiled into this installation."""
    return _cuda is not None


def device_count() -> int:
    """Number of usable CUDA devices (0 without a driver or GPU)."""
    return _cuda.device_count() if _cuda is not None else 0


def is_available() -> bool:
    return device_count() > 0


def unavailable_reason() -> str:
    """Why CUDA is unavailable ('' when it is available)."""
    if _cuda is None:
        return _import_error
    return _cuda.unavailable_reason()


def devices() -> List[dict]:
    """Name, compute capability, memory and multiprocessor count of each device."""
    return [_cuda.device_info(i) for i in range(device_count())]
