"""The one seam between the Python API and the native backends (docs/architecture.md).

A device string is resolved once per call site by :func:`backend`, which returns a :class:`Backend`
with the same methods for the CPU core (``_core``) and the CUDA module (``_cuda``): ``rollout``,
``loss_and_grad``, ``generate``, ``mar_penalty``, ``vi_log_joint``, ``fixed_points_exhaustive`` and
``native_trainer``.
Both native modules bind the model calls through one template (``bindings/model_api.h``) with the same
arguments and ``device`` last, so a backend is a native module and a device index. A feature that a
backend lacks raises one ValueError naming the argument and pointing to ``device='cpu'``.

Device strings: ``"cpu"``, ``"cuda"`` (device 0), ``"cuda:N"`` and ``"auto"`` (CUDA where available,
else the CPU). The machine's CUDA devices come from :mod:`plrnn_native.cuda`.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from . import _core
from . import cuda as _cuda_api

DEVICE_CHOICES = ('"cpu"', '"cuda"', '"cuda:N"', '"auto"')


def parse_device(device) -> Tuple[str, int]:
    """The form of a device string without looking for a GPU: ``("cpu", -1)``, ``("auto", -1)`` or
    ``("cuda", index)``; TypeError/ValueError naming ``device`` for anything else."""
    if not isinstance(device, str):
        raise TypeError(f"device: expected a string ({', '.join(DEVICE_CHOICES)}), got {device!r}")
    if device in ("cpu", "auto"):
        return device, -1
    if device == "cuda":
        return "cuda", 0
    if device.startswith("cuda:") and device[5:].isascii() and device[5:].isdigit():
        return "cuda", int(device[5:])
    raise ValueError(f"device: expected one of {', '.join(DEVICE_CHOICES)}, got {device!r}")


def resolve_device(device) -> Tuple[str, int]:
    """The device a computation runs on: ``("cpu", -1)`` or ``("cuda", index)``.

    A malformed string raises ValueError naming ``device``; a CUDA device on a machine without one
    raises RuntimeError with :func:`plrnn_native.cuda.unavailable_reason`. An index past the last device
    raises ValueError from the native call (``select_device``, cuda/core/device_info.cu), the one check of
    an index against the machine.
    """
    kind, index = parse_device(device)
    if kind == "cpu":
        return "cpu", -1
    if kind == "auto":
        return ("cuda", 0) if _cuda_api.is_available() else ("cpu", -1)
    if not _cuda_api.is_available():
        raise RuntimeError(f"device: CUDA is unavailable ({_cuda_api.unavailable_reason()}); "
                           f"use device='cpu' (got device={device!r})")
    return "cuda", index  # the index is checked against the machine once, natively (select_device)


def backend(device) -> "Backend":
    """The backend of a device string (:func:`resolve_device`), chosen once per call site."""
    kind, index = resolve_device(device)
    return CudaBackend(index) if kind == "cuda" else CpuBackend()


def _native_form(form):
    """The generic piecewise-linear form (:mod:`plrnn_native.piecewise`) as the native solvers take it."""
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (form.J0, form.b, form.U, form.V)]
    lists = [[np.ascontiguousarray(a, dtype=np.float64) for a in group]
             for group in (form.breakpoints, form.slopes, form.intercepts)]
    return (*arrays, *lists)


class Backend:
    """A native module and a device index; the model calls have the native modules' arguments
    (``bindings/model_api.h``) without ``device``."""

    #: "cpu" or "cuda"
    kind = ""
    #: whether the exhaustive fixed-point search reports progress (a progress bar is worth showing)
    reports_progress = False

    def __init__(self, module, index: int):
        self._module = module
        self.index = index

    def _refuse(self, name: str, what: str) -> None:
        raise ValueError(f"{name}: {what} are handled by the CPU core only; use device='cpu'")

    def _check_mask(self, mask) -> None:
        if mask is not None and not self.supports_masks:
            self._refuse("mask", "missing values")

    #: missing-value masks
    supports_masks = True

    def rollout(self, config, params, x, s, forcing, tau, alpha, Binv, return_latent, out=None,
                latent_out=None, mask=None):
        """``(loss, xhat [B,T,N], z [B,T,M] or None)``."""
        self._check_mask(mask)
        return self._module.rollout(config, params, x, s, forcing, tau, alpha, Binv, return_latent, out,
                                    latent_out, mask, device=self.index)

    def loss_and_grad(self, config, params, x, s, forcing, tau, alpha, Binv, mask=None):
        """``(loss, {name: grad})``."""
        self._check_mask(mask)
        return self._module.loss_and_grad(config, params, x, s, forcing, tau, alpha, Binv, mask,
                                          device=self.index)

    def generate(self, config, params, z0, T, s, eps):
        """``(z [B,T,M], xhat [B,T,N])``."""
        return self._module.generate(config, params, z0, T, s, eps, device=self.index)

    def mar_penalty(self, config, params, units: np.ndarray, weight: float, reduce: str):
        """``(value, {name: grad})``; ``units`` int64 [n]."""
        return self._module.mar_penalty(config, params, units, weight, reduce, device=self.index)

    def vi_log_joint(self, config, params, latent, z, s, channels, floor: float, w_latent: float, w_obs: float,
                     grad: bool):
        """The probabilistic PLRNN's log-joint (``bindings/vi_binding.h``): ``(total, parts, grads, gz)``."""
        return self._module.vi_log_joint(config, params, latent, z, s, channels, floor, w_latent, w_obs, grad,
                                         device=self.index)

    def fixed_points_exhaustive(self, form, progress=None):
        """Every fixed point of a piecewise-linear form: ``(points [c,M], pieces [c,n], degenerate [d,n],
        n_degenerate, regions_visited)``."""
        raise NotImplementedError

    def native_trainer(self, model, series, cfg, alpha: float, mar, missing_fraction: float):
        """The native training loop for :class:`plrnn_native.Trainer` (``csrc/training/train_step.h`` on the
        CPU, ``cuda/training/train_step.h`` on a GPU: one interface, ``csrc/training/train_options.h``);
        ``series``: the Trainer's ``(x, s, mask)`` triples, ``cfg``: its TrainConfig, ``mar``: its MAR or
        None. None where the Trainer's Python loop runs the steps (adaptive alpha on the CPU)."""
        if cfg.forcing == "generalized" and cfg.adaptive_alpha:
            return self._adaptive_alpha()
        if missing_fraction > 0 and not self.supports_masks:
            self._refuse("x", "missing values (NaN)")
        units = None if mar is None else np.ascontiguousarray(mar.resolve_units(model.M), dtype=np.int64)
        masks = [None if oi is None else np.ascontiguousarray(oi, dtype=model.dtype) for _, _, oi in series]
        return self._module.Trainer(
            model._spec, model._params, [xi for xi, _, _ in series], [si for _, si, _ in series], masks,
            cfg.batch_size, cfg.seq_len, cfg.forcing, cfg.tau, alpha, cfg.grad_clip, cfg.optimizer,
            cfg.betas[0], cfg.betas[1], cfg.eps, cfg.teacher_noise, cfg.seed, units,
            mar.weight if mar else 0.0, mar.reduce if mar else "sum", self.index)

    def _adaptive_alpha(self):
        return None


