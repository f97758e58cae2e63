"""TimmAutoAugment (RandAugment from a timm config string, as PaddleClas's MobileNetV4 configs use it)."""
import random

import numpy as np
import pytest
from PIL import Image

from ppcls_lite.data.preprocess import create_operators
from ppcls_lite.data.preprocess.randaugment import (DEFAULT_OPS, INCREASING_OPS, OPERATIONS, TimmAutoAugment,
                                                    _Geometry, parse_config_str)

GEOMETRY = _Geometry((124, 116, 104), Image.BICUBIC)  # ImageNet mean * 255: the fill of geometric ops


def pattern(size=40):
    """An RGB image with structure in both directions (so every operation changes it)."""
    y, x = np.mgrid[0:size, 0:size]
    return np.stack([x * 6 % 256, y * 5 % 256, (x * y) % 256], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("text, expected", [
    ("rand-m9-mstd0.5-inc1", dict(magnitude=9, num_ops=2, magnitude_std=0.5, increasing=True, weighted=False)),
    ("rand-m8-inc1-mstd1.0", dict(magnitude=8, num_ops=2, magnitude_std=1.0, increasing=True, weighted=False)),
    ("rand-n3-m5-w0", dict(magnitude=5, num_ops=3, magnitude_std=0.0, increasing=False, weighted=True)),
    ("rand", dict(magnitude=10, num_ops=2, magnitude_std=0.0, increasing=False, weighted=False)),
    ("rand-inc0", dict(magnitude=10, num_ops=2, magnitude_std=0.0, increasing=False, weighted=False)),
])
def test_config_string_settings(text, expected):
    assert parse_config_str(text) == expected


@pytest.mark.parametrize("text, match", [
    ("augmix-m5-w4", "only RandAugment strings starting with 'rand'.*AutoAugment op"),
    ("rand-x3", "cannot read 'x3'"),
    ("rand-w1", "only one set of choice weights"),
    ("rand-m11", "magnitude m must be in 0..10"),
])
def test_config_string_errors_say_what_is_accepted(text, match):
    with pytest.raises(ValueError, match=match):
        TimmAutoAugment(config_str=text)


def test_increasing_ops_are_the_identity_at_level_0_and_strongest_at_10():
    img = Image.fromarray(pattern())
    source = np.asarray(img)
    for name in INCREASING_OPS:
        if name in ("AutoContrast", "Equalize", "Invert", "PosterizeIncreasing"):
            continue  # no magnitude, or (posterize) 4 bits kept at level 0
        np.testing.assert_array_equal(np.asarray(OPERATIONS[name](img, 0, GEOMETRY)), source, err_msg=name)
    np.testing.assert_array_equal(np.asarray(OPERATIONS["PosterizeIncreasing"](img, 0, GEOMETRY)), source & 0xF0)
    assert np.asarray(OPERATIONS["PosterizeIncreasing"](img, 10, GEOMETRY)).max() == 0  # 0 bits kept
    np.testing.assert_array_equal(np.asarray(OPERATIONS["SolarizeIncreasing"](img, 10, GEOMETRY)), 255 - source)
    added = np.asarray(OPERATIONS["SolarizeAdd"](img, 10, GEOMETRY)).astype(int)
    low = source < 128
    np.testing.assert_array_equal(added[low], np.minimum(source[low].astype(int) + 110, 255))
    np.testing.assert_array_equal(added[~low], source[~low])
    # the plain (not "Increasing") solarize weakens as the level grows, as in timm: threshold 256 at level 10
    np.testing.assert_array_equal(np.asarray(OPERATIONS["Solarize"](img, 10, GEOMETRY)), source)
    np.testing.assert_array_equal(np.asarray(OPERATIONS["Solarize"](img, 0, GEOMETRY)), 255 - source)
    for name in (set(DEFAULT_OPS) | set(INCREASING_OPS)) - {"Solarize"}:
        out = np.asarray(OPERATIONS[name](img, 10, GEOMETRY))
        assert out.shape == source.shape and out.dtype == np.uint8, name
        assert not np.array_equal(out, source), name


def test_translate_moves_45_percent_of_the_side_and_fills_with_the_mean_colour():
    random.seed(1)
    img = Image.fromarray(np.full((40, 40, 3), 200, np.uint8))
    out = np.asarray(OPERATIONS["TranslateXRel"](img, 10, GEOMETRY))
    filled = np.all(out == (124, 116, 104), axis=-1).all(axis=0)  # columns of fill colour
    assert filled.sum() == 18 and (filled[:18].all() or filled[-18:].all())


def test_op_keeps_shape_is_reproducible_and_respects_prob():
    img = pattern()
    op = TimmAutoAugment(config_str="rand-m9-mstd0.5-inc1", interpolation="bicubic", img_size=224)
    outputs = []
    for seed in (0, 0, 1):
        random.seed(seed)
        np.random.seed(seed)
        outputs.append(op(img))
    assert all(o.shape == img.shape and o.dtype == np.uint8 for o in outputs)
    np.testing.assert_array_equal(outputs[0], outputs[1])
    random.seed(2)
    np.random.seed(2)
    assert sum(not np.array_equal(op(img), img) for _ in range(20)) >= 12  # ~75% of images get >= 1 op
    never = TimmAutoAugment(config_str="rand-m9", prob=0.0)
    assert all(np.array_equal(never(img), img) for _ in range(5))


def test_magnitude_noise_is_clipped_to_the_level_range():
    op = TimmAutoAugment(config_str="rand-m9-mstd1.0")
    random.seed(0)
    levels = np.array([op.level() for _ in range(4000)])
    assert levels.min() >= 0 and levels.max() == 10 and 0.6 < levels.std() < 1.0
    assert TimmAutoAugment(config_str="rand-m7").level() == 7


def test_weighted_choice_uses_timm_weights_without_repeats():
    op = TimmAutoAugment(config_str="rand-n3-m9-w0")
    weights = dict(zip(op.op_names, op.weights))
    assert weights["Rotate"] == pytest.approx(0.3) and weights["Invert"] == 0 and weights["Posterize"] == 0
    inc = TimmAutoAugment(config_str="rand-w0-inc1")
    assert dict(zip(inc.op_names, inc.weights))["ShearX"] == pytest.approx(0.2)
    chosen = []
    original = np.random.choice

    def spy(names, count, replace, p):
        picked = original(names, count, replace=replace, p=p)
        chosen.append(list(picked))
        return picked

    np.random.seed(0)
    np.random.choice = spy
    try:
        for _ in range(50):
            op(pattern(16))
    finally:
        np.random.choice = original
    assert all(len(set(c)) == 3 and not {"Invert", "Posterize"} & set(c) for c in chosen)


def test_paddleclas_config_entry_builds_and_bad_values_name_the_key():
    ops = create_operators([{"TimmAutoAugment": {"config_str": "rand-m8-inc1-mstd1.0", "interpolation": "bicubic",
                                                 "img_size": 224}}])
    assert isinstance(ops[0], TimmAutoAugment) and ops[0].magnitude == 8
    with pytest.raises(ValueError, match="interpolation must be one of"):
        TimmAutoAugment(interpolation="cubic")
    with pytest.raises(ValueError, match="img_size must be"):
        TimmAutoAugment(img_size=0)
