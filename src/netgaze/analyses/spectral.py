"""Spectral clustering of explanation maps (the maths of SpRAy), sparse from end to end.

``spectral_clusters(features)`` builds a symmetric k-nearest-neighbour affinity with locally
scaled Gaussian weights (Zelnik-Manor and Perona 2004), embeds the points with the leading
eigenvectors of the normalised affinity ``D^-1/2 W D^-1/2`` (the smallest of the normalised
Laplacian ``I - D^-1/2 W D^-1/2``), picks the number of clusters at the largest gap between
consecutive Laplacian eigenvalues (the eigengap), and runs k-means on the row-normalised
embedding (Ng, Jordan and Weiss 2001). The affinity holds ``n * n_neighbors`` entries at most
(never a dense n x n matrix); eigenvectors come from ARPACK (``scipy.sparse.linalg.eigsh``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh

DENSE_LIMIT = 400  # below this many points a dense eigendecomposition is faster and exact


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


def knn_affinity(features: np.ndarray, n_neighbors: int = 10, scale_neighbor: int = 7) -> sp.csr_matrix:
    """Symmetric sparse affinity [n, n]: ``exp(-d_ij^2 / (s_i s_j))`` between k-nearest neighbours.

    ``s_i`` is point i's distance to its ``scale_neighbor``-th neighbour (local scaling), so dense
    and sparse regions are treated alike. The graph is made symmetric by keeping an edge that
    either end lists (the larger weight).
    """
    from sklearn.neighbors import NearestNeighbors

    n = len(features)
    k = min(n_neighbors, n - 1)
    distances, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    distances, neighbours = distances[:, 1:], neighbours[:, 1:]  # drop each point itself
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
    else:
        start = np.random.default_rng(random_state).random(n) + 0.5  # fixed start: the same run, the same vectors
        values, vectors = eigsh(normalised, k=count, which="LA", v0=start, tol=1e-8)
        order = np.argsort(values)[::-1]
        values, vectors = values[order], vectors[:, order]
    return np.clip(1.0 - values, 0.0, 2.0), vectors * inv_sqrt[:, None]


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


def spectral_clusters(features: np.ndarray, n_clusters: int | None = None, n_neighbors: int = 10,
                      max_clusters: int = 10, random_state: int = 0) -> SpectralResult:
    """Cluster the rows of ``features`` [n, d]; see the module docstring for the steps.

    Args:
        features: one row per point (here: a downsampled, normalised explanation map).
        n_clusters: fixed number of clusters; None picks it by the eigengap (at most ``max_clusters``).
        n_neighbors: neighbours per point in the affinity graph.
        max_clusters: the largest number of clusters the eigengap may choose.
        random_state: seeds the eigensolver's start vector and k-means.
    """
    from sklearn.cluster import KMeans

    features = np.asarray(features, dtype=np.float64)
    n = len(features)
    if n < 3:
        zeros = np.zeros(n)
        return SpectralResult(np.zeros(n, dtype=np.int64), 1, np.zeros(min(n, 1)), zeros[:, None], zeros, 0)
    k = min(n_neighbors, n - 1)
    affinity = knn_affinity(features, k)
    wanted = min(n - 1, max(max_clusters, n_clusters or 1) + 1)
    eigenvalues, vectors = laplacian_spectrum(affinity, wanted, random_state)
    chosen = int(n_clusters) if n_clusters is not None else eigengap(eigenvalues, min(max_clusters, wanted - 1))
    chosen = max(1, min(chosen, n))
    if chosen == 1:
        labels = np.zeros(n, dtype=np.int64)
        centre_distance = np.linalg.norm(vectors[:, :1] - vectors[:, :1].mean(0), axis=1)
    else:
        rows = vectors[:, :chosen]
        rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        kmeans = KMeans(chosen, n_init=10, random_state=random_state).fit(rows)
        labels = kmeans.labels_.astype(np.int64)
        centre_distance = np.linalg.norm(rows - kmeans.cluster_centers_[labels], axis=1)
        order = np.argsort(-np.bincount(labels, minlength=chosen), kind="stable")
        labels = np.argsort(order)[labels]  # cluster 0 is the largest
    return SpectralResult(labels, chosen, eigenvalues, vectors, centre_distance, k)
