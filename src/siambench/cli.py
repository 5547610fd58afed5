"""The ``siambench`` command: one subcommand per stage.

Errors of bad input (``SiambenchError``) print as one paragraph and exit with
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from .errors import SiambenchError

PRETRAIN_HELP = """\
Pretrain a ResNet with BYOL or SimSiam.

examples:
  siambench pretrain --config byol_shapes                 # embedded data, CPU, a few minutes
  siambench pretrain --config byol_cifar_r18 data.data_root=/data
  siambench pretrain --config byol_imagenet_r50 --data-root /data schedule.batch_size=1024
  torchrun --nproc_per_node 8 -m siambench pretrain --config simsiam_imagenet_r50 --data-root /data
  siambench pretrain --config byol_shapes --resume auto   # continue a killed run
  siambench pretrain --export-only checkpoints/byol_shapes

Any config key can be overridden as key=value (dotted for nested keys); the
resolved config is saved as <output_dir>/<name>/config.yaml. The run writes
step_<N>.pt checkpoints there, and at the end backbone.pth + meta.json: the
encoder as a torchvision state dict, the input of every evaluation.
"""


def _pretrain(args) -> int:
    from .configs import apply_overrides, list_presets, load_preset

    if args.list_configs:
        print("\n".join(list_presets("pretrain")))
        return 0
    if args.export_only:
        from .pretrain.trainer import export_only

        print(export_only(args.export_only))
        return 0
    cfg = load_preset("pretrain", args.config)
    extra = []
    if args.data_root:
        extra.append(f"data.data_root={args.data_root}")
    if args.strict_data:
        extra.append("data.strict=true")
    cfg = apply_overrides(cfg, extra + args.overrides)
    if not cfg.get("name"):
        cfg = apply_overrides(cfg, [f"name={args.config.rsplit('/', 1)[-1].removesuffix('.yaml')}"])
    from .pretrain.trainer import pretrain

    run_dir = pretrain(cfg, resume=args.resume)
    print(f"backbone written to {run_dir / 'backbone.pth'}")
    return 0


def _data(args) -> int:
    from .data import get_dataset_info, list_datasets

    for name in list_datasets():
        info = get_dataset_info(name)
        where = "embedded" if info.embedded else f"<data root>/{info.subdir or name}"
        print(f"{name:12s} {where:32s} splits: {', '.join(info.splits)}")
    return 0


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
    p.add_argument("--list-configs", action="store_true", help="list the shipped presets and exit")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.base_lr=0.3")
    p.set_defaults(func=_pretrain)

    d = sub.add_parser("data", help="datasets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    dl = dsub.add_parser("list", help="list the registered datasets")
    dl.set_defaults(func=_data)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SiambenchError as err:
        print("\n".join(textwrap.wrap(f"siambench: error: {err}", width=100)), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("siambench: interrupted; the newest checkpoint is intact (resume with --resume auto).", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
