"""What `--keep-precision` asked for (part of the FP16 IR's recipe) and what it did (its record, in
the IR's sidecar and, in short, its rt_info), and the one reader of that record."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omzconv.errors import UsageError
from omzconv.fileutil import read_json
from omzconv.text import plural
from omzconv.workspace import SIDECAR

RT_INFO_KEY = "keep_precision"  # under the IR's rt_info `omzconv` section
SIDECAR_KEY = "keep_precision"


@dataclass(frozen=True)
class KeepRequest:
    """`auto`, or the named layers (TensorFlow names, as `omzconv diff` reports them)."""

    mode: str  # "auto" or "layers"
    layers: tuple[str, ...] = ()

    def recipe(self, tolerance: Any) -> dict[str, Any]:
        """What the FP16 IR's recipe records: `auto` with the tolerance it aims at (a changed
        tolerance makes the IR stale), or the layers."""
        if self.mode == "layers":
            return {"mode": self.mode, "layers": list(self.layers)}
        return {"mode": self.mode, "tolerance": {"max_prob_delta": tolerance.max_prob_delta,
                                                 "tie_margin": tolerance.tie_margin}}

    @classmethod
    def from_recipe(cls, data: dict[str, Any] | None) -> KeepRequest | None:
        return cls(data["mode"], tuple(data.get("layers", ()))) if data else None


NONE = "none"


def inherited(xml_path: Path) -> KeepRequest | None:
    """The request an existing IR was made with (its sidecar's recipe), so that a later `convert`
    without --keep-precision neither undoes a repair nor keeps a stale one: it repeats it."""
    meta = read_json(Path(xml_path).parent / SIDECAR) or {}
    return KeepRequest.from_recipe((meta.get("recipe") or {}).get("keep_precision"))


def parse_keep(text: str | None) -> KeepRequest | str | None:
    """`--keep-precision` → a KeepRequest, NONE (undo any repair), or None (not given: an FP16 IR
    that was repaired keeps its request)."""
    if text is None:
        return None
    text = text.strip()
    if text.lower() in (NONE, "auto"):
        return NONE if text.lower() == NONE else KeepRequest("auto")
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise UsageError("--keep-precision: give auto, none, or comma-separated layer names")
    return KeepRequest("layers", names)


@dataclass(frozen=True)
class Speed:
    seconds: float  # per loop and IR
    plain_images_per_s: float
    kept_images_per_s: float
    plain_latency_ms: float  # medians
    kept_latency_ms: float
    executed_in: str

    @property
    def ratio(self) -> float:
        """Throughput of the repaired IR ÷ the plain FP16 IR's (1.0: as fast)."""
        return self.kept_images_per_s / self.plain_images_per_s if self.plain_images_per_s else float("nan")


@dataclass(frozen=True)
class KeptPrecision:
    mode: str
    layers: tuple[str, ...]  # TensorFlow names, in the order chosen (auto: by rank)
    ops: tuple[str, ...]  # IR ops (friendly names) marked `precise`
    weights_kept: int  # float Constants left f32 among them
    reason: str  # one line: why these
    tolerance: dict[str, float]
    image_source: str
    ranking_images: int
    held_out_images: int
    results: dict[str, dict[str, Any]]  # "ranking"/"held_out" → {"before": SetResult, "after": SetResult}
    ranked: tuple[dict[str, Any], ...] = ()  # auto: the top of diff's ranking (tf_node, gain, rel_error)
    tried: tuple[dict[str, Any], ...] = ()  # auto: each prefix size judged on the held-out images
    speed: Speed | None = None
    image_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)  # "ranking"/"held_out" → which images

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.speed:
            data["speed"]["ratio"] = round(self.speed.ratio, 3)
        return data

    def rt_info(self) -> str:
        """The short form the IR itself carries (JSON): what was kept and why, without the ranking."""
        return json.dumps(short_record(self.to_dict()), sort_keys=True, separators=(",", ":"))


def short_record(kept: dict[str, Any]) -> dict[str, Any]:
    """A record without the ranking, the prefixes tried and the image keys; `ops` as a count. What
    the IR's rt_info and verify's report carry."""
    short = {k: v for k, v in kept.items() if k not in ("ranked", "tried", "ops", "image_keys")}
    return {**short, "ops": kept["ops"] if isinstance(kept["ops"], int) else len(kept["ops"])}


def kept_precision(xml_path: Path) -> dict[str, Any] | None:
    """What an IR keeps in f32 and why — its sidecar's record, else the IR's rt_info; None for an IR
    that was not repaired (a plain FP16 IR, any FP32 or INT8 IR). For `verify` to report. Reads
    the IR (its rt_info) only when it has no sidecar."""
    meta = read_json(Path(xml_path).parent / SIDECAR)
    if meta is not None:
        return meta.get(SIDECAR_KEY) or None
    from omzconv.ovcompat import import_openvino

    ov_model = import_openvino().Core().read_model(str(xml_path))
    if not ov_model.has_rt_info(["omzconv", RT_INFO_KEY]):
        return None
    return json.loads(ov_model.get_rt_info(["omzconv", RT_INFO_KEY]).astype(str))


def _set_text(result: dict[str, Any]) -> str:
    return f"top-1 {result['top1_agreement']:.0%}, max |Δp| {result['max_prob_delta']:.1e}"


def kept_head(kept: dict[str, Any]) -> str:
    """One line: the layers kept in f32 (the first four), how many ops and weights, and why."""
    layers, ops = kept["layers"], kept["ops"]
    if not layers:
        return f"kept no layer in f32 — {kept['reason']}"
    names = ", ".join("/".join(n.split("/")[-2:]) for n in layers[:4]) + (" …" if len(layers) > 4 else "")
    return (f"kept {plural(len(layers), 'layer')} in f32 ({plural(ops if isinstance(ops, int) else len(ops), 'IR op')}, "
            f"{plural(kept['weights_kept'], 'weight')}): {names} — {kept['reason']}")


def speed_text(kept: dict[str, Any]) -> str:
    """The repaired IR's speed against the plain FP16 IR's ("" when it was not measured)."""
    sp = kept.get("speed")
    if not sp:
        return ""
    return (f"speed: {sp['ratio']:.2f}× the plain FP16 IR's throughput ({sp['kept_images_per_s']:.0f} vs "
            f"{sp['plain_images_per_s']:.0f} img/s; latency {sp['kept_latency_ms']:.2f} vs "
            f"{sp['plain_latency_ms']:.2f} ms; computed in {sp['executed_in']})")


def kept_lines(kept: dict[str, Any], earlier: bool = False) -> list[str]:
    """What --keep-precision kept and why, before → after on both image sets, and the speed."""
    lines = [kept_head(kept) + (" [repaired earlier; --keep-precision none undoes it]" if earlier else "")]
    tol = kept["tolerance"]
    for name, label in (("held_out", "held-out"), ("ranking", "ranking")):
        r = kept["results"][name]
        lines.append(f"{label} ({plural(r['after']['images'], 'image')}): {_set_text(r['before'])} → "
                     f"{_set_text(r['after'])} (tolerance: max |Δp| ≤ {tol['max_prob_delta']:g}, top-1 kept where "
                     f"margin > {tol['tie_margin']:g})")
    return lines + ([speed_text(kept)] if kept.get("speed") else [])
