"""Standalone image classification with an exported model (tools/export_model.py output).

    python deploy/python/predict_cls.py --model_dir DIR --input IMG|DIR|LIST \
        [--backend paddle|onnxruntime|mnn] [--batch_size N] [--topk K] [--threads N] [--output FILE.csv|FILE.jsonl]

Needs only the exported directory, numpy, opencv-python, pyyaml and one backend (paddlepaddle's Paddle
Inference or onnxruntime); Pillow only for models exported with `backend: pil` ops. It does not import
ppcls_lite: the preprocessing below re-implements the inference ops listed in DIR/inference.yml with the same
OpenCV/PIL calls as ppcls_lite/data/preprocess/ops.py, so it produces the same input tensors as tools/infer.py.

As a library:

    from predict_cls import Predictor
    predictor = Predictor("inference/", backend="onnxruntime", batch_size=8)
    results = predictor.predict_files(["a.jpg", "b.png"])   # [{"file", "class_ids", "scores", "label_names"}]
    predictor.skipped                                         # [(file, reason)] of images that could not be read
"""
import argparse
import csv
import itertools
import json
import os
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import yaml

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
BACKENDS = ("paddle", "onnxruntime", "mnn")
PRECISIONS = ("fp32", "fp16", "int8")
RESULT_COLUMNS = ("file", "class_ids", "scores", "label_names")
SCORE_DECIMALS = 5  # tools/infer.py rounds scores the same way in its output files

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


class ImageReadError(ValueError):
    """An input image could not be read or decoded."""


# What an unreadable input may raise: missing file, undecodable data, cv2 rejecting a degenerate image.
READ_ERRORS = (OSError, ValueError, cv2.error)


# --------------------------------------------------------------------------------------------------------
# Preprocessing: the inference ops of ppcls_lite/data/preprocess/ops.py, same library calls, same rounding.

_CV2_INTERP = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA,
               "bicubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}
_PIL_INTERP_NAMES = {"nearest": "NEAREST", "bilinear": "BILINEAR", "area": "BOX", "bicubic": "BICUBIC",
                     "lanczos": "LANCZOS"}


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("this model's preprocessing uses backend: pil; install Pillow (pip install pillow)") from None
    return Image


def _pair(size):
    return (int(size), int(size)) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))


class DecodeImage:
    """File bytes -> HWC uint8, 3 channels, RGB if to_rgb else BGR."""

    def __init__(self, to_rgb=True, channel_first=False, backend="cv2"):
        if channel_first:
            raise ValueError("DecodeImage.channel_first=True is not supported; re-export with channel_first: False")
        self.to_rgb = to_rgb
        self.backend = backend

    @staticmethod
    def _decode_pil(data):
        import io
        try:
            with _pil().open(io.BytesIO(data)) as img:
                img.load()  # full decode: truncated files fail here
                return np.asarray(img.convert("RGB"))
        except ImportError:
            raise
        except Exception as exc:
            raise ImageReadError(f"cannot decode image ({type(exc).__name__}: {exc})") from None

    @staticmethod
    def _decode_cv2(data):
        arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise ImageReadError("cannot decode image (OpenCV could not read the data)")
        if arr.dtype != np.uint8:  # 16-bit PNG/TIFF
            arr = (arr / (65535.0 if arr.dtype == np.uint16 else arr.max() or 1) * 255).astype(np.uint8)
        if arr.ndim == 2:
            return cv2.cvtColor(arr, cv2.COLOR_GRAY2RGB)
        if arr.shape[2] == 4:
            return cv2.cvtColor(arr, cv2.COLOR_BGRA2RGB)
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)

    def __call__(self, img):
        if isinstance(img, np.ndarray):  # already decoded (RGB, HWC): only fix channels
            arr = img
        else:
            data = bytes(img)
            if not data:
                raise ImageReadError("cannot decode image (the file is empty)")
            if self.backend == "pil":
                arr = self._decode_pil(data)
            else:
                arr = self._decode_cv2(data)
                if _looks_truncated(data):
                    self._decode_pil(data)  # OpenCV decodes truncated files with grey rows; PIL refuses them
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        if not self.to_rgb:
            arr = arr[:, :, ::-1]
        return np.ascontiguousarray(arr)


def _looks_truncated(data):
    if data[:3] == b"\xff\xd8\xff":
        return b"\xff\xd9" not in data[-64:]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in data[-32:]
    return False


