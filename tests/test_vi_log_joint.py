"""The native log-joint of the probabilistic PLRNN (csrc/vi/log_joint.h through plrnn_native.vi) against
the NumPy reference (reference_vi.py, itself checked against finite differences): value, parts and every
gradient, float64 and float32, every kind, every channel with masks; the same bits for every thread
count; bad input."""

import numpy as np
import pytest
from _common import vi_channel_data

import plrnn_native as pn
from plrnn_native import reference_vi as rv
from plrnn_native import vi

KINDS = [
    dict(kind="standard"),
    dict(kind="alrnn", P=2),
    dict(kind="dendritic", bases=2, clipped=True),
    dict(kind="dendritic", bases=3),
    dict(kind="shallow", hidden=5),
    dict(kind="shallow", hidden=7, clipped=True),
]
CHANNELS = {"gaussian": {"N": 2, "R": 1}, "fmri": {"N": 2, "R": 2, "TR": 2.0},
            "poisson": {"N": 3}, "categorical": {"classes": 3}}


def _case(kind, dtype="float64", B=3, T=40, M=4, K=2, channels=CHANNELS, seed=0, missing=True):
    rng = np.random.default_rng(seed)
    model = pn.PLRNN(M=M, N=1, K=K, dtype=dtype, seed=seed, **kind)
    cfg = {**model._config, "obs": "identity"}
    shapes = rv.param_shapes(cfg, channels)
    params = {k: rng.normal(0, 0.3, shapes[k]) for k in shapes if k not in model.params}
    model_params = {k: np.array(v, np.float64) for k, v in model.params.items()}
    z = rng.normal(0, 1, (B, T, M))
    s = rng.normal(0, 1, (B, T, K)) if K else None
    data = vi_channel_data(rng, B, T, channels, missing=missing, rate=1.5)
    ref = (cfg, {**model_params, **params}, z, data, s)
    cast = lambda a: a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a  # noqa: E731
    native = (model, {k: cast(v) for k, v in params.items()}, cast(z),
              {n: {k: cast(v) for k, v in o.items()} for n, o in data.items()}, None if s is None else cast(s))
    return ref, native


def _compare(ref, native, rtol, weights=(0.6, 1.4), floor=1e-3):
    cfg, rparams, z, data, s = ref
    model, params, zn, datan, sn = native
    total, parts, grads, gz = rv.log_joint(cfg, rparams, z, data, s=s, floor=floor, weights=weights)
    ntotal, nparts, ngrads, ngz = vi.log_joint(model, params, zn, datan, s=sn, floor=floor, weights=weights)
    scale = sum(abs(v) for v in parts.values())  # the terms' magnitudes bound the rounding of the sum
    assert abs(ntotal - total) <= rtol * scale, (ntotal, total)
    assert set(nparts) == set(parts)
    for k in parts:
        assert abs(nparts[k] - parts[k]) <= rtol * max(abs(parts[k]), 1.0), k
    expected = {k: v for k, v in grads.items() if k not in ("B", "L") or k in ngrads}
    assert set(ngrads) == set(expected), set(ngrads) ^ set(expected)
    for k, g in expected.items():
        err = np.abs(ngrads[k] - g).max(initial=0.0)
        assert err <= rtol * max(np.abs(g).max(initial=0.0), 1.0), (k, err)
    assert np.abs(ngz - gz).max() <= rtol * max(np.abs(gz).max(), 1.0)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k["kind"] + ("-clipped" if k.get("clipped") else ""))
def test_float64_matches_reference(kind):
    # float64, sums over a few hundred terms: rounding ~ 1e-16 x terms; 1e-11 leaves a wide margin
    _compare(*_case(kind), rtol=1e-11)


@pytest.mark.parametrize("kind", KINDS[::2], ids=lambda k: k["kind"])
def test_float32_matches_reference(kind):
    # float32 rounding of each product and of the B T M-term sums: ~ eps32 x sqrt(terms) ~ 1e-5 relative
    # to the terms' magnitudes; 1e-4 is ten times that.
    _compare(*_case(kind, dtype="float32"), rtol=1e-4)


