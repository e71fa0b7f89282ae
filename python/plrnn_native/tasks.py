"""Supervised sequence tasks with long-range dependencies: the adding problem and sequential digits.

Each generator returns a :class:`SupervisedTask`: inputs ``s [n, T, K]``, one target per sequence,
the time steps at which the model's readout is scored (by default the last one), the loss
(``"mse"`` or ``"ce"``) and, for regression, the analytic MSE of the best constant predictor. The
task formats mini-batches the way the native supervised model consumes them (:meth:`batch`) and
scores the model's predictions (:meth:`evaluate`).

Tasks:

* :func:`addition` -- the adding problem of Hochreiter & Schmidhuber (1997) in the form of
  Le et al. (2015) and Arjovsky et al. (2016): two channels, ``s[:, t, 0] ~ U[0, 1]`` i.i.d. and
  ``s[:, t, 1]`` a marker that is 1 at exactly two time steps, one uniformly in the first half
  ``[0, T//2)`` and one in the second half ``[T//2, T)``; the target is the sum of the two marked
  values. Predicting the constant 1 gives MSE ``Var(u1 + u2) = 1/6``.
* :func:`multiplication` -- the same inputs, the target is the product (constant 1/4 gives
  ``Var(u1 u2) = 1/9 - 1/16 = 7/144``).
* :func:`digits` -- scikit-learn's 8x8 handwritten digits (1797 images, 10 classes) read pixel by
  pixel (64 steps), optionally upsampled to 28x28 (784 steps, the length of sequential MNIST) and
  with a fixed pixel permutation (the "permuted" variant). Needs scikit-learn
  (``pip install "plrnn_native[tasks]"``); the data ship inside its wheel, nothing is downloaded.

"Solved" (regression): the normalized MSE, ``mse / trivial_mse``, is below 0.04, i.e. the MSE is
below 0.04 of the trivial (best constant) predictor's. This is the threshold this project uses; it
is not Hochreiter & Schmidhuber's criterion, which asks for the absolute error of (nearly) every
test sequence to be below 0.04 and is reported alongside as ``frac_abs_err_below_0.04``.

Randomness is explicit: every generator takes ``rng`` (an integer seed or a
``numpy.random.Generator``); there is no global state.
"""

from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from ._validation import (as_dtype, check_bool, check_choice, check_finite, check_float, check_instance, check_int,
                          check_ndarray, readonly)

__all__ = [
    "SOLVED_THRESHOLD",
    "TASKS",
    "SupervisedTask",
    "addition",
    "digits",
    "make_task",
    "multiplication",
]

#: A regression task counts as solved when ``mse / trivial_mse`` is below this.
SOLVED_THRESHOLD = 0.04
#: Hochreiter & Schmidhuber's per-sequence tolerance on the absolute error.
ABS_ERR_TOLERANCE = 0.04

#: Names accepted by :func:`make_task`.
TASKS = ("addition", "multiplication", "digits8", "digits28", "pdigits8", "pdigits28")

RNG = Union[int, np.integer, np.random.Generator]


