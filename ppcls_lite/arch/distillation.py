"""DistillationModel: PaddleClas's wrapper of named sub-models (a teacher and a student, or peers for DML).

    Arch:
      name: DistillationModel
      class_num: 1000                  # optional: the default class_num of every sub-model
      freeze_params_list: [True, False]
      pretrained_list:                 # optional: a weights path/URL (or null) per sub-model
      models:
        - Teacher: {name: ResNet50_vd, class_num: 1000, pretrained: True, use_ssld: True}
        - Student: {name: MobileNetV3_small_x1_0, class_num: 1000, pretrained: False}
      infer_model_name: Student

Each sub-model is built like an `Arch` section (its own `pretrained` / `use_ssld` included) and registered under
its name, so the state dict reads `Teacher.<key>`, `Student.<key>` as in PaddleClas's distillation checkpoints.
The forward returns a DistillationOutput {sub-model name: its output}. A frozen sub-model has stop_gradient
parameters, runs without recording gradients and stays in eval mode (BN statistics fixed, no dropout) even when
the wrapper or a parent of it is put in training mode.
"""
from __future__ import annotations

import inspect
from typing import Any, Optional

import paddle
from paddle import nn

from ppcls_lite.utils.registry import parse_named_list
from ppcls_lite.utils.save_load import load_pretrained

from .builder import check_arch
from .outputs import DistillationOutput, distillation_output_type
from .pretrained import resolve_pretrained
from .registry import MODELS, WRAPPERS, register_wrapper


def _default_class_num(name: str) -> Optional[int]:
    parameter = inspect.signature(MODELS.get(name, "Arch.models")).parameters.get("class_num")
    return None if parameter is None else parameter.default


def _per_model_list(values: Any, key: str, count: int, names: list) -> list:
    """`values` (one entry per sub-model, or None) checked against the number of sub-models."""
    if values is None:
        return [None] * count
    if not isinstance(values, (list, tuple)) or len(values) != count:
        length = len(values) if isinstance(values, (list, tuple)) else type(values).__name__
        raise ValueError(f"Arch.{key} must list one entry per sub-model of Arch.models ({count}: {names}), "
                         f"got {length}: {values!r}")
    return list(values)


def _sub_model_configs(models: Any, class_num: Optional[int]) -> list:
    """[(key, config, where)] of Arch.models, each with its class_num filled in; differing class_nums are an error."""
    if not isinstance(models, (list, tuple)) or not models:
        raise ValueError("Arch.models must be a non-empty list of named sub-models like "
                         "[{Teacher: {name: ResNet50_vd}}, {Student: {name: MobileNetV3_small_x1_0}}]")
    configs, seen = [], {}
    for i, key, params in parse_named_list(models, "Arch.models"):
        where = f"Arch.models.{i}.{key}"
        if key in seen:
            raise ValueError(f"{where}: the sub-model name {key!r} is used twice in Arch.models; give each a "
                             f"different name")
        if not isinstance(key, str) or not key.isidentifier() or hasattr(nn.Layer, key):
            raise ValueError(f"{where}: {key!r} cannot name a sub-model (use a name like Teacher or Student)")
        name = params["name"] = MODELS.canonical(params.get("name"), f"{where}.name")
        if name in WRAPPERS:
            raise ValueError(f"{where}.name: a {name} cannot be a sub-model of a DistillationModel")
        if class_num is not None and params.setdefault("class_num", class_num) != class_num:
            raise ValueError(f"{where}.class_num is {params['class_num']} but Arch.class_num is {class_num}: a "
                             f"distillation pair must predict the same classes; make them equal")
        seen[key] = params.get("class_num", _default_class_num(name))
        configs.append((key, params, where))
    if len(set(seen.values())) > 1:
        listed = ", ".join(f"{w}.class_num={seen[k]}" for k, _, w in configs)
        raise ValueError(f"the sub-models of Arch.models predict different numbers of classes ({listed}); "
                         f"teacher and student must share one class_num: set the same value in each")
    return configs


