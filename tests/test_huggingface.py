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
        "swinv2": lambda: T.Swinv2Config(image_size=SIZE, patch_size=2, embed_dim=8, depths=[1, 1, 1, 2],
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
    # Swin V2 is post-norm (a block's layernorm_before reads the attention's output, not the
    # stage's map): read at the last stage's output, as torchvision's swin_v2_t ("features.7")
    # and timm's swinv2 ("layers.3"); Swinv2Stage returns a tuple, so its first entry.
    "swinv2": "swinv2.encoder.layers.3[0]",
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


def test_swinv2_every_stage_is_seen_through_its_tuple():
    model = _classifier("swinv2")
    names = ng.stage_names(model, (3, SIZE, SIZE))
    assert names == ["swinv2.embeddings[0]", "swinv2.encoder.layers.0[0]", "swinv2.encoder.layers.1[0]",
                     "swinv2.encoder.layers.3[0]"]
    assert ng.resolve_layer(model, -1, (3, SIZE, SIZE))[0] == "swinv2.encoder.layers.3[0]"
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(4))
    maps = ng.gradcam(model, x, layer=[-4, -3, -2, -1])            # a tuple-returning stage never refused
    assert list(maps) == names
    assert all(m.shape == (2, SIZE, SIZE) and torch.isfinite(m).all() for m in maps.values())
    # the last stage (no patch merging) passes on its last block's output: the same map
    assert torch.allclose(maps[names[-1]], ng.gradcam(model, x, "swinv2.encoder.layers.3.blocks.1[0]"))


# -- default-layer maps equal pytorch-grad-cam's Hugging Face recipe --------------------
def _tokens_to_map(t: torch.Tensor, prefix: int = 0) -> torch.Tensor:
    """pytorch-grad-cam's reshape_transform for Hugging Face transformers (swinT_reshape_transform_huggingface,
    ViT's with its class token dropped): [B, N, C] tokens on a square grid -> [B, C, h, w]."""
    t = t[:, prefix:, :]
    side = int(round(t.size(1) ** 0.5))
    return t.reshape(t.size(0), side, side, t.size(2)).transpose(2, 3).transpose(1, 2)


# The peers' recommended layer per family, as a module of the model (pytorch-grad-cam's Hugging
# Face tutorial: ``convnext.encoder.stages[-1].layers[-1]``, ``resnet.encoder.stages[-1].layers[-1]``;
# its README for ViT / Swin: the last block's first norm; transformers 5 names ViT's blocks
# ``vit.layers``), and the recipe's reshape_transform.
PEER_LAYERS = {
    "vit": (lambda m: m.vit.layers[-1].layernorm_before, lambda t: _tokens_to_map(t, prefix=1)),
    "convnext": (lambda m: m.convnext.encoder.stages[-1].layers[-1], None),
    "resnet": (lambda m: m.resnet.encoder.stages[-1].layers[-1], None),
    "swin": (lambda m: m.swin.encoder.layers[-1].blocks[-1].layernorm_before, _tokens_to_map),
}


def _normalised(maps: torch.Tensor) -> torch.Tensor:
    """pytorch-grad-cam's scale_cam_image, applied as it does (per layer, then across layers)."""
    for _ in range(2):
        shifted = maps - maps.flatten(1).amin(1)[:, None, None]
        maps = shifted / (1e-7 + shifted.flatten(1).amax(1)[:, None, None])
    return maps


def _close(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    assert float(theirs.abs().max()) > 0
    assert float((ours.double() - theirs.double()).abs().max()) <= 1e-4


@pytest.mark.parametrize("kind", list(PEER_LAYERS))
def test_default_layer_equals_pytorch_grad_cams_hf_recipe(kind):
    pgc = pytest.importorskip("pytorch_grad_cam", reason="pytorch-grad-cam is not installed (pip install grad-cam)")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    class HuggingfaceToTensorModelWrapper(torch.nn.Module):     # the recipe's wrapper: logits out
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x).logits

    model = _classifier(kind)
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    classes = [1, 3]
    layer, reshape = PEER_LAYERS[kind]
    with pgc.GradCAM(model=HuggingfaceToTensorModelWrapper(model), target_layers=[layer(model)],
                     reshape_transform=reshape) as cam:
        theirs = torch.from_numpy(cam(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in classes]))
    ours = ng.gradcam(model, x, target=classes)                   # layer omitted, output omitted
    assert ours.abs().max() > 0
    _close(_normalised(ours), theirs)


def test_swinv2_default_layer_equals_the_recipe_on_the_stage_output():
    # pytorch-grad-cam hooks a module's output tensor; Swinv2Stage returns a tuple, which it cannot
    # hook (no gradient is recorded). Its recipe, done by hand on the stage's first entry.
    model = _classifier("swinv2")
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(6))
    classes = [0, 4]
    saved = {}
    handle = model.swinv2.encoder.layers[-1].register_forward_hook(lambda m, i, o: saved.update(out=o[0]))
    try:
        scores = model(x).logits[torch.arange(2), classes].sum()
        grads = torch.autograd.grad(scores, saved["out"])[0]
    finally:
        handle.remove()
    acts, grads = _tokens_to_map(saved["out"].detach()), _tokens_to_map(grads)
    cam = (grads.mean((2, 3), keepdim=True) * acts).sum(1).clamp(min=0)
    theirs = torch.nn.functional.interpolate(cam[:, None], size=(SIZE, SIZE), mode="bilinear",
                                             align_corners=False)[:, 0]
    ours = ng.gradcam(model, x, target=classes)
    assert ours.abs().max() > 0
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-7)
