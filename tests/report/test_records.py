import json

import pytest

from siambench.report import RecordKey, find_record, load_records, to_csv, to_latex, to_markdown, write_record
from siambench.report.plots import write_plots


def _write(tmp_path, sha="a" * 64, task="knn", dataset="shapes", protocol="default", seed=0, value=50.0, name="run"):
    key = RecordKey(sha, task, dataset, protocol, seed)
    write_record(tmp_path, key, checkpoint={"name": name, "path": "x"}, metrics={"top1@k20": value, "top1@k10": value - 1},
                 primary_metric="top1@k20", notes=["embedded dataset"])
    return key


def test_the_key_is_the_file_name_and_a_record_is_found_by_it(tmp_path):
    key = _write(tmp_path)
    assert (tmp_path / key.filename).is_file()
    assert key.filename == "knn__shapes__default__seed0__aaaaaaaaaaaaaaaa.json"
    record = find_record(tmp_path, key)
    assert record["metrics"]["top1@k20"] == 50.0 and record["checkpoint"]["sha256"] == "a" * 64
    assert find_record(tmp_path, RecordKey("b" * 64, "knn", "shapes", "default", 0)) is None
    assert find_record(tmp_path, RecordKey("a" * 64, "knn", "shapes", "default", 1)) is None
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))


def test_primary_metric_must_be_present(tmp_path):
    with pytest.raises(ValueError):
        write_record(tmp_path, RecordKey("a" * 64, "knn", "x", "p"), checkpoint={}, metrics={"a": 1.0}, primary_metric="b")


def test_tables_show_one_row_per_checkpoint_and_mean_std_over_seeds(tmp_path):
    _write(tmp_path, seed=0, value=50.0)
    _write(tmp_path, seed=1, value=54.0)
    _write(tmp_path, sha="b" * 64, name="other", value=30.0)
    _write(tmp_path, sha="b" * 64, name="other", task="linear", protocol="logreg", value=70.0)
    (tmp_path / "junk.json").write_text("{not json")
    records = load_records(tmp_path)
    assert len(records) == 4
    md = to_markdown(records, wide=True).splitlines()
    assert md[0] == "| checkpoint | knn shapes (default) top1@k20 | linear shapes (logreg) top1@k20 |"
    assert md[2] == "| run | 52.00 ± 2.83 | – |"
    assert md[3] == "| other | 30.00 | 70.00 |"
    assert r"52.00 $\pm$ 2.83" in to_latex(records) and r"52.00 $\pm$ 2.83" in to_latex(records, wide=True)
    rows = to_csv(records).splitlines()
    assert len(rows) == 1 + 4 * 2 and rows[0].startswith("checkpoint,sha256,task")


def test_plots_are_written(tmp_path):
    _write(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text("\n".join(json.dumps({"step": s, "loss": 4.0 - s / 10}) for s in range(1, 5)))
    records = load_records(tmp_path)
    records[0]["checkpoint"]["run_dir"] = str(run)
    made = write_plots(records, tmp_path / "plots")
    assert sorted(p.name for p in made) == ["knn_per_k.png", "per_dataset.png", "pretraining_run.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in made)
