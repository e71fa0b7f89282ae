"""Training a PLRNN on time series: batches of random subsequences, BPTT with teacher forcing in the
native core, Adam/RAdam, learning-rate decay, gradient clipping, MAR, divergence guard, checkpoints.

An epoch's optimiser steps run in one native call (``csrc/training/train_step.h`` on the CPU,
``cuda/training/train_step.h`` on a GPU: batch sampling, teacher noise, rollout + BPTT, MAR, clipping,
Adam/RAdam, divergence check); Python does epoch-level work (history, snapshots for the divergence
guard, callbacks, checkpoints). With adaptive alpha the steps run here, one native loss_and_grad each,
with the same batches (:func:`sample_windows`, :func:`teacher_noise`) and the same update.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._backend import backend as _backend, parse_device
from ._io import NpzReader, atomic_savez, atomic_write_text
from ._validation import (check_array, check_betas, check_bool, check_choice, check_float,
                          check_instance, check_int, check_ndarray)
from .models import PLRNN, check_alpha, check_tau
from .optim import (Adam, exponential_lr, guarded_loop, guarded_step, optimizer_restore, optimizer_snapshot,
                    params_finite, progress_bar, show_loss)
from .regularizers import MAR
from .selection import BestModelSelector

_CHECKPOINT_FORMAT = "plrnn_native.checkpoint/1"
#: Training methods: deterministic BPTT with teacher forcing (:class:`Trainer`) or variational inference
#: of the probabilistic PLRNN (:class:`plrnn_native.vi.VITrainer`, docs/probabilistic.md).
METHODS = ("bptt", "vi")


# ---- the counter-based sampler: the NumPy statement of csrc/training/counter_rng.h ----------------
def _splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 of uint64 arrays (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _draw(seed: int, step: int, a: np.ndarray, b: int) -> np.ndarray:
    """``draw(seed, step, a, b)`` for an array of ``a``: the chain of splitmix64 over the four keys."""
    head = _splitmix64(_splitmix64(np.array([seed], np.uint64)) ^ np.uint64(step))
    return _splitmix64(_splitmix64(head ^ a.astype(np.uint64)) ^ np.uint64(b))


def sample_windows(seed: int, step: int, batch_size: int, prefix: Sequence[int]) -> List[Tuple[int, int]]:
    """The ``(series, start)`` window of every batch slot of optimiser step ``step``: flat index
    ``floor(draw(seed, step, b, 0) * n / 2^64)`` over the ``n = prefix[-1]`` windows of all series in order
    (``prefix``: 0 and the running sums of each series' window count), every window equally likely."""
    total = int(prefix[-1])
    out = []
    for h in _draw(seed, step, np.arange(batch_size), 0).tolist():
        idx = (int(h) * total) >> 64
        i = int(np.searchsorted(prefix, idx, side="right")) - 1
        out.append((i, idx - int(prefix[i])))
    return out


def teacher_noise(seed: int, step: int, shape: Tuple[int, ...]) -> np.ndarray:
    """Standard normals (float64) of the flat batch elements of step ``step``: Box-Muller on
    ``draw(seed, step, e, 1)`` and ``draw(seed, step, e, 2)``, each mapped to (0, 1] by its top 53 bits."""
    e = np.arange(int(np.prod(shape)))
    u1, u2 = ((((_draw(seed, step, e, j) >> np.uint64(11)) + np.uint64(1)).astype(np.float64)
               * (1.0 / 9007199254740992.0)) for j in (1, 2))
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)).reshape(shape)


