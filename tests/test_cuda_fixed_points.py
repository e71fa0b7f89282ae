"""The CUDA exhaustive fixed-point search (cuda/analysis/fixed_points.cu) against the brute-force reference.

The GPU returns *candidates*: ``z = (I - J_r)^-1 c_r`` from a Gauss-Jordan inverse updated by
Sherman-Morrison along a Gray-code walk, kept when every unit's argument ``a`` lies on its side
of the breakpoint up to ``PIECE_TOL * (1 + |a|)``. So, per model:

* every true fixed point of ``reference.brute_force_fixed_points`` is a candidate of the same region,
  with coordinates within ``coord_tol`` (derived below);
* a candidate of any other region is a near-boundary one: the exact solve of its region puts each
  unit that is in the wrong piece within the screen's slack of its breakpoint (allowed; the Python
  layer re-verifies candidates exactly);
* the number of degenerate regions and of visited regions (``2^n``) match.

Models have many fixed points (weak self-coupling, strong mutual inhibition, positive biases) and
cover both kernels (unit-vector ``V``: standard/ALRNN; dense ``V``: shallow), every team size (the
thread layout depends on ``M``: 1..64), ``n = 0``, Sherman-Morrison chains of the full 255 steps
(``2^18`` regions; a synthetic map with 18 units on 3 coordinates keeps the reference cheap),
exactly singular regions (manifold-attractor units) and buffer overflow.
The GPU tests skip where CUDA is unavailable; the argument checks run wherever the CUDA module is
built (they fail before any GPU work).
"""

from __future__ import annotations

import re

import numpy as np
import plrnn_native as pn
import pytest
from _common import ref
from plrnn_native import cuda
from plrnn_native.piecewise import PiecewiseForm, piecewise_form

requires_gpu = pytest.mark.skipif(
    not cuda.is_available(), reason=f"CUDA unavailable: {cuda.unavailable_reason()}"
)
requires_module = pytest.mark.skipif(not cuda.is_built(), reason=cuda.unavailable_reason())

PIECE_TOL = 1e-7  # the binding's default screen
# guards of the kernel (cuda/analysis/fixed_points.cu): a fresh factorisation at least every REFACTOR_EVERY
# steps, and whenever an update leaves max|Binv| below 1/MAX_SHRINK of its peak since then
REFACTOR_EVERY = 256
MAX_SHRINK = 1e3
EPS = np.finfo(np.float64).eps


def coord_tol(A: np.ndarray, z: np.ndarray) -> float:
    """Allowed |z_gpu - z_ref| (max norm) for the fixed point z of ``(I - J) z = c``, ``A = I - J``.

    A backward-stable solve (LAPACK's, or the kernel's Gauss-Jordan with partial pivoting) has a
    relative forward error of about ``M eps cond(A)``. Since its last factorisation the kernel's
    inverse went through fewer than REFACTOR_EVERY rank-1 updates, each adding rounding errors of at
    most the size of the largest inverse since then, which the guard keeps within MAX_SHRINK times
    the current one. Hence ``REFACTOR_EVERY MAX_SHRINK M eps cond(A) max(1, |z|)``.
    """
    M = A.shape[0]
    return REFACTOR_EVERY * MAX_SHRINK * M * EPS * np.linalg.cond(A) * max(1.0, np.abs(z).max())


# ----------------------------------------------------------------------------------------------
# models and the two ways of solving them
# ----------------------------------------------------------------------------------------------
def multistable_model(kind, M, rng, **cfg):
    """A float64 PLRNN with many fixed points: self-coupling A in [0, 0.5], mutual inhibition in
    [-4, 0] (ALRNN: divided by the number of linear units for their columns), biases in [0.5, 1.5]
    (the shallow kind: the same coupling through W2 ~ identity)."""
    model = pn.PLRNN(kind, M=M, N=1, seed=0, **cfg)
    coupling = rng.uniform(-4.0, 0.0, (M, M))
    bias = rng.uniform(0.5, 1.5, M)
    model["A"] = rng.uniform(0.0, 0.5, M)
    if kind == "shallow":
        H = cfg["hidden"]
        W1 = np.zeros((M, H))
        W1[:, : min(M, H)] = coupling[:, : min(M, H)]
        model["W1"] = W1 + 0.3 * rng.standard_normal((M, H))
        model["W2"] = np.eye(H, M) + 0.3 * rng.standard_normal((H, M))
        model["h2"] = rng.uniform(-0.5, 0.5, H)
        model["h1"] = bias
    else:
        if kind == "standard":
            np.fill_diagonal(coupling, 0.0)
        if kind == "alrnn":  # weaker input from the linear units, which would otherwise dominate
            linear = M - cfg["P"]
            coupling[:, :linear] /= max(1, linear)
        model["W"] = coupling
        model["h"] = bias
    return model


