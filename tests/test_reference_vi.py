"""The NumPy reference of the probabilistic PLRNN's log-joint (reference_vi.py): its value against an
independent per-time-step evaluation with SciPy's densities, its gradient against central finite
differences in float64, the canonical HRF, masks and the noise floor."""

import math

import numpy as np
import pytest
from _common import vi_channel_data
from scipy import stats

from plrnn_native import reference as ref
from plrnn_native import reference_vi as rv
from plrnn_native import vi

KIND_CFGS = [
    dict(kind="standard", clipped=False),
    dict(kind="alrnn", P=2, clipped=False),
    dict(kind="dendritic", bases=2, clipped=True),
    dict(kind="shallow", hidden=5, clipped=False),
    dict(kind="shallow", hidden=5, clipped=True),
]
MODALITIES = {"gaussian": {"N": 2, "R": 1}, "fmri": {"N": 2, "R": 2, "TR": 4.0},
              "poisson": {"N": 3}, "categorical": {"classes": 3}}


def _setup(kind_cfg, seed=0, B=2, T=12, M=4, K=1, modalities=MODALITIES, missing=True):
    rng = np.random.default_rng(seed)
    cfg = dict(M=M, N=1, K=K, obs="identity", **kind_cfg)
    params = {k: rng.normal(0, 0.4, shape) for k, shape in rv.param_shapes(cfg, modalities).items()}
    if "W" in params:
        np.fill_diagonal(params["W"], 0.0)
    if "theta" in params:
        params["theta"] = rng.normal(0, 1, params["theta"].shape)
    z = rng.normal(0, 1, (B, T, M))
    s = rng.normal(0, 1, (B, T, K)) if K else None
    data = vi_channel_data(rng, B, T, modalities, missing=missing, rate=2.0)
    return cfg, params, z, s, data


def _independent_log_joint(cfg, params, z, s, data, floor, weights):
    """Term by term, one (b, t) at a time, with SciPy's densities."""
    B, T, M = z.shape
    sd = lambda name: floor + np.exp(params[name])  # noqa: E731
    latent = 0.0
    for b in range(B):
        drive0 = params["C"] @ s[b, 0] if s is not None else 0.0
        latent += stats.norm.logpdf(z[b, 0], params["mu0"] + drive0, sd("log_sigma0")).sum()
        for t in range(1, T):
            st = s[b, t][None] if s is not None else None
            pred = ref.step(cfg, params, z[b, t - 1][None], st)[0]
            latent += stats.norm.logpdf(z[b, t], pred, sd("log_sigma_z")).sum()
    obs_total = 0.0
    for name, obs in data.items():
        for b in range(B):
            for t in range(T):
                if name in ("gaussian", "fmri"):
                    zt = z[b, t]
                    if name == "fmri":
                        h = vi.hrf_spm(obs["TR"])
                        if t < len(h) - 1:
                            continue
                        zt = sum(h[j] * z[b, t - j] for j in range(len(h)))
                    mean = params[f"{name}.B"] @ zt + params[f"{name}.J"] @ obs["r"][b, t]
                    lp = stats.norm.logpdf(obs["x"][b, t], mean, sd(f"{name}.log_sigma"))
                    obs_total += lp[obs["mask"][b, t]].sum()
                elif name == "poisson":
                    lam = np.exp(params["poisson.G"] @ z[b, t] + params["poisson.g"])
                    m = obs["mask"][b, t]
                    obs_total += stats.poisson.logpmf(obs["q"][b, t][m], lam[m]).sum()
                else:
                    c = obs["c"][b, t]
                    if c >= 0:
                        logits = np.append(params["categorical.beta"] @ z[b, t], 0.0)
                        obs_total += logits[c] - np.log(np.exp(logits).sum())
    return weights[0] * latent + weights[1] * obs_total


@pytest.mark.parametrize("kind_cfg", KIND_CFGS, ids=lambda c: c["kind"] + ("-clipped" if c["clipped"] else ""))
def test_value_matches_independent_evaluation(kind_cfg):
    cfg, params, z, s, data = _setup(kind_cfg)
    weights = (0.7, 1.3)
    total, parts, _, _ = rv.log_joint(cfg, params, z, data, s=s, floor=1e-3, weights=weights)
    expected = _independent_log_joint(cfg, params, z, s, data, 1e-3, weights)
    assert set(parts) == {"latent", *MODALITIES}
    assert math.isfinite(total)
    assert total == pytest.approx(expected, rel=1e-12, abs=1e-10)


