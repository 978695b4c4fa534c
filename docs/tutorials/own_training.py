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
# # Your own training into a run folder
#
# The training lab writes a **run folder**: the resolved configuration (`run.json`), one line
# per epoch (`history.jsonl`), a checkpoint per epoch (safetensors, with the metadata that
# rebuilds the model) and a `curves.png`. Everything downstream (studies, analyses, the
# report, the explorer) reads that folder. Here: a small CNN on the embedded `digits` set,
# two epochs at 16 px, a few seconds on a CPU.

# %%
import json
from pathlib import Path
import torch
import netgaze as ng

run = ng.train_classifier(data="digits", model="simple-cnn", epochs=2, batch_size=64,
                          out="runs/digits", data_options={"size": 16}, progress=False)
print(sorted(p.name for p in Path("runs/digits").iterdir()))
print(sorted(p.name for p in Path("runs/digits/checkpoints").iterdir()))

# %% [markdown]
# ## What the folder holds

# %%
config = json.loads(Path("runs/digits/run.json").read_text())
print(config["model"], config["data"], config["epochs"], config["seed"])
for line in Path("runs/digits/history.jsonl").read_text().splitlines():
    print(json.loads(line))

# %% [markdown]
# ## Loading it back
#
# `ng.load_run` rebuilds the model from the checkpoint's metadata (no pickle is executed; the
# weights' SHA-256 is checked) and gives it back in eval mode, with its classes, history,
# configuration and datasets. `epoch=` picks an earlier checkpoint.

# %%
again = ng.load_run("runs/digits")
first = ng.load_run("runs/digits", epoch=1)
print(again.classes, again.epoch, first.epoch, len(again.history))
assert all(torch.equal(a, b) for a, b in zip(again.model.state_dict().values(), run.model.state_dict().values()))

test = again.dataset("test")
x, y = next(iter(torch.utils.data.DataLoader(test, batch_size=8)))
print("accuracy on 8 test pictures:", (again.model(x).argmax(1) == y).float().mean().item())
cam = ng.gradcam(again.model, x)              # the lab's models take [0, 1] pictures and normalise inside
ng.viz.save_png(ng.viz.grid(ng.viz.overlay(x, cam), ncols=8), "digits_gradcam.png")

# %% [markdown]
# ## Resuming
#
# A folder that exists is never overwritten: training again needs `resume=True`, which continues
# from the last complete checkpoint (a different configuration is refused before anything is
# written).

# %%
try:
    ng.train_classifier(data="digits", model="simple-cnn", epochs=2, out="runs/digits",
                        data_options={"size": 16}, progress=False)
except ng.UserError as err:
    print("refused:", err)
longer = ng.train_classifier(data="digits", model="simple-cnn", epochs=3, batch_size=64, out="runs/digits",
                             data_options={"size": 16}, progress=False, resume=True)
print(longer.epoch, len(longer.history))
assert longer.epoch == 3
