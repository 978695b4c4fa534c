"""Projections [N, D] -> [N, dims]: PCA, t-SNE (openTSNE), UMAP (optional extra).

Every function takes and returns float arrays and a ``random_state``; the same input
and seed give the same output (t-SNE and UMAP: on the same machine and thread count).
"""
from __future__ import annotations

import os
import sys

import numpy as np

from netgaze.errors import ArgumentError, warn_user

METHODS = ("pca", "tsne", "umap")
PROGRESS_EVERY = 10  # t-SNE iterations between progress-bar updates
FFT_FROM = 10_000   # 2-D t-SNE: FFT gradients from this many points on, Barnes-Hut below


def pca(X: np.ndarray, dims: int = 2, random_state: int = 0) -> np.ndarray:
    """Principal components of the centred data: [N, D] -> float32 [N, dims].

    Component signs are fixed (largest loading of each component positive) so that
    results do not flip between library versions or solvers.
    """
    from sklearn.decomposition import PCA

    X = _as_matrix(X)
    dims = _check_dims(dims, X, "pca")
    model = PCA(n_components=dims, random_state=random_state)
    Y = model.fit_transform(X)
    signs = np.sign(model.components_[np.arange(dims), np.abs(model.components_).argmax(1)])
    return (Y * np.where(signs == 0, 1, signs)).astype(np.float32)


def tsne(X: np.ndarray, dims: int = 2, perplexity: float = 30.0, random_state: int = 0, *,
         pca_dims: int | None = 50, n_iter: int | None = None, early_exaggeration_iter: int | None = None,
         gradient: str = "auto", n_jobs: int | None = None, verbose: bool = False,
         progress: bool = False) -> np.ndarray:
    """t-SNE with openTSNE: [N, D] -> float32 [N, dims].

    The data are first reduced to ``pca_dims`` principal components (skipped when D is
    already that small or ``pca_dims`` is None), then embedded from a PCA
    initialisation. 2-D uses FFT-accelerated interpolation (O(N) per iteration) from
    10,000 points on and Barnes-Hut below (FFT has a fixed grid cost that makes it
    slower on small sets: seconds per 50 iterations for 200 points); openTSNE's FFT
    is 1-D/2-D only, so 3-D always uses Barnes-Hut (O(N log N), much slower on large N).

    Args:
        perplexity: effective number of neighbours; lowered to (N - 1) / 3 for tiny N.
        pca_dims: dimensions kept before t-SNE (None: none).
        n_iter: optimisation iterations after the early-exaggeration phase. None: 500
            (openTSNE's default) below 10,000 points, 250 from there on: the learning
            rate is N / 12 (openTSNE's "auto", Belkina et al. 2019), which converges in
            fewer iterations on large sets; ``benchmarks/bench_embed.py`` checks that the
            kNN accuracy of the result stays within 2 points of scikit-learn's.
        early_exaggeration_iter: iterations with exaggeration 12. None: 250 below
            10,000 points, 125 from there on.
        gradient: "auto" (the rule above), "fft" (2-D only) or "bh".
        n_jobs: threads for the neighbour search and the gradients; None: one below
            10,000 points (thread hand-offs cost more than they save there, and a lot on
            a busy machine), every core from there on.
        progress: a progress bar over the optimisation iterations (on stderr).
    """
    from openTSNE import TSNE

    X = _as_matrix(X)
    dims = _check_dims(dims, X, "tsne", max_dims=3)
    n = len(X)
    if n < 4:
        raise ArgumentError(f"t-SNE needs at least 4 points, got {n}")
    if pca_dims is not None and X.shape[1] > pca_dims and n > pca_dims:
        X = pca(X, pca_dims, random_state=random_state)
    limit = (n - 1) / 3
    if perplexity > limit:
        warn_user(f"perplexity {perplexity} is too large for {n} points; using {limit:.1f}")
        perplexity = limit
    if gradient == "auto":
        gradient = "fft" if dims <= 2 and n >= FFT_FROM else "bh"
    if gradient not in ("fft", "bh") or (gradient == "fft" and dims > 2):
        raise ArgumentError(f"gradient must be 'auto', 'bh' or (for 1-D/2-D) 'fft', got {gradient!r} for {dims}-D")
    large = n >= FFT_FROM
    n_iter = (250 if large else 500) if n_iter is None else n_iter
    early_exaggeration_iter = (125 if large else 250) if early_exaggeration_iter is None else early_exaggeration_iter
    if n_jobs is None:
        n_jobs = (os.cpu_count() or 1) if large else 1
    bar, callbacks = None, None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n_iter + early_exaggeration_iter, desc=f"t-SNE of {n} points", unit="it",
                   file=sys.stderr, dynamic_ncols=True, leave=False)

        def callbacks(iteration, error, embedding):  # openTSNE calls it every PROGRESS_EVERY iterations
            bar.update(PROGRESS_EVERY)
            bar.set_postfix(KL=f"{error:.3f}", refresh=False)
            return False
    model = TSNE(n_components=dims, perplexity=perplexity, initialization="pca",
                 negative_gradient_method=gradient,
                 n_iter=n_iter, early_exaggeration_iter=early_exaggeration_iter,
                 n_jobs=n_jobs, random_state=random_state, verbose=verbose,
                 callbacks=callbacks, callbacks_every_iters=PROGRESS_EVERY)
    try:
        Y = np.asarray(model.fit(X), dtype=np.float32)
        if bar is not None:
            bar.update(bar.total - bar.n)  # the last few iterations after the last callback
        return Y
    finally:
        if bar is not None:
            bar.close()


