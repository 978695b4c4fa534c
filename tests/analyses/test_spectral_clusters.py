"""Spectral clustering of maps: planted clusters come back, the eigengap counts them, the graph is sparse."""
import numpy as np
import pytest

from netgaze.analyses.spectral import eigengap, knn_affinity, laplacian_spectrum, spectral_result


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
    result = spectral_result(features, random_state=0)
    assert result.n_clusters == len(sizes)
    # the same partition up to renaming: each cluster is pure and clusters are numbered by size
    for k in range(len(sizes)):
        assert len(set(truth[result.labels == k])) == 1
    assert np.bincount(result.labels).tolist() == sorted(sizes, reverse=True)
    assert result.eigenvalues[0] == pytest.approx(0, abs=1e-8)


def test_fixed_number_of_clusters_and_same_seed_same_result():
    features, _ = planted((30, 50))
    three = spectral_result(features, n_clusters=3)
    assert three.n_clusters == 3 and sorted(set(three.labels.tolist())) == [0, 1, 2]
    again = spectral_result(features, n_clusters=3)
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


def test_public_spectral_clusters_takes_maps_of_any_shape_and_returns_one_id_per_row():
    import torch

    import netgaze as ng

    features, truth = planted((40, 60))
    maps = features.reshape(-1, 8, 8)
    labels = ng.analyses.spectral_clusters(maps)
    assert labels.shape == (100,) and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [60, 40]
    assert np.array_equal(ng.analyses.spectral_clusters(torch.as_tensor(maps[:, None])), labels)  # [n, 1, 8, 8]
    assert np.array_equal(ng.analyses.spectral_clusters(maps * 7.0, normalize=True), labels)
    assert len(set(ng.analyses.spectral_clusters(maps, n_clusters=3).tolist())) == 3


def test_approximate_neighbours_and_multigrid_eigenvectors_agree_with_the_exact_path(monkeypatch):
    from sklearn.metrics import adjusted_rand_score

    import netgaze.analyses.spectral as spectral

    features, truth = planted((700, 900, 800), seed=3)
    exact = spectral_result(features, neighbors="exact")
    monkeypatch.setattr(spectral, "AMG_LIMIT", 100)  # LOBPCG + AMG on every piece of the graph
    approximate = spectral_result(features, neighbors="approximate")
    assert exact.n_clusters == approximate.n_clusters == 3
    assert adjusted_rand_score(exact.labels, approximate.labels) >= 0.95
    np.testing.assert_allclose(approximate.eigenvalues[:3], 0, atol=1e-6)
    distances, neighbours = spectral.knn_search(features, 10, "approximate")
    assert not (neighbours == np.arange(len(features))[:, None]).any()  # never its own neighbour
    assert (np.diff(distances, axis=1) >= 0).all()


def test_duplicate_rows_are_never_their_own_neighbours():
    from netgaze.analyses.spectral import knn_search

    rows = np.repeat(np.random.default_rng(0).random((50, 4)), 3, axis=0)
    for method in ("exact", "approximate"):
        _, neighbours = knn_search(rows, 5, method)
        assert not (neighbours == np.arange(len(rows))[:, None]).any(), method


def test_kmeans_on_a_sample_then_every_row_finds_the_same_clusters(monkeypatch):
    import netgaze.analyses.spectral as spectral

    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.normal(c, 0.05, (400, 2)) for c in (0.0, 1.0, 2.0)])
    full, _ = spectral._kmeans(rows, 3, 0)
    monkeypatch.setattr(spectral, "KMEANS_SAMPLE", 300)
    sampled, _ = spectral._kmeans(rows, 3, 0)
    from sklearn.metrics import adjusted_rand_score
    assert adjusted_rand_score(full, sampled) == 1.0
