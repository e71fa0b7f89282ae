"""GPU exhaustive fixed-point search: time vs M for the CUDA solver, against the native CPU solver
and (where PyTorch is installed) a batched ``torch.linalg.solve_ex`` search on the same GPU.

    python benchmarks/gpu/fixed_points_gpu.py OUT_DIR                       # M = 16, 20, 24, 28, 32
    python benchmarks/gpu/fixed_points_gpu.py OUT_DIR --M 16 20 --cpu-max-M 20 --torch-max-M 20

For each M: the random standard PLRNN of benchmarks/fixed_points.py (n = M switch units, 2^M
regions), one untimed warm-up call, then the median of ``--repeats`` timings of the blocking call
(upload, kernel, download; the kernel dominates from M = 20 on), with CUDA events when PyTorch is
there (the solver works on the legacy default stream, which the events bracket) and wall-clock
always. The torch baseline is the batched brute force a user would write: build I - J for a chunk
of regions on the GPU, solve them in one call, keep the sign-consistent solutions.

Checks (M <= --cpu-max-M, against the native CPU solver ``analysis.fixed_points``, which re-solves
its candidates exactly): every CPU fixed point is a GPU candidate of the same region with
coordinates within 1e-9 relative to max(1, |z|); every other GPU candidate lies within the screen's
slack of a breakpoint; 2^M regions visited; as many degenerate (singular) regions as the CPU
solver counts (the all-units-on region of the M = 20 model is exactly singular). The torch
baseline's fixed points are checked the same way. Floors: ``flops`` counts 6 M^2 per region for
the rank-1 step (w = Binv u, the update and z = Binv c fused) plus the amortised factorisations;
``smem_bytes`` counts 3 M^2 doubles of shared-memory traffic per region. Writes
OUT_DIR/fixed_points_gpu.json; exit status 1 if a check failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))  # benchmarks/_timing.py

import plrnn_native as pn
from _timing import machine_info, summarize
from plrnn_native import analysis, cuda
from plrnn_native.piecewise import piecewise_form

try:
    import torch
except ImportError:  # the baseline and CUDA-event timing are optional
    torch = None
if torch is not None and not torch.cuda.is_available():  # a CPU-only build of torch
    torch = None

PIECE_TOL = 1e-7  # the solver's default screen
COORD_RTOL = 1e-9  # same fixed point from two solvers, relative to max(1, |z|)
RANGE_LEN = 256  # Gray-code ranks per factorisation (cuda/analysis/fixed_points.cu, for large 2^M)


def make_model(M: int, seed: int) -> pn.PLRNN:
    """The model of benchmarks/fixed_points.py: Talathi-Vartak initialisation, random bias."""
    rng = np.random.default_rng(seed)
    model = pn.PLRNN("standard", M=M, N=min(3, M), dtype="float64", seed=seed)
    model["h"] = rng.standard_normal(M) * 0.5
    return model


def gpu_args(form) -> dict:
    n = form.n_units
    return {
        "J0": np.ascontiguousarray(form.J0),
        "b": np.ascontiguousarray(form.b),
        "U": np.ascontiguousarray(form.U),
        "V": np.ascontiguousarray(form.V),
        "beta": np.array([bp[0] for bp in form.breakpoints], dtype=np.float64),
        "slopes": np.array(form.slopes, dtype=np.float64).reshape(n, 2),
        "intercepts": np.array(form.intercepts, dtype=np.float64).reshape(n, 2),
    }


def timed(fn):
    """(seconds by CUDA events or wall clock, wall-clock seconds, result)."""
    if torch is not None:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0 = time.perf_counter()
        start.record()
        result = fn()
        end.record()
        end.synchronize()
        wall = time.perf_counter() - t0
        return start.elapsed_time(end) * 1e-3, wall, result
    t0 = time.perf_counter()
    result = fn()
    wall = time.perf_counter() - t0
    return wall, wall, result


def repeat(fn, repeats: int, budget_s: float):
    """Warm-up call, then up to ``repeats`` timed calls (fewer when one call exceeds the budget)."""
    t_warm, _, result = timed(fn)
    reps = max(1, min(repeats, int(budget_s / max(t_warm, 1e-9))))
    samples, walls = [], []
    for _ in range(reps):
        t, wall, result = timed(fn)
        samples.append(t)
        walls.append(wall)
    return samples, walls, result


def torch_search(model: pn.PLRNN, chunk: int, device: str):
    """Fixed points by a batched solve over all sign patterns on the GPU: (points, codes)."""
    M = model.M
    A, W, h = (torch.tensor(model[k], dtype=torch.float64, device=device) for k in ("A", "W", "h"))
    I_minus_A = torch.eye(M, dtype=torch.float64, device=device) - torch.diag(A)
    bits = 1 << torch.arange(M, device=device)
    points, codes_found = [], []
    for start in range(0, 2**M, chunk):
        codes = torch.arange(start, min(start + chunk, 2**M), device=device)
        D = ((codes[:, None] & bits) != 0).to(torch.float64)  # [c, M]
        B = I_minus_A[None] - W[None] * D[:, None, :]  # I - (diag(A) + W D)
        z, info = torch.linalg.solve_ex(B, h.expand(codes.numel(), M))
        ok = (info == 0) & torch.all((z > 0) == (D > 0), dim=1)
        points.append(z[ok])
        codes_found.append(codes[ok])
    pts = torch.cat(points).cpu().numpy()
    cds = torch.cat(codes_found).cpu().numpy()
    order = np.argsort(cds)
    return pts[order], cds[order]


def codes_of(pieces: np.ndarray) -> np.ndarray:
    return (pieces.astype(np.int64) << np.arange(pieces.shape[1])).sum(axis=1)


def check(form, gpu, ref_points, ref_codes, ref_degenerate=None) -> list:
    """Problems of the GPU candidates against a reference set of fixed points (empty: all fine).
    ``ref_degenerate``: the reference's count of singular regions (I - J not invertible), where it
    counts them (the CPU solver does; the torch baseline does not)."""
    points, pieces, n_deg, visited = gpu
    M, n = form.M, form.n_units
    problems = []
    if visited != 2**n:
        problems.append(f"visited {visited} regions, expected {2**n}")
    if ref_degenerate is not None and n_deg != ref_degenerate:
        problems.append(f"{n_deg} degenerate regions, the reference {ref_degenerate}")
    found = dict(zip(codes_of(pieces).tolist(), points))
    for z_ref, code in zip(ref_points, np.asarray(ref_codes).tolist()):
        if code not in found:
            problems.append(f"fixed point of region {code:#x} missing")
        elif np.abs(found[code] - z_ref).max() > COORD_RTOL * max(1.0, np.abs(z_ref).max()):
            problems.append(f"region {code:#x}: |dz| = {np.abs(found[code] - z_ref).max():.3g}")
    true_codes = set(np.asarray(ref_codes).tolist())
    beta = np.array([bp[0] for bp in form.breakpoints])
    for code in found:
        if code in true_codes:
            continue
        region = (code >> np.arange(n)) & 1
        J, c = form.region_map(region)
        z_exact = np.linalg.solve(np.eye(M) - J, c)
        a = z_exact @ form.V
        wrong = form.pieces(z_exact) != region
        slack = 2 * PIECE_TOL * (1.0 + np.abs(a))
        if np.any(np.abs(a - beta)[wrong] > slack[wrong]):
            problems.append(f"region {code:#x}: candidate neither a fixed point nor near a breakpoint")
    return problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir", type=Path, help="folder for fixed_points_gpu.json")
    p.add_argument("--M", nargs="+", type=int, default=[16, 20, 24, 28, 32])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--budget", type=float, default=60.0,
                   help="seconds of timed calls per M and solver")
    p.add_argument("--cpu-max-M", type=int, default=24,
                   help="largest M for the native CPU solver (timed, checked)")
    p.add_argument("--torch-max-M", type=int, default=24,
                   help="largest M for the torch baseline")
    p.add_argument("--chunk", type=int, default=1 << 16, help="regions per batched torch solve")
    p.add_argument("--device", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    if not cuda.is_available():
        print(f"CUDA unavailable: {cuda.unavailable_reason()}", file=sys.stderr)
        return 2
    dev = cuda.devices()[args.device]
    tdev = f"cuda:{args.device}"
    if torch is not None:
        torch.cuda.set_device(args.device)
    rows, failed = [], False
    for M in args.M:
        model = make_model(M, args.seed)
        form = piecewise_form(model)
        kwargs = gpu_args(form)
        def run(kwargs=kwargs):
            return cuda._cuda.fixed_points_exhaustive(**kwargs, device=args.device)

        samples, walls, gpu = repeat(run, args.repeats, args.budget)
        t = float(np.median(samples))
        regions = 2**M
        flops = regions * 6.0 * M * M + regions / RANGE_LEN * (2.0 * M**3 + 2.0 * M**3)
        row = {
            "M": M, "regions": regions, "gpu": summarize(samples).to_dict(samples),
            "gpu_wall": summarize(walls).to_dict(walls), "candidates": len(gpu[0]),
            "n_degenerate": int(gpu[2]), "regions_visited": int(gpu[3]),
            "regions_per_s": regions / t, "flops": flops, "gflops_per_s": flops / t * 1e-9,
            "smem_bytes": regions * 3.0 * M * M * 8.0,
        }
        if M <= args.cpu_max_M:
            analysis.fixed_points(make_model(8, args.seed))  # warm-up (thread pool)
            def cpu_run(model=model, regions=regions):
                return analysis.fixed_points(model, max_regions=regions)

            cpu_samples, _, res = repeat(cpu_run, args.repeats, args.budget)
            problems = check(form, gpu, res.points, codes_of(res.pieces), res.n_degenerate)
            row.update(cpu=summarize(cpu_samples).to_dict(cpu_samples),
                       cpu_threads=pn.get_num_threads(), fixed_points=len(res.fixed_points),
                       cpu_over_gpu=float(np.median(cpu_samples)) / t, check_cpu=problems or "ok")
            failed |= bool(problems)
        if torch is not None and M <= args.torch_max_M:
            def torch_run(model=model):
                return torch_search(model, args.chunk, tdev)

            t_samples, _, (t_points, t_codes) = repeat(torch_run, args.repeats, args.budget)
            problems = check(form, gpu, t_points, t_codes)
            row.update(torch=summarize(t_samples).to_dict(t_samples),
                       torch_over_gpu=float(np.median(t_samples)) / t, check_torch=problems or "ok")
            failed |= bool(problems)
        rows.append(row)
        extra = "".join(f", {k} {row[k]:.1f}x" for k in ("cpu_over_gpu", "torch_over_gpu")
                        if k in row)
        print(f"M={M}: GPU {t:.4f} s ({row['regions_per_s']:.3g} regions/s){extra}", flush=True)

    info = machine_info(REPO)
    info["cuda_device"] = dev
    info["torch"] = None if torch is None else torch.__version__  # None: no CUDA-enabled torch
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / "fixed_points_gpu.json"
    out.write_text(json.dumps({"command": ["fixed_points_gpu.py", *(argv or sys.argv[1:])],
                               "machine": info, "rows": rows}, indent=1, default=str))
    print("\n| M | regions | GPU s (median) | regions/s | CPU s | CPU/GPU | torch s | torch/GPU "
          "| checks |")
    print("|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    for r in rows:
        cpu = (f"{r['cpu']['median_ms'] / 1e3:.3f} | {r['cpu_over_gpu']:.1f}x" if "cpu" in r
               else "– | –")
        tch = (f"{r['torch']['median_ms'] / 1e3:.3f} | {r['torch_over_gpu']:.1f}x" if "torch" in r
               else "– | –")
        ok = all(r.get(k, "ok") == "ok" for k in ("check_cpu", "check_torch"))
        print(f"| {r['M']} | {r['regions']:,} | {r['gpu']['median_ms'] / 1e3:.4f} "
              f"| {r['regions_per_s']:.3g} | {cpu} | {tch} | {'ok' if ok else 'FAILED'} |")
    print(f"\nwrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
