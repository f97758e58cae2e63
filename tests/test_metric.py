"""TopkAcc / MetricSet / ConfusionMatrix against hand-counted values (pure numpy)."""
import numpy as np
import pytest

from ppcls_lite.metric import ConfusionMatrix, build_metrics

# 4 classes. Ranking of each row (best first) written next to it.
LOGITS = np.array([
    [0.9, 0.1, 0.3, 0.2],   # 0, 2, 3, 1
    [0.1, 0.2, 0.8, 0.4],   # 2, 3, 1, 0
    [0.5, 0.6, 0.1, 0.0],   # 1, 0, 2, 3
    [0.3, 0.2, 0.1, 0.9],   # 3, 0, 1, 2
    [0.1, 0.9, 0.3, 0.2],   # 1, 2, 3, 0
], dtype=np.float32)
LABELS = np.array([0, 3, 0, 2, 1])
# top1 hits: rows 0, 4 -> 2/5 ; top2 hits: + row1 (3 is 2nd), row2 (0 is 2nd) -> 4/5 ; top3: row3 (2 is 4th) no -> 4/5


def test_topk_values():
    metrics = build_metrics([{"TopkAcc": {"topk": [1, 2, 3]}}], class_num=4)
    assert metrics.update(LOGITS, LABELS) == pytest.approx({"top1": 0.4, "top2": 0.8, "top3": 0.8})
    assert metrics.keys == ["top1", "top2", "top3"]


def test_topk_above_class_num_keeps_its_name(logged_warnings):
    """As in PaddleClas: top5 on 4 classes is still called top5 (always 1.0), with a warning."""
    metrics = build_metrics([{"TopkAcc": {"topk": [1, 5]}}], class_num=4)
    assert metrics.keys == ["top1", "top5"]
    assert metrics.update(LOGITS, LABELS) == pytest.approx({"top1": 0.4, "top5": 1.0})
    assert any("4 classes" in m and "top5" in m for m in logged_warnings)
    assert build_metrics([{"TopkAcc": {"topk": [1, 5]}}], class_num=1000).keys == ["top1", "top5"]


def test_accumulate_is_exact_over_unequal_batches():
    metrics = build_metrics([{"TopkAcc": {"topk": [1, 2]}}], class_num=4)
    first = metrics.update(LOGITS[:1], LABELS[:1])      # 1 sample, top1 hit
    second = metrics.update(LOGITS[1:], LABELS[1:])     # 4 samples, 1 top1 hit
    assert first["top1"] == 1.0 and second["top1"] == 0.25
    assert metrics.accumulate() == pytest.approx({"top1": 0.4, "top2": 0.8})  # not the mean of batch values (0.625)
    metrics.reset()
    assert metrics.accumulate() == {"top1": 0.0, "top2": 0.0}


def test_soft_labels_and_n_by_1_labels():
    soft = np.eye(4)[LABELS] * 0.7 + np.eye(4)[LABELS[::-1]] * 0.3
    metrics = build_metrics([{"TopkAcc": {"topk": [1]}}], class_num=4)
    assert metrics.update(LOGITS, soft) == {"top1": 0.4}
    assert metrics.update(LOGITS, LABELS.reshape(-1, 1)) == {"top1": 0.4}


def test_paddle_tensors_and_dict_logits():
    paddle = pytest.importorskip("paddle")
    metrics = build_metrics([{"TopkAcc": {"topk": [1]}}], class_num=4)
    out = metrics.update({"logits": paddle.to_tensor(LOGITS)}, paddle.to_tensor(LABELS))
    assert out == {"top1": 0.4}


def test_state_summed_over_ranks_gives_global_result():
    rank0 = build_metrics([{"TopkAcc": {"topk": [1, 2]}}], class_num=4)
    rank1 = build_metrics([{"TopkAcc": {"topk": [1, 2]}}], class_num=4)
    rank0.update(LOGITS[:2], LABELS[:2])
    rank1.update(LOGITS[2:], LABELS[2:])
    s0, s1 = rank0.state(), rank1.state()
    assert set(s0) == {"correct", "count"}
    assert s0["correct"].tolist() == [1, 2] and s0["count"].tolist() == [2]
    summed = {k: s0[k] + s1[k] for k in s0}  # what an all-reduce(SUM) gives
    assert rank0.result_from_state(summed) == pytest.approx({"top1": 0.4, "top2": 0.8})
    assert rank0.accumulate() == pytest.approx({"top1": 0.5, "top2": 1.0})  # own counts untouched
    rank0.set_state(summed)
    assert rank0.accumulate() == pytest.approx({"top1": 0.4, "top2": 0.8})


