"""Dataset doctor (tools/check_dataset.py): decode every image of DataLoader.Train / Eval through the same pipeline
as training and report what would hurt a run before it starts.

Errors (exit status 1): malformed list lines, missing or unreadable images (named with their list line), images
the split's transform_ops fail on, labels outside [0, Arch.class_num). Warnings: duplicate files (same bytes)
within a split and across splits, classes without images, class imbalance. Also printed: class histogram,
imbalance ratio (largest / smallest class) and the range of image sizes.

`fix=True` writes a cleaned list beside the original list file (`train_list.clean.txt` beside `train_list.txt`;
for ImageFolderDataset `<image_root>/<mode>_list.clean.txt`), never over it: the lines with errors are left out,
as are repeated files within a split and Train files that are also in Eval. When Train and Eval read the same
list, one cleaned list serves both (and no file counts as a leak). The lists are written together through
temporary files (a full disk leaves every earlier file as it was); an earlier cleaned list with other content
is kept as `<name>.<its timestamp>.txt` first.

Images are read only when they are regular files, and decoded only within the pixel limit (Global.max_image_pixels);
list files are read with `DataLoader.<mode>.dataset.encoding`.
"""
import hashlib
import os
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, TextIO, Tuple

from ppcls_lite.pipeline import (READ_ERRORS, DecodeImage, NotAFileError, missing_paths_hint, read_image_file,
                                 read_label_names, read_text_lines, set_max_image_pixels, split_list_line)
from ppcls_lite.utils.files import keep_aside, write_texts_atomic

from .dataset import DATASETS
from .dataset.image_folder_dataset import ImageFolderDataset
from .dataset.imagenet_dataset import ENCODING_KEY
from .preprocess import create_operators

MODES = ("Train", "Eval")
SHOWN = 20  # how many entries a list in the report shows before "... and N more"


@dataclass
class Sample:
    path: str
    label: Optional[int]
    source: str  # "list.txt:12" or the image path (class folders)
    line: Optional[str] = None  # the list line as written (kept as is by --fix)


@dataclass
class SplitReport:
    mode: str
    what: str
    samples: list = field(default_factory=list)
    errors: list = field(default_factory=list)  # (source, message)
    bad: set = field(default_factory=set)  # indices of samples with errors
    warnings: list = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    sizes: list = field(default_factory=list)  # (w, h) of readable images
    digests: dict = field(default_factory=dict)  # index -> sha256
    label_names: Optional[list] = None
    list_file: Optional[str] = None
    image_root: str = "."
    encoding: Optional[str] = None
    delimiter: Optional[str] = None
    line_numbers: list = field(default_factory=list)  # the list line of each sample (list files)
    missing: list = field(default_factory=list)  # indices of samples whose file does not exist


class Progress:
    """`checking Train: 40% 400/1000 images, ETA 0:12` on stderr: a live line on a terminal, every 10 % otherwise.
    Only shown for runs of more than a few hundred images."""

    def __init__(self, what, total, stream=None, min_total=200):
        self.what, self.total, self.done = what, total, 0
        self.stream = stream or sys.stderr
        self.enabled = total >= min_total
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start, self.next_tenth, self.last = time.monotonic(), 1, 0.0

    def step(self) -> None:
        """Count one more image checked and redraw the line when it is due."""
        self.done += 1
        if not self.enabled:
            return
        now = time.monotonic()
        tenth = 10 * self.done // self.total
        if (self.tty and now - self.last > 0.2) or (not self.tty and tenth >= self.next_tenth):
            self.last, self.next_tenth = now, tenth + 1
            rate = self.done / max(now - self.start, 1e-6)
            eta = int((self.total - self.done) / rate)
            line = (f"checking {self.what}: {100 * self.done // self.total:3d}% {self.done}/{self.total} images, "
                    f"ETA {eta // 60}:{eta % 60:02d}")
            self.stream.write(("\r" + line) if self.tty else line + "\n")
            self.stream.flush()

    def close(self) -> None:
        """End the live line on a terminal."""
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


class _FolderListing(ImageFolderDataset):
    """The samples of class folders without the dataset's up-front file checks: check_images reports each file."""

    def check_files_exist(self, what: str) -> None:
        pass


