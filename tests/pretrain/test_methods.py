import pytest
import torch

from siambench.engine.lars import LARS
from siambench.engine.schedules import byol_tau
from siambench.models import build_resnet
from siambench.pretrain import BYOL, SimSiam
from siambench.pretrain.config import load_config


def _byol():
    torch.manual_seed(0)
    return BYOL(build_resnet("resnet18", 0.25), 32, 16, 32, tau_base=0.9)


def test_byol_target_gets_no_gradient_and_moves_exactly_by_the_ema_rule():
    model = _byol()
    opt = LARS(model.param_groups(1e-4, True, True), lr=0.5)
    x1, x2 = torch.randn(6, 3, 32, 32), torch.randn(6, 3, 32, 32)
    loss, _ = model(x1, x2)
    loss.backward()
    assert all(p.grad is None for p in model.target_parameters())
    assert all(p.grad is not None for p in model.online_parameters())
    target_before = [p.detach().clone() for p in model.target_parameters()]
    opt.step()
    # the optimiser leaves the target alone...
    for before, p in zip(target_before, model.target_parameters()):
        assert torch.equal(before, p)
    online = [p.detach().clone() for p in model.online_parameters()]
    model.after_step(3, 10)
    tau = byol_tau(3, 10, 0.9)
    # ...and the EMA moves it by ξ + (1 − τ)(θ − ξ).
    for before, theta, p in zip(target_before, online, model.target_parameters()):
        torch.testing.assert_close(p.detach(), before + (1 - tau) * (theta - before), rtol=0, atol=1e-6)
    assert any(not torch.equal(b, p) for b, p in zip(target_before, model.target_parameters()))


def test_byol_target_uses_batch_statistics_and_keeps_its_own():
    model = _byol()
    model.train()
    bn_t = model.target_backbone.bn1
    before = bn_t.running_mean.clone()
    model(torch.randn(4, 3, 32, 32) + 3, torch.randn(4, 3, 32, 32) + 3)
    assert not torch.equal(before, bn_t.running_mean)
    assert not torch.equal(bn_t.running_mean, torch.zeros_like(bn_t.running_mean))


def test_byol_target_starts_as_a_copy_of_the_online_network():
    model = _byol()
    for o, t in zip(model.online_parameters(), model.target_parameters()):
        assert torch.equal(o, t) and o.data_ptr() != t.data_ptr()


class _Disconnected(torch.nn.Module):
    """A predictor whose output does not depend on its input."""

    def __init__(self, dim):
        super().__init__()
        self.out = torch.nn.Parameter(torch.randn(1, dim))

    def forward(self, z):
        return self.out.expand(z.shape[0], -1)


def test_simsiam_target_branch_carries_no_gradient():
    torch.manual_seed(0)
    model = SimSiam(build_resnet("resnet18", 0.25), proj_dim=32, proj_layers=2, pred_hidden=8)
    x1, x2 = torch.randn(6, 3, 32, 32), torch.randn(6, 3, 32, 32)
    loss, _ = model(x1, x2)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.projector.parameters())
    model.zero_grad(set_to_none=True)
    # With the predictor cut from the projection, only the stop-gradient branch
    # links the loss to the encoder: it must carry nothing.
    model.predictor = _Disconnected(32)
    loss, _ = model(x1, x2)
    loss.backward()
    assert model.predictor.out.grad is not None
    assert all(p.grad is None for p in [*model.backbone.parameters(), *model.projector.parameters()])


def test_simsiam_projector_hidden_null_is_the_backbone_width():
    from siambench.pretrain.trainer import build_model

    cfg = load_config("simsiam_cifar_r18", ["model.width=0.25"])
    model = build_model(cfg)
    assert cfg.model.projector.hidden_dim is None
    assert model.projector[0].out_features == model.backbone.num_features == 128  # 512 × 0.25
    assert model.projector[-2].out_features == 2048


@pytest.mark.parametrize("override, match", [
    ("model.projector.num_layers=3", "model.projector.num_layers = 3 is not used by byol"),
    ("model.projector.hidden_dim=null", "positive whole number"),
    ("model.predictor.hidden_dim=0", "positive whole number"),
])
def test_byol_refuses_head_settings_it_would_ignore_or_cannot_take(override, match):
    from siambench.errors import ConfigError
    from siambench.pretrain.trainer import build_model

    with pytest.raises(ConfigError, match=match):
        build_model(load_config("byol_shapes", [override]))


def test_simsiam_refuses_the_byol_loss_form():
    from siambench.errors import ConfigError

    with pytest.raises(ConfigError, match="loss.byol_form = 'squared_distance' is not used by simsiam"):
        load_config("simsiam_shapes", ["loss.byol_form=squared_distance"])


def test_a_target_rate_is_an_error_for_simsiam_and_required_by_byol():
    """ema.tau_base does nothing without a target network, so setting it for SimSiam is refused, not ignored."""
    from siambench.errors import ConfigError
    from siambench.pretrain.trainer import build_model

    with pytest.raises(ConfigError, match="ema.tau_base = 0.99 is not used by simsiam"):
        load_config("simsiam_shapes", ["ema.tau_base=0.99"])
    with pytest.raises(ConfigError, match="byol needs ema.tau_base"):
        build_model(load_config("byol_shapes", ["ema.tau_base=null"]))
    for preset in ("byol_shapes", "byol_cifar_r18", "byol_imagenet_r50", "simsiam_shapes", "simsiam_cifar_r18"):
        assert ("tau_base" in load_config(preset).get("ema", {})) == preset.startswith("byol")


