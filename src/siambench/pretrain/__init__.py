"""Self-supervised pretraining: BYOL and SimSiam over one shared trainer."""

from .byol import BYOL
from .simsiam import SimSiam

METHODS = {"byol": BYOL, "simsiam": SimSiam}

__all__ = ["BYOL", "METHODS", "SimSiam"]
