"""Execution precision is part of what is verified (issue 18 §1), and verify explains a failed run with
`omzconv diff` (§2): run planning, tolerance lookup, cache keys, the reports' texts, and end to end on
mobilenet_v1_025_128 (synthetic weights).

This machine's CPU (AVX2, no bf16 or f16 units) computes every execution precision in f32; the case
of a CPU whose default is bf16 is covered by parameters (`plan_runs`, `cpu_default_text`, reports).
"""

from __future__ import annotations

import dataclasses
import json
import re
from html import unescape
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from omzconv import verify
from omzconv.cli import main
from omzconv.errors import UsageError
from omzconv.execution import (cpu_default_precision, cpu_default_text, executed_precision, parse_inference_precisions,
                               plan_runs, run_name, tolerance_key, unavailable_text)
from omzconv.registry import PRECISIONS
from omzconv.verify.render_html import render_html
from omzconv.verify import (Artefact, ModelArtefacts, PerImage, PredictionCache, evaluate_model, make_report,
                            render_markdown, select_images, with_runs, worst_images)

MODEL = "mobilenet_v1_025_128"
SHA = "sha256:" + "1" * 64


# --- planning: which runs, named how ---------------------------------------------------------------

def names(runs) -> list[str]:
    return [r.name for r in runs]


def test_without_a_flag_each_ir_runs_as_written_and_fp32_at_default_only_where_the_default_is_not_f32():
    assert names(plan_runs(["FP32", "FP16"], (), "f32")) == ["FP32", "FP16"]
    assert names(plan_runs(["FP32", "FP16", "INT8"], (), "bf16")) == ["FP32", "FP32@default", "FP16", "INT8"]
    assert names(plan_runs(["FP16"], (), "bf16")) == ["FP16"]  # FP32@default needs FP32 verified


def test_asked_precisions_make_every_ir_times_execution_run_in_order():
    runs = plan_runs(["FP32", "INT8"], ("f32", "bf16"), "bf16")
    assert names(runs) == ["FP32", "FP32@bf16", "INT8", "INT8@bf16"]
    assert [(r.precision, r.inference_precision) for r in runs][1] == ("FP32", "bf16")
    assert names(plan_runs(["FP16"], ("default",), "f32")) == ["FP16@default"]  # asked: no pinned run added


def test_inference_precisions_are_repeatable_or_comma_separated():
    assert parse_inference_precisions(["f32,bf16", "default", "BF16"]) == ("f32", "bf16", "default")
    assert parse_inference_precisions([]) == ()
    with pytest.raises(UsageError, match="unknown 'fp8'"):
        parse_inference_precisions(["f32,fp8"])


def test_cli_refuses_an_unknown_inference_precision_before_any_work(tmp_path):
    for command in ("verify", "benchmark", "diff"):
        result = CliRunner().invoke(main, ["-o", str(tmp_path), command, MODEL, "--inference-precision", "int4"])
        assert result.exit_code == 2 and "unknown 'int4'" in result.output, (command, result.output)
    assert not any(tmp_path.iterdir())


# --- tolerances: by what OpenVINO executed ---------------------------------------------------------

def test_tolerance_follows_what_was_executed_not_what_was_asked(registry):
    assert tolerance_key("FP32", "f32") == "FP32"  # FP32@bf16 on a CPU without bf16, FP32@default on an f32 CPU
    assert tolerance_key("FP16", "bf16") == "FP16@bf16"  # FP16@default on a bf16 CPU too
    tolerances = registry.tolerances.precisions
    for precision in PRECISIONS:
        for executed in ("f32", "bf16", "f16"):
            assert tolerance_key(precision, executed) in tolerances
    # provisional bf16 bounds (REFERENCE §10: max |Δp| 0.16 measured) lie between FP16's and INT8's
    assert tolerances["FP16"].max_prob_delta < 0.16 < tolerances["FP32@bf16"].max_prob_delta < 0.3


