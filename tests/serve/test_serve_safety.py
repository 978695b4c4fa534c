"""The explorer's safety: uploads checked by content, no path reaches a file, one-line 4xx errors,
the token guard, a static strict page, and the command line's checks."""
from __future__ import annotations

import io
import re
import struct
import zlib

import pytest
import torch
from PIL import Image
from starlette.testclient import TestClient

import netgaze as ng
from netgaze.serve import Settings, create_app
from netgaze.serve.app import STATIC
from netgaze.serve.uploads import to_tensor
from serve_fixtures import LOCAL_URL, ATOL, answer_map as _map



def _png(size=(20, 20), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (200, 10, 10) if mode == "RGB" else 0).save(buffer, format="PNG")
    return buffer.getvalue()


def _bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (no real pixel data needed to be refused)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_uploads_are_checked_and_explained(client, serve_runs):
    data = _png((40, 30))
    answer = client.post("/api/upload", content=data).json()
    assert len(answer["upload"]) == 16 and (answer["width"], answer["height"]) == (40, 30)
    form = client.post("/api/upload", files={"file": ("x.png", data, "image/png")})
    assert form.status_code == 200
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 90, 200)).save(buffer, format="WEBP")
    assert client.post("/api/upload", content=buffer.getvalue()).status_code == 200
    run = ng.load_run(serve_runs["cnn"])
    explained = client.post("/api/explain", json={"run": "cnn", "image": {"upload": answer["upload"]}}).json()
    x = to_tensor(Image.open(io.BytesIO(data)), (32, 32), 3)[None]
    assert torch.allclose(_map(explained), ng.gradcam(run.model, x, "features")[0], atol=ATOL)
    assert client.get(f"/api/uploads/{answer['upload']}.png").headers["content-type"] == "image/png"
    refused = {
        "text": (b"hello, this is not a picture", 415),
        "pickle": (b"\x80\x04\x95" + b"\x00" * 20, 415),
        "svg": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", 415),
        "bomb": (_bomb_png(40000, 40000), 413),
        "truncated": (data[:40], 400),
        "empty": (b"", 400),
        "huge": (b"\x89PNG\r\n\x1a\n" + b"\x00" * (9 * 1024 * 1024), 413),
    }
    for name, (body, status) in refused.items():
        r = client.post("/api/upload", content=body)
        assert r.status_code == status, (name, r.text)
        assert list(r.json()) == ["error"] and "\n" not in r.json()["error"]


def _black_png(width: int, height: int) -> bytes:
    """A valid RGB PNG of black pixels, written by hand: 4097x4096 is ~50 KB compressed."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(bytes((1 + 3 * width) * height), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def test_the_upload_pixel_limit_is_netgaze_s_own_check(client):
    """4097x4096 pixels: above netgaze's 4096x4096 (16.7 megapixels), far below Pillow's own limit
    (89 megapixels), a valid picture well under the byte limit: only netgaze's check refuses it."""
    from netgaze.serve.api_error import ApiError
    from netgaze.serve.uploads import MAX_PIXELS, MAX_UPLOAD_BYTES, check_upload

    over = _black_png(4097, 4096)
    assert MAX_PIXELS == 4096 * 4096 < 4097 * 4096 < Image.MAX_IMAGE_PIXELS and len(over) < MAX_UPLOAD_BYTES
    with pytest.raises(ApiError, match=r"4097x4096 pixels; the limit is 16777216 pixels") as caught:
        check_upload(over)
    assert caught.value.status == 413
    answer = client.post("/api/upload", content=over)
    assert answer.status_code == 413 and "4097x4096 pixels" in answer.json()["error"], answer.text
    assert check_upload(_black_png(4096, 4096)).size == (4096, 4096)        # the limit itself is accepted


def test_no_request_reaches_a_file_by_path(client):
    probes = ["/api/runs/..%2F..%2Fetc%2Fpasswd/pictures/test/0.png", "/api/runs/../../etc/passwd",
              "/static/../pyproject.toml", "/static/..%2F..%2F..%2Fpyproject.toml", "/api/uploads/..%2F..%2Fx.png",
              "/api/runs/cnn/pictures/..%2F..%2Fetc/0.png", "/api/runs/%2Fetc%2Fpasswd/history"]
    for path in probes:
        r = client.get(path)
        assert r.status_code in (400, 404), path
        assert "root:" not in r.text and "[project]" not in r.text
    bodies = [{"run": "/etc/passwd", "image": {"split": "test", "index": 0}},
              {"run": "cnn", "image": {"split": "../../etc/passwd", "index": 0}},
              {"run": "cnn", "image": {"upload": "../../../etc/passwd"}},
              {"run": "cnn", "image": {"path": "/etc/passwd"}}]
    for body in bodies:
        r = client.post("/api/explain", json=body)
        assert r.status_code in (400, 404), body
        assert "root:" not in r.text


