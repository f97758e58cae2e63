"""How the predictor runs a model: backend, device, threads, precision, batching. The one place each default is
written; the predictor, its command line and runtime file, the benchmark and export verification all use it."""
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from ..pipeline import check_keys

PRECISIONS = ("fp32", "fp16", "int8")
# Marks the settings a backend may take (each backend's constructor names those it uses).
_BACKEND = {"backend_option": True}


def default_threads() -> int:
    """CPU threads of a backend when none are asked for: all cores, at most 8."""
    return max(1, min(os.cpu_count() or 1, 8))


@dataclass(frozen=True)
class PredictorSettings:
    """Runtime settings of the predictor (deploy/configs/predictor_runtime.yaml `Runtime`, the command-line flags)."""

    backend: str = "paddle"  # paddle | onnxruntime | mnn (predict.BACKENDS)
    batch_size: int = 1
    topk: Optional[int] = None  # None: the model's Infer.PostProcess.topk recorded in inference.yml
    precision: str = "fp32"  # fp32 | fp16 | int8: which exported model file (inference.yml Global.variants);
    #                          with --backend paddle only fp32, or fp16 with TensorRT
    prefetch: bool = False  # read + preprocess the next images in a background thread while the model runs
    opencv_threads: Optional[int] = 1  # OpenCV's own pool (decode, resize): 1 leaves the cores to the backend;
    #                                    None: OpenCV's default
    threads: Optional[int] = field(default=None, metadata=_BACKEND)  # None: default_threads()
    enable_mkldnn: bool = field(default=True, metadata=_BACKEND)  # oneDNN kernels for Paddle Inference on CPU
    use_gpu: bool = field(default=False, metadata=_BACKEND)
    gpu_id: int = field(default=0, metadata=_BACKEND)
    gpu_mem: int = field(default=1000, metadata=_BACKEND)  # MB Paddle Inference reserves at start on the GPU
    use_tensorrt: bool = field(default=False, metadata=_BACKEND)
    # onnxruntime: run on the process-wide thread pool (set up by the caller) instead of a pool per session
    global_thread_pool: bool = field(default=False, metadata=_BACKEND)

    def __post_init__(self) -> None:
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    @classmethod
    def names(cls) -> list:
        """Every setting's name, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def backend_options(cls) -> list:
        """The names of the settings a backend may take (threads, device, ...)."""
        return [f.name for f in dataclasses.fields(cls) if f.metadata.get("backend_option")]

    def replace(self, where: str = "predictor settings", **changes: Any) -> "PredictorSettings":
        """A copy with `changes`; an unknown name is a KeyError listing the valid ones (`where` names the source)."""
        check_keys(changes, self.names(), where, error=KeyError)
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> Dict[str, Any]:
        """{name: value} of every setting."""
        return dataclasses.asdict(self)

    def changed(self) -> Dict[str, Any]:
        """The settings that differ from the defaults."""
        defaults = PredictorSettings()
        return {name: value for name, value in self.as_dict().items() if getattr(defaults, name) != value}
