"""The one function that reads a picture file: every bit depth by its real range, alpha on a stated background.

``netgaze explain``, ``visualize --activations``, image-folder datasets and VOC-style
segmentation folders all read pictures through :func:`read_picture`, so a file means the
same thing everywhere:

- 8-bit pictures (``L``, ``RGB``, ``P``, ``CMYK`` ...) keep their values.
- 16-bit grey (Pillow modes ``I;16``, ``I;16B`` ...) is divided by 65535.
- 32-bit integer grey (``I``) is divided by 65535 when its values lie in 0..65535 (how
  Pillow opens most 16-bit files), else stretched linearly from its minimum to its maximum.
- 32-bit float grey (``F``) is used as is when its values lie in [0, 1], else stretched from
  its minimum to its maximum; NaN reads as 0.
- Transparent pictures (``RGBA``, ``LA``, ``PA``, palettes with a transparent colour) are
  composited over ``BACKGROUND`` (white, as a browser or an image viewer shows them).
- A picture of more than ``MAX_PIXELS`` pixels is refused as a possible decompression bomb
  before it is decoded.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from netgaze.errors import UserError, one_line

BACKGROUND = (255, 255, 255)
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I;16S")


class PictureError(UserError):
    """A picture file that cannot be read: missing, not a picture, damaged or too large."""


def _high_bit_to_8(image: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit integer or float grey picture as 8-bit ``L``, by its real range."""
    values = np.asarray(image, dtype=np.float64)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    if image.mode in SIXTEEN_BIT:
        scaled = values / 65535
    else:
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if image.mode == "F" and low >= 0 and high <= 1:
            scaled = values
        elif image.mode == "I" and low >= 0 and high <= 65535:
            scaled = values / 65535
        else:
            scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return Image.fromarray(np.clip(np.rint(scaled * 255), 0, 255).astype(np.uint8), mode="L")


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def to_mode(image: Image.Image, mode: str, background: tuple[int, int, int] = BACKGROUND) -> Image.Image:
    """``image`` as 8-bit ``mode`` ("RGB" or "L"): high bit depths by their range, alpha composited."""
    if image.mode in SIXTEEN_BIT or image.mode in ("I", "F"):
        image = _high_bit_to_8(image)
    if _has_alpha(image):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        image = Image.alpha_composite(canvas, rgba)
    return image.convert(mode)


def resize_picture(image: Image.Image, size: int | tuple[int, int], resize: str = "crop") -> Image.Image:
    """``size`` as ``read_picture`` takes it: an int with "crop" scales the shorter side and crops the centre."""
    if isinstance(size, int) and resize == "crop":
        w, h = image.size
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        image = image.resize((nw, nh), Image.BILINEAR, reducing_gap=3.0)
        left, top = (nw - size) // 2, (nh - size) // 2
        return image.crop((left, top, left + size, top + size))
    h, w = (size, size) if isinstance(size, int) else size
    return image.resize((w, h), Image.BILINEAR, reducing_gap=3.0)


def read_picture(path: str | Path, mode: str = "RGB", size: int | tuple[int, int] | None = None,
                 resize: str = "crop", background: tuple[int, int, int] = BACKGROUND) -> np.ndarray:
    """One picture file as uint8 ``[H, W, C]`` (C = 3 for ``mode="RGB"``, 1 for ``"L"``).

    Args:
        path: the file.
        mode: "RGB" or "L".
        size: None keeps the picture's size; an int with ``resize="crop"`` scales the shorter
            side to ``size`` and crops the centre square; an int or ``(height, width)`` with
            ``resize="stretch"`` resizes to exactly that.
        resize: "crop" or "stretch".
        background: the colour under transparent pixels.

    Raises:
        PictureError: a missing file, not a picture, a damaged file, or more than
            ``MAX_PIXELS`` pixels; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise PictureError(f"no such picture: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as probe:
                _check_pixels(path, probe)
                probe.verify()
            with Image.open(path) as image:
                if size is not None:
                    side = size if isinstance(size, int) else max(size)
                    image.draft(mode, (side, side))  # JPEG: decode at a reduced scale still >= size
                image = to_mode(image, mode, background)
                if size is not None:
                    image = resize_picture(image, size, resize)
                pixels = np.array(image, dtype=np.uint8)
    except PictureError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PictureError(f"{path} is larger than the {MAX_PIXELS:,} pixels netgaze reads "
                           "(a possible decompression bomb)") from None
    except UnidentifiedImageError:
        raise PictureError(f"cannot read picture {path}: not a picture format Pillow knows") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise PictureError(f"cannot read picture {path}: {one_line(err)[:160]}") from None
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _check_pixels(path: Path, image: Image.Image) -> None:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise PictureError(f"{path} is {width}x{height} pixels, more than the {MAX_PIXELS:,} netgaze reads "
                           "(a possible decompression bomb)")
    if width == 0 or height == 0:
        raise PictureError(f"{path} has no pixels ({width}x{height})")
