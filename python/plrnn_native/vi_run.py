"""``plrnn train --method vi``: a run of the probabilistic PLRNN (docs/probabilistic.md), trained by
variational inference. The channels' data from the configuration, the trainer, model selection,
checkpoints, evaluation and the run folder; ``plrnn_native.cli`` hands VI runs to this module.

Settings besides those of every run (``[data]``, ``[model]``, ``[train]``, ``[evaluate]``, ``[run]``):

- ``[train] method = "vi"``; of the other ``[train]`` settings VI uses :data:`VI_TRAIN_KEYS` (giving one
  of the rest, e.g. ``tau``, is an error);
- ``[vi]``: the settings of :class:`plrnn_native.vi.VITrainer` (``samples``, ``floor``, ``anneal_start``,
  ``anneal_epochs``, ``encoder_before``, ``encoder_after``, ``encoder_hidden``), defaults as there;
- one section per observation channel, each read like ``data.path`` (a file, a folder, an ``.npz``
  archive: one or many series, NaN missing), with the same number of series of the same lengths as
  every other channel: ``[gaussian] path, regressors``; ``[fmri] path, TR, regressors`` (``TR`` in
  seconds); ``[poisson] path`` (counts); ``[categorical] path, classes`` (labels 0 .. classes-1, NaN or
  -1 missing). ``regressors`` are nuisance regressors ``[T, R]`` of that channel.

The Gaussian channel is ``[gaussian] path`` when given, else the ``[data]`` series (a built-in system or
``data.path``, with its ``data.inputs``) when ``[data]`` names one or no channel file is given. The run
folder holds what a BPTT run's does (``model.npz`` is the latent PLRNN with the Gaussian (or fMRI)
channel's loadings as its linear observation ``B``: ``plrnn analyze``/``generate`` work on it) and
``vi_params.npz`` (every parameter of the selected state: the model's ``model.*``, the generative
``gen.*`` and the encoder's ``enc.*``); ``checkpoint.npz`` is a VITrainer checkpoint.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import runconfig, vi
from .runconfig import ConfigError

#: The ``[train]`` settings a VI run uses (the rest are BPTT's: teacher forcing, the device).
VI_TRAIN_KEYS = ("method", "seq_len", "batch_size", "batches_per_epoch", "epochs", "optimizer", "lr", "lr_end",
                 "betas", "eps", "grad_clip", "mar_weight", "mar_fraction", "mar_select", "seed", "device")
#: The ``[evaluate]`` settings a VI run uses.
VI_EVALUATE_KEYS = ("gen_factor", "transient_fraction", "seed", "max_test_steps", "lyapunov_steps")
#: The keys of each channel's section.
CHANNEL_KEYS = {"gaussian": ("path", "regressors"), "fmri": ("path", "TR", "regressors"), "poisson": ("path",),
                "categorical": ("path", "classes")}
_FROM_TRAIN = {"seq_len", "batch_size", "lr", "lr_end", "grad_clip", "optimizer", "betas", "eps", "seed",
               "mar", "params", "callback", "self", "model", "data", "s", "device"}


def vi_keys() -> Tuple[str, ...]:
    """The ``[vi]`` settings: VITrainer's own arguments (its signature holds their defaults)."""
    return tuple(p for p in inspect.signature(vi.VITrainer.__init__).parameters if p not in _FROM_TRAIN)


def is_vi(cfg: dict) -> bool:
    return cfg.get("train", {}).get("method", "bptt") == "vi"


# ---- data -----------------------------------------------------------------------------------------
def _gaussian_from_data(cfg: dict) -> bool:
    d = cfg["data"]
    return bool(d.get("system") or d.get("path")) and not cfg.get("gaussian", {}).get("path")


