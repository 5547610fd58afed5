"""Inert stand-ins for the Python objects training scripts pickle beside their tensors.

Training checkpoints carry an ``argparse.Namespace`` of arguments, an
OmegaConf config, Lightning's ``AttributeDict``, mmengine's ``message_hub``
(``HistoryBuffer`` objects whose statistics methods are pickled as
``getattr(HistoryBuffer, 'mean')``). The names listed here come back as
objects that record their arguments and state and run nothing, so the file
loads without the library and without executing anything from it; every
other name (``os.system``, ``builtins.eval``, anything unknown) is refused.
"""

from __future__ import annotations

from collections.abc import Mapping

# Modules whose classes become inert records wherever they appear.
METADATA_MODULES = ("argparse", "omegaconf", "typing", "pathlib", "datetime", "collections", "copyreg",
                    "mmengine.logging")
METADATA_NAMES = {
    "lightning_fabric.utilities.data.AttributeDict",
    "lightning.fabric.utilities.data.AttributeDict",
    "pytorch_lightning.utilities.parsing.AttributeDict",
    "lightning.pytorch.utilities.parsing.AttributeDict",
    "torch.torch_version.TorchVersion",
}
# Builtins that appear as values (OmegaConf's object_type=dict), and getattr, which mmengine pickles for method
# references; each becomes a record of its arguments. eval, exec, open, __import__ ... are not among them.
_BUILTIN_NAMES = {"dict", "list", "tuple", "set", "frozenset", "int", "float", "str", "bytes", "bool", "object",
                  "type", "slice", "range", "NoneType", "getattr"}
_DICT_LIKE = {"AttributeDict", "defaultdict", "OrderedDict"}


class Opaque:
    """An object of a class the file named, kept as inert data: its arguments and state, nothing run."""

    pickled_as = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.__dict__["args"] = args
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.__dict__["state"] = state

    def __repr__(self):
        return f"<{self.pickled_as}>"


class DictStandIn:
    """Dict subclasses (Lightning's AttributeDict, defaultdict) come back as plain dicts."""

    def __new__(cls, *args, **kwargs):
        return dict(args[0]) if args and isinstance(args[0], Mapping) else {}


def standin(module: str, attr: str):
    """The inert stand-in for ``module.attr``, or ``None`` when the name is not one a checkpoint may hold."""
    name = f"{module}.{attr}"
    allowed = (
        name in METADATA_NAMES
        or (module == "builtins" and attr in _BUILTIN_NAMES)
        or any(module == m or module.startswith(m + ".") for m in METADATA_MODULES)
    )
    if not allowed:
        return None
    base = DictStandIn if attr in _DICT_LIKE else Opaque
    return type(attr, (base,), {"pickled_as": name, "__module__": __name__})


def is_standin(obj) -> bool:
    return isinstance(obj, type) and issubclass(obj, (Opaque, DictStandIn))
