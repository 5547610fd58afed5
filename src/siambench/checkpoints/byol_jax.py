"""BYOL's official JAX release (``pretrain_res50x1.pkl``, ``pretrain_res200x2.pkl``), read without JAX.

What the files hold (PROTOCOLS A.6): ``dill.dump(..., protocol=2)`` of
``dict(experiment_state=_ByolExperimentState(online_params, target_params,
online_state, target_state, opt_state), step=..., rng=...)``, whose params
and state are haiku mappings ``{module path: {leaf: numpy array}}``. The
exact classes pickled in the real files are not confirmed (PROTOCOLS E.1);
the names this reader maps are the ones that code path produces:

* ``dill._dill._create_array`` (dill pickles every numpy array through it)
  → numpy's own ``_reconstruct`` and ``__setstate__``, nothing else;
* ``haiku._src.data_structures.FlatMapping`` (what ``FlatMap`` and
  ``FlatMapping`` reduce to), ``FlatMap`` and the older ``frozendict``, each
  pickled as ``(class, (dict,))`` → a plain ``dict``;
* ``byol.byol_experiment._ByolExperimentState`` (or ``__main__.`` when the
  experiment ran as a script; dill's ``_create_namedtuple`` when it pickled
  the class by value) → a plain tuple with the five field names;
* ``jax._src.array._reconstruct_array`` and its older homes
  (``jax._src.device_array``, ``jax.interpreters.xla``) for a JAX array such
  as ``rng`` → the numpy array it wraps, built by numpy's own reconstructor;
* any other name under ``jax``, ``jaxlib``, ``haiku``, ``optax``, ``chex``
  or ``byol`` (optimiser-state records) → an inert record.

None of these runs library code, so neither JAX nor haiku is needed, and any
other global (``os.system``...) is refused by the unpickler.

The haiku module paths are mapped to torchvision names by their indices
(``block_group_{g}/~/block_{b}/~/conv_{i}`` → ``layer{g+1}.{b}.conv{i+1}``),
never by sorted order, which breaks for ResNet-200 where ``block_10``
sorts before ``block_2``. Convolution kernels are HWIO and become OIHW; BN
``scale``/``offset`` become ``weight``/``bias``; the ``average`` of the
``mean_ema``/``var_ema`` states become ``running_mean``/``running_var``.
The online network is used, as BYOL's own evaluation does.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

import numpy as np
import torch

from ..engine.safe_pickle import ARRAY_RECONSTRUCTORS

EXPERIMENT_FIELDS = ("online_params", "target_params", "online_state", "target_state", "opt_state")
_HAIKU_MAPPINGS = {"FlatMapping", "FlatMap", "frozendict"}
_HAIKU_MODULES = ("haiku._src.data_structures", "haiku.data_structures")
_RECORD_MODULES = ("jax", "jaxlib", "haiku", "optax", "chex", "byol")


class _PlainMapping:
    """haiku's immutable mappings, pickled as ``(class, (dict,))``, come back as plain dicts."""

    def __new__(cls, *args, **kwargs):
        return dict(args[0]) if args and isinstance(args[0], Mapping) else dict(**kwargs)


class Record(tuple):
    """An inert stand-in for a pickled NamedTuple (or any JAX/optax object): its fields, nothing run."""

    _fields: tuple[str, ...] = ()
    pickled_as = "?"

    def __new__(cls, *args, **kwargs):
        return tuple.__new__(cls, args)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.__dict__["state"] = state

    def get(self, name: str):
        return self[self._fields.index(name)] if name in self._fields[: len(self)] else None


def _record(name: str, fields=(), module: str = "") -> type:
    return type(name, (Record,), {"_fields": tuple(fields), "pickled_as": f"{module}.{name}".lstrip(".")})


def _create_namedtuple(name, fieldnames, modulename=None, defaults=None):
    """dill's by-value NamedTuple, rebuilt as a :class:`Record` class."""
    return _record(str(name), tuple(str(f) for f in fieldnames), str(modulename or ""))


def _numpy_from_dill(fun, args, state, npdict=None):
    """dill's ``_create_array``, with which dill pickles every numpy array: numpy's own reconstruction only."""
    if fun not in ARRAY_RECONSTRUCTORS:
        raise TypeError(f"a numpy array must be rebuilt by numpy's _reconstruct, not {fun!r}")
    array = fun(*args)
    array.__setstate__(state)
    return array


def _numpy_from_jax(fun, args, arr_state, aval_state=None):
    """``jax._src.array._reconstruct_array`` without the device_put: the numpy array it wraps."""
    if fun not in ARRAY_RECONSTRUCTORS:
        raise TypeError(f"a JAX array must be rebuilt by numpy's _reconstruct, not {fun!r}")
    array = fun(*args)
    array.__setstate__(arr_state)
    return array


_EXPERIMENT_STATE = _record("_ByolExperimentState", EXPERIMENT_FIELDS, "byol.byol_experiment")


def resolve_global(module: str, name: str):
    """The stand-in for a global a BYOL pickle names, or ``None`` (refused)."""
    if module in _HAIKU_MODULES and name in _HAIKU_MAPPINGS:
        return _PlainMapping
    if name == "_ByolExperimentState" and module in ("byol.byol_experiment", "__main__"):
        return _EXPERIMENT_STATE
    if module.split(".")[0] in ("jax", "jaxlib") and name == "_reconstruct_array":
        return _numpy_from_jax
    if module in ("dill._dill", "dill.dill") and name == "_create_namedtuple":
        return _create_namedtuple
    if module in ("dill._dill", "dill.dill") and name == "_create_array":
        return _numpy_from_dill
    if module.split(".")[0] in _RECORD_MODULES:
        return _record(name, (), module)
    return None


