"""plrnn_native.metrics: the evaluation protocol of docs/science.md, "Evaluation"."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import plrnn_native as pn
import pytest
from plrnn_native import metrics


def named(arg: str) -> str:
    return rf"\b{re.escape(arg)}\b"


def sines(T, freqs, dt=1.0, phase=0.0, amp=1.0):
    t = np.arange(T) * dt
    return np.stack([amp * np.sin(2 * np.pi * f * t + phase) for f in freqs], axis=1)


def stable_model(M=6, N=3, seed=0, kind="standard"):
    """A contracting standard PLRNN: |A| <= 0.6, ||W|| ~ 0.3."""
    rng = np.random.default_rng(seed)
    model = pn.PLRNN(kind, M=M, N=N, dtype="float64", seed=seed)
    model["A"] = rng.uniform(0.2, 0.6, M)
    W = 0.3 * rng.standard_normal((M, M)) / np.sqrt(M)
    np.fill_diagonal(W, 0.0)
    model["W"] = W
    model["h"] = 0.2 * rng.standard_normal(M)
    model["L"] = 0.5 * rng.standard_normal(model["L"].shape)
    return model


def linear_alrnn(M=5, N=2, seed=1):
    """ALRNN with P = 0: z' = (diag(A) + W) z + h everywhere."""
    rng = np.random.default_rng(seed)
    model = pn.PLRNN("alrnn", M=M, N=N, P=0, dtype="float64", seed=0)
    model["A"] = rng.uniform(0.3, 0.9, M)
    model["W"] = 0.3 * rng.standard_normal((M, M))
    model["h"] = 0.1 * rng.standard_normal(M)
    return model, np.diag(model["A"]) + model["W"]


# ----------------------------------------------------------------------------------------------
# binned state-space divergence
# ----------------------------------------------------------------------------------------------
def test_binned_identical_is_zero():
    x = np.random.default_rng(0).standard_normal((4000, 3))
    assert metrics.state_space_divergence_binned(x, x) == pytest.approx(0.0, abs=1e-12)
    # same distribution, different samples: small compared with disjoint supports below
    y = np.random.default_rng(1).standard_normal((4000, 2))
    z = np.random.default_rng(2).standard_normal((4000, 2))
    assert metrics.state_space_divergence_binned(y, z) < 0.5


def test_binned_hand_computed_two_bins():
    eps = 1e-5
    x_true = np.array([[0.0], [0.0], [0.0], [1.0]])
    # range [0 - 0.1 std, 1 + 0.1 std], two bins split at 0.5; 5.0 lies outside
    x_gen = np.array([[0.0], [1.0], [1.0], [1.0], [1.0], [5.0]])
    # outside="drop" (default): the escaped point is not counted
    p = (np.array([3.0, 1.0]) + eps) / (4 + 2 * eps)
    q = (np.array([1.0, 4.0]) + eps) / (5 + 2 * eps)
    expected = float(np.sum(p * np.log(p / q)))
    got = metrics.state_space_divergence_binned(x_true, x_gen, bins=2, smoothing=eps)
    assert got == pytest.approx(expected, rel=1e-12)
    # outside="bin": it goes to an overflow bin
    c_p = np.array([3.0, 1.0, 0.0])  # bin 0, bin 1, overflow
    c_q = np.array([1.0, 4.0, 1.0])
    p = (c_p + eps) / (4 + 3 * eps)
    q = (c_q + eps) / (6 + 3 * eps)
    expected = float(np.sum(p * np.log(p / q)))
    got = metrics.state_space_divergence_binned(x_true, x_gen, bins=2, smoothing=eps, outside="bin")
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("outside", ["drop", "bin"])
def test_binned_sparse_matches_dense_formula(outside):
    rng = np.random.default_rng(3)
    x_true = rng.standard_normal((500, 2))
    x_gen = 1.3 * rng.standard_normal((700, 2)) + 0.2
    bins, eps, widen = 7, 1e-3, 0.1
    lo = x_true.min(0) - widen * x_true.std(0)
    hi = x_true.max(0) + widen * x_true.std(0)

    def hist(x):
        inside = np.all((x >= lo) & (x < hi), axis=1)
        h, _, _ = np.histogram2d(
            x[inside, 0], x[inside, 1], bins=bins, range=[(lo[0], hi[0]), (lo[1], hi[1])]
        )
        return np.append(h.ravel(), (~inside).sum()) if outside == "bin" else h.ravel()

    p = hist(x_true) + eps
    q = hist(x_gen) + eps
    p, q = p / p.sum(), q / q.sum()
    expected = float(np.sum(p * np.log(p / q)))
    got = metrics.state_space_divergence_binned(
        x_true, x_gen, bins=bins, smoothing=eps, widen=widen, outside=outside
    )
    assert got == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("outside", ["drop", "bin"])
