"""BYOL's crop windows against the official ``dataset._decode_and_random_crop``.

TF's random stream cannot be replayed in torch, so the official function ran
with its two float draws given (area and log-aspect, uniform in [0, 1)) on
2,000 image sizes (tests/golden/byol_crop_windows.npz; how it was made is in
tests/golden/README.md). siambench's ``crop_box`` gets the same draws through
a stand-in for ``random.Random`` and must give the same height and width,
exactly: the official rule is one draw with each side clipped to the image,
where torchvision's retries ten times and falls back to a centre crop.
"""

from pathlib import Path

import numpy as np
import pytest

from siambench.data.transforms import VIEW_PRESETS, crop_box

GOLDEN = Path(__file__).parent.parent / "golden" / "byol_crop_windows.npz"


class GivenDraws:
    """A ``random.Random`` whose ``uniform`` draws are given as fractions of the range."""

    def __init__(self, fractions):
        self.fractions = list(fractions)

    def uniform(self, low, high):
        return low + (high - low) * float(self.fractions.pop(0))

    def randint(self, low, high):
        return low


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(GOLDEN))


def windows(golden, preset):
    cfg = VIEW_PRESETS[preset]
    out = []
    for height, width, u_area, u_ratio in zip(golden["height"], golden["width"], golden["u_area"], golden["u_ratio"]):
        _, _, h, w = crop_box(int(height), int(width), cfg, GivenDraws([u_area, u_ratio]))
        out.append((h, w))
    return np.array(out)


@pytest.mark.parametrize("preset", ["byol_view1", "byol_view2"])
def test_crop_windows_match_byol(golden, preset):
    ours = windows(golden, preset)
    np.testing.assert_array_equal(ours[:, 0], golden["h"])
    np.testing.assert_array_equal(ours[:, 1], golden["w"])


def test_golden_windows_exercise_the_clipping(golden):
    """Some official windows are clipped to the image, the case where the torchvision rule differs."""
    clipped = (golden["h"] == golden["height"]) | (golden["w"] == golden["width"])
    assert 100 < clipped.sum() < len(clipped)
