"""Hugging Face models with zero configuration (issue 23, part 4): tiny models built from
configs (never downloaded), explained without ``output=`` through their ``logits``, with
default layers found through stages that return tuples (Swin) and an encoder-decoder's
encoder (Segformer)."""
import pytest
import torch

import netgaze as ng

transformers = pytest.importorskip("transformers")

SIZE = 64


def _classifier(kind: str) -> torch.nn.Module:
    T = transformers
    configs = {
        "vit": lambda: T.ViTConfig(image_size=SIZE, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                   num_attention_heads=2, intermediate_size=64, num_labels=5),
        "convnext": lambda: T.ConvNextConfig(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_labels=5),
        "resnet": lambda: T.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1],
                                         num_labels=5),
        "swin": lambda: T.SwinConfig(image_size=SIZE, patch_size=2, embed_dim=8, depths=[1, 1, 1, 2],
                                     num_heads=[1, 1, 1, 2], window_size=4, num_labels=5),
    }
    torch.manual_seed(0)
    return T.AutoModelForImageClassification.from_config(configs[kind]()).eval()


def _segformer() -> torch.nn.Module:
    T = transformers
    config = T.SegformerConfig(num_encoder_blocks=4, depths=[1, 1, 1, 1], sr_ratios=[8, 4, 2, 1],
                               hidden_sizes=[8, 16, 24, 32], num_attention_heads=[1, 1, 2, 2],
                               decoder_hidden_size=16, num_labels=4)
    torch.manual_seed(0)
    return T.SegformerForSemanticSegmentation(config).eval()


DEFAULT_LAYERS = {
    "vit": "vit.layers.1.layernorm_before",
    "convnext": "convnext.encoder.stages.3",
    "resnet": "resnet.encoder.stages.3",
    # SwinStage returns a tuple: the rule sees through it to the last block's first norm,
    # as for torchvision's and timm's Swin (not the patch embedding).
    "swin": "swin.encoder.layers.3.blocks.1.layernorm_before",
}


@pytest.mark.parametrize("kind", list(DEFAULT_LAYERS))
def test_explained_through_logits_without_output(kind):
    model = _classifier(kind)
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    assert isinstance(model(x), transformers.utils.ModelOutput)      # not a tensor
    plain = ng.gradcam(model, x)
    assert torch.equal(plain, ng.gradcam(model, x, output="logits"))
    assert torch.isfinite(plain).all() and plain.abs().sum() > 0
    assert torch.equal(ng.saliency(model, x, target=3), ng.saliency(model, x, target=3, output="logits"))


@pytest.mark.parametrize("kind", list(DEFAULT_LAYERS))
def test_default_layer(kind):
    model = _classifier(kind)
    assert ng.stage_names(model, (3, SIZE, SIZE))[-1] == DEFAULT_LAYERS[kind]
    x = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    assert torch.equal(ng.gradcam(model, x), ng.gradcam(model, x, DEFAULT_LAYERS[kind]))


def test_swin_stage_tuple_refused_as_a_layer_but_its_entry_works():
    model = _classifier("swin")
    x = torch.rand(1, 3, SIZE, SIZE)
    with pytest.raises(ng.RecorderError, match="tuple"):
        ng.gradcam(model, x, "swin.encoder.layers.3")
    assert torch.isfinite(ng.gradcam(model, x, "swin.encoder.layers.3[0]")).all()


def test_other_mappings_stay_a_clear_error():
    class Scores(torch.nn.Module):
        def forward(self, x):
            return {"scores": x.mean(dim=(2, 3)), "extra": x.sum()}

    with pytest.raises(ng.RecorderError, match="pass output="):
        ng.saliency(Scores(), torch.rand(1, 3, 4, 4))


def test_segformer_encoder_last_stage_and_logits_at_their_own_resolution():
    model = _segformer()
    stages = ng.stage_names(model, (3, SIZE, SIZE))
    assert stages == [f"segformer.stages.{i}" for i in range(4)]     # no 2x2 decoder layer
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    assert model(x).logits.shape == (2, 4, SIZE // 4, SIZE // 4)
    # A box in input pixels, scaled inside the target to the logits' grid (1/4).
    in_pixels = ng.Area(box=(8, 16, 40, 48), channel=1, size=(SIZE, SIZE))
    on_grid = ng.Area(box=(2, 4, 10, 12), channel=1)
    maps = ng.gradcam(model, x, target=in_pixels)
    assert maps.shape == (2, SIZE, SIZE) and torch.isfinite(maps).all() and maps.abs().sum() > 0
    assert torch.equal(maps, ng.gradcam(model, x, target=on_grid))
    assert torch.equal(maps, ng.gradcam(model, x, "segformer.stages.3", target=in_pixels))
    # A mask of the input's size (4x the logits') is scaled by area averaging, size= or not.
    mask = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    mask[8:40, 16:48] = True
    assert torch.allclose(ng.gradcam(model, x, target=ng.Area(mask=mask, channel=1)), maps, atol=1e-6)


def test_area_scaling_by_hand():
    output = torch.arange(16.0).view(1, 1, 4, 4)
    # (1, 1, 7, 5) on an 8x8 picture covers rows 0..3 (floor 0.5, ceil 3.5) and columns 0..2 of the 4x4 grid.
    assert ng.Area(box=(1, 1, 7, 5), size=(8, 8))(output).item() == output[0, 0, 0:4, 0:3].sum().item()
    mask = torch.zeros(8, 8)
    mask[0:2, 0:3] = 1.0          # cell (0, 0) fully, cell (0, 1) half
    assert ng.Area(mask=mask)(output).item() == pytest.approx(0.0 * 1 + 1.0 * 0.5)
    with pytest.raises(ng.ArgumentError if hasattr(ng, "ArgumentError") else ValueError, match="size="):
        ng.Area(mask=torch.ones(6, 6))(output)
    with pytest.raises(Exception, match="outside"):
        ng.Area(box=(0, 0, 9, 2), size=(8, 8))
