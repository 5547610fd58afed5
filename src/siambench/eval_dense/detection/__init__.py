"""Object detection with detectron2: MoCo's R50-C4 protocol on VOC07+12 and COCO (PROTOCOLS C.5).

detectron2 is not on PyPI, so it is an optional engine. siambench prepares
everything it needs (the converted checkpoint, the effective config, the
dataset registrations) without it; :func:`require_detectron2` stops a run
where it cannot be imported with one message that says how to install it.
Only :mod:`.backbone`, :mod:`.roi_heads` and :mod:`.trainer` import
detectron2, and only where a run has found it.
"""

from __future__ import annotations

import torch

from ...errors import EngineNotInstalledError


def install_command() -> str:
    """How to build detectron2 from source against the torch that is installed."""
    cuda = torch.version.cuda
    build = f"CUDA {cuda} (nvcc of that version must be on PATH)" if cuda else "CPU only"
    return (f"python -m pip install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git' "
            f"(builds against your torch {torch.__version__}, {build}; takes a few minutes)")


def require_detectron2() -> None:
    """Raise :class:`EngineNotInstalledError` unless detectron2 imports."""
    try:
        import detectron2  # noqa: F401
    except ImportError as err:
        raise EngineNotInstalledError(
            f"the detection stage runs on detectron2, which cannot be imported ({err}). detectron2 is not on "
            f"PyPI; build it from its repository into this environment: {install_command()}"
        ) from None
