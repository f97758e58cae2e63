"""TheseusLayer: the base class of every model, adding PaddleClas's model-surgery helpers.

Layer names are the dotted sublayer names of `model.named_sublayers()` (`conv`, `blocks.3`,
`blocks.3.expand_conv.act`). PaddleClas's bracket spelling (`blocks[3]`) is accepted too.

- `return_patterns`: the forward returns `{"<pattern>": output of that layer, ..., "logits": output}`.
- `return_stages`: the same for the family's stage outputs (`True` = all stages, or a list of stage indices).
- `stop_after(name)`: every layer that runs after `name` becomes `nn.Identity`; the model outputs that layer's output.
- `freeze_befor(name)`: parameters of all layers up to and including `name` get `stop_gradient=True`.
- `upgrade_sublayer(pattern, fn)`: each sublayer whose name matches `pattern` (glob, e.g. `blocks.*.expand_conv.act`)
  is replaced by `fn(layer, pattern)`.

The surgery assumes that sublayers run in the order they were registered, which holds for every model here.
Cutting *inside* a residual block (e.g. `blocks.3.expand_conv`) keeps that block's shortcut addition.
"""
from __future__ import annotations

import difflib
import fnmatch
import functools
import re
from typing import Callable, Optional, Sequence, Union

from paddle import nn


