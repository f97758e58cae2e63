"""What a model's forward returns, reduced to the one thing most callers need."""
from typing import Any


def logits_of(output: Any) -> Any:
    """The logits tensor of a model output: `output["logits"]` for dict outputs, else the output itself."""
    # Models built with return_patterns return {"logits": ..., "<layer>": ...}.
    return output["logits"] if isinstance(output, dict) else output
