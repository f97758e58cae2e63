"""Data parallel on CPU: `python -m paddle.distributed.launch --nproc_per_node 2 tools/train.py ...` (gloo).

How the comparison is made exact (and why a naive one is not):

* Sharding. paddle.io.DistributedBatchSampler (shuffle False) cuts the index list into chunks of
  nranks * B and gives rank r the slice [r*B, (r+1)*B) of every chunk. With n a multiple of nranks * B
  there is no padding and no ragged last batch, so one process with batch 2B sees exactly the union of the
  two ranks' batches at every step, and paddle.DataParallel averages the two ranks' gradients: the mean
  loss over 2B samples = the average of the two per-rank means. (With shuffle True the same holds for the
  global order, since every rank shuffles the same padded list with the same seed, but then we could not
  control which samples share a rank - see BN below.)
* BatchNorm. Each rank normalises with the statistics of its own B samples, a single process with those of
  2B, so in general the two runs differ by more than rounding. We make them mathematically identical:
  both ranks get the SAME three images (one per class), rank 0 with their true labels and rank 1 with the
  labels shifted by one class. Batch statistics of [a, a] equal those of a (mean and biased variance), so
  the forward pass - and as a function of the weights, the loss - of the 2B batch is exactly the average of
  the two ranks' losses, whose gradients still differ (different labels): a missing gradient all-reduce, a
  sum instead of a mean, or a wrong shard would all show.
* Tolerance. This tiny from-scratch network is numerically chaotic: float32 rounding differences between a
  batch of 3 and a batch of 6 (different kernel blocking) give a relative gradient difference of ~3e-5, and
  every further step amplifies it (measured in-process with the same model: ~3e-5 after one step,
  0.5e-2..9e-2 after two, up to 0.6 after four). So the weights are compared after exactly ONE optimizer
  step (one epoch of 2B samples), as the relative difference of the updates
  ||dW_dist - dW_single|| / ||dW_single|| < 1e-3 (measured ~3e-5; the bugs above give >= 1).
  Both runs start from the same saved initial weights (Global.pretrained_model).
* Resume with two processes is compared with an uninterrupted two-process run (same computation, so the
  weights agree to 1e-6), and rank 0's eval numbers (all-reduced, padding removed) with a single-process
  tools/eval.py on the full val set (odd size, so the sampler pads).
"""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import (
    PER_RANK_BATCH as B, REPO_ROOT, TINY_ARCH, TRAIN, load_params, load_states, paired_setup, read_metrics,
    relative_update_difference, run_train, subprocess_env, trainable,
)

pytestmark = pytest.mark.slow


def launch_train(config_path, log_dir, *overrides, resume=False, nproc=2, timeout=400):
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc), "--log_dir",
           str(log_dir), str(TRAIN), "-c", str(config_path)]
    for item in overrides:
        cmd += ["-o", item]
    if resume:
        cmd += ["--resume", "auto"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, env=subprocess_env())
    logs = "".join(f"\n--- {p.name}\n{p.read_text()[-2500:]}" for p in sorted(Path(log_dir).glob("workerlog.*")))
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}{logs}"
    return proc


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """All the training runs this module checks (shared: each launch costs several seconds)."""
    root = tmp_path_factory.mktemp("dist")
    setup = paired_setup(root)
    config = setup["config"]
    out = {"root": root, "data": setup["data"], "init": setup["init"]}
    run_train(config("single", 2 * B, 2))
    out["single"] = root / "single" / TINY_ARCH
    launch_train(config("dist", B, 2), root / "log_dist")
    out["dist"] = root / "dist" / TINY_ARCH
    # Resume: one epoch, then --resume auto to two epochs, against the uninterrupted "dist" run.
    resumed_cfg = config("resumed", B, 1)
    launch_train(resumed_cfg, root / "log_resumed_1")
    out["resume_proc"] = launch_train(resumed_cfg, root / "log_resumed_2", "Global.epochs=2", resume=True)
    out["resumed"] = root / "resumed" / TINY_ARCH
    out["dist_config"] = root / "dist.yaml"
    return out


def test_one_step_matches_single_process_with_double_batch(runs):
    init = runs["init"]
    single = load_params(runs["single"] / "epoch_1")
    dist = load_params(runs["dist"] / "epoch_1")
    assert load_states(runs["dist"] / "epoch_1")["global_step"] == 1  # one step per epoch per rank
    assert load_states(runs["single"] / "epoch_1")["global_step"] == 1
    rel = relative_update_difference(init, single, dist)
    max_abs = max(float(np.max(np.abs(dist[k] - single[k]))) for k in trainable(init))
    print(f"one step: relative update difference {rel:.2e}, max |w_dist - w_single| {max_abs:.2e}")
    assert rel < 1e-3, f"2 processes x batch {B} differ from 1 process x batch {2 * B}: relative {rel:.3e}"
    # BN running statistics: batch stats of [a, a] equal those of a (up to rounding).
    for key in init:
        if key.endswith(("_mean", "_variance")):
            np.testing.assert_allclose(dist[key], single[key], rtol=1e-3, atol=1e-4, err_msg=key)


