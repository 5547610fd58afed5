import warnings

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, precision_recall_curve

from siambench.engine.metrics import mean_per_class_accuracy, score, top1, voc11_ap, voc11_map
from siambench.errors import ConfigError, SiambenchError


def sklearn_voc11_ap(scores, labels):
    """Independent 11-point AP from sklearn's PR curve; difficult (0) and -1 are negatives.

    sklearn appends a (recall 0, precision 1) point that no threshold
    reaches; it is dropped. Thresholds are k / 10, the doubles nearest to
    0.1 k, so a recall of exactly 3/10 meets t = 0.3 as it does in exact
    arithmetic (np.linspace's 0.30000000000000004 would not).
    """
    precision, recall, _ = precision_recall_curve(labels == 1, scores)
    precision, recall = precision[:-1], recall[:-1]
    return 100 * np.mean([precision[recall >= k / 10].max(initial=0.0) for k in range(11)])


def ssl_transfer_voc11_ap(scores, labels):
    """The ssl-transfer formula as written: sklearn's curve with its appended point, np.linspace thresholds."""
    precision, recall, _ = precision_recall_curve(labels == 1, scores)
    return 100 * np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0 for t in np.linspace(0, 1, 11)])


def voc_labels(rng, n):
    return rng.choice([1, 0, -1], size=n, p=[0.3, 0.1, 0.6])


def test_top1_known_value():
    assert top1([0, 1, 2, 3], [0, 1, 0, 3]) == 75.0
    assert top1(np.array([4, 4]), np.array([1, 2])) == 0.0


def test_mean_per_class_known_value():
    # class 0: 2 of 3 right, class 1: 1 of 1, class 5: 0 of 2; classes 2-4 absent from the target.
    pred = [0, 0, 1, 1, 2, 3]
    target = [0, 0, 0, 1, 5, 5]
    assert mean_per_class_accuracy(pred, target) == pytest.approx(100 * (2 / 3 + 1 + 0) / 3)
    assert mean_per_class_accuracy(pred, target, num_classes=10) == pytest.approx(100 * (2 / 3 + 1 + 0) / 3)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_mean_per_class_equals_sklearn_balanced_accuracy(seed):
    rng = np.random.default_rng(seed)
    k = 12
    weights = rng.dirichlet(np.full(k, 0.4))  # strongly imbalanced; some classes may be missing
    target = rng.choice(k, size=300, p=weights)
    pred = np.where(rng.random(300) < 0.6, target, rng.integers(0, k, size=300))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about predicted classes absent from y_true
        expected = 100 * balanced_accuracy_score(target, pred)
    assert mean_per_class_accuracy(pred, target, num_classes=k) == pytest.approx(expected, abs=1e-10)
    assert mean_per_class_accuracy(pred, target) != pytest.approx(top1(pred, target), abs=1e-3)


def test_mean_per_class_rejects_targets_outside_the_classes():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        mean_per_class_accuracy([0, 1], [0, 3], num_classes=3)


def test_voc11_ap_hand_computed():
    # 3 positives, ranked 1 -1 1 -1 1:
    #   rank 1: P 1/1, R 1/3;  rank 2: P 1/2, R 1/3;  rank 3: P 2/3, R 2/3;
    #   rank 4: P 2/4, R 2/3;  rank 5: P 3/5, R 3/3.
    # t = 0, .1, .2, .3 (R >= 1/3 everywhere): max P = 1
    # t = .4, .5, .6 (ranks 3-5): max(2/3, 1/2, 3/5) = 2/3
    # t = .7, .8, .9, 1 (rank 5): 3/5
    # AP = (4 * 1 + 3 * 2/3 + 4 * 3/5) / 11 = 8.4 / 11
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    labels = np.array([1, -1, 1, -1, 1])
    assert voc11_ap(scores, labels) == pytest.approx(100 * 8.4 / 11)


def test_voc11_ap_counts_a_recall_exactly_on_a_threshold():
    # 5 positives, ranked 1 1 1 -1 -1 1 1:
    #   ranks 1-3: P 1, R .2 .4 .6;  rank 4: P 3/4, R .6;  rank 5: P 3/5, R .6;
    #   rank 6: P 4/6, R .8;  rank 7: P 5/7, R 1.
    # t = 0 … .6 (7 points; R = 3/5 meets t = .6): max P = 1
    # t = .7 … 1 (4 points, ranks 6-7): max(4/6, 5/7) = 5/7
    # AP = (7 + 4 * 5/7) / 11 = 69/77. With np.linspace's t = 0.6000000000000001 the rank-3
    # precision would be lost at t = .6 and the AP would be (6 + 5 * 5/7) / 11 = 67/77.
    scores = np.arange(7, 0, -1) / 10
    labels = np.array([1, 1, 1, -1, -1, 1, 1])
    assert voc11_ap(scores, labels) == pytest.approx(100 * 69 / 77)


