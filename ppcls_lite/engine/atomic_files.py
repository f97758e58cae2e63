"""Crash-safe file writes: a temp file in the same folder, fsync, `os.replace`, fsync the folder.

A write that fails (disk full, read-only, no permission) raises OSError naming the file the caller asked for
(for a full disk with the space it needed and the space free), removes its temp file and leaves any earlier
file of that name untouched.
"""
import os
import tempfile

import numpy as np
import paddle

from ppcls_lite.utils import portable_save  # called as portable_save.portable_save: tests patch it
from ppcls_lite.utils.cli import os_error_naming
from ppcls_lite.utils.files import fsync_dir, space_error  # noqa: F401 (fsync_dir: part of this module's API)


def payload_bytes(obj: object) -> int:
    """The bytes of the tensors and arrays in `obj` (nested dicts/lists): about what paddle.save writes."""
    if isinstance(obj, dict):
        return sum(payload_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(payload_bytes(v) for v in obj)
    if isinstance(obj, paddle.Tensor):
        return int(np.prod(obj.shape)) * obj.element_size()
    return int(obj.nbytes) if isinstance(obj, np.ndarray) else 0


def write_temp(obj: object, path: str) -> str:
    """Save `obj` (paddle.save's format, readable under numpy 1.x and 2.x: utils/portable_save.py) to a fsync'ed
    temp file next to `path`; returns the temp path.

    A failed write (disk full, read-only, no permission) raises OSError naming `path`, the file the user
    asked for (a write() that hits a full disk names no file, mkstemp names a random temp name).
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    try:
        fd, tmp_path = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise os_error_naming(exc, path) from exc
    os.close(fd)
    try:
        os.chmod(tmp_path, 0o666 & ~_current_umask())  # mkstemp makes 0600; give the usual permissions
        portable_save.portable_save(obj, tmp_path)
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
    except BaseException as exc:
        remove_quietly(tmp_path)
        if isinstance(exc, OSError):
            raise space_error(exc, path, payload_bytes(obj)) from exc
        raise
    return tmp_path


def remove_quietly(path: str) -> None:
    """Delete a file if it is there; errors are ignored (clean-up must not hide the original error)."""
    try:
        os.remove(path)
    except OSError:
        pass


def atomic_save(obj: object, path: str) -> None:
    """Save `obj` to `path` atomically: temp file in the same dir, fsync, os.replace, fsync dir."""
    path = os.path.abspath(path)
    tmp_path = write_temp(obj, path)
    try:
        os.replace(tmp_path, path)
    except BaseException as exc:
        remove_quietly(tmp_path)
        if isinstance(exc, OSError):
            raise os_error_naming(exc, path) from exc
        raise
    fsync_dir(os.path.dirname(path))


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
