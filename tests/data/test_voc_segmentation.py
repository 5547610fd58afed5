"""VOC2012 + SBD segmentation readers on a devkit written in the real formats, and the shapes masks."""

import numpy as np
import pytest
import scipy.io
import scipy.sparse
import torch
import torchvision
from PIL import Image

from siambench.data import build_dataset, get_dataset_info
from siambench.data import voc_segmentation as vs
from siambench.errors import CorruptImageError, DatasetNotFoundError

VOC_TRAIN = ["2007_000032", "2007_000039"]
VOC_VAL = ["2007_000033", "2007_000042"]
SBD_TRAIN = ["2007_000039", "2007_000033", "2008_000002"]
SBD_VAL = ["2008_000003", "2007_000042"]
TRAIN_AUG = ["2007_000032", "2007_000039", "2008_000002", "2008_000003"]  # (train ∪ SBD) − val
ALL_IDS = sorted(set(VOC_TRAIN + VOC_VAL + SBD_TRAIN + SBD_VAL))
H, W = 10, 12


def voc_palette() -> list[int]:
    """The devkit's colour map (VOCcode/VOClabelcolormap.m): bits of the index spread over R, G, B."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= (c & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def voc_mask(k: int) -> np.ndarray:
    """Classes 0..20 in a pattern that differs per image, with a 255 outline as VOC draws it."""
    mask = ((np.arange(H)[:, None] + 2 * np.arange(W)[None, :] + k) % 21).astype(np.uint8)
    mask[0, :] = 255
    mask[:, -1] = 255
    return mask


def sbd_mask(k: int) -> np.ndarray:
    """SBD masks have no outline class; a constant class per image tells them apart from VOC's."""
    return np.full((H, W), 1 + k % 20, dtype=np.uint8)


def write_palette_png(path, mask):
    im = Image.fromarray(mask, mode="P")
    im.putpalette(voc_palette())
    im.save(path)


def write_sbd_mat(path, mask):
    """SBD's cls/<id>.mat: a struct GTcls with Boundaries (20×1 cell of sparse maps), Segmentation and
    CategoriesPresent, as benchmark_RELEASE/dataset/cls holds."""
    boundaries = np.empty((20, 1), dtype=object)
    for c in range(20):
        boundaries[c, 0] = scipy.sparse.csc_matrix((mask == c + 1).astype(np.float64))
    present = np.unique(mask[(mask > 0) & (mask < 255)]).astype(np.uint8).reshape(-1, 1)
    scipy.io.savemat(path, {"GTcls": {"Boundaries": boundaries, "Segmentation": mask, "CategoriesPresent": present}})


def write_lines(path, ids):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{i}\n" for i in ids))


@pytest.fixture
def devkit(tmp_path):
    """DATA_ROOT/VOCdevkit/VOC2012 (images, palette masks of train and val, split files); no SBD yet."""
    voc = tmp_path / "voc" / "VOCdevkit" / "VOC2012"
    (voc / "JPEGImages").mkdir(parents=True)
    (voc / "SegmentationClass").mkdir()
    rng = np.random.default_rng(0)
    for i in ALL_IDS:
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(voc / "JPEGImages" / f"{i}.jpg")
    for i in VOC_TRAIN + VOC_VAL:
        write_palette_png(voc / "SegmentationClass" / f"{i}.png", voc_mask(ALL_IDS.index(i)))
    write_lines(voc / "ImageSets" / "Segmentation" / "train.txt", VOC_TRAIN)
    write_lines(voc / "ImageSets" / "Segmentation" / "val.txt", VOC_VAL)
    write_lines(voc / "ImageSets" / "Segmentation" / "trainval.txt", sorted(VOC_TRAIN + VOC_VAL))
    return tmp_path


@pytest.fixture(params=vs.SBD_DIRS)
def with_sbd(request, devkit):
    """SBD's dataset folder in each place it is looked for: voc/SBD, voc/benchmark_RELEASE/dataset (where
    benchmark.tgz extracts) and mmsegmentation's VOCdevkit/VOCaug/dataset."""
    sbd = devkit / "voc" / request.param
    (sbd / "cls").mkdir(parents=True)
    (sbd / "img").mkdir()
    for i in sorted(set(SBD_TRAIN + SBD_VAL)):
        write_sbd_mat(sbd / "cls" / f"{i}.mat", sbd_mask(ALL_IDS.index(i)))
        Image.open(devkit / "voc" / "VOCdevkit" / "VOC2012" / "JPEGImages" / f"{i}.jpg").save(sbd / "img" / f"{i}.jpg")
    write_lines(sbd / "train.txt", SBD_TRAIN)
    write_lines(sbd / "val.txt", SBD_VAL)
    return sbd


