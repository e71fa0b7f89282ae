"""Issue 14, hardening: interruptible native work, size guards, consistent parameters under threads,
aliasing and hidden NaN, corrupt and hostile files, wrong kinds of exceptions, binding type checks.

Cases that crash or hang on a broken build run in a subprocess with a timeout, so that they fail
instead of taking the test session down.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
import zipfile

import numpy as np
import plrnn_native as pn
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plrnn_native import _backend, _core, analysis
from plrnn_native.training import Trainer, TrainConfig

BAD = (ValueError, TypeError)


def named(arg: str) -> str:
    return rf"\b{re.escape(arg)}\b"


def run_python(code: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout)


# ----------------------------------------------------------------------------------------------
# 1. Ctrl-C stops native work
# ----------------------------------------------------------------------------------------------
_PRELUDE = """
import sys, time, numpy as np, plrnn_native as pn
from plrnn_native import analysis
pn.set_num_threads(2)
def state_ok():  # whether the interrupted object is in a consistent state (where there is one)
    return True
"""

# After the KeyboardInterrupt the child checks that no native thread keeps computing (the process's
# CPU time stands still) and that the library still works correctly (a fresh call gives the result
# of an uninterrupted process), then exits 0.
_AFTER = """
def check_after():
    cpu0 = time.process_time(); time.sleep(0.5); busy = time.process_time() - cpu0
    small = pn.PLRNN("standard", M=8, N=3, seed=3)
    small["h"] = np.random.default_rng(4).standard_normal(8)
    fps = analysis.fixed_points(small)
    x = np.random.default_rng(5).standard_normal((4, 30, 3))
    loss, _ = small.loss_and_grad(x, forcing="sparse", tau=5)
    print("after", busy, len(fps.found), repr(loss), state_ok(), flush=True)
"""

_WORK = {
    "fixed_points": """
model = pn.PLRNN("standard", M=30, N=3, seed=0)
model["h"] = np.random.default_rng(1).standard_normal(30)
work = lambda: analysis.fixed_points(model, max_regions=2**40, progress=False)
""",
    "cycles": """
model = pn.PLRNN("standard", M=8, N=3, seed=0)
work = lambda: analysis.cycles(model, 6, max_regions=2**60, progress=False)
""",
    "generate": """
model = pn.PLRNN("standard", M=1200, N=3, dtype="float32", seed=0)
z0 = np.zeros((2, 1200), np.float32)
work = lambda: model.generate(40_000, z0=z0)
""",
    "loss_and_grad": """
model = pn.PLRNN("standard", M=400, N=3, dtype="float32", seed=0)
x = np.random.default_rng(0).standard_normal((8, 3000, 3)).astype(np.float32)
work = lambda: [model.loss_and_grad(x, forcing="sparse", tau=10) for _ in range(1000)]
""",
    "lyapunov": """
from plrnn_native import metrics
model = pn.PLRNN("standard", M=400, N=3, dtype="float64", seed=0)
work = lambda: metrics.lyapunov_spectrum(model, T=20_000, transient=0, seed=0)
""",
    "ode": """
from plrnn_native import _core
u0 = np.array([1.0, 2.0, 20.0])
work = lambda: _core.ode_integrate("lorenz63", [10.0, 28.0, 8.0 / 3.0], u0, 0.0, 1e9, 1e-10, 1e-12)
""",
    "kernel_rates": """
from plrnn_native import _core
work = lambda: [_core.kernel_rates("float32", 256, 64, 2000, 10.0) for _ in range(100)]
""",
    "training": """
from plrnn_native.training import Trainer, TrainConfig
model = pn.PLRNN("standard", M=200, N=3, dtype="float32", seed=0)
x = np.random.default_rng(0).standard_normal((5000, 3)).astype(np.float32)
good = {"epoch": 0, "t": 0, "params": {k: v.copy() for k, v in model.items()}}
def remember(tr, record):  # the state at the end of each complete epoch
    good.update(epoch=tr.epoch, t=tr.optimizer.t, params={k: v.copy() for k, v in tr.model.items()})
