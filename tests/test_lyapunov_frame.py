"""The native QR method of the Lyapunov spectrum (csrc/analysis/lyapunov.h, ``_core.lyapunov_frame``)
against its NumPy reference (``reference.lyapunov_frame``: the same loop with NumPy's QR), and
``metrics.lyapunov_spectrum`` built on it.

Tolerance. Both sides form each J_s Q and a Householder QR in float64 (Eigen's and LAPACK's reflectors
differ in rounding, and the column signs of Q may differ, which leaves |R_ii| unchanged). One step is
backward stable: the computed R is the exact one of J_s Q + E with ||E|| <= c M u ||J_s|| ||Q||
(u = 2^-53), so each log|R_ii| moves by at most about c M u cond(J_s). The frame's own errors do not
grow: with distinct exponents the frame converges to the same orientation from nearby starts, so the
error of each of the T per-step terms keeps that bound, and so does their mean, the exponent. The
tests take c = 16 and bound the sum of the terms by the sum of the per-step bounds; with several steps
between QRs, a block's product of Jacobians takes the place of the step (its condition grows with the
block: that is why large ``renorm_every`` loses the small exponents).
"""

from __future__ import annotations

import re

import numpy as np
import plrnn_native as pn
import pytest
from plrnn_native import _core, metrics
from plrnn_native import reference as ref

U = np.finfo(np.float64).eps / 2


def named(arg: str) -> str:
    return rf"\b{re.escape(arg)}\b"


def random_jacobians(n, M, seed, scale=1.0):
    """Well-conditioned random maps with distinct growth rates (a stationary random product)."""
    rng = np.random.default_rng(seed)
    rates = np.exp(np.linspace(0.3, -0.6, M))
    return scale * (np.diag(rates) + 0.3 * rng.standard_normal((n, M, M)) / np.sqrt(M))


def step_bound(J):
    """c M u max cond(J_s): the bound of one step's change of a log|R_ii| (module docstring)."""
    return 16 * J.shape[-1] * U * max(np.linalg.cond(J).max(), 1.0)


def blocks_bound(J, transient, total, every):
    """The bound of the counted sum when several steps pass between QRs: each QR's terms move by
    c M u cond(the block's product of Jacobians) (module docstring, with the block as the step)."""
    ends = sorted(set(range(every, transient, every)) | {transient, total}
                  | set(range(transient + every, total, every)))
    bound, start = 0.0, 0
    for end in ends:
        if end <= start:
            continue
        if end > transient:
            product = np.linalg.multi_dot(list(J[start:end][::-1])) if end - start > 1 else J[start]
            bound += 16 * J.shape[-1] * U * max(np.linalg.cond(product), 1.0)
        start = end
    return bound


@pytest.mark.parametrize("M,k", [(1, 1), (3, 3), (3, 2), (8, 8), (8, 3), (13, 13)])
@pytest.mark.parametrize("transient,renorm_every", [(0, 1), (5, 1), (12, 3), (7, 5), (0, 8), (40, 1)])
def test_frame_matches_the_numpy_reference(M, k, transient, renorm_every):
    total = 60 if transient < 40 else 41
    J = random_jacobians(total, M, seed=M * 100 + k)
    Q0 = np.eye(M, k)
    Q, growth = _core.lyapunov_frame(J, Q0, 0, transient, total, renorm_every)
    Q_ref, growth_ref = ref.lyapunov_frame(J, Q0, 0, transient, total, renorm_every)
    np.testing.assert_allclose(growth, growth_ref, rtol=0, atol=blocks_bound(J, transient, total, renorm_every))
    # the frames are the same up to the signs of their columns, and orthonormal
    signs = np.sign(np.sum(Q * Q_ref, axis=0))
    np.testing.assert_allclose(Q * signs, Q_ref, rtol=0, atol=total * step_bound(J))
    np.testing.assert_allclose(Q.T @ Q, np.eye(k), rtol=0, atol=16 * M * U)
    assert not np.shares_memory(Q, Q0) and np.array_equal(Q0, np.eye(M, k))  # the input is not written


def test_chunks_carry_the_frame_exactly():
    """A run cut into chunks (as lyapunov_spectrum calls it) has the frame of one call, bit for bit."""
    M, total, transient, every = 5, 97, 11, 4
    J = random_jacobians(total, M, seed=3)
    Q_one, g_one = _core.lyapunov_frame(J, np.eye(M), 0, transient, total, every)
    Q, g = np.eye(M), np.zeros(M)
    for c0, c1 in [(0, 10), (10, 11), (11, 50), (50, 97)]:
        Q, part = _core.lyapunov_frame(J[c0:c1], Q, c0, transient, total, every)
        g += part
    assert np.array_equal(Q, Q_one)
    np.testing.assert_allclose(g, g_one, rtol=4 * U * 4, atol=0)  # 4 partial sums added


