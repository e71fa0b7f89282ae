"""File helpers shared by model files and training checkpoints.

Writing is atomic (a temporary file renamed into place) with the usual permissions. Reading never
trusts the file: :class:`NpzReader` checks the archive, its member list and every member's header
(shape, dtype, declared and stored sizes) against what the caller expects *before* reading any
data, verifies the checksums, and turns every problem into one ``ValueError`` naming the path.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
import zipfile
import zlib
from typing import Iterable, Optional, Sequence, Tuple, Union

import numpy as np

#: Largest text member (configuration, checkpoint metadata with the training history) read.
MAX_TEXT_BYTES = 64 * 2**20
#: A deflated member may claim at most this many bytes per stored byte (deflate's limit is ~1032).
_MAX_DEFLATE_RATIO = 1100


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _atomic_file(path: Union[str, os.PathLike], suffix: str, mode: str):
    """A file object for ``path``: a temporary file in the target folder, renamed into place when the
    block ends without an exception (an interrupted write never leaves a truncated file in place of a
    good one) and removed otherwise. The file gets the permissions of a newly created file (0666 minus
    the umask, e.g. 0644), not mkstemp's 0600."""
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(suffix=suffix, dir=os.path.dirname(os.path.abspath(path)))
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_savez(path: Union[str, os.PathLike], **arrays) -> None:
    """``numpy.savez`` to ``path``, atomically (:func:`_atomic_file`)."""
    with _atomic_file(path, ".npz.tmp", "wb") as f:
        np.savez(f, **arrays)


def atomic_write_text(path: Union[str, os.PathLike], text: str) -> None:
    """``text`` to ``path`` as UTF-8, line ends as they are (no translation), atomically (:func:`_atomic_file`)."""
    with _atomic_file(path, ".tmp", "wb") as f:
        f.write(text.encode("utf-8"))


#: What reading a damaged archive can raise: besides the I/O and format errors, zipfile raises
#: RuntimeError ("password required") and NotImplementedError (unsupported flag bits, e.g. patched
#: data or strong encryption) when a flipped bit sets those flags.
_DAMAGED = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, SyntaxError, RuntimeError,
            NotImplementedError)


