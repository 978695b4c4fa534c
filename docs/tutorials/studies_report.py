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
# # Studies and the report
#
# A study is one call on a run folder: it explains the same pictures in several ways and
# writes PNGs plus a JSON manifest of its numbers into the run's `artifacts/`. The report
# reads run folders (and only them) and writes one self-contained HTML page.

# %%
from pathlib import Path
import netgaze as ng

run = ng.train_classifier(data="shapes", model="simple-cnn", epochs=2, out="runs/shapes",
                          data_options={"n": 200, "size": 32}, progress=False)

# %% [markdown]
# ## Across layers
#
# Grad-CAM of every stage of the model on the same test pictures, with guided Grad-CAM beside.

# %%
layers = ng.studies.layers_study(run, n_images=3)
print(sorted(p.name for p in (run.path / "artifacts").rglob("*") if p.is_file())[:10])

# %% [markdown]
# ## Across epochs
#
# One picture per row, one checkpoint per column; a GIF and the attention curve over training.

# %%
epochs = ng.studies.epochs_study(run, n_images=2)
print(sorted(p.relative_to(run.path).as_posix() for p in (run.path / "artifacts").rglob("*.json")))

# %% [markdown]
# ## The report
#
# `ng.build_report(paths)` writes `report.html` (into the run folder by default): the runs'
# configuration, curves, every study's figures and tables, and findings written from the numbers.
# It reads nothing outside the run folders and embeds its pictures, so the page works offline.

# %%
page = ng.build_report([run.path])
html = Path(page).read_text()
print(page, len(html) // 1024, "KiB")
assert "<html" in html.lower() and "Content-Security-Policy" in html
