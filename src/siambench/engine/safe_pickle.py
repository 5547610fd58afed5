"""Unpickling files that hold only arrays and plain containers.

A pickle can name any importable function and call it while loading, so an
untrusted pickle is read with an unpickler that resolves a short allowlist of
globals (numpy's array and scalar reconstruction, latin-1 byte strings) and
refuses every other name before anything runs. Readers that need a few more
names (stand-ins for library classes the files reference) pass them in; the
stand-ins are plain data holders, so no code of the library or of the file is
executed.

A pickle can also ask for memory: ``numpy.ndarray((N,), dtype)`` allocates
N elements whatever the file's size, and an object array fills them. So
object dtypes are refused outright, and under :func:`array_limit` an array
may not declare more bytes than the file holds (a real array's data is in
the file).
"""

from __future__ import annotations

import _compat_pickle
import codecs
import pickle
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

try:
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct, scalar


_ARRAY_LIMIT: ContextVar[int | None] = ContextVar("array_limit", default=None)


@contextmanager
def array_limit(nbytes: int | None):
    """Refuse, while active, any numpy array that declares more than ``nbytes`` (the size of the file read)."""
    token = _ARRAY_LIMIT.set(nbytes)
    try:
        yield
    finally:
        _ARRAY_LIMIT.reset(token)


def _checked_dtype(dtype) -> np.dtype:
    if not isinstance(dtype, np.dtype):
        raise pickle.UnpicklingError(f"refused a numpy array whose dtype is a {type(dtype).__name__}")
    if dtype.hasobject:
        raise pickle.UnpicklingError(
            f"refused a numpy array of dtype {dtype}: object arrays hold Python objects, not numbers")
    return dtype


def _checked_shape(shape, dtype: np.dtype) -> None:
    """An array may not declare more bytes than the file it comes from holds (its data must be in the file)."""
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    count = 1
    for d in dims:
        if not isinstance(d, (int, np.integer)) or d < 0:
            raise pickle.UnpicklingError(f"refused a numpy array of shape {dims!r}")
        count *= int(d)
    limit = _ARRAY_LIMIT.get()
    if limit is not None and count * dtype.itemsize > limit:
        raise pickle.UnpicklingError(
            f"refused a numpy array of shape {dims!r} and dtype {dtype}: it declares {count * dtype.itemsize} "
            f"bytes, more than the whole file ({limit} bytes) can hold")


def _dtype(*args):
    """``numpy.dtype(...)`` as pickles rebuild it; object dtypes are refused."""
    return _checked_dtype(np.dtype(*args))


def _ndarray(shape, dtype=float, *args, **kwargs):
    """``numpy.ndarray(shape, dtype)``: allocates what it declares, so the declaration is checked first."""
    dtype = _checked_dtype(np.dtype(dtype))
    _checked_shape(shape, dtype)
    return np.ndarray(shape, dtype, *args, **kwargs)


def _array_reconstruct(subtype, shape, dtype):
    """numpy's ``_reconstruct`` (the first step of every pickled array), for plain ndarrays only."""
    if subtype is not np.ndarray and subtype is not _ndarray:  # the pickle names numpy.ndarray, resolved above
        raise pickle.UnpicklingError(f"refused to rebuild a numpy array as {subtype!r}")
    checked = _checked_dtype(np.dtype(dtype))
    _checked_shape(shape, checked)
    return _reconstruct(np.ndarray, shape, dtype)


def _scalar(dtype, *args):
    return scalar(_checked_dtype(dtype), *args)


def _frombuffer(buf, dtype, shape, order):
    """How protocol-5 pickles rebuild an array: a view of bytes that are in the file."""
    return np.frombuffer(buf, dtype=_checked_dtype(dtype)).reshape(shape, order=order)


def _latin1_encode(text, encoding="latin1", errors="strict"):
    """``_codecs.encode`` as protocol-2 pickles use it for ``bytes``; any other codec is refused."""
    if codecs.lookup(encoding).name != "iso8859-1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1", errors)


NUMPY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _array_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _array_reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): _ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _latin1_encode,
}

ARRAY_RECONSTRUCTORS = (_array_reconstruct, _reconstruct)  # a pickle can name only the first


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays; refuses every other global.

    ``allowed`` adds exact ``(module, name)`` entries; ``resolve(module, name)``
    may return a stand-in for names matched by a rule (or ``None`` to refuse).
    """

    def __init__(self, file, *, allowed: Mapping[tuple[str, str], Any] | None = None,
                 resolve: Callable[[str, str], Any] | None = None, **kwargs):
        super().__init__(file, **kwargs)
        self._allowed = {**NUMPY_GLOBALS, **(allowed or {})}
        self._resolve = resolve

    def find_class(self, module: str, name: str):
        # Protocol-2 pickles carry Python 2 module names (copy_reg, __builtin__); these never clash with Python 3's.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        found = self._allowed.get((module, name))
        if found is None and self._resolve is not None:
            found = self._resolve(module, name)
        if found is None:
            raise pickle.UnpicklingError(f"refused to load global {module}.{name}")
        return found


def restricted_load(file, **kwargs) -> Any:
    """Load one pickle from an open binary file with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(file, **kwargs).load()
