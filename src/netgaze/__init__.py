"""netgaze: where and how a convolutional network looks at pictures."""
from netgaze import viz
from netgaze.layers import LayerError, conv_layer_names, layer_names, resolve_layer
from netgaze.methods import (gradcam, gradcam_pp, guided_backprop, guided_gradcam, hirescam,
                             integrated_gradients, layercam, saliency, scorecam, smoothgrad, xgradcam)
from netgaze.recorder import Recorder, RecorderError
from netgaze.targets import Area, Class, Latent, Target, TopClass

__version__ = "0.1.0"

__all__ = [
    "gradcam", "gradcam_pp", "hirescam", "layercam", "xgradcam", "scorecam",
    "saliency", "guided_backprop", "guided_gradcam", "smoothgrad", "integrated_gradients",
    "Class", "TopClass", "Area", "Latent", "Target",
    "Recorder", "RecorderError", "LayerError", "layer_names", "conv_layer_names", "resolve_layer",
    "viz",
]
