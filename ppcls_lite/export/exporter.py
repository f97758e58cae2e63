"""Turn a trained model + its config into a deployable directory.

    DIR/inference.json + inference.pdiparams   Paddle inference model (Paddle 3, PIR); older Paddle writes
                                               inference.pdmodel instead of .json
    DIR/inference.yml                          input shape, preprocessing ops, top-k, label list: all that
                                               deploy/python/predict_cls.py needs besides the model
    DIR/model.onnx                             with --onnx (paddle2onnx), same input and output as the Paddle model

The graph ends with a softmax (like PaddleClas's export), so both backends return class probabilities, the
same numbers tools/infer.py reports. `inference.yml` records this as `Global.output: probabilities`.
"""
import copy
import errno
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import paddle
import yaml

from ppcls_lite.arch.outputs import logits_of
from ppcls_lite.pipeline import (INFERENCE_OPERATORS, describe_operators, model_files, read_class_id_map,
                                 resolve_class_id_map_file, sha256_file)
from ppcls_lite.utils import logger
from ppcls_lite.utils.files import write_text_atomic

# The predictor runs the shared pipeline's ops; random training ops cannot be exported.
INFERENCE_OPS = tuple(INFERENCE_OPERATORS)
INFERENCE_YML = "inference.yml"
ONNX_FILE = "model.onnx"
INPUT_NAME = "x"
# Written by --quantize / --mnn / --onnx_input uint8 (ppcls_lite/export/variants.py); removed with the model.
VARIANT_FILES = ("model_fp16.onnx", "model_int8.onnx", "model.mnn", "model_fp16.mnn", "model_int8.mnn",
                 "model_uint8_input.onnx", "model_fp16_uint8_input.onnx", "model_int8_uint8_input.onnx",
                 "model_uint8_input.mnn", "model_fp16_uint8_input.mnn", "model_int8_uint8_input.mnn",
                 "export_report.json")


class ExportError(ValueError):
    """The config or weights cannot be exported as asked; the message says what to change."""


# ----------------------------------------------------------------------------------------------------------
# Preprocessing ops -> explicit, self-contained description


def normalize_transform_ops(op_list: List[Any]) -> List[Dict[str, Dict[str, Any]]]:
    """`Infer.transforms` -> list of `{OpName: {every parameter spelled out}}` that the predictor applies as is.

    The ops are built with the training code's registry and then describe themselves (`inference_params()`),
    so defaults are written explicitly and the exported directory does not depend on the defaults of the
    code that reads it. A missing final ToCHWImage is appended (the dataset transposes HWC output the same way).
    """
    from ppcls_lite.data.preprocess import create_operators

    if not op_list:
        raise ExportError("Infer.transforms is empty; the export needs the inference preprocessing, e.g. "
                          "DecodeImage, ResizeImage(resize_short), CropImage(size), NormalizeImage, ToCHWImage")
    try:
        ops = describe_operators(create_operators(op_list, what="Infer.transforms"))
    except ValueError as exc:
        raise ExportError(f"Infer.transforms: {exc}") from None
    for op in ops:
        (name, params), = op.items()
        if params.get("interpolation") == "random":
            raise ExportError(f"Infer.transforms {name}.interpolation='random' cannot be exported (prediction must "
                              f"be deterministic); use one of nearest, bilinear, area, bicubic, lanczos")
        if params.get("channel_first"):
            raise ExportError("Infer.transforms DecodeImage.channel_first=True is not supported for export; use "
                              "channel_first: False and a final ToCHWImage")
        if params.get("output_fp16") or params.get("channel_num", 3) != 3:
            raise ExportError("Infer.transforms NormalizeImage: output_fp16 / channel_num 4 cannot be exported "
                              "(the model takes 3-channel float32 input)")
    if "DecodeImage" not in ops[0]:
        raise ExportError("Infer.transforms must start with DecodeImage (the predictor reads image files)")
    if not any("ToCHWImage" in op for op in ops):
        ops.append({"ToCHWImage": {}})
    return ops


def input_size_from_transforms(ops: List[Dict[str, Any]]) -> Optional[Tuple[int, int]]:
    """(height, width) the preprocessing produces, or None when it depends on the image (resize_short only)."""
    size = None
    for op in ops:
        (name, params), = op.items()
        if name == "CropImage":
            size = params["size"]
        elif name == "ResizeImage":
            size = params.get("size")
    return None if size is None else (int(size[1]), int(size[0]))


