"""The Paddle inference model of an export: inference.json (Paddle 3, PIR; older Paddle .pdmodel) + .pdiparams.

The graph ends with a softmax (like PaddleClas's export), so every backend returns class probabilities, the
same numbers tools/infer.py reports; inference.yml records this as `Global.output: probabilities`. A retrieval
model (RecModel with `infer_output_key: features`) is exported without its head: the graph returns the raw
embedding (`Global.output: features`; the predictor's Embedding post-process normalises it as the config says).
"""
import errno
import os
import shutil
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import paddle

from ppcls_lite.arch.outputs import logits_of

from .folder import INPUT_NAME, PADDLE_MODEL_FILES, PADDLE_PARAMS_FILE, ExportError, read_inference_config

OUTPUTS = ("probabilities", "logits", "features")


class InferenceNet(paddle.nn.Layer):
    """The trained model plus what inference needs: pick the logits from a dict output, then softmax (or, for
    `output="features"`, the embedding of a RecModel, computed without its head)."""

    def __init__(self, model: paddle.nn.Layer, output: str = "probabilities") -> None:
        super().__init__()
        if output == "features":
            if not hasattr(model, "embedding_layer"):
                raise ExportError(f"output 'features' needs a retrieval model (RecModel), got {type(model).__name__}")
            model = model.embedding_layer()  # only what the embedding needs: its weights are the params file
        self.model = model
        self.output = output

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """Images [N, C, H, W] -> probabilities (or logits) [N, classes], or features [N, D]."""
        if self.output == "features":
            return self.model(x)
        out = logits_of(self.model(x))
        if self.output == "probabilities":
            out = paddle.nn.functional.softmax(out, axis=-1)
        return out


def parameter_bytes(model: paddle.nn.Layer) -> int:
    """The raw size of every parameter of `model`: a lower bound of the weights file."""
    return sum(int(np.prod(p.shape)) * p.element_size() for p in model.parameters())


def check_room_for_export(save_dir: Union[str, Path], model: paddle.nn.Layer, onnx: bool) -> None:
    """Refuse before anything is removed when the disk cannot hold the new export even after the files of the
    previous one in `save_dir` are replaced: on a full disk the previous export then stays as it was."""
    needed = parameter_bytes(model) * (2 if onnx else 1) + (256 << 10)  # weights (+ ONNX copy) and small files
    replaced = sum(p.stat().st_size for p in Path(save_dir).iterdir() if p.is_file())
    free = shutil.disk_usage(save_dir).free
    if free + replaced < needed:
        reason = f"{os.strerror(errno.ENOSPC)} (the export needs about {needed / 1e6:.1f} MB, {free / 1e6:.1f} MB free)"
        raise OSError(errno.ENOSPC, reason, str(Path(save_dir).resolve()))


def _paddle_model_file(save_dir):
    for name in PADDLE_MODEL_FILES:
        if (Path(save_dir) / name).exists():
            return name
    raise ExportError(f"paddle.jit.save wrote neither inference.json nor inference.pdmodel in {save_dir}")


def _check_paddle_files_complete(save_dir, model_file, net):
    """paddle.jit.save does not report failed writes: a full disk leaves empty or short files. The weights file
    holds every parameter's raw bytes, so it is at least their total size; the model file is never empty."""
    params_bytes = parameter_bytes(net)
    for name, minimum in ((model_file, 1), (PADDLE_PARAMS_FILE, params_bytes)):
        path = Path(save_dir) / name
        size = path.stat().st_size
        if size >= minimum:
            continue
        if shutil.disk_usage(save_dir).free < params_bytes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path.resolve()))
        raise ExportError(f"paddle.jit.save wrote an incomplete {path} ({size} bytes, expected at least "
                          f"{minimum}); check the disk and export again")


def save_paddle_model(model: paddle.nn.Layer, save_dir: Union[str, Path], input_size: Tuple[int, int],
                      output: str = "probabilities") -> str:
    """Write `model` (eval mode is set here) + softmax as save_dir/inference.json (or .pdmodel) + .pdiparams for
    [N, 3, H, W] float32 input named `x` (`input_size` = (H, W)); returns the model file's name."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    height, width = input_size
    net = InferenceNet(model, output)
    net.eval()
    spec = paddle.static.InputSpec([None, 3, int(height), int(width)], "float32", INPUT_NAME)
    paddle.jit.save(net, str(Path(save_dir) / Path(PADDLE_PARAMS_FILE).stem), input_spec=[spec])
    model_file = _paddle_model_file(save_dir)
    _check_paddle_files_complete(save_dir, model_file, net)
    return model_file


def run_paddle_inference(save_dir: Union[str, Path], x: np.ndarray,
                         info: Optional[Dict[str, Any]] = None) -> np.ndarray:
    """Run the exported Paddle inference model of `save_dir` on CPU on the float32 batch `x`; return its output.

    `info` is the `Global` section of inference.yml (read from `save_dir` when not given).
    """
    from paddle import inference as paddle_infer

    save_dir = Path(save_dir)
    if info is None:
        info = read_inference_config(save_dir)["Global"]
    cfg = paddle_infer.Config(str(save_dir / info["model_file"]), str(save_dir / info["params_file"]))
    cfg.disable_gpu()
    cfg.disable_glog_info()
    predictor = paddle_infer.create_predictor(cfg)
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.reshape(x.shape)
    handle.copy_from_cpu(x)
    predictor.run()
    return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
