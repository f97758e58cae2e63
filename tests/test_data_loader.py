"""build_dataloader: PaddleClas sections, errors, determinism (workers and resume), bad-image handling."""
import logging
import random

import cv2
import numpy as np
import paddle
import pytest

from ppcls_lite.data import BadImageError, build_dataloader

NORMALIZE = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                "order": ""}}
TRAIN_OPS = [{"DecodeImage": {"to_rgb": True, "channel_first": False}},
             {"RandCropImage": {"size": 24}}, {"RandFlipImage": {"flip_code": 1}}, NORMALIZE]
EVAL_OPS = [{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"ResizeImage": {"resize_short": 28}},
            {"CropImage": {"size": 24}}, NORMALIZE]


def config(root, list_name="train_list.txt", ops=TRAIN_OPS, batch_size=4, shuffle=True, num_workers=0,
           sampler="DistributedBatchSampler", mode="Train", **dataset_extra):
    dataset = {"name": "ImageNetDataset", "image_root": str(root), "cls_label_path": str(root / list_name),
               "transform_ops": ops, **dataset_extra}
    return {mode: {"dataset": dataset,
                   "sampler": {"name": sampler, "batch_size": batch_size, "drop_last": False, "shuffle": shuffle},
                   "loader": {"num_workers": num_workers, "use_shared_memory": True}}}


def epoch_batches(loader, epoch):
    loader.set_epoch(epoch)
    return [(x.numpy(), y.numpy()) for x, y in loader]


def same_batches(a, b):
    return len(a) == len(b) and all(np.array_equal(xa, xb) and np.array_equal(ya, yb)
                                    for (xa, ya), (xb, yb) in zip(a, b))


def test_train_and_eval_loaders(tiny_dataset):
    train = build_dataloader(config(tiny_dataset), "Train", seed=0, class_num=3)
    assert len(train) == 3  # 9 images, batch 4
    assert train.dataset.class_num == 3 and len(train.dataset.samples) == 9
    assert train.dataset.label_names == ["circle", "square", "stripes"]
    batches = epoch_batches(train, 0)
    assert [x.shape for x, _ in batches] == [(4, 3, 24, 24), (4, 3, 24, 24), (1, 3, 24, 24)]
    x, y = next(iter(train))
    assert isinstance(x, paddle.Tensor) and x.dtype == paddle.float32
    assert y.dtype == paddle.int64 and y.shape == [4]
    assert sorted(np.concatenate([y for _, y in batches]).tolist()) == [0] * 3 + [1] * 3 + [2] * 3

    ev = build_dataloader(config(tiny_dataset, "val_list.txt", EVAL_OPS, shuffle=False, mode="Eval"), "Eval")
    labels = np.concatenate([y for _, y in epoch_batches(ev, 0)])
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # list order kept without shuffle


def test_image_folder_and_batch_sampler(tiny_dataset):
    (tiny_dataset / "train_list.txt").unlink()
    cfg = config(tiny_dataset, sampler="BatchSampler", batch_size=5)
    cfg["Train"]["dataset"] = {"name": "ImageFolderDataset", "image_root": str(tiny_dataset),
                               "transform_ops": TRAIN_OPS}
    loader = build_dataloader(cfg, "Train", seed=3, class_num=3)
    assert len(loader) == 4 and len(loader.dataset) == 18
    a, b = epoch_batches(loader, 0), epoch_batches(loader, 0)
    assert same_batches(a, b)
    assert not same_batches(a, epoch_batches(loader, 1))


