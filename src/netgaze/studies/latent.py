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
from netgaze._util.plots import plain_text
from netgaze.studies.common import figure_to_array
from netgaze.studies.latent_common import VAERun, tile_scale, tiles
from netgaze.studies.across_layers import StudyResult


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
                    "change_per_dim": spread.tolist()}, maps, "decode(z) with one unit swept", tables=[])


def principal_directions(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """PCA of latent codes [N, latent]: ``(mean, directions [k, latent], sd [k], explained [k])``.

    ``directions`` are unit vectors sorted by variance, ``sd`` the codes' standard deviation
    along each, ``explained`` each direction's share of the total variance (sums to 1).
    Signs are fixed so that each direction's largest component is positive.
    """
    mean = z.mean(0)
    _, s, vh = torch.linalg.svd(z - mean, full_matrices=False)
    variance = s.pow(2) / max(1, len(z) - 1)
    flip = torch.sign(vh.gather(1, vh.abs().argmax(1, keepdim=True))).squeeze(1)
    flip[flip == 0] = 1
    return mean, vh * flip[:, None], variance.sqrt(), variance / variance.sum().clamp_min(1e-12)


def principal_traversal(run: Any, *, dataset: Any = None, directions: int = 6, steps: int = 9,
                        span: float = 2.5, label: int = 0) -> StudyResult:
    """Decode sweeps along the principal directions of the test codes, and the plane of the first two.

    Row ``k`` decodes ``mean + t * sd_k * v_k`` for ``t`` in ``linspace(-span, span, steps)``,
    where ``v_k`` is the k-th principal direction of the means of q(z|x) over the test
    pictures and ``sd_k`` the codes' spread along it, so every row covers the same share of
    the data; the row label says how much of the codes' variance the direction explains.
    ``principal_grid.png`` decodes the plane of the first two directions over the same
    range (the 2-D manifold figure for a latent of any size). A conditional VAE decodes with
    ``label``.

    Returns:
        ``maps["traversal"]`` [k, steps, C, H, W], ``maps["grid"]`` [steps, steps, C, H, W],
        ``maps["directions"]`` [k, latent], ``maps["sd"]`` [k], ``maps["explained"]`` [k].
    """
    vr = VAERun(run, dataset)
    z = vr.encode(vr.images, vr.labels)
    mean, vectors, sd, explained = principal_directions(z)
    k = min(directions, len(sd))
    values = torch.linspace(-span, span, steps)
    codes = mean + values[None, :, None] * (sd[:k, None, None] * vectors[:k, None, :])
    shape = vr.images.shape[1:]
    pictures = vr.decode(codes.reshape(-1, z.shape[1]), label).reshape(k, steps, *shape)
    scale = tile_scale(vr.images)
    rows = [f"PC{i + 1} {explained[i]:.0%}" for i in range(k)]
    cols = [f"{v:+.1f} sd" for v in values.tolist()]
    traversal = viz.grid(tiles(pictures.flatten(0, 1)), ncols=steps, row_labels=rows, col_labels=cols, scale=scale)
    figures = [("principal_traversal", traversal,
                f"each row decodes the mean code moved along one principal direction of the {len(z)} test codes, "
                f"from -{span} to +{span} standard deviations along it; the row label gives the share of the codes' "
                f"variance the direction explains (the first {k} together: {float(explained[:k].sum()):.0%})")]
    maps = {"traversal": pictures, "directions": vectors[:k], "sd": sd[:k], "explained": explained[:k],
            "mean": mean, "values": values}
    if len(sd) >= 2:
        ys = torch.linspace(span, -span, steps)
        a, b = torch.meshgrid(ys, values, indexing="ij")  # rows: PC2 from +span (top); columns: PC1
        plane = mean + b.reshape(-1, 1) * sd[0] * vectors[0] + a.reshape(-1, 1) * sd[1] * vectors[1]
        maps["grid"] = vr.decode(plane, label).reshape(steps, steps, *shape)
        figures.append(("principal_grid", viz.grid(tiles(maps["grid"].flatten(0, 1)), ncols=steps, scale=scale,
                                                   col_labels=cols,
                                                   row_labels=[f"PC2 {v:+.1f}" for v in ys.tolist()]),
                        f"the decoder over the plane of the first two principal directions (PC1 left to right, "
                        f"{explained[0]:.0%} of the variance; PC2 bottom to top, {explained[1]:.0%}), "
                        f"from -{span} to +{span} standard deviations: the 2-D manifold of the codes"))
    change = (pictures.amax(1) - pictures.amin(1)).flatten(1).mean(1)
    unit_codes = mean + values[None, :, None] * torch.diag_embed(z.std(0))[:, None, :]
    unit_pictures = vr.decode(unit_codes.reshape(-1, z.shape[1]), label).reshape(z.shape[1], steps, *shape)
    unit_change = (unit_pictures.amax(1) - unit_pictures.amin(1)).flatten(1).mean(1)
    numbers = {"n": len(z), "directions": k, "steps": steps, "span_sd": span,
               "explained": [round(float(e), 4) for e in explained.tolist()],
               "explained_shown": round(float(explained[:k].sum()), 4),
               "change_per_direction": [round(float(c), 4) for c in change.tolist()],
               "change_per_unit": [round(float(c), 4) for c in unit_change.tolist()],
               "active_units": int((z.var(0) > 0.01).sum()), "latent": int(z.shape[1])}
    table = {"title": f"Principal directions of the {len(z)} test codes ({z.shape[1]} latent units)",
             "columns": ["direction", "share of variance", "cumulative", "sd", "mean pixel change"],
             "rows": [[f"PC{i + 1}", float(explained[i]), float(explained[:i + 1].sum()), float(sd[i]),
                       float(change[i])] for i in range(k)]}
    return vr.save("principal_traversal", "Latent traversal along principal directions", figures, numbers, maps,
                   "decode(mean + t sd_k v_k)", tables=[table])


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
                   {"a": a, "b": b, "classes": list(classes), "steps": steps}, maps, "decode((1-t) z_a + t z_b)",
                   tables=[])


