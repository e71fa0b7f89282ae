"""Sweeps over seeds and settings: every (setting, seed) is one ordinary ``plrnn train`` run folder.

    plrnn sweep --system lorenz63 --grid train.tau=10,25,40 --grid model.hidden=50,100 --seeds 5 --out SWEEP
    plrnn sweep my.toml --grid train.lr=1e-3,3e-4 --seeds 3 --out SWEEP --backend ray --address auto

A trial is ``plrnn train`` (the same code path, :func:`plrnn_native.cli.main`) with the setting's
``--set`` overrides, ``model.seed = train.seed = k`` and ``run.threads = 1``, written to
``SWEEP/<setting>/seed<k>/``; its result depends only on its settings and seed (not on the backend,
the number of workers or the order). The sweep writes ``SWEEP/sweep.json`` (what was swept),
``SWEEP/summary.csv``/``.json`` (median and MAD over seeds per setting), ``SWEEP/failures.json`` and
``SWEEP/plots/<key>.png``.

Backends: ``local`` (default) is a process pool on this machine (spawned workers, one native and
one BLAS thread each); ``ray`` runs the trials as Ray tasks on a running cluster (``address``) or on
a local Ray instance. The data of each distinct ``[data]`` section (a grid over ``data.*`` keys makes
several) are loaded once by the driver: the local pool sends them once to each worker, Ray puts
them into the object store once; no trial generates or reads them again (generating the Lorenz-63
preset's 2 x 1e5 steps takes longer than a short training run). Each trial works on its own copy.

Early stopping (``--early-stop``, Ray only): the unfinished trials run as Ray Tune trials under the
ASHA scheduler, each reporting its validation score (D_stsp + D_H, ``run.select_every``) through
:data:`plrnn_native.cli.EPOCH_HOOK`; a trial whose score lags the others' at a rung (after
:data:`GRACE_PERIOD`, 3x, 9x, ... validations) is ended and marked with ``stopped.json`` (no metrics;
skipped on a re-run: delete the marker to train it fully). Which trials are stopped depends on the
order the trials reach the rungs; those that complete are the same as without early stopping.

Resume: running the same sweep again skips trials with a finished ``metrics.json``, continues those
with a ``checkpoint.npz`` (``plrnn train --resume``) and retries failed ones. A different grid, seeds,
configuration or overrides in the same folder are refused (use a new ``--out``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import os
import sys
import time
import traceback
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._io import atomic_write_text
from .runconfig import ConfigError, check_keys, parse_overrides, parse_value

#: Metrics summarised per setting (median and MAD over seeds).
METRICS = ("D_stsp", "D_H", "PE", "lambda_max_model", "train_seconds")
#: Settings each trial sets itself.
TRIAL_KEYS = ("model.seed", "train.seed", "run.threads")
#: One BLAS thread per worker: trials are the unit of parallelism (and results do not depend on it).
THREAD_ENV = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
#: metrics.json status values of a trial that has finished (diverged runs are results too).
FINISHED = ("completed", "diverged")
#: The marker of a trial that early stopping ended (no metrics; skipped when the sweep is re-run).
STOPPED = "stopped.json"
#: Early stopping (ASHA): the first decision after this many validations (run.select_every epochs each).
GRACE_PERIOD = 4

_SHARED: Optional[dict] = None  # a local pool worker's copy of the driver's data
_INTERRUPTED = False  # a local pool worker whose trial was interrupted (Ctrl-C) starts no further one


# ---- the plan ------------------------------------------------------------------------------------
def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parse_grid(items: Union[Sequence[str], Dict[str, Iterable], None]) -> List[Tuple[str, List[str]]]:
    """``["train.tau=10,25", ...]`` or ``{"train.tau": [10, 25]}`` as ``[(key, [value text, ...])]``,
    every key and value checked as ``--set`` would check it."""
    if not items:
        return []
    if isinstance(items, dict):
        pairs = [(str(k), [_text(v) for v in (vals if isinstance(vals, (list, tuple)) else [vals])])
                 for k, vals in items.items()]
    else:
        pairs = []
        for item in items:
            key, sep, rest = str(item).partition("=")
            if not sep or "." not in key:
                raise ConfigError(f"--grid {item!r}: expected section.key=v1,v2,..., e.g. train.tau=10,25,40")
            pairs.append((key, [v.strip() for v in rest.split(",")]))
    seen = set()
    for key, values in pairs:
        if not values or any(v == "" for v in values):
            raise ConfigError(f"--grid {key}: empty value in {','.join(values)!r}; give v1,v2,...")
        if key in seen:
            raise ConfigError(f"--grid {key}: given twice; list all its values in one --grid")
        if key in TRIAL_KEYS:
            raise ConfigError(f"--grid {key}: set by the sweep itself (seeds: --seeds; one thread per trial)")
        if len(set(values)) != len(values):
            raise ConfigError(f"--grid {key}: repeated value in {','.join(values)}")
        seen.add(key)
        section, name = key.split(".", 1)
        check_keys({section: {name: None}}, "--grid")  # unknown keys: ConfigError with a hint
    return pairs


def _seed_list(seeds) -> List[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"--seeds: must be at least 1, got {seeds}")
        return list(range(int(seeds)))
    out = [int(s) for s in seeds]
    if not out or any(s < 0 for s in out) or len(set(out)) != len(out):
        raise ConfigError(f"--seeds: distinct non-negative integers, got {seeds!r}")
    return out


def _slug(grid: List[Tuple[str, List[str]]], values: Tuple[str, ...]) -> str:
    if not grid:
        return "default"
    names = [k.split(".", 1)[1] for k, _ in grid]
    parts = []
    for (key, _), name, value in zip(grid, names, values):
        label = key if names.count(name) > 1 else name
        parts.append(f"{label}={value}".replace(os.sep, "-"))
    return ",".join(parts)


def _settings(grid) -> List[Dict[str, str]]:
    keys = [k for k, _ in grid]
    return [dict(zip(keys, combo)) for combo in itertools.product(*[v for _, v in grid])]


# ---- one trial -----------------------------------------------------------------------------------
def _data_key(section: dict) -> str:
    return json.dumps(section, sort_keys=True, default=str)


@contextlib.contextmanager
def _preloaded(data: Optional[dict]):
    """While active, ``cli.load_data`` answers from ``data`` ({data key: (train, test)}) when the
    run's ``[data]`` section is one of those (private, writable copies of the shared arrays)."""
    from . import cli

    if not data:
        yield
        return
    original = cli.load_data

    def load(cfg):
        found = data.get(_data_key(cfg["data"]))
        if found is None:
            return original(cfg)
        from dataclasses import replace

        return tuple([replace(ts, x=np.array(ts.x), s=None if ts.s is None else np.array(ts.s)) for ts in part]
                     for part in found)

    cli.load_data = load
    try:
        yield
    finally:
        cli.load_data = original


