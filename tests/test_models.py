"""Models: registry, exact PaddleClas weight compatibility, parity logits, MACs, input sizes, to_static, loading."""
import copy

import numpy as np
import paddle
import pytest

from helpers import (load_tool, parity_weights_prefix, read_models_tsv, read_state_dict_txt, reference_file,
                      state_dict_entries)
from ppcls_lite.arch import build_model, list_models
from ppcls_lite.arch.summary import count_macs, count_parameters
from ppcls_lite.utils.save_load import load_pretrained

MOBILENET_V4 = ["MobileNetV4_conv_small", "MobileNetV4_conv_medium", "MobileNetV4_conv_large",
                "MobileNetV4_hybrid_medium", "MobileNetV4_hybrid_large"]
# MobileNetV4's and ResNet_vd's parity weights are too large to store (ResNet50_vd: 94 MB): they come from the
# seeded rule of tests/fixtures/reference/parity_rule.py (helpers.parity_weights_prefix).
PARITY_NAMES = ["MobileNetV1_x0_25", "MobileNetV2_x0_25", "MobileNetV3_small_x0_35", "MobileNetV3_large_x0_35",
                "MobileNeXt_x0_35"] + MOBILENET_V4 + ["ResNet18_vd", "ResNet50_vd"]
ONE_PER_FAMILY = ["MobileNetV1_x0_25", "MobileNetV2_x0_25", "MobileNetV3_small_x0_35", "MobileNeXt_x0_35",
                  "MobileNetV4_hybrid_medium", "ResNet18_vd"]


def test_list_models_names_all_paddleclas_models(reference_dir):
    assert list_models() == list(read_models_tsv(reference_dir))
    assert len(list_models()) == 36  # 30 mobile models + the ResNet_vd family (distillation teachers)
    assert "DistillationModel" not in list_models()  # a wrapper of other models, not a model of its own


@pytest.mark.parametrize("name", list_models())  # == the models.tsv names (test above)
def test_state_dict_params_and_macs_match_reference(name, reference_dir):
    model = build_model({"name": name})
    expected = read_state_dict_txt(reference_file(reference_dir, f"state_dict/{name}.txt"))
    got = state_dict_entries(model)
    assert [e[0] for e in got] == [e[0] for e in expected]  # same keys, same order
    assert got == expected  # same shapes and dtypes
    row = read_models_tsv(reference_dir)[name]
    trainable, total = count_parameters(model)
    # models.tsv counts every state-dict element, i.e. trainable parameters plus the BN running mean/variance
    bn_stats = sum(int(np.prod(s)) for k, s, _ in expected if k.endswith(("._mean", "._variance")))
    assert total == int(row["params"])
    assert trainable == int(row["params"]) - bn_stats
    assert abs(count_macs(model, 224) - int(row["macs_224"])) <= 0.01 * int(row["macs_224"])


@pytest.mark.parametrize("name", PARITY_NAMES)
def test_parity_weights_reproduce_reference_logits(name, reference_dir, tmp_path):
    """PaddleClas's logits for each stored input: 128 px and, where the file has it, 100 px, where odd feature
    maps reach the padded strided layers (ResNet_vd's 'SAME'-padded average-pool shortcuts)."""
    model = build_model({"name": name, "class_num": 10})
    report = load_pretrained(model, parity_weights_prefix(reference_dir, name, tmp_path))
    assert not (report["missing"] or report["unexpected"] or report["mismatched"])
    model.eval()
    data = np.load(reference_file(reference_dir, f"parity/{name}.npz"))
    inputs = [key for key in data.files if key.startswith("x")]
    assert "x" in inputs
    with paddle.no_grad():
        for key in inputs:
            logits = model(paddle.to_tensor(data[key])).numpy()
            np.testing.assert_allclose(logits, data[key.replace("x", "logits", 1)], atol=1e-4, rtol=0, err_msg=key)


