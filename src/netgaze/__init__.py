"""netgaze: where and how a convolutional network looks at pictures.

The explanation core is imported eagerly; the larger parts (training lab, embeddings,
feature visualization, metrics, studies, report) load on first use, so ``import netgaze``
stays quick.
"""
from __future__ import annotations

import importlib
from typing import Any

from netgaze import viz
from netgaze._util.version import VERSION as __version__
from netgaze.core.detection import Detection, DetectionMatchError
from netgaze.core.layers import LayerError, conv_layer_names, layer_names, resolve_layer
from netgaze.core.layouts import LayoutError
from netgaze.methods import (gradcam, gradcam_pp, guided_backprop, guided_gradcam, hirescam,
                             integrated_gradients, layercam, saliency, scorecam, smoothgrad, xgradcam)
from netgaze.methods import (ablationcam, cam, deconvolution, eigen_gradcam, eigencam, gradcam_elementwise,
                             input_x_gradient, iscam, occlusion, rise, smoothgradcam_pp, sscam)
from netgaze.methods import deeplift, deeplift_shap, feature_ablation, gradient_shap, kernel_shap, lime
from netgaze.methods import augmented, dff, fem, finercam, fullgrad, kpca_cam, lrp, shapleycam
from netgaze.core.recorder import Recorder, RecorderError
from netgaze.core.stages import stage_names
from netgaze.core.targets import Area, Class, Latent, Target, TopClass
from netgaze.errors import RunError, UserError

_LAZY_MODULES = {
    "lab": "netgaze.lab", "datasets": "netgaze.lab.datasets", "embed": "netgaze.embed",
    "featureviz": "netgaze.featureviz", "metrics": "netgaze.metrics", "studies": "netgaze.studies",
    "report": "netgaze.report", "analyses": "netgaze.analyses",
}
_LAZY_NAMES = {
    "load_run": "netgaze.lab.runs", "RunWriter": "netgaze.lab.run_writer",
    "import_checkpoints": "netgaze.lab.checkpoint_import", "train_classifier": "netgaze.lab.train",
    "train_reconstruction": "netgaze.lab.reconstruct", "train_segmentation": "netgaze.lab.segment",
    "build_model": "netgaze.lab.models",
    "visualize": "netgaze.featureviz", "activation_maps": "netgaze.featureviz", "filters": "netgaze.featureviz",
    "explain_dataset": "netgaze.analyses.dataset_explanations", "load_explanations": "netgaze.analyses.dataset_explanations",
    "build_report": "netgaze.report",
    "strategies": "netgaze.analyses.strategies", "dissect": "netgaze.analyses.dissect",
    "top_examples": "netgaze.analyses.top_examples",
    "concepts": "netgaze.methods.concepts", "channel_relevance": "netgaze.methods.concepts",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        value = importlib.import_module(_LAZY_MODULES[name])
    elif name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    else:
        raise AttributeError(f"module 'netgaze' has no attribute {name!r}")
    globals()[name] = value  # cached: later lookups never reach __getattr__ again
    return value


__all__ = [
    "gradcam", "gradcam_pp", "hirescam", "layercam", "xgradcam", "scorecam",
    "saliency", "guided_backprop", "guided_gradcam", "smoothgrad", "integrated_gradients",
    "cam", "eigencam", "eigen_gradcam", "gradcam_elementwise", "ablationcam", "sscam", "iscam", "smoothgradcam_pp",
    "fem", "kpca_cam", "finercam", "shapleycam", "fullgrad", "lrp", "augmented", "dff",
    "input_x_gradient", "deconvolution", "occlusion", "rise",
    "deeplift", "deeplift_shap", "gradient_shap", "feature_ablation", "kernel_shap", "lime",
    "Class", "TopClass", "Area", "Latent", "Target", "Detection", "DetectionMatchError",
    "Recorder", "RecorderError", "LayerError", "LayoutError", "layer_names", "stage_names", "conv_layer_names",
    "resolve_layer", "UserError", "RunError",
    "viz", *_LAZY_MODULES, *_LAZY_NAMES,
]
