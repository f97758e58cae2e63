"""Running the tools (train, export, ...) in subprocesses, and signalling a training."""
import os
import subprocess
import sys

from .configs import tiny_export_config
from .paths import REPO_ROOT, TOOLS_DIR, TRAIN


def subprocess_env(extra=None):
    """The environment for a tool subprocess: one thread, CPU (no CUDA_VISIBLE_DEVICES), ppcls_lite importable,
    no debug tracebacks (the one-line errors are what users see), then `extra`."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    # paddle.distributed.launch treats a set CUDA_VISIBLE_DEVICES (even '') as "GPU job"; unset means CPU + gloo.
    env.pop("CUDA_VISIBLE_DEVICES", None)
    for name in ("PPCLS_LITE_DEBUG", "PPCLS_DEBUG"):
        env.pop(name, None)
    env.update(extra or {})
    return env


def run_tool(tool, *args, cwd=None, timeout=600, env=None):
    """`python tools/<tool> ARGS` in a subprocess with `subprocess_env(env)`; returns CompletedProcess."""
    return subprocess.run([sys.executable, str(TOOLS_DIR / tool), *map(str, args)], cwd=cwd or REPO_ROOT,
                          env=subprocess_env(env), capture_output=True, text=True, timeout=timeout)


def run_train(config_path, *overrides, resume=False, check=True, timeout=300, env=None):
    """`python tools/train.py -c CONFIG [-o ...] [--resume auto]` in a subprocess; returns CompletedProcess.
    With `check`, a failed run fails the test with the end of its output."""
    args = ["-c", config_path, *[part for item in overrides for part in ("-o", item)]]
    proc = run_tool("train.py", *args, *(["--resume", "auto"] if resume else []), timeout=timeout, env=env)
    if check:
        assert proc.returncode == 0, f"train.py {' '.join(map(str, args))} failed:\n{proc.stdout[-3000:]}\n" \
                                     f"{proc.stderr[-3000:]}"
    return proc


def start_train(config_path, *args, group=False):
    """Start `python tools/train.py -c CONFIG ARGS` (stdout discarded, stderr piped) with SIGINT at its default, as a
    terminal's Ctrl-C finds it (the test runner may ignore SIGINT, which children inherit); `group`: in a new
    process group (a session), so that a signal can be sent to it and its data-loader workers at once."""
    import signal

    return subprocess.Popen([sys.executable, str(TRAIN), "-c", str(config_path), *map(str, args)], cwd=REPO_ROOT,
                            env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), start_new_session=group)


def wait_for(proc, ready, what, timeout=300):
    """Poll until `ready()` while `proc` runs; fails naming `what` if it exits first or never gets there."""
    import time

    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, f"training exited before {what}: {proc.stderr.read()[-2000:]}"
        assert time.time() < deadline, f"training never got to {what}"
        time.sleep(0.005)


def signal_train(config_path, ready, what, sig, group=False):
    """Start training (`start_train`), send `sig` once `ready()` is true (to the whole process group with `group`)
    and return (exit status, stderr)."""
    proc = start_train(config_path, group=group)
    try:
        wait_for(proc, ready, what)
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        stderr = proc.communicate(timeout=120)[1]
    finally:
        proc.kill()
    return proc.returncode, stderr


def ctrl_c_train(config_path, ready, what):
    """SIGINT (a terminal's Ctrl-C) to a training once `ready()`; returns (exit status, stderr)."""
    import signal

    return signal_train(config_path, ready, what, signal.SIGINT)


def run_export(config_path, *args):
    """`python tools/export_model.py -c CONFIG ARGS` in a subprocess; returns CompletedProcess."""
    return run_tool("export_model.py", "-c", config_path, *args, timeout=None)


def export_tiny(tmp_path, reference_dir, *export_args):
    """Export the tiny parity-weights config (`tiny_export_config`) with tools/export_model.py `export_args`;
    asserts it succeeded and returns (export folder, dataset root)."""
    config_path, root = tiny_export_config(tmp_path, reference_dir)
    proc = run_export(config_path, *export_args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp_path / "inference", root
