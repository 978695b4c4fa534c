"""Pictures in and out of the explorer: checked uploads, tensors, PNG and base64.

Uploads are read only by Pillow, only as PNG, JPEG or WebP recognised by their first bytes
(never by the file name), with a size limit in bytes and a pixel limit checked from the
header before any pixel is decoded (a decompression bomb is refused, not opened).
"""
from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from netgaze._util.picture_files import PictureError, read_picture, resize_picture, to_mode
from netgaze.errors import one_line
from netgaze.serve.api_error import ApiError

MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 4096 * 4096
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def sniff_type(data: bytes) -> str | None:
    """``"png"``, ``"jpeg"`` or ``"webp"`` from the file's magic bytes; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def check_upload(data: bytes, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The decoded picture of an upload, or ApiError (size, type, pixel count, corrupt data)."""
    if not data:
        raise ApiError("the upload is empty")
    if len(data) > max_bytes:
        raise ApiError(f"the upload has {len(data)} bytes; the limit is {max_bytes}", status=413)
    kind = sniff_type(data)
    if kind is None:
        raise ApiError("only PNG, JPEG and WebP pictures are accepted (checked by content)", status=415)
    try:
        image = Image.open(io.BytesIO(data), formats=[kind.upper()])
        width, height = image.size               # read from the header: nothing decoded yet
        if width * height > max_pixels:
            raise ApiError(f"the picture has {width}x{height} pixels; the limit is {max_pixels} pixels", status=413)
        image.load()
    except ApiError:
        raise
    except Image.DecompressionBombError:
        raise ApiError(f"the picture has more pixels than the limit of {max_pixels}", status=413) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ApiError(f"cannot read the {kind.upper()} picture: {str(err).splitlines()[0][:120]}") from None
    return image


def to_tensor(image: Image.Image, size: int | tuple[int, int], channels: int) -> torch.Tensor:
    """float [C, H, W] in [0, 1], read as ``netgaze explain`` reads a file (``read_picture``): high
    bit depths by their real range, transparent pixels over white, the shorter side scaled to
    ``size`` and the centre cropped (a non-square ``size`` is covered and centre-cropped)."""
    h, w = (size, size) if isinstance(size, int) else size
    image = to_mode(image, "L" if channels == 1 else "RGB")
    image = resize_picture(image, h, "crop") if h == w else ImageOps.fit(image, (w, h), Image.BILINEAR)
    array = np.asarray(image, dtype=np.uint8).reshape(h, w, channels)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 [H, W, 3] or [H, W] -> PNG bytes (fast compression: these are small and short-lived)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def png_base64(image: np.ndarray) -> str:
    return base64.b64encode(png_bytes(image)).decode("ascii")


def picture_png(x: torch.Tensor) -> bytes:
    """One picture [C, H, W] in [0, 1] as PNG bytes."""
    rgb = (x.detach().float().clamp(0, 1) * 255).round().byte()
    array = rgb.permute(1, 2, 0).cpu().numpy()
    return png_bytes(array[..., 0] if array.shape[-1] == 1 else array)


class FolderPictures(torch.utils.data.Dataset):
    """The pictures of one folder (sorted by name; not recursive), read at ``size`` like uploads.

    Items are ``(float [C, H, W], -1)``: the folder has no labels. Only the listed files are
    ever opened; clients name a picture by its index, never by a path.
    """

    def __init__(self, folder: str | os.PathLike, size: int, channels: int = 3):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ApiError(f"no such picture folder: {folder}")
        self.files = sorted(p for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES)
        if not self.files:
            raise ApiError(f"{folder} holds no PNG/JPEG/WebP/BMP picture")
        self.size, self.channels = size, channels
        self.classes: list[str] = []

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        """The picture read as ``netgaze explain`` reads it (``read_picture``); ApiError naming the
        file when it cannot be read (the other pictures of the folder are unaffected)."""
        path = self.files[index]
        if path.stat().st_size > MAX_UPLOAD_BYTES * 4:
            raise ApiError(f"picture {index} ({path.name}) is too large to serve")
        try:
            with Image.open(path) as probe:
                if probe.size[0] * probe.size[1] > MAX_PIXELS:
                    raise ApiError(f"picture {index} ({path.name}) has too many pixels")
            pixels = read_picture(path, "L" if self.channels == 1 else "RGB", self.size, "crop")
        except (PictureError, OSError, SyntaxError, ValueError) as err:
            if isinstance(err, ApiError):
                raise
            raise ApiError(f"picture {index} ({path.name}) cannot be read: {one_line(err)[:160]}") from None
        return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255, -1