# ----------------------------------------------------------------------------------------------------------
# inference.yml


def _label_list(class_id_map_file, class_num):
    """Names indexed by class id (the same file tools/infer.py reads), or None without a map file."""
    if not class_id_map_file:
        return None
    path = resolve_class_id_map_file(class_id_map_file)
    mapping = read_class_id_map(path)
    if class_num and len(mapping) != class_num:
        logger.warning(f"Infer.PostProcess.class_id_map_file {path} has {len(mapping)} names but the model has "
                       f"{class_num} classes; ids without a name get ''")
    count = class_num or (max(mapping) + 1 if mapping else 0)
    return [mapping.get(i, "") for i in range(count)]


def build_inference_config(transform_ops: List[Dict[str, Any]], input_shape: Sequence[int], class_num: Optional[int],
                           topk: int = 1, label_list: Optional[List[str]] = None, model_name: Optional[str] = None,
                           output: str = "probabilities", model_file: str = "inference.json",
                           params_file: str = "inference.pdiparams", onnx_file: Optional[str] = None,
                           weights: Optional[str] = None) -> Dict[str, Any]:
    """The content of inference.yml (a plain dict)."""
    from ppcls_lite import __version__ as ppcls_lite_version

    versions = {"paddle": paddle.__version__, "ppcls_lite": ppcls_lite_version}
    return {
        "Global": {
            "model_name": model_name,
            "class_num": int(class_num) if class_num else None,
            "input_shape": [int(v) for v in input_shape],  # C, H, W; the batch dimension is dynamic
            "input_name": INPUT_NAME,
            "output": output,  # 'probabilities' (softmax in the graph) or 'logits'
            "model_file": model_file,
            "params_file": params_file,
            "onnx_file": onnx_file,
            "weights": weights,
            "exported_with": versions,
        },
        "PreProcess": {"transform_ops": copy.deepcopy(transform_ops)},
        "PostProcess": {"Topk": {"topk": int(topk)}, "label_list": label_list},
    }


def _checksums(save_dir):
    return {name: sha256_file(Path(save_dir) / name) for name in model_files(save_dir)}


def write_checksums(save_dir: Union[str, Path]) -> Dict[str, str]:
    """(Re)hash every model file present in `save_dir` (inference.json/.pdiparams, *.onnx, *.mnn) into
    inference.yml's `Global.sha256`; the predictor checks the files its backend loads. Returns the mapping."""
    path = Path(save_dir) / INFERENCE_YML
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["Global"]["sha256"] = _checksums(save_dir)
    _write_yaml(path, config)
    return config["Global"]["sha256"]


PIPELINE_SOURCE = Path(__file__).resolve().parents[1] / "pipeline"
PREDICTOR_SOURCE = Path(__file__).resolve().parents[2] / "deploy" / "python" / "predict_cls.py"


