"""Time one PLRNN training step: the native core against JAX's compiled scan and plain PyTorch.

One training step is the teacher-forced rollout plus BPTT, i.e. the loss and the gradients of all
parameters (no optimizer update). Both implementations run in the same process, on the same data
and the same initial parameters (the native model's init, copied into torch tensors), with the same
number of threads, float32, CPU. The PyTorch baseline (``_torch_plrnn.py``) is what a user would
write: autograd through a Python loop over time steps. The JAX baseline (``_jax_plrnn.py``) is the
strongest thing a user would write instead: ``jax.jit(jax.value_and_grad(loss))`` with the time loop
in ``jax.lax.scan``, compiled once before timing.

Before timing, each configuration is checked once: the native and torch losses must agree to a
relative tolerance of ``LOSS_TOL_FACTOR * eps32 * T``; gradients are compared too (relative
Frobenius error per parameter), and both are measured against a float64 torch reference.

Timing: ``--warmup`` untimed calls each, then ``--repeats`` timed calls each, in alternating blocks
of ``--block`` consecutive calls (after untimed re-entry calls for ``--reentry-ms``, at least one), as
in a training loop; the blocks of native, JAX and torch alternate so that all see the same machine noise. Reported: median and interquartile
range per implementation and the ratio torch_median / native_median (the speed-up of native).

Roofline: at startup one core's float32 FMA throughput is measured (``_core.fma_peak_flops``, in the
SIMD width of the build). Each configuration reports the rate of its matrix products
(``matrix_flops``: the products with W, or W1 and W2, forward, backward and gradient) as a fraction
of ``threads`` x that peak, and the speed-up over torch that native would have if those products ran
at 100 % of the peak and nothing else took time: no implementation of the same arithmetic can beat it.
For the standard PLRNN the two matrix kernels of the step are also timed alone on one core
(``_core.kernel_rates``: the per-step product and the gradient of W, on the step's data layout), and the
record gives the fraction of the peak the step would reach at those rates with nothing else taking time
(``native_fraction_bound_by_kernels``, the column "% of peak the kernels allow") and the share of the
measured step that the kernels' own time explains (``kernel_share_of_native``).

The default run covers the models users train: the shipped defaults (the Lorenz-63 preset, a
shallow PLRNN M=3 H=100 B=16 T=200 with sparse forcing tau=25, and the settings derived for
Lorenz-96, shallow M=10 H=200 B=16 T=224 tau=28, N=10) and the standard PLRNN at (M=32, B=16),
(M=128, B=64) and (M=256, B=64), T=200, N=3, sparse forcing tau=25, on 1 and 2 threads. ``--M``
replaces them by the Cartesian product of the given sizes, kinds and forcings:

    python benchmarks/train_step.py
    python benchmarks/train_step.py --M 64 --B 32 --T 500 --forcing none sparse --threads 1 2

Threads: each thread count runs in its own process pinned to that many cores
(``sched_setaffinity``), so that the native pool, torch and XLA (whose thread pool is sized when jax
is imported) all see the same cores.

torch and jax are optional: without them only the native timings are recorded.
Results go to ``benchmarks/results/train_step.json``; a Markdown table is printed at the end.
The exit status is 1 if a correctness check failed, else 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

try:  # run as a script (benchmarks/ is sys.path[0]) ...
    from _timing import check_reentry, machine_info, summarize, time_interleaved
except ImportError:  # ... or as ``python -m benchmarks.train_step`` from the repository root
    from benchmarks._timing import check_reentry, machine_info, summarize, time_interleaved

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "results" / "train_step.json"

FLOAT32_EPS = float(np.finfo(np.float32).eps)
#: Loss tolerance: relative |native - torch| / |torch| < LOSS_TOL_FACTOR * eps32 * T. Rounding
#: errors of a float32 rollout accumulate roughly linearly over the T steps; the factor allows for
#: the different (but equally valid) summation orders of the matrix products and the final mean.
LOSS_TOL_FACTOR = 10.0
#: Gradient tolerance factor (relative Frobenius error per parameter): BPTT runs through the rollout
#: twice (forward and backward), and small gradient entries lose relative accuracy.
GRAD_TOL_FACTOR = 100.0
#: The baselines, in the order of the table.
BASELINES = ("jax", "torch")


# --------------------------------------------------------------------------------------------------
# Optional dependencies
# --------------------------------------------------------------------------------------------------


def import_native() -> tuple[ModuleType | None, str | None]:
    """Import ``plrnn_native``, falling back to ``<repo>/python`` (an in-place build).

    Returns ``(module, None)``, or ``(None, reason)`` when it is missing or not built.
    """
    try:
        import plrnn_native

        error = _check_native(plrnn_native)
        return (None, error) if error else (plrnn_native, None)
    except ImportError as first_error:
        local = REPO_ROOT / "python"
        if local.is_dir() and str(local) not in sys.path:
            sys.path.insert(0, str(local))
            try:
                import plrnn_native

                error = _check_native(plrnn_native)
                return (None, error) if error else (plrnn_native, None)
            except ImportError as exc:
                return None, repr(exc)
        return None, repr(first_error)


def _check_native(module: ModuleType) -> str | None:
    """Why ``module`` cannot be benchmarked (e.g. a source tree without the built core), or None."""
    missing = [name for name in ("PLRNN", "set_num_threads") if not hasattr(module, name)]
    if missing:
        where = getattr(module, "__file__", None) or list(getattr(module, "__path__", []))
        return f"plrnn_native at {where} lacks {missing} (not built?)"
    return None


def import_torch_baseline() -> tuple[ModuleType | None, ModuleType | None, str | None]:
    """Import torch and the baseline module. Returns (torch, baseline module, error)."""
    try:
        import torch

        try:
            import _torch_plrnn as baseline
        except ImportError:
            from benchmarks import _torch_plrnn as baseline
        return torch, baseline, None
    except ImportError as exc:
        return None, None, repr(exc)


def _configure_xla_threads(threads: int) -> None:
    """XLA sizes its CPU thread pool when jax is imported: ask it for ``threads`` intra-op threads."""
    extra = (f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
             f"intra_op_parallelism_threads={threads}")
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {extra}".strip()


def import_jax_baseline() -> tuple[ModuleType | None, str | None]:
    """Import the JAX baseline module (which imports jax). Returns (module, error)."""
    try:
        try:
            import _jax_plrnn as baseline
        except ImportError as exc:
            if getattr(exc, "name", None) != "_jax_plrnn":
                raise
            from benchmarks import _jax_plrnn as baseline
        return baseline, None
    except ImportError as exc:
        return None, repr(exc)


# --------------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forcing:
    """Teacher-forcing mode and its parameter (docs/model.md, "Rollout")."""

    mode: str
    tau: int | None = None
    alpha: float | None = None

    @property
    def label(self) -> str:
        """Short human-readable name, e.g. ``STF tau=25``."""
        if self.mode == "sparse":
            return f"STF tau={self.tau}"
        if self.mode == "generalized":
            return f"GTF alpha={self.alpha:g}"
        return "none"

    def native_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``PLRNN.loss_and_grad`` for this forcing."""
        kwargs: dict[str, Any] = {"forcing": self.mode}
        if self.mode == "sparse":
            kwargs["tau"] = self.tau
        elif self.mode == "generalized":
            kwargs["alpha"] = self.alpha
        return kwargs

    def weights(self, T: int) -> list[float]:
        """Forcing weights ``weight(t')`` for ``t' = 0 .. T-2``."""
        if self.mode == "none":
            return [0.0] * (T - 1)
        if self.mode == "sparse":
            assert self.tau is not None
            return [1.0 if (t >= 1 and t % self.tau == 0) else 0.0 for t in range(T - 1)]
        assert self.alpha is not None
        return [self.alpha if t >= 1 else 0.0 for t in range(T - 1)]


