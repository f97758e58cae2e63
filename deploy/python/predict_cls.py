"""Standalone image classification with an exported model (tools/export_model.py output).

    python deploy/python/predict_cls.py --model_dir DIR --input IMG|DIR|LIST \
        [--backend paddle|onnxruntime|mnn] [--batch_size N] [--topk K] [--threads N] [--output FILE.csv|FILE.jsonl]

Needs only the exported directory, numpy, opencv-python, pyyaml and one backend (paddlepaddle's Paddle
Inference, onnxruntime or MNN); Pillow only for models exported with `backend: pil` ops. It does not import
ppcls_lite or paddle (except for the paddle backend): decoding, the preprocessing ops, input collection,
top-k and result files come from the shared `pipeline` package that training and tools/infer.py use. It is
loaded from `pipeline/` next to this script (tools/export_model.py copies it, and this script, into the
export folder), else from the source tree (`../../ppcls_lite/pipeline`). See docs/DEPLOY.md.

As a library:

    from predict_cls import Predictor
    predictor = Predictor("inference/", backend="onnxruntime", batch_size=8)
    results = predictor.predict_files(["a.jpg", "b.png"])  # [{"file_name", "class_ids", "scores", "label_names"}]
    predictor.failures                                      # [(file, reason)] of inputs that could not be predicted

Exit status: 0 all inputs predicted, 3 some inputs could not be read (each named on stderr; the others are
predicted and written), 1 a usage or model error (one line on stderr).
"""
import argparse
import contextlib
import importlib.util
import itertools
import os
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import yaml

PIPELINE_MODULE = "ppcls_pipeline"  # the name the shared package is loaded under (never `ppcls_lite`)


def _load_pipeline():
    """Import the shared preprocessing package from `pipeline/` beside this script or from the source tree."""
    here = Path(__file__).resolve().parent
    candidates = [here / "pipeline", here.parent.parent / "ppcls_lite" / "pipeline"]
    for folder in candidates:
        init = folder / "__init__.py"
        if init.is_file():
            spec = importlib.util.spec_from_file_location(PIPELINE_MODULE, init,
                                                          submodule_search_locations=[str(folder)])
            module = importlib.util.module_from_spec(spec)
            sys.modules[PIPELINE_MODULE] = module
            spec.loader.exec_module(module)
            return module
    raise ImportError(f"the preprocessing package was not found (looked in {', '.join(map(str, candidates))}); "
                      f"run the predict_cls.py that tools/export_model.py copied into the export folder, or the "
                      f"one in deploy/python of a ppcls_lite checkout")


pipeline = sys.modules.get(PIPELINE_MODULE) or _load_pipeline()

# Inference backends by --backend name (registered after their classes below).
BACKENDS = pipeline.Registry("backend")
PRECISIONS = ("fp32", "fp16", "int8")
RESULT_COLUMNS = pipeline.RESULT_KEYS
IMAGE_EXTENSIONS = pipeline.IMAGE_EXTENSIONS
EXIT_SOME_FAILED = pipeline.EXIT_SOME_FAILED

# Runtime settings and their defaults; deploy/configs/inference_cls.yaml and the command line override them.
RUNTIME_DEFAULTS = {
    "backend": "paddle",
    "batch_size": 1,
    "topk": None,  # None: the model's Infer.PostProcess.topk recorded in inference.yml
    "threads": None,  # None: all CPU cores (at most 8)
    "enable_mkldnn": True,  # oneDNN kernels for Paddle Inference on CPU
    "use_gpu": False,
    "gpu_id": 0,
    "gpu_mem": 1000,  # MB reserved initially by Paddle Inference on GPU
    "use_tensorrt": False,
    "precision": "fp32",  # fp32 | fp16 | int8: which exported model file (inference.yml Global.variants);
                          # with --backend paddle only fp32, or fp16 with TensorRT
    "prefetch": False,  # read + preprocess the next images in a background thread while the model runs
    "opencv_threads": 1,  # OpenCV's own pool (decode, resize): 1 leaves the cores to the backend; None: default
}


