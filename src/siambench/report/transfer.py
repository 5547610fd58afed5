"""The transfer table in the layout of BYOL's Table 3, our checkpoints beside the published rows.

Two blocks, linear evaluation on frozen features and fine-tuning, with one
column per benchmark dataset in the paper's order. Each checkpoint is one
row (seeds pooled as mean ± std); the paper's rows follow, marked as
published and credited to their source, so a reader sees at once how a run
compares. Datasets outside the benchmark (the embedded stand-ins) get
columns after the twelve and a note saying they are not the benchmark.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ..data.registry import benchmark_datasets
from ..errors import ConfigError
from .plots import _pyplot
from .tables import checkpoint_label, format_cell, latex_escape, notes

# (registry name, Table 3 header, the dataset's metric), in the table's order: from each dataset's registry entry.
BENCHMARK = tuple((info.name, info.benchmark.title, info.metric) for info in benchmark_datasets())
BLOCKS = (("transfer-linear", "Linear evaluation"), ("transfer-finetune", "Fine-tuned"))
FORMATS = ("md", "latex", "csv")


@dataclass(frozen=True)
class PublishedRow:
    """One row of a paper's table: the method, where the numbers come from, its value for each dataset by name."""

    method: str
    source: str
    values: dict[str, float]

    @property
    def label(self) -> str:
        return f"{self.method} (published)"


_BYOL = "BYOL paper (Grill et al. 2020), Table 3"
_BYOL_REPRO = "BYOL paper (Grill et al. 2020), Table 3: the BYOL authors' reproduction of SimCLR"
_CITED = "SimCLR paper (Chen et al. 2020), following Kornblith et al. 2019, as cited in BYOL paper, Table 3"

PUBLISHED = {
    "transfer-linear": (
        PublishedRow("BYOL", _BYOL, {
            "food101": 75.3, "cifar10": 91.3, "cifar100": 78.4, "birdsnap": 57.2, "sun397": 62.2,
            "stanford_cars": 67.8, "fgvc_aircraft": 60.6, "voc2007": 82.5, "dtd": 75.5, "oxford_pets": 90.4,
            "caltech101": 94.2, "flowers102": 96.1,
        }),
        PublishedRow("SimCLR repro", _BYOL_REPRO, {
            "food101": 72.8, "cifar10": 90.5, "cifar100": 74.4, "birdsnap": 42.4, "sun397": 60.6,
            "stanford_cars": 49.3, "fgvc_aircraft": 49.8, "voc2007": 81.4, "dtd": 75.7, "oxford_pets": 84.6,
            "caltech101": 89.3, "flowers102": 92.6,
        }),
        PublishedRow("SimCLR", _CITED, {
            "food101": 68.4, "cifar10": 90.6, "cifar100": 71.6, "birdsnap": 37.4, "sun397": 58.8,
            "stanford_cars": 50.3, "fgvc_aircraft": 50.3, "voc2007": 80.5, "dtd": 74.5, "oxford_pets": 83.6,
            "caltech101": 90.3, "flowers102": 91.2,
        }),
        PublishedRow("Supervised-IN", _CITED, {
            "food101": 72.3, "cifar10": 93.6, "cifar100": 78.3, "birdsnap": 53.7, "sun397": 61.9,
            "stanford_cars": 66.7, "fgvc_aircraft": 61.0, "voc2007": 82.8, "dtd": 74.9, "oxford_pets": 91.5,
            "caltech101": 94.5, "flowers102": 94.7,
        }),
    ),
    "transfer-finetune": (
        PublishedRow("BYOL", _BYOL, {
            "food101": 88.5, "cifar10": 97.8, "cifar100": 86.1, "birdsnap": 76.3, "sun397": 63.7,
            "stanford_cars": 91.6, "fgvc_aircraft": 88.1, "voc2007": 85.4, "dtd": 76.2, "oxford_pets": 91.7,
            "caltech101": 93.8, "flowers102": 97.0,
        }),
        PublishedRow("SimCLR repro", _BYOL_REPRO, {
            "food101": 87.5, "cifar10": 97.4, "cifar100": 85.3, "birdsnap": 75.0, "sun397": 63.9,
            "stanford_cars": 91.4, "fgvc_aircraft": 87.6, "voc2007": 84.5, "dtd": 75.4, "oxford_pets": 89.4,
            "caltech101": 91.7, "flowers102": 96.6,
        }),
        PublishedRow("SimCLR", _CITED, {
            "food101": 88.2, "cifar10": 97.7, "cifar100": 85.9, "birdsnap": 75.9, "sun397": 63.5,
            "stanford_cars": 91.3, "fgvc_aircraft": 88.1, "voc2007": 84.1, "dtd": 73.2, "oxford_pets": 89.2,
            "caltech101": 92.1, "flowers102": 97.0,
        }),
        PublishedRow("Supervised-IN", _CITED, {
            "food101": 88.3, "cifar10": 97.5, "cifar100": 86.4, "birdsnap": 75.8, "sun397": 64.3,
            "stanford_cars": 92.1, "fgvc_aircraft": 86.0, "voc2007": 85.0, "dtd": 74.6, "oxford_pets": 92.1,
            "caltech101": 93.3, "flowers102": 97.6,
        }),
        PublishedRow("Random init", _CITED, {
            "food101": 86.9, "cifar10": 95.9, "cifar100": 80.2, "birdsnap": 76.1, "sun397": 53.6,
            "stanford_cars": 91.4, "fgvc_aircraft": 85.9, "voc2007": 67.3, "dtd": 64.8, "oxford_pets": 81.5,
            "caltech101": 72.6, "flowers102": 92.0,
        }),
    ),
}


