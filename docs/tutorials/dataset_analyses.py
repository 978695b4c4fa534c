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
# # Dataset-wide analyses
#
# Does a model solve the task the way we think? This tutorial plants a shortcut, a small
# checkerboard in a corner of most training triangles, trains a small CNN that can learn it,
# and asks three questions of the whole test set, without telling the analyses about the marker:
#
# - **strategies** (SpRAy): cluster each class's explanations; a cluster whose maps stay off the
#   object is flagged as a likely shortcut;
# - **dissection** (Network Dissection): which units fire on which concept (each class's object,
#   background, the marker);
# - **top examples**: the pictures that excite each unit most.

# %%
import netgaze as ng

marker = dict(marker_classes=["triangle"], marker_rate=0.9)
run = ng.train_classifier(data="shapes", model="simple-cnn", epochs=3, out="runs/marker",
                          data_options=dict(n=300, size=32, **marker), progress=False)
test = ng.datasets.shapes("test", n=120, size=32, **marker)
triangle = test.classes.index("triangle")
print(sum(test.has_marker(i) for i in range(len(test))), "of", len(test), "test pictures carry the marker")

# %% [markdown]
# ## Strategies
#
# The triangles' Grad-CAM maps are pooled, normalised and clustered (spectral clustering, the
# number of clusters chosen by the eigengap). Each cluster's summary says how many pictures it
# holds, where its mean map peaks, how often its maps peak on the object and (because this
# dataset knows) how many of its pictures carry the marker. The marker is never used to
# cluster; `marker_f1` measures afterwards how well one cluster matches "has the marker".
# With a model this small and this little training, read the numbers rather than the flag:
# the shortcut rule compares clusters by how much of their maps lies on the object, and a
# half-trained model looks off the object in every cluster.

# %%
found = ng.strategies(run.model, test, classes=["triangle"], progress=False)
for s in found.summaries[triangle]:
    print(f"cluster {s.cluster}: {s.size} pictures, mean map peaks {s.peak}, "
          f"marker share {s.marker_share:.2f}, peak on object {s.peak_on_object:.2f}, flagged: {s.shortcut}")
print("best match to 'has the marker' (cluster, F1):", found.marker_f1(triangle))
print(found.save("out/strategies"))

# %% [markdown]
# ## Dissection
#
# Every conv unit's activation above its top 0.5% against each concept mask, in one streaming
# pass; a unit whose best IoU passes 0.04 is a detector of that concept.

# %%
units = ng.dissect(run.model, test, progress=False)
print(units.concepts)
for layer in units.layers:
    print(layer.name, f"{int(layer.detector.sum())} of {len(layer.detector)} units are detectors:",
          {k: v for k, v in layer.detectors_per_concept(units.concepts).items() if v})
print("units most tied to the marker:", units.top_units("marker", k=3))
print(units.save("out/dissection"))

# %% [markdown]
# ## Top examples
#
# For each channel of a layer, the k test pictures with the highest peak activation and the
# crop around each peak; the report shows them beside the channel's activation maximization.

# %%
top = ng.top_examples(run.model, test, "features.relu3", channels=range(4), k=4, progress=False)
for row, channel in enumerate(top.channels):
    marked = [bool(test.has_marker(int(i))) for i in top.indices[row]]
    print(f"channel {channel}: pictures {top.indices[row].tolist()}, with the marker: {marked}")
assert top.indices.shape == (4, 4)
