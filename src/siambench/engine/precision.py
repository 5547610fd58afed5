"""Which float type results are computed in.

Outputs of bf16 autocast are scored and compared in float32; a model run in
float64 (the equivalence tests, which must agree on any CPU) stays float64.
"""

from __future__ import annotations

import torch


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32, unless it is float64 already."""
    return x if x.dtype == torch.float64 else x.float()