def test_models_yaml_refuses_a_tolerance_key_for_an_unknown_execution(tmp_path, registry):
    from omzconv.errors import ConfigError
    from omzconv.registry import load_registry

    text = registry.path.read_text().replace("    FP32@f16:", "    FP32@default:")
    (tmp_path / "models.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"models.yaml: FP32@default: unknown precision .*e\.g\. FP32@bf16"):
        load_registry(tmp_path / "models.yaml")


# --- the CPU, asked: what it computes in --------------------------------------------------------

def test_the_cpu_default_is_read_from_openvino_and_an_unavailable_precision_is_said():
    import time

    from omzconv.ovcompat import import_openvino

    executed_precision.cache_clear()
    t0 = time.perf_counter()
    default = cpu_default_precision()
    seconds = time.perf_counter() - t0
    assert default in ("f32", "bf16", "f16")
    capabilities = import_openvino().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if "BF16" not in capabilities:  # this machine: AVX2 only
        assert default == "f32" and executed_precision("bf16") == "f32"
    assert executed_precision("f32") == "f32"
    print(f"probe: {seconds:.2f} s, CPU default {default}, capabilities {capabilities}")
    assert seconds < 10


def test_texts_say_what_the_cpu_does_and_what_a_run_measured():
    assert unavailable_text("FP32@bf16", "FP32", "bf16", "f32") == (
        "this CPU has no bf16: FP32@bf16 ran in f32, so it measures the same as FP32")
    assert unavailable_text("FP32@bf16", "FP32", "bf16", "bf16") == ""
    assert unavailable_text("FP32@default", "FP32", "default", "f32") == ""
    assert "in f32 by default" in cpu_default_text("f32")
    bf16 = cpu_default_text("bf16")
    assert "in bf16 by default" in bf16 and "not f32" in bf16 and "--inference-precision f32,default" in bf16


def test_benchmark_rows_name_each_execution_in_80_columns(monkeypatch, capsys):
    """`OpenVINO FP16@default` whole at 80 columns (with the old `req×batch` header it ended `FP16@def…`)."""
    import io

    from rich.console import Console

    from omzconv.benchmark import Measurement, ModelBenchmark, Timing
    from omzconv.cli import benchmark, ui

    screen = io.StringIO()
    monkeypatch.setattr(ui, "stdout", Console(file=screen, width=80, highlight=False))
    t = Timing("latency", None, 1, 4, 100, 10.0, 21.35, 25.04, 1881.1)
    rows = [Measurement("openvino", p, "x", "f32", t, t, 46000.0, run_name(p, ip), ip)
            for p, ip in (("FP32", "f32"), ("FP32", "bf16"), ("FP16", "default"))]
    benchmark.render(ModelBenchmark("inception_resnet_v2", 22.227, "synthetic", rows, []))
    lines = screen.getvalue().splitlines()
    assert max(map(len, lines)) <= 80, screen.getvalue()
    assert [line.split()[:3] for line in lines if line.startswith("OpenVINO")] == [
        ["OpenVINO", "FP32", "f32"], ["OpenVINO", "FP32@bf16", "f32"], ["OpenVINO", "FP16@default", "f32"]]
    assert "this CPU has no bf16: FP32@bf16 ran in f32" in " ".join(capsys.readouterr().err.split())


# --- runs, caches, reports (fake runners) ----------------------------------------------------------

class Fake:
    """Logits from the pixels' channel means; `noise` moves them (a run computed coarser)."""

    def __init__(self, noise: float = 0.0, executed: str | None = None) -> None:
        self.noise, self.executed = noise, executed
        self.weights = np.random.default_rng(3).normal(size=(3, 1001))

    def infer(self, batch, on_done=None):
        logits = np.asarray(batch, np.float64).mean(axis=(1, 2)) / 255 @ self.weights * 5
        logits = logits + self.noise * np.cos(np.arange(1001))
        if on_done:
            on_done(len(batch))
        return {"out": logits.astype(np.float32)}  # "out" is undeclared: read as logits

    def close(self):
        pass


@pytest.fixture
def images(tmp_path, registry):
    root = tmp_path / "val"
    (root / "ILSVRC2012_img_val").mkdir(parents=True)
    lines = []
    for i in range(10):
        name = f"ILSVRC2012_val_{i + 1:08d}.JPEG"
        pixels = np.random.default_rng(i).integers(0, 256, (40, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "ILSVRC2012_img_val" / name)
        lines.append(f"{name} {i % 5}")
    (root / "val.txt").write_text("\n".join(lines) + "\n")
    return select_images(registry.dataset("imagenet-val"), root)


@pytest.fixture
def small(registry):
    model = registry.model("inception_v4")
    return dataclasses.replace(model, preprocessing=dataclasses.replace(model.preprocessing, size=24))


def fakes(tmp_path, executed: str) -> ModelArtefacts:
    ir = ModelArtefacts("out", "synthetic", Artefact("original", "tensorflow", tmp_path / "m.pb", "sha256:" + "a" * 64),
                        (Artefact("FP32", "openvino", tmp_path / "m.xml", SHA),))
    return with_runs(ir, plan_runs(["FP32"], ("f32", "bf16"), "f32"), lambda asked: "f32" if asked == "f32" else executed)


def test_each_run_is_held_to_the_tolerance_of_what_it_executed(tmp_path, small, images, registry):
    """FP32@bf16 moved by bf16-sized noise: on a bf16 CPU it is held to FP32@bf16's bound and passes;
    had it computed in f32 it would be held to FP32's and fail (main: no such run at all)."""
    for executed, verdict in (("bf16", "passed"), ("f32", "failed")):
        factory = lambda model, a, outputs: Fake(noise=0.3 if "@" in a.name else 0.0)  # noqa: E731
        report = evaluate_model(small, fakes(tmp_path, executed), images, registry.tolerances, runner_factory=factory)
        by_run = {r.name: r for r in report.runs}
        assert list(by_run) == ["original", "FP32", "FP32@bf16"]
        assert (by_run["FP32@bf16"].inference_precision, by_run["FP32@bf16"].executed) == ("bf16", executed)
        assert by_run["FP32@bf16"].tolerance == ("FP32@bf16" if executed == "bf16" else "FP32")
        check = next(c for c in report.checks if c.subject == "FP32@bf16 vs original" and c.metric == "max |Δp|")
        assert check.status == verdict and 1e-3 < check.value < 0.25, check
        assert all(c.status != "failed" for c in report.checks if c.subject == "FP32 vs original")


def test_a_run_computed_otherwise_than_probed_is_an_error(tmp_path, small, images, registry):
    from omzconv.errors import OmzconvError

    factory = lambda model, a, outputs: Fake(executed="bf16" if "@" in a.name else None)  # noqa: E731
    with pytest.raises(OmzconvError, match="FP32@bf16: OpenVINO computed it in bf16, but this CPU was probed"):
        evaluate_model(small, fakes(tmp_path, "f32"), images, registry.tolerances, runner_factory=factory)


def test_cache_keys_on_the_execution_asked_and_obtained(tmp_path, small):
    plain = Artefact("FP32", "openvino", tmp_path / "m.xml", SHA)
    assert plain.identity == SHA  # caches from before execution precisions stay valid
    runs = {(ip, ex): dataclasses.replace(plain, name=run_name("FP32", ip), inference_precision=ip, executed=ex)
            for ip, ex in (("f32", "f32"), ("bf16", "bf16"), ("bf16", "f32"), ("default", "f32"), ("default", "bf16"))}
    paths = {k: PredictionCache.for_artefact(tmp_path, a, "out", small).path for k, a in runs.items()}
    assert len(set(paths.values())) == len(paths)
    assert paths["f32", "f32"] == PredictionCache.for_artefact(tmp_path, plain, "out", small).path


def test_an_int8_run_is_compared_with_fp32_computed_the_same_way(tmp_path):
    ir = ModelArtefacts("out", "synthetic", Artefact("original", "tensorflow", tmp_path / "m.pb", SHA), (
        Artefact("FP32", "openvino", tmp_path / "a.xml", SHA), Artefact("INT8", "openvino", tmp_path / "b.xml", SHA,
                                                                       source="FP32")))
    both = with_runs(ir, plan_runs(["FP32", "INT8"], ("f32", "bf16"), "f32"), lambda asked: "f32")
    assert [(a.name, a.source, a.path.name) for a in both.converted] == [
        ("FP32", None, "a.xml"), ("FP32@bf16", None, "a.xml"), ("INT8", "FP32", "b.xml"), ("INT8@bf16", "FP32@bf16", "b.xml")]


def test_worst_images_put_changed_top1_first_then_the_largest_delta():
    top = {"original": np.array([[1], [2], [3], [4], [5]]), "FP16": np.array([[1], [9], [3], [9], [5]])}
    data = PerImage(("a",) * 5, 10, 0, np.zeros(5, int), {"FP16": np.array([True, True, True, True, False])},
                    top, {}, {("FP16", "original"): np.array([0.5, 0.1, 0.3, 0.2, 0.9])})
    assert worst_images(data, "FP16", 3).tolist() == [3, 1, 0]  # changed (|Δp| 0.2, 0.1), then 0.5; 4 unmeasured


def test_runs_to_explain_are_irs_that_failed_against_the_original_or_changed_a_top1(tmp_path, small, images,
                                                                                     registry):
    factory = lambda model, a, outputs: Fake(noise=0.3 if "@" in a.name else 0.0)  # noqa: E731
    m = evaluate_model(small, fakes(tmp_path, "bf16"), images, registry.tolerances, runner_factory=factory)
    assert m.passed and verify.to_explain(m) == []  # nothing changed: nothing to explain
    m.comparisons = [dataclasses.replace(c, top1_agreement=0.9) if c.precision == "FP32@bf16" else c
                     for c in m.comparisons]  # as if one image in ten had changed its top-1 class
    assert [(r.name, why) for r, why in verify.to_explain(m)] == [("FP32@bf16", "disagreed")]
    published = verify.Check("original vs TF-Slim published", "|Δ top-1| to reference", 3.0, "<=", 0.5, "pp", "failed")
    bad = verify.Check("FP32 vs original", "max |Δp|", 0.5, "<=", 1e-3, "p", "failed")
    m.checks = [published, bad, *m.checks]
    assert [(r.name, why) for r, why in verify.to_explain(m)][:1] == [("FP32", "failed")]
    assert "original" not in [r.name for r, _ in verify.to_explain(m)]


def test_reports_say_the_cpu_default_each_runs_execution_and_how_to_explain_it(tmp_path, small, images, registry):
    factory = lambda model, a, outputs: Fake(noise=0.3 if "@" in a.name else 0.0)  # noqa: E731
    m = evaluate_model(small, fakes(tmp_path, "f32"), images, registry.tolerances, runner_factory=factory)
    m.explanations = verify.explain_model(small, m, fakes(tmp_path, "f32"), tmp_path / "r.json", synthetic=True,
                                          data_dir=tmp_path / "val", diff=False)
    assert [(e.run, e.why, e.page) for e in m.explanations] == [("FP32@bf16", "failed", None)]
    assert m.explanations[0].command == (
        f"omzconv diff inception_v4 -p FP32 --inference-precision bf16 --synthetic-weights --data-dir {tmp_path}/val "
        "--images 8")
    for cpu in ("f32", "bf16"):
        report = make_report(images, [m], synthetic=True, cpu_default=cpu)
        md = render_markdown(report)
        html = unescape(re.sub("<[^>]+>", "", render_html(report, thumbnails=False)))
        said = cpu_default_text(cpu)
        assert verify.md_text(said) in md and said in html
        unavailable = "this CPU has no bf16: FP32@bf16 ran in f32, so it measures the same as FP32"
        assert unavailable in md and unavailable in html
        assert "held to the FP32 tolerance" in md
        assert "FP32@bf16 failed; where it departs from the original" in md
        assert json.loads(json.dumps(report.to_dict()))["cpu_default"] == cpu


def test_on_a_cpu_whose_default_is_bf16_verify_adds_fp32_at_default_and_says_so(tmp_path, images, monkeypatch):
    """This CPU's default is f32: the bf16 case with OpenVINO's answers replaced (main: verify pins f32
    and says nothing of what a default deployment computes)."""
    import omzconv.execution as execution

    monkeypatch.setattr(execution, "cpu_default_precision", lambda: "bf16")
    monkeypatch.setattr(execution, "executed_precision", lambda asked: "f32" if asked == "f32" else "bf16")
    monkeypatch.setattr(verify, "ensure_artefacts", lambda model, ws, reg, precisions, **kw: ModelArtefacts(
        "out", "synthetic", Artefact("original", "tensorflow", tmp_path / "m.pb", "sha256:" + "a" * 64),
        tuple(Artefact(p, "openvino", tmp_path / f"{p}.xml", SHA) for p in precisions)))
    monkeypatch.setattr("omzconv.verify.work.open_runner", lambda model, a, outputs: Fake())
    result = CliRunner().invoke(main, ["-o", str(tmp_path / "o"), "verify", "inception_v4", "--synthetic-weights",
                                       "--data-dir", str(tmp_path / "val"), "--report", str(tmp_path / "r.json"),
                                       "--no-cache"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["cpu_default"] == "bf16"
    runs = {r["name"]: r for r in data["models"][0]["runs"]}
    assert list(runs) == ["original", "FP32", "FP32@default", "FP16"]
    assert (runs["FP32@default"]["executed"], runs["FP32@default"]["tolerance"]) == ("bf16", "FP32@bf16")
    out = " ".join(result.output.split())
    assert cpu_default_text("bf16") in out and "FP32@default: asked default, computed in bf16" in out
    assert "omzconv verify NAME --inference-precision f32,default" in (tmp_path / "r.md").read_text()


# --- end to end, mobilenet_v1_025_128 ------------------------------------------------------------

def _verify(ws, shared_dir, report: Path, *args: str):
    options = ["--cache-dir", str(ws.cache_dir), "-o", str(ws.output_dir), "verify", MODEL, "--synthetic-weights",
               "--data-dir", str(shared_dir / "imagenet-sample"), "--limit", "12", "--no-cache",
               "--report", str(report), *args]
    return CliRunner().invoke(main, options, catch_exceptions=False)


def test_verify_f32_and_bf16_are_two_runs_and_bf16_says_it_ran_in_f32_here(artefacts, shared_dir, tmp_path):
    artefacts.ir(MODEL, "FP32")
    result = _verify(artefacts.workspace, shared_dir, tmp_path / "r.json", "-p", "FP32",
                     "--inference-precision", "f32,bf16")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    [m] = data["models"]
    runs = {r["name"]: r for r in m["runs"]}
    assert list(runs) == ["original", "FP32", "FP32@bf16"]
    assert data["cpu_default"] == cpu_default_precision()
    out = " ".join(result.output.split())
    assert cpu_default_text(data["cpu_default"]) in out
    if executed_precision("bf16") == "f32":  # this machine: no bf16
        assert (runs["FP32@bf16"]["inference_precision"], runs["FP32@bf16"]["executed"]) == ("bf16", "f32")
        assert runs["FP32@bf16"]["tolerance"] == "FP32"
        assert "this CPU has no bf16: FP32@bf16 ran in f32, so it measures the same as FP32" in out
        fp32, bf16 = (next(c for c in m["comparisons"] if c["precision"] == r) for r in ("FP32", "FP32@bf16"))
        assert bf16["top1_agreement"] == fp32["top1_agreement"] == 1.0
        assert bf16["max_abs_prob_delta"] == pytest.approx(fp32["max_abs_prob_delta"], abs=1e-6)
    assert "this CPU has no bf16" in (tmp_path / "r.md").read_text()


def _scaled_ir(xml: Path, pb: Path, target: Path, factor: float) -> str:
    """A copy of the IR with one convolution's weights times `factor`; the TensorFlow Conv2D it came
    from, found by its weights' shape (not by the layer matcher)."""
    from omzconv.ovcompat import import_openvino
    from omzconv.runners import load_graph_def

    ov = import_openvino()
    ov_model = ov.Core().read_model(str(xml))
    conv = [op for op in ov_model.get_ordered_ops() if op.get_type_name() == "Convolution"][3]
    data = conv.input_value(1).get_node().get_data()
    conv.input(1).replace_source_output(ov.op.Constant((data * factor).astype(data.dtype)).output(0))
    ov.save_model(ov_model, str(target), compress_to_fp16=False)
    cout, cin, kh, kw = data.shape
    graph = load_graph_def(pb)
    shapes = {n.name: tuple(d.size for d in n.attr["value"].tensor.tensor_shape.dim) for n in graph.node
              if n.op == "Const"}
    source = {n.name: n.input[0] for n in graph.node if n.op == "Identity"}
    [name] = [n.name for n in graph.node if n.op == "Conv2D"
              and shapes.get(source.get(n.input[1], n.input[1])) == (kh, kw, cin, cout)]
    return name


def test_a_failed_run_gets_its_diff_page_linked_from_the_report(artefacts, shared_dir, tmp_path, monkeypatch):
    """A fault in one convolution of the FP32 IR: verify fails it and names that convolution's layer as
    the first divergence, on the terminal, in the Markdown and the HTML, with the diff page beside the
    report (main: no page, no layer, only numbers)."""
    real = verify.ensure_artefacts
    faulty = tmp_path / "faulty" / f"{MODEL}.xml"
    faulty.parent.mkdir()
    conv = _scaled_ir(artefacts.ir(MODEL, "FP32"), artefacts.frozen(MODEL), faulty, 1.5)

    def with_fault(*args, **kwargs):
        found = real(*args, **kwargs)
        return dataclasses.replace(found, converted=tuple(
            dataclasses.replace(a, path=faulty, sha256="sha256:" + "f" * 64) for a in found.converted))

    monkeypatch.setattr(verify, "ensure_artefacts", with_fault)
    report = tmp_path / "r.json"
    result = _verify(artefacts.workspace, shared_dir, report, "-p", "FP32")
    assert result.exit_code == 1, result.output
    [e] = json.loads(report.read_text())["models"][0]["explanations"]
    assert (e["run"], e["why"], e["images"]) == ("FP32", "failed", 8)
    page = tmp_path / f"r-diff-{MODEL}-FP32.html"
    assert e["page"] == page.name and page.is_file()
    assert e["first_layer"] == conv and e["first_error"] > e["threshold"]  # the scaled convolution
    assert conv.split("/")[-2] in page.read_text()
    assert f'href="{page.name}"' in (tmp_path / "r.html").read_text()
    assert f"[diff page]({page.name})" in (tmp_path / "r.md").read_text()
    out = " ".join(result.output.split())
    assert f"first divergent layer {e['first_index']} {e['first_layer']}" in out and str(page) in out.replace(" ", "")
    # --no-diff: the command instead of the page
    page.unlink()
    result = _verify(artefacts.workspace, shared_dir, report, "-p", "FP32", "--no-diff")
    assert result.exit_code == 1 and not page.exists()
    [e] = json.loads(report.read_text())["models"][0]["explanations"]
    assert e["page"] is None and e["command"].startswith(f"omzconv diff {MODEL} -p FP32 --synthetic-weights")
