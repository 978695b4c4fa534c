"""Spectral clustering of explanation maps (the maths of SpRAy), sparse from end to end.

``spectral_clusters(maps)`` (public: ``ng.analyses.spectral_clusters``) gives one cluster id per
map; ``spectral_result(features)`` the whole result. Both build a symmetric k-nearest-neighbour
affinity with locally scaled Gaussian weights (Zelnik-Manor and Perona 2004), embed the points
with the leading eigenvectors of the normalised affinity ``D^-1/2 W D^-1/2`` (the smallest of
the normalised Laplacian ``I - D^-1/2 W D^-1/2``), pick the number of clusters at the largest gap
between consecutive Laplacian eigenvalues (the eigengap), and run k-means on the row-normalised
embedding (Ng, Jordan and Weiss 2001). The affinity holds ``n * n_neighbors`` entries at most
(never a dense n x n matrix); eigenvectors come from ARPACK (``scipy.sparse.linalg.eigsh``) and,
for a connected piece above ``AMG_LIMIT`` points, from LOBPCG preconditioned by pyamg's smoothed
aggregation multigrid (as scikit-learn's ``eigen_solver="amg"``): ARPACK needs more and more
iterations as the graph grows (its smallest Laplacian eigenvalues crowd together near 0), the
preconditioned solver about the same few.

Near-linear at scale: below ``EXACT_LIMIT`` points the neighbours are exact (scikit-learn's brute
force search, a few seconds there); above it they come from an approximate search made for it,
hnswlib's HNSW graphs (``knn_search``; chosen over pynndescent and faiss-cpu by
``benchmarks/bench_knn.py``), whose cost grows as ``n log n`` instead of ``n^2``. Above
``KMEANS_SAMPLE`` rows, k-means runs its restarts on a seeded sample and refines the best
centres on every row.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh

DENSE_LIMIT = 400  # below this many points a dense eigendecomposition is faster and exact
AMG_LIMIT = 20_000  # above this many points (of one connected piece) LOBPCG with an AMG preconditioner
AMG_TOL = 1e-5      # LOBPCG's residual tolerance (bench_scale.py: the eigenvalues of ARPACK at 1e-8)
EXACT_LIMIT = 10_000  # below this many points the neighbour search is exact (brute force, 2.5 s CPU at 10k)
KMEANS_SAMPLE = 100_000  # above this many points k-means restarts on a sample, then refines on all rows
# HNSW settings (benchmarks/bench_knn.py). Leaner graphs (M=12, ef 48/24) were 40% faster but left
# 15% of planted maps unreachable and gave 6% of them neighbours in another cluster at 50k.
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF = 16, 100, 50
NEIGHBOR_METHODS = ("auto", "exact", "approximate")


@dataclass
class SpectralResult:
    """Clusters of one set of points.

    Attributes:
        labels: int [n], cluster ids 0..n_clusters-1, numbered by decreasing size.
        n_clusters: the number of clusters (chosen by the eigengap unless given).
        eigenvalues: float [m], the smallest eigenvalues of the normalised Laplacian, ascending.
        embedding: float [n, m], the matching eigenvectors scaled by ``D^-1/2`` (the spectral embedding).
        centre_distance: float [n], each point's distance to its cluster's centre in the
            row-normalised embedding (small = typical of the cluster).
        n_neighbors: neighbours per point in the affinity graph.
    """

    labels: np.ndarray
    n_clusters: int
    eigenvalues: np.ndarray
    embedding: np.ndarray
    centre_distance: np.ndarray
    n_neighbors: int


def knn_search(features: np.ndarray, n_neighbors: int, method: str = "auto", random_state: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
    """(distances, neighbours) [n, k] of each row's ``n_neighbors`` nearest other rows, nearest first.

    ``method``: ``"exact"`` (scikit-learn brute force, ``n^2`` work), ``"approximate"`` (hnswlib's
    HNSW index, ``n log n``) or ``"auto"`` (exact below ``EXACT_LIMIT`` rows). A row is never its
    own neighbour, duplicates included.
    """
    if method not in NEIGHBOR_METHODS:
        from netgaze.errors import ArgumentError

        raise ArgumentError(f"neighbors={method!r}: use one of {', '.join(NEIGHBOR_METHODS)}")
    n = len(features)
    k = min(n_neighbors, n - 1)
    if method == "exact" or (method == "auto" and n < EXACT_LIMIT):
        from sklearn.neighbors import NearestNeighbors

        distances, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    else:
        import hnswlib

        data = np.ascontiguousarray(features, dtype=np.float32)
        index = hnswlib.Index(space="l2", dim=data.shape[1])
        index.init_index(max_elements=n, ef_construction=HNSW_EF_CONSTRUCTION, M=HNSW_M, random_seed=random_state)
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        index.set_num_threads(threads)
        index.add_items(data, np.arange(n))
        index.set_ef(max(HNSW_EF, 2 * (k + 1)))
        neighbours, squared = index.knn_query(data, k=k + 1)
        lost = np.flatnonzero(~(neighbours == np.arange(n)[:, None]).any(1))
        if len(lost):  # a search that did not even find its own point: again, searching wider
            index.set_ef(max(HNSW_EF, 2 * (k + 1)) * 8)
            neighbours[lost], squared[lost] = index.knn_query(data[lost], k=k + 1)
        del index
        order = np.argsort(squared, axis=1, kind="stable")
        neighbours = np.take_along_axis(neighbours.astype(np.int64), order, 1)
        distances = np.sqrt(np.maximum(np.take_along_axis(squared, order, 1), 0)).astype(np.float64)
    # drop each row itself (wherever a duplicate put it), else the farthest of the k + 1
    is_self = neighbours == np.arange(n)[:, None]
    is_self[~is_self.any(1), -1] = True
    is_self &= np.cumsum(is_self, axis=1) == 1
    keep = ~is_self
    return distances[keep].reshape(n, k), neighbours[keep].reshape(n, k)


def knn_affinity(features: np.ndarray, n_neighbors: int = 10, scale_neighbor: int = 7, method: str = "auto",
                 random_state: int = 0) -> sp.csr_matrix:
    """Symmetric sparse affinity [n, n]: ``exp(-d_ij^2 / (s_i s_j))`` between k-nearest neighbours.

    ``s_i`` is point i's distance to its ``scale_neighbor``-th neighbour (local scaling), so dense
    and sparse regions are treated alike. The graph is made symmetric by keeping an edge that
    either end lists (the larger weight). ``method``: the neighbour search (``knn_search``).
    """
    n = len(features)
    distances, neighbours = knn_search(features, n_neighbors, method, random_state)
    k = distances.shape[1]
    scale = distances[:, min(scale_neighbor, k) - 1]
    scale = np.maximum(scale, max(float(scale[scale > 0].min()) if (scale > 0).any() else 1.0, 1e-12) * 1e-3)
    rows = np.repeat(np.arange(n), k)
    weights = np.exp(-(distances.ravel() ** 2) / (scale[rows] * scale[neighbours.ravel()]))
    graph = sp.csr_matrix((weights, (rows, neighbours.ravel())), shape=(n, n))
    return graph.maximum(graph.T).tocsr()


def laplacian_spectrum(affinity: sp.csr_matrix, count: int, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` smallest eigenvalues of the normalised Laplacian and ``D^-1/2``-scaled eigenvectors.

    A graph in several pieces is solved piece by piece (each piece's eigenvectors padded with
    zeros): a Lanczos solver started from one vector can miss copies of the eigenvalue 0, one
    per piece, which are exactly what counts well-separated clusters.
    """
    from scipy.sparse.csgraph import connected_components

    n = affinity.shape[0]
    count = min(count, n)
    pieces, piece_of = connected_components(affinity, directed=False)
    if pieces == 1:
        values, vectors = _connected_spectrum(affinity, count, random_state)
    else:
        values_list, vectors_list = [], []
        for piece in range(pieces):
            members = np.flatnonzero(piece_of == piece)
            part_values, part_vectors = _connected_spectrum(affinity[members][:, members], min(count, len(members)),
                                                            random_state)
            padded = np.zeros((n, part_vectors.shape[1]))
            padded[members] = part_vectors
            values_list.append(part_values)
            vectors_list.append(padded)
        values = np.concatenate(values_list)
        order = np.argsort(values, kind="stable")[:count]
        values, vectors = values[order], np.concatenate(vectors_list, axis=1)[:, order]
    signs = np.sign(vectors[np.abs(vectors).argmax(0), np.arange(vectors.shape[1])])  # deterministic signs
    return values, vectors * np.where(signs == 0, 1, signs)


