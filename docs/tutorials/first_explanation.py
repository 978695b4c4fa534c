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
# # Your first explanation
#
# A small convolutional network, trained for a few seconds on netgaze's synthetic `shapes`
# pictures, then asked *where it looks*: Grad-CAM on its last convolutional stage, guided
# backpropagation for the fine detail, guided Grad-CAM for both, drawn with `ng.viz` and
# saved as a PNG. Everything runs on a CPU in seconds.

# %%
import torch
from torch import nn
import netgaze as ng

torch.manual_seed(0)
train = ng.datasets.shapes("train", n=400, size=32)      # coloured shapes, 5 classes, [0, 1] pictures
test = ng.datasets.shapes("test", n=16, size=32)
print(train.classes, train[0][0].shape)

# %% [markdown]
# Any `torch.nn.Module` works; netgaze addresses its layers by their `named_modules()` names.

# %%
model = nn.Sequential()
model.add_module("conv1", nn.Conv2d(3, 16, 3, padding=1))
model.add_module("relu1", nn.ReLU())
model.add_module("pool1", nn.MaxPool2d(2))
model.add_module("conv2", nn.Conv2d(16, 32, 3, padding=1))
model.add_module("relu2", nn.ReLU())
model.add_module("pool", nn.AdaptiveAvgPool2d(1))
model.add_module("flatten", nn.Flatten())
model.add_module("fc", nn.Linear(32, len(train.classes)))

loader = torch.utils.data.DataLoader(train, batch_size=32, shuffle=True)
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(3):
    for x, y in loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
model.eval()
x = torch.stack([test[i][0] for i in range(8)])
y = torch.tensor([test[i][1] for i in range(8)])
print("accuracy on 8 test pictures:", (model(x).argmax(1) == y).float().mean().item())

# %% [markdown]
# ## Grad-CAM
#
# `ng.gradcam(model, x, layer, target)`: the layer by name (or `-1`, the last spatial stage,
# found by netgaze's stage rule), the target by default each picture's top class. The maps
# come back raw (not normalised) at the input's size.

# %%
print(ng.layer_names(model, stages=True))
cam = ng.gradcam(model, x, layer="relu2")
assert cam.shape == (8, 32, 32)
assert torch.equal(cam, ng.gradcam(model, x))            # layer=-1 picks the same stage here
cam_true = ng.gradcam(model, x, "relu2", target=ng.Class(y))   # the true class of each picture

# %% [markdown]
# ## Guided backpropagation and guided Grad-CAM
#
# Gradient methods return one value per input pixel and channel.

# %%
gb = ng.guided_backprop(model, x)
ggc = ng.guided_gradcam(model, x, "relu2")
print(gb.shape, ggc.shape)

# %% [markdown]
# ## Drawing and saving
#
# `ng.viz` turns tensors into `uint8` pictures: `overlay` colours a map over its picture,
# `attribution_image` shows signed attributions, `grid` lays tiles out, `save_png` writes
# (atomically). A call never changed the model: no hook is left behind.

# %%
picture = ng.viz.grid(list(ng.viz.to_uint8(x)) + list(ng.viz.overlay(x, cam)) + list(ng.viz.overlay(x, cam_true))
                      + list(ng.viz.attribution_image(gb)), ncols=8,
                      row_labels=["picture", "Grad-CAM", "true class", "guided BP"])
path = ng.viz.save_png(picture, "first_explanation.png")
print(path, picture.shape)
assert path.exists() and not any(m._forward_hooks for m in model.modules())