def two_piece_arrays(form) -> dict:
    """The binding's arguments for a PiecewiseForm (its units are not checked to have two pieces:
    the binding does that)."""
    n = form.n_units
    def per_unit(values):  # [n, pieces]
        return np.array(values, dtype=np.float64).reshape(n, -1) if n else np.zeros((0, 2))

    return {
        "J0": np.ascontiguousarray(form.J0, dtype=np.float64),
        "b": np.ascontiguousarray(form.b, dtype=np.float64),
        "U": np.ascontiguousarray(form.U, dtype=np.float64),
        "V": np.ascontiguousarray(form.V, dtype=np.float64),
        "beta": np.array([bp[0] if len(bp) else 0.0 for bp in form.breakpoints]),
        "slopes": per_unit(form.slopes),
        "intercepts": per_unit(form.intercepts),
    }


def gpu_fixed_points(form, **kwargs):
    """``(points [k, M], pieces [k, n] uint8, n_degenerate, regions_visited)`` from the GPU."""
    return cuda._cuda.fixed_points_exhaustive(**two_piece_arrays(form), **kwargs)


def brute_force_vectorised(form, chunk: int = 4096):
    """``reference.brute_force_fixed_points`` for two-piece units, batched over regions (for the
    2^18-region models): ``(points [k, M], pieces [k, n] int64, n_degenerate)``. Singular as in the
    reference: condition number above ``ref.SINGULAR_COND``."""
    M, n = form.M, form.n_units
    beta = np.array([bp[0] for bp in form.breakpoints])
    S, K = np.array(form.slopes), np.array(form.intercepts)  # [n, 2]
    units = np.arange(n)
    points, pieces, n_deg = [], [], 0
    for start in range(0, 2**n, chunk):
        codes = np.arange(start, min(start + chunk, 2**n))
        bits = (codes[:, None] >> units) & 1  # [R, n]
        A = np.eye(M) - form.J0 - np.einsum("mj,rj,kj->rmk", form.U, S[units, bits], form.V)
        c = form.b + K[units, bits] @ form.U.T
        regular = np.linalg.cond(A) <= ref.SINGULAR_COND
        n_deg += int(np.count_nonzero(~regular))
        z = np.linalg.solve(A[regular], c[regular][..., None])[..., 0]
        real = np.all((z @ form.V > beta) == (bits[regular] == 1), axis=1)
        points.append(z[real])
        pieces.append(bits[regular][real])
    return np.concatenate(points), np.concatenate(pieces).astype(np.int64), n_deg


def assert_matches(form, gpu, expected):
    """The GPU candidates ``gpu`` against the reference ``(points, pieces, n_degenerate)``."""
    points, pieces, n_deg, visited = gpu
    ref_points, ref_pieces, ref_deg = expected
    M, n = form.M, form.n_units
    assert points.dtype == np.float64 and points.shape == (len(pieces), M)
    assert pieces.dtype == np.uint8 and pieces.shape == (len(points), n)
    assert visited == 2**n
    assert n_deg == ref_deg
    codes = [int(sum(int(p) << j for j, p in enumerate(row))) for row in pieces]
    assert codes == sorted(codes) and len(set(codes)) == len(codes)  # sorted by region, no repeats
    found = {tuple(int(x) for x in row): z for row, z in zip(pieces, points)}
    eye = np.eye(M)
    beta = np.array([bp[0] for bp in form.breakpoints])
    for z_ref, region in zip(ref_points, ref_pieces):
        key = tuple(int(x) for x in region)
        assert key in found, f"fixed point of region {key} missing from the GPU candidates"
        J, _ = form.region_map(region)
        err = np.abs(found[key] - z_ref).max()
        assert err <= coord_tol(eye - J, z_ref), (key, err)
    true_regions = {tuple(int(x) for x in r) for r in ref_pieces}
    for key in found:
        if key in true_regions:
            continue
        region = np.array(key, dtype=np.int64)
        J, c = form.region_map(region)
        z_exact = np.linalg.solve(eye - J, c)
        a = z_exact @ form.V
        wrong = form.pieces(z_exact) != region
        # the screen's slack, plus what the GPU's coordinate error can move an argument
        slack = 2 * PIECE_TOL * (1.0 + np.abs(a))
        slack += coord_tol(eye - J, z_exact) * np.abs(form.V).sum(axis=0)
        assert np.all(np.abs(a - beta)[wrong] <= slack[wrong]), (key, a, beta)


def reference(form):
    points, pieces, degenerate = ref.brute_force_fixed_points(form)
    return points, pieces, len(degenerate)


