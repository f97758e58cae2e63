"""Build the weighted sum of the losses listed in a `Loss.Train` / `Loss.Eval` section."""
import inspect

from ppcls_lite.utils.config import _warn, did_you_mean, iter_named_list

from .celoss import CELoss, MixCELoss, SoftTargetCrossEntropy

LOSSES = {"CELoss": CELoss, "MixCELoss": MixCELoss, "SoftTargetCrossEntropy": SoftTargetCrossEntropy}


class CombinedLoss:
    """Calls each loss, scales it by its `weight`; returns {"loss": sum, "<Name>": weighted value, ...}.

    A name used twice gets a suffix (`CELoss`, `CELoss_1`).
    """

    def __init__(self, losses):
        self.losses = losses  # list of (key, loss_fn, weight)

    def __call__(self, logits, labels):
        out = {}
        total = None
        for key, loss_fn, weight in self.losses:
            value = loss_fn(logits, labels) * weight
            out[key] = value
            total = value if total is None else total + value
        out["loss"] = total
        return out


def build_loss(loss_section, where="Loss"):
    """`loss_section` is a list like [{"CELoss": {"weight": 1.0, "epsilon": 0.1}}] (the YAML Loss.Train)."""
    if not isinstance(loss_section, list) or not loss_section:
        raise ValueError(f"{where} must be a non-empty list like [{{CELoss: {{weight: 1.0}}}}], got {loss_section!r}")
    losses = []
    for _, name, params in iter_named_list(loss_section, where):
        if name not in LOSSES:
            raise ValueError(f"unknown loss '{name}' in {where}. Valid losses: {', '.join(LOSSES)}."
                             f"{did_you_mean(name, LOSSES)}")
        weight = float(params.pop("weight", 1.0))
        cls = LOSSES[name]
        if getattr(cls, "deprecated_for", None):
            _warn(f"{where}: {name} is PaddleClas's deprecated name; {cls.deprecated_for} is used (it handles "
                  "mixup/cutmix soft targets).")
        valid = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        unknown = [k for k in params if k not in valid]
        if unknown:
            raise ValueError(f"{where}.{name}: unknown parameter(s) {unknown}. Valid: weight, {', '.join(valid)}")
        key = name
        suffix = 1
        while any(key == k for k, _, _ in losses):
            key = f"{name}_{suffix}"
            suffix += 1
        losses.append((key, cls(**params), weight))
    return CombinedLoss(losses)
