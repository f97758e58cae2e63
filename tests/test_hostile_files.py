"""Hostile files (issue 21 items 1, 2 and 8), all real: decompression-bomb PNGs of 20000x20000 and 40000x40000
pixels streamed to disk, a FIFO, a UNIX socket, a folder and /dev/zero where images are expected, what macOS,
Jupyter and NAS boxes leave in image folders, and list files written in GBK.

Each must give a line naming the file (and list line) and what to do, never hang or allocate gigabytes; with
`skip_bad_images` training skips such files and counts them in its summary; prediction reports each bad entry and
still writes every other result.
"""
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import (REPO_ROOT, export_tiny, make_image_folder, make_special_files, run_tool, run_train,
                      subprocess_env, tiny_config, tiny_train_config, write_config, write_huge_png)
from ppcls_lite import pipeline
from ppcls_lite.data import build_dataloader
from ppcls_lite.data.dataset import ImageFolderDataset, ImageNetDataset

GB = 2 ** 30


@pytest.fixture(scope="module")
def huge(tmp_path_factory):
    """The two bombs, 0.4 MB and 1.5 MB on disk; decoded they would be 0.4 and 1.6 GB grey, 1.2 and 4.8 GB RGB."""
    root = tmp_path_factory.mktemp("huge")
    return {"20k": write_huge_png(root / "huge 20000.png", 20000, 20000),
            "40k": write_huge_png(root / "huge 40000.png", 40000, 40000)}


@pytest.fixture
def limit_reset():
    """Put the process's pixel limit back to the environment/default after the test."""
    yield pipeline.set_max_image_pixels
    pipeline.set_max_image_pixels(None)


@pytest.fixture
def specials(tmp_path):
    entries, sock = make_special_files(tmp_path / "special")
    yield entries
    sock.close()


# ------------------------------------------------------------------------------------------- 1. pixel limit
def test_sizes_are_read_from_the_headers_of_the_real_bombs(huge):
    for key, side in (("20k", 20000), ("40k", 40000)):
        with open(huge[key], "rb") as f:
            assert pipeline.image_size(f) == (side, side)
            assert f.tell() == 0  # left where it was
    assert huge["40k"].stat().st_size < 2 * 2 ** 20