def prepare(run: runconfig.RunConfig) -> None:
    """Settles a new VI run's configuration before its data are read: where the Gaussian channel comes
    from (``[data]`` stays only when it supplies it) and the ``[train]`` settings that apply."""
    cfg, given = run.cfg, run.given
    files = [name for name in CHANNEL_KEYS if cfg.get(name, {}).get("path")]
    data_given = bool(given["data"].get("system") or given["data"].get("path"))
    if cfg.get("gaussian", {}).get("path") and given["data"].get("path"):
        raise ConfigError("data.path, gaussian.path: two sources for the Gaussian channel; give one")
    if files and not data_given:  # the channels' files are the data: nothing of the preset applies
        cfg["data"] = {**runconfig.FILE_DATA, **given["data"]}
    if cfg["data"].get("system") and files:
        raise ConfigError(f"[{files[0]}] path: channel files need the Gaussian channel from files too "
                          "(data.path or gaussian.path), not a built-in system, so that their steps align")
    for key in given["train"]:
        if key not in VI_TRAIN_KEYS:
            raise ConfigError(f"train.{key}: does not apply to method 'vi' (VI uses {', '.join(VI_TRAIN_KEYS[1:])})")
    for key in given.get("evaluate", {}):
        if key not in VI_EVALUATE_KEYS:
            raise ConfigError(f"evaluate.{key}: does not apply to method 'vi' ({', '.join(VI_EVALUATE_KEYS)})")


def _load(path, dt: float, zscore: bool, where: str, inputs=None) -> list:
    from . import recordings

    try:
        return recordings.load_recordings(path, dt=dt, inputs=inputs, zscore=zscore)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


class Series:
    """One series of every channel (the VITrainer format, time first), its inputs and provenance."""

    def __init__(self, channels: Dict[str, dict], s: Optional[np.ndarray], name: str, dt: float,
                 lyapunov_max: Optional[float] = None):
        self.channels, self.s, self.name, self.dt, self.lyapunov_max = channels, s, name, dt, lyapunov_max

    @property
    def T(self) -> int:
        obs = next(iter(self.channels.values()))
        return len(obs["c" if "c" in obs else ("q" if "q" in obs else "x")])

    def head(self, n: int) -> "Series":
        """The first ``n`` steps (or all)."""
        cut = {k: {kk: (v if kk in vi._SETTINGS else v[:n]) for kk, v in obs.items()} for k, obs in self.channels.items()}
        return Series(cut, None if self.s is None else self.s[:n], self.name, self.dt, self.lyapunov_max)

    def tail(self, n: int) -> "Series":
        """The last ``n`` steps (or all)."""
        cut = {k: {kk: (v if kk in vi._SETTINGS else v[-n:]) for kk, v in obs.items()} for k, obs in self.channels.items()}
        return Series(cut, None if self.s is None else self.s[-n:], self.name, self.dt, self.lyapunov_max)


def _continuous(x: np.ndarray, r: Optional[np.ndarray] = None, TR=None) -> dict:
    seen = ~np.isnan(x)
    out = {"x": np.where(seen, x, 0.0)}
    if not seen.all():
        out["mask"] = seen
    if r is not None:
        out["r"] = r
    if TR is not None:
        out["TR"] = TR
    return out


def _counts(q: np.ndarray, where: str) -> dict:
    seen = ~np.isnan(q)
    bad = seen & ((q < 0) | (np.floor(q) != q))
    if bad.any():
        t, n = np.argwhere(bad)[0]
        raise ConfigError(f"{where}: counts must be integers >= 0 (NaN: missing); step {t}, column {n} holds {q[t, n]!r}")
    out = {"q": np.where(seen, q, 0.0)}
    if not seen.all():
        out["mask"] = seen
    return out


def _labels(c: np.ndarray, classes: Optional[int], where: str) -> dict:
    if c.shape[1] != 1:
        raise ConfigError(f"{where}: expected one column of class labels, got {c.shape[1]}")
    c = c[:, 0]
    seen = ~np.isnan(c) & (c != -1)
    bad = seen & ((c < 0) | (np.floor(c) != c) | (classes is not None and c >= classes))
    if bad.any():
        t = int(np.argmax(bad))
        span = f"0 .. {classes - 1}" if classes is not None else "0, 1, ..."
        raise ConfigError(f"{where}: class labels must be integers {span} (NaN or -1: missing); step {t} holds {c[t]!r}")
    out = {"c": np.where(seen, c, -1).astype(np.int64)}
    if classes is not None:
        out["classes"] = classes
    return out