@dataclass
class TrainConfig:
    """Hyperparameters of :class:`Trainer` (defaults: the usual DSR setting for Lorenz-63).

    Attributes:
        method: ``"bptt"`` (this trainer) or ``"vi"`` (variational inference: :class:`plrnn_native.vi.VITrainer`,
            which takes the settings here that apply to it: ``plrnn_native.vi_run.VI_TRAIN_KEYS``).
        seq_len: length of the training subsequences (>= 2).
        batch_size: subsequences per batch.
        batches_per_epoch: optimiser steps per epoch.
        epochs: number of epochs.
        optimizer: ``"adam"`` or ``"radam"``.
        lr, lr_end: learning rate, decayed exponentially per epoch from ``lr`` to ``lr_end``.
        betas, eps: Adam moments' decay rates and denominator guard.
        grad_clip: clip the global gradient norm to this value (0 disables).
        forcing: ``"sparse"`` (interval ``tau``), ``"generalized"`` (weight ``alpha``) or ``"none"``.
        tau: sparse teacher-forcing interval in steps.
        alpha: generalized teacher-forcing weight in [0, 1] (the start value when adaptive).
        adaptive_alpha: adapt ``alpha`` to the Jacobian norm along the batch (Hess et al. 2023):
            ``alpha* = max(0, 1 - 1/G)`` with ``G`` the geometric mean of the per-step spectral norms;
            ``alpha`` rises to ``alpha*`` at once and decays as ``0.999 alpha + 0.001 alpha*``.
        alpha_every: batches between two estimates of ``alpha*``.
        teacher_noise: std of Gaussian noise added to each batch's data (teacher signals and
            targets alike; zero-mean noise on the targets leaves the expected gradient unchanged).
        mar_weight, mar_fraction, mar_select: manifold-attractor regularisation (weight 0: off).
        seed: seed of batch sampling and noise.
        device: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"`` or ``"auto"``. On a CUDA device the
            training data, parameters and Adam moments stay on the GPU and a whole optimiser step
            (batch sampling, forward + BPTT, MAR, clipping, Adam) runs there (docs/gpu.md); the model
            and optimiser state are copied back at the end of every epoch. The batches are drawn by
            a counter-based generator keyed by ``(seed, batch index)``, so they differ from the CPU
            trainer's (same distribution); ``adaptive_alpha`` is CPU-only.
    """

    method: str = "bptt"
    seq_len: int = 200
    batch_size: int = 16
    batches_per_epoch: int = 50
    epochs: int = 1000
    optimizer: str = "adam"
    lr: float = 1e-3
    lr_end: float = 1e-5
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float = 10.0
    forcing: str = "sparse"
    tau: int = 25
    alpha: float = 0.1
    adaptive_alpha: bool = False
    alpha_every: int = 5
    teacher_noise: float = 0.0
    mar_weight: float = 0.0
    mar_fraction: float = 0.5
    mar_select: str = "last"
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        check_choice("method", self.method, METHODS)
        check_int("seq_len", self.seq_len, 2)
        check_int("batch_size", self.batch_size, 1)
        check_int("batches_per_epoch", self.batches_per_epoch, 1)
        check_int("epochs", self.epochs, 0)
        check_choice("optimizer", self.optimizer, ("adam", "radam"))
        check_float("lr", self.lr, lo=0.0, lo_open=True)
        check_float("lr_end", self.lr_end, lo=0.0, lo_open=True)
        self.betas = check_betas("betas", self.betas)
        check_float("eps", self.eps, lo=0.0, lo_open=True)
        check_float("grad_clip", self.grad_clip, lo=0.0)
        check_choice("forcing", self.forcing, ("none", "sparse", "generalized"))
        check_tau(self.tau)
        check_alpha(self.alpha)
        check_bool("adaptive_alpha", self.adaptive_alpha)
        check_int("alpha_every", self.alpha_every, 1)
        check_float("teacher_noise", self.teacher_noise, lo=0.0)
        check_float("mar_weight", self.mar_weight, lo=0.0)
        check_float("mar_fraction", self.mar_fraction, lo=0.0, hi=1.0, lo_open=True)
        check_choice("mar_select", self.mar_select, ("first", "last"))
        check_int("seed", self.seed, 0)
        parse_device(self.device)

    def mar(self) -> Optional[MAR]:
        if self.mar_weight == 0:
            return None
        return MAR(self.mar_weight, fraction=self.mar_fraction, select=self.mar_select)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"training config: unknown keys {sorted(unknown)}")
        return cls(**d)


