"""``plrnn train --method vi`` (plrnn_native.vi_run): built-in data and the user's files per channel (TOML
sections), several series, model selection, exact resume, ``plrnn evaluate``/``analyze`` on the run, and
bad input naming the setting or file before anything is written."""

import json
import os

import numpy as np
import pytest

import plrnn_native as pn
from plrnn_native import cli, vi

SMALL = ["--set", "data.T=3000", "--set", "data.test_T=2000", "--set", "train.batches_per_epoch=4",
         "--set", "train.seq_len=50", "--set", "run.validation_steps=500", "--set", "evaluate.lyapunov_steps=1000",
         "--set", "model.hidden=20", "--quiet", "--no-plots"]


def _run(args, capsys=None):
    code = cli.main(args)
    out = capsys.readouterr() if capsys is not None else None
    return code, out


def _params(folder):
    with np.load(os.path.join(folder, "vi_params.npz")) as f:
        return {k: f[k] for k in f.files}


def test_builtin_system_run_resume_evaluate_analyze(tmp_path, capsys, monkeypatch):
    whole = str(tmp_path / "whole")
    code, _ = _run(["train", "--method", "vi", "--epochs", "4", "--set", "run.select_every=0", "--out", whole, *SMALL], capsys)
    assert code == 0
    for name in ("config.toml", "model.npz", "vi_params.npz", "checkpoint.npz", "history.json", "metrics.json"):
        assert os.path.isfile(os.path.join(whole, name)), name
    with open(os.path.join(whole, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["method"] == "vi" and metrics["status"] == "completed"
    for key in ("KL_z", "D_stsp", "D_H", "lambda_max_model"):
        assert np.isfinite(metrics[key]), key
    # the saved model is a plain PLRNN observing through the learned Gaussian loadings
    model = pn.load(os.path.join(whole, "model.npz"))
    params = _params(whole)
    assert model.obs == "linear" and np.array_equal(model["B"], params["gen.gaussian.B"])
    assert np.array_equal(model["W1"], params["model.W1"])
    # Ctrl-C in epoch 3 of 4 (exit 130, the checkpoint holds epoch 2), then resumed: the same parameters
    # and history, bit for bit
    cut = str(tmp_path / "cut")
    real_step, calls = vi.VITrainer.step, []

    def step(self, *args):
        calls.append(1)
        if len(calls) == 2 * 4 + 2:
            raise KeyboardInterrupt
        return real_step(self, *args)

    monkeypatch.setattr(vi.VITrainer, "step", step)
    assert _run(["train", "--method", "vi", "--epochs", "4", "--set", "run.select_every=0", "--out", cut, *SMALL], capsys)[0] == 130
    monkeypatch.setattr(vi.VITrainer, "step", real_step)
    with np.load(os.path.join(cut, "checkpoint.npz")) as f:
        assert json.loads(str(f["__state__"]))["epoch"] == 2
    assert not os.path.exists(os.path.join(cut, "metrics.json"))
    assert _run(["train", "--resume", cut, "--quiet", "--no-plots"], capsys)[0] == 0
    again = _params(cut)
    assert all(np.array_equal(again[k], v) for k, v in params.items())
    with open(os.path.join(whole, "history.json")) as f, open(os.path.join(cut, "history.json")) as g:
        assert [h["loss"] for h in json.load(f)] == [h["loss"] for h in json.load(g)]
    # plrnn evaluate recomputes the metrics from the saved state; analyze works on the latent model
    assert _run(["evaluate", whole], capsys)[0] == 0
    with open(os.path.join(whole, "metrics.json")) as f:
        re = json.load(f)
    assert re["D_stsp"] == metrics["D_stsp"] and re["KL_z"] == metrics["KL_z"] and re["train_seconds"] == metrics["train_seconds"]
    code, out = _run(["analyze", whole, "--steps", "500", "--no-plots"], capsys)
    assert code == 0 and "Lyapunov spectrum" in out.out
    # what cannot change on resume is refused
    code, out = _run(["train", "--resume", cut, "--set", "vi.samples=2"], capsys)
    assert code == 2 and "vi.samples" in out.err
    code, out = _run(["train", "--resume", cut, "--set", "train.tau=5"], capsys)
    assert code == 2 and "train.tau" in out.err


def test_model_selection_keeps_the_best_validation_state(tmp_path, capsys):
    out = str(tmp_path / "sel")
    assert _run(["train", "--method", "vi", "--epochs", "4", "--set", "run.select_every=2", "--out", out, *SMALL], capsys)[0] == 0
    with open(os.path.join(out, "history.json")) as f:
        history = json.load(f)
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    scored = [h for h in history if "val_score" in h]
    best = min(scored, key=lambda h: h["val_score"])
    assert metrics["selected_epoch"] == best["epoch"] and metrics["validation_D_stsp"] == best["val_score"]
    kept = _params(out)
    with np.load(os.path.join(out, "vi_best.npz")) as f:
        assert all(np.array_equal(f[k], kept[k]) for k in kept)


def _channels(rng, T, classes=3):
    """A noisy rotation z (2-d) seen through 2 Gaussian channels (with missing values), 4 Poisson
    neurons and a 3-class label; raw arrays as a user would save them."""
    th = 0.2
    A = 0.99 * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    z = np.zeros((T, 2))
    z[0] = [1.0, 0.0]
    for t in range(1, T):
        z[t] = A @ z[t - 1] + 0.1 * rng.standard_normal(2)
    x = z @ rng.normal(0, 1, (2, 2)).T + 0.1 * rng.standard_normal((T, 2))
    x[rng.random(x.shape) < 0.05] = np.nan
    q = rng.poisson(np.exp(0.5 * z @ rng.normal(0, 1, (2, 4)) + 0.3)).astype(float)
    c = np.digitize(np.arctan2(z[:, 1], z[:, 0]), [-1.0, 1.0]).astype(float)[:, None]
    return x, q, c


def _write(folder, arrays):
    os.makedirs(folder, exist_ok=True)
    for i, a in enumerate(arrays):
        np.save(os.path.join(folder, f"s{i}.npy"), a)
    return folder


def test_channels_from_files_several_series(tmp_path, capsys):
    rng = np.random.default_rng(0)
    series = [_channels(rng, T) for T in (400, 500, 450, 600, 420, 380)]
    g = _write(tmp_path / "eeg", [s[0] for s in series])
    q = _write(tmp_path / "spikes", [s[1] for s in series])
    c = _write(tmp_path / "labels", [s[2] for s in series])
    toml = tmp_path / "vi.toml"
    toml.write_text(f"""
[data]
path = "{g}"
[model]
kind = "standard"
M = 3
[train]
method = "vi"
epochs = 3
batches_per_epoch = 4
seq_len = 50
[vi]
encoder_hidden = 8
[poisson]
path = "{q}"
[categorical]
path = "{c}"
classes = 3
[run]
select_every = 0
""")
    out = str(tmp_path / "run")
    code, text = _run(["train", str(toml), "--out", out, "--quiet", "--no-plots"], capsys)
    assert code == 0, text.err
    assert "channels gaussian (2), poisson (4), categorical (labels)" in text.out
    assert "training 2370 steps in 5 series" in text.out  # 6 series: the last held out whole
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["test_series"] == 1 and metrics["per_series"][0]["T"] == 380
    assert 0.0 <= metrics["categorical_accuracy_posterior"] <= 1.0 and np.isfinite(metrics["poisson_explained"])
    params = _params(out)
    assert params["gen.categorical.beta"].shape == (2, 3) and params["gen.poisson.G"].shape == (4, 3)
    assert params["enc.W_h"].shape[0] == 8  # the MLP encoder of [vi] encoder_hidden

    # the dry run prints the settings and writes nothing
    dry = str(tmp_path / "dry")
    code, text = _run(["train", str(toml), "--out", dry, "--dry-run"], capsys)
    assert code == 0 and "[vi]" in text.out and not os.path.exists(dry)


def test_fmri_channel_with_regressors(tmp_path, capsys):
    rng = np.random.default_rng(1)
    h = vi.hrf_spm(0.5)
    bold, regs = [], []
    for T in (600, 520):
        x, _, _ = _channels(rng, T + len(h))
        z = np.nan_to_num(x)
        conv = np.stack([sum(h[j] * z[t - j] for j in range(len(h))) for t in range(len(h), T + len(h))])
        r = rng.standard_normal((T, 1))
        bold.append(conv + 0.5 * r + 0.05 * rng.standard_normal((T, 2)))
        regs.append(r)
    b = _write(tmp_path / "bold", bold)
    r = _write(tmp_path / "motion", regs)
    out = str(tmp_path / "run")

    def args(tr=("--set", "fmri.TR=0.5"), *extra):
        return ["train", "--method", "vi", "--set", f"fmri.path={b}", *tr, "--set", f"fmri.regressors={r}",
                "--set", "model.kind=standard", "--set", "model.M=2", "--epochs", "2", "--set", "train.batches_per_epoch=3",
                "--set", "train.seq_len=100", "--set", "run.select_every=1", "--set", "run.validation_steps=150",
                "--out", out, "--quiet", "--no-plots", *extra]

    code, text = _run(args(), capsys)
    assert code == 0, text.err
    assert "channels fmri (2)" in text.out and "gaussian" not in text.out.split("->")[0]
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["per_series"][0]["D_stsp_channel"] == "fmri" and "validation_D_stsp" in metrics
    assert _params(out)["gen.fmri.J"].shape == (2, 1)
    # before training: a test part or a validation stretch shorter than the HRF (64 steps at TR 0.5 s),
    # TR <= 0, a missing TR; each named
    cases = [(args((), "--set", "fmri.TR=0.5", "--set", "data.test_fraction=0.05"), "HRF"),
             (args((), "--set", "fmri.TR=0.5", "--set", "run.validation_steps=50"), "run.validation_steps"),
             (args(("--set", "fmri.TR=0")), "fmri.TR"), (args(("--set", "fmri.TR=-1")), "fmri.TR"),
             (args(()), "fmri.TR: the repetition time")]
    for argv, word in cases:
        code, text = _run(argv, capsys)
        assert code == 2 and word in text.err, (argv, text.err)


def test_bad_channel_files_are_named_and_nothing_is_written(tmp_path, capsys):
    rng = np.random.default_rng(2)
    x, q, c = _channels(rng, 300)
    np.save(tmp_path / "x.npy", x)
    cases = []
    bad_q = q.copy()
    bad_q[10, 1] = -1
    np.save(tmp_path / "neg.npy", bad_q)
    cases.append((["--set", f"poisson.path={tmp_path / 'neg.npy'}"], "poisson.path"))
    half = q.copy()
    half[5, 0] = 0.5
    np.save(tmp_path / "half.npy", half)
    cases.append((["--set", f"poisson.path={tmp_path / 'half.npy'}"], "integers >= 0"))
    np.save(tmp_path / "c.npy", c)
    cases.append((["--set", f"categorical.path={tmp_path / 'c.npy'}", "--set", "categorical.classes=2"], "categorical.path"))
    cases.append((["--set", f"categorical.path={tmp_path / 'c.npy'}", "--set", "categorical.classes=1"], "categorical.classes"))
    np.save(tmp_path / "short.npy", q[:200])
    cases.append((["--set", f"poisson.path={tmp_path / 'short.npy'}"], "[poisson]"))
    (tmp_path / "corrupt.npy").write_bytes(b"garbage")
    cases.append((["--set", f"poisson.path={tmp_path / 'corrupt.npy'}"], "corrupt.npy"))
    cases.append((["--set", "train.forcing=none"], "train.forcing"))
    cases.append((["--set", "evaluate.pe_steps=3"], "evaluate.pe_steps"))
    cases.append((["--set", f"gaussian.path={tmp_path / 'x.npy'}"], "two sources"))
    cases.append((["--set", "fmri.TR=2"], "[fmri]"))
    for extra, word in cases:
        out = tmp_path / "never"
        code, text = _run(["train", "--method", "vi", "--data", str(tmp_path / "x.npy"), *extra, "--out", str(out),
                           "--quiet"], capsys)
        assert code == 2 and word in text.err, (extra, text.err)
        assert not out.exists()
    # a built-in system cannot be aligned with channel files
    code, text = _run(["train", "--method", "vi", "--system", "lorenz63", "--set", f"poisson.path={tmp_path / 'short.npy'}",
                       "--out", str(tmp_path / "never")], capsys)
    assert code == 2 and "built-in system" in text.err


def test_corrupt_saved_parameters_are_refused(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert _run(["train", "--method", "vi", "--epochs", "1", "--set", "run.select_every=0", "--out", out, *SMALL], capsys)[0] == 0
    metrics = os.path.join(out, "metrics.json")
    with open(metrics) as f:
        before = f.read()
    with open(os.path.join(out, "vi_params.npz"), "wb") as f:
        f.write(b"not a zip")
    code, text = _run(["evaluate", out], capsys)
    assert code == 2 and "vi_params.npz" in text.err
    with open(metrics) as f:
        assert f.read() == before
