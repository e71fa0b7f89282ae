"""The supervised model (inputs -> PLRNN -> linear readout, masked MSE / cross-entropy) against the
NumPy reference and against finite differences.

Tolerances are derived as in ``test_native_vs_reference.py`` (float32: twice the float32
reference's own error; float64: the forward-error bound of the rounding chain) and
``test_reference.py`` (central differences: truncation + rounding bound).
"""

from __future__ import annotations

import zlib

import numpy as np
import plrnn_native as pn
import pytest
from _common import U64, assert_directional_derivative, ref, same_pattern
from plrnn_native import _core
from plrnn_native.supervised import SupervisedConfig, SupervisedPLRNN
from test_native_vs_reference import assert_close, derived_tol

KINK_MARGIN = 1e-3
M, K, O, BATCH, T = 6, 2, 3, 3, 7

KIND_CASES = [
    ("standard", "standard", {}),
    ("alrnn-P0", "alrnn", {"P": 0}),
    ("alrnn-P2", "alrnn", {"P": 2}),
    ("alrnn-PM", "alrnn", {"P": M}),
    ("dendritic", "dendritic", {"bases": 3}),
    ("dendritic-clipped", "dendritic", {"bases": 3, "clipped": True}),
    ("shallow", "shallow", {"hidden": 7}),
    ("shallow-clipped", "shallow", {"hidden": 7, "clipped": True}),
]
KIND_IDS = [c[0] for c in KIND_CASES]
KIND_ARGS = [c[1:] for c in KIND_CASES]


def _f32(a):
    return a.astype(np.float32).astype(np.float64)


def _random_params(cfg, rng):
    """Bounded random dynamics (A in [0.2, 0.6], small recurrent part) and a random readout."""
    p = {"A": rng.uniform(0.2, 0.6, M)}
    if cfg["kind"] == "shallow":
        H = cfg["hidden"]
        p.update(W1=0.5 * rng.standard_normal((M, H)) / np.sqrt(H), W2=0.8 * rng.standard_normal((H, M)) / np.sqrt(M),
                 h1=0.2 * rng.standard_normal(M), h2=0.5 * rng.standard_normal(H))
    else:
        W = 0.3 * rng.standard_normal((M, M)) / np.sqrt(M)
        if cfg["kind"] in ref.ZERO_DIAGONAL_KINDS:
            np.fill_diagonal(W, 0.0)
        p.update(W=W, h=0.2 * rng.standard_normal(M))
        if cfg["kind"] == "dendritic":
            p.update(alpha=rng.uniform(-0.6, 0.6, cfg["bases"]), theta=rng.standard_normal((M, cfg["bases"])))
    p["C"] = 0.5 * rng.standard_normal((M, cfg["K"]))
    p["B"] = rng.standard_normal((O, M)) / np.sqrt(M)
    p["b"] = 0.1 * rng.standard_normal(O)
    return {k: _f32(v) for k, v in p.items()}


def _pattern(cfg, params, s, z0):
    """Activation pattern of every ReLU along the forward pass (inputs of each step)."""
    z, _ = ref.supervised_forward(cfg, params, s, z0)
    u = np.concatenate([z0[:, None], z[:, :-1]], axis=1)
    return tuple(a > 0 for a in ref.relu_arguments(cfg, ref._dynamics(params), u))


def _margin(cfg, params, s, z0):
    z, _ = ref.supervised_forward(cfg, params, s, z0)
    u = np.concatenate([z0[:, None], z[:, :-1]], axis=1)
    args = [a for a in ref.relu_arguments(cfg, ref._dynamics(params), u) if a.size]
    return min(float(np.abs(a).min()) for a in args) if args else np.inf


def _problem(kind, extra, loss, seed, Bsz=BATCH, T_=T):
    """A network, kink-free float32-representable parameters and data, targets and a mask."""
    net = SupervisedPLRNN(kind, M=M, K=K, O=O, dtype="float64", seed=0, **extra)
    cfg = net.dynamics.config
    rng = np.random.default_rng(seed)
    for _ in range(200):
        params = _random_params(cfg, rng)
        s = _f32(rng.standard_normal((Bsz, T_, K)))
        z0 = _f32(0.5 * rng.standard_normal((Bsz, M)))
        if _margin(cfg, params, s, z0) > KINK_MARGIN:
            break
    else:
        pytest.fail("could not draw kink-free test data")
    mask = (rng.random((Bsz, T_)) < 0.5).astype(np.float64)
    mask[:, -1] = 1.0
    mask[0, 0] = 0.25  # a fractional weight
    if loss == "mse":
        target = _f32(rng.standard_normal((Bsz, T_, O)))
    else:
        target = rng.integers(0, O, (Bsz, T_)).astype(np.int64)
        target[mask == 0] = 99  # never read where the mask is zero
    return net, cfg, params, s, z0, mask, target


