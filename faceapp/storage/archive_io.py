"""Reading export archives safely: member names, sizes, numbers and ``.npy`` arrays,
checked before anything is allocated or trusted (shared by :mod:`faceapp.storage.archive`
and :mod:`faceapp.storage.archive_memory`)."""

from __future__ import annotations

import io
import math
import tokenize
import zipfile
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

import numpy as np


class BadArchive(Exception):
    """Internal: the archive is invalid (message says why)."""


def check_member_name(name: str) -> None:
    p = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or "\x00" in name
        or name.startswith("/")
        or (len(name) > 1 and name[1] == ":")
        or any(part in ("..", "") for part in name.rstrip("/").split("/"))
        or p.is_absolute()
    ):
        raise BadArchive(f"unsafe member name {name!r}")


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Read a member, never more than its (already capped) declared size."""
    with zf.open(info) as f:
        data = f.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise BadArchive(f"member {info.filename!r} does not match its declared size")
    return data


def number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadArchive(f"{what} must be a finite number")
    try:
        number = float(value)
    except OverflowError:  # an integer with hundreds of digits
        raise BadArchive(f"{what} must be a finite number") from None
    if not math.isfinite(number):
        raise BadArchive(f"{what} must be a finite number")
    return number


def integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadArchive(f"{what} must be an integer")
    return value


def obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise BadArchive(f"{what} must be a JSON object")
    return value


def load_npy(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """A float32 array from a .npy member. The header is parsed and checked against the
    data's length BEFORE any array is allocated: ``np.load`` on a file object allocates
    whatever shape the header declares (a few bytes can ask for terabytes)."""
    data = read_member(zf, info)
    buf = io.BytesIO(data)
    try:
        major, _minor = np.lib.format.read_magic(buf)
        if major == 1:
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(buf)
        elif major in (2, 3):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(buf)
        else:
            raise ValueError(f"unsupported .npy version {major}")
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, KeyError, RecursionError, MemoryError,
            tokenize.TokenError) as e:
        raise BadArchive(f"{info.filename} is not a valid .npy array") from e
    if not isinstance(dtype, np.dtype) or dtype.kind != "f" or dtype.itemsize != 4 or dtype.hasobject:
        raise BadArchive(f"{info.filename} is not float32 (dtype {dtype})")
    if not isinstance(shape, tuple) or len(shape) != 2 or any(not isinstance(n, int) or n < 0 for n in shape):
        raise BadArchive(f"{info.filename} has shape {shape}, expected a 2-D array")
    count = shape[0] * shape[1]
    offset = buf.tell()
    if len(data) - offset != count * 4:
        raise BadArchive(f"{info.filename} holds {len(data) - offset} bytes of data, but its header declares {shape}")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    arr = arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
    return arr.astype("<f4")
