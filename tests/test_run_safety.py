"""Run safety: a new run never overwrites an earlier run's checkpoints (`--overwrite` moves them aside), no metric
is computed from an Eval loader that saw nothing, and Ctrl-C says truly what was saved and how to go on."""
import csv

import pytest
import yaml

from ppcls_lite.engine import RunDirError, build_engine
from helpers import (
    TINY_ARCH, ctrl_c_train, load_config, record_lr, run_tool, tiny_config, tiny_train_config, write_config,
)

ARCH = "MobileNetV3_small_x0_35"


def snapshot(folder):
    """{relative path: bytes} of every file below `folder`."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def train_tool(config, *args, timeout=300):
    """python tools/train.py -c CONFIG ARGS... in a subprocess."""
    return run_tool("train.py", "-c", config, *args, timeout=timeout)


# ---------------------------------------------------------------------------------------------- run folders
@pytest.mark.slow
def test_new_run_refuses_a_folder_with_checkpoints_and_writes_nothing(tiny_dataset, tmp_path):
    config = load_config(tiny_config(tiny_dataset, tmp_path / "out", epochs=1), tmp_path)
    build_engine(config, "train").train()
    run = tmp_path / "out" / ARCH
    before = snapshot(run)
    with pytest.raises(RunDirError) as info:
        build_engine(load_config(tiny_config(tiny_dataset, tmp_path / "out", epochs=2), tmp_path), "train")
    message = str(info.value)
    assert str(run) in message and "(best_model, epoch_1, latest)" in message
    for choice in ("--resume auto", "-o Global.output_dir=DIR", "--overwrite", f"{run}.old-<timestamp>"):
        assert choice in message
    assert snapshot(run) == before  # not even train.log or config.yaml was touched


@pytest.mark.slow
def test_overwrite_moves_the_earlier_run_aside(tiny_dataset, tmp_path):
    """Through tools/train.py, in a folder whose name has a space and Chinese characters."""
    out = tmp_path / "训练 runs"
    config = write_config(tiny_train_config(tiny_dataset, out, epochs=1), tmp_path / "c.yaml")
    run = out / TINY_ARCH
    assert train_tool(config).returncode == 0
    first = snapshot(run)

    refused = train_tool(config)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "already holds the checkpoints" in refused.stderr and "--overwrite" in refused.stderr
    assert snapshot(run) == first

    both = train_tool(config, "--overwrite", "--resume", "auto")
    assert both.returncode == 1 and "use one of them" in both.stderr and snapshot(run) == first

    again = train_tool(config, "--overwrite", "-o", "Global.epochs=2")
    assert again.returncode == 0, again.stderr[-3000:]
    moved = list(out.glob(f"{TINY_ARCH}.old-*"))
    assert len(moved) == 1 and f"moved the earlier run {run} aside to {moved[0]}" in again.stdout
    assert snapshot(moved[0]) == first  # the earlier run, byte for byte
    assert "moved the earlier run" in (run / "train.log").read_text(encoding="utf-8")  # a fresh log says so
    assert (run / "epoch_2.pdstates").is_file()
    assert yaml.safe_load((run / "config.yaml").read_text())["Global"]["epochs"] == 2
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["1", "2"]


# ---------------------------------------------------------------------------------------------- empty loaders
def _empty_eval(batch_size=100):
    return [f"DataLoader.Eval.sampler.batch_size={batch_size}", "DataLoader.Eval.sampler.drop_last=True"]


def test_eval_loader_with_no_batches_is_refused_before_a_new_run(tiny_dataset, tmp_path):
    config = load_config(tiny_config(tiny_dataset, tmp_path / "out"), tmp_path, _empty_eval())
    with pytest.raises(ValueError, match=r"the Eval loader yields no batches: 9 image\(s\).*batch_size=100, "
                                         r"drop_last=True.*DataLoader\.Eval\.sampler\.batch_size"):
        build_engine(config, "train")
    run = tmp_path / "out" / ARCH
    assert not (run / "metrics.csv").exists() and not (run / "best_model.pdparams").exists()


def test_train_loader_with_no_batches_stays_an_error(tiny_dataset, tmp_path):
    config = load_config(tiny_config(tiny_dataset, tmp_path / "out"), tmp_path,
                         ["DataLoader.Train.sampler.batch_size=100", "DataLoader.Train.sampler.drop_last=True"])
    with pytest.raises(ValueError, match=r"the Train loader yields no batches.*DataLoader\.Train\.sampler"):
        build_engine(config, "train")


@pytest.mark.slow
def test_eval_that_sees_nothing_changes_no_metric_and_no_best_model(tiny_dataset, tmp_path):
    config = load_config(tiny_config(tiny_dataset, tmp_path / "out", epochs=1), tmp_path)
    build_engine(config, "train").train()
    run = tmp_path / "out" / ARCH
    kept = {name: (run / name).read_bytes() for name in ("metrics.csv", "best_model.pdparams", "best_model.pdstates")}

    # A resume with an Eval loader that yields nothing stops at build time ...
    resumed = load_config(tiny_config(tiny_dataset, tmp_path / "out", epochs=2), tmp_path,
                          ["Global.checkpoints=auto"] + _empty_eval())
    with pytest.raises(ValueError, match="the Eval loader yields no batches"):
        build_engine(resumed, "train")
    assert {name: (run / name).read_bytes() for name in kept} == kept

    # ... and an engine handed such a loader directly stops before training or touching metrics.csv.
    from ppcls_lite.data import build_dataloader

    engine = build_engine(load_config(tiny_config(tiny_dataset, tmp_path / "out", epochs=2), tmp_path,
                                      ["Global.checkpoints=auto"]), "train")
    engine.eval_loader = build_dataloader(resumed["DataLoader"], "Eval", "cpu", 42, 3)
    steps = record_lr(engine)
    with pytest.raises(ValueError, match="the Eval loader yields no batches"):
        engine.train()
    assert steps == []
    assert {name: (run / name).read_bytes() for name in kept} == kept
    with pytest.raises(ValueError, match="the Eval loader yields no batches"):
        engine.evaluate()


# ---------------------------------------------------------------------------------------------- Ctrl-C
@pytest.mark.slow
def test_ctrl_c_before_the_first_checkpoint_says_nothing_was_saved(tiny_dataset, tmp_path):
    """SIGINT during epoch 1 of a long-enough epoch: the message says nothing was saved and to start again with
    the same command (no --resume), and that command then works in the same folder."""
    long_list = tiny_dataset / "long_train_list.txt"
    long_list.write_text((tiny_dataset / "train_list.txt").read_text() * 40)  # 360 images, 120 steps
    cfg = tiny_train_config(tiny_dataset, tmp_path / "out", epochs=1, train_list="long_train_list.txt")
    config = write_config(cfg, tmp_path / "c.yaml")
    run = tmp_path / "out" / TINY_ARCH
    log = run / "train.log"
    status, stderr = ctrl_c_train(
        config, lambda: log.exists() and "[Train][Epoch 1/1][Iter 2/120]" in log.read_text(encoding="utf-8"),
        "its second iteration")
    assert not list(run.glob("*.pdstates")), "a checkpoint was written before Ctrl-C: nothing was tested"
    assert status == 130, stderr[-2000:]
    assert "before the first checkpoint: nothing was saved" in stderr
    assert "same command (without --resume)" in stderr and "--resume auto" not in stderr
    assert "Traceback" not in stderr
    again = train_tool(config)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (run / "latest.pdstates").is_file()


@pytest.mark.slow
def test_ctrl_c_after_best_model_but_before_a_resumable_checkpoint(tiny_dataset, tmp_path):
    """Ctrl-C landing between the best_model save and the first epoch_N/latest save (made to happen there by
    raising KeyboardInterrupt from the epoch_1 save): nothing resumable exists, and a new run would be refused,
    so the message points to --overwrite, which then works."""
    config = load_config(tiny_config(tiny_dataset, tmp_path / "out", epochs=1), tmp_path)
    engine = build_engine(config, "train")
    real_save = engine._save

    def save(name, epoch, best=False):
        if name == "epoch_1":
            raise KeyboardInterrupt()
        real_save(name, epoch, best)

    engine._save = save
    with pytest.raises(KeyboardInterrupt) as info:
        engine.train()
    message = str(info.value)
    assert "before the first resumable checkpoint (only best_model in" in message and "--overwrite" in message
    run = tmp_path / "out" / ARCH
    with pytest.raises(RunDirError, match=r"\(best_model\)"):
        build_engine(config, "train")
    build_engine(config, "train", overwrite=True).train()
    assert len(list((tmp_path / "out").glob(f"{ARCH}.old-*/best_model.pdparams"))) == 1
    assert (run / "latest.pdstates").is_file()


def _interrupt_at_first_save(engine):
    def save(name, epoch, best=False):
        raise KeyboardInterrupt()

    engine._save = save
    with pytest.raises(KeyboardInterrupt) as info:
        engine.train()
    return str(info.value)


@pytest.mark.slow
def test_ctrl_c_in_a_run_resumed_from_another_folder_names_that_checkpoint(tiny_dataset, tmp_path):
    build_engine(load_config(tiny_config(tiny_dataset, tmp_path / "first", epochs=1), tmp_path), "train").train()
    source = tmp_path / "first" / ARCH / "latest"
    # Resumed into the same folder: --resume auto goes on from there.
    same = load_config(tiny_config(tiny_dataset, tmp_path / "first", epochs=2), tmp_path, ["Global.checkpoints=auto"])
    message = _interrupt_at_first_save(build_engine(same, "train"))
    assert f"Last complete checkpoint: {source}" in message and message.endswith("--resume auto")
    # Resumed into another folder, which has no checkpoint of its own: name the prefix instead.
    other = load_config(tiny_config(tiny_dataset, tmp_path / "second", epochs=2), tmp_path,
                        [f"Global.checkpoints={source}"])
    message = _interrupt_at_first_save(build_engine(other, "train"))
    assert message.endswith(f"-o Global.checkpoints={source}") and "--resume auto" not in message


# ---------------------------------------------------------------------------------------------- issue 21, item 9
@pytest.mark.slow
def test_a_folder_holding_only_best_model_gets_one_piece_of_advice(tiny_dataset, tmp_path):
    """Only best_model left (e.g. the others deleted to save space): a new run and --resume auto both say the same
    thing to do - start from its weights in another folder, or --overwrite - and the advice works."""
    config = load_config(tiny_config(tiny_dataset, tmp_path / "out", epochs=1), tmp_path)
    build_engine(config, "train").train()
    run = tmp_path / "out" / ARCH
    for path in run.iterdir():
        if path.name.startswith(("latest.", "epoch_")):
            path.unlink()
    advice = (f"-o Global.pretrained_model={run / 'best_model'} -o Global.output_dir=NEW_DIR", "--overwrite")
    with pytest.raises(RunDirError) as info:
        build_engine(config, "train")
    assert "but none to resume" in str(info.value) and all(a in str(info.value) for a in advice)
    assert "--resume auto" not in str(info.value)  # it would only say "nothing to resume"
    resume = load_config(tiny_config(tiny_dataset, tmp_path / "out", epochs=1), tmp_path, ["Global.checkpoints=auto"])
    with pytest.raises(FileNotFoundError) as info:
        build_engine(resume, "train")
    assert "only best_model" in str(info.value) and all(a in str(info.value) for a in advice)
    assert "Start without --resume" not in str(info.value)  # which would be refused again: no back and forth
    following = load_config(tiny_config(tiny_dataset, tmp_path / "new", epochs=1), tmp_path,
                            [f"Global.pretrained_model={run / 'best_model'}"])
    build_engine(following, "train").train()
    assert (tmp_path / "new" / ARCH / "latest.pdstates").is_file()


@pytest.mark.slow
def test_nul_bytes_in_metrics_csv_do_not_stop_a_resume(tiny_dataset, tmp_path):
    """metrics.csv is a log: NUL bytes (what a power cut leaves in a file being appended to) are warned about,
    naming the file; the readable rows stay, the damaged file is kept beside it, and the run goes on."""
    config = load_config(tiny_config(tiny_dataset, tmp_path / "out", epochs=1), tmp_path)
    build_engine(config, "train").train()
    run = tmp_path / "out" / ARCH
    metrics = run / "metrics.csv"
    damaged = metrics.read_bytes() + b"\0" * 512 + b"2,0.01\0\0,1."
    metrics.write_bytes(damaged)
    resume = load_config(tiny_config(tiny_dataset, tmp_path / "out", epochs=2), tmp_path, ["Global.checkpoints=auto"])
    build_engine(resume, "train").train()
    assert f"{metrics} is damaged (NUL bytes or broken lines" in (run / "train.log").read_text(encoding="utf-8")
    rows = list(csv.DictReader(metrics.open(newline="")))
    assert [r["epoch"] for r in rows] == ["1", "2"] and "\0" not in metrics.read_text()
    kept = [p for p in run.glob("metrics.*.csv")]
    assert len(kept) == 1 and kept[0].read_bytes() == damaged
    assert (run / "training_curves.png").stat().st_size > 0
