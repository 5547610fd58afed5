import csv
import io
import math
import struct

import pytest

from siambench.errors import ConfigError
from siambench.report import RecordKey, load_records, write_record
from siambench.report.transfer import our_rows, transfer_bars, transfer_table

HEADERS = ["Food101", "CIFAR10", "CIFAR100", "Birdsnap", "SUN397", "Cars", "Aircraft", "VOC2007", "DTD", "Pets",
           "Caltech-101", "Flowers"]

# BYOL paper, Table 3, as extracted from the paper's text (tab-separated in the original).
PAPER_TABLE_3 = """\
Linear evaluation:
BYOL (ours)	75.3	91.3	78.4	57.2	62.2	67.8	60.6	82.5	75.5	90.4	94.2	96.1
SimCLR (repro)	72.8	90.5	74.4	42.4	60.6	49.3	49.8	81.4	75.7	84.6	89.3	92.6
SimCLR [8]	68.4	90.6	71.6	37.4	58.8	50.3	50.3	80.5	74.5	83.6	90.3	91.2
Supervised-IN [8]	72.3	93.6	78.3	53.7	61.9	66.7	61.0	82.8	74.9	91.5	94.5	94.7
Fine-tuned:
BYOL (ours)	88.5	97.8	86.1	76.3	63.7	91.6	88.1	85.4	76.2	91.7	93.8	97.0
SimCLR (repro)	87.5	97.4	85.3	75.0	63.9	91.4	87.6	84.5	75.4	89.4	91.7	96.6
SimCLR [8]	88.2	97.7	85.9	75.9	63.5	91.3	88.1	84.1	73.2	89.2	92.1	97.0
Supervised-IN [8]	88.3	97.5	86.4	75.8	64.3	92.1	86.0	85.0	74.6	92.1	93.3	97.6
Random init [8]	86.9	95.9	80.2	76.1	53.6	91.4	85.9	67.3	64.8	81.5	72.6	92.0
"""
PAPER_NAMES = {"BYOL (ours)": "BYOL", "SimCLR (repro)": "SimCLR repro", "SimCLR [8]": "SimCLR",
               "Supervised-IN [8]": "Supervised-IN", "Random init [8]": "Random init"}
METRIC = {"oxford_pets": "mean_per_class", "voc2007": "map11"}


def paper_rows():
    """``{(block, our label): [12 values as printed]}`` from the paper's text."""
    rows, block = {}, None
    for line in PAPER_TABLE_3.splitlines():
        if line.endswith(":"):
            block = line[:-1]
            continue
        name, *values = line.split("\t")
        rows[block, f"{PAPER_NAMES[name]} (published)"] = values
    return rows


def add(tmp_path, name, task, dataset, value, seed=0, protocol="default", metric=None):
    metric = metric or METRIC.get(dataset, "top1")
    key = RecordKey(name * 16, task, dataset, protocol, seed)
    notes = ["embedded dataset"] if dataset == "shapes" else []
    write_record(tmp_path, key, checkpoint={"name": name}, metrics={metric: value, "other": -1.0},
                 primary_metric=metric, notes=notes)


@pytest.fixture
def records(tmp_path):
    lin, ft = "transfer-linear", "transfer-finetune"
    for seed, v in enumerate([89.9, 90.4, 90.9]):  # mean 90.40; sample std 0.50 (population std would be 0.41)
        add(tmp_path, "ckptA", lin, "oxford_pets", v, seed=seed)
    add(tmp_path, "ckptA", lin, "voc2007", 82.0, seed=0)  # mean 82.50; sample std 0.71 (population 0.50)
    add(tmp_path, "ckptA", lin, "voc2007", 83.0, seed=1)
    add(tmp_path, "ckptA", lin, "food101", 75.25)
    add(tmp_path, "ckptA", ft, "cifar10", 97.1)
    add(tmp_path, "ckptA", "knn", "shapes", 12.0)  # not a transfer record: ignored
    add(tmp_path, "ckptB", lin, "oxford_pets", 80.0)
    add(tmp_path, "ckptB", lin, "cifar10", 91.0)
    add(tmp_path, "ckptB", lin, "shapes", 55.5)
    return load_records(tmp_path)


def csv_cells(text):
    reader = csv.DictReader(io.StringIO(text))
    return reader.fieldnames, {(row["block"], row["method"]): row for row in reader}


