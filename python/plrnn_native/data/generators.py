"""The benchmark data generators, their registry (:func:`systems`, :func:`make`) and the largest
Lyapunov exponent of each ODE (:func:`lyapunov_max`).

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
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from .._validation import as_seed_sequence, as_vector, check_bool, check_float, check_int
from .odes import (duffing_system, hindmarsh_rose_system, lorenz63_system, lorenz96_system,
                   rossler_system, solve, System, van_der_pol_system)
from .series import TimeSeries, apply_zscore

LYAPUNOV_LORENZ63 = 0.9056  # sigma=10, rho=28, beta=8/3 (Sprott, "Chaos and Time-Series Analysis")
LYAPUNOV_ROSSLER = 0.0714  # a=b=0.2, c=5.7 (Sprott)



def _real(name: str, value) -> float:
    return check_float(name, value)


def _positive(name: str, value) -> float:
    return check_float(name, value, lo=0.0, lo_open=True)


def _nonneg(name: str, value) -> float:
    return check_float(name, value, lo=0.0)


def _integration_args(transient, rtol, atol):
    """The transient (time units, >= 0) and the DOP853 tolerances (> 0), checked."""
    return _nonneg("transient", transient), _positive("rtol", rtol), _positive("atol", atol)


# ----------------------------------------------------------------------------------------------
# The common integration recipe
# ----------------------------------------------------------------------------------------------


def _generate(name: str, system: System, params: Dict[str, Any], lyap: Optional[float], *, T, dt,
              seed, obs_noise, process_noise, transient, zscore, x0, rtol, atol) -> TimeSeries:
    T = check_int("T", T, 2)
    dt = _positive("dt", dt)
    obs_noise = _nonneg("obs_noise", obs_noise)
    process_noise = _nonneg("process_noise", process_noise)
    transient, rtol, atol = _integration_args(transient, rtol, atol)
    check_bool("zscore", zscore)
    ss = as_seed_sequence("seed", seed)
    rng_x0, rng_process, rng_obs = (np.random.default_rng(c) for c in ss.spawn(3))

    u0 = system.sample_x0(rng_x0) if x0 is None else as_vector("x0", x0, system.n)
    t_eval = transient + dt * np.arange(T)  # [T]

    if process_noise == 0.0:
        x = solve(system.rhs, 0.0, float(t_eval[-1]), u0, rtol, atol, t_eval=t_eval,
                  native=system.native)
    else:
        u = u0.copy()
        n_tr = math.ceil(transient / dt - 1e-9) if transient > 0 else 0
        for j in range(n_tr):  # the transient, with kicks after every (at most dt long) interval
            ta, tb = j * dt, min((j + 1) * dt, transient)
            u = solve(system.rhs, ta, tb, u, rtol, atol, native=system.native)
            u = u + process_noise * rng_process.standard_normal(system.n)
        x = np.empty((T, system.n))
        x[0] = u
        for k in range(1, T):
            u = solve(system.rhs, float(t_eval[k - 1]), float(t_eval[k]), u, rtol, atol,
                      native=system.native)
            u = u + process_noise * rng_process.standard_normal(system.n)
            x[k] = u
    x = np.ascontiguousarray(x, dtype=np.float64)  # [T, n]

    if obs_noise > 0.0:
        x = x + obs_noise * x.std(axis=0) * rng_obs.standard_normal(x.shape)

    mean = std = None
    if zscore:
        x, mean, std = apply_zscore(x, "x")

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
    p = {"sigma": _real("sigma", sigma), "rho": _real("rho", rho),
         "beta": _real("beta", beta)}
    standard = np.allclose([p["sigma"], p["rho"], p["beta"]], [10.0, 28.0, 8.0 / 3.0], rtol=1e-12)
    return _generate("lorenz63", lorenz63_system(**p), p, LYAPUNOV_LORENZ63 if standard else None,
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
    N = check_int("N", N, 4)
    p = {"N": N, "F": _real("F", F)}
    return _generate("lorenz96", lorenz96_system(N, p["F"]), p, None, T=T, dt=dt, seed=seed,
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
    p = {"a": _real("a", a), "b": _real("b", b), "c": _real("c", c)}
    standard = np.allclose([p["a"], p["b"], p["c"]], [0.2, 0.2, 5.7], rtol=1e-12)
    return _generate("rossler", rossler_system(**p), p, LYAPUNOV_ROSSLER if standard else None,
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
    p = {k: _real(k, v) for k, v in
         {"a": a, "b": b, "c": c, "d": d, "r": r, "s": s, "x_rest": x_rest, "I_ext": I_ext}.items()}
    return _generate("hindmarsh_rose", hindmarsh_rose_system(**p), p, None, T=T, dt=dt, seed=seed,
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
    mu = _real("mu", mu)
    if mu <= 0.0:
        raise ValueError(f"mu: must be > 0 for a limit cycle, got {mu}")
    return _generate("van_der_pol", van_der_pol_system(mu), {"mu": mu}, 0.0, T=T, dt=dt, seed=seed,
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
    p = {"delta": _nonneg("delta", delta), "alpha": _real("alpha", alpha),
         "beta": _real("beta", beta)}
    return _generate("duffing", duffing_system(**p), p, None, T=T, dt=dt, seed=seed,
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
    p = {"delta": _nonneg("delta", delta), "alpha": _real("alpha", alpha),
         "beta": _real("beta", beta), "gamma": _real("gamma", gamma),
         "omega": _real("omega", omega)}
    system = duffing_system(**p)
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
    "lorenz63": (lorenz63_system, {"sigma": 10.0, "rho": 28.0, "beta": 8.0 / 3.0}),
    "lorenz96": (lorenz96_system, {"N": 10, "F": 8.0}),
    "rossler": (rossler_system, {"a": 0.2, "b": 0.2, "c": 5.7}),
    "hindmarsh_rose": (hindmarsh_rose_system,
                       {"a": 1.0, "b": 3.0, "c": 1.0, "d": 5.0, "r": 0.006, "s": 4.0,
                        "x_rest": -1.6, "I_ext": 3.25}),
    "van_der_pol": (van_der_pol_system, {"mu": 1.0}),
    "duffing": (duffing_system, {"delta": 0.1, "alpha": -1.0, "beta": 1.0}),
    "driven_duffing": (duffing_system,
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
    t_total = _positive("t_total", t_total)
    t_renorm = _positive("t_renorm", t_renorm)
    t_align = _nonneg("t_align", t_align)
    transient, rtol, atol = _integration_args(transient, rtol, atol)
    rng_x0, rng_v = (np.random.default_rng(c) for c in as_seed_sequence("seed", seed).spawn(2))
    n = system.n
    u = system.sample_x0(rng_x0) if x0 is None else as_vector("x0", x0, n)
    if transient > 0:
        u = solve(system.rhs, 0.0, transient, u, rtol, atol, native=system.native)
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
        w = solve(rhs, t, t + t_renorm, w, rtol, atol)
        t += t_renorm
        growth = np.linalg.norm(w[n:])
        w[n:] /= growth
        if j >= n_align:
            local[j - n_align] = math.log(growth) / t_renorm
    lam = float(local.mean())
    return (lam, local) if return_local else lam
