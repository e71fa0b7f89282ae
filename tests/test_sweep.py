"""plrnn sweep: run folders per (setting, seed), summary, resume, failures, reproducibility, Ray."""

import importlib
import json

import numpy as np
import pytest
from plrnn_native import cli, plots
from plrnn_native import sweep as sweep_fn  # the function; the module is plrnn_native.sweep

sweep_mod = importlib.import_module("plrnn_native.sweep")

TINY = ["data.T=3000", "data.test_T=1000", "model.hidden=6", "train.epochs=2", "train.batches_per_epoch=3",
        "train.seq_len=50", "evaluate.max_test_steps=300", "evaluate.lyapunov_steps=200",
        "evaluate.lyapunov_transient=20", "run.select_every=1", "run.validation_steps=300"]
TINY_ARGS = [a for item in TINY for a in ("--set", item)]
VOLATILE = ("train_seconds",)  # wall time: the only field that may differ between runs of a trial


def _metrics(folder):
    m = json.loads((folder / "metrics.json").read_text())
    return {k: v for k, v in m.items() if k not in VOLATILE}


def _sweep(out, *extra, grid=("train.tau=10,25",), seeds=2):
    argv = ["sweep", "--system", "lorenz63", "--out", str(out), "--seeds", str(seeds), "--no-plots", "--quiet",
            *TINY_ARGS, *extra]
    for g in grid:
        argv += ["--grid", g]
    return cli.main(argv)


FOLDERS = ["tau=10/seed0", "tau=10/seed1", "tau=25/seed0", "tau=25/seed1"]


def test_local_sweep_folders_summary_plot_and_resume(tmp_path):
    out = tmp_path / "sw"
    assert _sweep(out, "--jobs", "2") == 0
    for f in FOLDERS:
        for name in ("config.toml", "model.npz", "checkpoint.npz", "metrics.json", "train.log"):
            assert (out / f / name).exists(), (f, name)
        config = (out / f / "config.toml").read_text()
        seed = f[-1]
        assert f"tau = {f.split('/')[0].split('=')[1]}" in config and "threads = 1" in config
        assert config.count(f"seed = {seed}") >= 2  # model.seed and train.seed
    rows = json.loads((out / "summary.json").read_text())
    assert sorted(r["train.tau"] for r in rows) == [10, 25]
    assert [r["rank"] for r in rows] == [1, 2]
    assert rows[0]["D_stsp_median"] <= rows[1]["D_stsp_median"]
    for r in rows:
        assert r["trials"] == 2 and r["completed"] == 2 and r["failed"] == 0
        for m in sweep_mod.METRICS:
            assert r[f"{m}_median"] is not None and r[f"{m}_mad"] >= 0
    header = (out / "summary.csv").read_text().splitlines()[0]
    assert "D_stsp_median" in header and "lambda_max_model_mad" in header
    assert json.loads((out / "failures.json").read_text()) == []
    if plots.available():
        assert (out / "plots" / "train.tau.png").stat().st_size > 0

    # resume: finished trials untouched, the one without metrics.json completed from its checkpoint
    before = {f: (out / f / "metrics.json").stat().st_mtime_ns for f in FOLDERS}
    lost = _metrics(out / FOLDERS[2])
    (out / FOLDERS[2] / "metrics.json").unlink()
    assert _sweep(out, "--jobs", "2") == 0
    for f in FOLDERS:
        if f != FOLDERS[2]:
            assert (out / f / "metrics.json").stat().st_mtime_ns == before[f], f
    assert _metrics(out / FOLDERS[2]) == lost
    assert "resuming" in (out / FOLDERS[2] / "train.log").read_text()

    # a different grid in the same folder is refused before anything runs
    assert _sweep(out, grid=("train.tau=10,40",)) == 2


def test_failed_trial_is_recorded_and_the_rest_completes(tmp_path, capsys):
    out = tmp_path / "sw"
    assert _sweep(out, "--jobs", "2", grid=("train.lr=0.001,-1",), seeds=1) == 1
    failures = json.loads((out / "failures.json").read_text())
    assert [f["folder"] for f in failures] == ["lr=-1/seed0"]
    assert "lr" in failures[0]["error"]
    assert (out / "lr=0.001" / "seed0" / "metrics.json").exists()
    rows = {r["setting"]: r for r in json.loads((out / "summary.json").read_text())}
    assert rows["lr=-1"]["failed"] == 1 and rows["lr=-1"]["D_stsp_median"] is None and rows["lr=-1"]["rank"] == 2
    assert rows["lr=0.001"]["completed"] == 1