def _native(cfg, params, s, z0, mask, target, loss):
    """(loss, grads incl. B and b, dL/dz0) from the native core."""
    dyn = {k: v for k, v in params.items() if k not in ("B", "b")}
    value, weight, grads, g_z0, _, _ = _core.supervised(dict(cfg, obs="none", N=0), dyn, params["B"], params["b"],
                                                       s, z0, mask, target, loss, True, False, False)
    assert weight == pytest.approx(float(mask.sum()))
    return value, grads, g_z0


def _n_ops(cfg, Bsz, T_):
    width = max(M, cfg["hidden"] or 0) + K + (cfg["bases"] or 0) + O + 8
    return T_ * width + O * T_ * Bsz


# ---- native vs reference ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("loss", ["mse", "ce"])
@pytest.mark.parametrize("kind,extra", KIND_ARGS, ids=KIND_IDS)
def test_native_matches_reference(kind, extra, loss, dtype):
    _, cfg, p64, s64, z064, mask64, target = _problem(kind, extra, loss, zlib.crc32(repr((kind, extra, loss)).encode()))
    c32 = lambda a: a.astype(np.float32)  # noqa: E731
    p32 = {k: c32(v) for k, v in p64.items()}
    t32 = target if loss == "ce" else c32(target)
    l64, g64, gz64 = ref.supervised_loss_and_grad(cfg, p64, s64, mask64, target, loss, z064)
    l32, g32, gz32 = ref.supervised_loss_and_grad(cfg, p32, c32(s64), c32(mask64), t32, loss, c32(z064))
    cast = (lambda a: a.astype(dtype))
    pd = {k: cast(v) for k, v in p64.items()}
    lt, gt, gzt = _native(cfg, pd, cast(s64), cast(z064), cast(mask64), target if loss == "ce" else cast(target), loss)
    n_ops = _n_ops(cfg, BATCH, T)
    # the loss is accumulated in float64 from dtype terms: the dtype's bound applies to it
    assert abs(lt - float(l64)) <= derived_tol(l32, l64, dtype, n_ops)
    for name in p64:
        assert_close(f"d/d{name}", gt[name], g32[name], g64[name], dtype, n_ops)
    assert_close("d/dz0", gzt, gz32, gz64, dtype, n_ops)
    # forward outputs through the public class
    net = SupervisedPLRNN(kind, M=M, K=K, O=O, dtype=np.dtype(dtype).name, seed=0, **extra)
    for name, value in pd.items():
        net[name] = value
    y, z = net.forward(cast(s64), z0=cast(z064), return_latent=True)
    z_ref64, y_ref64 = ref.supervised_forward(cfg, p64, s64, z064)
    z_ref32, y_ref32 = ref.supervised_forward(cfg, p32, c32(s64), c32(z064))
    assert_close("y", y, y_ref32, y_ref64, dtype, n_ops)
    assert_close("z", z, z_ref32, z_ref64, dtype, n_ops)


