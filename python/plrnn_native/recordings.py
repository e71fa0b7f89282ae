"""Your own recordings: one or many series (trials, subjects, sessions), missing values, inputs.

    series = load_recordings(["subject1.npy", "subject2.npy"], dt=0.004)   # or a folder, or an .npz
    train, test = split_series(series, test_fraction=0.2)                  # whole series or tails

A source is a ``.npy`` file (``[T, N]`` or ``[T]``), a ``.csv`` file (see
:func:`plrnn_native.data.load_timeseries`), an ``.npz`` archive (every array in it is one series, in
archive order) or a folder (its ``.npy``/``.csv``/``.npz`` files, sorted by name). Series may differ
in length, not in the number of columns. NaN marks a missing value (an empty CSV field too): it is
kept as NaN, left out of the z-scoring statistics and, in training, masked out of the loss and of
the teacher signals. A series or a column with no observed value, inf, fewer than 2 time steps or a
non-numeric array raises ``ValueError`` naming the file (and the array in an archive).

All series are z-scored with one mean and standard deviation per column, pooled over every series
(the training code sees one coordinate system). External inputs come from sources of their own,
one input series per data series, of the same lengths; they must be complete (no NaN).
"""

from __future__ import annotations

import math
import os
import zipfile
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from . import metrics
from ._validation import check_choice, check_float
from .data import TimeSeries, load_timeseries, read_npy, series_array, zscore_stats

PathLike = Union[str, "os.PathLike[str]"]
SUFFIXES = (".npy", ".csv", ".npz")
#: How the test set is chosen: whole held-out series, the tail of each series, or "auto"
#: (whole series when there are at least AUTO_WHOLE_SERIES of them, else tails).
SPLITS = ("auto", "series", "tail")
AUTO_WHOLE_SERIES = 5


def _sources(paths: Union[PathLike, Sequence[PathLike]]) -> List[str]:
    """The files behind ``paths``: folders expanded (sorted), each checked to exist."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError("paths: no data file given")
    files: List[str] = []
    for p in paths:
        if os.path.isdir(p):
            inside = sorted(f for f in os.listdir(p) if f.lower().endswith(SUFFIXES))
            if not inside:
                raise ValueError(f"{p}: folder holds no {'/'.join(SUFFIXES)} file")
            files += [os.path.join(p, f) for f in inside]
        elif os.path.isfile(p):
            if not p.lower().endswith(SUFFIXES):
                raise ValueError(f"{p}: unknown extension; expected one of {', '.join(SUFFIXES)}")
            files.append(p)
        else:
            raise ValueError(f"{p}: no such file or folder")
    return files


def _check_raw(raw, where: str) -> np.ndarray:
    """A numeric [T, N] (or [T]) array as float64 [T, N]: finite or NaN, T >= 2, not all missing."""
    x = series_array(raw, where)
    if x.shape[1] < 1 or x.shape[0] < 2:
        raise ValueError(f"{where}: expected at least 2 time steps and 1 column, got shape {x.shape}")
    inf = np.isinf(x)
    if inf.any():
        t, j = (int(i) for i in np.argwhere(inf)[0])
        raise ValueError(f"{where}: contains inf (first at time step {t}, column {j})")
    if np.isnan(x).all():
        raise ValueError(f"{where}: every value is missing (NaN)")
    return x


def _npz(path: str) -> List[Tuple[str, np.ndarray]]:
    """Every array of an .npz archive, each header checked against the member's size first."""
    out = []
    try:
        with zipfile.ZipFile(path) as zf:
            members = [i for i in zf.infolist() if i.filename.endswith(".npy")]
            if not members:
                raise ValueError(f"{path}: the archive holds no array")
            for info in members:
                name = info.filename[:-4]
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(fh)
                    need = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                if need > info.file_size:
                    raise ValueError(f"{path}: array {name!r} declares shape {shape} ({need} bytes) "
                                     f"but holds {info.file_size} bytes")
                with zf.open(info) as fh:
                    arr = np.lib.format.read_array(fh, allow_pickle=False)
                out.append((name, arr))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npz archive ({exc})") from None
    except ValueError as exc:
        if str(exc).startswith(path):
            raise
        raise ValueError(f"{path}: not a readable .npz archive ({exc})") from None
    return out


