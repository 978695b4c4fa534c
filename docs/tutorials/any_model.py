# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Any model
#
# netgaze needs no configuration per architecture: `layer=-1` (or no layer at all) is the
# output of the model's last spatial stage, found by one rule for CNNs, Swin-style
# channels-last stages and vision transformers' tokens alike. This tutorial uses a torchvision
# ResNet-18 and a timm model, both with random weights (nothing is downloaded), at a small size.

# %%
import torch, torchvision
import netgaze as ng

torch.manual_seed(0)
resnet = torchvision.models.resnet18(num_classes=10).eval()
x = torch.rand(2, 3, 64, 64)
print(ng.layer_names(resnet, stages=True))         # the stages, the default (last) one last

# %% [markdown]
# ## The default layer

# %%
cam = ng.gradcam(resnet, x)                         # = layer=-1 = "layer4"
assert torch.allclose(cam, ng.gradcam(resnet, x, "layer4"))
print(cam.shape)

# %% [markdown]
# ## Several layers in one pass
#
# A list of layers (names or stage indices) gives a dict of maps from a single forward and
# backward pass, each upsampled to the input size.

# %%
maps = ng.gradcam(resnet, x, ["layer2", "layer3", -1])
print({name: tuple(m.shape) for name, m in maps.items()})
picture = ng.viz.grid([tile for m in maps.values() for tile in ng.viz.overlay(x, m)], ncols=2,
                      row_labels=list(maps))
ng.viz.save_png(picture, "resnet_layers.png")

# %% [markdown]
# ## A timm model
#
# timm models work the same way; a transformer's tokens (class token included) are read as a
# `[B, C, h, w]` grid without a `reshape_transform`.

# %%
import timm

convnext = timm.create_model("convnext_atto", pretrained=False, num_classes=10).eval()
print(ng.layer_names(convnext, stages=True))
print(ng.gradcam(convnext, x).shape)

vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10, img_size=64).eval()
stages = ng.layer_names(vit, stages=True, input_shape=(1, 3, 64, 64))   # its size is not the default 224
print(stages[-1])                                   # the last block's first norm
vit_maps = ng.gradcam(vit, x, [-2, -1])
print({name: tuple(m.shape) for name, m in vit_maps.items()})

# %% [markdown]
# ## Models by name
#
# The command line and the explorer take models as strings; `netgaze.zoo` is where they load.

# %%
from netgaze.zoo import load_named_model

loaded = load_named_model("torchvision:mobilenet_v3_small", size=64)
print(loaded.name, loaded.task, loaded.random_weights, len(loaded.classes))
print(ng.gradcam(loaded.model.eval(), x, target=ng.TopClass(2)).shape)   # top-2 classes: [2, 2, 64, 64]
