"""The export command: a trained model + its config -> a deployable folder (what tools/export_model.py runs).

    export_from_config   build the model of a config, load its weights, export, add variants, verify
    export_model         a built model -> Paddle inference model + inference.yml (+ model.onnx)

It puts together the modules below it, which never import it: folder (file names, inference.yml, checksums)
<- inference_yml, paddle_model, onnx_tools, mnn, bundle, samples <- quantize, qat <- variants <- verify <- exporter.
The exported folder is everything deploy/python/predict_cls.py needs; see docs/DEPLOY.md.
"""
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import paddle

from ppcls_lite.arch import arch_class_num, build_model, is_retrieval_model, rec_class_num
from ppcls_lite.engine.task import inference_transforms, infer_section, output_activation
from ppcls_lite.pipeline import build_postprocess
from ppcls_lite.slim import apply_slim, is_quantized
from ppcls_lite.utils import logger
from ppcls_lite.utils.save_load import load_pretrained, read_state_dict, resolve_weights_path, save_safetensors
from ppcls_lite.utils.schema import GLOBAL_DEFAULTS

from .bundle import write_predictor_bundle
from .folder import (INFERENCE_YML, ONNX_FILE, PADDLE_PARAMS_FILE, SAFETENSORS_FILE, ExportError, model_checksums,
                     read_inference_config, write_checksums, write_inference_config)
from .inference_yml import build_inference_config, fit_label_list, input_size_from_transforms, normalize_transform_ops
from .onnx_tools import export_onnx
from .paddle_model import check_room_for_export, save_paddle_model
from .qat import save_qat_model, write_qat_mnn
from .staging import ExportRejected, StagedExport, pause_point
from .variants import write_variants
from .verify import verify_from_config, verify_onnx


def export_model(model: paddle.nn.Layer, save_dir: Union[str, Path], input_size: Tuple[int, int],
                 transform_ops: List[Dict[str, Any]], class_num: Optional[int], topk: int = 1,
                 label_list: Optional[List[str]] = None, model_name: Optional[str] = None, onnx: bool = False,
                 opset: int = 13, output: str = "probabilities", weights: Optional[str] = None,
                 predictor_script: Optional[Union[str, Path]] = None, force: bool = False,
                 postprocess: Optional[Dict[str, Any]] = None, activation: str = "softmax") -> Dict[str, Any]:
    """Save `model` (eval mode is set here) as a Paddle inference model + inference.yml (+ model.onnx), with the
    predictor's code (+ `predictor_script` as predict_cls.py) so the folder runs on its own.

    `input_size` is (H, W); `transform_ops` are already normalised (see normalize_transform_ops). `output`
    "features" exports a RecModel's embedding. `postprocess` is inference.yml's `{name: parameters}` (default Topk
    with `topk`; `{Embedding: {...}}` for features); `activation` softmax or sigmoid (multi-label) ends the graph. The
    export is built beside `save_dir` and switched in whole (staging.py); `force` keeps files in `save_dir` that an
    export did not write instead of refusing. Returns the inference config dict that was written.
    """
    with StagedExport(save_dir, force=force) as staging:
        return _write_export(model, staging, input_size, transform_ops, class_num, topk=topk, label_list=label_list,
                             model_name=model_name, onnx=onnx, opset=opset, output=output, weights=weights,
                             predictor_script=predictor_script, postprocess=postprocess, activation=activation)


def _write_export(model, folder, input_size, transform_ops, class_num, topk=1, label_list=None, model_name=None,
                  onnx=False, opset=13, output="probabilities", weights=None, predictor_script=None,
                  postprocess=None, activation="softmax"):
    """export_model's files, written into the new (staging) folder `folder`."""
    check_room_for_export(folder, model, onnx)
    quantized = is_quantized(model)
    if quantized:  # Slim.quant: the int8 files replace the float32 ones
        if output == "probabilities" and activation != "softmax":
            # the int8 model is saved in Paddle's older program format (qat.py), where Paddle 3.3 cannot trace sigmoid
            raise ExportError("a multi-label (sigmoid) model trained with Slim.quant cannot be exported: Paddle "
                              "3.3's older program format, which the int8 model needs, has no sigmoid; train it "
                              "without Slim.quant and use --quantize int8 on the float export")
        model_file, onnx_file = save_qat_model(model, folder, input_size, output, onnx=onnx, opset=opset)
        pause_point("building")
    else:
        model_file = save_paddle_model(model, folder, input_size, output, activation)
        pause_point("building")
        onnx_file = export_onnx(folder, model_file=model_file, opset=opset).name if onnx else None
    height, width = input_size
    config = build_inference_config(transform_ops, [3, height, width], class_num, topk=topk,
                                    label_list=label_list, model_name=model_name, output=output,
                                    model_file=model_file, params_file=PADDLE_PARAMS_FILE,
                                    onnx_file=onnx_file, weights=weights, postprocess=postprocess,
                                    activation=activation)
    if quantized:
        config["Global"]["quantization"] = {"qat": {"weights": "int8", "activations": "int8", "files": [
            name for name in (model_file, onnx_file) if name]}}
    write_predictor_bundle(folder, predictor_script)
    config["Global"]["sha256"] = model_checksums(folder)
    write_inference_config(folder, config)
    return config


