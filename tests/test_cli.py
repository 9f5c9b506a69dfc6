"""The CLI as a user meets it: fast help, list/info/download, one-line errors, exit codes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from click.testing import CliRunner

from omzconv.cli import main

ROOT_YAML = Path(__file__).resolve().parents[1] / "models.yaml"


@pytest.fixture
def run(tmp_path):
    """Invoke omzconv with cache and output dirs inside tmp_path."""
    def invoke(*args: str, models: Path | None = None):
        options = ["--cache-dir", str(tmp_path / "cache"), "-o", str(tmp_path / "out")]
        if models:
            options += ["--models", str(models)]
        return CliRunner().invoke(main, [*options, *args], catch_exceptions=False)
    return invoke


def test_help_and_list_do_not_import_tensorflow_or_openvino():
    code = ("import sys; from click.testing import CliRunner; from omzconv.cli import main; "
            "r1 = CliRunner().invoke(main, ['--help']); r2 = CliRunner().invoke(main, ['list', '--json']); "
            "assert r1.exit_code == 0 and r2.exit_code == 0, (r1.output, r2.output); "
            "heavy = [m for m in ('tensorflow', 'openvino', 'tf_slim') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_version(run):
    from omzconv import __version__
    assert run("--version").output.strip() == f"omzconv, version {__version__}"


def test_list_json_names_models_and_status(run):
    result = run("list", "--json")
    data = json.loads(result.output)
    assert [m["name"] for m in data["models"]][:2] == ["inception_v4", "inception_resnet_v2"]
    assert len(data["models"]) == 17
    v4 = data["models"][0]
    assert (v4["source"], v4["input_size"], v4["preprocessing"], v4["tags"]) == ("checkpoint", 299, "inception", ["omz", "inception"])
    assert v4["alias"] == "googlenet-v4-tf" and v4["gflops"] == 24.584
    assert v4["status"] == {"downloaded": False, "frozen": False, "converted": []}


def test_list_table_shows_what_is_done(run, tmp_path):
    ir = tmp_path / "out" / "inception_v4" / "FP16" / "inception_v4.xml"
    ir.parent.mkdir(parents=True)
    ir.write_text("<net/>")
    output = run("list").output
    line = next(line for line in output.splitlines() if "googlenet-v4-tf" in line)
    assert "FP16" in line and "FP32" not in line


def test_list_fits_80_columns_with_names_and_aliases_whole(run, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "80")
    for precision in ("FP32", "FP16", "FP32-u8-nhwc"):  # a long "done" cell must wrap, not squeeze the rest
        ir = tmp_path / "out" / "synthetic" / "inception_v4" / precision / "inception_v4.xml"
        ir.parent.mkdir(parents=True)
        ir.write_text("<net/>")
    archive = tmp_path / "cache" / "synthetic" / "inception_v4" / "inception_v4_2016_09_09.tar.gz"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"x")
    lines = run("list").output.splitlines()
    assert max(len(line) for line in lines) <= 80
    v4 = next(line for line in lines if line.startswith("inception_v4 "))
    assert v4.split()[:6] == ["inception_v4", "googlenet-v4-tf", "ckpt", "299", "inception", "syn:"], lines
    assert all(line.split()[4] in ("inception", "vgg") for line in lines
               if line.split() and line.split()[0] in {"inception_v1", "resnet_v1_50", "vgg_19", "inception_v3"})
    assert any(line.split()[:2] == ["mobilenet_v1_1.0_224", "mobilenet-v1-1.0-224-tf"] for line in lines)
    assert any(line.split()[:5] == ["vgg_16", "-", "ckpt", "224", "vgg"] for line in lines)
    assert any(line.split()[:5] == ["inception_v3", "googlenet-v3", "graph", "299", "inception"] for line in lines)


def test_tag_selects_a_group_on_every_model_command(run):
    names = [line.split()[0] for line in run("list", "--tag", "mobilenet").output.splitlines()[2:]]  # after the rule
    assert names == ["mobilenet_v1_025_128", "mobilenet_v1_1.0_224", "mobilenet_v2_1.0_224", "mobilenet_v2_1.4_224"]
    dry = run("download", "--tag", "vgg", "--dry-run").output
    assert "vgg_16_2016_08_28.tar.gz: fetch" in dry and "vgg_19_2016_08_28.tar.gz: fetch" in dry
    assert "inception" not in dry
    result = CliRunner().invoke(main, ["convert", "--tag", "nope"])
    assert result.exit_code == 2 and "unknown tag 'nope'; known tags: inception, mobilenet, omz" in result.output
    from omzconv.cli import main as cli
    for name in ("download", "freeze", "convert", "verify", "quantize", "benchmark"):
        assert "--tag" in {opt for p in cli.commands[name].params for opt in p.opts}, name


def test_info_by_alias_json(run, tmp_path):
    data = json.loads(run("info", "inception-resnet-v2-tf", "--json").output)
    assert data["name"] == "inception_resnet_v2"
    assert data["files"][0]["hash"] == "md5:9e0f18e1259acf943e30690460d96123"
    assert data["paths"]["ir"]["FP32"] == str(tmp_path / "out" / "inception_resnet_v2" / "FP32" / "inception_resnet_v2.xml")
    assert [o["name"] for o in data["outputs"] if o["default"]] == ["InceptionResnetV2/Logits/Logits/BiasAdd"]


def test_unknown_model_is_one_line_usage_error(run):
    result = run("info", "resnet50")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: unknown model 'resnet50'; did you mean resnet_v2_50, resnet_v1_50, resnet_v2_152? "
        "`omzconv list` shows all 17"]


def test_usage_error_exit_2(run):
    assert run("list", "--bogus").exit_code == 2


def test_bad_registry_is_one_line(run, tmp_path):
    bad = tmp_path / "models.yaml"
    bad.write_text(ROOT_YAML.read_text().replace("size: 171177982", "size: -1"))
    result = run("list", models=bad)
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: models.yaml: inception_v4: files[0].size: expected a non-negative integer, got -1")


def test_dry_run_fetches_nothing(run, tmp_path):
    result = run("download", "--all", "--dry-run")
    assert result.exit_code == 0
    assert "inception_v4_2016_09_09.tar.gz: fetch 171177982 bytes" in result.output
    assert "inception_resnet_v2_2016_08_30.tar.gz: fetch" in result.output
    assert not (tmp_path / "cache").exists()


# --- download against a local server ------------------------------------------------------------

def _official_shaped_archive(member: str) -> bytes:
    payload = b"not really a checkpoint " * 1000
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


@pytest.fixture
def local_registry(tmp_path, httpserver):
    """models.yaml whose archives are served by a local HTTP server (first URL 404s)."""
    data = yaml.safe_load(ROOT_YAML.read_text())
    for name, model in data["models"].items():
        archive = _official_shaped_archive(model.get("frozen_graph") or model["checkpoint"])
        spec = model["files"][0]
        if spec["hash"] != "unpublished":
            spec["size"] = len(archive)
            spec["hash"] = "sha256:" + hashlib.sha256(archive).hexdigest()
        spec["urls"] = [httpserver.url_for(f"/missing/{spec['name']}"), httpserver.url_for(f"/{spec['name']}")]
        httpserver.expect_request(f"/missing/{spec['name']}").respond_with_data("no", status=404)
        httpserver.expect_request(f"/{spec['name']}").respond_with_data(archive)
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_download_all_in_parallel_then_rerun_skips(run, tmp_path, local_registry, httpserver):
    result = run("download", "--all", "--jobs", "2", "--json", models=local_registry)
    assert result.exit_code == 0, result.output
    paths = json.loads(result.output)
    ckpt = Path(paths["inception_v4"])
    assert ckpt == tmp_path / "cache" / "inception_v4" / "checkpoint" / "inception_v4.ckpt"
    assert ckpt.read_bytes().startswith(b"not really a checkpoint")
    assert Path(paths["inception_resnet_v2"]).name == "inception_resnet_v2_2016_08_30.ckpt"
    assert Path(paths["inception_v3"]).name == "inception_v3_2016_08_28_frozen.pb"  # source: frozen_graph
    # No published hash: the sha256 of what arrived is recorded beside the archive and checked later.
    archive = tmp_path / "cache" / "vgg_16" / "vgg_16_2016_08_28.tar.gz"
    recorded = archive.with_name(archive.name + ".sha256").read_text()
    assert recorded.startswith("sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest())
    assert "no hash was published" in recorded
    served = len(httpserver.log)
    assert run("download", "--all", models=local_registry).exit_code == 0
    assert len(httpserver.log) == served  # nothing fetched again

    listed = json.loads(run("list", "--json", models=local_registry).output)
    assert all(m["status"]["downloaded"] for m in listed["models"])

    archive.write_bytes(archive.read_bytes()[:-1] + b"x")  # changed since: it no longer verifies
    from omzconv.download import verify_file
    from omzconv.registry import load_registry
    with pytest.raises(Exception, match="hash mismatch: expected sha256:"):
        verify_file(archive, load_registry(local_registry).model("vgg_16").files[0])


def test_download_offline_says_how_to_recover(run, tmp_path):
    data = yaml.safe_load(ROOT_YAML.read_text())
    data["models"]["inception_v4"]["files"][0]["urls"] = ["http://127.0.0.1:9/a.tar.gz"]
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run("-q", "download", "inception_v4", models=path)
    assert result.exit_code == 1
    message = result.output.strip()
    assert message.startswith("Error: ") and "\n" not in message
    assert "http://127.0.0.1:9/a.tar.gz" in message and "--synthetic-weights" in message
    assert not (tmp_path / "cache" / "inception_v4" / "inception_v4_2016_09_09.tar.gz").exists()


# --- exit codes a script can rely on --------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("convert", "-p", "FP64", "inception_v4"),     # unknown precision
    ("convert",),                                  # no model named, no --all
    ("freeze", "--all", "--checkpoint", "x.ckpt"),  # options that exclude each other
    ("info", "resnet50"),                          # unknown model
])
def test_usage_errors_exit_2_with_one_line(run, args):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("Error: ")


def test_ctrl_c_exits_130_not_aborted(run, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("omzconv.pipeline.ensure_converted", interrupted)
    result = run("convert", "inception_v4", "--synthetic-weights")
    assert result.exit_code == 130
    assert "Aborted" not in result.output and "Interrupted" in result.output


@pytest.fixture
def trickle_server(tmp_path):
    """A local HTTP server that sends its 4 MiB body 16 KiB every 10 ms (pytest-httpserver buffers),
    and a models.yaml whose inception_v4 archive is that body."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    payload = b"x" * (4 << 20)

    class Trickle(BaseHTTPRequestHandler):
        def do_GET(self):
            self.server.requests += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            try:
                for i in range(0, len(payload), 16 << 10):
                    self.wfile.write(payload[i:i + (16 << 10)])
                    self.wfile.flush()
                    time.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.requests = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    data = yaml.safe_load(ROOT_YAML.read_text())
    spec = data["models"]["inception_v4"]["files"][0]
    spec.update(size=len(payload), hash="sha256:" + hashlib.sha256(payload).hexdigest(),
                urls=[f"http://127.0.0.1:{server.server_address[1]}/slow.tar.gz"])
    models = tmp_path / "trickle.yaml"
    models.write_text(yaml.safe_dump(data, sort_keys=False))
    yield SimpleNamespace(models=models, archive=spec["name"], payload=payload, server=server)
    server.shutdown()
    server.server_close()


