"""The ``plrnn`` command: generate data, train, evaluate and analyse reconstructions.

    plrnn train --system lorenz63 --out runs/lorenz63          # built-in data, default config
    plrnn train --data eeg.npy --out runs/eeg                  # your data: settings derived from it
    plrnn train --data trials/ --dry-run                       # the derived settings, nothing trained
    plrnn train my_config.toml --set train.epochs=500           # a TOML config, with overrides
    plrnn evaluate runs/lorenz63                                 # metrics.json and plots again
    plrnn analyze runs/lorenz63                                  # fixed points, stability, Lyapunov spectrum
    plrnn generate lorenz96 --set N=20 --out l96.npy             # a benchmark data set
    plrnn sweep --system lorenz63 --grid train.tau=10,25 --seeds 3 --out sweep   # settings x seeds

A run folder holds ``config.toml`` (the resolved configuration), ``model.npz`` (the parameters
selected by validation, see ``run.select_every``), ``best.npz``/``selection.json`` (the selection so
far), ``checkpoint.npz`` (the last training state, to resume), ``history.csv``/``.json``,
``metrics.json`` and ``plots/*.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import List, Optional

import numpy as np

from . import set_num_threads
from ._io import atomic_write_text
from ._validation import check_int
from .models import PLRNN, load
from .runconfig import DEFAULTS, ConfigError, RunConfig  # noqa: F401  (DEFAULTS: the Lorenz-63 preset)
from . import runconfig
from .selection import SELECTION_RULE
from .training import BestModelSelector, HistoryFiles, TrainConfig, Trainer


class CLIError(Exception):
    """A mistake on the command line: printed as one line, exit status 2."""


#: Called as ``EPOCH_HOOK(trainer, record)`` after every epoch of ``plrnn train`` (after model
#: selection has added ``val_D_stsp``, ``val_D_H`` and ``val_score``); the sweep's early stopping
#: reports through it.
EPOCH_HOOK = None


# ---- data -----------------------------------------------------------------------------------------
#: [data] keys that choose and split the data; the rest are arguments of a built-in system's generator.
_DATA_CHOICE_KEYS = ("system", "path", "inputs", "test_T", "test_fraction", "test_split")


def generator_kwargs(data: dict) -> dict:
    """The settings of a [data] section that go to the built-in system's generator (``data.make``)."""
    return {key: v for key, v in data.items() if key not in _DATA_CHOICE_KEYS}


def load_data(cfg: dict):
    """(train, test) lists of TimeSeries from the [data] section.

    A built-in system with ``test_T`` gets a separate test trajectory of that length (seed
    ``seed + 1``, standardised with the training data's mean and std): occupation-measure metrics
    need long test sets (two independent 2e4-step stretches of Lorenz-63 differ by D_stsp ~ 0.18,
    1e5-step ones by ~ 0.06). The user's files (``path``: one or many, folders, .npz archives;
    :mod:`plrnn_native.recordings`) are split by ``test_split``: whole held-out series or the last
    ``test_fraction`` of each.
    """
    from dataclasses import replace

    from . import data as data_mod
    from . import recordings

    given = cfg["data"]
    d = generator_kwargs(given)
    test_fraction = float(given.get("test_fraction", 0.2))
    test_T = int(given.get("test_T", 0) or 0)
    test_split = given.get("test_split", "auto")
    path = given.get("path")
    inputs = given.get("inputs")
    system = given.get("system")
    if path:
        ignored = sorted(set(d) - {"dt"}) + (["test_T"] if test_T else [])
        if ignored:
            print(f"note: [data] {', '.join(ignored)} apply to built-in systems only; ignored for files",
                  file=sys.stderr)
        series = recordings.load_recordings(path, dt=float(d.get("dt", 1.0)), inputs=inputs)
        return recordings.split_series(series, test_fraction, test_split)
    if inputs:
        raise ConfigError("data.inputs: input files go with your own data (data.path / --data)")
    if not system:
        raise ConfigError("[data]: give a built-in `system` or a `path` to your .npy/.csv/.npz data")
    ts = data_mod.make(system, **d)
    if test_T:
        test = data_mod.make(system, **{**d, "T": test_T, "seed": int(d.get("seed", 0)) + 1})
        if ts.mean is not None and test.mean is not None:  # the training data's standardisation
            raw = test.x * test.std + test.mean
            test = replace(test, x=(raw - ts.mean) / ts.std, mean=ts.mean, std=ts.std)
        return [ts], [test]
    train, test = ts.split(1.0 - test_fraction)
    return [train], [test]


