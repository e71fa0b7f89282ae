"""Model selection during training: keep the parameters whose free run matches validation data best in
state space and in the power spectrum (a callback of :class:`plrnn_native.training.Trainer`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Dict, Optional

import numpy as np

from ._validation import check_int
from .models import PLRNN

if TYPE_CHECKING:
    from .training import Trainer

#: What the selection minimises (recorded in selection.json; a run that resumes under another rule
#: scores its kept parameters again).
SELECTION_RULE = "D_stsp + D_H"


class BestModelSelector:
    """Trainer callback that keeps the parameters whose free run matches held-out data best.

    Every ``every`` epochs the model runs freely from ``x_val``'s first complete row for
    ``1.25 * len(x_val)`` steps; after dropping the first quarter it is scored against ``x_val`` by the
    state-space divergence (binned for N <= 4, Gaussian-mixture otherwise) and the power-spectrum
    distance D_H, recorded as ``val_D_stsp`` and ``val_D_H`` in the epoch's record, and the
    parameters are kept when their sum ``val_score`` (:data:`SELECTION_RULE`) is the lowest so far.
    Both terms measure the long-term behaviour the evaluation scores; each alone is noisy on a
    validation stretch of 2e4 steps (two stretches of true Lorenz-63 data differ by D_stsp ~ 0.18 there),
    so the CLI gives the selection the whole training series up to ``run.validation_steps``.
    Training can end in a worse state than it passed through (e.g. on a periodic orbit after a chaotic
    one); :meth:`restore` puts the best parameters back. ``x_val`` must not be the test data. Rows with
    a missing value (NaN) are left out of D_stsp; for D_H the gaps are filled by linear interpolation.
    A model with inputs needs ``s_val`` (the inputs along ``x_val``) and runs driven by them over
    ``len(x_val)`` steps. A free run that diverges scores ``inf``.
    """

    def __init__(self, x_val: np.ndarray, every: int = 50, seed: int = 0, s_val: Optional[np.ndarray] = None):
        x_val = np.asarray(x_val, dtype=np.float64)
        if x_val.ndim != 2 or np.isinf(x_val).any():
            raise ValueError("x_val: expected validation data [T >= 10, N] without inf")
        complete = ~np.isnan(x_val).any(axis=1)
        if complete.sum() < 10 or not complete[: len(x_val) // 2 + 1].any():
            raise ValueError("x_val: expected at least 10 complete rows (no NaN), one of them in the first half")
        start = int(np.argmax(complete))
        self.T_run = x_val.shape[0] - start
        self.x0 = x_val[start]
        self.x_val = x_val[complete]
        self.s_val = None if s_val is None else np.asarray(s_val, dtype=np.float64)[start:]
        self.every = check_int("every", every, 1)
        self.seed = seed
        self.best_score = math.inf
        self.best_epoch: Optional[int] = None
        self.best_params: Optional[Dict[str, np.ndarray]] = None
        self._x_val_bound = 1e3 * np.abs(self.x_val).max()  # a free run beyond this diverged
        self._series = x_val[start:]  # the stretch the free run follows (NaN filled for D_H)
        self._reference = None  # the binned histogram of x_val (N <= 4), made at the first score
        self._spectra = None  # the power spectra of x_val, made at the first score

    def scores(self, model: PLRNN) -> Dict[str, float]:
        """``{"D_stsp", "D_H", "score"}`` of the model's free run (``score`` = their sum; all ``inf``
        when the run diverged)."""
        from . import metrics
        from .recordings import _interpolated

        T = self.T_run
        x0 = np.ascontiguousarray(self.x0, dtype=model.dtype)
        with np.errstate(all="ignore"):
            if model.K > 0:
                if self.s_val is None:
                    raise ValueError(f"s_val: the model has K={model.K} inputs; pass the inputs along x_val")
                s = np.ascontiguousarray(self.s_val, dtype=model.dtype)
                gen = model.generate(T, x0=x0, s=s)[T // 4:].astype(np.float64)
            else:
                gen = model.generate(T + T // 4, x0=x0)[T // 4:].astype(np.float64)
        if not np.isfinite(gen).all() or np.abs(gen).max() > self._x_val_bound:
            return {"D_stsp": math.inf, "D_H": math.inf, "score": math.inf}
        if self.x_val.shape[1] <= metrics.BINNED_MAX_DIM:
            if self._reference is None:
                self._reference = metrics.BinnedReference(self.x_val)
            d_stsp = self._reference.divergence(gen)
        else:
            d_stsp = metrics.state_space_divergence_gmm(self.x_val, gen, seed=self.seed)
        if self._spectra is None:
            self._spectra = metrics.SpectrumReference(_interpolated(self._series))
        d_h = self._spectra.distance(gen)
        return {"D_stsp": float(d_stsp), "D_H": float(d_h), "score": float(d_stsp) + float(d_h)}

    def score(self, model: PLRNN) -> float:
        """The selection score (:data:`SELECTION_RULE`) of the model's free run."""
        return self.scores(model)["score"]

    def __call__(self, trainer: "Trainer", record: dict) -> None:
        if trainer.epoch % self.every != 0:
            return
        values = self.scores(trainer.model)
        record["val_D_stsp"], record["val_D_H"], record["val_score"] = (
            values["D_stsp"], values["D_H"], values["score"])
        if values["score"] < self.best_score:
            self.best_score, self.best_epoch = values["score"], record["epoch"]
            self.best_params = {k: v.copy() for k, v in trainer.model.items()}

    def restore(self, model: PLRNN) -> bool:
        """Puts the best parameters into ``model``; False when none was recorded."""
        if self.best_params is None:
            return False
        for k, v in self.best_params.items():
            model[k] = v
        return True

    def state(self) -> dict:
        return {"rule": SELECTION_RULE, "best_score": self.best_score, "best_epoch": self.best_epoch}
