"""The Embedding page at scale: points as packed binary (``POST /api/embedding.bin``) equal to the
JSON answer, drawn with WebGL (twgl.js, vendored), hover and click on the right point."""
from __future__ import annotations

import io
import json
import re
import shutil
import struct

import numpy as np
import pytest
from starlette.testclient import TestClient

from serve_fixtures import LOCAL_URL

from netgaze.serve import Sources, create_app
from netgaze.serve.app import STATIC
from netgaze.serve.embedding_points import unpack

N_POINTS = 6000


def _artifact(path, Y, indices, labels=None, predictions=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"features": np.zeros((len(Y), 3), np.float32), "embedding": np.asarray(Y), "indices": np.asarray(indices)}
    arrays.update({k: np.asarray(v) for k, v in (("labels", labels), ("predictions", predictions)) if v is not None})
    np.savez_compressed(path, **arrays)


@pytest.fixture(scope="module")
def embedded(serve_runs, tmp_path_factory):
    """Copies of the tiny classifier with embedding artifacts: ``blobs`` (N_POINTS points in
    blobs, each one of the test pictures with its label), ``wide`` (an x range 5 times the y
    range; a NaN row; a negative label; a label past 65,535), and broken ones."""
    import netgaze as ng

    root = tmp_path_factory.mktemp("embedded")
    test = ng.load_run(serve_runs["cnn"]).dataset("test")
    test_labels = np.array([int(test[i][1]) for i in range(len(test))])
    runs = {}

    def copy(name):
        run = root / name
        shutil.copytree(serve_runs["cnn"], run, ignore=shutil.ignore_patterns("artifacts"))
        runs[name] = run
        return run / "artifacts" / "embed" / "embedding.npz"

    rng = np.random.default_rng(0)
    indices = rng.integers(0, len(test), N_POINTS)
    labels = test_labels[indices]
    centres = rng.uniform(-10, 10, size=(test_labels.max() + 1, 2))
    _artifact(copy("blobs"), centres[labels] + rng.normal(size=(N_POINTS, 2)), indices, labels,
              np.where(rng.random(N_POINTS) < 0.2, (labels + 1) % (test_labels.max() + 1), labels))
    Y = np.stack([np.linspace(-5, 5, 7), np.linspace(1, -1, 7)], 1)   # x spans 10, y spans 2
    Y[3] = np.nan
    _artifact(copy("wide"), Y, np.arange(7), [0, 1, -1, 2, 70_000, 3, 4], None)
    _artifact(copy("flat"), np.zeros(9), np.arange(9))                                       # not [n, 2]
    _artifact(copy("unequal"), np.zeros((9, 2)), np.arange(8))                               # 8 indices, 9 points
    _artifact(copy("floats"), np.zeros((9, 2)), np.arange(9), np.full(9, 0.5))               # labels of floats
    _artifact(copy("negative"), np.zeros((9, 2)), np.arange(-1, 8))                          # index -1
    bogus = copy("bogus")
    bogus.parent.mkdir(parents=True, exist_ok=True)
    bogus.write_bytes(b"PK\x03\x04 this is no zip")
    return runs


@pytest.fixture(scope="module")
def client(embedded, serve_runs):
    sources = Sources.from_arguments([str(serve_runs["cnn"])] + [str(p) for p in embedded.values()])
    with TestClient(base_url=LOCAL_URL, app=create_app(sources), raise_server_exceptions=False) as c:
        yield c


def _both(client, body):
    as_json = client.post("/api/embedding", json=body)
    packed = client.post("/api/embedding.bin", json=body)
    assert as_json.status_code == 200 and packed.status_code == 200, (as_json.text, packed.text[:200])
    assert packed.headers["content-type"] == "application/octet-stream"
    return as_json.json(), packed.content


@pytest.mark.parametrize("body", [{"run": "cnn", "method": "pca", "limit": 40},
                                  {"run": "blobs", "layer": "artifact"}, {"run": "wide", "layer": "artifact"}])
def test_packed_points_decode_to_the_json_points(client, body):
    data, packed = _both(client, body)
    # the layout, read by hand: magic, header length, an 8-byte-aligned start of the columns
    assert packed[:4] == b"NGE1"
    (length,) = struct.unpack_from("<I", packed, 4)
    header = json.loads(packed[8:8 + length])
    assert (8 + length) % 8 == 0 and all(c["offset"] % 8 == 0 for c in header["columns"].values())
    assert header["n"] == len(data["points"]) and header["format"] == "netgaze-embedding"
    assert {k: header[k] for k in ("title", "classes", "run", "split")} == \
        {k: data[k] for k in ("title", "classes", "run", "split")}
    _, columns = unpack(packed)
    points = data["points"]
    # the same numbers: float32 of the JSON's coordinates are the packed float32 exactly
    assert np.array_equal(np.float32([p["x"] for p in points]), columns["x"])
    assert np.array_equal(np.float32([p["y"] for p in points]), columns["y"])
    assert columns["index"].tolist() == [p["index"] for p in points]
    for name, key in (("label", "label"), ("pred", "pred")):
        if name in columns:
            none = header["columns"][name]["none"]
            assert [None if v == none else v for v in columns[name].tolist()] == [p[key] for p in points]
        else:
            assert all(p[key] is None for p in points)
    assert all(0 <= p["x"] <= 1 and 0 <= p["y"] <= 1 for p in points)


