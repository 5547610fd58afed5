"""``data check`` and ``data prepare`` on a DTD tree written by the test (DTD has official splits)."""

import json

import pytest

from siambench.data.prepare import MANIFEST, check, prepare
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
    assert not status.present and "Food101" in status.problem and "missing" in status.lines()[0]


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
