"""Evaluation of a dynamical-systems reconstruction (``docs/science.md``, "Evaluation").

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
- :func:`score_trajectory` -- its observation metrics (``D_stsp``, ``D_H``) for any generated series.

Modules, by concern: :mod:`.observations` (``D_stsp``, ``D_H``: two series compared),
:mod:`.prediction` (``PE``, VPT: a model's predictions from data-inferred states), :mod:`.dynamics`
(the Lyapunov spectrum of a model), :mod:`.protocol` (:func:`evaluate`).

The model-based functions accept models without external inputs (``K = 0``) only, and data of the
model's dtype (as everywhere in the package, arrays are not converted silently).
"""

from .dynamics import lyapunov_spectrum
from .observations import (power_spectrum_distance, state_space_divergence_binned,
                           state_space_divergence_gmm)
from .prediction import prediction_error, prediction_error_curve, valid_prediction_time
from .protocol import evaluate, score_trajectory

# used by other modules of the package (cli, runconfig), not part of __all__
from ._checks import SeedLike  # noqa: F401
from .observations import BINNED_MAX_DIM, BinnedReference, SpectrumReference  # noqa: F401
from .protocol import check_evaluate_args  # noqa: F401

__all__ = [
    "state_space_divergence_binned",
    "state_space_divergence_gmm",
    "power_spectrum_distance",
    "prediction_error",
    "prediction_error_curve",
    "valid_prediction_time",
    "lyapunov_spectrum",
    "evaluate",
    "score_trajectory",
]