@pytest.mark.parametrize("N", [1, 3, 4])
def test_binned_reference_dense_and_sorted_counts_agree(outside, N, monkeypatch):
    # the histogram of the data made once (BinnedReference, the best-model selection) gives the
    # function's value, the same float whether the counts are dense (bincount) or sorted (unique)
    from plrnn_native.metrics import observations

    rng = np.random.default_rng(N)
    x_true = rng.standard_normal((3000, N))
    gens = [1.2 * rng.standard_normal((int(rng.integers(50, 4000)), N)) + 0.3 for _ in range(3)]
    ref = metrics.BinnedReference(x_true, bins=9, outside=outside)
    dense = [ref.divergence(g) for g in gens]
    assert dense == [metrics.state_space_divergence_binned(x_true, g, bins=9, outside=outside) for g in gens]
    monkeypatch.setattr(observations, "_DENSE_BINS", 0)
    ref = metrics.BinnedReference(x_true, bins=9, outside=outside)
    assert not ref.dense
    assert [ref.divergence(g) for g in gens] == dense
    with pytest.raises(ValueError, match="x_gen"):
        ref.divergence(gens[0][:, :1] if N > 1 else np.ones((5, 2)))


def test_binned_disjoint_is_large_and_escapes_are_penalised():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3000, 2))
    assert metrics.state_space_divergence_binned(x, x + 20.0, outside="bin") > 10.0
    # dropped, a fully escaped trajectory leaves only the smoothing: q is uniform over the bins
    assert metrics.state_space_divergence_binned(x, x + 20.0) > 1.0
    # half of the generated points far outside the data range: with the overflow bin clearly
    # worse than none; dropped (the published convention), only the inside half is compared
    half = np.concatenate([x[:1500], x[:1500] + 100.0])
    assert metrics.state_space_divergence_binned(x, half, outside="bin") > 0.5
    assert metrics.state_space_divergence_binned(x, half) < 0.5


def test_binned_four_dimensions_and_limit():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2000, 4))
    assert metrics.state_space_divergence_binned(x, x) == pytest.approx(0.0, abs=1e-12)
    assert metrics.state_space_divergence_binned(x, rng.standard_normal((2000, 4))) > 0
    with pytest.raises(ValueError, match="gmm"):
        metrics.state_space_divergence_binned(
            rng.standard_normal((100, 5)), rng.standard_normal((100, 5))
        )


# ----------------------------------------------------------------------------------------------
# GMM state-space divergence
# ----------------------------------------------------------------------------------------------
def test_gmm_identical_zero_and_grows_with_shift():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((800, 6))
    assert metrics.state_space_divergence_gmm(x, x, seed=0) == pytest.approx(0.0, abs=1e-12)
    values = [
        metrics.state_space_divergence_gmm(x, x + s, n_samples=500, seed=0) for s in (0.5, 1.0, 3.0)
    ]
    assert 0 < values[0] < values[1] < values[2]
    # far apart supports: large but finite (log-sum-exp)
    far = metrics.state_space_divergence_gmm(x, x + 100.0, n_samples=200, seed=0)
    assert math.isfinite(far) and far > 1e3


