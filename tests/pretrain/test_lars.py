import torch

from siambench.engine.lars import LARS, split_decay_groups


def _toy():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 3, bias=False))


def test_one_step_equals_the_byol_formula():
    model = _toy()
    lr, wd, eta, m = 0.7, 1e-2, 1e-3, 0.9
    groups = split_decay_groups({"net": model}, wd, exclude_bias_and_norm=True, lars=True)
    opt = LARS(groups, lr=lr, momentum=m, eta=eta)
    model(torch.randn(8, 5)).pow(2).sum().backward()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    opt.step()
    for name, p in model.named_parameters():
        w, g = before[name], grads[name]
        if p.ndim > 1:
            u = g + wd * w
            expected = w - lr * (eta * w.norm() / u.norm()) * u
        else:  # biases and BN scale/offset: neither decay nor adaptation
            expected = w - lr * g
        torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=1e-7)


def test_momentum_accumulates_the_adapted_update():
    w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    opt = LARS([{"params": [w], "weight_decay": 0.0}], lr=1.0, momentum=0.5, eta=0.1)
    updates = []
    for g in (torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])):
        before = w.detach().clone()
        w.grad = g
        updates.append(g * 0.1 * before.norm() / g.norm())
        opt.step()
    expected = torch.tensor([3.0, 4.0]) - updates[0] - (0.5 * updates[0] + updates[1])
    torch.testing.assert_close(w.detach(), expected)


def test_excluded_parameters_are_the_one_dimensional_ones():
    model = _toy()
    groups = split_decay_groups({"net": model}, 1e-4, exclude_bias_and_norm=True, lars=True)
    decay = [g for g in groups if g["weight_decay"] > 0]
    excluded = [g for g in groups if g.get("lars_exclude")]
    assert sum(p.numel() for g in decay for p in g["params"]) == 5 * 4 + 4 * 3
    assert sum(p.numel() for g in excluded for p in g["params"]) == 4 + 4 + 4  # bias, BN weight, BN bias
    assert all(g["weight_decay"] == 0 for g in excluded)


def test_zero_weight_gets_no_adaptation():
    w = torch.nn.Parameter(torch.zeros(3))
    opt = LARS([{"params": [w], "weight_decay": 0.0}], lr=0.5, momentum=0.0, eta=1e-3)
    w.grad = torch.tensor([1.0, 2.0, 3.0])
    opt.step()
    torch.testing.assert_close(w.detach(), -0.5 * torch.tensor([1.0, 2.0, 3.0]))


def test_clip_lr_caps_the_adapted_rate_at_the_group_rate():
    w = torch.nn.Parameter(torch.tensor([100.0]))
    opt = LARS([{"params": [w], "weight_decay": 0.0}], lr=0.1, momentum=0.0, eta=1.0, clip_lr=True)
    w.grad = torch.tensor([1.0])
    opt.step()  # trust ratio 100 → clipped: the step is lr · 1 · g
    torch.testing.assert_close(w.detach(), torch.tensor([99.9]))
