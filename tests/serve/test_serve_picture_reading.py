"""The explorer reads an uploaded picture exactly as ``netgaze explain`` reads the same file."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from netgaze._util.picture_files import read_picture
from netgaze.serve.uploads import check_upload, to_tensor


def _files(tmp_path):
    rng = np.random.default_rng(0)
    grey16 = (rng.random((40, 56)) * 65535).astype(np.uint16)           # mean near 32768: half grey
    twelve = (rng.random((40, 56)) * 4095).astype(np.uint16)            # 12 bits kept in a 16-bit file
    rgba = rng.integers(0, 256, (40, 56, 4), dtype=np.uint8)
    rgba[:20, :, 3] = 0                                                  # the top half fully transparent
    la = rng.integers(0, 256, (40, 56, 2), dtype=np.uint8)
    made = {"grey16": Image.fromarray(grey16), "twelve": Image.fromarray(twelve),
            "rgba": Image.fromarray(rgba, "RGBA"), "la": Image.fromarray(la, "LA"),
            "rgb": Image.fromarray(rgba[..., :3], "RGB")}
    paths = {}
    for name, image in made.items():
        paths[name] = tmp_path / f"{name}.png"
        image.save(paths[name])
    return paths


@pytest.mark.parametrize("channels", [3, 1])
def test_uploads_and_files_read_the_same(tmp_path, channels):
    for name, path in _files(tmp_path).items():
        expected = read_picture(path, "RGB" if channels == 3 else "L", 32, "crop")
        served = to_tensor(check_upload(path.read_bytes()), 32, channels)
        got = (served * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        assert np.array_equal(got, expected), name


def test_what_the_old_reader_got_wrong(tmp_path):
    paths = _files(tmp_path)
    grey = to_tensor(check_upload(paths["grey16"].read_bytes()), 32, 1)
    assert abs(float(grey.mean()) - 0.5) < 0.05                        # not saturated to white
    twelve = to_tensor(check_upload(paths["twelve"].read_bytes()), 32, 1)
    assert float(twelve.max()) < 0.1                                    # 4095 of 65535, by the real range
    top = to_tensor(check_upload(paths["rgba"].read_bytes()), 32, 3)[:, :12]
    assert float(top.min()) == 1.0                                      # transparent reads white, not black
    buffer = io.BytesIO()
    Image.open(paths["la"]).save(buffer, format="PNG")
    assert to_tensor(check_upload(buffer.getvalue()), 32, 3).shape == (3, 32, 32)
