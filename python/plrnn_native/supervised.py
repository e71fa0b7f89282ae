"""Supervised sequence learning with a PLRNN: inputs drive the latent states, a linear readout is
scored at chosen time steps (MSE or softmax cross-entropy), no teacher forcing.

    z_{-1} = z0 (zeros),   z_t = F(z_{t-1}, s_t),   y_t = B z_t + b,   t = 0 .. T-1

The forward pass and the exact gradient (BPTT) run natively (``csrc/rollout/supervised.h``); the
conventions are in ``docs/model.md`` ("Supervised model"). :func:`train_supervised` trains on the
tasks of :mod:`plrnn_native.tasks` with or without manifold-attractor regularisation (MAR).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from . import _core
from ._io import atomic_savez, load_model_npz
from ._validation import (as_rng, check_array, check_betas, check_choice, check_float, check_instance, check_int,
                          check_ndarray)
from .models import KIND_FAMILY, PLRNN, ZERO_DIAGONAL_W_KINDS
from .optim import (Adam, guarded_loop, guarded_step, optimizer_restore, optimizer_snapshot, params_finite,
                    progress_bar, show_loss)
from .regularizers import MAR

LOSSES = ("mse", "ce")
_FORMAT = "plrnn_native.supervised/1"
ArrayDict = Dict[str, np.ndarray]


class SupervisedPLRNN:
    """A PLRNN of any kind driven by inputs ``s_t`` (through ``C``) with a linear readout ``y_t = B z_t + b``.

    Args:
        kind, M, K, P, bases, hidden, clipped, dtype, seed: as for :class:`plrnn_native.PLRNN`
            (``K >= 1``: the inputs are what drives the model).
        O: readout size: regression outputs, or the number of classes for cross-entropy.
        mar_units: units that start as a manifold attractor (MAR initialisation: ``A_i = 1``, row ``i``
            of ``W`` (``W1`` for the shallow PLRNN) zero, ``h_i`` (``h1_i``) zero). Give the indices,
            or a :class:`plrnn_native.MAR` whose unit selection is used; None: plain initialisation.

    Parameters are reachable by name, ``net["W"]``, ``net["B"]`` (readout ``[O, M]``), ``net["b"]``
    (``[O]``). ``net.dynamics`` is the latent map as a :class:`plrnn_native.PLRNN` (its observation
    part ``L`` is unused), so the analysis tools (fixed points, cycles, Lyapunov exponents) apply to
    a trained network as they are.
    """

    def __init__(self, kind: str = "standard", M: int = 40, K: int = 1, O: int = 1,
                 P: Optional[int] = None, bases: Optional[int] = None, hidden: Optional[int] = None,
                 clipped: bool = False, dtype="float32", seed: Union[None, int, np.random.Generator] = None,
                 mar_units=None):
        K = check_int("K", K, 1)
        O = check_int("O", O, 1)
        rng = as_rng("seed", seed)
        self.dynamics = PLRNN(kind=kind, M=M, N=1, K=K, obs="identity", P=P, bases=bases, hidden=hidden,
                              clipped=clipped, dtype=dtype, seed=rng)
        self._O = O
        dt = self.dynamics.dtype
        self._readout: ArrayDict = {
            "B": np.ascontiguousarray(rng.standard_normal((O, self.M)) / np.sqrt(self.M), dtype=dt),
            "b": np.zeros(O, dtype=dt),
        }
        self._config = dict(self.dynamics.config, O=O)
        self._native_cfg = dict(self.dynamics.config, obs="none", N=0)
        if mar_units is not None:
            self.mar_init(mar_units)

    # ---- configuration and parameters ------------------------------------------------------
    @property
    def config(self) -> dict:
        """The full configuration (also what :meth:`save` stores)."""
        return {k: v for k, v in self._config.items() if k not in ("N", "obs")}

    kind = property(lambda self: self.dynamics.kind)
    M = property(lambda self: self.dynamics.M)
    K = property(lambda self: self.dynamics.K)
    O = property(lambda self: self._O)
    dtype = property(lambda self: self.dynamics.dtype)

    def _model_names(self):
        return [k for k in self.dynamics.keys() if k != "L"]

    def keys(self):
        return [*self._model_names(), "B", "b"]

    @property
    def params(self) -> ArrayDict:
        """The live parameter arrays by name (model and readout)."""
        return {k: self[k] for k in self.keys()}

    @property
    def n_params(self) -> int:
        """Number of trainable scalars (the zero diagonal of ``W`` of the standard and dendritic kinds excluded)."""
        n = sum(v.size for v in self.params.values())
        if self.kind in ZERO_DIAGONAL_W_KINDS:
            n -= self.M
        return int(n)

    def __contains__(self, name) -> bool:
        return name in self.keys()

    def __getitem__(self, name: str) -> np.ndarray:
        if name in ("B", "b"):
            return self._readout[name]
        if name not in self._model_names():
            raise KeyError(f"{name!r}: the supervised {self.kind} model has parameters {self.keys()}")
        return self.dynamics[name]

    def __setitem__(self, name: str, value) -> None:
        if name in ("B", "b"):
            shape = (self.O, self.M) if name == "B" else (self.O,)
            check_array(name, value, self.dtype, shape, contiguous=False)
            # swapped in as a whole, like the model's parameters (PLRNN.__setitem__)
            self._readout[name] = np.array(value, dtype=self.dtype, order="C", copy=True)
            return
        if name not in self._model_names():
            raise KeyError(f"{name!r}: the supervised {self.kind} model has parameters {self.keys()}")
        self.dynamics[name] = value

    @classmethod
    def _param_shapes_for(cls, config: dict):
        """``({name: shape}, dtype)`` of a stored configuration, validated; nothing allocated."""
        cfg = dict(config)
        O = check_int("O", cfg.pop("O", None), 1)
        check_int("K", cfg.get("K"), 1)
        dyn = PLRNN._resolve_config(N=1, obs="identity", **cfg)
        shapes = {k: tuple(v) for k, v in _core.param_shapes(dyn).items() if k != "L"}
        shapes.update(B=(O, dyn["M"]), b=(O,))
        return shapes, np.dtype(dyn["dtype"])

    @classmethod
    def _from_config(cls, config: dict, params: ArrayDict) -> "SupervisedPLRNN":
        net = cls(**config)
        for name, value in params.items():
            net[name] = value
        return net

    def __repr__(self) -> str:
        return f"SupervisedPLRNN(kind={self.kind!r}, M={self.M}, K={self.K}, O={self.O}, dtype={str(self.dtype)!r})"

    def copy(self) -> "SupervisedPLRNN":
        new = object.__new__(SupervisedPLRNN)
        new.dynamics = self.dynamics.copy()
        new._O, new._config, new._native_cfg = self._O, dict(self._config), dict(self._native_cfg)
        new._readout = {k: v.copy() for k, v in self._readout.items()}
        return new

    def mar_init(self, units, inputs: bool = False) -> np.ndarray:
        """Start ``units`` (indices, or a :class:`MAR` whose selection is used) as a manifold attractor:
        ``A_i = 1``, their rows of ``W`` (``W1``) and their bias ``h_i`` (``h1_i``) zero; with
        ``inputs`` also their rows of ``C``, so that they start silent instead of summing every input
        (see :class:`SupervisedConfig`). Returns the indices."""
        idx = units.resolve_units(self.M) if isinstance(units, MAR) else MAR(0.0, units=list(units)).resolve_units(self.M)
        wrow, bias = ("W1", "h1") if KIND_FAMILY[self.kind] == "Shallow" else ("W", "h")
        for name, value in (("A", 1), (wrow, 0), (bias, 0), *((("C", 0),) if inputs else ())):
            new = self.dynamics[name].copy()
            new[idx] = value
            self.dynamics[name] = new
        return idx

    # ---- argument handling -------------------------------------------------------------------
    def _inputs(self, s) -> np.ndarray:
        if isinstance(s, np.ndarray) and s.ndim == 2:
            raise ValueError(f"s: expected a batch of sequences [B, T, K={self.K}], got shape {s.shape} "
                             f"(use s[None] for one sequence)")
        if not isinstance(s, np.ndarray) or s.ndim != 3:
            check_array("s", s, self.dtype, (None, None, self.K))
        return check_array("s", s, self.dtype, (s.shape[0], s.shape[1], self.K))

    def _z0(self, z0, B: int) -> Optional[np.ndarray]:
        return None if z0 is None else check_array("z0", z0, self.dtype, (B, self.M))

    def _mask(self, mask, B: int, T: int) -> np.ndarray:
        if mask is None:
            return np.ones((B, T), dtype=self.dtype)
        check_ndarray("mask", mask)
        if mask.ndim == 1:  # the same weights for every sequence
            check_array("mask", mask, self.dtype, (T,))
            mask = np.ascontiguousarray(np.broadcast_to(mask, (B, T)))
        check_array("mask", mask, self.dtype, (B, T))
        if (mask < 0).any():
            raise ValueError("mask: weights must be >= 0")
        if not mask.any():
            raise ValueError("mask: no step is scored (all weights are 0)")
        return mask

    def _target(self, target, loss: str, B: int, T: int) -> np.ndarray:
        if loss == "mse":
            return check_array("target", target, self.dtype, (B, T, self.O))
        if not isinstance(target, np.ndarray) or target.dtype != np.int64:
            got = target.dtype if isinstance(target, np.ndarray) else type(target).__name__
            raise TypeError(f"target: cross-entropy needs int64 class labels [B, T], got {got}")
        return check_array("target", target, np.dtype(np.int64), (B, T))

    # ---- native computations ---------------------------------------------------------------
    def forward(self, s: np.ndarray, z0: Optional[np.ndarray] = None, return_latent: bool = False):
        """Readout of every step: ``y`` ``[B, T, O]`` (and the latent states ``[B, T, M]``).

        s: inputs ``[B, T, K]`` of the model's dtype, C-contiguous, finite; z0: ``[B, M]`` (zeros).
        """
        s = self._inputs(s)
        B, T = s.shape[:2]
        z0 = self._z0(z0, B)
        mask = np.zeros((B, T), dtype=self.dtype)
        readout = dict(self._readout)
        _, _, _, _, y, z = _core.supervised(self._native_cfg, self.dynamics._snapshot(), readout["B"],
                                            readout["b"], s, z0, mask, None, "mse", False, True,
                                            bool(return_latent))
        return (y, z) if return_latent else y

    def loss_and_grad(self, s: np.ndarray, target: np.ndarray, mask: Optional[np.ndarray] = None,
                      loss: str = "mse", z0: Optional[np.ndarray] = None, mar: Optional[MAR] = None,
                      return_z0_grad: bool = False):
        """The weighted loss over the scored steps and its exact gradient (BPTT).

        Args:
            s: inputs ``[B, T, K]``.
            target: ``loss="mse"``: ``[B, T, O]`` of the model's dtype; ``loss="ce"``: int64 class
                labels ``[B, T]`` in ``[0, O)`` (only read where the mask is nonzero).
            mask: weights ``[B, T]`` or ``[T]`` (>= 0, not all 0); None scores every step.
            loss: ``"mse"``: ``sum w |y - target|^2 / (O sum w)``; ``"ce"``:
                ``sum w (-log softmax(y)[label]) / sum w``.
            z0: initial states ``[B, M]`` (zeros by default).
            mar: adds the manifold-attractor penalty (and its gradient).
            return_z0_grad: also return ``dL/dz0`` ``[B, M]``.

        Returns:
            ``(loss, grads)`` (``grads`` keyed like :attr:`params`), plus ``dL/dz0`` on request.
        """
        loss_kind = check_choice("loss", loss, LOSSES)
        s = self._inputs(s)
        B, T = s.shape[:2]
        mask = self._mask(mask, B, T)
        target = self._target(target, loss_kind, B, T)
        z0 = self._z0(z0, B)
        readout = dict(self._readout)
        value, _, grads, g_z0, _, _ = _core.supervised(
            self._native_cfg, self.dynamics._snapshot(), readout["B"], readout["b"], s, z0, mask,
            target, loss_kind, True, False, False)
        value = float(value)
        if mar is not None:
            check_instance("mar", mar, MAR, "a plrnn_native.MAR")
            extra, mar_grads = self.dynamics.mar_penalty(mar)
            value += extra
            for name, g in mar_grads.items():
                if name in grads:
                    grads[name] += g
        grads = {k: grads[k] for k in self.keys()}
        return (value, grads, g_z0) if return_z0_grad else (value, grads)

    # ---- persistence -------------------------------------------------------------------------
    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write configuration and parameters to ``.npz``, atomically."""
        atomic_savez(path, __format__=np.array(_FORMAT), __config__=np.array(json.dumps(self.config)),
                     **{f"param_{k}": v for k, v in self.params.items()})

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "SupervisedPLRNN":
        """Read a model written by :meth:`save`; every array is validated like an assignment."""
        return load_model_npz(path, _FORMAT, "plrnn_native supervised model", cls)


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
@dataclass
class SupervisedConfig:
    """Hyperparameters of :func:`train_supervised`.

    Attributes:
        updates: optimiser steps (the budget).
        batch_size: sequences per step.
        lr, lr_end: learning rate, decayed exponentially over the updates from ``lr`` to ``lr_end``.
        optimizer, betas, eps: Adam or RAdam.
        grad_clip: global gradient-norm clipping (0: off).
        mar_weight, mar_fraction, mar_select, mar_reduce: MAR penalty (weight 0: off).
        mar_init: start the regularised units as a manifold attractor (``A = 1``, ``W`` row and ``h`` 0).
        mar_init_inputs: with ``mar_init``, also zero the regularised units' input weights ``C``.
            Exact integrators that start with random ``C`` sum every input from the first step on
            (the addition problem's value channel has mean 0.5, so they drift by ~T/4); that drift
            feeds back through the unpenalised columns of ``W`` and made 4 of 6 runs at T = 200 and
            500 overflow (``benchmarks/long_range.py``). Starting silent, they pick up only what
            the loss asks for.
        eval_every: evaluate on the evaluation split every this many updates (0: only at the end).
        eval_batch: sequences per forward call when evaluating.
        seed: seed of batch sampling (and of fresh data).
    """

    updates: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    lr_end: float = 1e-4
    optimizer: str = "adam"
    betas: Tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float = 1.0
    mar_weight: float = 0.0
    mar_fraction: float = 0.5
    mar_select: str = "last"
    mar_reduce: str = "sum"
    mar_init: bool = False
    mar_init_inputs: bool = False
    eval_every: int = 0
    eval_batch: int = 256
    seed: int = 0

    def __post_init__(self):
        check_int("updates", self.updates, 1)
        check_int("batch_size", self.batch_size, 1)
        check_float("lr", self.lr, lo=0.0, lo_open=True)
        check_float("lr_end", self.lr_end, lo=0.0, lo_open=True)
        check_choice("optimizer", self.optimizer, ("adam", "radam"))
        self.betas = check_betas("betas", self.betas)
        check_float("eps", self.eps, lo=0.0, lo_open=True)
        check_float("grad_clip", self.grad_clip, lo=0.0)
        check_float("mar_weight", self.mar_weight, lo=0.0)
        check_float("mar_fraction", self.mar_fraction, lo=0.0, hi=1.0, lo_open=True)
        check_choice("mar_select", self.mar_select, ("first", "last"))
        check_choice("mar_reduce", self.mar_reduce, ("sum", "mean"))
        check_int("eval_every", self.eval_every, 0)
        check_int("eval_batch", self.eval_batch, 1)
        check_int("seed", self.seed, 0)

    def mar(self) -> MAR:
        """The regularisation (its unit selection also serves ``mar_init``)."""
        return MAR(self.mar_weight, fraction=self.mar_fraction, select=self.mar_select, reduce=self.mar_reduce)