def _read_metrics(folder: str) -> Optional[dict]:
    try:
        with open(os.path.join(folder, "metrics.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def run_trial(trial: dict, data: Optional[dict] = None) -> dict:
    """Runs (or resumes, or skips) one trial; never raises. ``trial``: ``folder``, ``argv`` (the
    ``plrnn train`` arguments less ``--out``). Returns ``{"status", "action", "metrics", "error",
    "seconds"}``; the trial's output goes to ``folder/train.log``."""
    global _INTERRUPTED
    from . import cli

    data = _SHARED if data is None else data
    folder = trial["folder"]
    t0 = time.perf_counter()
    if _INTERRUPTED:
        return {"status": "failed", "action": "interrupted", "metrics": None, "error": "interrupted", "seconds": 0.0}
    metrics = _read_metrics(folder)
    if metrics is not None and metrics.get("status") in FINISHED:
        return {"status": metrics["status"], "action": "skipped", "metrics": metrics, "error": None, "seconds": 0.0}
    if os.path.isfile(os.path.join(folder, STOPPED)):
        return {"status": "stopped", "action": "skipped", "metrics": None, "error": None, "seconds": 0.0}
    os.makedirs(folder, exist_ok=True)
    if os.path.isfile(os.path.join(folder, "checkpoint.npz")) and os.path.isfile(os.path.join(folder, "config.toml")):
        action, argv = "resumed", ["train", "--resume", folder, "--quiet"] + (["--no-plots"] if trial["no_plots"] else [])
    else:
        action, argv = "trained", trial["argv"] + ["--out", folder]
    log = io.StringIO()
    error = None
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), _preloaded(data):
            code = cli.main(argv)
    except BaseException as exc:  # noqa: BLE001 - a trial's failure is recorded, the sweep goes on
        code = None
        error = f"{type(exc).__name__}: {exc}"
        log.write(traceback.format_exc())
    if code == 130 and _SHARED is not None:  # Ctrl-C reached this pool worker: it is winding down
        _INTERRUPTED = True
    with open(os.path.join(folder, "train.log"), "a") as f:
        f.write(log.getvalue())
    metrics = _read_metrics(folder)
    if metrics is None or metrics.get("status") not in FINISHED:
        if error is None:
            lines = [ln for ln in log.getvalue().splitlines() if ln.strip()]
            error = lines[-1] if lines else f"plrnn train exited with status {code}"
        return {"status": "failed", "action": action, "metrics": None, "error": error,
                "seconds": time.perf_counter() - t0}
    return {"status": metrics["status"], "action": action, "metrics": metrics, "error": None,
            "seconds": time.perf_counter() - t0}


# ---- backends ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _thread_env():
    saved = {k: os.environ.get(k) for k in THREAD_ENV}
    os.environ.update(THREAD_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _init_worker(shared: dict) -> None:
    global _SHARED
    _SHARED = shared


def _run_local(trials: List[dict], jobs: int, data_of, report) -> List[dict]:
    import concurrent.futures as cf
    import multiprocessing

    results: List[Optional[dict]] = [None] * len(trials)
    shared = _shared_data(trials, data_of)  # loaded once here, sent once to each worker
    with _thread_env(), cf.ProcessPoolExecutor(max_workers=min(jobs, len(trials)),
                                               mp_context=multiprocessing.get_context("spawn"),
                                               initializer=_init_worker, initargs=(shared,)) as pool:
        futures = {pool.submit(run_trial, t): i for i, t in enumerate(trials)}
        try:
            for fut in cf.as_completed(futures):
                i = futures[fut]
                try:
                    results[i] = fut.result()
                except Exception as exc:  # noqa: BLE001 - a worker that died (e.g. killed for memory)
                    results[i] = {"status": "failed", "action": "trained", "metrics": None,
                                  "error": f"worker died: {type(exc).__name__}: {exc}", "seconds": 0.0}
                report(trials[i], results[i])
        except KeyboardInterrupt:  # trials not started are dropped; re-running the sweep resumes
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results  # type: ignore[return-value]


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _shared_data(trials: List[dict], data_of) -> dict:
    """{data key: (train, test)} of every [data] section an unfinished trial needs, each loaded once."""
    shared = {}
    for t in trials:
        finished = (_read_metrics(t["folder"]) or {}).get("status") in FINISHED
        if not finished and t["data_key"] not in shared:
            try:
                shared[t["data_key"]] = data_of(t["data_key"])
            except Exception:  # noqa: BLE001 - bad data settings: its trials fail and are recorded
                shared[t["data_key"]] = None
    return {key: value for key, value in shared.items() if value is not None}


def _run_ray(trials: List[dict], jobs: Optional[int], address: Optional[str], data_of, report) -> List[dict]:
    import ray

    started = _ray_init(jobs, address)
    try:
        # the data of each distinct [data] section: loaded once here, put into the object store once
        refs = {key: ray.put({key: value}) for key, value in _shared_data(trials, data_of).items()}
        remote = ray.remote(num_cpus=1, max_retries=0)(run_trial)
        pending = {remote.remote(t, refs.get(t.get("data_key"))): i for i, t in enumerate(trials)}
        results: List[Optional[dict]] = [None] * len(trials)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(done[0])
            try:
                results[i] = ray.get(done[0])
            except Exception as exc:  # noqa: BLE001 - a worker that died
                results[i] = {"status": "failed", "action": "trained", "metrics": None,
                              "error": f"Ray task failed: {type(exc).__name__}: {exc}", "seconds": 0.0}
            report(trials[i], results[i])
        return results  # type: ignore[return-value]
    finally:
        if started:
            ray.shutdown()


def _ray_init(jobs: Optional[int], address: Optional[str]) -> bool:
    """Connects to the cluster at ``address`` or starts a local instance; whether it did."""
    import ray

    started = not ray.is_initialized()
    if started:
        kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False,
                      runtime_env={"env_vars": dict(THREAD_ENV)})
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=jobs or os.cpu_count() or 1, **kwargs)
    return started