# ---- finite differences (float64) -------------------------------------------------------------
def _fd_check(cfg, params, s, z0, mask, target, loss, evaluate, rng):
    """Central differences of ``evaluate``'s own loss in a random direction of every parameter and
    of z0, with the truncation + rounding bound of test_reference.py."""
    value, grads, g_z0 = evaluate(params, z0)
    pattern0 = _pattern(cfg, params, s, z0)
    _, y = ref.supervised_forward(cfg, params, s, z0)
    scale = float(np.mean((np.abs(y) + (np.abs(target) if loss == "mse" else 1.0)) ** 2)) if loss == "mse" \
        else float(np.mean(np.abs(y)) + np.log(O) + 1.0)
    n_ops = _n_ops(cfg, *s.shape[:2])
    delta_max = n_ops * U64 * scale
    names = list(params) + ["z0"]
    for name in names:
        base = z0 if name == "z0" else params[name]
        d = rng.standard_normal(base.shape)
        if name == "W" and cfg["kind"] in ref.ZERO_DIAGONAL_KINDS:
            np.fill_diagonal(d, 0.0)
        d /= np.linalg.norm(d)

        def f(eta, name=name, base=base, d=d):
            p, z = dict(params), z0
            if name == "z0":
                z = base + eta * d
            else:
                p[name] = base + eta * d
            return float(evaluate(p, z)[0]), same_pattern(_pattern(cfg, p, s, z), pattern0)

        analytic = float(np.sum((g_z0 if name == "z0" else grads[name]) * d))
        assert_directional_derivative(f, analytic, delta_max, n_ops, name)
    if cfg["kind"] in ref.ZERO_DIAGONAL_KINDS:
        assert np.all(np.diag(grads["W"]) == 0)


@pytest.mark.parametrize("loss", ["mse", "ce"])
@pytest.mark.parametrize("kind,extra", KIND_ARGS, ids=KIND_IDS)
@pytest.mark.parametrize("impl", ["reference", "native"])
def test_gradient_matches_finite_differences(impl, kind, extra, loss):
    seed = zlib.crc32(repr(("fd", impl, kind, extra, loss)).encode())
    _, cfg, params, s, z0, mask, target = _problem(kind, extra, loss, seed)
    if impl == "reference":
        def evaluate(p, z):
            return ref.supervised_loss_and_grad(cfg, p, s, mask, target, loss, z)
    else:
        def evaluate(p, z):
            return _native(cfg, p, s, z, mask, target, loss)
    _fd_check(cfg, params, s, z0, mask, target, loss, evaluate, np.random.default_rng(seed))


# ---- shapes, masks, threads -------------------------------------------------------------------
@pytest.mark.parametrize("Bsz,T_", [(1, 1), (1, 2), (5, 1), (4, 40)])
@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_edge_shapes(Bsz, T_, loss):
    net, cfg, p, s, z0, mask, target = _problem("standard", {}, loss, 7, Bsz=Bsz, T_=T_)
    l_ref, g_ref, gz_ref = ref.supervised_loss_and_grad(cfg, p, s, mask, target, loss, z0)
    l_nat, g_nat, gz_nat = _native(cfg, p, s, z0, mask, target, loss)
    assert l_nat == pytest.approx(float(l_ref), rel=1e-12)
    for k in p:
        np.testing.assert_allclose(g_nat[k], g_ref[k], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(gz_nat, gz_ref, rtol=1e-10, atol=1e-13)


def test_default_z0_is_zero_and_mask_broadcasts():
    net = SupervisedPLRNN("alrnn", M=5, K=2, O=2, P=3, dtype="float64", seed=3)
    rng = np.random.default_rng(0)
    s = rng.standard_normal((4, 9, 2))
    target = rng.standard_normal((4, 9, 2))
    w = np.zeros(9)
    w[[2, 8]] = [0.5, 1.0]
    l1, g1 = net.loss_and_grad(s, target, w)
    l2, g2 = net.loss_and_grad(s, target, np.ascontiguousarray(np.broadcast_to(w, (4, 9))), z0=np.zeros((4, 5)))
    assert l1 == l2
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])
    # the weighted mean by hand
    y = net.forward(s)
    expected = (0.5 * ((y[:, 2] - target[:, 2]) ** 2).sum() + ((y[:, 8] - target[:, 8]) ** 2).sum()) / (1.5 * 4 * 2)
    assert l1 == pytest.approx(expected, rel=1e-13)


def test_cross_entropy_by_hand():
    net = SupervisedPLRNN("standard", M=4, K=1, O=3, dtype="float64", seed=1)
    rng = np.random.default_rng(2)
    s = rng.standard_normal((2, 5, 1))
    labels = np.array([[0, 0, 0, 0, 2], [0, 0, 0, 0, 1]], dtype=np.int64)
    mask = np.zeros((2, 5))
    mask[:, -1] = 1
    loss, _ = net.loss_and_grad(s, labels, mask, loss="ce")
    y = net.forward(s)[:, -1]
    p = np.exp(y) / np.exp(y).sum(1, keepdims=True)
    assert loss == pytest.approx(-(np.log(p[0, 2]) + np.log(p[1, 1])) / 2, rel=1e-13)