def _threads(cfg: dict) -> None:
    n = int(cfg["run"].get("threads", 0))
    set_num_threads(n if n > 0 else max(1, os.cpu_count() or 1))


def _describe_data(train: list, test: list) -> str:
    lengths = [ts.T for ts in train]
    missing = sum(float(np.isnan(ts.x).sum()) for ts in train + test)
    total = sum(ts.x.size for ts in train + test)
    name = train[0].name if len(train) == 1 else f"{len(train)} series ({train[0].name}, ...)"
    text = (f"{name}: N = {train[0].N}, dt = {train[0].dt}; training {sum(lengths)} steps in {len(train)} "
            f"series (shortest {min(lengths)}), test {sum(ts.T for ts in test)} steps in {len(test)} series")
    if missing:
        text += f"; missing values: {100 * missing / total:.2f} %"
    return text


# ---- commands ---------------------------------------------------------------------------------
def cmd_train(args) -> int:
    """Everything is read and checked (settings, data, the checkpoint on resume) before anything
    is written, so a failing command leaves an existing run folder as it was."""
    if args.resume:
        return _resume(args)

    if args.system and args.data:
        raise CLIError("--system, --data: give a built-in system or your own data, not both")

    def flags(given: dict) -> None:
        if args.system:
            given["data"].pop("path", None)
            given["data"]["system"] = args.system
        if args.data:
            given["data"].pop("system", None)
            given["data"]["path"] = args.data if len(args.data) > 1 else args.data[0]
        if args.inputs:
            given["data"]["inputs"] = args.inputs if len(args.inputs) > 1 else args.inputs[0]
        if args.epochs is not None:
            given["train"]["epochs"] = args.epochs
        if args.method is not None:
            given["train"]["method"] = args.method

    run = runconfig.resolve(args.config, args.set, flags=flags)
    if run.cfg["train"].get("method", "bptt") == "vi":  # the probabilistic PLRNN: plrnn_native.vi_run
        from . import vi_run

        return vi_run.cmd_train(args, run)
    train, test = load_data(run.cfg)
    details = runconfig.derive(run, [ts.x for ts in train])
    model, tcfg, _ = runconfig.build(run, train[0].N, train[0].K)
    summary = _describe_data(train, test)
    if args.dry_run:
        print(summary)
        if details:
            scales = ", ".join(f"x{c['column']}: {c['acf_decay']}/{c['mi_first_min']}" for c in details["columns"])
            print(f"tau per dimension (autocorrelation decay / first mutual-information minimum): {scales}")
        print(runconfig.toml_text(run.cfg, run.notes))
        return 0
    out = args.out or os.path.join("runs", time.strftime("run-%Y%m%d-%H%M%S"))
    _threads(run.cfg)
    trainer = Trainer(model, [ts.x for ts in train], [ts.s for ts in train] if train[0].s is not None else None,
                      tcfg)
    os.makedirs(out, exist_ok=True)
    runconfig.write_toml(run.cfg, os.path.join(out, "config.toml"), run.notes, header=summary)
    return _train(args, out, run.cfg, trainer, train, test)


def _resume(args) -> int:
    out = args.resume
    cfg = runconfig.read_run(out)
    over = runconfig.resume_overrides(args.set + ([f"train.epochs={args.epochs}"] if args.epochs is not None else []))
    if args.config or args.system or args.data or args.inputs:
        raise CLIError("--resume: continues a run with its own data and settings; a config file, "
                       "--system, --data or --inputs cannot be given with it")
    checkpoint = os.path.join(out, "checkpoint.npz")
    if not os.path.isfile(checkpoint):
        raise CLIError(f"{out}: no checkpoint.npz to resume from")
    if cfg["train"].get("method", "bptt") == "vi":
        from . import vi_run

        return vi_run.resume(args, out, cfg, over)
    runconfig.merge(cfg, over)
    train, test = load_data(cfg)
    runconfig.build(RunConfig(cfg, {s: {} for s in cfg}), train[0].N, train[0].K)  # checks the overrides
    trainer = Trainer.resume(checkpoint, [ts.x for ts in train],
                             [ts.s for ts in train] if train[0].s is not None else None)
    merged = {**trainer.config.to_dict(), **over.get("train", {})}
    trainer.config = TrainConfig.from_dict(merged)
    cfg["train"] = {k: v for k, v in merged.items() if k in cfg["train"] or k in over.get("train", {})}
    notes = runconfig.read_notes(os.path.join(out, "config.toml"))  # the reasons of derived settings stay
    notes.update({(sec, k): f"changed on --resume at epoch {trainer.epoch}" for sec, items in over.items()
                  for k in items})
    _threads(cfg)
    runconfig.write_toml(cfg, os.path.join(out, "config.toml"), notes, header=_describe_data(train, test))
    print(f"resuming {out} at epoch {trainer.epoch}")
    return _train(args, out, cfg, trainer, train, test)


