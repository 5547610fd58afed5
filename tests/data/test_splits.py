"""The held-out validation draws: the protocol's sizes on full-size label lists, and deterministic."""

import numpy as np
import pytest

from siambench.data import get_dataset_info
from siambench.data.splits import Holdout, holdout_indices, selection_split
from siambench.errors import ConfigError


def balanced(classes: int, per_class: int) -> np.ndarray:
    return np.repeat(np.arange(classes), per_class)


# (dataset, its training labels as on disk, published train and val sizes: PROTOCOLS C.3 / BYOL Table 10)
PUBLISHED = [
    ("cifar10", balanced(10, 5000), 45000, 5000),
    ("cifar100", balanced(100, 500), 44933, 5067),
    ("food101", balanced(101, 750), 68175, 7575),
    ("stanford_cars", np.arange(8144) % 196, 6494, 1650),
    ("birdsnap", np.arange(47386) % 500, 42405, 4981),
    ("sun397", balanced(397, 50), 15880, 3970),
    ("oxford_pets", np.arange(3680) % 37, 2940, 740),
    ("caltech101", balanced(102, 30), 2550, 510),
]


@pytest.mark.parametrize("name,targets,train_size,val_size", PUBLISHED, ids=[p[0] for p in PUBLISHED])
def test_registry_rules_give_the_published_sizes(name, targets, train_size, val_size):
    train, val, _ = selection_split(get_dataset_info(name), targets)
    assert (len(train), len(val)) == (train_size, val_size)
    assert np.intersect1d(train, val).size == 0 and len(train) + len(val) == len(targets)


def test_official_val_splits_have_no_holdout():
    for name in ("fgvc_aircraft", "voc2007", "dtd", "flowers102"):
        info = get_dataset_info(name)
        assert info.val_split == "val" and info.val_holdout is None


def test_per_class_draw_takes_exactly_that_many_of_every_class():
    targets = np.random.default_rng(3).integers(0, 37, 3680)
    _, val = holdout_indices(targets, Holdout(per_class=20))
    assert np.bincount(targets[val], minlength=37).tolist() == [20] * 37


def test_draws_are_deterministic_and_change_with_the_seed():
    targets = balanced(10, 100)
    first = holdout_indices(targets, Holdout(count=100))[1]
    assert np.array_equal(first, holdout_indices(targets, Holdout(count=100))[1])
    assert not np.array_equal(first, holdout_indices(targets, Holdout(count=100, seed=1))[1])


def test_too_large_a_holdout_is_an_error():
    with pytest.raises(ConfigError, match="class 1 has 3"):
        holdout_indices(np.array([0] * 10 + [1] * 3), Holdout(per_class=5))
    with pytest.raises(ConfigError, match="cannot hold out 11 of 10"):
        holdout_indices(10, Holdout(count=11))
    assert len(holdout_indices(10, Holdout(count=10))[0]) == 0  # a whole pool can be drawn
    with pytest.raises(ValueError):
        Holdout(count=5, per_class=2)


def test_fallback_rule_holds_out_a_fraction():
    info = get_dataset_info("shapes")
    train, val, text = selection_split(info, balanced(12, 10), val_fraction=0.25, seed=4)
    assert len(val) == 30 and "seed 4" in text


def test_the_linear_probe_holds_out_with_the_same_draw():
    """The probe's LR hold-out is holdout_indices' draw; its train subset a second draw over the rest, not a prefix."""
    from siambench.eval_linear.probe import split_train_val

    train, val = split_train_val(1000, 100, seed=3)
    assert np.array_equal(val, holdout_indices(1000, Holdout(count=100, seed=3))[1])
    assert len(train) == 900 and not set(train) & set(val)
    subset, same_val = split_train_val(1000, 100, seed=3, train_subset=50)
    assert np.array_equal(same_val, val) and len(subset) == 50 and set(subset) <= set(train)
    assert subset.max() > train[60]  # drawn from all of the rest, not its first 50
    assert np.array_equal(split_train_val(1000, 0, seed=3)[0], np.arange(1000))
