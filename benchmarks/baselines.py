"""Baselines the benchmark scripts compare omzconv with.

`benchmark_app(...)` runs OpenVINO's `benchmark_app` from its own entry point with telemetry
blocked: the console script's `import openvino` loads the converter, which sets up OpenVINO's
usage telemetry (a DNS lookup and a report per run) whenever `openvino_telemetry` can be
imported. Same code, same options, same figures — and no network.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCHMARK_APP = """
import sys
sys.modules["openvino_telemetry"] = None
from openvino.tools.benchmark.main import main
sys.argv[0] = "benchmark_app"
sys.exit(main())
"""


def benchmark_app(xml: Path, seconds: float, infer_precision: str | None = None) -> float:
    """Throughput (FPS) of `benchmark_app -m <xml> -hint throughput -t <seconds> -d CPU`."""
    cmd = [sys.executable, "-c", BENCHMARK_APP, "-m", str(xml), "-hint", "throughput", "-t", str(int(seconds)),
           "-d", "CPU"]
    if infer_precision:
        cmd += ["-infer_precision", infer_precision]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Throughput:\s+([\d.]+)\s+FPS", out)
    if not match:
        sys.exit(f"cannot read the throughput from benchmark_app's output:\n{out[-2000:]}")
    return float(match.group(1))
