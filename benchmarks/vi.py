"""Benchmarks of variational inference for the probabilistic PLRNN (issue 12, docs/probabilistic.md).

Four benchmarks, each its own subcommand, each writing ``benchmarks/results/vi_<name>.json`` (settings,
per-seed results, median and spread, CPU model, thread count, wall times) and printing a Markdown table:

- ``throughput``: the ELBO and its gradient per sequence-step (``vi.elbo``: encoder forward/backward,
  one reparameterised sample, the native log-joint with its gradient), the native log-joint alone, and
  the BPTT step (``model.loss_and_grad`` with sparse forcing tau=25, as ``train_step.py`` times it) at
  the same sizes (M, B, T); medians of repeats after warm-up, timed in alternating blocks
  (``_timing.time_interleaved``).
- ``lorenz63``: Lorenz-63 (10^5 training samples, the ``plrnn train --system lorenz63`` data), VI with
  a Gaussian channel against BPTT + sparse teacher forcing (the ``plrnn train`` pipeline, as
  ``reconstruct.py`` runs it) at equal training wall time; both scored on the same 10^5-step test
  trajectory (D_stsp, D_H, lambda_max of the model).
- ``multimodal``: Lorenz-63 (standardised) seen through a 1-d noisy Gaussian readout, Poisson counts and
  a categorical channel; VI on the Gaussian channel alone against all three (and optionally pairs),
  scored on a held-out trajectory (``vi.evaluate`` plus a latent-geometry score against the true
  latent path after an affine map fitted on the training posterior means).
- ``fmri``: Lorenz-63 through the canonical HRF (TR = 0.5 s) and a noisy linear readout, many short
  series; the fMRI (HRF) observation model against a plain Gaussian one on the same BOLD data.

    python benchmarks/vi.py throughput            # or lorenz63, multimodal, fmri, all
    python benchmarks/vi.py all --quick           # smoke sizes, < 1 minute in all

Every random draw comes from an explicit ``numpy.random.default_rng(seed)``. Native threads: ``--threads``
(default 1); NumPy's BLAS should be limited too (OMP_NUM_THREADS=1 etc.), which is recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

try:  # run as a script (benchmarks/ is sys.path[0]) ...
    from _timing import machine_info, summarize, time_interleaved
except ImportError:  # ... or as ``python -m benchmarks.vi`` from the repository root
    from benchmarks._timing import machine_info, summarize, time_interleaved

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "python") not in sys.path:
    sys.path.insert(0, str(REPO / "python"))

import plrnn_native as pn  # noqa: E402
from plrnn_native import data as data_mod  # noqa: E402
from plrnn_native import metrics, vi  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
BINNED = dict(bins=30, widen=0.1, smoothing=1e-5, outside="drop")  # as metrics.evaluate / plrnn train
D_H_SIGMA = 20.0


# ---- helpers ---------------------------------------------------------------------------------------
def spread(values) -> dict:
    """Median, min, max, mean and std of the finite values (and how many were not finite)."""
    arr = np.array([np.nan if v is None else v for v in values], dtype=float)
    fin = arr[np.isfinite(arr)]
    if fin.size == 0:
        return {"median": None, "min": None, "max": None, "mean": None, "std": None, "n": 0,
                "non_finite": int(arr.size)}
    return {"median": float(np.median(fin)), "min": float(fin.min()), "max": float(fin.max()),
            "mean": float(fin.mean()), "std": float(fin.std()), "n": int(fin.size),
            "non_finite": int(arr.size - fin.size)}


def cell(s: dict, fmt: str = "{:.3f}") -> str:
    """``median [min, max]`` of a :func:`spread`."""
    if not s or s.get("median") is None:
        return "–"
    text = (fmt + " [" + fmt + ", " + fmt + "]").format(s["median"], s["min"], s["max"])
    if s.get("non_finite"):
        text += f" ({s['non_finite']} diverged)"
    return text


def machine(threads: int) -> dict:
    info = machine_info(REPO)
    info["native_threads"] = threads
    try:
        info["loadavg_at_start"] = list(os.getloadavg())
    except OSError:
        pass
    info["note"] = "shared machine (other jobs running): compare ratios, not absolute times"
    return info


def write(name: str, out: dict, quick: bool, output: Optional[Path]) -> Path:
    path = output or RESULTS / (f"vi_{name}" + ("_quick" if quick else "") + ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=float) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return path


def standardise_like(ts_test, ts_train) -> np.ndarray:
    """The test series in the training series' standardisation (as ``plrnn train`` does)."""
    raw = ts_test.x * ts_test.std + ts_test.mean
    return (raw - ts_train.mean) / ts_train.std


def latent_lorenz(T: int, dt: float, seed: int):
    """A standardised Lorenz-63 path [T, 3] without observation noise (the latent truth)."""
    ts = data_mod.make("lorenz63", T=T, dt=dt, obs_noise=0.0, seed=seed)
    return ts


