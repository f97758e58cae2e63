"""Model size and cost: parameter counts, MACs (Conv2D + Linear, via forward hooks) and CPU latency
(tools/model_summary.py prints them and writes docs/MODEL_ZOO.md from them).

`paddle.flops` also counts BN/activations and fails on some layers under Paddle 3.3, so MACs are counted here:
a Conv2D costs out_elements * in_channels / groups * kh * kw, a Linear out_elements * in_features (no biases).
"""
import statistics
import time
from typing import Any, Dict, Tuple

import numpy as np
import paddle
from paddle import nn


def count_parameters(model: nn.Layer) -> Tuple[int, int]:
    """(trainable parameters, all state-dict elements incl. BN running stats - what models.tsv reports)."""
    trainable = sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)
    total = sum(int(np.prod(t.shape)) for t in model.state_dict().values())
    return trainable, total


def count_macs(model: nn.Layer, image_size: int = 224) -> int:
    """Multiply-accumulates of one forward pass on one `image_size` x `image_size` RGB image."""
    macs = []

    def conv_hook(layer, inputs, output):
        _, in_per_group, kh, kw = layer.weight.shape  # [out, in / groups, kh, kw]
        macs.append(int(np.prod(output.shape[1:])) * in_per_group * kh * kw)

    def linear_hook(layer, inputs, output):
        macs.append(int(np.prod(output.shape[1:])) * layer.weight.shape[0])  # weight: [in, out]

    handles = [layer.register_forward_post_hook(conv_hook if isinstance(layer, nn.Conv2D) else linear_hook)
               for layer in model.sublayers() if isinstance(layer, (nn.Conv2D, nn.Linear))]
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            model(paddle.zeros([1, 3, image_size, image_size]))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return sum(macs)


def measure_latency(model: nn.Layer, batch_size: int = 1, image_size: int = 224, runs: int = 5,
                    warmup: int = 1) -> float:
    """Median wall-clock seconds of an eval-mode forward pass (CPU or whatever device paddle uses)."""
    model.eval()
    x = paddle.randn([batch_size, 3, image_size, image_size])
    times = []
    with paddle.no_grad():
        for i in range(warmup + runs):
            start = time.perf_counter()
            np.asarray(model(x))  # fetching the result waits for the computation
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def summarize(name: str, image_size: int = 224, runs: int = 0, class_num: int = 1000) -> Dict[str, Any]:
    """One row: name, parameters, MACs at `image_size`, and (if runs > 0) median CPU latency at batch 1 and 8."""
    from . import build_model  # late import: build_model imports this package's families

    model = build_model({"name": name, "class_num": class_num})
    trainable, total = count_parameters(model)
    row = {"name": name, "params": trainable, "state_dict_elements": total,
           "macs": count_macs(model, image_size), "image_size": image_size}
    if runs > 0:
        row["latency_bs1_ms"] = 1000 * measure_latency(model, 1, image_size, runs)
        row["latency_bs8_ms"] = 1000 * measure_latency(model, 8, image_size, runs)
    return row
