"""Which preprocessing inference (tools/infer.py, export) uses: `Infer.transforms`, or for a config without them
(PaddleClas's retrieval quick start has no Infer section) the eval preprocessing of its Query (else Eval) set."""
from typing import List, Optional, Tuple


def infer_transforms(config: dict) -> Tuple[Optional[List], str]:
    """(the op list, where it comes from): Infer.transforms, else DataLoader.Eval.Query / DataLoader.Eval's
    dataset.transform_ops (deterministic eval ops, so the embedding matches what eval compared); (None, where)
    when there is neither."""
    ops = (config.get("Infer") or {}).get("transforms")
    if ops:
        return ops, "Infer.transforms"
    eval_section = (config.get("DataLoader") or {}).get("Eval") or {}
    for where, section in (("DataLoader.Eval.Query", eval_section.get("Query")), ("DataLoader.Eval", eval_section)):
        ops = ((section or {}).get("dataset") or {}).get("transform_ops")
        if ops:
            return ops, f"{where}.dataset.transform_ops"
    return None, "Infer.transforms"
