"""siambench against values produced by the official BYOL (JAX) and SimSiam (PyTorch) code.

The values, and how they were made, are in tests/golden/ (see its README).
Everything runs in float64, so the tolerances sit far below any protocol
difference and far above the rounding that differs between CPUs.
"""

import json
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from siambench.data.transforms import tf_bicubic_resize
from siambench.engine.lars import LARS, split_decay_groups
from siambench.engine.schedules import byol_tau, epochs_to_steps, learning_rate, warmup_cosine
from siambench.pretrain.config import load_config
from siambench.pretrain.losses import byol_loss, byol_regression_loss
from siambench.pretrain.trainer import build_model, build_optimizer, scaled_lr

GOLDEN = Path(__file__).parent.parent / "golden"


def _t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def test_byol_loss_and_gradient_match_the_jax_code():
    g = np.load(GOLDEN / "byol_loss.npz")
    p1, p2 = _t(g["p1"]).requires_grad_(), _t(g["p2"]).requires_grad_()
    t1, t2 = _t(g["t1"]), _t(g["t2"])
    torch.testing.assert_close(byol_regression_loss(p1, t2), _t(g["per_row_p1_t2"]), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(byol_regression_loss(p2, t1), _t(g["per_row_p2_t1"]), rtol=1e-12, atol=1e-12)
    loss = byol_loss(p1, p2, t1, t2)
    assert loss.dtype == torch.float64
    loss.backward()
    assert loss.item() == pytest.approx(float(g["loss"]), rel=1e-13)
    torch.testing.assert_close(p1.grad, _t(g["grad_p1"]), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(p2.grad, _t(g["grad_p2"]), rtol=1e-10, atol=1e-12)


def test_the_cosine_form_differs_only_on_degenerate_rows():
    g = np.load(GOLDEN / "byol_loss.npz")
    official, cosine = byol_regression_loss(_t(g["p1"]), _t(g["t2"])), byol_regression_loss(_t(g["p1"]), _t(g["t2"]), "cosine")
    zero_row = 2  # p1[2] is all zeros: the official loss is ‖0 − ŷ‖² = 1, the cosine form 2
    assert official[zero_row].item() == pytest.approx(1.0) and cosine[zero_row].item() == pytest.approx(2.0)
    keep = torch.arange(len(official)) != zero_row
    torch.testing.assert_close(official[keep], cosine[keep], rtol=1e-12, atol=1e-12)


def test_tau_schedule_matches_the_jax_code():
    g = json.loads((GOLDEN / "byol_schedules.json").read_text())["tau"]
    for base, values in g["values"].items():
        ours = [byol_tau(s, g["max_steps"], float(base)) for s in g["steps"]]
        np.testing.assert_allclose(ours, values, rtol=0, atol=1e-15)


def test_lr_schedule_and_step_count_match_the_jax_code():
    g = json.loads((GOLDEN / "byol_schedules.json").read_text())
    lr = g["lr"]
    n, batch = lr["num_examples"], lr["batch_size"]
    assert epochs_to_steps(lr["epochs"], n, batch, "jax") == lr["max_steps"] == 312784
    assert epochs_to_steps(10, n, batch, "jax") == lr["warmup_steps"] == 3127
    assert epochs_to_steps(300, n, batch, "jax") == g["step_rule_300ep"]["max_steps"]
    assert epochs_to_steps(lr["epochs"], n, batch, "per_epoch") == 312000
    peak = lr["base_lr"] * batch / 256
    ours = [warmup_cosine(s, lr["max_steps"], lr["warmup_steps"], peak) for s in lr["steps"]]
    # The JAX warm-up divides in float32: 1e-7 relative.
    np.testing.assert_allclose(ours, lr["values"], rtol=1e-7, atol=1e-12)


class _LarsTree(torch.nn.Module):
    """The golden tree: a linear layer (weight, bias), a BN (scale, offset), a zero-initialised weight."""

    def __init__(self, g):
        super().__init__()
        for key in ("linear/w", "linear/b", "batch_norm/scale", "batch_norm/offset", "zero_linear/w"):
            setattr(self, key.replace("/", "_"), torch.nn.Parameter(_t(g[f"init/{key}"]).clone()))


def test_lars_trajectory_with_byol_exclusion_matches_the_jax_code():
    g = np.load(GOLDEN / "byol_lars.npz")
    tree = _LarsTree(g)
    groups = split_decay_groups({"tree": tree}, float(g["weight_decay"]), exclude_bias_and_norm=True, lars=True)
    opt = LARS(groups, lr=0.0, momentum=float(g["momentum"]), eta=float(g["eta"]))
    keys = ("linear/w", "linear/b", "batch_norm/scale", "batch_norm/offset", "zero_linear/w")
    for step, lr in enumerate(g["lr"]):
        for group in opt.param_groups:
            group["lr"] = float(lr)
        for key in keys:
            getattr(tree, key.replace("/", "_")).grad = _t(g[f"grads/{key}"][step]).clone()
        opt.step()
        for key in keys:
            torch.testing.assert_close(getattr(tree, key.replace("/", "_")).detach(), _t(g[f"traj/{key}"][step]),
                                       rtol=1e-12, atol=1e-14, msg=f"{key} after step {step}")


def _golden_init(name: str, t: torch.Tensor) -> torch.Tensor:
    """The weights both implementations start from, a function of the parameter's canonical name only."""
    r = torch.randn(t.shape, generator=torch.Generator().manual_seed(zlib.crc32(name.encode())), dtype=torch.float64)
    if t.ndim > 1:
        return r / math.sqrt(t[0].numel())
    return 0.1 * r if name.endswith("bias") else 1.0 + 0.1 * r


def test_simsiam_trajectory_matches_the_official_code(tmp_path):
    meta = json.loads((GOLDEN / "simsiam_r18_trajectory.json").read_text())
    g = np.load(GOLDEN / "simsiam_r18_trajectory.npz")
    cfg = load_config("simsiam_imagenet_r50", [
        "model.arch=resnet18", f"model.projector.out_dim={meta['dim']}", f"model.predictor.hidden_dim={meta['pred_dim']}",
        f"optim.base_lr={meta['lr']}", f"optim.weight_decay={meta['weight_decay']}", f"schedule.batch_size={meta['batch']}",
    ])
    assert cfg.model.projector.hidden_dim is None and cfg.schedule.lr_update == "epoch" and cfg.optim.fix_predictor_lr
    model = build_model(cfg).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(_golden_init(name, p))
    opt = build_optimizer(model, cfg)
    gen = torch.Generator().manual_seed(meta["input_seed"])
    spe, total = meta["steps_per_epoch"], meta["epochs"] * meta["steps_per_epoch"]
    batches = [[torch.randn(meta["batch"], 3, 32, 32, generator=gen, dtype=torch.float64) for _ in range(2)] for _ in range(total)]
    model.train()
    for step, (x1, x2) in enumerate(batches):
        lr = learning_rate(step, total, 0, scaled_lr(cfg), spe, cfg.schedule.lr_update)
        for group in opt.param_groups:
            group["lr"] = scaled_lr(cfg) if group["fixed_lr"] else lr
        np.testing.assert_allclose([grp["lr"] for grp in opt.param_groups if grp["name"] in ("projector", "predictor")],
                                   g["lrs"][step], rtol=1e-14)
        opt.zero_grad()
        loss, _ = model(x1, x2)
        loss.backward()
        opt.step()
        assert loss.item() == pytest.approx(float(g["losses"][step]), rel=1e-9, abs=1e-12), f"loss at step {step}"
    for name, p in model.named_parameters():
        d = p.detach()
        assert d.sum().item() == pytest.approx(float(g[f"sum/{name}"]), rel=1e-9, abs=1e-11), name
        assert (d * d).sum().item() == pytest.approx(float(g[f"sumsq/{name}"]), rel=1e-9), name
        np.testing.assert_allclose(d.flatten()[:16].numpy(), g[f"head/{name}"], rtol=1e-8, atol=1e-11, err_msg=name)


def test_tf_bicubic_matches_tensorflow():
    g = np.load(GOLDEN / "tf_bicubic.npz")
    for i in range(3):
        image, ref = g[f"image_{i}"], g[f"tf_{i}"]
        ours = tf_bicubic_resize(torch.from_numpy(image).permute(2, 0, 1), ref.shape[:2]).permute(1, 2, 0).numpy()
        # float32 sums in another order: ~6e-5 on the 0–255 scale; a kernel or border error is > 0.1
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-3)
        mse = np.mean((np.clip(ours / 255, 0, 1) - np.clip(ref / 255, 0, 1)) ** 2)
        assert 10 * math.log10(1 / max(mse, 1e-30)) > 100
