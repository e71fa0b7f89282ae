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

import os
import zipfile
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from .data import TimeSeries, load_timeseries, zscore_stats

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
    if not isinstance(raw, np.ndarray) or raw.dtype.kind not in "biuf":
        raise ValueError(f"{where}: expected a real numeric array, got dtype "
                         f"{getattr(raw, 'dtype', type(raw).__name__)}")
    if raw.ndim == 1:
        raw = raw[:, None]
    if raw.ndim != 2 or raw.shape[1] < 1:
        raise ValueError(f"{where}: expected a 2-D [T, N] (or 1-D [T]) array, got shape {raw.shape}")
    if raw.shape[0] < 2:
        raise ValueError(f"{where}: fewer than 2 time steps ({raw.shape[0]})")
    x = np.array(raw, dtype=np.float64)
    inf = np.isinf(x)
    if inf.any():
        t, j = (int(i) for i in np.argwhere(inf)[0])
        raise ValueError(f"{where}: contains inf (first at time step {t}, column {j})")
    if np.isnan(x).all():
        raise ValueError(f"{where}: every value is missing (NaN)")
    return x


def _npy(path: str) -> np.ndarray:
    """A .npy file without trusting its header: memory-mapped first, so a header that declares
    more data than the file holds fails before anything is allocated."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable numeric .npy array ({exc})") from None


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
                    shape, _, dtype = np.lib.format._read_array_header(fh, version)
                    need = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                    if need > info.file_size:
                        raise ValueError(f"{path}: array {name!r} declares shape {shape} ({need} bytes) "
                                         f"but holds {info.file_size} bytes")
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
    """(name, raw float64 [T, N], file) of every series in the files."""
    out = []
    for f in files:
        ext = os.path.splitext(f)[1].lower()
        stem = os.path.splitext(os.path.basename(f))[0]
        if ext == ".npz":
            out += [(f"{stem}:{name}", _check_raw(a, f"{f} (array {name!r})"), f) for name, a in _npz(f)]
        elif ext == ".npy":
            out.append((stem, _check_raw(_npy(f), f), f))
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
    for name, x, _ in series:
        if x.shape[1] != N:
            raise ValueError(f"{name}: {x.shape[1]} column(s), but {series[0][0]} has {N}; every series "
                             "needs the same columns")
    inputs_raw: List[Optional[np.ndarray]] = [None] * len(series)
    if inputs is not None:
        got = _read(_sources(inputs))
        if len(got) != len(series):
            raise ValueError(f"inputs: {len(got)} input series for {len(series)} data series")
        for (name, s, _), (xname, x, _) in zip(got, series):
            if s.shape[0] != x.shape[0]:
                raise ValueError(f"inputs: {name} has {s.shape[0]} time steps, the data {xname} "
                                 f"{x.shape[0]}")
            if np.isnan(s).any():
                raise ValueError(f"inputs: {name} has missing values (NaN); inputs must be complete")
            if s.shape[1] != got[0][1].shape[1]:
                raise ValueError(f"inputs: {name} has {s.shape[1]} column(s), {got[0][0]} "
                                 f"{got[0][1].shape[1]}")
        inputs_raw = [s for _, s, _ in got]
    mean = std = None
    if zscore:
        mean, std = zscore_stats(np.concatenate([x for _, x, _ in series]),
                                 ", ".join(files) if len(files) <= 3 else f"{files[0]} ... ({len(files)} files)")
    out = []
    for (name, x, path), s in zip(series, inputs_raw):
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
    if mode not in SPLITS:
        raise ValueError(f"test_split: expected one of {', '.join(map(repr, SPLITS))}, got {mode!r}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction: must be in (0, 1), got {test_fraction}")
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


__all__ = ["load_recordings", "split_series", "SPLITS", "SUFFIXES"]
