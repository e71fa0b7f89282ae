"""Missing values: the native mask of ``rollout``/``loss_and_grad`` and the Trainer's NaN handling.

Semantics (docs/model.md, "Missing values"; NumPy reference ``reference.forward``/``loss_and_grad``
with a 0/1 mask): residuals of missing entries are zeroed, the loss is the mean over the observed
entries at t >= 1 (0 when none), forcing pulls only the observed entries and the initial state reads
``mask * x_0``. Checked here:

* native against the reference, float64 and float32, with the derived tolerances of
  ``test_native_vs_reference`` (every kind x observation x forcing mode);
* the reference's (and the native) masked gradient against float64 central differences, with the
  derived finite-difference tolerance of ``_common.assert_directional_derivative``;
* exactness: a missing entry has exactly zero effect (any value there: identical loss, gradients,
  predictions), an all-True mask equals no mask, a fully masked batch gives 0 and zero gradients;
* thread-count independence, bad masks, the CUDA refusal;
* the Trainer: NaN in the data, the missing fraction, windows never crossing a series boundary,
  a training step equal to the native masked loss and gradient, bad data.

The data at missing positions are drawn large (GARBAGE) so that any leak shows.
"""

from __future__ import annotations

import math
import zlib
from types import SimpleNamespace

import numpy as np
import plrnn_native as pn
import pytest
from _common import (
    FORCING_MODES,
    U64,
    VARIANTS,
    assert_directional_derivative,
    make_cfg,
    random_data,
    random_params,
    ref,
    same_pattern,
)
from plrnn_native.training import BestModelSelector, Trainer, TrainConfig
from test_native_vs_reference import (
    DTYPES,
    KINK_MARGIN,
    _f32,
    assert_close,
    build_model,
    derived_tol,
)
from test_reference import BATCH, KIND_CASES, M, N, T, _direction, _n_ops

GARBAGE = 50.0  # scale of the values written at missing positions
P_MISSING = 0.3

GRID = pytest.mark.parametrize(
    "kind,extra", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS]
)
FORCINGS = pytest.mark.parametrize(
    "forcing,tau,alpha", [m[1:] for m in FORCING_MODES], ids=[m[0] for m in FORCING_MODES]
)
OBS = pytest.mark.parametrize("obs", ["identity", "linear"])
DTYPE = pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------
def random_mask(rng, shape, p_missing=P_MISSING):
    """Boolean mask (True observed) with a missing entry at t = 0, a fully missing time step and a
    fully observed one, so every branch (init, forcing, residual) meets both cases."""
    observed = rng.random(shape) >= p_missing
    observed[0, 0, 0] = False  # missing at t = 0 (initial state)
    observed[-1, 0, :] = True
    if shape[1] > 3:
        observed[0, 2, :] = False  # a whole time step missing
        observed[-1, 3, :] = True
    return observed


def masked_kink_margin(cfg, p, x, s, forcing, tau, alpha, Binv, m):
    """Distance to the nearest kink along the masked rollout. ReLU arguments that are exactly 0
    are left out: a missing entry of x_0 puts an exact 0 into z_0 (identity observation), in both
    precisions and for every parameter value, so it cannot flip between float32 and float64."""
    cache = ref.forward(cfg, p, x, s, forcing, tau, alpha, Binv, m)
    args = [np.abs(a[a != 0]) for a in ref.relu_arguments(cfg, p, cache["u"])]
    return min([float(np.min(a)) for a in args if a.size] or [np.inf])


def masked_pattern(cfg, p, x, s, forcing, tau, alpha, Binv, m):
    cache = ref.forward(cfg, p, x, s, forcing, tau, alpha, Binv, m)
    return tuple(a > 0 for a in ref.relu_arguments(cfg, p, cache["u"]))


