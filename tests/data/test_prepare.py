"""``data check`` and ``data prepare`` on a DTD tree written by the test (DTD has official splits)."""

import dataclasses
import json

import pytest

from siambench.cli import main
from siambench.data import registry
from siambench.data.prepare import EXIT_INCOMPLETE, EXIT_NAMED_ABSENT, MANIFEST, check, check_all, prepare
from siambench.errors import SiambenchError

CLASSES = ("banded", "dotted")


@pytest.fixture
def dtd_root(tmp_path, write_image):
    root = tmp_path / "dtd"
    for split in ("train", "val", "test"):
        lines = []
        for c in CLASSES:
            for k in range(2):
                rel = f"{c}/{c}_{split}{k}.jpg"
                write_image(root / "images" / rel, color=(40 * k, 100, 200))
                lines.append(rel)
        (root / "labels").mkdir(parents=True, exist_ok=True)
        (root / "labels" / f"{split}1.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_check_counts_each_split_against_the_published_size(dtd_root):
    status = check("dtd", dtd_root)
    assert status.present
    assert [(s.split, s.found, s.expected) for s in status.splits] == [
        ("train", 4, 1880), ("val", 4, 1880), ("test", 4, 1880)]
    assert not any(s.ok for s in status.splits)  # a 4-image copy is not the published dataset
    assert "count differs from the published one" in "\n".join(status.lines())


def test_missing_dataset_says_how_to_prepare_it(tmp_path):
    status = check("food101", tmp_path)
    assert not status.present and "Food101" in status.problem and "absent" in status.lines()[0]
    assert "Food101" in " ".join(status.lines(verbose=True))


def test_prepare_writes_a_manifest_that_check_compares_with(dtd_root):
    path = prepare("dtd", dtd_root, progress=False)
    manifest = json.loads(path.read_text())
    assert path.name == MANIFEST and manifest["classes"] == list(CLASSES)
    assert manifest["splits"]["val"]["files"][0] == "images/banded/banded_val0.jpg"
    assert manifest["splits"]["val"]["targets"] == [0, 0, 1, 1]
    assert len(manifest["sha256"]) == 12 and all(len(h) == 64 for h in manifest["sha256"].values())
    assert not any(s.differs_from_manifest for s in check("dtd", dtd_root).splits)
    # Moving an image from one class to another in a split file is drift the check reports.
    labels = dtd_root / "dtd" / "labels" / "val1.txt"
    labels.write_text(labels.read_text().replace("banded/banded_val1.jpg", "dotted/banded_val1.jpg"))
    (dtd_root / "dtd" / "images" / "dotted" / "banded_val1.jpg").write_bytes(
        (dtd_root / "dtd" / "images" / "banded" / "banded_val1.jpg").read_bytes())
    val = {s.split: s for s in check("dtd", dtd_root).splits}["val"]
    assert val.differs_from_manifest


def test_prepare_without_a_downloader_prints_the_manual_steps(tmp_path):
    with pytest.raises(SiambenchError, match="no automatic download.*Kaggle"):
        prepare("stanford_cars", tmp_path)


@pytest.fixture
def dtd_as_published(monkeypatch):
    """The 4-image DTD tree of these tests counted as complete: the registry's published sizes set to 4."""
    info = registry.get_dataset_info("dtd")
    monkeypatch.setitem(registry._REGISTRY, "dtd", dataclasses.replace(info, split_sizes=dict.fromkeys(info.splits, 4)))


def test_data_check_exits_0_when_what_is_present_is_complete_and_lists_the_absent_in_a_line(
        dtd_root, dtd_as_published, capsys):
    assert main(["data", "check", "--data-root", str(dtd_root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("dtd") and "complete" in out[0]
    absent = [line for line in out[:-1] if " absent " in line]
    assert len(absent) == len(check_all(dtd_root)) - 1 and "Expected layout" not in "\n".join(out)
    assert any(line.startswith("food101") and "siambench data prepare food101" in line for line in absent)
    assert out[-1].startswith("1 complete, ") and "--verbose" in out[-1]
    assert main(["data", "check", "--data-root", str(dtd_root), "--verbose"]) == 0
    assert "Expected layout" in capsys.readouterr().out


def test_data_check_exit_status_separates_incomplete_from_absent(dtd_root, dtd_as_published, tmp_path, capsys):
    assert main(["data", "check", "--data-root", str(dtd_root), "--datasets", "dtd,food101"]) == EXIT_NAMED_ABSENT
    (dtd_root / "dtd" / "images" / "banded" / "banded_test0.jpg").unlink()  # a listed image gone
    assert main(["data", "check", "--data-root", str(dtd_root)]) == EXIT_INCOMPLETE
    assert "incomplete" in capsys.readouterr().out
    # A folder that is there but cannot be read is present and wrong, not absent.
    broken = tmp_path / "broken"
    (broken / "food-101" / "images").mkdir(parents=True)
    status = check("food101", broken)
    assert status.present and status.state == "incomplete" and status.problem
    assert main(["data", "check", "--data-root", str(broken)]) == EXIT_INCOMPLETE
    assert EXIT_INCOMPLETE not in (0, 1, 2)


def test_data_check_without_a_data_root_is_one_clear_error(monkeypatch, capsys):
    monkeypatch.delenv("SIAMBENCH_DATA", raising=False)
    assert main(["data", "check"]) == 2
    assert "needs a data root" in capsys.readouterr().err
