"""ImageNet validation sets in the layouts users have -> (path, label) records.

Three layouts are recognised (labels always 0-based in the 1000 classes, sorted-synset order,
which is the order of ``LOC_synset_mapping.txt``; 1001-class models add 1 themselves):

- ``caffe``: Caffe / Open Model Zoo. ``val.txt`` with lines ``ILSVRC2012_val_00000001.JPEG 65``;
  images in ``ILSVRC2012_img_val/`` beside it, or flat beside it.
- ``kaggle``: Kaggle's ImageNet localization challenge. ``LOC_val_solution.csv``
  (``ImageId,PredictionString``, the first token of PredictionString is the synset) and
  ``LOC_synset_mapping.txt`` (class order); images in ``ILSVRC/Data/CLS-LOC/val/``, ``val/``
  or beside the csv.
- ``folders``: one folder per synset (``n01440764/*.JPEG``, PyTorch ImageFolder after valprep).
  Class order is ``LOC_synset_mapping.txt`` if one sits beside the folders (or one level up),
  else, for the 1000 ImageNet classes, the synset order omzconv ships (so a copy holding only
  some classes works), else the sorted folder names, which must then be all ``num_classes``.

``data_dir`` may be the layout's directory or its parent. Nothing here decodes images.
"""

from __future__ import annotations

import csv
import os
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from omzconv.errors import DatasetError

if TYPE_CHECKING:
    from omzconv.registry import DatasetSpec

CAFFE_LABELS = "val.txt"
CAFFE_IMAGES = "ILSVRC2012_img_val"
KAGGLE_SOLUTION = "LOC_val_solution.csv"
SYNSET_MAPPING = "LOC_synset_mapping.txt"
IMAGENET_SYNSETS = Path(__file__).with_name("data") / "imagenet_synsets.txt"  # the 1000, in class order
KAGGLE_IMAGE_DIRS = (Path("ILSVRC/Data/CLS-LOC/val"), Path("val"))
IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png"})
_SYNSET = re.compile(r"n\d{8}")
IMAGENET_CLASSES = 1000


@dataclass(frozen=True, order=True)
class Record:
    """One image and its 0-based label in sorted-synset order."""

    path: Path
    label: int


@dataclass
class Dataset:
    layout: str  # "caffe", "kaggle" or "folders"
    description: str  # one line: which layout was found and where
    records: list[Record]  # sorted by path
    problems: list[tuple[Path, str]] = field(default_factory=list)  # (path, reason)
    synsets: tuple[str, ...] | None = None  # class order, when the layout names the classes


