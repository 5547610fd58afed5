import pytest

from siambench.configs import apply_overrides, list_presets, load_preset
from siambench.data.transforms import ViewConfig
from siambench.errors import ConfigError
from siambench.pretrain.config import load_config
from siambench.pretrain.trainer import build_model, scaled_lr


def test_presets_state_the_protocol_values():
    byol = load_config("byol_imagenet_r50")
    assert (byol.method, byol.model.arch, byol.schedule.epochs, byol.schedule.batch_size) == ("byol", "resnet50", 1000, 4096)
    assert (byol.optim.name, byol.optim.base_lr, byol.optim.weight_decay, byol.optim.eta) == ("lars", 0.2, 1.5e-6, 1e-3)
    assert byol.optim.exclude_bias_and_norm and byol.ema.tau_base == 0.996 and byol.schedule.warmup_epochs == 10
    assert scaled_lr(byol) == pytest.approx(3.2)
    assert (byol.model.projector.hidden_dim, byol.model.projector.out_dim, byol.model.predictor.hidden_dim) == (4096, 256, 4096)

    abl = load_config("byol_imagenet_r50_300ep")
    assert (abl.schedule.epochs, abl.optim.base_lr, abl.optim.weight_decay, abl.ema.tau_base) == (300, 0.3, 1e-6, 0.99)

    sim = load_config("simsiam_imagenet_r50")
    assert (sim.optim.name, sim.optim.base_lr, sim.optim.weight_decay, sim.schedule.batch_size, sim.schedule.epochs) == ("sgd", 0.05, 1e-4, 512, 100)
    assert sim.optim.exclude_bias_and_norm is False and sim.model.zero_init_residual and sim.schedule.warmup_epochs == 0
    assert sim.aug.view1.preset == "simsiam"

    cifar = load_config("simsiam_cifar_r18")
    assert (cifar.model.stem, cifar.optim.base_lr, cifar.optim.weight_decay, cifar.schedule.epochs, cifar.model.projector.num_layers) == ("cifar", 0.03, 5e-4, 800, 2)
    assert cifar.aug.view1.blur_p == 0.0
    bc = load_config("byol_cifar_r18")
    assert (bc.optim.eta, bc.optim.base_lr, bc.optim.clip_lr, bc.ema.tau_base) == (0.02, 1.0, True, 0.99)
    v1, v2 = ViewConfig.from_dict(bc.aug.view1), ViewConfig.from_dict(bc.aug.view2)
    assert (v1.blur_p, v2.blur_p, v1.solarize_p, v2.solarize_p, v1.crop_size) == (0.0, 0.0, 0.0, 0.2, 32)


@pytest.mark.parametrize("name", list_presets("pretrain"))
def test_every_preset_builds(name):
    cfg = load_config(name)
    if cfg.model.arch == "resnet50":
        cfg = apply_overrides(cfg, ["model.projector.hidden_dim=64", "model.predictor.hidden_dim=64"])
    model = build_model(cfg)
    assert model.backbone.spec.arch == cfg.model.arch


def test_overrides_parse_types_and_reject_typos():
    cfg = load_config("byol_shapes")
    out = apply_overrides(cfg, ["optim.eta=1e-3", "schedule.epochs=3", "data.options={num_images: 100}", "name=x"])
    assert out.optim.eta == 1e-3 and isinstance(out.optim.eta, float)
    assert out.schedule.epochs == 3 and out.data.options == {"num_images": 100} and out.name == "x"
    assert cfg.schedule.epochs != 3  # the original is untouched
    with pytest.raises(ConfigError, match="optim.base_lr"):
        apply_overrides(cfg, ["optim.base_lrr=0.1"])
    with pytest.raises(ConfigError, match="expects a float"):
        apply_overrides(cfg, ["optim.base_lr=fast"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(cfg, ["optim.base_lr"])
    with pytest.raises(ConfigError, match="section"):
        apply_overrides(cfg, ["optim=3"])


def test_unknown_preset_suggests_a_name():
    with pytest.raises(ConfigError, match="byol_shapes"):
        load_config("byol_shape")


def test_an_evaluation_preset_file_with_a_key_no_setting_has_is_refused(tmp_path):
    """Keys are checked against the folder's _base.yaml, as overrides are; detectron2's own section is left to it."""
    from siambench.evaluate import load_protocol

    (tmp_path / "mine.yaml").write_text("base: tiny\noptim: {lrss: [0.1]}\n")
    with pytest.raises(ConfigError, match=r"optim.lrss \(did you mean optim.lrs"):
        load_protocol("linear", str(tmp_path / "mine.yaml"), [])
    (tmp_path / "ok.yaml").write_text("base: tiny\noptim: {lrs: [0.1]}\n")
    assert load_protocol("linear", str(tmp_path / "ok.yaml"), []).optim.lrs == [0.1]
    assert "BATCH_SIZE_PER_IMAGE" in load_protocol("detection", "tiny", []).detectron2.MODEL.RPN


def test_a_base_chain_that_loops_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text(f"base: {tmp_path / 'b.yaml'}\n")
    (tmp_path / "b.yaml").write_text(f"base: {tmp_path / 'a.yaml'}\n")
    with pytest.raises(ConfigError, match="chain loops"):
        load_preset("pretrain", str(tmp_path / "a.yaml"))
