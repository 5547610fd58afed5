"""detectron2's side of the detection stage: registration, trainer, evaluation.

This module imports detectron2. :mod:`.run` imports it only after checking
that detectron2 is there, and every process that ``launch`` starts runs
:func:`train_and_evaluate`, which registers the datasets and the ROI head
in that process before training.
"""

from __future__ import annotations

import argparse
import logging
import os

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances, register_pascal_voc
from detectron2.engine import DefaultTrainer, HookBase, default_setup, hooks
from detectron2.evaluation import COCOEvaluator, PascalVOCDetectionEvaluator
from detectron2.utils import comm
from tqdm.auto import tqdm

from ...data.detection import VocSource
from ...engine.io import save_json
from . import backbone, roi_heads  # noqa: F401  (register build_basic_resnet_backbone, Res5ROIHeadsExtraNorm)


def register(sources) -> None:
    """Register :class:`VocSource` / :class:`CocoSource` datasets, replacing any of the same name."""
    for source in sources:
        if source.name in DatasetCatalog.list():
            DatasetCatalog.remove(source.name)
            MetadataCatalog.remove(source.name)
        if isinstance(source, VocSource):
            register_pascal_voc(source.name, source.dirname, source.split, source.year, list(source.classes))
            MetadataCatalog.get(source.name).evaluator_type = "pascal_voc"
        else:
            register_coco_instances(source.name, {}, source.json_file, source.image_root)


def load_config(config_file: str):
    """detectron2's defaults with ``config_file`` merged over them, frozen."""
    cfg = get_cfg()
    cfg.merge_from_file(config_file)
    cfg.freeze()
    return cfg


class ProgressBar(HookBase):
    """A tqdm bar over the training iterations, showing the latest total loss."""

    def before_train(self):
        self._bar = tqdm(total=self.trainer.max_iter, initial=self.trainer.start_iter, desc="detection",
                         dynamic_ncols=True, leave=False)

    def after_step(self):
        self._bar.update(1)
        latest = self.trainer.storage.latest().get("total_loss")
        if latest is not None:
            self._bar.set_postfix(loss=f"{latest[0]:.3f}")

    def after_train(self):
        self._bar.close()


class Trainer(DefaultTrainer):
    """MoCo's trainer: VOC or COCO evaluators by dataset; the evaluation runs once, after training."""

    def __init__(self, cfg, progress: bool = True):
        self._progress = progress
        super().__init__(cfg)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        if MetadataCatalog.get(dataset_name).evaluator_type == "pascal_voc":
            return PascalVOCDetectionEvaluator(dataset_name)
        tasks = ("bbox", "segm") if cfg.MODEL.MASK_ON else ("bbox",)
        return COCOEvaluator(dataset_name, tasks=tasks,
                             output_dir=output_folder or os.path.join(cfg.OUTPUT_DIR, "inference"))

    def build_hooks(self):
        # train_and_evaluate evaluates after training; an EvalHook would evaluate a second time.
        kept = [h for h in super().build_hooks() if not isinstance(h, hooks.EvalHook)]
        if self._progress and comm.is_main_process():
            kept.append(ProgressBar())
        return kept


def quiet_console() -> None:
    """Keep detectron2's console to warnings: its environment dump and configs stay in the run's log.txt."""
    for name in ("detectron2", "fvcore", "d2"):
        for handler in logging.getLogger(name).handlers:
            if not isinstance(handler, logging.FileHandler):
                handler.setLevel(logging.WARNING)


def train_and_evaluate(config_file: str, sources, evaluation_file: str, progress: bool = True) -> None:
    """One process of a run: train (resuming from the run's last checkpoint if any), evaluate, save the results.

    The main process writes ``evaluation_file``: the evaluator's results
    and the total loss of every iteration it trained.
    """
    register(sources)
    cfg = load_config(config_file)
    default_setup(cfg, argparse.Namespace(config_file=config_file, resume=True))
    quiet_console()
    trainer = Trainer(cfg, progress=progress)
    trainer.resume_or_load(resume=True)
    trainer.train()
    results = Trainer.test(cfg, trainer.model)
    if comm.is_main_process():
        losses = trainer.storage.history("total_loss").values() if trainer.start_iter < trainer.max_iter else []
        save_json({"results": results, "start_iter": trainer.start_iter, "max_iter": trainer.max_iter,
                   "total_loss": [[int(i), float(v)] for v, i in losses]},
                  evaluation_file)