def _load_weights(model, prefix, allow_random):
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


def _global(global_cfg: Dict[str, Any], key: str) -> Any:
    """Global.<key>, its default when absent or null."""
    value = global_cfg.get(key)
    return GLOBAL_DEFAULTS[key] if value is None else value


def _sub_model_name(arch: Dict[str, Any], sub_model: str) -> str:
    """The Arch name of the DistillationModel's sub-model `sub_model` (e.g. MobileNetV3_small_x1_0)."""
    for item in arch.get("models") or []:
        if sub_model in item:
            return str(item[sub_model].get("name"))
    return sub_model


def _room_needed(weights, onnx, quantize, mnn, onnx_input, safetensors):
    """About the bytes an export takes, from the size of its weights file (None without one)."""
    try:
        size = os.path.getsize(resolve_weights_path(weights)) if weights else None
    except OSError:
        return None
    if size is None:
        return None
    onnx_files = size * (1 + 0.5 * ("fp16" in quantize) + 0.25 * ("int8" in quantize)) if onnx else 0
    mnn_files = size * (1 + 0.5 + 0.25) if mnn else 0  # fp32, fp16 and int8 weights
    uint8_files = onnx_files + mnn_files if onnx_input == "uint8" else 0
    return int(size * (1 + bool(safetensors)) + onnx_files + mnn_files + uint8_files) + (256 << 10)


def _output_head(config: Dict[str, Any], model: paddle.nn.Layer, class_num: Optional[int]):
    """(Global.output, inference.yml PostProcess {name: params}, class names, activation) of an export: a retrieval
    model's embedding (finished by the predictor as Global.feature_* say), else the pipeline's post-process that
    tools/infer.py runs (engine/task.py's default when the config has none) over softmax or sigmoid scores."""
    global_cfg, arch = config.get("Global") or {}, config.get("Arch") or {}
    if is_retrieval_model(model):
        return "features", {"Embedding": {"normalize": bool(_global(global_cfg, "feature_normalize")),
                                          "binarize": _global(global_cfg, "feature_binarize")}}, None, "softmax"
    infer = infer_section(config, announce=False)
    postprocess = build_postprocess(infer["PostProcess"])
    # PaddleClas's DistillationPostProcess: the export holds only the deployed sub-model, so its `func` is written
    postprocess = getattr(postprocess, "func", postprocess)
    params = postprocess.inference_params()
    if "topk" in params:
        params["topk"] = min(int(params["topk"]), class_num or 1)
    labels = fit_label_list(postprocess.label_list, class_num, infer["PostProcess"].get("class_id_map_file", ""))
    activation = output_activation(config)
    # PaddleClas: Arch.infer_add_softmax False exports the logits (multi-label models always end with the sigmoid)
    output = "probabilities" if arch.get("infer_add_softmax", True) or activation == "sigmoid" else "logits"
    return output, {type(postprocess).__name__: params}, labels, activation