def test_bombs_are_refused_before_decoding_without_allocating(huge):
    """In a fresh process: reading, decoding the bytes and the infer loader all refuse the bombs, and the process's
    peak memory stays far below what decoding would take (1.6 GB for the grey 40000x40000, 4.8 GB as RGB)."""
    script = r"""
import json, re, sys
from ppcls_lite import pipeline
out = {}
for path in sys.argv[1:]:
    for what, call in (("read", lambda: pipeline.read_image_file(path)),
                       ("decode", lambda: pipeline.decode_image(open(path, "rb").read())),
                       ("load", lambda: pipeline.load_file(path, [pipeline.DecodeImage()]))):
        try:
            call()
            out[f"{path}:{what}"] = "decoded"
        except pipeline.ImageTooLargeError as exc:
            out[f"{path}:{what}"] = str(exc)
# VmHWM: this process's peak resident memory (ru_maxrss would include the forked test runner's)
out["max_rss_bytes"] = int(re.search(r"VmHWM:\s+(\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", script, str(huge["20k"]), str(huge["40k"])], cwd=REPO_ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for key, side in (("20k", 20000), ("40k", 40000)):
        for what in ("read", "decode", "load"):
            message = out[f"{huge[key]}:{what}"]
            assert f"{side}x{side} pixels" in message and "over the pixel limit of 90 megapixels" in message
            assert "Global.max_image_pixels" in message and pipeline.MAX_PIXELS_ENV in message
    print(f"peak memory of the refusing process: {out['max_rss_bytes'] / 2 ** 20:.0f} MB")
    assert out["max_rss_bytes"] < 0.25 * GB  # one decode of the 40000x40000 grey PNG alone is 1.6 GB


def test_limit_is_set_by_config_key_environment_and_zero_turns_it_off(tmp_path, monkeypatch, limit_reset):
    path = tmp_path / "big photo.png"
    cv2.imwrite(str(path), np.zeros((2000, 3000, 3), np.uint8))  # 6 megapixels
    assert pipeline.read_image_file(path)  # within the default 90 MP
    limit_reset(5_000_000)  # what build_engine does with Global.max_image_pixels
    with pytest.raises(pipeline.ImageTooLargeError, match=r"3000x2000 pixels \(6 megapixels\), over the pixel limit "
                                                          r"of 5 megapixels"):
        pipeline.read_image_file(path)
    limit_reset(None)
    monkeypatch.setenv(pipeline.MAX_PIXELS_ENV, "5e6")
    with pytest.raises(pipeline.ImageTooLargeError):
        pipeline.decode_image(path.read_bytes())
    monkeypatch.setenv(pipeline.MAX_PIXELS_ENV, "0")  # no limit
    assert pipeline.decode_image(path.read_bytes()).shape == (2000, 3000, 3)
    monkeypatch.setenv(pipeline.MAX_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match=f"{pipeline.MAX_PIXELS_ENV}='lots': give a whole number of pixels"):
        pipeline.max_image_pixels()


@pytest.mark.slow
def test_training_names_a_bomb_then_skips_and_counts_it(tiny_dataset, huge, tmp_path):
    lines = (tiny_dataset / "train_list.txt").read_text()
    (tiny_dataset / "bombs.txt").write_text(lines + f"{huge['40k']} 0\n{huge['20k']} 1\n")
    config = tiny_train_config(tiny_dataset, tmp_path / "out", epochs=1, train_list="bombs.txt")
    proc = run_train(write_config(config, tmp_path / "c.yaml"), check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-3000:]
    # The first bomb in the shuffled order stops the run, named with its list line and size.
    assert any(f"{huge[k]} ({tiny_dataset / 'bombs.txt'}:{line})" in errors[0] and f"{side}x{side}" in errors[0]
               for k, line, side in (("40k", 10, 40000), ("20k", 11, 20000))), errors[0]
    assert "skip_bad_images" in errors[0] and "Traceback" not in proc.stderr
    config["DataLoader"]["Train"]["dataset"]["skip_bad_images"] = True
    proc = run_train(write_config(config, tmp_path / "c.yaml"), "Global.output_dir=" + str(tmp_path / "out2"))
    log = proc.stdout + proc.stderr
    assert "DataLoader.Train left out 2 images in this run (skip_bad_images is on): 2 while reading " \
           "(2 over the pixel limit)" in log
    assert "Global.max_image_pixels" in log


@pytest.mark.slow
def test_check_dataset_names_bombs_and_special_files(tiny_dataset, huge, specials, tmp_path):
    extra = [f"{huge['40k']} 0"] + [f"{path} 1" for path, _ in specials.values()]
    with open(tiny_dataset / "train_list.txt", "a") as f:
        f.write("\n".join(extra) + "\n")
    proc = run_tool("check_dataset.py", "-c", write_config(tiny_config(tiny_dataset, tmp_path / "o"), tmp_path / "c.yaml"),
                    "--no-progress", timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{huge['40k']}: cannot decode image: its header gives 40000x40000 pixels" in proc.stdout
    for path, kind in specials.values():
        assert f"cannot read {path}: it is {kind}, not a regular file" in proc.stdout
    assert "summary: 5 errors" in proc.stdout


# ------------------------------------------------------------------------------------------- 2. regular files only
def test_inputs_that_are_not_regular_files_are_refused_by_name(specials):
    for path, kind in specials.values():
        with pytest.raises(pipeline.NotAFileError, match=re.escape(f"{path} is {kind}, not a regular file")):
            pipeline.read_image_file(path)
    with pytest.raises(pipeline.NotAFileError, match="--input=/dev/zero is a character device: give an image file"):
        pipeline.collect_inputs("/dev/zero")
    fifo, _ = specials["fifo.png"]
    with pytest.raises(pipeline.NotAFileError, match="--input=.*fifo.png is a FIFO"):
        pipeline.collect_inputs(fifo)
    with pytest.raises(pipeline.NotAFileError, match="a FIFO"):  # as a list file: refused, not read forever
        pipeline.read_text_lines(fifo)


def test_dataset_refuses_special_entries_before_training(tiny_dataset, specials):
    listing = tiny_dataset / "special.txt"
    good = (tiny_dataset / "train_list.txt").read_text().splitlines()
    listing.write_text("\n".join(good + [f"{path} 0" for path, _ in specials.values()]) + "\n")
    with pytest.raises(ValueError) as info:
        ImageNetDataset(str(tiny_dataset), str(listing))
    message = str(info.value)
    assert "4 of 13 images cannot be read (4 not a regular file)" in message
    for line, (path, kind) in enumerate(specials.values(), len(good) + 1):
        assert f"{path} ({listing}:{line}): {kind}, not a regular file" in message
    config = {"Train": {"dataset": {"name": "ImageNetDataset", "image_root": str(tiny_dataset),
                                    "cls_label_path": str(listing), "skip_bad_images": True,
                                    "transform_ops": [{"DecodeImage": None}]},
                        "sampler": {"batch_size": 4}, "loader": {"num_workers": 0}}}
    loader = build_dataloader(config, "Train")
    assert len(loader.dataset) == len(good)
    assert loader.skip_summary() == ("DataLoader.Train left out 4 images in this run (skip_bad_images is on): "
                                     "4 when the dataset was built (4 not a regular file)")


@pytest.mark.slow
def test_infer_reports_each_bad_entry_and_writes_every_other_result(tiny_dataset, huge, specials, tmp_path):
    good = [tiny_dataset / "circle" / "0.png", tiny_dataset / "square" / "1.png"]
    bad = {str(path): f"it is {kind}, not a regular file" for path, kind in specials.values()}
    bad["/dev/zero"] = "it is a character device, not a regular file"
    bad[str(huge["40k"])] = "40000x40000 pixels"
    bad[str(tmp_path / "gone.png")] = "file not found"
    listing = tmp_path / "inputs.txt"
    order = [str(good[0]), *bad, str(good[1])]
    listing.write_text("".join(f"{p}\n" for p in order))
    config = write_config(tiny_config(tiny_dataset, tmp_path / "o"), tmp_path / "c.yaml")
    output = tmp_path / "preds.csv"
    proc = run_tool("infer.py", "-c", config, "-o", f"Infer.infer_imgs={listing}", "--output", output, timeout=120)
    assert proc.returncode == 3, proc.stderr[-3000:]
    for path, reason in bad.items():
        assert any(line.startswith(f"cannot predict {path}: ") and reason in line for line in proc.stderr.splitlines()), \
            (path, proc.stderr[-3000:])
    assert f"{len(bad)} of {len(order)} inputs could not be predicted" in proc.stderr
    rows = output.read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == [str(p) for p in good]


@pytest.mark.slow
def test_predictor_reports_each_bad_entry_and_writes_every_other_result(tmp_path, reference_dir, huge, specials):
    """The deployed predictor (real export, real FIFO/socket/folder/device/bomb) never blocks on a FIFO, never
    reads /dev/zero, and writes the results of the good images around the bad ones."""
    export_dir, root = export_tiny(tmp_path, reference_dir)
    good = sorted(str(p) for p in root.rglob("*.png"))[:2]
    bad = {str(path): f"it is {kind}, not a regular file" for path, kind in specials.values()}
    bad["/dev/zero"] = "it is a character device, not a regular file"
    bad[str(huge["40k"])] = "40000x40000 pixels"
    listing = tmp_path / "inputs.txt"
    order = [good[0], *bad, good[1]]
    listing.write_text("".join(f"{p}\n" for p in order))
    output = tmp_path / "preds.jsonl"
    proc = subprocess.run([sys.executable, str(export_dir / "predict_cls.py"), "--model_dir", str(export_dir),
                           "--input", str(listing), "--batch_size", "3", "--backend", "paddle", "--output",
                           str(output), "--quiet"], capture_output=True, text=True, timeout=120, env=subprocess_env())
    assert proc.returncode == 3, proc.stderr[-3000:]
    for path, reason in bad.items():
        assert any(path in line and reason in line for line in proc.stderr.splitlines()), (path, proc.stderr[-3000:])
    assert [json.loads(line)["file_name"] for line in output.read_text().splitlines()] == good


# ------------------------------------------------------------------------------------------- 8. foreign entries
def _add_foreign_entries(data):
    """What macOS zips, Jupyter, Finder and a Synology NAS leave: each holds a decodable PNG or junk bytes."""
    png = (data / "circle" / "0.png").read_bytes()
    for rel in ("__MACOSX/circle/._0.png", "__MACOSX/circle/0.png", ".ipynb_checkpoints/0-checkpoint.png",
                "circle/.ipynb_checkpoints/0-checkpoint.png", "square/@eaDir/SYNOFILE_THUMB_M.png"):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(png)
    (data / "circle" / "._1.png").write_bytes(b"\x00\x05\x16\x07AppleDouble junk")
    (data / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")


@pytest.mark.slow
def test_foreign_entries_are_ignored_by_folder_datasets_scans_and_split(tmp_path, caplog):
    data = make_image_folder(tmp_path / "photos", per_class=4)
    (data / "label_list.txt").unlink()
    _add_foreign_entries(data)
    with caplog.at_level(logging.WARNING):
        dataset = ImageFolderDataset(str(data))
    assert dataset.label_names == ["circle", "square", "stripes"]
    assert len(dataset) == 12 and not [p for p, _ in dataset.samples if "/." in p or "@eaDir" in p or "MACOSX" in p]
    if caplog.records:
        assert any("ignored 6 entries that other systems leave among images" in r.getMessage() for r in caplog.records)
    scanned = pipeline.scan_images(data)
    assert len(scanned) == 12 and all(Path(p).parent.name in ("circle", "square", "stripes") for p in scanned)
    proc = run_tool("split_dataset.py", "--image_root", data, "--val_ratio", "0.25", "--force")
    assert proc.returncode == 0, proc.stderr
    assert f"{data}: ignored 6 entries that other systems leave among images" in proc.stdout
    assert "__MACOSX" in proc.stdout and "circle/._1.png" in proc.stdout
    lists = (data / "train_list.txt").read_text() + (data / "val_list.txt").read_text()
    assert len(lists.splitlines()) == 12 and "MACOSX" not in lists and "._" not in lists and "@eaDir" not in lists
    assert (data / "label_list.txt").read_text() == "0 circle\n1 square\n2 stripes\n"


# ------------------------------------------------------------------------------------------- 8. list encodings
def _chinese_files(root, names):
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        cv2.imencode(".png", np.full((32, 32, 3), 90, np.uint8))[1].tofile(str(root / name))


def test_gbk_list_that_is_not_utf8_names_the_encoding_key(tmp_path):
    names = ["废纸 1.png", "玻璃瓶 2.png"]
    _chinese_files(tmp_path / "类别", names)
    listing = tmp_path / "train_list.txt"
    listing.write_bytes("".join(f"类别/{n} {i}\n" for i, n in enumerate(names)).encode("gbk"))
    with pytest.raises(ValueError) as info:
        ImageNetDataset(str(tmp_path), str(listing))
    message = str(info.value)
    assert f"{listing}: not a UTF-8 text file" in message and "it reads as GB18030" in message
    assert "set DataLoader.<Train|Eval>.dataset.encoding=gb18030" in message and "iconv -f GB18030" in message
    dataset = ImageNetDataset(str(tmp_path), str(listing), encoding="gb18030")
    assert [Path(p).name for p, _ in dataset.samples] == names


def _gbk_names_that_are_valid_utf8(count):
    """Chinese characters whose GBK bytes (lead 0xC2-0xDF, trail 0x80-0xBF) also form valid UTF-8: a GBK list made
    of them decodes as UTF-8 without error, into other characters."""
    found = []
    for lead in range(0xC2, 0xE0):
        for trail in range(0x80, 0xC0):
            try:
                char = bytes([lead, trail]).decode("gbk")
            except UnicodeDecodeError:
                continue
            if "\u4e00" <= char <= "\u9fff" and bytes([lead, trail]).decode("utf-8").isprintable():
                found.append(char)
    return ["".join(found[i * 2:i * 2 + 2]) + ".png" for i in range(count)]


def test_gbk_list_that_decodes_as_utf8_gets_a_hint(tmp_path):
    names = _gbk_names_that_are_valid_utf8(3)
    _chinese_files(tmp_path, names)
    listing = tmp_path / "list.txt"
    raw = "".join(f"{n} 0\n" for n in names).encode("gbk")
    listing.write_bytes(raw)
    assert raw.decode("utf-8") != raw.decode("gbk")  # mojibake, not an error
    with pytest.raises(FileNotFoundError) as info:
        ImageNetDataset(str(tmp_path), str(listing))
    assert "Read as GB18030, 3 of the first 3 missing lines name files that exist" in str(info.value)
    assert "DataLoader.<Train|Eval>.dataset.encoding=gb18030" in str(info.value)
    assert len(ImageNetDataset(str(tmp_path), str(listing), encoding="gb18030")) == 3
    # Prediction inputs: the same hint with the Infer key; with Infer.encoding the list works.
    with pytest.raises(FileNotFoundError, match="set Infer.encoding=gb18030"):
        pipeline.collect_inputs(listing, "Infer.infer_imgs", encoding_key="Infer.encoding")
    files = pipeline.collect_inputs(listing, "Infer.infer_imgs", encoding="gb18030", encoding_key="Infer.encoding")
    assert [Path(f).name for f in files] == names
