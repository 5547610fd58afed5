"""siambench: BYOL and SimSiam pretraining and the standard SSL evaluations."""

__version__ = "0.1.0"
