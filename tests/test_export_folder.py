"""The export folder is never lost and never takes what is not ours (issue 21, export items):

* built beside the folder and switched in whole: kill -9 at any moment leaves the previous export or the new one,
  complete and working (real tools/export_model.py processes killed with SIGKILL where they pause on purpose,
  PPCLS_LITE_EXPORT_PAUSE_AT); SIGTERM and failures leave the folder as it was and nothing partial;
* files the export did not write (export_manifest.json says which are ours) stop it, --force keeps them;
* one writer per export folder (a second real process is refused, naming the holder);
* a missing model file is named by the predictor.

The fast tests drive `StagedExport` with a few hand-written files (the switch and the ownership rules do not depend on
what the files are); the slow ones run real exports. Full and read-only disks: tests/test_disk_faults.py.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers import TOOLS_DIR, subprocess_env, tiny_export_config

from ppcls_lite.export import folder as export_folder
from ppcls_lite.export import staging
from ppcls_lite.export.ownership import survey_folder
from ppcls_lite.export.staging import ExportRejected, ForeignFilesError, StagedExport
from ppcls_lite.pipeline import sha256_file
from ppcls_lite.predict.model_dir import load_inference_config, previous_export_path
from ppcls_lite.utils.cli import Interrupted
from ppcls_lite.utils.folder_lock import lock_path

HEADER = "# Written by tools/export_model.py; read by deploy/python/predict_cls.py (see docs/DEPLOY.md).\n"


def snapshot(folder):
    """{relative path: sha256} of every file under `folder` (symlinks as their target text)."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): (os.readlink(p) if p.is_symlink() else sha256_file(p))
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}


def leftovers(target):
    """What an export may leave beside `target` besides it: staging, previous export, lock."""
    target = Path(target)
    return [p.name for p in (staging.staging_path(target), previous_export_path(target), Path(lock_path(target)))
            if os.path.lexists(p)]


def write_files(folder, version):
    """A stand-in export: inference.yml, a model file, the predictor's code."""
    folder = Path(folder)
    (folder / "inference.yml").write_text(HEADER + yaml.safe_dump({"Global": {"version": version}}))
    (folder / "model.onnx").write_bytes(f"model {version}".encode() * 100)
    (folder / "ppcls_lite" / "predict").mkdir(parents=True)
    (folder / "ppcls_lite" / "predict" / "cli.py").write_text(f"# v{version}\n")
    (folder / "predict_cls.py").write_text("print('predict')\n")


def fake_export(target, version, force=False):
    with StagedExport(target, force=force) as folder:
        write_files(folder, version)


def version_of(target):
    return yaml.safe_load((Path(target) / "inference.yml").read_text())["Global"]["version"]


def assert_complete(target):
    """Every file the manifest lists is there with its sha256."""
    files = export_folder.read_manifest(target)
    assert files, f"{target} has no manifest"
    for rel, digest in files.items():
        assert sha256_file(Path(target) / rel) == digest, rel


# ------------------------------------------------------------------------------------- ownership
def test_survey_tells_ours_changed_and_foreign(tmp_path):
    write_files(tmp_path, 1)
    export_folder.write_manifest(tmp_path)
    (tmp_path / "ppcls_lite" / "predict" / "__pycache__").mkdir()
    (tmp_path / "ppcls_lite" / "predict" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"\0")
    assert survey_folder(tmp_path).not_ours == []
    (tmp_path / "predict_cls.py").write_text("print('my own edit')\n")
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "mine.py").write_text("")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "ppcls_lite" / "predict" / "patch.py").write_text("")
    (tmp_path / "latest").symlink_to(tmp_path / "model.onnx")
    survey = survey_folder(tmp_path)
    assert survey.changed == ["predict_cls.py"]
    assert survey.foreign == ["latest", "notes.txt", "pipeline/", "ppcls_lite/predict/patch.py"]
    assert "predict_cls.py (changed since the export)" in survey.describe()
    (tmp_path / "export_manifest.json").write_text('{"files": {}}')  # not ours: the rule of pre-manifest exports
    assert survey_folder(tmp_path).foreign == ["export_manifest.json", "latest", "notes.txt", "pipeline/",
                                               "ppcls_lite/"]


