"""Drop-in both ways with the real PaddleClas (issue 23).

PaddleClas -> ppcls_lite, against what PaddleClas itself wrote and printed (tests/fixtures/paddleclas, see its
README): resume its `epoch_1` (a `.pdopt` list, no global step) with the LR its own resume used, evaluate its
weights, serve its export folders (plain, with the deploy config given by -c; and export_for_fd) line for line.

ppcls_lite -> PaddleClas: every file of our checkpoints loads with plain `paddle.load` under numpy 2 (here) and
numpy 1.x, and PaddleClas's own code resumes our checkpoint and serves our export folder. The registry package
`paddleclas` 2.6.0 (PaddleClas's models, save_load.init_model and deploy predictor; it has no training engine)
runs in a cached venv with numpy 1.24.4 (tests/paddleclas_venv.py).
"""
import json
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest
import yaml

from helpers import PREDICTOR_DIR, REPO_ROOT, record_lr, subprocess_env
from ppcls_lite.arch import build_model, list_models
from ppcls_lite.arch.param_names import paddleclas_parameter_names
from ppcls_lite.config import get_config
from ppcls_lite.engine import build_engine
from ppcls_lite.engine import checkpoint as ckpt
from ppcls_lite.engine.optimizer_state import OptimizerStateError, restore_optimizer_state, unwrap_optimizer_state
from ppcls_lite.optimizer import build_optimizer
from ppcls_lite.pipeline import topk_results
from ppcls_lite.predict import Predictor, PredictorSettings, build_postprocess
from ppcls_lite.predict.deploy_config import apply_overrides, paddleclas_line, settings_from_global
from ppcls_lite.utils.portable_save import portable_save
from ppcls_lite.utils.safe_load import restricted_load
from ppcls_lite.utils.seeding import get_rng_state

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "paddleclas"
PARAM_NAMES = REPO_ROOT / "tests" / "fixtures" / "reference" / "param_names"
PADDLECLAS_CONFIG = REPO_ROOT / "tests" / "paddleclas_configs" / "ImageNet" / "MobileNetV3" / \
    "MobileNetV3_small_x0_35.yaml"
ARCH = "MobileNetV3_small_x0_35"


# ------------------------------------------------------------------------------------ what PaddleClas ran
def paddleclas_overrides():
    """The -o list of PaddleClas's own training command (commands.txt), its data paths pointed at the fixtures."""
    text = (FIXTURES / "commands.txt").read_text()
    command = text.split("## train", 1)[1].splitlines()[1]
    words = shlex.split(command)
    overrides = [words[i + 1] for i, word in enumerate(words) if word == "-o"]
    return [o.replace("=../data/", f"={FIXTURES}/data/") for o in overrides if not o.startswith("Global.output_dir")]


def logged_lrs(log: Path):
    """{(epoch, iteration): LR} from PaddleClas's `[Train][Epoch E/N][Iter: I/M]lr(LinearWarmup): X` lines."""
    lrs = {}
    for line in log.read_text().splitlines():
        if "[Train][Epoch" in line and "[Iter:" in line:
            epoch = int(line.split("[Epoch ")[1].split("/")[0])
            iteration = int(line.split("[Iter: ")[1].split("/")[0])
            lrs[(epoch, iteration)] = float(line.split("lr(LinearWarmup): ")[1].split(",")[0])
    return lrs


def paddleclas_lines(log: Path):
    """The result lines PaddleClas's deploy predictor printed."""
    return [line for line in log.read_text().splitlines() if "\tclass id(s): " in line]


def fixture_deploy_config():
    """PaddleClas's deploy config of the fixture run, its relative paths pointed at the fixtures."""
    config = yaml.safe_load((FIXTURES / "deploy" / "inference_cls.yaml").read_text())
    return apply_overrides(config, [f"Global.infer_imgs={FIXTURES}/data/images/val",
                                    f"PostProcess.Topk.class_id_map_file={FIXTURES}/data/label_list.txt"], "fixture")


