"""The CPU trainer's native loop (csrc/training/train_step.h, ``Trainer`` on the CPU) against its readable
reference: the counter-based sampler in NumPy (training.sample_windows / teacher_noise), the model's
loss_and_grad on that batch, and the Python Adam/RAdam with clipping of optim.py.

Tolerances (float64): the native step takes the same batch (windows bit for bit) through the same
core loss_and_grad, so the loss is equal exactly where nothing else enters; teacher noise (std::cos vs
NumPy's cos: 1 ulp), pinv(B) (complete orthogonal decomposition vs SVD: ~cond(B) eps) and the update's
fused multiply-adds differ by a few ulps, which three Adam steps (each ~lr sign(g)) keep at ~1e-15
relative: rtol 1e-9 leaves six orders of margin and still catches a wrong window, noise draw, clip or
bias correction (each changes results at >= 1e-4).
"""

import math

import numpy as np
import pytest

import plrnn_native as pn
from plrnn_native import optim
from plrnn_native.training import TrainConfig, Trainer, sample_windows, teacher_noise


def _series(T, N=3, K=0, seed=1, nan=0.0):
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    x = np.sin(0.1 * t + np.arange(N)) + 0.1 * rng.standard_normal((T, N))
    if nan:
        x[rng.random(x.shape) < nan] = np.nan
        x[0] = 0.3  # a complete first row
    s = rng.standard_normal((T, K)) if K else None
    return x, s


CASES = [
    # id, kind, obs, K, missing, config overrides
    ("standard-sparse", "standard", "identity", 0, 0.0, dict(forcing="sparse", tau=3)),
    ("alrnn-gtf-clip-inputs", "alrnn", "identity", 2, 0.0, dict(forcing="generalized", alpha=0.3, grad_clip=0.05)),
    ("dendritic-none-mar-noise", "dendritic", "identity", 0, 0.0,
     dict(forcing="none", mar_weight=0.1, teacher_noise=0.05)),
    ("shallow-linear-sparse-missing", "shallow", "linear", 1, 0.1, dict(forcing="sparse", tau=2, mar_weight=0.05)),
    ("standard-linear-gtf-radam-noise", "standard", "linear", 0, 0.0,
     dict(forcing="generalized", alpha=0.2, optimizer="radam", teacher_noise=0.1, mar_select="first",
          mar_weight=0.1)),
]


def _model(kind, obs, K, seed=0, dtype="float64"):
    extra = {"hidden": 6} if kind == "shallow" else {"bases": 2} if kind == "dendritic" else \
        {"P": 3} if kind == "alrnn" else {}
    return pn.PLRNN(kind, 6, 3, K=K, obs=obs, dtype=dtype, seed=seed, **extra)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_native_steps_equal_the_reference_steps(case):
    _, kind, obs, K, missing, overrides = case
    pn.set_num_threads(1)
    xs = [_series(60, K=K, seed=1, nan=missing), _series(35, K=K, seed=2, nan=missing)]
    cfg = TrainConfig(seq_len=12, batch_size=5, batches_per_epoch=3, epochs=2, lr=5e-3, seed=7, **overrides)
    trainer = Trainer(_model(kind, obs, K), [x for x, _ in xs], [s for _, s in xs] if K else None, cfg)
    assert trainer._native is not None
    ref = _model(kind, obs, K)
    adam = optim.Adam(ref.params, cfg.optimizer, cfg.betas, cfg.eps)
    fk = {"sparse": {"forcing": "sparse", "tau": cfg.tau}, "none": {"forcing": "none"},
          "generalized": {"forcing": "generalized", "alpha": cfg.alpha}}[cfg.forcing]
    for k in range(4):
        xb, sb, mb = trainer.sample_batch(k)  # the reference sampler
        same_params = all(np.array_equal(trainer.model[name], p) for name, p in ref.items())
        want, grads = ref.loss_and_grad(xb, sb, mar=cfg.mar(), mask=mb, **fk)
        norm = optim.global_norm(grads)
        optim.clip_(grads, norm, cfg.grad_clip)
        adam.step(ref._params, grads, cfg.lr)
        loss, got_norm = trainer.train_batch(cfg.lr)
        if same_params and cfg.teacher_noise == 0 and obs == "identity":
            # the same windows and parameters through the same core call (the two Adam updates
            # may differ in the last bit, after which only the tolerance below applies)
            assert loss == want, k
        assert loss == pytest.approx(want, rel=1e-12), k
        assert got_norm == pytest.approx(norm, rel=1e-12), k
    assert trainer.optimizer.t == adam.t == trainer.batches_done == 4
    for name, p in ref.items():
        np.testing.assert_allclose(trainer.model[name], p, rtol=1e-9, atol=1e-15, err_msg=name)
        np.testing.assert_allclose(trainer.optimizer.m[name], adam.m[name], rtol=1e-9, atol=1e-15, err_msg=name)


