"""Metrics of a model's predictions of the observations from data-inferred states: the n-step
prediction error ``PE(n)`` and the valid prediction time (in Lyapunov times)."""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from .._validation import check_choice, check_float, check_int
from ._checks import CHUNK_ELEMENTS, INITS, check_model, model_data


def _start_points(B: int, T: int, horizon: int, max_starts: int) -> Tuple[np.ndarray, np.ndarray]:
    """(sequence, time) of at most ``max_starts`` start points, evenly spaced over all ``(b, t)`` with
    ``t + horizon <= T - 1``."""
    per_seq = T - horizon
    total = B * per_seq
    flat = np.unique(np.round(np.linspace(0, total - 1, min(max_starts, total))).astype(np.int64))
    return flat // per_seq, flat % per_seq


def _inferred_states(model, x: np.ndarray, b: np.ndarray, t: np.ndarray, init: str) -> np.ndarray:
    """Data-inferred latent states ``[S, M]`` at the start points (see :func:`prediction_error_curve`)."""
    if init == "initial_state":
        return np.ascontiguousarray(model.initial_state(np.ascontiguousarray(x[b, t])))
    # forced: one-step teacher-forced rollout, then the forcing operator with weight 1
    _, z = model.rollout(x, forcing="sparse", tau=1, return_latent=True)  # [B, T, M], T >= 2
    z, xt = z[b, t], x[b, t]
    if model.obs == "identity":
        z = np.concatenate([xt, z[:, model.N :]], axis=1)
    else:
        z = z + (xt - z @ model["B"].T) @ model.pinv_B().T
    return np.ascontiguousarray(z, dtype=model.dtype)


