"""Disk faults are one clear line: a full or read-only output_dir, save_inference_dir or infer --output.

Each tool must exit non-zero with `error: <path>: <errno meaning> [ENAME]; <what to do>` on stderr, no
traceback (unless --debug / PPCLS_LITE_DEBUG), and leave every file saved before byte-identical.

Also the tools that write lists (split_dataset --force, check_dataset --fix) and downloads: a full or read-only
disk leaves every earlier file as it was, no temporary or partial file, and one line naming the folder and the
space needed.

Real faults, no stand-ins raised from Python (the last section injects ENOSPC at the write call too, so machines
without mount rights still test the clean-up paths):
* full disk: a small tmpfs (mount needs root with CAP_SYS_ADMIN, which the test machines and CI have). A
  symlink to /dev/full does not work here: every writer goes through a temp file and a rename, which replaces
  the symlink instead of writing through it;
* read-only: a read-only bind mount of a folder (chmod does not stop root, a read-only mount does).
Mounts are made under pytest's tmp folder and lazily unmounted at the end of each test.
"""
import errno
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import (
    INFER_OPS_32PX, REPO_ROOT, TINY_ARCH, load_states, make_image_folder, run_tool, run_train, subprocess_env,
    tiny_config, tiny_train_config, write_config,
)

from ppcls_lite.utils import cli

TRIO = (".pdparams", ".pdopt", ".pdstates")
OLD_RESULTS = "file_name,class_ids,scores,label_names\nold.png,1,0.9,square\n"  # a previous --output file
PAGE = 4096
NO_DEBUG = {name: "" for name in cli.DEBUG_ENV_VARS}  # the one-line errors are under test, not the tracebacks


# ------------------------------------------------------------------------------------------- run_cli itself
def _raiser(exc):
    def main(argv):
        raise exc
    return main


def test_os_error_with_path_is_one_line(capsys):
    exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/run/epoch_2.pdparams")
    assert cli.run_cli(_raiser(exc), [], output_option="-o Global.output_dir=DIR") == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err]
    assert err.startswith("error: /data/run/epoch_2.pdparams: No space left on device [ENOSPC]; ")
    assert "free space" in err and "-o Global.output_dir=DIR" in err


def test_real_missing_file_is_one_line(tmp_path, capsys):
    missing = tmp_path / "no such folder" / "list.txt"

    def main(argv):
        open(missing, encoding="utf-8")

    assert cli.run_cli(main, []) == 1
    assert capsys.readouterr().err == (f"error: {missing}: No such file or directory [ENOENT]; check the path: it, "
                                       f"or a folder in it, does not exist\n")


def test_disk_fault_without_path_is_one_line(capsys):
    assert cli.run_cli(_raiser(OSError(errno.EROFS, os.strerror(errno.EROFS))), []) == 1
    err = capsys.readouterr().err
    assert "Read-only file system [EROFS]" in err and "did not say which file" in err


def test_writes_to_names_the_file_being_written():
    with pytest.raises(OSError) as info:
        with cli.writes_to("out/preds.csv"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert info.value.errno == errno.ENOSPC and info.value.filename == os.path.abspath("out/preds.csv")
    named = PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/etc/other")
    with pytest.raises(PermissionError) as info:
        with cli.writes_to("out/preds.csv"):
            raise named
    assert info.value is named  # an error that already names its file is kept


def test_user_messages_and_bugs_keep_their_behaviour(capsys):
    assert cli.run_cli(_raiser(FileNotFoundError("checkpoint not found: x.pdparams")), []) == 1
    err = capsys.readouterr().err  # one line, marked as an error, naming the file
    assert err.startswith("error: ") and "x.pdparams" in err and err.count("\n") == 1
    with pytest.raises(OSError):  # not a disk fault and no file: a bug, keep the traceback
        cli.run_cli(_raiser(OSError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))), [])