def umap(X: np.ndarray, dims: int = 2, n_neighbors: int = 15, min_dist: float = 0.1,
         random_state: int = 0) -> np.ndarray:
    """UMAP (umap-learn, optional: ``pip install netgaze[umap]``): [N, D] -> float32 [N, dims].

    A fixed ``random_state`` makes umap-learn run single-threaded (its rule).
    """
    try:
        import umap as umap_learn
    except ImportError as err:
        raise ImportError("UMAP needs the umap-learn package: pip install netgaze[umap] "
                          "(or pip install umap-learn)") from err
    X = _as_matrix(X)
    dims = _check_dims(dims, X, "umap")
    model = umap_learn.UMAP(n_components=dims, n_neighbors=min(n_neighbors, len(X) - 1),
                            min_dist=min_dist, random_state=random_state)
    return np.asarray(model.fit_transform(X), dtype=np.float32)


def project(X: np.ndarray, method: str = "tsne", dims: int = 2, random_state: int = 0,
            perplexity: float = 30.0, progress: bool = False) -> np.ndarray:
    """Dispatch to ``pca``, ``tsne`` or ``umap`` by name (what the CLI calls); ``progress``: t-SNE's bar."""
    if method == "pca":
        return pca(X, dims, random_state=random_state)
    if method == "tsne":
        return tsne(X, dims, perplexity=perplexity, random_state=random_state, progress=progress)
    if method == "umap":
        return umap(X, dims, random_state=random_state)
    raise ArgumentError(f"unknown projection {method!r}; valid: {', '.join(METHODS)}")


def _as_matrix(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ArgumentError(f"expected a feature matrix [N, D], got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ArgumentError("the features contain NaN or infinite values")
    return X


def _check_dims(dims: int, X: np.ndarray, method: str, max_dims: int | None = None) -> int:
    if dims < 1 or (max_dims is not None and dims > max_dims):
        raise ArgumentError(f"{method}: dims must be between 1 and {max_dims or 'D'}, got {dims}")
    if dims > min(X.shape):
        raise ArgumentError(f"{method}: cannot project {X.shape[0]} points of {X.shape[1]} dimensions "
                            f"to {dims} dimensions")
    return dims


__all__ = ["pca", "tsne", "umap", "project", "METHODS"]
