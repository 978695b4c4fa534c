"""Embeddings: pooled features of any layer, PCA / t-SNE / UMAP, projector export, views.

    F = ng.embed.features(model, dataset, layer="layer4", thumbnail_size=32)
    Y = ng.embed.tsne(F.features, dims=2, perplexity=30, random_state=0)
    ng.embed.knn_accuracy(Y, F.labels)                       # 0..1, k = 5, leave-one-out
    ng.embed.export_projector("runs/x/artifacts/projector", {"features": F.features},
                              labels=F.label_names(), thumbnails=F.thumbnails)
    ng.embed.interactive_html("embed.html", Y, labels=F.labels, classes=F.classes, ...)
    ng.embed.scatter_png("embed.png", Y, F.labels, classes=F.classes, thumbnails=F.thumbnails)
"""
from netgaze.embed.features import Features, features, pool, prelogit_layer
from netgaze.embed.knn import knn_accuracy, knn_report
from netgaze.embed.project import pca, project, tsne, umap
from netgaze.embed.projector import export_projector
from netgaze.embed.scatter import scatter_png
from netgaze.embed.view import interactive_html

__all__ = ["Features", "features", "pool", "prelogit_layer", "pca", "tsne", "umap", "project",
           "knn_accuracy", "knn_report", "export_projector", "interactive_html", "scatter_png"]
