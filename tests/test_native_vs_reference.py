"""The native core against the NumPy reference: outputs, loss and every gradient.

Tolerances are derived, not guessed (the flash-attention rule): the reference is run in float32 and
in float64 on the same (float32-representable) inputs, and the native result in dtype d must satisfy

    max|native_d - ref64| <= 2 * max|ref32 - ref64| * (eps_d / eps_float32) + floor,

i.e. the native code may be at most twice as inaccurate as a straightforward implementation of the
same computation in the same precision (see ``derived_tol``). For float32 the reference's error is
measured directly and floor = FLOOR_ULPS * eps32 * max|ref64|. For float64 there is no higher
precision to measure against, and the float32 error scaled by eps64/eps32 can be small by chance
(observed: 9e-17 against a genuine 1.2e-16 reordering difference), so the floor is the textbook
forward-error bound of a chain of n_ops dependent roundings, n_ops * u64 * max|ref64| with
u64 = eps64 / 2 and n_ops as in ``test_reference._n_ops`` (about 1e-14 relative here: far below any
error a wrong gradient makes). The data are drawn so that no ReLU
argument of the rollout lies within KINK_MARGIN of its kink, so float32 and float64 follow the same
linear regions.
"""

from __future__ import annotations

import itertools
import zlib
from types import SimpleNamespace

import numpy as np
import plrnn_native as pn
import pytest
from _common import FORCING_MODES, VARIANTS, kink_margin, random_data, random_params, ref
from test_reference import _n_ops

DTYPES = [np.float32, np.float64]
EPS32 = np.finfo(np.float32).eps
FLOOR_ULPS = 8
KINK_MARGIN = 1e-3


def derived_tol(ref32, ref64, dtype, n_ops: int) -> float:
    """Tolerance for a dtype-``dtype`` result against ``ref64`` (see module docstring)."""
    ref32 = np.asarray(ref32, dtype=np.float64)
    ref64 = np.asarray(ref64, dtype=np.float64)
    if ref64.size == 0:
        return 0.0
    eps = np.finfo(dtype).eps
    err32 = float(np.max(np.abs(ref32 - ref64)))
    scale = float(np.max(np.abs(ref64)))
    floor = FLOOR_ULPS * eps * scale if np.dtype(dtype) == np.float32 else n_ops * (eps / 2) * scale
    return 2 * err32 * (eps / EPS32) + floor



def assert_close(what, native, ref32, ref64, dtype, n_ops):
    native = np.asarray(native)
    ref64 = np.asarray(ref64)
    assert native.shape == ref64.shape, f"{what}: shape {native.shape}, expected {ref64.shape}"
    if native.ndim:
        assert native.dtype == dtype, f"{what}: dtype {native.dtype}, expected {np.dtype(dtype)}"
    if ref64.size == 0:
        return
    tol = derived_tol(ref32, ref64, dtype, n_ops)
    err = float(np.max(np.abs(native.astype(np.float64) - ref64)))
    err32 = float(np.max(np.abs(np.asarray(ref32, np.float64) - ref64)))
    assert err <= tol, (
        f"{what} ({np.dtype(dtype).name}): max |native - ref64| = {err:.3e} > derived tolerance "
        f"{tol:.3e} (max |ref32 - ref64| = {err32:.3e})"
    )


def build_model(
    kind, M, N, K=0, obs="identity", P=None, clipped=False, dtype=np.float64, bases=3, hidden=7
):
    kwargs = {"K": K, "obs": obs, "dtype": np.dtype(dtype).name, "seed": 0}
    if kind == "alrnn":
        kwargs["P"] = P
    if kind == "dendritic":
        kwargs["bases"] = bases
    if kind == "shallow":
        kwargs["hidden"] = hidden
    if kind in ("dendritic", "shallow"):
        kwargs["clipped"] = clipped
    model = pn.PLRNN(kind, M, N, **kwargs)
    cfg = model.config
    expected = {"kind": kind, "M": M, "N": N, "K": K, "obs": obs}
    assert {k: cfg[k] for k in expected} == expected
    if kind == "alrnn":
        assert cfg["P"] == P
    if kind == "dendritic":
        assert cfg["bases"] == bases
    if kind == "shallow":
        assert cfg["hidden"] == hidden
    assert bool(cfg["clipped"]) == bool(clipped)
    return model


