"""Resume vs extend: a resume that changes Global.epochs or Optimizer values re-plans the LR schedule from the
saved step (warm-up not repeated, a cosine continues on the longer curve), logs each change, applies the
new optimizer values, and refuses to train at LR 0. An unchanged resume stays exact (tests/test_resume.py).

The schedule checked against is the documented one (README, "Resume and extend"): with W warm-up steps, T
steps in total and s the number of steps already done,
    s < W:  warmup_start_lr + (learning_rate - warmup_start_lr) * s / W
    s >= W: eta_min + (learning_rate - eta_min) * (1 + cos(pi * (s - W) / (T - W))) / 2
"""
import math
import shutil

import paddle
import pytest
import yaml

from ppcls_lite.engine import build_engine
from helpers import load_config, make_image_folder, record_lr, tiny_config

pytestmark = pytest.mark.slow
ARCH = "MobileNetV3_small_x0_35"
STEPS = 3  # 9 train images, batch 4, drop_last False
LR = 0.01  # test_engine.tiny_config: Cosine, 1 warm-up epoch from 0, eta_min 0


def documented_cosine(step, epochs, lr=LR, warmup_epochs=1, start_lr=0.0, eta_min=0.0, steps_per_epoch=STEPS):
    warmup, total = warmup_epochs * steps_per_epoch, epochs * steps_per_epoch
    if step < warmup:
        return start_lr + (lr - start_lr) * step / warmup
    return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * (step - warmup) / (total - warmup))) / 2


def train(data, tmp_path, out, overrides=(), epochs=3):
    config = load_config(tiny_config(data, tmp_path / out, epochs=epochs), tmp_path, overrides)
    engine = build_engine(config, "train")
    trace = record_lr(engine)
    engine.train()
    return engine, trace


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """One tiny dataset for the module (read only), so the 3-epoch run below is trained once."""
    return make_image_folder(tmp_path_factory.mktemp("extend") / "tiny")


@pytest.fixture(scope="module")
def three_epochs(tiny_dataset, tmp_path_factory):
    """A finished 3-epoch cosine run (its last steps approach LR 0), trained once for the module: tests read its
    checkpoints and write elsewhere (copy it to resume in place)."""
    root = tmp_path_factory.mktemp("three_epochs")
    engine, trace = train(tiny_dataset, root, "run")
    assert [lr for _, lr in trace] == pytest.approx([documented_cosine(s, 3) for s in range(9)],
                                                              rel=1e-6, abs=1e-12)
    return engine, root / "run" / ARCH


def test_extend_3_to_5_epochs_continues_the_cosine(tiny_dataset, tmp_path, three_epochs):
    run = tmp_path / "run" / ARCH
    shutil.copytree(three_epochs[1], run)  # resumed in place: a copy of the shared run
    extended, trace = train(tiny_dataset, tmp_path, "run", ["Global.checkpoints=auto", "Global.epochs=5"], epochs=5)
    assert extended.start_epoch == 4
    steps = [s for s, _ in trace]
    lrs = [lr for _, lr in trace]
    assert steps == list(range(10, 16))
    assert min(lrs) > 0
    # Steps 9..14 of a 5-epoch plan: the warm-up is over and is not repeated.
    assert lrs == pytest.approx([documented_cosine(s, 5) for s in range(9, 15)], rel=1e-6)
    log = (run / "train.log").read_text(encoding="utf-8")
    line = next(l for l in log.splitlines() if "resume: Global.epochs 3 -> 5" in l)
    assert "global step 10" in line and "old plan 0," in line and f"new plan {documented_cosine(9, 5):.6g}" in line
    # The final config of both parts of the run is kept.
    assert yaml.safe_load((run / "config.yaml").read_text())["Global"]["epochs"] == 5
    archived = list(run.glob("config.*.yaml"))
    assert len(archived) == 1 and yaml.safe_load(archived[0].read_text())["Global"]["epochs"] == 3
    assert [int(r.split(",")[0]) for r in (run / "metrics.csv").read_text().splitlines()[1:]] == [1, 2, 3, 4, 5]


def test_changed_learning_rate_momentum_and_decay_are_logged_and_used(tiny_dataset, tmp_path, three_epochs):
    _, run = three_epochs
    overrides = [f"Global.checkpoints={run / 'epoch_2'}", "Optimizer.lr.learning_rate=0.02",
                 "Optimizer.momentum=0.8", "Optimizer.regularizer.coeff=2e-5"]
    config = load_config(tiny_config(tiny_dataset, tmp_path / "changed", epochs=3), tmp_path, overrides)
    engine = build_engine(config, "train")
    assert engine.optimizer._momentum == 0.8
    assert {g["regularization_coeff"] for g in engine.optimizer._param_groups} == {2e-5}
    trace = record_lr(engine)
    engine.train()
    # Epoch 3 on the new plan: the same 3-epoch cosine, peaking at 0.02.
    assert [lr for _, lr in trace] == pytest.approx([documented_cosine(s, 3, lr=0.02) for s in (6, 7, 8)],
                                                              rel=1e-6)
    log = (tmp_path / "changed" / ARCH / "train.log").read_text(encoding="utf-8")
    old, new = documented_cosine(6, 3), documented_cosine(6, 3, lr=0.02)
    for change in ("Optimizer.lr.learning_rate 0.01 -> 0.02", "Optimizer.momentum 0.9 -> 0.8",
                   "Optimizer.regularizer.coeff 1e-05 -> 2e-05"):
        line = next((l for l in log.splitlines() if f"resume: {change};" in l), None)
        assert line is not None, f"no log line for {change}:\n{log[-3000:]}"
        assert f"old plan {old:.6g}, new plan {new:.6g}" in line


