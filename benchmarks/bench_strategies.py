"""Strategies (SpRAy) at scale on synthetic maps: 1k, 10k and 50k pictures of one class (issue 16).

    .venv/bin/python benchmarks/bench_strategies.py [SIZES...]

Each picture's map is a 16x16 L1-normalised blob around one of three planted strategy centres
(one a corner tag, two on the object), jittered, with noise. Timed per size: the clustering
(sparse 10-nearest-neighbour affinity: exact below 10k maps, HNSW above; ARPACK eigenvectors,
LOBPCG + AMG for pieces above 20k; eigengap, k-means; ``bench_scale.py`` goes to a million) and the t-SNE of
the spectral embedding (at most 5,000 points, ``strategies``' default ``tsne_limit``); checked:
the number of clusters the eigengap picks and the purity of the clusters. The affinity never
holds more than ``2 * 10 * n`` entries. Writes ``benchmarks/results/strategies.json``.
"""
from __future__ import annotations

import resource
import sys
import time

import numpy as np
from _timing import print_table, write_results

from netgaze.analyses.spectral import spectral_result
from netgaze.embed.project import tsne

CENTRES = [(1.5, 1.5), (8.0, 8.0), (13.0, 3.0)]


def planted(n: int, seed: int = 0, res: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.choice(3, size=n, p=[0.3, 0.4, 0.3])
    centres = np.array(CENTRES)[truth] + rng.uniform(-1.5, 1.5, (n, 2))
    yy, xx = np.mgrid[:res, :res]
    d2 = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
    maps = np.exp(-d2 / 4.0) + 0.005 * rng.random((n, res, res))
    maps /= maps.sum((1, 2), keepdims=True)
    return maps.reshape(n, -1).astype(np.float32), truth


def main(sizes: list[int]) -> None:
    rows, results = [], {}
    for n in sizes:
        features, truth = planted(n)
        start = time.perf_counter()
        cpu = time.process_time()
        result = spectral_result(features, random_state=0)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        purity = sum(np.bincount(truth[result.labels == k]).max() for k in range(result.n_clusters)) / n
        rows_tsne = np.sort(np.random.default_rng(0).choice(n, min(n, 5000), replace=False))
        start = time.perf_counter()
        tsne(result.embedding[rows_tsne, 1:], perplexity=30.0, random_state=0)
        tsne_seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        results[n] = {"cluster_s": round(seconds, 2), "cluster_cpu_s": round(cpu_seconds, 2),
                      "tsne_s": round(tsne_seconds, 2), "n_clusters": result.n_clusters,
                      "purity": round(float(purity), 4), "peak_rss_mb": round(peak_mb)}
        rows.append([n, f"{seconds:.1f}", f"{cpu_seconds:.1f}", f"{tsne_seconds:.1f}", result.n_clusters,
                     f"{purity:.3f}", f"{peak_mb:.0f}"])
        print_table(rows, ["pictures", "cluster s", "cluster CPU s", "t-SNE s", "clusters", "purity", "peak MB"])
    growth = {}
    for a, b in zip(sizes, sizes[1:]):  # the first size also pays one-time costs (imports, thread pools)
        exponent = np.log(results[b]["cluster_cpu_s"] / max(results[a]["cluster_cpu_s"], 1e-3)) / np.log(b / a)
        growth[f"{a}-{b}"] = round(float(exponent), 2)
        print(f"clustering CPU time grows as n^{exponent:.2f} from {a} to {b}")
    results["growth_exponents"] = growth
    print("results:", write_results("strategies", {"sizes": results}))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 10000, 50000])