def _read_list(report, dataset_cfg, delimiter):
    list_file = dataset_cfg.get("cls_label_path")
    if not list_file or not os.path.exists(list_file):
        raise FileNotFoundError(f"DataLoader.{report.mode}.dataset.cls_label_path: list file {list_file!r} not found")
    report.list_file = list_file
    report.encoding, report.delimiter = dataset_cfg.get("encoding"), delimiter
    key = ENCODING_KEY.replace("<Train|Eval>", report.mode)
    beside = Path(list_file).absolute().parent / "label_list.txt"
    report.label_names = read_label_names(beside, report.encoding, key) if beside.is_file() else None
    for lineno, line in read_text_lines(list_file, report.encoding, key):
        where = f"{list_file}:{lineno}"
        rel, label_text = split_list_line(line, delimiter)
        try:
            label = int(label_text) if label_text is not None else None
        except ValueError:
            label = None
        sample = Sample(os.path.join(report.image_root, rel), label, where, line)
        report.samples.append(sample)
        report.line_numbers.append(lineno)
        if label is None:
            _error(report, len(report.samples) - 1, f"{where}: expected `relative/path.jpg label` with an integer "
                                                    f"label last, got {line!r}")


def _read_folders(report, dataset_cfg):
    dataset = _FolderListing(dataset_cfg["image_root"], transform_ops=None)
    report.label_names = dataset.label_names
    for path, label in dataset.samples:
        report.samples.append(Sample(path, label, path, f"{os.path.relpath(path, report.image_root)} {label}"))


def _error(report, index, message):
    report.bad.add(index)
    report.errors.append(message)


def read_split(mode: str, section: Optional[dict], class_num: Optional[int]) -> Tuple[SplitReport, List[dict]]:
    """The samples of DataLoader.<mode> without opening any image, plus the list-line errors."""
    dataset_cfg = dict((section or {}).get("dataset") or {})
    name = dataset_cfg.get("name", "ImageNetDataset")
    if name not in DATASETS:
        raise ValueError(f"DataLoader.{mode}.dataset.name={name!r}; check_dataset knows {sorted(DATASETS)}")
    report = SplitReport(mode, name, image_root=dataset_cfg.get("image_root") or ".")
    if name == "ImageFolderDataset":
        _read_folders(report, dataset_cfg)
    else:
        _read_list(report, dataset_cfg, dataset_cfg.get("delimiter"))
    report.what = f"{name} {report.list_file or report.image_root}"
    if dataset_cfg.get("relabel"):  # as the dataset does: the distinct labels become 0..n-1 in ascending order
        new_label = {old: new for new, old in enumerate(sorted({s.label for s in report.samples
                                                                if s.label is not None}))}
        for sample in report.samples:
            sample.label = new_label.get(sample.label)
    for i, sample in enumerate(report.samples):
        if sample.label is not None and not 0 <= sample.label < (class_num or sys.maxsize):
            _error(report, i, f"{sample.source}: label {sample.label} is outside [0, {class_num}) (Arch.class_num "
                              f"{class_num}); fix the list or Arch.class_num")
    return report, dataset_cfg.get("transform_ops") or []


def check_images(report: SplitReport, transform_ops: List[dict], progress: bool = True) -> None:
    """Decode each image with the split's DecodeImage, run the rest of its transform_ops, hash its bytes."""
    ops = create_operators(transform_ops, what=f"DataLoader.{report.mode}.dataset.transform_ops")
    decode = ops[0] if ops and isinstance(ops[0], DecodeImage) else DecodeImage()
    rest = ops[1:] if ops and ops[0] is decode else ops
    bar = Progress(report.mode, len(report.samples)) if progress else None
    for i, sample in enumerate(report.samples):
        if bar:
            bar.step()
        if i in report.bad:  # a malformed line or a bad label: already reported, and --fix drops it
            continue
        try:
            data = read_image_file(sample.path)  # a regular file within the pixel limit
        except (OSError, NotAFileError) as exc:
            reason = ("file not found" if isinstance(exc, FileNotFoundError) else getattr(exc, "reason", None)
                      or exc.strerror or str(exc))
            _error(report, i, f"{sample.source}: cannot read {sample.path}: {reason}")
            if isinstance(exc, FileNotFoundError):
                report.missing.append(i)
            continue
        except READ_ERRORS as exc:  # over the pixel limit, from the header
            _error(report, i, f"{sample.source}: {sample.path}: {exc}")
            continue
        report.digests[i] = hashlib.sha256(data).hexdigest()
        try:
            img = decode(data)
        except READ_ERRORS as exc:
            _error(report, i, f"{sample.source}: {sample.path}: {exc}")
            continue
        report.sizes.append((img.shape[1], img.shape[0]))
        try:
            for op in rest:
                img = op(img)
        except READ_ERRORS as exc:
            _error(report, i, f"{sample.source}: {sample.path}: the transform_ops fail on it: {exc}")
            continue
        report.counts[sample.label] += 1
    if bar:
        bar.close()


