"""Unpickling files that hold only arrays and plain containers.

A pickle can name any importable function and call it while loading, so an
untrusted pickle is read with an unpickler that resolves a short allowlist of
globals (numpy's array and scalar reconstruction, latin-1 byte strings) and
refuses every other name before anything runs. Readers that need a few more
names (stand-ins for library classes the files reference) pass them in; the
stand-ins are plain data holders, so no code of the library or of the file is
executed.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import pickle
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

try:
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct, scalar


def _latin1_encode(text, encoding="latin1", errors="strict"):
    """``_codecs.encode`` as protocol-2 pickles use it for ``bytes``; any other codec is refused."""
    if codecs.lookup(encoding).name != "iso8859-1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1", errors)


NUMPY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): scalar,
    ("numpy._core.multiarray", "scalar"): scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}

ARRAY_RECONSTRUCTORS = (_reconstruct,)


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
