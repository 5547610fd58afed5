"""YAML presets with ``key=value`` overrides.

A preset lives in ``configs/<stage>/<name>.yaml``; ``base: other`` inherits
from another preset of the same stage, and each file states only what it
changes. Overrides use dotted keys (``optim.base_lr=0.3``) and must name a key
that exists, with a value of a compatible type, so a typo is an error rather
than a silently ignored setting. Some settings come in two units (warm-up
in epochs or in steps): a layer that sets one clears the other it inherits,
and one layer setting both is an error.
"""

from __future__ import annotations

import copy
import difflib
from importlib import resources
from pathlib import Path

import yaml

from ..errors import ConfigError


class Config(dict):
    """A nested dict whose keys are also attributes (``cfg.optim.base_lr``)."""

    def __init__(self, data=None):
        super().__init__()
        for key, value in (data or {}).items():
            self[key] = Config(value) if isinstance(value, dict) else value

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def to_dict(self) -> dict:
        return {k: v.to_dict() if isinstance(v, Config) else copy.deepcopy(v) for k, v in self.items()}


# Keys of which a config sets exactly one.
ALTERNATIVES = (("schedule.warmup_epochs", "schedule.warmup_steps"),)


def _lookup(data: dict, key: str):
    """``(parent mapping, last part)`` of a dotted key, or ``(None, None)`` where the path does not exist."""
    *parents, last = key.split(".")
    for part in parents:
        data = data.get(part) if isinstance(data, dict) else None
    return (data, last) if isinstance(data, dict) and last in data else (None, None)


def _settle_alternatives(merged: dict, layer: dict, where: str) -> dict:
    """In ``merged``, clear what ``layer`` (one file, or one command line) replaced by setting its alternative."""
    for pair in ALTERNATIVES:
        given = [k for k in pair if _lookup(layer, k)[0] is not None and _get(layer, k) is not None]
        if len(given) > 1:
            raise ConfigError(f"{where} sets both {' and '.join(given)}; give one of them.")
        if given:
            for other in pair:
                node, last = _lookup(merged, other)
                if other != given[0] and node is not None:
                    node[last] = None
    return merged


def _get(data: dict, key: str):
    node, last = _lookup(data, key)
    return None if node is None else node[last]


def _preset_dir(stage: str):
    return resources.files(__package__).joinpath(stage)


def list_presets(stage: str) -> list[str]:
    return sorted(p.name[:-5] for p in _preset_dir(stage).iterdir() if p.name.endswith(".yaml") and not p.name.startswith("_"))


def _read_yaml(path) -> dict:
    with path.open("r") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level")
    return data


def merge(base: dict, update: dict) -> dict:
    """``update`` laid over a copy of ``base``, section by section."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _preset_file(stage: str, name: str):
    """The file of preset ``name`` of ``stage``: a YAML path, or a name in the stage's folder."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    candidate = _preset_dir(stage).joinpath(f"{name}.yaml")
    if not candidate.is_file():
        known = list_presets(stage)
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown {stage} preset {name!r}.{hint} Presets: {', '.join(known)}.")
    return candidate


def _chain(stage: str, name: str) -> list[tuple[str, dict]]:
    """``(name, file contents without base)`` from preset ``name`` down its ``base:`` chain to the preset that
    names no base; a chain that comes back to a file is an error, not endless recursion."""
    chain, seen = [], []
    while name:
        file = _preset_file(stage, name)
        if str(file) in seen:
            raise ConfigError(f"{stage} preset {chain[0][0]!r}: its base: chain loops "
                              f"({' -> '.join([n for n, _ in chain] + [name])})")
        seen.append(str(file))
        data = _read_yaml(file)
        chain.append((name, data))
        name = data.pop("base", None)
    return chain


def _resolve(chain: list[tuple[str, dict]]) -> Config:
    """A preset's settings: its chain's files laid over one another, from the root up."""
    data: dict = {}
    for layer_name, layer in reversed(chain):
        data = _settle_alternatives(merge(data, layer), layer, f"preset {layer_name!r}")
    return Config(data)


