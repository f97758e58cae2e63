"""Automatic mixed precision for one engine: the level, the GradScaler and the autocast context.

GPU/XPU only (`paddle.amp.auto_cast` + `GradScaler`, O1/O2). PaddlePaddle 3.3's autocast has no effect on CPU
(not even bfloat16), so on CPU AMP is switched off with a one-line warning and training runs in float32.
"""
from typing import Any, Optional, Tuple

import paddle

from ppcls_lite.utils import logger


class AmpContext:
    """What AMP.* asks for, resolved for a device: `enabled`, `level`, `scaler` (training only), `autocast()`."""

    def __init__(self, use_amp: bool, level: str, device: str, use_fp16_test: bool = False,
                 use_promote: bool = False):
        self.enabled = bool(use_amp)
        self.use_fp16_test = bool(use_fp16_test)
        self.use_promote = bool(use_promote)
        self.scaler: Optional[paddle.amp.GradScaler] = None
        self.level = str(level).upper()
        if self.enabled and device == "cpu":
            logger.warning("AMP.use_amp is on but PaddlePaddle's autocast has no effect on CPU (no fp16/bf16 kernels "
                           "used), so AMP is disabled on this device and training continues in float32.")
            self.enabled = False
        if self.enabled and self.level not in ("O1", "O2"):
            raise ValueError(f"AMP.level must be O1 or O2, got {level!r}")

    def prepare(self, model: Any, optimizer: Any, scale_loss: float,
                use_dynamic_loss_scaling: bool) -> Tuple[Any, Any]:
        """Create the GradScaler (when training) and, at O2, cast the model (and optimizer) to half precision."""
        if not self.enabled:
            return model, optimizer
        if optimizer is not None:
            self.scaler = paddle.amp.GradScaler(init_loss_scaling=float(scale_loss),
                                                use_dynamic_loss_scaling=bool(use_dynamic_loss_scaling))
            if self.level == "O2":
                model, optimizer = paddle.amp.decorate(models=model, optimizers=optimizer, level="O2",
                                                       save_dtype="float32")
        elif self.level == "O2" and self.use_fp16_test:
            model = paddle.amp.decorate(models=model, level="O2", save_dtype="float32")
        return model, optimizer

    def autocast(self, training: bool = True) -> Any:
        """The autocast context for a training step, or for evaluation/inference (AMP.use_fp16_test)."""
        if not (self.enabled and (training or self.use_fp16_test)):
            return paddle.amp.auto_cast(enable=False)
        return paddle.amp.auto_cast(enable=True, level=self.level, use_promote=self.use_promote)

    def backward_and_step(self, loss: Any, optimizer: Any) -> None:
        """loss.backward() and optimizer.step(), through the GradScaler when there is one."""
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            loss.backward()
            optimizer.step()
