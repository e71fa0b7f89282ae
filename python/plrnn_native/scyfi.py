"""SCYFI: heuristic search for fixed points and k-cycles of a piecewise-linear map.

SCYFI (Eisenmann, Monfared, Göring & Durstewitz, NeurIPS 2023) avoids visiting all
``prod(radices)**k`` region sequences of the exhaustive search. Inside one region sequence
``Omega_1 .. Omega_k`` the k-fold map is affine, so its only candidate cycle is

    z_1 = (I - Pi)^-1 c,   Pi = J_k ... J_1,   c = sum_j (J_k ... J_{j+1}) c_j,
    z_{i+1} = J_i z_i + c_i,

(fixed points: ``k = 1``). The candidate is *real* when ``z_i`` lies in ``Omega_i`` for every ``i``.
When it is *virtual*, the regions it actually visits are a better guess for the next solve: the
search jumps there and solves again. Algorithm (``k = 1`` for fixed points):

1. Outer iteration: draw a random region sequence (every switch unit's piece uniform, independently
   per unit and per step).
2. Inner loop, at most ``max_inner`` solves: solve for the candidate of the current sequence
   (skipped when ``I - Pi`` is singular: a continuum or nothing, never a crash). If it is real
   and of minimal period ``k``, record it (unless known) and end the inner loop; if it is
   virtual, replace the sequence by the regions its points visit and solve again. The inner loop
   also ends at a sequence solved before: the jumps are deterministic and rotation-equivariant, so
   what follows is already known.
3. Stop after ``max_fruitless`` consecutive outer iterations without a new solution, or after
   ``n_outer`` outer iterations in all.

Duplicates are detected by *region code*: the tuple of the piece indices (exact integers) of the
cycle's Lyndon-least rotation, i.e. the rotation whose sequence of region tuples is
lexicographically smallest; coordinates are never rounded and any number of switch units works (no
floating-point codes). Results are sorted by region code, which is the order of
``reference.brute_force_cycles``.

Like any heuristic it can miss solutions (those whose regions are rarely drawn and never jumped to);
the exhaustive search is the complete method for small models.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_instance, check_int
from .piecewise import PiecewiseForm

SINGULAR_COND = 1e12  # I - Pi with a larger condition number is treated as singular (skipped)


def _check(form, rng, k: int, max_fruitless: int, n_outer: int, max_inner: int) -> None:
    check_instance("form", form, PiecewiseForm, "a plrnn_native.piecewise.PiecewiseForm")
    check_instance("rng", rng, np.random.Generator, "a numpy.random.Generator")
    for name, value in (("k", k), ("max_fruitless", max_fruitless), ("n_outer", n_outer),
                        ("max_inner", max_inner)):
        check_int(name, value, 1)


def _canonical(seq: np.ndarray) -> tuple[int, tuple]:
    """``(shift, code)`` of the Lyndon-least rotation ``seq[shift:] + seq[:shift]``."""
    rows = [tuple(int(p) for p in row) for row in seq]
    k = len(rows)
    best, shift = None, 0
    for s in range(k):
        rot = tuple(rows[s:] + rows[:s])
        if best is None or rot < best:
            best, shift = rot, s
    return shift, best


def _primitive(code: tuple) -> bool:
    """True when the sequence is not a repetition of a shorter one (minimal period = its length)."""
    k = len(code)
    return all(code[d:] + code[:d] != code for d in range(1, k) if k % d == 0)


def _solve(form: PiecewiseForm, seq: np.ndarray, cache: dict[tuple, tuple]):
    """Candidate cycle of the region sequence ``seq`` ``[k, n]``: ``[k, M]``, None if singular."""
    M = form.M
    Pi, c = np.eye(M), np.zeros(M)
    maps = []
    for row in seq:
        key = tuple(int(p) for p in row)
        if key not in cache:
            cache[key] = form.region_map(row)
        J, cj = cache[key]
        maps.append((J, cj))
        Pi, c = J @ Pi, J @ c + cj
    lhs = np.eye(M) - Pi
    if np.linalg.cond(lhs) > SINGULAR_COND:  # also inf for an exactly singular matrix
        return None
    try:
        z = np.linalg.solve(lhs, c)
    except np.linalg.LinAlgError:
        return None
    points = np.empty((len(maps), M))
    for i, (J, cj) in enumerate(maps):
        points[i] = z
        z = J @ z + cj
    if not np.isfinite(points).all():
        return None
    return points


def _scyfi(
    form: PiecewiseForm,
    k: int,
    rng: np.random.Generator,
    max_fruitless: int,
    n_outer: int,
    max_inner: int,
):
    radices = form.radices
    n, M = form.n_units, form.M
    # region code -> points [k, M] starting at the canonical rotation
    found: dict[tuple, np.ndarray] = {}
    solved = set()  # codes (canonical rotations) of the sequences solved so far
    cache: dict[tuple, tuple] = {}  # region pieces -> (J, c)
    fruitless = outer = 0
    while outer < n_outer and fruitless < max_fruitless:
        outer += 1
        new = False
        seq = rng.integers(0, radices, size=(k, n)) if n else np.zeros((k, 0), dtype=np.int64)
        for _ in range(max_inner):
            shift, code = _canonical(seq)
            if code in solved:
                break
            solved.add(code)
            points = _solve(form, seq, cache)
            if points is None:
                break
            visited = form.pieces(points)
            if np.array_equal(visited, seq):
                if _primitive(code) and code not in found:
                    found[code] = np.roll(points, -shift, axis=0)
                    new = True
                break
            seq = visited
        fruitless = 0 if new else fruitless + 1
    codes = sorted(found)
    points = np.array([found[c] for c in codes], dtype=np.float64).reshape(len(codes), k, M)
    pieces = np.array(codes, dtype=np.int64).reshape(len(codes), k, n)
    stats = {"regions_visited": len(solved), "outer_iterations": outer}
    return points, pieces, stats


def scyfi_fixed_points(
    form: PiecewiseForm,
    rng: np.random.Generator,
    max_fruitless: int = 100,
    n_outer: int = 100_000,
    max_inner: int = 50,
    return_stats: bool = False,
):
    """Fixed points of the piecewise-linear map ``form`` by SCYFI (see the module docstring).

    Args:
        form: the map (:func:`plrnn_native.piecewise.piecewise_form` of a model).
        rng: a seeded ``numpy.random.Generator`` (the only source of randomness).
        max_fruitless: stop after this many consecutive outer iterations (random restarts) that
            found no new fixed point.
        n_outer: at most this many outer iterations in all.
        max_inner: at most this many solves (jumps to the visited region) per outer iteration.
        return_stats: also return ``{"regions_visited": distinct regions solved (region
            sequences up to rotation for cycles), "outer_iterations": ...}``.

    Returns:
        ``(points [n, M] float64, pieces [n, n_units] int64)`` sorted by pieces (lexicographically),
        plus the stats dict when ``return_stats``. Singular regions (``I - J`` with condition number
        > 1e12, e.g. exact MAR units) are skipped, not reported.
    """
    _check(form, rng, 1, max_fruitless, n_outer, max_inner)
    points, pieces, stats = _scyfi(form, 1, rng, max_fruitless, n_outer, max_inner)
    out = (points[:, 0], pieces[:, 0])
    return out + (stats,) if return_stats else out


def scyfi_cycles(
    form: PiecewiseForm,
    k: int,
    rng: np.random.Generator,
    max_fruitless: int = 100,
    n_outer: int = 100_000,
    max_inner: int = 50,
    return_stats: bool = False,
):
    """k-cycles (minimal period ``k``) of the piecewise-linear map ``form`` by SCYFI.

    Args:
        form: the map. k: the period (``k = 1``: fixed points, as ``[n, 1, M]``).
        rng, max_fruitless, n_outer, max_inner, return_stats: as in :func:`scyfi_fixed_points`
            (an outer iteration draws a random sequence of ``k`` regions).

    Returns:
        ``(points [n, k, M] float64, pieces [n, k, n_units] int64)``: each cycle starts at its
        Lyndon-least rotation (``points[:, i+1] = F(points[:, i])``), cycles sorted by region code;
        plus the stats dict when ``return_stats``. Sequences with a singular ``I - Pi`` are skipped.
    """
    _check(form, rng, k, max_fruitless, n_outer, max_inner)
    points, pieces, stats = _scyfi(form, k, rng, max_fruitless, n_outer, max_inner)
    return (points, pieces, stats) if return_stats else (points, pieces)
