"""Argument checks of the whole package: every failure names the argument and what was expected.

The one rule for the exception class:

- ``TypeError``: the argument is not of an accepted type: a float or a bool where an integer is
  needed, a string where a number is, a list where an ndarray is, an array of the wrong dtype, a
  masked array, an object of the wrong class.
- ``ValueError``: the type is accepted but the value is not: out of range, not finite, the wrong
  shape or length, not C-contiguous, an output buffer that is read-only or overlaps an input,
  sizes that disagree with each other or with the model, and the contents of a file (whatever
  their dtype: a file is a value). A name that must be one of a fixed set (``check_choice``) and a
  fixed-length tuple (``check_betas``) are checked by value: anything else is a ValueError.

Modules check their arguments with these functions rather than with their own ``isinstance``
tests, so that the same mistake raises the same class with the same wording everywhere.
"""

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
                lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite real number within [lo, hi] (open ends with lo_open / hi_open)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value}")
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise ValueError(f"{name}: must be {'>' if lo_open else '>='} {lo}, got {value}")
    if hi is not None and (value >= hi if hi_open else value > hi):
        raise ValueError(f"{name}: must be {'<' if hi_open else '<='} {hi}, got {value}")
    return value


def check_instance(name: str, value, cls, what: str):
    """``value`` itself when it is an instance of ``cls``; ``what`` names the expected type in the
    message (``"a plrnn_native.PLRNN"``)."""
    if not isinstance(value, cls):
        raise TypeError(f"{name}: expected {what}, got {type(value).__name__}")
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def check_betas(name: str, value) -> tuple:
    """Adam's two moment decay rates, each in [0, 1) (1 would divide by zero in the bias correction)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list, np.ndarray)) or len(value) != 2:
        raise ValueError(f"{name}: expected two numbers in [0, 1), got {value!r}")
    return tuple(check_float(f"{name}[{i}]", b, 0.0, 1.0, hi_open=True) for i, b in enumerate(value))


def check_choice(name: str, value, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_seed(name: str, value, generator: bool = False) -> Optional[int]:
    """None (fresh entropy) or a non-negative integer seed, returned as ``int``; ``generator``:
    the message also offers a ``numpy.random.Generator`` (for :func:`as_rng`)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        also = " or a numpy.random.Generator" if generator else ""
        raise TypeError(f"{name}: expected None, a non-negative integer seed{also}, got {value!r}")
    if value < 0:
        raise ValueError(f"{name}: a seed must be >= 0, got {value}")
    return int(value)


def as_rng(name: str, value) -> np.random.Generator:
    """A ``numpy.random.Generator`` from None (fresh entropy), a non-negative integer seed or a
    Generator (used as it is); anything else raises naming ``name``."""
    if isinstance(value, np.random.Generator):
        return value
    return np.random.default_rng(check_seed(name, value, generator=True))


def as_seed_sequence(name: str, value) -> np.random.SeedSequence:
    """A ``numpy.random.SeedSequence`` from None (fresh entropy) or a non-negative integer seed."""
    return np.random.SeedSequence(check_seed(name, value))


def as_vector(name: str, value, n: int) -> np.ndarray:
    """A new float64 ``[n]`` array from any sequence of ``n`` finite real numbers."""
    try:
        a = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected {n} real numbers, got {value!r}") from exc
    if a.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},), got {a.shape}")
    return check_finite(name, a)


def check_ndarray(name: str, arr) -> np.ndarray:
    """A plain ndarray (subclasses allowed) that is not a masked array: a mask would hide entries
    (NaN among them) from every check, and the native code reads the data under it."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(arr).__name__}")
    if isinstance(arr, np.ma.MaskedArray):
        raise TypeError(f"{name}: masked arrays are not accepted (the mask would be ignored); pass "
                        f"{name}.filled(value) or the data and an explicit mask/weights argument")
    return arr


def readonly(a: np.ndarray) -> np.ndarray:
    """``a`` itself when already read-only, else a read-only copy (the caller's array untouched):
    how the frozen containers (``data.TimeSeries``, ``tasks.SupervisedTask``) keep their arrays."""
    if a.flags.writeable:
        a = a.copy()
        a.flags.writeable = False
    return a


def check_finite(name: str, arr: np.ndarray) -> np.ndarray:
    """All entries finite (of the data itself, never through a subclass's view of it)."""
    data = np.asarray(arr)
    if data.size and not np.isfinite(data).all():
        bad = np.argwhere(~np.isfinite(data))[0]
        raise ValueError(f"{name}: contains NaN or inf (first at index {tuple(int(i) for i in bad)})")
    return arr


def check_array(name: str, arr, dtype: np.dtype, shape: Sequence[Optional[int]],
                finite: bool = True, contiguous: bool = True) -> np.ndarray:
    """An ndarray of exactly ``dtype``, C-contiguous, of ``shape`` (None: any size), all finite.

    The one rule for every array entering the API: no silent conversion (a wrong dtype or a
    non-contiguous view raises, saying how to fix it), no masked arrays, no NaN/inf unless
    ``finite=False``. ``contiguous=False`` for arrays that only NumPy code reads.
    """
    check_ndarray(name, arr)
    if arr.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {arr.dtype} "
                        f"(convert with {name}.astype(numpy.{dtype}))")
    if arr.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, arr.shape)):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name}: expected shape {want}, got {arr.shape}")
    if contiguous and not arr.flags.c_contiguous:
        raise ValueError(f"{name}: must be C-contiguous (pass numpy.ascontiguousarray({name}))")
    if finite:
        check_finite(name, arr)
    return arr


def check_out(name: str, arr, dtype: np.dtype, shape: Sequence[int], inputs=()) -> np.ndarray:
    """An output buffer: like check_array, writeable, and sharing no memory with any of
    ``inputs`` (``(name, array)`` pairs; None entries are skipped): the native code would
    overwrite an input while it reads it."""
    check_array(name, arr, dtype, shape, finite=False)
    if not arr.flags.writeable:
        raise ValueError(f"{name}: output array is read-only")
    for other_name, other in inputs:
        if other is not None and np.shares_memory(arr, other):
            raise ValueError(f"{name}: overlaps {other_name} in memory; pass a separate output buffer")
    return arr


def check_mask(name: str, mask, shape: Sequence[int], dtype: np.dtype) -> np.ndarray:
    """A boolean ndarray of ``shape`` (True: observed, False: missing), returned as a C-contiguous
    0/1 array of ``dtype`` for the native core."""
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{name}: expected a boolean numpy.ndarray, got {type(mask).__name__}")
    check_ndarray(name, mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"{name}: expected dtype bool (True: observed, False: missing), got {mask.dtype}")
    if mask.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {mask.shape}")
    return np.ascontiguousarray(mask, dtype=dtype)
