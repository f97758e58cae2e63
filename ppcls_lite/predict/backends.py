"""Inference backends: `run(batch [N, C, H, W] float32, or the uint8-input model's NHWC batch) -> [N, classes]`.

Each backend's constructor takes the model file(s) and, by name, exactly the settings it uses (see
PredictorSettings); `open_backend` passes it those and warns once about non-default settings it ignores.
A new backend is a class here, registered in BACKENDS below (and its name in model_dir.py's _EXPORT_FLAGS).
"""
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np

from ..pipeline import Registry, accepted_kwargs
from .settings import PredictorSettings, default_threads

_logger = logging.getLogger("ppcls_lite.predict")
DEFAULT = PredictorSettings()  # the backends' defaults are the settings' defaults


class PaddleBackend:
    """Paddle Inference (paddle.inference) on the Paddle 3 `inference.json` (or legacy `.pdmodel`) model."""

    needs_params_file = True  # the weights are a second file beside the model

    def __init__(self, model_file: Union[str, Path], params_file: Union[str, Path],
                 threads: Optional[int] = DEFAULT.threads, enable_mkldnn: bool = DEFAULT.enable_mkldnn,
                 use_gpu: bool = DEFAULT.use_gpu, gpu_id: int = DEFAULT.gpu_id, gpu_mem: int = DEFAULT.gpu_mem,
                 use_tensorrt: bool = DEFAULT.use_tensorrt, precision: str = DEFAULT.precision,
                 batch_size: int = DEFAULT.batch_size, input_shape: Optional[Sequence[int]] = None) -> None:
        try:
            import paddle
            from paddle import inference as paddle_infer
        except ImportError:
            raise ImportError("--backend paddle needs paddlepaddle (pip install paddlepaddle, or paddlepaddle-gpu); "
                              "or use --backend onnxruntime") from None

        config = paddle_infer.Config(str(model_file), str(params_file))
        if use_gpu:
            if not paddle.device.is_compiled_with_cuda():
                raise ValueError("use_gpu=True but this paddlepaddle build has no CUDA; install the GPU wheel "
                                 "or predict on CPU (--use_gpu false)")
            config.enable_use_gpu(int(gpu_mem), int(gpu_id))
            if use_tensorrt:
                precision_mode = (paddle_infer.PrecisionType.Half if precision == "fp16"
                                  else paddle_infer.PrecisionType.Float32)
                config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=int(batch_size),
                                              min_subgraph_size=3, precision_mode=precision_mode,
                                              use_static=False, use_calib_mode=False)
                if input_shape is not None:  # dynamic batch: TensorRT needs the shape range up front
                    c, h, w = input_shape
                    config.set_trt_dynamic_shape_info({"x": [1, c, h, w]}, {"x": [int(batch_size), c, h, w]},
                                                      {"x": [int(batch_size), c, h, w]})
        else:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(int(threads or default_threads()))
            if enable_mkldnn:
                # Paddle 3 names it oneDNN; older releases only have the MKLDNN spelling.
                (getattr(config, "enable_onednn", None) or config.enable_mkldnn)()
                # oneDNN caches kernels per input shape; a few batch sizes fit.
                (getattr(config, "set_onednn_cache_capacity", None) or config.set_mkldnn_cache_capacity)(10)
            # No config.enable_memory_optim(): on Paddle 3.x CPU it fails with
            # "Not find predictor_id 0 and pass_name memory_optimize_pass" (docs/DEPLOY.md, troubleshooting).
        config.switch_ir_optim(True)
        config.disable_glog_info()
        self.predictor = paddle_infer.create_predictor(config)
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def run(self, batch: np.ndarray) -> np.ndarray:
        """float32 [N, C, H, W] (or the uint8-input model's batch) -> logits or probabilities [N, classes]."""
        self.input.reshape(batch.shape)
        self.input.copy_from_cpu(batch)
        self.predictor.run()
        return self.output.copy_to_cpu()


