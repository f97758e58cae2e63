"""Turn paddle Tensors / lists into numpy and labels into class ids."""
from typing import Any

import numpy as np


def to_numpy(x: Any) -> np.ndarray:
    """A paddle Tensor, array or list as a numpy array."""
    if hasattr(x, "numpy"):
        x = x.numpy()
    return np.asarray(x)


def label_ids(labels: Any) -> np.ndarray:
    """int [N] / [N, 1] class ids, or float [N, C] soft targets (mixup/cutmix) -> int64 [N] via argmax."""
    labels = to_numpy(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:
        return labels.argmax(axis=1).astype(np.int64)
    return labels.reshape(-1).astype(np.int64)
