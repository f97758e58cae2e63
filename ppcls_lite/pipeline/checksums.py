"""sha256 checksums of exported model files, recorded in inference.yml (`Global.sha256`) and checked on load."""
import hashlib
from pathlib import Path
from typing import Dict, List, Sequence, Union

MODEL_NAMES = ("inference.json", "inference.pdmodel")  # the Paddle program (other .json files are reports)
MODEL_SUFFIXES = (".pdiparams", ".onnx", ".mnn")


class ChecksumError(ValueError):
    """A model file differs from the one that was exported."""


def sha256_file(path: Union[str, Path]) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_files(model_dir: Union[str, Path]) -> List[str]:
    """Names of the model files in an export directory (inference.json/.pdiparams, *.onnx, *.mnn)."""
    return sorted(p.name for p in Path(model_dir).iterdir()
                  if p.is_file() and (p.name in MODEL_NAMES or p.suffix in MODEL_SUFFIXES))


def verify_checksums(model_dir: Union[str, Path], names: Sequence[str], recorded: Dict[str, str]) -> None:
    """Check `names` (files in `model_dir`) against `recorded` {name: sha256}; a file without a record is
    accepted (exports made before checksums were written)."""
    for name in names:
        expected = (recorded or {}).get(name)
        if not expected:
            continue
        path = Path(model_dir) / name
        actual = sha256_file(path)
        if actual != expected:
            raise ChecksumError(f"{path} has changed since it was exported (sha256 {actual[:12]}... but "
                                f"inference.yml records {expected[:12]}...): the file is damaged or was replaced; "
                                f"copy it again or re-export with tools/export_model.py")
