"""Engine pieces: checkpoint trio and atomic writes, resume errors, post-processing, infer inputs, EMA, seeding,
eval padding over ranks, non-finite loss, fine-tuning, to_static, and PaddleClas recipe configs."""
import csv
import json
import os
from pathlib import Path

import numpy as np
import paddle
import pytest
import yaml

from helpers import load_config, tiny_config
from ppcls_lite.engine import build_engine, checkpoint as ckpt
from ppcls_lite.engine.distributed import real_samples_on_rank
from ppcls_lite.engine.inference import collect_infer_inputs, write_predictions
from ppcls_lite.engine.loop import NonFiniteLossError
from ppcls_lite.engine.optimizer_state import rename_accumulators
from ppcls_lite.engine.run_log import MetricsCSV, read_metrics_csv
from ppcls_lite.pipeline.postprocess import Topk
from ppcls_lite.config import get_config
from ppcls_lite.utils import portable_save
from ppcls_lite.utils.ema import ModelEMA
from ppcls_lite.utils.seeding import get_rng_state, seed_everything, set_rng_state

REPO_ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------ checkpoints
def _small_state():
    return {"w": paddle.to_tensor(np.arange(6, dtype="float32").reshape(2, 3))}


def test_checkpoint_trio_roundtrip_leaves_no_temp_files(tmp_path):
    prefix = str(tmp_path / "run" / "latest")
    states = {"epoch": 3, "global_step": 30, "best_metric": 0.5, "best_epoch": 2, "rng": get_rng_state(),
              "config_digest": "abc"}
    ckpt.save_checkpoint(prefix, _small_state(), {"lr": paddle.to_tensor([0.1])}, states)
    names = sorted(os.listdir(tmp_path / "run"))
    assert names == ["latest.pdopt", "latest.pdparams", "latest.pdstates"]
    params, opt, loaded = ckpt.load_checkpoint(prefix + ".pdparams", expected_digest="abc")
    np.testing.assert_array_equal(np.asarray(params["w"]), np.arange(6).reshape(2, 3))
    assert loaded["epoch"] == 3 and loaded["best_epoch"] == 2 and loaded["format_version"] == ckpt.FORMAT_VERSION


def test_atomic_save_failure_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "best_model.pdparams"
    ckpt.atomic_save(_small_state(), str(path))
    before = path.read_bytes()

    def broken_save(obj, target):
        Path(target).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(portable_save, "portable_save", broken_save)
    with pytest.raises(OSError):
        ckpt.atomic_save({"w": paddle.zeros([1])}, str(path))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["best_model.pdparams"]  # the temp file was removed


def test_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.pdparams"):
        ckpt.load_checkpoint(str(tmp_path / "nowhere"))
    prefix = str(tmp_path / "weights_only")
    ckpt.atomic_save(_small_state(), prefix + ".pdparams")
    with pytest.raises(ckpt.CheckpointError, match=r"weights_only\.pdstates.*Global\.pretrained_model"):
        ckpt.load_checkpoint(prefix)
    prefix = str(tmp_path / "other")
    ckpt.save_checkpoint(prefix, _small_state(), {}, {"epoch": 1, "config_digest": "digest-of-another-arch"})
    with pytest.raises(ckpt.CheckpointError, match=r"other\.pdstates.*different model"):
        ckpt.load_checkpoint(prefix, expected_digest="mine")
    Path(prefix + ".pdstates").write_bytes(b"\x00garbage")
    with pytest.raises(ckpt.CheckpointError, match=r"other\.pdstates"):
        ckpt.load_checkpoint(prefix)


def test_torn_trio_is_detected_and_auto_resume_takes_the_newest_consistent_one(tmp_path):
    run = tmp_path / "run"
    for epoch in (1, 2):
        state = {"w": paddle.full([2, 3], float(epoch))}
        ckpt.save_checkpoint(str(run / f"epoch_{epoch}"), state, {}, {"epoch": epoch})
        if epoch == 1:
            ckpt.save_checkpoint(str(run / "latest"), state, {}, {"epoch": epoch})
    # A crash between renames while overwriting latest: epoch 2 weights beside epoch 1 states.
    (run / "latest.pdparams").write_bytes((run / "epoch_2.pdparams").read_bytes())
    with pytest.raises(ckpt.CheckpointError, match=r"latest is inconsistent.*latest\.pdparams"):
        ckpt.load_checkpoint(str(run / "latest"))
    prefix, skipped = ckpt.newest_valid_checkpoint(str(run))
    assert prefix == str(run / "epoch_2") and any("latest" in reason for reason in skipped)
    (run / ".latest.pdopt.abc123.tmp").write_bytes(b"partial")
    assert ckpt.remove_stale_temp_files(str(run)) == [".latest.pdopt.abc123.tmp"]
    assert ckpt.newest_valid_checkpoint(str(tmp_path / "empty")) == (None, [])


