"""The summary table: long by default (evaluations × checkpoints), wide on request, baselines last."""

from siambench.eval_all import EMBEDDED_PLAN
from siambench.report import RecordKey, load_records, to_latex, to_markdown, write_record
from siambench.report.plots import bar_values
from siambench.report.tables import baseline_lines, grouped_notes

PRIMARY = {"knn": "top1@k20", "detection": "AP50", "segmentation": "miou", "depth": "delta1"}


def _write(folder, name, sha, task="knn", dataset="shapes", protocol="default", seed=0, value=50.0,
           metric="top1@k20", notes=("embedded dataset",)):
    write_record(folder, RecordKey(sha * 64, task, dataset, protocol, seed), checkpoint={"name": name},
                 metrics={metric: value}, primary_metric=metric, notes=list(notes))


def _cells(line):
    return [c.strip() for c in line.strip("|").split("|")]


def test_long_table_rows_are_evaluations_and_columns_checkpoints_with_mean_and_std(tmp_path):
    _write(tmp_path, "random:resnet18@0.25", "c", value=15.0)  # seen first, shown last: it is the baseline
    _write(tmp_path, "run", "a", seed=0, value=50.0)
    _write(tmp_path, "run", "a", seed=1, value=54.0)
    _write(tmp_path, "other", "b", value=30.0)
    _write(tmp_path, "other", "b", task="linear", protocol="logreg", value=70.0, metric="top1")
    md = to_markdown(load_records(tmp_path)).splitlines()
    assert _cells(md[0]) == ["task", "dataset", "preset", "metric", "run", "other", "random:resnet18@0.25"]
    assert _cells(md[2]) == ["knn", "shapes", "default", "top1@k20", "52.00 ± 2.83", "30.00", "15.00"]
    assert _cells(md[3]) == ["linear", "shapes", "logreg", "top1", "–", "70.00", "–"]
    assert len({len(line) for line in md}) == 1  # padded: the columns line up in a terminal
    latex = to_latex(load_records(tmp_path))
    assert r"knn & shapes & default & top1@k20 & 52.00 $\pm$ 2.83 & 30.00 & 15.00 \\" in latex
    assert baseline_lines(load_records(tmp_path)) == [
        "baseline: random:resnet18@0.25 is a random-init backbone of that architecture (never trained)"]
    wide = to_markdown(load_records(tmp_path), wide=True).splitlines()
    assert wide[0] == "| checkpoint | knn shapes (default) top1@k20 | linear shapes (logreg) top1 |"
    assert wide[-1] == "| random:resnet18@0.25 | 15.00 | – |"


def test_the_embedded_summary_with_its_random_baseline_fits_in_100_columns(tmp_path):
    for job in EMBEDDED_PLAN:
        for name, sha in (("byol_shapes", "a"), ("random:resnet18@0.25", "b")):
            for seed in (0, 1):
                _write(tmp_path, name, sha, job.task, job.dataset, job.protocol, seed, 10.0 + seed,
                       PRIMARY.get(job.task, "top1"))
    md = to_markdown(load_records(tmp_path)).splitlines()
    assert len(md) == 2 + len(EMBEDDED_PLAN) and max(map(len, md)) <= 100
    assert "11.00 ± 0.71" not in md[2] and "10.50 ± 0.71" in md[2]


def test_a_note_shared_by_many_evaluations_is_listed_once(tmp_path):
    _write(tmp_path, "run", "a")
    _write(tmp_path, "run", "a", dataset="digits")
    _write(tmp_path, "run", "a", task="linear", protocol="logreg", notes=("embedded dataset", "subset drawn"))
    assert grouped_notes(load_records(tmp_path)) == [
        "embedded dataset: knn digits, knn shapes, linear shapes", "subset drawn: linear shapes"]


def test_plot_groups_are_labelled_with_their_preset(tmp_path):
    _write(tmp_path, "run", "a", task="linear", protocol="logreg", value=24.5, metric="top1")
    _write(tmp_path, "run", "a", task="linear", protocol="tiny", value=20.0, metric="top1")
    groups, values = bar_values(load_records(tmp_path))
    assert groups == ["linear\nshapes\n(logreg)", "linear\nshapes\n(tiny)"]
    assert values["run"]["linear\nshapes\n(tiny)"] == [20.0]
