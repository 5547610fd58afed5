import numpy as np
import pytest
import torch
from torch import nn

from siambench.configs import apply_overrides, load_preset
from siambench.data import build_dataset
from siambench.data.base import ArrayImageDataset
from siambench.data.sampling import EpochBatches
from siambench.errors import ConfigError
from siambench.eval_linear.probe import lr_factor, run_linear_probe, train_linear_heads
from siambench.models import build_resnet


@pytest.fixture(autouse=True)
def one_thread():
    """Tensors here are tiny: one thread avoids paying for thread wake-ups on every op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TinyEncoder(nn.Sequential):
    """A fixed random conv layer with BatchNorm, pooled: 32 features."""

    num_features = 32

    def __init__(self, seed=0):
        torch.manual_seed(seed)
        super().__init__(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten())


def probe_cfg(*overrides):
    base = ["data.crop_size=32", "data.num_workers=0", "data.train_subset=null", "schedule.batch_size=32",
            "schedule.epochs=2", "train.eval_batch_size=128"]
    return apply_overrides(load_preset("linear", "tiny"), [*base, *overrides])


@pytest.mark.parametrize("optim", [
    ["optim.name=sgd", "optim.nesterov=true", "schedule.name=cosine", "schedule.per=step"],
    ["optim.name=lars", "schedule.name=cosine", "schedule.per=epoch"],
    ["optim.name=sgd", "optim.nesterov=false", "optim.lr_scale_batch=null", "schedule.name=step",
     "schedule.milestones=[1]"],
])
def test_each_head_equals_a_separate_single_lr_run(optim):
    data = build_dataset("digits", "train")
    indices = np.arange(0, 400)
    lrs = [0.05, 0.5, 2.0]
    cfg = probe_cfg(*optim, f"optim.lrs={lrs}")
    heads, info = train_linear_heads(TinyEncoder(), data, indices, 10, cfg, seed=3)
    assert info["steps"] == 2 * 13 and info["images"] == 800
    for lr, head in zip(lrs, heads):
        (single,), _ = train_linear_heads(TinyEncoder(), data, indices, 10, probe_cfg(*optim, f"optim.lrs=[{lr}]"), seed=3)
        assert torch.equal(head.weight, single.weight) and torch.equal(head.bias, single.bias)
    assert not torch.equal(heads[0].weight, heads[1].weight)
    # a different seed is a different run
    (other,), _ = train_linear_heads(TinyEncoder(), data, indices, 10, probe_cfg(*optim, f"optim.lrs=[{lrs[0]}]"), seed=4)
    assert not torch.equal(other.weight, heads[0].weight)


def test_the_encoder_is_left_as_it_was_found():
    encoder = build_resnet("resnet18", 0.25, "imagenet")
    encoder.train()
    # make the BN statistics non-trivial so that an update would show
    with torch.no_grad():
        encoder(torch.randn(8, 3, 32, 32))
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    train_set = build_dataset("digits", "train")
    test_set = torch.utils.data.Subset(build_dataset("digits", "test"), range(64))
    cfg = probe_cfg("data.val_size=64", "data.train_subset=128", "schedule.epochs=1", "optim.lrs=[0.1, 0.2]")
    r = run_linear_probe(encoder, train_set, test_set, cfg, seed=0, progress=False, num_classes=10)
    assert encoder.training
    after = encoder.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert r["train_size"] == 128 and r["val_size"] == 64 and r["test_size"] == 64


def coloured_squares(n, seed):
    """Five classes told apart by colour, under heavy pixel noise."""
    rng = np.random.default_rng(seed)
    palette = np.array([[220, 40, 40], [40, 200, 40], [40, 40, 220], [220, 220, 40], [200, 40, 220]])
    y = rng.integers(0, 5, size=n)
    x = palette[y][:, None, None, :] + rng.normal(0, 40, size=(n, 32, 32, 3))
    return ArrayImageDataset(np.clip(x, 0, 255).astype(np.uint8), y, [str(i) for i in range(5)])


def test_probe_separates_a_well_separated_toy_dataset():
    cfg = probe_cfg("data.val_size=100", "optim.lrs=[0.1, 1.0, 10.0]", "schedule.epochs=3")
    r = run_linear_probe(TinyEncoder(), coloured_squares(500, 0), coloured_squares(300, 1), cfg, seed=0, progress=False)
    assert r["top1"] > 90
    assert set(r["per_lr_val"]) == {0.1, 1.0, 10.0}
    assert r["per_lr_val"][r["best_lr"]] == max(r["per_lr_val"].values())
    assert r["best_peak_lr"] == pytest.approx(r["best_lr"] * 32 / 256)
    assert r["head"]["weight"].shape == (5, 32)


def test_several_lrs_need_a_validation_split():
    cfg = probe_cfg("data.val_size=0", "optim.lrs=[0.1, 0.2]")
    with pytest.raises(ConfigError, match="val_size"):
        run_linear_probe(TinyEncoder(), coloured_squares(50, 0), coloured_squares(20, 1), cfg, progress=False)


def test_batches_depend_only_on_the_seed():
    a = list(EpochBatches(np.arange(10, 30), 6, 2, seed=1))
    assert a == list(EpochBatches(np.arange(10, 30), 6, 2, seed=1))
    assert [len(b) for b in a] == [6, 6, 6, 2] * 2
    assert sorted(i for i, _ in a[0] + a[1] + a[2] + a[3]) == list(range(10, 30))
    assert a != list(EpochBatches(np.arange(10, 30), 6, 2, seed=2))


def test_presets_state_the_protocols():
    byol = load_preset("linear", "byol")
    assert (byol.optim.name, byol.optim.nesterov, byol.optim.momentum, byol.optim.weight_decay) == ("sgd", True, 0.9, 0.0)
    assert byol.optim.lrs == [0.4, 0.3, 0.2, 0.1, 0.05] and byol.optim.lr_scale_batch == 256
    assert (byol.schedule.epochs, byol.schedule.batch_size, byol.data.val_size) == (80, 1024, 10009)
    assert (byol.data.crop_size, byol.data.eval_crop_fraction) == (224, 0.875)

    sim = load_preset("linear", "simsiam")
    assert (sim.optim.name, sim.optim.eta, sim.optim.lrs, sim.schedule.batch_size, sim.schedule.epochs) == ("lars", 1e-3, [0.1], 4096, 90)
    assert (sim.schedule.name, sim.schedule.per, sim.optim.weight_decay, sim.data.val_size) == ("cosine", "epoch", 0.0, 0)
    assert load_preset("linear", "simsiam_paper").optim.lrs == [0.02]

    moco = load_preset("linear", "moco")
    assert (moco.optim.lrs, moco.optim.lr_scale_batch, moco.schedule.batch_size, moco.schedule.epochs) == ([30.0], None, 256, 100)
    assert [lr_factor(moco, e * 10, 10) for e in (0, 59, 60, 79, 80, 99)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])

    tiny = load_preset("linear", "tiny")
    assert (tiny.data.crop_size, tiny.data.eval_crop_fraction) == (64, 1.0) and 0 < tiny.data.val_size < 1000
