"""Resume vs extend: compare a checkpoint's training plan with the current config and move the LR schedule.

`.pdstates` records the plan (Global.epochs, steps per epoch, the Optimizer section). Unchanged → the saved LR
schedule is kept as restored (bit-exact resume). Changed → the schedule built from the current config is moved to
the saved position (warm-up not repeated, a cosine continues on the new, longer curve), one log line per change;
a next step at LR 0 is an error before anything is trained or written.
"""
from typing import Any, List, Optional, Tuple

from ppcls_lite.utils import logger


def flatten_config(prefix: str, value: Any) -> dict:
    """{"Optimizer.lr.learning_rate": 0.1, ...} from a nested section (lists stay whole values)."""
    if not isinstance(value, dict):
        return {prefix: value}
    out = {}
    for key, item in value.items():
        out.update(flatten_config(f"{prefix}.{key}", item))
    return out


def plan_changes(states: dict, epochs: int, steps_per_epoch: Optional[int],
                 optimizer_config: Optional[dict]) -> List[Tuple[str, Any, Any]]:
    """[(key, old, new)] of what differs between the checkpoint's training plan (.pdstates "epochs",
    "steps_per_epoch", "optimizer") and the current one; parts a checkpoint does not record (PaddleClas's
    own, or older ones) are not compared."""
    changes = []
    if states.get("epochs") not in (None, epochs):
        changes.append(("Global.epochs", states["epochs"], epochs))
    if states.get("steps_per_epoch") not in (None, steps_per_epoch):
        changes.append(("Train steps per epoch (batch size or train list changed)", states["steps_per_epoch"],
                        steps_per_epoch))
    if states.get("optimizer") is not None and optimizer_config is not None:
        old = flatten_config("Optimizer", states["optimizer"])
        new = flatten_config("Optimizer", optimizer_config)
        for key in sorted(set(old) | set(new)):
            if old.get(key, "(not set)") != new.get(key, "(not set)"):
                changes.append((key, old.get(key, "(not set)"), new.get(key, "(not set)")))
    return changes


def continue_lr_plan(sched: Any, states: dict, *, checkpoint: str, epochs: int, steps_per_epoch: int,
                     optimizer_config: Optional[dict], global_step: int) -> None:
    """After a resume: keep the restored LR schedule when the plan is unchanged (exact resume); otherwise
    re-plan it, log each change, and refuse to train when the next step's LR is 0.

    The scheduler built from the current config is the new plan (new Global.epochs / Optimizer.lr);
    re-planning moves it to the saved position (epochs done x steps per epoch, the saved global step; epochs
    done for `by_epoch`) with paddle's `step(epoch=position)`, which uses the closed form, and inside
    LinearWarmup moves the inner schedule to position - warm-up steps: warm-up already done is not
    repeated and a cosine continues on the curve of the new length. Other Optimizer values (momentum,
    weight decay, ...) need nothing: the optimizer was built from the current config.
    """
    if sched is None:
        return
    changes = plan_changes(states, epochs, steps_per_epoch, optimizer_config)
    if states.get("optimizer") is None:
        logger.warning(f"{checkpoint}.pdstates does not record the Optimizer section it was "
                       f"trained with (PaddleClas's or an older checkpoint), so a changed Optimizer.lr value "
                       f"cannot be detected: the LR schedule is re-planned only when Global.epochs or the steps "
                       f"per epoch changed, else restored as saved; momentum and weight decay come from this "
                       f"config")
    old_lr = float(sched())  # the restored schedule's LR for the next step
    done = int(states["epoch"])
    by_epoch = bool(getattr(sched, "by_epoch", False))
    if "global_step" not in states and not by_epoch and int(sched.last_epoch) != global_step:
        logger.warning(f"{checkpoint}: its LR schedule stopped at step {sched.last_epoch}, but {done} epochs of "
                       f"{steps_per_epoch} steps make {global_step}: it was trained with another batch size or "
                       f"train list. The schedule continues from its own position (step {sched.last_epoch})")
    replan = any(key.startswith(("Global.epochs", "Train steps", "Optimizer.lr")) for key, _, _ in changes)
    if replan:
        sched.step(epoch=done if by_epoch else done * steps_per_epoch)
    new_lr = float(sched())
    for key, old, new in changes:
        logger.info(f"resume: {key} {old} -> {new}; LR at the next step (global step {global_step + 1}): "
                    f"old plan {old_lr:.6g}, new plan {new_lr:.6g}"
                    + ("" if replan else " (the LR schedule is unchanged)"))
    if done + 1 > epochs:
        return  # nothing to train; the loop says so
    if new_lr <= 0:  # a finished cosine (restored as it is, or its plan changed to end here), a last value 0
        why = ("the LR plan, re-planned for the changes above," if replan else
               "the restored LR schedule (its plan is not changed" + ("" if states.get("epochs") is not None else
               ", or the checkpoint does not record it") + ")")
        raise ValueError(
            f"resuming {checkpoint} would train epoch {done + 1} at learning rate 0: "
            f"{why} gives LR {new_lr:g} at the next step (global step {global_step + 1}). Nothing was "
            f"trained or written. Give the coming epochs a rate: raise Global.epochs (a cosine then continues on "
            f"the longer curve) or change Optimizer.lr (learning_rate, values, eta_min); or start a new schedule "
            f"from these weights with -o Global.pretrained_model={checkpoint} and another "
            f"Global.output_dir.")
