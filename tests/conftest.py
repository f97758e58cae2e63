"""Shared pytest fixtures and helpers (test modules import these, never each other): where the reference facts
live, a tiny on-disk image dataset, configs for it, and running the tools in subprocesses."""
import csv
import io
import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
# Reference facts about PaddleClas's models, all kept in the repository (a bare clone needs nothing beside it);
# tests/fixtures/reference/README.md says where each file came from.
FIXTURE_REFERENCE_DIR = REPO_ROOT / "tests" / "fixtures" / "reference"
REFERENCE_DIR = FIXTURE_REFERENCE_DIR
TOOLS_DIR = REPO_ROOT / "tools"
PREDICTOR_DIR = REPO_ROOT / "deploy" / "python"
TRAIN = TOOLS_DIR / "train.py"

# Paddle's CPU kernels spin up one thread per core by default; two test processes then fight over 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def reference_dir():
    """tests/fixtures/reference: the facts about PaddleClas's models the tests compare against."""
    return REFERENCE_DIR


def reference_file(reference_dir, relative):
    """<reference_dir>/<relative> (kept for tests written when the facts lived in two places)."""
    return Path(reference_dir) / relative


def read_models_tsv(reference_dir):
    """{name: row} of <reference_dir>/models.tsv, in its order."""
    lines = (Path(reference_dir) / "models.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    return {row[0]: dict(zip(header, row)) for row in (line.split("\t") for line in lines[1:] if line.strip())}


def read_state_dict_txt(path):
    """[(key, shape, dtype)] of a state_dict/<name>.txt reference file."""
    entries = []
    for line in Path(path).read_text().splitlines():
        key, shape, dtype = line.split("\t")
        entries.append((key, [int(d) for d in shape.strip("[]").split(",") if d.strip()], dtype))
    return entries


def state_dict_entries(model):
    """[(key, shape, dtype)] of a model, as the reference files list them."""
    return [(k, list(v.shape), str(v.dtype).replace("paddle.", "")) for k, v in model.state_dict().items()]


def parity_rule():
    """tests/fixtures/reference/parity_rule.py: the seeded weights of models too large to store."""
    spec = importlib.util.spec_from_file_location("parity_rule", FIXTURE_REFERENCE_DIR / "parity_rule.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parity_weights_prefix(reference_dir, name, tmp_path, model=None):
    """The prefix of parity file `name`'s weights (.pdparams): the stored file of `reference_dir`, or, for the
    models too large to store (tests/fixtures/reference), the weights of model `model` (default: `name`) drawn by
    the seeded rule of tests/fixtures/reference/parity_rule.py and saved under tmp_path. The .npz beside holds the
    input `x` (and maybe `x_odd`) and the `logits` (`logits_odd`) they must give."""
    import paddle

    npz = reference_file(reference_dir, f"parity/{name}.npz")
    if npz.with_suffix(".pdparams").is_file():
        return npz.with_suffix("")
    rule = parity_rule()
    class_num = np.load(npz)["logits"].shape[1]
    layout = read_state_dict_txt(reference_file(reference_dir, f"state_dict/{model or name}.txt"))
    shapes = {key: (shape[:-1] + [class_num] if key.startswith(("classifier.", "fc.")) else shape)
              for key, shape, _ in layout}
    prefix = Path(tmp_path) / name
    paddle.save(rule.parity_weights(shapes), str(prefix) + ".pdparams")
    return prefix


def load_tool(name):
    """tools/<name>.py as a module: the tools are scripts beside their helper modules, not a package."""
    if str(TOOLS_DIR) not in sys.path:
        sys.path.insert(0, str(TOOLS_DIR))
    return importlib.import_module(name)


# ImageNet-style inference preprocessing scaled down to 32 px (resize short side 36, centre crop 32).
INFER_OPS_32PX = [
    {"DecodeImage": {"to_rgb": True, "channel_first": False}},
    {"ResizeImage": {"resize_short": 36}},
    {"CropImage": {"size": 32}},
    {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                        "order": ""}},
    {"ToCHWImage": None},
]


def make_image_folder(root, class_names=("circle", "square", "stripes"), per_class=6, size=32, seed=0):
    """Write a small class-folder dataset of PNGs whose classes are visually distinct, plus list files.

    Returns the root Path. Layout: root/<class>/<i>.png, root/train_list.txt, root/val_list.txt,
    root/label_list.txt (`id name`). Every other image goes to val.
    """
    import cv2

    root = Path(root)
    rng = np.random.default_rng(seed)
    train_lines, val_lines = [], []
    for label, name in enumerate(class_names):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 40, size=(size, size, 3), dtype=np.uint8)
            color = tuple(int(c) for c in rng.integers(150, 256, size=3))
            if label % 3 == 0:
                cv2.circle(img, (size // 2, size // 2), size // 3, color, -1)
            elif label % 3 == 1:
                cv2.rectangle(img, (size // 4, size // 4), (3 * size // 4, 3 * size // 4), color, -1)
            else:
                img[:, :: max(size // 8, 2)] = color
            rel = f"{name}/{i}.png"
            cv2.imwrite(str(root / rel), img)
            (val_lines if i % 2 else train_lines).append(f"{rel} {label}")
    (root / "train_list.txt").write_text("\n".join(train_lines) + "\n")
    (root / "val_list.txt").write_text("\n".join(val_lines) + "\n")
    (root / "label_list.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(class_names)))
    return root


@pytest.fixture
def tiny_dataset(tmp_path):
    """A 3-class, 18-image, 32 px dataset in class folders with train/val/label list files."""
    return make_image_folder(tmp_path / "tiny")


def record_lr(engine):
    """A list that receives (global step, LR) for every optimizer step the engine takes from now on: the LR the
    real optimizer applies, read just before each step."""
    trace = []
    optimizer = engine.optimizer
    step = optimizer.step

    def recording_step():
        trace.append((engine.global_step + 1, float(optimizer.get_lr())))
        step()

    optimizer.step = recording_step
    return trace


# ------------------------------------------------------------------------------ configs for the tiny dataset
DECODE = {"DecodeImage": {"to_rgb": True, "channel_first": False}}
NORMALIZE = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "order": ""}}
# Deterministic preprocessing (no random crop/flip): the tiny PNGs are already 32 px.
DETERMINISTIC_OPS = [DECODE, NORMALIZE]
RANDOM_OPS = [DECODE, {"RandCropImage": {"size": 32, "scale": [0.6, 1.0]}}, {"RandFlipImage": {"flip_code": 1}},
              NORMALIZE]
TINY_ARCH = "MobileNetV1_x0_25"  # no dropout, 0.2 M parameters: fast and deterministic on CPU
EXPORT_ARCH = "MobileNetV3_small_x0_35"  # has hard-swish and SE blocks


def tiny_config(data_root, output_dir, arch="MobileNetV3_small_x0_35", class_num=3, epochs=2, num_workers=0,
                lr=0.01):
    """A complete config dict for the conftest tiny dataset (32 px, 3 classes): CPU, batch 4, fast."""
    data_root = str(data_root)

    def loader(list_name, train):
        ops = [DECODE] + ([{"RandFlipImage": {"flip_code": 1}}] if train else []) + [NORMALIZE]
        return {
            "dataset": {"name": "ImageNetDataset", "image_root": data_root,
                        "cls_label_path": os.path.join(data_root, list_name), "transform_ops": ops},
            "sampler": {"name": "DistributedBatchSampler", "batch_size": 4, "drop_last": False, "shuffle": train},
            "loader": {"num_workers": num_workers if train else 0, "use_shared_memory": False},
        }

    return {
        "Global": {"output_dir": str(output_dir), "device": "cpu", "epochs": epochs, "print_batch_step": 1,
                   "seed": 42, "save_interval": 1, "eval_during_train": True, "eval_interval": 1,
                   "image_shape": [3, 32, 32]},
        "Arch": {"name": arch, "class_num": class_num},
        "Loss": {"Train": [{"CELoss": {"weight": 1.0, "epsilon": 0.1}}], "Eval": [{"CELoss": {"weight": 1.0}}]},
        "Optimizer": {"name": "Momentum", "momentum": 0.9,
                      "lr": {"name": "Cosine", "learning_rate": lr, "warmup_epoch": 1, "warmup_start_lr": 0.0},
                      "regularizer": {"name": "L2", "coeff": 1e-5}},
        "DataLoader": {"Train": loader("train_list.txt", True), "Eval": loader("val_list.txt", False)},
        "Infer": {"infer_imgs": os.path.join(data_root, "val_list.txt"), "batch_size": 4,
                  "transforms": [DECODE, NORMALIZE, {"ToCHWImage": None}],
                  "PostProcess": {"name": "Topk", "topk": 2,
                                  "class_id_map_file": os.path.join(data_root, "label_list.txt")}},
        "Metric": {"Train": [{"TopkAcc": {"topk": [1, 5]}}], "Eval": [{"TopkAcc": {"topk": [1, 5]}}]},
    }


def tiny_train_config(data_root, output_dir, *, arch=TINY_ARCH, class_num=3, epochs=2, batch_size=3,
                      eval_batch_size=4, train_list="train_list.txt", val_list="val_list.txt", random_aug=False,
                      shuffle=True, lr=0.02, seed=7):
    """A config for runs through tools/train.py on the tiny dataset: constant lr, deterministic ops unless
    `random_aug`, a small model (change it, then `write_config`)."""
    data_root = str(data_root)

    def dataset(list_name, ops):
        return {"name": "ImageNetDataset", "image_root": data_root,
                "cls_label_path": os.path.join(data_root, list_name), "transform_ops": ops}

    loader = {"num_workers": 0, "use_shared_memory": False}
    return {
        "Global": {"output_dir": str(output_dir), "device": "cpu", "epochs": epochs, "seed": seed,
                   "print_batch_step": 1, "image_shape": [3, 32, 32], "save_interval": 1,
                   "eval_during_train": True, "eval_interval": 1, "use_visualdl": False, "to_static": False,
                   "checkpoints": None, "pretrained_model": None},
        "Arch": {"name": arch, "class_num": class_num},
        "Loss": {"Train": [{"CELoss": {"weight": 1.0}}], "Eval": [{"CELoss": {"weight": 1.0}}]},
        # Constant lr, plain momentum: small steps so the tiny model stays finite and comparisons are tight.
        "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Constant", "learning_rate": lr},
                      "regularizer": {"name": "L2", "coeff": 1.0e-4}},
        "DataLoader": {
            "Train": {"dataset": dataset(train_list, RANDOM_OPS if random_aug else DETERMINISTIC_OPS),
                      "sampler": {"name": "DistributedBatchSampler", "batch_size": batch_size, "drop_last": False,
                                  "shuffle": shuffle},
                      "loader": loader},
            "Eval": {"dataset": dataset(val_list, DETERMINISTIC_OPS),
                     "sampler": {"name": "DistributedBatchSampler", "batch_size": eval_batch_size,
                                 "drop_last": False, "shuffle": False},
                     "loader": loader},
        },
        "Metric": {"Train": [{"TopkAcc": {"topk": [1, 2]}}], "Eval": [{"TopkAcc": {"topk": [1, 2]}}]},
    }


def write_config(config, path):
    """Write `config` as YAML to `path`; returns the Path."""
    path = Path(path)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def logged_warnings(monkeypatch):
    """The messages of the warnings logged through ppcls_lite's logger during the test, in order."""
    from ppcls_lite.utils import logger

    messages = []
    monkeypatch.setattr(logger, "warning", lambda msg, *args: messages.append(msg))
    return messages


def load_config(config, tmp_path, overrides=()):
    """Round-trip through get_config so the engine sees exactly what the tools would give it."""
    from ppcls_lite.config import get_config

    return get_config(write_config(config, tmp_path / "config.yaml"), list(overrides))


def tiny_export_config(tmp_path, reference_dir, weights=True, per_class=8):
    """A config file exporting the parity weights of EXPORT_ARCH at 32 px, with a small Train/Eval list of real
    images (in a folder whose name has a space and Chinese characters). Returns (config path, dataset root)."""
    root = make_image_folder(tmp_path / "数据 集", per_class=per_class, size=48)
    dataset = {"name": "ImageNetDataset", "image_root": str(root)}
    config = {
        "Global": {"pretrained_model": str(reference_dir / "parity" / EXPORT_ARCH) if weights else None,
                   "save_inference_dir": str(tmp_path / "inference"), "image_shape": [3, 32, 32]},
        "Arch": {"name": EXPORT_ARCH, "class_num": 10},
        "DataLoader": {"Train": {"dataset": dict(dataset, cls_label_path=str(root / "train_list.txt"))},
                       "Eval": {"dataset": dict(dataset, cls_label_path=str(root / "val_list.txt"))}},
        "Infer": {"transforms": INFER_OPS_32PX, "PostProcess": {"name": "Topk", "topk": 3}},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path, root


@pytest.fixture
def mirror_server(tmp_path, monkeypatch):
    """A LoopbackServer on 127.0.0.1 standing in for every download host ($PPCLS_LITE_WEIGHTS_MIRROR), with an
    empty download cache ($PPCLS_LITE_HOME) in a folder whose name has a space and Chinese characters."""
    from loopback_server import LoopbackServer

    monkeypatch.setenv("PPCLS_LITE_HOME", str(tmp_path / "home dir 缓存"))
    with LoopbackServer() as server:
        monkeypatch.setenv("PPCLS_LITE_WEIGHTS_MIRROR", server.url)
        yield server


def export_tiny(tmp_path, reference_dir, *export_args):
    """Export the tiny parity-weights config (`tiny_export_config`) with tools/export_model.py `export_args`;
    asserts it succeeded and returns (export folder, dataset root)."""
    config_path, root = tiny_export_config(tmp_path, reference_dir)
    proc = run_export(config_path, *export_args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp_path / "inference", root


# ------------------------------------------------------------------------------------ tools in subprocesses
def subprocess_env(extra=None):
    """The environment for a tool subprocess: one thread, CPU (no CUDA_VISIBLE_DEVICES), ppcls_lite importable,
    no debug tracebacks (the one-line errors are what users see), then `extra`."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    # paddle.distributed.launch treats a set CUDA_VISIBLE_DEVICES (even '') as "GPU job"; unset means CPU + gloo.
    env.pop("CUDA_VISIBLE_DEVICES", None)
    for name in ("PPCLS_LITE_DEBUG", "PPCLS_DEBUG"):
        env.pop(name, None)
    env.update(extra or {})
    return env


def run_tool(tool, *args, cwd=None, timeout=600, env=None):
    """`python tools/<tool> ARGS` in a subprocess with `subprocess_env(env)`; returns CompletedProcess."""
    return subprocess.run([sys.executable, str(TOOLS_DIR / tool), *map(str, args)], cwd=cwd or REPO_ROOT,
                          env=subprocess_env(env), capture_output=True, text=True, timeout=timeout)


def run_train(config_path, *overrides, resume=False, check=True, timeout=300, env=None):
    """`python tools/train.py -c CONFIG [-o ...] [--resume auto]` in a subprocess; returns CompletedProcess.
    With `check`, a failed run fails the test with the end of its output."""
    args = ["-c", config_path, *[part for item in overrides for part in ("-o", item)]]
    proc = run_tool("train.py", *args, *(["--resume", "auto"] if resume else []), timeout=timeout, env=env)
    if check:
        assert proc.returncode == 0, f"train.py {' '.join(map(str, args))} failed:\n{proc.stdout[-3000:]}\n" \
                                     f"{proc.stderr[-3000:]}"
    return proc


def start_train(config_path, *args, group=False):
    """Start `python tools/train.py -c CONFIG ARGS` (stdout discarded, stderr piped) with SIGINT at its default, as a
    terminal's Ctrl-C finds it (the test runner may ignore SIGINT, which children inherit); `group`: in a new
    process group (a session), so that a signal can be sent to it and its data-loader workers at once."""
    import signal

    return subprocess.Popen([sys.executable, str(TRAIN), "-c", str(config_path), *map(str, args)], cwd=REPO_ROOT,
                            env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), start_new_session=group)


def wait_for(proc, ready, what, timeout=300):
    """Poll until `ready()` while `proc` runs; fails naming `what` if it exits first or never gets there."""
    import time

    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, f"training exited before {what}: {proc.stderr.read()[-2000:]}"
        assert time.time() < deadline, f"training never got to {what}"
        time.sleep(0.005)


def signal_train(config_path, ready, what, sig, group=False):
    """Start training (`start_train`), send `sig` once `ready()` is true (to the whole process group with `group`)
    and return (exit status, stderr)."""
    proc = start_train(config_path, group=group)
    try:
        wait_for(proc, ready, what)
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        stderr = proc.communicate(timeout=120)[1]
    finally:
        proc.kill()
    return proc.returncode, stderr


def ctrl_c_train(config_path, ready, what):
    """SIGINT (a terminal's Ctrl-C) to a training once `ready()`; returns (exit status, stderr)."""
    import signal

    return signal_train(config_path, ready, what, signal.SIGINT)


def run_export(config_path, *args):
    """`python tools/export_model.py -c CONFIG ARGS` in a subprocess; returns CompletedProcess."""
    return run_tool("export_model.py", "-c", config_path, *args, timeout=None)


# ------------------------------------------------------------------------------------ reading what was written
def load_params(prefix):
    """A checkpoint's weights as {name: numpy array}; `prefix` without extension."""
    import paddle

    state = paddle.load(str(prefix) + ".pdparams")
    return {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v) for k, v in state.items()}


def load_states(prefix):
    """A checkpoint's .pdstates (epoch, RNG, EMA, ...); `prefix` without extension."""
    import paddle

    # return_numpy: the numpy RNG state (uint32 array) cannot become a paddle tensor
    return paddle.load(str(prefix) + ".pdstates", return_numpy=True)


def read_metrics(run_dir):
    """The rows of run_dir/metrics.csv as dicts."""
    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def image_files(root):
    """Every PNG under `root`, sorted."""
    return sorted(str(p) for p in Path(root).rglob("*.png"))


def uint8_crops(predictor, files):
    """What a phone app feeds a uint8-input model: each file through the export's ops before NormalizeImage
    (decode, resize, crop), stacked as uint8 NHWC. `predictor` is a ppcls_lite.predict.Predictor of the export."""
    from ppcls_lite.pipeline import transform
    from ppcls_lite.predict import build_preprocess

    before_normalize = build_preprocess(predictor.config["PreProcess"]["transform_ops"][:3])
    return np.stack([transform(Path(f).read_bytes(), before_normalize) for f in files])


# --------------------------------------------------------------------- single process vs two ranks, same data
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


# Images users bring: phone JPEGs with EXIF orientation, CMYK, grey, 16-bit, palette, RGBA, GIF, WEBP, in
# folders and files whose names have spaces and Chinese characters.
# A viewer's rotation for each EXIF orientation, applied to the stored pixels.
EXIF_DISPLAY = {1: lambda a: a, 3: lambda a: np.rot90(a, 2), 6: lambda a: np.rot90(a, -1), 8: lambda a: np.rot90(a, 1)}


def smooth_photo(seed, h=480, w=640):
    """Smooth colours plus a bright vertical bar left of centre: rotations change what a 32 px crop shows."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (31, 31), 10)
    img[:, w // 2 - 60:w // 2 - 20] = (240, 230, 30)
    return img


def save_pil(img, path, fmt, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    path.write_bytes(buf.getvalue())


def orientation_jpeg(rgb, orientation, path):
    exif = Image.Exif()
    exif[0x0112] = orientation
    save_pil(Image.fromarray(rgb), path, "JPEG", quality=92, exif=exif)


def make_awkward_files(root):
    """Write the files; returns {relative path: label}."""
    phone = smooth_photo(0)
    files = {}
    for i, orientation in enumerate((1, 3, 6, 8)):
        rel = f"手机 photos/IMG 竖 {orientation}.jpg"
        orientation_jpeg(phone, orientation, root / rel)
        files[rel] = i
    # the orientation-6 photo rotated by hand and stored losslessly: must give the same tensor as the JPEG
    stored = cv2.cvtColor(cv2.imread(str(root / "手机 photos/IMG 竖 1.jpg")), cv2.COLOR_BGR2RGB)
    save_pil(Image.fromarray(np.ascontiguousarray(EXIF_DISPLAY[6](stored))), root / "hand rotated/旋转 6.png", "PNG")
    files["hand rotated/旋转 6.png"] = 2
    other = smooth_photo(1)
    save_pil(Image.fromarray(other).convert("CMYK"), root / "misc/cmyk 印刷.jpg", "JPEG", quality=92)
    save_pil(Image.fromarray(other).convert("L"), root / "misc/grey 灰.jpg", "JPEG", quality=92)
    deep = (cv2.GaussianBlur(np.random.default_rng(2).integers(0, 65536, (300, 400, 3)).astype(np.float32),
                             (31, 31), 10)).astype(np.uint16)
    (root / "misc").mkdir(exist_ok=True)
    cv2.imencode(".png", deep)[1].tofile(str(root / "misc/depth 16.png"))
    cv2.imencode(".png", deep[..., 0])[1].tofile(str(root / "misc/grey 16.png"))
    save_pil(Image.fromarray(other).convert("P", palette=Image.Palette.ADAPTIVE), root / "misc/palette 调色板.png", "PNG")
    alpha = np.linspace(0, 255, 640, dtype=np.uint8)[None, :].repeat(480, axis=0)
    save_pil(Image.fromarray(np.dstack([smooth_photo(3), alpha]), "RGBA"), root / "misc/rgba 透明.png", "PNG")
    frames = [Image.fromarray(smooth_photo(4)).convert("P"), Image.fromarray(smooth_photo(5)).convert("P")]
    save_pil(frames[0], root / "misc/动画 anim.gif", "GIF", save_all=True, append_images=frames[1:])
    save_pil(Image.fromarray(smooth_photo(6)), root / "misc/web p.webp", "WEBP", quality=90)
    for i, rel in enumerate(["misc/cmyk 印刷.jpg", "misc/grey 灰.jpg", "misc/depth 16.png", "misc/grey 16.png",
                             "misc/palette 调色板.png", "misc/rgba 透明.png", "misc/动画 anim.gif", "misc/web p.webp"]):
        files[rel] = i % 10
    return files


# ------------------------------------------------------------------------------------ hostile files
def write_huge_png(path, width, height):
    """A valid 8-bit grey PNG of width x height black pixels, streamed to disk in a few MB of memory: one zlib
    block of rows, compressed from a reset state (a full flush), is repeated, then the remaining rows; the
    Adler-32 of the whole stream is computed block by block. 40000x40000 (1.6 gigapixels) takes 1.5 MB on disk
    and about a second; any decoder reading it would need the full width x height bytes."""
    import struct
    import zlib

    def chunk(f, kind, data):
        f.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))

    row = bytes(width + 1)  # filter byte 0 + a row of zeros
    per_block = max(1, (1 << 22) // len(row))
    blocks, rest = divmod(height, per_block)
    block = row * per_block
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    repeated = first.compress(block) + first.flush(zlib.Z_FULL_FLUSH)
    last = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = last.compress(row * rest) + last.flush()
    adler = 1
    for _ in range(blocks):
        adler = zlib.adler32(block, adler)
    adler = zlib.adler32(row * rest, adler)
    path = Path(path)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        chunk(f, b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        chunk(f, b"IDAT", b"\x78\x01")  # zlib header: deflate, 32 KB window
        for _ in range(blocks):
            chunk(f, b"IDAT", repeated)
        chunk(f, b"IDAT", tail + struct.pack(">I", adler))
        chunk(f, b"IEND", b"")
    return path


def make_special_files(root):
    """Real entries that are not regular files, named like images: a FIFO, a UNIX socket, a folder, and a
    symbolic link to /dev/zero. Returns ({name: path}, the bound socket, to close at the end)."""
    import socket

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    os.mkfifo(root / "fifo.png")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(root / "socket.png"))
    (root / "folder.png").mkdir()
    (root / "zero.png").symlink_to("/dev/zero")
    names = {"fifo.png": "a FIFO (named pipe)", "socket.png": "a socket", "folder.png": "a folder",
             "zero.png": "a character device"}
    return {name: (root / name, kind) for name, kind in names.items()}, sock
