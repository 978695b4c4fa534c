"""The new metrics equal Quantus' numbers on the same inputs (issue 25, part 2).

Quantus (ROAD, IROF, pixel flipping, relevance mass / rank, sparseness, complexity, local
Lipschitz, random logit, eMPRT), Captum (infidelity, max-sensitivity), pytorch-grad-cam
(ROAD, confidence change) and torchcam (average drop / increase). Each test is skipped,
naming the package, when that peer is not installed (the ``bench`` extra). Where a
convention differs, the peer is set to the shared convention and the test says which
(the docstrings of netgaze.metrics name the difference); noise is set to 0 or fed the
same draws, since the peers draw from numpy's or torch's global generators.
"""
from __future__ import annotations

import warnings

import numpy as np
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


# -- Quantus ------------------------------------------------------------------------------------

def test_road_equals_quantus():
    quantus = pytest.importorskip("quantus")
    model, x, maps, y = setup(n=24, linear=1.0)  # inputs around 0: removal flips predictions
    p = [10, 30, 50, 70, 90]
    theirs = quantus.ROAD(percentages=p, noise=0.0, disable_warnings=True)(
        model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=maps[:, None].numpy(), softmax=True, device="cpu")
    ours = ng.metrics.road(model, x, maps, Class(y.tolist()), percentages=p, noise=0.0)
    close(ours.accuracy.numpy(), [theirs[q] for q in p])
    assert 0 < float(ours.accuracy.mean()) < 1  # a case where removal changes some predictions


@pytest.fixture
def trapz(monkeypatch):
    """Quantus 0.6 integrates with ``np.trapz``, which numpy 2.4 removed: lend it numpy's new name."""
    monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)


def test_pixel_flipping_equals_quantus(trapz):
    quantus = pytest.importorskip("quantus")
    model, x, maps, y = setup(channels=3, size=6)
    # Quantus counts channel values: its 12 features are our 4 pixels x 3 channels
    theirs = quantus.PixelFlipping(features_in_step=3 * 4, perturb_baseline="black", disable_warnings=True,
                                   return_auc_per_sample=True)(
        model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=maps[:, None].expand(x.shape).numpy().copy(),
        softmax=True, device="cpu")
    ours = ng.metrics.pixel_flipping(model, x, maps, Class(y.tolist()), pixels_per_step=4)
    close(ours.auc.numpy(), theirs)


def test_irof_equals_quantus_with_a_number_as_baseline(trapz):
    quantus = pytest.importorskip("quantus")
    from quantus.helpers.utils import get_superpixel_segments

    model, x, maps, y = setup(channels=1, n=1, size=16)  # Quantus' IROF masks take one channel
    segments = get_superpixel_segments(np.moveaxis(x[0].numpy(), 0, -1).astype("double"), "slic")
    theirs = quantus.IROF(perturb_baseline=0.25, return_aggregate=False, disable_warnings=True)(
        model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=maps[:, None].numpy(), softmax=True, device="cpu")
    ours = ng.metrics.irof(model, x, maps, Class(y.tolist()), segments=torch.from_numpy(segments), baseline=0.25)
    close(ours.auc.numpy(), theirs)


def test_localisation_equals_quantus():
    quantus = pytest.importorskip("quantus")
    model, x, maps, y = setup(n=4)
    masks = torch.zeros(4, 10, 10, dtype=torch.bool)
    masks[0, 2:6, 3:8] = True
    masks[1, :, :4] = True
    masks[2, 7:, 7:] = True
    masks[3, 1:9, 1:9] = True
    signed = maps - 0.3
    kw = dict(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=signed[:, None].numpy(),
              s_batch=masks[:, None].numpy().astype(float), device="cpu")
    close(ng.metrics.relevance_mass_accuracy(signed, masks).numpy(),
          quantus.RelevanceMassAccuracy(disable_warnings=True)(**kw))
    close(ng.metrics.relevance_rank_accuracy(signed, masks).numpy(),
          quantus.RelevanceRankAccuracy(disable_warnings=True)(**kw))


