"""Batch transforms (run in the collate function): Mixup, CutMix, and OpSampler that picks one of them.

Input: images float32 [N, C, H, W] and int64 labels [N]. Output: mixed images and float32 soft targets
[N, class_num] (rows sum to 1). Randomness comes from numpy's / Python's global RNG (seeded per worker).
"""
import random
from typing import Optional, Tuple

import numpy as np

from ppcls_lite.utils.registry import Registry, parse_named_list

# Batch ops a `batch_transform_ops` list (or an OpSampler entry) may name.
BATCH_OPS = Registry("batch op")


def one_hot(labels: np.ndarray, class_num: int) -> np.ndarray:
    """int labels [N] -> float32 one-hot rows [N, class_num]."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    out = np.zeros((labels.shape[0], class_num), dtype=np.float32)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def _need_class_num(op, class_num):
    if class_num is None:
        raise ValueError(
            f"{op} needs the number of classes to build soft targets: pass class_num to build_dataloader "
            f"(the engine passes Arch.class_num) or set `class_num` in the {op} entry of batch_transform_ops")
    return int(class_num)


@BATCH_OPS.register()
class MixupOperator:
    """mixup (Zhang et al. 2018): x = lam * x + (1 - lam) * x[perm], lam ~ Beta(alpha, alpha)."""

    def __init__(self, class_num=None, alpha=0.2):
        self.class_num = _need_class_num("MixupOperator", class_num)
        if alpha <= 0:
            raise ValueError(f"MixupOperator: alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    def __call__(self, images, labels):
        lam = float(np.random.beta(self.alpha, self.alpha))
        perm = np.random.permutation(images.shape[0])
        mixed = (lam * images + (1.0 - lam) * images[perm]).astype(np.float32)
        targets = one_hot(labels, self.class_num)
        return mixed, (lam * targets + (1.0 - lam) * targets[perm]).astype(np.float32)


@BATCH_OPS.register()
class CutmixOperator:
    """CutMix (Yun et al. 2019): paste a box of x[perm]; the target weight is the pasted area fraction."""

    def __init__(self, class_num=None, alpha=0.2):
        self.class_num = _need_class_num("CutmixOperator", class_num)
        if alpha <= 0:
            raise ValueError(f"CutmixOperator: alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    @staticmethod
    def rand_box(h: int, w: int, lam: float) -> Tuple[int, int, int, int]:
        """A box covering about (1 - lam) of the image, centred uniformly, clipped at the borders."""
        cut = np.sqrt(1.0 - lam)
        cut_h, cut_w = int(h * cut), int(w * cut)
        cy, cx = np.random.randint(h), np.random.randint(w)
        y0, y1 = np.clip(cy - cut_h // 2, 0, h), np.clip(cy + cut_h // 2, 0, h)
        x0, x1 = np.clip(cx - cut_w // 2, 0, w), np.clip(cx + cut_w // 2, 0, w)
        return int(y0), int(y1), int(x0), int(x1)

    def __call__(self, images, labels):
        lam = float(np.random.beta(self.alpha, self.alpha))
        perm = np.random.permutation(images.shape[0])
        h, w = images.shape[2], images.shape[3]
        y0, y1, x0, x1 = self.rand_box(h, w, lam)
        mixed = images.copy()
        mixed[:, :, y0:y1, x0:x1] = images[perm][:, :, y0:y1, x0:x1]
        lam = 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)  # the exact kept fraction after clipping
        targets = one_hot(labels, self.class_num)
        return mixed, (lam * targets + (1.0 - lam) * targets[perm]).astype(np.float32)


@BATCH_OPS.register()
class OpSampler:
    """Apply one of several batch ops chosen by `prob` per batch, e.g.
    `{OpSampler: {MixupOperator: {alpha: 0.8, prob: 0.5}, CutmixOperator: {alpha: 1.0, prob: 0.5}}}`.
    If the probabilities sum to less than 1, the remainder leaves the batch unmixed (still one-hot targets,
    so the loss always sees the same label format)."""

    def __init__(self, class_num=None, **op_dict):
        self.class_num = _need_class_num("OpSampler", class_num)
        self.ops, self.probs = [], []
        for name, params in op_dict.items():
            if name == "OpSampler":
                raise ValueError("OpSampler: an OpSampler cannot hold another OpSampler; list the batch ops directly")
            params = dict(params or {})
            prob = float(params.pop("prob", 1.0 / len(op_dict)))
            params.setdefault("class_num", self.class_num)
            self.ops.append(BATCH_OPS.build(name, params, f"OpSampler.{name}"))
            self.probs.append(prob)
        total = sum(self.probs)
        if total > 1.0 + 1e-6:
            raise ValueError(f"OpSampler: the probs of {list(op_dict)} sum to {total:.3f}, more than 1")
        self.ops.append(None)
        self.probs.append(max(0.0, 1.0 - total))

    def __call__(self, images, labels):
        op = random.choices(self.ops, weights=self.probs, k=1)[0]
        if op is None:
            return images, one_hot(labels, self.class_num)
        return op(images, labels)


def create_batch_operators(op_list: Optional[list], class_num: Optional[int] = None,
                           where: str = "batch_transform_ops") -> list:
    """PaddleClas `batch_transform_ops` list -> list of callables `(images, labels) -> (images, soft_targets)`.

    `class_num` (the model's) sizes the soft targets unless an entry sets its own."""
    ops = []
    for i, name, params in parse_named_list(op_list or [], where):
        params.setdefault("class_num", class_num)
        BATCH_OPS.canonical(name, f"{where}.{i}")
        ops.append(BATCH_OPS.build(name, params, f"{where}.{i}.{name}"))
    return ops