def _tune_trial(config: dict, shared: Optional[dict] = None) -> None:
    """A Ray Tune trial: :func:`run_trial`, reporting every validation score of ``plrnn train`` (the
    model selection's D_stsp + D_H) to the scheduler; its outcome goes to ``folder/trial.json`` (an
    early-stopped trial writes none)."""
    from ray import tune

    from . import cli

    stopped = {}

    def hook(trainer, record):
        if record.get("val_score") is not None:
            try:
                tune.report({"val_score": float(record["val_score"]), "epoch": trainer.epoch})
            except SystemExit:  # how Tune ends a trial that its scheduler stops
                stopped.update(epoch=trainer.epoch, val_score=float(record["val_score"]))
                raise

    trial = config["trial"]
    cli.EPOCH_HOOK = hook
    try:
        result = run_trial(trial, shared)
    finally:
        cli.EPOCH_HOOK = None
    if stopped:
        with open(os.path.join(trial["folder"], STOPPED), "w") as f:
            json.dump({"status": "stopped", "by": "ASHA", **stopped}, f)
        return
    with open(os.path.join(trial["folder"], "trial.json"), "w") as f:
        json.dump({k: v for k, v in result.items() if k != "metrics"}, f)


def _run_tune(trials: List[dict], jobs: Optional[int], address: Optional[str], data_of, report,
              out: str) -> List[dict]:
    """The unfinished trials as Ray Tune trials under ASHA (metric: the validation score D_stsp + D_H,
    lower is better): settings behind the others at a rung are stopped and marked with ``stopped.json``."""
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    results: List[Optional[dict]] = [None] * len(trials)
    todo = []
    for i, t in enumerate(trials):
        r = run_trial(t) if _finished(t["folder"]) else None  # skipped: finished or stopped before
        if r is not None:
            results[i] = r
            report(t, r)
        else:
            todo.append(i)
    if todo:
        started = _ray_init(jobs, address)
        try:
            for i in todo:  # an outcome of an earlier, interrupted attempt is not this one's
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(trials[i]["folder"], "trial.json"))
            by_folder = {}
            trainable = tune.with_parameters(_tune_trial, shared=_shared_data([trials[i] for i in todo], data_of))
            scheduler = ASHAScheduler(metric="val_score", mode="min", time_attr="training_iteration",
                                      grace_period=GRACE_PERIOD, reduction_factor=3, max_t=10**6)
            tuner = tune.Tuner(trainable, param_space={"trial": tune.grid_search([trials[i] for i in todo])},
                               tune_config=tune.TuneConfig(scheduler=scheduler, num_samples=1),
                               run_config=tune.RunConfig(storage_path=os.path.abspath(os.path.join(out, ".tune")),
                                                         verbose=0))
            for res in tuner.fit():
                by_folder[res.config["trial"]["folder"]] = res
            for i in todo:
                folder = trials[i]["folder"]
                res = by_folder.get(folder)
                path = os.path.join(folder, "trial.json")
                if os.path.isfile(os.path.join(folder, STOPPED)):
                    r = {"status": "stopped", "action": "stopped", "metrics": None, "error": None, "seconds": 0.0}
                elif os.path.isfile(path):
                    with open(path) as f:
                        r = json.load(f)
                    r["metrics"] = _read_metrics(folder)
                else:
                    error = res.error if res is not None else None
                    r = {"status": "failed", "action": "trained", "metrics": None, "seconds": 0.0,
                         "error": f"Ray Tune trial failed: {type(error).__name__}: {error}"}
                results[i] = r
                report(trials[i], r)
        finally:
            if started:
                ray.shutdown()
    return results  # type: ignore[return-value]


