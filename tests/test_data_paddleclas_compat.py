"""PaddleClas DataLoader sections work unchanged: every transform key/value PaddleClas's MobileNet configs use,
and the transform lists of the project's configs, build and run."""
import io

import numpy as np
import pytest
import yaml
from PIL import Image

from helpers import REPO_ROOT as REPO
from ppcls_lite.data.preprocess import create_operators, transform



def jpeg_bytes(h=300, w=400):
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def test_reference_transform_keys_build_and_run(reference_dir):
    """Each `DataLoader.<mode>.dataset.transform_ops.[Op].key  value` line of paddleclas_config_keys.tsv."""
    ops = {}  # (mode, op) -> {key: first listed value}
    for line in (reference_dir / "paddleclas_config_keys.tsv").read_text().splitlines():
        path, _, value = line.partition("\t")
        if ".transform_ops.[" not in path:
            continue
        mode = path.split(".")[1]
        op = path.split("[")[1].split("]")[0]
        params = ops.setdefault((mode, op), {})
        key = path.split("].")[1] if "]." in path else None
        if key:
            params[key] = yaml.safe_load(value.split(" | ")[0])
    assert ("Train", "AutoAugment") in ops and ("Eval", "CropImage") in ops
    for mode in ("Train", "Eval"):
        order = ["DecodeImage", "ResizeImage", "CropImage", "RandCropImage", "RandFlipImage", "AutoAugment",
                 "ColorJitter", "NormalizeImage"]
        op_list = [{name: ops[(mode, name)] or None} for name in order if (mode, name) in ops]
        out = transform(jpeg_bytes(), create_operators(op_list))
        assert out.dtype == np.float32 and out.shape == (224, 224, 3), (mode, out.shape)


def config_transform_lists():
    lists = []
    for path in sorted((REPO / "configs").rglob("*.yaml")):
        config = yaml.safe_load(path.read_text()) or {}
        for mode, section in (config.get("DataLoader") or {}).items():
            ops = ((section or {}).get("dataset") or {}).get("transform_ops")
            if ops:
                lists.append(pytest.param(ops, id=f"{path.stem}-{mode}"))
        infer_ops = (config.get("Infer") or {}).get("transforms")
        if infer_ops:
            lists.append(pytest.param(infer_ops, id=f"{path.stem}-Infer"))
    return lists or [pytest.param(None, marks=pytest.mark.skip(reason="no configs/*.yaml with transform_ops yet"))]


@pytest.mark.parametrize("op_list", config_transform_lists())
def test_project_config_transforms(op_list):
    out = transform(jpeg_bytes(), create_operators(op_list))
    assert out.dtype == np.float32 and out.ndim == 3 and 3 in (out.shape[0], out.shape[-1])