def export_from_config(config: Dict[str, Any], save_dir: Optional[str] = None, onnx: bool = False,
                       allow_random: bool = False, opset: int = 13, verify: bool = True,
                       quantize: Sequence[str] = (), mnn: bool = False, onnx_input: str = "float32",
                       calib_images: int = 256, verify_report: bool = False, verify_images: Optional[int] = None,
                       predictor_script: Optional[Union[str, Path]] = None, safetensors: bool = False,
                       force: bool = False) -> Dict[str, Any]:
    """Build the model of `config`, load `Global.pretrained_model`, export to `save_dir`
    (default `Global.save_inference_dir`). Refuses random weights unless `allow_random`.

    `quantize` (fp16/int8), `mnn` and `onnx_input='uint8'` add model variants (variants.py; they imply `onnx`);
    `verify` runs the quick ONNX check; `verify_report` runs --verify (verify.py) and raises ExportError
    when the export does not match the dygraph model. `predictor_script` is copied in as predict_cls.py;
    `safetensors` adds model.safetensors (the weights without pickle). Everything is built beside `save_dir` and
    switched in at the end (staging.py); a failed check keeps the export apart as `<save_dir>.rejected`. `force`
    keeps files in `save_dir` that an export did not write instead of refusing."""
    global_cfg = config.get("Global") or {}
    save_dir = save_dir or global_cfg.get("save_inference_dir") or "./inference"
    arch = dict(config.get("Arch") or {})
    weights = global_cfg.get("pretrained_model")
    if not weights and not arch.get("pretrained") and not allow_random:
        example = os.path.join(global_cfg.get("output_dir") or "./output/", str(arch.get("name")), "best_model")
        raise ExportError(f"no trained weights to export: set -o Global.pretrained_model=PREFIX (a checkpoint "
                          f"path without .pdparams, e.g. {example}), or pass --allow-random to export random "
                          f"weights (for tests and speed measurements only)")
    if safetensors and not weights:
        raise ExportError("--safetensors copies the trained weights: set -o Global.pretrained_model=PREFIX")
    op_list, ops_from = inference_transforms(config)
    if ops_from != "Infer.transforms":
        logger.info(f"the config has no Infer.transforms: exporting the preprocessing of {ops_from}")
    ops = normalize_transform_ops(op_list)
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
    if weights:  # the trained weights replace Arch.pretrained's ImageNet ones: no download
        arch["pretrained"] = False
    class_num = rec_class_num(arch) if arch.get("name") == "RecModel" else arch_class_num(arch)
    needed = _room_needed(weights, onnx, quantize, mnn, onnx_input, safetensors)
    with StagedExport(save_dir, force=force, needed=needed) as staging:  # the folder's lock and checks stop at once
        model = build_model(arch)
        apply_slim(model, config.get("Slim"))  # a pruned / QAT checkpoint fits only the slimmed model
        quantized = is_quantized(model)
        if quantized and (quantize or onnx_input != "float32"):
            flag = f"--quantize {','.join(quantize)}" if quantize else "--onnx_input uint8"
            raise ExportError(f"{flag}: this model was trained with Slim.quant, so the export is already int8 "
                              f"(inference.pdmodel and model.onnx with quantize/dequantize ops; --mnn adds "
                              f"model_int8.mnn); the uint8-input variant is not built for it. Drop {flag.split()[0]}")
        weights_loaded = bool(arch.get("pretrained"))
        if weights:
            weights_loaded = _load_weights(model, weights, allow_random)
        elif not arch.get("pretrained"):
            logger.warning("exporting RANDOM weights (--allow-random): predictions will be meaningless")
        model_name = arch.get("name")
        if hasattr(model, "infer_model"):  # a DistillationModel: only the deployed sub-model (the student) is exported
            sub_model = model.infer_model_name
            model_name, model = _sub_model_name(arch, sub_model), model.infer_model()
            logger.info(f"exporting sub-model {sub_model} ({model_name}) of the DistillationModel; the others stay out")
        output, postprocess, labels, activation = _output_head(config, model, class_num)
        result = _write_export(model, staging, size, ops, class_num, topk=1, label_list=labels,
                               model_name=model_name, onnx=onnx, opset=opset, output=output,
                               weights=str(weights) if weights else None, predictor_script=predictor_script,
                               postprocess=postprocess, activation=activation)
        if onnx and verify:
            diff = verify_onnx(staging)
            logger.info(f"ONNX check: max |paddle - onnxruntime| = {diff:.2e} on a random batch")
            if diff > 1e-3:
                raise ExportRejected(f"the ONNX model disagrees with the Paddle model (max difference {diff:.2e}); "
                                     f"do not deploy it — report the paddle2onnx version and model name")
        if quantized and mnn:
            write_qat_mnn(staging)
            write_checksums(staging)
            result = read_inference_config(staging)
        elif quantize or mnn or onnx_input != "float32":
            write_variants(staging, config, quantize=quantize, mnn=mnn, onnx_input=onnx_input,
                           calib_images=calib_images)
            write_checksums(staging)  # the variant files too
            result = read_inference_config(staging)
        if safetensors:
            save_safetensors(read_state_dict(resolve_weights_path(weights)), str(staging / SAFETENSORS_FILE))
        if verify_report:
            try:
                verify_from_config(staging, config, model, weights_loaded, verify_images=verify_images)
            except ExportError as exc:
                raise ExportRejected(str(exc)) from exc
    shape = result["Global"]["input_shape"]  # what the saved model takes, as inference.yml records it
    logger.info(f"exported {model_name} for input {shape} (C, H, W: the images Infer.transforms produces) to "
                f"{save_dir}: "
                f"{result['Global']['model_file']}, inference.pdiparams, {INFERENCE_YML}"
                + (f", {ONNX_FILE}" if onnx else "") + (f", {SAFETENSORS_FILE} (the weights of {weights}, no "
                                                        f"pickle inside)" if safetensors else ""))
    return result
