"""`DecodeImage.device: gpu`: JPEGs decoded by Paddle's nvJPEG op (`paddle.vision.ops.decode_jpeg`) on the
process's CUDA device, for GPU training whose CPU cores cannot decode photos as fast as the GPU trains
(docs/BENCHMARK.md, "GPU plan").

It runs only where it can: a Paddle build with CUDA and that op, a visible device, a process set to the GPU, the
main process (a forked data-loader worker cannot use CUDA: `num_workers: 0` decodes in the main process), an 8-bit
grey or colour JPEG. Anything else (every run on this CPU-only project's CI, CMYK JPEGs, PNGs) is decoded on the
CPU exactly as with `device: cpu`, after one note that says why. EXIF orientation is applied from the header as
the CPU decode applies it; nvJPEG decodes at full size (no reduced-size decoding) and its chroma upsampling may
differ from libjpeg's in the last bits, so an export records the device and the predictor honours it.
"""
import io
import logging
from typing import Optional

import numpy as np

from .image_header import scalable_jpeg_size

DEVICES = ("cpu", "gpu")
_logger = logging.getLogger("ppcls_lite.pipeline")
_notes_given = set()

# EXIF orientation -> the numpy operation that shows the stored pixels upright (as Pillow's exif_transpose).
ORIENT = {
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1),
}


def gpu_unavailable_reason() -> str:
    """'' when this process can decode JPEGs on a GPU, else why not."""
    try:
        import paddle
    except ImportError:
        return "paddle is not installed here"
    if not paddle.is_compiled_with_cuda():
        return "this Paddle build has no CUDA"
    if not hasattr(paddle.vision.ops, "decode_jpeg"):
        return "this Paddle has no paddle.vision.ops.decode_jpeg"
    if not str(paddle.get_device()).startswith("gpu"):
        return "the process runs on the CPU (Global.device)"
    if paddle.io.get_worker_info() is not None:
        return "a data-loader worker process cannot use CUDA (num_workers: 0 decodes in the main process)"
    return ""


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation tag of an image file's bytes (1 when absent or unreadable), from its header."""
    try:
        from PIL import Image
        with Image.open(io.BytesIO(data)) as img:
            return int(img.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - no Pillow, or no readable EXIF: stored as shown
        return 1


def decode_jpeg_gpu(data: bytes) -> Optional[np.ndarray]:
    """HWC uint8 RGB of a JPEG decoded on the GPU, EXIF orientation applied; None (after a one-time note) when
    the GPU cannot decode it here: the caller decodes on the CPU."""
    reason = gpu_unavailable_reason()
    if not reason and scalable_jpeg_size(data, components=(1, 3)) is None:
        reason = "only 8-bit grey and colour JPEGs are decoded on the GPU"
    if reason:
        if reason not in _notes_given:
            _notes_given.add(reason)
            _logger.warning(f"DecodeImage device=gpu: {reason}; decoding on the CPU")
        return None
    import paddle

    raw = paddle.to_tensor(np.frombuffer(data, np.uint8), place=paddle.CPUPlace())
    chw = paddle.vision.ops.decode_jpeg(raw, mode="rgb").numpy()
    hwc = chw.transpose(1, 2, 0)
    orient = ORIENT.get(exif_orientation(data))
    return np.ascontiguousarray(orient(hwc) if orient else hwc)