def _f32(a):
    """Round to float32 and back: values representable in both precisions."""
    return None if a is None else a.astype(np.float32).astype(np.float64)


def prepare(
    kind, M, N, K, obs, P, clipped, dtype, Bsz, T, forcing="none", tau=None, alpha=None, seed=0,
    hidden=7,
):
    """A native model with kink-free random parameters and data, plus both reference precisions."""
    model = build_model(kind, M, N, K, obs, P, clipped, dtype, hidden=hidden)
    cfg = model.config
    rng = np.random.default_rng(seed)
    for _ in range(200):
        p64 = {k: _f32(v) for k, v in random_params(cfg, rng).items()}
        x64, s64 = (_f32(a) for a in random_data(cfg, rng, Bsz, T))
        Binv64 = np.linalg.pinv(p64["B"]) if obs == "linear" else None
        if kink_margin(cfg, p64, x64, s64, forcing, tau, alpha, Binv64) > KINK_MARGIN:
            break
    else:
        pytest.fail("could not draw kink-free test data")
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    Binv32 = np.linalg.pinv(p32["B"]) if obs == "linear" else None
    for name, value in p64.items():
        model[name] = value.astype(dtype)
    return SimpleNamespace(
        model=model,
        cfg=cfg,
        n_ops=_n_ops(cfg, x64),
        p64=p64,
        p32=p32,
        x64=x64,
        s64=s64,
        Binv64=Binv64,
        Binv32=Binv32,
        x32=x64.astype(np.float32),
        s32=None if s64 is None else s64.astype(np.float32),
        x=x64.astype(dtype),
        s=None if s64 is None else s64.astype(dtype),
        dtype=dtype,
    )


def check_rollout_and_gradients(c, forcing, tau, alpha, mar=None, mar_units=None):
    model, cfg, dtype = c.model, c.cfg, c.dtype
    fargs = (forcing, tau, alpha)
    ref64 = ref.rollout(cfg, c.p64, c.x64, c.s64, *fargs, c.Binv64)
    ref32 = ref.rollout(cfg, c.p32, c.x32, c.s32, *fargs, c.Binv32)
    xhat, z = model.rollout(c.x, c.s, forcing=forcing, tau=tau, alpha=alpha, return_latent=True)
    assert_close("xhat", xhat, ref32[0], ref64[0], dtype, c.n_ops)
    assert_close("z", z, ref32[1], ref64[1], dtype, c.n_ops)
    xhat_only = model.rollout(c.x, c.s, forcing=forcing, tau=tau, alpha=alpha)
    np.testing.assert_array_equal(xhat_only, xhat)

    l64, g64 = ref.loss_and_grad(cfg, c.p64, c.x64, c.s64, *fargs, c.Binv64)
    l32, g32 = ref.loss_and_grad(cfg, c.p32, c.x32, c.s32, *fargs, c.Binv32)
    if mar is not None:
        m64, gm64 = ref.mar_penalty_and_grad(cfg, c.p64, mar_units, *mar)
        m32, gm32 = ref.mar_penalty_and_grad(cfg, c.p32, mar_units, *mar)
        l64, l32 = l64 + m64, l32 + m32
        g64 = {k: g64[k] + gm64[k] for k in g64}
        g32 = {k: g32[k] + gm32[k] for k in g32}
        loss, grads = model.loss_and_grad(
            c.x,
            c.s,
            forcing=forcing,
            tau=tau,
            alpha=alpha,
            mar=pn.MAR(mar[0], units=[int(u) for u in mar_units], reduce=mar[1]),
        )
    else:
        loss, grads = model.loss_and_grad(c.x, c.s, forcing=forcing, tau=tau, alpha=alpha)
    assert isinstance(loss, float)
    assert_close("loss", loss, l32, l64, dtype, c.n_ops)
    assert set(grads) == set(g64), f"gradient keys {sorted(grads)}, expected {sorted(g64)}"
    for name in g64:
        assert_close(f"grad {name}", grads[name], g32[name], g64[name], dtype, c.n_ops)
    if cfg["kind"] in ref.ZERO_DIAGONAL_KINDS:
        assert np.all(np.diag(grads["W"]) == 0), (
            "the zero diagonal of W must get an exactly zero gradient"
        )


