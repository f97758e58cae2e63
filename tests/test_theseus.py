"""TheseusLayer surgery on one model per family: return_patterns/stages, stop_after, freeze_befor, upgrade_sublayer."""
import numpy as np
import paddle
import pytest
from paddle import nn

from ppcls_lite.arch import build_model

SIZE = 64
# One model per family, a block in its middle, and that block's output shape on a 2x3x64x64 input.
CASES = {
    "MobileNetV1_x0_25": ("blocks.4", [2, 64, 8, 8]),
    "MobileNetV2_x0_25": ("conv4.conv4_2", [2, 8, 8, 8]),
    "MobileNetV3_small_x0_35": ("blocks.7", [2, 16, 4, 4]),
    "MobileNetV3_large_x0_35": ("blocks.5", [2, 16, 8, 8]),
    "MobileNeXt_x0_35": ("features.5", [2, 64, 8, 8]),
    "MobileNetV4_conv_small": ("blocks.9", [2, 96, 4, 4]),
    "MobileNetV4_hybrid_medium": ("blocks.7", [2, 160, 4, 4]),  # a Mobile MQA block
    "ResNet18_vd": ("blocks.3", [2, 128, 8, 8]),
}
# Stage outputs: one per output stride; MobileNetV3 small has no stride-2 stage, so one stage fewer than large.
STAGES = {
    "MobileNetV1_x0_25": ["blocks.0", "blocks.2", "blocks.4", "blocks.10", "blocks.12"],
    "MobileNetV2_x0_25": ["conv2", "conv3", "conv4", "conv6", "conv8"],
    "MobileNetV3_small_x0_35": ["blocks.0", "blocks.2", "blocks.7", "blocks.10"],
    "MobileNetV3_large_x0_35": ["blocks.0", "blocks.2", "blocks.5", "blocks.11", "blocks.14"],
    "MobileNeXt_x0_35": ["features.0", "features.2", "features.5", "features.12", "features.20"],
    # PaddleClas's MobileNetV4 stages end with the 1x1 conv block that follows the stride-32 stage
    "MobileNetV4_conv_small": ["blocks.1", "blocks.3", "blocks.9", "blocks.15", "blocks.16"],
    "MobileNetV4_hybrid_medium": ["blocks.0", "blocks.2", "blocks.14", "blocks.30", "blocks.31"],
    "ResNet18_vd": ["blocks.1", "blocks.3", "blocks.5", "blocks.7"],  # PaddleClas's stages (strides 4 to 32)
}
# Activation layers to swap in the upgrade_sublayer test (glob patterns).
ACTIVATIONS = {
    "MobileNetV1_x0_25": "blocks.*.relu",
    "MobileNetV2_x0_25": "conv*._expand_conv.act",
    "MobileNetV3_small_x0_35": "blocks.*.expand_conv.act",
    "MobileNetV3_large_x0_35": "blocks.*.expand_conv.act",
    "MobileNeXt_x0_35": "features.*.conv.7",  # the ReLU6 after the 1x1 expand in blocks with both dw convs
    "MobileNetV4_conv_small": "blocks.*.pw_exp.act",
    "MobileNetV4_hybrid_medium": "blocks.*.pw_exp.act",
    "ResNet18_vd": "blocks.*.conv0.relu",
}


@pytest.fixture(scope="module")
def images():
    paddle.seed(0)
    return paddle.randn([2, 3, SIZE, SIZE])


def _weights(layer):
    """Trainable tensors by name (Paddle also lists BN running stats as parameters, always with stop_gradient)."""
    return {n: p for n, p in layer.named_parameters() if not n.endswith(("_mean", "_variance"))}


def _eval_model(name, **kwargs):
    paddle.seed(1)
    model = build_model({"name": name, "class_num": 5, **kwargs})
    model.eval()
    return model


@pytest.mark.parametrize("name", list(CASES))
def test_return_patterns_gives_named_outputs_and_logits(name, images):
    layer, shape = CASES[name]
    head, _, index = layer.partition(".")
    bracket_spelling = f"{head}[{index}]" if index.isdigit() else layer  # PaddleClas spells `blocks[4]`
    model = _eval_model(name, return_patterns=[bracket_spelling])
    out = model(images)
    assert set(out) == {bracket_spelling, "logits"}
    assert list(out[bracket_spelling].shape) == shape
    assert list(out["logits"].shape) == [2, 5]


