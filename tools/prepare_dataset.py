"""Download and lay out a PaddleClas dataset, as PaddleClas's quick start expects it.

    python tools/prepare_dataset.py flowers102 [--root ./dataset] [--force]

flowers102: PaddleClas's archive (https://paddle-imagenet-models-name.bj.bcebos.com/data/flowers102.zip) is
downloaded through ppcls_lite's download code (cache in $PPCLS_LITE_HOME/datasets, PPCLS_LITE_WEIGHTS_MIRROR,
resume, checks), extracted safely, and laid out as ROOT/flowers102/ with jpg/, train_list.txt (1020 images),
val_list.txt (1020), train_extra_list.txt and flowers102_label_list.txt - the paths that
configs/quick_start/MobileNetV3_large_x1_0.yaml uses. A second run finds the folder ready and does nothing.
"""
import argparse
import os
import shutil
import sys
import tempfile
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls_lite.utils.cli import run_cli  # noqa: E402
from ppcls_lite.utils.download import check_zip, download_dataset, safe_extract_zip  # noqa: E402

DATASETS = {
    "flowers102": {
        "url": "https://paddle-imagenet-models-name.bj.bcebos.com/data/flowers102.zip",
        "lists": ("train_list.txt", "val_list.txt"),
        "label_file": "flowers102_label_list.txt",
        "config": "configs/quick_start/MobileNetV3_large_x1_0.yaml",
    },
}


class DatasetLayoutError(ValueError):
    """The archive or the prepared folder does not have the layout the quick-start config expects."""


def _list_entries(folder, list_name):
    """(relative image path, label) of each line of a PaddleClas list file."""
    entries = []
    with open(os.path.join(folder, list_name), encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\r\n").rsplit(None, 1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise DatasetLayoutError(f"{os.path.join(folder, list_name)} line {number}: expected "
                                         f"'relative/path.jpg label', got {line.strip()!r}")
            entries.append((parts[0], int(parts[1])))
    return entries


def check_layout(folder: str, spec: Dict[str, Any]) -> Dict[str, int]:
    """Summary {list name: image count, "classes": n} of a prepared folder; raises DatasetLayoutError naming
    the first missing file or image."""
    needed = list(spec["lists"]) + [spec["label_file"]]
    missing = [name for name in needed if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise DatasetLayoutError(f"{folder} lacks {', '.join(missing)}")
    summary = {}
    for list_name in spec["lists"]:
        entries = _list_entries(folder, list_name)
        absent = [rel for rel, _ in entries if not os.path.isfile(os.path.join(folder, rel))]
        if not entries or absent:
            raise DatasetLayoutError(f"{os.path.join(folder, list_name)}: " + (
                f"{len(absent)} listed images are missing, e.g. {absent[0]}" if absent else "no images listed"))
        summary[list_name] = len(entries)
    with open(os.path.join(folder, spec["label_file"]), encoding="utf-8-sig") as f:
        summary["classes"] = sum(1 for line in f if line.strip())
    return summary


def _dataset_folder_in(extracted, spec):
    """The folder of the extracted archive that holds the list files (the archive's top folder, or itself)."""
    for current, _dirs, files in os.walk(extracted):
        if all(name in files for name in spec["lists"]):
            return current
    raise DatasetLayoutError(f"the archive holds no folder with {' and '.join(spec['lists'])}")


def prepare(name: str, root: str, force: bool = False) -> Tuple[str, Dict[str, int]]:
    """Lay out dataset `name` under `root`/<name>; returns (folder, summary)."""
    spec = DATASETS[name]
    folder = os.path.join(root, name)
    if os.path.isdir(folder) and not force:
        try:
            summary = check_layout(folder, spec)
        except DatasetLayoutError as err:
            raise DatasetLayoutError(f"{folder} exists but is incomplete ({err}); rerun with --force to replace "
                                     f"it with a fresh copy") from err
        print(f"{name} is already prepared in {folder}; nothing to do (--force prepares it again)")
        return folder, summary
    required = tuple(spec["lists"]) + (spec["label_file"],)
    archive = download_dataset(spec["url"], validate=lambda path: check_zip(path, required))
    os.makedirs(root, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{name}.extracting-", dir=root)  # same file system: rename is atomic
    try:
        safe_extract_zip(archive, staging)
        extracted = _dataset_folder_in(staging, spec)
        summary = check_layout(extracted, spec)
        if os.path.isdir(folder):
            shutil.rmtree(folder)  # --force: replace only once the new copy is complete
        os.replace(extracted, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder, summary


def main(argv: Optional[List[str]] = None) -> None:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=sorted(DATASETS), help="dataset to prepare")
    parser.add_argument("--root", default=os.path.join(".", "dataset"),
                        help="folder that receives <name>/ (default ./dataset, where the quick-start config looks)")
    parser.add_argument("--force", action="store_true", help="replace an existing <root>/<name> folder")
    args = parser.parse_args(argv)
    folder, summary = prepare(args.name, args.root, args.force)
    counts = ", ".join(f"{list_name} {count} images" for list_name, count in summary.items() if list_name != "classes")
    print(f"{args.name}: {counts}, {summary['classes']} classes in {folder}")
    print(f"next: python tools/train.py -c {DATASETS[args.name]['config']} -o Arch.pretrained=True "
          f"-o Global.device=gpu  (or Global.device=cpu)")


if __name__ == "__main__":
    sys.exit(run_cli(main))
