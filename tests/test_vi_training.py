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


def _cut(data, a, b):
    return {k: {kk: (v if kk == "TR" else v[a:b]) for kk, v in obs.items()} for k, obs in data.items()}


def test_several_series():
    _, data = _oscillator(T=1200)
    one = _train(data, epochs=2)
    listed = _train([data], epochs=2)  # a list of one series is the same fit, bit for bit
    assert [h["loss"] for h in listed.history] == [h["loss"] for h in one.history]
    # three series of different lengths: windows come from each of them, none crosses a series' end
    parts = [_cut(data, 0, 300), _cut(data, 300, 700), _cut(data, 700, 1200)]
    model = pn.PLRNN("standard", M=2, N=1, dtype="float64", seed=0)
    trainer = vi.VITrainer(model, parts, seq_len=50, batch_size=64, seed=0)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(20):
        batch, _ = trainer._batch(rng)
        for window in batch["gaussian"]["x"]:
            hits = [i for i, p in enumerate(parts)
                    for t0 in range(len(p["gaussian"]["x"]) - 49) if np.array_equal(p["gaussian"]["x"][t0:t0 + 50], window)]
            assert len(hits) == 1
            seen.add(hits[0])
    assert seen == {0, 1, 2}
    # the Poisson baseline starts at the mean count pooled over the series
    assert np.allclose(np.exp(trainer.params["poisson.g"]), data["poisson"]["q"].mean(0) + 1e-3)
    trainer.fit(2, 5)
    assert trainer.stopped is None and len(trainer.history) == 2
    mu, _ = trainer.posterior(series=2)
    assert mu.shape == (500, 2)
    with pytest.raises(ValueError, match="series"):
        trainer.posterior(series=3)


def test_several_series_bad_input():
    _, data = _oscillator(T=600)
    model = pn.PLRNN("standard", M=2, N=1, dtype="float64")
    a, b = _cut(data, 0, 300), _cut(data, 300, 600)
    with pytest.raises(ValueError, match=r"data\[1\]: channels"):
        vi.VITrainer(model, [a, {"gaussian": b["gaussian"]}], seq_len=50)
    with pytest.raises(ValueError, match=r"length 30 of data\[1\]"):
        vi.VITrainer(model, [a, _cut(data, 300, 330)], seq_len=50)
    bad = {k: {kk: v.copy() for kk, v in obs.items()} for k, obs in b.items()}
    bad["gaussian"]["x"][200, 0] = np.inf
    with pytest.raises(ValueError, match=r"series 1: .*\['x'\]"):
        vi.VITrainer(model, [a, bad], seq_len=50)
    with pytest.raises(TypeError, match="data"):
        vi.VITrainer(model, [], seq_len=50)
    with pytest.raises(ValueError, match="s: expected a list of 2"):
        vi.VITrainer(pn.PLRNN("standard", M=2, N=1, K=1, dtype="float64"), [a, b], s=[np.zeros((300, 1))], seq_len=50)
    fa = {"fmri": {"x": a["gaussian"]["x"], "TR": 1.0}}
    fb = {"fmri": {"x": b["gaussian"]["x"], "TR": 2.0}}
    with pytest.raises(ValueError, match="TR"):
        vi.VITrainer(model, [fa, fb], seq_len=50)


def test_best_selector_keeps_the_best_epoch_and_restores_it():
    _, data = _oscillator(T=1500)
    train, val = _cut(data, 0, 1000), _cut(data, 1000, 1500)
    selector = vi.BestSelector(val, every=2, seed=0)
    model = pn.PLRNN("standard", M=2, N=1, dtype="float64", seed=0)
    trainer = vi.VITrainer(model, train, seq_len=50, batch_size=8, lr=3e-3, lr_end=1e-3, seed=0, callback=selector)
    trainer.fit(6, 10)
    scored = [h for h in trainer.history if "val_score" in h]
    assert [h["epoch"] for h in scored] == [1, 3, 5]  # after epochs 2, 4, 6
    best = min(scored, key=lambda h: h["val_score"])
    assert selector.best_epoch == best["epoch"] and selector.best_score == best["val_score"]
    assert selector.key == "D_stsp" and selector.state()["metric"] == "D_stsp"
    selector.restore(trainer)
    assert selector.score(trainer) == selector.best_score  # the restored parameters score as recorded
    assert all(np.array_equal(trainer._all[k], v) for k, v in selector.best_params.items())
    assert np.array_equal(trainer.model.params["W"], selector.best_params["model.W"])


