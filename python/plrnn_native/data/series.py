"""The time-series container of the benchmark and recorded data, z-scoring and delay embedding.

Output is time-major: ``x`` is ``[T, N]`` float64, inputs ``s`` are ``[T, K]`` float64 (or None).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .._validation import check_float, check_int, readonly


@dataclass(frozen=True, eq=False)
class TimeSeries:
    """A sampled (multivariate) time series with its provenance.

    Attributes:
        x: ``[T, N]`` float64 observations (z-scored when ``mean``/``std`` are set).
        s: ``[T, K]`` float64 external inputs sampled at the same times as ``x``, or None.
        dt: sampling interval (time units per step).
        name: system name (``"lorenz63"``, ...) or the file's stem for loaded data.
        params: the system's parameters.
        lyapunov_max: reference largest Lyapunov exponent per unit time, or None when unknown.
            Per step of the series it is ``lyapunov_max * dt``.
        mean, std: ``[N]`` z-scoring applied (``x = (raw - mean) / std``), or None for raw data.
        meta: seed, noise levels, transient, integrator tolerances, initial condition, ...
        missing: whether ``x`` may hold NaN for missing values (recordings, see
            :mod:`plrnn_native.recordings`); inf is never allowed, nor a series with no value.

    The arrays are read-only (the dataclass is frozen; equality is identity, not element-wise).
    """

    x: np.ndarray
    s: Optional[np.ndarray] = None
    dt: float = 1.0
    name: str = ""
    params: Dict[str, Any] = field(default_factory=dict)
    lyapunov_max: Optional[float] = None
    mean: Optional[np.ndarray] = None
    std: Optional[np.ndarray] = None
    meta: Dict[str, Any] = field(default_factory=dict)
    missing: bool = False

    def __post_init__(self) -> None:
        x = readonly(np.ascontiguousarray(self.x, dtype=np.float64))
        if x.ndim != 2:
            raise ValueError(f"x: expected a [T, N] array, got shape {x.shape}")
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"x: expected a non-empty [T, N] array, got shape {x.shape}")
        bad = np.isinf(x) if self.missing else ~np.isfinite(x)
        if bad.any():
            t, j = (int(i) for i in np.argwhere(bad)[0])
            what = "inf" if self.missing else "NaN or inf"
            raise ValueError(f"x: contains {what} (first at time step {t}, column {j})")
        if self.missing and np.isnan(x).all():
            raise ValueError("x: every value is missing (NaN)")
        object.__setattr__(self, "x", x)
        if self.s is not None:
            s = readonly(np.ascontiguousarray(self.s, dtype=np.float64))
            if s.ndim != 2 or s.shape[0] != x.shape[0]:
                raise ValueError(f"s: expected a [T, K] array with T = {x.shape[0]}, "
                                 f"got shape {s.shape}")
            object.__setattr__(self, "s", s)
        for attr in ("mean", "std"):
            v = getattr(self, attr)
            if v is not None:
                v = readonly(np.ascontiguousarray(v, dtype=np.float64))
                if v.shape != (x.shape[1],):
                    raise ValueError(f"{attr}: expected shape ({x.shape[1]},), got {v.shape}")
                object.__setattr__(self, attr, v)
        object.__setattr__(self, "dt", check_float("dt", self.dt, lo=0.0, lo_open=True))

    @property
    def T(self) -> int:
        """Number of time steps."""
        return self.x.shape[0]

    @property
    def N(self) -> int:
        """Number of observed dimensions."""
        return self.x.shape[1]

    @property
    def K(self) -> int:
        """Number of external inputs (0 without ``s``)."""
        return 0 if self.s is None else self.s.shape[1]

    @property
    def missing_fraction(self) -> float:
        """Share of the entries of ``x`` that are missing (NaN)."""
        return float(np.isnan(self.x).mean()) if self.missing else 0.0

    def split(self, fraction: float = 0.8) -> Tuple["TimeSeries", "TimeSeries"]:
        """Split along time into ``(train, test)``: the first ``round(fraction * T)`` steps, rest.

        Both parts keep this series' ``mean``/``std`` (the z-scoring of the whole series);
        ``meta["start"]`` gives each part's first index in this series.
        """
        fraction = check_float("fraction", fraction, 0.0, 1.0, lo_open=True, hi_open=True)
        n = round(fraction * self.T)
        if n < 1 or n > self.T - 1:
            raise ValueError(f"fraction: {fraction} of T = {self.T} leaves an empty part "
                             f"(train {n} steps, test {self.T - n})")
        return self._segment(0, n, "train"), self._segment(n, self.T, "test")

    def _segment(self, start: int, stop: int, label: str) -> "TimeSeries":
        meta = dict(self.meta)
        meta["segment"] = label
        meta["start"] = int(self.meta.get("start", 0)) + start
        if "t0" in meta:
            meta["t0"] = float(self.meta["t0"]) + start * self.dt
        return replace(self, x=self.x[start:stop], s=None if self.s is None else self.s[start:stop],
                       meta=meta)

    def __repr__(self) -> str:
        return (f"TimeSeries(name={self.name!r}, T={self.T}, N={self.N}, K={self.K}, dt={self.dt}, "
                f"zscored={self.mean is not None}, lyapunov_max={self.lyapunov_max})")



def apply_zscore(x: np.ndarray, what: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x - mean) / std per column; NaN (missing values) are left out of the statistics."""
    mean, std = zscore_stats(x, what)
    return (x - mean) / std, mean, std


