"""Model size and cost: parameter counts, MACs (Conv2D + Linear, via forward hooks) and CPU latency.

`paddle.flops` also counts BN/activations and fails on some layers under Paddle 3.3, so MACs are counted here:
a Conv2D costs out_elements * in_channels / groups * kh * kw, a Linear out_elements * in_features (no biases).
"""
import statistics
import time

import numpy as np
import paddle
from paddle import nn


def count_parameters(model):
    """(trainable parameters, all state-dict elements incl. BN running stats - what models.tsv reports)."""
    trainable = sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)
    total = sum(int(np.prod(t.shape)) for t in model.state_dict().values())
    return trainable, total


def count_macs(model, image_size=224):
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


def measure_latency(model, batch_size=1, image_size=224, runs=5, warmup=1):
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


# ImageNet-1k top-1 (%) as published; the model-zoo table cites the source of every number.
TOP1_SOURCES = {
    "PaddleClas": "PaddleClas model zoo, docs/en/models/Mobile_en.md, table \"Accuracy, FLOPS and Parameters\", "
                  "column Top1 (PaddleClas-trained weights, 224 px): https://github.com/PaddlePaddle/PaddleClas/blob/"
                  "18840f1f88fae36e8afdb0b3d906a7b1931a94de/docs/en/models/Mobile_en.md",
    "MobileNeXt authors": "Zhou et al. 2020 (ECCV), as reported in the authors' repository README, table \"Model "
                          "performance at different width multiplier\": https://github.com/zhoudaquan/"
                          "rethinking_bottleneck_design (no PaddleClas-measured top-1 for MobileNeXt was found)",
}
REPORTED_TOP1 = {
    "MobileNetV1_x0_25": (51.4, "PaddleClas"), "MobileNetV1_x0_5": (63.5, "PaddleClas"),
    "MobileNetV1_x0_75": (68.8, "PaddleClas"), "MobileNetV1": (71.0, "PaddleClas"),
    "MobileNetV2_x0_25": (53.2, "PaddleClas"), "MobileNetV2_x0_5": (65.0, "PaddleClas"),
    "MobileNetV2_x0_75": (69.8, "PaddleClas"), "MobileNetV2": (72.2, "PaddleClas"),
    "MobileNetV2_x1_5": (74.1, "PaddleClas"), "MobileNetV2_x2_0": (75.2, "PaddleClas"),
    "MobileNetV3_small_x0_35": (53.0, "PaddleClas"), "MobileNetV3_small_x0_5": (59.2, "PaddleClas"),
    "MobileNetV3_small_x0_75": (66.0, "PaddleClas"), "MobileNetV3_small_x1_0": (68.2, "PaddleClas"),
    "MobileNetV3_small_x1_25": (70.7, "PaddleClas"),
    "MobileNetV3_large_x0_35": (64.3, "PaddleClas"), "MobileNetV3_large_x0_5": (69.2, "PaddleClas"),
    "MobileNetV3_large_x0_75": (73.1, "PaddleClas"), "MobileNetV3_large_x1_0": (75.3, "PaddleClas"),
    "MobileNetV3_large_x1_25": (76.4, "PaddleClas"),
    "MobileNeXt_x0_35": (64.7, "MobileNeXt authors"), "MobileNeXt_x0_5": (67.7, "MobileNeXt authors"),
    "MobileNeXt_x0_75": (72.0, "MobileNeXt authors"), "MobileNeXt_x1_0": (74.02, "MobileNeXt authors"),
    "MobileNeXt_x1_4": (76.1, "MobileNeXt authors"),
}


def summarize(name, image_size=224, runs=0, class_num=1000):
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


def model_zoo_markdown(rows):
    """docs/MODEL_ZOO.md: parameters, MACs at 224 px and reported top-1 of every model, with sources."""
    notes = {source: i + 1 for i, source in enumerate(TOP1_SOURCES)}
    lines = [
        "# Model zoo",
        "",
        "Generated by `python tools/model_summary.py --all --markdown docs/MODEL_ZOO.md` (do not edit by hand).",
        "",
        "- **Params**: trainable parameters. PaddleClas's parameter counts (and `models.tsv` in the reference facts)",
        "  also include the BatchNorm running mean/variance; that total is in the *state dict* column.",
        "- **MACs**: multiply-accumulates of Conv2D and Linear layers for one 224x224 image, counted with forward",
        "  hooks (`ppcls_lite/arch/summary.py`); BN, activations, pooling and additions are not counted.",
        "- **Top-1**: ImageNet-1k validation accuracy as *reported* by the source in the last column; ppcls_lite ships",
        "  no trained weights and did not measure these. PaddleClas's `.pdparams` load into these models unchanged.",
        "- CPU latency depends on the machine, so it is not recorded here: run",
        "  `python tools/model_summary.py NAME --runs 10` to measure it on yours.",
        "",
        "| Model | Params (M) | State dict (M) | MACs@224 (M) | Top-1 (%) | Source |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        top1, source = REPORTED_TOP1.get(row["name"], (None, None))
        top1_text = "—" if top1 is None else f"{top1:.1f}" if round(top1, 1) == top1 else f"{top1:.2f}"
        source_text = f"[{notes[source]}]" if source else "not found"
        lines.append(f"| {row['name']} | {row['params'] / 1e6:.3f} | {row['state_dict_elements'] / 1e6:.3f} | "
                     f"{row['macs'] / 1e6:.1f} | {top1_text} | {source_text} |")
    lines += ["", "Sources:", ""]
    lines += [f"{i}. {TOP1_SOURCES[source]}" for source, i in notes.items()]
    return "\n".join(lines) + "\n"
