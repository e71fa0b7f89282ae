"""plrnn_native: dynamical-systems reconstruction with piecewise-linear recurrent neural networks.

The C++/Eigen core (``_core``) runs the batched rollout, BPTT and regulariser; this package holds
the models' parameters as NumPy arrays. Conventions: ``docs/model.md``.
"""

from . import cuda, data, metrics, tasks
from ._core import get_num_threads, set_num_threads
from .models import FORCINGS, KINDS, OBSERVATIONS, PLRNN, load, positive_definite_init
from .regularizers import MAR
from .supervised import SupervisedConfig, SupervisedPLRNN, train_supervised
from .sweep import sweep

__version__ = "0.1.0"

__all__ = [
    "PLRNN",
    "MAR",
    "SupervisedPLRNN",
    "SupervisedConfig",
    "train_supervised",
    "sweep",
    "tasks",
    "load",
    "positive_definite_init",
    "get_num_threads",
    "set_num_threads",
    "cuda",
    "data",
    "metrics",
    "KINDS",
    "OBSERVATIONS",
    "FORCINGS",
]
