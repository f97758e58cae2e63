"""`train`: img/s of the engine's training step (ppcls_lite.engine.loop.train_one_epoch over a one-batch loader:
forward + loss + backward + optimizer and LR step) for a config's model, loss and optimizer, in dygraph and with
paddle.jit.to_static (what Global.to_static does), on one synthetic batch (random images of the train crop size
and random labels, reused every step), so the number is model compute only, not data loading.
"""
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from .report import print_table, write_csv
from .timing import CPU_COUNT, load_1m, machine_description, summarize, time_interleaved

TRAIN_MODES = ("dygraph", "to_static", "both")


@dataclass
class TrainOptions:
    """What `train` measures (the `tools/benchmark.py train` flags)."""

    config: str  # the training config (YAML)
    overrides: Sequence[str] = ()  # -o KEY=VALUE
    mode: str = "both"  # dygraph | to_static | both
    batch_size: Optional[int] = None  # default: DataLoader.Train.sampler.batch_size
    size: Optional[int] = None  # image side (default: the train crop size)
    steps: int = 20
    warmup: int = 3
    threads: int = CPU_COUNT
    csv: Optional[str] = None  # also write the rows to this CSV file


def _train_image_size(config):
    """Side of the train crop (RandCropImage.size), else Global.image_shape."""
    from ppcls_lite.utils.schema import GLOBAL_DEFAULTS

    ops = (((config.get("DataLoader") or {}).get("Train") or {}).get("dataset") or {}).get("transform_ops") or []
    for op in ops:
        if isinstance(op, dict) and "RandCropImage" in op:
            size = (op["RandCropImage"] or {}).get("size")
            if size:
                return (size, size) if isinstance(size, int) else (int(size[1]), int(size[0]))
    shape = (config.get("Global") or {}).get("image_shape") or GLOBAL_DEFAULTS["image_shape"]
    return int(shape[1]), int(shape[2])


class OneBatch:
    """A loader that yields the same (images, labels) batch once per pass: with it, one `train_one_epoch` call
    is one training step on data already in memory."""

    def __init__(self, images: Any, labels: Any) -> None:
        self.batch = (images, labels)

    def set_epoch(self, epoch: int) -> None:
        """Nothing to reshuffle."""

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Any:
        yield self.batch


def bench_train(options: TrainOptions) -> List[Dict[str, Any]]:
    """img/s of the engine's training step (train_one_epoch) on one synthetic batch, dygraph and to_static."""
    import paddle

    from ppcls_lite.arch import build_model
    from ppcls_lite.engine.amp import AmpContext
    from ppcls_lite.engine.checkpoint import TrainState
    from ppcls_lite.engine.loop import train_one_epoch
    from ppcls_lite.engine.run_log import RunLog
    from ppcls_lite.loss import build_loss
    from ppcls_lite.optimizer import build_optimizer
    from ppcls_lite.config import get_config
    from ppcls_lite.utils.schema import GLOBAL_DEFAULTS

    paddle.set_device("cpu")
    paddle.base.core.set_num_threads(options.threads)
    print(machine_description(options.threads))
    config = get_config(options.config, list(options.overrides))
    arch = dict(config["Arch"])
    arch.pop("pretrained", None)  # speed does not depend on the weights
    class_num = int(arch.get("class_num", 1000))
    height, width = (options.size, options.size) if options.size else _train_image_size(config)
    batch_size = options.batch_size or int(config["DataLoader"]["Train"]["sampler"]["batch_size"])
    print(f"{arch['name']}: synthetic batch of {batch_size} x 3 x {height} x {width}, {class_num} classes")

    paddle.seed(0)
    batch = OneBatch(paddle.randn([batch_size, 3, height, width], dtype="float32"),
                     paddle.randint(0, class_num, [batch_size], dtype="int64"))
    amp = AmpContext(use_amp=False, level="O1", device="cpu")
    rows = []
    modes = ["dygraph", "to_static"] if options.mode == "both" else [options.mode]
    with tempfile.TemporaryDirectory(prefix="ppcls_bench_train_") as run_dir:
        # A log that never prints: the step count it is told is never reached, and it writes no files.
        quiet_log = RunLog(run_dir, epochs=1, steps_per_epoch=10 ** 9, print_batch_step=10 ** 9, is_main=False)
        for mode in modes:
            model = build_model(arch)
            loss_fn = build_loss(config["Loss"]["Train"])
            epochs = int((config.get("Global") or {}).get("epochs") or GLOBAL_DEFAULTS["epochs"])  # e.g. warm-up
            optimizer, scheduler = build_optimizer(config["Optimizer"], epochs=epochs,
                                                   steps_per_epoch=options.steps + options.warmup, model=model)
            state = TrainState(model=model, optimizer=optimizer, lr_scheduler=scheduler)
            net = model
            if mode == "to_static":  # what the engine does for Global.to_static
                spec = [paddle.static.InputSpec([None, 3, None, None], "float32", "x")]
                net = paddle.jit.to_static(model, input_spec=spec, full_graph=True)
            by_epoch = bool(getattr(scheduler, "by_epoch", False))

            def step(net=net, state=state, loss_fn=loss_fn, by_epoch=by_epoch):
                return train_one_epoch(state, net, batch, loss_fn, None, amp, quiet_log, epoch=1, by_epoch=by_epoch)

            load = load_1m()
            times = time_interleaved({mode: step}, options.steps, options.warmup)[mode]
            rows.append({"benchmark": "train", "engine": mode, "model": arch["name"], "image_size": height,
                         "batch_size": batch_size, "threads": options.threads, "load_1m": load,
                         **summarize(times, batch_size)})
    print_table(rows)
    if options.csv:
        write_csv(rows, options.csv)
    return rows
