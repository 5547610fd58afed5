"""The ``siambench`` command: one subcommand per stage.

Errors of bad input (``SiambenchError``) print as one paragraph and exit with
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from .errors import SiambenchError
from .stages import STAGES

PRETRAIN_HELP = """\
Pretrain a ResNet with BYOL or SimSiam.

examples:
  siambench pretrain --config byol_shapes                 # embedded data, CPU, a few minutes
  siambench pretrain --config byol_cifar_r18 data.data_root=/data
  siambench pretrain --config byol_imagenet_r50 --data-root /data schedule.batch_size=1024
  torchrun --nproc_per_node 8 -m siambench pretrain --config simsiam_imagenet_r50 --data-root /data
  siambench pretrain --config byol_shapes --resume auto   # continue a killed run
  siambench pretrain --export-only checkpoints/byol_shapes
  siambench pretrain --config byol_cifar_r18 --random-init seed=1   # untrained backbone, the "random init" row
  siambench pretrain --config byol_cifar_r18 --data-root /data --threads 2 schedule.warmup_steps=20

Any config key can be overridden as key=value (dotted for nested keys); the
resolved config is saved as <output_dir>/<name>/config.yaml. The run writes
step_<N>.pt checkpoints there, and at the end backbone.pth + meta.json: the
encoder as a torchvision state dict, the input of every evaluation.
"""


def _pretrain(args) -> int:
    from .configs import apply_overrides, list_presets

    if args.list_configs:
        print("\n".join(list_presets("pretrain")))
        return 0
    if args.export_only:
        from .pretrain.trainer import export_only

        print(export_only(args.export_only))
        return 0
    extra = []
    if args.data_root:
        extra.append(f"data.data_root={args.data_root}")
    if args.strict_data:
        extra.append("data.strict=true")
    if args.threads is not None:
        extra.append(f"train.threads={args.threads}")
    if args.random_init:
        extra.append("schedule.total_steps=0")
    from .pretrain.config import load_config

    cfg = load_config(args.config, extra + args.overrides)
    untrained = cfg.schedule.total_steps == 0
    if not cfg.get("name"):
        name = args.config.rsplit('/', 1)[-1].removesuffix('.yaml') + ("_random_init" if untrained else "")
        cfg = apply_overrides(cfg, [f"name={name}"])
    from .pretrain.trainer import pretrain

    run_dir = pretrain(cfg, resume=args.resume)
    print(f"{'random-init (untrained) ' if untrained else ''}backbone written to {run_dir / 'backbone.pth'}")
    return 0


def _context(args):
    from .engine.threads import set_threads
    from .evaluate import EvalContext

    set_threads(args.threads)
    return EvalContext(checkpoint=args.ckpt, data_root=args.data_root, results_dir=args.results, device=args.device,
                       seed=args.seed, num_workers=args.num_workers, progress=not args.no_progress,
                       force=getattr(args, "force", False), subset_file=getattr(args, "subset_file", None))


def _eval_jobs(args) -> list[tuple[str, str, str | None]]:
    """``(task, dataset, protocol)`` of each run the command asks for (before seeds)."""
    from .errors import ConfigError

    stage = STAGES[args.task]
    if args.task == "transfer":
        from .eval_transfer.run import BENCHMARK, GRIDS

        kind = args.protocol or "linear"
        if kind not in stage.protocol_choices:
            raise ConfigError(f"eval transfer --protocol is {' or '.join(stage.protocol_choices)}, got {kind!r}")
        names = args.datasets or args.dataset or "all"
        datasets = BENCHMARK if names == "all" else tuple(names.split(","))
        protocol = "linear" if kind == "linear" else GRIDS[args.grid]
        return [(f"transfer-{kind}", name, protocol) for name in datasets]
    if args.task == "detection" and not args.dataset and (args.detection_task or args.protocol):
        from .configs import load_preset

        protocol = args.detection_task or args.protocol
        return [("detection", load_preset("detection", protocol).dataset, protocol)]
    if stage.default_dataset and not args.dataset:
        from .data import resolve_data_root

        embedded, real = stage.default_dataset
        return [(args.task, real if resolve_data_root(args.data_root) else embedded, args.protocol)]
    if not args.dataset:
        raise ConfigError(f"eval {args.task} needs --dataset NAME (siambench data list)")
    task = args.task if args.task != "semisup" else f"semisup-{args.fraction}pct"
    protocol = (args.detection_task or args.protocol) if args.task == "detection" else args.protocol
    return [(task, args.dataset, protocol)]


def _torchrun(processes: int, argv: list[str]) -> int:
    """This same command as ``processes`` DDP processes, started by torchrun (``--gpus N``)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    try:
        torchrun(["--standalone", "--nproc_per_node", str(processes), "--module", "siambench", *argv])
    except ChildFailedError as err:
        print(f"siambench: error: a torchrun process failed: {err}", file=sys.stderr)
        return 1
    return 0


