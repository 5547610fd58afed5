"""detectron2's names for a torchvision ResNet, both ways (PROTOCOLS C.5).

The rules are those of MoCo's ``convert-pretrain-to-detectron2.py`` and
detectron2's ``convert-torchvision-to-d2.py``, applied in their order:

1. a key without ``layer`` is in the stem: prefix ``stem.``;
2. ``layer1..4`` → ``res2..res5``;
3. ``bn1..3`` → ``conv1..3.norm`` (so the stem's ``bn1`` → ``stem.conv1.norm``);
4. ``downsample.0`` → ``shortcut``, ``downsample.1`` → ``shortcut.norm``.

They start from canonical names, so a checkpoint under any prefix
(``module.encoder_q.``, ``module.encoder.``, ``backbone.``) converts alike.
"""

from __future__ import annotations

import re


def to_detectron2(key: str) -> str:
    if "layer" not in key:
        key = "stem." + key
    for t in (1, 2, 3, 4):
        key = key.replace(f"layer{t}", f"res{t + 1}")
    for t in (1, 2, 3):
        key = key.replace(f"bn{t}", f"conv{t}.norm")
    return key.replace("downsample.0", "shortcut").replace("downsample.1", "shortcut.norm")


def from_detectron2(key: str) -> str:
    if key.startswith("stem."):
        key = key[len("stem."):]
    key = re.sub(r"^res([2-5])\.", lambda m: f"layer{int(m[1]) - 1}.", key)
    key = key.replace("shortcut.norm", "downsample.1").replace("shortcut", "downsample.0")
    return re.sub(r"conv([1-3])\.norm", r"bn\1", key)
