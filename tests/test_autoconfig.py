"""Settings derived from the data: the forcing interval (autocorrelation decay and first minimum of
the time-delayed mutual information), the GTF weight and derive_settings.

Expected values come from the formulas, not from running the code:

* a sine of period P sampled at one step: autocorrelation cos(2 pi k / P), which first drops below
  1/e at k = ceil(acos(1/e) P / (2 pi)) (about 0.19 P); the mutual information of (x_t, x_{t+k})
  has its first minimum at a quarter period, k = P/4 (Fraser & Swinney 1986);
* an AR(1) process x_t = phi x_{t-1} + e_t: autocorrelation phi^k, below 1/e from
  k = ceil(-1 / ln phi); its mutual information -1/2 ln(1 - phi^(2k)) decreases monotonically, so
  the autocorrelation sets the interval.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from plrnn_native import autoconfig as A


def sine(P, periods=20, phase=0.0, noise=0.0, seed=0):
    t = np.arange(int(periods * P))
    x = np.sin(2 * np.pi * t / P + phase)
    if noise:
        x = x + noise * np.random.default_rng(seed).standard_normal(x.shape)
    return x[:, None]


def ar1(phi, T=20_000, seed=0):
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(T)
    x = np.empty(T)
    x[0] = e[0] / math.sqrt(1 - phi**2)
    for i in range(1, T):
        x[i] = phi * x[i - 1] + e[i]
    return x


def sine_acf_decay(P):
    return math.ceil(math.acos(1 / math.e) * P / (2 * math.pi))


def ar1_decay(phi):
    return math.ceil(-1.0 / math.log(phi))


# ----------------------------------------------------------------------------------------------
# The two time scales
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("P", [40, 100, 160])
def test_sine_autocorrelation_decay(P):
    ts = A.time_scales([sine(P)], 0, 400)
    assert abs(ts["acf_decay"] - sine_acf_decay(P)) <= 1, (ts, sine_acf_decay(P))
    acf = A.autocorrelation([sine(P)], 0, P // 2)
    np.testing.assert_allclose(acf, np.cos(2 * np.pi * np.arange(P // 2 + 1) / P), atol=0.02)


@pytest.mark.parametrize("P", [40, 100, 160])
def test_sine_mutual_information_first_minimum(P):
    ts = A.time_scales([sine(P)], 0, 400)
    assert abs(ts["mi_first_min"] - P / 4) <= 2, (ts, P / 4)


@pytest.mark.parametrize("P", [40, 100, 160])
def test_sine_forcing_interval(P):
    """The interval is the smaller of the two scales: the autocorrelation's 0.19 P < P/4."""
    expected = min(sine_acf_decay(P), P / 4)
    tau, details = A.forcing_interval([sine(P)])
    assert abs(tau - expected) <= 2, (tau, expected, details)


@pytest.mark.parametrize("phi", [0.8, 0.85, 0.9])
def test_ar1_decay_and_min_rule(phi):
    x = ar1(phi, seed=int(phi * 100))[:, None]
    ts = A.time_scales([x], 0, 400)
    assert abs(ts["acf_decay"] - ar1_decay(phi)) <= 1, (ts, ar1_decay(phi))
    acf = A.autocorrelation([x], 0, 10)
    np.testing.assert_allclose(acf, phi ** np.arange(11), atol=0.05)
    tau, details = A.forcing_interval([x])
    (col,) = details["columns"]
    found = [v for v in (col["acf_decay"], col["mi_first_min"]) if v > 0]
    assert col["tau"] == min(found)  # the smaller of the two scales
    assert tau == max(2, col["tau"])
    assert abs(tau - ar1_decay(phi)) <= 1


def test_mutual_information_matches_the_gaussian_formula():
    """Histogram MI of an AR(1) process against -1/2 ln(1 - phi^(2k)) (bias of a 16-bin
    histogram at 2e4 samples: about (16-1)^2 / (2 * 2e4) = 0.006 nats)."""
    phi = 0.8
    mi = A.mutual_information([ar1(phi)[:, None]], 0, 6)
    exact = -0.5 * np.log(1 - phi ** (2 * np.arange(1, 7)))
    np.testing.assert_allclose(mi[1:], exact, atol=0.06)
    assert np.all(np.diff(mi) < 0)


def test_missing_values_barely_change_the_estimate():
    rng = np.random.default_rng(5)
    x = ar1(0.9, seed=3)[:, None]
    tau0, d0 = A.forcing_interval([x])
    xn = x.copy()
    xn[rng.random(xn.shape) < 0.1] = np.nan
    xn[1000:1200] = np.nan  # and a gap
    tau1, d1 = A.forcing_interval([xn])
    assert abs(tau1 - tau0) <= 1, (d0, d1)
    np.testing.assert_allclose(A.autocorrelation([xn], 0, 12), A.autocorrelation([x], 0, 12),
                               atol=0.03)


