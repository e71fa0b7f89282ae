"""plrnn train on the user's own data: derived settings, many series, missing values, inputs, and
run folders that failing commands leave as they were."""

import json
import os

import numpy as np
import pytest
from plrnn_native import cli, data, load, runconfig

QUICK = ["--set", "train.epochs=2", "--set", "train.batches_per_epoch=3", "--set", "evaluate.lyapunov_steps=200",
         "--set", "evaluate.lyapunov_transient=20", "--set", "run.threads=1", "--set", "run.select_every=1",
         "--set", "run.validation_steps=200", "--quiet", "--no-plots"]


def _lorenz(T, seed=0):
    return data.lorenz63(T=T, seed=seed).x.copy()


@pytest.fixture(scope="module")
def eeg(tmp_path_factory):
    """A 64-channel recording: Lorenz-63 mixed into 64 noisy channels."""
    rng = np.random.default_rng(0)
    x = _lorenz(3000) @ rng.standard_normal((3, 64)) + 0.1 * rng.standard_normal((3000, 64))
    path = tmp_path_factory.mktemp("eeg") / "eeg.npy"
    np.save(path, x.astype(np.float32))
    return path


def test_high_dimensional_data_trains_with_no_flag(eeg, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--data", str(eeg), "--out", str(out), *QUICK]) == 0
    config = (out / "config.toml").read_text()
    assert 'obs = "linear"' in config and "M = 20" in config  # the latent size does not grow with N
    assert "# from the autocorrelation decay" in config  # derived tau, written with its reason
    model = load(out / "model.npz")
    assert (model.N, model.M, model.obs, model.kind) == (64, 20, "linear", "shallow")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["D_stsp_variant"] == "gmm" and metrics["N"] == 64


def test_low_dimensional_settings(tmp_path, capsys):
    np.save(tmp_path / "one.npy", _lorenz(2000)[:, :1])
    assert cli.main(["train", "--data", str(tmp_path / "one.npy"), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert 'obs = "identity"' in text and "M = 3  # max(N, 3)" in text
    assert not (tmp_path / "runs").exists() and not os.path.exists("runs/run-dry")


def test_dry_run_writes_nothing_and_matches_the_run(eeg, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--data", str(eeg), "--out", str(out), "--dry-run", "--set", "train.epochs=7"]) == 0
    printed = capsys.readouterr().out
    assert not out.exists()
    assert "epochs = 7\n" in printed  # the user's value, no reason attached
    assert "tau per dimension" in printed
    # the derived tau is the one autoconfig computes on the training part
    tau = int(next(line for line in printed.splitlines() if line.startswith("tau =")).split("=")[1].split("#")[0])
    x = np.load(eeg).astype(np.float64)
    x = (x - x.mean(0)) / x.std(0)
    from plrnn_native import autoconfig
    assert tau == autoconfig.forcing_interval([x[:2400]])[0]


def test_user_settings_win_and_derived_follow(tmp_path, capsys):
    np.save(tmp_path / "x.npy", _lorenz(3000))
    assert cli.main(["train", "--data", str(tmp_path / "x.npy"), "--dry-run", "--set", "train.tau=10",
                     "--set", "model.M=7"]) == 0
    text = capsys.readouterr().out
    assert "tau = 10\n" in text and "M = 7\n" in text
    assert "seq_len = 80  # clip(8 tau" in text and "hidden = 140  # max(100, 20 M) for M = 7" in text
    assert cli.main(["train", "--data", str(tmp_path / "x.npy"), "--dry-run", "--set", "train.tau=10",
                     "--set", "train.forcing=generalized"]) == 0
    text = capsys.readouterr().out
    alpha = float(next(line for line in text.splitlines() if line.startswith("alpha =")).split("=")[1].split("#")[0])
    assert abs((1 - alpha) ** 10 - 0.5) < 1e-3 and "# 1 - 2^(-1/tau)" in text


def test_many_series_folder_and_npz(tmp_path, capsys):
    folder = tmp_path / "trials"
    folder.mkdir()
    lengths = [700, 900, 650, 800, 1000, 750]
    for i, T in enumerate(lengths):
        np.save(folder / f"trial{i}.npy", _lorenz(T, seed=i))
    out = tmp_path / "run"
    assert cli.main(["train", "--data", str(folder), "--out", str(out), *QUICK]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_series"] == 1  # 6 series: the last one is held out whole
    assert metrics["T_test"] == lengths[-1]
    np.savez(tmp_path / "trials.npz", **{f"t{i}": _lorenz(T, seed=i) for i, T in enumerate(lengths[:3])})
    assert cli.main(["train", "--data", str(tmp_path / "trials.npz"), "--dry-run"]) == 0
    assert "in 3 series (shortest 520)" in capsys.readouterr().out  # fewer than 5 series: the tail of each


def test_missing_values_through_the_cli(tmp_path):
    rng = np.random.default_rng(1)
    x = _lorenz(2500)
    x[rng.random(x.shape) < 0.1] = np.nan
    np.save(tmp_path / "gappy.npy", x)
    out = tmp_path / "run"
    assert cli.main(["train", "--data", str(tmp_path / "gappy.npy"), "--out", str(out), *QUICK]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.08 < metrics["train_missing_fraction"] < 0.12
    assert 0.08 < metrics["missing_fraction"] < 0.12 and np.isfinite(metrics["D_stsp"])
    x[:, 1] = np.nan
    np.save(tmp_path / "empty_column.npy", x)
    assert cli.main(["train", "--data", str(tmp_path / "empty_column.npy"), "--dry-run"]) == 2


def test_inputs_from_files(tmp_path, capsys):
    ts = data.driven_duffing(T=3000, seed=0)
    np.save(tmp_path / "x.npy", ts.x)
    np.save(tmp_path / "s.npy", ts.s)
    out = tmp_path / "run"
    assert cli.main(["train", "--data", str(tmp_path / "x.npy"), "--inputs", str(tmp_path / "s.npy"),
                     "--out", str(out), *QUICK]) == 0
    assert load(out / "model.npz").K == ts.s.shape[1]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["driven_by_inputs"] and np.isfinite(metrics["D_stsp"])
    np.save(tmp_path / "short.npy", ts.s[:-5])
    assert cli.main(["train", "--data", str(tmp_path / "x.npy"), "--inputs", str(tmp_path / "short.npy"),
                     "--dry-run"]) == 2
    assert "inputs" in capsys.readouterr().err


@pytest.mark.parametrize("setting, message", [
    (["--set", "train.lr=-1"], "lr"),
    (["--set", "run.threads=-3"], "threads"),
    (["--set", "run.thread=2"], "did you mean 'threads'"),
    (["--set", "trian.epochs=2"], "did you mean 'train'"),
    (["--set", "evaluate.pe_steps=0"], "pe_steps"),
    (["--set", "model.kind=lstm"], "kind"),
])
def test_failed_commands_leave_the_run_folder_alone(tmp_path, capsys, setting, message):
    np.save(tmp_path / "x.npy", _lorenz(2000))
    out = tmp_path / "run"
    assert cli.main(["train", "--data", str(tmp_path / "x.npy"), "--out", str(out), *QUICK]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    assert cli.main(["train", "--data", str(tmp_path / "x.npy"), "--out", str(out), *QUICK, *setting]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_unknown_toml_keys(tmp_path, capsys):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("[trian]\nepochs = 3\n")
    assert cli.main(["train", str(cfg), "--dry-run"]) == 2
    assert "unknown section [trian] (did you mean 'train'?)" in capsys.readouterr().err
    cfg.write_text("[train]\nepoch = 3\n")
    assert cli.main(["train", str(cfg), "--dry-run"]) == 2
    assert "train.epoch (did you mean 'epochs'?)" in capsys.readouterr().err
    cfg.write_text("[train\n")
    assert cli.main(["train", str(cfg), "--dry-run"]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_resume_applies_or_refuses_overrides(tmp_path, capsys):
    np.save(tmp_path / "x.npy", _lorenz(2000))
    out = tmp_path / "run"
    assert cli.main(["train", "--data", str(tmp_path / "x.npy"), "--out", str(out), *QUICK]) == 0
    before = (out / "config.toml").read_bytes()
    for refused in (["--set", "model.M=9"], ["--set", "train.seed=3"], ["--set", "data.dt=0.5"]):
        assert cli.main(["train", "--resume", str(out), *refused, "--quiet", "--no-plots"]) == 2
        assert "cannot change on --resume" in capsys.readouterr().err
        assert (out / "config.toml").read_bytes() == before
    assert cli.main(["train", "--resume", str(out), "--set", "train.epochs=3", "--set", "train.lr=0.0005",
                     "--quiet", "--no-plots"]) == 0
    config = runconfig.read_toml(str(out / "config.toml"))
    assert config["train"]["lr"] == 0.0005 and config["train"]["epochs"] == 3
    text = (out / "config.toml").read_text()
    assert "lr = 0.0005  # changed on --resume at epoch 2" in text
    assert "# from the autocorrelation decay" in text  # the reasons of derived settings are kept
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1, 2]
    ckpt = np.load(out / "checkpoint.npz")
    assert json.loads(str(ckpt["__meta__"]))["train_config"]["lr"] == 0.0005


def test_cli_errors_are_one_line(tmp_path, capsys):
    np.save(tmp_path / "x.npy", _lorenz(2000))
    out = tmp_path / "run"
    assert cli.main(["train", "--data", str(tmp_path / "x.npy"), "--out", str(out), *QUICK]) == 0
    cases = [
        ["analyze", str(out), "--cycles", "0"],
        ["analyze", str(out), "--steps", "0"],
        ["analyze", str(tmp_path / "nowhere")],
        ["evaluate", str(tmp_path)],
        ["train", "--data", str(tmp_path / "missing.npy"), "--dry-run"],
        ["train", "--data", str(tmp_path), "--dry-run"],  # a folder with no data file... x.npy is there
        ["train", "--resume", str(tmp_path / "nowhere")],
        ["train", "--system", "lorenz63", "--data", str(tmp_path / "x.npy"), "--dry-run"],
        ["generate", "lorenz63", "--out", str(tmp_path / "no" / "such" / "dir.npy"), "--set", "T=100"],
        ["generate", "nosuchsystem"],
    ]
    for args in cases:
        capsys.readouterr()
        code = cli.main(args)
        err = capsys.readouterr().err.strip()
        if args[:2] == ["train", "--data"] and args[2] == str(tmp_path):
            assert code == 0  # the folder holds x.npy: a valid data folder
            continue
        assert code == 2, args
        assert len(err.splitlines()) == 1 and "Traceback" not in err, (args, err)
