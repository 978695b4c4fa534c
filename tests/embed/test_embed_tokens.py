"""Features of token and channels-last layers: pooled over positions, one column per channel
(issue 23: tokens [B, N, C] used to be averaged over channels, giving N columns)."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from netgaze.embed import features, pool


class Tokens(nn.Module):
    """4x4 patches of an 8x8 picture -> a class token + 4 patch tokens of width 6, then a head."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.patch = nn.Conv2d(3, 6, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(1, 1, 6))
        self.norm = nn.LayerNorm(6)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = self.norm(torch.cat([self.cls.expand(len(x), -1, -1), t], 1))
        return self.head(t[:, 0])


def _by_hand(model, layer, x):
    seen = []
    handle = model.get_submodule(layer).register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    with torch.no_grad():
        model(x)
    handle.remove()
    return seen[0]


def test_token_layer_pooled_over_tokens():
    model, x = Tokens().eval(), torch.rand(7, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    F = features(model, TensorDataset(x, torch.zeros(7, dtype=torch.long)), "norm", batch_size=3, progress=False)
    tokens = _by_hand(model, "norm", x)
    assert tokens.shape == (7, 5, 6)
    assert F.features.shape == (7, 6)          # C columns, not N = 5
    np.testing.assert_allclose(F.features, tokens.mean(1).numpy(), rtol=1e-5, atol=1e-6)


def test_hugging_face_vit_tokens():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=48, num_labels=4)
    model = transformers.AutoModelForImageClassification.from_config(config).eval()
    x = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    layer = "vit.layers.1.layernorm_before"
    F = features(model, TensorDataset(x, torch.zeros(5, dtype=torch.long)), layer, progress=False)
    tokens = _by_hand(model, layer, x)
    assert tokens.shape == (5, 17, 24) and F.features.shape == (5, 24)
    np.testing.assert_allclose(F.features, tokens.mean(1).numpy(), rtol=1e-5, atol=1e-6)
    # predictions come through the logits of its ModelOutput, without output=
    with torch.no_grad():
        assert F.predictions.tolist() == model(x).logits.argmax(1).tolist()


def test_pool_layouts_by_hand():
    a = torch.arange(2 * 4 * 4 * 3, dtype=torch.float32).view(2, 4, 4, 3)    # channels last, 4x4 of 16x16
    assert torch.equal(pool(a, size=(16, 16), module=nn.LayerNorm(3)), a.mean((1, 2)))
    assert torch.equal(pool(a.permute(0, 3, 1, 2), size=(16, 16)), a.mean((1, 2)))
    t = torch.rand(2, 1 + 16, 5)                                                # tokens: 1 + 4x4
    assert torch.equal(pool(t, size=(16, 16)), t.mean(1))
    seq = torch.rand(2, 3, 7)                                                   # [B, C, L]: 3 fits no grid
    assert torch.equal(pool(seq, size=(16, 16)), seq.mean(2))
    assert torch.equal(pool(seq), seq.mean(2))