def test_an_artifact_keeps_its_proportions_and_its_odd_rows(client):
    data, packed = _both(client, {"run": "wide", "layer": "artifact"})
    header, columns = unpack(packed)
    points = data["points"]
    assert [p["index"] for p in points] == [0, 1, 2, 4, 5, 6]            # the NaN row is left out, and said so
    assert "1 points with non-finite coordinates left out" in data["title"]
    xs, ys = np.array([p["x"] for p in points]), np.array([p["y"] for p in points])
    assert xs.min() == 0 and xs.max() == 1                                # one scale for both axes:
    assert ys.max() - ys.min() == pytest.approx(0.2, abs=1e-5)            # y spans a fifth of x, centred
    assert (ys.max() + ys.min()) / 2 == pytest.approx(0.5, abs=1e-5)
    assert [p["label"] for p in points] == [0, 1, None, 70_000, 3, 4]     # a negative label is none
    assert header["columns"]["label"]["dtype"] == "<u4"                   # 70,000 classes need 32 bits
    assert "pred" not in header["columns"]


@pytest.mark.parametrize("run, words", [("flat", "not [n, 2]"), ("unequal", "indices is (8,)"),
                                        ("floats", "labels holds float"), ("negative", "not picture numbers"),
                                        ("bogus", "BadZipFile"), ("cnn", "no embedding artifact")])
@pytest.mark.parametrize("path", ["/api/embedding", "/api/embedding.bin"])
def test_a_broken_artifact_is_a_one_line_error(client, run, words, path):
    answer = client.post(path, json={"run": run, "layer": "artifact"})
    assert answer.status_code == 400 and answer.headers["content-type"].startswith("application/json")
    assert list(answer.json()) == ["error"] and words in answer.json()["error"] and "\n" not in answer.json()["error"]
    assert client.get("/api/health").json()["status"] == "ok"


def test_too_many_points_are_refused_before_reading_them(client, monkeypatch):
    from netgaze.serve import embedding_points

    from netgaze.serve.cache import MemoryLRU

    monkeypatch.setattr(embedding_points, "MAX_ARTIFACT_POINTS", N_POINTS - 1)
    monkeypatch.setattr(client.app.state.explorer, "results", MemoryLRU(1 << 20))   # no cached points
    answer = client.post("/api/embedding.bin", json={"run": "blobs", "layer": "artifact"})
    assert answer.status_code == 400 and f"at most {N_POINTS - 1:,}" in answer.json()["error"]


def test_the_packed_endpoint_obeys_the_guard(client):
    body = {"run": "blobs", "layer": "artifact"}
    assert client.post("/api/embedding.bin", json=body, headers={"origin": "http://attacker.example"}).status_code == 403
    assert client.post("/api/embedding.bin", json=body, headers={"host": "attacker.example"}).status_code == 403
    assert client.get("/api/embedding.bin").status_code == 405
    answer = client.post("/api/embedding.bin", json={**body, "path": "/etc/passwd"})
    assert answer.status_code == 400 and "path" in answer.json()["error"]


