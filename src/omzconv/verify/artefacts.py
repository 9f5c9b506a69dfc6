"""What is verified: the frozen graph and an IR per precision (made when missing), and the runner
that executes each (TensorFlow for the graph, OpenVINO for an IR)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from omzconv.errors import GraphError
from omzconv.fileutil import read_json
from omzconv.registry import Model, Registry
from omzconv.verify.report import ORIGINAL
from omzconv.workspace import Workspace


@dataclass(frozen=True)
class Artefact:
    name: str  # "original" or a precision
    runtime: str  # "tensorflow" or "openvino"
    path: Path
    sha256: str  # "sha256:<hex>", what the cache is keyed on


@dataclass(frozen=True)
class ModelArtefacts:
    output: str  # the output evaluated: the first the graph was frozen with
    weights: str
    original: Artefact
    converted: tuple[Artefact, ...]

    @property
    def all(self) -> tuple[Artefact, ...]:
        return (self.original, *self.converted)


def ensure_artefacts(model: Model, workspace: Workspace, registry: Registry, precisions: Sequence[str], *,
                     input_type: str | None = None, layout: str | None = None,
                     progress: Callable[[int, int | None], None] | None = None,
                     on_stage: Callable[[str], None] = lambda stage: None) -> ModelArtefacts:
    """The frozen graph and an IR per precision, running whatever stage is missing; each artefact
    with the hash its stage verified (the IR's sidecar is re-checked against its files, and the
    recipe's source hash is the frozen graph's, re-hashed, by `convert`). `input_type`/`layout`
    select the IR variant (default: the interface models.yaml declares)."""
    from omzconv.workspace import SIDECAR
    from omzconv.pipeline import ensure_converted, frozen_outputs, frozen_weights

    converted, source_sha = [], None
    for precision in precisions:
        result = ensure_converted(model, workspace, registry, precision, input_type=input_type, layout=layout,
                                  progress=progress, on_stage=on_stage)
        meta = read_json(result.path.parent / SIDECAR) or {}
        if not meta.get("sha256"):
            raise GraphError(f"{result.path.parent / SIDECAR}: missing or unreadable; run "
                             f"`omzconv convert {model.name} --force`")
        converted.append(Artefact(precision, "openvino", result.path, meta["sha256"]))
        source_sha = meta["recipe"]["source_sha256"]
    pb_path = workspace.frozen_path(model)
    if source_sha is None:  # no precision asked for: trust the graph's own sidecar
        from omzconv.freeze import sidecar_path

        source_sha = (read_json(sidecar_path(pb_path)) or {}).get("sha256") or ""
    return ModelArtefacts(output=frozen_outputs(model, workspace)[0], weights=frozen_weights(model, workspace),
                          original=Artefact(ORIGINAL, "tensorflow", pb_path, source_sha),
                          converted=tuple(converted))


class Runner(Protocol):
    def infer(self, batch_rgb: np.ndarray, on_done: Callable[[int], None] | None = None) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


RunnerFactory = Callable[[Model, Artefact, Sequence[str]], Runner]


def open_runner(model: Model, artefact: Artefact, outputs: Sequence[str]) -> Runner:
    """TensorFlow for the frozen graph, OpenVINO (throughput mode) for an IR; warmed up."""
    from omzconv.runners import OVAsyncRunner, TFRunner

    if artefact.runtime == "tensorflow":
        runner = TFRunner(model, outputs, pb_path=artefact.path)
    else:
        runner = OVAsyncRunner(model, artefact.path, outputs)
    runner.warm_up()
    return runner
