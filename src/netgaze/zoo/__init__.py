"""Models by name or by run folder, for every part that takes a model from the user.

``torchvision:NAME``, ``timm:NAME`` (``load_named_model``, with a weights file and class
names) and ``hf:FOLDER`` (a Hugging Face ``save_pretrained`` folder, ``load_hf_folder``), a run folder's checkpoint (``load_run_model``), and weights files read without
running code (``load_weights_file``). The command line, the explorer and the studies all
load models here.
"""
from netgaze.zoo.huggingface import load_hf_folder
from netgaze.zoo.loaded import LoadedModel, ModelInputError, NonFiniteError
from netgaze.zoo.named import (class_names, imagenet_classes, load_named_model, num_outputs, read_labels,
                               torchvision_categories, torchvision_segmenter)
from netgaze.zoo.run_models import load_run_model
from netgaze.zoo.weights import load_weights_file

__all__ = ["LoadedModel", "ModelInputError", "NonFiniteError", "load_named_model", "load_hf_folder", "load_run_model",
           "load_weights_file",
           "class_names", "imagenet_classes", "num_outputs", "read_labels", "torchvision_categories",
           "torchvision_segmenter"]
