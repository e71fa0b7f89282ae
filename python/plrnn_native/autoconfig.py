"""Settings derived from the data, for data the built-in presets do not cover.

``plrnn train --data ...`` (and :func:`derive_settings` from Python) fills every setting the user
has not given from the data itself, each with the reason written next to it in the run's
``config.toml``. The rules, the field's usual choices:

* **Observation model and size** from the number of observed dimensions ``N``: identity
  observation (the first ``N`` latent units are the data) with ``M = max(N, 3)`` for
  ``N <= HIGH_DIM`` (a 1- or 2-d series gets hidden units, as a delay embedding would); for
  high-dimensional recordings (e.g. 64-channel EEG) a latent size that does not grow with ``N``,
  ``M = HIGH_DIM_LATENT``, read out through the linear observation model ``x = B z``. The model is
  the shallow PLRNN with ``H = max(100, 20 M)`` hidden units.
* **Teacher-forcing interval** ``tau`` (steps): per dimension the smaller of the autocorrelation
  decay time (the first lag where the autocorrelation falls below ``1/e`` or has a minimum,
  whichever comes first) and the first minimum of the time-delayed mutual information (one that
  holds over the next ``MIN_WINDOW`` lags, estimated on the signal with ``MI_DITHER`` white noise
  added, so that histogram jitter does not count);
  the median over dimensions (at most ``MAX_DIMS_SCORED`` evenly spread ones), clipped to
  ``[2, 100]``. For generalized teacher forcing the weight is the one whose contraction
  ``(1 - alpha)^tau = 1/2`` balances the growth over ``tau`` steps: ``alpha = 1 - 2^(-1/tau)``.
* **Sequences and schedule** from ``tau`` and the data length: ``seq_len = clip(8 tau, 50, 500)``
  (and at most the shortest training series), batches and epoch size as the preset; about
  ``clip(T_train, 2e4, 1e5)`` optimiser steps in all (the Lorenz-63 preset makes 1e5 on 8e4
  samples), so short data is not trained for longer than it can support; the learning rate decays
  from 1e-3 to 1e-4; model selection (D_stsp + D_H) every 1/40 of the epochs on the longest training
  series, at most its last 1e5 steps.

Missing values (NaN) are ignored by the estimators (the autocorrelation and the mutual information
use the pairs where both values are observed).
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

import numpy as np

#: Above this many observed dimensions the latent size stops growing and the readout is linear.
HIGH_DIM = 20
#: Latent size for high-dimensional data.
HIGH_DIM_LATENT = 20
#: The forcing-interval estimate looks at most at this many (evenly spread) dimensions.
MAX_DIMS_SCORED = 12
#: ... and at most this many samples per dimension (the first ones of the pooled series).
MAX_SAMPLES_SCORED = 50_000
TAU_RANGE = (2, 100)
MI_BINS = 16

Reasons = Dict[Tuple[str, str], str]


# ---- the two time scales ------------------------------------------------------------------------
def _pairs(series: Sequence[np.ndarray], col: int, lag: int) -> Tuple[np.ndarray, np.ndarray]:
    """All (x_t, x_{t+lag}) of one column over every series, both observed."""
    a, b = [], []
    for x in series:
        if x.shape[0] > lag:
            u, v = x[:-lag, col] if lag else x[:, col], x[lag:, col]
            ok = np.isfinite(u) & np.isfinite(v)
            a.append(u[ok])
            b.append(v[ok])
    if not a:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(a), np.concatenate(b)


#: The mutual information is estimated on the signal plus white noise of this many standard
#: deviations (fixed seed): on noise-free, e.g. simulated, data the histogram of a deterministic
#: curve has lattice effects that make the MI oscillate from lag to lag; the dither smooths the
#: histogram like a kernel estimate. (Sines of period 40-160 and Lorenz-63 at dt = 0.01 keep their
#: known first minima, P/4 and 16-21 steps, with or without 5 % noise of their own.)
MI_DITHER = 0.1


class _Column:
    """One column of the pooled series, with the statistics both estimators need at any lag."""

    def __init__(self, series: Sequence[np.ndarray], col: int, bins: int = MI_BINS, dither: float = 0.0):
        self.series, self.col = series, col
        observed = np.concatenate([x[:, col][np.isfinite(x[:, col])] for x in series])
        rng = np.random.default_rng(0)
        scale = dither * (observed.std() if observed.size else 0.0)
        self.dithered = [x[:, col:col + 1] + scale * rng.standard_normal((len(x), 1)) for x in series]
        observed = np.concatenate([d[:, 0][np.isfinite(d[:, 0])] for d in self.dithered])
        self.edges = np.unique(np.quantile(observed, np.linspace(0, 1, bins + 1))) if observed.size else np.zeros(0)

    def acf(self, lag: int) -> float:
        """Autocorrelation at ``lag`` over the observed pairs (NaN with fewer than 3 pairs)."""
        u, v = _pairs(self.series, self.col, lag)
        if u.size < 3 or u.std() == 0 or v.std() == 0:
            return math.nan
        return float(np.corrcoef(u, v)[0, 1])

    def mi(self, lag: int) -> float:
        """Time-delayed mutual information (nats) at ``lag`` from a histogram over
        equal-probability bins (Fraser & Swinney 1986); NaN when it cannot be estimated."""
        u, v = _pairs(self.dithered, 0, lag)
        if u.size < 10 or self.edges.size < 3:
            return math.nan
        joint, _, _ = np.histogram2d(u, v, bins=[self.edges, self.edges])
        p = joint / joint.sum()
        pu, pv = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
        nz = p > 0
        return float(np.sum(p[nz] * np.log(p[nz] / (pu @ pv)[nz])))


def autocorrelation(series: Sequence[np.ndarray], col: int, max_lag: int) -> np.ndarray:
    """Autocorrelation of column ``col`` at lags ``0 .. max_lag`` (pooled over the series, observed
    pairs only; NaN where fewer than 3 pairs exist)."""
    c = _Column(series, col)
    return np.array([c.acf(lag) for lag in range(max_lag + 1)])


def mutual_information(series: Sequence[np.ndarray], col: int, max_lag: int) -> np.ndarray:
    """Time-delayed mutual information of column ``col`` at lags ``0 .. max_lag``."""
    c = _Column(series, col)
    return np.array([c.mi(lag) for lag in range(max_lag + 1)])


#: A first minimum must hold over this many following lags (histogram jitter makes dips of a lag or two).
MIN_WINDOW = 5


def _first_minimum(value, max_lag: int) -> int:
    """The first lag k >= 1 with value(k) <= value(k-1) and value(k) below every value at lags
    k+1 .. k+max(MIN_WINDOW, k/2) (non-finite ones ignored); 0 when there is none up to max_lag."""
    cache = {}

    def v(k):
        if k not in cache:
            cache[k] = value(k)
        return cache[k]

    for k in range(1, max_lag):
        if not (v(k) <= v(k - 1) and v(k) < v(k + 1)):  # not a local minimum (or NaN)
            continue
        window = max(MIN_WINDOW, k // 2)
        if all(v(k) <= v(j) for j in range(k + 2, min(max_lag, k + window) + 1) if math.isfinite(v(j))):
            return k
    return 0


def time_scales(series: Sequence[np.ndarray], col: int, max_lag: int) -> Dict[str, int]:
    """The two time scales (steps) of one column: the autocorrelation decay (the first lag below
    1/e, or the first minimum if that comes earlier) and the first minimum of the mutual
    information (see :func:`_first_minimum`); 0 where none was found up to ``max_lag``. Lags are
    estimated lazily, so the scan costs what the time scales need."""
    c = _Column(series, col, dither=MI_DITHER)
    acf = {}

    def acf_at(k):
        if k not in acf:
            acf[k] = c.acf(k)
        return acf[k]

    decay = next((k for k in range(1, max_lag + 1) if acf_at(k) < 1.0 / math.e), 0)
    acf_min = _first_minimum(acf_at, decay if decay else max_lag)
    if acf_min and (decay == 0 or acf_min < decay):
        decay = acf_min
    return {"acf_decay": decay, "mi_first_min": _first_minimum(c.mi, max_lag)}


def forcing_interval(series: Sequence[np.ndarray]) -> Tuple[int, dict]:
    """The teacher-forcing interval tau (steps) of the data and the per-dimension details.

    ``series``: list of ``[T_i, N]`` arrays (NaN: missing). See the module docstring for the rule.
    """
    series = [np.asarray(x, dtype=np.float64) for x in series]
    N = series[0].shape[1]
    cols = sorted(set(np.linspace(0, N - 1, min(N, MAX_DIMS_SCORED)).round().astype(int).tolist()))
    budget, kept = MAX_SAMPLES_SCORED, []
    for x in series:
        if budget <= 0:
            break
        kept.append(x[:budget])
        budget -= kept[-1].shape[0]
    shortest = min(x.shape[0] for x in kept)
    max_lag = int(max(4, min(4 * TAU_RANGE[1], shortest // 4)))
    per_dim, taus = [], []
    for c in cols:
        ts = time_scales(kept, c, max_lag)
        found = [v for v in ts.values() if v > 0]
        tau_c = min(found) if found else max_lag
        per_dim.append({"column": c, **ts, "tau": tau_c})
        taus.append(tau_c)
    tau = int(np.clip(round(float(np.median(taus))), *TAU_RANGE))
    return tau, {"columns": per_dim, "max_lag": max_lag, "tau": tau}


def gtf_alpha(tau: int) -> float:
    """Generalized-forcing weight matching the interval tau: (1 - alpha)^tau = 1/2."""
    return float(1.0 - 2.0 ** (-1.0 / tau))


# ---- all derived settings -----------------------------------------------------------------------
def derive_settings(series: Sequence[np.ndarray], given: Dict[str, Dict[str, object]] = None
                    ) -> Tuple[Dict[str, Dict[str, object]], Reasons, dict]:
    """Settings for training on ``series`` (list of ``[T_i, N]`` training arrays, NaN missing).

    ``given`` holds the settings the user has set, ``{section: {key: value}}``: those are never
    derived, and derived ones follow them (a given ``tau`` sets the sequence length, a given
    ``M`` the hidden width). Returns ``(settings, reasons, details)``: ``settings`` the derived
    values only, ``{section: {key: value}}``; ``reasons[(section, key)]`` why each has its value;
    ``details`` the forcing-interval estimate per dimension (None when ``tau`` was given).
    """
    given = given or {}
    out: Dict[str, Dict[str, object]] = {"model": {}, "train": {}, "run": {}}
    why: Reasons = {}

    def value(sec, key, derived, reason):
        """The user's value where given, else ``derived`` (recorded with its reason)."""
        if key in given.get(sec, {}):
            return given[sec][key]
        out[sec][key] = derived
        why[(sec, key)] = reason
        return derived

    N = int(series[0].shape[1])
    lengths = [int(x.shape[0]) for x in series]
    T_train = int(sum(lengths))
    if N <= HIGH_DIM:
        value("model", "obs", "identity", f"N = {N} <= {HIGH_DIM}: the first N latent units are the data")
        M = value("model", "M", max(N, 3), f"max(N, 3) for N = {N}")
    else:
        value("model", "obs", "linear", f"N = {N} > {HIGH_DIM}: a linear readout x = B z of a smaller "
                                        "latent state")
        M = value("model", "M", HIGH_DIM_LATENT, f"latent size for high-dimensional data (N = {N}): "
                                                 "does not grow with N")
    kind = value("model", "kind", "shallow", "the shallow PLRNN, the field's default for reconstruction")
    if kind == "shallow":
        value("model", "hidden", max(100, 20 * int(M)), f"max(100, 20 M) for M = {M}")

    details = None
    if "tau" in given.get("train", {}):
        tau = int(given["train"]["tau"])
    else:
        tau, details = forcing_interval(series)
        value("train", "tau", tau, "from the autocorrelation decay and the first minimum of the "
                                   "time-delayed mutual information (median over dimensions)")
    if given.get("train", {}).get("forcing") == "generalized":
        value("train", "alpha", round(gtf_alpha(tau), 4), f"1 - 2^(-1/tau) for tau = {tau}: "
                                                          "(1 - alpha)^tau = 1/2")
    seq_len = min(int(np.clip(8 * tau, 50, 500)), min(lengths))
    value("train", "seq_len", seq_len, f"clip(8 tau, 50, 500) for tau = {tau}, at most the shortest "
                                       f"training series ({min(lengths)} steps)")
    steps = int(np.clip(T_train, 20_000, 100_000))
    batches = int(given.get("train", {}).get("batches_per_epoch", 50))
    epochs = value("train", "epochs", max(100, int(round(steps / batches / 100)) * 100),
                   f"about clip(T_train, 2e4, 1e5) = {steps} optimiser steps for T_train = {T_train}")
    value("train", "lr", 1e-3, "Adam's usual start")
    value("train", "lr_end", 1e-4, "decayed exponentially to a tenth of the start")
    value("run", "select_every", max(1, int(epochs) // 40), "model selection 40 times over the training")
    value("run", "validation_steps", int(min(100_000, max(lengths))),
          "the longest training series, at most 1e5 steps (model selection: D_stsp + D_H)")
    return out, why, details


__all__ = ["derive_settings", "forcing_interval", "gtf_alpha", "autocorrelation",
           "mutual_information", "time_scales", "HIGH_DIM", "HIGH_DIM_LATENT"]
