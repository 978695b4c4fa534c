"""Pooled features: hand-computed values, streaming (batch sizes agree), metadata carried."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from netgaze.embed import Features, features, pool, prelogit_layer
from netgaze.core.layers import LayerError


def toy_model() -> nn.Sequential:
    """conv 1x1 (1 -> 2 channels: 2x and 1 - x), ReLU, avg pool, flatten, linear 2 -> 3."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([2.0, -1.0]).view(2, 1, 1, 1))
        model[0].bias.copy_(torch.tensor([0.0, 1.0]))
        model[4].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]))
        model[4].bias.copy_(torch.tensor([0.0, 0.0, 0.5]))
    return model


class Named(Dataset):
    classes = ["zero", "one", "two"]

    def __init__(self, x, y):
        self.x, self.y = x, y
        self.paths = [f"img/{i:03d}.png" for i in range(len(x))]

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(23, 1, 4, 4, generator=g) * 2 - 0.5   # values in [-0.5, 1.5]: ReLU cuts both channels
    y = torch.randint(0, 3, (23,), generator=g)
    return x, y


def hand(x: np.ndarray):
    conv = np.stack([2 * x, 1 - x], 1)[:, :, 0]           # [N, 2, 4, 4]
    conv_pooled = conv.mean((2, 3))
    relu_pooled = np.maximum(conv, 0).mean((2, 3))
    W = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])
    logits = relu_pooled @ W.T + np.array([0.0, 0.0, 0.5])
    return conv_pooled, relu_pooled, logits


def test_features_equal_hand_computed_pooled_values(data):
    x, y = data
    model = toy_model()
    conv, relu, logits = hand(x.numpy().astype(np.float64))
    ds = Named(x, y)
    got_conv = features(model, ds, "0", batch_size=5, progress=False)
    got_relu = features(model, ds, "1", batch_size=5, progress=False)
    got_pre = features(model, ds, "prelogits", batch_size=5, progress=False)
    got_out = features(model, ds, "logits", batch_size=5, progress=False)
    np.testing.assert_allclose(got_conv.features, conv, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_relu.features, relu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_pre.features, relu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_out.features, logits, rtol=1e-5, atol=1e-6)
    assert got_pre.layer == "3" and got_out.layer == "output" and got_conv.layer == "0"
    np.testing.assert_array_equal(got_conv.predictions, logits.argmax(1))
    np.testing.assert_array_equal(got_conv.labels, y.numpy())
    np.testing.assert_array_equal(got_conv.indices, np.arange(23))
    assert got_conv.classes == Named.classes and got_conv.paths[7] == "img/007.png"
    assert got_conv.label_names()[:3] == [Named.classes[int(v)] for v in y[:3]]


def test_negative_int_layer_is_the_last_stage(data):
    x, _ = data
    a = features(toy_model(), x, -1, batch_size=4, progress=False, predict=False)   # bare tensors as dataset
    b = features(toy_model(), x, "1", batch_size=4, progress=False, predict=False)  # the stage ends after the ReLU
    np.testing.assert_array_equal(a.features, b.features)
    assert a.labels is None and a.predictions is None


