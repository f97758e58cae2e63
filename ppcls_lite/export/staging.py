"""An export is built beside its folder and switched in whole: kill -9 at any moment leaves the folder holding either
the previous export or the new one, each complete.

    with StagedExport("inference", force=False) as staging:   # staging: inference/../.inference.export-staging
        ... write every file of the export into `staging` ...
    # on leaving: the manifest is written, every file fsync'ed, then `staging` and `inference` are swapped

In order:
1. One writer: the folder's lock (utils/folder_lock.py: `.inference.lock` beside it); a second export stops at once
   naming the holder, the lock of a killed one is taken over with a note.
2. Recovery of what a killed export left: the staging folder is removed; a previous export left aside by an
   interrupted switch (step 5, fallback) is put back.
3. Only our files may be replaced (ownership.py): any other file in the folder stops the export, listing them,
   unless `force`; then they are carried into the new export (hard links, else copies) under their own names, or
   as `NAME.<time>.EXT` where the export writes a file of that name, and are never deleted.
4. On success: export_manifest.json, fsync of every file and folder.
5. The switch. Linux (3.15+, on ext4, xfs, btrfs, tmpfs, ...): one `renameat2(RENAME_EXCHANGE)` swaps the two
   folders atomically, then the previous export (now at the staging path) is removed: there is no moment without a
   complete export at `inference`. Elsewhere (macOS, Windows, file systems without the exchange): `inference` is
   renamed to `.inference.export-old`, then the staging folder to `inference`. Between those two renames (two
   system calls) `inference` does not exist; an export killed exactly there leaves the previous export complete in
   `.inference.export-old`, which the predictor names and the next export puts back.
6. On any failure (full or read-only disk, a bad config, Ctrl-C / SIGTERM) the staging folder is removed and the
   folder is as it was; the error names the folder. A failed check (ExportRejected: the ONNX check, --verify) keeps
   the finished export apart as `inference.rejected/` for inspection and leaves the folder as it was.

PPCLS_LITE_EXPORT_PAUSE_AT=building|before_switch|moved_aside|switched makes the export wait at that point (a line
on stderr says so) until SIGUSR1, so tests can kill it there, or fill the disk before it goes on.
"""
import ctypes
import errno
import os
import shutil
import signal
import stat
import sys
import time
from pathlib import Path
from typing import List, Optional, Union

from ppcls_lite.predict.model_dir import previous_export_path
from ppcls_lite.utils import logger
from ppcls_lite.utils.cli import Interrupted
from ppcls_lite.utils.files import (SPACE_ERRNOS, format_bytes, free_bytes, free_name, fsync_dir, space_error,
                                    timestamp)
from ppcls_lite.utils.folder_lock import FolderLock, LockPurpose

from .folder import ExportError, write_manifest
from .ownership import survey_folder

PAUSE_ENV = "PPCLS_LITE_EXPORT_PAUSE_AT"
STAGING_SUFFIX = ".export-staging"
REJECTED_SUFFIX = ".rejected"
EXPORT = LockPurpose(writer="export", work="export", harm="two exports into one folder would mix their files",
                     elsewhere="export into another folder with -o Global.save_inference_dir=DIR")
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class ExportRejected(ExportError):
    """A check of the finished export failed (ONNX check, --verify): it must not replace the working export."""


class ForeignFilesError(ExportError):
    """The export folder holds files the export did not write."""


def pause_point(name: str) -> None:
    """Wait here when PPCLS_LITE_EXPORT_PAUSE_AT names this point (for tests), until SIGUSR1 says to go on."""
    if os.environ.get(PAUSE_ENV) != name:
        return
    resumed = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: resumed.append(signum))
    print(f"export paused at {name} (pid {os.getpid()})", file=sys.stderr, flush=True)
    while not resumed:
        time.sleep(0.05)
    signal.signal(signal.SIGUSR1, previous)


def staging_path(target: Union[str, Path]) -> Path:
    """`.<name>.export-staging` beside the export folder `target`."""
    target = Path(target)
    return target.parent / f".{target.name}{STAGING_SUFFIX}"


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one step (Linux renameat2 RENAME_EXCHANGE); False where the platform cannot."""
    func = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None) if sys.platform.startswith("linux") else None
    if func is None:
        return False
    if func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):  # not on this kernel / file system
        return False
    raise OSError(code, os.strerror(code), str(b))


def _fsync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        fsync_dir(root)


def _link_or_copy(source: str, target: str) -> None:
    """A hard link (same file, no space taken), or a copy where links are not possible."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _carry(source: Path, target: Path) -> None:
    if source.is_symlink():
        os.symlink(os.readlink(source), target)
    elif source.is_dir():
        shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(str(source), str(target))


