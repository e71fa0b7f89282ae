"""Where a training step's time goes on the CPU: the native loop against its parts and the Python loop.

For each configuration (default: the shipped defaults, the Lorenz-63 shallow PLRNN M=3 H=100 and the
standard PLRNN M=32, B=16, T=200, sparse teacher forcing tau=25, float32), per optimiser step:

* ``loss_and_grad``: the model's forward + BPTT on a fixed batch, one native call each (the floor);
* ``native run``: ``_core.Trainer.run`` of one epoch (sampling, gather, forward + BPTT, norm, Adam, all
  native, one call);
* ``Trainer epoch``: ``Trainer.train`` for one epoch (the native run plus the Python epoch work:
  snapshots for the divergence guard, history);
* ``Python loop``: the same epoch with the steps driven from Python (``Trainer._native = None``: the
  path of adaptive alpha; NumPy sampling, one native loss_and_grad per step, the optimiser update).

Reported: medians over interleaved repeats, the Python overhead of the trainer (the share of each timed
``Trainer`` epoch spent outside its native run call, measured inside the same epochs: the issue's "< 5 %")
and the speed-up of the native loop over the Python loop.

``--cli-epochs E`` (default 300; 0: skip) also runs ``plrnn train --system lorenz63 --epochs E`` on
``--cli-threads`` threads (default 2) and reports the share of its training time spent outside the
native runs (the epoch callback's model selection every 50 epochs, checkpoints and history files every
25, the divergence guard's snapshots, the epoch records) with the time of each of those parts.

Writes ``benchmarks/results/trainer_loop.json``.

    python benchmarks/trainer_loop.py [--threads 1 2] [--repeats 15] [--cli-epochs 300]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine_info, summarize, time_interleaved  # noqa: E402

import plrnn_native as pn  # noqa: E402
from plrnn_native.training import TrainConfig, Trainer  # noqa: E402

CONFIGS = {
    "lorenz63-default (shallow M=3 H=100)": dict(kind="shallow", M=3, hidden=100),
    "standard M=32": dict(kind="standard", M=32),
}


def run(name: str, model_kw: dict, threads: int, repeats: int, batches: int) -> dict:
    pn.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 3)).astype(np.float32)
    cfg = TrainConfig(epochs=10**6, batches_per_epoch=batches, seq_len=200, batch_size=16, forcing="sparse",
                      tau=25, lr=1e-4, lr_end=1e-4)
    model = pn.PLRNN(N=3, dtype="float32", seed=0, **model_kw)
    native = Trainer(model.copy(), x, config=cfg)
    python = Trainer(model.copy(), x, config=cfg)
    python._native = None
    xb = native.sample_batch(0)[0]
    fixed = model.copy()
    real = native._native  # the trainer's native loop (csrc/training/train_step.h)

    def step_loop():
        for _ in range(batches):
            fixed.loss_and_grad(xb, forcing="sparse", tau=25)

    def native_run():
        real.run(batches, 1e-4, 0.0, native.optimizer.t + 1, native.batches_done)
        native.optimizer.t += batches
        native.batches_done += batches

    inside = []  # seconds spent inside the native run of each timed Trainer epoch

    class Timed:  # the trainer's own native loop, its time inside run() recorded
        def __getattr__(self, name):
            return getattr(real, name)

        def run(self, *args):
            t0 = time.perf_counter()
            try:
                return real.run(*args)
            finally:
                inside.append(time.perf_counter() - t0)

    def trainer_epoch():
        t0 = time.perf_counter()
        native.train(native.epoch + 1)
        whole.append(time.perf_counter() - t0)

    whole = []
    native._native = Timed()
    fns = {"loss_and_grad": step_loop, "native run": native_run, "Trainer epoch": trainer_epoch,
           "Python loop": lambda: python.train(python.epoch + 1)}
    samples = time_interleaved(fns, repeats=repeats, warmup=2, block=3)
    native._native = real
    # the Python share of each epoch, from the same epochs (robust against the machine's drift)
    share = [1.0 - i / w for i, w in zip(inside, whole)]
    per_step = {k: summarize([t / batches for t in v]).to_dict() for k, v in samples.items()}
    med = {k: v["median_ms"] for k, v in per_step.items()}
    return {"config": name, "threads": threads, "batches_per_epoch": batches, "per_step": per_step,
            "python_overhead_of_trainer": float(np.median(share)),
            "python_overhead_of_trainer_q1_q3": [float(np.percentile(share, 25)), float(np.percentile(share, 75))],
            "trainer_over_loss_and_grad": med["Trainer epoch"] / med["loss_and_grad"],
            "python_loop_over_trainer": med["Python loop"] / med["Trainer epoch"]}


def cli_share(epochs: int, threads: int) -> dict:
    """``plrnn train --system lorenz63`` for ``epochs`` epochs: the training time outside the native runs
    and the time of the epoch-level parts (each method timed where it is called)."""
    import functools
    import shutil
    import tempfile

    from plrnn_native import cli, selection, training

    spent = {}

    def timed(owner, name, label):
        original = getattr(owner, name)

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                calls, total = spent.get(label, (0, 0.0))
                spent[label] = (calls + 1, total + time.perf_counter() - t0)
        return original, wrapper

    parts = [(training.Trainer, "train_epoch_steps", "native runs"),
             (selection.BestModelSelector, "__call__", "model selection"),
             (training.Trainer, "save_checkpoint", "checkpoints"),
             (training.HistoryFiles, "write", "history files"),
             (training.Trainer, "_snapshot", "snapshots")]
    saved = []
    for owner, name, label in parts:
        original, wrapper = timed(owner, name, label)
        saved.append((owner, name, original))
        setattr(owner, name, wrapper)
    folder = tempfile.mkdtemp(prefix="plrnn-trainer-loop-")
    try:
        cli.main(["train", "--system", "lorenz63", "--epochs", str(epochs), "--out", os.path.join(folder, "run"),
                  "--quiet", "--no-plots", "--set", f"run.threads={threads}", "--set", "evaluate.lyapunov_steps=1000",
                  "--set", "evaluate.max_test_steps=10000"])
        with open(os.path.join(folder, "run", "metrics.json")) as f:
            train_seconds = json.load(f)["train_seconds"]
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
        shutil.rmtree(folder, ignore_errors=True)
    inside = spent["native runs"][1]
    return {"epochs": epochs, "threads": threads, "train_seconds": train_seconds,
            "outside_native_share": 1.0 - inside / train_seconds,
            "outside_native_ms_per_epoch": 1e3 * (train_seconds - inside) / epochs,
            "parts": {k: {"calls": n, "ms_per_call": 1e3 * t / n, "ms_per_epoch": 1e3 * t / epochs}
                      for k, (n, t) in spent.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--batches", type=int, default=50)
    ap.add_argument("--cli-epochs", type=int, default=300)
    ap.add_argument("--cli-threads", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "trainer_loop.json"))
    args = ap.parse_args(argv)
    records = [run(name, kw, th, args.repeats, args.batches) for name, kw in CONFIGS.items() for th in args.threads]
    cli_run = cli_share(args.cli_epochs, args.cli_threads) if args.cli_epochs > 0 else None
    print("| model (float32, B=16, T=200, tau=25) | threads | loss_and_grad | native run | Trainer epoch | "
          "Python overhead | Python loop (before) |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for r in records:
        m = {k: v["median_ms"] for k, v in r["per_step"].items()}
        print(f"| {r['config']} | {r['threads']} | {m['loss_and_grad']:.3f} ms | {m['native run']:.3f} ms | "
              f"{m['Trainer epoch']:.3f} ms | {100 * r['python_overhead_of_trainer']:.1f} % | "
              f"{m['Python loop']:.3f} ms ({r['python_loop_over_trainer']:.2f}x) |")
    if cli_run is not None:
        print(f"\nplrnn train --system lorenz63, {cli_run['epochs']} epochs, {cli_run['threads']} threads: training "
              f"{cli_run['train_seconds']:.2f} s, outside the native runs {100 * cli_run['outside_native_share']:.1f} % "
              f"({cli_run['outside_native_ms_per_epoch']:.3f} ms per epoch)")
        for k, v in cli_run["parts"].items():
            print(f"  {k:16s} {v['calls']:5d} calls  {v['ms_per_call']:8.3f} ms each  {v['ms_per_epoch']:7.3f} ms per epoch")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": machine_info(), "records": records, "cli": cli_run}, f, indent=1)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
