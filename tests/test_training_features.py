"""Training features through the real engine: to_static, fine-tuning, freeze_befor, AMP on CPU (EMA resume:
tests/test_resume.py). The tiny config, running tools/train.py and reading checkpoints are tests/helpers.
"""
from pathlib import Path

import numpy as np
import pytest

from helpers import TINY_ARCH, load_params, run_train, tiny_train_config, write_config


def train_losses(run_dir):
    """Per-iteration training losses, in order, from train.log (5 decimals as logged)."""
    import re

    log = (Path(run_dir) / "train.log").read_text()
    return [float(x) for x in re.findall(r"\]\[Iter \d+/\d+\] lr: [0-9.e-]+, loss: ([-0-9.naif]+)", log)]


@pytest.fixture
def init_weights(tmp_path):
    """Random initial weights saved to a prefix, so a run's starting point is known exactly."""
    import paddle

    from ppcls_lite.arch import build_model

    paddle.seed(3)
    prefix = tmp_path / "init"
    paddle.save(build_model({"name": TINY_ARCH, "class_num": 3}).state_dict(), str(prefix) + ".pdparams")
    return prefix


# ---------------------------------------------------------------------------------------------------- to_static
@pytest.mark.slow
def test_to_static_training_matches_dygraph(tiny_dataset, tmp_path, init_weights):
    """On CPU the static graph runs the same kernels in the same order: measured difference 0.0 (weights
    after 6 steps bitwise equal). Tolerances: 1e-5 on the logged losses (printed with 5 decimals) and 1e-6
    on the weights, to leave room for op fusion in other Paddle builds without hiding a real difference
    (one wrong step moves weights by ~1e-3 at this lr)."""
    dirs = {}
    for to_static in (False, True):
        name = f"static_{to_static}"
        cfg = tiny_train_config(tiny_dataset, tmp_path / name, epochs=2)
        cfg["Global"].update(to_static=to_static, pretrained_model=str(init_weights))
        proc = run_train(write_config(cfg, tmp_path / f"{name}.yaml"))
        dirs[to_static] = tmp_path / name / TINY_ARCH
        assert ("static graph" in proc.stdout + proc.stderr) == to_static
    dygraph, static = train_losses(dirs[False]), train_losses(dirs[True])
    assert len(dygraph) == len(static) == 6
    np.testing.assert_allclose(static, dygraph, rtol=0, atol=1e-5)
    a, b = load_params(dirs[False] / "latest"), load_params(dirs[True] / "latest")
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-6, err_msg=key)
    assert set(a) == set(load_params(init_weights))  # to_static checkpoints keep the plain parameter names


# ---------------------------------------------------------------------------------------------------- fine-tuning
@pytest.mark.slow
def test_finetune_with_other_class_num_reinitialises_classifier(tiny_dataset, tmp_path, init_weights):
    """Global.pretrained_model from a 3-class model into a 4-class one: backbone loaded, fc re-initialised
    and reported (name + shapes), training runs."""
    cfg = tiny_train_config(tiny_dataset, tmp_path / "ft", class_num=4, epochs=1)
    cfg["Global"]["pretrained_model"] = str(init_weights)
    config = write_config(cfg, tmp_path / "ft.yaml")
    proc = run_train(config)
    output = proc.stdout + proc.stderr
    assert "fc.weight" in output and "fc.bias" in output
    assert "[256, 3]" in output and "[256, 4]" in output, "the shape mismatch is not reported"

    # What the engine loads, before any training step.
    from ppcls_lite.engine import build_engine
    from ppcls_lite.config import get_config

    # A second run may not start in the first one's folder (it holds checkpoints): build into another.
    engine = build_engine(get_config(str(config), [f"Global.output_dir={tmp_path / 'ft_again'}"]), "train")
    loaded = {k: v.numpy() for k, v in engine.model.state_dict().items()}
    source = load_params(init_weights)
    assert loaded["fc.weight"].shape == (256, 4) and loaded["fc.bias"].shape == (4,)
    for key, value in source.items():
        if not key.startswith("fc."):
            np.testing.assert_array_equal(loaded[key], value, err_msg=f"backbone {key} not loaded")


# ---------------------------------------------------------------------------------------------------- freeze_befor
@pytest.mark.slow
def test_freeze_befor_keeps_frozen_layers_fixed(tiny_dataset, tmp_path, init_weights):
    cfg = tiny_train_config(tiny_dataset, tmp_path / "frozen", epochs=2, lr=0.05)
    cfg["Arch"]["freeze_befor"] = "blocks.2"
    cfg["Global"]["pretrained_model"] = str(init_weights)
    proc = run_train(write_config(cfg, tmp_path / "frozen.yaml"))
    assert "frozen" in proc.stdout + proc.stderr  # the engine reports how many parameters are frozen
    before, after = load_params(init_weights), load_params(tmp_path / "frozen" / TINY_ARCH / "latest")

    def is_frozen(key):
        return key.startswith(("conv.", "blocks.0.", "blocks.1.", "blocks.2."))

    weights = [k for k in before if not k.endswith(("_mean", "_variance"))]  # BN running stats still update
    frozen = [k for k in weights if is_frozen(k)]
    trainable = [k for k in weights if not is_frozen(k)]
    assert frozen and trainable
    for key in frozen:
        np.testing.assert_array_equal(after[key], before[key], err_msg=f"frozen {key} moved")
    moved = [k for k in trainable if np.max(np.abs(after[k] - before[k])) > 0]
    assert set(moved) == set(trainable), f"layers after blocks.2 that did not train: {set(trainable) - set(moved)}"


# ---------------------------------------------------------------------------------------------------- AMP on CPU
@pytest.mark.slow
def test_amp_on_cpu_warns_and_trains_in_float32(tiny_dataset, tmp_path, init_weights):
    """Paddle 3.3's autocast does nothing on CPU (conv/matmul stay float32 even with dtype='bfloat16'), so
    the engine switches AMP off with a warning: the run must say so and equal a run without AMP."""
    dirs = {}
    for use_amp in (False, True):
        name = f"amp_{use_amp}"
        cfg = tiny_train_config(tiny_dataset, tmp_path / name, epochs=1)
        cfg["Global"]["pretrained_model"] = str(init_weights)
        cfg["AMP"] = {"use_amp": use_amp, "scale_loss": 128.0, "use_dynamic_loss_scaling": True, "level": "O1"}
        proc = run_train(write_config(cfg, tmp_path / f"{name}.yaml"))
        output = proc.stdout + proc.stderr
        warned = "AMP" in output and "CPU" in output and "float32" in output
        assert warned == use_amp
        dirs[use_amp] = tmp_path / name / TINY_ARCH
    a, b = load_params(dirs[False] / "latest"), load_params(dirs[True] / "latest")
    for key in a:
        assert b[key].dtype == np.float32
        np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-6, err_msg=key)
