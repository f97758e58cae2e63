"""Reduced-size JPEG decoding (DecodeImage.reduced_decode): one rule in the shared pipeline, on 12-megapixel phone
JPEGs (EXIF orientation 6), CMYK and grey JPEGs. The decoded image is never smaller than what the next op needs and
is the largest reduction that still satisfies it; orientation and colour handling are the full decode's; the
engine's infer ops and the predictor's (from what inference.yml says) decide alike, bit for bit; an export that
does not say decodes at full size. End to end through an export, tools/infer.py and the predictor, the 640x480
JPEGs of tests/test_pipeline_parity.py are decoded at 1/8 by every path.
"""
import cv2
import numpy as np
import pytest
from PIL import Image

from helpers import EXIF_DISPLAY, INFER_OPS_32PX, orientation_jpeg, save_pil, with_params
from ppcls_lite import pipeline, predict
from ppcls_lite.data.dataset import ImageNetDataset
from ppcls_lite.data.preprocess import create_operators as training_ops
from ppcls_lite.pipeline.decode import JPEG_SCALES, jpeg_scale, reduced_size
from ppcls_lite.pipeline.gpu_decode import ORIENT, gpu_unavailable_reason

WIDTH, HEIGHT = 4032, 3024  # a 12-megapixel phone photo as stored (landscape sensor)
IMAGENET_OPS = with_params(with_params(INFER_OPS_32PX, "ResizeImage", resize_short=256), "CropImage", size=224)