def family_file(name):
    """The reference file of a model: the names do not depend on the width (make_param_names.py checks)."""
    for family in ("MobileNetV1", "MobileNetV2", "MobileNetV3_small", "MobileNetV3_large", "MobileNeXt"):
        if name.startswith(family):
            return PARAM_NAMES / (family + ("_x1_0" if family.startswith(("MobileNetV3", "MobileNeXt")) else "")
                                  + ".txt")
    return PARAM_NAMES / f"{name}.txt"


def read_param_names(path):
    return [tuple(line.split("\t")) for line in path.read_text().splitlines()]


# ------------------------------------------------------------------------------------ parameter names
BIG = ("ResNet101_vd", "ResNet152_vd", "ResNet200_vd")  # seconds to build each


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n for n in list_models()])
def test_parameter_names_are_paddleclas_names(name):
    """The names a .pdopt is written with are those PaddleClas's own model has in its training process, even when
    this process built other layers first (its counters do not start at 0)."""
    paddle.nn.Conv2D(3, 3, 1), paddle.nn.BatchNorm(3), paddle.nn.Linear(2, 2)  # move the counters
    model = build_model({"name": name, "class_num": 10})
    assert list(paddleclas_parameter_names(model).items()) == read_param_names(family_file(name))


@pytest.mark.parametrize("reference", ["DistillationModel_MobileNetV3_large_x1_0_MobileNetV3_small_x1_0",
                                       "DistillationModel_ResNet50_vd_MobileNetV3_large_x1_0"])
def test_distillation_parameter_names_are_paddleclas_names(reference):
    teacher, student = reference[len("DistillationModel_"):].split("_MobileNetV3_")
    student = "MobileNetV3_" + student
    class_num = 100 if teacher.startswith("ResNet") else 1000
    model = build_model({"name": "DistillationModel", "class_num": class_num, "freeze_params_list": [True, False],
                         "models": [
        {"Teacher": {"name": teacher, "class_num": class_num, "pretrained": False}},
        {"Student": {"name": student, "class_num": class_num, "pretrained": False}}]})
    assert list(paddleclas_parameter_names(model).items()) == read_param_names(PARAM_NAMES / f"{reference}.txt")


# ------------------------------------------------------------------------------------ optimizer state
def our_model_and_optimizer():
    """Our model and optimizer for PaddleClas's fixture run, built after other layers (counters not at 0)."""
    paddle.nn.Conv2D(3, 3, 1), paddle.nn.BatchNorm(3)
    config = get_config(PADDLECLAS_CONFIG, paddleclas_overrides())
    model = build_model(config["Arch"])
    optimizer, scheduler = build_optimizer(config["Optimizer"], 2, 4, model)
    return model, optimizer


def paddleclas_pdopt(name="epoch_1"):
    path = FIXTURES / "train" / f"{name}.pdopt"
    return unwrap_optimizer_state(restricted_load(path, return_numpy=True), str(path))


def test_paddleclas_pdopt_list_maps_onto_our_parameters():
    saved = paddleclas_pdopt()
    assert saved["LR_Scheduler"]["last_epoch"] == 4 and len(saved) == 145
    model, optimizer = our_model_and_optimizer()
    restored = restore_optimizer_state(saved, optimizer, model, "epoch_1.pdopt")
    names = paddleclas_parameter_names(model)
    for key, param in model.named_parameters():
        if param.stop_gradient:
            continue
        ours, theirs = f"{param.name}_velocity_0", f"{names[key]}_velocity_0"
        assert ours != theirs or param.name == names[key]
        np.testing.assert_array_equal(restored[ours], saved[theirs], err_msg=key)
    optimizer.set_state_dict(restored)
    loss = model(paddle.rand([2, 3, 32, 32])).mean()
    loss.backward()
    optimizer.step()  # paddle asserts every accumulator it creates was in the state dict
    assert optimizer.get_lr() == pytest.approx(0.65)


