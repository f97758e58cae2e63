"""The decode policy (docs/DEPLOY.md) on the files users bring, for both decode backends, and the text-file rules
of list and label files (BOM, CRLF, spaces and Chinese characters in paths, GIF as an image)."""
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from ppcls_lite.data.dataset import ImageNetDataset
from ppcls_lite.pipeline import (ImageDecodeError, collect_inputs, decode_image, read_label_names, scan_images,
                                 split_list_line)

BACKENDS = ["cv2", "pil"]


def photo(h=480, w=640, seed=0):
    """A smooth photo-like RGB image with an asymmetric mark, so rotations and flips are told apart."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (21, 21), 7)
    img[20:120, 30:60] = (250, 20, 20)  # a red bar near the top-left corner
    return img


def encode(img, fmt, **kwargs):
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def jpeg_with_orientation(rgb, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.fromarray(rgb), "JPEG", quality=95, exif=exif)


# What a viewer does for each EXIF orientation, applied to the stored pixels.
DISPLAY = {3: lambda a: np.rot90(a, 2), 6: lambda a: np.rot90(a, -1), 8: lambda a: np.rot90(a, 1)}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied(backend, orientation):
    rgb = photo()
    stored = decode_image(jpeg_with_orientation(rgb, 1), backend)  # same pixel data, no rotation asked
    shown = decode_image(jpeg_with_orientation(rgb, orientation), backend)
    expected = DISPLAY[orientation](stored)
    assert shown.shape == expected.shape == ((640, 480, 3) if orientation in (6, 8) else (480, 640, 3))
    np.testing.assert_array_equal(shown, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cmyk_and_greyscale_jpeg(backend):
    rgb = photo()
    cmyk = decode_image(encode(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95), backend)
    assert cmyk.shape == (480, 640, 3) and cmyk.dtype == np.uint8
    assert np.abs(cmyk.astype(int) - rgb).mean() < 3  # colours survive the CMYK round trip
    grey_src = Image.fromarray(rgb).convert("L")
    grey = decode_image(encode(grey_src, "JPEG", quality=95), backend)
    assert grey.shape == (480, 640, 3)
    np.testing.assert_array_equal(grey[..., 0], grey[..., 1])
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    assert np.abs(grey[..., 0].astype(int) - np.asarray(grey_src)).mean() < 2


def test_backends_agree_on_jpegs():
    data = jpeg_with_orientation(photo(), 6)
    assert np.abs(decode_image(data, "cv2").astype(int) - decode_image(data, "pil")).max() <= 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_16bit_png_is_scaled_by_257(backend):
    rng = np.random.default_rng(1)
    grey16 = rng.integers(0, 65536, (48, 64), dtype=np.uint16)
    grey16[0, :4] = [0, 128, 129, 65535]  # rounding edges: 0, 0.498 -> 0, 0.502 -> 1, 255
    colour16 = rng.integers(0, 65536, (48, 64, 3), dtype=np.uint16)  # written as BGR by cv2
    expected_grey = np.round(grey16 / 257.0).astype(np.uint8)
    expected_colour = np.round(colour16[..., ::-1] / 257.0).astype(np.uint8)
    grey = decode_image(cv2.imencode(".png", grey16)[1].tobytes(), backend)
    colour = decode_image(cv2.imencode(".png", colour16)[1].tobytes(), backend)
    np.testing.assert_array_equal(grey[..., 1], expected_grey)
    assert list(grey[0, :4, 0]) == [0, 0, 1, 255]
    np.testing.assert_array_equal(colour, expected_colour)


@pytest.mark.parametrize("backend", BACKENDS)
def test_palette_rgba_gif_webp(backend):
    rgb = photo(96, 128)
    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    np.testing.assert_array_equal(decode_image(encode(palette, "PNG"), backend), np.asarray(palette.convert("RGB")))
    # RGBA: alpha is dropped, the stored colours are kept (also under fully transparent pixels)
    alpha = np.zeros((96, 128), np.uint8)
    alpha[:, 64:] = 255
    rgba = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    np.testing.assert_array_equal(decode_image(encode(rgba, "PNG"), backend), rgb)
    # palette with a transparent entry: the palette colours
    transparent = palette.copy()
    transparent.info["transparency"] = 0
    np.testing.assert_array_equal(decode_image(encode(transparent, "PNG", transparency=0), backend),
                                  np.asarray(palette.convert("RGB")))
    # GIF: the first frame of an animation
    frames = [palette, Image.fromarray(255 - rgb).convert("P")]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    np.testing.assert_array_equal(decode_image(gif, backend), np.asarray(Image.open(io.BytesIO(gif)).convert("RGB")))
    # WEBP (lossless: exact)
    np.testing.assert_array_equal(decode_image(encode(Image.fromarray(rgb), "WEBP", lossless=True), backend), rgb)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unreadable_data_raises_with_reason(backend):
    good = encode(Image.fromarray(photo(64, 64)), "JPEG")
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_image(b"", backend)
    for bad in (b"GIF89a but not really", b"hello, not an image", good[: len(good) // 2]):
        with pytest.raises(ImageDecodeError, match="cannot decode image"):
            decode_image(bad, backend)


# ---------------------------------------------------------------------------------------------- text files

def test_list_lines_split_at_the_last_whitespace():
    assert split_list_line("paper/纸 1.png 3") == ("paper/纸 1.png", "3")
    assert split_list_line("a b\tc.jpg\t12") == ("a b\tc.jpg", "12")
    assert split_list_line("only_a_path.jpg") == ("only_a_path.jpg", None)
    assert split_list_line("x/y z.jpg,4", delimiter=",") == ("x/y z.jpg", "4")


def _folder_with_awkward_names(root):
    (root / "paper").mkdir(parents=True)
    (root / "glass bottles").mkdir()
    rgb = photo(40, 40)
    files = {"paper/纸 1.png": 0, "glass bottles/瓶 two.jpg": 1, "paper/anim.gif": 0}
    Image.fromarray(rgb).save(root / "paper" / "纸 1.png")
    Image.fromarray(rgb).save(root / "glass bottles" / "瓶 two.jpg")
    Image.fromarray(rgb).convert("P").save(root / "paper" / "anim.gif")
    (root / "notes.txt").write_text("not an image")
    return files


def test_bom_crlf_spaces_chinese_and_gif_inputs(tmp_path):
    files = _folder_with_awkward_names(tmp_path)
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"\xef\xbb\xbf" + "".join(f"{p} {l}\r\n" for p, l in files.items()).encode("utf-8"))
    assert collect_inputs(listing) == [str(tmp_path / p) for p in files]
    no_labels = tmp_path / "no labels.txt"
    no_labels.write_text("paper/纸 1.png\r\n# a comment\r\n", encoding="utf-8")
    assert collect_inputs(no_labels) == [str(tmp_path / "paper/纸 1.png")]
    # a GIF given directly is an image, not a list file; folder scans include GIFs and skip other files
    assert collect_inputs(tmp_path / "paper" / "anim.gif") == [str(tmp_path / "paper" / "anim.gif")]
    assert scan_images(tmp_path) == sorted(str(tmp_path / p) for p in files)
    binary = tmp_path / "list.bin"
    binary.write_bytes(b"\x81\x82 not utf-8")
    with pytest.raises(ValueError, match="not a UTF-8 text file"):
        collect_inputs(binary)


def test_label_file_with_bom_and_crlf(tmp_path):
    labels = tmp_path / "label_list.txt"
    labels.write_bytes("\ufeff0 废纸 paper\r\n1 glass\r\n".encode("utf-8"))
    assert read_label_names(labels) == ["废纸 paper", "glass"]


def test_training_list_with_bom_crlf_and_spaces(tmp_path):
    files = _folder_with_awkward_names(tmp_path)
    listing = tmp_path / "train list.txt"
    listing.write_bytes(b"\xef\xbb\xbf" + "".join(f"{p} {l}\r\n" for p, l in files.items()).encode("utf-8"))
    ops = [{"DecodeImage": {"to_rgb": True}}, {"ResizeImage": {"size": 32}}, {"NormalizeImage": {}},
           {"ToCHWImage": None}]
    dataset = ImageNetDataset(str(tmp_path), str(listing), transform_ops=ops)
    assert [(s[0], s[1]) for s in dataset.samples] == [(str(tmp_path / p), l) for p, l in files.items()]
    assert all(dataset[i][0].shape == (3, 32, 32) for i in range(len(dataset)))


def test_decoded_arrays_follow_the_same_policy():
    from ppcls_lite.pipeline import DecodeImage

    rgb = photo(20, 30)
    decode = DecodeImage()
    np.testing.assert_array_equal(decode(np.dstack([rgb, np.zeros((20, 30), np.uint8)])), rgb)  # RGBA: alpha dropped
    grey = decode(rgb[..., 0])
    assert grey.shape == (20, 30, 3) and (grey == rgb[..., :1]).all()
    np.testing.assert_array_equal(decode(rgb.astype(np.uint16) * 257), rgb)  # 16-bit: v / 257
