"""models.yaml → typed registry: the real file loads, and bad input names file, model and field."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import pytest
import yaml

from omzconv.errors import ConfigError, UnknownModelError, UsageError
from omzconv.registry import default_models_path, load_registry

ROOT_YAML = Path(__file__).resolve().parents[1] / "models.yaml"


@functools.lru_cache(maxsize=1)
def _root_data() -> dict:
    return yaml.safe_load(ROOT_YAML.read_text())


@pytest.fixture
def write_registry(tmp_path):
    """Write models.yaml with one change applied; return its path."""
    def write(change) -> Path:
        data = copy.deepcopy(_root_data())
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


OMZ_FAMILY = {  # name → Open Model Zoo name
    "inception_v4": "googlenet-v4-tf", "inception_resnet_v2": "inception-resnet-v2-tf",
    "inception_v1": "googlenet-v1-tf", "inception_v2": "googlenet-v2-tf", "inception_v3": "googlenet-v3",
    "mobilenet_v1_025_128": "mobilenet-v1-0.25-128", "mobilenet_v1_1.0_224": "mobilenet-v1-1.0-224-tf",
    "mobilenet_v2_1.0_224": "mobilenet-v2-1.0-224", "mobilenet_v2_1.4_224": "mobilenet-v2-1.4-224",
}
SLIM_ZOO = ["resnet_v1_50", "resnet_v1_101", "resnet_v1_152", "resnet_v2_50", "resnet_v2_101", "resnet_v2_152",
            "vgg_16", "vgg_19"]


def test_select_by_name_alias_all_tag_and_unknown():
    registry = load_registry(ROOT_YAML)
    everything = [m.name for m in registry.select([], all_models=True)]
    assert len(everything) == 17 and everything[:2] == ["inception_v4", "inception_resnet_v2"]
    assert set(everything) == set(OMZ_FAMILY) | set(SLIM_ZOO)
    assert [m.name for m in registry.select(["googlenet-v4-tf", "inception_v4"], False)] == ["inception_v4"]
    assert {m.name for m in registry.select([], False, tags=["omz"])} == set(OMZ_FAMILY)
    assert [m.name for m in registry.select([], True, tags=["vgg", "mobilenet"])] == [
        "mobilenet_v1_025_128", "mobilenet_v1_1.0_224", "mobilenet_v2_1.0_224", "mobilenet_v2_1.4_224", "vgg_16", "vgg_19"]
    with pytest.raises(UnknownModelError, match=r"unknown model 'googlenet-v4'; did you mean .*googlenet-v4-tf"):
        registry.model("googlenet-v4")
    with pytest.raises(UnknownModelError, match=r"unknown model 'xyz'; `omzconv list` shows all 17$"):
        registry.model("xyz")
    with pytest.raises(UsageError, match="--all"):
        registry.select([], all_models=False)
    with pytest.raises(UnknownModelError, match="unknown tag 'omzz'; known tags: inception, mobilenet, omz"):
        registry.select([], False, tags=["omzz"])
    with pytest.raises(UsageError, match="not both"):
        registry.select(["vgg_16"], False, tags=["vgg"])


def test_every_model_of_the_family_with_its_facts():
    registry = load_registry(ROOT_YAML)
    for name, alias in OMZ_FAMILY.items():
        assert registry.model(alias).name == name
    for name in SLIM_ZOO:
        assert registry.model(name).alias == ""  # the Open Model Zoo never shipped them
    v1 = registry.model("googlenet-v1-tf")
    assert (v1.source, v1.checkpoint, v1.size, v1.num_classes, v1.label_offset) == ("checkpoint", "inception_v1.ckpt", 224, 1001, 1)
    assert v1.files[0].size == 24642554 and str(v1.files[0].digest).startswith("sha256:7a620c43")
    v3 = registry.model("googlenet-v3")
    assert (v3.source, v3.source_member, v3.checkpoint, v3.size) == (
        "frozen_graph", "inception_v3_2016_08_28_frozen.pb", "", 299)
    mobile = registry.model("mobilenet-v1-0.25-128")
    assert mobile.source_member == "mobilenet_v1_0.25_128_frozen.pb" and mobile.checkpoint == "mobilenet_v1_0.25_128.ckpt"
    assert mobile.network == "mobilenet_v1" and dict(mobile.network_params) == {"depth_multiplier": 0.25}
    assert mobile.input.shape == (1, 128, 128, 3) and mobile.preprocessing.size == 128
    assert dict(registry.model("mobilenet-v2-1.4-224").network_params) == {"depth_multiplier": 1.4}
    assert registry.model("mobilenet-v2-1.0-224").files[0].urls[0].startswith("https://storage.googleapis.com/mobilenet_v2/")
    r50 = registry.model("resnet_v1_50")
    assert (r50.num_classes, r50.label_offset, r50.size) == (1000, 0, 224)
    assert r50.files[0].digest is None and r50.files[0].size is None  # not published
    pre = r50.preprocessing
    assert (pre.recipe, pre.resize_side, pre.size, pre.mean, pre.scale) == ("vgg", 256, 224, (123.68, 116.78, 103.94), (1.0,))
    assert registry.model("resnet_v2_50").preprocessing.recipe == "inception" and registry.model("resnet_v2_50").size == 299
    vgg = registry.model("vgg_19")
    assert [(o.name, o.kind) for o in vgg.default_outputs] == [("vgg_19/fc8/squeezed", "logits")]
    assert registry.model("inception_v4").preprocessing.recipe == "inception"  # the default


def test_unpublished_size_and_hash_are_explicit(write_registry):
    registry = load_registry(ROOT_YAML)
    assert registry.model("inception_resnet_v2").files[0].size is None
    text = ROOT_YAML.read_text()
    for name in SLIM_ZOO:  # said in models.yaml, not left out
        entry = text[text.index(f"\n  {name}:"):][:2000]
        assert "size: unpublished" in entry and "hash: unpublished" in entry
    with pytest.raises(ConfigError, match="files.0..hash: expected .<alg>:<hex>."):
        load_registry(write_registry(_set("models.vgg_16.files.0.hash", "unknown")))


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
    ("models.inception_v3.source", "graph",
     "models.yaml: inception_v3: source: expected one of checkpoint, frozen_graph, got 'graph'"),
    ("models.inception_v3.frozen_graph", _DELETE,
     "models.yaml: inception_v3: missing key 'frozen_graph' (source: frozen_graph names the archive member"),
    ("models.inception_v1.checkpoint", _DELETE, "models.yaml: inception_v1: missing key 'checkpoint'"),
    ("models.vgg_16.preprocessing.recipe", "caffe",
     "models.yaml: vgg_16: preprocessing.recipe: expected one of inception, vgg, got 'caffe'"),
    ("models.vgg_16.preprocessing.resize_side", 200,
     "models.yaml: vgg_16: preprocessing.resize_side: expected at least size (224), got 200"),
    ("models.vgg_16.preprocessing.central_fraction", 0.875,
     "models.yaml: vgg_16: preprocessing: unknown key 'central_fraction'"),
    ("models.inception_v1.preprocessing.size", 299,
     "models.yaml: inception_v1: preprocessing.size: expected the input's size 224, got 299"),
    ("models.mobilenet_v1_025_128.network_params", [0.25],
     "models.yaml: mobilenet_v1_025_128: network_params: expected a mapping, got a list"),
    ("models.mobilenet_v1_025_128.network_params.depth_multiplier", [0.25],
     "models.yaml: mobilenet_v1_025_128: network_params.depth_multiplier: expected a number, string or boolean"),
    ("models.vgg_16.tags", ["VGG"], "models.yaml: vgg_16: tags[0]: expected a lower-case word, got 'VGG'"),
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


# --- names become paths; numbers are finite and in range (issue 16 §1, §4) -----------------------


def _rename(old: str, new: str):
    def change(data):
        data["models"] = {new if k == old else k: v for k, v in data["models"].items()}
    return change


@pytest.mark.parametrize("name", ["/some/dir/m", "../../x", "..", ".hidden", "a/b", "a\\b", "-rf", "a b",
                                  "x" * 101, "synthetic", "reports", "cache"])
def test_model_names_are_identifiers_not_paths(write_registry, name):
    with pytest.raises(ConfigError) as info:
        load_registry(write_registry(_rename("inception_v4", name)))
    message = str(info.value)
    assert message.startswith(f"models.yaml: {name}: ")
    assert "expected a model name of letters, digits" in message or "is reserved" in message \
        or "expected a non-empty string" in message
    assert "\n" not in message


def test_identifier_names_are_accepted(write_registry):
    registry = load_registry(write_registry(_rename("inception_v4", "My_model-2.0")))
    assert registry.model("My_model-2.0").alias == "googlenet-v4-tf"


@pytest.mark.parametrize("path, value, message", [
    ("models.inception_v4.alias", "../x", "models.yaml: inception_v4: alias: expected an alias of letters"),
    ("models.inception_v4.alias", "/tmp/x", "models.yaml: inception_v4: alias: expected an alias of letters"),
    ("models.inception_v4.tags", ["a/b"], "models.yaml: inception_v4: tags[0]: expected a lower-case word"),
    ("models.inception_v4.tags", [".x"], "models.yaml: inception_v4: tags[0]: expected a lower-case word"),
    ("models.inception_v4.files.0.size", 10**400,
     "models.yaml: inception_v4: files[0].size: expected at most 9007199254740992, got an integer of 401 digits"),
    ("models.inception_v4.num_classes", 10**12, "models.yaml: inception_v4: num_classes: expected at most 1000000"),
    ("models.inception_v4.gflops", 10**400, "models.yaml: inception_v4: gflops: expected a finite number"),
    ("models.inception_v4.preprocessing.mean", float("nan"),
     "models.yaml: inception_v4: preprocessing.mean: expected a finite number, got nan"),
    ("models.inception_v4.preprocessing.mean", [1.0, float("inf"), 1.0],
     "models.yaml: inception_v4: preprocessing.mean[1]: expected a finite number, got inf"),
    ("models.inception_v4.preprocessing.scale", float("inf"),
     "models.yaml: inception_v4: preprocessing.scale: expected a finite number, got inf"),
    ("models.inception_v4.preprocessing.mean", 300, "preprocessing.mean: expected a number in [-inf, 255], got 300"),
    ("models.inception_v4.preprocessing.central_fraction", float("nan"),
     "models.yaml: inception_v4: preprocessing.central_fraction: expected a finite number, got nan"),
    ("tolerances.precisions.FP32.top1_pp", float("nan"),
     "models.yaml: tolerances.precisions.FP32.top1_pp: expected a finite number, got nan"),
    ("tolerances.precisions.FP32.top1_pp", -1, "tolerances.precisions.FP32.top1_pp: expected a number in [0, 100]"),
    ("tolerances.precisions.FP32.max_prob_delta", float("inf"),
     "models.yaml: tolerances.precisions.FP32.max_prob_delta: expected a finite number, got inf"),
    ("tolerances.precisions.FP32.max_prob_delta", 1.5, "tolerances.precisions.FP32.max_prob_delta: expected a number in"),
    ("tolerances.precisions.FP32.self_check.max_prob_delta", float("nan"),
     "tolerances.precisions.FP32.self_check.max_prob_delta: expected a finite number, got nan"),
    ("tolerances.precisions.FP16.self_check.tie_margin", float("-inf"),
     "tolerances.precisions.FP16.self_check.tie_margin: expected a finite number, got -inf"),
    ("tolerances.reference_pp", float("nan"), "models.yaml: tolerances.reference_pp: expected a finite number"),
    ("models.inception_v4.input.shape", [1, 10**6, 10**6, 3], "input.shape[1]: expected at most 8192"),
])
def test_names_sizes_and_numbers_out_of_range_are_one_line_errors(write_registry, path, value, message):
    with pytest.raises(ConfigError) as info:
        load_registry(write_registry(_set(path, value)))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_dataset_names_are_identifiers(write_registry):
    def change(data):
        data["datasets"]["../escape"] = data["datasets"].pop("imagenet-val")
    with pytest.raises(ConfigError, match=r"^models\.yaml: \.\./escape: expected a dataset name of letters"):
        load_registry(write_registry(change))


def test_non_utf8_and_deeply_nested_registries_are_one_line_errors(tmp_path):
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(ROOT_YAML.read_bytes().replace(b"Inception-v4", b"Inception-v4 \xe9t\xe9", 1))
    with pytest.raises(ConfigError) as info:
        load_registry(latin1)
    assert str(info.value).startswith(f"{latin1}: not UTF-8 text (byte 0xe9 at offset ")
    deep = tmp_path / "deep.yaml"
    deep.write_text("schema: 1\nmodels: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError) as info:
        load_registry(deep)
    assert str(info.value) == f"{deep}: not a model registry: nested too deeply"
