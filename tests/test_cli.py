"""The CLI as a user meets it: fast help, list/info/download, one-line errors, exit codes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
import click
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
    assert line.split()[-1] == "16"
    assert "done: dl downloaded, pb frozen, 32 16 8: IRs FP32 FP16 INT8" in output


def _made(tmp_path, name: str, irs: tuple[str, ...], synthetic: bool = True) -> None:
    """IRs (and an archive) on disk for `list` to find: what it reports is only what exists."""
    kind = ("synthetic",) if synthetic else ()
    for precision in irs:
        ir = tmp_path.joinpath("out", *kind, name, precision, f"{name}.xml")
        ir.parent.mkdir(parents=True)
        ir.write_text("<net/>")


@pytest.mark.parametrize("columns", [80, 60])
def test_list_is_one_line_per_model_and_fits_the_terminal(run, monkeypatch, tmp_path, columns):
    """After converting, every model is still one line (main: 4-5 lines each, input size cut to `2`
    at 60 columns); names give way with `…`, numbers and the state never."""
    monkeypatch.setenv("COLUMNS", str(columns))
    _made(tmp_path, "mobilenet_v1_1.0_224", ("FP32", "FP16", "INT8", "FP32-u8-nhwc"))  # the longest alias
    _made(tmp_path, "inception_v4", ("FP32", "FP16"))
    _made(tmp_path, "vgg_19", ("FP16",), synthetic=False)
    lines = [line.rstrip() for line in run("list", "--synthetic-weights").output.splitlines()]
    assert max(len(line) for line in lines) <= columns, "\n".join(lines)
    assert lines[0] == "Synthetic weights"
    rows = lines[3:3 + 17]  # title, header, rule, then one line per model
    full = [m["name"] for m in json.loads(run("list", "--json").output)["models"]]
    for shown, name in zip((line.split()[0] for line in rows), full, strict=True):
        assert shown == name or (shown.endswith("…") and name.startswith(shown[:-1])), (shown, name)
    sizes = {name: line.split()[3] for name, line in zip(full, rows)}
    assert (sizes["inception_v4"], sizes["vgg_19"], sizes["mobilenet_v1_025_128"]) == ("299", "224", "128")
    v1 = next(line for name, line in zip(full, rows) if name == "mobilenet_v1_1.0_224")
    assert v1.endswith(" 32 16 8+")
    assert next(line for line in rows if line.startswith("inception_v4")).rstrip().endswith("32 16")
    assert next(line for line in rows if line.startswith("vgg_19")).split()[-1] == "-"  # real IRs are not synthetic
    assert lines[20:] == ["done: dl downloaded, pb frozen, 32 16 8: IRs FP32 FP16 INT8",
                          "+: also IRs with another input interface (omzconv info NAME)"]
    real = run("list").output
    assert next(line for line in real.splitlines() if line.startswith("vgg_19")).split()[-1] == "16"
    assert " ".join(real.split()).endswith("2 models also with synthetic weights: omzconv list --synthetic-weights")
    if columns == 80:  # at 80 nothing is cut
        assert "…" not in "\n".join(lines)
        assert any(line.split()[:2] == ["mobilenet_v1_1.0_224", "mobilenet-v1-1.0-224-tf"] for line in rows)
        assert any(line.split()[:6] == ["vgg_16", "-", "ckpt", "224", "vgg", "-"] for line in rows)
        assert any(line.split()[:5] == ["inception_v3", "googlenet-v3", "graph", "299", "inception"] for line in rows)


def test_fit_widths_cuts_text_then_names_never_fixed():
    from omzconv.cli.ui import FIXED, NAME, TEXT, fit_widths

    cells = [["name", "n", "note"], ["a_rather_long_name", "1234567", "words that can wrap here"]]
    assert fit_widths(cells, [NAME, FIXED, TEXT], 80) == [18, 7, 24]  # fits: natural widths
    assert fit_widths(cells, [NAME, FIXED, TEXT], 40) == [18, 7, 11]  # text wraps first
    assert fit_widths(cells, [NAME, FIXED, TEXT], 30) == [14, 7, 5]  # down to its longest word, then names
    assert fit_widths(cells, [NAME, FIXED, TEXT], 10) == [6, 7, 5]  # names to 6 at most; numbers never


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


@pytest.mark.parametrize("name", ["inception_resnet_v2", "vgg_16", "mobilenet_v1_025_128"])
def test_info_is_plain_text_that_fits_80_columns(run, monkeypatch, name):
    """No Python dicts, None or True (main: `outputs: {'name': …, 'default': True}`, `resize_side:
    None`, lines of 198 characters); each fact on a labelled line, wrapped to the terminal."""
    monkeypatch.setenv("COLUMNS", "80")
    output = run("info", name).output
    lines = output.splitlines()
    assert max(map(len, lines)) <= 80, output
    for python in ("{", "}", "None", "True", "False", "':", "[]"):
        assert python not in output, python
    start = next(i for i, line in enumerate(lines) if line.startswith("tags "))
    keys = [line.split("  ")[0] for line in lines[start:] if line[:1].strip()]
    assert keys[:6] == ["tags", "task", "cost", "license", "network", "converts"], keys
    text = " ".join(output.split())
    if name == "vgg_16":
        assert "preprocessing vgg: RGB, resize shorter side to 256, central crop 224, x − (123.68, 116.78, " \
               "103.94)" in text and "source path" not in text  # the checkpoint's, said once
        assert "archive vgg_16_2016_08_28.tar.gz, size unpublished, hash unpublished" in text
        assert "alias" not in text  # nothing to show, nothing shown
    if name == "inception_resnet_v2":
        assert lines[0] == "inception_resnet_v2 (Open Model Zoo: inception-resnet-v2-tf)"
        assert "accuracy top-1 80.4 %, top-5 95.3 % (TF-Slim published; output " \
               "InceptionResnetV2/Logits/Logits/BiasAdd)" in text
        assert "InceptionResnetV2/Logits/Predictions (probabilities): main classifier, softmax" in text
    if name == "mobilenet_v1_025_128":
        assert "network mobilenet_v1 (depth_multiplier 0.25)" in text and "IR input input [1,3,128,128] NCHW BGR f32" in text
        assert text.endswith("done nothing; with synthetic weights: nothing")


def test_info_and_list_take_synthetic_weights(run, tmp_path):
    """Like every command that touches artefacts: the synthetic ones' paths and state."""
    _made(tmp_path, "inception_v1", ("FP32",))
    data = json.loads(run("info", "inception_v1", "--synthetic-weights", "--json").output)
    assert data["paths"]["frozen"] == str(tmp_path / "out" / "synthetic" / "inception_v1" / "inception_v1.frozen.pb")
    assert data["synthetic_status"]["converted"] == ["FP32"] and data["status"]["converted"] == []
    text = " ".join(run("info", "inception_v1").output.split())
    assert "done nothing; with synthetic weights: IRs FP32" in text
    assert "download" not in {opt for p in main.commands["download"].params for opt in p.opts if "synthetic" in opt}
    for command in ("list", "info", "freeze", "convert", "quantize", "verify", "benchmark"):
        assert "--synthetic-weights" in {opt for p in main.commands[command].params for opt in p.opts}, command