def normalize_layer_name(name: str) -> str:
    """`blocks[3].conv` -> `blocks.3.conv` (PaddleClas writes indices in brackets)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a layer name must be a non-empty string like 'blocks.3', got {name!r}")
    return re.sub(r"\[(\d+)\]", r".\1", name).strip(".")


class TheseusLayer(nn.Layer):
    """Base class of all models. Subclasses build their layers, then call `self.init_theseus(...)`."""

    def __init__(self):
        super().__init__()
        self.stages_pattern = []
        self._intermediate = {}
        self._pattern_hooks = []
        self._dict_hook = None

    def init_theseus(self, stages_pattern: Sequence[str], return_patterns: Union[str, Sequence[str], None] = None,
                     return_stages: Union[bool, int, Sequence[int], None] = None, stop_after: Optional[str] = None,
                     freeze_befor: Optional[str] = None) -> None:
        """Apply the Arch-config surgery options; called at the end of each model's `__init__`."""
        self.stages_pattern = list(stages_pattern)
        patterns = [return_patterns] if isinstance(return_patterns, str) else list(return_patterns or [])
        if return_stages is not None and return_stages is not False:
            patterns += self._stage_names(return_stages)
        if patterns:
            self.update_res(patterns)
        if stop_after is not None:
            self.stop_after(stop_after)
        if freeze_befor is not None:
            self.freeze_befor(freeze_befor)

    # ---- lookup -------------------------------------------------------------------------------------------
    def _stage_names(self, return_stages):
        if return_stages is True:
            return list(self.stages_pattern)
        indices = [return_stages] if isinstance(return_stages, int) else list(return_stages)
        names = []
        for i in indices:
            if not isinstance(i, int) or not -len(self.stages_pattern) <= i < len(self.stages_pattern):
                raise ValueError(f"return_stages: {i!r} is not a stage index of {type(self).__name__}; "
                                 f"valid: 0..{len(self.stages_pattern) - 1} = {self.stages_pattern} (or True for all)")
            names.append(self.stages_pattern[i])
        return names

    def _find_layer(self, name):
        """Return (parent layer, key in parent, layer) for a dotted name, or raise listing close names."""
        parts = normalize_layer_name(name).split(".")
        parent, layer = None, self
        for key in parts:
            children = layer._sub_layers
            if key not in children:
                all_names = [n for n, _ in self.named_sublayers()]
                close = difflib.get_close_matches(normalize_layer_name(name), all_names, n=5, cutoff=0.5)
                raise ValueError(f"{type(self).__name__} has no layer named {name!r}; closest: "
                                 f"{close or all_names[:8]} (all names: [n for n, _ in model.named_sublayers()])")
            parent, layer = layer, children[key]
        return parent, parts[-1], layer

    # ---- return_patterns ----------------------------------------------------------------------------------
    def update_res(self, return_patterns: Union[str, Sequence[str]]) -> list[str]:
        """Make forward return a dict of the named layers' outputs plus `logits`. Returns the pattern list."""
        for handle in self._pattern_hooks:
            handle.remove()
        self._pattern_hooks = []
        if self._dict_hook is not None:
            self._dict_hook.remove()
            self._dict_hook = None
        if isinstance(return_patterns, str):
            return_patterns = [return_patterns]
        for pattern in return_patterns:
            _, _, layer = self._find_layer(pattern)
            # a partial of a bound method (not a closure), so copy.deepcopy(model) (e.g. for EMA) hooks the copy
            self._pattern_hooks.append(layer.register_forward_post_hook(functools.partial(self._save_output, pattern)))
        if return_patterns:
            self._dict_hook = self.register_forward_post_hook(self._return_dict_hook)
        return list(return_patterns)

    def _save_output(self, key, layer, inputs, output):
        self._intermediate[key] = output

    def _return_dict_hook(self, layer, inputs, output):
        result = dict(self._intermediate)
        result["logits"] = output
        self._intermediate.clear()  # don't keep tensors (and their graphs) alive between calls
        return result

    # ---- stop_after ---------------------------------------------------------------------------------------
    def stop_after(self, stop_layer_name: str) -> bool:
        """Replace every layer that runs after `stop_layer_name` by nn.Identity (at each level of its path)."""
        self._find_layer(stop_layer_name)  # validate first, so a typo changes nothing
        layer = self
        for key in normalize_layer_name(stop_layer_name).split("."):
            children = layer._sub_layers
            keys = list(children)
            for later in keys[keys.index(key) + 1:]:
                children[later] = nn.Identity()
            layer = children[key]
        return True

    # ---- freeze_befor -------------------------------------------------------------------------------------
    def freeze_befor(self, layer_name: str) -> list[str]:
        """Set stop_gradient on the parameters of all layers up to and including `layer_name`.

        Returns the names of the frozen parameters.
        """
        self._find_layer(layer_name)
        target = normalize_layer_name(layer_name)
        frozen = []
        passed_target = False
        for name, sublayer in self.named_sublayers():  # pre-order = registration order
            inside_target = name == target or name.startswith(target + ".")
            if passed_target and not inside_target:
                break
            passed_target = passed_target or inside_target
            for pname, param in sublayer.named_parameters(include_sublayers=False):
                param.stop_gradient = True
                frozen.append(f"{name}.{pname}")
        return frozen

    # ---- upgrade_sublayer ---------------------------------------------------------------------------------
    def upgrade_sublayer(self, layer_name_pattern: Union[str, Sequence[str]],
                         handle_func: Callable[[nn.Layer, str], nn.Layer]) -> list[str]:
        """Replace each sublayer whose dotted name matches the pattern(s) by `handle_func(layer, pattern)`.

        Patterns are exact names or globs (`blocks.*.act`). Returns the replaced names; a pattern that matches
        nothing is an error (it is almost always a typo).
        """
        patterns = [layer_name_pattern] if isinstance(layer_name_pattern, str) else list(layer_name_pattern)
        replaced = []
        for pattern in patterns:
            glob = normalize_layer_name(pattern)
            names = [n for n, _ in self.named_sublayers()]
            matched = [n for n in names if fnmatch.fnmatchcase(n, glob)]
            if not matched:
                close = difflib.get_close_matches(glob, names, n=5, cutoff=0.5)
                raise ValueError(f"upgrade_sublayer: no layer of {type(self).__name__} matches {pattern!r}; "
                                 f"closest: {close or names[:8]}")
            for name in matched:
                if any(name.startswith(done + ".") for done in replaced):
                    continue  # its parent was already replaced
                parent, key, layer = self._find_layer(name)
                new_layer = handle_func(layer, pattern)
                if not isinstance(new_layer, nn.Layer):
                    raise ValueError(f"upgrade_sublayer: handle_func must return a paddle.nn.Layer for {name!r}, "
                                     f"got {type(new_layer).__name__}")
                parent._sub_layers[key] = new_layer
                replaced.append(name)
        return replaced