def _read(files: List[str]) -> List[Tuple[str, np.ndarray, str]]:
    """(name, raw float64 [T, N], where) of every series in the files; ``where`` names the file
    (and the array of an archive) in error messages."""
    out = []
    for f in files:
        ext = os.path.splitext(f)[1].lower()
        stem = os.path.splitext(os.path.basename(f))[0]
        if ext == ".npz":
            for name, a in _npz(f):
                where = f"{f} (array {name!r})"
                out.append((f"{stem}:{name}", _check_raw(a, where), where))
        elif ext == ".npy":
            out.append((stem, _check_raw(read_npy(f), f), f))
        else:
            out.append((stem, load_timeseries(f, zscore=False, allow_missing=True).x.copy(), f))
    return out


def load_recordings(paths: Union[PathLike, Sequence[PathLike]], dt: float = 1.0,
                    inputs: Optional[Union[PathLike, Sequence[PathLike]]] = None,
                    zscore: bool = True) -> List[TimeSeries]:
    """Load one or many series (see the module docstring) as a list of :class:`TimeSeries`.

    Args:
        paths: a file, a folder, or a list of them.
        dt: sampling interval (> 0), the same for every series.
        inputs: sources of external inputs ``s`` ``[T_i, K]``, one series per data series.
        zscore: standardise each column with statistics pooled over all series (``mean``/``std``
            recorded in every series).

    Returns:
        the series in order; ``meta["path"]`` is the file, ``name`` the file's stem (with
        ``:array`` for archives); ``missing`` is True where a series holds NaN.
    """
    files = _sources(paths)
    series = _read(files)
    N = series[0][1].shape[1]
    for _, x, where in series:
        if x.shape[1] != N:
            raise ValueError(f"{where}: {x.shape[1]} column(s), but {series[0][2]} has {N}; every series "
                             "needs the same columns")
    empty = np.flatnonzero(np.all([np.isnan(x).all(axis=0) for _, x, _ in series], axis=0))
    if empty.size:
        raise ValueError(f"{series[0][2] if len(series) == 1 else 'every series'}: column(s) {empty.tolist()} "
                         "have no observed value (all NaN)")
    inputs_raw: List[Optional[np.ndarray]] = [None] * len(series)
    if inputs is not None:
        got = _read(_sources(inputs))
        if len(got) != len(series):
            raise ValueError(f"inputs: {len(got)} input series for {len(series)} data series")
        for (_, s, name), (_, x, xname) in zip(got, series):
            if s.shape[0] != x.shape[0]:
                raise ValueError(f"inputs: {name} has {s.shape[0]} time steps, the data {xname} "
                                 f"{x.shape[0]}")
            if np.isnan(s).any():
                raise ValueError(f"inputs: {name} has missing values (NaN); inputs must be complete")
            if s.shape[1] != got[0][1].shape[1]:
                raise ValueError(f"inputs: {name} has {s.shape[1]} column(s), {got[0][2]} "
                                 f"{got[0][1].shape[1]}")
        inputs_raw = [s for _, s, _ in got]
    mean = std = None
    if zscore:
        mean, std = zscore_stats(np.concatenate([x for _, x, _ in series]),
                                 ", ".join(files) if len(files) <= 3 else f"{files[0]} ... ({len(files)} files)")
    out = []
    for (name, x, where), s in zip(series, inputs_raw):
        path = where.split(" (array ")[0]
        if zscore:
            x = (x - mean) / std
        out.append(TimeSeries(x=x, s=s, dt=dt, name=name, mean=mean, std=std,
                              meta={"path": path}, missing=bool(np.isnan(x).any())))
    return out