@dataclass
class TrainResult:
    """Outcome of :meth:`Trainer.train`."""

    status: str  # "completed" or "diverged"
    message: str
    epochs_done: int
    history: List[dict] = field(default_factory=list)


def _as_series_list(x, s, model: PLRNN, seq_len: int):
    """Validated list of (x [T, N], s [T, K] | None, observed [T, N] bool | None) in the model's
    dtype. NaN in x are missing values: x holds 0 there and ``observed`` marks the rest (None when
    a series is complete); inf, and a series with no observed value, raise."""
    xs = list(x) if isinstance(x, (list, tuple)) else [x]
    ss = list(s) if isinstance(s, (list, tuple)) else [s] * len(xs)
    if not xs:
        raise ValueError("x: no training series")
    if len(ss) != len(xs):
        raise ValueError(f"s: {len(ss)} input series for {len(xs)} data series")
    out = []
    for i, (xi, si) in enumerate(zip(xs, ss)):
        name = "x" if len(xs) == 1 else f"x[{i}]"
        check_ndarray(name, xi)
        if xi.ndim != 2 or xi.shape[1] != model.N:
            raise ValueError(f"{name}: expected shape [T, N={model.N}], got {xi.shape}")
        xi = np.ascontiguousarray(xi, dtype=model.dtype)
        missing = np.isnan(xi)
        observed = None
        if missing.any():
            if missing.all():
                raise ValueError(f"{name}: every value is missing (NaN)")
            observed = ~missing
            xi = np.where(missing, xi.dtype.type(0), xi)  # a copy: the caller's array is untouched
        check_array(name, xi, model.dtype, (None, model.N))  # inf is never a missing value
        if xi.shape[0] < seq_len:
            raise ValueError(f"{name}: {xi.shape[0]} time steps is shorter than seq_len={seq_len}")
        if model.K > 0:
            if si is None:
                raise ValueError(f"s: the model has K={model.K} inputs; pass s [T, K] with the data")
            si = np.ascontiguousarray(si, dtype=model.dtype)
            check_array("s", si, model.dtype, (xi.shape[0], model.K))
        elif si is not None:
            raise ValueError("s: the model has K=0 external inputs; pass s=None")
        out.append((xi, si, observed))
    return out