def load_series(cfg: dict) -> Tuple[List[Series], List[Series]]:
    """(train, test): every channel of the run's configuration, split alike."""
    from . import recordings
    from .cli import load_data

    d = cfg["data"]
    dt = float(d.get("dt", 1.0))
    if d.get("system"):  # a built-in system: its series is the Gaussian channel
        train, test = load_data(cfg)
        wrap = lambda ts: Series({"gaussian": _continuous(ts.x)}, ts.s, ts.name, ts.dt, ts.lyapunov_max)  # noqa: E731
        return [wrap(ts) for ts in train], [wrap(ts) for ts in test]
    raw: Dict[str, list] = {}
    if _gaussian_from_data(cfg):
        raw["gaussian"] = _load(d["path"], dt, True, "data.path", inputs=d.get("inputs"))
    elif d.get("inputs"):
        raise ConfigError("data.inputs: inputs go with the Gaussian channel from data.path")
    for name, keys in CHANNEL_KEYS.items():
        sec = cfg.get(name, {})
        if sec.get("path"):
            raw[name] = _load(sec["path"], dt, name in ("gaussian", "fmri"), f"{name}.path")
        elif any(k in sec for k in keys if k != "path"):
            raise ConfigError(f"[{name}]: settings without a path ({name}.path)")
    if not raw:
        raise ConfigError("method 'vi': no channel; give data (--system, --data) or a channel's path "
                          "([gaussian], [fmri], [poisson], [categorical])")
    first = next(iter(raw))
    n, lengths = len(raw[first]), [ts.T for ts in raw[first]]
    regressors = {}
    for name in ("gaussian", "fmri"):
        path = cfg.get(name, {}).get("regressors")
        if path and name in raw:
            regressors[name] = _load(path, dt, True, f"{name}.regressors")
    for where, lst in [*((f"[{k}]", v) for k, v in raw.items()), *((f"{k}.regressors", v) for k, v in regressors.items())]:
        if len(lst) != n or [ts.T for ts in lst] != lengths:
            raise ConfigError(f"{where}: {len(lst)} series of lengths {[ts.T for ts in lst][:5]}..., but [{first}] "
                              f"has {n} of lengths {lengths[:5]}...; every channel needs the same series and steps")
    TR = None
    if "fmri" in raw:
        TR = cfg["fmri"].get("TR")
        if TR is None:
            raise ConfigError("fmri.TR: the repetition time in seconds is required")
        try:
            vi.hrf_spm(TR)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"fmri.TR: {exc}") from None
    classes = cfg.get("categorical", {}).get("classes")
    if classes is not None and (isinstance(classes, bool) or not isinstance(classes, int) or classes < 2):
        raise ConfigError(f"categorical.classes: expected an integer >= 2, got {classes!r}")
    split = lambda lst: recordings.split_series(lst, float(d.get("test_fraction", 0.2)), d.get("test_split", "auto"))  # noqa: E731
    try:
        parts = {k: split(v) for k, v in raw.items()}
        reg_parts = {k: split(v) for k, v in regressors.items()}
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[data] {exc}") from None
    out = []
    for half in (0, 1):
        series = []
        for i in range(len(parts[first][half])):
            channels = {}
            for name, p in parts.items():
                arr, where = p[half][i].x, f"{name}.path ({p[half][i].name})"
                reg = reg_parts[name][half][i].x if name in reg_parts else None
                if reg is not None and np.isnan(reg).any():
                    raise ConfigError(f"{name}.regressors: missing values (NaN); regressors must be complete")
                if name == "poisson":
                    channels[name] = _counts(arr, where)
                elif name == "categorical":
                    channels[name] = _labels(arr, classes, where)
                else:
                    channels[name] = _continuous(arr, reg, TR if name == "fmri" else None)
            ts = parts[first][half][i]
            s = parts["gaussian"][half][i].s if "gaussian" in parts else None
            series.append(Series(channels, s, ts.name, dt))
        out.append(series)
    if TR is not None:  # the fMRI channel is scored after the HRF's span: refuse a test set with nothing to score
        tau = len(vi.hrf_spm(TR)) - 1
        short = [ts for ts in out[1] if ts.T <= tau]
        if short:
            raise ConfigError(f"[data] test_fraction/test_split: the test part of {short[0].name} has {short[0].T} steps, "
                              f"no more than the HRF's {tau} (fmri.TR = {TR} s): nothing to score")
    return out[0], out[1]