def test_config_digest_tracks_the_model_defining_config():
    base = ckpt.config_digest({"name": "MobileNetV3_small_x0_35", "class_num": 10}, 10)
    assert base == ckpt.config_digest({"class_num": 10, "name": "MobileNetV3_small_x0_35", "pretrained": "x"}, 10)
    assert base != ckpt.config_digest({"name": "MobileNetV3_small_x0_35", "class_num": 5}, 5)
    assert base != ckpt.config_digest({"name": "MobileNetV3_small_x0_5", "class_num": 10}, 10)


def test_optimizer_state_is_rekeyed_by_parameter_name():
    state = {"conv2d_1.w_0_velocity_0": 1, "conv2d_11.w_0_velocity_0": 2, "LR_Scheduler": {"last_epoch": 3},
             "master_weights": {"conv2d_1.w_0": 5}}
    # conv2d_1 must not capture conv2d_11's entries: the longest name that prefixes a key wins.
    out = rename_accumulators(state, {"conv2d_1.w_0": "conv2d_101.w_0", "conv2d_11.w_0": "conv2d_111.w_0"})
    assert out == {"conv2d_101.w_0_velocity_0": 1, "conv2d_111.w_0_velocity_0": 2, "LR_Scheduler": {"last_epoch": 3},
                   "master_weights": {"conv2d_101.w_0": 5}}


# ------------------------------------------------------------------------------------------ helpers
@pytest.mark.parametrize("n,nranks,batch", [(9, 2, 4), (10, 2, 4), (7, 3, 2), (100, 4, 8), (5, 4, 64), (1, 2, 1)])
def test_real_samples_on_rank_matches_distributed_batch_sampler(n, nranks, batch):
    """Keeping the first real_samples_on_rank() samples of every rank counts each eval sample exactly once."""
    dataset = list(range(n))
    kept = []
    for rank in range(nranks):
        sampler = paddle.io.DistributedBatchSampler(dataset, batch_size=batch, num_replicas=nranks, rank=rank,
                                                    shuffle=False)
        indices = [i for b in sampler for i in b]
        kept += indices[:real_samples_on_rank(n, nranks, rank, batch)]
    assert sorted(kept) == dataset


def test_topk_postprocess_and_shipped_label_fallback(tmp_path):
    label_file = tmp_path / "labels.txt"
    label_file.write_text("0 cat\n1 big dog\n2 bird\n")
    results = Topk(topk=5, class_id_map_file=str(label_file))(np.array([[0.1, 0.7, 0.2]]), ["a.png"])
    assert results == [{"file_name": "a.png", "class_ids": [1, 2, 0], "scores": [0.7, 0.2, 0.1],
                        "label_names": ["big dog", "bird", "cat"]}]
    topk = Topk(topk=1, class_id_map_file="ppcls/utils/imagenet1k_label_list.txt")  # PaddleClas's path
    assert topk.label_list[0].startswith("tench")
    with pytest.raises(FileNotFoundError, match="class_id_map_file"):
        Topk(topk=1, class_id_map_file=str(tmp_path / "missing.txt"))


