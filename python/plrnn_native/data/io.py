"""Reading recorded time series from ``.npy`` and ``.csv`` files."""

from __future__ import annotations

import csv
import math
import numbers
import os
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from .._validation import check_float
from .series import TimeSeries, apply_zscore


def load_timeseries(path: Union[str, "os.PathLike[str]"], dt: float = 1.0, zscore: bool = True,
                    columns: Optional[Sequence[Union[int, str]]] = None,
                    allow_missing: bool = False) -> TimeSeries:
    """Load a recorded time series from ``.npy`` (``[T, N]`` or ``[T]``) or ``.csv``.

    CSV: comma-separated numbers, one time step per line, an optional header line of column names,
    blank lines and lines starting with ``#`` skipped. ``columns`` selects columns by index
    (0-based) or, with a header, by name. Raises ValueError naming the problem: unknown extension,
    not 2-D, non-numeric entries (with line and column), fewer than 2 time steps, NaN/inf (with the
    time step and column), a constant column when ``zscore`` (z-scoring impossible). With
    ``allow_missing`` NaN (and empty CSV fields) are missing values, kept as NaN; inf still raises.

    Returns:
        TimeSeries with ``x`` ``[T, N]`` float64, ``name`` the file's stem,
        ``params["columns"]`` the column names (or indices), ``meta["path"]`` the file.
    """
    path = os.fspath(path)
    dt = check_float("dt", dt, lo=0.0, lo_open=True)
    ext = os.path.splitext(path)[1].lower()
    header: Optional[List[str]] = None
    lines: Optional[List[int]] = None  # file line of each time step (CSV)
    if ext == ".npy":
        data = series_array(read_npy(path), path)
    elif ext == ".csv":
        data, header, lines = _read_csv(path, allow_missing)
    else:
        raise ValueError(f"{path}: unknown extension {ext!r}; expected '.npy' or '.csv'")

    names: List[Union[int, str]] = (list(header) if header is not None
                                    else list(range(data.shape[1])))
    if columns is not None:
        if isinstance(columns, (str, int)):
            columns = [columns]
        idx = []
        for c in columns:
            if isinstance(c, str):
                if header is None:
                    raise ValueError(f"columns: {c!r} is a name but {path} has no header; "
                                     "use indices")
                if c not in header:
                    raise ValueError(f"columns: no column {c!r} in {path}; columns are {header}")
                idx.append(header.index(c))
            elif isinstance(c, numbers.Integral) and not isinstance(c, (bool, np.bool_)):
                if not -data.shape[1] <= c < data.shape[1]:
                    raise ValueError(f"columns: index {c} out of range for {data.shape[1]} "
                                     "column(s)")
                idx.append(int(c) % data.shape[1])
            else:
                raise TypeError(f"columns: expected column indices or names, got {c!r}")
        if not idx:
            raise ValueError("columns: selects no column")
        data = data[:, idx]
        names = [names[i] for i in idx]

    if data.shape[0] < 2:
        raise ValueError(f"{path}: fewer than 2 time steps ({data.shape[0]}); "
                         "a time series needs T >= 2")
    if data.shape[1] < 1:
        raise ValueError(f"{path}: no columns")
    bad = np.isinf(data) if allow_missing else ~np.isfinite(data)
    if bad.any():
        t, j = (int(i) for i in np.argwhere(bad)[0])
        where = f"time step {t}" + (f" (line {lines[t]})" if lines is not None else "")
        what = "inf" if allow_missing else "NaN or inf"
        raise ValueError(f"{path}: contains {what} ({int(bad.sum())} value(s)); "
                         f"first at {where}, column {names[j]!r}")
    if allow_missing and np.isnan(data).all():
        raise ValueError(f"{path}: every value is missing (NaN)")
    mean = std = None
    if zscore:
        try:
            data, mean, std = apply_zscore(data, path)
        except ValueError as exc:
            raise ValueError(f"{exc}; columns named {names}") from None
    stem = os.path.splitext(os.path.basename(path))[0]
    return TimeSeries(x=data, s=None, dt=dt, name=stem, params={"columns": names},
                      lyapunov_max=None, mean=mean, std=std,
                      meta={"path": path, "header": header}, missing=allow_missing)


def read_npy(path: str) -> np.ndarray:
    """A .npy file without trusting its header: memory-mapped first, so a header that declares
    more data than the file holds fails before anything is allocated; ValueError naming the path."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:  # object arrays, corrupt or truncated files
        raise ValueError(f"{path}: cannot read as a numeric .npy array ({exc})") from None


def series_array(raw, where: str) -> np.ndarray:
    """A real numeric ``[T, N]`` (or ``[T]``) array as a float64 ``[T, N]`` copy; ValueError naming
    ``where`` otherwise. Values are not checked here (finite, missing: the caller's rule)."""
    if not isinstance(raw, np.ndarray) or raw.dtype.kind not in "biuf":
        raise ValueError(f"{where}: expected a real numeric array, got dtype "
                         f"{getattr(raw, 'dtype', type(raw).__name__)}")
    if raw.ndim == 1:
        raw = raw[:, None]
    if raw.ndim != 2:
        raise ValueError(f"{where}: expected a 2-D [T, N] (or 1-D [T]) array, got shape {raw.shape}")
    return np.array(raw, dtype=np.float64)


def _read_csv(path: str, allow_missing: bool = False) -> Tuple[np.ndarray, Optional[List[str]], List[int]]:
    rows: List[List[float]] = []
    line_of: List[int] = []
    header: Optional[List[str]] = None
    width: Optional[int] = None
    with open(path, newline="") as fh:
        for lineno, fields in enumerate(csv.reader(fh), start=1):
            if (not fields or all(not f.strip() for f in fields)
                    or fields[0].lstrip().startswith("#")):
                continue
            fields = [f.strip() for f in fields]
            values = []
            for col, f in enumerate(fields):
                if allow_missing and f == "":
                    values.append(math.nan)  # an empty field: a missing value
                    continue
                try:
                    values.append(float(f))
                except ValueError:
                    values = None
                    bad = (col, f)
                    break
            if values is None:
                if header is None and width is None:  # the first content line: a header
                    header = fields
                    width = len(fields)
                    continue
                col, f = bad
                raise ValueError(f"{path}: line {lineno}, column {col}: {f!r} is not a number")
            if width is None:
                width = len(values)
            elif len(values) != width:
                raise ValueError(f"{path}: line {lineno} has {len(values)} field(s), "
                                 f"expected {width}")
            rows.append(values)
            line_of.append(lineno)
    if width is None:
        raise ValueError(f"{path}: no data (fewer than 2 time steps)")
    data = np.array(rows, dtype=np.float64).reshape(len(rows), width)
    return data, header, line_of
