"""Where things are: the repository, its tools, the reference facts; loading a tool script as a module."""
import importlib
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Reference facts about PaddleClas's models, all kept in the repository (a bare clone needs nothing beside it);
# tests/fixtures/reference/README.md says where each file came from.
FIXTURE_REFERENCE_DIR = REPO_ROOT / "tests" / "fixtures" / "reference"
REFERENCE_DIR = FIXTURE_REFERENCE_DIR
TOOLS_DIR = REPO_ROOT / "tools"
PREDICTOR_DIR = REPO_ROOT / "deploy" / "python"
TRAIN = TOOLS_DIR / "train.py"


def load_tool(name):
    """tools/<name>.py as a module: the tools are scripts beside their helper modules, not a package."""
    if str(TOOLS_DIR) not in sys.path:
        sys.path.insert(0, str(TOOLS_DIR))
    return importlib.import_module(name)

