"""The practical tasks' parts (issue 22) against PaddleClas's own outputs and on bad input: post-processes, metrics,
MultiLabelLoss, class weights / focal loss, MultiLabelDataset, Padv2 / RandomCropImage, the samplers, the config
checks. tests/fixtures/paddleclas_tasks/oracle.json holds what PaddleClas's code gave (make_oracle.py)."""
import json
import re

import cv2
import numpy as np
import paddle
import pytest

from helpers import REPO_ROOT, load_config, tiny_config
from ppcls_lite import pipeline
from ppcls_lite.config import ConfigError, get_config
from ppcls_lite.data import (ClassBalancedSampler, MultiLabelDataset, MultiScaleDataset, MultiScaleSampler,
                             create_operators, label_counts, scale_batch_sizes)
from ppcls_lite.loss import build_loss
from ppcls_lite.metric import build_metrics

ORACLE = json.loads((REPO_ROOT / "tests/fixtures/paddleclas_tasks/oracle.json").read_text())
FILES = [f"f{i}.jpg" for i in range(40)]


def sigmoid(x):
    return 1 / (1 + np.exp(-np.asarray(x, dtype=np.float64)))


def softmax(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def numbers_out(text):
    """Attribute text with its probabilities taken out (ours are rounded to 5 decimals, PaddleClas's are not)."""
    return re.sub(r"prob: [0-9.]+", "prob: x", text)


# ------------------------------------------------------------------------------------------- post-processes
def test_thresh_output_matches_paddleclas():
    oracle = ORACLE["binary"]
    probs = softmax(np.array(oracle["logits"][:20])).astype(np.float32)
    ours = pipeline.build_postprocess({"name": "ThreshOutput", "threshold": 0.7, "label_0": "no_car",
                                       "label_1": "contains_car"})(probs, FILES[:20])
    for mine, theirs in zip(ours, oracle["thresh_output"]):
        assert (mine["file_name"], mine["class_ids"], mine["label_names"]) == \
               (theirs["file_name"], theirs["class_ids"], theirs["label_names"])
        assert mine["scores"] == pytest.approx(theirs["scores"], abs=1e-5)


def test_multilabel_thresh_output_matches_paddleclas_with_the_shipped_label_list():
    oracle = ORACLE["multilabel"]
    probs = sigmoid(np.array(oracle["logits"][:10])).astype(np.float32)
    # the config's PaddleClas path does not exist here: the shipped copy of the list is used
    post = pipeline.build_postprocess({"name": "MultiLabelThreshOutput", "threshold": 0.6, "delimiter": " ",
                                       "class_id_map_file": "ppcls/utils/NUS-WIDE-SCENE_label_list.txt"})
    assert post.label_list == oracle["label_names"] and post.activation == "sigmoid"
    for mine, theirs in zip(post(probs, FILES), oracle["thresh_output"]):
        assert mine["class_ids"] == theirs["class_ids"] and mine["label_names"] == theirs["label_names"]
        assert mine["scores"] == pytest.approx(theirs["scores"], abs=1e-5)


def test_attribute_post_processes_match_paddleclas():
    oracle = ORACLE["attributes"]
    probs = sigmoid(np.array(oracle["logits"][:12])).astype(np.float32)
    person = pipeline.build_postprocess({"name": "PersonAttribute", "threshold": 0.5, "glasses_threshold": 0.3,
                                         "hold_threshold": 0.6})(probs, FILES[:12])
    assert [r["attributes"] for r in person] == [r["attributes"] for r in oracle["person"]]
    assert [r["output"] for r in person] == [r["output"] for r in oracle["person"]]
    vehicle = pipeline.VehicleAttribute()(sigmoid(np.array(oracle["vehicle_logits"])).astype(np.float32), FILES[:12])
    assert [numbers_out(r["attributes"]) for r in vehicle] == [numbers_out(r["attributes"]) for r in oracle["vehicle"]]
    assert [r["output"] for r in vehicle] == [r["output"] for r in oracle["vehicle"]]
    assert set(vehicle[0]) == {"file_name", "attributes", "output"}  # PaddleClas's deploy keys


def test_attribute_results_write_csv_and_json_lines(tmp_path):
    results = pipeline.PersonAttribute()(np.full((1, 26), 0.9, np.float32), ["a b.jpg"])
    pipeline.write_results(results, tmp_path / "r.csv")
    header, row = (tmp_path / "r.csv").read_text(encoding="utf-8").splitlines()
    assert header == "file_name,attributes,output"
    assert "Glasses: True; Hat: True" in row and row.endswith("," + " ".join(["1"] * 26))
    pipeline.write_results(results, tmp_path / "r.jsonl")
    assert json.loads((tmp_path / "r.jsonl").read_text())["attributes"][0] == "Female"


def test_thresh_output_on_more_classes_and_bad_thresholds():
    probs = np.array([[0.1, 0.7, 0.2], [0.4, 0.3, 0.3]], np.float32)
    post = pipeline.ThreshOutput(threshold=0.5, default_label_index=2, label_list=["a", "b", "c"])
    assert [r["class_ids"] for r in post(probs, FILES)] == [[1], [2]]  # PaddleClas's deploy multi-class form
    with pytest.raises(ValueError, match="label_0/label_1 name the two classes.*3 classes"):
        pipeline.ThreshOutput(label_0="no", label_1="yes")(probs, FILES)
    for name, key in (("ThreshOutput", "threshold"), ("PersonAttribute", "hold_threshold"),
                      ("VehicleAttribute", "color_threshold"), ("MultiLabelThreshOutput", "threshold")):
        with pytest.raises(ValueError, match=rf"Infer.PostProcess.{key} of {name} must be a probability in \[0, 1\]"):
            pipeline.build_postprocess({"name": name, key: 1.5})
    with pytest.raises(ValueError, match="PersonAttribute needs a model with 26 outputs"):
        pipeline.PersonAttribute()(np.zeros((1, 10), np.float32), FILES)


def test_deploy_config_post_process_sections_build(tmp_path, caplog):
    import yaml

    from ppcls_lite.predict.postprocess import build_postprocess as build_deploy_postprocess

    for path in sorted((REPO_ROOT / "deploy/configs/PULC").rglob("inference_*.yaml")):
        section = yaml.safe_load(path.read_text())["PostProcess"]
        post = build_deploy_postprocess(section, where="-c PostProcess")
        assert type(post).__name__ == section["main_indicator"], path
        if section["main_indicator"] == "Topk":  # the list named as ../ppcls/utils/PULC_label_list/... ships here
            assert post.label_list and len(post.label_list) in (2, 4, 10, 232), path
    section = yaml.safe_load((REPO_ROOT / "deploy/configs/PULC/car_exists/inference_car_exists.yaml").read_text())
    section["PostProcess"]["SavePreLabel"]["save_dir"] = str(tmp_path / "sorted")
    image = tmp_path / "x.jpg"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    results = build_deploy_postprocess(section["PostProcess"])(np.array([[0.2, 0.8]], np.float32), [str(image)])
    assert results[0]["label_names"] == ["contains_car"]  # the main indicator's results
    assert not (tmp_path / "sorted").exists()  # SavePreLabel is not run, as in PaddleClas's predict_cls.py
    with pytest.raises(ValueError, match="main_indicator is 'Topk', but the section has no Topk entry"):
        build_deploy_postprocess({"main_indicator": "Topk", "ThreshOutput": {}})


# ------------------------------------------------------------------------------------------- metrics, loss
def test_tpr_at_fpr_matches_paddleclas_over_batches():
    oracle = ORACLE["binary"]
    logits, labels = np.array(oracle["logits"], np.float32), np.array(oracle["labels"])
    for max_fpr, expected in oracle["tpr_at_fpr"].items():
        metrics = build_metrics([{"TprAtFpr": {"max_fpr": float(max_fpr)}}], class_num=2)
        for start in range(0, 300, 64):
            assert metrics.update(logits[start:start + 64], labels[start:start + 64]) == {}
        result = metrics.accumulate()
        threshold, fpr, tpr = (float(v) for v in re.findall(r"[0-9.]+(?:e-?\d+)?", expected["avg_info"]))
        assert result["tpr"] == pytest.approx(expected["max_tpr"])
        assert result["threshold"] == pytest.approx(threshold) and result["fpr"] == pytest.approx(fpr)
        assert metrics.primary == ("tpr", True)


def test_tpr_at_fpr_over_two_ranks_equals_one_process():
    oracle = ORACLE["binary"]
    logits, labels = np.array(oracle["logits"], np.float32), np.array(oracle["labels"])
    ranks = [build_metrics([{"TprAtFpr": {"max_fpr": 0.1}}, {"TopkAcc": {"topk": [1]}}], 2) for _ in range(2)]
    ranks[0].update(logits[:150], labels[:150])
    ranks[1].update(logits[150:], labels[150:])
    summed = {k: ranks[0].state()[k] + ranks[1].state()[k] for k in ranks[0].state()}
    whole = build_metrics([{"TprAtFpr": {"max_fpr": 0.1}}, {"TopkAcc": {"topk": [1]}}], 2)
    whole.update(logits, labels)
    assert ranks[0].result_from_state(summed) == pytest.approx(whole.accumulate())


def test_multilabel_metrics_match_paddleclas():
    oracle = ORACLE["multilabel"]
    logits, labels = np.array(oracle["logits"], np.float32), np.array(oracle["labels"], np.float32)
    metrics = build_metrics([{"HammingDistance": None}, {"AccuracyScore": None}], class_num=33)
    sample = build_metrics([{"AccuracyScore": {"base": "sample"}}], class_num=33)
    for start in range(0, 40, 16):
        metrics.update(logits[start:start + 16], labels[start:start + 16])
        sample.update(logits[start:start + 16], labels[start:start + 16])
    result = metrics.accumulate()
    assert result["HammingDistance"] == pytest.approx(oracle["HammingDistance"], abs=1e-6)
    assert result["AccuracyScore"] == pytest.approx(oracle["AccuracyScore"])
    assert sample.accumulate()["AccuracyScore"] == pytest.approx(oracle["AccuracyScore_sample"])
    assert metrics.primary == ("HammingDistance", False)  # lower is better: best_model keeps the lowest


def test_attr_metric_matches_paddleclas():
    oracle = ORACLE["attributes"]
    logits, labels = np.array(oracle["logits"], np.float32), np.array(oracle["labels"], np.float32)
    with_ratio = np.stack([labels, np.tile(labels.mean(0), (24, 1))], 1)  # MultiLabelDataset label_ratio form
    metrics = build_metrics([{"ATTRMetric": None}], class_num=26)
    for start in range(0, 24, 10):
        metrics.update(logits[start:start + 10], with_ratio[start:start + 10])
    result = metrics.accumulate()
    keys = ["ma", "label_f1", "label_pos_recall", "label_neg_recall", "instance_f1", "instance_acc",
            "instance_prec", "instance_recall"]
    assert [result[k] for k in keys] == pytest.approx(oracle["attr_res"])
    assert metrics.primary == ("ma", True)


def test_multilabel_loss_matches_paddleclas():
    oracle = ORACLE["multilabel"]
    logits, labels = np.array(oracle["logits"], np.float32), np.array(oracle["labels"], np.float32)
    with_ratio = np.stack([labels, np.tile(labels.mean(0), (40, 1))], 1)
    for case in oracle["loss"].values():
        target = with_ratio if case["kwargs"].get("weight_ratio") else labels
        loss = build_loss([{"MultiLabelLoss": dict(case["kwargs"], weight=1.0)}])
        value = float(loss(paddle.to_tensor(logits), paddle.to_tensor(target))["loss"])
        assert value == pytest.approx(case["value"], rel=1e-5), case["kwargs"]
    with pytest.raises(ValueError, match="weight_ratio needs each class's positive ratio: set label_ratio"):
        build_loss([{"MultiLabelLoss": {"weight_ratio": True}}])(paddle.to_tensor(logits), paddle.to_tensor(labels))


def test_class_weights_and_focal_loss():
    logits = paddle.to_tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.5], [1.0, 1.0, 0.0]])
    labels = paddle.to_tensor([0, 1, 2, 1])
    weights = paddle.to_tensor([1.0, 2.0, 4.0])
    expected = paddle.nn.functional.cross_entropy(logits, labels, weight=weights)  # paddle's own weighted CE
    got = build_loss([{"CELoss": {"class_weights": [1.0, 2.0, 4.0]}}])(logits, labels)["loss"]
    assert float(got) == pytest.approx(float(expected), rel=1e-6)
    # auto: N / (C * n_c) from the counts the engine passes (n = [6, 3, 1]: weights 10/18, 10/9, 10/3)
    auto = build_loss([{"CELoss": {"class_weights": "auto"}}])
    assert auto.needs_class_counts
    auto.set_class_counts([6, 3, 1])
    auto_expected = paddle.nn.functional.cross_entropy(logits, labels, weight=paddle.to_tensor([10 / 18, 10 / 9,
                                                                                                10 / 3]))
    assert float(auto(logits, labels)["loss"]) == pytest.approx(float(auto_expected), rel=1e-5)
    # focal: gamma 0 is plain CE; gamma 2 scales each sample by (1 - p_true)^2
    assert float(build_loss([{"FocalLoss": {"gamma": 0}}])(logits, labels)["loss"]) == pytest.approx(
        float(paddle.nn.functional.cross_entropy(logits, labels)), rel=1e-6)
    p = softmax(logits.numpy())[np.arange(4), labels.numpy()]
    assert float(build_loss([{"FocalLoss": {"gamma": 2}}])(logits, labels)["loss"]) == pytest.approx(
        float(np.mean(-(1 - p) ** 2 * np.log(p))), rel=1e-5)
    with pytest.raises(ValueError, match="class_weights has 2 values but the model has 3 classes"):
        build_loss([{"CELoss": {"class_weights": [1, 2]}}])(logits, labels)


