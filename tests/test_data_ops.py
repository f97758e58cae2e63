"""Per-image transforms: shape, dtype, value range; geometric ops checked on images with a known pattern."""
import io
import logging
import random

import cv2
import numpy as np
import pytest
from PIL import Image

from ppcls_lite.data.preprocess import (AutoAugment, ColorJitter, CropImage, DecodeImage, ImageDecodeError,
                                        NormalizeImage, RandCropImage, RandFlipImage, RandomErasing, ResizeImage,
                                        ToCHWImage, create_operators, parse_scale, transform)
from ppcls_lite.data.preprocess.autoaugment import IMAGENET_POLICY, OPERATIONS


def png_bytes(arr, mode=None):
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def gradient(h=32, w=48):
    """R grows with x, G grows with y, B constant: tells orientation and position after geometric ops."""
    xs = np.linspace(0, 255, w).astype(np.uint8)
    ys = np.linspace(0, 255, h).astype(np.uint8)
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = xs[None, :]
    img[..., 1] = ys[:, None]
    img[..., 2] = 77
    return img


@pytest.mark.parametrize("backend", ["cv2", "pil"])
def test_decode_rgb_gray_rgba(backend):
    img = gradient()
    out = DecodeImage(to_rgb=True, backend=backend)(png_bytes(img))
    assert out.dtype == np.uint8 and out.shape == (32, 48, 3)
    np.testing.assert_array_equal(out, img)
    bgr = DecodeImage(to_rgb=False, backend=backend)(png_bytes(img))
    np.testing.assert_array_equal(bgr, img[:, :, ::-1])
    chw = DecodeImage(channel_first=True, backend=backend)(png_bytes(img))
    assert chw.shape == (3, 32, 48)

    gray = DecodeImage(backend=backend)(png_bytes(img[..., 0], mode="L"))
    assert gray.shape == (32, 48, 3)
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])
    np.testing.assert_array_equal(gray[..., 1], img[..., 0])

    rgba = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    out = DecodeImage(backend=backend)(png_bytes(rgba, mode="RGBA"))
    assert out.shape == (32, 48, 3)
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize("backend", ["cv2", "pil"])
def test_decode_bad_bytes(backend):
    good = png_bytes(gradient())
    ok, jpg = cv2.imencode(".jpg", gradient(64, 64))
    jpg = jpg.tobytes()
    for bad in (b"", b"not an image at all", good[: len(good) // 2], jpg[: len(jpg) // 2]):
        with pytest.raises(ImageDecodeError):
            DecodeImage(backend=backend)(bad)


@pytest.mark.parametrize("backend", ["cv2", "pil"])
def test_resize_short_and_size(backend):
    img = gradient(32, 48)
    out = ResizeImage(resize_short=16, backend=backend)(img)
    assert out.shape == (16, 24, 3) and out.dtype == np.uint8
    # The gradient direction survives: left column dark red, right column bright red.
    assert out[:, 0, 0].mean() < 30 and out[:, -1, 0].mean() > 225
    out = ResizeImage(size=[20, 10], interpolation="bicubic", backend=backend)(img)  # size is [w, h]
    assert out.shape == (10, 20, 3)
    out = ResizeImage(size=12, interpolation="random", backend=backend)(img)
    assert out.shape == (12, 12, 3)
    with pytest.raises(ValueError, match="interpolation"):
        ResizeImage(size=12, interpolation="cubic-ish")


def test_center_crop_location():
    img = np.zeros((20, 30, 3), np.uint8)
    img[8:12, 13:17] = 255  # a 4x4 white square in the middle
    out = CropImage(size=4)(img)
    assert out.shape == (4, 4, 3)
    assert out.min() == 255
    out = CropImage(size=[10, 6])(img)  # [w, h]
    assert out.shape == (6, 10, 3)
    with pytest.raises(ValueError, match="smaller than the crop"):
        CropImage(size=64)(img)


def test_rand_crop_is_a_resized_subwindow():
    random.seed(0)
    img = gradient(64, 64)
    op = RandCropImage(size=16, scale=[0.25, 0.5], interpolation="nearest")
    for _ in range(20):
        x0, y0, w, h = op.crop_box(64, 64)
        assert 0 <= x0 and x0 + w <= 64 and 0 <= y0 and y0 + h <= 64
        assert 0.2 <= w * h / 64 ** 2 <= 0.55  # area fraction within scale (rounding slack)
        assert 3 / 4 - 0.1 <= w / h <= 4 / 3 + 0.1
    state = random.getstate()
    x0, y0, w, h = op.crop_box(64, 64)
    random.setstate(state)
    out = op(img)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    # Nearest resize keeps gradient values from inside the chosen window.
    assert img[y0, x0, 0] <= out[0, 0, 0] <= img[y0 + h - 1, x0 + w - 1, 0]
    assert img[y0, x0, 1] <= out[0, 0, 1] <= img[y0 + h - 1, x0 + w - 1, 1]


def test_rand_crop_fallback_on_extreme_aspect():
    random.seed(1)
    out = RandCropImage(size=8, scale=[0.99, 1.0], ratio=[1.0, 1.0])(gradient(4, 64))
    assert out.shape == (8, 8, 3)


@pytest.mark.parametrize("code", [1, 0, -1])
def test_rand_flip(code):
    img = gradient()
    expected = {1: img[:, ::-1], 0: img[::-1], -1: img[::-1, ::-1]}[code]
    op = RandFlipImage(flip_code=code)
    results = [op(img) for _ in range(40)]
    flipped = [r for r in results if not np.array_equal(r, img)]
    assert 0 < len(flipped) < 40  # random, about half the time
    for r in flipped:
        np.testing.assert_array_equal(r, expected)


def test_parse_scale_is_safe():
    assert parse_scale("1.0/255.0") == pytest.approx(1 / 255)
    assert parse_scale("0.5") == 0.5
    assert parse_scale(2) == 2.0
    for bad in ("__import__('os').system('true')", "1/0", "a/b", [1]):
        with pytest.raises(ValueError, match="scale"):
            parse_scale(bad)


def test_normalize_and_chw():
    img = np.full((4, 5, 3), 255, np.uint8)
    out = NormalizeImage(scale="1.0/255.0", mean=[0.5, 0.5, 0.5], std=[0.5, 0.25, 0.5], order="")(img)
    assert out.dtype == np.float32 and out.shape == (4, 5, 3)
    np.testing.assert_allclose(out[0, 0], [1.0, 2.0, 1.0], rtol=1e-6)
    chw = ToCHWImage()(out)
    assert chw.shape == (3, 4, 5)
    out = NormalizeImage(scale=1 / 255, mean=[0, 0, 0], std=[1, 1, 1], order="chw")(img.transpose(2, 0, 1))
    assert out.shape == (3, 4, 5) and out.max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="CHW"):
        NormalizeImage(order="chw")(img)


def test_color_jitter_range_and_identity():
    random.seed(0)
    img = gradient()
    np.testing.assert_array_equal(ColorJitter()(img), img)
    out = ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert not np.array_equal(out, img)
    dark = ColorJitter(brightness=0.999)  # factor in [0.001, 1.999]
    assert dark(img).dtype == np.uint8
    with pytest.raises(ValueError, match="hue"):
        ColorJitter(hue=0.7)


def test_autoaugment_policy_and_ops():
    assert len(IMAGENET_POLICY) == 25
    random.seed(0)
    img = gradient(32, 32)
    changed = 0
    for _ in range(20):
        out = AutoAugment()(img)
        assert out.shape == img.shape and out.dtype == np.uint8
        changed += not np.array_equal(out, img)
    assert changed > 5
    for name, fn in OPERATIONS.items():
        out = np.asarray(fn(Image.fromarray(img), 5))
        assert out.shape == img.shape and out.dtype == np.uint8, name
    inverted = np.asarray(OPERATIONS["Invert"](Image.fromarray(img), 0))
    np.testing.assert_array_equal(inverted, 255 - img)


@pytest.mark.parametrize("mode", ["const", "rand", "pixel"])
def test_random_erasing(mode):
    random.seed(0)
    np.random.seed(0)
    img = np.full((3, 32, 32), 5.0, np.float32)  # CHW, as after NormalizeImage + ToCHWImage
    op = RandomErasing(EPSILON=1.0, sl=0.1, sh=0.2, r1=0.5, mode=mode)
    out = op(img)
    assert out.shape == img.shape and out.dtype == np.float32
    erased = (out != 5.0).any(axis=0).mean()
    assert 0.08 <= erased <= 0.22
    if mode == "const":
        assert set(np.unique(out)) == {0.0, 5.0}
    hwc = op(np.full((32, 32, 3), 5.0, np.float32))
    assert hwc.shape == (32, 32, 3) and (hwc != 5.0).any()
    assert np.array_equal(RandomErasing(EPSILON=0.0)(img), img)


def test_random_erasing_reads_fractions_written_as_text():
    # PaddleClas's MobileNetV4 configs: `sh: 1.0/3.0`, `use_log_aspect: True`
    op = RandomErasing(EPSILON=0.25, sl=0.02, sh="1.0/3.0", r1=0.3, use_log_aspect=True, mode="pixel")
    assert op.sh == pytest.approx(1 / 3) and op.EPSILON == 0.25
    with pytest.raises(ValueError, match=r"RandomErasing.*\bsh\b.*'a third'"):  # the op, the key, the value
        RandomErasing(sh="a third")
    with pytest.raises(ValueError, match="sl <= sh"):
        RandomErasing(sl=0.5, sh="1/3")


def test_create_operators_and_transform():
    ops = create_operators([
        {"DecodeImage": {"to_rgb": True, "channel_first": False}},
        {"ResizeImage": {"resize_short": 40}},
        {"CropImage": {"size": 32}},
        {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406],
                            "std": [0.229, 0.224, 0.225], "order": ""}},
        {"ToCHWImage": None},
    ])
    out = transform(png_bytes(gradient(40, 60)), ops)
    assert out.shape == (3, 32, 32) and out.dtype == np.float32
    assert -2.2 < out.min() and out.max() < 2.7
    with pytest.raises(ValueError, match="Valid transform ops: .*RandCropImage.*Did you mean .RandCropImage."):
        create_operators([{"RandCropImg": {"size": 3}}])
    with pytest.raises(ValueError, match=r"'sise'.*transform_ops\.0\.CropImage.*'size'"):  # the key, where, the fix
        create_operators([{"CropImage": {"sise": 3}}])


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_paddleclas_parameters_keep_their_meaning():
    img = gradient(32, 48)
    both = ResizeImage(size=[10, 10], resize_short=16)  # PaddleClas: resize_short wins
    assert both(img).shape == (16, 24, 3)
    assert ResizeImage(size=[20, 10], resize_short=0)(img).shape == (10, 20, 3)  # resize_short <= 0: use size
    assert ResizeImage(size=12, interpolation="box", backend="pil")(img).shape == (12, 12, 3)  # PIL names
    with pytest.raises(ValueError, match="interpolation"):
        ResizeImage(size=12, interpolation="hamming", backend="cv2")
    random.seed(0)
    assert ColorJitter(brightness=0.9, prob=0.0)(img) is img  # never applied
    assert not np.array_equal(ColorJitter(brightness=0.9, prob=1.0)(img), img)
    four = NormalizeImage(channel_num=4)(img)
    assert four.shape == (32, 48, 4) and not four[..., 3].any()
    assert NormalizeImage(output_fp16=True)(img).dtype == np.float16
    collect = _Collect()
    logging.getLogger("ppcls_lite.pipeline").addHandler(collect)
    try:
        DecodeImage(to_np=False)
        RandCropImage(size=8, progress_size=[8, 16])
        ResizeImage(size=8, return_numpy=False)
    finally:
        logging.getLogger("ppcls_lite.pipeline").removeHandler(collect)
    warned = " ".join(collect.messages)
    assert "to_np=False has no effect" in warned and "progress_size" in warned and "return_numpy" in warned