def test_control_characters_never_reach_the_terminal(monkeypatch, tmp_path):
    """A file name with escape sequences (retitle the terminal, turn it red) is shown with `?` for
    each control character, in tables, printed lines, progress and the one-line errors."""
    from rich.console import Console

    from omzconv.cli import ui

    evil = "cat\x1b]0;pwned\x07\x1b[31m\x9b2J.JPEG"
    screen = io.StringIO()
    console = ui.SafeConsole(file=screen, width=80, highlight=False)  # no styles: any ESC would be the name's
    monkeypatch.setattr(ui, "stdout", console)
    ui.print_table("t", ["file", "n"], [[evil, 1]])
    console.print(f"skipped: {evil}")
    console.print(ui.Text(evil))  # a Text built elsewhere is stripped when rendered
    shown = screen.getvalue()
    assert shown.splitlines()[3].startswith("cat?]0;pwned??[31m?2J.JPEG")
    assert shown.splitlines()[4:] == ["skipped: cat?]0;pwned??[31m?2J.JPEG", "cat]0;pwned[31m2J.JPEG"]
    plain = io.StringIO()
    Console(file=plain, width=80, highlight=False).print(f"skipped: {evil}")
    assert "\x1b" in plain.getvalue()  # what rich alone would have let through
    for args in (["info", evil], ["verify", "--data-dir", str(tmp_path / evil), "inception_v4"]):
        result = CliRunner().invoke(main, ["-o", str(tmp_path / "o"), *args])
        assert result.exit_code in (1, 2) and not ui.CONTROL.search(result.output.replace("\n", "")), result.output
    assert "cat?]0;pwned??[31m?2J.JPEG: dataset directory not found (--data-dir)" in result.output


