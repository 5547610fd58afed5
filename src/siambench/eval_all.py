"""``eval-all``: every evaluation that exists, for one checkpoint, resumably.

The plan depends on the data found: without a data root it runs on the
embedded datasets (and says so in the report); with one, on each dataset of
the plan that is present, listing the others as skipped with the reason and
the command that prepares them. Every run goes through
:func:`siambench.evaluate.run_stage`, so a record that exists is not
recomputed and a killed eval-all rerun finishes only what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from tqdm.auto import tqdm

from .errors import DatasetNotFoundError, EngineNotInstalledError, SiambenchError
from .evaluate import EvalContext, run_stage
from .eval_transfer.run import BENCHMARK
from .report import tables


@dataclass(frozen=True)
class Job:
    task: str
    dataset: str
    protocol: str


TRANSFER_STAND_INS = (
    Job("transfer-linear", "shapes", "linear"),
    Job("transfer-linear", "digits", "linear"),
    Job("transfer-finetune", "digits", "finetune_tiny"),
)

EMBEDDED_PLAN = (
    Job("knn", "shapes", "default"),
    Job("knn", "digits", "default"),
    Job("linear", "shapes", "logreg"),
    Job("linear", "digits", "logreg"),
    Job("linear", "shapes", "tiny"),
    Job("semisup-1pct", "shapes", "tiny"),
    Job("semisup-10pct", "shapes", "tiny"),
    Job("detection", "shapes_voc", "tiny"),
    Job("segmentation", "shapes_seg", "tiny"),
    Job("depth", "shapes", "tiny"),
    *TRANSFER_STAND_INS,
)


DATA_PLAN = (
    Job("knn", "imagenet", "default"),
    Job("linear", "imagenet", "byol"),
    Job("semisup-1pct", "imagenet", "byol"),
    Job("semisup-10pct", "imagenet", "byol"),
    Job("knn", "cifar10", "default"),
    Job("linear", "cifar10", "logreg"),
    Job("knn", "cifar100", "default"),
    Job("linear", "cifar100", "logreg"),
    Job("detection", "voc0712", "voc0712"),
    Job("segmentation", "voc2012_seg", "moco"),
    Job("depth", "nyu_depth_v2", "byol"),
    *(Job(task, name, protocol) for task, protocol in (("transfer-linear", "linear"), ("transfer-finetune", "finetune"))
      for name in BENCHMARK),
)


def plan(data_root: str | None) -> tuple[Job, ...]:
    from .data import resolve_data_root

    return DATA_PLAN if resolve_data_root(data_root) is not None else EMBEDDED_PLAN


def eval_all(ctx: EvalContext, jobs: tuple[Job, ...] | None = None, tasks: list[str] | None = None) -> dict:
    """Run ``jobs`` (default: the plan for ``ctx.data_root``, restricted to ``tasks`` if given).

    Returns the records, and the skipped and failed jobs with their reasons.
    """
    jobs = _select(jobs or plan(ctx.data_root), tasks)
    outcome = _run(ctx, jobs)
    transfer = [j for j in jobs if j.task.startswith("transfer-")]
    if transfer and not any(r["task"].startswith("transfer-") for r in outcome["records"]):
        # None of the 12 datasets is present: the embedded stand-ins show the stage working, labelled as such.
        more = _run(ctx, tuple(j for j in _select(TRANSFER_STAND_INS, tasks) if j not in jobs))
        for key in outcome:
            outcome[key] += more[key]
    return outcome


def _select(jobs: tuple[Job, ...], tasks: list[str] | None) -> tuple[Job, ...]:
    """The jobs of ``tasks`` (a task, or its family: ``transfer`` for ``transfer-linear``); all without."""
    if not tasks:
        return tuple(jobs)
    return tuple(j for j in jobs if j.task in tasks or j.task.split("-")[0] in tasks)


def _run(ctx: EvalContext, jobs: tuple[Job, ...]) -> dict:
    records, skipped, failed = [], [], []
    bar = tqdm(jobs, desc="eval-all", disable=not ctx.progress, dynamic_ncols=True)
    for job in bar:
        bar.set_postfix_str(f"{job.task} {job.dataset}")
        try:
            record, computed = run_stage(ctx, job.task, job.dataset, job.protocol)
        except (DatasetNotFoundError, EngineNotInstalledError) as err:
            skipped.append((job, str(err)))
            continue
        except SiambenchError as err:
            failed.append((job, str(err)))
            continue
        records.append(record)
        state = "done" if computed else "found"
        tqdm.write(f"{state:5s} {job.task:14s} {job.dataset:10s} {job.protocol:8s} "
                   f"{record['primary_metric']} = {record['metrics'][record['primary_metric']]:.2f}")
    return {"records": records, "skipped": skipped, "failed": failed}


def summary(outcome: dict) -> str:
    """The summary printed at the end: the table, then notes, skipped and failed stages."""
    lines = [tables.to_markdown(outcome["records"])] if outcome["records"] else ["(no results)"]
    for note in tables.notes(outcome["records"]):
        lines.append(f"- note: {note}")
    for job, reason in outcome["skipped"]:
        lines.append(f"- skipped {job.task} on {job.dataset}: {reason}")
    for job, reason in outcome["failed"]:
        lines.append(f"- FAILED {job.task} on {job.dataset}: {reason}")
    return "\n".join(lines)
