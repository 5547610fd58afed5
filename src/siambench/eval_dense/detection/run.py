"""``siambench eval detection``: fine-tune a checkpoint in detectron2 and record the box (and mask) AP.

One run (one trial) is: convert the checkpoint to detectron2's ``.pkl``,
write the effective config beside the run, launch detectron2's trainer
through its own ``launch`` (one process per GPU, several machines),
evaluate, and return the metrics, which :func:`siambench.evaluate.run_stage`
writes as one record. The run folder, under ``<results>/detection/``, is
named like the record, so a killed run resumes from detectron2's last
checkpoint there. ``siambench eval detection --trials N`` runs several seeds, one record
each, as MoCo reports the mean of 5 trials.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from ...checkpoints.export import EXPORTERS
from ...data.detection import VocSource
from ...engine.io import atomic_write
from ...errors import ConfigError, SiambenchError, TrainingDivergedError
from ...evaluate import EvalContext, EvalResult, load_protocol, protocol_name, register_stage
from ...report.records import RecordKey
from . import require_detectron2
from .config import EffectiveConfig, effective_config

CONFIG_FILE = "effective_config.yaml"
WEIGHTS_FILE = "backbone.pkl"
EVALUATION_FILE = "evaluation.json"
SUMMARY_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def run_dir(ctx: EvalContext, dataset: str, protocol: str, overrides: list[str]) -> Path:
    """``<results>/detection/<the record's name>``: one folder per trial."""
    key = RecordKey(ctx.sha256, "detection", dataset, protocol_name(protocol, overrides), ctx.seed)
    return Path(ctx.results_dir) / "detection" / key.filename.removesuffix(".json")


def write_config(d2: dict, path: Path) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(yaml.safe_dump(d2, sort_keys=False)))


def check_config(path: Path) -> None:
    """Read the written config with detectron2, so a bad key fails here and not in a worker process."""
    from .trainer import load_config

    try:
        load_config(str(path))
    except (KeyError, ValueError, TypeError, AssertionError) as err:
        raise ConfigError(f"detectron2 rejects the config written to {path}: {err}") from None


def launch(effective: EffectiveConfig, config_file: Path, sources, evaluation_file: Path, progress: bool) -> None:
    """Run :func:`.trainer.train_and_evaluate` in every process through detectron2's ``launch``."""
    from detectron2.engine import launch as d2_launch

    plan = effective.launch
    try:
        d2_launch(_worker, plan.num_gpus, num_machines=plan.num_machines, machine_rank=plan.machine_rank,
                  dist_url=plan.dist_url, args=(str(config_file), tuple(sources), str(evaluation_file), progress))
    except FloatingPointError as err:
        raise TrainingDivergedError(f"detection training diverged: {err}") from None


def _worker(config_file: str, sources, evaluation_file: str, progress: bool) -> None:
    # Module level so that launch can start it in new processes.
    from .trainer import train_and_evaluate

    train_and_evaluate(config_file, sources, evaluation_file, progress)


def flatten_metrics(results: dict, voc: bool) -> tuple[dict[str, float], str]:
    """detectron2's results for one test set as record metrics (percent) and the primary one.

    VOC gives ``AP``, ``AP50`` and ``AP75`` (AP50 first, as MoCo reports
    it); COCO gives ``bbox_*`` and, for Mask R-CNN, ``segm_*`` summaries
    (box AP first). Per-class APs stay in the run folder's detectron2 log.
    """
    if voc:
        return {k: float(results["bbox"][k]) for k in ("AP50", "AP", "AP75")}, "AP50"
    metrics = {f"{task}_{k}": float(v) for task in ("bbox", "segm") if task in results
               for k, v in results[task].items() if k in SUMMARY_KEYS}
    return metrics, "bbox_AP"


def summarize_losses(total_loss: list) -> dict:
    """The mean total loss over the first and the last tenth of the iterations seen (at least one each)."""
    if not total_loss:
        return {}
    values = [v for _, v in total_loss]
    k = max(1, len(values) // 10)
    return {"first": sum(values[:k]) / k, "last": sum(values[-k:]) / k, "iterations": len(values)}


@register_stage("detection")
def evaluate(ctx: EvalContext, dataset: str, protocol: str, overrides: list[str]) -> EvalResult:
    require_detectron2()
    cfg = load_protocol("detection", protocol, overrides)
    info = ctx.info(dataset)
    train, test = ctx.dataset(dataset, info.train_split), ctx.dataset(dataset, info.test_split)
    out = run_dir(ctx, dataset, protocol, overrides)
    (weights,), _ = EXPORTERS["detectron2"].write(ctx.backbone, out / WEIGHTS_FILE)
    notes = []
    if ctx.backbone.spec.padding == "tf_same":
        notes.append("trained with TensorFlow 'SAME' padding, which detectron2's ResNet does not have: its strided "
                     "layers see the input shifted by a pixel")
    device = ctx.torch_device.type
    effective = effective_config(cfg, ctx.backbone, train, test, weights=str(weights), output_dir=str(out),
                                 device=device, seed=ctx.seed,
                                 visible_gpus=torch.cuda.device_count() if device == "cuda" else 0)
    config_file = write_config(effective.detectron2, out / CONFIG_FILE)
    check_config(config_file)
    evaluation = out / EVALUATION_FILE
    evaluation.unlink(missing_ok=True)
    launch(effective, config_file, train.sources + test.sources, evaluation, ctx.progress)
    if not evaluation.is_file():
        raise SiambenchError(f"this machine (rank {effective.launch.machine_rank}) took part in the run; "
                             f"machine rank 0 evaluates it and writes the record.")
    saved = json.loads(evaluation.read_text())
    metrics, primary = flatten_metrics(saved["results"], isinstance(test.sources[0], VocSource))
    scaling = effective.scaling
    if scaling["factor"] != 1:
        run = scaling["run"]
        notes.append(
            f"schedule scaled for {scaling['world_size']} GPUs by the linear-scaling rule (written for "
            f"{scaling['reference_world_size']}): batch {run['IMS_PER_BATCH']}, LR {run['BASE_LR']:g}, "
            f"{run['MAX_ITER']} iterations, steps {run['STEPS']}"
        )
    return EvalResult(
        metrics=metrics,
        primary_metric=primary,
        hyperparameters={"schedule": scaling, "loss": summarize_losses(saved["total_loss"]),
                         "run_dir": str(out), "resumed_from_iter": saved["start_iter"]},
        config={"preset": cfg.to_dict(), "detectron2": effective.detectron2},
        notes=notes,
    )