def test_notes_are_plain_text(monkeypatch):
    """freeze's `… [synthetic weights]` and a path with brackets are shown as they are (main: both
    taken for rich markup and swallowed)."""
    from omzconv.cli import ui

    screen = io.StringIO()
    monkeypatch.setattr(ui, "stderr", ui.SafeConsole(file=screen, width=200, highlight=False))
    ui.info("inception_v4: up to date, /data/[bold]x/inception_v4.frozen.pb [synthetic weights]", quiet=False)
    assert screen.getvalue() == "inception_v4: up to date, /data/[bold]x/inception_v4.frozen.pb [synthetic weights]\n"


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path):
    """`omzconv list | head -1`: exit 0 and nothing on stderr (main: exit 1)."""
    env = {**os.environ, "OMZCONV_OUTPUT_DIR": str(tmp_path / "o"), "OMZCONV_CACHE_DIR": str(tmp_path / "c")}
    for args in (["list"], ["list", "--json"], ["info", "vgg_16"]):
        read_end, write_end = os.pipe()
        os.close(read_end)  # gone before the first write: deterministic
        result = subprocess.run([sys.executable, "-m", "omzconv", *args], stdout=write_end, stderr=subprocess.PIPE,
                                text=True, env=env, timeout=60)
        os.close(write_end)
        assert (result.returncode, result.stderr) == (0, ""), args


def test_plural():
    from omzconv.text import plural

    assert [plural(1, "near-tie"), plural(2, "near-tie"), plural(1, "image"), plural(1200, "image")] == [
        "1 near-tie", "2 near-ties", "1 image", "1,200 images"]
    assert plural(0, "entry", "entries") == "0 entries"


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


HOLD = 20  # seconds the trickle server holds its last bytes for a cleared gate


