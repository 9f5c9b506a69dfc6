"""Where omzconv may write: only under its cache and output directories (issue 16 §1), atomic
directory swaps that replace only what omzconv made, locks that leave no files, and the cleaning of
what a killed process left (issue 16 §4, issue 17 §4)."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from omzconv.cli import main
from omzconv.errors import PathError
from omzconv.fileutil import DIR_MARKER, STALE_AFTER, artefact_lock, atomic_dir, atomic_path, remove_stale_temps
from omzconv.registry import load_registry
from omzconv.workspace import Workspace

ROOT_YAML = Path(__file__).resolve().parents[1] / "models.yaml"


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def model():
    return load_registry(ROOT_YAML).model("mobilenet_v1_025_128")


# --- the workspace check, independently of the registry's name rules ----------------------------


@pytest.mark.parametrize("name", ["/some/dir/m", "../../x", "..", "synthetic/../.."])
@pytest.mark.parametrize("synthetic", [False, True])
def test_every_path_builder_refuses_an_escaping_name(tmp_path, model, name, synthetic):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("mine")
    escaping = dataclasses.replace(model, name=name.replace("/some/dir", str(victim)))
    workspace = Workspace(tmp_path / "cache", tmp_path / "out", synthetic=synthetic)
    builders = [workspace.download_dir, workspace.archive_path, workspace.checkpoint_dir,
                workspace.checkpoint_path, workspace.source_path, workspace.model_dir, workspace.frozen_path,
                lambda m: workspace.ir_path(m, "FP32")]
    for builder in builders:
        with pytest.raises(PathError, match="omzconv creates, replaces and deletes only under its cache and "
                                            "output directories"):
            builder(escaping)
    assert tree(tmp_path) == ["victim", "victim/precious"]


@pytest.mark.parametrize("name", [".", ""])
def test_the_roots_themselves_are_never_a_model_folder(tmp_path, model, name):
    workspace = Workspace(tmp_path / "cache", tmp_path / "out")
    for builder in (workspace.model_dir, workspace.download_dir):
        with pytest.raises(PathError, match="lies outside"):
            builder(dataclasses.replace(model, name=name))


def test_an_escaping_member_name_is_refused_too(tmp_path, model):
    workspace = Workspace(tmp_path / "cache", tmp_path / "out")
    spec = dataclasses.replace(model.files[0], name="../../../archive.tgz")
    with pytest.raises(PathError):
        workspace.archive_path(dataclasses.replace(model, files=(spec,)))
    with pytest.raises(PathError):
        workspace.source_path(dataclasses.replace(model, frozen_graph="/etc/passwd"))


def test_a_symbolic_link_out_of_the_output_dir_is_refused(tmp_path, model):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / model.name).symlink_to(outside)
    with pytest.raises(PathError, match="lies outside"):
        Workspace(tmp_path / "cache", tmp_path / "out").ir_path(model, "FP32")


def test_paths_of_a_valid_model_stay_where_they_were(tmp_path, model):
    workspace = Workspace(tmp_path / "cache", tmp_path / "out", synthetic=True)
    assert workspace.ir_path(model, "FP16", "u8") == tmp_path / "out/synthetic" / model.name / "FP16-u8" / f"{model.name}.xml"
    assert workspace.archive_path(model) == tmp_path / "cache/synthetic" / model.name / model.files[0].name


def test_the_pipeline_touches_nothing_for_an_escaping_model(tmp_path, model):
    from omzconv.pipeline import obtain_checkpoint

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("mine")
    escaping = dataclasses.replace(model, name=str(victim / "m"))
    with pytest.raises(PathError):
        obtain_checkpoint(escaping, Workspace(tmp_path / "cache", tmp_path / "out", synthetic=True))
    assert tree(tmp_path) == ["victim", "victim/precious"]


def test_a_registry_naming_a_model_by_a_path_is_refused_before_anything_is_written(tmp_path):
    """The issue's case: a model named /some/dir/m made `convert --all` replace /some/dir wholesale."""
    victim = tmp_path / "some" / "dir"
    victim.mkdir(parents=True)
    (victim / "precious").write_text("mine")
    data = yaml.safe_load(ROOT_YAML.read_text())
    for bad in (str(victim / "m"), "../../x"):
        models = dict(data["models"])
        models[bad] = models.pop("mobilenet_v1_025_128")
        registry = tmp_path / "evil.yaml"
        registry.write_text(yaml.safe_dump({**data, "models": models}, sort_keys=False))
        result = CliRunner().invoke(main, ["--models", str(registry), "--cache-dir", str(tmp_path / "cache"),
                                           "-o", str(tmp_path / "out"), "convert", "--all",
                                           "--synthetic-weights", "-p", "FP32"])
        assert result.exit_code == 1, result.output
        assert result.output == f"Error: evil.yaml: {bad}: expected a model name of letters, digits, '.', '_' or " \
                                "'-', not starting with '.' or '-' (at most 100 characters), got " + repr(bad) + "\n"
    assert tree(tmp_path) == ["evil.yaml", "some", "some/dir", "some/dir/precious"]


# --- atomic directory swaps ---------------------------------------------------------------------


def _fill(final: Path, text: str) -> None:
    with atomic_dir(final) as tmp:
        (tmp / "data").write_text(text)