def test_sampler_reference():
    prefix = np.cumsum([0, 19, 6, 1])  # three series with 19, 6 and 1 windows
    counts = np.zeros(26, int)
    for k in range(2000):
        for i, t0 in sample_windows(3, k, 8, prefix):
            assert 0 <= t0 < prefix[i + 1] - prefix[i]
            counts[prefix[i] + t0] += 1
    # every window equally likely: chi-square over 26 cells, 16000 draws (p > 1e-6 for a fair sampler)
    expected = counts.sum() / 26
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 70, chi2
    assert sample_windows(3, 5, 8, prefix) == sample_windows(3, 5, 8, prefix)  # a function of (seed, step)
    assert sample_windows(3, 5, 8, prefix) != sample_windows(4, 5, 8, prefix)
    z = teacher_noise(1, 2, (40, 50, 3)).ravel()
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02 and np.isfinite(z).all()
    assert np.array_equal(teacher_noise(1, 2, (6,)), teacher_noise(1, 2, (6,)))


@pytest.mark.parametrize("kind", ["standard", "shallow"])
def test_results_do_not_depend_on_the_thread_count(kind):
    """The same seed gives the same bits, run after run and on any number of threads (the batch of 24 is
    cut into 3 chunks whatever the thread count: csrc/core/thread_pool.h, batch_chunks)."""
    x, _ = _series(300)
    results = []
    for threads in (1, 1, 2, 3):  # conftest restores the thread count
        pn.set_num_threads(threads)
        model = pn.PLRNN(kind, M=8, N=3, seed=0, **({"hidden": 30} if kind == "shallow" else {}))
        Trainer(model, x, config=TrainConfig(epochs=3, seq_len=40, batch_size=24, batches_per_epoch=5,
                                             teacher_noise=0.01)).train()
        results.append({k: v.copy() for k, v in model.items()})
    for other in results[1:]:
        for k in results[0]:
            assert np.array_equal(results[0][k], other[k]), k


def test_one_native_call_per_epoch():
    x, _ = _series(300)
    trainer = Trainer(pn.PLRNN("standard", M=8, N=3, seed=0), x,
                      config=TrainConfig(epochs=3, seq_len=40, batch_size=8, batches_per_epoch=7))
    native, calls = trainer._native, []

    class Counting:
        def __getattr__(self, name):
            return getattr(native, name)

        def run(self, steps, *args):
            calls.append(steps)
            return native.run(steps, *args)

    trainer._native = Counting()
    result = trainer.train()
    assert result.status == "completed" and calls == [7, 7, 7] and trainer.batches_done == 21


def test_adaptive_alpha_keeps_the_python_loop_with_the_same_sampler():
    x, _ = _series(300)
    cfg = TrainConfig(epochs=2, seq_len=40, batch_size=8, batches_per_epoch=3, forcing="generalized",
                      adaptive_alpha=True)
    trainer = Trainer(pn.PLRNN("standard", M=8, N=3, seed=0), x, config=cfg)
    assert trainer._native is None
    assert trainer.train().status == "completed" and trainer.batches_done == 6


def test_divergence_stops_the_native_epoch_and_restores():
    x, _ = _series(300)
    cfg = TrainConfig(epochs=3, seq_len=40, batch_size=8, batches_per_epoch=5, lr=1e12, lr_end=1e12, grad_clip=0.0)
    model = pn.PLRNN("standard", M=8, N=3, seed=0)
    good = {"params": {k: v.copy() for k, v in model.items()}, "t": 0}

    def remember(tr, record):  # the state at the end of each complete epoch
        good.update(params={k: v.copy() for k, v in tr.model.items()}, t=tr.optimizer.t)

    trainer = Trainer(model, x, config=cfg, callback=remember)
    result = trainer.train()
    assert result.status == "diverged"
    assert all(np.array_equal(model[k], good["params"][k]) for k in model.keys())
    assert trainer.optimizer.t == good["t"] and len(trainer.history) == result.epochs_done == trainer.epoch
    assert all(np.isfinite(v).all() for _, v in model.items())


def test_binding_checks_its_arguments():
    model = pn.PLRNN("standard", M=4, N=2, seed=0)
    x = np.zeros((30, 2))
    args = lambda **kw: dict(dict(cfg=model.config, params=model._params, xs=[x], ss=[None], masks=[None],  # noqa: E731
                                  batch_size=2, seq_len=10, forcing="sparse", tau=5, alpha=0.0, grad_clip=0.0,
                                  optimizer="adam", beta1=0.9, beta2=0.999, eps=1e-8, teacher_noise=0.0, seed=0,
                                  mar_units=None, mar_weight=0.0, mar_reduce="sum"), **kw)
    pn._core.Trainer(**args())
    for kw, err, word in ((dict(masks=[]), ValueError, "masks"), (dict(xs=[x.astype(np.float32)]), TypeError, "x[0]"),
                          (dict(masks=[np.ones((30, 2), bool)]), TypeError, "masks[0]"),
                          (dict(seq_len=31), ValueError, "seq_len"), (dict(optimizer="sgd"), ValueError, "optimizer"),
                          (dict(device=1), ValueError, "device"), (dict(mar_reduce="max"), ValueError, "mar_reduce"),
                          (dict(mar_units=np.array([0, 9]), mar_weight=1.0), ValueError, "units")):
        with pytest.raises(err, match=__import__("re").escape(word)):
            pn._core.Trainer(**args(**kw))
    trainer = pn._core.Trainer(**args())
    with pytest.raises(ValueError, match="steps"):
        trainer.run(0, 1e-3, 0.0, 1, 0)
    loss, norm, updated, finite = trainer.run(3, 1e-3, 0.0, 1, 0)
    assert len(loss) == 3 and updated.all() and finite.all() and np.all(np.isfinite(norm))
    assert math.isfinite(trainer.step(1e-3, 0.0, 4, 3)[0])


