"""Write an FP16 IR with the requested (or, for `auto`, the fewest sufficient) layers kept in f32.

Called by `convert` inside its temporary directory, before its self-check: everything made on the
way (the f32 IR, the plain FP16 IR, the candidates) lives in a scratch directory removed before
convert puts the IR in place.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omzconv.errors import ConversionError
from omzconv.registry import Model, PrecisionTolerance
from omzconv.repair import auto
from omzconv.repair.mark import layer_ops, resolve, save_fp16, weight_ops
from omzconv.repair.record import RT_INFO_KEY, KeepRequest, KeptPrecision, Speed

SCRATCH = ".keep-precision"
RANKED_SHOWN = 20  # of diff's ranking, kept in the record


@dataclass(frozen=True)
class RepairSettings:
    """Where `auto` takes its images from and how long the speed comparison runs."""

    source: Any = None  # quantize.CalibrationSource, or None: procedural images
    ranking_images: int = 8
    held_out_images: int = 16
    seed: int = auto.SEED
    speed_seconds: float = 3.0  # per loop (latency, throughput) and IR; 0: not measured


def keep_precision(model: Model, ov_model: Any, pb_path: Path, out_xml: Path, request: KeepRequest,
                   tolerance: PrecisionTolerance, outputs: Sequence[str], settings: RepairSettings,
                   on_stage: Callable[[str], None] = lambda stage: None) -> KeptPrecision:
    """Save `ov_model` (the converted f32 model) as the FP16 IR `out_xml` keeping layers in f32."""
    from omzconv.diff.match import match, ov_graph, tf_graph
    from omzconv.ovcompat import import_openvino
    from omzconv.runners import TFRunner

    ov = import_openvino()
    scratch = out_xml.parent / SCRATCH
    scratch.mkdir()
    try:
        f32_xml = scratch / "f32" / out_xml.name
        ov.save_model(ov_model, str(f32_xml), compress_to_fp16=False)
        plain_xml = scratch / "plain" / out_xml.name
        save_fp16(f32_xml, (), plain_xml)
        on_stage("keep-precision: loading the frozen graph")
        runner = TFRunner(model, [outputs[0]], pb_path=pb_path)
        try:
            graph = ov_graph(ov.Core().read_model(str(f32_xml)))
            matching = match(tf_graph(runner.graph, runner.input_op, outputs[0]), graph)
            ops_of = {x.tf_node: layer_ops(graph, x.ov_node) for x in matching.layers if x.kind != "output"}
            labels_of = {t: [graph.nodes[n].label for n in ops] for t, ops in ops_of.items()}
            sets = auto.image_sets(model, settings.source, settings.ranking_images, settings.held_out_images,
                                   settings.seed)
            judge = _judge(model, runner, sets, outputs[0], tolerance)
            before = {name: judge(plain_xml, name) for name in ("ranking", "held_out")}
            ranked: list = []
            tried: list[dict[str, Any]] = []
            if request.mode == "layers":
                chosen = [x.tf_node for x in resolve(matching, request.layers, model.name)]
                reason = "named on the command line"
            else:
                on_stage("keep-precision: ranking the layers (diff)")
                chosen, ranked, reason = _auto(model, runner, sets, plain_xml, f32_xml, scratch, ops_of, labels_of,
                                               graph, before["held_out"], judge, tried, on_stage)
            labels = [label for t in chosen for label in labels_of[t]]
            on_stage("keep-precision: saving")
            save_fp16(f32_xml, labels, out_xml)
            after = {name: judge(out_xml, name) for name in ("ranking", "held_out")}
        finally:
            runner.close()
        weights = sum(1 for t in chosen for n in weight_ops(graph, ops_of[t]))
        speed = _speed(model, plain_xml, out_xml, settings.speed_seconds, on_stage) if chosen else None
        record = KeptPrecision(
            request.mode, tuple(chosen), tuple(labels), weights, reason,
            {"max_prob_delta": tolerance.max_prob_delta, "tie_margin": tolerance.tie_margin},
            sets.source, len(sets.ranking), len(sets.held_out),
            {name: {"before": asdict(before[name]), "after": asdict(after[name])} for name in before},
            tuple({"tf_node": e.layer.tf_node, "gain": round(e.gain, 4), "rel_error": e.rel_error}
                  for e in ranked[:max(RANKED_SHOWN, len(chosen))]),
            tuple(tried), speed, {"ranking": sets.ranking_keys, "held_out": sets.held_out_keys})
        save_fp16(f32_xml, labels, out_xml, {RT_INFO_KEY: record.rt_info()})  # the same IR, now saying why
        return record
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _judge(model: Model, runner: Any, sets: auto.ImageSets, output: str, tolerance: PrecisionTolerance):
    from omzconv.runners import OVRunner, probabilities

    pixels = {"ranking": sets.ranking, "held_out": sets.held_out}
    reference = {name: probabilities(model, output, runner.run(px)[output]) for name, px in pixels.items()}

    def judge(xml: Path, name: str) -> auto.SetResult:
        ir = OVRunner(model, xml, [output])
        try:
            return auto.judge(reference[name], probabilities(model, output, ir.run(pixels[name])[output]), tolerance)
        finally:
            ir.close()
    return judge


def _auto(model, runner, sets, plain_xml, f32_xml, scratch, ops_of, labels_of, graph, plain_held, judge, tried,
          on_stage):
    """(the layers to keep, diff's ranking, why) — or ConversionError when keeping them all is not enough."""
    from omzconv.diff.compare import RunSpec, diff_run

    if plain_held.passed:
        return [], [], "the FP16 IR is within its tolerance on the held-out images without keeping any layer"
    run = diff_run(model, runner, RunSpec("FP16", "FP16", plain_xml, "f32"), sets.ranking)
    ranked = auto.ranking(run.layers, {t for t, ops in ops_of.items() if weight_ops(graph, ops)})
    results: dict[int, auto.SetResult] = {}

    def passes(k: int) -> bool:
        if k not in results:
            on_stage(f"keep-precision: judging the top {k} of {len(ranked)} layers")
            xml = scratch / f"top{k}" / plain_xml.name
            save_fp16(f32_xml, [label for e in ranked[:k] for label in labels_of[e.layer.tf_node]], xml)
            results[k] = judge(xml, "held_out")
            shutil.rmtree(xml.parent)
            tried.append({"layers": k, **asdict(results[k])})
        return results[k].passed

    k = auto.search(len(ranked), passes)
    if k is None:
        last = results.get(len(ranked))
        raise ConversionError(
            f"{model.name} FP16: even keeping all {len(ranked)} ranked layers in f32 leaves max |Δp| "
            f"{last.max_prob_delta:.3g} and {last.changed} changed top-1 on {last.images} held-out images, "
            "outside the FP16 tolerance; nothing was replaced")
    return ([e.layer.tf_node for e in ranked[:k]], ranked,
            f"the fewest of diff's top-ranked layers (by gain) that bring the held-out images within tolerance "
            f"({k} of {len(ranked)} with weights)")


def _speed(model: Model, plain_xml: Path, kept_xml: Path, seconds: float, on_stage) -> Speed | None:
    if seconds <= 0:
        return None
    from omzconv.benchmark import benchmark_ir

    on_stage("keep-precision: measuring speed")
    plain = benchmark_ir(model, plain_xml, "FP16", seconds=seconds)
    kept = benchmark_ir(model, kept_xml, "FP16", seconds=seconds)
    return Speed(seconds, plain.throughput.images_per_s, kept.throughput.images_per_s,
                 plain.latency.median_ms, kept.latency.median_ms, kept.inference_precision)