def test_gmm_logpdf_is_the_log_of_the_mixture_density():
    # the mixture's log density written out (densities summed directly: fine at these distances), and
    # far from every centre, where the direct sum underflows, against the nearest centre's own term
    from plrnn_native.metrics.observations import _gmm_logpdf

    rng = np.random.default_rng(4)
    centres = rng.standard_normal((300, 5))
    y = rng.standard_normal((40, 5))
    std = 0.8
    d2 = ((y[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    direct = np.log(np.mean(np.exp(-0.5 * d2 / std**2), axis=1) / (2 * np.pi * std**2) ** 2.5)
    np.testing.assert_allclose(_gmm_logpdf(y, centres, std), direct, rtol=1e-12)
    far = centres[:1] + 60.0  # exp(-0.5 * 60^2 * 5 / 0.64) underflows to 0
    nearest = -0.5 * ((far - centres) ** 2).sum(axis=1).min() / std**2
    expected = nearest - np.log(300) - 2.5 * np.log(2 * np.pi * std**2)
    assert _gmm_logpdf(far, centres, std)[0] == pytest.approx(expected, rel=1e-6)


def test_gmm_subsampling_and_seed():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3000, 5))
    y = rng.standard_normal((2500, 5)) + 0.3
    a = metrics.state_space_divergence_gmm(x, y, max_points=1000, n_samples=300, seed=11)
    b = metrics.state_space_divergence_gmm(x, y, max_points=1000, n_samples=300, seed=11)
    assert a == b and a > 0


def test_gmm_shift_matches_gaussian_kl():
    # one point each: KL(N(0, s^2 I) || N(d, s^2 I)) = |d|^2 / (2 s^2), and the MC estimate
    # log p - log q is linear in the sample, so it converges fast
    x, y = np.zeros((1, 3)), np.full((1, 3), 0.5)
    got = metrics.state_space_divergence_gmm(x, y, scaling=0.5, n_samples=20000, seed=0)
    assert got == pytest.approx(3 * 0.25 / (2 * 0.25), rel=0.05)


# ----------------------------------------------------------------------------------------------
# power spectrum
# ----------------------------------------------------------------------------------------------
def test_power_spectrum_same_and_different_frequency():
    T = 8000
    x = sines(T, [50 / T, 120 / T])
    assert metrics.power_spectrum_distance(x, x) == 0.0
    same = (
        sines(T, [50 / T, 120 / T], phase=0.7, amp=3.0) + 2.0
    )  # z-scoring removes scale and offset
    assert metrics.power_spectrum_distance(x, same) < 0.05
    other = sines(T, [800 / T, 1500 / T])
    assert metrics.power_spectrum_distance(x, other) > 0.95


def test_power_spectrum_lengths_and_constant_series():
    x = sines(3000, [40 / 3000])
    longer = sines(5000, [40 / 3000])
    assert metrics.power_spectrum_distance(x, longer) == pytest.approx(0.0, abs=1e-12)
    const = np.full((3000, 1), 2.5)
    d = metrics.power_spectrum_distance(x, const)
    assert 0.0 < d <= 1.0


def test_spectrum_reference_gives_the_function_value_for_every_length():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((700, 2)).cumsum(axis=0)
    ref = metrics.SpectrumReference(x, smoothing_sigma=3.0)
    for n in (700, 900, 400, 700, 3):  # longer, shorter (the data cut to it), and the cached length again
        y = rng.standard_normal((n, 2))
        assert ref.distance(y) == metrics.power_spectrum_distance(x, y, smoothing_sigma=3.0)
    with pytest.raises(ValueError, match="x_gen"):
        ref.distance(np.zeros((10, 3)))


def test_power_spectrum_hand_computed_no_smoothing():
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal(64), rng.standard_normal(64)

    def spec(v):
        v = (v - v.mean()) / v.std()
        p = np.abs(np.fft.rfft(v)) ** 2
        return p / p.sum()

    expected = np.linalg.norm(np.sqrt(spec(a)) - np.sqrt(spec(b))) / np.sqrt(2)
    got = metrics.power_spectrum_distance(a[:, None], b[:, None], smoothing_sigma=0)
    assert got == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------------------------------------
# Lyapunov spectrum
# ----------------------------------------------------------------------------------------------
def test_lyapunov_of_linear_model_is_log_abs_eig():
    model, J = linear_alrnn()
    expected = np.sort(np.log(np.abs(np.linalg.eigvals(J))))[::-1]
    got = metrics.lyapunov_spectrum(model, T=4000, transient=200, seed=0)
    np.testing.assert_allclose(got, expected, atol=3e-3)
    assert np.all(np.diff(got) <= 0)
    # blocks of several steps between QR factorisations give the same exponents
    np.testing.assert_allclose(
        metrics.lyapunov_spectrum(model, T=4000, transient=200, seed=0, renorm_every=5),
        got,
        atol=1e-9,
    )
    # leading exponents only, per unit time
    lead = metrics.lyapunov_spectrum(model, T=4000, transient=200, seed=0, n_exponents=2, dt=0.01)
    np.testing.assert_allclose(lead, got[:2] / 0.01, rtol=1e-9)


def test_lyapunov_contracting_model_all_negative():
    model = stable_model(M=8, N=3, seed=2)
    lam = metrics.lyapunov_spectrum(model, T=2000, transient=200, x0=np.zeros(3))
    assert lam.shape == (8,) and np.all(lam < 0)


def test_lyapunov_diverging_model_raises():
    model, _ = linear_alrnn()
    model["A"] = np.full(model.M, 5.0)
    with pytest.raises(FloatingPointError, match="diverged"):
        metrics.lyapunov_spectrum(model, T=2000, transient=10, seed=0)


# ----------------------------------------------------------------------------------------------
# prediction error and valid prediction time
# ----------------------------------------------------------------------------------------------
def test_prediction_error_own_data_is_zero():
    # M = N: the data-inferred state is the full latent state
    model = pn.PLRNN("standard", M=3, N=3, dtype="float64", seed=0)
    x = model.generate(300, x0=np.array([0.3, -0.2, 0.5]))
    curve = metrics.prediction_error_curve(model, x, n=20)
    assert curve.shape == (21,) and np.all(curve < 1e-24)
    assert metrics.prediction_error(model, x, n=20) < 1e-24


@pytest.mark.parametrize("obs", ["identity", "linear"])
def test_prediction_error_forced_states_own_data(obs):
    # with hidden units the one-step forced rollout reproduces the generating latent states
    model = (
        stable_model(M=6, N=3, seed=3)
        if obs == "identity"
        else pn.PLRNN("standard", M=6, N=3, obs="linear", dtype="float64", seed=3)
    )
    if obs == "linear":
        model["B"] = np.eye(3, 6) + 0.1 * np.random.default_rng(0).standard_normal((3, 6))
        model["L"] = np.linalg.pinv(model["B"])
    x = model.generate(120, x0=np.array([0.5, -1.0, 0.2]))
    if obs == "identity":
        assert metrics.prediction_error(model, x, n=10, init="forced") < 1e-24
    else:  # x = B z exactly along the data, so the forcing correction B^+ (x - B z) is ~0
        assert metrics.prediction_error(model, x, n=10, init="forced") < 1e-20
    # batched input [B, T, N] gives the same kind of answer
    xb = np.stack([x, model.generate(120, x0=np.array([0.1, 0.1, 0.1]))])
    assert metrics.prediction_error(model, xb, n=10, init="forced") < 1e-20


def test_prediction_error_positive_for_wrong_model():
    x = sines(500, [0.01, 0.023, 0.031])
    model = stable_model(M=3, N=3)
    curve = metrics.prediction_error_curve(model, x, n=5)
    assert curve[0] == 0.0 and np.all(curve[1:] > 0)


def test_valid_prediction_time():
    model = pn.PLRNN("standard", M=3, N=3, dtype="float64", seed=0)
    own = model.generate(400, x0=np.array([0.3, -0.2, 0.5]))
    # a model on its own trajectory never exceeds the threshold: censored at the horizon H steps
    H = math.ceil(2.0 / (1.0 * 0.01))
    vpt = metrics.valid_prediction_time(
        model, own, dt=0.01, lyapunov_max=1.0, max_lyapunov_times=2.0
    )
    assert vpt == pytest.approx(H * 0.01 * 1.0)
    # a wrong model: e_0 = 0 (identity observation) and the error exceeds a small threshold at once
    bad = stable_model(M=3, N=3, seed=4)
    y = sines(300, [0.2, 0.3, 0.37])
    assert metrics.valid_prediction_time(bad, y, dt=0.1, lyapunov_max=1.0, threshold=0.05) == 0.0
    loose = metrics.valid_prediction_time(bad, y, dt=0.1, lyapunov_max=1.0, threshold=10.0)
    assert loose == pytest.approx(min(math.ceil(10.0 / 0.1), 299) * 0.1)


# ----------------------------------------------------------------------------------------------
# evaluate
# ----------------------------------------------------------------------------------------------
KEYS = {
    "D_stsp",
    "D_stsp_variant",
    "D_stsp_constants",
    "outside_fraction",
    "D_H",
    "D_H_smoothing_sigma",
    "PE",
    "PE_steps",
    "VPT",
    "VPT_threshold",
    "lyapunov_spectrum_per_step",
    "lambda_max_model",
    "lambda_max_reference",
    "lambda_max_rel_error",
    "diverged",
    "divergence_reason",
    "T_test",
    "T_generated",
    "T_transient",
    "dt",
    "N",
    "M",
}


def test_evaluate_stable_model_binned():
    model = stable_model(M=8, N=3, seed=5)
    x = sines(1200, [0.013, 0.021, 0.005])
    r = metrics.evaluate(
        model, x, dt=0.05, lyapunov_max=0.9, seed=0, lyapunov_steps=2000, lyapunov_transient=200
    )
    assert set(r) == KEYS
    assert r["D_stsp_variant"] == "binned" and r["D_stsp_constants"]["bins"] == 30
    assert not r["diverged"] and r["divergence_reason"] is None
    for key in ("D_stsp", "D_H", "PE", "VPT", "lambda_max_model", "lambda_max_rel_error"):
        assert isinstance(r[key], float) and math.isfinite(r[key]), key
    assert r["D_stsp"] > 0 and 0 <= r["D_H"] <= 1
    assert r["lambda_max_model"] < 0 and len(r["lyapunov_spectrum_per_step"]) == 8
    assert r["lambda_max_model"] == pytest.approx(r["lyapunov_spectrum_per_step"][0] / 0.05)
    assert (r["T_generated"], r["T_transient"]) == (1500, 300)
    json.loads(json.dumps(r))


def test_evaluate_high_dimension_uses_gmm_and_no_reference():
    model = stable_model(M=8, N=6, seed=6)
    x = sines(600, [0.011, 0.017, 0.023, 0.029, 0.031, 0.037])
    r = metrics.evaluate(model, x, dt=0.01, seed=1, lyapunov_steps=500, lyapunov_transient=50)
    assert r["D_stsp_variant"] == "gmm" and r["D_stsp_constants"]["n_samples"] == 1000
    assert math.isfinite(r["D_stsp"]) and r["VPT"] is None and r["lambda_max_rel_error"] is None
    json.dumps(r)


def test_evaluate_model_on_its_own_trajectory():
    model = pn.PLRNN("standard", M=3, N=3, dtype="float64", seed=0)
    x = model.generate(1000, x0=np.array([0.3, -0.2, 0.5]))
    r = metrics.evaluate(
        model,
        x,
        dt=0.01,
        gen_factor=1.0,
        transient_fraction=0.0,
        lyapunov_steps=500,
        lyapunov_transient=10,
    )
    assert r["D_stsp"] == pytest.approx(0.0, abs=1e-12) and r["D_H"] == 0.0 and r["PE"] < 1e-24


@pytest.mark.parametrize("A", [1.5, 1e6])
def test_evaluate_diverging_model_is_flagged_not_raised(A):
    model, _ = linear_alrnn(M=4, N=2)
    model["A"] = np.full(4, A)
    x = sines(400, [0.01, 0.02])
    r = metrics.evaluate(model, x, dt=0.01, lyapunov_max=1.0, lyapunov_steps=100)
    assert r["diverged"] and isinstance(r["divergence_reason"], str)
    assert r["D_stsp"] == math.inf and math.isnan(r["D_H"]) and math.isnan(r["lambda_max_model"])
    assert r["PE"] > 0 and r["VPT"] is not None
    json.dumps(r)


@pytest.mark.parametrize("N, seed", [(3, 5), (6, 6)])
def test_score_trajectory_is_the_observation_part_of_evaluate(N, seed):
    # the same free run as evaluate's (generate from x[0], transient dropped): the same D_stsp, D_H,
    # variant, constants and outside fraction (one rule for both, metrics/protocol.py)
    model = stable_model(M=8, N=N, seed=seed)
    x = sines(600, [0.011, 0.017, 0.023, 0.029, 0.031, 0.037][:N])
    r = metrics.evaluate(model, x, dt=0.01, seed=3, lyapunov_steps=100, lyapunov_transient=10)
    x_gen = model.generate(r["T_generated"], x0=x[0])[r["T_transient"]:]
    s = metrics.score_trajectory(x, x_gen, seed=3)
    assert set(s) == {"D_stsp", "D_stsp_variant", "D_stsp_constants", "outside_fraction", "D_H",
                      "D_H_smoothing_sigma", "T_test", "T_generated"}
    for key in ("D_stsp", "D_stsp_variant", "D_stsp_constants", "outside_fraction", "D_H", "D_H_smoothing_sigma"):
        assert s[key] == r[key], key
    assert (s["T_test"], s["T_generated"]) == (600, 600)
    assert s["D_stsp_variant"] == ("binned" if N <= 4 else "gmm")
    expected_h = metrics.power_spectrum_distance(x, x_gen)
    assert s["D_H"] == expected_h and s["D_H"] > 0
    json.dumps(s)


def test_score_trajectory_of_the_data_itself_is_zero_and_bad_input_raises():
    x = sines(500, [0.013, 0.021, 0.005])
    s = metrics.score_trajectory(x, x)
    assert s["D_stsp"] == pytest.approx(0.0, abs=1e-12) and s["D_H"] == 0.0 and s["outside_fraction"] == 0.0
    with pytest.raises(ValueError, match=named("x_gen")):
        metrics.score_trajectory(x, x[:, :2])
    bad = x.copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match=named("x_gen")):
        metrics.score_trajectory(x, bad)
    with pytest.raises(ValueError, match=named("x_test")):
        metrics.score_trajectory(bad, x)
    const = x.copy()
    const[:, 2] = 1.0
    with pytest.raises(ValueError, match=named("x_test")):
        metrics.score_trajectory(const, x)
    with pytest.raises(ValueError, match=named("x_gen")):
        metrics.score_trajectory(x, x[:1])
    with pytest.raises(ValueError, match=named("x_test")):
        metrics.score_trajectory(x[:1], x)
    with pytest.raises(ValueError, match=named("gmm_scaling")):
        metrics.score_trajectory(x, x, gmm_scaling=0.0)
    with pytest.raises(TypeError, match=named("x_gen")):
        metrics.score_trajectory(x, x.astype(np.complex128))


