"""Interactive HTML view and static scatter: self-contained, escaped, data round trip, a real picture."""
import base64
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from netgaze.embed import interactive_html, scatter_png
from netgaze.embed.scatter import spread
from netgaze.embed.view import render_html


def page_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S)
    return json.loads(match.group(1))


def test_html_is_self_contained_and_escapes_user_text(tmp_path):
    rng = np.random.default_rng(0)
    Y = rng.normal(0, 1, (12, 2))
    evil = "</script><script>alert(1)</script>"
    classes = ["a&b", evil, "<b>bold</b>"]
    labels = np.arange(12) % 3
    path = interactive_html(tmp_path / "v.html", Y, labels=labels, predictions=labels[::-1], classes=classes,
                            paths=[f"dir/{evil}{i}.png" for i in range(12)],
                            thumbnails=rng.integers(0, 256, (12, 10, 10, 3), dtype=np.uint8), title=evil)
    page = path.read_text()
    assert evil not in page and "<b>bold" not in page
    assert page.count("</script>") == 2                     # only our own two script elements end
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page)   # nothing fetched from the network
    assert "fetch(" not in page and "XMLHttpRequest" not in page
    data = page_data(page)
    assert data["classes"] == classes and data["labels"] == labels.tolist()
    assert data["predictions"] == labels[::-1].tolist() and data["paths"][0] == f"dir/{evil}0.png"
    pts = np.array(data["points"]).reshape(12, 2)
    assert np.abs(pts).max() == pytest.approx(1.0)          # centred and scaled to [-1, 1]
    sprite = data["sprite"]
    image = Image.open(io.BytesIO(base64.b64decode(sprite["uri"].split(",", 1)[1])))
    assert sprite["cols"] == 4 and image.size == (4 * sprite["side"],) * 2


def test_html_3d_and_errors():
    Y = np.random.default_rng(1).normal(0, 1, (5, 3))
    data = page_data(render_html(Y))
    assert data["dims"] == 3 and len(data["points"]) == 15 and "labels" not in data
    with pytest.raises(ValueError, match=r"\[N, 2\] or \[N, 3\]"):
        render_html(np.zeros((5, 4)))


def test_scatter_png_draws_points_and_thumbnails(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]])
    labels = np.repeat([0, 1, 2], 40)
    Y = centres[labels] + rng.normal(0, 1, (120, 2))
    thumbs = np.zeros((120, 16, 16, 3), np.uint8)
    thumbs[..., 0] = 255                                     # pure red thumbnails
    path = scatter_png(tmp_path / "s.png", Y, labels, classes=["cat", "dog", "eel"], thumbnails=thumbs, grid=4)
    image = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert image.shape[0] > 500 and image.shape[1] > 600
    red = (image[..., 0] > 240) & (image[..., 1] < 15) & (image[..., 2] < 15)
    assert red.sum() > 4 * 16 * 16                           # several thumbnails drawn
    tab_blue = (np.abs(image - [31, 119, 180]).sum(-1) < 40).sum()
    assert tab_blue > 50                                     # class 0's points
    chosen = spread(Y, 4)
    assert 3 <= len(chosen) <= 16 and len(set(chosen)) == len(chosen)
