"""Single process vs two ranks on the same data (tests/test_distributed.py, tests/test_multinode.py)."""
import numpy as np

from .configs import TINY_ARCH, tiny_train_config, write_config
from .data import make_image_folder
from .reading import load_params


PER_RANK_BATCH = 3  # the single process uses 2 * PER_RANK_BATCH


def trainable(params):
    """The parameters without BatchNorm running statistics."""
    return {k: v for k, v in params.items() if not k.endswith(("_mean", "_variance"))}


def relative_update_difference(init, single, dist):
    """||(dist - init) - (single - init)|| / ||single - init|| over the trainable tensors."""
    keys = sorted(trainable(init))
    diff = np.sqrt(sum(np.sum((dist[k].astype(np.float64) - single[k]) ** 2) for k in keys))
    update = np.sqrt(sum(np.sum((single[k].astype(np.float64) - init[k]) ** 2) for k in keys))
    assert update > 0, "the single-process run did not change the weights"
    return float(diff / update)


def paired_setup(root):
    """The data and starting point of a single-process vs two-rank comparison (test_distributed.py, test_multinode.py)
    under `root`: returns a dict with "data",
    "init" (the initial weights as numpy) and "config"(name, batch_size, epochs) -> path of a config that
    trains on the paired list from the saved initial weights, writing to root/name."""
    import paddle

    from ppcls_lite.arch import build_model

    # 64 px: at 32 px the last MobileNetV1 stage is 1x1 and BN over 3 values makes gradients ~100x larger.
    data = make_image_folder(root / "data", per_class=4, size=64)
    train_lines = (data / "train_list.txt").read_text().split()
    images = [train_lines[i] for i in range(0, len(train_lines), 2)]  # "path label" pairs -> paths
    labels = [int(train_lines[i]) for i in range(1, len(train_lines), 2)]
    first_of_class = [images[labels.index(c)] for c in range(3)]
    # Rank 0 gets lines 0-2 (true labels), rank 1 lines 3-5 (same images, labels + 1); one process gets all 6.
    lines = [f"{p} {c}" for c, p in enumerate(first_of_class)] + [f"{p} {(c + 1) % 3}" for c, p in
                                                                   enumerate(first_of_class)]
    (data / "paired_list.txt").write_text("\n".join(lines) + "\n")
    val_lines = (data / "val_list.txt").read_text().splitlines()[:5]  # odd: the eval sampler pads one sample
    (data / "val5_list.txt").write_text("\n".join(val_lines) + "\n")

    paddle.seed(11)
    init_prefix = root / "init"
    paddle.save(build_model({"name": TINY_ARCH, "class_num": 3}).state_dict(), str(init_prefix) + ".pdparams")

    def config(name, batch_size, epochs):
        cfg = tiny_train_config(data, root / name, batch_size=batch_size, epochs=epochs,
                                train_list="paired_list.txt", val_list="val5_list.txt", eval_batch_size=2,
                                shuffle=False, lr=0.01)
        cfg["Global"]["pretrained_model"] = str(init_prefix)
        return write_config(cfg, root / f"{name}.yaml")

    return {"data": data, "init": load_params(init_prefix), "config": config}