def test_thread_count_does_not_change_results():
    net, cfg, p, s, z0, mask, target = _problem("shallow", {"hidden": 7}, "mse", 11, Bsz=9, T_=12)
    before = pn.get_num_threads()
    try:
        pn.set_num_threads(1)
        l1, g1, z1 = _native(cfg, p, s, z0, mask, target, "mse")
        pn.set_num_threads(3)
        l3, g3, z3 = _native(cfg, p, s, z0, mask, target, "mse")
    finally:
        pn.set_num_threads(before)
    assert l1 == pytest.approx(l3, rel=1e-13)
    for k in g1:  # the chunks sum in a different grouping: rounding-level differences only
        np.testing.assert_allclose(g1[k], g3[k], rtol=1e-12, atol=1e-15)
    # per sequence, but the matrix products of a chunk of 9 and of 3 columns take different kernels
    np.testing.assert_allclose(z1, z3, rtol=1e-12, atol=1e-15)


# ---- MAR ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,extra", [("standard", {}), ("alrnn", {"P": 4}), ("shallow", {"hidden": 6})])
def test_mar_init_units_integrate_their_input(kind, extra):
    """A unit with A_i = 1, zero W (W1) row and zero bias is a perfect integrator of C_i s_t."""
    net = SupervisedPLRNN(kind, M=8, K=2, O=1, dtype="float64", seed=4, mar_units=pn.MAR(1.0, fraction=0.25), **extra)
    units = pn.MAR(1.0, fraction=0.25).resolve_units(8)
    assert list(units) == [6, 7]
    np.testing.assert_array_equal(net["A"][units], 1.0)
    wrow, bias = ("W1", "h1") if kind == "shallow" else ("W", "h")
    np.testing.assert_array_equal(net[wrow][units], 0.0)
    np.testing.assert_array_equal(net[bias][units], 0.0)
    s = np.random.default_rng(0).standard_normal((3, 50, 2))
    _, z = net.forward(s, return_latent=True)
    expected = np.cumsum(s @ net["C"][units].T, axis=1)
    np.testing.assert_allclose(z[:, :, units], expected, rtol=1e-12, atol=1e-12)
    # ... and the MAR penalty of an exactly regularised network is zero
    assert net.dynamics.mar_penalty(pn.MAR(1.0, fraction=0.25))[0] == 0.0


def test_mar_init_with_inputs_starts_silent():
    net = SupervisedPLRNN("standard", M=6, K=2, O=1, dtype="float64", seed=4)
    C_before = net["C"].copy()
    units = net.mar_init([1, 4], inputs=True)
    np.testing.assert_array_equal(net["C"][units], 0.0)
    np.testing.assert_array_equal(np.delete(net["C"], units, axis=0), np.delete(C_before, units, axis=0))
    s = np.random.default_rng(0).standard_normal((2, 30, 2))
    _, z = net.forward(s, return_latent=True)
    np.testing.assert_array_equal(z[:, :, units], 0.0)  # A = 1, no drive: they stay at z0 = 0
    test = pn.tasks.addition(10, 10, rng=0)
    with pytest.raises(ValueError, match="mar_init_inputs"):
        pn.train_supervised(net, test, test, SupervisedConfig(updates=1, mar_init_inputs=True))


def test_loss_and_grad_with_mar_adds_penalty():
    net = SupervisedPLRNN("standard", M=6, K=2, O=1, dtype="float64", seed=5)
    rng = np.random.default_rng(1)
    s, target = rng.standard_normal((3, 6, 2)), rng.standard_normal((3, 6, 1))
    mar = pn.MAR(0.7, fraction=0.5)
    l0, g0 = net.loss_and_grad(s, target)
    l1, g1 = net.loss_and_grad(s, target, mar=mar)
    pen, gpen = net.dynamics.mar_penalty(mar)
    assert pen > 0 and l1 == pytest.approx(l0 + pen, rel=1e-14)
    for k in g0:
        np.testing.assert_allclose(g1[k], g0[k] + gpen.get(k, 0), rtol=1e-14, atol=1e-16)


