"""A typed, validated, immutable view of models.yaml.

No TensorFlow or OpenVINO here: the CLI's fast paths (`--help`, `list`, `info`) load only this.
Every validation error names the file, the model and the field, e.g.
``models.yaml: inception_v4: files[0].size: expected a non-negative integer, got -1``.
Here: the registry's types and `load_registry`; the parsing is `omzconv.registry_parse`, on the typed
YAML accessors of `omzconv.yamlnode`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

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
    """The registry at `path` (default: `default_models_path()`), parsed and checked whole."""
    import yaml

    from omzconv.registry_parse import parse_registry, yaml_error_text
    from omzconv.yamlnode import Node

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
    return parse_registry(Node(data, path.name, ""), path)