def _train(args, out: str, cfg: dict, trainer: Trainer, train: list, test: list) -> int:
    checkpoint = os.path.join(out, "checkpoint.npz")
    every = int(cfg["run"].get("checkpoint_every", 0))
    selector = None
    select_every = int(cfg["run"].get("select_every", 0) or 0)
    if select_every:
        longest = max(train, key=lambda ts: ts.T)
        n_val = min(int(cfg["run"].get("validation_steps", DEFAULTS["run"]["validation_steps"])), longest.T)
        selector = BestModelSelector(longest.x[-n_val:], every=select_every,
                                     s_val=None if longest.s is None else longest.s[-n_val:])
        best_path = os.path.join(out, "best.npz")
        if args.resume and os.path.exists(best_path):  # continue the selection where it stood
            with open(os.path.join(out, "selection.json")) as f:
                state = json.load(f)
            selector.best_score, selector.best_epoch = state["best_score"], state["best_epoch"]
            selector.best_params = dict(load(best_path).items())
            if state.get("rule") != SELECTION_RULE:  # kept under an earlier rule: scored again
                kept = trainer.model.copy()
                selector.restore(kept)
                selector.best_score = selector.score(kept)
                _write_json(os.path.join(out, "selection.json"), selector.state())

    history = HistoryFiles(out)

    def on_epoch(trainer: Trainer, record: dict) -> None:
        if selector is not None:
            before = selector.best_epoch
            selector(trainer, record)
            if selector.best_epoch != before:
                trainer.model.save(os.path.join(out, "best.npz"))
                _write_json(os.path.join(out, "selection.json"), selector.state())
        if every and trainer.epoch % every == 0:
            trainer.save_checkpoint(checkpoint)
            history.write(trainer.history)
        if EPOCH_HOOK is not None:
            EPOCH_HOOK(trainer, record)

    trainer.callback = on_epoch
    missing = f", {100 * trainer.missing_fraction:.2f} % missing" if trainer.missing_fraction else ""
    print(f"training {trainer.model!r} on {train[0].name if len(train) == 1 else f'{len(train)} series'} "
          f"({sum(ts.T for ts in train)} steps{missing}) -> {out}")
    t0 = time.perf_counter()
    result = trainer.train(progress=not args.quiet)
    seconds = time.perf_counter() - t0
    trainer.save_checkpoint(checkpoint)  # the last state, to resume from
    history.write(trainer.history)
    print(f"{result.message} in {seconds:.1f} s")
    model = trainer.model.copy()
    if selector is not None and selector.best_params is not None:
        for k, v in selector.best_params.items():
            model[k] = v
        print(f"selected the parameters of epoch {selector.best_epoch} "
              f"(validation D_stsp + D_H {selector.best_score:.3f})")
    model.save(os.path.join(out, "model.npz"))
    if result.status != "completed":
        print(f"warning: {result.message}", file=sys.stderr)
    metrics = evaluate_run(out, cfg, model, test, plots=not args.no_plots)
    metrics["train_seconds"] = seconds
    metrics["train_missing_fraction"] = trainer.missing_fraction
    if selector is not None:
        metrics["selected_epoch"] = selector.best_epoch
        metrics["validation_score"] = selector.best_score  # selection.SELECTION_RULE
        best = next((r for r in trainer.history
                     if r.get("epoch") == selector.best_epoch and "val_D_stsp" in r), {})
        metrics["validation_D_stsp"] = best.get("val_D_stsp")
        metrics["validation_D_H"] = best.get("val_D_H")
    metrics["status"] = result.status
    _write_json(os.path.join(out, "metrics.json"), metrics)
    _print_metrics(metrics)
    return 0 if result.status == "completed" else 1


