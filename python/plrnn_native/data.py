"""Benchmark data for dynamical-systems reconstruction: ODE generators, delay embedding, loading.

Every generator integrates its ODE with SciPy's ``solve_ivp(method="DOP853")`` at tight tolerances;
the integrator picks its own steps and the trajectory is sampled at ``t_eval`` (the sampling
interval ``dt`` never sets the integration step). The recipe, common to all systems:

1. initial condition ``x0`` at ``t = 0`` (drawn near the attractor from the seed when not given);
2. integrate over the transient ``[0, transient]`` (time units) and drop it;
3. sample ``T`` states at ``t_k = transient + k dt``, ``k = 0..T-1``;
4. process noise (``process_noise > 0``): after every sampling interval (transient included) the
   state gets a Gaussian kick ``x <- x + process_noise * xi``, ``xi ~ N(0, I)``; the ODE is then
   integrated interval by interval (otherwise in a single call);
5. observation noise: ``x_k + obs_noise * std_j * eta``, ``std_j`` the per-dimension standard
   deviation of the sampled trajectory, ``eta ~ N(0, I)``;
6. z-scoring (``zscore=True``): ``(x - mean) / std`` per dimension; ``mean`` and ``std`` are kept.

Randomness: one ``numpy.random.SeedSequence(seed)`` spawns three independent streams (initial
condition, process noise, observation noise), each a ``numpy.random.default_rng``; no global state.
So for one seed the noise-free trajectory does not depend on ``obs_noise``. With ``seed=None`` fresh
entropy is drawn and recorded in ``meta["seed"]``, so every run can be repeated.

Output is time-major: ``x`` is ``[T, N]`` float64, inputs ``s`` are ``[T, K]`` float64 (or None).
"""

from __future__ import annotations

import csv
import math
import numbers
import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "TimeSeries",
    "delay_embed",
    "driven_duffing",
    "duffing",
    "hindmarsh_rose",
    "load_timeseries",
    "lorenz63",
    "lorenz96",
    "lyapunov_max",
    "make",
    "rossler",
    "systems",
    "van_der_pol",
]

# Reference largest Lyapunov exponents (per unit time) at the default parameters.
LYAPUNOV_LORENZ63 = 0.9056  # sigma=10, rho=28, beta=8/3 (Sprott, "Chaos and Time-Series Analysis")
LYAPUNOV_ROSSLER = 0.0714  # a=b=0.2, c=5.7 (Sprott)


# ----------------------------------------------------------------------------------------------
# The time-series container
# ----------------------------------------------------------------------------------------------


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
        x = _readonly(np.ascontiguousarray(self.x, dtype=np.float64))
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
            s = _readonly(np.ascontiguousarray(self.s, dtype=np.float64))
            if s.ndim != 2 or s.shape[0] != x.shape[0]:
                raise ValueError(f"s: expected a [T, K] array with T = {x.shape[0]}, "
                                 f"got shape {s.shape}")
            object.__setattr__(self, "s", s)
        for attr in ("mean", "std"):
            v = getattr(self, attr)
            if v is not None:
                v = _readonly(np.ascontiguousarray(v, dtype=np.float64))
                if v.shape != (x.shape[1],):
                    raise ValueError(f"{attr}: expected shape ({x.shape[1]},), got {v.shape}")
                object.__setattr__(self, attr, v)
        object.__setattr__(self, "dt", _check_positive("dt", self.dt))

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
        if isinstance(fraction, (bool, np.bool_)) or not isinstance(fraction, numbers.Real):
            raise ValueError(f"fraction: expected a number in (0, 1), got {fraction!r}")
        fraction = float(fraction)
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"fraction: must be in (0, 1), got {fraction}")
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


def _readonly(a: np.ndarray) -> np.ndarray:
    """``a`` itself when already read-only, else a read-only copy (the caller's array untouched)."""
    if a.flags.writeable:
        a = a.copy()
        a.flags.writeable = False
    return a


# ----------------------------------------------------------------------------------------------
# Argument checks (ValueError naming the argument)
# ----------------------------------------------------------------------------------------------


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return value


def _check_real(name: str, value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value}")
    return value


def _check_positive(name: str, value) -> float:
    value = _check_real(name, value)
    if value <= 0.0:
        raise ValueError(f"{name}: must be > 0, got {value}")
    return value


def _check_nonneg(name: str, value) -> float:
    value = _check_real(name, value)
    if value < 0.0:
        raise ValueError(f"{name}: must be >= 0, got {value}")
    return value


