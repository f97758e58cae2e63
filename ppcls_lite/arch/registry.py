"""Name -> model-function registry. Each family file decorates its named variants with `@register_model`."""
import difflib

_MODELS = {}


class UnknownModelError(KeyError, ValueError):
    """Arch.name is not registered; catchable as KeyError or ValueError."""

    def __str__(self):  # KeyError would print the message in quotes
        return str(self.args[0])


def register_model(fn):
    if fn.__name__ in _MODELS:
        raise ValueError(f"model name {fn.__name__!r} registered twice")
    _MODELS[fn.__name__] = fn
    return fn


def get_model_fn(name):
    if name not in _MODELS:
        close = difflib.get_close_matches(str(name), list(_MODELS), n=5, cutoff=0.4)
        hint = f"closest: {', '.join(close)}" if close else f"available: {', '.join(_MODELS)}"
        raise UnknownModelError(f"unknown model Arch.name={name!r}; {hint} "
                       f"(python -c 'import ppcls_lite.arch as a; print(a.list_models())' lists all)")
    return _MODELS[name]


def registered_names():
    return list(_MODELS)
