"""Speed bars of the embeddings (issue 7): t-SNE against scikit-learn, feature extraction overhead.

    .venv/bin/python benchmarks/bench_embed.py                   # everything (idle 2 cores: ~4 min)
    .venv/bin/python benchmarks/bench_embed.py --only extraction
    .venv/bin/python benchmarks/bench_embed.py --only tsne --reference   # + openTSNE's full schedule

1. 2-D t-SNE of 20,000 x 512 features with class structure (10 classes of 4 sub-clusters in
   a 32-dimensional latent space, mapped to 512 dimensions, noise, ReLU: not trivially
   separable, kNN accuracy of the features below 1): ``netgaze.embed.tsne`` with its
   defaults (PCA to 50, FFT gradients, 2 threads, 125 + 250 iterations at learning rate
   N/12) against ``sklearn.manifold.TSNE`` with its defaults (Barnes-Hut, 1,000 iterations,
   learning rate "auto", PCA init; n_jobs=2 for the neighbour search, OpenMP for the
   gradients) on the same features, in the same process, one after the other.
   Goal: netgaze >= 3x faster, leave-one-out 5-NN accuracy of its embedding within 2
   points of scikit-learn's. With ``--reference`` openTSNE's full default schedule
   (250 + 500 iterations) runs too, to show what the shorter schedule costs in quality.
2. ``netgaze.embed.features`` (last conv layer pooled, predictions) against a bare
   ``torch.no_grad()`` loop over the same DataLoader and model: goal within 10%.
   Interleaved rounds, medians.

Wall time AND process CPU time (all threads) are reported with the 1-minute load average
before and after each part: the machine is shared, so wall times are only as good as that.
Results: ``benchmarks/results/embed.json`` (rewritten after each part).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).parent))
from _timing import interleaved_medians, write_results  # noqa: E402

from netgaze.embed import features, knn_accuracy, tsne  # noqa: E402


def class_structured(n: int = 20_000, d: int = 512, classes: int = 10, sub: int = 4, noise: float = 1.8,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features [n, d] (float32, non-negative like pooled ReLU features) and labels [n]."""
    rng = np.random.default_rng(seed)
    latent = 32
    centres = rng.normal(0, 1.0, (classes, latent))
    sub_centres = centres[:, None] + rng.normal(0, 0.6, (classes, sub, latent))
    y = rng.integers(0, classes, n)
    s = rng.integers(0, sub, n)
    z = sub_centres[y, s] + rng.normal(0, noise, (n, latent))
    W = rng.normal(0, 1 / np.sqrt(latent), (latent, d))
    X = np.maximum(z @ W + rng.normal(0, 0.5, (n, d)), 0).astype(np.float32)
    return X, y


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn):
    load_before = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    return result, {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                    "load_1m_before": round(load_before, 1), "load_1m_after": round(os.getloadavg()[0], 1)}


