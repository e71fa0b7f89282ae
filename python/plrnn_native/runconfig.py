"""The configuration of a ``plrnn`` run: known settings, precedence, settings derived from the data,
validation before anything is written, and the run's ``config.toml``.

Precedence, lowest first: the built-in preset (Lorenz-63's tuned settings for ``system =
"lorenz63"``; for any other data the settings :mod:`plrnn_native.autoconfig` derives from it), the
TOML file, command-line flags, ``--set section.key=value``. Unknown sections and keys are errors with
a "did you mean" hint. Every derived value is written to ``config.toml`` with its reason.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import inspect
import json
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import autoconfig
from . import data as data_mod
from . import metrics as metrics_mod
from ._io import atomic_write_text
from ._validation import check_int
from .models import CLIPPED_KINDS, PLRNN, kinds_of_family
from .training import TrainConfig

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

Config = Dict[str, Dict[str, Any]]


class ConfigError(ValueError):
    """A setting, a TOML file or a run folder the command cannot use (one line, names the key)."""


#: The preset of ``plrnn train --system lorenz63`` (and the base of every built-in system's data
#: section): tuned settings, nothing derived.
DEFAULTS: Config = {
    "data": {"system": "lorenz63", "T": 100_000, "dt": 0.01, "obs_noise": 0.01, "seed": 0,
             "test_T": 100_000, "test_fraction": 0.2},
    "model": {"kind": "shallow", "M": 3, "hidden": 100, "clipped": False, "dtype": "float32", "seed": 0},
    "train": {"epochs": 2000, "batches_per_epoch": 50, "seq_len": 200, "batch_size": 16,
              "forcing": "sparse", "tau": 25, "lr": 1e-3, "lr_end": 1e-4, "grad_clip": 10.0, "seed": 0},
    "evaluate": {"gen_factor": 1.25, "transient_fraction": 0.25, "pe_steps": 20, "seed": 0,
                 "max_test_steps": 0, "lyapunov_steps": 50_000},
    # select_every: every this many epochs score the free run against the last validation_steps of
    # the training data (D_stsp + D_H, selection.py) and keep the best parameters as model.npz (0: keep
    # the last); validation_steps: the whole training series of the preset (2e4 steps were too noisy
    # to tell good models apart)
    "run": {"threads": 0, "checkpoint_every": 25, "select_every": 50, "validation_steps": 100_000},
}
#: Systems whose model and training settings are tuned presets (the rest are derived from the data).
PRESET_SYSTEMS = ("lorenz63",)
#: Settings of a run on the user's files before anything is derived.
FILE_DATA = {"dt": 1.0, "test_fraction": 0.2, "test_split": "auto"}
#: Settings derived from the data are never taken from the preset.
DERIVED = {"model": ("kind", "M", "hidden", "obs"),
           "train": ("epochs", "seq_len", "tau", "lr", "lr_end"),
           "run": ("select_every", "validation_steps")}
_RUN_KEYS = ("threads", "checkpoint_every", "select_every", "validation_steps")


def _params(f: Callable, drop=()) -> set:
    return {p for p in inspect.signature(f).parameters if p not in drop}


def known_keys() -> Dict[str, set]:
    """The settings each section accepts."""
    from . import vi_run

    gen = set().union(*(_params(f) for f in data_mod._GENERATORS.values()))
    return {
        "vi": set(vi_run.vi_keys()),
        **{name: set(keys) for name, keys in vi_run.CHANNEL_KEYS.items()},
        "data": gen | {"system", "path", "inputs", "test_T", "test_fraction", "test_split"},
        "model": _params(PLRNN.__init__, ("self", "N", "K")),
        "train": {f.name for f in dataclasses.fields(TrainConfig)},
        "evaluate": _params(metrics_mod.evaluate, ("model", "x_test", "dt", "lyapunov_max")) | {"max_test_steps"},
        "run": set(_RUN_KEYS),
    }


def _hint(word: str, choices) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(cfg: Config, where: str) -> None:
    """Unknown sections and keys raise ConfigError naming them, with the closest known one."""
    known = known_keys()
    for section, values in cfg.items():
        if section not in known:
            raise ConfigError(f"{where}: unknown section [{section}]{_hint(section, known)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: top-level key {section!r} must be a [section]")
        for key in values:
            if key not in known[section]:
                raise ConfigError(f"{where}: unknown setting {section}.{key}{_hint(key, known[section])}")


def parse_value(text: str):
    """A --set value: true/false, an int, a float, a comma list of those, or the text."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_overrides(items: List[str]) -> Config:
    out: Config = {}
    for item in items:
        key = item.split("=", 1)[0]
        if "=" not in item or "." not in key:
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. train.epochs=500")
        section, name = key.split(".", 1)
        out.setdefault(section, {})[name] = parse_value(item.split("=", 1)[1])
    check_keys(out, "--set")
    return out