def prepare_masked(kind, extra, obs, forcing, tau, alpha, dtype, Bsz=3, T_=12, M_=6, N_=3, K=2,
                   seed=0):
    """As ``test_native_vs_reference.prepare`` with a mask: kink-free along the *masked* rollout,
    garbage at the missing positions."""
    model = build_model(kind, M_, N_, K, obs, 2 if kind == "alrnn" else None,
                        extra.get("clipped", False), dtype)
    cfg = model.config
    rng = np.random.default_rng(seed)
    for _ in range(200):
        p64 = {k: _f32(v) for k, v in random_params(cfg, rng).items()}
        x64, s64 = (_f32(a) for a in random_data(cfg, rng, Bsz, T_))
        observed = random_mask(rng, x64.shape)
        x64 = np.where(observed, x64, _f32(GARBAGE * rng.standard_normal(x64.shape)))
        m64 = observed.astype(np.float64)
        Binv64 = np.linalg.pinv(p64["B"]) if obs == "linear" else None
        if masked_kink_margin(cfg, p64, x64, s64, forcing, tau, alpha, Binv64, m64) > KINK_MARGIN:
            break
    else:
        pytest.fail("could not draw kink-free masked test data")
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    for name, value in p64.items():
        model[name] = value.astype(dtype)
    return SimpleNamespace(
        model=model, cfg=cfg, rng=rng, observed=observed, n_ops=_n_ops(cfg, x64),
        p64=p64, p32=p32, x64=x64, s64=s64, m64=m64, Binv64=Binv64,
        x32=x64.astype(np.float32), s32=None if s64 is None else s64.astype(np.float32),
        m32=m64.astype(np.float32),
        Binv32=np.linalg.pinv(p32["B"]) if obs == "linear" else None,
        x=x64.astype(dtype), s=None if s64 is None else s64.astype(dtype), dtype=dtype,
    )


def _fargs(forcing, tau, alpha):
    return {"forcing": forcing, "tau": tau, "alpha": alpha}


def _assert_same(what, a, b):
    """Exactly equal values (the same floating-point numbers, +0 == -0)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, what
    assert np.array_equal(a, b), f"{what}: max diff {np.max(np.abs(a.astype(float) - b)):.3e}"


def _seed(*key):
    return zlib.crc32(repr(key).encode())


# ----------------------------------------------------------------------------------------------
# Native vs reference with a mask
# ----------------------------------------------------------------------------------------------
@DTYPE
@OBS
@FORCINGS
@GRID
def test_masked_native_matches_reference(kind, extra, forcing, tau, alpha, obs, dtype):
    c = prepare_masked(kind, extra, obs, forcing, tau, alpha, dtype,
                       seed=_seed("masked", kind, extra, forcing, tau, alpha, obs))
    fa = (forcing, tau, alpha)
    cfg = c.cfg
    r64 = ref.rollout(cfg, c.p64, c.x64, c.s64, *fa, c.Binv64, c.m64)
    r32 = ref.rollout(cfg, c.p32, c.x32, c.s32, *fa, c.Binv32, c.m32)
    xhat, z = c.model.rollout(c.x, c.s, return_latent=True, mask=c.observed, **_fargs(*fa))
    assert_close("masked xhat", xhat, r32[0], r64[0], dtype, c.n_ops)
    assert_close("masked z", z, r32[1], r64[1], dtype, c.n_ops)

    l64, g64 = ref.loss_and_grad(cfg, c.p64, c.x64, c.s64, *fa, c.Binv64, c.m64)
    l32, g32 = ref.loss_and_grad(cfg, c.p32, c.x32, c.s32, *fa, c.Binv32, c.m32)
    loss, grads = c.model.loss_and_grad(c.x, c.s, mask=c.observed, **_fargs(*fa))
    assert isinstance(loss, float)
    assert_close("masked loss", loss, l32, l64, dtype, c.n_ops)
    assert set(grads) == set(g64)
    for name in g64:
        assert_close(f"masked grad {name}", grads[name], g32[name], g64[name], dtype, c.n_ops)

    # The mask matters: the unmasked loss (garbage scored) is far from the masked one, and the
    # masked loss is the mean over the observed entries only.
    unmasked = c.model.loss_and_grad(c.x, c.s, **_fargs(*fa))[0]
    assert unmasked > 10 * loss
    resid = (r64[0][:, 1:] - c.x64[:, 1:]) * c.m64[:, 1:]
    assert l64 == pytest.approx(np.sum(resid**2) / np.count_nonzero(c.m64[:, 1:]), rel=1e-12)


def test_reference_mask_semantics_step_by_step():
    """The reference itself: identity forcing leaves a missing unit as it is, linear forcing
    uses mask * (x - B z), the initial state reads mask * x_0."""
    rng = np.random.default_rng(3)
    for obs in ("identity", "linear"):
        cfg = make_cfg("standard", 5, 3, 0, obs)
        p = random_params(cfg, rng)
        Binv = np.linalg.pinv(p["B"]) if obs == "linear" else None
        x = rng.standard_normal((2, 6, 3))
        m = np.ones_like(x)
        m[0, 0, 1] = m[1, 2, :] = m[0, 3, 2] = 0
        cache = ref.forward(cfg, p, x, None, "sparse", 1, None, Binv, m)
        z, u = cache["z"], cache["u"]
        x0 = x[:, 0] * m[:, 0]
        if obs == "identity":
            np.testing.assert_array_equal(z[:, 0, :3], x0)
            np.testing.assert_array_equal(z[:, 0, 3:], x0 @ p["L"].T)
        else:
            np.testing.assert_allclose(z[:, 0], x0 @ p["L"].T, rtol=1e-14)
        for t in range(1, 5):  # sparse tau = 1: forced at t >= 1
            if obs == "identity":
                want = np.where(m[:, t] != 0, x[:, t], z[:, t, :3])
                np.testing.assert_array_equal(u[:, t, :3], want)
                np.testing.assert_array_equal(u[:, t, 3:], z[:, t, 3:])
            else:
                resid = (x[:, t] - z[:, t] @ p["B"].T) * m[:, t]
                np.testing.assert_allclose(u[:, t], z[:, t] + resid @ Binv.T, rtol=1e-13, atol=1e-15)


# ----------------------------------------------------------------------------------------------
# Finite differences of the masked gradient (float64)
# ----------------------------------------------------------------------------------------------
def _fd_check_masked(cfg, params, x, s, forcing, tau, alpha, Binv, m, rng, evaluate):
    """``evaluate(params) -> (loss, grads)`` against central differences of its own loss along a
    random unit direction per parameter; patterns from the reference's masked forward pass."""
    loss, grads = evaluate(params)
    fa = (forcing, tau, alpha)
    cache = ref.forward(cfg, params, x, s, *fa, Binv, m)
    count = np.count_nonzero(m[:, 1:])
    r = (cache["xhat"][:, 1:] - x[:, 1:]) * m[:, 1:]
    assert float(loss) == pytest.approx(float(np.sum(r * r)) / count, rel=1e-13)
    scored = (np.abs(cache["xhat"][:, 1:]) + np.abs(x[:, 1:] * m[:, 1:])) * m[:, 1:]
    delta_max = _n_ops(cfg, x) * U64 * float(np.sum(scored**2) / count)
    pattern0 = masked_pattern(cfg, params, x, s, *fa, Binv, m)
    for name, value in params.items():
        assert grads[name].shape == value.shape and grads[name].dtype == value.dtype
        if value.size == 0:
            continue
        d = _direction(cfg, name, value.shape, rng)

        def f(eta, name=name, value=value, d=d):
            p = dict(params)
            p[name] = value + eta * d
            same = same_pattern(masked_pattern(cfg, p, x, s, *fa, Binv, m), pattern0)
            return float(evaluate(p)[0]), same

        analytic = float(np.sum(grads[name] * d))
        assert_directional_derivative(f, analytic, delta_max, _n_ops(cfg, x), name)


