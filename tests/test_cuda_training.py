"""The device-resident trainer (cuda/training/train_step.cu, ``TrainConfig(device=...)``) against the CPU trainer.

Both trainers draw their batches with the same counter-based sampler (csrc/training/counter_rng.h), so
for the same seed they see the same batches and must take the same optimiser steps (loss, gradient norm and parameters compared after
every step, float64, with a tolerance of a few hundred ulps of accumulated rounding). Longer series
check the sampling (deterministic per seed, resumable, inside the data) and that training lowers
the loss. The GPU tests skip where CUDA is unavailable; the configuration checks run everywhere.
"""

from __future__ import annotations

import numpy as np
import plrnn_native as pn
import pytest
from plrnn_native import cuda
from plrnn_native.training import TrainConfig, Trainer

requires_gpu = pytest.mark.skipif(
    not cuda.is_available(), reason=f"CUDA unavailable: {cuda.unavailable_reason()}"
)
no_gpu = pytest.mark.skipif(cuda.is_available(), reason="a CUDA device is present")

RTOL = 1e-9


def make(kind="standard", obs="identity", K=0, dtype="float64", seed=0, **kw):
    extra = {"hidden": 6} if kind == "shallow" else {"bases": 2} if kind == "dendritic" else {}
    model = pn.PLRNN(kind, 8, 3, K=K, obs=obs, dtype=dtype, seed=seed, **extra, **kw)
    rng = np.random.default_rng(seed)
    model["A"] = rng.uniform(0.3, 0.6, 8).astype(dtype)
    return model


def series(T, N=3, K=0, seed=1, dtype="float64"):
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    x = (np.sin(0.1 * t + np.arange(N)) + 0.1 * rng.standard_normal((T, N))).astype(dtype)
    s = rng.standard_normal((T, K)).astype(dtype) if K else None
    return x, s


CASES = [
    # id, kind, obs, K, config overrides
    ("standard-sparse", "standard", "identity", 0, dict(forcing="sparse", tau=3)),
    ("alrnn-gtf-clip", "alrnn", "identity", 2, dict(forcing="generalized", alpha=0.3, grad_clip=0.05)),
    ("dendritic-none-mar", "dendritic", "identity", 0, dict(forcing="none", mar_weight=0.1)),
    ("shallow-linear-sparse", "shallow", "linear", 1, dict(forcing="sparse", tau=2, mar_weight=0.05)),
    ("standard-linear-gtf-radam", "standard", "linear", 0,
     dict(forcing="generalized", alpha=0.2, optimizer="radam", mar_weight=0.1, mar_select="first")),
]