def load_dataset(data_dir: str | os.PathLike[str], num_classes: int = 1000) -> Dataset:
    """Find the layout in ``data_dir`` (or in one of its subdirectories) and read its records.

    Listed images that are absent and labels outside ``0..num_classes-1`` go to ``problems``;
    malformed annotation files, an unknown layout, or no usable image raise DatasetError.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset directory not found")

    found = _detect(root)
    if found is None:
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        candidates = [(d, kind) for d in subdirs if (kind := _detect(d)) is not None]
        if len(candidates) > 1:
            preferred = [c for c in candidates if c[0].name.lower() in ("val", "validation")]
            if len(preferred) != 1:
                names = ", ".join(f"{d.name} ({kind})" for d, kind in candidates)
                raise DatasetError(
                    f"{root}: several ImageNet validation sets found in its subdirectories "
                    f"({names}); point at one of them"
                )
            candidates = preferred
        if candidates:
            root, found = candidates[0]
    if found is None:
        raise DatasetError(
            f"{root}: no ImageNet validation layout found here or in its subdirectories; looked for "
            f"{CAFFE_LABELS} (Caffe/OMZ, images in {CAFFE_IMAGES}/ or beside it), "
            f"{KAGGLE_SOLUTION} + {SYNSET_MAPPING} (Kaggle, images in ILSVRC/Data/CLS-LOC/val/), "
            f"or class folders named like n01440764/"
        )

    loader = {"caffe": _load_caffe, "kaggle": _load_kaggle, "folders": _load_folders}[found]
    dataset = loader(root, num_classes)
    dataset.records.sort()
    if not dataset.records:
        detail = f" (first problem: {dataset.problems[0][0]}: {dataset.problems[0][1]})" if dataset.problems else ""
        raise DatasetError(f"{dataset.description}: no usable images{detail}")
    return dataset


def _detect(directory: Path) -> str | None:
    if (directory / CAFFE_LABELS).is_file():
        return "caffe"
    if (directory / KAGGLE_SOLUTION).is_file():
        return "kaggle"
    if _synset_dirs(directory):
        return "folders"
    return None


def _synset_dirs(directory: Path) -> list[Path]:
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    return sorted(p for p in entries if _SYNSET.fullmatch(p.name) and p.is_dir())


def _file_names(directory: Path) -> set[str]:
    """Names in a directory, read once (cheaper than 50,000 stat calls)."""
    try:
        return set(os.listdir(directory))
    except OSError:
        return set()


def _exists(image_dir: Path, names: set[str], name: str) -> bool:
    if "/" in name or os.sep in name:
        return (image_dir / name).is_file()
    return name in names


def read_synset_mapping(path: Path, num_classes: int | None = None) -> tuple[str, ...]:
    """Synset ids in file order from ``LOC_synset_mapping.txt`` (``n01440764 tench, ...``)."""
    synsets: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        synset = line.split(maxsplit=1)[0]
        if not _SYNSET.fullmatch(synset):
            raise DatasetError(f"{path}:{number}: expected a synset id like n01440764, got {synset!r}")
        synsets.append(synset)
    if len(set(synsets)) != len(synsets):
        raise DatasetError(f"{path}: lists some synsets more than once")
    if num_classes is not None and len(synsets) != num_classes:
        raise DatasetError(f"{path}: lists {len(synsets)} synsets, expected {num_classes}")
    return tuple(synsets)


def _load_caffe(root: Path, num_classes: int) -> Dataset:
    labels_file = root / CAFFE_LABELS
    image_dir = root / CAFFE_IMAGES if (root / CAFFE_IMAGES).is_dir() else root
    names = _file_names(image_dir)
    try:
        lines = labels_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{labels_file}: cannot read: {exc}") from exc

    records: list[Record] = []
    problems: list[tuple[Path, str]] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not _is_int(parts[1]):
            raise DatasetError(
                f"{labels_file}:{number}: expected '<image file> <label>', got {line.strip()!r}"
            )
        name, label = parts[0], int(parts[1])
        path = image_dir / name
        if name in seen:
            problems.append((path, f"listed twice in {labels_file.name} (line {number})"))
            continue
        seen.add(name)
        if not 0 <= label < num_classes:
            problems.append((path, f"label {label} outside 0..{num_classes - 1}"))
        elif not _exists(image_dir, names, name):
            problems.append((path, f"listed in {labels_file.name} but not found"))
        else:
            records.append(Record(path, label))
    where = f"images in {image_dir}" if image_dir != root else "images beside it"
    description = f"Caffe/OMZ layout: {labels_file} lists {len(seen)} images, {where}"
    synsets = None
    if (root / SYNSET_MAPPING).is_file():  # optional here: only names the classes
        try:
            synsets = read_synset_mapping(root / SYNSET_MAPPING, num_classes)
        except DatasetError:
            synsets = None
    return Dataset("caffe", description, records, problems, synsets)


def _load_kaggle(root: Path, num_classes: int) -> Dataset:
    solution = root / KAGGLE_SOLUTION
    mapping = root / SYNSET_MAPPING
    if not mapping.is_file():
        raise DatasetError(f"{root}: {KAGGLE_SOLUTION} found but not {SYNSET_MAPPING} (the class order)")
    synsets = read_synset_mapping(mapping, num_classes)
    index = {s: i for i, s in enumerate(synsets)}

    image_dir = next((root / d for d in KAGGLE_IMAGE_DIRS if (root / d).is_dir()), root)
    names = _file_names(image_dir)
    records: list[Record] = []
    problems: list[tuple[Path, str]] = []
    seen: set[str] = set()
    try:
        with solution.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"ImageId", "PredictionString"} <= set(reader.fieldnames):
                raise DatasetError(
                    f"{solution}: expected the header 'ImageId,PredictionString', "
                    f"got {','.join(reader.fieldnames or [])!r}"
                )
            for row in reader:
                image_id = (row["ImageId"] or "").strip()
                if not image_id:
                    raise DatasetError(f"{solution}:{reader.line_num}: empty ImageId")
                name = image_id if Path(image_id).suffix else f"{image_id}.JPEG"
                path = image_dir / name
                if name in seen:
                    problems.append((path, f"listed twice in {solution.name} (line {reader.line_num})"))
                    continue
                seen.add(name)
                tokens = (row["PredictionString"] or "").split()
                if not tokens:
                    problems.append((path, f"no synset in {solution.name} (line {reader.line_num})"))
                elif tokens[0] not in index:
                    problems.append((path, f"synset {tokens[0]} not in {SYNSET_MAPPING}"))
                elif not _exists(image_dir, names, name):
                    problems.append((path, f"listed in {solution.name} but not found"))
                else:
                    records.append(Record(path, index[tokens[0]]))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{solution}: cannot read: {exc}") from exc
    description = f"Kaggle layout: {solution} lists {len(seen)} images, images in {image_dir}"
    return Dataset("kaggle", description, records, problems, synsets)


def _load_folders(root: Path, num_classes: int) -> Dataset:
    folders = _synset_dirs(root)
    mapping = next((m for m in (root / SYNSET_MAPPING, root.parent / SYNSET_MAPPING) if m.is_file()), None)
    problems: list[tuple[Path, str]] = []
    if mapping is not None:
        synsets = read_synset_mapping(mapping, num_classes)
        order = f"class order from {mapping}"
    elif num_classes == IMAGENET_CLASSES:
        synsets = read_synset_mapping(IMAGENET_SYNSETS, num_classes)
        known = set(synsets)
        unknown = [f.name for f in folders if f.name not in known]
        if unknown:
            more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            raise DatasetError(
                f"{root}: {len(unknown)} class folders are not ImageNet synsets ({', '.join(unknown[:3])}{more}); "
                f"remove them, or put {SYNSET_MAPPING} beside the folders to give the class order")
        order = ("class order of the 1000 ImageNet synsets" if len(folders) == num_classes
                 else f"{len(folders)} of the 1000 ImageNet classes, in their synset order")
    elif len(folders) == num_classes:
        synsets = tuple(f.name for f in folders)
        order = "class order = sorted folder names"
    else:
        raise DatasetError(
            f"{root}: found {len(folders)} class folders, expected {num_classes}; with fewer "
            f"classes put {SYNSET_MAPPING} beside the folders to give the class order"
        )
    index = {s: i for i, s in enumerate(synsets)}

    records: list[Record] = []
    for folder in folders:
        label = index.get(folder.name)
        if label is None:
            problems.append((folder, f"synset folder not in {mapping}"))
            continue
        images = sorted(
            folder / name
            for name in os.listdir(folder)
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES
        )
        if not images:
            problems.append((folder, "class folder holds no images"))
        records.extend(Record(p, label) for p in images)
    description = f"class-folder layout: {len(folders)} synset folders in {root}, {order}"
    return Dataset("folders", description, records, problems, synsets)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def balanced_subset(records: Iterable[Record], n: int, seed: int = 0) -> list[Record]:
    """``n`` records spread evenly over classes, deterministic for a given seed.

    Classes are visited round-robin in a seeded order; each class yields its images in a
    seeded order. The result does not depend on the order of ``records``. Asking for more
    than there are returns them all.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    by_label: dict[int, list[Record]] = defaultdict(list)
    for r in records:
        by_label[r.label].append(r)
    rng = random.Random(seed)
    labels = sorted(by_label)
    rng.shuffle(labels)
    queues: list[list[Record]] = []
    for label in labels:
        items = sorted(by_label[label])
        rng.shuffle(items)
        queues.append(items)

    chosen: list[Record] = []
    depth = 0
    while len(chosen) < n:
        row = [q[depth] for q in queues if depth < len(q)]
        if not row:
            break
        chosen.extend(row[: n - len(chosen)])
        depth += 1
    return chosen