# ----------------------------------------------------------------------------------------------
# Main grid: every kind x forcing mode x observation model x dtype
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("obs", ["identity", "linear"])
@pytest.mark.parametrize(
    "forcing,tau,alpha", [m[1:] for m in FORCING_MODES], ids=[m[0] for m in FORCING_MODES]
)
@pytest.mark.parametrize("kind,extra", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_rollout_loss_and_gradients(kind, extra, forcing, tau, alpha, obs, dtype):
    seed = zlib.crc32(repr((kind, extra, forcing, tau, alpha, obs)).encode())
    c = prepare(
        kind, 6, 3, 2, obs, 2, extra.get("clipped", False), dtype, 3, 12, forcing, tau, alpha, seed
    )
    check_rollout_and_gradients(c, forcing, tau, alpha)


# ----------------------------------------------------------------------------------------------
# Edge shapes: B = 1, T = 2, M = N, K = 0, and alrnn with P = 0 and P = M
# ----------------------------------------------------------------------------------------------
EDGE_SHAPES = [
    # id, M, N, K, B, T
    ("B1", 5, 2, 2, 1, 9),
    ("T2", 5, 2, 2, 3, 2),
    ("M=N", 3, 3, 2, 2, 7),
    ("K0", 5, 2, 0, 2, 7),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("obs", ["identity", "linear"])
@pytest.mark.parametrize(
    "M,N,K,Bsz,T", [e[1:] for e in EDGE_SHAPES], ids=[e[0] for e in EDGE_SHAPES]
)
@pytest.mark.parametrize("kind,extra", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_edge_shapes(kind, extra, M, N, K, Bsz, T, obs, dtype):
    for forcing, tau, alpha in [("sparse", 1, None), ("generalized", None, 0.5)]:
        c = prepare(
            kind,
            M,
            N,
            K,
            obs,
            1,
            extra.get("clipped", False),
            dtype,
            Bsz,
            T,
            forcing,
            tau,
            alpha,
            seed=M + T,
        )
        check_rollout_and_gradients(c, forcing, tau, alpha)


# ----------------------------------------------------------------------------------------------
# Sizes around the register blocking of the CPU core's matrix products (csrc/core/packed_gemm.h):
# row panels of 32 (float32, AVX-512) or 16 (float64) units and column groups of 8 (or 4)
# sequences, each run with 1 and 2 threads (chunks of different widths). M = 16, 32 fill whole
# panels; 17, 33, 40, 65 leave a partial panel; B = 1, 5, 7, 9, 12 leave partial column groups. The
# shallow kind's hidden width H = M + 8 puts whole and partial panels in the H dimension too.
# ----------------------------------------------------------------------------------------------
BLOCK_SIZES = [
    # M, B, T (short rollouts: kink-free data must exist for M * B * T ReLU arguments)
    (16, 9, 4),
    (17, 7, 4),
    (32, 8, 3),
    (33, 12, 3),
    (40, 1, 5),
    (65, 5, 3),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("M,Bsz,T", BLOCK_SIZES, ids=[f"M{m}-B{b}" for m, b, _ in BLOCK_SIZES])
@pytest.mark.parametrize("kind,extra", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_register_blocked_sizes(kind, extra, M, Bsz, T, dtype):
    obs = "linear" if M % 2 else "identity"
    c = prepare(kind, M, 3, 2, obs, M // 2, extra.get("clipped", False), dtype, Bsz, T,
                "sparse", 2, None, seed=M * 100 + Bsz, hidden=M + 8)
    for threads in (1, 2):  # the thread count is restored by conftest
        pn.set_num_threads(threads)
        check_rollout_and_gradients(c, "sparse", 2, None)


# ----------------------------------------------------------------------------------------------
# The shallow PLRNN's two implementations (csrc/models/shallow_plrnn.h): for M <= 12 the lane kernels
# (csrc/core/lanes.h: one sequence per SIMD lane, in groups of 4 (float32) or 2 (float64) with
# AVX-512, the state padded to Mc in {1, 2, 3, 4, 6, 8, 12} rows, H to a multiple of 8, the weight
# gradients as per-lane sums), above it the packed tiles. Each size class of M on both sides of the
# switch, H both whole and padded, B leaving a partial lane group (1 and 2 threads). The even M
# (identity observation, no inputs) take the lane-resident time loop (csrc/rollout/lane_bptt.h).
# ----------------------------------------------------------------------------------------------
SHALLOW_LANE_SIZES = [
    # M, N, H, B, T
    (1, 1, 5, 3, 12),
    (2, 2, 9, 9, 8),
    (3, 3, 16, 17, 7),
    (4, 3, 13, 8, 10),
    (5, 3, 8, 5, 9),
    (7, 3, 11, 9, 6),
    (9, 3, 6, 4, 12),
    (13, 3, 7, 9, 5),
    (16, 3, 17, 3, 8),
    (17, 3, 9, 9, 5),
    (24, 3, 10, 5, 6),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("clipped", [False, True], ids=["shallow", "shallow-clipped"])
@pytest.mark.parametrize("M,N,H,Bsz,T", SHALLOW_LANE_SIZES,
                         ids=[f"M{m}-H{h}-B{b}" for m, _, h, b, _ in SHALLOW_LANE_SIZES])
def test_shallow_lane_sizes(M, N, H, Bsz, T, clipped, dtype):
    obs = "linear" if M % 2 else "identity"
    c = prepare("shallow", M, N, 0 if M % 3 else 2, obs, 1, clipped, dtype, Bsz, T, "sparse", 3,
                None, seed=M * 1000 + H * 10 + Bsz, hidden=H)
    for threads in (1, 2):  # the thread count is restored by conftest
        pn.set_num_threads(threads)
        check_rollout_and_gradients(c, "sparse", 3, None)


# The lane-resident time loop (csrc/rollout/lane_bptt.h: identity observation, no inputs, no mask,
# a gradient wanted) against the reference, at the Lorenz-63 default's shape (M = N = 3) and with
# latent units beyond the observed ones, every forcing mode.
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("clipped", [False, True], ids=["shallow", "shallow-clipped"])
@pytest.mark.parametrize("forcing,tau,alpha", [m[1:] for m in FORCING_MODES], ids=[m[0] for m in FORCING_MODES])
@pytest.mark.parametrize("M,N,H,Bsz", [(3, 3, 20, 6), (7, 2, 13, 5)], ids=["M3-N3", "M7-N2"])
def test_shallow_lane_time_loop(M, N, H, Bsz, forcing, tau, alpha, clipped, dtype):
    c = prepare("shallow", M, N, 0, "identity", 1, clipped, dtype, Bsz, 11, forcing, tau, alpha,
                seed=M * 100 + Bsz, hidden=H)
    check_rollout_and_gradients(c, forcing, tau, alpha)


# The lane-resident time loop and the general loop (rollout/bptt.h) give the same bits: the same
# operations in the same order. Partial lane groups (B = 1, 6), several chunks (B = 17), every lane
# row count, 1 and 2 threads. _core._set_lane_time_loop switches the loop for the whole process.
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("clipped", [False, True], ids=["shallow", "shallow-clipped"])
@pytest.mark.parametrize("M", [1, 2, 3, 4, 5, 8, 12])
def test_lane_time_loop_same_bits_as_general_loop(M, clipped, dtype):
    rng = np.random.default_rng(M)
    model = pn.PLRNN("shallow", M=M, N=min(M, 3), hidden=12 + M, clipped=clipped, dtype=dtype, seed=M)
    for name, value in random_params(model.config, rng).items():
        model[name] = value.astype(dtype)
    try:
        for Bsz, threads, (forcing, fkw) in itertools.product(
                (1, 6, 17), (1, 2), (("sparse", {"tau": 4}), ("generalized", {"alpha": 0.3}), ("none", {}))):
            pn.set_num_threads(threads)
            x = rng.standard_normal((Bsz, 13, model.N)).astype(dtype)
            assert pn._core._set_lane_time_loop(False) is True  # on by default
            loss0, g0 = model.loss_and_grad(x, forcing=forcing, **fkw)
            pn._core._set_lane_time_loop(True)
            loss1, g1 = model.loss_and_grad(x, forcing=forcing, **fkw)
            assert loss1 == loss0, (Bsz, threads, forcing)
            for k in g0:
                np.testing.assert_array_equal(g1[k], g0[k], err_msg=f"{k} B={Bsz} threads={threads} {forcing}")
    finally:
        pn._core._set_lane_time_loop(True)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("P", [0, 4], ids=["P0", "PM"])
@pytest.mark.parametrize(
    "forcing,tau,alpha", [m[1:] for m in FORCING_MODES], ids=[m[0] for m in FORCING_MODES]
)
def test_alrnn_extreme_P(P, forcing, tau, alpha, dtype):
    c = prepare("alrnn", 4, 2, 1, "identity", P, False, dtype, 2, 8, forcing, tau, alpha, seed=P)
    check_rollout_and_gradients(c, forcing, tau, alpha)


def test_single_sequence_input_matches_batch_of_one():
    c = prepare("standard", 5, 2, 2, "identity", None, False, np.float64, 1, 9, "sparse", 2, None)
    xhat1, z1 = c.model.rollout(c.x, c.s, forcing="sparse", tau=2, return_latent=True)
    xhat, z = c.model.rollout(c.x[0], c.s[0], forcing="sparse", tau=2, return_latent=True)
    np.testing.assert_array_equal(np.reshape(xhat, xhat1.shape), xhat1)
    np.testing.assert_array_equal(np.reshape(z, z1.shape), z1)
    loss1, g1 = c.model.loss_and_grad(c.x, c.s, forcing="sparse", tau=2)
    loss, g = c.model.loss_and_grad(c.x[0], c.s[0], forcing="sparse", tau=2)
    assert loss == loss1
    for k in g1:
        np.testing.assert_array_equal(g[k], g1[k])


# ----------------------------------------------------------------------------------------------
# MAR
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize(
    "select,fraction,units",
    [("last", 0.5, None), ("first", 0.4, None), ("last", 1.0, None), (None, None, [0, 3])],
)
@pytest.mark.parametrize("kind,extra", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_mar_penalty(kind, extra, select, fraction, units, reduce, dtype):
    c = prepare(kind, 6, 3, 2, "identity", 2, extra.get("clipped", False), dtype, 2, 5)
    if units is None:
        mar = pn.MAR(0.3, fraction=fraction, select=select, reduce=reduce)
        R = ref.mar_units(6, fraction, select)
    else:
        mar = pn.MAR(0.3, units=units, reduce=reduce)
        R = ref.mar_units(6, units=units)
    v64, g64 = ref.mar_penalty_and_grad(c.cfg, c.p64, R, 0.3, reduce)
    v32, g32 = ref.mar_penalty_and_grad(c.cfg, c.p32, R, 0.3, reduce)
    value, grads = c.model.mar_penalty(mar)
    assert_close("MAR value", value, v32, v64, dtype, c.n_ops)
    assert set(grads) == set(g64)
    for name in g64:
        assert_close(f"MAR grad {name}", grads[name], g32[name], g64[name], dtype, c.n_ops)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind,extra", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_loss_and_grad_with_mar_adds_the_penalty(kind, extra, dtype):
    c = prepare(
        kind,
        6,
        3,
        2,
        "linear",
        2,
        extra.get("clipped", False),
        dtype,
        2,
        8,
        "generalized",
        None,
        0.2,
    )
    check_rollout_and_gradients(
        c, "generalized", None, 0.2, mar=(0.5, "mean"), mar_units=np.array([1, 4, 5])
    )


# ----------------------------------------------------------------------------------------------
# step, jacobian, generate, pinv_B
# ----------------------------------------------------------------------------------------------
def _kink_free_states(cfg, p64, rng, shape):
    for _ in range(200):
        z = _f32(1.5 * rng.standard_normal(shape))
        args = [a for a in ref.relu_arguments(cfg, p64, z) if a.size]
        if not args or min(float(np.min(np.abs(a))) for a in args) > KINK_MARGIN:
            return z
    pytest.fail("could not draw kink-free states")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind,extra", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_step_and_jacobian(kind, extra, dtype):
    c = prepare(kind, 6, 3, 2, "identity", 3, extra.get("clipped", False), dtype, 2, 4)
    rng = np.random.default_rng(1)
    z64 = _kink_free_states(c.cfg, c.p64, rng, (4, 6))
    s64 = _f32(rng.standard_normal((4, 2)))
    out = c.model.step(z64.astype(dtype), s64.astype(dtype))
    r64 = ref.step(c.cfg, c.p64, z64, s64)
    r32 = ref.step(c.cfg, c.p32, z64.astype(np.float32), s64.astype(np.float32))
    assert_close("step", out, r32, r64, dtype, c.n_ops)
    for i in range(4):
        J = c.model.jacobian(z64[i].astype(dtype))
        assert_close(
            "jacobian",
            J,
            ref.jacobian(c.cfg, c.p32, z64[i].astype(np.float32)),
            ref.jacobian(c.cfg, c.p64, z64[i]),
            dtype, c.n_ops)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("obs", ["identity", "linear"])
@pytest.mark.parametrize("kind,extra", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_generate_without_noise(kind, extra, obs, dtype):
    c = prepare(kind, 6, 3, 2, obs, 2, extra.get("clipped", False), dtype, 2, 4)
    rng = np.random.default_rng(2)
    T = 10
    for _ in range(200):  # a start and inputs whose trajectory keeps away from every kink
        z0 = _f32(rng.standard_normal((3, 6)))
        s64 = _f32(rng.standard_normal((3, T, 2)))
        r64 = ref.generate(c.cfg, c.p64, z0, s64, T)
        args = [a for a in ref.relu_arguments(c.cfg, c.p64, r64) if a.size]
        if not args or min(float(np.min(np.abs(a))) for a in args) > KINK_MARGIN:
            break
    else:
        pytest.fail("could not draw a kink-free free-running trajectory")
    r32 = ref.generate(c.cfg, c.p32, z0.astype(np.float32), s64.astype(np.float32), T)
    xhat, z = c.model.generate(T, z0=z0.astype(dtype), s=s64.astype(dtype), return_latent=True)
    assert_close("generate z", z, r32, r64, dtype, c.n_ops)
    assert_close(
        "generate xhat", xhat, ref.observe(c.cfg, c.p32, r32), ref.observe(c.cfg, c.p64, r64), dtype, c.n_ops)
    # From x0 the initial state is the initial-state map of the rollout.
    x0 = c.x64[:, 0]
    _, zx = c.model.generate(T, x0=x0.astype(dtype), s=s64[:2].astype(dtype), return_latent=True)
    assert_close(
        "generate z0 from x0",
        zx[:, 0],
        ref.initial_state(c.cfg, c.p32, x0.astype(np.float32)),
        ref.initial_state(c.cfg, c.p64, x0),
        dtype, c.n_ops)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_generate_with_process_noise(dtype):
    c = prepare("shallow", 6, 3, 0, "identity", None, True, dtype, 2, 4)
    z0 = np.zeros((4, 6), dtype)
    T, std = 60, 0.05

    def run(seed):
        return c.model.generate(
            T, z0=z0, noise_std=std, rng=np.random.default_rng(seed), return_latent=True
        )[1]

    z_a, z_b, z_c = run(123), run(123), run(124)
    np.testing.assert_array_equal(z_a, z_b)  # same seed: identical
    assert not np.array_equal(z_a, z_c)  # another seed: another draw
    # The noise is additive process noise: z[t] - F(z[t-1]) has standard deviation noise_std
    # (4 * 59 * 6 samples: the relative standard error of the estimate is ~3 %; 20 % is > 6 sigma).
    p = c.p32 if dtype == np.float32 else c.p64
    resid = np.stack([z_a[:, t] - ref.step(c.cfg, p, z_a[:, t - 1], None) for t in range(1, T)])
    assert abs(float(np.std(resid)) / std - 1) < 0.2
    np.testing.assert_array_equal(z_a[:, 0], z0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_pinv_B(dtype):
    c = prepare("standard", 6, 3, 0, "linear", None, False, dtype, 1, 2)
    Binv = c.model.pinv_B()
    assert_close("pinv_B", Binv, np.linalg.pinv(c.p32["B"]), np.linalg.pinv(c.p64["B"]), dtype, c.n_ops)


# ----------------------------------------------------------------------------------------------
# Parameters, threads, persistence
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,extra", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
@pytest.mark.parametrize("obs", ["identity", "linear"])
def test_params_layout_and_assignment_copies(kind, extra, obs):
    model = build_model(kind, 6, 3, 2, obs, 2, extra.get("clipped", False))
    shapes = ref.param_shapes(model.config)
    assert set(model.params) == set(shapes)
    for name, shape in shapes.items():
        assert model.params[name].shape == shape and model.params[name].dtype == np.float64
    assert np.dtype(model.dtype) == np.float64
    if kind in ref.ZERO_DIAGONAL_KINDS:
        assert np.all(np.diag(model["W"]) == 0), "initial W must respect the zero diagonal"
    new = np.full(shapes["A"], 0.25)
    model["A"] = new
    new[:] = 7.0  # the model holds a copy
    np.testing.assert_array_equal(model["A"], np.full(shapes["A"], 0.25))
    np.testing.assert_array_equal(model.params["A"], np.full(shapes["A"], 0.25))


def test_kind_table_agrees_with_the_reference():
    """csrc/kinds.h, as Python reads it (_core.kinds), against the reference's own statement of the
    kinds: the names, the zero diagonal of W, and each family's parameters; both variants of a name
    share the family and the constraint."""
    from plrnn_native import models

    table = models._core.kinds()
    assert models.KINDS == ref.KINDS
    # every kind is in the parametrised suites
    assert {(v[1], v[2].get("clipped", False)) for v in VARIANTS} == {(k["name"], k["clipped"]) for k in table}
    assert set(models.ZERO_DIAGONAL_W_KINDS) == set(ref.ZERO_DIAGONAL_KINDS)
    for name in models.KINDS:
        rows = [k for k in table if k["name"] == name]
        assert len({(k["family"], k["zero_diag_W"]) for k in rows}) == 1, rows
    own = {"WPhi": {"W", "h"}, "Dendritic": {"W", "h", "alpha", "theta"}, "Shallow": {"W1", "W2", "h1", "h2"}}
    for name in models.KINDS:
        model = build_model(name, 6, 3, 2, "identity", 2, False)
        assert set(model.params) - {"A", "C", "L"} == own[models.KIND_FAMILY[name]], name


# The batch is cut into chunks whose number depends on B only (csrc/core/thread_pool.h: batch_chunks),
# reduced in chunk order: the same bits on any number of threads, for every kind (the lane kernels of
# the small shallow models and the register-blocked tiles of the others), with and without a chunk
# count that divides the thread count.
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("M,Bsz", [(6, 24), (20, 41)], ids=["M6-B24", "M20-B41"])
@pytest.mark.parametrize("kind,extra", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_thread_count_does_not_change_results(kind, extra, M, Bsz, dtype):
    # native against native: no kink-free draw needed
    model = build_model(kind, M, 3, 2, "linear", 2, extra.get("clipped", False), dtype, hidden=M + 5)
    rng = np.random.default_rng(M * 100 + Bsz)
    for name, value in random_params(model.config, rng).items():
        model[name] = value.astype(dtype)
    x, s = random_data(model.config, rng, Bsz, 16, dtype)
    results = []
    for n in (1, 2, 3):  # conftest restores the thread count
        pn.set_num_threads(n)
        assert pn.get_num_threads() == n
        loss, grads = model.loss_and_grad(x, s, forcing="sparse", tau=4)
        xhat = model.rollout(x, s, forcing="sparse", tau=4)
        z = model.generate(16, x0=np.ascontiguousarray(x[:, 0]), s=s)
        results.append((loss, grads, xhat, z))
    loss1, grads1, xhat1, z1 = results[0]
    for loss, grads, xhat, z in results[1:]:
        assert loss == loss1
        for name in grads1:
            np.testing.assert_array_equal(grads[name], grads1[name], err_msg=name)
        np.testing.assert_array_equal(xhat, xhat1)
        np.testing.assert_array_equal(z, z1)


# A sequence's result is a function of that sequence alone: the same bits whichever batch it is in
# (alone, among others, at another position), for the teacher-forced rollout, the free run and the
# initial state (the per-column products of csrc/core/small_product.h; the W products' tiles are per
# column already). Losses and gradients sum over the batch, so they depend on its composition.
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("obs,K", [("identity", 0), ("identity", 2), ("linear", 0), ("linear", 2)])
@pytest.mark.parametrize("M", [3, 6, 20])
@pytest.mark.parametrize("kind,extra", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_a_sequence_does_not_depend_on_its_batch(kind, extra, M, obs, K, dtype):
    assert_sequences_independent_of_batch(kind, extra, M, obs, K, dtype, "cpu")


def assert_sequences_independent_of_batch(kind, extra, M, obs, K, dtype, device):
    """Each sequence's initial state, rollout and free run on ``device``, run in sub-batches of a batch of
    13 (one sequence, three out of order, eight, nine), equal those of the whole batch bit for bit (the
    shallow PLRNN's lanes: a group of one sequence runs without the empty lanes, step_single)."""
    model = build_model(kind, M, 3, K, obs, 2, extra.get("clipped", False), dtype, hidden=M + 5)
    rng = np.random.default_rng(M * 10 + K)
    for name, value in random_params(model.config, rng).items():
        model[name] = value.astype(dtype)
    x, s = random_data(model.config, rng, 13, 12, dtype)
    x0 = np.ascontiguousarray(x[:, 0])

    def run(idx):
        sub = None if s is None else np.ascontiguousarray(s[idx])
        xi = np.ascontiguousarray(x[idx])
        return (model.initial_state(np.ascontiguousarray(x0[idx])),
                model.rollout(xi, sub, forcing="sparse", tau=4, device=device),
                model.generate(12, x0=np.ascontiguousarray(x0[idx]), s=sub, device=device))

    whole = run(np.arange(13))
    for idx in (np.array([5]), np.array([12, 5, 0]), np.arange(1, 9), np.arange(4, 13)):
        for part, full in zip(run(idx), whole):
            np.testing.assert_array_equal(part, full[idx])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind,extra", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_save_load_round_trip(kind, extra, dtype, tmp_path):
    c = prepare(kind, 6, 3, 2, "linear", 2, extra.get("clipped", False), dtype, 2, 6)
    path = tmp_path / "model.npz"
    c.model.save(path)
    loaded = pn.load(path)
    assert loaded.config == c.model.config
    assert np.dtype(loaded.dtype) == np.dtype(c.model.dtype)
    assert set(loaded.params) == set(c.model.params)
    for name, value in c.model.params.items():
        got = loaded.params[name]
        assert got.dtype == value.dtype and got.shape == value.shape, name
        assert got.tobytes() == value.tobytes(), f"{name} not bit-exact after save/load"
    np.testing.assert_array_equal(
        loaded.rollout(c.x, c.s, forcing="generalized", alpha=0.5),
        c.model.rollout(c.x, c.s, forcing="generalized", alpha=0.5),
    )


# ----------------------------------------------------------------------------------------------
# M = 24 with the batch split over two threads: the products left to Eigen (C s, the observation
# model, L) use its blocked kernels there (rows + cols + depth > 20); the W products take one
# partial row panel (float32) or a whole and a partial one (float64).
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("obs", ["identity", "linear"])
@pytest.mark.parametrize("kind,extra", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_blocked_product_sizes(kind, extra, obs, dtype):
    previous = pn.get_num_threads()
    pn.set_num_threads(2)
    try:
        c = prepare(kind, 24, 3, 2, obs, 12, extra.get("clipped", False), dtype, 4, 16,
                    "sparse", 5, None, seed=zlib.crc32(repr((kind, extra, obs)).encode()))
        check_rollout_and_gradients(c, "sparse", 5, None)
    finally:
        pn.set_num_threads(previous)
