"""What every evaluation stage shares: the checkpoint, the data, the record.

A task's code is a function ``evaluate(ctx, dataset, protocol, overrides) ->
EvalResult`` registered in :data:`ENTRY_POINTS`; :mod:`siambench.stages`
declares the stages and their defaults. :func:`run_stage` wraps it: it
looks for the record first (a finished run is never repeated), times the
run, and writes the record. ``siambench eval`` and ``siambench eval-all`` go
through it and nothing else.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch

from .data import build_dataset, get_dataset_info
from .data.registry import DatasetInfo
from .data.transforms import IMAGENET_MEAN, IMAGENET_STD
from .engine.dist import init_distributed, is_main_process
from .report.records import RecordKey, find_record, write_record
from .stages import STAGES, TASKS, default_protocol, stage_of
from .toolkit.features import cached_features


@dataclass
class EvalResult:
    """What a stage returns; accuracies are in percent."""

    metrics: dict[str, float]
    primary_metric: str
    hyperparameters: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class _Renormalize(torch.nn.Module):
    """An encoder trained on other input statistics than ImageNet's (:attr:`CanonicalBackbone.input_stats`; the
    SimCLR v1 conversions saw raw [0, 1] input), fed the ImageNet-normalised images every image pipeline makes."""

    def __init__(self, encoder: torch.nn.Module, mean, std):
        super().__init__()
        self.encoder = encoder
        self.num_features = encoder.num_features
        for name, value in (("imagenet_mean", IMAGENET_MEAN), ("imagenet_std", IMAGENET_STD), ("mean", mean),
                            ("std", std)):
            self.register_buffer(name, torch.tensor(value).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        return self.encoder((x * self.imagenet_std + self.imagenet_mean - self.mean) / self.std)


@dataclass
class EvalContext:
    """One checkpoint under evaluation, and where its data and records live."""

    checkpoint: str
    data_root: str | None = None
    results_dir: str = "results"
    device: str = "auto"
    seed: int = 0
    num_workers: int = 2
    progress: bool = True
    force: bool = False
    subset_file: str | None = None
    _datasets: dict = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def backbone(self):
        from .checkpoints import load

        return load(self.checkpoint)

    @cached_property
    def torch_device(self) -> torch.device:
        return init_distributed(self.device).device

    @property
    def sha256(self) -> str:
        return self.backbone.meta["sha256"]

    def checkpoint_info(self) -> dict:
        path = Path(self.checkpoint)
        run_dir = path if path.is_dir() else path.parent
        meta = self.backbone.meta
        return {
            "name": (meta.get("name") or meta.get("source_meta", {}).get("name")
                     or (run_dir.name if (run_dir / "log.jsonl").exists() else path.stem)),
            "path": str(path),
            "source_format": meta.get("source_format"),
            "arch": self.backbone.spec.arch,
            "width": self.backbone.spec.width,
            "stem": self.backbone.spec.stem,
            "run_dir": str(run_dir) if (run_dir / "log.jsonl").exists() else None,
        }

    def encoder(self) -> torch.nn.Module:
        """A fresh copy of the encoder (pooled features out), on the evaluation device."""
        model = copy.deepcopy(self._template)
        return model.to(self.torch_device)

    @cached_property
    def _template(self) -> torch.nn.Module:
        model = self.backbone.build_model()
        if self.backbone.input_stats != (IMAGENET_MEAN, IMAGENET_STD):
            model = _Renormalize(model, *self.backbone.input_stats)
        return model

    def dataset(self, name: str, split: str, **options):
        """The split, built once per context: stages ask for it several times (features, held-out draws)."""
        key = (name, split, tuple(sorted(options.items())))
        if key not in self._datasets:
            self._datasets[key] = build_dataset(name, split, data_root=self.data_root, **options)
        return self._datasets[key]

    def features(self, name: str, split: str, image_size: int | None = None, crop_fraction: float | None = None,
                 batch_size: int = 256):
        """Cached frozen features of a split, in the dataset's evaluation view unless overridden."""
        info = get_dataset_info(name)
        size = image_size or info.eval_size
        fraction = crop_fraction or info.eval_crop_fraction
        extra = self.backbone.input_normalization
        return cached_features(
            self.frozen_encoder, self.sha256, name, split, self.dataset(name, split), size, fraction,
            device=self.torch_device, batch_size=batch_size, num_workers=self.num_workers,
            progress=self.progress, extra_key=extra,
        )

    @cached_property
    def frozen_encoder(self) -> torch.nn.Module:
        """One shared copy for feature extraction (never trained)."""
        return self.encoder().eval()

    def info(self, name: str) -> DatasetInfo:
        return get_dataset_info(name)


