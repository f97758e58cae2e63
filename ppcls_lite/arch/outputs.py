"""What a model's forward returns, reduced to the one thing most callers need."""
import functools
from typing import Any


class DistillationOutput(dict):
    """A DistillationModel's output: {sub-model name: its output}, knowing which sub-model is deployed.

    Distillation losses and metrics pick sub-models by name; everything else (a plain CELoss or TopkAcc, the
    confusion matrix, inference) reads `logits_of(output)`: the deployed (`infer_model_name`) sub-model's logits.
    Build one with `distillation_output_type(name)(outputs)`: the name is a class attribute so that it survives
    paddle.jit.to_static, which rebuilds dict outputs as `type(output)(items)`.
    """

    infer_model_name = None


@functools.lru_cache(maxsize=None)
def distillation_output_type(infer_model_name: str) -> type:
    """The DistillationOutput class whose outputs deploy sub-model `infer_model_name`."""
    return type(f"DistillationOutput_{infer_model_name}", (DistillationOutput,),
                {"infer_model_name": infer_model_name})


def logits_of(output: Any) -> Any:
    """The logits tensor of a model output: `output["logits"]` for dict outputs, the deployed sub-model's logits
    for a DistillationOutput, else the output itself."""
    if isinstance(output, DistillationOutput):
        output = output[output.infer_model_name]
    # Models built with return_patterns return {"logits": ..., "<layer>": ...}.
    return output["logits"] if isinstance(output, dict) else output
