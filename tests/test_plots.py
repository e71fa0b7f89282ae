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


def test_high_dimensional_data_stay_readable(tmp_path):
    """N = 64: a few channels get panels, the attractor is drawn on principal components."""
    rng = np.random.default_rng(1)
    latent = np.cumsum(rng.standard_normal((400, 3)), axis=0) * 0.1
    mix = rng.standard_normal((3, 64))
    x = latent @ mix + 0.01 * rng.standard_normal((400, 64))
    x[rng.random(x.shape) < 0.05] = np.nan  # missing values are skipped or interpolated
    y = latent @ mix
    assert plots.channels(64) == [0, 21, 42, 63] and plots.channels(3) == [0, 1, 2]
    px, py = plots.principal_components(x, y)
    assert px.shape[1] == py.shape[1] == 3 and np.isfinite(px).all()
    # the first three principal axes of data that live on a 3-d subspace carry almost all variance
    complete = x[~np.isnan(x).any(axis=1)]
    assert px.var(0).sum() > 0.99 * (complete - complete.mean(0)).var(0).sum()
    for p in (plots.attractor(x, y, str(tmp_path / "a.png")), plots.time_series(x, y, str(tmp_path / "t.png")),
              plots.power_spectra(x, y, str(tmp_path / "p.png")),
              plots.points_over_attractor(y, y[:2], str(tmp_path / "f.png"))):
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", p