@dataclass(frozen=True)
class Config:
    """One benchmarked configuration."""

    kind: str
    M: int
    B: int
    T: int
    N: int
    H: int | None
    clipped: bool
    forcing: Forcing
    threads: int

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["forcing"] = {**asdict(self.forcing), "label": self.forcing.label}
        return out


#: The default rows: (kind, M, H, B, T, N, tau): the shipped defaults, then the standard PLRNN sizes.
DEFAULT_ROWS = (
    ("shallow", 3, 100, 16, 200, 3, 25),  # the Lorenz-63 preset (runconfig.DEFAULTS)
    ("shallow", 10, 200, 16, 224, 10, 28),  # derived for Lorenz-96 (plrnn train --system lorenz96 --dry-run)
    ("standard", 32, None, 16, 200, 3, 25),
    ("standard", 128, None, 64, 200, 3, 25),
    ("standard", 256, None, 64, 200, 3, 25),
)


def build_configs(args: argparse.Namespace) -> list[Config]:
    """The default rows, or (with ``--M``) the product of (M, B) pairs x forcings; x thread counts."""
    if args.M is None:
        return [
            Config(kind, M, B, T, N, H, False, Forcing("sparse", tau=tau), threads)
            for threads in args.threads
            for kind, M, H, B, T, N, tau in DEFAULT_ROWS
        ]
    Ms, Bs = list(args.M), list(args.B)
    if len(Ms) != len(Bs):
        if len(Ms) == 1:
            Ms *= len(Bs)
        elif len(Bs) == 1:
            Bs *= len(Ms)
        else:
            raise SystemExit(
                "--M and --B need the same number of values (or one of them a single value)"
            )
    forcings = []
    for mode in args.forcing:
        if mode == "sparse":
            forcings.append(Forcing("sparse", tau=args.tau))
        elif mode == "generalized":
            forcings.append(Forcing("generalized", alpha=args.alpha))
        else:
            forcings.append(Forcing("none"))
    return [
        Config(
            args.model,
            M,
            B,
            args.T,
            args.N,
            (args.hidden or M) if args.model == "shallow" else None,
            args.clipped,
            forcing,
            threads,
        )
        for threads in args.threads
        for M, B in zip(Ms, Bs)
        for forcing in forcings
    ]


