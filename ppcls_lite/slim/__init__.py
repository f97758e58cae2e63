"""The `Slim` section: quantization-aware training (`quant`) and structured pruning (`prune`), as PaddleClas names them.

    Slim:
      quant: {name: pact}                      # or qat (no PACT clip); weight_quantize_type, moving_rate optional
      prune: {name: fpgm, pruned_ratio: 0.3}   # or l1_norm

`apply_slim(model, slim_config)` changes a freshly built model the way the section says, before any checkpoint is
loaded into it and before the optimizer sees it: first pruning (on the weights the model was built with, e.g.
`Arch.pretrained`), then QAT, as PaddleClas does. Both together are supported. Training, evaluation, inference and
export all call it, so a pruned / QAT checkpoint loads into the model it was saved from. A DistillationModel is
not slimmed (PaddleClas slims single models too): distil first, then quantize or prune the student with its own
config.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from paddle import nn

from ppcls_lite.arch.registry import MODELS, WRAPPERS
from ppcls_lite.utils import logger
from ppcls_lite.utils.config_rules import ANY, FRACTION, SectionRules, check_keys_of

from .prune import PRUNE_NAMES, prunable_family, prune_model
from .quant import QUANT_NAMES, WEIGHT_QUANTIZE_TYPES, convert_for_export, is_quantized, quantize_model

__all__ = ["apply_slim", "slim_options", "quantize_model", "prune_model", "convert_for_export", "is_quantized",
           "CONFIG_RULES"]

QUANT_KEYS = ("name", "weight_quantize_type", "moving_rate")
PRUNE_KEYS = ("name", "pruned_ratio")


def _choice(problems: List[str], section: dict, key: str, choices: tuple, where: str, required: bool = True) -> None:
    value = section.get(key)
    if value is None and not required:
        return
    if not isinstance(value, str) or value.lower() not in choices:
        problems.append(f"{where}.{key} must be one of {list(choices)}, got {value!r}")


def check_slim(config: dict, problems: List[str]) -> None:
    """Append one message per problem of the Slim section (names, ranges, a model it cannot handle)."""
    slim = config.get("Slim")
    if not slim:
        return
    arch_name = (config.get("Arch") or {}).get("name")
    quant, prune = slim.get("quant"), slim.get("prune")
    if arch_name in WRAPPERS and (quant or prune):
        problems.append(f"Slim cannot be applied to Arch.name={arch_name}: quantize or prune a single model (train "
                        f"the student with distillation first, then run Slim on it with Arch.name set to the student)")
        return
    if isinstance(quant, dict):
        _choice(problems, quant, "name", QUANT_NAMES, "Slim.quant")
        _choice(problems, quant, "weight_quantize_type", WEIGHT_QUANTIZE_TYPES, "Slim.quant", required=False)
        check_keys_of(problems, quant, {"moving_rate": FRACTION}, "Slim.quant")
    if isinstance(prune, dict):
        _choice(problems, prune, "name", PRUNE_NAMES, "Slim.prune")
        ratio = prune.get("pruned_ratio")
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
            problems.append(f"Slim.prune.pruned_ratio must be a number in (0, 1) (the share of channels removed), "
                            f"got {ratio!r}")
        if arch_name in MODELS and not prunable_family(_model_class(arch_name)):
            problems.append(f"Slim.prune cannot prune Arch.name={arch_name}: channel pruning knows the MobileNetV3 "
                            f"family's depthwise, squeeze-excite and residual structure only")


def _model_class(name: str) -> type:
    constructor, _ = MODELS.entry(name)
    return constructor


CONFIG_RULES = SectionRules(
    schema=lambda: {"Slim": {"quant": {k: ANY for k in QUANT_KEYS}, "prune": {k: ANY for k in PRUNE_KEYS}}},
    check_values=check_slim)


def slim_options(slim_config: Optional[dict]) -> Dict[str, dict]:
    """{"prune": kwargs of prune_model, "quant": kwargs of quantize_model} for what the section asks (lower-cased
    names, defaults filled in)."""
    slim_config = slim_config or {}
    options = {}
    prune = slim_config.get("prune")
    if prune:
        options["prune"] = {"name": str(prune.get("name", "fpgm")).lower(),
                            "pruned_ratio": float(prune.get("pruned_ratio", 0.3))}
    quant = slim_config.get("quant")
    if quant:
        options["quant"] = {"name": str(quant.get("name", "pact")).lower(),
                            "weight_quantize_type": str(quant.get("weight_quantize_type",
                                                                  "channel_wise_abs_max")).lower(),
                            "moving_rate": float(quant.get("moving_rate", 0.9))}
    return options


def apply_slim(model: nn.Layer, slim_config: Optional[dict]) -> Dict[str, Any]:
    """Prune and/or quantize `model` in place as `slim_config` (the Slim section) says; returns what was done
    ({"prune": per-group channel counts, "quant": the options}; {} without a Slim section)."""
    options, done = slim_options(slim_config), {}
    if options and hasattr(model, "model_name_list"):
        raise ValueError("Slim cannot be applied to a DistillationModel; quantize or prune the student on its own")
    if "prune" in options:
        summary = prune_model(model, **options["prune"])
        before, after = sum(g["channels"] for g in summary), sum(g["kept"] for g in summary)
        logger.info(f"Slim.prune: {options['prune']['name']} kept {after} of {before} channels in "
                    f"{len(summary)} channel groups (pruned_ratio {options['prune']['pruned_ratio']})")
        done["prune"] = summary
    if "quant" in options:
        quantize_model(model, **options["quant"])
        logger.info(f"Slim.quant: quantization-aware training ({options['quant']['name']}, weights "
                    f"{options['quant']['weight_quantize_type']}, int8)")
        done["quant"] = options["quant"]
    return done
