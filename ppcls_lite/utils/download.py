"""The one download module: pretrained weights and datasets, cached, resumable, checked before use.

- Cache: `$PPCLS_LITE_HOME/weights` and `$PPCLS_LITE_HOME/datasets` (default `~/.ppcls_lite`); the file is
  named as in the URL. A cached file is reused when the sha256 recorded beside it (`<file>.sha256`) still
  matches and it passes the caller's check; a file placed there by hand is checked, then its hash recorded.
- `PPCLS_LITE_WEIGHTS_MIRROR=http://host:port` replaces the scheme and host of every URL, keeping the path.
- The download goes to `<file>.part` and is renamed only when complete and checked, so an interrupted
  download never looks complete. Transient errors (connection drops, timeouts, HTTP 5xx/429) are retried a few
  times, each retry resuming the `.part` with an HTTP Range request. A download that fails for good (or is
  interrupted) removes its `.part`; only a killed process leaves one, which the next download resumes.
- The cache's own disk faults (full, quota, read-only, no permission) are not network faults: they stop at once
  with one line naming the cache folder, the space the file needs and the space free there (the size is checked
  against the free space before the transfer when the server sends it), and no partial file is left.
- Check before use: an HTML page instead of the file, or a file that fails the caller's `validate(path)`,
  is deleted and reported.
- Progress on stderr: size, speed and ETA on a terminal; one line per 10 % otherwise.
"""
from __future__ import annotations

import errno
import http.client
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Optional

from ppcls_lite.pipeline.checksums import sha256_file
from ppcls_lite.utils.files import SPACE_ERRNOS, format_bytes, free_bytes, write_text_atomic

MIRROR_ENV = "PPCLS_LITE_WEIGHTS_MIRROR"
HOME_ENV = "PPCLS_LITE_HOME"
RETRIES = 4
TIMEOUT_S = 30
_CHUNK = 1 << 16
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class DownloadError(ValueError):
    """A download that failed for good; the message names the URL, the cache path and what to do (a ValueError,
    so that the tools print it as one line)."""


class CacheWriteError(OSError):
    """Writing into the download cache failed (full disk, quota, read-only, no permission): not retried.
    `needed` is the number of bytes the file still needed, when known."""

    needed: Optional[int] = None


def _cache_write_error(exc: OSError, path: str, needed: Optional[int] = None) -> CacheWriteError:
    error = CacheWriteError(exc.errno, exc.strerror or str(exc), path)
    error.needed = needed
    return error


def cache_home() -> str:
    """$PPCLS_LITE_HOME, else ~/.ppcls_lite: where downloads are cached."""
    return os.path.expanduser(os.environ.get(HOME_ENV) or os.path.join("~", ".ppcls_lite"))


def weights_dir() -> str:
    """The cache folder for downloaded weights."""
    return os.path.join(cache_home(), "weights")


def datasets_dir() -> str:
    """The cache folder for downloaded datasets."""
    return os.path.join(cache_home(), "datasets")


def is_url(value: Any) -> bool:
    """Whether `value` is an http(s) URL string."""
    return isinstance(value, str) and value.strip().lower().startswith(("http://", "https://"))


def apply_mirror(url: str) -> str:
    """`url` with scheme and host replaced by $PPCLS_LITE_WEIGHTS_MIRROR (path and query kept)."""
    mirror = (os.environ.get(MIRROR_ENV) or "").strip()
    if not mirror:
        return url
    target = urllib.parse.urlsplit(mirror if "://" in mirror else "http://" + mirror)
    if not target.netloc:
        raise DownloadError(f"{MIRROR_ENV}={mirror!r} is not of the form http://host:port")
    parts = urllib.parse.urlsplit(url)
    path = target.path.rstrip("/") + parts.path  # a mirror may live under a path prefix
    return urllib.parse.urlunsplit((target.scheme, target.netloc, path, parts.query, ""))