class ResizeImage:
    """Short side to `resize_short` (aspect kept, sizes rounded), or to `size` [w, h]."""

    def __init__(self, size=None, resize_short=None, interpolation="bilinear", backend="cv2"):
        self.size = None if size is None else _pair(size)
        self.resize_short = resize_short
        self.interpolation = interpolation or "bilinear"
        self.backend = backend or "cv2"
        if self.interpolation not in _CV2_INTERP:
            raise ValueError(f"ResizeImage.interpolation={interpolation!r}; use one of {sorted(_CV2_INTERP)}")

    def __call__(self, img):
        img_h, img_w = img.shape[:2]
        if self.resize_short is not None:
            percent = float(self.resize_short) / min(img_w, img_h)
            w, h = int(round(img_w * percent)), int(round(img_h * percent))
        else:
            w, h = self.size
        if self.backend == "pil":
            image = _pil()
            resample = getattr(image, _PIL_INTERP_NAMES[self.interpolation])
            return np.asarray(image.fromarray(img).resize((w, h), resample))
        return cv2.resize(img, (w, h), interpolation=_CV2_INTERP[self.interpolation])


class CropImage:
    """Centre crop to `size` [w, h]."""

    def __init__(self, size):
        self.w, self.h = _pair(size)

    def __call__(self, img):
        img_h, img_w = img.shape[:2]
        if img_w < self.w or img_h < self.h:
            raise ImageReadError(f"image is {img_w}x{img_h} after resizing, smaller than the {self.w}x{self.h} crop")
        x0, y0 = (img_w - self.w) // 2, (img_h - self.h) // 2
        return img[y0:y0 + self.h, x0:x0 + self.w]


class NormalizeImage:
    """(img * scale - mean) / std in float32, computed exactly like the training op.

    For uint8 input the 256 possible results per channel are computed once with those same float32
    operations and applied as a lookup table (cv2.LUT): bit-identical and ~4x faster than the arithmetic.
    """

    def __init__(self, scale=1.0 / 255.0, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), order=""):
        self.order = order or ""
        shape = (3, 1, 1) if self.order == "chw" else (1, 1, 3)
        self.scale = np.float32(scale)
        self.mean = np.array(mean, dtype=np.float32).reshape(shape)
        self.std = np.array(std, dtype=np.float32).reshape(shape)
        levels = np.arange(256, dtype=np.uint8).reshape(1, 256, 1).repeat(3, axis=2)  # HWC "image" of all levels
        mean_hwc, std_hwc = self.mean.reshape(1, 1, 3), self.std.reshape(1, 1, 3)
        self.lut = ((levels.astype(np.float32) * self.scale - mean_hwc) / std_hwc).astype(np.float32)

    def __call__(self, img):
        if img.dtype == np.uint8 and img.ndim == 3:
            if self.order == "chw":
                return np.stack([self.lut[0, img[c], c] for c in range(3)])
            return cv2.LUT(np.ascontiguousarray(img), self.lut)
        return ((img.astype(np.float32) * self.scale - self.mean) / self.std).astype(np.float32)


class ToCHWImage:
    """HWC -> CHW. Returns a view; the copy happens once when the batch is assembled."""

    def __call__(self, img):
        return img.transpose((2, 0, 1))


PREPROCESS_OPS = {cls.__name__: cls for cls in (DecodeImage, ResizeImage, CropImage, NormalizeImage, ToCHWImage)}


def build_preprocess(transform_ops):
    """`PreProcess.transform_ops` of inference.yml -> list of callables."""
    ops = []
    for entry in transform_ops:
        (name, params), = entry.items()
        if name not in PREPROCESS_OPS:
            raise ValueError(f"inference.yml: preprocessing op {name} is not supported by this predictor "
                             f"(supported: {sorted(PREPROCESS_OPS)}); re-export with tools/export_model.py")
        ops.append(PREPROCESS_OPS[name](**dict(params or {})))
    return ops


# --------------------------------------------------------------------------------------------------------
# Backends: run(batch float32 [N, C, H, W]) -> numpy [N, num_classes]


def _default_threads():
    return max(1, min(os.cpu_count() or 1, 8))


class PaddleBackend:
    """Paddle Inference (paddle.inference) on the Paddle 3 `inference.json` (or legacy `.pdmodel`) model."""

    def __init__(self, model_file, params_file, threads=None, enable_mkldnn=True, use_gpu=False, gpu_id=0,
                 gpu_mem=1000, use_tensorrt=False, precision="fp32", batch_size=1, input_shape=None):
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

    def run(self, batch):
        self.input.reshape(batch.shape)
        self.input.copy_from_cpu(batch)
        self.predictor.run()
        return self.output.copy_to_cpu()


class OnnxRuntimeBackend:
    """onnxruntime InferenceSession on model.onnx (CPU provider; CUDA/TensorRT providers when asked and present)."""

    def __init__(self, onnx_file, threads=None, use_gpu=False, use_tensorrt=False, gpu_id=0, **_unused):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("--backend onnxruntime needs onnxruntime: pip install onnxruntime "
                              "(or pip install -e .[deploy])") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or _default_threads())
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # paddle2onnx leaves unused initialisers; ort warns about each
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

    def run(self, batch):
        return self.session.run(None, {self.input_name: batch})[0]