def _check_seed(seed) -> np.random.SeedSequence:
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed: expected None or a non-negative integer, got {seed!r}")
    return np.random.SeedSequence(int(seed))


def _check_x0(x0, n: int) -> np.ndarray:
    try:
        a = np.array(x0, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"x0: expected {n} real numbers, got {x0!r}") from exc
    if a.shape != (n,):
        raise ValueError(f"x0: expected shape ({n},), got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"x0: must be finite, got {a}")
    return a


# ----------------------------------------------------------------------------------------------
# The systems: right-hand side f(t, x), Jacobian df/dx, initial-condition sampler
# ----------------------------------------------------------------------------------------------

RHS = Callable[[float, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class _System:
    n: int  # state dimension
    rhs: RHS  # f(t, x) -> dx/dt, [n]
    jac: Callable[[float, np.ndarray], np.ndarray]  # df/dx, [n, n]
    sample_x0: Callable[[np.random.Generator], np.ndarray]  # a point in the attractor's basin
    forcing: Optional[Callable[[np.ndarray], np.ndarray]] = None  # t [T] -> s [T, K]


def _lorenz63_system(sigma: float, rho: float, beta: float) -> _System:
    def rhs(t, u):
        x, y, z = u
        return np.array([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])

    def jac(t, u):
        x, y, z = u
        return np.array([[-sigma, sigma, 0.0], [rho - z, -1.0, -x], [y, x, -beta]])

    def x0(rng):
        return rng.uniform([-15.0, -20.0, 5.0], [15.0, 20.0, 40.0])

    return _System(3, rhs, jac, x0)


def _lorenz96_system(N: int, F: float) -> _System:
    ip1 = np.roll(np.arange(N), -1)  # i + 1
    im1 = np.roll(np.arange(N), 1)  # i - 1
    im2 = np.roll(np.arange(N), 2)  # i - 2
    rows = np.arange(N)

    def rhs(t, x):
        return (x[ip1] - x[im2]) * x[im1] - x + F

    def jac(t, x):
        J = -np.eye(N)
        np.add.at(J, (rows, ip1), x[im1])
        np.add.at(J, (rows, im2), -x[im1])
        np.add.at(J, (rows, im1), x[ip1] - x[im2])
        return J

    def x0(rng):
        return F + rng.standard_normal(N)

    return _System(N, rhs, jac, x0)


def _rossler_system(a: float, b: float, c: float) -> _System:
    def rhs(t, u):
        x, y, z = u
        return np.array([-y - z, x + a * y, b + z * (x - c)])

    def jac(t, u):
        x, _, z = u
        return np.array([[0.0, -1.0, -1.0], [1.0, a, 0.0], [z, 0.0, x - c]])

    def x0(rng):
        return rng.uniform([-5.0, -5.0, 0.0], [5.0, 5.0, 1.0])

    return _System(3, rhs, jac, x0)


def _hindmarsh_rose_system(a, b, c, d, r, s, x_rest, I_ext) -> _System:
    def rhs(t, u):
        x, y, z = u
        return np.array([y - a * x**3 + b * x**2 - z + I_ext, c - d * x**2 - y,
                         r * (s * (x - x_rest) - z)])

    def jac(t, u):
        x = u[0]
        return np.array([[-3.0 * a * x**2 + 2.0 * b * x, 1.0, -1.0], [-2.0 * d * x, -1.0, 0.0],
                         [r * s, 0.0, -r]])

    def x0(rng):
        return rng.uniform([-1.5, -10.0, 2.5], [1.5, 0.0, 3.5])

    return _System(3, rhs, jac, x0)


def _van_der_pol_system(mu: float) -> _System:
    def rhs(t, u):
        x, y = u
        return np.array([y, mu * (1.0 - x * x) * y - x])

    def jac(t, u):
        x, y = u
        return np.array([[0.0, 1.0], [-2.0 * mu * x * y - 1.0, mu * (1.0 - x * x)]])

    def x0(rng):
        return rng.uniform([-2.5, -2.5], [2.5, 2.5])

    return _System(2, rhs, jac, x0)


def _duffing_system(delta, alpha, beta, gamma=0.0, omega=0.0) -> _System:
    def rhs(t, u):
        x, y = u
        return np.array([y, -delta * y - alpha * x - beta * x**3 + gamma * math.cos(omega * t)])

    def jac(t, u):
        x = u[0]
        return np.array([[0.0, 1.0], [-alpha - 3.0 * beta * x * x, -delta]])

    def x0(rng):
        return rng.uniform([-2.0, -1.5], [2.0, 1.5])

    def forcing(t):
        return (gamma * np.cos(omega * t))[:, None]

    return _System(2, rhs, jac, x0, forcing if (gamma, omega) != (0.0, 0.0) else None)


# ----------------------------------------------------------------------------------------------
# The common integration recipe
# ----------------------------------------------------------------------------------------------


def _solve(rhs: RHS, t0: float, t1: float, u0: np.ndarray, rtol: float, atol: float,
           t_eval: Optional[np.ndarray] = None) -> np.ndarray:
    """DOP853 from t0 to t1; the states at ``t_eval`` ([len, n]) or the final state ([n])."""
    from scipy.integrate import solve_ivp

    sol = solve_ivp(rhs, (t0, t1), u0, method="DOP853", t_eval=t_eval, rtol=rtol, atol=atol)
    if sol.status != 0:
        raise RuntimeError(f"ODE integration failed at t = {sol.t[-1] if sol.t.size else t0}: "
                           f"{sol.message}")
    y = sol.y.T if t_eval is not None else sol.y[:, -1]
    if not np.isfinite(y).all():
        raise RuntimeError("ODE integration diverged (non-finite state); check x0 and parameters")
    return y


def _generate(name: str, system: _System, params: Dict[str, Any], lyap: Optional[float], *, T, dt,
              seed, obs_noise, process_noise, transient, zscore, x0, rtol, atol) -> TimeSeries:
    T = _check_int("T", T, 2)
    dt = _check_positive("dt", dt)
    obs_noise = _check_nonneg("obs_noise", obs_noise)
    process_noise = _check_nonneg("process_noise", process_noise)
    transient = _check_nonneg("transient", transient)
    rtol = _check_positive("rtol", rtol)
    atol = _check_positive("atol", atol)
    if not isinstance(zscore, (bool, np.bool_)):
        raise ValueError(f"zscore: expected True or False, got {zscore!r}")
    ss = _check_seed(seed)
    rng_x0, rng_process, rng_obs = (np.random.default_rng(c) for c in ss.spawn(3))

    u0 = system.sample_x0(rng_x0) if x0 is None else _check_x0(x0, system.n)
    t_eval = transient + dt * np.arange(T)  # [T]

    if process_noise == 0.0:
        x = _solve(system.rhs, 0.0, float(t_eval[-1]), u0, rtol, atol, t_eval=t_eval)
    else:
        u = u0.copy()
        n_tr = math.ceil(transient / dt - 1e-9) if transient > 0 else 0
        for j in range(n_tr):  # the transient, with kicks after every (at most dt long) interval
            ta, tb = j * dt, min((j + 1) * dt, transient)
            u = _solve(system.rhs, ta, tb, u, rtol, atol)
            u = u + process_noise * rng_process.standard_normal(system.n)
        x = np.empty((T, system.n))
        x[0] = u
        for k in range(1, T):
            u = _solve(system.rhs, float(t_eval[k - 1]), float(t_eval[k]), u, rtol, atol)
            u = u + process_noise * rng_process.standard_normal(system.n)
            x[k] = u
    x = np.ascontiguousarray(x, dtype=np.float64)  # [T, n]

    if obs_noise > 0.0:
        x = x + obs_noise * x.std(axis=0) * rng_obs.standard_normal(x.shape)

    mean = std = None
    if zscore:
        x, mean, std = _zscore(x, "x")

    s = None if system.forcing is None else system.forcing(t_eval)
    meta = {
        "seed": ss.entropy,
        "obs_noise": obs_noise,
        "process_noise": process_noise,
        "transient": transient,
        "t0": float(t_eval[0]),
        "x0": u0.tolist(),
        "method": "DOP853",
        "rtol": rtol,
        "atol": atol,
    }
    return TimeSeries(x=x, s=s, dt=dt, name=name, params=params, lyapunov_max=lyap, mean=mean,
                      std=std, meta=meta)


def _zscore(x: np.ndarray, what: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
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


_COMMON_DOC = """
    Common arguments:
        T: number of samples (integer >= 2). dt: sampling interval (> 0).
        seed: None or a non-negative integer (None: fresh entropy, recorded in ``meta["seed"]``).
        obs_noise: observation noise, in units of each dimension's standard deviation (>= 0).
        process_noise: std of the Gaussian kick added to the state after every interval dt (>= 0).
        transient: time units integrated and dropped before the first sample (>= 0).
        zscore: standardise each dimension (``mean``/``std`` recorded in the result).
        x0: initial condition ``[n]`` at ``t = 0`` (None: drawn from the seed near the attractor).
        rtol, atol: DOP853 tolerances.

    Returns:
        TimeSeries with ``x`` of shape ``[T, n]`` (float64).
"""


def _doc(f):
    f.__doc__ = (f.__doc__ or "") + _COMMON_DOC
    return f


@_doc
def lorenz63(T: int = 100_000, dt: float = 0.01, *, sigma: float = 10.0, rho: float = 28.0,
             beta: float = 8.0 / 3.0, seed: Optional[int] = None, obs_noise: float = 0.0,
             process_noise: float = 0.0, transient: float = 20.0, zscore: bool = True,
             x0: Optional[Sequence[float]] = None, rtol: float = 1e-10,
             atol: float = 1e-12) -> TimeSeries:
    """Lorenz-63, chaotic at the standard setting (``lyapunov_max`` ≈ 0.906 per unit time)::

        dx/dt = sigma (y - x)
        dy/dt = x (rho - z) - y
        dz/dt = x y - beta z

    ``lyapunov_max`` is set only at the standard parameters (sigma=10, rho=28, beta=8/3).
    """
    p = {"sigma": _check_real("sigma", sigma), "rho": _check_real("rho", rho),
         "beta": _check_real("beta", beta)}
    standard = np.allclose([p["sigma"], p["rho"], p["beta"]], [10.0, 28.0, 8.0 / 3.0], rtol=1e-12)
    return _generate("lorenz63", _lorenz63_system(**p), p, LYAPUNOV_LORENZ63 if standard else None,
                     T=T, dt=dt, seed=seed, obs_noise=obs_noise, process_noise=process_noise,
                     transient=transient, zscore=zscore, x0=x0, rtol=rtol, atol=atol)


@_doc
def lorenz96(T: int = 100_000, dt: float = 0.01, *, N: int = 10, F: float = 8.0,
             seed: Optional[int] = None, obs_noise: float = 0.0, process_noise: float = 0.0,
             transient: float = 50.0, zscore: bool = True, x0: Optional[Sequence[float]] = None,
             rtol: float = 1e-10, atol: float = 1e-12) -> TimeSeries:
    """Lorenz-96 on a ring of ``N >= 4`` sites (indices mod N), chaotic for F = 8::

        dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F

    ``lyapunov_max`` is None (it depends on N; estimate it with :func:`lyapunov_max`: about 1.1 for
    N = 10, F = 8 from a 200-time-unit run, not a literature value).
    """
    N = _check_int("N", N, 4)
    p = {"N": N, "F": _check_real("F", F)}
    return _generate("lorenz96", _lorenz96_system(N, p["F"]), p, None, T=T, dt=dt, seed=seed,
                     obs_noise=obs_noise, process_noise=process_noise, transient=transient,
                     zscore=zscore, x0=x0, rtol=rtol, atol=atol)


@_doc
def rossler(T: int = 100_000, dt: float = 0.01, *, a: float = 0.2, b: float = 0.2, c: float = 5.7,
            seed: Optional[int] = None, obs_noise: float = 0.0, process_noise: float = 0.0,
            transient: float = 200.0, zscore: bool = True, x0: Optional[Sequence[float]] = None,
            rtol: float = 1e-10, atol: float = 1e-12) -> TimeSeries:
    """Rössler, chaotic at a = b = 0.2, c = 5.7 (``lyapunov_max`` ≈ 0.071 per unit time)::

        dx/dt = -y - z
        dy/dt = x + a y
        dz/dt = b + z (x - c)
    """
    p = {"a": _check_real("a", a), "b": _check_real("b", b), "c": _check_real("c", c)}
    standard = np.allclose([p["a"], p["b"], p["c"]], [0.2, 0.2, 5.7], rtol=1e-12)
    return _generate("rossler", _rossler_system(**p), p, LYAPUNOV_ROSSLER if standard else None,
                     T=T, dt=dt, seed=seed, obs_noise=obs_noise, process_noise=process_noise,
                     transient=transient, zscore=zscore, x0=x0, rtol=rtol, atol=atol)


@_doc
def hindmarsh_rose(T: int = 100_000, dt: float = 0.05, *, a: float = 1.0, b: float = 3.0,
                   c: float = 1.0, d: float = 5.0, r: float = 0.006, s: float = 4.0,
                   x_rest: float = -1.6, I_ext: float = 3.25, seed: Optional[int] = None,
                   obs_noise: float = 0.0, process_noise: float = 0.0, transient: float = 1000.0,
                   zscore: bool = True, x0: Optional[Sequence[float]] = None, rtol: float = 1e-10,
                   atol: float = 1e-12) -> TimeSeries:
    """Hindmarsh–Rose bursting neuron (x: membrane potential, y: fast recovery, z: adaptation)::

        dx/dt = y - a x^3 + b x^2 - z + I_ext
        dy/dt = c - d x^2 - y
        dz/dt = r (s (x - x_rest) - z)

    Standard parameters a=1, b=3, c=1, d=5, s=4, x_rest=-1.6 with r=0.006, I_ext=3.25: irregular
    (chaotic) bursting, about 30 spikes per 1000 time units in bursts. ``lyapunov_max`` is None (no
    literature value at hand; :func:`lyapunov_max` gives a small positive ≈ 0.012 over 4000 time
    units).
    """
    p = {k: _check_real(k, v) for k, v in
         {"a": a, "b": b, "c": c, "d": d, "r": r, "s": s, "x_rest": x_rest, "I_ext": I_ext}.items()}
    return _generate("hindmarsh_rose", _hindmarsh_rose_system(**p), p, None, T=T, dt=dt, seed=seed,
                     obs_noise=obs_noise, process_noise=process_noise, transient=transient,
                     zscore=zscore, x0=x0, rtol=rtol, atol=atol)


@_doc
def van_der_pol(T: int = 100_000, dt: float = 0.01, *, mu: float = 1.0, seed: Optional[int] = None,
                obs_noise: float = 0.0, process_noise: float = 0.0, transient: float = 50.0,
                zscore: bool = True, x0: Optional[Sequence[float]] = None, rtol: float = 1e-10,
                atol: float = 1e-12) -> TimeSeries:
    """Van der Pol oscillator, a stable limit cycle for mu > 0 (``lyapunov_max`` = 0)::

        dx/dt = y
        dy/dt = mu (1 - x^2) y - x

    Period ≈ 6.663 at mu = 1. Large mu (relaxation oscillations) needs a longer transient.
    """
    mu = _check_real("mu", mu)
    if mu <= 0.0:
        raise ValueError(f"mu: must be > 0 for a limit cycle, got {mu}")
    return _generate("van_der_pol", _van_der_pol_system(mu), {"mu": mu}, 0.0, T=T, dt=dt, seed=seed,
                     obs_noise=obs_noise, process_noise=process_noise, transient=transient,
                     zscore=zscore, x0=x0, rtol=rtol, atol=atol)


@_doc
def duffing(T: int = 5_000, dt: float = 0.02, *, delta: float = 0.1, alpha: float = -1.0,
            beta: float = 1.0, seed: Optional[int] = None, obs_noise: float = 0.0,
            process_noise: float = 0.0, transient: float = 0.0, zscore: bool = True,
            x0: Optional[Sequence[float]] = None, rtol: float = 1e-10,
            atol: float = 1e-12) -> TimeSeries:
    """Unforced, damped double-well Duffing oscillator: multistable (``lyapunov_max`` < 0)::

        dx/dt = y
        dy/dt = -delta y - alpha x - beta x^3

    With alpha < 0 < beta and delta > 0 every orbit settles on one of the two stable fixed points
    ``(±sqrt(-alpha/beta), 0)``; which one depends on ``x0`` (intertwined basins). The data are the
    decaying transient itself, so ``transient`` defaults to 0; draw several seeds to cover both
    wells. ``lyapunov_max`` is None (at an underdamped well's fixed point it is ``-delta/2``).
    """
    p = {"delta": _check_nonneg("delta", delta), "alpha": _check_real("alpha", alpha),
         "beta": _check_real("beta", beta)}
    return _generate("duffing", _duffing_system(**p), p, None, T=T, dt=dt, seed=seed,
                     obs_noise=obs_noise, process_noise=process_noise, transient=transient,
                     zscore=zscore, x0=x0, rtol=rtol, atol=atol)


@_doc
def driven_duffing(T: int = 100_000, dt: float = 0.05, *, delta: float = 0.3, alpha: float = -1.0,
                   beta: float = 1.0, gamma: float = 0.5, omega: float = 1.2,
                   seed: Optional[int] = None, obs_noise: float = 0.0, process_noise: float = 0.0,
                   transient: float = 100.0, zscore: bool = True,
                   x0: Optional[Sequence[float]] = None, rtol: float = 1e-10,
                   atol: float = 1e-12) -> TimeSeries:
    """Sinusoidally driven double-well Duffing oscillator, with the drive as external input::

        dx/dt = y
        dy/dt = -delta y - alpha x - beta x^3 + s(t),      s(t) = gamma cos(omega t)

    ``s`` is ``[T, 1]``: the forcing at the sample times ``t_k = transient + k dt`` (not z-scored,
    so it enters as ``C s_t`` exactly). Chaotic at the defaults (delta=0.3, gamma=0.5, omega=1.2).
    """
    p = {"delta": _check_nonneg("delta", delta), "alpha": _check_real("alpha", alpha),
         "beta": _check_real("beta", beta), "gamma": _check_real("gamma", gamma),
         "omega": _check_real("omega", omega)}
    system = _duffing_system(**p)
    if system.forcing is None:  # gamma = omega = 0: still report the (zero) input
        system = replace(system, forcing=lambda t: np.zeros((t.size, 1)))
    return _generate("driven_duffing", system, p, None, T=T, dt=dt, seed=seed, obs_noise=obs_noise,
                     process_noise=process_noise, transient=transient, zscore=zscore, x0=x0,
                     rtol=rtol, atol=atol)


_GENERATORS: Dict[str, Callable[..., TimeSeries]] = {
    "lorenz63": lorenz63,
    "lorenz96": lorenz96,
    "rossler": rossler,
    "hindmarsh_rose": hindmarsh_rose,
    "van_der_pol": van_der_pol,
    "duffing": duffing,
    "driven_duffing": driven_duffing,
}

# name -> (system factory, its parameters' defaults), for lyapunov_max
_SYSTEMS = {
    "lorenz63": (_lorenz63_system, {"sigma": 10.0, "rho": 28.0, "beta": 8.0 / 3.0}),
    "lorenz96": (_lorenz96_system, {"N": 10, "F": 8.0}),
    "rossler": (_rossler_system, {"a": 0.2, "b": 0.2, "c": 5.7}),
    "hindmarsh_rose": (_hindmarsh_rose_system,
                       {"a": 1.0, "b": 3.0, "c": 1.0, "d": 5.0, "r": 0.006, "s": 4.0,
                        "x_rest": -1.6, "I_ext": 3.25}),
    "van_der_pol": (_van_der_pol_system, {"mu": 1.0}),
    "duffing": (_duffing_system, {"delta": 0.1, "alpha": -1.0, "beta": 1.0}),
    "driven_duffing": (_duffing_system,
                       {"delta": 0.3, "alpha": -1.0, "beta": 1.0, "gamma": 0.5, "omega": 1.2}),
}


def systems() -> List[str]:
    """Names of the benchmark systems, for :func:`make`."""
    return list(_GENERATORS)


def make(name: str, **kwargs) -> TimeSeries:
    """Generate the benchmark system ``name`` (see :func:`systems`), ``kwargs`` to its generator."""
    if not isinstance(name, str) or name not in _GENERATORS:
        raise ValueError(f"name: unknown system {name!r}; expected one of {', '.join(_GENERATORS)}")
    return _GENERATORS[name](**kwargs)


# ----------------------------------------------------------------------------------------------
# Largest Lyapunov exponent of the ODE (variational equation, renormalised tangent vector)
# ----------------------------------------------------------------------------------------------


def lyapunov_max(name: str, t_total: float = 200.0, *, t_renorm: float = 1.0,
                 transient: float = 50.0, t_align: float = 10.0, seed: Optional[int] = None,
                 x0: Optional[Sequence[float]] = None, rtol: float = 1e-10, atol: float = 1e-12,
                 return_local: bool = False, **params):
    """Largest Lyapunov exponent (per unit time) of the ODE behind a benchmark system.

    Integrates the state with its tangent vector ``v``, ``dv/dt = J(t, x) v`` (``J`` the exact
    Jacobian of the right-hand side), renormalising ``v`` every ``t_renorm`` (one-vector QR)::

        lambda_max = sum_j log ||v(t_j)|| / t_total

    after ``transient`` (state only) and ``t_align`` (tangent vector aligning, not counted).
    ``params`` override the system's default parameters (those of the generator).
    With ``return_local=True`` also returns the local rates ``log ||v(t_j)|| / t_renorm``
    (``[n_j]``), whose spread gives the estimate's finite-time error.
    """
    if not isinstance(name, str) or name not in _SYSTEMS:
        raise ValueError(f"name: unknown system {name!r}; expected one of {', '.join(_SYSTEMS)}")
    factory, defaults = _SYSTEMS[name]
    unknown = set(params) - set(defaults)
    if unknown:
        raise ValueError(f"params: unknown parameter(s) {sorted(unknown)} of {name!r}; "
                         f"expected some of {sorted(defaults)}")
    p = {**defaults, **params}
    system = factory(**p)
    t_total = _check_positive("t_total", t_total)
    t_renorm = _check_positive("t_renorm", t_renorm)
    transient = _check_nonneg("transient", transient)
    t_align = _check_nonneg("t_align", t_align)
    rtol = _check_positive("rtol", rtol)
    atol = _check_positive("atol", atol)
    rng_x0, rng_v = (np.random.default_rng(c) for c in _check_seed(seed).spawn(2))
    n = system.n
    u = system.sample_x0(rng_x0) if x0 is None else _check_x0(x0, n)
    if transient > 0:
        u = _solve(system.rhs, 0.0, transient, u, rtol, atol)
    v = rng_v.standard_normal(n)
    v /= np.linalg.norm(v)

    def rhs(t, w):
        x, dv = w[:n], w[n:]
        return np.concatenate([system.rhs(t, x), system.jac(t, x) @ dv])

    n_align = math.ceil(t_align / t_renorm - 1e-9)
    n_count = max(1, round(t_total / t_renorm))
    w = np.concatenate([u, v])
    t = transient
    local = np.empty(n_count)
    for j in range(n_align + n_count):
        w = _solve(rhs, t, t + t_renorm, w, rtol, atol)
        t += t_renorm
        growth = np.linalg.norm(w[n:])
        w[n:] /= growth
        if j >= n_align:
            local[j - n_align] = math.log(growth) / t_renorm
    lam = float(local.mean())
    return (lam, local) if return_local else lam


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
        raise ValueError(f"x: expected a real numeric array, got dtype {a.dtype}")
    a = a.astype(np.float64, copy=False)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"x: expected a [T, N] or [T] array, got shape {a.shape}")
    dims = _check_int("dims", dims, 1)
    lag = _check_int("lag", lag, 1)
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


# ----------------------------------------------------------------------------------------------
# Loading recorded data
# ----------------------------------------------------------------------------------------------


def load_timeseries(path: Union[str, "os.PathLike[str]"], dt: float = 1.0, zscore: bool = True,
                    columns: Optional[Sequence[Union[int, str]]] = None,
                    allow_missing: bool = False) -> TimeSeries:
    """Load a recorded time series from ``.npy`` (``[T, N]`` or ``[T]``) or ``.csv``.

    CSV: comma-separated numbers, one time step per line, an optional header line of column names,
    blank lines and lines starting with ``#`` skipped. ``columns`` selects columns by index
    (0-based) or, with a header, by name. Raises ValueError naming the problem: unknown extension,
    not 2-D, non-numeric entries (with line and column), fewer than 2 time steps, NaN/inf (with the
    time step and column), a constant column when ``zscore`` (z-scoring impossible). With
    ``allow_missing`` NaN (and empty CSV fields) are missing values, kept as NaN; inf still raises.

    Returns:
        TimeSeries with ``x`` ``[T, N]`` float64, ``name`` the file's stem,
        ``params["columns"]`` the column names (or indices), ``meta["path"]`` the file.
    """
    path = os.fspath(path)
    dt = _check_positive("dt", dt)
    ext = os.path.splitext(path)[1].lower()
    header: Optional[List[str]] = None
    lines: Optional[List[int]] = None  # file line of each time step (CSV)
    if ext == ".npy":
        data = series_array(read_npy(path), path)
    elif ext == ".csv":
        data, header, lines = _read_csv(path, allow_missing)
    else:
        raise ValueError(f"{path}: unknown extension {ext!r}; expected '.npy' or '.csv'")

    names: List[Union[int, str]] = (list(header) if header is not None
                                    else list(range(data.shape[1])))
    if columns is not None:
        if isinstance(columns, (str, int)):
            columns = [columns]
        idx = []
        for c in columns:
            if isinstance(c, str):
                if header is None:
                    raise ValueError(f"columns: {c!r} is a name but {path} has no header; "
                                     "use indices")
                if c not in header:
                    raise ValueError(f"columns: no column {c!r} in {path}; columns are {header}")
                idx.append(header.index(c))
            elif isinstance(c, numbers.Integral) and not isinstance(c, (bool, np.bool_)):
                if not -data.shape[1] <= c < data.shape[1]:
                    raise ValueError(f"columns: index {c} out of range for {data.shape[1]} "
                                     "column(s)")
                idx.append(int(c) % data.shape[1])
            else:
                raise ValueError(f"columns: expected column indices or names, got {c!r}")
        if not idx:
            raise ValueError("columns: selects no column")
        data = data[:, idx]
        names = [names[i] for i in idx]

    if data.shape[0] < 2:
        raise ValueError(f"{path}: fewer than 2 time steps ({data.shape[0]}); "
                         "a time series needs T >= 2")
    if data.shape[1] < 1:
        raise ValueError(f"{path}: no columns")
    bad = np.isinf(data) if allow_missing else ~np.isfinite(data)
    if bad.any():
        t, j = (int(i) for i in np.argwhere(bad)[0])
        where = f"time step {t}" + (f" (line {lines[t]})" if lines is not None else "")
        what = "inf" if allow_missing else "NaN or inf"
        raise ValueError(f"{path}: contains {what} ({int(bad.sum())} value(s)); "
                         f"first at {where}, column {names[j]!r}")
    if allow_missing and np.isnan(data).all():
        raise ValueError(f"{path}: every value is missing (NaN)")
    mean = std = None
    if zscore:
        try:
            data, mean, std = _zscore(data, path)
        except ValueError as exc:
            raise ValueError(f"{exc}; columns named {names}") from None
    stem = os.path.splitext(os.path.basename(path))[0]
    return TimeSeries(x=data, s=None, dt=dt, name=stem, params={"columns": names},
                      lyapunov_max=None, mean=mean, std=std,
                      meta={"path": path, "header": header}, missing=allow_missing)


def read_npy(path: str) -> np.ndarray:
    """A .npy file without trusting its header: memory-mapped first, so a header that declares
    more data than the file holds fails before anything is allocated; ValueError naming the path."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:  # object arrays, corrupt or truncated files
        raise ValueError(f"{path}: cannot read as a numeric .npy array ({exc})") from None


def series_array(raw, where: str) -> np.ndarray:
    """A real numeric ``[T, N]`` (or ``[T]``) array as a float64 ``[T, N]`` copy; ValueError naming
    ``where`` otherwise. Values are not checked here (finite, missing: the caller's rule)."""
    if not isinstance(raw, np.ndarray) or raw.dtype.kind not in "biuf":
        raise ValueError(f"{where}: expected a real numeric array, got dtype "
                         f"{getattr(raw, 'dtype', type(raw).__name__)}")
    if raw.ndim == 1:
        raw = raw[:, None]
    if raw.ndim != 2:
        raise ValueError(f"{where}: expected a 2-D [T, N] (or 1-D [T]) array, got shape {raw.shape}")
    return np.array(raw, dtype=np.float64)


def _read_csv(path: str, allow_missing: bool = False) -> Tuple[np.ndarray, Optional[List[str]], List[int]]:
    rows: List[List[float]] = []
    line_of: List[int] = []
    header: Optional[List[str]] = None
    width: Optional[int] = None
    with open(path, newline="") as fh:
        for lineno, fields in enumerate(csv.reader(fh), start=1):
            if (not fields or all(not f.strip() for f in fields)
                    or fields[0].lstrip().startswith("#")):
                continue
            fields = [f.strip() for f in fields]
            values = []
            for col, f in enumerate(fields):
                if allow_missing and f == "":
                    values.append(math.nan)  # an empty field: a missing value
                    continue
                try:
                    values.append(float(f))
                except ValueError:
                    values = None
                    bad = (col, f)
                    break
            if values is None:
                if header is None and width is None:  # the first content line: a header
                    header = fields
                    width = len(fields)
                    continue
                col, f = bad
                raise ValueError(f"{path}: line {lineno}, column {col}: {f!r} is not a number")
            if width is None:
                width = len(values)
            elif len(values) != width:
                raise ValueError(f"{path}: line {lineno} has {len(values)} field(s), "
                                 f"expected {width}")
            rows.append(values)
            line_of.append(lineno)
    if width is None:
        raise ValueError(f"{path}: no data (fewer than 2 time steps)")
    data = np.array(rows, dtype=np.float64).reshape(len(rows), width)
    return data, header, line_of
