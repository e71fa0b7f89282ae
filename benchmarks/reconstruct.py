"""Reconstruction benchmark: train on Lorenz-63 and Lorenz-96 with several seeds, score the models.

Each run goes through the same pipeline as ``plrnn train`` (built-in data, training, evaluation on a
separate 1e5-step test trajectory standardised with the training statistics) and is timed
wall-clock. Reported per system: mean ± standard deviation over the seeds of D_stsp, D_H, the model's
largest Lyapunov exponent and its relative error to the reference, PE(20), and the training time.

    python benchmarks/reconstruct.py                       # both systems, seeds 0 1 2
    python benchmarks/reconstruct.py --systems lorenz63 --seeds 0 1 2 3 4

Writes ``benchmarks/results/reconstruct.json`` (configs, per-run metrics, summary) and prints a
Markdown table. Targets (issue: Lorenz-63, 1e5 samples, dt = 0.01, 1 % noise, 2 CPU cores):
D_stsp <= 0.3 (binned, 30 bins), D_H <= 0.1, lambda_max within 10 % of 0.906, <= 5 minutes.
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

from plrnn_native import cli

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from _timing import machine_info  # noqa: E402

#: Per-system settings on top of plrnn's defaults (``plrnn_native.cli.DEFAULTS``).
SYSTEMS = {
    "lorenz63": [],  # the defaults: shallow PLRNN M=3, H=100, STF tau=25, 2000 epochs
    "lorenz96": ["data.N=10", "data.F=8.0", "model.M=10", "model.hidden=200", "train.tau=10"],
}
TARGETS = {"lorenz63": {"D_stsp": 0.3, "D_H": 0.1, "lambda_max_rel_error": 0.1, "train_seconds": 300.0}}


def run_one(system: str, seed: int, extra: list, folder: str, threads: int) -> dict:
    out = os.path.join(folder, f"{system}-seed{seed}")
    args = ["train", "--system", system, "--out", out, "--quiet", "--no-plots",
            "--set", f"model.seed={seed}", "--set", f"train.seed={seed}", "--set", f"run.threads={threads}"]
    for item in extra:
        args += ["--set", item]
    t0 = time.perf_counter()
    code = cli.main(args)
    wall = time.perf_counter() - t0
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    metrics.update(seed=seed, exit_code=code, wall_seconds_total=wall)
    return metrics


def summarize(runs: list) -> dict:
    keys = ["D_stsp", "D_H", "lambda_max_model", "lambda_max_rel_error", "PE", "train_seconds"]
    out = {}
    for k in keys:
        vals = np.array([r[k] for r in runs if r.get(k) is not None], dtype=float)
        if vals.size:
            out[k] = {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "values": vals.tolist()}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=0, help="native threads (0: all cores)")
    p.add_argument("--set", action="append", default=[], help="extra section.key=value for every run")
    p.add_argument("--keep", help="folder to keep the run folders in (default: a temporary folder)")
    p.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "reconstruct.json")
    args = p.parse_args(argv)

    folder = args.keep or tempfile.mkdtemp(prefix="plrnn-reconstruct-")
    results = {"command": ["reconstruct.py", *(argv if argv is not None else sys.argv[1:])],
               "machine": machine_info(REPO), "cpu_count": os.cpu_count(), "defaults": cli.DEFAULTS,
               "systems": {}}
    for system in args.systems:
        extra = SYSTEMS[system] + args.set
        runs = []
        for seed in args.seeds:
            print(f"{system} seed {seed} ...", flush=True)
            r = run_one(system, seed, extra, folder, args.threads)
            print(f"  D_stsp={r['D_stsp']:.3f} ({r['D_stsp_variant']}) D_H={r['D_H']:.3f} "
                  f"lambda_max={r['lambda_max_model']:.3f} train {r['train_seconds']:.0f} s", flush=True)
            runs.append(r)
        results["systems"][system] = {"settings": extra, "runs": runs, "summary": summarize(runs),
                                      "targets": TARGETS.get(system)}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1, default=float))

    def cell(summary, k, fmt="{:.3f}"):
        if k not in summary:
            return "–"
        return (fmt + " ± " + fmt).format(summary[k]["mean"], summary[k]["std"])

    print("\n| system | D_stsp | D_H | λ_max (model) | λ_max rel. error | PE(20) | train s | seeds |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for system, res in results["systems"].items():
        s = res["summary"]
        variant = res["runs"][0]["D_stsp_variant"]
        print(f"| {system} | {cell(s, 'D_stsp')} ({variant}) | {cell(s, 'D_H')} | {cell(s, 'lambda_max_model')} "
              f"| {cell(s, 'lambda_max_rel_error')} | {cell(s, 'PE', '{:.2e}')} | {cell(s, 'train_seconds', '{:.0f}')} "
              f"| {len(res['runs'])} |")
    print(f"\nrun folders: {folder}\nresults: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
