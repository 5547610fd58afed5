"""Transfer fine-tuning (PROTOCOLS C.3): the whole network on each dataset, over an (LR, wd) grid.

Every grid point starts from the pretrained weights, trains on the
protocol's train split and is scored on its validation split with the
dataset's metric; the best point is retrained on train + val and scored on
test (SimCLR B.8.1, BYOL D.3). Weight decays are divided by the LR, and the
batch-norm statistics decay at ``max(1 − 10/s, 0.9)`` per step, ``s`` the
steps per epoch, so that small datasets do not keep stale statistics.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..data.sampling import derive_seed
from ..engine.metrics import score
from ..errors import ConfigError, TrainingDivergedError
from ..toolkit.finetune import Classifier, finetune, predict, set_bn_momentum
from ..toolkit.selection import best_point


def grid_points(cfg) -> list[tuple[float, float]]:
    """``(lr, wd)`` pairs of the preset's grid; wd is the value before division by the LR."""
    g = cfg.grid
    lrs = np.logspace(math.log10(g.lr.low), math.log10(g.lr.high), int(g.lr.num)).tolist()
    wds = np.logspace(math.log10(g.wd.low), math.log10(g.wd.high), int(g.wd.num)).tolist() if g.wd.num else []
    if g.wd.get("zero", False):
        wds = wds + [0.0]
    if not lrs or not wds:
        raise ConfigError("the fine-tuning grid needs at least one LR and one weight decay")
    return [(float(lr), float(wd)) for lr in lrs for wd in wds]


def bn_momentum(num_images: int, batch_size: int, floor: float = 0.9) -> float:
    """PyTorch's BN momentum for TF's decay ``max(1 − 10/s, floor)``, ``s`` = steps per epoch."""
    steps_per_epoch = max(num_images // batch_size, 1)
    return 1.0 - max(1.0 - 10.0 / steps_per_epoch, floor)


class Splits:
    """The three sets of one dataset: ``(dataset, indices)`` for train, val and test.

    ``trainval`` is train and val together, as one dataset (they may be two
    official splits, or one split and its held-out part).
    """

    def __init__(self, train, val, test):
        self.train, self.val, self.test = train, val, test

    @property
    def trainval(self):
        (a, ia), (b, ib) = self.train, self.val
        if a is b:
            return a, sorted([*ia, *ib])
        both = torch.utils.data.ConcatDataset([a, b])
        return both, [*ia, *(len(a) + i for i in ib)]


def run_transfer_finetune(model_factory, splits: Splits, num_outputs: int, metric: str, cfg, seed: int = 0,
                          device="cpu", progress: bool = True) -> dict:
    """Choose ``(lr, wd)`` on val, retrain on train + val, score ``metric`` on test.

    ``model_factory()`` returns a fresh pretrained encoder each call.
    ``metric`` ``map11`` trains with a per-class sigmoid loss (VOC2007's
    20 labels), the others with softmax cross-entropy.
    """
    start = time.time()
    multilabel = metric == "map11"
    steps, batch = int(cfg.schedule.steps), int(cfg.schedule.batch_size)

    def train(dataset, indices, lr, wd, desc):
        classifier = Classifier(model_factory(), num_outputs, torch.Generator().manual_seed(derive_seed(seed, 4)))
        set_bn_momentum(classifier, bn_momentum(len(indices), min(batch, len(indices)),
                                                float(cfg.schedule.bn_decay_floor)))
        info = finetune(classifier, dataset, indices, lr, 1, cfg, derive_seed(seed, 5), device, progress, desc,
                        steps=steps, weight_decay=wd / lr, multilabel=multilabel)
        return classifier, info

    def evaluate(classifier, part, desc):
        outputs, targets = predict(classifier, *part, cfg, device, progress, desc)
        return score(metric, outputs, targets)

    points = []
    for lr, wd in grid_points(cfg):
        desc = f"finetune lr={lr:.2g} wd={wd:.2g}"
        try:
            model, info = train(*splits.train, lr, wd, desc)
            val = evaluate(model, splits.val, f"{desc} val")
        except TrainingDivergedError:
            points.append({"lr": lr, "wd": wd, "val": None, "diverged": True})
            continue
        points.append({"lr": lr, "wd": wd, "val": val, "diverged": False, "final_loss": info["final_loss"]})
    best = points[best_point(points, "val", what="fine-tuning grid")]
    model, info = train(*splits.trainval, best["lr"], best["wd"], f"finetune lr={best['lr']:.2g} (train+val)")
    test = evaluate(model, splits.test, "finetune test")
    return {"metric": metric, "test": test, "best": best, "grid": points, "final": info,
            "train_images": len(splits.train[1]), "val_images": len(splits.val[1]),
            "wall_time_s": time.time() - start}
