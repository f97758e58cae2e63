"""The Slim section's parts on their own: pruning (which channels, physical removal, the network's function kept
where the removed channels were unused), QAT (fake-quant layers, PACT, state in the state dict, the int8 export)
and the config checks (one error naming the key)."""
import collections
import copy

import numpy as np
import paddle
import pytest

from ppcls_lite.arch import build_model
from ppcls_lite.arch.param_names import paddleclas_parameter_names
from ppcls_lite.arch.summary import count_parameters
from ppcls_lite.config import ConfigError, get_config
from ppcls_lite.slim import apply_slim, convert_for_export, is_quantized
from ppcls_lite.slim.prune import apply_pruning, filter_scores, plan_pruning
from ppcls_lite.slim.quant import ActivationQuanter, WeightQuanter, quantize_model

from helpers import REPO_ROOT

PRUNE_CONFIG = REPO_ROOT / "configs" / "slim" / "MobileNetV3_large_x1_0_prune.yaml"
QUANT_CONFIG = REPO_ROOT / "configs" / "slim" / "MobileNetV3_large_x1_0_quantization.yaml"


def images(n=2, size=48, seed=0):
    return paddle.to_tensor(np.random.default_rng(seed).standard_normal([n, 3, size, size]).astype("float32"))


def randomise_bn(model, seed=0):
    """Non-trivial BN statistics, so that pruning the wrong channel of a BN shows in the output."""
    rng = np.random.default_rng(seed)
    for name, param in model.named_parameters():
        if name.endswith(("_mean", "bn.bias")):
            param.set_value(rng.normal(0, 0.1, param.shape).astype("float32"))
        elif name.endswith(("_variance", "bn.weight")):
            param.set_value(rng.uniform(0.5, 1.5, param.shape).astype("float32"))


# ------------------------------------------------------------------------------------------------ pruning
def test_filter_scores_rank_by_l1_norm_and_by_distance_to_the_geometric_median():
    weight = np.stack([np.full(4, 3.0), np.full(4, 0.1), np.full(4, -2.0)]).reshape(3, 4, 1, 1)
    assert list(np.argsort(-filter_scores(weight, "l1_norm"))) == [0, 2, 1]
    # three filters on a line: the middle one is the geometric median, FPGM drops it although its norm is not least
    line = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]]).reshape(3, 2, 1, 1)
    assert int(np.argmin(filter_scores(line, "fpgm"))) == 1
    assert int(np.argmin(filter_scores(line, "l1_norm"))) == 0


@pytest.mark.parametrize("name,criterion", [("MobileNetV3_large_x1_0", "fpgm"), ("MobileNetV3_small_x0_5", "l1_norm")])
def test_pruning_removes_channels_and_keeps_what_the_kept_channels_compute(name, criterion):
    # Where every reader of a channel that will be removed ignores it (zero weights), removing it must not change
    # the output: that holds only if each group (depthwise, SE, residual chain, classifier input) is cut consistently.
    paddle.seed(1)
    model = build_model({"name": name, "class_num": 10})
    randomise_bn(model)
    model.eval()
    plan = plan_pruning(model, criterion, 0.3)
    for group, kept in plan:
        dropped = np.setdiff1d(np.arange(group.channels), kept)
        assert len(kept) % 8 == 0 or len(kept) == group.channels <= 8  # whole SIMD widths
        assert abs(len(kept) - 0.7 * group.channels) <= 4 or group.channels <= 8
        for layer in group.consumers:
            weight = layer.weight.numpy()
            axis = 0 if isinstance(layer, paddle.nn.Linear) else 1
            index = [slice(None)] * weight.ndim
            index[axis] = dropped
            weight[tuple(index)] = 0
            layer.weight.set_value(weight)
    x = images()
    expected = model(x).numpy()
    params_before = count_parameters(model)[0]
    apply_pruning(plan)
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-4, atol=1e-5)
    assert count_parameters(model)[0] < 0.6 * params_before
    for block in model.blocks:  # depthwise convs keep one group per channel; residual adds still line up
        dw = block.bottleneck_conv.conv
        assert dw._groups == dw.weight.shape[0] == block.expand_conv.conv.weight.shape[0]
        if block.mid_se is not None:
            assert block.mid_se.conv2.weight.shape[0] == dw.weight.shape[0]
    model.train()
    loss = model(x).mean()
    loss.backward()  # the smaller parameters train
    assert model.fc.weight.grad is not None and model.fc.weight.shape[0] == model.last_conv.weight.shape[0]


def test_pruned_checkpoint_keys_and_parameter_names_stay_paddleclas_names():
    model = build_model({"name": "MobileNetV3_small_x0_35", "class_num": 10})
    assert isinstance(model.conv.bn, paddle.nn.BatchNorm)  # PaddleClas's layer type (pruned like BatchNorm2D)
    keys = list(model.state_dict())
    names = paddleclas_parameter_names(model)  # what .pdopt keys optimizer state by
    apply_slim(model, {"prune": {"name": "fpgm", "pruned_ratio": 0.5}})
    assert list(model.state_dict()) == keys
    assert paddleclas_parameter_names(model) == names and names["conv.bn._mean"] == "batch_norm_0.w_1"