def _finished(folder: str) -> bool:
    return ((_read_metrics(folder) or {}).get("status") in FINISHED
            or os.path.isfile(os.path.join(folder, STOPPED)))


# ---- summary -------------------------------------------------------------------------------------
def _median_mad(values: List[float]) -> Tuple[Optional[float], Optional[float]]:
    vals = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if not vals.size:
        return None, None
    med = float(np.median(vals))
    return med, float(np.median(np.abs(vals - med)))


def summarize(grid, settings: List[Dict[str, str]], seeds: List[int], results: Dict[Tuple[int, int], dict]) -> List[dict]:
    """One row per setting: its values, counts and median/MAD over seeds of :data:`METRICS`,
    ranked by median D_stsp (settings without one last)."""
    rows = []
    for si, setting in enumerate(settings):
        rs = [results[(si, k)] for k in seeds]
        row = {"setting": _slug(grid, tuple(setting.values())), **{k: parse_value(v) for k, v in setting.items()},
               "trials": len(rs), "completed": sum(r["status"] == "completed" for r in rs),
               "diverged": sum(r["status"] == "diverged" for r in rs),
               "stopped": sum(r["status"] == "stopped" for r in rs),
               "failed": sum(r["status"] == "failed" for r in rs)}
        for m in METRICS:
            row[f"{m}_median"], row[f"{m}_mad"] = _median_mad([(r["metrics"] or {}).get(m) for r in rs])
        rows.append(row)
    rows.sort(key=lambda r: (r["D_stsp_median"] is None, r["D_stsp_median"] or 0.0))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