def evaluate_run(out: str, cfg: dict, model: PLRNN, test: list, plots: bool = True) -> dict:
    """Metrics (and plots) of ``model`` on the test series (:func:`recordings.evaluate_recordings`)."""
    from . import plots as plots_mod
    from .recordings import evaluate_recordings

    ecfg = dict(cfg.get("evaluate", {}))
    max_steps = int(ecfg.pop("max_test_steps", 0) or 0)
    xs = [np.ascontiguousarray(ts.x[:max_steps] if max_steps else ts.x, dtype=model.dtype) for ts in test]
    first = test[0]
    inputs = None if first.s is None else [ts.s[:len(x)] for ts, x in zip(test, xs)]
    result = evaluate_recordings(model, xs, dt=first.dt, lyapunov_max=first.lyapunov_max, inputs=inputs, **ecfg)
    if plots and plots_mod.available() and model.K == 0:
        folder = os.path.join(out, "plots")
        x_plot = xs[0]
        start = int(np.argmax(~np.isnan(x_plot).any(axis=1)))
        gen = model.generate(len(x_plot) - start, x0=x_plot[start])
        plots_mod.attractor(x_plot[start:], gen, os.path.join(folder, "attractor.png"), title=first.name)
        plots_mod.time_series(x_plot[start:], gen, os.path.join(folder, "time_series.png"), dt=first.dt)
        plots_mod.power_spectra(x_plot[start:], gen, os.path.join(folder, "power_spectra.png"), dt=first.dt)
        hist = os.path.join(out, "history.json")
        if os.path.exists(hist):
            with open(hist) as f:
                plots_mod.training_curves(json.load(f), os.path.join(folder, "training.png"))
    elif plots:
        print("(plots skipped: matplotlib is not installed)")
    return result


def cmd_evaluate(args) -> int:
    cfg = runconfig.read_run(args.run)
    over = runconfig.parse_overrides(args.set)
    for section in over:
        if section != "evaluate":
            raise CLIError(f"--set {section}.*: evaluate takes [evaluate] settings only")
    if cfg["train"].get("method", "bptt") == "vi":
        from . import vi_run

        return vi_run.evaluate_folder(args.run, cfg, over)
    runconfig.merge(cfg, over)
    from .metrics import check_evaluate_args

    check_evaluate_args(**{k: v for k, v in cfg.get("evaluate", {}).items() if k != "max_test_steps"})
    model = _load_run_model(args.run)
    _threads(cfg)
    _, test = load_data(cfg)
    metrics = evaluate_run(args.run, cfg, model, test, plots=not args.no_plots)
    _write_json(os.path.join(args.run, "metrics.json"), metrics)
    _print_metrics(metrics)
    return 0


def cmd_analyze(args) -> int:
    """Fixed points (exact: exhaustive where the regions can be enumerated, else SCYFI) with their
    stability, optionally k-cycles, and the Lyapunov spectrum of a run's model."""
    from . import analysis
    from . import metrics as metrics_mod
    from . import plots as plots_mod

    cfg = runconfig.read_run(args.run)
    check_int("--steps", args.steps, 1)
    for k in args.cycles:
        check_int("--cycles", k, 1)
    if not 1 <= args.max_regions < 2**63:
        raise CLIError(f"--max-regions: must be in [1, 2^63), got {args.max_regions}")
    model = _load_run_model(args.run)
    _threads(cfg)
    _, test = load_data(cfg)
    test_ts = test[0]
    complete = ~np.isnan(test_ts.x).any(axis=1)
    x0 = np.ascontiguousarray(test_ts.x[int(np.argmax(complete))], dtype=model.dtype)
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

    limit = int(args.max_regions)
    regions = analysis.search_size(model)
    method = "exhaustive" if regions <= limit else "scyfi"
    fps = analysis.fixed_points(model, method=method, seed=0, max_regions=limit)
    result["fixed_points"] = {"method": method, "regions": regions if regions < 2**63 else float(regions),
                              "items": describe(fps.fixed_points), "n_degenerate": fps.n_degenerate}
    print(f"fixed points ({method}, {float(regions):.3g} regions): {len(fps.fixed_points)}")
    for fp in fps.fixed_points:
        print(f"  {np.array2string(fp.z[:model.N], precision=3)}  {fp.stability}{' spiral' if fp.spiral else ''}")
    for k in args.cycles:
        exhaustive = analysis.search_size(model, k) <= limit
        cyc = analysis.cycles(model, k, method="exhaustive" if exhaustive else "scyfi", seed=0, max_regions=limit)
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
        kwargs[key] = runconfig.parse_value(value)
    ts = data_mod.make(args.system, **kwargs)
    out = args.out or f"{args.system}.npy"
    np.save(out, ts.x)
    if ts.s is not None:
        np.save(os.path.splitext(out)[0] + "_inputs.npy", ts.s)
    print(f"{ts.name}: {ts.x.shape[0]} steps x {ts.x.shape[1]} dims, dt={ts.dt} -> {out}")
    return 0


