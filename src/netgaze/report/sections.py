"""The report's outline: chapters per task, the studies each shows, and their introductions."""
from __future__ import annotations

from typing import Any

from netgaze.report.sections_dataset import DATASET_STUDIES, DATASET_STUDY_ORDER

STUDIES: dict[str, dict[str, str]] = {
    "layers": {"title": "Grad-CAM on different layers", "intro": (
        "The Grad-CAM paper suggests looking at the last convolution layer, where channels carry the most "
        "semantic information. Here every conv stage of one model explains the same pictures, and the table measures "
        "each stage's map: how much of the picture it covers and how much of its energy lies on the object."),
        "intro_without_masks": (
        "The Grad-CAM paper suggests looking at the last convolution layer, where channels carry the most "
        "semantic information. Here every conv stage of one model explains the same pictures, and the table measures "
        "how much of the picture each stage's map covers (the share of the map above half its maximum); the data has "
        "no masks, so where the maps lie is not measured.")},
    "models": {"title": "Grad-CAM for different models", "intro": (
        "The same test pictures explained by each model: Grad-CAM of its last conv stage and guided backpropagation, "
        "for the class each model predicted. The table measures where each model looks: the share of the map's "
        "energy inside the object's ground-truth mask."),
        "intro_without_masks": (
        "The same test pictures explained by each model: Grad-CAM of its last conv stage and guided backpropagation, "
        "for the class each model predicted, with each model's accuracy; the data has no masks, so where the maps "
        "lie is not measured.")},
    "epochs": {"title": "Grad-CAM at different epochs", "intro": (
        "How the network's attention evolves during training: the checkpoints of one run explain the same pictures. "
        "The curve puts the share of attention on the object next to the test accuracy."),
        "intro_without_masks": (
        "How the network's attention evolves during training: the checkpoints of one run explain the same pictures. "
        "The data has no masks, so the curve puts the Grad-CAM coverage (the share of the map above half its "
        "maximum) next to the test accuracy: how spread the maps are, not where they lie.")},
    "embed": {"title": "Projections of pooled features", "intro": (
        "Each picture becomes the global-average-pooled output of a conv layer; a projection (PCA, t-SNE or UMAP: "
        "each figure's caption names its own) places these feature vectors in 2-D. kNN accuracy in feature space says what the features sort pictures by: the class, or a "
        "nuisance such as the background colour.")},
    "activations": {"title": "Activation maps of one picture in every layer", "intro": (
        "What each layer's channels respond to in one picture, and the share of blank channels per layer (sparsity): "
        "the seed report saw it grow with depth, as deeper channels encode patterns absent from most pictures; the "
        "table says whether it does here.")},
    "featureviz": {"title": "Activation maximization of class units", "intro": (
        "Pictures synthesised from noise to maximise one class logit each, with transformation robustness, as seed "
        "003 did for an MNIST classifier; the classifier itself then says which class each picture shows.")},
    "layer_channels": {"title": "Channels of every conv layer", "intro": (
        "The same optimisation for single units: the channels of each conv layer that respond most to the test "
        "pictures, one row per layer from the first to the last, each picture maximising the channel's centre unit. "
        "Each row is labelled with its receptive field, the part of the picture the unit can see.")},
    "filters": {"title": "First-layer filters", "intro": "The first conv layer's kernels shown as pictures, each "
                "normalised on its own: the colours and directions the first layer weighs."},
    "faithfulness": {"title": "Which explanation to trust: faithfulness", "intro": (
        "Numbers for every method on pictures whose objects are known: pointing game, energy pointing game, "
        "deletion and insertion areas, and the model-randomization sanity check.")},
    "latent": {"title": "Latent space of the VAE", "intro": (
        "Traversals along the principal directions of the test pictures' codes (and the plane of the first two), "
        "traversals of single latent units, interpolations between pictures and between the mean codes of two "
        "classes, imputation of a hidden region, and the codes in 2-D.")},
    "style_mixing": {"title": "Conditional VAE: style mixing", "intro": (
        "A conditional VAE gets the label beside the code, so the code is free to hold the style: one picture's code "
        "decoded with every label draws every digit in that picture's style.")},
    "denoising": {"title": "Denoising VAE", "intro": (
        "A denoising VAE is trained to rebuild the clean picture from a corrupted one (noise and an erased "
        "rectangle): corrupted test pictures and what it makes of them.")},
    "prior_samples": {"title": "Samples from the prior", "intro": (
        "New pictures: codes drawn from N(0, I) decoded by each model, the same draws for every model.")},
    "area": {"title": "Area Grad-CAM for reconstructions", "intro": (
        "Grad-CAM and guided backprop of a rectangle of the reconstruction: which input pixels the decoder used to "
        "rebuild that area. Mass outside the box means local reconstruction needs global information.")},
    "segmentation": {"title": "Predicted masks, encoders and decoders", "intro": (
        "What the FCN predicts per pixel; when the runs hold them, FCN decoders on different encoders with their pixel "
        "accuracy and IoU.")},
    "area_segments": {"title": "Area Grad-CAM of segments", "intro": (
        "Grad-CAM and guided backprop of a region and class of the segmentation output.")},
}

