"""Exact dynamics analysis: fixed points, k-cycles, continua, degree, SCYFI, continuous time.

Checks, from the bottom up:

* the brute-force reference (``reference.brute_force_fixed_points`` / ``brute_force_cycles``: one
  plain ``np.linalg.solve`` per region or Lyndon word) finds true fixed points / cycles of the model
  itself (``model.step`` in float64) and enumerates necklaces correctly;
* the native exhaustive search (``analysis.fixed_points`` / ``analysis.cycles``) returns the same
  sets as the brute force for random models of every kind, chosen to have many solutions
  (mutual inhibition: multistability; negative self-coupling: 2-cycles; antisymmetric coupling:
  3-cycles); sets are compared by region code (exact) and coordinates to 1e-9 relative;
* invariants: the topological degree ``sum sgn det(I - J)`` over the fixed points does not depend
  on the bias ``h``; for period 2 the invariant is the Lefschetz-type count of ``F^2``, which
  includes the fixed points of ``F`` (see ``test_lefschetz_count_of_f2_does_not_depend_on_h``);
* hand-built 2-D models with analytically known k-cycles (k up to 16), a stable-cycle cross-check
  with the Lyapunov spectrum of ``metrics``, manifold-attractor (MAR) units giving continua,
  SCYFI against the exhaustive search, the continuous-time equivalent, and bad input.
"""

from __future__ import annotations

import numpy as np
import plrnn_native as pn
import pytest
import scipy.linalg
from _common import ref
from plrnn_native import analysis
from plrnn_native.piecewise import piecewise_form
from plrnn_native.scyfi import scyfi_cycles, scyfi_fixed_points

COORD_RTOL = 1e-9  # coordinates of the same solution from two solvers, relative to max(1, |z|)
STEP_RTOL = 1e-9  # |F(z) - z| of a solution, relative to max(1, |z|)


# ----------------------------------------------------------------------------------------------
# random models
# ----------------------------------------------------------------------------------------------
# (id, kind, config); "M" as P of the alrnn means P = M.
KIND_CASES = [
    ("standard", "standard", {}),
    ("alrnn-P0", "alrnn", {"P": 0}),
    ("alrnn-P2", "alrnn", {"P": 2}),
    ("alrnn-PM", "alrnn", {"P": "M"}),
    ("dendritic", "dendritic", {"bases": 2}),
    ("dendritic-clipped", "dendritic", {"bases": 2, "clipped": True}),
    ("shallow", "shallow", {}),
    ("shallow-clipped", "shallow", {"clipped": True}),
]
CASE_IDS = [c[0] for c in KIND_CASES]


def random_model(
    kind, M, rng, style="multistable", P=None, bases=None, clipped=False, hidden=None, K=0
):
    """A float64 PLRNN with many solutions of the wanted type.

    ``multistable``: self-coupling ``A`` in [0, 0.5], strong mutual inhibition (``W`` in [-4, 0])
    and positive biases, so that many subsets of winners are fixed points. ``flip``: the same with
    ``A`` in [-0.9, 0] (period-2 oscillations). ``rotation``: ``A`` in [-0.9, 0.9] and mostly
    antisymmetric coupling (period 3 and more). The dendritic and shallow kinds mimic the same
    coupling through their bases / hidden units (``W2`` near the identity).
    """
    kw = {}
    if kind == "alrnn":
        kw["P"] = M if P == "M" else min(P, M)
    if kind == "dendritic":
        kw.update(bases=bases or 2, clipped=clipped)
    if kind == "shallow":
        kw.update(hidden=hidden or M, clipped=clipped)
    model = pn.PLRNN(kind, M=M, N=1, K=K, seed=0, **kw)
    if style == "rotation":
        S = 2.0 * rng.standard_normal((M, M))
        coupling = S - S.T + 0.6 * rng.standard_normal((M, M))
        bias = rng.standard_normal(M)
        model["A"] = rng.uniform(-0.9, 0.9, M)
    else:
        coupling = rng.uniform(-4.0, 0.0, (M, M))
        np.fill_diagonal(coupling, rng.uniform(-0.3, 0.3, M))  # weak self-coupling (W1, alrnn W)
        bias = rng.uniform(0.5, 1.5, M)
        model["A"] = (
            rng.uniform(0.0, 0.5, M) if style == "multistable" else rng.uniform(-0.9, 0.0, M)
        )
    if kind == "shallow":
        H = model["W1"].shape[1]
        W1 = np.zeros((M, H))
        W1[:, : min(M, H)] = coupling[:, : min(M, H)]
        W1 += 0.3 * rng.standard_normal((M, H))
        model["W1"] = W1
        model["W2"] = np.eye(H, M) + 0.3 * rng.standard_normal((H, M))
        model["h2"] = rng.uniform(0.5, 2.0, H) if clipped else rng.uniform(-0.5, 0.5, H)
        model["h1"] = bias
    else:
        if kind != "alrnn":
            np.fill_diagonal(coupling, 0.0)
        model["W"] = coupling
        model["h"] = bias
        if kind == "dendritic":
            Bb = kw["bases"]
            # clipped: alpha < 0 and theta > 0 make phi a saturating relu |alpha| clip(z, 0, theta)
            model["alpha"] = rng.uniform(0.5, 1.0, Bb) * (-1.0 if clipped else 1.0)
            model["theta"] = (
                rng.uniform(0.2, 1.5, (M, Bb)) if clipped else rng.uniform(-0.5, 0.5, (M, Bb))
            )
    if K:
        model["C"] = rng.standard_normal((M, K))
    return model


