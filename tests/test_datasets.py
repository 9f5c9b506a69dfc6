"""ImageNet validation layouts -> records (omzconv.datasets).

Layouts are built in tmp_path from symlinks to real images in ../shared/imagenet-sample; labels
are checked against that sample's val.txt (Caffe convention: 0-based, sorted-synset order).
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from omzconv.datasets import Record, balanced_subset, load_dataset, split_disjoint
from omzconv.errors import DatasetError


@pytest.fixture(scope="session")
def sample_dir(shared_dir: Path) -> Path:
    return shared_dir / "imagenet-sample"


@pytest.fixture(scope="session")
def val_labels(sample_dir: Path) -> dict[str, int]:
    pairs = (line.split() for line in (sample_dir / "val.txt").read_text().splitlines() if line.strip())
    return {name: int(label) for name, label in pairs}


@pytest.fixture(scope="session")
def synsets(sample_dir: Path) -> list[str]:
    lines = (sample_dir / "LOC_synset_mapping.txt").read_text().splitlines()
    return [line.split()[0] for line in lines if line.strip()]


@pytest.fixture(scope="session")
def picked(val_labels: dict[str, int]) -> list[str]:
    """Six real images from different classes (names like n01440764_tench.JPEG)."""
    names = sorted(val_labels)
    return names[::37][:6]


def _synset_of(name: str) -> str:
    return name.split("_", 1)[0]


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.symlink_to(src)


def test_sample_is_consistent(val_labels: dict[str, int], synsets: list[str]) -> None:
    # the premises the layout tests rely on: 1000 sorted synsets, val.txt labels index them
    assert len(synsets) == 1000 and synsets == sorted(synsets)
    assert len(val_labels) == 200
    for name, label in val_labels.items():
        assert synsets[label] == _synset_of(name)


# ---------------------------------------------------------------- Caffe / OMZ


def test_real_sample_loads_as_caffe(sample_dir: Path, val_labels: dict[str, int]) -> None:
    ds = load_dataset(sample_dir)
    assert ds.layout == "caffe"
    assert ds.problems == []
    assert "val.txt" in ds.description and "ILSVRC2012_img_val" in ds.description
    assert {r.path.name: r.label for r in ds.records} == val_labels
    assert ds.records == sorted(ds.records)
    assert all(r.path.parent == sample_dir / "ILSVRC2012_img_val" for r in ds.records)
    assert ds.synsets is not None and ds.synsets[0] == "n01440764"


@pytest.mark.parametrize("flat", [False, True])
def test_caffe_layout(tmp_path: Path, sample_dir: Path, val_labels, picked, flat: bool) -> None:
    root = tmp_path / "imagenet"
    image_dir = root if flat else root / "ILSVRC2012_img_val"
    for name in picked:
        _link(sample_dir / "ILSVRC2012_img_val" / name, image_dir / name)
    (root / "val.txt").write_text("".join(f"{n} {val_labels[n]}\n" for n in reversed(picked)))

    for where in (root, tmp_path):  # the layout's directory or its parent
        ds = load_dataset(where)
        assert ds.layout == "caffe"
        assert [r.path for r in ds.records] == sorted(image_dir / n for n in picked)
        assert {r.path.name: r.label for r in ds.records} == {n: val_labels[n] for n in picked}
        assert ds.problems == []
        assert str(root / "val.txt") in ds.description


def test_missing_image_and_bad_label_are_problems(tmp_path: Path, sample_dir: Path, val_labels, picked) -> None:
    image_dir = tmp_path / "ILSVRC2012_img_val"
    for name in picked:
        _link(sample_dir / "ILSVRC2012_img_val" / name, image_dir / name)
    lines = [f"{n} {val_labels[n]}" for n in picked]
    lines.append("ILSVRC2012_val_00099999.JPEG 3")  # listed, absent
    lines.append(f"{picked[0]} 5")  # listed twice
    (image_dir / "extra.JPEG").symlink_to(sample_dir / "ILSVRC2012_img_val" / picked[0])
    lines.append("extra.JPEG 1000")  # present, label out of range
    (tmp_path / "val.txt").write_text("\n".join(lines) + "\n")

    ds = load_dataset(tmp_path)
    problems = {p.name: reason for p, reason in ds.problems}
    assert set(problems) == {"ILSVRC2012_val_00099999.JPEG", "extra.JPEG", picked[0]}
    assert "not found" in problems["ILSVRC2012_val_00099999.JPEG"]
    assert "1000" in problems["extra.JPEG"] and "0..999" in problems["extra.JPEG"]
    assert "twice" in problems[picked[0]]
    # the good ones survive with their first-listed labels
    assert {r.path.name: r.label for r in ds.records} == {n: val_labels[n] for n in picked}
    # a smaller class count moves more labels out of range
    small = load_dataset(tmp_path, num_classes=100)
    assert {r.path.name for r in small.records} == {n for n in picked if val_labels[n] < 100}


def test_malformed_val_txt_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "val.txt").write_text("a.JPEG 1\nb.JPEG one\n")
    with pytest.raises(DatasetError, match=r"val\.txt:2"):
        load_dataset(tmp_path)


def test_nothing_found_raises(tmp_path: Path) -> None:
    (tmp_path / "val.txt").write_text("missing.JPEG 1\n")
    with pytest.raises(DatasetError, match="no usable images.*not found"):
        load_dataset(tmp_path)


# ---------------------------------------------------------------- Kaggle


@pytest.mark.parametrize("image_sub", ["ILSVRC/Data/CLS-LOC/val", "val", "."])
def test_kaggle_layout(tmp_path: Path, sample_dir: Path, val_labels, picked, image_sub: str) -> None:
    root = tmp_path / "imagenet-object-localization-challenge"
    image_dir = root / image_sub  # "." -> beside the csv
    root.mkdir()
    (root / "LOC_synset_mapping.txt").write_text((sample_dir / "LOC_synset_mapping.txt").read_text())
    rows = ["ImageId,PredictionString"]
    expected: dict[str, int] = {}
    for i, name in enumerate(picked, 1):
        image_id = f"ILSVRC2012_val_{i:08d}"
        _link(sample_dir / "ILSVRC2012_img_val" / name, image_dir / f"{image_id}.JPEG")
        syn = _synset_of(name)
        rows.append(f"{image_id},{syn} 10 20 300 400 {syn} 1 2 3 4 ")
        expected[f"{image_id}.JPEG"] = val_labels[name]
    (root / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")

    for where in (root, tmp_path):
        ds = load_dataset(where)
        assert ds.layout == "kaggle"
        assert {r.path.name: r.label for r in ds.records} == expected
        assert all(r.path.parent == image_dir for r in ds.records)
        assert ds.problems == []
        assert "LOC_val_solution.csv" in ds.description
        assert ds.synsets is not None and len(ds.synsets) == 1000


def test_kaggle_problems_and_mapping_checks(tmp_path: Path, sample_dir: Path, picked) -> None:
    image_dir = tmp_path / "ILSVRC/Data/CLS-LOC/val"
    _link(sample_dir / "ILSVRC2012_img_val" / picked[0], image_dir / "ILSVRC2012_val_00000001.JPEG")
    _link(sample_dir / "ILSVRC2012_img_val" / picked[1], image_dir / "ILSVRC2012_val_00000003.JPEG")
    (tmp_path / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\n"
        f"ILSVRC2012_val_00000001,{_synset_of(picked[0])} 1 2 3 4\n"
        f"ILSVRC2012_val_00000002,{_synset_of(picked[1])} 1 2 3 4\n"  # absent
        "ILSVRC2012_val_00000003,n99999999 1 2 3 4\n"  # unknown synset
    )
    with pytest.raises(DatasetError, match="LOC_synset_mapping.txt"):
        load_dataset(tmp_path)  # no mapping: the class order is unknown

    (tmp_path / "LOC_synset_mapping.txt").write_text("n01440764 tench\nn01443537 goldfish\n")
    with pytest.raises(DatasetError, match="2 synsets, expected 1000"):
        load_dataset(tmp_path)

    (tmp_path / "LOC_synset_mapping.txt").write_text((sample_dir / "LOC_synset_mapping.txt").read_text())
    ds = load_dataset(tmp_path)
    assert [r.path.name for r in ds.records] == ["ILSVRC2012_val_00000001.JPEG"]
    problems = {p.name: reason for p, reason in ds.problems}
    assert "not found" in problems["ILSVRC2012_val_00000002.JPEG"]
    assert "n99999999" in problems["ILSVRC2012_val_00000003.JPEG"]


# ---------------------------------------------------------------- class folders


def _make_folders(root: Path, sample_dir: Path, names: list[str]) -> None:
    for name in names:
        _link(sample_dir / "ILSVRC2012_img_val" / name, root / _synset_of(name) / name)


def test_folders_with_mapping_beside(tmp_path: Path, sample_dir: Path, val_labels, picked) -> None:
    root = tmp_path / "val"
    _make_folders(root, sample_dir, picked)
    (root / "notes").mkdir()  # not a synset: ignored
    (root / _synset_of(picked[0]) / "README.txt").write_text("not an image")
    (root / "LOC_synset_mapping.txt").write_text((sample_dir / "LOC_synset_mapping.txt").read_text())
    ds = load_dataset(root)
    assert ds.layout == "folders"
    assert {r.path.name: r.label for r in ds.records} == {n: val_labels[n] for n in picked}
    assert ds.problems == []
    assert "LOC_synset_mapping.txt" in ds.description


def test_folders_mapping_one_level_up_and_parent_dir(tmp_path: Path, sample_dir: Path, val_labels, picked) -> None:
    _make_folders(tmp_path / "val", sample_dir, picked)
    _make_folders(tmp_path / "train", sample_dir, picked[:2])  # must not be chosen
    (tmp_path / "LOC_synset_mapping.txt").write_text((sample_dir / "LOC_synset_mapping.txt").read_text())
    ds = load_dataset(tmp_path)
    assert ds.layout == "folders"
    assert all(r.path.parent.parent == tmp_path / "val" for r in ds.records)
    assert {r.path.name: r.label for r in ds.records} == {n: val_labels[n] for n in picked}


def test_folders_ambiguous_parent_raises(tmp_path: Path, sample_dir: Path, picked) -> None:
    _make_folders(tmp_path / "a", sample_dir, picked[:2])
    _make_folders(tmp_path / "b", sample_dir, picked[2:4])
    with pytest.raises(DatasetError, match="several"):
        load_dataset(tmp_path)


def test_folders_subset_without_mapping_uses_the_shipped_synset_order(tmp_path: Path, sample_dir: Path, val_labels,
                                                                       picked) -> None:
    _make_folders(tmp_path, sample_dir, picked)  # 6 of the 1000 classes, no LOC_synset_mapping.txt
    ds = load_dataset(tmp_path)
    assert ds.layout == "folders"
    assert {r.path.name: r.label for r in ds.records} == {n: val_labels[n] for n in picked}
    assert ds.problems == []
    assert "6 of the 1000 ImageNet classes" in ds.description


def test_folders_with_all_classes_and_no_mapping(tmp_path: Path, sample_dir: Path, val_labels, picked, synsets) -> None:
    _make_folders(tmp_path, sample_dir, picked)
    for syn in synsets:
        (tmp_path / syn).mkdir(exist_ok=True)
    ds = load_dataset(tmp_path)
    assert {r.path.name: r.label for r in ds.records} == {n: val_labels[n] for n in picked}
    # the other 994 folders are empty: reported, not fatal
    assert len(ds.problems) == 994
    assert all(reason == "class folder holds no images" for _, reason in ds.problems)


def test_folders_that_are_not_imagenet_synsets_are_named(tmp_path: Path, sample_dir: Path, picked) -> None:
    _make_folders(tmp_path, sample_dir, picked)
    (tmp_path / "n99999999").mkdir()
    (tmp_path / "n00000001").mkdir()
    with pytest.raises(DatasetError, match=r"2 class folders are not ImageNet synsets \(n00000001, n99999999\).*"
                                           r"LOC_synset_mapping"):
        load_dataset(tmp_path)


def test_folders_of_another_class_count_still_need_a_mapping(tmp_path: Path, sample_dir: Path, picked) -> None:
    _make_folders(tmp_path, sample_dir, picked)
    with pytest.raises(DatasetError, match=r"found 6 class folders, expected 10.*LOC_synset_mapping"):
        load_dataset(tmp_path, num_classes=10)


def test_unknown_layout_lists_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.JPEG").write_bytes(b"x")
    with pytest.raises(DatasetError) as info:
        load_dataset(tmp_path)
    message = str(info.value)
    for expected in ("val.txt", "LOC_val_solution.csv", "LOC_synset_mapping.txt", "n01440764", str(tmp_path)):
        assert expected in message
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "nope")


# ---------------------------------------------------------------- subsets


@pytest.fixture()
def uneven() -> list[Record]:
    # 10 classes with 2..11 images each (65 records)
    return [Record(Path(f"c{c}/img{i}.JPEG"), c) for c in range(10) for i in range(c + 2)]


def test_balanced_subset_is_balanced(uneven: list[Record]) -> None:
    sub = balanced_subset(uneven, 25, seed=0)
    assert len(sub) == len(set(sub)) == 25
    counts = Counter(r.label for r in sub)
    assert len(counts) == 10 and max(counts.values()) - min(counts.values()) <= 1

    # past the smallest class: classes still holding images keep being filled evenly
    sub = balanced_subset(uneven, 50, seed=0)
    counts = Counter(r.label for r in sub)
    sizes = Counter(r.label for r in uneven)
    top = max(counts.values())
    for label, size in sizes.items():
        assert counts[label] >= min(size, top - 1), (label, counts)
    assert counts[0] == 2  # class 0 has only two images

    # fewer than the number of classes: all from different classes
    assert len({r.label for r in balanced_subset(uneven, 7, seed=3)}) == 7


def test_balanced_subset_is_deterministic_and_seeded(uneven: list[Record]) -> None:
    a = balanced_subset(uneven, 20, seed=0)
    shuffled = uneven[:]
    random.Random(9).shuffle(shuffled)
    assert balanced_subset(shuffled, 20, seed=0) == a  # input order does not matter
    assert balanced_subset(uneven, 20, seed=0) == a
    b = balanced_subset(uneven, 20, seed=1)
    assert set(b) != set(a)
    # more than available returns everything once
    everything = balanced_subset(uneven, 1000, seed=0)
    assert sorted(everything) == sorted(uneven)
    assert balanced_subset(uneven, 0) == []
    with pytest.raises(ValueError):
        balanced_subset(uneven, -1)


def test_split_disjoint(uneven: list[Record]) -> None:
    first, rest = split_disjoint(uneven, 20, seed=5)
    assert len(first) == 20 and len(rest) == len(uneven) - 20
    assert not set(first) & set(rest)
    assert set(first) | set(rest) == set(uneven)
    assert rest == [r for r in uneven if r in set(rest)]  # original order kept
    assert first == balanced_subset(uneven, 20, seed=5)
    assert split_disjoint(uneven, 20, seed=6)[0] != first
    with pytest.raises(DatasetError, match="66"):
        split_disjoint(uneven, 66, seed=0)


def test_real_sample_subset(sample_dir: Path) -> None:
    ds = load_dataset(sample_dir)
    calib, evaluation = split_disjoint(ds.records, 50, seed=0)
    assert len({r.label for r in calib}) == 50  # one image per class in the sample
    assert not {r.path for r in calib} & {r.path for r in evaluation}
    assert len(evaluation) == 150
