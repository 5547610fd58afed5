"""Linear evaluation: logistic regression on frozen features (C.3) and the augmented linear probe (C.1)."""

from .logistic import (
    DEFAULT_LAMBDAS,
    fit_logistic,
    logistic_objective,
    logistic_sweep,
)
from .probe import run_linear_probe, train_linear_heads

__all__ = [
    "DEFAULT_LAMBDAS",
    "fit_logistic",
    "logistic_objective",
    "logistic_sweep",
    "run_linear_probe",
    "train_linear_heads",
]