def zscore_stats(x: np.ndarray, what: str) -> Tuple[np.ndarray, np.ndarray]:
    """Per-column mean and std of ``x`` ``[T, N]`` over its observed (non-NaN) values; a column
    that is constant or has no observed value raises ValueError naming ``what``."""
    empty = np.flatnonzero(np.isnan(x).all(axis=0))
    if empty.size:
        raise ValueError(f"{what}: column(s) {empty.tolist()} have no observed value (all NaN)")
    complete = not np.isnan(x).any()
    mean = x.mean(axis=0) if complete else np.nanmean(x, axis=0)
    std = x.std(axis=0) if complete else np.nanstd(x, axis=0)
    const = np.flatnonzero(~(std > 1e-12 * np.maximum(1.0, np.abs(mean))))
    if const.size:
        raise ValueError(f"{what}: column(s) {const.tolist()} constant (std = "
                         f"{std[const].tolist()}): z-scoring impossible (pass zscore=False or drop "
                         "the column)")
    return mean, std


# ----------------------------------------------------------------------------------------------
# Delay embedding
# ----------------------------------------------------------------------------------------------


def delay_embed(x: np.ndarray, dims: int, lag: int = 1) -> np.ndarray:
    """Delay (Takens) embedding of ``x`` ``[T, N]`` (or ``[T]``, read as ``[T, 1]``).

    Returns ``[T - (dims-1)*lag, N*dims]`` float64: row ``j`` stands for time
    ``t = j + (dims-1)*lag`` and holds ``[x_t, x_{t-lag}, ..., x_{t-(dims-1)*lag}]``, each block
    ``N`` wide (block 0 is the current value: the first ``N`` columns are ``x[(dims-1)*lag:]``).
    """
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"x: expected a real numeric array, got dtype {a.dtype}")
    a = a.astype(np.float64, copy=False)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"x: expected a [T, N] or [T] array, got shape {a.shape}")
    dims = check_int("dims", dims, 1)
    lag = check_int("lag", lag, 1)
    T, N = a.shape
    T_out = T - (dims - 1) * lag
    if T_out < 1:
        raise ValueError(f"dims, lag: (dims-1)*lag = {(dims - 1) * lag} leaves no rows "
                         f"from T = {T}")
    out = np.empty((T_out, N * dims))
    for k in range(dims):
        start = (dims - 1 - k) * lag
        out[:, k * N:(k + 1) * N] = a[start:start + T_out]
    return out