def _transfer(records: list[dict]) -> list[dict]:
    tasks = dict(BLOCKS)
    return [r for r in records if r["task"] in tasks]


def columns(records: list[dict]) -> list[tuple[str, str]]:
    """``(dataset, header)``: the benchmark's twelve in Table 3's order, then any stand-ins by name."""
    known = {name for name, _, _ in BENCHMARK}
    extra = sorted({r["dataset"] for r in _transfer(records)} - known)
    return [(name, header) for name, header, _ in BENCHMARK] + [(name, f"{name} (stand-in)") for name in extra]


def our_rows(records: list[dict], task: str) -> dict[str, dict[str, tuple[float, float, int]]]:
    """``{row: {dataset: (mean, std, n)}}`` for one block, rows sorted by label.

    A row is a checkpoint; one evaluated under several protocols gets a row
    per protocol, since pooling their seeds would mix different runs. The
    std is the sample standard deviation (n − 1), as in the summary table,
    and a seed found twice counts once.
    """
    mine = [r for r in records if r["task"] == task]
    protocols = defaultdict(set)
    for r in mine:
        protocols[checkpoint_label(r)].add(r["protocol"])
    values: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for r in mine:
        label = checkpoint_label(r)
        row = label if len(protocols[label]) == 1 else f"{label} ({r['protocol']})"
        values[row, r["dataset"]][r["seed"]] = float(r["metrics"][r["primary_metric"]])
    rows: dict[str, dict] = {}
    for (row, dataset), by_seed in values.items():
        v = list(by_seed.values())
        rows.setdefault(row, {})[dataset] = (statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v))
    return dict(sorted(rows.items()))


def _blocks(records: list[dict], latex: bool) -> list[tuple[str, list[tuple[str, PublishedRow | None, list[str]]]]]:
    """``[(block title, [(row label, published row or None, cells)])]``, cells as printed."""
    cols = columns(records)
    blocks = []
    for task, title in BLOCKS:
        rows = [(label, None, [format_cell(cells[d], latex) if d in cells else "" for d, _ in cols])
                for label, cells in our_rows(records, task).items()]
        for pub in PUBLISHED[task]:
            rows.append((pub.label, pub, [f"{pub.values[d]:.1f}" if d in pub.values else "" for d, _ in cols]))
        blocks.append((title, rows))
    return blocks


def _metrics_note() -> str:
    """Which columns report which metric, from the registry: "VOC2007 is 11-point mAP, ..., the others top-1"."""
    parts = []
    for metric, text in (("map11", "11-point mAP"), ("mean_per_class", "mean per-class accuracy")):
        names = [title for _, title, m in BENCHMARK if m == metric]
        if names:
            listed = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
            parts.append(f"{listed} {'are' if len(names) > 1 else 'is'} {text}")
    return ", ".join(parts + ["the others top-1"])