# ---- persistence and bad input --------------------------------------------------------------------
def test_save_load_round_trip(tmp_path):
    net = SupervisedPLRNN("dendritic", M=5, K=3, O=4, bases=2, dtype="float32", seed=8)
    net["b"] = np.arange(4, dtype=np.float32)
    net.save(tmp_path / "net.npz")
    back = SupervisedPLRNN.load(tmp_path / "net.npz")
    assert back.config == net.config
    for k in net.keys():
        np.testing.assert_array_equal(back[k], net[k])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="path"):
        SupervisedPLRNN.load(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="not a plrnn_native supervised"):
        pn.PLRNN("standard", M=3, N=1).save(tmp_path / "other.npz")
        SupervisedPLRNN.load(tmp_path / "other.npz")


def test_n_params_counts_free_scalars():
    net = SupervisedPLRNN("standard", M=10, K=2, O=1)
    # A 10, W 100 - 10 (zero diagonal), h 10, C 20, B 10, b 1
    assert net.n_params == 10 + 90 + 10 + 20 + 10 + 1


def _bad_input_cases():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((2, 5, 2))
    t = rng.standard_normal((2, 5, 1))
    lab = np.zeros((2, 5), np.int64)
    nan_s = s.copy()
    nan_s[1, 2, 0] = np.nan
    return [
        ("s-dtype", dict(s=s.astype(np.float32), target=t), TypeError, "s"),
        ("s-nan", dict(s=nan_s, target=t), ValueError, "s: contains NaN"),
        ("s-2d", dict(s=s[0], target=t), ValueError, "s: expected a batch"),
        ("s-noncontig", dict(s=np.asfortranarray(s), target=t), ValueError, "s: must be C-contiguous"),
        ("s-wrong-K", dict(s=rng.standard_normal((2, 5, 3)), target=t), ValueError, "s: expected shape"),
        ("target-shape", dict(s=s, target=t[:, :4]), ValueError, "target"),
        ("target-inf", dict(s=s, target=np.full_like(t, np.inf)), ValueError, "target: contains NaN"),
        ("mask-negative", dict(s=s, target=t, mask=-np.ones((2, 5))), ValueError, "mask: weights must be >= 0"),
        ("mask-zero", dict(s=s, target=t, mask=np.zeros((2, 5))), ValueError, "mask: no step is scored"),
        ("mask-shape", dict(s=s, target=t, mask=np.ones(4)), ValueError, "mask"),
        ("loss", dict(s=s, target=t, loss="l1"), ValueError, "loss"),
        ("labels-float", dict(s=s, target=lab.astype(float), loss="ce"), TypeError, "target: cross-entropy needs int64"),
        ("labels-range", dict(s=s, target=lab + 1, loss="ce"), ValueError, "target: class label 1"),
        ("z0-shape", dict(s=s, target=t, z0=np.zeros((2, 3))), ValueError, "z0"),
    ]


@pytest.mark.parametrize("case,kwargs,exc,match", _bad_input_cases(), ids=[c[0] for c in _bad_input_cases()])
def test_bad_input_raises_naming_the_argument(case, kwargs, exc, match):
    net = SupervisedPLRNN("standard", M=4, K=2, O=1, dtype="float64", seed=0)
    with pytest.raises(exc, match=match):
        net.loss_and_grad(**kwargs)


def test_bad_construction_and_config():
    with pytest.raises(ValueError, match="K"):
        SupervisedPLRNN(K=0)
    with pytest.raises(ValueError, match="O"):
        SupervisedPLRNN(O=0)
    with pytest.raises(ValueError, match="units"):
        SupervisedPLRNN(M=4, mar_units=[5])
    with pytest.raises(ValueError, match="updates"):
        SupervisedConfig(updates=0)
    with pytest.raises(ValueError, match="mar_fraction"):
        SupervisedConfig(mar_fraction=0.0)
    with pytest.raises(ValueError, match="lr"):
        SupervisedConfig(lr=-1.0)
    net = SupervisedPLRNN(M=4, K=1, O=1, dtype="float64")
    with pytest.raises(ValueError, match="B: expected shape"):
        net["B"] = np.zeros((2, 4))
    with pytest.raises(KeyError, match="L"):
        net["L"]


