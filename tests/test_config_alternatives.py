"""Settings given in one of two units (warm-up in epochs or steps): one layer sets one of them."""

import pytest

from siambench.configs import apply_overrides, load_preset
from siambench.errors import ConfigError


def test_a_preset_file_that_sets_one_unit_clears_the_inherited_other(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text("base: byol_cifar_r18\nschedule: {warmup_steps: 20}\n")
    cfg = load_preset("pretrain", str(child))
    assert (cfg.schedule.warmup_steps, cfg.schedule.warmup_epochs) == (20, None)
    assert cfg.schedule.epochs == 1000  # the rest is inherited
    both = tmp_path / "both.yaml"
    both.write_text("base: byol_cifar_r18\nschedule: {warmup_steps: 20, warmup_epochs: 1}\n")
    with pytest.raises(ConfigError, match="sets both schedule.warmup_epochs and schedule.warmup_steps"):
        load_preset("pretrain", str(both))


def test_the_command_line_replaces_the_presets_unit_and_may_not_give_both():
    cfg = load_preset("pretrain", "byol_cifar_r18")
    steps = apply_overrides(cfg, ["schedule.warmup_steps=20"])
    assert (steps.schedule.warmup_steps, steps.schedule.warmup_epochs) == (20, None)
    back = apply_overrides(steps, ["schedule.warmup_epochs=0.5"])
    assert (back.schedule.warmup_steps, back.schedule.warmup_epochs) == (None, 0.5)
    assert apply_overrides(cfg, ["schedule.warmup_steps=null"]).schedule.warmup_epochs == 10  # null clears nothing
    with pytest.raises(ConfigError, match="the command line sets both"):
        apply_overrides(cfg, ["schedule.warmup_steps=20", "schedule.warmup_epochs=1"])
