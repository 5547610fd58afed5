"""NYU Depth v2: RGB frames with metric depth maps, in two on-disk layouts.

The labelled set is ``nyu_depth_v2_labeled.mat``: 1,449 frames of 640×480
with filled-in depths, a MATLAB v7.3 file, which is HDF5. MATLAB writes
arrays column-major, so h5py sees every array with its dimensions reversed:
``images`` as ``(N, 3, W, H)`` uint8 and ``depths`` as ``(N, W, H)`` float32.
The reader swaps the last two dimensions back and checks that the frames
come out landscape, as NYU's are; a copy re-saved in row-major order would
otherwise be read silently transposed. ``splits.mat`` (a MATLAB v5 file) holds
the official ``trainNdxs`` (795) and ``testNdxs`` (654) as 1-based indices;
the 654 test frames are the test set every published number uses.

Larger training sets (the raw-video frames of the training scenes) come as a
folder of ``rgb_*.jpg`` and ``depth_*.png`` pairs, the depth PNGs uint16 in
millimetres with 0 where the sensor gave no reading, listed in ``train.txt``
(or ``test.txt``). A split with a list file is read from it; a split
without one from the labelled ``.mat``.

A depth dataset yields ``(image, depth)``: a ``(3, H, W)`` uint8 RGB tensor
and an ``(H, W)`` float32 tensor in metres, 0 where there is no depth.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, CorruptImageError, DatasetNotFoundError, SiambenchError
from .base import decode_image
from .registry import DatasetInfo, register_dataset

LABELED_FILE = "nyu_depth_v2_labeled.mat"
SPLITS_FILE = "splits.mat"
SPLIT_KEYS = {"train": "trainNdxs", "test": "testNdxs"}
LIST_FILES = {"train": "train.txt", "test": "test.txt"}
READERS = ("auto", "labeled", "list")
STANDARD_TEST_SIZE = 654


class DepthDataset(torch.utils.data.Dataset):
    """Frames with depth maps; subclasses implement :meth:`load_image` and :meth:`load_depth`.

    ``source`` says where the frames come from (it goes into the result
    record) and ``standard`` whether they are the split published numbers
    use.
    """

    source: str = ""
    standard: bool = False

    def __len__(self) -> int:
        raise NotImplementedError

    def load_image(self, index: int) -> torch.Tensor:
        raise NotImplementedError

    def load_depth(self, index: int) -> torch.Tensor:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.load_image(index), self.load_depth(index)

    def describe(self, index: int) -> str:
        return f"frame {index}"


def _missing(what: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"dataset 'nyu_depth_v2': {what} Expected layout: {NYU.layout} To prepare it: {NYU.prepare}"
    )


# The labelled .mat ------------------------------------------------------------


def read_split_indices(path: Path, split: str) -> np.ndarray:
    """0-based frame indices of ``split`` from the official ``splits.mat`` (stored 1-based)."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
    except (OSError, ValueError, NotImplementedError, scipy.io.matlab.MatReadError) as exc:
        raise _missing(f"{path} is not a readable MATLAB file ({exc}).") from None
    key = SPLIT_KEYS[split]
    if key not in mat:
        found = ", ".join(k for k in mat if not k.startswith("__"))
        raise _missing(f"{path} has no {key!r} (found: {found}).")
    values = np.asarray(mat[key], dtype=np.float64).ravel()
    if values.size == 0 or np.any(values != np.round(values)) or values.min() < 1:
        raise _missing(f"{path}: {key} must hold 1-based frame numbers, found {values[:5]}.")
    return values.astype(np.int64) - 1


def _h5py():
    try:
        import h5py
    except ImportError:
        raise SiambenchError(f"reading {LABELED_FILE} (MATLAB v7.3, i.e. HDF5) needs h5py: pip install h5py") from None
    return h5py