class OnnxRuntimeBackend:
    """onnxruntime InferenceSession on model.onnx (CPU provider; CUDA/TensorRT providers when asked and present).

    `global_thread_pool`: run on onnxruntime's process-wide thread pool (sized by the caller with
    `onnxruntime.set_global_thread_pool_sizes(threads, 1)` before the first session) instead of a pool of its own,
    for several models in one process: separate pools keep spinning between runs and slow each other down.
    """

    def __init__(self, onnx_file: Union[str, Path], threads: Optional[int] = DEFAULT.threads,
                 use_gpu: bool = DEFAULT.use_gpu, use_tensorrt: bool = DEFAULT.use_tensorrt,
                 gpu_id: int = DEFAULT.gpu_id, global_thread_pool: bool = DEFAULT.global_thread_pool) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("--backend onnxruntime needs onnxruntime: pip install onnxruntime "
                              "(or pip install -e .[deploy])") from None
        options = ort.SessionOptions()
        if global_thread_pool:
            options.use_per_session_threads = False
        else:
            options.intra_op_num_threads = int(threads or default_threads())
            options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Errors only: warnings (e.g. unused initializers in a model.onnx from an older export or another
        # converter) are for whoever made the model, not for someone classifying images.
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if use_gpu:
            available = ort.get_available_providers()
            wanted = (["TensorrtExecutionProvider"] if use_tensorrt else []) + ["CUDAExecutionProvider"]
            gpu_providers = [(p, {"device_id": int(gpu_id)}) for p in wanted if p in available]
            if not gpu_providers:
                raise ValueError(f"use_gpu=True but onnxruntime offers only {available}; install onnxruntime-gpu "
                                 f"or predict on CPU")
            providers = gpu_providers + providers
        self.session = ort.InferenceSession(str(onnx_file), options, providers=providers)
        self.input_name = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        """One batch through the session -> its first output [N, classes]."""
        return self.session.run(None, {self.input_name: batch})[0]


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send what native code prints on file descriptor 1 to stderr for the duration of the block."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (embedded interpreters): nothing to protect
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


class MnnBackend:
    """MNN (the engine phone apps embed) on model.mnn / model_fp16.mnn / model_int8.mnn, CPU, via its Python API."""

    def __init__(self, mnn_file: Union[str, Path], threads: Optional[int] = DEFAULT.threads,
                 precision: str = DEFAULT.precision) -> None:
        with stdout_to_stderr():  # MNN prints banners on stdout, where the predictions go
            self._load(mnn_file, threads, precision)

    def _load(self, mnn_file, threads, precision):
        try:
            import MNN.expr
            import MNN.nn
        except ImportError:
            raise ImportError("--backend mnn needs MNN: pip install MNN (or pip install -e .[mobile])") from None
        self._expr = MNN.expr
        # "high" keeps float32 arithmetic (parity with the other backends); "low" lets ARMv8.2+ CPUs run fp16.
        config = {"backend": "CPU", "numThread": int(threads or default_threads()),
                  "precision": "low" if precision == "fp16" else "high"}
        runtime = MNN.nn.create_runtime_manager((config,))
        try:
            self.module = MNN.nn.load_module_from_file(str(mnn_file), [], [], runtime_manager=runtime)
        except (SystemError, RuntimeError) as exc:  # MNN prints its reason on stderr and raises a bare error
            raise ValueError(f"MNN could not load {mnn_file} ({exc}); re-export it with tools/export_model.py "
                             f"--mnn") from None

    def run(self, batch: np.ndarray) -> np.ndarray:
        """One batch through the MNN module -> its output [N, classes]."""
        expr = self._expr
        # NCHW is MNN's tag for "the ONNX layout, dims as given" (also for the NHWC uint8-input model).
        dtype = expr.uint8 if batch.dtype == np.uint8 else expr.float
        inputs = expr.const(batch, list(batch.shape), expr.NCHW, dtype)
        return np.array(self.module.forward([inputs])[0].read())


# Inference backends by --backend name.
BACKENDS = Registry("backend")
BACKENDS.add("paddle", PaddleBackend)
BACKENDS.add("onnxruntime", OnnxRuntimeBackend)
BACKENDS.add("mnn", MnnBackend)


def backend_options(name: str, settings: PredictorSettings, **model_facts: Any) -> dict:
    """The keyword arguments backend `name` takes, from `settings` and `model_facts` (e.g. input_shape)."""
    values = {**settings.as_dict(), **model_facts}
    return {key: values[key] for key in accepted_kwargs(BACKENDS.get(name)) if key in values}


def ignored_settings(name: str, settings: PredictorSettings) -> dict:
    """The non-default backend settings (threads, device, ...) that backend `name` does not take."""
    taken = set(accepted_kwargs(BACKENDS.get(name)))
    return {key: value for key, value in settings.changed().items()
            if key in PredictorSettings.backend_options() and key not in taken}


def open_backend(name: str, model_files: Sequence[Union[str, Path]], settings: PredictorSettings,
                 **model_facts: Any) -> Any:
    """Backend `name` on `model_files` with the settings it takes; one warning line names the ones it ignores."""
    ignored = ignored_settings(name, settings)
    if ignored:
        listed = ", ".join(f"{key}={value!r}" for key, value in ignored.items())
        _logger.warning(f"--backend {name} does not use {listed}; ignored")
    return BACKENDS.get(name)(*model_files, **backend_options(name, settings, **model_facts))
