"""The one Registry: registering, aliases, parent registries, named lists, kwargs checked from signatures, and
its use without ppcls_lite (the export-folder predictor carries only the pipeline package)."""
import subprocess
import sys
from pathlib import Path

import pytest

from ppcls_lite.utils.registry import Registry, UnknownNameError, parse_named_list

REPO_ROOT = Path(__file__).resolve().parents[1]


def make_registry():
    shapes = Registry("shape")

    @shapes.register()
    class Square:
        def __init__(self, side, colour="red"):
            self.side, self.colour = side, colour

    @shapes.register("Circle")
    def circle(radius=1.0, *, filled=False):
        return ("circle", radius, filled)

    shapes.add("UnitSquare", Square, side=1)  # fixed kwargs: a variant of a family
    shapes.add_alias("Sqr", "Square")
    return shapes, Square


def test_register_build_and_list():
    shapes, Square = make_registry()
    assert shapes.names() == ["Square", "Circle", "UnitSquare"] and len(shapes) == 3
    assert "Sqr" in shapes and "Square" in shapes and "Triangle" not in shapes
    square = shapes.build("Square", {"side": 3}, "Shapes.0.Square")
    assert isinstance(square, Square) and square.side == 3 and square.colour == "red"
    assert shapes.build("Circle", {"filled": True}) == ("circle", 1.0, True)
    unit = shapes.build("UnitSquare", {"colour": "blue"})
    assert (unit.side, unit.colour) == (1, "blue")
    assert shapes.accepted("UnitSquare") == ["colour"]  # the fixed width is not a config key
    assert shapes.canonical("Sqr") == "Square" and isinstance(shapes.build("Sqr", {"side": 2}), Square)
    with pytest.raises(ValueError, match="registered twice"):
        shapes.add("Square", Square)


def test_errors_name_the_path_the_valid_names_and_the_closest():
    shapes, _ = make_registry()
    with pytest.raises(UnknownNameError, match=r"unknown shape 'Sqare' in Shapes.0\. Valid shapes: Square, Circle, "
                                               r"UnitSquare\. Did you mean 'Square'\?"):
        shapes.build("Sqare", {}, "Shapes.0")
    with pytest.raises(KeyError):  # also a KeyError, like a dict lookup
        shapes.get("Hexagon")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['colr'\] in Shapes.0.Square\. Valid keys: side, "
                                         r"colour\. Did you mean 'colour'\?"):
        shapes.build("Square", {"side": 1, "colr": "red"}, "Shapes.0.Square")
    with pytest.raises(ValueError, match=r"bad parameters for shape Square \(Shapes.0.Square\): .*side"):
        shapes.build("Square", {}, "Shapes.0.Square")  # a required parameter missing


def test_parent_registry_holds_its_names_too():
    base, _ = make_registry()
    more = Registry("shape", parent=base)

    @more.register()
    class Star:
        def __init__(self, points=5):
            self.points = points

    assert more.names() == ["Square", "Circle", "UnitSquare", "Star"]
    assert "Star" not in base and more.build("Star", {"points": 6}).points == 6
    assert more.build("Sqr", {"side": 2}).side == 2  # parent aliases too


def test_named_lists_paddleclas_style():
    items = [{"CELoss": {"weight": 1.0}}, {"ToCHWImage": None}]
    assert list(parse_named_list(items, "Loss.Train")) == [(0, "CELoss", {"weight": 1.0}), (1, "ToCHWImage", {})]
    assert list(parse_named_list(["ToCHWImage"], "ops", bare_names=True)) == [(0, "ToCHWImage", {})]
    with pytest.raises(ValueError, match=r"'Loss.Train.0' must be a one-key mapping"):
        list(parse_named_list([{"A": {}, "B": {}}], "Loss.Train"))
    with pytest.raises(ValueError, match=r"'Loss.Train.0.CELoss' must hold a mapping of parameters"):
        list(parse_named_list([{"CELoss": 3}], "Loss.Train"))
    with pytest.raises(ValueError, match=r"'Loss.Train' must be a list"):
        list(parse_named_list({"CELoss": {}}, "Loss.Train"))
    shapes, _ = make_registry()
    built = shapes.build_list([{"Square": {"side": 2}}, {"Circle": None}], "Shapes")
    assert built[0].side == 2 and built[1] == ("circle", 1.0, False)
    with pytest.raises(UnknownNameError, match=r"in Shapes.1\. Valid shapes"):
        shapes.build_list([{"Square": {"side": 2}}, {"Cirle": None}], "Shapes")


def test_post_process_is_registered():
    from ppcls_lite.pipeline.postprocess import POSTPROCESSES, Topk, build_postprocess

    assert POSTPROCESSES.names() == ["Topk", "Embedding"]  # Embedding: a retrieval model's features
    assert isinstance(build_postprocess({"name": "Topk", "topk": 3}), Topk)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['top_k'\] in Infer.PostProcess \(Topk\).*"
                                         r"Did you mean 'topk'"):
        build_postprocess({"name": "Topk", "top_k": 3})
    with pytest.raises(ValueError, match="unknown post-process 'TopK'.*Did you mean 'Topk'"):
        build_postprocess({"name": "TopK"})


@pytest.mark.slow
def test_registry_runs_without_ppcls_lite(tmp_path):
    # As in an export folder: the pipeline package copied alone, loaded under another name, no paddle.
    import shutil

    shutil.copytree(REPO_ROOT / "ppcls_lite" / "pipeline", tmp_path / "pipeline")
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('standalone_pipeline', {str(tmp_path / 'pipeline' / '__init__.py')!r},"
        f" submodule_search_locations=[{str(tmp_path / 'pipeline')!r}])\n"
        "module = importlib.util.module_from_spec(spec); sys.modules['standalone_pipeline'] = module\n"
        "spec.loader.exec_module(module)\n"
        "ops = module.create_operators([{'ResizeImage': {'size': 8}}, 'ToCHWImage'])\n"
        "try:\n"
        "    module.create_operators([{'ResizeImag': {'size': 8}}])\n"
        "except KeyError as exc:\n"
        "    print(exc)\n"
        "print(len(ops), sorted(m for m in sys.modules if m.startswith(('ppcls_lite', 'paddle'))))\n"
    )
    proc = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "unknown transform op 'ResizeImag'" in lines[0] and "Did you mean 'ResizeImage'" in lines[0]
    assert lines[1] == "2 []"  # built both ops; nothing of ppcls_lite or paddle was imported


def test_predictor_backends_are_registered():
    from ppcls_lite import predict as predict_cls

    assert predict_cls.BACKENDS.names() == ["paddle", "onnxruntime", "mnn"]
    with pytest.raises(ValueError, match=r"unknown backend 'onnxruntim'\. Valid backends: paddle, onnxruntime, "
                                         r"mnn\. Did you mean 'onnxruntime'"):
        predict_cls.Predictor(REPO_ROOT, backend="onnxruntim")