def test_ctrl_c_during_a_download_leaves_no_final_file(tmp_path, trickle_server):
    """A real SIGINT to a real process, mid-transfer."""
    import signal
    import time

    cache = tmp_path / "cache"
    process = subprocess.Popen(
        [sys.executable, "-m", "omzconv", "--models", str(trickle_server.models), "--cache-dir", str(cache),
         "download", "inception_v4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    final = cache / "inception_v4" / trickle_server.archive
    part = final.with_name(final.name + ".part")
    deadline = time.monotonic() + 30
    while not part.is_file() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.8)  # the transfer takes 2.6 s
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Interrupted" in stderr and "Traceback" not in stderr, stderr
    assert not final.exists()  # the .part stays for a resume, never under the final name
    assert part.stat().st_size < len(trickle_server.payload)


def test_list_fits_80_columns(run):
    result = CliRunner(env={"COLUMNS": "80"}).invoke(main, ["list"])
    assert result.exit_code == 0, result.output
    widest = max(len(line) for line in result.output.splitlines())
    assert widest <= 80, result.output


def test_freeze_rejects_a_frozen_graph_before_loading_tensorflow(tmp_path):
    pb = tmp_path / "model.frozen.pb"
    pb.write_bytes(b"\n\x05input\x12\x0bPlaceholder" * 20)
    code = ("import sys; from click.testing import CliRunner; from omzconv.cli import main; "
            f"r = CliRunner().invoke(main, ['-o', {str(tmp_path / 'out')!r}, 'freeze', 'inception_v4', "
            f"'--checkpoint', {str(pb)!r}]); "
            "print(r.exit_code); print(r.output.strip()); print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    code, message, tf_loaded = out.strip().splitlines()
    assert code == "1" and tf_loaded == "False"
    assert message == (f"Error: {pb} is a TensorFlow graph, not a checkpoint: pass the checkpoint it was made "
                       "from (model.ckpt, or the prefix of model.ckpt.index/.data-*)")


def test_tensorflow_log_lines_stay_off_the_terminal():
    code = ("from omzconv.tfcompat import import_tf; tf = import_tf(); s = tf.Session(); s.close(); print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert result.stdout.strip() == "ok"
    assert result.stderr == ""  # no oneDNN banner, no "failed call to cuInit"


def test_two_processes_fetch_one_archive_once(tmp_path, trickle_server):
    """The second waits on the first's lock, says so once, then finds the archive verified."""
    import time

    command = [sys.executable, "-m", "omzconv", "--models", str(trickle_server.models), "--cache-dir",
               str(tmp_path / "cache"), "download", "inception_v4"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = tmp_path / "cache" / "inception_v4" / (trickle_server.archive + ".part")
    deadline = time.monotonic() + 30
    while not part.is_file() and time.monotonic() < deadline:
        time.sleep(0.02)
    second = subprocess.run(command, capture_output=True, text=True, timeout=60)
    first.communicate(timeout=60)
    # Both fail at extraction (the payload is no tar): what matters is one transfer, one wait notice.
    assert trickle_server.server.requests == 1
    assert second.stderr.count("another omzconv process is making it; waiting for it") == 1, second.stderr


def test_stage_display_shows_a_bar_and_count_only_for_counted_stages(monkeypatch):
    from rich.console import Console

    from omzconv.cli import ui

    screen = io.StringIO()
    monkeypatch.setattr(ui, "stderr", Console(file=screen, force_terminal=True, width=80))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with ui.stage_status("quantize m", quiet=False) as on_stage:
        on_stage("loading NNCF")
        on_stage.bar.refresh()
        uncounted = screen.getvalue()
        on_stage("calibrating on 10 images", 3, 10)
        on_stage.bar.refresh()
    assert "quantize m: loading NNCF" in uncounted and "/" not in uncounted.split("loading NNCF")[-1]
    assert "quantize m: calibrating on 10 images" in screen.getvalue() and "3/10" in screen.getvalue()


def test_no_download_bar_when_nothing_is_downloaded(monkeypatch):
    from rich.console import Console

    from omzconv.cli import ui

    screen = io.StringIO()
    monkeypatch.setattr(ui, "stderr", Console(file=screen, force_terminal=True, width=80))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with ui.transfer_bars(quiet=False) as add:
        add("inception_v4")  # the archive is already there: the library never calls back
    assert "inception_v4" not in screen.getvalue() and "bytes" not in screen.getvalue()
    with ui.transfer_bars(quiet=False) as add:
        add("inception_v4")(512, 1024)
    assert "inception_v4" in screen.getvalue()


def test_result_tables_fit_80_columns_without_cutting_words(monkeypatch, tmp_path):
    """convert, quantize and benchmark tables as a person reads them at 80 columns: nothing wider,
    nothing cut to `…` (made from results, no TensorFlow needed)."""
    from rich.console import Console

    from omzconv.benchmark import Measurement, ModelBenchmark, Timing
    from omzconv.cli import benchmark, convert, quantize, ui
    from omzconv.convert import ConvertResult, SelfCheck
    from omzconv.quantize import AccuracyControl, AgreementCheck, Calibration, QuantizeResult

    screen = io.StringIO()
    monkeypatch.setattr(ui, "stdout", Console(file=screen, width=80, highlight=False))
    for module in (convert, quantize, benchmark):
        monkeypatch.setattr(module, "stdout", ui.stdout, raising=False)
    name = "inception_resnet_v2"
    ir = tmp_path / "omzconv-out" / "synthetic" / name / "FP32-u8-nhwc" / f"{name}.xml"
    check = SelfCheck(4, 1.4e-5, 1.0, 2, "max |Δ prob| ≤ 0.0001", True)
    convert.render_converted([ConvertResult(name, "FP32", ir, False, 12.3, 225_600_000, check)], synthetic=True)
    control = AccuracyControl(1.0, 300, 0, 77.3, 76.9, 0.4, True)
    quantized = QuantizeResult(name, "INT8", ir, False, 55.2, 57_700_000, "synthetic", "sha256:x", "3.4.0",
                               Calibration("imagenet-val", "/data", 300, 0, "sha256:y"), control,
                               AgreementCheck(50, 1, 0.62))
    quantize.render([quantized], synthetic=True)
    timing = Timing("throughput", "THROUGHPUT", 1, 4, 1000, 12.0, 20.1, 23.4, 55.5)  # mode .. images_per_s
    measured = Measurement("openvino", "FP32", str(ir), "bf16", timing, timing, 1234.0)
    benchmark.render(ModelBenchmark(name, 22.227, "synthetic", [measured], []))
    lines = [line for line in screen.getvalue().splitlines() if str(tmp_path) not in line]  # path lines stay whole
    assert max(map(len, lines)) <= 80, screen.getvalue()
    assert "…" not in screen.getvalue(), screen.getvalue()
    assert name in screen.getvalue() and "FP32-u8-nhwc" in screen.getvalue()


def test_synthetic_weights_are_their_own_counted_step(tmp_path, monkeypatch, caplog):
    """The first --synthetic-weights run says once that generating is a one-time cost and reports
    each generation step with a count (the CLI draws it as a bar with ETA)."""
    import logging

    from omzconv import pipeline, synthetic
    from omzconv.registry import load_registry
    from omzconv.workspace import Workspace

    def fake_archive(model, archive, on_stage):
        for stage in ("building graph", "calibrating BatchNorm", "archiving"):
            on_stage(stage)
        raise KeyboardInterrupt  # stop before extracting: what was reported is what matters

    monkeypatch.setattr(synthetic, "make_synthetic_archive", fake_archive)
    seen = []
    model = load_registry().model("inception_v4")
    with caplog.at_level(logging.INFO, logger="omzconv"), pytest.raises(KeyboardInterrupt):
        pipeline.obtain_checkpoint(model, Workspace(tmp_path / "c", tmp_path / "o", synthetic=True),
                                   on_stage=lambda text, done=None, total=None: seen.append((text, done, total)))
    n = len(synthetic.STAGES)
    assert seen == [("synthetic weights: building graph", 0, n),
                    ("synthetic weights: calibrating BatchNorm", synthetic.STAGES.index("calibrating BatchNorm"), n),
                    ("synthetic weights: archiving", n - 1, n)]
    assert [r.getMessage() for r in caplog.records].count(
        "inception_v4: generating synthetic weights, a one-time cost (about a minute); later runs reuse them") == 1
