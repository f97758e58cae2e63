"""Small file helpers shared across layers (utils imports nothing above itself)."""
import contextlib
import os
from pathlib import Path
from typing import Union


def write_text_atomic(path: Union[str, Path], text: str) -> None:
    """Write `text` (UTF-8) to `path` through a temporary file beside it, renamed into place when complete.

    A reader never sees a half-written file; on an OSError (full or read-only disk) the temporary file is removed
    and the error is raised as it came.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
