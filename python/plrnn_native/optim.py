"""The optimiser and the loop of every trainer (:mod:`.training`, :mod:`.supervised`, :mod:`.vi`):
Adam or RAdam on a dict of arrays, global-norm gradient clipping, the guarded update step, the guarded
loop (:func:`guarded_loop`: the divergence guard and Ctrl-C, both back to the last good state) and
its helpers (parameter snapshots, the progress bar).

The update itself is native and shared by every trainer (``csrc/training/adam.h``): the native loops
(``csrc/training/train_step.h`` on the CPU, ``cuda/training/train_step.cu`` on a GPU) apply it to their
own arrays, and :class:`Adam` here to NumPy arrays (``_core.adam_step``); the native trainers' moments
are read into and written from :class:`Adam`'s ``m``/``v`` so that checkpoints are the same everywhere.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Iterable, Optional, Tuple, TypeVar

import numpy as np

from . import _core

ArrayDict = Dict[str, np.ndarray]
State = TypeVar("State")


class Adam:
    """Adam (Kingma & Ba 2015) or RAdam (Liu et al. 2020) on a dict of arrays, updated in place."""

    def __init__(self, params: ArrayDict, kind: str, betas, eps):
        self.kind, self.betas, self.eps = kind, betas, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params: ArrayDict, grads: ArrayDict, lr: float) -> None:
        """One update in place: the native update every trainer uses (``csrc/training/adam.h``, which
        states the formulas; the native trainers apply the same code to their own arrays)."""
        _core.adam_step(params, grads, self.m, self.v, float(lr), float(self.betas[0]), float(self.betas[1]),
                        float(self.eps), self.kind == "radam", self.t + 1)
        self.t += 1

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


def show_loss(bar, loss: float) -> None:
    """The loss as the postfix of a :func:`progress_bar`, drawn with the bar's next refresh (tqdm's
    ``mininterval``): forcing a redraw each epoch cost 0.4 ms, 0.8 s of a 2000-epoch training run."""
    if hasattr(bar, "set_postfix"):
        bar.set_postfix(loss=f"{loss:.4g}", refresh=False)


def optimizer_snapshot(params: ArrayDict, optimizer: Adam) -> dict:
    """Copies of the parameters and of the optimiser's state: what a trainer restores."""
    return {"params": copy_params(params), "m": copy_params(optimizer.m), "v": copy_params(optimizer.v),
            "t": optimizer.t}


def optimizer_restore(params: ArrayDict, optimizer: Adam, snap: dict) -> None:
    """Writes an :func:`optimizer_snapshot` back (in place)."""
    restore_params(params, snap["params"])
    optimizer.load_state(snap["t"], snap["m"], snap["v"])


def guarded_loop(units: Iterable[int], run_unit: Callable[[int], Optional[str]],
                 snapshot: Callable[[], State], restore: Callable[[State], None],
                 after_unit: Optional[Callable[[int], None]] = None) -> Optional[str]:
    """The loop of every trainer: ``run_unit(i)`` for each unit (an epoch, or one update), which
    returns None when it completed with finite results or a message saying how it diverged.

    The last good state (``snapshot()``, taken before the first unit and after each completed one)
    is restored when a unit diverges (its message is returned; None when every unit completed) and
    when Ctrl-C interrupts a unit (the KeyboardInterrupt propagates after the restore), so that the
    trainer can be saved or continued as if it had stopped after the last completed unit.
    ``after_unit(i)`` runs after each completed unit, once its state counts as good.
    """
    good = snapshot()
    try:
        for i in units:
            failure = run_unit(i)
            if failure is not None:
                restore(good)
                return failure
            good = snapshot()
            if after_unit is not None:
                after_unit(i)
    except KeyboardInterrupt:
        restore(good)
        raise
    return None
