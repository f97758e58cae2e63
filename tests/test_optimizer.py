"""build_optimizer / build_lr_scheduler: schedules vs hand-computed values, decay groups, errors."""
import math

import numpy as np
import paddle
import pytest

from ppcls_lite.optimizer import build_lr_scheduler, build_optimizer, split_decay_params


def lrs(scheduler, n):
    """Learning rate used at steps 0..n-1 (the engine reads it, then steps)."""
    out = []
    for _ in range(n):
        out.append(scheduler())
        scheduler.step()
    return out


class Tiny(paddle.nn.Layer):
    def __init__(self):
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, 4, 3)           # conv.weight 4-D, conv.bias 1-D
        self.bn = paddle.nn.BatchNorm2D(4)              # bn.weight / bn.bias 1-D
        self.fc = paddle.nn.Linear(4, 2)                # fc.weight 2-D, fc.bias 1-D

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean(axis=[2, 3]))


MOMENTUM = {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Constant", "learning_rate": 0.1}}

# ------------------------------------------------------------------------------------------ schedules


def test_cosine_with_warmup_per_step():
    # 3 epochs x 4 steps, 1 warm-up epoch (4 steps) from 0.01 to 0.1, then cosine over 8 steps to 1e-5
    s = build_lr_scheduler({"name": "Cosine", "learning_rate": 0.1, "warmup_epoch": 1, "warmup_start_lr": 0.01,
                            "eta_min": "1e-5"}, epochs=3, steps_per_epoch=4)
    got = lrs(s, 12)
    cosine = lambda t: 1e-5 + (0.1 - 1e-5) * (1 + math.cos(math.pi * t / 8)) / 2  # noqa: E731
    assert got[0] == pytest.approx(0.01)                        # step 0: warmup_start_lr
    assert got[2] == pytest.approx(0.01 + 0.09 * 2 / 4)         # mid warm-up
    assert got[4] == pytest.approx(0.1)                         # end of warm-up: the peak
    assert got[8] == pytest.approx(cosine(4), rel=1e-6)         # mid cosine = (peak + eta_min) / 2
    assert got[8] == pytest.approx((0.1 + 1e-5) / 2, rel=1e-6)
    assert got[11] == pytest.approx(cosine(7), rel=1e-6)        # last step
    assert s.by_epoch is False and s.warmup_steps == 4


def test_cosine_without_warmup_matches_closed_form():
    s = build_lr_scheduler({"name": "Cosine", "learning_rate": 0.045}, epochs=2, steps_per_epoch=5)
    expected = [0.045 * (1 + math.cos(math.pi * t / 10)) / 2 for t in range(10)]
    np.testing.assert_allclose(lrs(s, 10), expected, rtol=1e-6, atol=1e-9)


def test_cosine_by_epoch_counts_epochs():
    # MobileNeXt style: 3 warm-up epochs from 1e-4, cosine over the remaining 5 epochs, per epoch
    s = build_lr_scheduler({"name": "Cosine", "learning_rate": 0.1, "eta_min": 1e-5, "warmup_epoch": 3,
                            "warmup_start_lr": "1e-4", "by_epoch": True}, epochs=8, steps_per_epoch=1000)
    got = lrs(s, 8)
    assert s.by_epoch is True and s.warmup_steps == 3
    assert got[0] == pytest.approx(1e-4)
    assert got[1] == pytest.approx(1e-4 + (0.1 - 1e-4) / 3)
    assert got[3] == pytest.approx(0.1)
    assert got[5] == pytest.approx(1e-5 + (0.1 - 1e-5) * (1 + math.cos(math.pi * 2 / 5)) / 2, rel=1e-6)


def test_piecewise_boundaries():
    s = build_lr_scheduler({"name": "Piecewise", "learning_rate": 0.1, "decay_epochs": [1, 2],
                            "values": [0.1, 0.01, 0.001]}, epochs=3, steps_per_epoch=2)
    assert lrs(s, 6) == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    s = build_lr_scheduler({"name": "Piecewise", "decay_epochs": [30, 60, 90], "values": [0.1, 0.01, 0.001, 1e-4],
                            "by_epoch": True}, epochs=120, steps_per_epoch=7)
    got = lrs(s, 120)
    picked = (got[29], got[30], got[59], got[60], got[90], got[119])
    assert picked == pytest.approx((0.1, 0.01, 0.01, 0.001, 1e-4, 1e-4))


def test_piecewise_with_warmup_ends_at_first_value():
    s = build_lr_scheduler({"name": "Piecewise", "decay_epochs": [2], "values": [0.1, 0.01], "warmup_epoch": 1},
                           epochs=3, steps_per_epoch=2)
    got = lrs(s, 6)
    assert got[0] == 0.0 and got[1] == pytest.approx(0.05) and got[2] == pytest.approx(0.1)


def test_step_and_constant():
    s = build_lr_scheduler({"name": "Step", "learning_rate": 0.8, "step_size": 1, "gamma": 0.5},
                           epochs=3, steps_per_epoch=2)
    assert lrs(s, 6) == pytest.approx([0.8, 0.8, 0.4, 0.4, 0.2, 0.2])
    s = build_lr_scheduler({"name": "Constant", "learning_rate": "1e-3", "warmup_epoch": 1}, epochs=2,
                           steps_per_epoch=2)
    assert lrs(s, 4) == pytest.approx([0.0, 5e-4, 1e-3, 1e-3])
    assert lrs(build_lr_scheduler(0.5, 1, 3), 3) == [0.5, 0.5, 0.5]


def test_linear_and_multistep_follow_paddleclas():
    # Linear: PolynomialDecay(power 1) from 0.1 to end_lr 0.02 over the 4 steps after a 1-epoch warm-up
    s = build_lr_scheduler({"name": "Linear", "learning_rate": 0.1, "end_lr": 0.02, "warmup_epoch": 1},
                           epochs=3, steps_per_epoch=2)
    assert lrs(s, 6) == pytest.approx([0.0, 0.05, 0.1, 0.08, 0.06, 0.04])
    s = build_lr_scheduler({"name": "MultiStepDecay", "learning_rate": 0.4, "milestones": [1, 3], "gamma": 0.5},
                           epochs=4, steps_per_epoch=2)
    assert lrs(s, 8) == pytest.approx([0.4, 0.4, 0.2, 0.2, 0.2, 0.2, 0.1, 0.1])
    s = build_lr_scheduler({"name": "ConstLR", "learning_rate": 0.3, "last_epoch": -1}, epochs=1, steps_per_epoch=2)
    assert lrs(s, 2) == pytest.approx([0.3, 0.3])


@pytest.fixture
def lr_warnings(logged_warnings):
    return logged_warnings


@pytest.mark.parametrize("warmup_epoch", [2, 5])
def test_warmup_at_least_the_run_is_clamped_and_the_whole_run_warms_up(warmup_epoch, lr_warnings):
    # PaddleClas: warmup_epoch := epochs (2), T_max = 0 -> constant learning_rate after the (whole-run) warm-up.
    s = build_lr_scheduler({"name": "Cosine", "learning_rate": 0.1, "warmup_epoch": warmup_epoch,
                            "warmup_start_lr": 0.02}, epochs=2, steps_per_epoch=4)
    assert s.warmup_steps == 8
    np.testing.assert_allclose(lrs(s, 10), [0.02 + 0.08 * t / 8 for t in range(8)] + [0.1, 0.1], rtol=1e-9)
    assert len(lr_warnings) == 1 and "clamped to 2 epochs" in lr_warnings[0]


def test_no_steps_left_for_the_decay_gives_a_constant_rate(lr_warnings):
    # 1.9 of 2 epochs warm-up at 1 step per epoch -> T_max = round(0.1) = 0: constant after warm-up.
    s = build_lr_scheduler({"name": "Cosine", "learning_rate": 0.1, "warmup_epoch": 1.9}, epochs=2,
                           steps_per_epoch=1)
    assert lrs(s, 4) == pytest.approx([0.0, 0.05, 0.1, 0.1])
    assert len(lr_warnings) == 1 and "T_max = 0" in lr_warnings[0] and "stays at learning_rate" in lr_warnings[0]
    s = build_lr_scheduler({"name": "Linear", "learning_rate": 0.2, "warmup_epoch": 3}, epochs=3, steps_per_epoch=1)
    assert lrs(s, 5) == pytest.approx([0.0, 0.2 / 3, 0.4 / 3, 0.2, 0.2])


def test_piecewise_learning_rate_other_than_first_value_warns(lr_warnings):
    s = build_lr_scheduler({"name": "Piecewise", "learning_rate": 0.5, "decay_epochs": [1], "values": [0.1, 0.01]},
                           epochs=2, steps_per_epoch=1)
    assert lrs(s, 2) == pytest.approx([0.1, 0.01])
    assert len(lr_warnings) == 1 and "learning_rate (0.5) is not used" in lr_warnings[0]


def test_scheduler_state_round_trips():
    cfg = {"name": "Cosine", "learning_rate": 0.1, "warmup_epoch": 1, "eta_min": 0.001}
    a = build_lr_scheduler(cfg, epochs=4, steps_per_epoch=3)
    lrs(a, 5)
    state = a.state_dict()
    b = build_lr_scheduler(cfg, epochs=4, steps_per_epoch=3)
    b.set_state_dict(state)
    np.testing.assert_allclose(lrs(b, 7), lrs(a, 7), rtol=1e-9)
    assert b.by_epoch is False


@pytest.mark.parametrize("cfg, match", [
    ({"name": "Cosin", "learning_rate": 0.1}, r"unknown LR schedule .Cosin. in Optimizer.lr.name. Valid LR schedules: Cosine, Piecewise, Step, Constant.*Did you mean .Cosine."),
    ({"name": "MultiStepDecay", "learning_rate": 0.1, "milestones": [2, 1]}, r"milestones must increase"),
    ({"name": "Cosine", "learning_rate": 0.1, "eta_mn": 0}, r"unknown key.*eta_mn.*eta_min"),
    ({"name": "Cosine"}, r"learning_rate is required"),
    ({"name": "Piecewise", "decay_epochs": [1], "values": [0.1]}, r"one more entry"),
    ({"name": "Cosine", "learning_rate": 0.1, "warmup_epoch": 1, "warmup_start_lr": 0.2}, r"must be below"),
])
def test_schedule_errors(cfg, match):
    with pytest.raises(ValueError, match=match):
        build_lr_scheduler(cfg, epochs=3, steps_per_epoch=2)

# ------------------------------------------------------------------------------------------ optimizers


def decay_coeffs(optimizer, model):
    """Structured name -> L2 coefficient paddle will apply, read from the optimizer's parameter groups."""
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for group in optimizer._param_groups:
        if "regularization_method" in group:  # Momentum moves an L2 group decay into its fused op
            coeff = group["regularization_coeff"] if group["regularization_method"] == "l2_decay" else 0.0
        else:
            wd = group["weight_decay"]
            coeff = float(getattr(wd, "_coeff", wd or 0.0))
        for p in group["params"]:
            out[names[id(p)]] = coeff
    return out


def test_decay_groups_one_dim_and_bias_get_no_decay():
    paddle.seed(0)
    model = Tiny()
    cfg = {**MOMENTUM, "regularizer": {"name": "L2", "coeff": "1e-4"}, "no_weight_decay_name": ".bias",
           "one_dim_param_no_weight_decay": True}
    optimizer, scheduler = build_optimizer(cfg, epochs=1, steps_per_epoch=1, model=model)
    coeffs = decay_coeffs(optimizer, model)
    assert coeffs["conv.weight"] == pytest.approx(1e-4) and coeffs["fc.weight"] == pytest.approx(1e-4)
    assert coeffs["conv.bias"] == 0.0 and coeffs["fc.bias"] == 0.0 and coeffs["bn.weight"] == 0.0
    assert isinstance(optimizer, paddle.optimizer.Momentum)
    assert scheduler.by_epoch is False
    sgd, _ = build_optimizer({**cfg, "name": "SGD"}, epochs=1, steps_per_epoch=1, model=model)
    assert decay_coeffs(sgd, model) == pytest.approx(coeffs)


def test_no_weight_decay_name_matches_structured_names_only():
    model = Tiny()
    decay, no_decay = split_decay_params(model, "fc. bn", one_dim_param_no_weight_decay=False)
    assert [n for n, _ in decay] == ["conv.weight", "conv.bias"]
    assert [n for n, _ in no_decay] == ["bn.weight", "bn.bias", "fc.weight", "fc.bias"]
    decay, no_decay = split_decay_params(model, None, one_dim_param_no_weight_decay=True)
    assert [n for n, _ in decay] == ["conv.weight", "fc.weight"]


@pytest.mark.parametrize("name", ["Momentum", "SGD"])
def test_one_step_applies_coupled_decay_only_to_the_decay_group(name):
    paddle.seed(0)
    model = Tiny()
    cfg = {"name": name, "lr": {"name": "Constant", "learning_rate": 0.5}, "regularizer": {"name": "L2", "coeff": 0.1},
           "one_dim_param_no_weight_decay": True}
    optimizer, _ = build_optimizer(cfg, 1, 1, model)
    before = {n: p.numpy().copy() for n, p in model.named_parameters()}
    (model(paddle.randn([2, 3, 6, 6])).sum() * 0).backward()   # zero gradient: only the decay moves weights
    optimizer.step()
    after = {n: p.numpy() for n, p in model.named_parameters()}
    np.testing.assert_allclose(after["conv.weight"], before["conv.weight"] * (1 - 0.5 * 0.1), rtol=1e-5)
    np.testing.assert_allclose(after["fc.bias"], before["fc.bias"])
    np.testing.assert_allclose(after["bn.weight"], before["bn.weight"])


def test_adamw_decoupled_decay_respects_rules():
    paddle.seed(0)
    model = Tiny()
    cfg = {"name": "AdamW", "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "weight_decay": 0.1,
           "lr": {"name": "Constant", "learning_rate": 0.5}, "no_weight_decay_name": "bias"}
    optimizer, _ = build_optimizer(cfg, 1, 1, model)
    assert isinstance(optimizer, paddle.optimizer.AdamW)
    before = {n: p.numpy().copy() for n, p in model.named_parameters()}
    (model(paddle.randn([2, 3, 6, 6])).sum() * 0).backward()
    optimizer.step()
    after = {n: p.numpy() for n, p in model.named_parameters()}
    np.testing.assert_allclose(after["fc.weight"], before["fc.weight"] * (1 - 0.5 * 0.1), rtol=1e-5)
    np.testing.assert_allclose(after["bn.weight"], before["bn.weight"] * (1 - 0.5 * 0.1), rtol=1e-5)
    np.testing.assert_allclose(after["fc.bias"], before["fc.bias"])


def test_rmsprop_nesterov_and_grad_clip_options():
    model = Tiny()
    opt, _ = build_optimizer({"name": "RMSProp", "rho": 0.9, "epsilon": "1e-3", "momentum": 0.9,
                              "lr": {"name": "Constant", "learning_rate": 0.01}}, 1, 1, model)
    assert isinstance(opt, paddle.optimizer.RMSProp) and opt._rho == 0.9 and opt._epsilon == 1e-3
    opt, _ = build_optimizer({**MOMENTUM, "use_nesterov": True, "clip_norm": 5.0}, 1, 1, model)
    # PaddleClas's clip_norm is a per-gradient norm clip
    assert opt._use_nesterov is True and isinstance(opt._grad_clip, paddle.nn.ClipGradByNorm)
    opt, _ = build_optimizer({**MOMENTUM, "grad_clip": {"name": "ClipGradByGlobalNorm", "clip_norm": 1}}, 1, 1, model)
    assert isinstance(opt._grad_clip, paddle.nn.ClipGradByGlobalNorm)
    opt, _ = build_optimizer({**MOMENTUM, "grad_clip": {"name": "ClipGradByNorm", "clip_norm": 1}}, 1, 1, model)
    assert isinstance(opt._grad_clip, paddle.nn.ClipGradByNorm)


def test_clip_grad_clips_the_global_norm_like_timm():
    # PaddleClas's MobileNetV4 configs: `AdamW ... clip_grad: 5.0` (timm's --clip-grad, global L2 norm)
    paddle.seed(0)
    model = Tiny()
    sgd = {"name": "SGD", "lr": {"name": "Constant", "learning_rate": 1.0}, "clip_grad": 0.5}
    opt, _ = build_optimizer(sgd, 1, 1, model)
    assert isinstance(opt._grad_clip, paddle.nn.ClipGradByGlobalNorm) and opt._grad_clip.clip_norm == 0.5
    before = {n: p.numpy().copy() for n, p in model.named_parameters() if not p.stop_gradient}
    (model(paddle.randn([2, 3, 6, 6])).sum() * 1000).backward()
    grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters() if not p.stop_gradient}
    global_norm = np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in grads.values()))
    assert global_norm > 10 * 0.5
    opt.step()
    for name, param in model.named_parameters():  # every gradient scaled by the same factor 0.5 / global norm
        if name in grads:
            np.testing.assert_allclose(before[name] - param.numpy(), grads[name] * 0.5 / global_norm, rtol=1e-4,
                                       atol=1e-7, err_msg=name)
    with pytest.raises(ValueError, match="only one of Optimizer.clip_norm, grad_clip and clip_grad, not "
                                         "clip_norm and clip_grad"):
        build_optimizer({**MOMENTUM, "clip_norm": 1.0, "clip_grad": 5.0}, 1, 1, model)