def test_foreign_names_map_by_parameter_order_with_shapes_checked():
    """BatchNorm2D-named accumulators with counters that do not start at 0 (a model built another way)."""
    saved = paddleclas_pdopt()
    renamed = {(k.replace("batch_norm_", "batch_norm2d_").replace("conv2d_", "conv2d_1") if k != "LR_Scheduler"
                else k): v for k, v in saved.items()}
    model, optimizer = our_model_and_optimizer()
    by_order = restore_optimizer_state(renamed, optimizer, model, "renamed.pdopt")
    by_name = restore_optimizer_state(saved, optimizer, model, "epoch_1.pdopt")
    assert by_order.keys() == by_name.keys()
    for key in by_name:
        if key != "LR_Scheduler":
            np.testing.assert_array_equal(by_order[key], by_name[key])
    dropped = dict(renamed)
    dropped.pop(next(k for k in renamed if "linear" in k))
    with pytest.raises(OptimizerStateError, match=r"short\.pdopt holds optimizer state for 143 parameters.* 144"):
        restore_optimizer_state(dropped, optimizer, model, "short.pdopt")
    keys = [k for k in renamed if k != "LR_Scheduler"]
    swapped = dict(renamed)
    swapped[keys[0]], swapped[keys[1]] = renamed[keys[1]], renamed[keys[0]]  # a conv and a BN scale
    with pytest.raises(OptimizerStateError, match=r"swapped\.pdopt: optimizer state .* has shape"):
        restore_optimizer_state(swapped, optimizer, model, "swapped.pdopt")


def test_pdopt_with_several_optimizers_is_refused():
    with pytest.raises(OptimizerStateError, match=r"two\.pdopt holds 2 optimizer states"):
        unwrap_optimizer_state([{}, {}], "two.pdopt")


# ------------------------------------------------------------------------------------ files for numpy 1 and 2
def pickled_globals(path):
    """The `module name` globals a pickle file asks for (our own files: unpickling them here is safe)."""
    import pickle

    names = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            names.add(f"{module} {name}")
            return super().find_class(module, name)

    with open(path, "rb") as f:
        Recorder(f).load()
    return names


def test_portable_files_name_no_numpy_internals(tmp_path):
    """Arrays are rebuilt through numpy.ndarray, which numpy 1.x and 2.x both have (not numpy._core)."""
    obj = {"w": paddle.to_tensor(np.arange(6, dtype=np.float32).reshape(2, 3)), "n": np.uint32(7),
           "rng": np.arange(5, dtype=np.uint32), "scalar": np.array(2.5, dtype=np.float16), "f": np.float64(0.5),
           "flags": np.array([True, False])}
    portable_save(obj, tmp_path / "x.pdstates")
    assert pickled_globals(tmp_path / "x.pdstates") == {"numpy ndarray", "builtins bytearray", "builtins int",
                                                        "builtins float", "builtins tuple"}
    loaded = restricted_load(tmp_path / "x.pdstates")
    np.testing.assert_array_equal(loaded["w"], obj["w"].numpy())  # saved as paddle.save does: (name, array)
    for key in ("rng", "scalar", "flags"):
        np.testing.assert_array_equal(loaded[key], obj[key])
        assert loaded[key].dtype == obj[key].dtype and loaded[key].shape == obj[key].shape
    assert loaded["n"] == 7 and type(loaded["n"]) is int and loaded["f"] == 0.5
    state = {"a.weight": paddle.ones([2, 2]), "b.bias": paddle.zeros([3])}
    portable_save(state, tmp_path / "x.pdparams")  # a state dict: paddle.save's layout with its name table
    plain = paddle.load(str(tmp_path / "x.pdparams"))
    assert sorted(plain) == ["a.weight", "b.bias"] and float(plain["a.weight"].sum()) == 4.0


def test_rng_snapshot_is_plain_python():
    def walk(value):
        assert not isinstance(value, (np.ndarray, np.generic)), type(value)
        for item in value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else []:
            walk(item)
    walk(get_rng_state())


# ------------------------------------------------------------------------------------ TIPC, metrics, ties
def test_tipc_global_keys_are_accepted_with_a_note(logged_warnings):
    config = get_config(PADDLECLAS_CONFIG, paddleclas_overrides() + [
        "Global.print_mem_info=True", "Global.log_ranks=0,1", "Global.export_for_fd=True",
        "DataLoader.Train.loader.use_shared_memory=False", "Global.use_dali=True"])
    assert config["Global"]["print_mem_info"] is True
    for key in ("print_mem_info", "log_ranks", "export_for_fd", "use_dali"):
        assert sum(f"Global.{key} has no effect here" in m for m in logged_warnings) == 1, key


