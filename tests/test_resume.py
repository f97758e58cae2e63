"""Exact resume: 4 epochs straight == 2 epochs, interrupted, then `Global.checkpoints=auto` for the rest.

Same LR at every step, same best metric, same final weights (and EMA weights), with 0 and 2 loader workers.
The interruption happens where a crash would: after epoch 2's checkpoints, before epoch 3 starts.
"""
import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ppcls_lite.engine import build_engine
from helpers import REPO_ROOT, load_config, load_params, load_states, record_lr, tiny_config

ARCH = "MobileNetV3_small_x0_35"  # tiny_config's default model


def check_ema_files(straight_dir, resumed_dir):
    """What the run folders hold with EMA on: the resumed run's saved EMA equals the straight run's, the EMA is an
    average (not a copy of the raw weights), and best_model holds the EMA weights of the best epoch."""
    ema_a, ema_b = load_states(straight_dir / "latest")["ema"], load_states(resumed_dir / "latest")["ema"]
    assert ema_a and set(ema_a) == set(ema_b)
    for key in ema_a:
        np.testing.assert_allclose(ema_b[key], ema_a[key], rtol=0, atol=1e-6, err_msg=f"EMA {key}")
    raw = load_params(straight_dir / "latest")
    assert max(float(np.max(np.abs(ema_a[k] - raw[k]))) for k in ema_a if k in raw) > 1e-3
    best_epoch = int(load_states(straight_dir / "best_model")["epoch"])
    best = load_params(straight_dir / "best_model")
    ema_at_best = load_states(straight_dir / f"epoch_{best_epoch}")["ema"]
    for key in ema_at_best:
        np.testing.assert_allclose(best[key], ema_at_best[key], rtol=0, atol=1e-6, err_msg=f"best_model {key}")


class Interrupted(Exception):
    pass


def _train(config_dict, tmp_path, overrides=(), stop_at_epoch=None):
    engine = build_engine(load_config(config_dict, tmp_path, overrides), "train")
    lr_steps = record_lr(engine)
    if stop_at_epoch is not None:
        set_epoch = engine.train_loader.set_epoch

        def crashing_set_epoch(epoch):
            if epoch == stop_at_epoch:
                raise Interrupted()
            set_epoch(epoch)

        engine.train_loader.set_epoch = crashing_set_epoch
    try:
        result = engine.train()
    except Interrupted:
        result = None
    return engine, result, lr_steps


def check_resume(data_root, tmp_path, num_workers, use_ema, cpu_threads=None):
    """Run straight / interrupted / resumed trainings and assert they agree (also run in a subprocess)."""
    tmp_path = Path(tmp_path)

    def config(out):
        cfg = tiny_config(data_root, tmp_path / out, epochs=4, num_workers=num_workers)
        if use_ema:
            cfg["EMA"] = {"decay": 0.9}
        if cpu_threads:
            cfg["Global"]["cpu_threads"] = cpu_threads
        return cfg

    straight, straight_result, straight_lrs = _train(config("straight"), tmp_path)
    first, _, first_lrs = _train(config("resumed"), tmp_path, stop_at_epoch=3)
    assert first.global_step == 6  # 2 epochs x 3 steps ran before the "crash"
    second, resumed_result, second_lrs = _train(config("resumed"), tmp_path, ["Global.checkpoints=auto"])

    assert second.start_epoch == 3
    assert first_lrs + second_lrs == straight_lrs  # per step, exact
    assert resumed_result["best_metric"] == straight_result["best_metric"]
    assert resumed_result["best_epoch"] == straight_result["best_epoch"]
    a, b = straight.model.state_dict(), second.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(b[key].numpy(), a[key].numpy(), atol=1e-6, err_msg=key)
    if use_ema:
        for key, value in straight.ema.shadow.items():
            np.testing.assert_allclose(second.ema.shadow[key].numpy(), value.numpy(), atol=1e-6, err_msg=key)
        check_ema_files(tmp_path / "straight" / ARCH, tmp_path / "resumed" / ARCH)

    def rows(out):
        return list(csv.DictReader(open(tmp_path / out / ARCH / "metrics.csv")))

    straight_rows, resumed_rows = rows("straight"), rows("resumed")
    assert [r["epoch"] for r in resumed_rows] == ["1", "2", "3", "4"]
    for r1, r2 in zip(straight_rows, resumed_rows):
        assert (r1["lr"], r1["train_loss"], r1["eval_top1"]) == (r2["lr"], r2["train_loss"], r2["eval_top1"])


@pytest.mark.slow
def test_resume_matches_uninterrupted_run_with_ema(tiny_dataset, tmp_path):
    """With EMA on (a superset of the EMA-off case, which the two-worker test below runs)."""
    check_resume(tiny_dataset, tmp_path, num_workers=0, use_ema=True)


@pytest.mark.slow
def test_resume_matches_uninterrupted_run_with_two_workers(tiny_dataset, tmp_path):
    """Same with 2 loader worker processes and 2 Paddle threads (Global.cpu_threads: exact at a fixed count). Run
    in a fresh interpreter: paddle's fork-based workers can hang when the pytest process already holds threads
    from earlier tests (e.g. inference predictors)."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from test_resume import check_resume; "
            "check_resume(sys.argv[2], sys.argv[3], num_workers=2, use_ema=False, cpu_threads=2); "
            "print('RESUME-OK')")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code, str(REPO_ROOT / "tests"), str(tiny_dataset), str(tmp_path)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "RESUME-OK" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]
