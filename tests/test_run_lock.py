"""One writer per run folder and stopping on signals (issue 21 items 4 and 5), with real processes and real
signals: a second training into a running one's folder, SIGTERM / SIGHUP to a training (alone, and to its whole
process group with data-loader workers), a lock left by a training killed with SIGKILL, a lock from another host.
The data-parallel case (a launch into a locked folder) is in test_distributed.py."""
import json
import os
import re
import signal
import socket

import pytest

from helpers import (TINY_ARCH, load_states, make_image_folder, read_metrics, run_tool, run_train, signal_train,
                      start_train, tiny_train_config, wait_for, write_config)
from ppcls_lite.engine.run_lock import RunLock, RunLockedError, lock_path

pytestmark = pytest.mark.slow


@pytest.fixture
def long_run(tmp_path):
    """make(name, repeat, **loader): a 2-epoch config of `repeat` x 3 steps per epoch (40: a few seconds), its run
    folder and lock file."""
    data = make_image_folder(tmp_path / "data")

    def make(name="c", repeat=40, **loader):
        (data / f"{name}.txt").write_text((data / "train_list.txt").read_text() * repeat)
        cfg = tiny_train_config(data, tmp_path / "out", epochs=2, train_list=f"{name}.txt")
        if loader:
            cfg["DataLoader"]["Train"]["loader"] = dict(cfg["DataLoader"]["Train"]["loader"], **loader)
        return write_config(cfg, tmp_path / f"{name}.yaml")

    run = tmp_path / "out" / TINY_ARCH
    return {"config": make, "run": run, "lock": tmp_path / "out" / f".{TINY_ARCH}.lock"}


def _log_has(run, text):
    log = run / "train.log"
    return lambda: log.exists() and text in log.read_text(encoding="utf-8")


def _no_dump(stderr):
    assert "Traceback" not in stderr and "C++ Traceback" not in stderr and "FatalError" not in stderr, stderr[-3000:]


def test_second_training_stops_at_once_then_sigterm_saves(long_run):
    # 600 steps per epoch: the first training is still in epoch 2 while three others start and are refused.
    config, run, lock = long_run["config"](repeat=200), long_run["run"], long_run["lock"]
    first = start_train(config)
    try:
        wait_for(first, lambda: (run / "latest.pdstates").exists() and _log_has(run, "[Epoch 2/2][Iter 2/")(),
                 "epoch 2")
        record = json.loads(lock.read_text())
        assert record["pid"] == first.pid and record["host"] == socket.gethostname()
        assert record["command"].startswith("python ") and f"-c {config}" in record["command"]
        before = sorted(p.name for p in run.iterdir())
        for extra in ((), ("--resume", "auto"), ("--overwrite",)):
            second = run_tool("train.py", "-c", config, *extra)
            errors = [line for line in second.stderr.splitlines() if line.startswith("error: ")]
            assert second.returncode == 1 and len(errors) == 1, second.stderr[-3000:]
            assert f"{run} is in use by another training (pid {first.pid} on {socket.gethostname()}" in errors[0]
            assert "-o Global.output_dir=DIR" in errors[0] and str(lock) in errors[0]
            assert "[Train]" not in second.stdout + second.stderr  # it stopped before training
        assert first.poll() is None, "the first training ended before the second was refused"
        assert not list(run.parent.glob(f"{TINY_ARCH}.old-*")), "--overwrite moved a running training's folder"
        assert set(before) <= {p.name for p in run.iterdir()}
        first.send_signal(signal.SIGTERM)
        stderr = first.communicate(timeout=120)[1]
    finally:
        first.kill()
    assert first.returncode == 143, stderr[-3000:]
    _no_dump(stderr)
    line = [ln for ln in stderr.splitlines() if ln.startswith("interrupted by SIGTERM: ")]
    assert len(line) == 1, stderr[-3000:]
    assert re.search(r"training stopped (during|after) epoch 2\. Last complete checkpoint: .*latest\. Continue with: "
                     r"python \S*train\.py -c \S+ --resume auto$", line[0]), line[0]
    assert not lock.exists(), "the lock outlived its training"
    assert load_states(run / "latest")["epoch"] == 1
    # Resuming after SIGTERM (600 more steps here) is test_sigterm_to_the_process_group_with_loader_workers's.