def read_toml(path: str) -> Config:
    try:
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    check_keys(cfg, path)
    return cfg


def merge(into: Config, new: Config) -> Config:
    for section, values in new.items():
        into.setdefault(section, {}).update(values)
    return into


@dataclasses.dataclass
class RunConfig:
    """A resolved configuration: ``cfg`` every setting, ``given`` those the user set,
    ``notes[(section, key)]`` the reason of each derived one."""

    cfg: Config
    given: Config
    notes: Dict[Tuple[str, str], str] = dataclasses.field(default_factory=dict)

    @property
    def preset(self) -> bool:
        """Whether the model and training settings come from a tuned preset (nothing derived)."""
        d = self.cfg["data"]
        return not d.get("path") and d.get("system") in PRESET_SYSTEMS


def resolve(path: Optional[str], overrides: List[str],
            flags: Optional[Callable[[Config], None]] = None) -> RunConfig:
    """The configuration of a new run from a TOML file, flags (a function editing the user's
    settings) and ``--set`` overrides, on top of the preset."""
    given: Config = {s: {} for s in DEFAULTS}
    if path:
        merge(given, read_toml(path))
    if flags is not None:
        flags(given)
    merge(given, parse_overrides(overrides))
    cfg = copy.deepcopy(DEFAULTS)
    if given["data"].get("path"):  # the user's files: nothing of the built-in data set applies
        if "system" in given["data"]:
            raise ConfigError("data.path, data.system: give your own data or a built-in system, not both")
        cfg["data"] = dict(FILE_DATA)
    merge(cfg, given)
    run = RunConfig(cfg, given)
    if not run.preset:  # derived later from the data; the preset's values do not apply
        for section, keys in DERIVED.items():
            for key in keys:
                if key not in given[section]:
                    cfg[section].pop(key, None)
    _drop_foreign_defaults(cfg["model"], set(given["model"]))
    return run


# The keys only some kinds have: a default for one kind must not leak into a model of another.
_KIND_KEYS = {"hidden": kinds_of_family("Shallow"), "bases": kinds_of_family("Dendritic"), "P": ("alrnn",),
              "clipped": CLIPPED_KINDS}


def _drop_foreign_defaults(model: dict, user_keys: set) -> None:
    kind = model.get("kind")
    if kind is None:
        return
    for key, kinds in _KIND_KEYS.items():
        if key in model and kind not in kinds and key not in user_keys:
            del model[key]


def derive(run: RunConfig, train_series: List) -> Optional[dict]:
    """Fills the settings the user has not given from the training series (list of ``[T, N]``
    arrays, NaN missing); returns the forcing-interval details (None when nothing was estimated)."""
    if run.preset:
        return None
    values, notes, details = autoconfig.derive_settings(train_series, run.given)
    for section, items in values.items():
        run.cfg[section].update(items)
    run.notes.update(notes)
    _drop_foreign_defaults(run.cfg["model"], set(run.given["model"]))
    return details


