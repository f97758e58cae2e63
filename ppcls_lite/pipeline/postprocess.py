"""Post-processes (`Infer.PostProcess`): class scores -> result dicts. `Topk` and PaddleClas's
`DistillationPostProcess` (one sub-model of a DistillationModel through `Topk`) live here; the task post-processes
(thresholds, multi-label, attributes) in `task_postprocess.py`, registered in the same `POSTPROCESSES`.

Part of the pipeline, so tools/infer.py and the standalone predictor use the same post-processes. Every
post-process is called with the model's scores `[N, C]` after its `activation` ("softmax" for one class per
image, "sigmoid" for multi-label tasks) and the file names. The label lists PaddleClas configs name
(`ppcls/utils/imagenet1k_label_list.txt`, `ppcls/utils/PULC_label_list/*.txt`, ...) ship beside this module.
"""
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from .inputs import read_label_names, read_text_lines
from .registry import Registry
from .results import topk_results

SHIPPED_IMAGENET_LABELS = Path(__file__).resolve().parent / "imagenet1k_label_list.txt"
# PaddleClas's other label lists (ppcls/utils/...: PULC_label_list/*, NUS-WIDE-SCENE), same layout below here.
SHIPPED_LABEL_DIR = Path(__file__).resolve().parent / "label_lists"
# Post-processes an `Infer.PostProcess.name` may name.
POSTPROCESSES = Registry("post-process", plural="post-processes")
ACTIVATIONS = ("softmax", "sigmoid")

# A child of the project's "ppcls_lite" logger (see ops.py): shown through its handlers when they are set up,
# through Python's default warning output in the standalone predictor.
_logger = logging.getLogger("ppcls_lite.pipeline")


def read_class_id_map(path: str, delimiter: Optional[str] = None) -> Dict[int, str]:
    """Read an `id name` file (the dataset's label_list.txt format) into {id: name}; with `delimiter` (PaddleClas's
    post-process option) each line is split at its first `delimiter` instead of the first whitespace."""
    if delimiter is None or delimiter == " ":
        return dict(enumerate(read_label_names(path)))
    mapping = {}
    for lineno, line in read_text_lines(path):
        head, _, name = line.partition(delimiter)
        try:
            mapping[int(head)] = name
        except ValueError:
            raise ValueError(f"{path}:{lineno}: expected `id{delimiter}name`, got {line!r}") from None
    return mapping


def shipped_label_files() -> Dict[str, Path]:
    """{file name: shipped copy} of every label list that ships with the pipeline."""
    files = {SHIPPED_IMAGENET_LABELS.name: SHIPPED_IMAGENET_LABELS}
    files.update({p.name: p for p in sorted(SHIPPED_LABEL_DIR.rglob("*.txt"))})
    return files


def resolve_class_id_map_file(path: Optional[str]) -> Optional[str]:
    """PaddleClas configs name `ppcls/utils/<list>.txt`; use the shipped copy of that list when the path is absent."""
    if path is None or os.path.exists(path):
        return path
    shipped = shipped_label_files().get(os.path.basename(str(path)))
    if shipped is not None:
        _logger.warning(f"Infer.PostProcess.class_id_map_file {path} not found; using the shipped {shipped}")
        return str(shipped)
    raise FileNotFoundError(f"Infer.PostProcess.class_id_map_file: {path} does not exist (an 'id name' per line, "
                            f"e.g. the dataset's label_list.txt); fix the path with "
                            f"-o Infer.PostProcess.class_id_map_file=PATH or set it to null")


def names_by_id(class_id_map_file: Optional[str], label_list: Optional[List[str]] = None,
                delimiter: Optional[str] = None) -> Optional[List[str]]:
    """Class names indexed by id: from `class_id_map_file` (a config's) or `label_list` (an export's), else None."""
    path = resolve_class_id_map_file(class_id_map_file)
    if not path:
        return label_list
    class_id_map = read_class_id_map(path, delimiter)
    return [class_id_map.get(i, "") for i in range(max(class_id_map) + 1)] if class_id_map else None