def test_evaluate_fmri_channel_and_inputs():
    rng = np.random.default_rng(3)
    T, TR = 400, 1.0
    h = vi.hrf_spm(TR)
    s = rng.standard_normal((T, 1))
    z = np.zeros((T, 2))
    for t in range(1, T):
        z[t] = 0.9 * z[t - 1] + [0.5 * s[t, 0], 0.0] + 0.3 * rng.standard_normal(2)
    conv = np.array([sum(h[j] * z[t - j] for j in range(min(len(h), t + 1))) for t in range(T)])
    x = conv @ rng.normal(0, 1, (2, 2)).T + 0.05 * rng.standard_normal((T, 2))
    data = {"fmri": {"x": x, "TR": TR}}
    model = pn.PLRNN("standard", M=2, N=1, K=1, dtype="float64", seed=0)
    trainer = vi.VITrainer(model, data, s=s, seq_len=100, batch_size=4, seed=0)
    trainer.fit(2, 5)
    out = vi.evaluate(trainer, data, s=s)
    assert out["D_stsp_channel"] == "fmri" and out["generated_steps"] == T  # driven by the test inputs
    assert np.isfinite(out["D_stsp"]) and 0 <= out["D_H"] <= 1
    with pytest.raises(ValueError, match="s: the model has K=1"):
        vi.evaluate(trainer, data)
    with pytest.raises(ValueError, match="HRF"):
        vi.evaluate(trainer, {"fmri": {"x": x[:20], "TR": TR}}, s=s[:20])


@pytest.mark.parametrize("kind", [dict(kind="standard"), dict(kind="alrnn", P=1), dict(kind="dendritic", bases=2),
                                  dict(kind="shallow", hidden=6), dict(kind="shallow", hidden=6, clipped=True)],
                         ids=lambda k: "-".join(str(v) for v in k.values()))
def test_every_latent_kind_trains_and_stays_a_plain_plrnn(kind):
    from plrnn_native import analysis

    _, data = _oscillator(T=800)
    model = pn.PLRNN(M=3, N=1, dtype="float64", seed=0, **kind)
    trainer = vi.VITrainer(model, data, seq_len=50, batch_size=8, lr=3e-3, seed=0)
    trainer.fit(6, 10)
    losses = [h["loss"] for h in trainer.history]
    assert trainer.stopped is None and losses[-1] < losses[0]
    out = vi.evaluate(trainer, _cut(data, 600, 800))
    assert np.isfinite(out["KL_z"]) and np.isfinite(out["D_stsp"])
    fps = analysis.fixed_points(trainer.model, method="exhaustive", seed=0)  # the analysis takes it unchanged
    assert len(fps.fixed_points) >= 0 and np.isfinite(trainer.model.generate(50, z0=np.zeros(3), return_latent=True)[1]).all()


def test_mar_pulls_the_regularised_units_to_a_manifold():
    _, data = _oscillator(T=800)
    runs = {}
    for weight in (0.0, 50.0):
        model = pn.PLRNN("standard", M=4, N=1, dtype="float64", seed=0)
        trainer = vi.VITrainer(model, data, seq_len=50, batch_size=8, lr=1e-2, lr_end=1e-2, seed=0,
                               mar=pn.MAR(weight, fraction=0.5))
        trainer.fit(5, 10)
        runs[weight] = trainer
    A = {w: np.diag(t.model["A"]) if t.model["A"].ndim == 2 else t.model["A"] for w, t in runs.items()}
    # the last two units (fraction 0.5, select "last"): A -> 1, their rows of W -> 0
    assert np.max(np.abs(A[50.0][2:] - 1)) < 0.5 * np.max(np.abs(A[0.0][2:] - 1))
    assert np.abs(runs[50.0].model["W"][2:]).max() < 0.5 * np.abs(runs[0.0].model["W"][2:]).max()
    assert runs[50.0].history[0]["loss"] > runs[0.0].history[0]["loss"]  # the penalty is part of the loss
    with pytest.raises(TypeError, match="mar"):
        vi.VITrainer(pn.PLRNN("standard", M=2, N=1, dtype="float64"), data, seq_len=50, mar=0.5)


def test_init_params_from_the_data():
    rng = np.random.default_rng(5)
    axes = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    z = rng.standard_normal((2000, 4)) * [3.0, 2.0, 0.3, 0.05]
    x = z @ axes.T
    mask = rng.random(x.shape) > 0.05
    p = vi.init_params(2, {"gaussian": {"x": np.where(mask, x, 1e6), "mask": mask}}, np.random.default_rng(0), "float64")
    B = p["gaussian.B"]
    # the two leading principal axes (up to sign), unaffected by the huge values at missing entries
    for k in range(2):
        assert abs(abs(B[:, k] @ axes[:, k]) - 1) < 1e-2, k
    assert np.all(np.exp(p["gaussian.log_sigma"]) < 1.0)  # the huge values at missing entries left out
    # complete data: sigma is the residual about the axes, floored at a tenth of each channel's std
    full = vi.init_params(2, {"gaussian": {"x": x}}, np.random.default_rng(0), "float64")
    xc = x - x.mean(0)
    B = full["gaussian.B"]
    resid = np.sqrt(np.mean((xc - xc @ B @ B.T) ** 2, axis=0))
    np.testing.assert_allclose(np.exp(full["gaussian.log_sigma"]), np.maximum(resid, 0.1 * x.std(0)), rtol=1e-10)
    assert np.allclose(p["log_sigma_z"], np.log(0.01))
    # more latent units than channels: the principal axes, then small random columns
    q = vi.init_params(6, {"gaussian": {"x": x}}, np.random.default_rng(0), "float64")["gaussian.B"]
    assert np.allclose(np.abs(q[:, :4].T @ axes), np.eye(4), atol=2e-2) and np.abs(q[:, 4:]).max() < 0.2  # (sample axes)
