"""One registry idiom for every builder: name -> constructor, PaddleClas named lists, kwargs checked by signature.

    LOSSES = Registry("loss")

    @LOSSES.register()
    class CELoss: ...

    LOSSES.build("CELoss", {"epsilon": 0.1}, where="Loss.Train.0")   # unknown name/kwarg -> clear error
    for index, name, params in parse_named_list(config["Loss"]["Train"], "Loss.Train"): ...

Standard library only: this file ships inside the pipeline package that export folders carry, so the
standalone predictor uses the same class (ppcls_lite.utils.registry re-exports it for the other layers).
"""
from __future__ import annotations

import difflib
import functools
import inspect
from typing import Any, Callable, Iterable, Iterator, Optional


def did_you_mean(name: Any, candidates: Iterable) -> str:
    """` Did you mean 'X'?` for the closest candidate, or '' (the hint of every "unknown name" error)."""
    match = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" Did you mean '{match[0]}'?" if match else ""


class UnknownNameError(KeyError, ValueError):
    """A name that is not registered; catchable as KeyError or ValueError."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


def parse_named_list(items: Any, where: str, error: type = ValueError,
                     bare_names: bool = False) -> Iterator[tuple]:
    """PaddleClas lists of one-key mappings (`- CELoss: {weight: 1.0}`, op lists) -> (index, name, params).

    Each item is a mapping {Name: {params} | null} (with `bare_names`, also a plain `Name` string); params come
    back as a new dict (empty for null). Malformed items raise `error` naming the list path and the index.
    """
    if not isinstance(items, (list, tuple)):
        raise error(f"'{where}' must be a list like [{{Name: {{param: value}}}}], got {items!r}")
    for i, item in enumerate(items):
        if bare_names and isinstance(item, str):  # `- ToCHWImage` written without a colon
            item = {item: None}
        if not (isinstance(item, dict) and len(item) == 1):
            raise error(f"'{where}.{i}' must be a one-key mapping like {{CELoss: {{weight: 1.0}}}}, got {item!r}")
        name, params = next(iter(item.items()))
        if params is not None and not isinstance(params, dict):
            raise error(f"'{where}.{i}.{name}' must hold a mapping of parameters, got {params!r}")
        yield i, name, dict(params or {})


def accepted_kwargs(fn: Callable, fixed: Iterable[str] = ()) -> Optional[list]:
    """Keyword names `fn` takes (minus `fixed` ones the registry supplies); None when it takes **kwargs."""
    parameters = inspect.signature(fn).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    fixed = set(fixed)
    return [p.name for p in parameters
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            and p.name not in fixed]


def check_keys(keys: Iterable, valid: Iterable, where: str, error: type = ValueError) -> None:
    """Raise `error` naming the unknown keys of `keys`, every valid key and the closest match."""
    valid = list(valid)
    unknown = [k for k in keys if k not in valid]
    if unknown:
        raise error(f"unknown key(s) {unknown} in {where}. Valid keys: {', '.join(map(str, valid))}."
                    f"{did_you_mean(unknown[0], valid)}")


class Registry:
    """Named constructors of one kind (models, ops, losses, ...): register, look up, check kwargs, build, list.

    `kind` names the thing in messages ("loss" -> "unknown loss 'X' in Loss.Train. Valid losses: ...").
    An entry may carry fixed kwargs (a model variant = its family class + width), and aliases (older names).
    A registry with a `parent` holds the parent's names too (training ops = the inference ops + random ones).
    """

    def __init__(self, kind: str, plural: Optional[str] = None, parent: Optional["Registry"] = None):
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.parent = parent
        self._entries: dict = {}   # name -> (constructor, fixed kwargs)
        self._aliases: dict = {}   # older name -> current name

    # -- registering ---------------------------------------------------------------------------------------
    def register(self, name: Optional[str] = None, **fixed: Any) -> Callable:
        """Decorator: `@REG.register()` registers under the object's own name, `@REG.register("Name")` renames."""
        def decorate(obj: Callable) -> Callable:
            self.add(name or obj.__name__, obj, **fixed)
            return obj
        return decorate

    def add(self, name: str, obj: Callable, **fixed: Any) -> None:
        """Register `obj` under `name`; building calls `obj(**fixed, **params)`."""
        if name in self:
            raise ValueError(f"{self.kind} name {name!r} registered twice")
        self._entries[name] = (obj, dict(fixed))

    def add_alias(self, alias: str, name: str) -> None:
        """Accept `alias` (e.g. an older PaddleClas name) for the registered `name`."""
        if name not in self._entries:
            raise ValueError(f"alias {alias!r} points at {name!r}, which is not a registered {self.kind}")
        if alias in self:
            raise ValueError(f"{self.kind} name {alias!r} registered twice")
        self._aliases[alias] = name

    # -- looking up ----------------------------------------------------------------------------------------
    def names(self) -> list:
        """Registered names in registration order, the parent's first (aliases not included)."""
        return (self.parent.names() if self.parent else []) + list(self._entries)

    def aliases(self) -> dict:
        """{older name: registered name}, the parent's included."""
        return {**(self.parent.aliases() if self.parent else {}), **self._aliases}

    def __contains__(self, name: Any) -> bool:
        return self._find(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def _find(self, name: Any) -> Optional[tuple]:
        """(registered name, (constructor, fixed kwargs)) or None."""
        if not isinstance(name, str):
            return None
        name = self._aliases.get(name, name)
        if name in self._entries:
            return name, self._entries[name]
        return self.parent._find(name) if self.parent else None

    def canonical(self, name: Any, where: str = "") -> str:
        """The registered name for `name` (aliases resolved); unknown -> UnknownNameError with the valid names."""
        return self._found(name, where)[0]

    def _found(self, name: Any, where: str) -> tuple:
        found = self._find(name)
        if found is None:
            place = f" in {where}" if where else ""
            names = self.names()
            raise UnknownNameError(f"unknown {self.kind} '{name}'{place}. Valid {self.plural}: {', '.join(names)}."
                                   f"{did_you_mean(name, names + list(self.aliases()))}")
        return found

    def get(self, name: Any, where: str = "") -> Callable:
        """The constructor of `name` with its fixed kwargs bound (a plain callable)."""
        obj, fixed = self.entry(name, where)
        return functools.partial(obj, **fixed) if fixed else obj

    def entry(self, name: Any, where: str = "") -> tuple:
        """(constructor, fixed kwargs) of `name`."""
        return self._found(name, where)[1]

    def accepted(self, name: Any, where: str = "", injected: Iterable[str] = ()) -> Optional[list]:
        """The kwargs a config may give `name` (its signature minus fixed and `injected` ones); None = any."""
        obj, fixed = self.entry(name, where)
        return accepted_kwargs(obj, [*fixed, *injected])

    def all_accepted(self, common: Iterable[str] = (), injected: Iterable[str] = ()) -> list:
        """`common`, then every kwarg any entry accepts, each once (a section's key schema); **kwargs entries add none."""
        keys = list(common)
        for name in self:
            keys += [k for k in self.accepted(name, injected=injected) or [] if k not in keys]
        return keys

    def check_params(self, name: Any, params: dict, where: str, injected: Iterable[str] = (),
                     extra: Iterable[str] = (), error: type = ValueError) -> None:
        """Raise `error` for a key of `params` that is neither a kwarg of `name` nor one of `extra`."""
        valid = self.accepted(name, where, injected)
        if valid is not None:
            check_keys(params, [*extra, *valid], where, error)

    # -- building ------------------------------------------------------------------------------------------
    def build(self, name: Any, params: Optional[dict] = None, where: str = "", /, **injected: Any) -> Any:
        """Check `params` against the constructor of `name`, then construct it with `injected` kwargs added."""
        params = dict(params or {})
        self.check_params(name, params, where, injected)
        try:
            return self.get(name, where)(**params, **injected)
        except TypeError as exc:  # e.g. a required parameter missing
            place = f" ({where})" if where else ""
            raise ValueError(f"bad parameters for {self.kind} {name}{place}: {exc}") from None

    def build_list(self, items: Any, where: str, /, bare_names: bool = False, **injected: Any) -> list:
        """A PaddleClas named list -> the objects it names, in order."""
        built = []
        for i, name, params in parse_named_list(items, where, bare_names=bare_names):
            self.canonical(name, f"{where}.{i}")
            built.append(self.build(name, params, f"{where}.{i}.{name}", **injected))
        return built

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
