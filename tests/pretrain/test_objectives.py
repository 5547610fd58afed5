import math

import pytest
import torch

from siambench.engine.schedules import byol_tau, warmup_cosine
from siambench.pretrain.losses import byol_loss, byol_regression_loss, collapse_std, simsiam_loss


def test_byol_regression_loss_known_values():
    p = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [5.0, 0.0], [1.0, 0.0]])
    expected = torch.tensor([0.0, 4.0, 2.0, 2.0 - 2.0 / math.sqrt(2.0)])
    torch.testing.assert_close(byol_regression_loss(p, z), expected)


def test_byol_loss_is_symmetrised_and_not_halved():
    p1, p2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    z1, z2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[-1.0, 0.0]])
    # loss(p1, z2) = 4, loss(p2, z1) = 2
    assert byol_loss(p1, p2, z1, z2).item() == pytest.approx(6.0)


def test_simsiam_loss_known_values_and_range():
    p1, p2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]])
    z1, z2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0]])
    assert simsiam_loss(p1, p2, z1, z2).item() == pytest.approx(-0.5 * (1.0 + 1 / math.sqrt(2)))
    x = torch.randn(8, 16)
    assert simsiam_loss(x, x, x, x).item() == pytest.approx(-1.0)


def test_stop_gradient_on_the_target_branch():
    p1, p2, z1, z2 = (torch.randn(4, 8, requires_grad=True) for _ in range(4))
    simsiam_loss(p1, p2, z1, z2).backward()
    assert z1.grad is None and z2.grad is None
    assert p1.grad.abs().sum() > 0 and p2.grad.abs().sum() > 0
    p1, p2, z1, z2 = (torch.randn(4, 8, requires_grad=True) for _ in range(4))
    byol_loss(p1, p2, z1, z2).backward()
    assert z1.grad is None and z2.grad is None and p1.grad.abs().sum() > 0


def test_collapse_std():
    assert collapse_std(torch.ones(64, 32)) == pytest.approx(0.0, abs=1e-7)
    spread = collapse_std(torch.randn(20000, 64)) * math.sqrt(64)
    assert spread == pytest.approx(1.0, abs=0.02)


def test_tau_schedule_at_start_middle_end():
    assert byol_tau(0, 1000, 0.996) == pytest.approx(0.996)
    assert byol_tau(500, 1000, 0.996) == pytest.approx(0.998)
    assert byol_tau(1000, 1000, 0.996) == pytest.approx(1.0)
    assert byol_tau(5000, 1000, 0.996) == pytest.approx(1.0)


def test_warmup_cosine():
    assert warmup_cosine(0, 100, 10, 2.0) == 0.0
    assert warmup_cosine(5, 100, 10, 2.0) == pytest.approx(1.0)
    assert warmup_cosine(10, 100, 10, 2.0) == pytest.approx(2.0)
    assert warmup_cosine(55, 100, 10, 2.0) == pytest.approx(1.0)
    assert warmup_cosine(100, 100, 10, 2.0) == pytest.approx(0.0, abs=1e-12)


def test_lr_update_epoch_holds_each_epoch_at_its_first_step_rate():
    from siambench.engine.schedules import learning_rate

    # SimSiam's adjust_learning_rate: lr·½(1 + cos(π·epoch/epochs)) for every step of the epoch
    spe, epochs = 5, 4
    for step in range(spe * epochs):
        expected = 0.5 * (1 + math.cos(math.pi * (step // spe) / epochs))
        assert learning_rate(step, spe * epochs, 0, 1.0, spe, "epoch") == pytest.approx(expected, abs=1e-15)
    assert learning_rate(7, 20, 0, 1.0, spe, "step") == pytest.approx(warmup_cosine(7, 20, 0, 1.0))
    with pytest.raises(ValueError, match="lr_update"):
        learning_rate(0, 20, 0, 1.0, spe, "batch")


def test_step_rules_differ_only_when_the_batch_does_not_divide_the_data():
    from siambench.engine.schedules import epochs_to_steps

    assert epochs_to_steps(1000, 1281167, 4096, "jax") == 312784
    assert epochs_to_steps(1000, 1281167, 4096, "per_epoch") == 312000
    assert epochs_to_steps(3, 1024, 256, "jax") == epochs_to_steps(3, 1024, 256, "per_epoch") == 12


def test_losses_keep_float64_and_raise_half_precision():
    p, z = torch.randn(4, 8, dtype=torch.float64), torch.randn(4, 8, dtype=torch.float64)
    assert byol_loss(p, p, z, z).dtype == torch.float64 and simsiam_loss(p, p, z, z).dtype == torch.float64
    assert byol_loss(*(x.bfloat16() for x in (p, p, z, z))).dtype == torch.float32
