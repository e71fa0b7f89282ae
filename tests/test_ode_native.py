"""The native DOP853 integrator of the benchmark data (csrc/data/dop853.h, ``_core.ode_integrate``)
against SciPy's ``solve_ivp(method="DOP853")``, whose steps it takes.

Tolerances: both integrators take the same steps with the same coefficients and differ only in the
order of floating-point sums, so their states differ by rounding (measured: at most 8e-13 relative to
the state's scale over the horizons below). The bound used, rtol / 10 = 1e-11 relative, is a tenth
of the error either makes against the true solution at rtol = 1e-10 (measured 8e-11 to 1e-8 here), so a
test fails if a step, a coefficient or the dense output differed, and not because of rounding.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from plrnn_native import _core
from plrnn_native.data import odes
from scipy.integrate import solve_ivp

RTOL, ATOL = 1e-10, 1e-12

# (system, horizon, initial state): short enough that the chaotic ones stay close to SciPy's run
CASES = [
    (odes.lorenz63_system(10.0, 28.0, 8.0 / 3.0), 2.0, [1.0, 2.0, 20.0]),
    (odes.lorenz96_system(10, 8.0), 2.0, 8.0 + 0.1 * np.arange(10)),
    (odes.rossler_system(0.2, 0.2, 5.7), 20.0, [1.0, 1.0, 0.5]),
    (odes.hindmarsh_rose_system(1.0, 3.0, 1.0, 5.0, 0.006, 4.0, -1.6, 3.25), 50.0, [-1.0, -5.0, 3.0]),
    (odes.van_der_pol_system(2.0), 50.0, [1.0, 0.5]),
    (odes.duffing_system(0.3, -1.0, 1.0, 0.5, 1.2), 20.0, [1.0, 0.0]),
]
IDS = [c[0].native[0] for c in CASES]


def _native(system, t1, u0, t_eval=None, t0=0.0):
    name, params = system.native
    return _core.ode_integrate(name, list(params), np.asarray(u0, dtype=np.float64), t0, t1, RTOL, ATOL,
                               t_eval)


@pytest.mark.parametrize("system, t1, u0", CASES, ids=IDS)
def test_native_takes_scipys_steps(system, t1, u0):
    u0 = np.asarray(u0, dtype=np.float64)
    t_eval = np.linspace(0.0, t1, 201)
    ref = solve_ivp(system.rhs, (0.0, t1), u0, method="DOP853", t_eval=t_eval, rtol=RTOL, atol=ATOL)
    u_end, states = _native(system, t1, u0, t_eval)
    scale = np.abs(ref.y).max()
    assert states.shape == (201, system.n) and states.dtype == np.float64
    np.testing.assert_allclose(states, ref.y.T, rtol=0, atol=RTOL / 10 * scale)
    np.testing.assert_array_equal(states[0], u0)  # the dense output at x = 0 is the initial state
    np.testing.assert_array_equal(u_end, states[-1])
    # without t_eval: the same end state
    u_end2, none = _native(system, t1, u0)
    assert none is None
    np.testing.assert_array_equal(u_end2, u_end)


@pytest.mark.parametrize("system, t1, u0", CASES[:2], ids=IDS[:2])
def test_native_is_as_accurate_as_scipy(system, t1, u0):
    u0 = np.asarray(u0, dtype=np.float64)
    t_eval = np.linspace(0.0, t1, 51)
    exact = solve_ivp(system.rhs, (0.0, t1), u0, method="DOP853", t_eval=t_eval, rtol=1e-13,
                      atol=1e-14).y.T
    scipy_err = np.abs(solve_ivp(system.rhs, (0.0, t1), u0, method="DOP853", t_eval=t_eval, rtol=RTOL,
                                 atol=ATOL).y.T - exact).max()
    native_err = np.abs(_native(system, t1, u0, t_eval)[1] - exact).max()
    assert native_err <= 1.01 * scipy_err


def test_solve_uses_the_native_twin_and_keeps_scipys_semantics():
    system = odes.lorenz63_system(10.0, 28.0, 8.0 / 3.0)
    u0 = np.array([1.0, 2.0, 20.0])
    t_eval = np.linspace(0.5, 1.5, 11)
    native = odes.solve(system.rhs, 0.0, 1.5, u0, RTOL, ATOL, t_eval=t_eval, native=system.native)
    python = odes.solve(system.rhs, 0.0, 1.5, u0, RTOL, ATOL, t_eval=t_eval)
    np.testing.assert_allclose(native, python, rtol=0, atol=RTOL / 10 * np.abs(python).max())
    end = odes.solve(system.rhs, 0.0, 1.5, u0, RTOL, ATOL, native=system.native)
    np.testing.assert_array_equal(end, native[-1])


def test_blow_up_raises_runtime_error():
    # dx/dt ~ x^3 (a < 0) leaves every finite range in finite time
    name, params = odes.hindmarsh_rose_system(-1.0, 3.0, 1.0, 5.0, 0.006, 4.0, -1.6, 3.25).native
    with pytest.raises(RuntimeError, match="ODE integration failed at t = "):
        _core.ode_integrate(name, list(params), np.array([10.0, 0.0, 0.0]), 0.0, 1.0, RTOL, ATOL)


@pytest.mark.parametrize("kwargs, match", [
    ({"system": "lorenz64"}, "system: unknown built-in system 'lorenz64'"),
    ({"params": [10.0, 28.0]}, "params: system 'lorenz63' takes 3 parameters, got 2"),
    ({"params": [10.0, np.nan, 1.0]}, "params: must be finite"),
    ({"system": "lorenz96", "params": [3.0, 8.0]}, "params: lorenz96 needs an integer N >= 4"),
    ({"u0": np.zeros(2)}, r"u0: expected a float64 array of shape \[3\]"),
    ({"u0": np.zeros(3, dtype=np.float32)}, r"u0: expected a float64 array of shape \[3\]"),
    ({"u0": np.array([1.0, np.inf, 0.0])}, "u0: must be finite"),
    ({"t1": 0.0}, "t0, t1: need finite t0 < t1"),
    ({"t1": np.nan}, "t0, t1: need finite t0 < t1"),
    ({"rtol": 0.0}, "rtol: must be finite and > 0"),
    ({"atol": -1.0}, "atol: must be finite and > 0"),
    ({"t_eval": np.array([0.5, 0.2])}, "t_eval: the times must increase strictly"),
    ({"t_eval": np.array([0.5, 2.0])}, r"t_eval: the times must lie in \[t0, t1\]"),
    ({"t_eval": np.array([0.5, np.nan])}, r"t_eval: the times must lie in \[t0, t1\]"),
    ({"t_eval": np.zeros((2, 2))}, "t_eval: expected a 1-d float64 array"),
    ({"t_eval": np.array([1, 2], dtype=np.int64)}, "t_eval: expected a 1-d float64 array"),
])
def test_bad_input_names_the_argument(kwargs, match):
    args = {"system": "lorenz63", "params": [10.0, 28.0, 8.0 / 3.0], "u0": np.array([1.0, 2.0, 20.0]),
            "t0": 0.0, "t1": 1.0, "rtol": RTOL, "atol": ATOL, "t_eval": None, **kwargs}
    with pytest.raises(ValueError, match=match):
        _core.ode_integrate(**args)


def test_inputs_are_not_modified():
    u0 = np.array([1.0, 2.0, 20.0])
    u0.flags.writeable = False
    t_eval = np.linspace(0.0, 1.0, 5)[::-1][::-1]  # a view
    _core.ode_integrate("lorenz63", [10.0, 28.0, 8.0 / 3.0], u0, 0.0, 1.0, RTOL, ATOL, t_eval)
    np.testing.assert_array_equal(u0, [1.0, 2.0, 20.0])


# SHA-256 of the states at t = 0.01, 0.02, ..., 200 (float64, little-endian) from the initial states of CASES,
# rtol 1e-10, atol 1e-12: recorded on AMD Zen 4 with the native build (-march=native, AVX-512 and FMA) and a
# portable one (PLRNN_NATIVE_ARCH=OFF: SSE2, no FMA), which agreed; before the integration was compiled
# without fused multiply-adds (CMakeLists.txt, -ffp-contract=off) every system differed between the two.
GOLDEN = {
    "lorenz63": "6c896b79fcf6dfd69681d8f1938f0d58dcb6cafa0163c4bce7f9bd4a642a475a",
    "lorenz96": "beeaf9cefe5b9a48b3f73f68e423bc2f3d88af0d78cfa1bdd6aa8ea275f2ca2a",
    "rossler": "3b755ca18d0436f98c3dd62865692f23f52b7cb445085a715efcd89e571d0f95",
    "hindmarsh_rose": "89b2b7f6b64b7af651909a636994345ab7bcd375bd7f6bf6247223afb1de177a",
    "van_der_pol": "bcadc898e6ecc03973285b5062c0f256a05ff346b48bc2a416d9850401738a6c",
    "duffing": "6945a656b24c5a8bf9b079c019655b958396e5b37c207946ab008fbbdfb87e83",
}


@pytest.mark.parametrize("system, u0", [(c[0], c[2]) for c in CASES], ids=IDS)
def test_the_same_bits_on_every_build_and_machine(system, u0):
    """The built-in data sets are a function of their settings and seed alone: 20 000 states of each system
    over 200 time units (chaotic ones: any difference in a last bit has grown to the attractor's size by
    then) hash to the values recorded above, whatever CPU and build flags compiled the integrator. Its
    arithmetic is IEEE additions, products, quotients and square roots, each rounded on its own, plus
    libm's pow and cos."""
    name, params = system.native
    t_eval = np.arange(1, 20_001) * 0.01
    _, states = _core.ode_integrate(name, list(params), np.asarray(u0, dtype=np.float64), 0.0, 200.0, RTOL,
                                    ATOL, t_eval)
    digest = hashlib.sha256(np.ascontiguousarray(states, dtype="<f8").tobytes()).hexdigest()
    assert digest == GOLDEN[name], f"{name}: the integration's bits changed (state at t = 200: {states[-1]})"