def split_disjoint(records: Sequence[Record], n_first: int, seed: int) -> tuple[list[Record], list[Record]]:
    """(a balanced subset of ``n_first`` records, all the others in their original order).

    For a calibration set that shares no image with the evaluation set.
    """
    if not 0 <= n_first <= len(records):
        raise DatasetError(f"cannot take {n_first} images from a dataset of {len(records)}")
    first = balanced_subset(records, n_first, seed)
    taken = set(first)
    rest = [r for r in records if r not in taken]
    return first, rest


def resolve_data_dir(spec: DatasetSpec, data_dir: str | os.PathLike[str] | None, why: str) -> Path:
    """`data_dir`, else the dataset's environment variable; else a one-line DatasetError that
    starts with `why` and says what to pass."""
    if data_dir:
        if not Path(data_dir).is_dir():
            raise DatasetError(f"{data_dir}: dataset directory not found (--data-dir)")
        return Path(data_dir)
    if spec.env and os.environ.get(spec.env):
        if not Path(os.environ[spec.env]).is_dir():
            raise DatasetError(f"{os.environ[spec.env]}: dataset directory not found (from {spec.env}; set it to "
                               f"your copy of the {spec.description} or pass --data-dir)")
        return Path(os.environ[spec.env])
    env = f" (or set {spec.env})" if spec.env else ""
    layouts = "; ".join(f"{k}: {v}" for k, v in spec.layouts.items())
    raise DatasetError(f"{why}: pass --data-dir DIR with your copy of the {spec.description}{env} "
                       f"(layouts understood — {layouts})")
