"""Pictures in, the model's input out: a PNG or JPEG made into a Fashion-MNIST image with Pillow and numpy.

Fashion-MNIST made its images from Zalando's product photos (the dataset's README and paper): trim the
background, resize the longest side to 28, centre on 28x28, negate, grayscale, and stretch so that each garment
spans 0..255. Product photos are rarely on pure white, so the background is estimated from the picture's whole
border, as a smooth surface (a plain backdrop, a slight gradient or vignette), not from one pixel; the garment
is what stands out from it, by more than the border's own noise; it is set straight when a slight rotation
makes its bounding box larger than needed. The result is black (0) wherever the backdrop was, as in
Fashion-MNIST, whatever its grey or tint.

Only a 28x28 grayscale picture whose border is already dark (Fashion-MNIST's form) passes unchanged. A picture
whose border is not one plain backdrop (noise, a scene, a texture) is refused: it does not look like a product
photo, and a classifier would only pretend to know what it is.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fmnist.core.idx import IMAGE_SHAPE

FORMATS = ("PNG", "JPEG")
# A phone's JPEG with a second image in it (Ultra HDR's gain map, a depth map) is a JPEG to a user; Pillow opens it
# as MPO, whose first frame, the one loaded, is the photo.
READ_AS_JPEG = ("MPO",)
SUFFIXES = (".png", ".jpg", ".jpeg")  # what a folder is searched for
# Zalando trims edges within 5% of the maximum intensity of the background colour: 5% of 255.
TRIM_TOLERANCE = 13
# Area averaging: a photo shrunk many times over neither aliases (Zalando's subsampling skips pixels, which
# can drop a thin strap) nor rings (Lanczos).
RESAMPLING = Image.Resampling.BOX
WORKING_SIDE = 512  # larger pictures are shrunk to this first: the result is 28x28, and a phone photo has 12 MP
# What one picture may take to decode, before it is shrunk: Pillow keeps 4 bytes a pixel for colour (RGB is padded),
# 2 for 16-bit grey, 1 for 8-bit grey. A JPEG is decoded at 1/2, 1/4 or 1/8 of its size where that still leaves
# WORKING_SIDE (its draft mode), so a phone's 50 MP photo takes 12 MB, not 200.
MAX_DECODED_BYTES = 200_000_000
BORDER = 0.03  # the border ring the backdrop is estimated from: 3% of the shorter side, at least one pixel
PLAIN = 20  # a border pixel within this many grey levels of the fitted backdrop belongs to it
# A product photo's border is the backdrop, interrupted only where the garment touches it, in a few runs. Noise,
# a texture or a scene breaks it into many: on 1,000 test images negated (garments touching the border) the
# border switched at most 19 times per 100 pixels, and at most 67% of it was garment; on noise, 26-46 times.
MIN_PLAIN_SHARE = 0.25
MAX_SWITCHES = 0.22
DARK_BORDER = 64  # a 28x28 grayscale picture whose border's median is below this is in Fashion-MNIST form
MAX_TILT = 12  # degrees: a garment turned by up to this much is set straight
STRAIGHTEN_GAIN = 0.99  # ... when straight, its bounding box is at most this share of the tilted one


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
        if image.format not in FORMATS + READ_AS_JPEG:
            raise ImageError(f"a {image.format} image; {' or '.join(FORMATS)} expected")
        if image.format != "PNG" and image.mode in ("RGB", "L", "CMYK"):
            image.draft(image.mode, (WORKING_SIDE, WORKING_SIDE))  # a JPEG decoded at a fraction of its size
        width, height = image.size
        needed = width * height * _bytes_per_pixel(image.mode)
        if needed > MAX_DECODED_BYTES:
            raise ImageError(f"too large to decode: {width}x{height} {image.mode} would take {needed / 1e6:,.0f} MB, "
                             f"and a picture may take {MAX_DECODED_BYTES / 1e6:,.0f} MB; shrink it first")
        try:
            image.load()  # Image.open reads the header only; a cut-off file fails here
        except (OSError, SyntaxError, ValueError) as error:
            raise ImageError(f"damaged or truncated {image.format} data ({error})") from None
        return to_fashion_mnist(shrunk(image))


def _bytes_per_pixel(mode: str) -> int:
    """The most that decoding and shrunk() hold at once, per pixel of the whole picture: the decoded pixels (4 bytes
    for colour, which Pillow pads, and for 32-bit grey; 2 for 16-bit grey; 1 for 8-bit), plus the copies made
    before the shrink: a palette to RGBA, alpha premultiplied inside Pillow's reduce, 16-bit grey scaled to 8 bits
    through numpy (two copies and a float64)."""
    if mode.startswith("I;16"):
        return 2 + 2 + 2 + 8 + 1
    return {"1": 2, "L": 1, "P": 1 + 4 + 4, "LA": 8, "RGBA": 8}.get(mode, 4)


def shrunk(image: Image.Image) -> Image.Image:
    """A picture at least twice WORKING_SIDE on its longer side reduced by a whole factor (block averages, as
    to_fashion_mnist's own shrink makes) to at least WORKING_SIDE, before its colour conversions copy it whole.
    Pictures in modes Pillow cannot reduce (palette, 1-bit, 16-bit grey) are converted first."""
    factor = max(image.size) // WORKING_SIDE
    if factor < 2:
        return image
    if image.mode == "P":
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode.startswith("I;16"):
        image = eight_bit(image)
    exif = image.getexif()
    reduced = image.reduce(factor)
    if exif:
        reduced.info["exif"] = exif.tobytes()  # the phone's rotation, which exif_transpose reads from here
    return reduced


# Pillow's modes for 16-bit (and 32-bit integer) grayscale: its own convert("L"/"RGB") clips them at 255.
WIDE_GRAYSCALE = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def eight_bit(image: Image.Image) -> Image.Image:
    """A 16-bit grayscale picture (a PNG's I;16, or I) scaled to 8-bit L: 65535 becomes 255, as a photo editor
    would export it. Pillow's own conversion clips every value above 255, which turns a garment photo white
    (refused as blank) and 16-bit noise into a picture that looks plain. Other pictures are returned as they are."""
    if image.mode not in WIDE_GRAYSCALE:
        return image
    values = np.asarray(image).astype(np.float64)
    # I;16 is 16-bit by definition; Pillow also opens 16-bit PNGs as I (32-bit), where values above 255 say so.
    top = 65535.0 if image.mode != "I" or values.max() > 255 else 255.0
    return Image.fromarray(np.round(np.clip(values, 0, top) * (255.0 / top)).astype(np.uint8))


def is_fashion_mnist_form(image: Image.Image) -> bool:
    """28x28 grayscale with a dark border: light on black already, as Fashion-MNIST's images are."""
    if image.mode != "L" or image.size != IMAGE_SHAPE[::-1]:
        return False
    pixels = np.asarray(image)
    return float(np.median(np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]))) < DARK_BORDER


