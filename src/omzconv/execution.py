"""Execution precision: what OpenVINO's CPU plugin computes an IR in, asked and actual.

An IR's precision (FP32, FP16, INT8) is what its file holds; its *execution* precision is what the
CPU plugin computes in, chosen at compile time by `INFERENCE_PRECISION_HINT`: `f32` (what omzconv
pins by default: the IR as written), `bf16`, `f16`, or `default` (no hint: the plugin's choice,
bf16 on CPUs with AMX or AVX512-BF16, f32 elsewhere). A precision the CPU cannot compute in is
silently replaced by f32, so what was *executed* is read back from the compiled model, never assumed.

Each IR precision × execution precision is one run, named `FP32` (pinned to f32), `FP32@bf16`,
`FP16@default`, … (`run_name`); `plan_runs` decides which runs to make. Its tolerance in models.yaml
is found by what actually executed (`tolerance_key`): a run computed in f32 is held to its IR
precision's tolerance, one computed in bf16 to `FP32@bf16`'s, whatever was asked.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from omzconv.errors import UsageError

INFERENCE_PRECISIONS = ("f32", "bf16", "f16", "default")
EXACT = "f32"  # the IR as written
HINT = "INFERENCE_PRECISION_HINT"


def run_name(precision: str, inference_precision: str) -> str:
    """`FP16` for an IR computed in f32 (the IR as written), else `FP16@bf16`, `FP32@default`."""
    return precision if inference_precision == EXACT else f"{precision}@{inference_precision}"


def ir_precision(name: str) -> str:
    """The IR precision a run is of, `run_name`'s inverse: `FP16@bf16` → `FP16`."""
    return name.split("@")[0]


def parse_inference_precisions(values: Iterable[str]) -> tuple[str, ...]:
    """`--inference-precision` values, each repeatable or comma-separated, in order, once each."""
    items = [v.strip().lower() for value in values for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in INFERENCE_PRECISIONS]
    if unknown:
        raise UsageError(f"--inference-precision: unknown {', '.join(map(repr, unknown))}; "
                         f"choose from {', '.join(INFERENCE_PRECISIONS)} (repeatable or comma-separated)")
    return tuple(dict.fromkeys(items))


def hint_config(inference_precision: str) -> dict[str, str]:
    """compile_model settings for an execution precision (`default`: none, the plugin decides)."""
    if inference_precision not in INFERENCE_PRECISIONS:
        raise ValueError(f"unknown inference precision {inference_precision!r}")
    return {} if inference_precision == "default" else {HINT: inference_precision}


def executed_of(compiled: Any) -> str:
    """What a compiled model computes in, as OpenVINO reports it: `f32`, `bf16` or `f16`."""
    value = compiled.get_property(HINT)
    return value.to_string() if hasattr(value, "to_string") else str(value)


@functools.cache
def executed_precision(inference_precision: str) -> str:
    """What this CPU computes an f32 IR in when asked `inference_precision`, from OpenVINO: a tiny
    model compiled with that hint and its property read back (~0.1 s the first time, once per
    process). The plugin resolves the hint by the CPU's capabilities, not by the model."""
    from omzconv.ovcompat import import_openvino

    ov = import_openvino()
    import numpy as np

    ops = ov.opset13
    x = ops.parameter([1, 8], np.float32)
    tiny = ov.Model([ops.matmul(x, ops.constant(np.eye(8, dtype=np.float32)), False, False)], [x], "probe")
    return executed_of(ov.Core().compile_model(tiny, "CPU", hint_config(inference_precision)))


def cpu_default_precision() -> str:
    """What this CPU computes an f32 IR in when nobody says (OpenVINO's default)."""
    return executed_precision("default")


@dataclass(frozen=True)
class RunPlan:
    precision: str  # the IR's: FP32, FP16, INT8
    inference_precision: str  # asked: f32, bf16, f16 or default

    @property
    def name(self) -> str:
        return run_name(self.precision, self.inference_precision)


def plan_runs(precisions: Sequence[str], asked: Sequence[str], cpu_default: str) -> tuple[RunPlan, ...]:
    """The runs to make: every IR precision × every asked execution precision, in that order. Asked
    nothing: each IR as written (f32), and — on a CPU whose default is not f32 — `FP32@default` after
    `FP32`, so the report also says what a default deployment on this CPU computes."""
    if asked:
        return tuple(RunPlan(p, ip) for p in precisions for ip in asked)
    runs = []
    for p in precisions:
        runs.append(RunPlan(p, EXACT))
        if p == "FP32" and cpu_default != EXACT:
            runs.append(RunPlan(p, "default"))
    return tuple(runs)


def tolerance_key(precision: str, executed: str) -> str:
    """The models.yaml `tolerances.precisions` key a run is held to: its IR precision when it was
    computed in f32 (whatever was asked: `@default` on an f32 CPU, `@bf16` on a CPU without bf16),
    else `<precision>@<executed>` (`FP32@bf16`, `FP16@f16`)."""
    return run_name(precision, executed)


def unavailable_text(name: str, precision: str, asked: str, executed: str) -> str:
    """One sentence when a run computed in another precision than asked ("" when it did as asked
    or was asked for the default): the run then measures the same as the named one."""
    if asked in (executed, "default"):
        return ""
    return (f"this CPU has no {asked}: {name} ran in {executed}, so it measures the same as "
            f"{run_name(precision, executed)}")


def cpu_default_text(cpu_default: str) -> str:
    """What this CPU computes an f32 IR in by default, as OpenVINO says, and what that means."""
    if cpu_default == EXACT:
        return ("This CPU computes f32 IRs in f32 by default (OpenVINO's INFERENCE_PRECISION_HINT without a "
                "hint): a default deployment here computes what the FP32 run verifies.")
    return (f"This CPU computes f32 IRs in {cpu_default} by default (OpenVINO's INFERENCE_PRECISION_HINT without "
            f"a hint), not f32: a default deployment here gets {cpu_default} unless it sets "
            f"INFERENCE_PRECISION_HINT=f32. `omzconv verify NAME --inference-precision f32,default` verifies both.")