# ------------------------------------------------------------------------------------------- data
def _images(root, count, size=(40, 32)):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    names = []
    for i in range(count):
        name = f"img {i}.png"  # a space in every name
        cv2.imwrite(str(root / name), rng.integers(0, 255, (*size, 3), dtype=np.uint8))
        names.append(name)
    return names


def test_multilabel_dataset_reads_paddleclas_lists(tmp_path):
    names = _images(tmp_path, 3)
    rows = ["0,1,1", "1,0,0", "1,1,0"]
    (tmp_path / "list.txt").write_text("".join(f"{n}\t{r}\n" for n, r in zip(names, rows)), encoding="utf-8")
    dataset = MultiLabelDataset(str(tmp_path), str(tmp_path / "list.txt"), class_num=3,
                                transform_ops=[{"DecodeImage": None}, {"NormalizeImage": None}])
    image, label = dataset[0]
    assert image.shape == (3, 40, 32) and label.dtype == np.float32 and label.tolist() == [0, 1, 1]
    with_ratio = MultiLabelDataset(str(tmp_path), str(tmp_path / "list.txt"), label_ratio=True,
                                   transform_ops=[{"DecodeImage": None}, {"NormalizeImage": None}])
    assert with_ratio[1][1].shape == (2, 3)
    np.testing.assert_allclose(with_ratio[1][1][1], [2 / 3, 2 / 3, 1 / 3])  # each class's share of positives
    assert with_ratio.positives().tolist() == [2, 2, 1]