def load_preset(stage: str, name: str) -> Config:
    """The preset ``name`` of ``stage`` (a preset name or a path to a YAML file), bases resolved."""
    return _resolve(_chain(stage, name))


def unknown_keys(data: dict, schema: dict, free: tuple[str, ...] = (), prefix: str = "") -> list[str]:
    """The dotted keys of ``data`` that ``schema`` does not have.

    An empty mapping in ``schema`` (``options: {}``) takes any keys, and so do
    the sections named in ``free``, whose contents another check owns.
    """
    out = []
    for key, value in data.items():
        dotted = prefix + key
        if key not in schema:
            out.append(dotted)
        elif isinstance(value, dict) and isinstance(schema[key], dict) and schema[key] and dotted not in free:
            out += unknown_keys(value, schema[key], free, f"{dotted}.")
    return out


def check_keys(data: dict, schema: dict, where: str, free: tuple[str, ...] = ()) -> None:
    """Raise :class:`ConfigError` for a key of ``data`` that ``schema`` lacks: a typo in a preset is an error."""
    unknown = unknown_keys(data, schema, free)
    if unknown:
        hints = []
        for key in unknown:
            known = [k for k in _flat_keys(schema) if not key.startswith(f"{k}.")]
            close = difflib.get_close_matches(key, known, n=2)
            hints.append(f"{key} (did you mean {', '.join(close)}?)" if close else key)
        raise ConfigError(f"{where} sets {'a key' if len(unknown) == 1 else 'keys'} that no setting has: "
                          f"{'; '.join(hints)}.")


def load_checked(stage: str, name: str, free: tuple[str, ...] = ()) -> Config:
    """:func:`load_preset`, then every key checked against the preset its chain starts from, where that is a
    ``_``-named file of the folder (``_base.yaml``), which states every setting with its default."""
    chain = _chain(stage, name)
    cfg = _resolve(chain)
    if len(chain) > 1 and chain[-1][0].startswith("_"):
        check_keys(cfg, _resolve(chain[-1:]), f"{stage} preset {name!r}", free)
    return cfg


def _flat_keys(d: dict, prefix: str = "") -> list[str]:
    keys = []
    for k, v in d.items():
        keys.append(prefix + k)
        if isinstance(v, dict):
            keys += _flat_keys(v, f"{prefix}{k}.")
    return keys


def _compatible(old, new) -> bool:
    if old is None or new is None:
        return True
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, (int, float)) and isinstance(new, (int, float)):
        return True
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        return True
    return type(old) is type(new)


def _parse_value(raw: str):
    """YAML scalar parsing, plus the ``1e-3`` floats that YAML 1.1 reads as strings."""
    value = yaml.safe_load(raw) if raw.strip() else None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def parse_override(item: str) -> tuple[str, object]:
    """``"a.b=value"`` as ``("a.b", value)``, the value parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form key=value")
    key, raw = item.split("=", 1)
    return key, _parse_value(raw)


def nest(flat: dict) -> dict:
    """``{"a.b": 1}`` as ``{"a": {"b": 1}}``."""
    out: dict = {}
    for key, value in flat.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply ``a.b=value`` strings (values parsed as YAML) to a copy of ``cfg``."""
    data = cfg.to_dict()
    given: dict = {}
    for item in overrides:
        key, value = parse_override(item)
        node = data
        parts = key.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                known = _flat_keys(data)
                close = difflib.get_close_matches(key, known, n=3)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise ConfigError(f"unknown config key {key!r}.{hint}")
            if i < len(parts) - 1:
                node = node[part]
        old = node[parts[-1]]
        if isinstance(old, dict) and not isinstance(value, dict):
            raise ConfigError(f"config key {key!r} is a section; set one of its keys instead: {', '.join(old)}")
        if not _compatible(old, value):
            raise ConfigError(
                f"config key {key!r} expects a {type(old).__name__} (currently {old!r}), got {value!r}"
            )
        if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        node[parts[-1]] = value
        given[key] = value
    return Config(_settle_alternatives(data, nest(given), "the command line"))


def save_config(cfg: Config, path) -> None:
    from ..engine.io import atomic_write

    def write(tmp):
        with open(tmp, "w") as f:
            yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)

    atomic_write(path, write)