trainer = Trainer(model, x, config=TrainConfig(epochs=10_000, seq_len=500, batch_size=32), callback=remember)
work = lambda: trainer.train()
def state_ok():  # back at the end of the last complete epoch
    return (trainer.epoch == good["epoch"] == len(trainer.history) and trainer.optimizer.t == good["t"]
            and all(np.array_equal(trainer.model[k], good["params"][k]) for k in trainer.model.keys()))
""",
}


def _reference_after() -> str:
    proc = run_python(_PRELUDE + _AFTER + "check_after()\n")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()[2:]


@pytest.mark.parametrize("what", list(_WORK))
def test_sigint_stops_native_work_promptly(what):
    code = _PRELUDE + _AFTER + _WORK[what] + textwrap.dedent("""
        print("ready", flush=True)
        try:
            work()
            print("finished", flush=True)
        except KeyboardInterrupt:
            print("interrupted", time.perf_counter(), flush=True)  # CLOCK_MONOTONIC: same as the parent's
            check_after()
        """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(1.0)
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        # uninterrupted, each of these runs for minutes: a child that ignores Ctrl-C times out here
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    lines = out.split("\n")
    assert lines[0].startswith("interrupted"), (out, err[-500:])
    reacted = float(lines[0].split()[1]) - sent
    # Ctrl-C ends the work within the poll interval plus scheduling (generous bound: shared machine)
    assert reacted < 3.0, reacted
    assert proc.returncode == 0, err
    after = lines[1].split()
    assert after[0] == "after"
    assert float(after[1]) < 0.25, f"CPU still busy after the interrupt: {after[1]} s in 0.5 s"
    assert after[2:] == _reference_after()


def test_interrupted_training_resumes_as_if_stopped_after_the_last_epoch(monkeypatch):
    x = np.random.default_rng(0).standard_normal((400, 3))
    cfg = TrainConfig(epochs=4, seq_len=20, batch_size=4, batches_per_epoch=5)
    plain = Trainer(pn.PLRNN("standard", M=6, N=3, seed=0), x, config=cfg)
    plain.train()

    trainer = Trainer(pn.PLRNN("standard", M=6, N=3, seed=0), x, config=cfg)
    native = trainer._native  # the native loop (csrc/training/train_step.h) runs an epoch per call

    class InterruptedInEpoch2:  # Ctrl-C after 3 of epoch 2's native steps (the native state is changed)
        calls = 0

        def __getattr__(self, name):
            return getattr(native, name)

        def run(self, steps, *args):
            InterruptedInEpoch2.calls += 1
            if InterruptedInEpoch2.calls == 3:
                native.run(3, *args)
                raise KeyboardInterrupt
            return native.run(steps, *args)

    trainer._native = InterruptedInEpoch2()
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert trainer.epoch == 2 and len(trainer.history) == 2
    trainer._native = native
    trainer.train()
    for name in plain.model.keys():
        np.testing.assert_array_equal(trainer.model[name], plain.model[name])
    assert [r["loss"] for r in trainer.history] == [r["loss"] for r in plain.history]


def test_long_exhaustive_search_reports_its_cost_and_progress(capfd):
    model = pn.PLRNN("standard", M=12, N=3, seed=0)
    res = analysis.fixed_points(model, progress=True)
    err = capfd.readouterr().err
    assert "4,096 linear regions" in err and "Ctrl-C" in err
    assert res.visited == 4096
    cyc = analysis.cycles(pn.PLRNN("standard", M=3, N=3, seed=0), 3, progress=True)
    assert "region sequences of length 3" in capfd.readouterr().err
    assert cyc.visited == (8**3 - 8) // 3
    with pytest.raises(TypeError, match=named("progress")):
        analysis.fixed_points(model, progress="yes")


def test_an_error_in_the_progress_callback_stops_the_search_and_propagates():
    from plrnn_native.piecewise import piecewise_form

    model = pn.PLRNN("standard", M=18, N=3, seed=0)
    model["h"] = np.random.default_rng(1).standard_normal(18)
    args = _backend._native_form(piecewise_form(model))
    seen = []

    def callback(done):
        seen.append(done)
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        _core.fixed_points_exhaustive(*args, progress=callback)
    assert len(seen) == 1
    full = _core.fixed_points_exhaustive(*args)  # the pool and the solver are intact
    assert full[4] == 2**18
    assert np.array_equal(full[1], analysis.fixed_points(model).pieces.astype(full[1].dtype))


_GUARDS = {  # a call that must be refused at once, and the argument the message names
    "m32-default": ('analysis.fixed_points(pn.PLRNN("standard", M=32, N=3, seed=0))', "max_regions"),
    "m1100": ('analysis.fixed_points(pn.PLRNN("standard", M=1100, N=3, seed=0))', "max_regions"),
    "k=1e9": ("analysis.cycles(m10, k=10**9)", "k"),
    "scyfi-k=1e5": ('analysis.cycles(m10, k=10**5, method="scyfi", seed=0)', "k"),
    "k=400": ("analysis.cycles(m10, k=400)", "max_regions"),
    "k=20": ("analysis.cycles(m10, k=20)", "max_regions"),
    "search_size": ("analysis.search_size(m10, k=10**9)", "k"),
}


@pytest.mark.parametrize("case", list(_GUARDS))
def test_impossible_searches_are_refused_at_once(case):
    # in a child process with a timeout: without the guard these run for hours (or overflow)
    call, arg = _GUARDS[case]
    proc = run_python(f"""
        import json, time, plrnn_native as pn
        from plrnn_native import analysis
        m10 = pn.PLRNN("standard", M=10, N=3, seed=0)
        t0 = time.perf_counter()
        try:
            {call}
            print(json.dumps(["accepted", "", 0]))
        except Exception as e:
            print(json.dumps([type(e).__name__, str(e), time.perf_counter() - t0]))
        """, timeout=30)
    assert proc.returncode == 0, proc.stderr[-500:]
    kind, message, seconds = json.loads(proc.stdout)
    assert kind == "ValueError" and re.search(named(arg), message), (kind, message)
    assert seconds < 10.0  # building the model's piecewise form, on a shared machine; not the search
    if case == "m32-default":
        assert "4.29e+09 linear regions" in message and "scyfi" in message
    if case == "m1100":
        assert "2^1000" in message


def test_search_size_counts_without_computing_huge_powers():
    model = pn.PLRNN("standard", M=10, N=3, seed=0)
    assert analysis.search_size(model) == 1024
    assert analysis.search_size(model, 3) == 1024**3 // 3
    assert analysis.search_size(model, 1000) == float("inf")


def test_private_exhaustive_cycle_search_refuses_uncountable_sequences():
    code = """
        import numpy as np, plrnn_native as pn
        from plrnn_native import _backend, _core
        from plrnn_native.piecewise import piecewise_form
        args = _backend._native_form(piecewise_form(pn.PLRNN("standard", M=10, N=3, seed=0)))
        for k in (7, 40, 10**6):
            try:
                _core.cycles_exhaustive(*args, k)
                print("accepted", k)
            except ValueError as e:
                print("refused", k, str(e).split(":")[0])
        """
    proc = run_python(code, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["refused 7 k", "refused 40 k", "refused 1000000 k"]


# ----------------------------------------------------------------------------------------------
# 3. A native call sees one consistent parameter set
# ----------------------------------------------------------------------------------------------
def test_parameter_assignment_never_reaches_a_running_call():
    pn.set_num_threads(1)  # results then do not depend on which thread runs a call
    model = pn.PLRNN("standard", M=48, N=3, seed=0)
    x = np.random.default_rng(0).standard_normal((32, 200, 3))
    h_a, h_b = np.zeros(48), np.full(48, 0.5)
    expected = []
    for h in (h_a, h_b):
        model["h"] = h
        expected.append(model.loss_and_grad(x, forcing="sparse", tau=10)[0])
    assert expected[0] != expected[1]
    stop = threading.Event()
    losses, errors = [], []

    def reader():
        try:
            while not stop.is_set():
                losses.append(model.loss_and_grad(x, forcing="sparse", tau=10)[0])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def writer():
        for i in range(400):
            model["h"] = h_b if i % 2 else h_a
            time.sleep(0.0005)
        stop.set()

    threads = [threading.Thread(target=reader) for _ in range(4)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(losses) > 20
    mixed = [v for v in losses if v not in expected]
    assert not mixed, f"{len(mixed)} of {len(losses)} results saw a mix of old and new parameters"


def test_assignment_swaps_in_a_copy():
    model = pn.PLRNN("standard", M=4, N=2, seed=0)
    old = model["h"]
    new = np.ones(4)
    model["h"] = new
    assert model["h"] is not new and model["h"] is not old
    np.testing.assert_array_equal(old, np.zeros(4))  # a running call's array is left as it was
    new[0] = 5.0
    assert model["h"][0] == 1.0


# ----------------------------------------------------------------------------------------------
# 4. Aliasing and hidden NaN
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def model32():
    return pn.PLRNN("standard", M=5, N=2, dtype="float32", seed=0)


def test_output_buffers_may_not_overlap_inputs(model32):
    x = np.random.default_rng(0).standard_normal((2, 6, 2)).astype(np.float32)
    with pytest.raises(ValueError, match=named("out")):
        model32.rollout(x, out=x)
    buf = np.zeros(24 + 60, np.float32)  # x and a latent buffer that starts inside it
    xs = buf[:24].reshape(2, 6, 2)
    xs[...] = x
    with pytest.raises(ValueError, match=named("latent_out")):
        model32.rollout(xs, latent_out=buf[12:72].reshape(2, 6, 5))
    buf = np.zeros(24 + 60, np.float32)  # the two output buffers overlap
    with pytest.raises(ValueError, match=named("latent_out")):
        model32.rollout(x, out=buf[:24].reshape(2, 6, 2), latent_out=buf[20:80].reshape(2, 6, 5))
    with pytest.raises(ValueError, match=named("out")):  # a parameter as the output
        model32.rollout(x[:1, :1].copy(), out=model32["h"][:2].reshape(1, 1, 2))
    xhat = model32.rollout(x, out=np.empty((2, 6, 2), np.float32))  # separate buffers are fine
    np.testing.assert_array_equal(xhat, model32.rollout(x))


def _masked(arr, where=0):
    m = np.ma.masked_array(arr.copy(), mask=np.zeros(arr.shape, bool))
    m.data.reshape(-1)[where] = np.nan
    m.mask.reshape(-1)[where] = True
    return m


def test_masked_arrays_are_rejected_everywhere(model32):
    x = np.random.default_rng(0).standard_normal((2, 6, 2)).astype(np.float32)
    with pytest.raises(TypeError, match=named("x")):
        model32.rollout(_masked(x))
    with pytest.raises(TypeError, match=named("x")):
        model32.loss_and_grad(_masked(x))
    with pytest.raises(TypeError, match=named("z0")):
        model32.generate(5, z0=_masked(np.zeros(5, np.float32)))
    with pytest.raises(TypeError, match=named("x0")):
        model32.generate(5, x0=_masked(np.zeros(2, np.float32)))
    with pytest.raises(TypeError, match=named("h")):
        model32["h"] = _masked(np.zeros(5, np.float32))
    with pytest.raises(TypeError, match=named("z")):
        model32.jacobian(_masked(np.zeros(5, np.float32)))
    net = pn.SupervisedPLRNN("standard", M=4, K=1, O=1, dtype="float32", seed=0)
    with pytest.raises(TypeError, match=named("s")):
        net.forward(_masked(np.zeros((1, 3, 1), np.float32)))
    with pytest.raises(TypeError, match=named("b")):
        net["b"] = _masked(np.zeros(1, np.float32))
    assert np.isfinite(model32["h"]).all()


def test_jacobian_follows_the_array_rules(model32):
    z = np.zeros(5, np.float32)
    np.testing.assert_array_equal(model32.jacobian(z)[0], model32.jacobian(z[None])[0][0])
    with pytest.raises(TypeError, match=named("z")):
        model32.jacobian(np.zeros(5, np.int64))
    with pytest.raises(TypeError, match=named("z")):
        model32.jacobian(np.zeros(5))  # float64 for a float32 model
    with pytest.raises(TypeError, match=named("z")):
        model32.jacobian([0.0] * 5)
    with pytest.raises(ValueError, match=named("z")):
        model32.jacobian(np.full(5, np.nan, np.float32))
    with pytest.raises(ValueError, match=named("z")):
        model32.jacobian(np.zeros((3, 4), np.float32))


def _bad_arrays(shape, dtype):
    """A strategy of arrays that break exactly one rule of check_array (and what the rule is)."""
    good = np.zeros(shape, dtype)

    def nan_at(i):
        a = good.copy()
        a.reshape(-1)[i % a.size] = np.nan
        return a

    def inf_at(i):
        a = good.copy()
        a.reshape(-1)[i % a.size] = -np.inf
        return a

    return st.one_of(
        st.integers(0, 10**6).map(nan_at),
        st.integers(0, 10**6).map(inf_at),
        st.integers(0, 10**6).map(lambda i: _masked(good, i % good.size)),
        st.sampled_from([np.int64, np.float16, np.complex128, bool,
                         np.float64 if dtype == np.float32 else np.float32]).map(lambda d: good.astype(d)),
        st.sampled_from([good.tolist(), tuple(good.reshape(-1).tolist()), None, 1.0, "x"]),
        st.just(np.zeros(shape[:-1] + (shape[-1] + 1,), dtype)),
        st.just(np.zeros((shape[0], shape[1] * 2, *shape[2:]), dtype)[:, ::2]) if len(shape) == 3
        else st.just(np.zeros(shape[:-1] + (shape[-1] * 2,), dtype)[..., ::2]),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_entry_point_rejects_bad_arrays_naming_them(model32, data):
    x = np.zeros((2, 6, 2), np.float32)
    entry = data.draw(st.sampled_from(["rollout.x", "loss_and_grad.x", "generate.z0", "step.z", "jacobian.z",
                                       "setitem.W", "setitem.h", "rollout.out"]))
    method, arg = entry.split(".")
    shapes = {"x": (2, 6, 2), "z0": (2, 5), "z": (3, 5), "W": (5, 5), "h": (5,), "out": (2, 6, 2)}
    bad = data.draw(_bad_arrays(shapes[arg], np.float32))
    plain = isinstance(bad, np.ndarray) and not isinstance(bad, np.ma.MaskedArray) \
        and bad.dtype == np.float32 and bad.shape == shapes[arg]
    if arg == "out" and (bad is None or plain and bad.flags.c_contiguous):
        return  # NaN in an output buffer is fine: it is overwritten
    if method in ("jacobian", "setitem") and plain and np.isfinite(bad).all():
        return  # NumPy-only code and copied assignments take strided views
    before = {k: v.copy() for k, v in model32.items()}
    with pytest.raises(BAD, match=named(arg)):
        if method == "rollout":
            model32.rollout(x, out=bad) if arg == "out" else model32.rollout(bad)
        elif method == "loss_and_grad":
            model32.loss_and_grad(bad)
        elif method == "generate":
            model32.generate(4, z0=bad)
        elif method == "step":
            model32.step(bad)
        elif method == "jacobian":
            model32.jacobian(bad)
        else:
            model32[arg] = bad
    for k, v in model32.items():
        np.testing.assert_array_equal(v, before[k])


# ----------------------------------------------------------------------------------------------
# 6. Corrupt and hostile files
# ----------------------------------------------------------------------------------------------
def _saved(tmp_path, model=None):
    model = model or pn.PLRNN("standard", M=4, N=2, seed=0)
    path = tmp_path / "model.npz"
    model.save(path)
    return model, path, path.read_bytes()


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_flipped_byte_loads_identically_or_raises_one_valueerror(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("flip")
    model, path, raw = _saved(tmp)
    pos = data.draw(st.integers(0, len(raw) - 1))
    bit = data.draw(st.integers(0, 7))
    damaged = bytearray(raw)
    damaged[pos] ^= 1 << bit
    path.write_bytes(bytes(damaged))
    try:
        loaded = pn.load(path)
    except ValueError as exc:
        assert str(path) in str(exc)
        return
    assert loaded.config == model.config
    for k in model.keys():
        np.testing.assert_array_equal(loaded[k], model[k])


@pytest.mark.parametrize("flag", [0x01, 0x20, 0x40])  # encrypted, patched data, strong encryption
def test_zip_flag_bits_of_a_member_raise_one_valueerror(tmp_path, flag):
    """Flipped flag bits make zipfile raise RuntimeError / NotImplementedError: one ValueError instead."""
    _, path, raw = _saved(tmp_path)
    damaged = bytearray(raw)
    at = raw.index(b"PK\x01\x02")  # the first central-directory entry; its flag bits at offset 8
    damaged[at + 8] |= flag
    path.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="model.npz"):
        pn.load(path)


def _npz_with(members: dict) -> bytes:
    """A .npz archive whose members are given as raw .npy bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data)
    return buf.getvalue()