@pytest.mark.parametrize("lines, class_num, message", [
    (["a.png\t0,1,1", "b.png\t1,0"], None, r"list.txt:2: 2 labels, but the first line \(.*list.txt:1\) says 3"),
    (["a.png\t0,2,1"], None, r"list.txt:1: label '2' is not 0 or 1"),
    (["a.png\t0,1,1"], 4, r"list.txt:1: 3 labels, but Arch.class_num says 4"),
    (["a.png 0,1,1"], None, r"list.txt:1: expected `relative/path.jpg<a tab>0,1,0,...`"),
])
def test_multilabel_list_errors_name_the_file_and_line(tmp_path, lines, class_num, message):
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=message):
        MultiLabelDataset(str(tmp_path), str(tmp_path / "list.txt"), class_num=class_num)


def test_padv2_and_random_crop_image():
    img = np.full((4, 6, 3), 200, np.uint8)  # h 4, w 6
    pad, = create_operators([{"Padv2": {"size": [10, 8], "pad_mode": 1, "fill_value": 0}}])
    out = pad(img)
    assert out.shape == (8, 10, 3) and out.dtype == np.float32
    assert out[2:6, 2:8].min() == 200 and out.sum() == 200 * 4 * 6 * 3  # centred, zero around
    right_bottom = create_operators([{"Padv2": {"size": 10, "pad_mode": 0}}])[0](img)
    assert right_bottom[0, 0, 0] == 200 and right_bottom[9, 9, 0] == 127.5  # default fill
    crop, = create_operators([{"RandomCropImage": {"size": [4, 3]}}])
    assert crop(out).shape == (3, 4, 3)
    with pytest.raises(ValueError, match="Padv2: the image is 6x4, larger than the padded size 5x5"):
        create_operators([{"Padv2": {"size": 5}}])[0](img)
    with pytest.raises(ValueError, match="RandomCropImage: the image is 6x4, smaller than the crop 8x8"):
        create_operators([{"RandomCropImage": {"size": 8}}])[0](img)


