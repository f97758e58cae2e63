"""Images for INT8 calibration, --verify and the benchmarks: a config's dataset list, fed through the exported
inference.yml's preprocessing by the predictor's own code, so they are exactly what the deployed model sees."""
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ppcls_lite.pipeline import READ_ERRORS, to_chw_float32, transform
from ppcls_lite.predict import build_preprocess

from .folder import ExportError, read_inference_config


def dataset_samples(config: Dict[str, Any], mode: str, class_num: Optional[int] = None, limit: Optional[int] = None,
                    purpose: str = "this step") -> List[Tuple[str, int]]:
    """[(image path, label)] of `DataLoader.<mode>.dataset` (a retrieval config's `DataLoader.Eval.Query.dataset`;
    the config's own list/folder parsing), `limit`
    of them spread evenly over the list (lists are often sorted by class). `purpose` names the option that
    needs them in the error for a config without that section."""
    from ppcls_lite.data.loader import build_dataset

    loader_config = (config.get("DataLoader") or {}).get(mode) or {}
    section = loader_config.get("dataset") or (loader_config.get("Query") or {}).get("dataset")  # (retrieval)
    if not section:
        raise ExportError(f"{purpose} reads the images of DataLoader.{mode}.dataset, which the config does not "
                          f"have: add that section (the training config has it)")
    dataset, _ = build_dataset(dict(section, transform_ops=[]), class_num=class_num,
                               where=f"DataLoader.{mode}.dataset")
    samples = list(dataset.samples)
    if limit is not None and 0 < int(limit) < len(samples):
        picks = np.linspace(0, len(samples) - 1, int(limit)).round().astype(int)
        samples = [samples[i] for i in picks]
    return samples


def preprocess_files(save_dir: Union[str, Path], paths: Sequence[str], stop_before: Optional[str] = None) -> np.ndarray:
    """Images -> a stacked batch through the export's inference preprocessing (the predictor's ops), or the ops
    before `stop_before` except ToCHWImage (stop_before='NormalizeImage': the uint8-input model's HWC input)."""
    transform_ops = read_inference_config(save_dir)["PreProcess"]["transform_ops"]
    if stop_before:  # the HWC image before normalisation, as a phone app's own code produces it
        names = [next(iter(op)) for op in transform_ops]
        transform_ops = [op for op in transform_ops[:names.index(stop_before)] if "ToCHWImage" not in op]
    ops = build_preprocess(transform_ops)
    arrays = []
    for path in paths:
        with open(path, "rb") as f:
            image = f.read()
        try:
            image = transform(image, ops)
        except READ_ERRORS as exc:
            raise ExportError(f"cannot read image {path}: {exc}; fix or remove it from the list") from None
        arrays.append(np.ascontiguousarray(image) if stop_before else to_chw_float32(image))
    return np.stack(arrays)
