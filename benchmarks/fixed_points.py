"""Exhaustive fixed-point search: time vs M for the native solver against a batched NumPy search.

The baseline is what a user would write with NumPy: build I - J for a chunk of regions at once,
``numpy.linalg.solve`` them in one batched call and keep the solutions whose sign pattern matches
their region; chunks of ``--chunk`` regions keep memory bounded. Both run in the same process on the
same random standard PLRNN (Talathi-Vartak initialisation, random bias), and must find the same
fixed points (checked for every M where the baseline runs).

    python benchmarks/fixed_points.py                 # M = 12 .. 24
    python benchmarks/fixed_points.py --M 16 20 --numpy-max-M 20 --repeats 3

Targets (issue): M = 20 on 2 cores >= 30x faster than the batched NumPy search; M = 24 under 5 s.
Writes ``benchmarks/results/fixed_points.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import plrnn_native as pn
from plrnn_native import analysis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from _timing import machine_info  # noqa: E402


def make_model(M: int, seed: int) -> pn.PLRNN:
    rng = np.random.default_rng(seed)
    model = pn.PLRNN("standard", M=M, N=min(3, M), dtype="float64", seed=seed)
    model["h"] = rng.standard_normal(M) * 0.5
    return model


def numpy_search(model: pn.PLRNN, chunk: int) -> np.ndarray:
    """All fixed points by brute force over the 2^M sign patterns, batched: [count, M] sorted by region."""
    M = model.M
    A, W, h = model["A"], model["W"], model["h"]
    I_minus_A = np.eye(M) - np.diag(A)
    bits = 1 << np.arange(M)
    found = []
    for start in range(0, 2**M, chunk):
        codes = np.arange(start, min(start + chunk, 2**M))
        D = ((codes[:, None] & bits) != 0).astype(np.float64)  # [c, M] region masks
        B = I_minus_A[None] - W[None] * D[:, None, :]  # I - (diag(A) + W D)
        z = np.linalg.solve(B, np.broadcast_to(h, (codes.size, M))[..., None])[..., 0]
        ok = np.all((z > 0) == (D > 0), axis=1)
        found.append(np.column_stack([codes[ok], z[ok]]))
    out = np.concatenate(found)
    return out[np.argsort(out[:, 0])][:, 1:]


def median_time(fn, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), times, result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--M", nargs="+", type=int, default=[12, 14, 16, 18, 20, 22, 24])
    p.add_argument("--numpy-max-M", type=int, default=20, help="largest M for the NumPy baseline")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--chunk", type=int, default=1 << 14, help="regions per batched NumPy solve")
    p.add_argument("--threads", type=int, default=0, help="native threads (0: all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "fixed_points.json")
    args = p.parse_args(argv)
    pn.set_num_threads(args.threads or os.cpu_count() or 1)

    rows = []
    for M in args.M:
        model = make_model(M, args.seed)
        analysis.fixed_points(make_model(8, args.seed))  # warm-up (thread pool, code paths)
        t_nat, t_nat_all, res = median_time(lambda: analysis.fixed_points(model), args.repeats)
        row = {"M": M, "regions": 2**M, "native_s": t_nat, "native_all_s": t_nat_all,
               "fixed_points": len(res.fixed_points), "n_degenerate": res.n_degenerate}
        if M <= args.numpy_max_M:
            reps = 1 if M >= 18 else args.repeats
            t_np, t_np_all, ref = median_time(lambda: numpy_search(model, args.chunk), reps)
            same = ref.shape == res.points.shape and np.allclose(ref, res.points, rtol=1e-8, atol=1e-10)
            row.update(numpy_s=t_np, numpy_all_s=t_np_all, ratio=t_np / t_nat, same_result=bool(same))
            if not same:
                print(f"M={M}: native and NumPy disagree ({ref.shape} vs {res.points.shape})", file=sys.stderr)
        rows.append(row)
        print(f"M={M}: native {t_nat:.3f} s" + (f", numpy {row['numpy_s']:.2f} s, ratio {row['ratio']:.0f}x"
                                                 if "numpy_s" in row else ""), flush=True)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"command": ["fixed_points.py", *(argv or sys.argv[1:])],
                                       "machine": machine_info(REPO), "threads": pn.get_num_threads(),
                                       "rows": rows}, indent=1))
    print("\n| M | regions | fixed points | native s (median) | NumPy batched s | speed-up | same result |")
    print("|--:|--:|--:|--:|--:|--:|---|")
    for r in rows:
        np_cells = (f"{r['numpy_s']:.2f} | {r['ratio']:.0f}x | {'yes' if r['same_result'] else 'NO'}"
                    if "numpy_s" in r else "– | – | –")
        print(f"| {r['M']} | {r['regions']:,} | {r['fixed_points']} | {r['native_s']:.3f} | {np_cells} |")
    return 0 if all(r.get("same_result", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
