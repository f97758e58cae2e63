"""The restricted loader: crafted pickles never run, real Paddle files load exactly as paddle.load reads them."""
import os
import pickle
import pickletools
import random
import subprocess

import numpy as np
import paddle
import pytest

from helpers import load_tool
from ppcls_lite.arch import build_model
from ppcls_lite.engine import checkpoint as ckpt
from ppcls_lite.utils.safe_load import UnsafeWeightsFileError, WeightsFileError, restricted_load
from ppcls_lite.utils.save_load import load_pretrained
from ppcls_lite.utils.seeding import get_rng_state, seed_everything, set_rng_state


def _command(marker):
    return f"touch '{marker}'"


def _raw_global_call(module, name, argument):
    """A protocol-0 pickle calling module.name(argument) - what an attacker writes by hand."""
    return f"c{module}\n{name}\n(V{argument}\ntR.".encode()


class _Reduce:
    """Unpickles by calling func(*args); stands for any object whose __reduce__ was chosen by an attacker."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _assert_refused(call, path, refused, marker):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert os.path.basename(str(path)) in message and refused in message, message
    assert not os.path.exists(marker), "the crafted pickle ran"


@pytest.mark.parametrize("module,name,argument", [
    ("os", "system", "{cmd}"),
    ("posix", "system", "{cmd}"),
    ("builtins", "eval", "__import__('os').system(\"{cmd}\")"),
])
def test_crafted_global_calls_are_refused_before_running(tmp_path, module, name, argument):
    marker = tmp_path / "ran"
    path = tmp_path / "evil weights 权重.pdparams"
    path.write_bytes(_raw_global_call(module, name, argument.format(cmd=_command(marker))))
    _assert_refused(lambda: restricted_load(path), path, f"{module}.{name}", marker)
    model = build_model({"name": "MobileNetV3_small_x0_35", "class_num": 10})
    _assert_refused(lambda: load_pretrained(model, path), path, f"{module}.{name}", marker)


def test_subprocess_popen_and_a_reduce_nested_in_a_list_are_refused(tmp_path):
    marker = tmp_path / "ran"
    popen = tmp_path / "popen.pdparams"
    with open(popen, "wb") as f:
        pickle.dump({"w": _Reduce(subprocess.Popen, ["touch", str(marker)])}, f, protocol=4)
    _assert_refused(lambda: restricted_load(popen), popen, "subprocess.Popen", marker)

    nested = tmp_path / "nested.pdparams"
    with open(nested, "wb") as f:
        pickle.dump({"fc.weight": [np.zeros(3, "float32"), _Reduce(os.system, _command(marker))]}, f, protocol=2)
    _assert_refused(lambda: restricted_load(nested), nested, "system", marker)
    # the example: building a model from such a file runs nothing
    _assert_refused(lambda: build_model({"name": "MobileNetV3_small_x0_35", "class_num": 10,
                                         "pretrained": str(nested)}), nested, "system", marker)


def test_a_reduce_inside_an_optimizer_state_is_refused_on_resume(tmp_path):
    marker = tmp_path / "ran"
    prefix = str(tmp_path / "run" / "latest")
    opt_state = {"linear_0.w_0_velocity_0": np.zeros([2, 3], "float32"),
                 "LR_Scheduler": {"last_epoch": 3, "last_lr": _Reduce(os.system, _command(marker))}}
    ckpt.save_checkpoint(prefix, {"w": np.zeros([2, 3], "float32")}, opt_state, {"epoch": 1})
    _assert_refused(lambda: ckpt.load_checkpoint(prefix), prefix + ".pdopt", "posix.system", marker)


def test_truncated_and_non_pickle_files_give_clear_errors(tmp_path, reference_dir):
    data = (reference_dir / "parity" / "MobileNetV3_small_x0_35.pdparams").read_bytes()
    (tmp_path / "truncated.pdparams").write_bytes(data[: len(data) // 2])
    (tmp_path / "page.pdparams").write_text("<html><body>404 Not Found</body></html>")
    for name in ("truncated.pdparams", "page.pdparams"):
        with pytest.raises(WeightsFileError, match=rf"{name}.*truncated, corrupt"):
            restricted_load(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="missing.pdparams"):
        restricted_load(tmp_path / "missing.pdparams")


def test_paddle_saved_state_dicts_round_trip_bit_identical(tmp_path, reference_dir):
    model = build_model({"name": "MobileNetV3_small_x0_35", "class_num": 10})
    for protocol in (2, 4):
        path = str(tmp_path / f"model_p{protocol}.pdparams")
        paddle.save(model.state_dict(), path, protocol=protocol)
        ours, theirs = restricted_load(path), paddle.load(path, return_numpy=True)
        assert list(ours) == list(theirs) == list(model.state_dict())
        for key, value in theirs.items():
            assert ours[key].dtype == value.dtype and ours[key].tobytes() == value.tobytes()
        as_tensors = restricted_load(path, return_numpy=False)
        assert all(isinstance(v, paddle.Tensor) for v in as_tensors.values())
        np.testing.assert_array_equal(as_tensors["fc.bias"].numpy(), model.state_dict()["fc.bias"].numpy())
    # numpy 1.x (which wrote PaddleClas's older files) names its module numpy.core; protocol 2 stores bytes
    # through _codecs.encode
    data = open(tmp_path / "model_p2.pdparams", "rb").read()
    assert b"_codecs" in data and b"numpy._core.multiarray" in data
    (tmp_path / "numpy1.pdparams").write_bytes(data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    old = restricted_load(tmp_path / "numpy1.pdparams")
    assert all(old[k].tobytes() == v.numpy().tobytes() for k, v in model.state_dict().items())
    # a file in PaddleClas's published format reads the same as with paddle.load
    parity = str(reference_dir / "parity" / "MobileNetV3_small_x0_35.pdparams")
    theirs = paddle.load(parity, return_numpy=True)
    ours = restricted_load(parity)
    assert all(ours[k].tobytes() == theirs[k].tobytes() for k in theirs)


def test_pdstates_hold_only_plain_values_and_restore_the_rng(tmp_path):
    seed_everything(3)
    path = str(tmp_path / "latest.pdstates")
    ckpt.atomic_save({"epoch": 2, "rng": get_rng_state()}, path)
    with open(path, "rb") as f:
        opcodes = [(op.name, arg) for op, arg, _ in pickletools.genops(f)]
    strings = [arg for name, arg in opcodes if isinstance(arg, str)]
    assert "paddle" in strings  # the RNG entry is there...
    assert not any("libpaddle" in s or "GeneratorState" in s for s in strings)  # ...with no Paddle class in it
    expected = (random.random(), np.random.rand(), paddle.rand([3]).numpy())
    set_rng_state(restricted_load(path)["rng"])
    assert (random.random(), np.random.rand()) == expected[:2]
    np.testing.assert_array_equal(paddle.rand([3]).numpy(), expected[2])


def test_old_pdstates_with_paddle_generator_state_still_load(tmp_path):
    seed_everything(5)
    path = str(tmp_path / "old.pdstates")
    # what earlier versions wrote: Paddle's GeneratorState objects pickled as they are
    paddle.save({"epoch": 1, "rng": {"paddle": paddle.get_rng_state(), "numpy": np.random.get_state()}}, path)
    expected = paddle.rand([4]).numpy()
    loaded = restricted_load(path)
    set_rng_state(loaded["rng"])
    np.testing.assert_array_equal(paddle.rand([4]).numpy(), expected)


def test_the_allowance_for_generator_state_runs_no_paddle_code(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "odd.pdstates"
    # a GeneratorState whose state is a call: the inner global is still refused
    path.write_bytes(b"\x80\x04cpaddle.base.libpaddle\nGeneratorState\n)\x81" + _raw_global_call(
        "os", "system", _command(marker))[:-1] + b"b.")
    with pytest.raises(UnsafeWeightsFileError, match="os.system"):
        restricted_load(path)
    assert not marker.exists()


def test_safetensors_copy_loads_as_pretrained_path_and_url(tmp_path, reference_dir, monkeypatch):
    from safetensors import safe_open

    from ppcls_lite.utils.save_load import read_state_dict, save_safetensors

    name = "MobileNetV3_small_x0_35"
    parity = reference_dir / "parity" / name
    target = save_safetensors(read_state_dict(str(parity) + ".pdparams"), tmp_path / "model.safetensors")
    with safe_open(target, framework="numpy") as f:
        assert sorted(f.keys()) == sorted(paddle.load(str(parity) + ".pdparams", return_numpy=True))
    x = paddle.to_tensor(np.load(str(parity) + ".npz")["x"])
    expected = build_model({"name": name, "class_num": 10, "pretrained": str(parity)}).eval()(x).numpy()
    from_local = build_model({"name": name, "class_num": 10, "pretrained": target}).eval()(x).numpy()
    np.testing.assert_array_equal(from_local, expected)

    from helpers import LoopbackServer, Route

    monkeypatch.setenv("PPCLS_LITE_HOME", str(tmp_path / "home"))
    with LoopbackServer() as server:
        server.routes["/share/model.safetensors"] = Route(open(target, "rb").read())
        url = server.url + "/share/model.safetensors"
        from_url = build_model({"name": name, "class_num": 10, "pretrained": url}).eval()(x).numpy()
    np.testing.assert_array_equal(from_url, expected)
    (tmp_path / "cut.safetensors").write_bytes(open(target, "rb").read()[:1000])
    with pytest.raises(WeightsFileError, match="cut.safetensors"):
        load_pretrained(build_model({"name": name, "class_num": 10}), tmp_path / "cut.safetensors")


@pytest.mark.slow
def test_export_model_safetensors_flag(tmp_path, reference_dir, repo_root):
    import yaml

    from ppcls_lite.utils.save_load import read_state_dict

    name = "MobileNetV3_small_x0_35"
    parity = str(reference_dir / "parity" / name)
    config = {"Global": {"device": "cpu", "image_shape": [3, 32, 32]}, "Arch": {"name": name, "class_num": 10},
              "Infer": {"transforms": [{"DecodeImage": {"to_rgb": True}}, {"ResizeImage": {"size": 32}},
                                       {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.5] * 3,
                                                           "std": [0.5] * 3, "order": ""}},
                                       {"ToCHWImage": None}],
                        "PostProcess": {"name": "Topk", "topk": 1}}}
    (tmp_path / "export.yaml").write_text(yaml.safe_dump(config))
    tool = load_tool("export_model")
    out = tmp_path / "inference"
    tool.main(["-c", str(tmp_path / "export.yaml"), "-o", f"Global.pretrained_model={parity}",
               "-o", f"Global.save_inference_dir={out}", "--safetensors"])
    copy, original = read_state_dict(out / "model.safetensors"), read_state_dict(parity + ".pdparams")
    assert sorted(copy) == sorted(original)
    assert all(copy[k].tobytes() == original[k].tobytes() for k in original)


def test_nested_tensors_come_back_as_paddle_load_returns_them(tmp_path):
    # paddle.save pickles a Tensor outside a flat state dict as builtins.tuple((name, ndarray))
    path = str(tmp_path / "nested.pdstates")
    paddle.save({"epoch": 1, "ema": {"w": paddle.ones([2, 2])}, "mixed": [paddle.zeros([3]), np.arange(3)]}, path)
    for return_numpy in (True, False):
        theirs, ours = paddle.load(path, return_numpy=return_numpy), restricted_load(path, return_numpy=return_numpy)
        assert type(ours["ema"]["w"]) is type(theirs["ema"]["w"])
        assert [type(v) for v in ours["mixed"]] == [type(v) for v in theirs["mixed"]]
        np.testing.assert_array_equal(np.asarray(ours["ema"]["w"]), np.ones([2, 2]))
