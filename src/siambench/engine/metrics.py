"""The transfer benchmark's metrics, in percent: top-1, mean per-class accuracy, VOC2007 11-point mAP.

Each dataset's registry entry names its metric (``top1``, ``mean_per_class``
or ``map11``) and :func:`score` turns a classifier's outputs into it:
Aircraft, Pets, Caltech-101 and Flowers report the mean of per-class
accuracies so that large classes do not dominate, VOC2007 reports the mean
over its 20 classes of one-vs-rest 11-point average precision.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, SiambenchError

METRICS = ("top1", "mean_per_class", "map11")
VOC_LABELS = (1, 0, -1)  # positive, difficult, negative


def _labels(pred, target) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.ndim != 1 or pred.shape != target.shape or pred.size == 0:
        raise ValueError(f"expected two non-empty 1-D label arrays of one length, got {pred.shape} and {target.shape}")
    return pred.astype(np.int64), target.astype(np.int64)


def top1(pred, target) -> float:
    """Percentage of predictions equal to the target."""
    pred, target = _labels(pred, target)
    return 100.0 * float(np.mean(pred == target))


def mean_per_class_accuracy(pred, target, num_classes: int | None = None) -> float:
    """Mean over the classes present in ``target`` of each class's recall, in percent.

    A class absent from ``target`` has no accuracy, so it is left out of
    the mean rather than counted as zero; this is the confusion matrix's
    diagonal over its row sums, averaged, as the transfer benchmark's
    reference code computes it.
    """
    pred, target = _labels(pred, target)
    k = num_classes or int(max(pred.max(), target.max())) + 1
    if target.min() < 0 or target.max() >= k:
        raise ValueError(f"targets must lie in [0, {k}), found {target.min()} … {target.max()}")
    total = np.bincount(target, minlength=k)
    correct = np.bincount(target[pred == target], minlength=k)
    present = total > 0
    return 100.0 * float(np.mean(correct[present] / total[present]))


def _precision_recall(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, true positives and positives count at every distinct score used as a threshold.

    Samples with tied scores cannot be separated by any threshold, so a run
    of ties is one operating point (as in sklearn's ``precision_recall_curve``)
    and the AP does not depend on the order in which tied samples are given.
    """
    order = np.argsort(-scores)
    s, pos = scores[order], positive[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tp = np.cumsum(pos)[last_of_tie]
    predicted = last_of_tie + 1
    return tp / predicted, tp, np.int64(pos.sum())


def voc11_ap(scores, labels) -> float:
    """11-point interpolated average precision of one class, in percent.

    ``labels`` use VOC's convention: 1 positive, 0 difficult, -1 negative.
    Following the transfer benchmark's protocol, difficult samples count as
    negatives (the VOC devkit would ignore them). AP is the mean over
    t ∈ {0, 0.1, …, 1} of the highest precision reached at a recall ≥ t,
    0 where no threshold reaches recall t. The curve has no artificial
    (recall 0, precision 1) point, unlike sklearn's, so the t = 0 term is
    the best precision any threshold attains. Recall ≥ t is decided in
    integers (10·tp ≥ 10t·positives), so a recall of exactly 0.3 or 0.6
    counts at t = 0.3 or 0.6 despite floating-point rounding.
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    if scores.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(f"expected 1-D scores and labels of one length, got {scores.shape} and {labels.shape}")
    if not np.isin(labels, VOC_LABELS).all():
        raise ValueError(f"VOC labels must be 1, 0 or -1, found {sorted(set(np.unique(labels)) - set(VOC_LABELS))}")
    precision, tp, positives = _precision_recall(scores, labels == 1)
    if positives == 0:
        raise SiambenchError(f"11-point AP is undefined without a positive sample; none of the {labels.size} labels "
                             "is 1. Evaluate on a split where every class has at least one positive image.")
    points = [precision[10 * tp >= k * positives].max(initial=0.0) for k in range(11)]
    return 100.0 * float(np.mean(points))


def voc11_map(scores, labels) -> float:
    """Mean over classes of :func:`voc11_ap`, for ``(N, C)`` scores and VOC labels (C = 20 for VOC2007)."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    if scores.ndim != 2 or scores.shape != labels.shape:
        raise ValueError(f"expected (N, C) scores and labels of one shape, got {scores.shape} and {labels.shape}")
    aps = []
    for c in range(scores.shape[1]):
        try:
            aps.append(voc11_ap(scores[:, c], labels[:, c]))
        except SiambenchError as e:
            raise SiambenchError(f"class {c}: {e}") from None
    return float(np.mean(aps))


def score(metric: str, outputs, targets) -> float:
    """The dataset's metric of a classifier's outputs, in percent.

    ``outputs`` are ``(N, C)`` logits for ``top1`` and ``mean_per_class``
    (the prediction is their argmax, and C is the number of classes) and
    ``(N, C)`` per-class scores for ``map11``, whose ``targets`` are the
    ``(N, C)`` VOC labels; otherwise ``targets`` are ``(N,)`` class indices.
    """
    if metric not in METRICS:
        raise ConfigError(f"unknown transfer metric {metric!r}; expected one of {', '.join(METRICS)}.")
    outputs = np.asarray(outputs)
    if outputs.ndim != 2:
        raise ValueError(f"expected (N, C) outputs, got shape {outputs.shape}")
    if not np.isfinite(outputs).all():
        raise SiambenchError(f"the classifier's outputs contain NaN or infinite values; {metric} cannot be computed. "
                             "The classifier diverged: lower its learning rate or raise its regularisation.")
    if metric == "map11":
        return voc11_map(outputs, targets)
    pred = outputs.argmax(axis=1)
    if metric == "top1":
        return top1(pred, targets)
    return mean_per_class_accuracy(pred, targets, num_classes=outputs.shape[1])
