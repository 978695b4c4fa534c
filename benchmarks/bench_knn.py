"""Which approximate nearest-neighbour library the strategies' affinity graph uses (issue 26).

    .venv/bin/python benchmarks/bench_knn.py [N]     # default 200000

On planted synthetic 16x16 maps (256 values a row, ``bench_strategies.planted``), each library
finds every row's 11 nearest rows (itself and 10 neighbours) with 2 threads: hnswlib (HNSW, the
settings of ``netgaze.analyses.spectral``), faiss-cpu (its HNSW index with the same settings, and
an inverted file IVF-Flat with 4 sqrt(n) lists, 8 probed), pynndescent (NN-descent; its first call
in a process includes numba's compilation, reported apart from a second call). Measured: wall
and CPU seconds, recall of the 10 true neighbours on 1,000 rows (brute force), and rows whose
neighbours include a map of another planted cluster (what breaks the clustering). Writes
``benchmarks/results/knn.json``.
"""
from __future__ import annotations

import sys
import time

import numpy as np
from _timing import print_table, write_results
from bench_strategies import planted

K = 11
THREADS = 2


def hnswlib_knn(x: np.ndarray) -> np.ndarray:
    import hnswlib

    from netgaze.analyses import spectral

    index = hnswlib.Index(space="l2", dim=x.shape[1])
    index.init_index(max_elements=len(x), ef_construction=spectral.HNSW_EF_CONSTRUCTION, M=spectral.HNSW_M,
                     random_seed=0)
    index.set_num_threads(THREADS)
    index.add_items(x, np.arange(len(x)))
    index.set_ef(spectral.HNSW_EF)
    return index.knn_query(x, k=K)[0]


def faiss_hnsw_knn(x: np.ndarray) -> np.ndarray:
    import faiss

    from netgaze.analyses import spectral

    faiss.omp_set_num_threads(THREADS)
    index = faiss.IndexHNSWFlat(x.shape[1], spectral.HNSW_M)
    index.hnsw.efConstruction = spectral.HNSW_EF_CONSTRUCTION
    index.add(x)
    index.hnsw.efSearch = spectral.HNSW_EF
    return index.search(x, K)[1]


def faiss_ivf_knn(x: np.ndarray) -> np.ndarray:
    import faiss

    faiss.omp_set_num_threads(THREADS)
    lists = int(4 * np.sqrt(len(x)))
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(x.shape[1]), x.shape[1], lists)
    index.train(x[np.random.default_rng(0).choice(len(x), min(len(x), 40 * lists), replace=False)])
    index.add(x)
    index.nprobe = 8
    return index.search(x, K)[1]


def pynndescent_knn(x: np.ndarray) -> np.ndarray:
    from pynndescent import NNDescent

    return NNDescent(x, n_neighbors=K, random_state=0, n_jobs=THREADS, low_memory=True).neighbor_graph[0]


def exact_rows(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    norms = (x.astype(np.float64) ** 2).sum(1)
    out = []
    for lo in range(0, len(rows), 100):
        q = x[rows[lo:lo + 100]].astype(np.float64)
        d = norms[None] - 2 * q @ x.T.astype(np.float64) + (q ** 2).sum(1)[:, None]
        out.append(np.argsort(d, axis=1)[:, :K])
    return np.concatenate(out)


def main(n: int) -> None:
    x, truth = planted(n)
    x = np.ascontiguousarray(x, dtype=np.float32)
    rows = np.random.default_rng(1).choice(n, 1000, replace=False)
    exact = exact_rows(x, rows)
    libraries = {"hnswlib (HNSW)": hnswlib_knn, "faiss-cpu (HNSW)": faiss_hnsw_knn,
                 "faiss-cpu (IVF-Flat)": faiss_ivf_knn, "pynndescent (first call)": pynndescent_knn,
                 "pynndescent (second call)": pynndescent_knn}
    results, table = {}, []
    for name, knn in libraries.items():
        start, cpu = time.perf_counter(), time.process_time()
        found = knn(x)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        recall = np.mean([len(set(exact[i, 1:]) & set(found[r])) / (K - 1) for i, r in enumerate(rows)])
        crossing = int((truth[found] != truth[:, None]).any(1).sum())
        results[name] = {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "recall_at_10": round(float(recall), 4),
                         "rows_with_a_neighbour_in_another_cluster": crossing}
        table.append([name, f"{wall:.1f}", f"{cpu:.1f}", f"{recall:.4f}", crossing])
        print_table(table, ["library", "wall s", "CPU s", "recall@10", "rows crossing clusters"])
    print("results:", write_results("knn", {"pictures": n, "dim": int(x.shape[1]), "threads": THREADS,
                                            "libraries": results}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
