"""PLRNN model family: parameters as NumPy arrays, computation in the native core.

Conventions (shapes, forcing, loss) are those of ``docs/model.md``.
"""

from __future__ import annotations

import json
import os
from typing import Dict, Iterator, Optional, Tuple, Union

import numpy as np

from . import _core
from ._backend import backend as _backend
from ._io import atomic_savez, load_model_npz
from ._validation import (
    as_dtype,
    as_rng,
    check_array,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_mask,
    check_ndarray,
    check_out,
)
from .regularizers import MAR

#: The model kinds (csrc/kinds.h, the one list) and those with a clipped variant.
KINDS = tuple(dict.fromkeys(k["name"] for k in _core.kinds()))
CLIPPED_KINDS = tuple(k["name"] for k in _core.kinds() if k["clipped"])
#: Each kind's family, the shape of its step, which sets its parameters: "WPhi" (A, W, h), "Dendritic"
#: (WPhi with the bases alpha, theta), "Shallow" (A, W1, W2, h1, h2); both variants of a name share it.
KIND_FAMILY = {k["name"]: k["family"] for k in _core.kinds()}
#: The kinds whose W has a zero diagonal (a constraint of the model: self-coupling is A).
ZERO_DIAGONAL_W_KINDS = tuple(dict.fromkeys(k["name"] for k in _core.kinds() if k["zero_diag_W"]))


def kinds_of_family(family: str) -> Tuple[str, ...]:
    """The kind names of ``family`` ("WPhi", "Dendritic", "Shallow"), in the order of csrc/kinds.h."""
    return tuple(name for name, f in KIND_FAMILY.items() if f == family)


def _family_size(key: str, value, kind: str, family: str, what: str) -> Optional[int]:
    """A size only the kinds of ``family`` have (``bases``, ``hidden``): required (>= 1) there, absent elsewhere."""
    if KIND_FAMILY[kind] == family:
        if value is None:
            raise ValueError(f"{key}: the {kind} PLRNN needs {what}")
        return check_int(key, value, 1)
    if value is not None:
        owners = kinds_of_family(family)
        whose = f"the {' and '.join(map(repr, owners))} " + ("kinds have" if len(owners) > 1 else "kind has")
        raise ValueError(f"{key}: only {whose} {key}, got kind={kind!r}")
    return None


OBSERVATIONS = ("identity", "linear")
FORCINGS = ("none", "sparse", "generalized")


def check_tau(tau) -> int:
    """The sparse teacher-forcing interval: an integer (here) >= 1 (the native rule, ``check_forcing`` in
    csrc/core/param_layout.h, the one statement of it). Used by TrainConfig, to check a run's settings
    when they are made; a native call runs the rule itself (``check_call``)."""
    tau = check_int("tau", tau, -(2**63), 2**63 - 1)  # an int64: the native core's type
    _core.check_forcing("sparse", tau, 0.0)
    return tau


def check_alpha(alpha) -> float:
    """The generalized teacher-forcing weight: a float (here) in [0, 1] (the native rule, as for tau)."""
    alpha = check_float("alpha", alpha)
    _core.check_forcing("generalized", 1, alpha)
    return alpha


_FORMAT = "plrnn_native.model/1"

ArrayDict = Dict[str, np.ndarray]


