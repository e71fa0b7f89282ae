"""Recordings: load_recordings (files, folders, archives, NaN as missing, inputs, pooled z-scoring,
bad files) and split_series."""

from __future__ import annotations

import io
import os
import time
import zipfile

import numpy as np
import pytest
from plrnn_native import data as D
from plrnn_native.recordings import load_recordings, split_series


def _series(T, N=3, seed=0, offset=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    t = np.arange(T) * 0.1
    x = np.stack([np.sin(t * (1 + j) + seed) for j in range(N)], axis=1)
    return offset + scale * (x + 0.1 * rng.standard_normal((T, N)))


def _pooled(raws):
    allx = np.concatenate(raws)
    return np.nanmean(allx, axis=0), np.nanstd(allx, axis=0)


# ----------------------------------------------------------------------------------------------
# Sources
# ----------------------------------------------------------------------------------------------
def test_single_npy_equals_load_timeseries(tmp_path):
    x = _series(200, 3, offset=2.0, scale=3.0)
    np.save(tmp_path / "rec.npy", x)
    (ts,) = load_recordings(tmp_path / "rec.npy", dt=0.25)
    ref = D.load_timeseries(tmp_path / "rec.npy", dt=0.25)
    np.testing.assert_allclose(ts.x, ref.x, rtol=0, atol=1e-14)
    np.testing.assert_allclose(ts.mean, ref.mean, rtol=1e-15)
    np.testing.assert_allclose(ts.std, ref.std, rtol=1e-15)
    np.testing.assert_allclose(ts.x, (x - x.mean(0)) / x.std(0), atol=1e-14)
    assert ts.dt == 0.25 and ts.name == "rec" and ts.s is None
    assert ts.meta["path"] == os.fspath(tmp_path / "rec.npy")
    assert ts.missing is False and ts.missing_fraction == 0.0
    raw = load_recordings(str(tmp_path / "rec.npy"), zscore=False)[0]
    np.testing.assert_array_equal(raw.x, x)
    assert raw.mean is None and raw.std is None
    np.save(tmp_path / "one.npy", x[:, 0].astype(np.float32))  # [T] -> [T, 1], any real dtype
    one = load_recordings(tmp_path / "one.npy", zscore=False)[0]
    assert one.x.shape == (200, 1) and one.x.dtype == np.float64
    np.testing.assert_array_equal(one.x[:, 0], x[:, 0].astype(np.float32))


def test_several_files_of_different_lengths(tmp_path):
    raws = [_series(120, 2, seed=1), _series(75, 2, seed=2, offset=1.0), _series(300, 2, seed=3)]
    paths = []
    for i, r in enumerate(raws):
        paths.append(tmp_path / f"s{i}.npy")
        np.save(paths[-1], r)
    out = load_recordings(paths, dt=0.01)
    assert [ts.T for ts in out] == [120, 75, 300]
    assert [ts.name for ts in out] == ["s0", "s1", "s2"]
    mean, std = _pooled(raws)
    for ts, r in zip(out, raws):
        np.testing.assert_allclose(ts.x, (r - mean) / std, atol=1e-13)
        np.testing.assert_allclose(ts.mean, mean, rtol=1e-14)
        assert ts.dt == 0.01
    # pooled, not per-series: the stacked z-scored data have mean 0 and std 1, one series alone not
    stacked = np.concatenate([ts.x for ts in out])
    np.testing.assert_allclose(stacked.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(stacked.std(0), 1, atol=1e-12)
    assert abs(out[1].x.mean()) > 0.1


def test_folder_sorted_and_mixed_formats(tmp_path):
    raws = {"b": _series(60, 2, seed=1), "a": _series(80, 2, seed=2), "c": _series(50, 2, seed=3)}
    np.save(tmp_path / "b.npy", raws["b"])
    np.savetxt(tmp_path / "a.csv", raws["a"], delimiter=",", fmt="%.17g", header="u,v", comments="")
    np.savez(tmp_path / "c.npz", only=raws["c"])
    (tmp_path / "notes.txt").write_text("ignored")
    out = load_recordings(tmp_path, zscore=False)
    assert [ts.name for ts in out] == ["a", "b", "c:only"]
    for ts, key in zip(out, "abc"):
        np.testing.assert_array_equal(ts.x, raws[key])
    # a folder and a file together, in the order given
    np.save(tmp_path.parent / "extra.npy", raws["a"])
    out = load_recordings([tmp_path.parent / "extra.npy", tmp_path], zscore=False)
    assert [ts.name for ts in out] == ["extra", "a", "b", "c:only"]


def test_npz_with_several_ragged_arrays(tmp_path):
    arrs = {"trial1": _series(90, 3, seed=1), "trial2": _series(40, 3, seed=2),
            "trial3": _series(150, 3, seed=3)}
    arrs["trial2"][5:9, 2] = np.nan
    np.savez_compressed(tmp_path / "sess.npz", **arrs)
    out = load_recordings(tmp_path / "sess.npz")
    assert [ts.name for ts in out] == ["sess:trial1", "sess:trial2", "sess:trial3"]
    assert [ts.T for ts in out] == [90, 40, 150]
    mean, std = _pooled(list(arrs.values()))
    for ts, r in zip(out, arrs.values()):
        np.testing.assert_allclose(ts.x, (r - mean) / std, atol=1e-13)
        np.testing.assert_array_equal(np.isnan(ts.x), np.isnan(r))
    assert out[1].missing and not out[0].missing
    assert out[1].missing_fraction == pytest.approx(4 / (40 * 3))


def test_csv_empty_fields_are_missing(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("a,b,c\n1,2,3\n4,,6\n,8,9\n10,11,\n13,14,15\nnan,17,18\n")
    (ts,) = load_recordings(p, zscore=False)
    want = np.array([[1, 2, 3], [4, np.nan, 6], [np.nan, 8, 9], [10, 11, np.nan], [13, 14, 15],
                     [np.nan, 17, 18]])
    np.testing.assert_array_equal(ts.x, want)
    assert ts.missing and ts.missing_fraction == pytest.approx(4 / 18)
    z = load_recordings(p)[0]
    np.testing.assert_allclose(z.mean, np.nanmean(want, 0), rtol=1e-15)
    np.testing.assert_allclose(z.std, np.nanstd(want, 0), rtol=1e-15)
    np.testing.assert_array_equal(np.isnan(z.x), np.isnan(want))


def test_csv_without_header_first_row_with_missing_value(tmp_path):
    """A headerless CSV whose first row has an empty field: that row is data with a missing value,
    not a header (a header of numbers would silently drop the first time step)."""
    p = tmp_path / "nohead.csv"
    p.write_text("1.5,,3\n4,5,6\n7,8,9\n")
    (ts,) = load_recordings(p, zscore=False)
    np.testing.assert_array_equal(ts.x, [[1.5, np.nan, 3], [4, 5, 6], [7, 8, 9]])


def test_pooled_zscore_is_nan_aware(tmp_path):
    a, b = _series(100, 2, seed=1, offset=5.0, scale=2.0), _series(60, 2, seed=2, offset=-1.0)
    a[::7, 0] = np.nan
    b[10:30, 1] = np.nan
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    out = load_recordings([tmp_path / "a.npy", tmp_path / "b.npy"])
    mean, std = _pooled([a, b])
    assert np.isfinite(mean).all() and np.isfinite(std).all()
    for ts, r in zip(out, (a, b)):
        np.testing.assert_allclose(ts.mean, mean, rtol=1e-14)
        np.testing.assert_allclose(ts.std, std, rtol=1e-14)
        np.testing.assert_allclose(ts.x, (r - mean) / std, atol=1e-13)
        assert ts.missing
        assert ts.missing_fraction == pytest.approx(np.isnan(r).mean())
    stacked = np.concatenate([ts.x for ts in out])
    np.testing.assert_allclose(np.nanmean(stacked, 0), 0, atol=1e-12)
    np.testing.assert_allclose(np.nanstd(stacked, 0), 1, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------
def test_inputs_aligned_with_the_data(tmp_path):
    xs = [_series(50, 2, seed=1), _series(30, 2, seed=2)]
    ss = [np.random.default_rng(i).standard_normal((len(x), 1)) for i, x in enumerate(xs)]
    for i, (x, s) in enumerate(zip(xs, ss)):
        np.save(tmp_path / f"x{i}.npy", x)
        np.save(tmp_path / f"s{i}.npy", s)
    xp = [tmp_path / "x0.npy", tmp_path / "x1.npy"]
    sp = [tmp_path / "s0.npy", tmp_path / "s1.npy"]
    out = load_recordings(xp, inputs=sp)
    for ts, s in zip(out, ss):
        np.testing.assert_array_equal(ts.s, s)  # inputs are not z-scored
        assert ts.K == 1
    with pytest.raises(ValueError, match="inputs"):  # swapped: lengths differ
        load_recordings(xp, inputs=sp[::-1])
    with pytest.raises(ValueError, match="inputs"):  # one input series for two data series
        load_recordings(xp, inputs=sp[:1])
    bad = ss[1].copy()
    bad[3, 0] = np.nan
    np.save(tmp_path / "snan.npy", bad)
    with pytest.raises(ValueError, match="inputs"):
        load_recordings(xp, inputs=[sp[0], tmp_path / "snan.npy"])
    np.save(tmp_path / "s2col.npy", np.ones((30, 2)))
    with pytest.raises(ValueError, match="inputs"):
        load_recordings(xp, inputs=[sp[0], tmp_path / "s2col.npy"])


# ----------------------------------------------------------------------------------------------
# Bad files: ValueError naming the file
# ----------------------------------------------------------------------------------------------
def _raises_naming(path, match=None, **kw):
    with pytest.raises(ValueError) as info:
        load_recordings(path, **kw)
    msg = str(info.value)
    assert os.fspath(path) in msg, f"the error does not name {path}: {msg}"
    if match:
        assert match in msg, msg
    return msg


def test_mismatched_column_counts_name_the_file(tmp_path):
    np.save(tmp_path / "a.npy", _series(40, 3))
    np.save(tmp_path / "b.npy", _series(40, 2))
    with pytest.raises(ValueError, match="column") as info:
        load_recordings(tmp_path)
    assert "b.npy" in str(info.value), str(info.value)


def test_corrupt_npy(tmp_path):
    p = tmp_path / "corrupt.npy"
    p.write_bytes(b"\x93NUMPY garbage that is not an array header" * 3)
    _raises_naming(p)
    q = tmp_path / "empty.npy"
    q.write_bytes(b"")
    _raises_naming(q)
    r = tmp_path / "truncated.npy"
    buf = io.BytesIO()
    np.save(buf, np.ones((100, 3)))
    r.write_bytes(buf.getvalue()[:-80])
    _raises_naming(r)


def test_object_and_string_arrays(tmp_path):
    p = tmp_path / "obj.npy"
    np.save(p, np.array([[1, "a"], [2, None]], dtype=object), allow_pickle=True)
    _raises_naming(p)
    q = tmp_path / "str.npy"
    np.save(q, np.array([["1", "2"], ["3", "4"]]))
    _raises_naming(q)
    c = tmp_path / "cplx.npy"
    np.save(c, np.ones((5, 2), dtype=complex))
    _raises_naming(c)
    z = tmp_path / "obj.npz"
    np.savez(z, good=np.ones((5, 2)), bad=np.array([1, None], dtype=object))
    _raises_naming(z)


def test_inf_all_nan_and_shapes(tmp_path):
    x = _series(30, 2)
    x[4, 1] = np.inf
    np.save(tmp_path / "inf.npy", x)
    _raises_naming(tmp_path / "inf.npy", "inf")
    np.save(tmp_path / "allnan.npy", np.full((30, 2), np.nan))
    _raises_naming(tmp_path / "allnan.npy", "missing")
    col = _series(30, 3)
    col[:, 1] = np.nan
    np.save(tmp_path / "nancol.npy", col)
    _raises_naming(tmp_path / "nancol.npy")
    np.save(tmp_path / "cube.npy", np.zeros((5, 3, 2)))
    _raises_naming(tmp_path / "cube.npy")
    np.save(tmp_path / "short.npy", np.zeros((1, 3)))
    _raises_naming(tmp_path / "short.npy")
    np.save(tmp_path / "scalar.npy", np.float64(1.0))
    _raises_naming(tmp_path / "scalar.npy")
    (tmp_path / "inf.csv").write_text("a,b\n1,2\n3,inf\n5,6\n")
    _raises_naming(tmp_path / "inf.csv", "inf")
    (tmp_path / "allnan.csv").write_text("a,b\n,\n,\nnan,nan\n")
    _raises_naming(tmp_path / "allnan.csv")
    (tmp_path / "text.csv").write_text("a,b\n1,2\n3,x\n")
    _raises_naming(tmp_path / "text.csv")
    np.savez(tmp_path / "arch.npz", ok=_series(20, 2), dead=np.full((20, 2), np.nan))
    msg = _raises_naming(tmp_path / "arch.npz")
    assert "dead" in msg


def test_all_nan_column_without_zscore(tmp_path):
    """The module's contract: a column with no observed value raises naming the file, whether or
    not the data are z-scored (a dead channel cannot be trained on)."""
    col = _series(30, 3)
    col[:, 2] = np.nan
    np.save(tmp_path / "deadchannel.npy", col)
    _raises_naming(tmp_path / "deadchannel.npy", zscore=False)


def test_paths_and_folders(tmp_path):
    with pytest.raises(ValueError, match="nowhere"):
        load_recordings(tmp_path / "nowhere.npy")
    empty = tmp_path / "empty"
    empty.mkdir()
    _raises_naming(empty)
    (empty / "readme.txt").write_text("no data here")
    _raises_naming(empty)
    (tmp_path / "data.mat").write_bytes(b"\x00" * 16)
    _raises_naming(tmp_path / "data.mat", "extension")
    with pytest.raises(ValueError, match="paths"):
        load_recordings([])
    np.save(tmp_path / "ok.npy", _series(20, 2))
    with pytest.raises(ValueError, match="nowhere"):
        load_recordings([tmp_path / "ok.npy", tmp_path / "nowhere.npy"])
    np.savez(tmp_path / "none.npz")
    _raises_naming(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK not a zip")
    _raises_naming(tmp_path / "junk.npz")


def _npy_bytes_with_shape(arr, shape_text):
    """The .npy bytes of ``arr`` with its header's shape replaced by ``shape_text`` (the header
    keeps its length: the padding absorbs the difference)."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr)
    raw = bytearray(buf.getvalue())
    hlen = int.from_bytes(raw[8:10], "little")
    header = raw[10:10 + hlen].decode("latin1")
    old = repr(arr.shape)
    assert old in header
    new = header.replace(old, shape_text)
    pad = len(new) - len(header)
    assert pad <= header.count(" ") - 5
    new = new.replace(" " * (pad + 1) + "\n", " \n") if pad > 0 else new
    assert len(new) == hlen, (len(new), hlen)
    raw[10:10 + hlen] = new.encode("latin1")
    return bytes(raw)


def test_npz_with_a_huge_declared_shape_fails_fast(tmp_path):
    arr = np.ones((5,), dtype=np.float64)
    blob = _npy_bytes_with_shape(arr, "(10000000000,)")
    assert np.lib.format.read_array(io.BytesIO(_npy_bytes_with_shape(arr, "(5,)"))).shape == (5,)
    p = tmp_path / "huge.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("big.npy", blob)
    t0 = time.perf_counter()
    msg = _raises_naming(p)
    assert time.perf_counter() - t0 < 2.0
    assert "big" in msg
    # the same in a compressed archive, and as a plain .npy file
    q = tmp_path / "hugez.npz"
    with zipfile.ZipFile(q, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.npy", blob)
    t0 = time.perf_counter()
    _raises_naming(q)
    assert time.perf_counter() - t0 < 2.0
    r = tmp_path / "huge.npy"
    r.write_bytes(_npy_bytes_with_shape(np.ones((5, 2)), "(10000000000, 2)"))
    t0 = time.perf_counter()
    _raises_naming(r)
    assert time.perf_counter() - t0 < 2.0


# ----------------------------------------------------------------------------------------------
# split_series
# ----------------------------------------------------------------------------------------------
def _ts_list(n, T=50):
    return [D.TimeSeries(x=_series(T + 10 * i, 2, seed=i), dt=0.1, name=f"s{i}") for i in range(n)]


def test_split_series_modes():
    five = _ts_list(5)
    train, test = split_series(five, 0.2)  # auto: >= 5 series -> whole series
    assert [t.name for t in train] == ["s0", "s1", "s2", "s3"] and [t.name for t in test] == ["s4"]
    assert test[0] is five[4]
    train, test = split_series(_ts_list(10), 0.3, mode="series")
    assert len(train) == 7 and len(test) == 3
    train, test = split_series(_ts_list(2), 0.9, mode="series")  # at least one series trains
    assert len(train) == 1 and len(test) == 1
    four = _ts_list(4)
    train, test = split_series(four, 0.2)  # auto: < 5 series -> tails
    assert len(train) == len(test) == 4
    for tr, te, full in zip(train, test, four):
        assert tr.T == round(0.8 * full.T) and tr.T + te.T == full.T
        np.testing.assert_array_equal(np.concatenate([tr.x, te.x]), full.x)
    train, test = split_series(five, 0.2, mode="tail")
    assert len(train) == len(test) == 5
    with pytest.raises(ValueError, match="series"):
        split_series(_ts_list(1), 0.2, mode="series")
    with pytest.raises(ValueError, match="test_split"):
        split_series(five, 0.2, mode="random")
    for frac in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="test_fraction"):
            split_series(five, frac)
