"""The one corrupt-image-tolerant view and its collate, which every evaluation loader uses."""

import numpy as np
import pytest
import torch

from siambench.data.sampling import CropFlipDataset, ReadableView, collate_readable
from siambench.data.transforms import VIEW_PRESETS
from siambench.errors import CorruptImageError


class Flaky(torch.utils.data.Dataset):
    """Image i is filled with i; images listed in ``bad`` cannot be read."""

    def __init__(self, n, bad=(), multilabel=False):
        self.n, self.bad, self.multilabel = n, set(bad), multilabel

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i in self.bad:
            raise CorruptImageError(f"img{i}.jpg", "truncated")
        label = np.eye(3, dtype=np.float32)[i % 3] if self.multilabel else i % 3
        return torch.full((3, 8, 8), i, dtype=torch.uint8), label


class Identity(ReadableView):
    def view(self, sample, key):
        return (*sample, key)


def test_positions_read_the_given_indices_and_unreadable_ones_are_left_out():
    view = Identity(Flaky(10, bad={4}), indices=[7, 4, 2])
    assert len(view) == 3 and view[1] is None
    images, labels, keys = collate_readable([view[i] for i in range(3)])
    assert images[:, 0, 0, 0].tolist() == [7, 2] and labels.tolist() == [1, 2] and keys.tolist() == [0, 2]


def test_sampler_keys_read_their_index_and_pass_the_seed_on():
    data = Flaky(10)
    a, b = CropFlipDataset(data, VIEW_PRESETS["byol_view1"]), CropFlipDataset(data, VIEW_PRESETS["byol_view1"])
    image, label = a[(5, 123)]
    assert label == 2 and torch.equal(image, b[(5, 123)][0])
    assert (image == 5).all()


def test_multilabel_targets_stack_as_vectors_and_an_all_unreadable_batch_is_none():
    view = Identity(Flaky(6, bad={0, 1}, multilabel=True))
    _, labels, _ = collate_readable([view[i] for i in range(6)])
    assert labels.shape == (4, 3) and labels.dtype == torch.float32
    assert collate_readable([view[0], view[1]]) is None


def test_a_view_must_say_what_a_sample_becomes():
    with pytest.raises(NotImplementedError):
        ReadableView(Flaky(2))[0]