class PostProcess:
    """Base of the post-processes: `activation` says how the model's logits become the scores it is called with;
    `inference_params()` gives every parameter for inference.yml (class names travel as `label_list`)."""

    activation = "softmax"
    label_list: Optional[List[str]] = None

    def inference_params(self) -> Dict[str, Any]:
        """This post-process's parameters as plain YAML values (without label_list)."""
        raise NotImplementedError

    def __call__(self, probs: Any, files: Sequence[str]) -> List[Dict[str, Any]]:
        raise NotImplementedError


@POSTPROCESSES.register()
class Topk(PostProcess):
    """Top-k classes per image. Call with probabilities [N, C] and the file names; returns a list of dicts
    `{"file_name", "class_ids", "scores", "label_names"}` (label_names empty without names).

    The names come from `class_id_map_file` (an `id name` file: `Infer.PostProcess` in a training config) or
    `label_list` (the names themselves: what an export's inference.yml carries)."""

    def __init__(self, topk: int = 1, class_id_map_file: Optional[str] = None, delimiter: Optional[str] = None,
                 label_list: Optional[List[str]] = None):
        self.topk = int(topk)
        if self.topk < 1:
            raise ValueError(f"Infer.PostProcess.topk must be >= 1, got {topk!r}")
        self.label_list = names_by_id(class_id_map_file, label_list, delimiter)

    def inference_params(self) -> Dict[str, Any]:
        """See PostProcess.inference_params."""
        return {"topk": self.topk}

    def __call__(self, probs: Any, files: Sequence[str]) -> List[Dict[str, Any]]:
        return topk_results(probs, files, self.topk, self.label_list)


@POSTPROCESSES.register()
class DistillationPostProcess(PostProcess):
    """PaddleClas's post-process of a DistillationModel: the `model_name` sub-model's output (its `key` entry when
    that is a dict) through the post-process `func` (Topk) built from the remaining keys (topk, class_id_map_file).

    `select(output)` picks that output from the model's {sub-model name: output}; the call scores probabilities
    like `func`. An export holds only the deployed sub-model, so its inference.yml names `func` itself."""

    def __init__(self, model_name: str = "Student", key: Optional[str] = None, func: str = "Topk",
                 label_list: Optional[List[str]] = None, **func_params: Any):
        self.model_name, self.key = model_name, key
        name = POSTPROCESSES.canonical(func, "Infer.PostProcess.func")
        if name == "DistillationPostProcess":
            raise ValueError("Infer.PostProcess.func cannot be DistillationPostProcess itself; use Topk")
        self.func_name, self.func_params = name, dict(func_params)
        self.func = POSTPROCESSES.build(name, func_params, f"Infer.PostProcess ({name})", label_list=label_list)
        self.activation = self.func.activation

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

    def inference_params(self) -> Dict[str, Any]:
        """The wrapped post-process's (an export holds the deployed sub-model only)."""
        return self.func.inference_params()

    def __call__(self, probs: Any, files: Sequence[str]) -> List[Dict[str, Any]]:
        return self.func(probs, files)


def build_postprocess(postprocess_config: Optional[dict], label_list: Optional[List[str]] = None) -> Any:
    """Build from the `Infer.PostProcess` section (`{name: Topk, topk: 5, ...}`); None -> plain top-1 ids.
    `label_list` (class names by id) is given to post-processes that name classes, when the section names none."""
    if not postprocess_config:
        return Topk(1, label_list=label_list)
    config = dict(postprocess_config)
    name = POSTPROCESSES.canonical(config.pop("name", "Topk"), "Infer.PostProcess.name")
    POSTPROCESSES.check_params(name, config, f"Infer.PostProcess ({name})", extra=["name"],
                               injected=["label_list"])
    return POSTPROCESSES.build(name, config, "Infer.PostProcess", label_list=label_list)
