"""build_loss / CELoss against cross-entropy computed by hand in numpy."""
import numpy as np
import paddle
import pytest

from ppcls_lite.loss import build_loss

LOGITS = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]], dtype=np.float32)
LABELS = np.array([0, 2, 2, 1], dtype=np.int64)


def log_softmax(x):
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def ce(logits, target):
    return float(-(target * log_softmax(logits.astype(np.float64))).sum(axis=1).mean())


def one_hot(labels, c):
    return np.eye(c)[labels]


def run(section, logits=LOGITS, labels=LABELS):
    out = build_loss(section)(paddle.to_tensor(logits), paddle.to_tensor(labels))
    return {k: float(v) for k, v in out.items()}


def test_plain_cross_entropy():
    out = run([{"CELoss": {"weight": 1.0}}])
    # row 4 alone: uniform logits over 3 classes -> log(3); the mean over the 4 rows by hand:
    expected = ce(LOGITS, one_hot(LABELS, 3))
    assert out["loss"] == pytest.approx(expected, rel=1e-5)
    assert out["CELoss"] == pytest.approx(expected, rel=1e-5)
    assert run([{"CELoss": None}], LOGITS[3:], LABELS[3:])["loss"] == pytest.approx(np.log(3), rel=1e-6)


@pytest.mark.parametrize("eps", [None, 0, 0.0])
def test_epsilon_none_or_zero_is_plain_ce(eps):
    assert run([{"CELoss": {"epsilon": eps}}])["loss"] == pytest.approx(ce(LOGITS, one_hot(LABELS, 3)), rel=1e-5)


def test_label_smoothing():
    eps = 0.1
    target = one_hot(LABELS, 3) * (1 - eps) + eps / 3
    out = run([{"CELoss": {"weight": 1.0, "epsilon": eps}}])
    assert out["loss"] == pytest.approx(ce(LOGITS, target), rel=1e-5)
    assert out["loss"] != pytest.approx(ce(LOGITS, one_hot(LABELS, 3)), rel=1e-3)


def test_labels_shaped_n_by_1():
    out = run([{"CELoss": {}}], labels=LABELS.reshape(-1, 1))
    assert out["loss"] == pytest.approx(ce(LOGITS, one_hot(LABELS, 3)), rel=1e-5)


def test_soft_targets_mixup():
    lam = 0.7
    soft = (lam * one_hot(LABELS, 3) + (1 - lam) * one_hot(LABELS[::-1], 3)).astype(np.float32)
    assert run([{"CELoss": {}}], labels=soft)["loss"] == pytest.approx(ce(LOGITS, soft), rel=1e-5)
    smoothed = soft * 0.8 + 0.2 / 3  # smoothing applies to soft targets too (as in PaddleClas)
    assert run([{"CELoss": {"epsilon": 0.2}}], labels=soft)["loss"] == pytest.approx(ce(LOGITS, smoothed), rel=1e-5)


def test_weighted_sum_of_several_losses():
    plain = ce(LOGITS, one_hot(LABELS, 3))
    smooth = ce(LOGITS, one_hot(LABELS, 3) * 0.9 + 0.1 / 3)
    out = run([{"CELoss": {"weight": 0.5}}, {"CELoss": {"weight": 2.0, "epsilon": 0.1}}])
    assert out["CELoss"] == pytest.approx(0.5 * plain, rel=1e-5)
    assert out["CELoss_1"] == pytest.approx(2.0 * smooth, rel=1e-5)
    assert out["loss"] == pytest.approx(0.5 * plain + 2.0 * smooth, rel=1e-5)


def test_dict_logits_and_gradient_flows():
    x = paddle.to_tensor(LOGITS, stop_gradient=False)
    out = build_loss([{"CELoss": {"weight": "1.0", "epsilon": "0.1"}}])({"logits": x}, paddle.to_tensor(LABELS))
    out["loss"].backward()
    probs = np.exp(log_softmax(LOGITS.astype(np.float64)))
    target = one_hot(LABELS, 3) * 0.9 + 0.1 / 3
    np.testing.assert_allclose(x.grad.numpy(), (probs - target) / len(LABELS), atol=1e-6)


def test_paddleclas_mix_loss_names_are_cross_entropy_on_soft_targets(logged_warnings):
    messages = logged_warnings
    soft = (0.6 * one_hot(LABELS, 3) + 0.4 * one_hot(LABELS[::-1], 3)).astype(np.float32)
    assert run([{"MixCELoss": {"weight": 1.0, "epsilon": 0.1}}], labels=soft)["loss"] == pytest.approx(
        ce(LOGITS, soft * 0.9 + 0.1 / 3), rel=1e-5)
    assert len(messages) == 1 and "MixCELoss" in messages[0] and "deprecated" in messages[0]
    assert run([{"SoftTargetCrossEntropy": None}], labels=soft)["loss"] == pytest.approx(ce(LOGITS, soft), rel=1e-5)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \[.epsilon.\] in Loss.0.SoftTargetCrossEntropy. Valid keys: weight"):
        build_loss([{"SoftTargetCrossEntropy": {"epsilon": 0.1}}])


def test_errors_name_what_is_valid():
    with pytest.raises(ValueError, match=r"unknown loss 'CELos' in Loss.0. Valid losses: CELoss.*Did you mean 'CELoss'"):
        build_loss([{"CELos": {}}])
    with pytest.raises(ValueError, match=r"unknown key\(s\) \[.espilon.\] in Loss.0.CELoss. Valid keys: weight, epsilon, class_weights. Did you mean .epsilon."):
        build_loss([{"CELoss": {"espilon": 0.1}}])
    with pytest.raises(ValueError, match="non-empty list"):
        build_loss({"CELoss": {}})
    with pytest.raises(ValueError, match=r"epsilon must be in \[0, 1\)"):
        build_loss([{"CELoss": {"epsilon": 1.5}}])