# ------------------------------------------------------------------------------------------------ QAT
def test_qat_fake_quantizes_every_conv_and_linear_and_learns_pact_alpha():
    paddle.seed(2)
    model = build_model({"name": "MobileNetV3_small_x0_35", "class_num": 10})
    convs = sum(isinstance(layer, (paddle.nn.Conv2D, paddle.nn.Linear)) for layer in model.sublayers())
    quantize_model(model, "pact")
    assert is_quantized(model)
    weight_quanters = [layer for layer in model.sublayers() if isinstance(layer, WeightQuanter)]
    act_quanters = [layer for layer in model.sublayers() if isinstance(layer, ActivationQuanter)]
    assert len(weight_quanters) == len(act_quanters) == convs
    model.train()
    loss = model(images(4, 32)).mean()
    loss.backward()
    assert all(q.alpha.grad is not None for q in act_quanters)  # PACT's clip value is learned
    assert all(q.scales().numpy()[0] > 0 for q in act_quanters)  # the moving average saw the batch
    # the weights the convolutions use lie on a 255-step grid per output channel
    conv = next(layer for layer in model.sublayers() if isinstance(getattr(layer, "weight_quanter", None),
                                                                    WeightQuanter))
    used = conv.weight_quanter(conv.weight).numpy()
    steps = used / (conv.weight_quanter.scales().numpy().reshape(-1, 1, 1, 1) / 127)
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    state = model.state_dict()  # everything a resume needs is in the checkpoint's weights
    assert any(k.endswith("activation_quanter.alpha") for k in state)
    assert any(k.endswith("activation_quanter._accum") for k in state)
    assert any(k.endswith("weight_quanter._scale") for k in state)


def test_plain_qat_has_no_pact_and_per_tensor_weights_have_one_scale():
    model = build_model({"name": "MobileNetV3_small_x0_35", "class_num": 10})
    quantize_model(model, "qat", weight_quantize_type="abs_max")
    assert all(q.alpha is None for q in model.sublayers() if isinstance(q, ActivationQuanter))
    assert all(q.scales().shape == [1] for q in model.sublayers() if isinstance(q, WeightQuanter))


def test_converted_qat_model_computes_what_the_qat_model_computes_in_eval():
    paddle.seed(3)
    model = build_model({"name": "MobileNetV3_small_x0_35", "class_num": 10})
    apply_slim(model, {"quant": {"name": "pact"}})
    model.train()
    for seed in range(3):  # a few steps of statistics
        model(images(4, 32, seed))
    model.eval()
    x = images(2, 32, 9)
    np.testing.assert_allclose(convert_for_export(model)(x).numpy(), model(x).numpy(), atol=1e-5)


@pytest.mark.slow
def test_qat_export_holds_int8_ops_and_matches_the_qat_model(tmp_path):
    import onnx
    import onnxruntime as ort

    from ppcls_lite.export.exporter import export_model
    from ppcls_lite.export.inference_yml import normalize_transform_ops
    from ppcls_lite.export.paddle_model import run_paddle_inference

    paddle.seed(4)
    model = build_model({"name": "MobileNetV3_small_x0_35", "class_num": 10})
    apply_slim(model, {"prune": {"name": "l1_norm", "pruned_ratio": 0.25}, "quant": {"name": "pact"}})
    model.train()
    for seed in range(3):
        model(images(4, 32, seed))
    ops = normalize_transform_ops([{"DecodeImage": {}}, {"ResizeImage": {"size": 32}},
                                   {"NormalizeImage": {"scale": 1 / 255.0, "mean": [0.5] * 3, "std": [0.5] * 3}}])
    config = export_model(model, tmp_path, (32, 32), ops, 10, onnx=True)
    assert config["Global"]["model_file"] == "inference.pdmodel" and "qat" in config["Global"]["quantization"]
    assert b"quantize_linear" in (tmp_path / "inference.pdmodel").read_bytes()
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    ops_used = collections.Counter(node.op_type for node in graph.node)
    convs = ops_used["Conv"] + ops_used["MatMul"]
    assert ops_used["QuantizeLinear"] == convs and ops_used["DequantizeLinear"] == 2 * convs
    int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) >= 2]
    assert len(int8_weights) == convs  # every weight is stored as int8
    model.eval()
    x = images(3, 32, 7)
    expected = paddle.nn.functional.softmax(model(x)).numpy()
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x.numpy()})[0], expected, atol=1e-5)
    np.testing.assert_allclose(run_paddle_inference(tmp_path, x.numpy()), expected, atol=1e-4)
    # --mnn: QAT's int8 weights in MNN's int8-weight file, float activations (measured: within 2.1e-3 here)
    from ppcls_lite.export.qat import write_qat_mnn
    from ppcls_lite.predict import Predictor
    from ppcls_lite.predict.backends import MnnBackend

    assert write_qat_mnn(tmp_path) == "model_int8.mnn"
    np.testing.assert_allclose(MnnBackend(tmp_path / "model_int8.mnn", threads=1).run(x.numpy()), expected, atol=1e-2)
    float_weight_bytes = 4 * sum(int(np.prod(p.shape)) for p in model.parameters() if len(p.shape) >= 2)
    assert (tmp_path / "model_int8.mnn").stat().st_size < 0.5 * float_weight_bytes  # stored as int8
    assert Predictor(tmp_path, backend="mnn", precision="int8").model_file.name == "model_int8.mnn"


