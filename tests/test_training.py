"""Trainer: learning, exact resume, divergence guard, bad configurations and data."""

import numpy as np
import plrnn_native as pn
import pytest
from plrnn_native.training import BestModelSelector, Trainer, TrainConfig, write_history


def _data(T=1200, seed=0):
    """A noisy 3-D oscillation (z-scored): learnable by a small PLRNN in a few epochs."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) * 0.05
    x = np.stack([np.sin(t), np.cos(t), np.sin(2 * t)], axis=1) + 0.01 * rng.standard_normal((T, 3))
    return (x - x.mean(0)) / x.std(0)


def _config(**kw):
    base = dict(epochs=6, batches_per_epoch=10, seq_len=50, batch_size=8, tau=5, lr=3e-3, lr_end=1e-3, seed=1)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("forcing", ["sparse", "generalized", "none"])
@pytest.mark.parametrize("kind,kw", [("standard", {}), ("shallow", {"hidden": 16})])
def test_training_reduces_the_loss(kind, kw, forcing):
    model = pn.PLRNN(kind, M=8, N=3, dtype="float32", seed=0, **kw)
    x = _data()
    probe = x[None, :200].astype(np.float32)
    before = model.loss_and_grad(probe, forcing="sparse", tau=5)[0]
    cfg = _config(epochs=15, forcing=forcing, adaptive_alpha=forcing == "generalized")
    result = Trainer(model, x, config=cfg).train()
    after = model.loss_and_grad(probe, forcing="sparse", tau=5)[0]
    assert result.status == "completed" and result.epochs_done == 15 and len(result.history) == 15
    assert after < 0.75 * before, (before, after)  # a broken gradient gives no such systematic drop


def test_radam_mar_and_teacher_noise_train():
    model = pn.PLRNN("standard", M=8, N=3, dtype="float64", seed=0)
    cfg = _config(optimizer="radam", mar_weight=1e-2, mar_fraction=0.25, teacher_noise=0.05, epochs=4)
    result = Trainer(model, _data(), config=cfg).train()
    assert result.status == "completed"
    assert np.all(np.isfinite(result.history[-1]["loss"]))


def test_resume_equals_uninterrupted(tmp_path):
    x = _data()
    cfg = _config(forcing="generalized", adaptive_alpha=True, teacher_noise=0.02)
    full = Trainer(pn.PLRNN("standard", M=8, N=3, dtype="float32", seed=0), x, config=cfg)
    full.train()
    part = Trainer(pn.PLRNN("standard", M=8, N=3, dtype="float32", seed=0), x, config=cfg)
    part.train(3)
    part.save_checkpoint(tmp_path / "ck.npz")
    resumed = Trainer.resume(tmp_path / "ck.npz", x)
    assert resumed.epoch == 3
    resumed.train()
    for name in full.model.keys():
        np.testing.assert_array_equal(resumed.model[name], full.model[name])
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]


def test_divergence_restores_last_good_state():
    model = pn.PLRNN("standard", M=8, N=3, dtype="float32", seed=0)
    x = _data()
    trainer = Trainer(model, x, config=_config(epochs=3))
    trainer.train(1)
    good = {k: v.copy() for k, v in model.items()}
    trainer.config.lr = trainer.config.lr_end = 1e30  # an absurd step: the next loss overflows
    trainer.config.grad_clip = 0.0
    result = trainer.train()
    assert result.status == "diverged" and "restored" in result.message
    assert trainer.epoch == 1 and result.epochs_done == 1
    for name, value in good.items():
        np.testing.assert_array_equal(model[name], value)


def test_history_files(tmp_path):
    trainer = Trainer(pn.PLRNN("standard", M=6, N=3, seed=0), _data(), config=_config(epochs=2))
    trainer.train()
    write_history(trainer.history, tmp_path)
    assert (tmp_path / "history.csv").read_text().splitlines()[0].startswith("epoch")
    assert (tmp_path / "history.json").exists()


@pytest.mark.parametrize("kw,match", [
    ({"seq_len": 1}, "seq_len"), ({"lr": -1.0}, "lr"), ({"optimizer": "sgd"}, "optimizer"),
    ({"forcing": "full"}, "forcing"), ({"tau": 0}, "tau"), ({"alpha": 1.5}, "alpha"),
    ({"mar_weight": 1.0, "mar_fraction": 0.0}, "fraction"), ({"grad_clip": -1.0}, "grad_clip"),
])
def test_bad_config_is_rejected(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        TrainConfig(**kw)


def test_bad_data_is_rejected():
    model = pn.PLRNN("standard", M=6, N=3, dtype="float32", seed=0)
    x = _data()
    bad = x.copy()
    bad[10, 1] = np.inf  # NaN is a missing value (tests/test_missing_values.py); inf is an error
    with pytest.raises(ValueError, match=r"\bx\b.*NaN or inf"):
        Trainer(model, bad, config=_config())
    bad[:] = np.nan
    with pytest.raises(ValueError, match=r"\bx\b.*every value is missing"):
        Trainer(model, bad, config=_config())
    with pytest.raises(ValueError, match=r"\bx\b.*shape"):
        Trainer(model, x[:, :2], config=_config())
    with pytest.raises(ValueError, match="seq_len"):
        Trainer(model, x[:20], config=_config())
    with pytest.raises(TypeError, match="model"):
        Trainer("not a model", x, config=_config())
    with pytest.raises(ValueError, match="unknown keys"):
        TrainConfig.from_dict({"epochs": 3, "learning_rate": 1.0})


def test_bad_checkpoint_is_rejected(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="checkpoint"):
        Trainer.resume(path, _data())


def test_best_model_selector_scores_are_the_evaluation_metrics_of_its_free_run():
    # the selector's two terms, recomputed from a free run with the metric functions themselves; a NaN
    # row in the validation data is left out of D_stsp and interpolated for D_H
    from plrnn_native import metrics
    from plrnn_native.recordings import _interpolated

    x = _data()[-400:].astype(np.float64)
    x[7, 1] = np.nan
    model = pn.PLRNN("standard", M=8, N=3, dtype="float64", seed=3)
    model["W"] = 0.3 * model["W"]  # a contracting, finite free run
    got = BestModelSelector(x, every=1).scores(model)
    T = len(x)
    gen = model.generate(T + T // 4, x0=x[0])[T // 4:]
    complete = x[~np.isnan(x).any(axis=1)]
    assert got["D_stsp"] == metrics.state_space_divergence_binned(complete, gen)
    assert got["D_H"] == metrics.power_spectrum_distance(_interpolated(x), gen)
    assert got["score"] == got["D_stsp"] + got["D_H"]
    model["W"] = 1e3 * model["W"]  # a diverging free run scores inf in every term
    assert BestModelSelector(x, every=1).scores(model) == {"D_stsp": np.inf, "D_H": np.inf, "score": np.inf}


def test_best_model_selector_keeps_the_best_scored_parameters():
    x = _data()
    model = pn.PLRNN("standard", M=8, N=3, dtype="float32", seed=0)
    selector = BestModelSelector(x[-300:], every=2)
    trainer = Trainer(model, x, config=_config(epochs=6), callback=selector)
    trainer.train()
    scored = [h for h in trainer.history if "val_score" in h]
    assert [h["epoch"] for h in scored] == [1, 3, 5]
    assert all(h["val_score"] == h["val_D_stsp"] + h["val_D_H"] for h in scored)
    best = min(scored, key=lambda h: h["val_score"])
    assert selector.best_epoch == best["epoch"] and selector.best_score == best["val_score"]
    assert selector.score(model) == scored[-1]["val_score"]  # scoring is deterministic
    selector.restore(model)
    assert selector.score(model) == pytest.approx(selector.best_score, rel=1e-12)
    with pytest.raises(ValueError, match="x_val"):
        BestModelSelector(np.full((50, 3), np.nan))


# ----------------------------------------------------------------------------------------------
# The loop every trainer runs (optim.guarded_loop)
# ----------------------------------------------------------------------------------------------
def _loop_state():
    """A parameter dict, an optimiser over it, and the loop's snapshot/restore on both."""
    from plrnn_native import optim

    params = {"w": np.zeros(3)}
    opt = optim.Adam(params, "adam", (0.9, 0.999), 1e-8)
    return (params, opt, lambda: optim.optimizer_snapshot(params, opt),
            lambda snap: optim.optimizer_restore(params, opt, snap))


