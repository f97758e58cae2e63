"""Exponential moving average of model weights (the `EMA: {decay: ...}` config section).

`ema = decay * ema + (1 - decay) * current` after every optimizer step, for every floating-point entry of
the state dict (parameters and BN running statistics), as PaddleClas does; a DistillationModel's frozen
sub-models (`frozen_names`, the teacher) are left out. The EMA weights are saved in the
checkpoint's `.pdstates` (key "ema"), restored on resume, used for evaluation during training and written
to `best_model.pdparams` when EMA is enabled.
"""
import contextlib
from typing import Dict, Iterator

import numpy as np
import paddle

from ppcls_lite.utils.schema import EMA_DEFAULTS


class ModelEMA:
    """The moving average of a model's floating-point state-dict entries."""

    def __init__(self, model: paddle.nn.Layer, decay: float = EMA_DEFAULTS["decay"]):
        if not 0.0 < float(decay) < 1.0:
            raise ValueError(f"EMA.decay must be in (0, 1), got {decay!r}")
        self.decay = float(decay)
        # A DistillationModel's frozen sub-models (the teacher) never change: averaging them would only copy them.
        frozen = tuple(f"{name}." for name in getattr(model, "frozen_names", ()))
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()
                       if paddle.is_floating_point(v) and not (frozen and k.startswith(frozen))}

    @paddle.no_grad()
    def update(self, model: paddle.nn.Layer) -> None:
        """Move the average towards the model's current weights (after an optimizer step)."""
        for name, value in model.state_dict().items():
            if name in self.shadow:
                shadow = self.shadow[name]
                # In place so the dict keeps the same tensors (cheap, and no new allocations per step).
                paddle.assign(self.decay * shadow + (1.0 - self.decay) * value.detach().astype(shadow.dtype), shadow)

    def state_dict(self) -> Dict[str, np.ndarray]:
        """The EMA weights as numpy arrays (what `.pdstates` stores)."""
        return {k: v.numpy() for k, v in self.shadow.items()}

    def set_state_dict(self, state: Dict[str, np.ndarray]) -> None:
        """Load EMA weights saved by `state_dict()` (names the model does not have are ignored)."""
        for name, value in state.items():
            if name in self.shadow:
                self.shadow[name] = paddle.to_tensor(value, dtype=self.shadow[name].dtype)

    def full_state_dict(self, model: paddle.nn.Layer) -> dict:
        """The model's state dict with EMA values for the averaged entries (what best_model.pdparams holds)."""
        out = dict(model.state_dict())
        out.update(self.shadow)
        return out

    @contextlib.contextmanager
    def applied_to(self, model: paddle.nn.Layer) -> Iterator[paddle.nn.Layer]:
        """Temporarily load the EMA weights into `model` (e.g. for evaluation), then restore the originals."""
        backup = {k: v.detach().clone() for k, v in model.state_dict().items() if k in self.shadow}
        model.set_state_dict(self.shadow)
        try:
            yield model
        finally:
            model.set_state_dict(backup)
