"""The model registry: each family file registers its PaddleClas-named variants from one table."""
from typing import Callable

from ppcls_lite.utils.registry import Registry, UnknownNameError

MODELS = Registry("model")
UnknownModelError = UnknownNameError  # Arch.name is not registered; catchable as KeyError or ValueError
# Registered names that wrap other models (DistillationModel): valid as Arch.name, but not models of their own.
WRAPPERS: list = []


def register_variants(family: Callable, variants: dict) -> None:
    """Register every `name: {fixed kwargs}` of `variants` as a model built by `family(**fixed, **Arch kwargs)`."""
    for name, fixed in variants.items():
        MODELS.add(name, family, **fixed)


def register_wrapper(name: str, wrapper: Callable) -> None:
    """Register `wrapper` (built from other models' configs) as Arch.name `name`, left out of registered_names()."""
    MODELS.add(name, wrapper)
    WRAPPERS.append(name)


def register_alias(alias: str, name: str) -> None:
    """Accept `alias` (an older PaddleClas name) for the registered model `name`."""
    MODELS.add_alias(alias, name)


def get_model_fn(name: str) -> Callable:
    """The constructor of model `name` (its width and mode bound); unknown -> UnknownModelError with the names."""
    return MODELS.get(name, "Arch.name")


def registered_names() -> list:
    """Every registered model name, family by family (wrappers such as DistillationModel left out)."""
    return [name for name in MODELS.names() if name not in WRAPPERS]