def file_sha256(path: str) -> str:
    """The hex sha256 of a file (the pipeline's reader: one implementation for exports, downloads, checkpoints)."""
    return sha256_file(path)


def _cache_path(url: str, cache_dir: str) -> str:
    name = os.path.basename(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    if not name or name in (".", ".."):
        raise DownloadError(f"cannot tell a file name from the URL {url!r}")
    return os.path.join(cache_dir, name)


def _manual_hint(url: str, target: str) -> str:
    return (f"To place the file by hand, download {url} on a machine with access and copy it to {target} "
            f"(it is checked before use), or set {MIRROR_ENV}=http://host:port to a mirror serving the same paths")


class _Progress:
    """Download progress on stderr: a live line on a terminal, one line per 10 % otherwise."""

    def __init__(self, name: str, total: Optional[int], done: int, stream: Any = None) -> None:
        self.name, self.total, self.done = name, total, done
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start_time, self.start_done = time.monotonic(), done
        self.next_tenth = self._tenth() + 1
        self.last_draw = 0.0

    def _tenth(self) -> int:
        return int(10 * self.done / self.total) if self.total else 0

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.tty and (now - self.last_draw > 0.1 or (self.total and self.done >= self.total)):
            self.last_draw = now
            self.stream.write("\r" + self._line(now) + " " * 4)
            self.stream.flush()
        elif not self.tty and self.total and self._tenth() >= self.next_tenth:
            self.next_tenth = self._tenth() + 1
            self.stream.write(self._line(now) + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _line(self, now: float) -> str:
        elapsed = max(now - self.start_time, 1e-6)
        speed = (self.done - self.start_done) / elapsed
        mb = 1024 * 1024
        if self.total:
            eta = (self.total - self.done) / speed if speed > 0 else 0
            return (f"downloading {self.name}: {100 * self.done / self.total:5.1f}% {self.done / mb:.1f}/"
                    f"{self.total / mb:.1f} MB {speed / mb:.2f} MB/s ETA {int(eta) // 60}:{int(eta) % 60:02d}")
        return f"downloading {self.name}: {self.done / mb:.1f} MB {speed / mb:.2f} MB/s"


def _looks_like_html(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body"))


def _fetch(url: str, part: str, progress: bool) -> None:
    """Download `url` into `part`, appending to what is there via an HTTP Range request."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={"User-Agent": "ppcls_lite"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the .part is no prefix of the file (e.g. it changed): start again
            os.remove(part)
            return _fetch(url, part, progress)
        raise
    with response:
        if have and response.status != 206:  # the server ignored the Range request: start from zero
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        needed = total - have if total is not None else None
        free = free_bytes(part)
        if needed is not None and free is not None and free < needed:  # refuse before transferring anything
            raise _cache_write_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), part, needed)
        bar = _Progress(os.path.basename(part)[: -len(".part")], total, have) if progress else None
        try:
            with _open_part(part, "ab" if have else "wb", needed) as out:  # unbuffered: no write left for close()
                while True:
                    block = response.read(_CHUNK)
                    if not block:
                        break
                    _write_all(out, block, part, needed)
                    if bar:
                        bar.update(len(block))
        finally:
            if bar:
                bar.close()
    size = os.path.getsize(part)
    if total is not None and size < total:
        raise http.client.IncompleteRead(b"", total - size)  # the connection dropped: retried with a Range


def _open_part(part: str, mode: str, needed: Optional[int]):
    try:
        return open(part, mode, buffering=0)
    except OSError as exc:
        raise _cache_write_error(exc, part, needed) from exc


def _write_all(out: Any, block: bytes, part: str, needed: Optional[int]) -> None:
    """Write all of `block` to the unbuffered file `out`; a disk fault becomes a CacheWriteError."""
    view = memoryview(block)
    try:
        while view:
            view = view[out.write(view):]
    except OSError as exc:
        raise _cache_write_error(exc, part, needed) from exc


def _is_transient(err: BaseException) -> bool:
    if isinstance(err, urllib.error.HTTPError):
        return err.code in _RETRY_STATUS
    if isinstance(err, urllib.error.URLError):
        # offline (no name resolution) or nobody listening: retrying does not help
        return not isinstance(err.reason, (ConnectionRefusedError, socket.gaierror))
    return isinstance(err, (http.client.HTTPException, ConnectionError, TimeoutError, OSError))


def download(url: str, cache_dir: str, validate: Optional[Callable[[str], None]] = None,
             progress: bool = True, retries: int = RETRIES) -> str:
    """The cached local copy of `url` (after the mirror substitution), downloading it if needed.

    `validate(path)` raises ValueError when the file is not what was asked for; such a file is deleted.
    Raises DownloadError naming the URL, the cache path and how to place the file by hand.
    """
    source = apply_mirror(url)
    target = _cache_path(url, cache_dir)
    try:
        os.makedirs(cache_dir, exist_ok=True)
        lock = _Lock(os.path.join(cache_dir, "." + os.path.basename(target) + ".lock"))
        lock.__enter__()
    except OSError as exc:
        raise _disk_fault(_cache_write_error(exc, cache_dir), source, cache_dir) from exc
    part = target + ".part"
    try:
        cached = _reuse_cached(target, validate)
        if cached:
            return cached
        for attempt in range(retries + 1):
            try:
                _fetch(source, part, progress)
                break
            except CacheWriteError as err:
                raise _disk_fault(err, source, cache_dir) from err
            except Exception as err:  # noqa: BLE001 - classified below
                if not _is_transient(err) or attempt == retries:
                    raise DownloadError(f"cannot download {source}: {_describe(err)}. Cache path: {target}. "
                                        f"{_manual_hint(source, target)}.") from err
                time.sleep(min(0.2 * 2 ** attempt, 2.0))  # the next attempt resumes the .part
        _check_or_delete(part, source, validate, target)
        digest = file_sha256(part)
        os.replace(part, target)
        try:
            write_text_atomic(target + ".sha256", f"{digest}  {os.path.basename(target)}\n")
        except OSError as exc:  # the file is complete; its recorded hash is written on the next use
            print(f"note: could not record the sha256 of {target} ({exc.strerror or exc})", file=sys.stderr)
        return target
    except BaseException:
        _remove(part)  # whatever stopped the download (a fault, Ctrl-C), no partial file is left
        raise
    finally:
        lock.__exit__(None, None, None)


def _disk_fault(err: CacheWriteError, source: str, cache_dir: str) -> DownloadError:
    """One line for a download the cache's disk could not take: the folder, the errno, the space, what to do."""
    code = err.errno
    meaning = f"{err.strerror or os.strerror(code)} [{errno.errorcode.get(code, code)}]"
    if code in SPACE_ERRNOS:
        need = f"the file needs {format_bytes(err.needed)}, " if err.needed else ""
        meaning += f" ({need}{format_bytes(free_bytes(cache_dir))} free there)"
        advice = "free space there"
    else:
        advice = "make it writable"
    return DownloadError(f"cannot save the download of {source} in {cache_dir}: {meaning}; {advice}, or set "
                         f"{HOME_ENV} to a folder on another disk. Nothing partial was kept (not a network fault: "
                         f"no retry)")


def _describe(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"no connection ({err.reason})"
    return f"{type(err).__name__}: {err}"


def _check_or_delete(path: str, source: str, validate, target: str) -> None:
    problem = None
    if _looks_like_html(path):
        problem = "the server sent an HTML page instead of the file (an error or login page?)"
    elif validate is not None:
        try:
            validate(path)
        except ValueError as err:
            problem = str(err)
    if problem:
        os.remove(path)
        raise DownloadError(f"the file downloaded from {source} is not usable and was deleted: {problem}. "
                            f"{_manual_hint(source, target)}.")


def _reuse_cached(target: str, validate) -> Optional[str]:
    """`target` when it is complete and sound; otherwise removes it (and its hash) and returns None."""
    if not os.path.isfile(target):
        return None
    hash_file = target + ".sha256"
    digest = file_sha256(target)
    if os.path.isfile(hash_file):
        with open(hash_file, encoding="utf-8") as f:
            recorded = (f.read().split() or [""])[0]
        if recorded != digest:
            print(f"cached {target} does not match its recorded sha256 (changed or damaged); downloading again",
                  file=sys.stderr)
            _remove(target, hash_file)
            return None
    try:
        if _looks_like_html(target):
            raise ValueError("it is an HTML page")
        if validate is not None:
            validate(target)
    except ValueError as err:
        print(f"cached {target} is not usable ({err}); downloading again", file=sys.stderr)
        _remove(target, hash_file)
        return None
    if not os.path.isfile(hash_file):  # placed by hand: record what was checked
        write_text_atomic(hash_file, f"{digest}  {os.path.basename(target)}\n")
    return target


def _remove(*paths: str) -> None:
    for path in paths:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


class _Lock:
    """An exclusive lock file, so that two processes (e.g. training ranks) do not download the same file at once."""

    def __init__(self, path: str) -> None:
        self.path, self.handle = path, None

    def __enter__(self):
        self.handle = open(self.path, "a+")
        try:
            import fcntl

            fcntl.flock(self.handle, fcntl.LOCK_EX)
        except ImportError:  # Windows: no flock; concurrent downloads of one file are then not serialised
            pass
        return self

    def __exit__(self, *exc):
        self.handle.close()  # closing releases the lock


def download_weights(url: str, validate: Optional[Callable[[str], None]] = None, progress: bool = True) -> str:
    """`download` into the weights cache ($PPCLS_LITE_HOME/weights)."""
    return download(url, weights_dir(), validate=validate, progress=progress)


def check_zip(path: str, required: tuple = ()) -> None:
    """Raise ValueError unless `path` is an intact zip archive (CRCs checked) holding every name in `required`
    (matched as a path suffix, e.g. "train_list.txt")."""
    import zipfile

    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a zip archive")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{path} is a damaged zip archive ({err})") from err
    if bad is not None:
        raise ValueError(f"{path} is damaged: {bad} fails its CRC check")
    missing = [name for name in required if not any(n == name or n.endswith("/" + name) for n in names)]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}")


def safe_extract_zip(path: str, destination: str) -> list:
    """Extract the zip `path` into `destination`, refusing any member that would land outside it (absolute
    paths, `..`, drive letters) or that is a symbolic link. Nothing is written when a member is refused.
    Returns the extracted member names."""
    import shutil
    import stat
    import zipfile

    root = os.path.realpath(destination)
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        for member in members:  # check everything before writing anything
            name = member.filename
            target = os.path.realpath(os.path.join(root, name))
            unsafe = (name.startswith(("/", "\\")) or ":" in name.split("/")[0] or
                      ".." in name.replace("\\", "/").split("/") or
                      os.path.commonpath([root, target]) != root)
            if unsafe or stat.S_ISLNK(member.external_attr >> 16):
                raise ValueError(f"refused to extract {path}: member {name!r} would be written outside "
                                 f"{destination} or is a link; the archive is not what it should be")
        os.makedirs(root, exist_ok=True)
        for member in members:
            target = os.path.join(root, member.filename)
            if member.is_dir():
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with archive.open(member) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, _CHUNK)
    return [m.filename for m in members]


def download_dataset(url: str, validate: Optional[Callable[[str], None]] = None, progress: bool = True) -> str:
    """`download` into the datasets cache ($PPCLS_LITE_HOME/datasets)."""
    return download(url, datasets_dir(), validate=validate, progress=progress)
