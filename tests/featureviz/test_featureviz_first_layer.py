"""First-layer channels render as what their kernels detect: edges as stripes of the right
orientation, colour-opponent kernels as the right colour.

A conv layer with hand-set kernels (a vertical edge, a horizontal edge, red-versus-rest,
blue-versus-rest) stands in for a trained first layer: the renderer must show each kernel's
orientation and colour. The trained shapes classifier is checked in
``benchmarks/quality_featureviz.py`` (results/featureviz_quality.json).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from netgaze.featureviz import visualize


def _edge_and_colour_model() -> nn.Sequential:
    conv = nn.Conv2d(3, 4, 5, padding=2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0, :, :, :2] = -1.0  # dark left, bright right: a vertical edge
        conv.weight[0, :, :, 3:] = 1.0
        conv.weight[1, :, :2, :] = -1.0  # a horizontal edge
        conv.weight[1, :, 3:, :] = 1.0
        conv.weight[2, 0] = 1.0          # red against green and blue
        conv.weight[2, 1:] = -0.5
        conv.weight[3, 2] = 1.0          # blue against red and green
        conv.weight[3, :2] = -0.5
    return nn.Sequential(conv, nn.ReLU(inplace=True))


def _half_contrasts(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Brightness of the right half minus the left half, and of the bottom minus the top, per image."""
    lum = images.mean(1)
    h, w = lum.shape[1:]
    dx = lum[:, :, w // 2:].mean((1, 2)) - lum[:, :, :w // 2].mean((1, 2))
    dy = lum[:, h // 2:, :].mean((1, 2)) - lum[:, :h // 2, :].mean((1, 2))
    return dx, dy


def test_first_layer_kernels_render_as_their_edges_and_colours(snapshot, one_thread):
    model = _edge_and_colour_model()
    snap = snapshot(model)
    images = visualize(model, "0", range(4), steps=48, size=32)
    snap.assert_unchanged()
    dx, dy = _half_contrasts(images)
    # Vertical-edge kernel (dark left, bright right): the picture brightens from left to
    # right, not from top to bottom; the horizontal-edge kernel the other way round. (At
    # 32 pixels the edge is one image-wide transition; random starting pictures give ~0.)
    assert float(dx[0]) > 0.15 and float(dx[0]) > 3 * abs(float(dy[0])), (dx.tolist(), dy.tolist())
    assert float(dy[1]) > 0.15 and float(dy[1]) > 3 * abs(float(dx[1])), (dx.tolist(), dy.tolist())
    rgb = images.mean((2, 3))  # [4, 3] mean colour
    redness = rgb[:, 0] - rgb[:, 1:].mean(1)
    blueness = rgb[:, 2] - rgb[:, :2].mean(1)
    assert int(redness.argmax()) == 2 and float(redness[2]) > 0.05, rgb.tolist()
    assert int(blueness.argmax()) == 3 and float(blueness[3]) > 0.05, rgb.tolist()
    # Edge kernels see every colour alike: grey-level pictures, no colour cast.
    assert float((rgb[:2].max(1).values - rgb[:2].min(1).values).max()) < 0.05, rgb.tolist()