# ----------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------
def test_bad_input_data_metrics():
    x = np.random.default_rng(9).standard_normal((100, 2))
    with pytest.raises(ValueError, match=named("x_gen")):
        metrics.state_space_divergence_binned(x, x[:, :1])
    with pytest.raises(ValueError, match=named("x_true")):
        metrics.state_space_divergence_binned(x[:, 0], x)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=named("x_gen")):
        metrics.power_spectrum_distance(x, bad)
    with pytest.raises(ValueError, match=named("bins")):
        metrics.state_space_divergence_binned(x, x, bins=0)
    with pytest.raises(ValueError, match=named("smoothing")):
        metrics.state_space_divergence_binned(x, x, smoothing=0.0)
    with pytest.raises(ValueError, match=named("x_true")):
        metrics.state_space_divergence_binned(np.ones((10, 1)), np.ones((10, 1)))
    with pytest.raises(ValueError, match=named("scaling")):
        metrics.state_space_divergence_gmm(x, x, scaling=-1.0)
    with pytest.raises(ValueError, match=named("n_samples")):
        metrics.state_space_divergence_gmm(x, x, n_samples=0)
    with pytest.raises(ValueError, match=named("smoothing_sigma")):
        metrics.power_spectrum_distance(x, x, smoothing_sigma=-1.0)
    with pytest.raises(TypeError, match=named("x_true")):
        metrics.power_spectrum_distance(x.tolist(), x)
    with pytest.raises(TypeError, match=named("x_true")):
        metrics.power_spectrum_distance(x.astype(complex), x)


