"""The names PaddleClas's own models give their parameters, which Paddle keys optimizer state by.

Paddle names a parameter after its layer type and a per-process counter (`conv2d_12.w_0`, `batch_norm_3.b_0`,
`linear_0.w_0`), and a `.pdopt` keys each accumulator by that name (`conv2d_12.w_0_velocity_0`). PaddleClas's
tools/train.py builds the model first, so its names count from 0; a ppcls_lite process may have built other
layers before (a teacher, a test's models), so its counters can be anywhere. `paddleclas_parameter_names` gives
every parameter the name PaddleClas's model would have in a fresh process: each layer type's counter renumbered
from 0 in parameter order (ppcls_lite's families build their layers in PaddleClas's order, and use its layer
types: `nn.BatchNorm` where PaddleClas does), or the explicit name a family reports through a
`paddleclas_param_names()` method (MobileNetV2). tests/fixtures/reference/param_names/ holds PaddleClas's names
for every model; a test compares.
"""
import re
from typing import Any, Dict

# `<layer type>_<counter>.<w|b>_<k>`: a name Paddle generated (an explicit ParamAttr name does not match).
AUTO_NAME = re.compile(r"^(?P<layer>[a-z][a-z0-9_]*?)_(?P<index>\d+)\.(?P<param>[wb]_\d+)$")


def explicit_param_names(model: Any) -> Dict[str, str]:
    """{structured key: name} that sub-layers with a `paddleclas_param_names()` method report for themselves."""
    names = {}
    for path, layer in model.named_sublayers(include_self=True):
        report = getattr(layer, "paddleclas_param_names", None)
        if callable(report):
            names.update({f"{path}.{key}" if path else key: name for key, name in report().items()})
    return names


def paddleclas_parameter_names(model: Any) -> Dict[str, str]:
    """{structured key: the parameter's name in PaddleClas's model built in a fresh process}, in parameter order."""
    explicit = explicit_param_names(model)
    renumbered: Dict[str, Dict[str, int]] = {}  # layer type -> {this process's counter: PaddleClas's}
    names = {}
    for key, param in model.named_parameters():
        match = AUTO_NAME.match(param.name)
        if key in explicit or match is None:
            names[key] = explicit.get(key, param.name)
            continue
        counters = renumbered.setdefault(match["layer"], {})
        index = counters.setdefault(match["index"], len(counters))
        names[key] = f"{match['layer']}_{index}.{match['param']}"
    return names
