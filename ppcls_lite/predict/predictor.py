"""`Predictor`: an exported model + its preprocessing + post-processing, everything read from inference.yml
(or, for PaddleClas's export folders, from a PaddleClas deploy config given as `deploy`: see model_dir.py).

    predictor = Predictor("inference/", backend="onnxruntime", batch_size=8)   # or Predictor(dir, settings)
    results = predictor.predict_files(["a.jpg", "b.png"])  # [{"file_name", "class_ids", "scores", "label_names"}]
    predictor.failures                                      # [(file, reason)] of inputs that could not be predicted

A retrieval model (inference.yml `Global.output: features`) gives `{"file_name", "features"}` per image instead:
the embedding, finished as the training config said (pipeline/features.py).
"""
import itertools
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import pipeline
from .backends import BACKENDS, open_backend
from .model_dir import build_preprocess, model_config, model_variant_file, verify_model_files
from .postprocess import build_postprocess
from .settings import PredictorSettings

ImageReadError = pipeline.ImageDecodeError  # an input image could not be read or decoded


def collect_inputs(source: Union[str, Path]) -> List[str]:
    """An image file, a folder (searched recursively, sorted) or a list file (`path [label]` per line,
    relative paths taken from the list file's folder) -> list of image paths."""
    return pipeline.collect_inputs(source, what="--input")


class Predictor:
    """Exported model + its preprocessing + post-processing. `settings` (PredictorSettings, default: the defaults)
    with `options` (setting=value, e.g. backend="onnxruntime") applied on top say how to run it. `deploy`: a
    PaddleClas deploy config (dict) whose PreProcess / PostProcess run instead of the export's, as in PaddleClas's
    predictor (needed for PaddleClas's export folders, which have no inference.yml)."""

    def __init__(self, model_dir: Union[str, Path], settings: Optional[PredictorSettings] = None,
                 deploy: Optional[Dict[str, Any]] = None, **options: Any) -> None:
        settings = (settings or PredictorSettings()).replace(where="Predictor options", **options)
        backend_class = BACKENDS.get(settings.backend)
        self.settings = settings
        self.model_dir = Path(model_dir)
        self.config = model_config(model_dir, deploy)
        info = self.config["Global"]
        # None: not recorded (PaddleClas's folders): every image goes to the model as preprocessed.
        self.input_shape = tuple(int(v) for v in info["input_shape"]) if info.get("input_shape") else None
        self.output = info.get("output", "probabilities")  # probabilities | logits | features
        self.outputs_probabilities = self.output == "probabilities"
        self.ops = build_preprocess(self.config["PreProcess"]["transform_ops"])
        where = "-c PostProcess" if (deploy or {}).get("PostProcess") else "inference.yml PostProcess"
        self.postprocessor = build_postprocess(self.config.get("PostProcess"), settings.topk, where)
        self.batch_size = int(settings.batch_size)
        self.prefetch = bool(settings.prefetch)  # read/preprocess the next images in a thread while the model runs
        self.backend_name = settings.backend
        self.precision = settings.precision
        self.failures = []  # (file, reason) of inputs the last predict_files() call could not predict
        if settings.opencv_threads is not None:
            # OpenCV's worker threads would compete with the backend's for the same cores (docs/BENCHMARK.md).
            import cv2
            cv2.setNumThreads(int(settings.opencv_threads))
        self.model_file = model_variant_file(self.model_dir, info, settings.backend, settings.precision,
                                             settings.use_tensorrt)
        files = [self.model_file]
        if getattr(backend_class, "needs_params_file", False):
            files.append(self.model_dir / info["params_file"])
        verify_model_files(self.model_dir, files, info.get("sha256"))
        self.backend = open_backend(settings.backend, files, settings, input_shape=self.input_shape)

    @property
    def skipped(self) -> List[Tuple[str, str]]:
        """Older name of `failures`."""
        return self.failures

    @property
    def topk(self) -> Optional[int]:
        """Classes per result (Topk post-process; None for an embedding model)."""
        return getattr(self.postprocessor, "topk", None)

    @property
    def label_list(self) -> Optional[List[str]]:
        """Class names by id from inference.yml (None when the export had no class_id_map_file)."""
        return getattr(self.postprocessor, "label_list", None)

    # -- steps ------------------------------------------------------------------------------------------
    def preprocess(self, image: Union[bytes, np.ndarray]) -> np.ndarray:
        """Encoded bytes (as read from a file) or a decoded HWC uint8 RGB array -> float32 array [C, H, W]."""
        image = pipeline.to_chw_float32(pipeline.transform(image, self.ops))
        if self.input_shape is not None and tuple(image.shape) != self.input_shape:
            raise ImageReadError(f"preprocessing gave shape {tuple(image.shape)} but the model expects "
                                 f"{self.input_shape}; check PreProcess in {self.model_dir / 'inference.yml'} or the -c "
                                 f"deploy config")
        return image

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """float32 [N, C, H, W] -> class probabilities [N, num_classes] (raw features [N, D] for an embedding
        model)."""
        out = self.backend.run(np.ascontiguousarray(batch, dtype=np.float32))
        return pipeline.softmax(out) if self.output == "logits" else out

    def postprocess(self, probs: np.ndarray, files: Sequence[str]) -> List[Dict[str, Any]]:
        """Probabilities [N, classes] -> one result dict (top-k ids, scores, label names) per file."""
        return self.postprocessor(probs, files)

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
        # Only a regular file is opened, and one over the pixel limit is refused from its header (pipeline).
        return self.preprocess(pipeline.read_image_file(path))

    def _loaded(self, paths: Iterable[Union[str, Path]]) -> Iterator[Tuple[Any, Any]]:
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
                except pipeline.READ_ERRORS as exc:
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
