"""kNN evaluation of frozen features with FAISS (PROTOCOLS C.4)."""

from .knn import GPU_MAX_K, build_index, knn_classify, search

__all__ = ["GPU_MAX_K", "build_index", "knn_classify", "search"]
