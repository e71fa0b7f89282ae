"""The plrnn command line: a tiny run through train, evaluate, analyze, resume and generate."""

import json

import numpy as np
import pytest
from plrnn_native import cli, load

TINY = ["--set", "data.T=3000", "--set", "data.test_T=1000", "--set", "model.hidden=6", "--set", "train.epochs=2", "--set", "train.batches_per_epoch=5",
        "--set", "train.seq_len=50", "--set", "evaluate.max_test_steps=400",
        "--set", "evaluate.lyapunov_steps=500", "--set", "evaluate.lyapunov_transient=50",
        "--set", "run.threads=1", "--set", "run.select_every=1", "--set", "run.validation_steps=300",
        "--quiet", "--no-plots"]


def test_train_evaluate_analyze_resume(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", "--system", "lorenz63", "--out", str(out), *TINY]) == 0
    for name in ("config.toml", "model.npz", "checkpoint.npz", "history.csv", "history.json", "metrics.json"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["D_stsp_variant"] == "binned"
    assert metrics["selected_epoch"] in (0, 1) and (out / "best.npz").exists()
    history = json.loads((out / "history.json").read_text())
    assert all("val_D_stsp" in h and "val_D_H" in h and "val_score" in h for h in history)
    best = next(h for h in history if h["epoch"] == metrics["selected_epoch"])
    assert metrics["validation_score"] == best["val_score"] == min(h["val_score"] for h in history)
    assert (metrics["validation_D_stsp"], metrics["validation_D_H"]) == (best["val_D_stsp"], best["val_D_H"])
    assert "train.epochs" not in (out / "config.toml").read_text()
    config = (out / "config.toml").read_text()
    assert "epochs = 2" in config
    assert "T = 3000" in config  # --set wins over the defaults that --system brings
    model = load(out / "model.npz")
    assert model.kind == "shallow" and model.N == 3

    assert cli.main(["evaluate", str(out), "--no-plots", "--set", "evaluate.max_test_steps=300",
                     "--set", "evaluate.lyapunov_steps=300"]) == 0
    assert cli.main(["analyze", str(out), "--steps", "300", "--cycles", "2", "--no-plots"]) == 0
    result = json.loads((out / "analysis.json").read_text())
    spectrum = result["lyapunov_spectrum_per_time"]
    assert len(spectrum) == model.M and spectrum == sorted(spectrum, reverse=True)
    assert result["fixed_points"]["method"] == "exhaustive" and result["fixed_points"]["regions"] == 2**6
    for fp in result["fixed_points"]["items"]:  # each reported point is a fixed point of the model
        z = np.array(fp["points"][0])
        assert np.allclose(model.step(z.astype(model.dtype)), z, atol=1e-4)
    assert result["cycles_2"]["method"] == "exhaustive"

    # resume to more epochs continues the history where it stopped
    selection = json.loads((out / "selection.json").read_text())
    assert selection["rule"] == "D_stsp + D_H"
    assert cli.main(["train", "--resume", str(out), "--set", "train.epochs=3", "--quiet", "--no-plots"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1, 2]
    best = min(history, key=lambda h: h["val_score"])
    assert json.loads((out / "selection.json").read_text())["best_score"] == best["val_score"]

    # a run folder from before the rule (selection.json without it, a D_stsp-only score) resumes with
    # its kept parameters scored again under the rule, so that later epochs compare like with like
    selection = json.loads((out / "selection.json").read_text())
    kept = selection["best_score"]
    (out / "selection.json").write_text(json.dumps({"best_score": -1.0, "best_epoch": selection["best_epoch"]}))
    assert cli.main(["train", "--resume", str(out), "--set", "train.epochs=4", "--quiet", "--no-plots"]) == 0
    selection = json.loads((out / "selection.json").read_text())
    history = json.loads((out / "history.json").read_text())
    assert selection["rule"] == "D_stsp + D_H"
    assert selection["best_score"] == min(kept, history[-1]["val_score"])  # -1.0 did not survive


def _without(args, key):
    """``args`` less the ``--set key=...`` pairs."""
    out, skip = [], False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if a == "--set" and i + 1 < len(args) and args[i + 1].startswith(key + "="):
            skip = True
            continue
        out.append(a)
    return out


def test_toml_config_and_user_data(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(2000) * 0.05
    np.save(tmp_path / "mine.npy", np.stack([np.sin(t), np.cos(t)], 1) + 0.01 * rng.standard_normal((2000, 2)))
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('[model]\nkind = "standard"\nM = 6\n[train]\nforcing = "sparse"\ntau = 10\n')
    out = tmp_path / "run"
    tiny = _without(_without(TINY, "data.T"), "model.hidden")
    code = cli.main(["train", str(cfg), "--data", str(tmp_path / "mine.npy"), "--out", str(out), *tiny])
    assert code == 0
    assert load(out / "model.npz").kind == "standard"
    # a kind-specific key the user sets explicitly for another kind is still an error
    assert cli.main(["train", str(cfg), "--data", str(tmp_path / "mine.npy"), "--out", str(out),
                     "--set", "model.hidden=8", *tiny]) == 2


def test_bad_settings_fail_cleanly(tmp_path, capsys):
    assert cli.main(["train", "--system", "lorenz63", "--out", str(tmp_path / "r"),
                     "--set", "train.learning_rate=1", *TINY]) == 2
    assert "learning_rate" in capsys.readouterr().err
    assert cli.main(["train", "--system", "lorenz63", "--set", "epochs=3"]) == 2
    assert "section.key=value" in capsys.readouterr().err
    assert cli.main(["evaluate", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_generate(tmp_path):
    out = tmp_path / "l96.npy"
    assert cli.main(["generate", "lorenz96", "--out", str(out), "--set", "N=6", "--set", "T=500"]) == 0
    assert np.load(out).shape == (500, 6)