def _connected_spectrum(affinity: sp.csr_matrix, count: int, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Smallest Laplacian eigenvalues (ascending) and ``D^-1/2``-scaled eigenvectors of a connected graph."""
    n = affinity.shape[0]
    degree = np.asarray(affinity.sum(axis=1)).ravel()
    inv_sqrt = 1.0 / np.sqrt(np.maximum(degree, 1e-12))
    normalised = sp.diags(inv_sqrt) @ affinity @ sp.diags(inv_sqrt)
    if n <= DENSE_LIMIT or count >= n - 1:
        values, vectors = np.linalg.eigh(normalised.toarray())
        values, vectors = values[::-1][:count], vectors[:, ::-1][:, :count]
    elif n > AMG_LIMIT:
        values, vectors = _amg_spectrum(normalised, degree, count, random_state)
        return np.clip(values, 0.0, 2.0), vectors * inv_sqrt[:, None]
    else:
        start = np.random.default_rng(random_state).random(n) + 0.5  # fixed start: the same run, the same vectors
        values, vectors = eigsh(normalised, k=count, which="LA", v0=start, tol=1e-8)
        order = np.argsort(values)[::-1]
        values, vectors = values[order], vectors[:, order]
    return np.clip(1.0 - values, 0.0, 2.0), vectors * inv_sqrt[:, None]


def _amg_spectrum(normalised: sp.csr_matrix, degree: np.ndarray, count: int, random_state: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` smallest eigenvalues (ascending) and eigenvectors of ``I - normalised`` by LOBPCG
    with a smoothed-aggregation AMG preconditioner (built on the Laplacian shifted by 1e-5, which
    is singular)."""
    import warnings

    import pyamg
    from scipy.sparse.linalg import lobpcg

    n = normalised.shape[0]
    laplacian = (sp.eye(n, format="csr") - normalised).tocsr()
    shifted = (laplacian + 1e-5 * sp.eye(n, format="csr")).tocsr()
    preconditioner = pyamg.smoothed_aggregation_solver(shifted).aspreconditioner()
    start = np.random.default_rng(random_state).standard_normal((n, count))
    start[:, 0] = np.sqrt(degree)  # the exact first eigenvector of a connected graph
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not reaching the requested tolerance": the result is still the best found
        values, vectors = lobpcg(laplacian, start, M=preconditioner, tol=AMG_TOL, largest=False, maxiter=200)
    order = np.argsort(values)
    return values[order], vectors[:, order]


EIGENGAP_FLOOR = 0.1  # the floor of the relative eigengap, as a share of the median eigenvalue considered


def eigengap(eigenvalues: np.ndarray, max_clusters: int) -> int:
    """The number of clusters k (1..max_clusters) at the largest relative gap between eigenvalues.

    k maximises ``(lambda_k + eps) / (lambda_{k-1} + eps)`` over the smallest Laplacian
    eigenvalues, with ``eps`` = ``EIGENGAP_FLOOR`` x their median. The plain difference
    ``lambda_k - lambda_{k-1}`` misleads on kNN graphs: inside one cluster of pictures that vary
    smoothly, the eigenvalues climb steadily to large values, and a step between two of them can
    outgrow the jump from the near-zero eigenvalues (one per well-separated cluster) to the
    first within-cluster one. Relative to the eigenvalues' own size, that jump stands out; the
    floor keeps the ratio finite after the exact zero eigenvalue of a connected graph.
    """
    values = np.clip(np.asarray(eigenvalues[:max_clusters + 1], dtype=np.float64), 0, None)
    if len(values) < 2:
        return 1
    eps = max(EIGENGAP_FLOOR * float(np.median(values)), 1e-12)
    ratios = (values[1:] + eps) / (values[:-1] + eps)
    return int(np.argmax(ratios)) + 1


def spectral_result(features: np.ndarray, n_clusters: int | None = None, n_neighbors: int = 10,
                    max_clusters: int = 10, random_state: int = 0, neighbors: str = "auto") -> SpectralResult:
    """Cluster the rows of ``features`` [n, d]; see the module docstring for the steps.

    Args:
        features: one row per point (here: a downsampled, normalised explanation map).
        n_clusters: fixed number of clusters; None picks it by the eigengap (at most ``max_clusters``).
        n_neighbors: neighbours per point in the affinity graph.
        max_clusters: the largest number of clusters the eigengap may choose.
        random_state: seeds the eigensolver's start vector, the approximate search and k-means.
        neighbors: the neighbour search: "auto", "exact" or "approximate" (``knn_search``).
    """
    features = np.asarray(features)
    n = len(features)
    if n < 3:
        zeros = np.zeros(n)
        return SpectralResult(np.zeros(n, dtype=np.int64), 1, np.zeros(min(n, 1)), zeros[:, None], zeros, 0)
    exact = neighbors == "exact" or (neighbors == "auto" and n < EXACT_LIMIT)
    features = features.astype(np.float64 if exact else np.float32, copy=False)  # float32 halves memory at scale
    k = min(n_neighbors, n - 1)
    affinity = knn_affinity(features, k, method=neighbors, random_state=random_state)
    wanted = min(n - 1, max(max_clusters, n_clusters or 1) + 1)
    eigenvalues, vectors = laplacian_spectrum(affinity, wanted, random_state)
    del affinity
    chosen = int(n_clusters) if n_clusters is not None else eigengap(eigenvalues, min(max_clusters, wanted - 1))
    chosen = max(1, min(chosen, n))
    if chosen == 1:
        labels = np.zeros(n, dtype=np.int64)
        centre_distance = np.linalg.norm(vectors[:, :1] - vectors[:, :1].mean(0), axis=1)
    else:
        rows = vectors[:, :chosen]
        rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        labels, centres = _kmeans(rows, chosen, random_state)
        centre_distance = np.linalg.norm(rows - centres[labels], axis=1)
        order = np.argsort(-np.bincount(labels, minlength=chosen), kind="stable")
        labels = np.argsort(order)[labels]  # cluster 0 is the largest
    return SpectralResult(labels, chosen, eigenvalues, vectors, centre_distance, k)


def _kmeans(rows: np.ndarray, clusters: int, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, centres) of k-means with 10 restarts; above ``KMEANS_SAMPLE`` rows the restarts run on
    a seeded sample and the best centres are refined by Lloyd iterations on every row."""
    from sklearn.cluster import KMeans

    if len(rows) <= KMEANS_SAMPLE:
        fitted = KMeans(clusters, n_init=10, random_state=random_state).fit(rows)
        return fitted.labels_.astype(np.int64), fitted.cluster_centers_
    sample = np.random.default_rng(random_state).choice(len(rows), KMEANS_SAMPLE, replace=False)
    start = KMeans(clusters, n_init=10, random_state=random_state).fit(rows[np.sort(sample)]).cluster_centers_
    fitted = KMeans(clusters, init=start, n_init=1, random_state=random_state).fit(rows)
    return fitted.labels_.astype(np.int64), fitted.cluster_centers_


def spectral_clusters(maps, n_clusters: int | None = None, *, n_neighbors: int = 10, max_clusters: int = 10,
                      normalize: bool = False, neighbors: str = "auto", random_state: int = 0) -> np.ndarray:
    """Cluster precomputed maps (or any feature rows) as SpRAy does: one cluster id per row.

    No model is needed: ``maps`` may come from anywhere (another library's attributions, saved
    explanation shards). The steps are those of ``ng.strategies`` (see the module docstring):
    a sparse kNN affinity with local scaling, the normalised Laplacian's eigenvectors, the
    number of clusters at the largest relative eigengap, k-means on the embedding. Near-linear
    in the number of rows (an approximate neighbour search above ``EXACT_LIMIT`` rows).

    Args:
        maps: array-like [n, ...] (numpy or torch): each row is flattened, so maps [n, h, w],
            [n, c, h, w] and feature rows [n, d] all work. Downsample big maps first (SpRAy uses
            16x16 or so): the search costs grow with the row's length.
        n_clusters: a fixed number of clusters; None picks it by the eigengap.
        n_neighbors: neighbours per row in the affinity graph.
        max_clusters: the most clusters the eigengap may choose.
        normalize: divide each row by the sum of its absolute values first (L1, as ``strategies``
            does with its maps), so the clusters follow where a map lies, not how strong it is.
        neighbors: the neighbour search: "auto" (exact below ``EXACT_LIMIT`` rows, approximate
            above), "exact" or "approximate".
        random_state: seeds the eigensolver, the approximate search and k-means.

    Returns:
        int64 [n]: each row's cluster, 0 .. k-1, numbered by decreasing size (0 = the largest).

    Example:
        >>> import numpy as np, netgaze as ng
        >>> rng = np.random.default_rng(0)
        >>> maps = np.zeros((300, 8, 8)); maps[:150, :3, :3] = 1; maps[150:, 5:, 5:] = 1
        >>> maps += 0.1 * rng.random(maps.shape)
        >>> labels = ng.analyses.spectral_clusters(maps, normalize=True)
        >>> np.bincount(labels).tolist()
        [150, 150]
    """
    if hasattr(maps, "detach"):
        maps = maps.detach().cpu().numpy()
    features = np.asarray(maps)
    if features.ndim < 1:
        from netgaze.errors import ArgumentError

        raise ArgumentError("maps must be an array [n, ...] with one map (or feature row) per row")
    features = features.reshape(len(features), -1).astype(np.float32 if len(features) >= EXACT_LIMIT else np.float64)
    if not np.isfinite(features).all():
        from netgaze.errors import ArgumentError

        raise ArgumentError("maps hold NaN or infinite values")
    if normalize:
        features = features / np.maximum(np.abs(features).sum(1, keepdims=True), 1e-12)
    return spectral_result(features, n_clusters=n_clusters, n_neighbors=n_neighbors, max_clusters=max_clusters,
                           random_state=random_state, neighbors=neighbors).labels