def _readout(series: Series) -> np.ndarray:
    """The array the settings are derived from: the Gaussian (else fMRI) channel, else the counts'
    log1p, else the labels one-hot (NaN where missing)."""
    ch = series.channels
    for name in ("gaussian", "fmri"):
        if name in ch:
            return np.where(ch[name].get("mask", True), ch[name]["x"], np.nan)
    if "poisson" in ch:
        return np.where(ch["poisson"].get("mask", True), np.log1p(ch["poisson"]["q"]), np.nan)
    return vi.features({"categorical": {"c": ch["categorical"]["c"][None]}})[0]


# ---- trainer --------------------------------------------------------------------------------------
def build(run: runconfig.RunConfig, train: List[Series]):
    """(model, VITrainer) from the resolved configuration: every setting checked, nothing trained."""
    cfg = run.cfg
    readout = next((name for name in ("gaussian", "fmri") if name in train[0].channels), None)
    N = train[0].channels[readout]["x"].shape[1] if readout else 1
    K = 0 if train[0].s is None else train[0].s.shape[1]
    cfg["model"]["obs"] = "linear"  # model.npz observes through the learned loadings B of the readout channel
    run.notes[("model", "obs")] = "VI: the saved model's observation is the learned loadings of the " + (readout or "(no) readout") + " channel"
    model, tcfg, _ = runconfig.build(run, N, K)
    cfg["train"] = {k: v for k, v in cfg["train"].items() if k in VI_TRAIN_KEYS}
    cfg["evaluate"] = {k: v for k, v in cfg["evaluate"].items() if k in VI_EVALUATE_KEYS}
    settings = dict(cfg.get("vi", {}))
    unknown = set(settings) - set(vi_keys())
    if unknown:
        raise ConfigError(f"vi.{sorted(unknown)[0]}: unknown setting ({', '.join(vi_keys())})")
    try:
        trainer = vi.VITrainer(model, [ts.channels for ts in train], s=None if K == 0 else [ts.s for ts in train],
                               seq_len=tcfg.seq_len, batch_size=tcfg.batch_size, lr=tcfg.lr, lr_end=tcfg.lr_end,
                               grad_clip=tcfg.grad_clip, optimizer=tcfg.optimizer, betas=tcfg.betas, eps=tcfg.eps,
                               mar=tcfg.mar(), seed=tcfg.seed, device=tcfg.device, **settings)
    except (TypeError, ValueError) as exc:  # the message names the argument: named here as a setting
        text = str(exc)
        key = text.split(":", 1)[0]
        section = "vi" if key in vi_keys() else ("train" if key in VI_TRAIN_KEYS else None)
        raise ConfigError(f"{section}.{text}" if section else text) from None
    cfg["vi"] = {**_vi_defaults(), **settings}  # all that runs
    return model, trainer, tcfg


def _vi_defaults() -> dict:
    sig = inspect.signature(vi.VITrainer.__init__).parameters
    return {k: sig[k].default for k in vi_keys()}


def saved_model(trainer) -> "object":
    """The latent PLRNN of the trainer's current state, observing through the readout channel's ``B``."""
    model = trainer.model.copy()
    for name in ("gaussian", "fmri"):
        if f"{name}.B" in trainer.params:
            B = np.asarray(trainer.params[f"{name}.B"])
            model["B"] = B.astype(model.dtype)
            model["L"] = np.linalg.pinv(B.astype(np.float64)).astype(model.dtype)
            break
    return model


