"""The FAISS kNN evaluation against a brute-force numpy reference.

The data avoid ties rather than relying on a shared tie rule: queries whose
reference ranking is within float32 noise of a tie (two neighbours straddling
a k boundary, or two classes with almost equal positive scores) are dropped
before the comparison, and the tests assert that only a few are. FAISS works
in float32 and the reference in float64, so on those queries either answer
would be right.
"""

import warnings

import numpy as np
import pytest
import torch

from siambench.eval_knn import knn_classify

KS = (1, 3, 10, 20, 100, 200)
T = 0.07


def clustered(rng, n, num_classes, dim=24, spread=1.6):
    """Gaussian clusters with row norms spread over two decades, so unnormalised inner products rank differently."""
    centers = np.random.default_rng(123).normal(size=(num_classes, dim))
    labels = rng.integers(0, num_classes, n)
    x = centers[labels] + spread * rng.normal(size=(n, dim))
    x *= 10 ** rng.uniform(-1, 1, size=(n, 1))
    return x.astype(np.float32), labels


def reference(train, train_labels, test, test_labels, num_classes, ks, temperature, normalize=True):
    """Per-query top-1 prediction, top-1/top-5 correctness for each k, and a near-tie mask."""
    bank, queries = train.astype(np.float64), test.astype(np.float64)
    if normalize:
        bank /= np.linalg.norm(bank, axis=1, keepdims=True)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    sims = queries @ bank.T
    order = np.argsort(-sims, axis=1, kind="stable")
    ranked = np.take_along_axis(sims, order, axis=1)
    width = min(5, num_classes)
    out, ambiguous = {}, np.zeros(len(test), dtype=bool)
    for k in ks:
        kk = min(k, len(bank))
        weights = np.exp(ranked[:, :kk] / temperature)
        votes = train_labels[order[:, :kk]]
        scores = np.stack([np.where(votes == c, weights, 0.0).sum(1) for c in range(num_classes)], axis=1)
        ranking = np.argsort(-scores, axis=1, kind="stable")
        own = scores[np.arange(len(test)), test_labels]
        in_top = (ranking[:, :width] == test_labels[:, None]).any(1) & (own > 0)
        pred = scores.argmax(1)
        out[k] = {"pred": pred, "top1": pred == test_labels, "top5": in_top}
        if kk < len(bank):
            ambiguous |= ranked[:, kk - 1] - ranked[:, kk] < 1e-5
        desc = -np.sort(-scores, axis=1)
        ambiguous |= ((desc[:, :-1] - desc[:, 1:] <= 1e-4 * desc[:, :-1]) & (desc[:, 1:] > 0)).any(1)
    return out, ambiguous


def tie_free_case(seed, n_train, n_test, num_classes, ks=KS, temperature=T):
    rng = np.random.default_rng(seed)
    train, train_labels = clustered(rng, n_train, num_classes)
    test, test_labels = clustered(rng, n_test, num_classes)
    _, ambiguous = reference(train, train_labels, test, test_labels, num_classes, ks, temperature)
    assert ambiguous.mean() < 0.05, "test data too close to ties"
    keep = ~ambiguous
    test, test_labels = test[keep], test_labels[keep]
    ref, ambiguous = reference(train, train_labels, test, test_labels, num_classes, ks, temperature)
    assert not ambiguous.any()
    return train, train_labels, test, test_labels, ref


def expected_result(ref, ks):
    n = len(next(iter(ref.values()))["pred"])
    want = {}
    for k in ks:
        want[f"top1@k{k}"] = 100.0 * int(ref[k]["top1"].sum()) / n
        want[f"top5@k{k}"] = 100.0 * int(ref[k]["top5"].sum()) / n
    best = max(want[f"top1@k{k}"] for k in ks)
    want["best_k"] = min(k for k in ks if want[f"top1@k{k}"] == best)
    return want


def assert_matches(result, ref, ks, best_k=True):
    for key, value in expected_result(ref, ks).items():
        if key != "best_k" or best_k:
            assert result[key] == value, key
    for k in ks:
        np.testing.assert_array_equal(result["predictions"][k], ref[k]["pred"], err_msg=f"k={k}")