class NpzReader:
    """A ``.npz`` archive opened for validated reading (a context manager).

    ``NpzReader(path, what)`` opens the archive and checks its member list (``.npy`` members, no
    duplicates); :meth:`check_members` compares it with the expected names; :meth:`array` and
    :meth:`text` read one member after checking its header against the expected shape and dtype.
    Every failure is a ``ValueError`` that starts with the path.
    """

    def __init__(self, path: Union[str, os.PathLike], what: str):
        self.path = os.fspath(path)
        self.what = what
        try:
            self._size = os.path.getsize(self.path)
            self._zip = zipfile.ZipFile(self.path)
        except FileNotFoundError as exc:
            raise ValueError(f"path: {self.path!r} does not exist") from exc
        except _DAMAGED as exc:
            raise ValueError(f"path: {self.path!r} is not a readable .npz file ({exc})") from exc
        try:
            infos = self._zip.infolist()
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                self.fail("has duplicate members")
            bad = [n for n in names if not n.endswith(".npy")]
            if bad:
                self.fail(f"has members that are not arrays: {bad[:5]}")
            self._info = {i.filename[:-4]: i for i in infos}
        except BaseException:
            self._zip.close()
            raise

    def __enter__(self) -> "NpzReader":
        return self

    def __exit__(self, *exc) -> None:
        self._zip.close()

    @property
    def names(self) -> set:
        return set(self._info)

    def fail(self, problem: str, cause: Optional[BaseException] = None):
        msg = f"path: {self.path!r} ({self.what}) {problem}"
        raise ValueError(msg) from cause

    def check_members(self, required: Iterable[str], optional: Iterable[str] = ()) -> None:
        """Every required member present, nothing beyond required and optional ones."""
        required = set(required)
        missing = sorted(required - self.names)
        if missing:
            self.fail(f"lacks {', '.join(map(repr, missing))}")
        extra = sorted(self.names - required - set(optional))
        if extra:
            self.fail(f"has unexpected members {', '.join(map(repr, extra[:5]))}")

    def header(self, name: str) -> Tuple[Tuple[int, ...], np.dtype]:
        """The shape and dtype a member declares, checked for consistency with its stored size;
        no data is read."""
        if name not in self._info:
            self.fail(f"lacks {name!r}")
        info = self._info[name]
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            self.fail(f"member {name!r} uses an unsupported compression ({info.compress_type})")
        if info.compress_size > self._size:
            self.fail(f"member {name!r} claims {info.compress_size} bytes, more than the whole file")
        try:
            with self._zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError(f"unsupported .npy version {version}")
                offset = f.tell()
        except _DAMAGED as exc:
            self.fail(f"member {name!r} has a damaged header ({exc})", exc)
        if dtype.hasobject:
            self.fail(f"member {name!r} holds Python objects (not loaded: they would need pickle)")
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size != offset + nbytes:
            self.fail(f"member {name!r} declares shape {shape} of {dtype} ({nbytes} bytes) but stores "
                      f"{info.file_size - offset} bytes")
        stored_limit = info.compress_size if info.compress_type == zipfile.ZIP_STORED else \
            _MAX_DEFLATE_RATIO * info.compress_size + 1024
        if info.file_size > stored_limit:
            self.fail(f"member {name!r} claims {info.file_size} bytes, more than its {info.compress_size} "
                      f"stored bytes can hold")
        return tuple(int(n) for n in shape), dtype

    def _read(self, name: str) -> np.ndarray:
        try:
            raw = self._zip.read(self._info[name])  # verifies the CRC
            f = io.BytesIO(raw)
            arr = np.lib.format.read_array(f, allow_pickle=False)
        except _DAMAGED as exc:
            self.fail(f"member {name!r} is damaged ({exc})", exc)
        if f.tell() != len(raw):
            self.fail(f"member {name!r} has trailing bytes")
        return arr

    def array(self, name: str, shape: Sequence[int], dtype) -> np.ndarray:
        """Member ``name``, after checking that it declares exactly ``shape`` and ``dtype``."""
        got_shape, got_dtype = self.header(name)
        if got_dtype != np.dtype(dtype):
            self.fail(f"member {name!r} has dtype {got_dtype}, expected {np.dtype(dtype)}")
        if got_shape != tuple(shape):
            self.fail(f"member {name!r} has shape {got_shape}, expected {tuple(shape)}")
        return self._read(name)

    def text(self, name: str) -> str:
        """A 0-d string member (at most MAX_TEXT_BYTES)."""
        shape, dtype = self.header(name)
        if dtype.kind != "U" or shape != ():
            self.fail(f"member {name!r} is not a text entry (shape {shape}, dtype {dtype})")
        if dtype.itemsize > MAX_TEXT_BYTES:
            self.fail(f"member {name!r} is {dtype.itemsize} bytes long, more than {MAX_TEXT_BYTES}")
        return str(self._read(name)[()])

    def json(self, name: str) -> dict:
        """A text member holding a JSON object."""
        try:
            value = json.loads(self.text(name))
        except (ValueError, RecursionError) as exc:  # json.JSONDecodeError is a ValueError
            self.fail(f"member {name!r} is not valid JSON ({exc})", exc)
        if not isinstance(value, dict):
            self.fail(f"member {name!r} is not a JSON object")
        return value


def load_model_npz(path: Union[str, os.PathLike], fmt: str, what: str, factory) -> object:
    """Read a model file written with ``__format__ = fmt``, ``__config__`` (JSON) and ``param_<name>``
    arrays. ``factory._param_shapes_for(config)`` validates the configuration and names the
    parameters with their shapes (nothing allocated); every member is checked against that before
    it is read, then ``factory._from_config(config, params)`` builds the model (each parameter
    validated like an assignment). Any problem is one ValueError naming ``path``."""
    with NpzReader(path, what) as f:
        if "__format__" not in f.names or f.text("__format__") != fmt:
            f.fail(f"is not a {what} file")
        config = f.json("__config__")
        try:
            shapes, dtype = factory._param_shapes_for(config)
        except (TypeError, ValueError, RuntimeError) as exc:
            f.fail(f"has an invalid configuration ({exc})", exc)
        f.check_members(["__format__", "__config__", *(f"param_{k}" for k in shapes)])
        for k in shapes:  # every header first: nothing is read from a file that declares nonsense
            f.header(f"param_{k}")
        params = {k: f.array(f"param_{k}", shape, dtype) for k, shape in shapes.items()}
        try:
            return factory._from_config(config, params)
        except (TypeError, ValueError) as exc:
            f.fail(f"has invalid parameters ({exc})", exc)


__all__ = ["atomic_savez", "NpzReader", "load_model_npz"]
