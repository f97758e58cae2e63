"""The predictor's post-processing: inference.yml's `PostProcess` section -> the pipeline's post-process it names.

The post-processes themselves live in the pipeline (`pipeline/postprocess.py`, registry `POSTPROCESSES`), so
tools/infer.py and the predictor run the same code. inference.yml names one (`Topk` for a classifier, `Embedding`
for a retrieval model) and carries the class names beside it as `label_list`.
"""
from typing import Any, Dict, Optional

from .. import pipeline

POSTPROCESSES = pipeline.POSTPROCESSES


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
    if topk and "topk" in (POSTPROCESSES.accepted(name, "inference.yml PostProcess") or ["topk"]):
        params["topk"] = int(topk)  # an embedding has no classes: --topk does not apply
    if params.get("topk") is None:  # written as null: one class
        params.pop("topk", None)
    return POSTPROCESSES.build(name, params, "inference.yml PostProcess", label_list=label_list)
