"""Spectral clustering of maps: planted clusters come back, the eigengap counts them, the graph is sparse."""
import numpy as np
import pytest

from netgaze.analyses.spectral import eigengap, knn_affinity, laplacian_spectrum, spectral_clusters


def planted(sizes, seed=0, res=8):
    """Blob maps around one centre per cluster, jittered by a pixel, with noise; L1-normalised."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:res, :res]
    centres = [(1.5, 1.5), (5.5, 5.5), (1.5, 5.5)]
    rows, truth = [], []
    for k, n in enumerate(sizes):
        for _ in range(n):
            cy, cx = np.array(centres[k]) + rng.uniform(-0.7, 0.7, 2)
            m = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 2.0) + 0.05 * rng.random((res, res))
            rows.append((m / m.sum()).ravel())
            truth.append(k)
    return np.array(rows), np.array(truth)


@pytest.mark.parametrize("sizes", [(30, 50), (40, 25, 35), (250, 350)])
def test_planted_clusters_are_recovered_and_counted_by_the_eigengap(sizes):
    features, truth = planted(sizes)
    result = spectral_clusters(features, random_state=0)
    assert result.n_clusters == len(sizes)
    # the same partition up to renaming: each cluster is pure and clusters are numbered by size
    for k in range(len(sizes)):
        assert len(set(truth[result.labels == k])) == 1
    assert np.bincount(result.labels).tolist() == sorted(sizes, reverse=True)
    assert result.eigenvalues[0] == pytest.approx(0, abs=1e-8)


def test_fixed_number_of_clusters_and_same_seed_same_result():
    features, _ = planted((30, 50))
    three = spectral_clusters(features, n_clusters=3)
    assert three.n_clusters == 3 and sorted(set(three.labels.tolist())) == [0, 1, 2]
    again = spectral_clusters(features, n_clusters=3)
    assert np.array_equal(three.labels, again.labels)


def test_affinity_is_sparse_symmetric_and_locally_scaled():
    features, _ = planted((300, 300))
    graph = knn_affinity(features, n_neighbors=10)
    assert graph.nnz <= 2 * 10 * 600  # at most both directions of each kNN edge, never n x n
    assert abs(graph - graph.T).max() == 0
    assert graph.diagonal().sum() == 0 and 0 < graph.data.min() and graph.data.max() <= 1


def test_sparse_eigensolver_agrees_with_the_dense_one():
    features, _ = planted((250, 250))
    graph = knn_affinity(features, 10)
    sparse_values, _ = laplacian_spectrum(graph, 5)
    import netgaze.analyses.spectral as spectral
    limit = spectral.DENSE_LIMIT
    spectral.DENSE_LIMIT = 10 ** 6
    try:
        dense_values, _ = laplacian_spectrum(graph, 5)
    finally:
        spectral.DENSE_LIMIT = limit
    np.testing.assert_allclose(sparse_values, dense_values, atol=1e-6)


def test_eigengap_picks_the_largest_relative_jump():
    # two separated clusters (two zeros), then a smooth within-cluster spectrum with a wide late step
    assert eigengap(np.array([0, 0, 0.077, 0.117, 0.162, 0.272, 0.317, 0.353, 0.512]), 8) == 2
    assert eigengap(np.array([0, 0.003, 0.05, 0.06, 0.07, 0.08]), 5) == 2  # weakly joined clusters
    assert eigengap(np.array([0, 0.01, 0.013, 0.014, 0.017, 0.029]), 5) == 1  # one diffuse cluster
    assert eigengap(np.array([0, 0, 0, 0.108, 0.109, 0.144]), 5) == 3
