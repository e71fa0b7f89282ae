"""Dynamics of a trained PLRNN, exactly: fixed points, k-cycles, their stability, continua, the
continuous-time equivalent and the Lyapunov spectrum.

Every kind is first written in the generic piecewise-linear form of :mod:`plrnn_native.piecewise`;
the exhaustive solvers (``csrc/analysis/fixed_points.cpp``) visit every linear region, SCYFI
(:mod:`plrnn_native.scyfi`) samples them for models too large for that.

    res = analysis.fixed_points(model)               # exhaustive
    res = analysis.fixed_points(model, method="scyfi", seed=0)
    for fp in res.fixed_points: print(fp.z, fp.stability, fp.spiral)
    cyc = analysis.cycles(model, k=3)
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import List, Optional, Union

import numpy as np

from . import _core
from ._backend import backend as _backend, cycles_exhaustive as _cycles_exhaustive
from ._validation import as_rng, check_array, check_bool, check_choice, check_float, check_int, check_ndarray
from .metrics import lyapunov_spectrum
from .models import PLRNN
from .piecewise import PiecewiseForm, piecewise_form

#: Default limit of the exhaustive search (regions for fixed points, region sequences for cycles):
#: 2**28 regions of an M = 28 standard PLRNN take about a minute on 2 cores; pass a larger
#: ``max_regions`` explicitly for longer searches (they can be interrupted with Ctrl-C).
MAX_REGIONS = 2**28
#: Longest period searched (SCYFI's canonical rotation costs O(k**2) per solve).
MAX_PERIOD = 1000
#: Searches expected to take longer than this many seconds show a progress bar by default.
PROGRESS_AFTER_SECONDS = 5.0
#: Rough seconds per unit of work (one flop-like step) of the exhaustive solvers on one thread, for
#: the up-front estimate: from the README's fixed-point benchmark (M = 20-24, 2-core VM). An order
#: of magnitude only; models that need many refactorisations (e.g. zero bias) take longer.
_SECONDS_PER_WORK = 1.5e-10
#: |lambda| within this distance of 1 counts as marginal.
MARGINAL_TOL = 1e-9


def classify(eigenvalues: np.ndarray, tol: float = MARGINAL_TOL):
    """``(stability, spiral)`` from the eigenvalues of a Jacobian (product): ``"stable"`` (all
    ``|lambda| < 1``), ``"unstable"`` (all ``> 1``), ``"saddle"`` (both), ``"marginal"`` (some
    ``|lambda| = 1`` within ``tol``, e.g. manifold-attractor units); spiral when any is complex."""
    mod = np.abs(eigenvalues)
    if np.any(np.abs(mod - 1.0) <= tol):
        stability = "marginal"
    elif np.all(mod < 1.0):
        stability = "stable"
    elif np.all(mod > 1.0):
        stability = "unstable"
    else:
        stability = "saddle"
    return stability, bool(np.any(np.abs(np.imag(eigenvalues)) > tol * np.maximum(1.0, mod)))


@dataclass
class FixedPoint:
    z: np.ndarray  # [M]
    pieces: np.ndarray  # [n_units] piece of every switch unit (the linear region)
    jacobian: np.ndarray  # [M, M] of the region
    eigenvalues: np.ndarray  # [M] complex
    stability: str
    spiral: bool


@dataclass
class Cycle:
    points: np.ndarray  # [k, M], starting at the Lyndon-least rotation of the region sequence
    pieces: np.ndarray  # [k, n_units]
    jacobian_product: np.ndarray  # [M, M] Pi = J_k ... J_1
    multipliers: np.ndarray  # eigenvalues of Pi
    stability: str
    spiral: bool

    @property
    def period(self) -> int:
        return self.points.shape[0]

    @property
    def lyapunov_exponents(self) -> np.ndarray:
        """``(1/k) log|eig(Pi)|`` per map step, descending."""
        with np.errstate(divide="ignore"):
            return np.sort(np.log(np.abs(self.multipliers)) / self.period)[::-1]


@dataclass
class Continuum:
    """A region (sequence) whose ``I - Pi`` is singular: the solutions form an affine set
    ``point + span(directions)`` when ``consistent`` (e.g. exact manifold-attractor units)."""

    pieces: np.ndarray
    point: np.ndarray  # least-squares solution of (I - Pi) z = c
    directions: np.ndarray  # [M, d] null space of I - Pi
    consistent: bool  # (I - Pi) z = c has solutions
    point_in_region: bool  # the least-squares point itself lies in the region (sufficient, not necessary)


@dataclass
class AnalysisResult:
    method: str
    period: int
    found: list  # FixedPoint or Cycle objects
    continua: List[Continuum]
    n_degenerate: int  # regions (sequences) with singular I - Pi, listed or not
    visited: int  # regions or region sequences solved (distinct ones for SCYFI)
    seconds: float
    form: PiecewiseForm = field(repr=False)

    @property
    def fixed_points(self) -> List[FixedPoint]:
        """The fixed points (of a :func:`fixed_points` result)."""
        return self.found if self.period == 1 and all(isinstance(f, FixedPoint) for f in self.found) else []

    @property
    def cycles(self) -> List[Cycle]:
        """The cycles (of a :func:`cycles` result; for k = 1 the fixed points as 1-cycles)."""
        return [c for c in self.found if isinstance(c, Cycle)]

    @property
    def points(self) -> np.ndarray:
        """``[n, M]`` fixed points or ``[n, k, M]`` cycles."""
        M, count = self.form.M, len(self.found)
        if self.period == 1:
            return np.array([f.z if isinstance(f, FixedPoint) else f.points[0] for f in self.found]).reshape(count, M)
        return np.array([c.points for c in self.found]).reshape(count, self.period, M)

    @property
    def pieces(self) -> np.ndarray:
        n, count = self.form.n_units, len(self.found)
        shape = (count, n) if self.period == 1 else (count, self.period, n)
        return np.array([f.pieces for f in self.found], dtype=np.int64).reshape(shape)

    @property
    def degenerate_regions(self) -> List[np.ndarray]:
        return [c.pieces for c in self.continua]

    regions_visited = property(lambda self: self.visited)


def _form(model: PLRNN, s) -> PiecewiseForm:
    return piecewise_form(model, s)


def _product(form: PiecewiseForm, seq: np.ndarray):
    """``Pi = J_k ... J_1`` and ``c`` of a region sequence ``[k, n]``."""
    M = form.M
    Pi, c = np.eye(M), np.zeros(M)
    for pieces in seq:
        J, ci = form.region_map(pieces)
        Pi, c = J @ Pi, J @ c + ci
    return Pi, c


def _continuum(form: PiecewiseForm, seq: np.ndarray) -> Continuum:
    seq = np.atleast_2d(seq)
    Pi, c = _product(form, seq)
    A = np.eye(form.M) - Pi
    u, sv, vt = np.linalg.svd(A)
    tol = max(A.shape) * np.finfo(float).eps * max(1.0, sv[0] if sv.size else 1.0)
    null = vt[sv <= tol].T
    point = np.linalg.lstsq(A, c, rcond=None)[0]
    consistent = bool(np.linalg.norm(A @ point - c) <= 1e-9 * max(1.0, np.linalg.norm(c)))
    z, inside = point, True
    for pieces in seq:
        inside &= bool(np.array_equal(form.pieces(z), pieces))
        J, ci = form.region_map(pieces)
        z = J @ z + ci
    return Continuum(seq if seq.shape[0] > 1 else seq[0], point, null, consistent, consistent and inside)


def _count(form: PiecewiseForm, k: int) -> float:
    """Regions (k = 1) or region sequences of length k to visit (about R**k / k), computed in
    logarithms first so that a huge k costs nothing; math.inf beyond 2**1000."""
    R = form.n_regions
    if R <= 1:
        return 1
    if k * math.log2(R) - math.log2(k) > 1000:
        return math.inf
    return R ** k // k


def search_size(model, k: int = 1, s: Optional[np.ndarray] = None) -> Union[int, float]:
    """Linear regions (``k = 1``) or region sequences of length ``k`` (about ``R**k / k``) that the
    exhaustive search visits: compare with ``max_regions`` before asking for it. ``math.inf`` when
    astronomically many (above 2**1000)."""
    k = check_int("k", k, 1, MAX_PERIOD)
    return _count(_form(model, s), k)


def _fmt_count(count) -> str:
    if count == math.inf:
        return "more than 2^1000"
    return f"{count:,}" if count < 1e7 else f"{float(count):.3g}"


def _estimate_seconds(form: PiecewiseForm, count, k: int) -> float:
    """Rough wall time of the exhaustive search on the current number of threads."""
    M, n = form.M, form.n_units
    per_item = 4.0 * M * M if k == 1 else 2.0 * k * M * M * (M + n)
    return float(count) * per_item * _SECONDS_PER_WORK / max(1, _core.get_num_threads())


def _fmt_seconds(sec: float) -> str:
    if sec == math.inf or sec > 3.2e9:
        return "longer than a century"
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if sec >= size:
            return f"about {sec / size:.3g} {unit}"
    return f"about {sec:.2g} s"


def _check_size(form: PiecewiseForm, count, max_regions: int, what: str, k: int) -> None:
    max_regions = check_int("max_regions", max_regions, 1)
    if count > max_regions:
        raise ValueError(f"max_regions: the exhaustive search would visit {_fmt_count(count)} {what} "
                         f"({_fmt_seconds(_estimate_seconds(form, count, k))} on "
                         f"{_core.get_num_threads()} threads), more than max_regions={max_regions:,}; "
                         f"use method='scyfi', or a larger max_regions to run it anyway (Ctrl-C stops it)")


class _Progress:
    """The progress report of an exhaustive search: the expected cost up front, then a tqdm bar
    (where tqdm is installed) fed by the native solver every few milliseconds."""

    def __init__(self, progress, form: PiecewiseForm, count, k: int, what: str):
        if progress is not None:  # None: automatic
            check_bool("progress", progress)
        seconds = _estimate_seconds(form, count, k)
        self.bar = None
        self.enabled = bool(progress) if progress is not None else seconds > PROGRESS_AFTER_SECONDS
        if not self.enabled:
            return
        summary = (f"exhaustive search over {_fmt_count(count)} {what}, {_fmt_seconds(seconds)} on "
                   f"{_core.get_num_threads()} threads (Ctrl-C stops it)")
        try:
            from tqdm.auto import tqdm
        except ImportError:
            print(f"plrnn_native: {summary}", file=sys.stderr, flush=True)
            return
        self.bar = tqdm(total=int(count), desc="fixed points" if k == 1 else f"{k}-cycles",
                        unit=" regions" if k == 1 else " sequences", unit_scale=True)
        self.bar.write(f"plrnn_native: {summary}", file=sys.stderr)

    def callback(self):
        """The native solver's progress callable (None when no bar is shown)."""
        if self.bar is None:
            return None
        bar = self.bar
        return lambda done: bar.update(min(done, bar.total) - bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def fixed_points(model: PLRNN, method: str = "exhaustive", s: Optional[np.ndarray] = None,
                 seed=None, max_regions: int = MAX_REGIONS, max_continua: int = 100,
                 device: str = "cpu", progress: Optional[bool] = None, **scyfi_options) -> AnalysisResult:
    """All fixed points ``z* = F(z*)`` of ``model`` (with constant input ``s``, default 0).

    Args:
        method: ``"exhaustive"`` (every linear region; exact and complete) or ``"scyfi"``
            (heuristic for large models; ``seed`` and ``scyfi_options`` go to
            :func:`plrnn_native.scyfi.scyfi_fixed_points`).
        max_regions: refuse an exhaustive search over more regions than this (checked before any
            work, with the expected time in the message).
        max_continua: degenerate regions (singular ``I - J``) described as :class:`Continuum`.
        device: ``"cpu"``, ``"cuda"`` / ``"cuda:N"`` for the exhaustive search on a GPU (two-piece
            units only; degenerate regions are counted there, not listed), or ``"auto"``.
        progress: the CPU exhaustive search's expected cost and a progress bar (tqdm) on stderr;
            None (default): only for searches expected to take more than PROGRESS_AFTER_SECONDS.

    The exhaustive search stops at Ctrl-C (KeyboardInterrupt) within milliseconds.
    """
    method = check_choice("method", method, ("exhaustive", "scyfi"))
    be = _backend(device)
    form = _form(model, s)
    rng = as_rng("seed", seed) if method == "scyfi" else None
    t0 = time.perf_counter()
    if method == "exhaustive":
        count = _count(form, 1)
        _check_size(form, count, max_regions, "linear regions", 1)
        bar = _Progress(progress if be.reports_progress else False, form, count, 1, "linear regions")
        try:
            pts, pcs, deg, n_deg, visited = be.fixed_points_exhaustive(form, progress=bar.callback())
        finally:
            bar.close()
    else:
        from .scyfi import scyfi_fixed_points

        pts, pcs, stats = scyfi_fixed_points(form, rng, return_stats=True, **scyfi_options)
        deg, n_deg, visited = np.zeros((0, form.n_units), np.int32), 0, stats["regions_visited"]
    found = []
    for z, pieces in zip(pts, pcs):
        J, _ = form.region_map(pieces)
        eig = np.linalg.eigvals(J)
        stability, spiral = classify(eig)
        found.append(FixedPoint(np.array(z), np.array(pieces, dtype=np.int64), J, eig, stability, spiral))
    continua = [_continuum(form, d) for d in deg[:max_continua]]
    return AnalysisResult(method, 1, found, continua, int(n_deg), int(visited), time.perf_counter() - t0, form)


def cycles(model: PLRNN, k: int, method: str = "exhaustive", s: Optional[np.ndarray] = None, seed=None,
           max_regions: int = MAX_REGIONS, max_continua: int = 100, progress: Optional[bool] = None,
           **scyfi_options) -> AnalysisResult:
    """All ``k``-cycles of minimal period ``k`` (``k = 1``: the fixed points as 1-cycles;
    ``k <= MAX_PERIOD``).

    The exhaustive search enumerates the region sequences as Lyndon words (one rotation of every
    primitive necklace: no rotations, no lower periods), ``R**k / k`` of them for ``R`` regions;
    more than ``max_regions`` of them is refused before any work. ``progress`` as in
    :func:`fixed_points`; Ctrl-C stops the search.
    """
    k = check_int("k", k, 1, MAX_PERIOD)
    method = check_choice("method", method, ("exhaustive", "scyfi"))
    form = _form(model, s)
    t0 = time.perf_counter()
    if k == 1:  # fixed points as 1-cycles
        fp = fixed_points(model, method, s, seed, max_regions, max_continua, progress=progress,
                          **scyfi_options)
        found = [Cycle(f.z[None], f.pieces[None], f.jacobian, f.eigenvalues, f.stability, f.spiral)
                 for f in fp.found]
        return AnalysisResult(fp.method, 1, found, fp.continua, fp.n_degenerate, fp.visited, fp.seconds, form)
    if method == "exhaustive":
        what = f"region sequences of length {k}"
        count = _count(form, k)
        _check_size(form, count, max_regions, what, k)
        bar = _Progress(progress, form, count, k, what)
        try:
            pts, pcs, deg, n_deg, visited = _cycles_exhaustive(form, k, progress=bar.callback())
        finally:
            bar.close()
    else:
        from .scyfi import scyfi_cycles

        pts, pcs, stats = scyfi_cycles(form, k, as_rng("seed", seed), return_stats=True, **scyfi_options)
        deg, n_deg, visited = np.zeros((0, k, form.n_units), np.int32), 0, stats["regions_visited"]
    found = []
    for orbit, seq in zip(pts, pcs):
        Pi, _ = _product(form, seq)
        eig = np.linalg.eigvals(Pi)
        stability, spiral = classify(eig)
        found.append(Cycle(np.array(orbit).reshape(k, form.M), np.array(seq, dtype=np.int64).reshape(k, -1),
                           Pi, eig, stability, spiral))
    continua = [_continuum(form, d) for d in deg[:max_continua]]
    return AnalysisResult(method, k, found, continua, int(n_deg), int(visited), time.perf_counter() - t0, form)


def degree(model: PLRNN, k: int = 1, s: Optional[np.ndarray] = None) -> int:
    """The fixed-point index sum of ``F^k`` from the exhaustive solutions:
    ``sum over d | k of d * sum over d-cycles of sgn det(I - Pi_d^(k/d))``.

    For ``k = 1`` this is ``sum sgn det(I - J)`` over the fixed points. It is a topological degree
    that does not depend on the bias ``h``, so a solver that misses or invents solutions changes it.
    (The sum over the k-cycles alone is not invariant for k > 1: the fixed points of ``F^k`` include
    the lower periods.)
    """
    k = check_int("k", k, 1)
    total = 0
    for d in range(1, k + 1):
        if k % d:
            continue
        res = cycles(model, d, s=s)  # d = 1: the fixed points as 1-cycles
        eye = np.eye(res.form.M)
        for c in res.found:
            total += d * int(np.sign(np.linalg.det(eye - np.linalg.matrix_power(c.jacobian_product, k // d))))
    return total


def continuous_time_equivalent(model: PLRNN, z: np.ndarray, dt: float = 1.0, s: Optional[np.ndarray] = None):
    """``(G, g)`` of the linear ODE ``dz/dt = G z + g`` equivalent to the map in the region containing ``z``
    (Monfared & Durstewitz 2020): ``G = logm(J) / dt``, ``g = -G (I - J)^{-1} c``, so the ODE's
    equilibrium is the region's fixed point and ``expm(G dt) = J``. ``G`` is complex when ``J`` has
    eigenvalues on the negative real axis (no real logarithm exists then)."""
    from scipy.linalg import logm

    form = _form(model, s)
    dt = check_float("dt", dt, 0.0, lo_open=True)
    check_ndarray("z", z)
    check_array("z", z, z.dtype if z.dtype in (np.float32, np.float64) else np.dtype(np.float64), (form.M,),
                contiguous=False)
    z = z.astype(np.float64)
    J, c = form.region_map(form.pieces(z))
    G = logm(J) / dt
    if np.allclose(np.imag(G), 0.0):
        G = np.real(G)
    g = -G @ np.linalg.solve(np.eye(form.M) - J, c)
    return G, g


__all__ = ["fixed_points", "cycles", "degree", "search_size", "continuous_time_equivalent", "lyapunov_spectrum",
           "classify",
           "FixedPoint", "Cycle", "Continuum", "AnalysisResult"]
