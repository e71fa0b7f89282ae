"""Benchmark data: generators, noise, z-scoring, Lyapunov exponent, delay embedding, loading."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from plrnn_native import data as D
from scipy.integrate import solve_ivp

SYSTEMS = ["lorenz63", "lorenz96", "rossler", "hindmarsh_rose", "van_der_pol", "duffing",
           "driven_duffing"]
N_OF = {"lorenz63": 3, "lorenz96": 10, "rossler": 3, "hindmarsh_rose": 3, "van_der_pol": 2,
        "duffing": 2, "driven_duffing": 2}
SHORT = {"T": 300, "transient": 5.0}  # short series: the tests check the recipe, not the attractor


def test_systems_and_make():
    assert D.systems() == SYSTEMS
    ts = D.make("lorenz63", seed=0, **SHORT)
    assert ts.name == "lorenz63"
    with pytest.raises(ValueError, match="unknown system 'lorenz64'"):
        D.make("lorenz64")


@pytest.mark.parametrize("name", SYSTEMS)
def test_shapes_dtypes_determinism(name):
    a = D.make(name, seed=1, **SHORT)
    b = D.make(name, seed=1, **SHORT)
    c = D.make(name, seed=2, **SHORT)
    assert a.x.shape == (300, N_OF[name]) and (a.T, a.N) == (300, N_OF[name])
    assert a.x.dtype == np.float64 and a.x.flags.c_contiguous and np.isfinite(a.x).all()
    assert not a.x.flags.writeable
    np.testing.assert_array_equal(a.x, b.x)
    assert np.abs(a.x - c.x).max() > 1e-3
    assert a.meta["seed"] == 1 and a.meta["method"] == "DOP853"
    assert a.meta["rtol"] == 1e-10 and a.meta["atol"] == 1e-12 and a.meta["transient"] == 5.0
    assert a.meta["t0"] == 5.0 and len(a.meta["x0"]) == N_OF[name]
    assert a.params
    if name == "driven_duffing":
        assert a.s.shape == (300, 1) and a.s.dtype == np.float64 and a.K == 1
    else:
        assert a.s is None and a.K == 0


def test_seed_none_is_recorded_and_replays():
    a = D.van_der_pol(seed=None, **SHORT)
    assert isinstance(a.meta["seed"], int)
    b = D.van_der_pol(seed=a.meta["seed"], **SHORT)
    np.testing.assert_array_equal(a.x, b.x)


def test_reference_lyapunov_exponents():
    assert D.lorenz63(seed=0, **SHORT).lyapunov_max == pytest.approx(0.906, abs=1e-3)
    assert D.rossler(seed=0, **SHORT).lyapunov_max == pytest.approx(0.071, abs=1e-3)
    assert D.van_der_pol(seed=0, **SHORT).lyapunov_max == 0.0
    assert D.lorenz63(seed=0, rho=35.0, **SHORT).lyapunov_max is None  # off the reference setting
    assert D.lorenz96(seed=0, **SHORT).lyapunov_max is None


@pytest.mark.parametrize("name", ["lorenz63", "lorenz96", "driven_duffing"])
def test_zscore(name):
    z = D.make(name, seed=3, **SHORT)
    raw = D.make(name, seed=3, zscore=False, **SHORT)
    assert raw.mean is None and raw.std is None
    np.testing.assert_allclose(z.x.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.x.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(z.mean, raw.x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(z.x * z.std + z.mean, raw.x, rtol=1e-10, atol=1e-10)
    if name == "driven_duffing":  # the input is not standardised
        np.testing.assert_array_equal(z.s, raw.s)


@pytest.mark.parametrize("sigma", [0.01, 0.1])
def test_observation_noise(sigma):
    T = 4000
    clean = D.lorenz63(T=T, seed=5, zscore=False, transient=5.0)
    noisy = D.lorenz63(T=T, seed=5, zscore=False, transient=5.0, obs_noise=sigma)
    assert noisy.meta["obs_noise"] == sigma
    noise = noisy.x - clean.x  # same seed: same trajectory, the noise stream is separate
    sd = clean.x.std(axis=0)
    # sample std of T Gaussian draws: relative standard error 1/sqrt(2T); allow 5 of them
    np.testing.assert_allclose(noise.std(axis=0) / sd, sigma, rtol=5 / np.sqrt(2 * T))
    np.testing.assert_allclose(noise.mean(axis=0) / sd, 0.0, atol=5 * sigma / np.sqrt(T))
    # var(x + n) = var(x) (1 + sigma^2) up to the cross term 2 cov(x, n) ~ 2 sigma var(x) / sqrt(T)
    ratio = noisy.x.var(axis=0) / clean.x.var(axis=0)
    tol = 5 * (2 * sigma / np.sqrt(T) + sigma**2 * np.sqrt(2 / T))
    np.testing.assert_allclose(ratio, 1 + sigma**2, atol=tol)
    assert np.all(ratio > 1 + sigma**2 - tol)


def test_process_noise_kicks():
    eps, dt, T = 0.05, 0.1, 400
    ts = D.van_der_pol(T=T, dt=dt, seed=7, process_noise=eps, zscore=False, transient=1.0)
    again = D.van_der_pol(T=T, dt=dt, seed=7, process_noise=eps, zscore=False, transient=1.0)
    np.testing.assert_array_equal(ts.x, again.x)
    clean = D.van_der_pol(T=T, dt=dt, seed=7, zscore=False, transient=1.0)
    np.testing.assert_array_equal(ts.meta["x0"], clean.meta["x0"])
    assert np.abs(ts.x - clean.x).max() > eps

    def f(t, u):
        return [u[1], (1 - u[0] ** 2) * u[1] - u[0]]

    # x_k = flow_dt(x_{k-1}) + eps * xi_k: the residuals are the kicks
    resid = np.array([solve_ivp(f, (0, dt), ts.x[k - 1], method="DOP853", rtol=1e-10,
                                atol=1e-12).y[:, -1] for k in range(1, T)])
    kicks = ts.x[1:] - resid
    np.testing.assert_allclose(kicks.std(axis=0), eps, rtol=5 / np.sqrt(2 * (T - 1)))
    np.testing.assert_allclose(kicks.mean(axis=0), 0.0, atol=5 * eps / np.sqrt(T - 1))


def test_lorenz63_largest_lyapunov_exponent():
    # Renormalised tangent vector on the exact Jacobian over 200 time units (after 50 transient,
    # 10 alignment). Literature 0.9056; the finite-time estimate fluctuates: the standard error from
    # 10 batch means of 20 time units is ~0.02-0.035 across seeds, so 15 % (0.136) is >= 4 of them.
    lam, local = D.lyapunov_max("lorenz63", 200.0, seed=0, return_local=True)
    assert local.shape == (200,)
    se = local.reshape(10, -1).mean(axis=1).std(ddof=1) / np.sqrt(10)
    tol = 0.15 * D.LYAPUNOV_LORENZ63
    assert 3 * se < tol  # the run is long enough for the tolerance to mean something
    assert abs(lam - D.LYAPUNOV_LORENZ63) < tol, (lam, se)


def test_lyapunov_max_arguments():
    with pytest.raises(ValueError, match="unknown system"):
        D.lyapunov_max("nope")
    with pytest.raises(ValueError, match="unknown parameter"):
        D.lyapunov_max("lorenz63", 1.0, mu=3.0)
    with pytest.raises(ValueError, match="t_total"):
        D.lyapunov_max("lorenz63", 0.0)


def test_van_der_pol_limit_cycle():
    ts = D.van_der_pol(T=3000, dt=0.05, mu=1.0, seed=0, zscore=False)
    x = ts.x[:, 0] - ts.x[:, 0].mean()
    n = x.size
    ac = np.correlate(x, x, "full")[n - 1:] / np.arange(n, 0, -1) / x.var()
    lag = 50 + int(np.argmax(ac[50:400]))  # the first peak after lag 0 (2.5 to 20 time units)
    assert ac[lag] > 0.999  # periodic: the signal repeats itself exactly
    assert lag * ts.dt == pytest.approx(6.6633, abs=ts.dt)  # Van der Pol period at mu = 1
    assert np.abs(ts.x[:, 0]).max() == pytest.approx(2.0086, abs=1e-2)  # the cycle's amplitude
    # a limit cycle: largest Lyapunov exponent 0 (finite-time estimate ~1/t_total)
    assert abs(D.lyapunov_max("van_der_pol", 100.0, seed=0)) < 0.02


def test_duffing_multistable():
    finals = np.array([D.duffing(seed=s, zscore=False).x[-1] for s in range(8)])
    np.testing.assert_allclose(np.abs(finals[:, 0]), 1.0, atol=0.05)  # at a well (±1, 0)
    np.testing.assert_allclose(finals[:, 1], 0.0, atol=0.05)
    assert {-1.0, 1.0} == set(np.sign(finals[:, 0]))  # both attractors reached


def test_driven_duffing_input():
    kw = {"T": 500, "dt": 0.05, "seed": 4, "transient": 2.0, "zscore": False}
    a = D.driven_duffing(gamma=0.5, omega=1.2, **kw)
    b = D.driven_duffing(gamma=0.3, omega=1.2, **kw)
    t = a.meta["t0"] + a.dt * np.arange(a.T)
    np.testing.assert_allclose(a.s[:, 0], 0.5 * np.cos(1.2 * t), atol=1e-12)
    np.testing.assert_allclose(b.s[:, 0], 0.3 * np.cos(1.2 * t), atol=1e-12)
    np.testing.assert_array_equal(a.meta["x0"], b.meta["x0"])  # same start, only the drive differs
    assert np.abs(a.x - b.x).max() > 0.1
    z = D.driven_duffing(gamma=0.0, **kw)
    assert z.s.shape == (500, 1) and not z.s.any()


def test_argument_validation():
    # a value of the wrong type is a TypeError, a wrong value of the right type a ValueError
    cases = [
        (dict(T=1), "T", ValueError), (dict(T=2.5), "T", TypeError), (dict(T=True), "T", TypeError),
        (dict(dt=0.0), "dt", ValueError), (dict(dt=-0.1), "dt", ValueError),
        (dict(dt=float("nan")), "dt", ValueError), (dict(obs_noise=-0.1), "obs_noise", ValueError),
        (dict(process_noise=-1.0), "process_noise", ValueError),
        (dict(transient=-1.0), "transient", ValueError), (dict(seed=-1), "seed", ValueError),
        (dict(seed=1.5), "seed", TypeError), (dict(x0=[1.0, 2.0]), "x0", ValueError),
        (dict(x0=[1.0, np.inf, 0.0]), "x0", ValueError), (dict(rtol=0.0), "rtol", ValueError),
        (dict(zscore="yes"), "zscore", TypeError),
    ]
    for kwargs, arg, error in cases:
        with pytest.raises(error, match=f"^{arg}:"):
            D.lorenz63(**kwargs)
    with pytest.raises(ValueError, match=r"^N: must be >= 4"):
        D.lorenz96(N=3, T=10)
    with pytest.raises(ValueError, match=r"^mu:"):
        D.van_der_pol(mu=0.0, T=10)
    with pytest.raises(ValueError, match="constant"):  # starts on a fixed point: nothing to z-score
        D.duffing(T=10, x0=[1.0, 0.0])
    with pytest.raises(TypeError):  # system parameters are keyword-only
        D.lorenz63(100, 0.01, 10.0)


def test_x0_given():
    ts = D.lorenz63(T=20, x0=[1.0, 2.0, 3.0], transient=0.0, zscore=False)
    np.testing.assert_array_equal(ts.x[0], [1.0, 2.0, 3.0])


def test_split():
    ts = D.driven_duffing(T=100, seed=0, transient=1.0)
    train, test = ts.split(0.8)
    assert (train.T, test.T) == (80, 20)
    np.testing.assert_array_equal(np.concatenate([train.x, test.x]), ts.x)
    np.testing.assert_array_equal(test.s, ts.s[80:])
    assert train.mean is ts.mean and test.std is ts.std
    assert (train.meta["start"], test.meta["start"]) == (0, 80)
    assert test.meta["t0"] == pytest.approx(ts.meta["t0"] + 80 * ts.dt)
    assert (train.meta["segment"], test.meta["segment"]) == ("train", "test")
    for bad in (0.0, 1.0, -0.5, 0.001):
        with pytest.raises(ValueError, match="fraction"):
            ts.split(bad)
    with pytest.raises(TypeError, match="fraction"):
        ts.split("half")


def test_timeseries_frozen_and_checked():
    ts = D.van_der_pol(seed=0, **SHORT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ts.dt = 2.0
    with pytest.raises(ValueError):
        ts.x[0, 0] = 1.0
    mine = np.zeros((5, 2))
    D.TimeSeries(x=mine, dt=0.1)
    assert mine.flags.writeable  # the caller's array is copied, not frozen
    with pytest.raises(ValueError, match=r"x: expected a \[T, N\]"):
        D.TimeSeries(x=np.zeros(5))
    with pytest.raises(ValueError, match="s: expected"):
        D.TimeSeries(x=np.zeros((5, 2)), s=np.zeros((4, 1)))
    with pytest.raises(ValueError, match="NaN"):
        D.TimeSeries(x=np.array([[0.0], [np.nan]]))
    with pytest.raises(ValueError, match="dt"):
        D.TimeSeries(x=np.zeros((5, 2)), dt=0.0)


def test_delay_embed():
    x = np.arange(10.0)
    e = D.delay_embed(x, dims=3, lag=2)
    assert e.shape == (6, 3)
    np.testing.assert_array_equal(e[0], [4.0, 2.0, 0.0])  # [x_t, x_{t-lag}, x_{t-2 lag}], t = 4
    np.testing.assert_array_equal(e[:, 0], x[4:])
    X = np.stack([np.arange(8.0), 100 + np.arange(8.0)], axis=1)  # [8, 2]
    E = D.delay_embed(X, dims=2, lag=3)
    assert E.shape == (8 - 3, 4) and E.dtype == np.float64
    np.testing.assert_array_equal(E[0], [3.0, 103.0, 0.0, 100.0])
    np.testing.assert_array_equal(E[:, 2:], X[:5])
    np.testing.assert_array_equal(D.delay_embed(X, dims=1, lag=5), X)
    ts = D.lorenz63(seed=0, **SHORT)
    assert D.delay_embed(ts.x[:, 0], dims=4, lag=10).shape == (300 - 30, 4)
    for kwargs, arg, error in [(dict(dims=0), "dims", ValueError), (dict(dims=2, lag=0), "lag", ValueError),
                               (dict(dims=2.0), "dims", TypeError),
                               (dict(dims=6, lag=2), "leaves no rows", ValueError)]:
        with pytest.raises(error, match=arg):
            D.delay_embed(x, **kwargs)
    with pytest.raises(ValueError, match="shape"):
        D.delay_embed(np.zeros((2, 2, 2)), dims=2)


# ------------------------------------------------------------------------------------------------
# load_timeseries
# ------------------------------------------------------------------------------------------------


def _data(T=50, N=3, seed=0):
    return np.random.default_rng(seed).standard_normal((T, N))


def test_load_npy_round_trip(tmp_path):
    x = _data()
    np.save(tmp_path / "rec.npy", x)
    raw = D.load_timeseries(tmp_path / "rec.npy", dt=0.5, zscore=False)
    np.testing.assert_array_equal(raw.x, x)
    assert raw.name == "rec" and raw.dt == 0.5 and raw.mean is None and raw.s is None
    z = D.load_timeseries(str(tmp_path / "rec.npy"))
    np.testing.assert_allclose(z.x * z.std + z.mean, x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(z.x.std(axis=0), 1.0, rtol=1e-12)
    sel = D.load_timeseries(tmp_path / "rec.npy", zscore=False, columns=[2, 0])
    np.testing.assert_array_equal(sel.x, x[:, [2, 0]])
    np.save(tmp_path / "one.npy", x[:, 1].astype(np.float32))  # [T] -> [T, 1], any real dtype
    one = D.load_timeseries(tmp_path / "one.npy", zscore=False)
    assert one.x.shape == (50, 1) and one.x.dtype == np.float64


def test_load_csv_round_trip(tmp_path):
    x = _data(T=40, N=2)
    np.savetxt(tmp_path / "h.csv", x, delimiter=",", header="volt,current", comments="",
               fmt="%.17g")
    ts = D.load_timeseries(tmp_path / "h.csv", zscore=False)
    np.testing.assert_array_equal(ts.x, x)
    assert ts.params["columns"] == ["volt", "current"] and ts.meta["header"] == ["volt", "current"]
    cur = D.load_timeseries(tmp_path / "h.csv", zscore=False, columns=["current"])
    np.testing.assert_array_equal(cur.x, x[:, 1:])
    np.savetxt(tmp_path / "n.csv", x, delimiter=",", fmt="%.17g")
    ts = D.load_timeseries(tmp_path / "n.csv", zscore=False)
    np.testing.assert_array_equal(ts.x, x)
    assert ts.meta["header"] is None
    np.savetxt(tmp_path / "c.csv", x[:, 0], fmt="%.17g")  # one column
    assert D.load_timeseries(tmp_path / "c.csv").x.shape == (40, 1)
    with pytest.raises(ValueError, match="no header"):
        D.load_timeseries(tmp_path / "n.csv", columns=["volt"])
    with pytest.raises(ValueError, match="no column 'power'"):
        D.load_timeseries(tmp_path / "h.csv", columns=["power"])
    with pytest.raises(ValueError, match="out of range"):
        D.load_timeseries(tmp_path / "h.csv", columns=[5])


def _write(path, text):
    path.write_text(text)
    return path


def test_load_invalid(tmp_path):
    x = _data()
    nan = x.copy()
    nan[3, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(ValueError, match=r"NaN or inf.*time step 3.*column 1"):
        D.load_timeseries(tmp_path / "nan.npy")
    inf = _write(tmp_path / "inf.csv", "a,b\n1,2\n3,inf\n5,6\n")
    with pytest.raises(ValueError, match=r"NaN or inf.*time step 1 \(line 3\), column 'b'"):
        D.load_timeseries(inf)
    np.save(tmp_path / "cube.npy", np.zeros((4, 3, 2)))
    with pytest.raises(ValueError, match="2-D"):
        D.load_timeseries(tmp_path / "cube.npy")
    np.save(tmp_path / "scalar.npy", np.float64(1.0))
    with pytest.raises(ValueError, match="2-D"):
        D.load_timeseries(tmp_path / "scalar.npy")
    np.save(tmp_path / "short.npy", x[:1])
    with pytest.raises(ValueError, match="fewer than 2 time steps"):
        D.load_timeseries(tmp_path / "short.npy")
    with pytest.raises(ValueError, match="fewer than 2 time steps"):
        D.load_timeseries(_write(tmp_path / "short.csv", "a,b\n1,2\n"))
    with pytest.raises(ValueError, match="no data"):
        D.load_timeseries(_write(tmp_path / "empty.csv", "\n"))
    with pytest.raises(ValueError, match="line 3, column 1: 'abc' is not a number"):
        D.load_timeseries(_write(tmp_path / "text.csv", "a,b\n1,2\n3,abc\n"))
    with pytest.raises(ValueError, match="line 2, column 0: 'x' is not a number"):
        D.load_timeseries(_write(tmp_path / "text2.csv", "1,2\nx,3\n"))
    with pytest.raises(ValueError, match=r"line 3 has 1 field\(s\), expected 2"):
        D.load_timeseries(_write(tmp_path / "ragged.csv", "1,2\n3,4\n5\n"))
    np.save(tmp_path / "words.npy", np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="numeric"):
        D.load_timeseries(tmp_path / "words.npy")
    np.save(tmp_path / "obj.npy", np.array([[1, None], [2, 3]], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="numeric"):
        D.load_timeseries(tmp_path / "obj.npy")
    with pytest.raises(ValueError, match=r"unknown extension '\.txt'"):
        D.load_timeseries(_write(tmp_path / "data.txt", "1,2\n3,4\n"))
    const = x.copy()
    const[:, 2] = 7.0
    np.save(tmp_path / "const.npy", const)
    with pytest.raises(ValueError, match=r"column\(s\) \[2\] constant.*z-scoring impossible"):
        D.load_timeseries(tmp_path / "const.npy")
    assert D.load_timeseries(tmp_path / "const.npy", zscore=False).x.shape == (50, 3)
    with pytest.raises(ValueError, match="dt"):
        D.load_timeseries(tmp_path / "const.npy", dt=0.0)
