"""Argument checks shared by the metrics (on top of :mod:`plrnn_native._validation`)."""

from __future__ import annotations

from typing import Tuple, Union

import numpy as np

from .._validation import check_finite, check_ndarray

SeedLike = Union[None, int, np.random.Generator]

INITS = ("initial_state", "forced")  # how a start state is inferred from the data
CHUNK_ELEMENTS = 4_000_000  # size (in float64 elements) of the temporaries of chunked computations


def real_array(name: str, x, ndims: Tuple[int, ...] = (2,)) -> np.ndarray:
    """A finite, real, non-empty array with ``ndim`` in ``ndims``, returned as float64."""
    check_ndarray(name, x)
    if x.dtype == np.bool_ or not (
        np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
    ):
        raise TypeError(f"{name}: expected a real (float or integer) array, got dtype {x.dtype}")
    if x.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(
            f"{name}: expected a {want} array ([T, N]{' or [B, T, N]' if 3 in ndims else ''}), "
            f"got shape {x.shape}"
        )
    if x.size == 0:
        raise ValueError(f"{name}: is empty (shape {x.shape})")
    return check_finite(name, x.astype(np.float64, copy=False))


def same_dim(x_true: np.ndarray, x_gen: np.ndarray) -> None:
    if x_true.shape[-1] != x_gen.shape[-1]:
        raise ValueError(
            f"x_gen: expected N={x_true.shape[-1]} dimensions like x_true, got shape {x_gen.shape}"
        )


def check_model(model) -> None:
    for attr in ("M", "N", "K", "dtype", "generate", "initial_state", "jacobian"):
        if not hasattr(model, attr):
            raise TypeError(f"model: expected a plrnn_native.PLRNN, got {type(model).__name__}")
    if model.K > 0:
        raise ValueError(
            f"model: has K={model.K} external inputs; the metrics support input-free "
            "models (K = 0) only"
        )


def model_data(model, x, name: str = "x", ndims: Tuple[int, ...] = (2, 3)) -> np.ndarray:
    """``x`` as a C-contiguous ``[B, T, N]`` array of the model's dtype (a ``[T, N]`` input gets B = 1)."""
    check_ndarray(name, x)
    if x.dtype != model.dtype:
        raise TypeError(
            f"{name}: expected the model's dtype {model.dtype}, got {x.dtype} "
            f"(convert with {name}.astype(numpy.{model.dtype}))"
        )
    if x.ndim not in ndims or x.shape[-1] != model.N:
        shapes = " or ".join({2: f"[T, N={model.N}]", 3: f"[B, T, N={model.N}]"}[d] for d in ndims)
        raise ValueError(f"{name}: expected shape {shapes}, got {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name}: is empty (shape {x.shape})")
    check_finite(name, x)
    x = x[None] if x.ndim == 2 else x
    return np.ascontiguousarray(x)