def _unit(params, opt, diverge_at=None, interrupt_at=None):
    def run(i):
        opt.step(params, {"w": np.full(3, 1.0 + i)}, 0.1)
        if i == interrupt_at:
            raise KeyboardInterrupt
        if i == diverge_at:
            params["w"][0] = np.nan
            return f"unit {i} diverged"
        return None
    return run


def test_guarded_loop_restores_the_last_good_state_on_divergence():
    from plrnn_native.optim import guarded_loop

    params, opt, snapshot, restore = _loop_state()
    done = []
    assert guarded_loop(range(5), _unit(params, opt), snapshot, restore, done.append) is None
    assert done == [0, 1, 2, 3, 4] and opt.t == 5
    params, opt, snapshot, restore = _loop_state()
    expected, eopt, *_ = _loop_state()
    _unit(expected, eopt)(0)
    _unit(expected, eopt)(1)  # the state after the two units that complete
    done = []
    assert guarded_loop(range(5), _unit(params, opt, diverge_at=2), snapshot, restore, done.append) == "unit 2 diverged"
    assert done == [0, 1] and opt.t == 2
    np.testing.assert_array_equal(params["w"], expected["w"])
    np.testing.assert_array_equal(opt.m["w"], eopt.m["w"])
    np.testing.assert_array_equal(opt.v["w"], eopt.v["w"])


