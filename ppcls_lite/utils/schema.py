"""Defaults of the config sections that are plain settings (Global, AMP, EMA, Infer), written once.

Plain data, no imports: the config checks (ppcls_lite/config), the engine's settings, the tools and docs/CONFIG.md
all read these tables. Each value is what the code uses when the config leaves the key out. Sections built
from named parts (Arch, Loss, Optimizer, DataLoader, Metric) are described by their builders instead.
"""
from __future__ import annotations

# Global keys -> default when the key is absent.
GLOBAL_DEFAULTS: dict = {
    "checkpoints": None,             # a checkpoint prefix to resume from (or "auto" via --resume auto)
    "pretrained_model": None,        # weights to start from (a .pdparams/.safetensors prefix or URL)
    "output_dir": "./output/",       # runs go to <output_dir>/<Arch.name>/
    "device": "cpu",
    "save_interval": 1,              # epochs between epoch_N checkpoints
    "eval_during_train": True,
    "eval_interval": 1,              # epochs between evaluations
    "start_eval_epoch": 1,           # the first epoch evaluated (PaddleClas's key; the last epoch always is)
    "use_multilabel": False,         # PaddleClas's multi-label switch: sigmoid scores in infer/export/predictor
    "epochs": 10,
    "print_batch_step": 10,          # iterations between log lines
    "use_visualdl": False,
    "image_shape": [3, 224, 224],    # [C, H, W] of the model input (export, summaries)
    "save_inference_dir": "./inference",
    "to_static": False,
    "seed": 42,
    "cpu_threads": "auto",           # threads of Paddle's CPU kernels in each process: auto (this machine's cores,
                                     # shared by the launch ranks on it) or a number (utils/threads.py)
    "max_image_pixels": None,        # images above this many pixels are refused from their header before decoding;
                                     # None: $PPCLS_LITE_MAX_IMAGE_PIXELS or 90 megapixels; 0: no limit
    # Retrieval (RecModel): how eval and the exported model's post-process turn the embedding into features.
    "eval_mode": "classification",   # or "retrieval": Recallk / mAP / mINP over query and gallery features
    "retrieval_feature_from": "features",  # the RecModel output compared: "features" (neck) or "backbone"
    "feature_normalize": True,       # L2-normalise the features (cosine similarity)
    "feature_binarize": None,        # None, "round" (round(x) * 2 - 1) or "sign": binary codes
    "sim_block_size": 64,            # queries per block of the query x gallery similarity matrix
}

# AMP keys -> default (mixed precision is off unless use_amp is true).
AMP_DEFAULTS: dict = {
    "use_amp": False,
    "scale_loss": 1.0,
    "use_dynamic_loss_scaling": False,
    "level": "O1",
    "use_fp16_test": False,
    "use_promote": False,
}

# EMA keys -> default; EMA of the weights is on when the config has an EMA section at all.
EMA_DEFAULTS: dict = {"decay": 0.9999}

# Infer keys -> default (tools/infer.py and the engine's predict).
INFER_DEFAULTS: dict = {
    "infer_imgs": None,     # an image, a folder (searched recursively) or a `path [label]` list file
    "encoding": "utf-8",    # how an infer_imgs list file is read (e.g. gb18030 for lists from Chinese Windows)
    "batch_size": 1,        # images per forward pass
    "transforms": None,     # the op list (DecodeImage ... ToCHWImage); required for inference and export
    "PostProcess": None,    # {name: Topk, topk, class_id_map_file}; absent -> top-1 class ids
}
