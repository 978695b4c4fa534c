"""The report's outline: chapters per task, the studies each shows, and their introductions."""
from __future__ import annotations

from typing import Any

from netgaze.report.sections_dataset import DATASET_STUDIES, DATASET_STUDY_ORDER

STUDIES: dict[str, dict[str, str]] = {
    "layers": {"title": "Grad-CAM on different layers", "intro": (
        "The Grad-CAM paper suggests looking at the last convolution layer, where channels carry the most "
        "semantic information. Here every conv stage of one model explains the same pictures: early stages "
        "respond to local features and noise all over the picture, the last stage says where the decision came from.")},
    "models": {"title": "Grad-CAM for different models", "intro": (
        "The same test pictures explained by each model: Grad-CAM of its last conv stage and guided backpropagation, "
        "for the class each model predicted. The table measures where each model looks: the share of the map's "
        "energy inside the object's ground-truth mask.")},
    "epochs": {"title": "Grad-CAM at different epochs", "intro": (
        "How the network's attention evolves during training: the checkpoints of one run explain the same pictures. "
        "The curve puts the share of attention on the object next to the test accuracy.")},
    "embed": {"title": "t-SNE and PCA of pooled features", "intro": (
        "Each picture becomes the global-average-pooled output of a conv layer; PCA and t-SNE place these feature "
        "vectors in 2-D. kNN accuracy in feature space says what the features sort pictures by: the class, or a "
        "nuisance such as the background colour.")},
    "activations": {"title": "Activation maps of one picture in every layer", "intro": (
        "What each layer's channels respond to in one picture. Sparsity (the share of blank channels) grows with depth: "
        "deeper channels encode patterns that are absent from most pictures.")},
    "featureviz": {"title": "Activation maximization", "intro": (
        "Synthesised pictures that maximise one unit: a class logit or a channel of a layer, optimised from noise "
        "with transformation robustness.")},
    "filters": {"title": "First-layer filters", "intro": "The first conv layer's kernels shown as pictures: edges and colours."},
    "faithfulness": {"title": "Which explanation to trust: faithfulness", "intro": (
        "Numbers for every method on pictures whose objects are known: pointing game, energy pointing game, "
        "deletion and insertion areas, and the model-randomization sanity check.")},
    "latent": {"title": "Latent space of the VAE", "intro": (
        "Traversals of latent dimensions, interpolations between pictures and classes, imputation of a hidden region.")},
    "area": {"title": "Area Grad-CAM for reconstructions", "intro": (
        "Grad-CAM and guided backprop of a rectangle of the reconstruction: which input pixels the decoder used to "
        "rebuild that area. Mass outside the box means local reconstruction needs global information.")},
    "segmentation": {"title": "Predicted masks, encoders and decoders", "intro": (
        "What the FCN predicts per pixel, and FCN decoders on different encoders with their pixel accuracy and IoU.")},
    "area_segments": {"title": "Area Grad-CAM of segments", "intro": (
        "Grad-CAM and guided backprop of a region and class of the segmentation output.")},
}

STUDIES.update(DATASET_STUDIES)

ALIASES = {"latent_traversal": "latent", "latent_interpolation": "latent", "latent_grid": "latent",
           "style_mixing": "latent", "imputation": "latent", "latent_embedding": "latent",
           "segmentation_grid": "segmentation", "segmentation_predictions": "segmentation", "segments": "segmentation", "area_gradcam": "area",
           "area_reconstruction": "area", "activation_maps": "activations", "visualize": "featureviz",
           "embedding": "embed", "embeddings": "embed", "metrics": "faithfulness", "latent_embedding": "latent"}

CHAPTERS: list[dict[str, Any]] = [
    {"task": "classify", "title": "Classification",
     "intro": "Classifiers trained here, compared by where they look: across layers, models, epochs and feature spaces.",
     "training_intro": "Accuracy and loss per epoch, train (dashed) and test: the gap between them shows overfitting.",
     "studies": ["layers", "models", "epochs", "embed", "activations", "featureviz", "filters", "faithfulness",
                 *DATASET_STUDY_ORDER]},
    {"task": "reconstruct", "title": "Reconstruction",
     "intro": "Variational autoencoders: what their latent space holds and which input pixels a reconstructed area needs.",
     "training_intro": "Reconstruction and KL losses per picture, per epoch.",
     "studies": ["latent", "area"]},
    {"task": "segment", "title": "Segmentation",
     "intro": "Fully convolutional networks predicting a class per pixel.",
     "training_intro": "Pixel accuracy, mean accuracy and mean IoU on the test split per epoch.",
     "studies": ["segmentation", "area_segments"]},
]


def study_of(manifest: dict[str, Any]) -> str:
    study = str(manifest.get("study", ""))
    return ALIASES.get(study, study)