def expected_mask(i):
    """VOC's mask for the images VOC annotates, SBD's for the others."""
    k = ALL_IDS.index(i)
    return voc_mask(k) if i in VOC_TRAIN + VOC_VAL else sbd_mask(k)


def test_palette_png_fixture_is_a_real_voc_mask(devkit):
    path = devkit / "voc" / "VOCdevkit" / "VOC2012" / "SegmentationClass" / f"{VOC_TRAIN[0]}.png"
    with Image.open(path) as im:
        assert im.mode == "P"
        palette = im.getpalette()
        rgb = np.asarray(im.convert("RGB"))
    # Known devkit colours: aeroplane dark red, person (15) pink, 255 the cream outline.
    assert palette[3:6] == [128, 0, 0] and palette[45:48] == [192, 128, 128] and palette[765:768] == [224, 224, 192]
    assert tuple(rgb[0, 0]) == (224, 224, 192)


def test_voc_splits_read_class_indices_not_colours(devkit):
    train = build_dataset("voc2012_seg", "train", data_root=devkit)
    val = build_dataset("voc2012_seg", "val", data_root=devkit)
    assert [p.stem for p, _ in train.samples] == VOC_TRAIN and [p.stem for p, _ in val.samples] == VOC_VAL
    assert train.classes == vs.VOC_CLASSES and len(train.classes) == 21 and train.classes[15] == "person"
    for ds in (train, val):
        for index, (image_path, _) in enumerate(ds.samples):
            image, mask = ds[index]
            assert image.dtype == torch.uint8 and image.shape == (3, H, W)
            assert mask.dtype == torch.uint8
            np.testing.assert_array_equal(mask.numpy(), expected_mask(image_path.stem))
            assert int(mask.max()) == 255 and set(np.unique(mask.numpy())) <= set(range(21)) | {255}


def test_voc_masks_match_torchvision(devkit):
    reference = torchvision.datasets.VOCSegmentation(str(devkit / "voc"), year="2012", image_set="train")
    ours = build_dataset("voc2012_seg", "train", data_root=devkit)
    assert len(reference) == len(ours) == 2
    for index in range(len(ours)):
        image, target = reference[index]
        mine_image, mine_mask = ours[index]
        np.testing.assert_array_equal(mine_mask.numpy(), np.asarray(target))
        np.testing.assert_array_equal(mine_image.permute(1, 2, 0).numpy(), np.asarray(image))


def test_train_aug_from_sbd_mat_files(devkit, with_sbd):
    ds = build_dataset("voc2012_seg", "train_aug", data_root=devkit)
    assert [p.stem for p, _ in ds.samples] == TRAIN_AUG
    sources = {p.stem: m.suffix for p, m in ds.samples}
    # VOC's own annotation wins where VOC has one (2007_000039 is in both); the rest are SBD's.
    assert sources == {"2007_000032": ".png", "2007_000039": ".png", "2008_000002": ".mat", "2008_000003": ".mat"}
    for index, (image_path, _) in enumerate(ds.samples):
        image, mask = ds[index]
        assert image.shape == (3, H, W)
        np.testing.assert_array_equal(mask.numpy(), expected_mask(image_path.stem))
        assert image_path.parent.name == "JPEGImages"


def test_sbd_reader_matches_torchvision(with_sbd):
    sbd = with_sbd
    reference = torchvision.datasets.SBDataset(str(sbd), image_set="train", mode="segmentation")
    for index, name in enumerate(SBD_TRAIN):
        _, target = reference[index]
        mine = vs.read_sbd_mask(sbd / "cls" / f"{name}.mat")
        np.testing.assert_array_equal(mine.numpy(), np.asarray(target))
        np.testing.assert_array_equal(mine.numpy(), sbd_mask(ALL_IDS.index(name)))


