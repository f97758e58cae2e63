"""What a builder package needs to declare its config rules: ConfigError, the value rules and check helpers,
number normalisation, the rank-0 warning, and the declaration objects `SectionRules` / `NameCheck`.

Each builder package (arch, data, loss, metric, optimizer) declares its section's rules once, as a module-level
`CONFIG_RULES = SectionRules(...)` in its `__init__`; `ppcls_lite.config` imports those packages itself and reads
the declarations, so every check is in place whatever was imported before. Nothing here registers anything.

Paths in messages are written as `-o` takes them (`Optimizer.lr.eta_min`, `Loss.Train.0.CELoss.epsilon`).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ppcls_lite.utils import logger
from ppcls_lite.utils.registry import Registry, parse_named_list


class ConfigError(ValueError):
    """A config file or override is invalid; the message says which key and what is valid."""


# A free-form value in a schema: any structure below it (constructor kwargs checked by the builder that takes
# them); `-o` may add a new final key to its mappings.
ANY = None

# ---------------------------------------------------------------------------------------------------------
# Value rules: (test on a real number, text of the valid range).
Rule = Tuple[Callable[[Any], bool], str]

POSITIVE: Rule = (lambda v: v > 0, "> 0")
NON_NEGATIVE: Rule = (lambda v: v >= 0, ">= 0")
FRACTION: Rule = (lambda v: 0 <= v < 1, "in [0, 1)")
PROBABILITY: Rule = (lambda v: 0 <= v <= 1, "in [0, 1]")
COUNT: Rule = (lambda v: v >= 1, "a whole number >= 1")
NON_NEGATIVE_COUNT: Rule = (lambda v: v >= 0, "a whole number >= 0")
# The largest image side a transform may produce or a model may take: 16384 px (the limit of most GPU texture
# and phone runtimes; a 16384 x 16384 float32 RGB image is already 3 GiB).
MAX_IMAGE_SIDE = 16384
SIZE: Rule = (lambda v: 1 <= v <= MAX_IMAGE_SIDE,
              f"a whole number from 1 to {MAX_IMAGE_SIDE} (pixels), or a list [width, height] of them")
_WHOLE_NUMBER_RULES = (COUNT, NON_NEGATIVE_COUNT, SIZE)

_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_INT_RE = re.compile(r"^[+-]?\d+$")


def is_real(value: Any) -> bool:
    """True for a finite int or float (bool excluded)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def looks_like_number(value: Any) -> bool:
    """True for a string such as '1e-5' or '3' (YAML 1.1 reads `1e-5`, without a dot, as a string)."""
    return isinstance(value, str) and bool(_NUMBER_RE.match(value.strip()))


def to_number(value: Any) -> Any:
    """A number-looking string ('1e-5', '3') as an int or float; any other value unchanged."""
    if looks_like_number(value):
        text = value.strip()
        return int(text) if _INT_RE.match(text) else float(text)
    return value


def normalize_numbers(value: Any) -> Any:
    """Recursively turn number-looking strings ('1e-5', '0.1') into numbers."""
    if isinstance(value, dict):
        return {k: normalize_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize_numbers(v) for v in value]
    return to_number(value)


def check_value(problems: List[str], path: str, value: Any, rule: Rule) -> None:
    """Append the message naming the key, the value and the valid range when `value` breaks `rule`."""
    test, valid = rule
    number = to_number(value)
    whole = rule in _WHOLE_NUMBER_RULES
    if not (is_real(number) and (not whole or isinstance(number, int)) and test(number)):
        problems.append(f"{path} must be {valid}, got {value!r}")


def check_keys_of(problems: List[str], section: Any, rules: Dict[str, Rule], where: str) -> None:
    """Check every key of `rules` that `section` (a mapping, or anything else: skipped) sets."""
    if isinstance(section, dict):
        for key, rule in rules.items():
            if section.get(key) is not None:
                check_value(problems, f"{where}.{key}", section[key], rule)


def check_each(problems: List[str], values: Any, rule: Rule, where: str) -> None:
    """A list (each item, paths `where.0`, `where.1`, ...) or a single value."""
    if isinstance(values, (list, tuple)):
        for i, value in enumerate(values):
            check_value(problems, f"{where}.{i}", value, rule)
    elif values is not None:
        check_value(problems, where, values, rule)


def check_size(problems: List[str], value: Any, where: str) -> None:
    """An image size: a whole number of pixels within SIZE or a [width, height] pair of them."""
    if isinstance(value, (list, tuple)) and len(value) != 2:
        problems.append(f"{where} must be {SIZE[1]}, got {value!r}")
    else:
        check_each(problems, value, SIZE, where)


def iter_named_list(items: Any, where: str) -> Iterator[tuple]:
    """PaddleClas named lists (`[{CELoss: {weight: 1.0}}, ...]`, op lists) -> (index, name, params); ConfigError
    for a malformed item."""
    return parse_named_list(items, where, error=ConfigError)


def warn(message: str) -> None:
    """A config warning through the project logger. Every data-parallel rank reads the same config, so only
    rank 0 prints it (once per run)."""
    if int(os.environ.get("PADDLE_TRAINER_ID", "0") or 0) != 0:
        return
    logger.warning(message)


# ---------------------------------------------------------------------------------------------------------
# Declarations


@dataclass(frozen=True)
class NameCheck:
    """A name a builder registry must know, at a dotted key path (`*` matches every key at that level)."""

    path: str
    registry: Registry
    named_list: bool = False             # the value is a named list: check each item's name
    also_accepted: Tuple[str, ...] = ()  # older names the builder handles itself
    required: bool = False               # the mapping that holds the last key must have it (Arch.name)
    # For a named list: `check_item(problems, name, params, where)` appends a message per out-of-range
    # parameter of one item (`where` is `<list path>.<index>.<name>`).
    check_item: Optional[Callable[[List[str], str, dict, str], None]] = None


@dataclass(frozen=True)
class SectionRules:
    """Everything a builder package tells the config checks, declared once as `CONFIG_RULES` in its __init__.

    `schema()` gives {section: its closed keys} (a nested dict of key -> ANY or a sub-level), called when a
    config is checked so that names registered later count; `names` are the name checks; `check_values(config,
    problems)` appends one message per out-of-range value of the section outside the named lists.
    """

    schema: Callable[[], Dict[str, Any]] = dict
    names: Tuple[NameCheck, ...] = ()
    check_values: Optional[Callable[[dict, List[str]], None]] = None
