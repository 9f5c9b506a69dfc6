"""`--keep-precision auto`: rank the layers with `omzconv diff`, keep the fewest top-ranked in f32.

Two disjoint image sets: the *ranking* images, on which `diff` measures how much error each layer
adds (its gain: error after ÷ error before), and the *held-out* images, on which each candidate IR
(the k top-ranked layers kept f32) is judged against the model's tolerance for the precision in
models.yaml (`max_prob_delta`, and the top-1 class unchanged where the original's top-1 − top-2
margin exceeds `tie_margin`). With a dataset both are class-balanced seeded subsets (the ranking
images by quantize's calibration rule, the held-out images from the rest); without one, procedural
images of two different seeds.

The search tries k = 1, 2, 4, … until a candidate passes, then bisects between the last failure and
it: about 2·log2(n) candidates rather than n. That assumes keeping more top-ranked layers does not
make the IR worse; the k chosen was itself measured, so it passes whatever the path to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from omzconv.diff.compare import LayerError
from omzconv.registry import Model, PrecisionTolerance

SEED = 18  # of the procedural ranking images; the held-out ones use SEED + 1


@dataclass(frozen=True)
class ImageSets:
    ranking: np.ndarray  # N x S x S x 3 RGB float32, as `diff` takes them
    held_out: np.ndarray
    source: str  # what they are
    ranking_keys: tuple[str, ...]  # one per image: a dataset record key, or the pixels' sha256
    held_out_keys: tuple[str, ...]


@dataclass(frozen=True)
class SetResult:
    images: int
    top1_agreement: float  # over all images
    max_prob_delta: float
    changed: int  # images whose top-1 class changed although the original's margin exceeds tie_margin
    passed: bool


def pixel_keys(pixels: np.ndarray) -> tuple[str, ...]:
    return tuple("sha256:" + hashlib.sha256(np.ascontiguousarray(p).tobytes()).hexdigest()[:16] for p in pixels)


def image_sets(model: Model, source, ranking: int, held_out: int, seed: int = SEED) -> ImageSets:
    """`ranking` and `held_out` images sharing none; `source` a quantize.CalibrationSource or None."""
    if source is None:
        from omzconv.procedural import natural_images

        size = model.preprocessing.size
        rank_px = natural_images(ranking, size, seed=seed).astype(np.float32)
        held_px = natural_images(held_out, size, seed=seed + 1).astype(np.float32)
        sets = ImageSets(rank_px, held_px, f"procedural images (seeds {seed}, {seed + 1})",
                         pixel_keys(rank_px), pixel_keys(held_px))
    else:
        from omzconv.preprocess import prepare
        from omzconv.quantize import calibration_split, held_out as held_out_of, record_key

        split = calibration_split(source.records, ranking, seed)
        held = held_out_of(split, held_out, seed + 1)

        def load(records):
            return np.stack([prepare(r.path, model.preprocessing) for r in records]).astype(np.float32)

        sets = ImageSets(load(split.calibration), load(held), f"{source.description} ({source.data_dir}, seed {seed})",
                         tuple(record_key(r) for r in split.calibration), tuple(record_key(r) for r in held))
    if set(sets.ranking_keys) & set(sets.held_out_keys):
        raise AssertionError("ranking and held-out images overlap")  # a bug, not a user error
    return sets


def judge(p_ref: np.ndarray, p_ir: np.ndarray, tolerance: PrecisionTolerance) -> SetResult:
    """The IR's probabilities against the original's, by the precision's tolerance in models.yaml."""
    from omzconv.runners import top_margin

    decisive = top_margin(p_ref) > tolerance.tie_margin
    same = p_ref.argmax(-1) == p_ir.argmax(-1)
    delta = float(np.abs(p_ref - p_ir).max()) if p_ref.size else 0.0
    changed = int((~same & decisive).sum())
    return SetResult(len(p_ref), float(same.mean()) if len(same) else 1.0, delta, changed,
                     bool(delta <= tolerance.max_prob_delta and changed == 0))


def ranking(errors: tuple[LayerError, ...], candidates: set[str]) -> list[LayerError]:
    """The candidate layers (TF names) by the error they add, largest gain first (ties: the earlier
    layer first, since its error reaches everything after it)."""
    return sorted((e for e in errors if e.layer.tf_node in candidates), key=lambda e: (-e.gain, e.layer.index))


def search(count: int, passes: Callable[[int], bool]) -> int | None:
    """The smallest k in 1..count for which `passes(k)` (prefixes of the ranking), by doubling then
    bisection; None if even `count` fails. `passes` is called at most ~2·log2(count) + 1 times."""
    if count < 1 or not passes(count):
        return None
    low, k = 0, 1  # passes(low) is False (k = 0 was checked by the caller), passes(count) True
    while k < count and not passes(k):
        low, k = k, 2 * k
    high = min(k, count)
    while high - low > 1:
        mid = (low + high) // 2
        if passes(mid):
            high = mid
        else:
            low = mid
    return high