def make_data(config: Config, seed: int) -> np.ndarray:
    """Random normal data, z-scored per observed dimension, float32 C-contiguous ``[B, T, N]``."""
    rng = np.random.default_rng([seed, config.M, config.B, config.T, config.N])
    x = rng.standard_normal((config.B, config.T, config.N))
    x = (x - x.mean(axis=(0, 1))) / x.std(axis=(0, 1))
    return np.ascontiguousarray(x, dtype=np.float32)


def make_native_model(pn: ModuleType, config: Config, seed: int) -> Any:
    """The native float32 model with identity observation and no external inputs."""
    kwargs: dict[str, Any] = {"K": 0, "obs": "identity", "dtype": "float32", "seed": seed}
    if config.H is not None:
        kwargs["hidden"] = config.H
    if config.clipped:
        kwargs["clipped"] = True
    return pn.PLRNN(config.kind, M=config.M, N=config.N, **kwargs)


def matrix_flops(config: Config) -> float:
    """Floating-point operations of the matrix products of one training step (2 per multiply-add).

    Per time step and sequence: standard, the forward ``W phi(z)``, the backward ``W^T g`` and the
    gradient ``g phi(z)^T`` (3 x 2 M^2); shallow, ``W2 z``, ``W1 phi``, ``W1^T g``, ``W2^T delta``,
    ``g phi^T`` and ``delta z^T`` (6 x 2 M H). The elementwise work (O(M) per step) is left out, so
    this is a lower bound of the work and ``flops / time / peak`` an upper bound of the efficiency.
    """
    steps = config.B * (config.T - 1)
    if config.kind == "shallow":
        return 6 * 2.0 * config.M * (config.H or config.M) * steps
    return 3 * 2.0 * config.M * config.M * steps


