"""Layers only point down: read every import statement of ppcls_lite/ (module level and inside functions) with ast.
Test modules share helpers through conftest.py and never import each other.

    utils, pipeline (0) < arch, data, loss, metric, optimizer (1) < engine, export (2) < tools (3)

A package may import its own layer or the layers below. ppcls_lite/pipeline (copied into export folders, run by
deploy/python/predict_cls.py without ppcls_lite) imports nothing from ppcls_lite outside itself. No library
module changes sys.path when it is imported.
"""
import ast
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from conftest import REPO_ROOT

PACKAGE_ROOT = REPO_ROOT / "ppcls_lite"
LAYERS = {"utils": 0, "pipeline": 0,
          "arch": 1, "data": 1, "loss": 1, "metric": 1, "optimizer": 1,
          "engine": 2, "export": 2, "config": 2,
          "tools": 3}


def imported_modules(source: str, module_path: Tuple[str, ...]) -> Iterator[Tuple[int, str]]:
    """(line, absolute dotted name) of every import in `source`; `module_path` is the importing module's dotted
    name as a tuple (for a package's __init__, its package name), used to resolve relative imports."""
    package = module_path[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                module = tuple(node.module.split("."))
            else:
                module = package[:len(package) - (node.level - 1)] + (tuple(node.module.split(".")) if node.module
                                                                        else ())
            if len(module) >= 2:
                yield node.lineno, ".".join(module)
            else:  # `from ppcls_lite import pipeline`, `from .. import utils`: each name may be a sub-package
                for alias in node.names:
                    yield node.lineno, ".".join(module + (alias.name,))


def layer_of(dotted: str) -> Tuple[str, int]:
    """(sub-package, layer) of a dotted name inside ppcls_lite. The root module (ppcls_lite/__init__.py: warning
    filters and __version__) is ground floor."""
    parts = dotted.split(".")
    if len(parts) < 2 or parts[1] not in LAYERS:
        return "ppcls_lite", 0
    return parts[1], LAYERS[parts[1]]


def violations(source: str, module_path: Tuple[str, ...]) -> List[str]:
    """What breaks the layering in one module's source: imports of a higher layer, a pipeline module importing
    ppcls_lite outside the pipeline, and sys.path changes at import time."""
    own_package, own_layer = layer_of(".".join(module_path))
    found = []
    for line, name in imported_modules(source, module_path):
        if name.split(".")[0] == "tools":
            found.append(f"line {line}: imports {name} (tools/ is above every library package)")
            continue
        if name.split(".")[0] != "ppcls_lite":
            continue
        package, layer = layer_of(name)
        if layer > own_layer:
            found.append(f"line {line}: {own_package} (layer {own_layer}) imports {name} (layer {layer})")
        elif own_package == "pipeline" and package != "pipeline":
            found.append(f"line {line}: the pipeline imports {name}; it must run without the rest of ppcls_lite")
    for statement in ast.parse(source).body:  # module level only: a function may load a script from its folder
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for node in ast.walk(statement):
            if (isinstance(node, ast.Attribute) and node.attr in ("insert", "append", "extend")
                    and ast.unparse(node.value) == "sys.path"):
                found.append(f"line {node.lineno}: changes sys.path when imported")
    return found


def library_modules() -> Iterator[Tuple[Path, Tuple[str, ...]]]:
    """(file, dotted module path) of every module in ppcls_lite/."""
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        yield path, ("ppcls_lite",) + path.relative_to(PACKAGE_ROOT).with_suffix("").parts


def test_every_library_module_imports_only_its_layer_and_below():
    problems = []
    for path, module_path in library_modules():
        for problem in violations(path.read_text(encoding="utf-8"), module_path):
            problems.append(f"{path.relative_to(REPO_ROOT)} {problem}")
    assert len(list(library_modules())) > 30  # the walk found the package
    assert not problems, "imports that point up a layer:\n" + "\n".join(problems)


BAD_UTILS_MODULE = '''
import os
import sys
from ppcls_lite.utils import logger          # same layer: fine
from ..data import build_dataloader            # layer 1 from utils
sys.path.insert(0, "deploy/python")           # at import time


def later():
    from ppcls_lite.engine import build_engine  # function-level import of layer 2
    import tools.benchmark                      # tools/ from the library
    sys.path.append("elsewhere")               # inside a function: allowed
'''


def test_checker_finds_upward_function_level_relative_and_sys_path_imports():
    found = violations(BAD_UTILS_MODULE, ("ppcls_lite", "utils", "bad"))
    assert any("line 5" in p and "ppcls_lite.data" in p for p in found), found
    assert any("line 10" in p and "ppcls_lite.engine" in p for p in found), found
    assert any("line 11" in p and "tools.benchmark" in p for p in found), found
    assert any("line 6" in p and "sys.path" in p for p in found), found
    assert len(found) == 4, found  # the same-layer import and the function-level sys.path change are fine


@pytest.mark.parametrize("source, module_path, expected", [
    ("from ..utils import logger", ("ppcls_lite", "pipeline", "ops"), "the pipeline imports ppcls_lite.utils"),
    ("from .. import utils", ("ppcls_lite", "pipeline", "ops"), "the pipeline imports ppcls_lite.utils"),
    ("from ppcls_lite import export", ("ppcls_lite", "utils", "config"), "utils (layer 0) imports ppcls_lite.export"),
    ("from ..engine import Engine", ("ppcls_lite", "arch", "registry"), "arch (layer 1) imports ppcls_lite.engine"),
    ("from ...export import x", ("ppcls_lite", "data", "preprocess", "ops"),
     "data (layer 1) imports ppcls_lite.export"),
])
def test_checker_resolves_relative_imports(source, module_path, expected):
    found = violations(source, module_path)
    assert any(expected in p for p in found), found


def test_pipeline_may_import_itself_and_export_may_import_engine():
    assert violations("from .decode import decode_image\nfrom ppcls_lite.pipeline import ops",
                      ("ppcls_lite", "pipeline", "runner")) == []
    assert violations("from ..engine.postprocess import Topk", ("ppcls_lite", "export", "exporter")) == []
    # in ppcls_lite/data/__init__.py, `from . import engine` would be ppcls_lite.data.engine: its own package
    assert violations("from . import engine", ("ppcls_lite", "data", "__init__")) == []
    assert violations("from ppcls_lite import __version__", ("ppcls_lite", "export", "exporter")) == []


def test_test_modules_import_conftest_not_each_other():
    seen = [name for _, name in imported_modules("from test_engine import tiny_config", ("tests", "test_x"))]
    assert seen == ["test_engine.tiny_config"]  # what the check below looks for
    tests_dir = REPO_ROOT / "tests"
    problems = []
    for path in sorted(tests_dir.glob("test_*.py")):
        for line, name in imported_modules(path.read_text(encoding="utf-8"), ("tests", path.stem)):
            if name.split(".")[0].startswith("test_"):
                problems.append(f"{path.name} line {line}: imports {name} (move the helper into conftest.py)")
    assert not problems, "\n".join(problems)


def test_standalone_predictor_imports_no_ppcls_lite_and_paddle_only_in_its_backend():
    script = REPO_ROOT / "deploy" / "python" / "predict_cls.py"
    source = script.read_text(encoding="utf-8")
    everywhere = [name for _, name in imported_modules(source, ("predict_cls",))]
    assert not [name for name in everywhere if name.split(".")[0] == "ppcls_lite"], everywhere
    tree = ast.parse(source)
    module_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    top_names = {alias.name.split(".")[0] for node in module_level if isinstance(node, ast.Import)
                 for alias in node.names}
    top_names |= {node.module.split(".")[0] for node in module_level
                  if isinstance(node, ast.ImportFrom) and node.module}
    assert "paddle" not in top_names and "paddle" in {name.split(".")[0] for name in everywhere}