def test_mixup_gives_soft_targets(tiny_dataset):
    cfg = config(tiny_dataset, batch_transform_ops=[
        {"OpSampler": {"MixupOperator": {"alpha": 0.8, "prob": 0.5}, "CutmixOperator": {"alpha": 1.0, "prob": 0.5}}}])
    loader = build_dataloader(cfg, "Train", class_num=3)
    for x, y in loader:
        assert y.dtype == paddle.float32 and y.shape == [x.shape[0], 3]
        np.testing.assert_allclose(y.numpy().sum(1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="class_num"):
        build_dataloader(cfg, "Train", class_num=None)


def test_unknown_names_list_valid_ones(tiny_dataset):
    cfg = config(tiny_dataset)
    cfg["Train"]["dataset"]["name"] = "ImageNetDatset"
    with pytest.raises(ValueError, match=r"'ImageNetDatset'.*DataLoader.Train.dataset.name.*'ImageNetDataset'"):
        build_dataloader(cfg, "Train")
    cfg = config(tiny_dataset, sampler="RandomSampler")
    with pytest.raises(ValueError, match="unknown sampler .RandomSampler.*Valid samplers: .*DistributedBatchSampler"):
        build_dataloader(cfg, "Train")
    cfg = config(tiny_dataset, ops=[{"DecodeImage": None}, {"Blur": {"k": 3}}])
    with pytest.raises(ValueError, match="unknown transform op .Blur.*Valid transform ops: .*DecodeImage"):
        build_dataloader(cfg, "Train")
    cfg = config(tiny_dataset, image_rooot="x")
    with pytest.raises(ValueError, match=r"'image_rooot'.*cls_label_path.*'image_root'"):  # the key, valid ones
        build_dataloader(cfg, "Train")
    with pytest.raises(KeyError, match="DataLoader.Eval is missing"):
        build_dataloader(config(tiny_dataset), "Eval")
    with pytest.raises(ValueError, match=r"train_list.txt:7: label 2 is outside \[0, 2\)"):
        build_dataloader(config(tiny_dataset), "Train", class_num=2)


def test_distributed_sampler_shards_by_rank(tiny_dataset, monkeypatch):
    """With 2 ranks (as paddle.distributed.launch sets them), each rank gets a disjoint half of one shuffle."""
    cfg = config(tiny_dataset, "train_list.txt", EVAL_OPS, batch_size=2)
    shards = []
    for rank in (0, 1):
        monkeypatch.setenv("PADDLE_TRAINERS_NUM", "2")
        monkeypatch.setenv("PADDLE_TRAINER_ID", str(rank))
        loader = build_dataloader(cfg, "Train", seed=5)
        assert loader.rank == rank
        assert len(loader) == 3  # ceil(9 / 2) = 5 samples per rank, batch 2
        loader.set_epoch(1)
        loader._seed_epoch()  # what iterating does first; then read the indices the sampler hands out
        shards.append([i for batch in loader.batch_sampler for i in batch])
    assert len(shards[0]) == len(shards[1]) == 5
    assert set(shards[0]) | set(shards[1]) == set(range(9))  # 9 samples padded to 10: one repeats
    assert len(set(shards[0]) & set(shards[1])) <= 1


def test_resume_sees_same_epoch_data_main_process(tiny_dataset):
    """num_workers 0: epoch k's batches depend only on (seed, k), whatever ran before."""
    uninterrupted = build_dataloader(config(tiny_dataset), "Train", seed=7)
    runs = [epoch_batches(uninterrupted, e) for e in range(3)]
    assert not same_batches(runs[1], runs[2])  # epochs differ (shuffle and random crops)

    random.seed(123)  # whatever else touched the global RNGs before the resume
    np.random.seed(123)
    resumed = build_dataloader(config(tiny_dataset), "Train", seed=7)
    assert same_batches(epoch_batches(resumed, 2), runs[2])
    other_seed = build_dataloader(config(tiny_dataset), "Train", seed=8)
    assert not same_batches(epoch_batches(other_seed, 2), runs[2])


def test_two_workers_are_reproducible(tiny_dataset):
    def loader():
        return build_dataloader(config(tiny_dataset, num_workers=2, batch_size=3), "Train", seed=11)

    run = loader()
    first = [epoch_batches(run, e) for e in (0, 1)]
    run = loader()
    second = [epoch_batches(run, e) for e in (0, 1)]
    assert same_batches(first[0], second[0]) and same_batches(first[1], second[1])
    assert not same_batches(first[0], first[1])
    order0 = np.concatenate([y for _, y in first[0]])
    order1 = np.concatenate([y for _, y in first[1]])
    assert sorted(order0.tolist()) == sorted(order1.tolist())
    assert order0.tolist() != order1.tolist()  # a new shuffle each epoch
    # Resuming at epoch 1 with a fresh loader gives the same data as the uninterrupted run.
    assert same_batches(epoch_batches(loader(), 1), first[1])


# ---------------------------------------------------------------- bad images

def make_bad_files(root):
    """Overwrite some train images with broken ones; return the list file names of the broken entries."""
    good_png = (root / "circle/0.png").read_bytes()
    ok, jpg = cv2.imencode(".jpg", np.full((32, 32, 3), 200, np.uint8))
    (root / "square/0.png").write_bytes(b"\x89PNG garbage garbage")          # corrupt bytes
    (root / "square/2.png").write_bytes(good_png[: len(good_png) // 2])      # truncated PNG
    (root / "bad.jpg").write_bytes(jpg.tobytes()[: len(jpg) // 2])           # truncated JPEG
    (root / "empty.png").write_bytes(b"")                                    # empty file
    lines = (root / "train_list.txt").read_text().splitlines()
    lines += ["bad.jpg 0", "empty.png 1"]
    (root / "train_list.txt").write_text("\n".join(lines) + "\n")
    return ["square/0.png", "square/2.png", "bad.jpg", "empty.png"]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_bad_image_error_names_file_and_line(tiny_dataset, num_workers):
    make_bad_files(tiny_dataset)
    loader = build_dataloader(config(tiny_dataset, shuffle=False, batch_size=1, num_workers=num_workers), "Train")
    with pytest.raises(BadImageError, match=r"square/0.png \(.*train_list.txt:4\).*skip_bad_images"):
        for _ in loader:
            pass
    ds = loader.dataset
    for index, name in enumerate(p for p, _ in ds.samples):
        if name.endswith(("bad.jpg", "empty.png", "square/2.png")):
            with pytest.raises(BadImageError, match=name.split("/")[-1]):
                ds[index]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_skip_bad_images(tiny_dataset, caplog, num_workers):
    broken = make_bad_files(tiny_dataset)
    cfg = config(tiny_dataset, shuffle=False, batch_size=4, num_workers=num_workers, skip_bad_images=True)
    loader = build_dataloader(cfg, "Train")
    assert len(loader.dataset) == 11
    with caplog.at_level(logging.WARNING):
        batches = epoch_batches(loader, 0)
    sizes = [x.shape[0] for x, _ in batches]
    assert sum(sizes) == 11 - len(broken)  # skipped, not replaced by other samples
    assert min(sizes) < 4
    assert sorted(s.split(" (")[0].split("/tiny/")[1] for s in loader.bad_images) == sorted(broken)
    # A second epoch reports again (once per epoch), and still never substitutes samples.
    assert sum(x.shape[0] for x, _ in epoch_batches(loader, 1)) == 11 - len(broken)
    assert len(loader.bad_images) == len(broken)
    # The run's summary counts each skipped file once, by kind.
    assert loader.skip_summary().startswith("DataLoader.Train left out 4 images in this run")
    assert "4 while reading (4 unreadable)" in loader.skip_summary()
    if caplog.records:  # the project logger may not propagate to logging; bad_images is the contract
        assert any("skipped 4 images (4 unreadable" in r.getMessage() for r in caplog.records)


def test_skip_all_bad_batch(tiny_dataset):
    """A batch with only bad images disappears instead of yielding an empty tensor."""
    make_bad_files(tiny_dataset)
    lst = tiny_dataset / "bad_only.txt"
    lst.write_text("empty.png 0\nbad.jpg 1\ncircle/0.png 0\n")
    cfg = config(tiny_dataset, "bad_only.txt", shuffle=False, batch_size=2, skip_bad_images=True)
    loader = build_dataloader(cfg, "Train")
    batches = epoch_batches(loader, 0)
    assert [x.shape[0] for x, _ in batches] == [1]
    assert len(loader.bad_images) == 2


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # paddle's reader thread
def test_worker_failure_says_how_to_debug(tiny_dataset):
    """Any other error inside a worker (here a crop larger than the image) points to num_workers=0."""
    ops = [{"DecodeImage": None}, {"CropImage": {"size": 64}}]
    loader = build_dataloader(config(tiny_dataset, ops=ops, num_workers=2), "Train")
    with pytest.raises(RuntimeError, match="num_workers=0"):
        for _ in loader:
            pass
    loader = build_dataloader(config(tiny_dataset, ops=ops, num_workers=0), "Train")
    with pytest.raises(ValueError, match="smaller than the crop"):
        for _ in loader:
            pass