def test_multi_scale_sampler_follows_paddleclas_batch_sizes(tmp_path):
    # PaddleClas's rule: batches hold about first_bs images of the first scale; scales floor to divided_factor
    assert scale_batch_sizes([160, 192, 224, 288, 320], 64) == [(160, 160, 64), (192, 192, 44), (224, 224, 32),
                                                                  (288, 288, 19), (320, 320, 16)]
    assert scale_batch_sizes([(64, 32), 50], 4, divided_factor=16) == [(64, 32, 4), (48, 48, 3)]
    assert scale_batch_sizes([160, 192], 8, is_training=False) == [(160, 160, 8)]
    names = _images(tmp_path, 10)
    (tmp_path / "list.txt").write_text("".join(f"{n} {i % 2}\n" for i, n in enumerate(names)))
    dataset = MultiScaleDataset(str(tmp_path), str(tmp_path / "list.txt"),
                                transform_ops=[{"DecodeImage": None}, {"RandCropImage": {"size": 32}},
                                               {"NormalizeImage": None}])
    sampler = MultiScaleSampler(dataset, [32, 64], first_bs=4, num_replicas=1, rank=0)
    sampler.set_epoch_seed(5)
    epoch = list(sampler)
    assert len(epoch) == len(sampler) and {len(b) for b in epoch} <= {4, 1}
    assert all(len({(w, h) for w, h, _ in b}) == 1 for b in epoch)
    assert sorted(i for b in epoch for _, _, i in b)[:10] == list(range(10))  # every image at least once
    sampler.set_epoch_seed(5)
    assert list(sampler) == epoch  # the epoch depends on its seed only
    w, h, index = next(b for b in epoch if b[0][0] == 64)[0]
    assert dataset[(w, h, index)][0].shape == (3, 64, 64)  # the sampler's resolution, not RandCropImage's 32
    assert dataset[index][0].shape == (3, 32, 32)


