"""`EngineSettings`: the Global / AMP / EMA / Infer values the engine uses, resolved from a config.

Defaults come from `ppcls_lite.utils.schema` (written once there); a key explicitly set to null keeps its
default. `build_settings(config, mode)` is the only reader of those sections for the engine.
"""
import copy
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from ppcls_lite.arch import arch_class_num, rec_class_num
from ppcls_lite.engine import checkpoint as ckpt
from ppcls_lite.engine.task import is_multilabel, output_activation
from ppcls_lite.utils import logger
from ppcls_lite.utils.config_rules import normalize_numbers
from ppcls_lite.utils.schema import AMP_DEFAULTS, EMA_DEFAULTS, GLOBAL_DEFAULTS, INFER_DEFAULTS


def _section(config: dict, name: str, defaults: dict) -> dict:
    """The section's values over the defaults; a key explicitly set to null keeps its default."""
    out = dict(defaults)
    out.update({k: v for k, v in (config.get(name) or {}).items() if v is not None})
    return out


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


@dataclass
class GlobalSettings:
    """Global.*: run folder, epochs, saving, evaluation cadence, logging, device, seed."""

    output_dir: str = GLOBAL_DEFAULTS["output_dir"]  # the run dir is output_dir/Arch.name
    epochs: int = GLOBAL_DEFAULTS["epochs"]
    save_interval: int = GLOBAL_DEFAULTS["save_interval"]
    eval_during_train: bool = GLOBAL_DEFAULTS["eval_during_train"]
    eval_interval: int = GLOBAL_DEFAULTS["eval_interval"]
    start_eval_epoch: int = GLOBAL_DEFAULTS["start_eval_epoch"]  # no evaluation before this epoch (the last: always)
    print_batch_step: int = GLOBAL_DEFAULTS["print_batch_step"]
    use_visualdl: bool = GLOBAL_DEFAULTS["use_visualdl"]
    device: str = GLOBAL_DEFAULTS["device"]
    seed: int = GLOBAL_DEFAULTS["seed"]
    to_static: bool = GLOBAL_DEFAULTS["to_static"]
    image_shape: list = field(default_factory=lambda: list(GLOBAL_DEFAULTS["image_shape"]))
    max_image_pixels: Optional[int] = None  # the pixel limit (None: environment or default; 0: none)
    cpu_threads: Any = GLOBAL_DEFAULTS["cpu_threads"]  # "auto" or a count (utils/threads.py)
    checkpoints: Optional[str] = None       # resume prefix (already resolved from "auto")
    pretrained_model: Optional[str] = None  # weights-only prefix
    # Retrieval (engine/retrieval.py): eval by query/gallery ranking, and how features are compared.
    eval_mode: str = GLOBAL_DEFAULTS["eval_mode"]
    retrieval_feature_from: str = GLOBAL_DEFAULTS["retrieval_feature_from"]
    feature_normalize: bool = GLOBAL_DEFAULTS["feature_normalize"]
    feature_binarize: Optional[str] = GLOBAL_DEFAULTS["feature_binarize"]
    sim_block_size: int = GLOBAL_DEFAULTS["sim_block_size"]

    def evaluates_after(self, epoch: int) -> bool:
        """Evaluate after `epoch`: every eval_interval epochs from start_eval_epoch on, and always after the last."""
        return epoch == self.epochs or (epoch >= self.start_eval_epoch and epoch % max(int(self.eval_interval), 1) == 0)


@dataclass
class AMPSettings:
    """AMP.*: mixed precision (GPU/XPU only, see amp.py)."""

    use_amp: bool = AMP_DEFAULTS["use_amp"]
    level: str = AMP_DEFAULTS["level"]
    scale_loss: float = AMP_DEFAULTS["scale_loss"]
    use_dynamic_loss_scaling: bool = AMP_DEFAULTS["use_dynamic_loss_scaling"]
    use_fp16_test: bool = AMP_DEFAULTS["use_fp16_test"]
    use_promote: bool = AMP_DEFAULTS["use_promote"]  # run an op in fp32 when any input is fp32


