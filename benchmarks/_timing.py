"""Shared timing and reporting helpers for the benchmarks in this folder.

The helpers are deliberately small and dependency-free (NumPy only):

* :func:`time_interleaved` runs several callables in alternating blocks of consecutive calls,
  rotating their order each round so that slow drifts of the machine (frequency scaling, other
  processes) affect all of them alike;
* :func:`summarize` reduces the samples of one callable to median and interquartile range;
* :func:`machine_info` collects what is needed to interpret the numbers later.
"""

from __future__ import annotations

import gc
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Summary:
    """Robust summary of repeated wall-clock timings, in seconds."""

    median: float
    q1: float
    q3: float
    iqr: float
    mean: float
    min: float
    max: float
    repeats: int

    def to_dict(self, samples: Sequence[float] | None = None) -> dict[str, Any]:
        """Return a JSON-ready dict (times in milliseconds), optionally with the raw samples."""
        out: dict[str, Any] = {
            f"{key}_ms": 1e3 * value for key, value in asdict(self).items() if key != "repeats"
        }
        out["repeats"] = self.repeats
        if samples is not None:
            out["samples_ms"] = [1e3 * s for s in samples]
        return out


def summarize(samples: Sequence[float]) -> Summary:
    """Median, quartiles (linear interpolation), IQR, mean, min and max of ``samples``."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("cannot summarize an empty list of timings")
    q1, median, q3 = np.percentile(arr, [25.0, 50.0, 75.0])
    return Summary(
        median=float(median),
        q1=float(q1),
        q3=float(q3),
        iqr=float(q3 - q1),
        mean=float(arr.mean()),
        min=float(arr.min()),
        max=float(arr.max()),
        repeats=int(arr.size),
    )


def check_reentry(seconds: float) -> None:
    """Raises ValueError unless ``seconds`` (the re-entry time of :func:`time_interleaved`) is finite
    and >= 0."""
    if not 0.0 <= seconds < float("inf"):
        raise ValueError(f"the re-entry time must be a finite number of seconds >= 0, got {seconds}")


def time_interleaved(
    fns: Mapping[str, Callable[[], object]],
    repeats: int,
    warmup: int,
    block: int = 5,
    reentry_s: float = 0.0,
) -> dict[str, list[float]]:
    """Time each callable ``repeats`` times, in alternating blocks, after ``warmup`` untimed calls each.

    A block is one untimed call (more, until ``reentry_s`` seconds have passed) followed by ``block``
    timed consecutive calls of one callable, as in a training loop (so a call is not timed right after
    the other implementation has evicted its caches and put its worker threads to sleep; on a virtual
    machine a core left idle meanwhile can run slowly for some milliseconds after it resumes). Blocks
    of the callables alternate, their order rotating each round, so that all see the same machine noise. The garbage collector is disabled
    while timing (as :mod:`timeit` does); its young generations are collected between blocks (the
    callables' garbage; a full collection would cost a third of a second per block in a large process,
    e.g. under pytest).

    Returns the wall-clock duration of every timed call, in seconds, per name.
    """
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    if block < 1:
        raise ValueError("block must be >= 1")
    check_reentry(reentry_s)
    names = list(fns)
    for _ in range(max(warmup, 0)):
        for name in names:
            fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    try:
        r = 0
        while len(samples[names[0]]) < repeats:
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                fn = fns[name]
                gc.collect(1)
                gc.disable()
                entered = time.perf_counter()
                fn()  # re-entry call(s) of the block, untimed
                while time.perf_counter() - entered < reentry_s:
                    fn()
                for _ in range(min(block, repeats - len(samples[name]))):
                    start = time.perf_counter_ns()
                    fn()
                    samples[name].append((time.perf_counter_ns() - start) * 1e-9)
                if gc_was_enabled:
                    gc.enable()
            r += 1
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples


def _cpuinfo() -> dict[str, str]:
    """The fields of the first CPU in /proc/cpuinfo (Linux; empty elsewhere)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break  # the first CPU only
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def _cpu_model() -> str | None:
    """CPU model name from /proc/cpuinfo (Linux), else :func:`platform.processor`."""
    return _cpuinfo().get("model name") or platform.processor() or None


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _cache_sizes(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> dict[str, int]:
    """Bytes of each cache level of the first CPU (Linux sysfs: "L1d", "L1i", "L2", "L3"; empty elsewhere):
    with the same kernels, which level holds a chunk's tape and the packed blocks decides the speed."""
    sizes: dict[str, int] = {}
    for index in sorted(root.glob("index[0-9]*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        unit = size[-1:] if size[-1:] in _SIZE_UNITS else ""
        number = size[: len(size) - len(unit)]
        if not number.isdigit():
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        sizes[f"L{level}{suffix}"] = int(number) * _SIZE_UNITS[unit]
    return sizes


def _cpu_id() -> dict[str, Any]:
    """Vendor, family, model, widest SIMD and cache sizes of the first CPU (/proc/cpuinfo and sysfs,
    Linux), where the model name alone does not say it (a virtual machine's "AMD EPYC" is any
    generation: family 23 model 1 is Zen 1, family 25 model 17 Zen 4)."""
    fields = _cpuinfo()
    if not fields:
        return {}
    flags = set(fields.get("flags", "").split())
    simd = next((f for f in ("avx512f", "avx2", "avx", "sse4_2") if f in flags), None)
    return {"vendor": fields.get("vendor_id"), "family": fields.get("cpu family"), "model": fields.get("model"),
            "simd": simd, "caches": _cache_sizes()}


def _git_revision(repo: Path) -> str | None:
    """Current commit of ``repo`` (with ``-dirty`` if the tree has changes), or None."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("-dirty" if dirty else "")


def machine_info(repo: Path | None = None) -> dict[str, Any]:
    """Machine, interpreter and library facts needed to interpret benchmark numbers."""
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    info: dict[str, Any] = {
        "timestamp_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_id": _cpu_id(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity_count": affinity,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "env_threads": {
            key: os.environ[key]
            for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
            if key in os.environ
        },
    }
    if repo is not None:
        info["git_revision"] = _git_revision(repo)
    return info