@pytest.mark.parametrize("name", list(STAGES))
def test_return_stages_gives_one_output_per_stride(name, images):
    out = _eval_model(name, return_stages=True)(images)
    assert list(out) == STAGES[name] + ["logits"]
    sizes = [out[key].shape[-1] for key in STAGES[name]]
    if name.startswith("MobileNetV4"):
        assert sizes[-1] == sizes[-2]  # the last stage is the 1x1 conv after the stride-32 blocks
        sizes = sizes[:-1]
    assert all(later * 2 == earlier for earlier, later in zip(sizes, sizes[1:]))  # each stage halves the size
    assert sizes[-1] == SIZE // 32
    subset = _eval_model(name, return_stages=[1, -1])(images)
    assert list(subset) == [STAGES[name][1], STAGES[name][-1], "logits"]
    single = _eval_model(name, return_patterns=STAGES[name][0])(images)  # one pattern may be a plain string
    assert list(single) == [STAGES[name][0], "logits"]


@pytest.mark.parametrize("name", list(CASES))
def test_stop_after_outputs_that_layer(name, images):
    layer, shape = CASES[name]
    full = _eval_model(name, return_patterns=[layer])
    cut = _eval_model(name, stop_after=layer)
    cut.set_state_dict(full.state_dict())
    expected = full(images)[layer]
    got = cut(images)
    assert list(got.shape) == shape
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(CASES))
def test_freeze_befor_keeps_early_parameters_fixed(name, images):
    layer, _ = CASES[name]
    paddle.seed(1)
    model = build_model({"name": name, "class_num": 5, "freeze_befor": layer})
    model.train()
    names = list(_weights(model))
    last_frozen = max(i for i, n in enumerate(names) if n.startswith(layer + "."))
    before = {n: p.numpy().copy() for n, p in _weights(model).items()}
    optimizer = paddle.optimizer.SGD(learning_rate=0.5, parameters=model.parameters())
    loss = nn.functional.cross_entropy(model(images), paddle.to_tensor([1, 3]))
    loss.backward()
    optimizer.step()
    after = _weights(model)
    frozen, trained = names[:last_frozen + 1], names[last_frozen + 1:]
    assert frozen and trained
    for n in frozen:
        assert after[n].stop_gradient, n
        np.testing.assert_array_equal(after[n].numpy(), before[n], err_msg=n)
    changed = [n for n in trained if not np.array_equal(after[n].numpy(), before[n])]
    assert changed == trained


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_upgrade_sublayer_replaces_matching_layers(name, images):
    model = _eval_model(name)
    before = model(images).numpy()
    seen_patterns = []

    def to_tanh(layer, pattern):
        assert isinstance(layer, (nn.ReLU, nn.ReLU6, nn.Hardswish))
        seen_patterns.append(pattern)
        return nn.Tanh()

    replaced = model.upgrade_sublayer(ACTIVATIONS[name], to_tanh)
    assert len(replaced) >= 2 and len(seen_patterns) == len(replaced)
    layers = dict(model.named_sublayers())
    assert all(isinstance(layers[n], nn.Tanh) for n in replaced)
    assert not np.allclose(model(images).numpy(), before, rtol=1e-3, atol=0)


def test_surgery_rejects_unknown_layer_names_with_suggestions():
    model = _eval_model("MobileNetV3_small_x0_35")
    with pytest.raises(ValueError, match="blocks.3"):
        model.stop_after("blocks.33")
    with pytest.raises(ValueError, match="no layer"):
        model.upgrade_sublayer("block.*.act", lambda layer, pattern: nn.Identity())
    with pytest.raises(ValueError, match="stage index"):
        build_model({"name": "MobileNetV3_small_x0_35", "return_stages": [7]})
    # a rejected stop_after changed nothing
    assert not any(isinstance(layer, nn.Identity) and name == "fc" for name, layer in model.named_sublayers())


def test_build_model_passes_surgery_options(images):
    model = build_model({"name": "MobileNeXt_x0_35", "class_num": 5, "stop_after": "features.2",
                         "freeze_befor": "features.0"})
    model.eval()
    assert list(model(images).shape) == [2, 48, 16, 16]
    assert all(p.stop_gradient for p in _weights(model.features[0]).values())
    assert not any(p.stop_gradient for p in _weights(model.features[1]).values())


def test_return_patterns_survive_deepcopy(images):
    """The engine's EMA keeps a deep copy of the model; the copy must report its own intermediate outputs."""
    import copy

    model = _eval_model("MobileNetV3_small_x0_35", return_patterns=["blocks.2"])
    clone = copy.deepcopy(model)
    with paddle.no_grad():
        for param in clone.parameters():
            param.set_value(param * 0.5)
    out, clone_out = model(images), clone(images)
    assert set(clone_out) == {"blocks.2", "logits"}
    assert not np.allclose(out["blocks.2"].numpy(), clone_out["blocks.2"].numpy())
