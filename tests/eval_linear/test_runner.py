"""A linear preset names its algorithm (``runner:``); the stage dispatches on it, never on the preset's name."""

import shutil
from importlib import resources

import pytest

from siambench.configs import list_presets, load_preset
from siambench.errors import ConfigError
from siambench.eval_linear.run import RUNNERS
from siambench.evaluate import EvalContext, load_stages

FEW_LAMBDAS = ["lambdas.num=3"]


def logreg_yaml():
    return resources.files("siambench.configs").joinpath("linear", "logreg.yaml")


@pytest.fixture
def ctx(random_backbone, tmp_path):
    return EvalContext(checkpoint=str(random_backbone), results_dir=str(tmp_path / "results"), device="cpu",
                       num_workers=0, progress=False)


def test_every_shipped_preset_names_a_runner():
    runners = {name: load_preset("linear", name).runner for name in list_presets("linear")}
    assert set(runners.values()) <= set(RUNNERS) and runners["logreg"] == "logreg" and runners["byol"] == "probe"


def test_a_copy_of_the_logreg_preset_under_another_name_gives_the_same_result(ctx, tmp_path):
    copy = tmp_path / "my_features_probe.yaml"
    shutil.copyfile(logreg_yaml(), copy)
    linear = load_stages()["linear"]
    shipped = linear(ctx, "digits", "logreg", FEW_LAMBDAS)
    renamed = linear(ctx, "digits", str(copy), FEW_LAMBDAS)
    assert renamed.metrics == shipped.metrics and renamed.hyperparameters == shipped.hyperparameters
    assert "val_top1" in renamed.metrics  # logistic regression's result, not the probe's


def test_a_preset_without_a_runner_is_one_clear_error(ctx, tmp_path):
    bare = tmp_path / "bare.yaml"
    bare.write_text("\n".join(line for line in logreg_yaml().read_text().splitlines() if not line.startswith("runner")))
    with pytest.raises(ConfigError, match=r"runner None; expected one of logreg, probe"):
        load_stages()["linear"](ctx, "digits", str(bare), [])