def test_key_of_another_optimizer_warns(logged_warnings):
    messages = logged_warnings
    opt, _ = build_optimizer({**MOMENTUM, "name": "SGD"}, 1, 1, Tiny())  # momentum left from a Momentum config
    assert isinstance(opt, paddle.optimizer.SGD)
    assert len(messages) == 1 and "momentum" in messages[0] and "SGD" in messages[0]


def test_adam_is_coupled_decay_and_takes_paddleclas_keys():
    model = Tiny()
    opt, _ = build_optimizer({"name": "Adam", "beta1": 0.8, "beta2": 0.99, "epsilon": "1e-7", "lazy_mode": False,
                              "regularizer": {"name": "L2", "coeff": 0.1}, "one_dim_param_no_weight_decay": True,
                              "lr": {"name": "Constant", "learning_rate": 0.01}}, 1, 1, model)
    assert isinstance(opt, paddle.optimizer.Adam) and opt._beta1 == 0.8 and opt._epsilon == 1e-7
    coeffs = decay_coeffs(opt, model)
    assert coeffs["conv.weight"] == pytest.approx(0.1) and coeffs["bn.weight"] == 0.0
    model(paddle.randn([2, 3, 6, 6])).sum().backward()
    opt.step()  # really steps with the per-group decay


def test_frozen_params_are_left_out():
    model = Tiny()
    model.conv.weight.stop_gradient = True
    model.conv.bias.stop_gradient = True
    opt, _ = build_optimizer(MOMENTUM, 1, 1, model)
    given = {id(p) for group in opt._param_groups for p in group["params"]}
    assert id(model.conv.weight) not in given and id(model.fc.weight) in given
    assert len(given) == 4
    for p in model.parameters():
        p.stop_gradient = True
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_optimizer(MOMENTUM, 1, 1, model)


