"""NYU Depth v2 readers on files written in the real layouts.

The labelled set is written as MATLAB v7.3 writes it: an HDF5 file behind a
512-byte MATLAB header, every array stored column-major, so that h5py sees
``images`` as (N, 3, W, H) and ``depths`` as (N, W, H); ``splits.mat`` is a
MATLAB v5 file with 1-based column vectors, as the official one is.
"""

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from siambench.data import build_dataset, get_dataset_info
from siambench.data.nyu import NYUFolder, NYULabeled, read_depth_png
from siambench.errors import CorruptImageError, DatasetNotFoundError

h5py = pytest.importorskip("h5py")

N, H, W = 7, 12, 16
TRAIN_1BASED = [1, 3, 4, 6]
TEST_1BASED = [2, 5, 7]


def matlab_v73_header() -> bytes:
    """The 128-byte header MATLAB puts in the HDF5 user block: text, subsystem offset, version 0x0200, 'IM'."""
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    return text.ljust(116, b" ") + b" " * 8 + b"\x00\x02" + b"IM"


def write_matlab_v73(path, arrays: dict) -> None:
    """``arrays`` maps names to (array in MATLAB's own dimension order, MATLAB class); stored column-major."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, (array, matlab_class) in arrays.items():
            f.create_dataset(name, data=np.asarray(array).transpose(), compression="gzip")
            f[name].attrs["MATLAB_class"] = np.bytes_(matlab_class)
    with open(path, "r+b") as fh:
        fh.write(matlab_v73_header().ljust(512, b"\0"))


def reference_frames():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (N, H, W, 3), dtype=np.uint8)
    depths = rng.uniform(0.7, 9.9, (N, H, W)).astype(np.float32)
    return images, depths


@pytest.fixture
def nyu_root(tmp_path):
    """DATA_ROOT/nyu_depth_v2 with the labelled .mat and splits.mat; returns (data root, images, depths)."""
    root = tmp_path / "nyu_depth_v2"
    root.mkdir()
    images, depths = reference_frames()
    # MATLAB's own order: images H x W x 3 x N, depths H x W x N.
    write_matlab_v73(root / "nyu_depth_v2_labeled.mat", {
        "images": (images.transpose(1, 2, 3, 0), "uint8"),
        "depths": (depths.transpose(1, 2, 0), "single"),
        "rawDepths": (depths.transpose(1, 2, 0), "single"),
        "labels": (np.zeros((H, W, N), np.uint16), "uint16"),
    })
    scipy.io.savemat(root / "splits.mat", {
        "trainNdxs": np.array(TRAIN_1BASED, dtype=np.float64)[:, None],
        "testNdxs": np.array(TEST_1BASED, dtype=np.float64)[:, None],
    })
    return tmp_path, images, depths


def test_fixture_is_a_matlab_v73_file(nyu_root):
    data_root, _, _ = nyu_root
    path = data_root / "nyu_depth_v2" / "nyu_depth_v2_labeled.mat"
    with pytest.raises(NotImplementedError, match="7.3"):
        scipy.io.loadmat(path)
    with h5py.File(path, "r") as f:
        assert f["images"].shape == (N, 3, W, H) and f["depths"].shape == (N, W, H)


def test_labeled_frames_come_back_in_row_major_order(nyu_root):
    data_root, images, depths = nyu_root
    test = build_dataset("nyu_depth_v2", "test", data_root=data_root)
    train = build_dataset("nyu_depth_v2", "train", data_root=data_root)
    assert isinstance(test, NYULabeled) and (len(train), len(test)) == (4, 3)
    for dataset, numbers in ((train, TRAIN_1BASED), (test, TEST_1BASED)):
        for i, number in enumerate(numbers):
            image, depth = dataset[i]
            assert image.dtype == torch.uint8 and image.shape == (3, H, W)
            assert depth.dtype == torch.float32 and depth.shape == (H, W)
            assert torch.equal(image, torch.from_numpy(images[number - 1]).permute(2, 0, 1))
            assert torch.equal(depth, torch.from_numpy(depths[number - 1]))
    assert not test.standard and "test frames (3)" in test.source


def test_labeled_reader_works_in_loader_workers(nyu_root):
    data_root, images, _ = nyu_root
    test = build_dataset("nyu_depth_v2", "test", data_root=data_root)
    loader = torch.utils.data.DataLoader(test, batch_size=3, num_workers=2)
    batch_images, _ = next(iter(loader))
    expected = torch.from_numpy(images[[n - 1 for n in TEST_1BASED]]).permute(0, 3, 1, 2)
    assert torch.equal(batch_images, expected)


def test_a_row_major_copy_is_refused_rather_than_read_transposed(tmp_path):
    root = tmp_path / "nyu_depth_v2"
    root.mkdir()
    images, depths = reference_frames()
    with h5py.File(root / "nyu_depth_v2_labeled.mat", "w") as f:
        f["images"] = images.transpose(0, 3, 1, 2)  # (N, 3, H, W): what numpy code re-saving it would write
        f["depths"] = depths
    scipy.io.savemat(root / "splits.mat", {"trainNdxs": [[1]], "testNdxs": [[2]]})
    with pytest.raises(DatasetNotFoundError, match="row-major"):
        build_dataset("nyu_depth_v2", "test", data_root=tmp_path)


def test_split_indices_beyond_the_file_are_refused(nyu_root):
    data_root, _, _ = nyu_root
    scipy.io.savemat(data_root / "nyu_depth_v2" / "splits.mat", {"trainNdxs": [[1], [8]], "testNdxs": [[2]]})
    with pytest.raises(DatasetNotFoundError, match="holds 7 frames.*frame 8"):
        build_dataset("nyu_depth_v2", "train", data_root=data_root)


def test_unreadable_splits_file_is_reported(nyu_root):
    data_root, _, _ = nyu_root
    (data_root / "nyu_depth_v2" / "splits.mat").write_bytes(b"<html>404 Not Found</html>" * 8)
    with pytest.raises(DatasetNotFoundError, match="splits.mat is not a readable MATLAB file"):
        build_dataset("nyu_depth_v2", "test", data_root=data_root)


def test_missing_files_name_the_layout_and_how_to_prepare(tmp_path):
    (tmp_path / "nyu_depth_v2").mkdir()
    (tmp_path / "nyu_depth_v2" / "README").write_text("nothing here yet")
    with pytest.raises(DatasetNotFoundError) as err:
        build_dataset("nyu_depth_v2", "test", data_root=tmp_path)
    message = str(err.value)
    assert "nyu_depth_v2_labeled.mat is missing" in message and "test.txt" in message
    assert "splits.mat" in message and "horatio.cs.nyu.edu" in message
    with pytest.raises(DatasetNotFoundError, match="needs a data root"):
        build_dataset("nyu_depth_v2", "test")


def test_registry_entry():
    info = get_dataset_info("nyu_depth_v2")
    assert info.split_sizes == {"train": 795, "test": 654}
    assert (info.train_split, info.test_split, info.subdir) == ("train", "test", "nyu_depth_v2")


# Folders of rgb_*.jpg + depth_*.png --------------------------------------------


def write_frame(folder, stem, rng, size=(H, W)):
    rgb = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    millimetres = rng.integers(500, 9000, size, dtype=np.uint16)
    millimetres[0, :3] = 0  # no reading
    Image.fromarray(rgb).save(folder / f"rgb_{stem}.jpg", quality=100)
    Image.fromarray(millimetres).save(folder / f"depth_{stem}.png")
    return millimetres


def test_depth_png_is_millimetres_with_zero_for_no_reading(tmp_path):
    mm = write_frame(tmp_path, "00001", np.random.default_rng(1))
    assert Image.open(tmp_path / "depth_00001.png").mode == "I;16"
    depth = read_depth_png(tmp_path / "depth_00001.png")
    assert depth.dtype == torch.float32 and depth.shape == (H, W)
    assert torch.allclose(depth, torch.from_numpy(mm.astype(np.float64) / 1000).float())
    assert torch.all(depth[0, :3] == 0) and depth[1, 0] == mm[1, 0] / 1000
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / "depth_rgb.png")
    with pytest.raises(CorruptImageError, match="16-bit"):
        read_depth_png(tmp_path / "depth_rgb.png")


def test_list_layout_replaces_the_labelled_split(nyu_root):
    data_root, _, _ = nyu_root
    root = data_root / "nyu_depth_v2"
    scene = root / "kitchen_0028b"
    scene.mkdir()
    rng = np.random.default_rng(2)
    mm = {stem: write_frame(scene, stem, rng) for stem in ("00045", "00046", "00047")}
    (root / "train.txt").write_text(
        "# BTS-style lines: rgb, depth, focal length\n"
        "/kitchen_0028b/rgb_00045.jpg /kitchen_0028b/depth_00045.png 518.8579\n"
        "\n"
        "kitchen_0028b/rgb_00047.jpg\n"
        "kitchen_0028b/rgb_00046.jpg kitchen_0028b/depth_00046.png\n"
    )
    train = build_dataset("nyu_depth_v2", "train", data_root=data_root)
    assert isinstance(train, NYUFolder) and len(train) == 3
    assert [depth for _, depth in train.pairs] == [
        "kitchen_0028b/depth_00045.png", "kitchen_0028b/depth_00047.png", "kitchen_0028b/depth_00046.png"]
    for i, stem in enumerate(("00045", "00047", "00046")):
        image, depth = train[i]
        assert image.shape == (3, H, W) and image.dtype == torch.uint8
        assert torch.equal(depth, torch.from_numpy(mm[stem].astype(np.float32) / 1000))
        assert torch.equal(image, torch.from_numpy(np.array(Image.open(scene / f"rgb_{stem}.jpg"))).permute(2, 0, 1))
    # No test.txt: the test split still comes from the labelled .mat; the reader can also be forced.
    assert isinstance(build_dataset("nyu_depth_v2", "test", data_root=data_root), NYULabeled)
    assert isinstance(build_dataset("nyu_depth_v2", "train", data_root=data_root, reader="labeled"), NYULabeled)


def test_list_layout_errors(tmp_path):
    root = tmp_path / "nyu_depth_v2"
    root.mkdir()
    write_frame(root, "00001", np.random.default_rng(3))
    (root / "test.txt").write_text("rgb_00001.jpg\nrgb_00002.jpg depth_00002.png\n")
    with pytest.raises(DatasetNotFoundError, match="2 files listed .* do not exist.*rgb_00002.jpg"):
        build_dataset("nyu_depth_v2", "test", data_root=tmp_path)
    (root / "test.txt").write_text("frame_00001.jpg\n")
    with pytest.raises(DatasetNotFoundError, match="line 1.*not named rgb_"):
        build_dataset("nyu_depth_v2", "test", data_root=tmp_path)
    Image.fromarray(np.zeros((H + 2, W, 3), np.uint8)).save(root / "rgb_00009.jpg")
    (root / "test.txt").write_text("rgb_00009.jpg depth_00001.png\n")
    test = build_dataset("nyu_depth_v2", "test", data_root=tmp_path)
    with pytest.raises(CorruptImageError, match="does not match image"):
        test[0]
