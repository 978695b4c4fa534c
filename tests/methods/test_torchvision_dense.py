"""torchvision's segmenters and detectors (random weights, small inputs): maps equal an
independent hook-and-autograd computation, the model is left unchanged."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import detection, segmentation

import netgaze as ng
from netgaze.core.layer_entries import LayerEntryError
from netgaze.core.recorder import RecorderError


def reference_gradcam(model, x, module, key, score_fn):
    """Grad-CAM by hand: a hook keeps ``module``'s output entry, autograd.grad of the score."""
    kept = {}

    def hook(_, __, out):
        kept["a"] = out[key] if key is not None else out
    handle = module.register_forward_hook(hook)
    try:
        score = score_fn(model(x))
    finally:
        handle.remove()
    grad = torch.autograd.grad(score, kept["a"])[0]
    cam = (grad.mean((2, 3), keepdim=True) * kept["a"]).sum(1).clamp(min=0)
    return F.interpolate(cam[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0].detach()


@pytest.fixture(scope="module")
def segmenter():
    torch.manual_seed(0)
    return segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=3).eval()


@pytest.fixture(scope="module")
def detector():
    torch.manual_seed(0)
    return detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=3, min_size=64, max_size=64, box_score_thresh=0.0,
        rpn_pre_nms_top_n_test=40, rpn_post_nms_top_n_test=20, box_detections_per_img=5).eval()


def test_segmenter_out_is_the_default_output_and_area_explains_a_class_region(segmenter, snapshot, one_thread):
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[8:40, 16:48] = True
    snap = snapshot(segmenter)
    cam = ng.gradcam(segmenter, x, "backbone[high]", target=ng.Area(mask=mask, channel=2))
    expected = reference_gradcam(segmenter, x, segmenter.backbone, "high",
                                 lambda out: (out["out"][:, 2] * mask).sum())
    assert cam.shape == (2, 64, 64) and float(cam.max()) > 0
    assert torch.allclose(cam, expected, rtol=1e-4, atol=1e-6 * float(expected.abs().max()))
    snap.assert_unchanged()
    with pytest.raises(LayerEntryError, match="'low', 'high'"):
        ng.gradcam(segmenter, x, "backbone[middle]", target=ng.Area(mask=mask, channel=2))
    with pytest.raises(RecorderError, match=r"LAYER\[key\]"):
        ng.gradcam(segmenter, x, "backbone", target=ng.Area(mask=mask, channel=2))


def test_detector_box_target_equals_hand_computation(detector, snapshot, one_thread):
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        found = detector(x)
    assert all(len(d["scores"]) > 0 for d in found)
    box, label = found[0]["boxes"][1].tolist(), int(found[0]["labels"][1])
    target = ng.Detection(box=box, label=label)
    assert target.match(found)[0].index == 1
    detector.backbone.body.requires_grad_(False)        # a frozen backbone, as when fine-tuning
    detector.roi_heads.train()                          # and a module left in training mode
    snap = snapshot(detector)
    maps = ng.gradcam(detector, x, ["backbone[0]", "backbone[1]"], target=target)
    snap.assert_unchanged()
    detector.roi_heads.eval()
    detector.backbone.body.requires_grad_(True)

    def matched_score(out):
        total = 0
        for det, m in zip(out, target.match(out)):
            if m.index is not None:
                total = total + det["scores"][m.index]
        return total
    for level in ("0", "1"):
        expected = reference_gradcam(detector, x, detector.backbone, level, matched_score)
        assert torch.allclose(maps[f"backbone[{level}]"], expected, rtol=1e-4,
                              atol=1e-5 * float(expected.abs().max()) + 1e-12)
    assert float(maps["backbone[0]"][0].max()) > 0
    one = ng.gradcam(detector, x, "backbone[0]", target=target)
    assert torch.allclose(one, maps["backbone[0]"])
    gb = ng.guided_backprop(detector, x, target=ng.Detection(index=0))
    assert gb.shape == x.shape and torch.isfinite(gb).all() and float(gb.abs().sum()) > 0