def _eval(args) -> int:
    from .engine.dist import is_main_process
    from .errors import DatasetNotFoundError
    from .evaluate import run_seeds

    if args.gpus and args.gpus > 1 and STAGES[args.task].torchrun and "WORLD_SIZE" not in os.environ:
        return _torchrun(args.gpus, args.argv)
    ctx, status = _context(args), 0
    gpus = [f"launch.num_gpus={args.gpus}"] if args.gpus and args.task == "detection" else []
    overrides = list(args.overrides) + gpus
    for task, dataset, protocol in _eval_jobs(args):
        try:
            outcomes = run_seeds(ctx, task, dataset, protocol, overrides, args.seeds)
        except DatasetNotFoundError as err:
            print(f"skipped {task} on {dataset}: {err}")
            status = 1
            continue
        for record, computed in outcomes if is_main_process() else ():
            state = "written" if computed else "already there (use --force to recompute)"
            print(f"record {state}: {record['_path']}")
            for name, value in record["metrics"].items():
                print(f"  {name:16s} {value:.3f}" if isinstance(value, float) else f"  {name:16s} {value}")
    return status


def _eval_all(args) -> int:
    from .eval_all import eval_all, summary

    outcome = eval_all(_context(args), tasks=args.tasks.split(",") if args.tasks else None, baseline=args.baseline)
    print(summary(outcome, wide=args.wide))
    return 1 if outcome["failed"] else 0


def _report(args) -> int:
    from pathlib import Path

    from .report import FORMATS, load_records
    from .report.plots import write_plots
    from .report.tables import baseline_lines, grouped_notes

    records = load_records(args.results_dir)
    if not records:
        from .errors import SiambenchError

        raise SiambenchError(f"no result records under {args.results_dir}; run `siambench eval` or `make eval-all` first.")
    if args.table == "transfer":
        from .report.transfer import transfer_table

        text = transfer_table(records, args.format)
    else:
        text = FORMATS[args.format](records, wide=args.wide)
        if args.format != "csv":
            text += "".join(f"\n- {n}" for n in baseline_lines(records) + grouped_notes(records))
    from .report.published import section

    text += section(records, args.format)
    if args.output:
        Path(args.output).write_text(text + "\n")
        print(f"written {args.output}")
    else:
        print(text)
    if args.plots:
        made = write_plots(records, Path(args.plots))
        if args.table == "transfer":
            from .report.transfer import transfer_bars

            made.append(transfer_bars(records, Path(args.plots) / "transfer.png"))
        for path in made:
            if path is not None:
                print(f"plot {path}")
    return 0


def _add_eval_options(p) -> None:
    p.add_argument("--ckpt", default="checkpoints/byol_shapes", help="checkpoint file or run folder (default: make "
                   "pretrain's), or random:ARCH[@WIDTH][,seed=S][,stem=cifar] for a random-init backbone, e.g. "
                   "random:resnet18@0.25")
    p.add_argument("--data-root", help="folder holding the datasets (default: $SIAMBENCH_DATA; none: embedded data)")
    p.add_argument("--results", default="results", help="folder of result records (default: results)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--num-workers", type=int, default=2, help="data loader workers")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: $OMP_NUM_THREADS, else the "
                   "cores this process may use); lower it on a shared or busy machine")


