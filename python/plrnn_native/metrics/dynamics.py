"""Metrics of a model's dynamics: its Lyapunov spectrum along a free trajectory."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import _core
from .._validation import as_rng, check_float, check_int, check_ndarray
from ._checks import CHUNK_ELEMENTS, SeedLike, check_model


def lyapunov_spectrum(
    model,
    T: int = 10_000,
    transient: int = 1000,
    z0: Optional[np.ndarray] = None,
    x0: Optional[np.ndarray] = None,
    n_exponents: Optional[int] = None,
    renorm_every: int = 1,
    dt: Optional[float] = None,
    seed: SeedLike = None,
) -> np.ndarray:
    """Lyapunov exponents of the model by QR re-orthonormalisation along a free trajectory.

    The trajectory ``z_0 .. z_{transient+T-1}`` starts from ``z0``, from ``model.initial_state(x0)``,
    or (neither given) from ``z0 ~ N(0, I)`` drawn with ``seed``. The exact Jacobians
    ``J_s = dF/dz(z_s)`` are computed by ``model.jacobian`` in vectorised chunks. An orthonormal frame
    ``Q`` (``[M, k]``, starting from the first ``k`` unit vectors) is propagated, ``Q <- J_s Q``, and
    re-orthonormalised by ``Q, R = qr(Q)`` every ``renorm_every`` steps (blocks restart at the end of
    the transient). The frame is propagated through the transient but only the ``T`` steps after it
    count: ``lambda_i = (1/T) sum log|R_ii|`` (natural log, per model step), sorted descending. A
    singular Jacobian can give ``-inf``.

    Args:
        model: a PLRNN without inputs. T: measured steps (10_000). transient: steps before (1000).
        z0: ``[M]`` or x0: ``[N]`` (at most one), the model's dtype.
        n_exponents: ``k``, the number of leading exponents (default ``M``).
        renorm_every: steps between QR factorisations (1; larger is faster but can overflow).
        dt: if given, the exponents are divided by ``dt`` (per unit time).
        seed: for the default initial state.

    Returns:
        ``[k]`` float64 exponents, descending.

    Raises:
        FloatingPointError: the free trajectory reaches NaN/inf (it diverged).
        OverflowError: the frame overflowed between two QRs (``renorm_every`` too large).
    """
    check_model(model)
    M = model.M
    T = check_int("T", T, 1)
    transient = check_int("transient", transient, 0)
    k = M if n_exponents is None else check_int("n_exponents", n_exponents, 1)
    if k > M:
        raise ValueError(f"n_exponents: must be <= M={M}, got {k}")
    renorm_every = check_int("renorm_every", renorm_every, 1)
    if dt is not None:
        dt = check_float("dt", dt, 0.0, lo_open=True)
    if z0 is not None and x0 is not None:
        raise ValueError("x0, z0: give at most one initial condition")
    if x0 is not None:
        z0 = model.initial_state(x0)
    elif z0 is None:
        z0 = as_rng("seed", seed).standard_normal(M).astype(model.dtype)
    elif check_ndarray("z0", z0).shape != (M,):
        raise ValueError(f"z0: expected an array of shape [M={M}], got {z0.shape}")

    total = transient + T
    _, z = model.generate(total, z0=np.ascontiguousarray(z0), return_latent=True)
    if not np.isfinite(z).all():
        step = int(np.argmax(~np.isfinite(z).all(axis=1)))
        raise FloatingPointError(
            f"model: the free trajectory diverged (non-finite state at step {step}); "
            "the Lyapunov exponents are undefined"
        )

    # The frame's propagation and QRs run natively (csrc/analysis/lyapunov.h), the exact Jacobians
    # (model.jacobian) in chunks; reference.lyapunov_frame is the same loop with NumPy's QR.
    Q = np.eye(M, k)
    log_growth = np.zeros(k)
    chunk = max(1, CHUNK_ELEMENTS // (M * M))
    for c0 in range(0, total, chunk):
        J = np.ascontiguousarray(model.jacobian(z[c0 : c0 + chunk]), dtype=np.float64)
        Q, growth = _core.lyapunov_frame(J, Q, c0, transient, total, renorm_every)
        log_growth += growth
    exponents = np.sort(log_growth / T)[::-1]
    return exponents / dt if dt is not None else exponents

