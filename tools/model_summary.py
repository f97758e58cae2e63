"""Parameters, MACs and CPU latency of the registered models; writes docs/MODEL_ZOO.md.

    python tools/model_summary.py MobileNetV3_large_x1_0             # params, MACs@224, latency bs1/bs8
    python tools/model_summary.py --all --size 160 --runs 0          # every model, no latency
    python tools/model_summary.py --all --markdown docs/MODEL_ZOO.md # params, MACs@224, reported top-1

Latency is the median of --runs eval-mode forward passes on the CPU after one warm-up pass; it uses as many
threads as Paddle is allowed (set OMP_NUM_THREADS to pin it). It is printed only, never written to the markdown.
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def parse_args(argv=None):
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


def main(argv=None):
    args = parse_args(argv)
    import paddle

    from ppcls_lite.arch import list_models
    from ppcls_lite.arch.registry import get_model_fn
    from ppcls_lite.arch.summary import model_zoo_markdown, summarize

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