class Trainer:
    """Trains ``model`` in place on one or several time series.

    Args:
        model: the :class:`~plrnn_native.PLRNN` to train (its dtype is the training precision).
        x: training data ``[T, N]`` (z-scored), or a list of such series (trials, subjects,
            sessions; of any lengths >= ``seq_len``): a training window never crosses from one
            series into the next. NaN marks a missing value: it is masked out of the loss and never
            used as a teacher signal (``missing_fraction`` says how many there are).
        s: external inputs ``[T, K]`` (or a list), when the model has ``K > 0``.
        config: :class:`TrainConfig`.
        callback: called as ``callback(trainer, record)`` after every epoch.

    The batch of optimiser step ``k`` depends only on ``(config.seed, k)`` (:meth:`sample_batch`), the same
    on every backend; on the CPU, results are bit-for-bit reproducible for a seed, on any number of threads
    (``csrc/core/thread_pool.h``: the batch is cut into chunks by its size alone), and a resumed run
    continues exactly.
    """

    def __init__(self, model: PLRNN, x, s=None, config: Optional[TrainConfig] = None,
                 callback: Optional[Callable[["Trainer", dict], None]] = None):
        self.model = check_instance("model", model, PLRNN, "a plrnn_native.PLRNN")
        self.config = check_instance("config", config or TrainConfig(), TrainConfig, "a TrainConfig")
        if self.config.method != "bptt":
            raise ValueError(f"config.method: {self.config.method!r} trains with plrnn_native.vi.VITrainer, not Trainer")
        self.series = _as_series_list(x, s, model, self.config.seq_len)
        n_missing = sum(int(o.size - o.sum()) for _, _, o in self.series if o is not None)
        #: share of the training entries that are missing (NaN in the data)
        self.missing_fraction = n_missing / sum(xi.size for xi, _, _ in self.series)
        self.callback = callback
        self.optimizer = Adam(model.params, self.config.optimizer, self.config.betas, self.config.eps)
        self.alpha = self.config.alpha
        self.epoch = 0
        self.batches_done = 0
        self.history: List[dict] = []
        self._encoded_history = EncodedHistory()  # the checkpoints' copy, encoded once per record
        self._native = None
        self._mar = self.config.mar()
        self._windows = np.cumsum([0] + [xi.shape[0] - self.config.seq_len + 1 for xi, _, _ in self.series])
        self._native_params_finite = True
        #: the native training loop (csrc/training/train_step.h on the CPU, cuda/training/train_step.h on a
        #: GPU), or None where this class runs the steps (adaptive alpha)
        self._native = _backend(self.config.device).native_trainer(
            self.model, self.series, self.config, float(self.alpha), self._mar, self.missing_fraction)

    def _pull_from_native(self) -> None:
        """Parameters and Adam moments from the native trainer into the model and the optimiser."""
        if self._native is not None:
            self._native.get_params(self.model._params)
            self._native.get_moments(self.optimizer.m, self.optimizer.v)

    def _push_to_native(self) -> None:
        if self._native is not None:
            self._native.set_params(self.model._params)
            self._native.set_moments(self.optimizer.m, self.optimizer.v)

    # ---- one batch -------------------------------------------------------------------------
    def sample_batch(self, step_index: Optional[int] = None):
        """The batch of optimiser step ``step_index`` (default: the next, ``batches_done``): x [B, seq_len, N],
        s [B, seq_len, K] (or None) and the observed-entry mask [B, seq_len, N] (None when the data have no
        missing values). The windows and teacher noise of the counter-based sampler every trainer uses
        (:func:`sample_windows`, :func:`teacher_noise`; natively csrc/training/counter_rng.h): a step's batch
        depends only on ``(seed, step_index)``."""
        cfg = self.config
        k = self.batches_done if step_index is None else check_int("step_index", step_index, 0)
        xb = np.empty((cfg.batch_size, cfg.seq_len, self.model.N), dtype=self.model.dtype)
        sb = None if self.model.K == 0 else np.empty((cfg.batch_size, cfg.seq_len, self.model.K), self.model.dtype)
        mb = None if self.missing_fraction == 0 else np.ones(xb.shape, dtype=bool)
        for b, (i, t0) in enumerate(sample_windows(cfg.seed, k, cfg.batch_size, self._windows)):
            xi, si, oi = self.series[i]
            xb[b] = xi[t0:t0 + cfg.seq_len]
            if sb is not None:
                sb[b] = si[t0:t0 + cfg.seq_len]
            if oi is not None:
                mb[b] = oi[t0:t0 + cfg.seq_len]
        if cfg.teacher_noise > 0:
            xb += (cfg.teacher_noise * teacher_noise(cfg.seed, k, xb.shape)).astype(xb.dtype)
        return xb, sb, mb

    def lr_at(self, epoch: int) -> float:
        cfg = self.config
        return exponential_lr(cfg.lr, cfg.lr_end, epoch, cfg.epochs)

    def _forcing_kwargs(self) -> dict:
        cfg = self.config
        if cfg.forcing == "sparse":
            return {"forcing": "sparse", "tau": cfg.tau}
        if cfg.forcing == "generalized":
            return {"forcing": "generalized", "alpha": float(self.alpha)}
        return {"forcing": "none"}

    def _update_alpha(self, xb, sb, mb) -> None:
        """Adaptive GTF: alpha* = max(0, 1 - 1/G), G the geometric mean of ||J(z_t)||_2 along the batch."""
        _, z = self.model.rollout(xb, sb, return_latent=True, mask=mb, **self._forcing_kwargs())
        states = z[:, 1:].reshape(-1, self.model.M)
        if states.shape[0] > 256:  # a fixed-size, evenly spread sample keeps this O(1) per batch
            states = states[np.linspace(0, states.shape[0] - 1, 256).astype(int)]
        norms = np.linalg.norm(self.model.jacobian(states).astype(np.float64), ord=2, axis=(-2, -1))
        G = float(np.exp(np.mean(np.log(np.maximum(norms, 1e-300)))))
        target = max(0.0, 1.0 - 1.0 / G) if np.isfinite(G) else 1.0
        self.alpha = target if target > self.alpha else 0.999 * self.alpha + 0.001 * target

    def train_batch(self, lr: float) -> tuple:
        """One optimiser step; returns (loss, gradient norm before clipping)."""
        if self._native is not None:  # the whole step natively; only loss and norm come back
            loss, norm, updated, finite = self._native.step(lr, float(self.alpha), self.optimizer.t + 1,
                                                            self.batches_done)
            self._native_params_finite = bool(finite)
            if updated:
                self.optimizer.t += 1
                self.batches_done += 1
            self._pull_from_native()  # a single step: the model shows its result
            return float(loss), float(norm)
        cfg = self.config
        xb, sb, mb = self.sample_batch()
        if cfg.forcing == "generalized" and cfg.adaptive_alpha and self.batches_done % cfg.alpha_every == 0:
            self._update_alpha(xb, sb, mb)
        loss, grads = self.model.loss_and_grad(xb, sb, mar=self._mar, mask=mb, **self._forcing_kwargs())
        norm, stepped = guarded_step(self.optimizer, self.model._params, loss, grads, lr, cfg.grad_clip)
        if stepped:
            self.batches_done += 1
        return loss, norm

    def train_epoch_steps(self, lr: float) -> Tuple[Sequence[float], Sequence[float]]:
        """The optimiser steps of one epoch (``batches_per_epoch``, fewer when one diverges): their losses
        and gradient norms (float64 arrays from the native loop, which runs them all in one call; lists
        from the Python one)."""
        n = self.config.batches_per_epoch
        if self._native is None:
            losses, norms = [], []
            for _ in range(n):
                loss, norm = self.train_batch(lr)
                losses.append(loss)
                norms.append(norm)
                if not (math.isfinite(loss) and math.isfinite(norm)) or not self._params_finite():
                    break
            return losses, norms
        loss, norm, updated, finite = self._native.run(n, lr, float(self.alpha), self.optimizer.t + 1,
                                                       self.batches_done)
        done = int(np.count_nonzero(updated))
        self.optimizer.t += done
        self.batches_done += done
        self._native_params_finite = bool(finite[-1])
        return loss, norm

    # ---- epochs ------------------------------------------------------------------------------
    def train(self, epochs: Optional[int] = None, progress: bool = False) -> TrainResult:
        """Runs epochs ``self.epoch .. epochs`` (default ``config.epochs``).

        Non-finite loss, gradient or parameters stop training: the model and optimiser are restored
        to the state after the last complete epoch and the result says so (status ``"diverged"``).
        """
        target = self.config.epochs if epochs is None else check_int("epochs", epochs, 0)
        bar = progress_bar(range(self.epoch, target), progress)

        def after_epoch(_):
            show_loss(bar, self.history[-1]["loss"])
            if self.callback is not None:
                self.callback(self, self.history[-1])

        try:  # the divergence guard and Ctrl-C: back to the end of the last complete epoch
            failure = guarded_loop(bar, self._run_epoch, self._snapshot, self._restore, after_epoch)
        finally:
            if hasattr(bar, "close"):
                bar.close()
        if failure is not None:
            return TrainResult("diverged", failure, self.epoch, self.history)
        return TrainResult("completed", f"trained {self.epoch} epochs", self.epoch, self.history)

    def _run_epoch(self, _) -> Optional[str]:
        """One epoch; None when it completed (its record appended), else how it diverged."""
        t0 = time.perf_counter()
        lr = self.lr_at(self.epoch)
        losses, norms = self.train_epoch_steps(lr)  # (numpy.mean of an array, not of its list: 15 us less)
        loss, norm = float(losses[-1]), float(norms[-1])
        if not (math.isfinite(loss) and math.isfinite(norm)) or not self._params_finite():
            return (f"training diverged in epoch {self.epoch} (loss {loss}, gradient norm {norm}); "
                    f"restored the model and optimiser to the end of epoch {self.epoch - 1}")
        record = {"epoch": self.epoch, "loss": float(np.mean(losses)), "grad_norm": float(np.mean(norms)),
                  "lr": lr, "alpha": float(self.alpha) if self.config.forcing == "generalized" else None,
                  "seconds": time.perf_counter() - t0}
        self.history.append(record)
        self.epoch += 1
        return None

    # ---- state ---------------------------------------------------------------------------------
    def _params_finite(self) -> bool:
        if self._native is not None:
            return self._native_params_finite
        return params_finite(self.model._params)

    def _snapshot(self) -> dict:
        self._pull_from_native()
        return {**optimizer_snapshot(self.model._params, self.optimizer), "alpha": self.alpha,
                "epoch": self.epoch, "batches_done": self.batches_done}

    def _restore(self, snap: dict) -> None:
        """Back to a :meth:`_snapshot` (the records of later epochs dropped)."""
        optimizer_restore(self.model._params, self.optimizer, snap)
        self.alpha = snap["alpha"]
        self.epoch = snap["epoch"]
        self.batches_done = snap["batches_done"]
        del self.history[snap["epoch"]:]
        self._push_to_native()
        self._native_params_finite = True

    def save_checkpoint(self, path: Union[str, os.PathLike]) -> None:
        """Everything needed to continue exactly where training stands, written atomically to ``.npz``."""
        snap = self._snapshot()
        meta = {
            "format": _CHECKPOINT_FORMAT,
            "model_config": self.model.config,
            "train_config": self.config.to_dict(),
            "t": snap["t"], "alpha": snap["alpha"], "epoch": snap["epoch"],
            "batches_done": snap["batches_done"],
        }
        arrays = {f"param_{k}": v for k, v in snap["params"].items()}
        arrays.update({f"adam_m_{k}": v for k, v in snap["m"].items()})
        arrays.update({f"adam_v_{k}": v for k, v in snap["v"].items()})
        atomic_savez(path, __meta__=np.array(self._encoded_history.dumps_with(meta, self.history)), **arrays)

    @classmethod
    def resume(cls, path: Union[str, os.PathLike], x, s=None,
               callback: Optional[Callable[["Trainer", dict], None]] = None) -> "Trainer":
        """A trainer continued from :meth:`save_checkpoint` on the same data: the run proceeds exactly
        (bit for bit) as if it had not been interrupted."""
        model, config, meta, m, v = _read_checkpoint(path)
        trainer = cls(model, x, s, config, callback)
        trainer.optimizer.load_state(meta["t"], m, v)
        trainer.alpha = meta["alpha"]
        trainer.epoch = meta["epoch"]
        trainer.batches_done = meta["batches_done"]
        trainer.history = meta["history"]
        trainer._push_to_native()
        return trainer