def _npy(arr) -> bytes:
    f = io.BytesIO()
    np.lib.format.write_array(f, np.asarray(arr))
    return f.getvalue()


def _npy_header_only(shape, dtype="<f8") -> bytes:
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": dtype, "fortran_order": False, "shape": shape})
    return f.getvalue()


def _hostile_model_members(which: str) -> dict:
    model = pn.PLRNN("standard", M=4, N=2, seed=0)
    if which == "shape":  # the configuration is fine, one header declares 10**10 entries
        members = {"__format__": _npy("plrnn_native.model/1"), "__config__": _npy(json.dumps(model.config))}
        members.update({f"param_{k}": _npy(v) for k, v in model.items()})
        members["param_W"] = _npy_header_only((10**5, 10**5)) + b"\0" * 64
        return members
    config = dict(model.config, M=10**6)  # the configuration itself declares a huge model
    return {"__format__": _npy("plrnn_native.model/1"), "__config__": _npy(json.dumps(config)),
            "param_W": _npy_header_only((10**6, 10**6)) + b"\0" * 64}


@pytest.mark.parametrize("which", ["shape", "config"])
def test_a_file_declaring_a_huge_array_is_refused_before_allocating(tmp_path, which):
    path = tmp_path / "hostile.npz"
    path.write_bytes(_npz_with(_hostile_model_members(which)))
    assert path.stat().st_size < 4096
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=re.escape(str(path))):
            pn.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20