def kernel_bound(config: Config, rates: dict[str, float], peak: float) -> dict[str, Any]:
    """What the step's two matrix kernels allow on their own (standard PLRNN): their rates measured alone
    on one core (``_core.kernel_rates``: the per-step product, which the forward ``W phi`` and backward
    ``W^T g`` share, and the gradient ``g phi^T``), the time the step's products would take at those
    rates on ``threads`` cores (2/3 of ``matrix_flops`` at the product's rate, 1/3 at the gradient's),
    and the fraction of the FMA peak the whole step would reach if nothing else took time."""
    flops = matrix_flops(config)
    seconds = (2 / 3 * flops / rates["product_flops"] + 1 / 3 * flops / rates["weight_grad_flops"]) / config.threads
    return {
        "kernel_gflops_per_core": {"product": rates["product_flops"] / 1e9,
                                   "weight_grad": rates["weight_grad_flops"] / 1e9},
        "kernel_fraction_of_fma_peak": {"product": rates["product_flops"] / peak,
                                        "weight_grad": rates["weight_grad_flops"] / peak},
        "native_ms_at_kernel_rates": seconds * 1e3,
        "native_fraction_bound_by_kernels": flops / seconds / (peak * config.threads),
    }


# --------------------------------------------------------------------------------------------------
# Correctness check
# --------------------------------------------------------------------------------------------------


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), np.finfo(np.float64).tiny)


def check_config(
    config: Config,
    native_loss: float,
    native_grads: dict[str, np.ndarray],
    torch_model: Any,
    reference_model: Any,
    xt: Any,
    xt64: Any,
) -> dict[str, Any]:
    """Compare native and torch (float32) losses and gradients, and both against torch float64."""
    weights = config.forcing.weights(config.T)
    torch_loss = float(torch_model.train_step(xt, weights).detach())
    torch_grads = torch_model.gradients()
    ref_loss = float(reference_model.train_step(xt64, weights).detach())
    ref_grads = reference_model.gradients()

    loss_tol = LOSS_TOL_FACTOR * FLOAT32_EPS * config.T
    grad_tol = GRAD_TOL_FACTOR * FLOAT32_EPS * config.T
    grads: dict[str, dict[str, float]] = {}
    missing = sorted(set(torch_grads) - set(native_grads))
    for name, ref in ref_grads.items():
        if name not in native_grads:
            continue
        native = np.asarray(native_grads[name], dtype=np.float64)
        scale = max(float(np.linalg.norm(ref)), np.finfo(np.float64).tiny)
        grads[name] = {
            "native_vs_torch": float(np.linalg.norm(native - torch_grads[name])) / scale,
            "native_vs_float64": float(np.linalg.norm(native - ref)) / scale,
            "torch_vs_float64": float(np.linalg.norm(torch_grads[name] - ref)) / scale,
        }
    loss_rel_diff = _rel(native_loss, torch_loss)
    grad_max = max((g["native_vs_torch"] for g in grads.values()), default=math.nan)
    finite = all(math.isfinite(v) for v in (native_loss, torch_loss, grad_max))
    result: dict[str, Any] = {
        "loss_native": native_loss,
        "loss_torch": torch_loss,
        "loss_float64": ref_loss,
        "loss_rel_diff": loss_rel_diff,
        "loss_rel_err_native_vs_float64": _rel(native_loss, ref_loss),
        "loss_rel_err_torch_vs_float64": _rel(torch_loss, ref_loss),
        "loss_tol": loss_tol,
        "grad_rel_diff": grads,
        "grad_rel_diff_max": grad_max,
        "grad_tol": grad_tol,
        "grads_missing_in_native": missing,
        "grads_float64": ref_grads,  # for the JAX check; removed before the record is written
    }
    if "W" in native_grads and config.kind == "standard":
        result["native_W_grad_diag_zero"] = bool(np.all(np.diag(native_grads["W"]) == 0))
    result["passed"] = bool(
        finite
        and loss_rel_diff < loss_tol
        and grad_max < grad_tol
        and not missing
        and result.get("native_W_grad_diag_zero", True)
    )
    return result


# --------------------------------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------------------------------


