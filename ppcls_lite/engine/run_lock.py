"""One writer per training run folder: a lock file beside it, `<Global.output_dir>/.<Arch.name>.lock`.

The lock is an exclusive `flock` on that file, held from the moment `build_engine(config, "train")` starts until
training ends, and the file records who holds it: pid, host, start time and command line. A second training into
the same folder stops at once with one line naming the holder (nothing is written). The kernel drops the flock
when its process dies however it ends (kill -9, power cut), so a lock file whose flock is free belongs to a process
that is gone: it is taken over with a note. A record from another host is not taken over (a network file system
may not share flocks between hosts): the message says to delete the file if that run is over.

The lock lives beside the run folder rather than in it, so `--overwrite` can move an earlier run aside while the
lock is held. With `paddle.distributed.launch` only rank 0 takes it, before the ranks meet in
`init_parallel_env`: the other ranks cannot start training unless rank 0 holds the lock, and when rank 0 stops
at the lock the launcher stops them too.
"""
import contextlib
import json
import os
import socket
import time
from typing import Dict, Optional

from ppcls_lite.utils import logger
from ppcls_lite.utils.cli import command_line
from ppcls_lite.utils.files import space_error

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock then relies on the recorded pid alone
    fcntl = None


class RunLockedError(ValueError):
    """Another process is training into the same run folder (a ValueError: the tools print it as one line)."""


def lock_path(run_dir: str) -> str:
    """The lock file of a run folder: `.<folder name>.lock` beside it."""
    run_dir = os.path.normpath(os.path.abspath(run_dir))
    return os.path.join(os.path.dirname(run_dir), f".{os.path.basename(run_dir)}.lock")


def _describe(record: dict) -> str:
    return (f"pid {record.get('pid', '?')} on {record.get('host', '?')}, started {record.get('started', '?')}: "
            f"{record.get('command', '?')}")


def _read_record(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 65536).decode("utf-8", errors="replace")
        return json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}


def _pid_alive(pid: object) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, TypeError):
        return False
    return True


class RunLock:
    """The held lock of one run folder. `acquire` is re-entrant within a process (each call needs a `release`)."""

    _held: Dict[str, "RunLock"] = {}

    def __init__(self, path: str, fd: int, run_dir: str) -> None:
        self.path, self.fd, self.run_dir, self.count = path, fd, run_dir, 1

    @classmethod
    def acquire(cls, run_dir: str) -> "RunLock":
        """Take the lock of `run_dir`, or raise RunLockedError naming the process that holds it (an OSError naming
        the run folder when the lock file cannot be written: full or read-only disk)."""
        path = lock_path(run_dir)
        held = cls._held.get(path)
        if held is not None:
            held.count += 1
            return held
        try:
            lock = cls._take(path, run_dir)
        except OSError as exc:
            raise space_error(exc, run_dir) from exc
        cls._held[path] = lock
        return lock

    @classmethod
    def _take(cls, path: str, run_dir: str) -> "RunLock":
        os.makedirs(os.path.dirname(path), exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if not _try_flock(fd):
                    raise RunLockedError(_held_message(run_dir, path, _read_record(fd)))
                with contextlib.suppress(FileNotFoundError):  # a holder releasing it may have removed the file
                    if os.fstat(fd).st_ino == os.stat(path).st_ino:
                        break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        record = _read_record(fd)
        try:
            _take_over_note(run_dir, path, record)
            _write_record(fd)
        except BaseException as exc:
            if not isinstance(exc, RunLockedError) and not record:  # ours and empty (e.g. a full disk): no trace
                with contextlib.suppress(OSError):
                    os.remove(path)
            os.close(fd)
            raise
        return cls(path, fd, run_dir)

    def release(self) -> None:
        """Give the lock up (the last release removes the file, then drops the flock)."""
        self.count -= 1
        if self.count > 0 or self.fd is None:
            return
        RunLock._held.pop(self.path, None)
        with contextlib.suppress(OSError):
            os.remove(self.path)  # removed while still held: a waiting process re-checks the inode
        os.close(self.fd)
        self.fd = None


def _try_flock(fd: int) -> bool:
    if fcntl is None:
        record = _read_record(fd)
        return not (record.get("host") == socket.gethostname() and _pid_alive(record.get("pid"))
                    and int(record.get("pid")) != os.getpid())
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _held_message(run_dir: str, path: str, record: dict) -> str:
    holder = _describe(record) if record else "a process that is still starting"
    return (f"{os.path.normpath(run_dir)} is in use by another training ({holder}); two trainings into one run "
            f"folder would mix their checkpoints and metrics. Wait for it to finish or stop it, or train into "
            f"another folder with -o Global.output_dir=DIR (lock file: {path})")


def _take_over_note(run_dir: str, path: str, record: dict) -> None:
    """A record left by a process that ended without releasing the lock: taken over with a note (same host), or
    refused when it comes from another host, whose processes this one cannot see."""
    if not record:
        return
    if record.get("host") not in (None, socket.gethostname()):
        raise RunLockedError(f"{path} says {os.path.normpath(run_dir)} is in use by a training on another host "
                             f"({_describe(record)}); if that run is over, delete {path} and start again")
    logger.warning(f"taking over the lock of {os.path.normpath(run_dir)}: its holder ({_describe(record)}) ended "
                   f"without releasing it (killed or crashed)")


def _write_record(fd: int) -> None:
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": command_line()}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(record) + "\n").encode("utf-8"))
    os.fsync(fd)


def acquire_for(run_dir: str, is_main: bool) -> Optional[RunLock]:
    """Rank 0's lock on the run folder (other ranks take none, see the module docstring)."""
    return RunLock.acquire(run_dir) if is_main else None