@pytest.mark.parametrize("entry", [
    {"DecodeImage": {"to_rgb": False, "backend": "pil"}},
    {"ResizeImage": {"resize_short": 20, "interpolation": "bicubic", "backend": "pil"}},
    {"ResizeImage": {"size": [17, 9], "interpolation": "area"}},
    {"CropImage": {"size": [20, 12]}},
    {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.3, 0.4], "order": ""}},
    {"ToCHWImage": None},
])
def test_each_op_describes_itself_completely(entry):
    """inference_params() spells out every parameter: rebuilding from it gives the same op, bit for bit."""
    op = create_operators([entry])[0]
    params = op.inference_params()
    rebuilt = type(op)(**params)
    assert rebuilt.inference_params() == params
    data = png_bytes(gradient(32, 48))
    arr = DecodeImage()(data)
    sample = data if isinstance(op, DecodeImage) else arr
    np.testing.assert_array_equal(op(sample), rebuilt(sample))
    assert all(isinstance(v, (bool, int, float, str, list)) for v in params.values())  # plain YAML values


def test_random_ops_refuse_to_describe_themselves():
    for op in create_operators([{"RandCropImage": {"size": 8}}, {"RandFlipImage": {}}, {"ColorJitter": {}},
                                {"AutoAugment": None}, {"RandomErasing": {}}]):
        assert not op.deterministic
        with pytest.raises(ValueError, match="random training op"):
            op.inference_params()
