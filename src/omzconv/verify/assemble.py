"""What each run has for each image (`RunState`), and a model's report assembled from it
(`model_report`): accuracies, comparisons, checks and references.

Which images each figure is on. A run's metrics are on the images it finished — for an IR, its
prediction and its |Δ prob| against every run it is compared with — among those it may be measured
on (an INT8 IR: not its calibration images). A comparison is on the converted run's images, both
sides measured there. After a complete run these are the same images for every run (INT8 less its
calibration images); after Ctrl-C each run reports what it finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from omzconv.datasets import Record
from omzconv.execution import tolerance_key
from omzconv.registry import Model, Tolerances
from omzconv.verify.artefacts import Artefact, ModelArtefacts
from omzconv.verify.cache import PredictionCache
from omzconv.verify.checks import (applicable_references, conversion_checks, missing_tolerance, reference_checks,
                                   reference_reasons)
from omzconv.verify.metrics import TOP_K, agreement, set_agreement, topk_correct
from omzconv.verify.report import (ORIGINAL, Accuracy, Comparison, Execution, ModelReport, PerImage,
                                   ReferenceResult, RunResult)
from omzconv.verify.selection import skipped


@dataclass
class RunState:
    """What one artefact has for each image of the model's list, filled from cache and inference."""

    artefact: Artefact
    cache: PredictionCache
    n: int
    refs: tuple[RunState, ...] = ()  # the runs it is compared with, image by image (|Δ prob| needs their vectors)
    eligible: np.ndarray = field(init=False)  # images it may be measured on
    top: np.ndarray = field(init=False)
    prob: np.ndarray = field(init=False)
    have: np.ndarray = field(init=False)
    cache_seconds: np.ndarray = field(init=False)  # stage seconds of each cached image when it ran (nan: unknown)
    dmax: dict[str, np.ndarray] = field(init=False)  # per reference run name
    dsum: dict[str, np.ndarray] = field(init=False)
    have_delta: dict[str, np.ndarray] = field(init=False)
    need: np.ndarray = field(init=False)  # images to run now
    kept: dict[int, np.ndarray] = field(default_factory=dict)  # probability vectors the cache kept for dependants
    inferred: int = 0
    cached: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.eligible = np.ones(self.n, bool)
        self.top = np.full((self.n, TOP_K), -1, np.int64)
        self.prob = np.zeros((self.n, TOP_K), np.float32)
        self.have = np.zeros(self.n, bool)
        self.cache_seconds = np.full(self.n, np.nan)
        self.dmax = {r.artefact.name: np.zeros(self.n, np.float64) for r in self.refs}
        self.dsum = {r.artefact.name: np.zeros(self.n, np.float64) for r in self.refs}
        self.have_delta = {r.artefact.name: np.zeros(self.n, bool) for r in self.refs}
        self.need = np.zeros(self.n, bool)

    @property
    def complete(self) -> np.ndarray:
        """Images with its prediction and its |Δ prob| against every reference."""
        done = self.have.copy()
        for have in self.have_delta.values():
            done &= have
        return done

    def result(self, images: int, top1: Accuracy, top5: Accuracy, excluded: int, tolerance: str | None) -> RunResult:
        """Its figures; images/s over the images run now and the cached ones whose time is known."""
        cached = ~self.need & self.have & ~np.isnan(self.cache_seconds)
        cached_n, cached_s = int(cached.sum()), float(self.cache_seconds[cached].sum())
        images_now = self.inferred if self.seconds > 0 else 0
        timed, seconds = images_now + cached_n, (self.seconds if images_now else 0.0) + cached_s
        source = " and ".join(s for s, n in (("this run", images_now), ("cache", cached_n)) if n)
        return RunResult(
            name=self.artefact.name, runtime=self.artefact.runtime, artefact=str(self.artefact.path),
            sha256=self.artefact.sha256, images=images, top1=top1, top5=top5, inferred=self.inferred,
            cached=self.cached, seconds=round(self.seconds, 3), load_seconds=round(self.load_seconds, 3),
            images_per_second=round(timed / seconds, 3) if timed and seconds > 0 else None, excluded=excluded,
            cached_seconds=round(cached_s, 3), speed_source=source if timed and seconds > 0 else "",
            inference_precision=self.artefact.inference_precision, executed=self.artefact.executed, tolerance=tolerance,
            kept=self.artefact.kept)


