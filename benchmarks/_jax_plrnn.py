"""JAX PLRNN: the strongest baseline a user would write instead of the native core.

The same model and loss as ``_torch_plrnn.py`` (identity observation, ``K = 0``, the ``standard`` and
the plain or clipped ``shallow`` kind, forcing ``none`` / ``sparse`` / ``generalized``), written the
way JAX is meant to be used: the time loop is a ``jax.lax.scan`` and the whole training step,
``jax.value_and_grad`` of the loss, is compiled once with ``jax.jit``. The forcing weights are an
array argument (``weight(t')`` for ``t' = 0 .. T-2``), so one compiled function serves every step.

Importing this module requires jax (``pip install "jax[cpu]"``); the benchmark scripts treat an
ImportError as "baseline missing". Threads: XLA's CPU thread pool is sized when jax is first
imported, from ``XLA_FLAGS`` (``train_step.py`` sets it per thread count before importing this).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


import jax
import jax.numpy as jnp

#: Parameter names per model kind (identity observation), as in the torch baseline.
PARAM_NAMES: dict[str, tuple[str, ...]] = {
    "standard": ("A", "W", "h", "L"),
    "shallow": ("A", "W1", "W2", "h1", "h2", "L"),
}


class JaxPLRNN:
    """``value_and_grad`` of the teacher-forced training loss, compiled with ``jax.jit``.

    Args:
        kind: ``"standard"`` or ``"shallow"``.
        params: initial parameter values by name (copied, as ``dtype``).
        N: number of observed dimensions.
        dtype: ``"float32"`` (timing) or ``"float64"`` (needs ``jax_enable_x64``).
        clipped: the clipped shallow PLRNN.
    """

    def __init__(self, kind: str, params: Mapping[str, np.ndarray], N: int, dtype: str = "float32",
                 clipped: bool = False) -> None:
        if kind not in PARAM_NAMES:
            raise ValueError(f"JAX baseline supports kinds {sorted(PARAM_NAMES)}, not {kind!r}")
        if clipped and kind != "shallow":
            raise ValueError("only the shallow kind has a clipped variant")
        if np.asarray(params.get("C", np.zeros((0, 0)))).size:
            raise ValueError("the JAX baseline has no external inputs: K must be 0")
        self.kind, self.N, self.clipped, self.dtype = kind, N, clipped, dtype
        self.params = {name: jnp.asarray(np.asarray(params[name]), dtype=dtype) for name in PARAM_NAMES[kind]}
        M = self.params["A"].shape[0]
        self._offdiag = jnp.asarray(1.0 - np.eye(M), dtype=dtype)
        self._step = jax.jit(jax.value_and_grad(self.loss))

    def _transition(self, p: Mapping[str, jnp.ndarray]):
        if self.kind == "standard":
            W = p["W"] * self._offdiag  # the zero diagonal is a constraint: its gradient is exactly 0
            return lambda u: p["A"] * u + jax.nn.relu(u) @ W.T + p["h"]
        if self.clipped:
            def step(u):
                pre0 = u @ p["W2"].T
                return p["A"] * u + (jax.nn.relu(pre0 + p["h2"]) - jax.nn.relu(pre0)) @ p["W1"].T + p["h1"]
            return step
        return lambda u: p["A"] * u + jax.nn.relu(u @ p["W2"].T + p["h2"]) @ p["W1"].T + p["h1"]

    def loss(self, p: Mapping[str, jnp.ndarray], x: jnp.ndarray, weights: jnp.ndarray) -> jnp.ndarray:
        """Mean squared error of the teacher-forced predictions over all ``b``, ``t >= 1``, ``n``."""
        N = self.N
        step = self._transition(p)
        x0 = x[:, 0]
        z0 = jnp.concatenate((x0, x0 @ p["L"].T), axis=1)

        def body(z, inputs):
            x_prev, a = inputs
            z = z.at[:, :N].set((1.0 - a) * z[:, :N] + a * x_prev)
            z = step(z)
            return z, z[:, :N]

        _, pred = jax.lax.scan(body, z0, (jnp.swapaxes(x[:, :-1], 0, 1), weights))
        return jnp.mean((jnp.swapaxes(pred, 0, 1) - x[:, 1:]) ** 2)

    def train_step(self, x: jnp.ndarray, weights: jnp.ndarray):
        """Loss and gradients of every parameter, computed to completion (``block_until_ready``)."""
        return jax.block_until_ready(self._step(self.params, x, weights))

    def loss_and_gradients(self, x: np.ndarray, weights) -> tuple[float, dict[str, np.ndarray]]:
        loss, grads = self.train_step(jnp.asarray(x, dtype=self.dtype), jnp.asarray(weights, dtype=self.dtype))
        return float(loss), {k: np.asarray(v, dtype=np.float64) for k, v in grads.items()}

    def to_device(self, x: np.ndarray, weights) -> tuple[jnp.ndarray, jnp.ndarray]:
        """The data and forcing weights as JAX arrays (converted once, outside the timed calls)."""
        return jnp.asarray(x, dtype=self.dtype), jnp.asarray(np.asarray(weights), dtype=self.dtype)
