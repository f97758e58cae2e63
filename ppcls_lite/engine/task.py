"""What kind of task a config trains, for infer, eval reports and export: one class per image (softmax) or
multi-label (sigmoid), and the Infer section a config without one gets.

A config is multi-label when it says so as PaddleClas does (`Global.use_multilabel: True`), or trains with a
multi-label dataset (MultiLabelDataset) or loss (MultiLabelLoss), or its Infer.PostProcess is a multi-label one
(MultiLabelThreshOutput, PersonAttribute, VehicleAttribute). Its scores are sigmoid probabilities everywhere:
tools/infer.py, the exported model's output head, the predictor.
"""
import copy
from typing import Any, Dict, List, Optional, Tuple

from ppcls_lite.data import DATASETS, OPERATORS, infer_transforms
from ppcls_lite.loss import LOSSES
from ppcls_lite.pipeline import POSTPROCESSES
from ppcls_lite.utils import logger
from ppcls_lite.utils.registry import parse_named_list

# What a config without Infer.PostProcess gets: PaddleClas's defaults per kind of task.
DEFAULT_POSTPROCESS = {False: {"name": "Topk", "topk": 1}, True: {"name": "MultiLabelThreshOutput", "threshold": 0.5}}


def _registered(registry: Any, name: Any, attribute: str) -> bool:
    return isinstance(name, str) and name in registry and bool(getattr(registry.get(name), attribute, False))


def postprocess_activation(postprocess_config: Optional[dict]) -> str:
    """The activation (softmax | sigmoid) the Infer.PostProcess named in `postprocess_config` expects."""
    name = (postprocess_config or {}).get("name", "Topk")
    return getattr(POSTPROCESSES.get(name), "activation", "softmax") if name in POSTPROCESSES else "softmax"


def is_multilabel(config: dict) -> bool:
    """Whether `config` trains a multi-label model (see the module docstring)."""
    if (config.get("Global") or {}).get("use_multilabel"):
        return True
    for mode in (config.get("DataLoader") or {}).values():
        dataset = ((mode or {}).get("dataset") or {}) if isinstance(mode, dict) else {}
        if _registered(DATASETS, dataset.get("name"), "multilabel"):
            return True
    for items in (config.get("Loss") or {}).values():
        for _, name, _ in parse_named_list(items or [], "Loss"):
            if _registered(LOSSES, name, "multilabel"):
                return True
    return postprocess_activation((config.get("Infer") or {}).get("PostProcess")) == "sigmoid"


def output_activation(config: dict) -> str:
    """How the model's logits become the scores infer, export and the predictor report: sigmoid for a multi-label
    config, else softmax."""
    return "sigmoid" if is_multilabel(config) else "softmax"


def inference_transforms(config: dict) -> Tuple[Optional[List[Dict[str, Any]]], str]:
    """(the op list, where it comes from): Infer.transforms, else the eval preprocessing data/infer_ops.py finds
    (DataLoader.Eval's, or its Query set's) without random ops and ending with ToCHWImage; (None, where) without."""
    ops, where = infer_transforms(config)
    if not ops or where == "Infer.transforms":
        return ops, where
    kept = [{name: params} for _, name, params in parse_named_list(ops, where, bare_names=True)
            if getattr(OPERATORS.get(name), "deterministic", False)]
    if not any("ToCHWImage" in op for op in kept):
        kept.append({"ToCHWImage": {}})
    return kept, where


def infer_section(config: dict, announce: bool = True, fill_postprocess: bool = True) -> Dict[str, Any]:
    """The config's Infer section with what it leaves out filled in: `transforms` from the eval preprocessing
    (PaddleClas's vehicle_attribute config has no Infer section) and, with `fill_postprocess`, `PostProcess` (Topk
    top-1, or MultiLabelThreshOutput at 0.5 for a multi-label config); each fill is said in one line when
    `announce`."""
    infer = copy.deepcopy(config.get("Infer") or {})
    transforms, where = inference_transforms(config)
    if transforms and where != "Infer.transforms":
        infer["transforms"] = transforms
        if announce:
            logger.info(f"Infer.transforms is not set: inference preprocesses images as {where} "
                        f"({', '.join(next(iter(op)) for op in transforms)})")
    if fill_postprocess and not infer.get("PostProcess"):
        infer["PostProcess"] = dict(DEFAULT_POSTPROCESS[is_multilabel(config)])
        if announce:
            logger.info(f"Infer.PostProcess is not set: using {infer['PostProcess']}")
    return infer
