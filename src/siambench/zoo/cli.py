"""``siambench zoo list``, ``zoo info NAME`` and ``zoo fetch NAME``."""

from __future__ import annotations

import argparse

from .registry import INDEX_ENV, ZooEntry, entries, get_entry

ZOO_HELP = f"""\
Published ResNet checkpoints, evaluated by name: --ckpt zoo:NAME.

examples:
  siambench zoo list
  siambench zoo info mocov2_r50_800ep
  siambench eval knn --ckpt zoo:dino_r50 --dataset imagenet --data-root /data
  make eval-all CKPT=zoo:mocov2_r50_800ep DATA_ROOT=/data

A zoo checkpoint is downloaded once into $SIAMBENCH_CACHE/zoo/NAME/ (a killed
download resumes), checked against the publisher's checksum and the sha256
recorded at its first download before it is ever loaded, and used offline
from then on (SIAMBENCH_OFFLINE=1 forbids downloads). Reports put the
published numbers listed by `zoo info` beside the measured ones.
${INDEX_ENV} may name a JSON file of further entries.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``zoo`` with its subcommands on the ``siambench`` command line."""
    p = subparsers.add_parser("zoo", help="published checkpoints (--ckpt zoo:NAME)", description=ZOO_HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="zoo_command", required=True)
    sub.add_parser("list", help="every entry: method, architecture, epochs, size, cached, published top-1, source"
                   ).set_defaults(func=list_command)
    i = sub.add_parser("info", help="one entry with its URL, checksum, layout, license and every published number "
                       "with its source")
    i.add_argument("name")
    i.set_defaults(func=info_command)
    f = sub.add_parser("fetch", help="download and verify an entry now (what zoo:NAME does on first use)")
    f.add_argument("name")
    f.set_defaults(func=fetch_command)
    return p


def _size(entry: ZooEntry) -> str:
    from .download import cached_path

    path = cached_path(entry)
    if path.is_file():
        return f"{path.stat().st_size / 1e6:.0f} MB"
    if entry.size is not None:
        return f"{entry.size / 1e6:.0f} MB"
    return f"~{entry.approx_size}" if entry.approx_size else "?"


def _arch(entry: ZooEntry) -> str:
    return f"{entry.arch} {entry.width:g}x"


def list_command(args) -> int:
    from .download import is_cached

    rows = [("name", "method", "arch", "epochs", "size", "cached", "linear top-1", "source")]
    for entry in entries().values():
        top1 = entry.linear_top1()
        rows.append((entry.name, entry.method, _arch(entry), str(entry.epochs or "?"), _size(entry),
                     "yes" if is_cached(entry) else "no", f"{top1.value:.1f}" if top1 else "–", entry.url_source))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    return 0


def info_command(args) -> int:
    from ..report.published import number
    from .download import cached_path, pin_path

    entry = get_entry(args.name)
    path = cached_path(entry)
    pin = pin_path(path)

    def row(label, value):
        print(f"{label + ':':15s}{value}")

    row("name", f"zoo:{entry.name}")
    row("method", entry.method)
    row("architecture", _arch(entry))
    row("epochs", entry.epochs if entry.epochs is not None else "not stated by the publisher")
    for url in entry.urls:
        row("url", url)
    row("published in", entry.url_source)
    row("checksum", entry.publisher_checksum)
    if pin.is_file():
        row("pinned sha256", pin.read_text().split()[0])
    row("size", _size(entry))
    row("layout", entry.layout)
    row("input", "ImageNet mean/std normalisation" if entry.input_normalization == "imagenet"
        else "un-normalised RGB in [0, 1]")
    row("license", entry.license)
    row("cache", f"{path} ({'cached' if path.is_file() else 'not downloaded'})")
    if entry.manual:
        row("by hand", entry.manual)
    print("published:")
    for p in expand_published(entry):
        print(f"  {p.task} {p.dataset} {p.metric} = {number(p.value)}   [{p.source}]")
    for note in entry.notes:
        row("note", note)
    return 0


def expand_published(entry: ZooEntry):
    """The entry's numbers, with its transfer-table row spelled out per dataset."""
    from ..report.published import published_numbers

    return published_numbers(entry)


def fetch_command(args) -> int:
    from .download import fetch

    print(fetch(args.name))
    return 0
