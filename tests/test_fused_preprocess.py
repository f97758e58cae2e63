"""The predictor's fused preprocessing (pipeline.fuse_operators) gives bit for bit the tensors of the ops as
listed, on the files users bring: phone JPEGs with EXIF orientation, CMYK and grey JPEGs, 16-bit, palette and
RGBA PNGs, GIF and WEBP, with spaces and Chinese characters in their names, read as files and as decoded arrays.
"""
import copy

import cv2
import numpy as np
import pytest

from helpers import INFER_OPS_32PX, make_awkward_files, with_params
from ppcls_lite import pipeline, predict


IMAGENET_OPS = copy.deepcopy(INFER_OPS_32PX)
IMAGENET_OPS[1] = {"ResizeImage": {"resize_short": 256, "interpolation": "bilinear"}}
IMAGENET_OPS[2] = {"CropImage": {"size": 224}}


@pytest.fixture(scope="module")
def awkward_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("awkward")
    return [root / rel for rel in make_awkward_files(root)]


def _types(ops):
    return [type(op).__name__ for op in ops]


def test_the_standard_chain_is_fused_into_a_bgr_decode_and_one_normalising_pass():
    fused = pipeline.fuse_operators(pipeline.create_operators(IMAGENET_OPS))
    assert _types(fused) == ["DecodeImage", "ResizeImage", "CropImage", "NormalizeToCHW"]
    assert fused[0].to_rgb is False and fused[-1].from_bgr is True
    # the predictor builds its preprocessing this way
    assert _types(predict.build_preprocess(IMAGENET_OPS)) == _types(fused)


@pytest.mark.parametrize("ops, expected", [
    (with_params(IMAGENET_OPS, "NormalizeImage", output_fp16=True),
     ["DecodeImage", "ResizeImage", "CropImage", "NormalizeImage", "ToCHWImage"]),
    (with_params(IMAGENET_OPS, "NormalizeImage", channel_num=4),
     ["DecodeImage", "ResizeImage", "CropImage", "NormalizeImage", "ToCHWImage"]),
    (IMAGENET_OPS[:-1], ["DecodeImage", "ResizeImage", "CropImage", "NormalizeImage"]),
    (with_params(IMAGENET_OPS, "DecodeImage", backend="pil"),
     ["DecodeImage", "ResizeImage", "CropImage", "NormalizeToCHW"]),
    (with_params(IMAGENET_OPS, "DecodeImage", to_rgb=False),
     ["DecodeImage", "ResizeImage", "CropImage", "NormalizeToCHW"]),
])
def test_chains_that_cannot_be_fused_are_left_as_they_are(ops, expected):
    fused = pipeline.fuse_operators(pipeline.create_operators(ops))
    assert _types(fused) == expected
    decode = fused[0]
    # only a cv2 RGB decode is switched to BGR, and only when a fused normalisation swaps the channels back
    assert decode.to_rgb == ops[0]["DecodeImage"].get("to_rgb", True)
    if expected[-1] == "NormalizeToCHW":
        assert fused[-1].from_bgr is False


@pytest.mark.parametrize("ops", [IMAGENET_OPS, INFER_OPS_32PX,
                                 with_params(IMAGENET_OPS, "ResizeImage", interpolation="bicubic"),
                                 with_params(IMAGENET_OPS, "DecodeImage", to_rgb=False),
                                 with_params(INFER_OPS_32PX, "DecodeImage", backend="pil")],
                         ids=["imagenet", "32px", "bicubic", "bgr_model", "pil_decode"])
def test_fused_tensors_are_bit_identical_on_awkward_files(awkward_files, ops):
    listed = pipeline.create_operators(ops)
    fused = predict.build_preprocess(pipeline.describe_operators(listed))  # as inference.yml spells them
    for path in awkward_files:
        data = path.read_bytes()
        expected = pipeline.transform(data, listed)
        got = pipeline.transform(data, fused)
        assert got.dtype == np.float32 and got.flags.c_contiguous, path.name
        assert np.array_equal(got, expected), path.name
        # a decoded HWC RGB array (Predictor.predict) takes the same route
        rgb = pipeline.decode_image(data)
        assert np.array_equal(pipeline.transform(rgb, fused), pipeline.transform(rgb, listed)), path.name


@pytest.mark.parametrize("backend", ["cv2", "pil"])
def test_bgr_decode_is_the_rgb_decode_reversed(awkward_files, backend):
    for path in awkward_files:
        data = path.read_bytes()
        rgb = pipeline.decode_image(data, backend)
        bgr = pipeline.decode_image(data, backend, to_rgb=False)
        assert bgr.shape == rgb.shape and bgr.shape[2] == 3, path.name
        assert np.array_equal(bgr, rgb[:, :, ::-1]), path.name
        op_bgr = pipeline.DecodeImage(to_rgb=False, backend=backend)
        assert np.array_equal(op_bgr(data), bgr), path.name
        assert np.array_equal(op_bgr(rgb), bgr), path.name  # decoded arrays too


def test_fused_normalisation_falls_back_for_other_inputs():
    normalize, to_chw = pipeline.NormalizeImage(), pipeline.ToCHWImage()
    for from_bgr in (False, True):
        fused = pipeline.NormalizeToCHW(normalize, to_chw, from_bgr=from_bgr)
        floats = np.random.default_rng(0).random((8, 10, 3)).astype(np.float32) * 255
        source = floats[:, :, ::-1] if from_bgr else floats
        assert np.array_equal(fused(source), to_chw(normalize(floats)))
        pixels = np.random.default_rng(1).integers(0, 256, (8, 10, 3), dtype=np.uint8)
        source = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR) if from_bgr else pixels
        assert np.array_equal(fused(source), to_chw(normalize(pixels)))


def test_a_batch_of_one_is_not_copied_and_larger_batches_are_stacked():
    one = np.random.default_rng(0).random((3, 4, 5)).astype(np.float32)
    batch = pipeline.stack_batch([one], (3, 4, 5))
    assert batch.shape == (1, 3, 4, 5) and np.shares_memory(batch, one)
    two = pipeline.stack_batch([one, one * 2], (3, 4, 5))
    assert two.shape == (2, 3, 4, 5) and np.array_equal(two[1], one * 2) and not np.shares_memory(two, one)
    as_float64 = pipeline.stack_batch([one.astype(np.float64)], (3, 4, 5))
    assert as_float64.dtype == np.float32 and np.array_equal(as_float64[0], one)
