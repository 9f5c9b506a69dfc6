"""The CLI as a user meets it: fast help, list/info/download, one-line errors, exit codes."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from omzconv.cli import main

ROOT_YAML = Path(__file__).resolve().parents[1] / "models.yaml"


@pytest.fixture
def run(tmp_path):
    """Invoke omzconv with cache and output dirs inside tmp_path."""
    def invoke(*args: str, models: Path | None = None):
        options = ["--cache-dir", str(tmp_path / "cache"), "-o", str(tmp_path / "out")]
        if models:
            options += ["--models", str(models)]
        return CliRunner().invoke(main, [*options, *args], catch_exceptions=False)
    return invoke


def test_help_and_list_do_not_import_tensorflow_or_openvino():
    code = ("import sys; from click.testing import CliRunner; from omzconv.cli import main; "
            "r1 = CliRunner().invoke(main, ['--help']); r2 = CliRunner().invoke(main, ['list', '--json']); "
            "assert r1.exit_code == 0 and r2.exit_code == 0, (r1.output, r2.output); "
            "heavy = [m for m in ('tensorflow', 'openvino', 'tf_slim') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_version(run):
    from omzconv import __version__
    assert run("--version").output.strip() == f"omzconv, version {__version__}"


def test_list_json_names_models_and_status(run):
    result = run("list", "--json")
    data = json.loads(result.output)
    assert [m["name"] for m in data["models"]][:2] == ["inception_v4", "inception_resnet_v2"]
    assert len(data["models"]) == 17
    v4 = data["models"][0]
    assert (v4["source"], v4["input_size"], v4["preprocessing"], v4["tags"]) == ("checkpoint", 299, "inception", ["omz", "inception"])
    assert v4["alias"] == "googlenet-v4-tf" and v4["gflops"] == 24.584
    assert v4["status"] == {"downloaded": False, "frozen": False, "converted": []}


def test_list_table_shows_what_is_done(run, tmp_path):
    ir = tmp_path / "out" / "inception_v4" / "FP16" / "inception_v4.xml"
    ir.parent.mkdir(parents=True)
    ir.write_text("<net/>")
    output = run("list").output
    line = next(line for line in output.splitlines() if "googlenet-v4-tf" in line)
    assert "FP16" in line and "FP32" not in line


def test_list_fits_80_columns_with_names_and_aliases_whole(run, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    lines = run("list").output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(line.split()[:2] == ["mobilenet_v1_1.0_224", "mobilenet-v1-1.0-224-tf"] for line in lines)
    assert any(line.split()[:5] == ["vgg_16", "-", "ckpt", "224", "vgg"] for line in lines)
    assert any(line.split()[:5] == ["inception_v3", "googlenet-v3", "graph", "299", "inception"] for line in lines)


def test_tag_selects_a_group_on_every_model_command(run):
    names = [line.split()[0] for line in run("list", "--tag", "mobilenet").output.splitlines()[1:]]
    assert names == ["mobilenet_v1_025_128", "mobilenet_v1_1.0_224", "mobilenet_v2_1.0_224", "mobilenet_v2_1.4_224"]
    dry = run("download", "--tag", "vgg", "--dry-run").output
    assert "vgg_16_2016_08_28.tar.gz: fetch" in dry and "vgg_19_2016_08_28.tar.gz: fetch" in dry
    assert "inception" not in dry
    result = CliRunner().invoke(main, ["convert", "--tag", "nope"])
    assert result.exit_code == 1 and "unknown tag 'nope'; known tags: inception, mobilenet, omz" in result.output
    from omzconv.cli import main as cli
    for name in ("download", "freeze", "convert", "verify", "quantize", "benchmark"):
        assert "--tag" in {opt for p in cli.commands[name].params for opt in p.opts}, name


def test_info_by_alias_json(run, tmp_path):
    data = json.loads(run("info", "inception-resnet-v2-tf", "--json").output)
    assert data["name"] == "inception_resnet_v2"
    assert data["files"][0]["hash"] == "md5:9e0f18e1259acf943e30690460d96123"
    assert data["paths"]["ir"]["FP32"] == str(tmp_path / "out" / "inception_resnet_v2" / "FP32" / "inception_resnet_v2.xml")
    assert [o["name"] for o in data["outputs"] if o["default"]] == ["InceptionResnetV2/Logits/Logits/BiasAdd"]


def test_unknown_model_is_one_line_exit_1(run):
    result = run("info", "resnet50")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: unknown model 'resnet50'; did you mean resnet_v2_50, resnet_v1_50, resnet_v2_152? "
        "`omzconv list` shows all 17"]


def test_usage_error_exit_2(run):
    assert run("list", "--bogus").exit_code == 2


def test_bad_registry_is_one_line(run, tmp_path):
    bad = tmp_path / "models.yaml"
    bad.write_text(ROOT_YAML.read_text().replace("size: 171177982", "size: -1"))
    result = run("list", models=bad)
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: models.yaml: inception_v4: files[0].size: expected a non-negative integer, got -1")


def test_dry_run_fetches_nothing(run, tmp_path):
    result = run("download", "--all", "--dry-run")
    assert result.exit_code == 0
    assert "inception_v4_2016_09_09.tar.gz: fetch 171177982 bytes" in result.output
    assert "inception_resnet_v2_2016_08_30.tar.gz: fetch" in result.output
    assert not (tmp_path / "cache").exists()


# --- download against a local server ------------------------------------------------------------

def _official_shaped_archive(member: str) -> bytes:
    payload = b"not really a checkpoint " * 1000
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


@pytest.fixture
def local_registry(tmp_path, httpserver):
    """models.yaml whose archives are served by a local HTTP server (first URL 404s)."""
    data = yaml.safe_load(ROOT_YAML.read_text())
    for name, model in data["models"].items():
        archive = _official_shaped_archive(model.get("frozen_graph") or model["checkpoint"])
        spec = model["files"][0]
        if spec["hash"] != "unpublished":
            spec["size"] = len(archive)
            spec["hash"] = "sha256:" + hashlib.sha256(archive).hexdigest()
        spec["urls"] = [httpserver.url_for(f"/missing/{spec['name']}"), httpserver.url_for(f"/{spec['name']}")]
        httpserver.expect_request(f"/missing/{spec['name']}").respond_with_data("no", status=404)
        httpserver.expect_request(f"/{spec['name']}").respond_with_data(archive)
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_download_all_in_parallel_then_rerun_skips(run, tmp_path, local_registry, httpserver):
    result = run("download", "--all", "--jobs", "2", "--json", models=local_registry)
    assert result.exit_code == 0, result.output
    paths = json.loads(result.output)
    ckpt = Path(paths["inception_v4"])
    assert ckpt == tmp_path / "cache" / "inception_v4" / "checkpoint" / "inception_v4.ckpt"
    assert ckpt.read_bytes().startswith(b"not really a checkpoint")
    assert Path(paths["inception_resnet_v2"]).name == "inception_resnet_v2_2016_08_30.ckpt"
    assert Path(paths["inception_v3"]).name == "inception_v3_2016_08_28_frozen.pb"  # source: frozen_graph
    # No published hash: the sha256 of what arrived is recorded beside the archive and checked later.
    archive = tmp_path / "cache" / "vgg_16" / "vgg_16_2016_08_28.tar.gz"
    recorded = archive.with_name(archive.name + ".sha256").read_text()
    assert recorded.startswith("sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest())
    assert "no hash was published" in recorded
    served = len(httpserver.log)
    assert run("download", "--all", models=local_registry).exit_code == 0
    assert len(httpserver.log) == served  # nothing fetched again

    listed = json.loads(run("list", "--json", models=local_registry).output)
    assert all(m["status"]["downloaded"] for m in listed["models"])

    archive.write_bytes(archive.read_bytes()[:-1] + b"x")  # changed since: it no longer verifies
    from omzconv.download import verify_file
    from omzconv.registry import load_registry
    with pytest.raises(Exception, match="hash mismatch: expected sha256:"):
        verify_file(archive, load_registry(local_registry).model("vgg_16").files[0])


def test_download_offline_says_how_to_recover(run, tmp_path):
    data = yaml.safe_load(ROOT_YAML.read_text())
    data["models"]["inception_v4"]["files"][0]["urls"] = ["http://127.0.0.1:9/a.tar.gz"]
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run("-q", "download", "inception_v4", models=path)
    assert result.exit_code == 1
    message = result.output.strip()
    assert message.startswith("Error: ") and "\n" not in message
    assert "http://127.0.0.1:9/a.tar.gz" in message and "--synthetic-weights" in message
    assert not (tmp_path / "cache" / "inception_v4" / "inception_v4_2016_09_09.tar.gz").exists()
