"""Manifold-attractor regularisation (MAR, Schmidt et al. ICLR 2021): configuration and unit selection.

The penalty and its gradient are computed natively (``csrc/regularizers/mar.cpp``); conventions in
``docs/model.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ._validation import check_choice, check_float, check_int


@dataclass(frozen=True)
class MAR:
    """Pulls a set of units towards a continuum of marginally stable states.

    ``L_MAR = weight * (sum_R (A_i - 1)^2 + sum_R sum_j W_ij^2 + sum_R h_i^2)`` (``W1``/``h1`` for
    the shallow PLRNN).

    Args:
        weight: ``lambda >= 0``.
        fraction: share of the ``M`` latent units that are regularised, in ``(0, 1]``; the number of
            units is ``ceil(fraction * M)``.
        select: ``"last"`` (default: under the identity observation these are hidden units when
            ``fraction * M <= M - N``) or ``"first"``.
        units: explicit unit indices; overrides ``fraction`` and ``select``.
        reduce: ``"sum"`` (default) or ``"mean"`` (each of the three sums divided by its number of terms).
    """

    weight: float
    fraction: float = 0.5
    select: str = "last"
    units: Optional[Sequence[int]] = None
    reduce: str = "sum"

    def __post_init__(self):
        check_float("weight", self.weight, lo=0.0)
        check_float("fraction", self.fraction, lo=0.0, hi=1.0, lo_open=True)
        check_choice("select", self.select, ("first", "last"))
        check_choice("reduce", self.reduce, ("sum", "mean"))

    def resolve_units(self, M: int) -> np.ndarray:
        """Sorted int64 indices of the regularised units of a model with ``M`` latent units."""
        if self.units is not None:
            units = [check_int("units", u, 0, M - 1) for u in self.units]
            if len(set(units)) != len(units):
                raise ValueError(f"units: indices must be distinct, got {list(self.units)}")
            return np.array(sorted(units), dtype=np.int64)
        # round() first so that e.g. 0.3 * 10 = 3.0000000000000004 selects 3 units, not 4
        n = min(M, math.ceil(round(self.fraction * M, 9)))
        idx = np.arange(n, dtype=np.int64)
        return idx if self.select == "first" else idx + (M - n)
