"""VITrainer (plrnn_native.vi): variational inference recovers the latent path and the observation noise
of data generated from a known latent model, deterministically for a seed, and refuses bad settings."""

import numpy as np
import pytest

import plrnn_native as pn
from plrnn_native import vi


def _oscillator(T=3000, seed=0):
    """A damped noisy rotation z (2-d), seen through a Gaussian channel (N=3, noise 0.2) and Poisson counts."""
    rng = np.random.default_rng(seed)
    th = 0.15
    A = 0.98 * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    z = np.zeros((T, 2))
    z[0] = [1.0, 0.0]
    for t in range(1, T):
        z[t] = A @ z[t - 1] + 0.1 * rng.standard_normal(2)
    x = z @ rng.normal(0, 1, (3, 2)).T + 0.2 * rng.standard_normal((T, 3))
    q = rng.poisson(np.exp(0.5 * z @ rng.normal(0, 1, (2, 4)) + 0.5)).astype(np.float64)
    return z, {"gaussian": {"x": x}, "poisson": {"q": q}}


def _train(data, epochs=40, seed=0):
    model = pn.PLRNN("standard", M=2, N=1, dtype="float64", seed=seed)
    trainer = vi.VITrainer(model, data, seq_len=50, batch_size=8, lr=3e-3, lr_end=1e-3, seed=seed)
    trainer.fit(epochs, 20)
    return trainer


def test_recovers_latent_path_and_noise():
    z, data = _oscillator()
    trainer = _train(data, epochs=60)  # converged: the loss changes < 1 % over the last 10 epochs
    assert trainer.stopped is None
    losses = [h["loss"] for h in trainer.history]
    assert losses[-1] < 0.5 * losses[0]  # -ELBO per step falls from ~10 to ~3.5
    mu, sd = trainer.posterior()
    X = np.c_[mu, np.ones(len(z))]
    coef, *_ = np.linalg.lstsq(X, z, rcond=None)
    r2 = 1 - ((X @ coef - z) ** 2).sum(0) / ((z - z.mean(0)) ** 2).sum(0)
    # the posterior means determine the true states up to a linear map (the latent space's gauge):
    # with observation noise 0.2 against a state spread of ~0.5, R^2 ~ 0.95 is reached; 0.9 leaves margin
    assert np.all(r2 > 0.9), r2
    sigma = 1e-3 + np.exp(trainer.params["gaussian.log_sigma"])
    assert np.all((sigma > 0.14) & (sigma < 0.28)), sigma  # the true noise is 0.2
    # after training the latent model is an ordinary PLRNN
    free = trainer.model.generate(100, z0=mu[0], return_latent=True)[1]
    assert np.isfinite(free).all()


def test_deterministic_for_a_seed():
    _, data = _oscillator(T=600)
    a, b = _train(data, epochs=3), _train(data, epochs=3)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert all(np.array_equal(a.model.params[k], b.model.params[k]) for k in a.model.params)
    c = _train(data, epochs=3, seed=1)
    assert [h["loss"] for h in c.history] != [h["loss"] for h in a.history]


def test_bad_settings():
    _, data = _oscillator(T=200)
    model = pn.PLRNN("standard", M=2, N=1, dtype="float64")
    with pytest.raises(ValueError, match="seq_len"):
        vi.VITrainer(model, data, seq_len=500)
    with pytest.raises(ValueError, match="anneal_start"):
        vi.VITrainer(model, data, seq_len=50, anneal_start=0.9)
    with pytest.raises(ValueError, match="steps"):
        vi.VITrainer(model, {"gaussian": data["gaussian"], "poisson": {"q": data["poisson"]["q"][:100]}}, seq_len=50)
    with pytest.raises(ValueError, match="modality"):
        vi.VITrainer(model, {"eeg": data["gaussian"]}, seq_len=50)
    x = data["gaussian"]["x"].copy()
    x[150, 1] = np.nan  # late in the series: found at construction, not when a window first holds it
    with pytest.raises(ValueError, match=r"\['x'\]"):
        vi.VITrainer(model, {"gaussian": {"x": x}}, seq_len=50)
    with pytest.raises(ValueError, match="counts"):
        vi.VITrainer(model, {"poisson": {"q": data["poisson"]["q"] + 0.5}}, seq_len=50)
    with pytest.raises(ValueError, match="s:"):
        vi.VITrainer(pn.PLRNN("standard", M=2, N=1, K=1, dtype="float64"), data, seq_len=50)


def test_evaluate():
    z, data = _oscillator(T=3600)
    train = {k: {kk: v[:3000] for kk, v in obs.items()} for k, obs in data.items()}
    test = {k: {kk: v[3000:] for kk, v in obs.items()} for k, obs in data.items()}
    labels = (np.arctan2(z[:, 1], z[:, 0]) > 0).astype(np.int64)  # a categorical channel: the phase's sign
    train["categorical"] = {"c": labels[:3000]}
    test["categorical"] = {"c": labels[3000:]}
    trainer = _train(train, epochs=60)
    result = vi.evaluate(trainer, test, seed=0)
    assert result["KL_z_variant"] == "binned" and np.isfinite(result["KL_z"]) and result["KL_z"] >= 0
    assert np.isfinite(result["D_stsp"]) and 0 <= result["D_H"] <= 1
    # the posterior rates explain most of the counts' deviance beyond their mean rates
    assert result["poisson"]["explained"] > 0.3, result["poisson"]
    cat = result["categorical"]
    assert np.sum(cat["posterior"]["confusion"]) == 600
    assert cat["posterior"]["accuracy"] > cat["chance"] + 0.2, cat  # the sign of the phase is in the posterior
    with pytest.raises(ValueError, match="gen_factor"):
        vi.evaluate(trainer, test, gen_factor=0.5)


def test_checkpoint_resume_is_exact_and_interrupt_keeps_the_last_epoch(tmp_path, monkeypatch):
    _, data = _oscillator(T=600)
    whole = _train(data, epochs=4)
    path = tmp_path / "vi.npz"
    whole.save_checkpoint(path)
    # Ctrl-C in the middle of epoch 3: the checkpoint holds the state after epoch 2, and resuming from it
    # gives the uninterrupted result
    model = pn.PLRNN("standard", M=2, N=1, dtype="float64", seed=0)
    cut = vi.VITrainer(model, data, seq_len=50, batch_size=8, lr=3e-3, lr_end=1e-3, seed=0)
    real_step, calls = cut.step, []

    def step(*args):
        calls.append(1)
        if len(calls) == 2 * 20 + 7:
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(cut, "step", step)
    ck = tmp_path / "cut.npz"
    with pytest.raises(KeyboardInterrupt):
        cut.fit(4, 20, checkpoint=str(ck), checkpoint_every=100)
    model = pn.PLRNN("standard", M=2, N=1, dtype="float64", seed=0)
    again = vi.VITrainer(model, data, seq_len=50, batch_size=8, lr=3e-3, lr_end=1e-3, seed=0)
    again.load_checkpoint(ck)
    assert again.epoch == 2
    again.fit(4, 20)
    assert [h["loss"] for h in again.history] == [h["loss"] for h in whole.history]

    # a damaged or foreign checkpoint is refused, naming the file, before anything changes
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        again.load_checkpoint(tmp_path / "bad.npz")
    other = vi.VITrainer(pn.PLRNN("standard", M=3, N=1, dtype="float64"), data, seq_len=50, seed=0)
    with pytest.raises(ValueError, match="vi.npz"):
        other.load_checkpoint(path)