class NYULabeled(DepthDataset):
    """Frames ``indices`` (0-based) of ``nyu_depth_v2_labeled.mat``, read lazily.

    The HDF5 file is opened on first access in each process, so loader
    workers never share a handle opened before they were forked.
    """

    def __init__(self, path: str | Path, indices, split: str | None = None):
        self.path = Path(path)
        self.indices = [int(i) for i in indices]
        self._file, self._pid = None, None
        count, width, height = self._check()
        bad = [i for i in self.indices if not 0 <= i < count]
        if bad:
            raise _missing(f"{self.path} holds {count} frames, but the split asks for frame "
                           f"{bad[0] + 1} (1-based); splits.mat does not belong to this file.")
        self.frame_size = (height, width)
        self.source = f"{LABELED_FILE}, {split or 'selected'} frames ({len(self.indices)})"
        self.standard = split == "test" and len(self.indices) == STANDARD_TEST_SIZE

    def _h5(self):
        if self._file is None or self._pid != os.getpid():
            h5py = _h5py()
            self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._file

    def __getstate__(self):
        return {**self.__dict__, "_file": None, "_pid": None}

    def _check(self) -> tuple[int, int, int]:
        """``(frames, width, height)``, after checking the arrays' names, types and MATLAB order."""
        h5py = _h5py()
        try:
            f = self._h5()
        except (OSError, ValueError) as exc:
            raise _missing(f"{self.path} is not an HDF5 (MATLAB v7.3) file ({exc}).") from None
        if not isinstance(f.get("images"), h5py.Dataset) or not isinstance(f.get("depths"), h5py.Dataset):
            raise _missing(f"{self.path} lacks the arrays 'images' and 'depths' "
                           f"(found: {', '.join(sorted(f.keys()))}).")
        images, depths = f["images"], f["depths"]
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise _missing(f"{self.path}: 'images' is {images.dtype} {images.shape}; expected "
                           "uint8 (N, 3, 640, 480), MATLAB's 480x640x3xN read by h5py.")
        count, _, width, height = images.shape
        if depths.dtype.kind != "f" or depths.shape != (count, width, height):
            raise _missing(f"{self.path}: 'depths' is {depths.dtype} {depths.shape}; expected "
                           f"float ({count}, {width}, {height}) to match 'images'.")
        if height > width:
            raise _missing(f"{self.path} holds portrait frames ({width}x{height} after undoing "
                           "MATLAB's column-major order); NYU's are 640x480 landscape, so this "
                           "copy was re-saved row-major and would be read transposed.")
        return count, width, height

    def __len__(self) -> int:
        return len(self.indices)

    def load_image(self, index: int) -> torch.Tensor:
        frame = self._h5()["images"][self.indices[index]]
        return torch.from_numpy(np.ascontiguousarray(frame.transpose(0, 2, 1)))

    def load_depth(self, index: int) -> torch.Tensor:
        depth = self._h5()["depths"][self.indices[index]]
        return torch.from_numpy(np.ascontiguousarray(depth.T, dtype=np.float32))

    def describe(self, index: int) -> str:
        return f"{self.path} frame {self.indices[index] + 1}"


def build_labeled(root: Path, split: str) -> NYULabeled:
    mat, splits = root / LABELED_FILE, root / SPLITS_FILE
    for path in (mat, splits):
        if not path.is_file():
            raise _missing(f"{path} is missing (and there is no {LIST_FILES[split]} to read split "
                                 f"{split!r} from instead).")
    return NYULabeled(mat, read_split_indices(splits, split), split)


# Folders of rgb_*.jpg + depth_*.png --------------------------------------------


def read_depth_png(path: str | Path) -> torch.Tensor:
    """A uint16 PNG in millimetres as float32 metres (0 stays 0: no reading)."""
    try:
        with Image.open(path) as im:
            mode = im.mode
            array = np.asarray(im)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise CorruptImageError(path, exc) from None
    if mode not in ("I;16", "I;16B", "I;16L", "I") or array.ndim != 2:
        raise CorruptImageError(path, f"expected a 16-bit single-channel PNG in millimetres, found mode {mode}")
    return torch.from_numpy(array.astype(np.float32) / 1000.0)


def _depth_name(rgb: str) -> str:
    folder, _, name = rgb.rpartition("/")
    if not name.startswith("rgb_"):
        raise ValueError(f"{rgb!r} is not named rgb_*, so its depth file cannot be inferred; list it after it")
    depth = "depth_" + name[len("rgb_"):].rsplit(".", 1)[0] + ".png"
    return f"{folder}/{depth}" if folder else depth


def read_pair_list(path: Path) -> list[tuple[str, str]]:
    """``(rgb, depth)`` relative paths from a list file.

    Each line is ``RGB [DEPTH [more fields...]]``: fields after the second
    (a focal length in BTS-style lists) are ignored, a leading ``/`` is
    dropped, and a missing DEPTH is RGB's ``depth_*.png`` twin in the same
    folder. Blank lines and lines starting with ``#`` are skipped.
    """
    pairs = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        rgb = fields[0].lstrip("/")
        try:
            depth = fields[1].lstrip("/") if len(fields) > 1 else _depth_name(rgb)
        except ValueError as exc:
            raise _missing(f"{path} line {number}: {exc}.") from None
        pairs.append((rgb, depth))
    return pairs


