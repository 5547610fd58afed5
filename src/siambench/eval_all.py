"""``eval-all``: every evaluation that exists, for one checkpoint, resumably.

The plan depends on the data found: without a data root it runs on the
embedded datasets (and says so in the report); with one, on each dataset of
the plan that is present, listing the others as skipped with the reason and
the command that prepares them. Every run goes through
:func:`siambench.evaluate.run_stage`, so a record that exists is not
recomputed and a killed eval-all rerun finishes only what is missing.

Two jobs of a plan can be one computation under two names: the transfer
benchmark's linear protocol and ``linear --protocol logreg`` differ only in
the share of training images held out for validation, which a dataset with
its own validation split (or a held-out rule) does not use. Such a job is
computed once and its record written under both names, marked as shared.
With ``baseline``, every job runs again for a random-init backbone of the
checkpoint's architecture, the row every self-supervised table compares with.
"""

from __future__ import annotations

import dataclasses
import textwrap
from functools import cache

from tqdm.auto import tqdm

from .errors import DatasetNotFoundError, EngineNotInstalledError, SiambenchError
from .evaluate import EvalContext, load_protocol, protocol_name, run_stage
from .report import tables
from .report.records import RecordKey, find_record, write_record
from .stages import STAGES, TASKS, Job, stage_of, transfer_stand_ins
from .stages import plan as plan_of

EMBEDDED_PLAN = plan_of("embedded")
DATA_PLAN = plan_of("data")


def plan(data_root: str | None) -> tuple[Job, ...]:
    from .data import resolve_data_root

    return DATA_PLAN if resolve_data_root(data_root) is not None else EMBEDDED_PLAN


SUMMARY_WIDTH = 100  # the summary's notes are wrapped to a terminal's width

# (task, preset) → (task, preset) that computes the same where the held-out share is unused.
SAME_COMPUTATION = {("transfer-linear", "linear"): ("linear", "logreg")}
HELD_OUT_KEYS = ("val_fraction", "val_seed")
IGNORED_KEYS = (*HELD_OUT_KEYS, "runner")  # runner: how the linear stage dispatches; transfer-linear is always logreg


