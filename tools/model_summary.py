"""Parameters, MACs and CPU latency of the registered models; writes docs/MODEL_ZOO.md.

    python tools/model_summary.py MobileNetV3_large_x1_0             # params, MACs@224, latency bs1/bs8
    python tools/model_summary.py --all --size 160 --runs 0          # every model, no latency
    python tools/model_summary.py --all --markdown docs/MODEL_ZOO.md # params, MACs@224, reported top-1

Latency is the median of --runs eval-mode forward passes on the CPU after one warm-up pass; it uses as many
threads as Paddle is allowed (set OMP_NUM_THREADS to pin it). Writing the markdown measures nothing: its latency
columns (models evaluated at another size than 224 px only) are the numbers recorded in MEASURED_LATENCY_MS.
"""
import argparse
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


# ImageNet-1k top-1 (%) as published; the model-zoo table cites the source of every number.
TOP1_SOURCES = {
    "PaddleClas": "PaddleClas model zoo, docs/en/models/Mobile_en.md, table \"Accuracy, FLOPS and Parameters\", "
                  "column Top1 (PaddleClas-trained weights, 224 px): https://github.com/PaddlePaddle/PaddleClas/blob/"
                  "18840f1f88fae36e8afdb0b3d906a7b1931a94de/docs/en/models/Mobile_en.md",
    "MobileNeXt authors": "Zhou et al. 2020 (ECCV), as reported in the authors' repository README, table \"Model "
                          "performance at different width multiplier\": https://github.com/zhoudaquan/"
                          "rethinking_bottleneck_design (no PaddleClas-measured top-1 for MobileNeXt was found)",
    "PaddleClas MobileNetV4": "PaddleClas, docs/zh_CN/models/ImageNet1k/MobileNetV4.md, table 1.2, column Top1 "
                              "(weights converted from the authors' release, evaluated at each config's Eval crop "
                              "size, see the table below; its \"Reference top1\" column reads 73.8 / 79.9 / 82.9 / "
                              "80.7 / 83.4): https://github.com/PaddlePaddle/PaddleClas/blob/"
                              "d178931fca432204e6b7422bac4f92e09ff22fa4/docs/zh_CN/models/ImageNet1k/MobileNetV4.md",
    "PaddleClas ResNet": "PaddleClas model zoo, docs/en/models/ResNet_and_vd_en.md, table \"Accuracy, FLOPs and "
                         "Parameters\", column Top1 (PaddleClas-trained weights, 224 px): https://github.com/"
                         "PaddlePaddle/PaddleClas/blob/d178931fca432204e6b7422bac4f92e09ff22fa4/docs/en/models/"
                         "ResNet_and_vd_en.md",
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
    "MobileNetV4_conv_small": (74.6, "PaddleClas MobileNetV4"),
    "MobileNetV4_conv_medium": (79.9, "PaddleClas MobileNetV4"),
    "MobileNetV4_conv_large": (83.4, "PaddleClas MobileNetV4"),
    "MobileNetV4_hybrid_medium": (80.5, "PaddleClas MobileNetV4"),
    "MobileNetV4_hybrid_large": (83.8, "PaddleClas MobileNetV4"),
    "ResNet18_vd": (72.3, "PaddleClas ResNet"), "ResNet34_vd": (76.0, "PaddleClas ResNet"),
    "ResNet50_vd": (79.1, "PaddleClas ResNet"), "ResNet101_vd": (80.2, "PaddleClas ResNet"),
    "ResNet152_vd": (80.6, "PaddleClas ResNet"), "ResNet200_vd": (80.9, "PaddleClas ResNet"),
}
# Models evaluated at another size than 224 px: the Eval CropImage size of their PaddleClas config.
EVAL_SIZE = {"MobileNetV4_conv_small": 256, "MobileNetV4_conv_medium": 320, "MobileNetV4_conv_large": 448,
             "MobileNetV4_hybrid_medium": 256, "MobileNetV4_hybrid_large": 448}
# CPU latency (ms, median of 5 eval-mode forward passes, batch 1 and 8) at EVAL_SIZE, measured with
# `OMP_NUM_THREADS=1 python tools/model_summary.py NAME --size SIZE --runs 5` on LATENCY_MACHINE.
LATENCY_MACHINE = ("median of 5 eval-mode forward passes of Paddle 3.3.1 dygraph on 1 thread of a 2-core AMD EPYC "
                   "shared with other jobs (load average 1.8-3.1), `OMP_NUM_THREADS=1 python tools/model_summary.py "
                   "NAME --size SIZE --runs 5`")
