"""The PNG figures of a run (skipped where matplotlib is not installed)."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from plrnn_native import plots  # noqa: E402


def test_every_figure_is_written(tmp_path):
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.standard_normal((500, 3)), axis=0) * 0.1
    y = x + 0.1 * rng.standard_normal(x.shape)
    history = [{"epoch": e, "loss": 1.0 / (e + 1), "grad_norm": 1.0, "lr": 1e-3, "alpha": 0.1} for e in range(5)]
    paths = [
        plots.attractor(x, y, str(tmp_path / "a.png"), title="t"),
        plots.attractor(x[:, :2], y[:, :2], str(tmp_path / "a2.png")),
        plots.time_series(x, y, str(tmp_path / "ts.png"), dt=0.01),
        plots.power_spectra(x, y, str(tmp_path / "ps.png"), dt=0.01),
        plots.training_curves(history, str(tmp_path / "tr.png")),
        plots.points_over_attractor(y, x[:3], str(tmp_path / "fp.png"), labels=["a", "b", "c"]),
    ]
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", p