def test_counting_starts_after_the_transient():
    """Only QRs after the transient count: a growth of e per step before it adds nothing."""
    M, total, transient = 2, 30, 10
    J = np.stack([np.diag([np.e, 1.0])] * transient + [np.diag([2.0, 0.5])] * (total - transient))
    _, growth = _core.lyapunov_frame(J, np.eye(M), 0, transient, total, 1)
    np.testing.assert_allclose(growth, [20 * np.log(2.0), 20 * np.log(0.5)], rtol=4 * U * 20)


def test_singular_step_gives_minus_infinity_like_numpy():
    M, total = 3, 8
    Jsing = random_jacobians(total, M, seed=5)
    Jsing[4] = 0.0  # the frame is mapped to zero: every R_ii of the QR after step 4 is 0
    _, growth = _core.lyapunov_frame(Jsing, np.eye(M), 0, 0, total, 1)
    _, growth_ref = ref.lyapunov_frame(Jsing, np.eye(M), 0, 0, total, 1)
    assert np.all(growth == -np.inf) and np.all(growth_ref == -np.inf)


def test_frame_overflow_names_renorm_every():
    J = np.stack([np.eye(2) * 1e200] * 6)
    with pytest.raises(OverflowError, match=named("renorm_every")):
        _core.lyapunov_frame(J, np.eye(2), 0, 0, 6, 3)
    _, growth = _core.lyapunov_frame(J, np.eye(2), 0, 0, 6, 1)  # renormalised every step: fine
    np.testing.assert_allclose(growth, [6 * np.log(1e200)] * 2, rtol=1e-15)


@pytest.mark.parametrize(
    "J,Q,kw,exc,name",
    [
        (np.eye(3)[None].astype(np.float32), np.eye(3), {}, TypeError, "J"),
        (np.eye(3)[None], np.eye(3).astype(np.float32), {}, TypeError, "Q"),
        (np.eye(3)[None], [[1.0]], {}, TypeError, "Q"),
        (np.eye(3), np.eye(3), {}, ValueError, "J"),
        (np.eye(3)[None], np.eye(4), {}, ValueError, "J"),
        (np.eye(3)[None], np.eye(3, 4), {}, ValueError, "Q"),
        (np.eye(3)[None], np.eye(3)[:, ::2], {}, ValueError, "Q"),
        (np.full((1, 3, 3), np.nan), np.eye(3), {}, ValueError, "J"),
        (np.eye(3)[None], np.full((3, 3), np.inf), {}, ValueError, "Q"),
        (np.eye(3)[None], np.eye(3), dict(renorm_every=0), ValueError, "renorm_every"),
        (np.eye(3)[None], np.eye(3), dict(total=0), ValueError, "total"),
        (np.eye(3)[None], np.eye(3), dict(first=5), ValueError, "J"),
        (np.eye(3)[None], np.eye(3), dict(first=-1), ValueError, "J"),
    ],
)
def test_bad_arguments_raise_naming_them(J, Q, kw, exc, name):
    args = dict(first=0, transient=0, total=5, renorm_every=1) | kw
    with pytest.raises(exc, match=named(name)):
        _core.lyapunov_frame(J, Q, **args)


def test_non_contiguous_jacobians_are_refused():
    J = np.stack([np.eye(3)] * 4)[::2]
    with pytest.raises(ValueError, match=named("J")):
        _core.lyapunov_frame(J, np.eye(3), 0, 0, 5, 1)


@pytest.mark.parametrize(
    "kind,kw",
    [("shallow", dict(M=3, hidden=20)), ("standard", dict(M=6)), ("alrnn", dict(M=5, P=2)),
     ("dendritic", dict(M=4, bases=3))],
)
def test_lyapunov_spectrum_equals_the_reference_loop(kind, kw):
    """The public function on a model's own trajectory, against the reference loop over the same
    Jacobians (model.jacobian) and schedule."""
    model = pn.PLRNN(kind, N=3, dtype="float64", seed=1, **kw)
    T, transient, every = 600, 50, 3
    got = metrics.lyapunov_spectrum(model, T=T, transient=transient, renorm_every=every, seed=2)
    z0 = np.random.default_rng(2).standard_normal(model.M)
    _, z = model.generate(T + transient, z0=z0, return_latent=True)
    J = model.jacobian(z).astype(np.float64)
    _, growth = ref.lyapunov_frame(J, np.eye(model.M), 0, transient, T + transient, every)
    expected = np.sort(growth / T)[::-1]
    np.testing.assert_allclose(got, expected, rtol=0, atol=step_bound(J) + 1e-300)
