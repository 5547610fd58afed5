"""Weighted k-nearest-neighbour classification on l2-normalised features.

The InstDisc/DINO rule (PROTOCOLS C.4): cosine similarity, the top-k
neighbours vote for their class with weight ``exp(s / T)``. This module does
the vote; the search is a chunked matrix product here, which is enough for
monitoring a pretraining run (FAISS serves the full evaluation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def knn_vote(similarities: torch.Tensor, neighbor_labels: torch.Tensor, num_classes: int, temperature: float) -> torch.Tensor:
    """Class scores ``(Q, C)`` from the top-k similarities and labels of each query."""
    weights = (similarities / temperature).exp()
    scores = torch.zeros(similarities.shape[0], num_classes, dtype=weights.dtype, device=weights.device)
    return scores.scatter_add_(1, neighbor_labels, weights)


@torch.no_grad()
def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    query_features: torch.Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    chunk: int = 1024,
) -> torch.Tensor:
    """Predicted class scores ``(Q, C)`` for each query."""
    bank = F.normalize(train_features.float(), dim=1)
    queries = F.normalize(query_features.float(), dim=1)
    k = min(k, bank.shape[0])
    out = []
    for start in range(0, queries.shape[0], chunk):
        sims, idx = (queries[start : start + chunk] @ bank.T).topk(k, dim=1)
        out.append(knn_vote(sims, train_labels[idx], num_classes, temperature))
    return torch.cat(out)


def knn_accuracy(train_features, train_labels, query_features, query_labels, num_classes, k=20, temperature=0.07) -> float:
    """Top-1 accuracy (in [0, 1]) of the weighted kNN classifier."""
    scores = knn_predict(train_features, train_labels, query_features, num_classes, k, temperature)
    return (scores.argmax(1) == query_labels).float().mean().item()
