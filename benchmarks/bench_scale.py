"""Dataset-wide analyses at ImageNet scale (issue 26): a million pictures on 2 cores.

    .venv/bin/python benchmarks/bench_scale.py                      # every part, the sizes below
    .venv/bin/python benchmarks/bench_scale.py --parts cluster --cluster 20000 200000
    .venv/bin/python benchmarks/bench_scale.py --parts study --study 100000

Every measurement runs in a fresh subprocess; its peak memory is the kernel's high-water mark of
its resident memory (``VmHWM``, like ``ru_maxrss`` but without the parent's pages at the fork),
imports included (torch and friends: about 0.5 GB):

- ``cluster``: strategies on N synthetic 16x16 maps of one class (``bench_strategies``' three
  planted strategies, generated in chunks as float32): the clustering (``spectral_result``:
  approximate 10-nearest-neighbour graph, AMG-preconditioned eigenvectors, eigengap, k-means),
  the per-cluster summaries and the t-SNE of 5,000 points, as ``ng.strategies`` runs them after
  the explanations. Wall and CPU seconds, peak memory, clusters found and their agreement with
  the planted truth (ARI); the growth exponent of CPU time between sizes.
- ``agreement``: at 50k maps, the clusters with the approximate search against the exact one
  (adjusted Rand index; the bar is 0.95).
- ``read``: strategies' reading of N maps from ``explain_dataset`` shards (memory-mapped, a chunk
  at a time) into the small maps it clusters: peak memory less those maps' own bytes stays flat.
- ``dissect`` / ``top``: ``ng.dissect`` (2 conv layers, 4 concepts) and ``ng.top_examples`` over
  N synthetic 1x16x16 pictures with object masks kept in a run's tensor file (memory-mapped):
  peak memory should not grow with N.
- ``study``: ``netgaze study strategies`` on a run of N synthetic pictures (``ng.RunWriter``, a
  small CNN trained a few hundred steps): explanations of every picture, reading, clustering,
  figures; wall, CPU (the process and its children) and peak memory.

Writes ``benchmarks/results/scale.json`` (parts measured earlier are kept).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CENTRES = [(1.5, 1.5), (8.0, 8.0), (13.0, 3.0)]


def planted_maps(n: int, seed: int = 0, res: int = 16, chunk: int = 50_000) -> tuple[np.ndarray, np.ndarray]:
    """``bench_strategies.planted`` made in chunks (float32 [n, res*res]) so a million fit in 1 GB."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(3, size=n, p=[0.3, 0.4, 0.3])
    maps = np.empty((n, res * res), dtype=np.float32)
    yy, xx = np.mgrid[:res, :res]
    for lo in range(0, n, chunk):
        part = truth[lo:lo + chunk]
        centres = np.array(CENTRES)[part] + rng.uniform(-1.5, 1.5, (len(part), 2))
        d2 = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
        block = np.exp(-d2 / 4.0) + 0.005 * rng.random((len(part), res, res))
        block /= block.sum((1, 2), keepdims=True)
        maps[lo:lo + len(part)] = block.reshape(len(part), -1)
    return maps, truth


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM: the high-water mark of its own address space;
    ``ru_maxrss`` would also count the parent's memory at the fork, kept across exec on Linux)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------- parts (children)

def part_cluster(n: int) -> dict:
    from sklearn.metrics import adjusted_rand_score

    from netgaze.analyses.spectral import spectral_result
    from netgaze.analyses.strategies import _summaries, _tsne

    maps, truth = planted_maps(n)
    start, cpu = time.perf_counter(), time.process_time()
    spec = spectral_result(maps, max_clusters=8, random_state=0)
    cluster_wall, cluster_cpu = time.perf_counter() - start, time.process_time() - cpu
    nan = np.full(n, np.nan, dtype=np.float32)
    small = maps.reshape(n, 16, 16)
    _summaries(spec, np.arange(n), small, np.ones(n, dtype=bool), nan, nan, nan, None, 8)
    _tsne(spec, 5000, 0)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"pictures": n, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "cluster_wall_s": round(cluster_wall, 1),
            "cluster_cpu_s": round(cluster_cpu, 1), "n_clusters": spec.n_clusters,
            "ari_vs_planted": round(float(adjusted_rand_score(truth, spec.labels)), 4), "peak_rss_mb": round(peak_mb())}


def part_agreement(n: int) -> dict:
    from sklearn.metrics import adjusted_rand_score

    from netgaze.analyses.spectral import spectral_result

    maps, truth = planted_maps(n)
    out = {"pictures": n}
    labels = {}
    for search in ("exact", "approximate"):
        start, cpu = time.perf_counter(), time.process_time()
        spec = spectral_result(maps, max_clusters=8, random_state=0, neighbors=search)
        labels[search] = spec.labels
        out[search] = {"wall_s": round(time.perf_counter() - start, 1), "cpu_s": round(time.process_time() - cpu, 1),
                       "n_clusters": spec.n_clusters,
                       "ari_vs_planted": round(float(adjusted_rand_score(truth, spec.labels)), 4)}
    out["ari_approximate_vs_exact"] = round(float(adjusted_rand_score(labels["exact"], labels["approximate"])), 4)
    return out


