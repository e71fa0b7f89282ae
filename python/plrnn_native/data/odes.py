"""The benchmark ODEs: right-hand side ``f(t, x)``, exact Jacobian ``df/dx``, an initial-condition
sampler near the attractor and, for driven systems, the input ``s(t)``; and the DOP853 integration
that every generator and :func:`plrnn_native.data.lyapunov_max` use.

Each built-in system also names its native twin (``System.native``: the name and parameters of the
same right-hand side in ``csrc/data/systems.h``), which :func:`solve` integrates in C++ with the
steps of SciPy's DOP853 (``csrc/data/dop853.h``): a 10^5-sample Lorenz-63 trajectory takes well under a
second instead of about 17 s in ``scipy.integrate.solve_ivp``, whose stepper runs in Python. Other
right-hand sides (the variational equations of :func:`lyapunov_max`) go to SciPy."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np

RHS = Callable[[float, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class System:
    n: int  # state dimension
    rhs: RHS  # f(t, x) -> dx/dt, [n]
    jac: Callable[[float, np.ndarray], np.ndarray]  # df/dx, [n, n]
    sample_x0: Callable[[np.random.Generator], np.ndarray]  # a point in the attractor's basin
    forcing: Optional[Callable[[np.ndarray], np.ndarray]] = None  # t [T] -> s [T, K]
    native: Optional[Tuple[str, Tuple[float, ...]]] = None  # (name, params) in csrc/data/systems.h


def lorenz63_system(sigma: float, rho: float, beta: float) -> System:
    def rhs(t, u):
        x, y, z = u
        return np.array([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])

    def jac(t, u):
        x, y, z = u
        return np.array([[-sigma, sigma, 0.0], [rho - z, -1.0, -x], [y, x, -beta]])

    def x0(rng):
        return rng.uniform([-15.0, -20.0, 5.0], [15.0, 20.0, 40.0])

    return System(3, rhs, jac, x0, native=("lorenz63", (sigma, rho, beta)))


def lorenz96_system(N: int, F: float) -> System:
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

    return System(N, rhs, jac, x0, native=("lorenz96", (float(N), F)))


def rossler_system(a: float, b: float, c: float) -> System:
    def rhs(t, u):
        x, y, z = u
        return np.array([-y - z, x + a * y, b + z * (x - c)])

    def jac(t, u):
        x, _, z = u
        return np.array([[0.0, -1.0, -1.0], [1.0, a, 0.0], [z, 0.0, x - c]])

    def x0(rng):
        return rng.uniform([-5.0, -5.0, 0.0], [5.0, 5.0, 1.0])

    return System(3, rhs, jac, x0, native=("rossler", (a, b, c)))


def hindmarsh_rose_system(a, b, c, d, r, s, x_rest, I_ext) -> System:
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

    return System(3, rhs, jac, x0, native=("hindmarsh_rose", (a, b, c, d, r, s, x_rest, I_ext)))


def van_der_pol_system(mu: float) -> System:
    def rhs(t, u):
        x, y = u
        return np.array([y, mu * (1.0 - x * x) * y - x])

    def jac(t, u):
        x, y = u
        return np.array([[0.0, 1.0], [-2.0 * mu * x * y - 1.0, mu * (1.0 - x * x)]])

    def x0(rng):
        return rng.uniform([-2.5, -2.5], [2.5, 2.5])

    return System(2, rhs, jac, x0, native=("van_der_pol", (mu,)))


def duffing_system(delta, alpha, beta, gamma=0.0, omega=0.0) -> System:
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

    return System(2, rhs, jac, x0, forcing if (gamma, omega) != (0.0, 0.0) else None,
                  native=("duffing", (delta, alpha, beta, gamma, omega)))


def solve(rhs: RHS, t0: float, t1: float, u0: np.ndarray, rtol: float, atol: float,
          t_eval: Optional[np.ndarray] = None,
          native: Optional[Tuple[str, Tuple[float, ...]]] = None) -> np.ndarray:
    """DOP853 from t0 to t1; the states at ``t_eval`` ([len, n]) or the final state ([n]).

    With ``native`` (a ``System.native``, the same right-hand side as ``rhs``) the integration runs in
    C++ (``_core.ode_integrate``), step for step SciPy's; otherwise ``scipy.integrate.solve_ivp``.
    """
    if native is not None and t1 > t0:
        from .._core import ode_integrate

        name, params = native
        u_end, states = ode_integrate(
            name, [float(p) for p in params], np.ascontiguousarray(u0, dtype=np.float64), float(t0),
            float(t1), float(rtol), float(atol),
            None if t_eval is None else np.ascontiguousarray(t_eval, dtype=np.float64))
        y = states if t_eval is not None else u_end
    else:
        from scipy.integrate import solve_ivp

        sol = solve_ivp(rhs, (t0, t1), u0, method="DOP853", t_eval=t_eval, rtol=rtol, atol=atol)
        if sol.status != 0:
            raise RuntimeError(f"ODE integration failed at t = {sol.t[-1] if sol.t.size else t0}: "
                               f"{sol.message}")
        y = sol.y.T if t_eval is not None else sol.y[:, -1]
    if not np.isfinite(y).all():
        raise RuntimeError("ODE integration diverged (non-finite state); check x0 and parameters")
    return y