def _guard_target(target: Path, force: bool) -> None:
    if target.exists() and not target.is_dir():
        raise ExportError(f"{target} is a file, not a folder: choose a folder with -o Global.save_inference_dir=DIR")
    if target.is_dir() and os.path.ismount(target):
        raise ExportError(f"{target} is a mount point: an export is built beside its folder and switched in by a "
                          f"rename, which cannot replace a mount point; export into a folder inside it "
                          f"(-o Global.save_inference_dir={target / 'inference'})")
    cwd, home = Path.cwd().resolve(), Path.home().resolve()
    if force and (target == home or target == cwd or target in cwd.parents):
        what = "your home folder" if target == home else "the current folder"
        raise ExportError(f"{target} is {what}: --force would move it aside to switch the export in; export into a "
                          f"folder of its own (-o Global.save_inference_dir=DIR)")


class StagedExport:
    """Build an export in a staging folder beside `target` and switch it in on success (module docstring)."""

    def __init__(self, target: Union[str, Path], force: bool = False, needed: Optional[int] = None) -> None:
        self.requested = Path(target)
        self.needed = needed  # bytes the new export takes (an estimate), when known
        self.target = Path(os.path.realpath(target))  # a symlink to the folder stays a symlink to the new export
        self.staging = staging_path(self.target)
        self.force = force
        self.existed = False
        self.switched = False
        self.keep: List[str] = []  # entries of the folder that are not ours (kept with --force)
        self.carried: List[str] = []
        self.lock: Optional[FolderLock] = None

    def __enter__(self) -> Path:
        _guard_target(self.target, self.force)
        free = free_bytes(self.target)
        if self.needed and free is not None and free < self.needed:  # the previous export stays until the switch
            raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (the export needs about "
                                        f"{format_bytes(self.needed)}, {format_bytes(free)} free there)",
                          str(self.requested.absolute()))
        self.lock = FolderLock.acquire(str(self.target), EXPORT)
        try:
            self._recover()
            self.existed = self.target.is_dir()
            if self.existed:
                self._check_ownership()
            self.staging.mkdir()
        except BaseException as exc:
            self.lock.release()
            if isinstance(exc, OSError):
                raise self._named(exc) from exc
            raise
        return self.staging

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc is None:
                self._commit()
            elif isinstance(exc, ExportRejected):
                self._reject(exc)
            else:
                raise exc
        except BaseException as failure:
            self._abort()
            explained = self._explained(failure)
            if explained is failure:
                raise
            raise explained from failure
        finally:
            self.lock.release()
        return False

    # -- before -----------------------------------------------------------------------------------------
    def _recover(self) -> None:
        previous = previous_export_path(self.target)
        if previous.is_dir():
            if not self.target.exists():
                os.rename(previous, self.target)
                logger.warning(f"put the previous export back into {self.target}: an export was stopped while it "
                               f"switched folders")
            else:
                shutil.rmtree(previous)
        if self.staging.exists():
            shutil.rmtree(self.staging)
            logger.warning(f"removed {self.staging}, left by an export that was stopped (killed or crashed)")

    def _check_ownership(self) -> None:
        survey = survey_folder(self.target)
        self.keep = survey.not_ours
        if not self.keep:
            return
        what = f"{len(self.keep)} {'entry' if len(self.keep) == 1 else 'entries'}"
        if not self.force:
            raise ForeignFilesError(
                f"{self.target} holds {what} that tools/export_model.py did not write: {survey.describe()}; an "
                f"export replaces the folder, so it stops rather than lose them. Move them out, export into "
                f"another folder (-o Global.save_inference_dir=DIR), or pass --force to export and keep them")
        logger.warning(f"--force: keeping {what} that the export did not write in {self.target}: "
                       f"{survey.describe()}")

    # -- after ------------------------------------------------------------------------------------------
    def _carry_over(self) -> None:
        """--force: the entries that are not ours go into the new export (under another name where it has one)."""
        for entry in self.keep:
            rel = entry.rstrip("/")
            source, dest = self.target / rel, self.staging / rel
            if os.path.lexists(dest):
                stem, suffix = (dest.stem, dest.suffix) if dest.is_file() else (dest.name, "")
                stamp = timestamp(source.lstat().st_mtime)
                dest = Path(free_name(dest.with_name(f"{stem}.{stamp}"), suffix))
                logger.warning(f"--force: kept your {rel} as {dest.relative_to(self.staging)} (the export writes "
                               f"a file of that name)")
            dest.parent.mkdir(parents=True, exist_ok=True)
            _carry(source, dest)
            self.carried.append(dest.relative_to(self.staging).as_posix())

    def _commit(self) -> None:
        self._carry_over()
        write_manifest(self.staging, leave_out=self._carried_files())
        if self.existed:
            os.chmod(self.staging, stat.S_IMODE(self.target.stat().st_mode))
        _fsync_tree(self.staging)
        pause_point("before_switch")
        self._switch()

    def _carried_files(self) -> List[str]:
        files = []
        for rel in self.carried:
            path = self.staging / rel
            if path.is_dir() and not path.is_symlink():
                files += [Path(root, n).relative_to(self.staging).as_posix() for root, _, names in os.walk(path)
                          for n in names]
            else:
                files.append(rel)
        return files

    def _switch(self) -> None:
        parent = self.target.parent
        if not self.existed:
            os.rename(self.staging, self.target)
            old = None
        elif _exchange(self.staging, self.target):
            old = self.staging
        else:
            old = previous_export_path(self.target)
            os.rename(self.target, old)
            pause_point("moved_aside")
            try:
                os.rename(self.staging, self.target)
            except BaseException:
                os.rename(old, self.target)
                raise
        self.switched = True
        fsync_dir(parent)
        pause_point("switched")
        if old is not None:
            self._remove_previous(old)
            fsync_dir(parent)

    def _remove_previous(self, old: Path) -> None:
        """Remove the previous export; a file that appeared in the folder while the export ran is not ours: the
        previous folder is then kept, under a name that says what it is."""
        appeared = [e for e in survey_folder(old).not_ours if e not in self.keep]
        if not appeared:
            shutil.rmtree(old, ignore_errors=True)
            return
        kept = Path(free_name(self.target.with_name(f"{self.target.name}.previous-{timestamp()}")))
        os.rename(old, kept)
        logger.warning(f"{', '.join(appeared[:8])} appeared in {self.requested} while the export ran; the new "
                       f"export is in place and the previous folder, with them, is kept as {kept}")

    def _reject(self, exc: ExportRejected) -> None:
        rejected = self.target.with_name(self.target.name + REJECTED_SUFFIX)
        if rejected.exists() and (rejected.is_dir() and not survey_folder(rejected).not_ours):
            shutil.rmtree(rejected)  # the previous rejected export: ours
        elif rejected.exists():
            rejected = Path(free_name(rejected))
        kept = f"the previous export in {self.requested} is unchanged" if self.existed else \
            f"nothing was written to {self.requested}"
        try:
            write_manifest(self.staging)
            os.rename(self.staging, rejected)
        except OSError as fault:  # e.g. a full disk: the report is lost with the rest, the reason is still told
            raise ExportRejected(f"{str(exc).replace(str(self.staging) + os.sep, '')} ({kept}; this export could "
                                 f"not be kept apart: {fault})") from exc
        raise ExportRejected(f"{str(exc).replace(str(self.staging), str(rejected))} (this export is kept apart in "
                             f"{rejected} for inspection; {kept})") from exc

    def _abort(self) -> None:
        if not self.switched:
            shutil.rmtree(self.staging, ignore_errors=True)

    def _named(self, exc: OSError) -> OSError:
        """An OSError on a file in the staging folder (or on none: a write() on a full disk), told about the export
        folder (and the free space there)."""
        if exc.errno is None or (exc.filename is None and exc.errno not in SPACE_ERRNOS):
            return exc
        name = os.path.abspath(os.fspath(exc.filename if exc.filename is not None else self.staging))
        if not (name + os.sep).startswith(str(self.staging) + os.sep):
            return exc
        rel = os.path.relpath(name, self.staging)
        named = space_error(exc, self.target, self.needed) if "free" not in (exc.strerror or "") else exc
        meaning = (named.strerror or os.strerror(exc.errno)) + ("" if rel == "." else f" (while writing {rel})")
        return OSError(exc.errno, meaning, str(self.requested.absolute()))

    def _explained(self, failure: BaseException) -> BaseException:
        if isinstance(failure, KeyboardInterrupt):
            done = (f"the new export is in place in {self.requested}" if self.switched else
                    f"{self.requested} is as it was (the unfinished export was removed)")
            return Interrupted(f"the export was stopped; {done}", getattr(failure, "signum", signal.SIGINT))
        if isinstance(failure, OSError):
            return self._named(failure)
        if failure.args and isinstance(failure.args[0], str) and str(self.staging) in failure.args[0]:
            failure.args = (failure.args[0].replace(str(self.staging), str(self.requested)), *failure.args[1:])
        return failure