def test_single_channels_no_inputs_short_series():
    for name in CHANNELS:
        _compare(*_case(KINDS[0], K=0, channels={name: CHANNELS[name]}, missing=False, T=20), rtol=1e-11)
    _compare(*_case(KINDS[4], T=1, channels={"gaussian": CHANNELS["gaussian"]}), rtol=1e-11)  # no transitions
    _compare(*_case(KINDS[4], T=5, channels={"fmri": CHANNELS["fmri"]}), rtol=1e-11)  # T <= tau: nothing scored


def test_many_tasks_and_thread_count_independent():
    """B T > the task size: several tasks, reduced in a fixed order; the same bits on 1 and 2 threads."""
    ref, native = _case(KINDS[4], B=9, T=300, M=5)
    _compare(ref, native, rtol=1e-11)
    before = pn.get_num_threads()
    try:
        out = []
        # several calls: each gets fresh output arrays at other addresses (an Eigen reduction written
        # into one rounded by the address's alignment: mu0's gradient moved by 1 ulp in some calls)
        for threads in (1, 2, 1, 2, 1, 2):
            pn.set_num_threads(threads)
            out.append(vi.log_joint(*native[:4], s=native[4]))
    finally:
        pn.set_num_threads(before)
    for other in out[1:]:
        assert out[0][0] == other[0]
        assert all(np.array_equal(out[0][2][k], other[2][k]) for k in out[0][2])
        assert np.array_equal(out[0][3], other[3])


def test_no_gradient():
    _, native = _case(KINDS[0])
    total, parts, grads, gz = vi.log_joint(*native[:4], s=native[4], grad=False)
    assert grads is None and gz is None
    assert total == vi.log_joint(*native[:4], s=native[4])[0]


def test_bad_input():
    _, (model, params, z, data, s) = _case(KINDS[0], channels={"gaussian": CHANNELS["gaussian"],
                                                               "categorical": CHANNELS["categorical"]})

    def call(**over):
        args = dict(model=model, params=params, z=z, data=data, s=s)
        args.update(over)
        return vi.log_joint(args["model"], args["params"], args["z"], args["data"], s=args["s"])

    with pytest.raises(TypeError, match="z"):
        call(z=z.astype(np.float32))
    with pytest.raises(ValueError, match="z"):
        call(z=z[:, :, :3].copy())
    bad = z.copy()
    bad[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match="z"):
        call(z=bad)
    with pytest.raises(TypeError, match="masked"):
        call(z=np.ma.masked_array(z))
    with pytest.raises(ValueError, match="contiguous"):
        call(z=np.asfortranarray(z))
    with pytest.raises(ValueError, match="log_sigma_z"):
        call(params={k: v for k, v in params.items() if k != "log_sigma_z"})
    with pytest.raises(ValueError, match="gaussian.J"):
        call(params={k: v for k, v in params.items() if k != "gaussian.J"})
    g = dict(data["gaussian"])
    x = g["x"].copy()
    x[g["mask"]] = np.inf  # an observed entry
    with pytest.raises(ValueError, match=r"\['x'\]"):
        call(data={**data, "gaussian": {**g, "x": x}})
    with pytest.raises(TypeError, match="mask"):
        call(data={**data, "gaussian": {**g, "mask": g["mask"].astype(float)}})
    with pytest.raises(ValueError, match="unknown keys"):
        call(data={**data, "gaussian": {**g, "msk": g["mask"]}})
    with pytest.raises(ValueError, match="modality"):
        call(data={"gauss": g})
    c = data["categorical"]["c"].copy()
    c[0, 0] = 3
    with pytest.raises(ValueError, match=r"\['c'\]"):
        call(data={**data, "categorical": {"c": c}})
    with pytest.raises(TypeError, match=r"\['c'\]"):
        call(data={**data, "categorical": {"c": c.astype(np.int32)}})
    q = {"q": np.full(z.shape[:2] + (3,), 1.5)}
    with pytest.raises(ValueError, match="counts"):
        vi.log_joint(model, {**params, "poisson.G": np.zeros((3, 4)), "poisson.g": np.zeros(3)}, z,
                     {"poisson": q}, s=s)
    with pytest.raises(ValueError, match="TR"):
        call(data={"fmri": {"x": g["x"], "mask": g["mask"], "r": g["r"]}},
             params={**params, "fmri.B": params["gaussian.B"], "fmri.J": params["gaussian.J"],
                     "fmri.log_sigma": params["gaussian.log_sigma"]})
    with pytest.raises(ValueError, match="floor"):
        vi.log_joint(model, params, z, data, s=s, floor=0.0)
    with pytest.raises(ValueError, match="w_obs"):
        vi.log_joint(model, params, z, data, s=s, weights=(1.0, float("nan")))