def write_shards(n: int, folder: Path, shard_size: int = 1024) -> None:
    """``explain_dataset``'s files for N planted 16x16 maps (what a finished run leaves)."""
    import torch

    from netgaze.analyses.dataset_explanations import _write_index, _write_shard, shard_name

    config = {"method": "gradcam", "layer": "synthetic", "target": "'label'", "output": "None",
              "shard_size": shard_size, "num_images": n}
    maps, _ = planted_maps(n)
    for s in range(-(-n // shard_size)):
        rows = range(s * shard_size, min(n, (s + 1) * shard_size))
        _write_shard(folder / shard_name(s), {"maps": torch.from_numpy(maps[rows.start:rows.stop]).view(-1, 16, 16),
                                              "indices": torch.arange(rows.start, rows.stop),
                                              "predictions": torch.zeros(len(rows), dtype=torch.int64),
                                              "targets": torch.zeros(len(rows), dtype=torch.int64),
                                              "labels": torch.zeros(len(rows), dtype=torch.int64)}, config)
    _write_index(folder, config, -(-n // shard_size))


def part_read(n: int, folder: str) -> dict:
    from netgaze.analyses.strategies import _read_shards

    class Plain:  # a dataset without masks or markers: only its length is read
        def __len__(self):
            return n

    before = peak_mb()
    start, cpu = time.perf_counter(), time.process_time()
    small, *_ = _read_shards(Path(folder), np.arange(n), Plain(), 16, np.arange(n))
    kept_mb = small.nbytes / 2**20
    return {"pictures": n, "wall_s": round(time.perf_counter() - start, 1), "cpu_s": round(time.process_time() - cpu, 1),
            "peak_rss_mb": round(peak_mb()), "peak_before_mb": round(before), "small_maps_mb": round(kept_mb),
            "peak_less_small_maps_mb": round(peak_mb() - kept_mb)}


def blob_pictures(n: int, seed: int = 0, chunk: int = 100_000):
    """N 1x16x16 uint8 pictures of a blob at one of the planted centres, its mask, a label per centre pair."""
    import torch

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:16, :16]
    images = torch.empty(n, 1, 16, 16, dtype=torch.uint8)
    masks = torch.empty(n, 16, 16, dtype=torch.bool)
    truth = rng.choice(3, size=n)
    for lo in range(0, n, chunk):
        part = truth[lo:lo + chunk]
        centres = np.array(CENTRES)[part] + rng.uniform(-1.5, 1.5, (len(part), 2))
        d2 = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
        blob = np.exp(-d2 / 4.0)
        noisy = np.clip(blob + 0.1 * rng.random(blob.shape), 0, 1)
        images[lo:lo + len(part), 0] = torch.from_numpy((noisy * 255).astype(np.uint8))
        masks[lo:lo + len(part)] = torch.from_numpy(blob > 0.3)
    labels = torch.from_numpy((truth == 2).astype(np.int64))  # class 1: the blob at (13, 3)
    return images, labels, masks


def write_tensor_file(n: int, path: Path) -> None:
    from netgaze.lab.datasets.tensor_file import tensor_file_bytes

    images, labels, masks = blob_pictures(n)
    path.write_bytes(tensor_file_bytes({"test": (images, labels, masks)}, ["left", "right"]))


def tiny_model():
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2)).eval()


def part_dissect(n: int, path: str) -> dict:
    import torch

    from netgaze.analyses.dissect import dissect
    from netgaze.lab.datasets.tensor_file import tensor_dataset

    torch.set_num_threads(2)
    data = tensor_dataset(path, "test")
    start, cpu = time.perf_counter(), time.process_time()
    found = dissect(tiny_model(), data, batch_size=512, progress=False)
    return {"pictures": n, "wall_s": round(time.perf_counter() - start, 1), "cpu_s": round(time.process_time() - cpu, 1),
            "peak_rss_mb": round(peak_mb()), "detectors": int(sum(l.detector.sum() for l in found.layers))}


def part_top(n: int, path: str) -> dict:
    import torch

    from netgaze.analyses.top_examples import top_examples
    from netgaze.lab.datasets.tensor_file import tensor_dataset

    torch.set_num_threads(2)
    data = tensor_dataset(path, "test")
    start, cpu = time.perf_counter(), time.process_time()
    top_examples(tiny_model(), data, "2", k=9, batch_size=1024, progress=False)
    return {"pictures": n, "wall_s": round(time.perf_counter() - start, 1), "cpu_s": round(time.process_time() - cpu, 1),
            "peak_rss_mb": round(peak_mb())}


def build_run(n: int, folder: Path) -> None:
    """A run folder of N synthetic pictures (the test split), a small CNN trained 300 steps on 20k others."""
    import torch
    import torch.nn.functional as F

    import netgaze as ng
    from netgaze.lab.datasets.base import TensorImageDataset
    from netgaze.lab.models.registry import build_from_spec

    torch.manual_seed(0)
    args = {"num_classes": 2, "in_channels": 1, "channels": [8, 16, 16, 16], "mean": [0.2], "std": [0.3]}
    model = build_from_spec("simple-cnn", args)
    images, labels, _ = blob_pictures(20_000, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(300):
        pick = torch.randint(0, len(images), (128,))
        loss = F.cross_entropy(model(images[pick].float() / 255), labels[pick])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    images, labels, _ = blob_pictures(n, seed=2)
    test = TensorImageDataset(images, labels, ["left", "right"], name="blobs", split="test", mean=[0.2], std=[0.3])
    with ng.RunWriter(folder, model=model, build="simple-cnn", build_args=args, data={"test": test},
                      max_data_mb=8192) as writer:
        writer.save(1, model, metrics={"test_acc": 1.0})


def part_study(n: int, folder: str) -> dict:
    """``netgaze study strategies`` in a child process: wall, CPU of the children, their peak memory."""
    peak_file = Path(folder) / "peak.txt"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    code = ("import atexit, runpy, sys; sys.path.insert(0, %r); from bench_scale import peak_mb; "
            "atexit.register(lambda: open(%r, 'w').write(str(peak_mb()))); "
            "sys.argv = ['netgaze', 'study', 'strategies', %r, '--quiet', '--maps', %r]; "
            "runpy.run_module('netgaze', run_name='__main__')") % (str(HERE), str(peak_file), folder,
                                                                    str(Path(folder) / "maps"))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    manifest = json.loads((Path(folder) / "artifacts" / "strategies" / "strategies.json").read_text())
    classes = {c: {"pictures": len(e["indices"]), "n_clusters": e["n_clusters"]}
               for c, e in manifest["classes"].items()}
    return {"pictures": n, "wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_mb": round(float(peak_file.read_text())), "classes": classes}


# ---------------------------------------------------------------------------------------------- the parent

def growth_exponents(found: dict) -> dict:
    """CPU-time growth exponents between consecutive sizes: the whole step (with the t-SNE of at most
    5,000 points, a constant) and the clustering alone."""
    sizes = sorted(int(n) for n in found)
    out = {}
    for key, name in (("cpu_s", "cpu_growth_exponents"), ("cluster_cpu_s", "cluster_cpu_growth_exponents")):
        out[name] = {f"{a}-{b}": round(float(np.log(found[str(b)][key] / found[str(a)][key]) / np.log(b / a)), 2)
                     for a, b in zip(sizes, sizes[1:])}
    return out


def child(part: str, n: int, *extra: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", part, str(n), *extra], capture_output=True, text=True,
                          cwd=HERE, env={**os.environ, "MPLBACKEND": "Agg"})
    if done.returncode != 0:
        raise RuntimeError(f"{part} {n}: {done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{part} {n}: {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["cluster", "agreement", "read", "dissect", "top", "study"])
    parser.add_argument("--cluster", nargs="+", type=int, default=[20_000, 200_000, 1_000_000])
    parser.add_argument("--agreement", type=int, default=50_000)
    parser.add_argument("--stream", nargs="+", type=int, default=[100_000, 1_000_000],
                        help="sizes of read, dissect, top")
    parser.add_argument("--study", nargs="+", type=int, default=[1_000_000])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        part, n, *extra = args.child
        functions = {"cluster": part_cluster, "agreement": part_agreement, "read": part_read, "dissect": part_dissect,
                     "top": part_top, "study": part_study}
        print(json.dumps(functions[part](int(n), *extra)))
        return
    sys.path.insert(0, str(HERE))
    from _timing import write_results

    path = HERE / "results" / "scale.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results.pop("machine", None)
    if "cluster" in args.parts:
        found = {str(n): child("cluster", n) for n in args.cluster}
        sizes = sorted(int(n) for n in found)
        results["cluster"] = {"sizes": found, **growth_exponents(found)}
        print("growth:", growth_exponents(found))
    if "agreement" in args.parts:
        results["agreement"] = child("agreement", args.agreement)
    with tempfile.TemporaryDirectory(prefix="netgaze-scale-") as scratch:
        for part in ("read", "dissect", "top"):
            if part not in args.parts:
                continue
            rows = {}
            for n in args.stream:
                if part == "read":
                    folder = Path(scratch) / f"shards-{n}"
                    if not folder.exists():
                        folder.mkdir()
                        write_shards(n, folder)
                    rows[str(n)] = child("read", n, str(folder))
                else:
                    file = Path(scratch) / f"pictures-{n}.safetensors"
                    if not file.exists():
                        write_tensor_file(n, file)
                    rows[str(n)] = child(part, n, str(file))
            results[part] = rows
        if "study" in args.parts:
            rows = {}
            for n in args.study:
                folder = Path(scratch) / f"run-{n}"
                build_run(n, folder)
                rows[str(n)] = child("study", n, str(folder))
            results["study"] = rows
    print("results:", write_results("scale", results))


if __name__ == "__main__":
    main()
