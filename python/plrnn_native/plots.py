"""PNG figures of a reconstruction (needs matplotlib: ``pip install "plrnn_native[plot]"``)."""

from __future__ import annotations

import os
from typing import List, Optional, Sequence

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install matplotlib") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def available() -> bool:
    """Whether matplotlib is installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


#: At most this many channels get a panel of their own (evenly spread over the dimensions).
MAX_PANELS = 4


def channels(n: int, most: int = MAX_PANELS) -> List[int]:
    """The channels shown for ``n``-dimensional data: all up to ``most``, else ``most`` evenly spread."""
    return sorted(set(np.linspace(0, n - 1, min(n, most)).round().astype(int).tolist()))


def principal_components(x_data: np.ndarray, x_gen: np.ndarray, k: int = 3):
    """Both trajectories projected on the first ``k`` principal axes of the data (rows with a
    missing value are left out of the axes and of the data's projection)."""
    x = x_data[~np.isnan(x_data).any(axis=1)]
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    axes = vt[:k].T
    return (x - mean) @ axes, (x_gen - mean) @ axes


def attractor(x_data: np.ndarray, x_gen: np.ndarray, path: str, dims: Sequence[int] = (0, 1, 2),
              title: str = "") -> str:
    """Data vs generated trajectory, 3-D projection on ``dims`` (2-D when N < 3); for N > 3 on the
    data's first three principal components."""
    plt = _pyplot()
    labels = "x"
    if x_data.shape[1] > 3:
        x_data, x_gen = principal_components(x_data, x_gen)
        dims, labels = (0, 1, 2), "PC"
        title = f"{title} (first principal components)".strip()
    dims = [d for d in dims if d < x_data.shape[1]][:3]
    both = np.concatenate([x_data, x_gen])[:, dims]
    lims = [(lo, hi) for lo, hi in zip(both.min(0), both.max(0))]  # shared, so the panels compare
    fig = plt.figure(figsize=(10, 4.6))
    for i, (x, label) in enumerate(((x_data, "data"), (x_gen, "generated"))):
        if len(dims) == 3:
            ax = fig.add_subplot(1, 2, i + 1, projection="3d")
            ax.plot(*(x[:, d] for d in dims), lw=0.3)
            ax.set_zlabel(f"{labels}{dims[2]}")
            ax.set_xlim(*lims[0]), ax.set_ylim(*lims[1]), ax.set_zlim(*lims[2])
        else:
            ax = fig.add_subplot(1, 2, i + 1)
            ax.plot(x[:, dims[0]], x[:, dims[-1]], lw=0.3)
            ax.set_xlim(*lims[0]), ax.set_ylim(*lims[-1])
        ax.set_xlabel(f"{labels}{dims[0]}")
        ax.set_ylabel(f"{labels}{dims[1] if len(dims) > 1 else dims[0]}")
        ax.set_title(label)
    fig.suptitle(title)
    return _save(fig, path)


def time_series(x_data: np.ndarray, x_gen: np.ndarray, path: str, dt: float = 1.0,
                steps: int = 2000) -> str:
    """The first ``steps`` samples, data and generated, one panel per channel (:func:`channels`)."""
    plt = _pyplot()
    shown = channels(x_data.shape[1])
    n = len(shown)
    fig, axes = plt.subplots(n, 1, figsize=(10, 1.6 * n + 0.6), sharex=True, squeeze=False)
    for row, d in enumerate(shown):
        ax = axes[row, 0]
        k = min(steps, len(x_data), len(x_gen))
        t = np.arange(k) * dt
        ax.plot(t, x_data[:k, d], lw=0.8, label="data")
        ax.plot(t, x_gen[:k, d], lw=0.8, label="generated")
        ax.set_ylabel(f"x{d}")
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("time")
    return _save(fig, path)


def power_spectra(x_data: np.ndarray, x_gen: np.ndarray, path: str, dt: float = 1.0,
                  sigma: float = 20.0) -> str:
    """Smoothed power spectra (as in the D_H metric), data vs generated, per channel
    (:func:`channels`); missing values are interpolated linearly."""
    from scipy.ndimage import gaussian_filter1d

    plt = _pyplot()
    shown = channels(x_data.shape[1])
    n = len(shown)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3), squeeze=False)
    k = min(len(x_data), len(x_gen))
    freqs = np.fft.rfftfreq(k, d=dt)
    for col, d in enumerate(shown):
        for x, label in ((x_data, "data"), (x_gen, "generated")):
            v = x[:k, d]
            if np.isnan(v).any():
                t = np.arange(k)
                v = np.interp(t, t[~np.isnan(v)], v[~np.isnan(v)])
            v = (v - v.mean()) / (v.std() + 1e-12)
            p = gaussian_filter1d(np.abs(np.fft.rfft(v)) ** 2, sigma)
            axes[0, col].semilogy(freqs, p / p.sum(), lw=0.8, label=label)
        axes[0, col].set_xlabel("frequency")
        axes[0, col].set_title(f"x{d}")
        axes[0, col].set_xlim(0, freqs[-1] / 4)
    axes[0, 0].legend(fontsize=8)
    return _save(fig, path)


def training_curves(history: List[dict], path: str) -> str:
    """Loss (log scale), gradient norm and forcing weight per epoch."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3))
    axes[0].semilogy(epochs, [h["loss"] for h in history])
    axes[0].set_title("training loss")
    axes[1].semilogy(epochs, [h["grad_norm"] for h in history])
    axes[1].set_title("gradient norm")
    alphas = [h.get("alpha") for h in history]
    if any(a is not None for a in alphas):
        axes[2].plot(epochs, [np.nan if a is None else a for a in alphas])
        axes[2].set_title("GTF alpha")
    else:
        axes[2].plot(epochs, [h["lr"] for h in history])
        axes[2].set_yscale("log")
        axes[2].set_title("learning rate")
    for ax in axes:
        ax.set_xlabel("epoch")
    return _save(fig, path)


def points_over_attractor(x_gen: np.ndarray, points: np.ndarray, path: str,
                          labels: Optional[Sequence[str]] = None, dims: Sequence[int] = (0, 1, 2)) -> str:
    """Marks ``points`` (e.g. fixed points, ``[P, N]``) over a generated trajectory (for N > 3 on
    the trajectory's first three principal components)."""
    plt = _pyplot()
    if x_gen.shape[1] > 3:
        x_gen, points = principal_components(x_gen, np.asarray(points).reshape(-1, x_gen.shape[1]))
        dims = (0, 1, 2)
    dims = [d for d in dims if d < x_gen.shape[1]][:3]
    fig = plt.figure(figsize=(5, 4.6))
    ax = fig.add_subplot(1, 1, 1, projection="3d" if len(dims) == 3 else None)
    ax.plot(*(x_gen[:, d] for d in dims), lw=0.2, color="0.6")
    if len(points):
        ax.scatter(*(points[:, d] for d in dims), color="C3", s=30)
        for i, p in enumerate(points):
            if labels is not None:
                ax.text(*(p[d] for d in dims), labels[i], fontsize=7)
    return _save(fig, path)


def _save(fig, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