def _read_checkpoint(path):
    """Model, TrainConfig, metadata and Adam moments of a checkpoint, every part validated (the
    archive, its members and their headers against the stored model before anything is read); any
    problem is one ValueError naming the path."""
    with NpzReader(path, "plrnn_native checkpoint") as f:
        meta = f.json("__meta__")
        if meta.get("format") != _CHECKPOINT_FORMAT:
            f.fail("is not a plrnn_native checkpoint")
        try:
            model_config = meta["model_config"]
            if not isinstance(model_config, dict):
                raise TypeError("model_config: expected a JSON object")
            shapes, dtype = PLRNN._param_shapes_for(model_config)
            config = TrainConfig.from_dict(meta["train_config"])
            for key, lo in (("t", 0), ("epoch", 0), ("batches_done", 0)):
                check_int(key, meta[key], lo)
            check_alpha(meta["alpha"])
            if not (isinstance(meta["history"], list) and all(isinstance(r, dict) for r in meta["history"])):
                raise TypeError("history: expected a list of per-epoch records")
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            f.fail(f"has invalid metadata ({type(exc).__name__}: {exc})", exc)
        groups = ("param_", "adam_m_", "adam_v_")
        f.check_members(["__meta__", *(g + k for g in groups for k in shapes)])
        for g in groups:  # every header first: nothing is read from a file that declares nonsense
            for k in shapes:
                f.header(g + k)
        arrays = {g: {k: f.array(g + k, shape, dtype) for k, shape in shapes.items()} for g in groups}
        for g in ("adam_m_", "adam_v_"):
            for k, a in arrays[g].items():
                if not np.isfinite(a).all() or (g == "adam_v_" and (a < 0).any()):
                    f.fail(f"member {g + k!r} holds invalid optimiser moments")
        try:
            model = PLRNN._from_config(model_config, arrays["param_"])
        except (TypeError, ValueError) as exc:
            f.fail(f"has invalid parameters ({exc})", exc)
    return model, config, meta, arrays["adam_m_"], arrays["adam_v_"]


