"""File helpers shared by model files and training checkpoints."""

from __future__ import annotations

import os
import tempfile
from typing import Union

import numpy as np


def atomic_savez(path: Union[str, os.PathLike], **arrays) -> None:
    """``numpy.savez`` to a temporary file in the target folder, then an atomic rename: an
    interrupted write never leaves a truncated file in place of a good one."""
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(suffix=".npz.tmp", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
