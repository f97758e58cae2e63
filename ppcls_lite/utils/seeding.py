"""Seeding and RNG-state capture so that a resumed run continues exactly like an uninterrupted one.

The snapshot holds only plain Python values (ints, floats, str, tuples, lists), so a `.pdstates` file needs
nothing but what the restricted loader (`ppcls_lite.utils.safe_load`) allows, and plain `paddle.load` reads it
too (PaddleClas resuming our checkpoint): numpy's mt19937 key is a list of ints, not a uint32 array, which
`paddle.load` would try to turn into a tensor and fail. Paddle's generator states are stored as
{"device", "seed", "offset", "engine"} (the engine state is Paddle's own text form of the mt19937 state, kept
as str rather than bytes because `paddle.load` refuses bytes values).
"""
from __future__ import annotations

import random

import numpy as np
import paddle


def seed_everything(seed: int) -> None:
    """Seed python's `random`, numpy's global RNG and paddle's global generator."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    paddle.seed(seed)


def _plain_generator_states(states) -> list:
    plain = []
    for state in states:
        device, seed, offset, engine = state.__getstate__()
        plain.append({"device": int(device), "seed": int(seed), "offset": int(offset),
                      "engine": bytes(engine).decode("ascii")})
    return plain


def _generator_states(plain) -> list:
    """Paddle GeneratorState objects from plain dicts, from old pickled ones (LegacyGeneratorState), or as is."""
    from paddle.base.core import GeneratorState

    from ppcls_lite.utils.safe_load import LegacyGeneratorState

    states = []
    for item in plain:
        if isinstance(item, GeneratorState):
            states.append(item)
            continue
        if isinstance(item, LegacyGeneratorState):
            values = item.values
        else:
            values = (int(item["device"]), int(item["seed"]), int(item["offset"]),
                      list(str(item["engine"]).encode("ascii")))
        state = GeneratorState.__new__(GeneratorState)  # pybind pickling support: no public constructor
        state.__setstate__(tuple(values))
        states.append(state)
    return states


def get_rng_state() -> dict:
    """A plain snapshot of the python, numpy and paddle (CPU, plus CUDA when present) RNG states."""
    kind, key, pos, has_gauss, cached_gaussian = np.random.get_state()
    numpy_state = (kind, [int(v) for v in key], int(pos), int(has_gauss), float(cached_gaussian))
    state = {"python": random.getstate(), "numpy": numpy_state,
             "paddle": _plain_generator_states(paddle.get_rng_state())}
    if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
        state["paddle_cuda"] = _plain_generator_states(paddle.get_cuda_rng_state())
    return state


def set_rng_state(state: dict) -> None:
    """Restore a snapshot taken by `get_rng_state` (missing parts are left as they are)."""
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))  # lists if the snapshot went through JSON/YAML
    if "numpy" in state:
        kind, key, *rest = state["numpy"]  # the key: a list of ints (an array in older checkpoints)
        np.random.set_state((kind, np.asarray(key, dtype=np.uint32), *rest))
    if "paddle" in state:
        paddle.set_rng_state(_generator_states(state["paddle"]))
    if "paddle_cuda" in state and paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
        paddle.set_cuda_rng_state(_generator_states(state["paddle_cuda"]))
