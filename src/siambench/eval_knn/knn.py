"""Weighted kNN classification of frozen features, searched with FAISS.

The DINO/InstDisc protocol (PROTOCOLS C.4): l2-normalised features, cosine
similarity as the inner product, the top-k training neighbours vote for
their class with weight ``exp(s / T)``, top-1 and top-5 accuracy for
k in {10, 20, 100, 200}. One search at the largest k answers every k, since
the top-k of a larger search are its first k columns.

Memory is the reason for most of the shape of this module: an ImageNet bank
(1.28M x 2048) is 10 GB in float32. The bank is normalised block by block
straight into the index's own storage, so the index is the only full copy
(adding blocks with ``index.add`` grows that storage by reallocation, which
briefly holds up to about twice the bank), and the queries go through in
blocks, so a block's results and class scores are all that sits beside it.
"""

from __future__ import annotations

import warnings

import faiss
import numpy as np
import torch
from tqdm.auto import tqdm

from ..engine.knn import knn_vote

GPU_MAX_K = 2048
"""Largest k a FAISS GPU search accepts."""


def gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0 and torch.cuda.is_available()


def _as_numpy(x):
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        return (x.float() if x.dtype == torch.bfloat16 else x).numpy()
    return x


def _normalized_block(features, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` as a fresh float32 array with unit l2 norm (the caller's array is never written)."""
    block = np.array(features[start:stop], dtype=np.float32, order="C")
    faiss.normalize_L2(block)
    return block


def build_index(features, chunk: int = 8192, use_gpu: bool = False, progress: bool = False):
    """An inner-product FAISS index over the l2-normalised rows of ``features`` ``(N, D)``.

    Float16 or memory-mapped inputs are read ``chunk`` rows at a time. A GPU
    index is copied from the CPU one and holds on to its
    ``StandardGpuResources`` (FAISS's Python layer does not for this copy).
    """
    features = _as_numpy(features)
    n, d = features.shape
    index = faiss.IndexFlatIP(d)
    index.codes.resize(n * d * 4)
    index.ntotal = n
    storage = faiss.rev_swig_ptr(index.get_xb(), n * d).reshape(n, d) if n else None
    for start in tqdm(range(0, n, chunk), desc="kNN bank", disable=not progress, leave=False):
        stop = min(start + chunk, n)
        storage[start:stop] = _normalized_block(features, start, stop)
    del storage
    if not use_gpu:
        return index
    resources = faiss.StandardGpuResources()
    gpu_index = faiss.index_cpu_to_gpu(resources, torch.cuda.current_device(), index)
    gpu_index.referenced_objects = [resources]
    return gpu_index


def search(index, queries, k: int, chunk: int = 8192, progress: bool = False):
    """Yield ``(start, similarities, indices)`` for each block of ``chunk`` normalised queries, best first."""
    queries = _as_numpy(queries)
    for start in tqdm(range(0, len(queries), chunk), desc="kNN search", disable=not progress, leave=False):
        block = _normalized_block(queries, start, min(start + chunk, len(queries)))
        sims, idx = index.search(block, k)
        yield start, sims, idx


def _resolve_gpu(use_gpu: bool | None, k_max: int) -> bool:
    if use_gpu is None:
        return gpu_available() and k_max <= GPU_MAX_K
    if use_gpu and not gpu_available():
        raise RuntimeError("use_gpu=True but FAISS has no GPU support here or CUDA is not available")
    if use_gpu and k_max > GPU_MAX_K:
        raise ValueError(f"FAISS GPU search supports k <= {GPU_MAX_K}, asked for {k_max}")
    return bool(use_gpu)


def knn_classify(
    train_features,
    train_labels,
    test_features,
    test_labels,
    num_classes: int,
    ks=(10, 20, 100, 200),
    temperature: float = 0.07,
    query_chunk: int = 8192,
    use_gpu: bool | None = None,
    progress: bool = False,
    return_predictions: bool = False,
) -> dict:
    """Top-1/top-5 accuracy (percent) of the weighted kNN classifier for each k in ``ks``.

    Features are ``(N, D)`` arrays or tensors of any float dtype (float16
    memory maps included); labels are integer class indices. ``query_chunk``
    rows are read at a time, for the queries and for filling the bank.
    ``use_gpu=None`` picks a FAISS GPU index when CUDA and FAISS GPU support
    are both present, the CPU ``IndexFlatIP`` otherwise.

    Returns ``top1@k{k}`` and ``top5@k{k}`` for each requested k, ``best_k``
    (highest top-1, the smallest such k on a tie) with ``best_top1``, and
    ``clipped_ks``: requested k larger than the bank, mapped to the bank size
    that answered them (also warned about). ``return_predictions`` adds
    ``predictions``: top-1 class per query for each k.

    Scoring: top-1 is the arg-max of the class scores (lowest class index on
    an exact tie). Top-5 counts a query as correct when its class received at
    least one vote and fewer than ``min(5, num_classes)`` classes scored
    strictly higher (``top5_width`` in the result). Classes with no votes are
    never "predicted", so with fewer than 5 classes top-5 means "the true
    class received a vote" rather than a trivial 100 %, and with k < 5 it
    does not depend on how zero scores happen to be ordered.
    """
    train_features, test_features = _as_numpy(train_features), _as_numpy(test_features)
    train_labels = np.asarray(_as_numpy(train_labels), dtype=np.int64)
    test_labels = torch.as_tensor(np.asarray(_as_numpy(test_labels), dtype=np.int64))
    n_train, n_test = len(train_features), len(test_features)
    if n_train == 0 or n_test == 0:
        raise ValueError("kNN needs a non-empty bank and at least one query")
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(f"feature dimensions differ: {train_features.shape[1]} vs {test_features.shape[1]}")
    if len(train_labels) != n_train or len(test_labels) != n_test:
        raise ValueError("one label per feature row is needed")
    for labels in (train_labels, test_labels.numpy()):
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(f"labels must lie in [0, {num_classes})")

    ks = list(dict.fromkeys(int(k) for k in ks))
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive, got {ks}")
    effective = {k: min(k, n_train) for k in ks}
    clipped = {k: e for k, e in effective.items() if e != k}
    if clipped:
        warnings.warn(f"k larger than the bank ({n_train}) clipped: {clipped}", stacklevel=2)
    k_max = max(effective.values())
    gpu = _resolve_gpu(use_gpu, k_max)
    width = min(5, num_classes)

    index = build_index(train_features, query_chunk, gpu, progress)
    train_labels_t = torch.from_numpy(train_labels)
    top1 = {k: 0 for k in effective.values()}
    top5 = dict(top1)
    predictions = {k: torch.empty(n_test, dtype=torch.int64) for k in top1}
    for start, sims, idx in search(index, test_features, k_max, query_chunk, progress):
        sims, neighbor_labels = torch.from_numpy(sims), train_labels_t[torch.from_numpy(idx)]
        target = test_labels[start : start + len(sims), None]
        for k in top1:
            scores = knn_vote(sims[:, :k], neighbor_labels[:, :k], num_classes, temperature)
            pred = scores.argmax(1)
            true_score = scores.gather(1, target)
            rank = (scores > true_score).sum(1)
            top1[k] += int((pred == target[:, 0]).sum())
            top5[k] += int(((true_score[:, 0] > 0) & (rank < width)).sum())
            predictions[k][start : start + len(sims)] = pred
    del index

    result = {}
    for k in ks:
        result[f"top1@k{k}"] = 100.0 * top1[effective[k]] / n_test
        result[f"top5@k{k}"] = 100.0 * top5[effective[k]] / n_test
    best_k = max(ks, key=lambda k: (result[f"top1@k{k}"], -k))
    result.update(
        best_k=best_k,
        best_top1=result[f"top1@k{best_k}"],
        clipped_ks=clipped,
        top5_width=width,
        temperature=temperature,
        num_train=n_train,
        num_test=n_test,
        backend="faiss-gpu" if gpu else "faiss-cpu",
    )
    if return_predictions:
        result["predictions"] = {k: predictions[effective[k]].numpy() for k in ks}
    return result
