"""Pytest fixtures only. Helpers (data makers, configs, subprocess runners, the loopback server, ...) live in the
importable package tests/helpers: `from helpers import make_image_folder` (tests/helpers/README.md)."""
import os

import pytest

from helpers import REFERENCE_DIR, REPO_ROOT, LoopbackServer, make_image_folder

# Paddle's CPU kernels spin up one thread per core by default; two test processes then fight over 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def reference_dir():
    """tests/fixtures/reference: the facts about PaddleClas's models the tests compare against."""
    return REFERENCE_DIR


@pytest.fixture
def tiny_dataset(tmp_path):
    """A 3-class, 18-image, 32 px dataset in class folders with train/val/label list files."""
    return make_image_folder(tmp_path / "tiny")


@pytest.fixture
def logged_warnings(monkeypatch):
    """The messages of the warnings logged through ppcls_lite's logger during the test, in order."""
    from ppcls_lite.utils import logger

    messages = []
    monkeypatch.setattr(logger, "warning", lambda msg, *args: messages.append(msg))
    return messages


@pytest.fixture
def log_lines():
    """Every line the project logger prints (warnings included) while the test runs."""
    import logging

    from ppcls_lite.utils.logger import get_logger

    lines = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Collect()
    get_logger().addHandler(handler)
    yield lines
    get_logger().removeHandler(handler)


@pytest.fixture
def mirror_server(tmp_path, monkeypatch):
    """A LoopbackServer on 127.0.0.1 standing in for every download host ($PPCLS_LITE_WEIGHTS_MIRROR), with an
    empty download cache ($PPCLS_LITE_HOME) in a folder whose name has a space and Chinese characters."""
    monkeypatch.setenv("PPCLS_LITE_HOME", str(tmp_path / "home dir 缓存"))
    with LoopbackServer() as server:
        monkeypatch.setenv("PPCLS_LITE_WEIGHTS_MIRROR", server.url)
        yield server