def case_model(case, M, rng, style="multistable"):
    _, kind, cfg = next(c for c in KIND_CASES if c[0] == case)
    return random_model(kind, M, rng, style=style, **cfg)


def by_pieces(points, pieces):
    """Solutions sorted by region code (lexicographic in the flattened pieces)."""
    flat = pieces.reshape(len(pieces), int(np.prod(pieces.shape[1:])))
    order = np.lexsort(flat.T[::-1]) if flat.shape[1] else np.arange(len(flat))
    return points[order], pieces[order]


def lyndon_rotation(points, pieces):
    """Cycles ``[n, k, ...]`` rotated to start at the Lyndon-least rotation of their region
    sequence (sequences of region tuples compared lexicographically; fixed points unchanged)."""
    points, pieces = np.array(points), np.array(pieces)
    if pieces.ndim == 3:
        for i, seq in enumerate(pieces):
            rows = [tuple(r) for r in seq]
            shift = min(range(len(rows)), key=lambda r: rows[r:] + rows[:r])
            points[i], pieces[i] = np.roll(points[i], -shift, axis=0), np.roll(seq, -shift, axis=0)
    return points, pieces


def assert_same_solutions(points, pieces, ref_points, ref_pieces):
    """Same set of solutions: identical region codes, coordinates within COORD_RTOL (cycles are
    compared from the same rotation: the start convention is checked separately)."""
    points, pieces = by_pieces(*lyndon_rotation(points, pieces))
    ref_points, ref_pieces = by_pieces(*lyndon_rotation(ref_points, ref_pieces))
    assert pieces.shape == ref_pieces.shape, (pieces, ref_pieces)
    np.testing.assert_array_equal(pieces, ref_pieces)
    scale = (
        np.maximum(1.0, np.abs(ref_points).max(axis=-1, keepdims=True)) if len(ref_points) else 1.0
    )
    assert np.all(np.abs(points - ref_points) <= COORD_RTOL * scale)


def assert_true_cycles(model, form, points, pieces, s=None):
    """Every ``points[i]`` ``[k, M]`` is a cycle of ``model.step`` visiting ``pieces[i]``."""
    for orbit, seq in zip(points, pieces):
        k = orbit.shape[0]
        np.testing.assert_array_equal(form.pieces(orbit), seq)
        for i in range(k):
            z, z_next = orbit[i], orbit[(i + 1) % k]
            step = model.step(z) if s is None else model.step(z, s)
            assert np.max(np.abs(step - z_next)) <= STEP_RTOL * max(1.0, np.abs(z_next).max())
        if k > 1:  # minimal period k: no point repeats before k steps
            gaps = [np.abs(orbit[j] - orbit[0]).max() for j in range(1, k)]
            assert min(gaps) > 1e-6 * max(1.0, np.abs(orbit).max())


def assert_true_fixed_points(model, form, points, pieces, s=None):
    assert_true_cycles(model, form, points[:, None], pieces[:, None], s)


# ----------------------------------------------------------------------------------------------
# the brute-force reference itself
# ----------------------------------------------------------------------------------------------
def _mobius(n):
    result, m, p = 1, n, 2
    while p * p <= m:
        if m % p == 0:
            m //= p
            if m % p == 0:
                return 0
            result = -result
        p += 1
    return -result if m > 1 else result


