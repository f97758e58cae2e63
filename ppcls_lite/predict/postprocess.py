"""The predictor's post-processing: class probabilities [N, classes] -> one result dict per image.

inference.yml's `PostProcess` section names it (today `Topk`, with `label_list` beside it); a new one is a class
taking its inference.yml parameters plus `label_list`, registered in POSTPROCESSES, whose call maps
(probabilities, file names) to result dicts.
"""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .. import pipeline

POSTPROCESSES = pipeline.Registry("post-process", "post-processes")


@POSTPROCESSES.register()
class Topk:
    """The `topk` most probable classes with their scores and names (PaddleClas's Topk result keys)."""

    def __init__(self, topk: Optional[int] = 1, label_list: Optional[List[str]] = None) -> None:
        self.topk = int(topk or 1)
        self.label_list = label_list

    def __call__(self, probs: np.ndarray, files: Sequence[str]) -> List[Dict[str, Any]]:
        """Probabilities [N, classes] -> one result dict (class_ids, scores, label_names) per file."""
        return pipeline.topk_results(probs, files, self.topk, self.label_list)


def build_postprocess(section: Optional[Dict[str, Any]], topk: Optional[int] = None) -> Any:
    """inference.yml's `PostProcess` section -> the post-process it names (Topk when the section has none);
    `topk` (the --topk setting) replaces the exported count."""
    section = dict(section or {})
    label_list = section.pop("label_list", None)
    section = section or {"Topk": {}}
    if len(section) != 1:
        raise ValueError(f"inference.yml PostProcess names {sorted(section)}; it must name one post-process "
                         f"(valid: {', '.join(POSTPROCESSES.names())}); re-export the model with tools/export_model.py")
    (name, params), = section.items()
    params = dict(params or {})
    if topk:
        params["topk"] = int(topk)
    return POSTPROCESSES.build(name, params, "inference.yml PostProcess", label_list=label_list)