def test_class_balanced_sampler_evens_out_classes(tmp_path):
    names = _images(tmp_path, 44)
    labels = [0] * 40 + [1] * 4  # 10:1
    (tmp_path / "list.txt").write_text("".join(f"{n} {c}\n" for n, c in zip(names, labels)))
    from ppcls_lite.data import ImageNetDataset

    dataset = ImageNetDataset(str(tmp_path), str(tmp_path / "list.txt"))
    assert label_counts(dataset, 3).tolist() == [40, 4, 0]
    sampler = ClassBalancedSampler(dataset, batch_size=8, num_replicas=1, rank=0)
    drawn = []
    for seed in range(30):
        sampler.set_epoch_seed(seed)
        batches = list(sampler)
        assert len(batches) == len(sampler) == 6
        drawn += [labels[i] for b in batches for i in b]
    assert abs(np.mean(drawn) - 0.5) < 0.05  # the rare class is drawn as often as the common one
    sampler.set_epoch_seed(3)
    first = list(sampler)
    sampler.set_epoch_seed(3)
    assert list(sampler) == first  # an epoch depends on its seed only: a resumed run draws the same batches
    with pytest.raises(ValueError, match="shuffle: False is not possible"):
        ClassBalancedSampler(dataset, batch_size=8, shuffle=False)


