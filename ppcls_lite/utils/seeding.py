"""Seeding and RNG-state capture so that a resumed run continues exactly like an uninterrupted one."""
import random

import numpy as np
import paddle


def seed_everything(seed):
    """Seed python's `random`, numpy's global RNG and paddle's global generator."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    paddle.seed(seed)


def get_rng_state():
    """A picklable snapshot of the python, numpy and paddle (CPU, plus CUDA when present) RNG states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "paddle": paddle.get_rng_state()}
    if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
        state["paddle_cuda"] = paddle.get_cuda_rng_state()
    return state


def set_rng_state(state):
    """Restore a snapshot taken by `get_rng_state` (missing parts are left as they are)."""
    if "python" in state:
        random.setstate(state["python"])
    if "numpy" in state:
        np.random.set_state(state["numpy"])
    if "paddle" in state:
        paddle.set_rng_state(state["paddle"])
    if "paddle_cuda" in state and paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
        paddle.set_cuda_rng_state(state["paddle_cuda"])
