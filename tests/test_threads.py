"""Global.cpu_threads: auto is OMP_NUM_THREADS when set, else the cores shared by the launch ranks on the machine;
a number is taken as it is; bad values are config errors naming the key; build_engine applies the count to
Paddle's OpenMP runtime in its process and logs it once."""
import ctypes
import io
import logging
import os
from pathlib import Path

import paddle
import pytest

from helpers import load_config, tiny_config
from ppcls_lite.config import get_config
from ppcls_lite.engine import build_engine
from ppcls_lite.utils.config_rules import ConfigError
from ppcls_lite.utils.threads import available_cores, busy_machine_note, resolve_cpu_threads


def omp_max_threads() -> int:
    """What Paddle's OpenMP runtime (its bundled libiomp5) will use for the next parallel region."""
    lib = Path(paddle.__file__).parent / "libs" / "libiomp5.so"
    if not lib.is_file():
        pytest.skip(f"this Paddle build has no {lib.name}")
    return ctypes.CDLL(str(lib)).omp_get_max_threads()


@pytest.mark.parametrize("env, expected", [
    ({"OMP_NUM_THREADS": "3"}, 3),
    ({"OMP_NUM_THREADS": ""}, available_cores()),
    ({"OMP_NUM_THREADS": "", "PADDLE_LOCAL_SIZE": "2"}, max(1, available_cores() // 2)),
    ({"OMP_NUM_THREADS": "", "PADDLE_LOCAL_SIZE": str(4 * available_cores())}, 1),
])
def test_auto(monkeypatch, env, expected):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    threads, how = resolve_cpu_threads("auto")
    assert threads == expected and "auto" in how
    assert resolve_cpu_threads(None)[0] == expected  # key absent: auto


def test_a_number_is_taken_as_it_is(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert resolve_cpu_threads(2) == (2, "Global.cpu_threads=2")


@pytest.mark.parametrize("value", [0, -1, "two", 1.5, True])
def test_bad_values_are_config_errors(value, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("Global: {cpu_threads: 1}\nArch: {name: MobileNetV3_small_x0_35, class_num: 3}\n")
    with pytest.raises(ConfigError, match=r"Global.cpu_threads must be auto or a whole number of threads >= 1"):
        get_config(str(path), [f"Global.cpu_threads={value}"])


def test_busy_machine_note(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (3.0 * available_cores(), 0.0, 0.0))
    assert "-o Global.cpu_threads=1" in busy_machine_note(2)
    assert busy_machine_note(1) == ""
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    assert busy_machine_note(2) == ""


def test_build_engine_applies_and_logs_the_count(tiny_dataset, tmp_path):
    # A handler of our own: the logger's stdout handler may hold an earlier test's captured stream.
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    logging.getLogger("ppcls_lite").addHandler(handler)
    try:
        for threads in (2, 1):
            config = tiny_config(tiny_dataset, tmp_path / f"out{threads}")
            config["Global"]["cpu_threads"] = threads
            build_engine(load_config(config, tmp_path), "eval")
            assert omp_max_threads() == threads
            assert f"CPU threads of Paddle's kernels: {threads} per process (Global.cpu_threads={threads})" in (
                lines.getvalue())
            lines.truncate(0)
            lines.seek(0)
    finally:
        logging.getLogger("ppcls_lite").removeHandler(handler)
        paddle.base.core.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 1))