def test_ties_rank_as_paddleclas():
    """PaddleClas's Topk reverses an ascending argsort: of equal scores the higher class id comes first."""
    probs = np.array([[0.0, 1.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]], dtype=np.float32)
    results = topk_results(probs, ["a", "b"], topk=4)
    assert results[0]["class_ids"] == [1, 3, 2, 0] and results[1]["class_ids"] == [3, 2, 1, 0]
    for row, result in zip(probs, results):
        assert result["class_ids"] == [int(i) for i in row.argsort()[-4:][::-1]]  # PaddleClas's expression


# ------------------------------------------------------------------------------------ deploy config
def test_deploy_overrides_and_global_keys(caplog):
    config = yaml.safe_load((REPO_ROOT / "deploy" / "configs" / "inference_cls.yaml").read_text())
    apply_overrides(config, ["Global.use_gpu=False", "Global.cpu_num_threads=1", "Global.batch_size=4",
                             "Global.benchmark=True", "Global.use_npu=True", "Global.save_log_path=null",
                             "PreProcess.transform_ops.1."
                             "CropImage.size=32", "Global.infer_imgs=a b.jpg"], "inference_cls.yaml")
    assert config["PreProcess"]["transform_ops"][1]["CropImage"]["size"] == 32
    assert config["Global"]["infer_imgs"] == "a b.jpg" and config["Global"]["save_log_path"] is None
    predict_logger = logging.getLogger("ppcls_lite.predict")
    predict_logger.addHandler(caplog.handler)  # the project logger does not propagate to the root's
    try:
        settings = settings_from_global(config["Global"], PredictorSettings(), "-c inference_cls.yaml")
    finally:
        predict_logger.removeHandler(caplog.handler)
    assert (settings.use_gpu, settings.threads, settings.batch_size, settings.enable_mkldnn) == (False, 1, 4, True)
    assert settings.precision == "fp32" and settings.backend == "paddle"
    # one line (caplog may also see it through the root logger): no auto_log benchmark, no NPU here
    warnings = sorted({r.getMessage() for r in caplog.records})
    assert len(warnings) == 1 and "benchmark=True" in warnings[0] and "use_npu" in warnings[0]
    assert "ir_optim" not in warnings[0] and "save_log_path" not in warnings[0]
    with pytest.raises(KeyError, match=r"transform_ops is a list of 4 items; '9'"):
        apply_overrides(config, ["PreProcess.transform_ops.9.CropImage.size=3"], "inference_cls.yaml")
    fp16 = settings_from_global({"use_fp16": True, "use_tensorrt": True}, PredictorSettings(), "-c x")
    assert fp16.precision == "fp16" and fp16.use_tensorrt