@requires_gpu
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_device_steps_match_cpu(case):
    _, kind, obs, K, overrides = case
    seq_len = 12
    x, s = series(seq_len, K=K)
    cfgs = {dev: TrainConfig(seq_len=seq_len, batch_size=5, batches_per_epoch=4, epochs=3, lr=5e-3, device=dev,
                             **overrides) for dev in ("cpu", "cuda")}
    trainers = {dev: Trainer(make(kind, obs, K), x, s, cfgs[dev]) for dev in cfgs}
    for step in range(8):
        lr = 5e-3
        lc, nc = trainers["cpu"].train_batch(lr)
        lg, ng = trainers["cuda"].train_batch(lr)
        assert lg == pytest.approx(lc, rel=RTOL), f"loss at step {step}"
        assert ng == pytest.approx(nc, rel=RTOL), f"gradient norm at step {step}"
    trainers["cuda"]._pull_from_native()
    for name, p in trainers["cpu"].model.items():
        np.testing.assert_allclose(trainers["cuda"].model[name], p, rtol=1e-8, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(trainers["cuda"].optimizer.m[name], trainers["cpu"].optimizer.m[name],
                                   rtol=1e-8, atol=1e-14, err_msg=f"adam m {name}")
    assert trainers["cuda"].optimizer.t == trainers["cpu"].optimizer.t == 8


@requires_gpu
@pytest.mark.parametrize("case", CASES[:3], ids=[c[0] for c in CASES[:3]])
def test_device_steps_match_cpu_on_long_series(case):
    """Both trainers draw their batches with the same counter-based sampler (csrc/training/counter_rng.h),
    so on data with many windows, and with teacher noise, whole native epochs (run) agree step by step."""
    _, kind, obs, K, overrides = case
    xs = [series(90, K=K, seed=1), series(47, K=K, seed=2)]
    cfgs = {dev: TrainConfig(seq_len=12, batch_size=5, batches_per_epoch=4, epochs=3, lr=5e-3, device=dev,
                             teacher_noise=0.02, seed=11, **overrides) for dev in ("cpu", "cuda")}
    trainers = {dev: Trainer(make(kind, obs, K), [x for x, _ in xs], [s for _, s in xs] if K else None, cfgs[dev])
                for dev in cfgs}
    results = {dev: t.train() for dev, t in trainers.items()}
    for a, b in zip(results["cpu"].history, results["cuda"].history):
        # teacher noise: std::cos on the host, cospi on the device (ulps); everything else as above
        assert b["loss"] == pytest.approx(a["loss"], rel=RTOL) and b["grad_norm"] == pytest.approx(a["grad_norm"], rel=RTOL)
    for name, p in trainers["cpu"].model.items():
        np.testing.assert_allclose(trainers["cuda"].model[name], p, rtol=1e-8, atol=1e-12, err_msg=name)


@requires_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_device_training_lowers_loss_and_is_reproducible(dtype):
    x, _ = series(400, dtype=dtype)
    cfg = TrainConfig(seq_len=30, batch_size=16, batches_per_epoch=20, epochs=6, lr=3e-3, lr_end=1e-3,
                      device="cuda", teacher_noise=0.01, seed=3)
    runs = []
    for _ in range(2):
        model = make(dtype=dtype)
        result = Trainer(model, x, config=cfg).train()
        assert result.status == "completed"
        runs.append((model, result))
    (m1, r1), (m2, r2) = runs
    assert r1.history[-1]["loss"] < r1.history[0]["loss"]
    for name in m1.keys():  # deterministic: same seed, same device -> bit-identical
        np.testing.assert_array_equal(m1[name], m2[name])


@requires_gpu
def test_device_checkpoint_resume(tmp_path):
    x, _ = series(300)
    cfg = TrainConfig(seq_len=20, batch_size=8, batches_per_epoch=5, epochs=4, device="cuda", seed=1)
    straight = make()
    Trainer(straight, x, config=cfg).train()
    model = make()
    t = Trainer(model, x, config=cfg)
    t.train(epochs=2)
    t.save_checkpoint(tmp_path / "ck.npz")
    resumed = Trainer.resume(tmp_path / "ck.npz", x)
    resumed.train()
    for name in straight.keys():
        np.testing.assert_array_equal(resumed.model[name], straight[name])


@requires_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_device_divergence_restores(dtype):
    # one good epoch, then an absurd step (lr 1e30, no clipping): the next loss overflows in either
    # precision (a merely large lr can leave float64 losses finite near 1e135), and the trainer must
    # restore the state after the good epoch
    x, _ = series(100, dtype=dtype)
    model = make(dtype=dtype)
    cfg = TrainConfig(seq_len=20, batch_size=4, batches_per_epoch=3, epochs=3, device="cuda", forcing="none")
    trainer = Trainer(model, x, config=cfg)
    trainer.train(1)
    good = {k: v.copy() for k, v in model.items()}
    trainer.config.lr = trainer.config.lr_end = 1e30
    trainer.config.grad_clip = 0.0
    result = trainer.train()
    assert result.status == "diverged" and "restored" in result.message
    assert trainer.epoch == 1 and result.epochs_done == 1
    for name, value in good.items():
        np.testing.assert_array_equal(model[name], value)
    assert all(np.isfinite(p).all() for p in model.params.values())


@requires_gpu
def test_device_adaptive_alpha_rejected():
    x, _ = series(50)
    with pytest.raises(ValueError, match="adaptive_alpha"):
        Trainer(make(), x, config=TrainConfig(seq_len=10, forcing="generalized", adaptive_alpha=True, device="cuda"))


# ---- everywhere --------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "CUDA:0"])
def test_config_rejects_bad_device(bad):
    with pytest.raises(ValueError, match="device"):
        TrainConfig(device=bad)


def test_config_device_roundtrip():
    cfg = TrainConfig(device="cuda:1")
    assert TrainConfig.from_dict(cfg.to_dict()).device == "cuda:1"
    d = cfg.to_dict()
    del d["device"]  # checkpoints written before the option existed
    assert TrainConfig.from_dict(d).device == "cpu"


@no_gpu
def test_trainer_cuda_without_gpu_says_why():
    x, _ = series(50)
    with pytest.raises(RuntimeError, match="CUDA is unavailable"):
        Trainer(make(), x, config=TrainConfig(seq_len=10, device="cuda"))


@no_gpu
def test_trainer_auto_is_cpu_without_gpu():
    x, _ = series(80)
    cfgs = [TrainConfig(seq_len=10, batch_size=4, batches_per_epoch=3, epochs=2, device=d) for d in ("auto", "cpu")]
    models = [make(), make()]
    for m, c in zip(models, cfgs):
        Trainer(m, x, config=c).train()
    for name in models[0].keys():  # the same CPU run (last-ulp differences of the CPU core allowed)
        np.testing.assert_allclose(models[0][name], models[1][name], rtol=1e-12, atol=1e-14)
