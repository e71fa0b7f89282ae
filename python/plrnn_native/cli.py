"""The ``plrnn`` command: generate data, train, evaluate and analyse reconstructions.

    plrnn train --system lorenz63 --out runs/lorenz63          # built-in data, default config
    plrnn train my_config.toml --set train.epochs=500           # a TOML config, with overrides
    plrnn evaluate runs/lorenz63                                 # metrics.json and plots again
    plrnn analyze runs/lorenz63                                  # fixed points, stability, Lyapunov spectrum
    plrnn generate lorenz96 --set N=20 --out l96.npy             # a benchmark data set

A run folder holds ``config.toml`` (the resolved configuration), ``model.npz`` (the parameters
selected by validation, see ``run.select_every``), ``best.npz``/``selection.json`` (the selection so
far), ``checkpoint.npz`` (the last training state, to resume), ``history.csv``/``.json``,
``metrics.json`` and ``plots/*.png``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from . import set_num_threads
from .models import PLRNN, load
from .training import BestModelSelector, TrainConfig, Trainer, write_history

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

#: The configuration a run starts from; a TOML file and ``--set`` override it key by key.
DEFAULTS: Dict[str, Dict[str, Any]] = {
    "data": {"system": "lorenz63", "T": 100_000, "dt": 0.01, "obs_noise": 0.01, "seed": 0,
             "test_T": 100_000, "test_fraction": 0.2},
    "model": {"kind": "shallow", "M": 3, "hidden": 100, "clipped": False, "dtype": "float32", "seed": 0},
    "train": {"epochs": 2000, "batches_per_epoch": 50, "seq_len": 200, "batch_size": 16,
              "forcing": "sparse", "tau": 25, "lr": 1e-3, "lr_end": 1e-4, "grad_clip": 10.0, "seed": 0},
    "evaluate": {"gen_factor": 1.25, "transient_fraction": 0.25, "pe_steps": 20, "seed": 0,
                 "max_test_steps": 0, "lyapunov_steps": 50_000},
    # select_every: every this many epochs score the free run against the last validation_steps of
    # the training data and keep the best parameters as model.npz (0: keep the last)
    "run": {"threads": 0, "checkpoint_every": 25, "select_every": 50, "validation_steps": 20_000},
}


# ---- configuration ------------------------------------------------------------------------------
def _parse_value(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def resolve_config(path: Optional[str], overrides: List[str], base: Optional[dict] = None,
                   flags: Optional[Callable[[dict], None]] = None) -> dict:
    """The configuration of a run, by increasing precedence: DEFAULTS (or ``base``), the TOML file
    at ``path``, command-line ``flags`` (a function editing the dict), ``section.key=value`` overrides."""
    cfg = copy.deepcopy(base if base is not None else DEFAULTS)
    file_cfg = {}
    if path:
        with open(path, "rb") as f:
            file_cfg = tomllib.load(f)
        _merge(cfg, file_cfg, path)
    if flags is not None:
        flags(cfg)
    user_model_keys = set()
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise SystemExit(f"--set {item!r}: expected section.key=value, e.g. train.epochs=500")
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        cfg.setdefault(section, {})[name] = _parse_value(value)
        if section == "model":
            user_model_keys.add(name)
    if path:
        user_model_keys |= set(file_cfg.get("model", {}))
    _drop_foreign_defaults(cfg.get("model", {}), user_model_keys)
    return cfg


# The keys only some kinds have: a default for one kind must not leak into a model of another.
_KIND_KEYS = {"hidden": ("shallow",), "bases": ("dendritic",), "P": ("alrnn",), "clipped": ("dendritic", "shallow")}


def _drop_foreign_defaults(model: dict, user_keys: set) -> None:
    kind = model.get("kind")
    for key, kinds in _KIND_KEYS.items():
        if key in model and kind not in kinds and key not in user_keys:
            del model[key]


def _merge(cfg: dict, new: dict, where: str) -> None:
    for section, values in new.items():
        if not isinstance(values, dict):
            raise SystemExit(f"{where}: top-level key {section!r} must be a [section]")
        cfg.setdefault(section, {}).update(values)


def write_toml(cfg: dict, path: str) -> None:
    """Writes a two-level configuration (sections of scalars and lists) as TOML."""
    def fmt(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(fmt(u) for u in v) + "]"
        if isinstance(v, float):
            return repr(v)
        return str(v)

    lines = []
    for section, values in cfg.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {fmt(v)}" for k, v in values.items() if v is not None]
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


# ---- data -----------------------------------------------------------------------------------------
def load_data(cfg: dict):
    """(train, test) TimeSeries from the [data] section.

    A built-in system with ``test_T`` gets a separate test trajectory of that length (seed
    ``seed + 1``, standardised with the training data's mean and std): occupation-measure metrics
    need long test sets (two independent 2e4-step stretches of Lorenz-63 differ by D_stsp ~ 0.18,
    1e5-step ones by ~ 0.06). Otherwise the last ``test_fraction`` of the series is the test set.
    """
    from dataclasses import replace

    from . import data as data_mod

    d = dict(cfg["data"])
    test_fraction = float(d.pop("test_fraction", 0.2))
    test_T = int(d.pop("test_T", 0) or 0)
    path = d.pop("path", None)
    system = d.pop("system", None)
    if path:
        ts = data_mod.load_timeseries(path, dt=float(d.get("dt", 1.0)))
    elif system:
        ts = data_mod.make(system, **d)
        if test_T:
            test = data_mod.make(system, **{**d, "T": test_T, "seed": int(d.get("seed", 0)) + 1})
            if ts.mean is not None and test.mean is not None:  # the training data's standardisation
                raw = test.x * test.std + test.mean
                test = replace(test, x=(raw - ts.mean) / ts.std, mean=ts.mean, std=ts.std)
            return ts, test
    else:
        raise SystemExit("[data]: give a built-in `system` or a `path` to your .npy/.csv data")
    return ts.split(1.0 - test_fraction)


def _threads(cfg: dict) -> None:
    n = int(cfg["run"].get("threads", 0))
    set_num_threads(n if n > 0 else max(1, os.cpu_count() or 1))


# ---- commands ---------------------------------------------------------------------------------
def cmd_train(args) -> int:
    if args.resume:
        cfg = resolve_config(None, args.set, base=_read_run_config(args.resume))
        out = args.resume
    else:
        def flags(cfg: dict) -> None:
            if args.system:
                cfg["data"].pop("path", None)
                cfg["data"]["system"] = args.system
            if args.data:  # the user's series: keep only what applies to a file
                cfg["data"] = {"path": args.data, "dt": cfg["data"].get("dt", 1.0),
                               "test_fraction": cfg["data"].get("test_fraction", 0.2)}
            if args.epochs is not None:
                cfg["train"]["epochs"] = args.epochs

        cfg = resolve_config(args.config, args.set, flags=flags)
        out = args.out or os.path.join("runs", time.strftime("run-%Y%m%d-%H%M%S"))
    _threads(cfg)
    train_ts, test_ts = load_data(cfg)
    os.makedirs(out, exist_ok=True)
    write_toml(cfg, os.path.join(out, "config.toml"))
    checkpoint = os.path.join(out, "checkpoint.npz")
    every = int(cfg["run"].get("checkpoint_every", 0))

    selector = None
    select_every = int(cfg["run"].get("select_every", 0) or 0)
    if select_every:
        n_val = min(int(cfg["run"].get("validation_steps", 20_000)), train_ts.x.shape[0])
        selector = BestModelSelector(train_ts.x[-n_val:], every=select_every)
        best_path = os.path.join(out, "best.npz")
        if args.resume and os.path.exists(best_path):  # continue the selection where it stood
            with open(os.path.join(out, "selection.json")) as f:
                state = json.load(f)
            selector.best_score, selector.best_epoch = state["best_score"], state["best_epoch"]
            selector.best_params = dict(load(best_path).items())

    def on_epoch(trainer: Trainer, record: dict) -> None:
        if selector is not None:
            before = selector.best_epoch
            selector(trainer, record)
            if selector.best_epoch != before:
                trainer.model.save(os.path.join(out, "best.npz"))
                _write_json(os.path.join(out, "selection.json"), selector.state())
        if every and trainer.epoch % every == 0:
            trainer.save_checkpoint(checkpoint)
            write_history(trainer.history, out)

    if args.resume and os.path.exists(checkpoint):
        trainer = Trainer.resume(checkpoint, train_ts.x, train_ts.s, callback=on_epoch)
        trainer.config = TrainConfig.from_dict({**trainer.config.to_dict(), "epochs": cfg["train"]["epochs"]})
        print(f"resuming {out} at epoch {trainer.epoch}")
    else:
        mcfg = dict(cfg["model"])
        mcfg.setdefault("N", train_ts.x.shape[1])
        if train_ts.s is not None:
            mcfg.setdefault("K", train_ts.s.shape[1])
        model = PLRNN(**mcfg)
        trainer = Trainer(model, train_ts.x, train_ts.s, TrainConfig.from_dict(cfg["train"]), callback=on_epoch)
    print(f"training {trainer.model!r} on {train_ts.name} ({train_ts.x.shape[0]} steps) -> {out}")
    t0 = time.perf_counter()
    result = trainer.train(progress=not args.quiet)
    seconds = time.perf_counter() - t0
    trainer.save_checkpoint(checkpoint)  # the last state, to resume from
    write_history(trainer.history, out)
    print(f"{result.message} in {seconds:.1f} s")
    model = trainer.model.copy()
    if selector is not None and selector.best_params is not None:
        for k, v in selector.best_params.items():
            model[k] = v
        print(f"selected the parameters of epoch {selector.best_epoch} "
              f"(validation D_stsp {selector.best_score:.3f})")
    model.save(os.path.join(out, "model.npz"))
    if result.status != "completed":
        print(f"warning: {result.message}", file=sys.stderr)
    metrics = evaluate_run(out, cfg, model, test_ts, plots=not args.no_plots)
    metrics["train_seconds"] = seconds
    if selector is not None:
        metrics["selected_epoch"] = selector.best_epoch
        metrics["validation_D_stsp"] = selector.best_score
    metrics["status"] = result.status
    _write_json(os.path.join(out, "metrics.json"), metrics)
    _print_metrics(metrics)
    return 0 if result.status == "completed" else 1


def evaluate_run(out: str, cfg: dict, model: PLRNN, test_ts, plots: bool = True) -> dict:
    from . import metrics as metrics_mod
    from . import plots as plots_mod

    ecfg = dict(cfg.get("evaluate", {}))
    max_steps = int(ecfg.pop("max_test_steps", 0) or 0)
    x_test = test_ts.x[:max_steps] if max_steps else test_ts.x
    x_test = np.ascontiguousarray(x_test, dtype=model.dtype)
    result = metrics_mod.evaluate(model, x_test, dt=test_ts.dt, lyapunov_max=test_ts.lyapunov_max, **ecfg)
    if plots and plots_mod.available():
        folder = os.path.join(out, "plots")
        gen = model.generate(len(x_test), x0=x_test[0])
        plots_mod.attractor(x_test, gen, os.path.join(folder, "attractor.png"), title=test_ts.name)
        plots_mod.time_series(x_test, gen, os.path.join(folder, "time_series.png"), dt=test_ts.dt)
        plots_mod.power_spectra(x_test, gen, os.path.join(folder, "power_spectra.png"), dt=test_ts.dt)
        hist = os.path.join(out, "history.json")
        if os.path.exists(hist):
            with open(hist) as f:
                plots_mod.training_curves(json.load(f), os.path.join(folder, "training.png"))
    elif plots:
        print("(plots skipped: matplotlib is not installed)")
    return result


def cmd_evaluate(args) -> int:
    cfg = resolve_config(None, args.set, base=_read_run_config(args.run))
    _threads(cfg)
    model = load(os.path.join(args.run, "model.npz"))
    _, test_ts = load_data(cfg)
    metrics = evaluate_run(args.run, cfg, model, test_ts, plots=not args.no_plots)
    _write_json(os.path.join(args.run, "metrics.json"), metrics)
    _print_metrics(metrics)
    return 0


def cmd_analyze(args) -> int:
    """Fixed points (exact: exhaustive where the regions can be enumerated, else SCYFI) with their
    stability, optionally k-cycles, and the Lyapunov spectrum of a run's model."""
    from . import analysis
    from . import metrics as metrics_mod
    from . import plots as plots_mod

    cfg = _read_run_config(args.run)
    _threads(cfg)
    model = load(os.path.join(args.run, "model.npz"))
    _, test_ts = load_data(cfg)
    x0 = np.ascontiguousarray(test_ts.x[0], dtype=model.dtype)
    dt = test_ts.dt
    spectrum = metrics_mod.lyapunov_spectrum(model, T=args.steps, x0=x0)
    result = {"lyapunov_spectrum_per_step": [float(v) for v in spectrum],
              "lyapunov_spectrum_per_time": [float(v) / dt for v in spectrum], "dt": dt,
              "reference_lyapunov_max": test_ts.lyapunov_max}
    print("Lyapunov spectrum (per unit time):", ", ".join(f"{v / dt:.4f}" for v in spectrum))

    def describe(items):
        return [{"points": np.atleast_2d(getattr(o, "z", getattr(o, "points", None))).tolist(),
                 "stability": o.stability, "spiral": o.spiral,
                 "moduli": np.sort(np.abs(getattr(o, "eigenvalues", getattr(o, "multipliers", None))))[::-1].tolist()}
                for o in items]

    from .piecewise import piecewise_form
    regions = piecewise_form(model).n_regions
    method = "exhaustive" if regions <= args.max_regions else "scyfi"
    fps = analysis.fixed_points(model, method=method, seed=0)
    result["fixed_points"] = {"method": method, "regions": regions, "items": describe(fps.fixed_points),
                              "n_degenerate": fps.n_degenerate}
    print(f"fixed points ({method}, {regions:.3g} regions): {len(fps.fixed_points)}")
    for fp in fps.fixed_points:
        print(f"  {np.array2string(fp.z[:model.N], precision=3)}  {fp.stability}{' spiral' if fp.spiral else ''}")
    for k in args.cycles:
        cyc = analysis.cycles(model, k, method="exhaustive" if regions ** k // k <= args.max_regions else "scyfi", seed=0)
        result[f"cycles_{k}"] = {"method": cyc.method, "items": describe(cyc.cycles)}
        print(f"{k}-cycles ({cyc.method}): {len(cyc.cycles)}")
    _write_json(os.path.join(args.run, "analysis.json"), result)
    if plots_mod.available() and not args.no_plots:
        gen = model.generate(min(len(test_ts.x), 20_000), x0=x0)
        pts = fps.points @ _observation_matrix(model).T if len(fps.fixed_points) else np.zeros((0, model.N))
        labels = [f.stability for f in fps.fixed_points]
        plots_mod.points_over_attractor(gen, pts, os.path.join(args.run, "plots", "fixed_points.png"), labels=labels)
    return 0


def _observation_matrix(model: PLRNN) -> np.ndarray:
    """[N, M] map from latent states to observations."""
    if model.obs == "linear":
        return np.asarray(model["B"], dtype=np.float64)
    return np.eye(model.N, model.M)


def cmd_generate(args) -> int:
    from . import data as data_mod

    kwargs = {}
    for item in args.set:
        key, _, value = item.partition("=")
        kwargs[key] = _parse_value(value)
    ts = data_mod.make(args.system, **kwargs)
    out = args.out or f"{args.system}.npy"
    np.save(out, ts.x)
    if ts.s is not None:
        np.save(os.path.splitext(out)[0] + "_inputs.npy", ts.s)
    print(f"{ts.name}: {ts.x.shape[0]} steps x {ts.x.shape[1]} dims, dt={ts.dt} -> {out}")
    return 0


# ---- helpers --------------------------------------------------------------------------------------
def _read_run_config(run: str) -> dict:
    path = os.path.join(run, "config.toml")
    if not os.path.exists(path):
        raise SystemExit(f"{run}: not a run folder (no config.toml)")
    return resolve_config(path, [], base={})


def _write_json(path: str, obj) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, default=float)


def _print_metrics(metrics: dict) -> None:
    for k, v in metrics.items():
        if isinstance(v, float):
            print(f"  {k:28s} {v:.4g}")
        elif isinstance(v, (int, str, bool)) or v is None:
            print(f"  {k:28s} {v}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="plrnn", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model; writes a run folder")
    p.add_argument("config", nargs="?", help="TOML configuration (sections data, model, train, evaluate, run)")
    p.add_argument("--system", help="built-in data set, e.g. lorenz63 (see `plrnn generate --help`)")
    p.add_argument("--data", help="your own data: a [T, N] .npy or .csv file")
    p.add_argument("--out", help="run folder (default runs/run-<time>)")
    p.add_argument("--epochs", type=int, help="override train.epochs")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a setting")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its checkpoint")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics and plots of a run's model on its test data")
    p.add_argument("run")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("analyze", help="fixed points, cycles and Lyapunov spectrum of a run's model")
    p.add_argument("run")
    p.add_argument("--steps", type=int, default=20_000, help="trajectory length for the spectrum")
    p.add_argument("--cycles", type=int, nargs="*", default=[], metavar="K", help="also find k-cycles")
    p.add_argument("--max-regions", type=float, default=2**24,
                   help="exhaustive search up to this many regions, SCYFI beyond")
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("generate", help="write a benchmark data set to .npy")
    p.add_argument("system")
    p.add_argument("--out")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="generator argument")
    p.set_defaults(func=cmd_generate)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as exc:
        print(f"plrnn {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