def _data(args) -> int:
    from .data import get_dataset_info, list_datasets

    for name in list_datasets():
        info = get_dataset_info(name)
        where = "embedded" if info.embedded else f"<data root>/{info.subdir or name}"
        print(f"{name:12s} {where:32s} splits: {', '.join(info.splits)}")
    return 0


def _data_check(args) -> int:
    from .data.prepare import check_all, check_report, exit_status

    statuses = check_all(args.data_root, args.datasets.split(",") if args.datasets else None)
    print(check_report(statuses, args.verbose))
    return exit_status(statuses, named=bool(args.datasets))


def _data_prepare(args) -> int:
    from .data.prepare import check, prepare

    path = prepare(args.name, args.data_root)
    print("\n".join(check(args.name, args.data_root).lines()))
    print(f"manifest written: {path}")
    return 0


def _preset_help() -> str:
    """Each stage's presets, from its config folder."""
    from .configs import list_presets

    return "; ".join(f"{s.name} {'|'.join(s.protocol_choices or list_presets(s.presets))}" for s in STAGES.values())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siambench", description="BYOL/SimSiam pretraining and SSL evaluation.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pretrain", help="pretrain an encoder", description=PRETRAIN_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="byol_shapes", help="preset name (see --list-configs) or a YAML file")
    p.add_argument("--resume", metavar="auto|PATH", help="continue from the run's newest checkpoint (auto) or a given one")
    p.add_argument("--data-root", help="folder holding the datasets (default: $SIAMBENCH_DATA)")
    p.add_argument("--strict-data", action="store_true", help="stop at the first unreadable image instead of skipping it")
    p.add_argument("--export-only", metavar="RUN_DIR", help="only write backbone.pth + meta.json from a run's newest checkpoint")
    p.add_argument("--random-init", action="store_true", help="train nothing: export the preset's backbone at "
                   "random init (seed=S) into <output_dir>/<preset>_random_init/ (or name=), the same as "
                   "schedule.total_steps=0; needs no data")
    p.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (train.threads; default: "
                   "$OMP_NUM_THREADS, else the cores this process may use); lower it on a shared or busy machine")
    p.add_argument("--list-configs", action="store_true", help="list the shipped presets and exit")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.base_lr=0.3")
    p.set_defaults(func=_pretrain)

    e = sub.add_parser("eval", help="run one evaluation and write its record",
                       description="Evaluate a checkpoint; the record goes to RESULTS/<task>__<dataset>__<protocol>__"
                       "seed<S>__<sha>.json and an existing record is not recomputed.")
    e.add_argument("task", choices=list(STAGES),
                   help="; ".join(f"{s.name}: {s.summary}" for s in STAGES.values()))
    e.add_argument("--dataset", help="registry name (siambench data list)")
    e.add_argument("--protocol", "--preset", default=None, help="preset (default: the stage's for the dataset): "
                   f"{_preset_help()}")
    e.add_argument("--datasets", help="transfer: all (the 12 of BYOL's Table 3) or names, comma-separated")
    e.add_argument("--grid", choices=["full", "small", "tiny"], default="full",
                   help="transfer finetune: the protocol's 7x8 (LR, wd) grid, a 3x2 grid, or the CPU stand-in preset")
    e.add_argument("--seeds", "--trials", type=int, default=1, help="run seeds SEED .. SEED+N-1, one record each "
                   "(MoCo and BYOL report detection and segmentation as the mean of 5)")
    e.add_argument("--task", dest="detection_task", choices=["voc0712", "coco_1x", "coco_2x", "tiny"],
                   help="detection: MoCo's R50-C4 protocol on VOC07+12 or COCO (1x/2x), or the tiny CPU check")
    e.add_argument("--gpus", type=int, help="detection: train on N GPUs, schedule scaled linearly "
                   "(batch and LR x N/8, iterations x 8/N); default: every visible GPU, schedule as written. "
                   "segmentation, depth, semisup, transfer: run this command as N torchrun processes (DDP), "
                   "the global batch as written (gloo CPU processes where there is no GPU)")
    e.add_argument("--fraction", type=int, choices=[1, 10], default=1, help="semisup: percent of labels")
    e.add_argument("--subset-file", help="semisup: SimCLR's 1percent.txt / 10percent.txt (else a seeded "
                   "class-balanced draw, flagged as not standard)")
    e.add_argument("--force", action="store_true", help="recompute even if the record exists")
    _add_eval_options(e)
    e.add_argument("overrides", nargs="*", metavar="key=value", help="protocol overrides (recorded as a variant)")
    e.set_defaults(func=_eval)

    a = sub.add_parser("eval-all", help="every evaluation for one checkpoint, resumable (make eval-all)")
    _add_eval_options(a)
    a.add_argument("--tasks", help=f"only these stages or tasks, comma-separated ({', '.join(STAGES)})")
    a.add_argument("--baseline", metavar="random|CKPT", help="also evaluate a baseline and show it beside the "
                   "checkpoint: random = a random-init backbone of the checkpoint's architecture (random:ARCH@WIDTH, "
                   "seed 0), or any checkpoint name, e.g. random:resnet18@0.25,seed=1")
    a.add_argument("--wide", action="store_true", help="summary with one row per checkpoint and one column per "
                   "evaluation (default: one row per task, dataset, preset and metric, one column per checkpoint)")
    a.set_defaults(func=_eval_all)

    r = sub.add_parser("report", help="tables and plots from result records")
    r.add_argument("results_dir", nargs="?", default="results")
    r.add_argument("--format", choices=["md", "latex", "csv"], default="md")
    r.add_argument("-o", "--output", help="write the table to this file")
    r.add_argument("--plots", metavar="DIR", help="also write PNG plots into DIR")
    r.add_argument("--table", choices=["summary", "transfer"], default="summary",
                   help="summary: one row per (task, dataset, preset, metric), one column per checkpoint; transfer: "
                   "BYOL's Table 3 layout, linear and fine-tuned blocks beside the published rows")
    r.add_argument("--wide", action="store_true", help="summary: one row per checkpoint, one column per evaluation "
                   "(the layout of papers' tables)")
    r.set_defaults(func=_report)

    d = sub.add_parser("data", help="datasets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    dl = dsub.add_parser("list", help="list the registered datasets")
    dl.set_defaults(func=_data)
    dc = dsub.add_parser("check", help="for each dataset of the benchmarks: found or missing, image counts per "
                         "split against the published ones, and how to prepare what is missing",
                         epilog="exit status: 0 when every dataset found is complete (absent ones are listed, one "
                         "line each); 3 when one is present but incomplete (a split's count differs from the "
                         "published one, listed images are missing, it differs from its manifest, or it cannot be "
                         "read); 1 when a dataset named with --datasets is absent; 2 on bad input.")
    dc.add_argument("--data-root", help="folder holding the datasets (default: $SIAMBENCH_DATA)")
    dc.add_argument("--datasets", help="only these, comma-separated (default: every dataset with published sizes)")
    dc.add_argument("--verbose", action="store_true", help="for absent datasets, the full layout expected and how "
                    "to prepare it")
    dc.set_defaults(func=_data_check)
    dp = dsub.add_parser("prepare", help="download a dataset where a downloader exists (else print the manual "
                         "steps), verify its layout and write its manifest of files, labels and checksums")
    dp.add_argument("name", help="registry name (siambench data list)")
    dp.add_argument("--data-root", required=True, help="folder that holds (or will hold) the datasets")
    dp.set_defaults(func=_data_prepare)
    from .checkpoints.cli import add_parser as add_ckpt_parser; add_ckpt_parser(sub)  # noqa: E702, I001
    from .zoo.cli import add_parser as add_zoo_parser; add_zoo_parser(sub)  # noqa: E702, I001
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    # key=value overrides may follow the options too (argparse only takes them before).
    if extra and (not hasattr(args, "overrides") or any(x.startswith("-") or "=" not in x for x in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    try:
        return args.func(args)
    except SiambenchError as err:
        # Not wrapped: a line break inside a path or a key name would make it impossible to copy.
        print(f"siambench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.command == "pretrain":
            print("siambench: interrupted; the newest checkpoint is intact (resume with --resume auto).",
                  file=sys.stderr)
        else:
            print(f"siambench: {args.command} interrupted; files are written whole or not at all.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