@dataclass
class SupervisedResult:
    status: str  # "completed" or "diverged"
    message: str
    updates_done: int
    metrics: dict  # of the evaluation split at the end (task.evaluate)
    history: List[dict] = field(default_factory=list)
    seconds: float = 0.0


def scored_outputs(net: SupervisedPLRNN, task, batch: int = 256) -> np.ndarray:
    """The readout at the task's last scored step for every sequence of ``task``: ``[n, O]``."""
    step = int(task.scored[-1])
    out = np.empty((task.n, net.O), dtype=np.float64)
    for i in range(0, task.n, batch):
        s, _, _ = task.batch(np.arange(i, min(i + batch, task.n)), dtype=net.dtype)
        out[i:i + len(s)] = net.forward(np.ascontiguousarray(s[:, :step + 1]))[:, step]
    return out


def evaluate(net: SupervisedPLRNN, task, batch: int = 256) -> dict:
    """``task.evaluate`` of the network's predictions on every sequence of ``task``, plus
    ``finite: True``; ``{"finite": False, "n": n}`` when a prediction overflows."""
    y = scored_outputs(net, task, batch)
    if not np.isfinite(y).all():
        return {"finite": False, "n": task.n}
    return {**task.evaluate(y), "finite": True}


def train_supervised(net: SupervisedPLRNN, train, evaluation, config: Optional[SupervisedConfig] = None,
                     progress: bool = False, callback: Optional[Callable[[dict], None]] = None) -> SupervisedResult:
    """Trains ``net`` on a task of :mod:`plrnn_native.tasks` by BPTT with Adam.

    Args:
        train: a ``SupervisedTask`` (batches sampled from it), or a callable ``train(n, rng)`` that
            returns a fresh task of ``n`` sequences for every update (the infinite-data regime of the
            addition problem).
        evaluation: the ``SupervisedTask`` scored at ``eval_every`` and at the end (a validation or
            test split).
        config: :class:`SupervisedConfig`; ``mar_init`` re-initialises the regularised units first.

    A non-finite loss, gradient or parameter stops training, restores the last finite state and
    reports status ``"diverged"``.
    """
    cfg = config or SupervisedConfig()
    check_instance("net", net, SupervisedPLRNN, "a SupervisedPLRNN")
    fresh = callable(train) and not hasattr(train, "batch")
    for name, task in (("train", None if fresh else train), ("evaluation", evaluation)):
        if task is None:
            continue
        if not hasattr(task, "batch") or not hasattr(task, "evaluate"):
            raise TypeError(f"{name}: expected a plrnn_native.tasks.SupervisedTask")
        if task.K != net.K or task.n_outputs != net.O:
            raise ValueError(f"{name}: the task has K={task.K} inputs and {task.n_outputs} outputs, "
                             f"the network K={net.K}, O={net.O}")
    mar = cfg.mar() if cfg.mar_weight > 0 else None
    if cfg.mar_init:
        net.mar_init(cfg.mar(), inputs=cfg.mar_init_inputs)
    elif cfg.mar_init_inputs:
        raise ValueError("mar_init_inputs: only meaningful with mar_init=True")
    rng = np.random.default_rng(cfg.seed)
    params = {**{k: net.dynamics._params[k] for k in net._model_names()}, **net._readout}
    opt = Adam(params, cfg.optimizer, tuple(cfg.betas), cfg.eps)
    decay = (cfg.lr_end / cfg.lr) ** (1.0 / max(cfg.updates - 1, 1))
    history: List[dict] = []
    t0 = time.perf_counter()
    losses: List[float] = []
    done = 0

    def update(it: int) -> Optional[str]:
        nonlocal done
        if fresh:
            task = train(cfg.batch_size, rng)
            s, target, mask = task.batch(np.arange(task.n), dtype=net.dtype)
        else:
            s, target, mask = train.batch(rng.integers(0, train.n, cfg.batch_size), dtype=net.dtype)
        loss, grads = net.loss_and_grad(s, target, mask, loss=(task if fresh else train).loss, mar=mar)
        norm, stepped = guarded_step(opt, params, loss, grads, cfg.lr * decay**it, cfg.grad_clip)
        if not stepped:
            return (f"training diverged at update {it} (loss {loss}, gradient norm {norm}); "
                    f"restored the last finite parameters")
        if not params_finite(params):
            return f"parameters became non-finite at update {it}; restored the last finite parameters"
        done = it + 1
        losses.append(loss)
        return None

    def after_update(it: int) -> None:
        if not ((cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.updates):
            return
        record = {"update": done, "train_loss": float(np.mean(losses)), "lr": cfg.lr * decay**it,
                  "seconds": time.perf_counter() - t0,
                  **{f"eval_{k}": v for k, v in evaluate(net, evaluation, cfg.eval_batch).items()
                     if isinstance(v, (int, float, bool, np.floating, np.integer, np.bool_))}}
        history.append({k: (v.item() if hasattr(v, "item") else v) for k, v in record.items()})
        losses.clear()
        if callback is not None:
            callback(record)
        show_loss(bar, record["train_loss"])

    bar = progress_bar(range(cfg.updates), progress, "updates", "update")
    # the divergence guard and Ctrl-C (the native calls check for it): back to the last complete update
    failure = guarded_loop(bar, update, lambda: optimizer_snapshot(params, opt),
                           lambda snap: optimizer_restore(params, opt, snap), after_update)
    status, message = ("diverged", failure) if failure is not None else ("completed", f"trained {cfg.updates} updates")
    metrics = evaluate(net, evaluation, cfg.eval_batch)
    return SupervisedResult(status, message, done, metrics, history, time.perf_counter() - t0)
