"""Reading the reference facts of tests/fixtures/reference (state-dict listings, models.tsv, parity weights)."""
import importlib.util
from pathlib import Path

import numpy as np

from .paths import FIXTURE_REFERENCE_DIR


def reference_file(reference_dir, relative):
    """<reference_dir>/<relative> (kept for tests written when the facts lived in two places)."""
    return Path(reference_dir) / relative


def read_models_tsv(reference_dir):
    """{name: row} of <reference_dir>/models.tsv, in its order."""
    lines = (Path(reference_dir) / "models.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    return {row[0]: dict(zip(header, row)) for row in (line.split("\t") for line in lines[1:] if line.strip())}


def read_state_dict_txt(path):
    """[(key, shape, dtype)] of a state_dict/<name>.txt reference file."""
    entries = []
    for line in Path(path).read_text().splitlines():
        key, shape, dtype = line.split("\t")
        entries.append((key, [int(d) for d in shape.strip("[]").split(",") if d.strip()], dtype))
    return entries


def state_dict_entries(model):
    """[(key, shape, dtype)] of a model, as the reference files list them."""
    return [(k, list(v.shape), str(v.dtype).replace("paddle.", "")) for k, v in model.state_dict().items()]


def parity_rule():
    """tests/fixtures/reference/parity_rule.py: the seeded weights of models too large to store."""
    spec = importlib.util.spec_from_file_location("parity_rule", FIXTURE_REFERENCE_DIR / "parity_rule.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parity_weights_prefix(reference_dir, name, tmp_path, model=None):
    """The prefix of parity file `name`'s weights (.pdparams): the stored file of `reference_dir`, or, for the
    models too large to store (tests/fixtures/reference), the weights of model `model` (default: `name`) drawn by
    the seeded rule of tests/fixtures/reference/parity_rule.py and saved under tmp_path. The .npz beside holds the
    input `x` (and maybe `x_odd`) and the `logits` (`logits_odd`) they must give."""
    import paddle

    npz = reference_file(reference_dir, f"parity/{name}.npz")
    if npz.with_suffix(".pdparams").is_file():
        return npz.with_suffix("")
    rule = parity_rule()
    class_num = np.load(npz)["logits"].shape[1]
    layout = read_state_dict_txt(reference_file(reference_dir, f"state_dict/{model or name}.txt"))
    shapes = {key: (shape[:-1] + [class_num] if key.startswith(("classifier.", "fc.")) else shape)
              for key, shape, _ in layout}
    prefix = Path(tmp_path) / name
    paddle.save(rule.parity_weights(shapes), str(prefix) + ".pdparams")
    return prefix