def style_mixing(run: Any, *, dataset: Any = None, n: int = 8, classifier: torch.nn.Module | None = None) -> StudyResult:
    """Conditional VAE: encode ``n`` test pictures, decode each code with every label.

    With a ``classifier`` of the same pictures, every mixed picture is classified and the
    numbers give the share recognised as the label it was decoded with (``judged_as_label``).

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
    numbers: dict[str, Any] = {"n": len(index), "classes": k}
    caption = "each row: one test picture (left) and its code z decoded with every label"
    if classifier is not None:
        from netgaze.studies.reconstructions import judge

        predicted, confidence = judge(classifier, mixed.flatten(0, 1))
        wanted = torch.arange(k).repeat(len(index))
        numbers.update({"judged_as_label": float((predicted == wanted).float().mean()),
                        "mean_confidence": float(confidence.mean())})
        caption += (f"; a classifier of the same pictures reads {numbers['judged_as_label']:.0%} of the "
                    f"{len(wanted)} mixed pictures as the label they were decoded with")
    return vr.save("style_mixing", "Conditional style mixing", [("style_mixing", picture, caption)], numbers,
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


def latent_study(run: Any, *, dataset: Any = None, embedding: str = "tsne", classes: tuple[int, int] | None = None,
                 classifier: torch.nn.Module | None = None) -> dict[str, StudyResult]:
    """Every latent study that applies to the run, and imputation.

    Unit traversal, principal-direction traversal (latent of 2 or more), interpolation,
    imputation, the latent embedding and, for a conditional VAE, style mixing (judged by
    ``classifier`` if given). The interpolation runs between the mean codes of ``classes``
    and between the two test pictures whose codes lie nearest to those means (the classes'
    most typical pictures); without ``classes``, between test picture 0 and the first
    picture of another class, and their classes' means.
    """
    from netgaze.studies.imputation import imputation

    vr = VAERun(run, dataset)
    data = vr.dataset
    if classes is not None:
        a, b = typical_pictures(vr, classes)
    else:
        a, b = 0, _other_class(vr)
    results = {"traversal": latent_traversal(vr.run, dataset=data),
               **({"principal": principal_traversal(vr.run, dataset=data)} if vr.model.latent >= 2 else {}),
               "interpolation": interpolate(vr.run, a, b, dataset=data, classes=classes),
               "imputation": imputation(vr.run, dataset=data),
               "embedding": latent_embedding(vr.run, dataset=data, method=embedding)}
    if vr.model.conditional:
        results["style_mixing"] = style_mixing(vr.run, dataset=data, classifier=classifier)
    return results


def typical_pictures(vr: VAERun, classes: tuple[int, int]) -> tuple[int, int]:
    """Indices of the test pictures whose codes lie nearest to each class's mean code."""
    z = vr.encode(vr.images, vr.labels)
    means = vr.class_means()
    picks = []
    for c in classes:
        chosen = (vr.labels == c).nonzero().flatten()
        if len(chosen) == 0:
            raise ValueError(f"class {c} does not occur in the test pictures")
        picks.append(int(chosen[(z[chosen] - means[c]).norm(dim=1).argmin()]))
    return picks[0], picks[1]


def _other_class(vr: VAERun) -> int:
    different = (vr.labels != vr.labels[0]).nonzero()
    return int(different[0]) if len(different) else min(1, len(vr.labels) - 1)


__all__ = ["latent_traversal", "principal_directions", "principal_traversal", "interpolate", "style_mixing", "latent_embedding", "latent_study"]
