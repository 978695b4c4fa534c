"""Studies: the comparisons the reports made by hand, each one call on a run folder.

- ``layers_study`` (S1): Grad-CAM of every conv stage of a model, guided Grad-CAM beside.
- ``models_study`` (S2): several models, the same pictures, Grad-CAM and guided backprop.
- ``epochs_study`` (S3): one run's checkpoints, Grad-CAM per epoch, a grid, a GIF and a curve.

Each writes PNGs and a JSON manifest of its numbers into the run's ``artifacts/`` folder,
which ``netgaze report`` reads. The latent (VAE) and segmentation studies live in their
own modules (``netgaze.studies.latent``, ``netgaze.studies.area``,
``netgaze.studies.segmentation_grid``, ``netgaze.studies.area_segments``).
"""
from netgaze.studies.epochs import epochs_study
from netgaze.studies.images import Examples, pick_examples, pick_indices
from netgaze.studies.across_layers import StudyResult, compare_layers, layers_study, stage_names
from netgaze.studies.across_models import explain_model, models_study

__all__ = ["layers_study", "models_study", "epochs_study", "stage_names", "compare_layers", "explain_model",
           "pick_examples", "pick_indices", "Examples", "StudyResult"]