def test_qat_export_of_a_multilabel_model_is_refused_naming_why(tmp_path):
    from ppcls_lite.export.exporter import export_model
    from ppcls_lite.export.folder import ExportError
    from ppcls_lite.export.inference_yml import normalize_transform_ops

    model = build_model({"name": "MobileNetV3_small_x0_35", "class_num": 6})
    apply_slim(model, {"quant": {"name": "pact"}})
    ops = normalize_transform_ops([{"DecodeImage": {}}, {"ResizeImage": {"size": 32}}])
    with pytest.raises(ExportError, match=r"sigmoid.*Slim\.quant.*--quantize int8"):
        export_model(model, tmp_path / "out", (32, 32), ops, 6, activation="sigmoid")
    assert not (tmp_path / "out").exists()  # nothing half-written


# ------------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize("path,overrides,key", [
    (PRUNE_CONFIG, ["Slim.prune.pruned_ratio=1.0"], "Slim.prune.pruned_ratio"),
    (PRUNE_CONFIG, ["Slim.prune.pruned_ratio=0"], "Slim.prune.pruned_ratio"),
    (PRUNE_CONFIG, ["Slim.prune.name=slimming"], "Slim.prune.name"),
    (PRUNE_CONFIG, ["Arch.name=MobileNetV2"], "Slim.prune cannot prune Arch.name=MobileNetV2"),
    (QUANT_CONFIG, ["Slim.quant.name=dorefa"], "Slim.quant.name"),
    (QUANT_CONFIG, ["Slim.quant.weight_quantize_type=lsq"], "Slim.quant.weight_quantize_type"),
    (QUANT_CONFIG, ["Slim.quant.moving_rate=1.5"], "Slim.quant.moving_rate"),
    (QUANT_CONFIG, ["Slim.quant.bits=4"], "Slim.quant"),
])
def test_bad_slim_values_are_one_error_naming_the_key(path, overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        get_config(path, overrides)


def test_slim_on_a_distillation_model_is_refused_before_training(tmp_path):
    config = (REPO_ROOT / "configs" / "ImageNet" / "Distillation" /
              "mv3_large_x1_0_distill_mv3_small_x1_0.yaml").read_text()
    path = tmp_path / "distill_quant.yaml"
    path.write_text(config + "\nSlim:\n  quant:\n    name: pact\n")
    with pytest.raises(ConfigError, match="Slim cannot be applied to Arch.name=DistillationModel"):
        get_config(path)


def test_quant_and_prune_together_are_supported_prune_first():
    config = get_config(PRUNE_CONFIG, ["Slim.quant.name=pact"])
    assert config["Slim"] == {"prune": {"name": "fpgm", "pruned_ratio": 0.3}, "quant": {"name": "pact"}}
    model = build_model({"name": "MobileNetV3_small_x0_35", "class_num": 10})
    plain = copy.deepcopy(model)
    done = apply_slim(model, config["Slim"])
    assert set(done) == {"prune", "quant"} and is_quantized(model)
    assert count_parameters(model)[0] < count_parameters(plain)[0]  # pruned (the quanters add a few scalars)


def test_quick_start_slim_configs_chain_from_the_quick_start_runs():
    quick_dir = REPO_ROOT / "configs" / "quick_start"
    quick = get_config(quick_dir / "MobileNetV3_small_fashion_mnist.yaml")
    out = quick["Global"]["output_dir"].rstrip("/")
    teacher = f"{out}/MobileNetV3_large_x1_0/best_model"  # the quick start run with -o Arch.name=MobileNetV3_large_x1_0
    qat = get_config(quick_dir / "MobileNetV3_small_fashion_mnist_qat.yaml")
    assert qat["Global"]["pretrained_model"] == f"{out}/{quick['Arch']['name']}/best_model"
    assert qat["Slim"] == {"quant": {"name": "pact"}} and qat["Global"]["output_dir"] != quick["Global"]["output_dir"]
    prune = get_config(quick_dir / "MobileNetV3_large_prune_fashion_mnist.yaml")
    assert prune["Arch"]["pretrained"] == teacher and prune["Slim"]["prune"] == {"name": "fpgm", "pruned_ratio": 0.3}
    distill = get_config(quick_dir / "MobileNetV3_small_distill_fashion_mnist.yaml")
    teacher_cfg, student_cfg = (next(iter(m.values())) for m in distill["Arch"]["models"])
    assert teacher_cfg == {"name": "MobileNetV3_large_x1_0", "pretrained": teacher}
    assert student_cfg["name"] == quick["Arch"]["name"]  # the same student, the same schedule
    assert distill["Optimizer"] == quick["Optimizer"] and distill["Global"]["epochs"] == quick["Global"]["epochs"]
