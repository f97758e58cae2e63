"""The timm reference row of `tools/benchmark.py compare`: trains timm's `mobilenetv3_large_100` on a list of
photos the way timm's own training script reads them (Pillow decode, `create_transform` train transforms without
colour jitter: random resized crop, flip, normalise), SGD with momentum, and prints one
`step N batch_cost SECONDS` line per step (data wait included), like the engines' logs.

Runs in its own environment (torch, timm; no paddle, nothing else of ppcls_lite):

    PYTHONPATH=REPO python -m ppcls_lite.benchmark.timm_reference --root DIR --list LIST --steps 10

PyPI's torchvision wheels for Linux are CUDA builds whose compiled detection ops do not load next to the CPU
build of torch; timm's classification path needs none of them, so their registration is skipped.
"""
import argparse
import sys
import time
import types
from typing import List, Optional


def import_timm() -> types.ModuleType:
    """timm, with torchvision's compiled-op registrations skipped (see the module docstring)."""
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    import timm
    return timm


def main(argv: Optional[List[str]] = None) -> None:
    """Train `--steps` steps and print each step's time."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="image root of the list file")
    parser.add_argument("--list", required=True, help="`path label` lines")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--num_workers", type=int, default=4)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--class_num", type=int, default=102)
    args = parser.parse_args(argv)

    timm = import_timm()
    import torch
    from PIL import Image
    from timm.data import create_transform

    transform = create_transform(args.size, is_training=True, color_jitter=None, auto_augment=None)
    with open(args.list, encoding="utf-8") as f:
        samples = [line.rsplit(None, 1) for line in f if line.strip()]

    class Photos(torch.utils.data.Dataset):
        def __len__(self):
            return len(samples)

        def __getitem__(self, i):
            path, label = samples[i]
            with open(f"{args.root}/{path}", "rb") as fh:  # timm's default loader: Pillow, converted to RGB
                img = Image.open(fh).convert("RGB")
            return transform(img), int(label)

    loader = torch.utils.data.DataLoader(Photos(), batch_size=args.batch_size, shuffle=True, drop_last=True,
                                         num_workers=args.num_workers, persistent_workers=False)
    model = timm.create_model("mobilenetv3_large_100", num_classes=args.class_num)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.00375, momentum=0.9, weight_decay=1e-6)
    loss_fn = torch.nn.CrossEntropyLoss()
    print(f"torch {torch.__version__}, timm {timm.__version__}, threads {torch.get_num_threads()}", flush=True)
    step, tic = 0, time.time()
    while step < args.steps:
        for images, labels in loader:
            loss = loss_fn(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_value = float(loss.detach())
            step += 1
            print(f"step {step} batch_cost {time.time() - tic:.5f} loss {loss_value:.4f}", flush=True)
            tic = time.time()
            if step >= args.steps:
                break


if __name__ == "__main__":
    main()