def positive_definite_init(M: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Talathi & Vartak (2016) initialisation: ``K = I + R^T R / M`` scaled to spectral radius 1.

    Returns ``(A, W)`` with ``A = diag(K)`` and ``W = offdiag(K)`` (float64).
    """
    R = rng.standard_normal((M, M))
    K = np.eye(M) + R.T @ R / M
    K /= np.linalg.eigvalsh(K).max()  # symmetric positive definite: spectral radius = top eigenvalue
    A = np.diag(K).copy()
    return A, K - np.diag(A)


class PLRNN:
    """A piecewise-linear RNN of one kind: ``z_t = F(z_{t-1}, s_t)``, ``xhat_t = obs(z_t)``.

    Args:
        kind: ``"standard"`` (``A*z + W relu(z) + h + C s``, ``W`` zero-diagonal), ``"alrnn"``
            (only the last ``P`` units rectified, ``W`` full), ``"dendritic"`` (basis expansion with
            ``bases`` thresholds per unit), ``"shallow"`` (hidden layer of width ``hidden``).
        M: latent units. N: observed dimensions (``N <= M``). K: external inputs (0 for none).
        obs: ``"identity"`` (``xhat = z[:N]``, the default for reconstruction) or ``"linear"`` (``xhat = B z``).
        P: rectified units of the ALRNN, ``0 <= P <= M`` (default ``M``).
        bases: number of bases of the dendritic PLRNN. hidden: hidden width of the shallow PLRNN.
        clipped: clipped variant of the dendritic or shallow PLRNN (bounded orbits).
        dtype: ``"float32"`` or ``"float64"``: of the parameters and of every array passed in.
        seed: seed (or ``numpy.random.Generator``) of the initialisation.

    Parameters are reachable by name: ``model["W"]`` (the live array), ``model["W"] = new``
    (validated, copied, and swapped in as a whole: a native call running in another thread keeps
    the complete parameter set it started with; see "Threads" in the README).
    """

    def __init__(self, kind: str = "standard", M: int = 16, N: int = 3, K: int = 0,
                 obs: str = "identity", P: Optional[int] = None, bases: Optional[int] = None,
                 hidden: Optional[int] = None, clipped: bool = False, dtype="float64",
                 seed: Union[None, int, np.random.Generator] = None):
        self._config = self._resolve_config(kind, M, N, K, obs, P, bases, hidden, clipped, dtype)
        self._spec = _core.ModelSpec(self._config)  # parsed once; what every native call takes
        self._dtype = np.dtype(self._config["dtype"])
        self._shapes = {name: tuple(shape) for name, shape in _core.param_shapes(self._spec).items()}
        rng = as_rng("seed", seed)
        self._params: ArrayDict = {
            name: np.ascontiguousarray(value, dtype=self._dtype)
            for name, value in self._initial_params(rng).items()
        }

    @staticmethod
    def _resolve_config(kind="standard", M=16, N=3, K=0, obs="identity", P=None, bases=None, hidden=None,
                        clipped=False, dtype="float64") -> dict:
        """The validated configuration dict of the constructor's arguments (nothing allocated)."""
        kind = check_choice("kind", kind, KINDS)
        M = check_int("M", M, 1)
        N = check_int("N", N, 1)
        K = check_int("K", K, 0)
        obs = check_choice("obs", obs, OBSERVATIONS)
        if M < N and obs == "identity":
            raise ValueError(f"M: the latent size M={M} must be >= the observed size N={N} with the identity "
                             "observation (obs='linear', x = B z, allows M < N)")
        check_bool("clipped", clipped)
        if kind == "alrnn":
            P = M if P is None else check_int("P", P, 0, M)
        elif P is not None:
            raise ValueError(f"P: only the 'alrnn' kind has P, got kind={kind!r}")
        bases = _family_size("bases", bases, kind, "Dendritic", "the number of bases")
        hidden = _family_size("hidden", hidden, kind, "Shallow", "the hidden width")
        if clipped and kind not in CLIPPED_KINDS:
            raise ValueError(f"clipped: only the {' and '.join(CLIPPED_KINDS)} kinds have a clipped variant, "
                             f"got {kind!r}")
        return dict(kind=kind, M=M, N=N, K=K, obs=obs, P=P, bases=bases, hidden=hidden,
                    clipped=bool(clipped), dtype=str(as_dtype(dtype)))

    @classmethod
    def _from_params(cls, config: dict, params: ArrayDict) -> "PLRNN":
        """A model of a resolved ``config`` with the given parameters (each validated like an
        assignment), without drawing an initialisation."""
        new = object.__new__(cls)
        new._config = dict(config)
        new._spec = _core.ModelSpec(new._config)
        new._dtype = np.dtype(config["dtype"])
        new._shapes = {name: tuple(shape) for name, shape in _core.param_shapes(new._spec).items()}
        new._params = {}
        for name in new._shapes:
            new._params[name] = new._checked_param(name, params[name])
        return new

    # ---- configuration and parameters ------------------------------------------------------
    @property
    def config(self) -> dict:
        """The full configuration (also what :meth:`save` stores)."""
        return dict(self._config)

    kind = property(lambda self: self._config["kind"])
    M = property(lambda self: self._config["M"])
    N = property(lambda self: self._config["N"])
    K = property(lambda self: self._config["K"])
    obs = property(lambda self: self._config["obs"])
    dtype = property(lambda self: self._dtype)

    @property
    def params(self) -> ArrayDict:
        """The live parameter arrays by name (a new dict; the arrays are the model's own)."""
        return dict(self._params)

    @property
    def param_shapes(self) -> Dict[str, Tuple[int, ...]]:
        return dict(self._shapes)

    def keys(self):
        return self._params.keys()

    def items(self):
        return self._params.items()

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __contains__(self, name) -> bool:
        return name in self._params

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._params:
            raise KeyError(f"{name!r}: the {self.kind} model has parameters {list(self._params)}")
        return self._params[name]

    @classmethod
    def _param_shapes_for(cls, config: dict):
        """``({name: shape}, dtype)`` of a stored configuration, validated; nothing allocated."""
        cfg = cls._resolve_config(**config)
        return {k: tuple(v) for k, v in _core.param_shapes(cfg).items()}, np.dtype(cfg["dtype"])

    @classmethod
    def _from_config(cls, config: dict, params: ArrayDict) -> "PLRNN":
        return cls._from_params(cls._resolve_config(**config), params)

    def _checked_param(self, name: str, value) -> np.ndarray:
        """A validated, C-contiguous private copy of a new value of parameter ``name``."""
        check_array(name, value, self._dtype, self._shapes[name], contiguous=False)
        if name == "W" and self.kind in ZERO_DIAGONAL_W_KINDS and np.any(np.diag(value) != 0):
            raise ValueError(f"W: the {self.kind} PLRNN has a zero diagonal in W (self-coupling is A)")
        return np.array(value, dtype=self._dtype, order="C", copy=True)

    def __setitem__(self, name: str, value) -> None:
        if name not in self._params:
            raise KeyError(f"{name!r}: the {self.kind} model has parameters {list(self._params)}")
        # a new array replaces the old one in a single step: a native call in another thread holds
        # the parameter dict it started with (see _snapshot) and never sees a half-written array
        self._params[name] = self._checked_param(name, value)

    def _snapshot(self) -> ArrayDict:
        """The current parameter set, for one native call (a new dict: later assignments do not
        reach it, and it keeps the arrays alive while the call runs without the GIL)."""
        return dict(self._params)

    def __repr__(self) -> str:
        extra = {k: self._config[k] for k in ("P", "bases", "hidden") if self._config[k] is not None}
        extra.update({"clipped": True} if self._config["clipped"] else {})
        more = "".join(f", {k}={v}" for k, v in extra.items())
        return (f"PLRNN(kind={self.kind!r}, M={self.M}, N={self.N}, K={self.K}, obs={self.obs!r}"
                f"{more}, dtype={str(self._dtype)!r})")

    def copy(self) -> "PLRNN":
        new = object.__new__(PLRNN)
        new._dtype, new._config, new._spec, new._shapes = self._dtype, dict(self._config), self._spec, dict(self._shapes)
        new._params = {k: v.copy() for k, v in self._params.items()}
        return new

    def pinv_B(self, params: Optional[ArrayDict] = None) -> np.ndarray:
        """Moore–Penrose pseudo-inverse of ``B`` ``[M, N]``: the forcing operator of the linear observation."""
        if self.obs != "linear":
            raise ValueError("pinv_B: only the linear observation model has B")
        B = (self._params if params is None else params)["B"]
        return _core.pinv_B(np.ascontiguousarray(B, dtype=self._dtype))  # the trainers' own routine

    # ---- initialisation ----------------------------------------------------------------------
    def _initial_params(self, rng: np.random.Generator) -> ArrayDict:
        c = self._config
        M, N, K = c["M"], c["N"], c["K"]
        A, W = positive_definite_init(M, rng)
        p: ArrayDict = {"A": A}
        family = KIND_FAMILY[c["kind"]]
        if family == "Shallow":
            H = c["hidden"]
            p["W1"] = rng.uniform(-1, 1, (M, H)) / np.sqrt(H)
            p["W2"] = rng.uniform(-1, 1, (H, M)) / np.sqrt(M)
            p["h1"] = np.zeros(M)
            p["h2"] = rng.uniform(-1, 1, H) / np.sqrt(M)
        else:
            p["W"] = W
            p["h"] = np.zeros(M)
            if family == "Dendritic":
                Bb = c["bases"]
                p["alpha"] = rng.uniform(0, 1, Bb) / Bb
                p["theta"] = rng.standard_normal((M, Bb))
        p["C"] = rng.uniform(-1, 1, (M, K)) / np.sqrt(max(K, 1))
        if c["obs"] == "linear":
            p["B"] = rng.standard_normal((N, M)) / np.sqrt(M)
            p["L"] = np.linalg.pinv(p["B"])  # z_0 = B^+ x_0 at the start
        else:
            p["L"] = np.zeros((M - N, N))
        assert set(p) == set(self._shapes), (set(p), set(self._shapes))
        return p

    # ---- argument handling -------------------------------------------------------------------
    def _batch(self, x, s, name_x: str = "x") -> Tuple[np.ndarray, Optional[np.ndarray], bool]:
        """x as [B, T, N] (a [T, N] array is one sequence) and s as [B, T, K] or None."""
        if isinstance(x, np.ndarray) and x.ndim == 2:
            x, single = x[None], True
        else:
            single = False
        if not isinstance(x, np.ndarray) or x.ndim != 3:
            check_array(name_x, x, self._dtype, (None, None, self.N))
        B, T = x.shape[:2]
        check_array(name_x, x, self._dtype, (B, T, self.N))
        return x, self._inputs(s, (B, T)), single

    def _inputs(self, s, lead: Tuple[int, ...]) -> Optional[np.ndarray]:
        """External inputs of shape ``lead + (K,)``, validated, or None when ``K == 0``. With a
        batch of one (``lead[0] == 1``) the batch axis may be left out."""
        if self.K == 0:
            if s is None or (isinstance(s, np.ndarray) and s.size == 0):
                return None
            raise ValueError("s: the model has K=0 external inputs; pass s=None")
        if s is None:
            raise ValueError(f"s: the model has K={self.K} external inputs; s of shape "
                             f"{(*lead, self.K)} is required")
        if isinstance(s, np.ndarray) and s.ndim == len(lead) and lead[0] == 1:
            s = s[None]
        return check_array("s", s, self._dtype, (*lead, self.K))

    def _mask(self, mask, x: np.ndarray, single: bool) -> Optional[np.ndarray]:
        """The missing-value mask as the native core's 0/1 array of x's batched shape, or None."""
        if mask is None:
            return None
        if single and isinstance(mask, np.ndarray) and mask.ndim == 2:
            mask = mask[None]
        return check_mask("mask", mask, x.shape, self._dtype)

    def _forcing(self, forcing: str, tau, alpha) -> Tuple[str, int, float]:
        forcing = check_choice("forcing", forcing, FORCINGS)
        if forcing == "sparse":
            if tau is None:
                raise ValueError("tau: sparse teacher forcing needs the interval tau (an integer >= 1)")
            tau = check_int("tau", tau, -(2**63), 2**63 - 1)  # the type; its value: the native call's check_call
        elif tau is not None:
            raise ValueError(f"tau: only sparse forcing takes tau, got forcing={forcing!r}")
        if forcing == "generalized":
            if alpha is None:
                raise ValueError("alpha: generalized teacher forcing needs the weight alpha in [0, 1]")
            alpha = check_float("alpha", alpha)  # the type; its value: the native call's check_call
        elif alpha is not None:
            raise ValueError(f"alpha: only generalized forcing takes alpha, got forcing={forcing!r}")
        return forcing, (1 if tau is None else tau), (0.0 if alpha is None else alpha)

    def _Binv(self, params: ArrayDict) -> Optional[np.ndarray]:
        """pinv(B) of the linear observation (None for the identity): the native call decides whether
        it is used (``needs_binv``, csrc/core/param_layout.h, the one place of that rule)."""
        return self.pinv_B(params) if self.obs == "linear" else None

    # ---- native computations ---------------------------------------------------------------
    def rollout(self, x: np.ndarray, s: Optional[np.ndarray] = None, forcing: str = "none",
                tau: Optional[int] = None, alpha: Optional[float] = None,
                return_latent: bool = False, out: Optional[np.ndarray] = None,
                latent_out: Optional[np.ndarray] = None, device: str = "cpu",
                mask: Optional[np.ndarray] = None):
        """Predictions along data with teacher forcing (docs/model.md, "Rollout").

        Args:
            x: data ``[B, T, N]`` (or ``[T, N]``), the model's dtype, C-contiguous, finite.
            s: inputs ``[B, T, K]`` when ``K > 0``.
            forcing: ``"none"``, ``"sparse"`` (with ``tau``) or ``"generalized"`` (with ``alpha``).
            return_latent: also return the pre-forcing latent states ``[B, T, M]``.
            out, latent_out: optional writable buffers ``[B, T, N]`` and ``[B, T, M]`` (of the
                batched shape, also for a ``[T, N]`` input) that receive the results, e.g. to avoid
                allocations in a loop; ``latent_out`` implies ``return_latent``.
            device: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA where available):
                where the rollout runs (docs/gpu.md); the arrays stay NumPy arrays either way.
            mask: missing values: a boolean array of the shape of ``x``, False where an entry is
                missing (docs/model.md, "Missing values"): it is not used as a teacher signal (the
                value of ``x`` there is ignored). CPU only.

        Returns:
            ``xhat`` ``[B, T, N]`` (pre-forcing predictions; ``xhat[:, 0] = obs(z_0)``), and ``z``
            with ``return_latent``. A ``[T, N]`` input gives ``[T, ...]`` outputs.
        """
        be = _backend(device)
        x, s, single = self._batch(x, s)
        mask = self._mask(mask, x, single)
        forcing, tau, alpha = self._forcing(forcing, tau, alpha)
        B, T = x.shape[:2]
        params = self._snapshot()
        inputs = [("x", x), ("s", s), *((f"model[{k!r}]", v) for k, v in params.items())]
        if out is not None:
            check_out("out", out, self._dtype, (B, T, self.N), inputs)
        if latent_out is not None:
            check_out("latent_out", latent_out, self._dtype, (B, T, self.M), [*inputs, ("out", out)])
            return_latent = True
        _, xhat, z = be.rollout(self._spec, params, x, s, forcing, tau, alpha, self._Binv(params),
                                bool(return_latent), out, latent_out, mask)
        if single:
            xhat = xhat[0]
            z = None if z is None else z[0]
        return (xhat, z) if return_latent else xhat

    def loss_and_grad(self, x: np.ndarray, s: Optional[np.ndarray] = None, forcing: str = "none",
                      tau: Optional[int] = None, alpha: Optional[float] = None,
                      mar: Optional[MAR] = None, device: str = "cpu",
                      mask: Optional[np.ndarray] = None) -> Tuple[float, ArrayDict]:
        """Mean squared error of the pre-forcing predictions over ``t >= 1`` and its exact gradient (BPTT).

        Arguments as :meth:`rollout` (``T >= 2``); ``mar`` adds the manifold-attractor penalty.
        With ``mask`` the mean runs over the observed entries only; a missing entry has no effect on
        the loss or the gradient (0 when nothing at ``t >= 1`` is observed).
        The forcing operator of the linear observation (``pinv(B)``) is held fixed (not differentiated).
        ``device`` as in :meth:`rollout`: the loss, the gradients and the MAR term are computed there.

        Returns:
            ``(loss, grads)`` with ``grads[name]`` of the shape of ``model[name]``; the zero diagonal of
            ``W`` (standard, dendritic) gets a zero gradient.
        """
        be = _backend(device)
        x, s, single = self._batch(x, s)
        mask = self._mask(mask, x, single)
        if x.shape[1] < 2:
            raise ValueError(f"x: loss_and_grad needs at least T=2 time steps, got T={x.shape[1]}")
        forcing, tau, alpha = self._forcing(forcing, tau, alpha)
        params = self._snapshot()
        loss, grads = be.loss_and_grad(self._spec, params, x, s, forcing, tau, alpha,
                                       self._Binv(params), mask)
        if mar is not None:
            value, mar_grads = self._mar_penalty(mar, be, params)
            loss += value
            for name, g in mar_grads.items():
                grads[name] += g
        return float(loss), grads

    def mar_penalty(self, mar: MAR, device: str = "cpu") -> Tuple[float, ArrayDict]:
        """The manifold-attractor penalty and its gradient (zeros for untouched parameters).
        ``device`` as in :meth:`rollout`."""
        return self._mar_penalty(mar, _backend(device), self._snapshot())

    def _mar_penalty(self, mar: MAR, be, params: ArrayDict) -> Tuple[float, ArrayDict]:
        if not isinstance(mar, MAR):
            raise TypeError(f"mar: expected a plrnn_native.MAR, got {type(mar).__name__}")
        units = np.ascontiguousarray(mar.resolve_units(self.M), dtype=np.int64)
        value, grads = be.mar_penalty(self._spec, params, units, mar.weight, mar.reduce)
        return float(value), grads

    def initial_state(self, x0: np.ndarray) -> np.ndarray:
        """``z_0`` from a first observation: ``[x0, L x0]`` (identity) or ``L x0`` (linear). ``x0``: ``[N]`` or ``[B, N]``."""
        if isinstance(x0, np.ndarray):
            check_ndarray("x0", x0)
        x0 = np.asarray(x0)
        single = x0.ndim == 1
        x0 = x0[None] if single else x0
        check_array("x0", x0, self._dtype, (None, self.N))
        if x0.shape[0] == 0:
            return np.empty((0, self.M), dtype=self._dtype)
        # the native rule of the rollouts, each sequence's z_0 from its own x_0 alone (csrc/api.h)
        z0 = _core.initial_state(self._spec, self._snapshot(), x0)
        return z0[0] if single else z0

    def generate(self, T: int, x0: Optional[np.ndarray] = None, z0: Optional[np.ndarray] = None,
                 s: Optional[np.ndarray] = None, noise_std=None,
                 rng: Union[None, int, np.random.Generator] = None, return_latent: bool = False,
                 device: str = "cpu"):
        """Free-running trajectories ``z_t = F(z_{t-1}, s_t) + eps_t``, ``t = 1 .. T-1``.

        Args:
            T: length including the initial state.
            x0: first observation ``[N]`` or ``[B, N]`` (``z_0`` from :meth:`initial_state`), or
            z0: initial latent state ``[M]`` or ``[B, M]`` (exactly one of the two).
            s: inputs ``[B, T, K]`` (``[T, K]`` for a single trajectory) when ``K > 0``.
            noise_std: process noise standard deviation, a scalar or ``[M]`` (diagonal ``Sigma``);
                needs ``rng`` (a seed or ``numpy.random.Generator``) so that runs are reproducible.
            return_latent: also return the latent states.
            device: as in :meth:`rollout` (the noise is drawn on the host either way, so a seed gives
                the same trajectories on both devices up to rounding).

        Returns:
            ``xhat`` ``[B, T, N]`` (``[T, N]`` for a single initial state), and ``z`` with ``return_latent``.
        """
        be = _backend(device)
        T = check_int("T", T, 1)
        if (x0 is None) == (z0 is None):
            raise ValueError("x0, z0: give exactly one initial condition")
        if x0 is not None:
            z0 = self.initial_state(x0)
        check_ndarray("z0", z0)
        single = z0.ndim == 1
        z0 = z0[None] if single else z0
        check_array("z0", z0, self._dtype, (None, self.M))
        B = z0.shape[0]
        s = self._inputs(s, (B, T))
        eps = None
        if noise_std is not None:
            std = np.asarray(noise_std, dtype=np.float64)
            if std.shape not in ((), (self.M,)) or not np.isfinite(std).all() or (std < 0).any():
                raise ValueError(f"noise_std: expected a finite scalar or [M={self.M}] array >= 0")
            if rng is None:
                raise ValueError("rng: process noise needs a seed or numpy.random.Generator (reproducibility)")
            gen = as_rng("rng", rng)
            eps = gen.standard_normal((B, T, self.M)) * std
            eps[:, 0] = 0.0
            eps = np.ascontiguousarray(eps, dtype=self._dtype)
        z, xhat = be.generate(self._spec, self._snapshot(), z0, T, s, eps)
        if single:
            z, xhat = z[0], xhat[0]
        return (xhat, z) if return_latent else xhat

    def step(self, z: np.ndarray, s: Optional[np.ndarray] = None) -> np.ndarray:
        """One step ``F(z, s)`` for ``z`` ``[M]`` or ``[B, M]`` (``s``: ``[K]`` or ``[B, K]``)."""
        check_ndarray("z", z)
        single = z.ndim == 1
        zb = z[None] if single else z
        check_array("z", zb, self._dtype, (None, self.M))
        seq = None
        sb = self._inputs(s, (zb.shape[0],))
        if sb is not None:  # the input drives the step into z_1 of a 2-step run
            seq = np.zeros((zb.shape[0], 2, self.K), dtype=self._dtype)
            seq[:, 1] = sb
        z_all, _ = _core.generate(self._spec, self._snapshot(), zb, 2, seq, None)
        out = np.ascontiguousarray(z_all[:, 1])
        return out[0] if single else out

    def jacobian(self, z: np.ndarray) -> np.ndarray:
        """The exact Jacobian ``dF/dz`` at ``z`` ``[M]`` (or ``[..., M]`` -> ``[..., M, M]``).

        Inside a linear region it is constant, e.g. ``diag(A) + W diag(1[z > 0])`` (standard PLRNN).
        """
        check_ndarray("z", z)
        if z.ndim < 1:
            raise ValueError(f"z: expected shape [..., M={self.M}], got {z.shape}")
        check_array("z", z, self._dtype, (*z.shape[:-1], self.M), contiguous=False)
        from .piecewise import jacobian  # the kinds' maths in Python live there (piecewise.py imports this module)

        return jacobian(self._config, self._snapshot(), z)

    # ---- persistence -------------------------------------------------------------------------
    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write configuration and parameters to ``.npz``, atomically (an interrupted save leaves
        any existing file intact)."""
        atomic_savez(path, __format__=np.array(_FORMAT), __config__=np.array(json.dumps(self._config)),
                     **{f"param_{k}": v for k, v in self._snapshot().items()})


def load(path: Union[str, os.PathLike]) -> PLRNN:
    """Read a model written by :meth:`PLRNN.save`; every array is validated like a fresh assignment."""
    return load_model_npz(path, _FORMAT, "plrnn_native model", PLRNN)