ImageReadError = pipeline.ImageDecodeError  # an input image could not be read or decoded
READ_ERRORS = pipeline.READ_ERRORS


def build_preprocess(transform_ops: List[Any]) -> List[Any]:
    """`PreProcess.transform_ops` of inference.yml -> list of op objects (the shared pipeline's ops; NormalizeImage
    + ToCHWImage run as one bit-identical pass)."""
    try:
        return pipeline.fuse_operators(
            pipeline.create_operators(transform_ops, what="inference.yml PreProcess.transform_ops"))
    except ValueError as exc:
        raise ValueError(f"{exc}; re-export the model with tools/export_model.py") from None


# --------------------------------------------------------------------------------------------------------
# Backends: run(batch float32 [N, C, H, W]) -> numpy [N, num_classes]


def _default_threads():
    return max(1, min(os.cpu_count() or 1, 8))


class PaddleBackend:
    """Paddle Inference (paddle.inference) on the Paddle 3 `inference.json` (or legacy `.pdmodel`) model."""

    needs_params_file = True  # the weights are a second file beside the model

    def __init__(self, model_file: Union[str, Path], params_file: Union[str, Path], threads: Optional[int] = None,
                 enable_mkldnn: bool = True, use_gpu: bool = False, gpu_id: int = 0, gpu_mem: int = 1000,
                 use_tensorrt: bool = False, precision: str = "fp32", batch_size: int = 1,
                 input_shape: Optional[Sequence[int]] = None, **_unused: Any) -> None:
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
            config.set_cpu_math_library_num_threads(int(threads or _default_threads()))
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

    def __init__(self, onnx_file: Union[str, Path], threads: Optional[int] = None, use_gpu: bool = False,
                 use_tensorrt: bool = False, gpu_id: int = 0, global_thread_pool: bool = False,
                 **_unused: Any) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("--backend onnxruntime needs onnxruntime: pip install onnxruntime "
                              "(or pip install -e .[deploy])") from None
        options = ort.SessionOptions()
        if global_thread_pool:
            options.use_per_session_threads = False
        else:
            options.intra_op_num_threads = int(threads or _default_threads())
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
def _stdout_to_stderr():
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

    def __init__(self, mnn_file: Union[str, Path], threads: Optional[int] = None, precision: str = "fp32",
                 **_unused: Any) -> None:
        with _stdout_to_stderr():  # MNN prints banners on stdout, where the predictions go
            self._load(mnn_file, threads, precision)

    def _load(self, mnn_file, threads, precision):
        try:
            import MNN.expr
            import MNN.nn
        except ImportError:
            raise ImportError("--backend mnn needs MNN: pip install MNN (or pip install -e .[mobile])") from None
        self._expr = MNN.expr
        # "high" keeps float32 arithmetic (parity with the other backends); "low" lets ARMv8.2+ CPUs run fp16.
        config = {"backend": "CPU", "numThread": int(threads or _default_threads()),
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


BACKENDS.add("paddle", PaddleBackend)
BACKENDS.add("onnxruntime", OnnxRuntimeBackend)
BACKENDS.add("mnn", MnnBackend)


def model_variant_file(model_dir: Union[str, Path], info: Dict[str, Any], backend: str, precision: str = "fp32",
                       use_tensorrt: bool = False) -> Path:
    """The model file (a Path) the backend runs at `precision`, from inference.yml's `Global` section `info`.

    `Global.variants` lists the exported files per backend and precision (tools/export_model.py --quantize,
    --mnn); exports without it have the float32 files only."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    model_dir = Path(model_dir)
    if backend == "paddle":
        if precision == "int8" or (precision == "fp16" and not use_tensorrt):
            raise ValueError(f"--backend paddle runs the float32 Paddle model (fp16 only through TensorRT on GPU); "
                             f"for {precision} use --backend onnxruntime or mnn with a model exported with "
                             f"--quantize {precision}")
        return model_dir / info["model_file"]
    variants = dict((info.get("variants") or {}).get(backend) or {})
    if backend == "onnxruntime" and info.get("onnx_file"):
        variants.setdefault("fp32", info["onnx_file"])
    name = variants.get(precision)
    if not name or not (model_dir / name).is_file():
        how = {"onnxruntime": "--onnx" + ("" if precision == "fp32" else f" --quantize {precision}"),
               "mnn": "--onnx --mnn" + ("" if precision == "fp32" else f" --quantize {precision}")}[backend]
        listed = ", ".join(f"{p}: {f}" for p, f in sorted(variants.items())) or "none"
        raise FileNotFoundError(f"{model_dir} has no {precision} model for --backend {backend} (exported: {listed}); "
                                f"export with python tools/export_model.py ... {how}")
    return model_dir / name


# --------------------------------------------------------------------------------------------------------
# Predictor


def load_inference_config(model_dir: Union[str, Path]) -> Dict[str, Any]:
    """model_dir/inference.yml as a dict; a clear error when the folder is not an export."""
    path = Path(model_dir) / "inference.yml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --model_dir must be a directory written by "
                                f"tools/export_model.py (python tools/export_model.py -c CONFIG "
                                f"-o Global.pretrained_model=PREFIX -o Global.save_inference_dir={model_dir})")
    with open(path, "r", encoding="utf-8") as f:
        return yaml.safe_load(f)


softmax = pipeline.softmax


class Predictor:
    """Exported model + its preprocessing + top-k. Everything is read from `model_dir/inference.yml`."""

    def __init__(self, model_dir: Union[str, Path], backend: str = "paddle", batch_size: int = 1,
                 topk: Optional[int] = None, threads: Optional[int] = None, enable_mkldnn: bool = True,
                 use_gpu: bool = False, gpu_id: int = 0, gpu_mem: int = 1000, use_tensorrt: bool = False,
                 precision: str = "fp32", prefetch: bool = False, opencv_threads: Optional[int] = 1,
                 global_thread_pool: bool = False) -> None:
        backend_class = BACKENDS.get(backend)
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_dir = Path(model_dir)
        self.config = load_inference_config(model_dir)
        info = self.config["Global"]
        self.input_shape = tuple(int(v) for v in info["input_shape"])
        self.outputs_probabilities = info.get("output", "probabilities") == "probabilities"
        self.ops = build_preprocess(self.config["PreProcess"]["transform_ops"])
        post = self.config.get("PostProcess") or {}
        self.topk = int(topk or (post.get("Topk") or {}).get("topk") or 1)
        self.label_list = post.get("label_list")
        self.batch_size = int(batch_size)
        self.prefetch = bool(prefetch)  # read/preprocess the next images in a thread while the model runs
        self.backend_name = backend
        self.failures = []  # (file, reason) of inputs the last predict_files() call could not predict
        self.precision = precision
        if opencv_threads is not None:
            # OpenCV's worker threads would compete with the backend's for the same cores (docs/BENCHMARK.md).
            import cv2
            cv2.setNumThreads(int(opencv_threads))
        self.model_file = model_variant_file(self.model_dir, info, backend, precision, use_tensorrt)
        files = [self.model_file]
        if getattr(backend_class, "needs_params_file", False):
            files.append(self.model_dir / info["params_file"])
        self.verify_model_files(files)
        # Every backend takes the settings it uses and ignores the others.
        self.backend = backend_class(*files, threads=threads, enable_mkldnn=enable_mkldnn, use_gpu=use_gpu,
                                     gpu_id=gpu_id, gpu_mem=gpu_mem, use_tensorrt=use_tensorrt,
                                     precision=precision, batch_size=self.batch_size, input_shape=self.input_shape,
                                     global_thread_pool=global_thread_pool)

    @property
    def skipped(self) -> List[Tuple[str, str]]:
        """Older name of `failures`."""
        return self.failures

    def verify_model_files(self, paths: Iterable[Union[str, Path]]) -> None:
        """Check the files the backend loads against the sha256 recorded in inference.yml (a changed file is an
        error naming it; exports without checksums are accepted)."""
        recorded = self.config["Global"].get("sha256") or {}
        pipeline.verify_checksums(self.model_dir, [Path(p).name for p in paths], recorded)

    # -- steps ------------------------------------------------------------------------------------------
    def preprocess(self, image: Union[bytes, np.ndarray]) -> np.ndarray:
        """Encoded bytes (as read from a file) or a decoded HWC uint8 RGB array -> float32 array [C, H, W]."""
        image = pipeline.to_chw_float32(pipeline.transform(image, self.ops))
        if tuple(image.shape) != self.input_shape:
            raise ImageReadError(f"preprocessing gave shape {tuple(image.shape)} but the model expects "
                                 f"{self.input_shape}; check PreProcess in {self.model_dir / 'inference.yml'}")
        return image

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """float32 [N, C, H, W] -> class probabilities [N, num_classes]."""
        out = self.backend.run(np.ascontiguousarray(batch, dtype=np.float32))
        return out if self.outputs_probabilities else softmax(out)

    def postprocess(self, probs: np.ndarray, files: Sequence[str]) -> List[Dict[str, Any]]:
        """Probabilities [N, classes] -> one result dict (top-k ids, scores, label names) per file."""
        return pipeline.topk_results(probs, files, self.topk, self.label_list)

    def _probabilities(self, tensors):
        return self.infer(pipeline.stack_batch(tensors, self.input_shape))

    # -- public API -------------------------------------------------------------------------------------
    def predict(self, images: Sequence[Union[bytes, np.ndarray]],
                names: Optional[Sequence[str]] = None) -> List[Dict[str, Any]]:
        """Images as encoded bytes or decoded HWC uint8 RGB arrays -> one result dict per image, in order.
        Non-finite model outputs raise NonFiniteOutputError."""
        names = [str(n) for n in names] if names is not None else [str(i) for i in range(len(images))]
        loaded = ((name, self.preprocess(img)) for name, img in zip(names, images))
        results, failures = pipeline.predict_loaded(loaded, self._probabilities, self.postprocess, self.batch_size)
        if failures:
            raise pipeline.NonFiniteOutputError("; ".join(f"{name}: {reason}" for name, reason in failures))
        return results

    def load_file(self, path: Union[str, Path]) -> np.ndarray:
        """Read and preprocess one image file -> model input [C, H, W]; OSError/ImageReadError if unreadable."""
        with open(path, "rb") as f:
            return self.preprocess(f.read())

    def _loaded(self, paths):
        """Yield (path, tensor or exception) in order. With `prefetch`, a background thread reads and preprocesses
        up to 2 batches ahead while the backend runs (OpenCV and the backends release the GIL)."""
        if not self.prefetch:
            yield from pipeline.load_each(paths, self.load_file)
            return
        ahead = 2 * self.batch_size
        paths = iter(paths)
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = deque((p, pool.submit(self.load_file, p)) for p in itertools.islice(paths, ahead))
            while pending:
                path, future = pending.popleft()
                following = next(paths, None)
                if following is not None:
                    pending.append((following, pool.submit(self.load_file, following)))
                try:
                    yield path, future.result()
                except READ_ERRORS as exc:
                    yield path, exc

    def predict_files(self, paths: Sequence[Union[str, Path]],
                      on_result: Optional[Callable[[Dict[str, Any]], None]] = None) -> List[Dict[str, Any]]:
        """Image files -> result dicts (`file_name` = the path as given). An input that cannot be read, or whose
        scores are not finite, is reported on stderr with its reason, listed in `self.failures` and left out;
        the others are still predicted. `on_result(result)` is called as each result is ready."""
        def report(path, reason):
            print(pipeline.format_failure(path, reason), file=sys.stderr, flush=True)

        results, self.failures = pipeline.predict_loaded(self._loaded(paths), self._probabilities,
                                                         self.postprocess, self.batch_size, on_result=on_result,
                                                         on_failure=report)
        return results


# --------------------------------------------------------------------------------------------------------
# Inputs and outputs


def collect_inputs(source: Union[str, Path]) -> List[str]:
    """An image file, a folder (searched recursively, sorted) or a list file (`path [label]` per line,
    relative paths taken from the list file's folder) -> list of image paths."""
    return pipeline.collect_inputs(source, what="--input")


format_row = pipeline.format_row
write_results = pipeline.write_results


# --------------------------------------------------------------------------------------------------------
# Command line


def _str2bool(text):
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Classify images with a model exported by tools/export_model.py")
    parser.add_argument("--model_dir", required=True, help="directory written by tools/export_model.py")
    parser.add_argument("--input", required=True, help="image file, folder, or list file ('path [label]' lines)")
    parser.add_argument("--config", help="runtime settings YAML (e.g. deploy/configs/inference_cls.yaml); "
                                         "command-line flags win")
    parser.add_argument("--backend", choices=BACKENDS.names())
    parser.add_argument("--batch_size", type=int)
    parser.add_argument("--topk", type=int, help="classes per image (default: the exported Infer.PostProcess.topk)")
    parser.add_argument("--threads", type=int, help="CPU threads of the backend (default: all cores, at most 8)")
    parser.add_argument("--opencv_threads", type=int, help="OpenCV threads for decoding/resizing (default 1)")
    parser.add_argument("--enable_mkldnn", type=_str2bool, help="oneDNN for Paddle Inference on CPU (default true)")
    parser.add_argument("--use_gpu", type=_str2bool)
    parser.add_argument("--gpu_id", type=int)
    parser.add_argument("--use_tensorrt", type=_str2bool)
    parser.add_argument("--precision", choices=PRECISIONS, help="model variant: fp32 (default), fp16 or int8 "
                        "(export with --quantize fp16/int8, --mnn); paddle backend: fp16 only with TensorRT")
    parser.add_argument("--prefetch", type=_str2bool, help="preprocess the next images in a thread while the "
                                                           "model runs (default false)")
    parser.add_argument("--output", help="write results to FILE.csv or FILE.jsonl")
    parser.add_argument("--quiet", action="store_true", help="do not print one line per image")
    return parser.parse_args(argv)


def runtime_settings(args: argparse.Namespace) -> Dict[str, Any]:
    """Defaults < --config file < command-line flags."""
    settings = dict(RUNTIME_DEFAULTS)
    if args.config:
        with open(args.config, "r", encoding="utf-8") as f:
            from_file = (yaml.safe_load(f) or {}).get("Runtime") or {}
        unknown = sorted(set(from_file) - set(settings))
        if unknown:
            raise KeyError(f"{args.config}: unknown Runtime keys {unknown}; valid keys: {sorted(settings)}")
        settings.update(from_file)
    for key in settings:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    return settings


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Predict every input and print or write the results; returns 0, or 3 when some inputs could not be read."""
    args = parse_args(argv)
    settings = runtime_settings(args)
    if args.output:
        pipeline.check_output_path(args.output)
    predictor = Predictor(args.model_dir, **settings)
    files = collect_inputs(args.input)
    show = None if args.quiet else (lambda result: print(pipeline.format_line(result), flush=True))
    results = predictor.predict_files(files, on_result=show)
    if args.output:
        write_results(results, args.output)
        print(f"wrote {len(results)} predictions to {args.output}", file=sys.stderr)
    if predictor.failures:
        print(pipeline.format_summary(predictor.failures, len(files)), file=sys.stderr)
        return EXIT_SOME_FAILED
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError, KeyError, ImportError) as exc:  # user errors: one line, no traceback
        if os.environ.get("PPCLS_DEBUG"):
            raise
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}", file=sys.stderr)
        sys.exit(1)