def test_survey_of_an_export_made_before_the_manifest(tmp_path):
    params = tmp_path / "inference.pdiparams"
    params.write_bytes(b"weights")
    (tmp_path / "inference.yml").write_text(HEADER + yaml.safe_dump(
        {"Global": {"sha256": {"inference.pdiparams": sha256_file(params)}}}))
    (tmp_path / "inference.json").write_text("{}")
    (tmp_path / "predict_cls.py").write_text("")
    for rel in ("ppcls_lite/__init__.py", "ppcls_lite/pipeline/decode.py", "ppcls_lite/predict/cli.py",
                "ppcls_lite/pipeline/imagenet1k_label_list.txt", "pipeline/runner.py", "pipeline/registry.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    assert survey_folder(tmp_path).not_ours == []
    (tmp_path / "ppcls_lite" / "pipeline" / "data.csv").write_text("mine")
    params.write_bytes(b"other weights")
    assert survey_folder(tmp_path).not_ours == ["inference.pdiparams", "ppcls_lite/pipeline/data.csv"]
    (tmp_path / "pipeline" / "registry.py").unlink()  # then pipeline/ is a user's own folder
    assert "pipeline/" in survey_folder(tmp_path).foreign
    (tmp_path / "inference.yml").write_text("Global: {}\n")  # not written by us: nothing here is ours
    assert set(survey_folder(tmp_path).foreign) >= {"inference.json", "inference.yml", "predict_cls.py",
                                                   "ppcls_lite/"}


# ------------------------------------------------------------------------------------- the switch
def test_export_replaces_the_whole_folder_and_leaves_nothing_beside(tmp_path):
    target = tmp_path / "inference"
    fake_export(target, 1)
    (target / "model_fp16.onnx").write_bytes(b"")  # a variant of the first export, listed below
    export_folder.record_in_manifest(target, ["model_fp16.onnx"])
    fake_export(target, 2)
    assert version_of(target) == 2 and not (target / "model_fp16.onnx").exists()
    assert_complete(target)
    assert sorted(export_folder.read_manifest(target)) == ["inference.yml", "model.onnx", "ppcls_lite/predict/cli.py",
                                                            "predict_cls.py"]
    assert leftovers(target) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["inference"]


def test_without_the_one_step_swap_the_switch_renames_twice(tmp_path, monkeypatch):
    """Where renameat2(RENAME_EXCHANGE) is missing (macOS, Windows, some file systems)."""
    monkeypatch.setattr(staging, "_exchange", lambda a, b: False)
    target = tmp_path / "inference"
    fake_export(target, 1)
    fake_export(target, 2)
    assert version_of(target) == 2 and leftovers(target) == []


def test_a_kill_between_the_two_renames_is_named_and_repaired(tmp_path, logged_warnings):
    """The one window of the fallback switch: the previous export is aside, the new one not yet in place (the state a
    kill -9 there leaves, made by hand). The predictor names where the export is; the next export puts it back."""
    target = tmp_path / "inference"
    fake_export(target, 1)
    before = snapshot(target)
    os.rename(target, previous_export_path(target))
    with pytest.raises(FileNotFoundError) as info:
        load_inference_config(target)
    message = str(info.value)
    assert str(previous_export_path(target)) in message and "Run the export again" in message
    with pytest.raises(RuntimeError):
        with StagedExport(target):
            raise RuntimeError("the next export fails too")
    assert snapshot(target) == before and leftovers(target) == []
    assert any("put the previous export back" in m for m in logged_warnings)


@pytest.mark.parametrize("failure", ["error", "SIGTERM"])
def test_a_failed_or_stopped_export_leaves_the_folder_as_it_was(tmp_path, failure):
    target = tmp_path / "inference"
    fake_export(target, 1)
    before = snapshot(target)
    with pytest.raises((ValueError, Interrupted)) as info:
        with StagedExport(target) as folder:
            write_files(folder, 2)
            if failure == "error":
                raise ValueError(f"cannot convert {folder / 'model.onnx'}")
            raise Interrupted("", signal.SIGTERM)  # what run_cli's handler raises on SIGTERM
    if failure == "error":
        message = str(info.value)  # names the file in the folder the user knows, not the staging folder
        assert str(target / "model.onnx") in message and str(folder) not in message
    else:
        assert info.value.exit_status == 143 and f"{target} is as it was" in str(info.value)
    assert snapshot(target) == before and leftovers(target) == []


def test_a_full_disk_during_the_export_is_told_about_the_folder(tmp_path):
    import errno

    target = tmp_path / "inference"
    with pytest.raises(OSError) as info:
        with StagedExport(target) as folder:
            (folder / "a.bin").write_bytes(b"x")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what write() says on a full disk: no file
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert "free there" in info.value.strerror
    with pytest.raises(OSError) as info:
        with StagedExport(target) as folder:
            open(folder / "missing" / "x", "w")
    assert info.value.filename == str(target) and "while writing missing/x" in info.value.strerror
    assert not target.exists() and leftovers(target) == []


def test_a_rejected_export_is_kept_apart(tmp_path):
    target = tmp_path / "inference"
    fake_export(target, 1)
    before = snapshot(target)
    for attempt in (1, 2):
        with pytest.raises(ExportRejected) as info:
            with StagedExport(target) as folder:
                write_files(folder, 10 + attempt)
                raise ExportRejected(f"--verify failed ({folder / 'export_report.json'}): model.onnx differs")
        rejected = tmp_path / "inference.rejected"
        assert f"--verify failed ({rejected / 'export_report.json'})" in str(info.value)
        assert f"the previous export in {target} is unchanged" in str(info.value)
        assert version_of(rejected) == 10 + attempt  # the second rejected export replaces the first
        assert_complete(rejected)
    assert snapshot(target) == before and leftovers(target) == []


def test_leftovers_of_a_killed_export_are_removed(tmp_path, logged_warnings):
    target = tmp_path / "inference"
    fake_export(target, 1)
    half = staging.staging_path(target)
    half.mkdir()
    (half / "inference.pdiparams.tmp").write_bytes(b"half")
    fake_export(target, 2)
    assert version_of(target) == 2 and leftovers(target) == []
    assert any(f"removed {half}" in m for m in logged_warnings)


# ------------------------------------------------------------------------------------- files that are not ours
def test_files_that_are_not_ours_stop_the_export_and_force_keeps_them(tmp_path, logged_warnings):
    target = tmp_path / "inference"
    target.mkdir()
    (target / "pipeline").mkdir()
    (target / "pipeline" / "my_ops.py").write_text("mine")
    (target / "predict_cls.py").write_text("my own script")
    user = snapshot(target)
    with pytest.raises(ForeignFilesError) as info:
        fake_export(target, 1)
    message = str(info.value)
    assert str(target) in message and "pipeline/, predict_cls.py" in message and "--force" in message
    assert snapshot(target) == user and leftovers(target) == []

    inode = (target / "pipeline" / "my_ops.py").stat().st_ino
    fake_export(target, 1, force=True)
    assert version_of(target) == 1 and (target / "predict_cls.py").read_text() == "print('predict')\n"
    kept = [p for p in target.glob("predict_cls.*.py")]
    assert len(kept) == 1 and kept[0].read_text() == "my own script"
    assert (target / "pipeline" / "my_ops.py").stat().st_ino == inode  # carried over as the same file
    assert any(f"kept your predict_cls.py as {kept[0].name}" in m for m in logged_warnings)
    assert not {kept[0].name, "pipeline/my_ops.py"} & set(export_folder.read_manifest(target))
    with pytest.raises(ForeignFilesError, match=f"pipeline/, {kept[0].name}"):  # still not ours next time
        fake_export(target, 2)
    assert version_of(target) == 1 and leftovers(target) == []


def test_a_file_that_appears_during_the_export_is_kept(tmp_path, logged_warnings):
    """E.g. a predictor writing --output into the folder while the export runs: never deleted with the old export."""
    target = tmp_path / "inference"
    fake_export(target, 1)
    with StagedExport(target) as folder:
        write_files(folder, 2)
        (target / "preds.csv").write_text("file_name,class_ids\n")
    assert version_of(target) == 2
    kept = list(tmp_path.glob("inference.previous-*"))
    assert len(kept) == 1 and (kept[0] / "preds.csv").read_text() == "file_name,class_ids\n"
    assert any(f"preds.csv appeared in {target}" in m and str(kept[0]) in m for m in logged_warnings)


def test_a_file_or_the_current_folder_is_no_export_folder(tmp_path, monkeypatch):
    (tmp_path / "inference").write_text("a file")
    with pytest.raises(staging.ExportError, match="is a file, not a folder"):
        fake_export(tmp_path / "inference", 1)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(staging.ExportError, match="is the current folder: --force would move it aside"):
        fake_export(tmp_path, 1, force=True)
    assert (tmp_path / "inference").read_text() == "a file"


# ------------------------------------------------------------------------------------- real exports, real kills
NEW_EXPORT = ("--onnx", "--onnx_input", "uint8", "-o", "Infer.PostProcess.topk=2")  # the old one: Paddle only, top-3


@pytest.fixture(scope="module")
def previous(tmp_path_factory, reference_dir):
    """A config and a real export of it (the 'previous export' every test copies), with its predictions."""
    from ppcls_lite.config import get_config
    from ppcls_lite.export import export_from_config

    root = tmp_path_factory.mktemp("export_folder")
    config_path, data = tiny_export_config(root, reference_dir)
    export_from_config(get_config(str(config_path)), save_dir=str(root / "previous"))
    images = sorted(str(p) for p in data.rglob("*.png"))[:3]
    return {"config": config_path, "export": root / "previous", "images": images,
            "results": predictions(root / "previous", images)}


def predictions(model_dir, images, backend="paddle"):
    from ppcls_lite.predict import Predictor

    return Predictor(model_dir, backend=backend).predict_files(images)


def copy_of_previous(previous, tmp_path):
    target = tmp_path / "inference"
    shutil.copytree(previous["export"], target)
    return target


def start_export(config, target, *args, pause=None):
    """tools/export_model.py into `target` in the background, stderr to a file; returns (process, stderr file)."""
    log = target.parent / f"export-{time.monotonic_ns()}.log"
    env = subprocess_env({staging.PAUSE_ENV: pause} if pause else {})
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, str(TOOLS_DIR / "export_model.py"), "-c", str(config), "-o",
                                 f"Global.save_inference_dir={target}", *args], env=env, stdout=subprocess.DEVNULL,
                                stderr=err)
    return proc, log