def run_config(
    config: Config,
    pn: ModuleType | None,
    torch: ModuleType | None,
    baseline: ModuleType | None,
    jax_baseline: ModuleType | None,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Check and time one configuration; returns its JSON record."""
    x = make_data(config, args.seed)
    weights = config.forcing.weights(config.T)
    fns: dict[str, Callable[[], object]] = {}
    record: dict[str, Any] = {"config": config.to_dict(), "check": None, "check_jax": None,
                              "threads_actual": {}}

    params: dict[str, np.ndarray] | None = None
    if pn is not None:
        pn.set_num_threads(config.threads)
        if hasattr(pn, "get_num_threads"):
            record["threads_actual"]["native"] = int(pn.get_num_threads())
        native_model = make_native_model(pn, config, args.seed)
        params = {name: np.array(value) for name, value in native_model.params.items()}
        forcing_kwargs = config.forcing.native_kwargs()
        native_loss, native_grads = native_model.loss_and_grad(x, **forcing_kwargs)
        native_loss = float(native_loss)
        fns["native"] = lambda: native_model.loss_and_grad(x, **forcing_kwargs)

    if torch is not None and baseline is not None:
        torch.set_num_threads(config.threads)
        record["threads_actual"]["torch"] = int(torch.get_num_threads())
        if params is None:  # no native model: an arbitrary stable init, for baseline-only timings
            params = fallback_params(config, args.seed)
        torch_model = baseline.TorchPLRNN(
            config.kind, params, config.N, dtype=torch.float32, clipped=config.clipped
        )
        xt = torch.from_numpy(x)
        if pn is not None:
            reference = baseline.TorchPLRNN(
                config.kind, params, config.N, dtype=torch.float64, clipped=config.clipped
            )
            record["check"] = check_config(
                config, native_loss, native_grads, torch_model, reference, xt, xt.double()
            )
        fns["torch"] = lambda: torch_model.train_step(xt, weights)

    if jax_baseline is not None:
        if params is None:
            params = fallback_params(config, args.seed)
        jax_model = jax_baseline.JaxPLRNN(config.kind, params, config.N, clipped=config.clipped)
        jx, jw = jax_model.to_device(x, weights)
        jax_loss, jax_grads = jax_model.loss_and_gradients(x, weights)  # compiles
        if pn is not None:
            reference = record["check"]["grads_float64"] if record["check"] else None
            record["check_jax"] = check_jax(config, native_loss, jax_loss, jax_grads, reference)
        fns["jax"] = lambda: jax_model.train_step(jx, jw)
    if record["check"] is not None:
        record["check"].pop("grads_float64")

    samples = time_interleaved(fns, repeats=args.repeats, warmup=args.warmup, block=args.block,
                               reentry_s=args.reentry_ms * 1e-3)
    for name in BASELINES + ("native",):
        record[name] = summarize(samples[name]).to_dict(samples[name]) if name in samples else None
    native = record["native"]
    record["matrix_flops"] = matrix_flops(config)
    for name in BASELINES:
        times = record[name]
        both = native is not None and times is not None
        # The headline ratio is of medians; the ratio of minima is less sensitive to machine noise.
        record[f"ratio_{name}_over_native"] = times["median_ms"] / native["median_ms"] if both else None
        record[f"ratio_{name}_over_native_min"] = times["min_ms"] / native["min_ms"] if both else None
        # Roofline: the speed-up over this baseline if the matrix products ran at the FMA peak of
        # `threads` cores (measured at startup) and nothing else took time.
        record[f"ratio_{name}_bound_at_fma_peak"] = (
            times["median_ms"] * 1e-3 * args.peak_flops * config.threads / record["matrix_flops"]
            if times is not None and args.peak_flops else None
        )
    if native is not None and args.peak_flops:
        rate = record["matrix_flops"] / (native["median_ms"] * 1e-3)
        record["native_matrix_gflops"] = rate / 1e9
        record["native_fraction_of_fma_peak"] = rate / (args.peak_flops * config.threads)
        record["native_ms_at_fma_peak"] = record["matrix_flops"] / (args.peak_flops * config.threads) * 1e3
        if config.kind == "standard" and hasattr(pn._core, "kernel_rates"):
            rates = pn._core.kernel_rates("float32", config.M, config.B, config.T, args.kernel_seconds)
            record.update(kernel_bound(config, rates, args.peak_flops))
            # the share of the measured step that the kernels' own time explains (the rest: everything else)
            record["kernel_share_of_native"] = record["native_ms_at_kernel_rates"] / native["median_ms"]
    return record


def check_jax(config: Config, native_loss: float, jax_loss: float, jax_grads: dict[str, np.ndarray],
              reference: dict[str, np.ndarray] | None) -> dict[str, Any]:
    """The JAX loss against native's (same tolerance as torch's) and, where the float64 torch
    reference ran, JAX's gradients against it (the gradient tolerance)."""
    loss_tol = LOSS_TOL_FACTOR * FLOAT32_EPS * config.T
    grad_tol = GRAD_TOL_FACTOR * FLOAT32_EPS * config.T
    errors = {}
    for name, ref in (reference or {}).items():
        if name in jax_grads:
            scale = max(float(np.linalg.norm(ref)), np.finfo(np.float64).tiny)
            errors[name] = float(np.linalg.norm(jax_grads[name] - ref)) / scale
    worst = max(errors.values(), default=0.0)
    rel = _rel(jax_loss, native_loss)
    return {"loss_jax": jax_loss, "loss_rel_diff": rel, "loss_tol": loss_tol,
            "grad_rel_err_vs_float64": errors, "grad_rel_err_max": worst, "grad_tol": grad_tol,
            "passed": bool(math.isfinite(jax_loss) and rel < loss_tol and worst < grad_tol)}


