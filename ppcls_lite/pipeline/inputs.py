"""Text files and inputs: list files (`path label`), label files (`id name`), and what to predict.

Text files are read as UTF-8 with or without a byte-order mark, with LF or CRLF line ends, unless another
`encoding` is given (e.g. `gb18030` for lists written on Chinese Windows: DataLoader.<mode>.dataset.encoding,
Infer.encoding). A list that is not valid UTF-8, or whose paths are missing while a GB18030 reading names files
that exist, is an error saying so and naming the setting. In a list file the label is split off at the LAST
whitespace, so paths may contain spaces and any Unicode characters (`paper/纸 1.png 3`), as PaddleClas writes
its lists.

Only regular files are opened: a FIFO, socket, device or folder given as an image or a list is refused by
`stat` before it is opened (a FIFO would block the read forever, /dev/zero would fill the memory). Folder
scans ignore what other systems leave in image folders (`is_foreign`: hidden names such as `.DS_Store`,
`.ipynb_checkpoints` and AppleDouble `._photo.jpg` files, `__MACOSX`, Synology's `@eaDir`).
"""
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

from .decode import IMAGE_EXTENSIONS, check_pixel_limit

# Folder and file names other systems leave among images (besides any name starting with a dot).
FOREIGN_NAMES = frozenset({"__MACOSX", "@eaDir", "__pycache__", "lost+found", "$RECYCLE.BIN",
                           "System Volume Information", "Thumbs.db", "desktop.ini"})
DEFAULT_ENCODING = "utf-8"
# The encoding tried when a list is not valid UTF-8, or names missing files (lists written on Chinese Windows).
ALTERNATIVE_ENCODING = "gb18030"
_FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
_logger = logging.getLogger("ppcls_lite.pipeline")


class NotAFileError(ValueError):
    """A path that is not a regular file (a FIFO, socket, device or folder) where a file is read."""

    def __init__(self, path: Union[str, Path], kind: str, message: Optional[str] = None) -> None:
        self.path, self.kind = str(path), kind
        self.reason = f"it is {kind}, not a regular file; only regular files are read"
        super().__init__(message or f"{path} is {kind}, not a regular file; only regular files are read")


def file_kind(mode: int) -> Optional[str]:
    """What a `stat` mode describes ("a FIFO (named pipe)", "a folder", ...), None for a regular file."""
    return next((kind for test, kind in _FILE_KINDS if test(mode)), None if stat.S_ISREG(mode) else "not a file")


def check_regular_file(path: Union[str, Path]) -> None:
    """NotAFileError unless `path` is a regular file (after following links); FileNotFoundError if missing."""
    kind = file_kind(os.stat(path).st_mode)
    if kind:
        raise NotAFileError(path, kind)


def read_image_file(path: Union[str, Path]) -> bytes:
    """The bytes of an image file: refused before opening unless it is a regular file, and before reading when
    its header gives more pixels than the limit (decode.max_image_pixels)."""
    check_regular_file(path)
    # O_NONBLOCK: a FIFO put in the file's place after the stat cannot block the open; fstat then refuses it.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as f:
        kind = file_kind(os.fstat(f.fileno()).st_mode)
        if kind:
            raise NotAFileError(path, kind)
        check_pixel_limit(f)
        return f.read()


def is_foreign(name: str) -> bool:
    """Whether a folder or file name is something other systems leave among images (hidden names, __MACOSX,
    .ipynb_checkpoints, AppleDouble `._x.jpg`, @eaDir, Thumbs.db, ...): folder scans ignore these."""
    return name.startswith(".") or name in FOREIGN_NAMES


def _is_utf8(encoding: Optional[str]) -> bool:
    return not encoding or encoding.strip().lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig")


def _decode_text(raw: bytes, encoding: Optional[str]) -> str:
    return raw.decode("utf-8-sig" if _is_utf8(encoding) else encoding.strip())  # utf-8-sig drops a BOM


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _lines(text: str) -> List[Tuple[int, str]]:
    # Lines end at LF, CRLF or CR only (as Python's universal newlines): not at the Unicode separators
    # str.splitlines() also splits on (U+0085, U+2028, ...), which may stand in a misread file name.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [(no, line.strip()) for no, line in enumerate(lines, 1) if line.strip()]


