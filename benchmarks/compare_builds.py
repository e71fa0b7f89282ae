"""Two builds of the package against each other: a training step, rounds alternating between them.

On a shared, noisy machine the speed of a run drifts by up to 1.7x over minutes, so two builds timed one
after the other compare the machine's phases, not the code. Here each round starts one fresh process per
build, in alternating order. With ``--call trainer`` (default) each process times ``--epochs`` epochs of
the trainer's native loop (``Trainer._native.run``: sampling, forward + BPTT, Adam; 50 steps an epoch)
after one warm-up epoch and reports the fastest epoch's time per step; with ``--call loss_and_grad`` it
times ``--calls`` calls of the native loss and gradient (``_core.loss_and_grad``, float32, T = 200, N = 3,
sparse forcing tau = 25, B of the configuration) after 10 warm-up calls and reports their median. Reported
per build: every round, the minimum and the median; and the per-round ratios A / B (paired: the two
processes of a round ran back to back).

Build the two versions of the package (``python/plrnn_native`` with its compiled ``_core``) into two folders
first, e.g. ``git worktree add /tmp/a REV`` + a build, or copies of the package folder, then:

    python benchmarks/compare_builds.py --a /tmp/a/python --b python [--threads 1] [--rounds 8]
    python benchmarks/compare_builds.py --a /tmp/a/python --b python --call loss_and_grad \
        --config standard-M128 --calls 30 --rounds 6
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine_info  # noqa: E402

CONFIGS = {  # the model's arguments and the batch size B
    "lorenz63-default": dict(kind="shallow", M=3, hidden=100, B=16),
    "standard-M32": dict(kind="standard", M=32, B=16),
    "standard-M64": dict(kind="standard", M=64, B=16),
    "standard-M128": dict(kind="standard", M=128, B=64),
    "standard-M256": dict(kind="standard", M=256, B=64),
}

# Run in a fresh process with the build's folder first on sys.path; prints the fastest epoch's ms per step.
CHILD = r"""
import json, sys, time
import numpy as np
import plrnn_native as pn
from plrnn_native.training import TrainConfig, Trainer
threads, epochs, model_kw = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
B = model_kw.pop("B")
pn.set_num_threads(threads)
x = np.random.default_rng(0).standard_normal((20_000, 3)).astype(np.float32)
cfg = TrainConfig(epochs=10**6, batches_per_epoch=50, seq_len=200, batch_size=B, forcing="sparse", tau=25,
                  lr=1e-4, lr_end=1e-4)
native = Trainer(pn.PLRNN(N=3, dtype="float32", seed=0, **model_kw), x, config=cfg)._native
native.run(50, 1e-4, 0.0, 1, 0)
best = float("inf")
for i in range(epochs):
    t0 = time.perf_counter()
    native.run(50, 1e-4, 0.0, 2 + 50 * i, 50 * (i + 1))
    best = min(best, (time.perf_counter() - t0) / 50)
print(json.dumps({"ms_per_step": 1e3 * best, "module": pn.__file__}))
"""

# The same for the native loss and gradient alone: prints the median ms per call.
CHILD_LOSS_AND_GRAD = r"""
import json, sys, time
import numpy as np
import plrnn_native as pn
from plrnn_native import _core
threads, calls, model_kw = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
B = model_kw.pop("B")
pn.set_num_threads(threads)
m = pn.PLRNN(N=3, dtype="float32", seed=0, **model_kw)
x = np.random.default_rng(0).standard_normal((B, 200, 3)).astype(np.float32)
params = m._snapshot()
call = lambda: _core.loss_and_grad(m._spec, params, x, None, "sparse", 25, 0.0, None, None)
for _ in range(10):
    call()
ts = []
for _ in range(calls):
    t0 = time.perf_counter()
    call()
    ts.append(time.perf_counter() - t0)
print(json.dumps({"ms_per_step": 1e3 * float(np.median(ts)), "module": pn.__file__}))
"""


def one(path: str, threads: int, count: int, model_kw: dict, call: str = "trainer") -> dict:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(path))
    child = CHILD if call == "trainer" else CHILD_LOSS_AND_GRAD
    out = subprocess.run([sys.executable, "-c", child, str(threads), str(count), json.dumps(model_kw)],
                         env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True, help="folder holding build A's plrnn_native package")
    ap.add_argument("--b", required=True, help="folder holding build B's plrnn_native package")
    ap.add_argument("--config", choices=list(CONFIGS), default="lorenz63-default")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--call", choices=("trainer", "loss_and_grad"), default="trainer",
                    help="what each process times (above)")
    ap.add_argument("--epochs", type=int, default=15, help="timed epochs (50 steps each) per process (trainer)")
    ap.add_argument("--calls", type=int, default=200, help="timed calls per process (loss_and_grad)")
    ap.add_argument("--out", help="write the record as JSON here")
    args = ap.parse_args(argv)
    for name in ("a", "b"):
        if not (Path(getattr(args, name)) / "plrnn_native" / "__init__.py").is_file():
            ap.error(f"--{name}: {getattr(args, name)} holds no plrnn_native package")
    times = {"a": [], "b": []}
    modules = {}
    for r in range(args.rounds):
        for name in (("a", "b") if r % 2 == 0 else ("b", "a")):
            count = args.epochs if args.call == "trainer" else args.calls
            res = one(getattr(args, name), args.threads, count, dict(CONFIGS[args.config]), args.call)
            times[name].append(res["ms_per_step"])
            modules[name] = res["module"]
    a, b = np.array(times["a"]), np.array(times["b"])
    ratios = a / b
    record = {"machine": machine_info(), "config": args.config, "model": CONFIGS[args.config],
              "call": args.call, "threads": args.threads, "rounds": args.rounds,
              "epochs" if args.call == "trainer" else "calls":
                  args.epochs if args.call == "trainer" else args.calls, "modules": modules,
              "ms_per_step": {"a": a.tolist(), "b": b.tolist()},
              "min_ms": {"a": float(a.min()), "b": float(b.min())},
              "median_ms": {"a": float(np.median(a)), "b": float(np.median(b))},
              "paired_ratio_a_over_b": ratios.tolist(),
              "paired_ratio_median": float(np.median(ratios)),
              "ratio_of_minima": float(a.min() / b.min())}
    what = f"{args.epochs} epochs" if args.call == "trainer" else f"{args.calls} calls of loss_and_grad"
    print(f"{args.config}, {args.threads} thread(s), {args.rounds} rounds of {what}; "
          f"{record['machine']['cpu_model']}")
    for name, v in (("A", a), ("B", b)):
        print(f"  {name}: " + " ".join(f"{t:.3f}" for t in v)
              + f"  min {v.min():.3f}  median {np.median(v):.3f} ms")
    print("  A/B per round: " + " ".join(f"{x:.2f}" for x in ratios)
          + f"  median {np.median(ratios):.3f}; ratio of the minima {a.min() / b.min():.3f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