def copy_pipeline(save_dir: Union[str, Path]) -> None:
    """Copy the shared preprocessing package (and, from a source checkout, the predictor script) into the export
    folder, so `python DIR/predict_cls.py --model_dir DIR` runs the same code that trained the model."""
    import shutil

    target = Path(save_dir) / "pipeline"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(PIPELINE_SOURCE, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if PREDICTOR_SOURCE.is_file():
        shutil.copy2(PREDICTOR_SOURCE, Path(save_dir) / PREDICTOR_SOURCE.name)


class _ReadableDumper(yaml.SafeDumper):
    """Short lists of numbers on one line (mean, std, input_shape); long lists (label_list) one item per line."""

    def represent_list(self, data):
        flow = len(data) <= 8 and all(isinstance(v, (int, float)) for v in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_ReadableDumper.add_representer(list, _ReadableDumper.represent_list)


def _write_yaml(path, data):
    header = ("# Written by tools/export_model.py; read by deploy/python/predict_cls.py (see docs/DEPLOY.md).\n"
              "# PreProcess ops run in order on each image; input_shape is C,H,W of one image.\n")
    text = yaml.dump(data, Dumper=_ReadableDumper, sort_keys=False, allow_unicode=True, width=120)
    write_text_atomic(path, header + text)


# ----------------------------------------------------------------------------------------------------------
# Paddle export


class _InferenceNet(paddle.nn.Layer):
    """The trained model plus what inference needs: pick the logits from a dict output, then softmax."""

    def __init__(self, model, output="probabilities"):
        super().__init__()
        self.model = model
        self.output = output

    def forward(self, x):
        out = logits_of(self.model(x))
        if self.output == "probabilities":
            out = paddle.nn.functional.softmax(out, axis=-1)
        return out


def _paddle_model_file(save_dir):
    for name in ("inference.json", "inference.pdmodel"):
        if (Path(save_dir) / name).exists():
            return name
    raise ExportError(f"paddle.jit.save wrote neither inference.json nor inference.pdmodel in {save_dir}")


def _check_room_for_export(save_dir, model, onnx):
    """Refuse before anything is removed when the disk cannot hold the new export even after the files of the
    previous one in `save_dir` are replaced: on a full disk the previous export then stays as it was."""
    params_bytes = sum(int(np.prod(p.shape)) * p.element_size() for p in model.parameters())
    needed = params_bytes * (2 if onnx else 1) + (256 << 10)  # weights (+ their ONNX copy) and the small files
    replaced = sum(p.stat().st_size for p in Path(save_dir).iterdir() if p.is_file())
    free = shutil.disk_usage(save_dir).free
    if free + replaced < needed:
        reason = f"{os.strerror(errno.ENOSPC)} (the export needs about {needed / 1e6:.1f} MB, {free / 1e6:.1f} MB free)"
        raise OSError(errno.ENOSPC, reason, str(Path(save_dir).resolve()))


def _check_paddle_files_complete(save_dir, model_file, net):
    """paddle.jit.save does not report failed writes: a full disk leaves empty or short files. The weights file
    holds every parameter's raw bytes, so it is at least their total size; the model file is never empty."""
    params_bytes = sum(int(np.prod(p.shape)) * p.element_size() for p in net.parameters())
    for name, minimum in ((model_file, 1), ("inference.pdiparams", params_bytes)):
        path = Path(save_dir) / name
        size = path.stat().st_size
        if size >= minimum:
            continue
        if shutil.disk_usage(save_dir).free < params_bytes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path.resolve()))
        raise ExportError(f"paddle.jit.save wrote an incomplete {path} ({size} bytes, expected at least "
                          f"{minimum}); check the disk and export again")


def export_model(model: paddle.nn.Layer, save_dir: Union[str, Path], input_size: Tuple[int, int],
                 transform_ops: List[Dict[str, Any]], class_num: Optional[int], topk: int = 1,
                 label_list: Optional[List[str]] = None, model_name: Optional[str] = None, onnx: bool = False,
                 opset: int = 13, output: str = "probabilities", weights: Optional[str] = None) -> Dict[str, Any]:
    """Save `model` (eval mode is set here) as a Paddle inference model + inference.yml (+ model.onnx).

    `input_size` is (H, W); `transform_ops` are already normalised (see normalize_transform_ops).
    Returns the inference config dict that was written.
    """
    if output not in ("probabilities", "logits"):
        raise ValueError(f"output must be 'probabilities' or 'logits', got {output!r}")
    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    _check_room_for_export(save_dir, model, onnx)
    # Remove a stale model of the other format so the directory is unambiguous.
    for stale in ("inference.json", "inference.pdmodel", "inference.pdiparams", ONNX_FILE, INFERENCE_YML,
                  *VARIANT_FILES):
        (save_dir / stale).unlink(missing_ok=True)
    height, width = input_size
    net = _InferenceNet(model, output)
    net.eval()
    spec = paddle.static.InputSpec([None, 3, int(height), int(width)], "float32", INPUT_NAME)
    paddle.jit.save(net, str(save_dir / "inference"), input_spec=[spec])
    model_file = _paddle_model_file(save_dir)
    _check_paddle_files_complete(save_dir, model_file, net)
    onnx_file = None
    if onnx:
        export_onnx(save_dir, model_file=model_file, opset=opset)
        onnx_file = ONNX_FILE
    config = build_inference_config(transform_ops, [3, height, width], class_num, topk=topk,
                                    label_list=label_list, model_name=model_name, output=output,
                                    model_file=model_file, params_file="inference.pdiparams",
                                    onnx_file=onnx_file, weights=weights)
    copy_pipeline(save_dir)
    config["Global"]["sha256"] = _checksums(save_dir)
    _write_yaml(save_dir / INFERENCE_YML, config)  # last: a directory with inference.yml is complete
    return config


