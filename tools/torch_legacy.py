"""Read a state dict saved by PyTorch's legacy (non-zip) ``torch.save`` without PyTorch.

Development and test tool (``tools/convert_minifasnet.py``, ``tests/test_liveness.py``);
the app never reads ``.pth`` files. The legacy format is a sequence of pickles:

1. the magic number ``0x1950a86a20f9469cfc6c``, 2. the protocol version (1001),
3. system information (byte order, type sizes), 4. the object itself, in which every
tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` and
every storage a persistent id ``('storage', torch.FloatStorage, key, location, numel,
view)``, 5. the sorted list of storage keys; then, for each key in that order, the
storage's element count as a little-endian int64 followed by its raw little-endian bytes.

Only the globals a state dict needs are resolved (``collections.OrderedDict``, the
tensor rebuild function and the storage classes); anything else raises
:class:`pickle.UnpicklingError`, so a hostile file cannot run code.
"""

from __future__ import annotations

import collections
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

#: torch storage class name -> numpy dtype (little-endian).
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    name: str


@dataclass
class _Storage:
    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass
class _LazyTensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    extra: tuple = field(default=())

    def materialize(self) -> np.ndarray:
        if self.storage.data is None:
            raise pickle.UnpicklingError(f"storage {self.storage.key} was never read")
        if not self.size:
            return self.storage.data[self.offset].copy()
        itemsize = self.storage.dtype.itemsize
        if min(self.size) < 0 or min(self.stride) < 0 or self.offset < 0:
            raise pickle.UnpicklingError(f"tensor of storage {self.storage.key}: negative size, stride or offset")
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True)) if min(self.size) else -1
        if last >= len(self.storage.data):
            raise pickle.UnpicklingError(f"tensor of storage {self.storage.key} reaches past its {len(self.storage.data)} elements")
        view = np.lib.stride_tricks.as_strided(
            self.storage.data[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride])
        return np.array(view, copy=True)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *extra):
    return _LazyTensor(storage, int(storage_offset), tuple(size), tuple(stride), extra)


class _Unpickler(pickle.Unpickler):
    def __init__(self, handle: BinaryIO, storages: dict[str, _Storage]):
        super().__init__(handle)
        self._storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a state dict")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        view = pid[5] if len(pid) > 5 else None
        if view is not None:
            raise pickle.UnpicklingError(f"storage views are not supported ({key})")
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unexpected storage type {storage_type!r}")
        storage = self._storages.get(key)
        if storage is None:
            storage = self._storages[key] = _Storage(key, STORAGE_DTYPES[storage_type.name], int(numel))
        return storage


def _restricted_load(handle: BinaryIO):
    return _Unpickler(handle, {}).load()


def _materialize(value):
    if isinstance(value, _LazyTensor):
        return value.materialize()
    if isinstance(value, dict):
        return type(value)((key, _materialize(item)) for key, item in value.items())
    if isinstance(value, list | tuple):
        return type(value)(_materialize(item) for item in value)
    return value


def load_state_dict(path: str | Path) -> collections.OrderedDict[str, np.ndarray]:
    """The state dict in the legacy ``.pth`` file at ``path``: name -> numpy array (a copy,
    float32 for ``FloatStorage``, int64 for ``LongStorage``, in PyTorch's own shape)."""
    with open(path, "rb") as handle:
        magic = _restricted_load(handle)
        if magic != MAGIC_NUMBER:
            raise pickle.UnpicklingError(f"{path}: not a legacy PyTorch file (magic {magic!r})")
        protocol = _restricted_load(handle)
        if protocol != PROTOCOL_VERSION:
            raise pickle.UnpicklingError(f"{path}: protocol version {protocol!r}, expected {PROTOCOL_VERSION}")
        info = _restricted_load(handle)
        if not (isinstance(info, dict) and info.get("little_endian", False)):
            raise pickle.UnpicklingError(f"{path}: only little-endian files are supported ({info!r})")
        storages: dict[str, _Storage] = {}
        obj = _Unpickler(handle, storages).load()
        keys = _restricted_load(handle)
        if sorted(keys) != sorted(storages):
            raise pickle.UnpicklingError(f"{path}: the storage list does not match the tensors")
        for key in keys:
            storage = storages[key]
            count = int(np.frombuffer(handle.read(8), "<i8")[0])
            if count != storage.numel:
                raise pickle.UnpicklingError(f"{path}: storage {key} holds {count} elements, expected {storage.numel}")
            raw = handle.read(count * storage.dtype.itemsize)
            if len(raw) != count * storage.dtype.itemsize:
                raise pickle.UnpicklingError(f"{path}: truncated in storage {key}")
            storage.data = np.frombuffer(raw, storage.dtype)
        if handle.read(1):
            raise pickle.UnpicklingError(f"{path}: trailing bytes after the last storage")
    state = _materialize(obj)
    if not isinstance(state, dict):
        raise pickle.UnpicklingError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return collections.OrderedDict(state)
