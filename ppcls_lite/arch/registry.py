"""The model registry: each family file registers its PaddleClas-named variants from one table."""
from typing import Callable

from ppcls_lite.utils.registry import Registry, UnknownNameError

MODELS = Registry("model")
UnknownModelError = UnknownNameError  # Arch.name is not registered; catchable as KeyError or ValueError


def register_variants(family: Callable, variants: dict) -> None:
    """Register every `name: {fixed kwargs}` of `variants` as a model built by `family(**fixed, **Arch kwargs)`."""
    for name, fixed in variants.items():
        MODELS.add(name, family, **fixed)


def register_alias(alias: str, name: str) -> None:
    """Accept `alias` (an older PaddleClas name) for the registered model `name`."""
    MODELS.add_alias(alias, name)


def get_model_fn(name: str) -> Callable:
    """The constructor of model `name` (its width and mode bound); unknown -> UnknownModelError with the names."""
    return MODELS.get(name, "Arch.name")


def registered_names() -> list:
    """Every registered model name, family by family."""
    return MODELS.names()