@pytest.mark.parametrize("cfg, match", [
    ({**MOMENTUM, "name": "Momentun"}, r"unknown optimizer .Momentun. in Optimizer.name. Valid optimizers: Momentum, SGD, RMSProp, Adam, AdamW.*Did you mean .Momentum."),
    ({**MOMENTUM, "momentun": 0.9}, r"unknown key.*momentun"),
    ({**MOMENTUM, "regularizer": {"name": "L3", "coeff": 1}}, r"unknown regularizer .L3. in Optimizer.regularizer.name. Valid regularizers: L2, L1"),
    ({**MOMENTUM, "regularizer": {"name": "L2", "coef": 1}}, r"unknown key.*coef"),
    ({**MOMENTUM, "grad_clip": {"name": "ClipByNorm", "clip_norm": 1}}, r"ClipGradByGlobalNorm"),
    ({"name": "Momentum"}, r"Optimizer.lr is required"),
])
def test_optimizer_errors(cfg, match):
    with pytest.raises(ValueError, match=match):
        build_optimizer(cfg, 1, 1, Tiny())


def test_optimizer_and_scheduler_state_round_trip(tmp_path):
    model = Tiny()
    cfg = {**MOMENTUM, "lr": {"name": "Cosine", "learning_rate": 0.1, "warmup_epoch": 1}}
    opt, sched = build_optimizer(cfg, 3, 2, model)
    model(paddle.randn([2, 3, 6, 6])).sum().backward()
    opt.step()
    sched.step()
    sched.step()
    path = str(tmp_path / "x.pdopt")
    paddle.save(opt.state_dict(), path)
    opt2, sched2 = build_optimizer(cfg, 3, 2, model)
    opt2.set_state_dict(paddle.load(path))
    assert sched2.last_epoch == 2 and sched2() == pytest.approx(0.1)
    assert opt2.get_lr() == pytest.approx(sched())


