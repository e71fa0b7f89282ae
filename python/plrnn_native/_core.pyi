"""Type stubs of the native CPU core (bindings/core_module.cpp). Use the API in plrnn_native.

param_shapes, rollout, loss_and_grad, generate and mar_penalty are the model API that both native
modules bind through one template (bindings/model_api.h); _cuda re-exports these signatures. The CPU
core has one device, 0."""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

Config = Dict[str, object]
Params = Dict[str, np.ndarray]

def param_shapes(config: Config) -> Dict[str, Tuple[int, ...]]: ...
def rollout(
    config: Config,
    params: Params,
    x: np.ndarray,
    s: Optional[np.ndarray] = None,
    forcing: str = "none",
    tau: int = 1,
    alpha: float = 0.0,
    Binv: Optional[np.ndarray] = None,
    return_latent: bool = False,
    out: Optional[np.ndarray] = None,
    latent_out: Optional[np.ndarray] = None,
    mask: Optional[np.ndarray] = None,
    device: int = 0,
) -> Tuple[float, np.ndarray, Optional[np.ndarray]]: ...
def loss_and_grad(
    config: Config,
    params: Params,
    x: np.ndarray,
    s: Optional[np.ndarray] = None,
    forcing: str = "none",
    tau: int = 1,
    alpha: float = 0.0,
    Binv: Optional[np.ndarray] = None,
    mask: Optional[np.ndarray] = None,
    device: int = 0,
) -> Tuple[float, Params]: ...
def generate(
    config: Config,
    params: Params,
    z0: np.ndarray,
    T: int,
    s: Optional[np.ndarray] = None,
    eps: Optional[np.ndarray] = None,
    device: int = 0,
) -> Tuple[np.ndarray, np.ndarray]: ...
def mar_penalty(
    config: Config, params: Params, units: np.ndarray, weight: float, reduce: str = "sum", device: int = 0
) -> Tuple[float, Params]: ...
def vi_log_joint(
    config: Config,
    params: Params,
    latent: Dict[str, np.ndarray],
    z: np.ndarray,
    s: Optional[np.ndarray] = None,
    channels: Dict[str, Dict[str, np.ndarray]] = ...,
    floor: float = 1e-3,
    w_latent: float = 1.0,
    w_obs: float = 1.0,
    grad: bool = True,
    device: int = 0,
) -> Tuple[float, Dict[str, float], Optional[Params], Optional[np.ndarray]]: ...
def adam_step(
    params: Dict[str, np.ndarray],
    grads: Dict[str, np.ndarray],
    m: Dict[str, np.ndarray],
    v: Dict[str, np.ndarray],
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    radam: bool,
    t: int,
) -> None:
    """One Adam/RAdam update in place (csrc/training/adam.h; t: the step count after it)."""
    ...

def kinds() -> List[Dict[str, Any]]:
    """Every model kind as {name, clipped, family ("WPhi", "Dendritic", "Shallow"), zero_diag_W}, in the
    order of csrc/kinds.h."""
    ...

def initial_state(config: Config, params: Dict[str, np.ndarray], x0: np.ndarray) -> np.ndarray:
    """z0 [B, M] of x0 [B, N] ([x0; L x0] or L x0; csrc/api.h), each sequence's from its own x0 alone."""
    ...

def pinv_B(B: np.ndarray) -> np.ndarray:
    """pinv(B) [M, N] of B [N, M] in B's dtype (csrc/observation/pinv.h): the forcing operator of the
    linear observation, the one routine of PLRNN.pinv_B and both trainers."""
    ...

def ode_integrate(system: str, params: Sequence[float], u0: np.ndarray, t0: float, t1: float, rtol: float,
                  atol: float, t_eval: Optional[np.ndarray] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(u(t1) [n], u(t_eval) [k, n] or None): a built-in benchmark ODE (csrc/data/systems.h) integrated by
    DOP853 with SciPy's steps (csrc/data/dop853.h). RuntimeError when the step size underflows."""
    ...

class Trainer:
    """The CPU trainer (csrc/training/train_step.h); the CUDA module's Trainer has the same binding
    (bindings/trainer_binding.h)."""

    def __init__(
        self,
        cfg: dict,
        params: Dict[str, np.ndarray],
        xs: List[np.ndarray],
        ss: List[Optional[np.ndarray]],
        masks: List[Optional[np.ndarray]],
        batch_size: int,
        seq_len: int,
        forcing: str,
        tau: int,
        alpha: float,
        grad_clip: float,
        optimizer: str,
        beta1: float,
        beta2: float,
        eps: float,
        teacher_noise: float,
        seed: int,
        mar_units: Optional[np.ndarray],
        mar_weight: float,
        mar_reduce: str,
        device: int = 0,
    ) -> None: ...
    def step(self, lr: float, alpha: float, adam_t: int, step_index: int) -> Tuple[float, float, bool, bool]:
        """``(loss, grad_norm, updated, params_finite)``."""
        ...
    def run(
        self, steps: int, lr: float, alpha: float, adam_t0: int, step0: int
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Up to ``steps`` steps: arrays ``(loss, grad_norm, updated, params_finite)`` of those taken."""
        ...
    def get_params(self, out: Dict[str, np.ndarray]) -> None: ...
    def set_params(self, params: Dict[str, np.ndarray]) -> None: ...
    def get_moments(self, m: Dict[str, np.ndarray], v: Dict[str, np.ndarray]) -> None: ...
    def set_moments(self, m: Dict[str, np.ndarray], v: Dict[str, np.ndarray]) -> None: ...
    def get_grads(self, out: Dict[str, np.ndarray]) -> None: ...

def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def _set_lane_time_loop(on: bool) -> bool:
    """For tests and benchmarks: the lane-resident time loop (csrc/rollout/lane_bptt.h) where it applies
    (the default) or always the general one; returns the previous setting."""
    ...
