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
# # The explorer's HTTP API from Python
#
# `netgaze serve` answers a documented JSON API (the pages use it too). From Python, the
# explorer is an ASGI application: `netgaze.serve.create_app` builds it and Starlette's test
# client calls it in-process, with no port and no server to stop. (`netgaze serve RUN` serves
# the same application over HTTP at `http://127.0.0.1:8765/`.)

# %%
import base64
from contextlib import ExitStack
import numpy as np
from starlette.testclient import TestClient
import netgaze as ng
from netgaze.serve import Sources, create_app

run = ng.train_classifier(data="shapes", model="simple-cnn", epochs=1, out="runs/cnn",
                          data_options={"n": 128, "size": 32}, progress=False)
app = create_app(Sources.from_arguments(["runs/cnn"]))
session = ExitStack()                # closed at the end: stops the app's worker threads
client = session.enter_context(TestClient(app, base_url="http://127.0.0.1"))   # the Host a local browser sends

# %% [markdown]
# ## Health and runs

# %%
print(client.get("/api/health").json())
runs = client.get("/api/runs").json()["runs"]
info = runs[0]
print(info["id"], info["task"], info["classes"], info["stages"], info["splits"])

# %% [markdown]
# ## An explanation
#
# `POST /api/explain` names a run, a picture (by split and index, or an uploaded one), a method,
# a layer and a target. `map_f32` is the raw map as packed little-endian float32.

# %%
request = {"run": info["id"], "image": {"split": "test", "index": 0}, "method": "gradcam",
           "layer": -1, "target": {"top": 1}, "include": ["map_f32"]}
answer = client.post("/api/explain", json=request).json()
print(answer["layers"], answer["prediction"]["top"][:2], answer["batch"])
packed = answer["map_f32"]
served = np.frombuffer(base64.b64decode(packed["data"]), "<f4").reshape(packed["shape"])

# %% [markdown]
# The served map equals the library's on the same picture:

# %%
x = run.dataset("test")[0][0][None]
local = ng.gradcam(run.model, x, -1)[0].numpy()
print(served.shape, float(np.abs(served - local).max()))
assert np.allclose(served, local, atol=1e-5)

# %% [markdown]
# ## Errors are one-line JSON

# %%
bad = client.post("/api/explain", json={**request, "layer": "no.such.layer"})
print(bad.status_code, bad.json())
assert bad.status_code == 400
session.close()
