"""The decode policy: encoded file bytes -> HWC uint8 array, 3 channels, the same way for every caller.

- EXIF orientation is applied (a phone photo comes out the way it is shown).
- Greyscale and palette images become RGB; CMYK JPEGs are converted by the decoder's colour transform.
- Alpha is discarded: the stored colour channels are kept as they are (no compositing), as OpenCV's and
  PaddleClas's colour decoding do.
- 16-bit images keep their full depth until one conversion to 8 bits, v8 = round(v16 / 257), so 65535 -> 255.
- GIF: the first frame. WEBP, BMP, TIFF, PPM/PGM are read like PNG/JPEG.
- Empty, truncated and non-image data raise ImageDecodeError with the reason.
- Pixel limit: the size is read from the header first (image_header.py); an image of more than
  `max_image_pixels()` pixels (default 90 megapixels, e.g. 9487x9487 or 12000x7500) raises ImageTooLargeError
  before anything is decoded, so a decompression bomb (a few KB of PNG that would decode to gigabytes) never
  allocates. Raise it with Global.max_image_pixels (training, eval, infer, check_dataset) or the environment
  variable PPCLS_LITE_MAX_IMAGE_PIXELS (everywhere, the deployed predictor too); 0 turns the check off.
- Reduced-size decoding (`large_enough`, given by DecodeImage when the op after it makes the image smaller
  anyway): an 8-bit JPEG is decoded at the largest of 1/8, 1/4, 1/2 scale (in the DCT domain, several times
  cheaper than a full decode followed by a resize) whose size, in either orientation, the next op still finds
  large enough; other images, and JPEGs no scale suits, are decoded at full size. The scale depends only on the
  size in the file's header, so every caller decides alike; EXIF orientation and the colour rules above apply
  to the reduced image as they do to the full one. The pixel limit is checked on the full size.

`backend="cv2"` decodes with OpenCV (IMREAD_ANYCOLOR | IMREAD_ANYDEPTH, which applies EXIF orientation and
keeps 16-bit data); `backend="pil"` decodes with Pillow (first frame, ImageOps.exif_transpose). Pillow reduces
16-bit colour PNGs to their high byte, so those are decoded by OpenCV in both backends.
"""
import io
import os
from typing import Any, BinaryIO, Callable, Optional, Tuple

import cv2
import numpy as np

from .image_header import PILLOW_BOMB, image_size, scalable_jpeg_size

# Suffixes that folder scans and ImageFolderDataset treat as images.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")
DECODE_BACKENDS = ("cv2", "pil")
_CV2_FLAGS = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH
# The DCT-domain scales of the JPEG decoders (OpenCV's IMREAD_REDUCED_*, Pillow's draft), largest reduction first.
JPEG_SCALES = (8, 4, 2)
_CV2_REDUCED_FLAGS = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
# large_enough(width, height): whether the op after DecodeImage loses nothing on an image of that size.
SizeCheck = Callable[[int, int], bool]


# The pixel limit: default, and the environment variable that sets it in every process (the predictor too).
DEFAULT_MAX_IMAGE_PIXELS = 90_000_000
MAX_PIXELS_ENV = "PPCLS_LITE_MAX_IMAGE_PIXELS"
MAX_PIXELS_KEY = "Global.max_image_pixels"
_max_pixels_setting: Optional[int] = None  # set_max_image_pixels(): wins over the environment


class ImageDecodeError(ValueError):
    """The bytes of an image could not be decoded (corrupt, truncated, empty or not an image)."""


class ImageTooLargeError(ImageDecodeError):
    """The image has more pixels than the limit (checked from its header, before decoding)."""


def _pixel_count(text: Any, where: str) -> int:
    try:
        value = int(float(str(text).replace("_", "")))
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"{where}={text!r}: give a whole number of pixels, e.g. 200000000 (0 turns the check off)")
    return value


def set_max_image_pixels(value: Optional[Any]) -> None:
    """Set the pixel limit of this process (and the data-loader workers it starts); None: back to
    $PPCLS_LITE_MAX_IMAGE_PIXELS or the default."""
    global _max_pixels_setting
    _max_pixels_setting = None if value is None else _pixel_count(value, MAX_PIXELS_KEY)


