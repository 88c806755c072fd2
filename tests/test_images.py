"""fmnist.core.images: pictures made into Fashion-MNIST images with Pillow, and every kind of bad picture refused."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fmnist.core import images

RNG = np.random.default_rng(7)


def garment(height: int = 14, width: int = 7, value: int = 200) -> np.ndarray:
    """Fashion-MNIST form: a light rectangle on black, its longest side 28 once trimmed and resized."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[3:3 + height, 5:5 + width] = value
    return image


def photo_of(image: np.ndarray, scale: int = 4, canvas=(200, 170), at=(31, 9)) -> Image.Image:
    """As a product photo: scaled up, dark on white, RGB, not centred."""
    pil = Image.fromarray(255 - image).resize((28 * scale, 28 * scale), Image.Resampling.NEAREST).convert("RGB")
    photo = Image.new("RGB", canvas, "white")
    photo.paste(pil, at)
    return photo


def fashion_mnist_like() -> np.ndarray:
    """Fashion-MNIST's form: a dark, faintly noisy border round a garment of any grey (nothing to trim or move)."""
    image = RNG.integers(0, 30, size=(28, 28), dtype=np.uint8)
    image[2:26, 4:24] = RNG.integers(60, 256, size=(24, 20), dtype=np.uint8)
    return image


def test_a_28x28_grayscale_png_with_a_dark_border_passes_through_unchanged(tmp_path):
    image = fashion_mnist_like()
    images.to_png(image, tmp_path / "form.png")
    assert np.array_equal(images.read(tmp_path / "form.png"), image)


def test_a_dark_on_white_28x28_is_made_into_its_fashion_mnist_form(tmp_path):
    form = np.zeros((28, 28), dtype=np.uint8)
    form[:, 5:17] = 255  # fills the 28 rows: nothing to resize
    form[10:20, 5:9] = 120  # and a patch of another grey
    images.to_png(255 - form, tmp_path / "dark-on-white.png")
    made = images.read(tmp_path / "dark-on-white.png")
    assert np.array_equal(made, np.roll(form, 3, axis=1))  # negated, and centred: columns 5..16 -> 8..19


def test_a_28x28_with_a_thin_strap_keeps_it(tmp_path):
    form = np.zeros((28, 28), dtype=np.uint8)
    form[:, 13] = 255  # one pixel wide, 28 high
    images.to_png(255 - form, tmp_path / "strap.png")
    made = images.read(tmp_path / "strap.png")
    assert (made.max(axis=0) > 0).sum() == 1 and made[:, 14].min() == 255  # still there, whole, centred (13.5)


def test_a_product_photo_is_trimmed_resized_centred_negated_and_grayscale(tmp_path):
    photo_of(garment()).save(tmp_path / "photo.png")
    made = images.read(tmp_path / "photo.png")
    # The 7x14 rectangle, 4x as a photo (28x56), comes back 14x28: longest side 28, centred, light on black,
    # stretched so that the garment's darkest grey is 255, as in every Fashion-MNIST image.
    expected = np.zeros((28, 28), dtype=np.uint8)
    expected[:, 7:21] = 255
    assert made.dtype == np.uint8 and made.shape == (28, 28)
    assert np.array_equal(made, expected)


def test_a_wide_object_is_centred_vertically(tmp_path):
    wide = np.zeros((28, 28), dtype=np.uint8)
    wide[10:17, 0:14] = 150  # 14 wide, 7 high
    photo_of(wide, scale=2, at=(0, 0)).save(tmp_path / "wide.jpg", quality=100)
    made = images.read(tmp_path / "wide.jpg")
    rows = np.flatnonzero(made.max(axis=1) > 100)
    columns = np.flatnonzero(made.max(axis=0) > 100)
    assert (columns[0], columns[-1]) == (0, 27)
    assert (rows[0], rows[-1]) == (7, 20)  # 14 rows, 7 above and below


def test_a_picture_on_a_dark_background_is_not_negated(tmp_path):
    photo = Image.new("RGB", (90, 60), (20, 20, 20))
    photo.paste((230, 230, 230), (30, 10, 60, 25))  # a light 30x15 bar
    photo.save(tmp_path / "dark.png")
    made = images.read(tmp_path / "dark.png")
    assert made[14, 14] == 255 and made[0, 0] == 0  # the bar centred and stretched, the backdrop black


