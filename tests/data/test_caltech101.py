"""Caltech-101's 102-class seeded split on a tree with the real 102 folder names."""

import io
from collections import Counter

import numpy as np
import pytest
import torchvision
from PIL import Image

import siambench.data.caltech101  # noqa: F401  (registers the entry)
from siambench.data import build_dataset, get_dataset_info
from siambench.errors import ConfigError, DatasetNotFoundError

OBJECTS = """accordion airplanes anchor ant barrel bass beaver binocular bonsai brain brontosaurus buddha butterfly
camera cannon car_side ceiling_fan cellphone chair chandelier cougar_body cougar_face crab crayfish crocodile
crocodile_head cup dalmatian dollar_bill dolphin dragonfly electric_guitar elephant emu euphonium ewer ferry flamingo
flamingo_head garfield gerenuk gramophone grand_piano hawksbill headphone hedgehog helicopter ibis inline_skate
joshua_tree kangaroo ketch lamp laptop llama lobster lotus mandolin mayfly menorah metronome minaret nautilus octopus
okapi pagoda panda pigeon pizza platypus pyramid revolver rhino rooster saxophone schooner scissors scorpion sea_horse
snoopy soccer_ball stapler starfish stegosaurus stop_sign strawberry sunflower tick trilobite umbrella watch
water_lilly wheelchair wild_cat windsor_chair wrench yin_yang""".split()
FOLDERS = ["Faces", "Faces_easy", "Leopards", "Motorbikes", "BACKGROUND_Google"] + OBJECTS


def jpeg_bytes(size=(8, 8)):
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 120, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def write_tree(root, counts, reverse=False):
    """``root/101_ObjectCategories/<class>/image_NNNN.jpg``, written in reverse order when asked."""
    data = jpeg_bytes()
    for name, n in counts.items():
        folder = root / "101_ObjectCategories" / name
        folder.mkdir(parents=True)
        for k in sorted(range(1, n + 1), reverse=reverse):
            (folder / f"image_{k:04d}.jpg").write_bytes(data)


@pytest.fixture(scope="module")
def caltech(tmp_path_factory):
    data_root = tmp_path_factory.mktemp("data")
    counts = {name: 31 + i % 7 for i, name in enumerate(FOLDERS)}
    write_tree(data_root / "caltech101", counts)
    (data_root / "caltech101" / "101_ObjectCategories" / "BACKGROUND_Google" / "Thumbs.db").write_bytes(b"x")
    return data_root, counts


def test_102_classes_in_sorted_folder_order(caltech):
    data_root, _ = caltech
    ds = build_dataset("caltech101", "train", data_root=data_root)
    assert len(ds.classes) == 102 == len(set(FOLDERS))
    first = ["BACKGROUND_Google", "Faces", "Faces_easy", "Leopards", "Motorbikes", "accordion", "airplanes"]
    assert ds.classes[:7] == first
    assert ds.classes[-1] == "yin_yang"
    # torchvision's Caltech101 drops the background folder; every other index is one less there.
    reference = torchvision.datasets.Caltech101(data_root)
    assert ds.classes == ["BACKGROUND_Google"] + reference.categories


def test_train_has_exactly_30_per_class_and_test_the_rest(caltech):
    data_root, counts = caltech
    train = build_dataset("caltech101", "train", data_root=data_root)
    test = build_dataset("caltech101", "test", data_root=data_root)

    assert Counter(train.targets) == {c: 30 for c in range(102)}
    assert len(train) == 3060 and len(test) == sum(counts.values()) - 3060
    expected_test = {train.classes.index(name): n - 30 for name, n in counts.items()}
    assert Counter(test.targets) == expected_test
    for ds in (train, test):
        assert all(ds.classes[y] == p.parent.name for p, y in ds.samples)

    train_paths = {p for p, _ in train.samples}
    test_paths = {p for p, _ in test.samples}
    assert not train_paths & test_paths
    all_images = set((data_root / "caltech101" / "101_ObjectCategories").rglob("*.jpg"))
    assert train_paths | test_paths == all_images and len(all_images) == sum(counts.values())


def test_draw_is_the_documented_preset(caltech):
    data_root, counts = caltech
    train = build_dataset("caltech101", "train", data_root=data_root)
    index = train.classes.index("accordion")
    n = counts["accordion"]
    positions = np.sort(np.random.default_rng([0, index]).permutation(n)[:30])
    expected = [f"image_{k + 1:04d}.jpg" for k in positions]
    assert [p.name for p, y in train.samples if y == index] == expected


def test_draw_is_deterministic_and_depends_on_the_seed(caltech, tmp_path):
    data_root, counts = caltech

    def chosen(root, **options):
        ds = build_dataset("caltech101", "train", data_root=root, **options)
        return [(p.parent.name, p.name) for p, _ in ds.samples]

    first = chosen(data_root)
    assert chosen(data_root) == first
    assert chosen(data_root, seed=0) == first
    # Another copy, its files created in the opposite order, gives the same split.
    write_tree(tmp_path / "caltech101", counts, reverse=True)
    assert chosen(tmp_path) == first

    other = chosen(data_root, seed=1)
    assert len(other) == 3060 and other != first
    assert sum(a != b for a, b in zip(sorted(first), sorted(other))) > 1000

    five = build_dataset("caltech101", "train", data_root=data_root, train_per_class=5)
    assert Counter(five.targets) == {c: 5 for c in range(102)}


def test_missing_background_folder_is_refused(tmp_path):
    write_tree(tmp_path / "caltech101", {"Faces": 31, "accordion": 31})
    with pytest.raises(DatasetNotFoundError, match="no BACKGROUND_Google/ folder") as info:
        build_dataset("caltech101", "train", data_root=tmp_path)
    assert "101_ObjectCategories/<class>/image_0001.jpg" in str(info.value)


def test_class_with_too_few_images(tmp_path):
    write_tree(tmp_path / "caltech101", {"BACKGROUND_Google": 31, "accordion": 30})
    with pytest.raises(DatasetNotFoundError, match=r"accordion/ has 30 images, but train_per_class=30"):
        build_dataset("caltech101", "test", data_root=tmp_path)
    assert len(build_dataset("caltech101", "test", data_root=tmp_path, train_per_class=29)) == 3


def test_bad_options_and_missing_tree(tmp_path, caltech):
    data_root, _ = caltech
    with pytest.raises(ConfigError, match="train_per_class must be"):
        build_dataset("caltech101", "train", data_root=data_root, train_per_class=0)
    with pytest.raises(ConfigError, match="seed must be"):
        build_dataset("caltech101", "train", data_root=data_root, seed="0")
    (tmp_path / "caltech101" / "101_ObjectCategories.tar.gz").parent.mkdir()
    (tmp_path / "caltech101" / "101_ObjectCategories.tar.gz").write_bytes(b"")
    with pytest.raises(DatasetNotFoundError, match="101_ObjectCategories does not exist") as info:
        build_dataset("caltech101", "train", data_root=tmp_path)
    assert "torchvision.datasets.Caltech101" in str(info.value)


def test_registry_entry():
    info = get_dataset_info("caltech101")
    assert info.num_classes == 102 and info.metric == "mean_per_class"
    assert info.split_sizes == {"train": 3060, "test": 6084}
    assert info.val_holdout.per_class == 5 and info.defaults == {"seed": 0, "train_per_class": 30}
    assert "seed=0" in info.description and "BACKGROUND_Google" in info.description
    assert info.eval_size == 224 and info.eval_crop_fraction == 1.0