def max_image_pixels() -> int:
    """The pixel limit in force: set_max_image_pixels(), else $PPCLS_LITE_MAX_IMAGE_PIXELS, else 90 megapixels;
    0 means no limit."""
    if _max_pixels_setting is not None:
        return _max_pixels_setting
    env = os.environ.get(MAX_PIXELS_ENV, "").strip()
    return _pixel_count(env, MAX_PIXELS_ENV) if env else DEFAULT_MAX_IMAGE_PIXELS


def _megapixels(n: int) -> str:
    return f"{n / 1e6:.1f}".rstrip("0").rstrip(".") + " megapixels"


def check_pixel_limit(f: BinaryIO) -> None:
    """Raise ImageTooLargeError when the header of the image file `f` (binary, seekable; left where it was)
    gives more pixels than the limit; images whose size cannot be read from the header pass."""
    limit = max_image_pixels()
    if not limit:
        return
    size = image_size(f)
    if size is None:
        return
    how_to = (f"if the image is genuine, raise the limit with {MAX_PIXELS_KEY}=N or the environment variable "
              f"{MAX_PIXELS_ENV}=N (0: no limit), or resize the image")
    if size == PILLOW_BOMB:
        raise ImageTooLargeError(f"cannot decode image: Pillow reads its header as a decompression bomb, far over the "
                                 f"pixel limit of {_megapixels(limit)}; {how_to}")
    width, height = size
    if width * height > limit:
        raise ImageTooLargeError(
            f"cannot decode image: its header gives {width}x{height} pixels ({_megapixels(width * height)}), over the "
            f"pixel limit of {_megapixels(limit)} (decoding would take about {width * height * 3 / 2 ** 30:.1f} GiB "
            f"of memory); {how_to}")


def reduced_size(width: int, height: int, scale: int) -> Tuple[int, int]:
    """The size of a width x height JPEG decoded at 1/scale (the decoders round up)."""
    return -(-width // scale), -(-height // scale)


def jpeg_scale(data: bytes, large_enough: Optional[SizeCheck]) -> int:
    """The reduction (8, 4 or 2) to decode `data` at, or 1: the largest whose reduced size `large_enough` accepts
    as (width, height) and as (height, width) (EXIF orientation may swap them), for 8-bit JPEGs only."""
    size = scalable_jpeg_size(data) if large_enough is not None else None
    if size is None:
        return 1
    for scale in JPEG_SCALES:
        width, height = reduced_size(*size, scale)
        if large_enough(width, height) and large_enough(height, width):
            return scale
    return 1


def import_pil() -> Any:
    """Pillow, imported on first use so that cv2-only pipelines run without it."""
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise ImportError("this preprocessing uses backend: pil; install Pillow (pip install pillow)") from None
    return Image, ImageOps


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale a decoded array of any depth to uint8: integers by their full range, floats from [0, 1]."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)  # round(v / 257) in integers
    if np.issubdtype(arr.dtype, np.floating):
        return np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        top = float(np.iinfo(arr.dtype).max)
        return np.round(np.clip(arr, 0, top) / top * 255.0).astype(np.uint8)
    raise ImageDecodeError(f"cannot decode image (unsupported pixel type {arr.dtype})")


def to_rgb3(arr: np.ndarray, bgr: bool) -> np.ndarray:
    """1-, 3- or 4-channel uint8 -> 3-channel RGB (alpha dropped)."""
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.shape[2] == 1:
        return np.repeat(arr, 3, axis=2)
    if arr.shape[2] == 2:  # grey + alpha
        return np.repeat(arr[:, :, :1], 3, axis=2)
    if bgr and arr.shape[2] in (3, 4):  # OpenCV's channel swap: ~40x faster than copying a reversed numpy view
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB if arr.shape[2] == 3 else cv2.COLOR_BGRA2RGB)
    arr = arr[:, :, :3]
    return arr[:, :, ::-1] if bgr else arr