def _groups(digests, indices=None):
    by_digest = defaultdict(list)
    for i, digest in digests.items():
        if indices is None or i in indices:
            by_digest[digest].append(i)
    return [group for group in by_digest.values() if len(group) > 1]


def _listed(items):
    shown = [f"  {item}" for item in items[:SHOWN]]
    if len(items) > SHOWN:
        shown.append(f"  ... and {len(items) - SHOWN} more")
    return shown


def _histogram_lines(report, class_num):
    n = class_num or (max(report.counts) + 1 if report.counts else 0)
    name = (lambda c: f"{c} {report.label_names[c]}" if report.label_names and c < len(report.label_names)
            else str(c))
    counts = [report.counts.get(c, 0) for c in range(n)]
    lines = []
    order = sorted(range(n), key=lambda c: (-counts[c], c))
    shown = order if n <= SHOWN else order[:SHOWN // 2] + order[-SHOWN // 2:]
    lines.append("  class histogram (images per class" + (", largest and smallest" if n > SHOWN else "") + "): "
                 + ", ".join(f"{name(c)}: {counts[c]}" for c in shown))
    empty = [c for c in range(n) if counts[c] == 0]
    if empty:
        report.warnings.append(f"{report.mode}: {len(empty)} classes have no images: "
                               + ", ".join(name(c) for c in empty[:SHOWN]) + (" ..." if len(empty) > SHOWN else ""))
    present = [v for v in counts if v > 0]
    if present:
        ratio = max(present) / min(present)
        lines.append(f"  imbalance ratio (largest / smallest non-empty class): {ratio:.2f}")
        if ratio >= 10:
            report.warnings.append(f"{report.mode}: classes are imbalanced {ratio:.1f}:1; consider re-sampling or "
                                   f"collecting more images of the small classes")
    return lines


def _fix_path(report):
    if report.list_file:
        original = Path(report.list_file)
        return original.with_name(f"{original.stem}.clean{original.suffix or '.txt'}")
    return Path(report.image_root) / f"{report.mode.lower()}_list.clean.txt"


def _same_source(reports) -> bool:
    """Whether Train and Eval read the same list file (or the same class folders)."""
    if len(reports) != 2:
        return False
    train, evaluation = reports["Train"], reports["Eval"]
    if train.list_file or evaluation.list_file:
        return bool(train.list_file and evaluation.list_file
                    and os.path.realpath(train.list_file) == os.path.realpath(evaluation.list_file))
    return os.path.realpath(train.image_root) == os.path.realpath(evaluation.image_root)


def _encoding_hint(report: SplitReport) -> str:
    """Advice to set the list's encoding when a GB18030 reading names the files that are missing."""
    if not report.list_file or not report.missing:
        return ""
    def to_file(line):
        return os.path.join(report.image_root, split_list_line(line, report.delimiter)[0])

    return missing_paths_hint(report.list_file, [report.line_numbers[i] for i in report.missing], to_file,
                              report.encoding, ENCODING_KEY.replace("<Train|Eval>", report.mode))


@dataclass
class CleanList:
    """A cleaned list to write: its lines, the splits it serves, and the sample indices left out."""

    lines: List[str]
    modes: List[str]
    total: int
    drop: set
    from_folders: bool

    @property
    def text(self) -> str:
        return "".join(f"{line}\n" for line in self.lines)


def clean_lists(reports: dict, leaks: list, same_source: bool) -> Dict[Path, CleanList]:
    """{target path: CleanList}: each split's lines without errors, repeated files and (Train) files also in
    Eval; one list for both splits when they read the same list file (a line bad for either is left out)."""
    plans: Dict[Path, CleanList] = {}
    for mode, report in reports.items():
        target = _fix_path(report)
        if report.list_file and target.resolve() == Path(report.list_file).resolve():
            raise ValueError(f"refusing to overwrite {report.list_file}")
        drop = {i for g in _groups(report.digests) for i in g[1:]} | report.bad
        if mode == "Train" and not same_source:
            drop |= {i for i, _ in leaks}
        earlier = plans.get(target)
        if earlier is not None:
            drop |= earlier.drop
        lines = [s.line for i, s in enumerate(report.samples) if i not in drop]
        plans[target] = CleanList(lines, (earlier.modes if earlier else []) + [mode], len(report.samples), drop,
                                  not report.list_file)
    return plans


def write_clean_lists(plans: Dict[Path, CleanList], say: Callable[[str], None]) -> None:
    """Write the cleaned lists together; an existing one with other content is kept aside first (never lost)."""
    changed, kept_aside = {}, []
    for target, plan in plans.items():
        if target.is_file() and target.read_text(encoding="utf-8", errors="replace") == plan.text:
            continue  # already what it would be
        if target.exists():
            kept_aside.append((target, keep_aside(target)))
        changed[target] = plan.text
    try:
        write_texts_atomic(changed)
    except OSError:
        for _target, aside in kept_aside:  # nothing was replaced: the extra names are not needed
            os.remove(aside)
        raise
    for target, aside in kept_aside:
        say(f"kept the earlier {target.name} (other content) as {aside}")
    for target, plan in plans.items():
        key = "cls_label_path (with name: ImageNetDataset)" if plan.from_folders else "cls_label_path"
        use = " ".join(f"-o DataLoader.{mode}.dataset.{key}={target}" for mode in plan.modes)
        say(f"wrote {target}{'' if target in changed else ' (unchanged)'}: {len(plan.lines)} of {plan.total} lines "
            f"kept; train with {use}")


def check_dataset(config: dict, fix: bool = False, progress: bool = True, out: Optional[TextIO] = None) -> int:
    """Check DataLoader.Train and .Eval of `config`; print the report to `out`; 0 when no errors were found."""
    out = out or sys.stdout
    say = lambda text="": print(text, file=out, flush=True)  # noqa: E731
    class_num = (config.get("Arch") or {}).get("class_num")
    class_num = int(class_num) if class_num is not None else None
    loaders = config.get("DataLoader") or {}
    modes = [m for m in MODES if loaders.get(m)]
    if not modes:
        raise KeyError("the config has no DataLoader.Train or DataLoader.Eval section to check")
    set_max_image_pixels((config.get("Global") or {}).get("max_image_pixels"))
    reports = {}
    for mode in modes:
        report, ops = read_split(mode, loaders[mode], class_num)
        say(f"== {mode}: {report.what} ({len(report.samples)} images)")
        check_images(report, ops, progress)
        readable = len(report.samples) - len(report.bad)
        say(f"  readable with valid labels: {readable}, with errors: {len(report.bad)}")
        for line in _listed(report.errors):
            say(line)
        hint = _encoding_hint(report)
        if hint:
            say(f"  {report.list_file}: {hint}")
        labels = [s.label for s in report.samples if s.label is not None]
        if labels:
            say(f"  labels: {min(labels)}..{max(labels)} (Arch.class_num: {class_num if class_num else 'not set'})")
        for line in _histogram_lines(report, class_num):
            say(line)
        if report.sizes:
            widths, heights = [w for w, _ in report.sizes], [h for _, h in report.sizes]
            say(f"  image sizes: width {min(widths)}..{max(widths)}, height {min(heights)}..{max(heights)}")
        groups = _groups(report.digests)
        if groups:
            report.warnings.append(f"{mode}: {sum(len(g) - 1 for g in groups)} duplicate files (same content):")
            for line in _listed([" = ".join(report.samples[i].source for i in g) for g in groups]):
                report.warnings.append(line)
        reports[mode] = report
    leaks = []
    same_source = _same_source(reports)
    if same_source:
        source = reports["Train"].list_file or reports["Train"].image_root
        reports["Train"].warnings.append(f"Train and Eval read the same data ({source}): the eval top-1 measures "
                                         f"training images; make a val split with tools/split_dataset.py")
    elif len(reports) == 2:
        eval_digests = {d: i for i, d in reports["Eval"].digests.items()}
        leaks = [(i, eval_digests[d]) for i, d in reports["Train"].digests.items() if d in eval_digests]
        if leaks:
            reports["Train"].warnings.append(f"{len(leaks)} Train files are also in Eval (same content): the eval "
                                             f"top-1 overstates accuracy")
            reports["Train"].warnings.extend(_listed([f"{reports['Train'].samples[i].source} = "
                                                      f"{reports['Eval'].samples[j].source}" for i, j in leaks]))
    warnings = [w for r in reports.values() for w in r.warnings]
    errors = sum(len(r.errors) for r in reports.values())
    if warnings:
        say("warnings:")
        for line in warnings:
            say(line if line.startswith("  ") else f"  {line}")
    if fix:
        write_clean_lists(clean_lists(reports, leaks, same_source), say)
    say(f"summary: {errors} errors, {len([w for w in warnings if not w.startswith('  ')])} warnings"
        + ("" if errors else " — the dataset is ready"))
    return 1 if errors else 0
