"""RecModel: PaddleClas's recognition (retrieval) model, a backbone + an optional neck + an optional head.

    Arch:
      name: RecModel
      infer_output_key: features        # what export and inference give: the embedding, not class scores
      infer_add_softmax: False
      Backbone: {name: MobileNetV1, pretrained: False}   # built like an Arch section (pretrained, class_num, ...)
      BackboneStopLayer: {name: flatten}                 # layers after it become identities (TheseusLayer.stop_after)
      Neck: {name: FC, embedding_size: 1024, class_num: 512}
      Head: {name: ArcMargin, embedding_size: 512, class_num: 101, margin: 0.15, scale: 30}

The forward returns a dict: `backbone` (the backbone's output), `neck` (when there is one), `features` (the neck's
output, else the backbone's: the embedding) and `logits` (the head's output, when there is one; margin heads take
the labels in training, so the training loop passes them). Sub-layers are `backbone`, `neck`, `head`: the state
dict reads `backbone.conv.conv.weight`, `neck.fc.weight`, `head.weight` as in PaddleClas's checkpoints.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import paddle
from paddle import nn

from .builder import build_model
from .gears import build_gear
from .registry import register_wrapper
from .theseus_layer import TheseusLayer

INFER_OUTPUT_KEYS = ("features", "logits")
HEAD_FEATURE_FROM = ("neck", "backbone")


def _as_bool(value: Any) -> bool:
    """PaddleClas writes `infer_add_softmax: "false"` as a string in some configs."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class RecModel(TheseusLayer):
    """Backbone -> (neck) -> features -> (head) -> logits; see the module docstring for the config keys."""

    # The training loop gives this model the labels too (margin heads need them).
    takes_labels = True

    def __init__(self, Backbone: dict, BackboneStopLayer: Optional[dict] = None, Neck: Optional[dict] = None,
                 Head: Optional[dict] = None, head_feature_from: str = "neck", infer_output_key: Optional[str] = None,
                 infer_add_softmax: Any = True):
        super().__init__()
        if not isinstance(Backbone, dict):
            raise ValueError(f"Arch.Backbone must be a mapping like {{name: MobileNetV1, pretrained: False}}, "
                             f"got {Backbone!r}")
        if head_feature_from not in HEAD_FEATURE_FROM:
            raise ValueError(f"Arch.head_feature_from must be one of {HEAD_FEATURE_FROM}, got {head_feature_from!r}")
        if infer_output_key is not None and infer_output_key not in INFER_OUTPUT_KEYS:
            raise ValueError(f"Arch.infer_output_key must be one of {INFER_OUTPUT_KEYS} (or null), got "
                             f"{infer_output_key!r}")
        if infer_output_key == "logits" and Head is None:
            raise ValueError("Arch.infer_output_key is logits but the RecModel has no Head; add a Head section or "
                             "set infer_output_key: features")
        self.backbone = build_model(Backbone, where="Arch.Backbone")
        if BackboneStopLayer is not None:
            if not isinstance(BackboneStopLayer, dict) or not BackboneStopLayer.get("name"):
                raise ValueError(f"Arch.BackboneStopLayer must be a mapping like {{name: flatten}}, got "
                                 f"{BackboneStopLayer!r}")
            self.backbone.stop_after(BackboneStopLayer["name"])
        self.neck = build_gear(Neck, "Arch.Neck") if Neck is not None else None
        self.head = build_gear(Head, "Arch.Head") if Head is not None else None
        self.head_feature_from = head_feature_from
        # Without a head the embedding is all the model gives.
        self.infer_output_key = infer_output_key or ("logits" if self.head is not None else "features")
        self.infer_add_softmax = _as_bool(infer_add_softmax)
        self.class_num = int(self.head.class_num) if self.head is not None else None

    @property
    def outputs_features(self) -> bool:
        """True when inference gives the embedding (`infer_output_key: features`) rather than class scores."""
        return self.infer_output_key != "logits"

    def embedding_layer(self) -> nn.Layer:
        """The layers that make the embedding (backbone -> neck, shared with this model), without the head:
        what export saves for `infer_output_key: features`."""
        return nn.Sequential(self.backbone, self.neck) if self.neck is not None else self.backbone

    def forward(self, x: paddle.Tensor, label: Optional[paddle.Tensor] = None) -> Dict[str, paddle.Tensor]:
        """{"backbone", ["neck"], "features", ["logits"]} for an NCHW batch (`label` only feeds margin heads)."""
        out = {"backbone": self.backbone(x)}
        if self.neck is not None:
            out["neck"] = self.neck(out["backbone"])
        out["features"] = out.get("neck", out["backbone"])
        if self.head is not None:
            source = out["backbone"] if self.head_feature_from == "backbone" else out["features"]
            out["logits"] = self.head(source, label)
        return out


def rec_class_num(arch_config: dict) -> Optional[int]:
    """The class count of a RecModel config (its Head's `class_num`), None without a head."""
    head = arch_config.get("Head")
    return int(head["class_num"]) if isinstance(head, dict) and head.get("class_num") is not None else None


register_wrapper("RecModel", RecModel)


def is_retrieval_model(model: nn.Layer) -> bool:
    """True for a model whose inference output is an embedding (a RecModel with infer_output_key features)."""
    return bool(getattr(model, "outputs_features", False))
