"""Plain PyTorch PLRNN: the baseline the native core is benchmarked against.

This is the straightforward implementation a user would write from ``docs/model.md``: an
``nn.Module`` holding the parameters, a Python loop over time steps, teacher forcing applied to the
state before each step, the mean squared error over ``t >= 1``, and ``loss.backward()`` (autograd)
for BPTT. Supported: the ``standard`` and (unclipped) ``shallow`` kinds with the identity
observation model and no external inputs (``K = 0``), forcing ``none`` / ``sparse`` /
``generalized``. The shallow kind may be clipped (``relu(W2 z + h2) - relu(W2 z)``).

Importing this module requires torch; the benchmark scripts treat an ImportError as "baseline
missing".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

#: Parameter names per model kind (identity observation model).
PARAM_NAMES: dict[str, tuple[str, ...]] = {
    "standard": ("A", "W", "h", "C", "L"),
    "shallow": ("A", "W1", "W2", "h1", "h2", "C", "L"),
}


class TorchPLRNN(nn.Module):
    """PLRNN (identity observation, ``K = 0``) whose training loss is differentiated by autograd.

    Args:
        kind: ``"standard"`` or ``"shallow"``.
        clipped: clipped variant of the shallow PLRNN.
        params: initial parameter values by name (e.g. ``plrnn_native.PLRNN(...).params``); they are
            copied.
        N: number of observed dimensions.
        dtype: torch floating dtype of the parameters (float32 for timing, float64 for a reference).
    """

    def __init__(
        self,
        kind: str,
        params: Mapping[str, np.ndarray],
        N: int,
        dtype: torch.dtype = torch.float32,
        clipped: bool = False,
    ) -> None:
        super().__init__()
        if kind not in PARAM_NAMES:
            raise ValueError(f"torch baseline supports kinds {sorted(PARAM_NAMES)}, not {kind!r}")
        missing = set(PARAM_NAMES[kind]) - set(params)
        if missing:
            raise ValueError(f"parameters missing for kind {kind!r}: {sorted(missing)}")
        if clipped and kind != "shallow":
            raise ValueError("only the shallow kind has a clipped variant in the torch baseline")
        self.kind = kind
        self.clipped = clipped
        self.N = N
        for name in PARAM_NAMES[kind]:
            value = torch.tensor(np.array(params[name]), dtype=dtype)
            self.register_parameter(name, nn.Parameter(value))
        M = self.A.shape[0]
        if self.C.shape[1] != 0:
            raise ValueError("the torch baseline has no external inputs: K must be 0")
        if self.L.shape != (M - N, N):
            raise ValueError(f"L must have shape {(M - N, N)} (identity observation)")
        if kind == "standard":
            # The zero diagonal of W is a model constraint: masking it makes its gradient exactly 0.
            self.register_buffer("offdiag", 1.0 - torch.eye(M, dtype=dtype))

    def predict(self, x: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
        """Teacher-forced rollout; returns the predictions ``xhat[:, 1:]`` [B, T-1, N]."""
        N = self.N
        x0 = x[:, 0]
        z = torch.cat((x0, x0 @ self.L.T), dim=1)
        if self.kind == "standard":
            W = self.W * self.offdiag

            def step(u: torch.Tensor) -> torch.Tensor:
                return self.A * u + F.linear(torch.relu(u), W, self.h)
        elif not self.clipped:

            def step(u: torch.Tensor) -> torch.Tensor:
                hidden = torch.relu(F.linear(u, self.W2, self.h2))
                return self.A * u + F.linear(hidden, self.W1, self.h1)
        else:

            def step(u: torch.Tensor) -> torch.Tensor:
                pre0 = F.linear(u, self.W2)
                hidden = torch.relu(pre0 + self.h2) - torch.relu(pre0)
                return self.A * u + F.linear(hidden, self.W1, self.h1)

        predictions = []
        for t in range(1, x.shape[1]):
            a = weights[t - 1]
            if a > 0:
                z = torch.cat(((1.0 - a) * z[:, :N] + a * x[:, t - 1], z[:, N:]), dim=1)
            z = step(z)
            predictions.append(z[:, :N])
        return torch.stack(predictions, dim=1)

    def loss(self, x: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
        """Mean squared error over all ``b``, ``t >= 1``, ``n``."""
        return ((self.predict(x, weights) - x[:, 1:]) ** 2).mean()

    def train_step(self, x: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
        """One training step without the optimizer update: zero grads, loss, ``backward()``."""
        self.zero_grad(set_to_none=True)
        loss = self.loss(x, weights)
        loss.backward()
        return loss

    def gradients(self) -> dict[str, np.ndarray]:
        """Gradients of the last :meth:`train_step` as float64 NumPy arrays (None -> zeros)."""
        out = {}
        for name, param in self.named_parameters():
            grad = param.grad
            out[name] = (
                np.zeros(tuple(param.shape)) if grad is None else grad.detach().double().cpu().numpy()
            )
        return out