def test_worded_write_error_keeps_its_message_and_gets_advice(capsys):
    class Worded(OSError, ValueError):
        pass

    exc = Worded("cannot write /r/preds.csv: Permission denied [EACCES]")
    exc.errno = errno.EACCES
    assert cli.run_cli(_raiser(exc), [], output_option="--output FILE") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write /r/preds.csv: Permission denied [EACCES]; you have no permission")
    assert "--output FILE" in err


@pytest.mark.parametrize("how", ["--debug", "PPCLS_LITE_DEBUG", "PPCLS_DEBUG"])
def test_debug_gives_the_traceback(how, monkeypatch):
    for name in cli.DEBUG_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    seen = []

    def main(argv):
        seen.append(argv)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/x")

    argv = ["-c", "a.yaml"]
    if how == "--debug":
        argv.append("--debug")
    else:
        monkeypatch.setenv(how, "1")
    with pytest.raises(OSError):
        cli.run_cli(main, argv)
    assert seen == [["-c", "a.yaml"]]  # --debug is taken out before the tool's own parser sees it


# ------------------------------------------------------------------------------------------- helpers
def sha256_of(paths):
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def _mount(*args):
    proc = subprocess.run(["mount", *map(str, args)], capture_output=True, text=True)
    return proc.returncode == 0, proc.stderr.strip()


@pytest.fixture
def mounts():
    """mount(kind, ...) for this test; everything is unmounted at the end. Skips (saying why) if mount is refused."""
    made = []

    def tmpfs(target, size_bytes):
        target.mkdir(parents=True, exist_ok=True)
        ok, why = _mount("-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", target)
        if not ok:
            pytest.skip(f"cannot mount a tmpfs (needs root with CAP_SYS_ADMIN): {why}")
        made.append(target)
        return target

    def read_only(source, target):
        target.mkdir(parents=True, exist_ok=True)
        ok, why = _mount("--bind", source, target)
        if not ok:
            pytest.skip(f"cannot bind-mount (needs root with CAP_SYS_ADMIN): {why}")
        made.append(target)
        ok, why = _mount("-o", "remount,ro,bind", target)
        assert ok, f"bind mount made but cannot be made read-only: {why}"
        probe = target / ".probe"
        with pytest.raises(OSError) as info:
            probe.write_text("x")
        assert info.value.errno == errno.EROFS
        return target

    yield {"tmpfs": tmpfs, "read_only": read_only}
    for target in reversed(made):
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def assert_one_clear_line(proc, path, meaning):
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert str(path) in lines[0] and meaning in lines[0], lines[0]
    print(lines[0])  # shown with pytest -s: what the user reads
    return lines[0]


def fill_disk(disk):
    """Take every free byte of the (tmpfs) disk with a filler file."""
    with open(disk / "filler", "wb", buffering=0) as f:
        with pytest.raises(OSError) as info:
            while True:
                f.write(b"\0" * PAGE)
    assert info.value.errno == errno.ENOSPC