def model_report(model: Model, artefacts: ModelArtefacts, runs: list[RunState], records: Sequence[Record],
                 labels: np.ndarray, usable: np.ndarray, problems: list[tuple[Path, str]], tolerances: Tolerances,
                 full_size: int, seconds: float, interrupted: bool, execution: Execution | None) -> ModelReport:
    original, converted = runs[0], runs[1:]
    measured = {ORIGINAL: usable & original.have}
    done = measured[ORIGINAL].copy()
    for run in converted:
        measured[run.artefact.name] = usable & run.eligible & run.complete & original.have
        done &= run.complete | ~run.eligible
    n = int(done.sum())  # the images every run finished

    def accuracy(run: RunState, mask: np.ndarray) -> tuple[Accuracy, Accuracy]:
        ids, count = np.flatnonzero(mask), int(mask.sum())
        return (Accuracy.of(topk_correct(run.top[ids], labels[ids], 1), count),
                Accuracy.of(topk_correct(run.top[ids], labels[ids], 5), count))

    keys = {run.artefact.name: tolerance_key(run.artefact.precision, run.artefact.executed) for run in converted}
    results, own = [], {}
    for run in runs:
        mask = measured[run.artefact.name]
        own[run.artefact.name] = top1, top5 = accuracy(run, mask)
        results.append(run.result(int(mask.sum()), top1, top5, int((usable & ~run.eligible).sum()),
                                  keys.get(run.artefact.name)))

    comparisons, checks = [], []
    margin = original.prob[:, 0] - original.prob[:, 1]  # how decisive the original is on each image
    for run in converted:
        mask = measured[run.artefact.name]
        ids, count = np.flatnonzero(mask), int(mask.sum())
        c1 = own[run.artefact.name][0].value
        for ref in run.refs:
            name = ref.artefact.name
            r1 = accuracy(ref, mask)[0].value  # the reference on the same images
            comparisons.append(Comparison(
                precision=run.artefact.name, images=count,
                top1_delta_pp=(c1 - r1) * 100 if count else None,
                top1_agreement=agreement(run.top[ids, 0], ref.top[ids, 0]) if count else None,
                top5_agreement=set_agreement(run.top[ids], ref.top[ids]) if count else None,
                max_abs_prob_delta=float(run.dmax[name][ids].max()) if count else None,
                mean_abs_prob_delta=float(run.dsum[name][ids].sum() / (count * model.num_classes)) if count else None,
                reference=name))
        tolerance = tolerances.precisions.get(keys[run.artefact.name])
        if tolerance is None:
            checks.append(missing_tolerance(run.artefact.name, keys[run.artefact.name]))
        else:
            checks.extend(conversion_checks(
                run.artefact.name, tolerance, artefacts.weights, original=original.top[ids, 0],
                converted=run.top[ids, 0], margin=margin[ids], dmax=run.dmax[ORIGINAL][ids], labels=labels[ids]))

    references = []
    reasons = reference_reasons(n, full_size, artefacts.weights)
    for ref in applicable_references(model.references, artefacts.output):
        references.append(ReferenceResult(ref.source, ref.output, ref.top1, ref.top5, not reasons, tuple(reasons)))
        if n and not reasons:
            for run in runs:
                top1, top5 = own[run.artefact.name]
                if top1.images == n:  # not an INT8 IR measured without its calibration images
                    checks.extend(reference_checks(run.artefact.name, top1.value, top5.value, ref,
                                                   tolerances.reference_pp))

    per_image = PerImage(
        paths=tuple(str(r.path) for r in records), num_classes=model.num_classes,
        label_offset=model.label_offset, labels=labels,
        measured=measured, top={r.artefact.name: r.top for r in runs}, prob={r.artefact.name: r.prob for r in runs},
        dmax={(r.artefact.name, ref): d for r in converted for ref, d in r.dmax.items()})
    return ModelReport(
        model=model.name, alias=model.alias, output=artefacts.output,
        output_kind=model.output(artefacts.output).kind, weights=artefacts.weights, images=n,
        runs=results, comparisons=comparisons, references=references, checks=checks,
        skipped=skipped(problems), seconds=round(seconds, 3), interrupted=interrupted, execution=execution,
        per_image=per_image)