@cache
def _same_solver(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """The two presets differ at most in their held-out share (so a change to either ends the sharing)."""
    cfg_a, cfg_b = (load_protocol(task, preset, []).to_dict() for task, preset in (a, b))
    for key in IGNORED_KEYS:
        cfg_a.pop(key, None), cfg_b.pop(key, None)
    return cfg_a == cfg_b


def twin(job: Job) -> Job | None:
    """The job that computes exactly what ``job`` does (same features, same solver), if there is one."""
    from .data import get_dataset_info

    other = SAME_COMPUTATION.get((job.task, job.protocol))
    if other is None or not _same_solver((job.task, job.protocol), other):
        return None
    info = get_dataset_info(job.dataset)
    return Job(other[0], job.dataset, other[1]) if info.val_split or info.val_holdout else None


def baseline_checkpoint(ctx: EvalContext, baseline: str) -> str:
    """The checkpoint ``--baseline`` names: ``random`` is the random init of ``ctx``'s architecture (seed 0)."""
    if baseline != "random":
        return baseline
    from .checkpoints.random_init import spec_name

    return spec_name(ctx.backbone.spec)


def eval_all(ctx: EvalContext, jobs: tuple[Job, ...] | None = None, tasks: list[str] | None = None,
             baseline: str | None = None) -> dict:
    """Run ``jobs`` (default: the plan for ``ctx.data_root``, restricted to ``tasks`` if given).

    Returns the records, and the skipped and failed jobs with their reasons;
    with ``baseline`` (``random`` or a checkpoint), the same jobs for it too,
    its name under ``"baseline"``.
    """
    outcome = _eval_one(ctx, jobs, tasks)
    if baseline is None:
        return outcome
    other = dataclasses.replace(ctx, checkpoint=baseline_checkpoint(ctx, baseline))
    more = _eval_one(other, jobs, tasks)
    skipped = {job for job, _ in outcome["skipped"]}
    outcome["records"] += more["records"]
    outcome["skipped"] += [(job, reason) for job, reason in more["skipped"] if job not in skipped]
    outcome["failed"] += [(job, f"(baseline {other.checkpoint}) {reason}") for job, reason in more["failed"]]
    outcome["baseline"] = other.checkpoint
    return outcome


def _eval_one(ctx: EvalContext, jobs: tuple[Job, ...] | None, tasks: list[str] | None) -> dict:
    jobs = _select(plan(ctx.data_root) if jobs is None else jobs, tasks)
    outcome = _run(ctx, jobs)
    is_transfer = lambda task: stage_of(task).name == "transfer"  # noqa: E731
    if any(is_transfer(j.task) for j in jobs) and not any(is_transfer(r["task"]) for r in outcome["records"]):
        # None of the 12 datasets is present: the embedded stand-ins show the stage working, labelled as such.
        more = _run(ctx, tuple(j for j in _select(transfer_stand_ins(), tasks) if j not in jobs))
        for key in outcome:
            outcome[key] += more[key]
    return outcome


def _select(jobs: tuple[Job, ...], tasks: list[str] | None) -> tuple[Job, ...]:
    """The jobs of ``tasks`` (a task, or its stage: ``transfer`` for ``transfer-linear``); all without."""
    if not tasks:
        return tuple(jobs)
    unknown = [t for t in tasks if t not in STAGES and t not in TASKS]
    if unknown:
        raise SiambenchError(f"unknown task {', '.join(map(repr, unknown))} in --tasks; expected stages "
                             f"({', '.join(STAGES)}) or tasks ({', '.join(TASKS)})")
    return tuple(j for j in jobs if j.task in tasks or stage_of(j.task).name in tasks)


def _shared_record(ctx: EvalContext, job: Job, done: dict) -> dict | None:
    """``job``'s record copied from its twin's, when the twin ran in this eval-all and ``job`` has none yet."""
    source = twin(job)
    if source not in done:
        return None
    key = RecordKey(ctx.sha256, job.task, job.dataset, protocol_name(job.protocol, None), ctx.seed)
    if not ctx.force and find_record(ctx.results_dir, key) is not None:
        return None
    record = done[source]
    note = (f"computed once with {source.task} {source.dataset} ({source.protocol}): the same features and solver "
            f"(the presets differ only in the held-out share, which this dataset's validation split makes unused)")
    path = write_record(
        ctx.results_dir, key, checkpoint=record["checkpoint"], metrics=record["metrics"],
        primary_metric=record["primary_metric"], hyperparameters=record["hyperparameters"],
        config=load_protocol(job.task, job.protocol, []).to_dict(), wall_time_s=0.0, notes=[*record["notes"], note],
    )
    return find_record(path.parent, key)


def _run(ctx: EvalContext, jobs: tuple[Job, ...]) -> dict:
    records, skipped, failed = [], [], []
    done: dict[Job, dict] = {}
    bar = tqdm(jobs, desc="eval-all", disable=not ctx.progress, dynamic_ncols=True)
    for job in bar:
        bar.set_postfix_str(f"{job.task} {job.dataset}")
        try:
            shared = _shared_record(ctx, job, done)
            record, computed = (shared, True) if shared is not None else run_stage(ctx, job.task, job.dataset,
                                                                                   job.protocol)
        except (DatasetNotFoundError, EngineNotInstalledError) as err:
            skipped.append((job, str(err)))
            continue
        except SiambenchError as err:
            failed.append((job, str(err)))
            continue
        records.append(record)
        done[job] = record
        state = ("shared" if shared is not None else "done") if computed else "found"
        tqdm.write(f"{state:5s} {job.task:14s} {job.dataset:10s} {job.protocol:8s} "
                   f"{record['primary_metric']} = {record['metrics'][record['primary_metric']]:.2f}")
    return {"records": records, "skipped": skipped, "failed": failed}


def summary(outcome: dict, wide: bool = False) -> str:
    """The summary printed at the end: the table (long, or ``wide``), then notes, skipped and failed stages."""
    lines = [tables.to_markdown(outcome["records"], wide=wide)] if outcome["records"] else ["(no results)"]
    notes = [*tables.baseline_lines(outcome["records"]),
             *(f"note: {note}" for note in tables.grouped_notes(outcome["records"]))]
    for note in notes:
        lines += textwrap.wrap(note, SUMMARY_WIDTH, initial_indent="- ", subsequent_indent="  ",
                               break_on_hyphens=False, break_long_words=False)
    for job, reason in outcome["skipped"]:
        lines.append(f"- skipped {job.task} on {job.dataset}: {reason}")
    for job, reason in outcome["failed"]:
        lines.append(f"- FAILED {job.task} on {job.dataset}: {reason}")
    from .report.published import section

    return "\n".join(lines) + section(outcome["records"])
