"""Every public function of ppcls_lite/, and every public method of its public classes, has complete type hints.

Read from the source with ast (nothing is imported): parameters other than self/cls and the return type must be
annotated; *args/**kwargs may stay bare.
"""
import ast
from pathlib import Path

from helpers import REPO_ROOT


def unannotated(source: str, where: str = "<source>") -> list:
    """`file:line name` of each public function or public-class method with a missing parameter or return hint."""
    tree = ast.parse(source)
    found = []

    def check(func: ast.FunctionDef, qualname: str) -> None:
        params = [a for a in func.args.posonlyargs + func.args.args + func.args.kwonlyargs
                  if a.arg not in ("self", "cls")]
        if func.returns is None or any(a.annotation is None for a in params):
            found.append(f"{where}:{func.lineno} {qualname}")

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            check(node, node.name)
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and not item.name.startswith("_"):
                    check(item, f"{node.name}.{item.name}")
    return found


def test_checker_finds_missing_hints():
    bad = ("def f(x):\n    return x\n"
           "def g(x: int):\n    return x\n"
           "class C:\n    def m(self, y) -> int:\n        return y\n    def _private(self, z):\n        pass\n"
           "def _helper(a):\n    pass\n"
           "def ok(a: int, *args, b: str = '', **kwargs) -> None:\n    pass\n")
    assert unannotated(bad) == ["<source>:1 f", "<source>:3 g", "<source>:6 C.m"]


def test_every_public_function_of_the_package_has_type_hints():
    package = Path(REPO_ROOT) / "ppcls_lite"
    missing = []
    for path in sorted(package.rglob("*.py")):
        missing += unannotated(path.read_text(encoding="utf-8"), str(path.relative_to(REPO_ROOT)))
    assert not missing, "public functions without complete type hints:\n" + "\n".join(missing)