def test_streaming_batch_sizes_agree_and_limit(data):
    x, y = data
    model = toy_model()
    one = features(model, TensorDataset(x, y), "1", batch_size=1, progress=False)
    seven = features(model, TensorDataset(x, y), "1", batch_size=7, progress=False)
    loader = features(model, DataLoader(TensorDataset(x, y), batch_size=23), "1", progress=False)
    np.testing.assert_allclose(one.features, seven.features, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(one.features, loader.features, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(one.predictions, seven.predictions)
    limited = features(model, TensorDataset(x, y), "1", batch_size=7, limit=10, progress=False)
    np.testing.assert_array_equal(limited.features, seven.features[:10])
    assert len(limited) == 10 and len(limited.labels) == 10


def test_only_one_batch_of_activations_is_alive(data, monkeypatch):
    """When batch k is pooled, no recorded activation of an earlier batch is still referenced."""
    import sys
    import weakref

    module = sys.modules["netgaze.embed.features"]   # the package re-exports the function by that name

    x, y = data
    refs, alive = [], []
    real_pool = module.pool

    def spy(activation, **how):
        alive.append(sum(1 for r in refs if r() is not None))
        refs.append(weakref.ref(activation))
        return real_pool(activation, **how)

    monkeypatch.setattr(module, "pool", spy)
    F = features(toy_model(), TensorDataset(x, y), "1", batch_size=3, progress=False)
    assert len(alive) == 8 and max(alive) == 0, alive
    assert F.features.shape == (23, 2)


def test_model_left_as_found(data):
    x, y = data
    model = toy_model().train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    features(model, TensorDataset(x, y), "0", progress=False)
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert not model[0]._forward_hooks


def test_vae_means_via_output_selector():
    class TinyVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(4, 2)
            with torch.no_grad():
                self.enc.weight.copy_(torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]]))
                self.enc.bias.zero_()

        def forward(self, x):
            mu = self.enc(x.flatten(1))
            return {"recon": x, "mu": mu, "logvar": torch.zeros_like(mu)}

    x = torch.arange(12.0).view(3, 1, 2, 2)
    F = features(TinyVAE(), x, "output", output="mu", predict=False, progress=False)
    np.testing.assert_allclose(F.features, [[1, -1], [9, -1], [17, -1]])
    with pytest.raises(ValueError, match="predict=False"):
        features(nn.Conv2d(1, 2, 1), x, "output", progress=False)


def test_a_model_that_takes_labels_gets_each_batchs_labels():
    class Conditional(nn.Module):          # output = x summed + 10 * label: only right with the right labels
        takes_labels = True

        def forward(self, x, y):
            return torch.stack([x.flatten(1).sum(1), 10.0 * y.float()], 1)

    x, y = torch.arange(20.0).view(5, 1, 2, 2), torch.tensor([3, 1, 4, 1, 5])
    F = features(Conditional(), TensorDataset(x, y), "output", predict=False, batch_size=2, progress=False)
    np.testing.assert_allclose(F.features[:, 1], [30, 10, 40, 10, 50])
    np.testing.assert_allclose(F.features[:, 0], x.flatten(1).sum(1).numpy())
    with pytest.raises(ValueError, match="needs each picture's label"):
        features(Conditional(), x, "output", predict=False, progress=False)


def test_a_conditional_vaes_mean_encoder_is_embedded_with_the_labels():
    from netgaze.lab.models import build_model

    vae = build_model("cvae", in_channels=1, image_size=8, latent=3, num_classes=4, arch="linear").eval()
    x, y = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 3, 0, 1])
    F = features(vae.mean_encoder(), TensorDataset(x, y), "output", predict=False, batch_size=4, progress=False)
    with torch.no_grad():
        np.testing.assert_allclose(F.features, vae.encode(x, y)[0].numpy(), rtol=1e-6, atol=1e-6)


def test_subset_paths_thumbnails_and_errors(data):
    x, y = data
    ds = Subset(Named(x.clamp(0, 1), y), [5, 2, 9])
    F = features(toy_model(), ds, "1", thumbnail_size=2, progress=False)
    assert F.paths == ["img/005.png", "img/002.png", "img/009.png"] and F.classes == Named.classes
    expected = (torch.nn.functional.avg_pool2d(x.clamp(0, 1)[[5, 2, 9]], 2)[:, 0] * 255).round().byte().numpy()
    assert F.thumbnails.shape == (3, 2, 2, 3)
    np.testing.assert_array_equal(F.thumbnails[..., 1], expected)
    with pytest.raises(ValueError, match="shuffle"):
        features(toy_model(), DataLoader(TensorDataset(x, y), shuffle=True), "1", progress=False)
    with pytest.raises(LayerError, match="unknown layer"):
        features(toy_model(), x, "conv9", progress=False)
    assert prelogit_layer(toy_model()) == "3"
    assert pool(torch.ones(2, 3, 5)).shape == (2, 3)
    assert isinstance(F, Features)