# ---- training ---------------------------------------------------------------------------------
# Observed (seeds 0-2): addition T=20 normalized MSE 0.08-0.11 after 400 updates; digits8 test
# accuracy 0.58-0.63 after 300 updates (chance 0.10). The bounds leave a wide margin for other
# BLAS/compilers and still fail for a model that learns nothing (normalized MSE ~1, accuracy ~0.1).
@pytest.mark.parametrize("seed", [0, 1])
def test_training_beats_the_trivial_predictor_on_addition(seed):
    test = pn.tasks.addition(500, 20, rng=100 + seed)
    net = SupervisedPLRNN("standard", M=16, K=2, O=1, seed=seed)
    cfg = SupervisedConfig(updates=400, lr=3e-3, lr_end=1e-3, seed=seed, mar_weight=5.0, mar_reduce="mean",
                           mar_init=True, eval_every=200)
    result = pn.train_supervised(net, lambda n, rng: pn.tasks.addition(n, 20, rng), test, cfg)
    assert result.status == "completed" and result.updates_done == 400
    assert [h["update"] for h in result.history] == [200, 400]
    assert result.metrics["normalized_mse"] < 0.5


def test_training_beats_chance_on_digits():
    pytest.importorskip("sklearn")  # the digits come from scikit-learn (extra "tasks")
    train, test = pn.tasks.digits("train", 8), pn.tasks.digits("test", 8)
    net = SupervisedPLRNN("standard", M=32, K=1, O=10, seed=0)
    result = pn.train_supervised(net, train, test, SupervisedConfig(updates=300, lr=3e-3, seed=0))
    assert result.metrics["accuracy"] > 3 * result.metrics["chance_accuracy"]


def test_training_is_reproducible():
    test = pn.tasks.addition(50, 10, rng=1)

    def run():
        net = SupervisedPLRNN("alrnn", M=8, K=2, O=1, P=4, seed=3)
        res = pn.train_supervised(net, lambda n, rng: pn.tasks.addition(n, 10, rng), test,
                                  SupervisedConfig(updates=30, batch_size=8, seed=5))
        return net, res

    (n1, r1), (n2, r2) = run(), run()
    for k in n1.keys():
        np.testing.assert_array_equal(n1[k], n2[k])
    assert r1.metrics == r2.metrics


def test_divergence_stops_and_keeps_the_last_finite_state():
    test = pn.tasks.addition(50, 30, rng=1)
    net = SupervisedPLRNN("standard", M=8, K=2, O=1, seed=0)
    cfg = SupervisedConfig(updates=200, lr=1e4, lr_end=1e4, grad_clip=0.0, seed=0, eval_every=1)
    good = [{k: v.copy() for k, v in net.params.items()}]
    result = pn.train_supervised(net, lambda n, rng: pn.tasks.addition(n, 30, rng), test, cfg,
                                 callback=lambda record: good.append({k: v.copy() for k, v in net.params.items()}))
    assert result.status == "diverged", result.message
    assert result.updates_done < 200 and len(good) == result.updates_done + 1
    for k, v in net.params.items():  # the state after the last complete update
        np.testing.assert_array_equal(v, good[-1][k])
    assert "finite" in result.metrics


def test_training_rejects_mismatched_tasks():
    net = SupervisedPLRNN("standard", M=8, K=1, O=10)
    add = pn.tasks.addition(10, 10, rng=0)
    with pytest.raises(ValueError, match="train: the task has K=2"):
        pn.train_supervised(net, add, add)
    pytest.importorskip("sklearn")  # a task that fits the net: the digits (extra "tasks")
    with pytest.raises(TypeError, match="evaluation"):
        pn.train_supervised(net, pn.tasks.digits("train", 8), object())


def test_evaluate_reads_the_scored_step_when_it_is_not_the_last():
    base = pn.tasks.addition(6, 12, rng=0)
    task = pn.tasks.SupervisedTask(name="mid", s=base.s, y=base.y, loss="mse", n_outputs=1,
                                   scored=np.array([5]), trivial_mse=base.trivial_mse)
    net = SupervisedPLRNN("standard", M=5, K=2, O=1, dtype="float64", seed=0)
    from plrnn_native.supervised import evaluate, scored_outputs

    out = scored_outputs(net, task, batch=4)
    np.testing.assert_allclose(out, net.forward(np.ascontiguousarray(base.s))[:, 5], rtol=1e-14, atol=1e-15)
    assert evaluate(net, task)["mse"] == pytest.approx(float(np.mean((out - base.y) ** 2)), rel=1e-12)