def test_atomic_dir_replaces_its_own_directory(tmp_path):
    final = tmp_path / "FP32"
    _fill(final, "one")
    _fill(final, "two")
    assert sorted(p.name for p in final.iterdir()) == [DIR_MARKER, "data"]
    assert (final / "data").read_text() == "two"
    assert os.listdir(tmp_path) == ["FP32"]  # no temporary, no moved-aside old directory


def test_atomic_dir_never_replaces_a_directory_it_did_not_make(tmp_path):
    final = tmp_path / "FP32"
    final.mkdir()
    (final / "precious").write_text("mine")
    with pytest.raises(PathError, match=rf"^refusing to replace {final}: omzconv did not make it"):
        _fill(final, "new")
    assert os.listdir(final) == ["precious"]
    assert os.listdir(tmp_path) == ["FP32"]
    link = tmp_path / "link"
    link.symlink_to(final)
    with pytest.raises(PathError):
        _fill(link, "new")
    assert link.is_symlink() and os.listdir(final) == ["precious"]


def test_atomic_dir_takes_an_empty_directory_and_one_made_by_omzconv_0_1(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    _fill(empty, "x")
    assert (empty / "data").read_text() == "x"
    legacy = tmp_path / "FP16"
    legacy.mkdir()
    (legacy / "omzconv.json").write_text("{}")
    _fill(legacy, "y")
    assert sorted(os.listdir(legacy)) == [DIR_MARKER, "data"]


def test_a_failing_fill_leaves_the_old_directory(tmp_path):
    final = tmp_path / "FP32"
    _fill(final, "old")
    with pytest.raises(RuntimeError):
        with atomic_dir(final) as tmp:
            (tmp / "data").write_text("half")
            raise RuntimeError
    assert (final / "data").read_text() == "old"
    assert os.listdir(tmp_path) == ["FP32"]


# --- temporaries a killed process left, and lock files -----------------------------------------


def _age(path: Path, seconds: float = STALE_AFTER + 60) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_stale_temporaries_go_live_and_young_ones_stay(tmp_path):
    final = tmp_path / "inception_v4.frozen.pb"
    stale_file = tmp_path / ".inception_v4.frozen.pb.abc123.tmp"
    stale_dir = tmp_path / ".inception_v4.frozen.pb.def456.tmp"
    young = tmp_path / ".inception_v4.frozen.pb.young1.tmp"
    other = tmp_path / ".other.abc123.tmp"
    with atomic_path(final) as live:  # held by this process while it is written
        stale_file.write_bytes(b"x" * 1000)
        stale_dir.mkdir()
        (stale_dir / "inner").write_text("x")
        young.write_text("x")
        other.write_text("x")
        for path in (stale_file, stale_dir, other, live):
            _age(path)
        removed = remove_stale_temps(final)
        assert live.exists()
        live.write_text("done")
    assert sorted(p.name for p in removed) == sorted([stale_dir.name, stale_file.name])
    assert sorted(os.listdir(tmp_path)) == sorted([final.name, young.name, other.name])


KILLED_WRITER = """
import sys, time
from pathlib import Path
from omzconv.fileutil import artefact_lock, atomic_dir
final = Path(sys.argv[1])
with artefact_lock(final), atomic_dir(final) as tmp:
    (tmp / "big").write_bytes(b"x" * 100000)
    print("writing", flush=True)
    time.sleep(60)
"""


def test_what_a_killed_process_left_is_removed_by_the_next_run_of_that_step(tmp_path):
    final = tmp_path / "out" / "m" / "FP32"
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(final)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})
    try:
        assert writer.stdout.readline().strip() == "writing"
        [temp] = [p for p in final.parent.iterdir() if p.name.endswith(".tmp")]
        _age(temp)
        assert remove_stale_temps(final) == []  # held by a live process: left alone
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    assert temp.is_dir()  # the killed process left it, and its lock file
    with artefact_lock(final):  # the next run of that step
        assert not temp.exists()
    assert os.listdir(final.parent) == []  # no temporary and no .lock file left


def test_artefact_lock_excludes_and_leaves_no_lock_file(tmp_path):
    final = tmp_path / "m" / "inception_v4.frozen.pb"
    inside, overlaps = [0], []

    def work():
        for _ in range(20):
            with artefact_lock(final):
                inside[0] += 1
                if inside[0] != 1:
                    overlaps.append(inside[0])
                time.sleep(0.001)
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert overlaps == []
    assert os.listdir(final.parent) == []


def test_a_linked_file_is_read_through_but_a_linked_folder_is_refused(tmp_path, model):
    """The last component is a link omzconv replaces or deletes as a link (a user's IR linked in);
    a linked folder on the way would take writes elsewhere."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "m.xml").write_text("<net/>")
    workspace = Workspace(tmp_path / "cache", tmp_path / "out")
    xml = workspace.ir_path(model, "FP32")
    xml.parent.mkdir(parents=True)
    xml.symlink_to(elsewhere / "m.xml")
    assert workspace.ir_path(model, "FP32") == xml
    (xml.parent.parent / "FP16").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(PathError, match="lies outside"):
        workspace.ir_path(model, "FP16")
