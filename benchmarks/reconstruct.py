"""Reconstruction benchmark: train on Lorenz-63 and Lorenz-96 with several seeds, score the models.

Each run goes through the same pipeline as ``plrnn train`` (built-in data, training, evaluation on a
separate 1e5-step test trajectory standardised with the training statistics) and is timed
wall-clock. Reported per system: mean ± standard deviation over the seeds of D_stsp, D_H, the model's
largest Lyapunov exponent and its relative error to the reference, PE(20), and the training time.

    python benchmarks/reconstruct.py                       # both systems, seeds 0 1 2
    python benchmarks/reconstruct.py --systems lorenz63 --seeds 0 1 2 3 4
    python benchmarks/reconstruct.py --floor-only --floor 16    # the true systems' scores alone

With ``--floor K`` (default 8) each system also gets its floor: the same observation metrics
(``metrics.score_trajectory``: D_stsp, D_H of the evaluation, the same length as a model's scored free
run) for K noiseless trajectories of the true system from other initial conditions (generator seeds
1000, 1001, ...), standardised with the training statistics like the test series: what a perfect
reconstruction scores at this test length.

Writes ``benchmarks/results/reconstruct.json`` (configs, per-run metrics, summary, floor) and prints a
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

from plrnn_native import cli, data, metrics, runconfig

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


def floor(system: str, extra: list, k: int) -> dict:
    """D_stsp and D_H of ``k`` noiseless trajectories of the true system against the run's test series
    (the data as ``plrnn train`` builds them with these settings; each trajectory as long as the
    model's scored free run, standardised with the training statistics like the test series)."""
    cfg = runconfig.resolve(None, [f"data.system={system}", *extra]).cfg
    train, test = cli.load_data(cfg)
    tr, te = train[0], test[0]
    ev = cfg["evaluate"]
    max_steps = int(ev.get("max_test_steps", 0) or 0)
    x_test = np.asarray(te.x[:max_steps] if max_steps else te.x, dtype=cfg["model"].get("dtype", "float32"))
    T = x_test.shape[0]
    length = round(ev.get("gen_factor", 1.25) * T) - round(ev.get("transient_fraction", 0.25) * T)
    gen = cli.generator_kwargs(cfg["data"])
    rows = []
    for i in range(k):
        ts = data.make(system, **{**gen, "T": length, "seed": 1000 + i, "obs_noise": 0.0})
        x = (ts.x * ts.std + ts.mean - tr.mean) / tr.std  # the training data's standardisation
        rows.append(metrics.score_trajectory(x_test, x, seed=i))
    out = {"trajectories": k, "generator_seeds": [1000 + i for i in range(k)], "T_generated": length,
           "D_stsp_variant": rows[0]["D_stsp_variant"]}
    for key in ("D_stsp", "D_H"):
        vals = np.array([r[key] for r in rows])
        out[key] = {"mean": float(vals.mean()), "std": float(vals.std()), "max": float(vals.max()),
                    "values": vals.tolist()}
    return out


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
    p.add_argument("--floor", type=int, default=8, metavar="K",
                   help="true-system trajectories scored as the floor (0: none)")
    p.add_argument("--floor-only", action="store_true", help="only the floor: train no model")
    p.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "reconstruct.json")
    args = p.parse_args(argv)
    if args.floor < 0 or (args.floor_only and args.floor == 0):
        p.error("--floor must be >= 0, and >= 1 with --floor-only")

    folder = args.keep or (None if args.floor_only else tempfile.mkdtemp(prefix="plrnn-reconstruct-"))
    results = {"command": ["reconstruct.py", *(argv if argv is not None else sys.argv[1:])],
               "machine": machine_info(REPO), "cpu_count": os.cpu_count(), "defaults": cli.DEFAULTS,
               "systems": {}}
    for system in args.systems:
        extra = SYSTEMS[system] + args.set
        runs = []
        for seed in [] if args.floor_only else args.seeds:
            print(f"{system} seed {seed} ...", flush=True)
            r = run_one(system, seed, extra, folder, args.threads)
            print(f"  D_stsp={r['D_stsp']:.3f} ({r['D_stsp_variant']}) D_H={r['D_H']:.3f} "
                  f"lambda_max={r['lambda_max_model']:.3f} train {r['train_seconds']:.0f} s", flush=True)
            runs.append(r)
        results["systems"][system] = {"settings": extra, "runs": runs, "summary": summarize(runs),
                                      "targets": TARGETS.get(system)}
        if args.floor > 0:
            results["systems"][system]["floor"] = floor(system, extra, args.floor)
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
        variant = res["runs"][0]["D_stsp_variant"] if res["runs"] else "–"
        print(f"| {system} | {cell(s, 'D_stsp')} ({variant}) | {cell(s, 'D_H')} | {cell(s, 'lambda_max_model')} "
              f"| {cell(s, 'lambda_max_rel_error')} | {cell(s, 'PE', '{:.2e}')} | {cell(s, 'train_seconds', '{:.0f}')} "
              f"| {len(res['runs'])} |")
        if "floor" in res:
            f = res["floor"]
            print(f"| {system}: the true system (floor) | {cell(f, 'D_stsp')} | {cell(f, 'D_H')} | – | – | – | – "
                  f"| {f['trajectories']} trajectories |")
    print(f"\nrun folders: {folder}\nresults: {args.output}" if folder else f"\nresults: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