def arch_class_num(arch_config: dict) -> int:
    """The class count an Arch section builds: `Arch.class_num`, else (a DistillationModel) its first sub-model's
    `class_num`, else the model's default (1000 for every model here)."""
    if arch_config.get("class_num") is not None:
        return int(arch_config["class_num"])
    name = arch_config.get("name")
    if name == "DistillationModel":
        models = arch_config.get("models")
        first = next(iter(models[0].values()), None) if isinstance(models, list) and models and \
            isinstance(models[0], dict) else None
        if isinstance(first, dict) and first.get("class_num") is not None:
            return int(first["class_num"])
        name = first.get("name") if isinstance(first, dict) else None
    default = _default_class_num(name) if name in MODELS else None
    return int(default) if default is not None else 1000


class DistillationModel(nn.Layer):
    """Named sub-models run on the same input; see the module docstring for the config keys."""

    def __init__(self, models: list, pretrained_list: Optional[list] = None,
                 freeze_params_list: Optional[list] = None, infer_model_name: Optional[str] = None,
                 class_num: Optional[int] = None):
        super().__init__()
        configs = _sub_model_configs(models, class_num)
        names = [key for key, _, _ in configs]
        freeze = _per_model_list(freeze_params_list, "freeze_params_list", len(names), names)
        if any(f is not None and not isinstance(f, bool) for f in freeze):
            raise ValueError(f"Arch.freeze_params_list entries must be True or False, got {freeze_params_list!r}")
        weights = _per_model_list(pretrained_list, "pretrained_list", len(names), names)
        if infer_model_name is None and "Student" in names:
            infer_model_name = "Student"  # PaddleClas's configs always name it; its engine assumes "Student"
        if infer_model_name not in names:
            raise ValueError(f"Arch.infer_model_name must name the sub-model to deploy, one of {names}; "
                             f"got {infer_model_name!r}")
        plans = [check_arch(params, where) for _, params, where in configs]  # every config error first
        listed = [resolve_pretrained(name, w) for (name, _, _), w in zip(plans, weights)]

        self.model_name_list = names  # PaddleClas's attribute: the sub-model names in order
        self.infer_model_name = infer_model_name
        self.frozen_names = [key for key, f in zip(names, freeze) if f]  # None counts as False
        self.class_num = configs[0][1].get("class_num", _default_class_num(configs[0][1]["name"]))
        for (key, _, where), (name, kwargs, _) in zip(configs, plans):
            self.add_sublayer(key, MODELS.build(name, kwargs, where))
        for key, (_, _, source), extra in zip(names, plans, listed):  # downloads last, once everything is built
            for weights_source in (source, extra):
                if weights_source:
                    load_pretrained(self._sub_layers[key], weights_source)
            if key in self.frozen_names:
                for param in self._sub_layers[key].parameters():
                    param.stop_gradient = True
        self._keep_frozen_in_eval()

    def sub_model(self, name: str) -> nn.Layer:
        """The sub-model registered as `name` (e.g. "Teacher")."""
        if name not in self.model_name_list:
            raise KeyError(f"no sub-model {name!r}; the sub-models are {self.model_name_list}")
        return self._sub_layers[name]

    def infer_model(self) -> nn.Layer:
        """The `infer_model_name` sub-model: what export and the deployed predictor run."""
        return self.sub_model(self.infer_model_name)

    def _keep_frozen_in_eval(self) -> None:
        for name in self.frozen_names:
            model = self._sub_layers[name]
            if model.training:  # a parent's train() sets the flag on every sublayer directly
                for layer in [model, *model.sublayers()]:
                    layer.training = False

    def train(self, mode: bool = True) -> "DistillationModel":
        """Training mode for the trainable sub-models; frozen ones stay in eval mode."""
        super().train(mode)
        self._keep_frozen_in_eval()
        return self

    def forward(self, x: paddle.Tensor) -> DistillationOutput:
        """{sub-model name: its output on `x`} (a dict when the sub-model has return_patterns)."""
        if self.training:
            self._keep_frozen_in_eval()
        outputs = {}
        for name in self.model_name_list:
            if name in self.frozen_names:
                with paddle.no_grad():
                    outputs[name] = self._sub_layers[name](x)
            else:
                outputs[name] = self._sub_layers[name](x)
        return distillation_output_type(self.infer_model_name)(outputs)


register_wrapper("DistillationModel", DistillationModel)
