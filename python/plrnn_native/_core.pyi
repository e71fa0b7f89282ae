"""Type stubs of the native CPU core (bindings/core_module.cpp). Use the API in plrnn_native.

param_shapes, rollout, loss_and_grad, generate and mar_penalty are the model API that both native
modules bind through one template (bindings/model_api.h); _cuda re-exports these signatures. The CPU
core has one device, 0."""

from typing import Dict, Optional, Tuple

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
) -> Tuple[float, Dict[str, float], Optional[Params], Optional[np.ndarray]]: ...
def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