# ------------------------------------------------------------------------------------------- config checks
@pytest.mark.parametrize("overrides, message", [
    (["Infer.PostProcess={name: ThreshOutput, threshold: 0.5, label_0: a, label_1: b}"],
     "Infer.PostProcess.label_0 names a class of a yes/no model, but Arch.class_num is 3"),
    (["Infer.PostProcess={name: ThreshOutput, threshold: 1.5}", "Arch.class_num=2"],
     r"Infer.PostProcess.threshold must be in \[0, 1\], got 1.5"),
    (["Infer.PostProcess={name: PersonAttribute, hold_threshold: -0.1}"],
     r"Infer.PostProcess.hold_threshold must be in \[0, 1\]"),
    (["Infer.PostProcess={name: VehicleAttribute}"], "VehicleAttribute reads 19 outputs .* Arch.class_num is 3"),
    (["Metric.Eval=[{TprAtFpr: {max_fpr: 0.01}}]"], "Metric.Eval.0.TprAtFpr scores yes/no models, but Arch.class_num"),
    (["Metric.Eval=[{TprAtFpr: {max_fpr: 2}}]", "Arch.class_num=2"], r"Metric.Eval.0.TprAtFpr.max_fpr must be in"),
    (["Loss.Train=[{CELoss: {class_weights: [1, 2]}}]"], "class_weights has 2 weights but Arch.class_num is 3"),
    (["Loss.Train=[{CELoss: {class_weights: balanced}}]"], "class_weights must be a list of weights .* or auto"),
    (["Loss.Train=[{FocalLoss: {gamma: -1}}]"], r"Loss.Train.0.FocalLoss.gamma must be >= 0"),
])
def test_bad_task_keys_are_one_error_naming_the_key(tmp_path, overrides, message):
    config = tiny_config(tmp_path, tmp_path / "out")
    with pytest.raises(ConfigError, match=message):
        load_config(config, tmp_path, overrides)


def test_every_shipped_paddleclas_task_config_loads(logged_warnings):
    paths = sorted((REPO_ROOT / "configs/PULC").rglob("*.yaml")) + [
        REPO_ROOT / "configs/quick_start/professional/MobileNetV1_multilabel.yaml",
        REPO_ROOT / "configs/multi_scale/MobileNetV1_multi_scale.yaml"]
    assert len(paths) == 12 and (REPO_ROOT / "configs/PULC/traffic_sign/MobileNetV3_samll_x0_35.yaml") in paths
    for path in paths:
        get_config(path)
    # none of their keys is "accepted without effect" any more (use_dali aside: DALI does not exist here)
    assert not [w for w in logged_warnings if "has no effect" in w and "use_dali" not in w]


def test_use_sync_bn_on_one_device_is_plain_batch_norm_and_a_note(log_lines):
    from ppcls_lite.arch import build_model

    model = build_model({"name": "MobileNetV3_small_x0_35", "class_num": 2, "use_sync_bn": True})
    assert not any(isinstance(layer, paddle.nn.SyncBatchNorm) for layer in model.sublayers())
    assert sum("use_sync_bn" in line and "plain BatchNorm" in line for line in log_lines) == 1


def test_sync_bn_conversion_reaches_paddleclas_batch_norm_layers():
    """The models use nn.BatchNorm (PaddleClas's names), which paddle's convert_sync_batchnorm skips: they are
    swapped for BatchNorm2D first, with the same weights, statistics, state_dict keys and outputs."""
    from ppcls_lite.arch import build_model
    from ppcls_lite.arch.builder import as_batch_norm_2d

    model = build_model({"name": "MobileNetV3_small_x0_35", "class_num": 2})
    model.eval()
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype("float32"))
    before, keys = model(x).numpy(), list(model.state_dict())
    assert any(isinstance(layer, paddle.nn.BatchNorm) for layer in model.sublayers())
    model = as_batch_norm_2d(model)
    assert not any(isinstance(layer, paddle.nn.BatchNorm) for layer in model.sublayers())
    assert list(model.state_dict()) == keys
    np.testing.assert_allclose(model(x).numpy(), before, atol=1e-6)
    converted = paddle.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # what use_sync_bn runs on several GPUs
    assert sum(isinstance(layer, paddle.nn.SyncBatchNorm) for layer in converted.sublayers()) > 10