def split_series(series: Sequence[TimeSeries], test_fraction: float = 0.2,
                 mode: str = "auto") -> Tuple[List[TimeSeries], List[TimeSeries]]:
    """(train, test) lists: ``"series"`` holds out the last ``max(1, round(test_fraction * n))``
    whole series, ``"tail"`` the last ``test_fraction`` of each series, ``"auto"`` whole series when
    there are at least ``AUTO_WHOLE_SERIES`` of them, else tails."""
    check_choice("test_split", mode, SPLITS)
    check_float("test_fraction", test_fraction, 0.0, 1.0, lo_open=True, hi_open=True)
    series = list(series)
    if mode == "auto":
        mode = "series" if len(series) >= AUTO_WHOLE_SERIES else "tail"
    if mode == "series":
        if len(series) < 2:
            raise ValueError("test_split: 'series' holds out whole series and needs at least 2")
        n_test = min(len(series) - 1, max(1, round(test_fraction * len(series))))
        return series[:-n_test], series[-n_test:]
    parts = [ts.split(1.0 - test_fraction) for ts in series]
    return [p[0] for p in parts], [p[1] for p in parts]


def _interpolated(x: np.ndarray) -> np.ndarray:
    """x with each column's NaN filled by linear interpolation (the ends hold the nearest value)."""
    out = x.copy()
    t = np.arange(len(x))
    for j in range(x.shape[1]):
        miss = np.isnan(x[:, j])
        if miss.any():
            out[miss, j] = np.interp(t[miss], t[~miss], x[~miss, j])
    return out


def _first_complete(x: np.ndarray) -> int:
    """Index of the first row of x without a missing value (a free run starts there)."""
    complete = ~np.isnan(x).any(axis=1)
    if not complete.any():
        raise ValueError("series: a test series has no complete row (no time step without NaN)")
    return int(np.argmax(complete))


def _evaluate_driven(model, xs, inputs, dt, transient_fraction=0.25, seed=None, **_) -> dict:
    """Scores of an input-driven model (K > 0): each free run is driven by its test series' inputs
    over the series' length (the inputs end there), its first ``transient_fraction`` dropped;
    pooled D_stsp and length-weighted D_H. PE and the Lyapunov spectrum are not defined here."""
    data, gen, dh, w = [], [], [], []
    for x, s in zip(xs, inputs):
        t0 = _first_complete(x)
        x, s = x[t0:], np.ascontiguousarray(s[t0:], dtype=model.dtype)
        free = model.generate(len(x), x0=np.ascontiguousarray(x[0], dtype=model.dtype), s=s).astype(np.float64)
        tr = int(round(transient_fraction * len(x)))
        data.append(x[tr:][~np.isnan(x[tr:]).any(axis=1)].astype(np.float64))
        gen.append(free[tr:])
        dh.append(metrics.power_spectrum_distance(_interpolated(x[tr:].astype(np.float64)), free[tr:]))
        w.append(len(x) - tr)
    data, gen = np.concatenate(data), np.concatenate(gen)
    binned = data.shape[1] <= metrics.BINNED_MAX_DIM
    finite = bool(np.isfinite(gen).all())
    d = math.inf
    if finite:
        d = (metrics.state_space_divergence_binned(data, gen) if binned
             else metrics.state_space_divergence_gmm(data, gen, seed=seed))
    return {"D_stsp": float(d), "D_stsp_variant": "binned" if binned else "gmm",
            "D_H": float(np.average(dh, weights=w)) if finite else math.nan, "PE": None,
            "lambda_max_model": None, "diverged": not finite, "driven_by_inputs": True,
            "note": "input-driven model: free runs driven by the test inputs; PE and Lyapunov spectrum not computed",
            "T_test": int(sum(w)), "dt": dt, "N": int(model.N), "M": int(model.M)}


