"""The stages in order — checkpoint → frozen graph → IR — each run only when its result is missing.

Commands call these so that `omzconv convert` can start from nothing and `omzconv verify` from
anything, and every stage's skip-if-up-to-date logic lives in the stage's own module.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from omzconv.download import extract_archive, fetch
from omzconv.errors import CheckpointError, DamagedCheckpointError, GraphError
from omzconv.fileutil import artefact_lock, read_json
from omzconv.freeze import AUTHORS, FreezeResult, adopt, freeze, graph_damage, sidecar_path
from omzconv.registry import Model, Registry
from omzconv.workspace import Workspace, ir_variant

log = logging.getLogger(__name__)
Stage = Callable[..., None]  # on_stage(text, done=None, total=None)
Progress = Callable[[int, int | None], None]


def _quiet(stage: str, done: float | None = None, total: float | None = None) -> None:
    pass


def within(on_stage: Stage, step: str) -> Stage:
    """`on_stage` for the stages of one pipeline step, named after it: `freeze: restoring variables`."""
    return lambda stage, done=None, total=None: on_stage(f"{step}: {stage}", done, total)


def weights_kind(workspace: Workspace, checkpoint: Path | None) -> str:
    if workspace.synthetic:
        return "synthetic"
    return "custom" if checkpoint is not None else "official"


def obtain_checkpoint(model: Model, workspace: Workspace, progress: Progress | None = None,
                      on_stage: Stage = _quiet) -> Path:
    """What the model starts from — its checkpoint, or the authors' frozen graph for
    `source: frozen_graph` — downloaded (or, for a synthetic workspace, generated) and extracted
    if it is not there yet."""
    archive = workspace.archive_path(model)
    with artefact_lock(archive):
        if workspace.synthetic:
            if not archive.is_file():
                from omzconv.synthetic import STAGES, make_synthetic_archive

                log.info("%s: generating synthetic weights, a one-time cost (about a minute); later runs "
                         "reuse them", model.name)
                on_stage("synthetic weights: loading TensorFlow")
                make_synthetic_archive(model, archive, on_stage=lambda stage: on_stage(
                    f"synthetic weights: {stage}", STAGES.index(stage) if stage in STAGES else None, len(STAGES)))
        else:
            on_stage("download")
            fetch(model.files[0], workspace.download_dir(model), progress=progress)
        on_stage("extract the archive")
        extract_archive(archive, workspace.checkpoint_dir(model), expect=model.source_member)
    return workspace.source_path(model)


def ensure_frozen(model: Model, workspace: Workspace, *, outputs: Sequence[str] | None = None,
                  checkpoint: Path | None = None, slim_dir: Path | None = None, force: bool = False,
                  progress: Progress | None = None, on_stage: Stage = _quiet) -> FreezeResult:
    """Freeze the model (obtaining its checkpoint first unless one is given); skip if up to date.

    A model whose authors ship a frozen graph (`source: frozen_graph`) has it checked and adopted
    instead, unless a checkpoint is given or `slim_dir` asks for a rebuild (from the checkpoint its
    archive holds). With `slim_dir`, the network comes from that upstream research/slim checkout.
    """
    weights = weights_kind(workspace, checkpoint)
    given = checkpoint is not None
    if model.source == "frozen_graph" and checkpoint is None:
        graph = obtain_checkpoint(model, workspace, progress, on_stage)
        if slim_dir is None:
            with artefact_lock(workspace.frozen_path(model)):
                return adopt(model, graph, workspace.frozen_path(model), outputs, weights=weights, force=force,
                             on_stage=within(on_stage, "freeze"))
        if not model.checkpoint:
            raise CheckpointError(f"{model.name} ships only a frozen graph, nothing to rebuild with --slim-dir; "
                                  "give a checkpoint with --checkpoint")
        checkpoint = workspace.checkpoint_path(model)
    source = checkpoint or obtain_checkpoint(model, workspace, progress, on_stage)
    network, network_source = None, "omzconv"
    if slim_dir is not None:
        from omzconv.slim_route import slim_network

        network, network_source = slim_network(slim_dir, model), f"slim:{Path(slim_dir).resolve()}"
    try:
        with artefact_lock(workspace.frozen_path(model)):
            return freeze(model, source, workspace.frozen_path(model), outputs,
                          weights=weights, network=network, network_source=network_source, force=force,
                          on_stage=within(on_stage, "freeze"))
    except DamagedCheckpointError as exc:
        remedy = ("replace it with an intact copy" if given else
                  f"delete {workspace.checkpoint_dir(model)} and run again to extract it anew from its archive")
        raise DamagedCheckpointError(f"{exc}; {remedy}") from exc


def ensure_graph(model: Model, workspace: Workspace, *, progress: Progress | None = None,
                 on_stage: Stage = _quiet) -> tuple[Path, str | None]:
    """The model's frozen graph, fit to use, and its sha256 (None for a graph without a sidecar,
    put there by hand: nothing to check it against). Every command that uses a frozen graph gets
    it here. A missing graph is made (`ensure_frozen`); one that changed since it was made (see
    `omzconv.integrity`) is made again, with a warning, when it came from this workspace's own
    checkpoint or archive; otherwise GraphError says why it cannot be and what to run."""
    pb = workspace.frozen_path(model)
    if not pb.is_file():
        ensure_frozen(model, workspace, progress=progress, on_stage=on_stage)
        return pb, _graph_sha(pb)
    with artefact_lock(pb):
        reason, meta = graph_damage(pb)
    if meta is None:
        return pb, None
    if reason is None:
        return pb, meta["sha256"]
    made_here = (meta.get("weights") == weights_kind(workspace, None)
                 and meta.get("network_source") == (AUTHORS if model.source == "frozen_graph" else "omzconv"))
    if not made_here:
        raise GraphError(f"frozen graph {pb} changed since it was made ({reason}) and omzconv cannot make it "
                         f"again by itself: it was {_made_from(meta)}; run `{_refreeze_command(model, meta)}`")
    verb = "adopting the authors' graph again" if meta.get("network_source") == AUTHORS else "re-freezing"
    log.warning("frozen graph %s changed since it was made (%s): %s", pb, reason, verb)
    ensure_frozen(model, workspace, outputs=meta.get("outputs"), force=True, progress=progress, on_stage=on_stage)
    return pb, _graph_sha(pb)


def _graph_sha(pb: Path) -> str | None:
    return (read_json(sidecar_path(pb)) or {}).get("sha256")


def _made_from(meta: dict) -> str:
    network = str(meta.get("network_source", ""))
    parts = [f"frozen from the checkpoint {meta.get('checkpoint')} you gave"] if meta.get("weights") == "custom" \
        else [f"made from {meta.get('checkpoint') or meta.get('frozen_graph')}"]
    if network.startswith("slim:"):
        parts.append(f"with the research/slim network in {network.removeprefix('slim:')}")
    return " ".join(parts)


def _refreeze_command(model: Model, meta: dict) -> str:
    options = [f"--checkpoint {meta['checkpoint']}"] if meta.get("weights") == "custom" else []
    if str(meta.get("network_source", "")).startswith("slim:"):
        options.append(f"--slim-dir {meta['network_source'].removeprefix('slim:')}")
    if meta.get("weights") == "synthetic":
        options.append("--synthetic-weights")
    return " ".join(["omzconv freeze", model.name, *options, "--force"])


def frozen_outputs(model: Model, workspace: Workspace) -> tuple[str, ...]:
    """The outputs the model's frozen graph was made with (its sidecar), else the defaults."""
    meta = read_json(sidecar_path(workspace.frozen_path(model))) or {}
    return tuple(meta.get("outputs") or (o.name for o in model.default_outputs))


