"""The contract a pretraining method meets, checked when it is registered.

A method is an ``nn.Module`` class that the trainer drives without knowing
which one it is:

- ``CONFIG``: the settings only it reads (its heads, a target rate), as
  dotted keys with their defaults. The run's config is checked against
  ``_base.yaml`` plus these (:mod:`.config`), so a key the method would not
  read is an error;
- ``from_config(backbone, cfg)`` builds it around ``backbone`` from the
  run's config, and raises :class:`~siambench.errors.ConfigError` for a value
  it cannot take;
- ``forward(x1, x2) -> (loss, z)``: the loss of one batch of two views and the
  first view's projection (the trainer logs its spread as the collapse signal);
- ``param_groups(weight_decay, exclude_bias_and_norm, lars)``: the optimiser's
  groups, named (``backbone``, ``projector``, ...), so that a group's LR can be
  held (SimSiam's fixed predictor LR);
- ``after_step(step, total_steps) -> dict``: work after each optimiser step
  (BYOL's target EMA), and the values to log;
- ``backbone``: the encoder that is exported and evaluated;
- ``STATE_PARTS``: for every other top-level module of its state dict, what
  it is. Training checkpoints record it (:func:`checkpoint_layout`), so the
  checkpoint reader sets heads and targets aside by name without knowing any
  method.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import torch

BACKBONE_PREFIX = "backbone."
REQUIRED = ("from_config", "forward", "param_groups", "after_step")


class PretrainMethod(Protocol):
    CONFIG: ClassVar[dict[str, object]]
    STATE_PARTS: ClassVar[dict[str, str]]
    backbone: torch.nn.Module

    @classmethod
    def from_config(cls, backbone: torch.nn.Module, cfg) -> PretrainMethod: ...

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def param_groups(self, weight_decay: float, exclude_bias_and_norm: bool, lars: bool) -> list[dict]: ...

    def after_step(self, step: int, total_steps: int) -> dict: ...


METHODS: dict[str, type] = {}


def register_method(name: str):
    """Add a method class to :data:`METHODS` once it is seen to meet the contract above."""

    def wrap(cls: type) -> type:
        missing = [attr for attr in REQUIRED if not callable(getattr(cls, attr, None))]
        missing += [attr for attr in ("CONFIG", "STATE_PARTS") if not isinstance(getattr(cls, attr, None), dict)]
        if missing:
            raise TypeError(f"pretraining method {name!r} ({cls.__name__}) does not meet the contract of "
                            f"siambench.pretrain.method: missing {', '.join(missing)}")
        METHODS[name] = cls
        return cls

    return wrap


def checkpoint_layout(model: torch.nn.Module, state: dict) -> dict:
    """Where a training checkpoint keeps what: the backbone's prefix, and every other module's prefix and role
    (``state`` is ``model``'s state dict, as the checkpoint holds it)."""
    parts = dict(type(model).STATE_PARTS)
    names = {key.split(".", 1)[0] for key in state} - {BACKBONE_PREFIX.rstrip(".")}
    undeclared = sorted(names - set(parts))
    if undeclared:
        raise TypeError(f"{type(model).__name__}.STATE_PARTS does not say what {', '.join(undeclared)} is")
    return {"backbone": BACKBONE_PREFIX, "set_aside": {f"{name}.": role for name, role in sorted(parts.items())}}
