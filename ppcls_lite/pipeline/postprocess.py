"""Post-processes (`Infer.PostProcess`): `Topk` turns class probabilities into ids, scores and names;
`DistillationPostProcess` (PaddleClas's) picks one sub-model of a DistillationModel and runs `Topk` on it.

Part of the pipeline, so tools/infer.py and the standalone predictor use the same post-processes. The ImageNet
label list PaddleClas configs name (`ppcls/utils/imagenet1k_label_list.txt`) ships beside this module.
"""
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from .inputs import read_label_names
from .registry import Registry
from .results import topk_results

SHIPPED_IMAGENET_LABELS = Path(__file__).resolve().parent / "imagenet1k_label_list.txt"
# Post-processes an `Infer.PostProcess.name` may name.
POSTPROCESSES = Registry("post-process", plural="post-processes")

# A child of the project's "ppcls_lite" logger (see ops.py): shown through its handlers when they are set up,
# through Python's default warning output in the standalone predictor.
_logger = logging.getLogger("ppcls_lite.pipeline")


def read_class_id_map(path: str) -> Dict[int, str]:
    """Read an `id name` file (the dataset's label_list.txt format) into {id: name}."""
    return dict(enumerate(read_label_names(path)))


def resolve_class_id_map_file(path: Optional[str]) -> Optional[str]:
    """PaddleClas configs name `ppcls/utils/imagenet1k_label_list.txt`; use the shipped copy when it is absent."""
    if path is None or os.path.exists(path):
        return path
    if os.path.basename(str(path)) == SHIPPED_IMAGENET_LABELS.name:
        _logger.warning(f"Infer.PostProcess.class_id_map_file {path} not found; using the shipped "
                        f"{SHIPPED_IMAGENET_LABELS}")
        return str(SHIPPED_IMAGENET_LABELS)
    raise FileNotFoundError(f"Infer.PostProcess.class_id_map_file: {path} does not exist (an 'id name' per line, "
                            f"e.g. the dataset's label_list.txt); fix the path with "
                            f"-o Infer.PostProcess.class_id_map_file=PATH or set it to null")


@POSTPROCESSES.register()
class Topk:
    """Top-k classes per image. Call with probabilities [N, C] and the file names; returns a list of dicts
    `{"file_name", "class_ids", "scores", "label_names"}` (label_names empty without names).

    The names come from `class_id_map_file` (an `id name` file: `Infer.PostProcess` in a training config) or
    `label_list` (the names themselves: what an export's inference.yml carries)."""

    def __init__(self, topk: int = 1, class_id_map_file: Optional[str] = None, delimiter: Optional[str] = None,
                 label_list: Optional[List[str]] = None):
        self.topk = int(topk)
        if self.topk < 1:
            raise ValueError(f"Infer.PostProcess.topk must be >= 1, got {topk!r}")
        if delimiter is not None:  # PaddleClas splits `id name` at this delimiter; names here may hold spaces
            _logger.warning(f"Infer.PostProcess.delimiter={delimiter!r} has no effect here: label files are "
                            f"split at the first whitespace")
        path = resolve_class_id_map_file(class_id_map_file)
        if path:
            class_id_map = read_class_id_map(path)
            label_list = [class_id_map.get(i, "") for i in range(max(class_id_map) + 1)] if class_id_map else None
        self.label_list = label_list

    def __call__(self, probs: Any, files: Sequence[str]) -> List[Dict[str, Any]]:
        return topk_results(probs, files, self.topk, self.label_list)


@POSTPROCESSES.register()
class DistillationPostProcess:
    """PaddleClas's post-process of a DistillationModel: the `model_name` sub-model's output (its `key` entry when
    that is a dict) through the post-process `func` (Topk) built from the remaining keys (topk, class_id_map_file).

    `select(output)` picks that output from the model's {sub-model name: output}; the call scores probabilities
    like `func`. An export holds only the deployed sub-model, so its inference.yml names `func` itself."""

    def __init__(self, model_name: str = "Student", key: Optional[str] = None, func: str = "Topk",
                 **func_params: Any):
        self.model_name, self.key = model_name, key
        name = POSTPROCESSES.canonical(func, "Infer.PostProcess.func")
        if name == "DistillationPostProcess":
            raise ValueError("Infer.PostProcess.func cannot be DistillationPostProcess itself; use Topk")
        self.func_name, self.func_params = name, dict(func_params)
        self.func = POSTPROCESSES.build(name, func_params, f"Infer.PostProcess ({name})")

    @property
    def topk(self) -> int:
        """Classes per result (the wrapped post-process's)."""
        return self.func.topk

    @property
    def label_list(self) -> Optional[List[str]]:
        """Class names by id (the wrapped post-process's)."""
        return self.func.label_list

    def select(self, output: Any) -> Any:
        """The `model_name` sub-model's output (its `key` entry) of a DistillationModel's output mapping."""
        if not isinstance(output, dict) or self.model_name not in output:
            have = sorted(output) if isinstance(output, dict) else type(output).__name__
            raise KeyError(f"Infer.PostProcess.model_name={self.model_name!r} is not an output of the model (it "
                           f"returns {have}); DistillationPostProcess needs Arch.name: DistillationModel and one "
                           f"of its sub-model names")
        output = output[self.model_name]
        if self.key is not None:
            if not isinstance(output, dict) or self.key not in output:
                raise KeyError(f"Infer.PostProcess.key={self.key!r} is not an output of sub-model "
                               f"{self.model_name!r}")
            output = output[self.key]
        return output

    def __call__(self, probs: Any, files: Sequence[str]) -> List[Dict[str, Any]]:
        return self.func(probs, files)


def build_postprocess(postprocess_config: Optional[dict]) -> Any:
    """Build from the `Infer.PostProcess` section (`Topk`, `DistillationPostProcess`); None → plain top-1 ids."""
    if not postprocess_config:
        return Topk(1)
    config = dict(postprocess_config)
    name = POSTPROCESSES.canonical(config.pop("name", "Topk"), "Infer.PostProcess.name")
    POSTPROCESSES.check_params(name, config, f"Infer.PostProcess ({name})", extra=["name"])
    return POSTPROCESSES.build(name, config, "Infer.PostProcess")