def fallback_params(config: Config, seed: int) -> dict[str, np.ndarray]:
    """Parameters for a torch-only run (native module missing): small random, W zero diagonal."""
    rng = np.random.default_rng([seed, config.M])
    M, N = config.M, config.N
    params = {
        "A": rng.uniform(0.5, 0.9, M),
        "C": np.zeros((M, 0)),
        "L": rng.normal(0.0, 0.1, (M - N, N)),
    }
    if config.kind == "shallow":
        H = config.H or M
        params |= {
            "W1": rng.normal(0.0, 0.5 / math.sqrt(H), (M, H)),
            "W2": rng.normal(0.0, 0.5 / math.sqrt(M), (H, M)),
            "h1": np.zeros(M),
            "h2": np.zeros(H),
        }
    else:
        W = rng.normal(0.0, 0.5 / math.sqrt(M), (M, M))
        np.fill_diagonal(W, 0.0)
        params |= {"W": W, "h": np.zeros(M)}
    return {k: v.astype(np.float32) for k, v in params.items()}


# --------------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------------


def _fmt_time(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "—"
    return f"{summary['median_ms']:.3g} ({summary['iqr_ms']:.2g})"


def markdown_table(records: Sequence[dict[str, Any]]) -> str:
    """README-ready table: one row per configuration."""
    lines = [
        "| model | M | B | T | N | forcing | threads | native ms, median (IQR) | JAX ms | torch ms "
        "| JAX / native | torch / native | native % of FMA peak | native ms at 100 % peak "
        "| % of peak the kernels allow | loss rel. diff (torch, JAX) |",
        "|---|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for rec in records:
        cfg = rec["config"]
        diffs = []
        for key in ("check", "check_jax"):
            check = rec.get(key)
            diffs.append("—" if check is None else
                         f"{check['loss_rel_diff']:.1e}" + ("" if check["passed"] else " ✗"))
        kind = cfg["kind"] + (" clipped" if cfg["clipped"] else "")
        kind += f" (H={cfg['H']})" if cfg["H"] else ""
        ratios = [rec.get(f"ratio_{name}_over_native") for name in BASELINES]
        fraction = rec.get("native_fraction_of_fma_peak")
        at_peak = rec.get("native_ms_at_fma_peak")
        bound = rec.get("native_fraction_bound_by_kernels")
        cells = [
            kind,
            *(str(cfg[key]) for key in ("M", "B", "T", "N")),
            cfg["forcing"]["label"],
            str(cfg["threads"]),
            _fmt_time(rec["native"]),
            *(_fmt_time(rec.get(name)) for name in BASELINES),
            *("—" if r is None else f"{r:.2f}x" for r in ratios),
            "—" if fraction is None else f"{100 * fraction:.0f} %",
            "—" if at_peak is None else f"{at_peak:.3g}",
            "—" if bound is None else f"{100 * bound:.0f} %",
            ", ".join(diffs),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", choices=("standard", "shallow"), default="standard")
    parser.add_argument(
        "--hidden", type=int, default=None, help="hidden size H of the shallow PLRNN [M]"
    )
    parser.add_argument("--clipped", action="store_true", help="clipped shallow PLRNN")
    parser.add_argument(
        "--M", type=int, nargs="+", default=None,
        help="latent sizes (paired with --B); default: the rows of DEFAULT_ROWS"
    )
    parser.add_argument(
        "--B", type=int, nargs="+", default=[16, 64], help="batch sizes (paired with --M)"
    )
    parser.add_argument("--T", type=int, default=200, help="sequence length")
    parser.add_argument("--N", type=int, default=3, help="observed dimensions")
    parser.add_argument(
        "--forcing",
        nargs="+",
        choices=("none", "sparse", "generalized"),
        default=["sparse", "generalized"],
        help="forcing modes",
    )
    parser.add_argument("--tau", type=int, default=25, help="sparse forcing interval")
    parser.add_argument("--alpha", type=float, default=0.1, help="generalized forcing weight")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2],
        help="thread counts (every implementation; each count in its own process pinned to that many cores)"
    )
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per implementation")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls per implementation")
    parser.add_argument(
        "--block", type=int, default=5,
        help="timed consecutive calls per block (blocks of native and torch alternate)",
    )
    parser.add_argument(
        "--reentry-ms", type=float, default=20.0,
        help="untimed calls before each block, for at least this long (the first call's wake-up and a "
             "core that was idle can be slow for milliseconds)",
    )
    parser.add_argument(
        "--kernel-seconds", type=float, default=0.2,
        help="standard PLRNN: time each of the step's two matrix kernels alone this long (_core.kernel_rates)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of model init and data")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    parser.add_argument("--no-jax", action="store_true", help="skip the JAX baseline")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON output path")
    args = parser.parse_args(argv)
    if (
        args.T < 2
        or args.N < 1
        or (args.M is not None and min(args.M) < args.N)  # N <= M (the Lorenz-63 preset: M = N = 3)
        or min(args.threads) < 1
        or args.tau < 1
        or not 0 <= args.alpha <= 1
        or not 0 < args.kernel_seconds <= 10
    ):
        parser.error("need T >= 2, 1 <= N <= M, tau >= 1, 0 <= alpha <= 1, threads >= 1 and "
                     "0 < kernel-seconds <= 10")
    if args.clipped and args.model != "shallow":
        parser.error("--clipped needs --model shallow")
    try:
        check_reentry(args.reentry_ms * 1e-3)
    except ValueError:
        parser.error(f"--reentry-ms must be a finite number of milliseconds >= 0, got {args.reentry_ms}")
    return args


