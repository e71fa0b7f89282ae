"""Argument checks of the public API: every failure names the argument and what was expected."""

from __future__ import annotations

import numbers
from typing import Optional, Sequence

import numpy as np

DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


def as_dtype(dtype) -> np.dtype:
    """The model dtype from ``"float32"``/``"float64"`` or a NumPy dtype; anything else raises."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {dtype!r}") from exc
    if dt not in DTYPES.values():
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {dt}")
    return dt


def check_int(name: str, value, minimum: Optional[int] = None, maximum: Optional[int] = None) -> int:
    """An integer (not a bool, not a float) within [minimum, maximum]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: must be <= {maximum}, got {value}")
    return value


def check_float(name: str, value, lo: Optional[float] = None, hi: Optional[float] = None,
                lo_open: bool = False) -> float:
    """A finite real number within [lo, hi] (or (lo, hi] with lo_open)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value}")
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise ValueError(f"{name}: must be {'>' if lo_open else '>='} {lo}, got {value}")
    if hi is not None and value > hi:
        raise ValueError(f"{name}: must be <= {hi}, got {value}")
    return value


def check_choice(name: str, value, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_array(name: str, arr, dtype: np.dtype, shape: Sequence[Optional[int]],
                finite: bool = True) -> np.ndarray:
    """An ndarray of exactly ``dtype``, C-contiguous, of ``shape`` (None: any size), all finite.

    No silent conversion: a wrong dtype or a non-contiguous view raises, saying how to fix it.
    """
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(arr).__name__}")
    if arr.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {arr.dtype} "
                        f"(convert with {name}.astype(numpy.{dtype}))")
    if arr.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, arr.shape)):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name}: expected shape {want}, got {arr.shape}")
    if not arr.flags.c_contiguous:
        raise ValueError(f"{name}: must be C-contiguous (pass numpy.ascontiguousarray({name}))")
    if finite and arr.size and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name}: contains NaN or inf (first at index {tuple(int(i) for i in bad)})")
    return arr


def check_out(name: str, arr, dtype: np.dtype, shape: Sequence[int]) -> np.ndarray:
    """An output buffer: like check_array, and writeable."""
    check_array(name, arr, dtype, shape, finite=False)
    if not arr.flags.writeable:
        raise ValueError(f"{name}: output array is read-only")
    return arr


def check_mask(name: str, mask, shape: Sequence[int], dtype: np.dtype) -> np.ndarray:
    """A boolean ndarray of ``shape`` (True: observed, False: missing), returned as a C-contiguous
    0/1 array of ``dtype`` for the native core."""
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{name}: expected a boolean numpy.ndarray, got {type(mask).__name__}")
    if mask.dtype != np.bool_:
        raise TypeError(f"{name}: expected dtype bool (True: observed, False: missing), got {mask.dtype}")
    if mask.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {mask.shape}")
    return np.ascontiguousarray(mask, dtype=dtype)
