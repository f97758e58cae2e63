"""Embeddings (retrieval models): how raw features become the vectors that are compared, and the `Embedding`
post-process that returns them.

A RecModel exported with `infer_output_key: features` outputs its raw embedding (inference.yml
`Global.output: features`), as PaddleClas's exports do. `finish_features` applies the config's
`Global.feature_normalize` (L2, so that the inner product is the cosine similarity) and `Global.feature_binarize`
(`round`: round(x) * 2 - 1, `sign`: sign(x); PaddleClas's formulas): retrieval eval, tools/infer.py and the
predictor all call it, so the three give the same vectors. Results are `{"file_name", "features"}`.
"""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .postprocess import POSTPROCESSES

BINARIZE = (None, "round", "sign")
NORM_EPS = 1e-12  # an all-zero feature stays zero instead of dividing by zero


def finish_features(features: Any, normalize: bool = True, binarize: Optional[str] = None) -> np.ndarray:
    """Raw features [N, D] -> float32 vectors to compare: L2-normalised when `normalize`, then binarised."""
    if binarize not in BINARIZE:
        raise ValueError(f"feature_binarize must be one of {BINARIZE}, got {binarize!r}")
    features = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    if normalize:
        norms = np.sqrt(np.sum(np.square(features, dtype=np.float64), axis=1, keepdims=True))
        features = (features / np.maximum(norms, NORM_EPS)).astype(np.float32)
    if binarize == "round":
        features = np.round(features) * 2.0 - 1.0
    elif binarize == "sign":
        features = np.sign(features)
    return features.astype(np.float32, copy=False)


@POSTPROCESSES.register()
class Embedding:
    """One `{"file_name", "features"}` result per image: the finished embedding as a list of floats.

    `normalize` / `binarize` are the config's Global.feature_normalize / feature_binarize (written into
    inference.yml at export). `label_list` (the class names an export may carry) is not used."""

    def __init__(self, normalize: bool = True, binarize: Optional[str] = None,
                 label_list: Optional[List[str]] = None):
        if binarize not in BINARIZE:
            raise ValueError(f"PostProcess Embedding.binarize must be one of {BINARIZE}, got {binarize!r}")
        self.normalize, self.binarize = bool(normalize), binarize

    def finish(self, features: Any) -> np.ndarray:
        """Raw features [N, D] -> the vectors this post-process returns (see finish_features)."""
        return finish_features(features, self.normalize, self.binarize)

    def __call__(self, features: Any, files: Sequence[str]) -> List[Dict[str, Any]]:
        vectors = self.finish(features)
        return [{"file_name": str(f), "features": [float(v) for v in row]} for f, row in zip(files, vectors)]