# ---- recognition model and ELBO ----------------------------------------------------------------
@pytest.mark.parametrize("hidden", [0, 6])
def test_elbo_gradient_matches_finite_differences(hidden):
    """The ELBO with fixed noise (the same seed) is a smooth function of every parameter: its
    chain-rule gradient through the native log-joint against central differences (float64)."""
    _, (model, params, z, data, s) = _case(KINDS[4], B=2, T=12, channels={"gaussian": CHANNELS["gaussian"],
                                                                          "poisson": CHANNELS["poisson"],
                                                                          "categorical": CHANNELS["categorical"]})
    F = vi.features(data, classes=3).shape[-1]
    enc = vi.Encoder(model.M, F, before=1, after=2, hidden=hidden)
    enc_params = enc.init(np.random.default_rng(1), log_s0=-1.5)
    weights = (0.8, 1.2)

    def f(p, e):
        return vi.elbo(model, p, enc, e, data, np.random.default_rng(7), s=s, samples=2, weights=weights,
                       grad=False)[0]

    _, _, grads = vi.elbo(model, params, enc, enc_params, data, np.random.default_rng(7), s=s, samples=2,
                          weights=weights)
    h = 1e-6
    checks = [("enc", k) for k in enc_params] + [("gen", k) for k in ("mu0", "log_sigma_z", "gaussian.B", "poisson.g")]
    for where, name in checks:
        base = enc_params if where == "enc" else params
        value = base[name]
        rng = np.random.default_rng(3)
        for idx in [tuple(rng.integers(0, n) for n in value.shape) for _ in range(4)]:
            up, dn = value.copy(), value.copy()
            up[idx] += h
            dn[idx] -= h
            if where == "enc":
                fd = (f(params, {**enc_params, name: up}) - f(params, {**enc_params, name: dn})) / (2 * h)
            else:
                fd = (f({**params, name: up}, enc_params) - f({**params, name: dn}, enc_params)) / (2 * h)
            got = grads[f"enc.{name}" if where == "enc" else name][idx]
            # truncation O(h^2) and rounding O(eps |ELBO| / h) ~ 1e-8 x |ELBO| ~ 1e-6 here
            assert abs(got - fd) <= 1e-5 * max(1.0, abs(fd)), (name, idx, got, fd)


def test_elbo_is_log_joint_plus_entropy():
    _, (model, params, z, data, s) = _case(KINDS[0], channels={"gaussian": CHANNELS["gaussian"]})
    F = vi.features(data).shape[-1]
    enc = vi.Encoder(model.M, F)
    e = enc.init(np.random.default_rng(0))
    value, parts, _ = vi.elbo(model, params, enc, e, data, np.random.default_rng(5), s=s, grad=False)
    mu, log_s, _ = enc.forward(e, vi.features(data))
    eps = np.random.default_rng(5).standard_normal(mu.shape)
    total = vi.log_joint(model, params, mu + np.exp(log_s) * eps, data, s=s, grad=False)[0]
    entropy = log_s.sum() + 0.5 * np.log(2 * np.pi * np.e) * log_s.size
    assert value == pytest.approx(total + entropy, rel=1e-12)
    assert parts["entropy"] == pytest.approx(entropy, rel=1e-12)
    with pytest.raises(ValueError, match="samples"):
        vi.elbo(model, params, enc, e, data, np.random.default_rng(5), s=s, samples=0)
    with pytest.raises(TypeError, match="rng"):
        vi.elbo(model, params, enc, e, data, 5, s=s)
    with pytest.raises(ValueError, match="hidden"):
        vi.Encoder(4, F, hidden=-1)