def test_guarded_loop_restores_on_ctrl_c_and_reraises():
    from plrnn_native.optim import guarded_loop

    params, opt, snapshot, restore = _loop_state()
    expected, eopt, *_ = _loop_state()
    _unit(expected, eopt)(0)
    done = []
    with pytest.raises(KeyboardInterrupt):
        guarded_loop(range(5), _unit(params, opt, interrupt_at=1), snapshot, restore, done.append)
    assert done == [0] and opt.t == 1
    np.testing.assert_array_equal(params["w"], expected["w"])
    np.testing.assert_array_equal(opt.m["w"], eopt.m["w"])


def test_history_files_equal_a_fresh_encoding_after_every_write(tmp_path):
    """HistoryFiles re-encodes only what changed: after appends, a new column, a rollback that drops
    epochs and a record changed after it was written, both files equal a fresh encoding of the history
    (json, csv.DictWriter), and the checkpoint's splice equals json.dumps of the whole."""
    import csv
    import io
    import json

    from plrnn_native.training import EncodedHistory, HistoryFiles

    def fresh_csv(history):
        keys = sorted({k for r in history for k in r}, key=lambda k: (k != "epoch", k))
        out = io.StringIO(newline="")
        w = csv.DictWriter(out, fieldnames=keys)
        w.writeheader()
        w.writerows(history)
        return out.getvalue()

    files, encoded, history = HistoryFiles(tmp_path), EncodedHistory(), []
    steps = [
        lambda h: h.extend({"epoch": i, "loss": 1.0 / (i + 1), "alpha": None} for i in range(len(h), len(h) + 30)),
        lambda h: h[-1].__setitem__("val_D_stsp", 0.25),           # a new column
        lambda h: h.extend({"epoch": i, "loss": 0.5} for i in range(len(h), len(h) + 5)),
        lambda h: h.__delitem__(slice(20, None)),                   # a rollback
        lambda h: h.append({"epoch": 20, "loss": 9.0}),             # epoch 20 again, other values
        lambda h: h[3].__setitem__("loss", -1.0),                   # changed after it was written
        lambda h: h.clear(),
    ]
    for step in steps:
        step(history)
        files.write(history)
        assert json.loads((tmp_path / "history.json").read_text()) == history
        assert (tmp_path / "history.csv").read_bytes().decode() == fresh_csv(history)
        meta = {"epoch": len(history), "format": "x"}
        assert encoded.dumps_with(meta, history) == json.dumps({**meta, "history": history})
