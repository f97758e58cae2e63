"""Config text: a key written twice in one mapping, an empty or non-mapping file, NormalizeImage mean/std and image
sizes out of bounds are refused when the file loads, naming the file, the key path and the lines. And the checks do
not depend on what the caller imported: `ppcls_lite.config` alone rejects what tools/train.py rejects."""
import json
import subprocess
import sys

import pytest

from helpers import REPO_ROOT, run_tool, subprocess_env
from ppcls_lite.config import ConfigError, get_config
from ppcls_lite.utils.config_rules import MAX_IMAGE_SIDE

QUICK_START = REPO_ROOT / "configs" / "quick_start" / "MobileNetV3_small_fashion_mnist.yaml"
# A PaddleClas recipe with RandCropImage at DataLoader.Train.dataset.transform_ops.1.
RECIPE = REPO_ROOT / "tests" / "paddleclas_configs" / "ImageNet" / "MobileNeXt" / "MobileNeXt_x1_0.yaml"


def edited(tmp_path, source, old, new, name="config.yaml"):
    """A copy of `source` with the first `old` replaced by `new` (the edit must apply)."""
    text = source.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def line_of(path, text, start=1):
    """1-based number of the first line at or after `start` that contains `text`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if i >= start and text in line)


# ------------------------------------------------------------------------------------------- duplicate keys

def test_key_written_twice_names_the_file_the_mapping_and_both_lines(tmp_path):
    path = edited(tmp_path, QUICK_START, "  epochs: 6\n", "  epochs: 6\n  seed: 1\n  epochs: 60\n")
    first = line_of(path, "epochs: 6")
    second = line_of(path, "epochs: 60")
    with pytest.raises(ConfigError) as info:
        get_config(path)
    message = str(info.value)
    assert str(path) in message and "'epochs'" in message and "Global" in message
    assert f"lines {first} and {second}" in message


def test_pasted_section_and_op_parameter_written_twice(tmp_path):
    # A whole section pasted a second time (what PaddleClas users hit), at the top level
    text = QUICK_START.read_text(encoding="utf-8")
    arch_block = "Arch:\n  name: MobileNetV3_small_x0_5\n  class_num: 10\n"
    assert arch_block in text
    path = tmp_path / "pasted.yaml"
    path.write_text(text + "\n" + arch_block.replace("class_num: 10", "class_num: 100"), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"'Arch' is written twice at the top level \(lines "
                                          rf"{line_of(path, 'Arch:')} and {line_of(path, 'Arch:', line_of(path, 'Arch:') + 1)}\)"):
        get_config(path)
    # Inside an op of a list: the path is the one -o takes
    path = edited(tmp_path, RECIPE, "        - RandCropImage:\n            size: 224\n",
                  "        - RandCropImage:\n            size: 224\n            size: 192\n", "op.yaml")
    with pytest.raises(ConfigError, match=r"'size' is written twice in "
                                          r"DataLoader\.Train\.dataset\.transform_ops\.1\.RandCropImage"):
        get_config(path)


def test_duplicate_in_a_base_file_names_that_file(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("Global:\n  device: cpu\n  device: gpu\n", encoding="utf-8")
    child = tmp_path / "child.yaml"
    child.write_text("_BASE_: base.yaml\nArch:\n  name: MobileNetV1_x0_25\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"base\.yaml: key 'device' is written twice in Global \(lines 2 and 3\)"):
        get_config(child)


def test_yaml_anchors_and_merge_keys_are_not_duplicates(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text("Global:\n  epochs: 2\n"
                    "Arch: {name: MobileNetV1_x0_25, class_num: 3}\n"
                    "Loss:\n  Train:\n    - CELoss: &ce {weight: 1.0, epsilon: 0.1}\n"
                    "  Eval:\n    - CELoss:\n        <<: *ce\n        epsilon: 0.0\n", encoding="utf-8")
    config = get_config(path)
    assert config["Loss"]["Eval"] == [{"CELoss": {"weight": 1.0, "epsilon": 0.0}}]  # the explicit key wins


# ------------------------------------------------------------------------------------------- empty, not a mapping

@pytest.mark.parametrize("text, expected", [
    ("", "is empty"),
    ("# nothing but a comment\n\n", "is empty"),
    ("- Global\n- Arch\n", "holds a list"),
    ("just some words\n", "holds a str"),
])
def test_empty_or_non_mapping_file_says_so(tmp_path, text, expected):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        get_config(path)
    assert str(path) in str(info.value) and expected in str(info.value)
    assert "mapping of sections" in str(info.value)


# ------------------------------------------------------------------------------------------- values in the file

@pytest.mark.parametrize("old, new, key, valid", [
    ("std: [0.353, 0.353, 0.353]", "std: [0.353, 0, 0.353]",
     "DataLoader.Train.dataset.transform_ops.3.NormalizeImage.std.1", "> 0"),
    ("std: [0.353, 0.353, 0.353]", "std: [0.353, -0.353, 0.353]",
     "DataLoader.Train.dataset.transform_ops.3.NormalizeImage.std.1", "> 0"),
    ("std: [0.353, 0.353, 0.353]", "std: [0.353, 0.353]",
     "DataLoader.Train.dataset.transform_ops.3.NormalizeImage.std", "a list of 3 numbers"),
    ("mean: [0.286, 0.286, 0.286]", "mean: [0.286, 0.286, 0.286, 0.286]",
     "DataLoader.Train.dataset.transform_ops.3.NormalizeImage.mean", "a list of 3 numbers"),
    ("size: 56", "size: 0", "DataLoader.Train.dataset.transform_ops.1.ResizeImage.size", "from 1 to 16384"),
    ("size: 56", "size: -56", "DataLoader.Train.dataset.transform_ops.1.ResizeImage.size", "from 1 to 16384"),
    ("size: 56", f"size: {MAX_IMAGE_SIDE + 1}", "DataLoader.Train.dataset.transform_ops.1.ResizeImage.size",
     "from 1 to 16384"),
    ("size: 56", "size: 100000", "DataLoader.Train.dataset.transform_ops.1.ResizeImage.size", "from 1 to 16384"),
])
def test_normalize_and_sizes_are_checked_in_the_file(tmp_path, old, new, key, valid):
    path = edited(tmp_path, QUICK_START, old, new)
    with pytest.raises(ConfigError) as info:
        get_config(path)
    message = str(info.value)
    assert str(path) in message and f"{key} must be" in message and valid in message, message


def test_largest_size_and_positive_std_pass(tmp_path):
    path = edited(tmp_path, QUICK_START, "size: 56", f"size: [{MAX_IMAGE_SIDE}, 1]")
    ops = get_config(path)["DataLoader"]["Train"]["dataset"]["transform_ops"]
    assert ops[1] == {"ResizeImage": {"size": [MAX_IMAGE_SIDE, 1]}}


def test_every_size_of_a_transform_is_checked(tmp_path):
    # RandCropImage in a training list, CropImage / ResizeImage in the Infer list: all named at once
    config = get_config(RECIPE)
    crop = next(i for i, op in enumerate(config["Infer"]["transforms"]) if "CropImage" in op)
    overrides = ["DataLoader.Train.dataset.transform_ops.1.RandCropImage.size=[224, 0]",
                 f"Infer.transforms.{crop}.CropImage.size=20000"]
    with pytest.raises(ConfigError) as info:
        get_config(RECIPE, overrides)
    message = str(info.value)
    assert "2 values are out of range" in message
    assert "DataLoader.Train.dataset.transform_ops.1.RandCropImage.size.1 must be" in message
    assert f"Infer.transforms.{crop}.CropImage.size must be" in message


@pytest.mark.slow
def test_train_tool_says_so_for_empty_file_and_zero_std(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    zero_std = edited(tmp_path, QUICK_START, "std: [0.353, 0.353, 0.353]", "std: [0.353, 0.353, 0]", "std.yaml")
    out = tmp_path / "out"
    for path, expected in ((empty, "is empty"),
                           (zero_std, "DataLoader.Train.dataset.transform_ops.3.NormalizeImage.std.2 must be > 0")):
        proc = run_tool("train.py", "-c", path, "-o", f"Global.output_dir={out}")
        text = proc.stdout + proc.stderr
        assert proc.returncode != 0 and str(path) in text and expected in text, text[-2000:]
        assert "Traceback" not in text and "error: Global" not in text
    assert not out.exists()  # refused before anything was written


# ------------------------------------------------------------------------------------------- import independence

def fresh_python(code):
    """Run `code` in a new interpreter (nothing imported before it) and return its stdout."""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=subprocess_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_config_package_alone_rejects_unknown_loss_and_op(tmp_path):
    bad_loss = edited(tmp_path, RECIPE, "- CELoss:", "- CELosss:", "loss.yaml")
    bad_op = edited(tmp_path, RECIPE, "- RandCropImage:", "- RandCropImagee:", "op.yaml")
    code = (
        "import json, sys\n"
        "from ppcls_lite.config import ConfigError, get_config\n"
        "out = {'engine imported': 'ppcls_lite.engine' in sys.modules}\n"
        f"for path in {[str(bad_loss), str(bad_op)]!r}:\n"
        "    try:\n"
        "        get_config(path)\n"
        "        out[path] = 'accepted'\n"
        "    except ConfigError as exc:\n"
        "        out[path] = str(exc)\n"
        "print(json.dumps(out))\n"
    )
    out = json.loads(fresh_python(code).splitlines()[-1])
    assert out["engine imported"] is False  # only ppcls_lite.config (and what it imports itself) was loaded
    assert "unknown loss 'CELosss' in Loss.Train.0" in out[str(bad_loss)]
    assert "Did you mean 'CELoss'" in out[str(bad_loss)]
    assert "unknown transform op 'RandCropImagee' in DataLoader.Train.dataset.transform_ops.1" in out[str(bad_op)]
    assert "Did you mean 'RandCropImage'" in out[str(bad_op)]


@pytest.mark.slow
def test_config_package_alone_checks_what_train_tool_checks():
    describe = "import json\nfrom ppcls_lite.config import describe_checks\nprint(json.dumps(describe_checks()))\n"
    alone = json.loads(fresh_python(describe).splitlines()[-1])
    # Everything tools/train.py imports (its module body, not main), then the same description
    as_train = json.loads(fresh_python(
        f"import runpy\nrunpy.run_path({str(REPO_ROOT / 'tools' / 'train.py')!r}, run_name='train_imports')\n"
        + describe).splitlines()[-1])
    assert alone == as_train
    text = "\n".join(alone)
    assert "Loss.*" in text and "CELoss" in text and "RandCropImage" in text and "closed Optimizer.lr" in text