def wait_paused(proc, log, point, timeout=600):
    deadline = time.time() + timeout
    while f"export paused at {point}" not in log.read_text():
        assert proc.poll() is None, f"the export ended before {point}: {log.read_text()[-3000:]}"
        assert time.time() < deadline, f"the export never got to {point}"
        time.sleep(0.05)


def kill_9(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def assert_previous_export(target, previous):
    assert snapshot(target) == snapshot(previous["export"])
    assert predictions(target, previous["images"]) == previous["results"]


def assert_new_export(target, previous):
    assert_complete(target)
    info = load_inference_config(target)["Global"]
    assert info["onnx_file"] == "model.onnx" and info["uint8_input"]["files"]["onnxruntime"]["fp32"]
    expected = [dict(r, class_ids=r["class_ids"][:2], scores=r["scores"][:2],
                     label_names=r["label_names"][:2]) for r in previous["results"]]
    for backend in ("paddle", "onnxruntime"):
        got = predictions(target, previous["images"], backend)
        assert [r["class_ids"] for r in got] == [r["class_ids"] for r in expected], backend


@pytest.mark.slow
@pytest.mark.parametrize("point", ["building", "before_switch"])
def test_kill_9_before_the_switch_keeps_the_previous_export(previous, tmp_path, point):
    """SIGKILL while the new export is half written, and when it is complete but not switched in. At the second
    point the export holds the folder's lock: a second real export into the folder is refused, naming it."""
    target = copy_of_previous(previous, tmp_path)
    proc, log = start_export(previous["config"], target, *NEW_EXPORT, pause=point)
    try:
        wait_paused(proc, log, point)
        if point == "before_switch":
            assert_complete(staging.staging_path(target))  # everything written, fsync'ed, only the switch to go
            second = subprocess.run([sys.executable, str(TOOLS_DIR / "export_model.py"), "-c",
                                     str(previous["config"]), "-o", f"Global.save_inference_dir={target}"],
                                    env=subprocess_env(), capture_output=True, text=True, timeout=600)
            errors = [ln for ln in second.stderr.splitlines() if ln.startswith("error: ")]
            assert second.returncode == 1 and len(errors) == 1, second.stderr[-3000:]
            assert f"{target} is in use by another export (pid {proc.pid} on {socket.gethostname()}" in errors[0]
            assert "export_model.py" in errors[0] and "-o Global.save_inference_dir=DIR" in errors[0]
            assert "loaded" not in second.stderr + second.stdout  # it stopped before loading any weights
            record = json.loads(Path(lock_path(target)).read_text())
            assert record["pid"] == proc.pid and record["writer"] == "export"
        kill_9(proc)
    finally:
        proc.kill()
    assert_previous_export(target, previous)
    assert os.path.isdir(staging.staging_path(target))  # what the killed export left: removed by the next one


@pytest.mark.slow
def test_kill_9_after_the_switch_leaves_the_new_export_and_the_next_export_cleans_up(previous, tmp_path,
                                                                                     logged_warnings):
    from ppcls_lite.config import get_config
    from ppcls_lite.export import export_from_config

    target = copy_of_previous(previous, tmp_path)
    proc, log = start_export(previous["config"], target, *NEW_EXPORT, pause="switched")
    try:
        wait_paused(proc, log, "switched")
        kill_9(proc)
    finally:
        proc.kill()
    assert_new_export(target, previous)
    # The previous export is at the staging path (the two folders were swapped), the dead process's lock beside.
    assert snapshot(staging.staging_path(target)) == snapshot(previous["export"])
    assert json.loads(Path(lock_path(target)).read_text())["pid"] == proc.pid
    export_from_config(get_config(str(previous["config"])), save_dir=str(target))
    assert_complete(target)  # the first config again: the same predictions (Paddle names its variables anew)
    assert predictions(target, previous["images"]) == previous["results"] and not (target / "model.onnx").exists()
    assert leftovers(target) == []
    assert any(f"taking over the lock of {target}: its holder (pid {proc.pid}" in m for m in logged_warnings)


@pytest.mark.slow
def test_sigterm_during_an_export_leaves_the_folder_as_it_was(previous, tmp_path):
    target = copy_of_previous(previous, tmp_path)
    proc, log = start_export(previous["config"], target, *NEW_EXPORT, pause="building")
    try:
        wait_paused(proc, log, "building")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        proc.kill()
    stderr = log.read_text()
    assert proc.returncode == 143, stderr[-3000:]
    assert "Traceback" not in stderr
    assert f"interrupted by SIGTERM: the export was stopped; {target} is as it was" in stderr
    assert_previous_export(target, previous)
    assert leftovers(target) == []


@pytest.mark.slow
def test_predictor_names_a_missing_model_file(previous, tmp_path, capsys):
    from ppcls_lite.predict import cli

    target = copy_of_previous(previous, tmp_path)
    (target / "inference.pdiparams").unlink()
    assert cli.run(cli.main, ["--model_dir", str(target), "--input", previous["images"][0]]) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "Errno" not in err
    assert err.startswith(f"error: {target / 'inference.pdiparams'} is missing: inference.yml names it")
    assert "Copy the whole folder again" in err and f"-o Global.save_inference_dir={target}" in err