def _encoding_advice(path: Union[str, Path], encoding_key: Optional[str], encoding: str) -> str:
    setting = f"set {encoding_key}={encoding}" if encoding_key else f"read it as {encoding}"
    return f"{setting}, or convert the file to UTF-8 (iconv -f {encoding.upper()} -t UTF-8 {path} > utf8_list.txt)"


def read_text_lines(path: Union[str, Path], encoding: Optional[str] = None,
                    encoding_key: Optional[str] = None) -> List[Tuple[int, str]]:
    """(line number, stripped text) of every non-blank line; a UTF-8 BOM and CR line ends are removed.
    `encoding` (default UTF-8) is how the file is read; `encoding_key` names that setting in errors."""
    check_regular_file(path)
    raw = Path(path).read_bytes()
    try:
        return _lines(_decode_text(raw, encoding))
    except LookupError:
        raise ValueError(f"{encoding_key or 'encoding'}={encoding!r} is not an encoding Python knows (e.g. utf-8, "
                         f"gb18030, gbk, big5, shift_jis, latin-1)") from None
    except UnicodeDecodeError as exc:
        problem = (f"{path}: not a {'UTF-8' if _is_utf8(encoding) else encoding} text file "
                   f"({exc.reason} at byte {exc.start})")
    advice = (f"set {encoding_key} to its encoding, or save it as UTF-8" if encoding_key
              else "save it as UTF-8, or pass an image rather than a list file")
    if _is_utf8(encoding) and _decodes(raw, ALTERNATIVE_ENCODING):
        advice = (f"it reads as {ALTERNATIVE_ENCODING.upper()} (a list written on Chinese Windows?): "
                  + _encoding_advice(path, encoding_key, ALTERNATIVE_ENCODING))
    raise ValueError(f"{problem}; {advice}")


def missing_paths_hint(path: Union[str, Path], missing_lines: Sequence[int], to_file: Callable[[str], str],
                       encoding: Optional[str] = None, encoding_key: Optional[str] = None) -> str:
    """For a UTF-8 list whose lines `missing_lines` name files that do not exist: a sentence advising to read it
    as GB18030 when that reading of those lines names files that do exist (mojibake from a GBK list that happens
    to be valid UTF-8), else ''. `to_file(line)` turns a list line into the file path it names."""
    if not _is_utf8(encoding):
        return ""
    try:
        alternative = dict(_lines(Path(path).read_bytes().decode(ALTERNATIVE_ENCODING)))
    except (OSError, UnicodeDecodeError):
        return ""
    checked = [no for no in missing_lines[:50] if no in alternative]
    found = sum(1 for no in checked if os.path.isfile(to_file(alternative[no])))
    if not found:
        return ""
    return (f"Read as {ALTERNATIVE_ENCODING.upper()}, {found} of the first {len(checked)} missing lines name files "
            f"that exist: the list is not UTF-8 (written on Chinese Windows?); "
            + _encoding_advice(path, encoding_key, ALTERNATIVE_ENCODING) + ".")


def split_list_line(line: str, delimiter: Optional[str] = None) -> Tuple[str, Optional[str]]:
    """`relative/path with spaces.jpg 3` -> ('relative/path with spaces.jpg', '3'); a single field -> (it, None).

    With `delimiter` (PaddleClas's dataset option) the line is split at the last delimiter instead.
    """
    parts = line.rsplit(delimiter, 1)
    if len(parts) == 2 and parts[0].strip():
        return parts[0].strip(), parts[1].strip()
    return line.strip(), None


def list_line_path(line: str) -> str:
    """The image path of a list line whose label is optional (prediction inputs): a last field that is not an
    integer belongs to the path."""
    path, label = split_list_line(line)
    return path if label is not None and _is_int(label) else line.strip()


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def read_label_names(path: Union[str, Path], encoding: Optional[str] = None,
                     encoding_key: Optional[str] = None) -> List[str]:
    """`label_list.txt` (`id name` per line; names may contain spaces) -> list of names indexed by id."""
    names = {}
    for lineno, line in read_text_lines(path, encoding, encoding_key):
        parts = line.split(maxsplit=1)
        try:
            idx = int(parts[0])
        except ValueError:
            raise ValueError(f"{path}:{lineno}: expected `id name`, got {line!r}") from None
        names[idx] = parts[1] if len(parts) > 1 else str(idx)
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{path}: class ids must be 0..{len(names) - 1} without gaps")
    return [names[i] for i in range(len(names))]