# ----------------------------------------------------------------------------------------------
# The task container
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SupervisedTask:
    """One data split of a supervised sequence task.

    Attributes:
        name: task name (``"addition"``, ``"digits28"``, ...).
        s: ``[n, T, K]`` inputs, float64 or float32, C-contiguous, read-only.
        y: targets, read-only: regression (``loss="mse"``) ``[n, O]`` of ``s``'s dtype;
            classification (``loss="ce"``) ``[n]`` int64 class labels in ``[0, n_outputs)``.
        loss: ``"mse"`` (mean squared error) or ``"ce"`` (softmax cross-entropy).
        n_outputs: ``O`` (regression) or the number of classes (classification).
        scored: int64 indices of the scored time steps, strictly increasing (None: ``[T - 1]``, the
            last step only). Every scored step of a sequence has that sequence's target.
        trivial_mse: regression only: the MSE of the best constant predictor (analytic), or None
            when unknown; must be None for classification.
        meta: seeds, generator parameters, original indices, normalization, ...

    The dataclass is frozen and its arrays are read-only; equality is identity.
    """

    name: str
    s: np.ndarray
    y: np.ndarray
    loss: str
    n_outputs: int
    scored: Optional[np.ndarray] = None
    trivial_mse: Optional[float] = None
    meta: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_instance("name", self.name, str, "a string")
        check_choice("loss", self.loss, ("mse", "ce"))
        n_outputs = check_int("n_outputs", self.n_outputs, minimum=1)
        object.__setattr__(self, "n_outputs", n_outputs)

        check_ndarray("s", self.s)
        dt = as_dtype(self.s.dtype)
        if self.s.ndim != 3 or min(self.s.shape) < 1:
            raise ValueError(f"s: expected a non-empty [n, T, K] array, got shape {self.s.shape}")
        check_finite("s", self.s)
        s = readonly(np.ascontiguousarray(self.s, dtype=dt))
        object.__setattr__(self, "s", s)
        n, T, _ = s.shape

        check_ndarray("y", self.y)
        if self.loss == "mse":
            if self.y.shape != (n, n_outputs):
                raise ValueError(f"y: expected shape ({n}, {n_outputs}) for loss 'mse', "
                                 f"got {self.y.shape}")
            if not (np.issubdtype(self.y.dtype, np.floating)
                    or np.issubdtype(self.y.dtype, np.integer)):
                raise TypeError(f"y: expected real targets, got dtype {self.y.dtype}")
            check_finite("y", self.y)
            y = np.ascontiguousarray(self.y, dtype=dt)
        else:
            if self.y.shape != (n,):
                raise ValueError(f"y: expected shape ({n},) for loss 'ce', got {self.y.shape}")
            if not np.issubdtype(self.y.dtype, np.integer):
                raise TypeError(f"y: expected integer class labels, got dtype {self.y.dtype}")
            if n and (self.y.min() < 0 or self.y.max() >= n_outputs):
                raise ValueError(f"y: class labels must lie in [0, {n_outputs}), "
                                 f"got [{self.y.min()}, {self.y.max()}]")
            y = np.ascontiguousarray(self.y, dtype=np.int64)
        object.__setattr__(self, "y", readonly(y))

        if self.scored is None:
            scored = np.array([T - 1], dtype=np.int64)
        else:
            raw = np.asarray(self.scored)
            if raw.ndim != 1 or raw.size < 1 or not np.issubdtype(raw.dtype, np.integer):
                raise ValueError(f"scored: expected a non-empty 1-D array of time-step indices, "
                                 f"got {self.scored!r}")
            scored = raw.astype(np.int64)
            if scored.min() < 0 or scored.max() >= T:
                raise ValueError(f"scored: indices must lie in [0, {T}), got {scored.tolist()}")
            if np.any(np.diff(scored) <= 0):
                raise ValueError(f"scored: indices must be strictly increasing, "
                                 f"got {scored.tolist()}")
        object.__setattr__(self, "scored", readonly(scored))

        if self.trivial_mse is not None:
            if self.loss != "mse":
                raise ValueError("trivial_mse: only defined for loss 'mse'")
            object.__setattr__(self, "trivial_mse",
                               check_float("trivial_mse", self.trivial_mse, lo=0.0, lo_open=True))
        check_instance("meta", self.meta, dict, "a dict")

    @property
    def n(self) -> int:
        """Number of sequences."""
        return self.s.shape[0]

    @property
    def T(self) -> int:
        """Sequence length."""
        return self.s.shape[1]

    @property
    def K(self) -> int:
        """Number of input channels."""
        return self.s.shape[2]

    # ------------------------------------------------------------------------------------------

    def batch(self, idx, dtype=None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The sequences ``idx`` in the format of the native supervised model.

        Args:
            idx: a slice, or a 1-D array (or list) of integer indices in ``[0, n)`` (repeats
                allowed).
            dtype: ``"float32"``/``"float64"`` of ``s``, the regression target and the mask
                (None: the task's dtype).

        Returns:
            ``(s, target, mask)``, fresh C-contiguous arrays: ``s [b, T, K]``; ``target`` for
            ``"mse"`` ``[b, T, O]`` holding each sequence's target at the scored steps and 0
            elsewhere, for ``"ce"`` ``[b, T]`` int64 holding the label at the scored steps and 0
            elsewhere; ``mask [b, T]`` 1 at the scored steps, 0 elsewhere.
        """
        dt = self.s.dtype if dtype is None else as_dtype(dtype)
        rows = self._rows(idx)
        b = rows.size
        s = np.array(self.s[rows], dtype=dt, order="C")
        mask = np.zeros((b, self.T), dtype=dt)
        mask[:, self.scored] = 1
        if self.loss == "mse":
            target = np.zeros((b, self.T, self.n_outputs), dtype=dt)
            target[:, self.scored, :] = self.y[rows][:, None, :]
        else:
            target = np.zeros((b, self.T), dtype=np.int64)
            target[:, self.scored] = self.y[rows][:, None]
        return s, target, mask

    def _rows(self, idx) -> np.ndarray:
        if isinstance(idx, slice):
            rows = np.arange(self.n)[idx]
        else:
            if isinstance(idx, (bool, np.bool_)):
                raise TypeError(f"idx: expected a slice or integer indices, got {idx!r}")
            arr = np.asarray(idx)
            if arr.ndim == 0 and isinstance(idx, numbers.Integral):
                arr = arr.reshape(1)
            if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
                raise TypeError(f"idx: expected a slice or a 1-D array of integer indices, "
                                f"got {idx!r}")
            rows = arr.astype(np.int64)
            if rows.size and (rows.min() < 0 or rows.max() >= self.n):
                raise ValueError(f"idx: indices must lie in [0, {self.n}), "
                                 f"got [{rows.min()}, {rows.max()}]")
        if rows.size == 0:
            raise ValueError("idx: selects no sequence")
        return rows

    # ------------------------------------------------------------------------------------------

    def evaluate(self, y_pred) -> Dict[str, Any]:
        """Scores the model's output at the scored step(s) against the targets.

        Args:
            y_pred: regression: predictions ``[n, O]`` (``[n]`` when ``O = 1``); classification:
                logits ``[n, C]``. With several scored steps also ``[n, S, O]`` / ``[n, S, C]``
                (``S = len(scored)``), every step scored against the sequence's target.

        Returns:
            regression: ``mse`` (mean over sequences, steps and outputs), ``normalized_mse``
            (``mse / trivial_mse``; None without ``trivial_mse``), ``frac_abs_err_below_0.04``
            (fraction of (sequence, step) pairs whose largest absolute error is below 0.04,
            Hochreiter & Schmidhuber's criterion), ``solved`` (``normalized_mse < 0.04``; None
            without ``trivial_mse``);
            classification: ``accuracy``, ``error`` (``1 - accuracy``), ``cross_entropy`` (mean
            negative log-softmax probability of the true class), ``chance_accuracy`` (frequency
            of the most common class in this split).
            Both also carry ``n`` (number of sequences).
        """
        if isinstance(y_pred, np.ndarray) and not (np.issubdtype(y_pred.dtype, np.floating)
                                                   or np.issubdtype(y_pred.dtype, np.integer)):
            raise TypeError(f"y_pred: expected real numbers, got dtype {y_pred.dtype}")
        try:
            pred = np.asarray(y_pred, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"y_pred: expected an array of real numbers, got {y_pred!r}") from exc
        n, O, S = self.n, self.n_outputs, self.scored.size
        if pred.ndim == 1 and O == 1 and self.loss == "mse" and pred.shape[0] == n:
            pred = pred[:, None]
        if pred.ndim == 2:
            pred = pred[:, None, :]
        ok = pred.ndim == 3 and pred.shape[0] == n and pred.shape[2] == O and (
            pred.shape[1] == S or (pred.shape[1] == 1 and S == 1))
        if not ok:
            want = f"({n}, {O})" + (f" or ({n}, {S}, {O})" if S > 1 else "")
            raise ValueError(f"y_pred: expected shape {want}, got {np.shape(y_pred)}")
        check_finite("y_pred", pred)

        if self.loss == "mse":
            err = pred - self.y.astype(np.float64)[:, None, :]
            mse = float(np.mean(err ** 2))
            frac = float(np.mean(np.max(np.abs(err), axis=2) < ABS_ERR_TOLERANCE))
            if self.trivial_mse is None:
                nmse, solved = None, None
            else:
                nmse = mse / self.trivial_mse
                solved = bool(nmse < SOLVED_THRESHOLD)
            return {"mse": mse, "normalized_mse": nmse, "frac_abs_err_below_0.04": frac,
                    "solved": solved, "n": n}

        labels = self.y
        shifted = pred - pred.max(axis=2, keepdims=True)
        log_softmax = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
        true_lp = np.take_along_axis(log_softmax, labels[:, None, None], axis=2)[..., 0]
        accuracy = float(np.mean(np.argmax(pred, axis=2) == labels[:, None]))
        chance = float(np.bincount(labels, minlength=O).max() / n)
        return {"accuracy": accuracy, "error": 1.0 - accuracy,
                "cross_entropy": float(-np.mean(true_lp)), "chance_accuracy": chance, "n": n}

    def __repr__(self) -> str:
        return (f"SupervisedTask(name={self.name!r}, n={self.n}, T={self.T}, K={self.K}, "
                f"loss={self.loss!r}, n_outputs={self.n_outputs}, dtype={self.s.dtype}, "
                f"scored={self.scored.tolist() if self.scored.size <= 4 else self.scored.size})")


def _check_rng(rng) -> Tuple[np.random.Generator, Optional[int]]:
    """A Generator from an int seed (>= 0) or a Generator; also the seed for ``meta``."""
    if isinstance(rng, np.random.Generator):
        return rng, None
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, numbers.Integral):
        raise TypeError(f"rng: expected a non-negative integer seed or a numpy.random.Generator, "
                        f"got {rng!r}")
    if rng < 0:
        raise ValueError(f"rng: seed must be >= 0, got {rng}")
    return np.random.default_rng(int(rng)), int(rng)


# ----------------------------------------------------------------------------------------------
# Adding and multiplication problems
# ----------------------------------------------------------------------------------------------


def _two_marker(kind: str, n, T, rng, dtype) -> SupervisedTask:
    n = check_int("n", n, minimum=1)
    T = check_int("T", T, minimum=2)
    dt = as_dtype(dtype)
    gen, seed = _check_rng(rng)
    values = gen.random((n, T)).astype(dt)
    half = T // 2
    pos = np.stack([gen.integers(0, half, size=n), gen.integers(half, T, size=n)], axis=1)
    s = np.zeros((n, T, 2), dtype=dt)
    s[:, :, 0] = values
    rows = np.arange(n)[:, None]
    s[rows, pos, 1] = 1
    marked = values[rows, pos].astype(np.float64)  # exactly the values in s
    if kind == "addition":
        y, trivial = marked[:, 0] + marked[:, 1], 1.0 / 6.0
    else:
        y, trivial = marked[:, 0] * marked[:, 1], 7.0 / 144.0
    meta = {"seed": seed, "T": T, "marker_positions": readonly(pos.astype(np.int64)),
            "best_constant": 1.0 if kind == "addition" else 0.25}
    return SupervisedTask(name=kind, s=s, y=y[:, None].astype(dt), loss="mse", n_outputs=1,
                          trivial_mse=trivial, meta=meta)


def addition(n: int, T: int, rng: RNG, dtype="float64") -> SupervisedTask:
    """The adding problem (Hochreiter & Schmidhuber 1997; form of Le et al. 2015).

    Args:
        n: number of sequences (>= 1).
        T: sequence length (>= 2).
        rng: integer seed (>= 0) or ``numpy.random.Generator`` (required: no hidden randomness).
        dtype: ``"float64"`` or ``"float32"`` of the inputs and targets.

    Returns:
        A regression task with ``K = 2``: ``s[:, :, 0]`` i.i.d. U[0, 1], ``s[:, :, 1]`` equal to 1
        at exactly two steps, one uniform in ``[0, T//2)`` and one uniform in ``[T//2, T)``
        (``meta["marker_positions"]`` ``[n, 2]``); target ``y [n, 1]`` the sum of the two marked
        values (computed from the values as stored in ``s``), scored at the last step;
        ``trivial_mse = 1/6`` (predicting the constant 1).
    """
    return _two_marker("addition", n, T, rng, dtype)


def multiplication(n: int, T: int, rng: RNG, dtype="float64") -> SupervisedTask:
    """The multiplication problem: the inputs of :func:`addition`, target the product.

    ``trivial_mse = Var(u1 u2) = E[u^2]^2 - E[u]^4 = 1/9 - 1/16 = 7/144`` (predicting 1/4).
    """
    return _two_marker("multiplication", n, T, rng, dtype)


# ----------------------------------------------------------------------------------------------
# Sequential digits
# ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _digit_pixels(size: int) -> Tuple[np.ndarray, np.ndarray]:
    """All 1797 images as ``[1797, size * size]`` float64 in [0, 1] (row-major) and the labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError('digits() needs scikit-learn: pip install "plrnn_native[tasks]"') from exc
    data = load_digits()
    images = np.asarray(data.images, dtype=np.float64) / 16.0
    if size == 28:
        images = _upsample(images)
    pixels = readonly(np.ascontiguousarray(images.reshape(images.shape[0], size * size)))
    labels = readonly(np.asarray(data.target, dtype=np.int64))
    return pixels, labels


def _upsample(images: np.ndarray) -> np.ndarray:
    """``[n, 8, 8]`` images in [0, 1] to ``[n, 28, 28]``: bilinear zoom by 3.5, clipped to [0, 1].

    ``scipy.ndimage.zoom(order=1)`` aligns the corner pixels' centres (output pixel ``o`` samples
    input coordinate ``o * 7 / 27``) and interpolates linearly along each axis.
    """
    from scipy.ndimage import zoom

    out = np.clip(zoom(images, (1.0, 3.5, 3.5), order=1), 0.0, 1.0)
    if out.shape[1:] != (28, 28):  # pragma: no cover - scipy's rounding of the output shape
        raise RuntimeError(f"zoom gave images of shape {out.shape[1:]}, expected (28, 28)")
    return out


def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int):
    """Sorted train and test indices; each class contributes ``round(test_fraction * n_c)``."""
    gen = np.random.default_rng(seed)
    train, test = [], []
    for c in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == c)
        n_test = round(test_fraction * members.size)
        if n_test < 1 or n_test > members.size - 1:
            raise ValueError(f"test_fraction: {test_fraction} leaves class {c} "
                             f"({members.size} images) without a train or a test image")
        shuffled = gen.permutation(members)
        test.append(shuffled[:n_test])
        train.append(shuffled[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def digits(split: str = "train", size: int = 8, permuted: bool = False,
           test_fraction: float = 0.2, seed: int = 0, permutation_seed: int = 0,
           normalize: bool = True, dtype="float64") -> SupervisedTask:
    """Sequential digits: scikit-learn's 8x8 handwritten digits read pixel by pixel.

    Args:
        split: ``"train"`` or ``"test"``.
        size: 8 (the original images, 64 steps) or 28 (each image upsampled with
            ``scipy.ndimage.zoom(image, 3.5, order=1)`` and clipped to [0, 1]; 784 steps).
        permuted: apply one fixed permutation of the pixel order (drawn from
            ``numpy.random.default_rng(permutation_seed)``) to every image.
        test_fraction: in (0, 1); the split is stratified: class ``c`` with ``n_c`` images puts
            ``round(test_fraction * n_c)`` of them, drawn from ``default_rng(seed)``, in the test
            split. The split does not depend on ``size``, ``permuted`` or ``normalize``.
        seed: non-negative integer seed of the split.
        permutation_seed: non-negative integer seed of the permutation (used when ``permuted``).
        normalize: z-score the inputs with the mean and standard deviation of all pixel values of
            the TRAIN split (so the test split is transformed with the train statistics).
        dtype: ``"float64"`` or ``"float32"`` of the inputs.

    Returns:
        A classification task (``loss="ce"``, 10 classes) with ``s [n, size*size, 1]`` (pixels in
        row-major order, values scaled from 0..16 to [0, 1] before normalization), labels ``y [n]``,
        scored at the last step; named ``"digits8"``, ``"digits28"``, ``"pdigits8"`` or
        ``"pdigits28"``. ``meta`` holds the original indices (into ``load_digits()``), the
        permutation (or None) and the normalization's ``mean``/``std`` (or None).

    Raises:
        ImportError: scikit-learn missing (``pip install "plrnn_native[tasks]"``).
    """
    split = check_choice("split", split, ("train", "test"))
    size = check_int("size", size)
    if size not in (8, 28):
        raise ValueError(f"size: expected 8 or 28, got {size}")
    check_bool("permuted", permuted)
    check_bool("normalize", normalize)
    test_fraction = check_float("test_fraction", test_fraction, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    seed = check_int("seed", seed, minimum=0)
    permutation_seed = check_int("permutation_seed", permutation_seed, minimum=0)
    dt = as_dtype(dtype)

    pixels, labels = _digit_pixels(size)
    train_idx, test_idx = _stratified_split(labels, test_fraction, seed)
    idx = train_idx if split == "train" else test_idx
    x = pixels[idx]
    perm = None
    if permuted:
        perm = np.random.default_rng(permutation_seed).permutation(size * size)
        x = x[:, perm]
    mean = std = None
    if normalize:
        train_pixels = pixels[train_idx]
        mean, std = float(train_pixels.mean()), float(train_pixels.std())
        x = (x - mean) / std
    name = f"{'p' if permuted else ''}digits{size}"
    meta = {"split": split, "size": size, "permuted": bool(permuted),
            "test_fraction": test_fraction, "seed": seed,
            "permutation_seed": permutation_seed if permuted else None,
            "permutation": None if perm is None else readonly(perm.astype(np.int64)),
            "indices": readonly(idx.astype(np.int64)), "normalize": bool(normalize),
            "mean": mean, "std": std}
    s = np.ascontiguousarray(x, dtype=dt)[:, :, None]
    return SupervisedTask(name=name, s=s, y=labels[idx], loss="ce", n_outputs=10, meta=meta)


# ----------------------------------------------------------------------------------------------
# Dispatcher
# ----------------------------------------------------------------------------------------------


def make_task(name: str, split: str = "train", *, n: Optional[int] = None,
              T: Optional[int] = None, seed: int = 0, dtype="float64",
              **kwargs) -> SupervisedTask:
    """One split of a task by name (:data:`TASKS`).

    ``"addition"`` / ``"multiplication"``: needs ``n`` and ``T``; the train and test splits are
    independent streams derived from ``seed`` (``default_rng([seed, 0])`` for train,
    ``default_rng([seed, 1])`` for test), so the same ``seed`` gives disjoint-by-construction
    draws for the two splits. ``"digits8"``, ``"digits28"``, ``"pdigits8"``, ``"pdigits28"``:
    :func:`digits` with ``seed`` as the split seed; ``n`` and ``T`` must be None; ``kwargs``
    (``test_fraction``, ``permutation_seed``, ``normalize``) are passed on.
    """
    name = check_choice("name", name, TASKS)
    split = check_choice("split", split, ("train", "test"))
    seed = check_int("seed", seed, minimum=0)
    if name in ("addition", "multiplication"):
        if kwargs:
            raise TypeError(f"{name}: unexpected arguments {sorted(kwargs)}")
        if n is None or T is None:
            raise ValueError(f"n, T: {name} needs both, got n={n!r}, T={T!r}")
        gen = np.random.default_rng([seed, 0 if split == "train" else 1])
        task = (addition if name == "addition" else multiplication)(n, T, gen, dtype)
        task.meta.update(seed=seed, split=split)
        return task
    for arg, value in (("n", n), ("T", T)):
        if value is not None:
            raise ValueError(f"{arg}: fixed by the data set for {name}, pass None (got {value!r})")
    return digits(split, size=28 if name.endswith("28") else 8,
                  permuted=name.startswith("p"), seed=seed, dtype=dtype, **kwargs)