# task -> its entry point, filled in by @register_stage as a stage's module is imported (siambench.stages).
ENTRY_POINTS: dict[str, Callable[[EvalContext, str, str, list[str]], EvalResult]] = {}


def register_stage(task: str):
    def wrap(fn):
        ENTRY_POINTS[task] = fn
        return fn

    return wrap


def entry_point(task: str) -> Callable[[EvalContext, str, str, list[str]], EvalResult]:
    """``task``'s function, importing its stage's code on first use (and only its stage's)."""
    if task not in ENTRY_POINTS:
        stage_of(task).load()
    return ENTRY_POINTS[task]


def load_stages() -> dict:
    """Every task's entry point (imports every stage's code)."""
    return {task: entry_point(task) for task in TASKS}


def load_protocol(stage: str, protocol: str, overrides: list[str]):
    """A preset with overrides applied (``configs/<stage>/<protocol>.yaml``); ``stage`` may be a task.

    Every key the preset file sets must be a setting of its folder's ``_base.yaml``
    (:func:`~siambench.configs.load_checked`), as every override must be.
    """
    from .configs import apply_overrides, load_checked

    declared = stage_of(stage) if stage in TASKS else STAGES[stage]
    return apply_overrides(load_checked(declared.presets, protocol, declared.open_sections), overrides)


def protocol_name(protocol: str, overrides: list[str] | None) -> str:
    """The protocol as a record names it: a run with overrides is a protocol of its own, never the preset's."""
    return protocol + (f"+{hashlib.sha256(' '.join(overrides).encode()).hexdigest()[:8]}" if overrides else "")


def run_stage(ctx: EvalContext, task: str, dataset: str, protocol: str | None, overrides: list[str] | None = None) -> tuple[dict, bool]:
    """Run (or find) one evaluation; returns ``(record, computed)``."""
    protocol = protocol or default_protocol(task, dataset)
    run = entry_point(task)
    key = RecordKey(ctx.sha256, task, dataset, protocol_name(protocol, overrides), ctx.seed)
    if not ctx.force and (record := find_record(ctx.results_dir, key)) is not None:
        return record, False
    torch.manual_seed(ctx.seed)
    start = time.perf_counter()
    result: EvalResult = run(ctx, dataset, protocol, list(overrides or []))
    if not is_main_process():
        return {"metrics": result.metrics, "_path": None}, True
    notes = list(result.notes)
    if get_dataset_info(dataset).embedded:
        notes.append("embedded dataset (a stand-in for real data; not comparable with published numbers)")
    if overrides:
        notes.append(f"protocol overridden: {' '.join(overrides)}")
    path = write_record(
        ctx.results_dir, key, checkpoint=ctx.checkpoint_info(), metrics=result.metrics,
        primary_metric=result.primary_metric, hyperparameters=result.hyperparameters, config=result.config,
        wall_time_s=time.perf_counter() - start, notes=notes,
    )
    return find_record(path.parent, key), True


def run_seeds(ctx: EvalContext, task: str, dataset: str, protocol: str | None, overrides: list[str] | None = None,
              seeds: int = 1) -> list[tuple[dict, bool]]:
    """``seeds`` runs with seeds ``ctx.seed, ctx.seed + 1, ...``, one record each (a found record is not rerun)."""
    return [run_stage(dataclasses.replace(ctx, seed=ctx.seed + k), task, dataset, protocol, overrides)
            for k in range(seeds)]