def test_a_run_reads_the_shared_settings_and_its_methods_own():
    """The method's CONFIG gives the defaults of its own settings; another method's keys are not in the run."""
    from siambench.pretrain import BYOL, SimSiam
    from siambench.pretrain.config import defaults

    byol, simsiam = load_config("byol_shapes", ["model.projector.hidden_dim=64"]), load_config("simsiam_shapes")
    assert byol.loss.byol_form == BYOL.CONFIG["loss.byol_form"] and byol.model.projector.hidden_dim == 64
    assert "num_layers" not in byol.model.projector and "loss" not in simsiam and "ema" not in simsiam
    switched = load_config("byol_shapes", ["method=simsiam", "ema.tau_base=null"])
    assert switched.model.projector.num_layers == SimSiam.CONFIG["model.projector.num_layers"]
    assert switched.model.projector.hidden_dim == 512  # the preset's value, over the method's default
    assert set(defaults("simsiam")["model"]) == set(defaults("byol")["model"])
    assert "ema" not in defaults("simsiam") and defaults("byol")["ema"] == {"tau_base": 0.996}


@pytest.mark.parametrize("text, match", [
    ("base: byol_shapes\noptim: {base_lrr: 0.3}\n", "optim.base_lrr \\(did you mean optim.base_lr"),
    ("base: simsiam_shapes\nema: {tau_base: 0.99}\n", "ema.tau_base = 0.99 is not used by simsiam"),
    ("base: byol_shapes\nmodel: {projector: {num_layers: 3}}\n", "is not used by byol"),
    ("base: byol_shapes\nschedule: {epoch: 3}\n", "schedule.epoch "),
])
def test_a_preset_file_with_a_key_no_setting_has_is_refused(tmp_path, text, match):
    """A typo in a preset file is an error, as one on the command line is, not a setting silently ignored."""
    from siambench.errors import ConfigError

    (tmp_path / "mine.yaml").write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(str(tmp_path / "mine.yaml"))


def test_every_preset_sets_only_settings_its_method_reads():
    from siambench.configs import list_presets
    from siambench.pretrain.config import defaults

    for name in list_presets("pretrain"):
        cfg = load_config(name)
        assert set(cfg.model) == set(defaults(cfg.method)["model"]), name


def test_registering_a_method_checks_the_contract():
    from siambench.pretrain.method import METHODS, register_method

    class NoAfterStep(torch.nn.Module):
        CONFIG, STATE_PARTS = {}, {}

        @classmethod
        def from_config(cls, backbone, cfg):
            return cls()

        def param_groups(self, weight_decay, exclude_bias_and_norm, lars):
            return []

    with pytest.raises(TypeError, match="after_step"):
        register_method("incomplete")(NoAfterStep)
    NoAfterStep.after_step, NoAfterStep.CONFIG = lambda self, step, total: {}, None
    with pytest.raises(TypeError, match="CONFIG"):
        register_method("incomplete")(NoAfterStep)
    assert "incomplete" not in METHODS and set(METHODS) == {"byol", "simsiam"}


def test_the_optimiser_registry_builds_each_name_and_refuses_others():
    from siambench.configs import apply_overrides
    from siambench.errors import SiambenchError
    from siambench.pretrain.trainer import OPTIMIZERS, build_model, build_optimizer

    cfg = load_config("byol_shapes")
    model = build_model(cfg)
    cfg = apply_overrides(cfg, ["optim.eta=0.001", "optim.clip_lr=false"])  # LARS settings at their defaults
    kinds = {name: type(build_optimizer(model, apply_overrides(cfg, [f"optim.name={name}"]))) for name in OPTIMIZERS}
    assert kinds == {"lars": LARS, "sgd": torch.optim.SGD}
    with pytest.raises(SiambenchError, match="lars, sgd"):
        build_optimizer(model, apply_overrides(cfg, ["optim.name=adam"]))


def test_an_optimiser_setting_the_chosen_optimiser_ignores_is_an_error():
    from siambench.configs import apply_overrides
    from siambench.errors import ConfigError
    from siambench.pretrain.trainer import build_model, build_optimizer

    byol = load_config("byol_shapes")  # LARS with eta 0.02 and clip_lr
    with pytest.raises(ConfigError, match="optim.eta = 0.02 is not used by sgd"):
        build_optimizer(build_model(byol), apply_overrides(byol, ["optim.name=sgd"]))
    with pytest.raises(ConfigError, match="optim.nesterov = True is not used by lars"):
        build_optimizer(build_model(byol), apply_overrides(byol, ["optim.nesterov=true"]))
    simsiam = load_config("simsiam_shapes")  # SGD, LARS' settings reset by the preset
    assert isinstance(build_optimizer(build_model(simsiam), simsiam), torch.optim.SGD)