def _write_summary(out: str, rows: List[dict]) -> None:
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(rows, f, indent=1)
    fields = list(rows[0]) if rows else []
    with open(os.path.join(out, "summary.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})


def format_table(rows: List[dict]) -> str:
    def num(v):
        return "-" if v is None else f"{v:.3g}"

    head = f"{'rank':>4}  {'setting':30s} {'ok/n':>5}  {'D_stsp':>15}  {'D_H':>15}  {'PE':>15}  {'lambda_max':>15}  {'seconds':>8}"
    lines = [head]
    for r in rows:
        cells = [f"{num(r[f'{m}_median'])} ± {num(r[f'{m}_mad'])}" for m in ("D_stsp", "D_H", "PE", "lambda_max_model")]
        lines.append(f"{r['rank']:>4}  {r['setting'][:30]:30s} {r['completed'] + r['diverged']:>2}/{r['trials']:<2}  "
                     + "  ".join(f"{c:>15}" for c in cells) + f"  {num(r['train_seconds_median']):>8}")
    return "\n".join(lines)


def _plot(out: str, grid, settings, seeds, results) -> List[str]:
    from . import plots as plots_mod

    if not grid or not plots_mod.available():
        return []
    plt = plots_mod._pyplot()
    written = []
    shown = ("D_stsp", "D_H", "PE")
    for gi, (key, values) in enumerate(grid):
        numeric = all(isinstance(parse_value(v), (int, float)) and not isinstance(parse_value(v), bool) for v in values)
        xs_of = {v: (float(parse_value(v)) if numeric else j) for j, v in enumerate(values)}
        fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.4))
        for ax, m in zip(axes, shown):
            others: Dict[tuple, List[Tuple[float, float]]] = {}
            for si, setting in enumerate(settings):
                vals = [(results[(si, k)]["metrics"] or {}).get(m) for k in seeds]
                vals = [v for v in vals if v is not None and np.isfinite(v)]
                x = xs_of[setting[key]]
                ax.plot([x] * len(vals), vals, ".", color="0.6", ms=4)
                if vals:
                    rest = tuple(v for k, v in setting.items() if k != key)
                    others.setdefault(rest, []).append((x, float(np.median(vals))))
            for rest, pts in others.items():
                pts.sort()
                label = ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in zip([k for k, _ in grid if k != key], rest))
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=label or "median")
            ax.set_xlabel(key)
            ax.set_ylabel(m)
            if not numeric:
                ax.set_xticks(list(xs_of.values()), list(xs_of))
        if len(others) <= 8:
            axes[0].legend(fontsize=7)
        fig.suptitle(f"median over seeds (points: single seeds) against {key}")
        fig.tight_layout()
        path = os.path.join(out, "plots", f"{key}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


# ---- the sweep -----------------------------------------------------------------------------------
def _check_record(out: str, record: dict) -> None:
    path = os.path.join(out, "sweep.json")
    if os.path.isfile(path):
        with open(path) as f:
            old = json.load(f)
        for field in ("grid", "seeds", "base"):
            if old.get(field) != record[field]:
                raise ConfigError(f"--out {out}: holds a sweep with a different {field} "
                                  f"({json.dumps(old.get(field))}); re-run it as it was to resume, "
                                  "or give a new --out")
    os.makedirs(out, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1))