def phone_photo():
    """Smooth colours and a bright vertical bar left of centre (so a 90 degree turn shows), 4032x3024."""
    small = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    img = cv2.resize(small, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    img[:, WIDTH // 2 - 400:WIDTH // 2 - 150] = (240, 230, 30)
    return img


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    rgb = phone_photo()
    for orientation in (1, 6):
        orientation_jpeg(rgb, orientation, root / f"exif{orientation}.jpg")
    save_pil(Image.fromarray(rgb).convert("CMYK"), root / "cmyk.jpg", "JPEG", quality=90)
    save_pil(Image.fromarray(rgb).convert("L"), root / "grey.jpg", "JPEG", quality=90)
    save_pil(Image.fromarray(rgb), root / "progressive.jpg", "JPEG", quality=90, progressive=True)
    save_pil(Image.fromarray(rgb[:600, :800]), root / "photo.png", "PNG")
    return root


def _decode_ops(next_op, **decode_params):
    return training_ops([{"DecodeImage": decode_params}, next_op])


@pytest.mark.parametrize("next_op, scale", [
    ({"ResizeImage": {"resize_short": 256}}, 8),       # 504x378: short side 378 >= 256
    ({"ResizeImage": {"resize_short": 400}}, 4),       # 1/8 would leave 378 < 400
    ({"ResizeImage": {"size": [224, 224]}}, 8),
    ({"ResizeImage": {"size": [600, 400]}}, 4),        # either orientation must fit: 378 < 600 at 1/8
    ({"RandCropImage": {"size": 224}}, 4),             # smallest crop 8 % of 1008x756 = 60964 px >= 224x224
    ({"RandCropImage": {"size": 224, "scale": [0.35, 1.0]}}, 8),
    ({"CropImage": {"size": 224}}, 1),                 # a fixed-size crop depends on the pixel scale: full size
], ids=lambda v: str(v))
def test_the_largest_reduction_the_next_op_still_accepts(photos, next_op, scale):
    data = (photos / "exif6.jpg").read_bytes()
    decode, op = _decode_ops(next_op)
    assert decode.next_op is op and jpeg_scale(data, decode.size_check) == scale
    decoded = decode(data)
    # EXIF 6: the stored 4032x3024 is shown upright, 3024 wide and 4032 high, at 1/scale
    assert decoded.shape == (-(-WIDTH // scale), -(-HEIGHT // scale), 3)
    if scale > 1:  # never smaller than what the next op needs, in either orientation ...
        height, width = decoded.shape[:2]
        assert op.large_enough(width, height) and op.large_enough(height, width)
    if 1 < scale < max(JPEG_SCALES):  # ... and the next larger reduction would be
        width, height = reduced_size(WIDTH, HEIGHT, 2 * scale)
        assert not (op.large_enough(width, height) and op.large_enough(height, width))
    if scale > 1:
        off, _ = _decode_ops(next_op, reduced_decode=False)
        assert off(data).shape == (WIDTH, HEIGHT, 3)
    else:
        assert op.large_enough is None  # a fixed-size crop: no smaller input is large enough


@pytest.mark.parametrize("backend", ["cv2", "pil"])
@pytest.mark.parametrize("name", ["exif6.jpg", "cmyk.jpg", "grey.jpg", "progressive.jpg"])
def test_reduced_decode_keeps_orientation_and_colour_rules(photos, backend, name):
    data = (photos / name).read_bytes()
    reduced, _ = _decode_ops({"ResizeImage": {"resize_short": 256}}, backend=backend)
    full, _ = _decode_ops({"ResizeImage": {"resize_short": 256}}, backend=backend, reduced_decode=False)
    small, big = reduced(data), full(data)
    assert small.dtype == np.uint8 and small.ndim == 3 and small.shape[2] == 3
    assert small.shape[:2] == tuple(-(-side // 8) for side in big.shape[:2])  # 1/8 of the oriented full image
    shrunk = cv2.resize(big, small.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk.astype(np.int16) - small).mean() < 3  # the same picture, the same colours
    if name == "grey.jpg":
        assert (small[..., 0] == small[..., 1]).all() and (small[..., 1] == small[..., 2]).all()


@pytest.mark.parametrize("backend", ["cv2", "pil"])
def test_exif_orientation_is_applied_to_the_reduced_image_exactly(photos, backend):
    decode, _ = _decode_ops({"ResizeImage": {"resize_short": 256}}, backend=backend)
    stored = decode((photos / "exif1.jpg").read_bytes())  # the same JPEG data, orientation tag 1
    assert stored.shape == (HEIGHT // 8, WIDTH // 8, 3)
    np.testing.assert_array_equal(decode((photos / "exif6.jpg").read_bytes()), EXIF_DISPLAY[6](stored))


def test_only_8_bit_dct_jpegs_are_reduced_and_the_pixel_limit_reads_the_full_size(photos):
    decode, _ = _decode_ops({"ResizeImage": {"resize_short": 64}})
    assert decode((photos / "photo.png").read_bytes()).shape == (600, 800, 3)  # PNG: full size
    assert jpeg_scale(b"\xff\xd8\xff\xe0 not a real jpeg", decode.size_check) == 1
    data = (photos / "exif6.jpg").read_bytes()
    pipeline.set_max_image_pixels(10_000_000)
    try:
        with pytest.raises(pipeline.ImageTooLargeError, match="4032x3024"):
            decode(data)
    finally:
        pipeline.set_max_image_pixels(None)


@pytest.mark.parametrize("reduced", [True, False])
def test_infer_and_the_predictor_decide_alike_from_what_inference_yml_says(photos, reduced):
    from ppcls_lite.data.preprocess import create_operators
    from ppcls_lite.export import normalize_transform_ops

    ops = with_params(IMAGENET_OPS, "DecodeImage", reduced_decode=reduced)
    exported = normalize_transform_ops(ops)  # inference.yml's PreProcess.transform_ops
    assert exported[0]["DecodeImage"]["reduced_decode"] is reduced
    infer_ops = create_operators(ops)  # what tools/infer.py runs (build_engine)
    deploy_ops = predict.build_preprocess(exported)
    assert deploy_ops[0].size_check is not None if reduced else deploy_ops[0].size_check is None
    for name in ("exif6.jpg", "cmyk.jpg", "grey.jpg"):
        data = (photos / name).read_bytes()
        np.testing.assert_array_equal(pipeline.transform(data, deploy_ops), pipeline.transform(data, infer_ops),
                                      err_msg=name)


def test_the_default_is_on_and_an_export_that_does_not_say_decodes_at_full_size(photos):
    from ppcls_lite.export import normalize_transform_ops

    assert normalize_transform_ops(IMAGENET_OPS)[0]["DecodeImage"]["reduced_decode"] is True
    older = [{"DecodeImage": {"to_rgb": True, "channel_first": False, "backend": "cv2"}}, *IMAGENET_OPS[1:]]
    deploy_ops = predict.build_preprocess(older)  # PaddleClas's or an earlier ppcls_lite's inference.yml
    full_size = pipeline.create_operators(with_params(IMAGENET_OPS, "DecodeImage", reduced_decode=False))
    data = (photos / "exif6.jpg").read_bytes()
    assert deploy_ops[0].size_check is None
    np.testing.assert_array_equal(pipeline.transform(data, deploy_ops), pipeline.transform(data, full_size))


def test_training_crops_come_from_the_reduced_decode(photos, tmp_path):
    (tmp_path / "list.txt").write_text("exif6.jpg 0\nphoto.png 1\n", encoding="utf-8")
    dataset = ImageNetDataset(str(photos), str(tmp_path / "list.txt"), transform_ops=[
        {"DecodeImage": {"to_rgb": True}}, {"RandCropImage": {"size": 64}}, {"RandFlipImage": {"flip_code": 1}}])
    decode, crop = dataset.ops[:2]
    assert decode.next_op is crop and jpeg_scale((photos / "exif6.jpg").read_bytes(), decode.size_check) == 8
    assert dataset[0][0].shape == dataset[1][0].shape == (3, 64, 64)


def test_gpu_decoding_falls_back_to_the_cpu_with_one_note_here(photos, caplog):
    from ppcls_lite.export import normalize_transform_ops

    ops = with_params(IMAGENET_OPS, "DecodeImage", device="gpu")
    assert normalize_transform_ops(ops)[0]["DecodeImage"]["device"] == "gpu"  # inference.yml says what was asked
    gpu_ops, cpu_ops = pipeline.create_operators(ops), pipeline.create_operators(IMAGENET_OPS)
    data = (photos / "exif6.jpg").read_bytes()
    with caplog.at_level("WARNING", logger="ppcls_lite.pipeline"):
        for _ in range(2):
            np.testing.assert_array_equal(pipeline.transform(data, gpu_ops), pipeline.transform(data, cpu_ops))
    notes = [r.getMessage() for r in caplog.records if "device=gpu" in r.getMessage()]
    assert len(notes) <= 1 and all("decoding on the CPU" in n for n in notes)  # at most once per process
    assert gpu_unavailable_reason()  # this machine has no CUDA: the reason is the note's


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_gpu_path_turns_images_upright_as_pillow_does(orientation):
    from PIL import ImageOps

    stored = np.arange(3 * 4 * 3, dtype=np.uint8).reshape(3, 4, 3)
    img = Image.fromarray(stored)
    img.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(img))
    orient = ORIENT.get(orientation)
    np.testing.assert_array_equal(orient(stored) if orient else stored, expected)
