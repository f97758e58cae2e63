"""Layers only point down and no module imports itself round a circle: read every import statement of ppcls_lite/
(module level and inside functions) with ast. Test modules share helpers through the tests/helpers package,
never through each other or conftest.py.

    pipeline (0) < utils, predict (1) < arch, data, loss, metric, optimizer (2) < config, engine, slim (3)
    < export (4) < benchmark (5) < tools (6)

A package may import its own layer or the layers below. ppcls_lite/pipeline imports nothing of ppcls_lite outside
itself, ppcls_lite/predict nothing but the pipeline: tools/export_model.py copies both into every export folder,
where deploy/python/predict_cls.py runs them without paddle or the rest of ppcls_lite. No library module changes
sys.path or loads a file by path (deploy/ is a script's folder, not part of the package).
"""
import ast
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest

from helpers import REPO_ROOT

PACKAGE_ROOT = REPO_ROOT / "ppcls_lite"
LAYERS = {"pipeline": 0,
          "utils": 1, "predict": 1,
          "arch": 2, "data": 2, "loss": 2, "metric": 2, "optimizer": 2,
          "config": 3, "engine": 3, "slim": 3,
          "export": 4,
          "benchmark": 5,
          "tools": 6}
# The packages an export folder carries, and the only parts of ppcls_lite each may import
# ("ppcls_lite": the root module, which the export folder carries too).
SELF_CONTAINED = {"pipeline": {"pipeline"}, "predict": {"ppcls_lite", "pipeline", "predict"}}