def affine_fit(mu: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Least-squares affine map ``[mu, 1] @ A ~ z``."""
    X = np.c_[mu, np.ones(len(mu))]
    A, *_ = np.linalg.lstsq(X, z, rcond=None)
    return A


def affine_apply(A: np.ndarray, mu: np.ndarray) -> np.ndarray:
    return np.c_[mu, np.ones(len(mu))] @ A


def r2(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean over dimensions of the coefficient of determination."""
    res = ((pred - true) ** 2).sum(0)
    tot = ((true - true.mean(0)) ** 2).sum(0)
    return float(np.mean(1.0 - res / tot))


def d_stsp(a: np.ndarray, b: np.ndarray, seed: int = 0) -> float:
    if not np.isfinite(b).all():
        return math.inf
    if a.shape[1] <= metrics.BINNED_MAX_DIM:
        return float(metrics.state_space_divergence_binned(a, b, **BINNED))
    return float(metrics.state_space_divergence_gmm(a, b, seed=np.random.default_rng(seed)))


def d_h(a: np.ndarray, b: np.ndarray) -> float:
    if not np.isfinite(b).all():
        return math.nan
    return float(metrics.power_spectrum_distance(a, b, smoothing_sigma=D_H_SIGMA))


def lambda_max(model, z0: np.ndarray, steps: int, dt: float) -> float:
    """The model's largest Lyapunov exponent per unit time (QR along ``steps`` steps after 1000)."""
    try:
        spec = metrics.lyapunov_spectrum(model, T=steps, transient=1000, z0=np.asarray(z0, model.dtype), dt=dt)
    except (ValueError, FloatingPointError):
        return math.nan
    return float(spec[0])


# ---- 1. throughput -----------------------------------------------------------------------------------
THROUGHPUT_SIZES = [("shallow", 3, 100, "Lorenz-63 default (shallow M=3 H=100)"), ("standard", 32, None, "standard M=32")]


def bench_throughput(args) -> dict:
    Ts = [50, 200] if args.quick else [50, 200, 1000, 5000]
    B, N, tau = 16, 3, 25
    budget = 0.15 if args.quick else args.budget
    records = []
    for threads in args.threads:
        pn.set_num_threads(threads)
        for kind, M, H, label in THROUGHPUT_SIZES:
            for T in Ts:
                rng = np.random.default_rng([args.seed, M, T])
                model = pn.PLRNN(kind, M=M, N=N, hidden=H, dtype="float32", seed=args.seed)
                x = np.ascontiguousarray(rng.standard_normal((B, T, N)), dtype=np.float32)
                data = {"gaussian": {"x": x}}
                params = vi.init_params(M, {"gaussian": {"x": x[0]}}, rng, "float32")
                enc = vi.Encoder(M, vi.features(data).shape[-1])  # the trainer's default: linear, window 2+1+2
                enc_params = enc.init(rng)
                z = np.ascontiguousarray(rng.standard_normal((B, T, M)), dtype=np.float32)
                erng = np.random.default_rng([args.seed, 1])
                dz = np.ones((B, T, M))

                def encoder_only():  # the Python/NumPy part of the ELBO: features, encoder forward and backward
                    f = vi.features(data)
                    _, _, cache = enc.forward(enc_params, f)
                    return enc.backward(enc_params, cache, dz, dz)

                fns = {
                    "bptt": lambda: model.loss_and_grad(x, forcing="sparse", tau=tau),
                    "elbo": lambda: vi.elbo(model, params, enc, enc_params, data, erng),
                    "log_joint": lambda: vi.log_joint(model, params, z, data),
                    "encoder": encoder_only,
                }
                # one call of each, to size the repeats to the budget
                est = {}
                for name, fn in fns.items():
                    fn()
                    t0 = time.perf_counter()
                    fn()
                    est[name] = time.perf_counter() - t0
                per_round = sum(est.values())
                repeats = int(np.clip(budget / max(per_round, 1e-6), 5 if not args.quick else 3, 100))
                warmup = 2 if args.quick else 3
                print(f"throughput {label} T={T} threads={threads}: {repeats} repeats", file=sys.stderr, flush=True)
                samples = time_interleaved(fns, repeats=repeats, warmup=warmup, block=min(5, repeats))
                rec: Dict[str, Any] = {"model": label, "kind": kind, "M": M, "H": H, "B": B, "T": T, "N": N,
                                       "threads": threads, "repeats": repeats, "warmup": warmup}
                for name in fns:
                    s = summarize(samples[name]).to_dict(samples[name])
                    s["us_per_sequence_step"] = s["median_ms"] * 1e3 / (B * T)
                    rec[name] = s
                rec["ratio_bptt_over_elbo"] = rec["bptt"]["median_ms"] / rec["elbo"]["median_ms"]
                rec["ratio_bptt_over_log_joint"] = rec["bptt"]["median_ms"] / rec["log_joint"]["median_ms"]
                records.append(rec)
    return {"benchmark": "vi_throughput",
            "description": ("time per call and per sequence-step (B*T) of: bptt = model.loss_and_grad(x, "
                            "forcing='sparse', tau=25) (teacher-forced rollout + BPTT, all gradients); elbo = "
                            "vi.elbo with gradient (encoder forward/backward, 1 sample, native log-joint with "
                            "gradient, Gaussian channel N=3); log_joint = vi.log_joint with gradient at a fixed z"),
            "settings": {"B": B, "N": N, "tau": tau, "Ts": Ts, "threads": args.threads, "dtype": "float32",
                         "budget_s_per_config": budget, "seed": args.seed, "quick": args.quick},
            "results": records}


def table_throughput(out: dict) -> str:
    lines = ["| model | B | T | threads | BPTT µs/seq-step | ELBO+grad µs/seq-step | log-joint+grad µs/seq-step "
             "| encoder fwd+bwd µs/seq-step | BPTT / ELBO | BPTT / log-joint |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in out["results"]:
        lines.append(f"| {r['model']} | {r['B']} | {r['T']} | {r['threads']} | {r['bptt']['us_per_sequence_step']:.3g} "
                     f"| {r['elbo']['us_per_sequence_step']:.3g} | {r['log_joint']['us_per_sequence_step']:.3g} "
                     f"| {r['encoder']['us_per_sequence_step']:.3g} "
                     f"| {r['ratio_bptt_over_elbo']:.2f}× | {r['ratio_bptt_over_log_joint']:.2f}× |")
    return "\n".join(lines)


# ---- 2. lorenz63 -------------------------------------------------------------------------------------
def _vi_lorenz_score(trainer, x_test: np.ndarray, dt: float, lyap_steps: int, seed: int) -> dict:
    """The protocol of ``plrnn train`` for a VI model: free run of ceil(1.25 T) steps from the posterior
    mean at the first test step, first 0.25 T dropped, ``B z`` against the test data (D_stsp binned,
    D_H), lambda_max along ``lyap_steps`` steps continuing from the free run's end."""
    ev = vi.evaluate(trainer, {"gaussian": {"x": x_test}}, seed=seed)
    out = {"D_stsp": ev.get("D_stsp", math.inf), "D_stsp_variant": ev.get("D_stsp_variant"), "D_H": ev.get("D_H"),
           "KL_z": ev.get("KL_z"), "diverged": bool(ev.get("diverged", False))}
    mu, _ = trainer.posterior({"gaussian": {"x": x_test}})
    model = trainer.model
    z = model.generate(ev["generated_steps"], z0=mu[0].astype(model.dtype), return_latent=True)[1]
    out["lambda_max_model"] = lambda_max(model, z[-1], lyap_steps, dt) if np.isfinite(z).all() else math.nan
    return out


#: VI's initial generative parameters (--vi-init): "library" = vi.init_params' defaults (B the principal
#: axes of the data, sigma their residual, at least 0.1 std; sigma_z 0.01); "identity" = what this benchmark
#: used before those defaults (which then were B random and small, sigma 1, sigma_z 0.1: a 150-epoch probe
#: with them left sigma ~ 1 on two of the three variables and a free run on a fixed point): B = identity
#: (as BPTT's identity observation x = z[:N]), sigma 0.1, sigma_z 0.01. All are learned from there.
LORENZ_INIT = {"B": "identity", "sigma": 0.1, "sigma_z": 0.01}


def lorenz_init(x: np.ndarray, seed: int, how: str = "library") -> dict:
    p = vi.init_params(3, {"gaussian": {"x": x}}, np.random.default_rng([seed, 0]), "float32")
    if how == "identity":
        p["gaussian.B"][...] = np.eye(3)
        p["gaussian.log_sigma"][...] = math.log(LORENZ_INIT["sigma"])
        p["log_sigma_z"][...] = math.log(LORENZ_INIT["sigma_z"])
    return p


def bench_lorenz63(args) -> dict:
    from plrnn_native import cli

    d = dict(cli.DEFAULTS["data"])
    T_train = 5000 if args.quick else d["T"]
    T_test = 5000 if args.quick else d["test_T"]
    epochs = args.epochs or (3 if args.quick else cli.DEFAULTS["train"]["epochs"])
    lyap_steps = 2000 if args.quick else cli.DEFAULTS["evaluate"]["lyapunov_steps"]
    seeds = args.seeds[:1] if args.quick else args.seeds
    threads = args.threads[0]
    pn.set_num_threads(threads)
    # the data exactly as `plrnn train --system lorenz63` makes it (cli.load_data)
    ts = data_mod.make("lorenz63", T=T_train, dt=d["dt"], obs_noise=d["obs_noise"], seed=d["seed"])
    te = data_mod.make("lorenz63", T=T_test, dt=d["dt"], obs_noise=d["obs_noise"], seed=d["seed"] + 1)
    x = np.ascontiguousarray(ts.x, dtype=np.float32)
    x_test = np.ascontiguousarray(standardise_like(te, ts), dtype=np.float32)
    folder = tempfile.mkdtemp(prefix="plrnn-vi-lorenz63-")
    tr = cli.DEFAULTS["train"]
    vi_cfg = dict(seq_len=tr["seq_len"], batch_size=tr["batch_size"], lr=tr["lr"], lr_end=tr["lr_end"],
                  grad_clip=tr["grad_clip"], encoder_hidden=args.encoder_hidden)
    runs = []
    for seed in seeds:
        print(f"lorenz63 seed {seed}: BPTT {epochs} epochs ...", file=sys.stderr, flush=True)
        out = os.path.join(folder, f"bptt-seed{seed}")
        cli_args = ["train", "--system", "lorenz63", "--out", out, "--quiet", "--no-plots",
                    "--set", f"model.seed={seed}", "--set", f"train.seed={seed}", "--set", f"run.threads={threads}",
                    "--set", f"train.epochs={epochs}"]
        if args.quick:
            cli_args += ["--set", f"data.T={T_train}", "--set", f"data.test_T={T_test}",
                         "--set", f"evaluate.lyapunov_steps={lyap_steps}", "--set", "run.validation_steps=2000"]
        t0 = time.perf_counter()
        code = cli.main(cli_args)
        wall = time.perf_counter() - t0
        with open(os.path.join(out, "metrics.json")) as f:
            m = json.load(f)
        bptt = {k: m.get(k) for k in ("D_stsp", "D_stsp_variant", "D_H", "lambda_max_model", "lambda_max_rel_error",
                                      "train_seconds", "selected_epoch", "diverged", "status")}
        bptt.update(exit_code=code, wall_seconds_total=wall, epochs=epochs)
        budget = float(m["train_seconds"])
        # VI: the epoch time measured on a throwaway trainer (2 epochs after 1 of warm-up) and the time of
        # one model-selection score (vi.BestSelector on the same validation stretch as plrnn train's:
        # the last validation_steps of the training data, scored as often as BPTT's selection), then as
        # many epochs as fit into the BPTT training time
        n_val = min(int(cli.DEFAULTS["run"]["validation_steps"]) if not args.quick else 2000, T_train)
        n_sel = max(1, epochs // int(cli.DEFAULTS["run"]["select_every"]))
        model = pn.PLRNN("shallow", M=3, N=3, hidden=100, dtype="float32", seed=seed)
        probe = vi.VITrainer(model, {"gaussian": {"x": x}}, seed=seed, params=lorenz_init(x, seed, args.vi_init), **vi_cfg)
        probe.fit(1, tr["batches_per_epoch"])
        t0 = time.perf_counter()
        probe.fit(3, tr["batches_per_epoch"])
        epoch_s = (time.perf_counter() - t0) / 2
        selector = vi.BestSelector({"gaussian": {"x": x[-n_val:]}}, every=1, seed=seed)
        t0 = time.perf_counter()
        selector.score(probe)
        select_s = time.perf_counter() - t0
        vi_epochs = max(1, int((budget - n_sel * select_s) / epoch_s))
        every = max(1, vi_epochs // n_sel)
        print(f"  BPTT trained {budget:.1f} s; VI epoch {epoch_s:.3f} s, selection {select_s:.2f} s -> {vi_epochs} "
              f"epochs, selection every {every}", file=sys.stderr, flush=True)
        model = pn.PLRNN("shallow", M=3, N=3, hidden=100, dtype="float32", seed=seed)
        selector = vi.BestSelector({"gaussian": {"x": x[-n_val:]}}, every=every, seed=seed)
        t0 = time.perf_counter()
        trainer = vi.VITrainer(model, {"gaussian": {"x": x}}, seed=seed, params=lorenz_init(x, seed, args.vi_init),
                               callback=selector, **vi_cfg)
        trainer.fit(vi_epochs, tr["batches_per_epoch"])
        vi_seconds = time.perf_counter() - t0
        selector.restore(trainer)
        res = _vi_lorenz_score(trainer, x_test, d["dt"], lyap_steps, seed)
        res.update(train_seconds=vi_seconds, epochs=vi_epochs, epoch_seconds_measured=epoch_s,
                   selection_seconds_measured=select_s, select_every=every, selected_epoch=selector.best_epoch,
                   validation_D_stsp=selector.best_score,
                   final_loss=trainer.history[-1]["loss"], stopped=trainer.stopped,
                   lambda_max_rel_error=(abs(res["lambda_max_model"] - ts.lyapunov_max) / ts.lyapunov_max
                                         if ts.lyapunov_max and np.isfinite(res["lambda_max_model"]) else None))
        print(f"  BPTT D_stsp={bptt['D_stsp']:.3f} D_H={bptt['D_H']:.3f} lmax={bptt['lambda_max_model']:.3f} | "
              f"VI D_stsp={res['D_stsp']:.3f} D_H={res['D_H']} lmax={res['lambda_max_model']:.3f} ({vi_seconds:.1f} s)",
              file=sys.stderr, flush=True)
        runs.append({"seed": seed, "bptt": bptt, "vi": res})
    summary = {}
    for method in ("bptt", "vi"):
        summary[method] = {k: spread([r[method].get(k) for r in runs])
                           for k in ("D_stsp", "D_H", "lambda_max_model", "lambda_max_rel_error", "train_seconds", "epochs")}
    return {"benchmark": "vi_lorenz63",
            "description": ("Lorenz-63 (plrnn train --system lorenz63 data: 1e5 samples, dt 0.01, 1 % noise; separate "
                            "1e5-step test trajectory, seed+1, standardised with the training statistics). BPTT: the plrnn "
                            "train pipeline (shallow M=3 H=100, STF tau=25, model selection on held-out training data). "
                            "VI: VITrainer, Gaussian channel on the 3 variables, same latent model, seq_len/batch/lr as "
                            "BPTT, model selection by vi.BestSelector on the same validation stretch as BPTT's, as often, epochs = "
                            "(BPTT training seconds - selection time) / measured VI epoch time. Both "
                            "scored with D_stsp (binned, 30 bins), D_H (sigma 20), lambda_max of the model (QR)."),
            "settings": {"T_train": T_train, "T_test": T_test, "bptt_epochs": epochs, "seeds": seeds,
                         "threads": threads, "vi": vi_cfg, "vi_init": LORENZ_INIT if args.vi_init == "identity" else "vi.init_params defaults", "lyapunov_steps": lyap_steps,
                         "reduced_epochs": epochs != cli.DEFAULTS["train"]["epochs"],
                         "lambda_max_reference": ts.lyapunov_max, "quick": args.quick},
            "runs": runs, "summary": summary}


def table_lorenz63(out: dict) -> str:
    s = out["summary"]
    st = out["settings"]
    lines = ["| method | epochs | train s | D_stsp (binned) | D_H | λ_max model | λ_max rel. error | seeds |",
             "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for method, label in (("bptt", "BPTT + STF τ=25 (plrnn train)"), ("vi", "VI, Gaussian channel")):
        lines.append(f"| {label} | {cell(s[method]['epochs'], '{:.0f}')} | {cell(s[method]['train_seconds'], '{:.0f}')} "
                     f"| {cell(s[method]['D_stsp'])} | {cell(s[method]['D_H'])} | {cell(s[method]['lambda_max_model'])} "
                     f"| {cell(s[method]['lambda_max_rel_error'])} | {len(st['seeds'])} |")
    return "\n".join(lines) + f"\n\n(median [min, max] over seeds {st['seeds']}; reference λ_max {st['lambda_max_reference']})"


# ---- 3. multimodal -----------------------------------------------------------------------------------
CONDITIONS = {"gaussian": ("gaussian",), "gaussian+poisson": ("gaussian", "poisson"),
              "gaussian+categorical": ("gaussian", "categorical"),
              "all": ("gaussian", "poisson", "categorical")}


#: multimodal and fmri: the initial transition noise (vi.init_params' default 0.1 let the posterior
#: follow the data as a random walk in the Lorenz-63 probe; see LORENZ_INIT); everything else default.
SIGMA_Z0 = 0.01


def multimodal_data(T_train: int, T_test: int, dt: float, seed: int) -> dict:
    """One latent Lorenz-63 path (standardised), its channels drawn with ``default_rng(seed)``: a 1-d
    Gaussian readout (noise std 0.5), 10 Poisson neurons (log-rate = G z + g), 3 classes (softmax of
    beta z). The test part is a separate path (the generator's seed + 1) through the same channels."""
    rng = np.random.default_rng(seed)
    train = latent_lorenz(T_train, dt, seed)
    test = latent_lorenz(T_test, dt, seed + 1)
    z_tr = train.x
    z_te = standardise_like(test, train)
    w = rng.normal(0.0, 1.0, 3)
    w /= np.linalg.norm(w)
    G = rng.normal(0.0, 0.6, (10, 3))
    g = np.log(rng.uniform(0.5, 2.0, 10))
    beta = rng.normal(0.0, 2.0, (3, 3))

    def channels(z):
        x = ((z @ w)[:, None] + 0.5 * rng.standard_normal((len(z), 1))).astype(np.float32)
        q = rng.poisson(np.exp(z @ G.T + g)).astype(np.float32)
        logits = z @ beta.T
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        c = (p.cumsum(1) > rng.uniform(size=(len(z), 1))).argmax(1).astype(np.int64)
        return {"gaussian": {"x": x}, "poisson": {"q": q}, "categorical": {"c": c}}

    return {"z_train": z_tr, "z_test": z_te, "train": channels(z_tr), "test": channels(z_te),
            "truth": {"w": w.tolist(), "G": G.tolist(), "g": g.tolist(), "beta": beta.tolist(),
                      "gaussian_noise_std": 0.5}}


def _free_run(trainer, z0: np.ndarray, T: int, gen_factor: float = 1.25, transient: float = 0.25):
    model = trainer.model
    L = int(math.ceil(gen_factor * T))
    z = np.asarray(model.generate(L, z0=np.asarray(z0, model.dtype), return_latent=True)[1], np.float64)
    return z, int(transient * T)


def bench_multimodal(args) -> dict:
    T_train, T_test = (2000, 1000) if args.quick else (args.T_train, args.T_test)
    epochs = args.epochs or (2 if args.quick else 150)
    seeds = args.seeds[:1] if args.quick else args.seeds
    conds = args.conditions
    pn.set_num_threads(args.threads[0])
    dt = 0.01
    vi_cfg = dict(seq_len=200, batch_size=16, lr=1e-3, lr_end=1e-4, encoder_hidden=args.encoder_hidden,
                  encoder_before=args.encoder_window, encoder_after=args.encoder_window)
    runs = []
    for seed in seeds:
        D = multimodal_data(T_train, T_test, dt, seed)
        for cond in conds:
            chans = CONDITIONS[cond]
            train = {k: D["train"][k] for k in chans}
            test = {k: D["test"][k] for k in chans}
            full_test = D["test"]
            model = pn.PLRNN("shallow", M=3, N=1, hidden=100, dtype="float32", seed=seed)
            t0 = time.perf_counter()
            init = vi.init_params(3, train, np.random.default_rng([seed, 0]), "float32", log_sigma_z=math.log(SIGMA_Z0))
            trainer = vi.VITrainer(model, train, seed=seed, params=init, **vi_cfg)
            trainer.fit(epochs, 50)
            seconds = time.perf_counter() - t0
            ev = vi.evaluate(trainer, test, seed=seed)
            res: Dict[str, Any] = {"seed": seed, "condition": cond, "train_seconds": seconds, "epochs": epochs,
                                   "final_loss": trainer.history[-1]["loss"], "stopped": trainer.stopped,
                                   "evaluate": ev}
            # modality-independent: the latent geometry against the true latent path
            mu_tr, _ = trainer.posterior(train)
            A = affine_fit(mu_tr, D["z_train"])
            mu_te, _ = trainer.posterior(test)
            res["latent_R2_train_posterior"] = r2(affine_apply(A, mu_tr), D["z_train"])
            res["latent_R2_test_posterior"] = r2(affine_apply(A, mu_te), D["z_test"])
            z, tr0 = _free_run(trainer, mu_te[0], T_test)
            zg = affine_apply(A, z[tr0:]) if np.isfinite(z).all() else np.full((len(z) - tr0, 3), np.nan)
            res["latent_D_stsp"] = d_stsp(D["z_test"], zg)
            # how much of the true spread the free run keeps (near 0: collapsed, e.g. onto a fixed point)
            res["free_run_std_ratio"] = float(np.mean(zg.std(0) / D["z_test"].std(0)))
            res["latent_D_H"] = d_h(D["z_test"], zg[:T_test])
            # the channels a model was not trained on cannot be scored on it; the Gaussian one always
            res["D_stsp_gaussian"] = ev.get("D_stsp", math.inf)
            res["D_H_gaussian"] = ev.get("D_H")
            res["KL_z"] = ev.get("KL_z", math.inf)
            if "poisson" in ev:
                res["poisson_explained"] = ev["poisson"]["explained"]
            if "categorical" in ev:
                res["categorical_accuracy_posterior"] = ev["categorical"]["posterior"]["accuracy"]
                res["categorical_accuracy_free_run"] = ev["categorical"]["free_run"]["accuracy"]
                res["categorical_chance"] = ev["categorical"]["chance"]
            del full_test
            print(f"multimodal seed {seed} {cond}: {seconds:.1f} s, D_stsp_g={res['D_stsp_gaussian']:.3f} "
                  f"latent R2={res['latent_R2_test_posterior']:.3f} latent D_stsp={res['latent_D_stsp']:.3f}",
                  file=sys.stderr, flush=True)
            runs.append(res)
    keys = ("KL_z", "D_stsp_gaussian", "D_H_gaussian", "latent_R2_test_posterior", "latent_D_stsp", "latent_D_H",
            "poisson_explained", "categorical_accuracy_posterior", "categorical_accuracy_free_run",
            "categorical_chance", "train_seconds")
    summary = {c: {k: spread([r.get(k) for r in runs if r["condition"] == c]) for k in keys} for c in conds}
    # paired per seed: the change of each score when all channels are added to the Gaussian one
    paired = {}
    if "gaussian" in conds:
        for c in conds:
            if c == "gaussian":
                continue
            for k in ("D_stsp_gaussian", "D_H_gaussian", "latent_R2_test_posterior", "latent_D_stsp", "latent_D_H"):
                diffs = []
                for seed in seeds:
                    a = [r[k] for r in runs if r["seed"] == seed and r["condition"] == "gaussian"]
                    b = [r[k] for r in runs if r["seed"] == seed and r["condition"] == c]
                    if a and b and a[0] is not None and b[0] is not None:
                        diffs.append(b[0] - a[0])
                paired.setdefault(c, {})[k] = {"per_seed": diffs, **spread(diffs)}
    return {"benchmark": "vi_multimodal",
            "description": ("latent Lorenz-63 (dt 0.01, standardised, no noise) seen through a 1-d Gaussian readout "
                            "(unit-norm random weights, noise std 0.5), 10 Poisson neurons (log-rate G z + g) and 3 "
                            "classes (softmax of beta z), all drawn with default_rng(seed); the test path from the "
                            "generator's seed + 1. VI (shallow M=3 H=100 latent) on each condition's channels, same "
                            "epochs and seeds. latent_*: an affine map fitted by least squares from the training "
                            "posterior means to the true training latent path, applied to the test posterior means "
                            "(R2) and to the free run from the first test posterior mean (D_stsp binned, D_H)."),
            "settings": {"T_train": T_train, "T_test": T_test, "dt": dt, "epochs": epochs, "batches_per_epoch": 50,
                         "seeds": seeds, "conditions": conds, "vi": vi_cfg, "sigma_z_init": SIGMA_Z0, "threads": args.threads[0],
                         "quick": args.quick},
            "runs": runs, "summary": summary, "paired_difference_vs_gaussian": paired}


def table_multimodal(out: dict) -> str:
    s = out["summary"]
    lines = ["| channels | D_stsp Gaussian ch. | D_H Gaussian ch. | KL_z | latent R² (posterior) | latent D_stsp "
             "| latent D_H | Poisson explained dev. | categorical acc. (posterior / free run; chance) | train s |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for c, v in s.items():
        cat = "–"
        if v["categorical_accuracy_posterior"]["median"] is not None:
            cat = (f"{v['categorical_accuracy_posterior']['median']:.3f} / {v['categorical_accuracy_free_run']['median']:.3f}"
                   f"; {v['categorical_chance']['median']:.3f}")
        lines.append(f"| {c} | {cell(v['D_stsp_gaussian'])} | {cell(v['D_H_gaussian'])} | {cell(v['KL_z'])} "
                     f"| {cell(v['latent_R2_test_posterior'])} | {cell(v['latent_D_stsp'])} | {cell(v['latent_D_H'])} "
                     f"| {cell(v['poisson_explained'])} | {cat} | {cell(v['train_seconds'], '{:.0f}')} |")
    st = out["settings"]
    text = "\n".join(lines) + f"\n\n(median [min, max] over seeds {st['seeds']}, {st['epochs']} epochs)"
    for c, p in out.get("paired_difference_vs_gaussian", {}).items():
        text += f"\n\npaired per-seed change, {c} minus gaussian: " + "; ".join(
            f"{k} {', '.join(f'{d:+.3f}' for d in v['per_seed'])}" for k, v in p.items())
    return text


# ---- 4. fmri ---------------------------------------------------------------------------------------------
def fmri_data(n_train: int, n_test: int, L: int, TR: float, dt: float, N: int, noise: float, seed: int) -> dict:
    """Lorenz-63 (standardised, ``dt`` per TR sample) convolved with the canonical HRF sampled at ``TR``
    and read out by a random linear map to ``N`` regions plus Gaussian noise (std ``noise`` of the
    standardised BOLD); cut into ``n_train + n_test`` non-overlapping series of ``L`` samples. Draws from
    ``default_rng(seed)``; the latent path from the generator's ``seed``."""
    rng = np.random.default_rng(seed)
    hrf = vi.hrf_spm(TR)
    tau = len(hrf) - 1
    n = n_train + n_test
    ts = latent_lorenz(n * L + tau, dt, seed)
    z = ts.x
    conv = np.stack([np.convolve(z[:, i], hrf)[: len(z)] for i in range(3)], axis=1)[tau:]  # full history
    z = z[tau:]
    conv = (conv - conv.mean(0)) / conv.std(0)
    W = rng.normal(0.0, 1.0, (N, 3)) / math.sqrt(3)
    bold = conv @ W.T
    bold = (bold - bold.mean(0)) / bold.std(0)
    bold = bold + noise * rng.standard_normal(bold.shape)
    series = [{"bold": bold[i * L:(i + 1) * L], "z": z[i * L:(i + 1) * L]} for i in range(n)]
    order = rng.permutation(n)
    return {"train": [series[i] for i in order[:n_train]], "test": [series[i] for i in order[n_train:]],
            "tau": tau, "W": W.tolist()}


def _fmri_generate(trainer, kind: str, z0: np.ndarray, L: int, TR: float):
    """Free run of ``t0 + L`` steps from ``z0``, the first ``t0 = max(0.25 L, tau)`` dropped (they cover the
    HRF's ``tau``; the same lengths for both models), and the model's own BOLD: ``B (hrf * z)`` (fmri) or
    ``B z`` (gaussian)."""
    h = vi.hrf_spm(TR)
    tau = len(h) - 1
    t0 = max(int(0.25 * L), tau)
    model = trainer.model
    z = np.asarray(model.generate(t0 + L, z0=np.asarray(z0, model.dtype), return_latent=True)[1], np.float64)
    B = np.asarray(trainer.params[f"{kind}.B"], np.float64)
    if kind == "fmri":
        conv = np.stack([np.convolve(z[:, i], h)[: len(z)] for i in range(z.shape[1])], axis=1)
        y = conv @ B.T
    else:
        y = z @ B.T
    return z[t0:], y[t0:]


def bench_fmri(args) -> dict:
    quick = args.quick
    TR, dt, N, noise = 0.5, args.fmri_dt, 3, 0.3
    L = 300 if not quick else 200
    n_train, n_test = (4, 2) if quick else (args.n_train, args.n_test)
    epochs = args.epochs or (2 if quick else 150)
    seeds = args.seeds[:1] if quick else args.seeds
    pn.set_num_threads(args.threads[0])
    vi_cfg = dict(seq_len=L, batch_size=8, lr=1e-3, lr_end=1e-4, encoder_before=2, encoder_after=20,
                  encoder_hidden=args.encoder_hidden)
    runs = []
    for seed in seeds:
        D = fmri_data(n_train, n_test, L, TR, dt, N, noise, seed)
        for kind in ("fmri", "gaussian"):
            def series(s):
                obs = {"x": np.ascontiguousarray(s["bold"], dtype=np.float32)}
                if kind == "fmri":
                    obs["TR"] = TR
                return {kind: obs}
            train = [series(s) for s in D["train"]]
            model = pn.PLRNN("shallow", M=3, N=N, hidden=100, dtype="float32", seed=seed)
            t0 = time.perf_counter()
            init = vi.init_params(3, train[0], np.random.default_rng([seed, 0]), "float32", log_sigma_z=math.log(SIGMA_Z0))
            trainer = vi.VITrainer(model, train, seed=seed, params=init, **vi_cfg)
            trainer.fit(epochs, 50)
            seconds = time.perf_counter() - t0
            # the affine gauge map from the training posterior means to the true latent path
            mu_tr = np.concatenate([trainer.posterior(s)[0] for s in train])
            z_tr = np.concatenate([s["z"] for s in D["train"]])
            A = affine_fit(mu_tr, z_tr)
            bold_test, bold_gen, z_test, z_gen, dh_bold, dh_lat, r2s = [], [], [], [], [], [], []
            for s in D["test"]:
                mu, _ = trainer.posterior(series(s))
                r2s.append(r2(affine_apply(A, mu), s["z"]))
                zg, yg = _fmri_generate(trainer, kind, mu[0], L, TR)
                bold_test.append(s["bold"])
                z_test.append(s["z"])
                bold_gen.append(yg)
                z_gen.append(affine_apply(A, zg) if np.isfinite(zg).all() else np.full_like(zg, np.nan))
                dh_bold.append(d_h(s["bold"], yg[:L]))
                dh_lat.append(d_h(s["z"], z_gen[-1][:L]))
            res = {"seed": seed, "model": kind, "train_seconds": seconds, "epochs": epochs,
                   "final_loss": trainer.history[-1]["loss"], "stopped": trainer.stopped,
                   "D_stsp_bold": d_stsp(np.concatenate(bold_test), np.concatenate(bold_gen)),
                   "D_H_bold": float(np.nanmean(dh_bold)) if np.isfinite(dh_bold).any() else math.nan,
                   "latent_R2_test_posterior": float(np.mean(r2s)),
                   "latent_R2_train_posterior": r2(affine_apply(A, mu_tr), z_tr),
                   "latent_D_stsp": d_stsp(np.concatenate(z_test), np.concatenate(z_gen)),
                   "latent_D_H": float(np.nanmean(dh_lat)) if np.isfinite(dh_lat).any() else math.nan,
                   "diverged_free_runs": int(sum(not np.isfinite(g).all() for g in bold_gen)),
                   # the free runs' spread over the test BOLD's (near 0: collapsed, e.g. onto a fixed point)
                   "free_run_std_ratio": float(np.mean(np.concatenate(bold_gen).std(0) / np.concatenate(bold_test).std(0)))}
            print(f"fmri seed {seed} {kind}: {seconds:.1f} s D_stsp_bold={res['D_stsp_bold']:.3f} "
                  f"D_H_bold={res['D_H_bold']:.3f} latent R2={res['latent_R2_test_posterior']:.3f} "
                  f"latent D_stsp={res['latent_D_stsp']:.3f}", file=sys.stderr, flush=True)
            runs.append(res)
    keys = ("D_stsp_bold", "D_H_bold", "latent_R2_test_posterior", "latent_D_stsp", "latent_D_H", "train_seconds")
    summary = {k2: {k: spread([r[k] for r in runs if r["model"] == k2]) for k in keys} for k2 in ("fmri", "gaussian")}
    return {"benchmark": "vi_fmri",
            "description": ("latent Lorenz-63 (standardised, dt per TR sample = fmri_dt) convolved with the canonical "
                            "HRF (vi.hrf_spm, TR 0.5 s) with its full history, standardised, read out by a random "
                            "linear map to N regions, standardised, plus Gaussian noise; cut into short series, split "
                            "at random into training and held-out series. VI with several series, the fMRI (HRF) "
                            "observation model vs a plain Gaussian one on the same BOLD. Scores per model: its own "
                            "generative BOLD (free run of t0 + L steps from the first test posterior mean, t0 = max(0.25 L, HRF "
                            "length) dropped; "
                            "HRF * z then B for fmri, B z for gaussian) against the held-out BOLD (D_stsp pooled over "
                            "the test series, D_H averaged), and the latent geometry (affine map fitted on the training "
                            "posterior means to the true path)."),
            "settings": {"TR": TR, "fmri_dt": dt, "N": N, "noise_std": noise, "L": L, "n_train": n_train,
                         "n_test": n_test, "epochs": epochs, "batches_per_epoch": 50, "seeds": seeds, "vi": vi_cfg,
                         "sigma_z_init": SIGMA_Z0,
                         "threads": args.threads[0], "quick": quick},
            "runs": runs, "summary": summary}


def table_fmri(out: dict) -> str:
    s = out["summary"]
    lines = ["| observation model | BOLD D_stsp | BOLD D_H | latent R² (posterior) | latent D_stsp | latent D_H | train s |",
             "|---|--:|--:|--:|--:|--:|--:|"]
    for kind, label in (("fmri", "fMRI (HRF)"), ("gaussian", "plain Gaussian")):
        v = s[kind]
        lines.append(f"| {label} | {cell(v['D_stsp_bold'])} | {cell(v['D_H_bold'])} | {cell(v['latent_R2_test_posterior'])} "
                     f"| {cell(v['latent_D_stsp'])} | {cell(v['latent_D_H'])} | {cell(v['train_seconds'], '{:.0f}')} |")
    st = out["settings"]
    return "\n".join(lines) + (f"\n\n(median [min, max] over seeds {st['seeds']}; {st['n_train']} training and "
                               f"{st['n_test']} test series of {st['L']} samples, {st['epochs']} epochs)")


# ---- main --------------------------------------------------------------------------------------------
BENCHMARKS = {"throughput": (bench_throughput, table_throughput), "lorenz63": (bench_lorenz63, table_lorenz63),
              "multimodal": (bench_multimodal, table_multimodal), "fmri": (bench_fmri, table_fmri)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("benchmark", choices=[*BENCHMARKS, "all"])
    p.add_argument("--quick", action="store_true", help="smoke sizes (all four in < 1 minute); results *_quick.json")
    p.add_argument("--threads", type=int, nargs="+", default=[1],
                   help="native threads (throughput: each count; the others: the first)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--seed", type=int, default=0, help="throughput: data and parameters")
    p.add_argument("--budget", type=float, default=3.0, help="throughput: timed seconds per configuration")
    p.add_argument("--epochs", type=int, default=None,
                   help="lorenz63: BPTT epochs (default 2000; VI gets the same wall time); multimodal/fmri: VI epochs")
    p.add_argument("--encoder-hidden", type=int, default=0, help="VI encoder hidden units (0: linear)")
    p.add_argument("--vi-init", choices=("library", "identity"), default="library",
                   help="lorenz63: VI's initial generative parameters (see LORENZ_INIT)")
    p.add_argument("--encoder-window", type=int, default=2,
                   help="multimodal: the encoder sees steps t-w .. t+w (the trainer's default w=2)")
    p.add_argument("--conditions", nargs="+", default=["gaussian", "all"], choices=list(CONDITIONS))
    p.add_argument("--T-train", type=int, default=20_000, help="multimodal: training steps")
    p.add_argument("--T-test", type=int, default=20_000, help="multimodal: test steps")
    p.add_argument("--n-train", type=int, default=30, help="fmri: training series")
    p.add_argument("--n-test", type=int, default=10, help="fmri: test series")
    p.add_argument("--fmri-dt", type=float, default=0.02, help="fmri: Lorenz-63 time per TR sample")
    p.add_argument("--output", type=Path, default=None, help="JSON path (one benchmark only)")
    args = p.parse_args(argv)
    names = list(BENCHMARKS) if args.benchmark == "all" else [args.benchmark]
    status = 0
    for name in names:
        fn, table = BENCHMARKS[name]
        t0 = time.perf_counter()
        info = machine(args.threads[0] if name != "throughput" else max(args.threads))
        out = fn(args)
        out["command"] = ["benchmarks/vi.py", *(argv if argv is not None else sys.argv[1:])]
        out["machine"] = info
        out["wall_seconds"] = time.perf_counter() - t0
        try:
            out["machine"]["loadavg_at_end"] = list(os.getloadavg())
        except OSError:
            pass
        write(name, out, args.quick, args.output if len(names) == 1 else None)
        print(f"\n### vi {name}{' (quick)' if args.quick else ''}\n")
        print(table(out))
        print(f"\n(wall {out['wall_seconds']:.0f} s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