def test_sparseness_and_complexity_equal_quantus():
    quantus = pytest.importorskip("quantus")
    model, x, maps, y = setup(n=4)
    signed = maps ** 3 - 0.2
    kw = dict(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=signed[:, None].numpy().copy(), device="cpu")
    theirs = quantus.Sparseness(disable_warnings=True)(**kw)
    # Quantus divides by the batch's maximum |a| and adds 1e-7: pinned with eps.
    scaled = signed / signed.abs().max()
    close(ng.metrics.sparseness(scaled, eps=1e-7).numpy(), theirs)
    one_hot = torch.zeros(1, 10, 10)
    one_hot[0, 3, 4] = 1.0
    assert float(ng.metrics.sparseness(one_hot)) == pytest.approx(1 - 1 / 100, abs=1e-7)
    theirs_one_hot = quantus.Sparseness(disable_warnings=True)(
        model=model, x_batch=x[:1].numpy(), y_batch=y[:1].numpy(), a_batch=one_hot[:, None].numpy(), device="cpu")
    close(theirs_one_hot, [0.99 / (1 + 100 * 1e-7)])  # Quantus' 1e-7 per pixel, pinned
    kw["a_batch"] = signed[:, None].numpy().copy()
    close(ng.metrics.complexity(signed).numpy(), quantus.Complexity(disable_warnings=True)(**kw))


def _netgaze_explain(method):
    def explain_func(model, inputs, targets, **kwargs):
        x = torch.as_tensor(inputs)
        with torch.enable_grad():
            return ng.metrics.explain(method, model, x, None, Class([int(t) for t in targets])).numpy()
    return explain_func


def test_local_lipschitz_equals_quantus_on_the_same_draws():
    quantus = pytest.importorskip("quantus")
    model, x, maps, y = setup(n=2)
    n_samples, std = 4, 0.1
    a = ng.metrics.explain("saliency", model, x, None, Class(y.tolist()))
    for normalise, images in ((False, slice(0, 2)), (True, slice(0, 1))):  # Quantus divides by the BATCH max
        noise = torch.randn((n_samples, *x[images].shape), generator=torch.Generator().manual_seed(5)) * std
        draws = iter(noise)

        def perturb(arr, indices, **kwargs):
            return arr + next(draws).reshape(arr.shape).numpy()

        theirs = quantus.LocalLipschitzEstimate(nr_samples=n_samples, perturb_func=perturb, normalise=normalise,
                                                disable_warnings=True)(
            model=model, x_batch=x[images].numpy(), y_batch=y[images].numpy(), a_batch=a[images, None].numpy(),
            explain_func=_netgaze_explain("saliency"), device="cpu")
        ours = ng.metrics.local_lipschitz(model, x[images], "saliency", None, Class(y[images].tolist()),
                                          n_samples=n_samples, noise_std=std, normalise=normalise, random_state=5)
        close(ours.numpy(), theirs, rel=1e-4)


def test_random_logit_equals_quantus_with_the_same_similarity():
    quantus = pytest.importorskip("quantus")
    model, x, maps, y = setup(n=4)
    np.random.seed(42)  # Quantus' draw of the other class, reproduced to hand it to netgaze
    index = np.random.randint(0, 4 - 1, 4)
    other = [int(i + (i >= c)) for i, c in zip(index, y.tolist())]

    def spearman(a, b, batched=True, **kwargs):
        return ng.metrics.spearman(torch.as_tensor(a), torch.as_tensor(b))

    a = ng.metrics.explain("gradcam", model, x, "features.2", Class(y.tolist()))
    explain_func = lambda model, inputs, targets, **kw: ng.metrics.explain(  # noqa: E731
        "gradcam", model, torch.as_tensor(inputs), "features.2", Class([int(t) for t in targets])).numpy()
    theirs = quantus.RandomLogit(num_classes=4, similarity_func=spearman, disable_warnings=True)(
        model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a[:, None].numpy(), explain_func=explain_func,
        device="cpu")
    ours = ng.metrics.random_logit(model, x, "gradcam", "features.2", Class(y.tolist()), similarity="spearman",
                                   other=other)
    close(ours, theirs)


def test_efficient_mprt_equals_quantus_on_its_randomized_model():
    quantus = pytest.importorskip("quantus")
    from quantus.helpers.model.pytorch_model import PyTorchModel

    model, x, maps, y = setup(n=3)
    explain_func = _netgaze_explain("saliency")
    a = ng.metrics.explain("saliency", model, x, None, Class(y.tolist()))
    theirs = quantus.EfficientMPRT(disable_warnings=True)(
        model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a[:, None].numpy(), explain_func=explain_func,
        device="cpu")
    randomized = None
    for _, randomized in PyTorchModel(model, channel_first=True).get_random_layer_generator(order="bottom_up",
                                                                                               seed=42):
        pass
    ours = ng.metrics.efficient_mprt(model, x, "saliency", None, Class(y.tolist()), randomized=randomized)
    close(ours.rise.numpy(), theirs)