def bench_tsne(results: dict, n: int, reference: bool, skip_sklearn: bool) -> None:
    from sklearn.manifold import TSNE

    X, y = class_structured(n)
    part: dict = {"n": n, "d": X.shape[1], "classes": 10}
    results["tsne"] = part
    part["knn_features"] = round(knn_accuracy(X, y), 4)
    print(f"t-SNE of {n} x {X.shape[1]} features; 5-NN accuracy of the features: {part['knn_features']:.4f}")

    runs = [("netgaze", "openTSNE FFT, PCA 50, 2 threads, 125 + 250 iterations (netgaze defaults for N >= 10,000)",
             lambda: tsne(X, 2, perplexity=30, random_state=0))]
    if not skip_sklearn:
        runs.append(("sklearn", "sklearn.manifold.TSNE defaults (Barnes-Hut, 1,000 iterations), n_jobs=2",
                     lambda: TSNE(2, perplexity=30, random_state=0, n_jobs=2).fit_transform(X)))
    if reference:
        runs.append(("opentsne_full", "openTSNE FFT, PCA 50, 2 threads, 250 + 500 iterations (openTSNE defaults)",
                     lambda: tsne(X, 2, perplexity=30, random_state=0, n_iter=500, early_exaggeration_iter=250,
                                  n_jobs=2)))
    for name, what, fn in runs:
        Y, timing = timed(fn)
        part[name] = {"settings": what, **timing, "knn_embedding": round(knn_accuracy(Y, y), 4)}
        print(f"  {name:14s} wall {timing['wall_s']:7.1f} s  cpu {timing['cpu_s']:7.1f} s  "
              f"5-NN {part[name]['knn_embedding']:.4f}  (load {timing['load_1m_before']} -> {timing['load_1m_after']})")
        write_results("embed", results)
    if "sklearn" in part:
        ours, theirs = part["netgaze"], part["sklearn"]
        part["speedup_wall"] = round(theirs["wall_s"] / ours["wall_s"], 2)
        part["speedup_cpu"] = round(theirs["cpu_s"] / ours["cpu_s"], 2)
        part["knn_gap_points"] = round(100 * (theirs["knn_embedding"] - ours["knn_embedding"]), 2)
        part["goal_met"] = part["speedup_wall"] >= 3 and part["knn_gap_points"] <= 2
        print(f"  speed-up: {part['speedup_wall']}x wall, {part['speedup_cpu']}x cpu; "
              f"kNN gap {part['knn_gap_points']} points (goal: >= 3x, <= 2 points): "
              f"{'met' if part['goal_met'] else 'NOT met'}")
        write_results("embed", results)


def bench_extraction(results: dict, images: int = 768, batch: int = 64, repeats: int = 5) -> None:
    from netgaze.lab.models import build_model

    torch.manual_seed(0)
    model = build_model("simple-cnn", num_classes=5, in_channels=3).eval()
    data = TensorDataset(torch.rand(images, 3, 64, 64), torch.randint(0, 5, (images,)))
    loader = DataLoader(data, batch_size=batch, shuffle=False)

    def bare():
        with torch.no_grad():
            for x, _ in loader:
                model(x)

    def ours():
        features(model, loader, -1, progress=False)

    load_before = os.getloadavg()[0]
    medians = interleaved_medians({"bare": bare, "netgaze": ours}, repeats=repeats)
    overhead = medians["netgaze"] / medians["bare"] - 1
    results["extraction"] = {
        "model": "simple-cnn", "images": images, "image_size": 64, "batch_size": batch, "repeats": repeats,
        "layer": "last conv (features.conv4), pooled + predictions",
        "bare_s": round(medians["bare"], 3), "netgaze_s": round(medians["netgaze"], 3),
        "bare_images_per_s": round(images / medians["bare"], 1),
        "netgaze_images_per_s": round(images / medians["netgaze"], 1),
        "overhead_pct": round(100 * overhead, 1), "goal_met": overhead <= 0.10,
        "load_1m_before": round(load_before, 1), "load_1m_after": round(os.getloadavg()[0], 1)}
    r = results["extraction"]
    print(f"feature extraction, {images} images 64x64, batch {batch}: bare {r['bare_images_per_s']} img/s, "
          f"netgaze {r['netgaze_images_per_s']} img/s, overhead {r['overhead_pct']}% "
          f"(goal <= 10%: {'met' if r['goal_met'] else 'NOT met'})")
    write_results("embed", results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("tsne", "extraction"))
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--reference", action="store_true", help="also run openTSNE's full default schedule")
    parser.add_argument("--skip-sklearn", action="store_true")
    args = parser.parse_args()
    results: dict = {"threads": torch.get_num_threads()}
    if args.only in (None, "extraction"):
        bench_extraction(results)
    if args.only in (None, "tsne"):
        bench_tsne(results, args.n, args.reference, args.skip_sklearn)


if __name__ == "__main__":
    main()
