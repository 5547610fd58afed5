import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from siambench.eval_linear.logistic import (
    fit_logistic,
    logistic_objective,
    logistic_sweep,
    predict,
    score,
)


@pytest.fixture(autouse=True)
def one_thread():
    """The problems here are tiny: one thread (torch's, BLAS's, OpenMP's) avoids paying for wake-ups on every op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


def blobs(n, dim=24, classes=5, seed=0, spread=2.5):
    """Overlapping Gaussian classes on a skewed, shifted, non-negative feature scale (not separable)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))
    y = rng.integers(0, classes, size=n)
    scale = np.logspace(0, -2, dim)
    x = (centres[y] + spread * rng.normal(size=(n, dim))) * scale + 3 * scale
    return np.maximum(x, 0).astype(np.float32), y


def sklearn_fit(x, y, C):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LogisticRegression(C=C, max_iter=20000, tol=1e-10).fit(x.astype(np.float64), y)


@pytest.mark.parametrize("C", [1e-2, 1.0, 100.0])
def test_same_solution_as_sklearn_for_the_same_C(C):
    x, y = blobs(1000)
    xt, yt = blobs(500, seed=1)
    clf = sklearn_fit(x, y, C)
    W, b, info = fit_logistic(x, y, C, 5, tol=1e-7)

    ours, theirs = logistic_objective(x, y, W, b, C), logistic_objective(x, y, clf.coef_, clf.intercept_, C)
    assert ours == pytest.approx(theirs, rel=1e-3)
    assert info["objective"] == pytest.approx(ours, rel=1e-4)
    acc_ours = score(predict(xt, W, b), yt, "top1")
    acc_theirs = 100 * clf.score(xt, yt)
    assert abs(acc_ours - acc_theirs) <= 0.5


def test_two_classes_use_sklearns_single_weight_vector():
    x, y = blobs(600, classes=2)
    clf = sklearn_fit(x, y, 0.5)
    W, b, _ = fit_logistic(x, y, 0.5, 2, tol=1e-7)
    assert torch.all(W[0] == 0) and b[0] == 0
    theirs = logistic_objective(x, y, clf.coef_, clf.intercept_, 0.5)
    assert logistic_objective(x, y, W, b, 0.5) == pytest.approx(theirs, rel=1e-3)
    np.testing.assert_allclose(W[1].numpy(), clf.coef_[0], rtol=0.05, atol=1e-2 * np.abs(clf.coef_).max())


def test_preconditioning_changes_the_speed_not_the_solution():
    x, y = blobs(800)
    _, _, plain = fit_logistic(x, y, 1.0, 5, precondition=False, tol=1e-7)
    _, _, pre = fit_logistic(x, y, 1.0, 5, precondition=True, tol=1e-7)
    assert pre["objective"] == pytest.approx(plain["objective"], rel=1e-4)
    assert pre["evaluations"] < plain["evaluations"]


def test_float16_memmap_features(tmp_path):
    x, y = blobs(500)
    mm = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.float16, shape=x.shape)
    mm[:] = x
    mm.flush()
    mm = np.load(tmp_path / "f.npy", mmap_mode="r")
    W, b, info = fit_logistic(mm, y, 1.0, 5, tol=1e-7)
    W2, b2, info2 = fit_logistic(np.asarray(mm, dtype=np.float32), y, 1.0, 5, tol=1e-7)
    assert info["objective"] == pytest.approx(info2["objective"], rel=1e-5)


def test_sweep_selects_the_best_validation_score_and_refits_on_train_plus_val():
    x, y = blobs(1500, classes=4, spread=3.0)
    train, val, test = (x[:800], y[:800]), (x[800:1100], y[800:1100]), (x[1100:], y[1100:])
    lambdas = np.logspace(-3, 4, 8)
    r = logistic_sweep(train, val, test, 4, lambdas=lambdas)
    scores = np.array(r["val_scores"])
    best = max(range(len(lambdas)), key=lambda i: (scores[i], -lambdas[i]))
    assert r["best_lambda"] == pytest.approx(lambdas[best])
    assert r["best_val"] == scores.max()
    assert scores.max() > scores.min()  # the grid matters on this data

    # Each λ's val score is that of an independent cold-start fit at that λ.
    W, b, _ = fit_logistic(*train, 1.0 / r["best_lambda"], 4, tol=1e-7)
    assert score(predict(val[0], W, b), val[1], "top1") == pytest.approx(r["best_val"], abs=0.5)

    # The reported test score is the refit on train + val.
    both = (np.concatenate([train[0], val[0]]), np.concatenate([train[1], val[1]]))
    W, b, _ = fit_logistic(*both, 1.0 / r["best_lambda"], 4, tol=1e-7)
    assert r["refit"]["objective"] == pytest.approx(logistic_objective(*both, W, b, r["best_C"]), rel=1e-3)
    assert r["test"]["top1"] == pytest.approx(score(predict(test[0], W, b), test[1], "top1"), abs=0.5)


def test_sweep_selects_on_the_metric_asked_for():
    x, y = blobs(1200, classes=4, spread=3.0)
    keep = (y != 3) | (np.arange(len(y)) % 6 == 0)  # class 3 rare: the two metrics disagree
    x, y = x[keep], y[keep]
    train, val = (x[:500], y[:500]), (x[500:], y[500:])
    lambdas = np.logspace(-2, 4, 7)
    r = logistic_sweep(train, val, None, 4, lambdas=lambdas, metric="mean_per_class", refit=False)
    assert "test" not in r
    W, b = r["W"], r["b"]
    assert score(predict(val[0], W, b), val[1], "mean_per_class", 4) == pytest.approx(r["best_val"])
    assert r["best_val"] == max(r["val_scores"])


def test_mean_per_class_accuracy_by_hand():
    pred = [0, 0, 1, 1, 2, 0, 3]
    target = [0, 0, 0, 1, 2, 2, 1]
    # class 0: 2 of 3, class 1: 1 of 2, class 2: 1 of 2; class 3 never a target
    assert score(pred, target, "mean_per_class", 4) == pytest.approx(100 * (2 / 3 + 1 / 2 + 1 / 2) / 3)
    assert score(pred, target, "top1") == pytest.approx(100 * 4 / 7)
