"""The evaluation stages, one declaration each: the one place that says what can be evaluated, and how.

A :class:`Stage` is what ``siambench eval <stage>`` runs. It names the tasks
its records carry (``semisup`` writes ``semisup-1pct`` and ``semisup-10pct``),
its preset folder (``configs/<presets>/``), the preset each task runs when
none is named, whether ``--gpus N`` runs it as torchrun processes, and its
jobs in eval-all's two plans. Everything else is derived from this table: the
CLI's choices and help, ``siambench eval``'s defaults, eval-all's plans and
the order of the report's rows (the order of :data:`STAGES`).

The code of a stage lives in ``module`` and is imported only when one of
its tasks runs, so ``siambench eval knn`` never imports the dense stages or
detectron2. The vocabulary: a *stage* is the command word, a *task* what a
record is filed under, a *preset* a YAML file of the stage's folder, which a
record names as its protocol.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from .errors import ConfigError, SiambenchError

BENCHMARK = "benchmark"  # a plan's dataset placeholder: the transfer benchmark's datasets, in Table 3's order


@dataclass(frozen=True)
class Job:
    """One evaluation of a plan: a task on a dataset with a preset."""

    task: str
    dataset: str
    protocol: str


@dataclass(frozen=True)
class Stage:
    name: str
    module: str
    summary: str
    tasks: tuple[str, ...] = ()
    presets: str = ""
    # task -> (preset on embedded data, preset on real data)
    defaults: dict[str, tuple[str, str]] = field(default_factory=dict)
    # dataset -> preset, where a dataset's default differs from its task's
    dataset_defaults: dict[str, str] = field(default_factory=dict)
    # the dataset ``siambench eval`` takes without --dataset: (without a data root, with one)
    default_dataset: tuple[str, str] | None = None
    torchrun: bool = False
    embedded_plan: tuple[Job, ...] = ()
    data_plan: tuple[Job, ...] = ()
    # what --protocol takes, where it is not a preset name of the folder
    protocol_choices: tuple[str, ...] = ()
    # preset sections whose keys another library checks (detectron2's own config), not the stage's _base.yaml
    open_sections: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "tasks", self.tasks or (self.name,))
        object.__setattr__(self, "presets", self.presets or self.name)

    def default_preset(self, task: str, dataset: str) -> str:
        """The preset ``task`` runs on ``dataset`` when none is named."""
        if dataset in self.dataset_defaults:
            return self.dataset_defaults[dataset]
        if task not in self.defaults:
            raise ConfigError(f"no default {self.name} preset for dataset {dataset!r}; {self.name} runs on "
                                 f"{', '.join(self.dataset_defaults)}")
        from .data import get_dataset_info

        embedded, real = self.defaults[task]
        return embedded if get_dataset_info(dataset).embedded else real

    def load(self) -> None:
        """Import the stage's code, which registers its tasks' entry points (:func:`siambench.evaluate.register_stage`)."""
        importlib.import_module(self.module)


def _jobs(task: str, *pairs: tuple[str, str]) -> tuple[Job, ...]:
    return tuple(Job(task, dataset, preset) for dataset, preset in pairs)


_TRANSFER_STAND_INS = (*_jobs("transfer-linear", ("shapes", "linear"), ("digits", "linear")),
                       Job("transfer-finetune", "digits", "finetune_tiny"))

STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage(
        "knn", "siambench.eval_knn.run", "weighted kNN on frozen features (FAISS)",
        defaults={"knn": ("default", "default")},
        embedded_plan=_jobs("knn", ("shapes", "default"), ("digits", "default")),
        data_plan=_jobs("knn", ("imagenet", "default"), ("cifar10", "default"), ("cifar100", "default")),
    ),
    Stage(
        "linear", "siambench.eval_linear.run", "linear evaluation: logistic regression on features, or a probe",
        defaults={"linear": ("logreg", "byol")},
        # CIFAR's linear evaluation is logistic regression on features, as in BYOL's and SimCLR's tables.
        dataset_defaults={"cifar10": "logreg", "cifar100": "logreg"},
        embedded_plan=_jobs("linear", ("shapes", "logreg"), ("digits", "logreg"), ("shapes", "tiny")),
        data_plan=_jobs("linear", ("imagenet", "byol"), ("cifar10", "logreg"), ("cifar100", "logreg")),
    ),
    Stage(
        "semisup", "siambench.eval_semisup.run", "fine-tuning on 1 or 10 percent of the labels (--fraction)",
        tasks=("semisup-1pct", "semisup-10pct"),
        defaults={"semisup-1pct": ("tiny", "byol"), "semisup-10pct": ("tiny", "byol")},
        torchrun=True,
        embedded_plan=(Job("semisup-1pct", "shapes", "tiny"), Job("semisup-10pct", "shapes", "tiny")),
        data_plan=(Job("semisup-1pct", "imagenet", "byol"), Job("semisup-10pct", "imagenet", "byol")),
    ),
    Stage(
        "transfer", "siambench.eval_transfer.run", "the 12-dataset benchmark, linear or fine-tuned (--protocol)",
        tasks=("transfer-linear", "transfer-finetune"),
        defaults={"transfer-linear": ("linear", "linear"), "transfer-finetune": ("finetune_tiny", "finetune")},
        torchrun=True,
        protocol_choices=("linear", "finetune"),  # finetune's preset follows --grid
        embedded_plan=_TRANSFER_STAND_INS,
        data_plan=(Job("transfer-linear", BENCHMARK, "linear"), Job("transfer-finetune", BENCHMARK, "finetune")),
    ),
    Stage(
        "detection", "siambench.eval_dense.detection.run", "detectron2 R50-C4 on VOC07+12 or COCO (--task)",
        dataset_defaults={"voc0712": "voc0712", "coco2017": "coco_1x", "shapes_voc": "tiny"},
        default_dataset=("shapes_voc", "shapes_voc"),
        open_sections=("detectron2",),
        embedded_plan=_jobs("detection", ("shapes_voc", "tiny")),
        data_plan=_jobs("detection", ("voc0712", "voc0712")),
    ),
    Stage(
        "segmentation", "siambench.eval_dense.segmentation", "FCN semantic segmentation (VOC2012)",
        # MoCo's single-LR protocol on real data: BYOL's is a 5-LR sweep plus a retrain, six times the cost of a
        # run that most papers report (PROTOCOLS C.6).
        defaults={"segmentation": ("tiny", "moco")},
        default_dataset=("shapes_seg", "voc2012_seg"),
        torchrun=True,
        embedded_plan=_jobs("segmentation", ("shapes_seg", "tiny")),
        data_plan=_jobs("segmentation", ("voc2012_seg", "moco")),
    ),
    Stage(
        "depth", "siambench.eval_dense.depth", "monocular depth (NYUv2, FCRN head)",
        defaults={"depth": ("tiny", "byol")},
        default_dataset=("shapes", "nyu_depth_v2"),
        torchrun=True,
        embedded_plan=_jobs("depth", ("shapes", "tiny")),
        data_plan=_jobs("depth", ("nyu_depth_v2", "byol")),
    ),
)}

TASKS: dict[str, Stage] = {task: stage for stage in STAGES.values() for task in stage.tasks}
TASK_ORDER = tuple(TASKS)  # the report's row order


def stage_of(task: str) -> Stage:
    """The stage that runs ``task`` (a record's task, or a stage name with one task)."""
    if task not in TASKS:
        raise SiambenchError(f"unknown evaluation {task!r}; expected one of {', '.join(TASKS)}")
    return TASKS[task]


def default_protocol(task: str, dataset: str) -> str:
    """The preset ``task`` runs on ``dataset`` when none is named (``siambench eval`` and eval-all alike)."""
    return stage_of(task).default_preset(task, dataset)


def plan(kind: str) -> tuple[Job, ...]:
    """eval-all's jobs in report order: ``embedded`` (no data root) or ``data``, the benchmark expanded."""
    from .data.registry import benchmark_datasets

    jobs = []
    for stage in STAGES.values():
        for job in stage.embedded_plan if kind == "embedded" else stage.data_plan:
            if job.dataset == BENCHMARK:
                jobs += [Job(job.task, info.name, job.protocol) for info in benchmark_datasets()]
            else:
                jobs.append(job)
    return tuple(jobs)


def transfer_stand_ins() -> tuple[Job, ...]:
    """The embedded transfer jobs eval-all runs when none of the benchmark's datasets is present."""
    return STAGES["transfer"].embedded_plan