def sweep(config: Optional[str] = None, grid=None, seeds=3, out: str = "sweep", backend: str = "local",
          jobs: Optional[int] = None, address: Optional[str] = None, overrides: Sequence[str] = (),
          system: Optional[str] = None, data: Optional[Sequence[str]] = None, plots: bool = False,
          quiet: bool = False, early_stop: bool = False) -> List[dict]:
    """Runs every (setting, seed) of ``grid`` (``{"train.tau": [10, 25]}`` or ``["train.tau=10,25"]``)
    times ``seeds`` (a count: seeds 0..n-1, or a list) as ``plrnn train`` runs under ``out``; returns
    the ranked summary rows (also in ``out/summary.json``). ``config``, ``system``, ``data`` and
    ``overrides`` are those of ``plrnn train``; ``plots``: the per-trial plots too; ``early_stop``
    (Ray only): Ray Tune's ASHA stops trials whose validation score (D_stsp + D_H) lags the others'."""
    from . import cli, runconfig

    gridl = parse_grid(grid)
    seed_list = _seed_list(seeds)
    if backend not in ("local", "ray"):
        raise ConfigError(f"--backend: 'local' or 'ray', got {backend!r}")
    if jobs is not None and (isinstance(jobs, bool) or int(jobs) != jobs or jobs < 1):
        raise ConfigError(f"--jobs: must be an integer >= 1, got {jobs}")
    if backend == "ray" and not ray_available():
        raise ConfigError('--backend ray: Ray is not installed; pip install "plrnn_native[ray]" (or "ray[tune]")')
    if early_stop and backend != "ray":
        raise ConfigError("--early-stop: goes with --backend ray (Ray Tune's ASHA scheduler)")
    if early_stop:
        try:
            import ray.tune  # noqa: F401
        except ImportError:
            raise ConfigError('--early-stop: needs Ray Tune; pip install "plrnn_native[ray]" (or "ray[tune]")') from None
    if address and backend != "ray":
        raise ConfigError("--address: goes with --backend ray")
    if system and data:
        raise ConfigError("--system, --data: give a built-in system or your own data, not both")
    overrides = list(overrides)
    parse_overrides(overrides)
    for key in [i.split("=", 1)[0] for i in overrides]:
        if key in TRIAL_KEYS:
            raise ConfigError(f"--set {key}: set by the sweep itself (seeds: --seeds; one thread per trial)")
        if key in dict(gridl):
            raise ConfigError(f"--set {key}: also swept by --grid; give it in one place")
    data = [os.path.abspath(p) for p in data] if data else None
    config = os.path.abspath(config) if config else None

    base = ["train"] + ([config] if config else []) + (["--system", system] if system else []) \
        + (["--data", *data] if data else [])
    for item in overrides:
        base += ["--set", item]
    settings = _settings(gridl)

    def flags(given):
        if system:
            given["data"].pop("path", None)
            given["data"]["system"] = system
        if data:
            given["data"].pop("system", None)
            given["data"]["path"] = data if len(data) > 1 else data[0]

    # every setting resolves (unknown keys, bad TOML: refused before anything runs); its [data] section
    data_keys, data_cfg = [], {}
    for setting in settings:
        run = runconfig.resolve(config, overrides + [f"{k}={v}" for k, v in setting.items()], flags=flags)
        key = _data_key(run.cfg["data"])
        data_keys.append(key)
        data_cfg[key] = run.cfg
    _check_record(out, {"base": base[1:], "grid": [[k, v] for k, v in gridl], "seeds": seed_list,
                        "backend": backend, "jobs": jobs})
    trials = []
    for si, setting in enumerate(settings):
        argv = list(base)
        for k, v in setting.items():
            argv += ["--set", f"{k}={v}"]
        for k in seed_list:
            folder = os.path.join(out, _slug(gridl, tuple(setting.values())), f"seed{k}")
            seeded = ["--set", f"model.seed={k}", "--set", f"train.seed={k}", "--set", "run.threads=1", "--quiet"]
            trials.append({"setting": si, "seed": k, "data_key": data_keys[si], "folder": os.path.abspath(folder),
                           "argv": argv + seeded + ([] if plots else ["--no-plots"]), "no_plots": not plots})
    done = [0]

    def report(trial, result):
        done[0] += 1
        if quiet:
            return
        value = (result["metrics"] or {}).get("D_stsp")
        what = f"error: {result['error']}" if result["status"] == "failed" else \
            f"D_stsp {value:.3g}" if isinstance(value, float) else ""
        print(f"[{done[0]}/{len(trials)}] {os.path.relpath(trial['folder'], out)}: {result['action']}, "
              f"{result['status']} {what} ({result['seconds']:.1f} s)", flush=True)

    t0 = time.perf_counter()
    n_jobs = jobs or os.cpu_count() or 1
    if early_stop:
        results_list = _run_tune(trials, jobs, address, lambda key: cli.load_data(data_cfg[key]), report, out)
    elif backend == "ray":
        results_list = _run_ray(trials, jobs, address, lambda key: cli.load_data(data_cfg[key]), report)
    else:
        results_list = _run_local(trials, n_jobs, lambda key: cli.load_data(data_cfg[key]), report)
    wall = time.perf_counter() - t0
    results = {(t["setting"], t["seed"]): r for t, r in zip(trials, results_list)}
    failures = [{"folder": os.path.relpath(t["folder"], out), "error": r["error"]}
                for t, r in zip(trials, results_list) if r["status"] == "failed"]
    with open(os.path.join(out, "failures.json"), "w") as f:
        json.dump(failures, f, indent=1)
    rows = summarize(gridl, settings, seed_list, results)
    _write_summary(out, rows)
    _plot(out, gridl, settings, seed_list, results)
    if not quiet:
        print(format_table(rows))
        actions = {a: sum(r["action"] == a for r in results_list) for a in ("trained", "resumed", "skipped", "stopped")}
        print(f"{len(trials)} trials ({', '.join(f'{n} {a}' for a, n in actions.items())}), "
              f"{len(failures)} failed, {wall:.1f} s with backend {backend} -> {out}/summary.csv")
        for fail in failures:
            print(f"  failed: {fail['folder']}: {fail['error']}", file=sys.stderr)
    return rows


__all__ = ["METRICS", "format_table", "parse_grid", "run_trial", "summarize", "sweep"]
