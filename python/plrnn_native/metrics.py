"""Evaluation of a dynamical-systems reconstruction (SCIENCE.md, section 4).

Pure NumPy/SciPy. Data arrays are time-major, ``[T, N]`` (``T`` time steps, ``N`` observed
dimensions); a few functions also take a batch ``[B, T, N]``. Every result is a Python ``float`` (or a
float64 array), and :func:`evaluate` returns a JSON-serialisable dict.

Metrics and their constants (defaults in brackets):

- :func:`state_space_divergence_binned` -- ``D_stsp`` = KL(p_true || p_gen) of occupation histograms,
  [30] bins per dimension over the data range widened by [0.1] standard deviation on each side, Laplace
  smoothing [1e-5] (in counts), ``N <= 4``.
- :func:`state_space_divergence_gmm` -- ``D_stsp`` for any ``N``: KL between two equally weighted
  isotropic Gaussian mixtures (std [1.0], one component per point, at most [10_000] points), by Monte
  Carlo with [1000] samples from the true mixture.
- :func:`power_spectrum_distance` -- ``D_H``: Hellinger distance of smoothed (Gaussian, sigma [20]
  frequency bins) normalised power spectra of the z-scored series, averaged over dimensions.
- :func:`prediction_error` / :func:`prediction_error_curve` -- ``PE(n)`` [n = 20]: MSE of free
  ``n``-step predictions from data-inferred states.
- :func:`valid_prediction_time` -- time, in Lyapunov times, until the normalised error first exceeds a
  threshold [0.4].
- :func:`lyapunov_spectrum` -- Lyapunov exponents of the model by QR re-orthonormalisation along a free
  trajectory with the exact Jacobians.
- :func:`evaluate` -- the whole protocol on a test set.

The model-based functions accept models without external inputs (``K = 0``) only, and data of the
model's dtype (as everywhere in the package, arrays are not converted silently).
"""

from __future__ import annotations

import math
import numbers
from typing import Optional, Tuple, Union

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.special import logsumexp

__all__ = [
    "state_space_divergence_binned",
    "state_space_divergence_gmm",
    "power_spectrum_distance",
    "prediction_error",
    "prediction_error_curve",
    "valid_prediction_time",
    "lyapunov_spectrum",
    "evaluate",
]

SeedLike = Union[None, int, np.random.Generator]

# Constants of the protocol (SCIENCE.md, section 4).
BINNED_MAX_DIM = 4  # the binned D_stsp is used up to this dimension, the GMM variant above it
_INITS = ("initial_state", "forced")
_CHUNK_ELEMENTS = 4_000_000  # size (in float64 elements) of the temporaries of chunked computations


# ------------------------------------------------------------------------------------------------
# argument checks
# ------------------------------------------------------------------------------------------------
def _real_array(name: str, x, ndims: Tuple[int, ...] = (2,)) -> np.ndarray:
    """A finite, real, non-empty array with ``ndim`` in ``ndims``, returned as float64."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
    if x.dtype == np.bool_ or not (
        np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
    ):
        raise TypeError(f"{name}: expected a real (float or integer) array, got dtype {x.dtype}")
    if x.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(
            f"{name}: expected a {want} array ([T, N]{' or [B, T, N]' if 3 in ndims else ''}), "
            f"got shape {x.shape}"
        )
    if x.size == 0:
        raise ValueError(f"{name}: is empty (shape {x.shape})")
    x = x.astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(
            f"{name}: contains NaN or inf (first at index {tuple(int(i) for i in bad)})"
        )
    return x


def _same_dim(x_true: np.ndarray, x_gen: np.ndarray) -> None:
    if x_true.shape[-1] != x_gen.shape[-1]:
        raise ValueError(
            f"x_gen: expected N={x_true.shape[-1]} dimensions like x_true, got shape {x_gen.shape}"
        )


def _int(name: str, value, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return int(value)


def _float(
    name: str, value, lo: float = -math.inf, lo_open: bool = False, hi: float = math.inf
) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value}")
    if value < lo or (lo_open and value == lo):
        raise ValueError(f"{name}: must be {'>' if lo_open else '>='} {lo}, got {value}")
    if value > hi:
        raise ValueError(f"{name}: must be <= {hi}, got {value}")
    return value


def _rng(seed: SeedLike) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (
        isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral)
    ):
        raise TypeError(
            f"seed: expected None, an integer or a numpy.random.Generator, got {seed!r}"
        )
    return np.random.default_rng(seed)


def _check_model(model) -> None:
    for attr in ("M", "N", "K", "dtype", "generate", "initial_state", "jacobian"):
        if not hasattr(model, attr):
            raise TypeError(f"model: expected a plrnn_native.PLRNN, got {type(model).__name__}")
    if model.K > 0:
        raise ValueError(
            f"model: has K={model.K} external inputs; the metrics support input-free "
            "models (K = 0) only"
        )


def _model_data(model, x, name: str = "x", ndims: Tuple[int, ...] = (2, 3)) -> np.ndarray:
    """``x`` as a C-contiguous ``[B, T, N]`` array of the model's dtype (a ``[T, N]`` input gets B = 1)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
    if x.dtype != model.dtype:
        raise TypeError(
            f"{name}: expected the model's dtype {model.dtype}, got {x.dtype} "
            f"(convert with {name}.astype(numpy.{model.dtype}))"
        )
    if x.ndim not in ndims or x.shape[-1] != model.N:
        shapes = " or ".join({2: f"[T, N={model.N}]", 3: f"[B, T, N={model.N}]"}[d] for d in ndims)
        raise ValueError(f"{name}: expected shape {shapes}, got {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name}: is empty (shape {x.shape})")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or inf")
    x = x[None] if x.ndim == 2 else x
    return np.ascontiguousarray(x)