def _fd_check(cfg, params, z, s, data, weights=(0.7, 1.3), floor=1e-3):
    """Central differences in float64, h = 1e-6: truncation O(h^2 f''') and rounding O(eps |f| / h)
    are both ~1e-10 relative here, so a relative error of 1e-6 leaves a margin of 10^4 and still
    catches any wrong term (an error in one entry of one parameter shows at O(1))."""
    f = lambda p, zz: rv.log_joint(cfg, p, zz, data, s=s, floor=floor, weights=weights)[0]  # noqa: E731
    _, _, grads, gz = rv.log_joint(cfg, params, z, data, s=s, floor=floor, weights=weights)
    h = 1e-6
    for name, value in params.items():
        fd = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            up = {**params, name: value.copy()}
            dn = {**params, name: value.copy()}
            up[name][idx] += h
            dn[name][idx] -= h
            fd[idx] = (f(up, z) - f(dn, z)) / (2 * h)
        if name == "W" and cfg["kind"] in ref.ZERO_DIAGONAL_KINDS:
            assert np.all(np.diag(grads[name]) == 0)  # the diagonal is a constraint, fixed at 0
            np.fill_diagonal(fd, 0.0)
        scale = max(1.0, np.abs(fd).max(initial=0.0))
        assert np.abs(grads[name] - fd).max(initial=0.0) <= 1e-6 * scale, name
    fdz = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        up, dn = z.copy(), z.copy()
        up[idx] += h
        dn[idx] -= h
        fdz[idx] = (f(params, up) - f(params, dn)) / (2 * h)
    assert np.abs(gz - fdz).max() <= 1e-6 * max(1.0, np.abs(fdz).max())


@pytest.mark.parametrize("kind_cfg", KIND_CFGS, ids=lambda c: c["kind"] + ("-clipped" if c["clipped"] else ""))
def test_gradient_matches_finite_differences(kind_cfg):
    cfg, params, z, s, data = _setup(kind_cfg, B=2, T=11)  # T > tau = 8: fMRI is scored
    # No finite difference straddles a kink: a step h = 1e-6 in one entry moves a ReLU argument by at
    # most h x (the largest |entry| of z and the parameters, or 1); ask for ten times that.
    margin = 10 * 1e-6 * max(1.0, np.abs(z).max(), *(np.abs(v).max() for v in params.values() if v.size))
    for arg in ref.relu_arguments(cfg, params, z.reshape(-1, z.shape[-1])):
        assert np.abs(arg).min() > margin
    _fd_check(cfg, params, z, s, data)


def test_gradient_single_modality_no_inputs():
    for name in MODALITIES:
        cfg, params, z, s, data = _setup(KIND_CFGS[0], seed=3, K=0, modalities={name: MODALITIES[name]},
                                         missing=False)
        _fd_check(cfg, params, z, s, data, weights=(1.0, 1.0))


def test_hrf_canonical():
    for TR in (0.5, 0.72, 1.0, 2.0, 3.0):
        h = vi.hrf_spm(TR)
        assert len(h) == math.floor(32 / TR) + 1 and h.sum() == pytest.approx(1.0, abs=1e-14)
        t = np.arange(len(h)) * TR
        # independent: gamma densities t^(a-1) e^(-t) / Gamma(a) of shapes 6 and 16
        g = t**5 * np.exp(-t) / math.gamma(6) - t**15 * np.exp(-t) / math.gamma(16) / 6
        np.testing.assert_allclose(h, g / g.sum(), rtol=1e-12, atol=1e-15)
    h = vi.hrf_spm(0.1)
    assert 4.5 < np.argmax(h) * 0.1 < 5.5  # the response peaks near 5 s (mode (6-1) x 1)
    assert h[int(15.5 / 0.1)] < 0  # the undershoot
    for bad in (0, -1.0, float("nan"), 40.0, "1"):
        with pytest.raises(ValueError, match="TR"):
            vi.hrf_spm(bad)


def test_fmri_first_tau_steps_unscored_and_missing_entries_ignored():
    cfg, params, z, s, data = _setup(KIND_CFGS[0], T=12, modalities={"fmri": MODALITIES["fmri"]})
    tau = len(vi.hrf_spm(4.0)) - 1
    assert tau == 8
    base = rv.log_joint(cfg, params, z, data, s=s)[1]["fmri"]
    changed = {"fmri": {**data["fmri"], "x": data["fmri"]["x"].copy()}}
    changed["fmri"]["x"][:, :tau] += 100.0  # not scored
    changed["fmri"]["x"][~data["fmri"]["mask"]] = 1e9  # missing
    assert rv.log_joint(cfg, params, z, changed, s=s)[1]["fmri"] == base
    short = {"fmri": {k: (v[:, :tau] if isinstance(v, np.ndarray) else v) for k, v in data["fmri"].items()}}
    assert rv.log_joint(cfg, params, z[:, :tau], short, s=s[:, :tau])[1]["fmri"] == 0.0


def test_noise_floor_and_bad_input():
    assert rv.noise_std(np.array([-50.0]), 0.01)[0] == pytest.approx(0.01)
    cfg, params, z, s, data = _setup(KIND_CFGS[0], modalities={"categorical": {"classes": 3}}, missing=False)
    bad = {"categorical": {"c": data["categorical"]["c"].astype(float)}}
    with pytest.raises(TypeError, match="categorical.c"):
        rv.log_joint(cfg, params, z, bad, s=s)
    bad = {"categorical": {"c": np.full(z.shape[:2], 3)}}
    with pytest.raises(ValueError, match="categorical.c"):
        rv.log_joint(cfg, params, z, bad, s=s)
    with pytest.raises(ValueError, match="modality"):
        rv.param_shapes(cfg, {"gauss": {"N": 1}})


def test_entropy():
    log_s = np.random.default_rng(0).normal(size=(2, 3, 4))
    value, grad = rv.entropy(log_s)
    expected = stats.norm(0, np.exp(log_s)).entropy().sum()
    assert value == pytest.approx(expected, rel=1e-13)
    assert np.all(grad == 1.0)
