"""Every PLRNN kind as one generic piecewise-linear map, the input of the exact solvers, and each kind's
Jacobian in closed form (:func:`jacobian`, behind ``PLRNN.jacobian``): the kinds' maths on the Python side.

    F(z) = J0 z + b + sum_j u_j f_j(v_j . z),     j = 0 .. n-1 ("switch units")

with scalar piecewise-linear ``f_j``: sorted breakpoints ``beta_j1 < ... < beta_jm`` split the line
into pieces ``p = 0 .. m``; piece ``p`` is ``(beta_jp, beta_j(p+1)]`` (``beta_j0 = -inf``,
``beta_j(m+1) = +inf``; a point on a breakpoint belongs to the piece below it, as relu'(0) = 0), and
on it ``f_j(a) = slope_jp a + intercept_jp``. A linear region is one piece per switch unit; in it

    J = J0 + U diag(slope) V^T,      c = b + U intercept,      F(z) = J z + c.

| kind | switch units | u_j, v_j | f_j |
|---|---|---|---|
| standard | all M units | W[:, j], e_j | relu |
| alrnn | the last P units (the others are in J0) | W[:, j], e_j | relu |
| dendritic | all M units | W[:, j], e_j | sum_b alpha_b relu(a - theta_jb) [- relu(a) sum alpha] |
| shallow | the H hidden units | W1[:, k], W2[k, :] | relu(a + h2_k) [- relu(a)] |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from ._validation import as_vector, check_instance
from .models import KIND_FAMILY, PLRNN


@dataclass
class PiecewiseForm:
    """``F(z) = J0 z + b + U f(V^T z)`` with per-unit piecewise-linear ``f`` (float64)."""

    J0: np.ndarray  # [M, M]
    b: np.ndarray  # [M]
    U: np.ndarray  # [M, n]
    V: np.ndarray  # [M, n]  (column j is v_j)
    breakpoints: List[np.ndarray]  # n arrays, sorted, distinct
    slopes: List[np.ndarray]  # n arrays of len(breakpoints[j]) + 1
    intercepts: List[np.ndarray]  # same

    @property
    def M(self) -> int:
        return self.J0.shape[0]

    @property
    def n_units(self) -> int:
        return self.U.shape[1]

    @property
    def radices(self) -> np.ndarray:
        """Pieces per switch unit."""
        return np.array([len(s) for s in self.slopes], dtype=np.int64)

    @property
    def n_regions(self) -> int:
        """Number of linear regions (a Python int: may exceed 2**63)."""
        n = 1
        for r in self.radices:
            n *= int(r)
        return n

    def pieces(self, z: np.ndarray) -> np.ndarray:
        """Piece index of every switch unit at ``z`` ``[M]`` (or ``[..., M]`` -> ``[..., n]``)."""
        a = np.asarray(z, dtype=np.float64) @ self.V  # [..., n]
        out = np.empty(a.shape, dtype=np.int64)
        for j, beta in enumerate(self.breakpoints):
            out[..., j] = np.searchsorted(beta, a[..., j], side="left")
        return out

    def region_map(self, pieces: np.ndarray):
        """``(J, c)`` of the region with these piece indices ``[n]``."""
        pieces = np.asarray(pieces, dtype=np.int64)
        sl = np.array([self.slopes[j][p] for j, p in enumerate(pieces)])
        ic = np.array([self.intercepts[j][p] for j, p in enumerate(pieces)])
        return self.J0 + (self.U * sl) @ self.V.T, self.b + self.U @ ic

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """``F(z)`` for ``z`` ``[M]``."""
        J, c = self.region_map(self.pieces(z))
        return J @ z + c


def _pieces_of(f, breakpoints: np.ndarray):
    """Slopes and intercepts of the scalar piecewise-linear ``f`` on the pieces between ``breakpoints``."""
    beta = np.unique(np.asarray(breakpoints, dtype=np.float64))
    if beta.size == 0:
        reps = np.array([0.0, 1.0])
        slope = (f(reps[1]) - f(reps[0])) / (reps[1] - reps[0])
        return beta, np.array([slope]), np.array([f(0.0)])
    gap = max(1.0, float(np.ptp(beta)))
    edges = np.concatenate([[beta[0] - gap], beta, [beta[-1] + gap]])
    slopes, intercepts = [], []
    for p in range(beta.size + 1):  # two points strictly inside piece p determine the line
        lo, hi = edges[p], edges[p + 1]
        a1, a2 = lo + (hi - lo) / 3, lo + 2 * (hi - lo) / 3
        s = (f(a2) - f(a1)) / (a2 - a1)
        slopes.append(s)
        intercepts.append(f(a1) - s * a1)
    return beta, np.array(slopes), np.array(intercepts)


def piecewise_form(model: PLRNN, s: Optional[np.ndarray] = None) -> PiecewiseForm:
    """The autonomous map of ``model`` (with a constant input ``s`` ``[K]``, default 0) in generic form."""
    check_instance("model", model, PLRNN, "a plrnn_native.PLRNN")
    p = {k: np.asarray(v, dtype=np.float64) for k, v in model.items()}
    M, kind, cfg = model.M, model.kind, model.config
    s = np.zeros(model.K) if s is None else as_vector("s", s, model.K)  # a constant input
    inputs = p["C"] @ s if model.K else np.zeros(M)
    J0 = np.diag(p["A"])
    relu = lambda a: max(a, 0.0)  # noqa: E731

    if kind == "shallow":
        W1, W2, h2 = p["W1"], p["W2"], p["h2"]
        b = p["h1"] + inputs
        U, V = W1.copy(), W2.T.copy()
        bps, sls, ics = [], [], []
        for k in range(W2.shape[0]):
            if cfg["clipped"]:
                f = (lambda hk: lambda a: relu(a + hk) - relu(a))(h2[k])
                beta = [-h2[k], 0.0]
            else:
                f = (lambda hk: lambda a: relu(a + hk))(h2[k])
                beta = [-h2[k]]
            bp, sl, ic = _pieces_of(f, beta)
            bps.append(bp), sls.append(sl), ics.append(ic)
        return PiecewiseForm(J0, b, U, V, bps, sls, ics)

    W = p["W"]
    b = p["h"] + inputs
    if kind == "alrnn":
        P = cfg["P"]
        lin = M - P
        J0 = J0.copy()
        J0[:, :lin] += W[:, :lin]
        units = range(lin, M)
    else:
        units = range(M)
    units = list(units)
    U = W[:, units].copy()
    V = np.eye(M)[:, units].copy()
    bps, sls, ics = [], [], []
    for j in units:
        if kind == "dendritic":
            alpha, theta = p["alpha"], p["theta"][j]
            clip = alpha.sum() if cfg["clipped"] else 0.0
            f = (lambda th, cl: lambda a: float(np.sum(alpha * np.maximum(a - th, 0.0))) - cl * relu(a))(theta, clip)
            beta = np.concatenate([theta, [0.0]]) if cfg["clipped"] else theta
        else:
            f, beta = relu, [0.0]
        bp, sl, ic = _pieces_of(f, beta)
        bps.append(bp), sls.append(sl), ics.append(ic)
    return PiecewiseForm(J0, b, U, V, bps, sls, ics)


def jacobian(config: dict, p: dict, z: np.ndarray) -> np.ndarray:
    """``dF/dz`` at ``z`` ``[..., M]`` -> ``[..., M, M]`` in ``z``'s dtype, of the model with this
    configuration and parameters ``p`` in the model's dtype (``PLRNN.jacobian`` checks the arguments).
    Inside a region it is the ``J`` of :meth:`PiecewiseForm.region_map`, stated here per kind in closed
    form (vectorised over the points)."""
    c, dtype, M = config, np.dtype(config["dtype"]), config["M"]
    dA = np.eye(M, dtype=dtype) * p["A"]
    if KIND_FAMILY[c["kind"]] == "Shallow":
        v = z @ p["W2"].T
        d = (v + p["h2"] > 0).astype(dtype)
        if c["clipped"]:
            d -= (v > 0).astype(dtype)
        return dA + (p["W1"] * d[..., None, :]) @ p["W2"]
    if c["kind"] == "standard":
        d = (z > 0).astype(dtype)
    elif c["kind"] == "alrnn":
        d = np.ones_like(z)
        d[..., M - c["P"]:] = z[..., M - c["P"]:] > 0
    else:  # dendritic
        d = ((z[..., None] > p["theta"]) * p["alpha"]).sum(-1)
        if c["clipped"]:
            d -= (z > 0) * p["alpha"].sum()
    return dA + p["W"] * d[..., None, :]