def test_csv_cells_hold_our_means_and_the_published_rows(records):
    header, rows = csv_cells(transfer_table(records, "csv"))
    assert header == ["block", "method", "published", "source", *HEADERS, "shapes (stand-in)"]
    assert [m for b, m in rows if b == "Linear evaluation"] == [
        "ckptA", "ckptB", "BYOL (published)", "SimCLR repro (published)", "SimCLR (published)",
        "Supervised-IN (published)"]
    assert [m for b, m in rows if b == "Fine-tuned"] == [
        "ckptA", "BYOL (published)", "SimCLR repro (published)", "SimCLR (published)", "Supervised-IN (published)",
        "Random init (published)"]

    a = rows["Linear evaluation", "ckptA"]
    assert a["Pets"] == "90.40 ± 0.50"
    assert a["VOC2007"] == "82.50 ± 0.71"
    assert a["Food101"] == "75.25"
    assert a["Birdsnap"] == a["CIFAR10"] == a["shapes (stand-in)"] == ""
    assert a["published"] == "False" and a["source"] == ""
    b = rows["Linear evaluation", "ckptB"]
    assert (b["Pets"], b["CIFAR10"], b["shapes (stand-in)"], b["Food101"]) == ("80.00", "91.00", "55.50", "")
    f = rows["Fine-tuned", "ckptA"]
    assert f["CIFAR10"] == "97.10" and all(f[h] == "" for h in HEADERS if h != "CIFAR10")

    paper = paper_rows()
    assert {k for k in rows if rows[k]["published"] == "True"} == set(paper)
    for key, values in paper.items():
        assert [rows[key][h] for h in HEADERS] == values, key
        assert rows[key]["shapes (stand-in)"] == ""
    assert rows["Linear evaluation", "BYOL (published)"]["Birdsnap"] == "57.2"
    assert rows["Fine-tuned", "Random init (published)"]["Caltech-101"] == "72.6"
    assert rows["Fine-tuned", "BYOL (published)"]["source"] == "BYOL paper (Grill et al. 2020), Table 3"
    assert "Kornblith" in rows["Linear evaluation", "Supervised-IN (published)"]["source"]


def test_seeds_are_pooled_with_the_sample_std(records):
    rows = our_rows(records, "transfer-linear")
    assert list(rows) == ["ckptA", "ckptB"]
    mean, std, n = rows["ckptA"]["voc2007"]
    assert (mean, n) == (82.5, 2) and std == pytest.approx(math.sqrt(0.5))
    mean, std, n = rows["ckptA"]["oxford_pets"]
    assert (mean, n) == (pytest.approx(90.4), 3) and std == pytest.approx(0.5)
    assert rows["ckptB"]["cifar10"] == (91.0, 0.0, 1)


def test_markdown_layout(records):
    lines = transfer_table(records, "md").splitlines()
    assert lines[0] == "| Method | " + " | ".join(HEADERS) + " | shapes (stand-in) |"
    assert lines[1] == "|---|" + "---|" * 13
    assert lines[2] == "| *Linear evaluation:* |" + " |" * 13
    cells = ["75.25"] + [""] * 6 + ["82.50 ± 0.71", "", "90.40 ± 0.50", "", "", ""]
    assert lines[3] == "| ckptA | " + " | ".join(cells) + " |"
    byol = paper_rows()["Linear evaluation", "BYOL (published)"]
    assert lines[5] == "| BYOL (published) | " + " | ".join(byol) + " |  |"
    assert lines[9] == "| *Fine-tuned:* |" + " |" * 13
    assert lines[15] == ("| Random init (published) | 86.9 | 95.9 | 80.2 | 76.1 | 53.6 | 91.4 | 85.9 | 67.3 | 64.8 "
                         "| 81.5 | 72.6 | 92.0 |  |")
    assert lines[16] == ""
    notes = lines[17:]
    assert "- shapes: stand-in (embedded data), not part of the transfer benchmark; its numbers are not comparable " \
           "with the published rows." in notes
    assert "- SimCLR, Supervised-IN, Random init (published): SimCLR paper (Chen et al. 2020), following Kornblith " \
           "et al. 2019, as cited in BYOL paper, Table 3." in notes
    assert "- transfer-linear shapes: embedded dataset" in notes


