"""Which files in an existing export folder are ours: an export replaces those and never deletes or overwrites any
other (a user's own `pipeline/`, `predict_cls.py`, results, notes).

    ours     listed in the folder's export_manifest.json with the same sha256 (Python's __pycache__ beside our code
             too); exports made before the manifest, recognised by their inference.yml header: the files an export
             writes, by name (model files checked against inference.yml's `Global.sha256`; in the predictor's code
             folders, Python files and the data files of this package)
    changed  listed in the manifest, but edited since (a user's change is theirs to keep)
    foreign  anything else, symlinks included (never followed)

A folder without a manifest or an inference.yml of ours holds no file of ours.
"""
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Set

import yaml

from ppcls_lite.pipeline import sha256_file

from .bundle import PACKAGE_ROOT
from .folder import (BUNDLE_DIR, INFERENCE_YML, MANIFEST_FILE, ONNX_FILE, PADDLE_MODEL_FILES, PADDLE_PARAMS_FILE,
                     PREDICT_SCRIPT, REPORT_FILE, SAFETENSORS_FILE, VARIANT_FILES, read_manifest)

_HEADER = "# Written by tools/export_model.py"  # first line of every inference.yml an export wrote
_LEGACY_NAMES = (*PADDLE_MODEL_FILES, PADDLE_PARAMS_FILE, ONNX_FILE, *VARIANT_FILES, REPORT_FILE, INFERENCE_YML,
                 PREDICT_SCRIPT, SAFETENSORS_FILE)
_LEGACY_PIPELINE_DIR = "pipeline"  # where exports before the predict package kept the predictor's code
_CODE_SUFFIXES = (".py", ".pyc")
SHOWN = 8  # entries named in a message; the rest are counted


@dataclass
class Survey:
    """What an existing export folder holds: `foreign` and `changed` entries as relative POSIX paths (a folder of
    foreign files as one entry ending in '/')."""

    foreign: List[str] = field(default_factory=list)
    changed: List[str] = field(default_factory=list)

    @property
    def not_ours(self) -> List[str]:
        """Every entry an export must keep: foreign and changed."""
        return sorted(self.foreign + self.changed)

    def describe(self, limit: int = SHOWN) -> str:
        """'pipeline/, notes.txt, predict_cls.py (changed since the export)' (the first `limit`, then a count)."""
        shown = [f"{e} (changed since the export)" if e in self.changed else e for e in self.not_ours]
        more = len(shown) - limit
        return ", ".join(shown[:limit]) + (f" and {more} more" if more > 0 else "")


def _legacy_files(folder: Path) -> Optional[Dict[str, Optional[str]]]:
    """{name: recorded sha256 or None} of an export made before the manifest; None if it is not one."""
    try:
        with open(folder / INFERENCE_YML, encoding="utf-8") as f:
            text = f.read()
        recorded = ((yaml.safe_load(text) or {}).get("Global") or {}).get("sha256") or {}
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return None
    if not text.startswith(_HEADER):
        return None
    return {name: recorded.get(name) for name in _LEGACY_NAMES}


def _legacy_code_dirs(folder: Path) -> Set[str]:
    """The predictor's code folders of a pre-manifest export: ppcls_lite/ with pipeline/ + predict/ in it, and the
    older pipeline/ with runner.py + registry.py."""
    dirs = set()
    if (folder / BUNDLE_DIR / "predict").is_dir() and (folder / BUNDLE_DIR / "pipeline").is_dir():
        dirs.add(BUNDLE_DIR)
    legacy = folder / _LEGACY_PIPELINE_DIR
    if (legacy / "runner.py").is_file() and (legacy / "registry.py").is_file():
        dirs.add(_LEGACY_PIPELINE_DIR)
    return dirs


class _Walker:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.survey = Survey()
        manifest = read_manifest(folder)
        self.code_dirs: Set[str] = set()
        if manifest is not None:
            self.recorded: Dict[str, Optional[str]] = dict(manifest)
            self.recorded[MANIFEST_FILE] = None  # ours by name: read_manifest checked it is one of ours
        else:
            self.recorded = _legacy_files(folder) or {}
            if self.recorded:
                self.code_dirs = _legacy_code_dirs(folder)
        # Folders holding recorded files: walked into; any other folder is foreign as a whole.
        self.our_dirs = {str(Path(rel).parent.as_posix()) for rel in self.recorded} | self.code_dirs

    def _in_code_dir(self, rel: str) -> bool:
        """A file of the predictor's code in a pre-manifest export: Python, or a data file our package has too."""
        if not any(rel.startswith(d + "/") for d in self.code_dirs):
            return False
        inside = rel.split("/", 1)[1]
        return rel.endswith(_CODE_SUFFIXES) or (PACKAGE_ROOT / inside).is_file()

    def _is_ours_dir(self, rel: str) -> bool:
        if os.path.basename(rel) == "__pycache__":
            return os.path.dirname(rel) in self.our_dirs or self._in_code_dir(rel + "/x.py")
        return rel in self.our_dirs or any(d.startswith(rel + "/") for d in self.our_dirs) \
            or any(rel.startswith(d + "/") for d in self.code_dirs)

    def _file(self, rel: str, path: Path) -> None:
        if rel in self.recorded:
            expected = self.recorded[rel]
            if expected is not None and sha256_file(path) != expected:
                self.survey.changed.append(rel)
            return
        parent = os.path.dirname(rel)
        if os.path.basename(parent) == "__pycache__" and rel.endswith(".pyc") \
                and (os.path.dirname(parent) in self.our_dirs or self._in_code_dir(rel)):
            return  # byte code Python wrote for our code
        if not self._in_code_dir(rel):
            self.survey.foreign.append(rel)

    def walk(self, rel: str = "") -> None:
        with os.scandir(self.folder / rel if rel else self.folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                child = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_symlink():
                    self.survey.foreign.append(child)
                elif entry.is_dir():
                    if self._is_ours_dir(child):
                        self.walk(child)
                    else:
                        self.survey.foreign.append(child + "/")
                else:
                    self._file(child, Path(entry.path))


def survey_folder(folder: os.PathLike) -> Survey:
    """Classify every entry of the existing folder `folder` (see the module docstring)."""
    walker = _Walker(Path(folder))
    walker.walk()
    return walker.survey
