"""ONNX -> MNN (Alibaba's mobile inference engine; runs on Android, iOS and here through its Python API).

The conversion runs MNN's converter (the `MNN` wheel's `_tools.mnnconvert`, the same code as the
`mnnconvert` command) in a subprocess. It does not go through the `mnnconvert` console script: that wrapper
imports a usage-statistics module which pip-installs a package and sends conversion details over the
network, neither of which an export should do.

Variants: `model.mnn` (float32), `model_fp16.mnn` (`--fp16`: weights stored as float16, half the size; the
runtime computes in float32 on CPUs without fp16 arithmetic, fp16 on ARMv8.2+ phones) and `model_int8.mnn`
(`--weightQuantBits 8`: weights stored as symmetric per-channel int8, a quarter of the size).
"""
import subprocess
import sys
from pathlib import Path
from typing import Sequence, Union

from ppcls_lite.utils import logger

from .folder import MNN_FILES, ONNX_FILE, ExportError

BIZ_CODE = "ppcls_lite"
# argv[0] is the program name the converter's option parser expects.
_CONVERT = "import sys, _tools; sys.exit(0 if _tools.mnnconvert(['mnnconvert'] + sys.argv[1:]) else 1)"


class MNNConvertError(ExportError):
    """MNN's converter failed; the message carries its output."""


def mnn_available() -> bool:
    """Whether the MNN wheel (runtime and converter) is installed."""
    try:
        import _tools  # noqa: F401  (MNN's converter extension, installed by the MNN wheel)
        import MNN  # noqa: F401
    except ImportError:
        return False
    return True


def convert_onnx_to_mnn(onnx_file: Union[str, Path], mnn_file: Union[str, Path], precision: str = "fp32") -> Path:
    """Convert `onnx_file` to `mnn_file` (precision fp32 | fp16 | int8, see the module docstring)."""
    if precision not in MNN_FILES:
        raise ValueError(f"MNN precision must be one of {sorted(MNN_FILES)}, got {precision!r}")
    if not mnn_available():
        raise ExportError("--mnn needs the MNN package: pip install -e .[mobile] (PyPI: MNN)")
    mnn_file = Path(mnn_file)
    tmp = mnn_file.with_name(mnn_file.name + ".tmp")
    args = ["-f", "ONNX", "--modelFile", str(onnx_file), "--MNNModel", str(tmp), "--bizCode", BIZ_CODE]
    if precision == "fp16":
        args.append("--fp16")
    elif precision == "int8":
        args += ["--weightQuantBits", "8"]
    proc = subprocess.run([sys.executable, "-c", _CONVERT, *args], capture_output=True, text=True)
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        raise MNNConvertError(f"MNN's converter could not convert {onnx_file} ({precision}); its output:\n"
                              f"{output[-2000:]}")
    tmp.replace(mnn_file)
    logger.info(f"MNN model {mnn_file} ({mnn_file.stat().st_size / 1e6:.2f} MB, {precision})")
    return mnn_file


def write_mnn_models(save_dir: Union[str, Path], onnx_file: str = ONNX_FILE,
                     precisions: Sequence[str] = ("fp32", "fp16", "int8")) -> dict:
    """Convert `save_dir/onnx_file` to each MNN variant; returns {precision: file name}."""
    save_dir = Path(save_dir)
    return {precision: convert_onnx_to_mnn(save_dir / onnx_file, save_dir / MNN_FILES[precision], precision).name
            for precision in precisions}