def test_bad_input_model_metrics():
    model = stable_model(M=4, N=2)
    x = np.random.default_rng(10).standard_normal((50, 2))
    with pytest.raises(TypeError, match=named("x")):
        metrics.prediction_error(model, x.astype(np.float32))
    with pytest.raises(ValueError, match=named("x")):
        metrics.prediction_error(model, x[:, :1])
    with pytest.raises(ValueError, match=named("x")):
        metrics.prediction_error(model, x[:10], n=20)
    with pytest.raises(ValueError, match=named("init")):
        metrics.prediction_error(model, x, init="bogus")
    with pytest.raises(ValueError, match=named("dt")):
        metrics.valid_prediction_time(model, x, dt=0.0, lyapunov_max=1.0)
    with pytest.raises(ValueError, match=named("lyapunov_max")):
        metrics.valid_prediction_time(model, x, dt=0.1, lyapunov_max=-1.0)
    with pytest.raises(ValueError, match=named("n_exponents")):
        metrics.lyapunov_spectrum(model, T=10, n_exponents=5)
    with pytest.raises(ValueError, match=named("z0")):
        metrics.lyapunov_spectrum(model, T=10, z0=np.zeros(3))
    with pytest.raises(ValueError, match=named("x0")):
        metrics.lyapunov_spectrum(model, T=10, z0=np.zeros(4), x0=np.zeros(2))
    with pytest.raises(ValueError, match=named("x_test")):
        metrics.evaluate(model, x[None], dt=0.1)
    with pytest.raises(ValueError, match=named("dt")):
        metrics.evaluate(model, x, dt=-0.1)
    with pytest.raises(ValueError, match=named("x_test")):
        metrics.evaluate(model, np.ones((50, 2)), dt=0.1)
    with pytest.raises(ValueError, match=named("transient_fraction")):
        metrics.evaluate(model, x, dt=0.1, gen_factor=1.0, transient_fraction=1.0)
    with pytest.raises(ValueError, match=named("model")):
        metrics.prediction_error(pn.PLRNN("standard", M=4, N=2, K=1, seed=0), x)
    with pytest.raises(TypeError, match=named("model")):
        metrics.prediction_error(object(), x)
