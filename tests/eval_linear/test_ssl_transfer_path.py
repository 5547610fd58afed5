"""The solver-path options of the transfer-linear protocol (`linear` vs `linear_ssl_transfer`)."""

import numpy as np
import pytest
import torch

from siambench.configs import load_preset
from siambench.eval_linear.logistic import logistic_sweep


def _data(seed=0, n=300, d=6, k=3):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 2
    y = rng.integers(0, k, n)
    return (centres[y] + rng.normal(size=(n, d))).astype(np.float64), y


def _sweep(**kw):
    tr, va, te = _data(0), _data(1, 100), _data(2, 100)
    return logistic_sweep(tr, va, te, 3, lambdas=[1e-3, 1e5], device="cpu", dtype=torch.float64, **kw)


def test_ssl_transfer_preset_follows_its_code_path():
    s = load_preset("transfer", "linear_ssl_transfer").solver
    assert (s.order, s.warm_start, s.refit_from, s.max_iter, s.precondition) == ("weak_to_strong", "previous", "last", 100, False)
    assert load_preset("transfer", "linear").solver.refit_from == "best"


def test_refit_start_matters_only_when_the_refit_is_capped():
    path = dict(order="weak_to_strong", warm_start="previous", precondition=False)
    capped = {r: _sweep(refit_from=r, max_iter=2, **path) for r in ("best", "last")}
    assert capped["best"]["best_lambda"] == capped["last"]["best_lambda"] == 1e-3
    # From the λ = 1e5 fit (W ≈ 0) two iterations cannot reach the λ = 1e-3 solution.
    assert (capped["best"]["W"] - capped["last"]["W"]).abs().max() > 1e-2
    converged = {r: _sweep(refit_from=r, max_iter=5000, refit_tol=1e-10, **path) for r in ("best", "last")}
    torch.testing.assert_close(converged["best"]["W"], converged["last"]["W"], rtol=1e-5, atol=1e-5)


def test_previous_warm_start_reuses_the_last_solution():
    tr, va = _data(0), _data(1, 100)
    out = logistic_sweep(tr, va, None, 3, lambdas=[1e-2, 1e-2], refit=False, device="cpu", dtype=torch.float64,
                         warm_start="previous", tol=1e-8, max_iter=5000)
    assert out["fits"][0]["iterations"] > 5 and out["fits"][1]["iterations"] <= 1
    with pytest.raises(ValueError, match="refit_from"):
        logistic_sweep(tr, va, None, 3, lambdas=[1.0], device="cpu", refit_from="first")
