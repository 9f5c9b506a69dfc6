"""models.yaml → a Registry: every field checked, every error naming the file, the model and the
field (see `omzconv.yamlnode.Node`)."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import yaml

from omzconv.registry import (EXECUTED, HASH_LENGTHS, MAX_CLASSES, MAX_SIDE, PRECISIONS, RECIPES, SOURCES, UNPUBLISHED,
                              ConvertedInput, DatasetSpec, Digest, FileSpec, InputSpec, Model, OutputSpec,
                              PrecisionTolerance, Preprocessing, Reference, Registry, Tolerances)
from omzconv.yamlnode import Node, describe


def yaml_error_text(path: Path, exc: yaml.YAMLError) -> str:
    """`models.yaml:12:5: not valid YAML: mapping values are not allowed here` (1-based line and
    column of the problem, the path as the user gave it, none of PyYAML's `<unicode string>`)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    place = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    return f"{place}: not valid YAML: {problem}" + (f" ({context})" if context else "")


def _relative_path(node: Node) -> str:
    text = node.string()
    path = PurePosixPath(text)
    if path.is_absolute() or text.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", text):
        raise node.error(f"expected a relative path, got absolute {text!r}")
    if ".." in path.parts or "\\" in text:
        raise node.error(f"expected a plain relative path without '..' or backslashes, got {text!r}")
    return text


def _digest(node: Node) -> Digest:
    text = node.string()
    alg, _, hexdigest = text.partition(":")
    alg = alg.lower()
    if alg not in HASH_LENGTHS:
        raise node.error(f"expected '<alg>:<hex>' with alg one of {', '.join(HASH_LENGTHS)}, got {text!r}")
    if not re.fullmatch(rf"[0-9a-fA-F]{{{HASH_LENGTHS[alg]}}}", hexdigest):
        raise node.error(f"expected {HASH_LENGTHS[alg]} hex digits for {alg}, got {hexdigest!r}")
    return Digest(alg, hexdigest.lower())


def _url(node: Node) -> str:
    text = node.string()
    if not re.match(r"^(https?|file)://", text):
        raise node.error(f"expected an http(s):// or file:// URL, got {text!r}")
    return text


def _file_spec(node: Node) -> FileSpec:
    f = node.mapping(["name", "hash", "urls"], ["size"])
    size = f["size"] if "size" in f else None
    return FileSpec(
        name=_relative_path(f["name"]),
        size=None if size is None or size.value == UNPUBLISHED else size.integer(),
        digest=None if f["hash"].value == UNPUBLISHED else _digest(f["hash"]),
        urls=tuple(_url(u) for u in f["urls"].sequence()),
    )


def _preprocessing(node: Node) -> Preprocessing:
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


def _model(name: str, node: Node) -> Model:
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
        raise params.error(f"expected a mapping, got {describe(params.value)}")
    for key, value in (params.value.items() if params is not None else ()):
        if not isinstance(value, (int, float, str, bool)):
            raise params.child(str(key), value).error(f"expected a number, string or boolean, got {describe(value)}")
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


def _output(node: Node) -> OutputSpec:
    o = node.mapping(["name", "kind"], ["default", "description"])
    return OutputSpec(
        name=o["name"].string(),
        kind=o["kind"].string(("logits", "probabilities")),
        default=o["default"].boolean() if "default" in o else False,
        description=" ".join(o["description"].string().split()) if "description" in o else "",
    )


def _reference(node: Node, outputs: set[str]) -> Reference:
    r = node.mapping(["source", "output", "top1", "top5"])
    output = r["output"].string()
    if output not in outputs:
        raise r["output"].error(f"expected one of the model's outputs, got {output!r}")
    return Reference(r["source"].string(), output, r["top1"].number(maximum=100), r["top5"].number(maximum=100))


def _tolerances(node: Node) -> Tolerances:
    t = node.mapping(["reference_pp", "precisions"])
    precisions = {}
    allowed = (*PRECISIONS, *(f"{p}@{e}" for p in PRECISIONS for e in EXECUTED))
    for precision, p_node in t["precisions"].items():
        if precision not in allowed:
            raise p_node.error(f"unknown precision (allowed: {', '.join(PRECISIONS)}, or one of them computed in "
                               f"{' or '.join(EXECUTED)}, e.g. FP32@bf16)")
        p = Node(p_node.value, node.file, f"tolerances.precisions.{precision}").mapping(
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


def _dataset(name: str, node: Node) -> DatasetSpec:
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


def parse_registry(root: Node, path: Path) -> Registry:
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
