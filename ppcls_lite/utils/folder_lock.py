"""One writer per folder: a lock file beside the folder, `<parent>/.<folder name>.lock`, shared by training (a run
folder, engine/run_lock.py) and export (an export folder, export/staging.py).

The lock is an exclusive `flock` on that file, and the file records who holds it: pid, host, start time, command
line and what it writes (training / export). A second writer stops at once with one line naming the holder. The
kernel drops the flock when its process dies however it ends (kill -9, power cut), so a lock file whose flock is
free belongs to a process that is gone: it is taken over with a note. A record from another host is not taken over
(a network file system may not share flocks between hosts): the message says to delete the file if that work is
over. The lock lives beside the folder rather than in it, so the folder itself can be moved aside or swapped while
the lock is held.
"""
import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Dict

from ppcls_lite.utils import logger
from ppcls_lite.utils.cli import command_line
from ppcls_lite.utils.files import space_error

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock then relies on the recorded pid alone
    fcntl = None


class FolderLockedError(ValueError):
    """Another process writes into the same folder (a ValueError: the tools print it as one line)."""


@dataclass(frozen=True)
class LockPurpose:
    """What a lock protects, for its messages: `writer` ("training"), what two writers would do (`harm`), how to
    write elsewhere (`elsewhere`) and what ends the holder's work (`work`, "run")."""

    writer: str
    harm: str
    elsewhere: str
    work: str


def lock_path(folder: str) -> str:
    """The lock file of a folder: `.<folder name>.lock` beside it."""
    folder = os.path.normpath(os.path.abspath(folder))
    return os.path.join(os.path.dirname(folder), f".{os.path.basename(folder)}.lock")


def _describe(record: dict) -> str:
    return (f"pid {record.get('pid', '?')} on {record.get('host', '?')}, started {record.get('started', '?')}: "
            f"{record.get('command', '?')}")


def _read_record(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 65536).decode("utf-8", errors="replace")
        record = json.loads(text) if text.strip() else {}
        return record if isinstance(record, dict) else {}
    except (OSError, ValueError):
        return {}


def _pid_alive(pid: object) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, TypeError):
        return False
    return True


class FolderLock:
    """The held lock of one folder. `acquire` is re-entrant within a process (each call needs a `release`)."""

    _held: Dict[str, "FolderLock"] = {}

    def __init__(self, path: str, fd: int, folder: str) -> None:
        self.path, self.fd, self.folder, self.count = path, fd, folder, 1

    @classmethod
    def acquire(cls, folder: str, purpose: LockPurpose) -> "FolderLock":
        """Take the lock of `folder`, or raise FolderLockedError naming the process that holds it (an OSError
        naming the folder when the lock file cannot be written: full or read-only disk)."""
        path = lock_path(folder)
        held = FolderLock._held.get(path)
        if held is not None:
            held.count += 1
            return held
        try:
            lock = cls._take(path, folder, purpose)
        except OSError as exc:
            raise space_error(exc, folder) from exc
        FolderLock._held[path] = lock
        return lock

    @classmethod
    def _take(cls, path: str, folder: str, purpose: LockPurpose) -> "FolderLock":
        os.makedirs(os.path.dirname(path), exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if not _try_flock(fd):
                    raise FolderLockedError(_held_message(folder, path, _read_record(fd), purpose))
                with contextlib.suppress(FileNotFoundError):  # a holder releasing it may have removed the file
                    if os.fstat(fd).st_ino == os.stat(path).st_ino:
                        break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        record = _read_record(fd)
        try:
            _take_over_note(folder, path, record, purpose)
            _write_record(fd, purpose)
        except BaseException as exc:
            if not isinstance(exc, FolderLockedError) and not record:  # ours and empty (e.g. a full disk): no trace
                with contextlib.suppress(OSError):
                    os.remove(path)
            os.close(fd)
            raise
        return cls(path, fd, folder)

    def release(self) -> None:
        """Give the lock up (the last release removes the file, then drops the flock)."""
        self.count -= 1
        if self.count > 0 or self.fd is None:
            return
        FolderLock._held.pop(self.path, None)
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


def _held_message(folder: str, path: str, record: dict, purpose: LockPurpose) -> str:
    holder = _describe(record) if record else "a process that is still starting"
    writer = record.get("writer", purpose.writer)
    return (f"{os.path.normpath(folder)} is in use by another {writer} ({holder}); {purpose.harm}. Wait for it to "
            f"finish or stop it, or {purpose.elsewhere} (lock file: {path})")


def _take_over_note(folder: str, path: str, record: dict, purpose: LockPurpose) -> None:
    """A record left by a process that ended without releasing the lock: taken over with a note (same host), or
    refused when it comes from another host, whose processes this one cannot see."""
    if not record:
        return
    writer = record.get("writer", purpose.writer)
    if record.get("host") not in (None, socket.gethostname()):
        raise FolderLockedError(f"{path} says {os.path.normpath(folder)} is in use by a {writer} on another host "
                                f"({_describe(record)}); if that {purpose.work} is over, delete {path} and start "
                                f"again")
    logger.warning(f"taking over the lock of {os.path.normpath(folder)}: its holder ({_describe(record)}) ended "
                   f"without releasing it (killed or crashed)")


def _write_record(fd: int, purpose: LockPurpose) -> None:
    record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
              "command": command_line(), "writer": purpose.writer}
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(record) + "\n").encode("utf-8"))
    os.fsync(fd)
