"""Infidelity and max-sensitivity equal Captum's, ROAD and confidence change pytorch-grad-cam's,
average drop / increase torchcam's, on the same inputs (issue 25, part 2); each test is
skipped, naming the package, when the peer is not installed (the ``bench`` extra).
"""
from __future__ import annotations

import warnings

import pytest
import torch

import netgaze as ng
from netgaze.core.targets import Class

from peer_setup import close, setup


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# -- Captum -------------------------------------------------------------------------------------

@pytest.mark.parametrize("normalize", [False, True])
def test_infidelity_equals_captum(normalize):
    metrics = pytest.importorskip("captum.metrics")
    model, x, maps, y = setup(channels=3, n=3)
    attributions = torch.rand(x.shape, generator=torch.Generator().manual_seed(3)) - 0.5

    def perturb(inputs):
        noise = torch.randn(inputs.shape, generator=torch.Generator().manual_seed(7)) * 0.003
        return noise, inputs - noise

    theirs = metrics.infidelity(model, perturb, x, attributions, target=y, n_perturb_samples=5, normalize=normalize)
    ours = ng.metrics.infidelity(model, x, attributions, Class(y.tolist()), n_samples=5, normalize=normalize,
                                 random_state=7)
    close(ours.numpy(), theirs.numpy(), rel=1e-4)


def test_max_sensitivity_equals_captum():
    metrics = pytest.importorskip("captum.metrics")
    model, x, maps, y = setup(channels=3, n=3)

    def explanation(inputs, target):
        inputs = inputs[0] if isinstance(inputs, tuple) else inputs
        with torch.enable_grad():  # Captum explains under no_grad; a tuple in, a tuple out
            return (ng.metrics.explain("saliency", model, inputs, None, Class(target.tolist())),)

    torch.manual_seed(11)
    theirs = metrics.sensitivity_max(explanation, x, n_perturb_samples=6, target=y)
    ours = ng.metrics.max_sensitivity(model, x, "saliency", None, Class(y.tolist()), n_samples=6, random_state=11)
    close(ours.numpy(), theirs.numpy())


# -- pytorch-grad-cam and torchcam --------------------------------------------------------------

def test_road_equals_pytorch_grad_cam():
    road = pytest.importorskip("pytorch_grad_cam.metrics.road")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    model, x, maps, y = setup(channels=3, n=3)  # 10 x 10 pixels: every percentile is a whole pixel count
    targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in y]
    percentiles = [10, 30, 50, 70, 90]
    original = road.NoisyLinearImputer.__init__.__defaults__
    road.NoisyLinearImputer.__init__.__defaults__ = (0.0, original[1])  # the peer's noise set to 0
    try:
        morf = road.ROADMostRelevantFirstAverage(percentiles)(x, maps.numpy(), targets, model)
        lerf = road.ROADLeastRelevantFirstAverage(percentiles)(x, maps.numpy(), targets, model)
    finally:
        road.NoisyLinearImputer.__init__.__defaults__ = original
    removed = [100 - p for p in percentiles]  # the peer's MoRF(percentile p) removes the top (100 - p) %
    ours_morf = ng.metrics.road(model, x, maps, Class(y.tolist()), order="morf", percentages=removed, noise=0.0)
    ours_lerf = ng.metrics.road(model, x, maps, Class(y.tolist()), order="lerf", percentages=removed, noise=0.0)
    close(ours_morf.mean_change.numpy(), morf)
    close(ours_lerf.mean_change.numpy(), lerf)


def test_confidence_change_equals_pytorch_grad_cam():
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange, DropInConfidence
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    model, x, maps, y = setup(channels=3, n=4)
    cams = ng.metrics.scoring.minmax(maps)  # the peer multiplies by its (already normalised) maps
    targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in y]
    ours = ng.metrics.confidence_change(model, x, maps, Class(y.tolist()))
    close(ours.change.numpy(), CamMultImageConfidenceChange()(x, cams.numpy(), targets, model))
    close(torch.relu(-ours.change).numpy(), DropInConfidence()(x, cams.numpy(), targets, model))


def test_average_drop_and_increase_equal_torchcam():
    metrics = pytest.importorskip("torchcam.metrics")
    from contextlib import nullcontext
    from functools import partial

    from torchcam.methods.core import _CAM

    model, x, maps, y = setup(channels=3, n=6)
    maps = maps.clone()
    maps[:3] = maps[:3] ** 6  # some pictures lose confidence, some gain it

    class Fixed:  # a CAM extractor that returns our maps, normalised as torchcam normalises CAMs
        def __init__(self):
            self.model = model

        def __call__(self, class_idx=None, scores=None, normalized=True, **kw):
            return [_CAM._normalize(maps.clone())]

        def fuse_cams(self, cams):
            return cams[0]

        def _hooks_off(self):
            return nullcontext()

    metric = metrics.ClassificationMetric(Fixed(), partial(torch.softmax, dim=-1))
    metric.update(x, class_idx=y.tolist())
    theirs = metric.summary()
    ours = ng.metrics.confidence_change(model, x, maps, Class(y.tolist()))
    close(ours.average_drop, theirs["avg_drop"])
    close(ours.increase_rate, theirs["conf_increase"])
    assert 0 < theirs["conf_increase"] < 1
