"""Benchmark: the JSON schema, the arithmetic (GFLOP/s, percentiles), loop bounds, and the INT8 hint.

Runs on the session's synthetic FP32 IR and frozen graph, linked into a private output directory so
that whether an INT8 IR exists does not depend on test order. Measurements are a fraction of a
second: these tests check what is reported, not how fast this machine is.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from omzconv.benchmark import percentile, random_input
from omzconv.cli import main

MODEL = "inception_v4"
GFLOPS = 24.584


@pytest.fixture(scope="module")
def bench_out(artefacts, tmp_path_factory) -> Path:
    """An output dir holding (links to) the session's FP32 IR and frozen graph, and no INT8 IR."""
    model = artefacts.model(MODEL)
    fp32_xml = artefacts.ir(MODEL, "FP32")
    pb = artefacts.frozen(MODEL)
    out = tmp_path_factory.mktemp("bench-out")
    ws_model = out / "synthetic" / MODEL
    (ws_model / "FP32").mkdir(parents=True)
    for src in fp32_xml.parent.iterdir():
        os.symlink(src, ws_model / "FP32" / src.name)
    for src in pb.parent.glob(f"{model.name}.frozen.*"):
        if src.suffix != ".lock":  # a lock is this folder's own (filelock refuses a symlinked one)
            os.symlink(src, ws_model / src.name)
    return out


def run(out: Path, *args: str):
    result = CliRunner().invoke(main, ["-o", str(out), "benchmark", MODEL, "--synthetic-weights", *args],
                                catch_exceptions=False)
    return result


def test_json_schema_and_arithmetic(bench_out) -> None:
    result = run(bench_out, "-p", "FP32,INT8", "--runtime", "openvino,tensorflow", "--time", "0.3",
                 "--tf-batch", "2", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"settings", "models"}
    settings = data["settings"]
    assert settings["seconds"] == 0.3 and settings["synthetic"] is True and settings["tf_batch"] == 2
    assert settings["inference_precisions"] == ["f32"] and settings["openvino_version"]
    [m] = data["models"]
    assert (m["model"], m["gflops"], m["weights"]) == (MODEL, GFLOPS, "synthetic")
    assert [(x["runtime"], x["precision"]) for x in m["measurements"]] == [("openvino", "FP32"), ("tensorflow", "FP32")]
    assert m["missing"] == [{"runtime": "openvino", "precision": "INT8", "reason": m["missing"][0]["reason"]}]
    assert f"omzconv quantize {MODEL} --data-dir DIR --synthetic-weights" in m["missing"][0]["reason"]
    timing_keys = {"mode", "hint", "batch", "requests", "iterations", "seconds", "median_ms", "p90_ms", "images_per_s"}
    for x in m["measurements"]:
        assert set(x) == {"runtime", "precision", "path", "inference_precision", "latency", "throughput", "gflops_per_s",
                          "run", "requested"}
        lat, thr = x["latency"], x["throughput"]
        assert set(lat) == set(thr) == timing_keys
        assert (lat["mode"], thr["mode"]) == ("latency", "throughput")
        assert lat["batch"] == 1 and lat["requests"] == 1
        for t in (lat, thr):
            assert t["iterations"] >= 1 and t["seconds"] >= 0.3
            assert 0 < t["median_ms"] <= t["p90_ms"]
            assert t["images_per_s"] == pytest.approx(t["batch"] * t["iterations"] / t["seconds"], rel=1e-3)
        assert x["gflops_per_s"] == pytest.approx(thr["images_per_s"] * GFLOPS, abs=0.01)
    ov, tf = m["measurements"]
    assert (ov["latency"]["hint"], ov["throughput"]["hint"]) == ("LATENCY", "THROUGHPUT")
    assert ov["throughput"]["requests"] >= 1 and ov["throughput"]["iterations"] % ov["throughput"]["requests"] == 0
    assert ov["inference_precision"] in {"f32", "bf16", "f16"}
    assert ov["path"].endswith(f"{MODEL}/FP32/{MODEL}.xml")
    assert (tf["latency"]["hint"], tf["throughput"]["batch"], tf["inference_precision"]) == (None, 2, "f32")
    assert tf["path"].endswith(f"{MODEL}.frozen.pb")


