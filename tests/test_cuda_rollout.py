"""The CUDA rollout / BPTT / generate / MAR (cuda/) against the CPU core, and the ``device=`` API.

Tolerances follow tests/test_native_vs_reference.py (derived, not guessed): the CPU core is run in
float32 and float64 on the same float32-representable inputs, and the GPU result in dtype d must satisfy
``max|gpu_d - cpu64| <= 2 max|cpu32 - cpu64| (eps_d / eps32) + floor`` (``derived_tol``): the GPU may
be at most twice as inaccurate as the CPU core in the same precision. float64 is therefore tight (the
floor is the forward-error bound of the longest chain of dependent roundings, about 1e-14 relative
here). The data are kink-free (no ReLU argument within KINK_MARGIN of 0), so both precisions follow
the same linear regions.

The GPU tests skip where CUDA is unavailable; the argument checks and the CPU fallback of
``device="auto"`` run everywhere.
"""

from __future__ import annotations

import zlib

import numpy as np
import plrnn_native as pn
import pytest
from _common import FORCING_MODES, VARIANTS
from plrnn_native import cuda
from test_native_vs_reference import KINK_MARGIN, assert_close, assert_sequences_independent_of_batch, prepare  # noqa: F401

requires_gpu = pytest.mark.skipif(
    not cuda.is_available(), reason=f"CUDA unavailable: {cuda.unavailable_reason()}"
)
no_gpu = pytest.mark.skipif(cuda.is_available(), reason="a CUDA device is present")


def cpu_model(model: pn.PLRNN, dtype) -> pn.PLRNN:
    """A copy of ``model`` in ``dtype`` (parameters converted)."""
    cfg = dict(model.config, dtype=np.dtype(dtype).name)
    new = pn.PLRNN(**cfg, seed=0)
    for name, value in model.items():
        new[name] = value.astype(dtype)
    return new


def cpu_pair(c):
    return cpu_model(c.model, np.float32), cpu_model(c.model, np.float64)


def check_against_cpu(c, forcing, tau, alpha, device="cuda", mar=None):
    """GPU rollout, latent states, loss and every gradient against the CPU core in both precisions."""
    model, dtype = c.model, c.dtype
    m32, m64 = cpu_pair(c)
    kw = dict(forcing=forcing, tau=tau, alpha=alpha)
    xh64, z64 = m64.rollout(c.x64, c.s64, return_latent=True, **kw)
    xh32, z32 = m32.rollout(c.x32, c.s32, return_latent=True, **kw)
    xhat, z = model.rollout(c.x, c.s, return_latent=True, device=device, **kw)
    assert_close("xhat", xhat, xh32, xh64, dtype, c.n_ops)
    assert_close("z", z, z32, z64, dtype, c.n_ops)
    xhat_only = model.rollout(c.x, c.s, device=device, **kw)
    np.testing.assert_array_equal(xhat_only, xhat)
    if c.x.shape[1] < 2:
        return
    l64, g64 = m64.loss_and_grad(c.x64, c.s64, mar=mar, **kw)
    l32, g32 = m32.loss_and_grad(c.x32, c.s32, mar=mar, **kw)
    loss, grads = model.loss_and_grad(c.x, c.s, mar=mar, device=device, **kw)
    assert isinstance(loss, float)
    assert_close("loss", loss, l32, l64, dtype, c.n_ops)
    assert set(grads) == set(g64)
    for name in g64:
        assert grads[name].dtype == dtype
        assert_close(f"grad {name}", grads[name], g32[name], g64[name], dtype, c.n_ops)
    if model.kind in ("standard", "dendritic"):
        assert np.all(np.diag(grads["W"]) == 0), "the zero diagonal of W must get an exactly zero gradient"
    # reproducible: the reductions have a fixed order (no atomics)
    loss2, grads2 = model.loss_and_grad(c.x, c.s, mar=mar, device=device, **kw)
    assert loss2 == loss
    for name in grads:
        np.testing.assert_array_equal(grads2[name], grads[name])