def _check_init(init: str) -> str:
    if init not in _INITS:
        raise ValueError(f"init: expected one of {', '.join(map(repr, _INITS))}, got {init!r}")
    return init


# ------------------------------------------------------------------------------------------------
# state-space divergence
# ------------------------------------------------------------------------------------------------
def _histogram_counts(
    x: np.ndarray, lo: np.ndarray, hi: np.ndarray, bins: int, overflow: bool
) -> Tuple[np.ndarray, np.ndarray, int]:
    """Sparse occupation counts: (sorted flat bin ids, counts, number of points counted). Points
    outside ``[lo, hi)`` in any dimension are dropped, or go to an overflow bin with id ``bins**N``."""
    N = x.shape[1]
    inside = np.all((x >= lo) & (x < hi), axis=1)
    codes = np.floor((x[inside] - lo) / (hi - lo) * bins).astype(np.int64)
    np.clip(codes, 0, bins - 1, out=codes)  # rounding at the upper edge
    flat = codes @ (bins ** np.arange(N, dtype=np.int64))
    if overflow:
        flat = np.concatenate([flat, np.full(int((~inside).sum()), bins**N, dtype=np.int64)])
    ids, counts = np.unique(flat, return_counts=True)
    return ids, counts, int(flat.size)


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
    stored (``numpy.unique`` of the flat bin index); the bins empty in both contribute
    ``eps/Z_p log(Z_q/Z_p)`` each, added in closed form.

    Returns:
        ``D_stsp`` as a float (0 up to the smoothing for identical distributions; larger is worse).
    """
    x_true = _real_array("x_true", x_true)
    x_gen = _real_array("x_gen", x_gen)
    _same_dim(x_true, x_gen)
    N = x_true.shape[1]
    if N > BINNED_MAX_DIM:
        raise ValueError(
            f"x_true: the binned divergence is for N <= {BINNED_MAX_DIM} dimensions, got N={N} "
            "(use state_space_divergence_gmm)"
        )
    bins = _int("bins", bins, 1)
    widen = _float("widen", widen, 0.0)
    smoothing = _float("smoothing", smoothing, 0.0, lo_open=True)
    if outside not in ("drop", "bin"):
        raise ValueError(f"outside: expected 'drop' or 'bin', got {outside!r}")
    if bins**N > 2**40:
        raise ValueError(f"bins: {bins}**{N} bins is too many")

    std = x_true.std(axis=0)
    lo = x_true.min(axis=0) - widen * std
    hi = x_true.max(axis=0) + widen * std
    if np.any(hi <= lo):
        d = int(np.argmax(hi <= lo))
        raise ValueError(
            f"x_true: dimension {d} is constant; the binned divergence needs a range of "
            "nonzero width"
        )
    overflow = outside == "bin"
    ids_p, cnt_p, n_p = _histogram_counts(x_true, lo, hi, bins, overflow)
    ids_q, cnt_q, n_q = _histogram_counts(x_gen, lo, hi, bins, overflow)

    n_bins = bins**N + int(overflow)
    z_p = n_p + smoothing * n_bins
    z_q = n_q + smoothing * n_bins
    union = np.union1d(ids_p, ids_q)
    c_p = np.zeros(union.size)
    c_q = np.zeros(union.size)
    c_p[np.searchsorted(union, ids_p)] = cnt_p
    c_q[np.searchsorted(union, ids_q)] = cnt_q
    p = (c_p + smoothing) / z_p
    q = (c_q + smoothing) / z_q
    kl = float(np.sum(p * np.log(p / q)))
    n_empty = n_bins - union.size
    kl += n_empty * (smoothing / z_p) * math.log(z_q / z_p)
    return kl


def _subsample(x: np.ndarray, max_points: int, rng: np.random.Generator) -> np.ndarray:
    if x.shape[0] <= max_points:
        return x
    return x[np.sort(rng.choice(x.shape[0], size=max_points, replace=False))]


def _gmm_logpdf(y: np.ndarray, centres: np.ndarray, std: float) -> np.ndarray:
    """``log( (1/K) sum_k Normal(y; centres_k, std^2 I) )`` for ``y`` ``[S, N]``, centres ``[K, N]``."""
    S, N = y.shape
    K = centres.shape[0]
    out = np.empty(S)
    c2 = np.einsum("kn,kn->k", centres, centres)
    chunk = max(1, _CHUNK_ELEMENTS // K)
    for s0 in range(0, S, chunk):
        ys = y[s0 : s0 + chunk]
        d2 = np.einsum("sn,sn->s", ys, ys)[:, None] - 2.0 * ys @ centres.T + c2[None, :]
        np.maximum(d2, 0.0, out=d2)  # rounding of the expanded square
        out[s0 : s0 + chunk] = logsumexp(-0.5 * d2 / std**2, axis=1)
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
    x_true = _real_array("x_true", x_true)
    x_gen = _real_array("x_gen", x_gen)
    _same_dim(x_true, x_gen)
    scaling = _float("scaling", scaling, 0.0, lo_open=True)
    max_points = _int("max_points", max_points, 1)
    n_samples = _int("n_samples", n_samples, 1)
    rng = _rng(seed)
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
    x_true = _real_array("x_true", x_true)
    x_gen = _real_array("x_gen", x_gen)
    _same_dim(x_true, x_gen)
    sigma = _float("smoothing_sigma", smoothing_sigma, 0.0)
    T = min(x_true.shape[0], x_gen.shape[0])
    if T < 2:
        raise ValueError(
            f"x_true, x_gen: need at least 2 time steps, got {x_true.shape[0]} and {x_gen.shape[0]}"
        )
    distances = []
    for d in range(x_true.shape[1]):
        p = _normalised_spectrum(x_true[:T, d], sigma)
        q = _normalised_spectrum(x_gen[:T, d], sigma)
        distances.append(np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)) / np.sqrt(2.0))
    return float(np.mean(distances))


# ------------------------------------------------------------------------------------------------
# prediction error and valid prediction time
# ------------------------------------------------------------------------------------------------
def _start_points(B: int, T: int, horizon: int, max_starts: int) -> Tuple[np.ndarray, np.ndarray]:
    """(sequence, time) of at most ``max_starts`` start points, evenly spaced over all ``(b, t)`` with
    ``t + horizon <= T - 1``."""
    per_seq = T - horizon
    total = B * per_seq
    flat = np.unique(np.round(np.linspace(0, total - 1, min(max_starts, total))).astype(np.int64))
    return flat // per_seq, flat % per_seq


def _inferred_states(model, x: np.ndarray, b: np.ndarray, t: np.ndarray, init: str) -> np.ndarray:
    """Data-inferred latent states ``[S, M]`` at the start points (see :func:`prediction_error_curve`)."""
    if init == "initial_state":
        return np.ascontiguousarray(model.initial_state(np.ascontiguousarray(x[b, t])))
    # forced: one-step teacher-forced rollout, then the forcing operator with weight 1
    _, z = model.rollout(x, forcing="sparse", tau=1, return_latent=True)  # [B, T, M], T >= 2
    z, xt = z[b, t], x[b, t]
    if model.obs == "identity":
        z = np.concatenate([xt, z[:, model.N :]], axis=1)
    else:
        z = z + (xt - z @ model["B"].T) @ model.pinv_B().T
    return np.ascontiguousarray(z, dtype=model.dtype)


def _free_predictions(model, z0: np.ndarray, steps: int):
    """Yield ``(slice, xhat [c, steps+1, N])`` free runs of ``steps`` steps from chunks of ``z0``."""
    chunk = max(1, _CHUNK_ELEMENTS // ((steps + 1) * (model.M + model.N)))
    for s0 in range(0, z0.shape[0], chunk):
        sl = slice(s0, min(s0 + chunk, z0.shape[0]))
        yield sl, model.generate(steps + 1, z0=np.ascontiguousarray(z0[sl]))


def prediction_error_curve(
    model, x: np.ndarray, n: int = 20, max_starts: int = 1000, init: str = "initial_state"
) -> np.ndarray:
    """Mean squared error of free predictions ``k = 0 .. n`` steps ahead, ``[n + 1]`` float64.

    Start points ``(b, t)`` with ``t + n <= T - 1``, at most ``max_starts`` of them evenly spaced over
    all sequences and times. From each the state is inferred from the data, ``z_t``, and the model runs
    freely: ``xhat_{t+k} = obs(F^k(z_t))``. ``curve[k] = mean over starts and dimensions of
    (xhat_{t+k} - x_{t+k})^2`` (``curve[0]`` is the error of ``obs(z_t)``: 0 for the identity
    observation).

    Data-inferred state (``init``):
        ``"initial_state"``: ``model.initial_state(x_t)`` (``[x_t, L x_t]`` for the identity
        observation), as at the start of a training sequence.
        ``"forced"``: the state of a one-step teacher-forced rollout (``forcing="sparse", tau=1``) at
        ``t`` after forcing with weight 1 (identity: ``[x_t, z_t[N:]]``; linear:
        ``z_t + B^+ (x_t - B z_t)``), so hidden units are inferred from the past of the sequence.

    Args:
        model: a :class:`plrnn_native.PLRNN` without inputs.
        x: data ``[T, N]`` or ``[B, T, N]`` of the model's dtype, ``T >= n + 1``.
        n: prediction horizon in steps (20). max_starts: number of start points (1000).
    """
    _check_model(model)
    x = _model_data(model, x)
    n = _int("n", n, 1)
    max_starts = _int("max_starts", max_starts, 1)
    init = _check_init(init)
    B, T, _ = x.shape
    if T < n + 1:
        raise ValueError(f"x: needs at least n + 1 = {n + 1} time steps, got T={T}")
    b, t = _start_points(B, T, n, max_starts)
    z0 = _inferred_states(model, x, b, t, init)
    target = x[b[:, None], t[:, None] + np.arange(n + 1)[None, :]].astype(np.float64)  # [S, n+1, N]
    sq = np.zeros(n + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        for sl, xhat in _free_predictions(model, z0, n):
            sq += np.sum((xhat.astype(np.float64) - target[sl]) ** 2, axis=(0, 2))
    return sq / (b.size * model.N)


def prediction_error(
    model, x: np.ndarray, n: int = 20, max_starts: int = 1000, init: str = "initial_state"
) -> float:
    """``PE(n)``: the mean squared error of the free prediction exactly ``n`` steps ahead.

    ``prediction_error_curve(model, x, n, max_starts, init)[n]``; see there for the start points and
    the data-inferred states. ``x``: ``[T, N]`` or ``[B, T, N]``, ``n`` = 20 by default.
    """
    return float(prediction_error_curve(model, x, n=n, max_starts=max_starts, init=init)[n])


def valid_prediction_time(
    model,
    x: np.ndarray,
    dt: float,
    lyapunov_max: float,
    threshold: float = 0.4,
    n_starts: int = 20,
    max_lyapunov_times: float = 10.0,
    init: str = "initial_state",
) -> float:
    """Valid prediction time in Lyapunov times, averaged over start points.

    From ``n_starts`` start points evenly spaced over the data (state as in
    :func:`prediction_error_curve`, ``init``), the model runs freely for ``H`` steps,
    ``H = min(ceil(max_lyapunov_times / (lyapunov_max dt)), T - 1)``. Normalised error
    ``e_k = ||xhat_{t+k} - x_{t+k}||_2 / sqrt(mean_t ||x_t||_2^2)`` (the mean over all data points). The
    valid time of a start is the last ``k`` with ``e_j <= threshold`` for all ``j <= k`` (0 if already
    ``e_0`` exceeds it; ``H`` if the error never exceeds it: the result is then censored at the horizon),
    converted to Lyapunov times ``k dt lyapunov_max``.

    Args:
        model: a PLRNN without inputs. x: data ``[T, N]`` or ``[B, T, N]``, the model's dtype, ``T >= 2``.
        dt: sampling interval of the data (> 0). lyapunov_max: largest Lyapunov exponent of the true
        system per unit time (> 0). threshold: error threshold (0.4; 0.3-0.5 in the literature).
        n_starts: start points (20). max_lyapunov_times: horizon in Lyapunov times (10).
    """
    _check_model(model)
    x = _model_data(model, x)
    dt = _float("dt", dt, 0.0, lo_open=True)
    lyapunov_max = _float("lyapunov_max", lyapunov_max, 0.0, lo_open=True)
    threshold = _float("threshold", threshold, 0.0, lo_open=True)
    n_starts = _int("n_starts", n_starts, 1)
    max_lyapunov_times = _float("max_lyapunov_times", max_lyapunov_times, 0.0, lo_open=True)
    init = _check_init(init)
    B, T, _ = x.shape
    if T < 2:
        raise ValueError(f"x: needs at least 2 time steps, got T={T}")
    H = int(min(math.ceil(max_lyapunov_times / (lyapunov_max * dt)), T - 1))
    b, t = _start_points(B, T, H, n_starts)
    z0 = _inferred_states(model, x, b, t, init)
    target = x[b[:, None], t[:, None] + np.arange(H + 1)[None, :]].astype(np.float64)  # [S, H+1, N]
    scale = math.sqrt(float(np.mean(np.sum(x.astype(np.float64) ** 2, axis=-1))))
    if scale == 0.0:
        raise ValueError("x: is identically zero; the normalised error is undefined")
    valid_steps = np.empty(b.size)
    with np.errstate(over="ignore", invalid="ignore"):
        for sl, xhat in _free_predictions(model, z0, H):
            err = np.linalg.norm(xhat.astype(np.float64) - target[sl], axis=-1) / scale  # [c, H+1]
            exceeded = ~(err <= threshold)  # NaN counts as exceeded
            first = np.where(exceeded.any(axis=1), exceeded.argmax(axis=1), H + 1)
            valid_steps[sl] = np.maximum(first - 1, 0)
    return float(np.mean(valid_steps) * dt * lyapunov_max)


# ------------------------------------------------------------------------------------------------
# Lyapunov spectrum
# ------------------------------------------------------------------------------------------------
def lyapunov_spectrum(
    model,
    T: int = 10_000,
    transient: int = 1000,
    z0: Optional[np.ndarray] = None,
    x0: Optional[np.ndarray] = None,
    n_exponents: Optional[int] = None,
    renorm_every: int = 1,
    dt: Optional[float] = None,
    seed: SeedLike = None,
) -> np.ndarray:
    """Lyapunov exponents of the model by QR re-orthonormalisation along a free trajectory.

    The trajectory ``z_0 .. z_{transient+T-1}`` starts from ``z0``, from ``model.initial_state(x0)``,
    or (neither given) from ``z0 ~ N(0, I)`` drawn with ``seed``. The exact Jacobians
    ``J_s = dF/dz(z_s)`` are computed by ``model.jacobian`` in vectorised chunks. An orthonormal frame
    ``Q`` (``[M, k]``, starting from the first ``k`` unit vectors) is propagated, ``Q <- J_s Q``, and
    re-orthonormalised by ``Q, R = qr(Q)`` every ``renorm_every`` steps (blocks restart at the end of
    the transient). The frame is propagated through the transient but only the ``T`` steps after it
    count: ``lambda_i = (1/T) sum log|R_ii|`` (natural log, per model step), sorted descending. A
    singular Jacobian can give ``-inf``.

    Args:
        model: a PLRNN without inputs. T: measured steps (10_000). transient: steps before (1000).
        z0: ``[M]`` or x0: ``[N]`` (at most one), the model's dtype.
        n_exponents: ``k``, the number of leading exponents (default ``M``).
        renorm_every: steps between QR factorisations (1; larger is faster but can overflow).
        dt: if given, the exponents are divided by ``dt`` (per unit time).
        seed: for the default initial state.

    Returns:
        ``[k]`` float64 exponents, descending.

    Raises:
        FloatingPointError: the free trajectory reaches NaN/inf (it diverged).
    """
    _check_model(model)
    M = model.M
    T = _int("T", T, 1)
    transient = _int("transient", transient, 0)
    k = M if n_exponents is None else _int("n_exponents", n_exponents, 1)
    if k > M:
        raise ValueError(f"n_exponents: must be <= M={M}, got {k}")
    renorm_every = _int("renorm_every", renorm_every, 1)
    if dt is not None:
        dt = _float("dt", dt, 0.0, lo_open=True)
    if z0 is not None and x0 is not None:
        raise ValueError("x0, z0: give at most one initial condition")
    if x0 is not None:
        z0 = model.initial_state(x0)
    elif z0 is None:
        z0 = _rng(seed).standard_normal(M).astype(model.dtype)
    elif not isinstance(z0, np.ndarray) or z0.shape != (M,):
        raise ValueError(
            f"z0: expected an array of shape [M={M}], got {getattr(z0, 'shape', type(z0).__name__)}"
        )

    total = transient + T
    _, z = model.generate(total, z0=np.ascontiguousarray(z0), return_latent=True)
    if not np.isfinite(z).all():
        step = int(np.argmax(~np.isfinite(z).all(axis=1)))
        raise FloatingPointError(
            f"model: the free trajectory diverged (non-finite state at step {step}); "
            "the Lyapunov exponents are undefined"
        )

    def jacobians():
        chunk = max(1, _CHUNK_ELEMENTS // (M * M))
        for c0 in range(0, total, chunk):
            yield from model.jacobian(z[c0 : c0 + chunk]).astype(np.float64)

    blocks = [
        (s, min(s + renorm_every, transient), False) for s in range(0, transient, renorm_every)
    ]
    blocks += [
        (s, min(s + renorm_every, total), True) for s in range(transient, total, renorm_every)
    ]
    J = jacobians()
    Q = np.eye(M, k)
    log_growth = np.zeros(k)
    with np.errstate(divide="ignore"):
        for start, stop, counted in blocks:
            for _ in range(start, stop):
                Q = next(J) @ Q
            Q, R = np.linalg.qr(Q)
            if counted:
                log_growth += np.log(np.abs(np.diag(R)))
    exponents = np.sort(log_growth / T)[::-1]
    return exponents / dt if dt is not None else exponents


# ------------------------------------------------------------------------------------------------
# the protocol
# ------------------------------------------------------------------------------------------------
def check_evaluate_args(gen_factor: float = 1.25, transient_fraction: float = 0.25, pe_steps: int = 20,
                        seed: SeedLike = None, vpt_threshold: float = 0.4, gmm_scaling: float = 1.0,
                        lyapunov_steps: int = 10_000, lyapunov_transient: int = 1000,
                        divergence_factor: float = 100.0) -> dict:
    """The protocol settings of :func:`evaluate`, checked (ValueError/TypeError naming the
    argument) and normalised, in signature order; usable before any data exist."""
    _rng(seed)
    return {
        "gen_factor": _float("gen_factor", gen_factor, 0.0, lo_open=True),
        "transient_fraction": _float("transient_fraction", transient_fraction, 0.0),
        "pe_steps": _int("pe_steps", pe_steps, 1),
        "seed": seed,
        "vpt_threshold": _float("vpt_threshold", vpt_threshold, 0.0, lo_open=True),
        "gmm_scaling": _float("gmm_scaling", gmm_scaling, 0.0, lo_open=True),
        "lyapunov_steps": _int("lyapunov_steps", lyapunov_steps, 1),
        "lyapunov_transient": _int("lyapunov_transient", lyapunov_transient, 0),
        "divergence_factor": _float("divergence_factor", divergence_factor, 0.0, lo_open=True),
    }


def evaluate(
    model,
    x_test: np.ndarray,
    dt: float,
    lyapunov_max: Optional[float] = None,
    gen_factor: float = 1.25,
    transient_fraction: float = 0.25,
    pe_steps: int = 20,
    seed: SeedLike = None,
    vpt_threshold: float = 0.4,
    gmm_scaling: float = 1.0,
    lyapunov_steps: int = 10_000,
    lyapunov_transient: int = 1000,
    divergence_factor: float = 100.0,
) -> dict:
    """Score a model on a test trajectory with the protocol of SCIENCE.md, section 4.

    1. Free run of ``T_gen = round(gen_factor T)`` steps from the first test point
       (``model.generate(T_gen, x0=x_test[0])``); the first ``T_tr = round(transient_fraction T)``
       are dropped, leaving ``x_gen`` ``[T_gen - T_tr, N]`` (``T`` with the defaults).
    2. ``D_stsp`` = KL(data || model): :func:`state_space_divergence_binned` (30 bins, widen 0.1,
       eps 1e-5) when ``N <= 4``, else :func:`state_space_divergence_gmm` (std ``gmm_scaling``, at most
       10_000 points, 1000 samples, ``seed``).
    3. ``D_H`` = :func:`power_spectrum_distance` (sigma 20 bins).
    4. ``PE(n)`` = :func:`prediction_error` with ``n = pe_steps`` (start states
       ``model.initial_state(x_t)``, up to 1000 starts).
    5. With ``lyapunov_max`` (the true system's largest exponent per unit time): the valid prediction
       time (:func:`valid_prediction_time`, threshold ``vpt_threshold``) in Lyapunov times.
    6. The model's Lyapunov spectrum (:func:`lyapunov_spectrum`, all ``M`` exponents) along
       ``lyapunov_steps`` steps after ``lyapunov_transient`` more, continuing from the end of the
       free run; ``lambda_max`` per unit time ``= lambda_max_per_step / dt``, and with ``lyapunov_max``
       its relative error ``|lambda_max - lyapunov_max| / lyapunov_max``.

    Divergence guard: if the free run has NaN/inf or leaves the data by more than
    ``divergence_factor`` times the data's largest deviation from its mean, ``diverged`` is True and
    ``D_stsp = inf``, ``D_H = NaN`` and the Lyapunov entries NaN; ``PE`` and ``VPT`` (short runs
    from the data) are still computed, as ``inf`` where their runs overflow. Nothing raises for a bad
    model; bad arguments raise ``ValueError``/``TypeError``.

    Args:
        model: a PLRNN without inputs. x_test: ``[T, N]`` of the model's dtype, finite, ``T >= 2``,
        ``T > pe_steps``. dt: sampling interval (> 0). seed: for the GMM variant.

    Returns:
        a dict of plain Python floats/ints/str/bool/lists/None (``json.dumps`` works; inf/NaN are
        written as ``Infinity``/``NaN``): ``D_stsp``, ``D_stsp_variant`` (``"binned"``/``"gmm"``),
        ``D_stsp_constants``, ``D_H``, ``D_H_smoothing_sigma``, ``PE``, ``PE_steps``, ``VPT``
        (None without ``lyapunov_max``), ``VPT_threshold``, ``lyapunov_spectrum_per_step`` (list),
        ``lambda_max_model`` (per unit time), ``lambda_max_reference``, ``lambda_max_rel_error``
        (None without reference), ``diverged``, ``divergence_reason`` (None or a str), ``T_test``,
        ``T_generated``, ``T_transient``, ``dt``, ``N``, ``M``.
    """
    _check_model(model)
    x = _model_data(model, x_test, name="x_test", ndims=(2,))[0]
    dt = _float("dt", dt, 0.0, lo_open=True)
    if lyapunov_max is not None:
        lyapunov_max = _float("lyapunov_max", lyapunov_max, 0.0, lo_open=True)
    args = check_evaluate_args(gen_factor, transient_fraction, pe_steps, seed, vpt_threshold, gmm_scaling,
                               lyapunov_steps, lyapunov_transient, divergence_factor)
    (gen_factor, transient_fraction, pe_steps, seed, vpt_threshold, gmm_scaling, lyapunov_steps,
     lyapunov_transient, divergence_factor) = args.values()
    rng = _rng(seed)
    T, N = x.shape
    if T < 2 or T <= pe_steps:
        raise ValueError(f"x_test: needs T >= 2 and T > pe_steps={pe_steps}, got T={T}")
    T_gen = int(round(gen_factor * T))
    T_tr = int(round(transient_fraction * T))
    if T_gen - T_tr < 2:
        raise ValueError(
            f"gen_factor, transient_fraction: leave {T_gen - T_tr} generated steps after the "
            "transient; need at least 2"
        )
    if np.any(np.ptp(x, axis=0) == 0):
        raise ValueError(f"x_test: dimension {int(np.argmin(np.ptp(x, axis=0)))} is constant")

    binned = N <= BINNED_MAX_DIM
    result = {
        "D_stsp": math.nan,
        "D_stsp_variant": "binned" if binned else "gmm",
        "D_stsp_constants": (
            dict(bins=30, widen=0.1, smoothing=1e-5, outside="drop")
            if binned
            else dict(scaling=gmm_scaling, max_points=10_000, n_samples=1000)
        ),
        "outside_fraction": math.nan,
        "D_H": math.nan,
        "D_H_smoothing_sigma": 20.0,
        "PE": math.nan,
        "PE_steps": pe_steps,
        "VPT": None,
        "VPT_threshold": vpt_threshold,
        "lyapunov_spectrum_per_step": None,
        "lambda_max_model": math.nan,
        "lambda_max_reference": lyapunov_max,
        "lambda_max_rel_error": None,
        "diverged": False,
        "divergence_reason": None,
        "T_test": T,
        "T_generated": T_gen,
        "T_transient": T_tr,
        "dt": dt,
        "N": N,
        "M": int(model.M),
    }

    xhat, z = model.generate(T_gen, x0=np.ascontiguousarray(x[0]), return_latent=True)
    x_gen = xhat[T_tr:].astype(np.float64)
    x64 = x.astype(np.float64)
    centre = x64.mean(axis=0)
    limit = divergence_factor * max(float(np.max(np.abs(x64 - centre))), 1e-12)
    if not (np.isfinite(x_gen).all() and np.isfinite(z).all()):
        result["diverged"], result["divergence_reason"] = True, "non-finite state in the free run"
    elif float(np.max(np.abs(x_gen - centre))) > limit:
        result["diverged"] = True
        result["divergence_reason"] = (
            f"free run leaves the data by more than {divergence_factor:g} x "
            "their largest deviation from the mean"
        )

    if result["diverged"]:
        result["D_stsp"] = math.inf
    else:
        # share of the generated points outside the (widened) data range: the binned D_stsp drops
        # them (published convention), so this tells whether the model escapes the data's region
        spread = 0.1 * x64.std(axis=0)
        outside = np.any((x_gen < x64.min(axis=0) - spread) | (x_gen >= x64.max(axis=0) + spread), axis=1)
        result["outside_fraction"] = float(outside.mean())
        if binned:
            result["D_stsp"] = state_space_divergence_binned(
                x64, x_gen, **result["D_stsp_constants"]
            )
        else:
            result["D_stsp"] = state_space_divergence_gmm(
                x64, x_gen, seed=rng, **result["D_stsp_constants"]
            )
        result["D_H"] = power_spectrum_distance(
            x64, x_gen, smoothing_sigma=result["D_H_smoothing_sigma"]
        )

    pe = prediction_error(model, x, n=pe_steps)
    result["PE"] = pe if math.isfinite(pe) else math.inf
    if lyapunov_max is not None:
        result["VPT"] = valid_prediction_time(model, x, dt, lyapunov_max, threshold=vpt_threshold)

    if not result["diverged"]:
        try:
            spectrum = lyapunov_spectrum(
                model,
                T=lyapunov_steps,
                transient=lyapunov_transient,
                z0=np.ascontiguousarray(z[-1]),
            )
        except FloatingPointError as exc:
            result["diverged"], result["divergence_reason"] = True, f"Lyapunov run: {exc}"
        else:
            result["lyapunov_spectrum_per_step"] = [float(v) for v in spectrum]
            result["lambda_max_model"] = float(spectrum[0]) / dt
            if lyapunov_max is not None:
                result["lambda_max_rel_error"] = (
                    abs(result["lambda_max_model"] - lyapunov_max) / lyapunov_max
                )
    for key in ("D_stsp", "D_H", "PE", "VPT", "lambda_max_model", "lambda_max_rel_error"):
        if result[key] is not None:
            result[key] = float(result[key])
    return result