class MnnBackend:
    """MNN (the engine phone apps embed) on model.mnn / model_fp16.mnn / model_int8.mnn, CPU, via its Python API."""

    def __init__(self, mnn_file, threads=None, precision="fp32", **_unused):
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
        self.module = MNN.nn.load_module_from_file(str(mnn_file), [], [], runtime_manager=runtime)

    def run(self, batch):
        expr = self._expr
        # NCHW is MNN's tag for "the ONNX layout, dims as given" (also for the NHWC uint8-input model).
        dtype = expr.uint8 if batch.dtype == np.uint8 else expr.float
        inputs = expr.const(batch, list(batch.shape), expr.NCHW, dtype)
        return np.array(self.module.forward([inputs])[0].read())


def model_variant_file(model_dir, info, backend, precision="fp32", use_tensorrt=False):
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


def load_inference_config(model_dir):
    path = Path(model_dir) / "inference.yml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --model_dir must be a directory written by "
                                f"tools/export_model.py (python tools/export_model.py -c CONFIG "
                                f"-o Global.pretrained_model=PREFIX -o Global.save_inference_dir={model_dir})")
    with open(path, "r", encoding="utf-8") as f:
        return yaml.safe_load(f)


def softmax(logits):
    logits = logits.astype(np.float32)
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


class Predictor:
    """Exported model + its preprocessing + top-k. Everything is read from `model_dir/inference.yml`."""

    def __init__(self, model_dir, backend="paddle", batch_size=1, topk=None, threads=None, enable_mkldnn=True,
                 use_gpu=False, gpu_id=0, gpu_mem=1000, use_tensorrt=False, precision="fp32", prefetch=False,
                 opencv_threads=1):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
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
        self.skipped = []  # (file, reason) of images the last predict_files() call could not read
        self.precision = precision
        if opencv_threads is not None:
            # OpenCV's worker threads would compete with the backend's for the same cores (docs/BENCHMARK.md).
            import cv2
            cv2.setNumThreads(int(opencv_threads))
        self.model_file = model_variant_file(self.model_dir, info, backend, precision, use_tensorrt)
        if backend == "paddle":
            self.backend = PaddleBackend(self.model_file, self.model_dir / info["params_file"],
                                         threads=threads, enable_mkldnn=enable_mkldnn, use_gpu=use_gpu,
                                         gpu_id=gpu_id, gpu_mem=gpu_mem, use_tensorrt=use_tensorrt,
                                         precision=precision, batch_size=self.batch_size,
                                         input_shape=self.input_shape)
        elif backend == "mnn":
            self.backend = MnnBackend(self.model_file, threads=threads, precision=precision)
        else:
            self.backend = OnnxRuntimeBackend(self.model_file, threads=threads, use_gpu=use_gpu,
                                              use_tensorrt=use_tensorrt, gpu_id=gpu_id)

    # -- steps ------------------------------------------------------------------------------------------
    def preprocess(self, image):
        """Encoded bytes (as read from a file) or a decoded HWC uint8 RGB array -> float32 array [C, H, W]
        (possibly a non-contiguous view)."""
        for op in self.ops:
            image = op(image)
        if tuple(image.shape) != self.input_shape:
            raise ImageReadError(f"preprocessing gave shape {tuple(image.shape)} but the model expects "
                                 f"{self.input_shape}; check PreProcess in {self.model_dir / 'inference.yml'}")
        return image

    def infer(self, batch):
        """float32 [N, C, H, W] -> class probabilities [N, num_classes]."""
        out = self.backend.run(np.ascontiguousarray(batch, dtype=np.float32))
        return out if self.outputs_probabilities else softmax(out)

    def postprocess(self, probs, files):
        k = min(self.topk, probs.shape[-1])
        results = []
        for file, row in zip(files, probs):
            ids = np.argsort(-row, kind="stable")[:k]  # same ordering rule as tools/infer.py
            names = ([self.label_list[i] if i < len(self.label_list) else "" for i in ids]
                     if self.label_list else [])
            results.append({"file": file, "class_ids": [int(i) for i in ids],
                            "scores": [float(row[i]) for i in ids], "label_names": names})
        return results

    def _run_batch(self, tensors, files):
        batch = np.empty((len(tensors), *self.input_shape), dtype=np.float32)
        for i, tensor in enumerate(tensors):
            batch[i] = tensor  # the single copy (and HWC->CHW transpose) per image
        return self.postprocess(self.infer(batch), files)

    # -- public API -------------------------------------------------------------------------------------
    def predict(self, images, names=None):
        """Images as encoded bytes or decoded HWC uint8 RGB arrays -> one result dict per image, in order."""
        names = list(names) if names is not None else [None] * len(images)
        results = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            results += self._run_batch([self.preprocess(img) for img in chunk], names[start:start + len(chunk)])
        return results

    def load_file(self, path):
        """Read and preprocess one image file -> model input [C, H, W]; OSError/ImageReadError if unreadable."""
        with open(path, "rb") as f:
            return self.preprocess(f.read())

    def _loaded(self, paths):
        """Yield (path, tensor or exception) in order. With `prefetch`, a background thread reads and preprocesses
        up to 2 batches ahead while the backend runs (OpenCV and the backends release the GIL)."""
        if not self.prefetch:
            for path in paths:
                try:
                    yield path, self.load_file(path)
                except READ_ERRORS as exc:
                    yield path, exc
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

    def predict_files(self, paths):
        """Image files -> result dicts (key `file` = the path as given). Unreadable images are reported on
        stderr, listed in `self.skipped` and left out; the others are still predicted."""
        self.skipped = []
        results, tensors, files = [], [], []
        for path, loaded in self._loaded(paths):
            if isinstance(loaded, Exception):
                self.skipped.append((str(path), str(loaded)))
                print(f"skipped {path}: {loaded}", file=sys.stderr)
                continue
            tensors.append(loaded)
            files.append(str(path))
            if len(tensors) == self.batch_size:
                results += self._run_batch(tensors, files)
                tensors, files = [], []
        if tensors:
            results += self._run_batch(tensors, files)
        return results


