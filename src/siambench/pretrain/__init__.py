"""Self-supervised pretraining: BYOL and SimSiam over one shared trainer (the contract: :mod:`.method`)."""

from .byol import BYOL
from .method import METHODS, PretrainMethod, register_method
from .simsiam import SimSiam

__all__ = ["BYOL", "METHODS", "PretrainMethod", "SimSiam", "register_method"]
