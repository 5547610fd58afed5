"""The MLP heads of BYOL and SimSiam.

BYOL (PROTOCOLS A.2): projector and predictor are both
Linear(with bias) → BN → ReLU → Linear(no bias), 4096 → 256 at paper scale.
SimSiam (PROTOCOLS B.1): a 3-layer projector whose last BN has no affine
parameters, and a bottleneck predictor Linear → BN → ReLU → Linear.
"""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError


def head_size(key: str, value, method: str, nullable: bool = False) -> int | None:
    """``value`` of the head setting ``key`` (a width, a layer count), or a :class:`ConfigError` saying what was
    expected."""
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        null = " or null (the backbone's width)" if nullable else ""
        raise ConfigError(f"{method} needs {key} to be a positive whole number{null}; got {value!r}")
    return value


def byol_mlp(in_dim: int, hidden_dim: int = 4096, out_dim: int = 256) -> nn.Sequential:
    """BYOL's projector/predictor: no BN on the output, no bias on the last Linear."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim),
        nn.BatchNorm1d(hidden_dim),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, out_dim, bias=False),
    )


def simsiam_projector(in_dim: int, hidden_dim: int | None = None, out_dim: int = 2048, num_layers: int = 3) -> nn.Sequential:
    """SimSiam's projector: (Linear → BN → ReLU) × (num_layers − 1), then Linear → BN(affine=False).

    ``hidden_dim=None`` is the official builder's choice, the backbone's width
    ``in_dim`` (2048 for ResNet-50, 512 for ResNet-18). The official code keeps
    a frozen bias on the last Linear; the affine-free BN that follows removes
    any bias, so it is left out here.
    """
    hidden_dim = in_dim if hidden_dim is None else hidden_dim
    if num_layers < 2:
        raise ValueError("the SimSiam projector has at least 2 layers")
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(num_layers - 1):
        layers += [nn.Linear(dim, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)]
        dim = hidden_dim
    layers += [nn.Linear(dim, out_dim, bias=False), nn.BatchNorm1d(out_dim, affine=False)]
    return nn.Sequential(*layers)


def simsiam_predictor(dim: int = 2048, hidden_dim: int = 512) -> nn.Sequential:
    """SimSiam's bottleneck predictor: no BN or ReLU on the output."""
    return nn.Sequential(
        nn.Linear(dim, hidden_dim, bias=False),
        nn.BatchNorm1d(hidden_dim),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, dim),
    )