@pytest.mark.parametrize(
    "alphabet,k", [(1, 1), (2, 1), (2, 4), (2, 6), (3, 3), (4, 2), (5, 4), (2, 16)]
)
def test_lyndon_words_are_one_rotation_of_every_primitive_necklace(alphabet, k):
    words = list(ref.lyndon_words(alphabet, k))
    # Witt's formula for the number of primitive necklaces
    count = sum(_mobius(d) * alphabet ** (k // d) for d in range(1, k + 1) if k % d == 0) // k
    assert len(words) == count
    assert words == sorted(set(words))
    for w in words[:500]:
        assert len(w) == k
        assert all(w < w[r:] + w[:r] for r in range(1, k))  # strictly least rotation: primitive


@pytest.mark.parametrize("case", CASE_IDS)
def test_reference_fixed_points_are_true_fixed_points(case):
    rng = np.random.default_rng(1)
    total = 0
    for M in (1, 3, 3):
        model = case_model(case, M, rng)
        form = piecewise_form(model)
        points, pieces, degenerate = ref.brute_force_fixed_points(form)
        assert points.shape == (len(pieces), M) and pieces.dtype == np.int64
        assert not degenerate
        assert_true_fixed_points(model, form, points, pieces)
        total += len(points)
    assert total >= 2


def test_reference_cycles_are_true_cycles():
    rng = np.random.default_rng(2)
    found = 0
    for style, k in (("flip", 2), ("rotation", 3)):
        for _ in range(4):
            model = random_model("standard", 3, rng, style=style)
            form = piecewise_form(model)
            points, pieces = ref.brute_force_cycles(form, k)
            assert points.shape == (len(pieces), k, 3)
            assert_true_cycles(model, form, points, pieces)
            for seq in pieces:  # each cycle starts at its Lyndon-least rotation
                rows = [tuple(r) for r in seq]
                assert all(rows < rows[r:] + rows[:r] for r in range(1, k))
            found += len(points)
    assert found >= 3


# ----------------------------------------------------------------------------------------------
# native exhaustive search vs brute force, every kind
# ----------------------------------------------------------------------------------------------
SIZES = {
    "standard": (1, 4, 8),
    "alrnn-P0": (1, 5),
    "alrnn-P2": (2, 6),
    "alrnn-PM": (1, 4, 8),
    "dendritic": (1, 3, 5),
    "dendritic-clipped": (1, 3, 4),
    "shallow": (1, 4, 6),
    "shallow-clipped": (1, 3, 5),
}


@pytest.mark.parametrize("case", CASE_IDS)
def test_exhaustive_fixed_points_match_brute_force(case):
    rng = np.random.default_rng(3)
    counts = []
    for M in SIZES[case]:
        for _ in range(2):
            model = case_model(case, M, rng)
            form = piecewise_form(model)
            res = analysis.fixed_points(model)
            points, pieces, degenerate = ref.brute_force_fixed_points(form)
            assert res.method == "exhaustive"
            assert res.points.dtype == np.float64 and res.points.shape == (len(res.fixed_points), M)
            assert res.pieces.shape == (len(res.fixed_points), form.n_units)
            assert_same_solutions(res.points, res.pieces, points, pieces)
            assert_true_fixed_points(model, form, res.points, res.pieces)
            assert res.n_degenerate == len(degenerate) == 0
            assert res.regions_visited == form.n_regions
            counts.append(len(points))
    if case == "alrnn-P0":  # linear: exactly one fixed point per model
        assert counts == [1] * len(counts)
    else:  # not a vacuous comparison: solutions, and multistability where regions are many
        assert sum(counts) >= len(counts)
        assert max(counts) >= 2 or case == "alrnn-P2"


MAX_CYCLE_MODELS = 30


@pytest.mark.parametrize("case", CASE_IDS)
@pytest.mark.parametrize("k", [2, 3])
def test_exhaustive_cycles_match_brute_force(case, k):
    # small models: the brute force tries R**k / k sequences in Python
    M = {"dendritic": 2, "dendritic-clipped": 2, "shallow-clipped": 2, "alrnn-P0": 2}.get(case, 3)
    style = "flip" if k == 2 else "rotation"
    rng = np.random.default_rng(4 + k)
    total = with_cycles = 0
    for _ in range(MAX_CYCLE_MODELS):  # until 2 models with k-cycles have been compared
        if with_cycles >= 2 or (case == "alrnn-P0" and _ >= 3):
            break
        model = case_model(case, M, rng, style=style)
        form = piecewise_form(model)
        res = analysis.cycles(model, k)
        points, pieces = ref.brute_force_cycles(form, k)
        assert res.points.shape == (len(res.cycles), k, M)
        assert_same_solutions(res.points, res.pieces, points, pieces)
        assert_true_cycles(model, form, res.points, res.pieces)
        for cyc in res.cycles:
            assert cyc.points.shape == (k, M) and cyc.pieces.shape == (k, form.n_units)
            Pi, _ = ref.cycle_map([form.region_map(p) for p in cyc.pieces])
            np.testing.assert_allclose(
                np.sort_complex(cyc.multipliers),
                np.sort_complex(np.linalg.eigvals(Pi)),
                rtol=1e-9,
                atol=1e-12,
            )
        total += len(points)
        with_cycles += len(points) > 0
    if case != "alrnn-P0":  # a linear map has no cycles
        assert with_cycles >= 1
    else:
        assert total == 0


@pytest.mark.parametrize("method", ["exhaustive", "scyfi"])
def test_cycles_start_at_their_lyndon_least_rotation(method):
    """A cycle starts at the rotation whose region sequence (a sequence of piece tuples, compared
    lexicographically, unit 0 first) is least, as ``reference.brute_force_cycles`` returns it."""
    rng = np.random.default_rng(16)
    seen = 0
    for _ in range(10):
        model = random_model("standard", 3, rng, style="rotation")
        res = analysis.cycles(
            model, 3, method=method, seed=0, **({"max_fruitless": 300} if method == "scyfi" else {})
        )
        for cyc in res.cycles:
            rows = [tuple(int(x) for x in r) for r in cyc.pieces]
            assert all(rows < rows[r:] + rows[:r] for r in range(1, 3)), rows
            seen += 1
    assert seen >= 3


def test_found_fixed_points_are_classified_from_their_jacobian():
    rng = np.random.default_rng(5)
    seen = set()
    for style in ("multistable", "rotation", "flip"):
        for _ in range(6):
            model = random_model("standard", 4, rng, style=style)
            for fp in analysis.fixed_points(model).fixed_points:
                np.testing.assert_allclose(fp.jacobian, model.jacobian(fp.z), rtol=0, atol=1e-12)
                np.testing.assert_allclose(
                    np.sort_complex(fp.eigenvalues),
                    np.sort_complex(np.linalg.eigvals(fp.jacobian)),
                    atol=1e-10,
                )
                mod = np.abs(fp.eigenvalues)
                expected = (
                    "stable" if np.all(mod < 1) else "unstable" if np.all(mod > 1) else "saddle"
                )
                assert fp.stability == expected
                assert fp.spiral == bool(np.any(np.abs(np.imag(fp.eigenvalues)) > 1e-9))
                seen.add(fp.stability)
    assert {"stable", "saddle"} <= seen


def test_fixed_points_with_constant_input():
    rng = np.random.default_rng(6)
    model = random_model("standard", 5, rng, K=2)
    s = np.array([0.7, -1.2])
    form = piecewise_form(model, s)
    res = analysis.fixed_points(model, s=s)
    points, pieces, _ = ref.brute_force_fixed_points(form)
    assert_same_solutions(res.points, res.pieces, points, pieces)
    assert_true_fixed_points(model, form, res.points, res.pieces, s=s)
    without = analysis.fixed_points(model, s=np.zeros(2))
    assert not (
        without.points.shape == res.points.shape and np.allclose(without.points, res.points)
    )


# ----------------------------------------------------------------------------------------------
# invariants: topological degree (fixed points) and Lefschetz count of F^2 (period 2)
# ----------------------------------------------------------------------------------------------
def _random_standard(rng, M):
    """A standard PLRNN with random A, W (various regimes); h is set by the caller."""
    model = pn.PLRNN("standard", M=M, N=1, seed=0)
    model["A"] = rng.uniform(-0.9, 0.9, M)
    W = rng.standard_normal((M, M)) * rng.uniform(0.5, 3.0) + rng.uniform(-2.0, 0.5)
    np.fill_diagonal(W, 0.0)
    model["W"] = W
    return model


def test_degree_does_not_depend_on_h():
    """``deg = sum_{F(z) = z} sgn det(I - J(z))`` is the Brouwer degree of ``z - F(z)``.

    Changing ``h`` is a homotopy of ``z - F(z)``; it cannot move a solution to or from infinity as
    long as the recession map ``z - J(z) z`` (``h = 0``, positively homogeneous) has no zero other
    than 0, which holds for generic ``A, W``. So the degree is the same for every ``h``.
    """
    rng = np.random.default_rng(7)
    counts = []
    for i in range(200):
        M = int(rng.integers(1, 7))
        model = _random_standard(rng, M)
        degrees = []
        for _ in range(4):
            model["h"] = rng.uniform(0.5, 2.0) * rng.standard_normal(M)
            res = analysis.fixed_points(model)
            assert res.n_degenerate == 0
            signs = [np.sign(np.linalg.det(np.eye(M) - fp.jacobian)) for fp in res.fixed_points]
            assert analysis.degree(model) == int(sum(signs))
            degrees.append(analysis.degree(model))
            counts.append(len(res.fixed_points))
            if i < 25:  # the reference gives the same count
                form = piecewise_form(model)
                _, pieces, _ = ref.brute_force_fixed_points(form)
                jacobians = [form.region_map(p)[0] for p in pieces]
                ref_degree = sum(np.sign(np.linalg.det(np.eye(M) - J)) for J in jacobians)
                assert int(ref_degree) == degrees[-1]
        assert len(set(degrees)) == 1, (i, degrees)
    counts = np.array(counts)  # not just one fixed point each time: h moves solutions in and out
    assert counts.max() >= 5 and np.mean(counts == 0) > 0.05 and np.mean(counts >= 3) > 0.05


def lefschetz_f2(model, s=None):
    """``L(F^2) = sum_{F^2(z) = z} sgn det(I - D F^2(z))`` from the fixed points and 2-cycles of F.

    The fixed points of ``F^2`` are the fixed points of ``F`` (``D F^2 = J^2``) and both points of
    every 2-cycle (``D F^2 = J_2 J_1`` or ``J_1 J_2``, same determinant), so
    ``L = sum_fp sgn det(I - J^2) + 2 sum_{2-cycles} sgn det(I - Pi)``.
    """
    M = model.M
    eye = np.eye(M)
    fps = analysis.fixed_points(model, s=s).fixed_points
    cyc = analysis.cycles(model, 2, s=s).cycles
    fixed = sum(np.sign(np.linalg.det(eye - fp.jacobian @ fp.jacobian)) for fp in fps)
    two = sum(np.sign(np.linalg.det(eye - c.jacobian_product)) for c in cyc)
    return int(fixed + 2 * two), int(two)


def test_lefschetz_count_of_f2_does_not_depend_on_h():
    """For period 2 the ``h``-invariant is the degree of ``z - F^2(z)`` (a Lefschetz number), which
    counts the fixed points of ``F`` too:
    ``sum_fp sgn det(I - J^2) + 2 sum_2cycles sgn det(I - Pi)``.

    ``analysis.degree(model, k=2)`` returns exactly this count. The 2-cycle sum alone is *not* invariant: a
    2-cycle can be born from a fixed point in a flip (border-collision) bifurcation as ``h`` moves,
    changing it while the fixed point's ``sgn det(I - J^2)`` changes to compensate. The test checks
    the invariant and that the counter-examples exist among the sampled models.
    """
    rng = np.random.default_rng(8)
    two_only_changed = 0
    for i in range(60):
        M = int(rng.integers(1, 5))
        model = _random_standard(rng, M)
        totals, twos = [], []
        for _ in range(3):
            model["h"] = rng.standard_normal(M)
            total, two = lefschetz_f2(model)
            totals.append(total)
            twos.append(two)
            assert analysis.degree(model, k=2) == total
        assert len(set(totals)) == 1, (i, totals, twos)
        two_only_changed += len(set(twos)) > 1
    assert two_only_changed >= 1


# ----------------------------------------------------------------------------------------------
# hand-built models with known cycles
# ----------------------------------------------------------------------------------------------
def rotation_cycle_model(k, growth=1.05, d=1.0, a2=-0.5):
    """2-D ALRNN (P = 1) with an analytically known k-cycle; returns ``(model, points [k, M], mu)``.

    Construction. ``F(z) = diag(A) z + W (z1, relu(z2)) + h``: region L = {z2 <= 0} (piece 0),
    R = {z2 > 0} (piece 1), ``J_R = diag(A) + W``, ``J_L = J_R - w e2^T`` with ``w = W[:, 1]`` (the
    maps agree on z2 = 0: the map is continuous). Choose ``J_R = rho R(theta)``, a rotation by
    ``theta = 2 pi / k`` scaled by ``rho = growth**(1/k)``, ``A = (0, a2)`` (so
    ``W = J_R - diag(A)``, ``w = (-rho s, rho c - a2)``, ``c, s = cos, sin theta``) and
    ``h = (I - J_R) q``, ``q = (0, d)``:
    ``F_R(z) = q + rho R(theta) (z - q)`` rotates about ``q``, ``F_L(z) = F_R(z) - w z2``.

    Cycle with the region sequence (L, R, ..., R): ``p_1 = F_L(p_0)``, ``p_{j+1} = F_R(p_j)``.
    As ``R(theta)^(k-1) = R(-theta)``, with ``e = p_0 - q``:
    ``e = rho^k e - rho^(k-1) v p0_2``, ``v = R(-theta) w = (-a2 s, rho - a2 c)``. Its components
    give

        p0_2 = d (1 - mu1) / (1 - mu2),   e_1 = rho^(k-1) a2 s p0_2 / (1 - mu1),
        mu1 = rho^k = growth,             mu2 = rho^(k-1) a2 c,

    and ``Pi = J_R^(k-1) J_L = rho^k I - rho^(k-1) v e2^T`` has the eigenvalues (multipliers) mu1
    (eigenvector e1) and ``mu1 - rho^(k-1) v_2 = mu2``. With ``growth = 1.05 > 1``, ``d = 1`` and
    ``|a2| <= 0.5``: ``|mu2| < 1`` so ``p0_2 < 0`` (p_0 in L) and the cycle is a saddle. That
    ``p_1 .. p_{k-1}`` lie in R is checked with a margin (for ``a2 = 0`` it is provable by hand:
    ``p_j2 = d (1 - rho^j cos(j theta)) > 0`` iff ``rho^(k-1) cos(theta) < 1``, true for k <= 20;
    ``a2 = -0.5`` keeps ``J_L`` invertible, which the Lyapunov cross-check needs).
    """
    theta = 2 * np.pi / k
    c, s = np.cos(theta), np.sin(theta)
    rho = growth ** (1.0 / k)
    rot = lambda a: np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    JR = rho * rot(theta)
    A = np.array([0.0, a2])
    q = np.array([0.0, d])
    model = pn.PLRNN("alrnn", M=2, N=1, P=1, seed=0)
    model["A"], model["W"], model["h"] = A, JR - np.diag(A), (np.eye(2) - JR) @ q
    w = model["W"][:, 1]
    mu1, mu2 = rho**k, rho ** (k - 1) * a2 * c
    p02 = d * (1 - mu1) / (1 - mu2)
    e = np.array([rho ** (k - 1) * a2 * s * p02 / (1 - mu1), p02 - d])
    p1 = q + JR @ e - w * p02
    points = [q + e] + [q + rho ** (j - 1) * rot((j - 1) * theta) @ (p1 - q) for j in range(1, k)]
    return model, np.array(points), np.array([mu1, mu2])


@pytest.mark.parametrize("k", [2, 3, 5, 8, 16])
def test_rotation_model_has_its_known_cycle(k):
    model, points, mu = rotation_cycle_model(k)
    form = piecewise_form(model)
    pieces = np.array([[0]] + [[1]] * (k - 1))
    # certificate independent of every solver: the closed form is a cycle of model.step
    assert points[0, 1] < -0.02 and np.all(points[1:, 1] > 0.02)
    assert_true_cycles(model, form, points[None], pieces[None])

    res = analysis.cycles(model, k)
    ref_points, ref_pieces = ref.brute_force_cycles(form, k)
    assert_same_solutions(res.points, res.pieces, ref_points, ref_pieces)
    assert_true_cycles(model, form, res.points, res.pieces)
    match = [c for c in res.cycles if np.array_equal(c.pieces, pieces)]
    assert len(match) == 1
    cyc = match[0]
    np.testing.assert_allclose(cyc.points, points, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.sort(cyc.multipliers.real), np.sort(mu), atol=1e-9)
    assert np.allclose(cyc.multipliers.imag, 0.0, atol=1e-9)
    assert cyc.stability == "saddle" and not cyc.spiral
    np.testing.assert_allclose(
        cyc.lyapunov_exponents, np.sort(np.log(np.abs(mu)) / k)[::-1], atol=1e-9
    )
    # the focus q = (0, 1) of the rotation is a real (unstable, spiral for k > 2) fixed point
    fps = analysis.fixed_points(model)
    assert any(
        np.allclose(fp.z, [0.0, 1.0], atol=1e-12) and fp.stability == "unstable"
        for fp in fps.fixed_points
    )


def test_scyfi_finds_the_16_cycle():
    model, points, _ = rotation_cycle_model(16)
    form = piecewise_form(model)
    found, pieces = scyfi_cycles(form, 16, np.random.default_rng(0), max_fruitless=2000)
    exact = analysis.cycles(model, 16)
    assert_same_solutions(found, pieces, exact.points, exact.pieces)
    assert any(np.allclose(p, points, atol=1e-9) for p in found)


def _stable_cycles(rng, k, want=3, max_models=400):
    """Up to ``want`` stable k-cycles of random standard PLRNNs (M = 3): ``[(model, cycle)]``."""
    out = []
    for _ in range(max_models):
        model = random_model("standard", 3, rng, style="flip" if k == 2 else "rotation")
        out += [(model, c) for c in analysis.cycles(model, k).cycles if c.stability == "stable"]
        if len(out) >= want:
            break
    return out


def _lyapunov_tolerance(Pi, k, T):
    """Error bound of QR exponents along a periodic orbit after ``T`` steps (``T/k`` periods).

    Along the cycle the frame sees ``Pi^n = V Lambda^n V^-1``: the volumes the QR method measures
    differ from ``prod |lambda_i|^n`` by factors within ``kappa(V)`` and the leading minors of
    ``V^-1`` (the start frame's components), fixed numbers, so each exponent is off by at most
    ``C / T`` with ``C = 2 (log kappa(V) + max_j |log |minor_j||) + 1``.
    """
    lam, V = np.linalg.eig(Pi)
    V = V[:, np.argsort(-np.abs(lam))]
    Vinv = np.linalg.inv(V)
    minors = [abs(np.linalg.det(Vinv[:j, :j])) for j in range(1, Pi.shape[0] + 1)]
    if min(minors) < 1e-6:  # the start frame misses an eigen-direction: no useful bound
        return np.inf
    C = 2 * (np.log(np.linalg.cond(V)) + max(abs(np.log(m)) for m in minors)) + 1
    return C / T


@pytest.mark.parametrize("k", [2, 3])
def test_lyapunov_exponents_of_a_stable_cycle(k):
    rng = np.random.default_rng(9)
    checked = 0
    for model, cyc in _stable_cycles(rng, k, want=8):
        T = 600 * k
        expected = np.sort(np.log(np.abs(cyc.multipliers)) / k)[::-1]
        np.testing.assert_allclose(cyc.lyapunov_exponents, expected, atol=1e-12)
        tol = _lyapunov_tolerance(cyc.jacobian_product, k, T)
        if not tol < 0.02:
            continue
        spectrum = pn.metrics.lyapunov_spectrum(model, T=T, z0=cyc.points[0].copy(), transient=0)
        np.testing.assert_allclose(spectrum, expected, rtol=0, atol=tol)
        checked += 1
    assert checked >= 3


def test_lyapunov_exponents_of_the_16_cycle():
    # a saddle with |mu1| = 1.05 per period: from the exact point the orbit stays on the cycle for
    # T = 16 * 150 steps (rounding errors grow by 1.05**150 ~ 1.5e3 only)
    model, points, _ = rotation_cycle_model(16)
    cyc = next(
        c for c in analysis.cycles(model, 16).cycles if np.allclose(c.points, points, atol=1e-9)
    )
    T = 16 * 150
    spectrum = pn.metrics.lyapunov_spectrum(model, T=T, z0=points[0].copy(), transient=0)
    tol = _lyapunov_tolerance(cyc.jacobian_product, 16, T)
    np.testing.assert_allclose(spectrum, cyc.lyapunov_exponents, rtol=0, atol=tol)


# ----------------------------------------------------------------------------------------------
# manifold-attractor units: continua
# ----------------------------------------------------------------------------------------------
def _singular_regions(form):
    return sorted(tuple(p) for p in ref.brute_force_fixed_points(form)[2])


def test_mar_unit_makes_every_region_degenerate():
    # unit 2 with A = 1, W[2, :] = 0, h = 0 is an exact integrator: z_2' = z_2 in every region, so
    # I - J has a zero row everywhere and no fixed point is isolated
    rng = np.random.default_rng(10)
    model = random_model("standard", 4, rng)
    A, W, h = model["A"].copy(), model["W"].copy(), model["h"].copy()
    A[2], W[2, :], h[2] = 1.0, 0.0, 0.0
    model["A"], model["W"], model["h"] = A, W, h
    form = piecewise_form(model)
    res = analysis.fixed_points(model)
    assert len(res.fixed_points) == 0 and res.points.shape == (0, 4)
    assert res.n_degenerate == 16 == len(res.degenerate_regions)
    assert sorted(tuple(p) for p in res.degenerate_regions) == _singular_regions(form)
    for region in res.degenerate_regions:
        J, _ = form.region_map(region)
        assert np.linalg.matrix_rank(np.eye(4) - J) < 4
    cyc = analysis.cycles(model, 2)  # Pi has the same zero row: only continua, no crash
    assert len(cyc.cycles) == 0 and cyc.n_degenerate > 0
    assert analysis.fixed_points(model, method="scyfi", seed=0).points.shape == (0, 4)


def test_partial_mar_unit_gives_degenerate_regions_and_a_line_attractor():
    # unit 0 with A = 1, h = 0 and input only from unit 1: z_0' = z_0 + 0.8 relu(z_1). I - J has
    # the rows (0, -0.8 D1, 0), (0, 0.5, -0.4 D2), (-0.5 D0, 0, 0.7), determinant -0.16 D0 D1 D2:
    # every region but (1, 1, 1) is degenerate. Where unit 1 is off, the fixed points form the line
    # z = (t, 2 (0.4 z_2 - 1), z_2), z_2 = (0.2 + 0.5 relu(t)) / 0.7, for t < 3.1 (then z_1 < 0).
    model = pn.PLRNN("standard", M=3, N=1, seed=0)
    model["A"] = np.array([1.0, 0.5, 0.3])
    model["W"] = np.array([[0.0, 0.8, 0.0], [0.0, 0.0, 0.4], [0.5, 0.0, 0.0]])
    model["h"] = np.array([0.0, -1.0, 0.2])
    form = piecewise_form(model)
    res = analysis.fixed_points(model)
    deg = sorted(tuple(int(x) for x in p) for p in res.degenerate_regions)
    assert deg == _singular_regions(form) == [r for r in np.ndindex(2, 2, 2) if r != (1, 1, 1)]
    assert res.n_degenerate == 7
    points, pieces, _ = ref.brute_force_fixed_points(form)
    assert_same_solutions(res.points, res.pieces, points, pieces)
    for t in (-1.5, 0.0, 2.0):
        z2 = (0.2 + 0.5 * max(t, 0.0)) / 0.7
        z = np.array([t, 2.0 * (0.4 * z2 - 1.0), z2])
        np.testing.assert_allclose(model.step(z), z, rtol=0, atol=1e-14)
        region = tuple(int(x) for x in form.pieces(z))
        assert region in deg
        assert any(tuple(int(x) for x in c.pieces) == region and c.consistent for c in res.continua)
    for c in res.continua:
        if c.consistent:  # the least-squares point and the null space solve (I - J) z = c
            J, cc = form.region_map(c.pieces)
            assert c.directions.shape[1] >= 1
            np.testing.assert_allclose((np.eye(3) - J) @ c.directions, 0.0, atol=1e-12)
            np.testing.assert_allclose((np.eye(3) - J) @ c.point, cc, atol=1e-12)
    assert analysis.cycles(model, 2).n_degenerate > 0


# ----------------------------------------------------------------------------------------------
# SCYFI
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASE_IDS)
def test_scyfi_matches_exhaustive(case):
    rng = np.random.default_rng(11)
    for M in SIZES[case][:2]:
        model = case_model(case, M, rng)
        exact = analysis.fixed_points(model)
        res = analysis.fixed_points(model, method="scyfi", seed=0, max_fruitless=1000)
        assert res.method == "scyfi"
        assert_same_solutions(res.points, res.pieces, exact.points, exact.pieces)
    small = case_model(case, 2, rng, style="flip")
    exact2 = analysis.cycles(small, 2)
    res2 = analysis.cycles(small, 2, method="scyfi", seed=0, max_fruitless=1000)
    assert_same_solutions(res2.points, res2.pieces, exact2.points, exact2.pieces)


def test_scyfi_against_brute_force_directly():
    rng = np.random.default_rng(12)
    found = 0
    for style, k in (("multistable", 1), ("flip", 2), ("rotation", 3)):
        for _ in range(3):
            model = random_model("standard", 3, rng, style=style)
            form = piecewise_form(model)
            if k == 1:
                points, pieces = scyfi_fixed_points(
                    form, np.random.default_rng(0), max_fruitless=500
                )
                ref_points, ref_pieces, _ = ref.brute_force_fixed_points(form)
            else:
                points, pieces = scyfi_cycles(form, k, np.random.default_rng(0), max_fruitless=500)
                ref_points, ref_pieces = ref.brute_force_cycles(form, k)
            assert points.dtype == np.float64 and pieces.dtype == np.int64
            assert_same_solutions(points, pieces, ref_points, ref_pieces)
            np.testing.assert_array_equal(pieces, ref_pieces)  # same order: sorted by region code
            found += len(points)
    assert found >= 5


def test_scyfi_is_reproducible_and_reports_stats():
    rng = np.random.default_rng(13)
    form = piecewise_form(random_model("standard", 6, rng))
    a = scyfi_fixed_points(form, np.random.default_rng(5), return_stats=True)
    b = scyfi_fixed_points(form, np.random.default_rng(5), return_stats=True)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2] and 1 <= a[2]["regions_visited"] <= 64


