"""Birdsnap labels from species.txt / images.txt, with images that failed to download or do not decode."""

import numpy as np
import pytest
from PIL import Image

import siambench.data.birdsnap  # noqa: F401  (registers the entry)
from siambench.data import build_dataset, get_dataset_info
from siambench.data.splits import Holdout
from siambench.errors import CorruptImageError, DatasetNotFoundError

# (id, common, scientific, dir), written out of id order; folder names sort differently from ids.
SPECIES = [
    (3, "Blue Jay", "Cyanocitta cristata", "Blue_Jay"),
    (1, "Zone-tailed Hawk", "Buteo albonotatus", "Zone_tailed_Hawk"),
    (2, "Acadian Flycatcher", "Empidonax virescens", "Acadian_Flycatcher"),
    (4, "Cooper's Hawk", "Accipiter cooperii", "Coopers_Hawk"),
]
DIRS = {s[0]: s[3] for s in SPECIES}
# (file number, species id) in images.txt order.
IMAGES = [(101, 1), (102, 1), (103, 1), (201, 2), (202, 2), (203, 2), (301, 3), (302, 3), (401, 4), (402, 4)]
TEST = {102, 203, 302}
MISSING = 202  # listed, never downloaded
CORRUPT = 401  # downloaded, but not an image
PART_COLUMNS = [f"{part}_{axis}" for part in ("back", "beak", "belly") for axis in "xy"]


def write_image(path, color, size=(9, 7)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format="JPEG", quality=95)


def rel(number, species_id):
    return f"{DIRS[species_id]}/{number}.jpg"


def color(number):
    return (number % 256, 80, 160)


@pytest.fixture
def birdsnap_root(tmp_path):
    root = tmp_path / "birdsnap"
    root.mkdir()
    species = ["id\tcommon\tscientific\tdir"] + ["\t".join(map(str, s)) for s in SPECIES]
    (root / "species.txt").write_text("\n".join(species) + "\n")
    header = ["url", "md5", "path", "species_id", "bb_x1", "bb_y1", "bb_x2", "bb_y2"] + PART_COLUMNS
    rows = ["\t".join(header)]
    for number, sid in IMAGES:
        url = f"http://farm8.staticflickr.com/7000/{number}_abc.jpg"
        rows.append("\t".join([url, "0" * 32, rel(number, sid), str(sid), "1", "2", "8", "6"] + ["null"] * 6))
    (root / "images.txt").write_text("\n".join(rows) + "\n")
    test = ["path"] + [rel(n, sid) for n, sid in IMAGES if n in TEST]
    (root / "test_images.txt").write_text("\n".join(test) + "\n")
    images = root / "download" / "images"
    for number, sid in IMAGES:
        if number == CORRUPT:
            (images / DIRS[sid]).mkdir(parents=True)
            (images / rel(number, sid)).write_bytes(b"<html>Flickr: this photo is no longer available</html>")
        elif number != MISSING:
            write_image(images / rel(number, sid), color(number))
    write_image(images / "Blue_Jay" / "999.jpg", (0, 0, 0))  # on disk, in no list
    return tmp_path


def labels_by_file(ds):
    return {f"{p.parent.name}/{p.name}": y for p, y in ds.samples}


def test_classes_come_from_species_ids(birdsnap_root):
    train = build_dataset("birdsnap", "train", data_root=birdsnap_root)
    assert train.classes == ["Zone-tailed Hawk", "Acadian Flycatcher", "Blue Jay", "Cooper's Hawk"]
    assert labels_by_file(train) == {
        "Zone_tailed_Hawk/101.jpg": 0,
        "Zone_tailed_Hawk/103.jpg": 0,
        "Acadian_Flycatcher/201.jpg": 1,
        "Blue_Jay/301.jpg": 2,
        "Coopers_Hawk/401.jpg": 3,
        "Coopers_Hawk/402.jpg": 3,
    }
    test = build_dataset("birdsnap", "test", data_root=birdsnap_root)
    expected = {"Zone_tailed_Hawk/102.jpg": 0, "Acadian_Flycatcher/203.jpg": 1, "Blue_Jay/302.jpg": 2}
    assert labels_by_file(test) == expected
    assert test.missing == []


def test_missing_image_is_recorded_and_the_rest_keep_their_labels(birdsnap_root):
    train = build_dataset("birdsnap", "train", data_root=birdsnap_root)
    assert train.missing == [birdsnap_root / "birdsnap" / "download" / "images" / "Acadian_Flycatcher" / "202.jpg"]
    assert len(train) == 6 and train.targets == [0, 0, 1, 2, 3, 3]
    for index, (path, label) in enumerate(train.samples):
        number = int(path.stem)
        if number == CORRUPT:
            with pytest.raises(CorruptImageError, match="401.jpg"):
                train[index]
            continue
        image, target = train[index]
        assert target == label and image.shape == (3, 7, 9)
        np.testing.assert_allclose(image.float().mean(dim=(1, 2)).numpy(), color(number), atol=3)


def test_missing_annotation_file_names_the_layout(birdsnap_root):
    (birdsnap_root / "birdsnap" / "test_images.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"test_images.txt is missing") as info:
        build_dataset("birdsnap", "train", data_root=birdsnap_root)
    assert "species.txt (tab-separated" in str(info.value) and "get_birdsnap.py" in str(info.value)
    (birdsnap_root / "birdsnap" / "species.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"species.txt is missing"):
        build_dataset("birdsnap", "test", data_root=birdsnap_root)


def test_inconsistent_lists_are_refused(birdsnap_root):
    root = birdsnap_root / "birdsnap"
    with open(root / "test_images.txt", "a") as f:
        f.write("Blue_Jay/999.jpg\n")
    with pytest.raises(DatasetNotFoundError, match=r"lists 1 paths that images.txt does not, e.g. Blue_Jay/999.jpg"):
        build_dataset("birdsnap", "test", data_root=birdsnap_root)
    (root / "test_images.txt").write_text("path\n")
    species = (root / "species.txt").read_text().splitlines()
    (root / "species.txt").write_text("\n".join(line for line in species if not line.startswith("4\t")) + "\n")
    with pytest.raises(DatasetNotFoundError, match=r"Coopers_Hawk/401.jpg the species_id 4, which species.txt lacks"):
        build_dataset("birdsnap", "train", data_root=birdsnap_root)
    (root / "species.txt").write_text("id\tname\n1\tZone-tailed Hawk\n")
    with pytest.raises(DatasetNotFoundError, match=r"without the column\(s\) \['common'\]"):
        build_dataset("birdsnap", "train", data_root=birdsnap_root)


def test_registry_entry():
    info = get_dataset_info("birdsnap")
    assert info.num_classes == 500 and info.metric == "top1"
    assert info.split_sizes == {"train": 47386, "test": 2443}
    assert info.val_holdout == Holdout(count=4981) and (info.train_split, info.test_split) == ("train", "test")
    assert "Kornblith" in info.description and "get_birdsnap.py" in info.prepare
    assert info.eval_size == 224 and info.eval_crop_fraction == 1.0