def test_only_rank0_writes_outputs(runs):
    run_dir = runs["dist"]
    rows = read_metrics(run_dir)
    assert [r["epoch"] for r in rows] == ["1", "2"], "metrics.csv rows duplicated or missing (two writers?)"
    log = (run_dir / "train.log").read_text()
    assert log.count("[Train][Epoch 1/2] done") == 1 and log.count("[Train][Epoch 2/2] done") == 1
    assert "2 process(es)" in log
    names = sorted(p.name for p in run_dir.iterdir())
    for prefix in ("epoch_1", "epoch_2", "latest", "best_model"):
        for suffix in (".pdparams", ".pdopt", ".pdstates"):
            assert prefix + suffix in names
    assert not [n for n in names if n.endswith(".tmp") or "rank" in n], names
    # No second output tree anywhere under the run root (e.g. a rank-1 directory).
    assert sorted(p.name for p in runs["dist"].parent.iterdir()) == [TINY_ARCH]


def test_eval_metrics_are_all_reduced_over_the_full_val_set(runs):
    last = read_metrics(runs["dist"])[-1]
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "eval.py"), "-c", str(runs["dist_config"]),
                           "-o", f"Global.pretrained_model={runs['dist'] / 'latest'}",
                           "-o", f"Global.output_dir={runs['root'] / 'eval_single'}"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=subprocess_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("eval:")][-1]
    single = {k: float(v) for k, v in re.findall(r"(\w+): ([-0-9.eE+]+)", line)}
    assert float(last["eval_top1"]) == pytest.approx(single["top1"], abs=1e-6)
    assert float(last["eval_top2"]) == pytest.approx(single["top2"], abs=1e-6)
    assert float(last["eval_loss"]) == pytest.approx(single["loss"], rel=1e-4, abs=1e-5)
    log = (runs["dist"] / "train.log").read_text()
    # 5 val images over 2 ranks: rank 0 holds 3 real ones (the sampler's padding goes to rank 1 and is dropped).
    assert "(3 images on this rank" in log


def test_resume_with_two_processes_matches_uninterrupted(runs):
    resumed, straight = runs["resumed"], runs["dist"]
    assert "resumed from" in (runs["root"] / "log_resumed_2" / "workerlog.0").read_text()
    assert load_states(resumed / "latest")["epoch"] == 2
    a, b = load_params(resumed / "latest"), load_params(straight / "latest")
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-6, err_msg=key)
    assert [r["epoch"] for r in read_metrics(resumed)] == ["1", "2"]


def test_one_lock_per_run_and_a_launch_into_a_locked_folder_stops_at_once(runs):
    """The launched runs took one lock (rank 0's) and gave it up; a launch into a folder another process holds
    stops at once in every rank, naming the holder, and changes nothing there."""
    run = runs["dist"]
    lock = run.parent / f".{TINY_ARCH}.lock"
    assert not lock.exists()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom ppcls_lite.engine.run_lock import RunLock\n"
         "RunLock.acquire(sys.argv[1]); print('held', flush=True); time.sleep(600)", str(run)],
        cwd=REPO_ROOT, env=subprocess_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
        log_dir = runs["root"] / "log_locked"
        cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", str(log_dir),
               str(TRAIN), "-c", str(runs["dist_config"]), "-o", "Global.epochs=3", "--resume", "auto"]
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=subprocess_env())
    finally:
        holder.kill()
        holder.wait()
    logs = "".join(p.read_text() for p in sorted(log_dir.glob("workerlog.*")))
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert f"{run} is in use by another training (pid {holder.pid} on " in logs + proc.stdout + proc.stderr
    assert "[Train]" not in logs  # no rank trained
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before
    assert load_states(run / "latest")["epoch"] == 2


def test_paddleclas_gpus_flag_is_the_launchers_devices_flag(monkeypatch):
    """PaddleClas's docs launch with --gpus="0,1,2,3"; Paddle 3's launcher keeps --gpus as an alias of --devices
    (no GPU here, so check how the launcher parses the line README shows)."""
    from paddle.distributed.launch.context.args_envs import parse_args

    line = ["launch", "--gpus=0,1,2,3", "tools/train.py", "-c", "configs/MobileNetV3_large_x1_0.yaml",
            "-o", "Global.epochs=3"]
    monkeypatch.setattr(sys, "argv", line)
    args, unknown = parse_args()
    assert unknown == [] and args.devices == "0,1,2,3"
    assert args.training_script == "tools/train.py"
    assert args.training_script_args == ["-c", "configs/MobileNetV3_large_x1_0.yaml", "-o", "Global.epochs=3"]
    monkeypatch.setattr(sys, "argv", ["launch", "--devices", "0,1", "tools/train.py"])
    assert parse_args()[0].devices == "0,1"
