"""The predictor's post-processing: a `PostProcess` section -> the pipeline's post-process it names.

The post-processes themselves live in the pipeline (`pipeline/postprocess.py`, registry `POSTPROCESSES`), so
tools/infer.py and the predictor run the same code (`Topk` for a classifier, `Embedding` for a retrieval
model). Three layouts name one:
- ppcls_lite's inference.yml: `{Topk: {topk}, label_list: [...]}` (the class names beside it);
- PaddleClas's `export_for_fd` inference.yml: `{Topk: {topk, label_list}}`;
- PaddleClas's deploy config (-c): `{main_indicator: Topk, Topk: {topk, class_id_map_file}, SavePreLabel: ...}`:
  the main indicator's post-process gives the results. PaddleClas's predict_cls.py passes no file names to the
  others, so SavePreLabel never saves anything there; here the others are not run (a warning names any but
  SavePreLabel).
"""
import logging
from typing import Any, Dict, Optional

from .. import pipeline

POSTPROCESSES = pipeline.POSTPROCESSES
NOT_RUN_QUIETLY = ("SavePreLabel",)  # does nothing in PaddleClas's predict_cls.py either
_logger = logging.getLogger("ppcls_lite.predict")


def build_postprocess(section: Optional[Dict[str, Any]], topk: Optional[int] = None,
                      where: str = "inference.yml PostProcess") -> Any:
    """A `PostProcess` section (any layout above) -> the post-process it names (Topk when it names none);
    `topk` (the --topk setting) replaces the configured count."""
    section = dict(section or {})
    label_list = section.pop("label_list", None)
    main = section.pop("main_indicator", None)
    section = section or {"Topk": {}}
    if main is None and len(section) != 1:
        raise ValueError(f"{where} names {sorted(section)}; name one post-process, or the one that gives the results "
                         f"with main_indicator (valid: {', '.join(POSTPROCESSES.names())})")
    main = main or next(iter(section))
    if main not in section:
        raise ValueError(f"{where}.main_indicator is {main!r}, but the section has no {main} entry (it has "
                         f"{', '.join(sorted(section))})")
    others = [name for name in section if name != main and name not in NOT_RUN_QUIETLY]
    if others:
        _logger.warning(f"{where}: only the main_indicator {main} gives the results; {', '.join(others)} not run")
    params = dict(section[main] or {})
    if topk and "topk" in (POSTPROCESSES.accepted(main, where) or ["topk"]):
        params["topk"] = int(topk)  # an embedding has no classes: --topk does not apply
    if params.get("topk") is None:  # written as null: one class
        params.pop("topk", None)
    if "label_list" not in params:  # every post-process takes the names an export carries
        params["label_list"] = label_list
    return POSTPROCESSES.build(main, params, where)
