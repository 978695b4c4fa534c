"""kNN accuracy: known clusters, random labels, a hand example, duplicates, folds."""
import numpy as np
import pytest

from netgaze.embed import knn_accuracy, knn_report


def test_separated_blobs_score_one_and_random_labels_score_chance():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (5, 8))
    X = np.concatenate([c + rng.normal(0, 0.5, (60, 8)) for c in centres])
    y = np.repeat(np.arange(5), 60)
    assert knn_accuracy(X, y) == 1.0
    assert knn_accuracy(X, y, folds=5) == 1.0
    random = rng.integers(0, 5, len(y))
    assert abs(knn_accuracy(X, random) - 0.2) < 0.07
    names = np.array(["cat", "dog", "eel", "fox", "gnu"])[y]   # any hashable labels
    assert knn_accuracy(X, names) == 1.0


def test_hand_example_leave_one_out():
    # 1-D points; k = 1: each point takes its nearest OTHER point's label.
    X = np.array([[0.0], [1.0], [1.5], [10.0], [10.4], [30.0]])
    y = np.array([0, 0, 1, 1, 1, 0])
    # nearest others: 0->1 (0 ok), 1->1.5 (1 wrong), 1.5->1 (0 wrong), 10->10.4 ok, 10.4->10 ok, 30->10.4 (1 wrong)
    assert knn_accuracy(X, y, k=1) == pytest.approx(3 / 6)
    # k = 3, votes among 3 nearest others
    # 0: {1,1.5,10}->0,1,1 -> 1 wrong; 1: {0,1.5,10}->0,1,1 -> 1 wrong; 1.5: {1,0,10}->0,0,1 -> 0 wrong;
    # 10: {10.4,1.5,1}->1,1,0 ok; 10.4: {10,1.5,1}->1,1,0 ok; 30: {10.4,10,1.5}->1,1,1 wrong
    assert knn_accuracy(X, y, k=3) == pytest.approx(2 / 6)


def test_duplicates_do_not_count_themselves():
    X = np.zeros((6, 2))
    y = np.array([0, 0, 0, 1, 1, 1])
    # every point's 1 nearest other is some duplicate; ties among equal distances: the
    # result must lie in [0, 1] and the point itself never votes, so k = 5 gives 3 vs 2.
    acc = knn_accuracy(X, y, k=5)
    # each point sees the 5 others: 2 of its own label and 3 of the other -> always wrong
    assert acc == 0.0


def test_report_has_label_and_nuisance_numbers():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 50)
    colour = np.tile([0, 1], 50)
    X = np.stack([y * 10 + rng.normal(0, 0.3, 100), rng.normal(0, 0.3, 100)], 1)
    r = knn_report(X, X[:, :1], y, colour)
    assert r["label_features"] == 1.0 and r["label_embedding"] == 1.0
    assert r["nuisance_features"] < 0.7 and r["label_chance"] == 0.5 and r["nuisance_chance"] == 0.5
    with pytest.raises(ValueError, match="k must be"):
        knn_accuracy(X, y, k=100)
