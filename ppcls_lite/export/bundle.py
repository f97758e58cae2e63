"""The predictor's code in the export folder, so `python DIR/predict_cls.py --model_dir DIR` runs on its own:

    DIR/ppcls_lite/__init__.py, pipeline/, predict/   the package's own files (the predictor imports nothing else)
    DIR/predict_cls.py                                the script, when the caller has one (tools/export_model.py
                                                      passes deploy/python/predict_cls.py of the checkout)
"""
import shutil
from pathlib import Path
from typing import Optional, Union

import ppcls_lite

from .folder import BUNDLE_DIR, PREDICT_SCRIPT

PACKAGE_ROOT = Path(ppcls_lite.__file__).resolve().parent
BUNDLED_PACKAGES = ("pipeline", "predict")  # ppcls_lite.predict imports only ppcls_lite.pipeline


def write_predictor_bundle(save_dir: Union[str, Path], script: Optional[Union[str, Path]] = None) -> None:
    """Copy the predictor's packages (and `script`, if given, as predict_cls.py) into `save_dir`, a new export
    being built (staging.py: the copy of an earlier export goes with the folder it is in)."""
    save_dir = Path(save_dir)
    target = save_dir / BUNDLE_DIR
    target.mkdir()
    shutil.copy2(PACKAGE_ROOT / "__init__.py", target / "__init__.py")
    for package in BUNDLED_PACKAGES:
        shutil.copytree(PACKAGE_ROOT / package, target / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if script is not None:
        shutil.copy2(script, save_dir / PREDICT_SCRIPT)
