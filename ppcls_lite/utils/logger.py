"""Logging for ppcls_lite: one logger, stdout plus an optional file, quiet on non-zero ranks.

Only rank 0 prints info-level lines in data-parallel runs; other ranks show warnings and errors only,
so N processes do not print N copies of every line.
"""
import logging
import os
import sys
from typing import Any, Optional

_LOGGER_NAME = "ppcls_lite"
_FORMAT = "[%(asctime)s] %(levelname)s: %(message)s"


def _rank():
    # The paddle launcher sets PADDLE_TRAINER_ID; reading the env var avoids importing paddle here.
    return int(os.environ.get("PADDLE_TRAINER_ID", "0") or 0)


def get_logger() -> logging.Logger:
    """The shared logger; configured on first use (stdout, INFO on rank 0, WARNING elsewhere)."""
    logger = logging.getLogger(_LOGGER_NAME)
    if not getattr(logger, "_ppcls_configured", False):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO if _rank() == 0 else logging.WARNING)
        logger.propagate = False
        logger._ppcls_configured = True
    return logger


def init_logger(log_file: Optional[str] = None) -> logging.Logger:
    """Also write to `log_file` (rank 0 only; appended, so a resumed run continues the same file)."""
    logger = get_logger()
    for handler in list(logger.handlers):
        if isinstance(handler, logging.FileHandler):
            logger.removeHandler(handler)
            handler.close()
    if log_file and _rank() == 0:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handler = logging.FileHandler(log_file, mode="a", encoding="utf-8")
        handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
        logger.addHandler(handler)
    return logger


def info(msg: str, *args: Any) -> None:
    """Log at INFO (printed on rank 0 only)."""
    get_logger().info(msg, *args)


def warning(msg: str, *args: Any) -> None:
    """Log at WARNING (every rank)."""
    get_logger().warning(msg, *args)


def error(msg: str, *args: Any) -> None:
    """Log at ERROR (every rank)."""
    get_logger().error(msg, *args)


def debug(msg: str, *args: Any) -> None:
    """Log at DEBUG (shown only when the logger level is lowered)."""
    get_logger().debug(msg, *args)