def export_onnx(save_dir: Union[str, Path], model_file: str = "inference.json", opset: int = 13) -> Path:
    """Convert the Paddle inference model in `save_dir` to `save_dir/model.onnx` with paddle2onnx's Python API.

    Polygraphy folding is turned off: paddle2onnx would otherwise let it pip-install onnx_graphsurgeon at run
    time, and onnxruntime folds constants itself when it loads the model.
    """
    if opset < 13:
        raise ValueError(f"ONNX opset must be >= 13 (HardSwish/HardSigmoid and Softmax semantics), got {opset}")
    try:
        import paddle2onnx
    except ImportError:
        raise ExportError("--onnx needs paddle2onnx: pip install -e .[deploy]") from None
    save_dir = Path(save_dir)
    model_bytes = paddle2onnx.export(str(save_dir / model_file), str(save_dir / "inference.pdiparams"),
                                     save_file=None, opset_version=opset, auto_upgrade_opset=True,
                                     enable_onnx_checker=True, optimize_tool="none")
    if not model_bytes:  # paddle2onnx logs the error and returns None instead of raising
        raise ExportError(f"paddle2onnx could not convert {save_dir / model_file}; see its error above")
    target = save_dir / ONNX_FILE
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(model_bytes)
    os.replace(tmp, target)
    from .onnx_tools import clean_onnx_file
    clean_onnx_file(target)  # no unused constants (onnxruntime warnings), batch axis named 'batch'
    return target


def run_paddle_inference(save_dir: Union[str, Path], x: np.ndarray,
                         info: Optional[Dict[str, Any]] = None) -> np.ndarray:
    """Run the exported Paddle inference model of `save_dir` on CPU on the float32 batch `x`; return its output.

    `info` is the `Global` section of inference.yml (read from `save_dir` when not given).
    """
    from paddle import inference as paddle_infer

    save_dir = Path(save_dir)
    if info is None:
        info = yaml.safe_load((save_dir / INFERENCE_YML).read_text(encoding="utf-8"))["Global"]
    cfg = paddle_infer.Config(str(save_dir / info["model_file"]), str(save_dir / info["params_file"]))
    cfg.disable_gpu()
    cfg.disable_glog_info()
    predictor = paddle_infer.create_predictor(cfg)
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.reshape(x.shape)
    handle.copy_from_cpu(x)
    predictor.run()
    return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()


def verify_onnx(save_dir: Union[str, Path], batch_size: int = 2, seed: int = 0) -> float:
    """Run the Paddle and ONNX models of `save_dir` on the same random batch; return max |difference| of outputs."""
    import onnxruntime as ort

    save_dir = Path(save_dir)
    info = yaml.safe_load((save_dir / INFERENCE_YML).read_text(encoding="utf-8"))["Global"]
    x = np.random.default_rng(seed).standard_normal((batch_size, *info["input_shape"])).astype("float32")
    paddle_out = run_paddle_inference(save_dir, x, info)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(save_dir / info["onnx_file"]), options, providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: x})[0]
    return float(np.abs(paddle_out - onnx_out).max())


# ----------------------------------------------------------------------------------------------------------
# From a config (tools/export_model.py)


def _load_weights(model, prefix, allow_random):
    from ppcls_lite.utils.save_load import load_pretrained
    report = load_pretrained(model, prefix)
    missing = list(report.get("missing", []))
    mismatched = list(report.get("mismatched", []))
    if (missing or mismatched) and not allow_random:
        details = []
        if missing:
            details.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if mismatched:
            details.append(f"shape mismatches {mismatched[:5]}")
        raise ExportError(f"{prefix}: the weights do not cover the model ({'; '.join(details)}), so part of the "
                          f"exported model would be random. Check Arch.name/Arch.class_num against the checkpoint, "
                          f"or pass --allow-random to export anyway")
    return not missing and not mismatched