class EncodedHistory:
    """Per-epoch records (dicts of scalars) encoded as JSON once each. :meth:`update` compares the records
    with the copies it keeps and re-encodes from the first that differs (a rollback drops epochs; a
    record may change after it was encoded): a run that writes its history every few epochs encodes
    each record once, where encoding the whole history took 10-20 ms a write at 2000 epochs."""

    def __init__(self):
        self._records: List[dict] = []  # copies of the records encoded
        self.lines: List[str] = []      # their JSON

    def update(self, history: List[dict]) -> int:
        """Encodes what is new in ``history``; returns how many leading records were kept."""
        n, m = 0, min(len(history), len(self._records))
        while n < m and history[n] == self._records[n]:
            n += 1
        del self._records[n:], self.lines[n:]
        self._records += [dict(r) for r in history[n:]]
        self.lines += [json.dumps(r) for r in history[n:]]
        return n

    def dumps_with(self, obj: dict, history: List[dict], key: str = "history") -> str:
        """``json.dumps({**obj, key: history})`` (``obj`` without ``key``), the records as encoded."""
        self.update(history)
        head = json.dumps(obj)
        return f"{head[:-1]}{', ' if obj else ''}{json.dumps(key)}: [{', '.join(self.lines)}]}}"


class HistoryFiles:
    """A run folder's ``history.csv`` and ``history.json`` (a list, one epoch per line), both rewritten
    atomically by every :meth:`write`, each record encoded once (:class:`EncodedHistory`)."""

    def __init__(self, folder: Union[str, os.PathLike]):
        self.folder = os.fspath(folder)
        self._json = EncodedHistory()
        self._keys: List[str] = []  # the CSV columns of the rows below
        self._rows: List[str] = []  # CSV lines of the records

    def write(self, history: List[dict]) -> None:
        del self._rows[self._json.update(history):]
        keys = sorted({k for r in history for k in r}, key=lambda k: (k != "epoch", k))
        if keys != self._keys:  # a new column (e.g. the validation score): every row again
            self._keys, self._rows = keys, []
        self._rows += [self._csv_line(r) for r in history[len(self._rows):]]
        os.makedirs(self.folder, exist_ok=True)
        atomic_write_text(os.path.join(self.folder, "history.csv"), self._csv_line(keys, header=True) + "".join(self._rows))
        body = ",\n".join(self._json.lines)
        atomic_write_text(os.path.join(self.folder, "history.json"), f"[\n{body}\n]\n" if body else "[\n]\n")

    def _csv_line(self, record, header: bool = False) -> str:
        out = io.StringIO(newline="")
        csv.writer(out).writerow(record if header else [record.get(k, "") for k in self._keys])
        return out.getvalue()


def write_history(history: List[dict], folder: Union[str, os.PathLike]) -> None:
    """Per-epoch metrics as ``history.csv`` and ``history.json`` in ``folder``, written atomically
    (once; a run that writes them repeatedly keeps a :class:`HistoryFiles`)."""
    HistoryFiles(folder).write(history)


__all__ = ["TrainConfig", "TrainResult", "Trainer", "BestModelSelector", "EncodedHistory", "HistoryFiles",
           "write_history"]
