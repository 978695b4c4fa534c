"""k-nearest-neighbour accuracy: how well a space (features or an embedding) groups labels.

A number to go with a scatter plot: "the small model clusters by colour, the transferred
model by breed" becomes ``knn_accuracy(F, breed)`` vs ``knn_accuracy(F, background)``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from netgaze.errors import ArgumentError


def knn_accuracy(X: np.ndarray, labels: Sequence | np.ndarray, k: int = 5, *, folds: int | None = None,
                 random_state: int = 0) -> float:
    """Accuracy of a k-NN majority vote (Euclidean) predicting ``labels`` from ``X``.

    Args:
        X: [N, D] features or an [N, 2|3] embedding.
        labels: [N] labels of any hashable type (class ids, names, a nuisance attribute).
        k: neighbours that vote; ties go to the label that sorts first (as scikit-learn).
        folds: None for leave-one-out (each point voted on by its k nearest *other*
            points; exact and cheap, the default), or a number of stratified folds.
        random_state: shuffles the folds.

    Returns:
        The fraction of points whose label the vote gets right (chance is about the
        frequency of the most common label).
    """
    X = np.asarray(X, dtype=np.float32)
    codes, n_labels = _encode(labels)
    if X.ndim != 2 or len(X) != len(codes):
        raise ArgumentError(f"X must be [N, D] with N = len(labels) = {len(codes)}, got {X.shape}")
    if k < 1 or k >= len(X):
        raise ArgumentError(f"k must be between 1 and N - 1 = {len(X) - 1}, got {k}")
    if folds is None:
        return _leave_one_out(X, codes, n_labels, k)
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    return float(cross_val_score(KNeighborsClassifier(n_neighbors=k), X, codes, cv=split).mean())


def knn_report(features: np.ndarray, embedding: np.ndarray | None, labels: Sequence | np.ndarray,
               nuisance: Sequence | np.ndarray | None = None, k: int = 5) -> dict[str, float]:
    """kNN accuracies of the labels (and a nuisance attribute) in feature and embedding space.

    Returns:
        ``{"label_features": .., "label_embedding": .., "nuisance_features": ..,
        "nuisance_embedding": .., "label_chance": .., "nuisance_chance": ..}`` (only the
        keys whose inputs were given); chance = frequency of the most common value.
    """
    report: dict[str, float] = {}
    for key, values in (("label", labels), ("nuisance", nuisance)):
        if values is None:
            continue
        report[f"{key}_features"] = knn_accuracy(features, values, k)
        if embedding is not None:
            report[f"{key}_embedding"] = knn_accuracy(embedding, values, k)
        codes, _ = _encode(values)
        report[f"{key}_chance"] = float(np.bincount(codes).max() / len(codes))
    return report


def _encode(labels: Sequence | np.ndarray) -> tuple[np.ndarray, int]:
    values = np.asarray(labels)
    if values.ndim != 1:
        raise ArgumentError(f"labels must be one value per point, got shape {values.shape}")
    uniques, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), len(uniques)


def _leave_one_out(X: np.ndarray, codes: np.ndarray, n_labels: int, k: int) -> float:
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=k + 1).fit(X)
    _, neighbours = index.kneighbors(X)
    # Drop each point itself; with duplicates it may not come first, so remove it by id.
    is_self = neighbours == np.arange(len(X))[:, None]
    drop = np.where(is_self.any(1), is_self.argmax(1), k)
    keep = np.ones_like(neighbours, dtype=bool)
    keep[np.arange(len(X)), drop] = False
    voters = neighbours[keep].reshape(len(X), k)
    votes = np.zeros((len(X), n_labels), np.int64)
    np.add.at(votes, (np.repeat(np.arange(len(X)), k), codes[voters].ravel()), 1)
    return float((votes.argmax(1) == codes).mean())


__all__ = ["knn_accuracy", "knn_report"]