def _fd_case(kind, P, clipped, forcing, tau, alpha, obs, tag):
    rng = np.random.default_rng(_seed(tag, kind, P, clipped, forcing, tau, alpha, obs))
    cfg = make_cfg(kind, M, N, 2, obs, P=P, clipped=clipped)
    params = random_params(cfg, rng)
    x, s = random_data(cfg, rng, BATCH, T)
    observed = random_mask(rng, x.shape)
    x = np.where(observed, x, GARBAGE * rng.standard_normal(x.shape))
    Binv = np.linalg.pinv(params["B"]) if obs == "linear" else None
    return cfg, params, x, s, observed, observed.astype(np.float64), Binv, rng


@OBS
@FORCINGS
@pytest.mark.parametrize("kind,P,clipped", [c[1:] for c in KIND_CASES], ids=[c[0] for c in KIND_CASES])
def test_reference_masked_gradient_matches_finite_differences(kind, P, clipped, forcing, tau, alpha, obs):
    cfg, params, x, s, _, m, Binv, rng = _fd_case(kind, P, clipped, forcing, tau, alpha, obs, "ref")

    def evaluate(p):
        return ref.loss_and_grad(cfg, p, x, s, forcing, tau, alpha, Binv, m)

    _fd_check_masked(cfg, params, x, s, forcing, tau, alpha, Binv, m, rng, evaluate)


