"""Export a trained model for deployment (Paddle inference model + inference.yml, optionally ONNX).

    python tools/export_model.py -c CONFIG -o Global.pretrained_model=PREFIX -o Global.save_inference_dir=DIR [--onnx]
        [--safetensors]

Then predict with deploy/python/predict_cls.py --model_dir DIR (docs/DEPLOY.md).
"""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls_lite.utils.cli import run_cli, writes_to  # noqa: E402
from ppcls_lite.export import export_from_config  # noqa: E402
from ppcls_lite.utils.config import get_config, parse_args  # noqa: E402


def _extra_args(parser):
    parser.add_argument("--onnx", action="store_true", help="also write DIR/model.onnx with paddle2onnx")
    parser.add_argument("--opset", type=int, default=13, help="ONNX opset (>= 13)")
    parser.add_argument("--allow-random", action="store_true",
                        help="export even without (complete) trained weights; for tests and speed measurements")
    parser.add_argument("--safetensors", action="store_true",
                        help="also write DIR/model.safetensors: the Global.pretrained_model weights without pickle, "
                             "safe to share (loads with Arch.pretrained / Global.pretrained_model)")


def _write_safetensors(config):
    from ppcls_lite.utils import logger
    from ppcls_lite.utils.save_load import read_state_dict, resolve_weights_path, save_safetensors

    weights = config["Global"].get("pretrained_model")
    if not weights:
        raise ValueError("--safetensors copies the trained weights: set -o Global.pretrained_model=PREFIX")
    target = os.path.join(config["Global"].get("save_inference_dir") or "./inference", "model.safetensors")
    save_safetensors(read_state_dict(resolve_weights_path(weights)), target)
    logger.info(f"wrote {target} (the weights of {weights}, no pickle inside)")


def main(argv=None):
    args = parse_args(description=__doc__.splitlines()[0], extra_args=_extra_args, argv=argv)
    config = get_config(args.config, overrides=args.override)
    with writes_to(config["Global"].get("save_inference_dir")):  # a write that hits a full disk names no file
        export_from_config(config, onnx=args.onnx, allow_random=args.allow_random, opset=args.opset)
        if args.safetensors:
            _write_safetensors(config)


if __name__ == "__main__":
    sys.exit(run_cli(main, output_option="-o Global.save_inference_dir=DIR"))
