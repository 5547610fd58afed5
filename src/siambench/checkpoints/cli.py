"""``siambench ckpt inspect`` and ``siambench ckpt convert``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import CheckpointError
from .audit import summarize
from .canonical import examine, load
from .export import EXPORTERS, export
from .formats import FORMATS, format_names

CKPT_HELP = """\
Inspect and convert ResNet checkpoints, whoever published them.

examples:
  siambench ckpt inspect moco_v2_800ep_pretrain.pth.tar
  siambench ckpt inspect pretrain_res50x1.pkl --json
  siambench ckpt convert checkpoints/byol_shapes --to detectron2 -o byol_shapes.pkl
  siambench ckpt convert solo_byol.ckpt --to timm -o r18.pth --format solo-learn --prefix backbone.

The format is detected from the container and the key patterns; --format
and --prefix override the detection. Loading never runs code from the file
(torch.load(weights_only=True); a restricted unpickler for .pkl files), and
refuses a backbone that would load only partly.
"""


def _formats_epilog() -> str:
    lines = ["formats read (detection order):"]
    lines += [f"  {f.name:19s} {f.summary}" for f in FORMATS.values()]
    return "\n".join(lines)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="checkpoint file, or a siambench run folder")
    p.add_argument("--format", choices=format_names(), metavar="NAME",
                   help="skip detection and read the file as this format (see the list below)")
    p.add_argument("--prefix", metavar="P", help="the key prefix the backbone sits under, e.g. 'module.encoder_q.'")
    p.add_argument("--allow-nonfinite", action="store_true",
                   help="accept NaN/inf in backbone tensors (refused by default; recorded in the metadata)")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``ckpt`` with its subcommands on the ``siambench`` command line."""
    raw = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser("ckpt", help="inspect and convert checkpoints", description=CKPT_HELP,
                              epilog=_formats_epilog(), formatter_class=raw)
    sub = p.add_subparsers(dest="ckpt_command", required=True)
    i = sub.add_parser("inspect", help="detected format, architecture and key audit of a checkpoint",
                       epilog=_formats_epilog(), formatter_class=raw)
    _add_common(i)
    i.add_argument("--json", action="store_true", help="print the report as JSON")
    i.set_defaults(func=inspect_command)
    c = sub.add_parser("convert", help="write the backbone in another framework's format",
                       epilog=_formats_epilog() + "\n\nexport targets:\n" +
                       "\n".join(f"  {e.name:12s} {e.summary}" for e in EXPORTERS.values()),
                       formatter_class=raw)
    _add_common(c)
    c.add_argument("--to", required=True, choices=list(EXPORTERS), help="target format")
    c.add_argument("-o", "--output", required=True, metavar="OUT", help="file to write")
    c.set_defaults(func=convert_command)
    return p


def _text_report(report: dict) -> str:
    def row(label, value):
        return f"{label + ':':14s}{value}"

    lines = [row("path", report["source_path"]), row("sha256", report["sha256"])]
    container = report["container"]
    if report.get("standins"):
        container += f" (Python objects kept as inert data: {', '.join(report['standins'])})"
    lines.append(row("container", container))
    lines.append(row("format", f"{report['source_format']}: {report['format_summary']}"))
    if "prefix" in report:
        lines.append(row("prefix", repr(report["prefix"])))
    if "arch" in report:
        lines.append(row("architecture", f"{report['arch']} (depth {report['depth']}), width {report['width']:g}×, "
                                         f"{report['stem']} stem, {report['padding']} padding"))
    if "expected_tensors" in report:
        filled = report["filled_num_batches_tracked"]
        lines.append(row("tensors", f"{report['num_tensors']} of {report['expected_tensors']} backbone tensors found"
                                    + (f"; {filled} num_batches_tracked counters absent (set to 0)" if filled else "")))
    if report.get("dropped"):
        lines.append(row("dropped", "; ".join(f"{k}: {v}" for k, v in report["dropped"].items())))
    if report.get("ignored_entries"):
        lines.append(row("also dropped", ", ".join(report["ignored_entries"]) + " (entries without backbone weights)"))
    if "input_normalization" in report:
        norm = report["input_normalization"]
        lines.append(row("input", "ImageNet mean/std normalisation" if norm == "imagenet" else
                         "un-normalised RGB in [0, 1]" if norm == "none" else norm))
    for flag in ("fc_bias_untrained", "stem_padding"):
        if flag in report:
            lines.append(row(flag, report[flag]))
    if report.get("missing"):
        lines.append(row("missing", summarize(report["missing"], limit=10)))
    if report.get("misshapen"):
        lines.append(row("misshapen", ", ".join(f"{m['key']} {m['shape']} (expected {m['expected']})"
                                                for m in report["misshapen"][:6])))
    if report.get("unexpected"):
        lines.append(row("unexpected", summarize(report["unexpected"], limit=10)))
    for note in report.get("notes", []):
        lines.append(row("note", note))
    lines.append(row("status", "OK: every backbone tensor found with the right shape" if report["ok"] else "REFUSED"))
    return "\n".join(lines)


def inspect_command(args) -> int:
    result = examine(args.path, args.format, args.prefix, args.allow_nonfinite)
    report = result.report()
    print(json.dumps(report, indent=2, default=str) if args.json else _text_report(report))
    if not result.ok:
        raise CheckpointError(" ".join(result.problems))
    return 0


def convert_command(args) -> int:
    out = Path(args.output)
    if out.is_dir():
        raise CheckpointError(f"-o {out} is an existing folder; expected the path of the file to write.")
    backbone = load(args.path, args.format, args.prefix, args.allow_nonfinite)
    try:
        paths, notes = export(backbone, args.to, out)
    except OSError as exc:
        raise CheckpointError(f"could not write {exc.filename or out}: {exc.strerror or exc}.") from None
    meta = backbone.meta
    print(f"read {meta['source_path']} as {meta['source_format']}: {meta['arch']}, width {meta['width']:g}×, "
          f"{meta['stem']} stem, {meta['padding']} padding, {meta['num_tensors']} backbone tensors")
    for path in paths:
        print(f"wrote {path}")
    for note in notes:
        print(f"note: {note}")
    return 0