@pytest.mark.slow
def test_start_eval_epoch_and_a_logits_export(tiny_dataset, tmp_path):
    from helpers import read_metrics
    from ppcls_lite.engine import build_engine
    from ppcls_lite.export import export_from_config
    from ppcls_lite.predict import Predictor

    config = load_config(tiny_config(tiny_dataset, tmp_path / "out", epochs=3), tmp_path,
                         ["Global.start_eval_epoch=2", "Arch.infer_add_softmax=False"])
    build_engine(config, "train").train()
    run = tmp_path / "out" / config["Arch"]["name"]
    assert [row["eval_top1"] != "" for row in read_metrics(run)] == [False, True, True]  # none before epoch 2
    config = load_config(tiny_config(tiny_dataset, tmp_path / "out", epochs=3), tmp_path,
                         ["Arch.infer_add_softmax=False", f"Global.pretrained_model={run / 'best_model'}",
                          f"Global.save_inference_dir={tmp_path / 'inference'}"])
    expected = build_engine(config, "infer").infer()
    info = export_from_config(config)["Global"]
    assert (info["output"], info["activation"]) == ("logits", "softmax")  # PaddleClas: no softmax in the graph
    got = Predictor(tmp_path / "inference").predict_files([r["file_name"] for r in expected])
    assert [r["class_ids"] for r in got] == [r["class_ids"] for r in expected]  # the predictor applies it
    np.testing.assert_allclose([r["scores"] for r in got], [r["scores"] for r in expected], atol=1e-4)


@pytest.mark.slow
def test_a_bad_multilabel_line_stops_training_with_one_line(tmp_path):
    from helpers import run_train

    names = _images(tmp_path / "data", 2)
    (tmp_path / "data" / "list.txt").write_text(f"{names[0]}\t{','.join(['0'] * 26)}\n"
                                                f"{names[1]}\t{','.join(['1'] * 25)}\n")
    overrides = [f"Global.output_dir={tmp_path / 'out'}", "Global.device=cpu", "Arch.pretrained=False"]
    for mode in ("Train", "Eval"):
        overrides += [f"DataLoader.{mode}.dataset.image_root={tmp_path / 'data'}",
                      f"DataLoader.{mode}.dataset.cls_label_path={tmp_path / 'data' / 'list.txt'}"]
    proc = run_train(REPO_ROOT / "configs/PULC/person_attribute/MobileNetV3_small_x0_35.yaml", *overrides,
                     check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1
    assert "list.txt:2: 25 labels, but Arch.class_num says 26" in errors[0] and "Traceback" not in proc.stderr
    assert not list((tmp_path / "out").rglob("*.pdparams"))  # stopped before training


def test_make_task_data_writes_the_worked_example_lists(tmp_path):
    from helpers import load_tool

    tool = load_tool("make_task_data")
    tool.main(["binary", "--positive", "Bag", "--out", str(tmp_path / "bag")])
    rows = [line.rsplit(" ", 1) for line in (tmp_path / "bag/val_list.txt").read_text().splitlines()]
    assert len(rows) == 1000 and sum(label == "1" for _, label in rows) == 100
    assert all(("/Bag/" in path) == (label == "1") for path, label in rows)
    tool.main(["imbalanced", "--ratio", "10", "--minority", "3", "--out", str(tmp_path / "imb")])
    labels = [int(line.rsplit(" ", 1)[1]) for line in (tmp_path / "imb/train_list.txt").read_text().splitlines()]
    assert np.bincount(labels).tolist() == [500, 500, 500, 50, 500, 500, 500, 500, 500, 500]
    for kind, width in (("multilabel", 10), ("attributes", 19)):
        tool.main([kind, "--train", "6", "--val", "3", "--out", str(tmp_path / kind)])
        dataset = MultiLabelDataset(str(tmp_path / kind), str(tmp_path / kind / "train_list.txt"), class_num=width,
                                    transform_ops=[{"DecodeImage": None}, {"NormalizeImage": None}])
        image, label = dataset[0]
        assert image.shape == (3, 56, 56) and 1 <= label.sum() <= 3
        if kind == "attributes":  # one colour and one type
            assert label[:10].sum() == 1 and label[10:].sum() == 1
