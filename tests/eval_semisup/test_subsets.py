import numpy as np
import pytest
from PIL import Image

from siambench.data import build_dataset
from siambench.eval_semisup import subsets
from siambench.eval_semisup.subsets import (
    SubsetError,
    balanced_counts,
    balanced_subset,
    names_digest,
    read_subset_file,
    select_subset,
    subset_from_names,
)

# wnid → (number of images, file format); each image is filled with a colour that encodes its name.
CLASSES = {"n01440764": (5, "JPEG"), "n01443537": (3, "PNG"), "n01484850": (4, "JPEG")}


def _colour(wnid: str, number: int) -> tuple[int, int, int]:
    return (list(CLASSES).index(wnid) * 100 + 20, number * 40, 200)


@pytest.fixture
def imagenet_train(tmp_path):
    """An ImageNet-layout folder: train/<wnid>/<wnid>_<n>.JPEG, real JPEG and PNG files."""
    for wnid, (count, fmt) in CLASSES.items():
        folder = tmp_path / "train" / wnid
        folder.mkdir(parents=True)
        for number in range(1, count + 1):
            name = f"{wnid}_{number}.JPEG" if fmt == "JPEG" else f"{wnid}_{number}.png"
            Image.new("RGB", (20, 16), _colour(wnid, number)).save(folder / name, format=fmt)
    return build_dataset("imagenet", "train", path=tmp_path)


def _write(path, lines, newline="\n"):
    path.write_text(newline.join(lines) + newline)
    return path


def test_subset_file_maps_names_to_the_listed_images(imagenet_train, tmp_path):
    lines = ["n01484850_4.JPEG", "n01440764_2.JPEG", "n01443537_3.png", "n01440764_5.JPEG", "n01484850_1.JPEG"]
    path = _write(tmp_path / "subset.txt", lines + [""], newline="\r\n")
    names = read_subset_file(path)
    assert names == lines

    result = select_subset(imagenet_train, 0.4, subset_file=path)
    assert len(result.indices) == 5 and not result.standard
    assert result.per_class == {0: 2, 1: 1, 2: 2}
    for name, index in zip(lines, result.indices):
        file, label = imagenet_train.samples[index]
        wnid, number = name.split("_")[0], int(name.split("_")[1].split(".")[0])
        assert file.name == name and file.parent.name == wnid
        assert imagenet_train.classes[label] == wnid
        image, _ = imagenet_train[index]
        assert np.abs(image[:, 8, 10].numpy().astype(int) - np.array(_colour(wnid, number))).max() <= 3


@pytest.mark.parametrize(
    "lines, message",
    [
        (["n01440764_2.JPEG", "n01440764_9.JPEG"], r"1 images are not in .*n01440764_9\.JPEG"),
        (["n01440764_2.JPEG", "n01440764_2.JPEG"], r"listed more than once \(n01440764_2\.JPEG\)"),
        (["n09999999_1.JPEG", "n01440764_1.JPEG"], r"not classes of the dataset \(n09999999\)"),
        (["n01443537_1.JPEG"], r"n01443537_1\.JPEG"),  # the file is n01443537_1.png
    ],
)
def test_subset_file_mismatches_are_one_paragraph_errors(imagenet_train, tmp_path, lines, message):
    path = _write(tmp_path / "subset.txt", lines)
    with pytest.raises(SubsetError, match=message) as err:
        select_subset(imagenet_train, 0.01, subset_file=path)
    assert "\n" not in str(err.value)


def test_subset_file_rejects_lines_that_are_not_file_names(tmp_path):
    with pytest.raises(SubsetError, match="not ImageNet training file names"):
        read_subset_file(_write(tmp_path / "s.txt", ["train/n01440764/n01440764_1.JPEG"]))
    with pytest.raises(SubsetError, match="lists no images"):
        read_subset_file(_write(tmp_path / "e.txt", ["", "  "]))


def test_subset_file_needs_file_paths():
    with pytest.raises(SubsetError, match="ImageNet layout"):
        subset_from_names(build_dataset("digits", "train"), ["n01440764_1.JPEG"])


def test_published_lists_are_recognised_by_content(imagenet_train, tmp_path, monkeypatch):
    lines = ["n01440764_1.JPEG", "n01443537_2.png", "n01484850_3.JPEG"]
    digest = names_digest(lines)
    assert names_digest(list(reversed(lines))) == digest
    monkeypatch.setattr(subsets, "STANDARD_SUBSETS", {digest: ("1percent.txt", 0.01, 3)})
    path = _write(tmp_path / "1percent.txt", list(reversed(lines)))
    result = select_subset(imagenet_train, 0.01, subset_file=path)
    assert result.standard and result.to_record()["standard"] and "SimCLR 1percent.txt" in result.source
    with pytest.raises(SubsetError, match="1percent.txt"):
        select_subset(imagenet_train, 0.1, subset_file=path)


def test_published_digests_match_the_published_line_counts():
    counts = {fraction: lines for _, fraction, lines in subsets.STANDARD_SUBSETS.values()}
    assert counts == {0.01: 12811, 0.10: 128116}


def test_balanced_counts_round_half_up_with_at_least_one():
    sizes = {0: 1300, 1: 732, 2: 5, 3: 3, 4: 250}
    assert balanced_counts(sizes, 0.01) == {0: 13, 1: 7, 2: 1, 3: 1, 4: 3}
    assert balanced_counts(sizes, 0.1) == {0: 130, 1: 73, 2: 1, 3: 1, 4: 25}
    assert balanced_counts(sizes, 0.5) == {0: 650, 1: 366, 2: 3, 3: 2, 4: 125}
    assert balanced_counts({0: 2}, 1.0) == {0: 2}


def test_balanced_subset_draws_the_counts_per_class_and_depends_only_on_the_seed():
    rng = np.random.default_rng(0)
    targets = np.concatenate([np.full(n, c) for c, n in enumerate([130, 75, 12, 3])])
    targets = targets[rng.permutation(len(targets))]
    for fraction in (0.01, 0.1, 0.3):
        chosen = balanced_subset(targets, fraction, seed=7)
        assert len(set(chosen)) == len(chosen) and chosen == sorted(chosen)
        counts = np.bincount(targets[chosen], minlength=4).tolist()
        expected = balanced_counts({0: 130, 1: 75, 2: 12, 3: 3}, fraction)
        assert counts == list(expected.values())
    assert balanced_subset(targets, 0.1, seed=7) == balanced_subset(targets, 0.1, seed=7)
    assert balanced_subset(targets, 0.1, seed=7) != balanced_subset(targets, 0.1, seed=8)
    with pytest.raises(SubsetError):
        balanced_subset(targets, 0.0)


def test_without_a_file_the_subset_is_flagged_not_standard():
    train = build_dataset("digits", "train")
    result = select_subset(train, 0.1, seed=3)
    assert not result.standard and "not the standard" in result.source
    assert result.indices == balanced_subset(train.targets, 0.1, seed=3)
    assert result.to_record()["num_images"] == len(result.indices) == sum(result.per_class.values())
