"""The QR method of the Lyapunov spectrum: the native frame (``_core.lyapunov_frame``,
csrc/analysis/lyapunov.h) against what a user would write instead, in the same run.

Baselines: the NumPy loop (``Q = J @ Q; Q, R = numpy.linalg.qr(Q)`` per step: ``reference.lyapunov_frame``,
what ``metrics.lyapunov_spectrum`` ran before) and, when JAX is installed, the same loop as a compiled
``jax.lax.scan`` (``jax.jit``, float64). All three get the same Jacobians: a stationary random product
of well-conditioned maps with distinct growth rates (the frame's cost does not depend on where the
Jacobians come from), renormalised every step, and must give the same log-growth (to the bound of
``tests/test_lyapunov_frame.py``). Also timed: ``metrics.lyapunov_spectrum`` end to end (trajectory,
Jacobians, frame) on a model of each size.

    python benchmarks/lyapunov.py                       # M = 3 (the Lorenz-63 default), 32, 128
    python benchmarks/lyapunov.py --M 3 32 --steps 20000 --repeats 5

FLOPs per step (k = M): the product J Q, 2 M^3; Householder QR, 2 M^3 - 2/3 M^3; the thin Q formed from
the reflectors, the same again: about 4.7 M^3 in all; the roofline column is that against the float64
FMA peak of one core (``_core.fma_peak_flops``). Writes ``benchmarks/results/lyapunov.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import plrnn_native as pn
from plrnn_native import _core, metrics
from plrnn_native import reference as ref

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from _timing import machine_info, summarize, time_interleaved  # noqa: E402


def jacobians(n: int, M: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rates = np.exp(np.linspace(0.3, -0.6, M))
    return np.diag(rates) + 0.3 * rng.standard_normal((n, M, M)) / np.sqrt(M)


def flops_per_step(M: int) -> float:
    return 2 * M**3 + 2 * (2 * M**3 - 2 / 3 * M**3)


def jax_frame():
    """A jitted lax.scan of the per-step loop (float64), or None without JAX."""
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def step(Q, J):
        Q, R = jnp.linalg.qr(J @ Q)
        return Q, jnp.log(jnp.abs(jnp.diag(R)))

    @jax.jit
    def run(J, Q0):
        Q, logs = jax.lax.scan(step, Q0, J)
        return Q, logs.sum(axis=0)

    return lambda J, Q0: jax.block_until_ready(run(J, Q0))


def model_for(M: int, seed: int) -> pn.PLRNN:
    """A non-diverging model of size M: the Lorenz-63 default's shape at M = 3, the standard kind else."""
    if M == 3:
        model = pn.PLRNN("shallow", M=3, N=3, hidden=100, dtype="float32", seed=seed)
    else:
        model = pn.PLRNN("standard", M=M, N=3, dtype="float32", seed=seed)
    model["A"] = np.full(M, 0.5, dtype=np.float32)  # contracting diagonal: a bounded trajectory
    return model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--M", type=int, nargs="+", default=[3, 32, 128])
    ap.add_argument("--steps", type=int, default=10_000, help="Jacobians per timed call")
    ap.add_argument("--numpy-steps", type=int, default=2_000, help="steps per NumPy call (it is slow)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--spectrum-steps", type=int, default=50_000, help="T of the end-to-end lyapunov_spectrum")
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "lyapunov.json"))
    args = ap.parse_args(argv)
    for name in ("steps", "numpy_steps", "repeats", "spectrum_steps"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')}: must be >= 1")
    if any(M < 1 for M in args.M):
        ap.error("--M: sizes must be >= 1")

    peak = _core.fma_peak_flops("float64", 0.3)
    jx = None if args.no_jax else jax_frame()
    rows = []
    for M in args.M:
        J = jacobians(args.steps, M, seed=M)
        Jn = J[: min(args.numpy_steps, args.steps)]
        Q0 = np.eye(M)
        fns = {
            "native": lambda: _core.lyapunov_frame(J, Q0, 0, 0, len(J), 1),
            "numpy": lambda: ref.lyapunov_frame(Jn, Q0, 0, 0, len(Jn), 1),
        }
        if jx is not None:
            fns["jax"] = lambda: jx(J, Q0)
        # the same log-growth from all (on the NumPy run's steps)
        _, g_native = _core.lyapunov_frame(Jn, Q0, 0, 0, len(Jn), 1)
        _, g_numpy = ref.lyapunov_frame(Jn, Q0, 0, 0, len(Jn), 1)
        bound = 16 * M * np.finfo(float).eps / 2 * np.linalg.cond(Jn).max() * len(Jn)
        assert np.abs(g_native - g_numpy).max() <= bound, (M, np.abs(g_native - g_numpy).max(), bound)
        if jx is not None:
            _, g_jax = jx(Jn, Q0)
            assert np.abs(g_native - np.asarray(g_jax)).max() <= bound
        samples = time_interleaved(fns, repeats=args.repeats, warmup=1, block=1)
        per_step = {k: summarize(v).median / (len(Jn) if k == "numpy" else len(J)) for k, v in samples.items()}
        model = model_for(M, seed=0)
        T = args.spectrum_steps if M <= 32 else max(1, args.spectrum_steps // 10)
        spectrum = time_interleaved({"spectrum": lambda: metrics.lyapunov_spectrum(model, T=T, transient=1000,
                                                                                     seed=0)},
                                    repeats=max(1, args.repeats // 2), warmup=0, block=1)["spectrum"]
        row = {
            "M": M,
            "steps": len(J),
            "numpy_steps": len(Jn),
            "us_per_step": {k: 1e6 * v for k, v in per_step.items()},
            "numpy_over_native": per_step["numpy"] / per_step["native"],
            "jax_over_native": per_step["jax"] / per_step["native"] if "jax" in per_step else None,
            "native_fraction_of_fma_peak": flops_per_step(M) / per_step["native"] / peak,
            "spectrum_T": T,
            "spectrum_seconds_median": summarize(spectrum).median,
            "samples_ms": {k: [1e3 * s for s in v] for k, v in samples.items()},
        }
        rows.append(row)
        jtxt = f"{row['us_per_step']['jax']:.1f} us ({row['jax_over_native']:.1f}x)" if "jax" in per_step else "-"
        print(f"M={M}: native {row['us_per_step']['native']:.2f} us/step "
              f"({100 * row['native_fraction_of_fma_peak']:.1f} % of the float64 FMA peak), "
              f"NumPy {row['us_per_step']['numpy']:.1f} us ({row['numpy_over_native']:.0f}x), JAX {jtxt}; "
              f"lyapunov_spectrum(T={T}) {row['spectrum_seconds_median']:.3f} s", flush=True)
    record = {"machine": machine_info(REPO), "fma_peak_flops_float64": peak, "rows": rows}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(record, indent=1))
    print("| M | native µs/step | % FMA peak | NumPy µs/step | NumPy / native | JAX µs/step | JAX / native | "
          "`lyapunov_spectrum` s (T) |")
    print("|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        u = r["us_per_step"]
        jax_cells = (f"{u['jax']:.1f} | {r['jax_over_native']:.1f}×" if r["jax_over_native"] else "– | –")
        print(f"| {r['M']} | {u['native']:.2f} | {100 * r['native_fraction_of_fma_peak']:.1f} | {u['numpy']:.1f} | "
              f"{r['numpy_over_native']:.0f}× | {jax_cells} | {r['spectrum_seconds_median']:.2f} ({r['spectrum_T']}) |")
    print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
