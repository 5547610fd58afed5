"""Tables built only from result records: Markdown, LaTeX and CSV.

The default layout is long: one row per (task, dataset, preset) with its
primary metric, one column per checkpoint, so that it stays readable in a
terminal however many evaluations there are, and a baseline (random init)
sits beside the checkpoint it is compared with. ``wide=True`` gives the
transposed layout of papers: one row per checkpoint, one column per
evaluation. Several seeds of the same run are shown as mean ± std.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import OrderedDict, defaultdict

from ..stages import TASK_ORDER

BASELINE_PREFIX = "random:"  # checkpoints named by the random-init scheme (siambench.checkpoints.random_init)


def checkpoint_label(record: dict) -> str:
    ckpt = record["checkpoint"]
    return ckpt.get("name") or ckpt["sha256"][:12]


def is_baseline(label: str) -> bool:
    """A random-init checkpoint: shown after the others, as the baseline they are compared with."""
    return label.startswith(BASELINE_PREFIX)


def _checkpoint_order(labels) -> list[str]:
    return sorted(labels, key=is_baseline)  # stable: first-seen order, baselines last


def column_label(record: dict) -> str:
    return f"{record['task']} {record['dataset']} ({record['protocol']}) {record['primary_metric']}"


def _column_sort(label_and_record):
    _, record = label_and_record
    task = record["task"]
    return (TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER), task, record["dataset"], record["protocol"])


def summarize(records: list[dict]) -> tuple[list[str], list[str], dict]:
    """``(row labels, column labels, cells)`` with ``cells[row][col] = (mean, std, n)``."""
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    columns: dict[str, dict] = {}
    rows: OrderedDict[str, None] = OrderedDict()
    for r in records:
        row, col = checkpoint_label(r), column_label(r)
        rows[row] = None
        columns.setdefault(col, r)
        values[(row, col)].append(float(r["metrics"][r["primary_metric"]]))
    cols = [c for c, _ in sorted(columns.items(), key=_column_sort)]
    cells: dict = defaultdict(dict)
    for (row, col), v in values.items():
        cells[row][col] = (statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v))
    return _checkpoint_order(rows), cols, cells


def summarize_long(records: list[dict]) -> tuple[list[tuple[str, str, str, str]], list[str], dict]:
    """``(evaluations, checkpoints, cells)``: one evaluation per (task, dataset, preset, metric),
    ``cells[evaluation][checkpoint] = (mean, std, n)``."""
    values: dict[tuple, list[float]] = defaultdict(list)
    evaluations: dict[tuple, dict] = {}
    checkpoints: OrderedDict[str, None] = OrderedDict()
    for r in records:
        evaluation = (r["task"], r["dataset"], r["protocol"], r["primary_metric"])
        evaluations.setdefault(evaluation, r)
        checkpoints[checkpoint_label(r)] = None
        values[evaluation, checkpoint_label(r)].append(float(r["metrics"][r["primary_metric"]]))
    order = [e for e, _ in sorted(evaluations.items(), key=_column_sort)]
    cells: dict = defaultdict(dict)
    for (evaluation, ckpt), v in values.items():
        cells[evaluation][ckpt] = (statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v))
    return order, _checkpoint_order(checkpoints), cells


LONG_HEADER = ("task", "dataset", "preset", "metric")


def _aligned(header: list[str], rows: list[list[str]], numeric_from: int) -> str:
    """A Markdown table padded so that its columns line up in a terminal too."""
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]

    def line(cells):
        return "| " + " | ".join(c.rjust(w) if i >= numeric_from else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if i >= numeric_from else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])


def format_cell(cell, latex=False) -> str:
    if cell is None:
        return "–"
    mean, std, n = cell
    if n == 1:
        return f"{mean:.2f}"
    pm = r" $\pm$ " if latex else " ± "
    return f"{mean:.2f}{pm}{std:.2f}"


def to_markdown(records: list[dict], wide: bool = False) -> str:
    """Long by default (evaluations × checkpoints); ``wide``: checkpoints × evaluations."""
    if not wide:
        evaluations, ckpts, cells = summarize_long(records)
        rows = [[*e, *(format_cell(cells[e].get(c)) for c in ckpts)] for e in evaluations]
        return _aligned([*LONG_HEADER, *ckpts], rows, numeric_from=len(LONG_HEADER))
    rows, cols, cells = summarize(records)
    lines = ["| checkpoint | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for row in rows:
        lines.append(f"| {row} | " + " | ".join(format_cell(cells[row].get(c)) for c in cols) + " |")
    return "\n".join(lines)


def latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#")):
        text = text.replace(a, b)
    return text


def to_latex(records: list[dict], wide: bool = False) -> str:
    """Long by default (evaluations × checkpoints); ``wide``: checkpoints × evaluations, as papers print them."""
    if not wide:
        evaluations, ckpts, cells = summarize_long(records)
        lines = [r"\begin{tabular}{llll" + "c" * len(ckpts) + "}", r"\toprule",
                 " & ".join(latex_escape(h) for h in (*LONG_HEADER, *ckpts)) + r" \\", r"\midrule"]
        for e in evaluations:
            lines.append(" & ".join([*(latex_escape(x) for x in e),
                                     *(format_cell(cells[e].get(c), latex=True) for c in ckpts)]) + r" \\")
        return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"])
    rows, cols, cells = summarize(records)
    lines = [r"\begin{tabular}{l" + "c" * len(cols) + "}", r"\toprule",
             "checkpoint & " + " & ".join(latex_escape(c) for c in cols) + r" \\", r"\midrule"]
    for row in rows:
        lines.append(latex_escape(row) + " & " + " & ".join(format_cell(cells[row].get(c), latex=True) for c in cols) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


def to_csv(records: list[dict], wide: bool = False) -> str:
    """Long format: one line per record and metric, so nothing is lost to the summary (``wide`` is ignored)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["checkpoint", "sha256", "task", "dataset", "protocol", "seed", "metric", "value", "primary"])
    for r in records:
        for name, value in r["metrics"].items():
            writer.writerow([checkpoint_label(r), r["checkpoint"]["sha256"], r["task"], r["dataset"], r["protocol"],
                             r["seed"], name, value, name == r["primary_metric"]])
    return out.getvalue()


def notes(records: list[dict]) -> list[str]:
    """The distinct notes of the records (embedded stand-ins, non-standard subsets, skipped stages)."""
    seen: OrderedDict[str, None] = OrderedDict()
    for r in records:
        for note in r.get("notes", []):
            seen[f"{r['task']} {r['dataset']}: {note}"] = None
    return list(seen)


def grouped_notes(records: list[dict]) -> list[str]:
    """:func:`notes` with each distinct note once, followed by the evaluations it concerns."""
    where: OrderedDict[str, list[str]] = OrderedDict()
    for r in records:
        for note in r.get("notes", []):
            label = f"{r['task']} {r['dataset']}"
            if label not in where.setdefault(note, []):
                where[note].append(label)
    return [f"{note}: {', '.join(labels)}" for note, labels in where.items()]


def baseline_lines(records: list[dict]) -> list[str]:
    """One line per random-init checkpoint among ``records``, saying what it stands for."""
    labels = OrderedDict.fromkeys(checkpoint_label(r) for r in records)
    return [f"baseline: {label} is a random-init backbone of that architecture (never trained)"
            for label in labels if is_baseline(label)]


FORMATS = {"md": to_markdown, "latex": to_latex, "csv": to_csv}