def test_iterations_and_inference_precision(bench_out) -> None:
    result = run(bench_out, "-p", "FP32", "--runtime", "openvino", "--iterations", "3",
                 "--inference-precision", "f32", "--json")
    assert result.exit_code == 0, result.output
    [x] = json.loads(result.stdout)["models"][0]["measurements"]
    assert x["inference_precision"] == "f32"
    assert x["latency"]["iterations"] == 3
    nireq = x["throughput"]["requests"]
    assert x["throughput"]["iterations"] == -(-3 // nireq) * nireq  # whole rounds of requests


def test_table_names_gflops_and_how_to_make_int8(bench_out) -> None:
    result = run(bench_out, "-p", "FP32,INT8", "--runtime", "openvino", "--iterations", "1")
    assert result.exit_code == 0, result.output
    assert f"{MODEL}: {GFLOPS:g} GFLOPs per image" in result.stdout
    assert "GFLOP/s" in result.stdout and "1.00×" in result.stdout
    assert f"omzconv quantize {MODEL}" in result.stderr


def test_bad_runtime_is_a_usage_error(tmp_path) -> None:
    result = CliRunner().invoke(main, ["-o", str(tmp_path), "benchmark", MODEL, "--runtime", "onnx"])
    assert result.exit_code == 2 and "choose from openvino, tensorflow" in result.output


def test_time_and_iterations_exclude_each_other(tmp_path) -> None:
    """The README promises exit 2 for options that exclude each other (main: accepted silently)."""
    result = CliRunner().invoke(main, ["-o", str(tmp_path), "benchmark", MODEL, "--time", "1", "--iterations", "5"])
    assert result.exit_code == 2 and "--time and --iterations exclude each other" in result.output
    assert not tmp_path.joinpath(MODEL).exists()


@pytest.mark.parametrize("columns", [80, 76])
def test_table_is_one_line_per_run_with_whole_numbers(monkeypatch, columns) -> None:
    """Figures as large as this machine gives (main: `108.5/12` / `2.2` and `int8+bf1` / `6` split
    over two lines at 80 columns; it needed ~101)."""
    import io

    from rich.console import Console

    from omzconv.benchmark import Measurement, ModelBenchmark, Timing
    from omzconv.cli import benchmark, ui

    screen = io.StringIO()
    monkeypatch.setattr(ui, "stdout", Console(file=screen, width=columns, highlight=False))

    def run(runtime, precision, computes, p50, p90, images_per_s, requests, batch):
        latency = Timing("latency", None, 1, 1, 100, 10.0, p50, p90, 1000 / p50)
        throughput = Timing("throughput", None, batch, requests, 1000, 10.0, p50, p90, images_per_s)
        return Measurement(runtime, precision, "x", computes, latency, throughput, images_per_s * GFLOPS)

    result = ModelBenchmark("inception_resnet_v2", 22.227, "synthetic", [
        run("openvino", "FP32", "bf16", 21.35, 25.04, 1881.12, 4, 1),
        run("openvino", "INT8", "bf16", 13.0, 14.21, 2101.4, 4, 1),
        run("tensorflow", "FP32", "f32", 108.5, 122.2, 11.08, 1, 8)], [])
    benchmark.render(result)
    lines = screen.getvalue().splitlines()
    assert max(map(len, lines)) <= columns, screen.getvalue()
    assert lines[0].startswith("inception_resnet_v2: 22.227 GFLOPs per image, synthetic weights")
    rows = [line.split() for line in lines if line.startswith(("OpenVINO", "TensorFlow"))]
    assert rows == [
        ["OpenVINO", "FP32", "bf16", "21.35", "25.04", "1881", "4×1", f"{1881.12 * GFLOPS:.0f}", "1.00×"],
        ["OpenVINO", "INT8", "int8+bf16", "13", "14.21", "2101", "4×1", f"{2101.4 * GFLOPS:.0f}", "1.12×"],
        ["TensorFlow", "f32", "108.5", "122.2", "11.08", "1×8", f"{11.08 * GFLOPS:.0f}", "0.01×"]]


def test_percentile_and_random_input() -> None:
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile(list(range(11)), 90) == 9.0
    assert percentile([], 50) == 0.0
    a, b = random_input((1, 3, 4, 4), "f32", seed=3), random_input((1, 3, 4, 4), "f32", seed=3)
    assert a.dtype == np.float32 and a.shape == (1, 3, 4, 4) and np.array_equal(a, b)
    assert 0 <= a.min() and a.max() <= 255
    assert not np.array_equal(a, random_input((1, 3, 4, 4), "f32", seed=4))
    assert random_input((2, 2), "u8").dtype == np.uint8
