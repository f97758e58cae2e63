"""Shared plumbing of the tools/ scripts: user errors and disk faults become one clear line, not a traceback;
SIGTERM and SIGHUP stop a tool like Ctrl-C does (one line, exit status 143 / 129), not with Paddle's C++ stack
dump."""
import errno
import logging
import os
import shlex
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional, Sequence

# Errors that carry a message for the user (what is wrong and what to do); CheckpointError and ConfigError
# are ValueErrors. Anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, FileNotFoundError, KeyError)

# Any of these asks for the full traceback instead of the one-line error (PPCLS_DEBUG is the older name).
DEBUG_ENV_VARS = ("PPCLS_LITE_DEBUG", "PPCLS_DEBUG")
DEBUG_FLAG = "--debug"

# What the user can do about an OSError, by errno. Faults of the disk itself are user errors even when the
# OSError names no file (a write() or close() that hits a full disk does not know its path).
_ADVICE = {
    errno.ENOSPC: "the disk is full: free space there or write to another place",
    errno.EDQUOT: "your disk quota is used up: free space there or write to another place",
    errno.EROFS: "that file system is mounted read-only: write to another place",
    errno.EACCES: "you have no permission there: change its permissions or write to another place",
    errno.EPERM: "the operation is not permitted there: change its permissions or write to another place",
    errno.EIO: "the device reported an I/O error: check the disk (dmesg) or write to another place",
    errno.EFBIG: "the file is too large for that file system: write to another place",
    errno.ENOENT: "check the path: it, or a folder in it, does not exist",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EISDIR: "it is a folder: give a file name",
}
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG})
# Signals that end a tool as an interruption: SIGINT (Ctrl-C), SIGTERM (kill, systemd, Docker, Kubernetes, job
# schedulers), SIGHUP (the terminal closed).
STOP_SIGNAL_NAMES = ("SIGINT", "SIGTERM", "SIGHUP")


class Interrupted(KeyboardInterrupt):
    """A stop signal ended the work; the message says what was left and how to go on. `exit_status` is the shell's
    128 + signal number (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)."""

    def __init__(self, message: str = "", signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = int(signum)
        self.signal_name = signal.Signals(signum).name
        self.exit_status = 128 + int(signum)


def stop_signals() -> List[int]:
    """The stop signals this platform has."""
    return [getattr(signal, name) for name in STOP_SIGNAL_NAMES if hasattr(signal, name)]


@contextmanager
def handling_signals(handler: Callable[[int, object], None], signals: Sequence[int]) -> Iterator[None]:
    """Install `handler` for `signals` for the duration of the block (main thread only; a signal the process
    ignores, e.g. SIGHUP under nohup, stays ignored); the earlier handlers are put back afterwards. Installed
    after paddle is imported, the handler also replaces Paddle's C++ one, which prints a stack dump."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in signals:
            if signal.getsignal(sig) is not signal.SIG_IGN:
                previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before if handler_before is not None else signal.SIG_DFL)


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted("", signum)


def command_line() -> str:
    """This process's command line as a user would type it (`python tools/train.py -c ...`)."""
    return shlex.join(["python", *sys.argv]) if sys.argv and sys.argv[0] else "python"


def debug_requested(argv: Sequence[str] = ()) -> bool:
    """True when the user asked for tracebacks: `--debug` on the command line or PPCLS_LITE_DEBUG/PPCLS_DEBUG set
    (to anything but '', '0', 'false', 'no')."""
    if DEBUG_FLAG in argv:
        return True
    return any(os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no") for name in DEBUG_ENV_VARS)


def is_disk_fault(exc: BaseException) -> bool:
    """An OSError to report as one line: it names a file, or it is a fault of the disk itself (full, read-only)."""
    if not isinstance(exc, OSError) or exc.errno is None:
        return False
    return exc.filename is not None or exc.errno in DISK_ERRNOS


def describe_os_error(exc: OSError, output_option: Optional[str] = None) -> str:
    """One line for an OSError: the path, the errno's meaning and name, and what to do.

    `output_option` names the setting that chooses where the tool writes (e.g. `-o Global.output_dir=DIR`).
    """
    code = exc.errno
    meaning = exc.strerror or (os.strerror(code) if code is not None else str(exc))
    name = errno.errorcode.get(code, "")
    where = None
    if exc.filename is not None:
        where = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 else "")
    meaning += f" [{name}]" if name else ""
    head = f"{where}: {meaning}" if where else f"{meaning} (the operating system did not say which file)"
    return f"{head}; {advice_for(code, output_option)}"


def advice_for(code: Optional[int], output_option: Optional[str] = None) -> str:
    """What to do about an errno, naming the option that moves the output elsewhere when that helps."""
    advice = _ADVICE.get(code, "check the path and the disk")
    if output_option and code in (DISK_ERRNOS | {errno.EACCES, errno.EPERM}):
        advice += f" (choose it with {output_option})"
    return advice


def os_error_naming(exc: OSError, path: "os.PathLike[str] | str") -> OSError:
    """The same OSError (errno and its meaning) with `path` as its file name; unchanged if it has no errno.

    For writes through a temp file (report the file the user asked for, not a random temp name) and for
    write()/close() failures, which name no file.
    """
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), os.path.abspath(os.fspath(path)))