def test_train_aug_from_segmentation_class_aug_pngs(devkit):
    """mmsegmentation's voc_aug.py layout: grayscale class-index PNGs of every SBD image, val ones included."""
    aug = devkit / "voc" / "VOCdevkit" / "VOC2012" / "SegmentationClassAug"
    aug.mkdir()
    for i in sorted(set(SBD_TRAIN + SBD_VAL)):
        Image.fromarray(sbd_mask(ALL_IDS.index(i)), mode="L").save(aug / f"{i}.png")
    ds = build_dataset("voc2012_seg", "train_aug", data_root=devkit)
    assert [p.stem for p, _ in ds.samples] == TRAIN_AUG
    by_id = {p.stem: m for p, m in ds.samples}
    assert by_id["2007_000039"].parent.name == "SegmentationClass"
    assert by_id["2008_000003"].parent.name == "SegmentationClassAug"
    for index, (image_path, _) in enumerate(ds.samples):
        np.testing.assert_array_equal(ds[index][1].numpy(), expected_mask(image_path.stem))


def test_data_check_counts_each_split(devkit, with_sbd):
    from siambench.data.prepare import check, write_manifest

    status = check("voc2012_seg", devkit)
    assert status.present and [(s.split, s.found, s.expected) for s in status.splits] == [
        ("train_aug", 4, 10582), ("train", 2, 1464), ("val", 2, 1449)]
    manifest = write_manifest("voc2012_seg", devkit, progress=False)
    assert manifest.is_file() and not any(s.differs_from_manifest for s in check("voc2012_seg", devkit).splits)


def test_train_aug_without_sbd_names_both_sources(devkit):
    with pytest.raises(DatasetNotFoundError, match="SegmentationClassAug") as err:
        build_dataset("voc2012_seg", "train_aug", data_root=devkit)
    assert "SBD" in str(err.value) and "benchmark.tgz" in str(err.value)


def test_missing_devkit_parts_are_named(tmp_path, devkit):
    with pytest.raises(DatasetNotFoundError, match="VOCdevkit"):
        build_dataset("voc2012_seg", "val", data_root=tmp_path / "elsewhere")
    (tmp_path / "only2007" / "voc" / "VOCdevkit" / "VOC2007").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="VOC2012 was expected"):
        build_dataset("voc2012_seg", "val", data_root=tmp_path / "only2007")
    (devkit / "voc" / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation" / "val.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="val.txt"):
        build_dataset("voc2012_seg", "val", data_root=devkit)
    for path in (devkit / "voc" / "VOCdevkit" / "VOC2012" / "SegmentationClass").iterdir():
        path.unlink()
    (devkit / "voc" / "VOCdevkit" / "VOC2012" / "SegmentationClass").rmdir()
    with pytest.raises(DatasetNotFoundError, match="SegmentationClass"):
        build_dataset("voc2012_seg", "train", data_root=devkit)


def test_rgb_masks_and_broken_files_are_errors(devkit, with_sbd):
    seg = devkit / "voc" / "VOCdevkit" / "VOC2012" / "SegmentationClass"
    Image.fromarray(np.zeros((H, W, 3), dtype=np.uint8)).save(seg / f"{VOC_TRAIN[0]}.png")
    ds = build_dataset("voc2012_seg", "train", data_root=devkit)
    with pytest.raises(DatasetNotFoundError, match="palette"):
        ds[0]
    bad = with_sbd / "cls" / "2008_000002.mat"
    scipy.io.savemat(bad, {"GTinst": {"Segmentation": np.zeros((H, W), dtype=np.uint8)}})
    with pytest.raises(CorruptImageError, match="GTcls"):
        vs.read_sbd_mask(bad)
    bad.write_bytes(b"not a MATLAB file" * 16)
    with pytest.raises(CorruptImageError, match="GTcls"):
        vs.read_sbd_mask(bad)
    write_palette_png(seg / f"{VOC_TRAIN[1]}.png", np.zeros((H + 1, W), dtype=np.uint8))
    with pytest.raises(CorruptImageError, match="mask is"):
        ds[1]


def test_registry_entries():
    voc = get_dataset_info("voc2012_seg")
    assert (voc.num_classes, voc.train_split, voc.test_split, voc.metric) == (21, "train_aug", "val", "miou")
    assert voc.split_sizes == {"train_aug": 10582, "train": 1464, "val": 1449}
    assert voc.val_holdout.count == 2119 and voc.subdir == "voc"
