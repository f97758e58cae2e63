"""Images for INT8 calibration, --verify and the benchmarks: a config's dataset list, fed through the exported
inference.yml's preprocessing by the predictor's own code, so they are exactly what the deployed model sees."""
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .folder import ExportError, read_inference_config

PREDICTOR_DIR = Path(__file__).resolve().parents[2] / "deploy" / "python"


def predictor_module() -> ModuleType:
    """deploy/python/predict_cls.py as a module (a standalone script, so it is not part of the package)."""
    if not (PREDICTOR_DIR / "predict_cls.py").is_file():
        raise ExportError(f"{PREDICTOR_DIR / 'predict_cls.py'} not found: run the export from a checkout of the "
                          f"repository (the predictor's preprocessing prepares calibration/verification images)")
    if str(PREDICTOR_DIR) not in sys.path:
        sys.path.insert(0, str(PREDICTOR_DIR))
    import predict_cls
    return predict_cls


def dataset_samples(config: Dict[str, Any], mode: str, class_num: Optional[int] = None, limit: Optional[int] = None,
                    purpose: str = "this step") -> List[Tuple[str, int]]:
    """[(image path, label)] of `DataLoader.<mode>.dataset` (the config's own list/folder parsing), `limit`
    of them spread evenly over the list (lists are often sorted by class). `purpose` names the option that
    needs them in the error for a config without that section."""
    from ppcls_lite.data.loader import build_dataset

    section = (((config.get("DataLoader") or {}).get(mode) or {}).get("dataset"))
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
    predict_cls = predictor_module()
    transform_ops = read_inference_config(save_dir)["PreProcess"]["transform_ops"]
    if stop_before:  # the HWC image before normalisation, as a phone app's own code produces it
        names = [next(iter(op)) for op in transform_ops]
        transform_ops = [op for op in transform_ops[:names.index(stop_before)] if "ToCHWImage" not in op]
    ops = predict_cls.build_preprocess(transform_ops)
    pipeline = predict_cls.pipeline  # the shared image pipeline, as the predictor loaded it
    arrays = []
    for path in paths:
        with open(path, "rb") as f:
            image = f.read()
        try:
            image = pipeline.transform(image, ops)
        except predict_cls.READ_ERRORS as exc:
            raise ExportError(f"cannot read image {path}: {exc}; fix or remove it from the list") from None
        arrays.append(np.ascontiguousarray(image) if stop_before else pipeline.to_chw_float32(image))
    return np.stack(arrays)