def export_from_config(config: Dict[str, Any], save_dir: Optional[str] = None, onnx: bool = False,
                       allow_random: bool = False, opset: int = 13, verify: bool = True,
                       quantize: Sequence[str] = (), mnn: bool = False, onnx_input: str = "float32",
                       calib_images: int = 256, verify_report: bool = False,
                       verify_images: Optional[int] = None) -> Dict[str, Any]:
    """Build the model of `config`, load `Global.pretrained_model`, export to `save_dir`
    (default `Global.save_inference_dir`). Refuses random weights unless `allow_random`.

    `quantize` (fp16/int8), `mnn` and `onnx_input='uint8'` add model variants (ppcls_lite/export/variants.py;
    they imply `onnx`); `verify_report` runs --verify (ppcls_lite/export/verify.py) and raises ExportError
    when the export does not match the dygraph model."""
    from ppcls_lite.arch import build_model

    global_cfg = config.get("Global") or {}
    save_dir = save_dir or global_cfg.get("save_inference_dir") or "./inference"
    arch = dict(config.get("Arch") or {})
    weights = global_cfg.get("pretrained_model")
    if not weights and not arch.get("pretrained") and not allow_random:
        example = os.path.join(global_cfg.get("output_dir") or "./output/", str(arch.get("name")), "best_model")
        raise ExportError(f"no trained weights to export: set -o Global.pretrained_model=PREFIX (a checkpoint "
                          f"path without .pdparams, e.g. {example}), or pass --allow-random to export random "
                          f"weights (for tests and speed measurements only)")
    infer = config.get("Infer") or {}
    ops = normalize_transform_ops(infer.get("transforms"))
    size = input_size_from_transforms(ops)
    image_shape = global_cfg.get("image_shape")
    if size is None:
        if not image_shape:
            raise ExportError("cannot tell the model input size: Infer.transforms has no CropImage/ResizeImage "
                              "size and Global.image_shape is not set")
        size = (int(image_shape[1]), int(image_shape[2]))
    elif image_shape and tuple(int(v) for v in image_shape[1:]) != size:
        logger.warning(f"Global.image_shape {list(image_shape)} differs from the {size[0]}x{size[1]} images "
                       f"Infer.transforms produces; exporting for {size[0]}x{size[1]} (what prediction feeds)")

    onnx = onnx or bool(quantize) or mnn or onnx_input == "uint8"
    model = build_model(arch)
    weights_loaded = bool(arch.get("pretrained"))
    if weights:
        weights_loaded = _load_weights(model, weights, allow_random)
    elif not arch.get("pretrained"):
        logger.warning("exporting RANDOM weights (--allow-random): predictions will be meaningless")

    postprocess = dict(infer.get("PostProcess") or {})
    if postprocess.get("name", "Topk") != "Topk":
        raise ExportError(f"Infer.PostProcess.name={postprocess.get('name')!r}; only Topk can be exported")
    class_num = arch.get("class_num", 1000)
    topk = min(int(postprocess.get("topk", 1)), class_num)
    labels = _label_list(postprocess.get("class_id_map_file"), class_num)
    result = export_model(model, save_dir, size, ops, class_num, topk=topk, label_list=labels,
                          model_name=arch.get("name"), onnx=onnx, opset=opset,
                          weights=str(weights) if weights else None)
    logger.info(f"exported {arch.get('name')} ({size[0]}x{size[1]}) to {save_dir}: "
                f"{result['Global']['model_file']}, inference.pdiparams, {INFERENCE_YML}"
                + (f", {ONNX_FILE}" if onnx else ""))
    if onnx and verify:
        diff = verify_onnx(save_dir)
        logger.info(f"ONNX check: max |paddle - onnxruntime| = {diff:.2e} on a random batch")
        if diff > 1e-3:
            raise ExportError(f"the ONNX model in {save_dir} disagrees with the Paddle model (max difference "
                              f"{diff:.2e}); do not deploy it — report the paddle2onnx version and model name")
    if quantize or mnn or onnx_input != "float32":
        from .variants import write_variants
        write_variants(save_dir, config, quantize=quantize, mnn=mnn, onnx_input=onnx_input,
                       calib_images=calib_images)
        write_checksums(save_dir)  # the variant files too
        result = yaml.safe_load((Path(save_dir) / INFERENCE_YML).read_text(encoding="utf-8"))
    if verify_report:
        from .verify import verify_from_config
        verify_from_config(save_dir, config, model, weights_loaded, verify_images=verify_images)
    return result