def test_pairs_never_cross_series_boundaries():
    """Lagged pairs (x_t, x_{t+k}) are formed within a series only. 200 series of 10 steps,
    alternately near +1 and near -1: within a series every pair has one sign (autocorrelation
    about 1 at every lag); pairs across boundaries would have opposite signs (at lag 5 half of
    all pairs would, and the autocorrelation would be about 0)."""
    rng = np.random.default_rng(4)
    series = [((-1.0) ** i + 0.01 * rng.standard_normal(10))[:, None] for i in range(200)]
    acf = A.autocorrelation(series, 0, 9)
    assert np.all(acf > 0.99), acf
    concatenated = A.autocorrelation([np.concatenate(series)], 0, 9)
    assert concatenated[5] < 0.1  # the same data as one series: the check can fail
    # and pieces of one process give the interval of the whole
    x = ar1(0.85, T=30_000, seed=9)
    whole, _ = A.forcing_interval([x[:, None]])
    pieces = [x[:12_000, None], x[12_000:19_000, None], x[19_000:, None]]
    np.testing.assert_allclose(A.autocorrelation(pieces, 0, 8),
                               A.autocorrelation([x[:, None]], 0, 8), atol=0.01)
    tau, _ = A.forcing_interval(pieces)
    assert abs(tau - whole) <= 1


def test_multi_dim_median():
    phis = [0.7, 0.85, 0.95]
    x = np.stack([ar1(p, seed=i) for i, p in enumerate(phis)], axis=1)
    tau, details = A.forcing_interval([x])
    per_col = [c["tau"] for c in details["columns"]]
    assert [c["column"] for c in details["columns"]] == [0, 1, 2]
    for c, p in zip(details["columns"], phis):
        assert abs(c["acf_decay"] - ar1_decay(p)) <= 1, (c, ar1_decay(p))
    assert tau == int(np.clip(round(float(np.median(per_col))), 2, 100))
    assert abs(tau - ar1_decay(0.85)) <= 1  # the median of 3, 7 and 20
    # many dimensions: at most MAX_DIMS_SCORED evenly spread columns, the first and the last
    wide = np.repeat(x, 10, axis=1)[:4000]
    _, d = A.forcing_interval([wide])
    cols = [c["column"] for c in d["columns"]]
    assert len(cols) == A.MAX_DIMS_SCORED and cols[0] == 0 and cols[-1] == 29


def test_tau_is_clipped(monkeypatch):
    noise = np.random.default_rng(0).standard_normal((5000, 2))
    tau, details = A.forcing_interval([noise])
    assert all(c["acf_decay"] == 1 for c in details["columns"])  # white noise: acf(1) ~ 0
    assert tau == 2
    monkeypatch.setattr(A, "time_scales", lambda series, col, max_lag: {"acf_decay": 250,
                                                                      "mi_first_min": 300})
    assert A.forcing_interval([noise])[0] == 100
    monkeypatch.setattr(A, "time_scales", lambda series, col, max_lag: {"acf_decay": 0,
                                                                      "mi_first_min": 0})
    tau, details = A.forcing_interval([noise])  # nothing found: the largest lag looked at
    assert details["columns"][0]["tau"] == details["max_lag"] and tau == min(100, details["max_lag"])


@pytest.mark.parametrize("tau", [1, 2, 3, 7, 12, 25, 60, 100])
def test_gtf_alpha(tau):
    alpha = A.gtf_alpha(tau)
    assert 0 < alpha < 1
    assert (1 - alpha) ** tau == pytest.approx(0.5, rel=1e-12)
    assert A.gtf_alpha(tau + 1) < alpha  # longer intervals, weaker forcing


# ----------------------------------------------------------------------------------------------
# derive_settings
# ----------------------------------------------------------------------------------------------
def _data(N, T=3000, seed=0):
    rng = np.random.default_rng(seed)
    phis = np.linspace(0.8, 0.9, N)
    x = np.zeros((T, N))
    e = rng.standard_normal((T, N))
    for t in range(1, T):
        x[t] = phis * x[t - 1] + e[t]
    return x


def _check_reasons(out, why, given=None):
    derived = {(sec, k) for sec, d in out.items() for k in d}
    assert set(why) == derived
    for key, reason in why.items():
        assert isinstance(reason, str) and reason.strip(), key
    for sec, d in (given or {}).items():
        for k in d:
            assert k not in out.get(sec, {}) and (sec, k) not in why


def test_low_dimensional_data():
    for N, M in [(1, 3), (2, 3), (3, 3), (5, 5), (A.HIGH_DIM, A.HIGH_DIM)]:
        out, why, details = A.derive_settings([_data(N, T=1500)])
        assert out["model"]["obs"] == "identity"
        assert out["model"]["M"] == M
        assert out["model"]["kind"] == "shallow"
        assert out["model"]["hidden"] == max(100, 20 * M)
        assert details is not None and details["tau"] == out["train"]["tau"]
        _check_reasons(out, why)