def test_result_independent_of_workers(tmp_path):
    assert _sweep(tmp_path / "a", "--jobs", "1") == 0
    assert _sweep(tmp_path / "b", "--jobs", "2") == 0
    for f in FOLDERS:
        assert _metrics(tmp_path / "a" / f) == _metrics(tmp_path / "b" / f), f
    # the same as a plain plrnn train (which generates its data itself; the sweep shares the driver's)
    plain = tmp_path / "plain"
    assert cli.main(["train", "--system", "lorenz63", "--out", str(plain), *TINY_ARGS, "--set", "train.tau=25",
                     "--set", "model.seed=1", "--set", "train.seed=1", "--set", "run.threads=1",
                     "--quiet", "--no-plots"]) == 0
    assert _metrics(plain) == _metrics(tmp_path / "a" / "tau=25/seed1")


def test_sweep_over_own_data_file(tmp_path):
    from plrnn_native import data

    np.save(tmp_path / "x.npy", data.make("lorenz63", T=3000, seed=4).x)
    over = ["model.hidden=6", "train.epochs=2", "train.batches_per_epoch=3", "train.seq_len=50",
            "evaluate.lyapunov_steps=200", "evaluate.lyapunov_transient=20", "run.select_every=1",
            "run.validation_steps=300"]
    rows = sweep_fn(data=[str(tmp_path / "x.npy")], grid=["train.tau=5,10"], seeds=1, out=str(tmp_path / "sw"),
                    jobs=2, overrides=over, quiet=True)
    assert all(r["completed"] == 1 for r in rows)
    assert "path" in (tmp_path / "sw" / "tau=5" / "seed0" / "config.toml").read_text()


def test_python_api(tmp_path):
    rows = sweep_fn(system="lorenz63", grid={"model.hidden": [4, 6]}, seeds=[3], out=str(tmp_path / "sw"),
                    jobs=2, overrides=[i for i in TINY if not i.startswith("model.hidden")], quiet=True)
    assert sorted(r["setting"] for r in rows) == ["hidden=4", "hidden=6"]
    assert (tmp_path / "sw" / "hidden=4" / "seed3" / "metrics.json").exists()


@pytest.mark.parametrize("extra, flag", [
    (["--grid", "train.taux=10,25"], "--grid"),
    (["--grid", "train.tau=10,,25"], "--grid train.tau"),
    (["--grid", "train.tau="], "--grid train.tau"),
    (["--grid", "model.seed=1,2"], "--grid model.seed"),
    (["--seeds", "0"], "--seeds"),
    (["--jobs", "0"], "--jobs"),
    (["--set", "train.seed=3"], "--set train.seed"),
    (["--address", "auto"], "--address"),
])
def test_bad_input(tmp_path, capsys, extra, flag):
    argv = ["sweep", "--system", "lorenz63", "--out", str(tmp_path / "sw"), "--quiet", *extra]
    if not any(a == "--grid" for a in extra):
        argv += ["--grid", "train.tau=10,25"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("plrnn sweep: ") and flag in err[0], err
    assert not (tmp_path / "sw" / "tau=10").exists()


def test_ray_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sweep_mod, "ray_available", lambda: False)
    assert cli.main(["sweep", "--system", "lorenz63", "--out", str(tmp_path / "sw"), "--backend", "ray"]) == 2
    err = capsys.readouterr().err
    assert "--backend ray" in err and "pip install" in err


def test_ray_backend_matches_local(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install \"plrnn_native[ray]\")")
    assert _sweep(tmp_path / "ray", "--backend", "ray", "--jobs", "2") == 0
    assert _sweep(tmp_path / "local", "--jobs", "2") == 0
    for f in FOLDERS:
        assert _metrics(tmp_path / "ray" / f) == _metrics(tmp_path / "local" / f), f
    rows = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert all(r["completed"] == 2 for r in rows)
    # resume under Ray: everything finished is skipped
    stamp = (tmp_path / "ray" / FOLDERS[0] / "metrics.json").stat().st_mtime_ns
    assert _sweep(tmp_path / "ray", "--backend", "ray", "--jobs", "2") == 0
    assert (tmp_path / "ray" / FOLDERS[0] / "metrics.json").stat().st_mtime_ns == stamp


