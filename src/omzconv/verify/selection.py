"""Which images: the dataset read in whatever layout it has, a class-balanced `--limit` subset,
and each model's labels for them. Missing images and labels out of range are skipped and counted,
or an error with `strict`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from omzconv.datasets import Record, balanced_subset, load_dataset
from omzconv.errors import DatasetError
from omzconv.registry import DatasetSpec, Model
from omzconv.verify.report import DatasetInfo, Problem, Skipped

FIRST_PROBLEMS = 5  # problem images named in the report


@dataclass(frozen=True)
class Selection:
    """The images to evaluate and what the dataset said about itself."""

    info: DatasetInfo
    records: tuple[Record, ...]
    problems: tuple[tuple[Path, str], ...]


def skipped(problems: Sequence[tuple[Path, str]]) -> Skipped:
    return Skipped(len(problems), tuple(Problem(str(p), r) for p, r in problems[:FIRST_PROBLEMS]))


def strict_error(what: str, problems: Sequence[tuple[Path, str]]) -> DatasetError:
    path, reason = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return DatasetError(f"{what}: {path}: {reason}{more}; without --strict such images are skipped and counted")


def select_images(spec: DatasetSpec, data_dir: Path, *, limit: int | None = None, seed: int = 0,
                  strict: bool = False) -> Selection:
    """Read the dataset (layout detected by `datasets.load_dataset`) and take `limit` images of it,
    class-balanced and deterministic for `seed`. Missing images and labels out of range are
    problems: an error with `strict`, otherwise skipped and counted."""
    data_dir = Path(data_dir).resolve()
    dataset = load_dataset(data_dir, spec.num_classes)
    if strict and dataset.problems:
        raise strict_error(spec.name, dataset.problems)
    if limit is not None and limit < 1:
        raise DatasetError(f"--limit must be a positive number of images, got {limit}")
    records = balanced_subset(dataset.records, limit, seed) if limit is not None else list(dataset.records)
    info = DatasetInfo(
        name=spec.name, description=spec.description, layout=dataset.layout, found=dataset.description,
        data_dir=str(data_dir), listed=len(dataset.records), selected=len(records), limit=limit, seed=seed,
        full_size=spec.size, skipped=skipped(dataset.problems))
    return Selection(info, tuple(records), tuple(dataset.problems))


def model_labels(model: Model, records: Sequence[Record]) -> tuple[np.ndarray, list[tuple[Path, str]]]:
    """The model's class index for each record (dataset label + label_offset: 1001-class models
    have background at 0) and the records whose class the model does not have."""
    labels = np.array([r.label + model.label_offset for r in records], np.int64)
    bad = [(r.path, f"label {r.label} + offset {model.label_offset} outside the model's "
                    f"{model.num_classes} classes") for r, c in zip(records, labels) if c >= model.num_classes]
    return labels, bad