def _adam_reference(p, m, v, g, lr, b1, b2, eps, radam, t):
    """Adam / RAdam as the papers write them (float64), the reference of csrc/training/adam.h."""
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    c1, c2 = 1 - b1**t, 1 - b2**t
    if radam:
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * b2**t / c2
        if rho_t <= 5:
            return p - lr / c1 * m, m, v
        r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        return p - lr / c1 * r * m / (np.sqrt(v / c2) + eps), m, v
    return p - lr / c1 * m / (np.sqrt(v / c2) + eps), m, v


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("radam", [False, True])
def test_adam_update_is_the_same_in_packets_and_one_by_one(dtype, radam):
    """The host update runs in SIMD packets with a scalar tail (csrc/training/adam.h, apply_all): an array
    of 19 elements gives the same bits as 19 one-element arrays (RAdam's momentum phase included)."""
    rng = np.random.default_rng(5)
    n = 19
    p = rng.standard_normal(n).astype(dtype)
    m, v = np.zeros(n, dtype), np.zeros(n, dtype)
    ones = [(p[i:i + 1].copy(), m[i:i + 1].copy(), v[i:i + 1].copy()) for i in range(n)]
    for t in range(1, 9):
        g = rng.standard_normal(n).astype(dtype)
        pn._core.adam_step({"a": p}, {"a": g}, {"a": m}, {"a": v}, 1e-2, 0.9, 0.999, 1e-8, radam, t)
        for i, (pi, mi, vi) in enumerate(ones):
            pn._core.adam_step({"a": pi}, {"a": g[i:i + 1]}, {"a": mi}, {"a": vi}, 1e-2, 0.9, 0.999, 1e-8, radam, t)
        for got, want in zip((p, m, v), zip(*ones)):
            assert got.tobytes() == np.concatenate(want).tobytes(), t


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("radam", [False, True])
def test_native_adam_update_equals_the_formulas(dtype, radam):
    """_core.adam_step (the update of every trainer) against the formulas, t = 1 .. 8 (RAdam's momentum
    phase, rho_t <= 5, lasts while t <= 5 at beta2 = 0.999). Tolerance: per step a handful of roundings in
    dtype on the update (|dp| ~ lr); 8 eps_dtype (|p| + |dp|) per step, accumulated over the steps."""
    rng = np.random.default_rng(3)
    p = {"a": rng.standard_normal((4, 5)).astype(dtype), "b": rng.standard_normal(7).astype(dtype)}
    m = {k: np.zeros_like(a) for k, a in p.items()}
    v = {k: np.zeros_like(a) for k, a in p.items()}
    ref = {k: (a.astype(np.float64), np.zeros(a.shape), np.zeros(a.shape)) for k, a in p.items()}
    eps_d = np.finfo(dtype).eps
    for t in range(1, 9):
        g = {k: rng.standard_normal(a.shape).astype(dtype) for k, a in p.items()}
        pn._core.adam_step(p, g, m, v, 1e-2, 0.9, 0.999, 1e-8, radam, t)
        for k in p:
            ref[k] = _adam_reference(*ref[k], g[k].astype(np.float64), 1e-2, 0.9, 0.999, 1e-8, radam, t)
            tol = 8 * eps_d * t * (np.abs(ref[k][0]) + 1e-2)
            assert np.all(np.abs(p[k] - ref[k][0]) <= tol), (k, t)
            np.testing.assert_allclose(m[k], ref[k][1], rtol=8 * t * eps_d, atol=8 * t * eps_d)
    with pytest.raises(ValueError, match="grads, m, v: missing 'b'"):
        pn._core.adam_step(p, {"a": g["a"]}, m, v, 1e-2, 0.9, 0.999, 1e-8, radam, 9)
    with pytest.raises(TypeError, match="a"):
        pn._core.adam_step(p, {k: a.astype(np.float16) for k, a in g.items()}, m, v, 1e-2, 0.9, 0.999, 1e-8, radam, 9)
    frozen = {k: a.copy() for k, a in p.items()}
    frozen["a"].flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        pn._core.adam_step(frozen, g, m, v, 1e-2, 0.9, 0.999, 1e-8, radam, 9)