def test_a_transparent_background_counts_as_white(tmp_path):
    cutout = Image.new("RGBA", (40, 80), (0, 0, 0, 0))
    cutout.paste((30, 30, 30, 255), (10, 0, 30, 80))  # a dark 20x80 bar on transparent
    cutout.save(tmp_path / "cutout.png")
    made = images.read(tmp_path / "cutout.png")
    assert made[0, 0] == 0 and made[14, 14] == 255  # composited on white, negated, stretched


def test_the_exif_rotation_of_a_phone_photo_is_applied(tmp_path):
    tall = np.zeros((28, 28), dtype=np.uint8)
    tall[0:28, 10:17] = 220
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    photo_of(tall, at=(0, 0), canvas=(112, 112)).save(tmp_path / "phone.jpg", exif=exif, quality=100)
    made = images.read(tmp_path / "phone.jpg")
    rows, columns = np.flatnonzero(made.max(axis=1) > 100), np.flatnonzero(made.max(axis=0) > 100)
    assert len(columns) == 28 and len(rows) < 14  # shown lying down, as the phone meant


@pytest.mark.parametrize("make, problem", [
    (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    (lambda p: p.write_text("a shopping list, not a picture\n"), "not an image (PNG, JPEG expected)"),
    (lambda p: Image.new("RGB", (4, 4)).save(p, format="GIF"), "a GIF image; PNG or JPEG expected"),
    (lambda p: Image.new("RGB", (60, 40), "white").save(p, format="PNG"), "blank: nothing stands out"),
    (lambda p: Image.new("RGB", (60, 40), (231, 226, 214)).save(p, format="JPEG", quality=40), "blank: nothing"),
    (lambda p: Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(p, format="PNG"),
     "does not look like a photo of a garment on a plain background"),
    (lambda p: Image.fromarray(RNG.integers(0, 256, (28, 28), dtype=np.uint8)).save(p, format="PNG"),
     "does not look like a photo of a garment on a plain background"),
    # 16-bit noise is noise too (Pillow's own conversion clipped it at 255 into a plain-looking picture)
    (lambda p: Image.fromarray(RNG.integers(0, 65536, (64, 64), dtype=np.uint16)).save(p, format="PNG"),
     "does not look like a photo of a garment on a plain background"),
])
def test_bad_files_are_refused_with_what_is_wrong(tmp_path, make, problem):
    path = tmp_path / "input.png"
    make(path)
    with pytest.raises(images.ImageError) as raised:
        images.read(path)
    assert str(raised.value).startswith(problem)


def test_a_truncated_jpeg_is_refused(tmp_path):
    photo_of(garment()).save(tmp_path / "whole.jpg", quality=90)
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(images.ImageError, match=r"^damaged or truncated JPEG data \(image file is truncated"):
        images.read(tmp_path / "cut.jpg")


def test_a_decompression_bomb_is_refused_before_it_is_decoded(tmp_path):
    Image.new("1", (10_000, 10_000)).save(tmp_path / "bomb.png")  # 100 million 1-bit pixels: a few kB on disk
    assert (tmp_path / "bomb.png").stat().st_size < 100_000
    with pytest.raises(images.ImageError, match=r"^too many pixels: more than the 89,478,485 Pillow allows"):
        images.read(tmp_path / "bomb.png")


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(images.ImageError, match="^not found$"):
        images.read(tmp_path / "absent.png")


def test_a_folder_yields_its_png_and_jpeg_files_sorted_hidden_ones_left_out(tmp_path):
    for name in ("b.PNG", "a.jpg", "sub/c.jpeg", "notes.txt", ".hidden/d.png", ".e.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in images.find(tmp_path)] == ["a.jpg", "b.PNG", "sub/c.jpeg"]
    assert images.find(tmp_path / "notes.txt") == [tmp_path / "notes.txt"]  # a file is taken as given


def on_backdrop(image: np.ndarray, level: float, tint=(0, 0, 0), slope=0.0, scale: int = 4,
                canvas=(200, 170), at=(31, 9)) -> Image.Image:
    """As a product photo on a grey, tinted, shaded backdrop: the garment darker than it by its Fashion-MNIST
    intensity, as share of the backdrop's brightness."""
    height, width = canvas[1], canvas[0]
    columns = np.arange(width)[None, :] / width - 0.5
    backdrop = np.clip(level + np.array(tint)[None, None, :] + slope * columns[..., None], 0, 255)
    backdrop = backdrop * np.ones((height, 1, 1))
    cover = np.zeros((height, width), dtype=np.float64)
    big = np.kron(image.astype(np.float64) / 255, np.ones((scale, scale)))
    cover[at[1]:at[1] + big.shape[0], at[0]:at[0] + big.shape[1]] = big
    return Image.fromarray(np.round(backdrop * (1 - cover[..., None])).astype(np.uint8), "RGB")


@pytest.mark.parametrize("level, tint, slope", [
    (255, (0, 0, 0), 0),       # white: the reference
    (238, (0, 0, 0), 0),       # off-white
    (232, (8, 4, -6), 0),      # cream
    (205, (0, 0, 0), 0),       # light grey
    (235, (0, 0, 0), 14),      # a gradient across the sweep
])
def test_any_plain_light_backdrop_becomes_black_and_the_garment_the_same(tmp_path, level, tint, slope):
    on_backdrop(garment(), level, tint, slope).save(tmp_path / "photo.png")
    made = images.read(tmp_path / "photo.png")
    expected = np.zeros((28, 28), dtype=np.uint8)
    expected[:, 7:21] = 255
    assert np.abs(made.astype(int) - expected).max() <= 3  # float rounding of the shading, nothing more
    assert made[:, :7].max() == 0 and made[:, 21:].max() == 0  # no grey frame: the backdrop is black


def test_jpeg_noise_on_an_off_white_backdrop_stays_black(tmp_path):
    on_backdrop(garment(), 236, (4, 2, -3)).save(tmp_path / "photo.jpg", quality=35)
    made = images.read(tmp_path / "photo.jpg")
    assert made[:, :5].max() == 0 and made[:, 23:].max() == 0  # the frame: no JPEG noise left
    assert made[:, 8:20].min() >= 200  # the garment, light


def test_a_slightly_tilted_garment_is_set_straight(tmp_path):
    photo = on_backdrop(garment(height=20, width=10), 240, canvas=(260, 220), at=(80, 40))
    photo.rotate(8, resample=Image.Resampling.BICUBIC, fillcolor=(240, 240, 240)).save(tmp_path / "tilted.png")
    made = images.read(tmp_path / "tilted.png")
    garment_pixels = made > 128
    rows, columns = np.flatnonzero(garment_pixels.any(axis=1)), np.flatnonzero(garment_pixels.any(axis=0))
    box = garment_pixels[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]
    assert len(columns) == 14 and box.mean() >= 0.95  # upright: 14x28, filling its box; left tilted: ~0.8 of it


def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped(tmp_path):
    """A 16-bit grayscale PNG (Pillow's I;16) of a product photo gives what its 8-bit export gives: each value
    v * 257 in 16 bits is v in 8. Clipped at 255, the white backdrop and the garment were one, and it was refused
    as blank. A 16-bit Fashion-MNIST-form picture passes unchanged, as its 8-bit one does."""
    photo = np.asarray(photo_of(garment(value=180)).convert("L"))
    Image.fromarray(photo).save(tmp_path / "eight.png")
    Image.fromarray(photo.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    with Image.open(tmp_path / "sixteen.png") as opened:
        assert opened.mode == "I;16"  # what the test is about
    assert np.array_equal(images.read(tmp_path / "sixteen.png"), images.read(tmp_path / "eight.png"))
    form = fashion_mnist_like()
    Image.fromarray(form.astype(np.uint16) * 257).save(tmp_path / "form16.png")
    assert np.array_equal(images.read(tmp_path / "form16.png"), form)
    assert images.eight_bit(Image.fromarray(np.array([[0, 300, 65535]], dtype=np.int32), mode="I")).getpixel(
        (1, 0)) == 1  # I holding 16-bit values: 300 / 257 rounds to 1


def test_a_phone_jpeg_with_a_second_image_is_read_from_its_first(tmp_path):
    """Ultra HDR and depth photos are JPEGs with a second image after the first; Pillow opens them as MPO. The
    first is the photo: it gives what the same photo as a plain JPEG gives, whatever the second holds."""
    photo = photo_of(garment())
    photo.save(tmp_path / "plain.jpg", quality=95)
    second = Image.new("RGB", (100, 85), (128, 128, 128))
    photo.save(tmp_path / "ultra_hdr.jpg", format="MPO", save_all=True, append_images=[second], quality=95)
    with Image.open(tmp_path / "ultra_hdr.jpg") as opened:
        assert (opened.format, opened.n_frames) == ("MPO", 2)  # what the test is about
    assert np.array_equal(images.read(tmp_path / "ultra_hdr.jpg"), images.read(tmp_path / "plain.jpg"))


def png_header_only(path, width: int, height: int) -> None:
    """A PNG that declares width x height 8-bit RGB and holds no pixel data: what a check before decoding sees."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IEND", b""))


def test_a_picture_too_large_to_decode_within_the_memory_bound_is_refused_before_decoding(tmp_path):
    """8,000 x 7,000 RGB is 56 MP, under Pillow's bomb limit (89 MP), but 224 MB decoded (4 bytes a pixel): more
    than a picture may take. 7,000 x 7,000 (196 MB) is not refused for its size (its missing pixels fail it)."""
    png_header_only(tmp_path / "huge.png", 8000, 7000)
    with pytest.raises(images.ImageError, match=r"^too large to decode: 8000x7000 RGB would take 224 MB, and a "
                                                r"picture may take 200 MB; shrink it first$"):
        images.read(tmp_path / "huge.png")
    png_header_only(tmp_path / "large.png", 7000, 7000)
    with pytest.raises(images.ImageError, match=r"^damaged or truncated PNG data"):
        images.read(tmp_path / "large.png")


def test_a_large_jpeg_is_decoded_at_a_fraction_of_its_size(tmp_path):
    """A 56 MP JPEG (224 MB decoded whole) is read: Pillow's draft mode decodes it at 1/8, 1,000 x 875, and it
    gives what the same photo at that size gives."""
    photo = Image.new("RGB", (8000, 7000), "white")
    photo.paste((40, 40, 40), (3000, 1500, 5000, 5500))
    photo.save(tmp_path / "large.jpg", quality=90)
    photo.resize((1000, 875), Image.Resampling.BOX).save(tmp_path / "small.jpg", quality=90)
    made = images.read(tmp_path / "large.jpg")
    assert made.shape == (28, 28) and made.max() == 255
    assert np.abs(made.astype(int) - images.read(tmp_path / "small.jpg")).max() <= 16


def test_a_large_picture_is_shrunk_before_any_colour_conversion_copies_it(tmp_path, monkeypatch):
    """A 3,000 x 2,400 palette PNG with transparency: each conversion copies all 7.2 MP; only those Pillow needs to
    shrink it may."""
    photo = Image.new("P", (3000, 2400), 0)
    photo.putpalette([255, 255, 255, 40, 40, 40] + [0] * 762)
    photo.paste(1, (1000, 400, 2000, 2000))
    photo.info["transparency"] = 0
    photo.save(tmp_path / "cutout.png", transparency=0)
    converted = []
    real = Image.Image.convert

    def convert(self, *args, **kwargs):
        converted.append(self.size)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "convert", convert)
    made = images.read(tmp_path / "cutout.png")
    assert made.max() == 255 and made[:, 0].max() == 0  # the garment (taller than wide), on black
    # Whole: the palette to RGBA (Pillow shrinks no palette), and Pillow's own premultiplied alpha inside reduce.
    # to_fashion_mnist's conversions (onto white, to RGB, to grey) all work on the shrunk picture.
    assert [size for size in converted if max(size) > 2 * images.WORKING_SIDE] == [(3000, 2400)] * 2, converted
    assert len(converted) > 2


def test_a_memory_error_reading_one_picture_is_that_pictures_line_and_the_next_is_read(tmp_path):
    """A real MemoryError: a process whose address space is capped a little above what it uses reads a 20 MP picture
    (80 MB decoded, under the size bound), then a small one. predict's read_each gives the first its line and
    reads the second."""
    import subprocess
    import sys
    import textwrap

    from tests.conftest import REPO_ROOT

    big = Image.new("RGB", (5000, 4000), "white")
    big.paste((40, 40, 40), (2000, 1000, 3000, 3000))
    big.save(tmp_path / "big.png")
    photo_of(garment()).save(tmp_path / "small.png")
    program = textwrap.dedent(f"""
        import resource
        from pathlib import Path
        from fmnist.tools.predict import read_each
        used = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (used + 40_000_000, resource.RLIM_INFINITY))
        files = [Path({str(tmp_path / 'big.png')!r}), Path({str(tmp_path / 'small.png')!r})]
        for file, image, problem in read_each(files):
            print(file.name, image is not None, problem)
    """)
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=REPO_ROOT,
                            env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "big.png False out of memory while reading it; it needs more than this machine has free",
        "small.png True "]