# (id, kind, M, config): the team size of the kernel's thread layout is the largest power of two
# <= 32 with team * M <= 128, so M = 1, 5, 8, 20, 40, 64 give teams 32, 16, 8, 4, 2, 2.
CASES = [
    ("standard-M1", "standard", 1, {}),
    ("standard-M2", "standard", 2, {}),
    ("standard-M5", "standard", 5, {}),
    ("standard-M8", "standard", 8, {}),
    ("standard-M10", "standard", 10, {}),
    ("alrnn-M4-P0", "alrnn", 4, {"P": 0}),
    ("alrnn-M6-P6", "alrnn", 6, {"P": 6}),
    ("alrnn-M8-P3", "alrnn", 8, {"P": 3}),
    ("alrnn-M20-P6", "alrnn", 20, {"P": 6}),
    ("alrnn-M40-P5", "alrnn", 40, {"P": 5}),
    ("alrnn-M64-P4", "alrnn", 64, {"P": 4}),
    ("shallow-M2-H3", "shallow", 2, {"hidden": 3}),
    ("shallow-M4-H7", "shallow", 4, {"hidden": 7}),
    ("shallow-M6-H10", "shallow", 6, {"hidden": 10}),
    ("shallow-M36-H5", "shallow", 36, {"hidden": 5}),
]


@requires_gpu
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_matches_brute_force(case):
    _, kind, M, cfg = case
    rng = np.random.default_rng(CASES.index(case))
    total = 0
    for _ in range(3):
        form = piecewise_form(multistable_model(kind, M, rng, **cfg))
        expected = reference(form)
        total += len(expected[0])
        assert_matches(form, gpu_fixed_points(form), expected)
    assert total > 0  # the models are meant to have fixed points


def many_units_form(M, n, rng):
    """``F(z) = A z + b + sum_j u_j relu(z_(j mod M) - beta_j)``: n > M two-piece units on M
    coordinates (unit-vector ``V`` like the standard PLRNN, but 2^n regions at a small M), with
    mutual inhibition and positive biases."""
    beta = rng.uniform(-1.0, 1.0, n)
    return PiecewiseForm(
        J0=np.diag(rng.uniform(0.0, 0.5, M)),
        b=rng.uniform(0.5, 1.5, M),
        U=rng.uniform(-4.0, 0.0, (M, n)) * M / n,
        V=np.eye(M)[:, np.arange(n) % M].copy(),
        breakpoints=[np.array([x]) for x in beta],
        slopes=[np.array([0.0, 1.0]) for _ in beta],
        intercepts=[np.array([0.0, -x]) for x in beta],
    )


LONG_CASES = {
    "unit-V-M3-n18": lambda rng: many_units_form(3, 18, rng),
    "shallow-M3-H18": lambda rng: piecewise_form(multistable_model("shallow", 3, rng, hidden=18)),
}


@requires_gpu
@pytest.mark.slow_on_emulator  # 2^18 regions x 128 coroutines: hours on the emulator
@pytest.mark.parametrize("case", list(LONG_CASES))
def test_long_sherman_morrison_chains(case):
    # 2^18 regions: more than 256 per resident block on any current GPU, so the walk runs full
    # ranges of 255 rank-1 updates between factorisations
    rng = np.random.default_rng(18)
    form = LONG_CASES[case](rng)
    expected = brute_force_vectorised(form)
    assert len(expected[0]) > 0
    assert_matches(form, gpu_fixed_points(form), expected)


def test_vectorised_brute_force_is_the_reference():
    # the batched helper of test_long_sherman_morrison_chains agrees with the reference
    rng = np.random.default_rng(3)
    form = piecewise_form(multistable_model("shallow", 3, rng, hidden=6))
    points, pieces, n_deg = brute_force_vectorised(form)
    ref_points, ref_pieces, ref_deg = reference(form)
    order = np.lexsort(pieces.T[::-1])  # the reference's order: unit 0 most significant
    np.testing.assert_array_equal(pieces[order], ref_pieces)
    np.testing.assert_allclose(points[order], ref_points, rtol=0, atol=1e-12)
    assert n_deg == ref_deg


@requires_gpu
def test_every_region_degenerate():
    # unit 2 with A = 1, W[2, :] = 0, h = 0 is an exact integrator: I - J has a zero row everywhere
    rng = np.random.default_rng(10)
    model = multistable_model("standard", 4, rng)
    A, W, h = model["A"].copy(), model["W"].copy(), model["h"].copy()
    A[2], W[2, :], h[2] = 1.0, 0.0, 0.0
    model["A"], model["W"], model["h"] = A, W, h
    form = piecewise_form(model)
    points, pieces, n_deg, visited = gpu_fixed_points(form)
    assert points.shape == (0, 4) and pieces.shape == (0, 4)
    assert n_deg == 16 == visited
    assert_matches(form, (points, pieces, n_deg, visited), reference(form))


