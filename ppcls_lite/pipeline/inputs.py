"""Text files and inputs: list files (`path label`), label files (`id name`), and what to predict.

Text files are read as UTF-8 with or without a byte-order mark, with LF or CRLF line ends. In a list file
the label is split off at the LAST whitespace, so paths may contain spaces and any Unicode characters
(`paper/纸 1.png 3`), as PaddleClas writes its lists.
"""
import os
from pathlib import Path
from typing import List, Optional, Tuple, Union

from .decode import IMAGE_EXTENSIONS


def read_text_lines(path: Union[str, Path]) -> List[Tuple[int, str]]:
    """(line number, stripped text) of every non-blank line; a UTF-8 BOM and CR line ends are removed."""
    try:
        with open(path, "r", encoding="utf-8-sig", newline=None) as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start}); save it as UTF-8, "
                         f"or pass an image rather than a list file") from None
    return [(no, line.strip()) for no, line in enumerate(text.splitlines(), 1) if line.strip()]


def split_list_line(line: str, delimiter: Optional[str] = None) -> Tuple[str, Optional[str]]:
    """`relative/path with spaces.jpg 3` -> ('relative/path with spaces.jpg', '3'); a single field -> (it, None).

    With `delimiter` (PaddleClas's dataset option) the line is split at the last delimiter instead.
    """
    parts = line.rsplit(delimiter, 1)
    if len(parts) == 2 and parts[0].strip():
        return parts[0].strip(), parts[1].strip()
    return line.strip(), None


def list_line_path(line: str) -> str:
    """The image path of a list line whose label is optional (prediction inputs): a tab ends the path (PaddleClas's
    tab-separated lists, multi-label `path<TAB>0,1,0`); else a last field that is a label (an integer, or
    comma-separated integers) is split off, anything else belongs to the path."""
    if "\t" in line.strip():
        return line.strip().rsplit("\t", 1)[0].strip()
    path, label = split_list_line(line)
    return path if label is not None and _is_label(label) else line.strip()


def _is_label(text: str) -> bool:
    try:
        [int(part) for part in text.split(",")]
    except ValueError:
        return False
    return True


def read_label_names(path: Union[str, Path]) -> List[str]:
    """`label_list.txt` (`id name` per line; names may contain spaces) -> list of names indexed by id."""
    names = {}
    for lineno, line in read_text_lines(path):
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


def scan_images(folder: Union[str, Path]) -> List[str]:
    """Image files below `folder`, recursively, sorted by path."""
    return sorted(str(p) for p in Path(folder).rglob("*") if p.is_file() and is_image_file(p.name))


def collect_inputs(source: Union[str, Path], what: str = "--input") -> List[str]:
    """An image file, a folder (searched recursively, sorted) or a list file (`path [label]` per line, paths
    relative to the list file's folder, `#` comments) -> list of image paths. `what` names the option in errors."""
    if source is None or str(source) == "":
        raise ValueError(f"{what} is not set: give an image, a folder or a list file")
    path = Path(str(source))
    if path.is_dir():
        files = scan_images(path)
        if not files:
            raise FileNotFoundError(f"{what}={source}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder "
                                    f"or below")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"{what}={source} does not exist (give an image, a folder or a list file)")
    if is_image_file(path.name):
        return [str(path)]
    files, first_line = [], None
    for line_no, line in read_text_lines(path):
        if line.startswith("#"):
            continue
        name = list_line_path(line)
        files.append(str(Path(name) if os.path.isabs(name) else path.parent / name))
        first_line = first_line or line_no
    if not files:
        raise ValueError(f"{what}={source}: the list file names no images ('path [label]' per line)")
    # A missing image is one failed input (reported when it is read); none found means a wrong folder.
    if not any(os.path.isfile(f) for f in files):
        raise FileNotFoundError(f"{path}, line {first_line}: image {files[0]} does not exist, nor does any other "
                                f"image of the list (paths in a list file are relative to the list file's folder)")
    return files