def test_the_webgl_library_is_vendored_and_loaded_from_the_package(client):
    page = client.get("/").text
    assert '<script src="/static/vendor/twgl.js" defer></script>' in page
    assert page.index("/static/vendor/twgl.js") < page.index("/static/scatter.js") < page.index("/static/data.js")
    script = client.get("/static/vendor/twgl.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "@license twgl.js" in script.text[:300]
    # nothing the page's Content-Security-Policy (no 'unsafe-eval') would refuse
    assert not re.search(r"\beval\(|new Function\(|[^.\w]Function\(", script.text)
    assert (STATIC / "vendor" / "twgl.LICENSE.md").is_file() and "7.0.0" in (STATIC / "vendor" / "README.md").read_text()
    import tomllib
    from pathlib import Path
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert "serve/static/vendor/*" in pyproject["tool"]["setuptools"]["package-data"]["netgaze"]


# ------------------------------------------------------------------------------ in Chromium
def _expected_point(xs, ys, px, py, transform, size, reach=8.0):
    """What the page must show under the pointer at canvas pixel (px, py), worked out here from the
    decoded points: of the points whose disc holds the pointer, the one drawn last; else the nearest
    within ``reach`` pixels; else None."""
    sx, sy = transform["ox"] + xs * transform["s"], transform["oy"] - ys * transform["s"]
    d = (sx - px) ** 2 + (sy - py) ** 2
    inside = np.flatnonzero(d <= (size / 2 + 1) ** 2)
    if len(inside):
        return int(inside.max())
    near = np.flatnonzero(d <= reach ** 2)
    return int(near[np.argmin(d[near])]) if len(near) else None


def test_the_embedding_page_draws_hovers_and_clicks_the_right_points(client, embedded, serve_runs, tmp_path):
    from test_serve_browser import _skip_reason

    if _skip_reason() is not None:
        pytest.skip(_skip_reason())
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from browser_tour import CHROMIUM, wait_for_new
    from netgaze.serve import BackgroundServer, Settings

    header, columns = unpack(client.post("/api/embedding.bin", json={"run": "blobs", "layer": "artifact"}).content)
    xs, ys = columns["x"].astype(np.float64), columns["y"].astype(np.float64)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
    errors: list[str] = []
    sources = Sources.from_arguments([str(embedded["blobs"])])
    with BackgroundServer(sources, Settings()) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/#/embedding?run=blobs&layer=artifact")
            wait_for_new(page, "#scatter", None)
            assert page.get_attribute("#scatter", "data-renderer") == "webgl"
            assert int(page.get_attribute("#scatter", "data-points")) == N_POINTS
            assert f"{N_POINTS:,} test pictures" in page.text_content("#embed-title")

            # drawn: the plot's pixels hold every class's colour, spread over a square, not a line
            shot = tmp_path / "embedding.png"
            page.locator("#scatter canvas.scatter-points").screenshot(path=str(shot))
            pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
            coloured = (np.abs(pixels - 255).sum(-1) > 60)
            assert coloured.mean() > 0.01
            rows, cols = np.nonzero(coloured)
            assert (rows.max() - rows.min()) > 0.3 * pixels.shape[0] and (cols.max() - cols.min()) > 0.3 * pixels.shape[1]
            for k in set(columns["label"].tolist()):
                rgb = np.array([int(palette[k][i:i + 2], 16) for i in (1, 3, 5)])
                assert (np.abs(pixels - rgb).sum(-1) < 40).sum() > 20, palette[k]   # opaque at this size

            def hover_checks(count, seed):
                rng = np.random.default_rng(seed)
                rect = page.evaluate("() => { const r = state.scatter.canvas.getBoundingClientRect(); "
                                     "return [r.left, r.top, r.width, r.height]; }")
                transform = page.evaluate("() => state.scatter.transform()")
                size = page.evaluate("() => state.scatter.pointSize()")
                checked = 0
                for i in rng.permutation(N_POINTS).tolist():
                    cx = round(rect[0] + transform["ox"] + xs[i] * transform["s"])
                    cy = round(rect[1] + transform["oy"] - ys[i] * transform["s"])
                    if not (rect[0] + 4 < cx < rect[0] + rect[2] - 4 and rect[1] + 4 < cy < rect[1] + rect[3] - 4):
                        continue
                    want = _expected_point(xs, ys, cx - rect[0], cy - rect[1], transform, size)
                    page.mouse.move(cx, cy)
                    page.wait_for_function("(want) => { const t = document.getElementById('tooltip'); "
                                           "return !t.hidden && t.dataset.index === want; }",
                                           arg=str(columns["index"][want]), timeout=5000)
                    name = header["classes"][columns["label"][want]]
                    assert page.text_content("#tooltip-text").startswith(name)
                    assert page.evaluate("() => state.scatter.hovered") == want
                    checked += 1
                    if checked == count:
                        return
                raise AssertionError("too few points inside the plot")

            hover_checks(12, 0)
            page.mouse.move(5, 5)                                   # off the plot: the tooltip goes
            page.wait_for_selector("#tooltip", state="hidden")
            # zoom in around the plot's centre: the points spread out, and hover still names the right one
            box = page.locator("#scatter canvas.scatter-points").bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            before = page.evaluate("() => state.scatter.transform().s")
            page.mouse.wheel(0, -600)
            page.wait_for_function("(s) => state.scatter.transform().s > 1.5 * s", arg=before)
            page.wait_for_timeout(300)
            hover_checks(6, 1)
            page.screenshot(path=str(tmp_path / "page.png"))
            # a click opens that picture on the Explain page
            target = int(page.evaluate("() => state.scatter.hovered"))
            x, y = page.evaluate("(i) => state.scatter.toClient(i)", target)
            want = _expected_point(xs, ys, round(x) - box["x"], round(y) - box["y"],
                                   page.evaluate("() => state.scatter.transform()"),
                                   page.evaluate("() => state.scatter.pointSize()"))
            page.mouse.click(round(x), round(y))
            page.wait_for_function("() => document.body.dataset.page === 'explain'")
            wait_for_new(page, "#tiles", None)
            assert f"index={columns['index'][want]}" in page.evaluate("() => location.hash")
            assert page.evaluate("() => state.scatter") is None                # the plot's WebGL context was freed
        finally:
            browser.close()
    assert errors == []


def test_every_field_of_the_packed_request_takes_any_json_value_without_a_500(client):
    from test_serve_hostile import HOSTILE_VALUES

    body = {"run": "blobs", "layer": "artifact", "method": "pca", "limit": 20, "split": "test", "epoch": 1}
    for key in body:
        for value in HOSTILE_VALUES:
            answer = client.post("/api/embedding.bin", json={**body, key: value})
            assert answer.status_code < 500, (key, value, answer.text[:200])
            if answer.status_code >= 400:
                assert list(answer.json()) == ["error"] and "\n" not in answer.json()["error"]
            else:
                assert answer.content[:4] == b"NGE1"
