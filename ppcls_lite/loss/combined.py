"""Build the weighted sum of the losses listed in a `Loss.Train` / `Loss.Eval` section."""
from typing import Sequence

from ppcls_lite.utils.config_rules import FRACTION, NON_NEGATIVE, POSITIVE, check_each, check_keys_of, warn
from ppcls_lite.utils.registry import parse_named_list

from .celoss import LOSSES


# Valid ranges of the loss parameters (checked when the config loads).
LOSS_VALUE_RULES = {"weight": NON_NEGATIVE, "epsilon": FRACTION, "temperature": POSITIVE, "alpha": NON_NEGATIVE,
                    "beta": NON_NEGATIVE, "gamma": NON_NEGATIVE}


def check_loss_item(problems: list, name: str, params: dict, where: str) -> None:
    """Append a message for each parameter of one Loss list item out of its range."""
    check_keys_of(problems, params, LOSS_VALUE_RULES, where)
    weights = params.get("class_weights")
    if isinstance(weights, str) and weights.strip().lower() != "auto":
        problems.append(f"{where}.class_weights must be a list of weights (one per class) or auto, got {weights!r}")
    elif isinstance(weights, list):
        check_each(problems, weights, NON_NEGATIVE, f"{where}.class_weights")


def check_loss_values(config: dict, problems: list) -> None:
    """A `class_weights` list needs one weight per class (Arch.class_num)."""
    class_num = (config.get("Arch") or {}).get("class_num")
    for mode, items in (config.get("Loss") or {}).items():
        if not isinstance(items, list) or not isinstance(class_num, int):
            continue
        for i, item in enumerate(items):
            if not (isinstance(item, dict) and len(item) == 1):
                continue  # the name check reports a malformed item
            (name, params), = item.items()
            weights = params.get("class_weights") if isinstance(params, dict) else None
            if isinstance(weights, list) and len(weights) != class_num:
                problems.append(f"Loss.{mode}.{i}.{name}.class_weights has {len(weights)} weights but Arch.class_num "
                                f"is {class_num}: give one weight per class (or auto)")


def _unique(key: str, taken: dict) -> str:
    """`key`, or `key_1`, `key_2`, ... when it is taken."""
    unique, suffix = key, 1
    while unique in taken:
        unique, suffix = f"{key}_{suffix}", suffix + 1
    return unique


class CombinedLoss:
    """Calls each loss, scales it by its `weight`; returns {"loss": sum, "<Name>": weighted value, ...}.

    A loss returning a dict (the distillation losses: {"CELoss_Student_Teacher": ..., ...}) adds each of its
    entries, weighted, under its own name. A name used twice gets a suffix (`CELoss`, `CELoss_1`).
    `outputs` is the model output as given: a tensor, a {"logits": ...} dict or a DistillationModel's dict.
    """

    def __init__(self, losses: list):
        self.losses = losses  # list of (key, loss_fn, weight)

    @property
    def needs_class_counts(self) -> bool:
        """Whether a loss weighs classes by the train list's counts (`class_weights: auto`)."""
        return any(getattr(getattr(fn, "class_weights", None), "auto", False) for _, fn, _ in self.losses)

    @property
    def multilabel(self) -> bool:
        """Whether a loss is a multi-label one (sigmoid per class)."""
        return any(getattr(fn, "multilabel", False) for _, fn, _ in self.losses)

    def set_class_counts(self, counts: Sequence[int]) -> None:
        """Give every loss with `class_weights: auto` the number of train images of each class."""
        for _, fn, _ in self.losses:
            if hasattr(fn, "set_class_counts"):
                fn.set_class_counts(counts)

    def __call__(self, outputs, labels) -> dict:
        out = {}
        total = None
        for key, loss_fn, weight in self.losses:
            value = loss_fn(outputs, labels)
            for name, part in (value.items() if isinstance(value, dict) else [(key, value)]):
                weighted = part * weight
                out[_unique(name, out)] = weighted
                total = weighted if total is None else total + weighted
        out["loss"] = total
        return out


def build_loss(loss_section: list, where: str = "Loss") -> CombinedLoss:
    """`loss_section` is a list like [{"CELoss": {"weight": 1.0, "epsilon": 0.1}}] (the YAML Loss.Train)."""
    if not isinstance(loss_section, list) or not loss_section:
        raise ValueError(f"{where} must be a non-empty list like [{{CELoss: {{weight: 1.0}}}}], got {loss_section!r}")
    losses, keys = [], {}  # keys: the names taken so far
    for i, name, params in parse_named_list(loss_section, where):
        cls = LOSSES.get(name, f"{where}.{i}")
        item_where = f"{where}.{i}.{name}"
        LOSSES.check_params(name, params, item_where, extra=["weight"])
        weight = float(params.pop("weight", 1.0))
        if getattr(cls, "deprecated_for", None):
            warn(f"{where}: {name} is PaddleClas's deprecated name; {cls.deprecated_for} is used (it handles "
                 "mixup/cutmix soft targets).")
        key = _unique(name, keys)
        keys[key] = True
        losses.append((key, LOSSES.build(name, params, item_where), weight))
    return CombinedLoss(losses)