# ---- commands -------------------------------------------------------------------------------------
def cmd_train(args, run: runconfig.RunConfig) -> int:
    """A new VI run (``plrnn train --method vi``); everything is checked before anything is written."""
    prepare(run)
    train, test = load_series(run.cfg)
    if not run.preset:
        runconfig.derive(run, [_readout(ts) for ts in train])
    model, trainer, tcfg = build(run, train)
    _validation(run.cfg, train)
    summary = _describe(train, test)
    if args.dry_run:
        print(summary)
        print(runconfig.toml_text(run.cfg, run.notes))
        return 0
    out = args.out or os.path.join("runs", time.strftime("run-%Y%m%d-%H%M%S"))
    _threads(run.cfg)
    os.makedirs(out, exist_ok=True)
    runconfig.write_toml(run.cfg, os.path.join(out, "config.toml"), run.notes, header=summary)
    return _train(args, out, run.cfg, trainer, train, test)


def resume(args, out: str, cfg: dict, over: dict) -> int:
    """``plrnn train --resume`` of a VI run: the trainer rebuilt from its settings, the checkpoint loaded,
    the overrides (learning rates, clipping, epochs, MAR, run and evaluate settings) applied."""
    checkpoint = os.path.join(out, "checkpoint.npz")
    for key in over.get("train", {}):
        if key not in VI_TRAIN_KEYS:
            raise ConfigError(f"train.{key}: does not apply to method 'vi'")
    runconfig.merge(cfg, over)
    run = runconfig.RunConfig(cfg, {s: {} for s in cfg})
    train, test = load_series(cfg)
    model, trainer, tcfg = build(run, train)
    try:
        trainer.load_checkpoint(checkpoint)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    trainer.lr, trainer.lr_end, trainer.grad_clip = tcfg.lr, tcfg.lr_end, tcfg.grad_clip
    trainer.mar = tcfg.mar()
    notes = runconfig.read_notes(os.path.join(out, "config.toml"))
    notes.update({(sec, k): f"changed on --resume at epoch {trainer.epoch}" for sec, items in over.items() for k in items})
    _threads(cfg)
    runconfig.write_toml(cfg, os.path.join(out, "config.toml"), notes, header=_describe(train, test))
    print(f"resuming {out} at epoch {trainer.epoch}")
    return _train(args, out, cfg, trainer, train, test)


def _threads(cfg: dict) -> None:
    from .cli import _threads as threads

    threads(cfg)


def _describe(train: List[Series], test: List[Series]) -> str:
    chans = ", ".join(f"{k} ({v['x'].shape[1] if 'x' in v else (v['q'].shape[1] if 'q' in v else 'labels')})"
                      for k, v in train[0].channels.items())
    lengths = [ts.T for ts in train]
    return (f"{train[0].name if len(train) == 1 else f'{len(train)} series ({train[0].name}, ...)'}: channels {chans}; "
            f"training {sum(lengths)} steps in {len(train)} series (shortest {min(lengths)}), "
            f"test {sum(ts.T for ts in test)} steps in {len(test)} series")


def _validation(cfg: dict, train: List[Series]) -> Optional[Series]:
    """The model-selection series: the last ``run.validation_steps`` of the longest training series."""
    every = int(cfg["run"].get("select_every", 0) or 0)
    if not every:
        return None
    longest = max(train, key=lambda ts: ts.T)
    val = longest.tail(min(int(cfg["run"].get("validation_steps", runconfig.DEFAULTS["run"]["validation_steps"])), longest.T))
    fmri = val.channels.get("fmri")
    if fmri is not None and val.T <= len(vi.hrf_spm(fmri["TR"])) - 1:
        raise ConfigError(f"run.validation_steps: {val.T} steps, no more than the HRF's span "
                          f"({len(vi.hrf_spm(fmri['TR'])) - 1} steps at fmri.TR = {fmri['TR']} s)")
    return val


def _save_params(path: str, arrays: Dict[str, np.ndarray]) -> None:
    from ._io import atomic_savez

    atomic_savez(path, **arrays)