def run_per_thread_count(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Runs this script once per thread count (each pinned to that many cores) and merges the JSON."""
    import subprocess
    import tempfile

    merged: dict[str, Any] | None = None
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        for threads in args.threads:
            part = Path(tmp) / f"threads{threads}.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--threads", str(threads),
                   "--output", str(part)]
            code = subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode
            if code not in (0, 1):
                return code
            status = max(status, code)
            output = json.loads(part.read_text())
            if merged is None:
                merged = output
                merged["machine"]["per_thread_count"] = {}
            else:
                merged["results"] += output["results"]
            merged["machine"]["per_thread_count"][threads] = {
                k: output["machine"].get(k) for k in ("cpu_affinity_count", "jax_xla_flags")}
    assert merged is not None
    merged["command"] = [Path(sys.argv[0]).name, *argv]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(merged, indent=2) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)
    print(markdown_table(merged["results"]))
    return status


def pin_to_cores(threads: int) -> list[int]:
    """Restricts this process (and the threads it starts from now on) to ``threads`` cores."""
    cpus = sorted(os.sched_getaffinity(0))
    if threads > len(cpus):
        print(f"warning: {threads} threads on {len(cpus)} cores", file=sys.stderr)
        return cpus
    os.sched_setaffinity(0, cpus[:threads])
    return cpus[:threads]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if len(args.threads) > 1:
        return run_per_thread_count(args, argv)
    pin_to_cores(args.threads[0])
    pn, native_error = import_native()
    if args.no_torch:
        torch, baseline, torch_error = None, None, "disabled with --no-torch"
    else:
        torch, baseline, torch_error = import_torch_baseline()
    if args.no_jax:
        jax_baseline, jax_error = None, "disabled with --no-jax"
    else:
        _configure_xla_threads(args.threads[0])
        jax_baseline, jax_error = import_jax_baseline()
        if jax_baseline is None:
            print(f"warning: JAX baseline missing ({jax_error})", file=sys.stderr)
    if pn is None:
        print(
            f"warning: plrnn_native not importable ({native_error}); timing torch only",
            file=sys.stderr,
        )
    if torch is None:
        print(
            f"warning: PyTorch baseline missing ({torch_error}); timing native only",
            file=sys.stderr,
        )
    if pn is None and torch is None:
        print("error: neither plrnn_native nor torch is available", file=sys.stderr)
        return 2

    machine = machine_info(REPO_ROOT)
    machine["torch"] = torch.__version__ if torch is not None else None
    machine["torch_default_threads"] = torch.get_num_threads() if torch is not None else None
    machine["plrnn_native"] = getattr(pn, "__version__", "unknown") if pn is not None else None
    machine["plrnn_native_file"] = getattr(pn, "__file__", None) if pn is not None else None
    machine["jax"] = jax_baseline.jax.__version__ if jax_baseline is not None else None
    machine["jax_xla_flags"] = os.environ.get("XLA_FLAGS") if jax_baseline is not None else None
    args.peak_flops = None
    if pn is not None and hasattr(pn._core, "fma_peak_flops"):
        # One core's float32 FMA throughput in the SIMD width of the build (median of 5 probes).
        args.peak_flops = float(np.median([pn._core.fma_peak_flops("float32", 0.1) for _ in range(5)]))
    machine["fma_peak_gflops_per_core_float32"] = (
        args.peak_flops / 1e9 if args.peak_flops else None
    )

    records = []
    for config in build_configs(args):
        print(
            f"running {config.kind} M={config.M} B={config.B} T={config.T} N={config.N} "
            f"{config.forcing.label} threads={config.threads} ...",
            file=sys.stderr,
            flush=True,
        )
        record = run_config(config, pn, torch, baseline, jax_baseline, args)
        check = record["check"]
        if check is not None:
            status = "ok" if check["passed"] else "FAILED"
            print(
                f"  check {status}: loss native={check['loss_native']:.7g} "
                f"torch={check['loss_torch']:.7g} "
                f"rel diff {check['loss_rel_diff']:.2e} (tol {check['loss_tol']:.1e}); "
                f"max grad rel diff {check['grad_rel_diff_max']:.2e} (tol {check['grad_tol']:.1e})",
                file=sys.stderr,
                flush=True,
            )
        records.append(record)

    output = {
        "benchmark": "train_step",
        "description": (
            "one training step: teacher-forced rollout + BPTT (loss and all parameter gradients)"
        ),
        "command": [Path(sys.argv[0]).name, *argv],
        "machine": machine,
        "settings": {
            "repeats": args.repeats,
            "warmup": args.warmup,
            "block": args.block,
            "reentry_ms": args.reentry_ms,
            "seed": args.seed,
            "loss_tol_factor": LOSS_TOL_FACTOR,
            "grad_tol_factor": GRAD_TOL_FACTOR,
            "float32_eps": FLOAT32_EPS,
        },
        "missing": {"native": native_error, "torch": torch_error, "jax": jax_error},
        "results": records,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(output, indent=2) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)

    print(markdown_table(records))
    failed = [r for r in records if r["check"] is not None and not r["check"]["passed"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
