"""`diff_model`: the artefacts (made when missing), the images, the original once, each run compared."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from omzconv import __version__
from omzconv.diff.compare import GROUP_BYTES, RunDiff, RunSpec, diff_run
from omzconv.diff.report import THRESHOLD, DiffReport
from omzconv.execution import run_name
from omzconv.registry import Model, Registry
from omzconv.workspace import Workspace

DEFAULT_IMAGES = 8


def load_images(model: Model, registry: Registry, data_dir: Path | None, count: int,
                seed: int = 0) -> tuple[np.ndarray, str]:
    """`count` images prepared by the model's recipe (float32 N x S x S x 3 RGB, 0..255) and what they
    are: a class-balanced subset of the dataset at `data_dir`, else the procedural reference images
    (the first four are the self-check's)."""
    if data_dir is None:
        from omzconv.procedural import natural_images
        from omzconv.selfcheck import CHECK_SEED

        pixels = natural_images(count, model.preprocessing.size, seed=CHECK_SEED).astype(np.float32)
        return pixels, f"{count} procedural images (seed {CHECK_SEED})"
    from omzconv.preprocess import prepare
    from omzconv.verify import select_images

    selection = select_images(registry.dataset("imagenet-val"), data_dir, limit=count, seed=seed)
    pixels = np.stack([prepare(r.path, model.preprocessing) for r in selection.records]).astype(np.float32)
    return pixels, f"{len(pixels)} images of {selection.info.data_dir} ({selection.info.layout}, seed {seed})"


def diff_model(model: Model, workspace: Workspace, registry: Registry, precisions: Sequence[str],
               inference_precisions: Sequence[str], *, data_dir: Path | None = None, images: int = DEFAULT_IMAGES,
               seed: int = 0, threshold: float = THRESHOLD, group_bytes: int = GROUP_BYTES,
               input_type: str | None = None, layout: str | None = None,
               on_stage: Callable[..., None] = lambda *a: None,
               on_image: Callable[[int], None] = lambda n: None) -> DiffReport:
    """Compare the original with each IR precision × execution precision, layer by layer."""
    from omzconv.runners import TFRunner
    from omzconv.verify import ensure_artefacts

    def calibration():  # called only when an INT8 IR has to be made
        from omzconv.quantize import load_calibration_source

        return load_calibration_source(registry, "imagenet-val", data_dir)

    artefacts = ensure_artefacts(model, workspace, registry, precisions, input_type=input_type, layout=layout,
                                 calibration=None if data_dir is None else calibration, on_stage=on_stage)
    on_stage("preparing images")
    pixels, source = load_images(model, registry, data_dir, images, seed)
    on_stage("loading the frozen graph")
    tf_runner = TFRunner(model, [artefacts.output], pb_path=artefacts.original.path)
    runs: list[RunDiff] = []
    try:
        for artefact in artefacts.converted:
            for ip in inference_precisions:
                spec = RunSpec(run_name(artefact.name, ip), artefact.name, artefact.path, ip)
                on_stage(f"comparing {spec.name}")
                runs.append(diff_run(model, tf_runner, spec, pixels, group_bytes=group_bytes, on_image=on_image))
    finally:
        tf_runner.close()
    return DiffReport(model.name, artefacts.weights, len(pixels), source, threshold, tuple(runs),
                      f"omzconv {__version__}")
