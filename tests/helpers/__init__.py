"""Test helpers (importable; conftest.py holds only fixtures): `from helpers import make_image_folder, run_train`.

Every name that tests/conftest.py used to define is re-exported here under the same name, so
`from conftest import X` becomes `from helpers import X` (tests/helpers/README.md).
"""
from .configs import (DECODE, DETERMINISTIC_OPS, EXPORT_ARCH, INFER_OPS_32PX, NORMALIZE, RANDOM_OPS, TINY_ARCH,
                      load_config, paddleclas_data_overrides, tiny_config, tiny_export_config, tiny_train_config,
                      with_params, write_config)
from .data import (EXIF_DISPLAY, image_files, make_awkward_files, make_image_folder, orientation_jpeg, save_pil,
                   smooth_photo)
from .distributed import PER_RANK_BATCH, paired_setup, relative_update_difference, trainable
from .hostile import make_special_files, write_huge_png
from .loopback_server import LoopbackServer, Route
from .paths import FIXTURE_REFERENCE_DIR, PREDICTOR_DIR, REFERENCE_DIR, REPO_ROOT, TOOLS_DIR, TRAIN, load_tool
from .reading import load_params, load_states, read_metrics, record_lr, uint8_crops
from .reference import (parity_rule, parity_weights_prefix, read_models_tsv, read_state_dict_txt, reference_file,
                        state_dict_entries)
from .run import (ctrl_c_train, export_tiny, run_export, run_tool, run_train, signal_train, start_train,
                  subprocess_env, wait_for)

__all__ = [name for name in dir() if not name.startswith("_") and name not in {
    "configs", "data", "distributed", "hostile", "loopback_server", "paths", "reading", "reference", "run"}]