def _train(args, out: str, cfg: dict, trainer, train: List[Series], test: List[Series]) -> int:
    from .training import HistoryFiles

    checkpoint = os.path.join(out, "checkpoint.npz")
    every = int(cfg["run"].get("checkpoint_every", 0))
    epochs = int(cfg["train"].get("epochs", 1000))
    val = _validation(cfg, train)
    selector = None
    if val is not None:
        selector = vi.BestSelector(val.channels, every=int(cfg["run"]["select_every"]), seed=0, s=val.s)
        best_path = os.path.join(out, "vi_best.npz")
        if args.resume and os.path.exists(best_path):  # continue the selection where it stood
            with open(os.path.join(out, "selection.json")) as f:
                state = json.load(f)
            selector.best_score, selector.best_epoch = state["best_score"], state["best_epoch"]
            selector.best_params = load_params(best_path, trainer)
    report = max(1, epochs // 20)
    t0 = time.perf_counter()

    history = HistoryFiles(out)

    def on_epoch(trainer, record: dict) -> None:
        if selector is not None:
            before = selector.best_epoch
            selector(trainer, record)
            if selector.best_epoch != before:
                _save_params(os.path.join(out, "vi_best.npz"), selector.best_params)
                _write_json(os.path.join(out, "selection.json"), selector.state())
        if every and trainer.epoch % every == 0:
            trainer.save_checkpoint(checkpoint)
            history.write(trainer.history)
        if not args.quiet and (trainer.epoch % report == 0 or trainer.epoch == epochs):
            print(f"epoch {trainer.epoch}/{epochs}: -ELBO per step {record['loss']:.4g}"
                  + (f", validation {selector.key} {record['val_score']:.3f}" if "val_score" in record else "")
                  + f" ({time.perf_counter() - t0:.0f} s)", flush=True)

    trainer.callback = on_epoch
    print(_describe(train, test))
    print(f"training {trainer.model!r} by variational inference -> {out}")
    trainer.fit(epochs, int(cfg["train"].get("batches_per_epoch", 50)), checkpoint=checkpoint,
                checkpoint_every=max(every, 1) if every else 10**9)
    seconds = time.perf_counter() - t0
    history.write(trainer.history)
    status = "completed" if trainer.stopped is None else "diverged"
    message = f"trained {trainer.epoch} epochs" if trainer.stopped is None else trainer.stopped
    print(f"{message} in {seconds:.1f} s")
    if selector is not None and selector.restore(trainer):
        print(f"selected the parameters of epoch {selector.best_epoch} (validation {selector.key} {selector.best_score:.3f})")
    _save_params(os.path.join(out, "vi_params.npz"), trainer._all)
    saved_model(trainer).save(os.path.join(out, "model.npz"))
    if status != "completed":
        print(f"warning: {message}", file=sys.stderr)
    metrics = evaluate_run(cfg, trainer, test)
    metrics["train_seconds"] = seconds
    metrics["method"] = "vi"
    if selector is not None:
        metrics["selected_epoch"] = selector.best_epoch
        metrics[f"validation_{selector.key}"] = selector.best_score
    metrics["status"] = status
    _write_json(os.path.join(out, "metrics.json"), metrics)
    _print(metrics)
    return 0 if status == "completed" else 1


def load_params(path: str, trainer) -> Dict[str, np.ndarray]:
    """A ``vi_params.npz``/``vi_best.npz`` checked member by member against the trainer's arrays."""
    from ._io import NpzReader

    with NpzReader(path, "VI parameters") as f:
        f.check_members(list(trainer._all))
        out = {k: f.array(k, v.shape, v.dtype) for k, v in trainer._all.items()}
        for k, v in out.items():
            if not np.isfinite(v).all():
                f.fail(f"member {k!r} is not finite")
    return out


def evaluate_run(cfg: dict, trainer, test: List[Series]) -> dict:
    """:func:`vi.evaluate` on every test series (means over the series, and each series' scores), and
    the latent model's largest Lyapunov exponent (per unit time) from the first test series' posterior."""
    from .metrics import lyapunov_spectrum

    ecfg = {k: v for k, v in cfg.get("evaluate", {}).items() if k in VI_EVALUATE_KEYS}
    max_steps = int(ecfg.pop("max_test_steps", 0) or 0)
    lyap_steps = int(ecfg.pop("lyapunov_steps", 50_000) or 0)
    per = []
    for ts in test:
        ts = ts.head(max_steps) if max_steps else ts
        per.append(vi.evaluate(trainer, ts.channels, s=ts.s, **ecfg))
    out: dict = {"test_series": len(per), "per_series": per}
    for key in ("KL_z", "D_stsp", "D_H"):
        vals = [r[key] for r in per if key in r]
        if vals:
            out[key] = float(np.mean(vals))
    for key, path in (("poisson_explained", ("poisson", "explained")),
                      ("categorical_accuracy_free_run", ("categorical", "free_run", "accuracy")),
                      ("categorical_accuracy_posterior", ("categorical", "posterior", "accuracy"))):
        vals = []
        for r in per:
            v = r
            for p in path:
                v = v.get(p) if isinstance(v, dict) else None
            if v is not None:
                vals.append(v)
        if vals:
            out[key] = float(np.mean(vals))
    out["diverged"] = any(r.get("diverged") for r in per)
    first = test[0]
    out["lambda_max_model"] = None
    if lyap_steps and trainer.model.K == 0 and not out["diverged"]:
        mu, _ = trainer.posterior(first.channels)
        try:
            spectrum = lyapunov_spectrum(trainer.model, T=lyap_steps, transient=1000,
                                         z0=np.ascontiguousarray(mu[-1], dtype=trainer.model.dtype))
            out["lambda_max_model"] = float(spectrum[0]) / first.dt
        except FloatingPointError as exc:
            out["diverged"], out["divergence_reason"] = True, f"Lyapunov run: {exc}"
    out["lambda_max_reference"] = first.lyapunov_max
    if out["lambda_max_model"] is not None and first.lyapunov_max:
        out["lambda_max_rel_error"] = abs(out["lambda_max_model"] - first.lyapunov_max) / first.lyapunov_max
    return out


def evaluate_folder(out: str, cfg: dict, over: dict) -> int:
    """``plrnn evaluate`` of a VI run: its data and trainer rebuilt, ``vi_params.npz`` loaded."""
    for section, values in over.items():
        if section != "evaluate":
            raise ConfigError(f"--set {section}.*: plrnn evaluate changes [evaluate] settings only")
        for key in values:
            if key not in VI_EVALUATE_KEYS:
                raise ConfigError(f"evaluate.{key}: does not apply to method 'vi'")
    runconfig.merge(cfg, over)
    train, test = load_series(cfg)
    _, trainer, _ = build(runconfig.RunConfig(cfg, {s: {} for s in cfg}), train)
    params = load_params(os.path.join(out, "vi_params.npz"), trainer)
    for k, v in params.items():
        trainer._all[k][...] = v
    _threads(cfg)
    metrics = evaluate_run(cfg, trainer, test)
    metrics["method"] = "vi"
    old = os.path.join(out, "metrics.json")
    if os.path.exists(old):
        with open(old) as f:
            prev = json.load(f)
        for k in ("train_seconds", "selected_epoch", "status") + tuple(k for k in prev if k.startswith("validation_")):
            if k in prev:
                metrics[k] = prev[k]
    _write_json(old, metrics)
    _print(metrics)
    return 0


def _write_json(path: str, obj) -> None:
    from .cli import _write_json as write

    write(path, obj)


def _print(metrics: dict) -> None:
    keys = ("KL_z", "D_stsp", "D_H", "poisson_explained", "categorical_accuracy_free_run", "lambda_max_model",
            "lambda_max_rel_error")
    for k in keys:
        v = metrics.get(k)
        if v is not None:
            print(f"  {k:32s} {v:.4g}" if isinstance(v, float) and math.isfinite(v) else f"  {k:32s} {v}")
