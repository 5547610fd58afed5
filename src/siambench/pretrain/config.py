"""A pretraining run's settings: ``_base.yaml``'s shared ones plus the method's own.

``configs/pretrain/_base.yaml`` states what every method reads (data, backbone,
views, optimiser, schedule, run). What only one method reads (its heads, BYOL's
target rate and loss form) is declared by the method itself, as its
``CONFIG`` of dotted keys and defaults (:mod:`.method`). A preset is checked
against the two together, so a typo or a setting the run's method would not
read is an error that names the key. A preset may set another method's key to
null: that is how one preset clears what its base set (``simsiam_shapes``
built on ``byol_shapes`` clears BYOL's ``ema.tau_base``).
"""

from __future__ import annotations

from ..configs import Config, apply_overrides, check_keys, load_preset, merge, nest, parse_override
from ..errors import ConfigError
from .method import METHODS

# Sections whose keys another check owns: a view's options are ViewConfig's fields.
OPEN_SECTIONS = ("aug.view1", "aug.view2")


def method_class(name) -> type:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}")
    return METHODS[name]


def _owners(key: str) -> list[str]:
    return [name for name, cls in METHODS.items() if key in cls.CONFIG]


def _refuse_foreign(key: str, value, method: str) -> bool:
    """Whether ``key`` is another method's setting that the run can drop (it is null); an error if it is set."""
    owners = _owners(key)
    if not owners or key in METHODS[method].CONFIG:
        return False
    if value is not None:
        raise ConfigError(f"{key} = {value!r} is not used by {method} (it is a setting of {', '.join(owners)}); "
                          f"set it to null. {method}'s own settings: {', '.join(METHODS[method].CONFIG)}.")
    return True


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _drop(data: dict, dotted: str) -> None:
    """Remove ``dotted`` from ``data``, and the sections it leaves empty."""
    first, _, rest = dotted.partition(".")
    if rest:
        _drop(data[first], rest)
        if not data[first]:
            del data[first]
    else:
        del data[first]


def defaults(method: str) -> dict:
    """Every setting a ``method`` run reads, with its default: ``_base.yaml`` and the method's ``CONFIG``."""
    return merge(load_preset("pretrain", "_base").to_dict(), nest(method_class(method).CONFIG))


def load_config(preset: str, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The settings of a run of ``preset`` (a name in ``configs/pretrain/`` or a YAML file) with ``key=value``
    ``overrides``, every key checked against what the run's method reads."""
    data = load_preset("pretrain", preset).to_dict()
    pairs = [parse_override(item) for item in overrides]
    given = dict(pairs)  # the last value of each key, as the run sees it
    method = given.get("method", data.get("method", load_preset("pretrain", "_base").method))
    method_class(method)
    for key, value in _flat(data).items():
        if _refuse_foreign(key, given.get(key, value), method):
            _drop(data, key)
    schema = defaults(method)
    check_keys(data, schema, f"pretrain preset {preset!r}", OPEN_SECTIONS)
    kept = [item for item, (key, value) in zip(overrides, pairs) if not _refuse_foreign(key, value, method)]
    return apply_overrides(Config(merge(schema, data)), kept)