def evaluate_recordings(model, series: Sequence[np.ndarray], dt: float, lyapunov_max=None,
                        inputs: Optional[Sequence[np.ndarray]] = None, **kwargs) -> dict:
    """:func:`plrnn_native.metrics.evaluate` over one or many test series with missing values.

    One complete series: exactly :func:`~plrnn_native.metrics.evaluate`. Otherwise every series is
    scored by it with its missing values linearly interpolated (``D_H``, ``PE``, ``VPT`` and the
    Lyapunov spectrum: length-weighted means over the series, the spectrum from the first), and
    ``D_stsp`` is recomputed on the pooled data: the complete rows of every series against the
    free runs of every series (each from its own first complete row, its transient dropped), the
    occupation measures of the data and of the model over all series. ``missing_fraction`` and
    ``n_series`` are added. A model with inputs (``K > 0``) needs ``inputs`` (one ``[T_i, K]`` per
    series) and is scored by its input-driven free runs (D_stsp, D_H only).
    """
    xs = [np.asarray(x) for x in series]
    if not xs:
        raise ValueError("series: no test series")
    nan = [np.isnan(x) for x in xs]
    if model.K > 0:
        if inputs is None or len(inputs) != len(xs):
            raise ValueError(f"inputs: the model has K={model.K} inputs; give one input series per test series")
        result = _evaluate_driven(model, xs, inputs, dt, **kwargs)
        result["n_series"] = len(xs)
        result["missing_fraction"] = float(sum(m.sum() for m in nan) / sum(m.size for m in nan))
        return result
    if len(xs) == 1 and not nan[0].any():
        result = metrics.evaluate(model, xs[0], dt=dt, lyapunov_max=lyapunov_max, **kwargs)
        return {**result, "n_series": 1, "missing_fraction": 0.0}
    runs = []
    for x in xs:
        start = _first_complete(x)
        filled = np.ascontiguousarray(_interpolated(x[start:].astype(np.float64)), dtype=model.dtype)
        runs.append((x[start:], filled, metrics.evaluate(model, filled, dt=dt, lyapunov_max=lyapunov_max,
                                                         **kwargs)))
    weights = np.array([len(f) for _, f, _ in runs], dtype=float)
    result = dict(runs[0][2])

    def wmean(key):
        vals = [r[key] for _, _, r in runs]
        if any(v is None for v in vals):
            return None
        return float(np.average(np.asarray(vals, dtype=float), weights=weights))

    for key in ("D_H", "PE", "VPT", "outside_fraction"):
        result[key] = wmean(key)
    result["diverged"] = any(r["diverged"] for _, _, r in runs)
    result["divergence_reason"] = next((r["divergence_reason"] for _, _, r in runs if r["diverged"]), None)
    result["T_test"] = int(weights.sum())
    result["n_series"] = len(xs)
    result["missing_fraction"] = float(sum(m.sum() for m in nan) / sum(m.size for m in nan))
    if result["diverged"]:
        result["D_stsp"] = float("inf")
        return result
    data, gen = [], []
    for raw, filled, r in runs:
        T_gen, T_tr = r["T_generated"], r["T_transient"]
        free = model.generate(T_gen, x0=np.ascontiguousarray(filled[0]))[T_tr:]
        data.append(raw[~np.isnan(raw).any(axis=1)].astype(np.float64))
        gen.append(free.astype(np.float64))
    data, gen = np.concatenate(data), np.concatenate(gen)
    if result["D_stsp_variant"] == "binned":
        result["D_stsp"] = metrics.state_space_divergence_binned(data, gen, **result["D_stsp_constants"])
    else:
        result["D_stsp"] = metrics.state_space_divergence_gmm(data, gen, seed=kwargs.get("seed"),
                                                              **result["D_stsp_constants"])
    return result


__all__ = ["load_recordings", "split_series", "evaluate_recordings", "SPLITS", "SUFFIXES"]
