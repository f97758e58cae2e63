"""The predictor's post-processing: inference.yml's `PostProcess` section -> the pipeline's post-process it names.

The post-processes themselves live in the pipeline (`pipeline/postprocess.py`, `pipeline/task_postprocess.py`,
registry `POSTPROCESSES`), so tools/infer.py and the predictor run the same code. inference.yml names one
(`Topk`, `ThreshOutput`, `MultiLabelThreshOutput`, `PersonAttribute`, `VehicleAttribute`) with its parameters and
carries the class names beside it as `label_list`. A PaddleClas deploy config's PostProcess (`main_indicator`
plus one entry per post-process, e.g. `SavePreLabel`) builds too and may replace the exported one.
"""
import logging
from typing import Any, Dict, Optional

from .. import pipeline

POSTPROCESSES = pipeline.POSTPROCESSES


def build_postprocess(section: Optional[Dict[str, Any]], topk: Optional[int] = None,
                      label_list: Optional[list] = None, where: str = "inference.yml PostProcess") -> Any:
    """A `PostProcess` section (inference.yml's, or a PaddleClas deploy config's) -> the post-process it names
    (Topk when the section has none); `topk` (the --topk setting) replaces a Topk's count. `label_list` gives the
    class names when the section carries none."""
    section = dict(section or {})
    label_list = section.pop("label_list", None) or label_list
    section = section or {"Topk": {}}
    if "main_indicator" not in section and len(section) != 1:
        raise ValueError(f"{where} names {sorted(section)}; it must name one post-process (valid: "
                         f"{', '.join(POSTPROCESSES.names())}) or a main_indicator; re-export the model with "
                         f"tools/export_model.py")
    section = {name: params if name == "main_indicator" else dict(params or {}) for name, params in section.items()}
    if topk and "Topk" not in section:
        logging.getLogger("ppcls_lite.predict").warning(
            f"--topk {topk} has no effect: the post-process is {section.get('main_indicator') or next(iter(section))}")
    if "Topk" in section:
        if topk:
            section["Topk"]["topk"] = int(topk)
        if section["Topk"].get("topk") is None:  # written as null: one class
            section["Topk"].pop("topk", None)
    return pipeline.build_deploy_postprocess(section, label_list, where)