@OBS
@FORCINGS
@pytest.mark.parametrize("kind,P,clipped", [c[1:] for c in KIND_CASES], ids=[c[0] for c in KIND_CASES])
def test_native_masked_gradient_matches_finite_differences(kind, P, clipped, forcing, tau, alpha, obs):
    cfg, params, x, s, observed, m, Binv, rng = _fd_case(kind, P, clipped, forcing, tau, alpha, obs, "nat")
    from plrnn_native import _core

    def evaluate(p):
        return _core.loss_and_grad(cfg, p, x, s, forcing, tau or 1, alpha or 0.0, Binv, m)

    _fd_check_masked(cfg, params, x, s, forcing, tau, alpha, Binv, m, rng, evaluate)


# ----------------------------------------------------------------------------------------------
# Exactness: zero effect of missing entries, all-True mask, fully masked batches
# ----------------------------------------------------------------------------------------------
def _run(model, x, s, fa, mask):
    loss, grads = model.loss_and_grad(x, s, mask=mask, **fa)
    xhat, z = model.rollout(x, s, return_latent=True, mask=mask, **fa)
    return loss, grads, xhat, z


def _assert_runs_equal(a, b, what):
    assert a[0] == b[0], f"{what}: loss {a[0]!r} != {b[0]!r}"
    assert set(a[1]) == set(b[1])
    for k in a[1]:
        _assert_same(f"{what}: grad {k}", a[1][k], b[1][k])
    _assert_same(f"{what}: xhat", a[2], b[2])
    _assert_same(f"{what}: z", a[3], b[3])


@DTYPE
@OBS
@FORCINGS
@GRID
def test_missing_entries_have_exactly_zero_effect(kind, extra, forcing, tau, alpha, obs, dtype):
    pn.set_num_threads(1)  # run-to-run determinism with threads: test_repeated_calls_are_identical
    c = prepare_masked(kind, extra, obs, forcing, tau, alpha, dtype, seed=_seed("zero", kind, extra, obs))
    fa = _fargs(forcing, tau, alpha)
    base = _run(c.model, c.x, c.s, fa, c.observed)
    big = 1e6 if dtype == np.float64 else 1e4
    for fill in (0.0, big, -big, None):
        x2 = c.x.copy()
        values = (c.rng.standard_normal(x2.shape) * 7).astype(dtype) if fill is None else dtype(fill)
        x2[~c.observed] = values if fill is not None else values[~c.observed]
        assert not np.array_equal(x2, c.x) or fill == 0.0
        _assert_runs_equal(_run(c.model, x2, c.s, fa, c.observed), base, f"missing value {fill}")
    # ... while changing one observed entry does change the loss (the check can fail).
    x3 = c.x.copy()
    t, j = 1, int(np.flatnonzero(c.observed[-1, 1])[0])
    x3[-1, t, j] += dtype(0.5)
    assert _run(c.model, x3, c.s, fa, c.observed)[0] != base[0]


@DTYPE
@OBS
@FORCINGS
@GRID
def test_all_true_mask_equals_no_mask(kind, extra, forcing, tau, alpha, obs, dtype):
    pn.set_num_threads(1)  # run-to-run determinism with threads: test_repeated_calls_are_identical
    c = prepare_masked(kind, extra, obs, forcing, tau, alpha, dtype, seed=_seed("true", kind, extra, obs))
    fa = _fargs(forcing, tau, alpha)
    ones = np.ones(c.x.shape, dtype=bool)
    _assert_runs_equal(_run(c.model, c.x, c.s, fa, ones), _run(c.model, c.x, c.s, fa, None),
                       "all-True mask vs no mask")


@DTYPE
@OBS
@pytest.mark.parametrize("t0_observed", [False, True], ids=["all-missing", "only-t0-observed"])
@GRID
def test_fully_masked_batch_gives_zero_loss_and_gradient(kind, extra, obs, t0_observed, dtype):
    c = prepare_masked(kind, extra, obs, "sparse", 1, None, dtype, seed=_seed("full", kind, extra))
    mask = np.zeros(c.x.shape, dtype=bool)
    mask[:, 0] = t0_observed  # t = 0 is never scored
    for forcing, tau, alpha in [("sparse", 1, None), ("generalized", None, 0.5), ("none", None, None)]:
        loss, grads = c.model.loss_and_grad(c.x, c.s, mask=mask, **_fargs(forcing, tau, alpha))
        assert loss == 0.0
        for name, g in grads.items():
            assert g.dtype == dtype and g.shape == c.model[name].shape
            assert np.all(g == 0), f"{name}: nonzero gradient {np.abs(g).max()} with nothing observed"
        xhat = c.model.rollout(c.x, c.s, mask=mask, **_fargs(forcing, tau, alpha))
        assert np.isfinite(xhat).all()


