"""The optimiser of both trainers (:mod:`.training`, :mod:`.supervised`): Adam or RAdam on a dict
of arrays, global-norm gradient clipping, the guarded update step they share, and the small loop
helpers both use (parameter snapshots for the divergence guard, the progress bar).

The device trainer (``cuda/train_step.cu``) runs the same update on the GPU; its moments are read
into and written from :class:`Adam`'s ``m``/``v`` so that checkpoints are the same on both.
"""

from __future__ import annotations

import math
from typing import Dict, Tuple

import numpy as np

ArrayDict = Dict[str, np.ndarray]


class Adam:
    """Adam (Kingma & Ba 2015) or RAdam (Liu et al. 2020) on a dict of arrays, updated in place."""

    def __init__(self, params: ArrayDict, kind: str, betas, eps):
        self.kind, self.betas, self.eps = kind, betas, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params: ArrayDict, grads: ArrayDict, lr: float) -> None:
        b1, b2 = self.betas
        self.t += 1
        t = self.t
        c1, c2 = 1.0 - b1**t, 1.0 - b2**t
        if self.kind == "radam":
            rho_inf = 2.0 / (1.0 - b2) - 1.0
            rho_t = rho_inf - 2.0 * t * b2**t / c2
            rect = (math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                    if rho_t > 5 else None)
        for k, p in params.items():
            g = grads[k]
            m, v = self.m[k], self.v[k]
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * g * g
            if self.kind == "radam" and rect is None:  # variance not yet tractable: momentum SGD
                p -= (lr / c1) * m
            else:
                step = (lr / c1) * (rect if self.kind == "radam" else 1.0)
                p -= (step * m / (np.sqrt(v / c2) + self.eps)).astype(p.dtype, copy=False)

    def state(self) -> dict:
        return {"t": self.t, "m": self.m, "v": self.v}

    def load_state(self, t: int, m: dict, v: dict) -> None:
        self.t = int(t)
        for k in self.m:
            self.m[k][...] = m[k]
            self.v[k][...] = v[k]


def exponential_lr(lr: float, lr_end: float, epoch: int, epochs: int) -> float:
    """The learning rate of ``epoch`` (0-based) of ``epochs``: decayed exponentially from ``lr`` at the
    first epoch to ``lr_end`` at the last (``lr`` throughout when ``epochs <= 1``)."""
    if epochs <= 1:
        return lr
    return lr * (lr_end / lr) ** (min(epoch, epochs - 1) / (epochs - 1))


def global_norm(grads: ArrayDict) -> float:
    """``sqrt(sum_k ||g_k||^2)`` over all arrays, accumulated in float64."""
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))


def clip_(grads: ArrayDict, norm: float, max_norm: float) -> None:
    """Scales ``grads`` in place to global norm ``max_norm`` when ``norm`` exceeds it (0: off)."""
    if max_norm > 0 and norm > max_norm:
        scale = max_norm / norm
        for g in grads.values():
            g *= scale


def guarded_step(optimizer: Adam, params: ArrayDict, loss: float, grads: ArrayDict, lr: float,
                 max_norm: float) -> Tuple[float, bool]:
    """One update of both trainers: the gradients' global norm, then, only when loss and norm are
    finite, clipping and the optimiser step. Returns (norm before clipping, whether it stepped);
    the caller checks the parameters afterwards (its divergence guard)."""
    norm = global_norm(grads)
    if not (math.isfinite(loss) and math.isfinite(norm)):
        return norm, False
    clip_(grads, norm, max_norm)
    optimizer.step(params, grads, lr)
    return norm, True


def params_finite(params: ArrayDict) -> bool:
    return all(np.isfinite(p).all() for p in params.values())


def copy_params(params: ArrayDict) -> ArrayDict:
    return {k: v.copy() for k, v in params.items()}


def restore_params(params: ArrayDict, saved: ArrayDict) -> None:
    """Writes ``saved`` back into the arrays of ``params`` (in place: views of them stay valid)."""
    for k, v in saved.items():
        params[k][...] = v


def progress_bar(iterable, enabled: bool, desc: str = "epochs", unit: str = "epoch"):
    """``iterable`` with a tqdm bar when ``enabled`` and tqdm is installed."""
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, desc=desc, unit=unit)