def test_postprocess_sections_of_every_layout(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("0 cat\n1 dog\n2 owl\n")
    probs = np.array([[0.1, 0.7, 0.2]], dtype=np.float32)
    deploy = {"main_indicator": "Topk", "Topk": {"topk": 2, "class_id_map_file": str(labels)},
              "SavePreLabel": {"save_dir": str(tmp_path / "pre_label")}}
    export_for_fd = {"Topk": {"topk": 2, "label_list": ["cat", "dog", "owl"]}}
    ours = {"Topk": {"topk": 2}, "label_list": ["cat", "dog", "owl"]}
    for section in (deploy, export_for_fd, ours):
        result = build_postprocess(section)(probs, ["x.png"])[0]
        assert result["class_ids"] == [1, 2] and result["label_names"] == ["dog", "owl"], section
    assert not (tmp_path / "pre_label").exists()  # PaddleClas's predict_cls.py never runs it either
    with pytest.raises(ValueError, match=r"main_indicator is 'Thresh'.*Topk"):
        build_postprocess({"main_indicator": "Thresh", "Topk": {}})


def test_paddleclas_result_line_is_byte_identical():
    expected = paddleclas_lines(FIXTURES / "deploy" / "predict_cls.log")[8]  # red_circle_0.png
    result = {"file_name": "/data/val/red_circle_0.png", "class_ids": [0, 3, 2, 1], "scores": [1.0, 0.0, 0.0, 0.0],
              "label_names": ["red_circle", "yellow_cross", "blue_stripes", "green_square"]}
    assert paddleclas_line(result) == expected


# ------------------------------------------------------------------------------------ PaddleClas -> ppcls_lite
def test_evaluate_paddleclas_weights():
    config = get_config(PADDLECLAS_CONFIG, paddleclas_overrides() + [
        f"Global.pretrained_model={FIXTURES}/train/latest"])
    result = build_engine(config, "eval").evaluate_report()
    assert result["top1"] == pytest.approx(0.4375)  # PaddleClas's eval.log: top1 0.43750
    assert "top1: 0.43750" in (FIXTURES / "logs" / "eval.log").read_text()


def test_resume_paddleclas_ema_checkpoint(tmp_path):
    """PaddleClas with EMA: `.pdparams` holds the average, `.pdema` the trained weights; both are restored. Without
    `.pdema` (no EMA in that run) the average starts at the checkpoint's weights."""
    import shutil

    folder = tmp_path / "paddleclas"
    folder.mkdir()
    for suffix in ckpt.SUFFIXES:
        shutil.copy(FIXTURES / "train" / f"epoch_1{suffix}", folder / f"epoch_1{suffix}")
    shutil.copy(FIXTURES / "train" / "latest.pdparams", folder / "epoch_1.pdema")  # other weights than the average

    def engine_with_ema():
        config = get_config(PADDLECLAS_CONFIG, paddleclas_overrides() + [
            f"Global.output_dir={tmp_path / 'out'}", f"Global.checkpoints={folder / 'epoch_1'}"])
        config["EMA"] = {"decay": 0.9}
        return build_engine(config, "train")

    trained = paddle.load(str(FIXTURES / "train" / "latest.pdparams"))
    average = paddle.load(str(FIXTURES / "train" / "epoch_1.pdparams"))
    engine = engine_with_ema()
    for key, value in engine.model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), trained[key].numpy(), err_msg=key)
    assert engine.ema.shadow and all(np.array_equal(v.numpy(), average[k].numpy()) for k, v in engine.ema.shadow.items())
    (folder / "epoch_1.pdema").unlink()
    engine = engine_with_ema()
    assert all(np.array_equal(v.numpy(), average[k].numpy()) for k, v in engine.ema.shadow.items())


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """Our engine resuming PaddleClas's epoch_1 for its epoch 2, with the LR each step used."""
    out = tmp_path_factory.mktemp("resumed")
    config = get_config(PADDLECLAS_CONFIG, paddleclas_overrides() + [
        f"Global.output_dir={out}", f"Global.checkpoints={FIXTURES}/train/epoch_1"])
    paddle.nn.Conv2D(3, 3, 1), paddle.nn.BatchNorm(3)  # this process's counters are not PaddleClas's
    engine = build_engine(config, "train")
    momentum = engine.optimizer._momentum
    lrs = record_lr(engine)
    engine.train()
    return {"run_dir": out / ARCH, "lrs": lrs, "momentum": momentum, "config": config}


@pytest.mark.slow
def test_resume_paddleclas_checkpoint_with_its_lr(resumed):
    """PaddleClas logs the LR after each step's scheduler step (the next step's), so its line for iteration i-1
    (the last of epoch 1 for the first step) holds the LR our step i used."""
    uninterrupted = logged_lrs(FIXTURES / "train" / "train.log")
    their_resume = logged_lrs(FIXTURES / "resume" / "train.log")
    expected = [uninterrupted[(1, 3)]] + [uninterrupted[(2, i)] for i in range(3)]
    assert [step for step, _ in resumed["lrs"]] == [5, 6, 7, 8]  # the global step continues from 4 x 1 epoch
    assert [lr for _, lr in resumed["lrs"]] == pytest.approx(expected, abs=1e-7)
    assert [their_resume[(2, i)] for i in range(3)] == [uninterrupted[(2, i)] for i in range(3)]
    assert resumed["momentum"] == pytest.approx(0.9)
    states = paddle.load(str(resumed["run_dir"] / "latest.pdstates"))
    assert states["epoch"] == 2 and states["global_step"] == 8


