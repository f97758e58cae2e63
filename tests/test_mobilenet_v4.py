"""MobileNetV4: the UIB shapes and Mobile MQA of the tables, stochastic depth and dropout (training only),
PaddleClas's fused-attention option, constructor errors, and `pretrained: True` from PaddleClas's URL paths.

State dicts, parameter counts, MACs and parity logits of all five variants against PaddleClas's definition are in
test_models.py; surgery (return_stages, stop_after, freeze_befor) in test_theseus.py."""
import urllib.parse

import numpy as np
import paddle
import pytest
from paddle import nn

from helpers import parity_weights_prefix, reference_file
from helpers import Route
from ppcls_lite.arch import build_model
from ppcls_lite.arch.backbone.mobilenet_v4 import (ARCH_TABLE, GELU, DropPath, MobileMQA, MobileNetV4,
                                                   UniversalInvertedBottleneck)
from ppcls_lite.arch.pretrained import MODEL_URLS
from ppcls_lite.utils.save_load import load_pretrained


def _eval(name, **kwargs):
    paddle.seed(3)
    model = build_model({"name": name, "class_num": 5, **kwargs})
    model.eval()
    return model


def _is_depthwise(layer, channels, kernel, stride=1):
    conv = layer.conv
    return (conv._groups == channels and list(conv.weight.shape) == [channels, 1, kernel, kernel]
            and list(conv._stride) == [stride, stride])


@pytest.mark.parametrize("name, index, shape", [
    ("MobileNetV4_conv_medium", 1, "extra_dw"),      # ("uib", 80, 192, 3, 5, 2)
    ("MobileNetV4_conv_medium", 8, "convnext"),      # ("uib", 160, 640, 3, 0, 1)
    ("MobileNetV4_conv_medium", 9, "ffn"),           # ("uib", 160, 320, 0, 0, 1)
    ("MobileNetV4_conv_small", 5, "inverted"),       # ("uib", 96, 192, 0, 3, 1)
])
def test_uib_builds_its_four_shapes_from_the_table(name, index, shape):
    _, out, mid, start, middle, stride = ARCH_TABLE[name.replace("MobileNetV4_", "")][index]
    block = build_model({"name": name}).blocks[index]
    assert isinstance(block, UniversalInvertedBottleneck)
    in_c = block.pw_exp.conv.weight.shape[1]
    assert list(block.pw_exp.conv.weight.shape) == [mid, in_c, 1, 1]
    assert list(block.pw_proj.conv.weight.shape) == [out, mid, 1, 1]
    has_start, has_mid = {"extra_dw": (True, True), "convnext": (True, False), "ffn": (False, False),
                          "inverted": (False, True)}[shape]
    assert has_start == bool(start) and has_mid == bool(middle)
    assert isinstance(block.dw_start, nn.Identity) != has_start
    assert isinstance(block.dw_mid, nn.Identity) != has_mid
    if has_start:
        assert _is_depthwise(block.dw_start, in_c, start) and isinstance(block.dw_start.act, nn.Identity)
    if has_mid:
        assert _is_depthwise(block.dw_mid, mid, middle, stride) and isinstance(block.dw_mid.act, nn.ReLU)
    assert block.use_shortcut == (stride == 1 and in_c == out)


def test_mobile_mqa_has_shared_key_value_heads_and_downsamples_them_in_stage_3():
    model = build_model({"name": "MobileNetV4_hybrid_medium"})
    attention = [(i, b) for i, b in enumerate(model.blocks) if isinstance(b, MobileMQA)]
    assert [i for i, _ in attention] == [7, 9, 11, 13, 23, 25, 27, 29]
    for i, block in attention:
        assert (block.heads, block.head_dim) == (4, 64)
        assert list(block.query_proj.weight.shape) == [256, block.norm.weight.shape[0], 1, 1]  # 4 query heads
        assert block.key_proj.weight.shape[0] == block.value_proj.weight.shape[0] == 64  # one key/value head
        assert (block.key_down_proj is not None) == (i < 15)  # kv_stride 2 at 28x28, 1 at 14x14
        assert list(block.layer_scale.gamma.shape) == [block.proj.weight.shape[0]]
        np.testing.assert_allclose(block.layer_scale.gamma.numpy(), 1e-5)
    large = build_model({"name": "MobileNetV4_hybrid_large"})
    assert isinstance(large.conv_stem.act, nn.GELU) and not large.conv_stem.act._approximate
    assert {(b.heads, b.head_dim) for b in large.blocks if isinstance(b, MobileMQA)} == {(8, 48), (8, 64)}


def test_attention_mixes_the_whole_image_and_a_uib_block_does_not():
    model = _eval("MobileNetV4_hybrid_medium")
    for block in model.blocks:  # a visible residual branch
        if hasattr(block, "layer_scale"):
            block.layer_scale.gamma.set_value(paddle.ones_like(block.layer_scale.gamma))
    x = paddle.randn([1, 256, 8, 8])
    moved = x.clone()
    moved[0, :, 0, 0] += 5.0  # change one corner of the 8x8 map
    for index, reaches_far_corner in ((23, True), (24, False)):  # MQA (kv_stride 1), then a UIB with 3x3 dw
        block = model.blocks[index]
        with paddle.no_grad():
            delta = (block(moved) - block(x)).abs().numpy()[0]
        assert (delta[:, 7, 7].max() > 1e-4) == reaches_far_corner, index
        assert delta[:, 0, 0].max() > 1e-4