def to_bgr3(arr: np.ndarray) -> np.ndarray:
    """1-, 3- or 4-channel uint8 as OpenCV decodes it (BGR, BGRA) -> 3-channel BGR, alpha dropped, no swap."""
    if arr.ndim == 3 and arr.shape[2] == 3:
        return arr
    if arr.ndim == 3 and arr.shape[2] == 4:
        return cv2.cvtColor(arr, cv2.COLOR_BGRA2BGR)
    return to_rgb3(arr, bgr=False)  # grey (with or without alpha): the three channels are equal


def looks_truncated(data: bytes) -> bool:
    """JPEG/PNG files missing their end marker; OpenCV decodes those anyway (grey rows at the bottom)."""
    if data[:3] == b"\xff\xd8\xff":
        return b"\xff\xd9" not in data[-64:]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in data[-32:]
    return False


def _is_16bit_png(data: bytes) -> bool:
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 24 and data[24] == 16


TRUNCATED = "cannot decode image (the file is truncated: no end marker)"


def _decode_cv2(data: bytes, to_rgb: bool = True, scale: int = 1) -> np.ndarray:
    flags = _CV2_FLAGS if scale == 1 else _CV2_REDUCED_FLAGS[scale]  # reduced: 8-bit JPEGs only, as colour
    arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if arr is None:
        if looks_truncated(data):
            raise ImageDecodeError(TRUNCATED)
        raise ImageDecodeError("cannot decode image (not an image, or a format OpenCV cannot read)")
    arr = to_uint8(arr)
    return to_rgb3(arr, bgr=True) if to_rgb else to_bgr3(arr)


def _decode_pil(data: bytes, scale: int = 1) -> np.ndarray:
    Image, ImageOps = import_pil()
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.seek(0)  # GIF / animated WEBP: the first frame
            if scale > 1:  # JPEG: Pillow picks the largest DCT scale that keeps at least this size, i.e. 1/scale
                img.draft(img.mode, (img.width // scale, img.height // scale))
            img.load()  # full decode: truncated files fail here
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
                arr = np.asarray(img)
                if img.mode.startswith("I;16"):
                    arr = arr.astype(np.uint16)
                elif img.mode == "I":  # 16-bit greyscale PNGs open as 32-bit "I" holding 0..65535
                    arr = np.clip(arr, 0, 65535).astype(np.uint16)
                return to_rgb3(to_uint8(arr), bgr=False)
            if img.mode in ("P", "PA") and "transparency" in img.info:
                img = img.convert("RGBA")  # palette transparency: keep the colours, drop alpha below
            return np.asarray(img.convert("RGB"))
    except ImageDecodeError:
        raise
    except Exception as exc:  # Pillow raises several types for bad data
        raise ImageDecodeError(f"cannot decode image ({type(exc).__name__}: {exc})") from None


def decode_image(data: bytes, backend: str = "cv2", to_rgb: bool = True,
                 large_enough: Optional[SizeCheck] = None) -> np.ndarray:
    """Encoded bytes -> HWC uint8 RGB array following the decode policy above (BGR with `to_rgb=False`: the
    same pixels with the channels reversed, which OpenCV decodes without a swap). `large_enough(w, h)`: what
    the next op needs; a JPEG is then decoded at the smallest 1/2^k scale that still satisfies it."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode_image expects the raw bytes of an image file, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise ImageDecodeError("cannot decode image (the file is empty)")
    if backend not in DECODE_BACKENDS:
        raise ValueError(f"DecodeImage: backend={backend!r} is not valid; use one of {list(DECODE_BACKENDS)}")
    check_pixel_limit(io.BytesIO(data))
    scale = jpeg_scale(data, large_enough)
    if backend == "pil" and not _is_16bit_png(data):
        arr = _decode_pil(data, scale)
        return arr if to_rgb else cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    arr = _decode_cv2(data, to_rgb, scale)
    if looks_truncated(data):
        try:
            _decode_pil(data)  # Pillow refuses truncated files that OpenCV pads with grey
        except ImportError:
            raise ImageDecodeError(TRUNCATED) from None
    return arr