class NYUFolder(DepthDataset):
    """Pairs of an RGB image and a uint16 millimetre depth PNG, listed in a text file."""

    def __init__(self, root: str | Path, pairs: list[tuple[str, str]], source: str = ""):
        self.root = Path(root)
        self.pairs = list(pairs)
        self.source = source or f"{len(self.pairs)} listed frames"

    def __len__(self) -> int:
        return len(self.pairs)

    def load_image(self, index: int) -> torch.Tensor:
        return decode_image(self.root / self.pairs[index][0])

    def load_depth(self, index: int) -> torch.Tensor:
        return read_depth_png(self.root / self.pairs[index][1])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, depth = super().__getitem__(index)
        if tuple(image.shape[-2:]) != tuple(depth.shape):
            raise CorruptImageError(self.root / self.pairs[index][1],
                                    f"depth {tuple(depth.shape)} does not match image {tuple(image.shape[-2:])}")
        return image, depth

    def describe(self, index: int) -> str:
        return str(self.root / self.pairs[index][0])


def build_list(root: Path, split: str) -> NYUFolder:
    path = root / LIST_FILES[split]
    if not path.is_file():
        raise _missing(f"{path} is missing.")
    pairs = read_pair_list(path)
    if not pairs:
        raise _missing(f"{path} lists no frames.")
    absent = [p for pair in pairs for p in pair if not (root / p).is_file()]
    if absent:
        raise _missing(f"{len(absent)} files listed in {path} do not exist under {root}, e.g. "
                             f"{', '.join(absent[:3])}.")
    return NYUFolder(root, pairs, f"{LIST_FILES[split]} ({len(pairs)} frames)")


def build(split: str, root: Path, reader: str = "auto") -> DepthDataset:
    """Registry entry point: ``reader`` is ``labeled``, ``list``, or ``auto`` (the list file if present)."""
    if reader not in READERS:
        raise ConfigError(f"nyu_depth_v2: reader must be one of {', '.join(READERS)}, got {reader!r}")
    if reader == "list" or (reader == "auto" and (root / LIST_FILES[split]).is_file()):
        return build_list(root, split)
    return build_labeled(root, split)


NYU = register_dataset(
    DatasetInfo(
        name="nyu_depth_v2",
        build=build,
        splits=("train", "test"),
        num_classes=None,
        metric="delta1",
        readers=("nyu-labeled-mat", "depth-png-list"),
        layout=(
            f"DATA_ROOT/nyu_depth_v2/ holding {LABELED_FILE} (the 1,449 labelled 640x480 frames, MATLAB v7.3) "
            f"and {SPLITS_FILE} (trainNdxs 795, testNdxs 654). For a larger training set add train.txt listing "
            "one frame per line as 'RGB DEPTH' paths relative to that folder (e.g. "
            "'kitchen_0028b/rgb_00045.jpg kitchen_0028b/depth_00045.png'; DEPTH may be left out for a "
            "depth_*.png beside an rgb_*.jpg), the depth PNGs uint16 in millimetres with 0 for no reading; "
            "a split with a list file is read from it instead of the .mat."
        ),
        prepare=(
            f"download {LABELED_FILE} (2.8 GB) from "
            "http://horatio.cs.nyu.edu/mit/silberman/nyu_depth_v2/nyu_depth_v2_labeled.mat and splits.mat from "
            "http://horatio.cs.nyu.edu/mit/silberman/indoor_seg_sup/splits.mat into DATA_ROOT/nyu_depth_v2/. "
            "For raw-video training frames, align each depth frame to its RGB frame with the NYU Depth v2 "
            "toolbox, write them as rgb_*.jpg and depth_*.png (uint16 millimetres) and list them in train.txt."
        ),
        subdir="nyu_depth_v2",
        description=(
            "NYU Depth v2: indoor RGB-D frames, 640x480; the official split has 795 labelled training and "
            "654 test frames. Metrics: pct of pixels within 1.25, 1.25^2, 1.25^3, rms, rel."
        ),
        eval_size=228,
        eval_crop_fraction=1.0,
        train_split="train",
        test_split="test",
        split_sizes={"train": 795, "test": 654},
    )
)