def test_ties_rank_the_lower_class_first():
    metrics = build_metrics([{"TopkAcc": {"topk": [1]}}], class_num=3)
    assert metrics.update(np.zeros((2, 3)), np.array([0, 1])) == {"top1": 0.5}


def test_build_metrics_errors_and_empty():
    with pytest.raises(ValueError, match=r"unknown metric 'TopKAcc' in Metric.0. Valid metrics: TopkAcc.*Did you mean"):
        build_metrics([{"TopKAcc": {"topk": [1]}}], 4)
    with pytest.raises(ValueError, match="listed twice"):
        build_metrics([{"TopkAcc": {"topk": [1]}}, {"TopkAcc": {"topk": [5]}}], 4)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \[.k.\] in Metric.0.TopkAcc. Valid keys: topk"):
        build_metrics([{"TopkAcc": {"k": [1]}}], 4)
    with pytest.raises(ValueError, match="positive"):
        build_metrics([{"TopkAcc": {"topk": [0]}}], 4)
    empty = build_metrics(None, 4)
    assert empty.update(LOGITS, LABELS) == {} and empty.accumulate() == {} and empty.keys == []
    assert build_metrics([{"TopkAcc": {"topk": 1}}], 4).keys == ["top1"]


def test_confusion_matrix_and_report():
    cm = ConfusionMatrix(3)
    # true: 0 0 0 1 1 2 ; predicted: 0 0 1 1 2 2 (given as logits for the first batch, as ids for the second)
    cm.update(np.eye(3)[[0, 0, 1]], np.array([0, 0, 0]))
    cm.update(np.array([1, 2, 2]), np.array([1, 1, 2]))
    assert cm.matrix.dtype == np.int64
    assert cm.matrix.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert cm.accuracy == pytest.approx(4 / 6)
    rows = cm.per_class_report(["cat", "dog", "owl"])
    by_name = {r["name"]: r for r in rows}
    # cat: P = 2/2, R = 2/3 ; dog: P = 1/2, R = 1/2 ; owl: P = 1/2, R = 1/1
    assert by_name["cat"] == pytest.approx({"name": "cat", "precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert by_name["dog"]["f1"] == pytest.approx(0.5) and by_name["dog"]["support"] == 2
    assert by_name["owl"]["f1"] == pytest.approx(2 * 0.5 / 1.5)
    macro = rows[-1]
    assert macro["name"] == "macro avg" and macro["support"] == 6
    assert macro["precision"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert macro["recall"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)


def test_confusion_matrix_absent_class_and_soft_labels():
    cm = ConfusionMatrix(3)
    cm.update(np.array([0, 1]), np.eye(3)[[0, 0]] * 0.9 + 0.05)  # soft labels -> argmax 0
    rows = cm.per_class_report()
    assert rows[0]["name"] == "0" and rows[1]["precision"] == 0.0 and rows[2]["support"] == 0
    # class 2 neither occurs nor is predicted: left out of the macro average
    assert rows[-1]["recall"] == pytest.approx((0.5 + 0.0) / 2)
    with pytest.raises(ValueError, match="class ids must be in"):
        cm.update(np.array([3]), np.array([0]))
    with pytest.raises(ValueError, match="label names"):
        cm.per_class_report(["a"])


def test_older_paddleclas_topk_name_reads_as_topkacc(logged_warnings):
    messages = logged_warnings
    metrics = build_metrics([{"Topk": {"k": [1, 2]}}], class_num=4, where="Metric.Eval")
    assert metrics.keys == ["top1", "top2"]
    logits = np.array([[0.1, 0.9, 0.0, 0.0], [0.8, 0.1, 0.6, 0.0]], dtype=np.float32)
    assert metrics.update(logits, np.array([0, 2])) == {"top1": 0.0, "top2": 1.0}
    assert len(messages) == 1 and "Metric.Eval" in messages[0] and "TopkAcc" in messages[0]


def test_metric_set_primary_is_the_first_metrics_main_result():
    from ppcls_lite.metric import build_metrics

    assert build_metrics([{"TopkAcc": {"topk": [5, 1]}}], class_num=10).primary == ("top1", True)
    assert build_metrics([], class_num=10).primary is None
