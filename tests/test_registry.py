"""models.yaml → typed registry: the real file loads, and bad input names file, model and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from omzconv.errors import ConfigError, UnknownModelError, UsageError
from omzconv.registry import default_models_path, load_registry

ROOT_YAML = Path(__file__).resolve().parents[1] / "models.yaml"


@pytest.fixture
def write_registry(tmp_path):
    """Write models.yaml with one change applied; return its path."""
    def write(change) -> Path:
        data = yaml.safe_load(ROOT_YAML.read_text())
        change(data)
        path = tmp_path / "models.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path
    return write


def test_real_registry_has_both_models_with_their_facts():
    registry = load_registry(ROOT_YAML)
    v4 = registry.model("googlenet-v4-tf")
    assert v4.name == "inception_v4"
    assert v4.files[0].size == 171177982
    assert str(v4.files[0].digest).startswith("sha384:97765872")
    assert v4.default_outputs[0].name == "InceptionV4/Logits/Predictions"
    assert v4.converted_input.name == "data" and v4.converted_input.aliases == ("input",)
    irv2 = registry.model("inception-resnet-v2-tf")
    assert irv2.files[0].digest.algorithm == "md5" and irv2.files[0].size is None
    assert [o.name for o in irv2.default_outputs] == ["InceptionResnetV2/Logits/Logits/BiasAdd"]
    assert irv2.output("InceptionResnetV2/AuxLogits/Logits/BiasAdd").kind == "logits"
    assert irv2.preprocessing.central_fraction == 0.875 and irv2.preprocessing.mean == (127.5,)
    assert registry.tolerances.precisions["FP32"].self_check_max_prob_delta == 1e-4
    assert registry.dataset("imagenet-val").num_classes == 1000


def test_default_path_is_env_then_packaged_then_checkout(monkeypatch, tmp_path):
    monkeypatch.setenv("OMZCONV_MODELS", str(tmp_path / "x.yaml"))
    assert default_models_path() == tmp_path / "x.yaml"
    monkeypatch.delenv("OMZCONV_MODELS")
    path = default_models_path()
    assert path.read_text() == ROOT_YAML.read_text()


def test_select_by_name_alias_all_and_unknown():
    registry = load_registry(ROOT_YAML)
    assert [m.name for m in registry.select([], all_models=True)] == ["inception_v4", "inception_resnet_v2"]
    assert [m.name for m in registry.select(["googlenet-v4-tf", "inception_v4"], False)] == ["inception_v4"]
    with pytest.raises(UnknownModelError, match="known models: inception_v4 .googlenet-v4-tf., inception_resnet_v2"):
        registry.model("resnet50")
    with pytest.raises(UsageError, match="--all"):
        registry.select([], all_models=False)


def test_yaml_syntax_error_names_the_path_line_and_column(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text("schema: 1\nmodels:\n  a:\n    alias: x\n   bad: [\n")
    with pytest.raises(ConfigError) as info:
        load_registry(path)
    message = str(info.value)
    assert message.startswith(f"{path}:5:4: not valid YAML: ")
    assert "<unicode string>" not in message and "\n" not in message


def test_unknown_key_suggests_the_closest_allowed_one(tmp_path):
    data = yaml.safe_load(ROOT_YAML.read_text())
    data["models"]["inception_v4"]["preprocessing"]["centrl_fraction"] = data["models"]["inception_v4"][
        "preprocessing"].pop("central_fraction")
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"unknown key 'centrl_fraction'; did you mean 'central_fraction'\?"):
        load_registry(path)


def _set(path: str, value):
    """A change that sets data[...] at a dotted path (integers index lists)."""
    def change(data):
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        node = data
        for key in keys[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return change


_DELETE = object()


@pytest.mark.parametrize("path, value, message", [
    ("models.inception_v4.files.0.size", -1,
     "models.yaml: inception_v4: files[0].size: expected a non-negative integer, got -1"),
    ("models.inception_v4.files.0.hash", "sha384:abc",
     "models.yaml: inception_v4: files[0].hash: expected 96 hex digits for sha384, got 'abc'"),
    ("models.inception_v4.files.0.hash", "sha1:" + "0" * 40,
     "models.yaml: inception_v4: files[0].hash: expected '<alg>:<hex>' with alg one of md5, sha256, sha384"),
    ("models.inception_v4.files.0.name", "/etc/passwd",
     "models.yaml: inception_v4: files[0].name: expected a relative path, got absolute '/etc/passwd'"),
    ("models.inception_resnet_v2.checkpoint", "../escape.ckpt",
     "models.yaml: inception_resnet_v2: checkpoint: expected a plain relative path without '..'"),
    ("models.inception_v4.colour", "RGB",
     "models.yaml: inception_v4: unknown key 'colour'"),
    ("models.inception_v4.preprocessing.central_fraction", 1.5,
     "models.yaml: inception_v4: preprocessing.central_fraction: expected a fraction in (0, 1], got 1.5"),
    ("models.inception_v4.preprocessing.mean", [1, 2],
     "models.yaml: inception_v4: preprocessing.mean: expected one number or three"),
    ("models.inception_v4.num_classes", "1001",
     "models.yaml: inception_v4: num_classes: expected an integer >= 2, got '1001'"),
    ("models.inception_v4.files.0.urls", [],
     "models.yaml: inception_v4: files[0].urls: expected a non-empty list, got a list"),
    ("models.inception_v4.files.0.urls.0", "ftp://x/y",
     "models.yaml: inception_v4: files[0].urls[0]: expected an http(s):// or file:// URL"),
    ("models.inception_v4.references.0.output", "Nope",
     "models.yaml: inception_v4: references[0].output: expected one of the model's outputs, got 'Nope'"),
    ("models.inception_v4.input", _DELETE, "models.yaml: inception_v4: missing key 'input'"),
    ("models.inception_resnet_v2.alias", "googlenet-v4-tf", "'googlenet-v4-tf' is already used by inception_v4"),
    ("tolerances.precisions.FP32.top1_pp", "a lot",
     "models.yaml: tolerances.precisions.FP32.top1_pp: expected a number, got 'a lot'"),
    ("schema", 2, "models.yaml: schema: unsupported schema 2"),
])
def test_invalid_registry_names_file_model_and_field(write_registry, path, value, message):
    with pytest.raises(ConfigError) as info:
        load_registry(write_registry(_set(path, value)))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_all_three_hash_algorithms_accepted(write_registry):
    for digest in ("md5:" + "a" * 32, "sha256:" + "B" * 64, "sha384:" + "c" * 96):
        registry = load_registry(write_registry(_set("models.inception_v4.files.0.hash", digest)))
        assert str(registry.model("inception_v4").files[0].digest) == digest.lower()


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read model registry"):
        load_registry(tmp_path / "missing.yaml")
    bad = tmp_path / "models.yaml"
    bad.write_text("models: [unclosed\n")
    with pytest.raises(ConfigError, match=r"models\.yaml:\d+:\d+: not valid YAML"):
        load_registry(bad)


def test_registry_objects_are_immutable():
    model = load_registry(ROOT_YAML).model("inception_v4")
    with pytest.raises(AttributeError):
        model.num_classes = 10  # type: ignore[misc]
