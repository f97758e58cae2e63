"""Checkpoint trio: `<prefix>.pdparams`, `<prefix>.pdopt`, `<prefix>.pdstates`.

- `.pdparams`: the model state dict, PaddleClas parameter names (loads in PaddleClas and via
  `Global.pretrained_model`).
- `.pdopt`: the optimizer state dict (accumulators and, as paddle stores it, "LR_Scheduler"), its accumulators
  keyed by the parameter names PaddleClas's own model has (so PaddleClas resumes it; see optimizer_state.py),
  plus "lr_scheduler" (the scheduler's own state dict), "param_names" ({structured name: the name used},
  to re-key the accumulators in this process) and "amp_scaler" (GradScaler state) when AMP is on.
- `.pdstates`: {"epoch", "global_step", "best_metric", "best_epoch", "rng" (python/numpy/paddle states as plain
  Python values),
  "ema" (EMA weights or None), "config_digest" (sha256 of the model-defining config: the Arch section and
  class_num), "format_version"} and the LR plan the run was following: "epochs" (Global.epochs),
  "steps_per_epoch" and "optimizer" (the Optimizer section, numbers normalised). A resume compares the plan
  with the current config to tell an exact resume from an extended or changed one.

Crash safety: the three files are first written completely to temporary names in the same directory
(fsync'ed), then `os.replace`d into place in the order `.pdparams`, `.pdopt`, `.pdstates`, and the directory
is fsync'ed. `.pdstates` also records the sha256 of the `.pdparams` and `.pdopt` it belongs to
("file_sha256"), so a trio torn by a crash between two renames (new weights, old states) is detected on load
(`CheckpointError`), and `newest_valid_checkpoint` (used by `--resume auto`) falls back to the newest
consistent checkpoint, e.g. `epoch_N` when `latest` was being overwritten. A kill at any other moment leaves
the previous files untouched (plus stray `.<name>.*.tmp` files, removed by `remove_stale_temp_files`).
Callers make sure only rank 0 saves.

Every file is written in paddle.save's format with arrays every numpy version reads (utils/portable_save.py), so
PaddleClas's plain `paddle.load` reads all three under its numpy 1.x. PaddleClas's own checkpoints (a list in
`.pdopt`, no global step or RNG in `.pdstates`: {"metric", "epoch"}) resume here too.
"""
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from ppcls_lite.engine.atomic_files import atomic_save, fsync_dir, remove_quietly, write_temp  # noqa: F401 (atomic_save: part of this API)
from ppcls_lite.engine.optimizer_state import (OptimizerStateError, restore_optimizer_state, saved_optimizer_state,
                                               unwrap_optimizer_state)
from ppcls_lite.utils import logger
from ppcls_lite.utils.download import file_sha256
from ppcls_lite.utils.seeding import get_rng_state, set_rng_state

FORMAT_VERSION = 1
SUFFIXES = (".pdparams", ".pdopt", ".pdstates")
PADDLECLAS_EMA_SUFFIX = ".pdema"  # PaddleClas's fourth file of a checkpoint with EMA (the non-averaged weights)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (missing, incomplete, corrupt or from another model)."""