@dataclass
class EMASettings:
    """EMA.*: `decay` of the weight average, None when the config has no EMA section (EMA off)."""

    decay: Optional[float] = None


@dataclass
class InferSettings:
    """Infer.*: what tools/infer.py classifies and how many images per forward pass."""

    infer_imgs: Optional[str] = INFER_DEFAULTS["infer_imgs"]
    batch_size: int = INFER_DEFAULTS["batch_size"]
    encoding: str = INFER_DEFAULTS["encoding"]  # of an infer_imgs list file
    label_map_file: Optional[str] = None  # Infer.PostProcess.class_id_map_file: class names for reports
    activation: str = "softmax"  # how logits become the reported scores: softmax, or sigmoid (multi-label)
    binary_names: Optional[list] = None  # ThreshOutput's [label_0, label_1]: class names for reports


@dataclass
class EngineSettings:
    """Everything the engine needs from the config, already resolved, grouped by section."""

    arch_name: str
    class_num: Optional[int]                 # None: a RecModel without a head (labels are identities, unbounded)
    Global: GlobalSettings = field(default_factory=GlobalSettings)
    AMP: AMPSettings = field(default_factory=AMPSettings)
    EMA: EMASettings = field(default_factory=EMASettings)
    Infer: InferSettings = field(default_factory=InferSettings)
    arch_pretrained: bool = False            # Arch.pretrained loaded weights inside build_model
    multilabel: bool = False                 # a multi-label task (engine/task.py): sigmoid scores, per-label reports
    config_digest: Optional[str] = None      # identifies the model a checkpoint fits (checkpoint.config_digest)
    eval_batch_size: Optional[int] = None    # DataLoader.Eval.sampler: for removing DistributedBatchSampler padding
    eval_shuffle: bool = False
    optimizer_config: Optional[dict] = None  # the Optimizer section (numbers normalised), kept in .pdstates

    @property
    def run_dir(self) -> str:
        """<Global.output_dir>/<Arch.name>: where a training run writes everything."""
        return os.path.join(self.Global.output_dir, self.arch_name)


def resolve_checkpoints(checkpoints: Optional[str], run_dir: str) -> Optional[str]:
    """`auto` → the newest consistent checkpoint in run_dir (normally `latest`; error if none); other values
    are prefixes (extension stripped)."""
    if not checkpoints:
        return None
    if str(checkpoints).lower() == "auto":
        prefix, skipped = ckpt.newest_valid_checkpoint(run_dir)
        for reason in skipped:
            logger.warning(f"--resume auto: skipping {reason}")
        if prefix is None:
            names = ckpt.checkpoint_names(run_dir)
            if names:  # e.g. only best_model: weights, not a resumable run
                raise FileNotFoundError(f"--resume auto: {run_dir} has no checkpoint to resume (no complete "
                                        f"latest or epoch_N), only {', '.join(names)}. "
                                        + ckpt.weights_only_advice(run_dir, names) + " (either without --resume)")
            raise FileNotFoundError(f"--resume auto: no checkpoint to resume in {run_dir} (looked for complete "
                                    f"latest/epoch_N .pdparams + .pdopt + .pdstates). Start without --resume "
                                    f"(or check Global.output_dir and Arch.name).")
        if os.path.basename(prefix) != "latest":
            logger.warning(f"--resume auto: {os.path.join(run_dir, 'latest')} is missing or older; resuming "
                           f"from {prefix}")
        return prefix
    return ckpt.strip_suffix(str(checkpoints))


def _binary_names(postprocess: Optional[dict]) -> Optional[list]:
    """ThreshOutput's label_0 / label_1, when both are set."""
    names = [(postprocess or {}).get("label_0"), (postprocess or {}).get("label_1")]
    return [str(n) for n in names] if None not in names else None


