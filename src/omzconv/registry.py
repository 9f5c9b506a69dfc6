"""A typed, validated, immutable view of models.yaml.

No TensorFlow or OpenVINO here: the CLI's fast paths (`--help`, `list`, `info`) load only this.
Every validation error names the file, the model and the field, e.g.
``models.yaml: inception_v4: files[0].size: expected a non-negative integer, got -1``.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from omzconv.errors import ConfigError, UnknownModelError, UsageError

MODELS_ENV = "OMZCONV_MODELS"
HASH_LENGTHS = {"md5": 32, "sha256": 64, "sha384": 96}
PRECISIONS = ("FP32", "FP16", "INT8")
EXECUTED = ("bf16", "f16")  # what an IR may be computed in besides f32: tolerance keys FP32@bf16, FP16@f16, ...


@dataclass(frozen=True)
class Digest:
    algorithm: str
    hexdigest: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}"


UNPUBLISHED = "unpublished"  # models.yaml's word for a size or hash nobody published
#: A model name, alias or dataset name becomes a folder or file name: letters, digits, '.', '_', '-',
#: not starting with '.' or '-' (so never '..', a hidden file or an option), at most 100 characters.
IDENTIFIER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
#: Folders omzconv keeps beside the models' own in the output and cache directories.
RESERVED_NAMES = ("synthetic", "reports", "cache")
MAX_INTEGER = 2**53  # any count or size in models.yaml; beyond it floats lose integers
MAX_SIDE = 8192  # input dimensions and resize sides
MAX_CLASSES = 1_000_000
SOURCES = ("checkpoint", "frozen_graph")
RECIPES = ("inception", "vgg")


@dataclass(frozen=True)
class FileSpec:
    name: str
    size: int | None  # None: not published
    digest: Digest | None  # None: not published (download records the sha256 it computed)
    urls: tuple[str, ...]


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int, ...]
    layout: str


@dataclass(frozen=True)
class Preprocessing:
    """How raw RGB pixels become the network's input: crop and resize by `recipe`, then
    (x - mean) / scale.

    recipe "inception": central crop keeping `central_fraction`, bilinear resize to size x size.
    recipe "vgg": aspect-preserving bilinear resize so the shorter side is `resize_side`, then a
    central size x size crop (`central_fraction` is 1.0, unused).
    """

    color: str
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    central_fraction: float
    size: int
    recipe: str = "inception"
    resize_side: int | None = None


@dataclass(frozen=True)
class OutputSpec:
    name: str
    kind: str  # "logits" or "probabilities"
    default: bool
    description: str


@dataclass(frozen=True)
class ConvertedInput:
    name: str
    aliases: tuple[str, ...]
    layout: str
    color: str
    element_type: str


@dataclass(frozen=True)
class Reference:
    source: str
    output: str
    top1: float
    top5: float


@dataclass(frozen=True)
class Model:
    name: str
    alias: str  # the Open Model Zoo name, "" if it has none
    description: str
    task: str
    framework: str
    license: str
    license_url: str
    gflops: float
    mparams: float
    files: tuple[FileSpec, ...]
    checkpoint: str  # the checkpoint in the archive ("" if it ships none)
    network: str
    num_classes: int
    label_offset: int
    input: InputSpec
    preprocessing: Preprocessing
    outputs: tuple[OutputSpec, ...]
    converted_input: ConvertedInput
    references: tuple[Reference, ...]
    source: str = "checkpoint"  # what omzconv converts: the checkpoint, or the authors' frozen graph
    frozen_graph: str = ""  # the authors' frozen graph in the archive (source: frozen_graph)
    network_params: tuple[tuple[str, Any], ...] = ()  # extra keyword arguments of the builder
    tags: tuple[str, ...] = ()

    @property
    def source_member(self) -> str:
        """The archive member the pipeline starts from."""
        return self.frozen_graph if self.source == "frozen_graph" else self.checkpoint

    @property
    def size(self) -> int:
        """Input height (= width) in pixels."""
        return self.input.shape[1]

    @property
    def default_outputs(self) -> tuple[OutputSpec, ...]:
        return tuple(o for o in self.outputs if o.default)

    def output(self, name: str) -> OutputSpec:
        """The declared output called `name`, or an undeclared node taken to be logits."""
        for spec in self.outputs:
            if spec.name == name:
                return spec
        return OutputSpec(name=name, kind="logits", default=False, description="user-selected node")


@dataclass(frozen=True)
class PrecisionTolerance:
    """What verify (and convert's self-check) accept of an IR against the original."""

    top1_pp: float  # |Δ top-1 accuracy|, percentage points (where accuracy means something: real weights)
    max_prob_delta: float = 1.0  # largest |Δ probability| of any class on any image
    tie_margin: float = 0.0  # the top-1 class must not change where the original's top-1 − top-2 > this
    self_check_max_prob_delta: float | None = None
    self_check_top1: bool = False
    self_check_tie_margin: float = 0.0


@dataclass(frozen=True)
class Tolerances:
    reference_pp: float
    precisions: dict[str, PrecisionTolerance] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    num_classes: int
    size: int
    env: str
    layouts: dict[str, str]


@dataclass(frozen=True)
class Registry:
    path: Path
    models: tuple[Model, ...]
    datasets: tuple[DatasetSpec, ...]
    tolerances: Tolerances

    def model(self, name: str) -> Model:
        for model in self.models:
            if name in (model.name, model.alias) and name:
                return model
        keys = [k for m in self.models for k in (m.name, m.alias) if k]
        close = difflib.get_close_matches(name, keys, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UnknownModelError(f"unknown model {name!r}; {hint}`omzconv list` shows all {len(self.models)}")

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(sorted({t for m in self.models for t in m.tags}))

    def select(self, names: Iterable[str], all_models: bool, tags: Iterable[str] = ()) -> tuple[Model, ...]:
        """Models named (by name or alias, duplicates dropped), or every model with `all_models`,
        or every model carrying one of `tags` (with or without `all_models`), in registry order."""
        names, tags = tuple(names), tuple(tags)
        if (all_models or tags) and names:
            raise UsageError("give model names, or --all / --tag, not both")
        unknown = [t for t in tags if t not in self.tags]
        if unknown:
            raise UnknownModelError(f"unknown tag {unknown[0]!r}; known tags: {', '.join(self.tags)}")
        if tags:
            return tuple(m for m in self.models if set(m.tags) & set(tags))
        if all_models:
            return self.models
        if not names:
            raise UsageError("no model given; name one (see `omzconv list`), or pass --all or --tag")
        picked = [self.model(n) for n in names]
        return tuple(dict.fromkeys(picked))

    def dataset(self, name: str) -> DatasetSpec:
        for spec in self.datasets:
            if spec.name == name:
                return spec
        known = ", ".join(d.name for d in self.datasets)
        raise UnknownModelError(f"unknown dataset {name!r}; known datasets: {known}")


# --- loading -------------------------------------------------------------------------------------


def default_models_path() -> Path:
    """$OMZCONV_MODELS; else the copy a wheel ships inside the package; else the checkout's root."""
    if env := os.environ.get(MODELS_ENV):
        return Path(env)
    packaged = Path(str(resources.files("omzconv") / "models.yaml"))
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "models.yaml"


def load_registry(path: Path | None = None) -> Registry:
    path = Path(path) if path is not None else default_models_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read model registry {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_error_text(path, exc)) from exc
    except RecursionError:
        raise ConfigError(f"{path}: not a model registry: nested too deeply") from None
    return _parse_registry(_Node(data, path.name, ""), path)


def yaml_error_text(path: Path, exc: yaml.YAMLError) -> str:
    """`models.yaml:12:5: not valid YAML: mapping values are not allowed here` (1-based line and
    column of the problem, the path as the user gave it, none of PyYAML's `<unicode string>`)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    place = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    return f"{place}: not valid YAML: {problem}" + (f" ({context})" if context else "")


class _Node:
    """A YAML value plus where it came from, with typed accessors that raise ConfigError."""

    def __init__(self, value: Any, file: str, where: str) -> None:
        self.value, self.file, self.where = value, file, where

    def error(self, message: str) -> ConfigError:
        where = self.where.rstrip(":")
        place = f"{self.file}: {where}" if where else self.file
        return ConfigError(f"{place}: {message}")

    def child(self, key: str | int, value: Any) -> _Node:
        if isinstance(key, int):
            where = f"{self.where}[{key}]"
        elif not self.where:
            where = key
        elif self.where.endswith(":"):  # directly under a model or dataset name
            where = f"{self.where} {key}"
        else:
            where = f"{self.where}.{key}"
        return _Node(value, self.file, where)

    def mapping(self, required: Iterable[str], optional: Iterable[str] = ()) -> dict[str, _Node]:
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {_describe(self.value)}")
        required, optional = tuple(required), tuple(optional)
        unknown = [k for k in self.value if k not in required + optional]
        if unknown:
            close = difflib.get_close_matches(str(unknown[0]), required + optional, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise self.error(f"unknown key {unknown[0]!r}{hint} (allowed: {', '.join(required + optional)})")
        missing = [k for k in required if k not in self.value]
        if missing:
            raise self.error(f"missing key {missing[0]!r}")
        return {k: self.child(k, v) for k, v in self.value.items()}

    def items(self, what: str = "") -> list[tuple[str, _Node]]:
        """The entries of a non-empty mapping; with `what` (e.g. "a model name"), each key must be an
        identifier (see IDENTIFIER) that is not reserved."""
        if not isinstance(self.value, dict) or not self.value:
            raise self.error(f"expected a non-empty mapping, got {_describe(self.value)}")
        if what:
            for key in self.value:
                _Node(key, self.file, f"{key}:").identifier(what)
        return [(str(k), _Node(v, self.file, f"{k}:")) for k, v in self.value.items()]

    def identifier(self, what: str) -> str:
        text = self.string()
        if not IDENTIFIER.fullmatch(text):
            raise self.error(f"expected {what} of letters, digits, '.', '_' or '-', not starting with '.' "
                             f"or '-' (at most 100 characters), got {text!r}")
        if text in RESERVED_NAMES:
            raise self.error(f"{text!r} is reserved: omzconv keeps its own folder of that name")
        return text

    def sequence(self, allow_empty: bool = False) -> list[_Node]:
        if not isinstance(self.value, list) or (not self.value and not allow_empty):
            raise self.error(f"expected a {'' if allow_empty else 'non-empty '}list, got {_describe(self.value)}")
        return [self.child(i, v) for i, v in enumerate(self.value)]

    def string(self, choices: Iterable[str] | None = None) -> str:
        if not isinstance(self.value, str) or not self.value.strip():
            raise self.error(f"expected a non-empty string, got {_describe(self.value)}")
        if choices is not None and self.value not in (choices := tuple(choices)):
            raise self.error(f"expected one of {', '.join(choices)}, got {self.value!r}")
        return self.value.strip()

    def integer(self, minimum: int = 0, maximum: int = MAX_INTEGER) -> int:
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            kind = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"
            raise self.error(f"expected {kind}, got {_describe(value)}")
        if value > maximum:
            raise self.error(f"expected at most {maximum}, got {_describe(value)}")
        return value

    def number(self, positive: bool = True, minimum: float | None = None, maximum: float | None = None) -> float:
        """A finite number (no NaN, no infinity): > 0 if `positive`, within [minimum, maximum] if given."""
        value = self.value
        if not isinstance(value, (int, float)) or isinstance(value, bool) or (positive and value <= 0):
            raise self.error(f"expected a {'positive ' if positive else ''}number, got {_describe(value)}")
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int too large for a float
            finite = False
        if not finite:
            raise self.error(f"expected a finite number, got {_describe(value)}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            low = "-inf" if minimum is None else f"{minimum:g}"
            high = "inf" if maximum is None else f"{maximum:g}"
            raise self.error(f"expected a number in [{low}, {high}], got {_describe(value)}")
        return float(value)

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.error(f"expected true or false, got {_describe(self.value)}")
        return self.value

    def numbers(self, maximum: float | None = None) -> tuple[float, ...]:
        """A positive number or a list of three (one per channel), each at most `maximum`."""
        if isinstance(self.value, list):
            values = tuple(n.number(maximum=maximum) for n in self.sequence())
            if len(values) != 3:
                raise self.error(f"expected one number or three (per channel), got {len(values)}")
            return values
        return (self.number(maximum=maximum),)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, (dict, list)):
        return f"a {type(value).__name__}"
    if isinstance(value, int) and abs(value) > MAX_INTEGER:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _relative_path(node: _Node) -> str:
    text = node.string()
    path = PurePosixPath(text)
    if path.is_absolute() or text.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", text):
        raise node.error(f"expected a relative path, got absolute {text!r}")
    if ".." in path.parts or "\\" in text:
        raise node.error(f"expected a plain relative path without '..' or backslashes, got {text!r}")
    return text


def _digest(node: _Node) -> Digest:
    text = node.string()
    alg, _, hexdigest = text.partition(":")
    alg = alg.lower()
    if alg not in HASH_LENGTHS:
        raise node.error(f"expected '<alg>:<hex>' with alg one of {', '.join(HASH_LENGTHS)}, got {text!r}")
    if not re.fullmatch(rf"[0-9a-fA-F]{{{HASH_LENGTHS[alg]}}}", hexdigest):
        raise node.error(f"expected {HASH_LENGTHS[alg]} hex digits for {alg}, got {hexdigest!r}")
    return Digest(alg, hexdigest.lower())


def _url(node: _Node) -> str:
    text = node.string()
    if not re.match(r"^(https?|file)://", text):
        raise node.error(f"expected an http(s):// or file:// URL, got {text!r}")
    return text


def _file_spec(node: _Node) -> FileSpec:
    f = node.mapping(["name", "hash", "urls"], ["size"])
    size = f["size"] if "size" in f else None
    return FileSpec(
        name=_relative_path(f["name"]),
        size=None if size is None or size.value == UNPUBLISHED else size.integer(),
        digest=None if f["hash"].value == UNPUBLISHED else _digest(f["hash"]),
        urls=tuple(_url(u) for u in f["urls"].sequence()),
    )


def _preprocessing(node: _Node) -> Preprocessing:
    recipe = node.value.get("recipe", "inception") if isinstance(node.value, dict) else "inception"
    shape_keys = ["central_fraction"] if recipe == "inception" else ["resize_side"]
    p = node.mapping(["color", "mean", "scale", "size", *shape_keys], ["recipe"])
    recipe = p["recipe"].string(RECIPES) if "recipe" in p else "inception"
    fraction, resize_side = 1.0, None
    size = p["size"].integer(minimum=1, maximum=MAX_SIDE)
    if recipe == "inception":
        fraction = p["central_fraction"].number()
        if fraction > 1:
            raise p["central_fraction"].error(f"expected a fraction in (0, 1], got {fraction}")
    else:
        resize_side = p["resize_side"].integer(minimum=1, maximum=MAX_SIDE)
        if resize_side < size:
            raise p["resize_side"].error(f"expected at least size ({size}), got {resize_side}")
    return Preprocessing(
        color=p["color"].string(("RGB", "BGR")),
        mean=p["mean"].numbers(maximum=255),  # pixel units, 0..255
        scale=p["scale"].numbers(maximum=255),
        central_fraction=fraction,
        size=size,
        recipe=recipe,
        resize_side=resize_side,
    )


def _model(name: str, node: _Node) -> Model:
    m = node.mapping(
        ["description", "task", "framework", "license", "files", "network",
         "num_classes", "input", "preprocessing", "outputs", "converted"],
        ["alias", "license_url", "gflops", "mparams", "label_offset", "references", "source", "checkpoint",
         "frozen_graph", "network_params", "tags"],
    )
    source = m["source"].string(SOURCES) if "source" in m else "checkpoint"
    needed = "frozen_graph" if source == "frozen_graph" else "checkpoint"
    if needed not in m:
        raise node.error(f"missing key {needed!r} (source: {source} names the archive member to start from)")
    i = m["input"].mapping(["name", "shape", "layout"])
    shape = tuple(n.integer(minimum=1, maximum=MAX_SIDE) for n in i["shape"].sequence())
    if len(shape) != 4:
        raise i["shape"].error(f"expected 4 dimensions, got {len(shape)}")
    if shape[1] != shape[2] or shape[3] != 3:
        raise i["shape"].error(f"expected [N, S, S, 3], got {list(shape)}")
    preprocessing = _preprocessing(m["preprocessing"])
    if preprocessing.size != shape[1]:
        raise m["preprocessing"].child("size", preprocessing.size).error(
            f"expected the input's size {shape[1]}, got {preprocessing.size}")
    params = m["network_params"] if "network_params" in m else None
    if params is not None and not isinstance(params.value, dict):
        raise params.error(f"expected a mapping, got {_describe(params.value)}")
    for key, value in (params.value.items() if params is not None else ()):
        if not isinstance(value, (int, float, str, bool)):
            raise params.child(str(key), value).error(f"expected a number, string or boolean, got {_describe(value)}")
    tags = tuple(t.string() for t in m["tags"].sequence(allow_empty=True)) if "tags" in m else ()
    for index, tag in enumerate(tags):
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", tag):
            raise m["tags"].child(index, tag).error(f"expected a lower-case word, got {tag!r}")
    outputs = tuple(_output(o) for o in m["outputs"].sequence())
    if not any(o.default for o in outputs):
        raise m["outputs"].error("expected at least one output with default: true")
    ci = m["converted"].mapping(["input"])["input"].mapping(["name", "layout", "color", "element_type"], ["aliases"])
    references = tuple(
        _reference(r, {o.name for o in outputs})
        for r in (m["references"].sequence(allow_empty=True) if "references" in m else [])
    )
    return Model(
        name=name,
        alias=m["alias"].identifier("an alias") if "alias" in m else "",
        description=" ".join(m["description"].string().split()),
        task=m["task"].string(("classification",)),
        framework=m["framework"].string(("tf",)),
        license=m["license"].string(),
        license_url=_url(m["license_url"]) if "license_url" in m else "",
        gflops=m["gflops"].number() if "gflops" in m else 0.0,
        mparams=m["mparams"].number() if "mparams" in m else 0.0,
        files=tuple(_file_spec(f) for f in m["files"].sequence()),
        checkpoint=_relative_path(m["checkpoint"]) if "checkpoint" in m else "",
        network=m["network"].string(),
        num_classes=m["num_classes"].integer(minimum=2, maximum=MAX_CLASSES),
        label_offset=m["label_offset"].integer() if "label_offset" in m else 0,
        input=InputSpec(i["name"].string(), shape, i["layout"].string(("NHWC",))),
        preprocessing=preprocessing,
        outputs=outputs,
        converted_input=ConvertedInput(
            name=ci["name"].string(),
            aliases=tuple(a.string() for a in ci["aliases"].sequence(allow_empty=True)) if "aliases" in ci else (),
            layout=ci["layout"].string(("NCHW", "NHWC")),
            color=ci["color"].string(("RGB", "BGR")),
            element_type=ci["element_type"].string(("f32", "u8")),
        ),
        references=references,
        source=source,
        frozen_graph=_relative_path(m["frozen_graph"]) if "frozen_graph" in m else "",
        network_params=tuple((str(k), v) for k, v in params.value.items()) if params is not None else (),
        tags=tags,
    )


def _output(node: _Node) -> OutputSpec:
    o = node.mapping(["name", "kind"], ["default", "description"])
    return OutputSpec(
        name=o["name"].string(),
        kind=o["kind"].string(("logits", "probabilities")),
        default=o["default"].boolean() if "default" in o else False,
        description=" ".join(o["description"].string().split()) if "description" in o else "",
    )


def _reference(node: _Node, outputs: set[str]) -> Reference:
    r = node.mapping(["source", "output", "top1", "top5"])
    output = r["output"].string()
    if output not in outputs:
        raise r["output"].error(f"expected one of the model's outputs, got {output!r}")
    return Reference(r["source"].string(), output, r["top1"].number(maximum=100), r["top5"].number(maximum=100))


def _tolerances(node: _Node) -> Tolerances:
    t = node.mapping(["reference_pp", "precisions"])
    precisions = {}
    allowed = (*PRECISIONS, *(f"{p}@{e}" for p in PRECISIONS for e in EXECUTED))
    for precision, p_node in t["precisions"].items():
        if precision not in allowed:
            raise p_node.error(f"unknown precision (allowed: {', '.join(PRECISIONS)}, or one of them computed in "
                               f"{' or '.join(EXECUTED)}, e.g. FP32@bf16)")
        p = _Node(p_node.value, node.file, f"tolerances.precisions.{precision}").mapping(
            ["top1_pp", "max_prob_delta", "tie_margin"], ["self_check"])
        check = p["self_check"].mapping([], ["max_prob_delta", "top1", "tie_margin"]) if "self_check" in p else {}
        precisions[precision] = PrecisionTolerance(
            top1_pp=p["top1_pp"].number(positive=False, minimum=0, maximum=100),
            max_prob_delta=p["max_prob_delta"].number(maximum=1),
            tie_margin=p["tie_margin"].number(positive=False, minimum=0, maximum=1),
            self_check_max_prob_delta=check["max_prob_delta"].number(maximum=1) if "max_prob_delta" in check else None,
            self_check_top1=check["top1"].boolean() if "top1" in check else False,
            self_check_tie_margin=(check["tie_margin"].number(positive=False, minimum=0, maximum=1)
                                   if "tie_margin" in check else 0.0),
        )
    return Tolerances(reference_pp=t["reference_pp"].number(positive=False, minimum=0, maximum=100),
                      precisions=precisions)


def _dataset(name: str, node: _Node) -> DatasetSpec:
    d = node.mapping(["description", "num_classes", "layouts"], ["size", "env"])
    layouts = {k: v.string() for k, v in d["layouts"].items()}
    return DatasetSpec(
        name=name,
        description=d["description"].string(),
        num_classes=d["num_classes"].integer(minimum=2, maximum=MAX_CLASSES),
        size=d["size"].integer() if "size" in d else 0,
        env=d["env"].string() if "env" in d else "",
        layouts=layouts,
    )


def _parse_registry(root: _Node, path: Path) -> Registry:
    top = root.mapping(["schema", "models", "tolerances"], ["datasets"])
    if top["schema"].value != 1:
        raise top["schema"].error(f"unsupported schema {top['schema'].value!r} (this omzconv reads 1)")
    models = tuple(_model(name, node) for name, node in top["models"].items("a model name"))
    seen: dict[str, str] = {}
    for model in models:
        for key in filter(None, (model.name, model.alias)):
            if key in seen:
                raise root.error(f"{model.name}: name or alias {key!r} is already used by {seen[key]}")
            seen[key] = model.name
    datasets = tuple(_dataset(n, d) for n, d in top["datasets"].items("a dataset name")) if "datasets" in top else ()
    return Registry(path=path, models=models, datasets=datasets, tolerances=_tolerances(top["tolerances"]))