@requires_gpu
def test_some_regions_degenerate():
    # det(I - J) = -0.16 D0 D1 D2: every region but (1, 1, 1) is singular, so the walk steps into
    # singular regions (tiny Sherman-Morrison denominator), out of them (fresh factorisation) and
    # between them
    model = pn.PLRNN("standard", M=3, N=1, seed=0)
    model["A"] = np.array([1.0, 0.5, 0.3])
    model["W"] = np.array([[0.0, 0.8, 0.0], [0.0, 0.0, 0.4], [0.5, 0.0, 0.0]])
    model["h"] = np.array([0.0, -1.0, 0.2])
    form = piecewise_form(model)
    gpu = gpu_fixed_points(form)
    assert gpu[2] == 7
    assert_matches(form, gpu, reference(form))


@requires_gpu
def test_buffer_overflow_is_reported():
    rng = np.random.default_rng(5)
    form = piecewise_form(multistable_model("standard", 6, rng))
    assert len(reference(form)[0]) >= 2
    with pytest.raises(RuntimeError, match=r"\bmax_points\b"):
        gpu_fixed_points(form, max_points=1)


@requires_gpu
def test_bad_device():
    form = piecewise_form(multistable_model("standard", 2, np.random.default_rng(0)))
    with pytest.raises(ValueError, match=r"\bdevice\b"):
        gpu_fixed_points(form, device=cuda.device_count())


# ----------------------------------------------------------------------------------------------
# argument checks: before any GPU work, so they run wherever the module is built
# ----------------------------------------------------------------------------------------------
def _args(M=3, n=2):
    rng = np.random.default_rng(0)
    return {
        "J0": 0.1 * rng.standard_normal((M, M)),
        "b": rng.standard_normal(M),
        "U": rng.standard_normal((M, n)),
        "V": np.eye(M)[:, :n].copy(),
        "beta": np.zeros(n),
        "slopes": np.tile([0.0, 1.0], (n, 1)),
        "intercepts": np.zeros((n, 2)),
    }


BAD_ARGS = [
    ("J0", lambda a: a.update(J0=a["J0"].astype(np.float32)), TypeError),
    ("J0", lambda a: a.update(J0=np.zeros((3, 4))), ValueError),
    ("J0", lambda a: a.update(J0=np.zeros((65, 65)), b=np.zeros(65), U=np.zeros((65, 2)),
                              V=np.zeros((65, 2))), ValueError),
    ("b", lambda a: a.update(b=np.zeros(4)), ValueError),
    ("b", lambda a: a.update(b=np.array([0.0, np.nan, 0.0])), ValueError),
    ("U", lambda a: a.update(U=np.asfortranarray(np.ones((3, 2)))), ValueError),
    ("U", lambda a: a.update(U=np.zeros((3, 41)), V=np.zeros((3, 41)), beta=np.zeros(41),
                             slopes=np.zeros((41, 2)), intercepts=np.zeros((41, 2))), ValueError),
    ("V", lambda a: a.update(V=np.zeros((3, 3))), ValueError),
    ("beta", lambda a: a.update(beta=[0.0, 0.0]), TypeError),
    ("slopes", lambda a: a.update(slopes=np.zeros((2, 3))), ValueError),
    ("intercepts", lambda a: a.update(intercepts=np.zeros(2)), ValueError),
    ("max_points", lambda a: a.update(max_points=-1), ValueError),
    ("device", lambda a: a.update(device=-1), ValueError),
    ("piece_tol", lambda a: a.update(piece_tol=float("nan")), ValueError),
]


@requires_module
@pytest.mark.parametrize("name, mutate, error", BAD_ARGS,
                         ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD_ARGS)])
def test_bad_arguments_name_the_argument(name, mutate, error):
    args = _args()
    mutate(args)
    with pytest.raises(error, match=rf"\b{re.escape(name)}\b"):
        cuda._cuda.fixed_points_exhaustive(**args)


@requires_module
@pytest.mark.parametrize("kind, cfg", [("dendritic", {"bases": 2}),
                                       ("shallow", {"hidden": 3, "clipped": True})],
                         ids=["dendritic", "shallow-clipped"])
def test_more_than_two_pieces_are_refused(kind, cfg):
    form = piecewise_form(pn.PLRNN(kind, M=3, N=1, seed=0, **cfg))
    assert form.radices.max() > 2
    with pytest.raises(ValueError, match=r"two pieces.*CPU"):
        gpu_fixed_points(form)


@requires_module
@pytest.mark.skipif(cuda.is_available(), reason="a GPU is available")
def test_without_gpu_raises_runtime_error():
    with pytest.raises(RuntimeError, match="unavailable"):
        cuda._cuda.fixed_points_exhaustive(**_args())