def test_latex_marks_published_rows_in_italics(records):
    lines = transfer_table(records, "latex").splitlines()
    assert lines[0] == r"\begin{tabular}{l" + "c" * 13 + "}"
    assert lines[2] == "Method & " + " & ".join(HEADERS) + r" & shapes (stand-in) \\"
    assert r"\multicolumn{14}{l}{\emph{Fine-tuned:}} \\" in lines
    a = next(line for line in lines if line.startswith("ckptA & "))
    assert [c.strip() for c in a.removesuffix(r"\\").split("&")][1:] == ["75.25"] + [""] * 6 + [
        r"82.50 $\pm$ 0.71", "", r"90.40 $\pm$ 0.50", "", "", ""]
    assert r"\textit{BYOL (published)} & 75.3 & 91.3 & 78.4 & 57.2 & " in transfer_table(records, "latex")
    assert lines.index(r"\end{tabular}") < len(lines) - 1 and lines[-1].startswith("% ")


def test_blocks_without_our_records_still_show_the_published_rows():
    header, rows = csv_cells(transfer_table([], "csv"))
    assert header == ["block", "method", "published", "source", *HEADERS]
    assert set(rows) == set(paper_rows())
    assert "Supervised-IN (published)" in transfer_table([], "md")


def test_a_checkpoint_under_two_protocols_gets_a_row_per_protocol(tmp_path):
    add(tmp_path, "ckptA", "transfer-linear", "dtd", 70.0, protocol="default")
    add(tmp_path, "ckptA", "transfer-linear", "dtd", 60.0, protocol="tiny")
    _, rows = csv_cells(transfer_table(load_records(tmp_path), "csv"))
    assert rows["Linear evaluation", "ckptA (default)"]["DTD"] == "70.00"
    assert rows["Linear evaluation", "ckptA (tiny)"]["DTD"] == "60.00"


def test_a_metric_other_than_the_benchmarks_is_noted(tmp_path):
    add(tmp_path, "ckptA", "transfer-linear", "oxford_pets", 91.0, metric="top1")
    md = transfer_table(load_records(tmp_path), "md")
    assert "- ckptA, Pets (transfer-linear): reports top1, not the benchmark's mean_per_class" in md


def test_unknown_format():
    with pytest.raises(ConfigError, match="md, latex, csv"):
        transfer_table([], "html")


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_bars_one_panel_per_block_with_records(records, tmp_path):
    both = transfer_bars(records, tmp_path / "both.png")
    linear = transfer_bars([r for r in records if r["task"] == "transfer-linear"], tmp_path / "linear.png")
    (w2, h2), (w1, h1) = png_size(both), png_size(linear)
    assert w1 == w2 and h2 == 2 * h1
    assert transfer_bars([r for r in records if r["task"] == "knn"], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_a_seed_found_twice_counts_once(tmp_path):
    # The same run copied into two results folders: seeds 0 and 1 give 80 and 82, i.e. 81.00 ± 1.41,
    # where counting seed 0 twice would give 80.67 ± 1.15.
    add(tmp_path / "a", "ckptA", "transfer-finetune", "sun397", 80.0, seed=0)
    add(tmp_path / "b", "ckptA", "transfer-finetune", "sun397", 80.0, seed=0)
    add(tmp_path / "b", "ckptA", "transfer-finetune", "sun397", 82.0, seed=1)
    records = load_records(tmp_path)
    assert len(records) == 3
    _, rows = csv_cells(transfer_table(records, "csv"))
    assert rows["Fine-tuned", "ckptA"]["SUN397"] == "81.00 ± 1.41"


def test_columns_come_from_the_registry_and_published_numbers_by_dataset_name():
    from siambench.data import get_dataset_info
    from siambench.report.transfer import BENCHMARK, PUBLISHED

    assert [header for _, header, _ in BENCHMARK] == HEADERS
    assert all(metric == get_dataset_info(name).metric for name, _, metric in BENCHMARK)
    names = {name for name, _, _ in BENCHMARK}
    for task, rows in PUBLISHED.items():
        for row in rows:
            assert set(row.values) == names, (task, row.method)
    assert PUBLISHED["transfer-linear"][0].values["voc2007"] == 82.5
    assert PUBLISHED["transfer-finetune"][4].values["caltech101"] == 72.6