@DTYPE
def test_fully_masked_sequence_drops_out_of_the_batch(dtype):
    """A batch where sequence 0 has nothing observed equals the batch of the other sequences alone
    (the mean runs over the observed entries)."""
    c = prepare_masked("standard", {}, "linear", "sparse", 3, None, dtype, Bsz=4, seed=11)
    mask = c.observed.copy()
    mask[0] = False
    l_all, g_all = c.model.loss_and_grad(c.x, c.s, mask=mask, forcing="sparse", tau=3)
    l_sub, g_sub = c.model.loss_and_grad(np.ascontiguousarray(c.x[1:]), np.ascontiguousarray(c.s[1:]),
                                         mask=np.ascontiguousarray(mask[1:]), forcing="sparse", tau=3)
    l64, g64 = ref.loss_and_grad(c.cfg, c.p64, c.x64, c.s64, "sparse", 3, None, c.Binv64,
                                 mask.astype(np.float64))
    l32, g32 = ref.loss_and_grad(c.cfg, c.p32, c.x32, c.s32, "sparse", 3, None, c.Binv32,
                                 mask.astype(np.float32))
    assert abs(l_all - l_sub) <= derived_tol(l32, l64, dtype, c.n_ops)
    for k in g_all:
        diff = float(np.max(np.abs(g_all[k].astype(np.float64) - g_sub[k]), initial=0.0))
        assert diff <= derived_tol(g32[k], g64[k], dtype, c.n_ops), k


@DTYPE
def test_mask_thread_count_independence(dtype):
    c = prepare_masked("standard", {}, "linear", "sparse", 4, None, dtype, Bsz=8, T_=16, seed=5)
    fa = ("sparse", 4, None)
    l64, g64 = ref.loss_and_grad(c.cfg, c.p64, c.x64, c.s64, *fa, c.Binv64, c.m64)
    l32, g32 = ref.loss_and_grad(c.cfg, c.p32, c.x32, c.s32, *fa, c.Binv32, c.m32)
    results = []
    for n in (1, 2):  # conftest restores the thread count
        pn.set_num_threads(n)
        assert pn.get_num_threads() == n
        results.append(c.model.loss_and_grad(c.x, c.s, mask=c.observed, forcing="sparse", tau=4))
        xhat = c.model.rollout(c.x, c.s, mask=c.observed, forcing="sparse", tau=4)
        results[-1] += (xhat,)
    (loss1, grads1, xh1), (loss2, grads2, xh2) = results
    assert abs(loss1 - loss2) <= derived_tol(l32, l64, dtype, c.n_ops)
    for name in g64:
        diff = float(np.max(np.abs(grads1[name].astype(np.float64) - grads2[name]), initial=0.0))
        assert diff <= derived_tol(g32[name], g64[name], dtype, c.n_ops), name
    # each sequence's rollout is computed by one thread either way: identical
    _assert_same("xhat 1 vs 2 threads", xh1, xh2)
    # and both thread counts agree with the reference
    assert_close("loss (2 threads)", loss2, l32, l64, dtype, c.n_ops)


@DTYPE
@OBS
@GRID
def test_repeated_calls_are_identical(kind, extra, obs, dtype):
    """The same call twice gives the same numbers, with 2 threads too: the batch is split into
    fixed chunks reduced in chunk order (csrc/core/thread_pool.h), so nothing may depend on which
    thread runs which chunk. Without this, "bit-identical" (all-True mask = no mask, missing
    values without effect) is meaningless in a multi-threaded process."""
    c = prepare_masked(kind, extra, obs, "sparse", 3, None, dtype, Bsz=4, seed=_seed("rep", kind, obs))
    pn.set_num_threads(2)
    for mask in (None, c.observed):
        runs = [c.model.loss_and_grad(c.x, c.s, mask=mask, forcing="sparse", tau=3) for _ in range(40)]
        for loss, grads in runs[1:]:
            assert loss == runs[0][0]
            for k, g in grads.items():
                _assert_same(f"grad {k} (mask={'yes' if mask is not None else 'no'}), repeated call",
                             g, runs[0][1][k])


