"""The lane-resident time loop (csrc/rollout/lane_bptt.h) against the general loop (rollout/bptt.h) in
one process: the Lorenz-63 default's training step with the loop switched on and off in alternating
rounds (``_core._set_lane_time_loop``), so that both sides see the same phase of the machine's drift.

Per round and side: one untimed epoch, then the fastest of 5 epochs of ``Trainer``'s native run (50
optimiser steps each: sampling, forward + BPTT, norm, Adam), per step. Reported: the median and the
minimum per side and the median (and quartiles) of the per-round ratio general / lane. Both loops give
the same bits (tests/test_native_vs_reference.py::test_lane_time_loop_same_bits_as_general_loop).

    python benchmarks/lane_time_loop.py [--threads 1 2] [--rounds 20]

Writes benchmarks/results/lane_time_loop.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _timing import machine_info  # noqa: E402

import plrnn_native as pn  # noqa: E402
from plrnn_native.training import TrainConfig, Trainer  # noqa: E402

STEPS = 50


def measure(threads: int, rounds: int) -> dict:
    pn.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 3)).astype(np.float32)
    cfg = TrainConfig(epochs=10**6, batches_per_epoch=STEPS, seq_len=200, batch_size=16, forcing="sparse",
                      tau=25, lr=1e-4, lr_end=1e-4)
    trainer = Trainer(pn.PLRNN("shallow", M=3, N=3, hidden=100, dtype="float32", seed=0), x, config=cfg)
    native = trainer._native  # the trainer's native loop (csrc/training/train_step.h)

    def epoch() -> float:
        t0 = time.perf_counter()
        native.run(STEPS, 1e-4, 0.0, trainer.optimizer.t + 1, trainer.batches_done)
        trainer.optimizer.t += STEPS
        trainer.batches_done += STEPS
        return (time.perf_counter() - t0) / STEPS

    per_side = {False: [], True: []}
    try:
        for r in range(rounds):
            for on in ((False, True) if r % 2 == 0 else (True, False)):
                pn._core._set_lane_time_loop(on)
                epoch()
                per_side[on].append(min(epoch() for _ in range(5)))
    finally:
        pn._core._set_lane_time_loop(True)
    ratio = np.array(per_side[False]) / np.array(per_side[True])
    ms = {("lane" if on else "general"): {"median_ms": 1e3 * float(np.median(v)), "min_ms": 1e3 * float(min(v)),
                                          "rounds_ms": [1e3 * t for t in v]} for on, v in per_side.items()}
    return {"threads": threads, "rounds": rounds, "per_step": ms,
            "ratio_general_over_lane": {"median": float(np.median(ratio)), "q1": float(np.percentile(ratio, 25)),
                                        "q3": float(np.percentile(ratio, 75))}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--output", type=Path, default=HERE / "results" / "lane_time_loop.json")
    args = p.parse_args(argv)
    records = []
    for threads in args.threads:
        rec = measure(threads, args.rounds)
        records.append(rec)
        g, lane, r = rec["per_step"]["general"], rec["per_step"]["lane"], rec["ratio_general_over_lane"]
        print(f"{threads} thread(s): general {g['median_ms']:.3f} ms (min {g['min_ms']:.3f}), lane "
              f"{lane['median_ms']:.3f} ms (min {lane['min_ms']:.3f}) per step; general/lane median "
              f"{r['median']:.3f} (q1 {r['q1']:.3f}, q3 {r['q3']:.3f})", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"command": ["lane_time_loop.py", *(argv or sys.argv[1:])],
                                       "machine": machine_info(HERE.parent),
                                       "model": "shallow M=3 N=3 H=100, float32, B=16, T=200, sparse tau=25",
                                       "records": records}, indent=1))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