@pytest.mark.slow
def test_serve_paddleclas_export_folders_line_for_line():
    deploy = fixture_deploy_config()
    for folder, log in (("export", "predict_cls.log"), ("export_fd", "predict_cls_fd.log")):
        predictor = Predictor(FIXTURES / folder, PredictorSettings(threads=1), deploy=deploy)
        files = sorted(str(p) for p in (FIXTURES / "data" / "images" / "val").glob("*.png"))
        lines = [paddleclas_line(r) for r in predictor.predict_files(files)]
        assert lines == paddleclas_lines(FIXTURES / "deploy" / log), folder
    fd_alone = Predictor(FIXTURES / "export_fd", threads=1)  # its inference.yml: no Global, no DecodeImage
    result = fd_alone.predict_files([str(FIXTURES / "data" / "images" / "val" / "red_circle_0.png")])[0]
    assert result["class_ids"][0] == 0 and result["label_names"][:2] == ["red_circle", "yellow_cross"]
    with pytest.raises(FileNotFoundError, match=r"export/inference\.yml not found.*-c deploy/configs"):
        Predictor(FIXTURES / "export", threads=1)


@pytest.mark.slow
def test_paddleclas_deploy_command_line_from_deploy_folder(tmp_path):
    """The issue's command, as is, from deploy/ (relative -c, PaddleClas's -o keys), plus our CSV output."""
    command = [sys.executable, "python/predict_cls.py", "-c", "configs/inference_cls.yaml",
               "-o", f"Global.inference_model_dir={FIXTURES}/export", "-o", f"Global.infer_imgs={FIXTURES}/data/"
               "images/val", "-o", "Global.use_gpu=False", "-o", "Global.enable_mkldnn=False", "-o",
               "Global.cpu_num_threads=1", "-o", "Global.batch_size=4", "-o", "Global.use_fp16=False", "-o",
               "Global.use_tensorrt=False", "-o", "Global.benchmark=False", "-o", "PreProcess.transform_ops.0."
               "ResizeImage.resize_short=36", "-o", "PreProcess.transform_ops.1.CropImage.size=32", "-o",
               f"PostProcess.Topk.class_id_map_file={FIXTURES}/data/label_list.txt", "--output",
               str(tmp_path / "out.csv")]
    proc = subprocess.run(command, cwd=PREDICTOR_DIR.parent, env=subprocess_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == paddleclas_lines(FIXTURES / "deploy" / "predict_cls.log")
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert rows[0] == "file_name,class_ids,scores,label_names" and len(rows) == 17


# ------------------------------------------------------------------------------------ ppcls_lite -> PaddleClas
@pytest.fixture(scope="session")
def paddleclas_python():
    """A python with numpy 1.x, paddlepaddle 3.3.1 and the registry's paddleclas 2.6.0 (tests/paddleclas_venv.py:
    a venv built once under ~/.cache/ppcls_lite, by .ci/run or else here)."""
    from paddleclas_venv import paddleclas_python as build

    return build()


def run_paddleclas(python, script, *args, cwd=None):
    """`script` in PaddleClas's environment; returns its last stdout line as JSON."""
    env = subprocess_env()
    env.pop("PYTHONPATH", None)  # PaddleClas's code, not ours
    proc = subprocess.run([python, "-c", script, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


PADDLE_LOAD_EVERY_FILE = r"""
import json, sys, numpy, paddle
files = sys.argv[1:]
loaded = {f.rsplit("/", 1)[1]: len(paddle.load(f)) for f in files}  # plain paddle.load, as PaddleClas reads them
print(json.dumps({"numpy": numpy.__version__, "loaded": loaded}))
"""

PADDLECLAS_RESUMES = r"""
import json, sys, numpy, paddle
from paddleclas.ppcls.arch.backbone import MobileNetV3_small_x0_35
from paddleclas.ppcls.utils.save_load import init_model

prefix = sys.argv[1]
paddle.set_device("cpu")
model = MobileNetV3_small_x0_35(class_num=4)  # PaddleClas's own model: its parameter names
# PaddleClas's optimizer for this config: Momentum 0.9, L2 1e-5, the whole run a linear warm-up to 1.3 (8 steps)
inner = paddle.optimizer.lr.LambdaDecay(1.3, lambda step: 1.0)
schedule = paddle.optimizer.lr.LinearWarmup(inner, warmup_steps=8, start_lr=0.0, end_lr=1.3)
optimizer = paddle.optimizer.Momentum(schedule, momentum=0.9, parameters=model.parameters(),
                                      weight_decay=paddle.regularizer.L2Decay(1e-5))
states = init_model({"checkpoints": prefix}, model, [optimizer], paddle.nn.CrossEntropyLoss())
model.train()
loss = paddle.nn.functional.cross_entropy(model(paddle.rand([2, 3, 32, 32])), paddle.to_tensor([[0], [3]]))
loss.backward()
lr = optimizer.get_lr()
optimizer.step()  # every accumulator paddle creates must be in the loaded state ("Optimizer set error" otherwise)
velocity = optimizer._accumulators["velocity"][model.fc.weight.name]
print(json.dumps({"numpy": numpy.__version__, "epoch": states["epoch"], "lr": lr,
                  "last_epoch": schedule.last_epoch, "fc_velocity_name": velocity.name}))
"""

PADDLECLAS_PREDICTS = r"""
import runpy, sys
from paddle.inference import Config
Config.enable_memory_optim = lambda self, *args: None  # as shipped it fails on Paddle 3.x CPU (fixtures README)
sys.argv = ["predict_cls.py", "-c", sys.argv[1]]
runpy.run_module("paddleclas.deploy.python.predict_cls", run_name="__main__")
"""


@pytest.mark.slow
def test_our_checkpoints_load_with_plain_paddle_load_under_numpy_1_and_2(resumed, paddleclas_python):
    files = sorted(str(p) for p in resumed["run_dir"].iterdir() if p.suffix in ckpt.SUFFIXES)
    assert len(files) >= 6  # epoch_2, latest (and best_model)
    for path in files:
        assert not any("_core" in name or "paddle" in name for name in pickled_globals(path)), path
    here = json.loads(run_paddleclas(sys.executable, PADDLE_LOAD_EVERY_FILE, *files).splitlines()[-1])
    there = json.loads(run_paddleclas(paddleclas_python, PADDLE_LOAD_EVERY_FILE, *files).splitlines()[-1])
    assert here["numpy"].startswith("2.") and there["numpy"].startswith("1.")
    assert here["loaded"] == there["loaded"] and len(there["loaded"]) == len(files)


@pytest.mark.slow
def test_paddleclas_resumes_our_checkpoint(resumed, paddleclas_python):
    out = run_paddleclas(paddleclas_python, PADDLECLAS_RESUMES, resumed["run_dir"] / "epoch_2")
    result = json.loads(out.splitlines()[-1])
    assert result["numpy"].startswith("1.") and result["epoch"] == 2
    assert result["last_epoch"] == 8 and result["lr"] == pytest.approx(1.3)  # 8 steps done: warm-up over
    assert result["fc_velocity_name"] == "linear_0.w_0_velocity_0"


@pytest.mark.slow
def test_paddleclas_predictor_serves_our_export(resumed, paddleclas_python, tmp_path):
    from ppcls_lite.export import export_from_config

    config = dict(resumed["config"], Global=dict(resumed["config"]["Global"],
                                                 pretrained_model=str(resumed["run_dir"] / "latest")))
    config["Infer"]["PostProcess"]["class_id_map_file"] = str(FIXTURES / "data" / "label_list.txt")
    export_from_config(config, save_dir=tmp_path / "ours")
    deploy = fixture_deploy_config()
    deploy["Global"].update(inference_model_dir=str(tmp_path / "ours"), cpu_num_threads=1)
    (tmp_path / "deploy.yaml").write_text(yaml.safe_dump(deploy))
    theirs = [line for line in run_paddleclas(paddleclas_python, PADDLECLAS_PREDICTS, tmp_path / "deploy.yaml")
              .splitlines() if "\tclass id(s): " in line]
    predictor = Predictor(tmp_path / "ours", PredictorSettings(threads=1), deploy=deploy)
    files = sorted(str(p) for p in (FIXTURES / "data" / "images" / "val").glob("*.png"))
    ours = [paddleclas_line(r) for r in predictor.predict_files(files)]
    assert len(theirs) == 16 and theirs == ours