@pytest.mark.parametrize("damage", ["truncated", "not-zip", "extra-member", "missing-member", "object-array",
                                    "wrong-dtype", "nan", "bad-json", "config-list", "bad-config"])
def test_damaged_model_files_raise_one_valueerror_naming_the_path(tmp_path, damage):
    model, path, raw = _saved(tmp_path)
    members = {"__format__": _npy("plrnn_native.model/1"), "__config__": _npy(json.dumps(model.config))}
    members.update({f"param_{k}": _npy(v) for k, v in model.items()})
    if damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "not-zip":
        path.write_bytes(b"hello" * 100)
    else:
        if damage == "extra-member":
            members["param_X"] = _npy(np.zeros(3))
        elif damage == "missing-member":
            del members["param_A"]
        elif damage == "object-array":
            f = io.BytesIO()
            np.lib.format.write_array(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
            members["param_A"] = f.getvalue()
        elif damage == "wrong-dtype":
            members["param_A"] = _npy(model["A"].astype(np.float32))
        elif damage == "nan":
            members["param_A"] = _npy(np.full(4, np.nan))
        elif damage == "bad-json":
            members["__config__"] = _npy("{not json")
        elif damage == "config-list":
            members["__config__"] = _npy("[1, 2]")
        elif damage == "bad-config":
            members["__config__"] = _npy(json.dumps(dict(model.config, M="four")))
        path.write_bytes(_npz_with(members))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        pn.load(path)


def test_damaged_supervised_model_files_raise_one_valueerror(tmp_path):
    net = pn.SupervisedPLRNN("standard", M=4, K=1, O=2, seed=0)
    path = tmp_path / "net.npz"
    net.save(path)
    loaded = pn.SupervisedPLRNN.load(path)
    for k in net.keys():
        np.testing.assert_array_equal(loaded[k], net[k])
    with zipfile.ZipFile(path) as z:
        members = {n[:-4]: z.read(n) for n in z.namelist()}
    members["param_B"] = _npy_header_only((2, 10**9)) + b"\0" * 16
    path.write_bytes(_npz_with(members))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        pn.SupervisedPLRNN.load(path)
    members["param_B"] = _npy(np.zeros((2, 4)))
    members["__config__"] = _npy(json.dumps(dict(net.config, O=0)))
    path.write_bytes(_npz_with(members))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*O"):
        pn.SupervisedPLRNN.load(path)


@pytest.mark.parametrize("damage", ["flip", "truncated", "missing-moment", "meta-types", "huge-header"])
def test_damaged_checkpoints_raise_one_valueerror_naming_the_path(tmp_path, damage):
    x = np.random.default_rng(0).standard_normal((100, 2))
    trainer = Trainer(pn.PLRNN("standard", M=4, N=2, seed=0), x,
                      config=TrainConfig(epochs=1, seq_len=10, batch_size=2, batches_per_epoch=2))
    trainer.train()
    path = tmp_path / "checkpoint.npz"
    trainer.save_checkpoint(path)
    Trainer.resume(path, x)  # intact: fine
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as z:
        members = {n[:-4]: z.read(n) for n in z.namelist()}
    if damage == "flip":
        info = zipfile.ZipFile(path).getinfo("param_W.npy")
        damaged = bytearray(raw)
        damaged[info.header_offset + 30 + len("param_W.npy") + 130] ^= 0x10  # inside W's data
        path.write_bytes(bytes(damaged))
    elif damage == "truncated":
        path.write_bytes(raw[:-100])
    else:
        if damage == "missing-moment":
            del members["adam_v_A"]
        elif damage == "meta-types":
            meta = json.loads(str(np.load(io.BytesIO(members["__meta__"]))))
            meta["epoch"] = "one"
            members["__meta__"] = _npy(json.dumps(meta))
        elif damage == "huge-header":
            members["adam_m_W"] = _npy_header_only((10**9, 4))
        path.write_bytes(_npz_with(members))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        Trainer.resume(path, x)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_get_the_usual_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        model = pn.PLRNN("standard", M=3, N=2, seed=0)
        model.save(tmp_path / "m.npz")
        trainer = Trainer(model, np.zeros((50, 2)), config=TrainConfig(epochs=0, seq_len=10))
        trainer.save_checkpoint(tmp_path / "c.npz")
    finally:
        os.umask(old)
    for name in ("m.npz", "c.npz"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


# ----------------------------------------------------------------------------------------------
# 7. Exceptions of the right kind, naming the argument
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, arg", [
    ({"betas": (1.0, 0.999)}, "betas[0]"),
    ({"betas": (0.9, 1.0)}, "betas[1]"),
    ({"betas": (0.9, -0.1)}, "betas[1]"),
    ({"betas": 0.9}, "betas"),
    ({"betas": "ab"}, "betas"),
    ({"betas": (0.9, 0.99, 0.9)}, "betas"),
    ({"betas": (0.9, float("nan"))}, "betas[1]"),
    ({"adaptive_alpha": "yes"}, "adaptive_alpha"),
    ({"mar_fraction": 0.0}, "mar_fraction"),
    ({"mar_fraction": 1.5}, "mar_fraction"),
    ({"mar_select": "middle"}, "mar_select"),
    ({"lr": float("inf")}, "lr"),
    ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"tau": 0}, "tau"),
], ids=lambda v: str(v))
def test_train_config_validates_every_hyperparameter(kwargs, arg):
    with pytest.raises(BAD, match=re.escape(arg)):
        TrainConfig(**kwargs)


