"""Reading what a run wrote (weights, states, metrics) and watching what it does (the LR per step)."""
import csv
from pathlib import Path

import numpy as np


def load_params(prefix):
    """A checkpoint's weights as {name: numpy array}; `prefix` without extension."""
    import paddle

    state = paddle.load(str(prefix) + ".pdparams")
    return {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v) for k, v in state.items()}


def load_states(prefix):
    """A checkpoint's .pdstates (epoch, RNG, EMA, ...); `prefix` without extension."""
    import paddle

    # return_numpy: the numpy RNG state (uint32 array) cannot become a paddle tensor
    return paddle.load(str(prefix) + ".pdstates", return_numpy=True)


def read_metrics(run_dir):
    """The rows of run_dir/metrics.csv as dicts."""
    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def uint8_crops(predictor, files):
    """What a phone app feeds a uint8-input model: each file through the export's ops before NormalizeImage
    (decode, resize, crop), stacked as uint8 NHWC. `predictor` is a ppcls_lite.predict.Predictor of the export."""
    from ppcls_lite.pipeline import transform
    from ppcls_lite.predict import build_preprocess

    before_normalize = build_preprocess(predictor.config["PreProcess"]["transform_ops"][:3])
    return np.stack([transform(Path(f).read_bytes(), before_normalize) for f in files])


def record_lr(engine):
    """A list that receives (global step, LR) for every optimizer step the engine takes from now on: the LR the
    real optimizer applies, read just before each step."""
    trace = []
    optimizer = engine.optimizer
    step = optimizer.step

    def recording_step():
        trace.append((engine.global_step + 1, float(optimizer.get_lr())))
        step()

    optimizer.step = recording_step
    return trace