STUDIES.update(DATASET_STUDIES)

ALIASES = {"latent_traversal": "latent", "latent_interpolation": "latent", "latent_grid": "latent",
           "principal_traversal": "latent", "imputation": "latent", "latent_embedding": "latent",
           "segmentation_grid": "segmentation", "segmentation_predictions": "segmentation", "segments": "segmentation", "area_gradcam": "area",
           "area_reconstruction": "area", "activation_maps": "activations", "visualize": "featureviz",
           "embedding": "embed", "embeddings": "embed", "metrics": "faithfulness", "latent_embedding": "latent"}

CHAPTERS: list[dict[str, Any]] = [
    {"task": "classify", "title": "Classification",
     "intro": "Classifiers trained here, compared by where they look: across layers, models, epochs and feature spaces.",
     "training_intro": "Accuracy and loss per epoch, train (dashed) and test: the gap between them shows overfitting.",
     "studies": ["layers", "models", "epochs", "embed", "activations", "featureviz", "layer_channels", "filters",
                 "faithfulness", *DATASET_STUDY_ORDER]},
    {"task": "reconstruct", "title": "Reconstruction",
     "intro": ("Seed 000 compared a family of reconstruction models (VAE, conditional VAE, denoising VAE, VAE-GAN). "
               "The sections below show what the runs' latent space holds, what each kind of model adds, and which "
               "input pixels a reconstructed area needs."),
     "training_intro": "Reconstruction and KL losses per picture, per epoch.",
     "studies": ["latent", "style_mixing", "denoising", "prior_samples", "area"]},
    {"task": "segment", "title": "Segmentation",
     "intro": "Fully convolutional networks predicting a class per pixel.",
     "training_intro": "Pixel accuracy, mean accuracy and mean IoU on the test split per epoch.",
     "studies": ["segmentation", "area_segments"]},
]


# Order of the studies' figures inside one section (others follow in file order).
FIGURE_ORDER = ["principal_traversal", "latent_traversal", "latent_interpolation", "imputation", "latent_embedding"]


def study_of(manifest: dict[str, Any]) -> str:
    study = str(manifest.get("study", ""))
    return ALIASES.get(study, study)


def measured_in_masks(manifest: dict[str, Any]) -> bool:
    """Whether a study's numbers include a measure inside ground-truth masks (the data has masks)."""
    import json

    if "_in_mask" in json.dumps(manifest.get("numbers", {}), default=str):
        return True
    classes = manifest.get("classes")            # strategies: per cluster, the energy inside the masks
    return isinstance(classes, dict) and any(
        isinstance(s, dict) and s.get("energy_in_object") is not None
        for entry in classes.values() if isinstance(entry, dict) for s in entry.get("summaries", []) or [])
