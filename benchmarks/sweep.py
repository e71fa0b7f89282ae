"""Sweep benchmark: the wall time of a 16-trial Lorenz-63 sweep, local process pool vs a local Ray
instance vs one trial at a time (a pool of one worker).

The trials are ``plrnn sweep --system lorenz63`` over ``train.tau`` (4 values) x 4 seeds with the
preset's data (1e5 training and 1e5 test steps) and model, but fewer epochs and a shorter evaluation
(``REDUCED``) so that the three sweeps finish in minutes; each trial runs one native thread. The
data are generated once per sweep by the driver (``load_data``) in every mode, so the figures
compare the execution of the trials.

    python benchmarks/sweep.py                      # all three, --jobs = CPU count
    python benchmarks/sweep.py --modes local ray --epochs 100

Writes ``benchmarks/results/sweep.json`` and prints a Markdown table, with the throughput per core
(trials per hour per core) that a cluster multiplies by its cores (the trials are independent).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
try:  # run as a script (benchmarks/ on the path) or as a module from the repository root
    from _timing import machine_info
except ImportError:  # pragma: no cover
    from benchmarks._timing import machine_info

GRID = ["train.tau=10,15,25,40"]
SEEDS = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", nargs="+", default=["sequential", "local", "ray"],
                        choices=["sequential", "local", "ray"])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "sweep.json"))
    args = parser.parse_args()
    sweep_mod = importlib.import_module("plrnn_native.sweep")
    reduced = [f"train.epochs={args.epochs}", "evaluate.max_test_steps=20000", "evaluate.lyapunov_steps=10000"]
    n_trials = SEEDS * len(GRID[0].split("=", 1)[1].split(","))
    results = {}
    for mode in args.modes:
        if mode == "ray" and not sweep_mod.ray_available():
            print("ray: skipped (not installed)")
            continue
        backend = "ray" if mode == "ray" else "local"
        jobs = 1 if mode == "sequential" else args.jobs
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            rows = sweep_mod.sweep(system="lorenz63", grid=GRID, seeds=SEEDS, out=os.path.join(tmp, "sw"),
                                   backend=backend, jobs=jobs, overrides=reduced, quiet=True)
            wall = time.perf_counter() - t0
        train = sum(r["train_seconds_median"] or 0.0 for r in rows) / len(rows)
        results[mode] = {"backend": backend, "jobs": jobs, "wall_seconds": wall,
                         "trials_per_hour": 3600 * n_trials / wall,
                         "trials_per_hour_per_core": 3600 * n_trials / wall / jobs,
                         "median_train_seconds": train,
                         "failed": sum(r["failed"] for r in rows),
                         "best": {k: rows[0][k] for k in ("setting", "D_stsp_median", "D_stsp_mad")}}
        print(f"{mode}: {wall:.1f} s", flush=True)
    record = {"trials": n_trials, "grid": GRID, "seeds": SEEDS, "reduced_settings": reduced,
              "machine": machine_info(REPO), "results": results}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(record, f, indent=1)
    print(f"\n{n_trials}-trial Lorenz-63 sweep ({', '.join(reduced)}), {record['machine']['cpu_model']}, "
          f"{os.cpu_count()} cores\n")
    print("| mode | workers | wall (s) | trials/hour | trials/hour/core | speed-up |")
    print("|---|---|---|---|---|---|")
    base = results.get("sequential", {}).get("wall_seconds")
    for mode, r in results.items():
        speed = f"{base / r['wall_seconds']:.2f}x" if base else "-"
        print(f"| {mode} | {r['jobs']} | {r['wall_seconds']:.1f} | {r['trials_per_hour']:.0f} | "
              f"{r['trials_per_hour_per_core']:.0f} | {speed} |")
    print(f"\n-> {args.out}")


if __name__ == "__main__":
    main()