def config_digest(arch_config: dict, class_num: Optional[int] = None) -> str:
    """sha256 of the model-defining config (the Arch section + class_num); weights only fit the same digest.

    `pretrained` and `freeze_befor` are left out: where the initial weights came from and which of them are
    trained do not change the model's weights, so a run may be resumed with them changed.
    """
    arch = {k: v for k, v in dict(arch_config).items() if k not in ("pretrained", "freeze_befor")}
    if class_num is not None:
        arch["class_num"] = class_num
    text = json.dumps(arch, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def save_checkpoint(prefix: str, model_state: dict, optimizer_state: dict, states: dict) -> None:
    """Write the trio for `prefix` (a path without extension): all temps first, then rename, `.pdstates` last."""
    temps = []
    try:
        temps.append(write_temp(model_state, prefix + ".pdparams"))
        temps.append(write_temp(optimizer_state, prefix + ".pdopt"))
        states = dict(states, format_version=FORMAT_VERSION,
                      file_sha256={"pdparams": file_sha256(temps[0]), "pdopt": file_sha256(temps[1])})
        temps.append(write_temp(states, prefix + ".pdstates"))
        for tmp_path, suffix in zip(list(temps), SUFFIXES):
            os.replace(tmp_path, prefix + suffix)
            temps.remove(tmp_path)
    finally:
        for tmp_path in temps:
            remove_quietly(tmp_path)
    fsync_dir(os.path.dirname(os.path.abspath(prefix)))


def remove_stale_temp_files(directory: str) -> List[str]:
    """Delete temp files a killed save left behind (`.<name>.pd*.<random>.tmp`); returns their names."""
    removed = []
    if not os.path.isdir(directory):
        return removed
    for name in os.listdir(directory):
        if name.startswith(".") and name.endswith(".tmp") and any(f"{s}." in name for s in SUFFIXES):
            remove_quietly(os.path.join(directory, name))
            removed.append(name)
    return removed


def strip_suffix(path: str) -> str:
    """Accept `best_model`, `best_model.pdparams` or `best_model.pdstates` for a prefix."""
    for suffix in SUFFIXES:
        if str(path).endswith(suffix):
            return str(path)[: -len(suffix)]
    return str(path)


def _load(path, what, return_numpy=False):
    """Read one file of the trio through the restricted loader (a file asking to run code is refused)."""
    from ppcls_lite.utils.safe_load import UnsafeWeightsFileError, restricted_load

    try:
        return restricted_load(path, return_numpy=return_numpy)
    except UnsafeWeightsFileError as exc:
        raise CheckpointError(f"{what} file: {exc}") from exc
    except Exception as exc:  # truncated/corrupt files, or a tensor paddle cannot hold
        raise CheckpointError(f"cannot read {what} file {path}: {type(exc).__name__}: {exc}. The file is corrupt "
                              f"or truncated; resume from another checkpoint (e.g. an epoch_N prefix).") from exc


def load_checkpoint(prefix: str, expected_digest: Optional[str] = None) -> Tuple[dict, dict, dict]:
    """Load the trio for `prefix`; returns (model_state, optimizer_state, states).

    Raises FileNotFoundError naming the missing file, or CheckpointError when the checkpoint is incomplete,
    unreadable or was made for another model (`expected_digest` differs).
    """
    prefix = strip_suffix(prefix)
    params_path, opt_path, states_path = (prefix + s for s in SUFFIXES)
    if not os.path.exists(params_path):
        raise FileNotFoundError(f"checkpoint not found: {params_path} does not exist (Global.checkpoints={prefix!r} "
                                f"must be a prefix such as output/<Arch.name>/latest, without extension)")
    if not os.path.exists(states_path):
        raise CheckpointError(f"checkpoint {prefix} is incomplete: {states_path} is missing (it is written last, "
                              f"so the save was interrupted or this is a weights-only file). To start from these "
                              f"weights only, use -o Global.pretrained_model={prefix} instead of Global.checkpoints.")
    if not os.path.exists(opt_path):
        raise FileNotFoundError(f"checkpoint {prefix} is incomplete: {opt_path} does not exist")
    # numpy arrays stay numpy (the numpy RNG state is uint32, which paddle tensors cannot hold).
    states = _load(states_path, "states", return_numpy=True)
    if not isinstance(states, dict) or "epoch" not in states:
        raise CheckpointError(f"{states_path} is not a ppcls_lite .pdstates file (no 'epoch' entry)")
    if expected_digest is not None and states.get("config_digest") not in (None, expected_digest):
        raise CheckpointError(f"checkpoint {states_path} was saved for a different model (Arch section or class_num "
                              f"differ from the current config). Resume with the config it was trained with, or "
                              f"load only matching weights with -o Global.pretrained_model={prefix}.")
    _check_hashes(prefix, states)
    model_state = _load(params_path, "weights")
    try:
        optimizer_state = unwrap_optimizer_state(_load(opt_path, "optimizer"), opt_path)
    except OptimizerStateError as exc:
        raise CheckpointError(str(exc)) from None
    return model_state, optimizer_state, states


def _check_hashes(prefix, states):
    expected = states.get("file_sha256") or {}
    for key, suffix in (("pdparams", ".pdparams"), ("pdopt", ".pdopt")):
        if key in expected and file_sha256(prefix + suffix) != expected[key]:
            raise CheckpointError(f"checkpoint {prefix} is inconsistent: {prefix}{suffix} is not the file its "
                                  f"{prefix}.pdstates was saved with (a save was interrupted between renames). "
                                  f"Resume from an epoch_N checkpoint in the same folder, or use --resume auto, "
                                  f"which picks the newest consistent one.")


def newest_valid_checkpoint(run_dir: str) -> Tuple[Optional[str], List[str]]:
    """The prefix of the newest complete, consistent checkpoint among `latest` and `epoch_N` in `run_dir`
    (None if there is none), with the reasons the newer ones were skipped."""
    candidates = []
    if os.path.isdir(run_dir):
        for name in os.listdir(run_dir):
            if name.endswith(".pdstates") and (name == "latest.pdstates" or name.startswith("epoch_")):
                candidates.append(os.path.join(run_dir, name[: -len(".pdstates")]))
    scored, skipped = [], []
    for prefix in candidates:
        try:
            states = _load(prefix + ".pdstates", "states", return_numpy=True)
            if not os.path.exists(prefix + ".pdparams") or not os.path.exists(prefix + ".pdopt"):
                raise CheckpointError(f"{prefix}: .pdparams or .pdopt is missing")
            _check_hashes(prefix, states)
            # latest wins a tie with epoch_N of the same epoch (they hold the same state).
            scored.append((int(states["epoch"]), os.path.basename(prefix) == "latest", prefix))
        except (CheckpointError, KeyError, TypeError, ValueError) as exc:
            skipped.append(f"{prefix}: {exc}")
    if not scored:
        return None, skipped
    return max(scored)[2], skipped


def checkpoint_exists(prefix: str) -> bool:
    """Whether the weights and states files of `prefix` exist (the optimizer file is not checked)."""
    return os.path.exists(prefix + ".pdstates") and os.path.exists(prefix + ".pdparams")


def weights_only_advice(run_dir: str, names: List[str]) -> str:
    """What to do with a run folder holding checkpoints but none to resume (e.g. only best_model)."""
    weights = os.path.join(run_dir, "best_model" if "best_model" in names else names[-1])
    return (f"Choose one: start a new run from those weights in another folder with "
            f"-o Global.pretrained_model={weights} -o Global.output_dir=NEW_DIR; or start from scratch here with "
            f"--overwrite, which moves {run_dir} aside to {run_dir}.old-<timestamp>/ (nothing is deleted)")


def checkpoint_names(run_dir: str) -> List[str]:
    """Sorted names (without extension) of the checkpoints directly in `run_dir`: any file of the trio counts,
    complete or not, so a partly written checkpoint is protected too."""
    if not os.path.isdir(run_dir):
        return []
    return sorted({name[: -len(s)] for name in os.listdir(run_dir) for s in SUFFIXES
                   if name.endswith(s) and not name.startswith(".")})


@dataclass
class TrainState:
    """Everything a training checkpoint holds: model, optimizer, LR scheduler, AMP scaler, EMA, the epoch and step
    counters, the best eval top-1 and the RNG states. `save(prefix)` writes the trio, `restore(prefix)` reads it."""

    model: Any
    optimizer: Any = None
    lr_scheduler: Any = None
    scaler: Any = None
    ema: Any = None
    epoch: int = 0              # last finished epoch
    global_step: int = 0        # optimizer steps done
    best_metric: float = -1.0   # best eval top-1 so far (-1: none yet)
    best_epoch: int = 0
    rng: Optional[dict] = None  # RNG states read by restore(), applied by apply_rng() just before the loop

    def save(self, prefix: str, plan: Dict[str, Any], best: bool = False) -> None:
        """Write `<prefix>.pdparams/.pdopt/.pdstates`; `plan` holds what a resume compares (epochs, steps per
        epoch, the Optimizer section) and the model identity (config_digest, arch). With `best` and EMA the
        weights file holds the EMA weights."""
        model_state = self.ema.full_state_dict(self.model) if best and self.ema is not None else self.model.state_dict()
        opt_state = saved_optimizer_state(self.optimizer, self.model)
        if self.lr_scheduler is not None:
            opt_state["lr_scheduler"] = self.lr_scheduler.state_dict()
        if self.scaler is not None:
            opt_state["amp_scaler"] = self.scaler.state_dict()
        states = {"epoch": self.epoch, **plan, "global_step": self.global_step, "best_metric": self.best_metric,
                  "best_epoch": self.best_epoch, "rng": get_rng_state(),
                  "ema": self.ema.state_dict() if self.ema is not None else None}
        save_checkpoint(prefix, model_state, opt_state, states)

    def restore(self, prefix: str, expected_digest: Optional[str], model_name: str,
                steps_per_epoch: Optional[int] = None) -> dict:
        """Load the trio into the objects and counters (optimizer accumulators re-keyed to this process's
        parameter names); returns the `.pdstates` dict. `model_name` names the model in a mismatch error;
        `steps_per_epoch` gives the global step of a checkpoint that does not record it (PaddleClas's)."""
        model_state, opt_state, states = load_checkpoint(prefix, expected_digest)
        ema_state = states.get("ema")
        if not ema_state and os.path.exists(prefix + PADDLECLAS_EMA_SUFFIX):
            # PaddleClas with EMA: .pdparams holds the averaged weights, .pdema the trained ones.
            ema_state = {key: value.numpy() for key, value in model_state.items()}
            model_state = _load(prefix + PADDLECLAS_EMA_SUFFIX, "weights")
        own = self.model.state_dict()
        missing = [k for k in own if k not in model_state]
        mismatched = [k for k in own if k in model_state and list(model_state[k].shape) != list(own[k].shape)]
        if missing or mismatched:
            raise CheckpointError(
                f"checkpoint {prefix}.pdparams does not fit {model_name}: missing {missing[:3]}, other shapes "
                f"{mismatched[:3]}. Resume with the config it was trained with, or load matching weights with "
                f"Global.pretrained_model.")
        self.model.set_state_dict(model_state)
        if self.optimizer is not None:
            sched_state = opt_state.get("lr_scheduler")
            scaler_state = opt_state.get("amp_scaler")
            try:
                opt_state = restore_optimizer_state(opt_state, self.optimizer, self.model, prefix + ".pdopt")
            except OptimizerStateError as exc:
                raise CheckpointError(str(exc)) from None
            self.optimizer.set_state_dict(opt_state)
            if sched_state is not None and self.lr_scheduler is not None:
                self.lr_scheduler.set_state_dict(sched_state)
            if scaler_state is not None and self.scaler is not None:
                self.scaler.load_state_dict(scaler_state)
        if self.ema is not None and ema_state:
            self.ema.set_state_dict(ema_state)
        elif self.ema is not None:  # a checkpoint of a run without EMA: the average starts at its weights
            self.ema = type(self.ema)(self.model, self.ema.decay)
            logger.info(f"{prefix} holds no EMA weights: the EMA starts from its weights")
        self.epoch = int(states["epoch"])
        # PaddleClas's .pdstates has no step count: epochs done x steps per epoch.
        self.global_step = int(states.get("global_step", self.epoch * (steps_per_epoch or 0)))
        # PaddleClas's own .pdstates hold {"epoch", "metric"}; ours also the step, RNG, EMA, digest.
        self.best_metric = float(states.get("best_metric", states.get("metric", -1.0)))
        self.best_epoch = int(states.get("best_epoch", states.get("epoch", 0) if "metric" in states else 0))
        self.rng = states.get("rng")
        return states

    def apply_rng(self) -> None:
        """Put the restored RNG states back (call after all building, so nothing consumes them first)."""
        if self.rng:
            set_rng_state(self.rng)