@pytest.mark.parametrize("body, status", [
    ({"run": "cnn"}, 400),
    ({"run": "nope", "image": {"split": "test", "index": 0}}, 404),
    ({"run": "cnn", "image": {"split": "test", "index": 10_000}}, 404),
    ({"run": "cnn", "image": {"split": "test", "index": "1"}}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "method": "magic"}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "layer": "features.conv9"}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "layer": -9}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "layer": []}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "target": {"class": 99}}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "target": {"class": "dog"}}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "target": {"top": 0}}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "target": {"box": [0, 0, 4, 4]}}, 400),
    ({"run": "vae", "image": {"split": "test", "index": 0}, "target": {"box": [5, 5, 2, 9]}}, 400),
    ({"run": "vae", "image": {"split": "test", "index": 0}, "target": {"box": [0, 0, 4, 99]}}, 400),
    ({"run": "vae", "image": {"split": "test", "index": 0}}, 400),
    ({"run": "fcn", "image": {"split": "test", "index": 0}, "target": {"box": [0, 0, 4, 4], "channel": 40}}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "epoch": 7}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "epochs": 1}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "include": ["everything"]}, 400),
    ({"run": "fcn", "image": {"split": "test", "index": 0}, "layer": "encoder", "target": {"box": [0, 0, 4, 4]}}, 400),
    ([1, 2, 3], 400),
    ({"run": "cnn", "image": {"upload": ["a"]}}, 400),
    ({"run": "cnn", "image": {"upload": {"a": 1}}}, 400),
    ({"run": "fcn", "image": {"split": "test", "index": 0}, "target": {"box": [0.5, 0, 4, 4], "channel": 1}}, 400),
    ({"run": "fcn", "image": {"split": "test", "index": 0}, "target": {"box": [1e308, 0, 4, 4], "channel": 1}}, 400),
])
def test_bad_requests_are_one_line_4xx_and_the_server_keeps_serving(client, body, status):
    r = client.post("/api/explain", json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert list(r.json()) == ["error"] and "\n" not in error and "Traceback" not in error
    assert client.get("/api/health").json()["status"] == "ok"


def test_malformed_bodies_and_other_endpoints(client):
    assert client.post("/api/explain", content=b"{not json").status_code == 400
    assert client.post("/api/explain", content=b"x" * 100_000).status_code == 413
    assert client.get("/api/explain").status_code == 405
    assert client.get("/api/nothing").status_code == 404
    assert list(client.get("/api/nothing").json()) == ["error"]
    pictures = client.get("/api/runs/cnn/pictures?order=misclassified&limit=10").json()["pictures"]
    flags = [p["correct"] for p in pictures]
    assert flags == sorted(flags, key=lambda f: f is not False)          # wrong ones first
    star = client.get("/api/runs/cnn/pictures?label=3").json()["pictures"]
    assert star and all(p["label"] == 3 and p["name"] == "star" for p in star)
    assert client.get("/api/runs/cnn/pictures?label=zebra").status_code == 400
    assert client.get("/api/runs/cnn/pictures?limit=5&path=/etc").status_code == 400
    assert client.get("/api/runs/cnn/pictures/test/0.png").content.startswith(b"\x89PNG")
    assert client.get("/api/runs/cnn/history").json()["history"][-1]["epoch"] == 2


def test_the_token_guards_every_request(sources):
    with TestClient(base_url=LOCAL_URL, app=create_app(sources, Settings(token="s3cret"))) as c:
        assert c.get("/api/runs").status_code == 401
        assert c.get("/api/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/static/app.js").status_code == 401
        page = c.get("/?token=s3cret")
        assert page.status_code == 200 and "netgaze_token" in page.headers["set-cookie"]
        assert c.get("/api/runs").status_code == 200          # the cookie now carries it


def test_the_page_is_static_and_strict(client):
    page = client.get("/")
    assert page.status_code == 200 and "<script src=\"/static/app.js\"" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http-equiv", "")        # nothing from a CDN
    scripts = re.findall(r'<script src="(/static/[a-z]+\.js)" defer></script>', page.text)
    assert scripts[-1] == "/static/app.js" and len(scripts) == len(list(STATIC.glob("*.js")))   # every script is loaded
    for path in scripts:
        script = client.get(path).text
        assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script, path
    runs = client.get("/api/runs").json()["runs"]
    evil = next(r for r in runs if r["id"] == "evil")
    assert evil["classes"][0].startswith("<img")                    # JSON carries it; the page shows it as text


def test_cli_help_host_check_and_user_errors(capsys, serve_runs):
    from netgaze.cli import main
    from netgaze.serve.server import check_host

    assert main(["serve", "--help"]) == 0
    assert "examples:" in capsys.readouterr().out
    assert main(["serve"]) == 2
    assert main(["serve", str(serve_runs["cnn"]) + "-missing"]) == 2
    assert "error:" in capsys.readouterr().err
    assert check_host("127.0.0.1", None) is None
    assert check_host("0.0.0.0", "given") == "given"
    err = io.StringIO()
    token = check_host("0.0.0.0", None, out=err)
    assert token and len(token) >= 20 and err.getvalue().startswith("netgaze serve: warning: listening on 0.0.0.0")