def _free_predictions(model, z0: np.ndarray, steps: int):
    """Yield ``(slice, xhat [c, steps+1, N])`` free runs of ``steps`` steps from chunks of ``z0``."""
    chunk = max(1, CHUNK_ELEMENTS // ((steps + 1) * (model.M + model.N)))
    for s0 in range(0, z0.shape[0], chunk):
        sl = slice(s0, min(s0 + chunk, z0.shape[0]))
        yield sl, model.generate(steps + 1, z0=np.ascontiguousarray(z0[sl]))


def prediction_error_curve(
    model, x: np.ndarray, n: int = 20, max_starts: int = 1000, init: str = "initial_state"
) -> np.ndarray:
    """Mean squared error of free predictions ``k = 0 .. n`` steps ahead, ``[n + 1]`` float64.

    Start points ``(b, t)`` with ``t + n <= T - 1``, at most ``max_starts`` of them evenly spaced over
    all sequences and times. From each the state is inferred from the data, ``z_t``, and the model runs
    freely: ``xhat_{t+k} = obs(F^k(z_t))``. ``curve[k] = mean over starts and dimensions of
    (xhat_{t+k} - x_{t+k})^2`` (``curve[0]`` is the error of ``obs(z_t)``: 0 for the identity
    observation).

    Data-inferred state (``init``):
        ``"initial_state"``: ``model.initial_state(x_t)`` (``[x_t, L x_t]`` for the identity
        observation), as at the start of a training sequence.
        ``"forced"``: the state of a one-step teacher-forced rollout (``forcing="sparse", tau=1``) at
        ``t`` after forcing with weight 1 (identity: ``[x_t, z_t[N:]]``; linear:
        ``z_t + B^+ (x_t - B z_t)``), so hidden units are inferred from the past of the sequence.

    Args:
        model: a :class:`plrnn_native.PLRNN` without inputs.
        x: data ``[T, N]`` or ``[B, T, N]`` of the model's dtype, ``T >= n + 1``.
        n: prediction horizon in steps (20). max_starts: number of start points (1000).
    """
    check_model(model)
    x = model_data(model, x)
    n = check_int("n", n, 1)
    max_starts = check_int("max_starts", max_starts, 1)
    init = check_choice("init", init, INITS)
    B, T, _ = x.shape
    if T < n + 1:
        raise ValueError(f"x: needs at least n + 1 = {n + 1} time steps, got T={T}")
    b, t = _start_points(B, T, n, max_starts)
    z0 = _inferred_states(model, x, b, t, init)
    target = x[b[:, None], t[:, None] + np.arange(n + 1)[None, :]].astype(np.float64)  # [S, n+1, N]
    sq = np.zeros(n + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        for sl, xhat in _free_predictions(model, z0, n):
            sq += np.sum((xhat.astype(np.float64) - target[sl]) ** 2, axis=(0, 2))
    return sq / (b.size * model.N)


def prediction_error(
    model, x: np.ndarray, n: int = 20, max_starts: int = 1000, init: str = "initial_state"
) -> float:
    """``PE(n)``: the mean squared error of the free prediction exactly ``n`` steps ahead.

    ``prediction_error_curve(model, x, n, max_starts, init)[n]``; see there for the start points and
    the data-inferred states. ``x``: ``[T, N]`` or ``[B, T, N]``, ``n`` = 20 by default.
    """
    return float(prediction_error_curve(model, x, n=n, max_starts=max_starts, init=init)[n])


def valid_prediction_time(
    model,
    x: np.ndarray,
    dt: float,
    lyapunov_max: float,
    threshold: float = 0.4,
    n_starts: int = 20,
    max_lyapunov_times: float = 10.0,
    init: str = "initial_state",
) -> float:
    """Valid prediction time in Lyapunov times, averaged over start points.

    From ``n_starts`` start points evenly spaced over the data (state as in
    :func:`prediction_error_curve`, ``init``), the model runs freely for ``H`` steps,
    ``H = min(ceil(max_lyapunov_times / (lyapunov_max dt)), T - 1)``. Normalised error
    ``e_k = ||xhat_{t+k} - x_{t+k}||_2 / sqrt(mean_t ||x_t||_2^2)`` (the mean over all data points). The
    valid time of a start is the last ``k`` with ``e_j <= threshold`` for all ``j <= k`` (0 if already
    ``e_0`` exceeds it; ``H`` if the error never exceeds it: the result is then censored at the horizon),
    converted to Lyapunov times ``k dt lyapunov_max``.

    Args:
        model: a PLRNN without inputs. x: data ``[T, N]`` or ``[B, T, N]``, the model's dtype, ``T >= 2``.
        dt: sampling interval of the data (> 0). lyapunov_max: largest Lyapunov exponent of the true
        system per unit time (> 0). threshold: error threshold (0.4; 0.3-0.5 in the literature).
        n_starts: start points (20). max_lyapunov_times: horizon in Lyapunov times (10).
    """
    check_model(model)
    x = model_data(model, x)
    dt = check_float("dt", dt, 0.0, lo_open=True)
    lyapunov_max = check_float("lyapunov_max", lyapunov_max, 0.0, lo_open=True)
    threshold = check_float("threshold", threshold, 0.0, lo_open=True)
    n_starts = check_int("n_starts", n_starts, 1)
    max_lyapunov_times = check_float("max_lyapunov_times", max_lyapunov_times, 0.0, lo_open=True)
    init = check_choice("init", init, INITS)
    B, T, _ = x.shape
    if T < 2:
        raise ValueError(f"x: needs at least 2 time steps, got T={T}")
    H = int(min(math.ceil(max_lyapunov_times / (lyapunov_max * dt)), T - 1))
    b, t = _start_points(B, T, H, n_starts)
    z0 = _inferred_states(model, x, b, t, init)
    target = x[b[:, None], t[:, None] + np.arange(H + 1)[None, :]].astype(np.float64)  # [S, H+1, N]
    scale = math.sqrt(float(np.mean(np.sum(x.astype(np.float64) ** 2, axis=-1))))
    if scale == 0.0:
        raise ValueError("x: is identically zero; the normalised error is undefined")
    valid_steps = np.empty(b.size)
    with np.errstate(over="ignore", invalid="ignore"):
        for sl, xhat in _free_predictions(model, z0, H):
            err = np.linalg.norm(xhat.astype(np.float64) - target[sl], axis=-1) / scale  # [c, H+1]
            exceeded = ~(err <= threshold)  # NaN counts as exceeded
            first = np.where(exceeded.any(axis=1), exceeded.argmax(axis=1), H + 1)
            valid_steps[sl] = np.maximum(first - 1, 0)
    return float(np.mean(valid_steps) * dt * lyapunov_max)