def test_voc11_ap_ties_are_one_threshold_whatever_their_order():
    # Scores .9 .5 .5 .1 with 2 positives; the tied pair holds one positive and one negative.
    #   >= .9: P 1, R 1/2;  >= .5: P 2/3, R 1;  >= .1: P 2/4, R 1.
    # t = 0 … .5 (6 points): 1;  t = .6 … 1 (5 points): 2/3.  AP = (6 + 5 * 2/3) / 11 = 28/33.
    # Ranking the tied positive first would instead give P 1 at R 1, i.e. AP 100.
    scores = np.array([0.9, 0.5, 0.5, 0.1])
    assert voc11_ap(scores, np.array([1, -1, 1, -1])) == pytest.approx(100 * 28 / 33)
    assert voc11_ap(scores, np.array([1, 1, -1, -1])) == pytest.approx(100 * 28 / 33)


def test_voc11_ap_difficult_samples_are_negatives():
    # Labels 1 0 1: the difficult sample at rank 2 is a false positive.
    #   rank 1: P 1, R 1/2;  rank 2: P 1/2, R 1/2;  rank 3: P 2/3, R 1.
    # t = 0 … .5 (6 points): 1;  t = .6 … 1 (5 points): 2/3.  AP = 28/33.
    # Ignoring it (the VOC devkit's rule) would give two positives at the top: AP 100.
    scores = np.array([0.9, 0.8, 0.7])
    assert voc11_ap(scores, np.array([1, 0, 1])) == pytest.approx(100 * 28 / 33)
    assert voc11_ap(scores, np.array([1, 0, 1])) == voc11_ap(scores, np.array([1, -1, 1]))
    assert voc11_ap(scores[[0, 2]], np.array([1, 1])) == 100.0


@pytest.mark.parametrize("seed", range(6))
def test_voc11_ap_equals_sklearn_reference_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    labels = voc_labels(rng, n)
    scores = rng.normal(size=n) + 0.8 * (labels == 1)
    if seed % 2:
        scores = np.round(scores, 1)  # many ties
    assert voc11_ap(scores, labels) == pytest.approx(sklearn_voc11_ap(scores, labels), abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_voc11_ap_equals_ssl_transfer_when_a_positive_ranks_first(seed):
    # ssl-transfer's t = 0 term is always 1 (sklearn's appended point); ours is the best precision
    # reached, also 1 when the top-scored sample is positive. Positive counts of 7 and 9 keep every
    # recall off the thresholds that np.linspace rounds up.
    rng = np.random.default_rng(seed)
    positives = 7 if seed % 2 else 9
    labels = np.array([1] * positives + [-1] * 40 + [0] * 5)
    scores = rng.normal(size=labels.size) + 0.5 * (labels == 1)
    scores[0] = scores.max() + 1
    assert voc11_ap(scores, labels) == pytest.approx(ssl_transfer_voc11_ap(scores, labels), abs=1e-9)


def test_voc11_ap_rejects_no_positive_and_bad_labels():
    with pytest.raises(SiambenchError, match="positive"):
        voc11_ap([0.3, 0.2], [0, -1])
    with pytest.raises(ValueError, match="1, 0 or -1"):
        voc11_ap([0.3, 0.2], [1, 2])


def test_voc11_map_is_the_mean_over_20_classes():
    rng = np.random.default_rng(7)
    labels = np.stack([voc_labels(rng, 120) for _ in range(20)], axis=1)
    labels[0] = 1  # every class has a positive
    scores = rng.normal(size=(120, 20)) + (labels == 1)
    expected = np.mean([sklearn_voc11_ap(scores[:, c], labels[:, c]) for c in range(20)])
    assert voc11_map(scores, labels) == pytest.approx(expected, abs=1e-9)
    assert score("map11", scores, labels) == pytest.approx(expected, abs=1e-9)
    labels[:, 13] = -1
    with pytest.raises(SiambenchError, match="class 13"):
        voc11_map(scores, labels)


def test_score_dispatches_on_the_registry_metric():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0]])
    targets = np.array([0, 1, 2, 2])  # predictions 0 1 1 2
    assert score("top1", logits, targets) == 75.0
    # class 0: 1/1, class 1: 1/1, class 2: 1/2
    assert score("mean_per_class", logits, targets) == pytest.approx(100 * 2.5 / 3)
    with pytest.raises(ConfigError, match="map11"):
        score("top5", logits, targets)
    with pytest.raises(SiambenchError, match="NaN"):
        score("top1", np.full((2, 3), np.nan), [0, 1])
    with pytest.raises(ValueError):
        score("top1", logits, targets[:3])