def test_sighup_stops_like_ctrl_c_with_status_129(long_run):
    run = long_run["run"]
    status, stderr = signal_train(long_run["config"](), _log_has(run, "[Epoch 1/2][Iter 3/"), "iteration 3",
                                  signal.SIGHUP)
    assert status == 129, stderr[-3000:]
    _no_dump(stderr)
    assert "interrupted by SIGHUP: training stopped during epoch 1, before the first checkpoint: nothing was " \
           "saved" in stderr
    assert not list(run.glob("*.pdstates"))


def test_sigterm_to_the_process_group_with_loader_workers(long_run):
    """What `docker stop`, systemd and `kill -- -PGID` do: every process of the group, the two data-loader workers
    included, gets SIGTERM. One line, status 143, no stack dump from Paddle in any process, and the run resumes."""
    config, run = long_run["config"]("workers", num_workers=2), long_run["run"]
    status, stderr = signal_train(config, lambda: (run / "latest.pdstates").exists()
                                  and _log_has(run, "[Epoch 2/2][Iter 3/")(), "epoch 2", signal.SIGTERM, group=True)
    assert status == 143, stderr[-3000:]
    _no_dump(stderr)
    assert "DataLoader process" not in stderr
    line = [ln for ln in stderr.splitlines() if ln.startswith("interrupted by SIGTERM: ")]
    assert len(line) == 1, stderr[-3000:]
    assert re.search(r"training stopped (during|after) epoch 2\. Last complete checkpoint: .*latest\. Continue with: "
                     r"python \S*train\.py -c \S+ --resume auto$", line[0]), line[0]
    assert load_states(run / "latest")["epoch"] == 1
    run_train(config, resume=True)
    assert load_states(run / "latest")["epoch"] == 2
    assert [r["epoch"] for r in read_metrics(run)] == ["1", "2"]  # one row per epoch, none lost or doubled


def test_lock_of_a_killed_training_is_taken_over_with_a_note(long_run):
    config, run, lock = long_run["config"](), long_run["run"], long_run["lock"]
    killed = start_train(config)
    try:
        wait_for(killed, lambda: (run / "latest.pdstates").exists(), "its first checkpoint")
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=60)
    finally:
        killed.kill()
    assert json.loads(lock.read_text())["pid"] == killed.pid  # left behind: the process could not clean up
    proc = run_train(config, resume=True)
    log = proc.stdout + proc.stderr
    assert f"taking over the lock of {run}: its holder (pid {killed.pid} on {socket.gethostname()}" in log
    assert "ended without releasing it" in log
    assert load_states(run / "latest")["epoch"] == 2 and not lock.exists()


def test_lock_from_another_host_is_not_taken_over(long_run, tmp_path):
    config, run, lock = long_run["config"](), long_run["run"], long_run["lock"]
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"pid": 4321, "host": "gpu-node-7", "started": "2024-05-01 10:00:00 +0800",
                                "command": "python tools/train.py -c other.yaml"}))
    proc = run_train(config, check=False)
    assert proc.returncode == 1
    assert f"says {run} is in use by a training on another host (pid 4321 on gpu-node-7" in proc.stderr
    assert f"if that run is over, delete {lock}" in proc.stderr
    assert not run.exists()


def test_lock_is_reentrant_in_one_process_and_released_by_the_last_holder(tmp_path):
    run_dir = str(tmp_path / "out" / "Model")
    first = RunLock.acquire(run_dir)
    second = RunLock.acquire(run_dir)  # e.g. two engines built for one folder in one process
    assert second is first and os.path.exists(lock_path(run_dir))
    first.release()
    assert os.path.exists(lock_path(run_dir))
    second.release()
    assert not os.path.exists(lock_path(run_dir))
    with pytest.raises(RunLockedError, match="on another host"):
        os.makedirs(os.path.dirname(lock_path(run_dir)), exist_ok=True)
        with open(lock_path(run_dir), "w") as f:
            json.dump({"pid": 1, "host": "elsewhere"}, f)
        RunLock.acquire(run_dir)
