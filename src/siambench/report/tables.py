"""Tables built only from result records: Markdown, LaTeX and CSV.

One row per checkpoint, one column per (task, dataset, protocol) with its
primary metric; several seeds of the same run are shown as mean ± std.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import OrderedDict, defaultdict

TASK_ORDER = ("knn", "linear", "semisup-1pct", "semisup-10pct", "transfer-linear", "transfer-finetune",
              "detection", "segmentation", "depth")


def checkpoint_label(record: dict) -> str:
    ckpt = record["checkpoint"]
    return ckpt.get("name") or ckpt["sha256"][:12]


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
    return list(rows), cols, cells


def format_cell(cell, latex=False) -> str:
    if cell is None:
        return "–"
    mean, std, n = cell
    if n == 1:
        return f"{mean:.2f}"
    pm = r" $\pm$ " if latex else " ± "
    return f"{mean:.2f}{pm}{std:.2f}"


def to_markdown(records: list[dict]) -> str:
    rows, cols, cells = summarize(records)
    lines = ["| checkpoint | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for row in rows:
        lines.append(f"| {row} | " + " | ".join(format_cell(cells[row].get(c)) for c in cols) + " |")
    return "\n".join(lines)


def latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#")):
        text = text.replace(a, b)
    return text


def to_latex(records: list[dict]) -> str:
    rows, cols, cells = summarize(records)
    lines = [r"\begin{tabular}{l" + "c" * len(cols) + "}", r"\toprule",
             "checkpoint & " + " & ".join(latex_escape(c) for c in cols) + r" \\", r"\midrule"]
    for row in rows:
        lines.append(latex_escape(row) + " & " + " & ".join(format_cell(cells[row].get(c), latex=True) for c in cols) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


def to_csv(records: list[dict]) -> str:
    """Long format: one line per record, every metric, so nothing is lost to the summary."""
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


FORMATS = {"md": to_markdown, "latex": to_latex, "csv": to_csv}