def cmd_sweep(args) -> int:
    """Every (setting, seed) as a ``plrnn train`` run folder, and their summary (:mod:`.sweep`)."""
    from .sweep import sweep  # (the package's ``sweep`` is this function, not the module)

    rows = sweep(args.config, grid=args.grid, seeds=args.seeds, out=args.out, backend=args.backend,
                           jobs=args.jobs, address=args.address, overrides=args.set, system=args.system,
                           data=args.data, plots=not args.no_plots, quiet=args.quiet, early_stop=args.early_stop)
    return 0 if all(r["failed"] == 0 for r in rows) else 1


# ---- helpers --------------------------------------------------------------------------------------
def _load_run_model(run: str) -> PLRNN:
    path = os.path.join(run, "model.npz")
    if not os.path.isfile(path):
        raise CLIError(f"{run}: no model.npz (has training finished?)")
    return load(path)


def _write_json(path: str, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, default=float))


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
    p.add_argument("--data", nargs="+", metavar="PATH",
                   help="your own data: [T, N] .npy/.csv files, folders of them or .npz archives; "
                        "several series (trials, subjects) may differ in length; NaN marks missing values")
    p.add_argument("--inputs", nargs="+", metavar="PATH",
                   help="external inputs [T, K], one series per data series, of the same lengths")
    p.add_argument("--dry-run", action="store_true",
                   help="print the data summary and the resolved settings (with the derived ones and why), "
                        "train nothing, write nothing")
    p.add_argument("--out", help="run folder (default runs/run-<time>)")
    p.add_argument("--epochs", type=int, help="override train.epochs")
    p.add_argument("--method", choices=("bptt", "vi"),
                   help="train.method: bptt (teacher-forced BPTT, the default) or vi (variational inference of the "
                        "probabilistic PLRNN with Gaussian, fMRI, Poisson and categorical channels: docs/probabilistic.md)")
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

    p = sub.add_parser("sweep", help="train every (setting, seed) of a grid; a run folder each, and a summary")
    p.add_argument("config", nargs="?", help="TOML configuration, as for train")
    p.add_argument("--system", help="built-in data set, as for train")
    p.add_argument("--data", nargs="+", metavar="PATH", help="your own data, as for train")
    p.add_argument("--grid", action="append", default=[], metavar="SECTION.KEY=V1,V2,...",
                   help="a swept setting and its values (repeat: the grid is their product)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 of every setting (model.seed, train.seed)")
    p.add_argument("--out", default="sweep", help="sweep folder (default sweep); re-run to resume")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: a process pool here; ray: Ray tasks (pip install \"plrnn_native[ray]\")")
    p.add_argument("--jobs", type=int, help="trials at a time (default: the CPU count; ray: local instance's CPUs)")
    p.add_argument("--address", help="with --backend ray: a running Ray cluster (e.g. auto, ray://host:10001)")
    p.add_argument("--early-stop", action="store_true",
                   help="with --backend ray: Ray Tune's ASHA stops trials whose validation D_stsp lags")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="a setting of every trial")
    p.add_argument("--no-plots", action="store_true", help="no per-trial plots (the sweep's plots are still drawn)")
    p.add_argument("--quiet", action="store_true", help="no per-trial lines and table")
    p.set_defaults(func=cmd_sweep)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (CLIError, ValueError, TypeError) as exc:
        print(f"plrnn {args.command}: {exc}", file=sys.stderr)
    except OSError as exc:
        where = exc.filename if exc.filename is not None else ""
        print(f"plrnn {args.command}: {where}{': ' if where else ''}{exc.strerror or exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"plrnn {args.command}: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