# ----------------------------------------------------------------------------------------------
# Every kind x forcing mode x observation model x dtype
# ----------------------------------------------------------------------------------------------
@requires_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("obs", ["identity", "linear"])
@pytest.mark.parametrize("forcing,tau,alpha", [m[1:] for m in FORCING_MODES], ids=[m[0] for m in FORCING_MODES])
@pytest.mark.parametrize("kind,extra", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_gpu_matches_cpu(kind, extra, forcing, tau, alpha, obs, dtype):
    seed = zlib.crc32(repr(("gpu", kind, extra, forcing, tau, alpha, obs)).encode())
    c = prepare(kind, 6, 3, 2, obs, 2, extra.get("clipped", False), dtype, 3, 12, forcing, tau, alpha, seed)
    check_against_cpu(c, forcing, tau, alpha)


# ----------------------------------------------------------------------------------------------
# Odd shapes: M not a multiple of 32, B = 1, T = 1 and 2, M = N, K = 0, partial last block, large T,
# the global-weights path (W too large for shared memory), the device index form "cuda:0"
# ----------------------------------------------------------------------------------------------
SHAPES = [
    # id, kind, extra, M, N, K, B, T, dtypes
    ("M33-B1", "standard", {}, 33, 3, 2, 1, 9, (np.float32, np.float64)),
    ("T2", "alrnn", {}, 37, 4, 0, 5, 2, (np.float32, np.float64)),
    ("M=N", "dendritic", {"clipped": True}, 5, 5, 1, 4, 7, (np.float32, np.float64)),
    ("partial-block", "standard", {}, 8, 2, 0, 1000, 5, (np.float64,)),
    ("shallow-wide", "shallow", {"clipped": False}, 20, 3, 2, 7, 9, (np.float32, np.float64)),
    ("longT", "standard", {}, 16, 3, 1, 4, 1500, (np.float64,)),
    ("globalW-f64", "alrnn", {}, 200, 5, 2, 3, 6, (np.float64,)),
    # M = 250: W alone (250 KB in float32) exceeds the 227 KiB opt-in limit. B = 1, T = 4 keep the
    # 1000 ReLU arguments few enough that kink-free float32 data can be drawn (about 5 % of draws)
    ("globalW-f32", "standard", {}, 250, 3, 0, 1, 4, (np.float32, np.float64)),
    ("globalW-shallow", "shallow", {"clipped": True, "hidden": 120}, 130, 4, 0, 4, 40, (np.float64,)),
    # shapes the CPU emulator makes cheap to cover: T = 1 (rollout only), B = 1 with T = 2, M one below
    # and one above a multiple of the warp size, several sequences per block with a partial last block
    # (B = 300: 2 per block on 132 SMs), the global-weights path with B = 1 and T = 2
    ("T1", "standard", {}, 6, 3, 1, 3, 1, (np.float32, np.float64)),
    ("M31-B1-T2", "dendritic", {"clipped": False}, 31, 2, 0, 1, 2, (np.float32, np.float64)),
    ("M65", "shallow", {"clipped": True}, 65, 4, 1, 3, 6, (np.float32, np.float64)),
    ("M64-B300", "alrnn", {}, 64, 3, 2, 300, 4, (np.float64,)),
    ("globalW-B1-T2", "standard", {}, 180, 3, 1, 1, 2, (np.float64,)),
]


@requires_gpu
@pytest.mark.parametrize("forcing,tau,alpha", [("sparse", 3, None), ("generalized", None, 0.4)], ids=["sparse3", "gtf"])
@pytest.mark.parametrize("obs", ["identity", "linear"])
@pytest.mark.parametrize("case", SHAPES, ids=[s[0] for s in SHAPES])
def test_gpu_odd_shapes(case, obs, forcing, tau, alpha):
    name, kind, extra, M, N, K, B, T, dtypes = case
    for dtype in dtypes:
        seed = zlib.crc32(repr(("shape", name, obs, forcing)).encode())
        if M * B * T > 20000:  # long or wide runs: random float64 data (kinks are measure-zero)
            kw = dict(extra)
            if kind == "alrnn":
                kw["P"] = M // 2
            if kind == "dendritic":
                kw["bases"] = 3
            if kind == "shallow":
                kw.setdefault("hidden", 9)
            model = pn.PLRNN(kind, M, N, K=K, obs=obs, dtype="float64", seed=seed, **kw)
            check_large(model, B, T, forcing, tau, alpha, seed)
        else:
            c = prepare(kind, M, N, K, obs, M // 2, extra.get("clipped", False), dtype, B, T, forcing, tau, alpha,
                        seed)
            check_against_cpu(c, forcing, tau, alpha, device="cuda:0")


def check_large(model, B, T, forcing, tau, alpha, seed):
    """float64 GPU vs float64 CPU on random data; tolerance: chain-of-roundings bound."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, model.N))
    s = rng.standard_normal((B, T, model.K)) if model.K else None
    kw = dict(forcing=forcing, tau=tau, alpha=alpha)
    n_ops = T * (model.M + model.K + 16) + model.N * T * B
    tol_rel = n_ops * np.finfo(np.float64).eps
    xh_c, z_c = model.rollout(x, s, return_latent=True, **kw)
    xh_g, z_g = model.rollout(x, s, return_latent=True, device="cuda", **kw)
    for what, a, b in (("xhat", xh_g, xh_c), ("z", z_g, z_c)):
        assert np.max(np.abs(a - b)) <= tol_rel * max(1.0, np.max(np.abs(b))), what
    l_c, g_c = model.loss_and_grad(x, s, **kw)
    l_g, g_g = model.loss_and_grad(x, s, device="cuda", **kw)
    assert abs(l_g - l_c) <= tol_rel * max(1.0, abs(l_c))
    for name in g_c:
        scale = max(1e-300, np.max(np.abs(g_c[name]))) if g_c[name].size else 1.0
        assert np.max(np.abs(g_g[name] - g_c[name]), initial=0.0) <= tol_rel * scale, name


# ----------------------------------------------------------------------------------------------
# generate, MAR, output buffers
# ----------------------------------------------------------------------------------------------
@requires_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind,extra", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_gpu_generate(kind, extra, dtype):
    kw = {"P": 3} if kind == "alrnn" else {"bases": 2} if kind == "dendritic" else {"hidden": 5} if kind == "shallow" else {}
    model = pn.PLRNN(kind, 7, 3, K=2, dtype=dtype, seed=1, **kw, **extra)
    model["A"] = np.full(7, 0.5, dtype=dtype)
    rng = np.random.default_rng(2)
    z0 = rng.standard_normal((4, 7)).astype(dtype)
    s = rng.standard_normal((4, 30, 2)).astype(dtype)
    xc, zc = model.generate(30, z0=z0, s=s, noise_std=0.1, rng=3, return_latent=True)
    xg, zg = model.generate(30, z0=z0, s=s, noise_std=0.1, rng=3, return_latent=True, device="cuda")
    tol = 1e-4 if dtype == "float32" else 1e-11
    np.testing.assert_allclose(zg, zc, rtol=tol, atol=tol)
    np.testing.assert_allclose(xg, xc, rtol=tol, atol=tol)
    # a single trajectory from an observation: the K = 2 model needs its inputs s [T, K] here too
    s1 = s[0, :5]
    np.testing.assert_allclose(model.generate(5, x0=z0[0, :3], s=s1, device="cuda"),
                               model.generate(5, x0=z0[0, :3], s=s1), rtol=tol, atol=tol)


@requires_gpu
@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("kind", ["standard", "shallow"])
def test_gpu_mar(kind, reduce):
    model = pn.PLRNN(kind, 9, 3, dtype="float64", seed=4, **({"hidden": 6} if kind == "shallow" else {}))
    mar = pn.MAR(0.3, fraction=0.5, reduce=reduce)
    v_c, g_c = model.mar_penalty(mar)
    v_g, g_g = model.mar_penalty(mar, device="cuda")
    assert v_g == pytest.approx(v_c, rel=1e-13)
    for name in g_c:
        np.testing.assert_allclose(g_g[name], g_c[name], rtol=1e-13, atol=1e-15)
    x = np.random.default_rng(0).standard_normal((3, 8, 3))
    l_c, gl_c = model.loss_and_grad(x, mar=mar, forcing="sparse", tau=2)
    l_g, gl_g = model.loss_and_grad(x, mar=mar, forcing="sparse", tau=2, device="cuda")
    assert l_g == pytest.approx(l_c, rel=1e-12)
    for name in gl_c:
        np.testing.assert_allclose(gl_g[name], gl_c[name], rtol=1e-10, atol=1e-13)


@requires_gpu
def test_gpu_rollout_out_buffers():
    model = pn.PLRNN("standard", 6, 2, seed=0)
    x = np.random.default_rng(0).standard_normal((3, 5, 2))
    out, lat = np.empty((3, 5, 2)), np.empty((3, 5, 6))
    xh, z = model.rollout(x, out=out, latent_out=lat, device="cuda")
    assert xh is out and z is lat
    np.testing.assert_allclose(out, model.rollout(x), rtol=1e-12, atol=1e-14)


@requires_gpu
def test_gpu_bad_device_index():
    model = pn.PLRNN("standard", 4, 2, seed=0)
    x = np.zeros((1, 3, 2))
    with pytest.raises(ValueError, match="device"):
        model.rollout(x, device=f"cuda:{cuda.device_count()}")


# ----------------------------------------------------------------------------------------------
# Everywhere: device argument checks, the error without a GPU, "auto" falls back to the CPU
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["gpu", "CUDA", "cuda:", "cuda:x", "cuda:-1", "cuda:0 ", "cpu:0", ""])
def test_bad_device_strings(bad):
    model = pn.PLRNN("standard", 4, 2, seed=0)
    x = np.zeros((1, 3, 2))
    for call in (lambda: model.rollout(x, device=bad), lambda: model.loss_and_grad(x, device=bad),
                 lambda: model.generate(3, x0=x[0, 0], device=bad),
                 lambda: model.mar_penalty(pn.MAR(0.1), device=bad)):
        with pytest.raises(ValueError, match="device"):
            call()


@pytest.mark.parametrize("bad", [0, None, 1.5, b"cuda"])
def test_device_type(bad):
    with pytest.raises(TypeError, match="device"):
        pn.PLRNN("standard", 4, 2, seed=0).rollout(np.zeros((1, 3, 2)), device=bad)


@no_gpu
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_gpu_says_why(device):
    model = pn.PLRNN("standard", 4, 2, seed=0)
    x = np.zeros((1, 3, 2))
    reason = cuda.unavailable_reason()
    assert reason
    for call in (lambda: model.rollout(x, device=device), lambda: model.loss_and_grad(x, device=device),
                 lambda: model.generate(3, x0=x[0, 0], device=device)):
        with pytest.raises(RuntimeError, match="CUDA is unavailable") as info:
            call()
        assert reason in str(info.value)


@no_gpu
@pytest.mark.parametrize("kind,extra", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_auto_falls_back_to_cpu(kind, extra):
    kw = {"P": 2} if kind == "alrnn" else {"bases": 2} if kind == "dendritic" else {"hidden": 4} if kind == "shallow" else {}
    model = pn.PLRNN(kind, 5, 2, K=1, obs="linear", seed=0, **kw, **extra)
    rng = np.random.default_rng(0)
    x, s = rng.standard_normal((2, 6, 2)), rng.standard_normal((2, 6, 1))
    kw = dict(forcing="sparse", tau=2)
    np.testing.assert_array_equal(model.rollout(x, s, device="auto", **kw), model.rollout(x, s, **kw))
    la, ga = model.loss_and_grad(x, s, device="auto", mar=pn.MAR(0.1), **kw)
    lc, gc = model.loss_and_grad(x, s, mar=pn.MAR(0.1), **kw)
    # the same CPU computation; not compared bit for bit because two identical CPU calls can differ
    # in the last ulp (observed for the shallow kind's gradients: Eigen's kernels vary with buffer
    # alignment)
    assert la == pytest.approx(lc, rel=1e-14)
    for name in gc:
        np.testing.assert_allclose(ga[name], gc[name], rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(model.generate(4, z0=np.ones(5), s=s[0, :4], device="auto"),
                                  model.generate(4, z0=np.ones(5), s=s[0, :4]))


def test_resolve_device():
    from plrnn_native import _backend

    assert _backend.resolve_device("cpu") == ("cpu", -1)
    assert _backend.resolve_device("auto") == (("cuda", 0) if cuda.is_available() else ("cpu", -1))
    assert _backend.parse_device("cuda:12") == ("cuda", 12)


# As on the CPU (tests/test_native_vs_reference.py): a sequence's rollout and free run on the GPU are
# the same bits whichever batch it runs in (the kernels give each sequence its own rows).
@requires_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("obs,K", [("identity", 0), ("identity", 2), ("linear", 2)])
@pytest.mark.parametrize("M", [6, 20])
@pytest.mark.parametrize("kind,extra", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_a_sequence_does_not_depend_on_its_batch_on_the_gpu(kind, extra, M, obs, K, dtype):
    assert_sequences_independent_of_batch(kind, extra, M, obs, K, dtype, "cuda")