def test_scyfi_region_codes_are_exact_for_many_units():
    # M = 80: a bistable pair (units 0, 1: mutual inhibition) and 78 independent units driven on.
    # Its fixed points are (0 wins), (1 wins) and the saddle (both on); the first two differ only in
    # units 0 and 1, i.e. their binary region codes differ by 1 and 2 next to 2**79: a float64 code
    # would merge them.
    M = 80
    model = pn.PLRNN("standard", M=M, N=1, seed=0)
    model["A"] = np.full(M, 0.5)
    W = np.zeros((M, M))
    W[0, 1] = W[1, 0] = -2.0
    model["W"] = W
    model["h"] = np.ones(M)
    with pytest.raises(ValueError, match="scyfi"):
        analysis.fixed_points(model)
    res = analysis.fixed_points(model, method="scyfi", seed=0, max_fruitless=200)
    expected = np.ones((3, M), dtype=np.int64)
    expected[0, 0] = expected[1, 1] = 0  # sorted by region code: (0,1,..), (1,0,..), (1,1,..)
    np.testing.assert_array_equal(by_pieces(res.points, res.pieces)[1], expected)
    form = piecewise_form(model)
    assert_true_fixed_points(model, form, res.points, res.pieces)
    winners = by_pieces(res.points, res.pieces)[0]
    np.testing.assert_allclose(winners[0, :2], [-6.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(winners[2, :2], [0.4, 0.4], atol=1e-12)


# ----------------------------------------------------------------------------------------------
# continuous-time equivalent
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", [1.0, 0.25])
def test_continuous_time_equivalent(dt):
    """``dz/dt = G z + g`` with ``G = logm(J)/dt``, ``g = -G (I - J)^-1 c``: its time-dt flow is the
    region's affine map, ``expm(dt [[G, g], [0, 0]]) = [[J, c], [0, 1]]``, so the region's fixed
    point is the ODE's equilibrium and ``|eig J| < 1`` iff ``Re eig G < 0`` (docs/science.md,
    "Continuous-time equivalent": an extra ``/dt`` on ``g`` would break this for ``dt != 1``)."""
    rng = np.random.default_rng(14)
    real_log = 0
    for _ in range(30):  # multistable models: many fixed points with positive real eigenvalues
        model = random_model("standard", 4, rng)
        form = piecewise_form(model)
        for fp in analysis.fixed_points(model).fixed_points:
            G, g = analysis.continuous_time_equivalent(model, fp.z, dt=dt)
            assert G.shape == (4, 4) and g.shape == (4,)
            J, c = form.region_map(fp.pieces)
            lam = np.linalg.eigvals(J)
            # a real logarithm exists (and is returned) iff no eigenvalue is on the negative axis
            has_real_log = not np.any((np.abs(lam.imag) < 1e-12) & (lam.real < 0))
            assert (G.dtype == np.float64) == has_real_log
            real_log += has_real_log
            np.testing.assert_allclose(scipy.linalg.expm(G * dt), J, rtol=0, atol=1e-10)
            flow = scipy.linalg.expm(dt * np.block([[G, g[:, None]], [np.zeros((1, 5))]]))
            affine = np.block([[J, c[:, None]], [np.zeros((1, 4)), np.ones((1, 1))]])
            np.testing.assert_allclose(flow, affine, rtol=0, atol=1e-10)
            scale = max(1.0, np.abs(fp.z).max())
            np.testing.assert_allclose(G @ fp.z + g, 0.0, rtol=0, atol=1e-10 * scale)
            stable_ode = np.all(np.linalg.eigvals(G).real < 0)
            assert stable_ode == (fp.stability == "stable")
        if real_log >= 3:
            break
    assert real_log >= 3


# ----------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------
def test_bad_input_raises():
    rng = np.random.default_rng(15)
    model = random_model("standard", 3, rng)
    for bad in ("model", None, {"A": np.zeros(3)}):
        with pytest.raises(TypeError):
            analysis.fixed_points(bad)
        with pytest.raises(TypeError):
            analysis.cycles(bad, 2)
        with pytest.raises(TypeError):
            analysis.continuous_time_equivalent(bad, np.zeros(3))
    for k in (0, -1, 1.5, "2"):
        with pytest.raises((TypeError, ValueError)):
            analysis.cycles(model, k)
    with pytest.raises(ValueError):
        analysis.fixed_points(model, method="newton")
    with pytest.raises(ValueError, match="scyfi"):
        analysis.fixed_points(model, max_regions=4)  # 8 regions
    with pytest.raises(ValueError, match="scyfi"):
        analysis.cycles(model, 3, max_regions=100)  # 8**3 / 3 sequences
    with pytest.raises(ValueError, match="scyfi"):
        analysis.fixed_points(pn.PLRNN("standard", M=40, N=1, seed=0))
    with pytest.raises(ValueError):
        analysis.fixed_points(model, s=np.zeros(2))  # K = 0
    with pytest.raises(ValueError):
        analysis.continuous_time_equivalent(model, np.zeros(2))
    with pytest.raises(ValueError):
        analysis.continuous_time_equivalent(model, np.zeros(3), dt=0.0)
    form = piecewise_form(model)
    with pytest.raises(TypeError):
        scyfi_fixed_points(form, 0)  # a seed, not a Generator
    with pytest.raises(TypeError):
        scyfi_fixed_points(model, np.random.default_rng(0))  # a model, not a PiecewiseForm
    for kw in ({"max_fruitless": 0}, {"n_outer": 0}, {"max_inner": 0}):
        with pytest.raises(ValueError):
            scyfi_fixed_points(form, np.random.default_rng(0), **kw)
    with pytest.raises(TypeError):  # a float where an integer is needed
        scyfi_fixed_points(form, np.random.default_rng(0), max_inner=2.5)
    for k in (0, -2):
        with pytest.raises(ValueError):
            scyfi_cycles(form, k, np.random.default_rng(0))
        with pytest.raises(ValueError):
            ref.brute_force_cycles(form, k)


def test_cuda_device_argument_errors():
    model = pn.PLRNN("standard", M=4, N=2, seed=0)
    with pytest.raises(ValueError, match="device"):
        analysis.fixed_points(model, device="gpu")
    if not pn.cuda.is_available():
        with pytest.raises(RuntimeError, match="device: CUDA is unavailable"):
            analysis.fixed_points(model, device="cuda")
    else:
        with pytest.raises(ValueError, match="two pieces"):
            analysis.fixed_points(pn.PLRNN("dendritic", M=3, N=2, bases=2, seed=0), device="cuda")