def test_ray_early_stop(tmp_path):
    pytest.importorskip("ray.tune", reason="Ray Tune is not installed (pip install \"plrnn_native[ray]\")")
    out = tmp_path / "asha"
    extra = ["--backend", "ray", "--jobs", "2", "--early-stop", "--set", "train.epochs=40"]
    argv = [a for item in TINY if item != "train.epochs=2" for a in ("--set", item)]
    assert cli.main(["sweep", "--system", "lorenz63", "--out", str(out), "--seeds", "2", "--no-plots", "--quiet",
                     "--grid", "train.lr=0.001,0.00001", *argv, *extra]) == 0
    rows = json.loads((out / "summary.json").read_text())
    assert sum(r["completed"] + r["diverged"] + r["stopped"] for r in rows) == 4
    assert sum(r["completed"] for r in rows) >= 1 and all(r["failed"] == 0 for r in rows)
    for r in rows:
        for k in (0, 1):
            folder = out / r["setting"] / f"seed{k}"
            assert (folder / "metrics.json").exists() != (folder / "stopped.json").exists()
    stamps = sorted(p.stat().st_mtime_ns for p in out.glob("*/*/metrics.json"))
    assert cli.main(["sweep", "--system", "lorenz63", "--out", str(out), "--seeds", "2", "--no-plots", "--quiet",
                     "--grid", "train.lr=0.001,0.00001", *argv, *extra]) == 0
    assert sorted(p.stat().st_mtime_ns for p in out.glob("*/*/metrics.json")) == stamps  # all skipped


def test_early_stop_needs_ray_backend(tmp_path, capsys):
    assert cli.main(["sweep", "--system", "lorenz63", "--out", str(tmp_path / "sw"), "--early-stop"]) == 2
    assert "--early-stop" in capsys.readouterr().err


def _interrupt_when(argv, ready, timeout=120.0):
    """Starts ``plrnn`` with ``argv`` in its own process group, sends SIGINT to the group (as Ctrl-C
    in a terminal does) once ``ready()`` is true, and returns the exit status."""
    import os
    import signal
    import subprocess
    import sys
    import time

    code = "import sys; from plrnn_native.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, f"finished before it could be interrupted: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "the trial never reached the point of interruption"
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    return proc.returncode, err


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_interrupted_sweep_resumes_to_the_uninterrupted_result(tmp_path, jobs):
    """Ctrl-C in the middle of a trial, then the same command again: finished trials are skipped, the
    interrupted one continues from its checkpoint, and every metrics.json equals an uninterrupted run's."""
    long = [a for item in TINY if item.split("=")[0] not in ("train.epochs", "run.select_every")
            for a in ("--set", item)]
    long += ["--set", "train.epochs=200", "--set", "run.select_every=50", "--set", "run.checkpoint_every=5"]
    argv = ["sweep", "--system", "lorenz63", "--seeds", "2", "--grid", "train.tau=25", "--no-plots", "--quiet",
            "--jobs", jobs, *long]
    assert cli.main([*argv, "--out", str(tmp_path / "whole")]) == 0

    out = tmp_path / "cut"
    last = out / "tau=25" / "seed1"  # with one worker the second trial, with two either: wait for seed1
    code, err = _interrupt_when([*argv, "--out", str(out)],
                                lambda: (last / "checkpoint.npz").exists() and not (last / "metrics.json").exists())
    assert code == 130, err
    assert err.strip().splitlines()[-1].endswith("interrupted"), err
    assert not (last / "metrics.json").exists() and (last / "checkpoint.npz").exists()

    assert cli.main([*argv, "--out", str(out)]) == 0
    assert "resuming" in (last / "train.log").read_text()
    for f in ("tau=25/seed0", "tau=25/seed1"):
        assert _metrics(out / f) == _metrics(tmp_path / "whole" / f), f
    rows = json.loads((out / "summary.json").read_text())
    assert rows[0]["completed"] == 2 and rows[0]["failed"] == 0
    assert json.loads((out / "failures.json").read_text()) == []