def test_supervised_config_betas_name_the_argument():
    with pytest.raises(ValueError, match=re.escape("betas[0]")):
        pn.SupervisedConfig(betas=(1.0, 0.5))
    with pytest.raises(ValueError, match=named("betas")):
        pn.SupervisedConfig(betas=1)


@pytest.mark.parametrize("bad", [-1, 1.5, "0", [1, 2], True, np.float64(1.0)])
def test_bad_seeds_and_rngs_name_the_argument(bad):
    with pytest.raises(BAD, match=named("seed")):
        pn.PLRNN("standard", M=3, N=2, seed=bad)
    with pytest.raises(BAD, match=named("seed")):
        pn.SupervisedPLRNN("standard", M=3, K=1, O=1, seed=bad)
    model = pn.PLRNN("standard", M=3, N=2, seed=0)
    with pytest.raises(BAD, match=named("rng")):
        model.generate(5, z0=np.zeros(3), noise_std=0.1, rng=bad)
    with pytest.raises(BAD, match=named("seed")):
        analysis.fixed_points(model, method="scyfi", seed=bad)
    with pytest.raises(BAD, match=named("seed")):
        analysis.cycles(model, 2, method="scyfi", seed=bad)


# ----------------------------------------------------------------------------------------------
# 8. The private binding checks types before every cast
# ----------------------------------------------------------------------------------------------
def test_binding_rejects_lists_where_arrays_belong_instead_of_crashing():
    code = """
        import numpy as np
        from plrnn_native import _core
        J0, b, U, V = np.eye(2), np.zeros(2), np.eye(2), np.eye(2)
        slopes, icpt = [np.array([0.0, 1.0])] * 2, [np.zeros(2)] * 2
        def fp(bp, sl):
            return _core.fixed_points_exhaustive(J0, b, U, V, bp, sl, icpt)
        std, shallow = {"kind": "standard", "M": 2, "N": 1}, {"kind": "shallow", "M": 3, "N": 2, "hidden": 2}
        cases = {
            "breakpoints": lambda: fp([[0.0], [0.0]], slopes),
            "slopes": lambda: fp([np.zeros(1)] * 2, [[0.0, 1.0]] * 2),
            "cycles": lambda: _core.cycles_exhaustive(J0, b, U, V, [[0.0], 5], slopes, icpt, 2),
            "kind": lambda: _core.param_shapes({"kind": 3, "M": 3, "N": 2}),
            "M": lambda: _core.param_shapes(dict(std, M="3")),
            "clipped": lambda: _core.param_shapes(dict(shallow, clipped="no")),
            "A": lambda: _core.generate(std, {"A": [1.0, 2.0]}, np.zeros((1, 2)), 3),
        }
        for name, call in cases.items():
            try:
                call()
                print(name, "accepted")
            except TypeError as e:
                print(name, "TypeError", name in str(e) or "breakpoints" in str(e) or "slopes" in str(e)
                      or "breakpoints[1]" in str(e))
        """
    proc = run_python(code, timeout=60)
    assert proc.returncode == 0, f"crashed with {proc.returncode}: {proc.stderr[-500:]}"
    lines = proc.stdout.strip().split("\n")
    assert lines == [f"{n} TypeError True" for n in
                     ["breakpoints", "slopes", "cycles", "kind", "M", "clipped", "A"]], lines


