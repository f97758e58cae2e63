"""Two-node data parallel on one machine: two `paddle.distributed.launch` processes, one trainer each.

    python -m paddle.distributed.launch --nnodes 2 --master 127.0.0.1:PORT --rank 0 --nproc_per_node 1 \
        tools/train.py -c CONFIG
    (the same with --rank 1, in a second process)

On CPU this needs nothing beyond CUDA_VISIBLE_DEVICES left unset: the launchers meet at --master (an HTTP
key-value store the rank-0 launcher serves), each sets PADDLE_TRAINER_ENDPOINTS / PADDLE_TRAINER_ID /
PADDLE_TRAINERS_NUM for its trainer, and the trainers all-reduce with gloo (PADDLE_DISTRI_BACKEND=gloo).

The data and the comparison are those of test_distributed.py (same images on both ranks, labels shifted on
rank 1, one optimizer step per epoch): after one step the two-node run must match one process with the
double batch. The trainers run tools/train.py's own main through a small wrapper that afterwards saves each
rank's final weights (only rank 0 writes checkpoints, so this is how rank 1's weights are seen).
"""
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from helpers import (
    PER_RANK_BATCH as B, REPO_ROOT, TINY_ARCH, TRAIN, load_params, load_states, paired_setup, read_metrics,
    relative_update_difference, run_train, subprocess_env, trainable,
)

pytestmark = pytest.mark.slow
TIMEOUT = 300  # seconds for the whole two-node job; the launchers are killed when it is over

WRAPPER = '''
import os, runpy, sys
import numpy as np
from ppcls_lite.engine.engine import Engine

dump_dir, train_script = sys.argv.pop(1), sys.argv.pop(1)
sys.argv[0] = train_script
tool = runpy.run_path(train_script)  # defines main(); not run as __main__
train = Engine.train


def train_and_dump(self):
    result = train(self)
    rank = int(os.environ["PADDLE_TRAINER_ID"])
    np.savez(os.path.join(dump_dir, f"rank{rank}.npz"), **{k: v.numpy() for k, v in self.model.state_dict().items()})
    return result


Engine.train = train_and_dump
sys.exit(tool["run_cli"](tool["main"]))
'''


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_two_nodes(root, config_path, timeout=TIMEOUT):
    """Start both launchers, wait for both (bounded), always kill what is left; returns per-rank results."""
    wrapper = root / "train_and_dump.py"
    wrapper.write_text(WRAPPER)
    dump_dir = root / "weights_per_rank"
    dump_dir.mkdir()
    master = f"127.0.0.1:{free_port()}"
    env = subprocess_env({"PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    procs = []
    try:
        for rank in (0, 1):
            cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nnodes", "2", "--master", master,
                   "--rank", str(rank), "--nproc_per_node", "1", "--log_dir", str(root / f"log_node{rank}"),
                   str(wrapper), str(dump_dir), str(TRAIN), "-c", str(config_path)]
            out = open(root / f"launcher{rank}.txt", "w")
            # Own process group: the launcher's trainer is killed with it if the job hangs.
            procs.append((subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True), out))
        codes = [proc.wait(timeout=timeout) for proc, _ in procs]
    finally:
        for proc, out in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            out.close()
    logs = "".join(f"\n--- {p}\n{p.read_text(errors='replace')[-2500:]}"
                   for p in sorted(root.glob("launcher*.txt")) + sorted(root.glob("log_node*/workerlog.*")))
    assert codes == [0, 0], f"launcher exit codes {codes}{logs}"
    return {"dump": dump_dir, "logs": logs}


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    root = tmp_path_factory.mktemp("multinode")
    setup = paired_setup(root)
    run_train(setup["config"]("single", 2 * B, 1))
    job = launch_two_nodes(root, setup["config"]("two_nodes", B, 2))
    return {"root": root, "init": setup["init"], "single": root / "single" / TINY_ARCH,
            "run": root / "two_nodes" / TINY_ARCH, **job}


def test_workers_see_two_nodes_with_gloo(two_nodes):
    root = two_nodes["root"]
    for rank in (0, 1):
        env_log = (root / f"log_node{rank}" / "envlog.0").read_text()
        assert "PADDLE_TRAINERS_NUM=2" in env_log and f"PADDLE_TRAINER_ID={rank}" in env_log
        assert "PADDLE_DISTRI_BACKEND=gloo" in env_log
    assert "2 process(es)" in (two_nodes["run"] / "train.log").read_text()


def test_one_step_matches_single_process_with_double_batch(two_nodes):
    init, run = two_nodes["init"], two_nodes["run"]
    assert load_states(run / "epoch_1")["global_step"] == 1
    rel = relative_update_difference(init, load_params(two_nodes["single"] / "epoch_1"), load_params(run / "epoch_1"))
    print(f"two nodes vs one process, one step: relative update difference {rel:.2e}")
    assert rel < 1e-3, f"2 nodes x batch {B} differ from 1 process x batch {2 * B}: relative {rel:.3e}"


def test_both_ranks_end_with_the_same_weights(two_nodes):
    ranks = [dict(np.load(two_nodes["dump"] / f"rank{r}.npz")) for r in (0, 1)]
    assert sorted(ranks[0]) == sorted(ranks[1]) == sorted(two_nodes["init"])
    changed = max(float(np.max(np.abs(ranks[0][k] - two_nodes["init"][k]))) for k in trainable(two_nodes["init"]))
    assert changed > 0, "the weights did not train"
    # All-reduced gradients: every rank applies the same update (BN statistics too: both saw the same images).
    for key in ranks[0]:
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key], err_msg=key)
    # And rank 0's final checkpoint holds exactly those weights.
    latest = load_params(two_nodes["run"] / "latest")
    for key in ranks[0]:
        np.testing.assert_array_equal(latest[key], ranks[0][key], err_msg=key)


def test_one_set_of_checkpoints_written_by_rank0(two_nodes):
    run = two_nodes["run"]
    names = sorted(p.name for p in run.iterdir())
    for prefix in ("epoch_1", "epoch_2", "latest", "best_model"):
        for suffix in (".pdparams", ".pdopt", ".pdstates"):
            assert prefix + suffix in names
    assert not [n for n in names if n.endswith(".tmp") or "rank" in n], names
    assert sorted(p.name for p in run.parent.iterdir()) == [TINY_ARCH]  # no second output tree
    assert [r["epoch"] for r in read_metrics(run)] == ["1", "2"], "metrics.csv rows duplicated (two writers?)"
    log = (run / "train.log").read_text()
    assert log.count("[Train][Epoch 2/2] done") == 1
    rank1_log = next((two_nodes["root"] / "log_node1").glob("workerlog.*")).read_text()
    assert "saved" not in rank1_log and "[Train][Epoch 2/2] done" not in rank1_log  # rank 1 neither logs nor saves
