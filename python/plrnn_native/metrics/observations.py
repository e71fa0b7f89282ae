"""Metrics of the observations: how far a generated series ``x_gen`` is from the data ``x_true``,
in the occupation of state space (``D_stsp``) and in the power spectrum (``D_H``). Both compare
two ``[T, N]`` series; no model is involved. Their constants: ``docs/science.md``, "Evaluation".
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from .._validation import as_rng, check_choice, check_float, check_int
from ._checks import CHUNK_ELEMENTS, SeedLike, real_array, same_dim

BINNED_MAX_DIM = 4  # the binned D_stsp is used up to this dimension, the GMM variant above it


# ------------------------------------------------------------------------------------------------
# state-space divergence
# ------------------------------------------------------------------------------------------------
#: Up to this many bins a histogram is counted densely (``numpy.bincount``), beyond it by sorting.
_DENSE_BINS = 1 << 22


def _bin_ids(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, bins: int) -> Tuple[np.ndarray, int]:
    """The flat bin index (``sum_d code_d bins**d``) of every point of ``x`` inside ``[lo, hi)`` in all
    dimensions, in order, and the number of points outside."""
    cols = np.ascontiguousarray(x.T)  # a column at a time: contiguous, fast comparisons
    inside = np.ones(x.shape[0], dtype=bool)
    for d, col in enumerate(cols):
        inside &= (col >= lo[d]) & (col < hi[d])
    flat = np.zeros(int(inside.sum()), dtype=np.int64)
    for d in range(x.shape[1] - 1, -1, -1):
        code = np.floor((cols[d][inside] - lo[d]) / (hi[d] - lo[d]) * bins).astype(np.int64)
        np.clip(code, 0, bins - 1, out=code)  # rounding at the upper edge
        flat *= bins
        flat += code
    return flat, int(x.shape[0] - flat.size)


class BinnedReference:
    """The occupation histogram of the data ``x_true`` for :func:`state_space_divergence_binned`,
    computed once: ``divergence(x_gen)`` scores one generated series after another against it (as the
    best-model selection does every few epochs) with the same result as the function.

    Occupied bins only enter the sum: up to ``_DENSE_BINS`` bins their counts come from a dense count
    array (``numpy.bincount``), beyond it from ``numpy.unique`` of the flat bin index."""

    def __init__(self, x_true: np.ndarray, bins: int = 30, widen: float = 0.1, outside: str = "drop"):
        x_true = real_array("x_true", x_true)
        N = x_true.shape[1]
        if N > BINNED_MAX_DIM:
            raise ValueError(
                f"x_true: the binned divergence is for N <= {BINNED_MAX_DIM} dimensions, got N={N} "
                "(use state_space_divergence_gmm)"
            )
        self.bins = check_int("bins", bins, 1)
        widen = check_float("widen", widen, 0.0)
        check_choice("outside", outside, ("drop", "bin"))
        if self.bins**N > 2**40:
            raise ValueError(f"bins: {self.bins}**{N} bins is too many")
        std = x_true.std(axis=0)
        self.lo = x_true.min(axis=0) - widen * std
        self.hi = x_true.max(axis=0) + widen * std
        if np.any(self.hi <= self.lo):
            d = int(np.argmax(self.hi <= self.lo))
            raise ValueError(
                f"x_true: dimension {d} is constant; the binned divergence needs a range of "
                "nonzero width"
            )
        self._x_true_rows = x_true[:0]  # (no rows: the shape that same_dim compares x_gen with)
        self.overflow = outside == "bin"
        self.n_bins = self.bins**N + int(self.overflow)  # G (the overflow bin has id bins**N)
        self.dense = self.n_bins <= _DENSE_BINS
        self.n, self.counts = self._counts(x_true)

    def _counts(self, x: np.ndarray):
        """(points counted, counts): a dense [G] array, or (sorted occupied ids, their counts)."""
        flat, n_out = _bin_ids(x, self.lo, self.hi, self.bins)
        n_out = n_out if self.overflow else 0
        if self.dense:
            counts = np.bincount(flat, minlength=self.n_bins)
            if n_out:
                counts[self.n_bins - 1] += n_out
            return flat.size + n_out, counts
        if n_out:
            flat = np.concatenate([flat, np.full(n_out, self.n_bins - 1, dtype=np.int64)])
        return flat.size, np.unique(flat, return_counts=True)

    def divergence(self, x_gen: np.ndarray, smoothing: float = 1e-5) -> float:
        """``D_stsp = KL(p_true || p_gen)`` of ``x_gen`` ``[T', N]`` (finite) against the data."""
        x_gen = real_array("x_gen", x_gen)
        same_dim(self._x_true_rows, x_gen)
        smoothing = check_float("smoothing", smoothing, 0.0, lo_open=True)
        n_q, counts_q = self._counts(x_gen)
        if self.dense:  # the occupied bins in ascending order, their counts
            union = np.flatnonzero((self.counts > 0) | (counts_q > 0))
            c_p, c_q = self.counts[union], counts_q[union]
        else:
            (ids_p, cnt_p), (ids_q, cnt_q) = self.counts, counts_q
            union = np.union1d(ids_p, ids_q)
            c_p = np.zeros(union.size)
            c_q = np.zeros(union.size)
            c_p[np.searchsorted(union, ids_p)] = cnt_p
            c_q[np.searchsorted(union, ids_q)] = cnt_q
        z_p = self.n + smoothing * self.n_bins
        z_q = n_q + smoothing * self.n_bins
        p = (c_p + smoothing) / z_p
        q = (c_q + smoothing) / z_q
        kl = float(np.sum(p * np.log(p / q)))
        n_empty = self.n_bins - union.size
        kl += n_empty * (smoothing / z_p) * math.log(z_q / z_p)
        return kl


def state_space_divergence_binned(
    x_true: np.ndarray,
    x_gen: np.ndarray,
    bins: int = 30,
    widen: float = 0.1,
    smoothing: float = 1e-5,
    outside: str = "drop",
) -> float:
    """Binned state-space divergence ``D_stsp = KL(p_true || p_gen)`` of occupation histograms.

    Args:
        x_true: data ``[T, N]``, ``N <= 4``, finite.
        x_gen: generated trajectory ``[T', N]`` (``T'`` may differ from ``T``), finite.
        bins: bins per dimension (30).
        widen: the histogram range of dimension ``d`` is
            ``[min_d - widen*std_d, max_d + widen*std_d)`` of ``x_true`` (``std`` with ``ddof=0``); 0.1.
        smoothing: Laplace smoothing ``eps`` added to the *count* of every bin of both histograms (1e-5).
        outside: what happens to generated points outside the range in some dimension: ``"drop"``
            (default, as in the published DSR codes: they are not counted) or ``"bin"`` (they go to
            one extra overflow bin, where the data never fall, so a model that leaves the region of
            the data is penalised).

    With counts ``c_i`` (``sum c = T``, the points counted) over ``G`` bins (``bins**N``, plus one
    with ``outside="bin"``), ``p_i = (c_i + eps) / (T + G eps)``, likewise ``q_i`` from ``x_gen``, and
    ``D_stsp = sum_i p_i log(p_i / q_i)`` (natural log) over all ``G`` bins. Only occupied bins are
    stored (the nonzero counts of the flat bin index); the bins empty in both contribute
    ``eps/Z_p log(Z_q/Z_p)`` each, added in closed form.

    Returns:
        ``D_stsp`` as a float (0 up to the smoothing for identical distributions; larger is worse).
    """
    x_true = real_array("x_true", x_true)
    x_gen = real_array("x_gen", x_gen)
    same_dim(x_true, x_gen)
    return BinnedReference(x_true, bins, widen, outside).divergence(x_gen, smoothing)


def _subsample(x: np.ndarray, max_points: int, rng: np.random.Generator) -> np.ndarray:
    if x.shape[0] <= max_points:
        return x
    return x[np.sort(rng.choice(x.shape[0], size=max_points, replace=False))]


def _gmm_logpdf(y: np.ndarray, centres: np.ndarray, std: float) -> np.ndarray:
    """``log( (1/K) sum_k Normal(y; centres_k, std^2 I) )`` for ``y`` ``[S, N]``, centres ``[K, N]``.

    The log-sum-exp over the centres in place on each chunk (the row's maximum taken out, so the
    largest term is exp(0) = 1): a third of the time of ``scipy.special.logsumexp`` on the same array
    (1000 x 10 000 at N = 20), equal to it within 3e-16 relative."""
    S, N = y.shape
    K = centres.shape[0]
    out = np.empty(S)
    c2 = np.einsum("kn,kn->k", centres, centres)
    chunk = max(1, CHUNK_ELEMENTS // K)
    for s0 in range(0, S, chunk):
        ys = y[s0 : s0 + chunk]
        d2 = np.einsum("sn,sn->s", ys, ys)[:, None] - 2.0 * ys @ centres.T + c2[None, :]
        np.maximum(d2, 0.0, out=d2)  # rounding of the expanded square
        a = -0.5 * d2 / std**2
        top = a.max(axis=1, keepdims=True)
        a -= top
        np.exp(a, out=a)
        out[s0 : s0 + chunk] = top[:, 0] + np.log(a.sum(axis=1))
    return out - math.log(K) - 0.5 * N * math.log(2.0 * math.pi * std**2)


def state_space_divergence_gmm(
    x_true: np.ndarray,
    x_gen: np.ndarray,
    scaling: float = 1.0,
    max_points: int = 10_000,
    n_samples: int = 1000,
    seed: SeedLike = None,
) -> float:
    """State-space divergence by Gaussian mixtures, for any dimension ``N``.

    Each trajectory is turned into an equally weighted mixture of isotropic Gaussians
    ``N(x_t, scaling^2 I)``, one per point (each trajectory first randomly subsampled, without
    replacement, to at most ``max_points`` points). ``D_stsp = KL(p_true || p_gen)`` is estimated by
    Monte Carlo: ``(1/S) sum_s [log p_true(y_s) - log p_gen(y_s)]`` with ``S = n_samples`` samples
    ``y_s`` drawn from the true mixture; the mixture densities are evaluated with log-sum-exp, so far
    apart supports give a large finite value.

    Args:
        x_true: data ``[T, N]``. x_gen: generated trajectory ``[T', N]``.
        scaling: standard deviation of the Gaussians, in data units (1.0; suited to z-scored data).
        max_points: subsample size per trajectory (10_000).
        n_samples: Monte Carlo samples (1000).
        seed: seed or ``numpy.random.Generator`` of the subsampling and the samples.

    Returns:
        the estimate as a float. It is exactly 0 for identical point sets (without subsampling) and
        can be slightly negative for close distributions (Monte Carlo noise).
    """
    x_true = real_array("x_true", x_true)
    x_gen = real_array("x_gen", x_gen)
    same_dim(x_true, x_gen)
    scaling = check_float("scaling", scaling, 0.0, lo_open=True)
    max_points = check_int("max_points", max_points, 1)
    n_samples = check_int("n_samples", n_samples, 1)
    rng = as_rng("seed", seed)
    mu_p = _subsample(x_true, max_points, rng)
    mu_q = _subsample(x_gen, max_points, rng)
    component = rng.integers(mu_p.shape[0], size=n_samples)
    y = mu_p[component] + scaling * rng.standard_normal((n_samples, x_true.shape[1]))
    return float(np.mean(_gmm_logpdf(y, mu_p, scaling) - _gmm_logpdf(y, mu_q, scaling)))


# ------------------------------------------------------------------------------------------------
# power spectrum
# ------------------------------------------------------------------------------------------------
def _normalised_spectrum(x: np.ndarray, sigma: float) -> np.ndarray:
    """Smoothed power spectrum of a 1-D series ``[T]``, normalised to sum 1 (``[T//2 + 1]``)."""
    n = x.shape[0]
    if np.ptp(x) <= 1e-12 * max(1.0, float(np.max(np.abs(x)))):
        # constant: no fluctuation power to z-score; all mass at frequency 0 by convention
        power = np.zeros(n // 2 + 1)
        power[0] = 1.0
    else:
        z = (x - x.mean()) / x.std()
        power = np.abs(np.fft.rfft(z)) ** 2
    if sigma > 0:
        from scipy.ndimage import gaussian_filter1d  # here: importing scipy.ndimage takes 0.3 s

        power = gaussian_filter1d(power, sigma, mode="reflect")
    return power / power.sum()


def power_spectrum_distance(
    x_true: np.ndarray, x_gen: np.ndarray, smoothing_sigma: float = 20.0
) -> float:
    """Power-spectrum Hellinger distance ``D_H`` averaged over dimensions.

    Both series are cut to the shorter length ``T``. Per dimension: z-score (mean 0, std 1 with
    ``ddof=0``), power ``|rfft|^2`` over the ``T//2 + 1`` non-negative frequencies, Gaussian smoothing
    with standard deviation ``smoothing_sigma`` frequency bins (``scipy.ndimage.gaussian_filter1d``,
    ``mode="reflect"``; 0 means no smoothing), normalise to sum 1, and
    ``H = ||sqrt(p) - sqrt(q)||_2 / sqrt(2)`` (in ``[0, 1]``). A constant series (peak-to-peak below
    ``1e-12`` times its magnitude) has no power to z-score; its spectrum is taken as all mass at
    frequency 0.

    Args:
        x_true: data ``[T, N]`` (``T >= 2``). x_gen: generated ``[T', N]``.
        smoothing_sigma: smoothing width in frequency bins (20.0), ``>= 0``.

    Returns:
        the mean over the ``N`` dimensions of ``H``, a float in ``[0, 1]``.
    """
    return SpectrumReference(x_true, smoothing_sigma).distance(x_gen)


class SpectrumReference:
    """The normalised, smoothed power spectra of the data ``x_true`` for :func:`power_spectrum_distance`,
    computed once per length: ``distance(x_gen)`` scores one generated series after another against
    them (as the best-model selection does every few epochs) with the same result as the function."""

    def __init__(self, x_true: np.ndarray, smoothing_sigma: float = 20.0):
        self.x_true = real_array("x_true", x_true)
        self.sigma = check_float("smoothing_sigma", smoothing_sigma, 0.0)
        self._sqrt_spectra = {}  # length T -> [sqrt of the normalised spectrum of each dimension]

    def distance(self, x_gen: np.ndarray) -> float:
        """``D_H`` of ``x_gen`` against the data, both cut to the shorter length."""
        x_gen = real_array("x_gen", x_gen)
        same_dim(self.x_true, x_gen)
        T = min(self.x_true.shape[0], x_gen.shape[0])
        if T < 2:
            raise ValueError(
                f"x_true, x_gen: need at least 2 time steps, got {self.x_true.shape[0]} and {x_gen.shape[0]}"
            )
        if T not in self._sqrt_spectra:
            self._sqrt_spectra[T] = [np.sqrt(_normalised_spectrum(self.x_true[:T, d], self.sigma))
                                     for d in range(self.x_true.shape[1])]
        distances = []
        for d, sqrt_p in enumerate(self._sqrt_spectra[T]):
            q = _normalised_spectrum(x_gen[:T, d], self.sigma)
            distances.append(np.sqrt(np.sum((sqrt_p - np.sqrt(q)) ** 2)) / np.sqrt(2.0))
        return float(np.mean(distances))


