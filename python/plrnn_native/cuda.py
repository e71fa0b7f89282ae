"""CUDA availability. The CUDA module is built when nvcc is found at install time (``PLRNN_CUDA=OFF``
turns it off); it imports on machines without a GPU and then reports why CUDA is unavailable.

For tests, the environment variable ``PLRNN_CUDA_EMULATOR`` may name a build directory of the CPU
emulator (``cuda/emulation/build.sh``, docs/gpu.md): its ``_cuda`` module is then loaded instead of the
installed one, ``device="cuda"`` runs the kernels on the CPU and :func:`devices` says "emulated".
Nothing else ever loads an emulated module.

Device strings (``"cpu"``, ``"cuda:N"``, ``"auto"``) are resolved in :mod:`plrnn_native._backend`.
"""

from __future__ import annotations

import glob
import importlib.machinery
import importlib.util
import os
from typing import List

EMULATOR_ENV = "PLRNN_CUDA_EMULATOR"


def _load_emulated(build_dir: str):
    """The emulated ``_cuda`` module of ``build_dir``; RuntimeError when there is none."""
    found = sorted(
        path
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        for path in glob.glob(os.path.join(glob.escape(build_dir), "_cuda" + suffix))
    )
    if not found:
        raise RuntimeError(
            f"{EMULATOR_ENV}={build_dir!r}: no _cuda module for this Python there "
            f"(build it with cuda/emulation/build.sh {build_dir})"
        )
    spec = importlib.util.spec_from_file_location(f"{__package__}._cuda", found[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not getattr(module, "emulated", False):
        raise RuntimeError(f"{EMULATOR_ENV}={build_dir!r}: {found[0]} is not an emulated CUDA module")
    return module


if os.environ.get(EMULATOR_ENV):
    _cuda = _load_emulated(os.environ[EMULATOR_ENV])
    _import_error = ""
else:
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


def is_emulated() -> bool:
    """Whether the CUDA module in use is the CPU emulator's (``PLRNN_CUDA_EMULATOR``): kernels run on
    the CPU, for tests; nothing about speed or real-hardware behaviour follows from it."""
    return _cuda is not None and bool(getattr(_cuda, "emulated", False))


def unavailable_reason() -> str:
    """Why CUDA is unavailable ('' when it is available)."""
    if _cuda is None:
        return _import_error
    return _cuda.unavailable_reason()


def devices() -> List[dict]:
    """Name, compute capability, memory, multiprocessor count and ``emulated`` (True for the CPU
    emulator's device) of each device."""
    return [_cuda.device_info(i) for i in range(device_count())]
