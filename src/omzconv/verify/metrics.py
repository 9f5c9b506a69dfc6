"""Metrics: plain arrays in, numbers out (top-k, Wilson interval, agreement, |Δ prob|)."""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054  # two-sided 95 % normal quantile
TOP_K = 5


def topk_ids(probs: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """The k most probable classes per row, most probable first (ties: lower class id first)."""
    probs = np.asarray(probs)
    return np.argsort(-probs, axis=-1, kind="stable")[..., :k]


def topk_correct(topk: np.ndarray, labels: np.ndarray, k: int) -> int:
    """How many rows have their label among their first k predicted ids."""
    topk, labels = np.asarray(topk), np.asarray(labels)
    if len(topk) == 0:
        return 0
    return int((topk[:, :k] == labels[:, None]).any(axis=1).sum())


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95 % by default); (0, 1) when n == 0."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in 0..{n}, got {successes}")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends, not 1e-17
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of positions where two label arrays agree (e.g. the top-1 classes of two models)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.mean(a == b)) if a.size else float("nan")


def set_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of rows whose top-k id sets are equal (order within the top-k ignored)."""
    a, b = np.sort(np.asarray(a), axis=-1), np.sort(np.asarray(b), axis=-1)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.mean((a == b).all(axis=-1))) if len(a) else float("nan")


def prob_deltas(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: max and sum over classes of |p - q| (the sum gives the mean over any set of rows)."""
    d = np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64))
    return d.max(axis=-1), d.sum(axis=-1)