@pytest.mark.parametrize("name", ONE_PER_FAMILY + ["MobileNetV3_large_x0_35"])
@pytest.mark.parametrize("size", [32, 75])
def test_any_input_size_and_class_num_gives_logits(name, size):
    model = build_model({"name": name, "class_num": 3})
    model.eval()
    assert list(model(paddle.randn([2, 3, size, size])).shape) == [2, 3]


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_to_static_matches_dygraph(name):
    paddle.seed(0)
    model = build_model({"name": name, "class_num": 4})
    model.eval()
    x = paddle.randn([2, 3, 64, 64])
    expected = model(x).numpy()
    static_model = paddle.jit.to_static(model, input_spec=[paddle.static.InputSpec([None, 3, 64, 64], "float32")],
                                        full_graph=True)
    np.testing.assert_allclose(static_model(x).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_build_model_keeps_config_and_rejects_bad_input():
    config = {"name": "MobileNetV3_small_x0_35", "class_num": 7, "return_stages": [0]}
    snapshot = copy.deepcopy(config)
    build_model(config)
    assert config == snapshot
    with pytest.raises(KeyError, match="Did you mean 'MobileNetV3_small_x0_35'"):  # the closest name
        build_model({"name": "MobileNetV3_smal_x0_35"})
    with pytest.raises(ValueError, match="unknown model 'MobilenetV2' in Arch.name. Valid models: MobileNetV1_x0_25, "
                                         ".*Did you mean 'MobileNetV2'"):
        build_model({"name": "MobilenetV2"})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['dropout'\] in Arch \(MobileNetV3_small_x0_35\). "
                                         r"Valid keys: name, pretrained, use_ssld, use_sync_bn, infer_add_softmax, class_num, dropout_prob.*"
                                         r"Did you mean 'dropout_prob'"):
        build_model({"name": "MobileNetV3_small_x0_35", "dropout": 0.1})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['dropout_prob'\] in Arch \(MobileNetV1\)"):
        build_model({"name": "MobileNetV1", "dropout_prob": 0.1})  # the family has no dropout
    with pytest.raises(ValueError, match="name"):
        build_model({"class_num": 3})
    with pytest.raises(ValueError, match="scale"):
        build_model({"name": "MobileNetV1", "scale": 0.5})  # widths come from the name


def test_pretrained_true_means_paddleclas_weights_and_false_loads_nothing():
    from ppcls_lite.arch.pretrained import resolve_pretrained

    # downloading itself is tested against a loopback server in test_download.py
    assert resolve_pretrained("MobileNetV1_x0_25", True).endswith(
        "/dygraph/legendary_models/MobileNetV1_x0_25_pretrained.pdparams")
    with pytest.raises(ValueError, match="True/False, a local path or an http"):
        build_model({"name": "MobileNetV1_x0_25", "pretrained": 3})
    for value in (False, None):
        assert list(build_model({"name": "MobileNetV1_x0_25", "pretrained": value, "class_num": 2})(
            paddle.randn([1, 3, 32, 32])).shape) == [1, 2]


def test_pretrained_path_skips_mismatched_classifier(reference_dir):
    name = "MobileNetV3_small_x0_35"
    prefix = reference_dir / "parity" / name
    model = build_model({"name": name, "class_num": 1000, "pretrained": str(prefix)})  # file has a 10-class fc
    weights = paddle.load(str(prefix) + ".pdparams", return_numpy=True)
    state = model.state_dict()
    key = "blocks.3.mid_se.conv1.weight"
    np.testing.assert_array_equal(state[key].numpy(), weights[key])
    assert list(state["fc.weight"].shape) == [1280, 1000]
    report = load_pretrained(model, str(prefix) + ".pdparams")  # the extension is optional
    assert report["mismatched"] == [("fc.weight", [1280, 10], [1280, 1000]), ("fc.bias", [10], [1000])]
    assert report["missing"] == [] and report["unexpected"] == []
    assert len(report["loaded"]) == len(state) - 2