class CpuBackend(Backend):
    kind = "cpu"
    reports_progress = True

    def __init__(self):
        super().__init__(_core, 0)  # the CPU core has one device

    def fixed_points_exhaustive(self, form, progress=None):
        return _core.fixed_points_exhaustive(*_native_form(form), progress=progress)


class CudaBackend(Backend):
    kind = "cuda"
    supports_masks = False

    def __init__(self, index: int):
        super().__init__(_cuda_api._cuda, index)

    def fixed_points_exhaustive(self, form, progress=None):
        """The exhaustive search on the GPU (cuda/analysis/fixed_points.cu): two-piece units only;
        every candidate is re-verified here with a fresh float64 solve, as on the CPU; degenerate
        regions are counted, not listed."""
        if np.any(form.radices != 2):
            raise ValueError("device: the CUDA solver handles units with two pieces (standard, alrnn, unclipped "
                             "shallow); use device='cpu' for dendritic and clipped kinds")
        n = form.n_units
        beta = np.array([bp[0] for bp in form.breakpoints], dtype=np.float64).reshape(n)
        slopes = np.array(form.slopes, dtype=np.float64).reshape(n, 2)
        intercepts = np.array(form.intercepts, dtype=np.float64).reshape(n, 2)
        J0, b, U, V = (np.ascontiguousarray(a, dtype=np.float64) for a in (form.J0, form.b, form.U, form.V))
        cand, cand_pieces, n_deg, visited = self._module.fixed_points_exhaustive(
            J0, b, U, V, beta, slopes, intercepts, device=self.index)
        pts, pcs, seen = [], [], set()
        for pieces in np.asarray(cand_pieces, dtype=np.int64):
            key = tuple(pieces)
            if key in seen:
                continue
            seen.add(key)
            J, c = form.region_map(pieces)
            try:
                z = np.linalg.solve(np.eye(form.M) - J, c)
            except np.linalg.LinAlgError:
                continue
            if np.isfinite(z).all() and np.array_equal(form.pieces(z), pieces):
                pts.append(z)
                pcs.append(pieces)
        order = sorted(range(len(pcs)), key=lambda i: tuple(pcs[i]))
        pts = np.array([pts[i] for i in order]).reshape(-1, form.M)
        pcs = np.array([pcs[i] for i in order], dtype=np.int64).reshape(-1, n)
        return pts, pcs, np.zeros((0, n), np.int32), int(n_deg), int(visited)

    def _adaptive_alpha(self):
        raise ValueError("adaptive_alpha: not available with a CUDA device (the Jacobian estimate runs on "
                         "the CPU); use device='cpu' or a fixed alpha")

    def native_trainer(self, model, series, cfg, alpha: float, mar, missing_fraction: float):
        if model.obs == "linear" and model.M < model.N and cfg.forcing != "none":
            raise ValueError("M: the CUDA trainer's forcing needs M >= N with the linear observation; "
                             "use device='cpu'")
        return super().native_trainer(model, series, cfg, alpha, mar, missing_fraction)


def cycles_exhaustive(form, k: int, progress: Optional[object] = None):
    """Every k-cycle of a piecewise-linear form (CPU core only)."""
    return _core.cycles_exhaustive(*_native_form(form), k, progress=progress)
