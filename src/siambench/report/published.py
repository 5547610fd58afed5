"""The paper's number beside ours, for checkpoints from the zoo.

A record evaluated with ``--ckpt zoo:NAME`` carries that name as its
checkpoint's path and name; a zoo file evaluated by its cache path is
recognised by the sha256 pinned when it was downloaded. For each number the
zoo lists for the checkpoint (see :mod:`siambench.zoo.registry`), the
records of the same task, dataset and metric are pooled over seeds per
protocol and set beside it with the difference.

A difference is marked when it is larger than the run-to-run spread: the
larger of the protocol's documented spread (:data:`SPREADS`), the spread of
our own seeds, and the published number's rounding. Where neither a
documented spread nor several seeds exist, the mark says the spread is
unknown rather than guessing one.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from .tables import latex_escape

ROUNDING = 0.05  # published numbers carry one decimal

# (task, metric) → (one standard deviation between runs, where it is documented)
_MOCO_TRIALS = ("github.com/facebookresearch/moco README.md line 82: std of 5 trials of pretraining and linear "
                "classification (MoCo v1 60.8±0.2)")
_MOCO_VOC = "github.com/facebookresearch/moco detection/README.md line 61: std over trials of AP50, AP, AP75"
SPREADS: dict[tuple[str, str], tuple[float, str]] = {
    ("linear", "top1"): (0.2, _MOCO_TRIALS),
    ("detection", "AP50"): (0.2, _MOCO_VOC),
    ("detection", "AP"): (0.2, _MOCO_VOC),
    ("detection", "AP75"): (0.4, _MOCO_VOC),
    **{("knn", f"top1@k{k}"): (0.0, "kNN trains nothing: one checkpoint gives one result")
       for k in (1, 10, 20, 100, 200)},
}
BEYOND = "⚠ beyond spread"


@dataclass(frozen=True)
class Comparison:
    zoo: str
    task: str
    dataset: str
    protocol: str
    metric: str
    measured: float
    std: float
    n: int
    published: float
    source: str

    @property
    def difference(self) -> float:
        return self.measured - self.published

    @property
    def spread(self) -> float | None:
        """The run-to-run spread the difference is judged against; None where it is not known."""
        documented = SPREADS.get((self.task, self.metric))
        if documented is None and self.n < 2:
            return None
        return max(documented[0] if documented else 0.0, self.std if self.n > 1 else 0.0, ROUNDING)

    @property
    def beyond_spread(self) -> bool | None:
        spread = self.spread
        return None if spread is None else abs(self.difference) > spread + 1e-9

    @property
    def mark(self) -> str:
        return {True: BEYOND, False: "within", None: "spread unknown"}[self.beyond_spread]


def published_numbers(entry) -> list:
    """The entry's published numbers, its transfer-table row spelled out per benchmark dataset."""
    from ..zoo.registry import Published

    numbers = list(entry.published)
    if entry.transfer_row:
        from .transfer import BENCHMARK, PUBLISHED

        for task, rows in PUBLISHED.items():
            for row in rows:
                if row.method == entry.transfer_row:
                    numbers += [Published(task, name, metric, row.values[name], row.source)
                                for name, _, metric in BENCHMARK if name in row.values]
    return numbers


def zoo_name(record: dict, known: dict) -> str | None:
    """The zoo entry a record's checkpoint is, or None."""
    ckpt = record.get("checkpoint", {})
    for text in (ckpt.get("zoo"), ckpt.get("path"), ckpt.get("name")):
        if isinstance(text, str):
            name = text.removeprefix("zoo:")
            if name in known and (text.startswith("zoo:") or text == ckpt.get("zoo")):
                return name
    sha = ckpt.get("sha256")
    if sha:
        from ..zoo.download import cached_path, pin_path

        for name, entry in known.items():
            pin = pin_path(cached_path(entry))
            if entry.sha256 == sha or (pin.is_file() and pin.read_text().split()[:1] == [sha]):
                return name
    return None


def compare(records: list[dict]) -> list[Comparison]:
    """One comparison per (zoo checkpoint, published number, protocol) that has records."""
    from ..zoo.registry import entries

    known = entries()
    values: dict[tuple, dict[int, float]] = {}
    sources: dict[tuple, tuple[float, str]] = {}
    for record in records:
        name = zoo_name(record, known)
        if name is None:
            continue
        for pub in published_numbers(known[name]):
            if (record["task"], record["dataset"]) != (pub.task, pub.dataset) or pub.metric not in record["metrics"]:
                continue
            key = (name, pub.task, pub.dataset, record["protocol"], pub.metric)
            values.setdefault(key, {})[record.get("seed", 0)] = float(record["metrics"][pub.metric])
            sources[key] = (pub.value, pub.source)
    out = []
    for key, by_seed in values.items():
        v = list(by_seed.values())
        out.append(Comparison(*key, statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v),
                              *sources[key]))
    return sorted(out, key=lambda c: (c.zoo, c.task, c.dataset, c.protocol, c.metric))


def number(value: float) -> str:
    """A published number as the paper prints it: one decimal, more only where it has them (76.13)."""
    return f"{value:.1f}" if round(value, 1) == value else f"{value:g}"


def _spread(c: Comparison) -> str:
    return "?" if c.spread is None else f"±{c.spread:.2f}"


def _measured(c: Comparison) -> str:
    return f"{c.measured:.2f}" if c.n == 1 else f"{c.measured:.2f} ± {c.std:.2f} (n={c.n})"


def section(records: list[dict], fmt: str = "md") -> str:
    """The published-vs-measured block for a report ("" when no record is of a zoo checkpoint, or for CSV)."""
    rows = compare(records)
    if not rows or fmt not in ("md", "latex"):
        return ""
    sources = list(dict.fromkeys(c.source for c in rows))
    spread_sources = list(dict.fromkeys(SPREADS[(c.task, c.metric)][1] for c in rows if (c.task, c.metric) in SPREADS))
    notes = [f"[{i + 1}] {s}" for i, s in enumerate(sources)]
    notes.append("Δ = measured − published. Spread: the larger of the protocol's documented run-to-run std, our "
                 f"seeds' std and the published rounding ({ROUNDING}); '{BEYOND}' marks |Δ| above it.")
    notes += [f"documented spread: {s}" for s in spread_sources]
    if fmt == "md":
        lines = ["", "### Published vs measured (zoo checkpoints)", "",
                 "| checkpoint | task | dataset | protocol | metric | measured | published | Δ | spread | check |",
                 "|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| zoo:{c.zoo} | {c.task} | {c.dataset} | {c.protocol} | {c.metric} | {_measured(c)} | "
                  f"{number(c.published)} [{sources.index(c.source) + 1}] | {c.difference:+.2f} | {_spread(c)} | "
                  f"{c.mark} |" for c in rows]
        return "\n".join(lines + [""] + [f"- {n}" for n in notes])
    lines = ["", "% Published vs measured (zoo checkpoints)", r"\begin{tabular}{llllllrrrl}", r"\toprule",
             r"checkpoint & task & dataset & protocol & metric & measured & published & $\Delta$ & spread & check \\",
             r"\midrule"]
    pm = r"$\pm$"
    for c in rows:
        cells = [latex_escape(x) for x in (f"zoo:{c.zoo}", c.task, c.dataset, c.protocol, c.metric)]
        cells += [_measured(c).replace("±", pm), f"{number(c.published)} [{sources.index(c.source) + 1}]",
                  f"{c.difference:+.2f}", _spread(c).replace("±", pm),
                  "beyond spread" if c.beyond_spread else latex_escape(c.mark)]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines + [f"% {latex_escape(n)}" for n in notes])
