"""siambench's kNN rule against predictions of DINO's ``knn_classifier``.

The values and how they were made are in tests/golden/ (see its README). The
inputs keep every decision at least 2e-4 in cosine similarity (the k-th
against the (k+1)-th neighbour) and 1e-3 relative in class score (the first
six classes) away from a tie, so float32 search (FAISS, the monitor's matrix
product) and DINO's float64 run must agree exactly. Every query has at least
five voted classes, where DINO's top-5 and siambench's (which never counts a
class without votes) are the same rule.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from siambench.engine.knn import knn_accuracy, knn_predict
from siambench.eval_knn import knn_classify

GOLDEN = Path(__file__).parent.parent / "golden"
NUM_CLASSES = 10


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(GOLDEN / "knn_dino.npz"))


def test_faiss_knn_classify_matches_dino(golden):
    g = golden
    ks = tuple(int(k) for k in g["ks"])
    result = knn_classify(
        g["bank"], g["bank_labels"], g["queries"], g["query_labels"], NUM_CLASSES,
        ks=ks, temperature=float(g["temperature"]), use_gpu=False, return_predictions=True,
    )
    for k in ks:
        np.testing.assert_array_equal(result["predictions"][k], g[f"pred_k{k}"])
        assert result[f"top1@k{k}"] == pytest.approx(float(g[f"top1_k{k}"]), abs=1e-9)
        assert result[f"top5@k{k}"] == pytest.approx(float(g[f"top5_k{k}"]), abs=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_monitor_knn_predict_matches_dino(golden, dtype):
    g = golden
    bank, queries = torch.as_tensor(g["bank"], dtype=dtype), torch.as_tensor(g["queries"], dtype=dtype)
    labels, query_labels = torch.as_tensor(g["bank_labels"]), torch.as_tensor(g["query_labels"])
    for k in (int(k) for k in g["ks"]):
        scores = knn_predict(bank, labels, queries, NUM_CLASSES, k=k, temperature=float(g["temperature"]))
        np.testing.assert_array_equal(scores.argmax(1).numpy(), g[f"pred_k{k}"])
        top5 = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, scores.topk(5, dim=1).indices, True)
        np.testing.assert_array_equal(top5.numpy(), g[f"top5_member_k{k}"])
        acc = knn_accuracy(bank, labels, queries, query_labels, NUM_CLASSES, k, float(g["temperature"]))
        assert 100 * acc == pytest.approx(float(g[f"top1_k{k}"]), abs=1e-4)