@pytest.fixture
def trickle_server(tmp_path):
    """A local HTTP server that sends its 4 MiB body 16 KiB every 10 ms (pytest-httpserver buffers),
    and a models.yaml whose inception_v4 archive is that body. While `gate` is clear (it is set
    unless a test clears it) the last 16 KiB wait for it, at most HOLD seconds (below the download's
    30 s stall deadline)."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    payload = b"x" * (4 << 20)
    chunk = 16 << 10

    class Trickle(BaseHTTPRequestHandler):
        def do_GET(self):
            self.server.requests += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            try:
                for i in range(0, len(payload), chunk):
                    if i + chunk >= len(payload):
                        self.server.gate.wait(HOLD)
                    self.wfile.write(payload[i:i + chunk])
                    self.wfile.flush()
                    time.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.requests, server.gate = 0, threading.Event()
    server.gate.set()
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
    """The second waits on the first's lock, says so once, then finds the archive verified.

    The first's transfer is held before its last bytes until the second says it waits: under load
    the second process may take longer to start than the whole 2.6 s transfer (it then found the
    archive already there and never waited: the test failed, the code had not)."""
    import threading
    import time

    command = [sys.executable, "-m", "omzconv", "--models", str(trickle_server.models), "--cache-dir",
               str(tmp_path / "cache"), "download", "inception_v4"]
    trickle_server.server.gate.clear()
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = tmp_path / "cache" / "inception_v4" / (trickle_server.archive + ".part")
    deadline = time.monotonic() + 30
    while not part.is_file() and time.monotonic() < deadline:
        time.sleep(0.02)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    notice = "another omzconv process is making it; waiting for it"
    lines: list[str] = []

    def read_stderr():
        for line in second.stderr:
            lines.append(line)
            if notice in line:
                trickle_server.server.gate.set()  # the second waits: let the first finish

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    second.wait(timeout=60)
    reader.join(timeout=10)
    first.communicate(timeout=60)
    stderr = "".join(lines)
    # Both fail at extraction (the payload is no tar): what matters is one transfer, one wait notice.
    assert trickle_server.server.requests == 1
    assert stderr.count(notice) == 1, stderr


def test_stage_display_names_the_stage_and_counts_only_while_counted(monkeypatch):
    """`label · stage` on one line; a counted run of stages gets a bar with count and ETA on the line
    below, gone with the next uncounted stage (main: the 8-step bar stayed, ETA `-:--:--`); every
    line fits 80 columns (main: cut)."""
    from omzconv.cli import progress, ui

    screen = io.StringIO()
    monkeypatch.setattr(ui, "stderr", ui.SafeConsole(file=screen, force_terminal=True, width=80))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    clock = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])

    def frame() -> list[str]:
        screen.seek(0)
        screen.truncate()
        on_stage.bar.refresh()
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue()).replace("\r", "")
        return [line.rstrip() for line in text.splitlines() if line.strip()]

    with progress.stage_status("mobilenet_v1_025_128", quiet=False) as on_stage:
        on_stage("synthetic weights: loading TensorFlow")
        assert frame()[-1].endswith("mobilenet_v1_025_128 · synthetic weights: loading TensorFlow")
        on_stage("synthetic weights: building graph", 0, 8)
        clock[0] += 20
        on_stage("synthetic weights: initializing weights", 1, 8)
        clock[0] += 5
        lines = frame()
        assert lines[-2].endswith("mobilenet_v1_025_128 · synthetic weights: initializing weights")
        assert lines[-1].endswith("1/8 ETA 2:15")  # 20 s per step, 7 to go, 5 s into the second
        on_stage("synthetic weights: calibrating classifiers", 4, 8)  # a step the network skips: still one bar
        assert frame()[-1].endswith("4/8 ETA 0:25")
        on_stage("freeze: restoring variables")
        lines = frame()
        assert lines[-1].endswith("mobilenet_v1_025_128 · freeze: restoring variables") and "/8" not in lines[-1]
        on_stage("quantize: calibrating on 50 images with a long description that cannot fit", 3, 50)
        assert all(len(line) <= 80 for line in frame())


@pytest.mark.parametrize("width", [80, 60])
def test_image_and_download_bars_fit_the_terminal(monkeypatch, width):
    """verify's image bar and a download bar, with long labels and rates, never wider than the
    terminal (main: 40-character bars, cut at 80 columns); the label gives way first."""
    from omzconv.cli import progress, ui

    screen = io.StringIO()
    monkeypatch.setattr(ui, "stderr", ui.SafeConsole(file=screen, force_terminal=True, width=width))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with progress.step_progress("verify inception_resnet_v2", 50000, quiet=False, unit="images") as advance:
        for _ in range(3):
            advance(1000)
    with progress.transfer_bars(quiet=False) as add:
        add("inception_resnet_v2")(12_000_000, 171_177_982)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue()).replace("\r", "\n")
    lines = {line.rstrip() for line in text.splitlines() if line.strip()}
    assert any("3000/50000" in line for line in lines) and any("/171.2 MB" in line for line in lines)
    assert max(map(len, lines)) <= width, lines


def test_eta_is_from_completed_steps_or_nothing():
    from omzconv.cli.progress import eta_text

    assert eta_text(0, 0, 30, 0, 8) == ""  # nothing completed: no guess
    assert eta_text(0, 10, 10, 2, 8) == "ETA 0:30"
    assert eta_text(0, 10, 40, 2, 8) == "ETA 0:00"  # overdue: never negative
    assert eta_text(0, 3600, 3600, 1, 3) == "ETA 2:00:00"
    assert eta_text(0, 10, 10, 8, 8) == ""


def test_convert_reports_each_model_when_it_is_done(tmp_path):
    from omzconv.cli.convert import finished_line
    from omzconv.convert import ConvertResult

    results = [ConvertResult("inception_v1", precision, tmp_path / "inception_v1" / precision / "inception_v1.xml",
                             skipped, 1.0, 100, None) for precision, skipped in (("FP32", False), ("FP16", True))]
    assert finished_line("inception_v1", results, 52.4, 3, 17) == (
        "[3/17] inception_v1: FP32 converted, FP16 up to date (52 s)")


def test_no_download_bar_when_nothing_is_downloaded(monkeypatch):
    from rich.console import Console

    from omzconv.cli import progress, ui

    screen = io.StringIO()
    monkeypatch.setattr(ui, "stderr", Console(file=screen, force_terminal=True, width=80))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with progress.transfer_bars(quiet=False) as add:
        add("inception_v4")  # the archive is already there: the library never calls back
    assert "inception_v4" not in screen.getvalue() and "bytes" not in screen.getvalue()
    with progress.transfer_bars(quiet=False) as add:
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
    assert seen == [("synthetic weights: loading TensorFlow", None, None),
                    ("synthetic weights: building graph", 0, n),
                    ("synthetic weights: calibrating BatchNorm", synthetic.STAGES.index("calibrating BatchNorm"), n),
                    ("synthetic weights: archiving", n - 1, n)]
    assert [r.getMessage() for r in caplog.records].count(
        "inception_v4: generating synthetic weights, a one-time cost (about a minute); later runs reuse them") == 1


def test_readme_commands_table_matches_each_commands_options():
    """Every option of every command is in its README row, and every option a row names exists
    (`--tag` and `--help` are described once, under the table; convert's INT8 options are quantize's)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if match := re.match(r"\| `omzconv (\w+)(.*?)`( \+ [^|]*)? \|", line.replace("\\|", "/")):
            rows[match.group(1)] = set(re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", match.group(2)))
    assert set(rows) == set(main.commands), set(rows) ^ set(main.commands)
    quantize_options = {p.name for p in main.commands["quantize"].params} - {"synthetic", "input_type", "layout",
                                                                                "force", "as_json", "names",
                                                                                "all_models", "tags"}
    for name, documented in rows.items():
        params = [p for p in main.commands[name].params if isinstance(p, click.Option)
                  and p.name not in ("tags", "help") and not (name == "convert" and p.name in quantize_options)]
        missing = [p.opts for p in params if not set(p.opts) & documented]
        unknown = documented - {opt for p in main.commands[name].params for opt in p.opts}
        assert not missing and not unknown, (name, missing, unknown)
