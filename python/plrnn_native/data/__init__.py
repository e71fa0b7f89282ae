"""Benchmark data for dynamical-systems reconstruction, by concern:

- :mod:`.series`: the :class:`TimeSeries` container (split, z-scoring) and :func:`delay_embed`;
- :mod:`.odes`: the benchmark ODEs (right-hand side, Jacobian, initial conditions) and their
  DOP853 integration;
- :mod:`.generators`: the generators (:func:`lorenz63`, ...), their registry (:func:`systems`,
  :func:`make`) and :func:`lyapunov_max` of each ODE;
- :mod:`.io`: reading recorded series from ``.npy``/``.csv`` (:func:`load_timeseries`).

Output is time-major: ``x`` is ``[T, N]`` float64, inputs ``s`` are ``[T, K]`` float64 (or None).
The system settings and the generation recipe: ``docs/science.md``, "Benchmark systems".
"""

from .generators import (driven_duffing, duffing, hindmarsh_rose, lorenz63, lorenz96, lyapunov_max,
                         make, rossler, systems, van_der_pol)
from .io import load_timeseries
from .series import TimeSeries, delay_embed

# used by other modules of the package (recordings, runconfig) and the tests, not part of __all__
from .generators import _GENERATORS, LYAPUNOV_LORENZ63, LYAPUNOV_ROSSLER  # noqa: F401
from .io import read_npy, series_array  # noqa: F401
from .series import zscore_stats  # noqa: F401

__all__ = [
    "TimeSeries",
    "delay_embed",
    "driven_duffing",
    "duffing",
    "hindmarsh_rose",
    "load_timeseries",
    "lorenz63",
    "lorenz96",
    "lyapunov_max",
    "make",
    "rossler",
    "systems",
    "van_der_pol",
]