def import_statements(source: str, module_path: Tuple[str, ...]) -> Iterator[Tuple[int, Tuple[str, ...], list]]:
    """(line, absolute module as a tuple, imported names or None for `import X`) of every import in `source`;
    `module_path` is the importing module's dotted name as a tuple (for a package's __init__, its package
    name + "__init__"), used to resolve relative imports."""
    package = module_path[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, tuple(alias.name.split(".")), None
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                module = tuple(node.module.split("."))
            else:
                module = package[:len(package) - (node.level - 1)] + (tuple(node.module.split(".")) if node.module
                                                                        else ())
            yield node.lineno, module, [alias.name for alias in node.names]


def imported_modules(source: str, module_path: Tuple[str, ...]) -> Iterator[Tuple[int, str]]:
    """(line, absolute dotted name) of every import in `source` (see import_statements)."""
    for line, module, names in import_statements(source, module_path):
        if names is None or len(module) >= 2:
            yield line, ".".join(module)
        else:  # `from ppcls_lite import pipeline`, `from .. import utils`: each name may be a sub-package
            for name in names:
                yield line, ".".join(module + (name,))


def layer_of(dotted: str) -> Tuple[str, int]:
    """(sub-package, layer) of a dotted name inside ppcls_lite. The root module (ppcls_lite/__init__.py: warning
    filters and __version__) is ground floor."""
    parts = dotted.split(".")
    if len(parts) < 2 or parts[1] not in LAYERS:
        return "ppcls_lite", 0
    return parts[1], LAYERS[parts[1]]


def _is_docstring(node: ast.AST, parents: Dict[ast.AST, ast.AST]) -> bool:
    parent = parents.get(node)
    holder = parents.get(parent)
    return (isinstance(parent, ast.Expr) and isinstance(holder, (ast.Module, ast.FunctionDef, ast.ClassDef,
                                                                 ast.AsyncFunctionDef))
            and holder.body and holder.body[0] is parent)


def path_tricks(source: str) -> List[str]:
    """Ways a module could load code from outside its package: sys.path changes, spec_from_file_location, and paths
    into deploy/ (anywhere in the module, functions included)."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and ast.unparse(node) == "sys.path":
            found.append(f"line {node.lineno}: uses sys.path")
        elif isinstance(node, (ast.Attribute, ast.Name)) and getattr(node, "attr", getattr(node, "id", "")) == \
                "spec_from_file_location":
            found.append(f"line {node.lineno}: loads a file by path (spec_from_file_location)")
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and not _is_docstring(node, parents)
              and (node.value == "deploy" or node.value.startswith(("deploy/", "deploy\\")))):
            found.append(f"line {node.lineno}: builds a path into deploy/")
    return found


def violations(source: str, module_path: Tuple[str, ...]) -> List[str]:
    """What breaks the layering in one module's source: imports of a higher layer, a self-contained package
    (pipeline, predict) importing ppcls_lite outside what it may, and path tricks."""
    own_package, own_layer = layer_of(".".join(module_path))
    found = []
    for line, name in imported_modules(source, module_path):
        if name.split(".")[0] == "tools":
            found.append(f"line {line}: imports {name} (tools/ is above every library package)")
            continue
        if name.split(".")[0] != "ppcls_lite":
            continue
        package, layer = layer_of(name)
        allowed = SELF_CONTAINED.get(own_package)
        if allowed is not None and package not in allowed:
            found.append(f"line {line}: {own_package} imports {name}; it may import only "
                         f"{', '.join(sorted(allowed))} (it runs in export folders without the rest of ppcls_lite)")
        elif layer > own_layer:
            found.append(f"line {line}: {own_package} (layer {own_layer}) imports {name} (layer {layer})")
    return found + path_tricks(source)


def library_modules(root: Path = PACKAGE_ROOT) -> Iterator[Tuple[Path, Tuple[str, ...]]]:
    """(file, dotted module path) of every module in the package at `root`."""
    for path in sorted(root.rglob("*.py")):
        yield path, (root.name,) + path.relative_to(root).with_suffix("").parts


# ---------------------------------------------------------------------------------------------- import cycles

def import_graph(sources: Dict[Tuple[str, ...], str]) -> Dict[str, Set[str]]:
    """{module: modules it imports, anywhere in its code} among the modules of `sources` ({module path as in
    library_modules: source}). A package is its __init__; `from pkg import name` points at pkg.name when that is a
    module, else at pkg. Importing pkg.mod also runs pkg/__init__.py, but that edge is left out (else every
    package that re-exports its modules would be a cycle)."""
    def dotted(module_path):
        return ".".join(module_path[:-1] if module_path[-1] == "__init__" else module_path)

    modules = {dotted(path) for path in sources}

    def known(parts: Tuple[str, ...]) -> Optional[str]:
        while parts:
            if ".".join(parts) in modules:
                return ".".join(parts)
            parts = parts[:-1]
        return None

    graph = {}
    for module_path, source in sources.items():
        here = dotted(module_path)
        targets = set()
        for _, module, names in import_statements(source, module_path):
            for name in names or [None]:
                target = (".".join(module + (name,)) if name and ".".join(module + (name,)) in modules
                          else known(module))
                if target and target != here:
                    targets.add(target)
        graph[here] = targets
    return graph


def import_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The groups of modules that import each other round a circle (strongly connected components with more than
    one module, Tarjan's algorithm), each sorted."""
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for module in sorted(graph):
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return cycles


def package_sources(root: Path = PACKAGE_ROOT) -> Dict[Tuple[str, ...], str]:
    """{module path: source} of every module of the package at `root`."""
    return {module_path: path.read_text(encoding="utf-8") for path, module_path in library_modules(root)}


# ---------------------------------------------------------------------------------------------- the real package

def test_every_library_module_imports_only_its_layer_and_below():
    problems = []
    for path, module_path in library_modules():
        for problem in violations(path.read_text(encoding="utf-8"), module_path):
            problems.append(f"{path.relative_to(REPO_ROOT)} {problem}")
    assert len(list(library_modules())) > 30  # the walk found the package
    assert not problems, "imports that point up a layer:\n" + "\n".join(problems)


def test_no_import_cycle_in_ppcls_lite():
    graph = import_graph(package_sources())
    assert "ppcls_lite.export.verify" in graph["ppcls_lite.export.exporter"]  # the graph sees sibling imports
    assert "ppcls_lite.pipeline" in graph["ppcls_lite.predict.model_dir"]  # and `from .. import pipeline`
    cycles = import_cycles(graph)
    assert not cycles, "modules that import each other round a circle:\n" + "\n".join(map(" <-> ".join, cycles))


def test_root_module_needs_only_the_standard_library():
    """ppcls_lite/__init__.py goes into every export folder with the predictor."""
    source = (PACKAGE_ROOT / "__init__.py").read_text(encoding="utf-8")
    imported = {name.split(".")[0] for _, name in imported_modules(source, ("ppcls_lite", "__init__"))}
    assert imported <= set(sys.stdlib_module_names), imported


def test_predictor_script_runs_the_predict_package_and_paddle_only_in_its_backend():
    script = REPO_ROOT / "deploy" / "python" / "predict_cls.py"
    source = script.read_text(encoding="utf-8")
    assert len(source.splitlines()) <= 80  # a thin script: the predictor is ppcls_lite.predict
    ours = {name for _, name in imported_modules(source, ("predict_cls",)) if name.split(".")[0] == "ppcls_lite"}
    assert ours and {layer_of(name)[0] for name in ours} <= {"pipeline", "predict"}, ours
    assert "paddle" not in {name.split(".")[0] for _, name in imported_modules(source, ("predict_cls",))}
    module_level, everywhere = set(), set()
    for path, module_path in library_modules(PACKAGE_ROOT / "predict"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        module_level |= {name.split(".")[0] for _, name in imported_modules(ast.unparse(ast.Module(top, [])),
                                                                           ("ppcls_lite",) + module_path)}
        everywhere |= {name.split(".")[0] for _, name in imported_modules(ast.unparse(tree),
                                                                         ("ppcls_lite",) + module_path)}
    assert "paddle" not in module_level and "paddle" in everywhere  # imported by PaddleBackend when it is used


# ---------------------------------------------------------------------------------------------- the checkers

BAD_UTILS_MODULE = '''
import os
import sys
from ppcls_lite.utils import logger          # same layer: fine
from ..data import build_dataloader            # layer 2 from utils
sys.path.insert(0, "deploy/python")           # at import time


def later():
    from ppcls_lite.engine import build_engine  # function-level import of layer 3
    import tools.benchmark                      # tools/ from the library
    sys.path.append("elsewhere")               # inside a function: also a path trick
    spec = importlib.util.spec_from_file_location("predict_cls", os.path.join("deploy", "python"))
'''


def test_checker_finds_upward_function_level_relative_and_path_tricks():
    found = violations(BAD_UTILS_MODULE, ("ppcls_lite", "utils", "bad"))
    assert any("line 5" in p and "ppcls_lite.data" in p for p in found), found
    assert any("line 10" in p and "ppcls_lite.engine" in p for p in found), found
    assert any("line 11" in p and "tools.benchmark" in p for p in found), found
    assert any("line 6" in p and "sys.path" in p for p in found), found
    assert any("line 6" in p and "deploy/" in p for p in found), found
    assert any("line 12" in p and "sys.path" in p for p in found), found
    assert any("line 13" in p and "spec_from_file_location" in p for p in found), found
    assert any("line 13" in p and "deploy/" in p for p in found), found
    assert len(found) == 8, found  # the same-layer import is fine


@pytest.mark.parametrize("source, module_path, expected", [
    ("from ..utils import logger", ("ppcls_lite", "pipeline", "ops"), "pipeline imports ppcls_lite.utils"),
    ("from .. import utils", ("ppcls_lite", "pipeline", "ops"), "pipeline imports ppcls_lite.utils"),
    ("from ..utils import logger", ("ppcls_lite", "predict", "cli"), "predict imports ppcls_lite.utils"),
    ("from ppcls_lite import export", ("ppcls_lite", "utils", "config"), "utils (layer 1) imports ppcls_lite.export"),
    ("from ..engine import Engine", ("ppcls_lite", "arch", "registry"), "arch (layer 2) imports ppcls_lite.engine"),
    ("from ...export import x", ("ppcls_lite", "data", "preprocess", "ops"),
     "data (layer 2) imports ppcls_lite.export"),
    ("from ..benchmark import timing", ("ppcls_lite", "export", "verify"),
     "export (layer 4) imports ppcls_lite.benchmark"),
    ("from ppcls_lite.engine import x", ("ppcls_lite", "config", "schema"), None),
    ("from ..arch import build_model", ("ppcls_lite", "config", "schema"), None),
])
def test_checker_resolves_relative_imports(source, module_path, expected):
    found = violations(source, module_path)
    if expected is None:
        assert found == []
    else:
        assert any(expected in p for p in found), found


def test_pipeline_and_predict_may_import_what_export_folders_carry_and_export_may_import_engine():
    assert violations("from .decode import decode_image\nfrom ppcls_lite.pipeline import ops",
                      ("ppcls_lite", "pipeline", "runner")) == []
    assert violations("from .. import pipeline\nfrom .settings import PRECISIONS",
                      ("ppcls_lite", "predict", "model_dir")) == []
    assert violations("from ..engine.postprocess import Topk", ("ppcls_lite", "export", "exporter")) == []
    assert violations("from ppcls_lite.predict import Predictor", ("ppcls_lite", "benchmark", "infer")) == []
    # in ppcls_lite/data/__init__.py, `from . import engine` would be ppcls_lite.data.engine: its own package
    assert violations("from . import engine", ("ppcls_lite", "data", "__init__")) == []
    assert violations("from ppcls_lite import __version__", ("ppcls_lite", "export", "exporter")) == []
    assert violations('"""Run deploy/python/predict_cls.py."""\nNAME = "predict_cls.py"',
                      ("ppcls_lite", "export", "folder")) == []  # a docstring naming deploy/ is fine


CYCLE = {  # a -> b at module level, b -> c inside a function, c -> a relatively; d only points in
    ("pkg", "__init__"): "from .a import run",
    ("pkg", "a"): "from pkg import b\n",
    ("pkg", "b"): "def later():\n    import pkg.c\n",
    ("pkg", "c"): "from . import a\nimport os\n",
    ("pkg", "d"): "from .a import run\nfrom pkg.sub import x\n",
    ("pkg", "sub", "__init__"): "x = 1\n",
}


def test_cycle_checker_finds_a_synthetic_cycle_through_function_level_and_relative_imports():
    graph = import_graph(CYCLE)
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.c"} and graph["pkg.c"] == {"pkg.a"}
    assert graph["pkg.d"] == {"pkg.a", "pkg.sub"}
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
    broken = {**CYCLE, ("pkg", "b"): "import os\n"}  # b no longer imports c: no cycle
    assert import_cycles(import_graph(broken)) == []


def test_test_modules_import_helpers_not_each_other_or_conftest():
    seen = [name for _, name in imported_modules("from test_engine import tiny_config", ("tests", "test_x"))]
    assert seen == ["test_engine.tiny_config"]  # what the check below looks for
    tests_dir = REPO_ROOT / "tests"
    problems = []
    for path in sorted(tests_dir.glob("test_*.py")):
        for line, name in imported_modules(path.read_text(encoding="utf-8"), ("tests", path.stem)):
            if name.split(".")[0].startswith("test_") or name.split(".")[0] == "conftest":
                problems.append(f"{path.name} line {line}: imports {name} (move the helper into tests/helpers/)")
    assert not problems, "\n".join(problems)
