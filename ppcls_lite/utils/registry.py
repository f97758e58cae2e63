"""The project's Registry for every layer above the pipeline (the class lives in ppcls_lite/pipeline/registry.py
so that the export-folder predictor, which carries only the pipeline package, uses the same one)."""
from ppcls_lite.pipeline.registry import (Registry, UnknownNameError, accepted_kwargs, check_keys, did_you_mean,
                                          parse_named_list)

__all__ = ["Registry", "UnknownNameError", "accepted_kwargs", "check_keys", "did_you_mean", "parse_named_list"]