def test_pretrained_reports_missing_and_unexpected_keys(tmp_path):
    source = build_model({"name": "MobileNetV1_x0_25", "class_num": 5})
    weights = {k: v.numpy() for k, v in source.state_dict().items() if k != "fc.bias"}
    weights["head.extra"] = np.zeros([3], "float32")
    paddle.save(weights, str(tmp_path / "partial.pdparams"))
    report = load_pretrained(build_model({"name": "MobileNetV1_x0_25", "class_num": 5}), tmp_path / "partial")
    assert report["missing"] == ["fc.bias"] and report["unexpected"] == ["head.extra"]


def test_bad_weight_files_raise_errors_naming_the_file(tmp_path, reference_dir):
    model = build_model({"name": "MobileNetV3_small_x0_35", "class_num": 10})
    data = (reference_dir / "parity" / "MobileNetV3_small_x0_35.pdparams").read_bytes()
    (tmp_path / "truncated.pdparams").write_bytes(data[: len(data) // 3])
    (tmp_path / "text.pdparams").write_text("not weights")
    paddle.save([1, 2, 3], str(tmp_path / "list.pdparams"))
    for bad in ("truncated", "text", "list"):
        with pytest.raises(ValueError, match=f"{bad}.pdparams"):
            load_pretrained(model, tmp_path / bad)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_pretrained(model, tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build_model({"name": "MobileNetV3_small_x0_35", "pretrained": str(tmp_path / "nowhere")})


def _load_summary_tool(repo_root):
    return load_tool("model_summary")


def test_model_summary_tool_prints_one_model(repo_root, capsys):
    tool = _load_summary_tool(repo_root)
    rows = tool.main(["MobileNetV3_small_x0_35", "--size", "64", "--runs", "1"])
    assert rows[0]["macs"] == count_macs(build_model({"name": "MobileNetV3_small_x0_35"}), 64)
    assert rows[0]["latency_bs1_ms"] > 0 and rows[0]["latency_bs8_ms"] > 0
    assert "MobileNetV3_small_x0_35" in capsys.readouterr().out
    with pytest.raises(KeyError, match="MobileNetV3_large_x1_0"):
        tool.main(["MobileNetV3_large", "--runs", "0"])


@pytest.mark.slow
def test_model_summary_tool_writes_model_zoo_markdown(repo_root, tmp_path):
    tool = _load_summary_tool(repo_root)
    out_file = tmp_path / "MODEL_ZOO.md"
    tool.main(["--markdown", str(out_file)])
    text = out_file.read_text()
    for name in list_models():
        assert f"| {name} |" in text
    assert "| MobileNetV3_large_x1_0 | 5.480 | 5.505 | 219.8 | 75.3 | [1] |" in text
    assert "PaddleClas" in text and "rethinking_bottleneck_design" in text
    # MobileNetV4 also at its evaluation size: MACs there, recorded latency, PaddleClas's reported top-1
    macs_256 = count_macs(build_model({"name": "MobileNetV4_conv_small"}), 256) / 1e6
    assert f"| MobileNetV4_conv_small | 256 | 3.774 | {macs_256:.1f} | 35.0 | 414.6 | 74.6 |" in text
    assert text == (repo_root / "docs" / "MODEL_ZOO.md").read_text()  # the committed table is up to date


def test_older_mobilenext_names_build_the_same_network():
    """PaddleClas's older MobileNeXt_35/_50/_75/_100/_140 are the x-named networks (same layer names)."""
    for old, name in (("MobileNeXt_35", "MobileNeXt_x0_35"), ("MobileNeXt_100", "MobileNeXt_x1_0"),
                      ("MobileNeXt_140", "MobileNeXt_x1_4")):
        paddle.seed(0)
        old_state = build_model({"name": old, "class_num": 5}).state_dict()
        paddle.seed(0)
        new_state = build_model({"name": name, "class_num": 5}).state_dict()
        assert list(old_state) == list(new_state)
        assert all(old_state[k].shape == new_state[k].shape for k in new_state)
        assert all(np.array_equal(old_state[k].numpy(), new_state[k].numpy()) for k in new_state)
    assert "MobileNeXt_100" not in list_models()  # listed once, under PaddleClas's current name