def transfer_notes(records: list[dict]) -> list[str]:
    """What a reader needs to read the table: seeds, sources, stand-ins, metrics that differ from the benchmark's."""
    out = ["Our rows: mean ± sample std (n − 1) over seeds where a checkpoint has several, else the single run; "
           f"blank: not evaluated. Numbers in percent; {_metrics_note()}."]
    by_source: dict[str, list[str]] = {}
    for rows in PUBLISHED.values():
        for pub in rows:
            methods = by_source.setdefault(pub.source, [])
            if pub.method not in methods:
                methods.append(pub.method)
    out += [f"{', '.join(methods)} (published): {source}." for source, methods in by_source.items()]
    stand_ins = [name for name, header in columns(records) if header.endswith("(stand-in)")]
    if stand_ins:
        out.append(f"{', '.join(stand_ins)}: stand-in (embedded data), not part of the transfer benchmark; "
                   f"{'its' if len(stand_ins) == 1 else 'their'} numbers are not comparable with the published rows.")
    expected = {name: (header, metric) for name, header, metric in BENCHMARK}
    for r in _transfer(records):
        if r["dataset"] in expected and r["primary_metric"] != expected[r["dataset"]][1]:
            header, metric = expected[r["dataset"]]
            note = (f"{checkpoint_label(r)}, {header} ({r['task']}): reports {r['primary_metric']}, not the "
                    f"benchmark's {metric}; not comparable with the published rows.")
            if note not in out:
                out.append(note)
    return out + notes(_transfer(records))


def _markdown(records: list[dict]) -> str:
    cols = columns(records)
    lines = ["| Method | " + " | ".join(h for _, h in cols) + " |", "|---|" + "---|" * len(cols)]
    for title, rows in _blocks(records, latex=False):
        lines.append(f"| *{title}:* |" + " |" * len(cols))
        lines += [f"| {label} | " + " | ".join(cells) + " |" for label, _, cells in rows]
    return "\n".join(lines + [""] + [f"- {n}" for n in transfer_notes(records)])


def _latex(records: list[dict]) -> str:
    cols = columns(records)
    lines = [r"\begin{tabular}{l" + "c" * len(cols) + "}", r"\toprule",
             "Method & " + " & ".join(latex_escape(h) for _, h in cols) + r" \\"]
    for title, rows in _blocks(records, latex=True):
        lines += [r"\midrule", rf"\multicolumn{{{len(cols) + 1}}}{{l}}{{\emph{{{title}:}}}} \\"]
        for label, pub, cells in rows:
            label = rf"\textit{{{latex_escape(label)}}}" if pub else latex_escape(label)
            lines.append(label + " & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines + [f"% {latex_escape(n)}" for n in transfer_notes(records)])


def _csv(records: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["block", "method", "published", "source", *(h for _, h in columns(records))])
    for title, rows in _blocks(records, latex=False):
        for label, pub, cells in rows:
            writer.writerow([title, label, pub is not None, pub.source if pub else "", *cells])
    return out.getvalue()


def transfer_table(records: list[dict], fmt: str = "md") -> str:
    """BYOL's Table 3 with our checkpoints' rows, as Markdown, LaTeX or CSV.

    Only ``transfer-linear`` and ``transfer-finetune`` records are read;
    without any, the table still holds the published rows. Markdown and
    LaTeX end with the notes (LaTeX as comments); CSV carries each row's
    source in a column instead.
    """
    writers = {"md": _markdown, "latex": _latex, "csv": _csv}
    if fmt not in writers:
        raise ConfigError(f"unknown table format {fmt!r}; expected one of {', '.join(FORMATS)}.")
    return writers[fmt](records)


def transfer_bars(records: list[dict], out_path: str | Path) -> Path | None:
    """Per-dataset bars of our rows beside the published BYOL row, one panel per block with records.

    Returns None, writing nothing, when there are no transfer records.
    """
    blocks = [(task, title) for task, title in BLOCKS if any(r["task"] == task for r in records)]
    if not blocks:
        return None
    plt = _pyplot()
    cols = columns(records)
    rows = {task: our_rows(records, task) for task, _ in blocks}
    colors = {label: f"C{i % 10}" for i, label in enumerate(sorted({label for r in rows.values() for label in r}))}
    fig, axes = plt.subplots(len(blocks), 1, figsize=(max(6, 0.9 * len(cols) + 3), 3.4 * len(blocks)), squeeze=False)
    for ax, (task, title) in zip(axes[:, 0], blocks):
        byol = PUBLISHED[task][0]
        series = [(label, [cells.get(d, (float("nan"), 0.0, 0))[:2] for d, _ in cols], {"color": colors[label]})
                  for label, cells in rows[task].items()]
        series.append((byol.label, [(byol.values.get(d, float("nan")), 0.0) for d, _ in cols],
                       {"color": "0.6", "hatch": "//"}))
        width = 0.8 / len(series)
        for i, (label, cells, style) in enumerate(series):
            xs = [j + i * width for j in range(len(cols))]
            ax.bar(xs, [m for m, _ in cells], width=width, yerr=[s for _, s in cells], label=label, **style)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(cols))])
        ax.set_xticklabels([h for _, h in cols], fontsize=7, rotation=30, ha="right")
        ax.set_ylabel("metric (%)")
        ax.set_title(title)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    out_path = Path(out_path)
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
    return out_path
