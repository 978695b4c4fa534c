"""S8: latent studies of a trained VAE run: traversal, interpolation, style mixing, embedding.

Every function takes a run (``netgaze.lab.runs.Run`` or folder path), optionally the test
pictures (default: the run's test split), writes ``RUN/artifacts/<name>.png`` and a
manifest ``<name>.json``, and returns a ``StudyResult`` whose ``maps`` hold the tensors.
Latent codes of pictures are the MEANS of q(z|x). Imputation lives in
``netgaze.studies.imputation``; ``latent_study`` runs everything that applies.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from netgaze import viz
from netgaze.errors import ArgumentError
from netgaze.plots import plain_text
from netgaze.studies.common import figure_to_array
from netgaze.studies.latent_common import VAERun, tile_scale, tiles
from netgaze.studies.layers import StudyResult


def latent_traversal(run: Any, *, dataset: Any = None, index: int | None = 0, steps: int = 9,
                     span: float = 3.0, max_dims: int = 20) -> StudyResult:
    """Decode a sweep of each latent dimension, the others held fixed.

    Row ``d`` sets ``z[d]`` to ``linspace(-span, span, steps)`` (prior units) with the
    other units at the code of test picture ``index`` (None: all zero). A 2-D latent
    also gets ``latent_grid.png``, the decoder over the square ``[-span, span]^2``.
    A conditional VAE decodes with the picture's label (label 0 when ``index`` is None).

    Returns:
        ``maps["traversal"]`` [dims, steps, C, H, W] (and ``maps["grid"]`` [steps, steps, C, H, W]).
    """
    vr = VAERun(run, dataset)
    latent = vr.model.latent
    dims = min(latent, max_dims)
    label = int(vr.labels[index]) if index is not None else 0
    base = vr.encode(vr.images[index:index + 1], vr.labels[index:index + 1])[0] if index is not None \
        else torch.zeros(latent)
    values = torch.linspace(-span, span, steps)
    z = base.repeat(dims, steps, 1)
    for d in range(dims):
        z[d, :, d] = values
    pictures = vr.decode(z.reshape(-1, latent), label).reshape(dims, steps, *vr.images.shape[1:])
    picture = viz.grid(tiles(pictures.flatten(0, 1)), ncols=steps, row_labels=[f"z{d}" for d in range(dims)],
                       col_labels=[f"{v:+.1f}" for v in values.tolist()], scale=tile_scale(vr.images))
    maps = {"traversal": pictures, "values": values, "base": base}
    start = f"the code of test picture {index}" if index is not None else "z = 0"
    figures = [("latent_traversal", picture,
                f"each row sweeps one latent unit from {-span} to {span}, the others at {start}")]
    if latent == 2:
        ys = torch.linspace(span, -span, steps)
        grid_z = torch.stack(torch.meshgrid(ys, values, indexing="ij")[::-1], -1).reshape(-1, 2)
        maps["grid"] = vr.decode(grid_z, label).reshape(steps, steps, *vr.images.shape[1:])
        figures.append(("latent_grid", viz.grid(tiles(maps["grid"].flatten(0, 1)), ncols=steps,
                                                 scale=tile_scale(vr.images)),
                        f"decoder over z in [-{span}, {span}]^2 (z0 left to right, z1 bottom to top)"))
    spread = (pictures.amax(1) - pictures.amin(1)).flatten(1).mean(1)
    return vr.save("latent_traversal", "Latent traversal", figures,
                   {"dims": dims, "steps": steps, "span": span, "index": index,
                    "change_per_dim": spread.tolist()}, maps, "decode(z) with one unit swept")


def interpolate(run: Any, a: int = 0, b: int = 1, *, dataset: Any = None, steps: int = 10,
                classes: tuple[int, int] | None = None) -> StudyResult:
    """Decode straight lines in latent space: between test pictures ``a`` and ``b``, and between two classes.

    The class line joins the classes' mean codes over the test set ("merging two
    categories"); ``classes`` defaults to the labels of ``a`` and ``b`` (or 0 and 1 when
    those agree). A conditional VAE decodes the picture line with ``a``'s label and the
    class line with the nearer end's label.

    Returns:
        ``maps["pictures"]`` and ``maps["classes"]`` [steps, C, H, W], ``maps["weights"]`` [steps].
    """
    vr = VAERun(run, dataset)
    la, lb = int(vr.labels[a]), int(vr.labels[b])
    if classes is None:
        classes = (la, lb) if la != lb else (0, 1)
    weights = torch.linspace(0, 1, steps)
    za, zb = vr.encode(vr.images[[a, b]], vr.labels[[a, b]])
    line = (1 - weights[:, None]) * za + weights[:, None] * zb
    picture_line = vr.decode(line, torch.full((steps,), la))
    means = vr.class_means()
    ca, cb = means[classes[0]], means[classes[1]]
    if torch.isnan(ca).any() or torch.isnan(cb).any():
        raise ArgumentError(f"classes {classes} do not both occur in the test pictures")
    class_line = (1 - weights[:, None]) * ca + weights[:, None] * cb
    class_labels = torch.where(weights < 0.5, classes[0], classes[1])
    class_pictures = vr.decode(class_line, class_labels)
    names = [vr.classes[c] for c in classes]
    row = [vr.images[a:a + 1], picture_line, vr.images[b:b + 1]]
    blank = torch.ones_like(vr.images[:1])
    rows = torch.cat(row + [blank, class_pictures, blank])
    picture = viz.grid(tiles(rows), ncols=steps + 2, scale=tile_scale(vr.images),
                       row_labels=[f"#{a} -> #{b}", f"{names[0]} -> {names[1]}"],
                       col_labels=["input"] + [f"{w:.2f}" for w in weights.tolist()] + ["input"])
    maps = {"pictures": picture_line, "classes": class_pictures, "weights": weights}
    caption = (f"top: from test picture {a} to {b} (inputs at the ends); bottom: from the mean code of "
               f"class {names[0]} to that of class {names[1]}")
    return vr.save("latent_interpolation", "Latent interpolation", [("latent_interpolation", picture, caption)],
                   {"a": a, "b": b, "classes": list(classes), "steps": steps}, maps, "decode((1-t) z_a + t z_b)")


def style_mixing(run: Any, *, dataset: Any = None, n: int = 8) -> StudyResult:
    """Conditional VAE: encode ``n`` test pictures, decode each code with every label.

    Returns:
        ``maps["mixed"]`` [n, K, C, H, W]; row i is picture i's style in every class.
    """
    vr = VAERun(run, dataset)
    if not vr.model.conditional:
        raise ArgumentError("style mixing needs a conditional VAE (model cvae)")
    k = vr.model.num_classes
    index = torch.arange(min(n, len(vr.images)))
    z = vr.encode(vr.images[index], vr.labels[index])
    mixed = vr.decode(z.repeat_interleave(k, 0), torch.arange(k).repeat(len(index)))
    mixed = mixed.reshape(len(index), k, *vr.images.shape[1:])
    rows = torch.cat([torch.cat([vr.images[i:i + 1], mixed[j]]) for j, i in enumerate(index.tolist())])
    names = vr.classes[:k] if len(vr.classes) >= k else [str(c) for c in range(k)]
    picture = viz.grid(tiles(rows), ncols=k + 1, scale=tile_scale(vr.images),
                       col_labels=["input"] + list(names))
    return vr.save("style_mixing", "Conditional style mixing",
                   [("style_mixing", picture, "each row: one picture's code z decoded with every label")], {"n": len(index), "classes": k},
                   {"mixed": mixed, "z": z}, "decode(z, y) for every y")


def latent_embedding(run: Any, *, dataset: Any = None, method: str = "tsne", random_state: int = 0) -> StudyResult:
    """Means of q(z|x) over the test set, projected to 2-D, coloured by class.

    ``method``: ``"tsne"`` or ``"pca"`` (``netgaze.embed.project``); a 2-D latent is shown as is.

    Returns:
        ``maps["z"]`` [N, latent], ``maps["points"]`` [N, 2], ``maps["labels"]`` [N].
    """
    from netgaze.embed.project import project

    vr = VAERun(run, dataset)
    z = vr.encode(vr.images, vr.labels)
    if z.shape[1] == 2:
        points, method = z.numpy().astype(np.float32), "identity"
    else:
        points = project(z.numpy(), method, dims=2, random_state=random_state)
    picture = _scatter(points, vr.labels.numpy(), vr.classes, f"q(z|x) means, {method}")
    separation = _silhouette(z.numpy(), vr.labels.numpy())
    caption = f"means of q(z|x) over {len(z)} test pictures, {method}, coloured by class"
    return vr.save("latent_embedding", "Latent embedding", [("latent_embedding", picture, caption)],
                   {"method": method, "n": len(z), "silhouette_latent": separation},
                   {"z": z, "points": torch.from_numpy(np.asarray(points)), "labels": vr.labels}, method)


def _silhouette(z: np.ndarray, labels: np.ndarray) -> float | None:
    from sklearn.metrics import silhouette_score

    if len(np.unique(labels)) < 2 or len(labels) < 3:
        return None
    return float(silhouette_score(z, labels, random_state=0, sample_size=min(len(z), 2000)))


@plain_text
def _scatter(points: np.ndarray, labels: np.ndarray, classes: list[str], title: str) -> np.ndarray:
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(5.5, 5), dpi=100)
    colours = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for k in np.unique(labels):
        chosen = labels == k
        name = classes[k] if k < len(classes) else str(k)
        ax.scatter(points[chosen, 0], points[chosen, 1], s=8, color=colours(int(k) % colours.N), label=name)
    ax.set_title(title)
    ax.legend(markerscale=2, fontsize=7, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    figure.tight_layout()
    return figure_to_array(figure)


def latent_study(run: Any, *, dataset: Any = None, embedding: str = "tsne") -> dict[str, StudyResult]:
    """Every latent study that applies to the run (style mixing for a cvae only) and imputation."""
    from netgaze.studies.imputation import imputation

    vr = VAERun(run, dataset)
    data = vr.dataset
    results = {"traversal": latent_traversal(vr.run, dataset=data),
               "interpolation": interpolate(vr.run, 0, _other_class(vr), dataset=data),
               "imputation": imputation(vr.run, dataset=data),
               "embedding": latent_embedding(vr.run, dataset=data, method=embedding)}
    if vr.model.conditional:
        results["style_mixing"] = style_mixing(vr.run, dataset=data)
    return results


def _other_class(vr: VAERun) -> int:
    different = (vr.labels != vr.labels[0]).nonzero()
    return int(different[0]) if len(different) else min(1, len(vr.labels) - 1)


__all__ = ["latent_traversal", "interpolate", "style_mixing", "latent_embedding", "latent_study"]
