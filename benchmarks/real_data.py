"""Real-data benchmark: the field's recordings reconstructed by ``plrnn train --data`` as a user runs it.

Data: the Durstewitz lab's benchmark files (a folder with ``<name>_train.npy`` / ``<name>_test.npy``,
e.g. the project's ``shared/data``): an ECG recording (5-d delay embedding), a bursting neuron
model and the lab's Lorenz-63. Each data set is trained through the command line on the training
file, with the test file held out as a whole series (``--data train.npy test.npy --set
data.test_split=series``), in two settings:

* ``auto``: nothing but the data; every model and training setting derived from it
  (:mod:`plrnn_native.autoconfig`, written with its reason to the run's config.toml);
* ``lab``: the same, with the lab's forcing interval for the data set (``train.tau``: Lorenz-63 25,
  ECG 10, bursting neuron 5, from their configuration files).

Scores on the test file: D_stsp (binned for N <= 4, Gaussian mixture above), D_H, PE(20), and the
floor of each metric: the same measure between the training and the test file of the system (what
a perfect model of the system would score, up to sampling).

    python benchmarks/real_data.py --data ../shared/data                 # all, both settings, seed 0
    python benchmarks/real_data.py --data DIR --sets ecg5d --modes auto --seeds 0 1 2

Writes ``benchmarks/results/real_data.json`` (every run's config and metrics, the floors, the CPU)
and prints a Markdown table. The package never reads that folder: it is an argument here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from plrnn_native import metrics
from plrnn_native import cli

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from _timing import machine_info  # noqa: E402
SETS = {"lorenz63_lab": 25, "ecg5d": 10, "bursting_neuron": 5}  # the lab's tau for each


def floor(train: np.ndarray, test: np.ndarray, seed: int = 0) -> dict:
    """The metrics between the training and the test recording of the same system."""
    train, test = train.astype(np.float64), test.astype(np.float64)
    if test.shape[1] <= metrics.BINNED_MAX_DIM:
        d = metrics.state_space_divergence_binned(test, train)
    else:
        d = metrics.state_space_divergence_gmm(test, train, seed=seed)
    n = min(len(train), len(test))
    return {"D_stsp": float(d), "D_H": float(metrics.power_spectrum_distance(test[:n], train[:n]))}


def run_one(folder: Path, name: str, mode: str, seed: int, threads: int, out_root: str, extra: list) -> dict:
    out = os.path.join(out_root, f"{name}-{mode}-seed{seed}")
    args = ["train", "--data", str(folder / f"{name}_train.npy"), str(folder / f"{name}_test.npy"),
            "--set", "data.test_split=series", "--out", out, "--quiet", "--no-plots",
            "--set", f"model.seed={seed}", "--set", f"train.seed={seed}", "--set", f"run.threads={threads}"]
    if mode == "lab":
        args += ["--set", f"train.tau={SETS[name]}"]
    for item in extra:
        args += ["--set", item]
    t0 = time.perf_counter()
    code = cli.main(args)
    wall = time.perf_counter() - t0
    with open(os.path.join(out, "metrics.json")) as f:
        result = json.load(f)
    with open(os.path.join(out, "config.toml")) as f:
        config = f.read()
    result.update(set=name, mode=mode, seed=seed, exit_code=code, wall_seconds=wall, config_toml=config)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="folder with <name>_train.npy and <name>_test.npy")
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--modes", nargs="+", default=["auto", "lab"], choices=["auto", "lab"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="extra setting for every run (e.g. train.epochs=200 for a quick look)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "real_data.json"))
    ap.add_argument("--keep", help="keep the run folders here (default: a temporary folder)")
    args = ap.parse_args(argv)
    folder = Path(args.data)
    for name in args.sets:
        for part in ("train", "test"):
            if not (folder / f"{name}_{part}.npy").is_file():
                print(f"{folder / f'{name}_{part}.npy'}: missing", file=sys.stderr)
                return 2
    report = {"machine": machine_info(REPO), "threads": args.threads,
              "extra_settings": args.set, "floors": {}, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or tmp
        for name in args.sets:
            train = np.load(folder / f"{name}_train.npy")
            test = np.load(folder / f"{name}_test.npy")
            report["floors"][name] = floor(train, test)
            for mode in args.modes:
                for seed in args.seeds:
                    r = run_one(folder, name, mode, seed, args.threads, root, args.set)
                    report["runs"].append(r)
                    print(f"{name} {mode} seed {seed}: D_stsp {r['D_stsp']:.3f} D_H {r['D_H']:.3f} "
                          f"PE {r['PE']:.3g} ({r['train_seconds']:.0f} s)", flush=True)
                    os.makedirs(os.path.dirname(args.out), exist_ok=True)
                    with open(args.out, "w") as f:
                        json.dump(report, f, indent=1, default=float)
    print_table(report)
    return 0


def print_table(report: dict) -> None:
    print(f"\nCPU: {report['machine']['cpu_model']}, {report['threads']} threads")
    print("| data | settings | tau | model | D_stsp | D_H | PE(20) | train s | floor D_stsp | floor D_H |")
    print("|---|---|--:|---|--:|--:|--:|--:|--:|--:|")
    for r in report["runs"]:
        fl = report["floors"][r["set"]]
        cfg = r["config_toml"]
        tau = next((line.split("=")[1].split("#")[0].strip() for line in cfg.splitlines()
                    if line.startswith("tau =")), "?")
        model = f"M={r['M']}" + (" linear obs" if 'obs = "linear"' in cfg else "")
        print(f"| {r['set']} | {r['mode']} (seed {r['seed']}) | {tau} | {model} | {r['D_stsp']:.3f} "
              f"({r['D_stsp_variant']}) | {r['D_H']:.3f} | {r['PE']:.3g} | {r['train_seconds']:.0f} | "
              f"{fl['D_stsp']:.3f} | {fl['D_H']:.3f} |")


if __name__ == "__main__":
    sys.exit(main())