def test_drop_path_and_dropout_act_only_in_training():
    name = "MobileNetV4_conv_small"
    plain, dropping = _eval(name), _eval(name, drop_path_rate=0.5, drop_rate=0.4)
    dropping.set_state_dict(plain.state_dict())
    count = len(ARCH_TABLE["conv_small"])
    rates = {i: b.drop_path.rate for i, b in enumerate(dropping.blocks)
             if isinstance(getattr(b, "drop_path", None), DropPath)}
    # rate * depth on blocks with a shortcut only (not the plain convs, nor the strided/widening blocks 4 and 10)
    assert rates == {i: 0.5 * i / count for i in (5, 6, 7, 8, 9, 11, 12, 13, 14, 15)}
    assert isinstance(dropping.dropout, nn.Dropout) and dropping.dropout.p == 0.4
    x = paddle.randn([4, 3, 64, 64])
    with paddle.no_grad():
        np.testing.assert_array_equal(dropping(x).numpy(), plain(x).numpy())  # eval: no drop path, no dropout
        plain.train(), dropping.train()
        paddle.seed(5)
        first, second = dropping(x).numpy(), dropping(x).numpy()
        np.testing.assert_array_equal(plain(x).numpy(), plain(x).numpy())  # BN batch statistics alone are fixed
    assert not np.allclose(first, second)  # paths and units dropped at random


def test_drop_path_zeroes_whole_samples_and_rescales_the_rest():
    layer = DropPath(0.5)
    layer.train()
    paddle.seed(0)
    out = layer(paddle.ones([64, 3, 2, 2])).numpy()
    per_sample = out.reshape(64, -1)
    assert set(np.unique(per_sample)) == {0.0, 2.0}
    assert all(len(set(row)) == 1 for row in per_sample)  # the whole sample is kept or dropped
    assert 16 < (per_sample[:, 0] == 0).sum() < 48


def test_gelu_traced_for_export_is_the_exact_gelu_without_the_pattern_mnn_approximates():
    layer = GELU()
    x = paddle.linspace(-8, 8, 4001).reshape([1, 1, 1, -1])
    static = paddle.jit.to_static(layer, input_spec=[paddle.static.InputSpec([1, 1, 1, 4001], "float32")],
                                  full_graph=True)
    np.testing.assert_allclose(static(x).numpy(), nn.functional.gelu(x).numpy(), atol=1e-6, rtol=0)
    ops = [op.name() for op in static.forward.main_program.global_block().ops]
    assert "pd_op.erf" in ops and "pd_op.gelu" not in ops


def test_fused_attention_option_matches_paddleclas(reference_dir, tmp_path):
    # PaddleClas's use_fused_attn calls paddle's scaled_dot_product_attention (scale 1/sqrt(head_dim))
    name = "MobileNetV4_hybrid_medium"
    model = build_model({"name": name, "class_num": 10, "use_fused_attn": True})
    load_pretrained(model, parity_weights_prefix(reference_dir, f"{name}_fused", tmp_path, model=name))
    model.eval()
    data = np.load(reference_file(reference_dir, f"parity/{name}_fused.npz"))
    with paddle.no_grad():
        logits = model(paddle.to_tensor(data["x"])).numpy()
    np.testing.assert_allclose(logits, data["logits"], atol=1e-4, rtol=0)
    unfused = np.load(reference_file(reference_dir, f"parity/{name}.npz"))["logits"]
    assert np.abs(unfused - data["logits"]).max() > 1e-2  # the two attention scales really differ


def test_constructor_errors_name_the_key():
    with pytest.raises(ValueError, match=r"Arch.drop_path_rate must be in \[0, 1\), got 1.5"):
        build_model({"name": "MobileNetV4_conv_small", "drop_path_rate": 1.5})
    with pytest.raises(ValueError, match="unknown key.*'inplanes'.*Valid keys: .*drop_rate, drop_path_rate"):
        build_model({"name": "MobileNetV4_conv_small", "inplanes": 16})  # the stem width comes from the name
    with pytest.raises(ValueError, match="variant must be one of"):
        MobileNetV4(variant="conv_tiny")


def test_any_input_size_gives_logits_for_the_hybrids():
    # odd feature maps: the strided key/value downsampling rounds up (PaddleClas's reshape assumes even sizes)
    model = _eval("MobileNetV4_hybrid_large")
    assert list(model(paddle.randn([1, 3, 75, 75])).shape) == [1, 5]


def test_pretrained_true_downloads_paddleclas_weights_from_its_url_path(mirror_server, reference_dir, tmp_path):
    name = "MobileNetV4_conv_small"
    url = MODEL_URLS[name]
    assert url == ("https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/legendary_models/"
                   "MobileNetV4_conv_small_pretrained.pdparams")
    # a 1000-class file in PaddleClas's layout (the reference state dict), served at PaddleClas's path
    served = paddle.load(str(parity_weights_prefix(reference_dir, name, tmp_path)) + ".pdparams")
    head = np.random.default_rng(0).normal(size=[1280, 1000]).astype("float32")
    served.update({"classifier.weight": head, "classifier.bias": np.zeros([1000], "float32")})
    paddle.save(served, str(tmp_path / "served.pdparams"))
    mirror_server.routes[urllib.parse.urlsplit(url).path] = Route((tmp_path / "served.pdparams").read_bytes())
    model = build_model({"name": name, "pretrained": True})
    state = model.state_dict()
    for key in ("blocks.10.dw_mid.bn._variance", "classifier.weight"):
        np.testing.assert_array_equal(state[key].numpy(), np.asarray(served[key]))
    assert len(mirror_server.requests) == 1
    tuned = build_model({"name": name, "pretrained": True, "class_num": 7})  # cached; classifier skipped
    np.testing.assert_array_equal(tuned.state_dict()["conv_stem.conv.weight"].numpy(),
                                  np.asarray(served["conv_stem.conv.weight"]))
    assert list(tuned.state_dict()["classifier.weight"].shape) == [1280, 7] and len(mirror_server.requests) == 1