@pytest.mark.parametrize("num_classes", [3, 8])
def test_predictions_and_accuracies_equal_the_bruteforce_reference(num_classes):
    train, train_labels, test, test_labels, ref = tie_free_case(0, 1000, 300, num_classes)
    train_copy, test_copy = train.copy(), test.copy()

    result = knn_classify(train, train_labels, test, test_labels, num_classes, ks=KS, return_predictions=True)

    assert_matches(result, ref, KS)
    assert result["best_top1"] == result[f"top1@k{result['best_k']}"]
    assert result["top5_width"] == min(5, num_classes)
    assert result["clipped_ks"] == {} and result["backend"] == "faiss-cpu"
    assert result["num_train"] == 1000 and result["num_test"] == len(test)
    np.testing.assert_array_equal(train, train_copy)
    np.testing.assert_array_equal(test, test_copy)
    # the data discriminate: accuracies vary with k, top-5 differs from top-1, and both the
    # exp(s/T) weighting and the normalisation change predictions
    assert len({result[f"top1@k{k}"] for k in KS}) > 1
    assert any(result[f"top5@k{k}"] > result[f"top1@k{k}"] for k in KS)
    flat, _ = reference(train, train_labels, test, test_labels, num_classes, KS, temperature=1e6)
    raw, _ = reference(train, train_labels, test, test_labels, num_classes, KS, 1e6, normalize=False)
    assert any((flat[k]["pred"] != ref[k]["pred"]).any() for k in KS)
    assert any((raw[k]["pred"] != flat[k]["pred"]).any() for k in KS)


def test_temperature_is_used():
    train, train_labels, test, test_labels, ref = tie_free_case(1, 1000, 200, 8, temperature=0.5)
    result = knn_classify(train, train_labels, test, test_labels, 8, ks=KS, temperature=0.5, return_predictions=True)
    assert_matches(result, ref, KS)


def test_query_chunking_does_not_change_results():
    train, train_labels, test, test_labels, _ = tie_free_case(2, 1000, 200, 8)
    results = [
        knn_classify(train, train_labels, test, test_labels, 8, ks=KS, query_chunk=chunk, return_predictions=True)
        for chunk in (1, 7, 100_000)
    ]
    for other in results[1:]:
        assert {k: v for k, v in other.items() if k != "predictions"} == {
            k: v for k, v in results[0].items() if k != "predictions"
        }
        for k in KS:
            np.testing.assert_array_equal(other["predictions"][k], results[0]["predictions"][k])


def test_float16_memmap_inputs(tmp_path):
    rng = np.random.default_rng(3)
    train, train_labels = clustered(rng, 1000, 8)
    test, test_labels = clustered(rng, 200, 8)
    maps = []
    for name, x in (("train", train), ("test", test)):
        m = np.lib.format.open_memmap(tmp_path / f"{name}.npy", mode="w+", dtype=np.float16, shape=x.shape)
        m[:] = x
        m.flush()
        maps.append(np.load(tmp_path / f"{name}.npy", mmap_mode="r"))
    train16, test16 = maps
    ref, ambiguous = reference(train16, train_labels, test16, test_labels, 8, KS, T)
    assert ambiguous.mean() < 0.05
    keep = np.flatnonzero(~ambiguous)

    result = knn_classify(train16, train_labels, test16, test_labels, 8, KS, query_chunk=128, return_predictions=True)

    for k in KS:
        np.testing.assert_array_equal(result["predictions"][k][keep], ref[k]["pred"][keep])
        assert abs(result[f"top1@k{k}"] - 100.0 * ref[k]["top1"].mean()) <= 100.0 * ambiguous.mean()


def test_torch_tensors_give_the_numpy_result():
    train, train_labels, test, test_labels, _ = tie_free_case(4, 800, 200, 8)
    tensors = [torch.from_numpy(a) for a in (train, train_labels, test, test_labels)]
    as_numpy = knn_classify(train, train_labels, test, test_labels, 8, KS)
    assert knn_classify(*tensors, 8, KS) == as_numpy
    half = knn_classify(tensors[0].half(), train_labels, tensors[2].half(), test_labels, 8, KS)
    assert half == knn_classify(train.astype(np.float16), train_labels, test.astype(np.float16), test_labels, 8, KS)


def test_k_larger_than_the_bank_is_clipped_and_reported():
    train, train_labels, test, test_labels, ref = tie_free_case(5, 12, 200, 3, ks=(5, 12))
    with pytest.warns(UserWarning, match="clipped"):
        result = knn_classify(train, train_labels, test, test_labels, 3, ks=(5, 50, 100), return_predictions=True)
    assert result["clipped_ks"] == {50: 12, 100: 12}
    assert_matches(result, ref, (5,), best_k=False)
    for k in (50, 100):
        np.testing.assert_array_equal(result["predictions"][k], ref[12]["pred"])
        assert result[f"top1@k{k}"] == 100.0 * int(ref[12]["top1"].sum()) / len(test)
        assert result[f"top5@k{k}"] == 100.0 * int(ref[12]["top5"].sum()) / len(test)


def test_no_warning_when_every_k_fits():
    train, train_labels, test, test_labels, _ = tie_free_case(6, 300, 50, 3, ks=(10,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        knn_classify(train, train_labels, test, test_labels, 3, ks=(10,))


def test_labels_outside_the_classes_are_refused():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(20, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="labels"):
        knn_classify(x, np.full(20, 3), x, np.zeros(20, dtype=int), 3, ks=(5,))
