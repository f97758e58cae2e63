"""Mixup / Cutmix / OpSampler: soft-target shape, dtype, sums; the cutmix box is checked on marked images."""
import random

import numpy as np
import pytest

from ppcls_lite.data.preprocess import CutmixOperator, MixupOperator, OpSampler, create_batch_operators


def constant_batch(n=4, c=3, size=16):
    """Image i is filled with the value i, so mixing is visible pixel by pixel."""
    images = np.stack([np.full((c, size, size), float(i), np.float32) for i in range(n)])
    return images, np.arange(n, dtype=np.int64) % 3


def test_mixup():
    np.random.seed(0)
    images, labels = constant_batch()
    out, targets = MixupOperator(class_num=3, alpha=0.4)(images, labels)
    assert out.shape == images.shape and out.dtype == np.float32
    assert targets.shape == (4, 3) and targets.dtype == np.float32
    np.testing.assert_allclose(targets.sum(1), 1.0, rtol=1e-6)
    assert 0 <= out.min() and out.max() <= 3
    # Every pixel of a mixed image equals the same convex combination.
    for img in out:
        assert np.allclose(img, img.flat[0])


def test_cutmix_box_matches_targets():
    np.random.seed(3)
    images, labels = constant_batch(n=4, size=32)
    labels = np.arange(4, dtype=np.int64)
    out, targets = CutmixOperator(class_num=4, alpha=1.0)(images, labels)
    assert out.shape == images.shape and targets.shape == (4, 4) and targets.dtype == np.float32
    np.testing.assert_allclose(targets.sum(1), 1.0, rtol=1e-6)
    for i in range(4):
        kept = (out[i] == i).mean()
        # The kept fraction of own pixels is exactly the own-label weight (unless paired with itself).
        if targets[i, i] < 1.0 - 1e-6:
            assert kept == pytest.approx(targets[i, i], abs=1e-6)
        pasted = out[i][out[i] != i]
        assert np.unique(pasted).size <= 1  # the box comes from a single other image


def test_cutmix_rand_box_is_inside_and_sized():
    np.random.seed(0)
    for lam in (0.1, 0.5, 0.9):
        y0, y1, x0, x1 = CutmixOperator.rand_box(32, 40, lam)
        assert 0 <= y0 <= y1 <= 32 and 0 <= x0 <= x1 <= 40
        assert (y1 - y0) * (x1 - x0) <= (1 - lam) * 32 * 40 + 1e-6


def test_opsampler_paddleclas_form():
    random.seed(0)
    np.random.seed(0)
    ops = create_batch_operators(
        [{"OpSampler": {"MixupOperator": {"alpha": 0.8, "prob": 0.5}, "CutmixOperator": {"alpha": 1.0, "prob": 0.5}}}],
        class_num=3)
    images, labels = constant_batch()
    for _ in range(5):
        out, targets = ops[0](images, labels)
        assert out.shape == images.shape and targets.shape == (4, 3) and targets.dtype == np.float32
        np.testing.assert_allclose(targets.sum(1), 1.0, rtol=1e-6)
    only_noop = OpSampler(class_num=3, MixupOperator={"alpha": 0.2, "prob": 0.0})
    out, targets = only_noop(images, labels)
    np.testing.assert_array_equal(out, images)
    np.testing.assert_array_equal(targets.argmax(1), labels)
    with pytest.raises(ValueError, match="sum to"):
        OpSampler(class_num=3, MixupOperator={"prob": 0.8}, CutmixOperator={"prob": 0.5})


def test_class_num_required_and_names_checked():
    with pytest.raises(ValueError, match="class_num"):
        create_batch_operators([{"MixupOperator": {"alpha": 0.2}}], class_num=None)
    ops = create_batch_operators([{"MixupOperator": {"alpha": 0.2, "class_num": 5}}], class_num=None)
    assert ops[0].class_num == 5
    with pytest.raises(ValueError, match="Valid batch ops: .*CutmixOperator"):
        create_batch_operators([{"MixUp": {"alpha": 0.2}}], class_num=3)