MEASURED_LATENCY_MS = {
    "MobileNetV4_conv_small": (35.0, 414.6), "MobileNetV4_conv_medium": (187.7, 1413.1),
    "MobileNetV4_conv_large": (726.1, 6290.4), "MobileNetV4_hybrid_medium": (145.1, 1035.8),
    "MobileNetV4_hybrid_large": (2019.1, 12216.9),
}


def model_zoo_markdown(rows: List[Dict[str, Any]]) -> str:
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
        "- CPU latency depends on the machine, so it is recorded only for the models of the last table (on this",
        "  project's machine): run `python tools/model_summary.py NAME --runs 10` to measure it on yours.",
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
    lines += eval_size_section(rows)
    lines += ["", "Sources:", ""]
    lines += [f"{i}. {TOP1_SOURCES[source]}" for source, i in notes.items()]
    return "\n".join(lines) + "\n"


def eval_size_section(rows: List[Dict[str, Any]]) -> List[str]:
    """Markdown lines: the models of EVAL_SIZE at that size (MACs there, recorded CPU latency, reported top-1)."""
    from ppcls_lite.arch import build_model
    from ppcls_lite.arch.summary import count_macs

    lines = ["", "## At their evaluation size", "",
             "MobileNetV4 is trained and evaluated at larger images than 224 px (the Eval crop of its PaddleClas "
             "config); MACs here are at that size. The hybrids' attention matrix products (query x key, weights x "
             "value) are not Conv2D/Linear and so not counted: they add 42 M MACs to hybrid_medium at 256 px (3%) and "
             "629 M to hybrid_large at 448 px (6%). "
             f"Latency: {LATENCY_MACHINE}.", "",
             "| Model | Input (px) | Params (M) | MACs (M) | CPU bs1 (ms) | CPU bs8 (ms) | Top-1 (%) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        size = EVAL_SIZE.get(row["name"])
        if size is None:
            continue
        macs = count_macs(build_model({"name": row["name"]}), size)
        bs1, bs8 = MEASURED_LATENCY_MS.get(row["name"], (None, None))
        latency = " | ".join("—" if v is None else f"{v:.1f}" for v in (bs1, bs8))
        top1, _ = REPORTED_TOP1.get(row["name"], (None, None))
        lines.append(f"| {row['name']} | {size} | {row['params'] / 1e6:.3f} | {macs / 1e6:.1f} | {latency} | "
                     f"{'—' if top1 is None else f'{top1:.1f}'} |")
    return lines


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", help="a model name (see --all for the list)")
    parser.add_argument("--all", action="store_true", help="summarise every registered model")
    parser.add_argument("--size", type=int, default=224, help="input image size in pixels (default 224)")
    parser.add_argument("--runs", type=int, default=3, help="timed forward passes per batch size; 0 skips latency")
    parser.add_argument("--markdown", metavar="PATH", help="write the model-zoo table (all models, 224 px) to PATH")
    args = parser.parse_args(argv)
    if not (args.name or args.all or args.markdown):
        parser.error("give a model NAME, --all, or --markdown PATH")
    if args.size < 32:
        parser.error(f"--size {args.size} is too small: the models need at least 32 px")
    return args


def main(argv: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    """Print (and with --markdown write) the summary rows; returns them."""
    args = parse_args(argv)
    import paddle

    from ppcls_lite.arch import list_models
    from ppcls_lite.arch.registry import get_model_fn
    from ppcls_lite.arch.summary import summarize

    paddle.set_device("cpu")
    if args.markdown:
        rows = [summarize(name, 224) for name in list_models()]
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(model_zoo_markdown(rows), encoding="utf-8")
        print(f"wrote {args.markdown} ({len(rows)} models)")
        if not (args.name or args.all):
            return rows

    names = list_models() if args.all else [args.name]
    for name in names:
        get_model_fn(name)  # unknown name -> error listing the closest names, before any work
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(f"Paddle {paddle.__version__}, CPU, OMP_NUM_THREADS={threads}, input {args.size}x{args.size}, "
          f"latency = median of {args.runs} runs" if args.runs > 0 else "latency not measured (--runs 0)")
    header = f"{'model':<26}{'params (M)':>12}{f'MACs@{args.size} (M)':>16}"
    if args.runs > 0:
        header += f"{'bs1 (ms)':>11}{'bs8 (ms)':>11}"
    print(header)
    rows = []
    for name in names:
        row = summarize(name, args.size, args.runs)
        line = f"{name:<26}{row['params'] / 1e6:>12.3f}{row['macs'] / 1e6:>16.1f}"
        if args.runs > 0:
            line += f"{row['latency_bs1_ms']:>11.1f}{row['latency_bs8_ms']:>11.1f}"
        print(line, flush=True)
        rows.append(row)
    return rows


if __name__ == "__main__":
    try:
        main()
    except (KeyError, ValueError) as err:
        sys.exit(f"error: {err}")