def backdrop(luminance: np.ndarray) -> tuple[np.ndarray, float]:
    """(the backdrop's grey at every pixel, the noise σ of the border's backdrop pixels).

    The backdrop is a plane a + bx + cy (a plain colour, or a gradient across the sweep) fitted to the border
    ring: first to the pixels near the border's median, then again to those within PLAIN of the fit, twice. A
    garment touching the border, or a shadow, does not pull it. (A curved surface would bend round a garment that
    fills the frame; a vignette's few grey levels are left to the noise threshold.)"""
    height, width = luminance.shape
    ring = np.zeros((height, width), dtype=bool)
    k = max(1, round(min(height, width) * BORDER))
    ring[:k, :] = ring[-k:, :] = ring[:, :k] = ring[:, -k:] = True
    xs = (np.arange(width, dtype=np.float32) + 0.5) / width - 0.5
    ys = (np.arange(height, dtype=np.float32) + 0.5) / height - 0.5
    rows, columns = np.nonzero(ring)
    terms = np.stack([np.ones(len(rows), dtype=np.float32), xs[columns], ys[rows]], axis=1)
    values = luminance[ring]
    kept = np.abs(values - np.median(values)) <= 2 * PLAIN
    coefficients = np.array([np.median(values), 0.0, 0.0], dtype=np.float32)
    for _ in range(3):
        if kept.sum() < 3:
            break
        coefficients = np.linalg.lstsq(terms[kept], values[kept], rcond=None)[0]
        kept = np.abs(values - terms @ coefficients) <= PLAIN
    residuals = values - terms @ coefficients
    noise = float(1.4826 * np.median(np.abs(residuals[kept]))) if kept.any() else float("inf")
    a, b, c = coefficients
    return (a + b * xs[None, :] + c * ys[:, None]).astype(np.float32), noise


def border_runs(luminance: np.ndarray, surface: np.ndarray) -> tuple[float, float]:
    """(the share of the outermost pixels that are backdrop, how often per pixel the border switches between
    backdrop and not), walking once round the picture."""
    plain = np.abs(luminance - surface) <= PLAIN
    loop = np.concatenate([plain[0, :], plain[1:, -1], plain[-1, -2::-1], plain[-2:0:-1, 0]])
    return float(loop.mean()), float(np.mean(loop != np.roll(loop, 1)))


def bounding_box(pixels: np.ndarray) -> tuple[int, int, int, int] | None:
    """What Pillow's getbbox() gives for an image with these pixels: (left, upper, right, lower) of the non-zero
    ones, right and lower exclusive; None when every pixel is zero. In numpy: a few times faster on a small image,
    where the picture's Python and Pillow work is what costs (the pictures stage makes 10,000 of them)."""
    rows, columns = np.flatnonzero(pixels.any(axis=1)), np.flatnonzero(pixels.any(axis=0))
    if rows.size == 0:
        return None
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


