"""Small file helpers shared across layers (utils imports nothing above itself): crash-safe text writes and the
one-line description of a write that found the disk full.

Text files are written to a temporary file beside the target, fsync'ed and renamed into place, so a reader never
sees a half-written file; `write_texts_atomic` writes several files as a group: every temporary file is complete
before the first rename, so a full disk leaves all old files as they were, never some old and some new.
"""
import errno
import os
import shutil
import time
from pathlib import Path
from typing import Dict, Optional, Union

PathLike = Union[str, Path]
SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def format_bytes(n: Optional[float]) -> str:
    """1536 -> '1.5 KB', 3.2e6 -> '3.1 MB' (binary units)."""
    if n is None:
        return "? bytes"
    for unit in ("bytes", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} GB"


def free_bytes(path: PathLike) -> Optional[int]:
    """Free space (bytes) on the file system holding `path` (its nearest existing folder); None if unknown."""
    folder = Path(os.path.abspath(path))
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def space_error(exc: OSError, path: PathLike, needed: Optional[int] = None) -> OSError:
    """The OSError of a failed write as one clear line: naming `path` (the file or folder the user knows), and for
    a full disk or quota how much space the write needed (when known) and how much is free."""
    if exc.errno is None:
        return exc
    meaning = exc.strerror or os.strerror(exc.errno)
    if exc.errno in SPACE_ERRNOS:
        free = free_bytes(path)
        need = f"needs {format_bytes(needed)}, " if needed else ""
        meaning += f" ({need}{format_bytes(free)} free there)"
    error = OSError(exc.errno, meaning, os.path.abspath(os.fspath(path)))
    error.__cause__ = exc
    return error


def fsync_dir(directory: PathLike) -> None:
    """fsync a folder so a rename in it survives a power cut (skipped where folders cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows cannot open directories; the rename is still atomic there
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: PathLike) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def write_texts_atomic(contents: Dict[PathLike, str]) -> None:
    """Write several UTF-8 text files as a group: all to fsync'ed temporary files first, then renamed into place.

    A failure while writing (full disk, read-only, no permission) removes every temporary file and leaves all
    targets as they were; it is raised as an OSError naming the target, with the space needed for a full disk.
    """
    temps: Dict[Path, Path] = {}
    target = None
    try:
        for target, text in contents.items():
            target = Path(target)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            temps[target] = tmp
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        for target, tmp in temps.items():
            os.replace(tmp, target)
        temps.clear()
    except OSError as exc:
        needed = sum(len(text.encode("utf-8")) for text in contents.values())
        raise space_error(exc, target if target is not None else ".", needed) from exc
    finally:
        for tmp in temps.values():
            _remove_quietly(tmp)
    for folder in {os.path.dirname(os.path.abspath(p)) for p in contents}:
        fsync_dir(folder)


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` through a temporary file beside it, renamed into place when complete.

    A reader never sees a half-written file; on an OSError (full or read-only disk) the temporary file is removed
    and the error names `path` (with the space needed for a full disk).
    """
    write_texts_atomic({path: text})


def timestamp(seconds: Optional[float] = None) -> str:
    """20240131-235959 for `seconds` since the epoch (now when None), local time: for names of kept files."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(seconds))


def free_name(path_without_suffix: PathLike, suffix: str = "") -> str:
    """`path_without_suffix + suffix`, or with -2, -3, ... inserted when that exists (two in one second)."""
    candidate, n = f"{path_without_suffix}{suffix}", 1
    while os.path.lexists(candidate):
        n += 1
        candidate = f"{path_without_suffix}-{n}{suffix}"
    return candidate


def keep_aside(path: PathLike) -> str:
    """Keep the current content of `path` as `<stem>.<its mtime>.<suffix>` beside it (a hard link, or a copy
    where links are not possible) before the caller replaces it; returns the name it is kept under."""
    path = Path(path)
    kept = free_name(path.with_name(f"{path.stem}.{timestamp(path.stat().st_mtime)}"), path.suffix)
    try:
        os.link(path, kept)
    except OSError:
        shutil.copy2(path, kept)
    return kept