# haiku module path (after the network's root, e.g. "res_net50/~/") → torchvision module.
_MODULES = [
    (re.compile(r"^initial_conv$"), lambda m: "conv1"),
    (re.compile(r"^initial_batchnorm$"), lambda m: "bn1"),
    (re.compile(r"^block_group_(\d+)/~/block_(\d+)/~/conv_(\d+)$"),
     lambda m: f"layer{int(m[1]) + 1}.{int(m[2])}.conv{int(m[3]) + 1}"),
    (re.compile(r"^block_group_(\d+)/~/block_(\d+)/~/batchnorm_(\d+)$"),
     lambda m: f"layer{int(m[1]) + 1}.{int(m[2])}.bn{int(m[3]) + 1}"),
    (re.compile(r"^block_group_(\d+)/~/block_(\d+)/~/shortcut_conv$"),
     lambda m: f"layer{int(m[1]) + 1}.{int(m[2])}.downsample.0"),
    (re.compile(r"^block_group_(\d+)/~/block_(\d+)/~/shortcut_batchnorm$"),
     lambda m: f"layer{int(m[1]) + 1}.{int(m[2])}.downsample.1"),
]
_PARAM_LEAVES = {"w": "weight", "scale": "weight", "offset": "bias"}
_STATE_LEAVES = {"mean_ema": "running_mean", "var_ema": "running_var"}
_HEADS = {"projector": "projector", "predictor": "predictor", "classifier": "classifier, online probe (classifier)"}


def is_byol_pickle(obj) -> bool:
    if not isinstance(obj, Mapping):
        return False
    if "experiment_state" in obj or "online_params" in obj:
        return True
    return any(isinstance(k, str) and k.endswith("/~/initial_conv") for k in obj)


def _experiment_parts(obj: Mapping):
    """``(online_params, online_state, dropped, ignored)`` from the pickle's top level."""
    dropped, ignored = Counter(), []
    state = obj.get("experiment_state", obj) if isinstance(obj, Mapping) else obj
    if "experiment_state" in obj:
        ignored = [str(k) for k in obj if k != "experiment_state"]
    if isinstance(state, Record) and state._fields:
        parts = {f: state.get(f) for f in EXPERIMENT_FIELDS}
    elif isinstance(state, tuple) and len(state) == len(EXPERIMENT_FIELDS):
        parts = dict(zip(EXPERIMENT_FIELDS, state))
    elif isinstance(state, Mapping) and "online_params" in state:
        parts = {f: state.get(f) for f in EXPERIMENT_FIELDS}
    else:
        parts = {"online_params": state, "online_state": {}}
    for name, label in (("target_params", "target network (params)"), ("target_state", "target network (BN state)")):
        if isinstance(parts.get(name), Mapping):
            dropped[label] = sum(len(v) for v in parts[name].values() if isinstance(v, Mapping))
    if parts.get("opt_state") is not None:
        ignored.append("opt_state")
    return parts.get("online_params") or {}, parts.get("online_state") or {}, dropped, ignored


def _to_torch(array, leaf: str) -> torch.Tensor:
    """A fresh tensor: the HWIO kernel transposed to OIHW, BN leaves flattened to [C].

    The transposition is numpy's: unpickled arrays are read-only views of the
    pickle's bytes, and the copy that makes them contiguous also makes them
    the tensor's own.
    """
    array = np.asarray(array)
    if leaf == "w":
        if array.ndim != 4:
            raise ValueError(f"a convolution kernel should be 4-D (HWIO), found shape {list(array.shape)}")
        return torch.from_numpy(np.ascontiguousarray(array.transpose(3, 2, 0, 1)))
    return torch.from_numpy(array.reshape(-1).copy())


def extract(obj) -> tuple[dict[str, torch.Tensor], Counter, list[str], list[str], str]:
    """The online ResNet as torchvision tensors; also dropped groups, ignored entries, unplaced leaves, root."""
    params, state, dropped, ignored = _experiment_parts(obj)
    suffix = "/~/initial_conv"
    roots = sorted({k[: -len(suffix)] for k in params if isinstance(k, str) and k.endswith(suffix)})
    root = roots[0] if len(roots) == 1 else None
    tensors, unplaced = {}, []

    def place(path: str):
        if root is None or not path.startswith(root + "/~/"):
            return None
        rest = path[len(root) + 3:]
        for pattern, name in _MODULES:
            m = pattern.match(rest)
            if m:
                return name(m)
        unplaced.append(path)
        return None

    for path, leaves in params.items():
        head = _HEADS.get(str(path).split("/")[0])
        if head:
            dropped[head] += len(leaves)
            continue
        module = place(str(path))
        if module is None:
            if root is None or not str(path).startswith(root + "/~/"):
                dropped[f"other ({str(path).split('/')[0]})"] += len(leaves)
            continue
        for leaf, value in leaves.items():
            if leaf in _PARAM_LEAVES:
                tensors[f"{module}.{_PARAM_LEAVES[leaf]}"] = _to_torch(value, leaf)
            else:
                unplaced.append(f"{path}:{leaf}")
    for path, leaves in state.items():
        path = str(path)
        head = _HEADS.get(path.split("/")[0])
        base, _, kind = path.rpartition("/~/")
        if head or kind not in _STATE_LEAVES:
            dropped[f"{head or 'other'} (BN state)"] += len(leaves)
            continue
        module = place(base)
        if module is None:
            continue
        if "average" not in leaves:
            unplaced.append(f"{path} (no 'average')")
            continue
        tensors[f"{module}.{_STATE_LEAVES[kind]}"] = _to_torch(leaves["average"], "average")
    return tensors, dropped, ignored, unplaced, root or "?"