@contextmanager
def writes_to(path: "os.PathLike[str] | str | None") -> Iterator[None]:
    """Inside, an OSError that names no file is re-raised naming `path` (the file or folder being written)."""
    try:
        yield
    except OSError as exc:
        if path is None or exc.filename is not None or exc.errno is None:
            raise
        raise os_error_naming(exc, path) from exc


def user_message(exc: BaseException, output_option: Optional[str] = None) -> Optional[str]:
    """The one-line message for an error the user can act on; None for a bug (it keeps its traceback)."""
    if isinstance(exc, OSError) and exc.errno is not None and exc.filename is not None:
        return describe_os_error(exc, output_option)
    if isinstance(exc, USER_ERRORS):
        if isinstance(exc, KeyError) and exc.args:
            return str(exc.args[0])
        code = getattr(exc, "errno", None)  # a write error already worded as a message keeps its errno beside it
        return f"{exc}; {advice_for(code, output_option)}" if code in _ADVICE else str(exc)
    if is_disk_fault(exc):  # a full or read-only disk, but no file named
        return describe_os_error(exc, output_option)
    return None


def run_cli(main: Callable[[Optional[List[str]]], Optional[int]], argv: Optional[Sequence[str]] = None,
            output_option: Optional[str] = None) -> int:
    """Run `main(argv)` and return its exit status.

    A user error prints `error: <message>` to stderr and gives 1; an OSError naming a file, or a full or
    read-only disk, prints `error: <path>: <errno meaning> [ENAME]; <what to do>` and gives 1; Ctrl-C prints
    `interrupted: ...` and gives 130, SIGTERM / SIGHUP `interrupted by SIGTERM: ...` and 143 / 129. `--debug` (removed from argv before `main` sees it), PPCLS_LITE_DEBUG=1 or
    PPCLS_DEBUG=1 give the full traceback instead. Tools call `sys.exit(run_cli(main))`.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(args)
    args = [a for a in args if a != DEBUG_FLAG]
    # A log file on a full disk must not bury the real error under logging's own tracebacks; the next
    # checkpoint or metrics write reports the fault as one line.
    logging.raiseExceptions = debug
    try:
        with handling_signals(_raise_interrupted, [s for s in stop_signals() if s != signal.SIGINT]):
            return main(args) or 0
    except (OSError, *USER_ERRORS) as exc:
        message = None if debug else user_message(exc, output_option)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: no traceback; the engine's message says how to resume
        name = getattr(exc, "signal_name", "SIGINT")
        label = "" if name == "SIGINT" else f" by {name}"
        print(f"interrupted{label}{': ' + str(exc) if str(exc) else ''}", file=sys.stderr)
        return getattr(exc, "exit_status", 130)