def build_settings(config: dict, mode: str = "train") -> EngineSettings:
    """EngineSettings from the Global / AMP / EMA / Infer / Arch sections."""
    g = _section(config, "Global", GLOBAL_DEFAULTS)
    amp = _section(config, "AMP", AMP_DEFAULTS)
    infer = _section(config, "Infer", INFER_DEFAULTS)
    arch = config.get("Arch") or {}
    if "name" not in arch:
        raise KeyError("Arch.name is missing from the config (e.g. Arch: {name: MobileNetV3_small_x1_0})")
    if arch.get("class_num") is None and arch["name"] == "RecModel":
        class_num = rec_class_num(arch)  # its Head's classes
    else:
        class_num = arch_class_num(arch)  # a DistillationModel's from its sub-models (the R50 CIFAR100 config)
    ema = config.get("EMA")
    eval_sampler = (((config.get("DataLoader") or {}).get("Eval") or {}).get("sampler") or {})
    settings = EngineSettings(
        arch_name=str(arch["name"]),
        class_num=class_num,
        Global=GlobalSettings(
            output_dir=str(g["output_dir"]),
            epochs=int(g["epochs"]),
            save_interval=int(g["save_interval"] or 0),
            eval_during_train=_as_bool(g["eval_during_train"]),
            eval_interval=int(g["eval_interval"] or 1),
            start_eval_epoch=int(g["start_eval_epoch"] or 0),
            print_batch_step=int(g["print_batch_step"] or 1),
            use_visualdl=_as_bool(g["use_visualdl"]),
            device=str(g["device"] or GLOBAL_DEFAULTS["device"]).lower(),
            seed=int(g["seed"]),
            to_static=_as_bool(g["to_static"]),
            image_shape=list(g["image_shape"]),
            pretrained_model=g["pretrained_model"] or None,
            max_image_pixels=g["max_image_pixels"],
            cpu_threads=g["cpu_threads"],
            eval_mode=str(g["eval_mode"]),
            retrieval_feature_from=str(g["retrieval_feature_from"]),
            feature_normalize=_as_bool(g["feature_normalize"]),
            feature_binarize=g["feature_binarize"],
            sim_block_size=int(g["sim_block_size"]),
        ),
        AMP=AMPSettings(
            use_amp=_as_bool(amp["use_amp"]),
            level=str(amp["level"]),
            scale_loss=float(amp["scale_loss"]),
            use_dynamic_loss_scaling=_as_bool(amp["use_dynamic_loss_scaling"]),
            use_fp16_test=_as_bool(amp["use_fp16_test"]),
            use_promote=_as_bool(amp["use_promote"]),
        ),
        EMA=EMASettings(decay=float(_section({"EMA": ema}, "EMA", EMA_DEFAULTS)["decay"])
                        if isinstance(ema, dict) else None),
        Infer=InferSettings(
            infer_imgs=infer["infer_imgs"],
            batch_size=int(infer["batch_size"] or INFER_DEFAULTS["batch_size"]),
            encoding=str(infer["encoding"]),
            label_map_file=(infer["PostProcess"] or {}).get("class_id_map_file"),
            activation=output_activation(config),
            binary_names=_binary_names(infer["PostProcess"]),
        ),
        arch_pretrained=bool(arch.get("pretrained")),
        multilabel=is_multilabel(config),
        # Slim changes the model (pruned widths, fake-quant layers): its weights fit only the same Slim section.
        config_digest=ckpt.config_digest({**arch, "Slim": config["Slim"]} if config.get("Slim") else arch, class_num),
        eval_batch_size=int(eval_sampler.get("batch_size") or 1),
        eval_shuffle=_as_bool(eval_sampler.get("shuffle", False)),
        optimizer_config=normalize_numbers(copy.deepcopy(config.get("Optimizer"))),
    )
    g_settings = settings.Global
    g_settings.checkpoints = resolve_checkpoints(g["checkpoints"], settings.run_dir)
    if mode != "train" and g_settings.checkpoints and not g_settings.pretrained_model:
        # eval/infer only need the weights of a training checkpoint.
        g_settings.pretrained_model, g_settings.checkpoints = g_settings.checkpoints, None
    return settings
