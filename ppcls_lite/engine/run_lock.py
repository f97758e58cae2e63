"""One writer per training run folder: a lock file beside it, `<Global.output_dir>/.<Arch.name>.lock`.

The lock (utils/folder_lock.py, shared with the export folder's lock) is held from the moment
`build_engine(config, "train")` starts until training ends, and its file records who holds it: pid, host, start
time and command line. A second training into the same folder stops at once with one line naming the holder
(nothing is written); the lock of a process that is gone (kill -9, power cut) is taken over with a note; a record
from another host is not taken over (the message says to delete the file if that run is over).

The lock lives beside the run folder rather than in it, so `--overwrite` can move an earlier run aside while the
lock is held. With `paddle.distributed.launch` only rank 0 takes it, before the ranks meet in
`init_parallel_env`: the other ranks cannot start training unless rank 0 holds the lock, and when rank 0 stops
at the lock the launcher stops them too.
"""
from typing import Optional

from ppcls_lite.utils.folder_lock import FolderLock, FolderLockedError, LockPurpose, lock_path

__all__ = ["RunLock", "RunLockedError", "acquire_for", "lock_path"]

RunLockedError = FolderLockedError  # another process is training into the same run folder
TRAINING = LockPurpose(writer="training", work="run",
                       harm="two trainings into one run folder would mix their checkpoints and metrics",
                       elsewhere="train into another folder with -o Global.output_dir=DIR")


class RunLock(FolderLock):
    """The held lock of one run folder. `acquire` is re-entrant within a process (each call needs a `release`)."""

    @classmethod
    def acquire(cls, run_dir: str, purpose: LockPurpose = TRAINING) -> "FolderLock":
        """Take the lock of `run_dir`, or raise RunLockedError naming the process that holds it (an OSError naming
        the run folder when the lock file cannot be written: full or read-only disk)."""
        return super().acquire(run_dir, purpose)


def acquire_for(run_dir: str, is_main: bool) -> Optional[FolderLock]:
    """Rank 0's lock on the run folder (other ranks take none, see the module docstring)."""
    return RunLock.acquire(run_dir) if is_main else None
