"""`infer`: inference latency and throughput of one model through each engine, at each batch size.

Exports the model (random weights: speed does not depend on them) to a temporary folder with the export package,
or takes an existing export (`model_dir`), then times, at each batch size:
  paddle_dygraph          model(x) in eager mode (no_grad, eval)
  paddle_inference        Paddle Inference predictor, oneDNN on  (paddle_inference_no_onednn: oneDNN off)
  onnxruntime             a bare onnxruntime session on the same export (CPU provider): the predictor's own
                          InferenceSession called directly, so only one onnxruntime thread pool runs
  jpeg_decode             read the file + cv2.imdecode + cv2.cvtColor to RGB: the bare decode (yardstick)
  jpeg_decode_then_onnxruntime   jpeg_decode and then the bare session in one call (the two halves of the
                          yardstick in sequence, each starting on the caches the other left)
  predictor_decode        read the file + the predictor's DecodeImage only
  predictor_preprocess    what the predictor does before inference: read file + decode + resize/crop/normalise
  predictor_<backend>     ppcls_lite.predict.Predictor end to end: read + decode + preprocess + infer + top-k
  predictor_onnxruntime_full_decode   the same with reduced-size JPEG decoding turned off
  predictor_onnxruntime_decoded   the same from an already decoded image (resize .. top-k): the predictor's
                          own overhead over the bare session, without the JPEG decode
  predictor_onnxruntime_folder[_prefetch]   (batch 1 only) predict_files over 16 images, time per image;
                          _prefetch reads/preprocesses the next image in a thread while the model runs
Model-only engines get the preprocessed tensor of the same real image. Engines are timed in interleaved
blocks of a few runs so a change of machine load affects all of them alike. Latency p50/p90 is per call
(one batch); throughput = batch size / mean latency.
"""
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from .report import print_table, write_csv
from .timing import CPU_COUNT, load_1m, machine_description, summarize, time_interleaved

FOLDER_IMAGES = 16  # images per predict_files call in the *_folder rows


@dataclass
class InferOptions:
    """What `infer` measures (the `tools/benchmark.py infer` flags)."""

    model: str = "MobileNetV3_large_x1_0"  # exported with random weights
    model_dir: Optional[str] = None  # benchmark this export instead of exporting `model` (no dygraph row)
    size: int = 224  # input side in pixels
    batch_sizes: Sequence[int] = (1, 8)
    image: Optional[str] = None  # for the end-to-end rows (default: matplotlib's grace_hopper.jpg)
    photo_size: Optional[str] = None  # resize the image to WIDTHxHEIGHT and save it as JPEG first
    engines: Optional[str] = None  # comma-separated subset of the engines (default: all)
    runs: int = 50
    warmup: int = 5
    threads: int = CPU_COUNT
    csv: Optional[str] = None  # also write the rows to this CSV file


def default_image() -> Optional[str]:
    """A real photograph shipped with matplotlib (a dependency): Grace Hopper, 512x600 JPEG."""
    try:
        from matplotlib import cbook
        return cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    except Exception:  # matplotlib missing or built without sample data
        return None


def imagenet_inference_ops(size: int) -> List[Dict[str, Any]]:
    """PaddleClas's ImageNet inference preprocessing scaled to `size` (resize short side, centre crop)."""
    return [
        {"DecodeImage": {"to_rgb": True, "channel_first": False}},
        {"ResizeImage": {"resize_short": int(round(size * 256 / 224))}},
        {"CropImage": {"size": size}},
        {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                            "order": ""}},
        {"ToCHWImage": None},
    ]


def export_for_benchmark(model_name: str, size: int, save_dir: Union[str, Path]) -> Any:
    """Random-weight export of `model_name` at size x size with the ImageNet inference preprocessing."""
    from ppcls_lite.arch import build_model
    from ppcls_lite.export import export_model, normalize_transform_ops

    ops = normalize_transform_ops(imagenet_inference_ops(size))
    model = build_model({"name": model_name, "class_num": 1000})
    model.eval()
    export_model(model, save_dir, (size, size), ops, class_num=1000, topk=5, model_name=model_name, onnx=True)
    return model


