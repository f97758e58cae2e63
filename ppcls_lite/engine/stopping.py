"""Stopping a training run on a signal, at a safe point, with the command that continues it.

SIGINT (Ctrl-C), SIGTERM (`kill`, systemd, Docker, Kubernetes, job schedulers) and SIGHUP (a closed terminal) are
handled alike while `Engine.train` runs: the first one is noted and training stops at the next safe point - before
the update of the current step, after a batch of evaluation, or once the checkpoint saves under way are complete
(all ranks stop at the same step: the request travels with the step's loss check). A second signal stops at once
(checkpoints are written atomically, so whatever is on disk stays complete). The tool then prints one line naming
the last complete checkpoint and the command that continues the run, and exits with 130 / 143 / 129.

The handlers replace Paddle's C++ ones (which print a stack dump and no message); a signal the process ignores
(SIGHUP under nohup) stays ignored, and a forked data-loader worker leaves the decision to the main process.
"""
import os
import shlex
import signal
import sys
from typing import ContextManager, List, Optional

from ppcls_lite.engine import checkpoint as ckpt
from ppcls_lite.utils import logger
from ppcls_lite.utils.cli import Interrupted, handling_signals, stop_signals

GENERIC_COMMAND = "python tools/train.py -c <config>"


class StopRequest:
    """The stop signal received during training, if any (see the module docstring)."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self._pid = os.getpid()

    def installed(self) -> ContextManager[None]:
        """Handle the stop signals while the block runs."""
        return handling_signals(self._handle, stop_signals())

    def _handle(self, signum: int, frame: object) -> None:
        if os.getpid() != self._pid:  # a forked data-loader worker: the main process decides
            return
        if self.signum is not None:
            raise Interrupted("", signum)
        self.signum = signum
        if hasattr(signal, "SIGCHLD"):
            # Data-loader workers that got the same signal (`kill -- -PGID`) end now; paddle's SIGCHLD handler would
            # raise its "DataLoader process exited" error at any later moment (even while the stop is reported).
            # Training is ending, so their end is expected: the loader still notices it when asked for a batch.
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        logger.warning(f"{signal.Signals(signum).name} received: training stops at the next safe point (after this "
                       f"step, or once the checkpoint being saved is complete); send it again to stop at once")

    def requested(self) -> bool:
        """Whether a stop signal arrived."""
        return self.signum is not None


def resume_command(how: str) -> str:
    """The command that continues this run: this process's tools/train.py command line without --overwrite,
    --resume and Global.checkpoints, plus `how` (e.g. `--resume auto`)."""
    argv = list(sys.argv[1:])
    tail = f" {how}" if how else ""
    if not sys.argv or not sys.argv[0].endswith("train.py"):
        return GENERIC_COMMAND + tail
    kept: List[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--overwrite" or arg.startswith(("--resume=", "Global.checkpoints=")):
            continue
        if arg == "--resume" or (arg == "-o" and i + 1 < len(argv) and argv[i + 1].startswith("Global.checkpoints=")):
            skip = True
            continue
        kept.append(arg)
    return shlex.join(["python", sys.argv[0], *kept]) + tail


def interrupt_message(last_checkpoint: Optional[str], run_dir: str, epoch: int, finished: bool,
                      is_main: bool) -> str:
    """What a stopped run leaves behind and the command that goes on from there."""
    when = f"{'after' if finished else 'during'} epoch {epoch}"
    if last_checkpoint:
        folder = os.path.dirname(os.path.abspath(last_checkpoint))
        in_run_dir = folder == os.path.abspath(run_dir)
        how = "--resume auto" if in_run_dir else f"-o Global.checkpoints={last_checkpoint}"
        return (f"training stopped {when}. Last complete checkpoint: {last_checkpoint}. Continue with: "
                f"{resume_command(how)}")
    left = ckpt.checkpoint_names(run_dir) if is_main else []
    if left:  # e.g. best_model written, stopped before latest: not resumable, but a new run would be refused
        return (f"training stopped {when}, before the first resumable checkpoint (only {', '.join(left)} in "
                f"{run_dir}). Start again with: {resume_command('--overwrite')} (moves these aside)")
    return (f"training stopped {when}, before the first checkpoint: nothing was saved. Start again with the same "
            f"command (without --resume): {resume_command('')}")