@pytest.mark.parametrize("key, value", [("M", 10**30), ("N", -(10**30)), ("hidden", 2**63)])
def test_binding_refuses_out_of_range_sizes_naming_them(key, value):
    cfg = {"kind": "shallow", "M": 3, "N": 2, "hidden": 2}
    with pytest.raises(ValueError, match=named(key)):
        _core.param_shapes(dict(cfg, **{key: value}))
    if key == "M":
        with pytest.raises(ValueError, match=named("M")):
            pn.PLRNN("standard", M=value, N=2)


@pytest.mark.skipif(not pn.cuda.is_built(), reason="the CUDA module is not built")
def test_cuda_binding_checks_types_before_casts():
    _cuda = pn.cuda._cuda  # the built module (or the emulated one)

    model = pn.PLRNN("standard", M=3, N=2, seed=0)
    with pytest.raises(TypeError, match=named("mar_units")):
        _cuda.Trainer(model.config, model.params, [np.zeros((10, 2))], [None], [None], 2, 5, "none", 1, 0.0,
                            0.0, "adam", 0.9, 0.999, 1e-8, 0.0, 0, [0, 1], 1.0, "sum", 0)
    # the scalar type of a call is the dtype of its main array (bindings/model_api.h), as on the CPU
    with pytest.raises(TypeError, match=named("dtype")):
        _cuda.rollout(model.config, model.params, np.zeros((1, 3, 2), dtype=np.int64), device=0)