def test_by_epoch_rounds_fractional_epochs_with_a_warning(lr_warnings):
    s = build_lr_scheduler({"name": "Step", "learning_rate": 0.4, "step_size": 1.6, "gamma": 0.5, "by_epoch": True,
                            "warmup_epoch": 0.5, "warmup_start_lr": 0.1}, epochs=5, steps_per_epoch=9)
    assert s.warmup_steps == 0  # round(0.5) == 0: no warm-up epoch
    assert lrs(s, 5) == pytest.approx([0.4, 0.4, 0.2, 0.2, 0.1])  # step_size 1.6 -> 2 epochs
    assert len(lr_warnings) == 1 and "warmup_epoch 0.5 -> 0" in lr_warnings[0] and "step_size 1.6 -> 2" in lr_warnings[0]


def test_one_cycle_and_cyclic_follow_paddle_with_paddleclas_keys():
    s = build_lr_scheduler({"name": "OneCycleLR", "max_learning_rate": 0.5, "divide_factor": 10, "phase_pct": 0.5,
                            "anneal_strategy": "linear", "end_learning_rate": 0.0}, epochs=2, steps_per_epoch=5)
    # 10 steps, phase 1 ends at step 0.5 * 10 - 1 = 4: linear from 0.5 / 10 up to 0.5, then down to 0 at step 9
    expected = [0.05 + 0.45 * t / 4 for t in range(5)] + [0.5 * (1 - (t - 4) / 5) for t in range(5, 10)]
    np.testing.assert_allclose(lrs(s, 10), expected, rtol=1e-6, atol=1e-9)
    s = build_lr_scheduler({"name": "Cyclic", "base_learning_rate": 0.1, "max_learning_rate": 0.3, "step_size_up": 2},
                           epochs=1, steps_per_epoch=6)
    assert lrs(s, 6) == pytest.approx([0.1, 0.2, 0.3, 0.2, 0.1, 0.2])
    with pytest.raises(ValueError, match="ReduceOnPlateau is a PaddleClas schedule that is not supported here"):
        build_lr_scheduler({"name": "ReduceOnPlateau", "learning_rate": 0.1}, 1, 1)
