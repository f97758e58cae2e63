"""Width and height of an image read from its header, without decoding it (a few hundred bytes at most, except
JPEG, whose size marker may follow large metadata segments that are skipped, not read).

Known: PNG (and APNG), JPEG, GIF, BMP, WEBP (lossy, lossless, extended), TIFF (first page), PBM/PGM/PPM. Other
data gives None; `image_size` then asks Pillow's lazy `Image.open` (which reads only the header) when Pillow is
installed.
"""
import io
import struct
import warnings
from typing import BinaryIO, Optional, Tuple

Size = Tuple[int, int]
# What `pillow_size` gives for an image Pillow refuses to open as a decompression bomb (over 2 x
# PIL.Image.MAX_IMAGE_PIXELS, about 179 megapixels by default): too large, size not told.
PILLOW_BOMB: Size = (-1, -1)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG markers that start a frame (SOF0..SOF15 without DHT C4, JPG C8 and DAC CC) and carry the image size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_DCT_SCALABLE = frozenset((0xC0, 0xC1, 0xC2))  # SOF0-2: Huffman-coded DCT frames
_JPEG_STANDALONE = frozenset(range(0xD0, 0xDA)) | {0x01}  # RSTn, SOI, EOI, TEM: no length field


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) < n:
        raise EOFError
    return data


def _png(head: bytes, f: BinaryIO) -> Optional[Size]:
    if head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def _gif(head: bytes, f: BinaryIO) -> Optional[Size]:
    return struct.unpack("<HH", head[6:10])


def _bmp(head: bytes, f: BinaryIO) -> Optional[Size]:
    (dib_size,) = struct.unpack("<I", head[14:18])
    if dib_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return struct.unpack("<HH", head[18:22])
    width, height = struct.unpack("<ii", head[18:26])
    return abs(width), abs(height)  # a negative height means top-down rows


def _webp(head: bytes, f: BinaryIO) -> Optional[Size]:
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and head[20] == 0x2F:
        (bits,) = struct.unpack("<I", head[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


def _jpeg_frame(f: BinaryIO) -> Optional[Tuple[int, int, int, int, int]]:
    """(SOF marker, sample precision, width, height, components) of the JPEG file `f`, from its frame header."""
    f.seek(2)
    while True:
        byte = _read(f, 1)
        if byte != b"\xff":
            return None  # not at a marker: damaged data, let the decoder say so
        marker = _read(f, 1)[0]
        while marker == 0xFF:  # fill bytes
            marker = _read(f, 1)[0]
        if marker in _JPEG_STANDALONE:
            continue
        (length,) = struct.unpack(">H", _read(f, 2))
        if marker in _JPEG_SOF:
            precision, height, width, components = struct.unpack(">BHHB", _read(f, 6))
            return (marker, precision, width, height, components) if height else None  # 0: set later by DNL
        if marker == 0xDA or length < 2:  # start of scan before any frame header
            return None
        f.seek(length - 2, io.SEEK_CUR)


def _jpeg(head: bytes, f: BinaryIO) -> Optional[Size]:
    frame = _jpeg_frame(f)
    return None if frame is None else frame[2:4]


def _tiff(head: bytes, f: BinaryIO) -> Optional[Size]:
    order = "<" if head[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", head[4:8])
    f.seek(ifd)
    (count,) = struct.unpack(order + "H", _read(f, 2))
    sizes = {}
    for _ in range(min(count, 512)):
        tag, kind, _n, value = struct.unpack(order + "HHI4s", _read(f, 12))
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG
            sizes[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value[:2] if kind == 3 else value)[0]
    return (sizes[256], sizes[257]) if len(sizes) == 2 else None


def _pnm(head: bytes, f: BinaryIO) -> Optional[Size]:
    f.seek(2)
    text = f.read(1024)
    numbers = []
    for line in text.split(b"\n"):
        for token in line.split(b"#", 1)[0].split():
            if not token.isdigit():
                return None
            numbers.append(int(token))
            if len(numbers) == 2:
                return numbers[0], numbers[1]
    return None


_FORMATS = (
    (lambda h: h.startswith(PNG_SIGNATURE), _png),
    (lambda h: h.startswith(b"\xff\xd8"), _jpeg),
    (lambda h: h[:6] in (b"GIF87a", b"GIF89a"), _gif),
    (lambda h: h[:2] == b"BM", _bmp),
    (lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP", _webp),
    (lambda h: h[:4] in (b"II*\0", b"MM\0*"), _tiff),
    (lambda h: h[:1] == b"P" and h[1:2] in b"123456" and h[2:3].isspace(), _pnm),
)


def header_size(f: BinaryIO) -> Optional[Size]:
    """(width, height) from the header of the image file `f` (binary, seekable) for the formats above, else None
    (also for a damaged header: the decoder then reports it)."""
    start = f.tell()
    try:
        head = f.read(32)
        for matches, reader in _FORMATS:
            if matches(head):
                return reader(head.ljust(32, b"\0"), f)
        return None
    except (EOFError, struct.error, OSError, IndexError):
        return None
    finally:
        f.seek(start)


def pillow_size(f: BinaryIO) -> Optional[Size]:
    """(width, height) through Pillow's lazy open (header only), None without Pillow or for data it cannot
    identify; PILLOW_BOMB for an image Pillow itself refuses as a decompression bomb."""
    try:
        from PIL import Image
    except ImportError:
        return None
    start = f.tell()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's own DecompressionBombWarning: our limit decides
            with Image.open(f) as img:
                return tuple(img.size)
    except Image.DecompressionBombError:
        return PILLOW_BOMB
    except Exception:  # noqa: BLE001 - anything Pillow cannot identify is left to the decoder
        return None
    finally:
        f.seek(start)


def image_size(f: BinaryIO) -> Optional[Size]:
    """(width, height) from the header of `f` without decoding (our readers, then Pillow's), or None."""
    return header_size(f) or pillow_size(f)


def scalable_jpeg_size(data: bytes, components: Tuple[int, ...] = (1, 3, 4)) -> Optional[Size]:
    """(width, height) of a JPEG that its decoder can decode at 1/2, 1/4 or 1/8 scale in the DCT domain (8-bit
    baseline, extended or progressive Huffman frames, the JPEGs cameras and phones write) and that has one of
    `components` colour components (1 grey, 3 YCbCr/RGB, 4 CMYK); None for any other data (other formats, 12-bit,
    lossless, arithmetic-coded or damaged JPEGs)."""
    if not data.startswith(b"\xff\xd8"):
        return None
    try:
        frame = _jpeg_frame(io.BytesIO(data))
    except (EOFError, struct.error):
        return None
    if frame is None or frame[0] not in _JPEG_DCT_SCALABLE or frame[1] != 8 or frame[4] not in components:
        return None
    return frame[2], frame[3]
