"""Every picture mode is read by its real range, in ``explain`` and in training folders alike.

Known pixel values per Pillow mode: 16-bit grey (``I;16``) at 32768 is 0.5 (it used to
saturate to 0.9975), 32-bit integer (``I``) and float (``F``) TIFFs by their range, alpha
composited on white.
"""
from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from netgaze.errors import UserError
from netgaze.lab.datasets.folders import image_folder
from netgaze._util.picture_files import BACKGROUND, PictureError, read_picture
from netgaze.studies.explain_files import read_pictures

SIDE = 6


def _uniform(mode: str, value, suffix: str):
    def make(path):
        if mode in ("I;16", "I", "F"):
            dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
            image = Image.fromarray(np.full((SIDE, SIDE), value, dtype))
            assert image.mode == mode
        else:
            image = Image.new(mode, (SIDE, SIDE), value)
        target = path.with_suffix(suffix)
        image.save(target)
        return target
    return make


def _ramp(mode: str, values, suffix: str):
    """One row per value (to test range stretching, which needs several values)."""
    def make(path):
        dtype = {"I": np.int32, "F": np.float32}[mode]
        rows = np.repeat(np.asarray(values, dtype)[:, None], SIDE, axis=1)
        target = path.with_suffix(suffix)
        Image.fromarray(rows).save(target)
        return target
    return make


def _palette_with_transparency(path):
    image = Image.new("P", (SIDE, SIDE), 0)
    image.putpalette([10, 20, 30] + [200, 100, 50] * 255)
    image.info["transparency"] = 0
    target = path.with_suffix(".png")
    image.save(target, transparency=0)
    return target


HALF_WHITE = round(255 * (1 - 128 / 255))  # white under alpha 128 of a black or red pixel
CASES = {
    "16-bit png at 32768": (_uniform("I;16", 32768, ".png"), (128, 128, 128)),
    "16-bit png at 65535": (_uniform("I;16", 65535, ".png"), (255, 255, 255)),
    "32-bit int tiff in 0..65535": (_uniform("I", 16384, ".tif"), (64, 64, 64)),
    "float tiff in [0, 1]": (_uniform("F", 0.25, ".tif"), (64, 64, 64)),
    "8-bit grey": (_uniform("L", 77, ".png"), (77, 77, 77)),
    "rgba half red": (_uniform("RGBA", (255, 0, 0, 128), ".png"), (255, HALF_WHITE, HALF_WHITE)),
    "rgba transparent": (_uniform("RGBA", (0, 0, 0, 0), ".png"), BACKGROUND),
    "grey + alpha": (_uniform("LA", (0, 128), ".png"), (HALF_WHITE,) * 3),
    "palette with a transparent colour": (_palette_with_transparency, BACKGROUND),
}


@pytest.mark.parametrize("name", list(CASES))
def test_uniform_pictures_read_by_their_range_everywhere(name, tmp_path):
    make, expected = CASES[name]
    path = make(tmp_path / "pic")
    rgb = read_picture(path, "RGB")
    assert rgb.shape == (SIDE, SIDE, 3)
    assert np.abs(rgb.astype(int) - np.array(expected)).max() <= 1, rgb[0, 0]
    # explain reads pictures through the same function ...
    x = read_pictures([path], SIDE, 3)
    assert torch.allclose(x[0], torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
    # ... and so does a training folder
    (tmp_path / "data" / "only").mkdir(parents=True)
    path.rename(tmp_path / "data" / "only" / path.name)
    folder = image_folder(tmp_path / "data", "all", size=SIDE)
    assert torch.allclose(folder[0][0], x[0])
    grey = read_picture(tmp_path / "data" / "only" / path.name, "L")
    luma = (299 * expected[0] + 587 * expected[1] + 114 * expected[2]) / 1000
    assert grey.shape == (SIDE, SIDE, 1) and abs(float(grey.mean()) - luma) <= 1.5


def test_out_of_range_int_and_float_pictures_are_stretched(tmp_path):
    # I beyond 16 bits and F beyond [0, 1]: min..max -> 0..255, row by row
    for make in (_ramp("I", [-100_000, 0, 100_000, 300_000], ".tif"), _ramp("F", [-1.0, 0.0, 1.0, 3.0], ".tif")):
        pixels = read_picture(make(tmp_path / f"ramp-{id(make)}"), "L")[:4, 0, 0]
        assert pixels.tolist() == [0, 64, 128, 255]
    nan = Image.fromarray(np.array([[np.nan, 0.5], [1.0, 0.0]], np.float32))
    nan.save(tmp_path / "nan.tif")
    assert read_picture(tmp_path / "nan.tif", "L")[..., 0].tolist() == [[0, 128], [255, 0]]


def test_a_background_can_be_stated(tmp_path):
    path = _uniform("RGBA", (0, 0, 0, 0), ".png")(tmp_path / "clear")
    assert read_picture(path, "RGB", background=(0, 0, 255))[0, 0].tolist() == [0, 0, 255]


def test_unreadable_pictures_are_user_errors_naming_the_file(tmp_path):
    (tmp_path / "text.png").write_text("hello")
    Image.new("1", (20000, 20000)).save(tmp_path / "bomb.png")
    for name, message in (("text.png", "cannot read picture"), ("bomb.png", "decompression bomb"),
                          ("missing.png", "no such picture")):
        with pytest.raises(PictureError, match=message) as caught:
            read_picture(tmp_path / name)
        assert str(tmp_path / name) in str(caught.value) and isinstance(caught.value, UserError)


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height RGB pixels (its data is a few bytes: it cannot be decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_the_pixel_limit_is_netgaze_s_own_check(tmp_path, monkeypatch):
    """MAX_PIXELS holds even where Pillow's own limit is lifted (a library may set
    Image.MAX_IMAGE_PIXELS = None): a picture above it is refused by its header, nothing decoded."""
    from netgaze._util.picture_files import MAX_PIXELS

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    side = math.isqrt(MAX_PIXELS) + 1                       # 9460 x 9460: just above 89,478,485
    (tmp_path / "over.png").write_bytes(_png_header(side, side))
    with pytest.raises(PictureError, match=rf"is {side}x{side} pixels, more than the {MAX_PIXELS:,} netgaze reads"):
        read_picture(tmp_path / "over.png")
    (tmp_path / "under.png").write_bytes(_png_header(side - 1, side - 1))   # within the limit: read, and
    with pytest.raises(PictureError, match="cannot read picture"):         # refused only for its broken data
        read_picture(tmp_path / "under.png")


@pytest.mark.parametrize("size", [0, -3, 2.5])
def test_an_image_folder_refuses_a_size_below_one_pixel(size, tmp_path):
    from netgaze.lab.datasets.base import DatasetError

    (tmp_path / "a").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "a" / "x.png")
    with pytest.raises(DatasetError, match="size must be a whole number"):
        image_folder(tmp_path, "all", size=size)