def test_collect_infer_inputs_image_folder_and_list(tiny_dataset):
    one = collect_infer_inputs(str(tiny_dataset / "circle" / "0.png"))
    assert one == [str(tiny_dataset / "circle" / "0.png")]
    folder = collect_infer_inputs(str(tiny_dataset))
    assert len(folder) == 18 and all(f.endswith(".png") for f in folder)
    listed = collect_infer_inputs(str(tiny_dataset / "val_list.txt"))
    assert len(listed) == 9 and all(os.path.isfile(f) for f in listed)
    (tiny_dataset / "bad_list.txt").write_text("circle/0.png 0\nnot/there.png 1\n")  # reported when read
    assert collect_infer_inputs(str(tiny_dataset / "bad_list.txt"))[1] == str(tiny_dataset / "not/there.png")
    (tiny_dataset / "bad_list.txt").write_text("# wrong folder\nnot/there.png 1\n")
    with pytest.raises(FileNotFoundError, match=r"bad_list\.txt, line 2"):
        collect_infer_inputs(str(tiny_dataset / "bad_list.txt"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        collect_infer_inputs(str(tiny_dataset / "nope"))


def test_write_predictions_csv_and_jsonl(tmp_path):
    results = [{"file_name": "a.png", "class_ids": [2, 0], "scores": [0.9, 0.05], "label_names": ["bird", "cat"]}]
    write_predictions(results, tmp_path / "p.csv")
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert rows == [{"file_name": "a.png", "class_ids": "2 0", "scores": "0.9 0.05", "label_names": "bird cat"}]
    write_predictions(results, tmp_path / "p.jsonl")
    assert [json.loads(line) for line in open(tmp_path / "p.jsonl")] == results
    with pytest.raises(ValueError, match=r"\.csv or \.jsonl"):
        write_predictions(results, tmp_path / "p.txt")


def test_metrics_csv_keeps_done_epochs_on_resume(tmp_path):
    path = str(tmp_path / "metrics.csv")
    columns = ["epoch", "lr", "train_loss", "train_top1", "eval_loss", "eval_top1", "epoch_time_s"]
    writer = MetricsCSV(path, 1, columns)
    for epoch in (1, 2, 3):
        writer.write(epoch, 0.1, {"loss": 1.0, "top1": 0.5}, {"loss": 2.0, "top1": 0.4} if epoch != 2 else None, 1.0)
    MetricsCSV(path, 3, columns).write(3, 0.05, {"loss": 0.5, "top1": 0.7}, None, 2.0)  # resumed after epoch 2
    rows = list(csv.DictReader(open(path)))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert rows[1]["eval_top1"] == "" and rows[2]["train_top1"] == "0.700000"
    assert list(rows[0]) == columns
    read = read_metrics_csv(path)  # what the curves are drawn from reads what the writer wrote
    assert list(read["lr"]) == [0.1, 0.1, 0.05] and np.isnan(read["eval_top1"][1])


def test_ema_update_and_temporary_swap():
    paddle.seed(0)
    model = paddle.nn.Linear(2, 2)
    ema = ModelEMA(model, decay=0.5)
    start = model.weight.numpy().copy()
    model.weight.set_value(paddle.zeros([2, 2]))
    ema.update(model)
    np.testing.assert_allclose(ema.shadow["weight"].numpy(), 0.5 * start, rtol=1e-6)
    with ema.applied_to(model):
        np.testing.assert_allclose(model.weight.numpy(), 0.5 * start, rtol=1e-6)
    np.testing.assert_array_equal(model.weight.numpy(), np.zeros((2, 2)))
    restored = ModelEMA(model, decay=0.5)
    restored.set_state_dict(ema.state_dict())
    np.testing.assert_allclose(restored.shadow["weight"].numpy(), 0.5 * start, rtol=1e-6)
    with pytest.raises(ValueError, match="EMA.decay"):
        ModelEMA(model, decay=1.5)


def test_rng_state_roundtrip():
    seed_everything(7)
    state = get_rng_state()
    first = (np.random.rand(), paddle.rand([2]).numpy(), __import__("random").random())
    set_rng_state(state)
    second = (np.random.rand(), paddle.rand([2]).numpy(), __import__("random").random())
    assert first[0] == second[0] and first[2] == second[2]
    np.testing.assert_array_equal(first[1], second[1])


@pytest.mark.skipif(paddle.is_compiled_with_cuda(), reason="this PaddlePaddle build has CUDA")
def test_gpu_on_cpu_build_is_a_clear_error(tiny_dataset, tmp_path):
    config = load_config(tiny_config(tiny_dataset, tmp_path / "out"), tmp_path, ["Global.device=gpu"])
    with pytest.raises(ValueError, match=r"CUDA.*paddlepaddle-gpu.*Global\.device=cpu"):  # what is missing, the fix
        build_engine(config, "train")


def test_recipe_without_imagenet_points_to_quick_start(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./dataset/ILSVRC2012 here
    config = get_config(str(REPO_ROOT / "configs" / "MobileNetV3_large_x1_0.yaml"), ["Global.device=cpu"])
    with pytest.raises(FileNotFoundError, match=r"dataset/ILSVRC2012/train_list\.txt.*configs/quick_start/"):
        build_engine(config, "train")


def test_amp_on_cpu_is_disabled_with_a_message_and_training_objects_stay_fp32(tiny_dataset, tmp_path):
    config = load_config(tiny_config(tiny_dataset, tmp_path / "out"), tmp_path,
                         ["AMP.use_amp=True", "AMP.level=O2", "AMP.scale_loss=128.0"])
    engine = build_engine(config, "train")
    assert engine.amp_enabled is False and engine.scaler is None
    assert all(p.dtype == paddle.float32 for p in engine.model.parameters())


def test_resume_auto_without_checkpoint_names_the_dir(tiny_dataset, tmp_path):
    config = load_config(tiny_config(tiny_dataset, tmp_path / "out"), tmp_path, ["Global.checkpoints=auto"])
    with pytest.raises(FileNotFoundError, match=r"out/MobileNetV3_small_x0_35.*without --resume"):
        build_engine(config, "train")


# ------------------------------------------------------------------------------------------ slow: training
@pytest.mark.slow
def test_nan_loss_stops_with_epoch_iteration_and_last_checkpoint(tiny_dataset, tmp_path):
    config = load_config(tiny_config(tiny_dataset, tmp_path / "out", epochs=3), tmp_path)
    engine = build_engine(config, "train")
    real_loss, calls = engine.train_loss, []

    def loss_going_nan(logits, labels):
        calls.append(1)
        out = real_loss(logits, labels)
        if len(calls) == 5:  # 3 steps per epoch: epoch 2, iteration 2
            out["loss"] = out["loss"] * float("nan")
        return out

    engine.train_loss = loss_going_nan
    with pytest.raises(NonFiniteLossError) as info:
        engine.train()
    message = str(info.value)
    assert "epoch 2, iteration 2" in message
    assert os.path.join("out", "MobileNetV3_small_x0_35", "latest") in message
    assert ckpt.load_checkpoint(str(tmp_path / "out" / "MobileNetV3_small_x0_35" / "latest"))[2]["epoch"] == 1


@pytest.mark.slow
def test_huge_learning_rate_stops_training(tiny_dataset, tmp_path):
    config = load_config(tiny_config(tiny_dataset, tmp_path / "out", epochs=3), tmp_path,
                         ["Optimizer.lr.learning_rate=1e9"])
    with pytest.raises(NonFiniteLossError, match=r"at epoch \d+, iteration \d+"):
        build_engine(config, "train").train()


@pytest.mark.slow
def test_training_outputs_and_foreign_arch_checkpoint(tiny_dataset, tmp_path):
    config = load_config(tiny_config(tiny_dataset, tmp_path / "out", epochs=2), tmp_path, ["Global.use_visualdl=True"])
    result = build_engine(config, "train").train()
    run = tmp_path / "out" / "MobileNetV3_small_x0_35"
    for name in ("latest", "best_model", "epoch_1", "epoch_2"):
        for suffix in ckpt.SUFFIXES:
            assert (run / (name + suffix)).is_file()
    assert not [f for f in os.listdir(run) if f.endswith(".tmp")]
    assert yaml.safe_load((run / "config.yaml").read_text())["Arch"]["name"] == "MobileNetV3_small_x0_35"
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert list(rows[0]) == ["epoch", "lr", "train_loss", "train_top1", "train_top5", "eval_loss", "eval_top1",
                             "eval_top5", "epoch_time_s"]  # top5 keeps its name on 3 classes, as in PaddleClas
    assert float(rows[result["best_epoch"] - 1]["eval_top1"]) == pytest.approx(result["best_metric"], abs=1e-6)
    assert "[Train][Epoch 1/2][Iter 1/3] lr:" in (run / "train.log").read_text()
    assert "ips:" in (run / "train.log").read_text() and "eta:" in (run / "train.log").read_text()
    assert any(f.startswith("vdlrecords") for f in os.listdir(run / "vdl"))

    # Resuming that checkpoint with another Arch is refused, naming the file.
    other = tiny_config(tiny_dataset, tmp_path / "out", arch="MobileNetV3_small_x0_5")
    other["Global"]["checkpoints"] = str(run / "latest")
    with pytest.raises(ckpt.CheckpointError, match=r"latest\.pdstates.*different model"):
        build_engine(load_config(other, tmp_path), "train")


@pytest.mark.slow
def test_finetune_with_other_class_num_and_frozen_backbone(tiny_dataset, tmp_path):
    source = load_config(tiny_config(tiny_dataset, tmp_path / "src", epochs=2), tmp_path)
    build_engine(source, "train").train()
    pretrained = str(tmp_path / "src" / "MobileNetV3_small_x0_35" / "best_model")
    config = tiny_config(tiny_dataset, tmp_path / "ft", class_num=5, epochs=2)
    config["Global"]["pretrained_model"] = pretrained
    config["Arch"]["freeze_befor"] = "blocks.2"
    engine = build_engine(load_config(config, tmp_path), "train")
    source_state = paddle.load(pretrained + ".pdparams")
    model_state = engine.model.state_dict()
    np.testing.assert_array_equal(model_state["conv.conv.weight"].numpy(), source_state["conv.conv.weight"].numpy())
    assert engine.model.fc.weight.shape[-1] == 5  # classifier re-initialised for 5 classes
    optimized = {id(p) for p in engine.optimizer._parameter_list} if not isinstance(
        engine.optimizer._parameter_list[0], dict) else {id(p) for g in engine.optimizer._parameter_list
                                                          for p in g["params"]}
    frozen = [p for n, p in engine.model.named_parameters() if n.startswith("blocks.0.")]
    assert frozen and all(p.stop_gradient for p in frozen)
    assert not any(id(p) in optimized for p in frozen)
    before = {n: p.numpy().copy() for n, p in engine.model.named_parameters() if n.startswith("blocks.0.")}
    engine.train()
    for name, value in engine.model.named_parameters():
        if name in before and not name.endswith(("_mean", "_variance")):
            np.testing.assert_array_equal(value.numpy(), before[name])


@pytest.mark.slow
def test_paddleclas_recipe_config_runs_with_overrides(tiny_dataset, tmp_path):
    """configs/MobileNetV3_large_x1_0.yaml unchanged; only data paths, epochs, device and sizes come from -o."""
    root = str(tiny_dataset)
    overrides = [
        "Global.device=cpu", "Global.epochs=1", f"Global.output_dir={tmp_path / 'out'}", "Arch.class_num=3",
        "Optimizer.lr.warmup_epoch=0",
        f"DataLoader.Train.dataset.image_root={root}", f"DataLoader.Train.dataset.cls_label_path={root}/train_list.txt",
        f"DataLoader.Eval.dataset.image_root={root}", f"DataLoader.Eval.dataset.cls_label_path={root}/val_list.txt",
        "DataLoader.Train.dataset.transform_ops.1.RandCropImage.size=32",
        "DataLoader.Eval.dataset.transform_ops.1.ResizeImage.resize_short=36",
        "DataLoader.Eval.dataset.transform_ops.2.CropImage.size=32",
        "DataLoader.Train.sampler.batch_size=4", "DataLoader.Eval.sampler.batch_size=4",
        "DataLoader.Train.loader.num_workers=0", "DataLoader.Eval.loader.num_workers=0",
    ]
    config = get_config(str(REPO_ROOT / "configs" / "MobileNetV3_large_x1_0.yaml"), overrides)
    result = build_engine(config, "train").train()
    assert 0.0 <= result["best_metric"] <= 1.0
    assert (tmp_path / "out" / "MobileNetV3_large_x1_0" / "best_model.pdstates").is_file()


def test_train_state_save_restore_roundtrip(tmp_path):
    """TrainState.restore(prefix) gives fresh objects exactly what save(prefix) wrote: weights, optimizer
    accumulators, scheduler position, EMA, counters, best metric and the RNG states."""
    from ppcls_lite.engine.checkpoint import TrainState

    def make_state():
        model = paddle.nn.Linear(3, 2)
        sched = paddle.optimizer.lr.CosineAnnealingDecay(learning_rate=0.1, T_max=10)
        opt = paddle.optimizer.Momentum(learning_rate=sched, momentum=0.9, parameters=model.parameters())
        return TrainState(model, opt, sched, ema=ModelEMA(model, 0.5))

    paddle.seed(1)
    saved = make_state()
    for _ in range(3):
        saved.model(paddle.rand([4, 3])).mean().backward()
        saved.optimizer.step()
        saved.optimizer.clear_grad()
        saved.lr_scheduler.step()
        saved.ema.update(saved.model)
    saved.epoch, saved.global_step, saved.best_metric, saved.best_epoch = 2, 3, 0.75, 1
    seed_everything(7)
    saved.save(str(tmp_path / "latest"), {"epochs": 4, "config_digest": None, "arch": "Linear"})
    expected_next = np.random.rand()

    paddle.seed(2)  # other initial weights, another parameter naming in this process
    restored = make_state()
    states = restored.restore(str(tmp_path / "latest"), None, "Linear")
    assert states["epochs"] == 4 and states["arch"] == "Linear"
    assert (restored.epoch, restored.global_step, restored.best_metric, restored.best_epoch) == (2, 3, 0.75, 1)
    for name, value in saved.model.state_dict().items():
        assert np.array_equal(restored.model.state_dict()[name].numpy(), value.numpy()), name
    assert restored.lr_scheduler.last_epoch == saved.lr_scheduler.last_epoch
    assert restored.optimizer.get_lr() == saved.optimizer.get_lr()
    saved_acc = {k: v for k, v in saved.optimizer.state_dict().items() if "velocity" in k}
    restored_acc = {k: v for k, v in restored.optimizer.state_dict().items() if "velocity" in k}
    assert sorted(map(lambda t: t.numpy().tobytes(), saved_acc.values())) == \
        sorted(map(lambda t: t.numpy().tobytes(), restored_acc.values()))
    for name, value in saved.ema.state_dict().items():
        assert np.array_equal(restored.ema.state_dict()[name], value), name
    np.random.seed(0)
    restored.apply_rng()
    assert np.random.rand() == expected_next


def test_run_log_prints_every_print_batch_step_and_the_last_iteration(tmp_path):
    """RunLog's iteration lines: every print_batch_step-th iteration plus the epoch's last, with lr, loss,
    reader_cost, batch_cost, ips and an ETA over the iterations still to run."""
    from ppcls_lite.engine.run_log import RunLog, StepRecord
    from ppcls_lite.utils import logger

    log_file = tmp_path / "train.log"
    logger.init_logger(str(log_file))
    run_log = RunLog(str(tmp_path), epochs=2, steps_per_epoch=5, print_batch_step=2)
    run_log.open_metrics_csv(1, [], None)
    run_log.start_epoch()
    for iter_id in range(1, 6):
        run_log.step(StepRecord(epoch=1, iter_id=iter_id, global_step=iter_id, lr=0.1 / iter_id, loss=1.0,
                                loss_avg=1.0, batch_metrics={}, reader_cost=0.5, batch_cost=2.0, batch_size=4))
    run_log.end_epoch(1, {"loss": 1.0}, None, 10.0)
    logger.init_logger(None)
    lines = [line for line in log_file.read_text(encoding="utf-8").splitlines() if "[Iter " in line]
    assert [line.split("[Iter ")[1].split("]")[0] for line in lines] == ["2/5", "4/5", "5/5"]
    # 2 s per step: after iteration 2 of epoch 1 there are 3 + 5 steps left -> 16 s.
    assert "lr: 0.050000" in lines[0] and "eta: 0:00:16" in lines[0]
    assert "reader_cost: 0.50000 s" in lines[0] and "batch_cost: 2.00000 s" in lines[0] and "ips: 2.0 img/s" in lines[0]
    rows = read_metrics_csv(tmp_path / "metrics.csv")
    assert list(rows) == ["epoch", "lr", "train_loss", "epoch_time_s"]  # no Metric.Train keys, no evaluation
    assert list(rows["epoch"]) == [1.0] and rows["lr"][0] == pytest.approx(0.02)  # the LR of the last step