# --------------------------------------------------------------------------------------------------------
# Inputs and outputs


def collect_inputs(source):
    """An image file, a folder (searched recursively, sorted) or a list file (`path [label]` per line,
    relative paths taken from the list file's folder) -> list of image paths."""
    path = Path(source)
    if path.is_dir():
        return sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not path.is_file():
        raise FileNotFoundError(f"--input {source}: no such image, folder or list file")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return [str(path)]
    files = []
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name = line.split()[0]
            files.append(name if os.path.isabs(name) else str(path.parent / name))
    if not files:
        raise ValueError(f"--input {source}: the list file names no images ('path [label]' per line)")
    return files


def format_row(result):
    """A result dict -> CSV row strings (lists joined by spaces, scores rounded like tools/infer.py)."""
    return {
        "file": result["file"],
        "class_ids": " ".join(str(i) for i in result["class_ids"]),
        "scores": " ".join(str(round(s, SCORE_DECIMALS)) for s in result["scores"]),
        "label_names": " ".join(result["label_names"]),
    }


def write_results(results, output):
    """Write to FILE.csv (header file,class_ids,scores,label_names) or FILE.jsonl (one JSON object per image)."""
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".json"):
        raise ValueError(f"--output {output}: use a .csv or .jsonl file name")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        if suffix == ".csv":
            writer = csv.DictWriter(f, fieldnames=RESULT_COLUMNS)
            writer.writeheader()
            for result in results:
                writer.writerow(format_row(result))
        else:
            for result in results:
                row = {key: result[key] for key in RESULT_COLUMNS}
                row["scores"] = [round(s, SCORE_DECIMALS) for s in row["scores"]]
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, output)


# --------------------------------------------------------------------------------------------------------
# Command line


def _str2bool(text):
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Classify images with a model exported by tools/export_model.py")
    parser.add_argument("--model_dir", required=True, help="directory written by tools/export_model.py")
    parser.add_argument("--input", required=True, help="image file, folder, or list file ('path [label]' lines)")
    parser.add_argument("--config", help="runtime settings YAML (e.g. deploy/configs/inference_cls.yaml); "
                                         "command-line flags win")
    parser.add_argument("--backend", choices=BACKENDS)
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


def runtime_settings(args):
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


def main(argv=None):
    args = parse_args(argv)
    settings = runtime_settings(args)
    files = collect_inputs(args.input)
    predictor = Predictor(args.model_dir, **settings)
    results = predictor.predict_files(files)
    if not args.quiet:
        for result in results:
            row = format_row(result)
            print(f"{row['file']}\tclass_ids: [{row['class_ids']}]\tscores: [{row['scores']}]"
                  f"\tlabel_names: [{row['label_names']}]")
    if args.output:
        write_results(results, args.output)
        print(f"wrote {len(results)} predictions to {args.output}", file=sys.stderr)
    if predictor.skipped:
        print(f"{len(predictor.skipped)} of {len(files)} images could not be read (listed above as 'skipped')",
              file=sys.stderr)
    return 0 if results or not files else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError, KeyError, ImportError) as exc:  # user errors: one line, no traceback
        if os.environ.get("PPCLS_DEBUG"):
            raise
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}", file=sys.stderr)
        sys.exit(1)