def test_changed_steps_per_epoch_replans_from_the_epochs_done(tiny_dataset, tmp_path, three_epochs):
    """Train batch 4 -> 2 after epoch 2: 5 steps per epoch now, so epoch 3 is steps 10..14 of a 15-step plan."""
    _, run = three_epochs
    config = load_config(tiny_config(tiny_dataset, tmp_path / "smaller", epochs=3), tmp_path,
                         [f"Global.checkpoints={run / 'epoch_2'}", "DataLoader.Train.sampler.batch_size=2"])
    engine = build_engine(config, "train")
    trace = record_lr(engine)
    engine.train()
    assert [lr for _, lr in trace] == pytest.approx(
        [documented_cosine(s, 3, steps_per_epoch=5) for s in range(10, 15)], rel=1e-6)
    log = (tmp_path / "smaller" / ARCH / "train.log").read_text(encoding="utf-8")
    assert "resume: Train steps per epoch (batch size or train list changed) 3 -> 5;" in log


def test_extend_an_epoch_wise_schedule(tiny_dataset, tmp_path):
    """by_epoch: True steps the schedule once per epoch; an extension continues it from the epochs done."""
    by_epoch = ["Optimizer.lr.by_epoch=True"]
    train(tiny_dataset, tmp_path, "epochwise", by_epoch, epochs=2)
    _, trace = train(tiny_dataset, tmp_path, "epochwise", by_epoch + ["Global.checkpoints=auto"], epochs=4)
    expected = [documented_cosine(e, 4, steps_per_epoch=1) for e in (2, 3) for _ in range(STEPS)]
    assert [lr for _, lr in trace] == pytest.approx(expected, rel=1e-6)
    assert min(expected) > 0


def test_unchanged_resume_logs_no_change(tiny_dataset, tmp_path, three_epochs):
    _, run = three_epochs
    config = load_config(tiny_config(tiny_dataset, tmp_path / "again", epochs=3), tmp_path,
                         [f"Global.checkpoints={run / 'epoch_2'}"])
    engine = build_engine(config, "train")
    trace = record_lr(engine)
    engine.train()
    assert [lr for _, lr in trace] == pytest.approx([documented_cosine(s, 3) for s in (6, 7, 8)], rel=1e-6)
    assert "resume: " not in (tmp_path / "again" / ARCH / "train.log").read_text(encoding="utf-8")


def test_resume_that_would_train_at_lr_0_stops_before_training(tiny_dataset, tmp_path, three_epochs):
    """A checkpoint that does not record its plan (PaddleClas's .pdstates hold only epoch and metric): its
    finished cosine is restored as it is, which gives LR 0 for the 2 epochs asked for -> stop, write nothing."""
    _, run = three_epochs
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    for suffix in (".pdparams", ".pdopt"):
        shutil.copy(run / f"latest{suffix}", foreign / f"latest{suffix}")
    states = paddle.load(str(run / "latest.pdstates"), return_numpy=True)
    for key in ("epochs", "steps_per_epoch", "optimizer"):
        states.pop(key)
    paddle.save(states, str(foreign / "latest.pdstates"))
    before = {p.name: p.read_bytes() for p in foreign.iterdir()}
    config = load_config(tiny_config(tiny_dataset, tmp_path / "extended", epochs=5), tmp_path,
                         [f"Global.checkpoints={foreign / 'latest'}"])
    with pytest.raises(ValueError, match=r"would train epoch 4 at learning rate 0: the restored LR schedule.*"
                                         r"raise Global\.epochs.*Global\.pretrained_model="):
        build_engine(config, "train")
    assert {p.name: p.read_bytes() for p in foreign.iterdir()} == before
    log = (tmp_path / "extended" / ARCH / "train.log").read_text(encoding="utf-8")
    assert any("Optimizer" in line and "does not record" in line for line in log.splitlines())
    out = tmp_path / "extended" / ARCH
    assert not (out / "metrics.csv").exists() and not (out / "config.yaml").exists()
    assert not list(out.glob("*.pdparams"))


def test_replanned_schedule_at_lr_0_stops(tiny_dataset, tmp_path):
    """A re-planned schedule can give 0 too: a Piecewise plan whose last value is 0, extended past its boundary."""
    piecewise = ["Optimizer.lr.name=Piecewise", "Optimizer.lr.decay_epochs=[1]", "Optimizer.lr.values=[0.01, 0.0]",
                 "Optimizer.lr.warmup_epoch=0", "Global.eval_during_train=False"]
    train(tiny_dataset, tmp_path, "pw", ["Optimizer.lr.values=[0.01, 0.005]"] + piecewise[:2] + piecewise[3:],
          epochs=1)
    config = load_config(tiny_config(tiny_dataset, tmp_path / "pw", epochs=2), tmp_path,
                         piecewise + ["Global.checkpoints=auto"])
    with pytest.raises(ValueError, match=r"would train epoch 2 at learning rate 0: the LR plan, re-planned"):
        build_engine(config, "train")