def frozen_weights(model: Model, workspace: Workspace) -> str:
    meta = read_json(sidecar_path(workspace.frozen_path(model)))
    if not meta:
        raise GraphError(f"{workspace.frozen_path(model)} has no sidecar; run `omzconv freeze {model.name}`")
    return meta["weights"]


def ensure_converted(model: Model, workspace: Workspace, registry: Registry, precision: str, *,
                     input_type: str | None = None, layout: str | None = None, check: bool = True,
                     force: bool = False, progress: Progress | None = None, on_stage: Stage = _quiet,
                     keep=None, repair=None):
    """Convert to `precision` (freezing first if there is no frozen graph); skip if up to date.

    `keep` (FP16): a `repair.KeepRequest`, `repair.NONE` to make a plain FP16 IR, or None: the
    request the existing FP16 IR was made with, if any (a repaired IR stays repaired, and when it
    is stale it is made again with the same request). `repair`: `repair.RepairSettings`."""
    from omzconv.convert import convert
    from omzconv.repair.record import NONE, inherited

    pb_path, pb_sha256 = ensure_graph(model, workspace, progress=progress, on_stage=on_stage)
    xml_path = workspace.ir_path(model, precision, ir_variant(model, input_type, layout))
    with artefact_lock(xml_path.parent):
        if precision != "FP16":
            keep = None
        elif keep is None:
            keep = inherited(xml_path)
        return convert(model, pb_path, xml_path, precision, keep=None if keep == NONE else keep, repair=repair,
                       outputs=frozen_outputs(model, workspace),
                       tolerance=registry.tolerances.precisions[precision],
                       weights=frozen_weights(model, workspace), input_type=input_type, layout=layout,
                       check=check, force=force, on_stage=within(on_stage, f"convert {precision}"), pb_sha256=pb_sha256)