def build(run: RunConfig, N: int, K: int) -> Tuple[PLRNN, TrainConfig, dict]:
    """Checks every section by building what it describes: (model, training config, evaluate
    arguments). Nothing is trained or written; a bad setting raises naming the key."""
    cfg = run.cfg
    try:
        model = PLRNN(**{**cfg["model"], "N": N, "K": K})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[model] {exc}") from None
    try:
        train = TrainConfig.from_dict(cfg["train"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[train] {exc}") from None
    cfg["train"].update({k: v for k, v in train.to_dict().items() if k not in cfg["train"]})  # all that runs
    ecfg = dict(cfg["evaluate"])
    try:
        check_int("max_test_steps", ecfg.pop("max_test_steps", 0) or 0, 0)
        metrics_mod.check_evaluate_args(**ecfg)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[evaluate] {exc}") from None
    try:
        check_int("threads", cfg["run"].get("threads", 0), 0)
        check_int("checkpoint_every", cfg["run"].get("checkpoint_every", 0), 0)
        check_int("select_every", cfg["run"].get("select_every", 0), 0)
        check_int("validation_steps", cfg["run"].get("validation_steps", DEFAULTS["run"]["validation_steps"]), 10)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[run] {exc}") from None
    return model, train, ecfg


# ---- run folders ---------------------------------------------------------------------------------
def toml_text(cfg: Config, notes: Optional[Dict[Tuple[str, str], str]] = None, header: str = "") -> str:
    """A two-level configuration as TOML, each derived value followed by ``# reason``."""
    notes = notes or {}

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

    lines = [f"# {line}" for line in header.splitlines()]
    for section, values in cfg.items():
        lines.append(f"[{section}]")
        for k, v in values.items():
            if v is None:
                continue
            note = notes.get((section, k))
            lines.append(f"{k} = {fmt(v)}" + (f"  # {note}" if note else ""))
        lines.append("")
    return "\n".join(lines)


def write_toml(cfg: Config, path: str, notes: Optional[Dict[Tuple[str, str], str]] = None,
               header: str = "") -> None:
    """:func:`toml_text` written atomically (a temporary file renamed into place)."""
    atomic_write_text(path, toml_text(cfg, notes, header))


def read_notes(path: str) -> Dict[Tuple[str, str], str]:
    """The ``# reason`` of each setting in a config.toml that :func:`write_toml` wrote."""
    notes, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
            elif section and " = " in line and "  # " in line:
                notes[(section, line.split(" = ", 1)[0])] = line.rsplit("  # ", 1)[1]
    return notes


def read_run(run: str) -> Config:
    """The configuration a run folder was trained with."""
    path = os.path.join(run, "config.toml")
    if not os.path.isfile(path):
        raise ConfigError(f"{run}: not a run folder (no config.toml)")
    return read_toml(path)


#: What ``--resume`` may change: these settings act from the next epoch on (and are recorded in
#: config.toml); the rest describe the model or the data and would not be what the checkpoint holds.
RESUMABLE = {"train": ("epochs", "lr", "lr_end", "grad_clip", "teacher_noise", "forcing", "tau", "alpha",
                       "adaptive_alpha", "alpha_every", "mar_weight", "mar_fraction", "mar_select",
                       "batches_per_epoch"),
             "run": _RUN_KEYS, "evaluate": None}


def resume_overrides(items: List[str]) -> Config:
    """``--set`` overrides on resume: those of RESUMABLE, anything else refused with the reason."""
    over = parse_overrides(items)
    for section, values in over.items():
        allowed = RESUMABLE.get(section, ())
        for key in values:
            if allowed is not None and key not in allowed:
                raise ConfigError(f"--set {section}.{key}: cannot change on --resume (the checkpoint's model, "
                                  "data and random state were made with it); start a new run instead")
    return over


__all__ = ["DEFAULTS", "ConfigError", "RunConfig", "resolve", "derive", "build", "toml_text", "write_toml", "read_notes",
           "read_run", "resume_overrides", "known_keys", "check_keys", "parse_overrides"]