def test_single_sequence_mask_matches_batch_of_one():
    c = prepare_masked("shallow", {"clipped": True}, "identity", "sparse", 2, None, np.float64,
                       Bsz=1, seed=2)
    l1, g1 = c.model.loss_and_grad(c.x, c.s, mask=c.observed, forcing="sparse", tau=2)
    l, g = c.model.loss_and_grad(c.x[0], c.s[0], mask=c.observed[0], forcing="sparse", tau=2)
    assert l == l1
    for k in g1:
        _assert_same(k, g[k], g1[k])
    xh1 = c.model.rollout(c.x, c.s, mask=c.observed, forcing="sparse", tau=2)
    xh = c.model.rollout(c.x[0], c.s[0], mask=c.observed[0], forcing="sparse", tau=2)
    _assert_same("xhat", xh, xh1[0])


def test_non_contiguous_boolean_mask_is_accepted():
    c = prepare_masked("standard", {}, "identity", "generalized", None, 0.3, np.float64, seed=4)
    wide = np.repeat(c.observed, 2, axis=2)
    view = wide[:, :, ::2]
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(view, c.observed)
    a = c.model.loss_and_grad(c.x, c.s, mask=view, forcing="generalized", alpha=0.3)
    b = c.model.loss_and_grad(c.x, c.s, mask=c.observed, forcing="generalized", alpha=0.3)
    assert a[0] == b[0]


# ----------------------------------------------------------------------------------------------
# Bad masks
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def small():
    return prepare_masked("standard", {}, "identity", "sparse", 2, None, np.float64, seed=9)


@pytest.mark.parametrize("method", ["rollout", "loss_and_grad"])
def test_bad_mask_dtype_shape_and_type(small, method):
    fn = getattr(small.model, method)
    good = small.observed
    for bad in (good.astype(np.float64), good.astype(np.float32), good.astype(np.int64),
                good.astype(np.uint8)):
        with pytest.raises(TypeError, match="mask"):
            fn(small.x, small.s, mask=bad, forcing="sparse", tau=2)
    for bad in (good[:, :-1], good[:-1], good[..., :-1], good[0], good[..., None]):
        with pytest.raises(ValueError, match="mask"):
            fn(small.x, small.s, mask=bad, forcing="sparse", tau=2)
    for bad in (good.tolist(), True, 1):
        with pytest.raises(TypeError, match="mask"):
            fn(small.x, small.s, mask=bad, forcing="sparse", tau=2)


@pytest.mark.parametrize("method", ["rollout", "loss_and_grad"])
def test_mask_on_cuda_is_refused(small, method, monkeypatch):
    fn = getattr(small.model, method)
    if pn.cuda.is_available():
        with pytest.raises(ValueError, match="mask"):
            fn(small.x, small.s, mask=small.observed, forcing="sparse", tau=2, device="cuda")
    else:
        with pytest.raises((RuntimeError, ValueError)):
            fn(small.x, small.s, mask=small.observed, forcing="sparse", tau=2, device="cuda")
    # The refusal itself, whether or not a GPU is present: pretend the device resolves to CUDA.
    monkeypatch.setattr(pn._backend, "resolve_device", lambda device: ("cuda", 0))
    with pytest.raises(ValueError, match="mask.*CPU"):
        fn(small.x, small.s, mask=small.observed, forcing="sparse", tau=2, device="cuda")


def test_nonfinite_data_is_rejected_even_where_masked(small):
    """x must stay finite at missing positions too (the core would turn NaN * 0 into NaN)."""
    x = small.x.copy()
    x[~small.observed] = np.nan
    with pytest.raises(ValueError, match="x"):
        small.model.loss_and_grad(x, small.s, mask=small.observed, forcing="sparse", tau=2)


# ----------------------------------------------------------------------------------------------
# Trainer
# ----------------------------------------------------------------------------------------------
def _signal(T_, seed, N_=2, offset=0.0):
    rng = np.random.default_rng(seed)
    t = np.arange(T_) * 0.2
    x = np.stack([np.sin(t + seed), np.cos(1.3 * t)][:N_], axis=1)
    return x + 0.05 * rng.standard_normal((T_, N_)) + offset