def infer_engines(model_dir: Path, info: Dict[str, Any], image: str, batch_size: int, threads: int,
                  model: Any = None) -> Dict[str, Callable[[], Any]]:
    """{engine name: zero-argument callable running one batch} for the rows listed in the module docstring."""
    import cv2
    import numpy as np
    import paddle

    from ppcls_lite.predict import PaddleBackend, Predictor

    reference = Predictor(model_dir, backend="onnxruntime", batch_size=batch_size, threads=threads)
    with open(image, "rb") as f:
        data = f.read()
    batch = np.ascontiguousarray(np.stack([reference.preprocess(data)] * batch_size), dtype=np.float32)
    files = [image] * batch_size
    engines = {}

    if model is not None:
        x = paddle.to_tensor(batch)

        def dygraph():
            with paddle.no_grad():
                return model(x).numpy()
        engines["paddle_dygraph"] = dygraph

    model_file, params_file = model_dir / info["model_file"], model_dir / info["params_file"]
    with_onednn = PaddleBackend(model_file, params_file, threads=threads, enable_mkldnn=True)
    without_onednn = PaddleBackend(model_file, params_file, threads=threads, enable_mkldnn=False)
    engines["paddle_inference"] = lambda: with_onednn.run(batch)
    engines["paddle_inference_no_onednn"] = lambda: without_onednn.run(batch)

    # The yardstick for the predictor's overhead: the predictor's own InferenceSession (intra-op threads as given,
    # everything else onnxruntime's defaults) called directly. One session means one intra-op thread pool in the
    # process: with a second session, each pool's threads spin after its runs and slow the other's next runs at
    # 2 threads (docs/BENCHMARK.md, "Predictor scaling").
    session = reference.backend.session
    engines["onnxruntime"] = lambda: session.run(None, {session.get_inputs()[0].name: batch})[0]

    decode = reference.ops[0]  # DecodeImage as exported
    def jpeg_decode():
        return [cv2.cvtColor(cv2.imdecode(np.fromfile(f, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                for f in files]
    engines["jpeg_decode"] = jpeg_decode
    engines["jpeg_decode_then_onnxruntime"] = lambda: (jpeg_decode(), engines["onnxruntime"]())
    engines["predictor_decode"] = lambda: [decode(open(f, "rb").read()) for f in files]
    engines["predictor_preprocess"] = lambda: [reference.preprocess(open(f, "rb").read()) for f in files]
    engines["predictor_onnxruntime"] = lambda: reference.predict_files(files)
    full_decode = Predictor(model_dir, backend="onnxruntime", batch_size=batch_size, threads=threads)
    full_decode.backend = reference.backend  # the same session (see the yardstick above)
    full_decode.ops[0].reduced_decode = False
    engines["predictor_onnxruntime_full_decode"] = lambda: full_decode.predict_files(files)
    decoded = [decode(data)] * batch_size
    engines["predictor_onnxruntime_decoded"] = lambda: reference.predict(decoded)
    with_paddle = Predictor(model_dir, backend="paddle", batch_size=batch_size, threads=threads)
    engines["predictor_paddle"] = lambda: with_paddle.predict_files(files)

    if batch_size == 1:  # a folder of images predicted one at a time, without and with prefetching
        folder = [image] * FOLDER_IMAGES
        prefetching = Predictor(model_dir, backend="onnxruntime", batch_size=1, threads=threads, prefetch=True)
        prefetching.backend = reference.backend  # the same session (see the yardstick above)
        engines["predictor_onnxruntime_folder"] = lambda: reference.predict_files(folder)
        engines["predictor_onnxruntime_folder_prefetch"] = lambda: prefetching.predict_files(folder)
    return engines


def synthetic_image(directory: Union[str, Path]) -> str:
    """Fallback when no photograph is available: a smooth 640x480 JPEG."""
    import cv2
    import numpy as np

    yy, xx = np.mgrid[0:480, 0:640]
    path = str(Path(directory) / "synthetic.jpg")
    cv2.imwrite(path, np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype("uint8"))
    return path


def bench_infer(options: InferOptions) -> List[Dict[str, Any]]:
    """The `infer` rows (see the module docstring) for each batch size."""
    import paddle

    from ppcls_lite.predict import load_inference_config

    paddle.set_device("cpu")
    paddle.base.core.set_num_threads(options.threads)  # eager-mode CPU kernels
    print(machine_description(options.threads))
    with tempfile.TemporaryDirectory(prefix="ppcls_bench_") as tmp:
        model = None
        if options.model_dir:
            model_dir = Path(options.model_dir)
        else:
            model_dir = Path(tmp)
            print(f"exporting {options.model} at {options.size}px (random weights) to {model_dir} ...")
            model = export_for_benchmark(options.model, options.size, model_dir)
        image = options.image or default_image() or synthetic_image(tmp)
        if options.photo_size:
            image = resized_photo(image, options.photo_size, tmp)
        print(f"image: {image}")
        info = load_inference_config(model_dir)["Global"]
        model_name = info.get("model_name") or options.model
        wanted = set(options.engines.split(",")) if options.engines else None

        rows = []
        for batch_size in options.batch_sizes:
            engines = infer_engines(model_dir, info, image, batch_size, options.threads, model)
            if wanted:
                engines = {name: fn for name, fn in engines.items() if name in wanted}
            load = load_1m()
            print(f"batch {batch_size}: timing {', '.join(engines)} ({options.runs} runs each after "
                  f"{options.warmup} warm-up)")
            for name, times in time_interleaved(engines, options.runs, options.warmup).items():
                if name.endswith(("_folder", "_folder_prefetch")):
                    times = [seconds / FOLDER_IMAGES for seconds in times]  # per image
                rows.append({"benchmark": "infer", "engine": name, "model": model_name,
                             "image_size": info["input_shape"][1], "batch_size": batch_size,
                             "threads": options.threads, "load_1m": load, **summarize(times, batch_size)})
    print_table(rows)
    print_ratios(rows)
    if options.csv:
        write_csv(rows, options.csv)
    return rows


def print_ratios(rows: List[Dict[str, Any]]) -> None:
    """The deploy speed targets as latency ratios (docs/BENCHMARK.md): of p50s, and of minimums (the minimum is
    the run least disturbed by other processes, so it is the steadier figure on a shared machine)."""
    by_key = {(r["engine"], r["batch_size"]): r for r in rows}
    pairs = (("predictor_onnxruntime", "predictor end-to-end / bare onnxruntime (target <= 1.15)"),
             ("predictor_onnxruntime_decoded", "predictor from a decoded image / bare onnxruntime"),
             ("predictor_onnxruntime_folder_prefetch", "predictor on a folder, prefetch, per image / bare onnxruntime"),
             ("paddle_inference", "Paddle Inference (oneDNN) / onnxruntime (target >= 2)"),
             ("paddle_inference_no_onednn", "Paddle Inference (no oneDNN) / onnxruntime"))
    for bs in sorted({r["batch_size"] for r in rows}):
        ort_row = by_key.get(("onnxruntime", bs))
        if not ort_row:
            continue
        for engine, label in pairs:
            row = by_key.get((engine, bs))
            if row:
                print(f"batch {bs}: {label}: p50 {row['p50_ms'] / ort_row['p50_ms']:.2f}, "
                      f"min {row['min_ms'] / ort_row['min_ms']:.2f}")
        end_to_end, decode = by_key.get(("predictor_onnxruntime", bs)), by_key.get(("jpeg_decode", bs))
        if end_to_end and decode:
            print(f"batch {bs}: predictor end-to-end / (JPEG decode + bare onnxruntime) (target <= 1.10): p50 "
                  f"{end_to_end['p50_ms'] / (decode['p50_ms'] + ort_row['p50_ms']):.2f}, min "
                  f"{end_to_end['min_ms'] / (decode['min_ms'] + ort_row['min_ms']):.2f}")
        in_sequence = by_key.get(("jpeg_decode_then_onnxruntime", bs))
        if end_to_end and in_sequence:
            print(f"batch {bs}: predictor end-to-end / (JPEG decode then bare onnxruntime, one call): p50 "
                  f"{end_to_end['p50_ms'] / in_sequence['p50_ms']:.2f}, min "
                  f"{end_to_end['min_ms'] / in_sequence['min_ms']:.2f}")


def resized_photo(image: str, size: str, directory: Union[str, Path]) -> str:
    """`image` resized to `size` ('640x480': width x height) and saved as a quality-90 JPEG in `directory`."""
    import cv2

    width, height = (int(v) for v in size.lower().split("x"))
    photo = cv2.resize(cv2.imread(str(image)), (width, height), interpolation=cv2.INTER_AREA)
    path = str(Path(directory) / f"photo_{width}x{height}.jpg")
    cv2.imwrite(path, photo, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path
