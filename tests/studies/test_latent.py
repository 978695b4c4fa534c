"""Latent studies on tiny trained VAEs: every tensor recomputed by hand from the model, imputation exactness."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from netgaze.lab.reconstruct import train_reconstruction
from netgaze.studies.imputation import hidden_error, hidden_mask, impute, imputation
from netgaze.studies.latent import interpolate, latent_embedding, latent_traversal, style_mixing


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("latent-runs")
    vae = train_reconstruction("digits", "vae-linear", latent=2, epochs=2, batch_size=256, out=root / "vae",
                               model_args={"hidden": 32}, progress=False)
    cvae = train_reconstruction("digits", "cvae", latent=2, epochs=1, batch_size=256, out=root / "cvae",
                                model_args={"hidden": 16}, progress=False)
    test = vae.dataset("test")
    yield {"vae": vae, "cvae": cvae, "test": test}
    torch.set_num_threads(before)


def test_traversal_decodes_each_swept_code(runs):
    run = runs["vae"]
    result = latent_traversal(run, dataset=runs["test"], index=3, steps=5, span=2.0)
    pictures = result.maps["traversal"]
    assert pictures.shape == (2, 5, 1, 28, 28)
    x = runs["test"][3][0][None]
    base = run.model.encode(x)[0][0]
    assert torch.allclose(result.maps["base"], base)
    for d in range(2):
        for j, value in enumerate([-2.0, -1.0, 0.0, 1.0, 2.0]):
            z = base.clone()
            z[d] = value
            assert torch.allclose(pictures[d, j], run.model.decode(z[None])[0], atol=1e-6)
    grid = result.maps["grid"]  # 2-D latent: the decoder over the square, z1 from +span (top) to -span
    assert grid.shape == (5, 5, 1, 28, 28)
    assert torch.allclose(grid[0, 4], run.model.decode(torch.tensor([[2.0, 2.0]]))[0], atol=1e-6)
    assert torch.allclose(grid[4, 0], run.model.decode(torch.tensor([[-2.0, -2.0]]))[0], atol=1e-6)
    manifest = json.loads(result.path.read_text())
    assert [f["file"] for f in manifest["figures"]] == ["latent_traversal.png", "latent_grid.png"]
    assert all(p.is_file() and p.stat().st_size > 1000 for p in result.figures)


def test_interpolation_endpoints_are_the_codes_and_class_means(runs):
    run, test = runs["vae"], runs["test"]
    result = interpolate(run, 0, 7, dataset=test, steps=4, classes=(2, 5))
    images, labels = test.tensors()
    z = run.model.encode(images)[0]
    line = result.maps["pictures"]
    assert torch.allclose(line[0], run.model.decode(z[0:1])[0], atol=1e-6)
    assert torch.allclose(line[-1], run.model.decode(z[7:8])[0], atol=1e-6)
    middle = run.model.decode((z[0:1] * 2 + z[7:8]) / 3)[0]  # t = 1/3
    assert torch.allclose(line[1], middle, atol=1e-5)
    mean2, mean5 = z[labels == 2].mean(0), z[labels == 5].mean(0)
    assert torch.allclose(result.maps["classes"][0], run.model.decode(mean2[None])[0], atol=1e-5)
    assert torch.allclose(result.maps["classes"][-1], run.model.decode(mean5[None])[0], atol=1e-5)


class ConstantVAE(nn.Module):
    """Reconstructs every picture as the same constant: the fixed point of imputation is known."""

    conditional = False

    def __init__(self, value: float):
        super().__init__()
        self.value = value
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return torch.full_like(x, self.value), None, None


def test_impute_keeps_known_pixels_and_fills_hidden_ones():
    images = torch.rand(3, 1, 6, 6)
    hidden = hidden_mask(tuple(images.shape), box=(2, 1, 5, 4))
    assert int(hidden.sum()) == 3 * 3 * 3
    fill = torch.full((1, 6, 6), 0.25)
    model = ConstantVAE(0.8)
    out = impute(model, images, hidden, fill, iterations=3)
    assert model.calls == 3
    assert torch.equal(out[~hidden], images[~hidden])  # bit for bit
    assert torch.equal(out[hidden], torch.full_like(out[hidden], 0.8))
    start = impute(model, images, hidden, fill, iterations=0)
    assert torch.equal(start[hidden], torch.full_like(start[hidden], 0.25))
    truth = torch.zeros(1, 1, 2, 2)
    filled = torch.tensor([[[[0.5, 9.0], [0.1, 9.0]]]])
    mask = torch.tensor([[[[True, False], [True, False]]]])
    assert hidden_error(filled, truth, mask).item() == pytest.approx((0.25 + 0.01) / 2)
    with pytest.raises(ValueError, match="outside"):
        hidden_mask((1, 1, 6, 6), box=(0, 0, 7, 3))
    default = hidden_mask((2, 1, 28, 28))  # centre_box: 12x12 at (8, 8)
    assert int(default.sum()) == 2 * 144 and bool(default[0, 0, 8:20, 8:20].all())


def test_imputation_study_on_a_trained_vae(runs):
    run, test = runs["vae"], runs["test"]
    images, _ = test.tensors()
    mean = torch.full((1, 28, 28), 0.3)
    result = imputation(run, dataset=test, box=(14, 0, 28, 28), iterations=5, mean_image=mean)
    hidden = result.maps["hidden"]
    assert torch.equal(result.maps["imputed"][~hidden.expand_as(images)], images[~hidden.expand_as(images)])
    expected_mean_error = ((0.3 - images[:, :, 14:]) ** 2).flatten(1).mean(1)
    assert torch.allclose(result.maps["mean_error"], expected_mean_error, atol=1e-6)
    numbers = json.loads(result.path.read_text())["numbers"]
    assert numbers["mean_fill_mse_hidden"] == pytest.approx(float(expected_mean_error.mean()), abs=1e-5)
    assert numbers["hidden_share"] == pytest.approx(0.5)
    assert (run.artifacts / "imputation.png").is_file()


def test_style_mixing_decodes_one_code_with_every_label(runs):
    run, test = runs["cvae"], runs["test"]
    result = style_mixing(run, dataset=test, n=3)
    mixed = result.maps["mixed"]
    assert mixed.shape == (3, 10, 1, 28, 28)
    images, labels = test.tensors()
    z = run.model.encode(images[:3], labels[:3])[0]
    for k in (0, 4, 9):
        assert torch.allclose(mixed[1, k], run.model.decode(z[1:2], torch.tensor([k]))[0], atol=1e-6)
    assert not torch.allclose(mixed[0, 0], mixed[0, 9])
    with pytest.raises(ValueError, match="conditional"):
        style_mixing(runs["vae"], dataset=test)


def test_latent_embedding_uses_the_means(runs):
    run, test = runs["vae"], runs["test"]
    result = latent_embedding(run, dataset=test, method="pca")
    images, labels = test.tensors()
    z = run.model.encode(images)[0]
    assert torch.allclose(result.maps["z"], z, atol=1e-6)
    assert torch.allclose(result.maps["points"], z, atol=1e-6)  # a 2-D latent is shown as is
    assert torch.equal(result.maps["labels"], labels)
    assert -1 <= result.manifest["numbers"]["silhouette_latent"] <= 1


def test_principal_traversal_decodes_the_principal_lines(runs):
    from netgaze.studies.latent import principal_directions, principal_traversal

    run, test = runs["vae"], runs["test"]
    result = principal_traversal(run, dataset=test, directions=2, steps=5, span=2.0)
    images, _ = test.tensors()
    z = run.model.encode(images)[0].detach()
    # PCA by hand: eigenvectors of the covariance, variance shares summing to one
    centred = z - z.mean(0)
    covariance = centred.T @ centred / (len(z) - 1)
    values, vectors = torch.linalg.eigh(covariance)
    assert torch.allclose(result.maps["sd"].pow(2), values.flip(0), rtol=1e-4)
    assert torch.allclose(result.maps["directions"].abs(), vectors.flip(1).T.abs(), atol=1e-4)
    assert abs(float(result.maps["explained"].sum()) - 1) < 1e-5
    mean, v, sd, _ = principal_directions(z)
    for k in range(2):
        for j, t in enumerate([-2.0, -1.0, 0.0, 1.0, 2.0]):
            code = mean + t * sd[k] * v[k]
            assert torch.allclose(result.maps["traversal"][k, j], run.model.decode(code[None])[0], atol=1e-5)
    # the plane: PC1 left to right, PC2 from +span (top) to -span
    corner = mean + 2.0 * sd[0] * v[0] + 2.0 * sd[1] * v[1]
    assert torch.allclose(result.maps["grid"][0, 4], run.model.decode(corner[None])[0], atol=1e-5)
    numbers = json.loads(result.path.read_text())["numbers"]
    assert numbers["explained"][0] >= numbers["explained"][1]
    assert len(numbers["change_per_unit"]) == 2 and numbers["latent"] == 2
    assert [f["file"] for f in result.manifest["figures"]] == ["principal_traversal.png", "principal_grid.png"]
    assert "PC1" in result.manifest["tables"][0]["rows"][0]


def test_style_mixing_is_judged_by_a_classifier(runs):
    run, test = runs["cvae"], runs["test"]

    class ReadsTheLabel(nn.Module):  # a "classifier" that answers from a lookup of the decoded pictures
        def __init__(self, answers):
            super().__init__()
            self.answers = answers

        def forward(self, x):
            return torch.nn.functional.one_hot(self.answers[: len(x)], 10).float()

    k = run.model.num_classes
    right = torch.arange(k).repeat(3)
    result = style_mixing(run, dataset=test, n=3, classifier=ReadsTheLabel(right))
    assert result.manifest["numbers"]["judged_as_label"] == 1.0
    wrong = (right + 1) % k
    wrong[:k] = right[:k]  # the first picture's row right, the other two wrong
    result = style_mixing(run, dataset=test, n=3, classifier=ReadsTheLabel(wrong))
    assert abs(result.manifest["numbers"]["judged_as_label"] - 1 / 3) < 1e-6


def test_typical_pictures_are_nearest_to_the_class_means(runs):
    from netgaze.studies.latent import typical_pictures
    from netgaze.studies.latent_common import VAERun

    vr = VAERun(runs["vae"], runs["test"])
    a, b = typical_pictures(vr, (2, 5))
    z = vr.encode(vr.images, vr.labels)
    for index, c in ((a, 2), (b, 5)):
        assert int(vr.labels[index]) == c
        mean = z[vr.labels == c].mean(0)
        distances = (z[vr.labels == c] - mean).norm(dim=1)
        assert abs(float((z[index] - mean).norm()) - float(distances.min())) < 1e-6