def _cfg(**kw):
    base = dict(epochs=3, batches_per_epoch=4, seq_len=20, batch_size=4, tau=4, lr=3e-3,
                lr_end=1e-3, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def _with_nan(x, rng, p=0.2):
    x = x.copy()
    x[rng.random(x.shape) < p] = np.nan
    return x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("forcing", ["sparse", "generalized"])
def test_trainer_with_nan_trains(forcing, dtype):
    rng = np.random.default_rng(0)
    xs = [_with_nan(_signal(80, 1), rng), _with_nan(_signal(50, 2), rng, 0.4)]
    xs[1][10:20] = np.nan  # a gap of whole rows
    model = pn.PLRNN("standard", M=4, N=2, dtype=dtype, seed=0)
    before = {k: v.copy() for k, v in model.items()}
    trainer = Trainer(model, xs, config=_cfg(forcing=forcing, adaptive_alpha=forcing == "generalized"))
    result = trainer.train()
    assert result.status == "completed" and result.epochs_done == 3
    assert all(math.isfinite(h["loss"]) and h["loss"] > 0 for h in trainer.history)
    for k, v in model.items():
        assert np.isfinite(v).all(), k
    assert any(not np.array_equal(v, before[k]) for k, v in model.items()), "nothing was trained"
    # the caller's arrays are not modified (NaN stays NaN)
    assert np.isnan(xs[1][10:20]).all()


def test_trainer_missing_fraction():
    rng = np.random.default_rng(1)
    a, b = _signal(60, 1), _signal(45, 2)
    a[rng.random(a.shape) < 0.25] = np.nan
    b[3:7, 1] = np.nan
    expected = (np.isnan(a).sum() + np.isnan(b).sum()) / (a.size + b.size)
    assert 0.05 < expected < 0.5
    trainer = Trainer(pn.PLRNN("standard", M=4, N=2, seed=0), [a, b], config=_cfg())
    assert trainer.missing_fraction == pytest.approx(expected, rel=1e-15)
    complete = Trainer(pn.PLRNN("standard", M=4, N=2, seed=0), [_signal(60, 1)], config=_cfg())
    assert complete.missing_fraction == 0.0
    assert complete.sample_batch()[2] is None  # no mask without missing values
    # batches of data with missing values carry the mask; x holds 0 there
    xb, sb, mb = trainer.sample_batch()
    assert sb is None and mb.dtype == np.bool_ and mb.shape == xb.shape
    assert np.all(xb[~mb] == 0) and np.isfinite(xb).all()


def test_trainer_rejects_bad_data():
    model = pn.PLRNN("standard", M=4, N=2, seed=0)
    a = _signal(60, 1)
    b = np.full((40, 2), np.nan)
    with pytest.raises(ValueError, match=r"x\[1\].*missing"):
        Trainer(model, [a, b], config=_cfg())
    with pytest.raises(ValueError, match="missing"):
        Trainer(model, b, config=_cfg())
    c = a.copy()
    c[5, 1] = np.inf
    with pytest.raises(ValueError, match="inf"):
        Trainer(model, c, config=_cfg())
    c[5, 1] = -np.inf
    c[7, 0] = np.nan
    with pytest.raises(ValueError, match="inf"):
        Trainer(model, [a, c], config=_cfg())
    masked = np.ma.masked_array(a, mask=np.zeros_like(a, dtype=bool))
    with pytest.raises(TypeError, match="x"):
        Trainer(model, masked, config=_cfg())
    with pytest.raises(TypeError, match=r"x\[0\]"):
        Trainer(model, [masked, a], config=_cfg())
    with pytest.raises(ValueError):
        Trainer(model, [], config=_cfg())


def test_trainer_cuda_with_missing_values_is_refused(monkeypatch):
    monkeypatch.setattr(pn._backend, "resolve_device", lambda device: ("cuda", 0))
    a = _with_nan(_signal(60, 1), np.random.default_rng(2))
    with pytest.raises(ValueError, match="missing"):
        Trainer(pn.PLRNN("standard", M=4, N=2, seed=0), a, config=_cfg(device="cuda"))


def _locate(window, series):
    """(series index, start) of every place a window occurs in the series (NaN compared as 0)."""
    hits = []
    for i, x in enumerate(series):
        x0 = np.nan_to_num(x, nan=0.0)
        L = window.shape[0]
        for t0 in range(x0.shape[0] - L + 1):
            if np.array_equal(x0[t0:t0 + L], window):
                hits.append((i, t0))
    return hits


def test_training_windows_never_cross_series_boundaries():
    seq = 12
    a = _signal(30, 1) + 10.0  # all positive
    b = _signal(17, 2) - 10.0  # all negative
    c = _signal(12, 3) + 30.0  # exactly one window
    c[4, 0] = np.nan
    series = [a, b, c]
    trainer = Trainer(pn.PLRNN("standard", M=4, N=2, seed=0), series,
                      config=_cfg(seq_len=seq, batch_size=16))
    seen = set()
    for step in range(60):
        xb, sb, mb = trainer.sample_batch(step)
        assert xb.shape == (16, seq, 2)
        for w, m in zip(xb, mb):
            obs = w[m]
            assert np.all(obs > 0) or np.all(obs < 0), "a window mixes two series"
            hits = _locate(w, series)
            assert len(hits) == 1, f"window is not a contiguous piece of one series: {hits}"
            i, t0 = hits[0]
            np.testing.assert_array_equal(m, ~np.isnan(series[i][t0:t0 + seq]))
            seen.add(hits[0])
    every = {(i, t0) for i, x in enumerate(series) for t0 in range(x.shape[0] - seq + 1)}
    assert seen == every, f"windows never drawn: {sorted(every - seen)}"


def test_series_shorter_than_seq_len_is_rejected():
    with pytest.raises(ValueError, match=r"x\[1\].*seq_len"):
        Trainer(pn.PLRNN("standard", M=4, N=2, seed=0), [_signal(40, 1), _signal(15, 2)],
                config=_cfg(seq_len=20))


@pytest.mark.parametrize("obs", ["identity", "linear"])
@pytest.mark.parametrize("forcing", ["sparse", "generalized"])
def test_training_step_uses_the_masked_loss(forcing, obs):
    """A Trainer step on data with NaN equals the native masked loss and gradient on the same
    windows with any other values at the missing positions."""
    rng = np.random.default_rng(7)
    xs = [_with_nan(_signal(70, 1), rng), _with_nan(_signal(40, 2), rng, 0.35)]
    model = pn.PLRNN("shallow", M=4, N=2, obs=obs, hidden=8, seed=1)
    cfg = _cfg(forcing=forcing, alpha=0.25, grad_clip=0.0, seq_len=15, batch_size=6)
    pn.set_num_threads(1)  # exact comparison of two gradient evaluations (see above)
    trainer = Trainer(model, xs, config=cfg)
    xb, sb, mb = trainer.sample_batch()  # the batch of the next step (a function of seed and step index)
    # The same windows of the data with other values where NaN was
    filled = [np.where(np.isnan(x), 100.0 * rng.standard_normal(x.shape), x) for x in xs]
    xf = np.empty_like(xb)
    for b in range(xb.shape[0]):
        (i, t0), = _locate(xb[b], xs)
        xf[b] = filled[i][t0:t0 + cfg.seq_len]
        np.testing.assert_array_equal(mb[b], ~np.isnan(xs[i][t0:t0 + cfg.seq_len]))
    assert not np.array_equal(xf, xb)
    fk = {"forcing": forcing, "tau": cfg.tau} if forcing == "sparse" else {"forcing": forcing, "alpha": 0.25}
    want_loss, want_grads = model.loss_and_grad(xf, mask=mb, **fk)
    same_loss, _ = model.loss_and_grad(xb, mask=mb, **fk)
    assert same_loss == want_loss
    unmasked_loss, _ = model.loss_and_grad(xf, **fk)
    assert unmasked_loss > 10 * want_loss
    before = {k: v.copy() for k, v in model.items()}
    loss, norm = trainer.train_batch(1e-3)
    assert loss == want_loss
    assert norm == pytest.approx(math.sqrt(sum(float(np.vdot(g, g)) for g in want_grads.values())),
                                 rel=1e-12)
    # Adam's first step (bias-corrected moments m = g, v = g^2): p -= lr g / (|g| + eps)
    for k, g in want_grads.items():
        np.testing.assert_allclose(model[k] - before[k], -1e-3 * g / (np.abs(g) + cfg.eps),
                                   rtol=1e-9, atol=1e-16, err_msg=k)


def test_best_model_selector_tolerates_nan_rows():
    x = _signal(80, 1)
    x[0] = np.nan  # the first row: the free run starts from the first complete one
    x[10:14, 1] = np.nan
    sel = BestModelSelector(x, every=1)
    assert sel.x_val.shape == (80 - 5, 2) and np.isfinite(sel.x_val).all()
    np.testing.assert_array_equal(sel.x0, x[1])
    score = sel.score(pn.PLRNN("standard", M=4, N=2, seed=0))
    assert isinstance(score, float) and not math.isnan(score)
    with pytest.raises(ValueError, match="x_val"):
        y = x.copy()
        y[2, 0] = np.inf
        BestModelSelector(y)
    with pytest.raises(ValueError, match="x_val"):
        y = x.copy()
        y[:50] = np.nan  # no complete row in the first half
        BestModelSelector(y)
    with pytest.raises(ValueError, match="x_val"):
        y = x.copy()
        y[9:, 0] = np.nan  # fewer than 10 complete rows
        BestModelSelector(y)