def test_high_dimensional_data_linear_readout_and_fixed_latent_size():
    o40, w40, _ = A.derive_settings([_data(40, T=1500)])
    o64, w64, _ = A.derive_settings([_data(64, T=1500)])
    for o in (o40, o64):
        assert o["model"]["obs"] == "linear"
        assert o["model"]["M"] == A.HIGH_DIM_LATENT < 40
    assert o40["model"]["M"] == o64["model"]["M"]
    _check_reasons(o64, w64)


def test_derived_tau_and_schedule():
    x = _data(2, T=6000)
    out, why, details = A.derive_settings([x])
    tau = out["train"]["tau"]
    assert tau == A.forcing_interval([x])[0] and 2 <= tau <= 100
    assert out["train"]["seq_len"] == int(np.clip(8 * tau, 50, 500))
    assert out["train"]["lr"] == 1e-3 and out["train"]["lr_end"] == 1e-4
    assert out["run"]["select_every"] == max(1, out["train"]["epochs"] // 40)
    assert out["run"]["validation_steps"] == 6000  # the whole (longest) training series, <= 1e5
    assert "alpha" not in out["train"]  # only for generalized forcing
    _check_reasons(out, why)


@pytest.mark.parametrize("tau,length,seq_len", [(30, 2000, 240), (3, 2000, 50), (100, 2000, 500),
                                                (100, 300, 300), (40, 120, 120)])
def test_given_tau_sets_the_sequence_length(tau, length, seq_len):
    given = {"train": {"tau": tau}}
    out, why, details = A.derive_settings([_data(2, T=length), _data(2, T=length + 500, seed=1)],
                                          given)
    assert details is None
    assert "tau" not in out["train"]
    assert out["train"]["seq_len"] == seq_len == min(int(np.clip(8 * tau, 50, 500)), length)
    _check_reasons(out, why, given)


def test_given_values_are_never_overwritten_and_derived_ones_follow():
    x = [_data(3, T=2500)]
    given = {"model": {"M": 7, "obs": "linear"}, "train": {"forcing": "generalized", "tau": 12,
                                                          "epochs": 400, "lr": 5e-4}}
    out, why, _ = A.derive_settings(x, given)
    assert "M" not in out["model"] and "obs" not in out["model"]
    assert out["model"]["hidden"] == max(100, 20 * 7) == 140  # follows the given M
    assert "tau" not in out["train"] and "epochs" not in out["train"] and "lr" not in out["train"]
    assert out["train"]["alpha"] == pytest.approx(1 - 2 ** (-1 / 12), abs=1e-4)  # follows tau
    assert out["train"]["seq_len"] == 96
    assert out["run"]["select_every"] == 10  # follows the given epochs
    _check_reasons(out, why, given)
    # a given kind other than shallow: no hidden width
    out, why, _ = A.derive_settings(x, {"model": {"kind": "standard"}, "train": {"tau": 5}})
    assert "hidden" not in out["model"] and "kind" not in out["model"]
    # a given hidden width is kept
    out, _, _ = A.derive_settings(x, {"model": {"hidden": 64}, "train": {"tau": 5}})
    assert "hidden" not in out["model"]
    # the input dict is not modified
    assert given == {"model": {"M": 7, "obs": "linear"}, "train": {"forcing": "generalized",
                                                                   "tau": 12, "epochs": 400,
                                                                   "lr": 5e-4}}


def _epochs(T_train, batches=50):
    """The rule of the module doc: about clip(T_train, 2e4, 1e5) optimiser steps, whole hundreds
    of epochs, at least 100."""
    steps = min(max(T_train, 20_000), 100_000)
    return max(100, int(round(steps / batches / 100)) * 100)


def test_epochs_scale_with_the_data_length():
    given = {"train": {"tau": 10}}
    seen = []
    for T_train in (600, 5_000, 40_000, 60_000, 100_000, 400_000):
        x = [np.zeros((T_train // 2, 1)), np.zeros((T_train - T_train // 2, 1))]
        out, _, _ = A.derive_settings(x, given)
        e = out["train"]["epochs"]
        assert e == _epochs(T_train), (T_train, e)
        assert abs(e * 50 - min(max(T_train, 20_000), 100_000)) <= 50 * 50
        seen.append(e)
    assert seen == sorted(seen)
    assert seen[0] < seen[3] < seen[-1]  # short data: fewer epochs
    assert seen[-1] == seen[-2] == 2000  # capped
    out, _, _ = A.derive_settings([np.zeros((60_000, 1))], {"train": {"tau": 10,
                                                                       "batches_per_epoch": 100}})
    assert out["train"]["epochs"] == _epochs(60_000, 100) == 600