def page_rounded_size(paths):
    return sum(-(-Path(p).stat().st_size // PAGE) * PAGE for p in paths)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A complete 2-epoch run in an ordinary folder: the trained weights and the file sizes the tests rely on."""
    root = tmp_path_factory.mktemp("disk")
    data = make_image_folder(root / "data", per_class=4)

    def config_at(output_dir, name):
        cfg = tiny_train_config(data, output_dir, epochs=2, shuffle=False)
        cfg["Infer"] = {"infer_imgs": str(data / "val_list.txt"), "batch_size": 2, "transforms": INFER_OPS_32PX,
                        "PostProcess": {"name": "Topk", "topk": 2}}
        return write_config(cfg, root / f"{name}.yaml")

    config = config_at(root / "out", "reference")
    run_train(config, env=NO_DEBUG)
    return {"root": root, "data": data, "config": config, "config_at": config_at, "run": root / "out" / TINY_ARCH}


# ------------------------------------------------------------------------------------------- tools/train.py
@pytest.mark.slow
def test_train_disk_full_at_second_epoch_keeps_first_epoch(reference, mounts, tmp_path):
    ref = reference["run"]
    first_epoch_files = [ref / f"{p}{s}" for p in ("epoch_1", "best_model") for s in TRIO]
    latest_size = page_rounded_size([ref / f"latest{s}" for s in TRIO])  # latest = epoch 1 state, same sizes
    # Room for everything epoch 1 writes, the logs and a quarter of one more weights file: epoch 2's save fails.
    logs = page_rounded_size([ref / "train.log", ref / "metrics.csv", ref / "config.yaml"])
    size = page_rounded_size(first_epoch_files) + latest_size + logs + 16 * PAGE \
        + (ref / "epoch_2.pdparams").stat().st_size // 4
    disk = mounts["tmpfs"](tmp_path / "small disk", -(-size // PAGE) * PAGE)
    out = disk / "输出 run"
    proc = run_train(reference["config_at"](out, "small_disk"), check=False, env=NO_DEBUG)
    run = out / TINY_ARCH
    line = assert_one_clear_line(proc, run, "No space left on device")
    assert "[ENOSPC]" in line and "-o Global.output_dir=DIR" in line
    assert re.search(r"needs \d+\.\d (KB|MB), \d+(\.\d)? (bytes|KB|MB) free there", line), line  # the space it took
    assert "[Train][Epoch 1/2] done" in proc.stdout + proc.stderr  # the fault came mid-run, at epoch 2's save
    assert not (run / "epoch_2.pdstates").exists()
    assert not [n for n in os.listdir(run) if n.endswith(".tmp")], os.listdir(run)  # no temp file left behind
    # Epoch 1's checkpoints are the ones an uninterrupted run wrote (training is deterministic), byte for byte.
    for name in ("epoch_1", "best_model"):
        for suffix in TRIO:
            assert (run / f"{name}{suffix}").read_bytes() == (ref / f"{name}{suffix}").read_bytes(), name + suffix
    assert (run / "latest.pdparams").read_bytes() == (ref / "epoch_1.pdparams").read_bytes()
    assert load_states(run / "latest")["epoch"] == 1


@pytest.mark.slow
def test_train_on_a_disk_full_from_the_start(reference, mounts, tmp_path):
    disk = mounts["tmpfs"](tmp_path / "full disk", 16 * PAGE)
    fill_disk(disk)
    proc = run_train(reference["config_at"](disk / "out", "full_from_start"), check=False, env=NO_DEBUG)
    run = disk / "out" / TINY_ARCH
    assert_one_clear_line(proc, run, "No space left on device")
    # It stopped at the run's lock, beside the run folder: no file was left behind, not even the lock.
    assert not [p for p in (disk / "out").rglob("*") if p.is_file()], list((disk / "out").rglob("*"))


@pytest.mark.slow
def test_train_read_only_output_dir(reference, mounts, tmp_path):
    """Resuming a run whose folder became read-only: one line naming the file, the checkpoints untouched."""
    source = tmp_path / "runs"
    shutil.copytree(reference["run"], source / TINY_ARCH)
    before = sha256_of(sorted((source / TINY_ARCH).iterdir()))
    ro = mounts["read_only"](source, tmp_path / "ro runs")
    proc = run_train(reference["config_at"](ro, "ro"), "Global.epochs=3", resume=True, check=False, env=NO_DEBUG)
    line = assert_one_clear_line(proc, ro / TINY_ARCH, "Read-only file system")
    assert "[EROFS]" in line and "write to another place" in line
    # A new run in a folder that does not exist yet on the read-only disk.
    proc = run_train(reference["config_at"](ro / "new run", "ro_new"), check=False, env=NO_DEBUG)
    assert_one_clear_line(proc, ro / "new run", "Read-only file system")
    assert sha256_of(sorted((source / TINY_ARCH).iterdir())) == before
    assert sorted(p.name for p in source.iterdir()) == [TINY_ARCH]


# ------------------------------------------------------------------------------------------- tools/export_model.py
@pytest.mark.slow
def test_export_to_full_disk(reference, mounts, tmp_path):
    weights = reference["run"] / "best_model"
    before = sha256_of([f"{weights}{s}" for s in TRIO])
    disk = mounts["tmpfs"](tmp_path / "tiny disk", 16 * PAGE)  # less than the 0.8 MB of weights
    proc = run_tool("export_model.py", "-c", reference["config"], "-o", f"Global.pretrained_model={weights}",
                    "-o", f"Global.save_inference_dir={disk / 'inference'}")
    line = assert_one_clear_line(proc, disk / "inference", "No space left on device")
    assert "-o Global.save_inference_dir=DIR" in line
    assert sha256_of([f"{weights}{s}" for s in TRIO]) == before
    assert list(disk.iterdir()) == []  # no staging folder, no lock, no empty export folder


@pytest.fixture(scope="module")
def exported(reference):
    """The reference weights exported once to an ordinary folder."""
    save_dir = reference["root"] / "inference"
    proc = run_tool("export_model.py", "-c", reference["config"], "-o",
                    f"Global.pretrained_model={reference['run'] / 'best_model'}", "-o",
                    f"Global.save_inference_dir={save_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return save_dir


@pytest.mark.slow
def test_export_to_read_only_dir_keeps_previous_export(reference, exported, mounts, tmp_path):
    weights = reference["run"] / "best_model"
    source = tmp_path / "exports"
    shutil.copytree(exported, source / "inference")
    previous = sorted((source / "inference").rglob("*"))
    before = sha256_of([p for p in previous if p.is_file()])
    ro = mounts["read_only"](source, tmp_path / "ro exports")
    proc = run_tool("export_model.py", "-c", reference["config"], "-o", f"Global.pretrained_model={weights}",
                    "-o", f"Global.save_inference_dir={ro / 'inference'}")
    assert_one_clear_line(proc, ro / "inference", "Read-only file system")
    assert sha256_of([p for p in previous if p.is_file()]) == before


@pytest.mark.slow
def test_export_to_full_disk_keeps_previous_export(reference, exported, mounts, tmp_path):
    """The disk holds the previous export and nothing more: a new export that also needs room for model.onnx is
    refused before any file of the previous one is removed."""
    files = sorted(p for p in exported.rglob("*") if p.is_file())
    disk = mounts["tmpfs"](tmp_path / "full disk", page_rounded_size(files) + 64 * PAGE)
    shutil.copytree(exported, disk / "inference")
    fill_disk(disk)
    previous = sorted(p for p in (disk / "inference").rglob("*") if p.is_file())
    before = sha256_of(previous)
    proc = run_tool("export_model.py", "-c", reference["config"], "-o",
                    f"Global.pretrained_model={reference['run'] / 'best_model'}", "-o",
                    f"Global.save_inference_dir={disk / 'inference'}", "--onnx")
    line = assert_one_clear_line(proc, disk / "inference", "No space left on device")
    assert re.search(r"the export needs about \d+\.\d MB, 0 bytes free there", line), line
    assert sha256_of(previous) == before
    assert sorted(p.name for p in disk.iterdir()) == ["filler", "inference"]


@pytest.mark.slow
def test_export_that_fills_the_disk_midway_keeps_previous_export(reference, exported, mounts, tmp_path):
    """The disk has room for the new export when it starts, and another writer fills it up after the Paddle model
    was written: the export stops at its next write, the previous export stays, nothing is left."""
    from ppcls_lite.export.staging import PAUSE_ENV

    files = sorted(p for p in exported.rglob("*") if p.is_file())
    disk = mounts["tmpfs"](tmp_path / "small disk", 2 * page_rounded_size(files) + (4 << 20))
    shutil.copytree(exported, disk / "inference")
    previous = sorted(p for p in (disk / "inference").rglob("*") if p.is_file())
    before = sha256_of(previous)
    log = tmp_path / "export.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "tools" / "export_model.py"), "-c",
                                 str(reference["config"]), "-o",
                                 f"Global.pretrained_model={reference['run'] / 'best_model'}", "-o",
                                 f"Global.save_inference_dir={disk / 'inference'}", "--onnx"],
                                cwd=REPO_ROOT, env=subprocess_env({PAUSE_ENV: "building", **NO_DEBUG}),
                                stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        deadline = time.time() + 600
        while "export paused at building" not in log.read_text():
            assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        fill_disk(disk)
        proc.send_signal(signal.SIGUSR1)
        proc.communicate(timeout=600)
    finally:
        proc.kill()
    proc = subprocess.CompletedProcess(proc.args, proc.returncode, "", log.read_text())
    line = assert_one_clear_line(proc, disk / "inference", "No space left on device")
    # The space an export takes, and what is free once the unfinished export was removed.
    assert re.search(r"needs \d+\.\d MB, \d+(\.\d)? (bytes|KB|MB) free there", line), line
    assert sha256_of(previous) == before
    assert sorted(p.name for p in disk.iterdir()) == ["filler", "inference"]  # no staging folder, lock or .tmp


def test_export_into_a_mount_point_is_refused(mounts, tmp_path):
    """The switch renames the folder, which a mount point cannot be: said before anything is written."""
    from ppcls_lite.export.folder import ExportError
    from ppcls_lite.export.staging import StagedExport

    disk = mounts["tmpfs"](tmp_path / "volume", 16 * PAGE)
    with pytest.raises(ExportError, match="is a mount point.*export into a folder inside it"):
        with StagedExport(disk):
            pass
    assert list(disk.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["volume"]


# ------------------------------------------------------------------------------------------- tools/infer.py --output
def _infer(reference, output, *extra, env=None):
    return run_tool("infer.py", "-c", reference["config"], "-o",
                    f"Global.pretrained_model={reference['run'] / 'best_model'}", "--output", output, *extra, env=env)


@pytest.mark.slow
def test_infer_output_on_full_disk_keeps_old_results(reference, mounts, tmp_path):
    disk = mounts["tmpfs"](tmp_path / "full disk", 8 * PAGE)
    old = disk / "预测 results.csv"
    old.write_text(OLD_RESULTS)
    fill_disk(disk)
    weights = [reference["run"] / f"best_model{s}" for s in TRIO]
    before = sha256_of(weights + [old])
    proc = _infer(reference, old)
    line = assert_one_clear_line(proc, old, "No space left on device")
    assert "--output FILE" in line
    assert sha256_of(weights + [old]) == before
    # --debug asks for the traceback instead.
    proc = _infer(reference, old, "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    assert sha256_of(weights + [old]) == before


@pytest.mark.slow
def test_infer_output_in_read_only_dir_keeps_old_results(reference, mounts, tmp_path):
    source = tmp_path / "results"
    source.mkdir()
    (source / "preds.csv").write_text(OLD_RESULTS)
    before = sha256_of([source / "preds.csv"])
    ro = mounts["read_only"](source, tmp_path / "ro results")
    proc = _infer(reference, ro / "preds.csv")
    assert_one_clear_line(proc, ro / "preds.csv", "Read-only file system")
    assert sha256_of([source / "preds.csv"]) == before
    proc = _infer(reference, ro / "preds.csv", env={"PPCLS_LITE_DEBUG": "1"})
    assert proc.returncode != 0 and "Traceback" in proc.stderr


# ------------------------------------------------------------------------------------------- the predictor's --output
def _predict(exported, image, output):
    return subprocess.run([sys.executable, str(REPO_ROOT / "deploy" / "python" / "predict_cls.py"), "--model_dir",
                           str(exported), "--input", str(image), "--output", str(output)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=subprocess_env(NO_DEBUG))


@pytest.mark.slow
def test_predictor_output_on_full_disk_and_read_only_dir(reference, exported, mounts, tmp_path):
    image = reference["data"] / "square" / "1.png"
    disk = mounts["tmpfs"](tmp_path / "full disk", 8 * PAGE)
    old_full = disk / "preds.csv"
    old_full.write_text(OLD_RESULTS)
    fill_disk(disk)
    source = tmp_path / "results"
    source.mkdir()
    (source / "preds.csv").write_text(OLD_RESULTS)
    ro = mounts["read_only"](source, tmp_path / "ro results")
    for output, meaning in ((old_full, "No space left on device"), (ro / "preds.csv", "Read-only file system")):
        proc = _predict(exported, image, output)
        assert_one_clear_line(proc, output, meaning)
    assert old_full.read_text() == OLD_RESULTS and (source / "preds.csv").read_text() == OLD_RESULTS



# ------------------------------------------------------------------------------------------- list files
def _no_temp_files(folder):
    left = [p.name for p in Path(folder).rglob("*") if p.name.endswith((".tmp", ".part"))]
    assert not left, left


@pytest.mark.slow
def test_split_dataset_force_on_a_full_disk_keeps_both_old_lists(mounts, tmp_path):
    disk = mounts["tmpfs"](tmp_path / "small disk", 256 * PAGE)
    data = make_image_folder(disk / "photos", per_class=8)
    (data / "train_list.txt").unlink()
    (data / "val_list.txt").unlink()
    (data / "label_list.txt").unlink()
    proc = run_tool("split_dataset.py", "--image_root", data, "--val_ratio", "0.25", env=NO_DEBUG)
    assert proc.returncode == 0, proc.stderr
    lists = [data / "train_list.txt", data / "val_list.txt", data / "label_list.txt"]
    before = sha256_of(lists)
    fill_disk(disk)
    proc = run_tool("split_dataset.py", "--image_root", data, "--val_ratio", "0.5", "--seed", "3", "--force",
                    env=NO_DEBUG)
    line = assert_one_clear_line(proc, data, "No space left on device")
    assert re.search(r"needs \d+ bytes, 0 bytes free there\) \[ENOSPC\]", line), line
    assert sha256_of(lists) == before  # train AND val: both old, never one new beside one old
    _no_temp_files(data)


@pytest.mark.slow
def test_check_dataset_fix_on_a_full_disk_leaves_the_earlier_clean_list(mounts, tmp_path):
    disk = mounts["tmpfs"](tmp_path / "small disk", 256 * PAGE)
    data = make_image_folder(disk / "data", per_class=6)
    config = write_config(tiny_config(data, tmp_path / "out"), tmp_path / "c.yaml")
    assert run_tool("check_dataset.py", "-c", config, "--fix", "--no-progress").returncode == 0
    clean = data / "train_list.clean.txt"
    before = sha256_of([clean, data / "val_list.clean.txt", data / "train_list.txt"])
    lines = (data / "train_list.txt").read_text().splitlines()
    (data / "train_list.txt").write_text("\n".join(lines[:-1]) + "\n")  # one line fewer: the next clean list differs
    before[str(data / "train_list.txt")] = sha256_of([data / "train_list.txt"])[str(data / "train_list.txt")]
    fill_disk(disk)
    proc = run_tool("check_dataset.py", "-c", config, "--fix", "--no-progress", env=NO_DEBUG)
    assert_one_clear_line(proc, clean, "No space left on device")
    assert sha256_of([clean, data / "val_list.clean.txt", data / "train_list.txt"]) == before
    assert sorted(p.name for p in data.glob("*.txt")) == ["label_list.txt", "train_list.clean.txt", "train_list.txt",
                                                          "val_list.clean.txt", "val_list.txt"]
    _no_temp_files(data)


# ------------------------------------------------------------------------------------------- downloads
def _download_in_a_subprocess(url, home, env=None):
    script = ("import sys\nfrom ppcls_lite.utils import download as dl\nfrom ppcls_lite.utils.cli import run_cli\n"
              "sys.exit(run_cli(lambda argv: print(dl.download_weights(sys.argv[1], progress=False))))")
    return subprocess.run([sys.executable, "-c", script, url], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120, env=subprocess_env({"PPCLS_LITE_HOME": str(home), **NO_DEBUG, **(env or {})}))


@pytest.mark.parametrize("kind", ["file", "no_length"])
def test_download_to_a_full_disk_is_no_network_fault(mounts, tmp_path, kind):
    """With the size announced, the download is refused before any byte is written; without it, the write that
    finds the disk full stops it. Either way: one line naming the cache folder, not retried, no .part left."""
    from helpers import LoopbackServer, Route

    disk = mounts["tmpfs"](tmp_path / "small disk", 16 * PAGE)
    body = np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    with LoopbackServer() as server:
        server.routes["/w/model.pdparams"] = Route(body, kind)
        proc = _download_in_a_subprocess(server.url + "/w/model.pdparams", disk / "home")
        requests = len(server.requests)
    line = assert_one_clear_line(proc, disk / "home" / "weights", "No space left on device [ENOSPC]")
    assert "not a network fault: no retry" in line and "PPCLS_LITE_HOME" in line and "Nothing partial" in line
    assert ("the file needs 195.3 KB" in line) == (kind == "file")
    assert requests == 1
    _no_temp_files(disk)


def test_download_to_a_read_only_cache(mounts, tmp_path):
    from helpers import LoopbackServer, Route

    source = tmp_path / "home"
    (source / "weights").mkdir(parents=True)
    ro = mounts["read_only"](source, tmp_path / "ro home")
    with LoopbackServer() as server:
        server.routes["/w/model.pdparams"] = Route(b"x" * 1000)
        proc = _download_in_a_subprocess(server.url + "/w/model.pdparams", ro)
        assert len(server.requests) <= 1
    line = assert_one_clear_line(proc, ro / "weights", "Read-only file system [EROFS]")
    assert "make it writable" in line and "PPCLS_LITE_HOME" in line
    assert list((source / "weights").iterdir()) == []


# ------------------------------------------------------------------------------------------- injected ENOSPC
class _FillingFile:
    """A file on a disk that is full once `room` more bytes were written: the write after that raises ENOSPC, as
    write() does on a full disk."""

    def __init__(self, f, room):
        self.f, self.room = f, room

    def write(self, data):
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def inject_full_disk(monkeypatch, module, matches, room=0):
    """Files that `module` opens with a path for which `matches(path)` is true fill the disk after `room` bytes."""
    real_open = open

    def open_filling_up(path, *args, **kwargs):
        f = real_open(path, *args, **kwargs)
        return _FillingFile(f, room) if matches(str(path)) else f

    monkeypatch.setattr(module, "open", open_filling_up, raising=False)


def test_injected_enospc_in_a_group_write_keeps_every_old_file(tmp_path, monkeypatch):
    """ENOSPC raised by the write call of the second of three files (what a full disk does), on any machine."""
    from ppcls_lite.utils import files

    targets = [tmp_path / name for name in ("train_list.txt", "val_list.txt", "label_list.txt")]
    for target in targets:
        target.write_text(f"old {target.name}\n")
    before = sha256_of(targets)
    inject_full_disk(monkeypatch, files, lambda path: "val_list" in path)
    contents = {t: f"new {t.name}\n" for t in targets}
    with pytest.raises(OSError) as info:
        files.write_texts_atomic(contents)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(targets[1])
    needed = sum(len(text) for text in contents.values())
    assert f"needs {needed} bytes" in info.value.strerror and "free there" in info.value.strerror
    assert sha256_of(targets) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(t.name for t in targets)


def test_injected_enospc_in_a_download_leaves_no_part(mirror_server, monkeypatch):
    """The disk fills up after the first 64 KB block of a download of unknown size."""
    from helpers import Route
    from ppcls_lite.utils import download as dl

    mirror_server.routes["/w/model.pdparams"] = Route(b"y" * 300_000, "no_length")
    inject_full_disk(monkeypatch, dl, lambda path: path.endswith(".part"), room=1 << 16)
    with pytest.raises(dl.DownloadError, match=r"No space left on device \[ENOSPC\].*not a network fault"):
        dl.download_weights(f"{mirror_server.url}/w/model.pdparams", progress=False)
    assert len(mirror_server.requests) == 1
    assert not [p for p in Path(dl.weights_dir()).iterdir() if p.suffix in (".part", ".pdparams")]
