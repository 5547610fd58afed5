"""``torch.save`` files read with a restricted unpickler instead of torch's weights-only one.

``torch.load`` does the container work (the zip archive or the legacy
stream, storages, memory mapping, byte order); the pickle inside is read by
:class:`TorchUnpickler`, passed as ``pickle_module``. It is Python's own C
unpickler, so every pickle protocol (2–5) reads, with a closed allowlist:
torch's tensor rebuild functions, dtypes and sizes, plain containers,
numpy arrays (checked, see :mod:`~siambench.engine.safe_pickle`) and the
inert stand-ins of :mod:`.standins`. Each global is decided once, as the
unpickler meets it, so a file is read in one pass whatever it names.

Storages are checked before torch allocates them: a storage may not
declare more bytes than its zip entry holds (or, in a legacy stream, than
the file holds), so a small file cannot ask for gigabytes.
"""

from __future__ import annotations

import functools
import pickle
import types
import warnings
from collections import Counter, OrderedDict
from pathlib import Path

import torch

from ..engine.safe_pickle import RestrictedUnpickler, array_limit
from .standins import standin


class Refused(pickle.UnpicklingError):
    """The file asked for something a checkpoint has no reason to contain; the message says what."""


def _no_hooks(hooks) -> None:
    if hooks:
        raise Refused("a tensor carries backward hooks, which a checkpoint has no reason to contain")


def _storage(storage) -> None:
    if not isinstance(storage, torch.storage.TypedStorage):
        raise Refused(f"a tensor is rebuilt from a {type(storage).__name__} instead of a storage of the file")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    _storage(storage)
    _no_hooks(backward_hooks)
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, OrderedDict(),
                                           metadata)


def _rebuild_tensor(storage, storage_offset, size, stride):
    _storage(storage)
    return torch._utils._rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    _no_hooks(backward_hooks)
    if not isinstance(data, torch.Tensor):
        raise Refused(f"a parameter is rebuilt from a {type(data).__name__}")
    return torch.nn.Parameter(data, requires_grad)


_REBUILDERS = (_rebuild_tensor_v2, _rebuild_tensor, _rebuild_parameter)


class _TensorClass:
    """What the file gets for ``torch.Tensor``: a name to pass to the rebuilders, never a constructor to call."""

    def __init__(self, *args, **kwargs):
        raise Refused("it calls torch.Tensor(...) to allocate a tensor instead of reading one from the file")


def _rebuild_from_type_v2(func, new_type, args, state):
    """A tensor with attributes or of a subclass: the plain tensor; the attributes are dropped."""
    if func not in _REBUILDERS or new_type not in (_TensorClass, torch.nn.Parameter):
        raise Refused(f"a tensor is rebuilt by {getattr(func, '__name__', func)!r} as {new_type!r}")
    return func(*args)


def _bytearray(data=b"", *args):
    if not isinstance(data, (bytes, str)):
        raise Refused("bytearray is asked to allocate memory instead of copying data from the file")
    return bytearray(data, *args)


@functools.cache
def torch_globals() -> dict[tuple[str, str], object]:
    """Every torch and container global a torch.save names, mapped to what rebuilds it (numpy's are
    :class:`RestrictedUnpickler`'s own). Built once: every load's unpickler copies it."""
    found = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("torch", "Tensor"): _TensorClass,
        ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
        ("collections", "OrderedDict"): OrderedDict,
        ("collections", "Counter"): Counter,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "complex"): complex,
        ("builtins", "bytearray"): _bytearray,
    }
    for name in dir(torch):
        if isinstance(getattr(torch, name, None), torch.dtype):
            found[("torch", name)] = getattr(torch, name)
    return found


class TorchUnpickler(RestrictedUnpickler):
    """The unpickler ``torch.load`` runs: allowlisted globals, stand-ins recorded, storages checked."""

    state: _LoadState  # set on the subclass made for each load

    def __init__(self, file, **kwargs):
        super().__init__(file, allowed=torch_globals(), resolve=self.state.resolve, **kwargs)

    def persistent_load(self, pid):
        # torch assigns its own persistent_load after construction; it lands in the instance dict.
        self.state.check_storage(pid)
        return self.__dict__["persistent_load"](pid)


class _LoadState:
    def __init__(self, path: Path, size: int, entries: dict[str, int] | None):
        self.path, self.size, self.entries = path, size, entries
        self.standins: set[str] = set()
        self.declared: dict[str, int] = {}

    def resolve(self, module: str, name: str):
        found = standin(module, name)
        if found is None:
            raise Refused(f"besides tensors it asks the unpickler for {module}.{name}, which a checkpoint has no "
                          f"reason to contain (only tensors, numpy arrays, plain containers and a few metadata "
                          f"classes are admitted)")
        self.standins.add(f"{module}.{name}")
        return found

    def check_storage(self, pid) -> None:
        if not isinstance(pid, tuple) or not pid or pid[0] not in ("storage", b"storage") or len(pid) < 5:
            raise Refused(f"it holds a persistent object {str(pid)[:80]} other than a tensor storage (a pickled "
                          f"module or a custom object)")
        storage_type, key, numel = pid[1], str(pid[2]), pid[4]
        dtype = getattr(storage_type, "dtype", torch.uint8)
        if not isinstance(numel, int) or numel < 0 or not isinstance(dtype, torch.dtype):
            raise Refused(f"storage {key} is declared as {numel!r} elements of {storage_type!r}")
        nbytes = numel * torch._utils._element_size(dtype)
        if self.entries is not None:
            held = self.entries.get(key)
            if held is None:
                raise Refused(f"storage {key} has no data/{key} entry in the archive")
            if nbytes > held:
                raise Refused(f"storage {key} declares {nbytes} bytes but its archive entry holds {held}: the file "
                              f"is truncated or damaged, or crafted")
        elif key not in self.declared:
            self.declared[key] = nbytes
            total = sum(self.declared.values())
            if total > self.size:
                raise Refused(f"its storages declare {total} bytes, more than the whole file ({self.size} bytes) "
                              f"holds: the file is truncated or damaged, or crafted")


def load(path: Path, size: int, entries: dict[str, int] | None, mmap: bool):
    """``(object, stand-in names)`` of a torch.save file; ``entries``: storage key → bytes of its zip entry."""
    state = _LoadState(path, size, entries)
    unpickler = type("TorchUnpickler", (TorchUnpickler,), {"state": state})

    def load_one(file, **kwargs):
        return unpickler(file, **kwargs).load()

    module = types.SimpleNamespace(__name__="siambench_restricted_pickle", Unpickler=unpickler, load=load_one)
    with warnings.catch_warnings(), array_limit(size):
        warnings.simplefilter("ignore")
        obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=module, mmap=mmap)
    return obj, sorted(state.standins)