def is_image_file(path: Union[str, Path]) -> bool:
    """Whether the name ends in one of IMAGE_EXTENSIONS (any case)."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


@dataclass
class FolderScan:
    """What a folder holds below it: image files (by extension; anything not a regular file among them is
    refused when read), entries other systems left (ignored), other files."""

    root: str
    images: List[str] = field(default_factory=list)
    foreign: List[str] = field(default_factory=list)
    others: List[str] = field(default_factory=list)

    def foreign_summary(self) -> str:
        """One line naming the ignored entries ('' when there are none)."""
        if not self.foreign:
            return ""
        shown = [os.path.relpath(p, self.root) for p in self.foreign[:5]]
        more = f" and {len(self.foreign) - 5} more" if len(self.foreign) > 5 else ""
        return (f"{self.root}: ignored {len(self.foreign)} entries that other systems leave among images (hidden "
                f"files, __MACOSX, .ipynb_checkpoints, AppleDouble ._ files, @eaDir): {', '.join(shown)}{more}")


def scan_folder(folder: Union[str, Path]) -> FolderScan:
    """Walk `folder` recursively (links to folders are not followed), leaving out `is_foreign` entries and what
    lies below them; in walk order with names sorted (a folder's files, then its sub-folders)."""
    scan = FolderScan(str(folder))
    for dirpath, dirnames, filenames in os.walk(folder):
        scan.foreign.extend(os.path.join(dirpath, d) for d in sorted(dirnames) if is_foreign(d))
        dirnames[:] = sorted(d for d in dirnames if not is_foreign(d))
        for name in sorted(filenames):
            kind = scan.foreign if is_foreign(name) else scan.images if is_image_file(name) else scan.others
            kind.append(os.path.join(dirpath, name))
    return scan


def scan_images(folder: Union[str, Path]) -> List[str]:
    """Image files below `folder`, recursively, sorted by path (foreign entries left out and named once)."""
    scan = scan_folder(folder)
    if scan.foreign:
        _logger.warning(scan.foreign_summary())
    return sorted(scan.images)


def collect_inputs(source: Union[str, Path], what: str = "--input", encoding: Optional[str] = None,
                   encoding_key: Optional[str] = None) -> List[str]:
    """An image file, a folder (searched recursively, sorted) or a list file (`path [label]` per line, paths
    relative to the list file's folder, `#` comments; read with `encoding`, default UTF-8) -> list of image
    paths. `what` names the option in errors, `encoding_key` the setting of the list's encoding."""
    if source is None or str(source) == "":
        raise ValueError(f"{what} is not set: give an image, a folder or a list file")
    path = Path(str(source))
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what}={source} does not exist (give an image, a folder or a list file)") from None
    if stat.S_ISDIR(mode):
        files = scan_images(path)
        if not files:
            raise FileNotFoundError(f"{what}={source}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder "
                                    f"or below")
        return files
    kind = file_kind(mode)
    if kind:
        raise NotAFileError(path, kind, f"{what}={source} is {kind}: give an image file, a folder or a list file")
    if is_image_file(path.name):
        return [str(path)]

    def to_file(line: str) -> str:
        name = list_line_path(line)
        return str(Path(name) if os.path.isabs(name) else path.parent / name)

    entries = [(no, line) for no, line in read_text_lines(path, encoding, encoding_key) if not line.startswith("#")]
    files = [to_file(line) for _, line in entries]
    if not files:
        raise ValueError(f"{what}={source}: the list file names no images ('path [label]' per line)")
    missing = [no for (no, _), f in zip(entries, files) if not os.path.lexists(f)]
    hint = missing_paths_hint(path, missing, to_file, encoding, encoding_key) if missing else ""
    # A missing image is one failed input (reported when it is read); none found means a wrong folder.
    if hint or len(missing) == len(files):
        first = missing[0]
        missing_file = files[[no for no, _ in entries].index(first)]
        tail = f". {hint}" if hint else (", nor does any other image of the list (paths in a list file are relative "
                                         "to the list file's folder)")
        raise FileNotFoundError(f"{path}, line {first}: image {missing_file} does not exist{tail}")
    return files