def opened(pixels: np.ndarray) -> np.ndarray:
    """The 3x3 minimum, then the 3x3 maximum, of uint8 pixels, the border repeated outwards: what Pillow's
    filter(MinFilter(3)) then filter(MaxFilter(3)) give, without its sort per pixel."""
    def rank(values: np.ndarray, pick) -> np.ndarray:
        padded = np.pad(values, 1, mode="edge")
        height, width = values.shape
        return pick.reduce([padded[dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3)])

    return rank(rank(pixels, np.minimum), np.maximum)


def _straightened(garment: Image.Image) -> Image.Image:
    """The garment turned back by the angle (within ±MAX_TILT degrees) that gives the smallest bounding box, when
    that box is clearly smaller than the one it has (a product shot is upright; a hand-held one tilts a little)."""
    small = garment.copy()
    small.thumbnail((96, 96), RESAMPLING)
    areas = {}

    def box_area(angle: int) -> int:
        if angle not in areas:
            turned = small.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=0)
            box = bounding_box(np.asarray(turned) > 20)
            areas[angle] = (box[2] - box[0]) * (box[3] - box[1]) if box else 0
        return areas[angle]

    upright = box_area(0)
    angle = min(range(-MAX_TILT, MAX_TILT + 1), key=lambda a: (box_area(a), abs(a)))
    if angle == 0 or box_area(angle) > STRAIGHTEN_GAIN * upright:
        return garment
    turned = garment.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=0)
    box = bounding_box(np.asarray(turned) > TRIM_TOLERANCE)
    return turned.crop(box) if box else turned


def to_fashion_mnist(image: Image.Image) -> np.ndarray:
    """Estimate the backdrop, keep what stands out from it (negated when the backdrop is light), trim, set
    straight, resize the longest side to 28, centre on 28x28 on black, stretch to 0..255."""
    image = eight_bit(image)
    if is_fashion_mnist_form(image):
        return np.asarray(image, dtype=np.uint8)
    image = ImageOps.exif_transpose(image)  # a phone photo's rotation lives in its EXIF
    if image.has_transparency_data:  # a cut-out product photo: on white, as Zalando's are
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    image = image.convert("RGB")
    if max(image.size) > WORKING_SIDE:
        image.thumbnail((WORKING_SIDE, WORKING_SIDE), RESAMPLING)
    luminance = np.asarray(image.convert("L"), dtype=np.float32)
    surface, noise = backdrop(luminance)
    plain_share, switches = border_runs(luminance, surface)
    if plain_share < MIN_PLAIN_SHARE or switches > MAX_SWITCHES:
        raise ImageError(f"does not look like a photo of a garment on a plain background: its border is "
                         f"{plain_share:.0%} one plain backdrop, broken {switches * 100:.0f} times per 100 pixels "
                         f"(a product photo: at least {MIN_PLAIN_SHARE:.0%}, at most {MAX_SWITCHES * 100:.0f})")
    # Fashion-MNIST's garments are light on black. On a light backdrop a garment is darker than it: how much
    # darker, as a share of the backdrop's brightness, is the garment's intensity. On a dark backdrop, the other
    # way round.
    if float(np.median(surface)) > 127:
        ink = (surface - luminance) / np.maximum(surface, 1.0)
    else:
        ink = (luminance - surface) / np.maximum(255.0 - surface, 1.0)
    ink = np.clip(ink, 0.0, 1.0) * 255.0
    ink[ink <= max(TRIM_TOLERANCE, 3.0 * noise)] = 0.0  # the backdrop, its noise and its JPEG artefacts: black
    ink_pixels = np.round(ink).astype(np.uint8)
    garment = Image.fromarray(ink_pixels)
    # Lone specks (noise that got through, dust) do not make the bounding box: opened with a 3x3 minimum, maximum,
    # where a pixel is small beside the garment (a photo at least 4x Fashion-MNIST's size); a thin strap survives.
    box = bounding_box(opened(ink_pixels) if min(garment.size) >= 4 * IMAGE_SHAPE[0] else ink_pixels)
    if box is None:
        raise ImageError("blank: nothing stands out from the background, there is nothing to classify")
    cropped = garment.crop(box)
    if max(cropped.size) >= 2 * IMAGE_SHAPE[0]:  # a tilt is measurable on a photo, not on a 28x28 picture
        cropped = _straightened(cropped)
    fitted = np.asarray(ImageOps.pad(cropped, IMAGE_SHAPE[::-1], method=RESAMPLING, color=0), dtype=np.float32)
    # Fashion-MNIST's images span 0..255: a garment's darkest part is 255, whatever its colour.
    return np.round(fitted * (255.0 / max(float(fitted.max()), 1.0))).astype(np.uint8)


def to_png(image: np.ndarray, path: Path) -> None:
    """Write a 28x28 uint8 image as a grayscale PNG (read back unchanged by read())."""
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(path, format="PNG")
