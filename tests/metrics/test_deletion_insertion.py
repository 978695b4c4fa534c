"""Deletion / insertion curves on a toy model whose outputs are known exactly."""
import pytest
import torch
import torch.nn as nn

from netgaze.metrics import blur, deletion_curve, insertion_curve, make_baseline


class PixelSum(nn.Module):
    """Output [B, 1]: the sum of all pixel values (a linear model)."""

    def forward(self, x):
        return x.sum(dim=(1, 2, 3))[:, None]


def test_deletion_of_a_linear_model_is_the_remaining_sum():
    x = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)  # pixels 0..15, sum 120
    maps = x[:, 0].clone()  # most important = brightest
    curve = deletion_curve(PixelSum(), x, maps, target=0, steps=4, baseline="constant", value=0.0,
                           score="raw", batch_size=3)
    # each step removes 4 pixels: 15+14+13+12 = 54, then 11..8 = 38, then 22, then 6
    assert curve.fractions.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert curve.scores[0].tolist() == [120.0, 66.0, 28.0, 6.0, 0.0]
    expected_auc = 0.25 * (120 / 2 + 66 + 28 + 6 + 0 / 2)
    assert curve.auc.item() == pytest.approx(expected_auc)


def test_insertion_of_a_linear_model_and_constant_baseline():
    x = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    maps = -x[:, 0]  # most important = darkest
    curve = insertion_curve(PixelSum(), x, maps, target=0, steps=2, baseline=1.0, score="raw")
    # start: 16 ones; then pixels 0..7 put back (sum 28) + 8 ones; then all
    assert curve.scores[0].tolist() == [16.0, 36.0, 120.0]


def test_batch_equals_one_by_one_and_chunking_does_not_matter():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 5))
    x = torch.rand(5, 3, 12, 12)
    maps = torch.rand(5, 12, 12)
    full = deletion_curve(model, x, maps, steps=7, batch_size=1000)
    chunked = deletion_curve(model, x, maps, steps=7, batch_size=4)
    torch.testing.assert_close(full.scores, chunked.scores)
    for i in range(5):
        single = deletion_curve(model, x[i:i + 1], maps[i:i + 1], steps=7)
        torch.testing.assert_close(single.scores[0], full.scores[i])
    # the probability at step 0 is the clean top-class probability; probabilities in [0, 1]
    top = model(x).softmax(1).amax(1)
    torch.testing.assert_close(full.scores[:, 0], top.detach())
    assert model.training  # left as found


def test_baselines():
    x = torch.rand(2, 3, 9, 9, generator=torch.Generator().manual_seed(1))
    flat = torch.full((1, 1, 9, 9), 0.3)
    torch.testing.assert_close(blur(flat, 2.0), flat)  # blur keeps a flat image
    assert blur(x, 2.0).std() < x.std()
    noise_a = make_baseline(x, "noise", random_state=3)
    assert torch.equal(noise_a, make_baseline(x, "noise", random_state=3))
    assert noise_a.min() >= x.min() and noise_a.max() <= x.max()
    assert torch.equal(make_baseline(x, "constant", value=0.5), torch.full_like(x, 0.5))
    with pytest.raises(ValueError, match="valid: blur"):
        make_baseline(x, "gray")
