"""A python with PaddleClas's pins for the round-trip tests (tests/test_paddleclas_interop.py).

numpy 1.x (PaddleClas pins 1.24.4), paddlepaddle 3.3.1 and the registry's paddleclas 2.6.0 (PaddleClas's models,
save_load.init_model and deploy predictor) in a venv under ~/.cache/ppcls_lite/ (or $PPCLS_LITE_CACHE). It is
built once from PyPI (about a minute: it reuses this environment's packages; numpy, paddleclas and what paddleclas
needs besides go into the venv) and reused afterwards; .ci/run builds it before the tests:

    python tests/paddleclas_venv.py          # prints the python's path

$PPCLS_LITE_PADDLECLAS_PYTHON=/path/to/python uses an existing one instead.
"""
import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = ["numpy<2", "paddlepaddle==3.3.1", "paddleclas==2.6.0"]


def paddleclas_python() -> str:
    """The path of the python with PaddleClas's pins, building its venv first when needed."""
    given = os.environ.get("PPCLS_LITE_PADDLECLAS_PYTHON")
    if given:
        return given
    cache = Path(os.environ.get("PPCLS_LITE_CACHE", Path.home() / ".cache" / "ppcls_lite"))
    venv = cache / "venv-paddleclas-2.6.0-numpy1"
    python, marker = venv / "bin" / "python", venv / "ready.json"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".venv-paddleclas.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be building it
        if not marker.is_file() or json.loads(marker.read_text()) != REQUIREMENTS:
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
            proc = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS],
                                  capture_output=True, text=True, timeout=1800)
            if proc.returncode != 0:
                raise RuntimeError(f"could not build {venv} from PyPI:\n{proc.stderr[-3000:]}")
            marker.write_text(json.dumps(REQUIREMENTS))
    return str(python)


if __name__ == "__main__":
    print(paddleclas_python())
