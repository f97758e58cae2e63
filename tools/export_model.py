"""Export a trained model for deployment (Paddle inference model + inference.yml, optionally ONNX).

    python tools/export_model.py -c CONFIG -o Global.pretrained_model=PREFIX -o Global.save_inference_dir=DIR [--onnx]
        [--safetensors] [--quantize int8 fp16] [--calib_images 256] [--mnn] [--onnx_input uint8]
        [--verify [--verify_images N]] [--force]

The export is built beside DIR and switched in whole at the end: an export stopped at any moment (kill -9
included) leaves DIR holding the previous export or the new one, complete. It stops when DIR holds files it did
not write (--force keeps them), and when another export writes into DIR.

Then predict with deploy/python/predict_cls.py --model_dir DIR (docs/DEPLOY.md).
"""
import os
import sys
from typing import List, Optional

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, REPO_ROOT)
PREDICT_SCRIPT = os.path.join(REPO_ROOT, "deploy", "python", "predict_cls.py")  # copied into the export folder

from ppcls_lite.utils.cli import run_cli, writes_to  # noqa: E402
from ppcls_lite.export import export_from_config  # noqa: E402
from ppcls_lite.config import get_config, parse_args  # noqa: E402


def _extra_args(parser):
    parser.add_argument("--onnx", action="store_true", help="also write DIR/model.onnx with paddle2onnx")
    parser.add_argument("--opset", type=int, default=13, help="ONNX opset (>= 13)")
    parser.add_argument("--allow-random", action="store_true",
                        help="export even without (complete) trained weights; for tests and speed measurements")
    parser.add_argument("--safetensors", action="store_true",
                        help="also write DIR/model.safetensors: the Global.pretrained_model weights without pickle, "
                             "safe to share (loads with Arch.pretrained / Global.pretrained_model)")
    parser.add_argument("--force", action="store_true",
                        help="export into a folder holding files an export did not write (your own scripts, results, "
                             "edited files): they are kept in the new export, never deleted")
    phone = parser.add_argument_group("phone / reduced precision (docs/DEPLOY.md; each implies --onnx)")
    phone.add_argument("--quantize", nargs="+", choices=("int8", "fp16"), default=[],
                       help="also write model_int8.onnx (static QDQ, calibrated) and/or model_fp16.onnx")
    phone.add_argument("--calib_images", type=int, default=256,
                       help="Train-list images used to calibrate --quantize int8 (default 256)")
    phone.add_argument("--mnn", action="store_true",
                       help="also convert to MNN: model.mnn, model_fp16.mnn, model_int8.mnn (pip install -e .[mobile])")
    phone.add_argument("--onnx_input", choices=("float32", "uint8"), default="float32",
                       help="uint8: also write model_uint8_input.onnx taking the resized/cropped uint8 HWC image")
    phone.add_argument("--verify", action="store_true",
                       help="run the Eval set through dygraph and every exported variant, write "
                            "export_report.json, exit 1 if a float32 export disagrees or no weights were loaded")
    phone.add_argument("--verify_images", type=int, help="with --verify: use only N Eval images (spread evenly)")


def main(argv: Optional[List[str]] = None) -> None:
    """Export the model of the config (see the module docstring)."""
    args = parse_args(description=__doc__.splitlines()[0], extra_args=_extra_args, argv=argv)
    config = get_config(args.config, overrides=args.override)
    with writes_to(config["Global"].get("save_inference_dir")):  # a write that hits a full disk names no file
        export_from_config(config, onnx=args.onnx, allow_random=args.allow_random, opset=args.opset,
                           quantize=args.quantize, mnn=args.mnn, onnx_input=args.onnx_input,
                           calib_images=args.calib_images, verify_report=args.verify,
                           verify_images=args.verify_images, predictor_script=PREDICT_SCRIPT,
                           safetensors=args.safetensors, force=args.force)


if __name__ == "__main__":
    sys.exit(run_cli(main, output_option="-o Global.save_inference_dir=DIR"))
